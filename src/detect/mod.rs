//! Person and vehicle detection: one ONNX model, run by `ort`, described by a manifest.
//!
//! ```text
//! BgrImage ─▶ preprocess_into (resize + normalise into a reused tensor; pure)
//!          ─▶ ort Session::run                       (the only impure step)
//!          ─▶ decode::{nanodet, yolo} (candidates above per-class thresholds; pure)
//!          ─▶ nms::nms_class_aware                   (pure)
//!          ─▶ Object { class, label, score, bbox }   (bbox normalised to the image)
//! ```
//!
//! Which model: [`ModelChoice`] (`[detection] model`, `--model`) is a bundled model's name, a
//! manifest path, or `auto`, which [`choose_model`] turns into the int8 model where the CPU has
//! integer dot-product instructions ([`CpuFeatures`]) and the fp32 model elsewhere.
//!
//! Invariants:
//! - A [`Detector`] is checked against its manifest when it is loaded: input name, element
//!   type and shape, every output the decoder reads and its shape. A mismatch is refused then,
//!   with a message naming it, never discovered per frame.
//! - `Detector::detect` allocates no tensors after the first call: the input tensor and the
//!   candidate buffer are reused.
//! - A `Detector` owns one ort session and is used by one thread at a time (`&mut self`);
//!   run several detectors for parallel inference.

mod choice;
pub mod decode;
mod loaded;
mod manifest;
pub mod nms;
pub mod preprocess;
mod runtime;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::collections::HashMap;

use ndarray::{Array4, ArrayD, ArrayViewD, Ix2, Ix3};
use ort::session::{Session, SessionOutputs};
use ort::value::{TensorElementType, TensorRef, ValueType};

pub use choice::{
    BUNDLED_FP32, BUNDLED_INT8, BUNDLED_MODELS, ChosenModel, CpuFeatures, ModelChoice, auto_model,
    choose_model,
};
pub use loaded::LoadedModel;
pub use manifest::{
    CoarseClass, DecoderKind, DecoderSpec, ManifestError, ModelSpec, NanodetLevelSpec,
};
pub use runtime::{LIBRARY_FILE_NAME, MINIMUM_VERSION, Runtime, RuntimeError, SETUP_LIBRARY_DIR};

use decode::Candidate;
use preprocess::{ImageView, InputTransform, Preprocessor, TensorLayout};

/// One detected object, as `watchpost detect` prints it and the MQTT payloads carry it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Object {
    /// `person`, `vehicle`, or `other` (labels outside both, only when asked for).
    pub class: &'static str,
    /// The model's own label, for example `car`.
    pub label: String,
    /// 0..1, rounded to 3 decimals.
    pub score: f32,
    /// `[x, y, w, h]`, normalised to the image (0..1), `x, y` the top-left corner; rounded to
    /// 4 decimals.
    pub bbox: [f32; 4],
}

/// Which objects to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClassFilter {
    /// Only labels mapped to `person` or `vehicle` (the default).
    #[default]
    CoarseClassesOnly,
    /// Every label of the model; those outside the coarse classes get class `other`.
    AllLabels,
}

/// Where the time of one [`Detector::detect`] call went.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimings {
    pub preprocess: Duration,
    pub inference: Duration,
    pub postprocess: Duration,
}

/// The result of one frame.
#[derive(Clone, Debug, Default)]
pub struct Detections {
    pub objects: Vec<Object>,
    pub timings: StageTimings,
}

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("model {path}: {reason}")]
    ModelLoad { path: PathBuf, reason: String },
    #[error("model {path} does not match its manifest {manifest}: {mismatch}")]
    Mismatch {
        path: PathBuf,
        manifest: PathBuf,
        mismatch: String,
    },
    #[error("image: {0}")]
    Preprocess(#[from] preprocess::PreprocessError),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("model output: {0}")]
    Decode(#[from] decode::DecodeError),
}

/// Options for building a [`Detector`].
#[derive(Clone, Debug)]
pub struct DetectorOptions {
    /// Threads ONNX Runtime may use inside one inference. The agent runs one detector per
    /// inference thread with 1 here; the one-shot CLI uses all cores.
    pub intra_threads: usize,
    pub class_filter: ClassFilter,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        DetectorOptions {
            intra_threads: 1,
            class_filter: ClassFilter::default(),
        }
    }
}

/// One loaded model with its reusable buffers.
pub struct Detector {
    session: Session,
    spec: ModelSpec,
    /// Per label index: the threshold the decoder applies. Labels not reported are set above 1
    /// so the decoder never builds candidates for them.
    decode_thresholds: Vec<f32>,
    preprocessor: Preprocessor,
    input: Array4<f32>,
    candidates: Vec<Candidate>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("model", &self.spec.name)
            .finish_non_exhaustive()
    }
}

impl Detector {
    /// Loads the model a manifest describes and checks it against the manifest.
    ///
    /// # Errors
    /// Manifest invalid, model file unreadable or not ONNX, or inputs/outputs not as the
    /// manifest says ([`DetectError::Mismatch`] names the first difference).
    pub fn load(
        runtime: &Runtime,
        manifest_path: &Path,
        options: &DetectorOptions,
    ) -> Result<Detector, DetectError> {
        let spec = ModelSpec::load(manifest_path)?;
        Detector::from_spec(runtime, spec, options)
    }

    /// Like [`Detector::load`], from an already validated manifest.
    pub fn from_spec(
        runtime: &Runtime,
        spec: ModelSpec,
        options: &DetectorOptions,
    ) -> Result<Detector, DetectError> {
        let model_error = |reason: String| DetectError::ModelLoad {
            path: spec.model_path.clone(),
            reason,
        };
        if !spec.model_path.is_file() {
            return Err(model_error("no such file".to_owned()));
        }
        let session = Session::builder(&runtime.environment)
            .map_err(|e| model_error(e.to_string()))?
            .with_intra_threads(options.intra_threads.max(1))
            .map_err(|e| model_error(e.to_string()))?
            .commit_from_file(&spec.model_path)
            .map_err(|e| model_error(first_line(&e.to_string())))?;

        check_against_manifest(&session, &spec).map_err(|mismatch| DetectError::Mismatch {
            path: spec.model_path.clone(),
            manifest: spec.manifest_path.clone(),
            mismatch,
        })?;

        let decode_thresholds = spec
            .thresholds
            .iter()
            .zip(&spec.coarse_classes)
            .map(
                |(&threshold, coarse)| match (options.class_filter, coarse) {
                    (ClassFilter::CoarseClassesOnly, None) => f32::INFINITY,
                    _ => threshold,
                },
            )
            .collect();
        let (w, h) = (spec.input.width, spec.input.height);
        let input = match spec.input.layout {
            TensorLayout::Nchw => Array4::zeros((1, 3, h, w)),
            TensorLayout::Nhwc => Array4::zeros((1, h, w, 3)),
        };
        Ok(Detector {
            session,
            spec,
            decode_thresholds,
            preprocessor: Preprocessor::new(),
            input,
            candidates: Vec::new(),
        })
    }

    /// The validated manifest of this model.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Runs the model on one picture: BGR (a decoded still) or YUV 4:2:0 (a decoded video
    /// frame, converted while it is resized to the model's input, never at full size).
    ///
    /// # Errors
    /// A malformed image buffer, or an ONNX Runtime failure.
    pub fn detect<'a>(
        &mut self,
        image: impl Into<ImageView<'a>>,
    ) -> Result<Detections, DetectError> {
        let started = Instant::now();
        let transform =
            self.preprocessor
                .run_view(&image.into(), &self.spec.input, &mut self.input)?;
        let preprocessed = Instant::now();

        let outputs = run_session(&mut self.session, &self.spec.input_name, &self.input)?;
        let inferred = Instant::now();

        let lookup = |name: &str| -> Result<ArrayViewD<'_, f32>, DetectError> {
            outputs
                .get(name)
                .ok_or_else(|| DetectError::Inference(format!("output `{name}` missing")))?
                .try_extract_array::<f32>()
                .map_err(|e| DetectError::Inference(e.to_string()))
        };
        let objects = postprocess(
            &self.spec,
            &self.decode_thresholds,
            &mut self.candidates,
            &transform,
            lookup,
        )?;
        drop(outputs);
        let finished = Instant::now();
        Ok(Detections {
            objects,
            timings: StageTimings {
                preprocess: preprocessed - started,
                inference: inferred - preprocessed,
                postprocess: finished - inferred,
            },
        })
    }

    /// Runs the model alone on the input tensor of the last call (zeros before any): the raw
    /// model rate that benchmarks report everything else against.
    ///
    /// # Errors
    /// An ONNX Runtime failure.
    pub fn run_model(&mut self) -> Result<(), DetectError> {
        run_session(&mut self.session, &self.spec.input_name, &self.input)?;
        Ok(())
    }

    /// Runs only pre-processing and the model, and returns owned copies of the outputs the
    /// decoder reads, for benchmarks and tests of the post-processing on real outputs.
    ///
    /// # Errors
    /// As [`Detector::detect`].
    pub fn raw_outputs<'a>(
        &mut self,
        image: impl Into<ImageView<'a>>,
    ) -> Result<RawOutputs, DetectError> {
        let transform =
            self.preprocessor
                .run_view(&image.into(), &self.spec.input, &mut self.input)?;
        let outputs = run_session(&mut self.session, &self.spec.input_name, &self.input)?;
        let mut tensors = HashMap::new();
        for (name, value) in outputs.iter() {
            if let Ok(view) = value.try_extract_array::<f32>() {
                tensors.insert(name.to_owned(), view.to_owned());
            }
        }
        Ok(RawOutputs { transform, tensors })
    }

    /// Decoding, NMS and mapping of outputs captured by [`Detector::raw_outputs`]: exactly
    /// the post-processing `detect` does.
    ///
    /// # Errors
    /// An output missing or of the wrong shape.
    pub fn postprocess(&mut self, raw: &RawOutputs) -> Result<Vec<Object>, DetectError> {
        let lookup = |name: &str| -> Result<ArrayViewD<'_, f32>, DetectError> {
            raw.tensors
                .get(name)
                .map(|a| a.view())
                .ok_or_else(|| DetectError::Inference(format!("output `{name}` missing")))
        };
        postprocess(
            &self.spec,
            &self.decode_thresholds,
            &mut self.candidates,
            &raw.transform,
            lookup,
        )
    }
}

/// Model outputs copied out of ONNX Runtime, with the transform of the frame they came from.
#[derive(Clone, Debug)]
pub struct RawOutputs {
    pub transform: InputTransform,
    pub tensors: HashMap<String, ArrayD<f32>>,
}

/// Runs `session` on `input` (the model input named `input_name`): the one impure step. A
/// free function, not a method, so that the outputs borrow only the session.
fn run_session<'s>(
    session: &'s mut Session,
    input_name: &str,
    input: &Array4<f32>,
) -> Result<SessionOutputs<'s>, DetectError> {
    let input =
        TensorRef::from_array_view(input).map_err(|e| DetectError::Inference(e.to_string()))?;
    session
        .run(ort::inputs![input_name => input])
        .map_err(|e| DetectError::Inference(first_line(&e.to_string())))
}

/// Decoder → NMS → objects, reading output tensors through `output`.
fn postprocess<'o>(
    spec: &ModelSpec,
    thresholds: &[f32],
    candidates: &mut Vec<Candidate>,
    transform: &InputTransform,
    output: impl Fn(&str) -> Result<ArrayViewD<'o, f32>, DetectError>,
) -> Result<Vec<Object>, DetectError> {
    candidates.clear();
    let (width, height) = (spec.input.width, spec.input.height);
    match &spec.decoder {
        DecoderSpec::Nanodet {
            bins,
            center_offset,
            levels,
        } => {
            let mut views = Vec::with_capacity(levels.len());
            for level in levels {
                views.push((
                    level.stride,
                    output(&level.scores_output)?,
                    output(&level.boxes_output)?,
                ));
            }
            let mut nanodet_levels = Vec::with_capacity(views.len());
            for (stride, scores, boxes) in &views {
                nanodet_levels.push(decode::nanodet::NanodetLevel {
                    stride: *stride,
                    scores: squeeze_batch::<Ix2>(scores, "scores")?,
                    boxes: squeeze_batch::<Ix2>(boxes, "boxes")?,
                });
            }
            decode::nanodet::decode_nanodet(
                &nanodet_levels,
                width,
                height,
                *bins,
                *center_offset,
                thresholds,
                candidates,
            )?;
        }
        DecoderSpec::Yolov8 { output: name } | DecoderSpec::Yolov5 { output: name } => {
            let view = output(name)?
                .into_dimensionality::<Ix3>()
                .map_err(|e| DetectError::Inference(format!("output `{name}`: {e}")))?;
            if spec.decoder.kind() == DecoderKind::Yolov8 {
                decode::yolo::decode_yolov8(view, thresholds, candidates)?;
            } else {
                decode::yolo::decode_yolov5(view, thresholds, candidates)?;
            }
        }
    }
    let kept = nms::nms_class_aware(
        candidates,
        spec.iou_threshold,
        spec.max_detections,
        nms::DEFAULT_MAX_CANDIDATES,
    );
    Ok(to_objects(&kept, spec, transform))
}

/// `[1, a, b]` → `[a, b]` view.
fn squeeze_batch<'a, D: ndarray::Dimension>(
    view: &'a ArrayViewD<'_, f32>,
    what: &str,
) -> Result<ndarray::ArrayView<'a, f32, D>, DetectError> {
    if view.ndim() < 2 || view.shape()[0] != 1 {
        return Err(DetectError::Inference(format!(
            "{what} output has shape {:?}, expected batch 1",
            view.shape()
        )));
    }
    view.index_axis(ndarray::Axis(0), 0)
        .into_dimensionality::<D>()
        .map_err(|e| DetectError::Inference(format!("{what} output: {e}")))
}

/// Maps kept candidates to reported objects, normalised to the source image.
pub fn to_objects(kept: &[Candidate], spec: &ModelSpec, transform: &InputTransform) -> Vec<Object> {
    kept.iter()
        .filter_map(|candidate| {
            let (label, coarse) = spec.label(candidate.class_index)?;
            let rect = transform.to_normalized(candidate.bbox);
            if !rect.is_valid() {
                return None;
            }
            Some(Object {
                class: coarse.map_or("other", CoarseClass::as_str),
                label: label.to_owned(),
                score: round_to(candidate.score, 3),
                bbox: rect.to_xywh().map(|v| round_to(v, 4)),
            })
        })
        .collect()
}

fn round_to(value: f32, decimals: i32) -> f32 {
    let factor = 10f32.powi(decimals);
    (value * factor).round() / factor
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_owned()
}

/// Compares the session's inputs and outputs with what the manifest promises.
fn check_against_manifest(session: &Session, spec: &ModelSpec) -> Result<(), String> {
    let find =
        |outlets: &[ort::value::Outlet], name: &str, kind: &str| -> Result<Vec<i64>, String> {
            let Some(outlet) = outlets.iter().find(|o| o.name() == name) else {
                let names: Vec<&str> = outlets.iter().map(|o| o.name()).collect();
                return Err(format!(
                    "{kind} `{name}` not found (the model has {})",
                    names.join(", ")
                ));
            };
            match outlet.dtype() {
                ValueType::Tensor { ty, shape, .. } => {
                    if *ty != TensorElementType::Float32 {
                        return Err(format!("{kind} `{name}` is {ty:?}, expected float32"));
                    }
                    Ok(shape.to_vec())
                }
                other => Err(format!(
                    "{kind} `{name}` is {other:?}, expected a float32 tensor"
                )),
            }
        };
    let expect_shape = |kind: &str, name: &str, actual: &[i64], expected: &[usize]| {
        let fits = actual.len() == expected.len()
            && actual
                .iter()
                .zip(expected)
                .all(|(&a, &e)| a < 0 || a as usize == e);
        if fits {
            Ok(())
        } else {
            Err(format!(
                "{kind} `{name}` has shape {actual:?}, the manifest implies {expected:?}"
            ))
        }
    };

    let (w, h) = (spec.input.width, spec.input.height);
    let input_shape = find(session.inputs(), &spec.input_name, "input")?;
    let expected_input = match spec.input.layout {
        TensorLayout::Nchw => [1, 3, h, w],
        TensorLayout::Nhwc => [1, h, w, 3],
    };
    expect_shape("input", &spec.input_name, &input_shape, &expected_input)?;

    let n_labels = spec.labels.len();
    match &spec.decoder {
        DecoderSpec::Nanodet { bins, levels, .. } => {
            for level in levels {
                let cells = w.div_ceil(level.stride) * h.div_ceil(level.stride);
                let shape = find(session.outputs(), &level.scores_output, "output")?;
                expect_shape(
                    "output",
                    &level.scores_output,
                    &shape,
                    &[1, cells, n_labels],
                )?;
                let shape = find(session.outputs(), &level.boxes_output, "output")?;
                expect_shape("output", &level.boxes_output, &shape, &[1, cells, 4 * bins])?;
            }
        }
        DecoderSpec::Yolov8 { output } => {
            let shape = find(session.outputs(), output, "output")?;
            if shape.len() != 3 || (shape[1] >= 0 && shape[1] as usize != 4 + n_labels) {
                return Err(format!(
                    "output `{output}` has shape {shape:?}, a yolov8 output with {n_labels} labels is [1, {}, N]",
                    4 + n_labels
                ));
            }
        }
        DecoderSpec::Yolov5 { output } => {
            let shape = find(session.outputs(), output, "output")?;
            if shape.len() != 3 || (shape[2] >= 0 && shape[2] as usize != 5 + n_labels) {
                return Err(format!(
                    "output `{output}` has shape {shape:?}, a yolov5 output with {n_labels} labels is [1, N, {}]",
                    5 + n_labels
                ));
            }
        }
    }
    Ok(())
}

/// Where a bundled model's manifest (`<name>.toml`) is looked for, in order:
/// `$WATCHPOST_MODELS_DIR`, next to the executable (`../share/watchpost/models`), the system
/// location (`/usr/share/watchpost/models`), then the source tree this binary was built from.
pub fn bundled_manifest_candidates(name: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("WATCHPOST_MODELS_DIR").filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    dirs.extend(crate::install::data_dirs("models", "models"));
    dirs.into_iter()
        .map(|d| d.join(format!("{name}.toml")))
        .collect()
}

/// A bundled model's manifest, or an error listing where it was looked for.
pub fn find_bundled_manifest(name: &str) -> Result<PathBuf, DetectError> {
    let candidates = bundled_manifest_candidates(name);
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| DetectError::ModelLoad {
            path: PathBuf::from(format!("{name}.toml")),
            reason: format!(
                "bundled model {name} not found (looked in {}); pass --model or set WATCHPOST_MODELS_DIR",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}
