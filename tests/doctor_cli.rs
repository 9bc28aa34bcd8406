//! `watchpost doctor` as a technician runs it: the real binary against a real mosquitto, the
//! in-process RTSP server, the bundled model and ONNX Runtime, and real file systems (a
//! read-only tmpfs for the outbox: these tests run as root, as CI does).
//!
//! The tests run one at a time (they share two cores).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin_cmd;
use common::agent::{Agent, AgentSetup, clip_server, expect};
use common::mosquitto::{BrokerOptions, Mosquitto, free_port};
use common::tmpfs::Mount;
use common::{Run, serial};

impl Run {
    /// The line of the check `what` (`config`, `camera cam0`, `broker mqtt://…`).
    fn check(&self, what: &str) -> &str {
        let prefix = format!("{what}: ");
        self.stdout
            .lines()
            .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(&prefix)))
            .unwrap_or_else(|| panic!("no `{what}` check in:\n{}", self.stdout))
    }
}

fn doctor(config: &Path) -> Run {
    let output = cargo_bin_cmd!("watchpost")
        .args(["doctor", "--config"])
        .arg(config)
        .output()
        .unwrap();
    Run::from(output)
}

/// A configuration as the agent tests write it, with the outbox in `outbox` and the local
/// endpoint on `local_port`, in a fresh folder (kept alive by the returned guard).
fn write_config(
    broker_url: &str,
    camera_url: String,
    outbox: &Path,
    local_port: u16,
    camera_extra: &str,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let setup = AgentSetup {
        tables: format!(
            "[outbox]\ndir = \"{}\"\n\n[local]\nlisten = \"127.0.0.1:{local_port}\"\n",
            outbox.display()
        ),
        camera_extra: camera_extra.to_owned(),
        ..AgentSetup::one_camera(camera_url)
    };
    let path = dir.path().join("watchpost.toml");
    std::fs::write(
        &path,
        setup.config_text(broker_url, &dir.path().join("state")),
    )
    .unwrap();
    (dir, path)
}

/// Every line is `PASS  `, `WARN  ` or `FAIL  ` (or a config problem under its FAIL), and the
/// last says how many of each.
fn assert_well_formed(run: &Run) {
    let lines: Vec<&str> = run.stdout.lines().collect();
    let (summary, checks) = lines.split_last().expect("some output");
    for line in checks {
        assert!(
            ["PASS  ", "WARN  ", "FAIL  ", "      "]
                .iter()
                .any(|p| line.starts_with(p)),
            "{line}\n{}",
            run.stdout
        );
    }
    let count = |p: &str| checks.iter().filter(|l| l.starts_with(p)).count();
    assert!(
        summary.starts_with(&format!(
            "{} checks: {} passed, {} warning{}, {} failed",
            count("PASS") + count("WARN") + count("FAIL"),
            count("PASS"),
            count("WARN"),
            if count("WARN") == 1 { "" } else { "s" },
            count("FAIL")
        )),
        "{}",
        run.stdout
    );
    let expected_code = if count("FAIL") == 0 { 0 } else { 1 };
    assert_eq!(run.code, Some(expected_code), "{}", run.stdout);
}

#[test]
fn a_good_device_passes_and_a_running_agent_keeps_its_connection() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let outbox = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_dir, config) = write_config(&broker.url(), server.url("cam0"), outbox.path(), port, "");

    // Before the agent runs: its port is free.
    let run = doctor(&config);
    assert_well_formed(&run);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "");
    for line in run.stdout.lines().filter(|l| l.starts_with("WARN")) {
        assert!(
            line.starts_with("WARN  ntp: ") || line.starts_with("WARN  clock: "),
            "only the clock may warn here: {line}"
        );
    }
    // The model `auto` takes on this CPU, and why.
    let cpu = watchpost::detect::CpuFeatures::detect();
    let (model, reason) = watchpost::detect::auto_model(&cpu);
    let model_check = format!("model {model} ({reason})");
    // (check, the start of its line)
    let expected = [
        (
            "config",
            format!("PASS  config: {}: valid (1 camera)", config.display()),
        ),
        (
            "camera cam0",
            "PASS  camera cam0: decoder `software` (auto: no hardware decoder found); GStreamer \
             elements present: rtspsrc, decodebin"
                .to_owned(),
        ),
        ("onnx runtime", "PASS  onnx runtime: ".to_owned()),
        ("cpu", format!("PASS  cpu: {}; ", cpu.describe())),
        (model_check.as_str(), format!("PASS  {model_check}: ")),
        (
            &format!("broker {}", broker.url()),
            format!("PASS  broker {}: connected and accepted", broker.url()),
        ),
        (
            &format!("outbox {}", outbox.path().display()),
            format!("PASS  outbox {}: writable; ", outbox.path().display()),
        ),
        (
            &format!("local endpoint 127.0.0.1:{port}"),
            format!(
                "PASS  local endpoint 127.0.0.1:{port}: free for the agent (no agent is running)"
            ),
        ),
    ];
    for (what, start) in &expected {
        let line = run.check(what);
        assert!(line.starts_with(start.as_str()), "{line}\n{}", run.stdout);
    }
    assert!(
        run.check(&model_check)
            .ends_with(": loaded and ran once on a blank frame"),
        "{}",
        run.stdout
    );
    // Nothing left in the outbox folder.
    assert_eq!(std::fs::read_dir(outbox.path()).unwrap().count(), 0);

    // With the agent running: it answers on its port, and the broker check (under its own
    // client id) does not take the agent's connection away.
    let agent = Agent::start_with_config(&std::fs::read_to_string(&config).unwrap());
    let status = |agent: &Agent| -> Option<serde_json::Value> {
        let output = cargo_bin_cmd!("watchpost")
            .args(["status", "--format", "json", "--config"])
            .arg(agent.config_path())
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).ok()
    };
    let connected = |agent: &Agent| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(json) = status(agent)
                && json["broker"]["connected"] == true
            {
                return Some(json);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    };
    let before = expect(connected(&agent), "the agent connects", &agent);
    assert_eq!(before["broker"]["connections"], 1, "{before}");
    let run = doctor(&config);
    assert_well_formed(&run);
    let line = run.check(&format!("local endpoint 127.0.0.1:{port}"));
    assert!(
        line.starts_with(&format!(
            "PASS  local endpoint 127.0.0.1:{port}: the running agent answers (up "
        )) && line.ends_with(", 1 camera)"),
        "{line}"
    );
    assert!(
        run.check(&format!("broker {}", broker.url()))
            .starts_with("PASS"),
        "{}",
        run.stdout
    );
    let after = expect(status(&agent), "status after doctor", &agent);
    assert_eq!(after["broker"]["connected"], true, "{after}");
    assert_eq!(
        after["broker"]["connections"], 1,
        "the agent was not disconnected: {after}"
    );
    assert!(
        !broker
            .log()
            .contains("already connected, closing old connection"),
        "{}",
        broker.log()
    );
}

#[test]
fn a_stopped_broker_fails_with_the_cause() {
    let _serial = serial();
    let server = clip_server();
    let mut broker = Mosquitto::start();
    let url = broker.url();
    broker.stop();
    let outbox = tempfile::tempdir().unwrap();
    let (_dir, config) = write_config(&url, server.url("cam0"), outbox.path(), free_port(), "");
    let run = doctor(&config);
    assert_well_formed(&run);
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.check(&format!("broker {url}")),
        format!(
            "FAIL  broker {url}: connection refused; hint: is the broker running, and are the \
             host and port in mqtt.url right?"
        )
    );
    // The other checks still ran.
    assert!(run.check("camera cam0").starts_with("PASS"));
    assert!(run.check("config").starts_with("PASS"));
    assert!(run.stdout.ends_with(", 1 failed\n"), "{}", run.stdout);
}

#[test]
fn a_decoder_this_box_does_not_have_fails() {
    let _serial = serial();
    let broker = Mosquitto::start();
    let outbox = tempfile::tempdir().unwrap();
    let (_dir, config) = write_config(
        &broker.url(),
        "rtsp://127.0.0.1:1/x".to_owned(),
        outbox.path(),
        free_port(),
        "decoder = \"nvv4l2\"",
    );
    let run = doctor(&config);
    assert_well_formed(&run);
    assert_eq!(run.code, Some(1));
    let line = run.check("camera cam0");
    assert!(
        line.starts_with(
            "FAIL  camera cam0: decoder template `nvv4l2` needs GStreamer element(s) that are \
             not installed: "
        ),
        "{line}"
    );
    assert!(
        line.contains("; hint: install the plug-ins that provide them (`gst-inspect-1.0 ")
            && line.ends_with("or set cameras[0].decoder = \"auto\""),
        "{line}"
    );
    assert!(
        run.check(&format!("broker {}", broker.url()))
            .starts_with("PASS")
    );
}

#[test]
fn broker_credentials_are_checked_and_never_printed() {
    let _serial = serial();
    let broker = Mosquitto::start_with(BrokerOptions {
        users: vec![("post-1".to_owned(), "right-pw-4821".to_owned())],
        ..BrokerOptions::default()
    });
    let outbox = tempfile::tempdir().unwrap();
    // (password in the file, the start of the broker check's line)
    let cases = [
        (
            "right-pw-4821",
            format!(
                "PASS  broker {}: connected and accepted as user `post-1`",
                broker.url()
            ),
        ),
        (
            "wrong-pw-7735",
            format!(
                "FAIL  broker {}: refused by the broker: not authorised (bad user name or \
                 password, or a client it does not allow); hint: check mqtt.username and the \
                 password",
                broker.url()
            ),
        ),
    ];
    for (password, start) in cases {
        let dir = tempfile::tempdir().unwrap();
        let setup = AgentSetup {
            mqtt_extra: format!("username = \"post-1\"\npassword = \"{password}\"\n"),
            tables: format!("[outbox]\ndir = \"{}\"\n", outbox.path().display()),
            ..AgentSetup::one_camera("rtsp://127.0.0.1:1/x".to_owned())
        };
        let config = dir.path().join("watchpost.toml");
        std::fs::write(
            &config,
            setup.config_text(&broker.url(), &dir.path().join("state")),
        )
        .unwrap();
        let run = doctor(&config);
        assert_well_formed(&run);
        let line = run.check(&format!("broker {}", broker.url()));
        assert!(line.starts_with(&start), "{line}");
        for secret in ["right-pw-4821", "wrong-pw-7735"] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{secret} printed:\n{}{}",
                run.stdout,
                run.stderr
            );
        }
    }
}

#[test]
fn an_outbox_on_a_read_only_disk_fails_with_the_cause() {
    let _serial = serial();
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let _mount = Mount::tmpfs(&outbox, "ro,size=1m");
    let (_config_dir, config) = write_config(
        &broker.url(),
        "rtsp://127.0.0.1:1/x".to_owned(),
        &outbox,
        free_port(),
        "",
    );
    let run = doctor(&config);
    assert_well_formed(&run);
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.check(&format!("outbox {}", outbox.display())),
        format!(
            "FAIL  outbox {}: cannot write: Read-only file system (os error 30); hint: the agent \
             keeps events here until the broker has them: make the disk writable for the \
             service, or set [outbox] dir",
            outbox.display()
        )
    );

    // A disk smaller than max_size_mb: a warning, not a failure.
    let small = dir.path().join("small");
    let _small_mount = Mount::tmpfs(&small, "size=1m");
    let (_config_dir, config) = write_config(
        &broker.url(),
        "rtsp://127.0.0.1:1/x".to_owned(),
        &small,
        free_port(),
        "",
    );
    let run = doctor(&config);
    assert_well_formed(&run);
    let line = run.check(&format!("outbox {}", small.display()));
    assert!(
        line.starts_with(&format!(
            "WARN  outbox {}: writable, but only 1.0 MiB free for max_size_mb = 256 (0 B in use)",
            small.display()
        )),
        "{line}"
    );
}

#[test]
fn a_bad_configuration_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchpost.toml");
    std::fs::write(
        &config,
        "[device]\nsite = \"s\"\nid = \"d\"\n[mqtt]\nurl = \"tcp://broker\"\n[local]\n\
         listen = \"0.0.0.0:9750\"\n[[cameras]]\nname = \"gate\"\nurl = \"rtsp://127.0.0.1:1/x\"\n",
    )
    .unwrap();
    let run = doctor(&config);
    assert_well_formed(&run);
    assert_eq!(run.code, Some(1));
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "FAIL  config: {}: 2 problems (listed below); hint: fix each one; `watchpost \
             config validate FILE` checks again",
            config.display()
        )
    );
    assert!(
        lines[1].starts_with(&format!("      {}:5: mqtt.url: ", config.display())),
        "{}",
        run.stdout
    );
    assert!(
        lines[2].starts_with(&format!(
            "      {}:7: local.listen: `0.0.0.0:9750` is not a loopback address",
            config.display()
        )),
        "{}",
        run.stdout
    );
    // The checks that need no configuration still run.
    assert!(run.check("clock").starts_with("PASS"), "{}", run.stdout);
    assert!(
        lines
            .last()
            .unwrap()
            .ends_with("1 failed (the other checks need a valid configuration)"),
        "{}",
        run.stdout
    );

    let missing = dir.path().join("missing.toml");
    let run = doctor(&missing);
    assert_well_formed(&run);
    assert_eq!(
        run.check("config"),
        format!(
            "FAIL  config: {}: cannot read: No such file or directory (os error 2); hint: give \
             the agent's configuration with --config FILE",
            missing.display()
        )
    );
}
