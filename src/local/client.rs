//! The other side: one blocking request to a running agent's local endpoint: `GET` for
//! `watchpost status` (and `watchpost doctor`), `POST /reload` after an edit of the
//! configuration file ([`request_reload`]). A plain HTTP/1.0 request over a `TcpStream`:
//! the server is our own, on this device, and an HTTP/1.0 answer is never chunked: it is
//! delimited by the closing connection (and its `Content-Length`, which is checked). The
//! response head is read by `httparse`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::ReloadAnswer;

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
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<String, FetchError> {
    let (status, body) = request(addr, "GET", path, timeout)?;
    if status == 200 {
        Ok(body)
    } else {
        Err(status_error(addr, path, status, &body))
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
pub fn request_reload(listen: SocketAddr, timeout: Duration) -> Result<ReloadAnswer, FetchError> {
    let path = "/reload";
    let (status, body) = request(listen, "POST", path, timeout)?;
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

/// `method path` to `addr`: the status and body of the answer.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), FetchError> {
    let not_answering = |e: std::io::Error| FetchError::NotAnswering {
        addr,
        cause: describe_io(&e),
    };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(not_answering)?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(not_answering)?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: watchpost\r\nContent-Length: 0\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(not_answering)?;
    let mut bytes = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(not_answering)?;
    parse_response(&bytes).map_err(|reason| FetchError::NotAgent { addr, reason })
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
