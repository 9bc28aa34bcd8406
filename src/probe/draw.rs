//! A camera's zones and lines drawn on one of its frames, so a technician can check their
//! placement by looking: every zone as a closed outline with its name, every line as a
//! polyline with its name and two arrows across it, each labelled with the direction name a
//! crossing that way is counted as.
//!
//! Which way is which follows `track::lines` exactly: `direction_names[0]` is a crossing from
//! the line's Left side to its Right side ([`Side`](crate::geometry::shapes::Side), seen
//! walking from the first point to the last on the screen), `direction_names[1]` the other way.
//! [`direction_arrows`] is pure and tested against [`LineWatch`](crate::track::lines::LineWatch).

use crate::config::{LineConfig, ZoneConfig};
use crate::detect::Object;
use crate::geometry::Point;
use crate::imaging::{self, Frame, ImageError, Overlay};

/// JPEG quality of probe snapshots and drawings.
pub const JPEG_QUALITY: u8 = 90;

/// One direction arrow in normalised coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct DirectionArrow {
    /// On the side a crossing in this direction starts from.
    pub from: [f32; 2],
    /// On the side it ends on.
    pub to: [f32; 2],
}

/// The two arrows across a line drawn on a `width`×`height` picture: `[0]` from the Left side
/// to the Right side (`direction_names[0]`), `[1]` from Right to Left (`direction_names[1]`).
///
/// They cross the line's longest segment near its middle (away from bends), side by side along
/// it, perpendicular to it **on the screen** (computed in pixels), about 7% of the picture's
/// smaller side long. `None` for fewer than 2 points, a zero size, or a line of no length.
pub fn direction_arrows(
    points: &[Point],
    width: usize,
    height: usize,
) -> Option<[DirectionArrow; 2]> {
    if points.len() < 2 || width == 0 || height == 0 {
        return None;
    }
    let (w, h) = (width as f64, height as f64);
    let pixels: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (f64::from(p.x) * w, f64::from(p.y) * h))
        .collect();
    // The middle of the longest segment: away from the bends, where the sides are plain.
    let (a, b, length) = pixels
        .windows(2)
        .map(|s| (s[0], s[1], (s[1].0 - s[0].0).hypot(s[1].1 - s[0].1)))
        .reduce(|best, segment| if segment.2 > best.2 { segment } else { best })?;
    if !length.is_finite() || length <= 0.0 {
        return None;
    }
    let (ux, uy) = ((b.0 - a.0) / length, (b.1 - a.1) / length);
    let (mx, my) = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
    // In image coordinates (y down), (uy, -ux) points to the walker's Left (geometry::shapes).
    let (left_x, left_y) = (uy, -ux);
    let half = (w.min(h) * 0.07).max(8.0);
    let apart = (half * 0.8).min(length / 2.0 * 0.9);
    let normalised = |x: f64, y: f64| -> [f32; 2] {
        [
            (x.clamp(0.0, w - 1.0) / w) as f32,
            (y.clamp(0.0, h - 1.0) / h) as f32,
        ]
    };
    let arrow = |centre_shift: f64, from_left: bool| {
        let (cx, cy) = (mx + ux * centre_shift, my + uy * centre_shift);
        let sign = if from_left { 1.0 } else { -1.0 };
        DirectionArrow {
            from: normalised(cx + sign * left_x * half, cy + sign * left_y * half),
            to: normalised(cx - sign * left_x * half, cy - sign * left_y * half),
        }
    };
    Some([arrow(-apart, true), arrow(apart, false)])
}

/// The overlays for a camera's zones and lines (outlines, names, direction arrows) on a
/// `width`×`height` picture.
pub fn layout_overlays(
    zones: &[ZoneConfig],
    lines: &[LineConfig],
    width: usize,
    height: usize,
) -> Vec<Overlay> {
    let mut overlays = Vec::new();
    for zone in zones {
        overlays.push(Overlay::Shape {
            points: zone.polygon.points().iter().map(|p| [p.x, p.y]).collect(),
            closed: true,
            label: zone.name.to_string(),
        });
    }
    for line in lines {
        let points = line.polyline.points();
        overlays.push(Overlay::Shape {
            points: points.iter().map(|p| [p.x, p.y]).collect(),
            closed: false,
            label: line.name.to_string(),
        });
        if let Some(arrows) = direction_arrows(points, width, height) {
            for (arrow, name) in arrows.into_iter().zip(&line.direction_names) {
                overlays.push(Overlay::Arrow {
                    from: arrow.from,
                    to: arrow.to,
                    label: name.to_string(),
                });
            }
        }
    }
    overlays
}

/// The overlays of detected objects: box and `label score`.
pub fn object_overlays(objects: &[Object]) -> Vec<Overlay> {
    objects
        .iter()
        .map(|o| Overlay::Box {
            bbox: o.bbox,
            class: o.class,
            label: format!("{} {:.2}", o.label, o.score),
        })
        .collect()
}

/// `frame` as a JPEG (full size) with `objects`, then `zones` and `lines` over them, drawn.
///
/// # Errors
/// Only OpenCV failures, which do not happen for a valid frame.
pub fn render(
    frame: &Frame,
    objects: &[Object],
    zones: &[ZoneConfig],
    lines: &[LineConfig],
) -> Result<Vec<u8>, ImageError> {
    // The layout last, on top: it is what the technician checks.
    let mut overlays = object_overlays(objects);
    overlays.extend(layout_overlays(zones, lines, frame.width, frame.height));
    let full_width = u32::try_from(frame.width).unwrap_or(u32::MAX);
    imaging::snapshot_jpeg(frame, &[], &overlays, full_width, JPEG_QUALITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicName;
    use crate::detect::CoarseClass;
    use crate::geometry::Polyline;
    use crate::geometry::shapes::Side;
    use crate::track::lines::LineWatch;

    fn line(points: &[(f32, f32)]) -> LineConfig {
        LineConfig {
            name: TopicName::parse("border").unwrap(),
            polyline: Polyline::new(points.iter().map(|&(x, y)| Point::new(x, y)).collect())
                .unwrap(),
            direction_names: [
                TopicName::parse("north").unwrap(),
                TopicName::parse("south").unwrap(),
            ],
            classes: vec![CoarseClass::Person, CoarseClass::Vehicle],
            inertia: Some(1),
        }
    }

    /// The direction a track walking along `arrow` is counted as, by the real line watch.
    fn counted_as(config: &LineConfig, arrow: &DirectionArrow) -> Option<String> {
        let mut watch = LineWatch::new(config, 1);
        let [fx, fy] = arrow.from;
        let [tx, ty] = arrow.to;
        let mut result = None;
        for step in 0..=10 {
            let t = step as f32 / 10.0;
            let anchor = Point::new(fx + (tx - fx) * t, fy + (ty - fy) * t);
            if let Some(crossing) = watch.update(7, CoarseClass::Person, anchor, f64::from(step)) {
                result = Some(crossing.direction.to_string());
            }
        }
        result
    }

    #[test]
    fn arrows_tell_the_truth() {
        type Case = (&'static str, &'static [(f32, f32)], usize, usize);
        let cases: &[Case] = &[
            ("down the screen", &[(0.5, 0.2), (0.5, 0.95)], 640, 360),
            ("left to right", &[(0.1, 0.6), (0.9, 0.6)], 640, 360),
            ("right to left", &[(0.9, 0.4), (0.1, 0.5)], 1920, 1080),
            (
                "diagonal, tall picture",
                &[(0.2, 0.1), (0.8, 0.9)],
                360,
                640,
            ),
            ("bent", &[(0.1, 0.3), (0.5, 0.5), (0.9, 0.3)], 640, 360),
            (
                "three bends",
                &[(0.1, 0.1), (0.3, 0.8), (0.6, 0.2), (0.9, 0.9)],
                800,
                600,
            ),
        ];
        for (name, points, width, height) in cases {
            let config = line(points);
            let arrows = direction_arrows(config.polyline.points(), *width, *height).unwrap();
            // Each arrow starts on the side its direction starts from ...
            assert_eq!(
                config.polyline.side_of(pt(arrows[0].from)),
                Some(Side::Left),
                "{name}"
            );
            assert_eq!(
                config.polyline.side_of(pt(arrows[0].to)),
                Some(Side::Right),
                "{name}"
            );
            assert_eq!(
                config.polyline.side_of(pt(arrows[1].from)),
                Some(Side::Right),
                "{name}"
            );
            assert_eq!(
                config.polyline.side_of(pt(arrows[1].to)),
                Some(Side::Left),
                "{name}"
            );
            // ... and a person walking along it is counted with the arrow's label.
            assert_eq!(
                counted_as(&config, &arrows[0]).as_deref(),
                Some("north"),
                "{name}"
            );
            assert_eq!(
                counted_as(&config, &arrows[1]).as_deref(),
                Some("south"),
                "{name}"
            );
            // Perpendicular on the screen: the arrow's pixel vector has no component along the
            // middle segment... for a straight line.
            if points.len() == 2 {
                let (dx, dy) = (
                    (points[1].0 - points[0].0) * *width as f32,
                    (points[1].1 - points[0].1) * *height as f32,
                );
                let a = &arrows[0];
                let (ax, ay) = (
                    (a.to[0] - a.from[0]) * *width as f32,
                    (a.to[1] - a.from[1]) * *height as f32,
                );
                let cos = (ax * dx + ay * dy) / (ax.hypot(ay) * dx.hypot(dy));
                assert!(cos.abs() < 0.01, "{name}: cos {cos}");
            }
        }
    }

    #[test]
    fn the_documented_example() {
        // track::lines: for the line (0.5, 0.2) → (0.5, 0.95), walking from screen-right to
        // screen-left is direction 0.
        let arrows =
            direction_arrows(&[Point::new(0.5, 0.2), Point::new(0.5, 0.95)], 640, 360).unwrap();
        assert!(
            arrows[0].from[0] > 0.5 && arrows[0].to[0] < 0.5,
            "{arrows:?}"
        );
        assert!(
            arrows[1].from[0] < 0.5 && arrows[1].to[0] > 0.5,
            "{arrows:?}"
        );
    }

    #[test]
    fn degenerate_input() {
        assert_eq!(direction_arrows(&[Point::new(0.5, 0.5)], 640, 360), None);
        assert_eq!(
            direction_arrows(&[Point::new(0.1, 0.1), Point::new(0.9, 0.9)], 0, 360),
            None
        );
    }

    #[test]
    fn draws_zones_lines_and_arrows() {
        let frame = Frame::from_bgr(640, 360, 640 * 3, vec![0; 640 * 360 * 3]).unwrap();
        let zone = ZoneConfig {
            name: TopicName::parse("dock").unwrap(),
            polygon: crate::geometry::Polygon::new(vec![
                Point::new(0.1, 0.5),
                Point::new(0.4, 0.5),
                Point::new(0.4, 0.9),
                Point::new(0.1, 0.9),
            ])
            .unwrap(),
            classes: vec![CoarseClass::Person],
            loiter: None,
            inertia: None,
        };
        let border = line(&[(0.7, 0.1), (0.7, 0.9)]);
        let overlays = layout_overlays(
            std::slice::from_ref(&zone),
            std::slice::from_ref(&border),
            640,
            360,
        );
        assert_eq!(overlays.len(), 4, "zone, line, two arrows");
        let jpeg = render(&frame, &[], &[zone], std::slice::from_ref(&border)).unwrap();
        let out = imaging::decode_image(&jpeg).unwrap();
        assert_eq!((out.width, out.height), (640, 360));
        let yellow = |p: [u8; 3]| p[2] > 150 && p[1] > 150 && p[0] < 100;
        let magenta = |p: [u8; 3]| p[2] > 150 && p[0] > 150 && p[1] < 100;
        // Bottom edge of the zone (y = 0.9 * 360 = 324), line at x = 0.7 * 640 = 448.
        assert!(yellow(out.pixel(160, 324).unwrap()), "zone edge");
        assert!(yellow(out.pixel(448, 100).unwrap()), "line");
        assert!(
            !yellow(out.pixel(160, 200).unwrap()),
            "inside the zone untouched"
        );
        // The arrows cross the line beside its middle (y = 180).
        let arrows = direction_arrows(border.polyline.points(), 640, 360).unwrap();
        let shaft = |a: &DirectionArrow| {
            let x = ((a.from[0] + a.to[0]) / 2.0 * 640.0) as usize;
            let y = ((a.from[1] + a.to[1]) / 2.0 * 360.0) as usize;
            // Beside the line (which is drawn over the arrows' middle): a quarter along.
            let qx = ((a.from[0] * 3.0 + a.to[0]) / 4.0 * 640.0) as usize;
            (x, y, qx)
        };
        for a in &arrows {
            let (_, y, qx) = shaft(a);
            assert!(magenta(out.pixel(qx, y).unwrap()), "arrow at ({qx}, {y})");
        }
    }

    fn pt([x, y]: [f32; 2]) -> Point {
        Point::new(x, y)
    }
}
