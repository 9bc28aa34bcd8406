//! Points, polygons and polylines in normalised image coordinates: zones and lines.
//!
//! Coordinates are fractions of the frame, `0..=1`, with `x` growing to the right and `y`
//! growing **downwards** (image convention). Constructors validate; the methods are pure
//! arithmetic that never panics, whatever the input (a point that is not a finite number is
//! outside every polygon and on no side of any line).
//!
//! Predicates are computed in `f64` from the `f32` coordinates. [`segments_intersect`] is exact
//! in practice (orientation signs, no tolerance); the "on the line" tests of
//! [`Polygon::contains`] and [`Polyline::side_of`] use [`ON_LINE_EPSILON`].
//!
//! # Sides of a line (public contract)
//! Left and right are seen by a walker going along the polyline from its first point towards
//! its last point **as drawn on the screen** (x right, y down), like walking on a map whose
//! y axis points down. For a line from (0.5, 0.2) to (0.5, 0.95) the walker goes straight down
//! the screen, so their left hand points to the screen's right: points with `x > 0.5` are
//! [`Side::Left`], points with `x < 0.5` are [`Side::Right`]. In formulas: with the segment
//! `a → b` and `z = (bx − ax)(py − ay) − (by − ay)(px − ax)`, `z < 0` is Left and `z > 0` is
//! Right.
//!
//! Points and edges are numbered from 1 in error messages, as a technician counts: edge 1 joins
//! point 1 and point 2, and the last edge of a polygon joins its last point to point 1.

use std::fmt;

/// Distance (in normalised units, about 0.004 px on a 4K frame) within which a point counts as
/// lying on an edge or a line.
pub const ON_LINE_EPSILON: f64 = 1e-6;

/// Polygons with less area than this (normalised units, about 8 px² on a 4K frame) are refused
/// as having no area.
pub const MIN_POLYGON_AREA: f64 = 1e-6;

/// A point in normalised image coordinates (`0..=1`, y down).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub const fn new(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    /// Both coordinates are finite numbers.
    pub fn is_finite(&self) -> bool {
        self.x.is_finite() && self.y.is_finite()
    }

    fn in_unit_square(&self) -> bool {
        (0.0..=1.0).contains(&self.x) && (0.0..=1.0).contains(&self.y)
    }

    fn to_f64(self) -> (f64, f64) {
        (f64::from(self.x), f64::from(self.y))
    }
}

/// The side of a [`Polyline`] a point is on; see the module docs for the convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The walker's left hand (cross product `z < 0` in image coordinates).
    Left,
    /// The walker's right hand (cross product `z > 0` in image coordinates).
    Right,
}

impl Side {
    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }
}

/// Why points do not make a polygon or a polyline. Points and edges are counted from 1.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ShapeError {
    #[error("a polygon needs at least 3 points, got {got}")]
    PolygonTooFewPoints { got: usize },
    #[error("a line needs at least 2 points, got {got}")]
    PolylineTooFewPoints { got: usize },
    #[error("point {index} ({x}, {y}) is outside 0..1 (coordinates are fractions of the frame)")]
    OutsideFrame { index: usize, x: f32, y: f32 },
    #[error("points {first} and {second} are the same ({x}, {y}): leave one out")]
    RepeatedPoint {
        first: usize,
        second: usize,
        x: f32,
        y: f32,
    },
    #[error(
        "the last point repeats the first ({x}, {y}): leave it out, the polygon closes by itself"
    )]
    ClosingPointRepeated { x: f32, y: f32 },
    #[error("the polygon has (almost) no area: its points are (nearly) on one straight line")]
    NoArea,
    #[error(
        "edges {first} and {second} cross (edge N joins point N and the next one): list the \
         points in order around the zone"
    )]
    EdgesCross { first: usize, second: usize },
    #[error(
        "edges {first} and {second} overlap: the outline turns back on itself at point {second}"
    )]
    EdgesOverlap { first: usize, second: usize },
}

/// A simple polygon: at least 3 points in `0..=1`, no two consecutive points equal (the last
/// point is joined to the first; do not repeat it), no edges crossing or touching other than
/// neighbours at their shared point, and an area of at least [`MIN_POLYGON_AREA`]. Either
/// winding order.
#[derive(Clone, Debug, PartialEq)]
pub struct Polygon {
    points: Vec<Point>,
}

/// An open polyline: at least 2 points in `0..=1`, no two consecutive points equal. It may
/// bend; its sides are seen walking from the first point to the last (module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Polyline {
    points: Vec<Point>,
}

impl Polygon {
    /// Validates `points` as a zone outline.
    ///
    /// # Errors
    /// The first problem found, checked in this order: too few points, a point outside `0..1`
    /// (or not a number), two consecutive points equal, no area, edges crossing or overlapping.
    pub fn new(points: Vec<Point>) -> Result<Polygon, ShapeError> {
        let n = points.len();
        if n < 3 {
            return Err(ShapeError::PolygonTooFewPoints { got: n });
        }
        check_in_frame(&points)?;
        check_consecutive_distinct(&points)?;
        if points[0] == points[n - 1] {
            let Point { x, y } = points[0];
            return Err(ShapeError::ClosingPointRepeated { x, y });
        }
        if all_on_one_line(&points) {
            return Err(ShapeError::NoArea);
        }
        let edge = |i: usize| (points[i], points[(i + 1) % n]);
        for i in 0..n {
            // Neighbours share one point; they must not overlap beyond it.
            let (a, b) = edge(i);
            let c = points[(i + 2) % n];
            if turns_back(a, b, c) {
                let (first, second) = (i + 1, (i + 1) % n + 1);
                return Err(ShapeError::EdgesOverlap { first, second });
            }
            // Non-neighbours must not meet at all. Edge `n - 1` neighbours edge 0.
            let last = if i == 0 { n - 1 } else { n };
            for j in (i + 2)..last {
                let (c, d) = edge(j);
                if segments_intersect(a, b, c, d) {
                    return Err(ShapeError::EdgesCross {
                        first: i + 1,
                        second: j + 1,
                    });
                }
            }
        }
        // A thin sliver (crossings are ruled out, so the signed area is the area).
        if signed_area(&points).abs() < MIN_POLYGON_AREA {
            return Err(ShapeError::NoArea);
        }
        Ok(Polygon { points })
    }

    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// True when `p` is inside the polygon **or on its outline** (an edge or a vertex, within
    /// [`ON_LINE_EPSILON`]). False for a point that is not a finite number.
    pub fn contains(&self, p: Point) -> bool {
        if !p.is_finite() {
            return false;
        }
        let n = self.points.len();
        let (px, py) = p.to_f64();
        let mut inside = false;
        for i in 0..n {
            let a = self.points[i];
            let b = self.points[(i + 1) % n];
            if distance_to_segment(p, a, b) <= ON_LINE_EPSILON {
                return true;
            }
            // Even-odd rule: count edges crossing the ray from p to the right (half-open in y so
            // a vertex on the ray is counted once).
            let (ax, ay) = a.to_f64();
            let (bx, by) = b.to_f64();
            if (ay > py) != (by > py) {
                let x_at = ax + (py - ay) * (bx - ax) / (by - ay);
                if px < x_at {
                    inside = !inside;
                }
            }
        }
        inside
    }
}

impl Polyline {
    /// Validates `points` as a counting line.
    ///
    /// # Errors
    /// Fewer than 2 points, a point outside `0..1` (or not a number), two consecutive points
    /// equal.
    pub fn new(points: Vec<Point>) -> Result<Polyline, ShapeError> {
        if points.len() < 2 {
            return Err(ShapeError::PolylineTooFewPoints { got: points.len() });
        }
        check_in_frame(&points)?;
        check_consecutive_distinct(&points)?;
        Ok(Polyline { points })
    }

    pub fn points(&self) -> &[Point] {
        &self.points
    }

    fn segments(&self) -> impl Iterator<Item = (Point, Point)> + '_ {
        self.points.windows(2).map(|w| (w[0], w[1]))
    }

    /// The side of `p`, relative to the segment nearest to `p` (the first one on a tie); `None`
    /// when `p` is within [`ON_LINE_EPSILON`] of that segment's straight line (on the line or
    /// on its extension) or is not a finite number. See the module docs for Left and Right.
    pub fn side_of(&self, p: Point) -> Option<Side> {
        if !p.is_finite() {
            return None;
        }
        let mut nearest: Option<(f64, Point, Point)> = None;
        for (a, b) in self.segments() {
            let distance = distance_to_segment(p, a, b);
            if nearest.is_none_or(|(best, _, _)| distance < best) {
                nearest = Some((distance, a, b));
            }
        }
        let (_, a, b) = nearest?;
        side_of_segment(p, a, b)
    }

    /// True when the movement segment `from → to` meets the polyline itself (any of its
    /// segments, not their extensions); touching counts.
    pub fn intersects(&self, from: Point, to: Point) -> bool {
        self.segments()
            .any(|(a, b)| segments_intersect(from, to, a, b))
    }

    /// Where the movement `from → to` goes across the polyline, or `None`.
    ///
    /// A segment of the polyline is *crossed* when the movement meets it (touching counts) and
    /// `to` is strictly on one side of that segment's straight line while `from` is not on that
    /// same side (it is on the other side, or on the line). The result is the side `to` is on
    /// relative to the crossed segment met last along the movement. So: moving from Left to
    /// Right across the line gives `Some(Right)`; leaving the line towards Left gives
    /// `Some(Left)`; touching the line and coming back, ending on the line, running along it,
    /// or passing beyond its ends give `None`.
    pub fn crossing(&self, from: Point, to: Point) -> Option<Side> {
        if !from.is_finite() || !to.is_finite() {
            return None;
        }
        let mut best: Option<(f64, Side)> = None;
        for (a, b) in self.segments() {
            if !segments_intersect(from, to, a, b) {
                continue;
            }
            let Some(to_side) = side_of_segment(to, a, b) else {
                continue;
            };
            if side_of_segment(from, a, b) == Some(to_side) {
                continue;
            }
            let along = movement_parameter(from, to, a, b);
            if best.is_none_or(|(t, _)| along >= t) {
                best = Some((along, to_side));
            }
        }
        best.map(|(_, side)| side)
    }
}

/// True when the closed segments `a1–a2` and `b1–b2` share at least one point: a proper
/// crossing, an endpoint touching the other segment (**touching counts as intersecting**), or
/// collinear segments that overlap or meet end to end. Parallel or disjoint segments do not
/// intersect. A zero-length segment is treated as a point. False when a coordinate is not a
/// number.
pub fn segments_intersect(a1: Point, a2: Point, b1: Point, b2: Point) -> bool {
    let d1 = orientation(b1, b2, a1);
    let d2 = orientation(b1, b2, a2);
    let d3 = orientation(a1, a2, b1);
    let d4 = orientation(a1, a2, b2);
    let opposite = |u: f64, v: f64| (u > 0.0 && v < 0.0) || (u < 0.0 && v > 0.0);
    if opposite(d1, d2) && opposite(d3, d4) {
        return true;
    }
    (d1 == 0.0 && within_box(b1, b2, a1))
        || (d2 == 0.0 && within_box(b1, b2, a2))
        || (d3 == 0.0 && within_box(a1, a2, b1))
        || (d4 == 0.0 && within_box(a1, a2, b2))
}

// ---------------------------------------------------------------------------------------------

fn check_in_frame(points: &[Point]) -> Result<(), ShapeError> {
    match points.iter().position(|p| !p.in_unit_square()) {
        Some(i) => Err(ShapeError::OutsideFrame {
            index: i + 1,
            x: points[i].x,
            y: points[i].y,
        }),
        None => Ok(()),
    }
}

fn check_consecutive_distinct(points: &[Point]) -> Result<(), ShapeError> {
    match points.windows(2).position(|w| w[0] == w[1]) {
        Some(i) => Err(ShapeError::RepeatedPoint {
            first: i + 1,
            second: i + 2,
            x: points[i].x,
            y: points[i].y,
        }),
        None => Ok(()),
    }
}

/// Every point within [`ON_LINE_EPSILON`] of the straight line through the first point and the
/// point farthest from it.
fn all_on_one_line(points: &[Point]) -> bool {
    let first = points[0];
    let (fx, fy) = first.to_f64();
    let farthest = points.iter().copied().max_by(|a, b| {
        let distance = |p: &Point| {
            let (x, y) = p.to_f64();
            (x - fx).hypot(y - fy)
        };
        distance(a).total_cmp(&distance(b))
    });
    let Some(farthest) = farthest.filter(|p| *p != first) else {
        return true;
    };
    points
        .iter()
        .all(|&p| side_of_segment(p, first, farthest).is_none())
}

/// Shoelace formula; positive when the points go clockwise on the screen (y down).
fn signed_area(points: &[Point]) -> f64 {
    let n = points.len();
    let twice: f64 = (0..n)
        .map(|i| {
            let (ax, ay) = points[i].to_f64();
            let (bx, by) = points[(i + 1) % n].to_f64();
            ax * by - bx * ay
        })
        .sum();
    twice / 2.0
}

/// `z = (b − a) × (p − a)`: negative when `p` is on the Left of `a → b` (y down).
fn orientation(a: Point, b: Point, p: Point) -> f64 {
    let (ax, ay) = a.to_f64();
    let (bx, by) = b.to_f64();
    let (px, py) = p.to_f64();
    (bx - ax) * (py - ay) - (by - ay) * (px - ax)
}

/// `p` lies within the bounding box of `a`, `b` (used once `p` is known to be collinear).
fn within_box(a: Point, b: Point, p: Point) -> bool {
    p.x >= a.x.min(b.x) && p.x <= a.x.max(b.x) && p.y >= a.y.min(b.y) && p.y <= a.y.max(b.y)
}

/// Edges `a → b` and `b → c` of an outline overlap beyond `b`: `c` goes back along `a → b`.
fn turns_back(a: Point, b: Point, c: Point) -> bool {
    if orientation(a, b, c) != 0.0 {
        return false;
    }
    let (ax, ay) = a.to_f64();
    let (bx, by) = b.to_f64();
    let (cx, cy) = c.to_f64();
    (bx - ax) * (cx - bx) + (by - ay) * (cy - by) < 0.0
}

/// Euclidean distance from `p` to the closed segment `a–b` (`a != b` expected; a zero-length
/// segment is a point).
fn distance_to_segment(p: Point, a: Point, b: Point) -> f64 {
    let (ax, ay) = a.to_f64();
    let (bx, by) = b.to_f64();
    let (px, py) = p.to_f64();
    let (dx, dy) = (bx - ax, by - ay);
    let length_sq = dx * dx + dy * dy;
    let t = if length_sq > 0.0 {
        (((px - ax) * dx + (py - ay) * dy) / length_sq).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (cx, cy) = (ax + t * dx, ay + t * dy);
    (px - cx).hypot(py - cy)
}

/// Side of `p` relative to the straight line through `a → b`; `None` within
/// [`ON_LINE_EPSILON`] of it.
fn side_of_segment(p: Point, a: Point, b: Point) -> Option<Side> {
    let (ax, ay) = a.to_f64();
    let (bx, by) = b.to_f64();
    let length = (bx - ax).hypot(by - ay);
    if length.is_nan() || length <= 0.0 {
        return None;
    }
    let z = orientation(a, b, p);
    let distance = z / length;
    if distance < -ON_LINE_EPSILON {
        Some(Side::Left)
    } else if distance > ON_LINE_EPSILON {
        Some(Side::Right)
    } else {
        None
    }
}

/// How far along `from → to` (0..=1) it meets the segment `a–b` (known to intersect); for
/// collinear overlaps, where it first meets it.
fn movement_parameter(from: Point, to: Point, a: Point, b: Point) -> f64 {
    let (fx, fy) = from.to_f64();
    let (tx, ty) = to.to_f64();
    let (ax, ay) = a.to_f64();
    let (bx, by) = b.to_f64();
    let (mx, my) = (tx - fx, ty - fy);
    let (sx, sy) = (bx - ax, by - ay);
    let denominator = mx * sy - my * sx;
    if denominator != 0.0 {
        let t = ((ax - fx) * sy - (ay - fy) * sx) / denominator;
        return if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    }
    let length_sq = mx * mx + my * my;
    if length_sq <= 0.0 {
        return 0.0;
    }
    let along = |x: f64, y: f64| ((x - fx) * mx + (y - fy) * my) / length_sq;
    along(ax, ay).min(along(bx, by)).clamp(0.0, 1.0)
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(x, y)`.
    type Xy = (f32, f32);
    type Shape = &'static [Xy];

    fn p(x: f32, y: f32) -> Point {
        Point::new(x, y)
    }

    fn polygon(points: &[(f32, f32)]) -> Polygon {
        Polygon::new(points.iter().map(|&(x, y)| p(x, y)).collect())
            .unwrap_or_else(|e| panic!("{points:?}: {e}"))
    }

    fn polyline(points: &[(f32, f32)]) -> Polyline {
        Polyline::new(points.iter().map(|&(x, y)| p(x, y)).collect())
            .unwrap_or_else(|e| panic!("{points:?}: {e}"))
    }

    const SQUARE: &[(f32, f32)] = &[(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)];
    /// An L shape: the top-right quarter of the square is cut out (concave at (0.5, 0.5)).
    const L_SHAPE: &[(f32, f32)] = &[
        (0.25, 0.25),
        (0.5, 0.25),
        (0.5, 0.5),
        (0.75, 0.5),
        (0.75, 0.75),
        (0.25, 0.75),
    ];
    /// A "U" open at the top: the notch between x 0.375 and 0.625 above y 0.5 is outside.
    const U_SHAPE: &[(f32, f32)] = &[
        (0.25, 0.25),
        (0.375, 0.25),
        (0.375, 0.5),
        (0.625, 0.5),
        (0.625, 0.25),
        (0.75, 0.25),
        (0.75, 0.75),
        (0.25, 0.75),
    ];
    const TRIANGLE: &[(f32, f32)] = &[(0.5, 0.125), (0.875, 0.875), (0.125, 0.875)];

    #[test]
    fn point_in_polygon_from_table() {
        // shape, point, inside
        let cases: &[(&str, Shape, Xy, bool)] = &[
            ("square centre", SQUARE, (0.5, 0.5), true),
            ("square left of it", SQUARE, (0.1, 0.5), false),
            ("square right of it", SQUARE, (0.9, 0.5), false),
            ("square above it", SQUARE, (0.5, 0.1), false),
            ("square below it", SQUARE, (0.5, 0.9), false),
            ("square on top edge", SQUARE, (0.5, 0.25), true),
            ("square on right edge", SQUARE, (0.75, 0.5), true),
            ("square on bottom edge", SQUARE, (0.4, 0.75), true),
            ("square on left edge", SQUARE, (0.25, 0.6), true),
            ("square top-left vertex", SQUARE, (0.25, 0.25), true),
            ("square top-right vertex", SQUARE, (0.75, 0.25), true),
            ("square bottom-right vertex", SQUARE, (0.75, 0.75), true),
            ("square bottom-left vertex", SQUARE, (0.25, 0.75), true),
            ("square just outside an edge", SQUARE, (0.7501, 0.5), false),
            ("square on an edge's extension", SQUARE, (0.9, 0.25), false),
            ("square in line with a vertex", SQUARE, (0.1, 0.25), false),
            ("L inside the lower part", L_SHAPE, (0.6, 0.6), true),
            ("L inside the left part", L_SHAPE, (0.3, 0.3), true),
            ("L in the cut-out corner", L_SHAPE, (0.6, 0.4), false),
            ("L at the concave vertex", L_SHAPE, (0.5, 0.5), true),
            ("L on an inner edge", L_SHAPE, (0.5, 0.4), true),
            ("L on the other inner edge", L_SHAPE, (0.6, 0.5), true),
            (
                "L ray through the concave vertex",
                L_SHAPE,
                (0.4, 0.5),
                true,
            ),
            (
                "L left of it, ray through vertices",
                L_SHAPE,
                (0.1, 0.5),
                false,
            ),
            ("U in the notch", U_SHAPE, (0.5, 0.3), false),
            ("U left arm", U_SHAPE, (0.3, 0.3), true),
            ("U right arm", U_SHAPE, (0.7, 0.3), true),
            ("U bottom, below the notch", U_SHAPE, (0.5, 0.6), true),
            ("U notch floor", U_SHAPE, (0.5, 0.5), true),
            ("U ray along the arm tops", U_SHAPE, (0.1, 0.25), false),
            ("U notch opening (not an edge)", U_SHAPE, (0.5, 0.25), false),
            ("triangle centre", TRIANGLE, (0.5, 0.6), true),
            ("triangle apex", TRIANGLE, (0.5, 0.125), true),
            ("triangle on slanted edge", TRIANGLE, (0.6875, 0.5), true),
            (
                "triangle outside slanted edge",
                TRIANGLE,
                (0.75, 0.4),
                false,
            ),
            ("triangle above apex", TRIANGLE, (0.5, 0.1), false),
            ("NaN point", SQUARE, (f32::NAN, 0.5), false),
            ("infinite point", SQUARE, (f32::INFINITY, 0.5), false),
        ];
        for &(name, shape, (x, y), inside) in cases {
            let polygon = polygon(shape);
            assert_eq!(polygon.contains(p(x, y)), inside, "{name}: ({x}, {y})");
            // Winding order does not matter.
            let reversed = Polygon::new(polygon.points().iter().rev().copied().collect()).unwrap();
            assert_eq!(reversed.contains(p(x, y)), inside, "{name} reversed");
        }
    }

    #[test]
    fn segment_intersection_from_table() {
        type Segment = ((f32, f32), (f32, f32));
        let cases: &[(&str, Segment, Segment, bool)] = &[
            (
                "proper cross",
                ((0.0, 0.0), (1.0, 1.0)),
                ((0.0, 1.0), (1.0, 0.0)),
                true,
            ),
            (
                "T: endpoint on the other's middle",
                ((0.0, 0.5), (0.5, 0.5)),
                ((0.5, 0.0), (0.5, 1.0)),
                true,
            ),
            (
                "shared endpoint",
                ((0.0, 0.0), (0.5, 0.5)),
                ((0.5, 0.5), (1.0, 0.0)),
                true,
            ),
            (
                "collinear overlapping",
                ((0.0, 0.0), (0.6, 0.0)),
                ((0.4, 0.0), (1.0, 0.0)),
                true,
            ),
            (
                "collinear one inside the other",
                ((0.0, 0.2), (1.0, 0.2)),
                ((0.3, 0.2), (0.6, 0.2)),
                true,
            ),
            (
                "collinear end to end",
                ((0.0, 0.0), (0.5, 0.0)),
                ((0.5, 0.0), (1.0, 0.0)),
                true,
            ),
            (
                "collinear with a gap",
                ((0.0, 0.0), (0.4, 0.0)),
                ((0.6, 0.0), (1.0, 0.0)),
                false,
            ),
            (
                "parallel",
                ((0.0, 0.0), (1.0, 0.0)),
                ((0.0, 0.5), (1.0, 0.5)),
                false,
            ),
            (
                "parallel diagonal",
                ((0.0, 0.0), (0.5, 0.5)),
                ((0.0, 0.25), (0.5, 0.75)),
                false,
            ),
            (
                "disjoint",
                ((0.0, 0.0), (0.2, 0.2)),
                ((0.8, 0.0), (1.0, 0.3)),
                false,
            ),
            (
                "would cross on the extension",
                ((0.0, 0.0), (0.4, 0.4)),
                ((0.0, 1.0), (1.0, 0.0)),
                false,
            ),
            (
                "endpoint near but off the other",
                ((0.0, 0.5), (0.49, 0.5)),
                ((0.5, 0.0), (0.5, 1.0)),
                false,
            ),
            (
                "point on a segment",
                ((0.5, 0.5), (0.5, 0.5)),
                ((0.0, 0.5), (1.0, 0.5)),
                true,
            ),
            (
                "point off a segment",
                ((0.5, 0.6), (0.5, 0.6)),
                ((0.0, 0.5), (1.0, 0.5)),
                false,
            ),
            (
                "NaN",
                ((f32::NAN, 0.0), (1.0, 1.0)),
                ((0.0, 1.0), (1.0, 0.0)),
                false,
            ),
        ];
        for &(name, (a1, a2), (b1, b2), expected) in cases {
            let [a1, a2, b1, b2] = [a1, a2, b1, b2].map(|(x, y)| p(x, y));
            for (order, got) in [
                ("a,b", segments_intersect(a1, a2, b1, b2)),
                ("b,a", segments_intersect(b1, b2, a1, a2)),
                ("a reversed", segments_intersect(a2, a1, b1, b2)),
                ("b reversed", segments_intersect(a1, a2, b2, b1)),
            ] {
                assert_eq!(got, expected, "{name} ({order})");
            }
        }
    }

    #[test]
    fn side_convention_from_table() {
        // The public contract: walking from the first point to the last on the screen (y down).
        let down = polyline(&[(0.5, 0.2), (0.5, 0.95)]);
        let right = polyline(&[(0.2, 0.5), (0.8, 0.5)]);
        let up = polyline(&[(0.5, 0.95), (0.5, 0.2)]);
        let bent = polyline(&[(0.2, 0.2), (0.5, 0.5), (0.8, 0.2)]); // a "V" drawn left to right
        let cases: &[(&str, &Polyline, Xy, Option<Side>)] = &[
            (
                "down: screen right is Left",
                &down,
                (0.7, 0.5),
                Some(Side::Left),
            ),
            (
                "down: screen left is Right",
                &down,
                (0.3, 0.5),
                Some(Side::Right),
            ),
            ("down: on the line", &down, (0.5, 0.5), None),
            ("down: on the extension below", &down, (0.5, 0.99), None),
            (
                "down: beyond the end, screen right",
                &down,
                (0.6, 0.99),
                Some(Side::Left),
            ),
            ("right: above is Left", &right, (0.5, 0.3), Some(Side::Left)),
            (
                "right: below is Right",
                &right,
                (0.5, 0.7),
                Some(Side::Right),
            ),
            (
                "up: screen right is Right",
                &up,
                (0.7, 0.5),
                Some(Side::Right),
            ),
            ("up: screen left is Left", &up, (0.3, 0.5), Some(Side::Left)),
            (
                "V: above the vertex is Left",
                &bent,
                (0.5, 0.3),
                Some(Side::Left),
            ),
            (
                "V: below the vertex is Right",
                &bent,
                (0.5, 0.7),
                Some(Side::Right),
            ),
            (
                "V: above the first arm",
                &bent,
                (0.3, 0.1),
                Some(Side::Left),
            ),
            (
                "V: below the second arm",
                &bent,
                (0.7, 0.5),
                Some(Side::Right),
            ),
            ("V: on the vertex", &bent, (0.5, 0.5), None),
            ("NaN", &down, (f32::NAN, 0.5), None),
        ];
        for &(name, line, (x, y), expected) in cases {
            assert_eq!(line.side_of(p(x, y)), expected, "{name}");
        }
        // The formula stated in the docs: z < 0 is Left.
        let z = orientation(p(0.5, 0.2), p(0.5, 0.95), p(0.7, 0.5));
        assert!(z < 0.0, "z = {z}");
    }

    #[test]
    fn crossing_from_table() {
        let down = polyline(&[(0.5, 0.25), (0.5, 0.75)]);
        let zigzag = polyline(&[(0.5, 0.125), (0.5, 0.5), (0.75, 0.5), (0.75, 0.875)]);
        // name, line, from, to, crossing, intersects
        #[allow(clippy::type_complexity)]
        let cases: &[(&str, &Polyline, (f32, f32), (f32, f32), Option<Side>, bool)] = &[
            (
                "Left to Right",
                &down,
                (0.625, 0.5),
                (0.375, 0.5),
                Some(Side::Right),
                true,
            ),
            (
                "Right to Left",
                &down,
                (0.375, 0.5),
                (0.625, 0.5),
                Some(Side::Left),
                true,
            ),
            (
                "through the first point",
                &down,
                (0.375, 0.125),
                (0.625, 0.375),
                Some(Side::Left),
                true,
            ),
            (
                "through the last point",
                &down,
                (0.375, 0.75),
                (0.625, 0.75),
                Some(Side::Left),
                true,
            ),
            (
                "beyond the end",
                &down,
                (0.375, 0.875),
                (0.625, 0.875),
                None,
                false,
            ),
            (
                "before the start",
                &down,
                (0.625, 0.125),
                (0.375, 0.125),
                None,
                false,
            ),
            (
                "staying on one side",
                &down,
                (0.625, 0.375),
                (0.875, 0.625),
                None,
                false,
            ),
            (
                "ending on the line",
                &down,
                (0.625, 0.5),
                (0.5, 0.5),
                None,
                true,
            ),
            (
                "leaving the line",
                &down,
                (0.5, 0.5),
                (0.375, 0.5),
                Some(Side::Right),
                true,
            ),
            (
                "along the line",
                &down,
                (0.5, 0.375),
                (0.5, 0.625),
                None,
                true,
            ),
            (
                "zigzag: across the first arm",
                &zigzag,
                (0.375, 0.25),
                (0.625, 0.25),
                Some(Side::Left),
                true,
            ),
            (
                "zigzag: across the middle",
                &zigzag,
                (0.625, 0.375),
                (0.625, 0.625),
                Some(Side::Right),
                true,
            ),
            (
                "zigzag: two arms, the last decides",
                &zigzag,
                (0.375, 0.375),
                (0.625, 0.5625),
                Some(Side::Right),
                true,
            ),
            ("NaN", &down, (f32::NAN, 0.5), (0.375, 0.5), None, false),
        ];
        for &(name, line, (fx, fy), (tx, ty), crossing, intersects) in cases {
            let (from, to) = (p(fx, fy), p(tx, ty));
            assert_eq!(line.crossing(from, to), crossing, "{name}");
            assert_eq!(line.intersects(from, to), intersects, "{name}: intersects");
        }
    }

    #[test]
    fn polygon_validation_from_table() {
        let cases: &[(&str, Shape, &str)] = &[
            (
                "two points",
                &[(0.1, 0.1), (0.9, 0.1)],
                "a polygon needs at least 3 points, got 2",
            ),
            ("none", &[], "a polygon needs at least 3 points, got 0"),
            (
                "coordinate 1.2",
                &[(0.1, 0.1), (1.2, 0.5), (0.1, 0.9)],
                "point 2 (1.2, 0.5) is outside 0..1",
            ),
            (
                "negative",
                &[(0.1, 0.1), (0.9, 0.1), (0.5, -0.1)],
                "point 3 (0.5, -0.1) is outside 0..1",
            ),
            (
                "NaN",
                &[(f32::NAN, 0.1), (0.9, 0.1), (0.5, 0.9)],
                "point 1 (NaN, 0.1) is outside 0..1",
            ),
            (
                "repeated point",
                &[(0.1, 0.1), (0.9, 0.1), (0.9, 0.1), (0.5, 0.9)],
                "points 2 and 3 are the same (0.9, 0.1)",
            ),
            (
                "closed by repeating the first point",
                &[(0.1, 0.1), (0.9, 0.1), (0.5, 0.9), (0.1, 0.1)],
                "the last point repeats the first (0.1, 0.1): leave it out",
            ),
            (
                "collinear",
                &[(0.1, 0.1), (0.5, 0.5), (0.9, 0.9)],
                "the polygon has (almost) no area",
            ),
            (
                "thin sliver",
                &[(0.1, 0.1), (0.9, 0.1), (0.5, 0.100_002)],
                "the polygon has (almost) no area",
            ),
            (
                "bow tie",
                &[(0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)],
                "edges 1 and 3 cross",
            ),
            (
                "bow tie, other order",
                &[(0.1, 0.1), (0.9, 0.1), (0.1, 0.9), (0.9, 0.9)],
                "edges 2 and 4 cross",
            ),
            (
                "vertex touching an edge",
                &[(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.5, 0.1), (0.1, 0.9)],
                "edges 1 and 3 cross",
            ),
            (
                "figure eight through one point",
                &[
                    (0.1, 0.1),
                    (0.5, 0.5),
                    (0.9, 0.1),
                    (0.9, 0.9),
                    (0.5, 0.5),
                    (0.1, 0.9),
                ],
                "edges 1 and 4 cross",
            ),
            (
                "spike turning back",
                &[(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.9, 0.5), (0.1, 0.9)],
                "edges 2 and 3 overlap: the outline turns back on itself at point 3",
            ),
        ];
        for &(name, points, expected) in cases {
            let points: Vec<Point> = points.iter().map(|&(x, y)| p(x, y)).collect();
            match Polygon::new(points) {
                Ok(_) => panic!("{name}: accepted"),
                Err(e) => assert!(e.to_string().starts_with(expected), "{name}: {e}"),
            }
        }
        for shape in [SQUARE, L_SHAPE, U_SHAPE, TRIANGLE] {
            polygon(shape);
        }
        polygon(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]);
    }

    #[test]
    fn polyline_validation_from_table() {
        let cases: &[(&str, Shape, &str)] = &[
            (
                "one point",
                &[(0.5, 0.5)],
                "a line needs at least 2 points, got 1",
            ),
            (
                "identical points",
                &[(0.5, 0.2), (0.5, 0.2)],
                "points 1 and 2 are the same (0.5, 0.2)",
            ),
            (
                "coordinate 1.2",
                &[(0.5, 0.2), (1.2, 0.5)],
                "point 2 (1.2, 0.5) is outside 0..1",
            ),
            (
                "infinite",
                &[(0.5, f32::INFINITY), (0.5, 0.5)],
                "point 1 (0.5, inf) is outside 0..1",
            ),
        ];
        for &(name, points, expected) in cases {
            let points: Vec<Point> = points.iter().map(|&(x, y)| p(x, y)).collect();
            match Polyline::new(points) {
                Ok(_) => panic!("{name}: accepted"),
                Err(e) => assert!(e.to_string().starts_with(expected), "{name}: {e}"),
            }
        }
        polyline(&[(0.0, 0.0), (1.0, 1.0)]);
        // Returning to an earlier point is allowed when not consecutive.
        polyline(&[(0.2, 0.2), (0.8, 0.2), (0.2, 0.2)]);
    }
}
