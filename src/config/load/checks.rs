//! Checks of single values that several tables share: names, numbers in a range, paths, files
//! and passwords.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use super::Checker;
use super::raw::{Float, Int, RawSecret};
use crate::config::secret::read_password_in;
use crate::config::{Secret, TopicName};

impl<'a> Checker<'a> {
    pub(super) fn topic_name(&mut self, key: &str, name: &str) -> Option<TopicName> {
        TopicName::parse(name)
            .map_err(|message| self.problem(key, message))
            .ok()
    }

    /// `value` (or `default`) when in `range`.
    pub(super) fn int(
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
    pub(super) fn float(
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

    pub(super) fn seconds(
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
    pub(super) fn path(&mut self, key: &str, path: PathBuf) -> Option<PathBuf> {
        if path.as_os_str().is_empty() {
            self.problem(key, "must not be empty");
            return None;
        }
        Some(self.base_dir.join(path))
    }

    pub(super) fn existing_file(&mut self, key: &str, path: PathBuf) -> Option<PathBuf> {
        let path = self.path(key, path)?;
        match self.files.is_file(&path) {
            Ok(true) => Some(path),
            Ok(false) => {
                self.problem(key, format!("`{}` is not a file", path.display()));
                None
            }
            Err(e) => {
                self.problem(key, format!("cannot use `{}`: {e}", path.display()));
                None
            }
        }
    }

    /// A certificate and its private key, `prefix.names[0]` and `prefix.names[1]`: both or
    /// neither. `Some(None)`: neither.
    pub(super) fn both_or_neither(
        &mut self,
        prefix: &str,
        names: [&str; 2],
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Option<Option<(PathBuf, PathBuf)>> {
        let [cert_name, key_name] = names;
        let (set, unset) = match (cert, key) {
            (None, None) => return Some(None),
            (Some(cert), Some(key)) => return Some(Some((cert, key))),
            (Some(_), None) => (cert_name, key_name),
            (None, Some(_)) => (key_name, cert_name),
        };
        self.problem(
            format!("{prefix}.{set}"),
            format!(
                "`{set}` is set but `{unset}` is not: set both (the certificate and its private \
                 key) or neither"
            ),
        );
        None
    }

    /// The password of table `prefix`, from `password` or the first line of `password_file`.
    /// `Some(None)`: no password.
    pub(super) fn password(
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
                match read_password_in(self.files, &file) {
                    Ok(secret) => Some(Some(secret)),
                    Err(e) => {
                        self.problem(key, e.to_string());
                        None
                    }
                }
            }
        }
    }
}

/// "`a`, `b` or `c`".
pub(super) fn one_of<const N: usize>(names: [&str; N]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

pub(super) fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use crate::config::TopicName;
    use crate::config::load::tests::{MINIMAL, file, parse, problem, with};

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
            ("cameras", "enabled = false", None),
            ("cameras", "enabled = \"no\"", Some("expected a boolean")),
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
}
