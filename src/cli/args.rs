//! Arguments several commands take, defined once.

use std::path::{Path, PathBuf};

use clap::Args;

/// The configuration file's path when the command is not given one (a literal, for `concat!`).
macro_rules! default_config {
    () => {
        "/etc/watchpost/watchpost.toml"
    };
}

/// Where the configuration file is unless the command is told otherwise.
pub(crate) const DEFAULT_CONFIG: &str = default_config!();

/// `--config FILE`, flattened into every command that reads the configuration file.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConfigFile {
    #[arg(
        long,
        short,
        value_name = "FILE",
        help = concat!("The configuration file [default: ", default_config!(), "]")
    )]
    config: Option<PathBuf>,
}

impl ConfigFile {
    /// The file given, or [`DEFAULT_CONFIG`].
    pub fn path(&self) -> &Path {
        self.config
            .as_deref()
            .unwrap_or_else(|| Path::new(DEFAULT_CONFIG))
    }

    /// Whether `--config` was given (a missing default file may be no error).
    pub fn given(&self) -> bool {
        self.config.is_some()
    }
}

/// `--model`: a bundled model's name, `auto`, or a manifest path (relative to the current
/// folder).
pub(crate) fn model_arg(value: &str) -> Result<crate::detect::ModelChoice, String> {
    crate::detect::ModelChoice::parse(value, Path::new(""))
}
