//! Secrets never leave the box in clear: the real `watchpost run` binary with an RTSP camera
//! that wants a password (in the camera URL), an MQTT broker over TLS that wants a user and
//! password, full debug (and trace) logging, once with everything right and once each with a
//! wrong MQTT and a wrong RTSP password so that failures are logged. Neither password, right or
//! wrong, may appear in stdout, stderr or any MQTT message (a subscriber on `#`); the failures
//! must be logged in words.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mosquitto::{BrokerOptions, Mosquitto, Subscriber, TestCa, TlsFiles};
use watchpost::demo::clip_server::ClipServer;

const RTSP_USER: &str = "viewer";
const RTSP_PASSWORD: &str = "s3cr3t-rtsp-Pa55";
const WRONG_RTSP_PASSWORD: &str = "wr0ng-rtsp-Pa55";
const MQTT_USER: &str = "agent";
const MQTT_PASSWORD: &str = "mqtt-Pa55-7781";
const WRONG_MQTT_PASSWORD: &str = "mqtt-Pa55-0000";
const SECRETS: [&str; 4] = [
    RTSP_PASSWORD,
    WRONG_RTSP_PASSWORD,
    MQTT_PASSWORD,
    WRONG_MQTT_PASSWORD,
];
/// How long each agent runs before SIGTERM.
const RUN_FOR: Duration = Duration::from_secs(8);

/// What one run of the agent printed.
struct Output {
    stdout: String,
    stderr: String,
}

impl Output {
    #[track_caller]
    fn assert_no_secret(&self, run: &str) {
        for secret in SECRETS {
            for (stream, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
                assert!(
                    !text.contains(secret),
                    "{run}: `{secret}` in {stream}:\n{text}"
                );
            }
        }
    }
}

struct Setup {
    dir: tempfile::TempDir,
    server: ClipServer,
    broker: Mosquitto,
    tls: TlsFiles,
}

impl Setup {
    fn new() -> Setup {
        watchpost::ingest::init_gstreamer().expect("GStreamer");
        let server = ClipServer::start(&common::repo_path("tests/data/sample-clip.mp4"), 0)
            .expect("RTSP server")
            .with_auth(RTSP_USER, RTSP_PASSWORD);
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path(), "ca");
        let tls = ca.server("server", &["127.0.0.1", "localhost"], false);
        let broker = Mosquitto::start_with(BrokerOptions {
            users: vec![
                (MQTT_USER.to_owned(), MQTT_PASSWORD.to_owned()),
                ("central".to_owned(), "central-pw".to_owned()),
            ],
            tls: Some(tls.clone()),
            plain_listener: true,
            ..BrokerOptions::default()
        });
        Setup {
            dir,
            server,
            broker,
            tls,
        }
    }

    /// The configuration file of run `run`: the camera's credentials in its URL, the MQTT
    /// password in the file (`Some`) or left to `WATCHPOST_MQTT_PASSWORD` (`None`).
    fn config(&self, run: &str, rtsp_password: &str, mqtt_password: Option<&str>) -> PathBuf {
        let camera_url = self.server.url("cam0").replacen(
            "rtsp://",
            &format!("rtsp://{RTSP_USER}:{rtsp_password}@"),
            1,
        );
        let password = mqtt_password.map_or(String::new(), |p| format!("password = \"{p}\"\n"));
        let text = format!(
            "[device]\nsite = \"north\"\nid = \"post-1\"\nstate_dir = \"{state}\"\n\n\
             [mqtt]\nurl = \"{url}\"\nca_file = \"{ca}\"\nusername = \"{MQTT_USER}\"\n{password}\
             keep_alive_s = 5\n\n\
             [detection]\ninference_threads = 1\n\n\
             [health]\ninterval_s = 1\n\n\
             [[cameras]]\nname = \"gate\"\nurl = \"{camera_url}\"\ndetect_fps = 5\n",
            state = self.dir.path().join(format!("state-{run}")).display(),
            url = self.broker.url(),
            ca = self.tls.ca.display(),
        );
        let path = self.dir.path().join(format!("{run}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs the agent for [`RUN_FOR`] with `args` after `run --config FILE` and `env`, then
    /// SIGTERM; what it printed.
    fn run(&self, run: &str, config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let stdout_path = self.dir.path().join(format!("{run}.stdout"));
        let stderr_path = self.dir.path().join(format!("{run}.stderr"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_watchpost"));
        command
            .args(["run", "--config"])
            .arg(config)
            .args(args)
            .env_remove("WATCHPOST_MQTT_PASSWORD")
            .env_remove("WATCHPOST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        let mut child = command.spawn().expect("start watchpost run");
        std::thread::sleep(RUN_FOR);
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = Output {
            stdout: std::fs::read_to_string(&stdout_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
        };
        assert!(
            status.is_some(),
            "{run}: no exit within 15 s of SIGTERM:\n{}",
            output.stderr
        );
        output
    }
}

#[test]
fn passwords_appear_in_no_log_and_no_message() {
    let setup = Setup::new();
    let central = Subscriber::connect_as(setup.broker.plain_port(), "#", "central", "central-pw");

    // 1. Everything right, debug logging: it works (so there was something to leak).
    let config = setup.config("right", RTSP_PASSWORD, Some(MQTT_PASSWORD));
    let right = setup.run("right", &config, &["--log", "debug"], &[]);
    right.assert_no_secret("right");
    let detections = central
        .messages()
        .iter()
        .filter(|m| m.topic == "watchpost/north/post-1/gate/detections")
        .count();
    assert!(
        detections > 0,
        "no detections from the right run:\n{}",
        right.stderr
    );
    assert!(
        right.stderr.contains("connected to the MQTT broker"),
        "{}",
        right.stderr
    );

    // The run's last message, `offline`, may still be on its way.
    central
        .wait_for(
            |m| m.topic == "watchpost/north/post-1/status" && m.json()["state"] == "offline",
            Duration::from_secs(5),
        )
        .expect("`offline` from the right run");
    std::thread::sleep(Duration::from_millis(500));

    // 2. A wrong MQTT password, from the environment, trace logging through WATCHPOST_LOG.
    let config = setup.config("wrong-mqtt", RTSP_PASSWORD, None);
    let before = central.len();
    let wrong_mqtt = setup.run(
        "wrong-mqtt",
        &config,
        &[],
        &[
            ("WATCHPOST_MQTT_PASSWORD", WRONG_MQTT_PASSWORD),
            ("WATCHPOST_LOG", "trace"),
        ],
    );
    wrong_mqtt.assert_no_secret("wrong-mqtt");
    assert!(
        wrong_mqtt
            .stderr
            .contains("refused by the broker: not authorised (bad user name or password"),
        "the MQTT failure is not logged in words:\n{}",
        wrong_mqtt.stderr
    );
    let after: Vec<String> = central
        .messages()
        .iter()
        .skip(before)
        .map(|m| format!("{} {}", m.topic, String::from_utf8_lossy(&m.payload)))
        .collect();
    assert!(
        after.is_empty(),
        "messages from a client with the wrong password: {after:?}"
    );

    // 3. A wrong RTSP password (in the URL), debug logging.
    let config = setup.config("wrong-rtsp", WRONG_RTSP_PASSWORD, Some(MQTT_PASSWORD));
    let before = central.len();
    let wrong_rtsp = setup.run("wrong-rtsp", &config, &["--log", "debug"], &[]);
    wrong_rtsp.assert_no_secret("wrong-rtsp");
    assert!(
        wrong_rtsp.stderr.contains("Unauthorized (401)"),
        "the RTSP failure is not logged in words:\n{}",
        wrong_rtsp.stderr
    );
    let health = central
        .messages()
        .into_iter()
        .skip(before)
        .rev()
        .find(|m| m.kind() == "health")
        .unwrap_or_else(|| panic!("no health from the wrong-rtsp run:\n{}", wrong_rtsp.stderr));
    let camera = &health.json()["cameras"][0];
    assert_ne!(camera["state"], "streaming", "{camera}");
    assert!(
        camera["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("Unauthorized")),
        "{camera}"
    );

    // No message of any run carries a secret, in its topic or its payload.
    let messages = central.messages();
    assert!(messages.len() > 10, "{} messages", messages.len());
    for message in &messages {
        for secret in SECRETS {
            assert!(
                !message.topic.contains(secret)
                    && !message
                        .payload
                        .windows(secret.len())
                        .any(|w| w == secret.as_bytes()),
                "`{secret}` in a message on {}: {}",
                message.topic,
                String::from_utf8_lossy(&message.payload)
            );
        }
    }
}
