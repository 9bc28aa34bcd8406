//! Tracking, zones and lines: from per-frame detections to events the central system can act on.

pub mod lines;
pub mod tracker;
pub mod zones;
