//! The model manifest: a TOML file beside the `.onnx` that holds everything needed to run a model
//! without code changes (input tensor, pre-processing, decoder, labels, coarse classes,
//! thresholds).
//!
//! Parsing is two steps, like the agent's config: [`RawManifest`] mirrors the file
//! (`deny_unknown_fields`), [`ModelSpec`] is the validated form that cannot be wrong (every
//! threshold in 0..=1, every label mapped at most once, outputs named, sizes non-zero). Every
//! problem is reported at once, each with its path in the file.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::preprocess::{ColorOrder, InputSpec, ResizeMode, TensorLayout};

/// The coarse classes watchpost reports. Every model label maps to at most one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CoarseClass {
    Person,
    Vehicle,
}

impl CoarseClass {
    pub const ALL: [CoarseClass; 2] = [CoarseClass::Person, CoarseClass::Vehicle];

    pub fn as_str(self) -> &'static str {
        match self {
            CoarseClass::Person => "person",
            CoarseClass::Vehicle => "vehicle",
        }
    }

    pub fn parse(name: &str) -> Option<CoarseClass> {
        CoarseClass::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for CoarseClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Raw form: exactly what the file says.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    model: RawModel,
    input: RawInput,
    decoder: RawDecoder,
    #[serde(default)]
    classes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    thresholds: BTreeMap<String, f32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: String,
    file: PathBuf,
    #[serde(default)]
    description: Option<String>,
    labels: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    name: String,
    layout: TensorLayout,
    width: usize,
    height: usize,
    color_order: ColorOrder,
    mean: [f32; 3],
    std: [f32; 3],
    #[serde(default = "default_resize")]
    resize: ResizeMode,
    #[serde(default = "default_pad_value")]
    pad_value: u8,
}

fn default_resize() -> ResizeMode {
    ResizeMode::Letterbox
}

fn default_pad_value() -> u8 {
    114
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecoder {
    kind: DecoderKind,
    #[serde(default = "default_iou_threshold")]
    iou_threshold: f32,
    #[serde(default = "default_max_detections")]
    max_detections: usize,
    /// nanodet: bins per box side.
    #[serde(default)]
    bins: Option<usize>,
    /// nanodet: where in a grid cell the distances are measured from (0.5 = cell centre).
    #[serde(default)]
    center_offset: Option<f32>,
    /// nanodet: one entry per stride.
    #[serde(default)]
    levels: Vec<RawLevel>,
    /// yolov8 / yolov5: the single output tensor.
    #[serde(default)]
    output: Option<String>,
}

fn default_iou_threshold() -> f32 {
    0.6
}

fn default_max_detections() -> usize {
    100
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevel {
    stride: usize,
    scores: String,
    boxes: String,
}

/// The output decoders watchpost knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    /// NanoDet GFL head: per stride a score tensor `[1, N, C]` and a box tensor `[1, N, 4*bins]`.
    Nanodet,
    /// YOLOv8-style single output `[1, 4+C, N]`.
    Yolov8,
    /// YOLOv5-style single output `[1, N, 5+C]`.
    Yolov5,
}

// ---------------------------------------------------------------------------------------------
// Validated form.

/// One stride of a NanoDet head, with the names of its two output tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct NanodetLevelSpec {
    pub stride: usize,
    pub scores_output: String,
    pub boxes_output: String,
}

/// How to turn the model's outputs into candidates.
#[derive(Clone, Debug, PartialEq)]
pub enum DecoderSpec {
    Nanodet {
        bins: usize,
        center_offset: f32,
        levels: Vec<NanodetLevelSpec>,
    },
    Yolov8 {
        output: String,
    },
    Yolov5 {
        output: String,
    },
}

impl DecoderSpec {
    pub fn kind(&self) -> DecoderKind {
        match self {
            DecoderSpec::Nanodet { .. } => DecoderKind::Nanodet,
            DecoderSpec::Yolov8 { .. } => DecoderKind::Yolov8,
            DecoderSpec::Yolov5 { .. } => DecoderKind::Yolov5,
        }
    }
}

/// A validated model manifest.
///
/// Invariants: `labels` is non-empty; `coarse_classes.len() == thresholds.len() ==
/// labels.len()`; every threshold is in `0..=1`; `iou_threshold` is in `0..=1`;
/// `max_detections > 0`; input width and height are non-zero.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    /// Short model name, reported in outputs (for example `nanodet-m-416`).
    pub name: String,
    pub description: Option<String>,
    /// Absolute or manifest-relative path resolved against the manifest's folder.
    pub model_path: PathBuf,
    /// Path of the manifest itself, for messages.
    pub manifest_path: PathBuf,
    pub input_name: String,
    pub input: InputSpec,
    pub decoder: DecoderSpec,
    pub iou_threshold: f32,
    pub max_detections: usize,
    pub labels: Vec<String>,
    /// Per label index: the coarse class it counts as, if any.
    pub coarse_classes: Vec<Option<CoarseClass>>,
    /// Per label index: the minimum score to report it.
    pub thresholds: Vec<f32>,
}

/// A manifest that could not be read or is not valid. Every problem is listed.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("model manifest {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model manifest {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("model manifest {path}: {}", problems.join("; "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

impl ModelSpec {
    /// Reads and validates a manifest file.
    ///
    /// # Errors
    /// The file cannot be read, is not TOML of the expected shape (the message carries the line),
    /// or fails validation (every problem listed with its key).
    pub fn load(path: &Path) -> Result<ModelSpec, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        ModelSpec::parse(&text, path)
    }

    /// Parses manifest text; `path` locates the model file and names the manifest in errors.
    pub fn parse(text: &str, path: &Path) -> Result<ModelSpec, ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| ManifestError::Parse {
            path: path.to_owned(),
            message: one_line_toml_error(&e, text),
        })?;
        validate(raw, path)
    }

    /// The label and coarse class of a label index.
    pub fn label(&self, class_index: usize) -> Option<(&str, Option<CoarseClass>)> {
        Some((
            self.labels.get(class_index)?.as_str(),
            self.coarse_classes.get(class_index).copied().flatten(),
        ))
    }
}

/// toml's errors span several lines (a source excerpt with a caret); keep one line with the
/// position and the message.
pub(crate) fn one_line_toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

fn validate(raw: RawManifest, path: &Path) -> Result<ModelSpec, ManifestError> {
    let mut problems = Vec::new();
    let RawManifest {
        model,
        input,
        decoder,
        classes,
        thresholds,
    } = raw;

    if model.name.trim().is_empty() {
        problems.push("model.name: must not be empty".to_owned());
    }
    if model.labels.is_empty() {
        problems.push("model.labels: at least one label is needed".to_owned());
    }
    let mut label_index: HashMap<&str, usize> = HashMap::new();
    for (i, label) in model.labels.iter().enumerate() {
        if label_index.insert(label.as_str(), i).is_some() {
            problems.push(format!("model.labels[{i}]: `{label}` appears twice"));
        }
    }

    if input.name.is_empty() {
        problems.push("input.name: must not be empty".to_owned());
    }
    if input.width == 0 || input.height == 0 {
        problems.push(format!(
            "input: width and height must be > 0, got {}x{}",
            input.width, input.height
        ));
    }
    for (c, s) in input.std.iter().enumerate() {
        if !(s.is_finite() && *s != 0.0) {
            problems.push(format!(
                "input.std[{c}]: must be a non-zero number, got {s}"
            ));
        }
    }
    if input.mean.iter().any(|m| !m.is_finite()) {
        problems.push("input.mean: every value must be a finite number".to_owned());
    }

    if !(0.0..=1.0).contains(&decoder.iou_threshold) {
        problems.push(format!(
            "decoder.iou_threshold: must be in 0..1, got {}",
            decoder.iou_threshold
        ));
    }
    if decoder.max_detections == 0 {
        problems.push("decoder.max_detections: must be > 0".to_owned());
    }
    let decoder_spec = match decoder.kind {
        DecoderKind::Nanodet => {
            if decoder.output.is_some() {
                problems.push(
                    "decoder.output: not used by the nanodet decoder (use decoder.levels)"
                        .to_owned(),
                );
            }
            let bins = decoder.bins.unwrap_or(11);
            if bins < 2 {
                problems.push(format!("decoder.bins: must be at least 2, got {bins}"));
            }
            let center_offset = decoder.center_offset.unwrap_or(0.5);
            if !(0.0..=1.0).contains(&center_offset) {
                problems.push(format!(
                    "decoder.center_offset: must be in 0..1, got {center_offset}"
                ));
            }
            if decoder.levels.is_empty() {
                problems.push(
                    "decoder.levels: the nanodet decoder needs at least one level".to_owned(),
                );
            }
            let mut levels = Vec::new();
            for (i, level) in decoder.levels.into_iter().enumerate() {
                if level.stride == 0 {
                    problems.push(format!("decoder.levels[{i}].stride: must be > 0"));
                }
                levels.push(NanodetLevelSpec {
                    stride: level.stride,
                    scores_output: level.scores,
                    boxes_output: level.boxes,
                });
            }
            DecoderSpec::Nanodet {
                bins,
                center_offset,
                levels,
            }
        }
        kind @ (DecoderKind::Yolov8 | DecoderKind::Yolov5) => {
            if !decoder.levels.is_empty()
                || decoder.bins.is_some()
                || decoder.center_offset.is_some()
            {
                problems.push(format!(
                    "decoder: levels, bins and center_offset are nanodet settings, not {kind:?}"
                ));
            }
            let output = decoder.output.unwrap_or_default();
            if output.is_empty() {
                problems.push("decoder.output: the name of the output tensor is needed".to_owned());
            }
            if kind == DecoderKind::Yolov8 {
                DecoderSpec::Yolov8 { output }
            } else {
                DecoderSpec::Yolov5 { output }
            }
        }
    };

    // Coarse classes: label -> person / vehicle.
    let mut coarse_classes = vec![None; model.labels.len()];
    for (class_name, members) in &classes {
        let Some(coarse) = CoarseClass::parse(class_name) else {
            problems.push(format!(
                "classes.{class_name}: unknown class (known: person, vehicle)"
            ));
            continue;
        };
        for (j, label) in members.iter().enumerate() {
            match label_index.get(label.as_str()) {
                None => problems.push(format!(
                    "classes.{class_name}[{j}]: `{label}` is not one of the model's labels"
                )),
                Some(&i) => match coarse_classes[i] {
                    Some(previous) if previous != coarse => problems.push(format!(
                        "classes.{class_name}[{j}]: `{label}` is already mapped to {previous}"
                    )),
                    _ => coarse_classes[i] = Some(coarse),
                },
            }
        }
    }

    // Thresholds: `default`, then coarse classes, then labels (most specific wins).
    let mut default_threshold = 0.4;
    let mut by_coarse: HashMap<CoarseClass, f32> = HashMap::new();
    let mut by_label: HashMap<usize, f32> = HashMap::new();
    for (key, &value) in &thresholds {
        if !(0.0..=1.0).contains(&value) {
            problems.push(format!("thresholds.{key}: must be in 0..1, got {value}"));
            continue;
        }
        if key == "default" {
            default_threshold = value;
        } else if let Some(coarse) = CoarseClass::parse(key) {
            by_coarse.insert(coarse, value);
            // A label may share the coarse class's name ("person"); it gets the value too
            // unless it has its own entry, which is the same key, so nothing to do.
            if let Some(&i) = label_index.get(key.as_str()) {
                by_label.entry(i).or_insert(value);
            }
        } else if let Some(&i) = label_index.get(key.as_str()) {
            by_label.insert(i, value);
        } else {
            problems.push(format!(
                "thresholds.{key}: neither `default`, a class (person, vehicle) nor a model label"
            ));
        }
    }
    let thresholds = (0..model.labels.len())
        .map(|i| {
            by_label.get(&i).copied().unwrap_or_else(|| {
                coarse_classes[i]
                    .and_then(|c| by_coarse.get(&c).copied())
                    .unwrap_or(default_threshold)
            })
        })
        .collect();

    if !problems.is_empty() {
        return Err(ManifestError::Invalid {
            path: path.to_owned(),
            problems,
        });
    }

    let folder = path.parent().unwrap_or(Path::new("."));
    Ok(ModelSpec {
        name: model.name,
        description: model.description,
        model_path: folder.join(&model.file),
        manifest_path: path.to_owned(),
        input_name: input.name,
        input: InputSpec {
            width: input.width,
            height: input.height,
            layout: input.layout,
            color_order: input.color_order,
            mean: input.mean,
            std: input.std,
            resize: input.resize,
            pad_value: input.pad_value,
        },
        decoder: decoder_spec,
        iou_threshold: decoder.iou_threshold,
        max_detections: decoder.max_detections,
        labels: model.labels,
        coarse_classes,
        thresholds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[model]
name = "tiny"
file = "tiny.onnx"
labels = ["person", "bicycle", "car", "dog"]

[input]
name = "images"
layout = "nchw"
width = 64
height = 32
color_order = "rgb"
mean = [0.0, 0.0, 0.0]
std = [255.0, 255.0, 255.0]

[decoder]
kind = "yolov8"
output = "output0"

[classes]
person = ["person"]
vehicle = ["car"]

[thresholds]
default = 0.5
vehicle = 0.3
person = 0.25
dog = 0.9
"#;

    #[test]
    fn good_manifest_is_validated() {
        let spec = ModelSpec::parse(GOOD, Path::new("/m/tiny.toml")).expect("valid");
        assert_eq!(spec.model_path, Path::new("/m/tiny.onnx"));
        assert_eq!(spec.input.resize, ResizeMode::Letterbox, "default resize");
        assert_eq!(spec.input.pad_value, 114);
        assert_eq!(
            spec.coarse_classes,
            vec![
                Some(CoarseClass::Person),
                None,
                Some(CoarseClass::Vehicle),
                None
            ]
        );
        assert_eq!(spec.thresholds, vec![0.25, 0.5, 0.3, 0.9]);
        assert_eq!(
            spec.decoder,
            DecoderSpec::Yolov8 {
                output: "output0".into()
            }
        );
        assert_eq!(spec.iou_threshold, 0.6);
        assert_eq!(spec.label(2), Some(("car", Some(CoarseClass::Vehicle))));
        assert_eq!(spec.label(9), None);
    }

    #[test]
    fn bad_manifests_report_every_problem_with_its_key() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "unknown key",
                "[model]\nnam = 1",
                &["unknown field `nam`", "line 2"],
            ),
            (
                "wrong type",
                &GOOD.replace("width = 64", "width = \"wide\""),
                &["line 10", "invalid type: string \"wide\", expected usize"],
            ),
            (
                "unknown label in classes and bad thresholds, all at once",
                &GOOD
                    .replace("vehicle = [\"car\"]", "vehicle = [\"tank\"]")
                    .replace("dog = 0.9", "dog = 1.5\ncat = 0.2"),
                &[
                    "classes.vehicle[0]: `tank` is not one of the model's labels",
                    "thresholds.dog: must be in 0..1, got 1.5",
                    "thresholds.cat: neither",
                ],
            ),
            (
                "unknown coarse class",
                &GOOD.replace("[classes]", "[classes]\nanimal = [\"dog\"]"),
                &["classes.animal: unknown class"],
            ),
            (
                "zero size and zero std",
                &GOOD
                    .replace("height = 32", "height = 0")
                    .replace("std = [255.0,", "std = [0.0,"),
                &[
                    "input: width and height must be > 0, got 64x0",
                    "input.std[0]",
                ],
            ),
            (
                "yolo without output",
                &GOOD.replace("output = \"output0\"", ""),
                &["decoder.output: the name of the output tensor is needed"],
            ),
            (
                "nanodet without levels",
                &GOOD.replace(
                    "kind = \"yolov8\"\noutput = \"output0\"",
                    "kind = \"nanodet\"",
                ),
                &["decoder.levels: the nanodet decoder needs at least one level"],
            ),
            (
                "duplicate label",
                &GOOD.replace("\"dog\"]", "\"car\"]"),
                &["model.labels[3]: `car` appears twice"],
            ),
        ];
        for (name, text, expected) in cases {
            let err = ModelSpec::parse(text, Path::new("m.toml"))
                .expect_err(name)
                .to_string();
            assert!(!err.contains('\n'), "{name}: error spans lines: {err}");
            for e in *expected {
                assert!(err.contains(e), "{name}: `{err}` lacks `{e}`");
            }
        }
    }
}
