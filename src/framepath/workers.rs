//! The inference threads, and the per-camera lanes that put their results back in order.
//!
//! ```text
//!  take (ticket t) ─▶ detect (pre-process + model + decode; in parallel, any order)
//!                         ─▶ Lane::finish(t): parked until t is the camera's next ticket,
//!                            then tracking, events, publication in ticket order
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::{AnalysedFrame, FrameBoard, Taken};
use crate::detect::{Detections, Detector};
use crate::events::{CameraEvents, PendingView, View, ViewPicture};
use crate::health::{CameraStats, DropReason};
use crate::ingest::CapturedFrame;
use crate::outbox::EventSink;

/// The running inference threads.
#[derive(Debug)]
pub struct WorkerPool {
    handles: Vec<JoinHandle<()>>,
    /// Per thread: when it started the frame it is working on (ms since `epoch`), 0 when it is
    /// waiting for a frame. Lets a supervisor tell a wedged thread from an idle one.
    busy_since_ms: Vec<Arc<AtomicU64>>,
    epoch: Instant,
}

impl WorkerPool {
    /// The longest time any thread has been working on its current frame (zero when all are
    /// waiting for frames).
    pub fn longest_busy(&self) -> Duration {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        self.busy_since_ms
            .iter()
            .map(|b| match b.load(Ordering::Relaxed) {
                0 => 0,
                since => now_ms.saturating_sub(since),
            })
            .max()
            .map_or(Duration::ZERO, Duration::from_millis)
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Waits for every thread to finish its current frame and exit (after the board is
    /// closed).
    pub fn join(self) {
        for handle in self.handles {
            if handle.join().is_err() {
                tracing::error!("an inference thread panicked");
            }
        }
    }
}

/// One analysed frame waiting for its turn in its camera's lane.
struct Finished {
    captured: CapturedFrame,
    detections: Detections,
    idle_gap: bool,
}

/// Items numbered 0, 1, 2, … that arrive in any order (each number once; `None` for one given
/// up), released in number order.
#[derive(Debug)]
struct Reorder<T> {
    next: u64,
    parked: BTreeMap<u64, Option<T>>,
}

impl<T> Reorder<T> {
    fn new() -> Reorder<T> {
        Reorder {
            next: 0,
            parked: BTreeMap::new(),
        }
    }

    fn push(&mut self, number: u64, item: Option<T>) {
        self.parked.insert(number, item);
    }

    /// The next item in order, if it has arrived (`Some(None)` for one given up).
    fn pop(&mut self) -> Option<Option<T>> {
        let item = self.parked.remove(&self.next)?;
        self.next += 1;
        Some(item)
    }
}

/// One camera's ordered stage: its event state, and the results that finished before an
/// earlier frame of the same camera.
///
/// Invariant: results leave in ticket order, so the tracker sees the camera's frames in order
/// and the publisher gets them in order. At most `max_in_flight - 1` results wait here.
pub struct Lane {
    events: CameraEvents,
    order: Reorder<Finished>,
    /// Who waits for a picture of the camera's next analysed frame (the `snapshot` command).
    pictures: Vec<PictureAnswer>,
    /// Who waits for a view of the camera's next analysed frame (the technician's page).
    views: Vec<ViewRequest>,
}

/// A view of a camera's next analysed frame, asked for by the technician's page
/// ([`CameraEvents::pending_view`]).
#[derive(Debug)]
pub struct ViewRequest {
    /// The picture wanted: the frame at some width, or the model's input.
    pub picture: ViewPicture,
    pub answer: ViewAnswer,
}

/// Views of one camera that may wait for its next frame at once: a page asks for one at a time,
/// so this is a dozen laptops on the same camera; each distinct picture is rendered once.
pub const MAX_VIEWS_WAITING: usize = 16;

/// Why a view was not asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewRefused {
    UnknownCamera,
    /// [`MAX_VIEWS_WAITING`] are waiting already.
    Full,
}

/// Where a view asked for goes: the view, or why there is none.
pub type ViewAnswer = tokio::sync::oneshot::Sender<Result<View, String>>;

/// Where a picture asked for goes: the JPEG, or why there is none.
pub type PictureAnswer = tokio::sync::oneshot::Sender<Result<Vec<u8>, String>>;

impl Lane {
    pub fn new(events: CameraEvents) -> Lane {
        Lane {
            events,
            order: Reorder::new(),
            pictures: Vec::new(),
            views: Vec::new(),
        }
    }
}

/// One camera's lane and counters, by slot.
#[derive(Debug)]
pub struct LaneEntry {
    pub stats: Arc<CameraStats>,
    lane: Mutex<Lane>,
}

impl LaneEntry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lane> {
        self.lane.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every camera's lane, by slot (the index of [`super::FrameBoard`]'s slot): grows when a
/// camera is added; a removed camera's lane stays, so the frames it still has in flight are
/// tracked and their events written (no event lost). Shared by the inference threads and the
/// supervisor; the lock is held only to copy an `Arc`.
#[derive(Debug, Default)]
pub struct Lanes {
    entries: RwLock<Vec<Arc<LaneEntry>>>,
}

impl Lanes {
    /// Lanes for these cameras, by slot 0, 1, 2, … in this order.
    pub fn new(lanes: Vec<(Arc<CameraStats>, Lane)>) -> Lanes {
        let all = Lanes::default();
        for (stats, lane) in lanes {
            all.add(stats, lane);
        }
        all
    }

    /// The lane of the next slot; its index.
    pub fn add(&self, stats: Arc<CameraStats>, lane: Lane) -> usize {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.push(Arc::new(LaneEntry {
            stats,
            lane: Mutex::new(lane),
        }));
        entries.len() - 1
    }

    pub fn get(&self, camera: usize) -> Option<Arc<LaneEntry>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(camera).map(Arc::clone)
    }

    /// Camera `camera` tracks and watches with `events` from its next frame on (its zones,
    /// lines, `[tracking]` or `[events]` changed): its tracks start afresh, and results
    /// waiting for their turn keep their order.
    pub fn replace_events(&self, camera: usize, events: CameraEvents) {
        if let Some(entry) = self.get(camera) {
            entry.lock().events = events;
        }
    }

    /// Asks for a picture of camera `camera`'s next analysed frame, rendered under its privacy
    /// mode ([`CameraEvents::picture_now`]) by the thread that analyses it; `answer` gets it.
    /// Nothing is rendered unless asked. False for an unknown camera.
    pub fn request_picture(&self, camera: usize, answer: PictureAnswer) -> bool {
        match self.get(camera) {
            Some(entry) => {
                entry.lock().pictures.push(answer);
                true
            }
            None => false,
        }
    }

    /// Asks for a view of camera `camera`'s next analysed frame, made by the thread that
    /// analyses it once the frame is tracked and published (its picture rendered after the
    /// lane is released). Nothing is rendered unless asked.
    ///
    /// # Errors
    /// An unknown camera; [`MAX_VIEWS_WAITING`] requests already waiting for the camera's next
    /// frame (the new one is refused: the pages that asked first get theirs).
    pub fn request_view(&self, camera: usize, request: ViewRequest) -> Result<(), ViewRefused> {
        let entry = self.get(camera).ok_or(ViewRefused::UnknownCamera)?;
        let mut lane = entry.lock();
        // A page that went away leaves its request behind: keep the list short.
        lane.views.retain(|v| !v.answer.is_closed());
        if lane.views.len() >= MAX_VIEWS_WAITING {
            return Err(ViewRefused::Full);
        }
        lane.views.push(request);
        Ok(())
    }
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("next_ticket", &self.order.next)
            .field("parked", &self.order.parked.len())
            .finish_non_exhaustive()
    }
}

/// Starts one inference thread per detector. Each takes frames from `board` until it is closed,
/// runs its own detector, and hands results, in each camera's order, to `results` without
/// blocking.
///
/// `hang_after` is a fault the shutdown tests inject (see `agent::faults`): after that many
/// frames analysed in all, every thread hangs inside its next inference.
///
/// # Errors
/// The OS refused to start a thread.
pub fn spawn_workers(
    detectors: Vec<Detector>,
    board: Arc<FrameBoard>,
    lanes: Arc<Lanes>,
    outbox: EventSink,
    results: mpsc::Sender<AnalysedFrame>,
    hang_after: Option<u64>,
) -> std::io::Result<WorkerPool> {
    let analysed = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    let mut handles = Vec::new();
    let mut busy_since_ms = Vec::new();
    for (index, detector) in detectors.into_iter().enumerate() {
        let busy = Arc::new(AtomicU64::new(0));
        busy_since_ms.push(Arc::clone(&busy));
        let context = Context {
            board: Arc::clone(&board),
            lanes: Arc::clone(&lanes),
            outbox: outbox.clone(),
            results: results.clone(),
            epoch,
            hang_after,
            analysed: Arc::clone(&analysed),
        };
        let handle = std::thread::Builder::new()
            .name(format!("infer-{index}"))
            .spawn(move || run_worker(detector, &context, &busy))?;
        handles.push(handle);
    }
    Ok(WorkerPool {
        handles,
        busy_since_ms,
        epoch,
    })
}

/// What every inference thread shares.
struct Context {
    board: Arc<FrameBoard>,
    lanes: Arc<Lanes>,
    outbox: EventSink,
    results: mpsc::Sender<AnalysedFrame>,
    epoch: Instant,
    /// The injected fault, if any, and the frames analysed so far by all threads.
    hang_after: Option<u64>,
    analysed: Arc<AtomicU64>,
}

impl Context {
    /// The injected hang: never returns once `hang_after` frames have been analysed.
    fn maybe_hang(&self) {
        if let Some(after) = self.hang_after
            && self.analysed.fetch_add(1, Ordering::Relaxed) >= after
        {
            tracing::warn!("fault injection: this inference never returns");
            loop {
                std::thread::park();
            }
        }
    }
}

/// A taken frame until its lane has it: if the thread gives up on it (an inference error, a
/// panic), dropping this still gives the lane its ticket (as nothing), so later frames of the
/// camera are not held back, and tells the board the frame is done.
struct InFlight<'a> {
    context: &'a Context,
    camera: usize,
    ticket: u64,
    finished: bool,
}

impl InFlight<'_> {
    /// Hands the result to the lane; false once the publisher has gone (shutdown).
    fn finish(mut self, result: Option<Finished>) -> bool {
        self.finished = true;
        let (open, rendering) = self.context.finish(self.camera, self.ticket, result);
        // The board hears the frame is done before the views are rendered: the camera's next
        // frame need not wait for a picture on the page.
        drop(self);
        render(rendering);
        open
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let rendering = if self.finished {
            Vec::new()
        } else {
            self.context.finish(self.camera, self.ticket, None).1
        };
        self.context.board.done(self.camera);
        render(rendering);
    }
}

/// Views taken from a lane, each with everyone who waits for it.
type Rendering = Vec<(PendingView, Vec<ViewAnswer>)>;

/// Renders the views taken from a lane (outside its lock) and answers who asked for them.
fn render(rendering: Rendering) {
    for (pending, answers) in rendering {
        let view = pending.render().map_err(|e| e.to_string());
        for answer in answers {
            let _ = answer.send(view.clone());
        }
    }
}

impl Context {
    /// Parks `result` under `ticket` in its camera's lane, then runs every result whose turn
    /// has come (this one, and any that finished before it) through tracking, events and
    /// publication. False once the publisher has gone; with the views asked for meanwhile, to
    /// be rendered once the lane is released.
    fn finish(&self, camera: usize, ticket: u64, result: Option<Finished>) -> (bool, Rendering) {
        let Some(entry) = self.lanes.get(camera) else {
            return (true, Vec::new());
        };
        // The lock orders the camera's results; tracking a frame takes well under a
        // millisecond, a snapshot a few. The page's views are rendered after it is released.
        let mut rendering = Vec::new();
        let mut lane = entry.lock();
        let Lane {
            events,
            order,
            pictures,
            views,
        } = &mut *lane;
        order.push(ticket, result);
        let mut open = true;
        while let Some(item) = order.pop() {
            if let Some(finished) = item {
                if !pictures.is_empty() {
                    let picture = events
                        .picture_now(&finished.captured.frame, &finished.detections.objects)
                        .map_err(|e| e.to_string());
                    for answer in pictures.drain(..) {
                        let _ = answer.send(picture.clone());
                    }
                }
                open &= self.publish(
                    camera,
                    &entry.stats,
                    events,
                    views,
                    finished,
                    &mut rendering,
                );
            }
        }
        drop(lane);
        (open, rendering)
    }

    /// Tracking, events and publication of one frame, in its camera's order; the views asked
    /// for, one per picture with everyone who waits for it, go to `rendering`.
    fn publish(
        &self,
        camera: usize,
        stats: &CameraStats,
        events: &mut CameraEvents,
        views: &mut Vec<ViewRequest>,
        finished: Finished,
        rendering: &mut Rendering,
    ) -> bool {
        let Finished {
            captured,
            detections,
            idle_gap,
        } = finished;
        let t_s = captured
            .arrived
            .saturating_duration_since(self.epoch)
            .as_secs_f64();
        let frame_events = events.analyse(
            &captured.frame,
            &detections.objects,
            t_s,
            captured.captured_at,
            idle_gap,
        );
        if frame_events.tracks_moved {
            self.board.note_track_motion(camera, Instant::now());
        }
        // One rendering per picture asked for: viewers of the same picture share it.
        while let Some(first) = views.pop() {
            let pending = events.pending_view(
                &captured.frame,
                &detections.objects,
                &frame_events.track_ids,
                &first.picture,
                captured.captured_at,
            );
            let (same, others): (Vec<_>, Vec<_>) = std::mem::take(views)
                .into_iter()
                .partition(|r| r.picture == first.picture);
            *views = others;
            let answers = std::iter::once(first.answer)
                .chain(same.into_iter().map(|r| r.answer))
                .collect();
            rendering.push((pending, answers));
        }
        // Events go to the outbox, which numbers and keeps them; never blocks.
        self.outbox.offer(stats.name.as_str(), frame_events.events);
        let analysed = AnalysedFrame {
            camera: captured.camera,
            seq: captured.seq,
            captured_at: captured.captured_at,
            clock: captured.clock,
            arrived: captured.arrived,
            width: captured.frame.width,
            height: captured.frame.height,
            objects: detections.objects,
            track_ids: frame_events.track_ids,
            inference: detections.timings.inference,
        };
        match self.results.try_send(analysed) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                stats.count_drop(DropReason::PublishQueueFull);
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

fn run_worker(mut detector: Detector, context: &Context, busy_since_ms: &AtomicU64) {
    while let Some(Taken {
        frame: captured,
        ticket,
        idle_gap,
    }) = context.board.take()
    {
        busy_since_ms.store(
            (context.epoch.elapsed().as_millis() as u64).max(1),
            Ordering::Relaxed,
        );
        let camera = captured.camera;
        // Whatever happens below, the lane gets its ticket and the board its `done`.
        let in_flight = InFlight {
            context,
            camera,
            ticket,
            finished: false,
        };
        let Some(lane) = context.lanes.get(camera) else {
            // Cannot happen: a slot's lane is added before its camera starts.
            tracing::error!(camera, "a frame of a camera without a lane; ignored");
            busy_since_ms.store(0, Ordering::Relaxed);
            continue;
        };
        let camera_stats = &lane.stats;
        let span = tracing::info_span!("camera", camera = %camera_stats.name);
        let _entered = span.enter();
        context.maybe_hang();
        let open = match detector.detect(captured.frame.view()) {
            Ok(detections) => {
                camera_stats.count_analysed(detections.timings.inference);
                in_flight.finish(Some(Finished {
                    captured,
                    detections,
                    idle_gap,
                }))
            }
            Err(e) => {
                camera_stats.count_error(format!("inference: {e}"));
                tracing::warn!(seq = captured.seq, error = %e, "frame not analysed");
                in_flight.finish(None)
            }
        };
        busy_since_ms.store(0, Ordering::Relaxed);
        if !open {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_leave_in_ticket_order() {
        /// (arrivals: ticket and result, what leaves after each arrival)
        type Case<'a> = (&'a [(u64, Option<&'a str>)], &'a [&'a [&'a str]]);
        let cases: [Case; 3] = [
            (&[(0, Some("a")), (1, Some("b"))], &[&["a"], &["b"]]),
            // The second thread finishes first: it waits for the first.
            (
                &[(1, Some("b")), (0, Some("a")), (2, Some("c"))],
                &[&[], &["a", "b"], &["c"]],
            ),
            // A frame given up (inference failed) does not hold the later ones back.
            (
                &[(2, Some("c")), (0, Some("a")), (3, Some("d")), (1, None)],
                &[&[], &["a"], &[], &["c", "d"]],
            ),
        ];
        for (arrivals, expected) in cases {
            let mut order = Reorder::new();
            for ((number, item), released) in arrivals.iter().zip(expected) {
                order.push(*number, *item);
                let mut out = Vec::new();
                while let Some(entry) = order.pop() {
                    out.extend(entry);
                }
                assert_eq!(&out, released, "{arrivals:?} after {number}");
            }
            assert!(order.parked.is_empty(), "{arrivals:?}");
        }
    }

    #[test]
    fn views_waiting_are_bounded_and_a_closed_page_frees_its_place() {
        let config = crate::config::parse(
            "[device]\nsite = \"s\"\nid = \"d\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n\
             [[cameras]]\nname = \"gate\"\nurl = \"rtsp://10.0.0.21/s\"\n",
            std::path::Path::new("/etc/watchpost/watchpost.toml"),
        )
        .unwrap();
        let camera = &config.cameras[0];
        let lane = Lane::new(CameraEvents::new(camera, &config.tracking, &config.events));
        let lanes = Lanes::new(vec![(
            Arc::new(CameraStats::new(camera.name.clone())),
            lane,
        )]);
        let ask = || {
            let (answer, receiver) = tokio::sync::oneshot::channel();
            let picture = ViewPicture::Frame { max_width: 640 };
            (
                lanes.request_view(0, ViewRequest { picture, answer }),
                receiver,
            )
        };
        let mut waiting: Vec<_> = (0..MAX_VIEWS_WAITING)
            .map(|_| {
                let (asked, receiver) = ask();
                assert_eq!(asked, Ok(()));
                receiver
            })
            .collect();
        assert_eq!(ask().0, Err(ViewRefused::Full));
        // A page that went away leaves a place.
        drop(waiting.pop());
        let (asked, receiver) = ask();
        assert_eq!(asked, Ok(()));
        waiting.push(receiver);
        assert_eq!(ask().0, Err(ViewRefused::Full));
        let (answer, _receiver) = tokio::sync::oneshot::channel();
        let picture = ViewPicture::Frame { max_width: 640 };
        assert_eq!(
            lanes.request_view(1, ViewRequest { picture, answer }),
            Err(ViewRefused::UnknownCamera)
        );
    }
}
