//! The other side: one blocking request to a running agent's local endpoint: `GET` for
//! `watchpost status` (and `watchpost doctor`), `POST /reload` after an edit of the
//! configuration file ([`request_reload`]). A plain HTTP/1.0 request over a `TcpStream`:
//! the server is our own, on this device, and an HTTP/1.0 answer is never chunked: it is
//! delimited by the closing connection (and its `Content-Length`, which is checked). The
//! response head is read by `httparse`.
//!
//! When the configuration has `[local] tls_cert` ([`Endpoint::of`]), the request goes over TLS
//! (rustls, blocking) and the endpoint must present exactly the certificate in that file: the
//! client runs on the device and reads the same configuration as the agent, so no CA and no
//! host name are involved (the address is often `0.0.0.0` or `127.0.0.1`, which a certificate
//! rarely names). Only the certificate is read, never the key.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::ReloadAnswer;
use crate::config::LocalConfig;
use crate::tls;

/// Where the agent's endpoint is, and whether it speaks TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// `[local] tls_cert`: HTTPS, accepting only the certificate in this file; `None`: plain
    /// HTTP.
    pub tls_cert: Option<PathBuf>,
}

impl Endpoint {
    /// The endpoint `[local]` describes; `None` when it is off (`listen = ""`).
    pub fn of(local: &LocalConfig) -> Option<Endpoint> {
        Some(Endpoint {
            addr: local.listen?,
            tls_cert: local.tls.as_ref().map(|files| files.cert.clone()),
        })
    }
}

/// Plain HTTP to `addr`.
impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Endpoint {
        Endpoint {
            addr,
            tls_cert: None,
        }
    }
}

/// Largest answer read (the status of many cameras is a few kB).
const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

/// Why a `GET` to the local endpoint gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Nothing listens there, or it does not answer in time: the agent is not running (or its
    /// endpoint is off or elsewhere).
    #[error("no agent answers on {addr} ({cause})")]
    NotAnswering { addr: SocketAddr, cause: String },
    /// Something answered, but not with an HTTP response we can read.
    #[error("{addr} answered, but not as a watchpost agent: {reason}")]
    NotAgent { addr: SocketAddr, reason: String },
    /// `[local] tls_cert` cannot be read, or holds no certificate.
    #[error("[local] tls_cert `{}`: {reason}", path.display())]
    Certificate { path: PathBuf, reason: String },
    /// The TLS handshake failed: the endpoint speaks plain HTTP (an agent started before
    /// `tls_cert` was set: restart it), or presents another certificate.
    #[error(
        "no TLS with the agent on {addr} ({reason}): does it run with the certificate in `{}`? \
         (restart it after changing [local] tls_cert)",
        cert.display()
    )]
    Tls {
        addr: SocketAddr,
        cert: PathBuf,
        reason: String,
    },
    /// The agent answered with an error status.
    #[error("{addr}{path} answered HTTP {status}: {body}")]
    Status {
        addr: SocketAddr,
        path: String,
        status: u16,
        body: String,
    },
}

/// `GET path` from `addr`; the body of a `200 OK`. `timeout` bounds the connection and each
/// read and write.
///
/// # Errors
/// See [`FetchError`].
pub fn get(
    endpoint: impl Into<Endpoint>,
    path: &str,
    timeout: Duration,
) -> Result<String, FetchError> {
    let endpoint = endpoint.into();
    let (status, body) = request(&endpoint, "GET", path, timeout)?;
    if status == 200 {
        Ok(body)
    } else {
        Err(status_error(endpoint.addr, path, status, &body))
    }
}

/// Asks the agent listening on `listen` (`[local] listen`) to re-read its configuration file
/// and apply it (`POST /reload`): what changed now and what waits for a restart, or why
/// nothing changed ([`ReloadAnswer::outcome`]: the file is invalid, the agent is busy or
/// stopping). `timeout` bounds the connection and each read and write; applying can take a
/// few seconds when pipelines stop, so give it 15 s or so.
///
/// # Errors
/// No agent answers, or not with a [`ReloadAnswer`] (an agent older than `/reload` answers
/// 404: [`FetchError::Status`]).
pub fn request_reload(
    endpoint: impl Into<Endpoint>,
    timeout: Duration,
) -> Result<ReloadAnswer, FetchError> {
    let endpoint = endpoint.into();
    let listen = endpoint.addr;
    let path = "/reload";
    let (status, body) = request(&endpoint, "POST", path, timeout)?;
    if !matches!(status, 200 | 422 | 503) {
        return Err(status_error(listen, path, status, &body));
    }
    serde_json::from_str(&body).map_err(|e| FetchError::NotAgent {
        addr: listen,
        reason: format!(
            "{path} answered HTTP {status} with something else than a reload answer ({e})"
        ),
    })
}

fn status_error(addr: SocketAddr, path: &str, status: u16, body: &str) -> FetchError {
    FetchError::Status {
        addr,
        path: path.to_owned(),
        status,
        body: body
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(200)
            .collect(),
    }
}

/// `method path` to `endpoint`: the status and body of the answer.
fn request(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), FetchError> {
    let addr = endpoint.addr;
    // Read before connecting: a certificate that cannot be read is not the agent's fault.
    let tls = match &endpoint.tls_cert {
        Some(cert) => Some((cert, tls_connection(cert, addr)?)),
        None => None,
    };
    let not_answering = |e: std::io::Error| FetchError::NotAnswering {
        addr,
        cause: describe_io(&e),
    };
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(not_answering)?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(not_answering)?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: watchpost\r\nContent-Length: 0\r\n\r\n"
    );
    let bytes = match tls {
        None => exchange(stream, request.as_bytes()).map_err(not_answering)?,
        Some((cert, connection)) => exchange(
            rustls::StreamOwned::new(connection, stream),
            request.as_bytes(),
        )
        .map_err(|e| match tls_cause(&e) {
            Some(reason) => FetchError::Tls {
                addr,
                cert: cert.clone(),
                reason,
            },
            None => not_answering(e),
        })?,
    };
    parse_response(&bytes).map_err(|reason| FetchError::NotAgent { addr, reason })
}
/// A TLS client connection to `addr` that accepts only the certificate in `cert` (its first).
fn tls_connection(cert: &Path, addr: SocketAddr) -> Result<rustls::ClientConnection, FetchError> {
    let certificate_error = |reason: String| FetchError::Certificate {
        path: cert.to_owned(),
        reason,
    };
    let mut chain = tls::read_certificates(cert).map_err(certificate_error)?;
    let own = chain.swap_remove(0);
    let config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| certificate_error(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(tls::accepting(tls::Accept::Only(own)))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| certificate_error(e.to_string()))
}

/// Writes `request` to `stream` and reads the answer until the connection closes (at most
/// [`MAX_RESPONSE_BYTES`]). A TLS connection closed without its closing alert ends the answer
/// too: `parse_response` checks the `Content-Length`.
fn exchange(mut stream: impl Read + Write, request: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(request)?;
    stream.flush()?;
    let mut bytes = Vec::new();
    match stream.take(MAX_RESPONSE_BYTES).read_to_end(&mut bytes) {
        Ok(_) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(bytes),
        Err(e) => Err(e),
    }
}

/// What TLS said, when `e` is a TLS error.
fn tls_cause(e: &std::io::Error) -> Option<String> {
    let cause = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(match cause {
        rustls::Error::InvalidCertificate(_) => {
            "it presents another certificate than that file's".to_owned()
        }
        other => other.to_string(),
    })
}

/// The status code and body of a whole HTTP/1.x response (read until the connection closed).
///
/// # Errors
/// Not HTTP, incomplete, chunked, not UTF-8, or shorter than its `Content-Length`.
pub(crate) fn parse_response(bytes: &[u8]) -> Result<(u16, String), String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if bytes.is_empty() => {
            return Err("the connection closed without an answer".to_owned());
        }
        Ok(httparse::Status::Partial) => return Err("incomplete HTTP response".to_owned()),
        Err(e) => return Err(format!("not an HTTP response ({e})")),
    };
    let status = response.code.unwrap_or(0);
    let mut body = &bytes[head_len..];
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("unexpected Transfer-Encoding in an HTTP/1.0 answer".to_owned());
        }
        if header.name.eq_ignore_ascii_case("content-length") {
            let length: usize = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| "bad Content-Length".to_owned())?;
            if body.len() < length {
                return Err(format!(
                    "the answer was cut short ({} of {length} bytes)",
                    body.len()
                ));
            }
            body = &body[..length];
        }
    }
    let body = String::from_utf8(body.to_vec()).map_err(|_| "the body is not UTF-8".to_owned())?;
    Ok((status, body))
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timed out".to_owned(),
        std::io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_from_tables() {
        // response bytes, Ok((status, body)) or Err(start of the reason)
        type Expected = Result<(u16, &'static str), &'static str>;
        let cases: &[(&[u8], Expected)] = &[
            (
                b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
                Ok((200, "{}")),
            ),
            (
                b"HTTP/1.1 200 OK\r\n\r\nuntil close",
                Ok((200, "until close")),
            ),
            (
                b"HTTP/1.0 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
                Ok((404, "not found")),
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabcdef",
                Ok((200, "abc")),
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                Err("the answer was cut short (3 of 10 bytes)"),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                Err("unexpected Transfer-Encoding"),
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Le",
                Err("incomplete HTTP response"),
            ),
            (b"", Err("the connection closed without an answer")),
            (b"SSH-2.0-OpenSSH_9.2\r\n", Err("not an HTTP response")),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: x\r\n\r\n",
                Err("bad Content-Length"),
            ),
            (
                b"HTTP/1.0 200 OK\r\n\r\n\xff\xfe",
                Err("the body is not UTF-8"),
            ),
        ];
        for (bytes, expected) in cases {
            let got = parse_response(bytes);
            match (&got, expected) {
                (Ok((status, body)), Ok((s, b))) => {
                    assert_eq!((*status, body.as_str()), (*s, *b), "{bytes:?}");
                }
                (Err(reason), Err(start)) => {
                    assert!(reason.starts_with(start), "{bytes:?}: {reason}");
                }
                _ => panic!("{bytes:?}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn nothing_listening_is_not_answering() {
        // A port just freed: nothing listens there.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = get(addr, "/status", Duration::from_secs(2)).unwrap_err();
        assert!(
            matches!(&e, FetchError::NotAnswering { cause, .. } if cause == "connection refused"),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!("no agent answers on {addr} (connection refused)")
        );
    }
}
