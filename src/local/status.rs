//! The JSON of `GET /status`: every type the local endpoint answers with, in one place, and the
//! pure functions that build them from counters. `watchpost status` reads the same types back.
//!
//! The shape is versioned by its `schema` field ([`STATUS_SCHEMA`]); a field is only ever added.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::health::{CameraCounters, DropReason, HistogramSnapshot};
use crate::outbox::OutboxFigures;
use crate::publish::BrokerState;
use crate::publish::payload::rfc3339_millis;

/// `schema` of `GET /status`.
pub const STATUS_SCHEMA: &str = "watchpost.local-status/1";

/// `GET /status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub schema: String,
    /// The agent's version.
    pub version: String,
    pub site: String,
    pub device: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub uptime_s: f64,
    /// The seconds the rates and percentiles cover: the last few seconds.
    pub window_s: f64,
    /// The live cameras, in the order they were started.
    pub cameras: Vec<CameraReport>,
    pub broker: BrokerReport,
    pub outbox: OutboxReport,
    /// Absent where `/proc/self` cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessReport>,
    /// The model that runs and why (absent from agents before it was added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelReport>,
    /// Configuration changes a reload could not apply live, waiting for the next restart
    /// (`[mqtt] applied at next restart`); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_restart: Vec<String>,
}

/// The answer to `POST /reload`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadAnswer {
    /// `applied`, `invalid` (the file; `problems` are the loader's lines), `refused` (valid,
    /// but this agent cannot run it), `busy`, `stopped`, or `no_file`.
    pub outcome: String,
    /// Done now: `camera gate-2 added`.
    #[serde(default)]
    pub live: Vec<String>,
    /// Waiting for the next restart: `[mqtt] applied at next restart`.
    #[serde(default)]
    pub at_restart: Vec<String>,
    /// Why nothing was applied, one line each.
    #[serde(default)]
    pub problems: Vec<String>,
}

impl ReloadAnswer {
    /// The answer for an outcome of [`crate::agent::Control::reload`].
    pub fn new(outcome: &Result<crate::agent::Applied, crate::agent::ApplyError>) -> ReloadAnswer {
        use crate::agent::ApplyError;
        let failed = |outcome: &str, problems: Vec<String>| ReloadAnswer {
            outcome: outcome.to_owned(),
            live: Vec::new(),
            at_restart: Vec::new(),
            problems,
        };
        match outcome {
            Ok(applied) => ReloadAnswer {
                outcome: "applied".to_owned(),
                live: applied.live.clone(),
                at_restart: applied.at_restart.clone(),
                problems: Vec::new(),
            },
            Err(ApplyError::Invalid { problems }) => failed("invalid", problems.clone()),
            Err(ApplyError::Refused { reasons }) => failed("refused", reasons.clone()),
            Err(e @ ApplyError::Busy) => failed("busy", vec![e.to_string()]),
            Err(e @ ApplyError::Stopped) => failed("stopped", vec![e.to_string()]),
            Err(e @ ApplyError::NoFile) => failed("no_file", vec![e.to_string()]),
        }
    }

    /// Whether the configuration was applied.
    pub fn applied(&self) -> bool {
        self.outcome == "applied"
    }
}

/// The model in `GET /status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelReport {
    /// The manifest's name, as in the detection payloads (`nanodet-m-416-int8`).
    pub name: String,
    /// Why this one: `configured`, or what `auto` found on the CPU.
    pub reason: String,
}

/// One camera in `GET /status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraReport {
    pub name: String,
    /// `connecting`, `streaming`, `retrying` or `stopped`.
    pub state: String,
    /// Decoded frames per second from the camera, over the window.
    pub fps_in: f64,
    /// Frames analysed per second, over the window.
    pub fps_analysed: f64,
    /// Frame arrival → publication, over the window; `null` when nothing was published.
    pub latency_ms: Percentiles,
    /// One inference, over the window.
    pub inference_ms: Percentiles,
    /// Since the agent started.
    pub frames_in: u64,
    pub frames_analysed: u64,
    /// Frames not analysed or not published since the agent started, by reason (every
    /// [`DropReason`], zeros included). `rate_limit` and `idle` are the intended skips of
    /// frames beyond `detect_fps`, and beyond `idle_fps` while the camera idles.
    pub drops: BTreeMap<String, u64>,
    /// The frames lost: every drop but the intended ones (`rate_limit`, `idle`).
    pub dropped: u64,
    /// Pipeline restarts since the agent started.
    pub reconnects: u64,
    /// Errors that ended a connection since the agent started.
    pub errors: u64,
    /// Seconds since the newest frame; `null` before the first.
    pub last_frame_age_s: Option<f64>,
    /// The last error (never with credentials).
    pub last_error: Option<String>,
    /// The decoder template in use (`software`, `v4l2`, `nvv4l2`, …; `software (v4l2 failed)`
    /// after a hardware decoder gave way); `null` before the camera's thread has chosen.
    /// Added after the first release of this schema: absent from older agents.
    #[serde(default)]
    pub decoder: Option<String>,
    /// `active` (analysed at `detect_fps`) or `idle` (nothing moves: `idle_fps`). Added after
    /// the first release of this schema: absent from older agents.
    #[serde(default)]
    pub activity: Option<String>,
}

/// Percentiles of a window's values, in the unit their field names; `null` without values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// The MQTT connection in `GET /status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BrokerReport {
    pub connected: bool,
    /// `host:port` of the endpoint connected to (or last connected to).
    pub endpoint: Option<String>,
    /// Successful connections since the agent started.
    pub connections: u64,
    /// Successful connections after the first.
    pub reconnects: u64,
    /// Why the last attempt failed or the last connection ended (no credentials).
    pub last_error: Option<String>,
}

/// The event outbox in `GET /status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboxReport {
    /// The outbox can be written.
    pub ok: bool,
    /// Why not, while not `ok`: what failed, the file and the system's reason, on one line.
    #[serde(default)]
    pub error: Option<String>,
    /// Events waiting for the broker's acknowledgement.
    pub pending: u64,
    /// Bytes of the outbox on disk.
    pub bytes: u64,
    /// Age of the oldest pending event, seconds; `null` when none.
    pub oldest_s: Option<f64>,
    /// Since the agent started.
    pub appended: u64,
    pub delivered: u64,
    /// Events dropped since the agent started, by reason: `full`, `expired`, `backlog`,
    /// `write_failed`.
    pub dropped: BTreeMap<String, u64>,
    /// Events lost to disk damage found in the outbox since the agent started.
    #[serde(default)]
    pub damaged: u64,
}

/// The agent process in `GET /status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessReport {
    /// Resident memory.
    pub rss_bytes: u64,
    /// CPU time used since the process started (user + system).
    pub cpu_seconds: f64,
}

/// Rounds to `decimals` places, so the JSON is readable.
fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        return 0.0;
    }
    round(count as f64 / elapsed.as_secs_f64(), 2)
}

fn percentiles(window: &HistogramSnapshot) -> Percentiles {
    // The overflow bucket has no upper bound: reported as null rather than infinity (which
    // JSON cannot carry).
    let finite = |q| window.quantile(q).filter(|v: &f64| v.is_finite());
    Percentiles {
        p50: finite(0.5),
        p99: finite(0.99),
    }
}

/// Seconds between two wall-clock times given in Unix milliseconds; 0 when `then` is later.
fn age_s(now: SystemTime, then_ms: u64) -> f64 {
    let now_ms = crate::health::unix_ms(now);
    round(now_ms.saturating_sub(then_ms) as f64 / 1e3, 3)
}

impl CameraReport {
    /// One camera: `now` is its counters at `at`; `earlier` its counters `elapsed` before (the
    /// start of the window) from which rates and percentiles are computed.
    pub fn new(
        name: &str,
        now: &CameraCounters,
        earlier: &CameraCounters,
        elapsed: Duration,
        at: SystemTime,
    ) -> CameraReport {
        let window = now.since(earlier);
        let drops: BTreeMap<String, u64> = now
            .drops
            .iter()
            .map(|(reason, n)| (reason.as_str().to_owned(), *n))
            .collect();
        CameraReport {
            name: name.to_owned(),
            state: now.state.as_str().to_owned(),
            fps_in: per_second(window.frames_in, elapsed),
            fps_analysed: per_second(window.frames_analysed, elapsed),
            latency_ms: percentiles(&window.latency_ms),
            inference_ms: percentiles(&window.inference_ms),
            frames_in: now.frames_in,
            frames_analysed: now.frames_analysed,
            dropped: now
                .drops
                .iter()
                .filter(|(reason, _)| !reason.is_intended())
                .map(|(_, n)| n)
                .sum(),
            drops,
            reconnects: now.reconnects,
            errors: now.errors,
            last_frame_age_s: now.last_frame_unix_ms.map(|ms| age_s(at, ms)),
            last_error: now.last_error.clone(),
            decoder: now.decoder.clone(),
            activity: Some(now.activity.as_str().to_owned()),
        }
    }

    /// The reasons frames were lost (every drop but the intended ones), most first, without
    /// zeros.
    pub fn main_drop_reasons(&self) -> Vec<(&str, u64)> {
        let intended: Vec<&str> = DropReason::ALL
            .iter()
            .filter(|reason| reason.is_intended())
            .map(|reason| reason.as_str())
            .collect();
        let mut reasons: Vec<(&str, u64)> = self
            .drops
            .iter()
            .filter(|(reason, n)| !intended.contains(&reason.as_str()) && **n > 0)
            .map(|(reason, n)| (reason.as_str(), *n))
            .collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        reasons
    }
}

impl BrokerReport {
    pub fn new(state: &BrokerState) -> BrokerReport {
        BrokerReport {
            connected: state.connected,
            endpoint: state.endpoint.clone(),
            connections: state.connections,
            reconnects: state.reconnects,
            last_error: state.last_error.clone(),
        }
    }
}

impl OutboxReport {
    pub fn new(figures: &OutboxFigures, at: SystemTime) -> OutboxReport {
        OutboxReport {
            ok: figures.usable,
            error: figures.error.clone(),
            pending: figures.pending,
            bytes: figures.bytes,
            oldest_s: oldest_pending_ms(figures).map(|ms| age_s(at, ms)),
            appended: figures.appended,
            delivered: figures.delivered,
            dropped: OUTBOX_DROP_REASONS
                .iter()
                .map(|&(reason, of)| (reason.to_owned(), of(figures)))
                .collect(),
            damaged: figures.damaged,
        }
    }

    /// Every event dropped since the agent started.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// When the oldest pending event was written (Unix ms); `None` when nothing is pending. (The
/// outbox stores its figures one by one: a reading can pair "0 pending" with the time of a
/// record just delivered.)
pub(crate) fn oldest_pending_ms(figures: &OutboxFigures) -> Option<u64> {
    figures.oldest_ms.filter(|_| figures.pending > 0)
}

/// Reads one drop count of the outbox.
pub(crate) type OutboxDropCount = fn(&OutboxFigures) -> u64;

/// The outbox's drop reasons, as `health` names them, and where their counts are.
pub(crate) const OUTBOX_DROP_REASONS: [(&str, OutboxDropCount); 4] = [
    ("full", |f| f.dropped_full),
    ("expired", |f| f.dropped_expired),
    ("backlog", |f| f.dropped_backlog),
    ("write_failed", |f| f.write_errors),
];

/// What [`StatusReport::new`] needs besides the cameras.
#[derive(Clone, Debug)]
pub struct AgentFacts {
    pub site: String,
    pub device: String,
    pub started_at: SystemTime,
    pub model: ModelReport,
}

impl StatusReport {
    /// The whole report at `at`: the cameras' reports (made with [`CameraReport::new`] over a
    /// window `window` long) and the figures of the broker, the outbox and the process.
    #[allow(clippy::too_many_arguments)] // one argument per part of the report
    pub fn new(
        facts: &AgentFacts,
        uptime: Duration,
        window: Duration,
        cameras: Vec<CameraReport>,
        broker: &BrokerState,
        outbox: &OutboxFigures,
        process: Option<ProcessReport>,
        at: SystemTime,
    ) -> StatusReport {
        StatusReport {
            schema: STATUS_SCHEMA.to_owned(),
            version: crate::publish::payload::AGENT_VERSION.to_owned(),
            site: facts.site.clone(),
            device: facts.device.clone(),
            started_at: rfc3339_millis(facts.started_at),
            uptime_s: round(uptime.as_secs_f64(), 3),
            window_s: round(window.as_secs_f64(), 3),
            cameras,
            broker: BrokerReport::new(broker),
            outbox: OutboxReport::new(outbox, at),
            process,
            model: Some(facts.model.clone()),
            at_restart: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicName;
    use crate::health::{CameraState, CameraStats};

    fn at_ms(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn camera_rates_and_percentiles_cover_the_window_only() {
        let stats = CameraStats::new(TopicName::parse("gate").unwrap());
        // Before the window: slow frames that must not show in the percentiles.
        for _ in 0..50 {
            stats.count_frame_in(at_ms(1_000));
            stats.record_latency(Duration::from_millis(900));
        }
        stats.count_drop(DropReason::Busy);
        let earlier = stats.snapshot();
        // In the window: 5 s, 125 frames in, 25 analysed with 40..=64 ms latency.
        stats.set_state(CameraState::Streaming);
        for i in 0..125u64 {
            stats.count_frame_in(at_ms(10_000 + i * 40));
        }
        for i in 0..25u64 {
            stats.count_analysed(Duration::from_millis(30));
            stats.record_latency(Duration::from_millis(40 + i));
        }
        for _ in 0..100 {
            stats.count_drop(DropReason::RateLimit);
        }
        for _ in 0..7 {
            stats.count_drop(DropReason::Idle);
        }
        stats.set_activity(crate::health::Activity::Idle);
        stats.count_drop(DropReason::TooOld);
        stats.count_drop(DropReason::TooOld);
        stats.count_drop(DropReason::BrokerDown);
        stats.count_reconnect();
        stats.count_error("connection refused");
        let now = stats.snapshot();
        let report = CameraReport::new(
            "gate",
            &now,
            &earlier,
            Duration::from_secs(5),
            at_ms(15_460),
        );
        assert_eq!(report.state, "streaming");
        assert_eq!(report.fps_in, 25.0);
        assert_eq!(report.fps_analysed, 5.0);
        assert_eq!(report.latency_ms.p50, Some(52.0));
        assert_eq!(report.latency_ms.p99, Some(64.0));
        assert_eq!(report.inference_ms.p50, Some(30.0));
        assert_eq!(report.frames_in, 175);
        assert_eq!(report.frames_analysed, 25);
        assert_eq!(report.drops["rate_limit"], 100);
        assert_eq!(report.drops["too_old"], 2);
        assert_eq!(report.drops["idle"], 7);
        assert_eq!(report.activity.as_deref(), Some("idle"));
        assert_eq!(report.drops.len(), DropReason::ALL.len());
        assert_eq!(
            report.dropped, 4,
            "every drop but rate_limit and idle, since start"
        );
        assert_eq!(
            report.main_drop_reasons(),
            vec![("too_old", 2), ("broker_down", 1), ("busy", 1)]
        );
        assert_eq!(report.reconnects, 1);
        assert_eq!(report.errors, 1);
        assert_eq!(report.last_frame_age_s, Some(0.5));
        assert_eq!(report.last_error.as_deref(), Some("connection refused"));
    }

    #[test]
    fn an_idle_camera_has_no_rates_or_percentiles() {
        let stats = CameraStats::new(TopicName::parse("gate").unwrap());
        let counters = stats.snapshot();
        // (window, expected fps)
        for elapsed in [Duration::ZERO, Duration::from_secs(5)] {
            let report = CameraReport::new("gate", &counters, &counters, elapsed, at_ms(0));
            assert_eq!(report.state, "connecting");
            assert_eq!((report.fps_in, report.fps_analysed), (0.0, 0.0));
            assert_eq!(report.latency_ms, Percentiles::default());
            assert_eq!(report.last_frame_age_s, None);
            assert!(report.main_drop_reasons().is_empty());
        }
        // A latency beyond the last bucket has no finite percentile: null, not infinity.
        stats.record_latency(Duration::from_secs(60));
        let report = CameraReport::new(
            "gate",
            &stats.snapshot(),
            &counters,
            Duration::from_secs(1),
            at_ms(0),
        );
        assert_eq!(report.latency_ms.p50, None);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["latency_ms"]["p50"].is_null(), "{json}");
    }

    #[test]
    fn the_report_round_trips_through_json() {
        let stats = CameraStats::new(TopicName::parse("gate").unwrap());
        let counters = stats.snapshot();
        let camera = CameraReport::new("gate", &counters, &counters, Duration::ZERO, at_ms(0));
        let broker = BrokerState {
            connected: true,
            connections: 3,
            reconnects: 2,
            endpoint: Some("127.0.0.1:1883".into()),
            last_error: Some("connection refused".into()),
        };
        let figures = OutboxFigures {
            usable: false,
            error: Some("events cannot be written: /x/1.log: cannot write: disk full".into()),
            pending: 3,
            bytes: 4096,
            oldest_ms: Some(1_000),
            appended: 10,
            delivered: 7,
            dropped_full: 1,
            dropped_expired: 0,
            dropped_backlog: 0,
            write_errors: 2,
            damaged: 1,
        };
        let report = StatusReport::new(
            &AgentFacts {
                site: "s".into(),
                device: "d".into(),
                started_at: at_ms(500),
                model: ModelReport {
                    name: "m".into(),
                    reason: "configured".into(),
                },
            },
            Duration::from_millis(3_500),
            Duration::from_secs(5),
            vec![camera],
            &broker,
            &figures,
            Some(ProcessReport {
                rss_bytes: 1 << 20,
                cpu_seconds: 1.5,
            }),
            at_ms(4_000),
        );
        assert_eq!(report.schema, STATUS_SCHEMA);
        assert_eq!(report.started_at, "1970-01-01T00:00:00.500Z");
        assert_eq!(report.outbox.oldest_s, Some(3.0));
        assert_eq!(report.outbox.dropped_total(), 3);
        assert_eq!(report.outbox.dropped["write_failed"], 2);
        assert_eq!(
            (report.outbox.error.as_deref(), report.outbox.damaged),
            (figures.error.as_deref(), 1)
        );
        assert_eq!(report.broker.endpoint.as_deref(), Some("127.0.0.1:1883"));
        let json = serde_json::to_string(&report).unwrap();
        let back: StatusReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }
}
