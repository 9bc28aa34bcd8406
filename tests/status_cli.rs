//! `watchpost status` and the agent's local endpoint (`/status`, `/metrics`) against a real
//! agent: the `watchpost run` binary, the in-process RTSP server playing the street clip, and a
//! real mosquitto. And what a technician sees when there is no agent, or a bad `[local]`.
//!
//! The tests with an agent run one at a time (they share two cores).

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use assert_cmd::cargo::cargo_bin_cmd;
use common::agent::{Agent, AgentSetup, clip_server, expect, topic};
use common::mosquitto::{Mosquitto, Subscriber, free_port};
use common::{Run, serial, wait_for};

fn status(args: &[&str]) -> Run {
    let output = cargo_bin_cmd!("watchpost")
        .arg("status")
        .args(args)
        .output()
        .unwrap();
    Run::from(output)
}

fn status_with_config(config: &Path, format: &str) -> Run {
    status(&["--config", config.to_str().unwrap(), "--format", format])
}

/// `[local]` on `port`, for [`AgentSetup::tables`].
fn local_table(port: u16) -> String {
    format!("[local]\nlisten = \"127.0.0.1:{port}\"\n")
}

/// How often `status` or the endpoint is asked while waiting for what it says.
const POLL: Duration = Duration::from_millis(200);

/// A whole HTTP/1.1 exchange over a fresh connection, as a scraper would do it; the response
/// head (lower-cased) and body.
fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let head = head.to_lowercase();
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "a whole body with its length is expected: {head}"
    );
    (head, body.to_owned())
}

/// The samples of a Prometheus text exposition: `name{labels}` → value. Fails on a sample line
/// that is not `NAME[{LABEL="VALUE",...}] NUMBER` or whose family has no `# HELP` and `# TYPE`.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut typed = HashMap::new();
    let mut helped = HashMap::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.insert(rest.split(' ').next().unwrap().to_owned(), ());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "type: {line}"
            );
            typed.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "line: {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value: {line}")),
        };
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "name: {line}"
        );
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("labels: {line}"));
            for pair in inner.split(',') {
                let (label, quoted) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
                assert!(
                    label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "label: {line}"
                );
                assert!(
                    quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                    "label value: {line}"
                );
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| typed.get(*base).is_some_and(|k| k == "histogram"))
            .unwrap_or(name);
        assert!(
            typed.contains_key(family) && helped.contains_key(family),
            "no HELP/TYPE for {family}: {line}"
        );
        samples.insert(series.to_owned(), value);
    }
    samples
}

#[test]
fn status_shows_the_camera_streaming_and_metrics_count_up() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let port = free_port();
    let setup = AgentSetup {
        tables: local_table(port),
        ..AgentSetup::one_camera(server.url("cam0"))
    };
    let agent = Agent::start(&broker, &setup);
    let config = agent.config_path();

    // The JSON, as the agent answers it: wait until the camera is analysed.
    let json = expect(
        wait_for(Duration::from_secs(60), POLL, || {
            let run = status_with_config(&config, "json");
            if run.code != Some(0) {
                return None;
            }
            let json: serde_json::Value = serde_json::from_str(&run.stdout)
                .unwrap_or_else(|e| panic!("--format json is not JSON: {e}\n{}", run.stdout));
            let camera = &json["cameras"][0];
            (camera["state"] == "streaming" && camera["fps_analysed"].as_f64() > Some(0.0))
                .then_some(json)
        }),
        "status --format json shows cam0 streaming and analysed",
        &agent,
    );
    assert_eq!(json["schema"], "watchpost.local-status/1", "{json}");
    assert_eq!(json["site"], "test-site");
    assert_eq!(json["device"], "post-1");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    let camera = &json["cameras"][0];
    assert_eq!(camera["name"], "cam0");
    assert!(camera["fps_in"].as_f64() > Some(0.0), "{json}");
    assert!(camera["frames_in"].as_u64() > Some(0), "{json}");
    assert!(camera["drops"]["rate_limit"].is_u64(), "{json}");
    // No hardware decoder on this machine: `auto` chose software.
    assert_eq!(camera["decoder"], "software", "{json}");
    assert_eq!(json["broker"]["connected"], true, "{json}");
    assert_eq!(
        json["broker"]["endpoint"],
        format!("127.0.0.1:{}", broker.port())
    );
    assert_eq!(json["outbox"]["ok"], true, "{json}");

    // The table: the camera's row says streaming, with frames coming in and analysed.
    let run = expect(
        wait_for(Duration::from_secs(30), POLL, || {
            let run = status_with_config(&config, "text");
            let row = run.stdout.lines().find(|l| l.starts_with("cam0 "))?;
            let cells: Vec<&str> = row.split_whitespace().collect();
            let fps_in: f64 = cells.get(3)?.parse().ok()?;
            let analysed: f64 = cells.get(4)?.parse().ok()?;
            (cells[1] == "streaming" && cells[2] == "software" && fps_in > 0.0 && analysed > 0.0)
                .then_some(run)
        }),
        "the table shows cam0 streaming in software with fps > 0",
        &agent,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stderr, "");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("CAMERA") && lines[0].contains("FPS IN"),
        "{}",
        run.stdout
    );
    let broker_line = format!(
        "broker   connected to 127.0.0.1:{}, 0 reconnects",
        broker.port()
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&broker_line)),
        "{}",
        run.stdout
    );
    assert!(
        lines.iter().any(|l| l.starts_with("outbox   ")),
        "{}",
        run.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("agent    watchpost ") && l.contains("test-site/post-1")),
        "{}",
        run.stdout
    );

    // /metrics, scraped over HTTP: well formed, and the camera's counters rise.
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (head, body) = http_get(addr, "/metrics");
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let first = parse_metrics(&body);
    let frames_in = "watchpost_camera_frames_in_total{camera=\"cam0\"}";
    let analysed = "watchpost_camera_frames_analysed_total{camera=\"cam0\"}";
    for series in [
        frames_in,
        analysed,
        "watchpost_camera_up{camera=\"cam0\"}",
        "watchpost_camera_drops_total{camera=\"cam0\",reason=\"busy\"}",
        "watchpost_camera_latency_seconds_count{camera=\"cam0\"}",
        "watchpost_camera_inference_seconds_bucket{camera=\"cam0\",le=\"+Inf\"}",
        "watchpost_camera_reconnects_total{camera=\"cam0\"}",
        "watchpost_broker_connected",
        "watchpost_outbox_pending_events",
        "watchpost_outbox_bytes",
        "watchpost_outbox_dropped_total{reason=\"full\"}",
        "process_resident_memory_bytes",
    ] {
        assert!(first.contains_key(series), "{series} missing:\n{body}");
    }
    assert_eq!(first["watchpost_camera_up{camera=\"cam0\"}"], 1.0);
    assert_eq!(first["watchpost_broker_connected"], 1.0);
    let risen = expect(
        wait_for(Duration::from_secs(30), POLL, || {
            let (_, body) = http_get(addr, "/metrics");
            let later = parse_metrics(&body);
            (later[frames_in] > first[frames_in] && later[analysed] > first[analysed])
                .then_some(later)
        }),
        "frames in and analysed rise between two scrapes",
        &agent,
    );
    assert!(
        risen["watchpost_camera_latency_seconds_count{camera=\"cam0\"}"]
            >= first["watchpost_camera_latency_seconds_count{camera=\"cam0\"}"]
    );

    // Not a page of the endpoint: 404; not a GET, without the CSRF token (checked before the
    // route, on every request that is not GET or HEAD): 403.
    let (head, _) = http_get(addr, "/favicon.ico");
    assert!(head.starts_with("http/1.1 404"), "{head}");
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /status HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 403") && response.contains("missing or wrong CSRF token"),
        "{response}"
    );
}

#[test]
fn no_agent_is_one_line_and_exit_1() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchpost.toml");
    std::fs::write(
        &config,
        format!(
            "[device]\nsite = \"s\"\nid = \"d\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n{}\
             [[cameras]]\nname = \"gate\"\nurl = \"rtsp://127.0.0.1:1/x\"\n",
            local_table(port)
        ),
    )
    .unwrap();
    let expected = format!(
        "watchpost: error: no agent answers on 127.0.0.1:{port} (connection refused): is \
         `watchpost run` running? (systemctl status watchpost)\n"
    );
    for format in ["text", "json"] {
        let run = status_with_config(&config, format);
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        assert_eq!(run.stderr, expected);
        assert_eq!(run.stdout, "");
    }
    let run = status(&["--url", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.stderr, expected);
}

#[test]
fn a_bad_local_table_or_url_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchpost.toml");
    // (the [local] table, exit code, stderr)
    let cases = [
        (
            "[local]\nlisten = \"0.0.0.0:9750\"\n",
            2,
            format!(
                "{}:2: local.listen: `0.0.0.0:9750` is not a loopback address: to open the local \
                 endpoint to the network, set [local] password_file (the password a technician \
                 logs in with); otherwise use 127.0.0.1 or [::1] (or \"\" to turn it off)\n",
                config.display()
            ),
        ),
        (
            "[local]\nlisten = \"\"\n",
            1,
            format!(
                "watchpost: error: the local endpoint is turned off in {} ([local] listen = \
                 \"\"): set [local] listen = \"127.0.0.1:9750\" and restart the agent to use \
                 `watchpost status`\n",
                config.display()
            ),
        ),
    ];
    for (table, code, stderr) in cases {
        std::fs::write(&config, table).unwrap();
        let run = status_with_config(&config, "text");
        assert_eq!(run.code, Some(code), "{table}: {}", run.stderr);
        assert_eq!(run.stderr, stderr, "{table}");
        assert_eq!(run.stdout, "");
    }

    let missing = dir.path().join("missing.toml");
    let run = status_with_config(&missing, "text");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "{}: cannot read: No such file or directory (os error 2)\n",
            missing.display()
        )
    );

    let run = status(&["--url", "https://127.0.0.1:9750"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("plain http://"), "{}", run.stderr);
}

#[test]
fn a_taken_port_leaves_the_agent_running_without_its_endpoint() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), &topic("#"));
    // Another program holds the port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let setup = AgentSetup {
        tables: local_table(port),
        ..AgentSetup::one_camera(server.url("cam0"))
    };
    let agent = Agent::start(&broker, &setup);
    expect(
        central.wait_for(
            |m| m.topic == topic("cam0/detections"),
            Duration::from_secs(60),
        ),
        "the agent detects without its endpoint",
        &agent,
    );
    let log = agent.log();
    let warning = format!(
        "the local endpoint cannot listen on 127.0.0.1:{port}: the port is taken by another \
         program (another watchpost agent?); running without it"
    );
    assert!(log.contains(&warning), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains(&warning)),
        "{log}"
    );
}
