//! `watchpost detect` driven as a user would: real binary, real model, real frames.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;

fn frame_paths() -> Vec<PathBuf> {
    common::ground_truth()
        .frames
        .iter()
        .map(|f| common::frames_dir().join(&f.file))
        .collect()
}

fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn keys(value: &serde_json::Value) -> BTreeSet<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn json_output_has_the_exact_shape() {
    let frames = frame_paths();
    let output = cargo_bin_cmd!("watchpost")
        .arg("detect")
        .arg("--format")
        .arg("json")
        .args(&frames)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output.stdout);
    assert_eq!(lines.len(), frames.len(), "one line per picture");
    let mut n_persons = 0;
    for (line, path) in lines.iter().zip(&frames) {
        assert_eq!(
            keys(line),
            BTreeSet::from(["image", "width", "height", "objects"])
        );
        assert_eq!(line["image"], path.to_string_lossy().as_ref());
        assert_eq!(
            (line["width"].as_u64(), line["height"].as_u64()),
            (Some(640), Some(360))
        );
        for object in line["objects"].as_array().unwrap() {
            assert_eq!(
                keys(object),
                BTreeSet::from(["class", "label", "score", "bbox"])
            );
            let class = object["class"].as_str().unwrap();
            assert!(
                class == "person" || class == "vehicle",
                "only coarse classes by default: {object}"
            );
            n_persons += usize::from(class == "person");
            let score = object["score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&score));
            let bbox: Vec<f64> = object["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(bbox.len(), 4);
            assert!(bbox.iter().all(|v| (0.0..=1.0).contains(v)), "{object}");
        }
    }
    assert!(
        n_persons >= frames.len(),
        "persons found on the street frames"
    );
}

#[test]
fn all_classes_adds_labels_and_keeps_the_coarse_ones() {
    let frame = &frame_paths()[0];
    let run = |extra: &[&str]| {
        let output = cargo_bin_cmd!("watchpost")
            .args(["detect", "--format", "json"])
            .args(extra)
            .arg(frame)
            .output()
            .unwrap();
        assert!(output.status.success());
        json_lines(&output.stdout).remove(0)["objects"]
            .as_array()
            .unwrap()
            .clone()
    };
    let coarse = run(&[]);
    let all = run(&["--all-classes"]);
    assert!(all.len() >= coarse.len());
    for object in &coarse {
        assert!(all.contains(object), "{object} missing from --all-classes");
    }
    for object in &all {
        let (class, label) = (
            object["class"].as_str().unwrap(),
            object["label"].as_str().unwrap(),
        );
        match label {
            "person" => assert_eq!(class, "person"),
            "car" | "truck" | "bus" | "motorcycle" => assert_eq!(class, "vehicle"),
            _ => assert_eq!(class, "other", "{object}"),
        }
    }
}

#[test]
fn bad_pictures_are_reported_and_the_others_still_processed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jpg");
    let garbage = dir.path().join("garbage.jpg");
    std::fs::write(&garbage, b"this is not a jpeg").unwrap();
    let good = &frame_paths()[0];
    let output = cargo_bin_cmd!("watchpost")
        .args(["detect", "--format", "json"])
        .arg(&missing)
        .arg(good)
        .arg(&garbage)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one line per bad picture: {stderr}");
    assert_eq!(
        lines[0],
        format!(
            "watchpost: error: {}: cannot read the file: No such file or directory (os error 2)",
            missing.display()
        )
    );
    assert_eq!(
        lines[1],
        format!(
            "watchpost: error: {}: not a readable image (unknown format or corrupt data)",
            garbage.display()
        )
    );
    let json = json_lines(&output.stdout);
    assert_eq!(json.len(), 1, "the good picture was still analysed");
    assert_eq!(json[0]["image"], good.to_string_lossy().as_ref());
}

#[test]
fn annotate_writes_the_picture_with_boxes_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("annotated");
    let frame = &frame_paths()[0];
    let output = cargo_bin_cmd!("watchpost")
        .args(["detect", "--format", "json", "--annotate"])
        .arg(&out_dir)
        .arg(frame)
        .output()
        .unwrap();
    assert!(output.status.success());
    let report = json_lines(&output.stdout).remove(0);
    let person = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["class"] == "person")
        .expect("a person on the first frame")
        .clone();

    let written = out_dir.join(format!(
        "{}.jpg",
        frame.file_stem().unwrap().to_string_lossy()
    ));
    let annotated = watchpost::imaging::read_image(&written).expect("a JPEG was written");
    let original = watchpost::imaging::read_image(frame).unwrap();
    assert_eq!(
        (annotated.width, annotated.height),
        (original.width, original.height)
    );

    // The person's box is drawn in green (BGR 60, 220, 60) along its bottom edge.
    let bbox: Vec<f64> = person["bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let (w, h) = (original.width as f64, original.height as f64);
    let y = (((bbox[1] + bbox[3]) * h).round() as usize).min(original.height - 1);
    let x = ((bbox[0] + bbox[2] / 2.0) * w).round() as usize;
    let near =
        |p: [u8; 3]| p[0].abs_diff(60) < 60 && p[1].abs_diff(220) < 60 && p[2].abs_diff(60) < 60;
    let green_here = (y.saturating_sub(2)..=y.min(original.height - 1))
        .any(|yy| near(annotated.pixel(x, yy).unwrap()));
    assert!(
        green_here,
        "box edge drawn at ({x}, {y}): {:?}",
        annotated.pixel(x, y)
    );
    let unchanged_corner = original
        .pixel(1, 1)
        .unwrap()
        .iter()
        .zip(annotated.pixel(1, 1).unwrap())
        .all(|(a, b)| a.abs_diff(b) < 20);
    assert!(
        unchanged_corner || bbox[0] < 0.05,
        "the rest of the picture is kept"
    );
}

fn write_manifest(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(common::bundled_manifest()).unwrap();
    let text = text.replace(
        "file = \"nanodet-m-416.onnx\"",
        &format!(
            "file = \"{}\"",
            common::repo_path("models/nanodet-m-416.onnx").display()
        ),
    );
    let path = dir.join("model.toml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

fn detect_with_model(manifest: &Path) -> (Option<i32>, String) {
    let output = cargo_bin_cmd!("watchpost")
        .arg("detect")
        .arg("--model")
        .arg(manifest)
        .arg(&frame_paths()[0])
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn a_model_that_does_not_match_its_manifest_is_refused_naming_the_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "input size",
            "width = 416",
            "width = 320",
            "input `input_1:0` has shape [1, 3, 416, 416], the manifest implies [1, 3, 416, 320]",
        ),
        (
            "input name",
            "name = \"input_1:0\"",
            "name = \"images\"",
            "input `images` not found (the model has input_1:0)",
        ),
        (
            "output name",
            "scores = \"Identity:0\"",
            "scores = \"scores8\"",
            "output `scores8` not found",
        ),
        (
            "stride",
            "stride = 16",
            "stride = 12",
            "output `Identity_1:0` has shape [1, 676, 80], the manifest implies [1, 1225, 80]",
        ),
        (
            "bins",
            "bins = 11",
            "bins = 8",
            "has shape [1, 2704, 44], the manifest implies [1, 2704, 32]",
        ),
        (
            "labels",
            "\"toothbrush\"",
            "\"toothbrush\", \"tank\"",
            "has shape [1, 2704, 80], the manifest implies [1, 2704, 81]",
        ),
    ];
    for (name, from, to, expected) in cases {
        let manifest = write_manifest(dir.path(), |t| {
            assert!(t.contains(from), "{name}: manifest lacks `{from}`");
            t.replacen(from, to, 1)
        });
        let (code, stderr) = detect_with_model(&manifest);
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
        assert!(
            stderr.contains("does not match its manifest"),
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{name}: `{stderr}` lacks `{expected}`"
        );
    }
}

#[test]
fn bad_manifests_and_model_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let not_onnx = dir.path().join("not-a-model.onnx");
    std::fs::write(&not_onnx, b"garbage").unwrap();
    type Edit = Box<dyn Fn(String) -> String>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "toml syntax",
            Box::new(|t| t.replace("[input]", "[input")),
            "line ",
        ),
        (
            "unknown key",
            Box::new(|t| t.replace("layout = \"nchw\"", "layout = \"nchw\"\ncolour = 1")),
            "unknown field `colour`",
        ),
        (
            "missing model file",
            Box::new(|t| t.replace("nanodet-m-416.onnx\"", "nope.onnx\"")),
            "nope.onnx: no such file",
        ),
        (
            "not an onnx file",
            Box::new(move |t| {
                t.replace(
                    &common::repo_path("models/nanodet-m-416.onnx")
                        .display()
                        .to_string(),
                    &not_onnx.display().to_string(),
                )
            }),
            "not-a-model.onnx: ",
        ),
    ];
    for (name, edit, expected) in cases {
        let manifest = write_manifest(dir.path(), edit);
        let (code, stderr) = detect_with_model(&manifest);
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
        assert!(stderr.starts_with("watchpost: error: "), "{name}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: `{stderr}` lacks `{expected}`"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[test]
fn runtime_library_problems_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A stand-in library that reports an old ONNX Runtime version, built with the system cc.
    let source = dir.path().join("old_ort.c");
    std::fs::write(
        &source,
        r#"typedef struct { const void *(*GetApi)(unsigned); const char *(*GetVersionString)(void); } OrtApiBase;
static const void *get_api(unsigned v) { (void)v; return 0; }
static const char *version(void) { return "1.22.0"; }
static const OrtApiBase base = { get_api, version };
const OrtApiBase *OrtGetApiBase(void) { return &base; }
"#,
    )
    .unwrap();
    let old = dir.path().join("libonnxruntime.so.1.22.0");
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&old)
        .arg(&source)
        .status()
        .expect("cc");
    assert!(status.success());
    let not_ort = dir.path().join("libnot_ort.so");
    std::fs::write(
        dir.path().join("empty.c"),
        "int not_onnx_runtime(void) { return 1; }\n",
    )
    .unwrap();
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&not_ort)
        .arg(dir.path().join("empty.c"))
        .status()
        .unwrap();
    assert!(status.success());
    let garbage = dir.path().join("libgarbage.so");
    std::fs::write(&garbage, b"not a shared object").unwrap();

    type Env = Vec<(&'static str, String)>;
    let cases: Vec<(&str, Vec<String>, Env, String)> = vec![
        (
            "named file missing",
            vec!["--ort-lib".into(), "/nonexistent/libonnxruntime.so".into()],
            vec![],
            "ONNX Runtime library /nonexistent/libonnxruntime.so (from --ort-lib) does not exist"
                .into(),
        ),
        (
            "env names a missing file",
            vec![],
            vec![("WATCHPOST_ORT_LIB", "/nonexistent/lib.so".into())],
            "/nonexistent/lib.so (from WATCHPOST_ORT_LIB) does not exist".into(),
        ),
        (
            "too old",
            vec!["--ort-lib".into(), old.display().to_string()],
            vec![],
            format!(
                "ONNX Runtime library {} is version 1.22.0; watchpost needs 1.31 or newer",
                old.display()
            ),
        ),
        (
            "not onnx runtime",
            vec!["--ort-lib".into(), not_ort.display().to_string()],
            vec![],
            format!("{} is not an ONNX Runtime library", not_ort.display()),
        ),
        (
            "not a library",
            vec!["--ort-lib".into(), garbage.display().to_string()],
            vec![],
            format!(
                "ONNX Runtime library {} could not be loaded",
                garbage.display()
            ),
        ),
    ];
    for (name, args, envs, expected) in cases {
        let mut cmd = cargo_bin_cmd!("watchpost");
        cmd.arg("detect").args(&args).arg(&frame_paths()[0]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let output = cmd.output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
        assert!(
            stderr.contains(&expected),
            "{name}: `{stderr}` lacks `{expected}`"
        );
        assert!(output.stdout.is_empty(), "{name}: nothing on stdout");
    }
}

#[test]
fn usage_errors_exit_2() {
    let output = cargo_bin_cmd!("watchpost").arg("detect").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = cargo_bin_cmd!("watchpost")
        .args(["detect", "--format", "xml", "a.jpg"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("xml"));
    let output = cargo_bin_cmd!("watchpost")
        .args(["detect", "--help"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("Example:"));
}
