//! The last few seconds of camera counters, so `/status` can say "frames per second now" and
//! "latency now" rather than averages since the agent started. Pure: the caller supplies the
//! clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::health::CameraCounters;

/// How much history `/status` rates cover (at least this, less than this plus one sampling
/// interval).
pub const WINDOW: Duration = Duration::from_secs(5);
/// How often the counters are sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Counters of every camera at one moment.
#[derive(Clone, Debug)]
pub struct Sample {
    pub at: Instant,
    /// The live cameras' counters, by camera id.
    pub cameras: Vec<(usize, CameraCounters)>,
}

/// Samples spanning at least `span` (once that much time has passed): the oldest kept is the
/// newest one that is at least `span` older than the newest. Bounded: one sample per
/// [`SAMPLE_INTERVAL`] over `span`, plus one.
#[derive(Debug)]
pub struct RateWindow {
    span: Duration,
    samples: VecDeque<Sample>,
}

impl RateWindow {
    pub fn new(span: Duration) -> RateWindow {
        RateWindow {
            span,
            samples: VecDeque::new(),
        }
    }

    /// Adds a sample (newer than every sample so far) and forgets those no longer needed.
    pub fn push(&mut self, sample: Sample) {
        let at = sample.at;
        self.samples.push_back(sample);
        while self.samples.len() >= 2 && at.duration_since(self.samples[1].at) >= self.span {
            self.samples.pop_front();
        }
    }

    /// The sample the window starts with.
    pub fn oldest(&self) -> Option<&Sample> {
        self.samples.front()
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_just_enough_to_cover_the_span() {
        let start = Instant::now();
        let mut window = RateWindow::new(Duration::from_secs(5));
        assert!(window.oldest().is_none());
        let sample = |s: u64| Sample {
            at: start + Duration::from_secs(s),
            cameras: Vec::new(),
        };
        // (second pushed, oldest kept afterwards, samples kept)
        let cases: &[(u64, u64, usize)] = &[
            (0, 0, 1),
            (1, 0, 2),
            (4, 0, 3),
            (5, 0, 4),
            (6, 1, 4),
            (7, 1, 5),
            (8, 1, 6),
            (9, 4, 6),
            (30, 9, 2),
            (31, 9, 3),
        ];
        for &(s, oldest, len) in cases {
            window.push(sample(s));
            assert_eq!(
                window.oldest().unwrap().at,
                start + Duration::from_secs(oldest),
                "after {s}"
            );
            assert_eq!(window.len(), len, "after {s}");
        }
    }
}
