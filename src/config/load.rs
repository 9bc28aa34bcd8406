//! TOML text → [`Config`], reporting every problem at once.
//!
//! The text is parsed once into a spanned [`DeTable`]; each top-level table, each `[[cameras]]`
//! entry and each of its `[[cameras.zones]]` and `[[cameras.lines]]` is then deserialized on its
//! own into a raw struct (`deny_unknown_fields`), so a mistake in one does not hide mistakes in
//! the others. Serde
//! errors carry a span into the whole text (the spanned values are deserialized directly);
//! semantic checks find their line by walking the table along the key path.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ffi::OsString;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, Problem};
use super::url::{Url, parse_url, redact_url};
use super::{
    BrokerUrl, CameraConfig, ClientCertFiles, Config, DecoderChoice, DetectionConfig, DeviceConfig,
    EventKind, EventsConfig, HealthConfig, LineConfig, LocalConfig, MqttConfig, MqttScheme,
    OutboxConfig, OutboxSync, Qos, RtspTransport, Secret, SnapshotMode, TopicName, TrackingConfig,
    WhenFull, ZoneConfig,
};
use crate::detect::{CoarseClass, ModelChoice};
use crate::geometry::{Point, Polygon, Polyline};

/// Where the agent keeps its state unless `device.state_dir` says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/watchpost";
/// The first topic level unless `mqtt.topic_prefix` says otherwise.
pub const DEFAULT_TOPIC_PREFIX: &str = "watchpost";
/// The environment variable that supplies the MQTT password when the file sets neither
/// `mqtt.password` nor `mqtt.password_file` (ignored when unset or empty).
pub const MQTT_PASSWORD_ENV: &str = "WATCHPOST_MQTT_PASSWORD";
/// At most this many broker URLs in `mqtt.url`.
const MAX_BROKER_URLS: usize = 16;
/// `idle_fps` when not set (lowered to `detect_fps` if that is lower).
pub const DEFAULT_IDLE_FPS: f64 = 0.5;

const SECTIONS: [&str; 9] = [
    "device",
    "mqtt",
    "detection",
    "health",
    "tracking",
    "events",
    "outbox",
    "local",
    "cameras",
];

/// Reads and validates the configuration file at `path`.
///
/// # Errors
/// [`ConfigError::Read`] when the file cannot be read; [`ConfigError::Invalid`] with every
/// problem found otherwise.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Validates configuration text. `path` names the file in problems, and relative paths in the
/// file (`password_file`, `ca_file`, `model`, ...) are taken relative to its folder. Reads the
/// environment variable [`MQTT_PASSWORD_ENV`].
///
/// # Errors
/// [`ConfigError::Invalid`] with every problem found, in line order.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_with_env(text, path, &|name| std::env::var_os(name))
}

/// Reads only the `[local]` table of the configuration file at `path`, checked as [`load`]
/// checks it; the rest of the file is not looked at. For `watchpost status`, which needs only
/// the endpoint's address and may run as a user who cannot read the password files the rest of
/// the configuration names.
///
/// # Errors
/// [`ConfigError::Read`] when the file cannot be read; [`ConfigError::Invalid`] when it is not
/// TOML or its `[local]` table is refused.
pub fn load_local(path: &Path) -> Result<LocalConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_local(&text, path)
}

/// [`load_local`] on text.
fn parse_local(text: &str, path: &Path) -> Result<LocalConfig, ConfigError> {
    let invalid = |problems| ConfigError::Invalid {
        path: path.to_owned(),
        problems,
    };
    let root = DeTable::parse(text).map_err(|e| invalid(vec![syntax_problem(text, &e)]))?;
    let mut checker = Checker {
        text,
        root: root.get_ref(),
        base_dir: path.parent().unwrap_or(Path::new("")),
        env: &|_| None,
        problems: Vec::new(),
    };
    let local = checker.local_section();
    match local {
        Some(local) if checker.problems.is_empty() => Ok(local),
        _ => Err(invalid(checker.problems)),
    }
}

/// [`parse`], with `env` standing in for the process environment.
fn parse_with_env(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Config, ConfigError> {
    let invalid = |problems| ConfigError::Invalid {
        path: path.to_owned(),
        problems,
    };
    let root = DeTable::parse(text).map_err(|e| invalid(vec![syntax_problem(text, &e)]))?;
    let mut checker = Checker {
        text,
        root: root.get_ref(),
        base_dir: path.parent().unwrap_or(Path::new("")),
        env,
        problems: Vec::new(),
    };
    let invisible = invisible_characters(root.get_ref(), "", text);
    let config = checker.config();
    let mut problems = checker.problems;
    // A value refused because of an invisible character is refused for that character, named:
    // "` ` is not allowed" makes no sense to whoever cannot see it. (Values that accept such
    // characters, a client id or a password, stay accepted.)
    for finding in invisible {
        if problems.iter().any(|p| p.key == finding.key) {
            problems.retain(|p| p.key != finding.key);
            problems.push(finding);
        }
    }
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => {
            debug_assert!(!problems.is_empty(), "a part was refused without a problem");
            problems.sort_by_key(|p| p.line);
            Err(invalid(problems))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw form: exactly what the file says. No `Debug`: some fields are passwords.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    site: String,
    id: String,
    state_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMqtt {
    url: RawUrls,
    client_id: Option<String>,
    topic_prefix: Option<String>,
    username: Option<String>,
    password: Option<RawSecret>,
    password_file: Option<PathBuf>,
    detections_qos: Option<Int>,
    keep_alive_s: Option<Int>,
    ca_file: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    tls_verify: Option<bool>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutbox {
    dir: Option<PathBuf>,
    max_size_mb: Option<Int>,
    max_age_h: Option<Float>,
    when_full: Option<String>,
    sync: Option<String>,
    sync_interval_ms: Option<Int>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetection {
    model: Option<String>,
    ort_lib: Option<PathBuf>,
    inference_threads: Option<Int>,
    max_frame_age_ms: Option<Int>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocal {
    listen: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    interval_s: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCamera {
    name: String,
    url: String,
    username: Option<String>,
    password: Option<RawSecret>,
    password_file: Option<PathBuf>,
    detect_fps: Option<Float>,
    idle_fps: Option<Float>,
    motion_gate: Option<bool>,
    transport: Option<String>,
    latency_ms: Option<Int>,
    stall_timeout_s: Option<Int>,
    decoder: Option<String>,
    /// Checked on their own, item by item: see [`Checker::zones`].
    #[serde(rename = "zones")]
    _zones: Option<IgnoredAny>,
    /// Checked on their own, item by item: see [`Checker::lines`].
    #[serde(rename = "lines")]
    _lines: Option<IgnoredAny>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTracking {
    min_hits: Option<Int>,
    max_age_s: Option<Float>,
    high_score: Option<Float>,
    match_iou: Option<Float>,
    inertia: Option<Int>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    snapshots: Option<String>,
    snapshot_kinds: Option<Vec<String>>,
    snapshot_max_width: Option<Int>,
    snapshot_quality: Option<Int>,
    metadata_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    name: String,
    points: Vec<RawPoint>,
    classes: Option<Vec<String>>,
    loiter_s: Option<Float>,
    inertia: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    name: String,
    points: Vec<RawPoint>,
    direction_names: Option<Vec<String>>,
    classes: Option<Vec<String>>,
    inertia: Option<Int>,
}

/// `[x, y]`: exactly two numbers.
struct RawPoint(f64, f64);

impl<'de> Deserialize<'de> for RawPoint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RawPoint, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawPoint;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a point [x, y]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawPoint, A::Error> {
                let mut numbers = Vec::with_capacity(2);
                while let Some(Float(v)) = seq.next_element::<Float>()? {
                    numbers.push(v);
                }
                match numbers[..] {
                    [x, y] => Ok(RawPoint(x, y)),
                    _ => Err(serde::de::Error::custom(format!(
                        "a point is [x, y], got {} number{}",
                        numbers.len(),
                        if numbers.len() == 1 { "" } else { "s" }
                    ))),
                }
            }
        }
        deserializer.deserialize_seq(Visitor)
    }
}

/// `url = "mqtt://..."` or `url = ["mqtts://a...", "mqtts://b..."]`.
enum RawUrls {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for RawUrls {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RawUrls, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawUrls;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a broker URL or a list of broker URLs")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawUrls, E> {
                Ok(RawUrls::One(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawUrls, A::Error> {
                let mut urls = Vec::new();
                while let Some(url) = seq.next_element::<String>()? {
                    urls.push(url);
                }
                Ok(RawUrls::Many(urls))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// An integer; "expected a whole number" when it is not. Held wider than any setting needs, so
/// that a number too large for its setting is refused by its range, in words, not by a type.
#[derive(Clone, Copy)]
struct Int(i128);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Int, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Int, E> {
                Ok(Int(i128::try_from(v).unwrap_or(i128::MAX)))
            }
        }
        deserializer.deserialize_i64(Visitor)
    }
}

/// A number, whole or not; "expected a number" when it is not.
#[derive(Clone, Copy)]
struct Float(f64);

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Float, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Float;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Float, E> {
                Ok(Float(v))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
        }
        deserializer.deserialize_f64(Visitor)
    }
}

/// A password as written in the file. A value of the wrong type is refused without quoting it.
struct RawSecret(String);

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RawSecret, D::Error> {
        const NOT_SHOWN: &str = "must be a string (the value is not shown)";
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawSecret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSecret, E> {
                Ok(RawSecret(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawSecret, E> {
                Ok(RawSecret(v))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_char<E: serde::de::Error>(self, _: char) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Checking.

/// Walks the parsed document, collecting problems. Each check returns `None` after recording
/// at least one problem.
struct Checker<'a> {
    text: &'a str,
    root: &'a DeTable<'a>,
    base_dir: &'a Path,
    /// The process environment (a stand-in in tests).
    env: &'a dyn Fn(&str) -> Option<OsString>,
    problems: Vec<Problem>,
}

/// What deserializing one table gave.
enum Part<T> {
    Missing,
    Refused,
    Found(T),
}

impl<'a> Checker<'a> {
    fn config(&mut self) -> Option<Config> {
        for (key, _) in self.root.iter() {
            if !SECTIONS.contains(&key.get_ref().as_ref()) {
                self.problem_at(
                    key.get_ref().to_string(),
                    key.span().start,
                    format!(
                        "unknown key `{}`: expected one of the tables `device`, `mqtt`, \
                         `detection`, `health`, `tracking`, `events`, `outbox`, `local`, \
                         `cameras`",
                        key.get_ref()
                    ),
                );
            }
        }

        let device = match self.section::<RawDevice>("device") {
            Part::Found(raw) => self.device(raw),
            Part::Missing => {
                self.problem("device", "missing: a [device] table with `site` and `id`");
                None
            }
            Part::Refused => None,
        };
        let mqtt = match self.section::<RawMqtt>("mqtt") {
            Part::Found(raw) => self.mqtt(raw, device.as_ref().map(|d| &d.id)),
            Part::Missing => {
                self.problem("mqtt", "missing: an [mqtt] table with at least `url`");
                None
            }
            Part::Refused => None,
        };
        let detection = match self.section::<RawDetection>("detection") {
            Part::Found(raw) => self.detection(raw),
            Part::Missing => self.detection(RawDetection::default()),
            Part::Refused => None,
        };
        let health = match self.section::<RawHealth>("health") {
            Part::Found(raw) => self.health(raw),
            Part::Missing => self.health(RawHealth::default()),
            Part::Refused => None,
        };
        let tracking = match self.section::<RawTracking>("tracking") {
            Part::Found(raw) => self.tracking(raw),
            Part::Missing => self.tracking(RawTracking::default()),
            Part::Refused => None,
        };
        let events = match self.section::<RawEvents>("events") {
            Part::Found(raw) => self.events(raw),
            Part::Missing => self.events(RawEvents::default()),
            Part::Refused => None,
        };
        let outbox = match self.section::<RawOutbox>("outbox") {
            Part::Found(raw) => self.outbox(raw, device.as_ref()),
            Part::Missing => self.outbox(RawOutbox::default(), device.as_ref()),
            Part::Refused => None,
        };
        let local = self.local_section();
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
            cameras: cameras?,
        })
    }

    /// `[local]`, defaults when it is missing.
    fn local_section(&mut self) -> Option<LocalConfig> {
        match self.section::<RawLocal>("local") {
            Part::Found(raw) => self.local(raw),
            Part::Missing => self.local(RawLocal::default()),
            Part::Refused => None,
        }
    }

    /// Deserializes the top-level table `name` on its own.
    fn section<T: DeserializeOwned>(&mut self, name: &str) -> Part<T> {
        let root = self.root;
        match root.get(name) {
            None => Part::Missing,
            Some(value) => match self.deserialize(name, value) {
                Some(raw) => Part::Found(raw),
                None => Part::Refused,
            },
        }
    }

    /// Deserializes one table (a section or a camera) named `prefix` in problems.
    fn deserialize<T: DeserializeOwned>(
        &mut self,
        prefix: &str,
        value: &Spanned<DeValue<'a>>,
    ) -> Option<T> {
        let DeValue::Table(table) = value.get_ref() else {
            self.problem_at(
                prefix,
                value.span().start,
                format!("must be a table, got {}", kind(value.get_ref())),
            );
            return None;
        };
        // Every unknown key of the table is said, and the table is read without them, so that
        // its other problems are said too (serde's `deny_unknown_fields` stops at the first).
        let unknown: Vec<_> = match field_names::<T>() {
            Some(fields) => table
                .keys()
                .filter(|k| !fields.contains(&k.get_ref().as_ref()))
                .collect(),
            None => Vec::new(),
        };
        let known = if unknown.is_empty() {
            value.clone()
        } else {
            let fields = field_names::<T>().unwrap_or_default();
            for key in &unknown {
                self.problem_at(
                    format!("{prefix}.{}", key.get_ref()),
                    key.span().start,
                    unknown_field(key.get_ref(), fields),
                );
            }
            let mut known = table.clone();
            for key in &unknown {
                known.remove(key.get_ref().as_ref());
            }
            Spanned::new(value.span(), DeValue::Table(known))
        };
        match T::deserialize(known.into_deserializer()) {
            Ok(raw) => Some(raw),
            Err(e) => {
                let message = one_line(e.message());
                match e.span() {
                    Some(span) => {
                        // The key the error is about: the one whose key or value holds the span.
                        let key = table
                            .iter()
                            .find(|(k, v)| {
                                k.span().contains(&span.start) || v.span().contains(&span.start)
                            })
                            .map_or_else(
                                || prefix.to_owned(),
                                |(k, _)| format!("{prefix}.{}", k.get_ref()),
                            );
                        self.problem_at(key, span.start, message);
                    }
                    None => self.problem(prefix, message),
                }
                None
            }
        }
    }

    fn device(&mut self, raw: RawDevice) -> Option<DeviceConfig> {
        let site = self.topic_name("device.site", &raw.site);
        let id = self.topic_name("device.id", &raw.id);
        let state_dir = match raw.state_dir {
            Some(dir) => self.path("device.state_dir", dir),
            None => Some(PathBuf::from(DEFAULT_STATE_DIR)),
        };
        Some(DeviceConfig {
            site: site?,
            id: id?,
            state_dir: state_dir?,
        })
    }

    fn mqtt(&mut self, raw: RawMqtt, device_id: Option<&TopicName>) -> Option<MqttConfig> {
        let urls = self.broker_urls(raw.url);
        // Some(true): mqtts://; None: the URLs are refused (and said so already).
        let tls = urls
            .as_ref()
            .map(|urls| urls.iter().all(|u| u.scheme == MqttScheme::Mqtts));
        let client_id = match raw.client_id {
            Some(id) => self.client_id(id),
            // None: the device id is refused, and said so already.
            None => device_id.map(ToString::to_string),
        };
        let topic_prefix =
            self.topic_prefix(raw.topic_prefix.as_deref().unwrap_or(DEFAULT_TOPIC_PREFIX));
        let from_env = raw.password.is_none() && raw.password_file.is_none();
        let password = if from_env {
            self.password_from_env()
        } else {
            self.password("mqtt", raw.password, raw.password_file)
        };
        if raw.username.is_none() && matches!(password, Some(Some(_))) {
            let message = if from_env {
                format!(
                    "the environment variable {MQTT_PASSWORD_ENV} sets a password but there is no \
                     user name: add `username` (or unset {MQTT_PASSWORD_ENV})"
                )
            } else {
                "a password is set but no user name: add `username`".to_owned()
            };
            self.problem("mqtt.username", message);
        }
        let detections_qos = self
            .int("mqtt.detections_qos", raw.detections_qos, 0..=2, 0)
            .map(|q| match q {
                0 => Qos::AtMostOnce,
                1 => Qos::AtLeastOnce,
                _ => Qos::ExactlyOnce,
            });
        let keep_alive = self.seconds("mqtt.keep_alive_s", raw.keep_alive_s, 5..=3600, 30);
        let ca_file = match raw.ca_file {
            Some(file) => self.existing_file("mqtt.ca_file", file).map(Some),
            None => Some(None),
        };
        let client_cert = self.client_cert(raw.client_cert, raw.client_key, tls);
        let tls_verify = raw.tls_verify.unwrap_or(true);
        if !tls_verify && tls == Some(false) {
            self.problem(
                "mqtt.tls_verify",
                "`tls_verify = false` is about the certificate of an mqtts:// broker, and the \
                 broker URL is mqtt:// (no TLS): remove `tls_verify` or use mqtts://",
            );
            return None;
        }
        Some(MqttConfig {
            urls: urls?,
            client_id: client_id?,
            topic_prefix: topic_prefix?,
            username: raw.username,
            password: password?,
            detections_qos: detections_qos?,
            keep_alive: keep_alive?,
            ca_file: ca_file?,
            client_cert: client_cert?,
            tls_verify,
        })
    }

    /// The MQTT password from [`MQTT_PASSWORD_ENV`]; `Some(None)` when it is unset or empty.
    fn password_from_env(&mut self) -> Option<Option<Secret>> {
        match (self.env)(MQTT_PASSWORD_ENV) {
            None => Some(None),
            Some(value) if value.is_empty() => Some(None),
            Some(value) => match value.into_string() {
                Ok(password) => Some(Some(Secret::new(password))),
                Err(_) => {
                    self.problem(
                        "mqtt.password",
                        format!(
                            "the environment variable {MQTT_PASSWORD_ENV} is not valid UTF-8 \
                             (the value is not shown)"
                        ),
                    );
                    None
                }
            },
        }
    }

    /// `client_cert` and `client_key`: both or neither, existing files, only over TLS (`tls`:
    /// the broker URLs are mqtts://; `None` when they were refused).
    fn client_cert(
        &mut self,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        tls: Option<bool>,
    ) -> Option<Option<ClientCertFiles>> {
        match (cert, key) {
            (None, None) => Some(None),
            (Some(_), None) => {
                self.problem(
                    "mqtt.client_cert",
                    "`client_cert` is set but `client_key` is not: set both (the certificate and \
                     its private key) or neither",
                );
                None
            }
            (None, Some(_)) => {
                self.problem(
                    "mqtt.client_key",
                    "`client_key` is set but `client_cert` is not: set both (the certificate and \
                     its private key) or neither",
                );
                None
            }
            (Some(cert), Some(key)) => {
                let cert = self.existing_file("mqtt.client_cert", cert);
                let key = self.existing_file("mqtt.client_key", key);
                if tls == Some(false) {
                    self.problem(
                        "mqtt.client_cert",
                        "a client certificate is only sent over TLS, and the broker URL is \
                         mqtt://: use mqtts:// or remove `client_cert` and `client_key`",
                    );
                    return None;
                }
                Some(Some(ClientCertFiles {
                    cert: cert?,
                    key: key?,
                }))
            }
        }
    }

    fn detection(&mut self, raw: RawDetection) -> Option<DetectionConfig> {
        let model = match raw.model {
            Some(value) => match ModelChoice::parse(&value, self.base_dir) {
                Ok(choice) => Some(choice),
                Err(message) => {
                    self.problem("detection.model", message);
                    None
                }
            },
            None => Some(ModelChoice::Auto),
        };
        let ort_lib = match raw.ort_lib {
            Some(path) => self.path("detection.ort_lib", path).map(Some),
            None => Some(None),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(64));
        let inference_threads = self.int(
            "detection.inference_threads",
            raw.inference_threads,
            1..=64,
            i64::try_from(cores).unwrap_or(1),
        );
        let max_frame_age = self
            .int(
                "detection.max_frame_age_ms",
                raw.max_frame_age_ms,
                50..=60_000,
                1000,
            )
            .map(millis);
        Some(DetectionConfig {
            model: model?,
            ort_lib: ort_lib?,
            inference_threads: usize::try_from(inference_threads?).ok()?,
            max_frame_age: max_frame_age?,
        })
    }

    fn outbox(&mut self, raw: RawOutbox, device: Option<&DeviceConfig>) -> Option<OutboxConfig> {
        let dir = match raw.dir {
            Some(dir) => self.path("outbox.dir", dir),
            // None: the device is refused, and said so already.
            None => device.map(|d| OutboxConfig::in_state_dir(&d.state_dir).dir),
        };
        let default_mb = OutboxConfig::DEFAULT_MAX_BYTES / MIB;
        let max_size_mb = self.int(
            "outbox.max_size_mb",
            raw.max_size_mb,
            1..=1_048_576,
            i64::try_from(default_mb).unwrap_or(256),
        );
        let max_age = self
            .float(
                "outbox.max_age_h",
                raw.max_age_h,
                0.01..=8760.0,
                OutboxConfig::DEFAULT_MAX_AGE.as_secs_f64() / 3600.0,
            )
            .map(|h| Duration::from_secs_f64(h * 3600.0));
        let when_full = match raw.when_full.as_deref() {
            None => Some(WhenFull::DropOldest),
            Some(name) => {
                let policy = WhenFull::parse(name);
                if policy.is_none() {
                    let message = format!(
                        "`{name}` is not a choice: use {}",
                        one_of(WhenFull::ALL.map(WhenFull::as_str))
                    );
                    self.problem("outbox.when_full", message);
                }
                policy
            }
        };
        let sync = match raw.sync.as_deref() {
            None | Some("every_event") => Some(OutboxSync::EveryEvent),
            Some("never") => Some(OutboxSync::Never),
            Some("interval") => self
                .int(
                    "outbox.sync_interval_ms",
                    raw.sync_interval_ms,
                    10..=60_000,
                    1000,
                )
                .map(|ms| OutboxSync::Interval(millis(ms))),
            Some(other) => {
                let message = format!(
                    "`{other}` is not a sync policy: use {}",
                    one_of(OutboxSync::NAMES)
                );
                self.problem("outbox.sync", message);
                None
            }
        };
        if let Some(sync) = sync
            && sync.as_str() != "interval"
            && raw.sync_interval_ms.is_some()
        {
            let shown = match raw.sync {
                Some(_) => format!("`{}`", sync.as_str()),
                None => format!("`{}` (the default)", sync.as_str()),
            };
            self.problem(
                "outbox.sync_interval_ms",
                format!(
                    "only used with sync = \"interval\", and sync is {shown}: remove \
                     `sync_interval_ms` or set sync = \"interval\""
                ),
            );
            return None;
        }
        Some(OutboxConfig {
            dir: dir?,
            max_bytes: u64::try_from(max_size_mb?).ok()? * MIB,
            max_age: max_age?,
            when_full: when_full?,
            sync: sync?,
        })
    }

    /// `listen`: a loopback address with a port, or `""` for no endpoint.
    fn local(&mut self, raw: RawLocal) -> Option<LocalConfig> {
        const KEY: &str = "local.listen";
        let Some(text) = raw.listen else {
            return Some(LocalConfig::default());
        };
        if text.is_empty() {
            return Some(LocalConfig { listen: None });
        }
        let message = match text.parse::<std::net::SocketAddr>() {
            Err(_) => format!(
                "`{text}` is not an address with a port: write it as `127.0.0.1:9750` (or \
                 \"\" to turn the local endpoint off)"
            ),
            Ok(addr) if !addr.ip().is_loopback() => format!(
                "`{text}` is not a loopback address: the local endpoint has no authentication \
                 and must only be reachable from this device; use 127.0.0.1 or [::1] (or \"\" \
                 to turn it off)"
            ),
            Ok(addr) if addr.port() == 0 => format!(
                "`{text}`: port 0 would be a different port at every start, where `watchpost \
                 status` cannot find it; choose a port such as 9750"
            ),
            Ok(addr) => return Some(LocalConfig { listen: Some(addr) }),
        };
        self.problem(KEY, message);
        None
    }

    fn health(&mut self, raw: RawHealth) -> Option<HealthConfig> {
        let interval = self.seconds("health.interval_s", raw.interval_s, 1..=3600, 10)?;
        Some(HealthConfig { interval })
    }

    fn cameras(&mut self) -> Option<Vec<CameraConfig>> {
        let root = self.root;
        let Some((key, value)) = root.get_key_value("cameras") else {
            self.problem(
                "cameras",
                "missing: at least one [[cameras]] table with `name` and `url`",
            );
            return None;
        };
        let DeValue::Array(items) = value.get_ref() else {
            self.problem_at(
                "cameras",
                key.span().start,
                format!(
                    "must be written as [[cameras]] tables, one per camera, got {}",
                    kind(value.get_ref())
                ),
            );
            return None;
        };
        if items.is_empty() {
            self.problem_at("cameras", key.span().start, "at least one camera is needed");
            return None;
        }
        let mut names = HashMap::new();
        let mut cameras = Vec::with_capacity(items.len());
        let mut all_good = true;
        for (i, item) in items.iter().enumerate() {
            let camera = self
                .deserialize::<RawCamera>(&format!("cameras[{i}]"), item)
                .and_then(|raw| self.camera(i, raw, &mut names));
            // Zones and lines are checked even when the rest of the camera is refused.
            let mut shape_names = HashMap::new();
            let zones = self.zones(i, item, &mut shape_names);
            let lines = self.lines(i, item, &mut shape_names);
            match (camera, zones, lines) {
                (Some(camera), Some(zones), Some(lines)) => cameras.push(CameraConfig {
                    zones,
                    lines,
                    ..camera
                }),
                _ => all_good = false,
            }
        }
        all_good.then_some(cameras)
    }

    fn camera(
        &mut self,
        i: usize,
        raw: RawCamera,
        names: &mut HashMap<TopicName, usize>,
    ) -> Option<CameraConfig> {
        let prefix = format!("cameras[{i}]");
        let key = |field: &str| format!("{prefix}.{field}");

        let name = self.topic_name(&key("name"), &raw.name);
        if let Some(name) = &name {
            match names.entry(name.clone()) {
                Entry::Occupied(first) => {
                    let message = format!(
                        "`{name}` is already the name of cameras[{}]; camera names must differ",
                        first.get()
                    );
                    self.problem(key("name"), message);
                }
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }

        let has_credential_fields =
            raw.username.is_some() || raw.password.is_some() || raw.password_file.is_some();
        let url = self.rtsp_url(&key("url"), &raw.url);
        let field_password = self.password(&prefix, raw.password, raw.password_file);
        let credentials = match (url.as_ref(), field_password) {
            (Some(url), Some(field_password)) => {
                if !url.has_credentials() {
                    Some((raw.username, field_password))
                } else if has_credential_fields {
                    self.problem(
                        key("url"),
                        format!(
                            "`{}` has a user name or password in it, and `username`, `password` \
                             or `password_file` is set too: keep them in one place",
                            redact_url(&raw.url)
                        ),
                    );
                    None
                } else {
                    Some((url.username.clone(), url.password.clone()))
                }
            }
            _ => None,
        };
        if let Some((None, Some(_))) = &credentials {
            self.problem(
                key("username"),
                "a password is set but no user name: add `username` (or `user@` in the URL)",
            );
        }

        let detect_fps = match raw.detect_fps {
            None => Some(5.0),
            Some(Float(fps)) if fps > 0.0 && fps <= 60.0 => Some(fps),
            Some(Float(fps)) => {
                self.problem(
                    key("detect_fps"),
                    format!("must be more than 0 and at most 60, got {fps}"),
                );
                None
            }
        };
        let idle_fps = match (raw.idle_fps, detect_fps) {
            (None, Some(fps)) => Some(DEFAULT_IDLE_FPS.min(fps)),
            (None, None) => None,
            (Some(Float(idle)), Some(fps)) if (0.0..=fps).contains(&idle) => Some(idle),
            (Some(Float(idle)), detect_fps) => {
                let most = detect_fps.unwrap_or(60.0);
                if !(0.0..=most).contains(&idle) {
                    self.problem(
                        key("idle_fps"),
                        format!("must be between 0 (never) and detect_fps ({most}), got {idle}"),
                    );
                }
                None
            }
        };
        let transport = match raw.transport.as_deref() {
            None | Some("tcp") => Some(RtspTransport::Tcp),
            Some("udp") => Some(RtspTransport::Udp),
            Some(other) => {
                self.problem(
                    key("transport"),
                    format!("`{other}` is not a transport: use `tcp` or `udp`"),
                );
                None
            }
        };
        let latency = self
            .int(
                &key("latency_ms"),
                raw.latency_ms,
                0..=10_000,
                CameraConfig::DEFAULT_LATENCY_MS,
            )
            .map(millis);
        let stall_timeout = self.seconds(&key("stall_timeout_s"), raw.stall_timeout_s, 1..=300, 5);
        let decoder = match raw.decoder.as_deref() {
            None | Some("auto") => Some(DecoderChoice::Auto),
            Some(name)
                if !name.is_empty()
                    && name.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    }) =>
            {
                Some(DecoderChoice::Named(name.to_owned()))
            }
            Some(other) => {
                self.problem(
                    key("decoder"),
                    format!(
                        "`{other}` is not a decoder: use `auto` or a template name of lower-case \
                         letters, digits, `-` and `_` (for example `software`)"
                    ),
                );
                None
            }
        };

        let (username, password) = credentials?;
        #[allow(clippy::cast_possible_truncation)]
        Some(CameraConfig {
            name: name?,
            url: url?.without_credentials(),
            username,
            password,
            detect_fps: detect_fps? as f32,
            idle_fps: idle_fps? as f32,
            motion_gate: raw.motion_gate.unwrap_or(true),
            transport: transport?,
            latency: latency?,
            stall_timeout: stall_timeout?,
            decoder: decoder?,
            zones: Vec::new(),
            lines: Vec::new(),
        })
    }

    fn tracking(&mut self, raw: RawTracking) -> Option<TrackingConfig> {
        let default = TrackingConfig::default();
        let min_hits = self.int(
            "tracking.min_hits",
            raw.min_hits,
            1..=100,
            default.min_hits.into(),
        );
        let max_age = self
            .float(
                "tracking.max_age_s",
                raw.max_age_s,
                0.1..=60.0,
                default.max_age.as_secs_f64(),
            )
            .map(Duration::from_secs_f64);
        let high_score = self.float(
            "tracking.high_score",
            raw.high_score,
            0.0..=1.0,
            default.high_score.into(),
        );
        let match_iou = self.float(
            "tracking.match_iou",
            raw.match_iou,
            0.01..=1.0,
            default.match_iou.into(),
        );
        let inertia = self.int(
            "tracking.inertia",
            raw.inertia,
            1..=100,
            default.inertia.into(),
        );
        #[allow(clippy::cast_possible_truncation)]
        Some(TrackingConfig {
            min_hits: u32::try_from(min_hits?).ok()?,
            max_age: max_age?,
            high_score: high_score? as f32,
            match_iou: match_iou? as f32,
            inertia: u32::try_from(inertia?).ok()?,
        })
    }

    fn events(&mut self, raw: RawEvents) -> Option<EventsConfig> {
        let default = EventsConfig::default();
        let snapshots = match raw.snapshots.as_deref() {
            None => Some(default.snapshots),
            Some(name) => {
                let mode = SnapshotMode::parse(name);
                if mode.is_none() {
                    let message = format!(
                        "`{name}` is not a snapshot mode: use {}",
                        one_of(SnapshotMode::ALL.map(SnapshotMode::as_str))
                    );
                    self.problem("events.snapshots", message);
                }
                mode
            }
        };
        let snapshot_kinds = match raw.snapshot_kinds {
            None => Some(default.snapshot_kinds),
            Some(names) => self.event_kinds("events.snapshot_kinds", &names),
        };
        let snapshot_max_width = self.int(
            "events.snapshot_max_width",
            raw.snapshot_max_width,
            64..=7680,
            default.snapshot_max_width.into(),
        );
        let snapshot_quality = self.int(
            "events.snapshot_quality",
            raw.snapshot_quality,
            1..=100,
            default.snapshot_quality.into(),
        );
        Some(EventsConfig {
            snapshots: snapshots?,
            snapshot_kinds: snapshot_kinds?,
            snapshot_max_width: u32::try_from(snapshot_max_width?).ok()?,
            snapshot_quality: u8::try_from(snapshot_quality?).ok()?,
            metadata_only: raw.metadata_only.unwrap_or(default.metadata_only),
        })
    }

    fn event_kinds(&mut self, key: &str, names: &[String]) -> Option<Vec<EventKind>> {
        let mut kinds = Vec::with_capacity(names.len());
        let mut good = true;
        for name in names {
            match EventKind::parse(name) {
                Some(kind) if kinds.contains(&kind) => {
                    self.problem(key, format!("`{name}` is listed twice"));
                    good = false;
                }
                Some(kind) => kinds.push(kind),
                None => {
                    let message = format!(
                        "`{name}` is not an event kind: use {}",
                        one_of(EventKind::ALL.map(EventKind::as_str))
                    );
                    self.problem(key, message);
                    good = false;
                }
            }
        }
        good.then_some(kinds)
    }

    /// The items of the array `field` (`zones`, `lines`) of camera `i` that deserialize, each on
    /// its own, with their key path; and whether all did. No array: no items.
    fn camera_items<T: DeserializeOwned>(
        &mut self,
        i: usize,
        camera: &'a Spanned<DeValue<'a>>,
        field: &str,
        what: &str,
    ) -> (Vec<(String, T)>, bool) {
        let DeValue::Table(table) = camera.get_ref() else {
            return (Vec::new(), true); // refused as a camera already
        };
        let Some((key, value)) = table.get_key_value(field) else {
            return (Vec::new(), true);
        };
        let DeValue::Array(items) = value.get_ref() else {
            self.problem_at(
                format!("cameras[{i}].{field}"),
                key.span().start,
                format!(
                    "must be written as [[cameras.{field}]] tables, one per {what}, got {}",
                    kind(value.get_ref())
                ),
            );
            return (Vec::new(), false);
        };
        let mut raws = Vec::with_capacity(items.len());
        let mut all_good = true;
        for (j, item) in items.iter().enumerate() {
            let prefix = format!("cameras[{i}].{field}[{j}]");
            match self.deserialize::<T>(&prefix, item) {
                Some(raw) => raws.push((prefix, raw)),
                None => all_good = false,
            }
        }
        (raws, all_good)
    }

    /// `[[cameras.zones]]` of camera `i`. `names`: zone and line names of the camera so far.
    fn zones(
        &mut self,
        i: usize,
        camera: &'a Spanned<DeValue<'a>>,
        names: &mut HashMap<TopicName, String>,
    ) -> Option<Vec<ZoneConfig>> {
        let (raws, mut all_good) = self.camera_items::<RawZone>(i, camera, "zones", "zone");
        let mut zones = Vec::new();
        for (prefix, raw) in raws {
            let key = |field: &str| format!("{prefix}.{field}");
            let name = self.shape_name(&key("name"), &raw.name, &prefix, names);
            let polygon = Polygon::new(points(&raw.points))
                .map_err(|e| self.problem(key("points"), e.to_string()))
                .ok();
            let classes = self.classes(&key("classes"), raw.classes.as_deref());
            let loiter = match raw.loiter_s {
                None => Some(None),
                Some(Float(s)) if s > 0.0 && s <= 86_400.0 => {
                    Some(Some(Duration::from_secs_f64(s)))
                }
                Some(Float(s)) => {
                    self.problem(
                        key("loiter_s"),
                        format!("must be more than 0 and at most 86400 (a day), got {s}"),
                    );
                    None
                }
            };
            let inertia = self.inertia(&key("inertia"), raw.inertia);
            match (name, polygon, classes, loiter, inertia) {
                (Some(name), Some(polygon), Some(classes), Some(loiter), Some(inertia)) => {
                    zones.push(ZoneConfig {
                        name,
                        polygon,
                        classes,
                        loiter,
                        inertia,
                    });
                }
                _ => all_good = false,
            }
        }
        all_good.then_some(zones)
    }

    /// `[[cameras.lines]]` of camera `i`. `names`: zone and line names of the camera so far.
    fn lines(
        &mut self,
        i: usize,
        camera: &'a Spanned<DeValue<'a>>,
        names: &mut HashMap<TopicName, String>,
    ) -> Option<Vec<LineConfig>> {
        let (raws, mut all_good) = self.camera_items::<RawLine>(i, camera, "lines", "line");
        let mut lines = Vec::new();
        for (prefix, raw) in raws {
            let key = |field: &str| format!("{prefix}.{field}");
            let name = self.shape_name(&key("name"), &raw.name, &prefix, names);
            let polyline = Polyline::new(points(&raw.points))
                .map_err(|e| self.problem(key("points"), e.to_string()))
                .ok();
            let direction_names =
                self.direction_names(&key("direction_names"), raw.direction_names.as_deref());
            let classes = self.classes(&key("classes"), raw.classes.as_deref());
            let inertia = self.inertia(&key("inertia"), raw.inertia);
            match (name, polyline, direction_names, classes, inertia) {
                (
                    Some(name),
                    Some(polyline),
                    Some(direction_names),
                    Some(classes),
                    Some(inertia),
                ) => {
                    lines.push(LineConfig {
                        name,
                        polyline,
                        direction_names,
                        classes,
                        inertia,
                    });
                }
                _ => all_good = false,
            }
        }
        all_good.then_some(lines)
    }

    /// A zone or line name, unique among the camera's zones and lines (`names`, by the path of
    /// the zone or line that has it).
    fn shape_name(
        &mut self,
        key: &str,
        name: &str,
        prefix: &str,
        names: &mut HashMap<TopicName, String>,
    ) -> Option<TopicName> {
        let name = self.topic_name(key, name)?;
        match names.entry(name.clone()) {
            Entry::Occupied(first) => {
                let message = format!(
                    "`{name}` is already the name of {}; zone and line names must differ within \
                     a camera",
                    first.get()
                );
                self.problem(key, message);
                None
            }
            Entry::Vacant(slot) => {
                slot.insert(prefix.to_owned());
                Some(name)
            }
        }
    }

    /// `classes = [...]`: default both, not empty, no duplicates.
    fn classes(&mut self, key: &str, names: Option<&[String]>) -> Option<Vec<CoarseClass>> {
        let Some(names) = names else {
            return Some(CoarseClass::ALL.to_vec());
        };
        if names.is_empty() {
            self.problem(
                key,
                "must not be empty: list `person`, `vehicle` or both (leave it out for both)",
            );
            return None;
        }
        let mut classes = Vec::with_capacity(names.len());
        let mut good = true;
        for name in names {
            match CoarseClass::parse(name) {
                Some(class) if classes.contains(&class) => {
                    self.problem(key, format!("`{name}` is listed twice"));
                    good = false;
                }
                Some(class) => classes.push(class),
                None => {
                    let message = format!(
                        "`{name}` is not a class: use {}",
                        one_of(CoarseClass::ALL.map(CoarseClass::as_str))
                    );
                    self.problem(key, message);
                    good = false;
                }
            }
        }
        good.then_some(classes)
    }

    /// `direction_names = [first, second]`: default `["in", "out"]`.
    fn direction_names(&mut self, key: &str, names: Option<&[String]>) -> Option<[TopicName; 2]> {
        let Some(names) = names else {
            return Some(["in", "out"].map(|n| TopicName(n.to_owned())));
        };
        let [first, second] = match names {
            [first, second] => [first, second],
            _ => {
                self.problem(
                    key,
                    format!(
                        "must be exactly 2 names, got {}: the first for crossing from the left \
                         to the right side, the second for the other way",
                        names.len()
                    ),
                );
                return None;
            }
        };
        let first = self.topic_name(key, first);
        let second = self.topic_name(key, second);
        let (first, second) = (first?, second?);
        if first == second {
            self.problem(
                key,
                format!("`{first}` is given for both directions: the two names must differ"),
            );
            return None;
        }
        Some([first, second])
    }

    /// An optional `inertia` override, 1..=100.
    fn inertia(&mut self, key: &str, value: Option<Int>) -> Option<Option<u32>> {
        match value {
            None => Some(None),
            Some(value) => {
                let inertia = self.int(key, Some(value), 1..=100, 0)?;
                u32::try_from(inertia).ok().map(Some)
            }
        }
    }

    // -- single values -------------------------------------------------------------------------

    fn topic_name(&mut self, key: &str, name: &str) -> Option<TopicName> {
        TopicName::parse(name)
            .map_err(|message| self.problem(key, message))
            .ok()
    }

    /// `value` (or `default`) when in `range`.
    fn int(
        &mut self,
        key: &str,
        value: Option<Int>,
        range: RangeInclusive<i64>,
        default: i64,
    ) -> Option<i64> {
        match value {
            None => Some(default),
            Some(Int(v)) => match i64::try_from(v) {
                Ok(v) if range.contains(&v) => Some(v),
                fits => {
                    // Beyond any 64-bit number: say so, with the range, not a type name.
                    let prefix = if fits.is_err() { "out of range: " } else { "" };
                    self.problem(
                        key,
                        format!(
                            "{prefix}must be between {} and {}, got {v}",
                            range.start(),
                            range.end()
                        ),
                    );
                    None
                }
            },
        }
    }

    /// `value` (or `default`) when in `range`.
    fn float(
        &mut self,
        key: &str,
        value: Option<Float>,
        range: RangeInclusive<f64>,
        default: f64,
    ) -> Option<f64> {
        match value {
            None => Some(default),
            Some(Float(v)) if range.contains(&v) => Some(v),
            Some(Float(v)) => {
                self.problem(
                    key,
                    format!(
                        "must be between {} and {}, got {v}",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    fn seconds(
        &mut self,
        key: &str,
        value: Option<Int>,
        range: RangeInclusive<i64>,
        default: i64,
    ) -> Option<Duration> {
        self.int(key, value, range, default)
            .map(|s| Duration::from_secs(s.unsigned_abs()))
    }

    /// A path from the file, relative to the file's folder.
    fn path(&mut self, key: &str, path: PathBuf) -> Option<PathBuf> {
        if path.as_os_str().is_empty() {
            self.problem(key, "must not be empty");
            return None;
        }
        Some(self.base_dir.join(path))
    }

    fn existing_file(&mut self, key: &str, path: PathBuf) -> Option<PathBuf> {
        let path = self.path(key, path)?;
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Some(path),
            Ok(_) => {
                self.problem(key, format!("`{}` is not a file", path.display()));
                None
            }
            Err(e) => {
                self.problem(key, format!("cannot use `{}`: {e}", path.display()));
                None
            }
        }
    }

    /// The password of table `prefix`, from `password` or the first line of `password_file`.
    /// `Some(None)`: no password.
    fn password(
        &mut self,
        prefix: &str,
        password: Option<RawSecret>,
        file: Option<PathBuf>,
    ) -> Option<Option<Secret>> {
        match (password, file) {
            (None, None) => Some(None),
            (Some(_), Some(_)) => {
                self.problem(
                    format!("{prefix}.password_file"),
                    "`password` and `password_file` are both set: keep one",
                );
                None
            }
            (Some(RawSecret(password)), None) => {
                if password.is_empty() {
                    self.problem(
                        format!("{prefix}.password"),
                        "must not be empty (leave it out for no password)",
                    );
                    return None;
                }
                Some(Some(Secret::new(password)))
            }
            (None, Some(file)) => {
                let key = format!("{prefix}.password_file");
                let file = self.path(&key, file)?;
                match super::secret::read_password_file(&file) {
                    Ok(secret) => Some(Some(secret)),
                    Err(e) => {
                        self.problem(key, e.to_string());
                        None
                    }
                }
            }
        }
    }

    /// `mqtt.url`: one URL, or a list of 1 to [`MAX_BROKER_URLS`] different ones (problems
    /// about one of them are keyed `mqtt.url[i]`), all of the same scheme.
    fn broker_urls(&mut self, raw: RawUrls) -> Option<Vec<BrokerUrl>> {
        const KEY: &str = "mqtt.url";
        let (texts, listed) = match raw {
            RawUrls::One(text) => (vec![text], false),
            RawUrls::Many(texts) => (texts, true),
        };
        if texts.is_empty() {
            self.problem(KEY, "the list is empty: give at least one broker URL");
            return None;
        }
        if texts.len() > MAX_BROKER_URLS {
            self.problem(
                KEY,
                format!(
                    "lists {} broker URLs, at most {MAX_BROKER_URLS} are allowed",
                    texts.len()
                ),
            );
            return None;
        }
        let key = |i: usize| {
            if listed {
                format!("{KEY}[{i}]")
            } else {
                KEY.to_owned()
            }
        };
        let mut urls = Vec::with_capacity(texts.len());
        let mut all_good = true;
        for (i, text) in texts.iter().enumerate() {
            let Some(url) = self.broker_url(&key(i), text) else {
                all_good = false;
                continue;
            };
            let same = |u: &BrokerUrl| u.port == url.port && u.host.eq_ignore_ascii_case(&url.host);
            if let Some(first) = urls.iter().position(|(_, u)| same(u)) {
                let (j, _) = urls[first];
                self.problem(
                    key(i),
                    format!("`{url}` is listed twice (also as {KEY}[{j}]): list each broker once"),
                );
                all_good = false;
                continue;
            }
            urls.push((i, url));
        }
        if urls.iter().any(|(_, u)| u.scheme != urls[0].1.scheme) {
            self.problem(
                KEY,
                "mixes mqtt:// and mqtts:// URLs: use one scheme for every broker (they share one \
                 TLS configuration)",
            );
            all_good = false;
        }
        all_good.then(|| urls.into_iter().map(|(_, u)| u).collect())
    }

    fn broker_url(&mut self, key: &str, text: &str) -> Option<BrokerUrl> {
        const EXPECTED: &str = "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]";
        let url = match parse_url(text) {
            Ok(url) => url,
            Err(message) => {
                let message = format!("`{}` {message}; {EXPECTED}", redact_url(text));
                self.problem(key, message);
                return None;
            }
        };
        let mut good = true;
        let scheme = match url.scheme.as_str() {
            "mqtt" => MqttScheme::Mqtt,
            "mqtts" => MqttScheme::Mqtts,
            _ => {
                let message = format!("`{}` is not an MQTT URL; {EXPECTED}", redact_url(text));
                self.problem(key, message);
                return None;
            }
        };
        if url.has_credentials() {
            let message = format!(
                "`{}` has a user name or password in it: put them in `username` and `password` \
                 (or `password_file`) instead",
                redact_url(text)
            );
            self.problem(key, message);
            good = false;
        }
        if !(url.rest.is_empty() || url.rest == "/") {
            let message = format!(
                "`{}` has a path; {EXPECTED} (the topics come from `topic_prefix`)",
                redact_url(text)
            );
            self.problem(key, message);
            good = false;
        }
        good.then(|| BrokerUrl {
            scheme,
            port: url.port.unwrap_or(match scheme {
                MqttScheme::Mqtt => 1883,
                MqttScheme::Mqtts => 8883,
            }),
            host: url.host,
        })
    }

    fn rtsp_url(&mut self, key: &str, text: &str) -> Option<Url> {
        const EXPECTED: &str = "expected rtsp://HOST[:PORT]/PATH or rtsps://...";
        match parse_url(text) {
            Ok(url) if matches!(url.scheme.as_str(), "rtsp" | "rtsps") => Some(url),
            Ok(_) => {
                let message = format!("`{}` is not an RTSP URL; {EXPECTED}", redact_url(text));
                self.problem(key, message);
                None
            }
            Err(message) => {
                let message = format!("`{}` {message}; {EXPECTED}", redact_url(text));
                self.problem(key, message);
                None
            }
        }
    }

    fn client_id(&mut self, id: String) -> Option<String> {
        let n = id.chars().count();
        let message = if n == 0 {
            "must not be empty".to_owned()
        } else if n > 128 {
            format!("must be at most 128 characters, got {n}")
        } else if let Some(c) = id.chars().find(|c| c.is_control()) {
            format!("must not contain control characters, got {c:?}")
        } else {
            return Some(id);
        };
        self.problem("mqtt.client_id", message);
        None
    }

    fn topic_prefix(&mut self, prefix: &str) -> Option<String> {
        const KEY: &str = "mqtt.topic_prefix";
        let message = if prefix.is_empty() {
            "must not be empty".to_owned()
        } else if let Some(c) = prefix.chars().find(|c| c.is_control()) {
            format!("must not contain control characters, got {c:?}")
        } else if prefix.starts_with('/') || prefix.ends_with('/') {
            format!("`{prefix}` must not start or end with `/`")
        } else if prefix.contains("//") {
            format!("`{prefix}` has an empty level (`//`)")
        } else if prefix.contains(['+', '#']) {
            format!("`{prefix}` must not contain the MQTT wildcards `+` and `#`")
        } else {
            return Some(prefix.to_owned());
        };
        self.problem(KEY, message);
        None
    }

    // -- problems ------------------------------------------------------------------------------

    /// A problem with `key`, on the line of the key (or of the nearest table that is there).
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let line = self.line_of(&key);
        self.problems.push(Problem {
            key,
            line,
            message: message.into(),
        });
    }

    /// A problem at a known place in the text.
    fn problem_at(&mut self, key: impl Into<String>, offset: usize, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            line: Some(line_at(self.text, offset)),
            message: message.into(),
        });
    }

    /// The line of `key` (`mqtt.url`, `cameras[1].name`); for a key that is not in the file, the
    /// line of the deepest table on its path that is.
    fn line_of(&self, key: &str) -> Option<usize> {
        let mut table = self.root;
        let mut offset = None;
        for segment in key.split('.') {
            let (name, index) = match segment.split_once('[') {
                Some((name, index)) => (name, index.trim_end_matches(']').parse::<usize>().ok()),
                None => (segment, None),
            };
            let Some((k, mut value)) = table.get_key_value(name) else {
                break;
            };
            offset = Some(k.span().start);
            if let Some(index) = index {
                let DeValue::Array(items) = value.get_ref() else {
                    break;
                };
                let Some(item) = items.get(index) else {
                    break;
                };
                offset = Some(item.span().start);
                value = item;
            }
            let DeValue::Table(inner) = value.get_ref() else {
                break;
            };
            table = inner;
        }
        offset.map(|o| line_at(self.text, o))
    }
}

/// Points from the file; coordinates far out of range become infinite and are refused as outside
/// 0..1.
#[allow(clippy::cast_possible_truncation)]
fn points(raw: &[RawPoint]) -> Vec<Point> {
    raw.iter()
        .map(|&RawPoint(x, y)| Point::new(x as f32, y as f32))
        .collect()
}

/// "`a`, `b` or `c`".
fn one_of<const N: usize>(names: [&str; N]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

const MIB: u64 = 1024 * 1024;

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.unsigned_abs())
}

/// 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The fields of the struct `T` deserializes into, as serde's derive names them; `None` for a
/// type that is not read as a struct (a map, or a struct with flattened fields).
fn field_names<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut fields = None;
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// A deserializer that only learns the field names a derived `Deserialize` asks for.
struct FieldNames<'f>(&'f mut Option<&'static [&'static str]>);

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(serde::de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// What serde says of an unknown field, word for word.
fn unknown_field(name: &str, fields: &[&str]) -> String {
    let quoted: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
    match quoted.as_slice() {
        [] => format!("unknown field `{name}`, there are no fields"),
        [one] => format!("unknown field `{name}`, expected {one}"),
        [a, b] => format!("unknown field `{name}`, expected {a} or {b}"),
        all => format!("unknown field `{name}`, expected one of {}", all.join(", ")),
    }
}

/// A TOML syntax error as a problem. A table or key given twice names both lines, which the
/// parser does not.
fn syntax_problem(text: &str, error: &toml::de::Error) -> Problem {
    let line = error.span().map(|span| line_at(text, span.start));
    let mut message = one_line(error.message());
    if let Some(line) = line.filter(|_| message.contains("duplicate key"))
        && let Some(twice) = given_twice(text, line)
    {
        message = twice;
    }
    Problem {
        key: String::new(),
        line,
        message,
    }
}

/// What is given twice at 1-based `line`: a table header seen before, or a key set before in
/// the same table; `None` when neither is found.
fn given_twice(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?.trim();
    let before = &lines[..line - 1];
    if here.starts_with('[') && !here.starts_with("[[") {
        let header = here.split('#').next()?.trim();
        let first = before
            .iter()
            .position(|l| l.split('#').next().map(str::trim) == Some(header))?;
        return Some(format!(
            "table `{header}` is declared twice, on lines {} and {line}: merge them into one",
            first + 1
        ));
    }
    let key = here.split('=').next()?.trim();
    let first = before
        .iter()
        .rposition(|l| {
            let l = l.trim();
            l.starts_with('[') || l.split('=').next().map(str::trim) == Some(key)
        })
        .filter(|&i| !before[i].trim().starts_with('['))?;
    Some(format!(
        "`{key}` is set twice in the same table, on lines {} and {line}: keep one",
        first + 1
    ))
}

/// Every string value below `table` (`prefix` is its key) with a control or other invisible
/// character, named by code point: such a character cannot be seen in an editor.
fn invisible_characters(table: &DeTable<'_>, prefix: &str, text: &str) -> Vec<Problem> {
    let mut found = Vec::new();
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.get_ref().to_string()
        } else {
            format!("{prefix}.{}", name.get_ref())
        };
        invisible_in_value(value, &key, text, &mut found);
    }
    found
}

fn invisible_in_value(
    value: &toml::Spanned<DeValue<'_>>,
    key: &str,
    text: &str,
    found: &mut Vec<Problem>,
) {
    match value.get_ref() {
        DeValue::String(string) => {
            if let Some((position, c)) = string.chars().enumerate().find(|(_, c)| invisible(*c)) {
                found.push(Problem {
                    key: key.to_owned(),
                    line: Some(line_at(text, value.span().start)),
                    message: format!(
                        "contains an invisible character, {} at position {}: type the value again",
                        code_point(c),
                        position + 1
                    ),
                });
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let key = match item.get_ref() {
                    DeValue::Table(_) => format!("{key}[{i}]"),
                    _ => key.to_owned(),
                };
                invisible_in_value(item, &key, text, found);
            }
        }
        DeValue::Table(inner) => found.extend(invisible_characters(inner, key, text)),
        _ => {}
    }
}

fn invisible(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}')
}

/// `U+0000 (NUL)`.
fn code_point(c: char) -> String {
    let name = match c {
        '\0' => Some("NUL"),
        '\t' => Some("TAB"),
        '\n' => Some("LINE FEED"),
        '\r' => Some("CARRIAGE RETURN"),
        '\u{1b}' => Some("ESC"),
        '\u{7f}' => Some("DEL"),
        '\u{200b}' => Some("ZERO WIDTH SPACE"),
        '\u{200c}' => Some("ZERO WIDTH NON-JOINER"),
        '\u{200d}' => Some("ZERO WIDTH JOINER"),
        '\u{200e}' => Some("LEFT-TO-RIGHT MARK"),
        '\u{200f}' => Some("RIGHT-TO-LEFT MARK"),
        '\u{2060}' => Some("WORD JOINER"),
        '\u{feff}' => Some("BYTE ORDER MARK"),
        c if c.is_control() => Some("a control character"),
        _ => None,
    };
    match name {
        Some(name) => format!("U+{:04X} ({name})", u32::from(c)),
        None => format!("U+{:04X}", u32::from(c)),
    }
}

/// toml's messages may span lines; keep one.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`super::parse`] in an environment without [`MQTT_PASSWORD_ENV`], whatever the test
    /// process has.
    fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        parse_with_env(text, path, &|_| None)
    }

    const MINIMAL: &str = r#"[device]
site = "bihac-north"
id = "post-07"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[[cameras]]
name = "gate-east"
url = "rtsp://10.0.0.21:554/stream1"
detect_fps = 5
"#;

    fn file() -> &'static Path {
        Path::new("/etc/watchpost/watchpost.toml")
    }

    /// MINIMAL with `line` added to `section` (`device`, `mqtt`, `cameras`: the existing table;
    /// others: a new table at the end).
    fn with(section: &str, line: &str) -> String {
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

    fn problems(text: &str) -> Vec<Problem> {
        match parse(text, file()) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.problems().to_vec(),
        }
    }

    /// The single problem of `text`.
    fn problem(text: &str) -> Problem {
        let mut all = problems(text);
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }

    #[test]
    fn every_unknown_key_and_every_other_problem_of_a_table_at_once() {
        let text = MINIMAL
            .replace(
                "id = \"post-07\"",
                "id = \"post-07\"\nbogus = 1\nsite2 = \"x\"",
            )
            .replace(
                "url = \"mqtt://127.0.0.1:1883\"",
                "url = \"mqtt://127.0.0.1:1883\"\nkeep_alive_s = -5\nwhat = 1",
            )
            .replace("detect_fps = 5", "detect_fps = 500\nfps = 5");
        let all = problems(&text);
        let said: Vec<(&str, Option<usize>)> =
            all.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(
            said,
            [
                ("device.bogus", Some(4)),
                ("device.site2", Some(5)),
                ("mqtt.keep_alive_s", Some(8)),
                ("mqtt.what", Some(9)),
                ("cameras[0].detect_fps", Some(13)),
                ("cameras[0].fps", Some(14)),
            ],
            "{all:#?}"
        );
        assert_eq!(
            all[0].message,
            "unknown field `bogus`, expected one of `site`, `id`, `state_dir`"
        );
    }

    #[test]
    fn numbers_too_large_for_any_setting_are_out_of_range_in_words() {
        let table = [
            (
                format!("{MINIMAL}[detection]\ninference_threads = 99999999999999999999\n"),
                "detection.inference_threads",
                "out of range: must be between 1 and 64, got 99999999999999999999",
            ),
            (
                format!("{MINIMAL}[detection]\nmax_frame_age_ms = -99999999999999999999\n"),
                "detection.max_frame_age_ms",
                "out of range: must be between 50 and 60000, got -99999999999999999999",
            ),
            (
                format!("{MINIMAL}[detection]\ninference_threads = 9223372036854775807\n"),
                "detection.inference_threads",
                "must be between 1 and 64, got 9223372036854775807",
            ),
            (
                MINIMAL.replace("detect_fps = 5", "detect_fps = 99999999999999999999"),
                "cameras[0].detect_fps",
                "must be more than 0 and at most 60, got 100000000000000000000",
            ),
        ];
        for (text, key, message) in table {
            let p = problem(&text);
            assert_eq!(p.key, key, "{text}");
            assert!(p.message.starts_with(message), "{key}: {}", p.message);
            assert!(!p.message.contains("i128"), "{}", p.message);
        }
    }

    #[test]
    fn invisible_characters_are_named_by_code_point_with_their_key() {
        let table = [
            (
                "site = \"bihac-north\"",
                "site = \"bihac\\u0000north\"",
                "device.site",
                "U+0000 (NUL) at position 6",
            ),
            (
                "id = \"post-07\"",
                "id = \"post\\u200b-07\"",
                "device.id",
                "U+200B (ZERO WIDTH SPACE) at position 5",
            ),
            (
                "url = \"rtsp://10.0.0.21:554/stream1\"",
                "url = \"rtsp://10.0.0.21:554/stream1\\t\"",
                "cameras[0].url",
                "U+0009 (TAB) at position 29",
            ),
        ];
        for (from, to, key, said) in table {
            let text = MINIMAL.replace(from, to);
            assert_ne!(text, MINIMAL, "{from}");
            let p = problem(&text);
            assert_eq!(p.key, key, "{text}");
            assert!(p.line.is_some());
            assert!(
                p.message.contains("invisible character") && p.message.contains(said),
                "{key}: {}",
                p.message
            );
        }
    }

    #[test]
    fn a_table_or_key_given_twice_names_both_lines() {
        let p = problem(&format!("{MINIMAL}[device]\nsite = \"x\"\n"));
        assert_eq!(p.line, Some(10));
        assert_eq!(
            p.message,
            "table `[device]` is declared twice, on lines 1 and 10: merge them into one"
        );
        let p = problem(&MINIMAL.replace("id = \"post-07\"", "id = \"post-07\"\nsite = \"b\""));
        assert_eq!(p.line, Some(4));
        assert_eq!(
            p.message,
            "`site` is set twice in the same table, on lines 2 and 4: keep one"
        );
    }

    #[test]
    fn the_model_is_auto_a_bundled_name_or_a_manifest_path() {
        let with = |value: &str| format!("{MINIMAL}[detection]\nmodel = \"{value}\"\n");
        let table = [
            ("auto", ModelChoice::Auto),
            (
                "nanodet-m-416-int8",
                ModelChoice::Bundled("nanodet-m-416-int8"),
            ),
            (
                "models/mine.toml",
                ModelChoice::Manifest(PathBuf::from("/etc/watchpost/models/mine.toml")),
            ),
        ];
        for (value, expected) in table {
            let config = parse(&with(value), file()).expect(value);
            assert_eq!(config.detection.model, expected, "{value}");
        }
        let p = problem(&with("yolov8"));
        assert_eq!(p.key, "detection.model");
        assert_eq!(p.line, Some(11));
        assert!(
            p.message
                .contains("neither a bundled model (nanodet-m-416, nanodet-m-416-int8, or auto)"),
            "{}",
            p.message
        );
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

    /// The zone and line of the tracking issue, appended to MINIMAL (lines 10 to 18).
    const ZONE_AND_LINE: &str = r#"[[cameras.zones]]
name = "road"
points = [[0.1, 0.4], [0.9, 0.4], [0.9, 0.95], [0.1, 0.95]]
classes = ["person", "vehicle"]
[[cameras.lines]]
name = "border"
points = [[0.5, 0.2], [0.5, 0.95]]
direction_names = ["in", "out"]   # first: crossing from the left to the right side
"#;

    fn pts(points: &[(f32, f32)]) -> Vec<Point> {
        points.iter().map(|&(x, y)| Point::new(x, y)).collect()
    }

    fn name(text: &str) -> TopicName {
        TopicName::parse(text).unwrap()
    }

    #[test]
    fn zones_and_lines_are_read() {
        let config = parse(&format!("{MINIMAL}{ZONE_AND_LINE}"), file()).expect("valid");
        let camera = &config.cameras[0];
        let road = ZoneConfig {
            name: name("road"),
            polygon: Polygon::new(pts(&[(0.1, 0.4), (0.9, 0.4), (0.9, 0.95), (0.1, 0.95)]))
                .unwrap(),
            classes: vec![CoarseClass::Person, CoarseClass::Vehicle],
            loiter: None,
            inertia: None,
        };
        let border = LineConfig {
            name: name("border"),
            polyline: Polyline::new(pts(&[(0.5, 0.2), (0.5, 0.95)])).unwrap(),
            direction_names: [name("in"), name("out")],
            classes: vec![CoarseClass::Person, CoarseClass::Vehicle],
            inertia: None,
        };
        assert_eq!(camera.zones, vec![road]);
        assert_eq!(camera.lines, vec![border]);

        // Every optional key, two of each, and defaults where left out.
        let text = format!(
            r#"{MINIMAL}[[cameras.zones]]
name = "dock"
points = [[0, 0], [1, 0], [0.5, 1]]
classes = ["vehicle"]
loiter_s = 90.5
inertia = 5
[[cameras.zones]]
name = "yard"
points = [[0.2, 0.2], [0.4, 0.2], [0.4, 0.4]]
[[cameras.lines]]
name = "fence"
points = [[0.1, 0.5], [0.5, 0.6], [0.9, 0.5]]
direction_names = ["north", "south"]
classes = ["person"]
inertia = 1
[[cameras.lines]]
name = "gate"
points = [[0.1, 0.1], [0.2, 0.2]]
"#
        );
        let config = parse(&text, file()).expect("valid");
        let camera = &config.cameras[0];
        let zones: Vec<_> = camera
            .zones
            .iter()
            .map(|z| (z.name.as_str(), z.classes.clone(), z.loiter, z.inertia))
            .collect();
        assert_eq!(
            zones,
            vec![
                (
                    "dock",
                    vec![CoarseClass::Vehicle],
                    Some(Duration::from_millis(90_500)),
                    Some(5)
                ),
                ("yard", CoarseClass::ALL.to_vec(), None, None),
            ]
        );
        assert_eq!(
            camera.zones[0].polygon.points(),
            pts(&[(0.0, 0.0), (1.0, 0.0), (0.5, 1.0)])
        );
        let lines: Vec<_> = camera
            .lines
            .iter()
            .map(|l| {
                (
                    l.name.as_str(),
                    l.polyline.points().len(),
                    [l.direction_names[0].as_str(), l.direction_names[1].as_str()],
                    l.classes.clone(),
                    l.inertia,
                )
            })
            .collect();
        assert_eq!(
            lines,
            vec![
                (
                    "fence",
                    3,
                    ["north", "south"],
                    vec![CoarseClass::Person],
                    Some(1)
                ),
                ("gate", 2, ["in", "out"], CoarseClass::ALL.to_vec(), None),
            ]
        );
    }

    #[test]
    fn zone_and_line_problems_name_key_and_line() {
        // Appended to MINIMAL after a zone `road` (lines 10 to 12): text, key, line, message.
        let zone =
            "[[cameras.zones]]\nname = \"road\"\npoints = [[0.1, 0.4], [0.9, 0.4], [0.5, 0.9]]\n";
        let cases: &[(&str, &str, usize, &str)] = &[
            (
                "[[cameras.zones]]\nname = \"z\"\npoints = [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]",
                "cameras[0].zones[1].points",
                15,
                "edges 1 and 3 cross",
            ),
            (
                "[[cameras.zones]]\nname = \"z\"\npoints = [[0.1, 0.1], [0.9, 0.9]]",
                "cameras[0].zones[1].points",
                15,
                "a polygon needs at least 3 points, got 2",
            ),
            (
                "[[cameras.zones]]\nname = \"z\"\npoints = [[0.1, 0.1], [1.2, 0.5], [0.1, 0.9]]",
                "cameras[0].zones[1].points",
                15,
                "point 2 (1.2, 0.5) is outside 0..1",
            ),
            (
                "[[cameras.zones]]\nname = \"z\"\npoints = [[0.1, 0.1], [0.5, 0.5, 0.5], [0.1, 0.9]]",
                "cameras[0].zones[1].points",
                15,
                "a point is [x, y], got 3 numbers",
            ),
            (
                "[[cameras.zones]]\nname = \"z\"\npoints = [0.1, 0.1, 0.5]",
                "cameras[0].zones[1].points",
                15,
                "invalid type: floating point `0.1`, expected a point [x, y]",
            ),
            (
                "[[cameras.zones]]\nname = \"z\"",
                "cameras[0].zones[1]",
                13,
                "missing field `points`",
            ),
            (
                "[[cameras.zones]]\nname = \"road\"\npoints = [[0.1, 0.1], [0.9, 0.1], [0.1, 0.9]]",
                "cameras[0].zones[1].name",
                14,
                "`road` is already the name of cameras[0].zones[0]; zone and line names must differ",
            ),
            (
                "[[cameras.lines]]\nname = \"road\"\npoints = [[0.1, 0.1], [0.9, 0.1]]",
                "cameras[0].lines[0].name",
                14,
                "`road` is already the name of cameras[0].zones[0]",
            ),
            (
                "[[cameras.zones]]\nname = \"z 1\"\npoints = [[0.1, 0.1], [0.9, 0.1], [0.1, 0.9]]",
                "cameras[0].zones[1].name",
                14,
                "`z 1` is not usable in an MQTT topic",
            ),
            (
                "classes = [\"bicycle\"]",
                "cameras[0].zones[0].classes",
                13,
                "`bicycle` is not a class: use `person` or `vehicle`",
            ),
            (
                "classes = [\"person\", \"person\"]",
                "cameras[0].zones[0].classes",
                13,
                "`person` is listed twice",
            ),
            (
                "classes = []",
                "cameras[0].zones[0].classes",
                13,
                "must not be empty",
            ),
            (
                "loiter_s = 0",
                "cameras[0].zones[0].loiter_s",
                13,
                "must be more than 0 and at most 86400 (a day), got 0",
            ),
            (
                "loiter_s = 86401",
                "cameras[0].zones[0].loiter_s",
                13,
                "must be more than 0 and at most 86400 (a day), got 86401",
            ),
            (
                "inertia = 0",
                "cameras[0].zones[0].inertia",
                13,
                "must be between 1 and 100, got 0",
            ),
            (
                "inertia = 101",
                "cameras[0].zones[0].inertia",
                13,
                "must be between 1 and 100, got 101",
            ),
            (
                "colour = 1",
                "cameras[0].zones[0].colour",
                13,
                "unknown field `colour`",
            ),
            (
                "[cameras.zones]\nname = \"x\"",
                "cameras[0].zones",
                0, // the zone above makes `zones` an array already: a TOML error
                "",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.2]]",
                "cameras[0].lines[0].points",
                15,
                "points 1 and 2 are the same (0.5, 0.2): leave one out",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2]]",
                "cameras[0].lines[0].points",
                15,
                "a line needs at least 2 points, got 1",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.9]]\ndirection_names = [\"in\", \"in bound\"]",
                "cameras[0].lines[0].direction_names",
                16,
                "`in bound` is not usable in an MQTT topic",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.9]]\ndirection_names = [\"in\", \"in\"]",
                "cameras[0].lines[0].direction_names",
                16,
                "`in` is given for both directions: the two names must differ",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.9]]\ndirection_names = [\"in\"]",
                "cameras[0].lines[0].direction_names",
                16,
                "must be exactly 2 names, got 1",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.9]]\ndirection_names = []",
                "cameras[0].lines[0].direction_names",
                16,
                "must be exactly 2 names, got 0",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.9]]\nclasses = [\"truck\"]",
                "cameras[0].lines[0].classes",
                16,
                "`truck` is not a class",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.9]]\ninertia = 0",
                "cameras[0].lines[0].inertia",
                16,
                "must be between 1 and 100, got 0",
            ),
        ];
        for &(extra, key, line, message) in cases {
            let text = format!("{MINIMAL}{zone}{extra}\n");
            let p = problem(&text);
            if line == 0 {
                assert_eq!(p.key, "", "{extra}\n{p:?}");
                continue;
            }
            assert_eq!(
                (p.key.as_str(), p.line),
                (key, Some(line)),
                "{extra}\n{p:?}"
            );
            assert!(p.message.starts_with(message), "{extra}\n{p:?}");
        }
        // Not an array of tables.
        let p = problem(&format!("{MINIMAL}[cameras.lines]\nname = \"l\"\n"));
        assert_eq!(
            (p.key.as_str(), p.line),
            ("cameras[0].lines", Some(10)),
            "{p:?}"
        );
        assert!(
            p.message.starts_with(
                "must be written as [[cameras.lines]] tables, one per line, got a table"
            ),
            "{p:?}"
        );
    }

    #[test]
    fn zone_problems_are_reported_beside_camera_problems() {
        let text = format!(
            "{MINIMAL}colour = 1\n[[cameras.zones]]\nname = \"a\"\npoints = [[0.1, 0.1]]\n\
             [[cameras.zones]]\nname = \"b\"\npoints = 5\n[[cameras.lines]]\nname = \"a\"\n\
             points = [[0.1, 0.1], [0.1, 0.1]]\n"
        );
        let got: Vec<_> = problems(&text)
            .into_iter()
            .map(|p| (p.line, p.key))
            .collect();
        let expected: Vec<_> = [
            (10, "cameras[0].colour"),
            (13, "cameras[0].zones[0].points"),
            (16, "cameras[0].zones[1].points"),
            (18, "cameras[0].lines[0].name"),
            (19, "cameras[0].lines[0].points"),
        ]
        .into_iter()
        .map(|(l, k)| (Some(l), k.to_owned()))
        .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn tracking_and_events_from_table() {
        let defaults = TrackingConfig::default();
        let cases: &[(&str, &str, Result<TrackingConfig, &str>)] = &[
            ("tracking", "", Ok(defaults.clone())),
            (
                "tracking",
                "min_hits = 1\nmax_age_s = 0.1\nhigh_score = 0\nmatch_iou = 0.01\ninertia = 1",
                Ok(TrackingConfig {
                    min_hits: 1,
                    max_age: Duration::from_millis(100),
                    high_score: 0.0,
                    match_iou: 0.01,
                    inertia: 1,
                }),
            ),
            (
                "tracking",
                "min_hits = 100\nmax_age_s = 60\nhigh_score = 1\nmatch_iou = 1\ninertia = 100",
                Ok(TrackingConfig {
                    min_hits: 100,
                    max_age: Duration::from_secs(60),
                    high_score: 1.0,
                    match_iou: 1.0,
                    inertia: 100,
                }),
            ),
            (
                "tracking",
                "min_hits = 0",
                Err("tracking.min_hits: must be between 1 and 100, got 0"),
            ),
            (
                "tracking",
                "min_hits = 2.5",
                Err(
                    "tracking.min_hits: invalid type: floating point `2.5`, expected a whole number",
                ),
            ),
            (
                "tracking",
                "max_age_s = 0.05",
                Err("tracking.max_age_s: must be between 0.1 and 60, got 0.05"),
            ),
            (
                "tracking",
                "max_age_s = 61",
                Err("tracking.max_age_s: must be between 0.1 and 60, got 61"),
            ),
            (
                "tracking",
                "high_score = 1.5",
                Err("tracking.high_score: must be between 0 and 1, got 1.5"),
            ),
            (
                "tracking",
                "high_score = nan",
                Err("tracking.high_score: must be between 0 and 1, got NaN"),
            ),
            (
                "tracking",
                "match_iou = 0",
                Err("tracking.match_iou: must be between 0.01 and 1, got 0"),
            ),
            (
                "tracking",
                "inertia = 101",
                Err("tracking.inertia: must be between 1 and 100, got 101"),
            ),
            (
                "tracking",
                "enabled = true",
                Err("tracking.enabled: unknown field `enabled`"),
            ),
        ];
        for &(section, lines, ref expected) in cases {
            let text = with(section, lines);
            match (parse(&text, file()), expected) {
                (Ok(config), Ok(tracking)) => assert_eq!(&config.tracking, tracking, "{lines}"),
                (Err(_), Err(message)) => {
                    let p = problem(&text);
                    assert_eq!(p.line, Some(11), "{lines}: {p:?}");
                    assert!(
                        format!("{}: {}", p.key, p.message).starts_with(message),
                        "{lines}: {p:?}"
                    );
                }
                (Ok(_), Err(e)) => panic!("{lines}: accepted, expected {e}"),
                (Err(e), Ok(_)) => panic!("{lines}: {e}"),
            }
        }

        let defaults = EventsConfig::default();
        let cases: &[(&str, Result<EventsConfig, &str>)] = &[
            ("", Ok(defaults.clone())),
            (
                "snapshots = \"off\"\nsnapshot_kinds = []\nsnapshot_max_width = 64\n\
                 snapshot_quality = 1\nmetadata_only = true",
                Ok(EventsConfig {
                    snapshots: SnapshotMode::Off,
                    snapshot_kinds: vec![],
                    snapshot_max_width: 64,
                    snapshot_quality: 1,
                    metadata_only: true,
                }),
            ),
            (
                "snapshots = \"redacted\"\nsnapshot_kinds = [\"track_start\", \"track_end\", \
                 \"zone_enter\", \"zone_exit\", \"loitering\", \"line_cross\"]\n\
                 snapshot_max_width = 7680\nsnapshot_quality = 100",
                Ok(EventsConfig {
                    snapshots: SnapshotMode::Redacted,
                    snapshot_kinds: EventKind::ALL.to_vec(),
                    snapshot_max_width: 7680,
                    snapshot_quality: 100,
                    metadata_only: false,
                }),
            ),
            (
                "snapshots = \"annotated\"",
                Ok(EventsConfig {
                    snapshots: SnapshotMode::Annotated,
                    ..defaults.clone()
                }),
            ),
            (
                "snapshots = \"blurred\"",
                Err(
                    "events.snapshots: `blurred` is not a snapshot mode: use `off`, `annotated` or `redacted`",
                ),
            ),
            (
                "snapshot_kinds = [\"zone_entry\"]",
                Err(
                    "events.snapshot_kinds: `zone_entry` is not an event kind: use `track_start`, `track_end`, `zone_enter`, `zone_exit`, `loitering` or `line_cross`",
                ),
            ),
            (
                "snapshot_kinds = [\"loitering\", \"loitering\"]",
                Err("events.snapshot_kinds: `loitering` is listed twice"),
            ),
            (
                "snapshot_max_width = 63",
                Err("events.snapshot_max_width: must be between 64 and 7680, got 63"),
            ),
            (
                "snapshot_max_width = 7681",
                Err("events.snapshot_max_width: must be between 64 and 7680, got 7681"),
            ),
            (
                "snapshot_quality = 0",
                Err("events.snapshot_quality: must be between 1 and 100, got 0"),
            ),
            (
                "snapshot_quality = 101",
                Err("events.snapshot_quality: must be between 1 and 100, got 101"),
            ),
            (
                "metadata_only = \"yes\"",
                Err("events.metadata_only: invalid type: string \"yes\", expected a boolean"),
            ),
        ];
        for (lines, expected) in cases {
            let text = with("events", lines);
            match (parse(&text, file()), expected) {
                (Ok(config), Ok(events)) => assert_eq!(&config.events, events, "{lines}"),
                (Err(_), Err(message)) => {
                    let p = problem(&text);
                    assert_eq!(p.line, Some(11), "{lines}: {p:?}");
                    assert!(
                        format!("{}: {}", p.key, p.message).starts_with(message),
                        "{lines}: {p:?}"
                    );
                }
                (Ok(_), Err(e)) => panic!("{lines}: accepted, expected {e}"),
                (Err(e), Ok(_)) => panic!("{lines}: {e}"),
            }
        }
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
            Some(ClientCertFiles {
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
    fn range_boundaries() {
        // section, line, None = accepted, Some(message) = refused with that message
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("mqtt", "detections_qos = 0", None),
            ("mqtt", "detections_qos = 1", None),
            ("mqtt", "detections_qos = 2", None),
            (
                "mqtt",
                "detections_qos = 3",
                Some("must be between 0 and 2, got 3"),
            ),
            (
                "mqtt",
                "detections_qos = -1",
                Some("must be between 0 and 2, got -1"),
            ),
            (
                "mqtt",
                "keep_alive_s = 4",
                Some("must be between 5 and 3600, got 4"),
            ),
            ("mqtt", "keep_alive_s = 5", None),
            ("mqtt", "keep_alive_s = 3600", None),
            (
                "mqtt",
                "keep_alive_s = 3601",
                Some("must be between 5 and 3600, got 3601"),
            ),
            (
                "detection",
                "inference_threads = 0",
                Some("must be between 1 and 64, got 0"),
            ),
            ("detection", "inference_threads = 1", None),
            ("detection", "inference_threads = 64", None),
            (
                "detection",
                "inference_threads = 65",
                Some("must be between 1 and 64, got 65"),
            ),
            (
                "detection",
                "max_frame_age_ms = 49",
                Some("must be between 50 and 60000, got 49"),
            ),
            ("detection", "max_frame_age_ms = 50", None),
            ("detection", "max_frame_age_ms = 60000", None),
            (
                "detection",
                "max_frame_age_ms = 60001",
                Some("must be between 50 and 60000, got 60001"),
            ),
            (
                "health",
                "interval_s = 0",
                Some("must be between 1 and 3600, got 0"),
            ),
            ("health", "interval_s = 1", None),
            ("health", "interval_s = 3600", None),
            (
                "health",
                "interval_s = 3601",
                Some("must be between 1 and 3600, got 3601"),
            ),
            (
                "cameras",
                "latency_ms = -1",
                Some("must be between 0 and 10000, got -1"),
            ),
            ("cameras", "latency_ms = 0", None),
            ("cameras", "latency_ms = 10000", None),
            (
                "cameras",
                "latency_ms = 10001",
                Some("must be between 0 and 10000, got 10001"),
            ),
            (
                "cameras",
                "stall_timeout_s = 0",
                Some("must be between 1 and 300, got 0"),
            ),
            ("cameras", "stall_timeout_s = 1", None),
            ("cameras", "stall_timeout_s = 300", None),
            (
                "cameras",
                "stall_timeout_s = 301",
                Some("must be between 1 and 300, got 301"),
            ),
            ("cameras", "transport = \"tcp\"", None),
            ("cameras", "transport = \"udp\"", None),
            (
                "cameras",
                "transport = \"TCP\"",
                Some("`TCP` is not a transport: use `tcp` or `udp`"),
            ),
            // MINIMAL's camera has detect_fps = 5.
            ("cameras", "idle_fps = 0", None),
            ("cameras", "idle_fps = 5", None),
            (
                "cameras",
                "idle_fps = 5.5",
                Some("must be between 0 (never) and detect_fps (5), got 5.5"),
            ),
            (
                "cameras",
                "idle_fps = -0.5",
                Some("must be between 0 (never) and detect_fps (5), got -0.5"),
            ),
            ("cameras", "motion_gate = false", None),
            ("cameras", "decoder = \"auto\"", None),
            ("cameras", "decoder = \"v4l2_h264-2\"", None),
            (
                "cameras",
                "decoder = \"V4L2\"",
                Some("`V4L2` is not a decoder"),
            ),
            ("cameras", "decoder = \"\"", Some("`` is not a decoder")),
            (
                "cameras",
                "decoder = \"a/b\"",
                Some("`a/b` is not a decoder"),
            ),
        ];
        for &(section, line, expected) in cases {
            let text = with(section, line);
            match (parse(&text, file()), expected) {
                (Ok(_), None) => {}
                (Ok(_), Some(e)) => panic!("{section}: `{line}` accepted, expected `{e}`"),
                (Err(err), None) => panic!("{section}: `{line}` refused: {err}"),
                (Err(err), Some(e)) => {
                    let [p] = err.problems() else {
                        panic!("{section}: `{line}`: not one problem: {err}")
                    };
                    assert!(p.message.contains(e), "{section}: `{line}`: {err}");
                    let field = line.split(' ').next().unwrap();
                    assert!(p.key.ends_with(field), "{section}: `{line}`: {err}");
                }
            }
        }

        // detect_fps replaces the minimal file's value: 0 < x <= 60.
        let fps_cases: &[(&str, bool)] = &[
            ("0", false),
            ("-1", false),
            ("0.001", true),
            ("1", true),
            ("59.9", true),
            ("60", true),
            ("60.0", true),
            ("60.01", false),
            ("61", false),
            ("nan", false),
            ("inf", false),
        ];
        for &(value, ok) in fps_cases {
            let text = MINIMAL.replace("detect_fps = 5", &format!("detect_fps = {value}"));
            match parse(&text, file()) {
                Ok(config) => {
                    assert!(ok, "detect_fps = {value} accepted");
                    assert_eq!(config.cameras[0].detect_fps, value.parse::<f32>().unwrap());
                }
                Err(err) => {
                    assert!(!ok, "detect_fps = {value} refused: {err}");
                    let p = &err.problems()[0];
                    assert_eq!(p.key, "cameras[0].detect_fps");
                    assert_eq!(p.line, Some(9));
                    assert!(
                        p.message
                            .contains("must be more than 0 and at most 60, got"),
                        "{err}"
                    );
                }
            }
        }
    }

    #[test]
    fn topic_names() {
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        let cases: &[(&str, Result<(), &str>)] = &[
            ("gate-east", Ok(())),
            ("Gate_East_2", Ok(())),
            ("a", Ok(())),
            ("_x", Ok(())),
            ("0", Ok(())),
            (&long, Ok(())),
            (&too_long, Err("must be at most 64 characters, got 65")),
            ("", Err("must not be empty")),
            ("-gate", Err("must not start with `-`")),
            (
                "gate east",
                Err("`gate east` is not usable in an MQTT topic: ` `"),
            ),
            ("gate/east", Err("`/` is not allowed")),
            ("gate+", Err("`+` is not allowed")),
            ("gate#", Err("`#` is not allowed")),
            ("kapija-č", Err("`č` is not allowed")),
            ("a.b", Err("`.` is not allowed")),
        ];
        for &(name, expected) in cases {
            match (TopicName::parse(name), expected) {
                (Ok(n), Ok(())) => assert_eq!(n.as_str(), name),
                (Err(message), Err(e)) => {
                    assert!(message.contains(e), "{name}: `{message}` lacks `{e}`");
                    // The same message, with key and line, from the file.
                    let text = MINIMAL.replace("\"gate-east\"", &format!("{name:?}"));
                    let p = problem(&text);
                    assert_eq!(
                        (p.key.as_str(), p.line, p.message.as_str()),
                        ("cameras[0].name", Some(7), message.as_str())
                    );
                }
                (got, _) => panic!("{name}: got {got:?}, expected {expected:?}"),
            }
        }
        let p = problem(&MINIMAL.replace("\"post-07\"", "\"post 07\""));
        assert_eq!((p.key.as_str(), p.line), ("device.id", Some(3)));
        let p = problem(&MINIMAL.replace("\"bihac-north\"", "\"bihac/north\""));
        assert_eq!((p.key.as_str(), p.line), ("device.site", Some(2)));
    }

    #[test]
    fn mqtt_urls() {
        // url, Ok((scheme, host, port)) or Err(message part)
        type Expected = Result<(MqttScheme, &'static str, u16), &'static str>;
        let cases: &[(&str, Expected)] = &[
            ("mqtt://broker", Ok((MqttScheme::Mqtt, "broker", 1883))),
            ("mqtts://broker", Ok((MqttScheme::Mqtts, "broker", 8883))),
            (
                "MQTT://broker:1884/",
                Ok((MqttScheme::Mqtt, "broker", 1884)),
            ),
            ("mqtt://[::1]", Ok((MqttScheme::Mqtt, "::1", 1883))),
            ("mqtts://[::1]:9999", Ok((MqttScheme::Mqtts, "::1", 9999))),
            (
                "tcp://broker:1883",
                Err("`tcp://broker:1883` is not an MQTT URL"),
            ),
            ("broker:1883", Err("`broker:1883` is not a URL")),
            ("mqtt://", Err("`mqtt://` has no host")),
            ("mqtt://broker:99999", Err("has port `99999`")),
            (
                "mqtt://broker/topic",
                Err("`mqtt://broker/topic` has a path"),
            ),
            (
                "mqtt://agent:s3cr3t-pw@broker",
                Err(
                    "`mqtt://agent:***@broker` has a user name or password in it: put them in `username`",
                ),
            ),
            (
                "mqtt://agent@broker",
                Err("`mqtt://agent@broker` has a user name"),
            ),
        ];
        for &(url, expected) in cases {
            let text = MINIMAL.replace("mqtt://127.0.0.1:1883", url);
            match (parse(&text, file()), expected) {
                (Ok(config), Ok((scheme, host, port))) => {
                    assert_eq!(
                        config.mqtt.urls,
                        [BrokerUrl {
                            scheme,
                            host: host.into(),
                            port
                        }],
                        "{url}"
                    );
                }
                (Err(err), Err(e)) => {
                    let [p] = err.problems() else {
                        panic!("{url}: {err}")
                    };
                    assert_eq!((p.key.as_str(), p.line), ("mqtt.url", Some(5)), "{url}");
                    assert!(p.message.contains(e), "{url}: `{}` lacks `{e}`", p.message);
                    assert!(!p.message.contains("s3cr3t"), "{}", p.message);
                }
                (Ok(_), Err(e)) => panic!("{url}: accepted, expected `{e}`"),
                (Err(err), Ok(_)) => panic!("{url}: {err}"),
            }
        }
    }

    #[test]
    fn mqtt_url_lists() {
        // `url = ...` line (line 5 of MINIMAL), Ok(urls as text) or Err((key, line, message))
        type Expected = Result<&'static [&'static str], (&'static str, usize, &'static str)>;
        let seventeen = format!(
            "url = [{}]",
            (0..17)
                .map(|i| format!("\"mqtt://b{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let sixteen = format!(
            "url = [{}]",
            (0..16)
                .map(|i| format!("\"mqtt://b{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let cases: &[(&str, Expected)] = &[
            ("url = [\"mqtt://a\"]", Ok(&["mqtt://a:1883"])),
            (
                "url = [\"mqtts://a:8884\", \"mqtts://b\", \"mqtts://[::1]\"]",
                Ok(&["mqtts://a:8884", "mqtts://b:8883", "mqtts://[::1]:8883"]),
            ),
            (
                "url = [\n  \"mqtt://a\",\n  \"mqtt://b:1884\",\n]",
                Ok(&["mqtt://a:1883", "mqtt://b:1884"]),
            ),
            (&sixteen, Ok(&[])),
            (
                "url = []",
                Err((
                    "mqtt.url",
                    5,
                    "the list is empty: give at least one broker URL",
                )),
            ),
            (
                &seventeen,
                Err((
                    "mqtt.url",
                    5,
                    "lists 17 broker URLs, at most 16 are allowed",
                )),
            ),
            (
                "url = [\"mqtt://a\", \"mqtt://b\", \"mqtt://A:1883\"]",
                Err((
                    "mqtt.url[2]",
                    5,
                    "`mqtt://A:1883` is listed twice (also as mqtt.url[0]): list each broker once",
                )),
            ),
            (
                "url = [\"mqtt://a\", \"mqtts://b\"]",
                Err((
                    "mqtt.url",
                    5,
                    "mixes mqtt:// and mqtts:// URLs: use one scheme for every broker (they share \
                     one TLS configuration)",
                )),
            ),
            (
                "url = [\n  \"mqtt://a\",\n  \"mqtt://b:99999\",\n]",
                Err(("mqtt.url[1]", 7, "`mqtt://b:99999` has port `99999`")),
            ),
            (
                "url = [\"mqtt://a\", \"mqtt://agent:s3cr3t-pw@b\"]",
                Err((
                    "mqtt.url[1]",
                    5,
                    "`mqtt://agent:***@b` has a user name or password in it",
                )),
            ),
            (
                "url = [\"mqtt://a\", 5]",
                Err((
                    "mqtt.url",
                    5,
                    "invalid type: integer `5`, expected a string",
                )),
            ),
            (
                "url = 1883",
                Err((
                    "mqtt.url",
                    5,
                    "invalid type: integer `1883`, expected a broker URL or a list of broker URLs",
                )),
            ),
        ];
        for &(line, ref expected) in cases {
            let text = MINIMAL.replace("url = \"mqtt://127.0.0.1:1883\"", line);
            match (parse(&text, file()), expected) {
                (Ok(config), Ok(urls)) => {
                    let got: Vec<String> =
                        config.mqtt.urls.iter().map(ToString::to_string).collect();
                    if urls.is_empty() {
                        assert_eq!(got.len(), 16, "{line}");
                    } else {
                        assert_eq!(got, *urls, "{line}");
                    }
                }
                (Err(err), Err((key, line_no, message))) => {
                    let [p] = err.problems() else {
                        panic!("{line}: {err}")
                    };
                    assert_eq!(
                        (p.key.as_str(), p.line),
                        (*key, Some(*line_no)),
                        "{line}: {err}"
                    );
                    assert!(p.message.starts_with(message), "{line}: {err}");
                    assert!(!p.message.contains("s3cr3t"), "{err}");
                }
                (Ok(_), Err(e)) => panic!("{line}: accepted, expected {e:?}"),
                (Err(err), Ok(_)) => panic!("{line}: {err}"),
            }
        }
    }

    #[test]
    fn mqtt_tls_settings() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["ca.pem", "client.pem", "client.key"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let config_path = dir.path().join("watchpost.toml");
        let tls = "url = \"mqtts://broker:8883\"";
        let plain = "url = \"mqtt://broker\"";
        // url line, extra [mqtt] lines, Ok((client cert given, tls_verify)) or Err((key, message))
        type Expected = Result<(bool, bool), (&'static str, &'static str)>;
        let cases: &[(&str, &str, Expected)] = &[
            (tls, "", Ok((false, true))),
            (
                tls,
                "client_cert = \"client.pem\"\nclient_key = \"client.key\"",
                Ok((true, true)),
            ),
            (tls, "tls_verify = true", Ok((false, true))),
            (tls, "tls_verify = false", Ok((false, false))),
            (
                "url = [\"mqtts://a\", \"mqtts://b\"]",
                "tls_verify = false\nclient_cert = \"client.pem\"\nclient_key = \"client.key\"",
                Ok((true, false)),
            ),
            (plain, "tls_verify = true", Ok((false, true))),
            (
                plain,
                "tls_verify = false",
                Err((
                    "mqtt.tls_verify",
                    "`tls_verify = false` is about the certificate of an mqtts:// broker, and \
                     the broker URL is mqtt:// (no TLS)",
                )),
            ),
            (
                plain,
                "client_cert = \"client.pem\"\nclient_key = \"client.key\"",
                Err((
                    "mqtt.client_cert",
                    "a client certificate is only sent over TLS, and the broker URL is mqtt://",
                )),
            ),
            (
                tls,
                "client_cert = \"client.pem\"",
                Err((
                    "mqtt.client_cert",
                    "`client_cert` is set but `client_key` is not: set both",
                )),
            ),
            (
                tls,
                "client_key = \"client.key\"",
                Err((
                    "mqtt.client_key",
                    "`client_key` is set but `client_cert` is not: set both",
                )),
            ),
            (
                tls,
                "client_cert = \"client.pem\"\nclient_key = \"nope.key\"",
                Err(("mqtt.client_key", "nope.key`: No such file")),
            ),
            (
                tls,
                "client_cert = \".\"\nclient_key = \"client.key\"",
                Err(("mqtt.client_cert", "is not a file")),
            ),
            (
                tls,
                "tls_verify = \"no\"",
                Err((
                    "mqtt.tls_verify",
                    "invalid type: string \"no\", expected a boolean",
                )),
            ),
        ];
        for &(url, lines, expected) in cases {
            let text = with("mqtt", lines).replace("url = \"mqtt://127.0.0.1:1883\"", url);
            match (parse(&text, &config_path), expected) {
                (Ok(config), Ok((client_cert, tls_verify))) => {
                    assert_eq!(
                        config.mqtt.client_cert.is_some(),
                        client_cert,
                        "{url} {lines}"
                    );
                    assert_eq!(config.mqtt.tls_verify, tls_verify, "{url} {lines}");
                    if let Some(files) = &config.mqtt.client_cert {
                        assert_eq!(files.cert, dir.path().join("client.pem"));
                        assert_eq!(files.key, dir.path().join("client.key"));
                    }
                }
                (Err(err), Err((key, message))) => {
                    let [p] = err.problems() else {
                        panic!("{url} {lines}: {err}")
                    };
                    assert_eq!(p.key, key, "{url} {lines}: {err}");
                    assert!(p.message.contains(message), "{url} {lines}: {err}");
                    // The line of the key, or of [mqtt] for a key that is not written.
                    assert!(p.line.is_some_and(|l| l >= 4), "{p:?}");
                }
                (Ok(_), Err(e)) => panic!("{url} {lines}: accepted, expected {e:?}"),
                (Err(err), Ok(_)) => panic!("{url} {lines}: {err}"),
            }
        }
    }

    #[test]
    fn mqtt_password_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "from-file").unwrap();
        let config_path = dir.path().join("watchpost.toml");
        // [mqtt] lines, the variable's value, Ok(password) or Err((key, message))
        type Expected = Result<Option<&'static str>, (&'static str, &'static str)>;
        let cases: &[(&str, Option<&str>, Expected)] = &[
            ("username = \"a\"", Some("from-env"), Ok(Some("from-env"))),
            ("username = \"a\"", Some(""), Ok(None)),
            ("username = \"a\"", None, Ok(None)),
            (
                "username = \"a\"\npassword = \"in-file\"",
                Some("from-env"),
                Ok(Some("in-file")),
            ),
            (
                "username = \"a\"\npassword_file = \"pw\"",
                Some("from-env"),
                Ok(Some("from-file")),
            ),
            ("", None, Ok(None)),
            ("", Some(""), Ok(None)),
            (
                "",
                Some("from-env"),
                Err((
                    "mqtt.username",
                    "the environment variable WATCHPOST_MQTT_PASSWORD sets a password but there \
                     is no user name: add `username` (or unset WATCHPOST_MQTT_PASSWORD)",
                )),
            ),
        ];
        for &(lines, value, expected) in cases {
            let text = with("mqtt", lines);
            let env = |name: &str| {
                assert_eq!(name, MQTT_PASSWORD_ENV);
                value.map(OsString::from)
            };
            match (parse_with_env(&text, &config_path, &env), expected) {
                (Ok(config), Ok(password)) => assert_eq!(
                    config.mqtt.password.as_ref().map(Secret::expose),
                    password,
                    "{lines} {value:?}"
                ),
                (Err(err), Err((key, message))) => {
                    let [p] = err.problems() else {
                        panic!("{lines}: {err}")
                    };
                    assert_eq!((p.key.as_str(), p.message.as_str()), (key, message));
                    assert!(!err.to_string().contains("from-env"), "{err}");
                }
                (Ok(_), Err(e)) => panic!("{lines} {value:?}: accepted, expected {e:?}"),
                (Err(err), Ok(_)) => panic!("{lines} {value:?}: {err}"),
            }
        }
        // Not UTF-8: refused without showing it.
        let env = |_: &str| {
            use std::os::unix::ffi::OsStringExt;
            Some(OsString::from_vec(vec![b'p', 0xff, b'w']))
        };
        let err =
            parse_with_env(&with("mqtt", "username = \"a\""), &config_path, &env).unwrap_err();
        let [p] = err.problems() else { panic!("{err}") };
        assert_eq!(p.key, "mqtt.password");
        assert!(p.message.contains("is not valid UTF-8"), "{err}");
    }

    #[test]
    fn outbox_from_table() {
        let defaults = OutboxConfig::in_state_dir(Path::new("/var/lib/watchpost"));
        let cases: &[(&str, Result<OutboxConfig, &str>)] = &[
            ("", Ok(defaults.clone())),
            (
                "dir = \"/data/outbox\"\nmax_size_mb = 1\nmax_age_h = 0.01\n\
                 when_full = \"drop_oldest\"\nsync = \"never\"",
                Ok(OutboxConfig {
                    dir: PathBuf::from("/data/outbox"),
                    max_bytes: 1024 * 1024,
                    max_age: Duration::from_secs(36),
                    when_full: WhenFull::DropOldest,
                    sync: OutboxSync::Never,
                }),
            ),
            (
                "dir = \"outbox-here\"\nmax_size_mb = 1048576\nmax_age_h = 8760\n\
                 when_full = \"drop_newest\"\nsync = \"every_event\"",
                Ok(OutboxConfig {
                    dir: PathBuf::from("/etc/watchpost/outbox-here"),
                    max_bytes: 1024 * 1024 * 1024 * 1024,
                    max_age: Duration::from_secs(8760 * 3600),
                    when_full: WhenFull::DropNewest,
                    sync: OutboxSync::EveryEvent,
                }),
            ),
            (
                "sync = \"interval\"",
                Ok(OutboxConfig {
                    sync: OutboxSync::Interval(Duration::from_secs(1)),
                    ..defaults.clone()
                }),
            ),
            (
                "sync = \"interval\"\nsync_interval_ms = 10",
                Ok(OutboxConfig {
                    sync: OutboxSync::Interval(Duration::from_millis(10)),
                    ..defaults.clone()
                }),
            ),
            (
                "sync = \"interval\"\nsync_interval_ms = 60000",
                Ok(OutboxConfig {
                    sync: OutboxSync::Interval(Duration::from_secs(60)),
                    ..defaults.clone()
                }),
            ),
            ("dir = \"\"", Err("outbox.dir: must not be empty")),
            (
                "max_size_mb = 0",
                Err("outbox.max_size_mb: must be between 1 and 1048576, got 0"),
            ),
            (
                "max_size_mb = 1048577",
                Err("outbox.max_size_mb: must be between 1 and 1048576, got 1048577"),
            ),
            (
                "max_size_mb = 1.5",
                Err(
                    "outbox.max_size_mb: invalid type: floating point `1.5`, expected a whole number",
                ),
            ),
            (
                "max_age_h = 0.001",
                Err("outbox.max_age_h: must be between 0.01 and 8760, got 0.001"),
            ),
            (
                "max_age_h = 8761",
                Err("outbox.max_age_h: must be between 0.01 and 8760, got 8761"),
            ),
            (
                "max_age_h = nan",
                Err("outbox.max_age_h: must be between 0.01 and 8760, got NaN"),
            ),
            (
                "when_full = \"block\"",
                Err(
                    "outbox.when_full: `block` is not a choice: use `drop_oldest` or `drop_newest`",
                ),
            ),
            (
                "sync = \"always\"",
                Err(
                    "outbox.sync: `always` is not a sync policy: use `every_event`, `interval` or `never`",
                ),
            ),
            (
                "sync = \"interval\"\nsync_interval_ms = 9",
                Err("outbox.sync_interval_ms: must be between 10 and 60000, got 9"),
            ),
            (
                "sync = \"interval\"\nsync_interval_ms = 60001",
                Err("outbox.sync_interval_ms: must be between 10 and 60000, got 60001"),
            ),
            (
                "sync_interval_ms = 500",
                Err(
                    "outbox.sync_interval_ms: only used with sync = \"interval\", and sync is \
                     `every_event` (the default): remove `sync_interval_ms` or set sync = \"interval\"",
                ),
            ),
            (
                "sync = \"never\"\nsync_interval_ms = 500",
                Err(
                    "outbox.sync_interval_ms: only used with sync = \"interval\", and sync is \
                     `never`: remove",
                ),
            ),
            (
                "max_files = 5",
                Err("outbox.max_files: unknown field `max_files`, expected one of `dir`"),
            ),
        ];
        for (lines, expected) in cases {
            let text = with("outbox", lines);
            match (parse(&text, file()), expected) {
                (Ok(config), Ok(outbox)) => assert_eq!(&config.outbox, outbox, "{lines}"),
                (Err(_), Err(message)) => {
                    let p = problem(&text);
                    let first_key = lines.split(" = ").next().unwrap();
                    let key = p.key.rsplit('.').next().unwrap();
                    let line = 11 + lines.lines().position(|l| l.starts_with(key)).unwrap_or(0);
                    assert!(!first_key.is_empty());
                    assert_eq!(p.line, Some(line), "{lines}: {p:?}");
                    assert!(
                        format!("{}: {}", p.key, p.message).starts_with(message),
                        "{lines}: {p:?}"
                    );
                }
                (Ok(_), Err(e)) => panic!("{lines}: accepted, expected {e}"),
                (Err(e), Ok(_)) => panic!("{lines}: {e}"),
            }
        }

        // The default folder follows device.state_dir, relative to the file's folder.
        let text = with("device", "state_dir = \"state\"");
        let config = parse(&text, file()).unwrap();
        assert_eq!(
            config.outbox.dir,
            Path::new("/etc/watchpost/state/outbox"),
            "{text}"
        );
        // A refused device: no second problem from the outbox.
        let text = with("device", "state_dir = \"\"");
        assert_eq!(problem(&text).key, "device.state_dir");
    }

    #[test]
    fn local_from_table() {
        let on = |addr: &str| Ok(Some(addr.parse::<std::net::SocketAddr>().unwrap()));
        // lines of [local], Ok(listen) or Err(`KEY: MESSAGE` start)
        type Expected = Result<Option<std::net::SocketAddr>, &'static str>;
        let cases: &[(&str, Expected)] = &[
            ("", on("127.0.0.1:9750")),
            ("listen = \"127.0.0.1:9750\"", on("127.0.0.1:9750")),
            ("listen = \"127.0.0.1:1\"", on("127.0.0.1:1")),
            ("listen = \"127.0.0.53:65535\"", on("127.0.0.53:65535")),
            ("listen = \"[::1]:9750\"", on("[::1]:9750")),
            ("listen = \"\"", Ok(None)),
            (
                "listen = \"0.0.0.0:9750\"",
                Err(
                    "local.listen: `0.0.0.0:9750` is not a loopback address: the local endpoint \
                     has no authentication",
                ),
            ),
            (
                "listen = \"192.168.1.10:9750\"",
                Err("local.listen: `192.168.1.10:9750` is not a loopback address"),
            ),
            (
                "listen = \"[::]:9750\"",
                Err("local.listen: `[::]:9750` is not a loopback address"),
            ),
            (
                "listen = \"127.0.0.1:0\"",
                Err("local.listen: `127.0.0.1:0`: port 0 would be a different port at every start"),
            ),
            (
                "listen = \"127.0.0.1\"",
                Err(
                    "local.listen: `127.0.0.1` is not an address with a port: write it as \
                     `127.0.0.1:9750`",
                ),
            ),
            (
                "listen = \"localhost:9750\"",
                Err("local.listen: `localhost:9750` is not an address with a port"),
            ),
            (
                "listen = \"::1:9750\"",
                Err("local.listen: `::1:9750` is not an address with a port"),
            ),
            (
                "listen = 9750",
                Err("local.listen: invalid type: integer `9750`, expected a string"),
            ),
            (
                "port = 9750",
                Err("local.port: unknown field `port`, expected `listen`"),
            ),
        ];
        for (lines, expected) in cases {
            let text = with("local", lines);
            match (parse(&text, file()), expected) {
                (Ok(config), Ok(listen)) => assert_eq!(config.local.listen, *listen, "{lines}"),
                (Err(_), Err(message)) => {
                    let p = problem(&text);
                    assert_eq!(p.line, Some(11), "{lines}: {p:?}");
                    assert!(
                        format!("{}: {}", p.key, p.message).starts_with(message),
                        "{lines}: {p:?}"
                    );
                    // `load_local` reports the same problem at the same line.
                    let Err(ConfigError::Invalid { problems, .. }) = parse_local(&text, file())
                    else {
                        panic!("{lines}: parse_local accepted it");
                    };
                    assert_eq!(problems, vec![p], "{lines}");
                }
                (Ok(_), Err(e)) => panic!("{lines}: accepted, expected {e}"),
                (Err(e), Ok(_)) => panic!("{lines}: {e}"),
            }
        }
    }

    #[test]
    fn load_local_looks_at_local_only() {
        // The rest of the file may be wrong or missing: only [local] is read.
        let text = "[local]\nlisten = \"127.0.0.1:9999\"\n[mqtt]\nurl = \"tcp://nope\"\n";
        assert_eq!(
            parse_local(text, file()).unwrap().listen,
            Some("127.0.0.1:9999".parse().unwrap())
        );
        assert_eq!(parse_local("", file()).unwrap(), LocalConfig::default());
        let Err(ConfigError::Invalid { problems, .. }) = parse_local("[local\n", file()) else {
            panic!("not TOML, accepted");
        };
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(1));
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        assert!(matches!(
            load_local(&missing),
            Err(ConfigError::Read { path, .. }) if path == missing
        ));
    }

    #[test]
    fn client_id_and_topic_prefix() {
        let long_id = "c".repeat(128);
        let too_long_id = format!("client_id = \"{}\"", "c".repeat(129));
        let cases: &[(&str, Option<&str>)] = &[
            ("client_id = \"x\"", None),
            (&format!("client_id = \"{long_id}\""), None),
            ("client_id = \"Posten 7 – Bihać\"", None),
            (
                &too_long_id,
                Some("must be at most 128 characters, got 129"),
            ),
            ("client_id = \"\"", Some("must not be empty")),
            (
                "client_id = \"a\\tb\"",
                Some("contains an invisible character, U+0009 (TAB) at position 2"),
            ),
            ("topic_prefix = \"watchpost\"", None),
            ("topic_prefix = \"org/border/posts\"", None),
            ("topic_prefix = \"\"", Some("must not be empty")),
            (
                "topic_prefix = \"/watchpost\"",
                Some("`/watchpost` must not start or end with `/`"),
            ),
            (
                "topic_prefix = \"watchpost/\"",
                Some("`watchpost/` must not start or end"),
            ),
            ("topic_prefix = \"a//b\"", Some("`a//b` has an empty level")),
            (
                "topic_prefix = \"a/+/b\"",
                Some("`a/+/b` must not contain the MQTT wildcards"),
            ),
            (
                "topic_prefix = \"a/#\"",
                Some("`a/#` must not contain the MQTT wildcards"),
            ),
            (
                "topic_prefix = \"a\\u0000b\"",
                Some("contains an invisible character, U+0000 (NUL) at position 2"),
            ),
        ];
        for &(line, expected) in cases {
            let text = with("mqtt", line);
            match (parse(&text, file()), expected) {
                (Ok(_), None) => {}
                (Err(err), Some(e)) => {
                    let p = problem(&text);
                    assert_eq!(p.line, Some(5), "{err}");
                    assert!(p.message.contains(e), "{line}: {err}");
                }
                (Ok(_), Some(e)) => panic!("`{line}` accepted, expected `{e}`"),
                (Err(err), None) => panic!("`{line}`: {err}"),
            }
        }
    }

    #[test]
    fn camera_credentials() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cr3t-file\n").unwrap();
        std::fs::write(dir.path().join("empty"), "\nsecond").unwrap();
        let config_path = dir.path().join("watchpost.toml");
        let url = "rtsp://10.0.0.21:554/stream1";
        // url, extra camera lines, Ok((url kept, username, password)) or Err((key, message))
        #[allow(clippy::type_complexity)]
        let cases: &[(
            &str,
            &str,
            Result<(&str, Option<&str>, Option<&str>), (&str, &str)>,
        )] = &[
            (url, "", Ok((url, None, None))),
            (
                "rtsp://admin:s3cr3t-pw@10.0.0.21:554/stream1",
                "",
                Ok((url, Some("admin"), Some("s3cr3t-pw"))),
            ),
            (
                "rtsp://ad%40min:s3%3Acr%2F3t@10.0.0.21:554/stream1",
                "",
                Ok((url, Some("ad@min"), Some("s3:cr/3t"))),
            ),
            (
                "rtsp://viewer@10.0.0.21:554/stream1",
                "",
                Ok((url, Some("viewer"), None)),
            ),
            (
                url,
                "username = \"admin\"\npassword = \"s3cr3t-pw\"",
                Ok((url, Some("admin"), Some("s3cr3t-pw"))),
            ),
            (
                url,
                "username = \"admin\"\npassword_file = \"pw\"",
                Ok((url, Some("admin"), Some("s3cr3t-file"))),
            ),
            (url, "username = \"admin\"", Ok((url, Some("admin"), None))),
            (
                "rtsp://admin:s3cr3t-pw@10.0.0.21:554/stream1",
                "username = \"admin\"",
                Err((
                    "cameras[0].url",
                    "`rtsp://admin:***@10.0.0.21:554/stream1` has a user name or password in it, and `username`",
                )),
            ),
            (
                "rtsp://admin@10.0.0.21:554/stream1",
                "password_file = \"pw\"",
                Err(("cameras[0].url", "keep them in one place")),
            ),
            (
                url,
                "username = \"admin\"\npassword = \"s3cr3t-pw\"\npassword_file = \"pw\"",
                Err((
                    "cameras[0].password_file",
                    "`password` and `password_file` are both set",
                )),
            ),
            (
                url,
                "username = \"admin\"\npassword_file = \"missing\"",
                Err((
                    "cameras[0].password_file",
                    "/missing`: No such file or directory",
                )),
            ),
            (
                url,
                "username = \"admin\"\npassword_file = \"empty\"",
                Err(("cameras[0].password_file", "/empty` is empty")),
            ),
            (
                url,
                "username = \"admin\"\npassword = \"\"",
                Err(("cameras[0].password", "must not be empty")),
            ),
            (
                url,
                "password = \"s3cr3t-pw\"",
                Err(("cameras[0].username", "a password is set but no user name")),
            ),
            (
                "rtsp://:s3cr3t-pw@10.0.0.21/",
                "",
                Err(("cameras[0].username", "a password is set but no user name")),
            ),
            (
                url,
                "username = \"admin\"\npassword = 12345",
                Err((
                    "cameras[0].password",
                    "must be a string (the value is not shown)",
                )),
            ),
        ];
        for &(url, extra, expected) in cases {
            let text = format!(
                "{}{extra}\n",
                MINIMAL.replace("rtsp://10.0.0.21:554/stream1", url)
            );
            match (parse(&text, &config_path), expected) {
                (Ok(config), Ok((clean, user, password))) => {
                    let camera = &config.cameras[0];
                    assert_eq!(camera.url, clean, "{url} {extra}");
                    assert_eq!(camera.username.as_deref(), user, "{url} {extra}");
                    assert_eq!(
                        camera.password.as_ref().map(Secret::expose),
                        password,
                        "{url} {extra}"
                    );
                    assert!(!format!("{config:?}").contains("s3cr3t"));
                }
                (Err(err), Err((key, message))) => {
                    let text = err.to_string();
                    let [p] = err.problems() else {
                        panic!("{url} {extra}: {err}")
                    };
                    assert_eq!(p.key, key, "{url} {extra}: {err}");
                    assert!(p.message.contains(message), "{url} {extra}: {err}");
                    assert!(
                        !text.contains("s3cr3t") && !text.contains("12345"),
                        "{text}"
                    );
                }
                (Ok(_), Err(e)) => panic!("{url} {extra}: accepted, expected {e:?}"),
                (Err(err), Ok(_)) => panic!("{url} {extra}: {err}"),
            }
        }
    }

    #[test]
    fn mqtt_passwords_and_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "mqtt-secret").unwrap();
        let config_path = dir.path().join("watchpost.toml");
        type Expected = Result<Option<&'static str>, (&'static str, &'static str)>;
        let cases: &[(&str, Expected)] = &[
            (
                "username = \"a\"\npassword_file = \"pw\"",
                Ok(Some("mqtt-secret")),
            ),
            ("username = \"a\"", Ok(None)),
            (
                "password = \"mqtt-secret\"",
                Err(("mqtt.username", "a password is set but no user name")),
            ),
            (
                "username = \"a\"\npassword = \"x\"\npassword_file = \"pw\"",
                Err(("mqtt.password_file", "both set")),
            ),
            (
                "username = \"a\"\npassword_file = \"nope\"",
                Err(("mqtt.password_file", "nope`: No such file")),
            ),
            ("ca_file = \"pw\"", Ok(None)),
            (
                "ca_file = \"missing.pem\"",
                Err(("mqtt.ca_file", "missing.pem`: No such file")),
            ),
            ("ca_file = \".\"", Err(("mqtt.ca_file", "is not a file"))),
            ("ca_file = \"\"", Err(("mqtt.ca_file", "must not be empty"))),
        ];
        for &(lines, expected) in cases {
            let text = with("mqtt", lines);
            match (parse(&text, &config_path), expected) {
                (Ok(config), Ok(password)) => {
                    assert_eq!(config.mqtt.password.as_ref().map(Secret::expose), password);
                }
                (Err(err), Err((key, message))) => {
                    let [p] = err.problems() else {
                        panic!("{lines}: {err}")
                    };
                    assert_eq!(p.key, key, "{lines}: {err}");
                    assert!(p.message.contains(message), "{lines}: {err}");
                    assert!(!err.to_string().contains("mqtt-secret"), "{err}");
                }
                (Ok(_), Err(e)) => panic!("{lines}: accepted, expected {e:?}"),
                (Err(err), Ok(_)) => panic!("{lines}: {err}"),
            }
        }
    }

    #[test]
    fn shape_errors_name_key_and_line() {
        // text, key, line, message part
        let cases: &[(&str, &str, Option<usize>, &str)] = &[
            (
                &with("device", "colour = \"red\""),
                "device.colour",
                Some(2),
                "unknown field `colour`, expected one of `site`, `id`, `state_dir`",
            ),
            (
                &format!("{MINIMAL}[extra]\n"),
                "extra",
                Some(10),
                "unknown key `extra`",
            ),
            (
                &format!("site = 1\n{MINIMAL}"),
                "site",
                Some(1),
                "unknown key `site`",
            ),
            (
                &with("cameras", "fps = 5"),
                "cameras[0].fps",
                Some(10),
                "unknown field `fps`",
            ),
            (
                &MINIMAL.replace("detect_fps = 5", "detect_fps = \"fast\""),
                "cameras[0].detect_fps",
                Some(9),
                "invalid type: string \"fast\", expected a number",
            ),
            (
                &with("mqtt", "keep_alive_s = 2.5"),
                "mqtt.keep_alive_s",
                Some(5),
                "invalid type: floating point `2.5`, expected a whole number",
            ),
            (
                &MINIMAL.replace("name = \"gate-east\"\n", ""),
                "cameras[0]",
                Some(6),
                "missing field `name`",
            ),
            (
                &MINIMAL.replace("[device]\nsite = \"bihac-north\"\nid = \"post-07\"\n", ""),
                "device",
                None,
                "missing: a [device] table",
            ),
            (
                &MINIMAL.replace("[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n", ""),
                "mqtt",
                None,
                "missing: an [mqtt] table",
            ),
            (
                &MINIMAL[..MINIMAL.find("[[cameras]]").unwrap()],
                "cameras",
                None,
                "missing: at least one [[cameras]] table",
            ),
            (
                &format!(
                    "cameras = []\n{}",
                    &MINIMAL[..MINIMAL.find("[[cameras]]").unwrap()]
                ),
                "cameras",
                Some(1),
                "at least one camera is needed",
            ),
            (
                &MINIMAL.replace("[[cameras]]", "[cameras]"),
                "cameras",
                Some(6),
                "must be written as [[cameras]] tables, one per camera, got a table",
            ),
            (
                &format!("health = 5\n{MINIMAL}"),
                "health",
                Some(1),
                "must be a table, got an integer",
            ),
            (
                &format!("{MINIMAL}[mqtt]\n"),
                "",
                Some(10),
                "table `[mqtt]` is declared twice, on lines 4 and 10",
            ),
            (
                &format!("{MINIMAL}name = \n"),
                "",
                Some(10),
                "string values must be quoted",
            ),
        ];
        for &(text, key, line, message) in cases {
            let p = problem(text);
            assert_eq!((p.key.as_str(), p.line), (key, line), "{text}\n{p:?}");
            assert!(p.message.contains(message), "{text}\n{p:?}");
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
        // sync_interval_ms is refused unless sync = "interval": left commented at first.
        let out = uncommented(&text, &["sync_interval_ms"]);
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
        assert_eq!(config.local, LocalConfig::default(), "{out}");
        let camera = &config.cameras[0];
        assert_eq!(camera.zones.len(), 1, "{out}");
        assert_eq!(camera.lines.len(), 1, "{out}");

        // With sync = "interval", its documented default interval.
        let with_interval = text.replacen("#sync = \"every_event\"", "#sync = \"interval\"", 1);
        assert_ne!(with_interval, text);
        let out = uncommented(&with_interval, &[]);
        let config = parse(&out, &path).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(
            config.outbox.sync,
            OutboxSync::Interval(Duration::from_secs(1)),
            "{out}"
        );
    }
}
