//! Zone presence: which tracked objects are inside a zone, and when they enter, leave or
//! loiter.
//!
//! Pure state machine: positions and times are passed in, nothing here reads a clock. One
//! [`ZoneWatch`] per configured zone, fed one update per tracked object per analysed frame, in
//! time order.
//!
//! # Rules
//! - The anchor of an object is the bottom centre of its box (where it stands), normalised.
//!   An anchor on the zone's outline counts as inside ([`Polygon::contains`]).
//! - Every track starts *outside*. A change (outside → inside or back) is confirmed after the
//!   anchor was on the new side for `inertia` consecutive updates; any update on the confirmed
//!   side in between resets the count. So a track first seen inside produces `Enter` on its
//!   `inertia`-th update inside; a track first seen outside produces nothing; jitter at the
//!   edge shorter than `inertia` produces nothing.
//! - Times are those of the *first* update of the sustained run: a stay starts at the first
//!   update inside of the run that confirmed the `Enter`, and ends at the first update outside
//!   of the run that confirmed the `Exit`. `Exit { dwell_s }` is the difference.
//! - `Loiter { dwell_s }` fires once per stay, on the first update inside at which
//!   `t_s − start of stay ≥ loiter` (possibly in the same update as `Enter`, after it). Updates
//!   outside during a not yet confirmed exit do not fire it.
//! - Updates for classes the zone does not list, or with a non-finite anchor or time, are
//!   ignored (the track's state is kept as it was).
//! - [`ZoneWatch::forget`] drops a track's state without an event; the caller calls it when a
//!   track ends, which bounds the memory to the live tracks.

use std::collections::HashMap;

use crate::config::{TopicName, ZoneConfig};
use crate::detect::CoarseClass;
use crate::geometry::{Point, Polygon};

/// What happened to a track in a zone.
#[derive(Clone, Debug, PartialEq)]
pub enum ZoneEventKind {
    /// The track is confirmed inside (`zone_enter`).
    Enter,
    /// The track is confirmed outside again after `dwell_s` seconds inside (`zone_exit`).
    Exit { dwell_s: f64 },
    /// The track has been inside for `dwell_s >= loiter` seconds (`loitering`), once per stay.
    Loiter { dwell_s: f64 },
}

/// An event of one zone.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneEvent {
    pub kind: ZoneEventKind,
    /// The zone's name.
    pub zone: TopicName,
}

/// Watches one zone for every track of a camera.
#[derive(Clone, Debug)]
pub struct ZoneWatch {
    name: TopicName,
    polygon: Polygon,
    classes: Vec<CoarseClass>,
    loiter_s: Option<f64>,
    inertia: u32,
    tracks: HashMap<u64, ZoneTrack>,
}

#[derive(Clone, Debug)]
struct ZoneTrack {
    /// The confirmed state.
    inside: bool,
    /// When the current stay started (meaningful while `inside`).
    stay_start_s: f64,
    /// `Loiter` already fired for the current stay.
    loitered: bool,
    /// Consecutive updates on the other side than `inside`.
    run: u32,
    /// Time of the first update of that run.
    run_start_s: f64,
}

impl ZoneWatch {
    /// A watch for `zone`; `default_inertia` (`[tracking] inertia`) applies unless the zone
    /// sets its own. An inertia of 0 counts as 1.
    pub fn new(zone: &ZoneConfig, default_inertia: u32) -> ZoneWatch {
        ZoneWatch {
            name: zone.name.clone(),
            polygon: zone.polygon.clone(),
            classes: zone.classes.clone(),
            loiter_s: zone.loiter.map(|d| d.as_secs_f64()),
            inertia: zone.inertia.unwrap_or(default_inertia).max(1),
            tracks: HashMap::new(),
        }
    }

    /// The zone's name.
    pub fn name(&self) -> &TopicName {
        &self.name
    }

    /// How many tracks are confirmed inside now.
    pub fn occupancy(&self) -> usize {
        self.tracks.values().filter(|t| t.inside).count()
    }

    /// Feeds one position of `track_id` (anchor: bottom centre of its box, normalised) at
    /// `t_s` seconds; returns the events it causes (usually none), in order.
    pub fn update(
        &mut self,
        track_id: u64,
        class: CoarseClass,
        anchor: Point,
        t_s: f64,
    ) -> Vec<ZoneEvent> {
        let mut events = Vec::new();
        if !self.classes.contains(&class) || !anchor.is_finite() || !t_s.is_finite() {
            return events;
        }
        let observed_inside = self.polygon.contains(anchor);
        let track = self.tracks.entry(track_id).or_insert(ZoneTrack {
            inside: false,
            stay_start_s: t_s,
            loitered: false,
            run: 0,
            run_start_s: t_s,
        });
        let mut kinds = Vec::new();
        if observed_inside == track.inside {
            track.run = 0;
        } else {
            if track.run == 0 {
                track.run_start_s = t_s;
            }
            track.run = track.run.saturating_add(1);
            if track.run >= self.inertia {
                track.run = 0;
                track.inside = observed_inside;
                if observed_inside {
                    track.stay_start_s = track.run_start_s;
                    track.loitered = false;
                    kinds.push(ZoneEventKind::Enter);
                } else {
                    let dwell_s = (track.run_start_s - track.stay_start_s).max(0.0);
                    kinds.push(ZoneEventKind::Exit { dwell_s });
                }
            }
        }
        if observed_inside && track.inside && !track.loitered {
            let dwell_s = (t_s - track.stay_start_s).max(0.0);
            if self.loiter_s.is_some_and(|loiter_s| dwell_s >= loiter_s) {
                track.loitered = true;
                kinds.push(ZoneEventKind::Loiter { dwell_s });
            }
        }
        events.extend(kinds.into_iter().map(|kind| ZoneEvent {
            kind,
            zone: self.name.clone(),
        }));
        events
    }

    /// The track ended: drops its state, no event.
    pub fn forget(&mut self, track_id: u64) {
        self.tracks.remove(&track_id);
    }

    /// Whether `track_id` is confirmed inside.
    pub fn is_inside(&self, track_id: u64) -> bool {
        self.tracks.get(&track_id).is_some_and(|t| t.inside)
    }

    /// How many tracks have state here.
    pub fn n_tracks(&self) -> usize {
        self.tracks.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const IN: (f32, f32) = (0.5, 0.5);
    const OUT: (f32, f32) = (0.05, 0.5);
    /// On the zone's left edge: counts as inside.
    const EDGE: (f32, f32) = (0.25, 0.5);
    const PERSON: CoarseClass = CoarseClass::Person;
    const VEHICLE: CoarseClass = CoarseClass::Vehicle;

    fn zone(classes: &[CoarseClass], loiter_s: Option<u64>, inertia: Option<u32>) -> ZoneConfig {
        let points = [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)]
            .map(|(x, y)| Point::new(x, y))
            .to_vec();
        ZoneConfig {
            name: TopicName::parse("road").unwrap(),
            polygon: Polygon::new(points).unwrap(),
            classes: classes.to_vec(),
            loiter: loiter_s.map(Duration::from_secs),
            inertia,
        }
    }

    fn enter() -> ZoneEventKind {
        ZoneEventKind::Enter
    }
    fn exit(dwell_s: f64) -> ZoneEventKind {
        ZoneEventKind::Exit { dwell_s }
    }
    fn loiter(dwell_s: f64) -> ZoneEventKind {
        ZoneEventKind::Loiter { dwell_s }
    }

    /// One update per second from t = 0, each `(track, class, anchor)`.
    type Step = (u64, CoarseClass, (f32, f32));

    fn steps(track: u64, class: CoarseClass, anchors: &[(f32, f32)]) -> Vec<Step> {
        anchors.iter().map(|&a| (track, class, a)).collect()
    }

    #[test]
    fn zone_events_from_table() {
        let both = &CoarseClass::ALL[..];
        // name, zone, updates (one per second from t = 0), expected (update index, track, kind)
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            ZoneConfig,
            Vec<Step>,
            Vec<(usize, u64, ZoneEventKind)>,
        )> = vec![
            (
                "enter then exit with inertia 3",
                zone(both, None, None),
                steps(1, PERSON, &[OUT, OUT, IN, IN, IN, IN, OUT, OUT, OUT, OUT]),
                vec![(4, 1, enter()), (8, 1, exit(4.0))],
            ),
            (
                "first seen inside: enter after inertia updates",
                zone(both, None, None),
                steps(1, PERSON, &[IN, IN, IN, IN]),
                vec![(2, 1, enter())],
            ),
            (
                "first seen outside: nothing",
                zone(both, None, None),
                steps(1, PERSON, &[OUT, OUT, OUT, OUT, OUT]),
                vec![],
            ),
            (
                "jitter at the edge: nothing",
                zone(both, None, None),
                steps(1, PERSON, &[OUT, IN, IN, OUT, IN, OUT, IN, IN, OUT, OUT]),
                vec![],
            ),
            (
                "jitter while inside: no exit",
                zone(both, None, None),
                steps(1, PERSON, &[IN, IN, IN, OUT, OUT, IN, OUT, IN, IN]),
                vec![(2, 1, enter())],
            ),
            (
                "on the outline counts as inside",
                zone(both, None, None),
                steps(1, PERSON, &[EDGE, EDGE, EDGE]),
                vec![(2, 1, enter())],
            ),
            (
                "inertia 1 from the zone",
                zone(both, None, Some(1)),
                steps(1, PERSON, &[OUT, IN, OUT]),
                vec![(1, 1, enter()), (2, 1, exit(1.0))],
            ),
            (
                "loitering fires once, timed from the first update inside",
                zone(both, Some(5), None),
                steps(1, PERSON, &[OUT, IN, IN, IN, IN, IN, IN, IN, IN, IN, IN]),
                vec![(3, 1, enter()), (6, 1, loiter(5.0))],
            ),
            (
                "loitering again after leaving and coming back",
                zone(both, Some(3), Some(1)),
                steps(1, PERSON, &[IN, IN, IN, IN, IN, OUT, IN, IN, IN, IN]),
                vec![
                    (0, 1, enter()),
                    (3, 1, loiter(3.0)),
                    (5, 1, exit(5.0)),
                    (6, 1, enter()),
                    (9, 1, loiter(3.0)),
                ],
            ),
            (
                "loiter shorter than inertia: in the same update, after enter",
                zone(both, Some(1), Some(3)),
                steps(1, PERSON, &[IN, IN, IN]),
                vec![(2, 1, enter()), (2, 1, loiter(2.0))],
            ),
            (
                "no loitering during a pending exit",
                zone(both, Some(4), None),
                steps(1, PERSON, &[IN, IN, IN, IN, OUT, OUT, IN]),
                vec![(2, 1, enter()), (6, 1, loiter(6.0))],
            ),
            (
                "class filter: persons ignored by a vehicle zone",
                zone(&[VEHICLE], Some(1), None),
                steps(1, PERSON, &[IN, IN, IN, IN, OUT, OUT, OUT]),
                vec![],
            ),
            (
                "class filter: vehicles counted by a vehicle zone",
                zone(&[VEHICLE], None, None),
                steps(1, VEHICLE, &[IN, IN, IN]),
                vec![(2, 1, enter())],
            ),
            (
                "tracks are independent",
                zone(both, None, Some(2)),
                vec![
                    (1, PERSON, IN),
                    (2, PERSON, OUT),
                    (1, PERSON, IN),
                    (2, PERSON, IN),
                    (1, PERSON, OUT),
                    (2, PERSON, IN),
                ],
                vec![(2, 1, enter()), (5, 2, enter())],
            ),
        ];
        for (name, config, updates, expected) in cases {
            let mut watch = ZoneWatch::new(&config, 3);
            let mut got = Vec::new();
            for (i, &(track, class, (x, y))) in updates.iter().enumerate() {
                #[allow(clippy::cast_precision_loss)]
                let t_s = i as f64;
                for event in watch.update(track, class, Point::new(x, y), t_s) {
                    assert_eq!(event.zone.as_str(), "road", "{name}");
                    got.push((i, track, event.kind));
                }
            }
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn forget_drops_state_without_event() {
        let config = zone(&CoarseClass::ALL, None, Some(1));
        let mut watch = ZoneWatch::new(&config, 3);
        let kinds = |events: Vec<ZoneEvent>| -> Vec<ZoneEventKind> {
            events.into_iter().map(|e| e.kind).collect()
        };
        let inside = Point::new(IN.0, IN.1);
        assert_eq!(kinds(watch.update(7, PERSON, inside, 0.0)), vec![enter()]);
        assert!(watch.is_inside(7));
        watch.forget(7);
        assert_eq!(watch.n_tracks(), 0);
        assert!(!watch.is_inside(7));
        // The same id afterwards is a new track: it starts outside.
        assert_eq!(kinds(watch.update(7, PERSON, inside, 1.0)), vec![enter()]);
        // Bad input is ignored.
        let nan = Point::new(f32::NAN, 0.5);
        assert!(watch.update(8, PERSON, nan, 2.0).is_empty());
        assert!(watch.update(8, PERSON, inside, f64::NAN).is_empty());
        assert_eq!(watch.n_tracks(), 1);
    }

    #[test]
    fn default_inertia_applies_unless_the_zone_overrides_it() {
        let inside = Point::new(IN.0, IN.1);
        for (zone_inertia, default, enter_at) in [(None, 2, 1), (None, 0, 0), (Some(4), 2, 3)] {
            let config = zone(&CoarseClass::ALL, None, zone_inertia);
            let mut watch = ZoneWatch::new(&config, default);
            let first = (0..10)
                .position(|i| !watch.update(1, PERSON, inside, f64::from(i)).is_empty())
                .unwrap();
            assert_eq!(first, enter_at, "{zone_inertia:?} {default}");
        }
    }
}
