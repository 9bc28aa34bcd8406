//! End-to-end harness: the real `watchpost run` binary, as a user runs it, against in-process
//! RTSP cameras (the clip server) and an embedded broker, measured from a subscriber's side like
//! the central system, and from `/proc` for the agent process alone. Next to it, in the same run:
//! the raw model, GStreamer decoding alone, and a Python script with OpenCV and onnxruntime
//! (what a user would otherwise write), on the same streams, one after the other.
//!
//! ```sh
//! cargo bench --bench agent                            # everything, about 9 minutes
//! WATCHPOST_BENCH_SECONDS=30 cargo bench --bench agent # longer windows
//! WATCHPOST_BENCH_ONLY=saturation,cpu,motion,startup,python,page cargo bench --bench agent
//! ```
//!
//! Prints, each as a ratio where one fits (these machines are shared and noisy: compare ratios,
//! not times):
//! - raw model: one thread, and all cores (one session per core in parallel, and one session
//!   with a thread per core; the better of the two is "the raw model rate on all cores");
//! - saturation: 1 camera at 60 fps and 4 cameras at 30 fps asking for every frame: analysed
//!   fps against the raw rate on all cores, latency p50/p99 against one inference + one frame
//!   interval, the agent's CPU and peak RSS; the Python script on the same streams;
//! - CPU per 1080p25 camera at `detect_fps = 5` (software decoding) against GStreamer decoding
//!   the same stream alone plus five inferences; 4 still cameras against 4 busy ones;
//! - how long after a still scene starts moving its first frame is analysed;
//! - start-up: from `watchpost run` to the first detection message;
//! - the technician's page (`page`, under 3 minutes): the agent's CPU on one 1080p25 camera at
//!   `detect_fps = 5` without a local endpoint, with one nobody watches (before and after the
//!   pages; against no endpoint), with the camera view open, with the overview open, and with
//!   only their `/status` polled, each polled as `page.js` polls it: the extra CPU against
//!   unwatched, per view and against one inference's CPU, views served per second against
//!   asked, the view latency against one inference, the detections' p99 latency.
//!
//! The raw model and saturation are measured for the bundled fp32 and int8 models side by side;
//! the other parts run the model the agent takes by default on this machine.
//!
//! Clips: the sample clip (640x360, 30 fps) as it is, and at double speed for 60 fps; 1080p25
//! busy and still clips are encoded from it once (x264) into `target/bench-clips/`.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use watchpost::demo::EmbeddedBroker;
use watchpost::demo::clip_server::ClipServer;
use watchpost::detect::{
    BUNDLED_FP32, BUNDLED_INT8, ClassFilter, CpuFeatures, Detector, DetectorOptions, Runtime,
    auto_model, find_bundled_manifest,
};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

// -- the raw model -----------------------------------------------------------------------------

/// The model alone, measured now.
struct RawModel {
    /// Milliseconds per inference on one thread.
    one_thread_ms: f64,
    /// CPU seconds one inference costs on one thread.
    cpu_s_per_inference: f64,
    /// Inferences per second: one single-thread session per core, in parallel.
    parallel_sessions_fps: f64,
    /// Inferences per second: one session with a thread per core.
    intra_threads_fps: f64,
}

impl RawModel {
    fn all_cores_fps(&self) -> f64 {
        self.parallel_sessions_fps.max(self.intra_threads_fps)
    }
}

fn detector(model: &str, threads: usize) -> Detector {
    let runtime = Runtime::load(None).expect("ONNX Runtime (run deploy/setup.sh)");
    let options = DetectorOptions {
        intra_threads: threads,
        class_filter: ClassFilter::CoarseClassesOnly,
    };
    let mut detector = Detector::load(
        &runtime,
        &find_bundled_manifest(model).expect("bundled model"),
        &options,
    )
    .expect("model");
    let frame = watchpost::imaging::read_image(&root().join("tests/data/frames/street-01.jpg"))
        .expect("frame");
    detector.detect(frame.as_bgr()).unwrap();
    detector
}

fn thread_cpu_s() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec for the calling thread's clock.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn raw_model(model: &'static str) -> RawModel {
    let mut one = detector(model, 1);
    let n = 40;
    for _ in 0..5 {
        one.run_model().unwrap();
    }
    let (start, cpu) = (Instant::now(), thread_cpu_s());
    for _ in 0..n {
        one.run_model().unwrap();
    }
    let one_thread_ms = start.elapsed().as_secs_f64() * 1e3 / f64::from(n);
    let cpu_s_per_inference = (thread_cpu_s() - cpu) / f64::from(n);
    drop(one);

    let seconds = 6.0;
    let parallel: Vec<_> = (0..cores())
        .map(|_| {
            std::thread::spawn(move || {
                let mut d = detector(model, 1);
                let start = Instant::now();
                let mut runs = 0u32;
                while start.elapsed().as_secs_f64() < seconds {
                    d.run_model().unwrap();
                    runs += 1;
                }
                f64::from(runs) / start.elapsed().as_secs_f64()
            })
        })
        .collect();
    let parallel_sessions_fps = parallel.into_iter().map(|h| h.join().unwrap()).sum();

    let mut wide = detector(model, cores());
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed().as_secs_f64() < seconds {
        wide.run_model().unwrap();
        runs += 1;
    }
    let intra_threads_fps = f64::from(runs) / start.elapsed().as_secs_f64();
    RawModel {
        one_thread_ms,
        cpu_s_per_inference,
        parallel_sessions_fps,
        intra_threads_fps,
    }
}

// -- processes -----------------------------------------------------------------------------------

fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as f64
}

/// User + system CPU seconds of process `pid` so far.
fn cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may contain spaces: fields are counted after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks_per_s())
}

/// Peak resident set of process `pid`, in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// CPU cores a process used over `window`, measured from `/proc`.
fn cores_used(pid: u32, window: Duration) -> Option<f64> {
    let before = cpu_s(pid)?;
    std::thread::sleep(window);
    Some((cpu_s(pid)? - before) / window.as_secs_f64())
}

fn stop(mut child: Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

// -- the central system's view -------------------------------------------------------------------

/// One detections message as received.
#[derive(Clone, Debug)]
struct Detection {
    camera: String,
    latency_ms: f64,
    captured_at: SystemTime,
    camera_clock: bool,
    received: Instant,
}

#[derive(Default)]
struct Seen {
    detections: Vec<Detection>,
    /// Per health message: (received, sum of fps_analysed, every camera idle).
    health: Vec<(Instant, f64, bool)>,
}

/// A subscriber to `watchpost/#` on its own thread.
struct Observer {
    seen: Arc<Mutex<Seen>>,
    client: rumqttc::Client,
    stopped: Arc<std::sync::atomic::AtomicBool>,
}

impl Observer {
    fn start(port: u16) -> Observer {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A client id of its own: an earlier observer must never be taken for this one.
        let options = rumqttc::MqttOptions::new(format!("bench-observer-{n}"), "127.0.0.1", port);
        let (client, mut connection) = rumqttc::Client::new(options, 64);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = Arc::clone(&seen);
        let subscriber = client.clone();
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = Arc::clone(&stopped);
        std::thread::spawn(move || {
            for event in connection.iter() {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let packet = match event {
                    Ok(rumqttc::Event::Incoming(packet)) => packet,
                    Ok(_) => continue,
                    Err(rumqttc::ConnectionError::RequestsDone) => return,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                };
                match packet {
                    rumqttc::Packet::ConnAck(_) => {
                        let _ = subscriber.subscribe("watchpost/#", rumqttc::QoS::AtMostOnce);
                    }
                    rumqttc::Packet::Publish(p) => {
                        let received = Instant::now();
                        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) else {
                            continue;
                        };
                        let mut seen = sink.lock().unwrap();
                        if p.topic.ends_with("/detections") {
                            let captured_at = v["captured_at"]
                                .as_str()
                                .and_then(|s| humantime::parse_rfc3339(s).ok())
                                .unwrap_or(SystemTime::UNIX_EPOCH);
                            seen.detections.push(Detection {
                                camera: v["camera"].as_str().unwrap_or_default().to_owned(),
                                latency_ms: v["latency_ms"].as_f64().unwrap_or(f64::NAN),
                                captured_at,
                                camera_clock: v["clock"] == "camera",
                                received,
                            });
                        } else if p.topic.ends_with("/health") {
                            let cameras = v["cameras"].as_array().cloned().unwrap_or_default();
                            let analysed = cameras
                                .iter()
                                .filter_map(|c| c["fps_analysed"].as_f64())
                                .sum();
                            let idle = !cameras.is_empty()
                                && cameras.iter().all(|c| c["activity"] == "idle");
                            seen.health.push((received, analysed, idle));
                        }
                    }
                    _ => {}
                }
            }
        });
        Observer {
            seen,
            client,
            stopped,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&Seen) -> R) -> R {
        f(&self.seen.lock().unwrap())
    }

    fn wait_until(&self, timeout: Duration, f: impl Fn(&Seen) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.with(&f) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.client.disconnect();
    }
}

fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

// -- the agent -----------------------------------------------------------------------------------

/// One camera of an agent run.
struct CameraSpec {
    url: String,
    detect_fps: f32,
}

/// A `watchpost run` child with its config and state in a temporary folder.
struct AgentRun {
    child: Child,
    _dir: tempfile::TempDir,
}

impl AgentRun {
    /// `local`: where its local endpoint (`/status`, the technician's page) listens; `None` for
    /// none.
    fn start(
        broker_port: u16,
        cameras: &[CameraSpec],
        threads: usize,
        model: &str,
        local: Option<SocketAddr>,
    ) -> AgentRun {
        let dir = tempfile::tempdir().unwrap();
        let listen = local.map(|a| a.to_string()).unwrap_or_default();
        let mut text = format!(
            "[device]\nsite = \"bench\"\nid = \"box\"\nstate_dir = \"{}\"\n\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{broker_port}\"\n\n\
             [detection]\nmodel = \"{model}\"\ninference_threads = {threads}\n\
             max_frame_age_ms = 1000\n\n\
             [health]\ninterval_s = 1\n\n[local]\nlisten = \"{listen}\"\n",
            dir.path().join("state").display()
        );
        for (i, camera) in cameras.iter().enumerate() {
            text.push_str(&format!(
                "\n[[cameras]]\nname = \"cam{i}\"\nurl = \"{}\"\ndetect_fps = {}\n",
                camera.url, camera.detect_fps
            ));
        }
        let config = dir.path().join("watchpost.toml");
        std::fs::write(&config, text).unwrap();
        let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .args(["run", "--log", "warn", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start watchpost run");
        AgentRun { child, _dir: dir }
    }

    /// One camera, `cam0` of `server`, at `detect_fps = 5`, on every core.
    fn one_camera(broker_port: u16, server: &ClipServer, model: &str) -> AgentRun {
        let camera = CameraSpec {
            url: server.url("cam0"),
            detect_fps: 5.0,
        };
        AgentRun::start(broker_port, &[camera], cores(), model, None)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(self) {
        stop(self.child);
    }
}

/// What one measured window of an agent run gave.
struct Window {
    /// When the window began and ended.
    from: Instant,
    until: Instant,
    /// CPU cores the harness itself (RTSP server, broker, subscriber: this process) used.
    harness_cores: f64,
    analysed_fps: f64,
    latency_p50: f64,
    latency_p99: f64,
    cpu_cores: f64,
    peak_rss: u64,
}

/// An agent run on `cameras`, watched by a subscriber, once every camera has given its first
/// result (or the health says frames are analysed, when the scene is still). `None` when
/// nothing came within 60 s.
fn start_agent(
    broker: &EmbeddedBroker,
    cameras: &[CameraSpec],
    model: &str,
    local: Option<SocketAddr>,
) -> Option<(Observer, AgentRun)> {
    let observer = Observer::start(broker.port());
    let agent = AgentRun::start(broker.port(), cameras, cores(), model, local);
    let n = cameras.len();
    let started = observer.wait_until(Duration::from_secs(60), |seen| {
        let cameras: std::collections::BTreeSet<&str> =
            seen.detections.iter().map(|d| d.camera.as_str()).collect();
        cameras.len() >= n || seen.health.iter().any(|h| h.1 > 0.0)
    });
    if !started {
        eprintln!("  the agent produced nothing within 60 s");
        agent.stop();
        return None;
    }
    Some((observer, agent))
}

/// Measures a running agent over `window`: its CPU from `/proc`, the harness's, and from what
/// `observer` received meanwhile, the analysed rate and latency.
fn measure_window(observer: &Observer, agent: &AgentRun, window: Duration) -> Window {
    let from = Instant::now();
    let harness_before = cpu_s(std::process::id());
    let cpu_cores = cores_used(agent.pid(), window).unwrap_or(f64::NAN);
    let until = Instant::now();
    let harness_cores = match (harness_before, cpu_s(std::process::id())) {
        (Some(before), Some(after)) => (after - before) / (until - from).as_secs_f64(),
        _ => f64::NAN,
    };
    let peak_rss = peak_rss(agent.pid()).unwrap_or(0);
    observer.with(|seen| {
        let latencies: Vec<f64> = seen
            .detections
            .iter()
            .filter(|d| d.received >= from && d.received <= until)
            .map(|d| d.latency_ms)
            .collect();
        let health: Vec<f64> = seen
            .health
            .iter()
            .filter(|h| h.0 > from + Duration::from_millis(1100) && h.0 <= until)
            .map(|h| h.1)
            .collect();
        Window {
            from,
            until,
            harness_cores,
            analysed_fps: health.iter().sum::<f64>() / health.len().max(1) as f64,
            latency_p50: percentile(&latencies, 0.5),
            latency_p99: percentile(&latencies, 0.99),
            cpu_cores,
            peak_rss,
        }
    })
}

/// Runs the agent on `cameras` (no local endpoint), waits for its first results, then `warmup`,
/// then measures `window`.
fn measure_agent(
    broker: &EmbeddedBroker,
    cameras: &[CameraSpec],
    model: &str,
    warmup: Duration,
    window: Duration,
) -> Option<Window> {
    let (observer, agent) = start_agent(broker, cameras, model, None)?;
    std::thread::sleep(warmup);
    let measured = measure_window(&observer, &agent, window);
    agent.stop();
    Some(measured)
}

// -- GStreamer alone and Python ------------------------------------------------------------------

/// CPU cores `gst-launch-1.0` uses decoding `url` (software, as the agent's template) alone.
fn gstreamer_decode_only(url: &str, warmup: Duration, window: Duration) -> Option<f64> {
    let child = Command::new("gst-launch-1.0")
        .args(["-q", "rtspsrc", &format!("location={url}")])
        .args([
            "protocols=tcp",
            "latency=200",
            "!",
            "rtph264depay",
            "!",
            "h264parse",
        ])
        .args(["!", "avdec_h264", "!", "fakesink", "sync=false"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(warmup);
    let used = cores_used(child.id(), window);
    stop(child);
    used
}

/// A venv under `target/` with the Python baseline's packages (pinned), made once.
fn python_venv() -> Result<PathBuf, String> {
    let venv = root().join("target/bench-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".ready-1");
    if ready.exists() {
        return Ok(python);
    }
    let run = |command: &mut Command| -> Result<(), String> {
        let output = command.output().map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("failed")
                .to_owned())
        }
    };
    eprintln!(
        "  (making {} with onnxruntime, OpenCV and numpy from PyPI, once)",
        venv.display()
    );
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "-q",
        "onnxruntime==1.31.1",
        "opencv-python-headless==4.12.0.88",
        "numpy==2.2.6",
    ]))?;
    std::fs::write(ready, "").map_err(|e| e.to_string())?;
    Ok(python)
}

struct PythonResult {
    analysed_fps: f64,
    latency_p50: f64,
    latency_p99: f64,
    cpu_cores: f64,
}

fn python_baseline(
    python: &Path,
    urls: &[String],
    warmup: Duration,
    window: Duration,
) -> Result<PythonResult, String> {
    let mut child = Command::new(python)
        .arg(root().join("benches/python_baseline.py"))
        .arg(root().join("models/nanodet-m-416.onnx"))
        .arg(window.as_secs_f64().to_string())
        .arg(warmup.as_secs_f64().to_string())
        .args(urls)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(warmup);
    let cpu_cores = cores_used(child.id(), window).unwrap_or(f64::NAN);
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let line = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with('{'))
        .ok_or("the script printed no result")?;
    let _ = child.wait();
    let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
    Ok(PythonResult {
        analysed_fps: v["analysed_fps"].as_f64().unwrap_or(f64::NAN),
        latency_p50: v["latency_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
        latency_p99: v["latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
        cpu_cores,
    })
}

// -- clips -----------------------------------------------------------------------------------------

/// The 1080p25 clips, encoded once from the sample clip: `(busy, still)`.
fn clips_1080p() -> Option<(PathBuf, PathBuf)> {
    let dir = root().join("target/bench-clips");
    std::fs::create_dir_all(&dir).ok()?;
    let sample = root().join("tests/data/sample-clip.mp4");
    let encode = "x264enc speed-preset=veryfast bitrate=4000 key-int-max=50 bframes=0 \
                  ! video/x-h264,profile=main ! h264parse ! mp4mux";
    let busy = dir.join("busy-1080p25.mp4");
    let still = dir.join("still-1080p25.mp4");
    let scale = "videoscale ! video/x-raw,width=1920,height=1080 ! videorate \
                 ! video/x-raw,framerate=25/1";
    let jobs = [
        (
            &busy,
            format!(
                "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! {scale} ! {encode}",
                sample.display()
            ),
        ),
        (
            &still,
            format!(
                "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! {scale} \
                 ! imagefreeze num-buffers=350 ! video/x-raw,framerate=25/1 ! {encode}",
                sample.display()
            ),
        ),
    ];
    for (path, pipeline) in jobs {
        if path.exists() {
            continue;
        }
        eprintln!("  (encoding {} once)", path.display());
        let tmp = path.with_extension("part");
        let status = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(pipeline.split_whitespace())
            .args(["!", "filesink", &format!("location={}", tmp.display())])
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
        std::fs::rename(&tmp, path).ok()?;
    }
    Some((busy, still))
}

// -- the measurements ----------------------------------------------------------------------------

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

struct Context {
    broker: EmbeddedBroker,
    /// The model `auto` takes on this machine (what a box runs by default).
    model: &'static str,
    window: Duration,
    python: Option<Result<PathBuf, String>>,
}

fn saturation(context: &Context) {
    let sample = root().join("tests/data/sample-clip.mp4");
    let cases = [
        // 60 fps is the most a camera may ask (`detect_fps` <= 60): enough to saturate the fp32
        // model on two cores, not the int8 one, which then analyses every frame.
        ("1 camera at 60 fps", 1usize, 2.0f64),
        ("4 cameras at 30 fps", 4, 1.0),
    ];
    let mut rows = Vec::new();
    for (name, n, speed) in cases {
        let server = ClipServer::start(&sample, 0)
            .expect("RTSP server")
            .with_speed(speed);
        let fps = (30.0 * speed) as f32;
        let urls: Vec<String> = (0..n).map(|i| server.url(&format!("cam{i}"))).collect();
        let cameras: Vec<CameraSpec> = urls
            .iter()
            .map(|url| CameraSpec {
                url: url.clone(),
                detect_fps: fps,
            })
            .collect();
        let frame_ms = 1e3 / f64::from(fps);
        let offered = n as f64 * f64::from(fps);
        println!("{name}, every frame asked, {} inference threads:", cores());
        let mut analysed = Vec::new();
        let mut raw_all = f64::NAN;
        for model in [BUNDLED_FP32, BUNDLED_INT8] {
            // The raw model again, just before: the machine's speed drifts over a run.
            let raw = raw_model(model);
            let (model_all, inference) = (raw.all_cores_fps(), raw.one_thread_ms);
            if model == BUNDLED_FP32 {
                raw_all = model_all;
            }
            let Some(agent) = measure_agent(
                &context.broker,
                &cameras,
                model,
                Duration::from_secs(4),
                context.window,
            ) else {
                continue;
            };
            let latency_goal = 1.5 * inference + frame_ms;
            println!(
                "  {model} (raw model just before: one thread {inference:.1} ms, all cores \
                 {model_all:.1}/s; the cameras offer {offered:.0}/s): analysed {:.1}/s = {:.2} × \
                 its raw rate on all cores; \
                 latency p50 {:.0} ms, p99 {:.0} ms = {:.2} × (1.5 × one inference + one frame \
                 interval = {latency_goal:.0} ms); CPU {:.2} cores (the harness's RTSP server \
                 and broker {:.2} more); peak RSS {:.0} MiB",
                agent.analysed_fps,
                agent.analysed_fps / model_all,
                agent.latency_p50,
                agent.latency_p99,
                agent.latency_p99 / latency_goal,
                agent.cpu_cores,
                agent.harness_cores,
                mib(agent.peak_rss),
            );
            analysed.push((model, agent));
        }
        if let [(_, fp32), (_, int8)] = analysed.as_slice() {
            println!(
                "  int8 / fp32: {:.2} × the analysed frames, p99 latency {:.2} ×",
                int8.analysed_fps / fp32.analysed_fps,
                int8.latency_p99 / fp32.latency_p99
            );
        }
        let Some((_, agent)) = analysed.pop() else {
            continue;
        };
        let mut python_fps = None;
        match &context.python {
            Some(Ok(python)) => {
                match python_baseline(python, &urls, Duration::from_secs(4), context.window) {
                    Ok(p) => {
                        println!(
                            "  Python (OpenCV + onnxruntime, fp32): analysed {:.1}/s = {:.2} × \
                             the fp32 raw rate; latency p50 {:.0} ms, p99 {:.0} ms; CPU {:.2} \
                             cores; watchpost (int8) analyses {:.2} × as many",
                            p.analysed_fps,
                            p.analysed_fps / raw_all,
                            p.latency_p50,
                            p.latency_p99,
                            p.cpu_cores,
                            agent.analysed_fps / p.analysed_fps,
                        );
                        python_fps = Some(p.analysed_fps);
                    }
                    Err(e) => println!("  Python baseline failed: {e}"),
                }
            }
            Some(Err(e)) => println!("  Python baseline skipped: {e}"),
            None => {}
        }
        rows.push((name, agent, python_fps));
    }
    if let Some((_, four, _)) = rows.iter().find(|(name, _, _)| name.starts_with('4')) {
        println!(
            "  peak RSS of the agent at 4 cameras: {:.0} MiB\n",
            mib(four.peak_rss)
        );
    }
}

fn cpu_per_camera(context: &Context) {
    let Some((busy, still)) = clips_1080p() else {
        println!("CPU per 1080p25 camera: the clips could not be encoded (x264enc missing?)\n");
        return;
    };
    let busy_server = ClipServer::start(&busy, 0).expect("RTSP server (busy)");
    let still_server = ClipServer::start(&still, 0).expect("RTSP server (still)");
    let warmup = Duration::from_secs(8);
    let decode = gstreamer_decode_only(
        &busy_server.url("cam0"),
        Duration::from_secs(4),
        context.window,
    );
    // The raw model again, just before: the machine's speed drifts over a run.
    let inference_cores = 5.0 * raw_model(context.model).cpu_s_per_inference;
    let one = |server: &ClipServer, n: usize| -> Option<Window> {
        let cameras: Vec<CameraSpec> = (0..n)
            .map(|i| CameraSpec {
                url: server.url(&format!("cam{i}")),
                detect_fps: 5.0,
            })
            .collect();
        measure_agent(
            &context.broker,
            &cameras,
            context.model,
            warmup,
            context.window,
        )
    };
    let busy_one = one(&busy_server, 1);
    println!(
        "CPU per 1080p25 camera, detect_fps 5, software decoding, {}:",
        context.model
    );
    if let (Some(decode), Some(agent)) = (decode, &busy_one) {
        let reference = decode + inference_cores;
        println!(
            "  GStreamer decoding alone {decode:.3} cores + 5 inferences {inference_cores:.3} \
             cores = {reference:.3}; watchpost {:.3} cores = {:.2} × that",
            agent.cpu_cores,
            agent.cpu_cores / reference
        );
    }
    let four_busy = one(&busy_server, 4);
    let four_still = one(&still_server, 4);
    if let (Some(b), Some(s)) = (&four_busy, &four_still) {
        println!(
            "  4 busy cameras {:.3} cores ({:.3} per camera), 4 still {:.3} cores: still = {:.2} × \
             busy; peak RSS {:.0} MiB busy, {:.0} MiB still\n",
            b.cpu_cores,
            b.cpu_cores / 4.0,
            s.cpu_cores,
            s.cpu_cores / b.cpu_cores,
            mib(b.peak_rss),
            mib(s.peak_rss),
        );
    }
}

/// How long after a still scene starts to move the first analysed frame was captured: three
/// times, each a fresh agent on a camera frozen on the clip's first picture, which idles, then
/// plays on.
fn motion_reaction(context: &Context) {
    let server =
        ClipServer::start(&root().join("tests/data/sample-clip.mp4"), 0).expect("RTSP server");
    let mut reactions = Vec::new();
    for _ in 0..3 {
        server.set_frozen(true);
        let observer = Observer::start(context.broker.port());
        let agent = AgentRun::one_camera(context.broker.port(), &server, context.model);
        let idle = observer.wait_until(Duration::from_secs(40), |s| s.health.iter().any(|h| h.2));
        if idle {
            // Past the camera's first RTCP sender report, so capture times are its clock.
            std::thread::sleep(Duration::from_secs(3));
            let moved_at = SystemTime::now();
            server.set_frozen(false);
            let after = |s: &Seen| {
                s.detections
                    .iter()
                    .filter(|d| d.camera_clock && d.captured_at >= moved_at)
                    .map(|d| d.captured_at)
                    .min()
            };
            if observer.wait_until(Duration::from_secs(5), |s| after(s).is_some())
                && let Some(at) = observer.with(after)
            {
                reactions.push(at.duration_since(moved_at).unwrap_or_default());
            }
        }
        agent.stop();
    }
    let ms: Vec<String> = reactions
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
        .collect();
    println!(
        "Motion: a still scene starts moving, detect_fps 5 (one interval: 200 ms): the first frame \
         analysed was captured {} ms after the change (the clip server had up to 4 frames, \
         133 ms, queued before it)\n",
        ms.join(", ")
    );
}

/// From `watchpost run` to the first detection message, with a camera already streaming: the
/// model load and session creation, GStreamer, the RTSP connection and the first frame. Three
/// times per model, alternating.
fn startup(context: &Context) {
    let server =
        ClipServer::start(&root().join("tests/data/sample-clip.mp4"), 0).expect("RTSP server");
    let mut times: Vec<(&str, Vec<f64>)> =
        vec![(BUNDLED_FP32, Vec::new()), (BUNDLED_INT8, Vec::new())];
    for _ in 0..3 {
        for (model, seconds) in &mut times {
            let observer = Observer::start(context.broker.port());
            let start = Instant::now();
            let agent = AgentRun::one_camera(context.broker.port(), &server, model);
            if observer.wait_until(Duration::from_secs(30), |s| !s.detections.is_empty()) {
                seconds.push(start.elapsed().as_secs_f64());
            }
            agent.stop();
        }
    }
    for (model, seconds) in &times {
        let ms: Vec<String> = seconds.iter().map(|s| format!("{:.0}", s * 1e3)).collect();
        println!(
            "Start-up, {model}: `watchpost run` to the first detection message: {} ms",
            ms.join(", ")
        );
    }
    println!();
}

// -- the technician's page -----------------------------------------------------------------------

/// What a page polls, as `page.js` does: `GET path`, then a pause of `every` (at least a second
/// after an error), again and again.
struct Poll {
    path: String,
    every: Duration,
}

/// One answer a page got.
struct Fetched {
    /// Which of the page's polls asked.
    poll: usize,
    sent: Instant,
    took: Duration,
    /// The size of the answer's JPEG picture; `None` when it had none or failed.
    jpeg_bytes: Option<usize>,
}

impl Fetched {
    fn answered(&self) -> Instant {
        self.sent + self.took
    }
}

/// The bytes of the JPEG in a view's `picture` (a `data:` URL in base64).
fn picture_bytes(view: &str) -> Option<usize> {
    let view: serde_json::Value = serde_json::from_str(view).ok()?;
    let base64 = view["picture"]
        .as_str()?
        .strip_prefix("data:image/jpeg;base64,")?;
    Some(base64.len() / 4 * 3)
}

/// A page open in a browser: each of its polls on its own thread, like `page.js`'s loops, through
/// the library's own client (the one `watchpost status` uses).
struct Page {
    stopped: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<Fetched>>>,
}

impl Page {
    fn open(addr: SocketAddr, polls: Vec<Poll>) -> Page {
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = polls
            .into_iter()
            .enumerate()
            .map(|(poll, Poll { path, every })| {
                let stopped = Arc::clone(&stopped);
                std::thread::spawn(move || {
                    let is_stopped = || stopped.load(std::sync::atomic::Ordering::Relaxed);
                    let mut fetched = Vec::new();
                    while !is_stopped() {
                        let sent = Instant::now();
                        let answer =
                            watchpost::local::client::get(addr, &path, Duration::from_secs(10));
                        fetched.push(Fetched {
                            poll,
                            sent,
                            took: sent.elapsed(),
                            jpeg_bytes: answer.as_deref().ok().and_then(picture_bytes),
                        });
                        let pause = if answer.is_ok() {
                            every
                        } else {
                            every.max(Duration::from_secs(1))
                        };
                        let until = Instant::now() + pause;
                        while Instant::now() < until && !is_stopped() {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    fetched
                })
            })
            .collect();
        Page { stopped, threads }
    }

    fn close(self) -> Vec<Fetched> {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect()
    }
}

/// Measures `agent` over `window` while `polls` are made of its endpoint at `addr` (from a
/// second before the window to its end): the window and the answers to the first poll (the
/// views) sent within it.
fn watched(
    observer: &Observer,
    agent: &AgentRun,
    addr: SocketAddr,
    polls: Vec<Poll>,
    window: Duration,
) -> (Window, Vec<Fetched>) {
    let page = Page::open(addr, polls);
    std::thread::sleep(Duration::from_secs(1));
    let measured = measure_window(observer, agent, window);
    let views = page
        .close()
        .into_iter()
        .filter(|f| f.poll == 0 && f.sent >= measured.from && f.answered() <= measured.until)
        .collect();
    (measured, views)
}

/// One watched condition against the unwatched agent (its CPU and detections' p99 latency), per
/// view and against the raw model.
fn print_watched(
    what: &str,
    (window, views): &(Window, Vec<Fetched>),
    unwatched: (f64, f64),
    raw: &RawModel,
) {
    let (unwatched_cores, unwatched_p99) = unwatched;
    let seconds = (window.until - window.from).as_secs_f64();
    let served: Vec<usize> = views.iter().filter_map(|f| f.jpeg_bytes).collect();
    let extra = window.cpu_cores - unwatched_cores;
    let cpu = format!(
        "{:.3} cores = {extra:+.3} = {:+.2} × unwatched; detections p99 {:.0} ms (unwatched \
         {unwatched_p99:.0})",
        window.cpu_cores,
        extra / unwatched_cores,
        window.latency_p99,
    );
    if served.is_empty() {
        println!("  {what}: {cpu}");
        return;
    }
    let cpu_ms_per_view = extra * seconds * 1e3 / served.len() as f64;
    let latencies: Vec<f64> = views.iter().map(|f| f.took.as_secs_f64() * 1e3).collect();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "  {what}: {cpu}; {:.1} views/s served of {:.1} asked (the camera analyses {:.1}/s), \
         {:.0} KiB of JPEG each; {cpu_ms_per_view:.1} ms of CPU per view = {:.2} × one \
         inference's CPU; view latency p50 {p50:.0} ms, p99 {p99:.0} ms = {:.1} ×, {:.1} × one \
         inference",
        served.len() as f64 / seconds,
        views.len() as f64 / seconds,
        window.analysed_fps,
        served.iter().sum::<usize>() as f64 / served.len() as f64 / 1024.0,
        cpu_ms_per_view / (raw.cpu_s_per_inference * 1e3),
        p50 / raw.one_thread_ms,
        p99 / raw.one_thread_ms,
    );
}

/// The technician's page's CPU cost: one busy 1080p25 camera at `detect_fps = 5`, the agent
/// without a local endpoint, then with one: nobody watching, the camera view open, the overview
/// open, only the pages' figures (`/status`) polled, nobody watching again.
fn page_cost(context: &Context) {
    let Some((busy, _)) = clips_1080p() else {
        println!("Technician's page: the clips could not be encoded (x264enc missing?)\n");
        return;
    };
    let started = Instant::now();
    let server = ClipServer::start(&busy, 0).expect("RTSP server");
    let cameras = [CameraSpec {
        url: server.url("cam0"),
        detect_fps: 5.0,
    }];
    let warmup = Duration::from_secs(8);
    // The raw model again, just before: the machine's speed drifts over a run.
    let raw = raw_model(context.model);
    println!(
        "Technician's page, 1 camera 1080p25 at detect_fps 5, {} (raw model just before: one \
         inference {:.1} ms, {:.1} ms of CPU):",
        context.model,
        raw.one_thread_ms,
        raw.cpu_s_per_inference * 1e3
    );
    let without = measure_agent(
        &context.broker,
        &cameras,
        context.model,
        warmup,
        context.window,
    );
    // A free loopback port: bound, then left for the agent.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port");
    let Some((observer, agent)) = start_agent(&context.broker, &cameras, context.model, Some(addr))
    else {
        return;
    };
    std::thread::sleep(warmup);
    if let Err(e) = watchpost::local::client::get(addr, "/status", Duration::from_secs(5)) {
        println!("  the local endpoint does not answer: {e}\n");
        agent.stop();
        return;
    }
    let view = |width: u32, every: Duration| Poll {
        path: format!("/api/cameras/cam0/view?width={width}"),
        every,
    };
    let figures = || Poll {
        path: "/status".to_owned(),
        every: Duration::from_secs(1),
    };
    let unwatched = measure_window(&observer, &agent, context.window);
    // page.js, camera view: the next view as soon as one is drawn; the figures every second.
    let camera_page = watched(
        &observer,
        &agent,
        addr,
        vec![view(1280, Duration::ZERO), figures()],
        context.window,
    );
    // page.js, overview: a 320-wide thumbnail of each camera then a second's pause; the figures
    // every second, the agent's facts every 10 s.
    let agent_facts = Poll {
        path: "/api/agent".to_owned(),
        every: Duration::from_secs(10),
    };
    let overview = watched(
        &observer,
        &agent,
        addr,
        vec![view(320, Duration::from_secs(1)), figures(), agent_facts],
        context.window,
    );
    // Both pages' figures alone: what the views cost apart from them.
    let figures_only = watched(&observer, &agent, addr, vec![figures()], context.window);
    let unwatched_after = measure_window(&observer, &agent, context.window);
    agent.stop();

    let base = (
        (unwatched.cpu_cores + unwatched_after.cpu_cores) / 2.0,
        unwatched.latency_p99.max(unwatched_after.latency_p99),
    );
    match &without {
        Some(w) => println!(
            "  no local endpoint: {:.3} cores; endpoint on, nobody watching: {:.3} before and \
             {:.3} after the pages = {:.2} × without an endpoint",
            w.cpu_cores,
            unwatched.cpu_cores,
            unwatched_after.cpu_cores,
            base.0 / w.cpu_cores
        ),
        None => println!(
            "  endpoint on, nobody watching: {:.3} before and {:.3} after the pages (the run \
             without an endpoint failed)",
            unwatched.cpu_cores, unwatched_after.cpu_cores
        ),
    }
    print_watched(
        "camera view (page.js: views of width 1280 back to back, /status every second)",
        &camera_page,
        base,
        &raw,
    );
    print_watched(
        "overview (page.js: a 320-wide thumbnail then 1 s, /status every second, /api/agent \
         every 10 s)",
        &overview,
        base,
        &raw,
    );
    print_watched("/status every second alone", &figures_only, base, &raw);
    println!(
        "  (the section took {:.0} s)\n",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, so do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    watchpost::ingest::init_gstreamer().expect("GStreamer");
    let only: Option<Vec<String>> = std::env::var("WATCHPOST_BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    let wants = |part: &str| only.as_ref().is_none_or(|o| o.iter().any(|p| p == part));
    let window = Duration::from_secs(env_or("WATCHPOST_BENCH_SECONDS", 20u64));

    let mut one_thread = Vec::new();
    for model in [BUNDLED_FP32, BUNDLED_INT8] {
        let raw = raw_model(model);
        println!(
            "raw model {model} (measured now): one thread {:.1} ms = {:.1} inferences/s ({:.1} \
             ms of CPU each); all {} cores: {:.1}/s as one session per core, {:.1}/s as one \
             session with {} threads",
            raw.one_thread_ms,
            1e3 / raw.one_thread_ms,
            raw.cpu_s_per_inference * 1e3,
            cores(),
            raw.parallel_sessions_fps,
            raw.intra_threads_fps,
            cores(),
        );
        one_thread.push(raw);
    }
    println!(
        "  int8 / fp32 speed: {:.2} × on one thread, {:.2} × on all cores\n",
        one_thread[0].one_thread_ms / one_thread[1].one_thread_ms,
        one_thread[1].all_cores_fps() / one_thread[0].all_cores_fps()
    );
    let (model, why) = auto_model(&CpuFeatures::detect());
    println!("the agent's default here: {model} ({why})\n");
    let broker = EmbeddedBroker::start(0).expect("broker");
    let python = wants("python").then(python_venv);
    let context = Context {
        broker,
        model,
        window,
        python,
    };
    if wants("saturation") {
        saturation(&context);
    }
    if wants("cpu") {
        cpu_per_camera(&context);
    }
    if wants("motion") {
        motion_reaction(&context);
    }
    if wants("startup") {
        startup(&context);
    }
    if wants("page") {
        page_cost(&context);
    }
}
