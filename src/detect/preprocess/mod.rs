//! Frame → model-input tensor: bilinear resize (stretch or letterbox), channel
//! reordering and per-channel normalisation, written straight into a reused tensor.
//!
//! Pure and allocation-free per pixel: the sampling tables are built once per
//! (source size, [`InputSpec`]) and kept by a [`Preprocessor`]; [`preprocess_into`] is
//! the simple one-shot entry that builds them for a single call.

use ndarray::Array4;
use serde::{Deserialize, Serialize};

use crate::geometry::Rect;

mod yuv;

pub use yuv::{Plane, YuvColour, YuvImage, YuvMatrix, YuvRange};

/// Channel order the model expects. The agent's frames are always BGR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorOrder {
    Bgr,
    Rgb,
}

/// Memory layout of the model-input tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TensorLayout {
    /// `[1, 3, height, width]`
    Nchw,
    /// `[1, height, width, 3]`
    Nhwc,
}

/// How the source image is fitted to the model input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Scale each axis independently to fill the input (aspect ratio not kept).
    Stretch,
    /// Scale both axes by `min(W / w, H / h)`, centre, and pad the rest with `pad_value`.
    Letterbox,
}

/// What a model wants as input.
///
/// `mean` and `std` are given in the model's channel order (after colour reordering),
/// in 8-bit pixel units: a tensor value is `(pixel - mean[c]) / std[c]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Model input width in pixels, `> 0`.
    pub width: usize,
    /// Model input height in pixels, `> 0`.
    pub height: usize,
    pub layout: TensorLayout,
    pub color_order: ColorOrder,
    /// Per-channel mean in pixel units, model channel order; finite.
    pub mean: [f32; 3],
    /// Per-channel standard deviation in pixel units, model channel order; finite, non-zero.
    pub std: [f32; 3],
    pub resize: ResizeMode,
    /// Raw 8-bit value of letterbox padding (normalised like a pixel, on every channel).
    pub pad_value: u8,
}

impl InputSpec {
    /// Shape of the tensor this spec fills: `[1, 3, H, W]` (Nchw) or `[1, H, W, 3]` (Nhwc).
    pub fn tensor_shape(&self) -> [usize; 4] {
        match self.layout {
            TensorLayout::Nchw => [1, 3, self.height, self.width],
            TensorLayout::Nhwc => [1, self.height, self.width, 3],
        }
    }

    /// A zeroed tensor of [`InputSpec::tensor_shape`], ready for [`preprocess_into`].
    pub fn new_tensor(&self) -> Array4<f32> {
        Array4::zeros(self.tensor_shape())
    }

    /// Checks the input size and normalisation constants.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        if self.width == 0 || self.height == 0 {
            return Err(PreprocessError::InvalidInputSize {
                width: self.width,
                height: self.height,
            });
        }
        for channel in 0..3 {
            let mean = self.mean[channel];
            let std = self.std[channel];
            let extreme_values = [(0.0 - mean) / std, (255.0 - mean) / std];
            if !mean.is_finite()
                || !std.is_finite()
                || std == 0.0
                || !extreme_values.iter().all(|value| value.is_finite())
            {
                return Err(PreprocessError::InvalidNormalization { channel, mean, std });
            }
        }
        Ok(())
    }
}

/// A borrowed 8-bit, 3-channel BGR image (the agent's frame format).
///
/// Pixel `(x, y)` channel `c` is `data[y * stride_bytes + x * 3 + c]`. Rows may be
/// padded: `stride_bytes >= width * 3`; the last row needs only `width * 3` bytes.
#[derive(Clone, Copy, Debug)]
pub struct BgrImage<'a> {
    pub data: &'a [u8],
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Distance in bytes between the starts of consecutive rows.
    pub stride_bytes: usize,
}

impl<'a> BgrImage<'a> {
    /// A tightly packed image (`stride_bytes = width * 3`).
    pub fn packed(data: &'a [u8], width: usize, height: usize) -> BgrImage<'a> {
        BgrImage {
            data,
            width,
            height,
            stride_bytes: width.saturating_mul(3),
        }
    }

    /// Checks that the image is non-empty and `data` covers every row.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        if self.width == 0 || self.height == 0 {
            return Err(PreprocessError::EmptyImage {
                width: self.width,
                height: self.height,
            });
        }
        let too_large = PreprocessError::ImageTooLarge {
            width: self.width,
            height: self.height,
            stride_bytes: self.stride_bytes,
        };
        let row_bytes = self.width.checked_mul(3).ok_or(too_large.clone())?;
        if self.stride_bytes < row_bytes {
            return Err(PreprocessError::StrideTooSmall {
                stride_bytes: self.stride_bytes,
                width: self.width,
                minimum_bytes: row_bytes,
            });
        }
        let required_bytes = (self.height - 1)
            .checked_mul(self.stride_bytes)
            .and_then(|bytes| bytes.checked_add(row_bytes))
            .ok_or(too_large)?;
        if self.data.len() < required_bytes {
            return Err(PreprocessError::DataTooShort {
                actual_bytes: self.data.len(),
                required_bytes,
                width: self.width,
                height: self.height,
                stride_bytes: self.stride_bytes,
            });
        }
        Ok(())
    }

    /// Bytes of row `y` (`width * 3` of them). Only call after [`BgrImage::validate`].
    fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride_bytes;
        &self.data[start..start + self.width * 3]
    }
}

/// Maps boxes between model-input pixels and the source image.
///
/// Forward: `input = source * scale + pad` per axis (source and input in pixels).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InputTransform {
    /// Input pixels per source pixel along x.
    pub scale_x: f32,
    /// Input pixels per source pixel along y.
    pub scale_y: f32,
    /// Left padding in input pixels (letterbox), 0 for stretch.
    pub pad_x: f32,
    /// Top padding in input pixels (letterbox), 0 for stretch.
    pub pad_y: f32,
    /// Source image width in pixels.
    pub source_width: usize,
    /// Source image height in pixels.
    pub source_height: usize,
}

impl InputTransform {
    /// Box in model-input pixels → source pixels (not clamped).
    pub fn to_source_pixels(&self, input_box: Rect) -> Rect {
        Rect {
            x1: (input_box.x1 - self.pad_x) / self.scale_x,
            y1: (input_box.y1 - self.pad_y) / self.scale_y,
            x2: (input_box.x2 - self.pad_x) / self.scale_x,
            y2: (input_box.y2 - self.pad_y) / self.scale_y,
        }
    }

    /// Box in source pixels → model-input pixels (not clamped).
    pub fn to_input_pixels(&self, source_box: Rect) -> Rect {
        Rect {
            x1: source_box.x1 * self.scale_x + self.pad_x,
            y1: source_box.y1 * self.scale_y + self.pad_y,
            x2: source_box.x2 * self.scale_x + self.pad_x,
            y2: source_box.y2 * self.scale_y + self.pad_y,
        }
    }

    /// Box in model-input pixels → source image normalised to `0..1`, clamped to it
    /// (parts falling in the letterbox padding are cut off).
    pub fn to_normalized(&self, input_box: Rect) -> Rect {
        let source = self.to_source_pixels(input_box);
        let width = self.source_width as f32;
        let height = self.source_height as f32;
        Rect {
            x1: source.x1 / width,
            y1: source.y1 / height,
            x2: source.x2 / width,
            y2: source.y2 / height,
        }
        .clamp_to(1.0, 1.0)
    }
}

/// Where the resized source lands inside the model input, in whole input pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ResizeGeometry {
    resized_width: usize,
    resized_height: usize,
    pad_x: usize,
    pad_y: usize,
}

fn resize_geometry(source_width: usize, source_height: usize, spec: &InputSpec) -> ResizeGeometry {
    match spec.resize {
        ResizeMode::Stretch => ResizeGeometry {
            resized_width: spec.width,
            resized_height: spec.height,
            pad_x: 0,
            pad_y: 0,
        },
        ResizeMode::Letterbox => {
            let scale = (spec.width as f64 / source_width as f64)
                .min(spec.height as f64 / source_height as f64);
            // Float → int casts saturate (NaN → 0), so degenerate sizes cannot panic.
            let resized_width = ((source_width as f64 * scale).round() as usize)
                .max(1)
                .min(spec.width);
            let resized_height = ((source_height as f64 * scale).round() as usize)
                .max(1)
                .min(spec.height);
            ResizeGeometry {
                resized_width,
                resized_height,
                pad_x: (spec.width - resized_width) / 2,
                pad_y: (spec.height - resized_height) / 2,
            }
        }
    }
}

/// The transform [`preprocess_into`] applies to a `source_width` x `source_height` image.
///
/// With letterbox the resized size is rounded to whole pixels and the padding is
/// `floor((input - resized) / 2)`, so `scale_x` and `scale_y` may differ very slightly.
pub fn input_transform(
    source_width: usize,
    source_height: usize,
    spec: &InputSpec,
) -> InputTransform {
    let geometry = resize_geometry(source_width, source_height, spec);
    InputTransform {
        scale_x: (geometry.resized_width as f64 / source_width as f64) as f32,
        scale_y: (geometry.resized_height as f64 / source_height as f64) as f32,
        pad_x: geometry.pad_x as f32,
        pad_y: geometry.pad_y as f32,
        source_width,
        source_height,
    }
}

/// Why a frame could not be turned into a model input.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum PreprocessError {
    #[error("image is empty ({width}x{height} pixels)")]
    EmptyImage { width: usize, height: usize },
    #[error(
        "image row stride is {stride_bytes} bytes, less than the {minimum_bytes} bytes of {width} BGR pixels"
    )]
    StrideTooSmall {
        stride_bytes: usize,
        width: usize,
        minimum_bytes: usize,
    },
    #[error(
        "image data is {actual_bytes} bytes, but {width}x{height} BGR pixels with a {stride_bytes}-byte stride need {required_bytes}"
    )]
    DataTooShort {
        actual_bytes: usize,
        required_bytes: usize,
        width: usize,
        height: usize,
        stride_bytes: usize,
    },
    #[error(
        "image of {width}x{height} pixels with a {stride_bytes}-byte stride overflows memory sizes"
    )]
    ImageTooLarge {
        width: usize,
        height: usize,
        stride_bytes: usize,
    },
    #[error(
        "{plane} plane: row stride {stride} bytes and sample step {step} cannot hold {width} samples a row"
    )]
    PlaneLayout {
        plane: &'static str,
        stride: usize,
        step: usize,
        width: usize,
    },
    #[error("{plane} plane is {actual_bytes} bytes, its samples need {required_bytes}")]
    PlaneTooShort {
        plane: &'static str,
        actual_bytes: usize,
        required_bytes: usize,
    },
    #[error("{plane} plane of {width}x{height} samples overflows memory sizes")]
    PlaneTooLarge {
        plane: &'static str,
        width: usize,
        height: usize,
    },
    #[error("model input size {width}x{height} is invalid: both must be positive")]
    InvalidInputSize { width: usize, height: usize },
    #[error(
        "normalisation of channel {channel} is invalid (mean {mean}, std {std}): need finite values and a non-zero std"
    )]
    InvalidNormalization { channel: usize, mean: f32, std: f32 },
    #[error("output tensor has shape {actual:?}, expected {expected:?}")]
    OutputShapeMismatch {
        expected: [usize; 4],
        actual: Vec<usize>,
    },
    #[error("output tensor is not contiguous in standard (row-major) order")]
    OutputNotContiguous,
}

/// One destination coordinate's two source taps along an axis.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct AxisTap {
    /// First source index (for columns: byte offset of the pixel in its row).
    first: usize,
    /// Second source index (same unit as `first`); equals `first` at the borders.
    second: usize,
    first_weight: f32,
    /// Weight of `second`; exactly 0 when the sample falls on `first` or is clamped.
    second_weight: f32,
}

/// OpenCV `INTER_LINEAR` taps: `source = (destination + 0.5) * scale - 0.5`, clamped
/// to the border pixels. `element_size` multiplies the indices (3 for byte offsets).
fn axis_taps(source_length: usize, destination_length: usize, element_size: usize) -> Vec<AxisTap> {
    let scale = source_length as f64 / destination_length as f64;
    taps_at(
        source_length,
        destination_length,
        element_size,
        |destination| (destination as f64 + 0.5) * scale - 0.5,
    )
}

/// Two-tap linear interpolation at `position(destination)` (in source samples), clamped to the
/// border samples. `element_size` multiplies the indices.
fn taps_at(
    source_length: usize,
    destination_length: usize,
    element_size: usize,
    position: impl Fn(usize) -> f64,
) -> Vec<AxisTap> {
    let last = source_length.saturating_sub(1);
    (0..destination_length)
        .map(|destination| {
            let position = position(destination);
            let floor = position.floor();
            let (first, fraction) = if floor < 0.0 {
                (0, 0.0)
            } else if floor as usize >= last {
                (last, 0.0)
            } else {
                (floor as usize, position - floor)
            };
            let second = (first + 1).min(last);
            let second_weight = fraction as f32;
            AxisTap {
                first: first * element_size,
                second: second * element_size,
                first_weight: 1.0 - second_weight,
                second_weight,
            }
        })
        .collect()
}

/// Tables derived from (source size, spec); rebuilt only when those change.
#[derive(Debug)]
struct Tables {
    source_width: usize,
    source_height: usize,
    spec: InputSpec,
    geometry: ResizeGeometry,
    columns: Vec<AxisTap>,
    rows: Vec<AxisTap>,
    /// Normalised value of every byte value, per model channel.
    lookup: [[f32; 256]; 3],
    /// Source (BGR) channel feeding each model channel.
    source_channel: [usize; 3],
}

impl Tables {
    fn build(source_width: usize, source_height: usize, spec: &InputSpec) -> Tables {
        let geometry = resize_geometry(source_width, source_height, spec);
        let mut lookup = [[0.0; 256]; 3];
        for (channel, table) in lookup.iter_mut().enumerate() {
            for (byte, value) in table.iter_mut().enumerate() {
                *value = (byte as f32 - spec.mean[channel]) / spec.std[channel];
            }
        }
        Tables {
            source_width,
            source_height,
            spec: spec.clone(),
            geometry,
            columns: axis_taps(source_width, geometry.resized_width, 3),
            rows: axis_taps(source_height, geometry.resized_height, 1),
            lookup,
            source_channel: match spec.color_order {
                ColorOrder::Bgr => [0, 1, 2],
                ColorOrder::Rgb => [2, 1, 0],
            },
        }
    }

    fn matches(&self, source_width: usize, source_height: usize, spec: &InputSpec) -> bool {
        self.source_width == source_width
            && self.source_height == source_height
            && self.spec == *spec
    }

    /// Normalised value of `pad_value` per model channel.
    fn pad_values(&self) -> [f32; 3] {
        let byte = usize::from(self.spec.pad_value);
        [
            self.lookup[0][byte],
            self.lookup[1][byte],
            self.lookup[2][byte],
        ]
    }

    /// Horizontally resampled, normalised source row, laid out like one tensor row of
    /// the resized region: planar `[c][x]` for Nchw, interleaved `[x][c]` for Nhwc.
    fn resample_row(&self, source_row: &[u8], values: &mut [f32]) {
        let [first_table, second_table, third_table] = &self.lookup;
        let tables = [first_table, second_table, third_table];
        let sample = |tap: &AxisTap, channel: usize| {
            let offset = self.source_channel[channel];
            let table = tables[channel];
            let first = table[usize::from(source_row[tap.first + offset])];
            let second = table[usize::from(source_row[tap.second + offset])];
            first * tap.first_weight + second * tap.second_weight
        };
        match self.spec.layout {
            TensorLayout::Nhwc => {
                for (pixel, tap) in values.chunks_exact_mut(3).zip(&self.columns) {
                    for (channel, value) in pixel.iter_mut().enumerate() {
                        *value = sample(tap, channel);
                    }
                }
            }
            TensorLayout::Nchw => {
                for (channel, plane) in values.chunks_exact_mut(self.columns.len()).enumerate() {
                    for (value, tap) in plane.iter_mut().zip(&self.columns) {
                        *value = sample(tap, channel);
                    }
                }
            }
        }
    }
}

/// A horizontally resampled source row and which source row it holds.
#[derive(Debug, Default)]
struct RowBuffer {
    source_row: Option<usize>,
    values: Vec<f32>,
}

impl RowBuffer {
    fn load(&mut self, tables: &Tables, image: &BgrImage, source_row: usize) {
        if self.source_row != Some(source_row) {
            tables.resample_row(image.row(source_row), &mut self.values);
            self.source_row = Some(source_row);
        }
    }
}

/// Reusable preprocessing state: caches the sampling tables for the last
/// (source size, spec) and the row scratch buffers, so steady-state frames allocate
/// nothing.
#[derive(Debug, Default)]
pub struct Preprocessor {
    tables: Option<Tables>,
    upper: RowBuffer,
    lower: RowBuffer,
    yuv: yuv::YuvState,
}

/// A picture the model can be run on: BGR (decoded still pictures) or YUV 4:2:0 (decoded video,
/// as the decoder gave it).
#[derive(Clone, Copy, Debug)]
pub enum ImageView<'a> {
    Bgr(BgrImage<'a>),
    Yuv(YuvImage<'a>),
}

impl<'a> From<BgrImage<'a>> for ImageView<'a> {
    fn from(image: BgrImage<'a>) -> Self {
        ImageView::Bgr(image)
    }
}

impl<'a> From<YuvImage<'a>> for ImageView<'a> {
    fn from(image: YuvImage<'a>) -> Self {
        ImageView::Yuv(image)
    }
}

/// The output tensor as a slice, once its shape is checked against `spec`.
fn output_slice<'o>(
    spec: &InputSpec,
    out: &'o mut Array4<f32>,
) -> Result<&'o mut [f32], PreprocessError> {
    let expected = spec.tensor_shape();
    if out.shape() != expected {
        return Err(PreprocessError::OutputShapeMismatch {
            expected,
            actual: out.shape().to_vec(),
        });
    }
    out.as_slice_mut()
        .ok_or(PreprocessError::OutputNotContiguous)
}

impl Preprocessor {
    pub fn new() -> Preprocessor {
        Preprocessor::default()
    }

    /// Same contract as [`preprocess_into`], reusing cached tables when the source
    /// size and spec are unchanged since the previous call.
    pub fn run(
        &mut self,
        image: &BgrImage,
        spec: &InputSpec,
        out: &mut Array4<f32>,
    ) -> Result<InputTransform, PreprocessError> {
        image.validate()?;
        let output = output_slice(spec, out)?;

        let tables = match self.tables.take() {
            Some(tables) if tables.matches(image.width, image.height, spec) => tables,
            _ => {
                spec.validate()?;
                let tables = Tables::build(image.width, image.height, spec);
                let row_length = tables.columns.len() * 3;
                self.upper.values.resize(row_length, 0.0);
                self.lower.values.resize(row_length, 0.0);
                tables
            }
        };
        let tables = self.tables.insert(tables);
        let upper = &mut self.upper;
        let lower = &mut self.lower;
        // Row contents belong to the previous frame.
        upper.source_row = None;
        lower.source_row = None;

        fill_padding(&tables.spec, tables.geometry, tables.pad_values(), output);
        let geometry = tables.geometry;
        for (resized_y, tap) in tables.rows.iter().enumerate() {
            if upper.source_row != Some(tap.first) && lower.source_row == Some(tap.first) {
                std::mem::swap(upper, lower);
            }
            upper.load(tables, image, tap.first);
            let blend_lower = tap.second_weight != 0.0;
            if blend_lower {
                lower.load(tables, image, tap.second);
            }
            let output_y = geometry.pad_y + resized_y;
            let blend = |destination: &mut [f32], upper_values: &[f32], lower_values: &[f32]| {
                if blend_lower {
                    for ((value, upper_value), lower_value) in
                        destination.iter_mut().zip(upper_values).zip(lower_values)
                    {
                        *value = upper_value * tap.first_weight + lower_value * tap.second_weight;
                    }
                } else {
                    destination.copy_from_slice(upper_values);
                }
            };
            match spec.layout {
                TensorLayout::Nhwc => {
                    let start = (output_y * spec.width + geometry.pad_x) * 3;
                    let length = geometry.resized_width * 3;
                    blend(
                        &mut output[start..start + length],
                        &upper.values,
                        &lower.values,
                    );
                }
                TensorLayout::Nchw => {
                    let plane_length = spec.width * spec.height;
                    let length = geometry.resized_width;
                    for channel in 0..3 {
                        let start = channel * plane_length + output_y * spec.width + geometry.pad_x;
                        let row = channel * length..(channel + 1) * length;
                        blend(
                            &mut output[start..start + length],
                            &upper.values[row.clone()],
                            &lower.values[row],
                        );
                    }
                }
            }
        }
        Ok(input_transform(image.width, image.height, spec))
    }
}

impl Preprocessor {
    /// Like [`Preprocessor::run`] for a YUV 4:2:0 picture: resize, colour conversion (the
    /// stream's own matrix and range) and normalisation in one pass, from the planes straight
    /// into the tensor, with the same sampling positions and the same transform.
    ///
    /// # Errors
    /// A plane too short for the picture, or as [`preprocess_into`].
    pub fn run_yuv(
        &mut self,
        image: &YuvImage,
        spec: &InputSpec,
        out: &mut Array4<f32>,
    ) -> Result<InputTransform, PreprocessError> {
        image.validate()?;
        let output = output_slice(spec, out)?;
        self.yuv.run(image, spec, output)?;
        Ok(input_transform(image.width, image.height, spec))
    }

    /// [`Preprocessor::run`] or [`Preprocessor::run_yuv`], whichever `image` needs.
    ///
    /// # Errors
    /// As those.
    pub fn run_view(
        &mut self,
        image: &ImageView,
        spec: &InputSpec,
        out: &mut Array4<f32>,
    ) -> Result<InputTransform, PreprocessError> {
        match image {
            ImageView::Bgr(image) => self.run(image, spec, out),
            ImageView::Yuv(image) => self.run_yuv(image, spec, out),
        }
    }
}

/// Writes `pad_values` (normalised, per model channel) everywhere outside the resized region.
fn fill_padding(
    spec: &InputSpec,
    geometry: ResizeGeometry,
    pad_values: [f32; 3],
    output: &mut [f32],
) {
    let content_rows = geometry.pad_y..geometry.pad_y + geometry.resized_height;
    let content_columns = geometry.pad_x..geometry.pad_x + geometry.resized_width;
    if content_rows.len() == spec.height && content_columns.len() == spec.width {
        return;
    }
    match spec.layout {
        TensorLayout::Nchw => {
            let plane_length = spec.width * spec.height;
            for (plane, pad_value) in output.chunks_exact_mut(plane_length).zip(pad_values) {
                for (y, row) in plane.chunks_exact_mut(spec.width).enumerate() {
                    if content_rows.contains(&y) {
                        row[..content_columns.start].fill(pad_value);
                        row[content_columns.end..].fill(pad_value);
                    } else {
                        row.fill(pad_value);
                    }
                }
            }
        }
        TensorLayout::Nhwc => {
            for (y, row) in output.chunks_exact_mut(spec.width * 3).enumerate() {
                for (x, pixel) in row.chunks_exact_mut(3).enumerate() {
                    if !content_rows.contains(&y) || !content_columns.contains(&x) {
                        pixel.copy_from_slice(&pad_values);
                    }
                }
            }
        }
    }
}

/// Resize (bilinear, pixel centres aligned like OpenCV `INTER_LINEAR`:
/// `source = (destination + 0.5) * scale - 0.5`, clamped at the borders), reorder
/// channels and normalise `image` into `out`, reusing its allocation.
///
/// `out` must have shape [`InputSpec::tensor_shape`] (`[1, 3, H, W]` for Nchw,
/// `[1, H, W, 3]` for Nhwc) in standard layout. Letterbox: scale `min(W / w, H / h)`,
/// image centred, padding filled with `pad_value` normalised like a pixel.
/// Returns the transform mapping model-input boxes back to the source image.
///
/// For many frames, keep a [`Preprocessor`] instead: it caches the sampling tables.
pub fn preprocess_into(
    image: &BgrImage,
    spec: &InputSpec,
    out: &mut Array4<f32>,
) -> Result<InputTransform, PreprocessError> {
    Preprocessor::new().run(image, spec, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ShapeBuilder;

    fn spec(width: usize, height: usize) -> InputSpec {
        InputSpec {
            width,
            height,
            layout: TensorLayout::Nchw,
            color_order: ColorOrder::Bgr,
            mean: [0.0; 3],
            std: [1.0; 3],
            resize: ResizeMode::Stretch,
            pad_value: 0,
        }
    }

    /// Value at model channel `channel`, input pixel (`x`, `y`), whatever the layout.
    fn value_at(
        out: &Array4<f32>,
        layout: TensorLayout,
        channel: usize,
        x: usize,
        y: usize,
    ) -> f32 {
        match layout {
            TensorLayout::Nchw => out[[0, channel, y, x]],
            TensorLayout::Nhwc => out[[0, y, x, channel]],
        }
    }

    fn run(image: &BgrImage, spec: &InputSpec) -> (Array4<f32>, InputTransform) {
        let mut out = spec.new_tensor();
        let transform = preprocess_into(image, spec, &mut out).expect("preprocess succeeds");
        (out, transform)
    }

    #[test]
    fn identity_size_gives_exact_normalised_pixels() {
        struct Case {
            name: &'static str,
            layout: TensorLayout,
            color_order: ColorOrder,
        }
        let cases = vec![
            Case {
                name: "nchw bgr",
                layout: TensorLayout::Nchw,
                color_order: ColorOrder::Bgr,
            },
            Case {
                name: "nchw rgb",
                layout: TensorLayout::Nchw,
                color_order: ColorOrder::Rgb,
            },
            Case {
                name: "nhwc bgr",
                layout: TensorLayout::Nhwc,
                color_order: ColorOrder::Bgr,
            },
            Case {
                name: "nhwc rgb",
                layout: TensorLayout::Nhwc,
                color_order: ColorOrder::Rgb,
            },
        ];
        let (width, height) = (3, 2);
        let data: Vec<u8> = (0..width * height * 3)
            .map(|i| (i * 13 % 256) as u8)
            .collect();
        let image = BgrImage::packed(&data, width, height);
        for case in cases {
            for resize in [ResizeMode::Stretch, ResizeMode::Letterbox] {
                let spec = InputSpec {
                    layout: case.layout,
                    color_order: case.color_order,
                    mean: [10.0, 20.5, 30.0],
                    std: [2.0, 3.0, 57.375],
                    resize,
                    ..spec(width, height)
                };
                let (out, transform) = run(&image, &spec);
                for y in 0..height {
                    for x in 0..width {
                        for channel in 0..3 {
                            let source_channel = match case.color_order {
                                ColorOrder::Bgr => channel,
                                ColorOrder::Rgb => 2 - channel,
                            };
                            let pixel = f32::from(data[(y * width + x) * 3 + source_channel]);
                            let expected = (pixel - spec.mean[channel]) / spec.std[channel];
                            assert_eq!(
                                value_at(&out, case.layout, channel, x, y),
                                expected,
                                "case `{}` {resize:?}: channel {channel} at ({x}, {y})",
                                case.name
                            );
                        }
                    }
                }
                assert_eq!(
                    (
                        transform.scale_x,
                        transform.scale_y,
                        transform.pad_x,
                        transform.pad_y
                    ),
                    (1.0, 1.0, 0.0, 0.0),
                    "case `{}` {resize:?}: transform",
                    case.name
                );
            }
        }
    }

    #[test]
    fn bgr_to_rgb_swaps_first_and_last_channel() {
        let data = [10u8, 20, 30];
        let image = BgrImage::packed(&data, 1, 1);
        let cases = vec![
            (
                "bgr nchw",
                ColorOrder::Bgr,
                TensorLayout::Nchw,
                [10.0, 20.0, 30.0],
            ),
            (
                "rgb nchw",
                ColorOrder::Rgb,
                TensorLayout::Nchw,
                [30.0, 20.0, 10.0],
            ),
            (
                "rgb nhwc",
                ColorOrder::Rgb,
                TensorLayout::Nhwc,
                [30.0, 20.0, 10.0],
            ),
        ];
        for (name, color_order, layout, expected) in cases {
            let spec = InputSpec {
                color_order,
                layout,
                ..spec(1, 1)
            };
            let (out, _) = run(&image, &spec);
            assert_eq!(
                out.iter().copied().collect::<Vec<_>>(),
                expected.to_vec(),
                "case `{name}`"
            );
        }
    }

    #[test]
    fn upscale_two_by_two_to_four_by_four_matches_bilinear() {
        // Each channel c holds base + c, so all three channels are checked at once.
        let base = [[0u8, 40], [80, 120]];
        let mut data = Vec::new();
        for row in base {
            for value in row {
                data.extend([value, value + 1, value + 2]);
            }
        }
        let image = BgrImage::packed(&data, 2, 2);
        // Destination centres fall on source 0 (clamped), 0.25, 0.75 and 1 (clamped).
        let expected = [
            [0.0, 10.0, 30.0, 40.0],
            [20.0, 30.0, 50.0, 60.0],
            [60.0, 70.0, 90.0, 100.0],
            [80.0, 90.0, 110.0, 120.0],
        ];
        for layout in [TensorLayout::Nchw, TensorLayout::Nhwc] {
            let spec = InputSpec {
                layout,
                ..spec(4, 4)
            };
            let (out, transform) = run(&image, &spec);
            for (y, row) in expected.iter().enumerate() {
                for (x, value) in row.iter().enumerate() {
                    for channel in 0..3 {
                        assert_eq!(
                            value_at(&out, layout, channel, x, y),
                            value + channel as f32,
                            "{layout:?}: channel {channel} at ({x}, {y})"
                        );
                    }
                }
            }
            assert_eq!(
                (transform.scale_x, transform.scale_y),
                (2.0, 2.0),
                "{layout:?}"
            );
        }
    }

    #[test]
    fn downscale_averages_neighbours() {
        // 4 columns → 2: centres fall at source 0.5 and 2.5, halfway between pixels.
        let row = [0u8, 0, 0, 100, 100, 100, 200, 200, 200, 250, 250, 250];
        let image = BgrImage::packed(&row, 4, 1);
        let (out, _) = run(&image, &spec(2, 1));
        assert_eq!(out[[0, 0, 0, 0]], 50.0);
        assert_eq!(out[[0, 0, 0, 1]], 225.0);
    }

    #[test]
    fn letterbox_pads_and_centres() {
        struct Case {
            name: &'static str,
            source_width: usize,
            source_height: usize,
            input_width: usize,
            input_height: usize,
            /// Content rectangle in input pixels: x, y, width, height.
            content: [usize; 4],
        }
        let cases = vec![
            Case {
                name: "wide source pads top and bottom",
                source_width: 4,
                source_height: 2,
                input_width: 4,
                input_height: 4,
                content: [0, 1, 4, 2],
            },
            Case {
                name: "tall source pads left and right",
                source_width: 2,
                source_height: 4,
                input_width: 4,
                input_height: 4,
                content: [1, 0, 2, 4],
            },
            Case {
                name: "odd padding rounds down at the start",
                source_width: 6,
                source_height: 3,
                input_width: 6,
                input_height: 6,
                content: [0, 1, 6, 3],
            },
            Case {
                name: "upscaled letterbox",
                source_width: 4,
                source_height: 2,
                input_width: 8,
                input_height: 8,
                content: [0, 2, 8, 4],
            },
        ];
        let pixel_value = 200u8;
        for case in cases {
            let data = vec![pixel_value; case.source_width * case.source_height * 3];
            let image = BgrImage::packed(&data, case.source_width, case.source_height);
            for layout in [TensorLayout::Nchw, TensorLayout::Nhwc] {
                let spec = InputSpec {
                    layout,
                    resize: ResizeMode::Letterbox,
                    pad_value: 114,
                    mean: [1.0, 2.0, 3.0],
                    std: [2.0, 4.0, 8.0],
                    ..spec(case.input_width, case.input_height)
                };
                let (out, transform) = run(&image, &spec);
                let [content_x, content_y, content_width, content_height] = case.content;
                for y in 0..case.input_height {
                    for x in 0..case.input_width {
                        let inside = (content_x..content_x + content_width).contains(&x)
                            && (content_y..content_y + content_height).contains(&y);
                        let raw = if inside { pixel_value } else { spec.pad_value };
                        for channel in 0..3 {
                            let expected =
                                (f32::from(raw) - spec.mean[channel]) / spec.std[channel];
                            assert_eq!(
                                value_at(&out, layout, channel, x, y),
                                expected,
                                "case `{}` {layout:?}: channel {channel} at ({x}, {y})",
                                case.name
                            );
                        }
                    }
                }
                assert_eq!(
                    (transform.pad_x, transform.pad_y),
                    (content_x as f32, content_y as f32),
                    "case `{}` {layout:?}: padding",
                    case.name
                );
            }
        }
    }

    #[test]
    fn transform_round_trips_boxes() {
        struct Case {
            name: &'static str,
            source_width: usize,
            source_height: usize,
            resize: ResizeMode,
            expected_scale: (f32, f32),
            expected_pad: (f32, f32),
        }
        let cases = vec![
            Case {
                name: "letterbox 640x360",
                source_width: 640,
                source_height: 360,
                resize: ResizeMode::Letterbox,
                expected_scale: (0.65, 0.65),
                expected_pad: (0.0, 91.0),
            },
            Case {
                name: "letterbox 1920x1080",
                source_width: 1920,
                source_height: 1080,
                resize: ResizeMode::Letterbox,
                expected_scale: (416.0 / 1920.0, 234.0 / 1080.0),
                expected_pad: (0.0, 91.0),
            },
            Case {
                name: "letterbox portrait 360x640",
                source_width: 360,
                source_height: 640,
                resize: ResizeMode::Letterbox,
                expected_scale: (0.65, 0.65),
                expected_pad: (91.0, 0.0),
            },
            Case {
                name: "stretch 640x360",
                source_width: 640,
                source_height: 360,
                resize: ResizeMode::Stretch,
                expected_scale: (0.65, 416.0 / 360.0),
                expected_pad: (0.0, 0.0),
            },
        ];
        let source_box = Rect::new(100.0, 50.0, 300.0, 200.0);
        for case in cases {
            let spec = InputSpec {
                resize: case.resize,
                ..spec(416, 416)
            };
            let transform = input_transform(case.source_width, case.source_height, &spec);
            assert_eq!(
                (transform.scale_x, transform.scale_y),
                case.expected_scale,
                "case `{}`: scale",
                case.name
            );
            assert_eq!(
                (transform.pad_x, transform.pad_y),
                case.expected_pad,
                "case `{}`: padding",
                case.name
            );
            let input_box = transform.to_input_pixels(source_box);
            let normalized = transform.to_normalized(input_box);
            let expected = [
                source_box.x1 / case.source_width as f32,
                source_box.y1 / case.source_height as f32,
                source_box.x2 / case.source_width as f32,
                source_box.y2 / case.source_height as f32,
            ];
            let actual = [normalized.x1, normalized.y1, normalized.x2, normalized.y2];
            for (corner, (actual, expected)) in actual.iter().zip(expected).enumerate() {
                assert!(
                    (actual - expected).abs() < 1e-5,
                    "case `{}`: corner {corner} is {actual}, expected {expected}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn to_normalized_clamps_boxes_reaching_into_padding() {
        let spec = InputSpec {
            resize: ResizeMode::Letterbox,
            ..spec(416, 416)
        };
        let transform = input_transform(640, 360, &spec);
        let normalized = transform.to_normalized(Rect::new(-10.0, 0.0, 500.0, 416.0));
        assert_eq!(normalized, Rect::new(0.0, 0.0, 1.0, 1.0));
    }

    #[test]
    fn padded_stride_rows_ignore_padding_bytes() {
        struct Case {
            name: &'static str,
            stride_bytes: usize,
            /// Whether the last row carries its padding bytes too.
            last_row_padded: bool,
        }
        let cases = vec![
            Case {
                name: "stride 8, full last row",
                stride_bytes: 8,
                last_row_padded: true,
            },
            Case {
                name: "stride 8, short last row",
                stride_bytes: 8,
                last_row_padded: false,
            },
            Case {
                name: "stride 64",
                stride_bytes: 64,
                last_row_padded: false,
            },
        ];
        let pixels = [[1u8, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]];
        for case in cases {
            let mut data = Vec::new();
            for (y, row) in pixels.iter().enumerate() {
                data.extend_from_slice(row);
                if y + 1 < pixels.len() || case.last_row_padded {
                    data.resize(data.len() + case.stride_bytes - row.len(), 255);
                }
            }
            let image = BgrImage {
                data: &data,
                width: 2,
                height: 2,
                stride_bytes: case.stride_bytes,
            };
            let spec = InputSpec {
                layout: TensorLayout::Nhwc,
                ..spec(2, 2)
            };
            let (out, _) = run(&image, &spec);
            let expected: Vec<f32> = pixels
                .iter()
                .flatten()
                .map(|&byte| f32::from(byte))
                .collect();
            assert_eq!(
                out.iter().copied().collect::<Vec<_>>(),
                expected,
                "case `{}`",
                case.name
            );
        }
    }

    #[test]
    fn constant_images_stay_constant_at_any_size() {
        let cases = vec![
            ("1080p letterbox", 1920, 1080, ResizeMode::Letterbox),
            ("360p letterbox", 640, 360, ResizeMode::Letterbox),
            ("1080p stretch", 1920, 1080, ResizeMode::Stretch),
            ("single pixel", 1, 1, ResizeMode::Letterbox),
            ("single row", 1000, 1, ResizeMode::Letterbox),
            ("single column", 1, 1000, ResizeMode::Stretch),
        ];
        let mut preprocessor = Preprocessor::new();
        for (name, width, height, resize) in cases {
            for layout in [TensorLayout::Nchw, TensorLayout::Nhwc] {
                let data = vec![7u8; width * height * 3];
                let image = BgrImage::packed(&data, width, height);
                let spec = InputSpec {
                    layout,
                    resize,
                    pad_value: 7,
                    ..spec(416, 416)
                };
                let mut out = spec.new_tensor();
                out.fill(f32::NAN);
                preprocessor
                    .run(&image, &spec, &mut out)
                    .unwrap_or_else(|error| panic!("case `{name}` {layout:?}: {error}"));
                let worst = out
                    .iter()
                    .map(|value| (value - 7.0).abs())
                    .fold(0.0, f32::max);
                assert!(
                    worst < 1e-5,
                    "case `{name}` {layout:?}: every value is 7, worst error {worst}"
                );
            }
        }
    }

    #[test]
    fn preprocessor_reuse_matches_one_shot_calls() {
        let spec = InputSpec {
            resize: ResizeMode::Letterbox,
            color_order: ColorOrder::Rgb,
            pad_value: 114,
            ..spec(16, 16)
        };
        let sizes = [(40, 30), (40, 30), (13, 29), (40, 30)];
        let mut preprocessor = Preprocessor::new();
        for (frame, (width, height)) in sizes.into_iter().enumerate() {
            let data: Vec<u8> = (0..width * height * 3)
                .map(|i| ((i * 7 + frame * 31) % 251) as u8)
                .collect();
            let image = BgrImage::packed(&data, width, height);
            let (expected, expected_transform) = run(&image, &spec);
            let mut out = spec.new_tensor();
            let transform = preprocessor.run(&image, &spec, &mut out).expect("runs");
            assert_eq!(out, expected, "frame {frame} ({width}x{height})");
            assert_eq!(transform, expected_transform, "frame {frame} transform");
        }
    }

    #[test]
    fn invalid_inputs_return_errors() {
        struct Case {
            name: &'static str,
            data_length: usize,
            width: usize,
            height: usize,
            stride_bytes: usize,
            spec: InputSpec,
            out: Array4<f32>,
            expected: PreprocessError,
        }
        let good = spec(2, 2);
        let cases = vec![
            Case {
                name: "zero width",
                data_length: 12,
                width: 0,
                height: 2,
                stride_bytes: 6,
                spec: good.clone(),
                out: good.new_tensor(),
                expected: PreprocessError::EmptyImage {
                    width: 0,
                    height: 2,
                },
            },
            Case {
                name: "stride too small",
                data_length: 12,
                width: 2,
                height: 2,
                stride_bytes: 5,
                spec: good.clone(),
                out: good.new_tensor(),
                expected: PreprocessError::StrideTooSmall {
                    stride_bytes: 5,
                    width: 2,
                    minimum_bytes: 6,
                },
            },
            Case {
                name: "data too short",
                data_length: 11,
                width: 2,
                height: 2,
                stride_bytes: 6,
                spec: good.clone(),
                out: good.new_tensor(),
                expected: PreprocessError::DataTooShort {
                    actual_bytes: 11,
                    required_bytes: 12,
                    width: 2,
                    height: 2,
                    stride_bytes: 6,
                },
            },
            Case {
                name: "data too short for padded stride",
                data_length: 12,
                width: 2,
                height: 2,
                stride_bytes: 8,
                spec: good.clone(),
                out: good.new_tensor(),
                expected: PreprocessError::DataTooShort {
                    actual_bytes: 12,
                    required_bytes: 14,
                    width: 2,
                    height: 2,
                    stride_bytes: 8,
                },
            },
            Case {
                name: "size overflow",
                data_length: 12,
                width: 2,
                height: usize::MAX,
                stride_bytes: 6,
                spec: good.clone(),
                out: good.new_tensor(),
                expected: PreprocessError::ImageTooLarge {
                    width: 2,
                    height: usize::MAX,
                    stride_bytes: 6,
                },
            },
            Case {
                name: "wrong output shape",
                data_length: 12,
                width: 2,
                height: 2,
                stride_bytes: 6,
                spec: good.clone(),
                out: Array4::zeros([1, 2, 2, 3]),
                expected: PreprocessError::OutputShapeMismatch {
                    expected: [1, 3, 2, 2],
                    actual: vec![1, 2, 2, 3],
                },
            },
            Case {
                name: "column-major output",
                data_length: 12,
                width: 2,
                height: 2,
                stride_bytes: 6,
                spec: good.clone(),
                out: Array4::zeros([1, 3, 2, 2].f()),
                expected: PreprocessError::OutputNotContiguous,
            },
            Case {
                name: "zero input size",
                data_length: 12,
                width: 2,
                height: 2,
                stride_bytes: 6,
                spec: spec(0, 2),
                out: spec(0, 2).new_tensor(),
                expected: PreprocessError::InvalidInputSize {
                    width: 0,
                    height: 2,
                },
            },
            Case {
                name: "zero std",
                data_length: 12,
                width: 2,
                height: 2,
                stride_bytes: 6,
                spec: InputSpec {
                    std: [1.0, 0.0, 1.0],
                    ..good.clone()
                },
                out: good.new_tensor(),
                expected: PreprocessError::InvalidNormalization {
                    channel: 1,
                    mean: 0.0,
                    std: 0.0,
                },
            },
            Case {
                name: "infinite mean",
                data_length: 12,
                width: 2,
                height: 2,
                stride_bytes: 6,
                spec: InputSpec {
                    mean: [0.0, 0.0, f32::INFINITY],
                    ..good.clone()
                },
                out: good.new_tensor(),
                expected: PreprocessError::InvalidNormalization {
                    channel: 2,
                    mean: f32::INFINITY,
                    std: 1.0,
                },
            },
        ];
        for mut case in cases {
            let data = vec![0u8; case.data_length];
            let image = BgrImage {
                data: &data,
                width: case.width,
                height: case.height,
                stride_bytes: case.stride_bytes,
            };
            let result = preprocess_into(&image, &case.spec, &mut case.out);
            assert_eq!(result, Err(case.expected), "case `{}`", case.name);
        }
    }

    #[test]
    fn error_messages_name_the_numbers() {
        let error = PreprocessError::OutputShapeMismatch {
            expected: [1, 3, 416, 416],
            actual: vec![1, 3, 320, 320],
        };
        assert_eq!(
            error.to_string(),
            "output tensor has shape [1, 3, 320, 320], expected [1, 3, 416, 416]"
        );
        let error = PreprocessError::DataTooShort {
            actual_bytes: 10,
            required_bytes: 12,
            width: 2,
            height: 2,
            stride_bytes: 6,
        };
        assert_eq!(
            error.to_string(),
            "image data is 10 bytes, but 2x2 BGR pixels with a 6-byte stride need 12"
        );
    }

    #[test]
    fn enums_use_lowercase_names() {
        let cases = vec![
            ("bgr", serde_json::to_string(&ColorOrder::Bgr)),
            ("rgb", serde_json::to_string(&ColorOrder::Rgb)),
            ("nchw", serde_json::to_string(&TensorLayout::Nchw)),
            ("nhwc", serde_json::to_string(&TensorLayout::Nhwc)),
            ("stretch", serde_json::to_string(&ResizeMode::Stretch)),
            ("letterbox", serde_json::to_string(&ResizeMode::Letterbox)),
        ];
        for (name, serialized) in cases {
            assert_eq!(
                serialized.expect("serializes"),
                format!("\"{name}\""),
                "case `{name}`"
            );
        }
        let parsed: ResizeMode = serde_json::from_str("\"letterbox\"").expect("parses");
        assert_eq!(parsed, ResizeMode::Letterbox);
        assert!(serde_json::from_str::<ColorOrder>("\"BGR\"").is_err());
    }
}
