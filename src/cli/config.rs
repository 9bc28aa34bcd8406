//! `watchpost config ...` (filled in by the config work).

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a configuration file and report every problem with its line.
    Validate {
        /// The configuration file.
        file: std::path::PathBuf,
    },
}

pub(crate) fn run(command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Validate { file } => {
            anyhow::bail!("config validate {}: not implemented yet", file.display())
        }
    }
}
