//! Plain 2-D geometry shared by detection and tracking.
//!
//! Everything here is pure arithmetic on `f32` and never panics, whatever the input
//! (NaN, infinities, inverted corners): degenerate boxes simply have zero area.

pub mod shapes;
pub use shapes::{Point, Polygon, Polyline};

use serde::{Deserialize, Serialize};

/// Axis-aligned box by corners, `x1 <= x2`, `y1 <= y2`.
///
/// The unit depends on context: model-input pixels, source-image pixels, or
/// normalised `0..1` coordinates. The invariant is expected, not enforced: a box with
/// inverted corners is treated as degenerate (zero width, height and area).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rect {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl Rect {
    /// Box from its corners.
    pub const fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Rect {
        Rect { x1, y1, x2, y2 }
    }

    /// Box from its top-left corner and size (`width`, `height` expected `>= 0`).
    pub fn from_xywh(x: f32, y: f32, width: f32, height: f32) -> Rect {
        Rect {
            x1: x,
            y1: y,
            x2: x + width,
            y2: y + height,
        }
    }

    /// Box from its centre and size (`width`, `height` expected `>= 0`).
    pub fn from_center(center_x: f32, center_y: f32, width: f32, height: f32) -> Rect {
        let half_width = width * 0.5;
        let half_height = height * 0.5;
        Rect {
            x1: center_x - half_width,
            y1: center_y - half_height,
            x2: center_x + half_width,
            y2: center_y + half_height,
        }
    }

    /// `x2 - x1`, or 0 when the box is inverted or not a number.
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    /// `y2 - y1`, or 0 when the box is inverted or not a number.
    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    /// `width * height`; 0 for degenerate boxes.
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// `[x1, y1, width, height]`, with the size as returned by [`Rect::width`] and
    /// [`Rect::height`] (never negative).
    pub fn to_xywh(&self) -> [f32; 4] {
        [self.x1, self.y1, self.width(), self.height()]
    }

    /// Area of the overlap of two boxes; 0 when they are disjoint, only touch, or
    /// either is degenerate.
    pub fn intersection_area(&self, other: &Rect) -> f32 {
        let has_extent = |rect: &Rect| rect.width() > 0.0 && rect.height() > 0.0;
        if !has_extent(self) || !has_extent(other) {
            return 0.0;
        }
        let overlap_width = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let overlap_height = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        overlap_width * overlap_height
    }

    /// Intersection over union in `0..=1`; 0 when the union is empty (or not finite).
    pub fn iou(&self, other: &Rect) -> f32 {
        let intersection = self.intersection_area(other);
        let union = self.area() + other.area() - intersection;
        if union > 0.0 && union.is_finite() {
            (intersection / union).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The box with every coordinate clamped into `0..=width` and `0..=height`
    /// (negative or NaN limits count as 0; NaN coordinates become 0).
    pub fn clamp_to(&self, width: f32, height: f32) -> Rect {
        let width = width.max(0.0);
        let height = height.max(0.0);
        let clamp_x = |value: f32| value.max(0.0).min(width);
        let clamp_y = |value: f32| value.max(0.0).min(height);
        Rect {
            x1: clamp_x(self.x1),
            y1: clamp_y(self.y1),
            x2: clamp_x(self.x2),
            y2: clamp_y(self.y2),
        }
    }

    /// True when all corners are finite and the box has a positive area
    /// (`x2 > x1` and `y2 > y1`).
    pub fn is_valid(&self) -> bool {
        [self.x1, self.y1, self.x2, self.y2]
            .iter()
            .all(|value| value.is_finite())
            && self.x2 > self.x1
            && self.y2 > self.y1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct PairCase {
        name: &'static str,
        first: Rect,
        second: Rect,
        intersection: f32,
        iou: f32,
    }

    #[test]
    fn intersection_and_iou_from_table() {
        let cases = vec![
            PairCase {
                name: "disjoint",
                first: Rect::new(0.0, 0.0, 1.0, 1.0),
                second: Rect::new(5.0, 5.0, 6.0, 6.0),
                intersection: 0.0,
                iou: 0.0,
            },
            PairCase {
                name: "identical",
                first: Rect::new(1.0, 2.0, 5.0, 6.0),
                second: Rect::new(1.0, 2.0, 5.0, 6.0),
                intersection: 16.0,
                iou: 1.0,
            },
            PairCase {
                name: "contained",
                first: Rect::new(0.0, 0.0, 4.0, 4.0),
                second: Rect::new(1.0, 1.0, 3.0, 3.0),
                intersection: 4.0,
                iou: 0.25,
            },
            PairCase {
                name: "half overlap",
                first: Rect::new(0.0, 0.0, 3.0, 1.0),
                second: Rect::new(1.0, 0.0, 4.0, 1.0),
                intersection: 2.0,
                iou: 0.5,
            },
            PairCase {
                name: "touching edges",
                first: Rect::new(0.0, 0.0, 2.0, 2.0),
                second: Rect::new(2.0, 0.0, 4.0, 2.0),
                intersection: 0.0,
                iou: 0.0,
            },
            PairCase {
                name: "touching corners",
                first: Rect::new(0.0, 0.0, 2.0, 2.0),
                second: Rect::new(2.0, 2.0, 4.0, 4.0),
                intersection: 0.0,
                iou: 0.0,
            },
            PairCase {
                name: "degenerate point inside box",
                first: Rect::new(1.0, 1.0, 1.0, 1.0),
                second: Rect::new(0.0, 0.0, 2.0, 2.0),
                intersection: 0.0,
                iou: 0.0,
            },
            PairCase {
                name: "both degenerate",
                first: Rect::new(1.0, 1.0, 1.0, 1.0),
                second: Rect::new(1.0, 1.0, 1.0, 1.0),
                intersection: 0.0,
                iou: 0.0,
            },
            PairCase {
                name: "inverted box",
                first: Rect::new(3.0, 3.0, 0.0, 0.0),
                second: Rect::new(0.0, 0.0, 3.0, 3.0),
                intersection: 0.0,
                iou: 0.0,
            },
            PairCase {
                name: "NaN corner",
                first: Rect::new(f32::NAN, 0.0, 2.0, 2.0),
                second: Rect::new(0.0, 0.0, 2.0, 2.0),
                intersection: 0.0,
                iou: 0.0,
            },
            PairCase {
                name: "infinite box",
                first: Rect::new(f32::NEG_INFINITY, 0.0, f32::INFINITY, 2.0),
                second: Rect::new(0.0, 0.0, 2.0, 2.0),
                intersection: 4.0,
                iou: 0.0,
            },
        ];
        for case in cases {
            for (order, first, second) in [
                ("a,b", case.first, case.second),
                ("b,a", case.second, case.first),
            ] {
                let intersection = first.intersection_area(&second);
                let iou = first.iou(&second);
                assert_eq!(
                    intersection, case.intersection,
                    "case `{}` ({order}): intersection",
                    case.name
                );
                assert_eq!(iou, case.iou, "case `{}` ({order}): iou", case.name);
            }
        }
    }

    struct ShapeCase {
        name: &'static str,
        rect: Rect,
        width: f32,
        height: f32,
        area: f32,
        valid: bool,
    }

    #[test]
    fn size_area_and_validity_from_table() {
        let cases = vec![
            ShapeCase {
                name: "normal",
                rect: Rect::new(1.0, 2.0, 4.0, 7.0),
                width: 3.0,
                height: 5.0,
                area: 15.0,
                valid: true,
            },
            ShapeCase {
                name: "zero width",
                rect: Rect::new(1.0, 2.0, 1.0, 7.0),
                width: 0.0,
                height: 5.0,
                area: 0.0,
                valid: false,
            },
            ShapeCase {
                name: "inverted",
                rect: Rect::new(4.0, 7.0, 1.0, 2.0),
                width: 0.0,
                height: 0.0,
                area: 0.0,
                valid: false,
            },
            ShapeCase {
                name: "NaN",
                rect: Rect::new(f32::NAN, 2.0, 4.0, 7.0),
                width: 0.0,
                height: 5.0,
                area: 0.0,
                valid: false,
            },
            ShapeCase {
                name: "infinite",
                rect: Rect::new(0.0, 0.0, f32::INFINITY, 1.0),
                width: f32::INFINITY,
                height: 1.0,
                area: f32::INFINITY,
                valid: false,
            },
        ];
        for case in cases {
            assert_eq!(case.rect.width(), case.width, "case `{}`: width", case.name);
            assert_eq!(
                case.rect.height(),
                case.height,
                "case `{}`: height",
                case.name
            );
            assert_eq!(case.rect.area(), case.area, "case `{}`: area", case.name);
            assert_eq!(
                case.rect.is_valid(),
                case.valid,
                "case `{}`: is_valid",
                case.name
            );
        }
    }

    struct ConstructorCase {
        name: &'static str,
        built: Rect,
        expected: Rect,
    }

    #[test]
    fn constructors_from_table() {
        let cases = vec![
            ConstructorCase {
                name: "from_xywh",
                built: Rect::from_xywh(10.0, 20.0, 30.0, 40.0),
                expected: Rect::new(10.0, 20.0, 40.0, 60.0),
            },
            ConstructorCase {
                name: "from_center",
                built: Rect::from_center(10.0, 20.0, 4.0, 6.0),
                expected: Rect::new(8.0, 17.0, 12.0, 23.0),
            },
            ConstructorCase {
                name: "from_center zero size",
                built: Rect::from_center(1.0, 1.0, 0.0, 0.0),
                expected: Rect::new(1.0, 1.0, 1.0, 1.0),
            },
            ConstructorCase {
                name: "clamp inside is unchanged",
                built: Rect::new(1.0, 2.0, 3.0, 4.0).clamp_to(10.0, 10.0),
                expected: Rect::new(1.0, 2.0, 3.0, 4.0),
            },
            ConstructorCase {
                name: "clamp overflowing both sides",
                built: Rect::new(-5.0, -1.0, 15.0, 30.0).clamp_to(10.0, 20.0),
                expected: Rect::new(0.0, 0.0, 10.0, 20.0),
            },
            ConstructorCase {
                name: "clamp NaN and infinities",
                built: Rect::new(f32::NAN, f32::NEG_INFINITY, f32::INFINITY, 3.0)
                    .clamp_to(8.0, 6.0),
                expected: Rect::new(0.0, 0.0, 8.0, 3.0),
            },
            ConstructorCase {
                name: "clamp to negative limits",
                built: Rect::new(1.0, 1.0, 2.0, 2.0).clamp_to(-1.0, f32::NAN),
                expected: Rect::new(0.0, 0.0, 0.0, 0.0),
            },
        ];
        for case in cases {
            assert_eq!(case.built, case.expected, "case `{}`", case.name);
        }
    }

    #[test]
    fn xywh_round_trip() {
        let rect = Rect::from_xywh(1.5, 2.5, 3.0, 4.0);
        assert_eq!(rect.to_xywh(), [1.5, 2.5, 3.0, 4.0]);
    }
}
