//! The MQTT connection: client options (TLS, credentials, last will), the reconnection backoff
//! and the words for connection failures. The task that drives the connection is `driver.rs`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rumqttc::{
    ConnectReturnCode, ConnectionError, LastWill, MqttOptions, StateError, TlsConfiguration,
    Transport,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::PublishError;
use crate::config::{MqttConfig, MqttScheme};

/// Largest packet the client sends (rumqttc's default of 10 KiB is too small for a frame with
/// many objects; a too large packet would end the connection).
const MAX_OUTGOING_PACKET: usize = 1024 * 1024;
/// Largest packet the client accepts (it subscribes to nothing; only acks arrive).
const MAX_INCOMING_PACKET: usize = 64 * 1024;

/// Where system CA bundles live on the Linux distributions the agent runs on (the list
/// openssl-probe uses), after `$SSL_CERT_FILE`.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// rumqttc options for `config`, with `will` as the last will.
///
/// # Errors
/// `mqtts://` with a CA file that cannot be read or holds no certificate, or no system CA
/// bundle found.
pub(crate) fn mqtt_options(
    config: &MqttConfig,
    will: LastWill,
) -> Result<MqttOptions, PublishError> {
    let url = &config.url;
    // rumqttc joins host and port as `host:port`: an IPv6 literal needs its brackets.
    let host = if url.host.contains(':') && url.scheme == MqttScheme::Mqtt {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let mut options = MqttOptions::new(config.client_id.clone(), host, url.port);
    // rumqttc refuses keep-alives under one second (other than zero, which disables them).
    let keep_alive = if config.keep_alive.is_zero() {
        Duration::ZERO
    } else {
        config.keep_alive.max(Duration::from_secs(1))
    };
    options
        .set_keep_alive(keep_alive)
        .set_clean_session(true)
        .set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET)
        .set_last_will(will);
    match (&config.username, &config.password) {
        (Some(user), password) => {
            options.set_credentials(
                user.clone(),
                password
                    .as_ref()
                    .map(|p| p.expose().to_owned())
                    .unwrap_or_default(),
            );
        }
        (None, Some(_)) => {
            tracing::warn!(
                "mqtt: a password without a user name is not sent (MQTT 3.1.1 needs both)"
            );
        }
        (None, None) => {}
    }
    if url.scheme == MqttScheme::Mqtts {
        let tls = tls_client_config(config.ca_file.as_deref())?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    }
    Ok(options)
}

/// A rustls client configuration with the ring provider and the roots from `ca_file`, or the
/// system's CA bundle.
fn tls_client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, PublishError> {
    let (path, certificates) = match ca_file {
        Some(path) => {
            let certificates = read_certificates(path).map_err(|reason| PublishError::CaFile {
                path: path.to_owned(),
                reason,
            })?;
            (path.to_owned(), certificates)
        }
        None => system_roots()?,
    };
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(PublishError::CaFile {
            path,
            reason: "no usable CA certificate in it".to_owned(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PublishError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
    if certificates.is_empty() {
        return Err("no PEM certificate in it".to_owned());
    }
    Ok(certificates)
}

fn system_roots() -> Result<(PathBuf, Vec<CertificateDer<'static>>), PublishError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(file));
    }
    candidates.extend(SYSTEM_CA_BUNDLES.iter().map(PathBuf::from));
    for path in &candidates {
        if path.is_file() {
            return read_certificates(path)
                .map(|certificates| (path.clone(), certificates))
                .map_err(|reason| PublishError::CaFile {
                    path: path.clone(),
                    reason,
                });
        }
    }
    Err(PublishError::NoSystemRoots {
        looked_in: candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The delay before the next connection attempt: 1 s after the first failure, doubling up to
/// 30 s, back to 1 s after a successful connection.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) const MIN: Duration = Duration::from_secs(1);
    pub(crate) const MAX: Duration = Duration::from_secs(30);

    pub(crate) fn new() -> Backoff {
        Backoff { next: Self::MIN }
    }

    /// The delay to wait now; `jitter` in `0..1` shortens it by up to 20%.
    pub(crate) fn next_delay(&mut self, jitter: f64) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay.mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0))
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::MIN;
    }
}

/// A number in `0..1` that differs between processes and attempts; enough to spread reconnects.
pub(crate) fn jitter() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = (u64::from(nanos) ^ (u64::from(std::process::id()) << 20))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 11) as f64 / (1u64 << 53) as f64
}

/// Why a connection failed or ended, in words for the log and `watchpost status`. Never
/// contains credentials (rumqttc's errors do not carry them).
pub(crate) fn describe(error: &ConnectionError) -> String {
    match error {
        ConnectionError::ConnectionRefused(code) => match code {
            ConnectReturnCode::BadUserNamePassword => {
                "refused by the broker: bad user name or password".to_owned()
            }
            ConnectReturnCode::NotAuthorized => "refused by the broker: not authorised".to_owned(),
            ConnectReturnCode::BadClientId => {
                "refused by the broker: client id rejected".to_owned()
            }
            ConnectReturnCode::ServiceUnavailable => {
                "refused by the broker: service unavailable".to_owned()
            }
            ConnectReturnCode::RefusedProtocolVersion => {
                "refused by the broker: MQTT 3.1.1 not accepted".to_owned()
            }
            ConnectReturnCode::Success => "refused by the broker".to_owned(),
        },
        ConnectionError::Io(e) => describe_io(e),
        ConnectionError::Tls(e) => format!("TLS: {e}"),
        ConnectionError::NetworkTimeout => "timed out connecting".to_owned(),
        ConnectionError::FlushTimeout => "timed out sending".to_owned(),
        ConnectionError::MqttState(StateError::Io(e)) => describe_io(e),
        ConnectionError::MqttState(StateError::AwaitPingResp) => {
            "the broker stopped answering (no ping response)".to_owned()
        }
        ConnectionError::MqttState(StateError::ConnectionAborted) => {
            "connection closed by the broker".to_owned()
        }
        ConnectionError::MqttState(e) => format!("protocol error: {e}"),
        ConnectionError::NotConnAck(packet) => {
            format!("protocol error: expected CONNACK, got {packet:?}")
        }
        other => other.to_string(),
    }
}

fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset by the broker".to_owned(),
        io::ErrorKind::UnexpectedEof => "connection closed by the broker".to_owned(),
        io::ErrorKind::TimedOut => "timed out".to_owned(),
        // TLS failures during the handshake come wrapped in I/O errors.
        io::ErrorKind::InvalidData => format!("TLS: {e}"),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut backoff = Backoff::new();
        let delays: Vec<u64> = (0..8).map(|_| backoff.next_delay(0.0).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        backoff.reset();
        assert_eq!(backoff.next_delay(0.0), Duration::from_secs(1));
        // Jitter only shortens, by at most 20%.
        assert_eq!(backoff.next_delay(1.0), Duration::from_millis(1600));
        assert_eq!(backoff.next_delay(7.0), Duration::from_millis(3200));
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn causes_in_words() {
        let cases = [
            (
                ConnectionError::Io(io::Error::from(io::ErrorKind::ConnectionRefused)),
                "connection refused",
            ),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword),
                "refused by the broker: bad user name or password",
            ),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized),
                "refused by the broker: not authorised",
            ),
            (ConnectionError::NetworkTimeout, "timed out connecting"),
            (
                ConnectionError::MqttState(StateError::Io(io::Error::from(
                    io::ErrorKind::UnexpectedEof,
                ))),
                "connection closed by the broker",
            ),
            (
                ConnectionError::MqttState(StateError::AwaitPingResp),
                "the broker stopped answering (no ping response)",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(describe(&error), expected);
        }
    }

    fn will() -> LastWill {
        LastWill::new("t/status", "{}", rumqttc::QoS::AtLeastOnce, true)
    }

    fn config(url: &str) -> MqttConfig {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (host, port) = rest.rsplit_once(':').unwrap();
        MqttConfig {
            url: crate::config::BrokerUrl {
                scheme: if scheme == "mqtts" {
                    MqttScheme::Mqtts
                } else {
                    MqttScheme::Mqtt
                },
                host: host.to_owned(),
                port: port.parse().unwrap(),
            },
            client_id: "box-1".to_owned(),
            topic_prefix: "watchpost".to_owned(),
            username: Some("agent".to_owned()),
            password: Some(crate::config::Secret::new("hunter2")),
            detections_qos: crate::config::Qos::AtMostOnce,
            keep_alive: Duration::from_millis(300),
            ca_file: None,
        }
    }

    #[test]
    fn options_from_config() {
        let options = mqtt_options(&config("mqtt://broker.example:1884"), will()).unwrap();
        assert_eq!(
            options.broker_address(),
            ("broker.example".to_owned(), 1884)
        );
        assert_eq!(options.client_id(), "box-1");
        assert_eq!(options.keep_alive(), Duration::from_secs(1));
        assert!(options.clean_session());
        assert_eq!(options.last_will(), Some(will()));
        let login = options.credentials().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("agent", "hunter2")
        );
        assert!(matches!(options.transport(), Transport::Tcp));

        let v6 = mqtt_options(&config("mqtt://::1:1883"), will()).unwrap();
        assert_eq!(v6.broker_address().0, "[::1]");
    }

    #[test]
    fn tls_with_a_bad_ca_file_is_refused_naming_it() {
        let dir = std::env::temp_dir().join(format!("watchpost-ca-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let cases = [
            (dir.join("missing.pem"), "missing.pem"),
            (empty.clone(), "no PEM certificate"),
        ];
        for (path, expected) in cases {
            let mut config = config("mqtts://broker.example:8883");
            config.ca_file = Some(path.clone());
            let error = mqtt_options(&config, will()).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tls_with_system_roots_builds() {
        // deploy/setup.sh installs ca-certificates.
        let options = mqtt_options(&config("mqtts://broker.example:8883"), will()).unwrap();
        assert!(matches!(options.transport(), Transport::Tls(_)));
    }
}
