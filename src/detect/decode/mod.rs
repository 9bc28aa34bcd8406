//! Raw detector outputs → [`Candidate`]s in model-input pixels, before NMS.
//!
//! Decoders are pure functions over `ndarray` views; every shape is checked first and
//! mismatches are reported as [`DecodeError`]s, never panics.

pub mod nanodet;
pub mod yolo;

pub use nanodet::{NanodetLevel, decode_nanodet};
pub use yolo::{decode_yolov5, decode_yolov8};

use crate::geometry::Rect;

/// One candidate before NMS: class index into the model's labels, score 0..1, box in
/// model-input pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub class_index: usize,
    pub score: f32,
    pub bbox: Rect,
}

/// Per-class score thresholds, indexed by class; candidates below their class's
/// threshold are dropped (a score equal to the threshold passes). Its length is the
/// model's class count.
pub type ClassThresholds = [f32];

/// Why a model output could not be decoded.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum DecodeError {
    /// `expected` is written like a shape, with letters for free dimensions,
    /// e.g. `[1, 84, N]`.
    #[error("output `{output}` has shape {actual:?}, expected {expected}")]
    ShapeMismatch {
        output: String,
        actual: Vec<usize>,
        expected: String,
    },
    #[error("NanoDet level {level} has stride 0")]
    ZeroStride { level: usize },
    #[error("NanoDet distribution needs at least one bin, got 0")]
    ZeroBins,
}

/// Appends one candidate per class whose score passes its threshold, in class order,
/// all sharing `bbox`.
fn push_passing_classes(
    bbox: Rect,
    scores: impl Iterator<Item = f32>,
    thresholds: &ClassThresholds,
    out: &mut Vec<Candidate>,
) {
    for (class_index, (score, threshold)) in scores.zip(thresholds).enumerate() {
        if score >= *threshold {
            push_candidate(class_index, score, bbox, out);
        }
    }
}

/// Appends a candidate unless its box has a non-finite corner (it would poison NMS).
fn push_candidate(class_index: usize, score: f32, bbox: Rect, out: &mut Vec<Candidate>) {
    let corners = [bbox.x1, bbox.y1, bbox.x2, bbox.y2];
    if corners.iter().all(|corner| corner.is_finite()) {
        out.push(Candidate {
            class_index,
            score,
            bbox,
        });
    }
}
