//! Decoded video frames as the decoder gave them: YUV 4:2:0 planes, held where they are.

use std::sync::Arc;

use super::{Frame, ImageError};
use crate::detect::preprocess::{Plane, YuvColour, YuvImage};

/// How the planes of a 4:2:0 frame are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YuvFormat {
    /// Y, then U, then V, each a plane of its own.
    I420,
    /// Y, then V, then U.
    Yv12,
    /// Y, then one plane of interleaved U and V.
    Nv12,
    /// Y, then one plane of interleaved V and U.
    Nv21,
}

/// Where a frame's bytes live: a decoder's buffer, mapped for reading (zero copy), or plain
/// vectors ([`OwnedPlanes`]). Plane 0 is Y; then U and V (or UV) as [`YuvFormat`] says.
pub trait PlaneStorage: Send + Sync {
    /// Plane `index` from its first byte to the end of its memory.
    fn plane(&self, index: usize) -> &[u8];
    /// Bytes from one row of plane `index` to the next.
    fn stride(&self, index: usize) -> usize;
}

/// Planes in vectors: for pictures made in memory (tests, conversions).
#[derive(Clone, Debug)]
pub struct OwnedPlanes {
    pub planes: Vec<Vec<u8>>,
    pub strides: Vec<usize>,
}

impl PlaneStorage for OwnedPlanes {
    fn plane(&self, index: usize) -> &[u8] {
        self.planes.get(index).map_or(&[], Vec::as_slice)
    }

    fn stride(&self, index: usize) -> usize {
        self.strides.get(index).copied().unwrap_or(0)
    }
}

/// One decoded 8-bit YUV 4:2:0 frame. Cheap to clone (the planes are shared); checked when made,
/// so [`YuvFrame::view`] always describes readable memory.
#[derive(Clone)]
pub struct YuvFrame {
    pub width: usize,
    pub height: usize,
    pub format: YuvFormat,
    pub colour: YuvColour,
    storage: Arc<dyn PlaneStorage>,
}

impl std::fmt::Debug for YuvFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "YuvFrame({}x{} {:?})",
            self.width, self.height, self.format
        )
    }
}

impl YuvFrame {
    /// A frame over `storage`, checked: every plane must hold its samples.
    ///
    /// # Errors
    /// [`ImageError::Empty`] for a zero size, [`ImageError::Planes`] naming the plane that is
    /// too short or laid out impossibly.
    pub fn new(
        width: usize,
        height: usize,
        format: YuvFormat,
        colour: YuvColour,
        storage: Arc<dyn PlaneStorage>,
    ) -> Result<YuvFrame, ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::Empty);
        }
        let frame = YuvFrame {
            width,
            height,
            format,
            colour,
            storage,
        };
        frame
            .view()
            .validate()
            .map_err(|e| ImageError::Planes(e.to_string()))?;
        Ok(frame)
    }

    /// A `width` x `height` I420 frame of one colour (limited-range BT.601 `[Y, U, V]`): for
    /// checks and tests. Sizes below 1 count as 1.
    pub fn solid(width: usize, height: usize, [y, u, v]: [u8; 3]) -> YuvFrame {
        let (width, height) = (width.max(1), height.max(1));
        let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));
        let storage = OwnedPlanes {
            planes: vec![
                vec![y; width * height],
                vec![u; chroma_width * chroma_height],
                vec![v; chroma_width * chroma_height],
            ],
            strides: vec![width, chroma_width, chroma_width],
        };
        YuvFrame {
            width,
            height,
            format: YuvFormat::I420,
            colour: YuvColour {
                matrix: crate::detect::preprocess::YuvMatrix::Bt601,
                range: crate::detect::preprocess::YuvRange::Limited,
                chroma_h_cosited: false,
                chroma_v_cosited: false,
            },
            storage: Arc::new(storage),
        }
    }

    /// The planes as the model's pre-processing reads them.
    pub fn view(&self) -> YuvImage<'_> {
        let plane = |index: usize, offset: usize, step: usize| {
            let data = self.storage.plane(index);
            Plane {
                data: data.get(offset..).unwrap_or(&[]),
                stride: self.storage.stride(index),
                step,
            }
        };
        let (u, v) = match self.format {
            YuvFormat::I420 => (plane(1, 0, 1), plane(2, 0, 1)),
            YuvFormat::Yv12 => (plane(2, 0, 1), plane(1, 0, 1)),
            YuvFormat::Nv12 => (plane(1, 0, 2), plane(1, 1, 2)),
            YuvFormat::Nv21 => (plane(1, 1, 2), plane(1, 0, 2)),
        };
        YuvImage {
            width: self.width,
            height: self.height,
            y: plane(0, 0, 1),
            u,
            v,
            colour: self.colour,
        }
    }

    /// The frame as a full-size BGR picture: only for the frames that need one (event snapshots,
    /// `camera probe --snapshot`), never for the model.
    ///
    /// # Errors
    /// Never for a frame made by [`YuvFrame::new`]; kept for the types.
    pub fn to_bgr(&self) -> Result<Frame, ImageError> {
        let data = self
            .view()
            .to_bgr()
            .map_err(|e| ImageError::Planes(e.to_string()))?;
        Frame::from_bgr(self.width, self.height, self.width * 3, data)
    }

    /// The frame shrunk `factor` times each way (`width / factor` x `height / factor`, at
    /// least 1 x 1), each sample the mean of the `factor` x `factor` block it stands for: a
    /// cheap first step before converting a frame only shown small (the technician's page).
    /// I420 whatever the frame's format; a factor below 2 is a copy-free clone.
    pub fn shrunk(&self, factor: usize) -> YuvFrame {
        if factor < 2 {
            return self.clone();
        }
        let image = self.view();
        let (width, height) = ((self.width / factor).max(1), (self.height / factor).max(1));
        let shrink = |plane: &Plane<'_>, (src_w, src_h): (usize, usize), (w, h): (usize, usize)| {
            let mut out = Vec::with_capacity(w * h);
            for oy in 0..h {
                let rows = (oy * factor).min(src_h - 1)..((oy + 1) * factor).min(src_h);
                for ox in 0..w {
                    let cols = (ox * factor).min(src_w - 1)..((ox + 1) * factor).min(src_w);
                    let mut sum = 0u32;
                    for y in rows.clone() {
                        let row = &plane.data[y * plane.stride..];
                        for x in cols.clone() {
                            sum += u32::from(row[x * plane.step]);
                        }
                    }
                    let n = (rows.len() * cols.len()).max(1) as u32;
                    out.push(((sum + n / 2) / n) as u8);
                }
            }
            out
        };
        let chroma_src = (self.width.div_ceil(2), self.height.div_ceil(2));
        let chroma = (width.div_ceil(2), height.div_ceil(2));
        let storage = OwnedPlanes {
            planes: vec![
                shrink(&image.y, (self.width, self.height), (width, height)),
                shrink(&image.u, chroma_src, chroma),
                shrink(&image.v, chroma_src, chroma),
            ],
            strides: vec![width, chroma.0, chroma.0],
        };
        YuvFrame {
            width,
            height,
            format: YuvFormat::I420,
            colour: self.colour,
            storage: Arc::new(storage),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::preprocess::{YuvMatrix, YuvRange};

    fn colour(range: YuvRange) -> YuvColour {
        YuvColour {
            matrix: YuvMatrix::Bt601,
            range,
            chroma_h_cosited: false,
            chroma_v_cosited: false,
        }
    }

    /// A `width` x `height` frame of one YUV value in `format`, rows padded to `stride`.
    fn solid(
        format: YuvFormat,
        width: usize,
        height: usize,
        stride: usize,
        [y, u, v]: [u8; 3],
        range: YuvRange,
    ) -> YuvFrame {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let luma = vec![y; stride * height];
        let storage = match format {
            YuvFormat::I420 | YuvFormat::Yv12 => {
                let (first, second) = if format == YuvFormat::I420 {
                    (u, v)
                } else {
                    (v, u)
                };
                OwnedPlanes {
                    planes: vec![luma, vec![first; stride * ch], vec![second; stride * ch]],
                    strides: vec![stride, stride, stride],
                }
            }
            YuvFormat::Nv12 | YuvFormat::Nv21 => {
                let pair = if format == YuvFormat::Nv12 {
                    [u, v]
                } else {
                    [v, u]
                };
                let mut chroma = vec![0u8; stride.max(cw * 2) * ch];
                for row in chroma.chunks_mut(stride.max(cw * 2)) {
                    for (i, byte) in row.iter_mut().enumerate() {
                        *byte = pair[i % 2];
                    }
                }
                OwnedPlanes {
                    planes: vec![luma, chroma],
                    strides: vec![stride, stride.max(cw * 2)],
                }
            }
        };
        YuvFrame::new(width, height, format, colour(range), Arc::new(storage)).unwrap()
    }

    #[test]
    fn known_colours_convert_to_bgr_in_every_layout() {
        // (YUV, range, expected BGR within 1 level): BT.601.
        let cases = [
            ([16, 128, 128], YuvRange::Limited, [0, 0, 0]),
            ([235, 128, 128], YuvRange::Limited, [255, 255, 255]),
            ([126, 128, 128], YuvRange::Limited, [128, 128, 128]),
            ([81, 90, 240], YuvRange::Limited, [0, 0, 255]),
            ([145, 54, 34], YuvRange::Limited, [0, 255, 0]),
            ([41, 240, 110], YuvRange::Limited, [255, 0, 0]),
            ([76, 85, 255], YuvRange::Full, [0, 0, 255]),
            ([128, 128, 128], YuvRange::Full, [128, 128, 128]),
        ];
        for format in [
            YuvFormat::I420,
            YuvFormat::Yv12,
            YuvFormat::Nv12,
            YuvFormat::Nv21,
        ] {
            for (yuv, range, expected) in cases {
                let frame = solid(format, 5, 3, 8, yuv, range);
                let bgr = frame.to_bgr().unwrap();
                for (x, y) in [(0, 0), (4, 2), (2, 1)] {
                    let pixel = bgr.pixel(x, y).unwrap();
                    for (got, want) in pixel.iter().zip(expected) {
                        assert!(
                            got.abs_diff(want) <= 1,
                            "{format:?} {yuv:?} {range:?} at ({x}, {y}): {pixel:?}, expected {expected:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn short_or_impossible_planes_are_refused() {
        let ok = || OwnedPlanes {
            planes: vec![vec![0; 16], vec![0; 4], vec![0; 4]],
            strides: vec![4, 2, 2],
        };
        let colour = colour(YuvRange::Limited);
        assert!(YuvFrame::new(4, 4, YuvFormat::I420, colour, Arc::new(ok())).is_ok());
        let mut short = ok();
        short.planes[2].pop();
        let error = YuvFrame::new(4, 4, YuvFormat::I420, colour, Arc::new(short)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "decoded frame: V plane is 3 bytes, its samples need 4"
        );
        let mut narrow = ok();
        narrow.strides[0] = 3;
        let error = YuvFrame::new(4, 4, YuvFormat::I420, colour, Arc::new(narrow)).unwrap_err();
        assert!(
            error.to_string().contains("Y plane: row stride 3"),
            "{error}"
        );
        let missing = OwnedPlanes {
            planes: vec![vec![0; 16]],
            strides: vec![4],
        };
        assert!(YuvFrame::new(4, 4, YuvFormat::Nv12, colour, Arc::new(missing)).is_err());
        assert!(matches!(
            YuvFrame::new(0, 4, YuvFormat::I420, colour, Arc::new(ok())),
            Err(ImageError::Empty)
        ));
    }

    #[test]
    fn a_shrunk_frame_averages_blocks_in_every_format() {
        // (format, width, height, factor, shrunk size)
        let cases = [
            (YuvFormat::I420, 64, 36, 2, (32, 18)),
            (YuvFormat::Nv12, 64, 36, 3, (21, 12)),
            (YuvFormat::Yv12, 30, 20, 4, (7, 5)),
            (YuvFormat::Nv21, 10, 6, 1, (10, 6)),
            (YuvFormat::I420, 4, 4, 9, (1, 1)),
        ];
        for (format, width, height, factor, size) in cases {
            let frame = solid(
                format,
                width,
                height,
                width + 6,
                [120, 90, 170],
                YuvRange::Limited,
            );
            let small = frame.shrunk(factor);
            assert_eq!((small.width, small.height), size, "{format:?} / {factor}");
            let (a, b) = (frame.to_bgr().unwrap(), small.to_bgr().unwrap());
            assert_eq!(
                a.pixel(0, 0),
                b.pixel(0, 0),
                "{format:?}: the colour is kept"
            );
        }
        // Stripes one pixel wide average to their mean.
        let luma = (0..8 * 4)
            .map(|i| if i % 2 == 0 { 40 } else { 200 })
            .collect();
        let storage = OwnedPlanes {
            planes: vec![luma, vec![128; 8], vec![128; 8]],
            strides: vec![8, 4, 4],
        };
        let frame = YuvFrame::new(
            8,
            4,
            YuvFormat::I420,
            colour(YuvRange::Full),
            Arc::new(storage),
        )
        .unwrap();
        let small = frame.shrunk(2);
        assert_eq!(small.view().y.data[..8], [120; 8]);
    }
}
