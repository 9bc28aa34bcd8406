//! The GStreamer side of a probe: the camera's own pipeline template (as `ingest` builds it), an
//! appsink pulled from the calling thread, and everything seen on the way collected into an
//! [`Observation`] for [`diagnose`].
//!
//! ```text
//!  DNS lookup ─▶ TCP connect ─▶ choose template ─▶ rtspsrc … ! appsink (template, as ingest)
//!                                                    │ select-stream: what the SDP offers
//!                                                    │ pad probe on appsink: count, PTS
//!                                                    ▼
//!            first frame (within timeout) ─▶ decode `seconds` ─▶ newest frame ─▶ NULL
//! ```

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::diagnose::{
    BusError, ErrorDomain, Failure, FailureKind, Observation, OfferedStream, TemplateInfo,
    codec_name, diagnose,
};
use super::target::{Endpoint, ProbeTarget, connect, resolve};
use crate::config::redact_text;
use crate::imaging::YuvFrame;
use crate::ingest::pipeline::{self, PipelineError};
use crate::ingest::template::Template;
use crate::ingest::{frame_from_sample, init_gstreamer};

/// How long to look at a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Decode this long after the first frame (zero: stop at the first frame).
    pub seconds: Duration,
    /// Each step (DNS, TCP, the first frame after the RTSP request, then each next frame) may
    /// take this long.
    pub timeout: Duration,
}

impl ProbeOptions {
    /// Seconds decoded after the first frame unless asked otherwise (`camera probe --seconds`,
    /// the page's probe): enough to measure the frame rate.
    pub const DEFAULT_SECONDS: u64 = 3;
    /// Seconds each step may take unless asked otherwise (`--timeout-s`, the page's probe).
    pub const DEFAULT_TIMEOUT_S: u64 = 10;

    /// [`Self::DEFAULT_SECONDS`] and [`Self::DEFAULT_TIMEOUT_S`].
    pub const DEFAULT: ProbeOptions = ProbeOptions {
        seconds: Duration::from_secs(Self::DEFAULT_SECONDS),
        timeout: Duration::from_secs(Self::DEFAULT_TIMEOUT_S),
    };
}

/// What a working stream looks like.
#[derive(Clone, Debug)]
pub struct StreamReport {
    /// The decoder template used and why.
    pub decoder: String,
    pub decoder_reason: String,
    /// `H.264`, `H.265`, `MJPEG`, … (from the SDP); `None` if the SDP did not say.
    pub codec: Option<String>,
    pub width: usize,
    pub height: usize,
    /// Frames per second over the decoded frames' timestamps (`None` with fewer than 2).
    pub fps_measured: Option<f64>,
    /// The rate the stream announces (decoded caps, else the SDP's `a=framerate`), if any.
    pub fps_advertised: Option<f64>,
    /// From the RTSP request (pipeline set to PLAYING) to the first decoded frame.
    pub first_frame: Duration,
    /// Frames decoded.
    pub frames: u64,
    /// From the first to the last decoded frame.
    pub decoded_for: Duration,
    /// The newest decoded frame, as the decoder gave it.
    pub frame: YuvFrame,
}

/// Connects to `target` as the agent would, decodes for `options.seconds`, and reports; or
/// says, in one line, why it could not.
///
/// # Errors
/// A [`Failure`] whose message a technician can act on (see [`diagnose`]).
pub fn probe_stream(target: &ProbeTarget, options: &ProbeOptions) -> Result<StreamReport, Failure> {
    let endpoint = Endpoint::parse(&target.url)
        .map_err(|e| Failure::new(FailureKind::Stream, format!("the camera URL {e}")))?;
    let mut seen = Observation::new(
        &endpoint.host,
        &endpoint.address(),
        &endpoint.path,
        options.timeout,
    );
    seen.transport = target.transport;
    seen.credentials_given = target.has_credentials();

    let (dns, addresses) = resolve(&endpoint, options.timeout);
    seen.dns = dns;
    if addresses.is_empty() {
        return Err(diagnose(&seen));
    }
    let tcp = connect(&addresses, options.timeout);
    tracing::debug!(address = %seen.address, ?tcp, "TCP pre-check");
    let connected = tcp == super::diagnose::TcpCheck::Connected;
    seen.tcp = Some(tcp);
    if !connected {
        return Err(diagnose(&seen));
    }

    init_gstreamer().map_err(|e| Failure::new(FailureKind::Decoder, e.to_string()))?;
    let choice = pipeline::choose(&target.decoder)
        .map_err(|e| Failure::new(FailureKind::Decoder, e.to_string()))?;
    let template = choice.template;
    tracing::debug!(decoder = %template.name, reason = %choice.reason, "decoder template chosen");
    seen.template = Some(TemplateInfo {
        name: template.name.clone(),
        codecs: template.codecs.clone(),
        uses_decodebin: template.requires.iter().any(|e| e == "decodebin"),
    });

    let probe = Probe::build(target, template)?;
    let outcome = probe.run(options, &mut seen);
    if probe.pipeline.set_state(gst::State::Null).is_err() {
        tracing::debug!("the probe pipeline did not stop cleanly");
    }
    let offered = probe.offered();
    seen.offered = offered.iter().map(|(stream, _)| stream.clone()).collect();
    let timing = probe.timing();
    seen.frames = timing.frames;
    match outcome {
        Some(sample) if seen.error.is_none() && !seen.timed_out => {
            let video = offered.iter().find(|(s, _)| s.media == "video");
            // As ingest reads it: the decoder's planes, not converted.
            let (frame, _camera_time) = frame_from_sample(&sample).map_err(|reason| {
                Failure::new(
                    FailureKind::Stream,
                    format!("cannot read a decoded frame: {reason}"),
                )
            })?;
            let caps_fps = caps_fps(&sample);
            Ok(StreamReport {
                decoder: template.name.clone(),
                decoder_reason: choice.reason.clone(),
                codec: video.map(|(s, _)| codec_name(&s.encoding)),
                width: frame.width,
                height: frame.height,
                fps_measured: timing.fps(),
                fps_advertised: caps_fps.or_else(|| video.and_then(|(_, fps)| *fps)),
                first_frame: timing.first_arrival.map_or(Duration::ZERO, |t| {
                    t.saturating_duration_since(probe.started)
                }),
                frames: timing.frames,
                decoded_for: timing.decoded_for(),
                frame,
            })
        }
        _ => Err(diagnose(&seen)),
    }
}

/// One stream of the SDP and its `a=framerate`.
type Offer = (OfferedStream, Option<f64>);

/// One probe pipeline and what its callbacks recorded.
struct Probe {
    pipeline: gst::Pipeline,
    appsink: gst_app::AppSink,
    /// Streams of the SDP, with their `a=framerate`.
    offered: Arc<Mutex<Vec<Offer>>>,
    timing: Arc<Mutex<Timing>>,
    started: Instant,
}

/// Decoded frames as they reach the appsink (counted before its one-frame queue drops any).
#[derive(Clone, Debug, Default)]
struct Timing {
    frames: u64,
    first_arrival: Option<Instant>,
    last_arrival: Option<Instant>,
    first_pts: Option<gst::ClockTime>,
    last_pts: Option<gst::ClockTime>,
}

impl Timing {
    fn fps(&self) -> Option<f64> {
        measured_fps(
            self.frames,
            self.first_pts.map(|t| t.nseconds()),
            self.last_pts.map(|t| t.nseconds()),
        )
    }

    fn decoded_for(&self) -> Duration {
        match (self.first_arrival, self.last_arrival) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => Duration::ZERO,
        }
    }
}

/// Frames per second from `frames` frames whose timestamps span `first_ns..=last_ns`.
pub(crate) fn measured_fps(
    frames: u64,
    first_ns: Option<u64>,
    last_ns: Option<u64>,
) -> Option<f64> {
    let span_ns = last_ns?.checked_sub(first_ns?)?;
    if frames < 2 || span_ns == 0 {
        return None;
    }
    Some((frames - 1) as f64 / (span_ns as f64 / 1e9))
}

impl Probe {
    /// The pipeline `ingest` would build for the target, with what the probe watches hooked on.
    fn build(target: &ProbeTarget, template: &Template) -> Result<Probe, Failure> {
        let pipeline::Built {
            pipeline,
            src,
            appsink,
        } = pipeline::build(template, &target.stream(), "probe").map_err(|e| match e {
            PipelineError::Build { template, reason } => Failure::new(
                FailureKind::Decoder,
                format!("decoder template `{template}` cannot be built: {reason}"),
            ),
            other => Failure::new(FailureKind::Decoder, other.to_string()),
        })?;
        let offered = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&offered);
        src.connect("select-stream", false, move |values| {
            let caps = values.get(2).and_then(|v| v.get::<gst::Caps>().ok());
            if let Some(stream) = caps.as_deref().and_then(offered_stream) {
                tracing::debug!(media = %stream.0.media, encoding = %stream.0.encoding, "offered");
                lock(&record).push(stream);
            }
            Some(true.to_value())
        });

        let timing = Arc::new(Mutex::new(Timing::default()));
        let count = Arc::clone(&timing);
        if let Some(pad) = appsink.static_pad("sink") {
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(buffer) = info.buffer() {
                    let now = Instant::now();
                    let mut timing = lock(&count);
                    timing.frames += 1;
                    timing.first_arrival.get_or_insert(now);
                    timing.last_arrival = Some(now);
                    if let Some(pts) = buffer.pts() {
                        timing.first_pts.get_or_insert(pts);
                        timing.last_pts = Some(pts);
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        Ok(Probe {
            pipeline,
            appsink,
            offered,
            timing,
            started: Instant::now(),
        })
    }

    /// Plays the pipeline until the first frame plus `seconds`, an error, EOS, or a timeout;
    /// records what it sees in `seen`. The newest frame's sample when it got one.
    fn run(&self, options: &ProbeOptions, seen: &mut Observation) -> Option<gst::Sample> {
        let bus = self.pipeline.bus()?;
        let started = Instant::now();
        if self.pipeline.set_state(gst::State::Playing).is_err() {
            drain(&bus, seen);
            if seen.error.is_none() {
                seen.error = Some(BusError {
                    domain: ErrorDomain::Core,
                    code: 4,
                    element: "probe".to_owned(),
                    message: "the pipeline cannot start playing".to_owned(),
                    debug: String::new(),
                });
            }
            return None;
        }
        let mut newest = None;
        let mut first_at: Option<Instant> = None;
        let mut last_at = started;
        loop {
            if let Some(sample) = self
                .appsink
                .try_pull_sample(gst::ClockTime::from_mseconds(20))
            {
                let now = Instant::now();
                first_at.get_or_insert(now);
                last_at = now;
                newest = Some(sample);
            }
            drain(&bus, seen);
            if seen.error.is_some() || seen.ended {
                return newest;
            }
            let now = Instant::now();
            match first_at {
                None if now.duration_since(started) > options.timeout => {
                    seen.timed_out = true;
                    return None;
                }
                None => {}
                Some(first) => {
                    if now.duration_since(first) >= options.seconds {
                        return newest;
                    }
                    if now.duration_since(last_at) > options.timeout {
                        seen.timed_out = true;
                        return newest;
                    }
                }
            }
        }
    }

    fn offered(&self) -> Vec<Offer> {
        lock(&self.offered).clone()
    }

    fn timing(&self) -> Timing {
        lock(&self.timing).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads every message waiting on `bus` into `seen`: the first error, EOS, `missing-plugin`.
fn drain(bus: &gst::Bus, seen: &mut Observation) {
    while let Some(msg) = bus.pop() {
        match msg.view() {
            gst::MessageView::Error(err) => {
                let error = err.error();
                let bus_error = BusError {
                    domain: ErrorDomain::from_quark_name(error.domain().as_str()),
                    code: error.code(),
                    element: msg
                        .src()
                        .map_or_else(|| "pipeline".to_owned(), |s| s.name().to_string()),
                    message: error.message().to_owned(),
                    debug: err.debug().map(|d| d.to_string()).unwrap_or_default(),
                };
                tracing::debug!(
                    element = %bus_error.element,
                    domain = ?bus_error.domain,
                    code = bus_error.code,
                    error = %redact_text(&bus_error.message),
                    debug = %redact_text(&bus_error.debug),
                    "pipeline error"
                );
                seen.error.get_or_insert(bus_error);
            }
            gst::MessageView::Eos(_) => seen.ended = true,
            gst::MessageView::Warning(warning) => tracing::debug!(
                warning = %redact_text(&warning.error().to_string()),
                "pipeline warning"
            ),
            gst::MessageView::Element(element) => {
                let Some(s) = element.structure() else {
                    continue;
                };
                if s.name() == "missing-plugin" {
                    let detail = s
                        .get::<gst::Caps>("detail")
                        .map(|caps| caps.to_string())
                        .or_else(|_| s.get::<String>("detail"))
                        .unwrap_or_default();
                    tracing::debug!(%detail, "missing plug-in");
                    seen.missing.push(detail);
                }
            }
            _ => {}
        }
    }
}

/// The media and encoding of one SDP stream (rtspsrc's caps for it), and its `a=framerate`.
fn offered_stream(caps: &gst::CapsRef) -> Option<Offer> {
    let s = caps.structure(0)?;
    let field = |name: &str| s.get::<String>(name).ok();
    let media = field("media").unwrap_or_else(|| "unknown".to_owned());
    let encoding = field("encoding-name").unwrap_or_else(|| "unknown".to_owned());
    let fps = field("a-framerate").and_then(|f| f.trim().parse::<f64>().ok());
    Some((OfferedStream { media, encoding }, fps.filter(|f| *f > 0.0)))
}

/// The frame rate the caps of `sample` announce, if any.
fn caps_fps(sample: &gst::Sample) -> Option<f64> {
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let fps = info.fps();
    (fps.numer() > 0 && fps.denom() > 0).then(|| f64::from(fps.numer()) / f64::from(fps.denom()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_frame_rates() {
        let s = 1_000_000_000u64;
        let cases = [
            (91, Some(0), Some(3 * s), Some(30.0)),
            (46, Some(s), Some(4 * s), Some(15.0)),
            (1, Some(0), Some(0), None),
            (0, None, None, None),
            (10, Some(5), Some(5), None),
            (10, Some(6), Some(5), None),
        ];
        for (frames, first, last, expected) in cases {
            let got = measured_fps(frames, first, last);
            match expected {
                Some(fps) => assert!((got.unwrap() - fps).abs() < 1e-9, "{frames}: {got:?}"),
                None => assert_eq!(got, None, "{frames}"),
            }
        }
    }
}
