//! One camera: a dedicated OS thread running [`Camera::run`], a loop around
//! [`Camera::run_once`] (build the pipeline, play it, deliver frames until an error, the end of
//! the stream, a stall or shutdown), with capped exponential backoff between attempts.
//!
//! ```text
//!  run()  ─▶ choose template (once; logged)
//!    loop:  Connecting ─▶ run_once ─▶ (error | EOS | stall) ─▶ Retrying, wait backoff ─┐
//!             ▲                 └── first frame: Streaming                            │
//!             └──────────────────────────────────────────────────────────────────────┘
//!    shutdown (checked every 100 ms, in every wait) ─▶ pipeline NULL ─▶ Stopped
//! ```
//!
//! Frames are handed over in the appsink's `new-sample` callback, on a GStreamer streaming
//! thread: the decoder's YUV buffer is mapped (strides and plane offsets honoured) and wrapped,
//! without a copy, in a [`YuvFrame`](crate::imaging::YuvFrame), timestamped, offered to the
//! [`FrameSink`]. The callback never panics: a sample it
//! cannot read posts an error on the bus (which ends the connection) and returns
//! `FlowError::Error`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio_util::sync::CancellationToken;
use tracing::Span;

use super::clock::Backoff;
use super::error::IngestError;
use super::error::RtspRefusal;
use super::frame::{CaptureClock, CapturedFrame, FrameSink, frame_from_sample};
use super::pipeline::{self, Stream};
use super::template::{
    Choice, DecoderKind, SOFTWARE, Template, bundled_templates, is_hardware_decoder,
};
use crate::config::{CameraConfig, DecoderChoice};
use crate::config::{redact_text, redact_url};
use crate::health::{CameraState, CameraStats};

/// First wait after a failed connection.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// Longest wait between two attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection that delivered frames for this long resets the backoff.
pub const HEALTHY_CONNECTION: Duration = Duration::from_secs(10);
/// The first frame of a connection may take this long even when `stall_timeout` is shorter
/// (RTSP handshake plus waiting for the first keyframe).
pub const FIRST_FRAME_MIN_WAIT: Duration = Duration::from_secs(10);
/// How often the camera thread looks at the bus, the stall clock and the shutdown token.
const POLL: Duration = Duration::from_millis(100);
/// Longest error message kept in the stats.
const MAX_MESSAGE_CHARS: usize = 300;

/// Initialises GStreamer (once per process; later calls are cheap).
///
/// # Errors
/// [`IngestError::Init`] when GStreamer cannot be loaded (not retryable).
pub fn init_gstreamer() -> Result<(), IngestError> {
    gst::init().map_err(|e| IngestError::Init(e.to_string()))
}

/// The decoder template `camera` would use on this machine, and why: for checking the
/// configuration at start-up ([`spawn_camera`] chooses the same way).
///
/// # Errors
/// An unknown template name or missing elements (not retryable).
pub fn choose_decoder(camera: &CameraConfig) -> Result<Choice<'static>, IngestError> {
    init_gstreamer()?;
    pipeline::choose(&camera.decoder).map_err(|e| IngestError::pipeline(&camera.name, e))
}

/// Starts camera `index` on a thread named `cam-{name}`. The thread runs until `shutdown` is
/// cancelled (or a non-retryable error such as a missing decoder, which it logs and records in
/// `stats`), leaving `stats` in [`CameraState::Stopped`].
///
/// # Errors
/// The thread cannot be spawned.
pub fn spawn_camera(
    index: usize,
    config: CameraConfig,
    sink: Arc<dyn FrameSink>,
    stats: Arc<CameraStats>,
    shutdown: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let backoff = Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX);
    spawn_camera_with_backoff(index, config, sink, stats, shutdown, backoff)
}

/// [`spawn_camera`] with another wait between attempts than the agent's ([`BACKOFF_INITIAL`]
/// up to [`BACKOFF_MAX`]): for tests that cut a camera many times and cannot wait seconds for
/// each reconnection. Everything else is the same camera loop.
///
/// # Errors
/// The thread cannot be spawned.
pub fn spawn_camera_with_backoff(
    index: usize,
    config: CameraConfig,
    sink: Arc<dyn FrameSink>,
    stats: Arc<CameraStats>,
    shutdown: CancellationToken,
    backoff: Backoff,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("cam-{}", config.name))
        .spawn(move || {
            let span = tracing::info_span!("camera", camera = %config.name);
            let _entered = span.enter();
            let camera = Camera {
                index,
                config,
                sink,
                stats,
                shutdown,
                span: span.clone(),
                seq: Arc::new(AtomicU64::new(0)),
                backoff,
            };
            camera.run();
        })
}

struct Camera {
    index: usize,
    config: CameraConfig,
    sink: Arc<dyn FrameSink>,
    stats: Arc<CameraStats>,
    shutdown: CancellationToken,
    span: Span,
    /// Per camera, across connections.
    seq: Arc<AtomicU64>,
    /// The wait between attempts, as it starts.
    backoff: Backoff,
}

/// Why a connection ended (other than shutdown).
struct Ended {
    error: IngestError,
    /// From the first to the last frame of the connection, if it delivered any.
    streamed: Option<Duration>,
    /// The error came from a hardware decoder element.
    hardware_decoder_failed: bool,
}

/// Whether a camera whose connection ended this way should leave its hardware decoder for
/// software: only a decoder chosen by `auto` (a named template is the technician's choice),
/// only when that decoder itself failed, and only before the connection's first frame (a
/// decoder that cannot open its device, as under the service without the board's drop-in, or
/// that refuses the stream's profile). A decoder that worked and then failed is retried like
/// any other error.
fn falls_back_to_software(
    choice: &DecoderChoice,
    kind: DecoderKind,
    streamed: bool,
    hardware_decoder_failed: bool,
) -> bool {
    matches!(choice, DecoderChoice::Auto)
        && kind == DecoderKind::Hardware
        && !streamed
        && hardware_decoder_failed
}

impl Camera {
    fn run(self) {
        match choose_decoder(&self.config) {
            Ok(choice) => {
                tracing::info!(
                    decoder = %choice.template.name,
                    reason = %choice.reason,
                    url = %redact_url(&self.config.url),
                    "decoder template chosen"
                );
                self.stats.set_decoder(choice.template.name.clone());
                self.run_with(choice.template);
            }
            Err(error) => self.give_up(&error),
        }
        self.stats.set_state(CameraState::Stopped);
        tracing::info!("camera stopped");
    }

    fn run_with(&self, mut template: &Template) {
        let mut backoff = self.backoff.clone();
        while !self.shutdown.is_cancelled() {
            self.stats.set_state(CameraState::Connecting);
            let Some(ended) = self.run_once(template) else {
                return;
            };
            if falls_back_to_software(
                &self.config.decoder,
                template.kind,
                ended.streamed.is_some(),
                ended.hardware_decoder_failed,
            ) && let Some(software) = software_template()
            {
                let message = truncate(&ended.error.to_string(), MAX_MESSAGE_CHARS);
                self.stats.count_error(message.clone());
                tracing::warn!(
                    decoder = %template.name,
                    error = %message,
                    "the hardware decoder failed before the first frame: this camera is decoded \
                     in software until the agent restarts (give the service the board's \
                     devices, see the README's \"Hardware decoders\", or set decoder = \
                     \"software\")"
                );
                self.stats
                    .set_decoder(format!("{} ({} failed)", software.name, template.name));
                template = software;
                backoff.reset();
                continue;
            }
            if !ended.error.is_retryable() {
                self.give_up(&ended.error);
                return;
            }
            if ended.streamed.is_some_and(|d| d >= HEALTHY_CONNECTION) {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            let message = truncate(&ended.error.to_string(), MAX_MESSAGE_CHARS);
            self.stats.set_state(CameraState::Retrying);
            self.stats.count_error(message.clone());
            self.stats.count_reconnect();
            tracing::warn!(
                error = %message,
                retry_in = %humantime::format_duration(delay),
                "connection ended; reconnecting"
            );
            if sleep_unless_cancelled(&self.shutdown, delay) {
                return;
            }
        }
    }

    fn give_up(&self, error: &IngestError) {
        let message = truncate(&error.to_string(), MAX_MESSAGE_CHARS);
        tracing::error!(error = %message, "camera disabled: retrying cannot help");
        self.stats.count_error(message);
    }

    /// One connection: `None` when shutdown was requested, else why it ended. The pipeline is
    /// always set to NULL before returning.
    fn run_once(&self, template: &Template) -> Option<Ended> {
        let connection = Arc::new(Connection::new());
        let pipeline = match self.build(template, &connection) {
            Ok(pipeline) => pipeline,
            Err(error) => {
                return Some(Ended {
                    error,
                    streamed: None,
                    hardware_decoder_failed: false,
                });
            }
        };
        let ended = self.drive(&pipeline, &connection);
        if pipeline.set_state(gst::State::Null).is_err() {
            tracing::warn!("the pipeline did not stop cleanly");
        }
        ended
    }

    /// Plays `pipeline` until an error, EOS, a stall or shutdown.
    fn drive(&self, pipeline: &gst::Pipeline, connection: &Connection) -> Option<Ended> {
        let camera = self.config.name.to_string();
        let ended_by = |error, msg: Option<&gst::Message>| Ended {
            error,
            streamed: connection.streamed(),
            hardware_decoder_failed: msg.is_some_and(from_hardware_decoder),
        };
        let ended = |error| ended_by(error, None);
        let Some(bus) = pipeline.bus() else {
            return Some(ended(IngestError::Build {
                camera,
                template: String::new(),
                reason: "the pipeline has no bus".to_owned(),
            }));
        };
        if pipeline.set_state(gst::State::Playing).is_err() {
            let msg = bus.pop_filtered(&[gst::MessageType::Error]);
            let error = msg
                .as_ref()
                .and_then(|msg| self.error_from(msg, false))
                .unwrap_or_else(|| IngestError::Stream {
                    camera: camera.clone(),
                    element: pipeline.name().to_string(),
                    message: "cannot start playing".to_owned(),
                });
            return Some(ended_by(error, msg.as_ref()));
        }
        let first_frame_wait = self.config.stall_timeout.max(FIRST_FRAME_MIN_WAIT);
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            let wanted = [
                gst::MessageType::Error,
                gst::MessageType::Eos,
                gst::MessageType::Warning,
            ];
            if let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(POLL.as_millis() as u64),
                &wanted,
            ) {
                match msg.view() {
                    gst::MessageView::Eos(_) => {
                        return Some(ended(IngestError::EndOfStream { camera }));
                    }
                    gst::MessageView::Error(_) => {
                        let streamed = connection.frames.load(Ordering::Relaxed) > 0;
                        if let Some(error) = self.error_from(&msg, streamed) {
                            return Some(ended_by(error, Some(&msg)));
                        }
                    }
                    gst::MessageView::Warning(warning) => tracing::debug!(
                        element = %source_name(&msg),
                        warning = %redact_text(&warning.error().to_string()),
                        "pipeline warning"
                    ),
                    _ => {}
                }
            }
            let (silent_for, limit) = match connection.since_last_frame() {
                Some(silent_for) => (silent_for, self.config.stall_timeout),
                None => (connection.started.elapsed(), first_frame_wait),
            };
            if silent_for > limit {
                return Some(ended(IngestError::Stalled {
                    camera,
                    timeout: limit,
                }));
            }
        }
    }

    /// An [`IngestError::Stream`] from a bus error message (credential-free); `streamed`:
    /// whether the connection has delivered a frame.
    fn error_from(&self, msg: &gst::Message, streamed: bool) -> Option<IngestError> {
        let gst::MessageView::Error(err) = msg.view() else {
            return None;
        };
        let error = err.error();
        let debug = err.debug().map(|d| d.to_string()).unwrap_or_default();
        // A camera's RTSP refusal in the words `camera probe` uses ("401: wrong user or
        // password"), from GStreamer's error domain and code.
        let resource_code = error.is::<gst::ResourceError>().then(|| error.code());
        let text = format!("{} {debug}", error.message());
        let credentials = Stream::of_camera(&self.config).has_credentials();
        let mut message = match RtspRefusal::of(resource_code, &text, !streamed) {
            Some(refusal) => refusal.explain(credentials, url_path(&self.config.url)),
            None => error.to_string(),
        };
        if let Some(detail) = error_detail(&debug) {
            message = format!("{message} ({detail})");
        }
        Some(IngestError::Stream {
            camera: self.config.name.to_string(),
            element: source_name(msg),
            message: truncate(&redact_text(&message), MAX_MESSAGE_CHARS),
        })
    }

    /// Builds the camera's pipeline from `template` and installs the appsink callback.
    fn build(
        &self,
        template: &Template,
        connection: &Arc<Connection>,
    ) -> Result<gst::Pipeline, IngestError> {
        let built = pipeline::build(
            template,
            &Stream::of_camera(&self.config),
            &format!("cam-{}", self.config.name),
        )
        .map_err(|e| IngestError::pipeline(&self.config.name, e))?;
        let delivery = Delivery {
            camera: self.index,
            sink: Arc::clone(&self.sink),
            stats: Arc::clone(&self.stats),
            seq: Arc::clone(&self.seq),
            connection: Arc::clone(connection),
            span: self.span.clone(),
        };
        built.appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |appsink| {
                    let _entered = delivery.span.enter();
                    delivery.on_sample(appsink)
                })
                .build(),
        );
        Ok(built.pipeline)
    }
}

/// Frame timing of one connection, shared with the appsink callback.
struct Connection {
    started: Instant,
    frames: AtomicU64,
    /// Nanoseconds after `started`; `u64::MAX` = none yet.
    first_frame_ns: AtomicU64,
    last_frame_ns: AtomicU64,
}

impl Connection {
    fn new() -> Connection {
        Connection {
            started: Instant::now(),
            frames: AtomicU64::new(0),
            first_frame_ns: AtomicU64::new(u64::MAX),
            last_frame_ns: AtomicU64::new(u64::MAX),
        }
    }

    /// Records a frame; true for the connection's first one.
    fn record_frame(&self, at: Instant) -> bool {
        let ns = at.saturating_duration_since(self.started).as_nanos() as u64;
        self.last_frame_ns.store(ns, Ordering::Relaxed);
        let first = self.frames.fetch_add(1, Ordering::Relaxed) == 0;
        if first {
            self.first_frame_ns.store(ns, Ordering::Relaxed);
        }
        first
    }

    fn since_last_frame(&self) -> Option<Duration> {
        match self.last_frame_ns.load(Ordering::Relaxed) {
            u64::MAX => None,
            ns => Some(
                self.started
                    .elapsed()
                    .saturating_sub(Duration::from_nanos(ns)),
            ),
        }
    }

    fn streamed(&self) -> Option<Duration> {
        let first = self.first_frame_ns.load(Ordering::Relaxed);
        let last = self.last_frame_ns.load(Ordering::Relaxed);
        (first != u64::MAX && last != u64::MAX)
            .then(|| Duration::from_nanos(last.saturating_sub(first)))
    }
}

/// What the appsink callback needs. Holds no pipeline reference.
struct Delivery {
    camera: usize,
    sink: Arc<dyn FrameSink>,
    stats: Arc<CameraStats>,
    seq: Arc<AtomicU64>,
    connection: Arc<Connection>,
    span: Span,
}

impl Delivery {
    fn on_sample(&self, appsink: &gst_app::AppSink) -> Result<gst::FlowSuccess, gst::FlowError> {
        let sample = appsink
            .pull_sample()
            .map_err(|_| gst::FlowError::Flushing)?;
        let arrived = Instant::now();
        let (frame, camera_time) = match frame_from_sample(&sample) {
            Ok(v) => v,
            Err(reason) => {
                gst::element_error!(
                    appsink,
                    gst::StreamError::Format,
                    ("cannot read a decoded frame: {}", reason)
                );
                return Err(gst::FlowError::Error);
            }
        };
        let now = SystemTime::now();
        let (captured_at, clock) = match camera_time {
            Some(t) => (t, CaptureClock::Camera),
            None => (now, CaptureClock::Agent),
        };
        if self.connection.record_frame(arrived) {
            self.stats.set_state(CameraState::Streaming);
            tracing::info!(width = frame.width, height = frame.height, "streaming");
        }
        self.stats.count_frame_in(now);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.sink.offer(CapturedFrame {
            camera: self.camera,
            seq,
            frame,
            arrived,
            captured_at,
            clock,
        });
        Ok(gst::FlowSuccess::Ok)
    }
}

/// The software template, bundled with the binary.
fn software_template() -> Option<&'static Template> {
    bundled_templates()
        .ok()?
        .iter()
        .find(|template| template.name == SOFTWARE)
}

/// Whether a bus message was posted by a hardware decoder element.
fn from_hardware_decoder(msg: &gst::Message) -> bool {
    msg.src()
        .and_then(|src| src.downcast_ref::<gst::Element>())
        .and_then(|element| element.factory())
        .is_some_and(|factory| is_hardware_decoder(factory.name().as_str(), factory.klass()))
}

/// The name of the element that posted `msg`.
fn source_name(msg: &gst::Message) -> String {
    msg.src()
        .map(|s| s.name().to_string())
        .unwrap_or_else(|| "pipeline".to_owned())
}

/// The path of a credential-free URL (`/stream1` of `rtsp://10.0.0.21:554/stream1`).
fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme.find('/').map_or("", |i| &after_scheme[i..])
}

/// The useful part of a GStreamer debug string: its last line, unless that is only a source
/// location (`../gst/rtsp/gstrtspsrc.c(6012): gst_rtspsrc_send (): /GstPipeline:p/GstRTSPSrc:src:`).
pub(crate) fn error_detail(debug: &str) -> Option<&str> {
    let last = debug.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let is_location = last.ends_with(':') && (last.contains(".c(") || last.contains("/Gst"));
    (!is_location).then_some(last)
}

/// At most `max_chars` characters of `text` (an ellipsis marks the cut).
fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Sleeps `duration` in short steps; true if `shutdown` was cancelled meanwhile.
fn sleep_unless_cancelled(shutdown: &CancellationToken, duration: Duration) -> bool {
    let deadline = Instant::now() + duration;
    loop {
        if shutdown.is_cancelled() {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_hardware_decoder_falls_back_to_software_only_when_auto_chose_it() {
        use DecoderKind::{Hardware, Software};
        let auto = DecoderChoice::Auto;
        let named = DecoderChoice::Named("v4l2".to_owned());
        // (choice, kind of the template in use, streamed, the decoder failed, falls back)
        let cases = [
            (&auto, Hardware, false, true, true),
            // A decoder that delivered frames and then failed is retried as it is.
            (&auto, Hardware, true, true, false),
            // Not the decoder: the network, the camera, the credentials.
            (&auto, Hardware, false, false, false),
            // Already software.
            (&auto, Software, false, true, false),
            // The technician named the template: theirs to change.
            (&named, Hardware, false, true, false),
        ];
        for (choice, kind, streamed, failed, expected) in cases {
            assert_eq!(
                falls_back_to_software(choice, kind, streamed, failed),
                expected,
                "{choice:?} {kind:?} streamed={streamed} failed={failed}"
            );
        }
        let software = software_template().expect("the software template is bundled");
        assert_eq!(software.kind, Software);
    }

    #[test]
    fn errors_of_software_elements_are_not_hardware_decoder_failures() {
        init_gstreamer().unwrap();
        for factory in ["avdec_h264", "rtspsrc", "videoconvert"] {
            let element = gst::ElementFactory::make(factory).build().unwrap();
            let msg = gst::message::Error::builder(gst::CoreError::Failed, "test")
                .src(&element)
                .build();
            assert!(!from_hardware_decoder(&msg), "{factory}");
        }
        let msg = gst::message::Error::builder(gst::CoreError::Failed, "no source").build();
        assert!(!from_hardware_decoder(&msg));
    }

    #[test]
    fn extracts_error_details() {
        let cases = [
            (
                "../gst/rtsp/gstrtspsrc.c(8216): gst_rtspsrc_open (): /GstPipeline:cam-a/GstRTSPSrc:src:\nFailed to connect. (Generic error)",
                Some("Failed to connect. (Generic error)"),
            ),
            (
                "../gst/rtsp/gstrtspsrc.c(6012): gst_rtspsrc_send (): /GstPipeline:cam-a/GstRTSPSrc:src:",
                None,
            ),
            (
                "streaming stopped, reason not-linked (-1)",
                Some("streaming stopped, reason not-linked (-1)"),
            ),
            ("", None),
        ];
        for (debug, expected) in cases {
            assert_eq!(error_detail(debug), expected, "{debug}");
        }
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("ééé", 2), "éé…");
    }

    #[test]
    fn connection_timing() {
        let c = Connection::new();
        assert_eq!(c.since_last_frame(), None);
        assert_eq!(c.streamed(), None);
        assert!(c.record_frame(c.started + Duration::from_millis(10)));
        assert!(!c.record_frame(c.started + Duration::from_millis(30)));
        assert_eq!(c.streamed(), Some(Duration::from_millis(20)));
        assert!(c.since_last_frame().is_some());
    }
}
