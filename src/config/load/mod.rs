//! TOML text → [`Config`], reporting every problem at once.
//!
//! The text is parsed once into a spanned [`DeTable`]; each top-level table, each `[[cameras]]`
//! entry and each of its `[[cameras.zones]]` and `[[cameras.lines]]` is then deserialized on its
//! own into a raw struct (`deny_unknown_fields`), so a mistake in one does not hide mistakes in
//! the others. Serde
//! errors carry a span into the whole text (the spanned values are deserialized directly);
//! semantic checks find their line by walking the table along the key path.
//!
//! A [`Checker`] walks the document; each section's raw struct, checks and tests live in the
//! section's module (`device`, `mqtt`, `detection`, `outbox`, `local`, `health`, `tracking` for
//! `[tracking]` and `[events]`, `cameras`, `shapes` for zones and lines), beside what they share:
//! `table` (one table read on its own, unknown keys, keys it must have), `problems` (lines,
//! syntax errors, invisible characters), `raw` (numbers and secrets as written), `checks`
//! (names, ranges, paths, files, passwords). Like the environment, the file system is handed
//! in: `files` ([`Files`]) is the only module that touches it. `value` ([`check_value`]) runs
//! the same checks on one value alone.

mod cameras;
mod checks;
mod commands;
mod detection;
mod device;
mod files;
mod health;
mod local;
mod mqtt;
mod outbox;
mod problems;
mod raw;
mod shapes;
mod table;
mod tracking;
mod value;

use std::ffi::OsString;
use std::path::Path;

use toml::de::DeTable;

pub use cameras::DEFAULT_IDLE_FPS;
pub use device::DEFAULT_STATE_DIR;
pub use files::{Files, OsFiles};
pub use local::load_local;
pub use mqtt::{DEFAULT_TOPIC_PREFIX, MQTT_PASSWORD_ENV};
pub use value::check_value;

use super::Config;
use super::error::{ConfigError, Problem};
use problems::{invisible_characters, syntax_problem};

const SECTIONS: [&str; 10] = [
    "device",
    "mqtt",
    "detection",
    "health",
    "tracking",
    "events",
    "outbox",
    "local",
    "commands",
    "cameras",
];

/// Reads and validates the configuration file at `path`.
///
/// # Errors
/// [`ConfigError::Read`] when the file cannot be read; [`ConfigError::Invalid`] with every
/// problem found otherwise.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    parse(&read(path)?, path)
}

/// The text of the configuration file at `path`.
fn read(path: &Path) -> Result<String, ConfigError> {
    OsFiles
        .read_to_string(path)
        .map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Validates configuration text. `path` names the file in problems, and relative paths in the
/// file (`password_file`, `ca_file`, `model`, ...) are taken relative to its folder. Reads the
/// environment variable [`MQTT_PASSWORD_ENV`].
///
/// # Errors
/// [`ConfigError::Invalid`] with every problem found, in line order.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_with_files(text, path, &OsFiles)
}

/// [`parse`], with the files the configuration names (password files, certificates) read from
/// `files`: for a command that checks a configuration before the files it names are in place.
///
/// # Errors
/// [`ConfigError::Invalid`] with every problem found, in line order.
pub fn parse_with_files(text: &str, path: &Path, files: &dyn Files) -> Result<Config, ConfigError> {
    parse_with(text, path, &|name| std::env::var_os(name), files)
}

/// [`parse`], with `env` standing in for the process environment and `files` for the file
/// system.
fn parse_with(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
    files: &dyn Files,
) -> Result<Config, ConfigError> {
    check_text(text, path, env, files, |mut checker| {
        let config = checker.config();
        let mut problems = checker.finish();
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => {
                debug_assert!(!problems.is_empty(), "a part was refused without a problem");
                problems.sort_by_key(|p| p.line);
                Err(problems)
            }
        }
    })
}

/// Parses `text` (the file at `path`) and hands `check` a [`Checker`] of the whole of it, which
/// gives what it read or the problems it found.
fn check_text<T>(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
    files: &dyn Files,
    check: impl FnOnce(Checker<'_>) -> Result<T, Vec<Problem>>,
) -> Result<T, ConfigError> {
    let invalid = |problems| ConfigError::Invalid {
        path: path.to_owned(),
        problems,
    };
    let root = DeTable::parse(text).map_err(|e| invalid(vec![syntax_problem(text, &e)]))?;
    let checker = Checker {
        text,
        root: root.get_ref(),
        base_dir: path.parent().unwrap_or(Path::new("")),
        env,
        files,
        scope: Scope::WholeFile,
        problems: Vec::new(),
    };
    check(checker).map_err(invalid)
}

/// Walks the parsed document, collecting problems. Each check returns `None` after recording
/// at least one problem.
struct Checker<'a> {
    text: &'a str,
    root: &'a DeTable<'a>,
    base_dir: &'a Path,
    /// The process environment (a stand-in in tests).
    env: &'a dyn Fn(&str) -> Option<OsString>,
    /// The files the configuration names (a stand-in in tests).
    files: &'a dyn Files,
    scope: Scope,
    problems: Vec<Problem>,
}

/// What the [`Checker`] is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// A whole file: a table without a key it must have is refused.
    WholeFile,
    /// One value alone ([`check_value`]): the keys beside it are not asked for.
    OneValue,
}

impl<'a> Checker<'a> {
    /// The problems found. A value refused because of an invisible character is refused for
    /// that character, named: "` ` is not allowed" makes no sense to whoever cannot see it.
    /// (Values that accept such characters, a client id or a password, stay accepted.)
    fn finish(self) -> Vec<Problem> {
        let mut problems = self.problems;
        for finding in invisible_characters(self.root, "", self.text) {
            if problems.iter().any(|p| p.key == finding.key) {
                problems.retain(|p| p.key != finding.key);
                problems.push(finding);
            }
        }
        problems
    }

    fn config(&mut self) -> Option<Config> {
        for (key, _) in self.root.iter() {
            if !SECTIONS.contains(&key.get_ref().as_ref()) {
                self.problem_at(
                    key.get_ref().to_string(),
                    key.span().start,
                    format!(
                        "unknown key `{}`: expected one of the tables {}",
                        key.get_ref(),
                        SECTIONS.map(|s| format!("`{s}`")).join(", ")
                    ),
                );
            }
        }

        let device = self.device_section();
        let mqtt = self.mqtt_section(device.as_ref().map(|d| &d.id));
        let detection = self
            .optional_section("detection")
            .and_then(|raw| self.detection(raw));
        let health = self
            .optional_section("health")
            .and_then(|raw| self.health(raw));
        let tracking = self
            .optional_section("tracking")
            .and_then(|raw| self.tracking(raw));
        let events = self
            .optional_section("events")
            .and_then(|raw| self.events(raw));
        let outbox = self
            .optional_section("outbox")
            .and_then(|raw| self.outbox(raw, device.as_ref()));
        let local = self.local_section(local::LocalPassword::Read);
        let commands = self.commands_section();
        let cameras = self.cameras();

        Some(Config {
            device: device?,
            mqtt: mqtt?,
            detection: detection?,
            health: health?,
            tracking: tracking?,
            events: events?,
            outbox: outbox?,
            local: local?,
            commands: commands?,
            cameras: cameras?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::files::MemoryFiles;
    use super::*;
    use crate::config::*;
    use crate::detect::ModelChoice;
    use std::path::PathBuf;
    use std::time::Duration;

    /// [`super::parse`] in an environment without [`MQTT_PASSWORD_ENV`], whatever the test
    /// process has.
    pub(super) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        parse_with(text, path, &|_| None, &OsFiles)
    }

    /// [`parse`] of `text` as [`file`], with `files` in place of the file system.
    pub(super) fn parse_in(text: &str, files: &MemoryFiles) -> Result<Config, ConfigError> {
        parse_with(text, file(), &|_| None, files)
    }

    pub(super) const MINIMAL: &str = r#"[device]
site = "bihac-north"
id = "post-07"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[[cameras]]
name = "gate-east"
url = "rtsp://10.0.0.21:554/stream1"
detect_fps = 5
"#;

    pub(super) fn file() -> &'static Path {
        Path::new("/etc/watchpost/watchpost.toml")
    }

    /// MINIMAL with `line` added to `section` (`device`, `mqtt`, `cameras`: the existing table;
    /// others: a new table at the end).
    pub(super) fn with(section: &str, line: &str) -> String {
        match section {
            "cameras" => format!("{MINIMAL}{line}\n"),
            "device" | "mqtt" => MINIMAL.replacen(
                &format!("[{section}]\n"),
                &format!("[{section}]\n{line}\n"),
                1,
            ),
            _ => format!("{MINIMAL}[{section}]\n{line}\n"),
        }
    }

    pub(super) fn problems(text: &str) -> Vec<Problem> {
        match parse(text, file()) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.problems().to_vec(),
        }
    }

    /// The single problem of `text`.
    pub(super) fn problem(text: &str) -> Problem {
        let mut all = problems(text);
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }

    #[test]
    fn minimal_file_gets_every_default() {
        let config = parse(MINIMAL, file()).expect("valid");
        assert_eq!(config.device.site.as_str(), "bihac-north");
        assert_eq!(config.device.id.as_str(), "post-07");
        assert_eq!(config.device.state_dir, Path::new("/var/lib/watchpost"));
        let mqtt = &config.mqtt;
        assert_eq!(
            mqtt.urls,
            [BrokerUrl {
                scheme: MqttScheme::Mqtt,
                host: "127.0.0.1".into(),
                port: 1883
            }]
        );
        assert_eq!(mqtt.client_id, "post-07", "default client id = device id");
        assert_eq!(mqtt.topic_prefix, "watchpost");
        assert_eq!(mqtt.username, None);
        assert_eq!(mqtt.password, None);
        assert_eq!(mqtt.detections_qos, Qos::AtMostOnce);
        assert_eq!(mqtt.keep_alive, Duration::from_secs(30));
        assert_eq!(mqtt.ca_file, None);
        assert_eq!(mqtt.client_cert, None);
        assert!(mqtt.tls_verify);
        assert_eq!(
            config.outbox,
            OutboxConfig {
                dir: PathBuf::from("/var/lib/watchpost/outbox"),
                max_bytes: 256 * 1024 * 1024,
                max_age: Duration::from_secs(168 * 3600),
                when_full: WhenFull::DropOldest,
                sync: OutboxSync::EveryEvent,
            }
        );
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(64));
        assert_eq!(config.detection.model, ModelChoice::Auto);
        assert_eq!(config.detection.ort_lib, None);
        assert_eq!(config.detection.inference_threads, cores);
        assert_eq!(config.detection.max_frame_age, Duration::from_millis(1000));
        assert_eq!(config.health.interval, Duration::from_secs(10));
        assert_eq!(
            config.local.listen,
            Some("127.0.0.1:9750".parse().unwrap()),
            "the local endpoint is on by default, on loopback"
        );
        assert_eq!(config.cameras.len(), 1);
        let camera = &config.cameras[0];
        assert_eq!(camera.name.as_str(), "gate-east");
        assert_eq!(camera.url, "rtsp://10.0.0.21:554/stream1");
        assert_eq!(camera.username, None);
        assert_eq!(camera.password, None);
        assert_eq!(camera.detect_fps, 5.0);
        assert_eq!(camera.idle_fps, 0.5);
        assert!(camera.motion_gate);
        assert_eq!(camera.transport, RtspTransport::Tcp);
        assert_eq!(camera.latency, Duration::from_millis(200));
        assert_eq!(camera.stall_timeout, Duration::from_secs(5));
        assert_eq!(camera.decoder, DecoderChoice::Auto);

        assert!(camera.zones.is_empty());
        assert!(camera.lines.is_empty());
        assert_eq!(config.tracking, TrackingConfig::default());
        assert_eq!(config.events, EventsConfig::default());

        let without_fps = MINIMAL.replace("detect_fps = 5\n", "");
        let config = parse(&without_fps, file()).expect("valid");
        assert_eq!(config.cameras[0].detect_fps, 5.0, "default detect_fps");
        // A camera slower than the default idle rate idles at its own rate.
        let slow = MINIMAL.replace("detect_fps = 5\n", "detect_fps = 0.2\n");
        let config = parse(&slow, file()).expect("valid");
        assert_eq!(config.cameras[0].idle_fps, 0.2);
    }

    #[test]
    fn every_key_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
        std::fs::write(dir.path().join("cam-pw"), "from-file\r\nsecond line\n").unwrap();
        std::fs::write(dir.path().join("client.pem"), "").unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        std::fs::write(dir.path().join("keys/client.key"), "").unwrap();
        let text = r#"
[device]
site = "site_1"
id = "dev-1"
state_dir = "state"
[mqtt]
url = "mqtts://[fd00::7]"
client_id = "Client id 7"
topic_prefix = "border/posts"
username = "agent"
password = "mqtt-pw"
detections_qos = 2
keep_alive_s = 60
ca_file = "ca.pem"
client_cert = "client.pem"
client_key = "keys/client.key"
tls_verify = false
[detection]
model = "/opt/m.toml"
ort_lib = "lib/libonnxruntime.so"
inference_threads = 3
max_frame_age_ms = 250
[health]
interval_s = 30
[local]
listen = "[::1]:9999"
[outbox]
dir = "spool"
max_size_mb = 1024
max_age_h = 0.5
when_full = "drop_newest"
sync = "interval"
sync_interval_ms = 250
[[cameras]]
name = "a"
url = "rtsps://cam-a.local/live"
username = "viewer"
password_file = "cam-pw"
detect_fps = 2.5
transport = "udp"
latency_ms = 0
stall_timeout_s = 300
decoder = "nvv4l2"
[[cameras]]
name = "b"
url = "rtsp://cam-b:8554/x"
"#;
        let config = parse(text, &dir.path().join("watchpost.toml")).expect("valid");
        assert_eq!(config.device.state_dir, dir.path().join("state"));
        let mqtt = &config.mqtt;
        assert_eq!(mqtt.urls.len(), 1);
        assert_eq!(mqtt.urls[0].to_string(), "mqtts://[fd00::7]:8883");
        assert_eq!(mqtt.client_id, "Client id 7");
        assert_eq!(mqtt.topic_prefix, "border/posts");
        assert_eq!(mqtt.username.as_deref(), Some("agent"));
        assert_eq!(mqtt.password.as_ref().map(Secret::expose), Some("mqtt-pw"));
        assert_eq!(mqtt.detections_qos, Qos::ExactlyOnce);
        assert_eq!(mqtt.keep_alive, Duration::from_secs(60));
        assert_eq!(mqtt.ca_file.as_deref(), Some(&*dir.path().join("ca.pem")));
        assert_eq!(
            mqtt.client_cert,
            Some(CertKeyFiles {
                cert: dir.path().join("client.pem"),
                key: dir.path().join("keys/client.key"),
            })
        );
        assert!(!mqtt.tls_verify);
        assert_eq!(
            config.outbox,
            OutboxConfig {
                dir: dir.path().join("spool"),
                max_bytes: 1024 * 1024 * 1024,
                max_age: Duration::from_secs(1800),
                when_full: WhenFull::DropNewest,
                sync: OutboxSync::Interval(Duration::from_millis(250)),
            }
        );
        assert_eq!(
            config.detection.model,
            ModelChoice::Manifest(PathBuf::from("/opt/m.toml"))
        );
        assert_eq!(
            config.detection.ort_lib,
            Some(dir.path().join("lib/libonnxruntime.so"))
        );
        assert_eq!(config.detection.inference_threads, 3);
        assert_eq!(config.detection.max_frame_age, Duration::from_millis(250));
        assert_eq!(config.health.interval, Duration::from_secs(30));
        assert_eq!(config.local.listen, Some("[::1]:9999".parse().unwrap()));
        let a = &config.cameras[0];
        assert_eq!(a.username.as_deref(), Some("viewer"));
        assert_eq!(
            a.password.as_ref().map(Secret::expose),
            Some("from-file"),
            "first line, line end stripped"
        );
        assert_eq!(a.detect_fps, 2.5);
        assert_eq!(a.transport, RtspTransport::Udp);
        assert_eq!(a.latency, Duration::ZERO);
        assert_eq!(a.stall_timeout, Duration::from_secs(300));
        assert_eq!(a.decoder, DecoderChoice::Named("nvv4l2".into()));
        assert_eq!(config.cameras[1].url, "rtsp://cam-b:8554/x");

        let debug = format!("{config:?}");
        for secret in ["mqtt-pw", "from-file"] {
            assert!(!debug.contains(secret), "{secret} in Debug output");
        }
    }

    #[test]
    fn every_problem_at_once_in_line_order() {
        let text = r#"[device]
site = "bihac north"
id = "post-07"
[mqtt]
url = "http://broker"
keep_alive_s = 1
[health]
interval_s = "often"
[[cameras]]
name = "gate-east"
url = "rtsp://cam-1/s"
[[cameras]]
name = "gate-east"
url = "rtsp:///s"
detect_fps = 0
[[cameras]]
name = "gate-west"
colour = "red"
"#;
        let problems: Vec<_> = problems(text)
            .into_iter()
            .map(|p| (p.line, p.key))
            .collect();
        let expected: Vec<(Option<usize>, String)> = [
            (2, "device.site"),
            (5, "mqtt.url"),
            (6, "mqtt.keep_alive_s"),
            (8, "health.interval_s"),
            (13, "cameras[1].name"),
            (14, "cameras[1].url"),
            (15, "cameras[1].detect_fps"),
            // The unknown key no longer hides that the camera has no URL.
            (16, "cameras[2]"),
            (18, "cameras[2].colour"),
        ]
        .into_iter()
        .map(|(l, k)| (Some(l), k.to_owned()))
        .collect();
        assert_eq!(problems, expected);
        let err = parse(text, Path::new("w.toml")).unwrap_err().to_string();
        assert!(
            err.contains(
                "w.toml:13: cameras[1].name: `gate-east` is already the name of cameras[0]"
            ),
            "{err}"
        );
        assert_eq!(err.lines().count(), expected.len());
    }

    #[test]
    fn load_reads_the_file_or_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watchpost.toml");
        let err = load(&path).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(err.problems().is_empty());
        std::fs::write(&path, MINIMAL).unwrap();
        assert_eq!(load(&path).unwrap().cameras.len(), 1);
    }

    #[test]
    fn the_deploy_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/watchpost.toml");
        let config = load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.cameras.len(), 1);
        assert_eq!(config.mqtt.urls.len(), 1);
        assert_eq!(config.mqtt.urls[0].to_string(), "mqtt://127.0.0.1:1883");
        assert_eq!(
            config.outbox,
            OutboxConfig::in_state_dir(&config.device.state_dir)
        );
        assert_eq!(config.tracking, TrackingConfig::default());
        assert_eq!(config.events, EventsConfig::default());
        assert_eq!(config.local, LocalConfig::default());
    }

    /// The commented examples of `deploy/watchpost.toml` (`#[[cameras.zones]]`, `#key = ...`),
    /// uncommented, are valid and give the documented defaults.
    #[test]
    fn the_deploy_example_uncommented_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/watchpost.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        // Uncomment the keys of the sections tracking and events and the zone and line examples.
        let uncommented = |text: &str, skip: &[&str]| {
            let mut out = String::new();
            let mut section = "";
            for line in text.lines() {
                let trimmed = line.trim_start_matches('#');
                if trimmed.starts_with('[') {
                    section = trimmed;
                }
                let example_table = line.starts_with('#')
                    && matches!(trimmed, "[[cameras.zones]]" | "[[cameras.lines]]");
                let in_example = matches!(
                    section,
                    "[tracking]"
                        | "[events]"
                        | "[outbox]"
                        | "[local]"
                        | "[commands]"
                        | "[[cameras.zones]]"
                        | "[[cameras.lines]]"
                );
                let is_key = line.starts_with('#')
                    && trimmed.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty()
                            && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                            && !skip.contains(&k)
                    });
                if example_table || (in_example && is_key) {
                    out.push_str(trimmed);
                } else {
                    out.push_str(line);
                }
                out.push('\n');
            }
            out
        };
        // sync_interval_ms is refused unless sync = "interval": left commented at first. The
        // example key file, page password file and certificate do not exist here
        // (`commands_from_tables` checks keys, `local_from_table` the password file,
        // `local_tls_and_allowed_hosts_from_table` the certificate).
        let not_here = ["trusted_keys", "password_file", "tls_cert", "tls_key"];
        let out = uncommented(&text, &[&["sync_interval_ms"], &not_here[..]].concat());
        let config = parse(&out, &path).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(config.tracking, TrackingConfig::default(), "{out}");
        assert_eq!(config.events, EventsConfig::default(), "{out}");
        assert_eq!(
            config.outbox,
            OutboxConfig::in_state_dir(Path::new(DEFAULT_STATE_DIR)),
            "{out}"
        );
        assert!(out.contains("\nmax_size_mb = 256\n"), "{out}");
        assert!(out.contains("\nlisten = \"127.0.0.1:9750\"\n"), "{out}");
        assert_eq!(
            config.local,
            LocalConfig {
                allowed_hosts: vec!["post-7.lan".to_owned()],
                ..LocalConfig::default()
            },
            "{out}"
        );
        assert_eq!(
            config.commands.disabled,
            [crate::command::CommandName::ConfigApply].into(),
            "{out}"
        );
        let camera = &config.cameras[0];
        assert_eq!(camera.zones.len(), 1, "{out}");
        assert_eq!(camera.lines.len(), 1, "{out}");

        // With sync = "interval", its documented default interval.
        let with_interval = text.replacen("#sync = \"every_event\"", "#sync = \"interval\"", 1);
        assert_ne!(with_interval, text);
        let out = uncommented(&with_interval, &not_here);
        let config = parse(&out, &path).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(
            config.outbox.sync,
            OutboxSync::Interval(Duration::from_secs(1)),
            "{out}"
        );
    }
}
