//! The MQTT connection's security against a real mosquitto: TLS with the right and the wrong
//! CA, the broker's certificate problems named in words, client certificates (mutual TLS),
//! passwords (from `password_file` and from `WATCHPOST_MQTT_PASSWORD`, the latter through the
//! real binary because the environment is process-wide), an ACL that confines the agent's user
//! to its own topic tree, and `tls_verify = false`.
//!
//! Certificates are made here with rcgen: a CA, a server certificate for 127.0.0.1 and
//! localhost signed by it, client certificates signed by it, and a second, unrelated CA. The
//! test's subscriber listens on a second, plain-TCP listener of the same broker.
//!
//! Failover between `mqtt.url` endpoints is covered where the options are built
//! (`publish::connection` unit tests: `mqtt_options(config, 1, will)` targets the second URL).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::mosquitto::{BrokerOptions, Message, Mosquitto, Subscriber, TestCa, TlsFiles};
use common::publisher::{Running, publisher_config};
use watchpost::config::CertKeyFiles;

const WAIT: Duration = Duration::from_secs(15);
/// How long a refused publisher is watched to see that it keeps retrying and never connects
/// (attempts after 0, ~1 and ~3 s).
const REFUSED_FOR: Duration = Duration::from_secs(4);
const MQTT_PASSWORD: &str = "mqtt-Pa55-7781";

fn status_topic(device: &str) -> String {
    format!("watchpost/north/{device}/status")
}

fn is_online(device: &str) -> impl Fn(&Message) -> bool + '_ {
    move |m| m.topic == status_topic(device) && m.json()["state"] == "online"
}

/// What these tests add to the shared publisher harness.
impl Running {
    /// Refused: a `last_error` with `expected` in it, and for [`REFUSED_FOR`] never connected
    /// while the publisher task keeps running. Returns the error.
    fn assert_refused(&self, expected: &str) -> String {
        let state = self.wait_broker(|s| s.last_error.is_some(), WAIT);
        let error = state.last_error.unwrap();
        assert!(error.contains(expected), "`{error}` lacks `{expected}`");
        let until = Instant::now() + REFUSED_FOR;
        while Instant::now() < until {
            let state = self.state();
            assert_eq!(state.connections, 0, "connected after all: {state:?}");
            assert!(!self.task.is_finished(), "the publisher stopped");
            std::thread::sleep(Duration::from_millis(50));
        }
        error
    }
}

/// The certificates of these tests, in a temporary folder.
struct Pki {
    _dir: tempfile::TempDir,
    ca: TestCa,
    other_ca: TestCa,
    /// For 127.0.0.1 and localhost, signed by `ca`.
    server: TlsFiles,
    /// Common name `box-1`, signed by `ca`.
    client: CertKeyFiles,
    /// Common name `box-1`, signed by `other_ca`.
    stranger: CertKeyFiles,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca");
    let other_ca = TestCa::new(dir.path(), "other-ca");
    let server = ca.server("server", &["127.0.0.1", "localhost"], false);
    let (cert, key) = ca.client("client", "box-1");
    let (stranger_cert, stranger_key) = other_ca.client("stranger", "box-1");
    Pki {
        _dir: dir,
        ca,
        other_ca,
        server,
        client: CertKeyFiles { cert, key },
        stranger: CertKeyFiles {
            cert: stranger_cert,
            key: stranger_key,
        },
    }
}

fn tls_broker(server: &TlsFiles, require_certificate: bool) -> Mosquitto {
    Mosquitto::start_with(BrokerOptions {
        tls: Some(server.clone()),
        require_certificate,
        plain_listener: true,
        ..BrokerOptions::default()
    })
}

#[test]
fn mqtts_with_the_right_ca_connects_and_messages_arrive() {
    let pki = pki();
    let broker = tls_broker(&pki.server, false);
    assert!(broker.url().starts_with("mqtts://"));
    let central = Subscriber::connect(broker.plain_port(), "watchpost/#");

    let mut config = publisher_config(&broker.url(), "box-1");
    config.mqtt.ca_file = Some(pki.ca.cert.clone());
    let running = Running::start(config, &["gate"]);
    running.wait_broker(|s| s.connected, WAIT);
    central
        .wait_for(is_online("box-1"), WAIT)
        .expect("`online` through the TLS listener");
    let report = running.stop();
    assert!(
        report.offline_acked,
        "QoS 1 round trip over TLS: {report:?}"
    );
    central
        .wait_for(
            |m| m.topic == status_topic("box-1") && m.json()["state"] == "offline",
            WAIT,
        )
        .expect("`offline` at shutdown");
}

#[test]
fn the_brokers_certificate_problems_are_named_and_retried() {
    let pki = pki();
    let named = pki.ca.server("named", &["broker.example"], false);
    let expired = pki.ca.server("expired", &["127.0.0.1"], true);
    // broker certificate, CA file the agent trusts, expected words
    let cases: [(&TlsFiles, &Path, &str); 3] = [
        (
            &pki.server,
            &pki.other_ca.cert,
            "TLS: the broker's certificate is signed by an unknown CA",
        ),
        (
            &named,
            &pki.ca.cert,
            "TLS: certificate name mismatch: the broker's certificate is not for `127.0.0.1` \
             (it is for broker.example)",
        ),
        (
            &expired,
            &pki.ca.cert,
            "TLS: the broker's certificate has expired (valid until 2021-01-01T00:00:00Z",
        ),
    ];
    for (server, ca_file, expected) in cases {
        let broker = tls_broker(server, false);
        let central = Subscriber::connect(broker.plain_port(), "watchpost/#");
        let mut config = publisher_config(&broker.url(), "box-1");
        config.mqtt.ca_file = Some(ca_file.to_owned());
        let running = Running::start(config, &["gate"]);
        running.assert_refused(expected);
        // Every attempt reaches the broker, which logs our refusal (a TLS alert from us, as
        // `Client connection from ... failed: ... alert ...` or `OpenSSL Error ... alert`).
        let attempts = broker
            .log()
            .lines()
            .filter(|l| l.contains("SSL routines") && l.contains(" alert "))
            .count();
        assert!(attempts >= 2, "{attempts} attempts:\n{}", broker.log());
        assert!(!running.stop().offline_acked);
        assert!(central.messages().is_empty(), "{:?}", central.messages());
    }
}

#[test]
fn mutual_tls_needs_the_right_client_certificate() {
    let pki = pki();
    let broker = tls_broker(&pki.server, true);
    let central = Subscriber::connect(broker.plain_port(), "watchpost/#");

    let mut config = publisher_config(&broker.url(), "box-1");
    config.mqtt.ca_file = Some(pki.ca.cert.clone());
    let without = Running::start(config.clone(), &["gate"]);
    without.assert_refused("TLS: the broker wants a client certificate");
    without.stop();

    config.mqtt.client_cert = Some(pki.stranger.clone());
    let stranger = Running::start(config.clone(), &["gate"]);
    stranger.assert_refused("TLS: the broker refused our client certificate");
    stranger.stop();
    assert!(central.messages().is_empty(), "{:?}", central.messages());

    // The right certificate, with its key as SEC1 (`EC PRIVATE KEY`) rather than PKCS#8.
    let sec1 = pki.client.key.with_extension("sec1.key");
    openssl(&["ec", "-in"], &pki.client.key, &sec1);
    assert!(
        std::fs::read_to_string(&sec1)
            .unwrap()
            .starts_with("-----BEGIN EC PRIVATE KEY-----")
    );
    config.mqtt.client_cert = Some(CertKeyFiles {
        cert: pki.client.cert.clone(),
        key: sec1,
    });
    let running = Running::start(config, &["gate"]);
    running.wait_broker(|s| s.connected, WAIT);
    central
        .wait_for(is_online("box-1"), WAIT)
        .expect("`online` through mutual TLS");
    assert!(running.stop().offline_acked);
}

/// `openssl ARGS... INPUT -out OUTPUT`.
fn openssl(args: &[&str], input: &Path, output: &Path) {
    let result = Command::new("openssl")
        .args(args)
        .arg(input)
        .arg("-out")
        .arg(output)
        .output()
        .expect("openssl (package openssl, pulled in by ca-certificates)");
    assert!(
        result.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&result.stderr)
    );
}

#[test]
fn the_certificates_common_name_can_be_the_user_name_for_the_acl() {
    let pki = pki();
    let broker = Mosquitto::start_with(BrokerOptions {
        tls: Some(pki.server.clone()),
        require_certificate: true,
        use_identity_as_username: true,
        users: vec![("central".to_owned(), "central-pw".to_owned())],
        acl: Some(
            "user box-1\ntopic write watchpost/north/box-1/#\n\
             user central\ntopic read watchpost/#\n"
                .to_owned(),
        ),
        plain_listener: true,
    });
    let central =
        Subscriber::connect_as(broker.plain_port(), "watchpost/#", "central", "central-pw");
    // Client id box-2, certificate of box-1: the user is box-1, and box-2's tree is not its.
    let mut config = publisher_config(&broker.url(), "box-2");
    config.mqtt.ca_file = Some(pki.ca.cert.clone());
    config.mqtt.client_cert = Some(pki.client.clone());
    let other_tree = Running::start(config, &["gate"]);
    other_tree.wait_broker(|s| s.connected, WAIT);
    std::thread::sleep(Duration::from_secs(1));
    other_tree.stop();

    let mut config = publisher_config(&broker.url(), "box-1");
    config.mqtt.ca_file = Some(pki.ca.cert.clone());
    config.mqtt.client_cert = Some(pki.client.clone());
    let own_tree = Running::start(config, &["gate"]);
    central
        .wait_for(is_online("box-1"), WAIT)
        .expect("box-1 may write its own tree");
    own_tree.stop();
    assert_box_2_denied(&central, &broker);
}

/// Nothing of box-2 reached the central system: the broker's ACL denied what it published.
fn assert_box_2_denied(central: &Subscriber, broker: &Mosquitto) {
    assert!(
        !central
            .messages()
            .iter()
            .any(|m| m.topic.contains("/box-2/")),
        "{:?}",
        central.messages()
    );
    assert!(
        broker.log().contains("Denied PUBLISH from box-2"),
        "{}",
        broker.log()
    );
}

#[test]
fn password_file_and_acl_on_the_broker() {
    let broker = Mosquitto::start_with(BrokerOptions {
        users: vec![
            ("agent".to_owned(), MQTT_PASSWORD.to_owned()),
            ("central".to_owned(), "central-pw".to_owned()),
        ],
        acl: Some(
            "user agent\ntopic write watchpost/north/box-1/#\n\
             user central\ntopic read watchpost/#\n"
                .to_owned(),
        ),
        ..BrokerOptions::default()
    });
    let url = broker.url();
    let central = Subscriber::connect_as(broker.port(), "watchpost/#", "central", "central-pw");
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("mqtt-password");
    std::fs::write(&password_file, format!("{MQTT_PASSWORD}\n")).unwrap();

    // The password as the configuration gives it: the first line of `password_file`.
    let config_file = write_agent_config(
        dir.path(),
        &url,
        &format!(
            "username = \"agent\"\npassword_file = \"{}\"",
            password_file.display()
        ),
    );
    let loaded = watchpost::config::load(&config_file).unwrap();
    let mut right = publisher_config(&url, "box-1");
    right.mqtt.username = loaded.mqtt.username.clone();
    right.mqtt.password = loaded.mqtt.password.clone();
    assert!(right.mqtt.password.is_some());
    let running = Running::start(right, &["gate"]);
    running.wait_broker(|s| s.connected, WAIT);
    central
        .wait_for(is_online("box-1"), WAIT)
        .expect("the agent's user may write its own tree");
    assert!(running.stop().offline_acked);

    // A wrong password: refused, in words, never quoted.
    let mut wrong = publisher_config(&url, "box-1");
    wrong.mqtt.username = Some("agent".to_owned());
    wrong.mqtt.password = Some(watchpost::config::Secret::new("wrong-Pa55-0000"));
    let refused = Running::start(wrong, &["gate"]);
    // Mosquitto answers a wrong password with "not authorised" (MQTT 3.1.1 code 5).
    let error =
        refused.assert_refused("refused by the broker: not authorised (bad user name or password");
    assert!(!error.contains("Pa55"), "{error}");
    refused.stop();

    // The agent's user outside its tree: connected, but mosquitto drops what it publishes.
    let mut elsewhere = publisher_config(&url, "box-2");
    elsewhere.mqtt.username = Some("agent".to_owned());
    elsewhere.mqtt.password = Some(watchpost::config::Secret::new(MQTT_PASSWORD));
    let running = Running::start(elsewhere, &["gate"]);
    running.wait_broker(|s| s.connected, WAIT);
    std::thread::sleep(Duration::from_secs(1));
    running.stop();
    assert_box_2_denied(&central, &broker);
}

#[test]
fn the_password_from_the_environment_reaches_the_broker() {
    let broker = Mosquitto::start_with(BrokerOptions {
        users: vec![
            ("agent".to_owned(), MQTT_PASSWORD.to_owned()),
            ("central".to_owned(), "central-pw".to_owned()),
        ],
        ..BrokerOptions::default()
    });
    let central = Subscriber::connect_as(broker.port(), "watchpost/#", "central", "central-pw");
    let dir = tempfile::tempdir().unwrap();
    let config_file = write_agent_config(dir.path(), &broker.url(), "username = \"agent\"");

    // Wrong: refused, the cause logged in words.
    let mut agent = Agent::start(
        &config_file,
        "wrong-Pa55-0000",
        dir.path().join("wrong.log"),
    );
    let log = agent.wait_log("bad user name or password", WAIT);
    assert!(
        log.contains("refused by the broker: not authorised (bad user name or password"),
        "{log}"
    );
    agent.stop();
    assert!(central.messages().is_empty(), "{:?}", central.messages());
    let log = agent.log();
    assert!(!log.contains("Pa55"), "the password in the log:\n{log}");

    // Right.
    let mut agent = Agent::start(&config_file, MQTT_PASSWORD, dir.path().join("right.log"));
    let online = central.wait_for(
        |m| m.topic == "watchpost/north/post-1/status" && m.json()["state"] == "online",
        Duration::from_secs(30),
    );
    assert!(online.is_some(), "no `online`:\n{}", agent.log());
    agent.stop();
    assert!(!agent.log().contains("Pa55"), "{}", agent.log());
}

/// A configuration for the real binary: device `post-1` of site `north`, the broker at `url`
/// with `mqtt_lines` added, one camera that does not answer (the agent keeps retrying it).
fn write_agent_config(dir: &Path, url: &str, mqtt_lines: &str) -> PathBuf {
    let camera_port = common::mosquitto::free_port();
    let text = format!(
        "[device]\nsite = \"north\"\nid = \"post-1\"\nstate_dir = \"{state}\"\n\n\
         [mqtt]\nurl = \"{url}\"\nkeep_alive_s = 5\n{mqtt_lines}\n\n\
         [detection]\ninference_threads = 1\n\n\
         [[cameras]]\nname = \"gate\"\nurl = \"rtsp://127.0.0.1:{camera_port}/none\"\n",
        state = dir.join("state").display(),
    );
    let path = dir.join("watchpost.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `watchpost run` with `WATCHPOST_MQTT_PASSWORD`, its log (stderr) in a file.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn start(config: &Path, mqtt_password: &str, log: PathBuf) -> Agent {
        let stderr = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .args(["run", "--log", "debug", "--config"])
            .arg(config)
            .env("WATCHPOST_MQTT_PASSWORD", mqtt_password)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start watchpost run");
        Agent { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `text`; the whole log.
    fn wait_log(&mut self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(text) {
                return log;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the agent exited with {status} before logging `{text}`:\n{log}");
            }
            assert!(Instant::now() < deadline, "`{text}` never logged:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, and wait for the exit (10 s).
    fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("the agent did not stop on SIGTERM:\n{}", self.log());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn unverified_tls_connects_to_a_broker_nobody_vouches_for() {
    let pki = pki();
    let broker = tls_broker(&pki.server, false);
    let central = Subscriber::connect(broker.plain_port(), "watchpost/#");

    // Checked against the system roots, the test CA is unknown ...
    let checked = Running::start(publisher_config(&broker.url(), "box-1"), &["gate"]);
    checked.assert_refused("signed by an unknown CA");
    checked.stop();

    // ... and with tls_verify = false the connection is made anyway.
    let mut config = publisher_config(&broker.url(), "box-1");
    config.mqtt.tls_verify = false;
    let running = Running::start(config, &["gate"]);
    running.wait_broker(|s| s.connected, WAIT);
    central
        .wait_for(is_online("box-1"), WAIT)
        .expect("`online` over unverified TLS");
    assert!(running.stop().offline_acked);
}
