//! `watchpost camera probe NAME|URL` and `watchpost camera draw NAME`: the technician's camera
//! check. Thin: [`crate::probe`] connects, decodes and diagnoses; this file picks the target,
//! runs the model on one frame and prints.
//!
//! Exit codes: 0 the camera works (probe) or the picture was written (draw); 1 the camera
//! failed (one line naming the cause) or the model or the output file failed; 2 bad usage or
//! configuration.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::cli::args::{ConfigFile, model_arg};
use crate::cli::report::report_config_error;
use crate::config::redact_url;
use crate::config::{self, CameraConfig, Config, LineConfig, ZoneConfig};
use crate::detect::{ClassFilter, CpuFeatures, DetectorOptions, LoadedModel, ModelChoice, Object};
use crate::imaging::{self, YuvFrame};
use crate::probe::{
    self, Failure, FailureReport, ProbeOptions, ProbeTarget, StreamReport, fact_line,
};

#[derive(Debug, Args)]
#[command(
    about = "Check that a camera works from this box: connect, decode, detect",
    after_help = "NAME is a camera of the configuration (its URL, credentials, transport, latency \
                  and decoder are used, and --snapshot draws its zones and lines); a URL \
                  (rtsp://HOST[:PORT]/PATH) probes a camera that is not configured.\n\n\
                  Prints the codec, the resolution (WIDTHxHEIGHT), the frame rate measured over \
                  the decoded seconds (and the one the stream announces), the time to the first \
                  frame, and the objects the model finds in the last frame. A camera that does \
                  not work gets one line naming the cause (DNS, refused, timeout, 401, no video, \
                  codec, ...) and exit code 1.\n\n\
                  Examples:\n  watchpost camera probe gate-east --snapshot /tmp/gate-east.jpg\n  \
                  watchpost camera probe rtsp://10.0.0.21:554/stream1 --username admin \\\n      \
                  --password-file /etc/watchpost/cam-password --format json"
)]
pub(crate) struct ProbeArgs {
    /// A camera of the configuration, or an rtsp:// or rtsps:// URL.
    #[arg(value_name = "NAME|URL")]
    camera: String,

    #[command(flatten)]
    config: ConfigFile,

    /// Decode this many seconds of video after the first frame.
    #[arg(long, value_name = "N", default_value_t = ProbeOptions::DEFAULT_SECONDS,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    seconds: u64,

    /// Write the last frame as a JPEG with the detected boxes (and the camera's zones and
    /// lines) drawn.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,

    /// Give up on each step (DNS, TCP connection, first frame) after N seconds.
    #[arg(long = "timeout-s", value_name = "N", default_value_t = ProbeOptions::DEFAULT_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout_s: u64,

    /// Output format: `text` for people, `json` for one JSON object.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// User name for a URL (a configured camera has its own).
    #[arg(long, value_name = "USER")]
    username: Option<String>,

    /// File whose first line is the password, for a URL (a configured camera has its own).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,

    /// Model instead of the configured one: a bundled model's name, `auto`, or a manifest
    /// (TOML).
    #[arg(long, value_name = "NAME|MANIFEST", value_parser = model_arg)]
    model: Option<ModelChoice>,

    /// ONNX Runtime shared library (default: the configuration's, else the usual search).
    #[arg(long, value_name = "PATH")]
    ort_lib: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    about = "Draw a camera's zones and lines on one of its frames, to check their placement",
    after_help = "Grabs one frame from the camera (or takes --from-snapshot, for example a \
                  `camera probe --snapshot` picture) and writes it with every zone (outline and \
                  name) and every line (name, and two arrows across it labelled with the \
                  direction a crossing that way is counted as).\n\n\
                  Examples:\n  watchpost camera draw gate-east --output /tmp/gate-east-layout.jpg\n  \
                  watchpost camera draw gate-east --from-snapshot /tmp/gate-east.jpg --output \
                  /tmp/layout.jpg"
)]
pub(crate) struct DrawArgs {
    /// A camera of the configuration.
    #[arg(value_name = "NAME")]
    camera: String,

    #[command(flatten)]
    config: ConfigFile,

    /// Where to write the picture (JPEG).
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,

    /// Draw on this picture instead of a frame grabbed from the camera.
    #[arg(long, value_name = "JPEG")]
    from_snapshot: Option<PathBuf>,

    /// Give up on each step (DNS, TCP connection, first frame) after N seconds.
    #[arg(long = "timeout-s", value_name = "N", default_value_t = ProbeOptions::DEFAULT_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout_s: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// `camera probe --format json`: the same keys whether the camera works or not.
#[derive(Debug, serde::Serialize)]
struct ProbeReport<'a> {
    camera: Option<&'a str>,
    url: String,
    ok: bool,
    codec: Option<&'a str>,
    width: Option<usize>,
    height: Option<usize>,
    /// Measured over the decoded frames, 0.1 precision.
    fps: Option<f64>,
    fps_advertised: Option<f64>,
    first_frame_ms: Option<u64>,
    frames: Option<u64>,
    decoder: Option<&'a str>,
    /// Counts by class.
    objects: Option<BTreeMap<&'static str, usize>>,
    detections: Option<&'a [Object]>,
    snapshot: Option<String>,
    error: Option<FailureReport<'a>>,
}

/// What the probe is pointed at, with what the configuration says about it.
struct Resolved {
    target: ProbeTarget,
    /// `Some` for a configured camera.
    camera: Option<CameraConfig>,
    config: Option<Config>,
}

pub(crate) fn run_probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let resolved = match resolve_target(&args) {
        Ok(resolved) => resolved,
        Err(code) => return Ok(code),
    };
    let options = ProbeOptions {
        seconds: Duration::from_secs(args.seconds),
        timeout: Duration::from_secs(args.timeout_s),
    };
    let target = &resolved.target;
    let shown = shown_name(target);
    let url = redact_url(&target.url);
    let report = match probe::probe_stream(target, &options) {
        Ok(report) => report,
        Err(failure) => return Ok(print_failure(&args, target, &url, &shown, &failure)),
    };

    // The model on the last frame; then the snapshot.
    let objects = match detect_objects(&args, resolved.config.as_ref(), &report.frame) {
        Ok(objects) => objects,
        Err(e) => {
            let message = format!(
                "the camera works, but the model failed: {}",
                crate::cli::one_line(&format!("{e:#}"))
            );
            print_success(&args, target, &url, &report, Err(&message))?;
            if args.format == Format::Text {
                eprintln!("watchpost: error: {shown}: {message}");
            }
            return Ok(ExitCode::from(crate::cli::EXIT_FAILURE));
        }
    };
    let (zones, lines) = match &resolved.camera {
        Some(camera) => (camera.zones.as_slice(), camera.lines.as_slice()),
        None => (&[][..], &[][..]),
    };
    if let Some(path) = &args.snapshot {
        // The one full-size conversion of a probe, only when a picture is asked for.
        let picture = report.frame.to_bgr().context("converting the frame")?;
        let jpeg = probe::draw::render(&picture, &objects, zones, lines)
            .context("drawing the snapshot")?;
        std::fs::write(path, jpeg).with_context(|| format!("--snapshot {}", path.display()))?;
    }
    print_success(&args, target, &url, &report, Ok((&objects, zones, lines)))?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_draw(args: DrawArgs) -> anyhow::Result<ExitCode> {
    let config = match config::load(args.config.path()) {
        Ok(config) => config,
        Err(e) => return Ok(report_config_error(&e)),
    };
    let Some(camera) = find_camera(&config, &args.camera, args.config.path()) else {
        return Ok(ExitCode::from(crate::cli::EXIT_USAGE));
    };
    let frame = match &args.from_snapshot {
        Some(path) => imaging::read_image(path)
            .with_context(|| format!("--from-snapshot {}", path.display()))?,
        None => {
            let target = ProbeTarget::from_camera(camera);
            let options = ProbeOptions {
                seconds: Duration::ZERO,
                timeout: Duration::from_secs(args.timeout_s),
            };
            match probe::probe_stream(&target, &options) {
                Ok(report) => report.frame.to_bgr().context("converting the frame")?,
                Err(failure) => {
                    eprintln!(
                        "watchpost: error: camera {}: {}",
                        camera.name, failure.message
                    );
                    return Ok(ExitCode::from(crate::cli::EXIT_FAILURE));
                }
            }
        }
    };
    let jpeg = probe::draw::render(&frame, &[], &camera.zones, &camera.lines)
        .context("drawing the zones and lines")?;
    std::fs::write(&args.output, jpeg)
        .with_context(|| format!("--output {}", args.output.display()))?;
    if camera.zones.is_empty() && camera.lines.is_empty() {
        eprintln!(
            "watchpost: warning: camera {} has no zones and no lines: the picture shows the frame only",
            camera.name
        );
    }
    println!(
        "{}: camera {} {}x{}, {}",
        args.output.display(),
        camera.name,
        frame.width,
        frame.height,
        describe_layout(&camera.zones, &camera.lines)
    );
    Ok(ExitCode::SUCCESS)
}

/// The target of `camera probe`; `Err(exit code)` after printing a usage or configuration
/// problem.
fn resolve_target(args: &ProbeArgs) -> Result<Resolved, ExitCode> {
    let usage = |message: String| {
        eprintln!("watchpost: error: {message}");
        ExitCode::from(crate::cli::EXIT_USAGE)
    };
    if args.camera.contains("://") {
        let password = match &args.password_file {
            Some(path) => Some(config::read_password_file(path).map_err(|e| {
                usage(format!(
                    "--password-file: {}",
                    crate::cli::one_line(&e.to_string())
                ))
            })?),
            None => None,
        };
        let target = ProbeTarget::from_url(&args.camera, args.username.clone(), password)
            .map_err(|e| usage(format!("the URL {e}")))?;
        return Ok(Resolved {
            target,
            camera: None,
            config: None,
        });
    }
    if args.username.is_some() || args.password_file.is_some() {
        return Err(usage(format!(
            "--username and --password-file are for a URL; camera `{}` takes its credentials from {}",
            args.camera,
            args.config.path().display()
        )));
    }
    let config = config::load(args.config.path()).map_err(|e| report_config_error(&e))?;
    let camera = find_camera(&config, &args.camera, args.config.path())
        .ok_or(ExitCode::from(crate::cli::EXIT_USAGE))?
        .clone();
    Ok(Resolved {
        target: ProbeTarget::from_camera(&camera),
        camera: Some(camera),
        config: Some(config),
    })
}

/// The camera `name` of `config`, or `None` after printing what the cameras are.
fn find_camera<'a>(config: &'a Config, name: &str, path: &Path) -> Option<&'a CameraConfig> {
    let found = config.cameras.iter().find(|c| c.name.as_str() == name);
    if found.is_none() {
        let names: Vec<&str> = config.cameras.iter().map(|c| c.name.as_str()).collect();
        eprintln!(
            "watchpost: error: no camera `{name}` in {} (cameras: {}); to probe a camera that is \
             not configured, give its rtsp:// URL",
            path.display(),
            names.join(", ")
        );
    }
    found
}

fn detect_objects(
    args: &ProbeArgs,
    config: Option<&Config>,
    frame: &YuvFrame,
) -> anyhow::Result<Vec<Object>> {
    let detection = config.map(|c| &c.detection);
    let ort_lib = args
        .ort_lib
        .clone()
        .or_else(|| detection.and_then(|d| d.ort_lib.clone()));
    let choice = args
        .model
        .clone()
        .or_else(|| detection.map(|d| d.model.clone()))
        .unwrap_or_default();
    let model = LoadedModel::load(ort_lib.as_deref(), &choice, &CpuFeatures::detect())?;
    let options = DetectorOptions {
        intra_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        class_filter: ClassFilter::CoarseClassesOnly,
    };
    let mut detector = model.detector(&options)?;
    Ok(detector.detect(frame.view())?.objects)
}

/// `gate-east` for a configured camera, the (credential-free) URL otherwise.
fn shown_name(target: &ProbeTarget) -> String {
    match &target.camera {
        Some(name) => format!("camera {name}"),
        None => redact_url(&target.url),
    }
}

fn print_failure(
    args: &ProbeArgs,
    target: &ProbeTarget,
    url: &str,
    shown: &str,
    failure: &Failure,
) -> ExitCode {
    match args.format {
        Format::Text => eprintln!("watchpost: error: {shown}: {}", failure.message),
        Format::Json => {
            let report = ProbeReport {
                camera: target.camera.as_ref().map(|c| c.as_str()),
                url: url.to_owned(),
                ok: false,
                codec: None,
                width: None,
                height: None,
                fps: None,
                fps_advertised: None,
                first_frame_ms: None,
                frames: None,
                decoder: None,
                objects: None,
                detections: None,
                snapshot: None,
                error: Some(failure.report()),
            };
            print_json(&report);
        }
    }
    ExitCode::from(crate::cli::EXIT_FAILURE)
}

fn print_json(report: &ProbeReport) {
    match serde_json::to_string(report) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("watchpost: error: cannot write the report: {e}"),
    }
}

fn counts_by_class(objects: &[Object]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for object in objects {
        *counts.entry(object.class).or_insert(0) += 1;
    }
    counts
}

/// What the model found, with the zones and lines the snapshot drew; or why the model failed.
type Analysis<'a> = Result<(&'a [Object], &'a [ZoneConfig], &'a [LineConfig]), &'a str>;

/// The report of a camera that works.
fn print_success(
    args: &ProbeArgs,
    target: &ProbeTarget,
    url: &str,
    report: &StreamReport,
    analysis: Analysis,
) -> anyhow::Result<()> {
    let objects = analysis.ok().map(|(objects, _, _)| objects);
    let snapshot = args
        .snapshot
        .as_ref()
        .filter(|_| analysis.is_ok())
        .map(|p| p.display().to_string());
    if args.format == Format::Json {
        print_json(&ProbeReport {
            camera: target.camera.as_ref().map(|c| c.as_str()),
            url: url.to_owned(),
            ok: analysis.is_ok(),
            codec: report.codec.as_deref(),
            width: Some(report.width),
            height: Some(report.height),
            fps: report.fps_shown(),
            fps_advertised: report.fps_advertised_shown(),
            first_frame_ms: Some(report.first_frame_ms()),
            frames: Some(report.frames),
            decoder: Some(&report.decoder),
            objects: objects.map(counts_by_class),
            detections: objects,
            snapshot,
            error: analysis.err().map(|message| FailureReport {
                kind: "model",
                message,
            }),
        });
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let name = match &target.camera {
        Some(name) => format!("camera {name}  {url}"),
        None => url.to_owned(),
    };
    writeln!(out, "{name}")?;
    for (label, text) in report.facts() {
        writeln!(out, "{}", fact_line(label, &text))?;
    }
    if let Ok((objects, zones, lines)) = analysis {
        let counts = counts_by_class(objects);
        let text = if counts.is_empty() {
            "none found".to_owned()
        } else {
            counts
                .iter()
                .map(|(class, n)| format!("{n} {class}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            out,
            "{}",
            fact_line("objects", &format!("{text} (last frame)"))
        )?;
        if let Some(path) = &snapshot {
            let drawn = if zones.is_empty() && lines.is_empty() {
                "boxes".to_owned()
            } else {
                format!("boxes, {}", describe_layout(zones, lines))
            };
            writeln!(
                out,
                "{}",
                fact_line("snapshot", &format!("{path} ({drawn})"))
            )?;
        }
    }
    Ok(())
}

/// `1 zone (dock), 1 line (border: arrows in, out)`.
fn describe_layout(zones: &[ZoneConfig], lines: &[LineConfig]) -> String {
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    let mut text = plural(zones.len(), "zone");
    if !zones.is_empty() {
        let names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
        text.push_str(&format!(" ({})", names.join(", ")));
    }
    text.push_str(", ");
    text.push_str(&plural(lines.len(), "line"));
    if !lines.is_empty() {
        let names: Vec<String> = lines
            .iter()
            .map(|l| {
                format!(
                    "{}: arrows {}, {}",
                    l.name, l.direction_names[0], l.direction_names[1]
                )
            })
            .collect();
        text.push_str(&format!(" ({})", names.join("; ")));
    }
    text
}
