//! The camera slots and the scheduler that picks the next frame to analyse.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::health::{CameraStats, DropReason};
use crate::ingest::{CapturedFrame, FrameSink};

/// The time between two analysed frames of a camera at `detect_fps`.
pub fn pacing_interval(detect_fps: f32) -> Duration {
    Duration::from_secs_f64(1.0 / f64::from(detect_fps.clamp(0.001, 1000.0)))
}

/// One camera's mailbox.
#[derive(Debug)]
struct Slot {
    /// The newest frame not yet taken.
    frame: Option<CapturedFrame>,
    /// The camera may be analysed again from this instant (`detect_fps` pacing).
    next_due: Instant,
    interval: Duration,
    /// A thread is analysing one of this camera's frames: no other thread takes the next one
    /// until it is [`FrameBoard::done`], so tracking sees each camera's frames in order.
    in_flight: bool,
}

#[derive(Debug)]
struct BoardState {
    slots: Vec<Slot>,
    /// Where the next search for a due frame starts (fair rotation).
    cursor: usize,
    closed: bool,
}

/// What a scan of the slots found.
#[derive(Debug)]
enum Scan {
    Frame(CapturedFrame),
    /// Nothing due now; the earliest frame becomes due then.
    WaitUntil(Instant),
    /// No frame in any slot.
    Empty,
}

/// The slots of every camera, shared by the cameras (writers, through [`FrameSink`]) and the
/// inference threads (readers, through [`FrameBoard::take`]).
#[derive(Debug)]
pub struct FrameBoard {
    state: Mutex<BoardState>,
    /// Signalled when a frame is offered or the board is closed.
    changed: Condvar,
    stats: Vec<Arc<CameraStats>>,
    max_frame_age: Duration,
}

impl FrameBoard {
    /// A board for cameras with the given `detect_fps` pacing intervals (see
    /// [`pacing_interval`]); `stats[i]` belongs to camera `i`.
    pub fn new(
        intervals: Vec<Duration>,
        stats: Vec<Arc<CameraStats>>,
        max_frame_age: Duration,
    ) -> FrameBoard {
        assert_eq!(intervals.len(), stats.len(), "one stats entry per camera");
        let now = Instant::now();
        FrameBoard {
            state: Mutex::new(BoardState {
                slots: intervals
                    .into_iter()
                    .map(|interval| Slot {
                        frame: None,
                        next_due: now,
                        interval,
                        in_flight: false,
                    })
                    .collect(),
                cursor: 0,
                closed: false,
            }),
            changed: Condvar::new(),
            stats,
            max_frame_age,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BoardState> {
        // A panic while holding the lock cannot leave the slots inconsistent (every update is
        // a single assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `frame` in its camera's slot, replacing (and counting) any frame not yet taken.
    /// Never blocks beyond the short slot lock. Frames of unknown cameras are ignored.
    pub fn offer_at(&self, frame: CapturedFrame, now: Instant) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        let camera = frame.camera;
        let Some(slot) = state.slots.get_mut(camera) else {
            return;
        };
        if slot.frame.replace(frame).is_some() {
            let reason = if now < slot.next_due {
                DropReason::RateLimit
            } else {
                DropReason::Busy
            };
            self.stats[camera].count_drop(reason);
        }
        drop(state);
        self.changed.notify_one();
    }

    /// Finds the next frame to analyse at `now`, dropping frames that are too old on the way.
    fn scan(&self, state: &mut BoardState, now: Instant) -> Scan {
        let n = state.slots.len();
        let mut earliest: Option<Instant> = None;
        for k in 0..n {
            let i = (state.cursor + k) % n;
            let slot = &mut state.slots[i];
            let Some(frame) = &slot.frame else { continue };
            if slot.in_flight {
                // Taken when the camera's current frame is done (its thread signals).
                if now.saturating_duration_since(frame.arrived) > self.max_frame_age {
                    slot.frame = None;
                    self.stats[i].count_drop(DropReason::TooOld);
                }
                continue;
            }
            if now.saturating_duration_since(frame.arrived) > self.max_frame_age {
                slot.frame = None;
                self.stats[i].count_drop(DropReason::TooOld);
                continue;
            }
            if now < slot.next_due {
                // Not due yet; it may also become too old before then, which the next scan sees.
                earliest = Some(earliest.map_or(slot.next_due, |e| e.min(slot.next_due)));
                continue;
            }
            let frame = slot.frame.take().expect("checked above");
            slot.in_flight = true;
            // Keep the camera's cadence when on time; after a late take, wait at least half an
            // interval so a backlog never turns into a burst.
            slot.next_due = (slot.next_due + slot.interval).max(now + slot.interval / 2);
            state.cursor = (i + 1) % n;
            return Scan::Frame(frame);
        }
        match earliest {
            Some(at) => Scan::WaitUntil(at),
            None => Scan::Empty,
        }
    }

    /// The next frame to analyse, waiting until one is due. `None` once the board is closed.
    pub fn take(&self) -> Option<CapturedFrame> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            let now = Instant::now();
            let wait = match self.scan(&mut state, now) {
                Scan::Frame(frame) => return Some(frame),
                Scan::WaitUntil(at) => at.saturating_duration_since(now),
                // Wake up now and then anyway, so frames sitting in slots are aged out even
                // when no camera offers anything.
                Scan::Empty => self.max_frame_age.max(Duration::from_millis(100)),
            };
            state = self
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Like [`FrameBoard::take`] without waiting, at a given instant (for tests).
    pub fn try_take_at(&self, now: Instant) -> Option<CapturedFrame> {
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        match self.scan(&mut state, now) {
            Scan::Frame(frame) => Some(frame),
            _ => None,
        }
    }

    /// Marks the frame of `camera` that a thread took as finished, so the camera's next frame
    /// can be taken. Every frame returned by `take` must be `done` once.
    pub fn done(&self, camera: usize) {
        let mut state = self.lock();
        if let Some(slot) = state.slots.get_mut(camera) {
            slot.in_flight = false;
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Stops the board: `take` returns `None` to every thread, offers are ignored, and frames
    /// still in slots are discarded (not counted: the agent is shutting down).
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        for slot in &mut state.slots {
            slot.frame = None;
        }
        drop(state);
        self.changed.notify_all();
    }
}

impl FrameSink for FrameBoard {
    fn offer(&self, frame: CapturedFrame) {
        self.offer_at(frame, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::config::TopicName;
    use crate::imaging::Frame;
    use crate::ingest::CaptureClock;

    fn board(intervals_ms: &[u64], max_age_ms: u64) -> FrameBoard {
        let stats = (0..intervals_ms.len())
            .map(|i| {
                Arc::new(CameraStats::new(
                    TopicName::parse(&format!("cam{i}")).unwrap(),
                ))
            })
            .collect();
        FrameBoard::new(
            intervals_ms
                .iter()
                .map(|&ms| Duration::from_millis(ms))
                .collect(),
            stats,
            Duration::from_millis(max_age_ms),
        )
    }

    fn frame(camera: usize, seq: u64, arrived: Instant) -> CapturedFrame {
        CapturedFrame {
            camera,
            seq,
            frame: Frame::from_bgr(1, 1, 3, vec![0, 0, 0]).unwrap(),
            arrived,
            captured_at: SystemTime::now(),
            clock: CaptureClock::Agent,
        }
    }

    fn drops(board: &FrameBoard, camera: usize, reason: DropReason) -> u64 {
        board.stats[camera].snapshot().drops(reason)
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn newest_frame_wins_and_replacements_are_counted_by_reason() {
        let b = board(&[100], 1000);
        let t0 = Instant::now();
        b.offer_at(frame(0, 1, t0), t0);
        b.offer_at(frame(0, 2, t0), t0); // due (t0 >= next_due): waiting for a thread
        assert_eq!(
            b.try_take_at(t0).map(|f| f.seq),
            Some(2),
            "the newest frame"
        );
        assert_eq!(drops(&b, 0, DropReason::Busy), 1);
        b.done(0);
        // Camera not due for 100 ms: replacements now are the intended rate limit.
        b.offer_at(frame(0, 3, t0 + 10 * MS), t0 + 10 * MS);
        b.offer_at(frame(0, 4, t0 + 40 * MS), t0 + 40 * MS);
        assert_eq!(
            b.try_take_at(t0 + 50 * MS).map(|f| f.seq),
            None,
            "not due yet"
        );
        assert_eq!(drops(&b, 0, DropReason::RateLimit), 1);
        assert_eq!(b.try_take_at(t0 + 100 * MS).map(|f| f.seq), Some(4));
    }

    #[test]
    fn pacing_keeps_the_cadence_without_bursts() {
        // A 30 fps camera paced at 5 fps, frames taken as soon as due: exactly 5 per second.
        let b = board(&[200], 1000);
        let t0 = Instant::now();
        let mut taken = 0;
        for k in 0..300u64 {
            let now = t0 + Duration::from_micros(k * 33_333);
            b.offer_at(frame(0, k, now), now);
            if b.try_take_at(now).is_some() {
                taken += 1;
                b.done(0);
            }
        }
        assert_eq!(taken, 50, "10 s at 5 fps");
        // After a long stall (late take), the next frame is not due for at least half an
        // interval: no burst.
        let late = t0 + Duration::from_secs(30);
        b.offer_at(frame(0, 1000, late), late);
        assert!(b.try_take_at(late).is_some());
        b.done(0);
        b.offer_at(frame(0, 1001, late + 50 * MS), late + 50 * MS);
        assert!(b.try_take_at(late + 50 * MS).is_none());
        assert!(b.try_take_at(late + 100 * MS).is_some());
    }

    #[test]
    fn fair_rotation_over_cameras() {
        let b = board(&[0, 0, 0], 1000);
        let t0 = Instant::now();
        let mut order = Vec::new();
        for round in 0..3u64 {
            for camera in 0..3 {
                b.offer_at(frame(camera, round, t0), t0);
            }
            for _ in 0..3 {
                let camera = b.try_take_at(t0).unwrap().camera;
                order.push(camera);
                b.done(camera);
            }
        }
        assert_eq!(order, vec![0, 1, 2, 0, 1, 2, 0, 1, 2]);
        // A camera that always has a frame does not starve the others.
        b.offer_at(frame(0, 9, t0), t0);
        b.offer_at(frame(2, 9, t0), t0);
        assert_eq!(b.try_take_at(t0).unwrap().camera, 0);
        b.offer_at(frame(0, 10, t0), t0);
        assert_eq!(
            b.try_take_at(t0).unwrap().camera,
            2,
            "camera 2 before camera 0 again"
        );
    }

    #[test]
    fn frames_older_than_max_age_are_dropped_not_analysed() {
        let b = board(&[0, 0], 500);
        let t0 = Instant::now();
        b.offer_at(frame(0, 1, t0), t0);
        b.offer_at(frame(1, 1, t0 + 400 * MS), t0 + 400 * MS);
        let taken = b.try_take_at(t0 + 600 * MS).unwrap();
        assert_eq!(
            (taken.camera, taken.seq),
            (1, 1),
            "camera 0's frame was too old"
        );
        assert_eq!(drops(&b, 0, DropReason::TooOld), 1);
        assert!(b.try_take_at(t0 + 600 * MS).is_none());
    }

    #[test]
    fn close_wakes_waiting_threads_and_ignores_offers() {
        let b = Arc::new(board(&[0], 1000));
        let waiter = {
            let b = Arc::clone(&b);
            std::thread::spawn(move || b.take().map(|f| f.seq))
        };
        std::thread::sleep(Duration::from_millis(50));
        b.close();
        assert_eq!(waiter.join().unwrap(), None);
        b.offer_at(frame(0, 1, Instant::now()), Instant::now());
        assert!(b.try_take_at(Instant::now()).is_none());
    }

    #[test]
    fn a_waiting_thread_is_woken_by_an_offer() {
        let b = Arc::new(board(&[0], 1000));
        let waiter = {
            let b = Arc::clone(&b);
            std::thread::spawn(move || b.take().map(|f| f.seq))
        };
        std::thread::sleep(Duration::from_millis(50));
        b.offer(frame(0, 7, Instant::now()));
        assert_eq!(waiter.join().unwrap(), Some(7));
    }

    #[test]
    fn a_camera_is_analysed_by_one_thread_at_a_time() {
        let b = board(&[0, 0], 1000);
        let t0 = Instant::now();
        b.offer_at(frame(0, 1, t0), t0);
        assert_eq!(b.try_take_at(t0).map(|f| f.seq), Some(1));
        b.offer_at(frame(0, 2, t0), t0);
        b.offer_at(frame(1, 1, t0), t0);
        assert_eq!(
            b.try_take_at(t0).map(|f| f.camera),
            Some(1),
            "camera 0 is in flight"
        );
        assert!(
            b.try_take_at(t0).is_none(),
            "camera 0's next frame waits for done"
        );
        b.done(0);
        assert_eq!(b.try_take_at(t0).map(|f| (f.camera, f.seq)), Some((0, 2)));
    }

    #[test]
    fn pacing_interval_from_fps() {
        let cases = [(5.0, 200), (30.0, 33), (0.5, 2000), (60.0, 16)];
        for (fps, ms) in cases {
            assert_eq!(pacing_interval(fps).as_millis(), ms, "{fps} fps");
        }
    }
}
