//! The inference threads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::{AnalysedFrame, FrameBoard};
use crate::detect::Detector;
use crate::events::CameraEvents;
use crate::health::{CameraStats, DropReason};
use crate::outbox::EventSink;

/// The running inference threads.
#[derive(Debug)]
pub struct WorkerPool {
    handles: Vec<JoinHandle<()>>,
    /// Per thread: when it started the frame it is working on (ms since `epoch`), 0 when it is
    /// waiting for a frame. Lets a supervisor tell a wedged thread from an idle one.
    busy_since_ms: Vec<Arc<AtomicU64>>,
    epoch: Instant,
}

impl WorkerPool {
    /// The longest time any thread has been working on its current frame (zero when all are
    /// waiting for frames).
    pub fn longest_busy(&self) -> Duration {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        self.busy_since_ms
            .iter()
            .map(|b| match b.load(Ordering::Relaxed) {
                0 => 0,
                since => now_ms.saturating_sub(since),
            })
            .max()
            .map_or(Duration::ZERO, Duration::from_millis)
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Waits for every thread to finish its current frame and exit (after the board is
    /// closed).
    pub fn join(self) {
        for handle in self.handles {
            if handle.join().is_err() {
                tracing::error!("an inference thread panicked");
            }
        }
    }
}

/// Starts one inference thread per detector. Each takes frames from `board` until it is closed,
/// runs its own detector, and hands results to `results` without blocking.
///
/// # Errors
/// The OS refused to start a thread.
pub fn spawn_workers(
    detectors: Vec<Detector>,
    board: Arc<FrameBoard>,
    stats: Vec<Arc<CameraStats>>,
    events: Arc<Vec<Mutex<CameraEvents>>>,
    outbox: EventSink,
    results: mpsc::Sender<AnalysedFrame>,
) -> std::io::Result<WorkerPool> {
    let epoch = Instant::now();
    let mut handles = Vec::new();
    let mut busy_since_ms = Vec::new();
    for (index, detector) in detectors.into_iter().enumerate() {
        let busy = Arc::new(AtomicU64::new(0));
        busy_since_ms.push(Arc::clone(&busy));
        let board = Arc::clone(&board);
        let stats = stats.clone();
        let results = results.clone();
        let events = Arc::clone(&events);
        let outbox = outbox.clone();
        let handle = std::thread::Builder::new()
            .name(format!("infer-{index}"))
            .spawn(move || {
                let sinks = Sinks {
                    events: &events,
                    outbox: &outbox,
                    results: &results,
                };
                run_worker(detector, &board, &stats, &sinks, &busy, epoch);
            })?;
        handles.push(handle);
    }
    Ok(WorkerPool {
        handles,
        busy_since_ms,
        epoch,
    })
}

/// Calls [`FrameBoard::done`] when dropped.
struct DoneGuard<'a> {
    board: &'a FrameBoard,
    camera: usize,
}

impl Drop for DoneGuard<'_> {
    fn drop(&mut self) {
        self.board.done(self.camera);
    }
}

/// Where a worker's output goes.
struct Sinks<'a> {
    events: &'a [Mutex<CameraEvents>],
    outbox: &'a EventSink,
    results: &'a mpsc::Sender<AnalysedFrame>,
}

fn run_worker(
    mut detector: Detector,
    board: &FrameBoard,
    stats: &[Arc<CameraStats>],
    sinks: &Sinks<'_>,
    busy_since_ms: &AtomicU64,
    epoch: Instant,
) {
    while let Some(captured) = board.take() {
        busy_since_ms.store(
            (epoch.elapsed().as_millis() as u64).max(1),
            Ordering::Relaxed,
        );
        let camera = captured.camera;
        // Whatever happens below, the camera's next frame becomes available again.
        let _done = DoneGuard { board, camera };
        let camera_stats = &stats[camera];
        let span = tracing::info_span!("camera", camera = %camera_stats.name);
        let _entered = span.enter();
        match detector.detect(&captured.frame.as_bgr()) {
            Ok(detections) => {
                camera_stats.count_analysed(detections.timings.inference);
                // Tracking and events, on this thread: the board gives a camera to one thread
                // at a time, so the lock is never contended and frames arrive in order.
                let t_s = captured
                    .arrived
                    .saturating_duration_since(epoch)
                    .as_secs_f64();
                let frame_events = sinks.events[camera]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .analyse(
                        &captured.frame,
                        &detections.objects,
                        t_s,
                        captured.captured_at,
                    );
                // Events go to the outbox, which numbers and keeps them; never blocks.
                sinks.outbox.offer(camera, frame_events.events);
                let analysed = AnalysedFrame {
                    camera: captured.camera,
                    seq: captured.seq,
                    captured_at: captured.captured_at,
                    clock: captured.clock,
                    arrived: captured.arrived,
                    width: captured.frame.width,
                    height: captured.frame.height,
                    objects: detections.objects,
                    track_ids: frame_events.track_ids,
                    inference: detections.timings.inference,
                };
                match sinks.results.try_send(analysed) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        camera_stats.count_drop(DropReason::PublishQueueFull)
                    }
                    Err(TrySendError::Closed(_)) => {
                        busy_since_ms.store(0, Ordering::Relaxed);
                        return;
                    }
                }
            }
            Err(e) => {
                camera_stats.count_error(format!("inference: {e}"));
                tracing::warn!(seq = captured.seq, error = %e, "frame not analysed");
            }
        }
        busy_since_ms.store(0, Ordering::Relaxed);
    }
}
