//! Who may use the local endpoint: a pure core ([`decide`], [`Sessions`], [`LoginThrottle`],
//! [`safe_next`], [`same_secret`]), tested from tables, and the thin axum edge around it (the
//! middleware [`guard`] on every route, and `GET`/`POST /login`, `POST /logout`).
//!
//! ```text
//!  peer            path                         needs
//!  any             anything                     first, a `Host` header (if any) naming
//!                                               `localhost`, an IP address or one of
//!                                               `[local] allowed_hosts`, else 421
//!  loopback        anything                     nothing (the box itself, or an SSH tunnel);
//!                                               Visitor { user: "page@local", csrf: per process }
//!  other           GET /login, POST /login,     nothing
//!                  GET /assets/*
//!  other           GET /metrics                 nothing with metrics_without_login, else a session
//!  other           POST /reload (any method)    refused: 403 (loopback only; the CLI's)
//!  other           anything else                the `watchpost_session` cookie of a login;
//!                                               without: 303 to /login?next=… for a GET/HEAD
//!                                               that accepts text/html, 401 otherwise
//!  any             not GET/HEAD, except         header X-CSRF-Token = the visitor's token,
//!                  POST /login, POST /reload    else 403
//! ```
//!
//! Handlers read who asks with `Extension<Visitor>` (or `Option<Extension<Visitor>>` on the
//! paths open without login, where a peer that is not logged in has none): `visitor.csrf` goes
//! into the page (`<meta name="csrf-token">`) for its scripts to send back as `X-CSRF-Token`,
//! `visitor.user` into the audit log.
//!
//! The `Host` rule is against DNS rebinding: a web page in the technician's own browser whose
//! name an attacker re-points at 127.0.0.1 would otherwise be a loopback peer, which needs no
//! login. Its requests carry the attacker's name in `Host`, never an IP address or
//! `localhost`. A request without `Host` (HTTP/1.0 tools) is served: browsers always send one.
//!
//! With TLS (`[local] tls_cert`) the session cookie is also `Secure`.
//!
//! Invariants: the password is compared in constant time and never logged, echoed or put in
//! an error; wrong passwords are logged with the peer's address. Sessions and the throttle are
//! bounded maps ([`MAX_SESSIONS`], [`MAX_THROTTLED_PEERS`]; when full, the oldest goes).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Router;
use axum::extract::{ConnectInfo, Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::RngCore as _;
use sha2::{Digest, Sha256};

use crate::config::{CertKeyFiles, Secret};

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "watchpost_session";
/// The header a state-changing request carries its visitor's CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// Sessions held at most; a login beyond that ends the least recently used one.
pub(crate) const MAX_SESSIONS: usize = 64;
/// A session not used for this long is over.
pub(crate) const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// Peers whose wrong passwords are remembered at most; beyond that the one heard from least
/// recently is forgotten.
pub(crate) const MAX_THROTTLED_PEERS: usize = 256;
/// Wrong passwords in a row before the delays start.
const FREE_ATTEMPTS: u32 = 3;
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(60);

/// Who is asking, as [`guard`] found: in the request's extensions for handlers
/// (`Extension<Visitor>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visitor {
    /// `page@local` for this device, `page@<peer ip>` for a login ([`page_user`]); for the
    /// audit log.
    pub user: String,
    /// The token a state-changing request must carry as `X-CSRF-Token`: the session's, or this
    /// process's for loopback peers.
    pub csrf: String,
}

/// The user name of a page visitor: `page@local` on loopback (`None`), else `page@<ip>`.
pub(crate) fn page_user(peer: Option<IpAddr>) -> String {
    match peer {
        None => "page@local".to_owned(),
        Some(ip) => format!("page@{ip}"),
    }
}

/// 32 random bytes, base64 URL-safe without padding.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `given` equals `expected`, in a time that does not depend on where they differ:
/// the SHA-256 digests of both are compared byte by byte, all of them.
pub(crate) fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    let difference = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// The peer is this device.
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The logged-in visitors, by session token. Bounded ([`MAX_SESSIONS`]); idle ones expire.
#[derive(Debug)]
pub(crate) struct Sessions {
    max: usize,
    idle: Duration,
    by_token: HashMap<String, Session>,
}

#[derive(Debug)]
struct Session {
    visitor: Visitor,
    last_used: Instant,
}

impl Sessions {
    pub(crate) fn new(max: usize, idle: Duration) -> Sessions {
        Sessions {
            max: max.max(1),
            idle,
            by_token: HashMap::new(),
        }
    }

    /// A new session for `peer`: its token (the cookie's value) and its visitor. When full, the
    /// expired ones go, then the least recently used.
    pub(crate) fn login(&mut self, peer: IpAddr, now: Instant) -> (String, Visitor) {
        let idle = self.idle;
        self.by_token
            .retain(|_, s| now.saturating_duration_since(s.last_used) < idle);
        while self.by_token.len() >= self.max {
            let Some(oldest) = self
                .by_token
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(token, _)| token.clone())
            else {
                break;
            };
            self.by_token.remove(&oldest);
        }
        let token = new_token();
        let visitor = Visitor {
            user: page_user(Some(peer.to_canonical())),
            csrf: new_token(),
        };
        self.by_token.insert(
            token.clone(),
            Session {
                visitor: visitor.clone(),
                last_used: now,
            },
        );
        (token, visitor)
    }

    /// The visitor of session `token`, when it is one and has not been idle too long; its idle
    /// time starts again.
    pub(crate) fn check(&mut self, token: &str, now: Instant) -> Option<Visitor> {
        let session = self.by_token.get_mut(token)?;
        if now.saturating_duration_since(session.last_used) >= self.idle {
            self.by_token.remove(token);
            return None;
        }
        session.last_used = session.last_used.max(now);
        Some(session.visitor.clone())
    }

    /// Ends session `token`; whether there was one.
    pub(crate) fn logout(&mut self, token: &str) -> bool {
        self.by_token.remove(token).is_some()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_token.len()
    }
}

/// Wrong passwords per peer: after [`FREE_ATTEMPTS`] in a row, each further attempt waits for a
/// delay that doubles (1 s, 2 s, 4 s … at most 60 s); a right password forgets the peer.
/// Bounded ([`MAX_THROTTLED_PEERS`]).
#[derive(Debug)]
pub(crate) struct LoginThrottle {
    max_peers: usize,
    peers: HashMap<IpAddr, Failures>,
}

#[derive(Debug)]
struct Failures {
    in_a_row: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

impl LoginThrottle {
    pub(crate) fn new(max_peers: usize) -> LoginThrottle {
        LoginThrottle {
            max_peers: max_peers.max(1),
            peers: HashMap::new(),
        }
    }

    /// `Err(wait)`: `peer` is locked out for `wait` more; its attempt is refused unread.
    pub(crate) fn check(&self, peer: IpAddr, now: Instant) -> Result<(), Duration> {
        match self.peers.get(&peer).and_then(|f| f.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// A wrong password from `peer` at `now`.
    pub(crate) fn wrong(&mut self, peer: IpAddr, now: Instant) {
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.max_peers {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(ip, _)| *ip);
            if let Some(oldest) = oldest {
                self.peers.remove(&oldest);
            }
        }
        let failures = self.peers.entry(peer).or_insert(Failures {
            in_a_row: 0,
            locked_until: None,
            last: now,
        });
        failures.in_a_row = failures.in_a_row.saturating_add(1);
        failures.last = now;
        if let Some(beyond) = failures.in_a_row.checked_sub(FREE_ATTEMPTS) {
            failures.locked_until = Some(now + lock_delay(beyond));
        }
    }

    /// The right password from `peer`: its wrong ones are forgotten.
    pub(crate) fn right(&mut self, peer: IpAddr) {
        self.peers.remove(&peer);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.peers.len()
    }
}

/// The lock-out after [`FREE_ATTEMPTS`] + `beyond` wrong passwords in a row.
fn lock_delay(beyond: u32) -> Duration {
    FIRST_DELAY
        .checked_mul(1u32.checked_shl(beyond).unwrap_or(u32::MAX))
        .map_or(MAX_DELAY, |d| d.min(MAX_DELAY))
}

/// Whole seconds to say for `wait`, at least 1.
fn wait_seconds(wait: &Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// `next` when it is a path on this endpoint (starts with one `/`, no backslash or control
/// character), else `/`: a login never sends its visitor to another site.
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.contains('\\')
                && !next.chars().any(char::is_control) =>
        {
            next
        }
        _ => "/",
    }
}

/// Whether a request's `Host` header (`None`: it has none) names this endpoint in a way no
/// other web site can: `localhost`, an IPv4 address, an IPv6 address in brackets, or one of
/// `allowed` (lower case, as the configuration keeps them); any port, a final dot and the case
/// do not matter. A request without `Host` is not a browser's: allowed.
pub(crate) fn host_allowed(host: Option<&str>, allowed: &[String]) -> bool {
    let Some(host) = host else {
        return true;
    };
    let port_ok = |port: &str| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').is_some_and(|(ip, after)| {
            ip.parse::<Ipv6Addr>().is_ok()
                && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok))
        });
    }
    let name = match host.split_once(':') {
        Some((name, port)) if port_ok(port) => name,
        Some(_) => return false,
        None => host,
    };
    if name.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    !name.is_empty() && (name == "localhost" || allowed.contains(&name))
}

/// What [`decide`] made of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// 421: the `Host` header names something else than this endpoint ([`host_allowed`]).
    MisdirectedHost,
    /// Served; the visitor, `None` on an open path for a peer not logged in.
    Serve(Option<Visitor>),
    /// 303 to `/login?next=<the path>`.
    RedirectToLogin,
    /// 401.
    LoginRequired,
    /// 403: `POST /reload` is for this device only.
    LoopbackOnly,
    /// 403: a state-changing request without its visitor's token.
    BadCsrf,
}

/// What [`decide`] looks at in a request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Asked<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    /// The peer is this device.
    pub loopback: bool,
    /// The loopback visitor, or the session's ([`Sessions::check`]); `None`: not logged in.
    pub visitor: Option<&'a Visitor>,
    /// `X-CSRF-Token`.
    pub csrf: Option<&'a str>,
    /// `Accept` includes `text/html`.
    pub accepts_html: bool,
    /// `[local] metrics_without_login`.
    pub metrics_without_login: bool,
    /// The `Host` header (a value that is not text: `""`); `None`: none.
    pub host: Option<&'a str>,
    /// `[local] allowed_hosts`.
    pub allowed_hosts: &'a [String],
}

/// The access rules of the module's table, for one request.
pub(crate) fn decide(asked: &Asked<'_>) -> Decision {
    if !host_allowed(asked.host, asked.allowed_hosts) {
        return Decision::MisdirectedHost;
    }
    let reading = asked.method == Method::GET || asked.method == Method::HEAD;
    if asked.path == "/reload" {
        return if asked.loopback {
            Decision::Serve(asked.visitor.cloned())
        } else {
            Decision::LoopbackOnly
        };
    }
    let login = asked.path == "/login" && (reading || asked.method == Method::POST);
    let Some(visitor) = asked.visitor else {
        let open = login
            || (reading && asked.path.starts_with("/assets/"))
            || (reading && asked.path == "/metrics" && asked.metrics_without_login);
        return if open {
            Decision::Serve(None)
        } else if reading && asked.accepts_html {
            Decision::RedirectToLogin
        } else {
            Decision::LoginRequired
        };
    };
    let csrf_exempt = reading || (asked.path == "/login" && asked.method == Method::POST);
    let csrf_right = asked
        .csrf
        .is_some_and(|token| same_secret(token.as_bytes(), visitor.csrf.as_bytes()));
    if csrf_exempt || csrf_right {
        Decision::Serve(Some(visitor.clone()))
    } else {
        Decision::BadCsrf
    }
}

/// What [`Access::login`] says no for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LoginRefused {
    #[error(
        "no password is set for this endpoint ([local] password_file): use it from this device"
    )]
    NoPassword,
    #[error("wrong password")]
    Wrong,
    #[error("too many wrong passwords: try again in {} s", wait_seconds(.wait))]
    LockedOut { wait: Duration },
}

/// The endpoint's access state: the password, the sessions, the throttle and this process's
/// CSRF token for loopback visitors.
pub(crate) struct Access {
    password: Option<Secret>,
    metrics_without_login: bool,
    allowed_hosts: Vec<String>,
    /// The endpoint speaks TLS: the session cookie is `Secure`.
    secure_cookie: bool,
    loopback: Visitor,
    sessions: Mutex<Sessions>,
    throttle: Mutex<LoginThrottle>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("password", &self.password)
            .field("metrics_without_login", &self.metrics_without_login)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("secure_cookie", &self.secure_cookie)
            .finish_non_exhaustive()
    }
}

/// How the endpoint lets peers in: from `[local]`.
#[derive(Clone, Debug, Default)]
pub struct AccessSettings {
    /// The password of peers that are not this device; `None`: they cannot log in.
    pub password: Option<Secret>,
    /// `GET /metrics` needs no login.
    pub metrics_without_login: bool,
    /// Host names a request's `Host` header may name besides `localhost` and IP addresses
    /// (lower case, no port: `[local] allowed_hosts`).
    pub allowed_hosts: Vec<String>,
    /// The certificate and key to serve HTTPS with (`[local] tls_cert`, `tls_key`); `None`:
    /// plain HTTP.
    pub tls: Option<CertKeyFiles>,
}

impl Access {
    pub(crate) fn new(settings: AccessSettings) -> Access {
        Access {
            password: settings.password,
            metrics_without_login: settings.metrics_without_login,
            allowed_hosts: settings.allowed_hosts,
            secure_cookie: settings.tls.is_some(),
            loopback: Visitor {
                user: page_user(None),
                csrf: new_token(),
            },
            sessions: Mutex::new(Sessions::new(MAX_SESSIONS, SESSION_IDLE)),
            throttle: Mutex::new(LoginThrottle::new(MAX_THROTTLED_PEERS)),
        }
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn throttle(&self) -> MutexGuard<'_, LoginThrottle> {
        self.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A login attempt by `peer` with `password` at `now`: the new session's token and visitor.
    ///
    /// # Errors
    /// [`LoginRefused`]: no password set, locked out (the password is not looked at), or wrong.
    pub(crate) fn login(
        &self,
        peer: IpAddr,
        password: &str,
        now: Instant,
    ) -> Result<(String, Visitor), LoginRefused> {
        let Some(expected) = &self.password else {
            return Err(LoginRefused::NoPassword);
        };
        let mut throttle = self.throttle();
        throttle
            .check(peer, now)
            .map_err(|wait| LoginRefused::LockedOut { wait })?;
        if !same_secret(password.as_bytes(), expected.expose().as_bytes()) {
            throttle.wrong(peer, now);
            return Err(LoginRefused::Wrong);
        }
        throttle.right(peer);
        drop(throttle);
        Ok(self.sessions().login(peer, now))
    }
}

/// The session token in the `Cookie` headers, if any.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value)
        })
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("text/html"))
}

/// `text` with every byte outside `A-Z a-z 0-9 - . _ ~` percent-encoded, for a query value.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// `text` safe inside HTML text and quoted attributes (also for the page's templates).
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response(),
    }
}

/// The middleware on every route: [`decide`] on the request, then the request goes on with
/// its [`Visitor`] in its extensions, or is answered here.
pub(crate) async fn guard(
    State(access): State<Arc<Access>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let loopback = is_loopback(peer.ip());
    let headers = request.headers();
    let session = match (loopback, session_cookie(headers)) {
        (true, _) | (false, None) => None,
        (false, Some(token)) => access.sessions().check(token, Instant::now()),
    };
    let visitor = if loopback {
        Some(&access.loopback)
    } else {
        session.as_ref()
    };
    let decision = decide(&Asked {
        method: request.method(),
        path: request.uri().path(),
        loopback,
        visitor,
        csrf: headers
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok()),
        accepts_html: accepts_html(headers),
        metrics_without_login: access.metrics_without_login,
        host: headers
            .get(header::HOST)
            .map(|value| value.to_str().unwrap_or("")),
        allowed_hosts: &access.allowed_hosts,
    });
    match decision {
        Decision::MisdirectedHost => {
            tracing::debug!(
                peer = %peer.ip().to_canonical(),
                "local endpoint: refused a request for another host name"
            );
            (
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected request: this endpoint answers to localhost, its IP addresses and \
                 the names in [local] allowed_hosts only\n",
            )
                .into_response()
        }
        Decision::Serve(visitor) => {
            if let Some(visitor) = visitor {
                request.extensions_mut().insert(visitor);
            }
            next.run(request).await
        }
        Decision::RedirectToLogin => {
            let here = request.uri().path_and_query().map_or("/", |p| p.as_str());
            see_other(&format!("/login?next={}", percent_encode(here)))
        }
        Decision::LoginRequired => (
            StatusCode::UNAUTHORIZED,
            "login required: log in at /login, or use this endpoint from the device itself \
             (an SSH tunnel to 127.0.0.1)\n",
        )
            .into_response(),
        Decision::LoopbackOnly => (
            StatusCode::FORBIDDEN,
            "POST /reload is only for this device (127.0.0.1): use `watchpost config` there\n",
        )
            .into_response(),
        Decision::BadCsrf => {
            (StatusCode::FORBIDDEN, "missing or wrong CSRF token\n").into_response()
        }
    }
}

/// `/login` and `/logout`, over `access`.
pub(crate) fn routes(access: Arc<Access>) -> Router {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .with_state(access)
}

#[derive(serde::Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(serde::Deserialize)]
struct LoginForm {
    password: String,
    next: Option<String>,
}

/// A whole page titled `title`, with `head` (already HTML) in its head and `body` (already
/// HTML) in its body; self-contained.
fn page(title: &str, head: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>watchpost: {title}</title>
{head}<style>
body {{ font-family: sans-serif; max-width: 22rem; margin: 4rem auto; padding: 0 1rem; }}
input {{ font-size: 1rem; padding: .4rem; width: 100%; box-sizing: border-box; margin: .3rem 0 1rem; }}
button {{ font-size: 1rem; padding: .4rem 1rem; }}
.reason {{ color: #a00; }}
</style>
</head>
<body>
<h1>watchpost</h1>
{body}</body>
</html>
"#,
        title = escape_html(title),
    ))
}

/// The login page: a form posting `password` and `next` to `/login`, with `reason` (plain
/// text) shown above it.
fn login_html(next: &str, reason: Option<&str>) -> Html<String> {
    let reason = reason
        .map(|r| format!("<p class=\"reason\">{}</p>\n", escape_html(r)))
        .unwrap_or_default();
    page(
        "log in",
        "",
        &format!(
            r#"{reason}<form method="post" action="/login">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" autofocus required>
<input type="hidden" name="next" value="{next}">
<button type="submit">Log in</button>
</form>
"#,
            next = escape_html(next),
        ),
    )
}

/// `/login` for a visitor already in: who they are, a way on to `next`, and a logout button
/// (which sends the page's CSRF token, from `<meta name="csrf-token">`, as the page's own
/// scripts do).
fn logged_in_html(visitor: &Visitor, next: &str) -> Html<String> {
    page(
        "logged in",
        &format!(
            "<meta name=\"csrf-token\" content=\"{}\">\n",
            escape_html(&visitor.csrf)
        ),
        &format!(
            r#"<p>You are in as {user}.</p>
<p><a href="{next}">Continue</a></p>
<button id="logout" type="button">Log out</button>
<script>
document.getElementById("logout").addEventListener("click", async () => {{
  const token = document.querySelector('meta[name="csrf-token"]').content;
  await fetch("/logout", {{ method: "POST", headers: {{ "X-CSRF-Token": token }} }});
  location.href = "/login";
}});
</script>
"#,
            user = escape_html(&visitor.user),
            next = escape_html(next),
        ),
    )
}

/// `GET /login`: the form, or for a visitor already in ([`guard`] found a session, or this
/// device), [`logged_in_html`].
async fn login_page(
    visitor: Option<Extension<Visitor>>,
    Query(query): Query<NextQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    match visitor {
        Some(Extension(visitor)) => logged_in_html(&visitor, next).into_response(),
        None => login_html(next, None).into_response(),
    }
}

/// `POST /login`: a session cookie and 303 to `next`, or 401 with the form and the reason.
async fn login(
    State(access): State<Arc<Access>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let ip = peer.ip().to_canonical();
    match access.login(ip, &form.password, Instant::now()) {
        Ok((token, visitor)) => {
            tracing::info!(peer = %ip, user = %visitor.user, "local endpoint: logged in");
            let secure = if access.secure_cookie { "; Secure" } else { "" };
            let cookie =
                format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}");
            let mut response = see_other(next);
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(refused) => {
            tracing::warn!(peer = %ip, "local endpoint: login refused: {refused}");
            (
                StatusCode::UNAUTHORIZED,
                login_html(next, Some(&refused.to_string())),
            )
                .into_response()
        }
    }
}

/// `POST /logout` (CSRF-checked by [`guard`]): the session ends, the cookie is cleared, 303 to
/// `/login`.
async fn logout(
    State(access): State<Arc<Access>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = session_cookie(&headers)
        && access.sessions().logout(token)
    {
        tracing::info!(peer = %peer.ip().to_canonical(), "local endpoint: logged out");
    }
    let mut response = see_other("/login");
    let cleared = if access.secure_cookie {
        "watchpost_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Secure"
    } else {
        "watchpost_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    };
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static(cleared));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 168, 1, last])
    }

    #[test]
    fn sessions_from_table() {
        let t0 = Instant::now();
        let mut sessions = Sessions::new(2, 10 * S);
        let (a, visitor_a) = sessions.login(ip(1), t0);
        assert_eq!(visitor_a.user, "page@192.168.1.1");
        assert_eq!(a.len(), 43, "32 bytes in base64 without padding: {a}");
        assert_eq!(visitor_a.csrf.len(), 43);
        assert_ne!(a, visitor_a.csrf);
        let (b, visitor_b) = sessions.login(ip(2), t0 + S);
        assert_ne!(visitor_a.csrf, visitor_b.csrf);
        // (token, at, expected)
        let cases = [
            (a.as_str(), t0 + 2 * S, Some(&visitor_a)),
            ("nope", t0 + 2 * S, None),
            ("", t0 + 2 * S, None),
            // Used at 2 s: idle for 9.9 s, still on.
            (
                a.as_str(),
                t0 + Duration::from_millis(11_900),
                Some(&visitor_a),
            ),
            // b last used at 1 s: 10 s idle is over.
            (b.as_str(), t0 + 11 * S, None),
            (b.as_str(), t0 + 2 * S, None),
        ];
        for (token, at, expected) in cases {
            assert_eq!(
                sessions.check(token, at).as_ref(),
                expected,
                "{token} {at:?}"
            );
        }
        // Full: the least recently used goes.
        let (c, _) = sessions.login(ip(3), t0 + 12 * S);
        let (d, _) = sessions.login(ip(4), t0 + 13 * S);
        assert_eq!(sessions.len(), 2);
        let (e, _) = sessions.login(ip(5), t0 + 14 * S);
        assert_eq!(sessions.len(), 2);
        assert!(
            sessions.check(&a, t0 + 14 * S).is_none(),
            "a, the oldest, went for d"
        );
        assert!(sessions.check(&c, t0 + 14 * S).is_none(), "then c, for e");
        assert!(sessions.check(&d, t0 + 14 * S).is_some());
        assert!(sessions.logout(&e));
        assert!(!sessions.logout(&e));
        assert!(sessions.check(&e, t0 + 14 * S).is_none());
    }

    #[test]
    fn throttle_from_table() {
        let t0 = Instant::now();
        let mut throttle = LoginThrottle::new(8);
        let peer = ip(9);
        // (at in ms, Some(wrong) = an attempt with a wrong/right password, expected check
        // before it: Ok or Err(wait in ms))
        let cases: &[(u64, bool, Result<(), u64>)] = &[
            (0, true, Ok(())),
            (10, true, Ok(())),
            (20, true, Ok(())), // the 3rd: 1 s from now
            (30, true, Err(990)),
            (1019, true, Err(1)),
            (1020, true, Ok(())), // the 4th: 2 s
            (3019, true, Err(1)),
            (3020, true, Ok(())),   // the 5th: 4 s
            (7020, true, Ok(())),   // 8 s
            (15_020, true, Ok(())), // 16 s
            (31_020, true, Ok(())), // 32 s
            (63_020, true, Ok(())), // 64 s, capped at 60
            (123_019, false, Err(1)),
            (123_020, false, Ok(())), // the right one resets
            (123_030, true, Ok(())),
            (123_040, true, Ok(())),
            (123_050, true, Ok(())),
            (123_060, true, Err(990)),
        ];
        for &(at, wrong, expected) in cases {
            let now = t0 + Duration::from_millis(at);
            let got = throttle.check(peer, now).map_err(|w| w.as_millis() as u64);
            assert_eq!(got, expected, "at {at} ms");
            assert_eq!(
                throttle.check(ip(10), now),
                Ok(()),
                "another peer is not locked out"
            );
            if got.is_ok() {
                if wrong {
                    throttle.wrong(peer, now);
                } else {
                    throttle.right(peer);
                }
            }
        }
        // Bounded: the peer heard from least recently is forgotten.
        let mut throttle = LoginThrottle::new(2);
        for (i, last) in [1u8, 2, 3].into_iter().enumerate() {
            for _ in 0..3 {
                throttle.wrong(ip(last), t0 + S * u32::try_from(i).unwrap());
            }
        }
        assert_eq!(throttle.len(), 2);
        assert_eq!(throttle.check(ip(1), t0), Ok(()), "forgotten");
        assert!(throttle.check(ip(3), t0 + 2 * S).is_err());
        // Long runs stay at the cap.
        assert_eq!(lock_delay(0), S);
        assert_eq!(lock_delay(3), 8 * S);
        assert_eq!(lock_delay(6), 60 * S);
        assert_eq!(lock_delay(40), 60 * S);
        assert_eq!(lock_delay(u32::MAX), 60 * S);
    }

    #[test]
    fn login_checks_the_password_and_says_why_not() {
        let access = Access::new(AccessSettings {
            password: Some(Secret::new("hunter2-page")),
            ..AccessSettings::default()
        });
        let t0 = Instant::now();
        let peer = ip(7);
        for (at, password, expected) in [
            (0, "hunter2", Err("wrong password")),
            (1, "", Err("wrong password")),
            (2, "hunter2-page ", Err("wrong password")),
            (
                3,
                "hunter2-page",
                Err("too many wrong passwords: try again in 1 s"),
            ),
            (1003, "hunter2-page", Ok("page@192.168.1.7")),
            (1004, "x", Err("wrong password")),
        ] {
            let got = access.login(peer, password, t0 + Duration::from_millis(at));
            match (got, expected) {
                (Ok((token, visitor)), Ok(user)) => {
                    assert_eq!(visitor.user, user);
                    assert_eq!(access.sessions().check(&token, t0), Some(visitor));
                }
                (Err(e), Err(message)) => {
                    assert_eq!(e.to_string(), message, "{password}");
                    assert!(!e.to_string().contains("hunter2"));
                }
                (got, _) => panic!("{password}: {got:?}"),
            }
        }
        let without = Access::new(AccessSettings::default());
        assert_eq!(
            without.login(peer, "", t0).unwrap_err(),
            LoginRefused::NoPassword
        );
        assert!(!format!("{access:?}").contains("hunter2"));
    }

    #[test]
    fn same_secret_from_table() {
        for (a, b, same) in [
            ("", "", true),
            ("pw", "pw", true),
            ("pw", "pW", false),
            ("pw", "pw ", false),
            ("", "x", false),
            (
                "a-long-password-of-many-characters",
                "a-long-password-of-many-characters",
                true,
            ),
        ] {
            assert_eq!(same_secret(a.as_bytes(), b.as_bytes()), same, "{a:?} {b:?}");
        }
    }

    #[test]
    fn next_from_table() {
        for (next, expected) in [
            (None, "/"),
            (Some(""), "/"),
            (Some("/"), "/"),
            (Some("/cameras/gate?x=1"), "/cameras/gate?x=1"),
            (Some("//evil.example/"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("cameras"), "/"),
            (Some("/a\r\nSet-Cookie: x=y"), "/"),
            (Some("/<script>"), "/<script>"),
        ] {
            assert_eq!(safe_next(next), expected, "{next:?}");
        }
        // What is echoed is escaped, and what is redirected to is encoded.
        let Html(page) = login_html("/\"><script>", Some("<b>"));
        assert!(
            page.contains("value=\"/&quot;&gt;&lt;script&gt;\""),
            "{page}"
        );
        assert!(page.contains("&lt;b&gt;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert_eq!(
            percent_encode("/cameras/a b?x=1&y"),
            "%2Fcameras%2Fa%20b%3Fx%3D1%26y"
        );
    }

    #[test]
    fn cookies_and_accept() {
        let mut headers = HeaderMap::new();
        assert_eq!(session_cookie(&headers), None);
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        assert_eq!(session_cookie(&headers), None);
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("x=y;watchpost_session=tok-1 ; z=1"),
        );
        assert_eq!(session_cookie(&headers), Some("tok-1"));
        assert!(!accepts_html(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(accepts_html(&headers));
    }

    #[test]
    fn decisions_from_table() {
        use Decision::*;
        let local = Visitor {
            user: "page@local".into(),
            csrf: "local-token".into(),
        };
        let logged_in = Visitor {
            user: "page@192.168.1.5".into(),
            csrf: "session-token".into(),
        };
        let (get, head, post, delete) = (Method::GET, Method::HEAD, Method::POST, Method::DELETE);
        // Who: L = loopback, In = logged in from the LAN, Out = not logged in from the LAN.
        #[derive(Clone, Copy)]
        enum Who {
            L,
            In,
            Out,
        }
        use Who::*;
        // (who, method, path, X-CSRF-Token, accepts html, metrics_without_login, expected)
        let serve_local = Serve(Some(local.clone()));
        let serve_in = Serve(Some(logged_in.clone()));
        type Case<'a> = (
            Who,
            &'a Method,
            &'a str,
            Option<&'a str>,
            bool,
            bool,
            Decision,
        );
        let cases: Vec<Case<'_>> = vec![
            // Loopback: no login; CSRF on what changes, except /reload (the CLI's).
            (L, &get, "/status", None, false, false, serve_local.clone()),
            (L, &get, "/", None, true, false, serve_local.clone()),
            (L, &get, "/metrics", None, false, false, serve_local.clone()),
            (L, &post, "/reload", None, false, false, serve_local.clone()),
            (L, &post, "/api/cameras/gate", None, false, false, BadCsrf),
            (
                L,
                &post,
                "/api/cameras/gate",
                Some("wrong"),
                false,
                false,
                BadCsrf,
            ),
            (
                L,
                &post,
                "/api/cameras/gate",
                Some("session-token"),
                false,
                false,
                BadCsrf,
            ),
            (
                L,
                &post,
                "/api/cameras/gate",
                Some("local-token"),
                false,
                false,
                serve_local.clone(),
            ),
            (
                L,
                &post,
                "/logout",
                Some("local-token"),
                false,
                false,
                serve_local.clone(),
            ),
            // Not logged in, from the LAN.
            (Out, &get, "/status", None, false, false, LoginRequired),
            (Out, &head, "/status", None, false, false, LoginRequired),
            (Out, &get, "/", None, true, false, RedirectToLogin),
            (
                Out,
                &head,
                "/cameras/gate",
                None,
                true,
                false,
                RedirectToLogin,
            ),
            (Out, &get, "/api/cameras", None, false, false, LoginRequired),
            (
                Out,
                &post,
                "/api/cameras/gate",
                Some("x"),
                true,
                false,
                LoginRequired,
            ),
            (Out, &get, "/metrics", None, false, false, LoginRequired),
            (Out, &get, "/metrics", None, false, true, Serve(None)),
            (Out, &post, "/metrics", None, false, true, LoginRequired),
            (Out, &post, "/reload", None, false, false, LoopbackOnly),
            (Out, &get, "/reload", None, true, false, LoopbackOnly),
            (Out, &get, "/login", None, true, false, Serve(None)),
            (Out, &post, "/login", None, false, false, Serve(None)),
            (Out, &delete, "/login", None, false, false, LoginRequired),
            (
                Out,
                &get,
                "/assets/page.js",
                None,
                false,
                false,
                Serve(None),
            ),
            (
                Out,
                &post,
                "/assets/page.js",
                None,
                false,
                false,
                LoginRequired,
            ),
            (Out, &get, "/assetsx", None, true, false, RedirectToLogin),
            (Out, &post, "/logout", None, false, false, LoginRequired),
            // Logged in, from the LAN.
            (In, &get, "/status", None, false, false, serve_in.clone()),
            (In, &get, "/", None, true, false, serve_in.clone()),
            (In, &get, "/metrics", None, false, false, serve_in.clone()),
            (
                In,
                &post,
                "/reload",
                Some("session-token"),
                false,
                false,
                LoopbackOnly,
            ),
            (In, &post, "/logout", None, false, false, BadCsrf),
            (In, &post, "/logout", Some(""), false, false, BadCsrf),
            (
                In,
                &post,
                "/logout",
                Some("local-token"),
                false,
                false,
                BadCsrf,
            ),
            (
                In,
                &post,
                "/logout",
                Some("session-token"),
                false,
                false,
                serve_in.clone(),
            ),
            (
                In,
                &delete,
                "/api/x",
                Some("session-token"),
                false,
                false,
                serve_in.clone(),
            ),
            (In, &post, "/login", None, false, false, serve_in.clone()),
        ];
        for (who, method, path, csrf, accepts_html, metrics_without_login, expected) in cases {
            let visitor = match who {
                L => Some(&local),
                In => Some(&logged_in),
                Out => None,
            };
            let asked = Asked {
                method,
                path,
                loopback: matches!(who, L),
                visitor,
                csrf,
                accepts_html,
                metrics_without_login,
                host: Some("127.0.0.1:9750"),
                allowed_hosts: &[],
            };
            assert_eq!(decide(&asked), expected, "{method} {path} {csrf:?}");
        }

        // The Host header comes first, for anyone (a rebound name reaches us as a loopback
        // peer). (Host, who, method, path, expected)
        let allowed = ["post-7.lan".to_owned()];
        let host_cases: Vec<(Option<&str>, Who, &Method, &str, Decision)> = vec![
            (None, L, &get, "/status", serve_local.clone()),
            (
                Some("127.0.0.1:9750"),
                L,
                &get,
                "/status",
                serve_local.clone(),
            ),
            (Some("127.0.0.1"), L, &get, "/status", serve_local.clone()),
            (Some("192.168.1.10:9750"), In, &get, "/", serve_in.clone()),
            (Some("[::1]:9750"), L, &get, "/status", serve_local.clone()),
            (Some("[::1]"), L, &get, "/status", serve_local.clone()),
            (Some("[fe80::1]:9750"), Out, &get, "/login", Serve(None)),
            (
                Some("localhost:9750"),
                L,
                &get,
                "/status",
                serve_local.clone(),
            ),
            (Some("LocalHost."), L, &get, "/status", serve_local.clone()),
            (Some("post-7.lan:9750"), In, &get, "/", serve_in.clone()),
            (Some("POST-7.LAN"), Out, &get, "/status", LoginRequired),
            (Some("evil.example"), L, &get, "/status", MisdirectedHost),
            (
                Some("evil.example:9750"),
                L,
                &post,
                "/reload",
                MisdirectedHost,
            ),
            (Some("evil.example"), Out, &get, "/login", MisdirectedHost),
            (
                Some("evil.example"),
                In,
                &get,
                "/assets/page.js",
                MisdirectedHost,
            ),
            (
                Some("localhost.evil.example"),
                L,
                &get,
                "/",
                MisdirectedHost,
            ),
            (
                Some("post-7.lan.evil.example"),
                L,
                &get,
                "/",
                MisdirectedHost,
            ),
            (
                Some("127.0.0.1.evil.example"),
                L,
                &get,
                "/",
                MisdirectedHost,
            ),
            (Some("7f000001.nip.io"), L, &get, "/", MisdirectedHost),
            (Some(""), L, &get, "/status", MisdirectedHost),
            (Some(":9750"), L, &get, "/status", MisdirectedHost),
            (Some("localhost:x"), L, &get, "/status", MisdirectedHost),
            (Some("localhost:"), L, &get, "/status", MisdirectedHost),
            (Some("::1"), L, &get, "/status", MisdirectedHost),
            (Some("[::1"), L, &get, "/status", MisdirectedHost),
            (Some("[::1]x"), L, &get, "/status", MisdirectedHost),
            (Some("[evil.example]"), L, &get, "/status", MisdirectedHost),
        ];
        for (host, who, method, path, expected) in host_cases {
            let asked = Asked {
                method,
                path,
                loopback: matches!(who, L),
                visitor: match who {
                    L => Some(&local),
                    In => Some(&logged_in),
                    Out => None,
                },
                csrf: None,
                accepts_html: false,
                metrics_without_login: false,
                host,
                allowed_hosts: &allowed,
            };
            assert_eq!(decide(&asked), expected, "Host {host:?} {method} {path}");
        }
    }

    #[test]
    fn user_names() {
        assert_eq!(page_user(None), "page@local");
        assert_eq!(page_user(Some(ip(3))), "page@192.168.1.3");
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(!is_loopback("::ffff:192.168.1.3".parse().unwrap()));
    }
}
