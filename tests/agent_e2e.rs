//! The agent end to end, as deployed: the real `watchpost run` binary against an in-process
//! RTSP server playing the sample clip and a real mosquitto, with a subscriber standing in for
//! the central system. Every message received is validated against its JSON Schema.
//!
//! The tests run one at a time (they share two cores and measure latency).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::agent::{Agent, AgentSetup, clip_server, expect, topic};
use common::mosquitto::{Message, Mosquitto, Subscriber};
use common::serial;

fn is_status(state: &'static str) -> impl Fn(&Message) -> bool {
    move |m| m.topic == topic("status") && m.json()["state"] == state
}

fn is_detection_with_person(camera: &'static str) -> impl Fn(&Message) -> bool {
    move |m| {
        m.topic == topic(&format!("{camera}/detections"))
            && m.json()["objects"]
                .as_array()
                .is_some_and(|o| o.iter().any(|o| o["class"] == "person"))
    }
}

/// A subscriber arriving now is handed the retained `status` at once, in state `state`.
#[track_caller]
fn assert_retained(broker: &Mosquitto, state: &'static str) {
    let late = Subscriber::connect(broker.port(), &topic("status"));
    let retained = late
        .wait_for(|m| m.retain, Duration::from_secs(5))
        .expect("a retained status for a subscriber that arrives later");
    assert_eq!(retained.json()["state"], state, "retained status");
}

fn detections(subscriber: &Subscriber, from: usize) -> Vec<serde_json::Value> {
    subscriber
        .messages()
        .into_iter()
        .filter(|m| m.index >= from && m.kind() == "detections")
        .map(|m| m.json())
        .collect()
}

fn parse_time(value: &serde_json::Value) -> SystemTime {
    humantime::parse_rfc3339(value.as_str().expect("a timestamp string")).expect("RFC 3339")
}

#[test]
fn publishes_detections_status_and_health_then_goes_offline_on_sigterm() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), "watchpost/#");
    let mut agent = Agent::start(&broker, &AgentSetup::one_camera(server.url("cam0")));

    let online = expect(
        central.wait_for(
            |m| is_status("online")(m) && m.json()["cameras"][0]["state"] == "streaming",
            Duration::from_secs(40),
        ),
        "status online with the camera streaming",
        &agent,
    );
    assert_retained(&broker, "online");
    let status = online.json();
    assert_eq!(status["cameras"][0]["name"], "cam0");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));

    let start = central.len();
    let mut n_with_persons = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    while n_with_persons < 10 && Instant::now() < deadline {
        n_with_persons = detections(&central, start)
            .iter()
            .filter(|d| {
                d["objects"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|o| o["class"] == "person")
            })
            .count();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        n_with_persons >= 10,
        "persons detected on the clip: {n_with_persons}\n{}",
        agent.log()
    );
    let health = expect(
        central.wait_for_from(
            start,
            |m| m.kind() == "health" && m.json()["cameras"][0]["fps_analysed"].as_f64() > Some(0.0),
            Duration::from_secs(15),
        ),
        "health with analysed frames",
        &agent,
    );
    let health = health.json();
    let fps_analysed = health["cameras"][0]["fps_analysed"].as_f64().unwrap();
    assert!(
        fps_analysed <= 5.0 * 1.3,
        "detect_fps = 5 caps the analysed rate: {health}"
    );

    let messages = detections(&central, start);
    let mut previous_seq = 0;
    // No model configured: the one `auto` takes on this CPU (int8 where it has dot-product
    // instructions).
    let (model, _) = watchpost::detect::auto_model(&watchpost::detect::CpuFeatures::detect());
    for d in &messages {
        assert_eq!(d["camera"], "cam0");
        assert_eq!(d["model"], model);
        assert_eq!(
            (d["frame"]["width"].as_u64(), d["frame"]["height"].as_u64()),
            (Some(640), Some(360))
        );
        let seq = d["seq"].as_u64().unwrap();
        assert!(
            seq > previous_seq,
            "seq increases: {seq} after {previous_seq}"
        );
        previous_seq = seq;
        let latency = d["latency_ms"].as_f64().unwrap();
        assert!((0.0..1500.0).contains(&latency), "plausible latency: {d}");
        let captured = parse_time(&d["captured_at"]);
        let age = SystemTime::now()
            .duration_since(captured)
            .unwrap_or_default();
        assert!(age < Duration::from_secs(60), "captured_at is recent: {d}");
        assert!(
            parse_time(&d["published_at"]) >= captured,
            "published after captured: {d}"
        );
    }

    let before_stop = central.len();
    agent.signal(libc::SIGTERM);
    let status = expect(
        agent.wait(Duration::from_secs(30)),
        "agent exits after SIGTERM",
        &agent,
    );
    assert!(status.success(), "clean exit: {status:?}\n{}", agent.log());
    let offline = expect(
        central.wait_for_from(before_stop, is_status("offline"), Duration::from_secs(10)),
        "status offline after a clean shutdown",
        &agent,
    );
    drop(offline);
    assert_retained(&broker, "offline");
    let checked = central.validate_all();
    assert!(checked > 20, "validated {checked} messages");
}

#[test]
fn last_will_marks_the_agent_offline_after_kill_9() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), "watchpost/#");
    let mut agent = Agent::start(&broker, &AgentSetup::one_camera(server.url("cam0")));
    expect(
        central.wait_for(is_status("online"), Duration::from_secs(40)),
        "online",
        &agent,
    );
    let before = central.len();
    agent.signal(libc::SIGKILL);
    agent.wait(Duration::from_secs(10));
    let offline = expect(
        central.wait_for_from(before, is_status("offline"), Duration::from_secs(20)),
        "the broker publishes the last will",
        &agent,
    );
    drop(offline);
    assert_retained(&broker, "offline");
    central.validate_all();
}

#[test]
fn camera_outage_reconnects_and_detections_resume() {
    let _serial = serial();
    let mut server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), "watchpost/#");
    let agent = Agent::start(&broker, &AgentSetup::one_camera(server.url("cam0")));
    expect(
        central.wait_for(is_detection_with_person("cam0"), Duration::from_secs(40)),
        "detections before the outage",
        &agent,
    );

    server.stop();
    let outage = central.len();
    expect(
        central.wait_for_from(
            outage,
            |m| m.kind() == "health" && m.json()["cameras"][0]["state"] != "streaming",
            Duration::from_secs(20),
        ),
        "health shows the camera not streaming during the outage",
        &agent,
    );
    std::thread::sleep(Duration::from_secs(2));
    server.start_again().expect("RTSP server back");
    let back = central.len();
    let started = Instant::now();
    expect(
        central.wait_for_from(
            back,
            is_detection_with_person("cam0"),
            Duration::from_secs(45),
        ),
        "detections resume after the camera returns",
        &agent,
    );
    eprintln!(
        "detections resumed {:?} after the camera returned",
        started.elapsed()
    );
    // A health report from after the detections resumed: one sent while the camera was still
    // reconnecting says `retrying`, rightly.
    let resumed = central.len();
    let health = expect(
        central.wait_for_from(
            resumed,
            |m| m.kind() == "health" && m.json()["cameras"][0]["reconnects"].as_u64() >= Some(1),
            Duration::from_secs(15),
        ),
        "reconnects counted",
        &agent,
    );
    assert_eq!(health.json()["cameras"][0]["state"], "streaming");
    central.validate_all();
}

#[test]
fn broker_outage_reconnects_and_the_frame_path_keeps_analysing() {
    let _serial = serial();
    let server = clip_server();
    let mut broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), "watchpost/#");
    let agent = Agent::start(&broker, &AgentSetup::one_camera(server.url("cam0")));
    expect(
        central.wait_for(is_detection_with_person("cam0"), Duration::from_secs(40)),
        "detections before the outage",
        &agent,
    );

    broker.stop();
    let down_for = Duration::from_secs(8);
    std::thread::sleep(down_for);
    let restarted = SystemTime::now();
    broker.start_again();
    assert!(
        central.wait_subscriptions(2, Duration::from_secs(20)),
        "the test's subscriber is back"
    );
    let back = central.len();
    let fresh = expect(
        central.wait_for_from(
            back,
            |m| {
                is_detection_with_person("cam0")(m)
                    && parse_time(&m.json()["published_at"]) > restarted
            },
            Duration::from_secs(40),
        ),
        "new detections after the broker returns, without restarting the agent",
        &agent,
    );
    drop(fresh);
    // While the broker was down the frame path kept analysing: those results could not be
    // published and were counted, not queued.
    let health = expect(
        central.wait_for_from(
            back,
            |m| {
                m.kind() == "health"
                    && m.json()["cameras"][0]["drops_total"]["broker_down"].as_u64() > Some(0)
            },
            Duration::from_secs(15),
        ),
        "health counts detections analysed while the broker was down",
        &agent,
    );
    let health = health.json();
    let dropped = health["cameras"][0]["drops_total"]["broker_down"]
        .as_u64()
        .unwrap();
    assert!(
        dropped as f64 >= down_for.as_secs_f64() * 5.0 * 0.3,
        "analysis went on at about detect_fps during the outage: {dropped} results dropped: {health}"
    );
    assert!(
        health["broker"]["reconnects"].as_u64() >= Some(1),
        "{health}"
    );
    central.validate_all();
}

#[test]
fn overload_skips_frames_and_keeps_latency_flat() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), "watchpost/#");
    // Four 30 fps cameras asking for every frame, one inference thread: about four times more
    // than the model can serve.
    let setup = AgentSetup {
        cameras: (0..4).map(|i| server.url(&format!("cam{i}"))).collect(),
        detect_fps: 30.0,
        inference_threads: 1,
        stall_timeout_s: 5,
        ..AgentSetup::one_camera(String::new())
    };
    let agent = Agent::start(&broker, &setup);
    expect(
        central.wait_for(is_detection_with_person("cam3"), Duration::from_secs(60)),
        "every camera analysed",
        &agent,
    );
    let start = central.len();
    std::thread::sleep(Duration::from_secs(24));
    let latencies: Vec<f64> = detections(&central, start)
        .iter()
        .map(|d| d["latency_ms"].as_f64().unwrap())
        .collect();
    assert!(
        latencies.len() > 40,
        "detections during the run: {}",
        latencies.len()
    );
    let third = latencies.len() / 3;
    let median = |values: &[f64]| {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (early, late) = (
        median(&latencies[..third]),
        median(&latencies[latencies.len() - third..]),
    );
    eprintln!(
        "overload: {} results, median latency {early:.0} ms early, {late:.0} ms late",
        latencies.len()
    );
    assert!(
        late <= early * 1.5 + 50.0,
        "latency does not grow: {early:.0} ms → {late:.0} ms"
    );
    let worst = latencies.iter().copied().fold(0.0, f64::max);
    assert!(
        worst < 2500.0,
        "frames older than max_frame_age are never analysed: worst {worst:.0} ms"
    );

    let health = expect(
        central.wait_for_from(start, |m| m.kind() == "health", Duration::from_secs(10)),
        "health",
        &agent,
    )
    .json();
    let cameras = health["cameras"].as_array().unwrap();
    let busy: u64 = cameras
        .iter()
        .map(|c| c["drops_total"]["busy"].as_u64().unwrap())
        .sum();
    assert!(
        busy > 0,
        "frames skipped because the model is busy are counted: {health}"
    );
    for camera in cameras {
        assert!(
            camera["fps_analysed"].as_f64() > Some(0.5),
            "no camera starves: {health}"
        );
    }
    central.validate_all();
}

#[test]
fn demo_runs_alone_and_shows_detections() {
    let _serial = serial();
    let output = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args([
            "demo",
            "--seconds",
            "25",
            "--mqtt-port",
            "0",
            "--rtsp-port",
            "0",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run watchpost demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo exits cleanly\n{stdout}\n{stderr}"
    );
    let lines_with_persons = stdout
        .lines()
        .filter(|l| l.contains("demo-cam-1"))
        .filter(|l| {
            l.split("persons")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n > 0)
        })
        .count();
    assert!(
        lines_with_persons >= 5,
        "per-second lines with persons:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("latency"), "{stdout}");
}

#[test]
fn a_decoder_this_box_does_not_have_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchpost.toml");
    std::fs::write(
        &config,
        "[device]\nsite = \"s\"\nid = \"d\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n\
         [[cameras]]\nname = \"gate\"\nurl = \"rtsp://127.0.0.1:1/x\"\ndecoder = \"nvv4l2\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["run", "--log", "off", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("gate") && stderr.contains("nvv4l2"),
        "{stderr}"
    );
}

#[test]
fn a_line_across_the_street_gives_crossings_both_ways_with_snapshots() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), "watchpost/#");
    // A vertical line down the street, left of the middle where people cross both ways in
    // every loop of the clip (the footage is shot from a moving cable car, so people near the
    // sides drift outwards). Looking from its first point (top) to its last (bottom), its left
    // side is the screen's right: crossing from there to the screen's left is the first
    // direction.
    let setup = AgentSetup {
        detect_fps: 10.0,
        camera_extra: r#"
[[cameras.lines]]
name = "middle"
points = [[0.45, 0.3], [0.45, 0.99]]
direction_names = ["to_left", "to_right"]
classes = ["person"]
"#
        .to_owned(),
        ..AgentSetup::one_camera(server.url("cam0"))
    };
    let agent = Agent::start(&broker, &setup);
    let is_crossing = |direction: &'static str| {
        move |m: &Message| {
            m.topic == topic("cam0/events")
                && m.json()["type"] == "line_cross"
                && m.json()["direction"] == direction
        }
    };
    // People cross both ways within one 14 s loop of the clip; allow three.
    expect(
        central.wait_for(is_crossing("to_left"), Duration::from_secs(60)),
        "a crossing to the left",
        &agent,
    );
    expect(
        central.wait_for(is_crossing("to_right"), Duration::from_secs(60)),
        "a crossing to the right",
        &agent,
    );
    std::thread::sleep(Duration::from_secs(2)); // let the last snapshots arrive

    let messages = central.messages();
    let events: Vec<serde_json::Value> = messages
        .iter()
        .filter(|m| m.topic == topic("cam0/events"))
        .map(|m| m.json())
        .collect();
    // seq: +1 for every event, in order.
    for pair in events.windows(2) {
        assert_eq!(
            pair[1]["seq"].as_u64().unwrap(),
            pair[0]["seq"].as_u64().unwrap() + 1,
            "seq continuity: {pair:?}"
        );
    }
    assert!(
        events.iter().any(|e| e["type"] == "track_start"),
        "tracks are announced"
    );

    let crossings: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "line_cross")
        .collect();
    let mut last_direction: std::collections::HashMap<u64, String> = Default::default();
    for crossing in &crossings {
        assert_eq!(crossing["line"], "middle");
        assert_eq!(crossing["class"], "person", "class filter");
        let track = crossing["track_id"].as_u64().unwrap();
        let direction = crossing["direction"].as_str().unwrap().to_owned();
        if let Some(previous) = last_direction.insert(track, direction.clone()) {
            assert_ne!(
                previous, direction,
                "track {track} crossed {direction} twice without crossing back"
            );
        }
        // The snapshot was published and shows the person's box.
        let topic_name = crossing["snapshot"].as_str().expect("a snapshot topic");
        let snapshot = messages
            .iter()
            .find(|m| m.topic == topic_name)
            .expect("the snapshot message");
        let picture = watchpost::imaging::decode_image(&snapshot.payload).expect("a JPEG");
        // To look at them: WATCHPOST_TEST_SNAPSHOTS=/some/dir cargo test --release --test agent_e2e a_line
        if let Some(dir) = std::env::var_os("WATCHPOST_TEST_SNAPSHOTS") {
            let name = format!("{}.jpg", crossing["event_id"].as_str().unwrap());
            std::fs::write(std::path::Path::new(&dir).join(name), &snapshot.payload).unwrap();
        }
        assert_eq!((picture.width, picture.height), (640, 360));
        let bbox: Vec<f64> = crossing["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let x = ((bbox[0] + bbox[2] / 2.0) * 640.0) as usize;
        let bottom = (((bbox[1] + bbox[3]) * 360.0) as usize).min(359);
        let green = (bottom.saturating_sub(3)..=bottom).any(|y| {
            let p = picture.pixel(x.min(639), y).unwrap();
            p[1] > 150 && p[0] < 140 && p[2] < 140
        });
        assert!(
            green,
            "the person's box is drawn on the snapshot of {crossing}"
        );
    }
    eprintln!("{} events, {} crossings", events.len(), crossings.len());
    central.validate_all();
}

#[test]
fn a_still_scene_idles_with_its_tracks_kept_and_motion_wakes_it_within_a_frame_interval() {
    let _serial = serial();
    // A frozen picture with about twenty people standing in it: nothing moves.
    let server = clip_server();
    server.set_frozen(true);
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), "watchpost/#");
    let setup = AgentSetup {
        camera_extra: "idle_fps = 0.5\n".to_owned(),
        ..AgentSetup::one_camera(server.url("cam0"))
    };
    let agent = Agent::start(&broker, &setup);
    let is_idle =
        |m: &Message| m.kind() == "health" && m.json()["cameras"][0]["activity"] == "idle";
    let idle = expect(
        central.wait_for(is_idle, Duration::from_secs(40)),
        "the still camera idles",
        &agent,
    );
    let track_ids = |d: &serde_json::Value| -> Vec<u64> {
        d["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o["track_id"].as_u64())
            .collect()
    };
    let before: std::collections::BTreeSet<u64> = detections(&central, 0)
        .iter()
        .flat_map(&track_ids)
        .collect();
    assert!(before.len() >= 5, "people standing get tracks: {before:?}");

    // Eight seconds of stillness: about one analysed frame every two seconds.
    let from = central.len();
    std::thread::sleep(Duration::from_secs(8));
    let still = detections(&central, from);
    assert!(
        (2..=6).contains(&still.len()),
        "{} frames analysed in 8 s at idle_fps 0.5 (5 fps would be 40)\n{}",
        still.len(),
        agent.log()
    );
    let during: std::collections::BTreeSet<u64> = still.iter().flat_map(&track_ids).collect();
    assert!(
        !during.is_empty() && during.is_subset(&before),
        "the same tracks, kept while idle: {during:?} of {before:?}"
    );
    let ended: Vec<serde_json::Value> = central
        .messages()
        .into_iter()
        .filter(|m| m.index >= idle.index && m.kind() == "events")
        .map(|m| m.json())
        .filter(|e| e["type"] == "track_end")
        .collect();
    assert!(ended.is_empty(), "no track ends while idle: {ended:?}");
    let health = expect(
        central.wait_for_from(
            central.len(),
            |m| m.kind() == "health",
            Duration::from_secs(5),
        ),
        "health",
        &agent,
    )
    .json();
    assert!(
        health["cameras"][0]["drops_total"]["idle"].as_u64() > Some(100),
        "frames skipped as idle are counted: {health}"
    );

    // The scene moves (the clip plays on): the frame that shows it is analysed within one
    // detect_fps interval (200 ms), and the camera is back at 5 fps.
    let moved_at = SystemTime::now();
    let from = central.len();
    server.set_frozen(false);
    let first = expect(
        central.wait_for_from(
            from,
            |m| m.kind() == "detections" && parse_time(&m.json()["captured_at"]) >= moved_at,
            Duration::from_secs(5),
        ),
        "a detection after the scene moved",
        &agent,
    )
    .json();
    assert_eq!(
        first["clock"], "camera",
        "capture times from the camera's clock"
    );
    let reaction = parse_time(&first["captured_at"])
        .duration_since(moved_at)
        .unwrap_or_default();
    eprintln!("first frame analysed {reaction:?} after the scene moved");
    // One interval, plus the four frames (133 ms) the server had queued before the change.
    assert!(
        reaction <= Duration::from_millis(200 + 133 + 50),
        "the first frame after motion was analysed {reaction:?} after it"
    );
    std::thread::sleep(Duration::from_secs(3));
    let active = detections(&central, from).len();
    assert!(
        active >= 12,
        "back at detect_fps: {active} frames analysed in about 3 s"
    );
    central.validate_all();
}
