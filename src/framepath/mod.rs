//! The bounded-latency frame path: one-slot mailboxes per camera, inference threads taking the
//! newest frame of the next camera in fair rotation, results handed to the publisher.

use std::time::{Duration, Instant, SystemTime};

use crate::detect::Object;
use crate::ingest::CaptureClock;

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
    pub inference: Duration,
}
