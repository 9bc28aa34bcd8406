//! Remote commands end to end: the real `watchpost run` binary with `[commands]` on, a real
//! mosquitto, the in-process RTSP server and the bundled model; commands signed as the central
//! system signs them and published by a real MQTT client. Every result, audit record and
//! `config/state` received is validated against its JSON Schema.

mod common;

use std::time::{Duration, SystemTime};

use serde_json::Value;
use watchpost::command::{self, DeviceId, keys};
use watchpost::config::version::ConfigVersion;

use common::agent::{Agent, AgentSetup, SITE, clip_server, expect, topic};
use common::central::{Central, commands_table};
use common::mosquitto::{Message, Mosquitto, Subscriber};
use common::serial;

const WAIT: Duration = Duration::from_secs(20);

/// The result of command `id` among messages from `from` on.
#[track_caller]
fn result_of(central: &Subscriber, from: usize, id: &str, agent: &Agent) -> Value {
    let message = expect(
        central.wait_for_from(
            from,
            |m| m.topic == topic("cmd/result") && m.json()["id"] == id,
            WAIT,
        ),
        &format!("a result for command {id}"),
        agent,
    );
    message.json()
}

/// Sends `payload` and returns its result (by `id`).
#[track_caller]
fn send(central: &Subscriber, payload: &str, id: &str, agent: &Agent) -> Value {
    let from = central.len();
    central.publish(&topic("cmd"), payload, false);
    result_of(central, from, id, agent)
}

#[track_caller]
fn assert_refused(result: &Value, code: &str) {
    assert_eq!(result["status"], "refused", "{result}");
    assert_eq!(result["code"], code, "{result}");
}

fn is_state(m: &Message) -> bool {
    m.topic == topic("config/state")
}

#[test]
fn signed_commands_are_answered_audited_and_change_the_configuration() {
    let _serial = serial();
    let server = clip_server();
    let mut broker = Mosquitto::start();
    let keys_dir = tempfile::tempdir().unwrap();
    let trusted = keys::generate(keys_dir.path(), "central").unwrap();
    let untrusted = keys::generate(keys_dir.path(), "other").unwrap();
    let mut setup = AgentSetup::one_camera(server.url("cam0"));
    setup.tables = commands_table(&trusted.public, &["camera.enable"]);
    let central = Subscriber::connect(broker.port(), &topic("#"));
    let mut agent = Agent::start(&broker, &setup);
    let file = agent.config_path();
    let mut signer = Central::new(&trusted.private);

    // config/state, retained, names the file's version.
    let state = expect(
        central.wait_for(is_state, Duration::from_secs(60)),
        "config/state",
        &agent,
    );
    let late = Subscriber::connect(broker.port(), &topic("config/state"));
    expect(
        late.wait_for(|m| m.retain, WAIT),
        "config/state retained for a subscriber that arrives later",
        &agent,
    );
    let bytes = std::fs::read(&file).unwrap();
    let version = state.json()["version"].as_str().unwrap().to_owned();
    assert_eq!(
        version,
        format!("1-{}", ConfigVersion::checksum_of(&bytes)),
        "the first version of the file"
    );

    // ping
    let ping = signer.sign("ping-1", "ping", "{}");
    let result = send(&central, &ping, "ping-1", &agent);
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(result["result"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(result["result"]["config_version"], version.as_str());

    // Refusals, each with nothing changed.
    assert_refused(&send(&central, &ping, "ping-1", &agent), "replayed");
    let mut altered: Value = serde_json::from_str(&signer.sign("altered", "ping", "{}")).unwrap();
    altered["command"] = "config.get".into();
    assert_refused(
        &send(&central, &altered.to_string(), "altered", &agent),
        "bad_signature",
    );
    let elsewhere = DeviceId::parse(&format!("{SITE}/post-9")).unwrap();
    let wrong_device = signer.ping_for("wrong-device", &elsewhere);
    assert_refused(
        &send(&central, &wrong_device, "wrong-device", &agent),
        "bad_signature",
    );
    let stranger = Central::new(&untrusted.private).sign("stranger", "ping", "{}");
    assert_refused(
        &send(&central, &stranger, "stranger", &agent),
        "unknown_key",
    );
    let old = signer.ping_issued_at("expired", SystemTime::now() - Duration::from_secs(600));
    assert_refused(&send(&central, &old, "expired", &agent), "expired");
    let early = signer.ping_issued_at("early", SystemTime::now() + Duration::from_secs(600));
    assert_refused(&send(&central, &early, "early", &agent), "not_yet_valid");
    let unknown = signer.sign("unknown", "reboot", "{}");
    assert_refused(
        &send(&central, &unknown, "unknown", &agent),
        "unknown_command",
    );
    let disabled = signer.sign("disabled", "camera.enable", r#"{"camera":"cam0"}"#);
    assert_refused(&send(&central, &disabled, "disabled", &agent), "disabled");
    let no_camera = signer.sign("no-camera", "camera.disable", r#"{"camera":"yard"}"#);
    assert_refused(
        &send(&central, &no_camera, "no-camera", &agent),
        "unknown_camera",
    );
    central.publish(&topic("cmd"), "{not json", false);
    let malformed = expect(
        central.wait_for(
            |m| m.topic == topic("cmd/result") && m.json()["code"] == "malformed",
            WAIT,
        ),
        "a result for a message that is not JSON",
        &agent,
    );
    assert_eq!(malformed.json()["id"], Value::Null);
    central.publish(
        &topic("cmd"),
        vec![b' '; command::MAX_MESSAGE_BYTES + 1],
        false,
    );
    expect(
        central.wait_for(
            |m| m.topic == topic("cmd/result") && m.json()["code"] == "oversized",
            WAIT,
        ),
        "a result for an oversized message",
        &agent,
    );
    // config.get: the configuration, passwords never shown.
    let get = signer.sign("get", "config.get", "{}");
    let result = send(&central, &get, "get", &agent);
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(result["result"]["version"], version.as_str());
    assert!(
        result["result"]["toml"]
            .as_str()
            .unwrap()
            .contains("name = \"cam0\"")
    );

    // config.apply: stale, invalid (the loader's messages), then a real change.
    let stale = signer.sign(
        "stale",
        "config.apply",
        r#"{"set":{"cameras.cam0.detect_fps":2},"expected_version":"1-0000000000000000"}"#,
    );
    assert_refused(&send(&central, &stale, "stale", &agent), "stale_version");
    let invalid = signer.sign(
        "invalid",
        "config.apply",
        &format!(r#"{{"set":{{"cameras.cam0.detect_fps":0}},"expected_version":"{version}"}}"#),
    );
    let result = send(&central, &invalid, "invalid", &agent);
    assert_refused(&result, "invalid_config");
    let problems = result["result"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{result}");
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .contains("cameras[0].detect_fps: must be"),
        "{result}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bytes,
        "the file is untouched"
    );
    let nowhere = format!("mqtt://127.0.0.1:{}", common::mosquitto::free_port());
    let unreachable = signer.sign(
        "unreachable",
        "config.apply",
        &format!(r#"{{"set":{{"mqtt.url":"{nowhere}"}},"expected_version":"{version}"}}"#),
    );
    let result = send(&central, &unreachable, "unreachable", &agent);
    assert_eq!(result["status"], "failed", "{result}");
    assert!(
        result["reason"]
            .as_str()
            .unwrap()
            .contains("reaches no broker"),
        "{result}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "still untouched");
    let apply = signer.sign(
        "apply",
        "config.apply",
        &format!(
            r#"{{"set":{{"cameras.cam0.detect_fps":2,"health.interval_s":2}},"expected_version":"{version}"}}"#
        ),
    );
    let result = send(&central, &apply, "apply", &agent);
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(
        result["result"]["at_restart"],
        serde_json::json!(["[health] applied at next restart"]),
        "{result}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("detect_fps = 2"), "{text}");
    let new_version = format!("2-{}", ConfigVersion::checksum_of(text.as_bytes()));
    assert_eq!(
        result["result"]["version"],
        new_version.as_str(),
        "{result}"
    );
    assert_eq!(result["result"]["changes"][0], "cameras.cam0.detect_fps");
    let state = expect(
        central.wait_for(
            |m| is_state(m) && m.json()["version"] == new_version.as_str(),
            WAIT,
        ),
        "config/state with the new version",
        &agent,
    )
    .json();
    assert_eq!(
        state["at_restart"],
        serde_json::json!(["[health] applied at next restart"]),
        "{state}"
    );
    let in_force = state["toml"].as_str().unwrap();
    assert!(
        in_force.contains("detect_fps = 2") && in_force.contains("interval_s = 1"),
        "the cameras are in force, [health] is not yet: {in_force}"
    );
    let audit_log = std::fs::read_to_string(agent.state_dir().join("audit.log")).unwrap();
    assert!(
        audit_log.contains("\"command\":\"remote config.apply\"")
            && audit_log.contains("\"key\":\"cameras.cam0.detect_fps\""),
        "{audit_log}"
    );

    // status.publish: status again, now.
    let before = central.len();
    let status = signer.sign("status", "status.publish", "{}");
    assert_eq!(send(&central, &status, "status", &agent)["status"], "ok");
    expect(
        central.wait_for_from(before, |m| m.topic == topic("status"), WAIT),
        "status after status.publish",
        &agent,
    );

    // snapshot: the camera's next analysed frame as JPEG, on the topic the result names.
    let snapshot = signer.sign("snap-1", "snapshot", r#"{"camera":"cam0"}"#);
    let result = send(&central, &snapshot, "snap-1", &agent);
    assert_eq!(result["status"], "ok", "{result}");
    let jpeg_topic = topic("cam0/snapshots/snap-1");
    assert_eq!(result["result"]["topic"], jpeg_topic.as_str());
    let jpeg = expect(
        central.wait_for(|m| m.topic == jpeg_topic, WAIT),
        "the snapshot's JPEG",
        &agent,
    );
    assert!(jpeg.payload.starts_with(&[0xFF, 0xD8]), "a JPEG");

    // camera.disable: persisted, and the camera stops at once.
    let disable = signer.sign("disable", "camera.disable", r#"{"camera":"cam0"}"#);
    let result = send(&central, &disable, "disable", &agent);
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(
        result["result"]["live"][0], "camera cam0 removed",
        "{result}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("enabled = false"), "{text}");

    // Every message was audited, on MQTT and in the local log, with its key and counter.
    let results = central
        .messages()
        .into_iter()
        .filter(|m| m.topic == topic("cmd/result"))
        .count();
    // The audit record goes out just after the result.
    let audited = central.wait_count(|m| m.topic == topic("audit"), results, WAIT);
    assert_eq!(audited, results, "one audit record per message");
    let audit_log = std::fs::read_to_string(agent.state_dir().join("audit.log")).unwrap();
    assert_eq!(
        audit_log.matches("\"source\":\"remote-command\"").count(),
        audited,
        "{audit_log}"
    );

    // The subscription is renewed after the broker comes back (a clean session keeps none).
    // The broker keeps retained messages on disk, so only a live (unretained) config/state
    // says the agent is back.
    broker.stop();
    broker.start_again();
    let from = central.len();
    expect(
        central.wait_for_from(from, |m| is_state(m) && !m.retain, Duration::from_secs(60)),
        "config/state published by the agent after the broker came back",
        &agent,
    );
    let ping = signer.sign("ping-again", "ping", "{}");
    assert_eq!(send(&central, &ping, "ping-again", &agent)["status"], "ok");

    // A command left retained on the broker: taken once as it is published (the broker
    // forwards it live, unretained), then, when the agent subscribes again after a restart,
    // handed over retained: never acted on, not answered, audited.
    let retained = signer.sign("retained", "status.publish", "{}");
    let from = central.len();
    central.publish(&topic("cmd"), retained, true);
    assert_eq!(
        result_of(&central, from, "retained", &agent)["status"],
        "ok"
    );
    let from = central.len();
    agent.restart("info");
    expect(
        central.wait_for_from(
            from,
            |m| m.topic == topic("audit") && m.json()["code"] == "retained",
            Duration::from_secs(60),
        ),
        "an audit record for the retained command after the restart",
        &agent,
    );
    central.publish(&topic("cmd"), Vec::new(), true);

    // After a restart, a counter below the last accepted one is refused.
    let resent = signer.ping_with_counter("after-restart", 3);
    let result = send(&central, &resent, "after-restart", &agent);
    assert_refused(&result, "counter_behind");

    // What the agent published matches its schemas (what the test sent on `cmd` need not).
    assert!(central.validate_where(|m| m.topic != topic("cmd")) > 0);
}
