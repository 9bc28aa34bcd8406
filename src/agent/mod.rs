//! The supervisor: wires a validated [`Config`] into cameras → frame path → publisher, and shuts
//! them down in order.
//!
//! Start order: model and ONNX Runtime (fail before anything else runs), GStreamer, the
//! publisher's TLS files (a file that cannot be used stops the start here), the outbox (it
//! reads what an earlier run left), the publisher (so `status` goes online and the last will is
//! registered), the local endpoint ([`crate::local`]), the inference threads, then the cameras.
//!
//! The local endpoint is a diagnostic aid: when its port cannot be had (taken by another
//! program) the agent logs a warning and runs without it, because a border post that stops
//! detecting for want of a status page is worse than one that cannot show its status.
//!
//! Shutdown order, on the first signal: cameras stop (pipelines set to NULL, threads joined);
//! the frame board is closed and the inference threads finish the frame they hold; the outbox
//! writes every event still in its inbox, saves its position and stops; the results channel
//! closes, the publisher publishes what it still has, then `offline`, then disconnects. Events
//! not yet acknowledged by the broker stay in the outbox for the next run. The local endpoint
//! stops last, so `watchpost status` shows the shutdown as it happens.
//! A second signal exits at once (handled by the command line).
//!
//! Under systemd (`Type=notify`, [`systemd`]): `READY=1` once the cameras are started,
//! `WATCHDOG=1` from this supervisor every third of `WatchdogSec` only while no inference
//! thread is stuck on one frame (so a wedged thread gets the service restarted), `STOPPING=1`
//! when shutdown begins.

pub mod systemd;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::detect::{
    ClassFilter, CpuFeatures, Detector, DetectorOptions, ModelSpec, Runtime, choose_model,
};
use crate::events::CameraEvents;
use crate::framepath::{self, AnalysedFrame, FrameBoard, Lane, Pacing};
use crate::health::{CameraState, CameraStats};
use crate::ingest;
use crate::local::{AgentFacts, LocalServer, ModelReport, Sources};
use crate::outbox::{Outbox, OutboxOptions};
use crate::publish;

/// Results waiting for the publisher, per camera. Small on purpose: a result older than a few
/// frames is not worth publishing late; when full, results are dropped and counted.
const RESULTS_PER_CAMERA: usize = 8;

/// How long shutdown waits for each stage before giving up on it.
const STAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Loads the model once and makes one detector per inference thread; also says which model
/// and why.
fn load_detectors(config: &Config) -> anyhow::Result<(Vec<Detector>, ModelReport)> {
    let runtime = Runtime::load(config.detection.ort_lib.as_deref())?;
    let chosen = choose_model(&config.detection.model, &CpuFeatures::detect())?;
    let spec = ModelSpec::load(&chosen.manifest)?;
    tracing::info!(
        model = %spec.name,
        manifest = %chosen.manifest.display(),
        "model {} ({})",
        spec.name,
        chosen.reason
    );
    let options = DetectorOptions {
        intra_threads: 1,
        class_filter: ClassFilter::CoarseClassesOnly,
    };
    let started = std::time::Instant::now();
    let detectors = (0..config.detection.inference_threads.max(1))
        .map(|_| Detector::from_spec(&runtime, spec.clone(), &options).map_err(anyhow::Error::from))
        .collect::<anyhow::Result<Vec<_>>>()?;
    tracing::debug!(
        sessions = detectors.len(),
        "model sessions created in {} ms",
        started.elapsed().as_millis()
    );
    let report = ModelReport {
        name: spec.name.clone(),
        reason: chosen.reason,
    };
    Ok((detectors, report))
}

/// Runs the agent until `shutdown` is cancelled, then shuts down gracefully.
///
/// # Errors
/// The model, the ONNX Runtime library or GStreamer cannot be loaded, a thread cannot be
/// started, or the publisher fails in a way retrying cannot fix (bad TLS files).
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (detectors, model) = tokio::task::block_in_place(|| load_detectors(&config))?;
    let model_name = model.name.clone();
    ingest::init_gstreamer()?;
    // A decoder template that does not exist or cannot work here is a configuration error:
    // refuse to start rather than run with a camera that will never stream.
    for camera in &config.cameras {
        ingest::choose_decoder(camera)?;
    }

    let stats: Vec<Arc<CameraStats>> = config
        .cameras
        .iter()
        .map(|c| Arc::new(CameraStats::new(c.name.clone())))
        .collect();
    // Up to one frame of a camera per inference thread at once: a lone camera uses every
    // thread, and its lane puts the results back in order.
    let board = Arc::new(FrameBoard::new(
        config.cameras.iter().map(Pacing::of).collect(),
        stats.clone(),
        config.detection.max_frame_age,
        detectors.len(),
    ));
    let lanes: Vec<Mutex<Lane>> = config
        .cameras
        .iter()
        .map(|camera| {
            Mutex::new(Lane::new(CameraEvents::new(
                camera,
                &config.tracking,
                &config.events,
            )))
        })
        .collect();
    let publisher_config = publish::PublisherConfig::from_config(&config, &model_name);
    let topics = publisher_config.topics();
    let (started_at, started) = (publisher_config.started_at, publisher_config.started);
    let publisher =
        publish::Publisher::new(publisher_config, stats.clone()).context("MQTT publisher")?;
    let broker_state = publisher.broker_state();
    let (outbox, event_sink, delivery) = Outbox::start(
        OutboxOptions::from_config(&config.outbox),
        config
            .cameras
            .iter()
            .map(|c| c.name.as_str().to_owned())
            .collect(),
        publish::outbox_stamp(topics),
    )
    .context("starting the outbox thread")?;
    let (results_tx, results_rx) =
        mpsc::channel::<AnalysedFrame>(RESULTS_PER_CAMERA * config.cameras.len().max(1));

    // The publisher has its own token: it stops last, after the frame path has drained.
    let publisher_shutdown = CancellationToken::new();
    let publisher =
        tokio::spawn(publisher.run(results_rx, Some(delivery), publisher_shutdown.clone()));

    let local = match config.local.listen {
        None => None,
        Some(listen) => {
            let sources = Sources {
                cameras: stats.clone(),
                broker: broker_state,
                outbox: outbox.stats(),
                facts: AgentFacts {
                    site: config.device.site.to_string(),
                    device: config.device.id.to_string(),
                    started_at,
                    model: model.clone(),
                },
                started,
            };
            match LocalServer::start(listen, sources).await {
                Ok(server) => {
                    tracing::info!(
                        "local endpoint on http://{}: GET /status, GET /metrics",
                        server.local_addr()
                    );
                    Some(server)
                }
                Err(e) => {
                    tracing::warn!(
                        "{e}; running without it (`watchpost status` and /metrics will not \
                         answer): free the port, or set [local] listen to another port, or to \
                         \"\" to turn the endpoint off"
                    );
                    None
                }
            }
        }
    };

    let n_threads = detectors.len();
    let workers = framepath::spawn_workers(
        detectors,
        Arc::clone(&board),
        stats.clone(),
        Arc::new(lanes),
        event_sink,
        results_tx,
    )
    .context("starting inference threads")?;

    let cameras_shutdown = shutdown.child_token();
    let mut cameras = Vec::new();
    for (index, camera) in config.cameras.iter().enumerate() {
        let sink: Arc<dyn ingest::FrameSink> = Arc::clone(&board) as Arc<dyn ingest::FrameSink>;
        let handle = ingest::spawn_camera(
            index,
            camera.clone(),
            sink,
            Arc::clone(&stats[index]),
            cameras_shutdown.clone(),
        )
        .with_context(|| format!("starting camera {}", camera.name))?;
        cameras.push(handle);
    }
    tracing::info!(
        cameras = config.cameras.len(),
        inference_threads = n_threads,
        model = %model_name,
        "agent running"
    );

    let notifier = systemd::Notifier::from_env();
    notifier.ready();

    // Run until asked to stop, or until the publisher gives up; meanwhile, ping systemd's
    // watchdog while the frame path is alive.
    let mut publisher = publisher;
    let mut watchdog = tokio::time::interval(
        notifier
            .ping_interval()
            .unwrap_or(Duration::from_secs(3600))
            .max(Duration::from_millis(100)),
    );
    let mut wedged_logged = false;
    let publisher_result = loop {
        tokio::select! {
            () = shutdown.cancelled() => break None,
            result = &mut publisher => break Some(result),
            _ = watchdog.tick() => {
                let busy = workers.longest_busy();
                if notifier.watchdog(busy) {
                    wedged_logged = false;
                } else if !wedged_logged {
                    wedged_logged = true;
                    tracing::error!(
                        busy_s = busy.as_secs(),
                        "an inference thread has been stuck on one frame for {} s: no longer telling systemd's watchdog that the agent is alive",
                        busy.as_secs()
                    );
                }
            }
        }
    };
    notifier.stopping();
    if publisher_result.is_some() {
        tracing::error!("the publisher stopped; shutting down");
    }
    tracing::info!("shutting down: stopping cameras");
    cameras_shutdown.cancel();
    let joined = tokio::time::timeout(
        STAGE_TIMEOUT,
        tokio::task::spawn_blocking(move || {
            for handle in cameras {
                let _ = handle.join();
            }
        }),
    )
    .await;
    if joined.is_err() {
        tracing::warn!("cameras did not stop within {STAGE_TIMEOUT:?}");
    }
    for s in &stats {
        s.set_state(CameraState::Stopped);
    }

    tracing::info!("shutting down: finishing in-flight inference");
    board.close();
    let joined = tokio::time::timeout(
        STAGE_TIMEOUT,
        tokio::task::spawn_blocking(move || workers.join()),
    )
    .await;
    if joined.is_err() {
        tracing::warn!("inference threads did not finish within {STAGE_TIMEOUT:?}");
    }

    tracing::info!("shutting down: writing the last events");
    let stopped = tokio::time::timeout(
        STAGE_TIMEOUT,
        tokio::task::spawn_blocking(move || outbox.shutdown()),
    )
    .await;
    if stopped.is_err() {
        tracing::warn!("the outbox did not stop within {STAGE_TIMEOUT:?}");
    }

    tracing::info!("shutting down: publishing offline");
    publisher_shutdown.cancel();
    let result = match publisher_result {
        Some(result) => result,
        None => match tokio::time::timeout(STAGE_TIMEOUT, publisher).await {
            Ok(result) => result,
            Err(_) => anyhow::bail!("the publisher did not stop within {STAGE_TIMEOUT:?}"),
        },
    };
    if let Some(local) = local {
        local.stop().await;
    }
    match result {
        Ok(Ok(_report)) => Ok(()),
        Ok(Err(e)) => Err(anyhow::Error::from(e).context("MQTT publisher")),
        Err(join_error) => Err(anyhow::anyhow!("the publisher task failed: {join_error}")),
    }
}
