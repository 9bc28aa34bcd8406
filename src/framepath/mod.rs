//! The bounded-latency frame path: one-slot mailboxes per camera, inference threads taking the
//! newest frame of the next camera in fair rotation, results handed to the publisher.
//!
//! ```text
//!  camera 0 ─offer─▶ [slot 0] ┐
//!  camera 1 ─offer─▶ [slot 1] ├─ FrameBoard::take (fair rotation, detect_fps pacing,
//!  camera 2 ─offer─▶ [slot 2] ┘                    max_frame_age) ─▶ N inference threads
//!                                                   events ─▶ outbox ◀─┤ try_send
//!                                                                     ▼
//!                                                       bounded results channel → publisher
//! ```
//!
//! Invariants:
//! - Nothing queues: each camera has exactly one slot; a newer frame replaces the older one and
//!   the replaced frame is counted as a drop, [`DropReason::RateLimit`] when its camera was not
//!   yet due under `detect_fps`, [`DropReason::Busy`] when it was due but every inference thread
//!   was busy. So when the model is slower than the cameras, frames are skipped, never delayed,
//!   and latency stays flat.
//! - A frame older than `max_frame_age` when a thread could take it is dropped
//!   ([`DropReason::TooOld`]), never analysed.
//! - Inference runs on dedicated OS threads, never on an async worker; each thread owns its own
//!   `Detector` (ONNX Runtime sessions are used by one thread at a time).
//! - Handing a result to the publisher never blocks: when its bounded channel is full the
//!   result is dropped and counted ([`DropReason::PublishQueueFull`]). Events go another way:
//!   to the outbox's inbox ([`crate::outbox::EventSink`]), which never blocks either and is
//!   not affected by a full results channel.
//! - A camera is analysed by at most one thread at a time ([`FrameBoard::done`]), so its
//!   frames are analysed, tracked and published in order.
//! - Cameras are served in fair rotation: after a thread takes camera `i`, the next search
//!   starts at `i + 1`, so a busy camera cannot starve the others.

mod board;
mod workers;

pub use board::{FrameBoard, pacing_interval};
pub use workers::{WorkerPool, spawn_workers};

use std::time::{Duration, Instant, SystemTime};

use crate::detect::Object;
use crate::ingest::CaptureClock;

#[cfg(doc)]
use crate::health::DropReason;

/// The result of analysing one frame, on its way to the publisher.
#[derive(Clone, Debug)]
pub struct AnalysedFrame {
    /// Index of the camera in the configuration.
    pub camera: usize,
    /// The frame's per-camera sequence number (from ingest).
    pub seq: u64,
    pub captured_at: SystemTime,
    pub clock: CaptureClock,
    /// Arrival at the agent, monotonic: `latency_ms` runs from here to publication.
    pub arrived: Instant,
    pub width: usize,
    pub height: usize,
    pub objects: Vec<Object>,
    /// Per object (same order): the id of its confirmed track.
    pub track_ids: Vec<Option<u64>>,
    pub inference: Duration,
}
