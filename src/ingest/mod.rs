//! Camera ingest: one GStreamer pipeline per camera, built from a template in `pipelines/`,
//! delivering decoded BGR frames to a [`FrameSink`].

mod frame;

pub use frame::{CaptureClock, CapturedFrame, FrameSink};
