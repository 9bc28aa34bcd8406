//! The `watchpost` command line: argument parsing, logging set-up and exit codes. Thin: each
//! command calls into the library and prints.
//!
//! Exit codes: 0 success; 1 the command failed (or, for commands over several inputs, at least
//! one input failed while the others were still processed); 2 bad invocation or bad
//! configuration.

// The commands: each depends on the shared modules below, never on another command.
mod calibrate;
mod camera;
mod command;
mod completions;
mod config;
mod demo;
mod detect;
mod doctor;
mod keys;
mod run;
mod status;

// Shared by the commands.
mod args;
mod edit;
mod lifecycle;
mod logging;
mod prompt;
mod report;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Exit code for a bad invocation or configuration (also clap's).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a failed command.
pub const EXIT_FAILURE: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "watchpost",
    version,
    about = "Edge video analytics agent: person and vehicle detection on camera streams, published over MQTT.",
    after_help = "Example:\n  watchpost doctor\n  watchpost run --config /etc/watchpost/watchpost.toml\n  \
                  watchpost status",
    propagate_version = true
)]
struct Cli {
    /// Log filter for diagnostics on stderr, or the journal under systemd (tracing syntax, e.g.
    /// `info` or `watchpost=debug`).
    /// Default: `info` for `run`, `warn` for the other commands.
    #[arg(long, global = true, env = "WATCHPOST_LOG")]
    log: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(run::RunArgs),
    Demo(demo::DemoArgs),
    Detect(detect::DetectArgs),
    #[command(
        subcommand,
        about = "Work with the configuration file: validate, init, show, set",
        after_help = "Example:\n  watchpost config validate /etc/watchpost/watchpost.toml\n  \
                      watchpost config show --config /etc/watchpost/watchpost.toml"
    )]
    Config(config::ConfigCommand),
    #[command(
        subcommand,
        about = "Add, list and check cameras, their zones and their lines",
        after_help = "Example:\n  watchpost camera list\n  watchpost camera remove gate-west"
    )]
    Camera(camera::CameraCommand),
    Status(status::StatusArgs),
    Doctor(doctor::DoctorArgs),
    #[command(
        subcommand,
        about = "Make the key pair that signs remote commands",
        after_help = "Example:\n  watchpost keys generate --out ./keys --name central"
    )]
    Keys(keys::KeysCommand),
    #[command(
        subcommand,
        name = "command",
        about = "Sign remote commands for a device (publish them with mosquitto_pub)",
        after_help = "Example:\n  watchpost command sign --key keys/central.key --device north/box-1 \
                      --counter \"$(date +%s%3N)\" ping"
    )]
    Remote(command::CommandCommand),
    Completions(completions::CompletionsArgs),
    Man(completions::ManArgs),
    #[command(hide = true)]
    ModelInputs(calibrate::ModelInputsArgs),
}

/// The whole command line's definition (for completions, manual pages and tests).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // rumqttd (the demo's embedded broker) logs every client that disconnects as an error.
    let default_log = match cli.command {
        Command::Run(_) => "info",
        Command::Demo(_) => "warn,rumqttd=off",
        // Doctor reports every problem itself, one line each.
        Command::Doctor(_) => "error",
        _ => "warn",
    };
    logging::init(cli.log.as_deref().unwrap_or(default_log));
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Detect(args) => detect::run(args),
        Command::Config(command) => config::run(command),
        Command::Camera(command) => camera::run(command),
        Command::Status(args) => status::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Keys(command) => keys::run(command),
        Command::Remote(command) => command::run(command),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
        Command::ModelInputs(args) => calibrate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            print_error(&e);
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// One line on stderr: `watchpost: error: outer: cause: root cause`.
pub(crate) fn print_error(e: &anyhow::Error) {
    eprintln!("watchpost: error: {}", one_line(&format!("{e:#}")));
}

pub(crate) use crate::config::change::is_root;

/// Keeps a message on one line.
pub(crate) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
