//! What ingest hands to the frame path, and how a decoded GStreamer sample becomes it.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use gstreamer as gst;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use super::clock::ntp_ns_to_system_time;
use crate::detect::preprocess::{YuvColour, YuvMatrix, YuvRange};
use crate::imaging::{PlaneStorage, YuvFormat, YuvFrame};

/// Where a frame's `captured_at` comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureClock {
    /// The camera's clock, through RTCP sender reports (NTP time of the RTP timestamp).
    Camera,
    /// The frame's arrival at the agent (the camera sent no sender reports yet).
    Agent,
}

/// One decoded frame of one camera.
#[derive(Clone, Debug)]
pub struct CapturedFrame {
    /// The camera's slot id on the frame path ([`crate::framepath`]).
    pub camera: usize,
    /// Per camera, +1 for every frame the pipeline delivered (so gaps show skipped frames).
    pub seq: u64,
    /// The decoder's own YUV buffer, not copied and not converted.
    pub frame: YuvFrame,
    /// Arrival at the agent (appsink), on the monotonic clock: the start of `latency_ms`.
    pub arrived: Instant,
    /// The frame's time: see [`CaptureClock`].
    pub captured_at: SystemTime,
    pub clock: CaptureClock,
}

/// Where a camera's pipeline delivers its frames. Implemented by the frame path's one-slot
/// mailboxes; `offer` must never block for long (it runs on a GStreamer streaming thread).
pub trait FrameSink: Send + Sync {
    fn offer(&self, frame: CapturedFrame);
}

/// The decoder's buffer, mapped for reading until the last clone of its [`YuvFrame`] is gone.
struct MappedPlanes(gst_video::VideoFrame<gst_video::video_frame::Readable>);

impl PlaneStorage for MappedPlanes {
    fn plane(&self, index: usize) -> &[u8] {
        u32::try_from(index)
            .ok()
            .and_then(|index| self.0.plane_data(index).ok())
            .unwrap_or(&[])
    }

    fn stride(&self, index: usize) -> usize {
        self.0
            .plane_stride()
            .get(index)
            .and_then(|&stride| usize::try_from(stride).ok())
            .unwrap_or(0)
    }
}

/// The layout the agent reads directly, for a GStreamer format; `None` for any other.
fn yuv_format(format: gst_video::VideoFormat) -> Option<YuvFormat> {
    match format {
        gst_video::VideoFormat::I420 => Some(YuvFormat::I420),
        gst_video::VideoFormat::Yv12 => Some(YuvFormat::Yv12),
        gst_video::VideoFormat::Nv12 => Some(YuvFormat::Nv12),
        gst_video::VideoFormat::Nv21 => Some(YuvFormat::Nv21),
        _ => None,
    }
}

/// The colour of a stream from its caps (unknown parts as GStreamer assumes them).
fn yuv_colour(info: &gst_video::VideoInfo) -> YuvColour {
    let colorimetry = info.colorimetry();
    let height = info.height() as usize;
    let matrix = match colorimetry.matrix() {
        gst_video::VideoColorMatrix::Bt709 => YuvMatrix::Bt709,
        gst_video::VideoColorMatrix::Bt601 => YuvMatrix::Bt601,
        gst_video::VideoColorMatrix::Bt2020 => YuvMatrix::Bt2020,
        _ => YuvMatrix::default_for_height(height),
    };
    let range = match colorimetry.range() {
        gst_video::VideoColorRange::Range0_255 => YuvRange::Full,
        _ => YuvRange::Limited,
    };
    let site = info.chroma_site();
    YuvColour {
        matrix,
        range,
        chroma_h_cosited: site.contains(gst_video::VideoChromaSite::H_COSITED),
        chroma_v_cosited: site.contains(gst_video::VideoChromaSite::V_COSITED),
    }
}

/// The YUV frame of `sample`, held without a copy, and its camera capture time, if the buffer
/// carries an NTP reference timestamp (after the camera's first RTCP sender report). Also used
/// by `probe`.
///
/// # Errors
/// Why the sample cannot be read (no buffer or caps, not 8-bit 4:2:0, unmappable or short
/// buffer), as one line for a bus error or a probe failure.
pub(crate) fn frame_from_sample(
    sample: &gst::Sample,
) -> Result<(YuvFrame, Option<SystemTime>), String> {
    let buffer = sample.buffer_owned().ok_or("a sample without a buffer")?;
    let caps = sample.caps().ok_or("a sample without caps")?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| format!("caps {caps}: {e}"))?;
    let format = yuv_format(info.format()).ok_or_else(|| {
        format!(
            "expected 8-bit YUV 4:2:0 (I420, YV12, NV12 or NV21), got {:?}",
            info.format()
        )
    })?;
    let camera_time = ntp_reference_time(&buffer);
    let colour = yuv_colour(&info);
    let (width, height) = (info.width() as usize, info.height() as usize);
    let mapped = gst_video::VideoFrame::from_buffer_readable(buffer, &info)
        .map_err(|_| "cannot map the buffer".to_owned())?;
    let frame = YuvFrame::new(
        width,
        height,
        format,
        colour,
        Arc::new(MappedPlanes(mapped)),
    )
    .map_err(|e| e.to_string())?;
    Ok((frame, camera_time))
}

/// The `timestamp/x-ntp` reference time of `buffer` as a wall-clock time.
fn ntp_reference_time(buffer: &gst::BufferRef) -> Option<SystemTime> {
    buffer
        .iter_meta::<gst::ReferenceTimestampMeta>()
        .find(|meta| {
            meta.reference()
                .structure(0)
                .is_some_and(|s| s.name() == "timestamp/x-ntp")
        })
        .and_then(|meta| ntp_ns_to_system_time(meta.timestamp().nseconds()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_become_formats_and_colours() {
        gst::init().unwrap();
        // (caps, expected format, matrix, range, h co-sited, v co-sited)
        let cases = [
            (
                "video/x-raw,format=I420,width=640,height=360,chroma-site=jpeg,colorimetry=bt601",
                Some(YuvFormat::I420),
                YuvMatrix::Bt601,
                YuvRange::Limited,
                false,
                false,
            ),
            (
                "video/x-raw,format=NV12,width=1920,height=1080,chroma-site=mpeg2,colorimetry=bt709",
                Some(YuvFormat::Nv12),
                YuvMatrix::Bt709,
                YuvRange::Limited,
                true,
                false,
            ),
            (
                "video/x-raw,format=NV21,width=1280,height=720,colorimetry=1:3:0:0",
                Some(YuvFormat::Nv21),
                YuvMatrix::Bt709,
                YuvRange::Full,
                false,
                false,
            ),
            (
                "video/x-raw,format=YV12,width=320,height=240",
                Some(YuvFormat::Yv12),
                YuvMatrix::Bt601,
                YuvRange::Limited,
                false,
                false,
            ),
            (
                "video/x-raw,format=Y444,width=320,height=240",
                None,
                YuvMatrix::Bt601,
                YuvRange::Limited,
                false,
                false,
            ),
        ];
        for (caps, format, matrix, range, h_cosited, v_cosited) in cases {
            let info = gst_video::VideoInfo::from_caps(&caps.parse::<gst::Caps>().unwrap())
                .unwrap_or_else(|e| panic!("{caps}: {e}"));
            assert_eq!(yuv_format(info.format()), format, "{caps}");
            if format.is_none() {
                continue;
            }
            let colour = yuv_colour(&info);
            assert_eq!(
                (
                    colour.matrix,
                    colour.range,
                    colour.chroma_h_cosited,
                    colour.chroma_v_cosited
                ),
                (matrix, range, h_cosited, v_cosited),
                "{caps}"
            );
        }
    }

    #[test]
    fn a_sample_is_read_without_a_copy_and_odd_formats_are_refused() {
        gst::init().unwrap();
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 6, 4)
            .build()
            .unwrap();
        let mut buffer = gst::Buffer::with_size(info.size()).unwrap();
        {
            let buffer = buffer.get_mut().unwrap();
            let mut map = buffer.map_writable().unwrap();
            map.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        }
        let first_byte = buffer.map_readable().unwrap().as_ptr();
        let sample = gst::Sample::builder()
            .buffer(&buffer)
            .caps(&info.to_caps().unwrap())
            .build();
        let (frame, camera_time) = frame_from_sample(&sample).unwrap();
        assert_eq!(
            (frame.width, frame.height, frame.format),
            (6, 4, YuvFormat::I420)
        );
        assert_eq!(camera_time, None, "no RTCP reference yet");
        let view = frame.view();
        assert_eq!(view.y.data.as_ptr(), first_byte, "the decoder's own memory");
        assert_eq!(view.y.stride, info.stride()[0] as usize);

        let bgr = gst_video::VideoInfo::builder(gst_video::VideoFormat::Bgr, 6, 4)
            .build()
            .unwrap();
        let sample = gst::Sample::builder()
            .buffer(&gst::Buffer::with_size(bgr.size()).unwrap())
            .caps(&bgr.to_caps().unwrap())
            .build();
        let error = frame_from_sample(&sample).unwrap_err();
        assert!(error.contains("got Bgr"), "{error}");

        let short = gst::Sample::builder()
            .buffer(&gst::Buffer::with_size(10).unwrap())
            .caps(&info.to_caps().unwrap())
            .build();
        assert!(frame_from_sample(&short).is_err());
    }
}
