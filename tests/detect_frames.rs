//! The real bundled model on real footage: persons are found where they stand.

mod common;

use watchpost::detect::{ClassFilter, Detector, DetectorOptions, Runtime};
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
        let detections = detector.detect(&frame.as_bgr()).expect("detect");
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
        let objects = detector.detect(&frame.as_bgr()).unwrap().objects;
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
    let direct = detector.detect(&frame.as_bgr()).unwrap().objects;
    let raw = detector.raw_outputs(&frame.as_bgr()).unwrap();
    assert_eq!(raw.tensors.len(), 6, "NanoDet has six outputs");
    assert_eq!(detector.postprocess(&raw).unwrap(), direct);
    assert!(!direct.is_empty());
}
