//! Class-aware greedy non-maximum suppression with bounded work.

use std::cmp::Ordering;

use crate::detect::decode::Candidate;

/// A sensible `max_candidates` for [`nms_class_aware`]: enough for any realistic
/// frame, small enough to keep the quadratic suppression cheap.
pub const DEFAULT_MAX_CANDIDATES: usize = 4096;

/// Rank order: score descending, then lower class index. NaN scores must be removed
/// before ranking.
fn by_rank(first: &Candidate, second: &Candidate) -> Ordering {
    second
        .score
        .total_cmp(&first.score)
        .then(first.class_index.cmp(&second.class_index))
}

/// Sorts `candidates` by rank, keeping at most `max_candidates`; ties keep input order.
fn rank_and_truncate(candidates: &mut Vec<Candidate>, max_candidates: usize) {
    if candidates.len() <= max_candidates {
        // Stable sort: equal ranks keep their input order.
        candidates.sort_by(by_rank);
        return;
    }
    // Partial selection first so a flood of candidates costs O(n), not O(n log n).
    // The input position makes the order total, so unstable algorithms stay
    // deterministic.
    let by_rank_then_position = |first: &(usize, Candidate), second: &(usize, Candidate)| {
        by_rank(&first.1, &second.1).then(first.0.cmp(&second.0))
    };
    let mut ranked: Vec<(usize, Candidate)> = candidates.iter().copied().enumerate().collect();
    ranked.select_nth_unstable_by(max_candidates, by_rank_then_position);
    ranked.truncate(max_candidates);
    ranked.sort_unstable_by(by_rank_then_position);
    candidates.clear();
    candidates.extend(ranked.into_iter().map(|(_, candidate)| candidate));
}

/// Class-aware greedy NMS: among candidates of the same class, keep the highest score
/// and suppress those whose IoU with a kept one is `> iou_threshold` (an IoU exactly
/// equal is kept). Returns at most `max_detections`, sorted by score descending; ties
/// go to the lower class index, then the earlier input position (deterministic).
///
/// NaN scores are dropped. Work is bounded: only the `max_candidates` best-ranked
/// candidates enter the quadratic suppression (see [`DEFAULT_MAX_CANDIDATES`]).
/// `candidates` is used as scratch: on return it holds those ranked, truncated
/// candidates (its allocation is kept for reuse).
pub fn nms_class_aware(
    candidates: &mut Vec<Candidate>,
    iou_threshold: f32,
    max_detections: usize,
    max_candidates: usize,
) -> Vec<Candidate> {
    candidates.retain(|candidate| !candidate.score.is_nan());
    rank_and_truncate(candidates, max_candidates);
    let mut kept: Vec<Candidate> = Vec::new();
    let mut suppressed = vec![false; candidates.len()];
    for (index, candidate) in candidates.iter().enumerate() {
        if kept.len() >= max_detections {
            break;
        }
        if suppressed[index] {
            continue;
        }
        kept.push(*candidate);
        for (other, is_suppressed) in candidates.iter().zip(&mut suppressed).skip(index + 1) {
            if !*is_suppressed
                && other.class_index == candidate.class_index
                && candidate.bbox.iou(&other.bbox) > iou_threshold
            {
                *is_suppressed = true;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Rect;

    fn candidate(class_index: usize, score: f32, corners: [f32; 4]) -> Candidate {
        Candidate {
            class_index,
            score,
            bbox: Rect::new(corners[0], corners[1], corners[2], corners[3]),
        }
    }

    struct Case {
        name: &'static str,
        candidates: Vec<Candidate>,
        iou_threshold: f32,
        max_detections: usize,
        max_candidates: usize,
        expected: Vec<Candidate>,
    }

    #[test]
    fn suppression_from_table() {
        let square = [0.0, 0.0, 10.0, 10.0];
        // IoU with `square` is 90 / 110.
        let shifted = [1.0, 0.0, 11.0, 10.0];
        let far = [100.0, 100.0, 110.0, 110.0];
        let farther = [200.0, 200.0, 210.0, 210.0];
        let cases = vec![
            Case {
                name: "empty input",
                candidates: vec![],
                iou_threshold: 0.5,
                max_detections: 10,
                max_candidates: 10,
                expected: vec![],
            },
            Case {
                name: "overlapping same class suppressed",
                candidates: vec![candidate(0, 0.8, shifted), candidate(0, 0.9, square)],
                iou_threshold: 0.5,
                max_detections: 10,
                max_candidates: 10,
                expected: vec![candidate(0, 0.9, square)],
            },
            Case {
                name: "overlapping different class kept",
                candidates: vec![candidate(0, 0.9, square), candidate(1, 0.8, shifted)],
                iou_threshold: 0.5,
                max_detections: 10,
                max_candidates: 10,
                expected: vec![candidate(0, 0.9, square), candidate(1, 0.8, shifted)],
            },
            Case {
                name: "IoU exactly at the threshold is kept",
                candidates: vec![
                    candidate(0, 0.9, [0.0, 0.0, 3.0, 1.0]),
                    candidate(0, 0.8, [1.0, 0.0, 4.0, 1.0]),
                ],
                iou_threshold: 0.5,
                max_detections: 10,
                max_candidates: 10,
                expected: vec![
                    candidate(0, 0.9, [0.0, 0.0, 3.0, 1.0]),
                    candidate(0, 0.8, [1.0, 0.0, 4.0, 1.0]),
                ],
            },
            Case {
                name: "IoU just above the threshold is suppressed",
                candidates: vec![
                    candidate(0, 0.9, [0.0, 0.0, 3.0, 1.0]),
                    candidate(0, 0.8, [1.0, 0.0, 4.0, 1.0]),
                ],
                iou_threshold: 0.49,
                max_detections: 10,
                max_candidates: 10,
                expected: vec![candidate(0, 0.9, [0.0, 0.0, 3.0, 1.0])],
            },
            Case {
                name: "suppressed boxes do not suppress others",
                candidates: vec![
                    candidate(0, 0.9, [0.0, 0.0, 10.0, 10.0]),
                    candidate(0, 0.8, [4.0, 0.0, 14.0, 10.0]),
                    candidate(0, 0.7, [8.0, 0.0, 18.0, 10.0]),
                ],
                iou_threshold: 0.3,
                max_detections: 10,
                max_candidates: 10,
                expected: vec![
                    candidate(0, 0.9, [0.0, 0.0, 10.0, 10.0]),
                    candidate(0, 0.7, [8.0, 0.0, 18.0, 10.0]),
                ],
            },
            Case {
                name: "ordered by score, then class, then input order",
                candidates: vec![
                    candidate(1, 0.5, square),
                    candidate(0, 0.5, far),
                    candidate(0, 0.9, farther),
                    candidate(0, 0.5, [300.0, 0.0, 310.0, 10.0]),
                ],
                iou_threshold: 0.5,
                max_detections: 10,
                max_candidates: 10,
                expected: vec![
                    candidate(0, 0.9, farther),
                    candidate(0, 0.5, far),
                    candidate(0, 0.5, [300.0, 0.0, 310.0, 10.0]),
                    candidate(1, 0.5, square),
                ],
            },
            Case {
                name: "max_detections cuts the lowest scores",
                candidates: vec![
                    candidate(0, 0.3, square),
                    candidate(0, 0.9, far),
                    candidate(0, 0.6, farther),
                ],
                iou_threshold: 0.5,
                max_detections: 2,
                max_candidates: 10,
                expected: vec![candidate(0, 0.9, far), candidate(0, 0.6, farther)],
            },
            Case {
                name: "max_detections zero",
                candidates: vec![candidate(0, 0.9, square)],
                iou_threshold: 0.5,
                max_detections: 0,
                max_candidates: 10,
                expected: vec![],
            },
            Case {
                name: "NaN scores dropped",
                candidates: vec![
                    candidate(0, f32::NAN, square),
                    candidate(0, 0.4, shifted),
                    candidate(1, f32::NAN, far),
                ],
                iou_threshold: 0.5,
                max_detections: 10,
                max_candidates: 10,
                expected: vec![candidate(0, 0.4, shifted)],
            },
            Case {
                name: "max_candidates keeps the best ranked before suppression",
                candidates: vec![
                    candidate(0, 0.1, [0.0, 0.0, 1.0, 1.0]),
                    candidate(0, 0.5, [10.0, 0.0, 11.0, 1.0]),
                    candidate(0, 0.3, [20.0, 0.0, 21.0, 1.0]),
                    candidate(0, 0.9, [30.0, 0.0, 31.0, 1.0]),
                    candidate(0, 0.5, [40.0, 0.0, 41.0, 1.0]),
                ],
                iou_threshold: 0.5,
                max_detections: 10,
                max_candidates: 3,
                expected: vec![
                    candidate(0, 0.9, [30.0, 0.0, 31.0, 1.0]),
                    candidate(0, 0.5, [10.0, 0.0, 11.0, 1.0]),
                    candidate(0, 0.5, [40.0, 0.0, 41.0, 1.0]),
                ],
            },
            Case {
                name: "max_candidates zero",
                candidates: vec![candidate(0, 0.9, square)],
                iou_threshold: 0.5,
                max_detections: 10,
                max_candidates: 0,
                expected: vec![],
            },
            Case {
                name: "degenerate and infinite scores",
                candidates: vec![
                    candidate(0, f32::NEG_INFINITY, square),
                    candidate(0, f32::INFINITY, [5.0, 5.0, 5.0, 5.0]),
                    candidate(0, 0.5, square),
                ],
                iou_threshold: 0.5,
                max_detections: 10,
                max_candidates: 10,
                expected: vec![
                    candidate(0, f32::INFINITY, [5.0, 5.0, 5.0, 5.0]),
                    candidate(0, 0.5, square),
                ],
            },
        ];
        for mut case in cases {
            let kept = nms_class_aware(
                &mut case.candidates,
                case.iou_threshold,
                case.max_detections,
                case.max_candidates,
            );
            assert_eq!(kept, case.expected, "case `{}`", case.name);
        }
    }

    #[test]
    fn partial_selection_matches_a_full_stable_sort() {
        // Many ties across scores and classes, deterministic pseudo-random order.
        let candidates: Vec<Candidate> = (0..2000)
            .map(|index: usize| {
                let mixed = index.wrapping_mul(2_654_435_761) % 1000;
                candidate(
                    mixed % 3,
                    (mixed % 17) as f32 / 16.0,
                    [index as f32, 0.0, index as f32 + 1.0, 1.0],
                )
            })
            .collect();
        for max_candidates in [0, 1, 17, 500, 1999, 2000, 5000] {
            let mut expected = candidates.clone();
            expected.sort_by(by_rank);
            expected.truncate(max_candidates);
            let mut actual = candidates.clone();
            rank_and_truncate(&mut actual, max_candidates);
            assert_eq!(actual, expected, "max_candidates {max_candidates}");
        }
    }
}
