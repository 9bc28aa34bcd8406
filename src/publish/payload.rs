//! The JSON payloads, as serde types: the only place that knows their shapes. Each carries a
//! `schema` field naming its version; `src/publish/schemas/*.schema.json` describe them and the
//! tests validate every message against those files.
//!
//! Building a payload is pure: counters, times and names in, a serialisable value out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

use crate::config::TopicName;
use crate::detect::{CoarseClass, Object};
use crate::framepath::AnalysedFrame;
use crate::health::{
    Activity, CameraCounters, CameraState, DropReason, HistogramSnapshot, ProcessSample,
};
use crate::ingest::CaptureClock;

/// `schema` of `status` (and of the last will).
pub const STATUS_SCHEMA: &str = "watchpost.status/1";
/// `schema` of `{camera}/detections`.
pub const DETECTIONS_SCHEMA: &str = "watchpost.detections/1";
/// `schema` of `{camera}/events`.
pub const EVENTS_SCHEMA: &str = "watchpost.events/1";
/// `schema` of `health`.
pub const HEALTH_SCHEMA: &str = "watchpost.health/1";

/// The agent's version, as `status` reports it.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The last instant RFC 3339 can write with a four-digit year: 9999-12-31T23:59:59.999Z.
const MAX_RFC3339: Duration = Duration::from_millis(253_402_300_799_999);

/// `2026-11-29T02:31:08.123Z`: RFC 3339, UTC, milliseconds (truncated). A time before 1970 is
/// written as 1970-01-01T00:00:00.000Z and one after year 9999 as its last millisecond, so a
/// camera with a wild clock cannot produce an unparsable timestamp.
pub fn rfc3339_millis(time: SystemTime) -> String {
    let since_epoch = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .min(MAX_RFC3339);
    humantime::format_rfc3339_millis(UNIX_EPOCH + since_epoch).to_string()
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

/// `online` or `offline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    Online,
    Offline,
}

/// One camera in `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CameraStatus {
    pub name: TopicName,
    pub state: CameraState,
}

/// `status`: retained, QoS 1; the last will is the same with state `offline`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusPayload {
    pub schema: &'static str,
    pub state: DeviceState,
    pub version: &'static str,
    pub started_at: String,
    pub cameras: Vec<CameraStatus>,
}

impl StatusPayload {
    pub fn new(state: DeviceState, started_at: SystemTime, cameras: Vec<CameraStatus>) -> Self {
        StatusPayload {
            schema: STATUS_SCHEMA,
            state,
            version: AGENT_VERSION,
            started_at: rfc3339_millis(started_at),
            cameras,
        }
    }
}

/// `frame` in `detections`: the analysed picture's size in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameSize {
    pub width: usize,
    pub height: usize,
}

/// `{camera}/detections`: one message per analysed frame with at least one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DetectionsPayload<'a> {
    pub schema: &'static str,
    pub camera: &'a TopicName,
    pub seq: u64,
    pub captured_at: String,
    pub clock: CaptureClock,
    pub published_at: String,
    /// Frame arrival at the agent → publication, monotonic clock, 0.1 ms resolution.
    pub latency_ms: f64,
    pub frame: FrameSize,
    pub model: &'a str,
    pub objects: Vec<TrackedObject<'a>>,
}

/// `{camera}/detections` as a subscriber reads it: what [`DetectionsPayload`] writes, owned.
/// Fields a later minor version adds are ignored, as the contract promises consumers.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ReceivedDetections {
    pub schema: String,
    pub camera: String,
    pub seq: u64,
    pub captured_at: String,
    pub clock: CaptureClock,
    pub published_at: String,
    pub latency_ms: f64,
    pub frame: FrameSize,
    pub model: String,
    pub objects: Vec<ReceivedObject>,
}

/// One of [`ReceivedDetections::objects`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ReceivedObject {
    pub class: String,
    pub label: String,
    pub score: f32,
    pub bbox: [f32; 4],
    #[serde(default)]
    pub track_id: Option<u64>,
}

impl ReceivedDetections {
    /// Reads a `detections` message of this schema version.
    ///
    /// # Errors
    /// A one-line reason: not JSON of this shape, or another schema.
    pub fn parse(payload: &[u8]) -> Result<ReceivedDetections, String> {
        let message: ReceivedDetections = serde_json::from_slice(payload)
            .map_err(|e| format!("not a detections message: {e}"))?;
        if message.schema != DETECTIONS_SCHEMA {
            return Err(format!(
                "schema `{}`, expected `{DETECTIONS_SCHEMA}`",
                message.schema
            ));
        }
        Ok(message)
    }

    /// How many objects of `class` the message holds.
    pub fn count(&self, class: CoarseClass) -> usize {
        self.objects
            .iter()
            .filter(|o| o.class == class.as_str())
            .count()
    }
}

/// An object as `watchpost detect` prints it, plus the id of its confirmed track.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrackedObject<'a> {
    #[serde(flatten)]
    pub object: &'a Object,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_id: Option<u64>,
}

/// `{camera}/events`: one decided event.
#[derive(Clone, Debug, Serialize)]
pub struct EventPayload<'a> {
    pub schema: &'static str,
    pub event_id: &'a str,
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: crate::config::EventKind,
    pub camera: &'a str,
    pub at: String,
    pub track_id: u64,
    pub class: &'static str,
    pub label: &'a str,
    pub score: f32,
    pub bbox: [f32; 4],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dwell_s: Option<f64>,
    /// Topic of the event's picture, when one was published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// `{camera}/events` of type `events_dropped`: events of this camera that will never be
/// delivered, and why.
#[derive(Clone, Debug, Serialize)]
pub struct DroppedEventsPayload<'a> {
    pub schema: &'static str,
    pub event_id: &'a str,
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub camera: &'a str,
    pub at: String,
    pub dropped: DroppedEvents,
}

#[derive(Clone, Debug, Serialize)]
pub struct DroppedEvents {
    /// `full`, `expired`, `backlog` or `write_failed`.
    pub reason: &'static str,
    pub count: u64,
    /// The seq range dropped, for events that had been numbered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
}

impl<'a> DroppedEventsPayload<'a> {
    pub fn new(
        camera: &'a str,
        seq: u64,
        event_id: &'a str,
        notice: &crate::outbox::DropNotice,
    ) -> Self {
        DroppedEventsPayload {
            schema: EVENTS_SCHEMA,
            event_id,
            seq,
            kind: "events_dropped",
            camera,
            at: rfc3339_millis(notice.at),
            dropped: DroppedEvents {
                reason: notice.reason.as_str(),
                count: notice.count,
                first_seq: notice.seqs.map(|(first, _)| first),
                last_seq: notice.seqs.map(|(_, last)| last),
            },
        }
    }
}

impl<'a> EventPayload<'a> {
    pub fn new(
        camera: &'a str,
        seq: u64,
        event_id: &'a str,
        event: &'a crate::events::Event,
        snapshot_topic: Option<String>,
    ) -> Self {
        EventPayload {
            schema: EVENTS_SCHEMA,
            event_id,
            seq,
            kind: event.kind,
            camera,
            at: rfc3339_millis(event.at),
            track_id: event.track_id,
            class: event.class,
            label: &event.label,
            score: event.score,
            bbox: event.bbox,
            zone: event.zone.as_deref(),
            line: event.line.as_deref(),
            direction: event.direction.as_deref(),
            dwell_s: event.dwell_s,
            snapshot: snapshot_topic,
        }
    }
}

impl<'a> DetectionsPayload<'a> {
    pub fn new(
        camera: &'a TopicName,
        frame: &'a AnalysedFrame,
        model: &'a str,
        published_at: SystemTime,
        latency: Duration,
    ) -> Self {
        DetectionsPayload {
            schema: DETECTIONS_SCHEMA,
            camera,
            seq: frame.seq,
            captured_at: rfc3339_millis(frame.captured_at),
            clock: frame.clock,
            published_at: rfc3339_millis(published_at),
            latency_ms: round_to(latency.as_secs_f64() * 1e3, 1),
            frame: FrameSize {
                width: frame.width,
                height: frame.height,
            },
            model,
            objects: frame
                .objects
                .iter()
                .enumerate()
                .map(|(i, object)| TrackedObject {
                    object,
                    track_id: frame.track_ids.get(i).copied().flatten(),
                })
                .collect(),
        }
    }
}

/// A count for every [`DropReason`], serialised as an object keyed by
/// [`DropReason::as_str`], in [`DropReason::ALL`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropCounts(pub [(DropReason, u64); DropReason::ALL.len()]);

impl Serialize for DropCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (reason, count) in &self.0 {
            map.serialize_entry(reason.as_str(), count)?;
        }
        map.end()
    }
}

/// p50 and p99 of a histogram over one interval, `null` when it had no values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

impl Percentiles {
    /// Bucket upper bounds; a value in the overflow bucket is reported as the largest finite
    /// bound (JSON has no infinity).
    pub fn of(histogram: &HistogramSnapshot) -> Percentiles {
        let largest_finite = || {
            histogram
                .cumulative_buckets()
                .iter()
                .rev()
                .map(|(bound, _)| *bound)
                .find(|bound| bound.is_finite())
        };
        let at = |q: f64| {
            histogram.quantile(q).and_then(|v| {
                if v.is_finite() {
                    Some(round_to(v, 1))
                } else {
                    largest_finite()
                }
            })
        };
        Percentiles {
            p50: at(0.5),
            p99: at(0.99),
        }
    }
}

/// One camera in `health`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraHealth {
    pub name: TopicName,
    pub state: CameraState,
    /// `active` (analysed at `detect_fps`) or `idle` (nothing moves: `idle_fps`), now.
    pub activity: Activity,
    /// Frames delivered by the pipeline per second over the interval.
    pub fps_in: f64,
    /// Frames analysed per second over the interval.
    pub fps_analysed: f64,
    /// Drops in this interval.
    pub drops: DropCounts,
    /// Drops since the start.
    pub drops_total: DropCounts,
    pub inference_ms: Percentiles,
    pub latency_ms: Percentiles,
    /// Pipeline reconnects since the start.
    pub reconnects: u64,
    /// Pipeline errors since the start.
    pub errors: u64,
    /// Seconds since the newest frame, `null` before the first.
    pub last_frame_age_s: Option<f64>,
    pub last_error: Option<String>,
}

impl CameraHealth {
    /// `now` and `earlier` are cumulative snapshots of one camera taken `elapsed` apart; `wall`
    /// is the wall clock at `now` (for the age of the last frame).
    pub fn from_counters(
        name: &TopicName,
        now: &CameraCounters,
        earlier: &CameraCounters,
        elapsed: Duration,
        wall: SystemTime,
    ) -> CameraHealth {
        let delta = now.since(earlier);
        let seconds = elapsed.as_secs_f64();
        let rate = |count: u64| {
            if seconds > 0.0 {
                round_to(count as f64 / seconds, 2)
            } else {
                0.0
            }
        };
        let wall_ms = crate::health::unix_ms(wall);
        CameraHealth {
            name: name.clone(),
            state: now.state,
            activity: now.activity,
            fps_in: rate(delta.frames_in),
            fps_analysed: rate(delta.frames_analysed),
            drops: DropCounts(delta.drops),
            drops_total: DropCounts(now.drops),
            inference_ms: Percentiles::of(&delta.inference_ms),
            latency_ms: Percentiles::of(&delta.latency_ms),
            reconnects: now.reconnects,
            errors: now.errors,
            last_frame_age_s: now
                .last_frame_unix_ms
                .map(|last| round_to(wall_ms.saturating_sub(last) as f64 / 1e3, 3)),
            last_error: now.last_error.clone(),
        }
    }
}

/// `process` in `health`; `null` figures where `/proc` could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ProcessFigures {
    pub rss_bytes: Option<u64>,
    /// CPU time over the interval as a share of one core.
    pub cpu_cores: Option<f64>,
}

impl From<Option<ProcessSample>> for ProcessFigures {
    fn from(sample: Option<ProcessSample>) -> Self {
        ProcessFigures {
            rss_bytes: sample.map(|s| s.rss_bytes),
            cpu_cores: sample.map(|s| round_to(s.cpu_cores, 3)),
        }
    }
}

/// `broker` in `health`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BrokerHealth {
    pub connected: bool,
    /// Successful connections after the first.
    pub reconnects: u64,
}

/// The event outbox, in `health`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxHealth {
    /// The outbox can be written.
    pub ok: bool,
    /// Why not, while not `ok`: what failed, the file and the system's reason, on one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Events waiting for the broker's acknowledgement.
    pub pending: u64,
    pub bytes: u64,
    /// Age of the oldest pending event, seconds; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_s: Option<f64>,
    /// Since the agent started.
    pub delivered: u64,
    pub dropped: OutboxDrops,
    /// Events lost to disk damage found in the outbox since the agent started.
    pub damaged: u64,
}

/// Events dropped since the agent started, by reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxDrops {
    pub full: u64,
    pub expired: u64,
    pub backlog: u64,
    pub write_failed: u64,
}

impl OutboxHealth {
    pub fn new(figures: &crate::outbox::OutboxFigures, now: SystemTime) -> OutboxHealth {
        let now_ms = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        OutboxHealth {
            ok: figures.usable,
            error: figures.error.clone(),
            pending: figures.pending,
            bytes: figures.bytes,
            oldest_s: figures
                .oldest_ms
                .map(|ms| round_to(now_ms.saturating_sub(ms) as f64 / 1e3, 3)),
            delivered: figures.delivered,
            dropped: OutboxDrops {
                full: figures.dropped_full,
                expired: figures.dropped_expired,
                backlog: figures.dropped_backlog,
                write_failed: figures.write_errors,
            },
            damaged: figures.damaged,
        }
    }
}

/// `health`: every `[health] interval`, QoS 0, not retained.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HealthPayload {
    pub schema: &'static str,
    pub at: String,
    /// The interval this message covers, measured.
    pub interval_s: f64,
    pub uptime_s: f64,
    pub process: ProcessFigures,
    pub cameras: Vec<CameraHealth>,
    pub broker: BrokerHealth,
    pub outbox: OutboxHealth,
}

impl HealthPayload {
    pub fn new(
        at: SystemTime,
        interval: Duration,
        uptime: Duration,
        process: ProcessFigures,
        cameras: Vec<CameraHealth>,
        broker: BrokerHealth,
        outbox: OutboxHealth,
    ) -> Self {
        HealthPayload {
            schema: HEALTH_SCHEMA,
            at: rfc3339_millis(at),
            interval_s: round_to(interval.as_secs_f64(), 3),
            uptime_s: round_to(uptime.as_secs_f64(), 3),
            process,
            cameras,
            broker,
            outbox,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::CameraStats;
    use std::time::Instant;

    fn name(s: &str) -> TopicName {
        TopicName::parse(s).unwrap()
    }

    fn at_ms(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn rfc3339_from_tables() {
        let cases = [
            (UNIX_EPOCH, "1970-01-01T00:00:00.000Z"),
            (at_ms(1_795_919_468_123), "2026-11-29T02:31:08.123Z"),
            (
                UNIX_EPOCH + Duration::from_nanos(1_795_919_468_123_999_999),
                "2026-11-29T02:31:08.123Z",
            ),
            (at_ms(951_782_400_000), "2000-02-29T00:00:00.000Z"),
            (at_ms(1_709_251_199_999), "2024-02-29T23:59:59.999Z"),
            (
                UNIX_EPOCH - Duration::from_secs(1),
                "1970-01-01T00:00:00.000Z",
            ),
            (
                UNIX_EPOCH + Duration::from_secs(300_000_000_000),
                "9999-12-31T23:59:59.999Z",
            ),
        ];
        for (time, expected) in cases {
            let text = rfc3339_millis(time);
            assert_eq!(text, expected);
            if time >= UNIX_EPOCH && time < UNIX_EPOCH + MAX_RFC3339 {
                // Round trip to the millisecond.
                let parsed = humantime::parse_rfc3339(&text).unwrap();
                let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_millis();
                assert_eq!(ms(parsed), ms(time), "{expected}");
            }
        }
    }

    #[test]
    fn status_serialises_exactly() {
        let payload = StatusPayload::new(
            DeviceState::Online,
            at_ms(1_795_919_468_123),
            vec![
                CameraStatus {
                    name: name("gate"),
                    state: CameraState::Streaming,
                },
                CameraStatus {
                    name: name("yard"),
                    state: CameraState::Retrying,
                },
            ],
        );
        assert_eq!(
            serde_json::to_string(&payload).unwrap(),
            format!(
                r#"{{"schema":"watchpost.status/1","state":"online","version":"{AGENT_VERSION}","started_at":"2026-11-29T02:31:08.123Z","cameras":[{{"name":"gate","state":"streaming"}},{{"name":"yard","state":"retrying"}}]}}"#
            )
        );
        let offline = StatusPayload::new(DeviceState::Offline, UNIX_EPOCH, Vec::new());
        assert!(
            serde_json::to_string(&offline)
                .unwrap()
                .contains(r#""state":"offline""#)
        );
    }

    #[test]
    fn detections_serialise_exactly() {
        let frame = AnalysedFrame {
            camera: 0,
            seq: 42,
            captured_at: at_ms(1_795_919_468_123),
            clock: CaptureClock::Camera,
            arrived: Instant::now(),
            width: 1920,
            height: 1080,
            objects: vec![
                Object {
                    class: "person",
                    label: "person".to_owned(),
                    score: 0.875,
                    bbox: [0.5, 0.25, 0.125, 0.5],
                },
                Object {
                    class: "vehicle",
                    label: "car".to_owned(),
                    score: 0.5,
                    bbox: [0.0, 0.75, 0.25, 0.25],
                },
            ],
            track_ids: vec![Some(7), None],
            inference: Duration::from_millis(50),
        };
        let camera = name("gate");
        let payload = DetectionsPayload::new(
            &camera,
            &frame,
            "nanodet-m-416",
            at_ms(1_795_919_468_200),
            Duration::from_micros(76_543),
        );
        assert_eq!(
            serde_json::to_string(&payload).unwrap(),
            concat!(
                r#"{"schema":"watchpost.detections/1","camera":"gate","seq":42,"#,
                r#""captured_at":"2026-11-29T02:31:08.123Z","clock":"camera","#,
                r#""published_at":"2026-11-29T02:31:08.200Z","latency_ms":76.5,"#,
                r#""frame":{"width":1920,"height":1080},"model":"nanodet-m-416","#,
                r#""objects":[{"class":"person","label":"person","score":0.875,"bbox":[0.5,0.25,0.125,0.5],"track_id":7},"#,
                r#"{"class":"vehicle","label":"car","score":0.5,"bbox":[0.0,0.75,0.25,0.25]}]}"#
            )
        );
    }

    #[test]
    fn detections_read_back_as_written() {
        let frame = AnalysedFrame {
            camera: 0,
            seq: 9,
            captured_at: at_ms(1_795_919_468_123),
            clock: CaptureClock::Agent,
            arrived: Instant::now(),
            width: 640,
            height: 360,
            objects: vec![Object {
                class: "person",
                label: "person".to_owned(),
                score: 0.5,
                bbox: [0.25, 0.5, 0.125, 0.25],
            }],
            track_ids: vec![Some(3)],
            inference: Duration::from_millis(5),
        };
        let camera = name("gate");
        let payload = DetectionsPayload::new(
            &camera,
            &frame,
            "m",
            at_ms(1_795_919_468_200),
            Duration::ZERO,
        );
        let text = serde_json::to_vec(&payload).unwrap();
        let read = ReceivedDetections::parse(&text).unwrap();
        assert_eq!(
            (read.camera.as_str(), read.seq, read.clock, read.frame),
            ("gate", 9, CaptureClock::Agent, payload.frame)
        );
        assert_eq!(
            (&read.captured_at, &read.published_at),
            (&payload.captured_at, &payload.published_at)
        );
        assert_eq!(
            (
                read.count(CoarseClass::Person),
                read.count(CoarseClass::Vehicle)
            ),
            (1, 0)
        );
        assert_eq!(read.objects[0].track_id, Some(3));
        assert_eq!(read.objects[0].bbox, frame.objects[0].bbox);
        // Fields added later are ignored; another schema or shape is refused with a reason.
        let mut value: serde_json::Value = serde_json::from_slice(&text).unwrap();
        value["added_in_1_1"] = serde_json::json!(true);
        assert!(ReceivedDetections::parse(value.to_string().as_bytes()).is_ok());
        value["schema"] = serde_json::json!("watchpost.detections/2");
        assert_eq!(
            ReceivedDetections::parse(value.to_string().as_bytes()).unwrap_err(),
            "schema `watchpost.detections/2`, expected `watchpost.detections/1`"
        );
        assert!(
            ReceivedDetections::parse(b"{")
                .unwrap_err()
                .starts_with("not a detections message")
        );
    }

    #[test]
    fn health_serialises_exactly() {
        let stats = CameraStats::new(name("gate"));
        stats.set_state(CameraState::Streaming);
        stats.count_drop(DropReason::Busy);
        let earlier = stats.snapshot();
        for _ in 0..20 {
            stats.count_frame_in(at_ms(1_795_919_468_000));
        }
        for _ in 0..10 {
            stats.count_analysed(Duration::from_millis(40));
        }
        stats.count_drop(DropReason::Busy);
        stats.count_drop(DropReason::BrokerDown);
        stats.count_drop(DropReason::Idle);
        stats.set_activity(Activity::Idle);
        stats.record_latency(Duration::from_millis(120));
        stats.count_error("stream ended");
        let now = stats.snapshot();
        let camera = CameraHealth::from_counters(
            &stats.name,
            &now,
            &earlier,
            Duration::from_secs(10),
            at_ms(1_795_919_470_500),
        );
        let payload = HealthPayload::new(
            at_ms(1_795_919_470_500),
            Duration::from_millis(10_002),
            Duration::from_secs(3600),
            ProcessFigures {
                rss_bytes: Some(52_428_800),
                cpu_cores: Some(0.25),
            },
            vec![camera],
            BrokerHealth {
                connected: true,
                reconnects: 2,
            },
            OutboxHealth::new(
                &crate::outbox::OutboxFigures {
                    usable: true,
                    error: None,
                    pending: 3,
                    bytes: 4096,
                    oldest_ms: Some(1_795_919_460_250),
                    appended: 10,
                    delivered: 7,
                    dropped_full: 1,
                    dropped_expired: 0,
                    dropped_backlog: 0,
                    write_errors: 2,
                    damaged: 1,
                },
                at_ms(1_795_919_470_500),
            ),
        );
        assert_eq!(
            serde_json::to_string(&payload).unwrap(),
            concat!(
                r#"{"schema":"watchpost.health/1","at":"2026-11-29T02:31:10.500Z","#,
                r#""interval_s":10.002,"uptime_s":3600.0,"#,
                r#""process":{"rss_bytes":52428800,"cpu_cores":0.25},"#,
                r#""cameras":[{"name":"gate","state":"streaming","activity":"idle","fps_in":2.0,"fps_analysed":1.0,"#,
                r#""drops":{"rate_limit":0,"busy":1,"too_old":0,"publish_queue_full":0,"broker_down":1,"idle":1},"#,
                r#""drops_total":{"rate_limit":0,"busy":2,"too_old":0,"publish_queue_full":0,"broker_down":1,"idle":1},"#,
                r#""inference_ms":{"p50":40.0,"p99":40.0},"latency_ms":{"p50":120.0,"p99":120.0},"#,
                r#""reconnects":0,"errors":1,"last_frame_age_s":2.5,"last_error":"stream ended"}],"#,
                r#""broker":{"connected":true,"reconnects":2},"#,
                r#""outbox":{"ok":true,"pending":3,"bytes":4096,"oldest_s":10.25,"delivered":7,"#,
                r#""dropped":{"full":1,"expired":0,"backlog":0,"write_failed":2},"damaged":1}}"#
            )
        );
    }

    #[test]
    fn empty_intervals_give_nulls_and_zeros() {
        let stats = CameraStats::new(name("gate"));
        let snapshot = stats.snapshot();
        let camera = CameraHealth::from_counters(
            &stats.name,
            &snapshot,
            &snapshot,
            Duration::ZERO,
            at_ms(0),
        );
        let json = serde_json::to_value(&camera).unwrap();
        assert_eq!(json["fps_in"], 0.0);
        assert_eq!(
            json["inference_ms"],
            serde_json::json!({"p50": null, "p99": null})
        );
        assert_eq!(json["last_frame_age_s"], serde_json::Value::Null);
        assert_eq!(json["last_error"], serde_json::Value::Null);
        assert_eq!(json["state"], "connecting");
        assert_eq!(json["activity"], "active");
        let process = serde_json::to_value(ProcessFigures::from(None)).unwrap();
        assert_eq!(
            process,
            serde_json::json!({"rss_bytes": null, "cpu_cores": null})
        );
    }

    #[test]
    fn overflowing_percentiles_stay_finite() {
        let stats = CameraStats::new(name("gate"));
        stats.record_latency(Duration::from_secs(120));
        let p = Percentiles::of(&stats.snapshot().latency_ms);
        assert_eq!(p.p50, Some(10_000.0));
        assert_eq!(p.p99, Some(10_000.0));
    }

    #[test]
    fn drop_counts_name_every_reason() {
        let counts = DropCounts(DropReason::ALL.map(|r| (r, 1)));
        let json = serde_json::to_value(counts).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
    }
}
