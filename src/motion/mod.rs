//! Is anything moving in the picture? A cheap per-camera measure on a small grey image taken
//! from the decoder's Y plane, so that a camera looking at an empty, still scene can be
//! analysed rarely ([`crate::framepath`]'s idle pace) and wakes up at once when it changes.
//!
//! ```text
//!  Y plane ─▶ grey thumbnail (THUMBNAIL_WIDTH wide, each cell the mean of a 4x4 sample grid)
//!          ─▶ |cell − background| > CHANGE_LEVELS ─▶ changed cells ≥ MIN_CHANGED ─▶ motion
//!          ─▶ background += BACKGROUND_RATE × (cell − background)   (slowly absorbs what stays)
//! ```
//!
//! Pure: no GStreamer types, no clock. The caller decides how often to look
//! ([`MotionDetector::observe`] takes the seconds since its previous look, so the background
//! adapts at the same speed at any rate). Something that stops moving is absorbed into the
//! background within a few seconds (a parked car, a person standing still); the tracker, not
//! this module, keeps such objects alive.
//!
//! A change over most of the picture at once (the camera switching to infrared, headlights, a
//! cloud) counts as motion once and resets the background, so it settles at once instead of
//! reporting motion for seconds.

use crate::detect::preprocess::Plane;

/// Width of the grey thumbnail, in cells; the height follows the picture's aspect ratio.
pub const THUMBNAIL_WIDTH: usize = 96;
/// Samples per cell side: each cell is the mean of this many squared luma samples.
const SAMPLES_PER_CELL_SIDE: usize = 4;
/// A cell differs from the background by more than this many luma levels: it changed.
pub const CHANGE_LEVELS: f32 = 12.0;
/// Motion needs at least this share of the cells to change…
pub const MIN_CHANGED_FRACTION: f32 = 0.001;
/// … and at least this many cells (a distant person covers a few).
pub const MIN_CHANGED_CELLS: usize = 3;
/// More than this share changed at once: a global change (light, infrared), not an object.
pub const GLOBAL_CHANGE_FRACTION: f32 = 0.6;
/// How fast the background follows the picture: the share of the difference absorbed per
/// second (a still object is background after about 1 / rate seconds).
pub const BACKGROUND_RATE_PER_S: f32 = 0.5;

/// What one look found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MotionSample {
    /// Share of the thumbnail's cells that changed (0..=1).
    pub changed_fraction: f32,
    /// Enough changed: something moves (or the whole picture changed).
    pub motion: bool,
}

/// One camera's motion state: the background thumbnail.
#[derive(Clone, Debug, Default)]
pub struct MotionDetector {
    /// Picture size the background belongs to.
    size: (usize, usize),
    thumbnail_size: (usize, usize),
    background: Vec<f32>,
    current: Vec<f32>,
}

impl MotionDetector {
    pub fn new() -> MotionDetector {
        MotionDetector::default()
    }

    /// Looks at one picture's luma plane (`width` x `height` samples), `elapsed_s` seconds
    /// after the previous look. The first look, and the first after a size change, only
    /// learns the background: no motion.
    pub fn observe(
        &mut self,
        luma: &Plane,
        width: usize,
        height: usize,
        elapsed_s: f32,
    ) -> MotionSample {
        let still = MotionSample {
            changed_fraction: 0.0,
            motion: false,
        };
        if width == 0 || height == 0 {
            return still;
        }
        let thumbnail_size = thumbnail_size(width, height);
        thumbnail(luma, width, height, thumbnail_size, &mut self.current);
        if self.size != (width, height) || self.background.len() != self.current.len() {
            self.size = (width, height);
            self.thumbnail_size = thumbnail_size;
            self.background.clone_from(&self.current);
            return still;
        }
        let cells = self.current.len();
        let changed = self
            .current
            .iter()
            .zip(&self.background)
            .filter(|(now, before)| (*now - *before).abs() > CHANGE_LEVELS)
            .count();
        let changed_fraction = changed as f32 / cells as f32;
        if changed_fraction > GLOBAL_CHANGE_FRACTION {
            self.background.clone_from(&self.current);
            return MotionSample {
                changed_fraction,
                motion: true,
            };
        }
        let rate = (BACKGROUND_RATE_PER_S * elapsed_s.max(0.0)).min(1.0);
        for (background, now) in self.background.iter_mut().zip(&self.current) {
            *background += rate * (now - *background);
        }
        let needed = ((cells as f32 * MIN_CHANGED_FRACTION).ceil() as usize).max(MIN_CHANGED_CELLS);
        MotionSample {
            changed_fraction,
            motion: changed >= needed,
        }
    }
}

/// Thumbnail size for a picture: [`THUMBNAIL_WIDTH`] wide (less for a narrower picture), the
/// height in proportion, at least one cell each way.
fn thumbnail_size(width: usize, height: usize) -> (usize, usize) {
    let columns = THUMBNAIL_WIDTH.min(width).max(1);
    let rows = ((height * columns + width / 2) / width).clamp(1, height);
    (columns, rows)
}

/// The mean of a grid of samples in each cell of `luma`, row by row, into `out`.
fn thumbnail(
    luma: &Plane,
    width: usize,
    height: usize,
    (columns, rows): (usize, usize),
    out: &mut Vec<f32>,
) {
    out.clear();
    let n = SAMPLES_PER_CELL_SIDE;
    // Sample positions: n evenly spaced points inside each cell, per axis.
    let positions = |length: usize, cells: usize| -> Vec<usize> {
        (0..cells * n)
            .map(|k| ((2 * k + 1) * length / (2 * cells * n)).min(length - 1))
            .collect()
    };
    let xs = positions(width, columns);
    let ys = positions(height, rows);
    let step = luma.step.max(1);
    for cell_rows in ys.chunks(n) {
        let start = out.len();
        out.resize(start + columns, 0.0);
        for &y in cell_rows {
            let Some(row) = luma.data.get(y * luma.stride..) else {
                continue;
            };
            for (cell, cell_xs) in out[start..].iter_mut().zip(xs.chunks(n)) {
                *cell += cell_xs
                    .iter()
                    .map(|&x| f32::from(row.get(x * step).copied().unwrap_or(0)))
                    .sum::<f32>();
            }
        }
        let samples = (n * n) as f32;
        for cell in &mut out[start..] {
            *cell /= samples;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `width` x `height` luma plane from `f(x, y)`, rows padded to `stride`.
    fn plane(
        width: usize,
        height: usize,
        stride: usize,
        f: impl Fn(usize, usize) -> u8,
    ) -> Vec<u8> {
        let mut data = vec![0u8; stride * height];
        for y in 0..height {
            for x in 0..width {
                data[y * stride + x] = f(x, y);
            }
        }
        data
    }

    fn look(
        detector: &mut MotionDetector,
        data: &[u8],
        width: usize,
        height: usize,
        stride: usize,
    ) -> MotionSample {
        let luma = Plane {
            data,
            stride,
            step: 1,
        };
        detector.observe(&luma, width, height, 0.1)
    }

    /// A grey street with a dark 40x100 "person" at `x`, and a little sensor noise.
    fn street(person_x: Option<usize>, seed: usize) -> impl Fn(usize, usize) -> u8 {
        move |x, y| {
            let noise = ((x * 31 + y * 17 + seed * 7) % 5) as u8;
            match person_x {
                Some(px) if (px..px + 40).contains(&x) && (500..600).contains(&y) => 30 + noise,
                _ => 120 + noise,
            }
        }
    }

    #[test]
    fn a_still_noisy_scene_is_still_and_a_walking_person_is_motion() {
        let (w, h, stride) = (1920, 1080, 1984);
        let mut detector = MotionDetector::new();
        // (what the camera shows, motion expected)
        let cases: Vec<(&str, Option<usize>, bool)> = vec![
            ("first look learns", None, false),
            ("same scene, other noise", None, false),
            ("still again", None, false),
            ("a person appears", Some(800), true),
            ("the person walks on", Some(860), true),
            ("and on", Some(920), true),
        ];
        for (seed, (name, person, expected)) in cases.into_iter().enumerate() {
            let data = plane(w, h, stride, street(person, seed));
            let sample = look(&mut detector, &data, w, h, stride);
            assert_eq!(sample.motion, expected, "{name}: {sample:?}");
        }
    }

    #[test]
    fn what_stops_moving_becomes_background() {
        let (w, h) = (640, 360);
        let mut detector = MotionDetector::new();
        let empty = plane(w, h, w, street(None, 0));
        look(&mut detector, &empty, w, h, w);
        let parked = plane(w, h, w, |x, y| {
            if (100..300).contains(&x) && (200..300).contains(&y) {
                40
            } else {
                120
            }
        });
        let luma = Plane {
            data: &parked,
            stride: w,
            step: 1,
        };
        assert!(detector.observe(&luma, w, h, 0.1).motion, "it arrives");
        // Absorbed at BACKGROUND_RATE_PER_S: after a few seconds of looks it is background.
        let mut still_after = None;
        for look in 1..100 {
            if !detector.observe(&luma, w, h, 0.1).motion {
                still_after = Some(look as f32 * 0.1);
                break;
            }
        }
        let still_after = still_after.expect("absorbed within 10 s");
        assert!(
            (1.0..=6.0).contains(&still_after),
            "still after {still_after} s"
        );
    }

    #[test]
    fn small_and_global_changes() {
        let (w, h) = (1280, 720);
        let mut detector = MotionDetector::new();
        let base = plane(w, h, w, |_, _| 100);
        look(&mut detector, &base, w, h, w);
        // One changed cell is not enough (a flickering pixel, a leaf).
        let speck = plane(w, h, w, |x, y| if x < 13 && y < 13 { 250 } else { 100 });
        assert!(!look(&mut detector, &speck, w, h, w).motion);
        // The whole picture darkens at once (infrared switch): motion once, then settled.
        let dark = plane(w, h, w, |_, _| 20);
        let sample = look(&mut detector, &dark, w, h, w);
        assert!(
            sample.motion && sample.changed_fraction > GLOBAL_CHANGE_FRACTION,
            "{sample:?}"
        );
        assert!(
            !look(&mut detector, &dark, w, h, w).motion,
            "the background was reset"
        );
    }

    #[test]
    fn interleaved_strided_planes_and_odd_sizes_do_not_panic() {
        let mut detector = MotionDetector::new();
        for (w, h, stride, step) in [
            (1, 1, 1, 1),
            (3, 2, 8, 2),
            (97, 55, 128, 1),
            (5000, 4, 5000, 1),
        ] {
            let data = vec![77u8; stride * h];
            let luma = Plane {
                data: &data,
                stride,
                step,
            };
            let sample = detector.observe(&luma, w, h, 0.1);
            assert!(!sample.motion, "{w}x{h}");
            // A plane shorter than it says: read as black, never a panic.
            let short = Plane {
                data: &data[..data.len() / 2],
                stride,
                step,
            };
            let _ = detector.observe(&short, w, h, 0.1);
        }
        assert!(
            !detector
                .observe(
                    &Plane {
                        data: &[],
                        stride: 0,
                        step: 1
                    },
                    0,
                    0,
                    0.1
                )
                .motion
        );
    }

    #[test]
    fn thumbnail_sizes_follow_the_picture() {
        let cases = [
            ((1920, 1080), (96, 54)),
            ((640, 360), (96, 54)),
            ((704, 576), (96, 79)),
            ((50, 20), (50, 20)),
            ((1, 1), (1, 1)),
            ((5000, 4), (96, 1)),
        ];
        for ((w, h), expected) in cases {
            assert_eq!(thumbnail_size(w, h), expected, "{w}x{h}");
        }
    }
}
