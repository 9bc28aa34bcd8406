//! End-to-end harness: N in-process cameras (the RTSP clip server) × fps through the real
//! GStreamer pipelines, frame path, model and MQTT publisher (embedded broker), measured from a
//! subscriber's side like the central system.
//!
//! ```sh
//! cargo bench --bench agent                       # 1 and 4 cameras, 20 s each
//! WATCHPOST_BENCH_CAMERAS=1,2,4,8 WATCHPOST_BENCH_SECONDS=30 WATCHPOST_BENCH_FPS=30 cargo bench --bench agent
//! ```
//!
//! Prints, per camera count: analysed frames/s (all cameras), the same as a ratio of the raw
//! model rate measured in the same run (one thread, and times the number of inference threads),
//! latency p50/p99 (frame arrival → publication, from the `detections` messages), process CPU
//! (cores), peak RSS, and drops by reason. CPU and RSS include the in-process RTSP server and
//! broker. The machines are shared and noisy: compare ratios, not times.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use watchpost::demo::clip_server::ClipServer;
use watchpost::demo::{DemoOptions, EmbeddedBroker, demo_config};
use watchpost::detect::{ClassFilter, Detector, DetectorOptions, Runtime};
use watchpost::health::ProcessSampler;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Milliseconds per inference, one thread, on a real frame.
fn raw_model_ms(root: &Path) -> f64 {
    let runtime = Runtime::load(None).expect("ONNX Runtime (run deploy/setup.sh)");
    let options = DetectorOptions {
        intra_threads: 1,
        class_filter: ClassFilter::CoarseClassesOnly,
    };
    let mut detector =
        Detector::load(&runtime, &root.join("models/nanodet-m-416.toml"), &options).expect("model");
    let frame = watchpost::imaging::read_image(&root.join("tests/data/frames/street-01.jpg"))
        .expect("frame");
    detector.detect(&frame.as_bgr()).unwrap();
    let n = 30;
    let start = Instant::now();
    for _ in 0..n {
        detector.run_model().unwrap();
    }
    start.elapsed().as_secs_f64() * 1e3 / f64::from(n)
}

fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

fn reset_peak_rss() {
    // Linux resets VmHWM to the current RSS on "5".
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[derive(Default)]
struct Observed {
    latencies_ms: Vec<f64>,
    /// Per health message: (seconds since start, sum of fps_analysed, sum of fps_in).
    health: Vec<(f64, f64, f64)>,
    last_health: Option<serde_json::Value>,
}

async fn observe(
    port: u16,
    observed: Arc<Mutex<Observed>>,
    started: Instant,
    shutdown: CancellationToken,
) {
    let options = rumqttc::MqttOptions::new("bench-observer", "127.0.0.1", port);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 16);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            event = eventloop.poll() => match event {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                    let _ = client.subscribe("watchpost/#", rumqttc::QoS::AtMostOnce).await;
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) else { continue };
                    let mut o = observed.lock().unwrap();
                    if p.topic.ends_with("/detections") {
                        if let Some(l) = v["latency_ms"].as_f64() {
                            o.latencies_ms.push(l);
                        }
                    } else if p.topic.ends_with("/health") {
                        let cameras = v["cameras"].as_array().cloned().unwrap_or_default();
                        let sum = |key: &str| cameras.iter().filter_map(|c| c[key].as_f64()).sum::<f64>();
                        o.health.push((started.elapsed().as_secs_f64(), sum("fps_analysed"), sum("fps_in")));
                        o.last_health = Some(v);
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            },
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn run_once(
    root: &Path,
    cameras: usize,
    detect_fps: f32,
    seconds: u64,
    threads: usize,
    raw_ms: f64,
) {
    let server =
        ClipServer::start(&root.join("tests/data/sample-clip.mp4"), 0).expect("RTSP server");
    let broker = EmbeddedBroker::start(0).expect("broker");
    let urls: Vec<String> = (0..cameras)
        .map(|i| server.url(&format!("cam{i}")))
        .collect();
    let options = DemoOptions {
        cameras,
        detect_fps,
        rtsp_port: 0,
        mqtt_port: 0,
        clip: None,
        inference_threads: threads,
    };
    let state = tempfile::tempdir().unwrap();
    let mut config = demo_config(&urls, &broker, &options, state.path());
    config.health.interval = Duration::from_secs(1);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let observed = Arc::new(Mutex::new(Observed::default()));
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let warmup = 4.0;
    reset_peak_rss();
    let mut sampler = ProcessSampler::new();
    let cpu = runtime.block_on(async {
        let observer = tokio::spawn(observe(
            broker.port(),
            Arc::clone(&observed),
            started,
            shutdown.clone(),
        ));
        let agent = tokio::spawn(watchpost::agent::run(config, shutdown.clone()));
        tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
        observed.lock().unwrap().latencies_ms.clear();
        sampler.sample();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let cpu = sampler.sample().map_or(f64::NAN, |s| s.cpu_cores);
        shutdown.cancel();
        let _ = agent.await;
        observer.abort();
        cpu
    });
    let peak_rss = peak_rss_bytes().unwrap_or(0);
    let o = observed.lock().unwrap();
    let steady: Vec<&(f64, f64, f64)> = o
        .health
        .iter()
        .filter(|(t, _, _)| *t > warmup + 1.0)
        .collect();
    let mean = |f: fn(&(f64, f64, f64)) -> f64| {
        steady.iter().map(|h| f(h)).sum::<f64>() / steady.len().max(1) as f64
    };
    let analysed_fps = mean(|h| h.1);
    let fps_in = mean(|h| h.2);
    let mut latencies = o.latencies_ms.clone();
    latencies.sort_by(f64::total_cmp);
    let raw_fps = 1e3 / raw_ms;
    let drops = o
        .last_health
        .as_ref()
        .map(|h| {
            let cams = h["cameras"].as_array().cloned().unwrap_or_default();
            [
                "rate_limit",
                "busy",
                "too_old",
                "publish_queue_full",
                "broker_down",
            ]
            .iter()
            .map(|r| {
                let n: u64 = cams
                    .iter()
                    .filter_map(|c| c["drops_total"][*r].as_u64())
                    .sum();
                format!("{r}={n}")
            })
            .collect::<Vec<_>>()
            .join(" ")
        })
        .unwrap_or_default();
    println!(
        "{cameras} camera(s) × {detect_fps} fps asked, {threads} inference thread(s), {seconds} s:\n  \
         frames in {fps_in:.1}/s, analysed {analysed_fps:.1}/s = {:.2} × raw model rate (1 thread), {:.2} × raw × threads\n  \
         latency p50 {:.0} ms, p99 {:.0} ms ({} messages); CPU {cpu:.2} cores; peak RSS {:.0} MiB\n  \
         drops since start: {drops}",
        analysed_fps / raw_fps,
        analysed_fps / (raw_fps * threads as f64),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len(),
        peak_rss as f64 / (1024.0 * 1024.0),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, so do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    watchpost::ingest::init_gstreamer().expect("GStreamer");
    let cameras: Vec<usize> = std::env::var("WATCHPOST_BENCH_CAMERAS")
        .unwrap_or_else(|_| "1,4".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let seconds = env_or("WATCHPOST_BENCH_SECONDS", 20u64);
    let detect_fps = env_or("WATCHPOST_BENCH_FPS", 30.0f32);
    let threads = env_or(
        "WATCHPOST_BENCH_THREADS",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let raw_ms = raw_model_ms(root);
    println!(
        "raw model: {raw_ms:.1} ms per inference = {:.1} frames/s on one thread (measured now)\n",
        1e3 / raw_ms
    );
    for n in cameras {
        run_once(root, n, detect_fps, seconds, threads, raw_ms);
    }
}
