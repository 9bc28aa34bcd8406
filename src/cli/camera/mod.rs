//! `watchpost camera ...`: add, remove and list cameras, their zones and their lines, without
//! editing the configuration file by hand.
//!
//! Every change goes the way of `config set` (see [`super::edit::apply_edit`]): made on the
//! text by [`crate::config::edit`] (comments kept), checked by the real loader (a refused change
//! prints the loader's `FILE:LINE: KEY: MESSAGE` lines, changes nothing and exits 2), recorded
//! in `{device.state_dir}/audit.log`, written atomically.
//!
//! A camera URL with a password in it (`rtsp://admin:secret@cam/stream`, as copied from the
//! camera's label or a VLC bookmark) is accepted, and the password is moved out of it into a
//! file beside the configuration (`NAME-password`, mode 0600) that the camera's
//! `password_file` names: the technician gets a working camera without writing a file by hand,
//! and the configuration (shown by `config show`, copied around for support) never holds the
//! password. `--ask-password` reads it without echo instead, which also keeps it out of the
//! shell history.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

mod probe;

use super::args::ConfigFile;
use super::edit::{EditRequest, apply_edit, password_file_note, stage_camera_password};
use super::prompt::Prompter;
use super::report::report_config_error;
use crate::config::edit::{self, EditError, NewCamera, NewLine, NewZone, Shape};
use crate::config::{self, CameraConfig};

/// Where the configuration file is unless `--config` says otherwise.

#[derive(Debug, Subcommand)]
pub(crate) enum CameraCommand {
    Add(AddArgs),
    Remove(RemoveArgs),
    List(ListArgs),
    /// Add or remove a camera's zones (areas: enter, exit, loitering).
    #[command(
        subcommand,
        after_help = "Example:\n  watchpost camera zone add gate-east road --points \"0.1,0.4 0.9,0.4 \
                      0.9,0.95 0.1,0.95\" \\\n    --classes person,vehicle"
    )]
    Zone(ZoneCommand),
    /// Add or remove a camera's lines (crossings, with a direction).
    #[command(
        subcommand,
        after_help = "Example:\n  watchpost camera line add gate-east border --points \"0.5,0.2 \
                      0.5,0.95\" --directions in,out"
    )]
    Line(LineCommand),
    Probe(probe::ProbeArgs),
    Draw(probe::DrawArgs),
}

/// Add a camera to the configuration.
#[derive(Debug, Args)]
#[command(
    after_help = "A password in URL is moved into a file of its own beside the \
                  configuration (NAME-password, mode 0600, or 0640 like a configuration shared \
                  with the service's group) that the camera's `password_file` \
                  names; the configuration keeps the URL without it. A URL typed on the \
                  command line stays in the shell history: prefer --ask-password (asked \
                  without echo) or --password-file.\n\n\
                  Example:\n  watchpost camera add gate-west rtsp://10.0.0.22:554/stream1 \\\n    \
                  --username viewer --ask-password --detect-fps 2.5"
)]
pub(crate) struct AddArgs {
    /// The camera's name, unique on this device: a topic level (letters, digits, `-`, `_`).
    #[arg(value_name = "NAME")]
    name: String,
    /// rtsp://HOST[:PORT]/PATH or rtsps://...
    #[arg(value_name = "URL")]
    url: String,
    /// Frames analysed per second at most, more than 0 and at most 60 (default 5).
    #[arg(long, value_name = "N")]
    detect_fps: Option<f64>,
    /// The camera's user name, if not in the URL.
    #[arg(long, value_name = "USER")]
    username: Option<String>,
    /// An existing file whose first line is the camera's password.
    #[arg(long, value_name = "FILE", conflicts_with = "ask_password")]
    password_file: Option<PathBuf>,
    /// Ask for the password (not shown) and keep it in NAME-password beside the configuration.
    #[arg(long)]
    ask_password: bool,
    /// RTSP transport (default tcp).
    #[arg(long, value_enum)]
    transport: Option<Transport>,
    /// Decoder: `auto` or a template name such as `software`, `v4l2`, `nvv4l2` (default auto).
    #[arg(long, value_name = "NAME")]
    decoder: Option<String>,
    #[command(flatten)]
    config: ConfigFile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    Tcp,
    Udp,
}

/// Remove a camera, with its zones and lines.
#[derive(Debug, Args)]
#[command(after_help = "A password file of the camera is left where it is.\n\n\
                  Example:\n  watchpost camera remove gate-west")]
pub(crate) struct RemoveArgs {
    #[arg(value_name = "NAME")]
    name: String,
    #[command(flatten)]
    config: ConfigFile,
}

/// List the cameras: name, URL (password hidden), analysed frame rate, zones and lines.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  watchpost camera list\n  \
                  watchpost camera list --format json --config /etc/watchpost/watchpost.toml")]
pub(crate) struct ListArgs {
    /// `text`: a table for people; `json`: one JSON array of objects.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    config: ConfigFile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ZoneCommand {
    Add(ZoneAddArgs),
    Remove(ShapeRemoveArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum LineCommand {
    Add(LineAddArgs),
    Remove(ShapeRemoveArgs),
}

/// Add a zone (a polygon) to a camera.
#[derive(Debug, Args)]
#[command(
    after_help = "Points are fractions of the picture: x from 0 (left) to 1 (right), y \
                  from 0 (top) to 1 (bottom), at least 3, in order around the zone, edges not \
                  crossing. An object's position is the bottom centre of its box.\n\n\
                  Example:\n  watchpost camera zone add gate-east road --points \"0.1,0.4 0.9,0.4 \
                  0.9,0.95 0.1,0.95\" \\\n    --classes person,vehicle --loiter 60"
)]
pub(crate) struct ZoneAddArgs {
    /// The camera's name.
    #[arg(value_name = "CAMERA")]
    camera: String,
    /// The zone's name, unique among the camera's zones and lines: a topic level.
    #[arg(value_name = "NAME")]
    name: String,
    /// The corners: "x,y x,y x,y ...".
    #[arg(long, value_name = "POINTS", required = true)]
    points: String,
    /// Which objects the zone reacts to: person, vehicle or both (default both).
    #[arg(long, value_name = "CLASSES", value_delimiter = ',')]
    classes: Vec<String>,
    /// Seconds inside after which `loitering` is sent (default: never).
    #[arg(long, value_name = "SECONDS")]
    loiter: Option<f64>,
    /// Consecutive analysed frames before an enter/exit counts (default: [tracking] inertia).
    #[arg(long, value_name = "N")]
    inertia: Option<i64>,
    #[command(flatten)]
    config: ConfigFile,
}

/// Add a line (a segment or bent line) to a camera.
#[derive(Debug, Args)]
#[command(
    after_help = "Points as for zones, at least 2. Directions: the first name is for \
                  crossing from the left side to the right side, looking from the first point \
                  towards the last; the second for the other way. Walking from 0.5,0.2 down to \
                  0.5,0.95 the picture's right half is on your LEFT, so `--directions in,out` \
                  makes right-to-left `in`.\n\n\
                  Example:\n  watchpost camera line add gate-east border --points \"0.5,0.2 \
                  0.5,0.95\" --directions in,out \\\n    --classes person"
)]
pub(crate) struct LineAddArgs {
    /// The camera's name.
    #[arg(value_name = "CAMERA")]
    camera: String,
    /// The line's name, unique among the camera's zones and lines: a topic level.
    #[arg(value_name = "NAME")]
    name: String,
    /// The points: "x,y x,y ...".
    #[arg(long, value_name = "POINTS", required = true)]
    points: String,
    /// The two direction names: FIRST,SECOND (see below).
    #[arg(long, value_name = "FIRST,SECOND", required = true)]
    directions: String,
    /// Which objects the line counts: person, vehicle or both (default both).
    #[arg(long, value_name = "CLASSES", value_delimiter = ',')]
    classes: Vec<String>,
    /// Consecutive analysed frames before a crossing counts (default: [tracking] inertia).
    #[arg(long, value_name = "N")]
    inertia: Option<i64>,
    #[command(flatten)]
    config: ConfigFile,
}

/// Remove a zone or a line from a camera.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  watchpost camera zone remove gate-east road\n  \
                  watchpost camera line remove gate-east border"
)]
pub(crate) struct ShapeRemoveArgs {
    /// The camera's name.
    #[arg(value_name = "CAMERA")]
    camera: String,
    /// The zone's or line's name.
    #[arg(value_name = "NAME")]
    name: String,
    #[command(flatten)]
    config: ConfigFile,
}

pub(crate) fn run(command: CameraCommand) -> anyhow::Result<ExitCode> {
    match command {
        CameraCommand::Add(args) => add(args),
        CameraCommand::Remove(args) => remove(&args),
        CameraCommand::List(args) => Ok(list(&args)),
        CameraCommand::Zone(ZoneCommand::Add(args)) => zone_add(args),
        CameraCommand::Zone(ZoneCommand::Remove(args)) => shape_remove(&args, Shape::Zone),
        CameraCommand::Line(LineCommand::Add(args)) => line_add(args),
        CameraCommand::Line(LineCommand::Remove(args)) => shape_remove(&args, Shape::Line),
        CameraCommand::Probe(args) => probe::run_probe(args),
        CameraCommand::Draw(args) => probe::run_draw(args),
    }
}

fn usage(message: String) -> anyhow::Result<ExitCode> {
    super::print_error(&anyhow::anyhow!(message));
    Ok(ExitCode::from(super::EXIT_USAGE))
}

fn add(args: AddArgs) -> anyhow::Result<ExitCode> {
    let (url, url_user, url_password) = edit::split_password(&args.url);
    if url_password.is_some() && (args.password_file.is_some() || args.ask_password) {
        return usage(format!(
            "camera add: the URL has a password in it and {} is given too: keep one",
            if args.ask_password {
                "--ask-password"
            } else {
                "--password-file"
            }
        ));
    }
    if url_user.is_some() && args.username.is_some() {
        return usage(
            "camera add: the URL has a user name in it and --username is given too: keep one"
                .to_owned(),
        );
    }
    // Say a missing file before asking for anything or writing a password file beside it.
    if let Err(source) = std::fs::metadata(args.config.path()) {
        return Ok(report_config_error(&config::ConfigError::Read {
            path: args.config.path().to_owned(),
            source,
        }));
    }
    let password = match url_password {
        Some(password) => Some(password),
        None if args.ask_password => {
            let Some(mut prompter) = Prompter::on_terminal() else {
                return usage("camera add: --ask-password needs a terminal".to_owned());
            };
            match prompter.password(&format!("Password of camera {}", args.name))? {
                Some(password) => Some(config::Secret::new(password)),
                None => return usage("camera add: no password given".to_owned()),
            }
        }
        None => None,
    };
    let mut request = EditRequest::new(
        "camera add",
        args.config.path(),
        &format!("cameras.{}", args.name),
    );
    let mut camera = NewCamera {
        name: args.name.clone(),
        url,
        username: url_user.or(args.username.clone()),
        password_file: match &args.password_file {
            Some(file) => Some(std::path::absolute(file)?.to_string_lossy().into_owned()),
            None => None,
        },
        detect_fps: args.detect_fps,
        transport: args.transport.map(|t| {
            match t {
                Transport::Tcp => "tcp",
                Transport::Udp => "udp",
            }
            .to_owned()
        }),
        decoder: args.decoder.clone(),
    };
    let moved = match &password {
        Some(password) => stage_camera_password(&mut request, &mut camera, password)?,
        None => None,
    };
    let applied = match apply_edit(request, |text| edit::add_camera(text, &camera))? {
        Ok(applied) => applied,
        Err(code) => return Ok(code),
    };
    let n = applied.config.cameras.len();
    println!(
        "{}: added camera {} ({}); {n} camera{}",
        applied.file.display(),
        args.name,
        camera.url,
        if n == 1 { "" } else { "s" }
    );
    if let Some(file) = &moved {
        println!("Its password is in {}.", password_file_note(file));
    }
    Ok(ExitCode::SUCCESS)
}

fn remove(args: &RemoveArgs) -> anyhow::Result<ExitCode> {
    let request = EditRequest::new(
        "camera remove",
        args.config.path(),
        &format!("cameras.{}", args.name),
    );
    let applied = match apply_edit(request, |text| edit::remove_camera(text, &args.name))? {
        Ok(applied) => applied,
        Err(code) => return Ok(code),
    };
    let n = applied.config.cameras.len();
    println!(
        "{}: removed camera {}; {n} camera{} left",
        applied.file.display(),
        args.name,
        if n == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

/// One camera in `camera list --format json`.
#[derive(serde::Serialize)]
struct Listed<'a> {
    name: &'a str,
    /// With the password as `***`.
    url: String,
    detect_fps: f32,
    zones: Vec<&'a str>,
    lines: Vec<&'a str>,
}

fn list(args: &ListArgs) -> ExitCode {
    let config = match config::load(args.config.path()) {
        Ok(config) => config,
        Err(e) => return report_config_error(&e),
    };
    let listed: Vec<Listed<'_>> = config
        .cameras
        .iter()
        .map(|camera| Listed {
            name: camera.name.as_str(),
            url: shown_url(camera),
            detect_fps: camera.detect_fps,
            zones: camera.zones.iter().map(|z| z.name.as_str()).collect(),
            lines: camera.lines.iter().map(|l| l.name.as_str()).collect(),
        })
        .collect();
    let text = match args.format {
        Format::Json => match serde_json::to_string(&listed) {
            Ok(json) => json + "\n",
            Err(e) => {
                super::print_error(&e.into());
                return ExitCode::from(super::EXIT_FAILURE);
            }
        },
        Format::Text => table(&listed),
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) ends the command quietly.
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(super::EXIT_FAILURE),
    }
}

/// The camera's URL as a person would write it, the password as `***`:
/// `rtsp://viewer:***@10.0.0.21:554/stream1`.
fn shown_url(camera: &CameraConfig) -> String {
    let userinfo = match (&camera.username, &camera.password) {
        (Some(user), Some(_)) => format!("{user}:***@"),
        (Some(user), None) => format!("{user}@"),
        (None, Some(_)) => ":***@".to_owned(),
        (None, None) => return camera.url.clone(),
    };
    match camera.url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{userinfo}{rest}"),
        None => camera.url.clone(),
    }
}

fn table(cameras: &[Listed<'_>]) -> String {
    let join = |names: &[&str]| {
        if names.is_empty() {
            "-".to_owned()
        } else {
            names.join(",")
        }
    };
    let mut rows = vec![[
        "NAME".to_owned(),
        "URL".to_owned(),
        "DETECT_FPS".to_owned(),
        "ZONES".to_owned(),
        "LINES".to_owned(),
    ]];
    for camera in cameras {
        rows.push([
            camera.name.to_owned(),
            camera.url.clone(),
            camera.detect_fps.to_string(),
            join(&camera.zones),
            join(&camera.lines),
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn zone_add(args: ZoneAddArgs) -> anyhow::Result<ExitCode> {
    let points = match edit::parse_points(&args.points) {
        Ok(points) => points,
        Err(why) => return usage(format!("--points: {why}")),
    };
    let zone = NewZone {
        name: args.name.clone(),
        points,
        classes: args.classes.clone(),
        loiter_s: args.loiter,
        inertia: args.inertia,
    };
    edit_shape(
        "camera zone add",
        &args.config,
        &shape_key(&args.camera, Shape::Zone, &args.name),
        &format!("added zone {} to camera {}", args.name, args.camera),
        |text| edit::add_zone(text, &args.camera, &zone),
    )
}

fn line_add(args: LineAddArgs) -> anyhow::Result<ExitCode> {
    let points = match edit::parse_points(&args.points) {
        Ok(points) => points,
        Err(why) => return usage(format!("--points: {why}")),
    };
    let directions: Vec<&str> = args.directions.split(',').map(str::trim).collect();
    let [first, second] = directions[..] else {
        return usage(format!(
            "--directions: give two names separated by a comma (FIRST,SECOND), got `{}`",
            args.directions
        ));
    };
    let line = NewLine {
        name: args.name.clone(),
        points,
        direction_names: [first.to_owned(), second.to_owned()],
        classes: args.classes.clone(),
        inertia: args.inertia,
    };
    edit_shape(
        "camera line add",
        &args.config,
        &shape_key(&args.camera, Shape::Line, &args.name),
        &format!(
            "added line {} to camera {} (directions: {first}, {second})",
            args.name, args.camera
        ),
        |text| edit::add_line(text, &args.camera, &line),
    )
}

fn shape_remove(args: &ShapeRemoveArgs, shape: Shape) -> anyhow::Result<ExitCode> {
    let command = match shape {
        Shape::Zone => "camera zone remove",
        Shape::Line => "camera line remove",
    };
    edit_shape(
        command,
        &args.config,
        &shape_key(&args.camera, shape, &args.name),
        &format!(
            "removed {} {} from camera {}",
            shape.what(),
            args.name,
            args.camera
        ),
        |text| edit::remove_shape(text, &args.camera, shape, &args.name),
    )
}

/// The key of a camera's zone or line: `cameras.gate-east.zones.road`.
fn shape_key(camera: &str, shape: Shape, name: &str) -> String {
    format!("cameras.{camera}.{}.{name}", shape.field())
}

/// Makes the change `edit` to the zone or line at `touched` through [`apply_edit`] (recorded
/// as `command`) and prints `FILE: {done}`.
fn edit_shape(
    command: &'static str,
    config: &ConfigFile,
    touched: &str,
    done: &str,
    edit: impl FnOnce(&str) -> Result<String, EditError>,
) -> anyhow::Result<ExitCode> {
    let request = EditRequest::new(command, config.path(), touched);
    let applied = match apply_edit(request, edit)? {
        Ok(applied) => applied,
        Err(code) => return Ok(code),
    };
    println!("{}: {done}", applied.file.display());
    Ok(ExitCode::SUCCESS)
}
