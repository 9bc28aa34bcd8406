//! Soak: does the agent stay flat over hours of cameras and a broker coming and going?
//!
//! Runs the real `watchpost run` binary for a given time against N cameras served by the
//! in-process RTSP clip server (the sample clip, 640×360 at 30 fps) and a real mosquitto on a
//! free loopback port. On a schedule, one camera's RTSP server is stopped (every client cut) and
//! started again on the same port, and the broker is stopped and started again. Every sample
//! period it reads the agent's resident memory, open descriptors and threads from `/proc`, prints
//! one line, and at the end prints the growth after the warm-up. Not part of CI.
//!
//! ```sh
//! cargo bench --bench soak                         # 60 minutes, the issue's scenario
//! WATCHPOST_SOAK_MINUTES=8 WATCHPOST_SOAK_FLAP_S=10 WATCHPOST_SOAK_WARMUP_S=60 \
//!   WATCHPOST_SOAK_SAMPLE_S=15 cargo bench --bench soak   # a quick look at per-reconnect growth
//! ```
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `WATCHPOST_SOAK_MINUTES` | 60 | how long the agent runs |
//! | `WATCHPOST_SOAK_CAMERAS` | 4 | cameras (30 fps each) |
//! | `WATCHPOST_SOAK_DETECT_FPS` | 5 | `detect_fps` of every camera |
//! | `WATCHPOST_SOAK_FLAP_S` | 60 | the first camera's server is stopped this often (0: never) |
//! | `WATCHPOST_SOAK_DOWN_S` | 5 | and stays down this long |
//! | `WATCHPOST_SOAK_BROKER_S` | 600 | the broker is restarted this often (0: never), down 3 s |
//! | `WATCHPOST_SOAK_SAMPLE_S` | 60 | `/proc` is read this often |
//! | `WATCHPOST_SOAK_WARMUP_S` | 300 | growth is counted from the first sample after this |
//!
//! The agent inherits the environment, so allocator experiments need no rebuild: the agent sets
//! malloc itself (`health::keep_memory_flat`: a fixed mmap threshold, two arenas) unless the
//! environment does (`MALLOC_ARENA_MAX=16 cargo bench --bench soak` gives back glibc's arena
//! count on 2 cores).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::agent::{Agent, AgentSetup, clip_server};
use common::mosquitto::Mosquitto;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One reading of the agent's `/proc`.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    rss_anon_kib: u64,
    fds: usize,
    threads: usize,
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn sample(pid: u32, at: Duration) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let count = |dir: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{dir}"))
            .map(|d| d.count())
            .ok()
    };
    Some(Sample {
        at,
        rss_kib: status_kib(&status, "VmRSS:")?,
        rss_anon_kib: status_kib(&status, "RssAnon:")?,
        fds: count("fd")?,
        threads: count("task")?,
    })
}

/// The malloc settings the environment gives the agent (which then leaves its own aside).
fn malloc_environment() -> String {
    let set: Vec<String> = [
        "MALLOC_ARENA_MAX",
        "MALLOC_MMAP_THRESHOLD_",
        "GLIBC_TUNABLES",
    ]
    .iter()
    .filter_map(|name| Some(format!("{name}={}", std::env::var(name).ok()?)))
    .collect();
    if set.is_empty() {
        "none (the agent's own)".to_owned()
    } else {
        set.join(" ")
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Least-squares slope of RSS over time, in MiB per hour.
fn slope_mib_per_hour(samples: &[Sample]) -> f64 {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return f64::NAN;
    }
    let xs: Vec<f64> = samples
        .iter()
        .map(|s| s.at.as_secs_f64() / 3600.0)
        .collect();
    let ys: Vec<f64> = samples.iter().map(|s| mib(s.rss_kib)).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

fn main() {
    let minutes: f64 = env_or("WATCHPOST_SOAK_MINUTES", 60.0);
    let n_cameras: usize = env_or("WATCHPOST_SOAK_CAMERAS", 4).max(1);
    let detect_fps: f32 = env_or("WATCHPOST_SOAK_DETECT_FPS", 5.0);
    let flap = Duration::from_secs(env_or("WATCHPOST_SOAK_FLAP_S", 60));
    let down = Duration::from_secs(env_or("WATCHPOST_SOAK_DOWN_S", 5));
    let broker_every = Duration::from_secs(env_or("WATCHPOST_SOAK_BROKER_S", 600));
    let sample_every = Duration::from_secs(env_or("WATCHPOST_SOAK_SAMPLE_S", 60).max(1));
    let warmup = Duration::from_secs(env_or("WATCHPOST_SOAK_WARMUP_S", 300));
    let total = Duration::from_secs_f64(minutes * 60.0);

    // The flapping camera has a server of its own, so stopping it cuts no other camera.
    let mut flapping = clip_server();
    let steady = clip_server();
    let mut urls = vec![flapping.url("cam0")];
    urls.extend((1..n_cameras).map(|i| steady.url(&format!("cam{i}"))));
    let mut broker = Mosquitto::start();
    let setup = AgentSetup {
        cameras: urls,
        detect_fps,
        inference_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        stall_timeout_s: 5,
        camera_extra: String::new(),
        mqtt_extra: String::new(),
        tables: String::new(),
        log: "warn",
        env: Vec::new(),
    };
    let mut agent = Agent::start(&broker, &setup);
    let pid = agent.child.id();
    eprintln!(
        "soak: {minutes} min, {n_cameras} cameras at 30 fps, detect_fps {detect_fps}, camera 0 \
         down {down:?} every {flap:?}, broker restarted every {broker_every:?}, samples every \
         {sample_every:?}, warm-up {warmup:?}, malloc from the environment: {}; agent pid \
         {pid}, log in {}",
        malloc_environment(),
        agent.dir.path().display()
    );
    eprintln!("  minute   RSS MiB  anon MiB   fds  threads  flaps  broker restarts");

    let start = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let (mut next_sample, mut next_flap, mut next_broker) = (
        Duration::ZERO,
        flap.max(Duration::from_secs(1)),
        broker_every,
    );
    let (mut flaps, mut broker_restarts) = (0u32, 0u32);
    let mut flapping_back_at: Option<Duration> = None;
    let mut broker_back_at: Option<Duration> = None;
    while start.elapsed() < total {
        let now = start.elapsed();
        if let Some(status) = agent.child.try_wait().expect("wait for the agent") {
            panic!(
                "the agent exited ({status}) after {now:?}\n--- agent log ---\n{}",
                agent.log()
            );
        }
        if now >= next_sample {
            if let Some(s) = sample(pid, now) {
                eprintln!(
                    "  {:6.1}  {:8.1}  {:8.1}  {:4}  {:7}  {flaps:5}  {broker_restarts:15}",
                    now.as_secs_f64() / 60.0,
                    mib(s.rss_kib),
                    mib(s.rss_anon_kib),
                    s.fds,
                    s.threads
                );
                samples.push(s);
            }
            next_sample += sample_every;
        }
        if !flap.is_zero() && now >= next_flap {
            flapping.stop();
            flaps += 1;
            flapping_back_at = Some(now + down);
            next_flap += flap;
        }
        if flapping_back_at.is_some_and(|t| now >= t) {
            flapping
                .start_again()
                .expect("the RTSP server listens again");
            flapping_back_at = None;
        }
        if !broker_every.is_zero() && now >= next_broker {
            broker.stop();
            broker_restarts += 1;
            broker_back_at = Some(now + Duration::from_secs(3));
            next_broker += broker_every;
        }
        if broker_back_at.is_some_and(|t| now >= t) {
            broker.start_again();
            broker_back_at = None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(s) = sample(pid, start.elapsed()) {
        samples.push(s);
    }
    agent.signal(libc::SIGTERM);
    let _ = agent.wait(Duration::from_secs(20));
    report(&samples, warmup, flaps, broker_restarts);
}

fn report(samples: &[Sample], warmup: Duration, flaps: u32, broker_restarts: u32) {
    let after: Vec<Sample> = samples.iter().copied().filter(|s| s.at >= warmup).collect();
    let (Some(first), Some(last)) = (after.first(), after.last()) else {
        eprintln!("soak: no sample after the warm-up");
        return;
    };
    let growth = |a: u64, b: u64| (b as f64 - a as f64) / a as f64 * 100.0;
    let range = |f: fn(&Sample) -> usize| {
        let values = after.iter().map(f);
        (values.clone().min().unwrap_or(0), values.max().unwrap_or(0))
    };
    let (fd_min, fd_max) = range(|s| s.fds);
    let (th_min, th_max) = range(|s| s.threads);
    let peak = after.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    // The second half alone tells a plateau (≈ 0) from a steady leak (about half the growth).
    let half = &after[after.len() / 2..];
    eprintln!(
        "soak result: {:.1} min, {flaps} camera flaps, {broker_restarts} broker restarts\n  \
         RSS {:.1} MiB at {:.1} min → {:.1} MiB at the end ({:+.1} %), peak {:.1} MiB; \
         anon {:.1} → {:.1} MiB ({:+.1} %)\n  \
         RSS slope after warm-up {:+.1} MiB/h, over the second half {:+.1} MiB/h\n  \
         fds {fd_min}..{fd_max}, threads {th_min}..{th_max} (after warm-up)",
        last.at.as_secs_f64() / 60.0,
        mib(first.rss_kib),
        first.at.as_secs_f64() / 60.0,
        mib(last.rss_kib),
        growth(first.rss_kib, last.rss_kib),
        mib(peak),
        mib(first.rss_anon_kib),
        mib(last.rss_anon_kib),
        growth(first.rss_anon_kib, last.rss_anon_kib),
        slope_mib_per_hour(&after),
        slope_mib_per_hour(half),
    );
}
