//! Access to the agent's local endpoint from the network, against a real agent (`watchpost run`
//! with `[local] listen = "0.0.0.0:PORT"` and a password file, the in-process RTSP server, a
//! real mosquitto): a peer on the LAN (this machine's own LAN address) must log in, is locked
//! out after wrong passwords, and must send the CSRF token with what changes; the device itself
//! (127.0.0.1) needs no login; no password appears in any answer; a `Host` header naming
//! another site is refused. Over TLS (`tls_cert`, `tls_key`): the login works over HTTPS with a
//! `Secure` cookie, plain HTTP gets no answer, and `watchpost status` reaches it. And an agent
//! told to listen on the network without a password file, or with a certificate it cannot use,
//! refuses to start.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::agent::{Agent, AgentSetup, clip_server, expect};
use common::http::{Response, https_request, lan_address, request};
use common::mosquitto::{Mosquitto, free_port};
use common::wait_for;

const PAGE_PASSWORD: &str = "page-s3cret-7f2";
const CAMERA_PASSWORD: &str = "rtsp-s3cret-9k4";

/// No password, in any form the page could leak it.
fn assert_no_secret(what: &str, response: &Response) {
    for secret in [PAGE_PASSWORD, CAMERA_PASSWORD] {
        assert!(
            !response.body.contains(secret) && !format!("{:?}", response.headers).contains(secret),
            "{what}: a password in the answer: {response:?}"
        );
    }
}

/// The `watchpost_session=…` pair of a `Set-Cookie` header.
fn session_pair(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .expect("a cookie")
        .trim()
        .to_owned()
}

/// The content of the page's `<meta name="csrf-token" content="…">`.
fn csrf_token(html: &str) -> String {
    let start = "<meta name=\"csrf-token\" content=\"";
    let rest = html
        .split_once(start)
        .unwrap_or_else(|| panic!("no csrf-token meta in {html}"))
        .1;
    rest.split('"').next().unwrap().to_owned()
}

#[test]
fn a_peer_on_the_network_logs_in_and_sends_the_csrf_token() {
    let lan = lan_address();
    let server = clip_server();
    let broker = Mosquitto::start();
    let port = free_port();
    let mut setup = AgentSetup {
        camera_extra: format!("username = \"admin\"\npassword = \"{CAMERA_PASSWORD}\"\n"),
        ..AgentSetup::one_camera(server.url("cam0"))
    };
    let _secrets = setup.listen_on_the_network(port, PAGE_PASSWORD);
    let agent = Agent::start(&broker, &setup);
    let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let remote = SocketAddr::new(lan, port);

    // The device itself: no login.
    let status = expect(
        wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
            std::net::TcpStream::connect(local).ok()?;
            let response = request(local, "GET", "/status", &[], "");
            (response.status == 200).then_some(response)
        }),
        "GET /status from 127.0.0.1 answers 200 without a login",
        &agent,
    );
    assert_no_secret("local /status", &status);
    let metrics = request(local, "GET", "/metrics", &[], "");
    assert_eq!(metrics.status, 200, "{metrics:?}");
    // A page whose name was re-pointed at 127.0.0.1 (DNS rebinding) names itself in `Host`.
    let rebound = request(local, "GET", "/status", &[("Host", "evil.example")], "");
    assert_eq!(rebound.status, 421, "{rebound:?}");
    assert!(rebound.body.contains("allowed_hosts"), "{rebound:?}");
    assert!(!rebound.body.contains("\"cameras\""), "{rebound:?}");
    let own_host = format!("127.0.0.1:{port}");
    let by_ip = request(local, "GET", "/status", &[("Host", own_host.as_str())], "");
    assert_eq!(by_ip.status, 200, "{by_ip:?}");

    // From the LAN, not logged in.
    let html = [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    let mut answers = Vec::new();
    for (method, path, headers, expected) in [
        ("GET", "/status", &[][..], 401),
        ("GET", "/metrics", &[][..], 401),
        ("POST", "/reload", &[][..], 403),
        ("GET", "/", &html[..], 303),
        ("GET", "/cameras/cam0", &html[..], 303),
        ("GET", "/login?next=%2Fcameras%2Fcam0", &html[..], 200),
    ] {
        let response = request(remote, method, path, headers, "");
        assert_eq!(response.status, expected, "{method} {path}: {response:?}");
        answers.push(response);
    }
    assert_eq!(answers[3].header("location"), Some("/login?next=%2F"));
    assert_eq!(
        answers[4].header("location"),
        Some("/login?next=%2Fcameras%2Fcam0")
    );
    assert!(
        answers[0].body.contains("login required"),
        "{:?}",
        answers[0]
    );
    let form = &answers[5].body;
    assert!(
        form.contains("<form method=\"post\" action=\"/login\"")
            && form.contains("value=\"/cameras/cam0\""),
        "{form}"
    );

    // Wrong passwords: refused, then locked out.
    let form_type = [("Content-Type", "application/x-www-form-urlencoded")];
    for attempt in 1..=4 {
        let response = request(
            remote,
            "POST",
            "/login",
            &form_type,
            "password=not-it&next=%2Fstatus",
        );
        assert_eq!(response.status, 401, "attempt {attempt}: {response:?}");
        assert!(response.header("set-cookie").is_none(), "{response:?}");
        let expected = if attempt <= 3 {
            "wrong password"
        } else {
            "too many wrong passwords: try again in"
        };
        assert!(
            response.body.contains(expected),
            "attempt {attempt}: {}",
            response.body
        );
        answers.push(response);
    }
    // The right password while locked out is refused too; then, after the delay, it gets in.
    let right = format!("password={PAGE_PASSWORD}&next=%2Fstatus");
    let login = expect(
        wait_for(Duration::from_secs(10), Duration::from_millis(250), || {
            let response = request(remote, "POST", "/login", &form_type, &right);
            if response.status == 401 {
                assert!(
                    response.body.contains("too many wrong passwords"),
                    "{response:?}"
                );
                return None;
            }
            Some(response)
        }),
        "the right password gets in once the lock-out is over",
        &agent,
    );
    assert_eq!(login.status, 303, "{login:?}");
    assert_eq!(login.header("location"), Some("/status"));
    let set_cookie = login.header("set-cookie").expect("a session cookie");
    assert!(
        set_cookie.starts_with("watchpost_session=")
            && set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Strict")
            && set_cookie.contains("Path=/"),
        "{set_cookie}"
    );
    let cookie = session_pair(set_cookie);
    let with_cookie = [("Cookie", cookie.as_str())];

    // Logged in.
    let status = request(remote, "GET", "/status", &with_cookie, "");
    assert_eq!(status.status, 200, "{status:?}");
    assert!(status.body.contains("\"cam0\""), "{}", status.body);
    let reload = request(remote, "POST", "/reload", &with_cookie, "");
    assert_eq!(reload.status, 403, "{reload:?}");
    let forged = request(
        remote,
        "GET",
        "/status",
        &[("Cookie", "watchpost_session=forged")],
        "",
    );
    assert_eq!(forged.status, 401, "{forged:?}");

    // What changes needs the CSRF token: a logout without it is refused and changes nothing.
    let no_token = request(remote, "POST", "/logout", &with_cookie, "");
    assert_eq!(no_token.status, 403, "{no_token:?}");
    assert!(no_token.body.contains("CSRF"), "{no_token:?}");
    let wrong_token = request(
        remote,
        "POST",
        "/logout",
        &[("Cookie", cookie.as_str()), ("X-CSRF-Token", "not-it")],
        "",
    );
    assert_eq!(wrong_token.status, 403, "{wrong_token:?}");
    assert_eq!(
        request(remote, "GET", "/status", &with_cookie, "").status,
        200
    );
    // The token the page is given, in `<meta name="csrf-token">` (here: of /login, logged in).
    let logged_in = request(remote, "GET", "/login", &with_cookie, "");
    assert_eq!(logged_in.status, 200, "{logged_in:?}");
    let token = csrf_token(&logged_in.body);
    // The device's own token is not this session's.
    let local_page = request(local, "GET", "/login", &[], "");
    assert_ne!(csrf_token(&local_page.body), token);
    let logout = request(
        remote,
        "POST",
        "/logout",
        &[
            ("Cookie", cookie.as_str()),
            ("X-CSRF-Token", token.as_str()),
        ],
        "",
    );
    assert_eq!(logout.status, 303, "{logout:?}");
    assert_eq!(logout.header("location"), Some("/login"));
    assert!(
        logout
            .header("set-cookie")
            .is_some_and(|c| c.starts_with("watchpost_session=;") && c.contains("Max-Age=0")),
        "{logout:?}"
    );
    let after = request(remote, "GET", "/status", &with_cookie, "");
    assert_eq!(after.status, 401, "the session is over: {after:?}");
    answers.extend([
        status,
        reload,
        forged,
        no_token,
        wrong_token,
        logged_in,
        local_page,
        logout,
        after,
    ]);

    for (i, response) in answers.iter().enumerate() {
        assert_no_secret(&format!("answer {i}"), response);
    }
    let log = agent.log();
    assert!(
        log.contains("login refused") && log.contains(&lan.to_string()),
        "the wrong passwords are logged with the peer: {log}"
    );
    assert!(
        !log.contains(PAGE_PASSWORD),
        "the password in the log: {log}"
    );
}

/// `watchpost run` on a configuration in `dir` whose `[local]` table (line 7 on) is `local`:
/// it must refuse to start with exit code 2 and one line on stderr, which is returned.
fn run_refused(dir: &std::path::Path, local: &str) -> String {
    let path = dir.join("watchpost.toml");
    std::fs::write(
        &path,
        format!(
            "[device]\nsite = \"s\"\nid = \"d\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n[local]\n\
             {local}[[cameras]]\nname = \"gate\"\nurl = \"rtsp://h/x\"\n"
        ),
    )
    .unwrap();
    let output = assert_cmd::cargo::cargo_bin_cmd!("watchpost")
        .args(["run", "--config"])
        .arg(&path)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn run_refuses_to_listen_on_the_network_without_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_refused(dir.path(), "listen = \"0.0.0.0:9750\"\n");
    assert!(
        stderr.contains(":7: local.listen: `0.0.0.0:9750` is not a loopback address")
            && stderr.contains("set [local] password_file"),
        "{stderr}"
    );
}

/// A self-signed certificate for `localhost`, 127.0.0.1 and `lan`, and its key, as PEM files in
/// `dir`: (cert path, key path, the certificate as a trust root).
fn self_signed(
    dir: &std::path::Path,
    lan: std::net::IpAddr,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    rustls::RootCertStore,
) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        lan.to_string(),
    ])
    .unwrap()
    .self_signed(&key)
    .unwrap();
    let (cert_path, key_path) = (dir.join("page.pem"), dir.join("page.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    (cert_path, key_path, roots)
}

#[test]
fn over_tls_the_login_works_with_a_secure_cookie_and_plain_http_gets_nothing() {
    let lan = lan_address();
    let server = clip_server();
    let broker = Mosquitto::start();
    let port = free_port();
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("page-password");
    std::fs::write(&password_file, format!("{PAGE_PASSWORD}\n")).unwrap();
    let (cert, key, roots) = self_signed(secrets.path(), lan);
    let setup = AgentSetup {
        tables: format!(
            "[local]\nlisten = \"0.0.0.0:{port}\"\npassword_file = \"{}\"\ntls_cert = \"{}\"\n\
             tls_key = \"{}\"\n",
            password_file.display(),
            cert.display(),
            key.display()
        ),
        ..AgentSetup::one_camera(server.url("cam0"))
    };
    let agent = Agent::start(&broker, &setup);
    let remote = SocketAddr::new(lan, port);
    let lan_name = lan.to_string();
    let https = |method: &str, path: &str, headers: &[(&str, &str)], body: &str| {
        https_request(
            remote,
            roots.clone(),
            &lan_name,
            method,
            path,
            headers,
            body,
        )
    };

    // `watchpost status` on the device speaks TLS to it, trusting the configured certificate.
    let status = expect(
        wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
            let output = assert_cmd::cargo::cargo_bin_cmd!("watchpost")
                .args(["status", "--config"])
                .arg(agent.config_path())
                .timeout(Duration::from_secs(20))
                .output()
                .unwrap();
            output.status.success().then_some(output)
        }),
        "`watchpost status` answers over TLS",
        &agent,
    );
    let table = String::from_utf8(status.stdout).unwrap();
    assert!(table.contains("cam0"), "{table}");

    // Plain HTTP on the TLS port: no HTTP answer, and the server goes on.
    let mut plain = std::net::TcpStream::connect(remote).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::io::Write::write_all(
        &mut plain,
        format!("GET /status HTTP/1.1\r\nHost: {remote}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer: {}",
        String::from_utf8_lossy(&answer)
    );

    // From the LAN over HTTPS: not logged in, then the login with a Secure cookie.
    let refused = https("GET", "/status", &[], "");
    assert_eq!(refused.status, 401, "{refused:?}");
    let form_type = [("Content-Type", "application/x-www-form-urlencoded")];
    let login = https(
        "POST",
        "/login",
        &form_type,
        &format!("password={PAGE_PASSWORD}&next=%2Fstatus"),
    );
    assert_eq!(login.status, 303, "{login:?}");
    let set_cookie = login.header("set-cookie").expect("a session cookie");
    assert!(
        set_cookie.starts_with("watchpost_session=")
            && set_cookie.contains("Secure")
            && set_cookie.contains("HttpOnly"),
        "{set_cookie}"
    );
    let cookie = session_pair(set_cookie);
    let status = https("GET", "/status", &[("Cookie", cookie.as_str())], "");
    assert_eq!(status.status, 200, "{status:?}");
    assert!(status.body.contains("\"cam0\""), "{}", status.body);
    for (i, response) in [&refused, &login, &status].into_iter().enumerate() {
        assert_no_secret(&format!("answer {i}"), response);
    }
    let log = agent.log();
    assert!(log.contains(&format!("https://0.0.0.0:{port}")), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "{log}");
}

#[test]
fn run_refuses_a_certificate_and_key_that_do_not_belong_together() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _key, _) = self_signed(dir.path(), "192.168.1.10".parse().unwrap());
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.path().join("other.key"), other.serialize_pem()).unwrap();
    let stderr = run_refused(
        dir.path(),
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"other.key\"\n",
            cert.display()
        ),
    );
    assert!(
        stderr.contains(":8: local.tls_key: `")
            && stderr.contains("other.key` is not the private key of the certificate in `"),
        "{stderr}"
    );
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
}
