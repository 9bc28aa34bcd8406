//! The technician's evening, end to end, using only the command line: from nothing to a
//! validated config with two cameras, a probed snapshot of each, a line drawn and checked on
//! the picture, and `watchpost status` showing both cameras live.
//!
//! Real parts: the in-process RTSP server playing the street clip on two mounts, a mosquitto
//! started here, the bundled model, and the real `watchpost` binary for every step.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::agent::clip_server;
use common::mosquitto::{Mosquitto, free_port};

fn watchpost(args: &[&str]) -> std::process::Output {
    assert_cmd::cargo::cargo_bin_cmd!("watchpost")
        .args(args)
        .env_remove("WATCHPOST_MQTT_PASSWORD")
        .output()
        .expect("run watchpost")
}

/// Runs a step; it must succeed. Returns its stdout.
#[track_caller]
fn step(args: &[&str]) -> String {
    let output = watchpost(args);
    assert!(
        output.status.success(),
        "`watchpost {}` failed ({:?}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn from_nothing_to_two_live_cameras_with_the_cli_only() {
    let server = clip_server();
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchpost.toml");
    let state = dir.path().join("state");
    let local = format!("127.0.0.1:{}", free_port());
    let (url0, url1) = (server.url("cam0"), server.url("cam1"));

    // 1. A starter file, then the cameras and the local endpoint.
    step(&[
        "config",
        "init",
        s(&config),
        "--no-input",
        "--site",
        "bihac-north",
        "--id",
        "post-07",
        "--broker",
        &broker.url(),
        "--state-dir",
        s(&state),
    ]);
    step(&["camera", "add", "gate-east", &url0, "--config", s(&config)]);
    step(&["camera", "add", "gate-west", &url1, "--config", s(&config)]);
    step(&[
        "config",
        "set",
        "local.listen",
        &local,
        "--config",
        s(&config),
    ]);
    let validated = step(&["config", "validate", s(&config)]);
    assert!(validated.contains("ok (2 cameras)"), "{validated}");
    let listed = step(&["camera", "list", "--config", s(&config)]);
    assert!(
        listed.contains("gate-east") && listed.contains("gate-west"),
        "{listed}"
    );

    // 2. A probe of each, with a snapshot of what it sees.
    for name in ["gate-east", "gate-west"] {
        let snapshot = dir.path().join(format!("{name}.jpg"));
        let report = step(&[
            "camera",
            "probe",
            name,
            "--config",
            s(&config),
            "--snapshot",
            s(&snapshot),
        ]);
        assert!(report.contains("640x360"), "{name}: {report}");
        let picture = watchpost::imaging::read_image(&snapshot).expect("a probe snapshot");
        assert_eq!((picture.width, picture.height), (640, 360));
    }

    // 3. A line, drawn on the picture to check its placement.
    step(&[
        "camera",
        "line",
        "add",
        "gate-east",
        "middle",
        "--points",
        "0.45,0.3 0.45,0.99",
        "--directions",
        "to_left,to_right",
        "--config",
        s(&config),
    ]);
    // Drawn on the probe's snapshot, so the only difference is the line and its labels.
    let probed = dir.path().join("gate-east.jpg");
    let drawn = dir.path().join("gate-east-lines.jpg");
    step(&[
        "camera",
        "draw",
        "gate-east",
        "--config",
        s(&config),
        "--from-snapshot",
        s(&probed),
        "--output",
        s(&drawn),
    ]);
    let picture = watchpost::imaging::read_image(&drawn).expect("the drawn picture");
    let plain = watchpost::imaging::read_image(&probed).unwrap();
    let differs = |x: usize, y: usize| {
        let (a, b) = (picture.pixel(x, y).unwrap(), plain.pixel(x, y).unwrap());
        a.iter().zip(b.iter()).any(|(a, b)| a.abs_diff(*b) > 60)
    };
    let x = (0.45 * 640.0) as usize;
    let rows: Vec<usize> = ((0.35 * 360.0) as usize..(0.95 * 360.0) as usize).collect();
    let on_line = rows
        .iter()
        .filter(|&&y| (x - 2..=x + 2).any(|px| differs(px, y)))
        .count();
    assert!(
        on_line * 2 > rows.len(),
        "the line is drawn where it was placed ({on_line} of {} rows)",
        rows.len()
    );
    let far = rows.iter().filter(|&&y| differs(60, y)).count();
    assert!(
        far * 4 < rows.len(),
        "and not elsewhere ({far} rows at x=60)"
    );
    let validated = step(&["config", "validate", s(&config)]);
    assert!(validated.contains("ok (2 cameras)"), "{validated}");

    // Every change is in the audit log.
    let audit = std::fs::read_to_string(state.join("audit.log")).expect("an audit log");
    assert!(audit.lines().count() >= 5, "{audit}");

    // 4. The agent, and `watchpost status` showing both cameras live.
    let mut agent = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["run", "--config", s(&config)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the agent");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    let live = loop {
        let output = watchpost(&["status", "--config", s(&config), "--format", "json"]);
        if output.status.success() {
            last = String::from_utf8_lossy(&output.stdout).into_owned();
            let status: serde_json::Value = serde_json::from_str(&last).expect("status JSON");
            let streaming = status["cameras"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .filter(|c| {
                            c["state"] == "streaming" && c["fps_analysed"].as_f64() > Some(0.0)
                        })
                        .count()
                })
                .unwrap_or(0);
            if streaming == 2 {
                break true;
            }
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let table = watchpost(&["status", "--config", s(&config)]);
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(live, "both cameras live in `watchpost status`: {last}");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("gate-east") && table.contains("gate-west") && table.contains("streaming"),
        "{table}"
    );
}
