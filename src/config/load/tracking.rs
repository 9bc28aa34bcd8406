//! `[tracking]` and `[events]` (optional): how detections become tracks, and what the events
//! about them carry.

use std::time::Duration;

use serde::Deserialize;

use super::Checker;
use super::checks::one_of;
use super::raw::{Float, Int};
use super::table::RawTable;
use crate::config::{EventKind, EventsConfig, SnapshotMode, TrackingConfig};

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTracking {
    min_hits: Option<Int>,
    max_age_s: Option<Float>,
    high_score: Option<Float>,
    match_iou: Option<Float>,
    inertia: Option<Int>,
}

impl RawTable for RawTracking {}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvents {
    snapshots: Option<String>,
    snapshot_kinds: Option<Vec<String>>,
    snapshot_max_width: Option<Int>,
    snapshot_quality: Option<Int>,
    metadata_only: Option<bool>,
}

impl RawTable for RawEvents {}

impl<'a> Checker<'a> {
    /// `[tracking]` (its defaults when the table is left out).
    pub(super) fn tracking(&mut self, raw: RawTracking) -> Option<TrackingConfig> {
        let default = TrackingConfig::default();
        let min_hits = self.int(
            "tracking.min_hits",
            raw.min_hits,
            1..=100,
            default.min_hits.into(),
        );
        let max_age = self
            .float(
                "tracking.max_age_s",
                raw.max_age_s,
                0.1..=60.0,
                default.max_age.as_secs_f64(),
            )
            .map(Duration::from_secs_f64);
        let high_score = self.float(
            "tracking.high_score",
            raw.high_score,
            0.0..=1.0,
            default.high_score.into(),
        );
        let match_iou = self.float(
            "tracking.match_iou",
            raw.match_iou,
            0.01..=1.0,
            default.match_iou.into(),
        );
        let inertia = self.int(
            "tracking.inertia",
            raw.inertia,
            1..=100,
            default.inertia.into(),
        );
        #[allow(clippy::cast_possible_truncation)]
        Some(TrackingConfig {
            min_hits: u32::try_from(min_hits?).ok()?,
            max_age: max_age?,
            high_score: high_score? as f32,
            match_iou: match_iou? as f32,
            inertia: u32::try_from(inertia?).ok()?,
        })
    }

    /// `[events]` (its defaults when the table is left out).
    pub(super) fn events(&mut self, raw: RawEvents) -> Option<EventsConfig> {
        let default = EventsConfig::default();
        let snapshots = match raw.snapshots.as_deref() {
            None => Some(default.snapshots),
            Some(name) => {
                let mode = SnapshotMode::parse(name);
                if mode.is_none() {
                    let message = format!(
                        "`{name}` is not a snapshot mode: use {}",
                        one_of(SnapshotMode::ALL.map(SnapshotMode::as_str))
                    );
                    self.problem("events.snapshots", message);
                }
                mode
            }
        };
        let snapshot_kinds = match raw.snapshot_kinds {
            None => Some(default.snapshot_kinds),
            Some(names) => self.event_kinds("events.snapshot_kinds", &names),
        };
        let snapshot_max_width = self.int(
            "events.snapshot_max_width",
            raw.snapshot_max_width,
            64..=7680,
            default.snapshot_max_width.into(),
        );
        let snapshot_quality = self.int(
            "events.snapshot_quality",
            raw.snapshot_quality,
            1..=100,
            default.snapshot_quality.into(),
        );
        Some(EventsConfig {
            snapshots: snapshots?,
            snapshot_kinds: snapshot_kinds?,
            snapshot_max_width: u32::try_from(snapshot_max_width?).ok()?,
            snapshot_quality: u8::try_from(snapshot_quality?).ok()?,
            metadata_only: raw.metadata_only.unwrap_or(default.metadata_only),
        })
    }

    fn event_kinds(&mut self, key: &str, names: &[String]) -> Option<Vec<EventKind>> {
        let mut kinds = Vec::with_capacity(names.len());
        let mut good = true;
        for name in names {
            match EventKind::parse(name) {
                Some(kind) if kinds.contains(&kind) => {
                    self.problem(key, format!("`{name}` is listed twice"));
                    good = false;
                }
                Some(kind) => kinds.push(kind),
                None => {
                    let message = format!(
                        "`{name}` is not an event kind: use {}",
                        one_of(EventKind::ALL.map(EventKind::as_str))
                    );
                    self.problem(key, message);
                    good = false;
                }
            }
        }
        good.then_some(kinds)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load::tests::{file, parse, problem, with};
    use crate::config::{EventKind, EventsConfig, SnapshotMode, TrackingConfig};
    use std::time::Duration;

    #[test]
    fn tracking_and_events_from_table() {
        let defaults = TrackingConfig::default();
        let cases: &[(&str, &str, Result<TrackingConfig, &str>)] = &[
            ("tracking", "", Ok(defaults.clone())),
            (
                "tracking",
                "min_hits = 1\nmax_age_s = 0.1\nhigh_score = 0\nmatch_iou = 0.01\ninertia = 1",
                Ok(TrackingConfig {
                    min_hits: 1,
                    max_age: Duration::from_millis(100),
                    high_score: 0.0,
                    match_iou: 0.01,
                    inertia: 1,
                }),
            ),
            (
                "tracking",
                "min_hits = 100\nmax_age_s = 60\nhigh_score = 1\nmatch_iou = 1\ninertia = 100",
                Ok(TrackingConfig {
                    min_hits: 100,
                    max_age: Duration::from_secs(60),
                    high_score: 1.0,
                    match_iou: 1.0,
                    inertia: 100,
                }),
            ),
            (
                "tracking",
                "min_hits = 0",
                Err("tracking.min_hits: must be between 1 and 100, got 0"),
            ),
            (
                "tracking",
                "min_hits = 2.5",
                Err(
                    "tracking.min_hits: invalid type: floating point `2.5`, expected a whole number",
                ),
            ),
            (
                "tracking",
                "max_age_s = 0.05",
                Err("tracking.max_age_s: must be between 0.1 and 60, got 0.05"),
            ),
            (
                "tracking",
                "max_age_s = 61",
                Err("tracking.max_age_s: must be between 0.1 and 60, got 61"),
            ),
            (
                "tracking",
                "high_score = 1.5",
                Err("tracking.high_score: must be between 0 and 1, got 1.5"),
            ),
            (
                "tracking",
                "high_score = nan",
                Err("tracking.high_score: must be between 0 and 1, got NaN"),
            ),
            (
                "tracking",
                "match_iou = 0",
                Err("tracking.match_iou: must be between 0.01 and 1, got 0"),
            ),
            (
                "tracking",
                "inertia = 101",
                Err("tracking.inertia: must be between 1 and 100, got 101"),
            ),
            (
                "tracking",
                "enabled = true",
                Err("tracking.enabled: unknown field `enabled`"),
            ),
        ];
        for &(section, lines, ref expected) in cases {
            let text = with(section, lines);
            match (parse(&text, file()), expected) {
                (Ok(config), Ok(tracking)) => assert_eq!(&config.tracking, tracking, "{lines}"),
                (Err(_), Err(message)) => {
                    let p = problem(&text);
                    assert_eq!(p.line, Some(11), "{lines}: {p:?}");
                    assert!(
                        format!("{}: {}", p.key, p.message).starts_with(message),
                        "{lines}: {p:?}"
                    );
                }
                (Ok(_), Err(e)) => panic!("{lines}: accepted, expected {e}"),
                (Err(e), Ok(_)) => panic!("{lines}: {e}"),
            }
        }

        let defaults = EventsConfig::default();
        let cases: &[(&str, Result<EventsConfig, &str>)] = &[
            ("", Ok(defaults.clone())),
            (
                "snapshots = \"off\"\nsnapshot_kinds = []\nsnapshot_max_width = 64\n\
                 snapshot_quality = 1\nmetadata_only = true",
                Ok(EventsConfig {
                    snapshots: SnapshotMode::Off,
                    snapshot_kinds: vec![],
                    snapshot_max_width: 64,
                    snapshot_quality: 1,
                    metadata_only: true,
                }),
            ),
            (
                "snapshots = \"redacted\"\nsnapshot_kinds = [\"track_start\", \"track_end\", \
                 \"zone_enter\", \"zone_exit\", \"loitering\", \"line_cross\"]\n\
                 snapshot_max_width = 7680\nsnapshot_quality = 100",
                Ok(EventsConfig {
                    snapshots: SnapshotMode::Redacted,
                    snapshot_kinds: EventKind::ALL.to_vec(),
                    snapshot_max_width: 7680,
                    snapshot_quality: 100,
                    metadata_only: false,
                }),
            ),
            (
                "snapshots = \"annotated\"",
                Ok(EventsConfig {
                    snapshots: SnapshotMode::Annotated,
                    ..defaults.clone()
                }),
            ),
            (
                "snapshots = \"blurred\"",
                Err(
                    "events.snapshots: `blurred` is not a snapshot mode: use `off`, `annotated` or `redacted`",
                ),
            ),
            (
                "snapshot_kinds = [\"zone_entry\"]",
                Err(
                    "events.snapshot_kinds: `zone_entry` is not an event kind: use `track_start`, `track_end`, `zone_enter`, `zone_exit`, `loitering` or `line_cross`",
                ),
            ),
            (
                "snapshot_kinds = [\"loitering\", \"loitering\"]",
                Err("events.snapshot_kinds: `loitering` is listed twice"),
            ),
            (
                "snapshot_max_width = 63",
                Err("events.snapshot_max_width: must be between 64 and 7680, got 63"),
            ),
            (
                "snapshot_max_width = 7681",
                Err("events.snapshot_max_width: must be between 64 and 7680, got 7681"),
            ),
            (
                "snapshot_quality = 0",
                Err("events.snapshot_quality: must be between 1 and 100, got 0"),
            ),
            (
                "snapshot_quality = 101",
                Err("events.snapshot_quality: must be between 1 and 100, got 101"),
            ),
            (
                "metadata_only = \"yes\"",
                Err("events.metadata_only: invalid type: string \"yes\", expected a boolean"),
            ),
        ];
        for (lines, expected) in cases {
            let text = with("events", lines);
            match (parse(&text, file()), expected) {
                (Ok(config), Ok(events)) => assert_eq!(&config.events, events, "{lines}"),
                (Err(_), Err(message)) => {
                    let p = problem(&text);
                    assert_eq!(p.line, Some(11), "{lines}: {p:?}");
                    assert!(
                        format!("{}: {}", p.key, p.message).starts_with(message),
                        "{lines}: {p:?}"
                    );
                }
                (Ok(_), Err(e)) => panic!("{lines}: accepted, expected {e}"),
                (Err(e), Ok(_)) => panic!("{lines}: {e}"),
            }
        }
    }
}
