//! One time budget for the whole stop, so that the agent is gone well before systemd's
//! `TimeoutStopSec=30` kills it, whatever hangs.
//!
//! The stop runs in order (cameras, in-flight frames, the outbox's saved state, `offline`,
//! the runtime); each stage gets a deadline cut from the one budget, at most its own cap, and
//! never the time that the stages after it need. A stage that does not finish by its deadline
//! is abandoned (its thread left behind, logged) and the stop goes on: publishing `offline`
//! and saving the outbox matter more than joining a wedged thread. The process exits after the
//! last stage, taking abandoned threads with it.

use std::time::{Duration, Instant};

use crate::publish::{DISCONNECT_TIMEOUT, OFFLINE_ACK_TIMEOUT};

/// The whole stop, from the signal to the exit. The unit's `TimeoutStopSec` is 30 s.
pub const STOP_BUDGET: Duration = Duration::from_secs(20);

/// Stopping the cameras: pipelines set to NULL, their threads joined.
pub const CAMERAS_CAP: Duration = Duration::from_secs(5);
/// The inference threads finishing the frame each holds.
pub const INFERENCE_CAP: Duration = Duration::from_secs(5);
/// The outbox writing what waits in its inbox and saving its delivered position.
pub const OUTBOX_CAP: Duration = Duration::from_secs(5);
/// What the runtime may take, after the agent's stop, for its own tasks and blocking threads
/// (`tokio::runtime::Runtime::shutdown_timeout`); abandoned stages are not waited for.
pub const RUNTIME_CAP: Duration = Duration::from_millis(500);
/// Kept back for the publisher: its last results, `offline` and the disconnect.
pub const PUBLISHER_RESERVE: Duration = OFFLINE_ACK_TIMEOUT
    .saturating_add(DISCONNECT_TIMEOUT)
    .saturating_add(Duration::from_millis(500));

// The caps and reserves must fit in the budget, or a late stage would always be cut short.
const _: () = assert!(
    CAMERAS_CAP
        .saturating_add(INFERENCE_CAP)
        .saturating_add(OUTBOX_CAP)
        .saturating_add(PUBLISHER_RESERVE)
        .saturating_add(RUNTIME_CAP)
        .as_millis()
        <= STOP_BUDGET.as_millis()
);

/// The stop's deadline.
#[derive(Debug, Clone, Copy)]
pub struct StopBudget {
    deadline: Instant,
}

impl StopBudget {
    /// A budget of `total` starting now.
    pub fn starting_now(total: Duration) -> StopBudget {
        StopBudget::starting_at(Instant::now(), total)
    }

    fn starting_at(start: Instant, total: Duration) -> StopBudget {
        StopBudget {
            deadline: start + total,
        }
    }

    /// What is left of the budget.
    pub fn remaining(&self) -> Duration {
        self.remaining_at(Instant::now())
    }

    fn remaining_at(&self, now: Instant) -> Duration {
        self.deadline.saturating_duration_since(now)
    }

    /// How long a stage may take from now: at most `cap`, and never what the later stages
    /// need (`keep`).
    pub fn stage(&self, cap: Duration, keep: Duration) -> Duration {
        self.stage_at(Instant::now(), cap, keep)
    }

    fn stage_at(&self, now: Instant, cap: Duration, keep: Duration) -> Duration {
        cap.min(self.remaining_at(now).saturating_sub(keep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_gets_its_cap_but_never_what_later_stages_need() {
        let s = Duration::from_secs;
        // (budget, elapsed, cap, keep, expected)
        let cases = [
            (s(20), s(0), s(5), s(10), s(5)),
            (s(20), s(8), s(5), s(10), s(2)),
            (s(20), s(12), s(5), s(10), s(0)),
            (s(20), s(25), s(5), s(0), s(0)),
            (s(20), s(19), s(5), s(0), s(1)),
        ];
        let start = Instant::now();
        for (budget, elapsed, cap, keep, expected) in cases {
            let b = StopBudget::starting_at(start, budget);
            assert_eq!(
                b.stage_at(start + elapsed, cap, keep),
                expected,
                "budget {budget:?}, {elapsed:?} gone, cap {cap:?}, keep {keep:?}"
            );
        }
    }

    #[test]
    fn the_whole_stop_fits_in_the_units_stop_timeout() {
        let unit = include_str!("../../deploy/systemd/watchpost.service");
        let timeout: u64 = unit
            .lines()
            .find_map(|l| l.strip_prefix("TimeoutStopSec="))
            .expect("the unit sets TimeoutStopSec")
            .trim()
            .parse()
            .expect("TimeoutStopSec in seconds");
        // Well inside: the unit's timeout also covers the process's exit and systemd's own
        // bookkeeping.
        assert!(
            STOP_BUDGET + RUNTIME_CAP + Duration::from_secs(5) <= Duration::from_secs(timeout),
            "stop budget {STOP_BUDGET:?} against TimeoutStopSec={timeout}"
        );
    }
}
