//! `watchpost detect IMAGE...`: run the model on still pictures.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::detect::{
    ClassFilter, CpuFeatures, Detector, DetectorOptions, LoadedModel, ModelChoice, Object,
};
use crate::imaging;

#[derive(Debug, Args)]
#[command(
    about = "Detect persons and vehicles in still pictures",
    after_help = "Example:\n  watchpost detect --format json --annotate /tmp/annotated tests/data/frames/street-01.jpg"
)]
pub(crate) struct DetectArgs {
    /// Pictures to analyse (JPEG, PNG, BMP, ...). A picture that cannot be read is reported
    /// and skipped; the others are still analysed.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,

    /// Output format: `text` for people, `json` for one JSON object per picture and line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Write each picture with its boxes and labels drawn into DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    annotate: Option<PathBuf>,

    /// Model: a bundled model's name (nanodet-m-416, nanodet-m-416-int8), `auto` (int8 where
    /// the CPU has integer dot-product instructions, else fp32), or a manifest (TOML).
    #[arg(long, value_name = "NAME|MANIFEST", value_parser = super::args::model_arg, default_value = "auto")]
    model: ModelChoice,

    /// Report every label of the model, not only persons and vehicles (others as class `other`).
    #[arg(long)]
    all_classes: bool,

    /// ONNX Runtime shared library (default: $WATCHPOST_ORT_LIB, next to the binary, then
    /// /opt/watchpost/onnxruntime).
    #[arg(long, value_name = "PATH")]
    ort_lib: Option<PathBuf>,

    /// Threads for one inference (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// The JSON line for one picture. Its `objects` are exactly the shape MQTT payloads reuse.
#[derive(serde::Serialize)]
struct ImageReport<'a> {
    image: &'a str,
    width: usize,
    height: usize,
    objects: &'a [Object],
}

pub(crate) fn run(args: DetectArgs) -> anyhow::Result<ExitCode> {
    let model = LoadedModel::load(args.ort_lib.as_deref(), &args.model, &CpuFeatures::detect())?;
    let threads = args
        .threads
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let options = DetectorOptions {
        intra_threads: threads,
        class_filter: if args.all_classes {
            ClassFilter::AllLabels
        } else {
            ClassFilter::CoarseClassesOnly
        },
    };
    let mut detector = model.detector(&options)?;
    tracing::info!(model = %detector.spec().name, runtime = %model.runtime.library_path().display(), "model loaded");

    if let Some(dir) = &args.annotate {
        std::fs::create_dir_all(dir).with_context(|| format!("--annotate {}", dir.display()))?;
    }
    let mut used_names = HashSet::new();
    let mut n_failed = 0usize;
    let stdout = std::io::stdout();
    for path in &args.images {
        match analyse(&mut detector, path, &args, &mut used_names) {
            Ok((frame, objects)) => {
                let mut out = stdout.lock();
                let written = match args.format {
                    Format::Json => {
                        let report = ImageReport {
                            image: &path.to_string_lossy(),
                            width: frame.width,
                            height: frame.height,
                            objects: &objects,
                        };
                        writeln!(out, "{}", serde_json::to_string(&report)?)
                    }
                    Format::Text => write_text(&mut out, path, &frame, &objects),
                };
                // A closed pipe (`| head`) ends the command quietly.
                if written.is_err() {
                    return Ok(ExitCode::from(super::EXIT_FAILURE));
                }
            }
            Err(e) => {
                n_failed += 1;
                super::print_error(&e.context(path.display().to_string()));
            }
        }
    }
    Ok(if n_failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILURE)
    })
}

fn analyse(
    detector: &mut Detector,
    path: &Path,
    args: &DetectArgs,
    used_names: &mut HashSet<PathBuf>,
) -> anyhow::Result<(imaging::Frame, Vec<Object>)> {
    let frame = imaging::read_image(path)?;
    let detections = detector.detect(frame.as_bgr())?;
    tracing::debug!(
        image = %path.display(),
        objects = detections.objects.len(),
        inference_ms = detections.timings.inference.as_secs_f64() * 1e3,
        "analysed"
    );
    if let Some(dir) = &args.annotate {
        let target = annotated_path(dir, path, used_names);
        let drawn = imaging::annotate(&frame, &detections.objects)?;
        let jpeg = imaging::encode_jpeg(&drawn, 90)?;
        std::fs::write(&target, jpeg).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok((frame, detections.objects))
}

/// `DIR/<stem>.jpg`, with `-2`, `-3`… when two inputs share a stem.
fn annotated_path(dir: &Path, image: &Path, used: &mut HashSet<PathBuf>) -> PathBuf {
    let stem = image
        .file_stem()
        .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    let mut candidate = dir.join(format!("{stem}.jpg"));
    let mut n = 2;
    while !used.insert(candidate.clone()) {
        candidate = dir.join(format!("{stem}-{n}.jpg"));
        n += 1;
    }
    candidate
}

fn write_text(
    out: &mut impl Write,
    path: &Path,
    frame: &imaging::Frame,
    objects: &[Object],
) -> std::io::Result<()> {
    let noun = if objects.len() == 1 {
        "object"
    } else {
        "objects"
    };
    writeln!(
        out,
        "{}  {}x{}  {} {noun}",
        path.display(),
        frame.width,
        frame.height,
        objects.len()
    )?;
    for o in objects {
        let [x, y, w, h] = o.bbox;
        writeln!(
            out,
            "  {:<8} {:<12} {:.2}  x={x:.3} y={y:.3} w={w:.3} h={h:.3}",
            o.class, o.label, o.score
        )?;
    }
    Ok(())
}
