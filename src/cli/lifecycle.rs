//! The life of `run` and `demo`: their tokio runtime, the signals that stop them, and the
//! runtime's end.

use tokio_util::sync::CancellationToken;

/// The tokio runtime of `run` and `demo`: two I/O workers are plenty (inference and video have
/// threads of their own).
pub(crate) fn io_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("watchpost-io")
        .enable_all()
        .build()
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
