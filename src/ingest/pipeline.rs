//! The one way a decoder template becomes a GStreamer pipeline, for the agent's cameras and for
//! `camera probe` alike, so a probe sees the stream exactly as the agent will:
//!
//! ```text
//!  choose(decoder) ─▶ template ─▶ fill {latency_ms} {protocols} ─▶ parse ─▶ name it
//!    ─▶ `src` (an rtspsrc): location, user-id, user-pw as properties (never in the text)
//!    ─▶ `sink` (an appsink) ─▶ software template: every decodebin skips hardware decoders
//! ```
//!
//! The caller then hooks what it needs on [`Built::src`] and [`Built::appsink`] (the agent a
//! `new-sample` callback, the probe a pad probe and `select-stream`) and plays the pipeline.

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::template::{
    Choice, ChoiceError, DecoderKind, Template, TemplateError, bundled_templates, choose_template,
    fill_placeholders, is_hardware_decoder,
};
use crate::config::{CameraConfig, DecoderChoice, RtspTransport, Secret};

/// The stream a pipeline is built for: where it is and how to fetch it.
#[derive(Clone, Copy, Debug)]
pub struct Stream<'a> {
    /// `rtsp://` or `rtsps://` URL **without** credentials.
    pub url: &'a str,
    pub username: Option<&'a str>,
    pub password: Option<&'a Secret>,
    pub transport: RtspTransport,
    pub latency: Duration,
}

impl<'a> Stream<'a> {
    /// A configured camera's stream.
    pub fn of_camera(camera: &'a CameraConfig) -> Stream<'a> {
        Stream {
            url: &camera.url,
            username: camera.username.as_deref(),
            password: camera.password.as_ref(),
            transport: camera.transport,
            latency: camera.latency,
        }
    }

    /// Whether a user or a password is given.
    pub fn has_credentials(&self) -> bool {
        self.username.is_some() || self.password.is_some()
    }

    /// The template placeholders' values for this stream.
    fn placeholders(&self) -> [(&'static str, String); 2] {
        let protocols = match self.transport {
            RtspTransport::Tcp => "tcp",
            RtspTransport::Udp => "udp",
        };
        let latency_ms = self.latency.as_millis().min(u128::from(u32::MAX));
        [
            ("latency_ms", latency_ms.to_string()),
            ("protocols", protocols.to_owned()),
        ]
    }
}

/// Why no pipeline could be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// A bundled template cannot be parsed or filled in (a bug in the template).
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// No template suits the decoder choice on this machine.
    #[error(transparent)]
    Choice(#[from] ChoiceError),
    /// The filled-in template is not a pipeline with an rtspsrc `src` and an appsink `sink`.
    #[error("pipeline `{template}` cannot be built: {reason}")]
    Build { template: String, reason: String },
}

/// A pipeline made from a template, not yet playing.
pub struct Built {
    pub pipeline: gst::Pipeline,
    /// The `rtspsrc` named `src`, with the location and credentials set.
    pub src: gst::Element,
    /// The appsink named `sink`.
    pub appsink: gst_app::AppSink,
}

/// The bundled template `decoder` selects on this machine, and why. GStreamer must be
/// initialised.
///
/// # Errors
/// An unknown template name, missing elements, or a bundled template that does not parse.
pub fn choose(decoder: &DecoderChoice) -> Result<Choice<'static>, PipelineError> {
    let templates = bundled_templates()?;
    Ok(choose_template(decoder, templates, |element| {
        gst::ElementFactory::find(element).is_some()
    })?)
}

/// Builds `template` for `stream` as a pipeline named `name`. GStreamer must be initialised.
///
/// # Errors
/// The template cannot be filled in or parsed, or it lacks an rtspsrc named `src` or an
/// appsink named `sink`.
pub fn build(template: &Template, stream: &Stream<'_>, name: &str) -> Result<Built, PipelineError> {
    let fail = |reason: &str| PipelineError::Build {
        template: template.name.clone(),
        reason: reason.to_owned(),
    };
    let description = fill_placeholders(template, &stream.placeholders())?;
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| fail(&e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| fail("the description is not a pipeline"))?;
    pipeline.set_property("name", name);

    let src = pipeline
        .by_name("src")
        .ok_or_else(|| fail("no element named `src`"))?;
    if src.find_property("location").is_none() || src.find_property("user-pw").is_none() {
        return Err(fail("`src` is not an rtspsrc"));
    }
    src.set_property("location", stream.url);
    if let Some(user) = stream.username {
        src.set_property("user-id", user);
    }
    if let Some(password) = stream.password {
        src.set_property("user-pw", password.expose());
    }

    let appsink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| fail("no appsink named `sink`"))?;

    if template.kind == DecoderKind::Software {
        keep_decodebins_off_hardware(&pipeline);
    }
    Ok(Built {
        pipeline,
        src,
        appsink,
    })
}

/// Makes every `decodebin` in `pipeline` skip hardware decoders (the software template must
/// not end up on a hardware decoder whose output `videoconvert` cannot read).
fn keep_decodebins_off_hardware(pipeline: &gst::Pipeline) {
    let Some(result_type) = gst::glib::Type::from_name("GstAutoplugSelectResult") else {
        tracing::debug!(
            "decodebin's select result type is unknown; hardware decoders not filtered"
        );
        return;
    };
    for element in pipeline.iterate_recurse().into_iter().flatten() {
        if element.factory().is_none_or(|f| f.name() != "decodebin") {
            continue;
        }
        element.connect("autoplug-select", false, move |values| {
            let factory = values.get(3)?.get::<gst::ElementFactory>().ok()?;
            // GstAutoplugSelectResult: 0 = try, 2 = skip.
            let skip = is_hardware_decoder(factory.name().as_str(), factory.klass());
            if skip {
                tracing::debug!(decoder = %factory.name(), "skipping a hardware decoder");
            }
            gst::glib::EnumClass::with_type(result_type)?.to_value(if skip { 2 } else { 0 })
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_stream() {
        let stream = |transport, latency| Stream {
            url: "rtsp://127.0.0.1/x",
            username: None,
            password: None,
            transport,
            latency,
        };
        let cases = [
            (RtspTransport::Tcp, Duration::from_millis(200), "200", "tcp"),
            (RtspTransport::Udp, Duration::ZERO, "0", "udp"),
            (
                RtspTransport::Tcp,
                Duration::from_secs(u64::from(u32::MAX)),
                "4294967295",
                "tcp",
            ),
        ];
        for (transport, latency, want_ms, want_protocols) in cases {
            let [(k1, ms), (k2, protocols)] = stream(transport, latency).placeholders();
            assert_eq!((k1, k2), ("latency_ms", "protocols"));
            assert_eq!((ms.as_str(), protocols.as_str()), (want_ms, want_protocols));
        }
    }
}
