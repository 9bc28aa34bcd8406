//! Counters, histograms and process figures: what `health` (and later `watchpost status` and
//! `/metrics`) report.
//!
//! Everything here is lock-free on the frame path (atomics) and bounded: histograms have fixed
//! buckets, nothing grows with time. Each counter that reports a drop, retry or failure sits
//! beside the log line that reports it.
//!
//! [`keep_memory_flat`] sets glibc's malloc, first thing in `main`, so that the resident memory
//! does not creep up with every camera reconnection (allocator retention, not a leak).

mod cameras;
mod histogram;
mod process;

pub use cameras::Cameras;
pub use histogram::{Histogram, HistogramSnapshot};
pub use process::{
    MALLOC_ARENAS, MMAP_THRESHOLD_BYTES, MallocSetting, MallocSettings, ProcessSample,
    ProcessSampler, keep_memory_flat,
};

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::TopicName;

/// Why a frame was not analysed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Replaced in its camera's slot by a newer frame while the camera was not yet due under its
    /// `detect_fps`: the expected, intended skip.
    RateLimit,
    /// Replaced in its slot by a newer frame while the camera was due: every inference thread
    /// was busy (the model is slower than the cameras).
    Busy,
    /// Older than `max_frame_age` when an inference thread could take it.
    TooOld,
    /// Analysed, but the publisher's queue was full: its detections were not published.
    PublishQueueFull,
    /// Analysed while the broker was unreachable: its detections (QoS 0) were not published.
    BrokerDown,
    /// Replaced in its slot while the camera was idle (nothing moving: analysed at `idle_fps`
    /// instead of `detect_fps`) and not yet due: the intended saving on a still scene.
    Idle,
}

impl DropReason {
    pub const ALL: [DropReason; 6] = [
        DropReason::RateLimit,
        DropReason::Busy,
        DropReason::TooOld,
        DropReason::PublishQueueFull,
        DropReason::BrokerDown,
        DropReason::Idle,
    ];

    /// Skips the agent means to make (`rate_limit`, `idle`), as opposed to frames lost.
    pub fn is_intended(self) -> bool {
        matches!(self, DropReason::RateLimit | DropReason::Idle)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::RateLimit => "rate_limit",
            DropReason::Busy => "busy",
            DropReason::TooOld => "too_old",
            DropReason::PublishQueueFull => "publish_queue_full",
            DropReason::BrokerDown => "broker_down",
            DropReason::Idle => "idle",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A camera's connection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    /// Building the pipeline or waiting for the first frame.
    Connecting = 0,
    /// Frames are arriving.
    Streaming = 1,
    /// Waiting before the next attempt after a failure.
    Retrying = 2,
    /// Shut down.
    Stopped = 3,
}

impl CameraState {
    fn from_u8(v: u8) -> CameraState {
        match v {
            1 => CameraState::Streaming,
            2 => CameraState::Retrying,
            3 => CameraState::Stopped,
            _ => CameraState::Connecting,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Connecting => "connecting",
            CameraState::Streaming => "streaming",
            CameraState::Retrying => "retrying",
            CameraState::Stopped => "stopped",
        }
    }
}

/// Whether a camera is analysed at its full rate or idles (see [`crate::framepath`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// Analysed at `detect_fps`: something moves, or the motion gate is off.
    Active,
    /// Nothing has moved for a few seconds: analysed at `idle_fps`.
    Idle,
}

impl Activity {
    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Active => "active",
            Activity::Idle => "idle",
        }
    }
}

/// Milliseconds since the Unix epoch, for timestamps kept in atomics.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One camera's counters. Shared (`Arc`) by its ingest thread, the inference threads and the
/// publisher; all methods take `&self`.
#[derive(Debug)]
pub struct CameraStats {
    pub name: TopicName,
    state: AtomicU8,
    /// The camera idles (see [`Activity`]).
    idle: AtomicBool,
    /// Decoded frames delivered by the pipeline.
    frames_in: AtomicU64,
    /// Frames the model ran on.
    frames_analysed: AtomicU64,
    drops: [AtomicU64; DropReason::ALL.len()],
    /// Pipeline restarts after the first connection attempt.
    reconnects: AtomicU64,
    /// Pipeline errors (decode, network, protocol) that ended a connection.
    errors: AtomicU64,
    /// Wall clock (ms since epoch) of the newest frame, 0 = none yet.
    last_frame_unix_ms: AtomicU64,
    /// The last error, for status output (never contains credentials).
    last_error: std::sync::Mutex<Option<String>>,
    /// The decoder template in use, once the camera's thread has chosen it.
    decoder: std::sync::Mutex<Option<String>>,
    /// Inference time per analysed frame.
    pub inference_ms: Histogram,
    /// Frame arrival → publication, agent monotonic clock.
    pub latency_ms: Histogram,
}

impl CameraStats {
    pub fn new(name: TopicName) -> CameraStats {
        CameraStats {
            name,
            state: AtomicU8::new(CameraState::Connecting as u8),
            idle: AtomicBool::new(false),
            frames_in: AtomicU64::new(0),
            frames_analysed: AtomicU64::new(0),
            drops: Default::default(),
            reconnects: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_frame_unix_ms: AtomicU64::new(0),
            last_error: std::sync::Mutex::new(None),
            decoder: std::sync::Mutex::new(None),
            inference_ms: Histogram::new(),
            latency_ms: Histogram::new(),
        }
    }

    pub fn set_state(&self, state: CameraState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    pub fn state(&self) -> CameraState {
        CameraState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub fn set_activity(&self, activity: Activity) {
        self.idle
            .store(activity == Activity::Idle, Ordering::Relaxed);
    }

    pub fn activity(&self) -> Activity {
        if self.idle.load(Ordering::Relaxed) {
            Activity::Idle
        } else {
            Activity::Active
        }
    }

    pub fn count_frame_in(&self, at: SystemTime) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        self.last_frame_unix_ms
            .store(unix_ms(at), Ordering::Relaxed);
    }

    pub fn count_analysed(&self, inference: Duration) {
        self.frames_analysed.fetch_add(1, Ordering::Relaxed);
        self.inference_ms.record(inference.as_secs_f64() * 1e3);
    }

    pub fn count_drop(&self, reason: DropReason) {
        self.drops[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an error that ended a connection and keeps its (credential-free) message.
    pub fn count_error(&self, message: impl Into<String>) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(message.into());
    }

    /// Records the decoder template in use (`software`, `v4l2`, …, or what a fallback says).
    pub fn set_decoder(&self, decoder: impl Into<String>) {
        *self.decoder.lock().unwrap_or_else(|e| e.into_inner()) = Some(decoder.into());
    }

    pub fn record_latency(&self, latency: Duration) {
        self.latency_ms.record(latency.as_secs_f64() * 1e3);
    }

    /// A consistent-enough copy of every counter (each read is atomic; the set is not).
    pub fn snapshot(&self) -> CameraCounters {
        CameraCounters {
            state: self.state(),
            activity: self.activity(),
            frames_in: self.frames_in.load(Ordering::Relaxed),
            frames_analysed: self.frames_analysed.load(Ordering::Relaxed),
            drops: DropReason::ALL.map(|r| (r, self.drops[r.index()].load(Ordering::Relaxed))),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            last_frame_unix_ms: match self.last_frame_unix_ms.load(Ordering::Relaxed) {
                0 => None,
                v => Some(v),
            },
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            decoder: self
                .decoder
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            inference_ms: self.inference_ms.snapshot(),
            latency_ms: self.latency_ms.snapshot(),
        }
    }
}

/// Cumulative counters of one camera at one moment. Rates and interval percentiles come from
/// the difference of two snapshots ([`CameraCounters::since`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CameraCounters {
    pub state: CameraState,
    pub activity: Activity,
    pub frames_in: u64,
    pub frames_analysed: u64,
    pub drops: [(DropReason, u64); DropReason::ALL.len()],
    pub reconnects: u64,
    pub errors: u64,
    pub last_frame_unix_ms: Option<u64>,
    pub last_error: Option<String>,
    pub decoder: Option<String>,
    pub inference_ms: HistogramSnapshot,
    pub latency_ms: HistogramSnapshot,
}

impl CameraCounters {
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].1
    }

    /// What happened between `earlier` and `self` (counters and histograms subtracted; state,
    /// activity, last frame, last error and decoder are `self`'s).
    pub fn since(&self, earlier: &CameraCounters) -> CameraCounters {
        CameraCounters {
            state: self.state,
            activity: self.activity,
            frames_in: self.frames_in.saturating_sub(earlier.frames_in),
            frames_analysed: self.frames_analysed.saturating_sub(earlier.frames_analysed),
            drops: DropReason::ALL.map(|r| (r, self.drops(r).saturating_sub(earlier.drops(r)))),
            reconnects: self.reconnects.saturating_sub(earlier.reconnects),
            errors: self.errors.saturating_sub(earlier.errors),
            last_frame_unix_ms: self.last_frame_unix_ms,
            last_error: self.last_error.clone(),
            decoder: self.decoder.clone(),
            inference_ms: self.inference_ms.since(&earlier.inference_ms),
            latency_ms: self.latency_ms.since(&earlier.latency_ms),
        }
    }
}
