//! The bounded-latency frame path: one-slot mailboxes per camera, inference threads taking the
//! newest frame of the next due camera in fair rotation, results put back in each camera's
//! order and handed to the publisher.
//!
//! ```text
//!  camera 0 ─offer─▶ [slot 0] ┐  (motion looked at ≤ 10×/s on the Y plane: gate)
//!  camera 1 ─offer─▶ [slot 1] ├─ FrameBoard::take (fair rotation; detect_fps, or idle_fps
//!  camera 2 ─offer─▶ [slot 2] ┘   while idle; max_frame_age) ─▶ N inference threads, each:
//!                                  pre-process (YUV → model input) + model + decode, any order
//!                                         ─▶ the camera's Lane, in ticket order: tracking,
//!                                            events ─▶ outbox, try_send ─▶ publisher
//! ```
//!
//! Cameras come and go while the agent runs (a reload, [`crate::agent::Control`]): a camera's
//! index ([`AnalysedFrame::camera`], [`crate::ingest::CapturedFrame::camera`]) is its slot id
//! on the board, the same in [`Lanes`] and [`crate::health::Cameras`]; an added camera gets
//! the next id ([`FrameBoard::add_camera`]), a removed one's slot is retired
//! ([`FrameBoard::retire`]) and never reused, so the hot path stays a plain index.
//!
//! Invariants:
//! - Nothing queues: each camera has exactly one slot (a retired slot takes no frames); a newer frame replaces the older one and
//!   the replaced frame is counted as a drop: [`DropReason::RateLimit`] when its camera was not
//!   yet due under `detect_fps`, [`DropReason::Idle`] when it was not due because the camera
//!   idles, [`DropReason::Busy`] when it was due but no thread could take it. So when the model
//!   is slower than the cameras, frames are skipped, never delayed, and latency stays flat.
//! - Frames reach the slots as the decoder gave them (YUV, not copied, not converted); only the
//!   frames taken are converted, once, at the model's size, by the thread that analyses them.
//! - A frame older than `max_frame_age` when a thread could take it is dropped
//!   ([`DropReason::TooOld`]), never analysed.
//! - Inference runs on dedicated OS threads, never on an async worker; each thread owns its own
//!   `Detector` (ONNX Runtime sessions are used by one thread at a time, one core each).
//! - A lone camera keeps every thread busy: up to one frame of a camera per thread is analysed
//!   at once ([`FrameBoard::new`]'s `max_in_flight`), each with a ticket; its camera's
//!   [`Lane`] tracks and publishes the results strictly in ticket order, so the tracker sees a
//!   camera's frames in order and `seq` rises in every camera's `detections`.
//! - Handing a result to the publisher never blocks: when its bounded channel is full the
//!   result is dropped and counted ([`DropReason::PublishQueueFull`]). Events go another way:
//!   to the outbox's inbox ([`crate::outbox::EventSink`]), which never blocks either and is
//!   not affected by a full results channel.
//! - Cameras are served in fair rotation: after a thread takes camera `i`, the next search
//!   starts at `i + 1`, so a busy camera cannot starve the others (an added camera joins the
//!   rotation at the end).
//! - A camera changed by a reload keeps its slot and its ticket order: new pacing
//!   ([`FrameBoard::set_pacing`]) or new tracking state ([`Lanes::replace_events`]) applies
//!   from its next frame; a removed camera's frames in flight still go through its lane, in
//!   order, and their events reach the outbox.
//! - Pictures for people cost nothing unless asked for: a `snapshot` command or the
//!   technician's page ([`Views`]) leaves a request in the camera's lane, and the thread that
//!   analyses its next frame renders it once, after tracking (a page's view: once per kind of
//!   picture, after the frame's detections are published and the lane released, from a frame
//!   shrunk to about the size shown); a watched still camera is paced as active meanwhile
//!   ([`FrameBoard::note_watched`]), its scene still reported idle.
//! - The motion gate ([`gate`]): a camera where nothing has moved for [`gate::IDLE_AFTER`] (no
//!   motion in the picture, no track moving) is analysed at `idle_fps`; motion makes the very
//!   frame that shows it due at once. Its tracks are held, not aged, across idle time.

mod board;
pub mod gate;
mod workers;

pub use board::{FrameBoard, MOTION_CHECK_INTERVAL, Taken};
pub use gate::{Pacing, pacing_interval};
pub use workers::{
    Lane, LaneEntry, Lanes, MAX_VIEWS_WAITING, ViewRefused, ViewRequest, WorkerPool, spawn_workers,
};

use std::time::{Duration, Instant, SystemTime};

use crate::detect::Object;
use crate::events::ViewPicture;
use crate::ingest::CaptureClock;

#[cfg(doc)]
use crate::health::DropReason;

/// The result of analysing one frame, on its way to the publisher.
#[derive(Clone, Debug)]
pub struct AnalysedFrame {
    /// The camera's slot id (see the module docs).
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
    /// Per object (same order): the id of its confirmed track.
    pub track_ids: Vec<Option<u64>>,
    pub inference: Duration,
}

/// The technician's page's way into the frame path: a view of a camera's next analysed frame,
/// made only when asked.
#[derive(Clone, Debug)]
pub struct Views {
    board: std::sync::Arc<FrameBoard>,
    lanes: std::sync::Arc<Lanes>,
    /// The model's input, for views of what the model sees.
    model_input: crate::detect::preprocess::InputSpec,
}

impl Views {
    pub fn new(
        board: std::sync::Arc<FrameBoard>,
        lanes: std::sync::Arc<Lanes>,
        model_input: crate::detect::preprocess::InputSpec,
    ) -> Views {
        Views {
            board,
            lanes,
            model_input,
        }
    }

    /// Asks for a view of camera `camera`'s next analysed frame: the frame no wider than
    /// `max_width`, or with `model_input` what the model sees of it; a still camera is woken
    /// meanwhile ([`FrameBoard::note_watched`]).
    ///
    /// # Errors
    /// An unknown camera, or too many views waiting ([`Lanes::request_view`]).
    pub fn request(
        &self,
        camera: usize,
        max_width: u32,
        model_input: bool,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<crate::events::View, String>>, ViewRefused>
    {
        let (answer, receiver) = tokio::sync::oneshot::channel();
        let picture = if model_input {
            ViewPicture::ModelInput(self.model_input.clone())
        } else {
            ViewPicture::Frame { max_width }
        };
        self.lanes
            .request_view(camera, ViewRequest { picture, answer })?;
        self.board.note_watched(camera, std::time::Instant::now());
        Ok(receiver)
    }
}
