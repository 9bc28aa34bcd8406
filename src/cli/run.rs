//! `watchpost run --config FILE`: the agent, until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::args::ConfigFile;
use super::lifecycle::{io_runtime, shut_down_runtime, stop_on_signals};
use super::report::report_config_error;

#[derive(Debug, Args)]
#[command(
    about = "Run the agent: cameras in, detections out over MQTT, until SIGINT/SIGTERM",
    after_help = "Example:\n  watchpost run --config /etc/watchpost/watchpost.toml\n\n\
                  The first SIGINT or SIGTERM shuts down gracefully (pipelines stopped, in-flight\n\
                  work finished, `offline` published); a second one exits at once. SIGHUP\n\
                  re-reads the configuration file and applies it without a restart."
)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    config: ConfigFile,
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = match crate::config::load(args.config.path()) {
        Ok(config) => config,
        Err(e) => return Ok(report_config_error(&e)),
    };
    let runtime = io_runtime()?;
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signals(shutdown.clone()));
        crate::agent::run(config, Some(args.config.path().to_owned()), shutdown).await
    });
    shut_down_runtime(runtime);
    result?;
    Ok(ExitCode::SUCCESS)
}
