//! The MQTT connection: client options (TLS, credentials, last will), the reconnection backoff
//! and the words for connection failures. The task that drives the connection is `driver.rs`.
//!
//! TLS uses rustls with the ring provider. The broker's certificate is checked against
//! `mqtt.ca_file` or the system's CA bundle, unless `mqtt.tls_verify = false`
//! ([`tls_unverified`]); `mqtt.client_cert`/`client_key` add a client certificate (mutual TLS).
//! No error or log line made here holds a password, a private key or URL credentials.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rumqttc::{
    ConnectReturnCode, ConnectionError, LastWill, MqttOptions, StateError, TlsConfiguration,
    TlsError, Transport,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::{AlertDescription, CertificateError};

use super::PublishError;
use crate::config::{CertKeyFiles, MqttConfig, MqttScheme};
use crate::tls;

/// Largest packet the client sends (rumqttc's default of 10 KiB is too small for a frame with
/// many objects; a too large packet would end the connection).
const MAX_OUTGOING_PACKET: usize = 1024 * 1024;
/// Largest packet the client accepts: acks, and command messages (`cmd`). Well above the
/// largest command read ([`crate::command::MAX_MESSAGE_BYTES`]), so that a larger one is
/// refused as `oversized` with a result; a packet above this ends the connection (rumqttc),
/// so a broker should bound messages too (mosquitto: `message_size_limit`).
const MAX_INCOMING_PACKET: usize = 1024 * 1024;

/// Where system CA bundles live on the Linux distributions the agent runs on (the list
/// openssl-probe uses), after `$SSL_CERT_FILE`.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// rumqttc options for the endpoint `config.urls[endpoint]`, with `will` as the last will. The
/// options of every endpoint differ only in host and port (same client id, credentials, TLS
/// set-up); the TLS files are read on every call.
///
/// # Errors
/// `mqtts://` with a CA file that cannot be read or holds no certificate, no system CA bundle
/// found, or a client certificate or key that cannot be read or do not belong together.
///
/// # Panics
/// If `endpoint` is not an index of `config.urls`.
pub(crate) fn mqtt_options(
    config: &MqttConfig,
    endpoint: usize,
    will: LastWill,
) -> Result<MqttOptions, PublishError> {
    let url = &config.urls[endpoint];
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
        let tls = tls_client_config(config)?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    }
    Ok(options)
}

/// The broker's certificate is not checked (`mqtt.tls_verify = false` with `mqtts://`): the
/// connection is encrypted but anyone on the path can pose as the broker. Warn at every
/// connection.
pub(crate) fn tls_unverified(config: &MqttConfig) -> bool {
    !config.tls_verify && config.uses_tls()
}

/// A rustls client configuration with the ring provider: the roots from `ca_file` or the
/// system's CA bundle (or no check at all with `tls_verify = false`), and the client
/// certificate if there is one.
fn tls_client_config(config: &MqttConfig) -> Result<rustls::ClientConfig, PublishError> {
    let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PublishError::Tls(e.to_string()))?;
    let builder = if config.tls_verify {
        builder.with_root_certificates(root_store(config.ca_file.as_deref())?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(tls::accepting(tls::Accept::Any))
    };
    match &config.client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some(files) => {
            let (chain, key) = read_client_certificate(files)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                let reason = match e {
                    rustls::Error::InconsistentKeys(_) => format!(
                        "is not the private key of the certificate in `{}`",
                        files.cert.display()
                    ),
                    other => format!("cannot be used: {other}"),
                };
                PublishError::Tls(format!("mqtt.client_key {}: {reason}", files.key.display()))
            })
        }
    }
}

/// The CA certificates from `ca_file`, or the system's CA bundle.
fn root_store(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, PublishError> {
    let (path, certificates) = match ca_file {
        Some(path) => {
            let certificates =
                tls::read_certificates(path).map_err(|reason| PublishError::CaFile {
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
    Ok(roots)
}

/// The client's certificate chain and private key (PKCS#8, PKCS#1 or SEC1). Errors name the
/// file, never its content.
fn read_client_certificate(
    files: &CertKeyFiles,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PublishError> {
    let chain = tls::read_certificates(&files.cert).map_err(|reason| {
        PublishError::Tls(format!(
            "mqtt.client_cert {}: {reason}",
            files.cert.display()
        ))
    })?;
    let key = tls::read_private_key(&files.key).map_err(|reason| {
        PublishError::Tls(format!("mqtt.client_key {}: {reason}", files.key.display()))
    })?;
    Ok((chain, key))
}

fn system_roots() -> Result<(PathBuf, Vec<CertificateDer<'static>>), PublishError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(file));
    }
    candidates.extend(SYSTEM_CA_BUNDLES.iter().map(PathBuf::from));
    for path in &candidates {
        if path.is_file() {
            return tls::read_certificates(path)
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

/// What kind of failure a broker connection met: what `watchpost doctor` advises on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerFailureKind {
    /// The broker refused the user name or password.
    Auth,
    /// The broker wants, or refused, our client certificate.
    ClientCertificate,
    /// The TLS handshake failed otherwise (the broker's certificate, the port, versions).
    Tls,
    /// A TLS file of the configuration cannot be used.
    TlsFiles,
    /// Nothing listens on the port.
    Refused,
    /// No answer in time.
    Timeout,
    /// Anything else (closed, reset, a protocol error).
    Other,
}

/// A broker connection failure: its kind, and the words of the agent's log for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BrokerFailure {
    pub kind: BrokerFailureKind,
    pub message: String,
}

impl BrokerFailure {
    pub(crate) fn new(kind: BrokerFailureKind, message: impl Into<String>) -> BrokerFailure {
        BrokerFailure {
            kind,
            message: message.into(),
        }
    }

    /// The failure `error` is.
    pub(crate) fn of(error: &ConnectionError) -> BrokerFailure {
        BrokerFailure::new(kind_of(error), describe(error))
    }
}

fn kind_of(error: &ConnectionError) -> BrokerFailureKind {
    use BrokerFailureKind as K;
    match error {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => K::Auth,
        ConnectionError::ConnectionRefused(_) => K::Other,
        ConnectionError::Io(e)
        | ConnectionError::MqttState(StateError::Io(e))
        | ConnectionError::MqttState(StateError::Deserialization(rumqttc::mqttbytes::Error::Io(
            e,
        ))) => io_kind(e),
        ConnectionError::Tls(TlsError::Io(e)) => match tls_cause(e) {
            Some(tls) => rustls_kind(tls),
            None => K::Tls,
        },
        ConnectionError::Tls(TlsError::TLS(e)) => rustls_kind(e),
        ConnectionError::Tls(_) => K::Tls,
        ConnectionError::NetworkTimeout
        | ConnectionError::FlushTimeout
        | ConnectionError::MqttState(StateError::AwaitPingResp) => K::Timeout,
        _ => K::Other,
    }
}

fn io_kind(e: &io::Error) -> BrokerFailureKind {
    if let Some(tls) = tls_cause(e) {
        return rustls_kind(tls);
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => BrokerFailureKind::Refused,
        io::ErrorKind::TimedOut => BrokerFailureKind::Timeout,
        io::ErrorKind::InvalidData => BrokerFailureKind::Tls,
        _ => BrokerFailureKind::Other,
    }
}

fn rustls_kind(e: &rustls::Error) -> BrokerFailureKind {
    match e {
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::AccessDenied
            | AlertDescription::HandshakeFailure,
        ) => BrokerFailureKind::ClientCertificate,
        _ => BrokerFailureKind::Tls,
    }
}

/// Why a connection failed or ended, in words for the log and `watchpost status`. Never
/// contains credentials (rumqttc's errors do not carry them).
pub(crate) fn describe(error: &ConnectionError) -> String {
    match error {
        ConnectionError::ConnectionRefused(code) => match code {
            ConnectReturnCode::BadUserNamePassword => {
                "refused by the broker: bad user name or password".to_owned()
            }
            // Mosquitto, among others, answers a wrong password with this code.
            ConnectReturnCode::NotAuthorized => {
                "refused by the broker: not authorised (bad user name or password, or a client \
                 it does not allow)"
                    .to_owned()
            }
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
        ConnectionError::Tls(e) => describe_tls(e),
        ConnectionError::NetworkTimeout => "timed out connecting".to_owned(),
        ConnectionError::FlushTimeout => "timed out sending".to_owned(),
        ConnectionError::MqttState(StateError::Io(e)) => describe_io(e),
        // A TLS 1.3 broker checks the client certificate after the handshake: its refusal is
        // an alert read in place of CONNACK.
        ConnectionError::MqttState(StateError::Deserialization(rumqttc::mqttbytes::Error::Io(
            e,
        ))) => describe_io(e),
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

/// rumqttc's TLS errors: the handshake's failures come as `Io` wrapping a [`rustls::Error`].
fn describe_tls(e: &TlsError) -> String {
    match e {
        TlsError::Io(e) if tls_cause(e).is_some() => describe_io(e),
        // A plain MQTT listener resets the connection on a TLS hello.
        TlsError::Io(e) => format!(
            "TLS handshake failed: {} (is the port an mqtts:// one?)",
            describe_io(e)
        ),
        TlsError::TLS(e) => describe_rustls(e),
        TlsError::DNSName(_) => {
            "TLS: the broker's host is not a name a certificate can be checked against".to_owned()
        }
        other => format!("TLS: {other}"),
    }
}

fn describe_io(e: &io::Error) -> String {
    // rustls (through tokio-rustls) reports handshake failures, and alerts that arrive later
    // (TLS 1.3 servers check the client certificate after the handshake), as I/O errors.
    if let Some(tls) = tls_cause(e) {
        return describe_rustls(tls);
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset by the broker".to_owned(),
        io::ErrorKind::UnexpectedEof => "connection closed by the broker".to_owned(),
        io::ErrorKind::TimedOut => "timed out".to_owned(),
        io::ErrorKind::InvalidData => format!("TLS: {e}"),
        _ => e.to_string(),
    }
}

/// The TLS error an I/O error wraps, if any.
fn tls_cause(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// A TLS failure in words: what is wrong and, where it helps, which setting to look at.
fn describe_rustls(e: &rustls::Error) -> String {
    let cause = match e {
        rustls::Error::InvalidCertificate(e) => describe_certificate_error(e),
        rustls::Error::AlertReceived(alert) => describe_alert(*alert),
        rustls::Error::NoCertificatesPresented => "the broker sent no certificate".to_owned(),
        rustls::Error::PeerIncompatible(e) => {
            format!("no TLS version or cipher in common with the broker ({e:?})")
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the broker does not speak TLS here (is it a plain mqtt:// port?)".to_owned()
        }
        other => other.to_string(),
    };
    format!("TLS: {cause}")
}

fn describe_certificate_error(e: &CertificateError) -> String {
    match e {
        CertificateError::UnknownIssuer => {
            "the broker's certificate is signed by an unknown CA (not in mqtt.ca_file or the \
             system roots)"
                .to_owned()
        }
        CertificateError::BadSignature => {
            "the broker's certificate has a bad signature (not issued by the CA it names)"
                .to_owned()
        }
        CertificateError::NotValidForName => {
            "certificate name mismatch: the broker's certificate is not for this host".to_owned()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names = if presented.is_empty() {
                "no names".to_owned()
            } else {
                let names: Vec<&str> = presented.iter().map(|n| presented_name(n)).collect();
                names.join(", ")
            };
            format!(
                "certificate name mismatch: the broker's certificate is not for `{}` (it is for \
                 {names})",
                expected.to_str()
            )
        }
        CertificateError::Expired => "the broker's certificate has expired".to_owned(),
        CertificateError::ExpiredContext { not_after, .. } => format!(
            "the broker's certificate has expired (valid until {}; check this device's clock \
             too)",
            rfc3339(*not_after)
        ),
        CertificateError::NotValidYet => {
            "the broker's certificate is not valid yet (check this device's clock)".to_owned()
        }
        CertificateError::NotValidYetContext { not_before, .. } => format!(
            "the broker's certificate is not valid yet (valid from {}; check this device's \
             clock)",
            rfc3339(*not_before)
        ),
        CertificateError::Revoked => "the broker's certificate has been revoked".to_owned(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the broker's certificate is not meant for a server (extended key usage)".to_owned()
        }
        CertificateError::BadEncoding => "the broker's certificate is malformed".to_owned(),
        other => format!("bad certificate from the broker: {other}"),
    }
}

/// A name as webpki presents it (`DnsName("broker.example")`, `IpAddress(10.0.0.5)`), bare.
fn presented_name(name: &str) -> &str {
    name.strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| {
            name.strip_prefix("IpAddress(")
                .and_then(|n| n.strip_suffix(')'))
        })
        .unwrap_or(name)
}

fn describe_alert(alert: AlertDescription) -> String {
    let refused_ours = |what: &str| format!("the broker refused our client certificate ({what})");
    match alert {
        AlertDescription::CertificateRequired => {
            "the broker wants a client certificate (set mqtt.client_cert and mqtt.client_key)"
                .to_owned()
        }
        AlertDescription::BadCertificate => refused_ours("bad certificate"),
        AlertDescription::UnknownCA => refused_ours("signed by a CA it does not know"),
        AlertDescription::CertificateExpired => refused_ours("expired"),
        AlertDescription::CertificateRevoked => refused_ours("revoked"),
        AlertDescription::CertificateUnknown | AlertDescription::UnsupportedCertificate => {
            refused_ours("not acceptable")
        }
        AlertDescription::AccessDenied => {
            "the broker denied access (client certificate not allowed)".to_owned()
        }
        AlertDescription::HandshakeFailure => {
            "the broker ended the handshake (handshake failure: it may want a client \
             certificate, or has no cipher in common)"
                .to_owned()
        }
        AlertDescription::ProtocolVersion => "no TLS version in common with the broker".to_owned(),
        other => format!("the broker sent the TLS alert {other:?}"),
    }
}

fn rfc3339(time: UnixTime) -> String {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(time.as_secs());
    humantime::format_rfc3339_seconds(time).to_string()
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
                "refused by the broker: not authorised (bad user name or password, or a client it \
                 does not allow)",
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

    #[test]
    fn failures_have_the_kind_doctor_advises_on() {
        use BrokerFailureKind as K;
        let cases = [
            (
                ConnectionError::Io(io::Error::from(io::ErrorKind::ConnectionRefused)),
                K::Refused,
            ),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword),
                K::Auth,
            ),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized),
                K::Auth,
            ),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::ServiceUnavailable),
                K::Other,
            ),
            (ConnectionError::NetworkTimeout, K::Timeout),
            (
                ConnectionError::MqttState(StateError::AwaitPingResp),
                K::Timeout,
            ),
            (
                ConnectionError::MqttState(StateError::Io(io::Error::from(
                    io::ErrorKind::UnexpectedEof,
                ))),
                K::Other,
            ),
            (
                handshake_error(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer,
                )),
                K::Tls,
            ),
            (
                alert_after_handshake(AlertDescription::CertificateRequired),
                K::ClientCertificate,
            ),
            (
                alert_after_handshake(AlertDescription::UnknownCA),
                K::ClientCertificate,
            ),
            (
                ConnectionError::Tls(TlsError::Io(io::Error::from(
                    io::ErrorKind::ConnectionReset,
                ))),
                K::Tls,
            ),
        ];
        for (error, kind) in cases {
            let failure = BrokerFailure::of(&error);
            assert_eq!(failure.kind, kind, "{error:?}: {failure}");
            assert_eq!(failure.message, describe(&error));
        }
    }

    /// The broker's certificate refused during the handshake, as rumqttc 0.25 reports it (seen
    /// against mosquitto): `Tls(Io(InvalidData wrapping a rustls::Error))`.
    fn handshake_error(e: rustls::Error) -> ConnectionError {
        ConnectionError::Tls(TlsError::Io(io::Error::new(io::ErrorKind::InvalidData, e)))
    }

    /// An alert after the handshake (TLS 1.3: the client certificate is checked then), read in
    /// place of CONNACK: `MqttState(Deserialization(Io(InvalidData wrapping the alert)))`.
    fn alert_after_handshake(alert: AlertDescription) -> ConnectionError {
        ConnectionError::MqttState(StateError::Deserialization(rumqttc::mqttbytes::Error::Io(
            io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::AlertReceived(alert),
            ),
        )))
    }

    #[test]
    fn tls_causes_in_words() {
        let name_mismatch = CertificateError::NotValidForNameContext {
            expected: rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            presented: vec![
                "DnsName(\"broker.example\")".to_owned(),
                "IpAddress(10.0.0.5)".to_owned(),
            ],
        };
        let expired = CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(1_609_459_200)),
        };
        let cases = [
            (
                handshake_error(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer,
                )),
                "TLS: the broker's certificate is signed by an unknown CA (not in mqtt.ca_file or \
                 the system roots)",
            ),
            (
                handshake_error(rustls::Error::InvalidCertificate(name_mismatch)),
                "TLS: certificate name mismatch: the broker's certificate is not for `127.0.0.1` \
                 (it is for broker.example, 10.0.0.5)",
            ),
            (
                handshake_error(rustls::Error::InvalidCertificate(expired)),
                "TLS: the broker's certificate has expired (valid until 2021-01-01T00:00:00Z; \
                 check this device's clock too)",
            ),
            (
                handshake_error(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidYet,
                )),
                "TLS: the broker's certificate is not valid yet (check this device's clock)",
            ),
            (
                handshake_error(rustls::Error::InvalidCertificate(
                    CertificateError::BadSignature,
                )),
                "TLS: the broker's certificate has a bad signature (not issued by the CA it names)",
            ),
            (
                alert_after_handshake(AlertDescription::CertificateRequired),
                "TLS: the broker wants a client certificate (set mqtt.client_cert and \
                 mqtt.client_key)",
            ),
            (
                alert_after_handshake(AlertDescription::UnknownCA),
                "TLS: the broker refused our client certificate (signed by a CA it does not know)",
            ),
            (
                alert_after_handshake(AlertDescription::BadCertificate),
                "TLS: the broker refused our client certificate (bad certificate)",
            ),
            (
                alert_after_handshake(AlertDescription::CertificateExpired),
                "TLS: the broker refused our client certificate (expired)",
            ),
            (
                // TLS 1.2: the refusal comes during the handshake.
                handshake_error(rustls::Error::AlertReceived(
                    AlertDescription::HandshakeFailure,
                )),
                "TLS: the broker ended the handshake (handshake failure: it may want a client \
                 certificate, or has no cipher in common)",
            ),
            (
                ConnectionError::Tls(TlsError::Io(io::Error::from(
                    io::ErrorKind::ConnectionReset,
                ))),
                "TLS handshake failed: connection reset by the broker (is the port an mqtts:// \
                 one?)",
            ),
            (
                ConnectionError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                )),
                "TLS: the broker's certificate is signed by an unknown CA (not in mqtt.ca_file or \
                 the system roots)",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(describe(&error), expected, "{error:?}");
        }
    }

    fn will() -> LastWill {
        LastWill::new("t/status", "{}", rumqttc::QoS::AtLeastOnce, true)
    }

    fn broker_url(url: &str) -> crate::config::BrokerUrl {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (host, port) = rest.rsplit_once(':').unwrap();
        crate::config::BrokerUrl {
            scheme: if scheme == "mqtts" {
                MqttScheme::Mqtts
            } else {
                MqttScheme::Mqtt
            },
            host: host.to_owned(),
            port: port.parse().unwrap(),
        }
    }

    fn config(url: &str) -> MqttConfig {
        MqttConfig {
            urls: vec![broker_url(url)],
            client_id: "box-1".to_owned(),
            topic_prefix: "watchpost".to_owned(),
            username: Some("agent".to_owned()),
            password: Some(crate::config::Secret::new("hunter2")),
            detections_qos: crate::config::Qos::AtMostOnce,
            keep_alive: Duration::from_millis(300),
            ca_file: None,
            client_cert: None,
            tls_verify: true,
        }
    }

    #[test]
    fn options_from_config() {
        let options = mqtt_options(&config("mqtt://broker.example:1884"), 0, will()).unwrap();
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

        let v6 = mqtt_options(&config("mqtt://::1:1883"), 0, will()).unwrap();
        assert_eq!(v6.broker_address().0, "[::1]");
    }

    #[test]
    fn each_endpoint_gets_its_own_address_and_the_rest_is_shared() {
        let mut config = config("mqtt://a.example:1883");
        config.urls.push(broker_url("mqtt://b.example:1884"));
        config.urls.push(broker_url("mqtt://::2:1885"));
        let addresses: Vec<(String, u16)> = (0..3)
            .map(|i| mqtt_options(&config, i, will()).unwrap().broker_address())
            .collect();
        assert_eq!(
            addresses,
            [
                ("a.example".to_owned(), 1883),
                ("b.example".to_owned(), 1884),
                ("[::2]".to_owned(), 1885)
            ]
        );
        let second = mqtt_options(&config, 1, will()).unwrap();
        assert_eq!(second.client_id(), "box-1");
        assert_eq!(second.last_will(), Some(will()));
        assert_eq!(second.credentials().unwrap().username, "agent");
    }

    #[test]
    fn tls_with_a_bad_ca_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let cases = [
            (dir.path().join("missing.pem"), "missing.pem"),
            (empty.clone(), "no PEM certificate"),
        ];
        for (path, expected) in cases {
            let mut config = config("mqtts://broker.example:8883");
            config.ca_file = Some(path.clone());
            let error = mqtt_options(&config, 0, will()).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn tls_with_system_roots_builds() {
        // deploy/setup.sh installs ca-certificates.
        let config = config("mqtts://broker.example:8883");
        let options = mqtt_options(&config, 0, will()).unwrap();
        assert!(matches!(options.transport(), Transport::Tls(_)));
        assert!(!tls_unverified(&config));
    }

    #[test]
    fn unverified_tls_needs_no_roots_and_is_reported() {
        let mut config = config("mqtts://broker.example:8883");
        config.tls_verify = false;
        // A CA file that cannot be read is not read: nothing is checked against it.
        config.ca_file = Some("/nonexistent/ca.pem".into());
        let options = mqtt_options(&config, 0, will()).unwrap();
        assert!(matches!(options.transport(), Transport::Tls(_)));
        assert!(tls_unverified(&config));
    }

    /// A CA (self-signed) and two client certificates it signs, as PEM files: `(dir, ca,
    /// [(cert, key); 2])`.
    fn client_certificates() -> (tempfile::TempDir, PathBuf, [(PathBuf, PathBuf); 2]) {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let client = |stem: &str| {
            let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            let cert_path = dir.path().join(format!("{stem}.pem"));
            let key_path = dir.path().join(format!("{stem}.key"));
            std::fs::write(&cert_path, cert.pem()).unwrap();
            std::fs::write(&key_path, key.serialize_pem()).unwrap();
            (cert_path, key_path)
        };
        let pairs = [client("a"), client("b")];
        (dir, ca, pairs)
    }

    #[test]
    fn client_certificate_is_loaded_or_refused_naming_the_file() {
        let (dir, ca, [(cert_a, key_a), (_cert_b, key_b)]) = client_certificates();
        let key_text = std::fs::read_to_string(&key_a).unwrap();
        let key_body = key_text.lines().nth(1).unwrap().to_owned();
        let garbage = dir.path().join("garbage.key");
        std::fs::write(
            &garbage,
            "-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n",
        )
        .unwrap();
        let with = |cert: &Path, key: &Path| {
            let mut config = config("mqtts://broker.example:8883");
            config.ca_file = Some(ca.clone());
            config.client_cert = Some(CertKeyFiles {
                cert: cert.to_owned(),
                key: key.to_owned(),
            });
            mqtt_options(&config, 0, will())
        };
        let options = with(&cert_a, &key_a).unwrap();
        assert!(matches!(options.transport(), Transport::Tls(_)));

        let missing = dir.path().join("missing.key");
        let cases = [
            (
                with(&cert_a, &key_b),
                "mqtt.client_key",
                "b.key",
                "is not the private key of",
            ),
            (
                with(&cert_a, &missing),
                "mqtt.client_key",
                "missing.key",
                "No such file",
            ),
            (
                with(&cert_a, &ca),
                "mqtt.client_key",
                "ca.pem",
                "no PEM private key in it",
            ),
            (
                with(&cert_a, &garbage),
                "mqtt.client_key",
                "garbage.key",
                "not a readable PEM private key",
            ),
            (
                with(&key_a, &key_a),
                "mqtt.client_cert",
                "a.key",
                "no PEM certificate",
            ),
        ];
        for (result, key, file, reason) in cases {
            let error = result.unwrap_err().to_string();
            assert!(
                error.contains(key) && error.contains(file) && error.contains(reason),
                "{error}"
            );
            assert!(!error.contains(&key_body), "key material in `{error}`");
            assert!(!error.contains("not base64"), "file content in `{error}`");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }
}
