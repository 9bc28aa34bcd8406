//! The real bundled model on real footage: persons are found where they stand.

mod common;

use watchpost::detect::{ClassFilter, Detector, DetectorOptions, Object, Runtime};
use watchpost::imaging;

fn detector(class_filter: ClassFilter) -> Detector {
    let runtime = Runtime::load(None).expect("ONNX Runtime (run deploy/setup.sh)");
    let options = DetectorOptions {
        intra_threads: 2,
        class_filter,
    };
    Detector::load(&runtime, &common::bundled_manifest(), &options).expect("bundled model loads")
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
        // One-to-one matching, greedy by IoU: one loose box over two people counts once.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, expected) in frame_truth.persons.iter().enumerate() {
            for (d, person) in persons.iter().enumerate() {
                pairs.push((common::iou_xywh(person.bbox, expected.bbox), t, d));
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut matched_iou = vec![0.0f32; frame_truth.persons.len()];
        let mut truth_used = vec![false; frame_truth.persons.len()];
        let mut detection_used = vec![false; persons.len()];
        for (iou, t, d) in pairs {
            if iou >= 0.5 && !truth_used[t] && !detection_used[d] {
                truth_used[t] = true;
                detection_used[d] = true;
                matched_iou[t] = iou;
            }
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
