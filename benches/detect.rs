//! Detection benchmarks on the bundled model and a real frame of the sample clip:
//! the raw model (the reference every other figure is compared with), pre-processing,
//! post-processing (decode + NMS), and the whole `detect` call.
//!
//! Pre-processing of a decoded video frame is measured three ways, at 640x360 and 1920x1080:
//! - the agent's one pass from the I420 planes to the model input (`Preprocessor::run_yuv`);
//! - the same with OpenCV (`resize` of the Y, U and V planes to the model's size, `cvtColor`
//!   of the small I420 picture, then normalisation), the alternative the frame-path issue named;
//! - the old path: the full-size frame converted to BGR, then the BGR pre-processing.
//!
//! The bundled fp32 and int8 models side by side: ms per frame on one thread and frames/s on
//! all cores (a session per core, as the agent runs them), the int8/fp32 speed ratio, and the
//! time to create a session (the model's share of start-up).
//!
//! `cargo bench --bench detect`; the summary printed last gives each stage as a ratio of the
//! raw model time measured in the same run, because the machines are shared and noisy.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use ndarray::Array4;
use opencv::core::{Mat, MatTraitConst, MatTraitConstManual, MatTraitManual, Size};
use opencv::imgproc;
use watchpost::detect::preprocess::{
    InputSpec, Preprocessor, YuvColour, YuvImage, YuvMatrix, YuvRange, input_transform,
};
use watchpost::detect::{
    BUNDLED_FP32, BUNDLED_INT8, ClassFilter, Detector, DetectorOptions, Runtime,
    find_bundled_manifest,
};
use watchpost::imaging::{self, OwnedPlanes, YuvFormat, YuvFrame};

fn load() -> (Detector, imaging::Frame) {
    (bundled(BUNDLED_FP32, 1), street_frame())
}

fn street_frame() -> imaging::Frame {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    imaging::read_image(&root.join("tests/data/frames/street-01.jpg")).expect("frame")
}

/// A bundled model by name, with `threads` threads inside one inference.
fn bundled(name: &str, threads: usize) -> Detector {
    let runtime = Runtime::load(None).expect("ONNX Runtime (run deploy/setup.sh)");
    let options = DetectorOptions {
        intra_threads: threads,
        class_filter: ClassFilter::CoarseClassesOnly,
    };
    Detector::load(&runtime, &find_bundled_manifest(name).unwrap(), &options).expect("model")
}

/// Frames per second of `name` on every core: one session per core, each on its own thread,
/// for `duration` (how the agent runs its inference threads).
fn all_cores_rate(name: &str, frame: &imaging::Frame, duration: Duration) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut detectors: Vec<Detector> = (0..cores).map(|_| bundled(name, 1)).collect();
    for detector in &mut detectors {
        detector.detect(frame.as_bgr()).unwrap();
    }
    let start = Instant::now();
    let frames: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = detectors
            .iter_mut()
            .map(|detector| {
                scope.spawn(move || {
                    let mut n = 0u64;
                    while start.elapsed() < duration {
                        detector.run_model().unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    frames as f64 / start.elapsed().as_secs_f64()
}

/// `frame` as a decoder's I420 at `width` x `height` (nearest sampling, BT.601 limited range;
/// rows padded to 64 bytes like libav's).
fn i420(frame: &imaging::Frame, width: usize, height: usize) -> YuvFrame {
    let stride = |w: usize| w.div_ceil(64) * 64;
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let bgr = |x: usize, y: usize| -> [f32; 3] {
        let p = frame
            .pixel(x * frame.width / width, y * frame.height / height)
            .unwrap();
        p.map(f32::from)
    };
    let mut planes = vec![
        vec![0u8; stride(width) * height],
        vec![128u8; stride(cw) * ch],
        vec![128u8; stride(cw) * ch],
    ];
    for y in 0..height {
        for x in 0..width {
            let [b, g, r] = bgr(x, y);
            planes[0][y * stride(width) + x] = (16.0 + 0.257 * r + 0.504 * g + 0.098 * b) as u8;
            if x % 2 == 0 && y % 2 == 0 {
                let c = (y / 2) * stride(cw) + x / 2;
                planes[1][c] = (128.0 - 0.148 * r - 0.291 * g + 0.439 * b) as u8;
                planes[2][c] = (128.0 + 0.439 * r - 0.368 * g - 0.071 * b) as u8;
            }
        }
    }
    let colour = YuvColour {
        matrix: YuvMatrix::Bt601,
        range: YuvRange::Limited,
        chroma_h_cosited: false,
        chroma_v_cosited: false,
    };
    let storage = OwnedPlanes {
        planes,
        strides: vec![stride(width), stride(cw), stride(cw)],
    };
    YuvFrame::new(width, height, YuvFormat::I420, colour, Arc::new(storage)).unwrap()
}

/// A plane as an OpenCV matrix, without a copy.
fn plane_mat(data: &[u8], width: usize, height: usize, stride: usize) -> Mat {
    assert!(data.len() >= stride * (height - 1) + width);
    // SAFETY: the matrix only reads `data`, which outlives it in every caller, through rows of
    // `stride` bytes that the assertion above keeps inside the slice.
    unsafe {
        Mat::new_rows_cols_with_data_unsafe(
            height as i32,
            width as i32,
            opencv::core::CV_8UC1,
            data.as_ptr() as *mut std::ffi::c_void,
            stride,
        )
    }
    .unwrap()
}

/// The OpenCV way from I420 planes to the model input: resize the three planes to the model's
/// size, convert the small I420 picture to BGR, normalise into the tensor.
struct OpenCvPreprocess {
    small: Mat,
}

impl OpenCvPreprocess {
    fn run(&mut self, image: &YuvImage, spec: &InputSpec, out: &mut Array4<f32>) {
        let transform = input_transform(image.width, image.height, spec);
        let rw = (image.width as f32 * transform.scale_x).round() as i32;
        let rh = (image.height as f32 * transform.scale_y).round() as i32;
        let (cw, ch) = image.chroma_size();
        let y = plane_mat(image.y.data, image.width, image.height, image.y.stride);
        let u = plane_mat(image.u.data, cw, ch, image.u.stride);
        let v = plane_mat(image.v.data, cw, ch, image.v.stride);
        // The small I420 picture: rh rows of Y, then U and V, each (rh/2) x (rw/2), packed.
        if self.small.rows() != rh * 3 / 2 || self.small.cols() != rw {
            self.small =
                Mat::new_rows_cols_with_default(rh * 3 / 2, rw, opencv::core::CV_8UC1, 0.into())
                    .unwrap();
        }
        let mut resized_y = Mat::default();
        let mut resized_u = Mat::default();
        let mut resized_v = Mat::default();
        imgproc::resize(
            &y,
            &mut resized_y,
            Size::new(rw, rh),
            0.0,
            0.0,
            imgproc::INTER_LINEAR,
        )
        .unwrap();
        let chroma = Size::new(rw / 2, rh / 2);
        imgproc::resize(&u, &mut resized_u, chroma, 0.0, 0.0, imgproc::INTER_LINEAR).unwrap();
        imgproc::resize(&v, &mut resized_v, chroma, 0.0, 0.0, imgproc::INTER_LINEAR).unwrap();
        {
            let small = self.small.data_bytes_mut().unwrap();
            let y_bytes = (rw * rh) as usize;
            let c_bytes = y_bytes / 4;
            small[..y_bytes].copy_from_slice(resized_y.data_bytes().unwrap());
            small[y_bytes..y_bytes + c_bytes].copy_from_slice(resized_u.data_bytes().unwrap());
            small[y_bytes + c_bytes..].copy_from_slice(resized_v.data_bytes().unwrap());
        }
        let mut bgr = Mat::default();
        imgproc::cvt_color_def(&self.small, &mut bgr, imgproc::COLOR_YUV2BGR_I420).unwrap();
        let bgr = bgr.data_bytes().unwrap();
        let output = out.as_slice_mut().unwrap();
        let plane = spec.width * spec.height;
        let (pad_x, pad_y) = (transform.pad_x as usize, transform.pad_y as usize);
        for c in 0..3 {
            let pad = (f32::from(spec.pad_value) - spec.mean[c]) / spec.std[c];
            output[c * plane..(c + 1) * plane].fill(pad);
        }
        for row in 0..rh as usize {
            let source = &bgr[row * rw as usize * 3..(row + 1) * rw as usize * 3];
            for c in 0..3 {
                let start = c * plane + (pad_y + row) * spec.width + pad_x;
                let inverse_std = 1.0 / spec.std[c];
                for (value, pixel) in output[start..start + rw as usize]
                    .iter_mut()
                    .zip(source.chunks_exact(3))
                {
                    *value = (f32::from(pixel[c]) - spec.mean[c]) * inverse_std;
                }
            }
        }
    }
}

fn benches(c: &mut Criterion) {
    let (mut detector, frame) = load();
    let spec = detector.spec().clone();
    detector.detect(frame.as_bgr()).unwrap();

    let mut group = c.benchmark_group("detect");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("model_only_1_thread", |b| {
        b.iter(|| detector.run_model().unwrap())
    });
    let mut int8 = bundled(BUNDLED_INT8, 1);
    int8.detect(frame.as_bgr()).unwrap();
    group.bench_function("model_only_1_thread_int8", |b| {
        b.iter(|| int8.run_model().unwrap())
    });

    let mut preprocessor = Preprocessor::new();
    let mut tensor: Array4<f32> = spec.input.new_tensor();
    group.bench_function("preprocess_bgr_640x360_to_416", |b| {
        b.iter(|| {
            preprocessor
                .run(black_box(&frame.as_bgr()), &spec.input, &mut tensor)
                .unwrap()
        })
    });
    for (width, height) in [(640, 360), (1920, 1080)] {
        let yuv = i420(&frame, width, height);
        group.bench_function(format!("preprocess_i420_{width}x{height}_to_416"), |b| {
            b.iter(|| {
                preprocessor
                    .run_yuv(black_box(&yuv.view()), &spec.input, &mut tensor)
                    .unwrap()
            })
        });
        let mut opencv = OpenCvPreprocess {
            small: Mat::default(),
        };
        group.bench_function(format!("preprocess_i420_{width}x{height}_opencv"), |b| {
            b.iter(|| opencv.run(black_box(&yuv.view()), &spec.input, &mut tensor))
        });
    }

    let raw = detector.raw_outputs(frame.as_bgr()).unwrap();
    group.bench_function("postprocess_decode_nms", |b| {
        b.iter(|| detector.postprocess(black_box(&raw)).unwrap())
    });
    group.bench_function("detect_full_1_thread", |b| {
        b.iter(|| detector.detect(black_box(frame.as_bgr())).unwrap())
    });
    group.finish();
}

/// Same-run ratios against the raw model time: what the README reports.
fn summary(_: &mut Criterion) {
    let (mut detector, frame) = load();
    let spec = detector.spec().clone();
    let mut preprocessor = Preprocessor::new();
    let mut tensor: Array4<f32> = spec.input.new_tensor();
    let raw = detector.raw_outputs(frame.as_bgr()).unwrap();
    let time = |n: u32, f: &mut dyn FnMut()| {
        f();
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed() / n
    };
    let n = 40;
    let model = time(n, &mut || detector.run_model().unwrap());
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let row = |name: &str, d: Duration| {
        println!("  {name:<44} {:8.2} ms   {:.3}", ms(d), ms(d) / ms(model));
    };
    println!("\nsummary (interleaved run, 1 inference thread; ratios against the raw model time):");
    println!(
        "  {:<44} {:8.2} ms   1.00 ({:.1} frames/s)",
        "raw model",
        ms(model),
        1.0 / model.as_secs_f64()
    );
    let pre = time(n * 5, &mut || {
        preprocessor
            .run(&frame.as_bgr(), &spec.input, &mut tensor)
            .unwrap();
    });
    row("preprocess BGR 640x360 (still pictures)", pre);
    for (width, height) in [(640, 360), (1920, 1080)] {
        let yuv = i420(&frame, width, height);
        let view = yuv.view();
        let one_pass = time(n * 5, &mut || {
            preprocessor
                .run_yuv(&view, &spec.input, &mut tensor)
                .unwrap();
        });
        let mut opencv = OpenCvPreprocess {
            small: Mat::default(),
        };
        let with_opencv = time(n * 5, &mut || opencv.run(&view, &spec.input, &mut tensor));
        let old = time(n, &mut || {
            let bgr = yuv.to_bgr().unwrap();
            preprocessor
                .run(&bgr.as_bgr(), &spec.input, &mut tensor)
                .unwrap();
        });
        row(
            &format!("I420 {width}x{height}: one pass (the agent's)"),
            one_pass,
        );
        row(
            &format!("I420 {width}x{height}: OpenCV resize + cvtColor"),
            with_opencv,
        );
        row(
            &format!("I420 {width}x{height}: full-size BGR, then BGR"),
            old,
        );
    }
    let post = time(n * 5, &mut || {
        black_box(detector.postprocess(&raw).unwrap());
    });
    row("decode + NMS", post);
    let full = time(n, &mut || {
        black_box(detector.detect(frame.as_bgr()).unwrap());
    });
    row("detect (whole, BGR 640x360)", full);
}

/// The fp32 and int8 models side by side, measured in alternation so that drift of the
/// machine hits both alike.
fn models(_: &mut Criterion) {
    let frame = street_frame();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut session_ms = [Vec::new(), Vec::new()];
    let mut single = [Vec::new(), Vec::new()];
    let mut all_cores = [Vec::new(), Vec::new()];
    let names = [BUNDLED_FP32, BUNDLED_INT8];
    for _round in 0..3 {
        for (i, name) in names.iter().enumerate() {
            let start = Instant::now();
            let mut detector = bundled(name, 1);
            session_ms[i].push(ms(start.elapsed()));
            detector.detect(frame.as_bgr()).unwrap();
            let n = 30;
            let start = Instant::now();
            for _ in 0..n {
                detector.run_model().unwrap();
            }
            single[i].push(ms(start.elapsed()) / f64::from(n));
            all_cores[i].push(all_cores_rate(name, &frame, Duration::from_secs(3)));
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("\nmodels (medians of 3 alternating rounds; {cores} cores):");
    for (i, name) in names.iter().enumerate() {
        println!(
            "  {name:<20} {:6.2} ms a frame on 1 thread; {:6.1} frames/s on all cores (a session \
             per core); session created in {:.0} ms",
            median(&single[i]),
            median(&all_cores[i]),
            median(&session_ms[i])
        );
    }
    println!(
        "  int8 / fp32 speed: {:.2} x on 1 thread, {:.2} x on all cores (goal: >= 1.8 x per thread)",
        median(&single[0]) / median(&single[1]),
        median(&all_cores[1]) / median(&all_cores[0])
    );
}

criterion_group!(detect_benches, benches, summary, models);

fn main() {
    detect_benches();
    Criterion::default().configure_from_args().final_summary();
}
