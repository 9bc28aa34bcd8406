//! The agent's local endpoint: a small HTTP server (`[local] listen`, default `127.0.0.1:9750`;
//! HTTPS only when `[local] tls_cert` and `tls_key` are set) that says how the agent is doing,
//! for `watchpost status`, a Prometheus scraper and the technician's page.
//!
//! ```text
//!  GET /status   JSON (status.rs: StatusReport): per camera state, fps in/analysed and latency
//!                p50/p99 over the last few seconds, drops by reason, reconnects, last error;
//!                broker; outbox; uptime; version
//!  GET /metrics  Prometheus text format 0.0.4 (metrics.rs)
//!  POST /reload  re-reads the configuration file already on disk and applies it live
//!                (crate::agent::Control::reload): JSON ReloadAnswer, what changed now and
//!                what waits for a restart, or the loader's lines; for `watchpost config set`;
//!                from this device only
//!  GET /login    the login form (access.rs); for a visitor already in, who they are and a
//!                logout button
//!  POST /login   form `password`, `next`: the `watchpost_session` cookie (HttpOnly,
//!                SameSite=Strict; Secure with TLS) and 303 to `next`, or 401 with the form
//!                and the reason
//!  POST /logout  ends the session, clears the cookie, 303 to /login (X-CSRF-Token)
//!  GET /, /cameras/{name}, /assets/*, /api/…   the technician's page (page/mod.rs: its
//!                routes, the camera view's pictures, saving zones and lines, probing and
//!                adding a camera)
//!  anything else 404; another method on a known path 405
//! ```
//!
//! Who may ask what (access.rs, on every route): first, a request whose `Host` header names
//! something else than `localhost`, an IP address or a name of `[local] allowed_hosts` gets
//! 421 (against DNS rebinding: a web page whose name is re-pointed at 127.0.0.1 would otherwise
//! be this device; a request without `Host` is not a browser's and is served); this device (a loopback peer, or an SSH
//! tunnel) needs no login; another machine needs the session cookie of a login with
//! `[local] password_file` (which a `listen` off loopback requires), except for `/login`,
//! `/assets/*` and, with `metrics_without_login`, `GET /metrics`; `POST /reload` is for this
//! device only; every other request that is not `GET`/`HEAD` carries the visitor's CSRF token
//! in `X-CSRF-Token`. Handlers read the [`Visitor`] from the request's extensions.
//!
//! - `router.rs`: the routes; a page or command is one more route and handler there.
//! - `page/`: the technician's page: HTML, CSS and script embedded in the binary, and its
//!   handlers.
//! - `access.rs`: sessions, the login throttle, the access rules as a pure function
//!   (`decide`, `host_allowed`), the middleware and the login routes.
//! - `https.rs`: serving over TLS: a handshake per connection in its own task, then the same
//!   router.
//! - `status.rs`: every JSON type the endpoint answers with, and their pure builders.
//! - `metrics.rs`: the exposition, a pure function of counters.
//! - `window.rs`: the counters of the last few seconds, sampled once a second, from which
//!   `/status` computes rates and percentiles.
//! - `client.rs`: one blocking request: `GET` for `watchpost status`, `POST /reload` for the
//!   edit commands ([`client::request_reload`]); over TLS when `[local] tls_cert` is set,
//!   trusting exactly that certificate (it runs on this device and reads the same file).
//!
//! ## Invariants
//! - Loopback by default (checked by the configuration). Off loopback only with a password:
//!   a peer that is not this device sees nothing but the login form, `/assets/*` (and
//!   `/metrics` when configured) until it logs in; its wrong passwords are throttled
//!   (3 free, then 1 s, 2 s, 4 s … at most 60 s). Loopback peers need no login: that is the
//!   device itself or an SSH tunnel into it (other local users of the device are trusted,
//!   as before).
//! - No secret reaches a peer: the password is compared in constant time and never logged
//!   or echoed; the reports (`status.rs`) carry no camera or broker password.
//! - Plain HTTP by default: on the LAN the password and the cookie then cross it in clear; an
//!   SSH tunnel to loopback is the encrypted way in. With `tls_cert` and `tls_key` the endpoint
//!   speaks HTTPS only (rustls, ring; TLS 1.2 and 1.3; no plain HTTP on the same port) and the
//!   session cookie is `Secure`. A failed handshake is logged at debug and costs only its own
//!   connection. The certificate and key are checked by the configuration loader (a bad one
//!   stops the agent from starting, exit 2) and read again at start.
//! - Never on the frame path: handlers and the sampler read atomics
//!   ([`crate::health::CameraStats`], [`crate::outbox::OutboxStats`]) and the broker's `watch`
//!   channel, and format text; they take no lock the frame path waits on for longer than a
//!   copy (a camera's last error). The server runs on the agent's tokio runtime, beside the
//!   publisher; a request costs microseconds. The one exception is asked for: a page's view
//!   request waits (at most 5 s) for the camera's next analysed frame, which the inference
//!   thread renders once for all requests waiting for the same picture
//!   ([`crate::framepath::Views`]).
//! - Bounded: the rate window holds a few samples; each request builds its answer and forgets
//!   it; at most 64 sessions (idle 12 h ends one) and 256 throttled peers, the oldest going.
//! - A port that cannot be had is an error of [`LocalServer::start`]; the agent logs it and runs
//!   without the endpoint (see [`crate::agent`]).

mod access;
pub mod client;
mod https;
pub mod metrics;
mod page;
mod router;
pub mod status;
pub mod window;

pub use access::{AccessSettings, Visitor};
pub use status::{
    AgentFacts, BrokerReport, CameraReport, ModelReport, OutboxReport, Percentiles, ProcessReport,
    ReloadAnswer, STATUS_SCHEMA, StatusReport,
};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::agent::Control;
use crate::health::{CameraCounters, Cameras};
use crate::outbox::OutboxStats;
use crate::publish::BrokerState;
use window::{RateWindow, SAMPLE_INTERVAL, Sample, WINDOW};

/// How long [`LocalServer::stop`] waits for open connections to finish.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the local endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "the local endpoint cannot listen on {addr}: {}",
        describe_bind(source)
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// `[local] tls_cert`/`tls_key` cannot serve (the loader checked them; they changed since).
    #[error("the local endpoint cannot serve TLS: {reason}")]
    Tls { reason: String },
}

fn describe_bind(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "the port is taken by another program (another watchpost agent?)".to_owned()
        }
        std::io::ErrorKind::AddrNotAvailable => "no such address on this device".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

/// What the endpoint reports on, shared with the running agent.
#[derive(Debug)]
pub struct Sources {
    /// The cameras, as they change with reloads; reports list the live ones.
    pub cameras: Arc<Cameras>,
    /// From [`crate::publish::Publisher::broker_state`].
    pub broker: watch::Receiver<BrokerState>,
    pub outbox: Arc<OutboxStats>,
    pub facts: AgentFacts,
    /// When the agent started, on the monotonic clock (for the uptime).
    pub started: Instant,
    /// The running configuration, for `POST /reload` and the changes waiting for a restart;
    /// `None`: `/reload` answers 503.
    pub control: Option<Control>,
    /// Views of analysed frames for the technician's page; `None`: its pictures answer 503.
    pub views: Option<crate::framepath::Views>,
}

/// The state the handlers read.
pub(crate) struct Shared {
    sources: Sources,
    window: Mutex<RateWindow>,
}

impl Shared {
    fn new(sources: Sources) -> Shared {
        Shared {
            sources,
            window: Mutex::new(RateWindow::new(WINDOW)),
        }
    }

    /// The live cameras' names and counters now, by id.
    fn counters(&self) -> Vec<(usize, String, CameraCounters)> {
        self.sources
            .cameras
            .live()
            .into_iter()
            .map(|(id, c)| (id, c.name.to_string(), c.snapshot()))
            .collect()
    }

    /// The slot id of the live camera called `name`.
    fn camera_id(&self, name: &str) -> Option<usize> {
        self.sources
            .cameras
            .live()
            .into_iter()
            .find(|(_, c)| c.name.as_str() == name)
            .map(|(id, _)| id)
    }

    fn window(&self) -> std::sync::MutexGuard<'_, RateWindow> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a sample for the rate window.
    fn record_sample(&self) {
        let sample = Sample {
            at: Instant::now(),
            cameras: self
                .counters()
                .into_iter()
                .map(|(id, _, counters)| (id, counters))
                .collect(),
        };
        self.window().push(sample);
    }

    pub(crate) fn status_report(&self) -> StatusReport {
        let at = SystemTime::now();
        let now = Instant::now();
        let counters = self.counters();
        let (earlier, elapsed) = match self.window().oldest() {
            // Less than half a sampling interval says little about a rate.
            Some(sample) if now.duration_since(sample.at) >= SAMPLE_INTERVAL / 2 => {
                (sample.cameras.clone(), now.duration_since(sample.at))
            }
            _ => (Vec::new(), Duration::ZERO),
        };
        let cameras = counters
            .iter()
            .map(|(id, name, now)| {
                // A camera added since the window's start: no rates until the next sample.
                let earlier = earlier
                    .iter()
                    .find(|(earlier_id, _)| earlier_id == id)
                    .map_or(now, |(_, c)| c);
                CameraReport::new(name, now, earlier, elapsed, at)
            })
            .collect();
        let broker = self.sources.broker.borrow().clone();
        let mut report = StatusReport::new(
            &self.sources.facts,
            now.duration_since(self.sources.started),
            elapsed,
            cameras,
            &broker,
            &self.sources.outbox.figures(),
            process_report(),
            at,
        );
        report.at_restart = self
            .sources
            .control
            .as_ref()
            .map(Control::at_restart)
            .unwrap_or_default();
        report
    }

    pub(crate) fn metrics_text(&self) -> String {
        let cameras: Vec<(String, CameraCounters)> = self
            .counters()
            .into_iter()
            .map(|(_, name, counters)| (name, counters))
            .collect();
        let broker = self.sources.broker.borrow().clone();
        metrics::render(&metrics::Scrape {
            cameras: &cameras,
            broker: &broker,
            outbox: &self.sources.outbox.figures(),
            process: process_report(),
            version: crate::publish::payload::AGENT_VERSION,
            started_at: self.sources.facts.started_at,
            at: SystemTime::now(),
        })
    }
}

/// The running endpoint. Dropping it stops it at once; [`LocalServer::stop`] lets open
/// requests finish first.
#[derive(Debug)]
pub struct LocalServer {
    addr: SocketAddr,
    stop: CancellationToken,
    server: Option<JoinHandle<()>>,
    sampler: Option<JoinHandle<()>>,
}

impl LocalServer {
    /// Binds `listen` and serves on the current tokio runtime; peers that are not this device
    /// get in as `access` says (`access.rs`).
    ///
    /// With `access.tls`, it serves HTTPS only (`https.rs`).
    ///
    /// # Errors
    /// [`LocalError::Bind`]: the address cannot be had (port taken, address not on this
    /// device); [`LocalError::Tls`]: the certificate or key cannot be used.
    pub async fn start(
        listen: SocketAddr,
        access: AccessSettings,
        sources: Sources,
    ) -> Result<LocalServer, LocalError> {
        let bind_error = |source| LocalError::Bind {
            addr: listen,
            source,
        };
        let acceptor = match &access.tls {
            Some(files) => {
                Some(https::acceptor(files).map_err(|reason| LocalError::Tls { reason })?)
            }
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let shared = Arc::new(Shared::new(sources));
        let stop = CancellationToken::new();
        let sampler = tokio::spawn(sample_until(Arc::clone(&shared), stop.clone()));
        let shutdown = stop.clone().cancelled_owned();
        let app = router::router(shared, Arc::new(access::Access::new(access)));
        let server = match acceptor {
            Some(acceptor) => tokio::spawn(https::serve(listener, acceptor, app, stop.clone())),
            None => tokio::spawn(async move {
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::warn!("the local endpoint stopped: {e}");
                }
            }),
        };
        Ok(LocalServer {
            addr,
            stop,
            server: Some(server),
            sampler: Some(sampler),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets open requests finish (at most 2 s), and stops.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(STOP_TIMEOUT, &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop.cancel();
        for task in [self.server.take(), self.sampler.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

/// Samples the counters every [`SAMPLE_INTERVAL`] until `stop`.
async fn sample_until(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => shared.record_sample(),
        }
    }
}

/// This process's resident memory and CPU time so far, from `/proc/self`; `None` where that
/// cannot be read.
pub fn process_report() -> Option<ProcessReport> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let rss_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')';
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let (page_size, ticks) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    let page_size = u64::try_from(page_size).ok().filter(|&p| p > 0)?;
    let ticks = u64::try_from(ticks).ok().filter(|&t| t > 0)?;
    Some(ProcessReport {
        rss_bytes: rss_pages * page_size,
        cpu_seconds: (utime + stime) as f64 / ticks as f64,
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::config::TopicName;
    use crate::health::{CameraState, CameraStats, DropReason};

    fn sources() -> (Sources, Arc<CameraStats>, watch::Sender<BrokerState>) {
        let camera = Arc::new(CameraStats::new(TopicName::parse("gate").unwrap()));
        let (broker_tx, broker) = watch::channel(BrokerState::default());
        let sources = Sources {
            cameras: Arc::new(Cameras::new(vec![Arc::clone(&camera)])),
            broker,
            outbox: Arc::new(OutboxStats::default()),
            facts: AgentFacts {
                site: "site".into(),
                device: "dev".into(),
                started_at: SystemTime::now(),
                model: ModelReport {
                    name: "m".into(),
                    reason: "configured".into(),
                },
            },
            started: Instant::now(),
            control: None,
            views: None,
        };
        (sources, camera, broker_tx)
    }

    /// A raw request, the whole response back.
    fn raw(addr: SocketAddr, request: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_status_and_metrics_and_refuses_the_rest() {
        let (sources, camera, broker_tx) = sources();
        let server = LocalServer::start(
            "127.0.0.1:0".parse().unwrap(),
            AccessSettings::default(),
            sources,
        )
        .await
        .unwrap();
        let addr = server.local_addr();
        camera.set_state(CameraState::Streaming);
        camera.count_frame_in(SystemTime::now());
        camera.count_drop(DropReason::TooOld);
        broker_tx.send_modify(|b| {
            b.connected = true;
            b.endpoint = Some("127.0.0.1:1883".into());
        });

        let checks = tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(5);
            let json = client::get(addr, "/status", timeout).unwrap();
            let report: StatusReport = serde_json::from_str(&json).unwrap();
            assert_eq!(report.schema, STATUS_SCHEMA);
            assert_eq!(
                (report.site.as_str(), report.device.as_str()),
                ("site", "dev")
            );
            assert_eq!(report.cameras.len(), 1);
            assert_eq!(report.cameras[0].name, "gate");
            assert_eq!(report.cameras[0].state, "streaming");
            assert_eq!(report.cameras[0].frames_in, 1);
            assert_eq!(report.cameras[0].dropped, 1);
            assert!(report.broker.connected);
            assert_eq!(report.broker.endpoint.as_deref(), Some("127.0.0.1:1883"));
            assert!(report.process.is_some_and(|p| p.rss_bytes > 0));

            let text = client::get(addr, "/metrics", timeout).unwrap();
            assert!(
                text.contains("watchpost_camera_frames_in_total{camera=\"gate\"} 1\n"),
                "{text}"
            );
            assert!(text.contains("watchpost_broker_connected 1\n"), "{text}");

            // (request, expected status line, expected text in the response)
            let cases = [
                (
                    "GET /metrics HTTP/1.0\r\n\r\n",
                    "HTTP/1.0 200 OK",
                    "content-type: text/plain; version=0.0.4",
                ),
                (
                    "GET /status HTTP/1.0\r\n\r\n",
                    "HTTP/1.0 200 OK",
                    "content-type: application/json",
                ),
                (
                    "GET / HTTP/1.0\r\n\r\n",
                    "HTTP/1.0 200 OK",
                    "<meta name=\"csrf-token\"",
                ),
                (
                    "GET /nothing-here HTTP/1.0\r\n\r\n",
                    "HTTP/1.0 404 Not Found",
                    "GET /status",
                ),
                (
                    "GET /status/x HTTP/1.0\r\n\r\n",
                    "HTTP/1.0 404 Not Found",
                    "",
                ),
                // What is not GET or HEAD needs the CSRF token first, even from loopback.
                (
                    "POST /status HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
                    "HTTP/1.0 403 Forbidden",
                    "missing or wrong CSRF token",
                ),
                (
                    "DELETE /metrics HTTP/1.0\r\n\r\n",
                    "HTTP/1.0 403 Forbidden",
                    "",
                ),
                (
                    "PUT /reload HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
                    "HTTP/1.0 405 Method Not Allowed",
                    "allow: POST",
                ),
                (
                    "GET /login HTTP/1.0\r\n\r\n",
                    "HTTP/1.0 200 OK",
                    "<meta name=\"csrf-token\"",
                ),
            ];
            for (request, status, contains) in cases {
                let response = raw(addr, request).to_lowercase();
                assert!(
                    response.starts_with(&status.to_lowercase()),
                    "{request:?}: {response}"
                );
                assert!(
                    response.contains(&contains.to_lowercase()),
                    "{request:?}: {response}"
                );
            }
            addr
        })
        .await
        .unwrap();

        server.stop().await;
        let refused = tokio::task::spawn_blocking(move || {
            client::get(checks, "/status", Duration::from_secs(2))
        })
        .await
        .unwrap();
        assert!(
            matches!(refused, Err(client::FetchError::NotAnswering { .. })),
            "{refused:?}"
        );
    }

    /// A self-signed certificate and its key as PEM files in `dir`, named after `stem`.
    fn certificate(dir: &std::path::Path, stem: &str) -> crate::config::CertKeyFiles {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let files = crate::config::CertKeyFiles {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    /// Two self-signed certificates, `own` and `other`, in a new folder.
    fn two_certificates() -> (
        tempfile::TempDir,
        crate::config::CertKeyFiles,
        crate::config::CertKeyFiles,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let own = certificate(dir.path(), "own");
        let other = certificate(dir.path(), "other");
        (dir, own, other)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn over_tls_the_client_accepts_only_the_configured_certificate() {
        let (dir, own, other) = two_certificates();
        let (sources, _camera, _broker) = sources();
        let access = AccessSettings {
            tls: Some(own.clone()),
            ..AccessSettings::default()
        };
        let server = LocalServer::start("127.0.0.1:0".parse().unwrap(), access, sources)
            .await
            .unwrap();
        let addr = server.local_addr();
        let missing = dir.path().join("missing.pem");
        let outcomes = tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(5);
            let with = |cert: Option<&std::path::Path>| client::Endpoint {
                addr,
                tls_cert: cert.map(std::path::Path::to_owned),
            };
            [
                client::get(with(Some(&own.cert)), "/status", timeout),
                client::get(with(Some(&other.cert)), "/status", timeout),
                client::get(with(None), "/status", timeout),
                client::get(with(Some(&missing)), "/status", timeout),
                // The server still serves after all that.
                client::get(with(Some(&own.cert)), "/metrics", timeout),
            ]
        })
        .await
        .unwrap();
        let [right, wrong, plain, missing, after] = outcomes;
        let report: StatusReport = serde_json::from_str(&right.unwrap()).unwrap();
        assert_eq!(report.cameras[0].name, "gate");
        assert!(
            matches!(&wrong, Err(client::FetchError::Tls { reason, .. })
                if reason.contains("another certificate")),
            "{wrong:?}"
        );
        assert!(
            matches!(
                &plain,
                Err(client::FetchError::NotAgent { .. } | client::FetchError::NotAnswering { .. })
            ),
            "{plain:?}"
        );
        let missing = missing.unwrap_err();
        assert!(
            matches!(&missing, client::FetchError::Certificate { .. })
                && missing.to_string().contains("missing.pem"),
            "{missing}"
        );
        assert!(after.unwrap().contains("watchpost_"));
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_that_is_not_the_certificates_is_a_clear_error() {
        let (_dir, own, other) = two_certificates();
        let (sources, _camera, _broker) = sources();
        let access = AccessSettings {
            tls: Some(crate::config::CertKeyFiles {
                cert: own.cert.clone(),
                key: other.key.clone(),
            }),
            ..AccessSettings::default()
        };
        let e = LocalServer::start("127.0.0.1:0".parse().unwrap(), access, sources)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "the local endpoint cannot serve TLS: [local] tls_key `{}` is not the private key \
                 of the certificate in `{}`",
                other.key.display(),
                own.cert.display()
            )
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_taken_port_is_a_clear_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let (sources, _camera, _broker) = sources();
        let e = LocalServer::start(addr, AccessSettings::default(), sources)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "the local endpoint cannot listen on {addr}: the port is taken by another \
                 program (another watchpost agent?)"
            )
        );
    }

    #[test]
    fn reads_this_process() {
        let process = process_report().expect("/proc/self on Linux");
        assert!(process.rss_bytes > 1_000_000, "{process:?}");
        assert!(process.cpu_seconds >= 0.0, "{process:?}");
    }
}
