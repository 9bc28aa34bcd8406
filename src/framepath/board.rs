//! The camera slots and the scheduler that picks the next frame to analyse.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use super::gate::{Gate, Pacing};
use crate::health::{Activity, CameraStats, DropReason};
use crate::ingest::{CapturedFrame, FrameSink};
use crate::motion::MotionDetector;

/// How often a camera's picture is looked at for motion (at most; every frame of a slower
/// camera).
pub const MOTION_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// One camera's mailbox.
#[derive(Debug)]
struct Slot {
    stats: Arc<CameraStats>,
    /// The camera was removed: its slot takes no frames and is never due again. Its frames in
    /// flight still finish (`done`).
    retired: bool,
    /// The newest frame not yet taken.
    frame: Option<CapturedFrame>,
    /// While active, the camera may be analysed again from this instant (`detect_fps` cadence).
    next_due: Instant,
    /// When the camera's last frame was taken.
    last_taken: Option<Instant>,
    gate: Gate,
    /// The camera was idle at some point since its last frame was taken.
    idled: bool,
    /// Frames of this camera being analysed; at most the board's `max_in_flight`.
    in_flight: usize,
    /// The ticket of the next frame taken: per camera, +1 per frame, the order in which
    /// results are tracked and published.
    next_ticket: u64,
}

impl Slot {
    fn new(pacing: Pacing, stats: Arc<CameraStats>, now: Instant) -> Slot {
        Slot {
            stats,
            retired: false,
            frame: None,
            next_due: now,
            last_taken: None,
            gate: Gate::new(pacing, now),
            idled: false,
            in_flight: 0,
            next_ticket: 0,
        }
    }

    fn due(&self, now: Instant) -> Option<Instant> {
        self.gate.due(now, self.next_due, self.last_taken)
    }

    /// Why a frame of this camera that was not analysed was not: not due (by the camera's own
    /// pace) or due but no thread could take it.
    fn skip_reason(&self, now: Instant) -> DropReason {
        match (self.due(now), self.gate.paced_as_active(now)) {
            (Some(due), _) if now >= due => DropReason::Busy,
            (_, false) => DropReason::Idle,
            (_, true) => DropReason::RateLimit,
        }
    }
}

#[derive(Debug)]
struct BoardState {
    slots: Vec<Slot>,
    /// Where the next search for a due frame starts (fair rotation).
    cursor: usize,
    closed: bool,
}

/// A frame taken for analysis.
#[derive(Debug)]
pub struct Taken {
    pub frame: CapturedFrame,
    /// Per camera, +1 per frame taken: results are tracked and published in this order.
    pub ticket: u64,
    /// The camera idled at some point since its previous frame was taken: its tracks were not
    /// looked at meanwhile, and nothing moved.
    pub idle_gap: bool,
}

/// What a scan of the slots found.
#[derive(Debug)]
enum Scan {
    Frame(Taken),
    /// Nothing due now; the earliest frame becomes due then.
    WaitUntil(Instant),
    /// No frame that can become due without an offer.
    Empty,
}

/// One camera's motion detector and when it last looked; only that camera's streaming thread
/// uses it.
#[derive(Debug, Default)]
struct MotionCheck {
    detector: MotionDetector,
    last: Option<Instant>,
}

/// The slots of every camera, shared by the cameras (writers, through [`FrameSink`]) and the
/// inference threads (readers, through [`FrameBoard::take`]).
///
/// A camera's index ([`CapturedFrame::camera`]) is its slot, for as long as the agent runs:
/// cameras added while running get the next slot ([`FrameBoard::add_camera`]); a removed
/// camera's slot is retired ([`FrameBoard::retire`]), never reused.
#[derive(Debug)]
pub struct FrameBoard {
    state: Mutex<BoardState>,
    /// Signalled when a frame is offered, a camera's frame is done, or the board is closed.
    changed: Condvar,
    /// Per slot: the camera's motion check while it has a motion gate; `None` for the others
    /// (no cost). Read (an `Arc` copied) outside the slots' lock, by the camera's own thread.
    motion: RwLock<Vec<Option<Arc<Mutex<MotionCheck>>>>>,
    max_frame_age: Duration,
    /// Frames of one camera analysed at once: the number of inference threads, so that a lone
    /// camera keeps every thread busy. Their results are put back in order by ticket.
    max_in_flight: usize,
}

impl FrameBoard {
    /// A board for cameras paced as `pacing` says (see [`Pacing::of`]); `stats[i]` belongs to
    /// camera `i`; up to `max_in_flight` frames of one camera are analysed at once.
    pub fn new(
        pacing: Vec<Pacing>,
        stats: Vec<Arc<CameraStats>>,
        max_frame_age: Duration,
        max_in_flight: usize,
    ) -> FrameBoard {
        assert_eq!(pacing.len(), stats.len(), "one stats entry per camera");
        let board = FrameBoard {
            motion: RwLock::new(Vec::new()),
            state: Mutex::new(BoardState {
                slots: Vec::new(),
                cursor: 0,
                closed: false,
            }),
            changed: Condvar::new(),
            max_frame_age,
            max_in_flight: max_in_flight.max(1),
        };
        for (pacing, stats) in pacing.into_iter().zip(stats) {
            board.add_camera(pacing, stats);
        }
        board
    }

    /// A slot for one more camera, paced by `pacing`; its index (the next one, never used
    /// before).
    pub fn add_camera(&self, pacing: Pacing, stats: Arc<CameraStats>) -> usize {
        let mut state = self.lock();
        let mut motion = self.motion.write().unwrap_or_else(|e| e.into_inner());
        motion.push(pacing.motion_gate.then(Arc::default));
        state.slots.push(Slot::new(pacing, stats, Instant::now()));
        state.slots.len() - 1
    }

    /// Camera `camera` is paced by `pacing` from now on (`detect_fps`, `idle_fps` or
    /// `motion_gate` changed); its frame in the slot, tickets and frames in flight stay.
    pub fn set_pacing(&self, camera: usize, pacing: Pacing) {
        let mut state = self.lock();
        let now = Instant::now();
        let Some(slot) = state.slots.get_mut(camera) else {
            return;
        };
        let gated = pacing.motion_gate;
        slot.gate = Gate::new(pacing, now);
        slot.next_due = now;
        let mut motion = self.motion.write().unwrap_or_else(|e| e.into_inner());
        if let Some(check) = motion.get_mut(camera) {
            match (gated, check.is_some()) {
                (true, false) => *check = Some(Arc::default()),
                (false, true) => *check = None,
                _ => {}
            }
        }
        drop(motion);
        drop(state);
        self.changed.notify_all();
    }

    /// Camera `camera` was removed: its frame waiting in the slot is discarded (not counted),
    /// later offers are ignored, and its slot is never due again. Frames of it already taken
    /// finish as usual.
    pub fn retire(&self, camera: usize) {
        let mut state = self.lock();
        if let Some(slot) = state.slots.get_mut(camera) {
            slot.retired = true;
            slot.frame = None;
        }
        drop(state);
        if let Some(check) = self
            .motion
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(camera)
        {
            *check = None;
        }
    }

    fn lock(&self) -> MutexGuard<'_, BoardState> {
        // A panic while holding the lock cannot leave the slots inconsistent (every update is
        // a single assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the picture of `frame`'s camera moved, looking at most every
    /// [`MOTION_CHECK_INTERVAL`] and only for cameras with a motion gate. Runs outside the
    /// board's lock.
    fn picture_moved(&self, frame: &CapturedFrame, now: Instant) -> bool {
        let check = {
            let motion = self.motion.read().unwrap_or_else(|e| e.into_inner());
            let Some(Some(check)) = motion.get(frame.camera) else {
                return false;
            };
            Arc::clone(check)
        };
        let mut check = check.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = match check.last {
            Some(last) if now.saturating_duration_since(last) < MOTION_CHECK_INTERVAL => {
                return false;
            }
            Some(last) => now.saturating_duration_since(last),
            None => Duration::ZERO,
        };
        check.last = Some(now);
        let image = frame.frame.view();
        check
            .detector
            .observe(&image.y, image.width, image.height, elapsed.as_secs_f32())
            .motion
    }

    /// Puts `frame` in its camera's slot, replacing (and counting) any frame not yet taken, and
    /// looks at it for motion now and then. Never blocks beyond the short slot lock. Frames of
    /// unknown cameras are ignored.
    pub fn offer_at(&self, frame: CapturedFrame, now: Instant) {
        let camera = frame.camera;
        let moved = self.picture_moved(&frame, now);
        let mut state = self.lock();
        if state.closed {
            return;
        }
        let Some(slot) = state.slots.get_mut(camera).filter(|s| !s.retired) else {
            return;
        };
        if moved {
            slot.gate.motion(now);
        }
        let activity = slot.gate.activity(now);
        slot.idled |= activity == Activity::Idle;
        slot.stats.set_activity(activity);
        let reason = slot.skip_reason(now);
        if slot.frame.replace(frame).is_some() {
            slot.stats.count_drop(reason);
        }
        drop(state);
        self.changed.notify_one();
    }

    /// A track of `camera` moved at `at` (or a new one was confirmed): the camera is active.
    pub fn note_track_motion(&self, camera: usize, at: Instant) {
        let mut state = self.lock();
        if let Some(slot) = state.slots.get_mut(camera) {
            slot.gate.track_motion(at);
            slot.stats.set_activity(slot.gate.activity(at));
        }
    }

    /// Someone watches `camera` on the technician's page at `at`: it is paced as an active
    /// scene for a while, so a still camera shows live pictures instead of waiting for motion;
    /// its scene's activity (status, metrics) stays what the picture and tracks say.
    pub fn note_watched(&self, camera: usize, at: Instant) {
        let mut state = self.lock();
        if let Some(slot) = state.slots.get_mut(camera) {
            slot.gate.watched(at);
        }
    }

    /// Finds the next frame to analyse at `now`, dropping frames that are too old on the way.
    fn scan(&self, state: &mut BoardState, now: Instant) -> Scan {
        let n = state.slots.len();
        let mut earliest: Option<Instant> = None;
        for k in 0..n {
            let i = (state.cursor + k) % n;
            let slot = &mut state.slots[i];
            let Some(frame) = &slot.frame else { continue };
            if now.saturating_duration_since(frame.arrived) > self.max_frame_age {
                // Not taken in time: by the camera's own pace (the intended skip) or because
                // every thread was busy (too old).
                let reason = match slot.skip_reason(now) {
                    DropReason::Busy => DropReason::TooOld,
                    intended => intended,
                };
                slot.frame = None;
                slot.stats.count_drop(reason);
                continue;
            }
            if slot.in_flight >= self.max_in_flight {
                // Taken when one of the camera's frames is done (its thread signals).
                continue;
            }
            match slot.due(now) {
                // Idle with idle_fps = 0: only motion (an offer) makes it due.
                None => continue,
                Some(due) if now < due => {
                    // Not due yet; it may also become too old before then, which the next scan
                    // sees.
                    earliest = Some(earliest.map_or(due, |e| e.min(due)));
                    continue;
                }
                Some(_) => {}
            }
            let frame = slot.frame.take().expect("checked above");
            slot.in_flight += 1;
            let ticket = slot.next_ticket;
            slot.next_ticket += 1;
            let idle_gap = slot.idled || slot.gate.activity(now) == Activity::Idle;
            slot.idled = false;
            slot.last_taken = Some(now);
            // Keep the camera's cadence when on time; after a late take, wait at least half an
            // interval so a backlog never turns into a burst.
            let interval = slot.gate.pacing().interval;
            slot.next_due = (slot.next_due + interval).max(now + interval / 2);
            state.cursor = (i + 1) % n;
            return Scan::Frame(Taken {
                frame,
                ticket,
                idle_gap,
            });
        }
        match earliest {
            Some(at) => Scan::WaitUntil(at),
            None => Scan::Empty,
        }
    }

    /// The next frame to analyse, waiting until one is due. `None` once the board is closed.
    pub fn take(&self) -> Option<Taken> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            let now = Instant::now();
            let wait = match self.scan(&mut state, now) {
                Scan::Frame(taken) => return Some(taken),
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
    pub fn try_take_at(&self, now: Instant) -> Option<Taken> {
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        match self.scan(&mut state, now) {
            Scan::Frame(taken) => Some(taken),
            _ => None,
        }
    }

    /// Marks a frame of `camera` that a thread took as finished, so that another of its frames
    /// can be taken. Every frame returned by `take` must be `done` once.
    pub fn done(&self, camera: usize) {
        let mut state = self.lock();
        if let Some(slot) = state.slots.get_mut(camera) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
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
    use crate::framepath::gate::{IDLE_AFTER, pacing_interval};
    use crate::imaging::YuvFrame;
    use crate::ingest::CaptureClock;

    fn stats(n: usize) -> Vec<Arc<CameraStats>> {
        (0..n)
            .map(|i| {
                Arc::new(CameraStats::new(
                    TopicName::parse(&format!("cam{i}")).unwrap(),
                ))
            })
            .collect()
    }

    /// Cameras at fixed intervals (no motion gate), one frame of each in flight at a time.
    fn board(intervals_ms: &[u64], max_age_ms: u64) -> FrameBoard {
        FrameBoard::new(
            intervals_ms
                .iter()
                .map(|&ms| Pacing::constant(Duration::from_millis(ms)))
                .collect(),
            stats(intervals_ms.len()),
            Duration::from_millis(max_age_ms),
            1,
        )
    }

    fn frame_of(camera: usize, seq: u64, arrived: Instant, luma: u8) -> CapturedFrame {
        CapturedFrame {
            camera,
            seq,
            frame: YuvFrame::solid(64, 36, [luma, 128, 128]),
            arrived,
            captured_at: SystemTime::now(),
            clock: CaptureClock::Agent,
        }
    }

    fn frame(camera: usize, seq: u64, arrived: Instant) -> CapturedFrame {
        frame_of(camera, seq, arrived, 16)
    }

    fn stats_of(board: &FrameBoard, camera: usize) -> Arc<CameraStats> {
        Arc::clone(&board.lock().slots[camera].stats)
    }

    fn drops(board: &FrameBoard, camera: usize, reason: DropReason) -> u64 {
        stats_of(board, camera).snapshot().drops(reason)
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn newest_frame_wins_and_replacements_are_counted_by_reason() {
        let b = board(&[100], 1000);
        let t0 = Instant::now();
        b.offer_at(frame(0, 1, t0), t0);
        b.offer_at(frame(0, 2, t0), t0); // due (t0 >= next_due): waiting for a thread
        assert_eq!(
            b.try_take_at(t0).map(|t| t.frame.seq),
            Some(2),
            "the newest frame"
        );
        assert_eq!(drops(&b, 0, DropReason::Busy), 1);
        b.done(0);
        // Camera not due for 100 ms: replacements now are the intended rate limit.
        b.offer_at(frame(0, 3, t0 + 10 * MS), t0 + 10 * MS);
        b.offer_at(frame(0, 4, t0 + 40 * MS), t0 + 40 * MS);
        assert_eq!(
            b.try_take_at(t0 + 50 * MS).map(|t| t.frame.seq),
            None,
            "not due yet"
        );
        assert_eq!(drops(&b, 0, DropReason::RateLimit), 1);
        assert_eq!(b.try_take_at(t0 + 100 * MS).map(|t| t.frame.seq), Some(4));
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
                let camera = b.try_take_at(t0).unwrap().frame.camera;
                order.push(camera);
                b.done(camera);
            }
        }
        assert_eq!(order, vec![0, 1, 2, 0, 1, 2, 0, 1, 2]);
        // A camera that always has a frame does not starve the others.
        b.offer_at(frame(0, 9, t0), t0);
        b.offer_at(frame(2, 9, t0), t0);
        assert_eq!(b.try_take_at(t0).unwrap().frame.camera, 0);
        b.offer_at(frame(0, 10, t0), t0);
        assert_eq!(
            b.try_take_at(t0).unwrap().frame.camera,
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
            (taken.frame.camera, taken.frame.seq),
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
            std::thread::spawn(move || b.take().map(|t| t.frame.seq))
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
            std::thread::spawn(move || b.take().map(|t| t.frame.seq))
        };
        std::thread::sleep(Duration::from_millis(50));
        b.offer(frame(0, 7, Instant::now()));
        assert_eq!(waiter.join().unwrap(), Some(7));
    }

    #[test]
    fn frames_in_flight_per_camera_are_bounded_and_numbered_in_order() {
        // Three threads, one camera: up to three of its frames at once, tickets 0, 1, 2, …
        let b = FrameBoard::new(
            vec![Pacing::constant(Duration::ZERO)],
            stats(1),
            Duration::from_secs(1),
            3,
        );
        let single = board(&[0, 0], 1000);
        let t0 = Instant::now();
        let mut tickets = Vec::new();
        for seq in 0..4 {
            b.offer_at(frame(0, seq, t0), t0);
            if let Some(taken) = b.try_take_at(t0) {
                tickets.push((taken.frame.seq, taken.ticket));
            }
        }
        assert_eq!(tickets, vec![(0, 0), (1, 1), (2, 2)], "the fourth waits");
        b.done(0);
        assert_eq!(
            b.try_take_at(t0).map(|t| (t.frame.seq, t.ticket)),
            Some((3, 3))
        );
        // With one frame at a time (one thread), the next waits for done.
        single.offer_at(frame(0, 1, t0), t0);
        assert!(single.try_take_at(t0).is_some());
        single.offer_at(frame(0, 2, t0), t0);
        single.offer_at(frame(1, 1, t0), t0);
        assert_eq!(single.try_take_at(t0).map(|t| t.frame.camera), Some(1));
        assert!(single.try_take_at(t0).is_none());
        single.done(0);
        assert_eq!(
            single
                .try_take_at(t0)
                .map(|t| (t.frame.camera, t.frame.seq)),
            Some((0, 2))
        );
    }

    #[test]
    fn cameras_added_retired_and_repaced_while_running() {
        let b = board(&[0, 0], 1000);
        // A camera added gets the next slot and joins the rotation.
        let added = b.add_camera(
            Pacing::constant(Duration::ZERO),
            Arc::new(CameraStats::new(TopicName::parse("cam2").unwrap())),
        );
        assert_eq!(added, 2);
        let t0 = Instant::now();
        for camera in 0..3 {
            b.offer_at(frame(camera, 1, t0), t0);
        }
        let mut order = Vec::new();
        while let Some(taken) = b.try_take_at(t0) {
            order.push(taken.frame.camera);
            b.done(taken.frame.camera);
        }
        assert_eq!(order, [0, 1, 2]);
        // A frame of camera 1 in flight when it is retired still finishes; its waiting frame
        // is discarded, later offers are ignored, and its slot is never used again.
        b.offer_at(frame(1, 2, t0), t0);
        let in_flight = b.try_take_at(t0).expect("camera 1's frame");
        b.offer_at(frame(1, 3, t0), t0);
        b.retire(1);
        b.done(in_flight.frame.camera);
        b.offer_at(frame(1, 4, t0), t0);
        assert!(b.try_take_at(t0).is_none(), "nothing of a retired camera");
        assert_eq!(drops(&b, 1, DropReason::Busy), 0, "not counted as drops");
        assert_eq!(
            b.add_camera(
                Pacing::constant(Duration::ZERO),
                Arc::new(CameraStats::new(TopicName::parse("cam1").unwrap())),
            ),
            3,
            "a fresh slot, even for the same name"
        );
        // New pacing applies from the next frame; the ticket order goes on.
        b.set_pacing(0, Pacing::constant(Duration::from_millis(500)));
        let t1 = Instant::now();
        b.offer_at(frame(0, 5, t1), t1);
        let taken = b.try_take_at(t1).expect("due at once after the change");
        assert_eq!((taken.frame.seq, taken.ticket), (5, 1));
        b.done(0);
        b.offer_at(frame(0, 6, t1 + 100 * MS), t1 + 100 * MS);
        assert!(b.try_take_at(t1 + 100 * MS).is_none(), "paced at 2 fps now");
        assert!(b.try_take_at(t1 + 500 * MS).is_some());
    }

    /// One gated camera at 5 fps, idling at `idle_fps`.
    fn gated(idle_fps: f32) -> FrameBoard {
        let pacing = Pacing {
            interval: pacing_interval(5.0),
            motion_gate: true,
            idle_interval: (idle_fps > 0.0).then(|| pacing_interval(idle_fps)),
        };
        FrameBoard::new(vec![pacing], stats(1), Duration::from_secs(1), 1)
    }

    /// Offers a still 25 fps camera from `from` for `seconds` and takes what is due; returns
    /// the instants taken, and whether each was taken after an idle gap.
    fn still_camera(
        b: &FrameBoard,
        from: Instant,
        seconds: u64,
        luma: u8,
    ) -> Vec<(Duration, bool)> {
        let mut taken = Vec::new();
        for k in 0..seconds * 25 {
            let now = from + Duration::from_millis(k * 40);
            b.offer_at(frame_of(0, k, now, luma), now);
            if let Some(t) = b.try_take_at(now) {
                taken.push((now - from, t.idle_gap));
                b.done(0);
            }
        }
        taken
    }

    #[test]
    fn a_still_camera_idles_and_motion_wakes_it_at_once() {
        let b = gated(0.5);
        let t0 = Instant::now();
        let taken = still_camera(&b, t0, 13, 16);
        // Active for IDLE_AFTER (5 fps), then one frame every 2 s.
        let active = taken.iter().filter(|(at, _)| *at < IDLE_AFTER).count();
        let idle: Vec<_> = taken.iter().filter(|(at, _)| *at >= IDLE_AFTER).collect();
        assert!(
            (14..=16).contains(&active),
            "{active} frames while active: {taken:?}"
        );
        assert!((4..=6).contains(&idle.len()), "idle frames {idle:?}");
        assert!(
            idle.iter().all(|(_, gap)| *gap),
            "taken after an idle gap: {idle:?}"
        );
        assert_eq!(stats_of(&b, 0).activity(), Activity::Idle);
        let skipped = drops(&b, 0, DropReason::Idle);
        assert!(skipped > 200, "{skipped} frames skipped as idle");
        // The picture changes: the first look at it (within MOTION_CHECK_INTERVAL) sees motion,
        // and that very frame is due at once.
        let changed = t0 + Duration::from_secs(13);
        let mut woken = None;
        for k in 0..10u64 {
            let now = changed + Duration::from_millis(k * 40);
            b.offer_at(frame_of(0, 9000 + k, now, 200), now);
            if let Some(taken) = b.try_take_at(now) {
                woken = Some((now - changed, taken));
                break;
            }
        }
        let (after, woken) = woken.expect("woken by motion");
        assert!(
            after <= MOTION_CHECK_INTERVAL,
            "woken {after:?} after the change"
        );
        assert_eq!(stats_of(&b, 0).activity(), Activity::Active);
        assert!(woken.idle_gap, "the gap before it was idle");
        b.done(0);
        let now = changed + after;
        // Then 5 fps again, without idle gaps, while it keeps moving.
        let mut luma = 200;
        let mut after = Vec::new();
        for k in 1..25u64 {
            let at = now + Duration::from_millis(k * 40);
            luma = if luma == 200 { 60 } else { 200 };
            b.offer_at(frame_of(0, 10_000 + k, at, luma), at);
            if let Some(t) = b.try_take_at(at) {
                after.push(t.idle_gap);
                b.done(0);
            }
        }
        assert_eq!(after, vec![false; 5], "5 fps, active");
    }

    #[test]
    fn idle_fps_zero_waits_for_motion_and_tracks_keep_a_camera_active() {
        let b = gated(0.0);
        let t0 = Instant::now();
        let taken = still_camera(&b, t0, 10, 16);
        assert!(
            taken.iter().all(|(at, _)| *at < IDLE_AFTER),
            "nothing analysed once idle: {taken:?}"
        );
        // A moving track (a person walking slowly, too little for the picture's motion
        // measure) keeps the camera at 5 fps.
        let b = gated(0.5);
        let mut taken = 0;
        for k in 0..250u64 {
            let now = t0 + Duration::from_millis(k * 40);
            b.offer_at(frame(0, k, now), now);
            if b.try_take_at(now).is_some() {
                taken += 1;
                b.note_track_motion(0, now);
                b.done(0);
            }
        }
        assert!((49..=51).contains(&taken), "{taken} frames in 10 s");
        assert_eq!(drops(&b, 0, DropReason::Idle), 0);
    }

    #[test]
    fn a_watched_still_camera_is_paced_as_active_but_reported_idle() {
        let b = gated(0.0);
        let t0 = Instant::now();
        // Still for 10 s: idle, nothing analysed after IDLE_AFTER. Then watched (the page asks
        // every 0.5 s) for 10 s: analysed at 5 fps, its scene still idle.
        let unwatched = still_camera(&b, t0, 10, 16);
        assert!(
            unwatched.iter().all(|(at, _)| *at < IDLE_AFTER),
            "{unwatched:?}"
        );
        let t1 = t0 + Duration::from_secs(10);
        let mut taken = 0;
        for k in 0..250u64 {
            let now = t1 + Duration::from_millis(k * 40);
            if k % 12 == 0 {
                b.note_watched(0, now);
            }
            b.offer_at(frame_of(0, 1000 + k, now, 16), now);
            if b.try_take_at(now).is_some() {
                taken += 1;
                b.done(0);
            }
        }
        assert!((49..=51).contains(&taken), "{taken} frames in 10 s watched");
        assert_eq!(stats_of(&b, 0).activity(), Activity::Idle);
        // Nobody watches any more: idle again after IDLE_AFTER.
        let t2 = t1 + Duration::from_secs(10);
        let after = still_camera(&b, t2, 10, 16);
        assert!(after.iter().all(|(at, _)| *at < IDLE_AFTER), "{after:?}");
    }

    #[test]
    fn a_camera_without_the_gate_never_idles() {
        let b = FrameBoard::new(
            vec![Pacing::constant(pacing_interval(5.0))],
            stats(1),
            Duration::from_secs(1),
            1,
        );
        let taken = still_camera(&b, Instant::now(), 10, 16);
        assert!((49..=51).contains(&taken.len()), "{} frames", taken.len());
        assert!(taken.iter().all(|(_, gap)| !gap));
        assert_eq!(stats_of(&b, 0).activity(), Activity::Active);
    }
}
