//! The agent's log in the systemd journal, as `watchpost.service` gets it: with stderr a journal
//! stream (`$JOURNAL_STREAM` naming it), each line goes to the real `systemd-journald` with its
//! fields, the camera's name among them, and is read back with `journalctl`; with any other
//! stderr, the same lines stay text on stderr and the journal gets none of them.
//!
//! Uses the running journald, or starts `systemd-journald` itself (as root, as in CI) when
//! there is none.

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::agent::{AgentSetup, clip_server};
use common::mosquitto::Mosquitto;
use serde_json::Value;

const SOCKET: &str = "/run/systemd/journal/socket";

/// A journald to log to: the running one, or one started here and stopped on drop.
struct Journald(Option<Child>);

impl Journald {
    fn ensure() -> Journald {
        if answers() {
            return Journald(None);
        }
        // SAFETY: geteuid cannot fail.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "no journald answers on {SOCKET}, and only root can start one: run as root"
        );
        let binary = [
            "/usr/lib/systemd/systemd-journald",
            "/lib/systemd/systemd-journald",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("systemd-journald (package systemd)");
        let child = Command::new(binary)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start systemd-journald");
        let journald = Journald(Some(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !answers() {
            assert!(Instant::now() < deadline, "systemd-journald did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        journald
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

/// Whether a journald listens on its socket (a socket file can outlive its journald).
fn answers() -> bool {
    UnixDatagram::unbound()
        .and_then(|socket| socket.send_to(&[], SOCKET))
        .is_ok()
}

/// The journal's entries with `FIELD=VALUE`, as JSON objects.
fn journal(field: &str, value: &str) -> Vec<Value> {
    let output = Command::new("journalctl")
        .args(["--no-pager", "--output=json", &format!("{field}={value}")])
        .output()
        .expect("journalctl");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A name no earlier run of this test has used: the journal keeps their entries.
fn fresh_name(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{what}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Runs `watchpost run` on one camera named `camera` until `done` says so (or 60 s), then
/// SIGTERM; stderr goes to `stderr_file`, and `journal_stream` is its `$JOURNAL_STREAM`.
fn run_agent(
    broker: &Mosquitto,
    rtsp_url: &str,
    camera: &str,
    dir: &Path,
    journal_stream: Option<String>,
    stderr_file: &Path,
    done: impl Fn() -> bool,
) -> bool {
    let setup = AgentSetup::one_camera(rtsp_url.to_owned());
    let text = setup
        .config_text(&broker.url(), &dir.join("state"))
        .replace("name = \"cam0\"", &format!("name = \"{camera}\""));
    let config = dir.join("watchpost.toml");
    std::fs::write(&config, text).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_watchpost"));
    command
        .args(["run", "--log", "info", "--config"])
        .arg(&config)
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr_file).unwrap());
    if let Some(stream) = journal_stream {
        command.env("JOURNAL_STREAM", stream);
    }
    let mut child = command.spawn().expect("start watchpost run");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = false;
    while Instant::now() < deadline {
        if done() {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "watchpost run: {status}");
    seen
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry[name].as_str().unwrap_or("")
}

#[test]
fn under_systemd_the_log_goes_to_the_journal_with_the_camera_as_a_field() {
    let _journald = Journald::ensure();
    let broker = Mosquitto::start();
    let server = clip_server();
    let dir = tempfile::tempdir().unwrap();

    // stderr is "the journal stream": the file systemd would have connected, named by
    // device and inode.
    let camera = fresh_name("gate");
    let stderr_file = dir.path().join("journal-stream");
    std::fs::File::create(&stderr_file).unwrap();
    let meta = std::fs::metadata(&stderr_file).unwrap();
    let streaming = |camera: &str| {
        journal("WATCHPOST_CAMERA", camera)
            .into_iter()
            .find(|e| field(e, "MESSAGE") == "streaming")
    };
    let seen = run_agent(
        &broker,
        &server.url("cam0"),
        &camera,
        dir.path(),
        Some(format!("{}:{}", meta.dev(), meta.ino())),
        &stderr_file,
        || streaming(&camera).is_some(),
    );
    let stderr = std::fs::read_to_string(&stderr_file).unwrap();
    assert!(
        seen,
        "no `streaming` entry for {camera} in the journal; stderr:\n{stderr}"
    );
    let entry = streaming(&camera).unwrap();
    assert_eq!(field(&entry, "SYSLOG_IDENTIFIER"), "watchpost", "{entry}");
    assert_eq!(field(&entry, "SPAN_NAME"), "camera", "{entry}");
    assert_eq!(field(&entry, "PRIORITY"), "5", "info is notice: {entry}");
    assert_eq!(field(&entry, "WATCHPOST_WIDTH"), "640", "{entry}");
    // The shutdown, outside any camera, is there too; nothing went to stderr twice.
    let ours: Vec<Value> = journal("SYSLOG_IDENTIFIER", "watchpost")
        .into_iter()
        .filter(|e| field(e, "_PID") == field(&entry, "_PID"))
        .collect();
    assert!(
        ours.iter()
            .any(|e| field(e, "MESSAGE").starts_with("shutting down")),
        "{ours:?}"
    );
    assert!(!stderr.contains("streaming"), "{stderr}");

    // Any other stderr keeps the text, with the camera's span, and the journal gets nothing.
    let camera = fresh_name("yard");
    let stderr_file = dir.path().join("stderr.log");
    let seen = run_agent(
        &broker,
        &server.url("cam0"),
        &camera,
        dir.path(),
        Some("1:1".to_owned()),
        &stderr_file,
        || {
            std::fs::read_to_string(&stderr_file)
                .unwrap_or_default()
                .contains("streaming")
        },
    );
    let stderr = std::fs::read_to_string(&stderr_file).unwrap();
    assert!(seen, "no `streaming` on stderr:\n{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(&format!("camera{{camera={camera}}}")) && l.contains("streaming")),
        "{stderr}"
    );
    assert!(journal("WATCHPOST_CAMERA", &camera).is_empty());
}
