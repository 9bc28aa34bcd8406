//! NanoDet (GFL head) decoding: per-level class scores and distribution-focal box
//! distances.

use ndarray::ArrayView2;

use super::{Candidate, ClassThresholds, DecodeError, push_passing_classes};
use crate::geometry::Rect;

/// One feature level of a NanoDet head.
#[derive(Clone, Debug)]
pub struct NanodetLevel<'a> {
    /// Input pixels per grid cell, `> 0`.
    pub stride: usize,
    /// `[N, C]` class scores, already 0..1 (sigmoid applied by the model).
    pub scores: ArrayView2<'a, f32>,
    /// `[N, 4 * bins]` distance logits: left, top, right, bottom, `bins` each.
    pub boxes: ArrayView2<'a, f32>,
}

/// Grid size of a level: `(ceil(input_width / stride), ceil(input_height / stride))`.
/// `stride` must be positive.
fn grid_size(input_width: usize, input_height: usize, stride: usize) -> (usize, usize) {
    (input_width.div_ceil(stride), input_height.div_ceil(stride))
}

/// Checks one level's shapes against the grid, `bins` and the class count.
/// Returns the grid width.
pub fn check_nanodet_level(
    level_index: usize,
    level: &NanodetLevel,
    input_width: usize,
    input_height: usize,
    bins: usize,
    class_count: usize,
) -> Result<usize, DecodeError> {
    if level.stride == 0 {
        return Err(DecodeError::ZeroStride { level: level_index });
    }
    if bins == 0 {
        return Err(DecodeError::ZeroBins);
    }
    let (grid_width, grid_height) = grid_size(input_width, input_height, level.stride);
    let cell_count = grid_width.saturating_mul(grid_height);
    let checks = [
        ("scores", level.scores.shape(), [cell_count, class_count]),
        (
            "boxes",
            level.boxes.shape(),
            [cell_count, bins.saturating_mul(4)],
        ),
    ];
    for (name, actual, expected) in checks {
        if actual != expected {
            return Err(DecodeError::ShapeMismatch {
                output: format!("level {level_index} (stride {}) {name}", level.stride),
                actual: actual.to_vec(),
                expected: format!("{expected:?}"),
            });
        }
    }
    Ok(grid_width)
}

/// Expected value of the softmax distribution over `logits`, in bins:
/// `sum(i * p_i)` with `p = softmax(logits)`. Numerically stable (max subtracted).
fn distribution_mean(logits: impl Iterator<Item = f32> + Clone) -> f32 {
    let maximum = logits.clone().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0.0;
    let mut weighted = 0.0;
    for (bin, logit) in logits.enumerate() {
        let weight = (logit - maximum).exp();
        total += weight;
        weighted += bin as f32 * weight;
    }
    weighted / total
}

/// Decodes a NanoDet GFL head into `out` (cleared first), multi-label: each class of
/// a cell whose score is `>= thresholds[class]` becomes a candidate, all sharing the
/// cell's box. Order: levels as given, cells row-major, classes ascending.
///
/// Per level, the grid is `ceil(input_width / stride)` x `ceil(input_height / stride)`
/// and must have exactly N cells; cell `n = y * grid_width + x` is centred at
/// `((x + center_offset) * stride, (y + center_offset) * stride)` input pixels.
/// Each side's distance (left, top, right, bottom: values `[k * bins, (k + 1) * bins)`)
/// is the mean of the softmax over its bins times `stride`; the box is
/// `(cx - left, cy - top, cx + right, cy + bottom)` in input pixels. The class count
/// is `thresholds.len()`. Boxes with non-finite corners are dropped.
pub fn decode_nanodet(
    levels: &[NanodetLevel],
    input_width: usize,
    input_height: usize,
    bins: usize,
    center_offset: f32,
    thresholds: &ClassThresholds,
    out: &mut Vec<Candidate>,
) -> Result<(), DecodeError> {
    out.clear();
    let grid_widths = levels
        .iter()
        .enumerate()
        .map(|(index, level)| {
            check_nanodet_level(
                index,
                level,
                input_width,
                input_height,
                bins,
                thresholds.len(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (level, grid_width) in levels.iter().zip(grid_widths) {
        let stride = level.stride as f32;
        for (cell, (scores, box_logits)) in level
            .scores
            .rows()
            .into_iter()
            .zip(level.boxes.rows())
            .enumerate()
        {
            let passes = scores
                .iter()
                .zip(thresholds)
                .any(|(score, threshold)| score >= threshold);
            if !passes {
                continue;
            }
            let center_x = ((cell % grid_width) as f32 + center_offset) * stride;
            let center_y = ((cell / grid_width) as f32 + center_offset) * stride;
            let side = |index: usize| {
                distribution_mean(box_logits.iter().copied().skip(index * bins).take(bins)) * stride
            };
            let bbox = Rect::new(
                center_x - side(0),
                center_y - side(1),
                center_x + side(2),
                center_y + side(3),
            );
            push_passing_classes(bbox, scores.iter().copied(), thresholds, out);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ArrayView1};

    const BINS: usize = 11;

    /// A cell with non-default scores and box logits.
    struct Cell {
        x: usize,
        y: usize,
        scores: Vec<f32>,
        logits: Vec<f32>,
    }

    /// Logits whose softmax is exactly one-hot at `distances` (in bins) per side.
    fn one_hot(distances: [usize; 4]) -> Vec<f32> {
        let mut logits = vec![0.0; 4 * BINS];
        for (side, distance) in distances.into_iter().enumerate() {
            logits[side * BINS + distance] = 1000.0;
        }
        logits
    }

    /// Owned `(stride, scores, boxes)` for a level whose other cells score 0.
    fn level(
        stride: usize,
        input_width: usize,
        input_height: usize,
        class_count: usize,
        cells: Vec<Cell>,
    ) -> (usize, Array2<f32>, Array2<f32>) {
        let (grid_width, grid_height) = grid_size(input_width, input_height, stride);
        let mut scores = Array2::zeros([grid_width * grid_height, class_count]);
        let mut boxes = Array2::zeros([grid_width * grid_height, 4 * BINS]);
        for cell in cells {
            let index = cell.y * grid_width + cell.x;
            scores
                .row_mut(index)
                .assign(&ArrayView1::from(&cell.scores));
            boxes.row_mut(index).assign(&ArrayView1::from(&cell.logits));
        }
        (stride, scores, boxes)
    }

    fn views(levels: &[(usize, Array2<f32>, Array2<f32>)]) -> Vec<NanodetLevel<'_>> {
        levels
            .iter()
            .map(|(stride, scores, boxes)| NanodetLevel {
                stride: *stride,
                scores: scores.view(),
                boxes: boxes.view(),
            })
            .collect()
    }

    fn candidate(class_index: usize, score: f32, x1: f32, y1: f32, x2: f32, y2: f32) -> Candidate {
        Candidate {
            class_index,
            score,
            bbox: Rect::new(x1, y1, x2, y2),
        }
    }

    struct Case {
        name: &'static str,
        input_size: (usize, usize),
        center_offset: f32,
        thresholds: Vec<f32>,
        levels: Vec<(usize, Array2<f32>, Array2<f32>)>,
        expected: Vec<Candidate>,
    }

    #[test]
    fn decodes_hand_built_levels() {
        let cases = vec![
            Case {
                name: "one-hot bins give integer distances",
                input_size: (32, 32),
                center_offset: 0.5,
                thresholds: vec![0.5, 0.5],
                levels: vec![level(
                    8,
                    32,
                    32,
                    2,
                    vec![Cell {
                        x: 1,
                        y: 2,
                        scores: vec![0.9, 0.0],
                        logits: one_hot([1, 2, 3, 4]),
                    }],
                )],
                // Centre (12, 20); distances 8, 16, 24, 32.
                expected: vec![candidate(0, 0.9, 4.0, 4.0, 36.0, 52.0)],
            },
            Case {
                name: "uniform bins give mean 5 * stride",
                input_size: (32, 32),
                center_offset: 0.5,
                thresholds: vec![0.5],
                levels: vec![level(
                    16,
                    32,
                    32,
                    1,
                    vec![Cell {
                        x: 1,
                        y: 0,
                        scores: vec![0.7],
                        logits: vec![0.25; 4 * BINS],
                    }],
                )],
                expected: vec![candidate(
                    0,
                    0.7,
                    24.0 - 80.0,
                    8.0 - 80.0,
                    24.0 + 80.0,
                    8.0 + 80.0,
                )],
            },
            Case {
                name: "grid rounds up on inputs not divisible by the stride",
                input_size: (40, 24),
                center_offset: 0.5,
                thresholds: vec![0.5],
                // Grid 3x2; the last cell (2, 1) is centred at (40, 24).
                levels: vec![level(
                    16,
                    40,
                    24,
                    1,
                    vec![Cell {
                        x: 2,
                        y: 1,
                        scores: vec![0.6],
                        logits: one_hot([1, 1, 1, 1]),
                    }],
                )],
                expected: vec![candidate(0, 0.6, 24.0, 8.0, 56.0, 40.0)],
            },
            Case {
                name: "center offset 0 puts centres on grid corners",
                input_size: (32, 32),
                center_offset: 0.0,
                thresholds: vec![0.5],
                levels: vec![level(
                    8,
                    32,
                    32,
                    1,
                    vec![Cell {
                        x: 3,
                        y: 1,
                        scores: vec![0.6],
                        logits: one_hot([0, 0, 1, 2]),
                    }],
                )],
                expected: vec![candidate(0, 0.6, 24.0, 8.0, 32.0, 24.0)],
            },
            Case {
                name: "each stride maps its cells to its own centres",
                input_size: (64, 64),
                center_offset: 0.5,
                thresholds: vec![0.5],
                levels: vec![
                    level(
                        8,
                        64,
                        64,
                        1,
                        vec![Cell {
                            x: 7,
                            y: 0,
                            scores: vec![0.8],
                            logits: one_hot([1, 1, 1, 1]),
                        }],
                    ),
                    level(
                        16,
                        64,
                        64,
                        1,
                        vec![Cell {
                            x: 0,
                            y: 3,
                            scores: vec![0.7],
                            logits: one_hot([1, 1, 1, 1]),
                        }],
                    ),
                    level(
                        32,
                        64,
                        64,
                        1,
                        vec![Cell {
                            x: 1,
                            y: 1,
                            scores: vec![0.6],
                            logits: one_hot([1, 1, 1, 1]),
                        }],
                    ),
                ],
                expected: vec![
                    // Centre (60, 4), distance 8.
                    candidate(0, 0.8, 52.0, -4.0, 68.0, 12.0),
                    // Centre (8, 56), distance 16.
                    candidate(0, 0.7, -8.0, 40.0, 24.0, 72.0),
                    // Centre (48, 48), distance 32.
                    candidate(0, 0.6, 16.0, 16.0, 80.0, 80.0),
                ],
            },
            Case {
                name: "per-class thresholds filter each class",
                input_size: (16, 16),
                center_offset: 0.5,
                thresholds: vec![0.5, 0.9, 0.2],
                levels: vec![level(
                    8,
                    16,
                    16,
                    3,
                    vec![
                        Cell {
                            x: 0,
                            y: 0,
                            scores: vec![0.6, 0.8, 0.1],
                            logits: one_hot([0, 0, 0, 0]),
                        },
                        Cell {
                            x: 1,
                            y: 0,
                            scores: vec![0.4, 0.95, 0.3],
                            logits: one_hot([0, 0, 0, 0]),
                        },
                    ],
                )],
                expected: vec![
                    candidate(0, 0.6, 4.0, 4.0, 4.0, 4.0),
                    candidate(1, 0.95, 12.0, 4.0, 12.0, 4.0),
                    candidate(2, 0.3, 12.0, 4.0, 12.0, 4.0),
                ],
            },
            Case {
                name: "score equal to the threshold passes",
                input_size: (8, 8),
                center_offset: 0.5,
                thresholds: vec![0.5],
                levels: vec![level(
                    8,
                    8,
                    8,
                    1,
                    vec![Cell {
                        x: 0,
                        y: 0,
                        scores: vec![0.5],
                        logits: one_hot([0, 0, 0, 0]),
                    }],
                )],
                expected: vec![candidate(0, 0.5, 4.0, 4.0, 4.0, 4.0)],
            },
            Case {
                name: "multi-label cell yields one candidate per passing class",
                input_size: (8, 8),
                center_offset: 0.5,
                thresholds: vec![0.5, 0.5],
                levels: vec![level(
                    8,
                    8,
                    8,
                    2,
                    vec![Cell {
                        x: 0,
                        y: 0,
                        scores: vec![0.7, 0.8],
                        logits: one_hot([1, 1, 1, 1]),
                    }],
                )],
                expected: vec![
                    candidate(0, 0.7, -4.0, -4.0, 12.0, 12.0),
                    candidate(1, 0.8, -4.0, -4.0, 12.0, 12.0),
                ],
            },
            Case {
                name: "NaN scores and NaN logits are dropped",
                input_size: (16, 8),
                center_offset: 0.5,
                thresholds: vec![0.5],
                levels: vec![level(
                    8,
                    16,
                    8,
                    1,
                    vec![
                        Cell {
                            x: 0,
                            y: 0,
                            scores: vec![f32::NAN],
                            logits: one_hot([0, 0, 0, 0]),
                        },
                        Cell {
                            x: 1,
                            y: 0,
                            scores: vec![0.9],
                            logits: vec![f32::NAN; 4 * BINS],
                        },
                    ],
                )],
                expected: vec![],
            },
            Case {
                name: "no levels",
                input_size: (16, 16),
                center_offset: 0.5,
                thresholds: vec![0.5],
                levels: vec![],
                expected: vec![],
            },
        ];
        for case in cases {
            let mut out = vec![candidate(9, 1.0, 0.0, 0.0, 1.0, 1.0)];
            let result = decode_nanodet(
                &views(&case.levels),
                case.input_size.0,
                case.input_size.1,
                BINS,
                case.center_offset,
                &case.thresholds,
                &mut out,
            );
            assert_eq!(result, Ok(()), "case `{}`", case.name);
            assert_eq!(out, case.expected, "case `{}`", case.name);
        }
    }

    #[test]
    fn shape_errors_name_expected_and_actual() {
        struct ErrorCase {
            name: &'static str,
            stride: usize,
            bins: usize,
            scores_shape: [usize; 2],
            boxes_shape: [usize; 2],
            class_count: usize,
            expected: DecodeError,
            message: &'static str,
        }
        let cases = vec![
            ErrorCase {
                name: "too few cells",
                stride: 8,
                bins: BINS,
                scores_shape: [15, 2],
                boxes_shape: [16, 44],
                class_count: 2,
                expected: DecodeError::ShapeMismatch {
                    output: "level 0 (stride 8) scores".to_string(),
                    actual: vec![15, 2],
                    expected: "[16, 2]".to_string(),
                },
                message: "output `level 0 (stride 8) scores` has shape [15, 2], expected [16, 2]",
            },
            ErrorCase {
                name: "class count differs from thresholds",
                stride: 8,
                bins: BINS,
                scores_shape: [16, 3],
                boxes_shape: [16, 44],
                class_count: 2,
                expected: DecodeError::ShapeMismatch {
                    output: "level 0 (stride 8) scores".to_string(),
                    actual: vec![16, 3],
                    expected: "[16, 2]".to_string(),
                },
                message: "output `level 0 (stride 8) scores` has shape [16, 3], expected [16, 2]",
            },
            ErrorCase {
                name: "wrong bin count",
                stride: 8,
                bins: BINS,
                scores_shape: [16, 2],
                boxes_shape: [16, 32],
                class_count: 2,
                expected: DecodeError::ShapeMismatch {
                    output: "level 0 (stride 8) boxes".to_string(),
                    actual: vec![16, 32],
                    expected: "[16, 44]".to_string(),
                },
                message: "output `level 0 (stride 8) boxes` has shape [16, 32], expected [16, 44]",
            },
            ErrorCase {
                name: "box rows differ",
                stride: 8,
                bins: BINS,
                scores_shape: [16, 2],
                boxes_shape: [100, 44],
                class_count: 2,
                expected: DecodeError::ShapeMismatch {
                    output: "level 0 (stride 8) boxes".to_string(),
                    actual: vec![100, 44],
                    expected: "[16, 44]".to_string(),
                },
                message: "output `level 0 (stride 8) boxes` has shape [100, 44], expected [16, 44]",
            },
            ErrorCase {
                name: "zero stride",
                stride: 0,
                bins: BINS,
                scores_shape: [16, 2],
                boxes_shape: [16, 44],
                class_count: 2,
                expected: DecodeError::ZeroStride { level: 0 },
                message: "NanoDet level 0 has stride 0",
            },
            ErrorCase {
                name: "zero bins",
                stride: 8,
                bins: 0,
                scores_shape: [16, 2],
                boxes_shape: [16, 0],
                class_count: 2,
                expected: DecodeError::ZeroBins,
                message: "NanoDet distribution needs at least one bin, got 0",
            },
        ];
        for case in cases {
            let scores = Array2::<f32>::zeros(case.scores_shape);
            let boxes = Array2::<f32>::zeros(case.boxes_shape);
            let levels = [NanodetLevel {
                stride: case.stride,
                scores: scores.view(),
                boxes: boxes.view(),
            }];
            let thresholds = vec![0.5; case.class_count];
            let mut out = vec![candidate(0, 1.0, 0.0, 0.0, 1.0, 1.0)];
            let result = decode_nanodet(&levels, 32, 32, case.bins, 0.5, &thresholds, &mut out);
            let error = result.expect_err(case.name);
            assert_eq!(error, case.expected, "case `{}`", case.name);
            assert_eq!(
                error.to_string(),
                case.message,
                "case `{}`: message",
                case.name
            );
            assert!(out.is_empty(), "case `{}`: out is cleared", case.name);
        }
    }

    #[test]
    fn distribution_mean_from_table() {
        let cases = vec![
            ("one-hot at 3", one_hot([3, 0, 0, 0])[..BINS].to_vec(), 3.0),
            ("uniform", vec![1.0; BINS], 5.0),
            (
                "two equal peaks",
                {
                    let mut logits = vec![-1000.0; BINS];
                    logits[2] = 50.0;
                    logits[6] = 50.0;
                    logits
                },
                4.0,
            ),
            ("huge logits stay finite", vec![1e30; BINS], 5.0),
        ];
        for (name, logits, expected) in cases {
            let mean = distribution_mean(logits.iter().copied());
            assert_eq!(mean, expected, "case `{name}`");
        }
    }
}
