//! Camera ingest: one GStreamer pipeline per camera, built from a template in `pipelines/`,
//! delivering decoded frames, as the decoder gave them, to a [`FrameSink`].
//!
//! ```text
//!  rtspsrc (TCP/UDP, jitter buffer, RTCP → NTP reference meta)
//!    ! depay ! parse ! decode          (template: software = decodebin on libav, or hardware)
//!    ! 4:2:0 caps ! appsink            (I420/NV12 as decoded; max-buffers=1 drop=true)
//!        │ new-sample (GStreamer streaming thread): the buffer mapped, not copied
//!        ▼
//!  CapturedFrame {seq, frame: YuvFrame, arrived, captured_at, clock} ──▶ FrameSink::offer
//! ```
//!
//! No frame is converted here: the frame path converts the frames it analyses, at the model's
//! size, and a full-size picture is made only when one is drawn (a snapshot, a probe). The
//! software template keeps a `videoconvert` for streams libav decodes to another format; for
//! I420 and NV12 it is in passthrough.
//!
//! - [`spawn_camera`]: one OS thread per camera (`cam-{name}`, tracing span `camera{camera}`),
//!   looping `run_once` with capped exponential backoff (0.5 s ×2 up to 30 s, reset after a
//!   connection that streamed for 10 s) until the shutdown token is cancelled
//!   ([`spawn_camera_with_backoff`]: the same with another backoff, for tests that cut a camera
//!   many times). Each connection's pipeline is set to NULL and dropped before the next one is
//!   built: nothing of it stays (`tests/ingest_reconnect.rs`). Reconnects on
//!   a bus error, EOS, or no frame for `stall_timeout` (the first frame of a connection may take
//!   up to `max(stall_timeout, 10 s)`). Counts frames, reconnects and errors in
//!   [`CameraStats`](crate::health::CameraStats).
//! - [`template`]: the pipeline templates, embedded in the binary; `decoder = auto` takes the
//!   first hardware template whose elements exist, else `software`. Pure, tested from tables.
//!   A decoder `auto` chose that fails before a connection's first frame (it cannot open its
//!   device, as under the service without the board's drop-in) sends the camera to `software`
//!   until the agent restarts, with a warning.
//! - [`pipeline`]: the one builder of a camera's pipeline from its template (placeholders
//!   filled, URL and credentials set as `rtspsrc` properties, the appsink found, the software
//!   template's decodebins kept off hardware decoders), used by the agent and `camera probe`.
//! - Capture time: rtspsrc's `add-reference-timestamp-meta` puts the camera's NTP time (from
//!   its RTCP sender reports) on each buffer; it survives depayloading, parsing and decoding,
//!   so the appsink reads it directly ([`CaptureClock::Camera`]). Until the first
//!   sender report (a few seconds) frames carry the agent's arrival time
//!   ([`CaptureClock::Agent`]).
//!
//! Invariant: credentials never appear in a pipeline description, a log line or an error
//! message: rtspsrc's `user-id`/`user-pw` are set as properties, URLs are logged through
//! [`redact_url`](crate::config::redact_url), GStreamer messages through
//! [`redact_text`](crate::config::redact_text).

mod camera;
mod clock;
mod error;
mod frame;
pub mod pipeline;
pub mod template;

pub use camera::{
    BACKOFF_INITIAL, BACKOFF_MAX, FIRST_FRAME_MIN_WAIT, HEALTHY_CONNECTION, choose_decoder,
    init_gstreamer, spawn_camera, spawn_camera_with_backoff,
};
pub use clock::{Backoff, ntp_ns_to_system_time};
pub use error::{IngestError, RESOURCE_NOT_AUTHORIZED, RESOURCE_NOT_FOUND, RtspRefusal};
pub(crate) use frame::frame_from_sample;
pub use frame::{CaptureClock, CapturedFrame, FrameSink};
