//! YUV 4:2:0 frames as decoders hand them over (I420, YV12, NV12, NV21), straight into the
//! model input: letterbox (or stretch) resize, colour conversion and normalisation in one pass,
//! never building a full-size BGR picture.
//!
//! ```text
//!  Y plane ──(luma taps)──────▶ resized Y row ┐
//!  U plane ──(chroma taps)────▶ resized U row ├─▶ matrix (BT.601/709/2020, limited/full range)
//!  V plane ──(chroma taps)────▶ resized V row ┘     ─▶ clamp 0..255 ─▶ (v - mean) / std ─▶ tensor
//! ```
//!
//! Sampling is the BGR path's (`INTER_LINEAR` centres, clamped at the borders): luma at the same
//! positions, chroma at the same positions on the half-resolution chroma grid with the stream's
//! siting. Resizing before converting is exact up to rounding because both steps are linear,
//! except where the conversion clamps (saturated colours), where the two orders differ by a few
//! levels. Pure: no GStreamer types; rows are read through their stride, chroma samples through
//! their step (1 in a plane of its own, 2 when U and V are interleaved).

use super::{
    AxisTap, InputSpec, PreprocessError, TensorLayout, fill_padding, resize_geometry, taps_at,
};

/// The YUV → RGB matrix of a stream (its colorimetry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YuvMatrix {
    /// ITU-R BT.601 (SD video; what most decoders say for streams that say nothing).
    Bt601,
    /// ITU-R BT.709 (HD video).
    Bt709,
    /// ITU-R BT.2020.
    Bt2020,
}

impl YuvMatrix {
    /// `(Kr, Kb)` of the matrix.
    fn kr_kb(self) -> (f64, f64) {
        match self {
            YuvMatrix::Bt601 => (0.299, 0.114),
            YuvMatrix::Bt709 => (0.2126, 0.0722),
            YuvMatrix::Bt2020 => (0.2627, 0.0593),
        }
    }

    /// What to assume when a stream does not say: BT.709 from 720 lines up, else BT.601
    /// (GStreamer's own default).
    pub fn default_for_height(height: usize) -> YuvMatrix {
        if height >= 720 {
            YuvMatrix::Bt709
        } else {
            YuvMatrix::Bt601
        }
    }
}

/// The range of the sample values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YuvRange {
    /// Y in 16..=235, U and V in 16..=240 (video; the default).
    Limited,
    /// 0..=255 (JPEG, some cameras).
    Full,
}

/// How a stream's pixels are to be read as colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YuvColour {
    pub matrix: YuvMatrix,
    pub range: YuvRange,
    /// Chroma samples sit on the even luma columns (MPEG-2 and H.264's default) rather than
    /// between two columns (JPEG).
    pub chroma_h_cosited: bool,
    /// Chroma samples sit on the even luma rows rather than between two rows.
    pub chroma_v_cosited: bool,
}

impl YuvColour {
    /// Limited range, chroma between luma samples, the matrix GStreamer assumes for the height.
    pub fn default_for_height(height: usize) -> YuvColour {
        YuvColour {
            matrix: YuvMatrix::default_for_height(height),
            range: YuvRange::Limited,
            chroma_h_cosited: false,
            chroma_v_cosited: false,
        }
    }

    /// The conversion of this colour, ready for per-pixel use.
    fn coefficients(&self) -> Coefficients {
        let (kr, kb) = self.matrix.kr_kb();
        let kg = 1.0 - kr - kb;
        let (y_offset, y_scale, c_scale) = match self.range {
            YuvRange::Limited => (16.0, 255.0 / 219.0, 255.0 / 224.0),
            YuvRange::Full => (0.0, 1.0, 1.0),
        };
        Coefficients {
            y_offset: y_offset as f32,
            y_scale: y_scale as f32,
            r_from_v: (2.0 * (1.0 - kr) * c_scale) as f32,
            g_from_u: (-2.0 * kb * (1.0 - kb) / kg * c_scale) as f32,
            g_from_v: (-2.0 * kr * (1.0 - kr) / kg * c_scale) as f32,
            b_from_u: (2.0 * (1.0 - kb) * c_scale) as f32,
        }
    }
}

/// The conversion of one `YuvColour`, ready for per-pixel use.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Coefficients {
    y_offset: f32,
    y_scale: f32,
    r_from_v: f32,
    g_from_u: f32,
    g_from_v: f32,
    b_from_u: f32,
}

impl Coefficients {
    /// `[B, G, R]`, each clamped to 0..=255, of a sample (`u`, `v` already centred on 0).
    #[inline]
    fn bgr(&self, y: f32, u: f32, v: f32) -> [f32; 3] {
        let luma = (y - self.y_offset) * self.y_scale;
        [
            (luma + self.b_from_u * u).clamp(0.0, 255.0),
            (luma + self.g_from_u * u + self.g_from_v * v).clamp(0.0, 255.0),
            (luma + self.r_from_v * v).clamp(0.0, 255.0),
        ]
    }
}

/// One plane of samples: sample `(x, y)` is `data[y * stride + x * step]`.
#[derive(Clone, Copy, Debug)]
pub struct Plane<'a> {
    pub data: &'a [u8],
    /// Bytes from one row to the next.
    pub stride: usize,
    /// Bytes from one sample to the next in a row: 1, or 2 for interleaved U and V.
    pub step: usize,
}

impl<'a> Plane<'a> {
    /// Row `y` from its first sample on (only after [`YuvImage::validate`]).
    fn row(&self, y: usize) -> &'a [u8] {
        &self.data[y * self.stride..]
    }

    /// Checks that `width` x `height` samples fit in `data`.
    fn validate(
        &self,
        name: &'static str,
        width: usize,
        height: usize,
    ) -> Result<(), PreprocessError> {
        let too_large = || PreprocessError::PlaneTooLarge {
            plane: name,
            width,
            height,
        };
        let row_bytes = width
            .checked_sub(1)
            .and_then(|last| last.checked_mul(self.step.max(1)))
            .and_then(|bytes| bytes.checked_add(1))
            .ok_or_else(too_large)?;
        if self.step == 0 || self.stride < row_bytes {
            return Err(PreprocessError::PlaneLayout {
                plane: name,
                stride: self.stride,
                step: self.step,
                width,
            });
        }
        let required_bytes = (height - 1)
            .checked_mul(self.stride)
            .and_then(|bytes| bytes.checked_add(row_bytes))
            .ok_or_else(too_large)?;
        if self.data.len() < required_bytes {
            return Err(PreprocessError::PlaneTooShort {
                plane: name,
                actual_bytes: self.data.len(),
                required_bytes,
            });
        }
        Ok(())
    }
}

/// A borrowed 8-bit YUV 4:2:0 picture: a full-resolution Y plane and U and V planes of
/// `ceil(width / 2) x ceil(height / 2)` samples each (separate, as in I420 and YV12, or
/// interleaved, as in NV12 and NV21: then `u` and `v` point one byte apart with step 2).
#[derive(Clone, Copy, Debug)]
pub struct YuvImage<'a> {
    pub width: usize,
    pub height: usize,
    pub y: Plane<'a>,
    pub u: Plane<'a>,
    pub v: Plane<'a>,
    pub colour: YuvColour,
}

impl<'a> YuvImage<'a> {
    /// Chroma plane size for this picture.
    pub fn chroma_size(&self) -> (usize, usize) {
        (self.width.div_ceil(2), self.height.div_ceil(2))
    }

    /// Checks that the picture is non-empty and every plane covers its samples.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        if self.width == 0 || self.height == 0 {
            return Err(PreprocessError::EmptyImage {
                width: self.width,
                height: self.height,
            });
        }
        let (chroma_width, chroma_height) = self.chroma_size();
        self.y.validate("Y", self.width, self.height)?;
        self.u.validate("U", chroma_width, chroma_height)?;
        self.v.validate("V", chroma_width, chroma_height)
    }

    /// The picture as packed 8-bit BGR (`width * 3` bytes a row), chroma interpolated at its
    /// siting as for the model: for snapshots and pictures, never for the model (see
    /// [`super::Preprocessor::run_yuv`]).
    ///
    /// # Errors
    /// As [`YuvImage::validate`].
    pub fn to_bgr(&self) -> Result<Vec<u8>, PreprocessError> {
        self.validate()?;
        let mut resampler = Resampler::default();
        resampler.prepare(self, self.width, self.height);
        let mut out = vec![0u8; self.width * self.height * 3];
        let row_bytes = self.width * 3;
        resampler.rows(self, |y, bgr_row| {
            let row = &mut out[y * row_bytes..(y + 1) * row_bytes];
            for (pixel, bgr) in row.chunks_exact_mut(3).zip(bgr_row) {
                for (byte, value) in pixel.iter_mut().zip(bgr) {
                    // Clamped to 0..=255 by the conversion.
                    *byte = value.round() as u8;
                }
            }
        });
        Ok(out)
    }
}

/// Where a picture of one size, layout and colour is sampled for an output of one size:
/// rebuilt only when one of these changes.
#[derive(Clone, Debug, PartialEq)]
struct ResamplerKey {
    width: usize,
    height: usize,
    u_step: usize,
    v_step: usize,
    colour: YuvColour,
    output_width: usize,
    output_height: usize,
}

/// Sampling tables (luma and chroma taps per output column and row) and row buffers: turns a
/// YUV picture into rows of BGR values at another size, `INTER_LINEAR` style.
#[derive(Debug, Default)]
struct Resampler {
    key: Option<ResamplerKey>,
    luma_columns: Vec<AxisTap>,
    luma_rows: Vec<AxisTap>,
    u_columns: Vec<AxisTap>,
    v_columns: Vec<AxisTap>,
    chroma_rows: Vec<AxisTap>,
    coefficients: Option<Coefficients>,
    luma: PlaneRows,
    u: PlaneRows,
    v: PlaneRows,
    /// One output row as BGR (0..=255), before it is written out.
    bgr_row: Vec<[f32; 3]>,
}

impl Resampler {
    /// Builds the tables for `image` at `output_width` x `output_height`, unless they are built.
    fn prepare(&mut self, image: &YuvImage, output_width: usize, output_height: usize) {
        let key = ResamplerKey {
            width: image.width,
            height: image.height,
            u_step: image.u.step,
            v_step: image.v.step,
            colour: image.colour,
            output_width,
            output_height,
        };
        if self.key.as_ref() != Some(&key) {
            let (chroma_width, chroma_height) = image.chroma_size();
            // Position of an output sample on the luma grid (INTER_LINEAR centres)…
            let luma_x = linear_position(key.width, output_width);
            let luma_y = linear_position(key.height, output_height);
            // … and on the chroma grid: chroma sample i sits at luma 2i (co-sited) or 2i + 0.5.
            let chroma = |cosited: bool| {
                let offset = if cosited { 0.0 } else { 0.5 };
                move |luma: f64| (luma - offset) / 2.0
            };
            let chroma_x = chroma(key.colour.chroma_h_cosited);
            let chroma_y = chroma(key.colour.chroma_v_cosited);
            self.luma_columns = taps_at(key.width, output_width, 1, &luma_x);
            self.luma_rows = taps_at(key.height, output_height, 1, &luma_y);
            self.u_columns = taps_at(chroma_width, output_width, key.u_step, |d| {
                chroma_x(luma_x(d))
            });
            self.v_columns = taps_at(chroma_width, output_width, key.v_step, |d| {
                chroma_x(luma_x(d))
            });
            self.chroma_rows = taps_at(chroma_height, output_height, 1, |d| chroma_y(luma_y(d)));
            self.coefficients = Some(key.colour.coefficients());
            for rows in [&mut self.luma, &mut self.u, &mut self.v] {
                rows.prepare(output_width);
            }
            self.bgr_row.resize(output_width, [0.0; 3]);
            self.key = Some(key);
        }
        // Row contents belong to the previous picture.
        for rows in [&mut self.luma, &mut self.u, &mut self.v] {
            rows.held = [None, None];
        }
    }

    /// Calls `write(output_y, row)` for every output row, top to bottom, with the row's BGR
    /// values (each clamped to 0..=255). Only after [`Resampler::prepare`] for this `image`.
    fn rows(&mut self, image: &YuvImage, mut write: impl FnMut(usize, &[[f32; 3]])) {
        let Some(coefficients) = self.coefficients else {
            return;
        };
        for (output_y, (luma_tap, chroma_tap)) in
            self.luma_rows.iter().zip(&self.chroma_rows).enumerate()
        {
            let luma = self.luma.row(&image.y, &self.luma_columns, luma_tap);
            let u = self.u.row(&image.u, &self.u_columns, chroma_tap);
            let v = self.v.row(&image.v, &self.v_columns, chroma_tap);
            for (((bgr, &y), &u), &v) in self.bgr_row.iter_mut().zip(luma).zip(u).zip(v) {
                *bgr = coefficients.bgr(y, u - 128.0, v - 128.0);
            }
            write(output_y, &self.bgr_row);
        }
    }
}

/// `INTER_LINEAR` source position of destination sample `d`.
fn linear_position(source_length: usize, destination_length: usize) -> impl Fn(usize) -> f64 {
    let scale = source_length as f64 / destination_length as f64;
    move |destination| (destination as f64 + 0.5) * scale - 0.5
}

/// Two horizontally resampled rows of one plane (which source rows they hold), and their
/// vertical blend.
#[derive(Debug, Default)]
struct PlaneRows {
    held: [Option<usize>; 2],
    values: [Vec<f32>; 2],
    blended: Vec<f32>,
}

impl PlaneRows {
    fn prepare(&mut self, length: usize) {
        self.held = [None, None];
        for values in &mut self.values {
            values.resize(length, 0.0);
        }
        self.blended.resize(length, 0.0);
    }

    /// Makes one of the two buffers hold source `row` (keeping `keep` if it is held) and says
    /// which.
    fn load(
        &mut self,
        plane: &Plane,
        columns: &[AxisTap],
        row: usize,
        keep: Option<usize>,
    ) -> usize {
        if let Some(slot) = self.held.iter().position(|held| *held == Some(row)) {
            return slot;
        }
        let slot = if keep.is_some() && self.held[0] == keep {
            1
        } else {
            0
        };
        let source = plane.row(row);
        for (value, tap) in self.values[slot].iter_mut().zip(columns) {
            *value = f32::from(source[tap.first]) * tap.first_weight
                + f32::from(source[tap.second]) * tap.second_weight;
        }
        self.held[slot] = Some(row);
        slot
    }

    /// The horizontally resampled row at vertical tap `tap`.
    fn row(&mut self, plane: &Plane, columns: &[AxisTap], tap: &AxisTap) -> &[f32] {
        if tap.second_weight == 0.0 {
            let slot = self.load(plane, columns, tap.first, None);
            return &self.values[slot];
        }
        let first = self.load(plane, columns, tap.first, Some(tap.second));
        let second = self.load(plane, columns, tap.second, Some(tap.first));
        debug_assert_ne!(first, second);
        let [a, b] = &self.values;
        let (upper, lower) = if first == 0 { (a, b) } else { (b, a) };
        for ((value, upper), lower) in self.blended.iter_mut().zip(upper).zip(lower) {
            *value = upper * tap.first_weight + lower * tap.second_weight;
        }
        &self.blended
    }
}

/// The YUV side of a [`super::Preprocessor`]: the resampler at the model's resized size.
#[derive(Debug, Default)]
pub(super) struct YuvState {
    resampler: Resampler,
}

impl YuvState {
    /// See [`super::Preprocessor::run_yuv`]; `output` is the checked tensor slice.
    pub(super) fn run(
        &mut self,
        image: &YuvImage,
        spec: &InputSpec,
        output: &mut [f32],
    ) -> Result<(), PreprocessError> {
        spec.validate()?;
        let geometry = resize_geometry(image.width, image.height, spec);
        self.resampler
            .prepare(image, geometry.resized_width, geometry.resized_height);
        let pad = f32::from(spec.pad_value);
        fill_padding(
            spec,
            geometry,
            [0, 1, 2].map(|c| (pad - spec.mean[c]) / spec.std[c]),
            output,
        );
        // BGR index feeding each model channel, and the normalisation.
        let source_channel = match spec.color_order {
            super::ColorOrder::Bgr => [0, 1, 2],
            super::ColorOrder::Rgb => [2, 1, 0],
        };
        let mean = spec.mean;
        let inverse_std = spec.std.map(|std| 1.0 / std);
        let plane_length = spec.width * spec.height;
        let resized_width = geometry.resized_width;
        self.resampler.rows(image, |resized_y, bgr_row| {
            let output_y = geometry.pad_y + resized_y;
            match spec.layout {
                TensorLayout::Nchw => {
                    for channel in 0..3 {
                        let start = channel * plane_length + output_y * spec.width + geometry.pad_x;
                        let source = source_channel[channel];
                        for (value, bgr) in
                            output[start..start + resized_width].iter_mut().zip(bgr_row)
                        {
                            *value = (bgr[source] - mean[channel]) * inverse_std[channel];
                        }
                    }
                }
                TensorLayout::Nhwc => {
                    let start = (output_y * spec.width + geometry.pad_x) * 3;
                    for (pixel, bgr) in output[start..start + resized_width * 3]
                        .chunks_exact_mut(3)
                        .zip(bgr_row)
                    {
                        for (channel, value) in pixel.iter_mut().enumerate() {
                            *value = (bgr[source_channel[channel]] - mean[channel])
                                * inverse_std[channel];
                        }
                    }
                }
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        BgrImage, ColorOrder, InputTransform, Preprocessor, ResizeMode, TensorLayout,
    };
    use super::*;
    use ndarray::Array4;

    fn spec(width: usize, height: usize, resize: ResizeMode, layout: TensorLayout) -> InputSpec {
        InputSpec {
            width,
            height,
            layout,
            color_order: ColorOrder::Bgr,
            mean: [0.0; 3],
            std: [1.0; 3],
            resize,
            pad_value: 0,
        }
    }

    fn colour(cosited: (bool, bool)) -> YuvColour {
        YuvColour {
            matrix: YuvMatrix::Bt601,
            range: YuvRange::Limited,
            chroma_h_cosited: cosited.0,
            chroma_v_cosited: cosited.1,
        }
    }

    /// Planes of a picture, I420 or NV12, rows padded to `stride` (Y and chroma alike).
    struct Planes {
        width: usize,
        height: usize,
        stride: usize,
        y: Vec<u8>,
        /// I420: U then V, each `stride * ch`. NV12: one interleaved plane.
        chroma: Vec<Vec<u8>>,
        interleaved: bool,
    }

    impl Planes {
        /// `luma(x, y)` and `chroma(cx, cy) -> (u, v)`.
        fn new(
            width: usize,
            height: usize,
            stride: usize,
            interleaved: bool,
            luma: impl Fn(usize, usize) -> u8,
            chroma: impl Fn(usize, usize) -> (u8, u8),
        ) -> Planes {
            let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
            let mut y = vec![0xEE; stride * height];
            for row in 0..height {
                for x in 0..width {
                    y[row * stride + x] = luma(x, row);
                }
            }
            let chroma = if interleaved {
                let mut uv = vec![0xEE; stride * ch];
                for row in 0..ch {
                    for x in 0..cw {
                        let (u, v) = chroma(x, row);
                        uv[row * stride + 2 * x] = u;
                        uv[row * stride + 2 * x + 1] = v;
                    }
                }
                vec![uv]
            } else {
                let mut u = vec![0xEE; stride * ch];
                let mut v = vec![0xEE; stride * ch];
                for row in 0..ch {
                    for x in 0..cw {
                        (u[row * stride + x], v[row * stride + x]) = chroma(x, row);
                    }
                }
                vec![u, v]
            };
            Planes {
                width,
                height,
                stride,
                y,
                chroma,
                interleaved,
            }
        }

        fn image(&self, colour: YuvColour) -> YuvImage<'_> {
            let (u, v) = if self.interleaved {
                (
                    Plane {
                        data: &self.chroma[0],
                        stride: self.stride,
                        step: 2,
                    },
                    Plane {
                        data: &self.chroma[0][1..],
                        stride: self.stride,
                        step: 2,
                    },
                )
            } else {
                (
                    Plane {
                        data: &self.chroma[0],
                        stride: self.stride,
                        step: 1,
                    },
                    Plane {
                        data: &self.chroma[1],
                        stride: self.stride,
                        step: 1,
                    },
                )
            };
            YuvImage {
                width: self.width,
                height: self.height,
                y: Plane {
                    data: &self.y,
                    stride: self.stride,
                    step: 1,
                },
                u,
                v,
                colour,
            }
        }
    }

    fn run_yuv(image: &YuvImage, spec: &InputSpec) -> (Array4<f32>, InputTransform) {
        let mut out = spec.new_tensor();
        out.fill(f32::NAN);
        let transform = Preprocessor::new()
            .run_yuv(image, spec, &mut out)
            .expect("preprocess succeeds");
        (out, transform)
    }

    fn run_bgr(image: &BgrImage, spec: &InputSpec) -> (Array4<f32>, InputTransform) {
        let mut out = spec.new_tensor();
        let transform = Preprocessor::new()
            .run(image, spec, &mut out)
            .expect("preprocess succeeds");
        (out, transform)
    }

    #[test]
    fn grey_pictures_match_the_bgr_path_exactly_at_any_size() {
        // Without colour (U = V = 128) the conversion is affine and never clamps for Y in
        // 16..=235, so resizing YUV and then converting must equal converting and then
        // resizing: the luma sampling is the BGR path's, pixel for pixel.
        let luma = |x: usize, y: usize| (16 + (x * 7 + y * 13) % 219) as u8;
        let cases = [
            (
                "640x360 letterbox",
                640,
                360,
                416,
                416,
                ResizeMode::Letterbox,
            ),
            (
                "1920x1080 letterbox",
                1920,
                1080,
                416,
                416,
                ResizeMode::Letterbox,
            ),
            (
                "odd 333x177 stretch",
                333,
                177,
                160,
                96,
                ResizeMode::Stretch,
            ),
            ("upscale 7x5 letterbox", 7, 5, 32, 32, ResizeMode::Letterbox),
            ("one pixel", 1, 1, 4, 4, ResizeMode::Stretch),
        ];
        for (name, width, height, input_width, input_height, resize) in cases {
            let width: usize = width;
            for interleaved in [false, true] {
                for layout in [TensorLayout::Nchw, TensorLayout::Nhwc] {
                    let stride = width.div_ceil(32) * 32 + 32;
                    let planes =
                        Planes::new(width, height, stride, interleaved, luma, |_, _| (128, 128));
                    let image = planes.image(colour((false, false)));
                    let bgr = image.to_bgr().unwrap();
                    let spec = InputSpec {
                        pad_value: 114,
                        mean: [103.5, 116.3, 123.7],
                        std: [57.4, 57.1, 58.4],
                        ..spec(input_width, input_height, resize, layout)
                    };
                    let (from_yuv, yuv_transform) = run_yuv(&image, &spec);
                    let (from_bgr, bgr_transform) =
                        run_bgr(&BgrImage::packed(&bgr, width, height), &spec);
                    assert_eq!(yuv_transform, bgr_transform, "{name}");
                    let worst = from_yuv
                        .iter()
                        .zip(&from_bgr)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max);
                    // to_bgr rounds to whole levels: at most half a level apart, over std.
                    assert!(
                        worst <= 0.51 / 57.0,
                        "{name} interleaved={interleaved} {layout:?}: worst difference {worst}"
                    );
                }
            }
        }
    }

    #[test]
    fn constant_colours_give_their_bgr_value_everywhere() {
        // (Y, U, V) BT.601 limited, and the BGR it is.
        let cases = [
            ([81u8, 90u8, 240u8], [0.0f32, 0.0, 255.0]),
            ([145, 54, 34], [0.0, 255.0, 0.0]),
            ([41, 240, 110], [255.0, 0.0, 0.0]),
            ([126, 128, 128], [128.0, 128.0, 128.0]),
        ];
        for ([y, u, v], expected) in cases {
            for color_order in [ColorOrder::Bgr, ColorOrder::Rgb] {
                let planes = Planes::new(64, 36, 64, false, |_, _| y, |_, _| (u, v));
                let spec = InputSpec {
                    color_order,
                    ..spec(32, 32, ResizeMode::Stretch, TensorLayout::Nchw)
                };
                let (out, _) = run_yuv(&planes.image(colour((false, false))), &spec);
                for channel in 0..3 {
                    let want = match color_order {
                        ColorOrder::Bgr => expected[channel],
                        ColorOrder::Rgb => expected[2 - channel],
                    };
                    let plane = out.index_axis(ndarray::Axis(1), channel);
                    let worst = plane
                        .iter()
                        .map(|v| (v - want).abs())
                        .fold(0.0f32, f32::max);
                    assert!(
                        worst <= 1.5,
                        "YUV ({y}, {u}, {v}) {color_order:?} channel {channel}: off by {worst}"
                    );
                }
            }
        }
    }

    #[test]
    fn chroma_is_sampled_where_the_stream_says_it_sits() {
        // 8x2 picture, grey luma, U rising by 8 per chroma column: 112, 120, 128, 136.
        // Identity size: output column x reads chroma at x / 2 (co-sited) or (x - 0.5) / 2.
        let planes = Planes::new(
            8,
            2,
            8,
            false,
            |_, _| 126,
            |cx, _| ((112 + 8 * cx) as u8, 128),
        );
        let u_at = |position: f32| 112.0 + 8.0 * position.clamp(0.0, 3.0);
        for (cosited, position) in [
            (true, (|x: usize| x as f32 / 2.0) as fn(usize) -> f32),
            (false, |x: usize| (x as f32 - 0.5) / 2.0),
        ] {
            let spec = spec(8, 2, ResizeMode::Stretch, TensorLayout::Nchw);
            let (out, _) = run_yuv(&planes.image(colour((cosited, false))), &spec);
            let coefficients = colour((cosited, false)).coefficients();
            for x in 0..8 {
                let expected = coefficients.bgr(126.0, u_at(position(x)) - 128.0, 0.0)[0];
                let got = out[[0, 0, 0, x]];
                assert!(
                    (got - expected).abs() < 1e-3,
                    "co-sited={cosited}: blue at x={x} is {got}, expected {expected}"
                );
            }
        }
    }

    #[test]
    fn letterbox_padding_and_reuse_across_sizes_and_layouts() {
        let mut preprocessor = Preprocessor::new();
        let spec = InputSpec {
            pad_value: 114,
            ..spec(16, 16, ResizeMode::Letterbox, TensorLayout::Nchw)
        };
        // Alternate sizes and layouts through one preprocessor: same as fresh ones each time.
        let pictures = [
            Planes::new(
                32,
                18,
                32,
                false,
                |x, y| (20 + x + y) as u8,
                |_, _| (128, 128),
            ),
            Planes::new(
                18,
                32,
                64,
                true,
                |x, y| (40 + x * y % 90) as u8,
                |x, _| (120 + x as u8, 130),
            ),
            Planes::new(
                32,
                18,
                32,
                false,
                |x, y| (60 + x + 2 * y) as u8,
                |_, _| (128, 128),
            ),
        ];
        for (index, planes) in pictures.iter().enumerate() {
            let image = planes.image(colour((true, false)));
            let mut reused = spec.new_tensor();
            preprocessor.run_yuv(&image, &spec, &mut reused).unwrap();
            let (fresh, transform) = run_yuv(&image, &spec);
            assert_eq!(reused, fresh, "picture {index}");
            // The letterbox padding is the pad value, normalised (mean 0, std 1).
            let (pad_x, pad_y) = (transform.pad_x as usize, transform.pad_y as usize);
            if pad_y > 0 {
                assert_eq!(fresh[[0, 1, 0, 8]], 114.0, "picture {index}: top padding");
            }
            if pad_x > 0 {
                assert_eq!(fresh[[0, 1, 8, 0]], 114.0, "picture {index}: left padding");
            }
            assert!(
                fresh.iter().all(|v| v.is_finite()),
                "picture {index}: every value written"
            );
        }
    }

    #[test]
    fn broken_planes_are_errors_not_panics() {
        let planes = Planes::new(8, 4, 8, false, |_, _| 16, |_, _| (128, 128));
        let good = planes.image(colour((false, false)));
        let spec = spec(4, 4, ResizeMode::Stretch, TensorLayout::Nchw);
        let cases: Vec<(&str, YuvImage, &str)> = vec![
            (
                "short Y plane",
                YuvImage {
                    y: Plane {
                        data: &planes.y[..30],
                        ..good.y
                    },
                    ..good
                },
                "Y plane is 30 bytes, its samples need 32",
            ),
            (
                "chroma step 0",
                YuvImage {
                    u: Plane { step: 0, ..good.u },
                    ..good
                },
                "U plane: row stride 8 bytes and sample step 0 cannot hold 4 samples a row",
            ),
            (
                "stride shorter than a row",
                YuvImage {
                    y: Plane {
                        stride: 7,
                        ..good.y
                    },
                    ..good
                },
                "Y plane: row stride 7 bytes",
            ),
            (
                "empty",
                YuvImage { width: 0, ..good },
                "image is empty (0x4 pixels)",
            ),
        ];
        for (name, image, message) in cases {
            let mut out = spec.new_tensor();
            let error = Preprocessor::new()
                .run_yuv(&image, &spec, &mut out)
                .expect_err(name);
            assert!(error.to_string().contains(message), "{name}: {error}");
            assert!(image.to_bgr().is_err(), "{name}: to_bgr");
        }
        let mut wrong_shape = Array4::zeros([1, 4, 4, 3]);
        assert!(matches!(
            Preprocessor::new().run_yuv(&good, &spec, &mut wrong_shape),
            Err(PreprocessError::OutputShapeMismatch { .. })
        ));
    }
}
