//! The agent's configuration: a TOML file → validated [`Config`].
//!
//! Two steps, as everywhere in watchpost: raw serde structs that mirror the file
//! (`deny_unknown_fields`) are turned into the types below, which cannot be wrong (names usable
//! in MQTT topics, `detect_fps` in range, URLs parsed, secrets wrapped). Every problem is
//! reported at once, one line each with the file, line and key path:
//! `watchpost.toml:14: cameras[1].detect_fps: must be more than 0 and at most 60, got 0`.
//! Entry points: [`load`] and [`parse`] (the files the configuration names read through
//! [`Files`]: [`OsFiles`], or another with [`parse_with_files`]); [`check_value`] checks one value
//! alone with the same checks and messages. The commented example of every key is
//! `deploy/watchpost.toml`.
//!
//! Secrets (RTSP and MQTT passwords) live in [`Secret`], whose `Debug` and `Display` print
//! `***`; URLs are kept without credentials.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::detect::ModelChoice;

pub mod audit;
pub mod change;
pub mod edit;
mod error;
mod load;
mod render;
mod secret;
mod url;
pub mod version;

pub use error::{ConfigError, Problem};
pub use load::{
    DEFAULT_IDLE_FPS, DEFAULT_STATE_DIR, DEFAULT_TOPIC_PREFIX, Files, MQTT_PASSWORD_ENV, OsFiles,
    check_value, load, load_local, parse, parse_with_files,
};
pub use render::render;
pub use secret::{PasswordFileError, Secret, read_password_file};
pub(crate) use url::parse_url;
pub use url::{redact_text, redact_url};

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
    pub tracking: TrackingConfig,
    pub events: EventsConfig,
    pub outbox: OutboxConfig,
    pub local: LocalConfig,
    pub commands: CommandsConfig,
    /// At least one camera; names unique.
    pub cameras: Vec<CameraConfig>,
}

/// `[commands]` (optional): remote commands from the central system, taken only when signed by
/// one of `trusted_keys` (see [`crate::command`]). Off by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandsConfig {
    /// `enabled = true`; commands are taken only with at least one trusted key as well.
    pub enabled: bool,
    /// Public key files (PEM) whose signatures are trusted, each existing; a key's id is its
    /// file's name without the extension, unique among them.
    pub trusted_keys: Vec<PathBuf>,
    /// Commands refused even when signed.
    pub disabled: std::collections::BTreeSet<crate::command::CommandName>,
}

impl CommandsConfig {
    /// Whether the agent takes commands: enabled, with a key to check them against.
    pub fn active(&self) -> bool {
        self.enabled && !self.trusted_keys.is_empty()
    }
}

/// `[local]` (optional): the agent's local HTTP endpoint, read by `watchpost status`, by a
/// Prometheus scraper and by the technician's page (`/status`, `/metrics`, `/`; see
/// [`crate::local`] and its access rules in `local/access.rs`).
///
/// Invariant (checked by [`parse`]): `listen` has a port other than 0, and is a loopback address
/// (127.0.0.0/8 or `::1`) unless `password_file` is set: a peer that is not this device must
/// log in with that password. `tls`, when set, names a certificate and the key that belongs to
/// it (checked by [`parse`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalConfig {
    /// Where the endpoint listens (default [`LocalConfig::DEFAULT_LISTEN`]); `None` = no
    /// endpoint (`listen = ""`).
    pub listen: Option<std::net::SocketAddr>,
    /// `password_file`: the file with the password of a peer that is not this device (its first
    /// line). Shown by `config show`; its content never is.
    pub password_file: Option<PathBuf>,
    /// The password read from `password_file` by [`parse`]. `None` without a `password_file`, and
    /// from [`load_local`] (for `watchpost status`, which may run as a user who cannot read it).
    pub password: Option<Secret>,
    /// `metrics_without_login = true`: `GET /metrics` from a peer that is not this device needs
    /// no login (for a scraper on the LAN). Default false.
    pub metrics_without_login: bool,
    /// `tls_cert` and `tls_key` (both or neither): the endpoint speaks HTTPS with this
    /// certificate, and `watchpost status` and the edit commands trust exactly it. Read and
    /// checked to belong together by [`parse`] (only looked up by [`load_local`]). The paths are
    /// shown by `config show`; the key's content never is.
    pub tls: Option<CertKeyFiles>,
    /// `allowed_hosts`: host names (lower case, no port) a request's `Host` header may name
    /// besides `localhost` and IP addresses (against DNS rebinding; see `local/access.rs`).
    pub allowed_hosts: Vec<String>,
}

impl LocalConfig {
    /// `127.0.0.1:9750`.
    pub const DEFAULT_LISTEN: std::net::SocketAddr = std::net::SocketAddr::V4(
        std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 9750),
    );
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            listen: Some(Self::DEFAULT_LISTEN),
            password_file: None,
            password: None,
            metrics_without_login: false,
            tls: None,
            allowed_hosts: Vec::new(),
        }
    }
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
///
/// Invariants (checked by [`parse`]): `urls` holds 1 to 16 different endpoints, all `mqtt://`
/// or all `mqtts://`; `client_cert` and `tls_verify = false` only with `mqtts://`; a password
/// only with a user name.
#[derive(Clone, Debug)]
pub struct MqttConfig {
    /// The endpoints of one (possibly clustered) broker, tried in this order: the first is used
    /// until a connection to it fails, then the next. Never empty.
    pub urls: Vec<BrokerUrl>,
    /// Default: the device id.
    pub client_id: String,
    /// First topic level (default `watchpost`); may contain `/` for deeper prefixes, but no
    /// wildcards, no empty levels.
    pub topic_prefix: String,
    pub username: Option<String>,
    /// From `password`, the first line of `password_file`, or, when neither is set, the
    /// environment variable `WATCHPOST_MQTT_PASSWORD` ([`MQTT_PASSWORD_ENV`]) if it is set and
    /// not empty.
    pub password: Option<Secret>,
    /// QoS of `detections` (default at most once).
    pub detections_qos: Qos,
    /// Default 30 s.
    pub keep_alive: Duration,
    /// CA bundle for `mqtts://` (default: the system roots).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key for mutual TLS (`client_cert` and `client_key`); only with
    /// `mqtts://`.
    pub client_cert: Option<CertKeyFiles>,
    /// Check the broker's certificate (default). `false` (only with `mqtts://`) accepts any
    /// certificate: the traffic is encrypted but the broker is not authenticated, and the
    /// publisher warns at every connection.
    pub tls_verify: bool,
}

impl MqttConfig {
    /// The endpoints use TLS (they all use the same scheme).
    pub fn uses_tls(&self) -> bool {
        self.urls
            .first()
            .is_some_and(|u| u.scheme == MqttScheme::Mqtts)
    }
}

/// A certificate and its private key, PEM files that existed when the configuration was read:
/// the agent's client certificate for mutual TLS to the broker (`[mqtt]`), or the local
/// endpoint's server certificate (`[local]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertKeyFiles {
    /// The certificate chain, the agent's own certificate first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[detection]` (all optional).
#[derive(Clone, Debug)]
pub struct DetectionConfig {
    /// Which model runs (default: int8 where the CPU has dot-product instructions, else fp32).
    pub model: ModelChoice,
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
    /// `enabled = false` keeps the camera in the file but does not run it (default true);
    /// `camera.disable` and `camera.enable` (remote commands) set it.
    pub enabled: bool,
    /// `rtsp://` or `rtsps://` URL with any credentials removed (they are in the fields below).
    pub url: String,
    /// From the URL's user part or the `username` field.
    pub username: Option<String>,
    /// From the URL, the `password` field, or the first line of `password_file`.
    pub password: Option<Secret>,
    /// Frames analysed per second at most: 0 < detect_fps <= 60 (default 5).
    pub detect_fps: f32,
    /// Frames analysed per second while the camera is idle (no motion in the picture and no
    /// track moving for a few seconds): 0 (never) to `detect_fps`, default 0.5.
    pub idle_fps: f32,
    /// Whether the camera slows to `idle_fps` when nothing moves (default true); false keeps it
    /// at `detect_fps` always.
    pub motion_gate: bool,
    /// Default TCP: it passes NAT and firewalls and loses no packets.
    pub transport: RtspTransport,
    /// rtspsrc jitter-buffer latency (default 200 ms).
    pub latency: Duration,
    /// No frame for this long tears the pipeline down and reconnects (default 5 s).
    pub stall_timeout: Duration,
    pub decoder: DecoderChoice,
    /// `[[cameras.zones]]`: names unique within the camera.
    pub zones: Vec<ZoneConfig>,
    /// `[[cameras.lines]]`: names unique within the camera (and distinct from zone names).
    pub lines: Vec<LineConfig>,
}

impl CameraConfig {
    /// rtspsrc's jitter-buffer latency when `latency_ms` is not set (also `camera probe`'s).
    pub const DEFAULT_LATENCY_MS: i64 = 200;
    /// [`Self::DEFAULT_LATENCY_MS`] as a duration.
    pub const DEFAULT_LATENCY: Duration =
        Duration::from_millis(Self::DEFAULT_LATENCY_MS.unsigned_abs());
}

/// `[tracking]` (all optional). Times are in seconds because the analysed rate varies with load.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackingConfig {
    /// Matches before a track is confirmed (gets a `track_id`, `track_start`), default 3.
    pub min_hits: u32,
    /// A track not matched for this long ends (default 1.5 s).
    pub max_age: Duration,
    /// Detections at or above this score are matched first and may start tracks (ByteTrack's
    /// first stage); lower ones only keep existing tracks alive. Default 0.4: the bundled model
    /// scores most persons 0.35–0.6, and at 0.5 most people on the sample footage never got a
    /// track.
    pub high_score: f32,
    /// Minimum IoU between a track's predicted box and a detection to match (default 0.3).
    pub match_iou: f32,
    /// Consecutive updates on the new side before a zone enter/exit or a line crossing counts
    /// (default 3); zones and lines may override it.
    pub inertia: u32,
}

/// What pictures go with events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMode {
    /// No pictures.
    Off,
    /// The frame with the object's box and label and the zone or line drawn (default).
    Annotated,
    /// As annotated, with every person box blurred.
    Redacted,
}

/// The kinds of event, as in the `type` field of `events` messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    TrackStart,
    TrackEnd,
    ZoneEnter,
    ZoneExit,
    Loitering,
    LineCross,
}

impl SnapshotMode {
    pub const ALL: [SnapshotMode; 3] = [
        SnapshotMode::Off,
        SnapshotMode::Annotated,
        SnapshotMode::Redacted,
    ];

    /// The name used in the configuration file (`off`, `annotated`, `redacted`).
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMode::Off => "off",
            SnapshotMode::Annotated => "annotated",
            SnapshotMode::Redacted => "redacted",
        }
    }

    pub fn parse(name: &str) -> Option<SnapshotMode> {
        SnapshotMode::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::TrackStart,
        EventKind::TrackEnd,
        EventKind::ZoneEnter,
        EventKind::ZoneExit,
        EventKind::Loitering,
        EventKind::LineCross,
    ];

    /// The name in the configuration file and in the `type` field of `events` messages.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TrackStart => "track_start",
            EventKind::TrackEnd => "track_end",
            EventKind::ZoneEnter => "zone_enter",
            EventKind::ZoneExit => "zone_exit",
            EventKind::Loitering => "loitering",
            EventKind::LineCross => "line_cross",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// `[events]` (all optional).
#[derive(Clone, Debug, PartialEq)]
pub struct EventsConfig {
    /// Default annotated.
    pub snapshots: SnapshotMode,
    /// Which event kinds get a snapshot (default: zone_enter, loitering, line_cross).
    pub snapshot_kinds: Vec<EventKind>,
    /// Snapshots wider than this are scaled down (default 1280 px).
    pub snapshot_max_width: u32,
    /// JPEG quality 1..=100 (default 80).
    pub snapshot_quality: u8,
    /// Device-wide data minimisation: no pixels leave the box, whatever `snapshots` says.
    pub metadata_only: bool,
}

/// `[outbox]` (all optional): events kept on disk until the broker has them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Default `{device.state_dir}/outbox`.
    pub dir: PathBuf,
    /// Most bytes kept on disk (`max_size_mb` MiB, default 256 MiB).
    pub max_bytes: u64,
    /// An event older than this is dropped unsent (`max_age_h`, default 7 days).
    pub max_age: Duration,
    /// What goes when `max_bytes` is reached (default the oldest).
    pub when_full: WhenFull,
    /// When written events are forced to disk (default after every event).
    pub sync: OutboxSync,
}

impl OutboxConfig {
    pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

    /// The defaults, with the outbox in `state_dir/outbox`.
    pub fn in_state_dir(state_dir: &Path) -> OutboxConfig {
        OutboxConfig {
            dir: state_dir.join("outbox"),
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_age: Self::DEFAULT_MAX_AGE,
            when_full: WhenFull::DropOldest,
            sync: OutboxSync::EveryEvent,
        }
    }
}

/// What the outbox drops when it is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// The oldest events make room for the new one (default): recent events matter most.
    DropOldest,
    /// The new event is dropped: what is kept is never replaced.
    DropNewest,
}

impl WhenFull {
    pub const ALL: [WhenFull; 2] = [WhenFull::DropOldest, WhenFull::DropNewest];

    /// The name in the configuration file (`drop_oldest`, `drop_newest`).
    pub fn as_str(self) -> &'static str {
        match self {
            WhenFull::DropOldest => "drop_oldest",
            WhenFull::DropNewest => "drop_newest",
        }
    }

    pub fn parse(name: &str) -> Option<WhenFull> {
        WhenFull::ALL.into_iter().find(|w| w.as_str() == name)
    }
}

/// When the outbox forces what it wrote to disk (fsync).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxSync {
    /// After every event (default): nothing acknowledged is lost in a power cut; the most disk
    /// writes.
    EveryEvent,
    /// At most this long after an event: a power cut loses at most this much.
    Interval(Duration),
    /// Left to the operating system (usually within 30 s); the fewest writes.
    Never,
}

impl OutboxSync {
    /// The names of `sync` in the configuration file.
    pub const NAMES: [&str; 3] = ["every_event", "interval", "never"];

    /// The name in the configuration file (`every_event`, `interval`, `never`).
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxSync::EveryEvent => "every_event",
            OutboxSync::Interval(_) => "interval",
            OutboxSync::Never => "never",
        }
    }
}

/// `[[cameras.zones]]`: a named polygon in normalised image coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneConfig {
    pub name: TopicName,
    pub polygon: crate::geometry::Polygon,
    /// Which classes the zone reacts to (default both).
    pub classes: Vec<crate::detect::CoarseClass>,
    /// `loitering` fires once after this long inside (default: never).
    pub loiter: Option<Duration>,
    /// Overrides `[tracking] inertia`.
    pub inertia: Option<u32>,
}

/// `[[cameras.lines]]`: a named segment or polyline with named crossing directions.
#[derive(Clone, Debug, PartialEq)]
pub struct LineConfig {
    pub name: TopicName,
    pub polyline: crate::geometry::Polyline,
    /// `[first, second]`: first = crossing from the left to the right side, looking from the
    /// first point to the last (default `["in", "out"]`).
    pub direction_names: [TopicName; 2],
    /// Which classes the line counts (default both).
    pub classes: Vec<crate::detect::CoarseClass>,
    /// Overrides `[tracking] inertia`.
    pub inertia: Option<u32>,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            min_hits: 3,
            max_age: Duration::from_millis(1500),
            high_score: 0.4,
            match_iou: 0.3,
            inertia: 3,
        }
    }
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            snapshots: SnapshotMode::Annotated,
            snapshot_kinds: vec![
                EventKind::ZoneEnter,
                EventKind::Loitering,
                EventKind::LineCross,
            ],
            snapshot_max_width: 1280,
            snapshot_quality: 80,
            metadata_only: false,
        }
    }
}
