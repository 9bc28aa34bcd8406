//! Reconnecting a camera leaks nothing: after 50 cuts of a real RTSP stream (the in-process
//! `ClipServer` stopped and started again, every client cut), the process has the open
//! descriptors and threads it had before, give or take a small slack.
//!
//! Its own test binary, with one test, so that the process measured (`/proc/self`) holds only
//! this camera and its server. The camera runs the agent's loop with a short backoff
//! ([`ingest::spawn_camera_with_backoff`]) so that 50 reconnections take seconds.
//! `WATCHPOST_RECONNECTS=500` runs more cuts (and prints the resident memory), for a look at
//! per-reconnection growth by hand.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::camera::camera_config;
use common::wait_until;
use tokio_util::sync::CancellationToken;
use watchpost::demo::clip_server::ClipServer;
use watchpost::health::{CameraState, CameraStats};
use watchpost::ingest::{self, Backoff, CapturedFrame, FrameSink};

/// Counts frames and lets them go at once.
#[derive(Default)]
struct CountingSink {
    frames: AtomicU64,
}

impl FrameSink for CountingSink {
    fn offer(&self, _frame: CapturedFrame) {
        self.frames.fetch_add(1, Ordering::Relaxed);
    }
}

/// Open descriptors and threads of this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Handles {
    fds: usize,
    threads: usize,
}

fn handles() -> Handles {
    let count = |dir: &str| std::fs::read_dir(dir).expect(dir).count();
    Handles {
        // read_dir holds a descriptor of its own while it counts: the same one every time.
        fds: count("/proc/self/fd"),
        threads: count("/proc/self/task"),
    }
}

/// What this process's descriptors are, by kind (`socket`, `pipe`, `anon_inode:[eventfd]`, a
/// file's path), with counts: for the failure message.
fn descriptor_kinds() -> std::collections::BTreeMap<String, usize> {
    let mut kinds = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
    {
        let target = std::fs::read_link(entry.path())
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        let kind = target.split(":[").next().unwrap_or_default();
        let kind = if kind.starts_with("anon_inode") {
            target.as_str()
        } else {
            kind
        };
        *kinds.entry(kind.to_owned()).or_insert(0) += 1;
    }
    kinds
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

struct Camera {
    sink: Arc<CountingSink>,
    stats: Arc<CameraStats>,
    shutdown: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl Camera {
    fn frames(&self) -> u64 {
        self.sink.frames.load(Ordering::Relaxed)
    }

    /// Waits until the camera streams again: reconnected more than `reconnects_before` times
    /// (if given), then a few new frames.
    fn wait_streaming(&self, reconnects_before: Option<u64>, what: &str) {
        if let Some(before) = reconnects_before {
            assert!(
                wait_until(Duration::from_secs(20), || self.stats.snapshot().reconnects
                    > before),
                "{what}: the cut was not noticed: {:?}",
                self.stats.snapshot()
            );
        }
        let frames = self.frames();
        assert!(
            wait_until(Duration::from_secs(20), || self.frames() >= frames + 3
                && self.stats.state() == CameraState::Streaming),
            "{what}: not streaming again: {:?}",
            self.stats.snapshot()
        );
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Stops the server (cutting the camera) and starts it again, then waits for the camera to
/// stream again.
fn cut(server: &mut ClipServer, camera: &Camera, what: &str) {
    let reconnects = camera.stats.snapshot().reconnects;
    server.stop();
    server.start_again().expect("the RTSP server listens again");
    camera.wait_streaming(Some(reconnects), what);
}

#[test]
fn fifty_reconnections_leave_descriptors_and_threads_where_they_were() {
    ingest::init_gstreamer().expect("GStreamer");
    let cuts: u32 = std::env::var("WATCHPOST_RECONNECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut server =
        ClipServer::start(&common::repo_path("tests/data/sample-clip.mp4"), 0).expect("server");
    let sink = Arc::new(CountingSink::default());
    let config = camera_config("flappy", server.url("cam0"), Duration::from_secs(5));
    let stats = Arc::new(CameraStats::new(config.name.clone()));
    let shutdown = CancellationToken::new();
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    let thread = ingest::spawn_camera_with_backoff(
        0,
        config,
        sink.clone(),
        stats.clone(),
        shutdown.clone(),
        backoff,
    )
    .expect("camera thread");
    let camera = Camera {
        sink,
        stats,
        shutdown,
        thread: Some(thread),
    };
    camera.wait_streaming(None, "first connection");
    // The first reconnections load what GStreamer loads once (plugins, thread pools).
    for i in 0..3 {
        cut(&mut server, &camera, &format!("warm-up cut {i}"));
    }
    let before = handles();
    let kinds_before = descriptor_kinds();
    let rss_before = rss_mib();
    let reconnects_before = camera.stats.snapshot().reconnects;

    for i in 0..cuts {
        cut(&mut server, &camera, &format!("cut {i}"));
    }
    let reconnects = camera.stats.snapshot().reconnects - reconnects_before;
    assert!(reconnects >= u64::from(cuts), "{reconnects} reconnections");

    // Slack: a streaming pipeline's threads and sockets come and go with its state (the
    // jitter buffer's and RTCP's threads, a GLib pool thread finishing a task), by one or two
    // either way; a leak grows by at least one per reconnection, 50 here.
    const SLACK: usize = 3;
    let mut after = handles();
    let settled = wait_until(Duration::from_secs(5), || {
        after = handles();
        after.fds <= before.fds + SLACK && after.threads <= before.threads + SLACK
    });
    eprintln!(
        "{reconnects} reconnections: fds {} → {}, threads {} → {}, RSS {rss_before:.1} → {:.1} MiB",
        before.fds,
        after.fds,
        before.threads,
        after.threads,
        rss_mib()
    );
    assert!(
        settled,
        "after {reconnects} reconnections: {after:?}, before: {before:?} (slack {SLACK}); \
         descriptors before {kinds_before:?}, after {:?}",
        descriptor_kinds()
    );
}
