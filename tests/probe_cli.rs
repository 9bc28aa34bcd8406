//! `watchpost camera probe` and `camera draw` driven as a technician would: the real binary
//! against the in-process RTSP server (with and without authentication, audio only, a codec
//! nothing here decodes), closed and silent ports, a name that does not resolve, and the
//! bundled model.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use assert_cmd::cargo::cargo_bin_cmd;
use common::Run;
use watchpost::demo::clip_server::ClipServer;
use watchpost::imaging::Frame;

const USER: &str = "technician";
const PASSWORD: &str = "s3cret-Pass-42";
const WRONG_PASSWORD: &str = "wrong-Pass-17";

/// A camera that sends only audio (G.711 A-law).
const AUDIO_ONLY: &str = "( audiotestsrc is-live=true wave=silence ! audio/x-raw,rate=8000,channels=1 \
     ! alawenc ! rtppcmapay name=pay0 pt=8 )";

/// A camera whose video no installed decoder reads: JPEG pictures labelled H.266 (VVC, which
/// GStreamer 1.22 cannot decode), carried in GStreamer's own RTP payload so that the client's
/// depayloader hands out `video/x-h266`.
const H266_VIDEO: &str = "( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=10/1 \
     ! jpegenc ! capssetter join=false replace=true caps=video/x-h266 ! rtpgstpay name=pay0 pt=96 \
     config-interval=1 )";

impl Run {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not one JSON object: {e}: {}", self.stdout))
    }

    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

fn watchpost(args: &[&str]) -> Run {
    let output = cargo_bin_cmd!("watchpost").args(args).output().unwrap();
    let run = Run::from(output);
    eprintln!(
        "$ watchpost {}\n{}{}exit {:?}",
        args.join(" "),
        run.stdout,
        run.stderr,
        run.code
    );
    run
}

/// The one error line of a failed probe (text format), after `watchpost: error: `.
fn error_line(run: &Run) -> String {
    assert_eq!(run.code, Some(1), "a failed probe exits 1");
    assert_eq!(run.stdout, "", "nothing on stdout");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", run.stderr);
    lines[0]
        .strip_prefix("watchpost: error: ")
        .unwrap_or_else(|| panic!("prefixed: {}", lines[0]))
        .to_owned()
}

fn clip_server() -> ClipServer {
    common::agent::clip_server()
}

/// A configuration with one camera `gate` at `url`, with `extra` appended to its table.
fn write_config(dir: &Path, url: &str, extra: &str) -> PathBuf {
    let path = dir.join("watchpost.toml");
    let text = format!(
        r#"[device]
site = "test-site"
id = "post-1"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[[cameras]]
name = "gate"
url = "{url}"
{extra}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A zone in the lower left and a vertical line on the right, as `[[cameras.*]]` tables.
const LAYOUT: &str = r#"
[[cameras.zones]]
name = "dock"
points = [[0.05, 0.55], [0.35, 0.55], [0.35, 0.95], [0.05, 0.95]]
[[cameras.lines]]
name = "border"
points = [[0.8, 0.1], [0.8, 0.9]]
direction_names = ["inbound", "outbound"]
"#;

fn is_yellow(p: [u8; 3]) -> bool {
    p[2] > 150 && p[1] > 150 && p[0] < 110
}

fn is_green(p: [u8; 3]) -> bool {
    p[1] > 150 && p[0] < 140 && p[2] < 140
}

fn is_magenta(p: [u8; 3]) -> bool {
    p[2] > 150 && p[0] > 150 && p[1] < 110
}

/// Whether any pixel within `radius` of (x, y) passes `test`.
fn near(picture: &Frame, x: usize, y: usize, radius: usize, test: fn([u8; 3]) -> bool) -> bool {
    (y.saturating_sub(radius)..=y + radius).any(|yy| {
        (x.saturating_sub(radius)..=x + radius).any(|xx| picture.pixel(xx, yy).is_some_and(test))
    })
}

/// The zone's bottom edge (y = 0.95) and the line (x = 0.8) on a 640x360 picture.
fn assert_layout_drawn(picture: &Frame) {
    assert_eq!((picture.width, picture.height), (640, 360));
    for x in [64, 128, 192] {
        assert!(
            near(picture, x, 342, 2, is_yellow),
            "the zone's bottom edge at x={x}"
        );
    }
    assert!(near(picture, 512, 60, 2, is_yellow), "the line");
}

#[test]
fn a_working_camera_reports_its_video_objects_and_snapshot() {
    let server = clip_server();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &server.url("cam0"), LAYOUT);
    let snapshot = dir.path().join("probe.jpg");
    let run = watchpost(&[
        "camera",
        "probe",
        "gate",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
        "--snapshot",
        snapshot.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let report = run.json();
    let keys: BTreeSet<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "camera",
            "url",
            "ok",
            "codec",
            "width",
            "height",
            "fps",
            "fps_advertised",
            "first_frame_ms",
            "frames",
            "decoder",
            "objects",
            "detections",
            "snapshot",
            "error",
        ])
    );
    assert_eq!(report["camera"], "gate");
    assert_eq!(report["url"], server.url("cam0"));
    assert_eq!(report["ok"], true);
    assert_eq!(report["error"], serde_json::Value::Null);
    assert_eq!(report["codec"], "H.264");
    assert_eq!(
        (report["width"].as_u64(), report["height"].as_u64()),
        (Some(640), Some(360))
    );
    // The clip is 29.97 fps, served in real time.
    let fps = report["fps"].as_f64().expect("a measured frame rate");
    assert!((25.0..=35.0).contains(&fps), "fps {fps}");
    let frames = report["frames"].as_u64().unwrap();
    assert!(frames >= 30, "3 s of video: {frames} frames");
    assert!(report["first_frame_ms"].as_u64().is_some());
    assert_eq!(report["decoder"], "software");
    // The street has people in it.
    let persons = report["objects"]["person"].as_u64().unwrap_or(0);
    assert!(persons >= 1, "persons found: {}", report["objects"]);
    let detections = report["detections"].as_array().unwrap();
    assert_eq!(
        detections.iter().filter(|d| d["class"] == "person").count() as u64,
        persons
    );
    assert_eq!(report["snapshot"], snapshot.to_str().unwrap());

    // The snapshot: the frame with the boxes, the zone, the line and its arrows.
    let bytes = std::fs::read(&snapshot).expect("the snapshot was written");
    let picture = watchpost::imaging::decode_image(&bytes).expect("a JPEG");
    if let Some(keep) = std::env::var_os("WATCHPOST_TEST_SNAPSHOTS") {
        std::fs::write(Path::new(&keep).join("probe.jpg"), &bytes).unwrap();
    }
    assert_layout_drawn(&picture);
    let boxes_drawn = detections
        .iter()
        .filter(|d| d["class"] == "person")
        .filter(|d| {
            let b: Vec<f64> = d["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            // The middle of the box's left edge, unless a zone or line crosses it there.
            let x = (b[0] * 640.0).round() as usize;
            let y = ((b[1] + b[3] / 2.0) * 360.0) as usize;
            near(&picture, x.min(639), y.min(359), 2, is_green)
        })
        .count();
    assert!(
        boxes_drawn >= 1,
        "a person's box is drawn in green on the snapshot"
    );
}

#[test]
fn a_url_probe_prints_a_readable_report() {
    let server = clip_server();
    let run = watchpost(&["camera", "probe", &server.url("cam1"), "--seconds", "1"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let out = &run.stdout;
    assert!(out.starts_with(&server.url("cam1")), "{out}");
    for expected in [
        "codec        H.264",
        "resolution   640x360",
        "fps measured over",
        "first frame  ",
        "decoder      software",
        "objects      ",
    ] {
        assert!(out.contains(expected), "`{expected}` in:\n{out}");
    }
    assert!(out.contains(" person"), "persons counted:\n{out}");
}

#[test]
fn a_closed_port_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("rtsp://127.0.0.1:{port}/stream1");
    let run = watchpost(&["camera", "probe", &url]);
    assert_eq!(
        error_line(&run),
        format!(
            "{url}: 127.0.0.1:{port} refused the connection: is the camera on, is RTSP enabled, \
             is the port right?"
        )
    );

    // The same as JSON: the same keys as a working camera, `ok` false, the error's kind.
    let run = watchpost(&["camera", "probe", &url, "--format", "json"]);
    assert_eq!(run.code, Some(1));
    let report = run.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["camera"], serde_json::Value::Null);
    assert_eq!(report["url"], url);
    assert_eq!(report["error"]["kind"], "refused");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused the connection")
    );
    assert_eq!(report["width"], serde_json::Value::Null);
    assert_eq!(report.as_object().unwrap().len(), 15);
}

#[test]
fn credentials_are_checked_and_never_printed() {
    let server = clip_server().with_auth(USER, PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("cam0");
    let right = dir.path().join("right");
    let wrong = dir.path().join("wrong");
    std::fs::write(&right, format!("{PASSWORD}\n")).unwrap();
    std::fs::write(&wrong, format!("{WRONG_PASSWORD}\n")).unwrap();

    // No credentials at all.
    let run = watchpost(&["camera", "probe", &url, "--timeout-s", "5"]);
    assert_eq!(
        error_line(&run),
        format!(
            "{url}: the camera wants a user name and password (401 Unauthorized): set \
             username/password_file"
        )
    );

    // A wrong password, from a file and in the URL.
    let run = watchpost(&[
        "camera",
        "probe",
        &url,
        "--username",
        USER,
        "--password-file",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(
        error_line(&run),
        format!(
            "{url}: the camera refused the credentials (401 Unauthorized): check \
             username/password_file"
        )
    );
    let with_password = url.replace("rtsp://", &format!("rtsp://{USER}:{WRONG_PASSWORD}@"));
    let run = watchpost(&["camera", "probe", &with_password, "--format", "json"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.json()["error"]["kind"], "unauthorized");
    assert_eq!(
        run.json()["url"],
        url,
        "the URL is shown without its credentials"
    );
    assert!(!run.all().contains(WRONG_PASSWORD), "{}", run.all());

    // A configured camera with a wrong password_file.
    let config = write_config(
        dir.path(),
        &url,
        &format!(
            "username = \"{USER}\"\npassword_file = \"{}\"",
            wrong.display()
        ),
    );
    let run = watchpost(&[
        "camera",
        "probe",
        "gate",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(error_line(&run).starts_with("camera gate: the camera refused the credentials"));
    assert!(!run.all().contains(WRONG_PASSWORD));

    // The right password works, and is not printed either.
    let run = watchpost(&[
        "camera",
        "probe",
        &url,
        "--username",
        USER,
        "--password-file",
        right.to_str().unwrap(),
        "--seconds",
        "0",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.json()["ok"], true);
    assert_eq!(run.json()["width"], 640);
    assert!(!run.all().contains(PASSWORD), "{}", run.all());
}

#[test]
fn a_wrong_path_is_not_found() {
    let server = clip_server();
    let url = server.url("Streaming/Channels/101");
    let run = watchpost(&["camera", "probe", &url]);
    assert_eq!(
        error_line(&run),
        format!(
            "{url}: the camera has no stream at `/Streaming/Channels/101` (404 Not Found): check \
             the stream path/profile"
        )
    );
}

#[test]
fn a_stream_without_video_is_named() {
    let mut server = clip_server();
    server.add_launch_mount("audio", AUDIO_ONLY);
    let url = server.url("audio");
    let run = watchpost(&["camera", "probe", &url, "--timeout-s", "5"]);
    assert_eq!(
        error_line(&run),
        format!(
            "{url}: the stream has no video (audio only?): check the stream path/profile (the \
             camera offers: audio PCMA)"
        )
    );
}

#[test]
fn a_codec_without_decoder_is_named() {
    let mut server = clip_server();
    server.add_launch_mount("vvc", H266_VIDEO);
    let url = server.url("vvc");
    let run = watchpost(&[
        "camera",
        "probe",
        &url,
        "--timeout-s",
        "5",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, Some(1));
    let report = run.json();
    assert_eq!(report["error"]["kind"], "unsupported_codec", "{report}");
    assert_eq!(
        report["error"]["message"],
        "the video is H.266 and no decoder for it is installed: install a GStreamer decoder for \
         `video/x-h266`, or set the camera to H.264"
    );
}

#[test]
fn a_name_that_does_not_resolve_is_a_dns_problem() {
    let run = watchpost(&["camera", "probe", "rtsp://cam.invalid/stream1"]);
    assert_eq!(
        error_line(&run),
        "rtsp://cam.invalid/stream1: cannot resolve `cam.invalid` (DNS): check the address or \
         the box's DNS server"
    );
}

/// Accepts connections and never says a word, until dropped.
struct SilentServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl SilentServer {
    fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                if let Ok((stream, _)) = listener.accept() {
                    stream.set_nonblocking(true).unwrap();
                    held.push(stream);
                }
                // Read (and ignore) what the client sends, so its writes never block.
                for stream in &mut held {
                    let mut buffer = [0u8; 1024];
                    let _ = stream.read(&mut buffer);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        SilentServer { port, stop }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_silent_camera_times_out() {
    let silent = SilentServer::start();
    let url = format!("rtsp://127.0.0.1:{}/stream1", silent.port);
    let run = watchpost(&["camera", "probe", &url, "--timeout-s", "2"]);
    assert_eq!(
        error_line(&run),
        format!(
            "{url}: no answer from 127.0.0.1:{} within 2 s: firewall, wrong IP, or the camera \
             is busy",
            silent.port
        )
    );
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "rtsp://127.0.0.1:9/x", "");
    let config = config.to_str().unwrap();

    let run = watchpost(&["camera", "probe", "gate-west", "--config", config]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.starts_with(&format!(
            "watchpost: error: no camera `gate-west` in {config} (cameras: gate)"
        )),
        "{}",
        run.stderr
    );
    let run = watchpost(&[
        "camera",
        "probe",
        "gate",
        "--config",
        config,
        "--username",
        "x",
    ]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains("--username and --password-file are for a URL")
    );
    let run = watchpost(&["camera", "probe", "http://cam/x"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "watchpost: error: the URL has scheme `http`, expected rtsp:// or rtsps://\n"
    );
    let missing = dir.path().join("missing.toml");
    let run = watchpost(&[
        "camera",
        "draw",
        "gate",
        "--config",
        missing.to_str().unwrap(),
        "-o",
        "x.jpg",
    ]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .starts_with(&format!("{}: cannot read", missing.display()))
    );
    for command in ["probe", "draw"] {
        let run = watchpost(&["camera", command, "--help"]);
        assert_eq!(run.code, Some(0));
        assert!(
            run.stdout.contains("Example"),
            "{command} --help has examples"
        );
    }
}

#[test]
fn draw_shows_zones_and_lines_on_a_camera_frame() {
    let server = clip_server();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &server.url("cam2"), LAYOUT);
    let output = dir.path().join("layout.jpg");
    let run = watchpost(&[
        "camera",
        "draw",
        "gate",
        "--config",
        config.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!(
            "{}: camera gate 640x360, 1 zone (dock), 1 line (border: arrows inbound, outbound)\n",
            output.display()
        )
    );
    let picture = watchpost::imaging::read_image(&output).expect("a JPEG");
    assert_layout_drawn(&picture);
}

#[test]
fn draw_on_a_snapshot_labels_the_directions_truthfully() {
    // A black picture, so every colour on it was drawn.
    let black = Frame::from_bgr(640, 360, 640 * 3, vec![0; 640 * 360 * 3]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("black.jpg");
    std::fs::write(
        &snapshot,
        watchpost::imaging::encode_jpeg(&black, 95).unwrap(),
    )
    .unwrap();
    // The camera is never contacted with --from-snapshot.
    let config = write_config(dir.path(), "rtsp://127.0.0.1:9/x", LAYOUT);
    let output = dir.path().join("layout.jpg");
    let run = watchpost(&[
        "camera",
        "draw",
        "gate",
        "--config",
        config.to_str().unwrap(),
        "--from-snapshot",
        snapshot.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let picture = watchpost::imaging::read_image(&output).unwrap();
    assert_layout_drawn(&picture);
    assert!(
        !near(&picture, 100, 250, 3, is_yellow),
        "inside the zone is not painted"
    );
    // The line runs down the screen at x = 512 (0.8 of 640), from y = 36 to y = 324: its Left
    // side is the screen's right. Two arrows cross it beside its middle (y = 180), about 25 px
    // each side: the first direction (`inbound`, Left to Right) above, going from the right
    // to the left, its label beyond its head on the left; the second (`outbound`) below,
    // going left to right, its label on the right. Labels are magenta blocks.
    let count = |rows: std::ops::RangeInclusive<usize>, columns: std::ops::Range<usize>| {
        rows.flat_map(|y| columns.clone().map(move |x| (x, y)))
            .filter(|&(x, y)| picture.pixel(x, y).is_some_and(is_magenta))
            .count()
    };
    let (upper, lower) = (150..=170, 190..=210);
    assert!(
        count(upper.clone(), 495..505) > 0 && count(upper.clone(), 520..530) > 0,
        "upper arrow"
    );
    assert!(
        count(lower.clone(), 495..505) > 0 && count(lower.clone(), 520..530) > 0,
        "lower arrow"
    );
    let (far_left, far_right) = (440..470, 556..600);
    assert!(
        count(upper.clone(), far_left.clone()) >= 20,
        "`inbound` label on the left"
    );
    assert!(
        count(upper, far_right.clone()) <= 2,
        "nothing on the right above"
    );
    assert!(
        count(lower.clone(), far_right) >= 20,
        "`outbound` label on the right"
    );
    assert!(count(lower, far_left) <= 2, "nothing on the left below");
}
