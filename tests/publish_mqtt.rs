//! The MQTT publisher against a real mosquitto: the topics and payloads of the contract (every
//! received message validated against its JSON Schema), the drop policies, reconnection, the
//! clean shutdown and the last will.
//!
//! Each test starts its own broker on a free port. The publisher runs on a tokio runtime owned by
//! the test; the test thread itself is not async, so it can block on the subscriber and feed
//! results with `blocking_send`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::mosquitto::{BrokerOptions, Message, Mosquitto, Subscriber, TlsFiles, validate};
use common::publisher::{MODEL, Running, publisher_config};
use serde_json::{Value, json};
use watchpost::config::{MqttScheme, Qos, Secret};
use watchpost::detect::Object;
use watchpost::framepath::AnalysedFrame;
use watchpost::health::{CameraState, DropReason};
use watchpost::ingest::CaptureClock;
use watchpost::publish::PublisherConfig;

const WAIT: Duration = Duration::from_secs(15);
const STATUS: &str = "watchpost/north/box-1/status";
const HEALTH: &str = "watchpost/north/box-1/health";

fn detections_topic(camera: &str) -> String {
    format!("watchpost/north/box-1/{camera}/detections")
}

fn config(port: u16, health_interval: Duration) -> PublisherConfig {
    PublisherConfig {
        health_interval,
        ..publisher_config(&format!("mqtt://127.0.0.1:{port}"), "box-1")
    }
}

fn person() -> Object {
    Object {
        class: "person",
        label: "person".to_owned(),
        score: 0.812,
        bbox: [0.6159, 0.3486, 0.0611, 0.2909],
    }
}

fn car() -> Object {
    Object {
        class: "vehicle",
        label: "car".to_owned(),
        score: 0.5,
        bbox: [0.0, 0.75, 0.25, 0.25],
    }
}

/// A result for `camera` that arrived 20 ms ago and was captured 50 ms ago (to the ms).
fn frame(camera: usize, seq: u64, objects: Vec<Object>) -> AnalysedFrame {
    let ms = (SystemTime::now() - Duration::from_millis(50))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    AnalysedFrame {
        camera,
        seq,
        captured_at: UNIX_EPOCH + Duration::from_millis(ms),
        clock: CaptureClock::Camera,
        arrived: Instant::now() - Duration::from_millis(20),
        width: 1280,
        height: 720,
        objects,
        track_ids: Vec::new(),
        inference: Duration::from_millis(45),
    }
}

fn is_status(state: &'static str) -> impl Fn(&Message) -> bool {
    move |m| m.topic == STATUS && m.json()["state"] == state
}

fn is_detection(camera: &'static str, seq: u64) -> impl Fn(&Message) -> bool {
    move |m| m.topic == detections_topic(camera) && m.json()["seq"] == seq
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis()
}

#[test]
fn status_detections_and_health_follow_the_contract() {
    let broker = Mosquitto::start();
    let sub = Subscriber::connect(broker.port(), "watchpost/#");
    let config = config(broker.port(), Duration::from_secs(1));
    let started_at = config.started_at;
    let running = Running::start(config, &["gate", "yard"]);
    let (gate, yard) = (
        Arc::clone(&running.cameras[0]),
        Arc::clone(&running.cameras[1]),
    );
    gate.set_state(CameraState::Streaming);

    // status: online, with both cameras.
    let online = sub
        .wait_for(is_status("online"), WAIT)
        .expect("status online");
    let status = online.json();
    validate("status", &status).unwrap();
    assert_eq!(status["schema"], "watchpost.status/1");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        humantime::parse_rfc3339(status["started_at"].as_str().unwrap())
            .map(millis)
            .unwrap(),
        millis(started_at)
    );
    // Either state of gate, depending on whether the first status raced set_state.
    assert_eq!(
        status["cameras"][1],
        json!({"name": "yard", "state": "connecting"})
    );
    assert_eq!(status["cameras"].as_array().unwrap().len(), 2);

    // A camera state change publishes status again (checked every second).
    let mark = sub.len();
    yard.set_state(CameraState::Retrying);
    let changed = sub
        .wait_for_from(
            mark,
            |m| m.topic == STATUS && m.json()["cameras"][1]["state"] == "retrying",
            WAIT,
        )
        .expect("status after a camera state change");
    assert_eq!(
        changed.json()["cameras"][0],
        json!({"name": "gate", "state": "streaming"})
    );

    // Counters for health.
    for _ in 0..10 {
        gate.count_frame_in(SystemTime::now());
    }
    for _ in 0..4 {
        gate.count_analysed(Duration::from_millis(45));
    }
    gate.count_drop(DropReason::Busy);
    gate.count_drop(DropReason::RateLimit);
    gate.count_drop(DropReason::RateLimit);

    // Detections: frames with objects are published, frames without are not.
    let with_objects = frame(0, 1, vec![person(), car()]);
    let captured_at = with_objects.captured_at;
    running.feed(with_objects);
    running.feed(frame(0, 2, Vec::new()));
    running.feed(frame(1, 3, vec![person()]));
    let first = sub
        .wait_for(is_detection("gate", 1), WAIT)
        .expect("gate seq 1");
    let third = sub
        .wait_for(is_detection("yard", 3), WAIT)
        .expect("yard seq 3");
    let detection = first.json();
    validate("detections", &detection).unwrap();
    validate("detections", &third.json()).unwrap();
    assert!(!first.retain);
    assert_eq!(detection["schema"], "watchpost.detections/1");
    assert_eq!(detection["camera"], "gate");
    assert_eq!(detection["clock"], "camera");
    assert_eq!(detection["model"], MODEL);
    assert_eq!(detection["frame"], json!({"width": 1280, "height": 720}));
    assert_eq!(
        detection["objects"],
        // Exactly as detect::Object serialises (f32 written in their shortest form).
        serde_json::from_str::<Value>(&serde_json::to_string(&[person(), car()]).unwrap()).unwrap()
    );
    assert_eq!(
        humantime::parse_rfc3339(detection["captured_at"].as_str().unwrap()).unwrap(),
        captured_at,
        "captured_at round-trips"
    );
    let published_at =
        humantime::parse_rfc3339(detection["published_at"].as_str().unwrap()).unwrap();
    assert!(published_at >= captured_at, "{detection}");
    let latency_ms = detection["latency_ms"].as_f64().unwrap();
    assert!(
        (20.0..2_000.0).contains(&latency_ms),
        "latency_ms {latency_ms}"
    );
    assert_eq!(third.json()["camera"], "yard");
    assert_eq!(
        gate.latency_ms.snapshot().count(),
        1,
        "latency recorded per published message"
    );
    assert_eq!(yard.latency_ms.snapshot().count(), 1);

    // Health, every second: wait for one that saw the drops, then one more.
    let seen_drops = sub
        .wait_for(
            |m| m.topic == HEALTH && m.json()["cameras"][0]["drops_total"]["busy"] == 1,
            WAIT,
        )
        .expect("health with the drops");
    sub.wait_for_from(seen_drops.index + 1, |m| m.topic == HEALTH, WAIT)
        .expect("a second health message");
    let health_messages: Vec<Value> = sub
        .messages()
        .iter()
        .filter(|m| m.topic == HEALTH)
        .map(Message::json)
        .collect();
    let latest = health_messages.last().unwrap();
    assert_eq!(latest["schema"], "watchpost.health/1");
    assert_eq!(
        latest["broker"],
        json!({"connected": true, "reconnects": 0})
    );
    assert!(latest["process"]["rss_bytes"].as_u64().unwrap() > 1_000_000);
    assert!(latest["uptime_s"].as_f64().unwrap() >= 1.0);
    let interval = latest["interval_s"].as_f64().unwrap();
    assert!((0.5..3.0).contains(&interval), "interval_s {interval}");
    let gate_health = &latest["cameras"][0];
    assert_eq!(gate_health["name"], "gate");
    assert_eq!(gate_health["state"], "streaming");
    assert_eq!(gate_health["activity"], "active");
    assert_eq!(
        gate_health["drops_total"],
        json!({"rate_limit": 2, "busy": 1, "too_old": 0, "publish_queue_full": 0, "broker_down": 0, "idle": 0})
    );
    assert!(gate_health["last_frame_age_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(latest["cameras"][1]["last_frame_age_s"], Value::Null);
    assert_eq!(latest["cameras"][1]["state"], "retrying");
    // Interval figures add up to the totals: drops per interval, frames = fps × interval.
    let sum = |f: &dyn Fn(&Value) -> f64| health_messages.iter().map(f).sum::<f64>();
    let busy = sum(&|h| h["cameras"][0]["drops"]["busy"].as_f64().unwrap());
    let rate_limit = sum(&|h| h["cameras"][0]["drops"]["rate_limit"].as_f64().unwrap());
    assert_eq!((busy, rate_limit), (1.0, 2.0));
    let frames_in =
        sum(&|h| h["cameras"][0]["fps_in"].as_f64().unwrap() * h["interval_s"].as_f64().unwrap());
    let analysed = sum(&|h| {
        h["cameras"][0]["fps_analysed"].as_f64().unwrap() * h["interval_s"].as_f64().unwrap()
    });
    assert!((frames_in - 10.0).abs() < 0.2, "frames in {frames_in}");
    assert!((analysed - 4.0).abs() < 0.1, "analysed {analysed}");
    assert!(
        health_messages
            .iter()
            .any(|h| h["cameras"][0]["inference_ms"]["p50"] == 45.0),
        "inference_ms p50 over an interval"
    );
    assert!(
        health_messages
            .iter()
            .any(|h| h["cameras"][0]["latency_ms"]["p99"].is_number()),
        "latency_ms over an interval"
    );

    // The retained status is there for a newcomer.
    let late = Subscriber::connect(broker.port(), STATUS);
    let retained = late
        .wait_for(|m| m.topic == STATUS, WAIT)
        .expect("retained status");
    assert!(retained.retain);
    assert_eq!(retained.json()["state"], "online");

    let report = running.stop();
    assert_eq!(report.detections_published, 2);
    assert_eq!(report.detections_dropped, 0);
    assert!(report.health_published >= 2, "{report:?}");
    assert!(report.offline_acked, "{report:?}");

    // Never a detection for the frame without objects.
    assert!(sub.messages().iter().all(|m| !is_detection("gate", 2)(m)));
    assert!(sub.validate_all() >= 6);
    assert_eq!(sub.overflow(), 0);
}

#[test]
fn cancellation_publishes_offline_retained_then_disconnects() {
    let broker = Mosquitto::start();
    let sub = Subscriber::connect(broker.port(), "watchpost/#");
    let running = Running::start(config(broker.port(), Duration::from_secs(60)), &["gate"]);
    running.cameras[0].set_state(CameraState::Streaming);
    sub.wait_for(is_status("online"), WAIT).expect("online");

    let report = running.stop();
    assert!(report.offline_acked, "{report:?}");
    // The clean offline carries the cameras as they were; the will would say `stopped`.
    let json = assert_offline_retained(&sub, &broker, "streaming");

    // A clean DISCONNECT: the broker did not publish the will.
    std::thread::sleep(Duration::from_millis(500));
    let statuses: Vec<Value> = sub
        .messages()
        .iter()
        .filter(|m| m.topic == STATUS)
        .map(Message::json)
        .collect();
    assert_eq!(statuses.last().unwrap(), &json, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| s["cameras"][0]["state"] != "stopped"),
        "the last will was published: {statuses:?}"
    );
    let log = broker.log();
    assert!(log.contains("Client box-1 disconnected."), "{log}");
    sub.validate_all();
}

#[test]
fn broker_outage_drops_detections_then_recovers_without_restart() {
    let mut broker = Mosquitto::start();
    let sub = Subscriber::connect(broker.port(), "watchpost/#");
    let running = Running::start(config(broker.port(), Duration::from_secs(1)), &["gate"]);
    let gate = Arc::clone(&running.cameras[0]);
    gate.set_state(CameraState::Streaming);
    sub.wait_for(is_status("online"), WAIT).expect("online");
    running.feed(frame(0, 1, vec![person()]));
    sub.wait_for(is_detection("gate", 1), WAIT)
        .expect("seq 1 before the outage");

    broker.stop();
    let down = running.wait_broker(|s| !s.connected, WAIT);
    assert!(down.last_error.is_some(), "{down:?}");

    // Meanwhile: results are dropped and counted, not queued; the camera state changes.
    gate.set_state(CameraState::Retrying);
    for seq in 100..105 {
        running.feed(frame(0, seq, vec![person()]));
    }
    let deadline = Instant::now() + WAIT;
    while gate.snapshot().drops(DropReason::BrokerDown) < 5 {
        assert!(Instant::now() < deadline, "{:?}", gate.snapshot());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Reconnection attempts go on, each refused; a health tick passes and is skipped.
    let refused = running.wait_broker(
        |s| s.last_error.as_deref() == Some("connection refused"),
        WAIT,
    );
    assert!(!refused.connected);
    std::thread::sleep(Duration::from_millis(1200));

    let mark = sub.len();
    broker.start_again();
    let up = running.wait_broker(|s| s.connected, Duration::from_secs(45));
    assert_eq!((up.connections, up.reconnects), (2, 1), "{up:?}");
    assert!(sub.wait_subscriptions(2, WAIT), "the subscriber came back");

    // A fresh status (the camera state changed while the broker was away).
    let fresh = sub
        .wait_for_from(
            mark,
            |m| m.topic == STATUS && m.json()["cameras"][0]["state"] == "retrying",
            WAIT,
        )
        .expect("status online after the restart");
    assert_eq!(fresh.json()["state"], "online");
    running.feed(frame(0, 200, vec![car()]));
    sub.wait_for(is_detection("gate", 200), WAIT)
        .expect("seq 200 after the restart");
    let health = sub
        .wait_for_from(
            mark,
            |m| m.topic == HEALTH && m.json()["broker"]["reconnects"] == 1,
            WAIT,
        )
        .expect("health after the restart");
    assert_eq!(health.json()["broker"]["connected"], true);
    assert_eq!(health.json()["cameras"][0]["drops_total"]["broker_down"], 5);

    let report = running.stop();
    assert_eq!(gate.snapshot().drops(DropReason::BrokerDown), 5);
    assert_eq!(gate.snapshot().drops(DropReason::PublishQueueFull), 0);
    assert_eq!(report.detections_published, 2);
    assert_eq!(report.detections_dropped, 5);
    assert_eq!(report.broker_reconnects, 1);
    assert!(report.health_skipped >= 1, "{report:?}");
    assert!(report.offline_acked);
    // The dropped ones never arrive, not even late.
    let seqs: Vec<u64> = sub
        .messages()
        .iter()
        .filter(|m| m.topic == detections_topic("gate"))
        .map(|m| m.json()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 200]);
    sub.validate_all();
}

#[test]
fn a_full_request_queue_drops_without_blocking() {
    let mut broker = Mosquitto::start();
    let sub = Subscriber::connect(broker.port(), "watchpost/#");
    let mut config = config(broker.port(), Duration::from_secs(60));
    // QoS 1: with the broker paused nothing is acknowledged, so rumqttc's in-flight window
    // (100) fills, then its request queue: the rest must be dropped, not waited for.
    config.mqtt.detections_qos = Qos::AtLeastOnce;
    let running = Running::start_with_queue(config, &["gate"], 1000);
    let gate = Arc::clone(&running.cameras[0]);
    sub.wait_for(is_status("online"), WAIT).expect("online");

    broker.pause();
    let fed = 600;
    for seq in 0..fed {
        running.feed(frame(0, seq, vec![person()]));
    }
    // The publisher keeps draining results: every frame is either queued or dropped, soon.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let published = gate.latency_ms.snapshot().count();
        let dropped = gate.snapshot().drops(DropReason::PublishQueueFull);
        if published + dropped == fed {
            assert!(
                dropped >= fed - 100 - watchpost::publish::REQUEST_CAPACITY as u64 - 2,
                "published {published}, dropped {dropped}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "published {published}, dropped {dropped}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.resume();

    // Which frames got a place depends on how the two tasks interleaved; how many did does not:
    // every queued one arrives, once, in order.
    let published = gate.latency_ms.snapshot().count();
    let is_gate = |m: &Message| m.topic == detections_topic("gate");
    let arrived = sub.wait_count(is_gate, published as usize, WAIT);
    assert_eq!(
        arrived as u64, published,
        "the queued ones arrive after the pause"
    );
    let report = running.stop();
    assert_eq!(report.detections_published, published);
    assert_eq!(report.detections_dropped, fed - published);
    let received: Vec<u64> = sub
        .messages()
        .iter()
        .filter(|m| is_gate(m))
        .map(|m| m.json()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(received.len() as u64, published, "{received:?}");
    assert!(
        received.windows(2).all(|w| w[0] < w[1]) && received.iter().all(|&s| s < fed),
        "once each, in order: {received:?}"
    );
    sub.validate_all();
}

#[test]
fn detections_lost_with_the_connection_are_counted_as_broker_down() {
    let mut broker = Mosquitto::start();
    let mut config = config(broker.port(), Duration::from_secs(60));
    config.mqtt.detections_qos = Qos::AtLeastOnce;
    let running = Running::start_with_queue(config, &["gate"], 1000);
    let gate = Arc::clone(&running.cameras[0]);
    running.wait_broker(|s| s.connected, WAIT);

    // Paused: queued and in-flight detections pile up in the client, the rest is dropped.
    broker.pause();
    let fed = 300;
    for seq in 0..fed {
        running.feed(frame(0, seq, vec![person()]));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while gate.latency_ms.snapshot().count() + gate.snapshot().drops(DropReason::PublishQueueFull)
        < fed
    {
        assert!(Instant::now() < deadline, "{:?}", gate.snapshot());
        std::thread::sleep(Duration::from_millis(20));
    }
    let queued = gate.latency_ms.snapshot().count();
    assert!(queued > 0);

    // The broker dies: what the client still held is lost with the connection, and counted.
    broker.kill();
    running.wait_broker(|s| !s.connected, WAIT);
    let counters = gate.snapshot();
    assert_eq!(
        counters.drops(DropReason::BrokerDown),
        queued,
        "{counters:?}"
    );
    assert_eq!(
        counters.drops(DropReason::PublishQueueFull) + counters.drops(DropReason::BrokerDown),
        fed
    );

    // Nothing of it is sent after the broker is back.
    broker.start_again();
    let sub = Subscriber::connect(broker.port(), "watchpost/#");
    running.wait_broker(|s| s.connected, Duration::from_secs(45));
    sub.wait_for(is_status("online"), WAIT)
        .expect("online again");
    running.feed(frame(0, 1000, vec![car()]));
    sub.wait_for(is_detection("gate", 1000), WAIT)
        .expect("new detections after the restart");
    running.stop();
    let seqs: Vec<u64> = sub
        .messages()
        .iter()
        .filter(|m| m.topic == detections_topic("gate"))
        .map(|m| m.json()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1000]);
    sub.validate_all();
}

/// `offline` arrives, valid, with camera `gate` in `camera_state`, and a subscriber that comes
/// later gets it retained. Returns it.
fn assert_offline_retained(sub: &Subscriber, broker: &Mosquitto, camera_state: &str) -> Value {
    let offline = sub.wait_for(is_status("offline"), WAIT).expect("offline");
    let json = offline.json();
    validate("status", &json).unwrap();
    assert_eq!(
        json["cameras"],
        json!([{"name": "gate", "state": camera_state}])
    );
    let late = Subscriber::connect(broker.port(), STATUS);
    let retained = late
        .wait_for(|m| m.topic == STATUS, WAIT)
        .expect("retained");
    assert!(retained.retain);
    assert_eq!(retained.json(), json);
    json
}

/// The broker sees the TCP connection end without DISCONNECT and publishes the last will.
fn assert_last_will(sub: &Subscriber, broker: &Mosquitto) {
    assert_offline_retained(sub, broker, "stopped");
    sub.validate_all();
}

#[test]
fn last_will_when_the_runtime_dies() {
    let broker = Mosquitto::start();
    let sub = Subscriber::connect(broker.port(), "watchpost/#");
    let running = Running::start(config(broker.port(), Duration::from_secs(60)), &["gate"]);
    running.cameras[0].set_state(CameraState::Streaming);
    running.wait_broker(|s| s.connected, WAIT);
    sub.wait_for(is_status("online"), WAIT).expect("online");

    // As if the process died: every task dropped, sockets closed, no shutdown.
    let Running { runtime, .. } = running;
    drop(runtime);
    assert_last_will(&sub, &broker);
}

#[test]
fn last_will_when_the_publisher_task_is_aborted() {
    let broker = Mosquitto::start();
    let sub = Subscriber::connect(broker.port(), "watchpost/#");
    let running = Running::start(config(broker.port(), Duration::from_secs(60)), &["gate"]);
    running.wait_broker(|s| s.connected, WAIT);
    sub.wait_for(is_status("online"), WAIT).expect("online");

    // Aborting the publisher also stops its connection task (no orphaned connection).
    running.task.abort();
    running.wait_broker(|s| !s.connected, WAIT);
    assert_last_will(&sub, &broker);
}

#[test]
fn credentials_are_checked_and_never_reported() {
    let broker = Mosquitto::start_with(BrokerOptions {
        users: vec![("agent".to_owned(), "s3cret-pw".to_owned())],
        ..BrokerOptions::default()
    });
    let mut wrong = config(broker.port(), Duration::from_secs(60));
    wrong.mqtt.username = Some("agent".to_owned());
    wrong.mqtt.password = Some(Secret::new("wrong-pw"));
    let refused = Running::start(wrong, &["gate"]);
    let state = refused.wait_broker(|s| s.last_error.is_some(), WAIT);
    let error = state.last_error.unwrap();
    assert!(error.starts_with("refused by the broker"), "{error}");
    assert!(!error.contains("wrong-pw"), "{error}");
    assert!(!state.connected);
    let report = refused.stop();
    assert!(!report.offline_acked);

    let mut right = config(broker.port(), Duration::from_secs(60));
    right.mqtt.username = Some("agent".to_owned());
    right.mqtt.password = Some(Secret::new("s3cret-pw"));
    let running = Running::start(right, &["gate"]);
    running.wait_broker(|s| s.connected, WAIT);
    assert!(running.stop().offline_acked);
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl command.
fn make_certificates(dir: &Path) -> TlsFiles {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (package openssl, pulled in by ca-certificates)");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=watchpost test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

#[test]
fn mqtts_with_a_ca_file_and_refused_with_the_wrong_roots() {
    let certificates = tempfile::tempdir().unwrap();
    let tls = make_certificates(certificates.path());
    let broker = Mosquitto::start_with(BrokerOptions {
        tls: Some(tls.clone()),
        ..BrokerOptions::default()
    });
    assert!(broker.url().starts_with("mqtts://"));

    // The system roots do not know the test CA: a TLS error, retried, never connected.
    let mut untrusted = config(broker.port(), Duration::from_secs(60));
    untrusted.mqtt.urls[0].scheme = MqttScheme::Mqtts;
    let refused = Running::start(untrusted, &["gate"]);
    let state = refused.wait_broker(|s| s.last_error.is_some(), WAIT);
    let error = state.last_error.unwrap();
    assert!(error.starts_with("TLS"), "{error}");
    assert!(!state.connected);
    refused.stop();

    let mut trusted = config(broker.port(), Duration::from_secs(60));
    trusted.mqtt.urls[0].scheme = MqttScheme::Mqtts;
    trusted.mqtt.ca_file = Some(tls.ca.clone());
    let running = Running::start(trusted, &["gate"]);
    running.feed(frame(0, 1, vec![person()]));
    running.wait_broker(|s| s.connected, WAIT);
    running.feed(frame(0, 2, vec![person()]));
    let report = running.stop();
    assert!(
        report.offline_acked,
        "QoS 1 round trip over TLS: {report:?}"
    );
    assert!(
        broker.log().contains("New client connected"),
        "{}",
        broker.log()
    );
}
