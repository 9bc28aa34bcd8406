//! What a probe connects to ([`ProbeTarget`]: a configured camera or a URL typed by hand), and
//! the two checks before GStreamer: a DNS lookup and a TCP connection, each with a timeout, so
//! "the name does not resolve", "nothing listens" and "nothing answers" are told apart cleanly.

use crate::ingest::pipeline::Stream;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::diagnose::{DnsCheck, TcpCheck};
use crate::config::{CameraConfig, DecoderChoice, RtspTransport, Secret, TopicName, parse_url};

/// Where and how a probe connects: what `ingest` would use for the camera.
#[derive(Clone, Debug)]
pub struct ProbeTarget {
    /// The camera's name when it comes from the configuration.
    pub camera: Option<TopicName>,
    /// `rtsp://` or `rtsps://` URL **without** credentials.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub transport: RtspTransport,
    pub latency: Duration,
    pub decoder: DecoderChoice,
}

impl ProbeTarget {
    /// The target for a configured camera: its URL, credentials, transport, latency, decoder.
    pub fn from_camera(camera: &CameraConfig) -> ProbeTarget {
        ProbeTarget {
            camera: Some(camera.name.clone()),
            url: camera.url.clone(),
            username: camera.username.clone(),
            password: camera.password.clone(),
            transport: camera.transport,
            latency: camera.latency,
            decoder: camera.decoder.clone(),
        }
    }

    /// The target for a URL given by hand (defaults: TCP, 200 ms, decoder `auto`). Credentials
    /// in the URL are moved out of it; `username`/`password`, when given, win over them.
    ///
    /// # Errors
    /// A sentence that does not quote the URL (it may hold a password).
    pub fn from_url(
        text: &str,
        username: Option<String>,
        password: Option<Secret>,
    ) -> Result<ProbeTarget, String> {
        let parts = split_url(text)?;
        Ok(ProbeTarget {
            camera: None,
            url: parts.url,
            username: username.or(parts.username),
            password: password.or(parts.password),
            transport: RtspTransport::Tcp,
            latency: CameraConfig::DEFAULT_LATENCY,
            decoder: DecoderChoice::Auto,
        })
    }

    /// The stream as the pipeline builder takes it.
    pub fn stream(&self) -> Stream<'_> {
        Stream {
            url: &self.url,
            username: self.username.as_deref(),
            password: self.password.as_ref(),
            transport: self.transport,
            latency: self.latency,
        }
    }

    /// Whether a user name or password will be sent.
    pub fn has_credentials(&self) -> bool {
        self.stream().has_credentials()
    }
}

/// A URL with its credentials taken out.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct UrlParts {
    /// The URL without user and password.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// Splits the user and password (percent-decoded) out of an `rtsp://` or `rtsps://` URL and
/// checks that the rest has a host ([`Endpoint::parse`]). The URL is read by the same parser
/// as the configuration's camera URLs.
pub(crate) fn split_url(text: &str) -> Result<UrlParts, String> {
    let parsed = parse_url(text.trim())?;
    if parsed.scheme != "rtsp" && parsed.scheme != "rtsps" {
        return Err(format!(
            "has scheme `{}`, expected rtsp:// or rtsps://",
            parsed.scheme
        ));
    }
    let url = parsed.without_credentials();
    Endpoint::parse(&url)?;
    Ok(UrlParts {
        url,
        username: parsed.username,
        password: parsed.password,
    })
}

/// The host, port and path of a credential-free RTSP URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Without the brackets of an IPv6 address.
    pub host: String,
    /// Default 554 (`rtsp://`) or 322 (`rtsps://`).
    pub port: u16,
    /// Path, query and fragment as written (empty or starting with `/`, `?` or `#`).
    pub path: String,
}

impl Endpoint {
    /// Splits `url` (`scheme://host[:port][/path]`; any user part is skipped).
    ///
    /// # Errors
    /// A sentence that does not quote the URL.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let url = parse_url(url)?;
        let default_port = if url.scheme == "rtsps" { 322 } else { 554 };
        Ok(Endpoint {
            port: url.port.unwrap_or(default_port),
            host: url.host,
            path: url.rest,
        })
    }

    /// `host:port` as people write it (`[::1]:8554` for IPv6).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Resolves `endpoint`'s host, giving up after `timeout` (the lookup thread is left to finish
/// on its own then).
pub fn resolve(endpoint: &Endpoint, timeout: Duration) -> (DnsCheck, Vec<SocketAddr>) {
    if let Ok(ip) = endpoint.host.parse::<IpAddr>() {
        return (
            DnsCheck::NotNeeded,
            vec![SocketAddr::new(ip, endpoint.port)],
        );
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let query = (endpoint.host.clone(), endpoint.port);
    let spawned = std::thread::Builder::new()
        .name("probe-dns".to_owned())
        .spawn(move || {
            let result = query.to_socket_addrs().map(Iterator::collect::<Vec<_>>);
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        return (DnsCheck::Failed(e.to_string()), Vec::new());
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(addresses)) if !addresses.is_empty() => (DnsCheck::Resolved, addresses),
        Ok(Ok(_)) => (DnsCheck::Failed("no address".to_owned()), Vec::new()),
        Ok(Err(e)) => (DnsCheck::Failed(e.to_string()), Vec::new()),
        Err(_) => (DnsCheck::TimedOut, Vec::new()),
    }
}

/// Opens (and closes) a TCP connection to the first of `addresses` that accepts, within
/// `timeout` in all. Refused only when every address refused.
pub fn connect(addresses: &[SocketAddr], timeout: Duration) -> TcpCheck {
    let deadline = Instant::now() + timeout;
    let mut outcome = TcpCheck::TimedOut;
    for address in addresses {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        outcome = match TcpStream::connect_timeout(address, left) {
            Ok(_stream) => return TcpCheck::Connected,
            Err(e) => classify_connect_error(&e),
        };
    }
    outcome
}

fn classify_connect_error(e: &std::io::Error) -> TcpCheck {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => TcpCheck::Refused,
        ErrorKind::TimedOut | ErrorKind::WouldBlock => TcpCheck::TimedOut,
        _ => TcpCheck::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        type Case = (
            &'static str,
            Result<(&'static str, u16, &'static str), &'static str>,
        );
        let cases: &[Case] = &[
            (
                "rtsp://10.0.0.21/stream1",
                Ok(("10.0.0.21", 554, "/stream1")),
            ),
            ("rtsp://cam:8554/a/b?c=d", Ok(("cam", 8554, "/a/b?c=d"))),
            ("rtsps://cam", Ok(("cam", 322, ""))),
            ("rtsp://[::1]:8554/x", Ok(("::1", 8554, "/x"))),
            ("rtsp://user@cam/x", Ok(("cam", 554, "/x"))),
            ("rtsp:///x", Err("has no host")),
            ("rtsp://cam:99999/x", Err("has port `99999`")),
            ("rtsp://[::1/x", Err("without its closing")),
            ("cam/x", Err("is not a URL")),
        ];
        for (url, expected) in cases {
            let got = Endpoint::parse(url);
            match expected {
                Ok((host, port, path)) => {
                    let e = got.unwrap();
                    assert_eq!(
                        (e.host.as_str(), e.port, e.path.as_str()),
                        (*host, *port, *path)
                    );
                }
                Err(message) => assert!(got.unwrap_err().contains(message), "{url}"),
            }
        }
        let v6 = Endpoint::parse("rtsp://[fe80::1]/x").unwrap();
        assert_eq!(v6.address(), "[fe80::1]:554");
        assert_eq!(
            Endpoint::parse("rtsp://cam/x").unwrap().address(),
            "cam:554"
        );
    }

    #[test]
    fn moves_credentials_out_of_urls() {
        let parts = split_url("rtsp://admin:p%40ss:w@10.0.0.5:554/Streaming/101").unwrap();
        assert_eq!(parts.url, "rtsp://10.0.0.5:554/Streaming/101");
        assert_eq!(parts.username.as_deref(), Some("admin"));
        assert_eq!(parts.password.as_ref().map(Secret::expose), Some("p@ss:w"));

        let parts = split_url("RTSP://cam/x").unwrap();
        assert_eq!(parts.url, "rtsp://cam/x");
        assert_eq!((parts.username, parts.password), (None, None));

        for (url, message) in [
            ("http://cam/x", "expected rtsp://"),
            ("rtsp://u:%zz@cam/x", "badly %-encoded password"),
            ("rtsp://u:secret@/x", "has no host"),
        ] {
            let error = split_url(url).unwrap_err();
            assert!(error.contains(message), "{url}: {error}");
            assert!(
                !error.contains("secret") && !error.contains("%zz"),
                "{error}"
            );
        }

        let target =
            ProbeTarget::from_url("rtsp://a:b@cam/x", Some("other".to_owned()), None).unwrap();
        assert_eq!(target.url, "rtsp://cam/x");
        assert_eq!(target.username.as_deref(), Some("other"));
        assert_eq!(target.password.as_ref().map(Secret::expose), Some("b"));
        assert!(target.has_credentials());
    }

    #[test]
    fn checks_the_network() {
        // An IP literal needs no lookup.
        let endpoint = Endpoint::parse("rtsp://127.0.0.1:9/x").unwrap();
        let (dns, addresses) = resolve(&endpoint, Duration::from_secs(2));
        assert_eq!(dns, DnsCheck::NotNeeded);
        assert_eq!(addresses, vec!["127.0.0.1:9".parse().unwrap()]);

        // `.invalid` never resolves (RFC 6761).
        let endpoint = Endpoint::parse("rtsp://cam.invalid/x").unwrap();
        let (dns, addresses) = resolve(&endpoint, Duration::from_secs(5));
        assert!(
            matches!(dns, DnsCheck::Failed(_) | DnsCheck::TimedOut),
            "{dns:?}"
        );
        assert!(addresses.is_empty());

        // A listening port connects; the same port once closed refuses.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        assert_eq!(
            connect(&[address], Duration::from_secs(2)),
            TcpCheck::Connected
        );
        drop(listener);
        assert_eq!(
            connect(&[address], Duration::from_secs(2)),
            TcpCheck::Refused
        );
    }
}
