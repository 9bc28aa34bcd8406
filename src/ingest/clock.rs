//! Pure time helpers of the camera loop: NTP capture times and the reconnection backoff.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;

/// A `timestamp/x-ntp` reference time (nanoseconds since 1900) as a `SystemTime`; `None` for a
/// time before 1970 (a camera whose clock was never set).
pub fn ntp_ns_to_system_time(ntp_ns: u64) -> Option<SystemTime> {
    let unix_ns = ntp_ns.checked_sub(NTP_UNIX_OFFSET_S * 1_000_000_000)?;
    UNIX_EPOCH.checked_add(Duration::from_nanos(unix_ns))
}

/// Capped exponential backoff: `initial`, ×2 each time, at most `max`; back to `initial` after
/// [`Backoff::reset`].
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            next: initial.min(max),
        }
    }

    /// The wait before the next attempt (and doubles the one after).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.next = self.initial.min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_ntp_times() {
        let s = 1_000_000_000u64;
        let cases = [
            (NTP_UNIX_OFFSET_S * s, Some(UNIX_EPOCH)),
            (
                (NTP_UNIX_OFFSET_S + 1_700_000_000) * s + 123,
                Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_nanos(123)),
            ),
            (NTP_UNIX_OFFSET_S * s - 1, None),
            (0, None),
        ];
        for (ntp, expected) in cases {
            assert_eq!(ntp_ns_to_system_time(ntp), expected, "{ntp}");
        }
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(500), Duration::from_secs(30));
        let got: Vec<_> = (0..9).map(|_| b.next_delay()).collect();
        assert_eq!(
            got,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000].map(ms)
        );
        b.reset();
        assert_eq!(b.next_delay(), ms(500));
        let mut tiny = Backoff::new(ms(500), ms(100));
        assert_eq!(tiny.next_delay(), ms(100));
    }
}
