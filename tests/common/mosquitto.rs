//! A real mosquitto broker for tests, a subscriber that records what it receives, and schema
//! validation of payloads with the files in `src/publish/schemas`.
//!
//! Traps handled here (see `../shared/ENVIRONMENT.md`): mosquitto is not running on these
//! machines (each test starts its own, on 127.0.0.1 and a free port); started as root it drops
//! to the `mosquitto` user and then cannot write persistence into a root-owned temporary
//! directory, so the configuration says `user root`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Files for a TLS listener (PEM).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How to configure the broker. The default: anonymous clients allowed, plain TCP.
#[derive(Clone, Debug, Default)]
pub struct BrokerOptions {
    /// `(user, password)` pairs; when not empty, anonymous clients are refused.
    pub users: Vec<(String, String)>,
    /// A TLS listener instead of plain TCP.
    pub tls: Option<TlsFiles>,
    /// With `tls`: clients must present a certificate signed by `tls.ca`
    /// (`require_certificate true`).
    pub require_certificate: bool,
    /// With `require_certificate`: the client certificate's common name is the user name, and
    /// no password is asked (`use_identity_as_username true`).
    pub use_identity_as_username: bool,
    /// The text of an ACL file (`acl_file`): who may read and write which topics. With one,
    /// a user may do only what it grants.
    pub acl: Option<String>,
    /// A second, plain-TCP listener on 127.0.0.1 ([`Mosquitto::plain_port`]) for test
    /// subscribers, which do not speak TLS. User names and passwords apply to it too.
    pub plain_listener: bool,
}

/// A mosquitto process with its own configuration, persistence and log in a temporary
/// directory. Dropping it kills the process.
pub struct Mosquitto {
    dir: tempfile::TempDir,
    port: u16,
    /// [`BrokerOptions::plain_listener`]'s port.
    plain_port: Option<u16>,
    conf: PathBuf,
    child: Option<Child>,
}

impl Mosquitto {
    /// Anonymous, plain TCP.
    pub fn start() -> Mosquitto {
        Mosquitto::start_with(BrokerOptions::default())
    }

    pub fn start_with(options: BrokerOptions) -> Mosquitto {
        assert!(
            Path::new(MOSQUITTO).is_file(),
            "{MOSQUITTO} not found: install mosquitto (deploy/setup.sh does)"
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut last_log = String::new();
        // A port found free can be taken by someone else before mosquitto binds it: retry.
        for _attempt in 0..5 {
            let port = free_port();
            let plain_port = options.plain_listener.then(free_port);
            let conf = write_config(dir.path(), port, plain_port, &options);
            match spawn_broker(&conf, port, dir.path()) {
                Ok(child) => {
                    return Mosquitto {
                        dir,
                        port,
                        plain_port,
                        conf,
                        child: Some(child),
                    };
                }
                Err(log) => last_log = log,
            }
        }
        panic!("mosquitto did not start:\n{last_log}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The plain-TCP listener of [`BrokerOptions::plain_listener`] (panics without one).
    pub fn plain_port(&self) -> u16 {
        self.plain_port
            .expect("the broker was started without `plain_listener`")
    }

    /// `mqtt://127.0.0.1:PORT` (`mqtts://` with TLS).
    pub fn url(&self) -> String {
        let conf = std::fs::read_to_string(&self.conf).unwrap_or_default();
        let scheme = if conf.contains("certfile") {
            "mqtts"
        } else {
            "mqtt"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGTERM and wait: mosquitto saves its persistence file and closes every connection.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid. SIGCONT first, in case it is paused.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
                libc::kill(child.id() as libc::pid_t, libc::SIGCONT);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
    }

    /// Starts the broker again on the same port with the same configuration and persistence.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the broker is still running");
        let mut last_log = String::new();
        // The port was ours a moment ago; mosquitto sets SO_REUSEADDR, but give it a few tries.
        for _attempt in 0..20 {
            match spawn_broker(&self.conf, self.port, self.dir.path()) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(log) => {
                    last_log = log;
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
        }
        panic!(
            "mosquitto did not start again on port {}:\n{last_log}",
            self.port
        );
    }

    /// SIGSTOP: the broker stops reading and answering; connections stay open.
    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`Mosquitto::pause`].
    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&mut self, signal: libc::c_int) {
        let child = self.child.as_ref().expect("the broker is not running");
        // SAFETY: kill(2) on our own child's pid.
        let result = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert_eq!(result, 0, "kill({}, {signal})", child.id());
    }

    /// SIGKILL: no persistence saved, connections reset.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts mosquitto with `conf` and waits until `port` accepts connections; on failure the
/// process is gone and the error holds its output and log.
fn spawn_broker(conf: &Path, port: u16, dir: &Path) -> Result<Child, String> {
    let log = || {
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("mosquitto.log"))
    };
    let stderr = std::fs::File::create(dir.join("stderr.log"))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut child = Command::new(MOSQUITTO)
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("{MOSQUITTO}: {e}"))?;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}:\n{}", log()));
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "port {port} not accepting connections after {READY_TIMEOUT:?}\n{}",
        log()
    ))
}

/// A port nobody listens on right now (bind port 0, read it, let it go).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

fn write_config(
    dir: &Path,
    port: u16,
    plain_port: Option<u16>,
    options: &BrokerOptions,
) -> PathBuf {
    let mut conf = format!(
        "# written by tests/common/mosquitto.rs\n\
         user root\n\
         per_listener_settings false\n\
         persistence true\n\
         persistence_location {dir}/\n\
         log_dest file {dir}/mosquitto.log\n\
         log_type all\n\
         log_timestamp_format %H:%M:%S\n\
         listener {port} 127.0.0.1\n",
        dir = dir.display()
    );
    if let Some(tls) = &options.tls {
        conf.push_str(&format!(
            "cafile {}\ncertfile {}\nkeyfile {}\n",
            tls.ca.display(),
            tls.cert.display(),
            tls.key.display()
        ));
        if options.require_certificate {
            conf.push_str("require_certificate true\n");
        }
        if options.use_identity_as_username {
            conf.push_str("use_identity_as_username true\n");
        }
    }
    // Listener settings (TLS above) belong to the listener before them: this one comes after.
    if let Some(plain_port) = plain_port {
        conf.push_str(&format!("listener {plain_port} 127.0.0.1\n"));
    }
    if let Some(acl) = &options.acl {
        let path = dir.join("acl");
        std::fs::write(&path, acl).expect("write the ACL file");
        conf.push_str(&format!("acl_file {}\n", path.display()));
    }
    if options.users.is_empty() {
        conf.push_str("allow_anonymous true\n");
    } else {
        let passwords = dir.join("passwords");
        let _ = std::fs::remove_file(&passwords);
        for (user, password) in &options.users {
            let mut command = Command::new("mosquitto_passwd");
            command.arg("-b");
            if !passwords.exists() {
                command.arg("-c");
            }
            let status = command
                .arg(&passwords)
                .arg(user)
                .arg(password)
                .stdout(Stdio::null())
                .status()
                .expect("mosquitto_passwd");
            assert!(status.success(), "mosquitto_passwd failed");
        }
        conf.push_str(&format!(
            "allow_anonymous false\npassword_file {}\n",
            passwords.display()
        ));
    }
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, conf).expect("write mosquitto.conf");
    path
}

/// A test certificate authority made with rcgen (ECDSA P-256 keys, PEM files in a folder).
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    dir: PathBuf,
    /// The CA certificate: a `cafile` for mosquitto, an `mqtt.ca_file` for the agent.
    pub cert: PathBuf,
}

impl TestCa {
    /// A new CA named `name`, its certificate written as `dir/{name}.pem`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("watchpost test {name}"));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, cert.pem()).unwrap();
        TestCa {
            issuer: rcgen::Issuer::new(params, key),
            dir: dir.to_owned(),
            cert: path,
        }
    }

    /// A server certificate for `names` (IP addresses or DNS names), valid now unless
    /// `expired`, with this CA's certificate as `ca`.
    pub fn server(&self, stem: &str, names: &[&str], expired: bool) -> TlsFiles {
        let mut params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            names.first().copied().unwrap_or(stem),
        );
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let (cert, key) = self.sign(stem, &params);
        TlsFiles {
            ca: self.cert.clone(),
            cert,
            key,
        }
    }

    /// A client certificate whose common name is `common_name`: `(certificate, key)` files.
    pub fn client(&self, stem: &str, common_name: &str) -> (PathBuf, PathBuf) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        self.sign(stem, &params)
    }

    /// Signs `params` with a new key: `dir/{stem}.pem` and `dir/{stem}.key` (PKCS#8).
    fn sign(&self, stem: &str, params: &rcgen::CertificateParams) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let cert_path = self.dir.join(format!("{stem}.pem"));
        let key_path = self.dir.join(format!("{stem}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

/// One message as a subscriber received it.
#[derive(Clone, Debug)]
pub struct Message {
    /// Order of arrival at this subscriber, from 0.
    pub index: usize,
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Message {
    /// The payload as JSON; panics with the payload if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "{}: payload is not JSON ({e}): {}",
                self.topic,
                String::from_utf8_lossy(&self.payload)
            )
        })
    }

    /// The topic's last level (`status`, `health`, `detections`).
    pub fn kind(&self) -> &str {
        self.topic.rsplit('/').next().unwrap_or_default()
    }
}

const MAX_MESSAGES: usize = 10_000;

#[derive(Default)]
struct Store {
    messages: Vec<Message>,
    /// Received after the store was full (not kept).
    overflow: u64,
}

#[derive(Default)]
struct Shared {
    store: Mutex<Store>,
    changed: Condvar,
    stop: AtomicBool,
    subscriptions: AtomicU64,
}

impl Shared {
    fn notify(&self) {
        let _guard = self.store.lock().unwrap();
        self.changed.notify_all();
    }

    /// Calls `check` with the store, again each time something changed, until it gives a value
    /// or `timeout` passes (`None`).
    fn wait<T>(&self, timeout: Duration, mut check: impl FnMut(&Store) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut store = self.store.lock().unwrap();
        loop {
            if let Some(value) = check(&store) {
                return Some(value);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            store = self.changed.wait_timeout(store, deadline - now).unwrap().0;
        }
    }
}

/// A real MQTT client on its own thread (rumqttc's blocking client) that subscribes to a topic
/// filter at every connection and keeps what it receives (at most 10 000 messages).
pub struct Subscriber {
    shared: Arc<Shared>,
    client: Client,
    thread: Option<JoinHandle<()>>,
}

static NEXT_SUBSCRIBER: AtomicU64 = AtomicU64::new(0);

impl Subscriber {
    /// Connects to the broker on 127.0.0.1:`port` and waits until the subscription is
    /// acknowledged (10 s).
    pub fn connect(port: u16, filter: &str) -> Subscriber {
        Subscriber::connect_with(port, filter, None)
    }

    /// As [`Subscriber::connect`], with a persistent session (clean session off, fixed client
    /// id): the broker keeps QoS 1 messages for it while it is away, also across a broker
    /// restart (the test broker saves its persistence file on SIGTERM).
    pub fn connect_persistent(port: u16, filter: &str) -> Subscriber {
        Subscriber::connect_with_session(port, filter, None, true)
    }

    /// As [`Subscriber::connect`], logged in as `user` with `password`.
    pub fn connect_as(port: u16, filter: &str, user: &str, password: &str) -> Subscriber {
        Subscriber::connect_with(port, filter, Some((user, password)))
    }

    fn connect_with(port: u16, filter: &str, login: Option<(&str, &str)>) -> Subscriber {
        Subscriber::connect_with_session(port, filter, login, false)
    }

    fn connect_with_session(
        port: u16,
        filter: &str,
        login: Option<(&str, &str)>,
        persistent: bool,
    ) -> Subscriber {
        let id = format!(
            "test-sub-{}-{}",
            std::process::id(),
            NEXT_SUBSCRIBER.fetch_add(1, Ordering::Relaxed)
        );
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(1 << 20, 1 << 20)
            .set_clean_session(!persistent);
        if let Some((user, password)) = login {
            options.set_credentials(user, password);
        }
        let (client, mut connection) = Client::new(options, 16);
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            let client = client.clone();
            let filter = filter.to_owned();
            std::thread::spawn(move || {
                loop {
                    let Ok(event) = connection.recv() else { break };
                    if shared.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match event {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            let _ = client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            shared.subscriptions.fetch_add(1, Ordering::Relaxed);
                            shared.notify();
                        }
                        Ok(Event::Incoming(Packet::Publish(publish))) => {
                            let mut store = shared.store.lock().unwrap();
                            if store.messages.len() < MAX_MESSAGES {
                                let index = store.messages.len();
                                store.messages.push(Message {
                                    index,
                                    topic: publish.topic.clone(),
                                    payload: publish.payload.to_vec(),
                                    retain: publish.retain,
                                });
                            } else {
                                store.overflow += 1;
                            }
                            shared.changed.notify_all();
                        }
                        Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                        Ok(_) => {}
                        // Broker gone: try again shortly (each attempt is refused at once).
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            })
        };
        let subscriber = Subscriber {
            shared,
            client,
            thread: Some(thread),
        };
        assert!(
            subscriber.wait_subscriptions(1, Duration::from_secs(10)),
            "subscriber did not subscribe to {filter} on port {port}"
        );
        subscriber
    }

    /// Publishes `payload` on `topic` (QoS 1) through this subscriber's connection, as the
    /// central system would.
    pub fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.into())
            .expect("queue a publication");
    }

    /// SUBACKs received (one per connection).
    pub fn subscriptions(&self) -> u64 {
        self.shared.subscriptions.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` subscriptions were acknowledged.
    pub fn wait_subscriptions(&self, n: u64, timeout: Duration) -> bool {
        self.shared
            .wait(timeout, |_| (self.subscriptions() >= n).then_some(()))
            .is_some()
    }

    /// The first message (in arrival order) for which `predicate` holds, waiting up to
    /// `timeout` for it.
    pub fn wait_for(
        &self,
        predicate: impl Fn(&Message) -> bool,
        timeout: Duration,
    ) -> Option<Message> {
        self.wait_for_from(0, predicate, timeout)
    }

    /// As [`Subscriber::wait_for`], among messages with `index >= from`.
    pub fn wait_for_from(
        &self,
        from: usize,
        predicate: impl Fn(&Message) -> bool,
        timeout: Duration,
    ) -> Option<Message> {
        let mut checked = from;
        self.shared.wait(timeout, |store| {
            let found = store.messages.iter().skip(checked).find(|m| predicate(m));
            checked = checked.max(store.messages.len());
            found.cloned()
        })
    }

    /// Waits until at least `n` messages satisfy `predicate`; how many do when it returns.
    pub fn wait_count(
        &self,
        predicate: impl Fn(&Message) -> bool,
        n: usize,
        timeout: Duration,
    ) -> usize {
        let (mut counted, mut checked) = (0, 0);
        self.shared.wait(timeout, |store| {
            counted += store.messages[checked..]
                .iter()
                .filter(|m| predicate(m))
                .count();
            checked = store.messages.len();
            (counted >= n).then_some(())
        });
        counted
    }

    /// Every message kept so far, in arrival order.
    pub fn messages(&self) -> Vec<Message> {
        self.shared.store.lock().unwrap().messages.clone()
    }

    /// How many messages arrived so far (the next message's index).
    pub fn len(&self) -> usize {
        self.shared.store.lock().unwrap().messages.len()
    }

    /// Messages received after the store was full.
    pub fn overflow(&self) -> u64 {
        self.shared.store.lock().unwrap().overflow
    }

    /// Validates every message received so far against its schema; panics naming the first
    /// invalid one. Returns how many were checked.
    pub fn validate_all(&self) -> usize {
        self.validate_where(|_| true)
    }

    /// As [`Subscriber::validate_all`], for the messages `which` selects.
    pub fn validate_where(&self, which: impl Fn(&Message) -> bool) -> usize {
        let messages: Vec<Message> = self.messages().into_iter().filter(|m| which(m)).collect();
        for message in &messages {
            if let Err(e) = validate_message(message) {
                panic!(
                    "{} is invalid: {e}\n{}",
                    message.topic,
                    String::from_utf8_lossy(&message.payload)
                );
            }
        }
        messages.len()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.client.try_disconnect();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Validates `instance` against `src/publish/schemas/{schema_name}.schema.json` (draft 2020-12,
/// formats checked). The error lists every violation with its JSON pointer.
pub fn validate(schema_name: &str, instance: &serde_json::Value) -> Result<(), String> {
    let text = watchpost::publish::schema_json(schema_name)
        .ok_or_else(|| format!("no schema named {schema_name}"))?;
    let schema: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{schema_name} schema: {e}"))?;
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| format!("{schema_name} schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Validates a received message against the schema its topic names.
pub fn validate_message(message: &Message) -> Result<(), String> {
    if message.topic.contains("/snapshots/") {
        // A snapshot is a JPEG, not JSON.
        return if message.payload.starts_with(&[0xFF, 0xD8])
            && message.payload.ends_with(&[0xFF, 0xD9])
        {
            Ok(())
        } else {
            Err("snapshot is not a complete JPEG".to_owned())
        };
    }
    let value: serde_json::Value = serde_json::from_slice(&message.payload)
        .map_err(|e| format!("payload is not JSON: {e}"))?;
    let schema = match message.kind() {
        "cmd" => "command",
        "result" => "command-result",
        "audit" => "command-audit",
        "state" => "config-state",
        kind => kind,
    };
    validate(schema, &value)
}
