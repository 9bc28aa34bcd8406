//! Line crossings: counting tracked objects that cross a named line, by direction.
//!
//! Pure state machine: positions are passed in, nothing here reads a clock. One [`LineWatch`]
//! per configured line, fed one update per tracked object per analysed frame, in time order.
//!
//! # Directions
//! Sides are those of [`Polyline::side_of`]: seen by a walker going from the line's first point
//! towards its last point **on the screen** (x right, y down). For the line from (0.5, 0.2) to
//! (0.5, 0.95) (straight down the screen) the screen's right (`x > 0.5`) is [`Side::Left`] and
//! the screen's left is [`Side::Right`]. `direction_index` 0 (`direction_names[0]`, default
//! `in`) is a crossing from Left to Right; 1 (`direction_names[1]`, default `out`) from Right
//! to Left. So with that line and the default names, walking from screen-right to screen-left
//! is `in`.
//!
//! # Rules
//! - The anchor of an object is the bottom centre of its box, normalised.
//! - A track's first update off the line sets its *stable side*, without an event. Updates on
//!   the line (within [`crate::geometry::shapes::ON_LINE_EPSILON`] of the nearest segment's
//!   straight line) neither count nor reset anything.
//! - A change of the stable side needs the anchor on the other side for `inertia` consecutive
//!   off-line updates; an update back on the stable side resets the count. So jitter across the
//!   line shorter than `inertia` produces nothing, crossing and staying produces exactly one
//!   crossing, and crossing back later produces one in the other direction.
//! - When the change is confirmed it is a crossing only if the anchor's path from its last
//!   position on the old side (through any positions on the line) to its first position on the
//!   new side meets the polyline itself, not only its extension. Otherwise (the object walked
//!   around an end of the line) the new side becomes the stable side silently.
//! - Updates for classes the line does not list, or with a non-finite anchor, are ignored (the
//!   track's state is kept as it was).
//! - [`LineWatch::forget`] drops a track's state without an event; the caller calls it when a
//!   track ends, which bounds the memory to the live tracks.

use std::collections::HashMap;

use crate::config::{LineConfig, TopicName};
use crate::detect::CoarseClass;
use crate::geometry::shapes::Side;
use crate::geometry::{Point, Polyline};

/// One crossing of a line, borrowed from its [`LineWatch`] (clone the names to keep them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineCrossing<'a> {
    /// The line's name.
    pub line: &'a TopicName,
    /// `direction_names[direction_index]`.
    pub direction: &'a TopicName,
    /// 0: from Left to Right; 1: from Right to Left (module docs).
    pub direction_index: usize,
}

/// Watches one line for every track of a camera.
#[derive(Clone, Debug)]
pub struct LineWatch {
    name: TopicName,
    polyline: Polyline,
    direction_names: [TopicName; 2],
    classes: Vec<CoarseClass>,
    inertia: u32,
    tracks: HashMap<u64, LineTrack>,
}

#[derive(Clone, Debug)]
struct LineTrack {
    /// The confirmed side; `None` until the first update off the line.
    stable: Option<Side>,
    /// The previous anchor (any side), to follow the path.
    last_anchor: Point,
    /// The path from the last anchor on the stable side, through anchors on the line, up to
    /// `last_anchor` meets the polyline.
    path_meets_line: bool,
    /// Consecutive updates on the other side (0: none).
    run: u32,
    /// The path from the last stable-side anchor to the run's first anchor met the polyline.
    run_crossed: bool,
}

impl LineWatch {
    /// A watch for `line`; `default_inertia` (`[tracking] inertia`) applies unless the line
    /// sets its own. An inertia of 0 counts as 1.
    pub fn new(line: &LineConfig, default_inertia: u32) -> LineWatch {
        LineWatch {
            name: line.name.clone(),
            polyline: line.polyline.clone(),
            direction_names: line.direction_names.clone(),
            classes: line.classes.clone(),
            inertia: line.inertia.unwrap_or(default_inertia).max(1),
            tracks: HashMap::new(),
        }
    }

    /// The line's name.
    pub fn name(&self) -> &TopicName {
        &self.name
    }

    /// Feeds one position of `track_id` (anchor: bottom centre of its box, normalised) at
    /// `t_s` seconds; returns the crossing it confirms, if any. Lines do not use the time
    /// today; it is taken so zones and lines are driven alike.
    pub fn update(
        &mut self,
        track_id: u64,
        class: CoarseClass,
        anchor: Point,
        t_s: f64,
    ) -> Option<LineCrossing<'_>> {
        let _ = t_s;
        if !self.classes.contains(&class) || !anchor.is_finite() {
            return None;
        }
        let side = self.polyline.side_of(anchor);
        let Some(track) = self.tracks.get_mut(&track_id) else {
            self.tracks.insert(
                track_id,
                LineTrack {
                    stable: side,
                    last_anchor: anchor,
                    path_meets_line: false,
                    run: 0,
                    run_crossed: false,
                },
            );
            return None;
        };
        let step_meets_line = self.polyline.intersects(track.last_anchor, anchor);
        track.last_anchor = anchor;
        let stable = match (track.stable, side) {
            (_, None) => {
                // On the line: extends the path from the stable side, counts for nothing.
                if track.run == 0 {
                    track.path_meets_line |= step_meets_line;
                }
                return None;
            }
            (None, Some(side)) => {
                track.stable = Some(side);
                track.path_meets_line = false;
                return None;
            }
            (Some(stable), Some(side)) if stable == side => {
                track.run = 0;
                track.path_meets_line = false;
                return None;
            }
            (Some(stable), Some(_)) => stable,
        };
        if track.run == 0 {
            track.run_crossed = track.path_meets_line || step_meets_line;
        }
        track.run = track.run.saturating_add(1);
        if track.run < self.inertia {
            return None;
        }
        track.stable = Some(stable.opposite());
        track.run = 0;
        track.path_meets_line = false;
        if !track.run_crossed {
            return None;
        }
        let direction_index = match stable {
            Side::Left => 0,
            Side::Right => 1,
        };
        Some(LineCrossing {
            line: &self.name,
            direction: &self.direction_names[direction_index],
            direction_index,
        })
    }

    /// The track ended: drops its state, no event.
    pub fn forget(&mut self, track_id: u64) {
        self.tracks.remove(&track_id);
    }

    /// The confirmed side of `track_id`, if any.
    pub fn side_of_track(&self, track_id: u64) -> Option<Side> {
        self.tracks.get(&track_id).and_then(|t| t.stable)
    }

    /// How many tracks have state here.
    pub fn n_tracks(&self) -> usize {
        self.tracks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERSON: CoarseClass = CoarseClass::Person;
    const VEHICLE: CoarseClass = CoarseClass::Vehicle;

    // Around the line from (0.5, 0.25) down to (0.5, 0.75): screen right is Left.
    /// Screen right of the line: Left.
    const L: (f32, f32) = (0.625, 0.5);
    /// Screen left of the line: Right.
    const R: (f32, f32) = (0.375, 0.5);
    /// On the line.
    const ON: (f32, f32) = (0.5, 0.5);
    /// Below the line's end, screen right / screen left (sides of the extension).
    const L_BELOW: (f32, f32) = (0.625, 0.875);
    const R_BELOW: (f32, f32) = (0.375, 0.875);
    /// On the extension below the end.
    const ON_BELOW: (f32, f32) = (0.5, 0.875);

    fn line(classes: &[CoarseClass], inertia: Option<u32>, names: [&str; 2]) -> LineConfig {
        LineConfig {
            name: TopicName::parse("border").unwrap(),
            polyline: Polyline::new(vec![Point::new(0.5, 0.25), Point::new(0.5, 0.75)]).unwrap(),
            direction_names: names.map(|n| TopicName::parse(n).unwrap()),
            classes: classes.to_vec(),
            inertia,
        }
    }

    #[test]
    fn crossings_from_table() {
        let both = &CoarseClass::ALL[..];
        let in_out = ["in", "out"];
        // name, line, class, anchors (one per update), expected (update index, direction)
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            LineConfig,
            CoarseClass,
            Vec<(f32, f32)>,
            Vec<(usize, &str)>,
        )> = vec![
            (
                "Left to Right is direction 0",
                line(both, None, in_out),
                PERSON,
                vec![L, L, R, R, R, R],
                vec![(4, "in")],
            ),
            (
                "Right to Left is direction 1",
                line(both, None, in_out),
                PERSON,
                vec![R, R, L, L, L],
                vec![(4, "out")],
            ),
            (
                "custom names",
                line(both, None, ["north", "south"]),
                PERSON,
                vec![R, L, L, L, R, R, R],
                vec![(3, "south"), (6, "north")],
            ),
            (
                "jitter shorter than inertia: nothing",
                line(both, None, in_out),
                PERSON,
                vec![L, R, L, R, R, L, R, L, L],
                vec![],
            ),
            (
                "jitter then crossing and staying: exactly one",
                line(both, None, in_out),
                PERSON,
                vec![L, R, L, R, L, R, R, R, R, R, R],
                vec![(7, "in")],
            ),
            (
                "jitter after crossing: nothing more",
                line(both, None, in_out),
                PERSON,
                vec![L, R, R, R, L, R, L, L, R, R],
                vec![(3, "in")],
            ),
            (
                "crossing back later: the other direction",
                line(both, None, in_out),
                PERSON,
                vec![L, R, R, R, R, R, L, L, L],
                vec![(3, "in"), (8, "out")],
            ),
            (
                "updates on the line neither count nor reset",
                line(both, None, in_out),
                PERSON,
                vec![L, ON, ON, R, ON, R, ON, R],
                vec![(7, "in")],
            ),
            (
                "stepping onto the line and back: nothing",
                line(both, None, in_out),
                PERSON,
                vec![L, ON, ON, L, ON, L, L],
                vec![],
            ),
            (
                "first seen on the line: the first side off it is stable",
                line(both, None, in_out),
                PERSON,
                vec![ON, ON, R, R, L, L, L],
                vec![(6, "out")],
            ),
            (
                "passing beyond the end: no crossing, new side stable",
                line(both, None, in_out),
                PERSON,
                vec![L, L_BELOW, R_BELOW, R_BELOW, R_BELOW, R, R, R],
                vec![],
            ),
            (
                "beyond the end, then back across the line itself",
                line(both, None, in_out),
                PERSON,
                vec![L, L_BELOW, R_BELOW, R_BELOW, R_BELOW, L, L, L],
                vec![(7, "out")],
            ),
            (
                "via the extension's on-line point: no crossing",
                line(both, None, in_out),
                PERSON,
                vec![L_BELOW, ON_BELOW, R_BELOW, R_BELOW, R_BELOW],
                vec![],
            ),
            (
                "via a point on the line itself: crossing",
                line(both, None, in_out),
                PERSON,
                vec![L_BELOW, ON, R_BELOW, R_BELOW, R_BELOW],
                vec![(4, "in")],
            ),
            (
                "inertia 1",
                line(both, Some(1), in_out),
                PERSON,
                vec![L, R, L],
                vec![(1, "in"), (2, "out")],
            ),
            (
                "class filter: persons ignored by a vehicle line",
                line(&[VEHICLE], None, in_out),
                PERSON,
                vec![L, R, R, R, R],
                vec![],
            ),
            (
                "class filter: vehicles counted by a vehicle line",
                line(&[VEHICLE], None, in_out),
                VEHICLE,
                vec![L, R, R, R, R],
                vec![(3, "in")],
            ),
        ];
        for (name, config, class, anchors, expected) in cases {
            let mut watch = LineWatch::new(&config, 3);
            let mut got = Vec::new();
            for (i, &(x, y)) in anchors.iter().enumerate() {
                #[allow(clippy::cast_precision_loss)]
                let t_s = i as f64;
                if let Some(crossing) = watch.update(1, class, Point::new(x, y), t_s) {
                    assert_eq!(crossing.line.as_str(), "border", "{name}");
                    assert_eq!(
                        crossing.direction, &config.direction_names[crossing.direction_index],
                        "{name}"
                    );
                    got.push((i, crossing.direction.to_string()));
                }
            }
            let expected: Vec<(usize, String)> = expected
                .into_iter()
                .map(|(i, d)| (i, d.to_owned()))
                .collect();
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn the_documented_example_walks_in_from_screen_right() {
        // The line: from (0.5, 0.2) straight down to (0.5, 0.95); screen right is Left,
        // so walking from screen right to screen left is Left → Right: `in`.
        let mut config = line(&CoarseClass::ALL, Some(1), ["in", "out"]);
        config.polyline = Polyline::new(vec![Point::new(0.5, 0.2), Point::new(0.5, 0.95)]).unwrap();
        let mut watch = LineWatch::new(&config, 3);
        assert_eq!(watch.update(1, PERSON, Point::new(0.8, 0.6), 0.0), None);
        assert_eq!(watch.side_of_track(1), Some(Side::Left));
        let crossing = watch.update(1, PERSON, Point::new(0.2, 0.6), 1.0).unwrap();
        assert_eq!(
            (crossing.direction.as_str(), crossing.direction_index),
            ("in", 0)
        );
        let crossing = watch.update(1, PERSON, Point::new(0.8, 0.6), 2.0).unwrap();
        assert_eq!(
            (crossing.direction.as_str(), crossing.direction_index),
            ("out", 1)
        );
    }

    #[test]
    fn tracks_are_independent_and_forget_drops_state() {
        let config = line(&CoarseClass::ALL, Some(2), ["in", "out"]);
        let mut watch = LineWatch::new(&config, 3);
        let [l, r] = [L, R].map(|(x, y)| Point::new(x, y));
        assert!(watch.update(1, PERSON, l, 0.0).is_none());
        assert!(watch.update(2, PERSON, r, 0.0).is_none());
        assert!(watch.update(1, PERSON, r, 1.0).is_none());
        assert!(watch.update(2, PERSON, l, 1.0).is_none());
        assert_eq!(
            watch.update(1, PERSON, r, 2.0).map(|c| c.direction_index),
            Some(0)
        );
        assert_eq!(
            watch.update(2, PERSON, l, 2.0).map(|c| c.direction_index),
            Some(1)
        );
        // A forgotten track starts again: its next update only sets the stable side.
        assert!(watch.update(3, PERSON, l, 3.0).is_none());
        watch.forget(3);
        assert_eq!(watch.n_tracks(), 2);
        assert!(watch.update(3, PERSON, r, 4.0).is_none());
        assert!(watch.update(3, PERSON, r, 5.0).is_none());
        assert_eq!(watch.side_of_track(3), Some(Side::Right));
        // Bad input is ignored.
        assert!(
            watch
                .update(4, PERSON, Point::new(f32::NAN, 0.5), 6.0)
                .is_none()
        );
        assert_eq!(watch.n_tracks(), 3);
    }
}
