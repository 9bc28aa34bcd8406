//! Camera ingest against a real RTSP server (the in-process `ClipServer` playing
//! `tests/data/sample-clip.mp4`): frames, capture clocks, looping, outages, unreachable
//! cameras, authentication, and the decoder choice.

mod common;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use common::camera::camera_config;
use common::wait_until;
use tokio_util::sync::CancellationToken;
use watchpost::config::{CameraConfig, DecoderChoice, RtspTransport, Secret};
use watchpost::demo::clip_server::ClipServer;
use watchpost::health::{CameraState, CameraStats};
use watchpost::ingest::{self, CaptureClock, CapturedFrame, FrameSink};

const CLIP_WIDTH: usize = 640;
const CLIP_HEIGHT: usize = 360;

fn init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "watchpost=info".into()),
        )
        .with_test_writer()
        .try_init();
    ingest::init_gstreamer().expect("GStreamer");
}

fn clip() -> std::path::PathBuf {
    common::repo_path("tests/data/sample-clip.mp4")
}

/// Keeps counts and the last frame only (bounded memory).
#[derive(Default)]
struct Collected {
    frames: u64,
    camera_clock: u64,
    agent_clock: u64,
    last_seq: Option<u64>,
    seq_always_increasing: bool,
    last: Option<CapturedFrame>,
    /// Largest |captured_at - wall clock at offer| over frames with the camera clock.
    max_camera_skew: Duration,
    /// Largest |captured_at - wall clock at offer| over frames with the agent clock.
    max_agent_skew: Duration,
    wrong_camera_index: bool,
}

struct CollectingSink {
    camera: usize,
    state: Mutex<Collected>,
}

impl CollectingSink {
    fn new(camera: usize) -> Arc<CollectingSink> {
        Arc::new(CollectingSink {
            camera,
            state: Mutex::new(Collected {
                seq_always_increasing: true,
                ..Collected::default()
            }),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&Collected) -> R) -> R {
        f(&self.state.lock().unwrap())
    }

    fn frames(&self) -> u64 {
        self.with(|c| c.frames)
    }
}

impl FrameSink for CollectingSink {
    fn offer(&self, frame: CapturedFrame) {
        let now = SystemTime::now();
        let skew = now
            .duration_since(frame.captured_at)
            .or_else(|e| Ok::<_, ()>(e.duration()))
            .unwrap_or_default();
        let mut c = self.state.lock().unwrap();
        c.frames += 1;
        match frame.clock {
            CaptureClock::Camera => {
                c.camera_clock += 1;
                c.max_camera_skew = c.max_camera_skew.max(skew);
            }
            CaptureClock::Agent => {
                c.agent_clock += 1;
                c.max_agent_skew = c.max_agent_skew.max(skew);
            }
        }
        if c.last_seq.is_some_and(|last| frame.seq <= last) {
            c.seq_always_increasing = false;
        }
        if frame.camera != self.camera {
            c.wrong_camera_index = true;
        }
        c.last_seq = Some(frame.seq);
        c.last = Some(frame);
    }
}

/// A running camera thread with its sink, stats and shutdown token.
struct RunningCamera {
    sink: Arc<CollectingSink>,
    stats: Arc<CameraStats>,
    shutdown: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl RunningCamera {
    fn start(index: usize, config: CameraConfig) -> RunningCamera {
        let sink = CollectingSink::new(index);
        let stats = Arc::new(CameraStats::new(config.name.clone()));
        let shutdown = CancellationToken::new();
        let thread =
            ingest::spawn_camera(index, config, sink.clone(), stats.clone(), shutdown.clone())
                .expect("spawn camera thread");
        RunningCamera {
            sink,
            stats,
            shutdown,
            thread: Some(thread),
        }
    }

    /// Cancels and joins; the time the join took.
    fn stop(&mut self) -> Duration {
        self.shutdown.cancel();
        let started = Instant::now();
        let thread = self.thread.take().expect("running");
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(thread.join().is_ok());
        });
        let joined_ok = done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the camera thread did not end within 30 s");
        assert!(joined_ok, "the camera thread panicked");
        started.elapsed()
    }
}

impl Drop for RunningCamera {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[test]
fn frames_arrive_with_capture_times_and_the_clip_loops() {
    init();
    let server = ClipServer::start(&clip(), 0).expect("clip server");
    let mut camera = RunningCamera::start(
        3,
        camera_config("gate", server.url("cam0"), Duration::from_secs(5)),
    );

    assert!(
        wait_until(Duration::from_secs(20), || camera.sink.frames() >= 10),
        "no frames within 20 s: {:?}",
        camera.stats.snapshot()
    );
    assert_eq!(camera.stats.state(), CameraState::Streaming);
    camera.sink.with(|c| {
        let last = c.last.as_ref().unwrap();
        assert_eq!(
            (last.frame.width, last.frame.height),
            (CLIP_WIDTH, CLIP_HEIGHT)
        );
        // The decoder's own format, not converted: I420 from libav.
        assert_eq!(last.frame.format, watchpost::imaging::YuvFormat::I420);
        let luma = last.frame.view().y;
        assert!(luma.stride >= CLIP_WIDTH);
        assert!(
            (0..CLIP_HEIGHT).any(|y| luma.data[y * luma.stride..][..CLIP_WIDTH]
                .iter()
                .any(|&b| b > 40)),
            "picture is all black"
        );
        assert!(c.seq_always_increasing);
        assert!(!c.wrong_camera_index);
        assert!(last.arrived.elapsed() < Duration::from_secs(5));
        // Before the first sender report frames carry the agent's clock: close to now.
        assert!(
            c.max_agent_skew < Duration::from_secs(1),
            "agent clock skew {:?}",
            c.max_agent_skew
        );
    });

    // rtsp-server sends an RTCP sender report every ~5 s: from then on the camera's clock.
    assert!(
        wait_until(Duration::from_secs(20), || camera
            .sink
            .with(|c| c.camera_clock >= 10)),
        "no frame with the camera clock within 20 s: {:?}",
        camera
            .sink
            .with(|c| (c.frames, c.camera_clock, c.agent_clock))
    );
    camera.sink.with(|c| {
        // Same host: the server's NTP time is our wall clock, minus the pipeline latency.
        assert!(
            c.max_camera_skew < Duration::from_secs(3),
            "camera clock skew {:?}",
            c.max_camera_skew
        );
        assert_eq!(c.last.as_ref().unwrap().clock, CaptureClock::Camera);
    });

    // The clip is 14 s long: 20 s of streaming cross the loop without a reconnect.
    let first_frames = camera.sink.frames();
    let since = Instant::now();
    assert!(
        wait_until(Duration::from_secs(60), || since.elapsed()
            >= Duration::from_secs(16)
            && camera.sink.frames() > first_frames + 300),
        "the stream did not go on past the end of the clip: {:?}",
        camera.stats.snapshot()
    );
    let counters = camera.stats.snapshot();
    assert_eq!(counters.reconnects, 0, "{counters:?}");
    assert_eq!(counters.errors, 0, "{counters:?}");
    assert_eq!(counters.state, CameraState::Streaming);
    assert!(camera.sink.with(|c| c.seq_always_increasing));
    assert_eq!(counters.frames_in, camera.sink.frames());

    let took = camera.stop();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert_eq!(camera.stats.state(), CameraState::Stopped);
}

#[test]
fn an_outage_is_detected_and_the_camera_reconnects() {
    init();
    let mut server = ClipServer::start(&clip(), 0).expect("clip server");
    let stall_timeout = Duration::from_secs(2);
    let mut camera =
        RunningCamera::start(0, camera_config("dock", server.url("/cam1"), stall_timeout));
    assert!(
        wait_until(Duration::from_secs(20), || camera.stats.state()
            == CameraState::Streaming
            && camera.sink.frames() >= 5),
        "not streaming: {:?}",
        camera.stats.snapshot()
    );

    server.stop();
    assert!(!server.is_running());
    let stopped_at = Instant::now();
    assert!(
        wait_until(stall_timeout + Duration::from_secs(2), || camera
            .stats
            .state()
            != CameraState::Streaming),
        "still streaming {:?} after the server stopped",
        stopped_at.elapsed()
    );
    assert!(
        wait_until(Duration::from_secs(10), || camera
            .stats
            .snapshot()
            .reconnects
            >= 1),
        "{:?}",
        camera.stats.snapshot()
    );
    let during_outage = camera.stats.snapshot();
    assert!(during_outage.errors >= 1, "{during_outage:?}");

    server.start_again().expect("listen again on the same port");
    let frames_before = camera.sink.frames();
    assert!(
        wait_until(Duration::from_secs(15), || camera.sink.frames()
            >= frames_before + 5
            && camera.stats.state() == CameraState::Streaming),
        "frames did not resume within 15 s: {:?}",
        camera.stats.snapshot()
    );
    assert!(camera.sink.with(|c| c.seq_always_increasing));
    let took = camera.stop();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
}

#[test]
fn a_closed_port_is_retried_without_leaking_the_password() {
    init();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = camera_config(
        "nowhere",
        format!("rtsp://127.0.0.1:{port}/stream"),
        Duration::from_secs(2),
    );
    config.username = Some("admin".to_owned());
    config.password = Some(Secret::new("hunter2-secret"));
    let mut camera = RunningCamera::start(0, config);

    assert!(
        wait_until(Duration::from_secs(15), || {
            let c = camera.stats.snapshot();
            c.errors >= 2 && c.reconnects >= 2 && c.state == CameraState::Retrying
        }),
        "{:?}",
        camera.stats.snapshot()
    );
    let counters = camera.stats.snapshot();
    let last_error = counters.last_error.unwrap();
    assert!(last_error.contains("nowhere"), "{last_error}");
    assert!(!last_error.contains("hunter2"), "{last_error}");
    assert_eq!(camera.sink.frames(), 0);

    let took = camera.stop();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert_eq!(camera.stats.state(), CameraState::Stopped);
}

#[test]
fn credentials_are_sent_as_properties() {
    init();
    let server = ClipServer::start(&clip(), 0)
        .expect("clip server")
        .with_auth("viewer", "s3cret-pw");

    let mut good = camera_config("good", server.url("cam0"), Duration::from_secs(5));
    good.username = Some("viewer".to_owned());
    good.password = Some(Secret::new("s3cret-pw"));
    let mut bad = camera_config("bad", server.url("cam1"), Duration::from_secs(5));
    bad.username = Some("viewer".to_owned());
    bad.password = Some(Secret::new("wrong-pw"));
    let mut good = RunningCamera::start(0, good);
    let mut bad = RunningCamera::start(1, bad);

    assert!(
        wait_until(Duration::from_secs(20), || good.sink.frames() >= 5),
        "the right password gave no frames: {:?}",
        good.stats.snapshot()
    );
    assert!(
        wait_until(Duration::from_secs(20), || bad.stats.snapshot().errors >= 1),
        "{:?}",
        bad.stats.snapshot()
    );
    let last_error = bad.stats.snapshot().last_error.unwrap();
    assert!(!last_error.contains("wrong-pw"), "{last_error}");
    // In the words `camera probe` uses, from GStreamer's error domain and code.
    assert!(
        last_error.contains("the camera refused the credentials (401 Unauthorized)"),
        "{last_error}"
    );
    assert_eq!(bad.sink.frames(), 0);
    good.stop();
    bad.stop();
}

#[test]
fn decoder_choice() {
    init();
    use watchpost::ingest::template::{bundled_templates, choose_template};
    let templates = bundled_templates().unwrap();
    let base = [
        "rtspsrc",
        "decodebin",
        "avdec_h264",
        "avdec_h265",
        "videoconvert",
        "appsink",
        "rtph264depay",
        "h264parse",
    ];
    let named = |n: &str| DecoderChoice::Named(n.to_owned());
    // (choice, extra elements in the registry, expected template or error text)
    let cases: [(DecoderChoice, &[&str], Result<&str, &str>); 6] = [
        (DecoderChoice::Auto, &[], Ok("software")),
        (DecoderChoice::Auto, &["v4l2h264dec"], Ok("v4l2")),
        (
            DecoderChoice::Auto,
            &["nvv4l2decoder", "nvvidconv", "v4l2h264dec"],
            Ok("nvv4l2"),
        ),
        (named("software"), &["mppvideodec"], Ok("software")),
        (named("mpp"), &[], Err("not installed: mppvideodec")),
        (named("gpu"), &[], Err("no decoder template named `gpu`")),
    ];
    for (choice, extra, expected) in cases {
        let got = choose_template(&choice, templates, |e| {
            base.contains(&e) || extra.contains(&e)
        });
        match expected {
            Ok(name) => assert_eq!(got.unwrap().template.name, name, "{choice:?}"),
            Err(text) => {
                let err = got.unwrap_err().to_string();
                assert!(err.contains(text), "{choice:?}: {err}");
            }
        }
    }

    // Against this machine's registry.
    let mut config = camera_config("x", "rtsp://127.0.0.1/x".to_owned(), Duration::from_secs(5));
    config.decoder = named("software");
    assert_eq!(
        ingest::choose_decoder(&config).unwrap().template.name,
        "software"
    );
    config.decoder = DecoderChoice::Auto;
    assert!(ingest::choose_decoder(&config).is_ok());
    if gstreamer::ElementFactory::find("nvv4l2decoder").is_none() {
        config.decoder = named("nvv4l2");
        let err = ingest::choose_decoder(&config).unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("nvv4l2decoder"), "{err}");
    }
}

#[test]
fn a_missing_decoder_stops_the_camera_with_its_reason() {
    init();
    let mut config = camera_config(
        "nodec",
        "rtsp://127.0.0.1:9/x".to_owned(),
        Duration::from_secs(5),
    );
    config.decoder = DecoderChoice::Named("no-such-template".to_owned());
    let mut camera = RunningCamera::start(0, config);
    assert!(wait_until(Duration::from_secs(10), || camera.stats.state()
        == CameraState::Stopped));
    let counters = camera.stats.snapshot();
    assert_eq!(counters.errors, 1);
    assert!(
        counters
            .last_error
            .unwrap()
            .contains("no decoder template named `no-such-template`")
    );
    camera.stop();
}

#[test]
fn udp_transport_works() {
    init();
    let server = ClipServer::start(&clip(), 0).expect("clip server");
    let mut config = camera_config("udp", server.url("cam2"), Duration::from_secs(5));
    config.transport = RtspTransport::Udp;
    let mut camera = RunningCamera::start(0, config);
    assert!(
        wait_until(Duration::from_secs(20), || camera.sink.frames() >= 10),
        "no frames over UDP within 20 s: {:?}",
        camera.stats.snapshot()
    );
    camera.sink.with(|c| {
        let last = c.last.as_ref().unwrap();
        assert_eq!(
            (last.frame.width, last.frame.height),
            (CLIP_WIDTH, CLIP_HEIGHT)
        );
    });
    camera.stop();
}

#[test]
fn a_server_that_never_answers_is_a_stall() {
    init();
    // Accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let mut camera = RunningCamera::start(
        0,
        camera_config(
            "mute",
            format!("rtsp://127.0.0.1:{port}/x"),
            Duration::from_secs(1),
        ),
    );
    // The first frame may take max(stall_timeout, FIRST_FRAME_MIN_WAIT).
    let limit = ingest::FIRST_FRAME_MIN_WAIT + Duration::from_secs(10);
    assert!(
        wait_until(limit, || camera.stats.snapshot().reconnects >= 1),
        "{:?}",
        camera.stats.snapshot()
    );
    let counters = camera.stats.snapshot();
    let last_error = counters.last_error.unwrap();
    assert!(last_error.contains("no frame for 10s"), "{last_error}");
    // Shutdown while rtspsrc waits for an answer that never comes.
    assert!(wait_until(Duration::from_secs(5), || camera.stats.state()
        == CameraState::Connecting));
    std::thread::sleep(Duration::from_millis(500));
    let took = camera.stop();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
}

#[test]
fn every_template_is_a_valid_pipeline_description() {
    init();
    use watchpost::ingest::template::{bundled_templates, fill_placeholders};
    let values = [
        ("latency_ms", "200".to_owned()),
        ("protocols", "tcp".to_owned()),
    ];
    for template in bundled_templates().unwrap() {
        let mut description = fill_placeholders(template, &values).unwrap();
        // Hardware decoders are not installed here: stand in `decodebin` for a missing decoder
        // and `videoconvert` for a missing converter, so that the syntax, caps and names of
        // every template are still checked.
        for element in &template.requires {
            if gstreamer::ElementFactory::find(element).is_none() {
                let stand_in = if element.contains("dec") {
                    "decodebin"
                } else {
                    "videoconvert"
                };
                description =
                    description.replace(&format!("! {element} "), &format!("! {stand_in} "));
            }
        }
        let pipeline = gstreamer::parse::launch(&description)
            .unwrap_or_else(|e| panic!("{}: {e}\n{description}", template.name));
        let bin = pipeline.downcast::<gstreamer::Bin>().expect("a pipeline");
        use gstreamer::prelude::*;
        let src = bin.by_name("src").expect("src");
        assert_eq!(
            src.factory().unwrap().name(),
            "rtspsrc",
            "{}",
            template.name
        );
        assert!(src.property::<bool>("add-reference-timestamp-meta"));
        let sink = bin.by_name("sink").expect("sink");
        assert_eq!(
            sink.factory().unwrap().name(),
            "appsink",
            "{}",
            template.name
        );
        assert_eq!(sink.property::<u32>("max-buffers"), 1);
        assert!(sink.property::<bool>("drop"));
        assert!(!sink.property::<bool>("sync"));
    }
}

#[test]
fn clip_server_ports_and_errors() {
    init();
    let missing = ClipServer::start(&common::repo_path("tests/data/no-such.mp4"), 0).unwrap_err();
    assert!(missing.to_string().contains("no-such.mp4"), "{missing}");
    let not_a_video =
        ClipServer::start(&common::repo_path("tests/data/frames/street-01.jpg"), 0).unwrap_err();
    assert!(
        not_a_video.to_string().contains("street-01.jpg"),
        "{not_a_video}"
    );

    // Two servers in one process, each on its own port and main context.
    let mut a = ClipServer::start(&clip(), 0).unwrap();
    let b = ClipServer::start(&clip(), 0).unwrap();
    assert_ne!(a.port(), b.port());
    assert_eq!(a.url("cam7"), format!("rtsp://127.0.0.1:{}/cam7", a.port()));
    assert_eq!(a.url("/cam7"), a.url("cam7"));
    // The port is taken while a server listens on it.
    let taken = ClipServer::start(&clip(), a.port()).unwrap_err();
    assert!(taken.to_string().contains(&a.port().to_string()), "{taken}");

    let port = a.port();
    a.stop();
    assert!(!a.is_running());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    a.start_again().unwrap();
    assert_eq!(a.port(), port);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());

    // An added mount plays too.
    a.add_mount("site/gate-north");
    let mut camera = RunningCamera::start(
        0,
        camera_config("north", a.url("site/gate-north"), Duration::from_secs(5)),
    );
    assert!(
        wait_until(Duration::from_secs(20), || camera.sink.frames() >= 5),
        "{:?}",
        camera.stats.snapshot()
    );
    camera.stop();
}

#[test]
fn the_software_template_hands_over_the_decoders_frames_unconverted() {
    init();
    use gstreamer::prelude::*;
    use watchpost::ingest::template::{SOFTWARE, bundled_templates, fill_placeholders};
    let server = ClipServer::start(&clip(), 0).expect("clip server");
    let template = bundled_templates()
        .unwrap()
        .iter()
        .find(|t| t.name == SOFTWARE)
        .unwrap();
    let values = [
        ("latency_ms", "200".to_owned()),
        ("protocols", "tcp".to_owned()),
    ];
    let description = fill_placeholders(template, &values).unwrap();
    let pipeline = gstreamer::parse::launch(&description)
        .unwrap()
        .downcast::<gstreamer::Pipeline>()
        .unwrap();
    let src = pipeline.by_name("src").unwrap();
    src.set_property("location", server.url("cam0"));
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gstreamer_app::AppSink>()
        .unwrap();
    pipeline.set_state(gstreamer::State::Playing).unwrap();
    let sample = sink.try_pull_sample(gstreamer::ClockTime::from_seconds(20));
    let converter = pipeline
        .iterate_recurse()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == "videoconvert"))
        .expect("the software template has a videoconvert");
    let caps = |pad: &str| {
        converter
            .static_pad(pad)
            .and_then(|p| p.current_caps())
            .map(|c| c.to_string())
    };
    let (input, output) = (caps("sink"), caps("src"));
    pipeline.set_state(gstreamer::State::Null).unwrap();
    assert!(sample.is_some(), "no frame within 20 s");
    // Same caps on both sides: videoconvert is in passthrough and converts nothing.
    assert!(input.is_some(), "no caps negotiated");
    assert_eq!(input, output);
    assert!(
        input.unwrap().contains("format=(string)I420"),
        "libav's own format"
    );
}
