//! The agent's configuration: a TOML file → validated [`Config`].
//!
//! Two steps, as everywhere in watchpost: raw serde structs that mirror the file
//! (`deny_unknown_fields`) are turned into the types below, which cannot be wrong (names usable
//! in MQTT topics, `detect_fps` in range, URLs parsed, secrets wrapped). Every problem is
//! reported at once, one line each with the file, line and key path:
//! `watchpost.toml:14: cameras[1].detect_fps: must be more than 0 and at most 60, got 0`.
//! Entry points: [`load`] and [`parse`]; the commented example of every key is
//! `deploy/watchpost.toml`.
//!
//! Secrets (RTSP and MQTT passwords) live in [`Secret`], whose `Debug` and `Display` print
//! `***`; URLs are kept without credentials.

use std::path::PathBuf;
use std::time::Duration;

mod error;
mod load;
mod secret;
mod url;

pub use error::{ConfigError, Problem};
pub use load::{DEFAULT_STATE_DIR, DEFAULT_TOPIC_PREFIX, load, parse};
pub use secret::Secret;

/// A name usable as one MQTT topic level and in file names: 1..=64 characters of
/// `[A-Za-z0-9_-]`, not starting with `-`. Site, device and camera names are of this kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct TopicName(String);

impl TopicName {
    pub const MAX_LEN: usize = 64;

    /// Checks `name`; the error says what is wrong in words a technician understands.
    pub fn parse(name: &str) -> Result<TopicName, String> {
        if name.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if name.len() > Self::MAX_LEN {
            return Err(format!(
                "must be at most {} characters, got {}",
                Self::MAX_LEN,
                name.len()
            ));
        }
        if name.starts_with('-') {
            return Err(format!("`{name}` must not start with `-`"));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(format!(
                "`{name}` is not usable in an MQTT topic: `{bad}` is not allowed (use letters, digits, `-` and `_`)"
            ));
        }
        Ok(TopicName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TopicName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub device: DeviceConfig,
    pub mqtt: MqttConfig,
    pub detection: DetectionConfig,
    pub health: HealthConfig,
    /// At least one camera; names unique.
    pub cameras: Vec<CameraConfig>,
}

/// `[device]`
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    pub site: TopicName,
    pub id: TopicName,
    /// Where state that must survive restarts lives (default `/var/lib/watchpost`).
    pub state_dir: PathBuf,
}

/// `mqtt://` or `mqtts://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MqttScheme {
    Mqtt,
    Mqtts,
}

/// A broker endpoint, without credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    pub scheme: MqttScheme,
    pub host: String,
    /// Default 1883 for `mqtt`, 8883 for `mqtts`.
    pub port: u16,
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.scheme {
            MqttScheme::Mqtt => "mqtt",
            MqttScheme::Mqtts => "mqtts",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// MQTT quality of service for a stream of messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Qos {
    AtMostOnce,
    AtLeastOnce,
    ExactlyOnce,
}

/// `[mqtt]`
#[derive(Clone, Debug)]
pub struct MqttConfig {
    pub url: BrokerUrl,
    /// Default: the device id.
    pub client_id: String,
    /// First topic level (default `watchpost`); may contain `/` for deeper prefixes, but no
    /// wildcards, no empty levels.
    pub topic_prefix: String,
    pub username: Option<String>,
    /// From `password` or the first line of `password_file`.
    pub password: Option<Secret>,
    /// QoS of `detections` (default at most once).
    pub detections_qos: Qos,
    /// Default 30 s.
    pub keep_alive: Duration,
    /// CA bundle for `mqtts://` (default: the system roots).
    pub ca_file: Option<PathBuf>,
}

/// `[detection]` (all optional).
#[derive(Clone, Debug)]
pub struct DetectionConfig {
    /// Model manifest; `None` = the bundled model.
    pub model: Option<PathBuf>,
    /// ONNX Runtime library; `None` = the default search.
    pub ort_lib: Option<PathBuf>,
    /// Inference threads, each with its own session (default: the number of cores).
    pub inference_threads: usize,
    /// A frame older than this when an inference thread could take it is dropped (default 1 s).
    pub max_frame_age: Duration,
}

/// `[health]` (all optional).
#[derive(Clone, Debug)]
pub struct HealthConfig {
    /// How often `health` is published (default 10 s, at least 1 s).
    pub interval: Duration,
}

/// RTSP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    Tcp,
    Udp,
}

/// Which decoder template to use for a camera.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecoderChoice {
    /// The first hardware template whose elements exist, else software (default).
    Auto,
    /// A template by name from `pipelines/` (for example `software`, `v4l2`, `nvv4l2`).
    Named(String),
}

/// `[[cameras]]`
#[derive(Clone, Debug)]
pub struct CameraConfig {
    pub name: TopicName,
    /// `rtsp://` or `rtsps://` URL with any credentials removed (they are in the fields below).
    pub url: String,
    /// From the URL's user part or the `username` field.
    pub username: Option<String>,
    /// From the URL, the `password` field, or the first line of `password_file`.
    pub password: Option<Secret>,
    /// Frames analysed per second at most: 0 < detect_fps <= 60 (default 5).
    pub detect_fps: f32,
    /// Default TCP: it passes NAT and firewalls and loses no packets.
    pub transport: RtspTransport,
    /// rtspsrc jitter-buffer latency (default 200 ms).
    pub latency: Duration,
    /// No frame for this long tears the pipeline down and reconnects (default 5 s).
    pub stall_timeout: Duration,
    pub decoder: DecoderChoice,
}
