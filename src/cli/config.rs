//! `watchpost config ...`: work with the agent's configuration file.
//!
//! `config validate FILE` prints `FILE: ok (N cameras)` on stdout and exits 0, or prints every
//! problem on stderr, one per line exactly as [`ConfigError`]'s `Display`
//! (`FILE:LINE: KEY: MESSAGE`, no `watchpost: error:` prefix, so editors and scripts can jump
//! to the line), and exits 2. A file that cannot be read is one line `FILE: cannot read: CAUSE`,
//! also exit 2.
//!
//! `config init`, `config set` and the `camera` commands change the file: each edit is made by
//! [`crate::config::edit`] on the text (comments and layout kept), checked by the real loader
//! before anything is written (a refused edit prints the loader's lines, leaves the file as it
//! was and exits 2), recorded in the audit log and written atomically
//! ([`crate::config::audit::commit`]). `config show` prints the configuration in force.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::args::{ConfigFile, DEFAULT_CONFIG};
use super::edit::{
    EditRequest, apply_edit, mode_and_owner, parse_as_staged, password_file_note, stage_password,
};
use super::prompt::Prompter;
use super::report::report_config_error;
use crate::config::audit::{self, Change, StagedFile};
use crate::config::edit::{self, NewCamera, Starter};
use crate::config::{self, Config, TopicName};

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a configuration file and report every problem with its line.
    #[command(
        after_help = "Prints `FILE: ok (N cameras)` and exits 0 when the file is valid. Otherwise \
                      prints every problem on stderr, one per line as `FILE:LINE: KEY: MESSAGE`, \
                      and exits 2. Relative paths in the file are taken from the file's folder.\n\n\
                      Example:\n  watchpost config validate /etc/watchpost/watchpost.toml"
    )]
    Validate {
        /// The configuration file (TOML).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    Init(Box<InitArgs>),
    /// Print the configuration in force: every default filled in, passwords as "***".
    #[command(
        after_help = "The output is TOML that `config validate` accepts (with the passwords put \
                      back). Settings that are not set and have no value (no user name, the \
                      bundled model, ...) are shown as comments saying what applies.\n\n\
                      Example:\n  watchpost config show --config /etc/watchpost/watchpost.toml"
    )]
    Show {
        #[command(flatten)]
        config: ConfigFile,
    },
    Set(SetArgs),
}

/// Change one setting, keeping every comment and the layout of the file.
#[derive(Debug, Args)]
#[command(
    after_help = "KEY is dotted: the table, then the key; cameras, zones and lines by \
                  name: `mqtt.url`, `device.site`, `outbox.max_size_mb`, \
                  `cameras.gate-east.detect_fps`, `cameras.gate-east.zones.road.loiter_s`. \
                  VALUE is read as TOML (5, 2.5, true, [\"a\", \"b\"], {...}) and otherwise \
                  taken as text; quote it (\"'\\\"007\\\"'\") to force text.\n\n\
                  The new file is checked first: a value the agent would refuse prints the \
                  problem as FILE:LINE: KEY: MESSAGE, changes nothing and exits 2. Passwords \
                  cannot be set this way (use a password_file, `config init` or `camera add`). \
                  Every change is recorded in {device.state_dir}/audit.log.\n\n\
                  Example:\n  watchpost config set cameras.gate-east.detect_fps 2.5\n  \
                  watchpost config set mqtt.url '[\"mqtts://broker-1:8883\", \"mqtts://broker-2:8883\"]'"
)]
pub(crate) struct SetArgs {
    /// The setting, dotted: `mqtt.url`, `cameras.gate-east.detect_fps`, ...
    #[arg(value_name = "KEY")]
    key: String,
    /// The new value (TOML, or text).
    #[arg(value_name = "VALUE", allow_hyphen_values = true)]
    value: String,
    #[command(flatten)]
    config: ConfigFile,
}

/// Write a new configuration file, asking for the essentials.
#[derive(Debug, Args)]
#[command(
    after_help = "On a terminal, asks for the site, the device id, the broker, the MQTT \
                  login and a first camera; Enter takes the value in [brackets], an answer the \
                  agent would refuse is asked again. Passwords are read without showing them \
                  and written to files beside FILE, readable only by their owner (mode 0600; \
                  0640 when root writes them beside a configuration shared with the \
                  service's group, as the package's is), which the configuration refers to: never on the command line. Without a \
                  terminal (or with --no-input) the answers come from the options; --site, --id \
                  and --broker are needed.\n\n\
                  The file is the commented example (every key explained) with the answers \
                  filled in; it is checked before it is written, recorded in \
                  {device.state_dir}/audit.log, and written atomically. An existing FILE is \
                  only replaced with --force, unless it is the example the package installs, \
                  unchanged.\n\n\
                  Example:\n  sudo watchpost config init\n  \
                  watchpost config init /etc/watchpost/watchpost.toml --no-input \\\n    \
                  --site bihac-north --id post-07 --broker mqtt://10.0.0.5:1883 \\\n    \
                  --camera-name gate-east --camera-url rtsp://10.0.0.21:554/stream1"
)]
pub(crate) struct InitArgs {
    /// The file to write.
    #[arg(value_name = "FILE", default_value = DEFAULT_CONFIG)]
    file: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
    /// Ask nothing, even on a terminal: take the answers from the options.
    #[arg(long)]
    no_input: bool,
    /// Site (border crossing) this post belongs to: a topic level.
    #[arg(long, value_name = "NAME")]
    site: Option<String>,
    /// This device, unique within the site (default on a terminal: the host name).
    #[arg(long, value_name = "NAME")]
    id: Option<String>,
    /// Broker: mqtt://HOST[:PORT] or mqtts://HOST[:PORT]; several endpoints of one clustered
    /// broker separated by commas.
    #[arg(long, value_name = "URL")]
    broker: Option<String>,
    /// MQTT user name, if the broker wants a login.
    #[arg(long, value_name = "USER")]
    mqtt_user: Option<String>,
    /// An existing file whose first line is the MQTT password.
    #[arg(long, value_name = "FILE")]
    mqtt_password_file: Option<PathBuf>,
    /// Where the agent keeps its state and the audit log (default /var/lib/watchpost).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Name of a first camera (with --camera-url).
    #[arg(long, value_name = "NAME")]
    camera_name: Option<String>,
    /// RTSP URL of the first camera. A password in it is moved to a file beside FILE.
    #[arg(long, value_name = "URL")]
    camera_url: Option<String>,
    /// Camera user name, if not in the URL.
    #[arg(long, value_name = "USER")]
    camera_user: Option<String>,
    /// An existing file whose first line is the camera's password.
    #[arg(long, value_name = "FILE")]
    camera_password_file: Option<PathBuf>,
    /// Frames analysed per second for the first camera (default 5).
    #[arg(long, value_name = "N")]
    detect_fps: Option<f64>,
}

pub(crate) fn run(command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Validate { file } => Ok(validate(&file)),
        ConfigCommand::Show { config } => Ok(show(config.path())),
        ConfigCommand::Set(args) => set(&args),
        ConfigCommand::Init(args) => init(*args),
    }
}

fn validate(file: &Path) -> ExitCode {
    match config::load(file) {
        Ok(config) => {
            let n = config.cameras.len();
            let plural = if n == 1 { "camera" } else { "cameras" };
            println!("{}: ok ({n} {plural})", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => report_config_error(&e),
    }
}

fn show(file: &Path) -> ExitCode {
    match config::load(file) {
        Ok(config) => {
            let text = format!(
                "# The configuration in force from {}: every default filled in, passwords shown \
                 as \"***\".\n\n{}",
                file.display(),
                config::render(&config)
            );
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) ends the command quietly.
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(super::EXIT_FAILURE),
            }
        }
        Err(e) => report_config_error(&e),
    }
}

fn set(args: &SetArgs) -> anyhow::Result<ExitCode> {
    let value = edit::parse_value(&args.value);
    let shown = edit::parse_value(&args.value).to_string();
    let request = EditRequest::new("config set", args.config.path(), &args.key);
    let applied = match apply_edit(request, |text| {
        edit::set(text, &args.key, value.clone()).map(|o| o.text)
    })? {
        Ok(applied) => applied,
        Err(code) => return Ok(code),
    };
    let file = applied.file.display();
    match applied.changes.iter().find(|c| c.key == args.key) {
        Some(change) if !change.old.is_null() => {
            println!(
                "{file}: {} = {} (was {})",
                args.key,
                shown.trim(),
                change.old
            );
        }
        _ if applied.changes.is_empty() => {
            println!(
                "{file}: {} = {} (the same as before)",
                args.key,
                shown.trim()
            );
        }
        _ => println!("{file}: {} = {} (was not set)", args.key, shown.trim()),
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// Checking single answers with the loader's own checks.

/// Checks `value` at `key` (`mqtt.url`, `cameras.detect_fps`) as the loader does in a file; its
/// messages, when it refuses.
fn check(key: &str, value: &toml_edit::Value) -> Result<(), String> {
    config::check_value(key, value).map_err(|messages| messages.join("; "))
}

/// A name (`device.site`, `device.id`, `cameras.name`), checked as the loader checks `key`.
fn check_name(key: &'static str) -> impl Fn(&str) -> Result<String, String> {
    move |name| check(key, &name.into()).map(|()| name.to_owned())
}

/// One or more broker URLs, separated by commas or spaces.
fn check_broker(answer: &str) -> Result<String, String> {
    let urls = broker_urls(answer);
    let value = match urls.as_slice() {
        [one] => toml_edit::Value::from(one.as_str()),
        many => toml_edit::Value::Array(many.iter().map(String::as_str).collect()),
    };
    check("mqtt.url", &value).map(|()| urls.join(", "))
}

fn broker_urls(answer: &str) -> Vec<String> {
    answer
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An RTSP URL (a password in it is checked without it: it will be moved out).
fn check_camera_url(url: &str) -> Result<String, String> {
    let (without, _, _) = edit::split_password(url);
    check("cameras.url", &without.as_str().into()).map(|()| url.to_owned())
}

fn check_fps(fps: f64) -> Result<(), String> {
    check("cameras.detect_fps", &fps.into())
}

// ---------------------------------------------------------------------------------------------
// config init

/// The answers, as gathered.
#[derive(Default)]
struct Answers {
    site: String,
    id: String,
    broker_urls: Vec<String>,
    mqtt_user: Option<String>,
    mqtt_password: Option<String>,
    mqtt_password_file: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    camera: Option<CameraAnswers>,
}

#[derive(Default)]
struct CameraAnswers {
    name: String,
    /// As given: may hold a password (moved out).
    url: String,
    user: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    detect_fps: Option<f64>,
}

fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let usage = |message: String| {
        super::print_error(&anyhow::anyhow!(message));
        Ok(ExitCode::from(super::EXIT_USAGE))
    };
    let file =
        std::path::absolute(&args.file).with_context(|| format!("{}", args.file.display()))?;
    let folder = file.parent().unwrap_or(Path::new("/")).to_owned();
    let old_text = match std::fs::read_to_string(&file) {
        // The example the package installs, untouched: `init` is how it is meant to be
        // replaced (what the README's three lines do), so it needs no --force.
        Ok(text) if text == edit::TEMPLATE => Some(text),
        Ok(_) if !args.force => {
            return usage(format!(
                "{} exists: use --force to replace it (or `watchpost config set` and `watchpost \
                 camera` to change it)",
                file.display()
            ));
        }
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return usage(format!("{}: cannot read: {e}", file.display())),
    };
    let old = old_text
        .as_deref()
        .and_then(|text| config::parse(text, &file).ok());

    let prompter = if args.no_input {
        None
    } else {
        Prompter::on_terminal()
    };
    let answers = match prompter {
        Some(mut prompter) => ask_answers(&mut prompter, &args, old.as_ref(), &file)?,
        None => match answers_from_options(&args) {
            Ok(answers) => answers,
            Err(message) => return usage(message),
        },
    };

    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create the folder {}", folder.display()))?;
    let mut secrets = Vec::new();
    let mut extra_changes = Vec::new();
    let mqtt_password_file = match (&answers.mqtt_password, &answers.mqtt_password_file) {
        (Some(password), _) => {
            let target = folder.join("mqtt-password");
            secrets.push(stage_password(&target, password, &file)?);
            extra_changes.push(password_change("mqtt.password", old.as_ref()));
            Some(target)
        }
        (None, Some(file)) => Some(std::path::absolute(file)?),
        (None, None) => None,
    };
    let camera = match &answers.camera {
        None => None,
        Some(camera) => {
            let (url, url_user, url_password) = edit::split_password(&camera.url);
            let password = url_password
                .map(|p| p.expose().to_owned())
                .or_else(|| camera.password.clone());
            let password_file = match (&password, &camera.password_file) {
                (Some(password), _) => {
                    let target = folder.join(format!("{}-password", camera.name));
                    secrets.push(stage_password(&target, password, &file)?);
                    extra_changes.push(password_change(
                        &format!("cameras.{}.password", camera.name),
                        old.as_ref(),
                    ));
                    Some(target)
                }
                (None, Some(file)) => Some(std::path::absolute(file)?),
                (None, None) => None,
            };
            Some(NewCamera {
                name: camera.name.clone(),
                url,
                username: url_user.or_else(|| camera.user.clone()),
                password_file: password_file.map(|p| p.to_string_lossy().into_owned()),
                detect_fps: camera.detect_fps,
                ..NewCamera::default()
            })
        }
    };
    let starter = Starter {
        site: answers.site.clone(),
        id: answers.id.clone(),
        broker_urls: answers.broker_urls.clone(),
        state_dir: answers
            .state_dir
            .as_ref()
            .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
            .map(|d| d.to_string_lossy().into_owned()),
        mqtt_username: answers.mqtt_user.clone(),
        mqtt_password_file: mqtt_password_file.map(|p| p.to_string_lossy().into_owned()),
        camera,
    };
    let text = edit::starter_file(&starter).context("filling in the example configuration")?;

    // Check it as it will be (password files where they are staged). Without a camera, the
    // only problem allowed is the missing camera.
    let new = match parse_as_staged(&text, &secrets, &file) {
        Ok(new) => Some(new),
        Err(e) if starter.camera.is_none() && e.problems().iter().all(|p| p.key == "cameras") => {
            None
        }
        Err(e) => {
            report_config_error(&e);
            eprintln!("watchpost: {} was not written", file.display());
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let before = match (&old, &old_text) {
        (Some(old), _) => audit::tree(old),
        (None, Some(text)) => audit::document_tree(text).unwrap_or_default(),
        (None, None) => serde_json::Value::Object(serde_json::Map::new()),
    };
    let after = match &new {
        Some(new) => audit::tree(new),
        None => audit::document_tree(&text).unwrap_or_default(),
    };
    let mut changes = audit::diff(&before, &after);
    for extra in extra_changes {
        if !changes.iter().any(|c| c.key == extra.key) {
            changes.push(extra);
        }
    }
    let state_dir = match (&new, &starter.state_dir) {
        (Some(new), _) => new.device.state_dir.clone(),
        (None, Some(dir)) => PathBuf::from(dir),
        (None, None) => PathBuf::from(config::DEFAULT_STATE_DIR),
    };
    let (mode, owner) = mode_and_owner(&file, 0o644);
    secrets.push(StagedFile::stage(&file, text.as_bytes(), mode, owner)?);
    let entry = audit::Entry::now("config init", &file, changes);
    audit::commit(&audit::log_path(&state_dir), &entry, secrets)?;

    let shown = file.display();
    match &new {
        Some(new) => {
            let n = new.cameras.len();
            println!(
                "{shown}: written and valid ({n} camera{})",
                if n == 1 { "" } else { "s" }
            );
        }
        None => println!(
            "{shown}: written; no camera yet: add one with `watchpost camera add NAME RTSP-URL \
             --config {shown}`"
        ),
    }
    if answers.mqtt_password.is_some() {
        println!(
            "MQTT password: {}",
            password_file_note(&folder.join("mqtt-password"))
        );
    }
    if let Some(camera) = &starter.camera
        && let Some(file) = &camera.password_file
        && answers
            .camera
            .as_ref()
            .and_then(|c| c.password_file.as_ref())
            .is_none()
    {
        println!("Camera password: {}", password_file_note(Path::new(file)));
    }
    println!("Next: watchpost run --config {shown}");
    Ok(ExitCode::SUCCESS)
}

/// The audit entry for a password written to a file (the differences cannot show it).
fn password_change(key: &str, old: Option<&Config>) -> Change {
    let old = old
        .map(audit::tree)
        .and_then(|tree| {
            key.split('.')
                .try_fold(&tree, |here, k| here.get(k))
                .cloned()
        })
        .unwrap_or(serde_json::Value::Null);
    Change {
        key: key.to_owned(),
        old,
        new: serde_json::Value::String("***".to_owned()),
    }
}

/// Without a terminal: the options, checked; a refusal names the option.
fn answers_from_options(args: &InitArgs) -> Result<Answers, String> {
    let missing: Vec<&str> = [
        ("--site", args.site.is_none()),
        ("--id", args.id.is_none()),
        ("--broker", args.broker.is_none()),
    ]
    .into_iter()
    .filter_map(|(flag, missing)| missing.then_some(flag))
    .collect();
    if !missing.is_empty() {
        return Err(format!(
            "config init: {} needed (no terminal to ask on, or --no-input)",
            if missing.len() == 1 {
                format!("{} is", missing[0])
            } else {
                format!("{} are", missing.join(", "))
            }
        ));
    }
    let flag = |flag: &str, checked: Result<String, String>| {
        checked.map_err(|why| format!("{flag}: {why}"))
    };
    let site = flag(
        "--site",
        check_name("device.site")(args.site.as_deref().unwrap_or_default()),
    )?;
    let id = flag(
        "--id",
        check_name("device.id")(args.id.as_deref().unwrap_or_default()),
    )?;
    let broker = flag(
        "--broker",
        check_broker(args.broker.as_deref().unwrap_or_default()),
    )?;
    let camera = match (&args.camera_name, &args.camera_url) {
        (None, None) => {
            for (given, name) in [
                (args.camera_user.is_some(), "--camera-user"),
                (
                    args.camera_password_file.is_some(),
                    "--camera-password-file",
                ),
                (args.detect_fps.is_some(), "--detect-fps"),
            ] {
                if given {
                    return Err(format!("{name} needs --camera-name and --camera-url"));
                }
            }
            None
        }
        (Some(_), None) => return Err("--camera-name needs --camera-url".to_owned()),
        (None, Some(_)) => return Err("--camera-url needs --camera-name".to_owned()),
        (Some(name), Some(url)) => {
            let name = flag("--camera-name", check_name("cameras.name")(name))?;
            let url = flag("--camera-url", check_camera_url(url))?;
            let (_, url_user, url_password) = edit::split_password(&url);
            if url_password.is_some() && args.camera_password_file.is_some() {
                return Err(
                    "--camera-url has a password in it and --camera-password-file is given: \
                     keep one"
                        .to_owned(),
                );
            }
            if url_user.is_some() && args.camera_user.is_some() {
                return Err(
                    "--camera-url has a user name in it and --camera-user is given: keep one"
                        .to_owned(),
                );
            }
            if let Some(fps) = args.detect_fps {
                check_fps(fps).map_err(|why| format!("--detect-fps: {why}"))?;
            }
            Some(CameraAnswers {
                name,
                url,
                user: args.camera_user.clone(),
                password: None,
                password_file: args.camera_password_file.clone(),
                detect_fps: args.detect_fps,
            })
        }
    };
    Ok(Answers {
        site,
        id,
        broker_urls: broker_urls(&broker),
        mqtt_user: args.mqtt_user.clone(),
        mqtt_password: None,
        mqtt_password_file: args.mqtt_password_file.clone(),
        state_dir: args.state_dir.clone(),
        camera,
    })
}

/// On a terminal: every question, with the options (else the file being replaced, else the
/// usual values) as defaults.
fn ask_answers(
    prompter: &mut Prompter,
    args: &InitArgs,
    old: Option<&Config>,
    file: &Path,
) -> anyhow::Result<Answers> {
    println!(
        "Writing {}. Enter takes the value in [brackets].",
        file.display()
    );
    let old_site = old.map(|c| c.device.site.to_string());
    let site = prompter.ask(
        "Site (border crossing this post belongs to)",
        args.site.as_deref().or(old_site.as_deref()),
        check_name("device.site"),
    )?;
    let host = audit::host_name();
    let host = host.split('.').next().unwrap_or_default();
    let default_id = args
        .id
        .clone()
        .or_else(|| old.map(|c| c.device.id.to_string()))
        .or_else(|| TopicName::parse(host).ok().map(|n| n.to_string()));
    let id = prompter.ask(
        "Device id (unique within the site)",
        default_id.as_deref(),
        check_name("device.id"),
    )?;
    let default_broker = args
        .broker
        .clone()
        .or_else(|| {
            old.map(|c| {
                c.mqtt
                    .urls
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        })
        .unwrap_or_else(|| "mqtt://127.0.0.1:1883".to_owned());
    let broker = prompter.ask(
        "Broker URL (mqtt://HOST[:PORT] or mqtts://HOST[:PORT])",
        Some(&default_broker),
        check_broker,
    )?;
    let default_user = args
        .mqtt_user
        .clone()
        .or_else(|| old.and_then(|c| c.mqtt.username.clone()));
    let mqtt_user = prompter.ask_optional(
        "MQTT user name (- for none)",
        default_user.as_deref(),
        |user| Ok(user.to_owned()),
    )?;
    let mqtt_password = match &mqtt_user {
        Some(_) if args.mqtt_password_file.is_none() => prompter.password("MQTT password")?,
        _ => None,
    };

    let camera = if prompter.confirm("Add a first camera now?", true)? {
        let default_name = args
            .camera_name
            .clone()
            .or_else(|| {
                old.and_then(|c| c.cameras.first())
                    .map(|c| c.name.to_string())
            })
            .unwrap_or_else(|| "camera-1".to_owned());
        let name = prompter.ask(
            "Camera name",
            Some(&default_name),
            check_name("cameras.name"),
        )?;
        let url = prompter.ask(
            "Camera RTSP URL (rtsp://HOST[:PORT]/PATH; the password is asked next)",
            args.camera_url.as_deref(),
            check_camera_url,
        )?;
        let (_, url_user, url_password) = edit::split_password(&url);
        let (user, password) = if url_password.is_some() {
            println!("  The password in the URL will be kept in a file of its own.");
            (None, None)
        } else {
            let user = match url_user {
                Some(_) => None,
                None => prompter.ask_optional(
                    "Camera user name (- for none)",
                    args.camera_user.as_deref(),
                    |user| Ok(user.to_owned()),
                )?,
            };
            let password = if user.is_some() || url_user.is_some() {
                prompter.password("Camera password")?
            } else {
                None
            };
            (user, password)
        };
        Some(CameraAnswers {
            name,
            url,
            user,
            password,
            password_file: None,
            detect_fps: args.detect_fps,
        })
    } else {
        None
    };
    Ok(Answers {
        site,
        id,
        broker_urls: broker_urls(&broker),
        mqtt_user,
        mqtt_password,
        mqtt_password_file: args.mqtt_password_file.clone(),
        state_dir: args.state_dir.clone(),
        camera,
    })
}
