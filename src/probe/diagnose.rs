//! From what a probe saw to one sentence a technician can act on. Pure: no GStreamer types; the
//! stream side collects an [`Observation`] (pre-check results, the streams the camera's SDP
//! offered, `missing-plugin` messages, the first bus error) and [`diagnose`] names the cause.
//!
//! The order of the rules is the order of the layers: name resolution, TCP, RTSP status (401,
//! 404), what the camera offers (no video), whether it can be decoded here, then timing. The
//! first layer that failed is the one to fix; later symptoms are consequences.
//!
//! Messages never quote a password: they are built from the host, port and path (URLs without
//! credentials) and, for the catch-all [`FailureKind::Stream`], from GStreamer's text passed
//! through [`redact_text`].

use std::time::Duration;

use crate::config::RtspTransport;
use crate::config::redact_text;
use crate::ingest::RtspRefusal;

/// GStreamer's error domains, by their quark names (`gst-resource-error-quark`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorDomain {
    Core,
    Library,
    Resource,
    Stream,
    Other(String),
}

impl ErrorDomain {
    /// The domain of a `GError` from its quark name.
    pub fn from_quark_name(name: &str) -> ErrorDomain {
        match name {
            "gst-core-error-quark" => ErrorDomain::Core,
            "gst-library-error-quark" => ErrorDomain::Library,
            "gst-resource-error-quark" => ErrorDomain::Resource,
            "gst-stream-error-quark" => ErrorDomain::Stream,
            other => ErrorDomain::Other(other.to_owned()),
        }
    }
}

/// `GST_CORE_ERROR_NEGOTIATION`.
pub const CORE_NEGOTIATION: i32 = 7;
/// `GST_CORE_ERROR_MISSING_PLUGIN`.
pub const CORE_MISSING_PLUGIN: i32 = 12;
/// `GST_STREAM_ERROR_TYPE_NOT_FOUND`.
pub const STREAM_TYPE_NOT_FOUND: i32 = 4;
/// `GST_STREAM_ERROR_CODEC_NOT_FOUND`.
pub const STREAM_CODEC_NOT_FOUND: i32 = 6;

/// One error message from the pipeline's bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusError {
    pub domain: ErrorDomain,
    pub code: i32,
    /// The element that posted it (`src`, `decode`, …).
    pub element: String,
    /// The `GError` message (`Unauthorized`, `Internal data stream error.`, …).
    pub message: String,
    /// GStreamer's debug text (source location, then details such as `streaming stopped,
    /// reason not-negotiated (-4)`).
    pub debug: String,
}

/// The result of resolving the camera's host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsCheck {
    /// The host is an IP address: nothing to resolve.
    NotNeeded,
    Resolved,
    /// The resolver said no (the cause, for logs).
    Failed(String),
    /// The resolver did not answer within the timeout.
    TimedOut,
}

/// The result of a plain TCP connection to the camera's RTSP port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpCheck {
    Connected,
    Refused,
    TimedOut,
    /// Any other failure (no route, network unreachable, …): the cause.
    Failed(String),
}

/// One stream the camera's SDP offered (rtspsrc's `select-stream`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferedStream {
    /// `video`, `audio`, `application`, …
    pub media: String,
    /// The RTP encoding name (`H264`, `JPEG`, `PCMA`, …).
    pub encoding: String,
}

/// The decoder template the probe used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateInfo {
    pub name: String,
    /// The codecs its header names (`h264`, `h265`).
    pub codecs: Vec<String>,
    /// Whether it decodes through `decodebin` (any codec with an installed decoder) rather
    /// than a fixed depayloader and decoder.
    pub uses_decodebin: bool,
}

/// Everything a probe saw, for [`diagnose`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The host as written in the URL (without IPv6 brackets).
    pub host: String,
    /// `host:port` as it is shown to people (`10.0.0.21:554`, `[fe80::1]:554`).
    pub address: String,
    /// The URL's path (`/stream1`), for a 404.
    pub path: String,
    pub timeout: Duration,
    pub transport: RtspTransport,
    /// A user name or password was given.
    pub credentials_given: bool,
    pub dns: DnsCheck,
    /// `None` when the TCP check was not reached (DNS failed).
    pub tcp: Option<TcpCheck>,
    pub template: Option<TemplateInfo>,
    pub offered: Vec<OfferedStream>,
    /// The caps of every `missing-plugin` message (`video/x-h266`, `application/x-rtp, …`).
    pub missing: Vec<String>,
    /// The first error on the bus.
    pub error: Option<BusError>,
    /// The stream ended (EOS).
    pub ended: bool,
    /// Decoded frames seen.
    pub frames: u64,
    /// The probe gave up waiting (for the first frame, or for the next one).
    pub timed_out: bool,
}

impl Observation {
    /// An observation of `address` where nothing has happened yet.
    pub fn new(host: &str, address: &str, path: &str, timeout: Duration) -> Observation {
        Observation {
            host: host.to_owned(),
            address: address.to_owned(),
            path: path.to_owned(),
            timeout,
            transport: RtspTransport::Tcp,
            credentials_given: false,
            dns: DnsCheck::NotNeeded,
            tcp: None,
            template: None,
            offered: Vec::new(),
            missing: Vec::new(),
            error: None,
            ended: false,
            frames: 0,
            timed_out: false,
        }
    }
}

/// What went wrong, as `error.kind` in `camera probe --format json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The host name does not resolve.
    Dns,
    /// Nothing listens on the port.
    Refused,
    /// No answer (TCP or RTSP) within the timeout.
    Timeout,
    /// No route to the camera.
    Unreachable,
    /// 401: wrong or missing credentials.
    Unauthorized,
    /// 404: no such stream path.
    NotFound,
    /// The camera offers no video stream.
    NoVideo,
    /// The video's codec cannot be decoded here.
    UnsupportedCodec,
    /// The camera answered and set up the stream but sent no picture.
    NoFrames,
    /// The camera ended the stream.
    StreamEnded,
    /// Something answered on the port, but not RTSP.
    NotRtsp,
    /// No decoder template is usable on this machine.
    Decoder,
    /// Any other stream error (the message is GStreamer's, redacted).
    Stream,
}

impl FailureKind {
    /// The name in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Dns => "dns",
            FailureKind::Refused => "refused",
            FailureKind::Timeout => "timeout",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Unauthorized => "unauthorized",
            FailureKind::NotFound => "not_found",
            FailureKind::NoVideo => "no_video",
            FailureKind::UnsupportedCodec => "unsupported_codec",
            FailureKind::NoFrames => "no_frames",
            FailureKind::StreamEnded => "stream_ended",
            FailureKind::NotRtsp => "not_rtsp",
            FailureKind::Decoder => "decoder",
            FailureKind::Stream => "stream",
        }
    }
}

/// A failed probe: its kind and one line for the technician (no credentials in it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

/// The cause of a failed probe; see the module docs for the order of the rules.
pub fn diagnose(seen: &Observation) -> Failure {
    let timeout_s = seen.timeout.as_secs_f64();
    let address = &seen.address;
    let no_answer = || {
        Failure::new(
            FailureKind::Timeout,
            format!(
                "no answer from {address} within {timeout_s} s: firewall, wrong IP, or the camera \
                 is busy"
            ),
        )
    };

    // 1. Name resolution.
    match &seen.dns {
        DnsCheck::Failed(_) => {
            return Failure::new(
                FailureKind::Dns,
                format!(
                    "cannot resolve `{}` (DNS): check the address or the box's DNS server",
                    seen.host
                ),
            );
        }
        DnsCheck::TimedOut => {
            return Failure::new(
                FailureKind::Dns,
                format!(
                    "cannot resolve `{}` (DNS: no answer within {timeout_s} s): check the box's \
                     DNS server, or use the camera's IP address",
                    seen.host
                ),
            );
        }
        DnsCheck::NotNeeded | DnsCheck::Resolved => {}
    }

    // 2. TCP.
    match &seen.tcp {
        Some(TcpCheck::Refused) => {
            return Failure::new(
                FailureKind::Refused,
                format!(
                    "{address} refused the connection: is the camera on, is RTSP enabled, is the \
                     port right?"
                ),
            );
        }
        Some(TcpCheck::TimedOut) => return no_answer(),
        Some(TcpCheck::Failed(cause)) => {
            return Failure::new(
                FailureKind::Unreachable,
                format!(
                    "cannot reach {address} ({cause}): check the cable, the address and the box's \
                     network route"
                ),
            );
        }
        Some(TcpCheck::Connected) | None => {}
    }

    // 3. RTSP status codes.
    if let Some(error) = &seen.error {
        let text = format!("{} {}", error.message, error.debug);
        let resource_code = (error.domain == ErrorDomain::Resource).then_some(error.code);
        if let Some(refusal) = RtspRefusal::of(resource_code, &text, seen.offered.is_empty()) {
            let kind = match refusal {
                RtspRefusal::Unauthorized => FailureKind::Unauthorized,
                RtspRefusal::NotFound => FailureKind::NotFound,
            };
            return Failure::new(kind, refusal.explain(seen.credentials_given, &seen.path));
        }
    }

    // 4. What the camera offers: a video the box cannot decode (a decoder decodebin looked for
    // and did not find says there is video even when the SDP calls it `application`), or no
    // video at all.
    if let Some(failure) = missing_video_decoder(seen) {
        return failure;
    }
    if !seen.offered.is_empty() && !seen.offered.iter().any(|s| s.media == "video") {
        let offered: Vec<String> = seen
            .offered
            .iter()
            .map(|s| format!("{} {}", s.media, s.encoding))
            .collect();
        return Failure::new(
            FailureKind::NoVideo,
            format!(
                "the stream has no video (audio only?): check the stream path/profile (the camera \
                 offers: {})",
                offered.join(", ")
            ),
        );
    }

    // 5. Whether the decoder template takes it.
    if let Some(failure) = unsupported_codec(seen) {
        return failure;
    }

    // 6. Errors before any RTSP answer, and timing.
    if let Some(error) = &seen.error {
        if seen.offered.is_empty() && seen.frames == 0 {
            let text = format!("{} {}", error.message, error.debug).to_lowercase();
            if text.contains("timeout") || text.contains("timed out") {
                return no_answer();
            }
            if is_not_rtsp(&text) {
                return Failure::new(
                    FailureKind::NotRtsp,
                    format!(
                        "{address} answered, but not as an RTSP camera: is this the RTSP port \
                         (usually 554)?"
                    ),
                );
            }
        }
        return stream_failure(error);
    }
    if seen.ended && seen.frames == 0 {
        return Failure::new(
            FailureKind::StreamEnded,
            "the camera ended the stream before the first picture: check the stream profile, \
             or whether the camera allows more viewers",
        );
    }
    if seen.timed_out {
        if seen.offered.is_empty() {
            return no_answer();
        }
        let hint = match seen.transport {
            RtspTransport::Udp => {
                "with transport = \"udp\" a firewall may drop the video: try transport = \"tcp\""
            }
            RtspTransport::Tcp => "is the stream profile enabled, or is the camera overloaded?",
        };
        let what = if seen.frames == 0 {
            format!("sent no picture within {timeout_s} s")
        } else {
            format!(
                "stopped sending pictures after {} frame(s) (none for {timeout_s} s)",
                seen.frames
            )
        };
        return Failure::new(
            FailureKind::NoFrames,
            format!("the camera answered but {what}: {hint}"),
        );
    }
    if seen.ended {
        return Failure::new(
            FailureKind::StreamEnded,
            format!("the camera ended the stream after {} frame(s)", seen.frames),
        );
    }
    Failure::new(
        FailureKind::Stream,
        "the stream failed for an unknown reason: run with --log debug for GStreamer's messages",
    )
}

/// The `unsupported_codec` failure when decodebin looked for a video decoder (or depayloader)
/// and did not find one.
fn missing_video_decoder(seen: &Observation) -> Option<Failure> {
    let missing_video = seen.missing.iter().find(|caps| {
        let name = caps_name(caps);
        name.starts_with("video/")
            || name.starts_with("image/")
            || (name == "application/x-rtp" && caps_field(caps, "media") == Some("video"))
    });
    if let Some(caps) = missing_video {
        let codec = match caps_name(caps) {
            "application/x-rtp" => {
                codec_name(caps_field(caps, "encoding-name").unwrap_or("unknown"))
            }
            name => codec_name(name),
        };
        let install = match decoder_hint(&codec) {
            Some(hint) => format!("install {hint}"),
            None => format!("install a GStreamer decoder for `{}`", caps_name(caps)),
        };
        return Some(Failure::new(
            FailureKind::UnsupportedCodec,
            format!(
                "the video is {codec} and no decoder for it is installed: {install}, or set the \
                 camera to H.264"
            ),
        ));
    }
    None
}

/// The `unsupported_codec` failure when the template's fixed pipeline does not take the
/// camera's codec, or decoding failed for want of a decoder without a `missing-plugin` message.
fn unsupported_codec(seen: &Observation) -> Option<Failure> {
    let error = seen.error.as_ref()?;
    let template = seen.template.as_ref()?;
    let negotiation = (error.domain == ErrorDomain::Core && error.code == CORE_NEGOTIATION)
        || error.debug.contains("not-negotiated")
        || error.debug.contains("not-linked");
    let video = seen.offered.iter().find(|s| s.media == "video")?;
    let codec = codec_name(&video.encoding);
    let handled = template
        .codecs
        .iter()
        .any(|c| codec_name(c).eq_ignore_ascii_case(&codec));
    if negotiation && !template.uses_decodebin && !handled {
        let codecs: Vec<String> = template.codecs.iter().map(|c| codec_name(c)).collect();
        return Some(Failure::new(
            FailureKind::UnsupportedCodec,
            format!(
                "the video is {codec} and decoder template `{}` decodes only {}: set decoder = \
                 \"software\", or set the camera to {}",
                template.name,
                codecs.join(", "),
                codecs.first().map_or("H.264", String::as_str),
            ),
        ));
    }
    if matches!(
        (&error.domain, error.code),
        (ErrorDomain::Core, CORE_MISSING_PLUGIN)
            | (ErrorDomain::Stream, STREAM_CODEC_NOT_FOUND)
            | (ErrorDomain::Stream, STREAM_TYPE_NOT_FOUND)
    ) {
        let install = decoder_hint(&codec).map_or_else(
            || format!("install a GStreamer decoder for {codec}"),
            |hint| format!("install {hint}"),
        );
        return Some(Failure::new(
            FailureKind::UnsupportedCodec,
            format!("the video is {codec} and no decoder for it is installed: {install}"),
        ));
    }
    None
}

/// Text of a non-RTSP server's answer as rtspsrc reports it.
fn is_not_rtsp(lowercase_text: &str) -> bool {
    [
        "could not parse",
        "bad response",
        "not a valid rtsp",
        "invalid response",
        "parse error",
        "eof",
    ]
    .iter()
    .any(|needle| lowercase_text.contains(needle))
}

/// The catch-all: GStreamer's own words (redacted), with the element.
fn stream_failure(error: &BusError) -> Failure {
    let detail = error
        .debug
        .lines()
        .map(str::trim)
        .rfind(|l| !(l.is_empty() || (l.ends_with(':') && l.contains(".c("))))
        .unwrap_or("");
    let mut message = format!("{}: {}", error.element, error.message.trim());
    if !detail.is_empty() && !error.message.contains(detail) {
        message = format!("{message} ({detail})");
    }
    Failure::new(FailureKind::Stream, redact_text(&message))
}

/// The media type of a caps string (`video/x-h264` of `video/x-h264, stream-format=avc`).
fn caps_name(caps: &str) -> &str {
    caps.split(',').next().unwrap_or("").trim()
}

/// The value of `field` in a caps string (`(string)` type prefixes and quotes removed).
fn caps_field<'a>(caps: &'a str, field: &str) -> Option<&'a str> {
    caps.split(',').skip(1).find_map(|part| {
        let (key, value) = part.split_once('=')?;
        if key.trim() != field {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('(')
            .and_then(|v| v.split_once(')'))
            .map_or(value, |(_, v)| v);
        Some(value.trim().trim_matches('"'))
    })
}

/// The name people use for a codec, from an RTP encoding name (`H264`), a caps name
/// (`video/x-h264`) or a template's codec word (`h264`). Unknown names are returned as they are.
pub fn codec_name(name: &str) -> String {
    let known = match name.to_ascii_lowercase().as_str() {
        "h264" | "video/x-h264" => "H.264",
        "h265" | "hevc" | "video/x-h265" => "H.265",
        "h266" | "vvc" | "video/x-h266" => "H.266",
        "jpeg" | "mjpeg" | "image/jpeg" => "MJPEG",
        "mp4v-es" | "mpeg4" | "video/mpeg" => "MPEG-4",
        "vp8" | "video/x-vp8" => "VP8",
        "vp9" | "video/x-vp9" => "VP9",
        "av1" | "video/x-av1" => "AV1",
        "jpeg2000" | "image/x-jpc" | "image/x-j2c" => "JPEG 2000",
        "mp2t" | "video/mpegts" => "MPEG-TS",
        "raw" | "video/x-raw" => "raw video",
        _ => return name.to_owned(),
    };
    known.to_owned()
}

/// The GStreamer element (and Debian package) that decodes `codec` (a [`codec_name`]).
pub fn decoder_hint(codec: &str) -> Option<&'static str> {
    Some(match codec {
        "H.264" => "`avdec_h264` (package gstreamer1.0-libav)",
        "H.265" => "`avdec_h265` (package gstreamer1.0-libav)",
        "MJPEG" => "`jpegdec` (package gstreamer1.0-plugins-good)",
        "MPEG-4" => "`avdec_mpeg4` (package gstreamer1.0-libav)",
        "VP8" => "`vp8dec` (package gstreamer1.0-plugins-good)",
        "VP9" => "`vp9dec` (package gstreamer1.0-plugins-good)",
        "AV1" => "`dav1ddec` (package gstreamer1.0-plugins-bad)",
        "JPEG 2000" => "`openjpegdec` (package gstreamer1.0-plugins-bad)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{RESOURCE_NOT_AUTHORIZED, RESOURCE_NOT_FOUND};

    fn base() -> Observation {
        let mut seen = Observation::new(
            "10.0.0.21",
            "10.0.0.21:554",
            "/stream1",
            Duration::from_secs(10),
        );
        seen.tcp = Some(TcpCheck::Connected);
        seen.template = Some(TemplateInfo {
            name: "software".to_owned(),
            codecs: vec!["h264".to_owned(), "h265".to_owned()],
            uses_decodebin: true,
        });
        seen
    }

    fn bus(domain: ErrorDomain, code: i32, element: &str, message: &str, debug: &str) -> BusError {
        BusError {
            domain,
            code,
            element: element.to_owned(),
            message: message.to_owned(),
            debug: debug.to_owned(),
        }
    }

    fn video(encoding: &str) -> OfferedStream {
        OfferedStream {
            media: "video".to_owned(),
            encoding: encoding.to_owned(),
        }
    }

    fn audio(encoding: &str) -> OfferedStream {
        OfferedStream {
            media: "audio".to_owned(),
            encoding: encoding.to_owned(),
        }
    }

    #[test]
    fn names_the_cause() {
        type Case = (
            &'static str,
            Box<dyn Fn(&mut Observation)>,
            FailureKind,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                "DNS failure",
                Box::new(|s| {
                    s.host = "cam.example".to_owned();
                    s.dns = DnsCheck::Failed("failed to lookup address".to_owned());
                    s.tcp = None;
                }),
                FailureKind::Dns,
                "cannot resolve `cam.example` (DNS): check the address or the box's DNS server",
            ),
            (
                "DNS silent",
                Box::new(|s| {
                    s.dns = DnsCheck::TimedOut;
                    s.tcp = None;
                }),
                FailureKind::Dns,
                "(DNS: no answer within 10 s)",
            ),
            (
                "refused",
                Box::new(|s| s.tcp = Some(TcpCheck::Refused)),
                FailureKind::Refused,
                "10.0.0.21:554 refused the connection: is the camera on, is RTSP enabled, is the port right?",
            ),
            (
                "TCP timeout",
                Box::new(|s| s.tcp = Some(TcpCheck::TimedOut)),
                FailureKind::Timeout,
                "no answer from 10.0.0.21:554 within 10 s: firewall, wrong IP, or the camera is busy",
            ),
            (
                "no route",
                Box::new(|s| s.tcp = Some(TcpCheck::Failed("No route to host".to_owned()))),
                FailureKind::Unreachable,
                "cannot reach 10.0.0.21:554 (No route to host)",
            ),
            (
                "401 with credentials",
                Box::new(|s| {
                    s.credentials_given = true;
                    s.error = Some(bus(
                        ErrorDomain::Resource,
                        RESOURCE_NOT_AUTHORIZED,
                        "src",
                        "Unauthorized",
                        "gstrtspsrc.c(6012): gst_rtspsrc_send (): /GstPipeline:p/GstRTSPSrc:src:\nUnauthorized (401)",
                    ));
                }),
                FailureKind::Unauthorized,
                "the camera refused the credentials (401 Unauthorized): check username/password_file",
            ),
            (
                "401 without credentials",
                Box::new(|s| {
                    s.error = Some(bus(
                        ErrorDomain::Resource,
                        RESOURCE_NOT_AUTHORIZED,
                        "src",
                        "Unauthorized",
                        "",
                    ));
                }),
                FailureKind::Unauthorized,
                "the camera wants a user name and password (401 Unauthorized)",
            ),
            (
                "401 in an unexpected domain, found by its text",
                Box::new(|s| {
                    s.error = Some(bus(
                        ErrorDomain::Resource,
                        5,
                        "src",
                        "Could not open resource for reading.",
                        "Got error response: 401 (Unauthorized).",
                    ));
                }),
                FailureKind::Unauthorized,
                "401 Unauthorized",
            ),
            (
                "404",
                Box::new(|s| {
                    s.error = Some(bus(
                        ErrorDomain::Resource,
                        RESOURCE_NOT_FOUND,
                        "src",
                        "Not found",
                        "Not Found (404)",
                    ));
                }),
                FailureKind::NotFound,
                "the camera has no stream at `/stream1` (404 Not Found): check the stream path/profile",
            ),
            (
                "audio only",
                Box::new(|s| {
                    s.offered = vec![audio("PCMA")];
                    s.error = Some(bus(
                        ErrorDomain::Stream,
                        1,
                        "decode",
                        "Internal data stream error.",
                        "streaming stopped, reason not-linked (-1)",
                    ));
                }),
                FailureKind::NoVideo,
                "the stream has no video (audio only?): check the stream path/profile (the camera offers: audio PCMA)",
            ),
            (
                "audio only, found by timing out",
                Box::new(|s| {
                    s.offered = vec![audio("MPEG4-GENERIC")];
                    s.timed_out = true;
                }),
                FailureKind::NoVideo,
                "the stream has no video",
            ),
            (
                "decodebin found no decoder",
                Box::new(|s| {
                    // GStreamer's own payload is `application`: the missing decoder's caps
                    // say it is video.
                    s.offered = vec![
                        OfferedStream {
                            media: "application".to_owned(),
                            encoding: "X-GST".to_owned(),
                        },
                        audio("PCMA"),
                    ];
                    s.missing = vec!["video/x-h266".to_owned()];
                    s.error = Some(bus(
                        ErrorDomain::Core,
                        CORE_MISSING_PLUGIN,
                        "decode",
                        "Your GStreamer installation is missing a plug-in.",
                        "no suitable plugins found:\nMissing decoder: H.266 (video/x-h266)",
                    ));
                }),
                FailureKind::UnsupportedCodec,
                "the video is H.266 and no decoder for it is installed: install a GStreamer decoder for `video/x-h266`, or set the camera to H.264",
            ),
            (
                "MJPEG without jpegdec",
                Box::new(|s| {
                    s.offered = vec![video("JPEG")];
                    s.missing = vec!["image/jpeg, width=(int)640".to_owned()];
                }),
                FailureKind::UnsupportedCodec,
                "the video is MJPEG and no decoder for it is installed: install `jpegdec` (package gstreamer1.0-plugins-good)",
            ),
            (
                "no depayloader",
                Box::new(|s| {
                    s.offered = vec![video("X-FOO")];
                    s.missing = vec![
                        "application/x-rtp, media=(string)video, encoding-name=(string)X-FOO"
                            .to_owned(),
                    ];
                }),
                FailureKind::UnsupportedCodec,
                "the video is X-FOO and no decoder for it is installed",
            ),
            (
                "H.265 on a hardware template for H.264",
                Box::new(|s| {
                    s.template = Some(TemplateInfo {
                        name: "v4l2".to_owned(),
                        codecs: vec!["h264".to_owned()],
                        uses_decodebin: false,
                    });
                    s.offered = vec![video("H265")];
                    s.error = Some(bus(
                        ErrorDomain::Stream,
                        1,
                        "src",
                        "Internal data stream error.",
                        "streaming stopped, reason not-linked (-1)",
                    ));
                }),
                FailureKind::UnsupportedCodec,
                "the video is H.265 and decoder template `v4l2` decodes only H.264: set decoder = \"software\"",
            ),
            (
                "codec not found error without a missing-plugin message",
                Box::new(|s| {
                    s.offered = vec![video("H265")];
                    s.error = Some(bus(
                        ErrorDomain::Stream,
                        STREAM_CODEC_NOT_FOUND,
                        "decode",
                        "No decoder available for type 'video/x-h265'.",
                        "",
                    ));
                }),
                FailureKind::UnsupportedCodec,
                "the video is H.265 and no decoder for it is installed: install `avdec_h265` (package gstreamer1.0-libav)",
            ),
            (
                "RTSP timeout reported by rtspsrc",
                Box::new(|s| {
                    s.error = Some(bus(
                        ErrorDomain::Resource,
                        7,
                        "src",
                        "Could not open resource for reading and writing.",
                        "Failed to connect. (Timeout while waiting for server response)",
                    ));
                }),
                FailureKind::Timeout,
                "no answer from 10.0.0.21:554 within 10 s",
            ),
            (
                "an HTTP server on the port",
                Box::new(|s| {
                    s.error = Some(bus(
                        ErrorDomain::Resource,
                        7,
                        "src",
                        "Could not read from resource.",
                        "Could not receive message. (Parse error)",
                    ));
                }),
                FailureKind::NotRtsp,
                "10.0.0.21:554 answered, but not as an RTSP camera: is this the RTSP port (usually 554)?",
            ),
            (
                "silence after TCP connect",
                Box::new(|s| s.timed_out = true),
                FailureKind::Timeout,
                "no answer from 10.0.0.21:554 within 10 s: firewall, wrong IP, or the camera is busy",
            ),
            (
                "SDP but no picture over UDP",
                Box::new(|s| {
                    s.transport = RtspTransport::Udp;
                    s.offered = vec![video("H264")];
                    s.timed_out = true;
                }),
                FailureKind::NoFrames,
                "the camera answered but sent no picture within 10 s: with transport = \"udp\" a firewall may drop the video: try transport = \"tcp\"",
            ),
            (
                "pictures stop",
                Box::new(|s| {
                    s.offered = vec![video("H264")];
                    s.frames = 12;
                    s.timed_out = true;
                }),
                FailureKind::NoFrames,
                "stopped sending pictures after 12 frame(s)",
            ),
            (
                "EOS before a picture",
                Box::new(|s| {
                    s.offered = vec![video("H264")];
                    s.ended = true;
                }),
                FailureKind::StreamEnded,
                "the camera ended the stream before the first picture",
            ),
            (
                "anything else, redacted",
                Box::new(|s| {
                    s.offered = vec![video("H264")];
                    s.frames = 3;
                    s.error = Some(bus(
                        ErrorDomain::Stream,
                        7,
                        "avdec_h264-0",
                        "Could not decode stream rtsp://admin:hunter2@cam/x.",
                        "../ext/libav/gstavviddec.c(2072): gst_ffmpeg_viddec_handle_frame (): /GstPipeline:p:\nbroken frame",
                    ));
                }),
                FailureKind::Stream,
                "avdec_h264-0: Could not decode stream rtsp://admin:***@cam/x. (broken frame)",
            ),
        ];
        for (name, setup, kind, expected) in cases {
            let mut seen = base();
            setup(&mut seen);
            let failure = diagnose(&seen);
            assert_eq!(failure.kind, kind, "{name}: {}", failure.message);
            assert!(
                failure.message.contains(expected),
                "{name}: {} does not contain {expected}",
                failure.message
            );
            assert!(!failure.message.contains('\n'), "{name}: one line");
            assert!(!failure.message.contains("hunter2"), "{name}: redacted");
        }
    }

    #[test]
    fn earlier_layers_win() {
        // A refused connection explains everything after it.
        let mut seen = base();
        seen.tcp = Some(TcpCheck::Refused);
        seen.timed_out = true;
        seen.error = Some(bus(
            ErrorDomain::Resource,
            7,
            "src",
            "Could not open resource for reading and writing.",
            "Failed to connect.",
        ));
        assert_eq!(diagnose(&seen).kind, FailureKind::Refused);
        // A 401 comes before "no video": the SDP was never seen.
        let mut seen = base();
        seen.error = Some(bus(
            ErrorDomain::Resource,
            RESOURCE_NOT_AUTHORIZED,
            "src",
            "Unauthorized",
            "",
        ));
        seen.timed_out = true;
        assert_eq!(diagnose(&seen).kind, FailureKind::Unauthorized);
    }

    #[test]
    fn names_codecs() {
        let cases = [
            ("H264", "H.264"),
            ("video/x-h264", "H.264"),
            ("h265", "H.265"),
            ("JPEG", "MJPEG"),
            ("image/jpeg", "MJPEG"),
            ("MP4V-ES", "MPEG-4"),
            ("X-GST", "X-GST"),
        ];
        for (name, expected) in cases {
            assert_eq!(codec_name(name), expected, "{name}");
        }
        assert_eq!(decoder_hint("H.266"), None);
        assert!(decoder_hint("H.264").unwrap().contains("avdec_h264"));
    }

    #[test]
    fn reads_caps_strings() {
        let caps = "application/x-rtp, media=(string)video, encoding-name=(string)\"X-FOO\"";
        assert_eq!(caps_name(caps), "application/x-rtp");
        assert_eq!(caps_field(caps, "media"), Some("video"));
        assert_eq!(caps_field(caps, "encoding-name"), Some("X-FOO"));
        assert_eq!(caps_field(caps, "clock-rate"), None);
        assert_eq!(caps_name("video/x-h266"), "video/x-h266");
    }
}
