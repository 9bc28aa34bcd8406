//! [`Config`] → TOML text: the configuration the agent actually runs with, every default filled
//! in, for `watchpost config show` and for comparing two configurations key by key (the audit
//! log).
//!
//! Invariant (tested): [`super::parse`] of the rendered text gives back the same [`Config`]
//! (passwords aside: they are written as `"***"`), when the paths in it still exist.
//! Passwords never appear: a password that is set, from wherever it came (`password`,
//! `password_file`, `$WATCHPOST_MQTT_PASSWORD`, the camera URL), is `password = "***"`; a URL
//! is written without its user and password. Settings that are not set and have no value to
//! write (no user name, the model chosen by the CPU, ...) are a comment saying what applies.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::{
    CameraConfig, Config, DecoderChoice, LineConfig, ModelChoice, MqttConfig, OutboxSync, Qos,
    Secret, ZoneConfig,
};

/// The effective configuration as TOML (see the module documentation).
pub fn render(config: &Config) -> String {
    let mut out = Out::default();
    let Config {
        device,
        mqtt,
        detection,
        health,
        tracking,
        events,
        outbox,
        local,
        commands,
        cameras,
    } = config;

    out.table("device");
    out.value("site", string(device.site.as_str()));
    out.value("id", string(device.id.as_str()));
    out.value("state_dir", path(&device.state_dir));

    mqtt_table(&mut out, mqtt);

    out.table("detection");
    match &detection.model {
        ModelChoice::Auto => out.unset(
            "model",
            "auto: the int8 model where the CPU has integer dot-product instructions, else fp32",
        ),
        ModelChoice::Bundled(name) => out.value("model", string(name)),
        ModelChoice::Manifest(model) => out.value("model", path(model)),
    }
    match &detection.ort_lib {
        Some(lib) => out.value("ort_lib", path(lib)),
        None => out.unset(
            "ort_lib",
            "$WATCHPOST_ORT_LIB, next to the binary, then /opt/watchpost/onnxruntime",
        ),
    }
    out.value("inference_threads", detection.inference_threads.to_string());
    out.value("max_frame_age_ms", millis(detection.max_frame_age));

    out.table("health");
    out.value("interval_s", whole_seconds(health.interval));

    out.table("tracking");
    out.value("min_hits", tracking.min_hits.to_string());
    out.value("max_age_s", float(tracking.max_age.as_secs_f64()));
    out.value("high_score", float32(tracking.high_score));
    out.value("match_iou", float32(tracking.match_iou));
    out.value("inertia", tracking.inertia.to_string());

    out.table("events");
    out.value("snapshots", string(events.snapshots.as_str()));
    out.value(
        "snapshot_kinds",
        list(events.snapshot_kinds.iter().map(|k| string(k.as_str()))),
    );
    out.value("snapshot_max_width", events.snapshot_max_width.to_string());
    out.value("snapshot_quality", events.snapshot_quality.to_string());
    out.value("metadata_only", events.metadata_only.to_string());

    out.table("outbox");
    out.value("dir", path(&outbox.dir));
    out.value(
        "max_size_mb",
        (outbox.max_bytes / (1024 * 1024)).to_string(),
    );
    out.value("max_age_h", float(outbox.max_age.as_secs_f64() / 3600.0));
    out.value("when_full", string(outbox.when_full.as_str()));
    out.value("sync", string(outbox.sync.as_str()));
    match outbox.sync {
        OutboxSync::Interval(every) => out.value("sync_interval_ms", millis(every)),
        OutboxSync::EveryEvent | OutboxSync::Never => {
            out.unset("sync_interval_ms", "only used with sync = \"interval\"");
        }
    }

    out.table("local");
    match local.listen {
        Some(address) => out.value("listen", string(&address.to_string())),
        None => out.value("listen", string("")),
    }
    // The path, never the password in it.
    match &local.password_file {
        Some(file) => out.value("password_file", path(file)),
        None => out.unset("password_file", "none (loopback peers only)"),
    }
    out.value(
        "metrics_without_login",
        local.metrics_without_login.to_string(),
    );
    // The paths, never the key in them.
    match &local.tls {
        Some(files) => {
            out.value("tls_cert", path(&files.cert));
            out.value("tls_key", path(&files.key));
        }
        None => {
            out.unset("tls_cert", "none (plain HTTP)");
            out.unset("tls_key", "none (plain HTTP)");
        }
    }
    out.value(
        "allowed_hosts",
        list(local.allowed_hosts.iter().map(|h| string(h))),
    );

    out.table("commands");
    out.value("enabled", commands.enabled.to_string());
    out.value(
        "trusted_keys",
        list(commands.trusted_keys.iter().map(|k| path(k))),
    );
    out.value(
        "disabled",
        list(commands.disabled.iter().map(|c| string(c.as_str()))),
    );

    for camera in cameras {
        camera_table(&mut out, camera);
    }
    out.text
}

fn mqtt_table(out: &mut Out, mqtt: &MqttConfig) {
    out.table("mqtt");
    match mqtt.urls.as_slice() {
        [one] => out.value("url", string(&one.to_string())),
        many => out.value("url", list(many.iter().map(|u| string(&u.to_string())))),
    }
    out.value("client_id", string(&mqtt.client_id));
    out.value("topic_prefix", string(&mqtt.topic_prefix));
    out.credentials(mqtt.username.as_deref(), mqtt.password.as_ref());
    let qos = match mqtt.detections_qos {
        Qos::AtMostOnce => 0,
        Qos::AtLeastOnce => 1,
        Qos::ExactlyOnce => 2,
    };
    out.value("detections_qos", qos.to_string());
    out.value("keep_alive_s", whole_seconds(mqtt.keep_alive));
    match &mqtt.ca_file {
        Some(file) => out.value("ca_file", path(file)),
        None => out.unset("ca_file", "the system roots"),
    }
    match &mqtt.client_cert {
        Some(files) => {
            out.value("client_cert", path(&files.cert));
            out.value("client_key", path(&files.key));
        }
        None => out.unset("client_cert", "none (no client certificate)"),
    }
    out.value("tls_verify", mqtt.tls_verify.to_string());
}

fn camera_table(out: &mut Out, camera: &CameraConfig) {
    out.array_table("cameras");
    out.value("name", string(camera.name.as_str()));
    out.value("enabled", camera.enabled.to_string());
    out.value("url", string(&camera.url));
    out.credentials(camera.username.as_deref(), camera.password.as_ref());
    out.value("detect_fps", float32(camera.detect_fps));
    out.value("idle_fps", float32(camera.idle_fps));
    out.value("motion_gate", camera.motion_gate.to_string());
    let transport = match camera.transport {
        super::RtspTransport::Tcp => "tcp",
        super::RtspTransport::Udp => "udp",
    };
    out.value("transport", string(transport));
    out.value("latency_ms", millis(camera.latency));
    out.value("stall_timeout_s", whole_seconds(camera.stall_timeout));
    match &camera.decoder {
        DecoderChoice::Auto => out.value("decoder", string("auto")),
        DecoderChoice::Named(name) => out.value("decoder", string(name)),
    }
    for zone in &camera.zones {
        zone_table(out, zone);
    }
    for line in &camera.lines {
        line_table(out, line);
    }
}

fn zone_table(out: &mut Out, zone: &ZoneConfig) {
    out.array_table("cameras.zones");
    out.value("name", string(zone.name.as_str()));
    out.value("points", points(zone.polygon.points()));
    out.value(
        "classes",
        list(zone.classes.iter().map(|c| string(c.as_str()))),
    );
    match zone.loiter {
        Some(after) => out.value("loiter_s", float(after.as_secs_f64())),
        None => out.unset("loiter_s", "never"),
    }
    match zone.inertia {
        Some(inertia) => out.value("inertia", inertia.to_string()),
        None => out.unset("inertia", "[tracking] inertia"),
    }
}

fn line_table(out: &mut Out, line: &LineConfig) {
    out.array_table("cameras.lines");
    out.value("name", string(line.name.as_str()));
    out.value("points", points(line.polyline.points()));
    out.value(
        "direction_names",
        list(line.direction_names.iter().map(|n| string(n.as_str()))),
    );
    out.value(
        "classes",
        list(line.classes.iter().map(|c| string(c.as_str()))),
    );
    match line.inertia {
        Some(inertia) => out.value("inertia", inertia.to_string()),
        None => out.unset("inertia", "[tracking] inertia"),
    }
}

/// The text being written.
#[derive(Default)]
struct Out {
    text: String,
}

impl Out {
    fn table(&mut self, name: &str) {
        self.separate();
        let _ = writeln!(self.text, "[{name}]");
    }

    fn array_table(&mut self, name: &str) {
        self.separate();
        let _ = writeln!(self.text, "[[{name}]]");
    }

    fn separate(&mut self) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
    }

    /// `key = value`; `value` is TOML already.
    fn value(&mut self, key: &str, value: String) {
        let _ = writeln!(self.text, "{key} = {value}");
    }

    /// A setting that is not set: `# key: what applies`.
    fn unset(&mut self, key: &str, what_applies: &str) {
        let _ = writeln!(self.text, "# {key}: {what_applies}");
    }

    /// `username`, and `password` as `"***"` when there is one: never the password itself.
    fn credentials(&mut self, username: Option<&str>, password: Option<&Secret>) {
        match username {
            Some(user) => self.value("username", string(user)),
            None => self.unset("username", "none"),
        }
        match password {
            Some(_) => self.value("password", string("***")),
            None => self.unset("password", "none"),
        }
    }
}

/// A TOML basic string, escaped.
fn string(s: &str) -> String {
    toml_edit::Value::from(s).to_string()
}

fn path(p: &Path) -> String {
    string(&p.to_string_lossy())
}

fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

/// A float that reads back as the same `f64`, always with a `.` or an exponent.
fn float(x: f64) -> String {
    let mut text = x.to_string();
    if !text.contains(['.', 'e', 'E', 'i', 'n']) {
        text.push_str(".0");
    }
    text
}

/// An `f32` written with the fewest digits that read back (through `f64`, as the loader reads
/// it) as the same `f32`.
fn float32(x: f32) -> String {
    let mut text = x.to_string();
    if !text.contains(['.', 'e', 'E', 'i', 'n']) {
        text.push_str(".0");
    }
    text
}

fn points(points: &[crate::geometry::Point]) -> String {
    list(
        points
            .iter()
            .map(|p| format!("[{}, {}]", float32(p.x), float32(p.y))),
    )
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

/// Whole seconds (the loader takes these keys in whole seconds).
fn whole_seconds(d: Duration) -> String {
    d.as_secs().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[device]
site = "bihac-north"
id = "post-07"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[[cameras]]
name = "gate-east"
url = "rtsp://10.0.0.21:554/stream1"
"#;

    /// Every table and most keys set to something other than the default; `{DIR}` is a folder
    /// with the files that must exist.
    const FULL: &str = r#"
[device]
site = "rafah"
id = "post_3"
state_dir = "state"
[mqtt]
url = ["mqtts://broker-1.example:8883", "mqtts://[fd00::1]:9883"]
client_id = "watchpost post 3"
topic_prefix = "border/east"
username = "wp"
password_file = "{DIR}/mqtt-password"
detections_qos = 2
keep_alive_s = 45
ca_file = "{DIR}/ca.pem"
client_cert = "{DIR}/client.pem"
client_key = "{DIR}/client.key"
tls_verify = false
[detection]
model = "/opt/models/other.toml"
ort_lib = "lib/libonnxruntime.so"
inference_threads = 3
max_frame_age_ms = 750
[health]
interval_s = 7
[tracking]
min_hits = 5
max_age_s = 2.25
high_score = 0.35
match_iou = 0.123
inertia = 4
[events]
snapshots = "redacted"
snapshot_kinds = []
snapshot_max_width = 640
snapshot_quality = 55
metadata_only = true
[outbox]
dir = "/data/outbox"
max_size_mb = 1024
max_age_h = 0.5
when_full = "drop_newest"
sync = "interval"
sync_interval_ms = 250
[local]
listen = "0.0.0.0:9999"
password_file = "{DIR}/page-password"
metrics_without_login = true
[[cameras]]
name = "gate-east"
url = "rtsp://admin:s3cr%40t@10.0.0.21:554/stream1?channel=1"
detect_fps = 0.3
transport = "udp"
latency_ms = 0
stall_timeout_s = 30
decoder = "v4l2"
[[cameras.zones]]
name = "road"
points = [[0.1, 0.4], [0.9, 0.4], [0.9, 0.95], [0.1, 0.95]]
classes = ["vehicle"]
loiter_s = 12.5
inertia = 2
[[cameras.zones]]
name = "dock"
points = [[0.333, 0.1], [0.7, 0.1], [0.5, 0.3]]
[[cameras.lines]]
name = "border"
points = [[0.5, 0.2], [0.45, 0.6], [0.5, 0.95]]
direction_names = ["north", "south"]
classes = ["person"]
inertia = 7
[[cameras]]
name = "gate-west"
url = "rtsps://[fd00::22]/live"
username = "viewer"
password = "hunter2"
detect_fps = 60
[[cameras.lines]]
name = "fence"
points = [[0, 0], [1, 1]]
[[cameras]]
name = "yard"
url = "rtsp://yard.local/x"
[[cameras.zones]]
name = "all"
points = [[0, 0], [1, 0], [1, 1], [0, 1]]
"#;

    #[test]
    fn render_then_parse_gives_the_same_configuration() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("mqtt-password", "m0squitto\n"),
            ("page-password", "page-s3cret\n"),
            ("ca.pem", "x"),
            ("client.pem", "x"),
            ("client.key", "x"),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let full = FULL.replace("{DIR}", &dir.path().to_string_lossy());
        let without_local = MINIMAL.to_owned() + "[local]\nlisten = \"\"\n";
        let file = std::path::Path::new("/etc/watchpost/watchpost.toml");
        for (case, text) in [
            ("minimal", MINIMAL.to_owned()),
            ("full", full),
            ("endpoint off", without_local),
        ] {
            let config = crate::config::parse(&text, file)
                .unwrap_or_else(|e| panic!("{case}: the test configuration is refused:\n{e}"));
            let rendered = render(&config);
            let again = crate::config::parse(&rendered, file)
                .unwrap_or_else(|e| panic!("{case}: the rendering is refused:\n{e}\n{rendered}"));
            // Debug shows every field; passwords print as `Secret(***)` either way.
            assert_eq!(
                format!("{again:?}"),
                format!("{config:?}"),
                "{case}:\n{rendered}"
            );
            assert_eq!(render(&again), rendered, "{case}");
            for secret in ["hunter2", "s3cr", "m0squitto", "page-s3cret"] {
                assert!(
                    !rendered.contains(secret),
                    "{case}: {secret} shown:\n{rendered}"
                );
            }
        }
    }

    #[test]
    fn every_default_is_written() {
        let config =
            crate::config::parse(MINIMAL, std::path::Path::new("/etc/watchpost/w.toml")).unwrap();
        let rendered = render(&config);
        for line in [
            "state_dir = \"/var/lib/watchpost\"",
            "client_id = \"post-07\"",
            "topic_prefix = \"watchpost\"",
            "# username: none",
            "keep_alive_s = 30",
            "# model: auto: the int8 model where the CPU has integer dot-product instructions, else fp32",
            "max_frame_age_ms = 1000",
            "interval_s = 10",
            "max_age_s = 1.5",
            "high_score = 0.4",
            "snapshot_kinds = [\"zone_enter\", \"loitering\", \"line_cross\"]",
            "dir = \"/var/lib/watchpost/outbox\"",
            "max_size_mb = 256",
            "max_age_h = 168.0",
            "listen = \"127.0.0.1:9750\"",
            "# password_file: none (loopback peers only)",
            "metrics_without_login = false",
            "detect_fps = 5.0",
            "transport = \"tcp\"",
            "latency_ms = 200",
            "stall_timeout_s = 5",
            "decoder = \"auto\"",
        ] {
            assert!(
                rendered.lines().any(|l| l == line),
                "no `{line}` in:\n{rendered}"
            );
        }
        assert!(!rendered.contains("password ="), "{rendered}");
    }

    #[test]
    fn floats_read_back_the_same() {
        for x in [0.3f32, 0.1, 1.0 / 3.0, 60.0, 1e-7, 0.123_456_79] {
            let text = float32(x);
            #[allow(clippy::cast_possible_truncation)]
            let back = text.parse::<f64>().unwrap() as f32;
            assert_eq!(back.to_bits(), x.to_bits(), "{x} → {text}");
            assert!(text.contains('.') || text.contains('e'), "{text}");
        }
        assert_eq!(float(168.0), "168.0");
        assert_eq!(float(0.01), "0.01");
    }
}
