//! `watchpost demo`: the agent on the bundled clip with an in-process RTSP server and broker.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::demo::DemoOptions;

#[derive(Debug, Args)]
#[command(
    about = "Run the agent on the bundled clip: in-process RTSP server, embedded MQTT broker, live view",
    after_help = "Example:\n  watchpost demo\n  watchpost demo --cameras 4 --detect-fps 2"
)]
pub(crate) struct DemoArgs {
    /// How many cameras play the clip at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=32))]
    cameras: u16,
    /// Frames analysed per second and camera (0 < fps <= 60).
    #[arg(long, default_value_t = 5.0, value_parser = parse_fps)]
    detect_fps: f32,
    /// Port of the embedded MQTT broker on 127.0.0.1 (another free port if it is taken).
    #[arg(long, default_value_t = 1883)]
    mqtt_port: u16,
    /// Port of the RTSP server on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8554)]
    rtsp_port: u16,
    /// Play this H.264 MP4 instead of the bundled clip.
    #[arg(long, value_name = "FILE")]
    clip: Option<PathBuf>,
    /// Stop by itself after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    seconds: Option<u64>,
}

fn parse_fps(text: &str) -> Result<f32, String> {
    let fps: f32 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    // The loader's own check of a camera's `detect_fps`, so the demo takes what a camera may.
    crate::config::check_value("cameras.detect_fps", &f64::from(fps).into())
        .map_err(|messages| messages.join("; "))?;
    Ok(fps)
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let options = DemoOptions {
        cameras: usize::from(args.cameras),
        detect_fps: args.detect_fps,
        rtsp_port: args.rtsp_port,
        mqtt_port: args.mqtt_port,
        clip: args.clip,
        inference_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let runtime = super::lifecycle::io_runtime()?;
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(super::lifecycle::stop_on_signals(shutdown.clone()));
        if let Some(seconds) = args.seconds {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
                shutdown.cancel();
            });
        }
        crate::demo::run(options, shutdown).await
    });
    super::lifecycle::shut_down_runtime(runtime);
    result?;
    Ok(ExitCode::SUCCESS)
}
