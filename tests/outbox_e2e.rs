//! The event outbox end to end: the real `watchpost run` binary, the in-process RTSP server
//! playing the street clip, and a real mosquitto that the tests stop, restart and starve, with
//! a persistent subscriber standing in for the central system (it misses nothing the broker
//! accepted, even across a broker restart).
//!
//! Events here are mostly `track_start` / `track_end` (every person walking through the picture)
//! plus line crossings with snapshots; the clip loops, so events keep coming.
//!
//! The tests run one at a time (they share two cores).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime};

use common::agent::{Agent, AgentSetup, clip_server, expect, topic};
use common::mosquitto::{Message, Mosquitto, Subscriber};
use common::serial;
use common::tmpfs::Mount;
use watchpost::demo::clip_server::ClipServer;

/// A line down the street (people cross it both ways in every loop of the clip), so some
/// events carry snapshots.
const LINE: &str = r#"
[[cameras.lines]]
name = "middle"
points = [[0.45, 0.3], [0.45, 0.99]]
direction_names = ["to_left", "to_right"]
classes = ["person"]
"#;

fn setup(url: String, tables: &str) -> AgentSetup {
    AgentSetup {
        detect_fps: 10.0,
        camera_extra: LINE.to_owned(),
        tables: tables.to_owned(),
        ..AgentSetup::one_camera(url)
    }
}

fn events(messages: &[Message]) -> Vec<(usize, serde_json::Value)> {
    messages
        .iter()
        .filter(|m| m.topic == topic("cam0/events"))
        .map(|m| (m.index, m.json()))
        .collect()
}

fn seq(event: &serde_json::Value) -> u64 {
    event["seq"].as_u64().expect("seq")
}

fn at(event: &serde_json::Value) -> SystemTime {
    humantime::parse_rfc3339(event["at"].as_str().expect("at")).expect("RFC 3339")
}

/// Checks the outbox's promises on what the central system received: every seq from 1 to the
/// highest, except those an `events_dropped` announcement names; first deliveries in seq
/// order (duplicates after a crash are allowed: same event_id, same content); each snapshot
/// before its event. Returns the distinct events, by seq.
#[track_caller]
fn check_delivery(messages: &[Message]) -> HashMap<u64, serde_json::Value> {
    let mut by_seq: HashMap<u64, serde_json::Value> = HashMap::new();
    let mut first_order = Vec::new();
    let mut announced_gaps = BTreeSet::new();
    for (index, event) in events(messages) {
        let n = seq(&event);
        if let Some(earlier) = by_seq.get(&n) {
            assert_eq!(
                earlier["event_id"], event["event_id"],
                "a duplicate of seq {n} is the same event"
            );
            assert_eq!(earlier, &event, "a duplicate carries the same content");
            continue;
        }
        first_order.push(n);
        if event["type"] == "events_dropped"
            && let (Some(first), Some(last)) = (
                event["dropped"]["first_seq"].as_u64(),
                event["dropped"]["last_seq"].as_u64(),
            )
        {
            announced_gaps.extend(first..=last);
        }
        if let Some(snapshot) = event["snapshot"].as_str() {
            let picture = messages
                .iter()
                .find(|m| m.topic == snapshot)
                .unwrap_or_else(|| panic!("the snapshot of seq {n} arrived"));
            assert!(picture.index < index, "the snapshot of seq {n} comes first");
        }
        by_seq.insert(n, event);
    }
    let mut sorted = first_order.clone();
    sorted.sort_unstable();
    assert_eq!(first_order, sorted, "first deliveries in seq order");
    let highest = sorted.last().copied().unwrap_or(0);
    let missing = missing_seqs(&by_seq, &announced_gaps);
    assert!(
        missing.is_empty(),
        "seqs missing without an announcement: {missing:?} (highest {highest})"
    );
    by_seq
}

/// The seqs below the highest received that neither arrived nor were announced as dropped.
fn missing_seqs(by_seq: &HashMap<u64, serde_json::Value>, announced: &BTreeSet<u64>) -> Vec<u64> {
    let highest = by_seq.keys().max().copied().unwrap_or(0);
    (1..=highest)
        .filter(|n| !by_seq.contains_key(n) && !announced.contains(n))
        .collect()
}

/// [`missing_seqs`] of what `messages` hold, without [`check_delivery`]'s other checks.
fn gaps(messages: &[Message]) -> Vec<u64> {
    let mut by_seq = HashMap::new();
    let mut announced = BTreeSet::new();
    for (_, event) in events(messages) {
        if event["type"] == "events_dropped"
            && let (Some(first), Some(last)) = (
                event["dropped"]["first_seq"].as_u64(),
                event["dropped"]["last_seq"].as_u64(),
            )
        {
            announced.extend(first..=last);
        }
        by_seq.insert(seq(&event), event);
    }
    missing_seqs(&by_seq, &announced)
}

fn wait_for_event_count(central: &Subscriber, at_least: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if events(&central.messages()).len() >= at_least {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Waits (up to 60 s: the agent's reconnection backoff reaches 30 s during a long outage) until
/// the agent is connected again and its outbox is empty, as its `health` says.
#[track_caller]
fn wait_until_drained(central: &Subscriber, agent: &Agent) {
    let from = central.len();
    expect(
        central.wait_for_from(
            from,
            |m| m.topic == topic("health") && m.json()["outbox"]["pending"] == 0,
            Duration::from_secs(60),
        ),
        "the agent reconnects and empties its outbox",
        agent,
    );
}

/// The first detection of cam0 after the first `from` messages, within `timeout`: detection
/// goes on whatever happens to the outbox.
fn detection_after(central: &Subscriber, from: usize, timeout: Duration) -> Option<Message> {
    central.wait_for_from(from, |m| m.topic == topic("cam0/detections"), timeout)
}

fn highest_seq(messages: &[Message]) -> u64 {
    events(messages)
        .iter()
        .map(|(_, e)| seq(e))
        .max()
        .unwrap_or(0)
}

/// What every outage test starts from: the clip server, a broker, the central system's
/// persistent subscriber, and an agent (with `tables`) whose first event has arrived.
struct Scene {
    /// The agent's camera: bind it (`_server`, not `..`) or it stops at once.
    _server: ClipServer,
    broker: Mosquitto,
    central: Subscriber,
    agent: Agent,
}

impl Scene {
    fn start(tables: &str) -> Scene {
        let server = clip_server();
        let broker = Mosquitto::start();
        let central = Subscriber::connect_persistent(broker.port(), &topic("#"));
        let agent = Agent::start(&broker, &setup(server.url("cam0"), tables));
        expect(
            wait_for_event_count(&central, 1, Duration::from_secs(60)).then_some(()),
            "a first event",
            &agent,
        );
        Scene {
            _server: server,
            broker,
            central,
            agent,
        }
    }
}

#[test]
fn broker_down_30_s_then_every_seq_arrives_in_order() {
    let _serial = serial();
    let Scene {
        mut broker,
        central,
        mut agent,
        _server,
    } = Scene::start("");

    broker.stop();
    let down = SystemTime::now();
    std::thread::sleep(Duration::from_secs(30));
    let up = SystemTime::now();
    broker.start_again();

    // Everything produced during the outage arrives, then the agent stops cleanly.
    wait_until_drained(&central, &agent);
    agent.signal(libc::SIGTERM);
    let status = agent.wait(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit\n{}",
        agent.log()
    );
    std::thread::sleep(Duration::from_secs(1));

    let messages = central.messages();
    let by_seq = check_delivery(&messages);
    let during: Vec<u64> = by_seq
        .values()
        .filter(|e| (down..up).contains(&at(e)))
        .map(seq)
        .collect();
    assert!(
        during.len() >= 3,
        "events decided during the outage were delivered after it ({during:?})\n{}",
        agent.log()
    );
    assert!(
        !by_seq.values().any(|e| e["type"] == "events_dropped"),
        "nothing dropped within the default bounds"
    );
    eprintln!(
        "{} events, {} decided during the 30 s outage, highest seq {}",
        by_seq.len(),
        during.len(),
        highest_seq(&messages)
    );
    central.validate_all();
}

#[test]
fn kill_9_during_the_outage_then_restart_loses_no_seq() {
    let _serial = serial();
    let Scene {
        mut broker,
        central,
        mut agent,
        _server,
    } = Scene::start("");

    broker.stop();
    let down = SystemTime::now();
    std::thread::sleep(Duration::from_secs(15));
    agent.signal(libc::SIGKILL);
    agent.wait(Duration::from_secs(10));
    let killed = SystemTime::now();
    // Restarted while the broker is still down: it keeps numbering where the log stopped.
    agent.restart("info");
    std::thread::sleep(Duration::from_secs(10));
    broker.start_again();
    wait_until_drained(&central, &agent);
    agent.signal(libc::SIGTERM);
    agent.wait(Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(1));

    let messages = central.messages();
    let by_seq = check_delivery(&messages);
    let before_kill = by_seq
        .values()
        .filter(|e| (down..killed).contains(&at(e)))
        .count();
    let after_restart = by_seq.values().filter(|e| at(e) > killed).count();
    assert!(
        before_kill >= 2 && after_restart >= 2,
        "events from before the kill ({before_kill}) and after the restart ({after_restart}) both arrived\n{}",
        agent.log()
    );
    let distinct_runs: BTreeSet<&str> = by_seq
        .values()
        .filter_map(|e| e["event_id"].as_str()?.split('-').next())
        .collect();
    assert_eq!(
        distinct_runs.len(),
        1,
        "one epoch for the camera across the restart: {distinct_runs:?}"
    );
    central.validate_all();
}

#[test]
fn an_outbox_over_its_bound_drops_the_oldest_counts_and_announces_it() {
    let _serial = serial();
    // Snapshots for every event (~30–60 KB each) fill a 1 MB outbox in well under a minute.
    let tables = r#"
[outbox]
max_size_mb = 1

[events]
snapshot_kinds = ["track_start", "track_end", "line_cross"]
snapshot_quality = 95
"#;
    let Scene {
        mut broker,
        central,
        mut agent,
        _server,
    } = Scene::start(tables);
    broker.stop();
    std::thread::sleep(Duration::from_secs(40));
    broker.start_again();

    let announcement = expect(
        central.wait_for(
            |m| {
                m.topic == topic("cam0/events")
                    && m.json()["type"] == "events_dropped"
                    && m.json()["dropped"]["reason"] == "full"
            },
            Duration::from_secs(30),
        ),
        "an events_dropped announcement",
        &agent,
    )
    .json();
    let dropped = &announcement["dropped"];
    let count = dropped["count"].as_u64().unwrap();
    let (first, last) = (
        dropped["first_seq"].as_u64().unwrap(),
        dropped["last_seq"].as_u64().unwrap(),
    );
    assert!(
        count >= 1 && first <= last && count <= last - first + 1,
        "{dropped}"
    );
    let health = expect(
        central.wait_for(
            |m| {
                m.topic == topic("health")
                    && m.json()["outbox"]["dropped"]["full"].as_u64() >= Some(count)
            },
            Duration::from_secs(10),
        ),
        "health counts the drops",
        &agent,
    )
    .json();
    assert!(health["outbox"]["ok"].as_bool().unwrap());
    assert!(
        agent.log().contains("outbox: events dropped"),
        "the drop is in the log\n{}",
        agent.log()
    );

    wait_until_drained(&central, &agent);
    agent.signal(libc::SIGTERM);
    agent.wait(Duration::from_secs(30));
    let messages = central.messages();
    let by_seq = check_delivery(&messages);
    // The oldest were dropped (a record the broker took just as it stopped may still have
    // arrived), and newer ones were delivered.
    let lost = (first..=last).filter(|n| !by_seq.contains_key(n)).count() as u64;
    assert!(
        lost >= 1 && lost <= count,
        "{lost} of the announced seqs {first}..={last} never arrived; {count} announced"
    );
    assert!(
        by_seq.keys().any(|&n| n > last),
        "newer events than the dropped ones arrived"
    );
    central.validate_all();
}

/// Starts an agent whose outbox lives on `mount_options` tmpfs, and checks that detection goes
/// on, the log says why events are not kept, and `health` counts them.
fn unwritable_outbox(mount_options: &str, expected_cause: &str) {
    let server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), &topic("#"));
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let _mount = Mount::tmpfs(&outbox, mount_options);
    let tables = format!(
        "[outbox]\ndir = \"{}\"\n\n[events]\nsnapshot_kinds = [\"track_start\", \"track_end\", \"line_cross\"]\n",
        outbox.display()
    );
    let mut agent = Agent::start(&broker, &setup(server.url("cam0"), &tables));
    let health = expect(
        central.wait_for(
            |m| {
                m.topic == topic("health")
                    && m.json()["outbox"]["dropped"]["write_failed"].as_u64() >= Some(1)
            },
            Duration::from_secs(90),
        ),
        "health counts events that could not be written",
        &agent,
    )
    .json();
    assert_eq!(health["outbox"]["ok"], false, "{health}");
    expect(
        detection_after(&central, central.len(), Duration::from_secs(10)),
        "detections keep coming",
        &agent,
    );
    agent.signal(libc::SIGTERM);
    let status = agent.wait(Duration::from_secs(30));
    let log = agent.log();
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit despite the disk\n{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("outbox") && l.contains("ERROR"))
        .unwrap_or_else(|| panic!("an outbox error in the log\n{log}"));
    assert!(
        line.contains(&outbox.display().to_string()) && line.contains(expected_cause),
        "the error names the place and the cause ({expected_cause}): {line}"
    );
    central.validate_all();
}

#[test]
fn a_read_only_outbox_gives_a_clear_error_and_detection_continues() {
    let _serial = serial();
    unwritable_outbox("ro,size=1m", "Read-only file system");
}

#[test]
fn a_full_disk_gives_a_clear_error_and_detection_continues() {
    let _serial = serial();
    // Room for the state file and less than one event with its snapshot (a full disk first
    // gives back the room of delivered events: one that holds a few would keep taking them).
    unwritable_outbox("size=16k", "No space left on device");
}

/// Fills the filesystem of `dir` with a file of its own until the disk refuses (ENOSPC);
/// returns the file.
fn fill_disk(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0x5au8; 64 << 10];
    loop {
        if let Err(e) = file.write_all(&block) {
            assert_eq!(
                e.raw_os_error(),
                Some(libc::ENOSPC),
                "filling {}: {e}",
                dir.display()
            );
            return path;
        }
    }
}

/// `(ok, error)` of a health message's outbox.
fn outbox_fault(health: &serde_json::Value) -> (bool, String) {
    let outbox = &health["outbox"];
    (
        outbox["ok"].as_bool().expect("outbox.ok"),
        outbox["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn a_disk_that_fills_while_running_refuses_events_then_takes_them_again() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), &topic("#"));
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let _mount = Mount::tmpfs(&outbox, "size=4m");
    // Every event carries a snapshot: none is small enough to slip into a page left over.
    let tables = format!(
        "[outbox]\ndir = \"{}\"\n\n[events]\nsnapshot_kinds = [\"track_start\", \"track_end\", \"line_cross\"]\n",
        outbox.display()
    );
    let mut agent = Agent::start(&broker, &setup(server.url("cam0"), &tables));
    expect(
        wait_for_event_count(&central, 1, Duration::from_secs(60)).then_some(()),
        "a first event, stored and delivered",
        &agent,
    );

    let filler = fill_disk(&outbox);
    let full = expect(
        central.wait_for_from(
            central.len(),
            |m| {
                m.topic == topic("health")
                    && m.json()["outbox"]["dropped"]["write_failed"].as_u64() >= Some(1)
                    && !outbox_fault(&m.json()).0
            },
            Duration::from_secs(60),
        ),
        "health counts the events the full disk refused",
        &agent,
    )
    .json();
    let (_, error) = outbox_fault(&full);
    assert!(
        error.contains(&outbox.display().to_string()) && error.contains("No space left on device"),
        "health says where and why: {error}"
    );
    expect(
        detection_after(&central, central.len(), Duration::from_secs(10)),
        "detections keep coming while the disk is full",
        &agent,
    );

    // Space comes back: storing resumes by itself, and what was refused is announced.
    std::fs::remove_file(&filler).unwrap();
    let freed_at = central.len();
    let announcement = expect(
        central.wait_for(
            |m| m.topic == topic("cam0/events") && m.json()["dropped"]["reason"] == "write_failed",
            Duration::from_secs(60),
        ),
        "an events_dropped announcement of the refused events",
        &agent,
    );
    expect(
        central.wait_for_from(
            freed_at.max(announcement.index + 1),
            |m| m.topic == topic("cam0/events") && m.json()["type"] != "events_dropped",
            Duration::from_secs(60),
        ),
        "events are stored and delivered again",
        &agent,
    );
    let healthy = expect(
        central.wait_for_from(
            central.len(),
            |m| m.topic == topic("health") && outbox_fault(&m.json()).0,
            Duration::from_secs(10),
        ),
        "health says the outbox is writable again",
        &agent,
    )
    .json();
    assert_eq!(healthy["outbox"].get("error"), None, "{healthy}");
    let count = announcement.json()["dropped"]["count"].as_u64().unwrap();
    let refused = healthy["outbox"]["dropped"]["write_failed"]
        .as_u64()
        .unwrap();
    assert!(
        count >= 1 && count <= refused,
        "the announcement counts refused events: {count} of {refused}"
    );
    eprintln!("disk full: {error}; {refused} events refused, {count} announced");

    agent.signal(libc::SIGTERM);
    let status = agent.wait(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit\n{}",
        agent.log()
    );
    // What was stored before the disk filled arrived, in order; nothing on the disk is damaged.
    std::thread::sleep(Duration::from_millis(500));
    check_delivery(&central.messages());
    central.validate_all();
    let options = watchpost::outbox::LogOptions::new(
        256 << 20,
        Duration::from_secs(3600),
        watchpost::outbox::WhenFull::DropOldest,
        watchpost::outbox::SyncPolicy::EveryRecord,
    );
    let (_, recovery) = watchpost::outbox::Log::open(&outbox, options).unwrap();
    assert!(
        recovery.repairs.is_empty() && recovery.state_damaged.is_none(),
        "{recovery:?}"
    );
}

#[test]
fn an_outbox_turned_read_only_while_running_is_a_clear_error_and_no_crash() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), &topic("#"));
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let disk = Mount::ext4(&outbox, &dir.path().join("disk.img"), 16);
    let port = common::mosquitto::free_port();
    let tables = format!(
        "[outbox]\ndir = \"{}\"\n\n[local]\nlisten = \"127.0.0.1:{port}\"\n",
        outbox.display()
    );
    let mut agent = Agent::start(&broker, &setup(server.url("cam0"), &tables));
    expect(
        wait_for_event_count(&central, 1, Duration::from_secs(60)).then_some(()),
        "a first event, stored and delivered",
        &agent,
    );

    // The kernel turns the filesystem read-only under the running agent, as on an I/O error.
    disk.fail_read_only();
    let is_read_only_error = |error: &str| {
        error.contains(&outbox.display().to_string()) && error.contains("Read-only file system")
    };
    let health = expect(
        central.wait_for_from(
            central.len(),
            |m| m.topic == topic("health") && !outbox_fault(&m.json()).0,
            Duration::from_secs(60),
        ),
        "health says the outbox is not writable",
        &agent,
    )
    .json();
    let (_, error) = outbox_fault(&health);
    assert!(
        is_read_only_error(&error),
        "health says where and why: {error}"
    );

    // `watchpost status` says the same, in its table and its JSON.
    let status = |format: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .args(["status", "--format", format, "--config"])
            .arg(agent.config_path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let json: serde_json::Value = serde_json::from_str(&status("json")).unwrap();
    assert_eq!(json["outbox"]["ok"], false, "{json}");
    let error = json["outbox"]["error"].as_str().unwrap_or_default();
    assert!(
        is_read_only_error(error),
        "status says where and why: {json}"
    );
    let text = status("text");
    let line = text
        .lines()
        .find(|l| l.starts_with("outbox "))
        .unwrap_or_else(|| panic!("an outbox line\n{text}"));
    assert!(
        line.contains("NOT writable") && is_read_only_error(line),
        "the status line says where and why: {line}"
    );
    expect(
        detection_after(&central, central.len(), Duration::from_secs(10)),
        "detections keep coming",
        &agent,
    );
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "still running\n{}",
        agent.log()
    );

    // Stopped and started again on the read-only disk (as systemd would): it runs, says why
    // the outbox is not writable, and detects.
    agent.signal(libc::SIGTERM);
    let status = agent.wait(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit despite the disk\n{}",
        agent.log()
    );
    let from = central.len();
    agent.restart("info");
    let health = expect(
        central.wait_for_from(
            from,
            |m| {
                m.topic == topic("health")
                    && !outbox_fault(&m.json()).0
                    && is_read_only_error(&outbox_fault(&m.json()).1)
            },
            Duration::from_secs(60),
        ),
        "after a restart on the read-only disk, health says why the outbox is not writable",
        &agent,
    )
    .json();
    expect(
        detection_after(&central, from, Duration::from_secs(30)),
        "detections after the restart",
        &agent,
    );
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "still running after the restart ({health})\n{}",
        agent.log()
    );
    central.validate_all();
}

#[test]
fn failover_to_the_second_endpoint_keeps_the_outbox_order() {
    let _serial = serial();
    let server = clip_server();
    // Two brokers standing in for two nodes of a cluster (a real cluster would also share the
    // subscriptions; here each has its own subscriber, and their streams are joined).
    let mut first = Mosquitto::start();
    let second = Mosquitto::start();
    let on_first = Subscriber::connect_persistent(first.port(), &topic("#"));
    let on_second = Subscriber::connect(second.port(), &topic("#"));
    let url = format!(r#"["{}", "{}"]"#, first.url(), second.url());
    let dir = tempfile::tempdir().unwrap();
    let text = setup(server.url("cam0"), "")
        .config_text("PLACEHOLDER", &dir.path().join("state"))
        .replace("\"PLACEHOLDER\"", &url);
    let agent = Agent::start_with_config(&text);
    expect(
        wait_for_event_count(&on_first, 3, Duration::from_secs(60)).then_some(()),
        "events through the first endpoint",
        &agent,
    );
    first.stop();
    expect(
        wait_for_event_count(&on_second, 3, Duration::from_secs(30)).then_some(()),
        "events through the second endpoint after the first one stopped",
        &agent,
    );
    // An event the first broker acknowledged just before it stopped may not have reached its
    // subscriber yet: a cluster would hand it on, this lone broker keeps it in its persistence
    // and delivers it when it is back. Bring it back and give its subscriber time to catch up.
    first.start_again();
    let join = || {
        let mut joined = on_first.messages();
        for mut message in on_second.messages() {
            message.index += joined.len();
            joined.push(message);
        }
        joined
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !gaps(&join()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    let joined = join();
    let by_seq = check_delivery(&joined);
    eprintln!(
        "{} events through the first endpoint, {} in all",
        events(&on_first.messages()).len(),
        by_seq.len()
    );
    assert!(
        agent.log().contains(&format!(
            "endpoint={}",
            second.url().trim_start_matches("mqtt://")
        )),
        "the log names the endpoint it connected to\n{}",
        agent.log()
    );
    on_second.validate_all();
}
