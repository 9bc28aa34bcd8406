//! What ingest hands to the frame path.

use std::time::{Instant, SystemTime};

use crate::imaging::Frame;

/// Where a frame's `captured_at` comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureClock {
    /// The camera's clock, through RTCP sender reports (NTP time of the RTP timestamp).
    Camera,
    /// The frame's arrival at the agent (the camera sent no sender reports yet).
    Agent,
}

/// One decoded frame of one camera.
#[derive(Clone, Debug)]
pub struct CapturedFrame {
    /// Index of the camera in the configuration.
    pub camera: usize,
    /// Per camera, +1 for every frame the pipeline delivered (so gaps show skipped frames).
    pub seq: u64,
    pub frame: Frame,
    /// Arrival at the agent (appsink), on the monotonic clock: the start of `latency_ms`.
    pub arrived: Instant,
    /// The frame's time: see [`CaptureClock`].
    pub captured_at: SystemTime,
    pub clock: CaptureClock,
}

/// Where a camera's pipeline delivers its frames. Implemented by the frame path's one-slot
/// mailboxes; `offer` must never block for long (it runs on a GStreamer streaming thread).
pub trait FrameSink: Send + Sync {
    fn offer(&self, frame: CapturedFrame);
}
