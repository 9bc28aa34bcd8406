//! Detection benchmarks on the bundled model and a real frame of the sample clip:
//! the raw model (the reference every other figure is compared with), pre-processing,
//! post-processing (decode + NMS), and the whole `detect` call.
//!
//! `cargo bench --bench detect`; the summary printed last gives each stage as a ratio of the
//! raw model time measured in the same run, because the machines are shared and noisy.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use ndarray::Array4;
use watchpost::detect::preprocess::Preprocessor;
use watchpost::detect::{ClassFilter, Detector, DetectorOptions, Runtime};
use watchpost::imaging;

fn load() -> (Detector, imaging::Frame) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runtime = Runtime::load(None).expect("ONNX Runtime (run deploy/setup.sh)");
    let options = DetectorOptions {
        intra_threads: 1,
        class_filter: ClassFilter::CoarseClassesOnly,
    };
    let detector =
        Detector::load(&runtime, &root.join("models/nanodet-m-416.toml"), &options).expect("model");
    let frame = imaging::read_image(&root.join("tests/data/frames/street-01.jpg")).expect("frame");
    (detector, frame)
}

fn benches(c: &mut Criterion) {
    let (mut detector, frame) = load();
    let spec = detector.spec().clone();
    detector.detect(&frame.as_bgr()).unwrap();

    let mut group = c.benchmark_group("detect");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("model_only_1_thread", |b| {
        b.iter(|| detector.run_model().unwrap())
    });

    let mut preprocessor = Preprocessor::new();
    let mut tensor: Array4<f32> = spec.input.new_tensor();
    group.bench_function("preprocess_640x360_to_416", |b| {
        b.iter(|| {
            preprocessor
                .run(black_box(&frame.as_bgr()), &spec.input, &mut tensor)
                .unwrap()
        })
    });

    let raw = detector.raw_outputs(&frame.as_bgr()).unwrap();
    group.bench_function("postprocess_decode_nms", |b| {
        b.iter(|| detector.postprocess(black_box(&raw)).unwrap())
    });
    group.bench_function("detect_full_1_thread", |b| {
        b.iter(|| detector.detect(black_box(&frame.as_bgr())).unwrap())
    });
    group.finish();
}

/// Same-run ratios against the raw model time: what the README reports.
fn summary(_: &mut Criterion) {
    let (mut detector, frame) = load();
    let spec = detector.spec().clone();
    let mut preprocessor = Preprocessor::new();
    let mut tensor: Array4<f32> = spec.input.new_tensor();
    let raw = detector.raw_outputs(&frame.as_bgr()).unwrap();
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
    let pre = time(n * 5, &mut || {
        preprocessor
            .run(&frame.as_bgr(), &spec.input, &mut tensor)
            .unwrap();
    });
    let post = time(n * 5, &mut || {
        black_box(detector.postprocess(&raw).unwrap());
    });
    let full = time(n, &mut || {
        black_box(detector.detect(&frame.as_bgr()).unwrap());
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("\nsummary (interleaved run, 1 inference thread; ratios against the raw model time):");
    println!(
        "  raw model        {:8.2} ms  = {:6.1} frames/s   1.00",
        ms(model),
        1.0 / model.as_secs_f64()
    );
    println!(
        "  preprocess       {:8.2} ms                      {:.3}",
        ms(pre),
        ms(pre) / ms(model)
    );
    println!(
        "  decode + NMS     {:8.2} ms                      {:.3}",
        ms(post),
        ms(post) / ms(model)
    );
    println!(
        "  detect (whole)   {:8.2} ms  = {:6.1} frames/s   {:.3}",
        ms(full),
        1.0 / full.as_secs_f64(),
        ms(full) / ms(model)
    );
}

criterion_group!(detect_benches, benches, summary);

fn main() {
    detect_benches();
    Criterion::default().configure_from_args().final_summary();
}
