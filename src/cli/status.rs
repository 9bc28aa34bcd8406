//! `watchpost status`: asks the running agent, on its local endpoint, how it is doing, and
//! prints a table (or the endpoint's JSON as it is).
//!
//! The address is `--url`, else `[local] listen` of the configuration (only that table is
//! read: a technician who may not read the password files can still ask), else the default
//! `127.0.0.1:9750` when the default configuration file cannot be read.

use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, ValueEnum};

use super::args::ConfigFile;
use super::report::{bytes, duration};
use crate::config::{self, ConfigError, LocalConfig};
use crate::health::DropReason;
use crate::local::client::{self, Endpoint, FetchError};
use crate::local::{CameraReport, STATUS_SCHEMA, StatusReport};

/// How long to wait for the agent's answer.
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Args)]
#[command(
    about = "Show how the running agent is doing: cameras, broker, outbox",
    after_help = "Asks the running agent on its local endpoint (`[local] listen` in the \
                  configuration, default 127.0.0.1:9750). Rates and percentiles cover the last \
                  few seconds; counts are since the agent started. DROPPED counts frames lost \
                  to load or to the broker; frames skipped to keep to detect_fps are not drops.\n\n\
                  Example:\n  watchpost status\n  \
                  watchpost status --format json\n  \
                  watchpost status --url http://127.0.0.1:9750"
)]
pub(crate) struct StatusArgs {
    /// For the endpoint's address (`[local] listen`); a missing default file means the default
    /// address.
    #[command(flatten)]
    config: ConfigFile,

    /// `text`: a table for people; `json`: the agent's `/status` answer as it is.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// The agent's endpoint, instead of the one in the configuration.
    #[arg(
        long,
        value_name = "URL",
        value_parser = parse_url,
        conflicts_with = "config"
    )]
    url: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// `http://HOST:PORT` (a trailing `/` allowed; `http://` may be left out).
fn parse_url(text: &str) -> Result<SocketAddr, String> {
    if text.starts_with("https://") {
        return Err(
            "the local endpoint speaks plain http:// (it only listens on this device)".into(),
        );
    }
    let rest = text.strip_prefix("http://").unwrap_or(text);
    let host_port = rest.strip_suffix('/').unwrap_or(rest);
    if host_port.contains('/') {
        return Err(format!(
            "`{text}`: give the endpoint without a path, as http://127.0.0.1:9750"
        ));
    }
    host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            format!("`{text}` is not http://HOST:PORT (for example http://127.0.0.1:9750)")
        })
}

/// Where the agent should be listening, and a note on where that came from when it is a guess.
enum Target {
    At(Endpoint, Option<String>),
    Off(PathBuf),
}

fn target(args: &StatusArgs) -> Result<Target, ExitCode> {
    if let Some(addr) = args.url {
        return Ok(Target::At(addr.into(), None));
    }
    let (path, explicit) = (args.config.path().to_owned(), args.config.given());
    match config::load_local(&path) {
        Ok(local) => Ok(Endpoint::of(&local).map_or(Target::Off(path), |e| Target::At(e, None))),
        Err(ConfigError::Read { source, .. }) if !explicit => Ok(Target::At(
            LocalConfig::DEFAULT_LISTEN.into(),
            Some(format!(
                "(the default address: {} cannot be read: {})",
                path.display(),
                super::one_line(&source.to_string())
            )),
        )),
        Err(e) => Err(super::report::report_config_error(&e)),
    }
}

pub(crate) fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let (endpoint, note) = match target(&args) {
        Ok(Target::At(endpoint, note)) => (endpoint, note),
        Ok(Target::Off(path)) => {
            return Err(anyhow!(
                "the local endpoint is turned off in {} ([local] listen = \"\"): set \
                 [local] listen = \"127.0.0.1:9750\" and restart the agent to use `watchpost status`",
                path.display()
            ));
        }
        Err(code) => return Ok(code),
    };
    let addr = endpoint.addr;
    let body = match client::get(endpoint, "/status", TIMEOUT) {
        Ok(body) => body,
        Err(e @ FetchError::NotAnswering { .. }) => {
            let note = note.map(|n| format!(" {n}")).unwrap_or_default();
            return Err(anyhow!(
                "{e}: is `watchpost run` running? (systemctl status watchpost){note}"
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let value: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| anyhow!("{addr} answered, but not with JSON: {e}"))?;
    let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("");
    if schema != STATUS_SCHEMA {
        return Err(anyhow!(
            "{addr} answered with `{schema}`, not `{STATUS_SCHEMA}`: is it a watchpost agent of \
             this version ({})?",
            crate::publish::payload::AGENT_VERSION
        ));
    }
    let text = match args.format {
        Format::Json => format!("{}\n", body.trim_end()),
        Format::Text => {
            let report: StatusReport = serde_json::from_value(value).map_err(|e| {
                anyhow!("{addr} answered with a status this version cannot read: {e}")
            })?;
            render_text(&report)
        }
    };
    // A closed pipe (`| head`) ends the command quietly.
    let mut out = std::io::stdout().lock();
    if std::io::Write::write_all(&mut out, text.as_bytes()).is_err() {
        return Ok(ExitCode::from(super::EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}

/// The table for people.
pub(crate) fn render_text(report: &StatusReport) -> String {
    let header = [
        "CAMERA",
        "STATE",
        "DECODER",
        "FPS IN",
        "ANALYSED",
        "IDLE SKIPS",
        "LATENCY p50/p99",
        "DROPPED",
        "MAIN REASONS",
        "RECONNECTS",
    ];
    let rows: Vec<[String; 10]> = report.cameras.iter().map(camera_row).collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    // Left-aligned: name, state, decoder, reasons; the numbers right-aligned.
    let right = [
        false, false, false, true, true, true, true, true, false, true,
    ];
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            if right[i] {
                let _ = write!(text, "{cell:>width$}", width = widths[i]);
            } else {
                let _ = write!(text, "{cell:<width$}", width = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    for camera in &report.cameras {
        if let Some(error) = &camera.last_error {
            let _ = writeln!(out, "  {}: last error: {error}", camera.name);
        }
    }
    out.push('\n');

    let broker = &report.broker;
    let endpoint = broker.endpoint.as_deref().unwrap_or("no endpoint yet");
    let connection = if broker.connected {
        format!("connected to {endpoint}")
    } else {
        match &broker.endpoint {
            Some(endpoint) => format!("NOT connected (last endpoint {endpoint})"),
            None => "NOT connected (never connected yet)".to_owned(),
        }
    };
    let _ = write!(
        out,
        "broker   {connection}, {} reconnect{}",
        broker.reconnects,
        plural(broker.reconnects)
    );
    if let Some(error) = &broker.last_error {
        let _ = write!(out, "; last error: {error}");
    }
    out.push('\n');

    let outbox = &report.outbox;
    let mut line = String::from("outbox   ");
    if !outbox.ok {
        match &outbox.error {
            Some(error) => {
                let _ = write!(line, "NOT writable (events are not kept): {error}; ");
            }
            None => line.push_str("NOT writable (events are not kept: see the agent's log); "),
        }
    }
    let _ = write!(
        line,
        "{} event{} pending ({})",
        outbox.pending,
        plural(outbox.pending),
        bytes(outbox.bytes)
    );
    if let Some(oldest) = outbox.oldest_s {
        let _ = write!(line, ", oldest {}", duration(oldest));
    }
    let dropped = outbox.dropped_total();
    let _ = write!(line, "; {dropped} dropped");
    let reasons: Vec<String> = outbox
        .dropped
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    if !reasons.is_empty() {
        let _ = write!(line, " ({})", reasons.join(", "));
    }
    if outbox.damaged > 0 {
        let _ = write!(
            line,
            "; {} lost to disk damage (see the agent's log)",
            outbox.damaged
        );
    }
    out.push_str(&line);
    out.push('\n');

    let _ = writeln!(
        out,
        "agent    watchpost {}, {}/{}, up {}; rates over the last {}",
        report.version,
        report.site,
        report.device,
        duration(report.uptime_s),
        duration(report.window_s)
    );
    if let Some(model) = &report.model {
        let _ = writeln!(out, "model    {} ({})", model.name, model.reason);
    }
    for pending in &report.at_restart {
        let _ = writeln!(
            out,
            "pending  {pending} (restart: systemctl restart watchpost)"
        );
    }
    out
}

fn camera_row(camera: &CameraReport) -> [String; 10] {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
    let latency = match (camera.latency_ms.p50, camera.latency_ms.p99) {
        (None, None) => "-".to_owned(),
        (p50, p99) => format!("{}/{} ms", ms(p50), ms(p99)),
    };
    let reasons = camera
        .main_drop_reasons()
        .iter()
        .take(2)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    // An idle camera (nothing moves; analysed at idle_fps) says so after its state.
    let state = match camera.activity.as_deref() {
        Some("idle") => format!("{}, idle", camera.state),
        _ => camera.state.clone(),
    };
    [
        camera.name.clone(),
        state,
        camera.decoder.clone().unwrap_or_else(|| "-".to_owned()),
        format!("{:.1}", camera.fps_in),
        format!("{:.1}", camera.fps_analysed),
        camera
            .drops
            .get(DropReason::Idle.as_str())
            .copied()
            .unwrap_or(0)
            .to_string(),
        latency,
        camera.dropped.to_string(),
        if reasons.is_empty() {
            "-".to_owned()
        } else {
            reasons
        },
        camera.reconnects.to_string(),
    ]
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::local::{BrokerReport, ModelReport, OutboxReport, Percentiles};

    fn camera(name: &str, state: &str) -> CameraReport {
        CameraReport {
            name: name.into(),
            state: state.into(),
            fps_in: 0.0,
            fps_analysed: 0.0,
            latency_ms: Percentiles::default(),
            inference_ms: Percentiles::default(),
            frames_in: 0,
            frames_analysed: 0,
            drops: BTreeMap::new(),
            dropped: 0,
            reconnects: 0,
            errors: 0,
            last_frame_age_s: None,
            last_error: None,
            decoder: None,
            activity: None,
        }
    }

    fn report() -> StatusReport {
        let mut gate = camera("gate-east", "streaming");
        gate.decoder = Some("software (v4l2 failed)".into());
        gate.fps_in = 25.0;
        gate.fps_analysed = 4.96;
        gate.latency_ms = Percentiles {
            p50: Some(57.0),
            p99: Some(80.0),
        };
        gate.activity = Some("idle".into());
        gate.drops = [
            ("busy", 12),
            ("rate_limit", 900),
            ("idle", 340),
            ("too_old", 3),
            ("broker_down", 1),
        ]
        .into_iter()
        .map(|(r, n)| (r.to_owned(), n))
        .collect();
        gate.dropped = 16;
        let mut west = camera("gate-west-long-name", "retrying");
        west.decoder = Some("v4l2".into());
        west.reconnects = 3;
        west.last_error = Some("camera `gate-west-long-name`: src: connection refused".into());
        StatusReport {
            schema: STATUS_SCHEMA.into(),
            version: "0.1.0".into(),
            site: "bihac-north".into(),
            device: "post-07".into(),
            started_at: "2026-11-29T05:00:00.000Z".into(),
            uptime_s: 7_390.0,
            window_s: 5.02,
            cameras: vec![gate, west],
            broker: BrokerReport {
                connected: true,
                endpoint: Some("10.0.0.5:8883".into()),
                connections: 2,
                reconnects: 1,
                last_error: Some("connection reset by the broker".into()),
            },
            outbox: OutboxReport {
                ok: true,
                error: None,
                pending: 12,
                bytes: 46_285,
                oldest_s: Some(192.4),
                appended: 40,
                delivered: 28,
                dropped: [
                    ("backlog", 0),
                    ("expired", 2),
                    ("full", 3),
                    ("write_failed", 0),
                ]
                .into_iter()
                .map(|(r, n)| (r.to_owned(), n))
                .collect(),
                damaged: 0,
            },
            process: None,
            model: Some(ModelReport {
                name: "nanodet-m-416-int8".into(),
                reason: "auto: this CPU has integer dot-product instructions (avx512vnni)".into(),
            }),
            at_restart: vec!["[mqtt] applied at next restart".into()],
        }
    }

    #[test]
    fn the_table_as_a_technician_sees_it() {
        let expected = "\
CAMERA               STATE            DECODER                 FPS IN  ANALYSED  IDLE SKIPS  LATENCY p50/p99  DROPPED  MAIN REASONS        RECONNECTS
gate-east            streaming, idle  software (v4l2 failed)    25.0       5.0         340         57/80 ms       16  busy 12, too_old 3           0
gate-west-long-name  retrying         v4l2                       0.0       0.0           0                -        0  -                            3
  gate-west-long-name: last error: camera `gate-west-long-name`: src: connection refused

broker   connected to 10.0.0.5:8883, 1 reconnect; last error: connection reset by the broker
outbox   12 events pending (45.2 KiB), oldest 3 min 12 s; 5 dropped (expired 2, full 3)
agent    watchpost 0.1.0, bihac-north/post-07, up 2 h 03 min; rates over the last 5.0 s
model    nanodet-m-416-int8 (auto: this CPU has integer dot-product instructions (avx512vnni))
pending  [mqtt] applied at next restart (restart: systemctl restart watchpost)
";
        assert_eq!(render_text(&report()), expected);
    }

    #[test]
    fn a_disconnected_broker_and_an_unwritable_outbox_stand_out() {
        let mut report = report();
        report.broker = BrokerReport::default();
        report.outbox.ok = false;
        report.outbox.oldest_s = None;
        let text = render_text(&report);
        assert!(
            text.contains("broker   NOT connected (never connected yet), 0 reconnects\n"),
            "{text}"
        );
        assert!(
            text.contains("outbox   NOT writable (events are not kept: see the agent's log); 12 events pending (45.2 KiB); 5 dropped"),
            "{text}"
        );

        // An agent that says why, and found damage.
        report.outbox.error = Some(
            "events cannot be written: /var/lib/watchpost/outbox/00000000000000000042.log: \
             cannot write: Read-only file system (os error 30)"
                .into(),
        );
        report.outbox.damaged = 2;
        let text = render_text(&report);
        assert!(
            text.contains(
                "outbox   NOT writable (events are not kept): events cannot be written: \
                 /var/lib/watchpost/outbox/00000000000000000042.log: cannot write: Read-only \
                 file system (os error 30); 12 events pending (45.2 KiB); 5 dropped (expired 2, \
                 full 3); 2 lost to disk damage (see the agent's log)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn units_for_people() {
        let sizes: &[(u64, &str)] = &[
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (46_285, "45.2 KiB"),
            (256 * 1024 * 1024, "256.0 MiB"),
            (3 << 40, "3.0 TiB"),
        ];
        for &(n, text) in sizes {
            assert_eq!(bytes(n), text, "{n}");
        }
        let durations: &[(f64, &str)] = &[
            (0.0, "0.0 s"),
            (5.02, "5.0 s"),
            (45.4, "45 s"),
            (59.6, "1 min 00 s"),
            (192.4, "3 min 12 s"),
            (7_390.0, "2 h 03 min"),
            (3.0 * 86_400.0 + 4.0 * 3600.0, "3 d 4 h"),
            (-1.0, "?"),
            (f64::NAN, "?"),
        ];
        for &(s, text) in durations {
            assert_eq!(duration(s), text, "{s}");
        }
    }

    #[test]
    fn endpoint_urls() {
        let ok: &[(&str, &str)] = &[
            ("http://127.0.0.1:9750", "127.0.0.1:9750"),
            ("http://127.0.0.1:9750/", "127.0.0.1:9750"),
            ("127.0.0.1:9751", "127.0.0.1:9751"),
            ("http://[::1]:9750", "[::1]:9750"),
        ];
        for &(text, addr) in ok {
            assert_eq!(parse_url(text), Ok(addr.parse().unwrap()), "{text}");
        }
        let bad: &[(&str, &str)] = &[
            ("https://127.0.0.1:9750", "plain http://"),
            ("http://127.0.0.1:9750/status", "without a path"),
            ("http://127.0.0.1", "is not http://HOST:PORT"),
            ("", "is not http://HOST:PORT"),
        ];
        for &(text, message) in bad {
            let e = parse_url(text).unwrap_err();
            assert!(e.contains(message), "{text}: {e}");
        }
    }
}
