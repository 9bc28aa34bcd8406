//! Pictures: the agent's frame types, image decode/encode and drawing. The only module that
//! knows OpenCV.
//!
//! - A [`YuvFrame`] is a decoded video frame as the decoder gave it (YUV 4:2:0: I420, NV12, …),
//!   its planes held where they are (a mapped GStreamer buffer, without a copy). The model reads
//!   it directly; it becomes a full-size picture ([`YuvFrame::to_bgr`]) only when one is drawn.
//! - A [`Frame`] is 8-bit BGR, what OpenCV decodes still pictures to and draws on. Rows may be
//!   padded (`stride_bytes >= width * 3`).

use std::path::Path;

use opencv::core::{
    Mat, MatTraitConst, MatTraitConstManual, MatTraitManual, Point, Rect as CvRect, Scalar, Vector,
    VectorToVec,
};
use opencv::{imgcodecs, imgproc};

use crate::detect::Object;
use crate::detect::preprocess::{BgrImage, InputTransform};

mod video;

pub use video::{OwnedPlanes, PlaneStorage, YuvFormat, YuvFrame};

/// An owned 8-bit BGR picture.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub stride_bytes: usize,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({}x{})", self.width, self.height)
    }
}

/// Why a picture could not be read, written or drawn.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be read (the caller knows and names the path).
    #[error("cannot read the file")]
    Read {
        #[source]
        source: std::io::Error,
    },
    #[error("not a readable image (unknown format or corrupt data)")]
    Undecodable,
    #[error("image is empty")]
    Empty,
    #[error(
        "frame buffer of {len} bytes is too short for {width}x{height} with stride {stride_bytes}"
    )]
    BadBuffer {
        width: usize,
        height: usize,
        stride_bytes: usize,
        len: usize,
    },
    #[error("OpenCV: {0}")]
    OpenCv(String),
    /// A decoded frame whose planes do not hold its pixels.
    #[error("decoded frame: {0}")]
    Planes(String),
}

impl From<opencv::Error> for ImageError {
    fn from(e: opencv::Error) -> Self {
        ImageError::OpenCv(e.message)
    }
}

impl Frame {
    /// Wraps a BGR buffer, checking that it is large enough.
    ///
    /// # Errors
    /// [`ImageError::Empty`] for a zero size, [`ImageError::BadBuffer`] when `data` is short.
    pub fn from_bgr(
        width: usize,
        height: usize,
        stride_bytes: usize,
        data: Vec<u8>,
    ) -> Result<Frame, ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::Empty);
        }
        let needed = stride_bytes * (height - 1) + width * 3;
        if stride_bytes < width * 3 || data.len() < needed {
            return Err(ImageError::BadBuffer {
                width,
                height,
                stride_bytes,
                len: data.len(),
            });
        }
        Ok(Frame {
            width,
            height,
            stride_bytes,
            data,
        })
    }

    /// A borrowed view for pre-processing.
    pub fn as_bgr(&self) -> BgrImage<'_> {
        BgrImage {
            data: &self.data,
            width: self.width,
            height: self.height,
            stride_bytes: self.stride_bytes,
        }
    }

    /// The BGR value of one pixel (for tests and checks).
    pub fn pixel(&self, x: usize, y: usize) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = y * self.stride_bytes + x * 3;
        Some([self.data[i], self.data[i + 1], self.data[i + 2]])
    }

    fn to_mat(&self) -> Result<Mat, ImageError> {
        let mut mat = Mat::new_rows_cols_with_default(
            self.height as i32,
            self.width as i32,
            opencv::core::CV_8UC3,
            Scalar::all(0.0),
        )?;
        let row_bytes = self.width * 3;
        let out = mat.data_bytes_mut()?;
        for y in 0..self.height {
            out[y * row_bytes..(y + 1) * row_bytes].copy_from_slice(
                &self.data[y * self.stride_bytes..y * self.stride_bytes + row_bytes],
            );
        }
        Ok(mat)
    }

    fn from_mat(mat: &Mat) -> Result<Frame, ImageError> {
        if mat.empty() {
            return Err(ImageError::Undecodable);
        }
        if mat.typ() != opencv::core::CV_8UC3 {
            return Err(ImageError::OpenCv(format!(
                "unexpected pixel type {}",
                mat.typ()
            )));
        }
        let mat = if mat.is_continuous() {
            mat.clone()
        } else {
            mat.try_clone()?
        };
        let (width, height) = (mat.cols() as usize, mat.rows() as usize);
        Frame::from_bgr(width, height, width * 3, mat.data_bytes()?.to_vec())
    }
}

/// Decodes an encoded picture (JPEG, PNG, BMP, …) into a BGR frame.
///
/// # Errors
/// [`ImageError::Undecodable`] when the bytes are not a picture OpenCV can read.
pub fn decode_image(bytes: &[u8]) -> Result<Frame, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let buffer = Vector::<u8>::from_slice(bytes);
    let mat = imgcodecs::imdecode(&buffer, imgcodecs::IMREAD_COLOR)?;
    Frame::from_mat(&mat)
}

/// Reads and decodes a picture file.
///
/// # Errors
/// The file cannot be read, or is not a picture.
pub fn read_image(path: &Path) -> Result<Frame, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Read { source })?;
    decode_image(&bytes)
}

/// Encodes a frame as JPEG with `quality` 1..=100.
pub fn encode_jpeg(frame: &Frame, quality: u8) -> Result<Vec<u8>, ImageError> {
    mat_to_jpeg(&frame.to_mat()?, quality)
}

fn mat_to_jpeg(mat: &Mat, quality: u8) -> Result<Vec<u8>, ImageError> {
    let mut buffer = Vector::<u8>::new();
    let params = Vector::<i32>::from_slice(&[
        imgcodecs::IMWRITE_JPEG_QUALITY,
        i32::from(quality.clamp(1, 100)),
    ]);
    if !imgcodecs::imencode(".jpg", mat, &mut buffer, &params)? {
        return Err(ImageError::OpenCv("JPEG encoding failed".to_owned()));
    }
    Ok(buffer.to_vec())
}

/// Box colour per class (BGR).
fn class_colour(class: &str) -> Scalar {
    match class {
        "person" => Scalar::new(60.0, 220.0, 60.0, 0.0),
        "vehicle" => Scalar::new(255.0, 160.0, 30.0, 0.0),
        _ => Scalar::new(180.0, 180.0, 180.0, 0.0),
    }
}

/// A copy of `frame` with each object's box and `label score` drawn.
///
/// # Errors
/// Only OpenCV failures, which do not happen for a valid frame.
pub fn annotate(frame: &Frame, objects: &[Object]) -> Result<Frame, ImageError> {
    let mut mat = frame.to_mat()?;
    let (w, h) = (frame.width as f32, frame.height as f32);
    let (thickness, font_scale) = stroke_sizes(frame.height);
    for object in objects {
        let [x, y, bw, bh] = object.bbox;
        let rect = CvRect::new(
            (x * w).round() as i32,
            (y * h).round() as i32,
            (bw * w).round() as i32,
            (bh * h).round() as i32,
        );
        let colour = class_colour(object.class);
        imgproc::rectangle(&mut mat, rect, colour, thickness, imgproc::LINE_8, 0)?;
        let text = format!("{} {:.2}", object.label, object.score);
        draw_label(
            &mut mat,
            &text,
            rect.tl(),
            colour,
            font_scale,
            NoRoomAbove::Below,
        )?;
    }
    Frame::from_mat(&mat)
}

/// Line thickness and font scale for a picture `height` pixels high: they follow the picture
/// size so they stay legible on 4K and on 640x360.
fn stroke_sizes(height: usize) -> (i32, f64) {
    let thickness = ((height as f32 / 360.0).round() as i32).max(1) * 2;
    let font_scale = f64::from((height as f32 / 900.0).max(0.4));
    (thickness, font_scale)
}

/// Something drawn on a snapshot, in normalised coordinates.
#[derive(Clone, Debug, PartialEq)]
pub enum Overlay {
    /// An object's box with its label, in its class colour.
    Box {
        bbox: [f32; 4],
        class: &'static str,
        label: String,
    },
    /// A zone (closed) or a line (open) with its name at the first point.
    Shape {
        points: Vec<[f32; 2]>,
        closed: bool,
        label: String,
    },
    /// An arrow from `from` to `to` with `label` at its head, in the direction colour: which
    /// way across a line counts as which direction.
    Arrow {
        from: [f32; 2],
        to: [f32; 2],
        label: String,
    },
}

/// Zones and lines are drawn in yellow (BGR).
fn shape_colour() -> Scalar {
    Scalar::new(0.0, 215.0, 255.0, 0.0)
}

/// Direction arrows are drawn in magenta (BGR), to stand out from the yellow line they cross.
fn arrow_colour() -> Scalar {
    Scalar::new(255.0, 0.0, 255.0, 0.0)
}

fn to_pixels(frame_width: i32, frame_height: i32, [x, y, w, h]: [f32; 4]) -> CvRect {
    let (fw, fh) = (frame_width as f32, frame_height as f32);
    let x1 = (x * fw).round().clamp(0.0, fw - 1.0) as i32;
    let y1 = (y * fh).round().clamp(0.0, fh - 1.0) as i32;
    let x2 = ((x + w) * fw).round().clamp(x1 as f32 + 1.0, fw) as i32;
    let y2 = ((y + h) * fh).round().clamp(y1 as f32 + 1.0, fh) as i32;
    CvRect::new(x1, y1, x2 - x1, y2 - y1)
}

/// Where a label goes when there is no room for it above its point.
#[derive(Clone, Copy)]
enum NoRoomAbove {
    /// At the top edge of the picture.
    TopEdge,
    /// Below the point: inside the box whose top-left corner it is.
    Below,
}

/// Draws `text` in black on a `colour` background just above `at` (its left end), or where
/// `no_room` says when that would leave the top of the picture.
fn draw_label(
    mat: &mut Mat,
    text: &str,
    at: Point,
    colour: Scalar,
    font_scale: f64,
    no_room: NoRoomAbove,
) -> Result<(), ImageError> {
    let font = imgproc::FONT_HERSHEY_SIMPLEX;
    let mut baseline = 0;
    let size = imgproc::get_text_size(text, font, font_scale, 1, &mut baseline)?;
    let pad = 2;
    let (x, y) = (at.x, at.y);
    let top = match y - size.height - 2 * pad {
        above if above >= 0 => above,
        _ => match no_room {
            NoRoomAbove::TopEdge => 0,
            NoRoomAbove::Below => y,
        },
    };
    let background = CvRect::new(
        x.max(0),
        top,
        size.width + 2 * pad,
        size.height + baseline + 2 * pad,
    );
    imgproc::rectangle(mat, background, colour, imgproc::FILLED, imgproc::LINE_8, 0)?;
    imgproc::put_text(
        mat,
        text,
        Point::new(x.max(0) + pad, top + pad + size.height),
        font,
        font_scale,
        Scalar::all(0.0),
        1,
        imgproc::LINE_AA,
        false,
    )?;
    Ok(())
}

/// A snapshot for an event: the frame scaled down to at most `max_width`, the `redact` boxes
/// pixelated beyond recognition (data minimisation: every person in the picture), then the
/// overlays drawn, encoded as JPEG of `quality`.
///
/// # Errors
/// Only OpenCV failures, which do not happen for a valid frame.
pub fn snapshot_jpeg(
    frame: &Frame,
    redact: &[[f32; 4]],
    overlays: &[Overlay],
    max_width: u32,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    let mut mat = frame.to_mat()?;
    if frame.width > max_width.max(16) as usize {
        let scale = f64::from(max_width.max(16)) / frame.width as f64;
        let size = opencv::core::Size::new(
            max_width.max(16) as i32,
            ((frame.height as f64 * scale).round() as i32).max(1),
        );
        let mut scaled = Mat::default();
        imgproc::resize(&mat, &mut scaled, size, 0.0, 0.0, imgproc::INTER_AREA)?;
        mat = scaled;
    }
    pixelate(&mut mat, redact)?;
    let (w, h) = (mat.cols(), mat.rows());
    let (thickness, font_scale) = stroke_sizes(h as usize);
    for overlay in overlays {
        match overlay {
            Overlay::Box { bbox, class, label } => {
                let rect = to_pixels(w, h, *bbox);
                let colour = class_colour(class);
                imgproc::rectangle(&mut mat, rect, colour, thickness, imgproc::LINE_8, 0)?;
                let corner = rect.tl();
                draw_label(
                    &mut mat,
                    label,
                    corner,
                    colour,
                    font_scale,
                    NoRoomAbove::TopEdge,
                )?;
            }
            Overlay::Shape {
                points,
                closed,
                label,
            } => {
                let pixels: Vector<Point> = points
                    .iter()
                    .map(|[x, y]| {
                        Point::new((x * w as f32).round() as i32, (y * h as f32).round() as i32)
                    })
                    .collect();
                let mut polylines = Vector::<Vector<Point>>::new();
                polylines.push(pixels.clone());
                imgproc::polylines(
                    &mut mat,
                    &polylines,
                    *closed,
                    shape_colour(),
                    thickness,
                    imgproc::LINE_AA,
                    0,
                )?;
                if let Ok(first) = pixels.get(0) {
                    draw_label(
                        &mut mat,
                        label,
                        first,
                        shape_colour(),
                        font_scale,
                        NoRoomAbove::TopEdge,
                    )?;
                }
            }
            Overlay::Arrow { from, to, label } => {
                let pixel = |[x, y]: [f32; 2]| {
                    Point::new((x * w as f32).round() as i32, (y * h as f32).round() as i32)
                };
                let (start, end) = (pixel(*from), pixel(*to));
                imgproc::arrowed_line(
                    &mut mat,
                    start,
                    end,
                    arrow_colour(),
                    thickness,
                    imgproc::LINE_AA,
                    0,
                    0.3,
                )?;
                // The label just beyond the head, in the arrow's direction, inside the picture.
                let mut baseline = 0;
                let size = imgproc::get_text_size(
                    label,
                    imgproc::FONT_HERSHEY_SIMPLEX,
                    font_scale,
                    1,
                    &mut baseline,
                )?;
                let (dx, dy) = (f64::from(end.x - start.x), f64::from(end.y - start.y));
                let length = dx.hypot(dy).max(1.0);
                let (half_w, half_h) = (
                    f64::from(size.width) / 2.0 + 2.0,
                    f64::from(size.height + baseline) / 2.0 + 2.0,
                );
                let reach = (dx.abs() * half_w + dy.abs() * half_h) / length + f64::from(thickness);
                let centre_x = f64::from(end.x) + dx / length * reach;
                let centre_y = f64::from(end.y) + dy / length * reach;
                // `draw_label` takes the left end of the text's baseline.
                let x = ((centre_x - half_w + 2.0).round() as i32)
                    .clamp(0, (w - size.width - 4).max(0));
                let y = ((centre_y + f64::from(size.height) / 2.0).round() as i32)
                    .clamp(size.height + 4, h.max(size.height + 4));
                let at = Point::new(x, y);
                draw_label(
                    &mut mat,
                    label,
                    at,
                    arrow_colour(),
                    font_scale,
                    NoRoomAbove::TopEdge,
                )?;
            }
        }
    }
    mat_to_jpeg(&mat, quality)
}

/// Pixelates the `boxes` (fractions of the picture) of `mat` beyond recognition: each down to
/// blocks of about 1/6 of its width, then back up without smoothing.
fn pixelate(mat: &mut Mat, boxes: &[[f32; 4]]) -> Result<(), ImageError> {
    let (w, h) = (mat.cols(), mat.rows());
    for bbox in boxes {
        let rect = to_pixels(w, h, *bbox);
        let region = Mat::roi(mat, rect)?.try_clone()?;
        let blocks =
            opencv::core::Size::new((rect.width / 6).clamp(1, 8), (rect.height / 6).clamp(1, 16));
        let mut small = Mat::default();
        imgproc::resize(&region, &mut small, blocks, 0.0, 0.0, imgproc::INTER_AREA)?;
        let mut coarse = Mat::default();
        imgproc::resize(
            &small,
            &mut coarse,
            rect.size(),
            0.0,
            0.0,
            imgproc::INTER_NEAREST,
        )?;
        let mut target = Mat::roi_mut(mat, rect)?;
        coarse.copy_to(&mut target)?;
    }
    Ok(())
}

/// `frame` as a BGR picture at least `min_width` x `min_height` (or its full size if smaller):
/// shrunk first by the largest whole factor that keeps it so ([`YuvFrame::shrunk`]), then
/// converted, so a picture shown small costs a fraction of a full-size conversion.
///
/// # Errors
/// As [`YuvFrame::to_bgr`].
pub fn to_bgr_at_least(
    frame: &YuvFrame,
    min_width: usize,
    min_height: usize,
) -> Result<Frame, ImageError> {
    let factor = (frame.width / min_width.max(1)).min(frame.height / min_height.max(1));
    frame.shrunk(factor).to_bgr()
}

/// The frame as the model sees it: scaled by `transform` (bilinear, as the preprocessing
/// does), placed at its padding in an `input_width` x `input_height` picture filled with
/// `pad_value` (the letterbox bars), the `redact` boxes (fractions of the frame) pixelated
/// first; encoded as JPEG of `quality`.
///
/// # Errors
/// Only OpenCV failures, which do not happen for a valid frame and transform.
pub fn model_input_jpeg(
    frame: &Frame,
    redact: &[[f32; 4]],
    transform: &InputTransform,
    (input_width, input_height): (usize, usize),
    pad_value: u8,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    let mut mat = frame.to_mat()?;
    pixelate(&mut mat, redact)?;
    let (pad_x, pad_y) = (transform.pad_x as i32, transform.pad_y as i32);
    let resized_width = ((frame.width as f32 * transform.scale_x).round() as i32)
        .clamp(1, (input_width as i32 - pad_x).max(1));
    let resized_height = ((frame.height as f32 * transform.scale_y).round() as i32)
        .clamp(1, (input_height as i32 - pad_y).max(1));
    let mut resized = Mat::default();
    imgproc::resize(
        &mat,
        &mut resized,
        opencv::core::Size::new(resized_width, resized_height),
        0.0,
        0.0,
        imgproc::INTER_LINEAR,
    )?;
    let mut input = Mat::new_rows_cols_with_default(
        input_height as i32,
        input_width as i32,
        opencv::core::CV_8UC3,
        Scalar::all(f64::from(pad_value)),
    )?;
    let mut target = Mat::roi_mut(
        &mut input,
        CvRect::new(pad_x, pad_y, resized_width, resized_height),
    )?;
    resized.copy_to(&mut target)?;
    mat_to_jpeg(&input, quality)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(width: usize, height: usize, bgr: [u8; 3]) -> Frame {
        let data = bgr
            .iter()
            .copied()
            .cycle()
            .take(width * height * 3)
            .collect();
        Frame::from_bgr(width, height, width * 3, data).unwrap()
    }

    #[test]
    fn jpeg_round_trip_keeps_size_and_colour() {
        let frame = solid(64, 48, [10, 200, 40]);
        let jpeg = encode_jpeg(&frame, 95).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "JPEG magic");
        let back = decode_image(&jpeg).unwrap();
        assert_eq!((back.width, back.height), (64, 48));
        let p = back.pixel(32, 24).unwrap();
        for (a, b) in p.iter().zip([10u8, 200, 40]) {
            assert!(a.abs_diff(b) <= 4, "pixel {p:?}");
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(matches!(decode_image(b""), Err(ImageError::Empty)));
        assert!(matches!(
            decode_image(b"not a picture at all"),
            Err(ImageError::Undecodable)
        ));
        assert!(matches!(
            Frame::from_bgr(4, 4, 12, vec![0; 10]),
            Err(ImageError::BadBuffer { .. })
        ));
        assert!(matches!(
            Frame::from_bgr(4, 4, 8, vec![0; 100]),
            Err(ImageError::BadBuffer { .. })
        ));
        assert!(matches!(
            Frame::from_bgr(0, 4, 12, vec![]),
            Err(ImageError::Empty)
        ));
    }

    #[test]
    fn annotate_draws_the_box_in_the_class_colour() {
        let frame = solid(200, 100, [0, 0, 0]);
        let object = Object {
            class: "person",
            label: "person".into(),
            score: 0.9,
            bbox: [0.25, 0.5, 0.5, 0.4],
        };
        let drawn = annotate(&frame, &[object]).unwrap();
        assert_eq!(
            drawn.pixel(120, 89),
            Some([60, 220, 60]),
            "bottom edge of the box"
        );
        assert_eq!(drawn.pixel(5, 5), Some([0, 0, 0]), "outside untouched");
        assert_eq!(drawn.pixel(100, 70), Some([0, 0, 0]), "inside untouched");
    }

    #[test]
    fn snapshot_scales_redacts_and_draws() {
        // Left half a fine checkerboard (detail a person's face would have), right half black.
        let (w, h) = (400usize, 200usize);
        let mut data = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w / 2 {
                let v = if (x / 2 + y / 2) % 2 == 0 { 255 } else { 0 };
                data[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[v, v, v]);
            }
        }
        let frame = Frame::from_bgr(w, h, w * 3, data).unwrap();
        let overlays = [
            Overlay::Box {
                bbox: [0.6, 0.2, 0.2, 0.5],
                class: "person",
                label: "person #3".into(),
            },
            Overlay::Shape {
                points: vec![[0.55, 0.05], [0.55, 0.95]],
                closed: false,
                label: "border".into(),
            },
        ];
        let jpeg = snapshot_jpeg(&frame, &[[0.0, 0.0, 0.5, 1.0]], &overlays, 200, 95).unwrap();
        let out = decode_image(&jpeg).unwrap();
        assert_eq!((out.width, out.height), (200, 100), "scaled to max_width");
        // The redacted half has lost its fine detail: neighbouring pixels are alike.
        let mut max_step = 0;
        for x in 10..90 {
            let (a, b) = (
                out.pixel(x, 50).unwrap()[1],
                out.pixel(x + 1, 50).unwrap()[1],
            );
            max_step = max_step.max(a.abs_diff(b));
        }
        assert!(max_step < 60, "pixelated: largest step {max_step}");
        // The person box is drawn in green on the black half, the line in yellow.
        let green = out.pixel(140, 69).unwrap();
        assert!(
            green[1] > 150 && green[0] < 120 && green[2] < 120,
            "box edge {green:?}"
        );
        let yellow = out.pixel(110, 80).unwrap();
        assert!(
            yellow[2] > 150 && yellow[1] > 150 && yellow[0] < 100,
            "line {yellow:?}"
        );
    }

    #[test]
    fn snapshot_draws_arrows_with_their_label_beyond_the_head() {
        let frame = solid(400, 200, [0, 0, 0]);
        let overlays = [Overlay::Arrow {
            from: [0.2, 0.5],
            to: [0.6, 0.5],
            label: "north".into(),
        }];
        let out = decode_image(&snapshot_jpeg(&frame, &[], &overlays, 400, 95).unwrap()).unwrap();
        let magenta = |p: [u8; 3]| p[2] > 150 && p[0] > 150 && p[1] < 100;
        assert!(magenta(out.pixel(120, 100).unwrap()), "shaft");
        assert!(
            !magenta(out.pixel(60, 100).unwrap()),
            "nothing behind the tail"
        );
        // The label lies beyond the head (x = 240), around the arrow's line.
        let count = |xs: std::ops::Range<usize>, ys: std::ops::Range<usize>| {
            xs.flat_map(|x| ys.clone().map(move |y| (x, y)))
                .filter(|&(x, y)| magenta(out.pixel(x, y).unwrap()))
                .count()
        };
        assert!(count(244..330, 85..115) > 100, "label beyond the head");
        assert!(count(0..78, 0..200) == 0, "nothing behind the tail");
        assert!(count(100..180, 0..90) == 0, "nothing above the shaft");
    }

    #[test]
    fn padded_rows_are_honoured() {
        // 2x2 picture with 2 bytes of padding per row.
        let data = vec![1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0];
        let frame = Frame::from_bgr(2, 2, 8, data).unwrap();
        let png_like = encode_jpeg(&frame, 100).unwrap();
        assert!(decode_image(&png_like).is_ok());
        assert_eq!(frame.pixel(1, 1), Some([10, 11, 12]));
        assert_eq!(
            frame.to_mat().unwrap().data_bytes().unwrap(),
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        );
    }
}
