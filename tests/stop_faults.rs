//! Stopping under real faults: the real `watchpost run` binary, the in-process RTSP server, a
//! real mosquitto, and things that hang — a camera that accepts the connection and never
//! answers, one whose server freezes mid-stream (a TCP proxy that stops forwarding), an
//! inference that never returns and a start that fails half-way (both injected through
//! `WATCHPOST_FAULTS`, see `src/agent/faults.rs`).
//!
//! Each time: SIGTERM, then the process is gone within the stop budget, `offline` is published
//! by the agent itself (not the broker's last will), and the outbox is intact.
//!
//! The tests run one at a time (they share two cores).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::agent::{Agent, AgentSetup, clip_server, expect, topic};
use common::mosquitto::{Message, Mosquitto, Subscriber};
use common::serial;
use watchpost::agent::stop::STOP_BUDGET;

/// How long after SIGTERM the process may take: the budget, and the runtime's own shutdown and
/// the process exit.
fn exit_allowance() -> Duration {
    STOP_BUDGET + Duration::from_secs(2)
}

fn is_offline(m: &Message) -> bool {
    m.topic == topic("status") && m.json()["state"] == "offline"
}

/// SIGTERM; how long the process took to exit (fails past the allowance).
fn stop(agent: &mut Agent) -> (std::process::ExitStatus, Duration) {
    let asked = Instant::now();
    agent.signal(libc::SIGTERM);
    let status = expect(
        agent.wait(exit_allowance()),
        &format!("exit within {:?} of SIGTERM", exit_allowance()),
        agent,
    );
    (status, asked.elapsed())
}

/// `offline` arrived after `from`, and the agent says it published it itself (a process that
/// died would leave it to the broker's last will, which looks the same to a subscriber).
#[track_caller]
fn assert_offline_published(central: &Subscriber, from: usize, agent: &Agent) {
    expect(
        central.wait_for_from(from, is_offline, Duration::from_secs(5)),
        "status offline",
        agent,
    );
    assert!(
        agent.log().contains("published offline"),
        "the agent published offline itself:\n{}",
        agent.log()
    );
}

/// A TCP server that accepts connections and never says a word.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// A TCP proxy to `upstream` that forwards until frozen, then holds every connection open
/// without passing a byte either way: a server frozen mid-stream.
struct FreezingProxy {
    port: u16,
    frozen: Arc<AtomicBool>,
}

impl FreezingProxy {
    fn start(upstream: u16) -> FreezingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&frozen);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let flag = Arc::clone(&flag);
                    std::thread::spawn(move || pump(from, to, &flag));
                }
            }
        });
        FreezingProxy { port, frozen }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, frozen: &AtomicBool) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Frozen: hold both sockets open, forward nothing, forever.
        while frozen.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if to.write_all(&buffer[..n]).is_err() {
            return;
        }
    }
}

#[test]
fn a_silent_camera_and_a_frozen_one_do_not_hold_up_the_stop() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), &topic("#"));
    let proxy = FreezingProxy::start(server.port());
    let setup = AgentSetup {
        cameras: vec![
            format!("rtsp://127.0.0.1:{}/cam0", silent_server()),
            format!("rtsp://127.0.0.1:{}/cam1", proxy.port),
        ],
        // Longer than the test: the frozen camera stays stuck in its pipeline, not retrying.
        stall_timeout_s: 60,
        ..AgentSetup::one_camera(String::new())
    };
    let mut agent = Agent::start(&broker, &setup);
    expect(
        central.wait_for(
            |m| m.topic == topic("cam1/detections"),
            Duration::from_secs(60),
        ),
        "detections from the proxied camera",
        &agent,
    );
    proxy.freeze();
    std::thread::sleep(Duration::from_secs(2));
    let frozen_at = central.len();
    let last_detection = central
        .messages()
        .iter()
        .rev()
        .find(|m| m.topic == topic("cam1/detections"))
        .map(|m| m.index);

    let before = central.len();
    let (status, took) = stop(&mut agent);
    eprintln!("stopped in {took:?} with a silent and a frozen camera");
    assert!(status.success(), "clean exit: {status:?}\n{}", agent.log());
    assert_offline_published(&central, before, &agent);
    // The proxy really froze the stream: nothing new from cam1 once frozen (at most what was
    // already in flight before the freeze).
    let late = central
        .messages()
        .iter()
        .filter(|m| m.index >= frozen_at && m.topic == topic("cam1/detections"))
        .count();
    assert_eq!(
        late, 0,
        "no detections after the freeze ({last_detection:?})"
    );
    central.validate_all();
}

/// Event seqs of `camera` on the events topic, in arrival order.
fn event_seqs(central: &Subscriber, camera: &str) -> Vec<u64> {
    central
        .messages()
        .iter()
        .filter(|m| m.topic == topic(&format!("{camera}/events")))
        .filter_map(|m| m.json()["seq"].as_u64())
        .collect()
}

#[test]
fn an_inference_that_never_returns_does_not_hold_up_the_stop_or_lose_events() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect_persistent(broker.port(), &topic("#"));
    let setup = AgentSetup {
        detect_fps: 10.0,
        // About eight seconds of the clip analysed, then every inference thread hangs.
        env: vec![("WATCHPOST_FAULTS", "hang-inference-after=80".to_owned())],
        ..AgentSetup::one_camera(server.url("cam0"))
    };
    let mut agent = Agent::start(&broker, &setup);
    let hung = Instant::now() + Duration::from_secs(60);
    while !agent.log().contains("this inference never returns") && Instant::now() < hung {
        std::thread::sleep(Duration::from_millis(200));
    }
    expect(
        agent
            .log()
            .contains("this inference never returns")
            .then_some(()),
        "the injected hang",
        &agent,
    );
    std::thread::sleep(Duration::from_secs(1));
    let first_run = event_seqs(&central, "cam0");
    assert!(
        !first_run.is_empty(),
        "events before the hang\n{}",
        agent.log()
    );

    let before = central.len();
    let (status, took) = stop(&mut agent);
    eprintln!("stopped in {took:?} with every inference thread hung");
    assert!(status.success(), "clean exit: {status:?}\n{}", agent.log());
    assert!(
        agent.log().contains("inference threads did not finish"),
        "the hung threads were abandoned, and said so:\n{}",
        agent.log()
    );
    assert_offline_published(&central, before, &agent);

    // The outbox is intact: a run without the fault carries on numbering after the last
    // event, with no gap and nothing numbered twice.
    let highest = *first_run.iter().max().unwrap();
    agent.restart_with_env("info", Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while event_seqs(&central, "cam0").iter().max() <= Some(&(highest + 1))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let seqs = event_seqs(&central, "cam0");
    let newest = *seqs.iter().max().unwrap();
    assert!(
        newest > highest + 1,
        "events after the restart (highest before {highest}, now {newest})\n{}",
        agent.log()
    );
    let distinct: std::collections::BTreeSet<u64> = seqs.iter().copied().collect();
    let missing: Vec<u64> = (1..=newest).filter(|s| !distinct.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "every seq from 1 to {newest} arrived; missing {missing:?}\n{}",
        agent.log()
    );
    let (status, _) = stop(&mut agent);
    assert!(status.success(), "clean exit: {status:?}\n{}", agent.log());
    central.validate_all();
}

#[test]
fn a_start_that_fails_after_the_broker_connection_still_stops_in_order() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let central = Subscriber::connect(broker.port(), &topic("#"));
    let setup = AgentSetup {
        env: vec![("WATCHPOST_FAULTS", "refuse-camera-threads".to_owned())],
        ..AgentSetup::one_camera(server.url("cam0"))
    };
    let mut agent = Agent::start(&broker, &setup);
    let status = expect(
        agent.wait(exit_allowance()),
        "the agent gives up on its own",
        &agent,
    );
    assert_eq!(status.code(), Some(1), "failure exit\n{}", agent.log());
    let log = agent.log();
    assert!(
        log.contains("starting camera cam0: refused by WATCHPOST_FAULTS"),
        "the error names the camera:\n{log}"
    );
    assert!(
        log.contains("shutting down: writing the last events"),
        "the ordered stop ran:\n{log}"
    );
    // Online first (the publisher had connected), then offline from the agent itself.
    expect(
        central.wait_for(
            |m| m.topic == topic("status") && m.json()["state"] == "online",
            Duration::from_secs(5),
        ),
        "status online before the failure",
        &agent,
    );
    assert_offline_published(&central, 0, &agent);
    central.validate_all();
}
