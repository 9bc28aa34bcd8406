//! Camera probing for the technician: does this camera work from this box, what does it send,
//! and what does it see? Used by `watchpost camera probe`, `watchpost camera draw` and the
//! technician's page ("Add a camera").
//!
//! ```text
//!  ProbeTarget (configured camera | URL) ─▶ target::resolve (DNS, with timeout)
//!      ─▶ target::connect (TCP, refused vs. silent) ─▶ stream: the camera's ingest template
//!      (rtspsrc … ! appsink) ─▶ first frame, `seconds` of decoding ─▶ StreamReport
//!                  │ anything wrong: an Observation ─▶ diagnose ─▶ Failure {kind, one line}
//!  draw: frame + zones + lines (+ boxes) ─▶ annotated JPEG, direction arrows that tell the truth
//! ```
//!
//! - [`probe_stream`] builds the pipeline exactly as `ingest` does for the camera (same
//!   template choice, placeholders, credentials set as properties) and pulls from its appsink
//!   on the calling thread; it adds only observers (rtspsrc's `select-stream` to learn what the
//!   SDP offers, a pad probe counting decoded frames and their timestamps).
//! - [`diagnose`] is pure: the pre-check results, the SDP's streams, `missing-plugin`
//!   messages and the first bus error map to one [`Failure`] (DNS, refused, timeout, 401, 404,
//!   no video, unsupported codec, …), tested from a table.
//! - [`draw`]: the camera's zones and lines (and detected boxes) on a frame.
//! - `report`: how a result is told, the same for `camera probe` and the technician's page
//!   ("Add a camera"): [`StreamReport::facts`], [`Failure::report`].
//!
//! Invariant: no message, log line or report contains a password: URLs are kept without
//! credentials ([`ProbeTarget::url`]), credentials go to rtspsrc as properties, GStreamer text
//! is passed through [`redact_text`](crate::config::redact_text).

mod diagnose;
pub mod draw;
mod report;
mod stream;
mod target;

pub use diagnose::{
    BusError, DnsCheck, ErrorDomain, Failure, FailureKind, Observation, OfferedStream, TcpCheck,
    TemplateInfo, codec_name, decoder_hint, diagnose,
};
pub use report::{FailureReport, fact_line};
pub use stream::{ProbeOptions, StreamReport, probe_stream};
pub use target::{Endpoint, ProbeTarget, connect, resolve};
