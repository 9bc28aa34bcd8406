//! What the technician's page shows of one analysed frame: the picture under the camera's
//! privacy mode, the objects with their track ids, and the zones and lines with what they
//! count. Made only when someone asks (`GET /api/cameras/{name}/view`), by the thread that
//! analyses the frame: taken right after tracking it ([`CameraEvents::pending_view`]), its
//! picture rendered once the camera's lane is free again and the frame done, so that neither
//! the camera's next results nor its next frame wait for it ([`PendingView::render`]).
//!
//! The picture is the frame ([`ViewPicture::Frame`]) or, on request, what the model sees
//! ([`ViewPicture::ModelInput`]): the frame scaled into the model's input with its letterbox
//! bars, so the technician sees how few pixels a distant person is left with. Objects, zones
//! and lines stay in fractions of the frame either way; [`ModelInputView`] says where the frame
//! lies in the model's input.

use std::time::SystemTime;

use serde::Serialize;

use super::CameraEvents;
use crate::config::SnapshotMode;
use crate::detect::Object;
use crate::detect::preprocess::{InputSpec, input_transform};
use crate::imaging::{self, YuvFrame};

/// Which picture a view carries.
#[derive(Clone, Debug, PartialEq)]
pub enum ViewPicture {
    /// The frame, no wider than this many pixels.
    Frame { max_width: u32 },
    /// The frame as the model with this input sees it: scaled (and letterboxed) to its input.
    ModelInput(InputSpec),
}

impl ViewPicture {
    /// Where a `frame_width` x `frame_height` frame lies in this picture, if it is a model's
    /// input.
    fn placement(&self, frame_width: usize, frame_height: usize) -> Option<ModelInputView> {
        let ViewPicture::ModelInput(spec) = self else {
            return None;
        };
        let transform = input_transform(frame_width, frame_height, spec);
        Some(ModelInputView {
            width: spec.width,
            height: spec.height,
            scale_x: transform.scale_x,
            scale_y: transform.scale_y,
            pad_x: transform.pad_x,
            pad_y: transform.pad_y,
        })
    }
}

/// Where the frame lies in the model's input, for a [`ViewPicture::ModelInput`] view: a point
/// `(x, y)` in fractions of the frame is at `(pad_x + x * frame_width * scale_x, pad_y + y *
/// frame_height * scale_y)` in the input's pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ModelInputView {
    /// The model's input size in pixels (the picture's size).
    pub width: usize,
    pub height: usize,
    /// Input pixels per frame pixel.
    pub scale_x: f32,
    pub scale_y: f32,
    /// The letterbox bars: left and top, in input pixels.
    pub pad_x: f32,
    pub pad_y: f32,
}

/// One analysed frame as the page draws it. Coordinates are fractions of the frame, as in the
/// configuration and the events.
#[derive(Clone, Debug, Serialize)]
pub struct View {
    /// The frame's size in pixels.
    pub width: usize,
    pub height: usize,
    /// `full`, `redacted` (persons pixelated) or `off` (no picture: boxes on a blank frame).
    pub privacy: &'static str,
    /// The JPEG, at most the width asked for or the model's input; `None` when pictures are
    /// off.
    #[serde(skip)]
    pub jpeg: Option<Vec<u8>>,
    /// Set for a view of what the model sees: where the frame lies in its input.
    pub model_input: Option<ModelInputView>,
    pub objects: Vec<ViewObject>,
    pub zones: Vec<ZoneView>,
    pub lines: Vec<LineView>,
    /// When the frame was captured.
    #[serde(skip)]
    pub captured_at: SystemTime,
}

#[derive(Clone, Debug, Serialize)]
pub struct ViewObject {
    pub class: &'static str,
    pub label: String,
    pub score: f32,
    /// `[x, y, w, h]`.
    pub bbox: [f32; 4],
    /// `None` for an object the tracker has not confirmed yet.
    pub track_id: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ZoneView {
    pub name: String,
    pub points: Vec<[f32; 2]>,
    pub classes: Vec<&'static str>,
    /// Tracks inside now.
    pub occupancy: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct LineView {
    pub name: String,
    pub points: Vec<[f32; 2]>,
    pub classes: Vec<&'static str>,
    /// `[first, second]`: first = crossing from the left to the right side, looking from the
    /// first point to the last.
    pub direction_names: [String; 2],
    /// Crossings each way since the camera's processing started.
    pub crossings: [u64; 2],
}

/// Why [`PendingView::render`] could not make a view.
#[derive(Debug, thiserror::Error)]
#[error("the frame could not be rendered: {0}")]
pub struct ViewError(#[from] imaging::ImageError);

/// A view whose picture is still to be made: taken under the camera's lane lock (the objects,
/// the zones' and lines' counts, what to pixelate; cheap), its picture rendered after the lock
/// is released ([`PendingView::render`]), so the camera's next frames are not held up by it.
pub struct PendingView {
    view: View,
    /// `None`: no picture (pictures are off).
    picture: Option<PictureJob>,
}

struct PictureJob {
    frame: YuvFrame,
    picture: ViewPicture,
    redact: Vec<[f32; 4]>,
    quality: u8,
}

impl PendingView {
    /// The view with its picture.
    ///
    /// # Errors
    /// The frame could not be converted or encoded.
    pub fn render(self) -> Result<View, ViewError> {
        let PendingView { mut view, picture } = self;
        let Some(job) = picture else {
            return Ok(view);
        };
        let jpeg = match &job.picture {
            ViewPicture::Frame { max_width } => imaging::snapshot_jpeg(
                &imaging::to_bgr_at_least(&job.frame, *max_width as usize, 1)?,
                &job.redact,
                &[],
                *max_width,
                job.quality,
            )?,
            ViewPicture::ModelInput(spec) => {
                // Never smaller than the frame's part of the model's input.
                let bgr = imaging::to_bgr_at_least(&job.frame, spec.width, spec.height)?;
                // The placement of the shrunk frame is the frame's, give or take rounding.
                let transform = input_transform(bgr.width, bgr.height, spec);
                imaging::model_input_jpeg(
                    &bgr,
                    &job.redact,
                    &transform,
                    (spec.width, spec.height),
                    spec.pad_value,
                    job.quality,
                )?
            }
        };
        view.jpeg = Some(jpeg);
        Ok(view)
    }
}

impl CameraEvents {
    /// The view of the frame just analysed: `objects` with the `track_ids` the tracker gave
    /// them (same order), the zones and lines with their counts now, and the `picture` asked
    /// for, to be rendered, with persons pixelated when the camera is `redacted`, none when
    /// pictures are off.
    pub fn pending_view(
        &self,
        frame: &YuvFrame,
        objects: &[Object],
        track_ids: &[Option<u64>],
        picture: &ViewPicture,
        captured_at: SystemTime,
    ) -> PendingView {
        let (privacy, job) = match self.snapshots {
            SnapshotMode::Off => ("off", None),
            mode => {
                let privacy = if mode == SnapshotMode::Redacted {
                    "redacted"
                } else {
                    "full"
                };
                let job = PictureJob {
                    frame: frame.clone(),
                    picture: picture.clone(),
                    redact: self.boxes_to_pixelate(objects),
                    quality: self.snapshot_quality,
                };
                (privacy, Some(job))
            }
        };
        let view = View {
            width: frame.width,
            height: frame.height,
            privacy,
            jpeg: None,
            model_input: picture.placement(frame.width, frame.height),
            objects: objects
                .iter()
                .enumerate()
                .map(|(i, o)| ViewObject {
                    class: o.class,
                    label: o.label.clone(),
                    score: o.score,
                    bbox: o.bbox,
                    track_id: track_ids.get(i).copied().flatten(),
                })
                .collect(),
            zones: self
                .zones
                .iter()
                .map(|(zone, watch)| ZoneView {
                    name: zone.name.to_string(),
                    points: zone.polygon.points().iter().map(|p| [p.x, p.y]).collect(),
                    classes: zone.classes.iter().map(|c| c.as_str()).collect(),
                    occupancy: watch.occupancy(),
                })
                .collect(),
            lines: self
                .lines
                .iter()
                .zip(&self.crossings)
                .map(|((line, _), crossings)| LineView {
                    name: line.name.to_string(),
                    points: line.polyline.points().iter().map(|p| [p.x, p.y]).collect(),
                    classes: line.classes.iter().map(|c| c.as_str()).collect(),
                    direction_names: line.direction_names.clone().map(|n| n.to_string()),
                    crossings: *crossings,
                })
                .collect(),
            captured_at,
        };
        PendingView { view, picture: job }
    }
}
