//! `[mqtt]`: the brokers, the login, TLS and the topics.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::Checker;
use super::raw::{Int, RawSecret};
use super::table::{Part, RawTable};
use crate::config::url::{parse_url, redact_url};
use crate::config::{BrokerUrl, CertKeyFiles, MqttConfig, MqttScheme, Qos, Secret, TopicName};

/// The first topic level unless `mqtt.topic_prefix` says otherwise.
pub const DEFAULT_TOPIC_PREFIX: &str = "watchpost";

/// The environment variable that supplies the MQTT password when the file sets neither
/// `mqtt.password` nor `mqtt.password_file` (ignored when unset or empty).
pub const MQTT_PASSWORD_ENV: &str = "WATCHPOST_MQTT_PASSWORD";

/// At most this many broker URLs in `mqtt.url`.
const MAX_BROKER_URLS: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMqtt {
    url: Option<RawUrls>,
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

impl RawTable for RawMqtt {
    const REQUIRED: &[&str] = &["url"];
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

impl<'a> Checker<'a> {
    /// `[mqtt]`: required. `device_id`: the default client id (`None`: the device is refused).
    pub(super) fn mqtt_section(&mut self, device_id: Option<&TopicName>) -> Option<MqttConfig> {
        match self.section::<RawMqtt>("mqtt") {
            Part::Found(raw) => self.mqtt(raw, device_id),
            Part::Missing => {
                self.problem("mqtt", "missing: an [mqtt] table with at least `url`");
                None
            }
            Part::Refused => None,
        }
    }

    fn mqtt(&mut self, raw: RawMqtt, device_id: Option<&TopicName>) -> Option<MqttConfig> {
        let urls = raw.url.and_then(|urls| self.broker_urls(urls));
        // Some(true): mqtts://; None: the URLs are refused (and said so already), or not given
        // where one other value is checked alone.
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
    ) -> Option<Option<CertKeyFiles>> {
        let Some((cert, key)) =
            self.both_or_neither("mqtt", ["client_cert", "client_key"], cert, key)?
        else {
            return Some(None);
        };
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
        Some(Some(CertKeyFiles {
            cert: cert?,
            key: key?,
        }))
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::files::MemoryFiles;
    use crate::config::load::parse_with;
    use crate::config::load::tests::parse_in;
    use crate::config::load::tests::{MINIMAL, file, parse, problem, with};
    use std::ffi::OsString;
    use std::path::Path;

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
        let files = MemoryFiles::new(&[
            ("/etc/watchpost/ca.pem", ""),
            ("/etc/watchpost/client.pem", ""),
            ("/etc/watchpost/client.key", ""),
        ]);
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
            match (parse_in(&text, &files), expected) {
                (Ok(config), Ok((client_cert, tls_verify))) => {
                    assert_eq!(
                        config.mqtt.client_cert.is_some(),
                        client_cert,
                        "{url} {lines}"
                    );
                    assert_eq!(config.mqtt.tls_verify, tls_verify, "{url} {lines}");
                    if let Some(files) = &config.mqtt.client_cert {
                        assert_eq!(files.cert, Path::new("/etc/watchpost/client.pem"));
                        assert_eq!(files.key, Path::new("/etc/watchpost/client.key"));
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
        let files = MemoryFiles::new(&[("/etc/watchpost/pw", "from-file")]);
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
            match (parse_with(&text, file(), &env, &files), expected) {
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
        let err = parse_with(&with("mqtt", "username = \"a\""), file(), &env, &files).unwrap_err();
        let [p] = err.problems() else { panic!("{err}") };
        assert_eq!(p.key, "mqtt.password");
        assert!(p.message.contains("is not valid UTF-8"), "{err}");
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
    fn mqtt_passwords_and_ca_file() {
        let files = MemoryFiles::new(&[("/etc/watchpost/pw", "mqtt-secret")]);
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
            match (parse_in(&text, &files), expected) {
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
}
