//! The endpoint over TLS (`[local] tls_cert`, `tls_key`): accepts TCP connections, runs each
//! one's TLS handshake and HTTP/1.1 in a task of its own, and serves the same router as the
//! plain endpoint, with the peer's address as `ConnectInfo<SocketAddr>` (the access guard's).
//!
//! A handshake that fails (a plain HTTP request, a port scanner, a browser that refuses the
//! certificate) or takes longer than [`HANDSHAKE_TIMEOUT`] is logged at debug and the
//! connection dropped; the server goes on. On `stop` it accepts no more, lets each open
//! connection finish its request (hyper's graceful shutdown), and ends when the last one has;
//! [`super::LocalServer::stop`] bounds that wait. The connection tasks live in a `JoinSet`
//! owned by the server task: aborting it aborts them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower_service::Service as _;

use crate::config::CertKeyFiles;
use crate::tls;

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (out of file descriptors), so as not to spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The TLS side of the endpoint, from the certificate chain and key in `files`.
///
/// # Errors
/// A file cannot be read, holds no certificate or key, or the key is not the certificate's:
/// the reason, naming the file (never the key's content).
pub(super) fn acceptor(files: &CertKeyFiles) -> Result<TlsAcceptor, String> {
    let chain = tls::read_certificates(&files.cert)
        .map_err(|reason| format!("[local] tls_cert `{}`: {reason}", files.cert.display()))?;
    let key = tls::read_private_key(&files.key)
        .map_err(|reason| format!("[local] tls_key `{}`: {reason}", files.key.display()))?;
    let config = tls::http_server_config(chain, key).map_err(|e| {
        format!(
            "[local] tls_key `{}` {e} in `{}`",
            files.key.display(),
            files.cert.display()
        )
    })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` over TLS on `listener` until `stop`, then until the open connections are done.
pub(super) async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    stop: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            // Reaps finished connections, so that the set holds only open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    connections.spawn(connection(
                        tcp,
                        peer,
                        acceptor.clone(),
                        app.clone(),
                        stop.clone(),
                    ));
                }
                Err(e) => {
                    tracing::debug!("local endpoint: accept failed: {e}");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
            },
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One connection: the handshake, then HTTP/1.1 until the peer is done or `stop`.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    stop: CancellationToken,
) {
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let stream = tokio::select! {
        () = stop.cancelled() => return,
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "local endpoint: TLS handshake failed: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "local endpoint: TLS handshake timed out");
                return;
            }
        },
    };
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().call(request)
    });
    let http = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(http);
    let served = tokio::select! {
        served = http.as_mut() => served,
        () = stop.cancelled() => {
            http.as_mut().graceful_shutdown();
            http.await
        }
    };
    if let Err(e) = served {
        tracing::debug!(%peer, "local endpoint: connection ended: {e}");
    }
}
