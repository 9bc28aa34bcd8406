//! `GET /metrics`: the Prometheus text exposition format 0.0.4, rendered by a pure function
//! from counters ([`render`]).
//!
//! Families (every one with `# HELP` and `# TYPE`; per camera the label `camera`):
//!
//! | name | type | labels |
//! |---|---|---|
//! | `watchpost_info` | gauge (1) | `version` |
//! | `watchpost_camera_up` | gauge: 1 streaming, 0 otherwise | `camera` |
//! | `watchpost_camera_frames_in_total` | counter | `camera` |
//! | `watchpost_camera_frames_analysed_total` | counter | `camera` |
//! | `watchpost_camera_drops_total` | counter | `camera`, `reason` ([`DropReason`]) |
//! | `watchpost_camera_reconnects_total` | counter | `camera` |
//! | `watchpost_camera_errors_total` | counter | `camera` |
//! | `watchpost_camera_last_frame_timestamp_seconds` | gauge (only after a first frame) | `camera` |
//! | `watchpost_camera_latency_seconds` | histogram | `camera` |
//! | `watchpost_camera_inference_seconds` | histogram | `camera` |
//! | `watchpost_broker_connected` | gauge | |
//! | `watchpost_broker_reconnects_total` | counter | |
//! | `watchpost_outbox_ok` | gauge | |
//! | `watchpost_outbox_pending_events` | gauge | |
//! | `watchpost_outbox_bytes` | gauge | |
//! | `watchpost_outbox_oldest_event_age_seconds` | gauge (0 when none) | |
//! | `watchpost_outbox_delivered_total` | counter | |
//! | `watchpost_outbox_dropped_total` | counter | `reason`: full, expired, backlog, write_failed |
//! | `watchpost_outbox_damaged_total` | counter | |
//! | `process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_start_time_seconds` | gauge, counter, gauge | |
//!
//! Histogram buckets: [`health::Histogram`](crate::health::Histogram) keeps 290 fixed buckets
//! in milliseconds; the exposition uses the subset [`BUCKETS_MS`] of their bounds (in
//! seconds), so each cumulative count is exact and a camera costs 16 series per histogram, not
//! 291.

use std::fmt::{Display, Write};
use std::time::SystemTime;

use crate::health::{CameraCounters, CameraState, DropReason, HistogramSnapshot};
use crate::outbox::OutboxFigures;
use crate::publish::BrokerState;

use super::status::{OUTBOX_DROP_REASONS, ProcessReport};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The histogram bucket bounds exposed, in milliseconds: each is a bound of the fixed buckets
/// of [`crate::health::Histogram`] (so the counts are exact); `+Inf` follows.
pub const BUCKETS_MS: [u32; 15] = [
    5, 10, 25, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2500, 5000, 10000,
];

/// Everything one scrape shows.
#[derive(Clone, Debug)]
pub struct Scrape<'a> {
    /// Per live camera, in the order they were started: its name and counters.
    pub cameras: &'a [(String, CameraCounters)],
    pub broker: &'a BrokerState,
    pub outbox: &'a OutboxFigures,
    pub process: Option<ProcessReport>,
    pub version: &'a str,
    pub started_at: SystemTime,
    /// When the scrape was taken (for ages).
    pub at: SystemTime,
}

/// The text exposition of `scrape`.
pub fn render(scrape: &Scrape<'_>) -> String {
    let mut out = Exposition::default();
    out.family("watchpost_info", "gauge", "The agent; always 1.");
    out.sample("watchpost_info", &[("version", scrape.version)], 1u8);

    let cameras = scrape.cameras;
    out.family(
        "watchpost_camera_up",
        "gauge",
        "1 while the camera is streaming, 0 while connecting, retrying or stopped.",
    );
    for (name, c) in cameras {
        let up = u8::from(c.state == CameraState::Streaming);
        out.sample("watchpost_camera_up", &[("camera", name)], up);
    }
    out.family(
        "watchpost_camera_idle",
        "gauge",
        "1 while nothing moves in the camera's picture or among its tracks (analysed at \
         idle_fps), 0 while it is analysed at detect_fps.",
    );
    for (name, c) in cameras {
        let idle = u8::from(c.activity == crate::health::Activity::Idle);
        out.sample("watchpost_camera_idle", &[("camera", name)], idle);
    }
    let counters: [(&str, &str, CameraCounter); 4] = [
        (
            "watchpost_camera_frames_in_total",
            "Decoded frames delivered by the camera's pipeline.",
            |c| c.frames_in,
        ),
        (
            "watchpost_camera_frames_analysed_total",
            "Frames the model ran on.",
            |c| c.frames_analysed,
        ),
        (
            "watchpost_camera_reconnects_total",
            "Pipeline restarts after the first connection attempt.",
            |c| c.reconnects,
        ),
        (
            "watchpost_camera_errors_total",
            "Pipeline errors that ended a connection.",
            |c| c.errors,
        ),
    ];
    for (metric, help, value) in counters {
        out.family(metric, "counter", help);
        for (name, c) in cameras {
            out.sample(metric, &[("camera", name)], value(c));
        }
    }
    out.family(
        "watchpost_camera_drops_total",
        "counter",
        "Frames not analysed or not published, by reason (rate_limit and idle: the intended skips \
         beyond detect_fps, and beyond idle_fps while the camera idles).",
    );
    for (name, c) in cameras {
        for reason in DropReason::ALL {
            out.sample(
                "watchpost_camera_drops_total",
                &[("camera", name), ("reason", reason.as_str())],
                c.drops(reason),
            );
        }
    }
    out.family(
        "watchpost_camera_last_frame_timestamp_seconds",
        "gauge",
        "Unix time of the camera's newest frame.",
    );
    for (name, c) in cameras {
        if let Some(ms) = c.last_frame_unix_ms {
            out.sample(
                "watchpost_camera_last_frame_timestamp_seconds",
                &[("camera", name)],
                ms as f64 / 1e3,
            );
        }
    }
    out.histogram(
        "watchpost_camera_latency_seconds",
        "Frame arrival to publication of its detections.",
        cameras
            .iter()
            .map(|(name, c)| (name.as_str(), &c.latency_ms)),
    );
    out.histogram(
        "watchpost_camera_inference_seconds",
        "One inference of the model.",
        cameras
            .iter()
            .map(|(name, c)| (name.as_str(), &c.inference_ms)),
    );

    let broker = scrape.broker;
    out.family(
        "watchpost_broker_connected",
        "gauge",
        "1 while connected to the MQTT broker.",
    );
    out.sample(
        "watchpost_broker_connected",
        &[],
        u8::from(broker.connected),
    );
    out.family(
        "watchpost_broker_reconnects_total",
        "counter",
        "Successful connections to the broker after the first.",
    );
    out.sample("watchpost_broker_reconnects_total", &[], broker.reconnects);

    let outbox = scrape.outbox;
    let gauges: [(&str, &str, f64); 4] = [
        (
            "watchpost_outbox_ok",
            "1 while the outbox can be written.",
            f64::from(u8::from(outbox.usable)),
        ),
        (
            "watchpost_outbox_pending_events",
            "Events waiting for the broker's acknowledgement.",
            outbox.pending as f64,
        ),
        (
            "watchpost_outbox_bytes",
            "Bytes of the outbox on disk.",
            outbox.bytes as f64,
        ),
        (
            "watchpost_outbox_oldest_event_age_seconds",
            "Age of the oldest pending event; 0 when none.",
            super::status::oldest_pending_ms(outbox).map_or(0.0, |ms| {
                crate::health::unix_ms(scrape.at).saturating_sub(ms) as f64 / 1e3
            }),
        ),
    ];
    for (metric, help, value) in gauges {
        out.family(metric, "gauge", help);
        out.sample(metric, &[], value);
    }
    out.family(
        "watchpost_outbox_delivered_total",
        "counter",
        "Events acknowledged by the broker.",
    );
    out.sample("watchpost_outbox_delivered_total", &[], outbox.delivered);
    out.family(
        "watchpost_outbox_dropped_total",
        "counter",
        "Events dropped unsent, by reason.",
    );
    for (reason, count) in OUTBOX_DROP_REASONS {
        out.sample(
            "watchpost_outbox_dropped_total",
            &[("reason", reason)],
            count(outbox),
        );
    }
    out.family(
        "watchpost_outbox_damaged_total",
        "counter",
        "Events lost to disk damage found in the outbox.",
    );
    out.sample("watchpost_outbox_damaged_total", &[], outbox.damaged);

    if let Some(process) = scrape.process {
        out.family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        out.sample("process_resident_memory_bytes", &[], process.rss_bytes);
        out.family(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
        );
        out.sample("process_cpu_seconds_total", &[], process.cpu_seconds);
    }
    out.family(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch in seconds.",
    );
    out.sample(
        "process_start_time_seconds",
        &[],
        crate::health::unix_ms(scrape.started_at) as f64 / 1e3,
    );
    out.text
}

/// Reads one counter of a camera.
type CameraCounter = fn(&CameraCounters) -> u64;

/// The text being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Value) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label(value));
            }
            self.text.push('}');
        }
        self.text.push(' ');
        value.write_to(&mut self.text);
        self.text.push('\n');
    }

    /// One histogram family: per camera, the buckets of [`BUCKETS_MS`] and `+Inf`, `_sum` and
    /// `_count`, in seconds.
    fn histogram<'a>(
        &mut self,
        name: &str,
        help: &str,
        cameras: impl Iterator<Item = (&'a str, &'a HistogramSnapshot)>,
    ) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (camera, histogram) in cameras {
            let cumulative = histogram.cumulative_buckets();
            for bound_ms in BUCKETS_MS {
                let bound_ms = f64::from(bound_ms);
                // The last fixed bucket ending at or below the bound: exact, as every bound is
                // one of the fixed bounds.
                let count = cumulative
                    .iter()
                    .take_while(|(upper, _)| *upper <= bound_ms)
                    .last()
                    .map_or(0, |(_, count)| *count);
                let le = (bound_ms / 1e3).to_string();
                self.sample(&bucket, &[("camera", camera), ("le", &le)], count);
            }
            let total = histogram.count();
            self.sample(&bucket, &[("camera", camera), ("le", "+Inf")], total);
            self.sample(
                &format!("{name}_sum"),
                &[("camera", camera)],
                // Microseconds are what the histogram keeps: no float noise beyond them.
                (histogram.sum_ms() * 1e3).round() / 1e6,
            );
            self.sample(&format!("{name}_count"), &[("camera", camera)], total);
        }
    }
}

/// A sample value as the text format writes it.
trait Value {
    fn write_to(&self, out: &mut String);
}

macro_rules! integer_value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn write_to(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
integer_value!(u8, u64);

impl Value for f64 {
    fn write_to(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            write_display(out, self);
        }
    }
}

fn write_display(out: &mut String, value: impl Display) {
    let _ = write!(out, "{value}");
}

/// Label values escape `\`, `"` and line feeds.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// HELP text escapes `\` and line feeds.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::config::TopicName;
    use crate::health::CameraStats;

    /// One sample line, parsed.
    #[derive(Debug)]
    struct Line {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    /// A small reader of the text format: checks that every sample belongs to a family
    /// announced just before by `# HELP` and `# TYPE` (each once), that names and labels are
    /// well formed and values parse, and returns the samples.
    fn parse(text: &str) -> Result<Vec<Line>, String> {
        let mut helped = HashMap::new();
        let mut typed: HashMap<String, String> = HashMap::new();
        let mut current: Option<String> = None;
        let mut lines = Vec::new();
        let is_name = |s: &str| {
            !s.is_empty()
                && !s.starts_with(|c: char| c.is_ascii_digit())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        for (n, line) in text.lines().enumerate() {
            let at = |m: String| format!("line {}: {m}: {line}", n + 1);
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, _) = rest.split_once(' ').ok_or_else(|| at("no help".into()))?;
                if helped.insert(name.to_owned(), ()).is_some() {
                    return Err(at("second HELP".into()));
                }
                current = Some(name.to_owned());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or_else(|| at("no type".into()))?;
                if current.as_deref() != Some(name) {
                    return Err(at("TYPE without its HELP".into()));
                }
                if !["counter", "gauge", "histogram"].contains(&kind) {
                    return Err(at(format!("type {kind}")));
                }
                if typed.insert(name.to_owned(), kind.to_owned()).is_some() {
                    return Err(at("second TYPE".into()));
                }
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                return Err(at("unexpected".into()));
            }
            let (series, value) = line.rsplit_once(' ').ok_or_else(|| at("no value".into()))?;
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().map_err(|_| at(format!("value {v}")))?,
            };
            let (name, labels) = match series.split_once('{') {
                None => (series, Vec::new()),
                Some((name, rest)) => {
                    let inner = rest
                        .strip_suffix('}')
                        .ok_or_else(|| at("unclosed labels".into()))?;
                    let mut labels = Vec::new();
                    for pair in inner.split(',') {
                        let (label, quoted) = pair
                            .split_once('=')
                            .ok_or_else(|| at(format!("label {pair}")))?;
                        let value = quoted
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .ok_or_else(|| at(format!("label value {quoted}")))?;
                        if !is_name(label) {
                            return Err(at(format!("label name {label}")));
                        }
                        labels.push((label.to_owned(), value.to_owned()));
                    }
                    (name, labels)
                }
            };
            if !is_name(name) {
                return Err(at(format!("name {name}")));
            }
            let family = current.as_deref().ok_or_else(|| at("no family".into()))?;
            let kind = typed
                .get(family)
                .ok_or_else(|| at("sample before TYPE".into()))?;
            let belongs = match kind.as_str() {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(family)),
                _ => name == family,
            };
            if !belongs {
                return Err(at(format!("not of family {family}")));
            }
            lines.push(Line {
                name: name.to_owned(),
                labels,
                value,
            });
        }
        Ok(lines)
    }

    fn value(lines: &[Line], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        lines
            .iter()
            .find(|l| {
                l.name == name
                    && l.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| l.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|l| l.value)
    }

    fn at_ms(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn two_cameras() -> Vec<(String, CameraCounters)> {
        let gate = CameraStats::new(TopicName::parse("gate").unwrap());
        gate.set_state(CameraState::Streaming);
        for i in 0..10u64 {
            gate.count_frame_in(at_ms(1_000_000 + i));
        }
        for ms in [3, 40, 41, 120, 20_000] {
            gate.record_latency(Duration::from_millis(ms));
        }
        gate.count_analysed(Duration::from_millis(45));
        gate.count_analysed(Duration::from_millis(55));
        gate.count_drop(DropReason::Busy);
        gate.count_drop(DropReason::RateLimit);
        gate.count_drop(DropReason::RateLimit);
        gate.count_reconnect();
        let yard = CameraStats::new(TopicName::parse("yard-2").unwrap());
        yard.set_state(CameraState::Retrying);
        yard.count_error("refused");
        vec![
            ("gate".to_owned(), gate.snapshot()),
            ("yard-2".to_owned(), yard.snapshot()),
        ]
    }

    fn scrape_text(process: Option<ProcessReport>) -> String {
        let cameras = two_cameras();
        let broker = BrokerState {
            connected: true,
            connections: 3,
            reconnects: 2,
            endpoint: Some("127.0.0.1:1883".into()),
            last_error: None,
        };
        let outbox = OutboxFigures {
            usable: true,
            error: None,
            pending: 3,
            bytes: 4096,
            oldest_ms: Some(1_000_000),
            appended: 10,
            delivered: 7,
            dropped_full: 1,
            dropped_expired: 0,
            dropped_backlog: 4,
            write_errors: 2,
            damaged: 5,
        };
        render(&Scrape {
            cameras: &cameras,
            broker: &broker,
            outbox: &outbox,
            process,
            version: "1.2.3",
            started_at: at_ms(999_000),
            at: at_ms(1_002_500),
        })
    }

    #[test]
    fn every_figure_is_where_a_scraper_looks() {
        let text = scrape_text(Some(ProcessReport {
            rss_bytes: 52_428_800,
            cpu_seconds: 12.25,
        }));
        let lines = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let gate = [("camera", "gate")];
        let yard = [("camera", "yard-2")];
        // (name, labels, expected value)
        type Labels<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(&str, Labels, f64)] = &[
            ("watchpost_info", &[("version", "1.2.3")], 1.0),
            ("watchpost_camera_up", &gate, 1.0),
            ("watchpost_camera_up", &yard, 0.0),
            ("watchpost_camera_frames_in_total", &gate, 10.0),
            ("watchpost_camera_frames_in_total", &yard, 0.0),
            ("watchpost_camera_frames_analysed_total", &gate, 2.0),
            (
                "watchpost_camera_drops_total",
                &[("camera", "gate"), ("reason", "busy")],
                1.0,
            ),
            (
                "watchpost_camera_drops_total",
                &[("camera", "gate"), ("reason", "rate_limit")],
                2.0,
            ),
            (
                "watchpost_camera_drops_total",
                &[("camera", "yard-2"), ("reason", "broker_down")],
                0.0,
            ),
            ("watchpost_camera_reconnects_total", &gate, 1.0),
            ("watchpost_camera_errors_total", &yard, 1.0),
            (
                "watchpost_camera_last_frame_timestamp_seconds",
                &gate,
                1000.009,
            ),
            (
                "watchpost_camera_latency_seconds_bucket",
                &[("camera", "gate"), ("le", "0.005")],
                1.0,
            ),
            (
                "watchpost_camera_latency_seconds_bucket",
                &[("camera", "gate"), ("le", "0.05")],
                3.0,
            ),
            (
                "watchpost_camera_latency_seconds_bucket",
                &[("camera", "gate"), ("le", "0.15")],
                4.0,
            ),
            (
                "watchpost_camera_latency_seconds_bucket",
                &[("camera", "gate"), ("le", "10")],
                4.0,
            ),
            (
                "watchpost_camera_latency_seconds_bucket",
                &[("camera", "gate"), ("le", "+Inf")],
                5.0,
            ),
            ("watchpost_camera_latency_seconds_count", &gate, 5.0),
            ("watchpost_camera_latency_seconds_sum", &gate, 20.204),
            (
                "watchpost_camera_inference_seconds_bucket",
                &[("camera", "gate"), ("le", "0.05")],
                1.0,
            ),
            ("watchpost_camera_inference_seconds_sum", &gate, 0.1),
            ("watchpost_camera_inference_seconds_count", &yard, 0.0),
            ("watchpost_broker_connected", &[], 1.0),
            ("watchpost_broker_reconnects_total", &[], 2.0),
            ("watchpost_outbox_ok", &[], 1.0),
            ("watchpost_outbox_pending_events", &[], 3.0),
            ("watchpost_outbox_bytes", &[], 4096.0),
            ("watchpost_outbox_oldest_event_age_seconds", &[], 2.5),
            ("watchpost_outbox_delivered_total", &[], 7.0),
            ("watchpost_outbox_dropped_total", &[("reason", "full")], 1.0),
            (
                "watchpost_outbox_dropped_total",
                &[("reason", "backlog")],
                4.0,
            ),
            (
                "watchpost_outbox_dropped_total",
                &[("reason", "write_failed")],
                2.0,
            ),
            ("watchpost_outbox_damaged_total", &[], 5.0),
            ("process_resident_memory_bytes", &[], 52_428_800.0),
            ("process_cpu_seconds_total", &[], 12.25),
            ("process_start_time_seconds", &[], 999.0),
        ];
        for &(name, labels, expected) in cases {
            let got = value(&lines, name, labels);
            assert!(
                got.is_some_and(|got| (got - expected).abs() < 1e-9),
                "{name} {labels:?}: {got:?}, expected {expected}\n{text}"
            );
        }
        // No frame yet: no timestamp rather than 0 (1970).
        assert_eq!(
            value(
                &lines,
                "watchpost_camera_last_frame_timestamp_seconds",
                &yard
            ),
            None
        );
        // Every drop reason of every camera, each once.
        let drops = lines
            .iter()
            .filter(|l| l.name == "watchpost_camera_drops_total")
            .count();
        assert_eq!(drops, 2 * DropReason::ALL.len());
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_the_count() {
        let text = scrape_text(None);
        let lines = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        for family in [
            "watchpost_camera_latency_seconds",
            "watchpost_camera_inference_seconds",
        ] {
            for camera in ["gate", "yard-2"] {
                let buckets: Vec<(f64, f64)> = lines
                    .iter()
                    .filter(|l| {
                        l.name == format!("{family}_bucket")
                            && l.labels.contains(&("camera".into(), camera.into()))
                    })
                    .map(|l| {
                        let le = &l.labels.iter().find(|(k, _)| k == "le").unwrap().1;
                        let le = if le == "+Inf" {
                            f64::INFINITY
                        } else {
                            le.parse().unwrap()
                        };
                        (le, l.value)
                    })
                    .collect();
                assert_eq!(buckets.len(), BUCKETS_MS.len() + 1, "{family} {camera}");
                assert!(
                    buckets
                        .windows(2)
                        .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                    "{family} {camera}: {buckets:?}"
                );
                let count = value(&lines, &format!("{family}_count"), &[("camera", camera)]);
                assert_eq!(Some(buckets.last().unwrap().1), count, "{family} {camera}");
            }
        }
    }

    #[test]
    fn exposed_bounds_are_bounds_of_the_fixed_buckets() {
        let bounds: Vec<f64> = crate::health::Histogram::new()
            .snapshot()
            .cumulative_buckets()
            .into_iter()
            .map(|(upper, _)| upper)
            .collect();
        assert!(bounds.len() > 100, "{}", bounds.len());
        for bound in BUCKETS_MS {
            assert!(
                bounds.contains(&f64::from(bound)),
                "{bound} ms is not a fixed bucket bound"
            );
        }
    }

    #[test]
    fn no_process_figures_no_process_lines_and_labels_are_escaped() {
        let text = scrape_text(None);
        assert!(!text.contains("process_cpu_seconds_total"), "{text}");
        assert!(text.contains("process_start_time_seconds 999\n"), "{text}");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_help("x\\y\nz"), "x\\\\y\\nz");
        let mut out = String::new();
        for v in [f64::NAN, f64::INFINITY, 0.15, 1.0, 1e-7] {
            v.write_to(&mut out);
            out.push(' ');
        }
        assert_eq!(out, "NaN +Inf 0.15 1 0.0000001 ");
    }
}
