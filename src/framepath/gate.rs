//! The motion gate: when a camera is analysed at `detect_fps`, and when it idles at `idle_fps`.
//!
//! A camera idles once nothing has moved for [`IDLE_AFTER`]: no motion in the picture
//! ([`crate::motion`]) and no confirmed track moving ([`crate::track::tracker`]). Motion in the
//! picture, or a track that moves, makes it active again at once. A parked car or a person
//! standing still therefore does not keep a camera at full rate; their tracks are kept while
//! the camera idles (see [`crate::events::CameraEvents::analyse`]).
//!
//! Pure: instants come from the caller.

use std::time::{Duration, Instant};

use crate::config::CameraConfig;
use crate::health::Activity;

/// Nothing moving for this long makes a camera idle.
pub const IDLE_AFTER: Duration = Duration::from_secs(3);

/// The time between two analysed frames of a camera at `detect_fps`.
pub fn pacing_interval(detect_fps: f32) -> Duration {
    Duration::from_secs_f64(1.0 / f64::from(detect_fps.clamp(0.001, 1000.0)))
}

/// How one camera is paced, from its configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    /// Between two analysed frames while active (`1 / detect_fps`).
    pub interval: Duration,
    /// Whether the camera may idle at all (`motion_gate`).
    pub motion_gate: bool,
    /// Between two analysed frames while idle (`1 / idle_fps`); `None` for never
    /// (`idle_fps = 0`).
    pub idle_interval: Option<Duration>,
}

impl Pacing {
    pub fn of(camera: &CameraConfig) -> Pacing {
        Pacing {
            interval: pacing_interval(camera.detect_fps),
            motion_gate: camera.motion_gate,
            idle_interval: (camera.idle_fps > 0.0).then(|| pacing_interval(camera.idle_fps)),
        }
    }

    /// Always at `detect_fps` (no motion gate).
    #[cfg(test)]
    pub fn constant(interval: Duration) -> Pacing {
        Pacing {
            interval,
            motion_gate: false,
            idle_interval: None,
        }
    }
}

/// One camera's gate: when something last moved.
#[derive(Clone, Copy, Debug)]
pub struct Gate {
    pacing: Pacing,
    /// Motion in the picture, or the camera's start (a camera starts active).
    last_motion: Instant,
    /// A confirmed track moved (or was confirmed).
    last_track_motion: Instant,
    /// Someone last watched the camera on the technician's page.
    last_watched: Option<Instant>,
}

impl Gate {
    pub fn new(pacing: Pacing, now: Instant) -> Gate {
        Gate {
            pacing,
            last_motion: now,
            last_track_motion: now,
            last_watched: None,
        }
    }

    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// The picture changed at `at`.
    pub fn motion(&mut self, at: Instant) {
        self.last_motion = self.last_motion.max(at);
    }

    /// A track moved at `at`.
    pub fn track_motion(&mut self, at: Instant) {
        self.last_track_motion = self.last_track_motion.max(at);
    }

    /// Someone watched the camera at `at`: it is paced as active for [`IDLE_AFTER`], though
    /// its scene may still be idle ([`Gate::activity`]).
    pub fn watched(&mut self, at: Instant) {
        self.last_watched = Some(self.last_watched.map_or(at, |last| last.max(at)));
    }

    /// Whether the camera is analysed at its `detect_fps` at `now`: its scene is active, or
    /// someone watches it.
    pub fn paced_as_active(&self, now: Instant) -> bool {
        self.activity(now) == Activity::Active
            || self
                .last_watched
                .is_some_and(|at| now.saturating_duration_since(at) < IDLE_AFTER)
    }

    /// Whether the camera's scene idles at `now` (nothing moved in the picture or its tracks).
    pub fn activity(&self, now: Instant) -> Activity {
        let last = self.last_motion.max(self.last_track_motion);
        if self.pacing.motion_gate && now.saturating_duration_since(last) >= IDLE_AFTER {
            Activity::Idle
        } else {
            Activity::Active
        }
    }

    /// When the camera may next be analysed, at `now`: `active_due` (its `detect_fps` cadence)
    /// while active or watched; `idle_interval` after the last analysed frame while idle;
    /// `None` while idle with `idle_fps = 0`.
    pub fn due(
        &self,
        now: Instant,
        active_due: Instant,
        last_taken: Option<Instant>,
    ) -> Option<Instant> {
        if self.paced_as_active(now) {
            return Some(active_due);
        }
        let interval = self.pacing.idle_interval?;
        Some(last_taken.map_or(active_due, |taken| (taken + interval).max(active_due)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const S: Duration = Duration::from_secs(1);

    fn pacing(motion_gate: bool, idle_fps: f32) -> Pacing {
        Pacing {
            interval: 200 * MS,
            motion_gate,
            idle_interval: (idle_fps > 0.0).then(|| pacing_interval(idle_fps)),
        }
    }

    #[test]
    fn idles_after_nothing_moved_and_wakes_at_once() {
        let t0 = Instant::now();
        // (seconds after start, event at that time, expected activity)
        enum Event {
            None,
            Motion,
            Track,
        }
        let cases = [
            (0.0, Event::None, Activity::Active),
            (2.9, Event::None, Activity::Active),
            (3.0, Event::None, Activity::Idle),
            (10.0, Event::Motion, Activity::Active),
            (12.9, Event::None, Activity::Active),
            (13.0, Event::None, Activity::Idle),
            (14.0, Event::Track, Activity::Active),
            (16.5, Event::None, Activity::Active),
            (17.0, Event::None, Activity::Idle),
        ];
        let mut gate = Gate::new(pacing(true, 0.5), t0);
        for (seconds, event, expected) in cases {
            let now = t0 + Duration::from_secs_f64(seconds);
            match event {
                Event::None => {}
                Event::Motion => gate.motion(now),
                Event::Track => gate.track_motion(now),
            }
            assert_eq!(gate.activity(now), expected, "at {seconds} s");
        }
        // Without the gate: never idle.
        let gate = Gate::new(pacing(false, 0.5), t0);
        assert_eq!(gate.activity(t0 + 3600 * S), Activity::Active);
    }

    #[test]
    fn due_times_follow_the_activity() {
        let t0 = Instant::now();
        let active_due = t0 + 10 * S;
        let taken = Some(t0 + 9 * S);
        // (motion gate, idle_fps, now, last taken, expected due)
        let cases = [
            // Active (something moved at t0 + 8 s): the detect_fps cadence.
            (true, 0.5, t0 + 9 * S, taken, Some(active_due)),
            // Idle: two seconds after the last analysed frame at 0.5 fps.
            (true, 0.5, t0 + 12 * S, taken, Some(t0 + 11 * S)),
            // Idle, but the cadence is later still.
            (true, 0.5, t0 + 12 * S, Some(t0 + 7 * S), Some(active_due)),
            // Idle with idle_fps = 0: never.
            (true, 0.0, t0 + 12 * S, taken, None),
            // Idle before anything was analysed: as soon as the cadence allows.
            (true, 0.5, t0 + 12 * S, None, Some(active_due)),
            // No gate: always the cadence.
            (false, 0.0, t0 + 60 * S, taken, Some(active_due)),
        ];
        for (gated, idle_fps, now, last_taken, expected) in cases {
            let mut gate = Gate::new(pacing(gated, idle_fps), t0);
            gate.motion(t0 + 8 * S);
            assert_eq!(
                gate.due(now, active_due, last_taken),
                expected,
                "gate {gated}, idle_fps {idle_fps}, now {:?}",
                now - t0
            );
        }
    }

    #[test]
    fn time_never_runs_backwards_for_the_gate() {
        let t0 = Instant::now();
        let mut gate = Gate::new(pacing(true, 1.0), t0);
        gate.motion(t0 + 5 * S);
        gate.motion(t0 + 1 * S);
        assert_eq!(
            gate.activity(t0 + 7 * S),
            Activity::Active,
            "the later motion counts"
        );
        assert_eq!(gate.activity(t0 + 8 * S), Activity::Idle);
    }

    #[test]
    fn pacing_from_fps() {
        let cases = [(5.0, 200), (30.0, 33), (0.5, 2000), (60.0, 16)];
        for (fps, ms) in cases {
            assert_eq!(pacing_interval(fps).as_millis(), ms, "{fps} fps");
        }
    }
}
