//! Live configuration end to end: the real `watchpost run` binary against the in-process RTSP
//! server playing the street clip and a real mosquitto; the configuration file is changed on
//! disk and the agent told with SIGHUP (as `systemctl reload` does) or `POST /reload` (as the
//! edit commands do), or sent whole by the central system as a signed `config.apply`.
//!
//! The tests run one at a time (they share two cores).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::agent::{Agent, AgentSetup, clip_server, expect, topic};
use common::central::{Central, commands_table};
use common::mosquitto::{Message, Mosquitto, Subscriber, free_port};
use common::{serial, wait_until};
use watchpost::local::client::{get, request_reload};
use watchpost::local::{ReloadAnswer, StatusReport};

/// A line down the street, added to a running camera.
const LINE: &str = r#"
[[cameras.lines]]
name = "middle"
points = [[0.45, 0.3], [0.45, 0.99]]
direction_names = ["to_left", "to_right"]
"#;

/// `n` cameras on the clip server, the local endpoint on `listen`.
fn setup(server_urls: Vec<String>, listen: SocketAddr) -> AgentSetup {
    AgentSetup {
        cameras: server_urls,
        tables: format!("[local]\nlisten = \"{listen}\"\n"),
        ..AgentSetup::one_camera(String::new())
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

fn is_detection_of(camera: &'static str) -> impl Fn(&Message) -> bool {
    move |m| m.topic == topic(&format!("{camera}/detections"))
}

/// The `seq` of every `detections` message of `camera`, in arrival order.
fn detection_seqs(central: &Subscriber, camera: &str) -> Vec<u64> {
    central
        .messages()
        .iter()
        .filter(|m| m.topic == topic(&format!("{camera}/detections")))
        .map(|m| m.json()["seq"].as_u64().expect("seq"))
        .collect()
}

/// Per camera: the distinct event `seq`s received, in order.
fn event_seqs(central: &Subscriber) -> BTreeMap<String, Vec<u64>> {
    let mut seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for m in central.messages().iter().filter(|m| m.kind() == "events") {
        let event = m.json();
        let seq = event["seq"].as_u64().expect("seq");
        let camera = event["camera"].as_str().expect("camera").to_owned();
        let list = seqs.entry(camera).or_default();
        if !list.contains(&seq) {
            list.push(seq);
        }
    }
    seqs
}

fn status(listen: SocketAddr) -> StatusReport {
    let body = get(listen, "/status", Duration::from_secs(5)).expect("GET /status");
    serde_json::from_str(&body).expect("a status report")
}

#[test]
fn a_config_apply_adds_a_camera_and_changes_another_while_the_first_does_not_notice() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), "watchpost/#");
    let listen = loopback();
    let keys_dir = tempfile::tempdir().unwrap();
    let key = watchpost::command::keys::generate(keys_dir.path(), "central").unwrap();
    let commands = commands_table(&key.public, &[]);
    let mut two = setup(vec![server.url("cam0"), server.url("cam1")], listen);
    two.tables.push_str(&commands);
    let agent = Agent::start(&broker, &two);
    let state = expect(
        central.wait_for(
            |m| m.topic == topic("config/state"),
            Duration::from_secs(40),
        ),
        "config/state",
        &agent,
    );
    let version = state.json()["version"].as_str().unwrap().to_owned();
    for camera in ["cam0", "cam1"] {
        expect(
            central.wait_for(is_detection_of(camera), Duration::from_secs(40)),
            "detections of both cameras before the reload",
            &agent,
        );
    }
    expect(
        central
            .wait_for(|m| m.topic == topic("cam0/events"), Duration::from_secs(30))
            .map(|_| ()),
        "events of cam0 before the reload",
        &agent,
    );

    // A third camera, and a line on the second.
    let mut three = setup(
        vec![server.url("cam0"), server.url("cam1"), server.url("cam2")],
        listen,
    );
    three.tables.push_str(&commands);
    let text = three
        .config_text(&broker.url(), &agent.state_dir())
        .replacen(
            "\n[[cameras]]\nname = \"cam2\"",
            &format!("{LINE}\n[[cameras]]\nname = \"cam2\""),
            1,
        );
    assert!(text.contains("name = \"middle\""), "{text}");
    // Sent by the central system as a signed config.apply with the whole new file.
    let args = serde_json::json!({ "toml": text, "expected_version": version }).to_string();
    let apply = Central::new(&key.private).sign("apply-1", "config.apply", &args);
    let reloaded = central.len();
    central.publish(&topic("cmd"), apply, false);
    let result = expect(
        central.wait_for_from(
            reloaded,
            |m| m.topic == topic("cmd/result") && m.json()["id"] == "apply-1",
            Duration::from_secs(30),
        ),
        "the result of config.apply",
        &agent,
    )
    .json();
    assert_eq!(result["status"], "ok", "{result}");
    let live = result["result"]["live"].as_array().unwrap();
    for line in [
        "camera cam1 updated (line middle added)",
        "camera cam2 added",
    ] {
        assert!(live.iter().any(|l| l == line), "{line}: {result}");
    }
    assert_eq!(live.len(), 2, "cam0 untouched: {result}");
    assert_eq!(
        std::fs::read_to_string(agent.config_path()).unwrap(),
        text,
        "the file is the one sent"
    );
    expect(
        central.wait_for_from(reloaded, is_detection_of("cam2"), Duration::from_secs(40)),
        "detections of the added camera",
        &agent,
    );
    // cam0 keeps going, and an event of it after the reload, so that its seq runs across it.
    expect(
        central.wait_for_from(
            central.len(),
            |m| m.topic == topic("cam0/events"),
            Duration::from_secs(40),
        ),
        "events of cam0 after the reload",
        &agent,
    );
    let after = central.len();
    expect(
        central.wait_for_from(after, is_detection_of("cam0"), Duration::from_secs(20)),
        "detections of cam0 after the reload",
        &agent,
    );

    expect(
        central.wait_for_from(
            after,
            |m| {
                m.kind() == "health"
                    && m.json()["cameras"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["name"] == "cam2"))
            },
            Duration::from_secs(20),
        ),
        "a health report listing the added camera",
        &agent,
    );

    // The first camera did not notice: one pipeline all along (its frame seq never went back),
    // never reconnected, streaming in every health report since it first streamed.
    let seqs = detection_seqs(&central, "cam0");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "cam0's frame seq rises without a reset: {seqs:?}"
    );
    let health: Vec<serde_json::Value> = central
        .messages()
        .iter()
        .filter(|m| m.kind() == "health")
        .map(|m| m.json())
        .collect();
    let cam0: Vec<&serde_json::Value> = health
        .iter()
        .flat_map(|h| h["cameras"].as_array().unwrap())
        .filter(|c| c["name"] == "cam0")
        .skip_while(|c| c["state"] != "streaming")
        .collect();
    assert!(!cam0.is_empty(), "health reports of cam0");
    assert!(
        cam0.iter()
            .all(|c| c["state"] == "streaming" && c["reconnects"] == 0),
        "cam0 streaming, never reconnected: {cam0:?}"
    );
    let report = status(listen);
    let names: Vec<&str> = report.cameras.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["cam0", "cam1", "cam2"]);
    assert!(report.at_restart.is_empty(), "{:?}", report.at_restart);

    // No event lost or renumbered: per camera, every seq from 1 up, in order.
    let events = event_seqs(&central);
    eprintln!(
        "cam0 detections {}, events {:?}",
        seqs.len(),
        events.iter().map(|(c, s)| (c, s.len())).collect::<Vec<_>>()
    );
    assert!(events.contains_key("cam0"), "{events:?}");
    for (camera, seqs) in &events {
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, &expected, "{camera}'s event seqs are contiguous");
    }
    central.validate_all();
}

#[test]
fn an_invalid_file_leaves_the_agent_running_on_the_old_configuration() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), "watchpost/#");
    let listen = loopback();
    let one = setup(vec![server.url("cam0")], listen);
    let agent = Agent::start(&broker, &one);
    expect(
        central.wait_for(is_detection_of("cam0"), Duration::from_secs(40)),
        "detections before the reload",
        &agent,
    );

    // A second camera, but with a rate out of range, and a new broker port: not applied.
    let mut two = setup(vec![server.url("cam0"), server.url("cam1")], listen);
    two.detect_fps = 0.0;
    let invalid = two.config_text(&broker.url(), &agent.state_dir());
    std::fs::write(agent.config_path(), &invalid).unwrap();
    agent.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let log = agent.log();
            log.contains("configuration not reloaded") && log.contains("cameras[1].detect_fps")
        }),
        "the loader's lines in the log\n{}",
        agent.log()
    );
    let answer = request_reload(listen, Duration::from_secs(15)).expect("POST /reload");
    assert_eq!(answer.outcome, "invalid", "{answer:?}");
    assert!(
        answer
            .problems
            .iter()
            .any(|p| p.contains("cameras[0].detect_fps")),
        "{answer:?}"
    );

    // Still running as before: cam0 analysed, its seq rising, no cam1.
    let after = central.len();
    expect(
        central.wait_for_from(after, is_detection_of("cam0"), Duration::from_secs(20)),
        "detections after the invalid reload",
        &agent,
    );
    let seqs = detection_seqs(&central, "cam0");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let names: Vec<String> = status(listen).cameras.into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["cam0"]);

    // Fixed, with a change that waits for a restart: cam1 added now, the health interval
    // pending, and `/status` says so.
    two.detect_fps = 5.0;
    let fixed = two
        .config_text(&broker.url(), &agent.state_dir())
        .replace("interval_s = 1", "interval_s = 2");
    std::fs::write(agent.config_path(), fixed).unwrap();
    let answer: ReloadAnswer =
        request_reload(listen, Duration::from_secs(15)).expect("POST /reload");
    assert!(answer.applied(), "{answer:?}");
    assert_eq!(answer.live, ["camera cam1 added"]);
    assert_eq!(answer.at_restart, ["[health] applied at next restart"]);
    let report = status(listen);
    let names: Vec<&str> = report.cameras.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["cam0", "cam1"]);
    assert_eq!(report.at_restart, ["[health] applied at next restart"]);
    assert!(
        !central
            .messages()
            .iter()
            .any(|m| m.topic == topic("cam1/detections") && m.index < after),
        "nothing of cam1 before it was applied"
    );

    // `watchpost config set` on the box tells the running agent, which applies it live.
    let set = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["config", "set", "--config"])
        .arg(agent.config_path())
        .args(["cameras.cam1.detect_fps", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&set.stderr);
    assert_eq!(set.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("applied live: camera cam1 updated (detect_fps changed)"),
        "{stderr}"
    );
}
