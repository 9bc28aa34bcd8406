//! The real bundled model on real footage: persons are found where they stand.

mod common;

use watchpost::detect::{
    BUNDLED_FP32, BUNDLED_INT8, ClassFilter, CpuFeatures, Detector, DetectorOptions, ModelSpec,
    Object, Runtime, find_bundled_manifest,
};
use watchpost::imaging;

fn detector(class_filter: ClassFilter) -> Detector {
    bundled_detector(BUNDLED_FP32, class_filter)
}

fn bundled_detector(name: &str, class_filter: ClassFilter) -> Detector {
    let runtime = Runtime::load(None).expect("ONNX Runtime (run deploy/setup.sh)");
    let options = DetectorOptions {
        intra_threads: 2,
        class_filter,
    };
    let manifest = find_bundled_manifest(name).expect("bundled manifest");
    Detector::load(&runtime, &manifest, &options).expect("bundled model loads")
}

#[test]
fn persons_are_found_where_they_stand() {
    let truth = common::ground_truth();
    assert!(
        truth.frames.len() >= 3,
        "ground truth covers at least 3 frames"
    );
    let mut detector = detector(ClassFilter::CoarseClassesOnly);
    let mut n_checked_boxes = 0;
    for frame_truth in &truth.frames {
        let path = common::frames_dir().join(&frame_truth.file);
        let frame = imaging::read_image(&path).expect("test frame decodes");
        let detections = detector.detect(frame.as_bgr()).expect("detect");
        let persons: Vec<_> = detections
            .objects
            .iter()
            .filter(|o| o.class == "person")
            .collect();
        assert!(
            (frame_truth.persons_min..=frame_truth.persons_max).contains(&persons.len()),
            "{}: {} persons, expected {}..={}: {:?}",
            frame_truth.file,
            persons.len(),
            frame_truth.persons_min,
            frame_truth.persons_max,
            persons
        );
        let truth_boxes: Vec<_> = frame_truth.persons.iter().map(|p| p.bbox).collect();
        let person_boxes: Vec<_> = persons.iter().map(|p| p.bbox).collect();
        let mut matched_iou = vec![0.0f32; frame_truth.persons.len()];
        for (t, _, iou) in common::match_one_to_one(&truth_boxes, &person_boxes, 0.5, |_, _| true) {
            matched_iou[t] = iou;
        }
        for (expected, iou) in frame_truth.persons.iter().zip(&matched_iou) {
            if expected.hard {
                eprintln!(
                    "{}: hard person `{}`: IoU {iou:.2}",
                    frame_truth.file, expected.note
                );
                continue;
            }
            assert!(
                *iou >= 0.5,
                "{}: person `{}` at {:?} has no detection of its own with IoU >= 0.5 among {:?}",
                frame_truth.file,
                expected.note,
                expected.bbox,
                persons
            );
            n_checked_boxes += 1;
        }
    }
    assert!(
        n_checked_boxes >= 5,
        "at least 5 boxes checked by eye, got {n_checked_boxes}"
    );
}

/// A bundled model whose thresholds are all moved by `shift` (to see what lies just below).
fn shifted_detector(name: &str, shift: f32) -> Detector {
    let runtime = Runtime::load(None).expect("ONNX Runtime (run deploy/setup.sh)");
    let options = DetectorOptions {
        intra_threads: 2,
        class_filter: ClassFilter::CoarseClassesOnly,
    };
    let manifest = find_bundled_manifest(name).expect("bundled manifest");
    let mut spec = ModelSpec::load(&manifest).expect("bundled manifest");
    for threshold in &mut spec.thresholds {
        *threshold += shift;
    }
    Detector::from_spec(&runtime, spec, &options).expect("bundled model loads")
}

/// The pairs of detections of `a` that `b` also has: same class, IoU >= 0.5, one to one.
fn found_in(a: &[&Object], b: &[&Object]) -> Vec<(usize, usize, f32)> {
    let boxes = |objects: &[&Object]| -> Vec<[f32; 4]> { objects.iter().map(|o| o.bbox).collect() };
    common::match_one_to_one(&boxes(a), &boxes(b), 0.5, |i, j| a[i].class == b[j].class)
}

fn refs(objects: &[Object]) -> Vec<&Object> {
    objects.iter().collect()
}

/// The detections clear of their threshold by [`SCORE_BAND`].
fn clear<'a>(objects: &[&'a Object], threshold_of: &dyn Fn(&Object) -> f32) -> Vec<&'a Object> {
    objects
        .iter()
        .filter(|o| o.score >= threshold_of(o) + SCORE_BAND)
        .copied()
        .collect()
}

/// How far a detection's score may move between fp32 and int8 and still count as the same
/// detection: scores within this band of a threshold may fall on either side of it.
const SCORE_BAND: f32 = 0.03;

#[test]
fn the_int8_model_finds_what_the_fp32_model_finds() {
    // The accuracy gate of the int8 model (models/quantize.sh), on the test frames (never
    // calibrated on):
    // - its recall of the persons checked by eye is at most 0.02 below fp32's, both at the
    //   manifest's thresholds;
    // - its detections agree with fp32's (same class, IoU >= 0.5) with recall and precision
    //   >= 0.95, where a detection of one model clear of the threshold (by SCORE_BAND) must be
    //   found by the other above the threshold less SCORE_BAND. Strictly at the threshold the
    //   agreement is printed, not asserted: int8 moves scores by 0.013 on average (the fp32
    //   model's own scores move by up to 0.011 between a frame's BGR and YUV forms, see
    //   yuv_frames_give_the_detections_of_the_bgr_path), and every disagreement measured
    //   there was a person scored within 0.011 of the 0.35 threshold.
    let (mut fp32, mut int8) = (
        shifted_detector(BUNDLED_FP32, 0.0),
        shifted_detector(BUNDLED_INT8, 0.0),
    );
    let (mut fp32_low, mut int8_low) = (
        shifted_detector(BUNDLED_FP32, -SCORE_BAND),
        shifted_detector(BUNDLED_INT8, -SCORE_BAND),
    );
    let thresholds = fp32.spec().thresholds.clone();
    let labels = fp32.spec().labels.clone();
    let threshold_of = |o: &Object| thresholds[labels.iter().position(|l| *l == o.label).unwrap()];

    let (mut truth_total, mut fp32_found, mut int8_found) = (0usize, 0usize, 0usize);
    let (mut strict_fp32, mut strict_int8, mut strict_agreed) = (0usize, 0usize, 0usize);
    let (mut clear_fp32, mut clear_fp32_found) = (0usize, 0usize);
    let (mut clear_int8, mut clear_int8_found) = (0usize, 0usize);
    let mut score_differences = Vec::new();
    for frame_truth in &common::ground_truth().frames {
        let frame = imaging::read_image(&common::frames_dir().join(&frame_truth.file)).unwrap();
        let detect = |d: &mut Detector| d.detect(frame.as_bgr()).unwrap().objects;
        let (reference, quantized) = (detect(&mut fp32), detect(&mut int8));
        let (reference_low, quantized_low) = (detect(&mut fp32_low), detect(&mut int8_low));
        let (reference, quantized) = (refs(&reference), refs(&quantized));
        let (reference_low, quantized_low) = (refs(&reference_low), refs(&quantized_low));

        let truth: Vec<_> = frame_truth
            .persons
            .iter()
            .filter(|p| !p.hard)
            .map(|p| p.bbox)
            .collect();
        let persons = |objects: &[&Object]| -> Vec<[f32; 4]> {
            objects
                .iter()
                .filter(|o| o.class == "person")
                .map(|o| o.bbox)
                .collect()
        };
        truth_total += truth.len();
        fp32_found +=
            common::match_one_to_one(&truth, &persons(&reference), 0.5, |_, _| true).len();
        int8_found +=
            common::match_one_to_one(&truth, &persons(&quantized), 0.5, |_, _| true).len();

        let pairs = found_in(&reference, &quantized);
        strict_fp32 += reference.len();
        strict_int8 += quantized.len();
        strict_agreed += pairs.len();
        score_differences.extend(
            pairs
                .iter()
                .map(|&(i, j, _)| (reference[i].score - quantized[j].score).abs()),
        );

        let (reference_clear, quantized_clear) = (
            clear(&reference, &threshold_of),
            clear(&quantized, &threshold_of),
        );
        clear_fp32 += reference_clear.len();
        clear_fp32_found += found_in(&reference_clear, &quantized_low).len();
        clear_int8 += quantized_clear.len();
        clear_int8_found += found_in(&quantized_clear, &reference_low).len();
    }
    let ratio = |n: usize, d: usize| n as f64 / d.max(1) as f64;
    let (fp32_recall, int8_recall) = (
        ratio(fp32_found, truth_total),
        ratio(int8_found, truth_total),
    );
    let (recall, precision) = (
        ratio(clear_fp32_found, clear_fp32),
        ratio(clear_int8_found, clear_int8),
    );
    let mean_score_difference = score_differences.iter().map(|&d| f64::from(d)).sum::<f64>()
        / score_differences.len().max(1) as f64;
    eprintln!(
        "persons checked by eye: fp32 recall {fp32_recall:.3} ({fp32_found}/{truth_total}), \
         int8 {int8_recall:.3} ({int8_found}/{truth_total})\n\
         int8 vs fp32 beyond the band: recall {recall:.3} ({clear_fp32_found}/{clear_fp32}), \
         precision {precision:.3} ({clear_int8_found}/{clear_int8})\n\
         int8 vs fp32 at the threshold: recall {:.3} ({strict_agreed}/{strict_fp32}), precision \
         {:.3} ({strict_agreed}/{strict_int8}); mean |score difference| {mean_score_difference:.4}",
        ratio(strict_agreed, strict_fp32),
        ratio(strict_agreed, strict_int8),
    );
    // The agreement gate is 0.95 where the agent picks int8 by itself (a CPU with integer
    // dot-product instructions, whose int8 kernels do not saturate). Elsewhere ONNX Runtime's
    // int8 kernels (x86 AVX2's u8 x s8 pairs summed into 16 bits) can saturate and move a few
    // more detections (measured on an AVX2-only AMD EPYC: precision 0.944, 51 of 54; mean score
    // difference 0.022): the agent runs fp32 there unless int8 is asked for, and warns then;
    // the gate there is 0.90.
    let cpu = CpuFeatures::detect();
    let agreement = if cpu.dot_product.is_some() {
        0.95
    } else {
        0.90
    };
    eprintln!("agreement gate {agreement} on {}", cpu.describe());
    assert!(truth_total >= 5 && clear_fp32 >= 20, "enough to measure");
    assert!(
        int8_recall >= fp32_recall - 0.02,
        "int8 person recall {int8_recall:.3} more than 0.02 below fp32's {fp32_recall:.3}"
    );
    assert!(
        recall >= agreement,
        "int8 misses fp32 detections: recall {recall:.3} (gate {agreement})"
    );
    assert!(
        precision >= agreement,
        "int8 finds what fp32 does not: precision {precision:.3} (gate {agreement})"
    );
    assert!(
        mean_score_difference < SCORE_BAND.into(),
        "scores moved by {mean_score_difference:.4} on average"
    );
}

#[test]
fn objects_are_well_formed_and_sorted() {
    let mut detector = detector(ClassFilter::AllLabels);
    let spec = detector.spec().clone();
    for frame_truth in common::ground_truth().frames {
        let frame = imaging::read_image(&common::frames_dir().join(&frame_truth.file)).unwrap();
        let objects = detector.detect(frame.as_bgr()).unwrap().objects;
        assert!(objects.len() <= spec.max_detections);
        for pair in objects.windows(2) {
            assert!(pair[0].score >= pair[1].score, "sorted by score: {pair:?}");
        }
        for o in &objects {
            let index = spec
                .labels
                .iter()
                .position(|l| *l == o.label)
                .expect("a model label");
            assert!(
                o.score >= spec.thresholds[index] - 1e-3 && o.score <= 1.0,
                "{o:?}"
            );
            let [x, y, w, h] = o.bbox;
            assert!(x >= 0.0 && y >= 0.0 && w > 0.0 && h > 0.0, "{o:?}");
            assert!(x + w <= 1.0001 && y + h <= 1.0001, "{o:?}");
            let expected_class = spec.coarse_classes[index].map_or("other", |c| c.as_str());
            assert_eq!(o.class, expected_class, "{o:?}");
        }
    }
}

#[test]
fn post_processing_of_captured_outputs_equals_detect() {
    let mut detector = detector(ClassFilter::CoarseClassesOnly);
    let frame_truth = &common::ground_truth().frames[0];
    let frame = imaging::read_image(&common::frames_dir().join(&frame_truth.file)).unwrap();
    let direct = detector.detect(frame.as_bgr()).unwrap().objects;
    let raw = detector.raw_outputs(frame.as_bgr()).unwrap();
    assert_eq!(raw.tensors.len(), 6, "NanoDet has six outputs");
    assert_eq!(detector.postprocess(&raw).unwrap(), direct);
    assert!(!direct.is_empty());
}

/// `frame` through GStreamer's own `videoconvert` machinery into `format`, as a buffer.
fn gst_convert(
    data: &[u8],
    from: &gstreamer_video::VideoInfo,
    format: gstreamer_video::VideoFormat,
) -> (gstreamer::Buffer, gstreamer_video::VideoInfo) {
    use gstreamer_video::{VideoColorimetry, VideoConverter, VideoFrame, VideoInfo};
    // YUV as SD streams say they are (limited-range BT.601); RGB as GStreamer's default (sRGB).
    let builder = VideoInfo::builder(format, from.width(), from.height());
    let to = if format.to_str().starts_with('I') {
        builder.colorimetry(&"bt601".parse::<VideoColorimetry>().unwrap())
    } else {
        builder
    }
    .build()
    .unwrap();
    let input =
        VideoFrame::from_buffer_readable(gstreamer::Buffer::from_slice(data.to_vec()), from)
            .unwrap();
    let output = gstreamer::Buffer::with_size(to.size()).unwrap();
    let mut output = VideoFrame::from_buffer_writable(output, &to).unwrap();
    VideoConverter::new(from, &to, None)
        .unwrap()
        .frame(&input, &mut output);
    (output.into_buffer(), to)
}

/// Objects clearly above `threshold` on either side, paired with their nearest twin of the same
/// label on the other: `(pairs, largest score difference, largest box coordinate difference)`;
/// an object without a twin counts as a difference of 1.
fn twin_differences(a: &[Object], b: &[Object], threshold: f32) -> (usize, f32, f32) {
    let distance = |x: &Object, y: &Object| {
        x.bbox
            .iter()
            .zip(y.bbox)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max)
    };
    let (mut pairs, mut worst_score, mut worst_box) = (0, 0.0f32, 0.0f32);
    for (from, to) in [(a, b), (b, a)] {
        for object in from.iter().filter(|o| o.score >= threshold + 0.01) {
            let twin = to
                .iter()
                .filter(|o| o.label == object.label)
                .min_by(|p, q| distance(p, object).total_cmp(&distance(q, object)));
            let (score, bbox) = twin.map_or((1.0, 1.0), |twin| {
                ((twin.score - object.score).abs(), distance(twin, object))
            });
            worst_score = worst_score.max(score);
            worst_box = worst_box.max(bbox);
            pairs += 1;
        }
    }
    (pairs, worst_score, worst_box)
}

#[test]
fn yuv_frames_give_the_detections_of_the_bgr_path() {
    // A decoder hands over I420; the agent analyses it directly instead of converting every
    // frame to full-size BGR first. For each test frame, made into the I420 a decoder would give
    // (GStreamer's converter, BT.601 limited range): the objects found on the I420 must be those
    // found on the same frame converted to BGR and analysed by the BGR path: same label, box
    // within 0.01, score within 0.015 (measured: 0.011 at most, 110 objects).
    use gstreamer_video::prelude::*;
    use gstreamer_video::{VideoFormat, VideoFrame, VideoInfo};
    use std::sync::Arc;
    use watchpost::detect::preprocess::{YuvColour, YuvMatrix, YuvRange};
    use watchpost::imaging::{OwnedPlanes, YuvFormat, YuvFrame};
    gstreamer::init().unwrap();
    let mut detector = detector(ClassFilter::CoarseClassesOnly);
    let threshold = detector
        .spec()
        .thresholds
        .iter()
        .copied()
        .fold(1.0, f32::min);
    let mut exact = (0, 0.0f32, 0.0f32);
    let mut videoconvert = (0, 0.0f32, 0.0f32);
    for frame_truth in common::ground_truth().frames {
        let picture = imaging::read_image(&common::frames_dir().join(&frame_truth.file)).unwrap();
        let bgr_info = VideoInfo::builder(
            VideoFormat::Bgr,
            picture.width as u32,
            picture.height as u32,
        )
        .build()
        .unwrap();
        assert_eq!(bgr_info.stride()[0] as usize, picture.stride_bytes);
        let (i420, i420_info) = gst_convert(&picture.data, &bgr_info, VideoFormat::I420);
        let planes = VideoFrame::from_buffer_readable(i420.clone(), &i420_info).unwrap();
        let storage = OwnedPlanes {
            planes: (0..3)
                .map(|p| planes.plane_data(p).unwrap().to_vec())
                .collect(),
            strides: (0..3).map(|p| planes.plane_stride()[p] as usize).collect(),
        };
        let colour = YuvColour {
            matrix: YuvMatrix::Bt601,
            range: YuvRange::Limited,
            chroma_h_cosited: false,
            chroma_v_cosited: false,
        };
        let yuv = YuvFrame::new(
            picture.width,
            picture.height,
            YuvFormat::I420,
            colour,
            Arc::new(storage),
        )
        .unwrap();
        let direct = detector.detect(yuv.view()).unwrap().objects;

        // The BGR path on the same frame converted to BGR (the agent's own full-size conversion,
        // rounded to 8 bits: that rounding alone moves a score by up to about 0.01).
        let converted = yuv.to_bgr().unwrap();
        let bgr_path = detector.detect(converted.as_bgr()).unwrap().objects;
        let (pairs, score, bbox) = twin_differences(&direct, &bgr_path, threshold);
        eprintln!(
            "{}: {pairs} objects, largest difference score {score:.4}, box {bbox:.4}",
            frame_truth.file
        );
        assert!(
            score <= 0.015 && bbox <= 0.01,
            "{}: the YUV path {direct:?}\nthe BGR path {bgr_path:?}",
            frame_truth.file
        );
        exact = (exact.0 + pairs, exact.1.max(score), exact.2.max(bbox));

        // For the record: the old pipeline's videoconvert, whose 8-bit integer conversion moves
        // pixels by a few levels on its own.
        let mapped = i420.map_readable().unwrap();
        let (old, _) = gst_convert(&mapped, &i420_info, VideoFormat::Bgr);
        let old = imaging::Frame::from_bgr(
            picture.width,
            picture.height,
            picture.stride_bytes,
            old.map_readable().unwrap().to_vec(),
        )
        .unwrap();
        let old_path = detector.detect(old.as_bgr()).unwrap().objects;
        let (pairs, score, bbox) = twin_differences(&direct, &old_path, threshold);
        videoconvert = (
            videoconvert.0 + pairs,
            videoconvert.1.max(score),
            videoconvert.2.max(bbox),
        );
    }
    eprintln!(
        "YUV path against the BGR path: {} objects, largest difference score {:.4}, box {:.4}; \
         against videoconvert + BGR path: {} objects, score {:.4}, box {:.4}",
        exact.0, exact.1, exact.2, videoconvert.0, videoconvert.1, videoconvert.2
    );
    assert!(exact.0 >= 20, "{} objects compared", exact.0);
}
