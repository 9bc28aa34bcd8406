//! `[[cameras]]`: one table per camera, each checked on its own; its zones and lines are in
//! [`super::shapes`].

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::de::DeValue;

use super::Checker;
use super::checks::millis;
use super::raw::{Float, Int, RawSecret};
use super::table::{RawTable, kind};
use crate::config::url::{Url, parse_url, redact_url};
use crate::config::{CameraConfig, DecoderChoice, RtspTransport, TopicName};

/// `idle_fps` when not set (lowered to `detect_fps` if that is lower).
pub const DEFAULT_IDLE_FPS: f64 = 0.5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCamera {
    name: Option<String>,
    enabled: Option<bool>,
    url: Option<String>,
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

impl RawTable for RawCamera {
    const REQUIRED: &[&str] = &["name", "url"];
}

impl<'a> Checker<'a> {
    pub(super) fn cameras(&mut self) -> Option<Vec<CameraConfig>> {
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

        let name = raw
            .name
            .as_deref()
            .and_then(|name| self.topic_name(&key("name"), name));
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
        let url = raw
            .url
            .as_deref()
            .and_then(|text| self.rtsp_url(&key("url"), text));
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
                            redact_url(raw.url.as_deref().unwrap_or_default())
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
            enabled: raw.enabled.unwrap_or(true),
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
}

#[cfg(test)]
mod tests {
    use crate::config::Secret;
    use crate::config::load::files::MemoryFiles;
    use crate::config::load::tests::{MINIMAL, parse_in};

    #[test]
    fn camera_credentials() {
        let files = MemoryFiles::new(&[
            ("/etc/watchpost/pw", "s3cr3t-file\n"),
            ("/etc/watchpost/empty", "\nsecond"),
        ]);
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
            match (parse_in(&text, &files), expected) {
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
}
