//! `watchpost config ...`: work with the agent's configuration file.
//!
//! `config validate FILE` prints `FILE: ok (N cameras)` on stdout and exits 0, or prints every
//! problem on stderr, one per line exactly as [`ConfigError`]'s `Display`
//! (`FILE:LINE: KEY: MESSAGE`, no `watchpost: error:` prefix, so editors and scripts can jump
//! to the line), and exits 2. A file that cannot be read is one line `FILE: cannot read: CAUSE`,
//! also exit 2.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::{self, ConfigError};

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
}

pub(crate) fn run(command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Validate { file } => Ok(validate(&file)),
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

/// Prints a configuration error on stderr (every problem on its own line as
/// `FILE:LINE: KEY: MESSAGE`; an unreadable file as `FILE: cannot read: CAUSE`) and returns
/// the exit code for a bad configuration (2). Used by `config validate` and `run`.
pub(crate) fn report_config_error(e: &ConfigError) -> ExitCode {
    match e {
        ConfigError::Invalid { .. } => eprintln!("{e}"),
        ConfigError::Read { source, .. } => {
            eprintln!("{e}: {}", super::one_line(&source.to_string()));
        }
    }
    ExitCode::from(super::EXIT_USAGE)
}
