//! YOLOv8 (anchor-free, transposed) and YOLOv5 (objectness) output decoding.

use ndarray::{ArrayView3, Axis};

use super::{Candidate, ClassThresholds, DecodeError, push_candidate, push_passing_classes};
use crate::geometry::Rect;

/// Checks a YOLOv8 output shape `[1, 4 + class_count, N]`; returns N (anchors).
pub fn yolov8_anchor_count(shape: &[usize], class_count: usize) -> Result<usize, DecodeError> {
    match shape {
        [1, rows, anchors] if *rows == class_count.saturating_add(4) => Ok(*anchors),
        _ => Err(DecodeError::ShapeMismatch {
            output: "yolov8".to_string(),
            actual: shape.to_vec(),
            expected: format!(
                "[1, {}, N] (4 box values + {class_count} classes, N anchors)",
                class_count.saturating_add(4)
            ),
        }),
    }
}

/// Checks a YOLOv5 output shape `[1, N, 5 + class_count]`; returns N (anchors).
pub fn yolov5_anchor_count(shape: &[usize], class_count: usize) -> Result<usize, DecodeError> {
    match shape {
        [1, anchors, columns] if *columns == class_count.saturating_add(5) => Ok(*anchors),
        _ => Err(DecodeError::ShapeMismatch {
            output: "yolov5".to_string(),
            actual: shape.to_vec(),
            expected: format!(
                "[1, N, {}] (N anchors, 4 box values + objectness + {class_count} classes)",
                class_count.saturating_add(5)
            ),
        }),
    }
}

/// Decodes a YOLOv8 output `[1, 4 + C, N]` into `out` (cleared first): rows 0..4 are
/// `cx, cy, w, h` in input pixels, rows `4..4 + C` the class scores 0..1. Multi-label:
/// every class with `score >= thresholds[class]` becomes a candidate. `C` is
/// `thresholds.len()`. Order: classes ascending, then anchors ascending. Boxes with
/// non-finite corners are dropped.
pub fn decode_yolov8(
    output: ArrayView3<f32>,
    thresholds: &ClassThresholds,
    out: &mut Vec<Candidate>,
) -> Result<(), DecodeError> {
    out.clear();
    yolov8_anchor_count(output.shape(), thresholds.len())?;
    let rows = output.index_axis(Axis(0), 0);
    let box_at = |anchor: usize| {
        Rect::from_center(
            rows[[0, anchor]],
            rows[[1, anchor]],
            rows[[2, anchor]],
            rows[[3, anchor]],
        )
    };
    // Class-major: each class row is contiguous in the usual layout.
    for (class_index, threshold) in thresholds.iter().enumerate() {
        for (anchor, &score) in rows.row(4 + class_index).iter().enumerate() {
            if score >= *threshold {
                push_candidate(class_index, score, box_at(anchor), out);
            }
        }
    }
    Ok(())
}

/// Decodes a YOLOv5 output `[1, N, 5 + C]` into `out` (cleared first): columns are
/// `cx, cy, w, h` in input pixels, objectness, then C class probabilities; a class's
/// score is `objectness * probability`. Multi-label like [`decode_yolov8`]. `C` is
/// `thresholds.len()`. Order: anchors ascending, then classes ascending. Scores are
/// assumed 0..1: an anchor whose objectness is below every threshold is skipped.
pub fn decode_yolov5(
    output: ArrayView3<f32>,
    thresholds: &ClassThresholds,
    out: &mut Vec<Candidate>,
) -> Result<(), DecodeError> {
    out.clear();
    yolov5_anchor_count(output.shape(), thresholds.len())?;
    let lowest_threshold = thresholds.iter().copied().fold(f32::INFINITY, f32::min);
    for anchor in output.index_axis(Axis(0), 0).rows() {
        let objectness = anchor[4];
        if objectness < lowest_threshold || objectness.is_nan() {
            continue;
        }
        let bbox = Rect::from_center(anchor[0], anchor[1], anchor[2], anchor[3]);
        let scores = anchor
            .iter()
            .skip(5)
            .map(|probability| objectness * probability);
        push_passing_classes(bbox, scores, thresholds, out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn candidate(
        class_index: usize,
        score: f32,
        center: (f32, f32),
        size: (f32, f32),
    ) -> Candidate {
        Candidate {
            class_index,
            score,
            bbox: Rect::from_center(center.0, center.1, size.0, size.1),
        }
    }

    /// Anchors as rows: `cx, cy, w, h, class scores...`.
    fn yolov8_output(anchors: &[Vec<f32>]) -> Array3<f32> {
        let rows = anchors.first().map_or(0, Vec::len);
        Array3::from_shape_fn([1, rows, anchors.len()], |(_, row, anchor)| {
            anchors[anchor][row]
        })
    }

    /// Anchors as rows: `cx, cy, w, h, objectness, class probabilities...`.
    fn yolov5_output(anchors: &[Vec<f32>]) -> Array3<f32> {
        let columns = anchors.first().map_or(0, Vec::len);
        Array3::from_shape_fn([1, anchors.len(), columns], |(_, anchor, column)| {
            anchors[anchor][column]
        })
    }

    struct Case {
        name: &'static str,
        anchors: Vec<Vec<f32>>,
        thresholds: Vec<f32>,
        expected: Vec<Candidate>,
    }

    #[test]
    fn decodes_yolov8_outputs() {
        let anchors = vec![
            vec![10.0, 20.0, 4.0, 6.0, 0.9, 0.1],
            vec![50.0, 50.0, 10.0, 10.0, 0.6, 0.7],
            vec![1.0, 1.0, 2.0, 2.0, 0.2, 0.3],
        ];
        let cases = vec![
            Case {
                name: "multi-label, class-major order",
                anchors: anchors.clone(),
                thresholds: vec![0.5, 0.5],
                expected: vec![
                    candidate(0, 0.9, (10.0, 20.0), (4.0, 6.0)),
                    candidate(0, 0.6, (50.0, 50.0), (10.0, 10.0)),
                    candidate(1, 0.7, (50.0, 50.0), (10.0, 10.0)),
                ],
            },
            Case {
                name: "per-class thresholds",
                anchors: anchors.clone(),
                thresholds: vec![0.95, 0.3],
                expected: vec![
                    candidate(1, 0.7, (50.0, 50.0), (10.0, 10.0)),
                    candidate(1, 0.3, (1.0, 1.0), (2.0, 2.0)),
                ],
            },
            Case {
                name: "non-finite boxes and NaN scores dropped",
                anchors: vec![
                    vec![f32::NAN, 20.0, 4.0, 6.0, 0.9, 0.9],
                    vec![10.0, 20.0, f32::INFINITY, 6.0, 0.9, 0.9],
                    vec![10.0, 20.0, 4.0, 6.0, f32::NAN, 0.8],
                ],
                thresholds: vec![0.5, 0.5],
                expected: vec![candidate(1, 0.8, (10.0, 20.0), (4.0, 6.0))],
            },
            Case {
                name: "no anchors",
                anchors: vec![],
                thresholds: vec![],
                expected: vec![],
            },
        ];
        for case in cases {
            let output = if case.anchors.is_empty() {
                Array3::zeros([1, 4 + case.thresholds.len(), 0])
            } else {
                yolov8_output(&case.anchors)
            };
            let mut out = vec![candidate(7, 1.0, (0.0, 0.0), (1.0, 1.0))];
            let result = decode_yolov8(output.view(), &case.thresholds, &mut out);
            assert_eq!(result, Ok(()), "case `{}`", case.name);
            assert_eq!(out, case.expected, "case `{}`", case.name);

            // The same data in anchor-major memory, viewed as [1, 4 + C, N].
            let mut transposed = Array3::zeros([1, output.shape()[2], output.shape()[1]]);
            transposed.assign(&output.view().permuted_axes([0, 2, 1]));
            let result = decode_yolov8(
                transposed.view().permuted_axes([0, 2, 1]),
                &case.thresholds,
                &mut out,
            );
            assert_eq!(result, Ok(()), "case `{}` (transposed memory)", case.name);
            assert_eq!(
                out, case.expected,
                "case `{}` (transposed memory)",
                case.name
            );
        }
    }

    #[test]
    fn decodes_yolov5_outputs() {
        let anchors = vec![
            vec![10.0, 20.0, 4.0, 6.0, 0.5, 0.8, 0.2],
            vec![50.0, 50.0, 10.0, 10.0, 1.0, 0.6, 0.7],
            vec![1.0, 1.0, 2.0, 2.0, 0.1, 1.0, 1.0],
        ];
        let cases = vec![
            Case {
                name: "score is objectness times class probability, multi-label",
                anchors: anchors.clone(),
                thresholds: vec![0.3, 0.5],
                expected: vec![
                    candidate(0, 0.5 * 0.8, (10.0, 20.0), (4.0, 6.0)),
                    candidate(0, 0.6, (50.0, 50.0), (10.0, 10.0)),
                    candidate(1, 0.7, (50.0, 50.0), (10.0, 10.0)),
                ],
            },
            Case {
                name: "low objectness is skipped despite certain classes",
                anchors: anchors.clone(),
                thresholds: vec![0.65, 0.65],
                expected: vec![candidate(1, 0.7, (50.0, 50.0), (10.0, 10.0))],
            },
            Case {
                name: "zero thresholds keep everything",
                anchors: anchors.clone(),
                thresholds: vec![0.0, 0.0],
                expected: vec![
                    candidate(0, 0.5 * 0.8, (10.0, 20.0), (4.0, 6.0)),
                    candidate(1, 0.5 * 0.2, (10.0, 20.0), (4.0, 6.0)),
                    candidate(0, 0.6, (50.0, 50.0), (10.0, 10.0)),
                    candidate(1, 0.7, (50.0, 50.0), (10.0, 10.0)),
                    candidate(0, 0.1, (1.0, 1.0), (2.0, 2.0)),
                    candidate(1, 0.1, (1.0, 1.0), (2.0, 2.0)),
                ],
            },
            Case {
                name: "NaN objectness and non-finite boxes dropped",
                anchors: vec![
                    vec![10.0, 20.0, 4.0, 6.0, f32::NAN, 0.8, 0.8],
                    vec![10.0, f32::NEG_INFINITY, 4.0, 6.0, 0.9, 0.8, 0.8],
                ],
                thresholds: vec![0.3, 0.3],
                expected: vec![],
            },
        ];
        for case in cases {
            let output = yolov5_output(&case.anchors);
            let mut out = vec![candidate(7, 1.0, (0.0, 0.0), (1.0, 1.0))];
            let result = decode_yolov5(output.view(), &case.thresholds, &mut out);
            assert_eq!(result, Ok(()), "case `{}`", case.name);
            assert_eq!(out, case.expected, "case `{}`", case.name);
        }
    }

    #[test]
    fn shape_errors_name_expected_and_actual() {
        struct ErrorCase {
            name: &'static str,
            shape: [usize; 3],
            class_count: usize,
            yolov8: bool,
            message: &'static str,
        }
        let cases = vec![
            ErrorCase {
                name: "v8 class rows differ",
                shape: [1, 84, 8400],
                class_count: 2,
                yolov8: true,
                message: "output `yolov8` has shape [1, 84, 8400], expected [1, 6, N] (4 box values + 2 classes, N anchors)",
            },
            ErrorCase {
                name: "v8 batch of two",
                shape: [2, 6, 10],
                class_count: 2,
                yolov8: true,
                message: "output `yolov8` has shape [2, 6, 10], expected [1, 6, N] (4 box values + 2 classes, N anchors)",
            },
            ErrorCase {
                name: "v8 given a v5 layout",
                shape: [1, 10, 6],
                class_count: 2,
                yolov8: true,
                message: "output `yolov8` has shape [1, 10, 6], expected [1, 6, N] (4 box values + 2 classes, N anchors)",
            },
            ErrorCase {
                name: "v5 class columns differ",
                shape: [1, 25200, 85],
                class_count: 2,
                yolov8: false,
                message: "output `yolov5` has shape [1, 25200, 85], expected [1, N, 7] (N anchors, 4 box values + objectness + 2 classes)",
            },
            ErrorCase {
                name: "v5 batch of two",
                shape: [2, 10, 7],
                class_count: 2,
                yolov8: false,
                message: "output `yolov5` has shape [2, 10, 7], expected [1, N, 7] (N anchors, 4 box values + objectness + 2 classes)",
            },
        ];
        for case in cases {
            let output = Array3::<f32>::zeros(case.shape);
            let thresholds = vec![0.5; case.class_count];
            let mut out = vec![candidate(7, 1.0, (0.0, 0.0), (1.0, 1.0))];
            let result = if case.yolov8 {
                decode_yolov8(output.view(), &thresholds, &mut out)
            } else {
                decode_yolov5(output.view(), &thresholds, &mut out)
            };
            let error = result.expect_err(case.name);
            assert!(
                matches!(error, DecodeError::ShapeMismatch { .. }),
                "case `{}`: {error:?}",
                case.name
            );
            assert_eq!(error.to_string(), case.message, "case `{}`", case.name);
            assert!(out.is_empty(), "case `{}`: out is cleared", case.name);
        }
    }

    #[test]
    fn anchor_counts_from_valid_shapes() {
        assert_eq!(yolov8_anchor_count(&[1, 84, 8400], 80), Ok(8400));
        assert_eq!(yolov5_anchor_count(&[1, 25200, 85], 80), Ok(25200));
        assert!(yolov8_anchor_count(&[1, 84], 80).is_err());
        assert!(yolov5_anchor_count(&[], 80).is_err());
    }
}
