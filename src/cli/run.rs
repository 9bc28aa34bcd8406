//! `watchpost run --config FILE`: the agent, until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
#[command(
    about = "Run the agent: cameras in, detections out over MQTT, until SIGINT/SIGTERM",
    after_help = "Example:\n  watchpost run --config /etc/watchpost/watchpost.toml\n\n\
                  The first SIGINT or SIGTERM shuts down gracefully (pipelines stopped, in-flight\n\
                  work finished, `offline` published); a second one exits at once."
)]
pub(crate) struct RunArgs {
    /// The configuration file (see `watchpost config validate`).
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = match crate::config::load(&args.config) {
        Ok(config) => config,
        Err(e) => return Ok(super::config::report_config_error(&e)),
    };
    let runtime = super::io_runtime()?;
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signals(shutdown.clone()));
        crate::agent::run(config, shutdown).await
    });
    shut_down_runtime(runtime);
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Drops the runtime without waiting for blocking work the stop abandoned (a camera or an
/// inference thread that never returned): dropping it would wait for them forever.
pub(crate) fn shut_down_runtime(runtime: tokio::runtime::Runtime) {
    runtime.shutdown_timeout(crate::agent::stop::RUNTIME_CAP);
}

/// First SIGINT/SIGTERM: cancel `shutdown`. Second: exit at once.
pub(crate) async fn stop_on_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the agent with SIGKILL");
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("signal received: shutting down (send it again to exit at once)");
    shutdown.cancel();
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("watchpost: second signal: exiting now");
    std::process::exit(130);
}
