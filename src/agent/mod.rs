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
//! Live configuration ([`Control`], `control.rs`; issue 15): SIGHUP (`systemctl reload`) and
//! the local endpoint's `POST /reload` re-read the file with `config::load`;
//! [`Control::apply`] sends a configuration over a bounded channel
//! ([`REQUESTS_CAPACITY`], full: [`ApplyError::Busy`] at once) to this supervisor, which
//! applies one at a time between its other duties: [`plan::plan`] compares the running
//! configuration with the new one, and the camera set (`cameras.rs`: per camera its slot id on
//! the board, lanes and counters, its thread, a child cancellation token of its own) removes,
//! restarts, re-paces, re-lanes or adds cameras; a camera whose settings did not change is not
//! touched. Stopping a camera is bounded ([`cameras::RELOAD_STOP_CAP`]) and runs off the async
//! workers. The other sections are reported `applied at next restart` and stay pending (in
//! [`Control::at_restart`] and `/status`) until the process restarts. An invalid file, or a
//! decoder this box does not have, changes nothing. [`cameras_to_run`] is the one place that
//! says which cameras of a configuration run.
//!
//! Shutdown order, on the first signal: cameras stop (pipelines set to NULL, threads joined);
//! the frame board is closed and the inference threads finish the frame they hold; the outbox
//! writes every event still in its inbox, saves its position and stops; the results channel
//! closes, the publisher publishes what it still has, then `offline`, then disconnects. Events
//! not yet acknowledged by the broker stay in the outbox for the next run. The local endpoint
//! stops last, so `watchpost status` shows the shutdown as it happens.
//! The whole stop has one budget ([`stop::STOP_BUDGET`], 20 s, inside the unit's 30 s); each
//! stage's deadline is cut from it, and a stage that hangs (a camera server frozen
//! mid-stream, an inference that never returns) is abandoned, logged, and the next stage
//! runs; the runtime then shuts down without waiting for abandoned threads. An error once the
//! publisher has started (a thread that cannot be started) goes through the same stop.
//! A second signal exits at once (handled by the command line).
//!
//! Under systemd (`Type=notify`, [`systemd`]): `READY=1` once the cameras are started,
//! `WATCHDOG=1` from this supervisor every third of `WatchdogSec` only while no inference
//! thread is stuck on one frame (so a wedged thread gets the service restarted), `STOPPING=1`
//! when shutdown begins.

pub mod cameras;
mod commands;
mod control;
mod faults;
pub mod plan;
pub mod stop;
pub mod systemd;

pub use control::{Applied, ApplyError, Control, REQUESTS_CAPACITY, log_outcome as log_reload};
pub use plan::cameras_to_run;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::detect::{ClassFilter, CpuFeatures, Detector, DetectorOptions, LoadedModel};
use crate::framepath::{self, AnalysedFrame, FrameBoard, Lanes, WorkerPool};
use crate::health::{CameraState, Cameras};
use crate::ingest;
use crate::local::{AccessSettings, AgentFacts, LocalServer, ModelReport, Sources};
use crate::outbox::{Outbox, OutboxOptions};
use crate::publish;
use cameras::CameraSet;
use control::Request;
use faults::Faults;
use stop::{
    CAMERAS_CAP, INFERENCE_CAP, OUTBOX_CAP, PUBLISHER_RESERVE, RUNTIME_CAP, STOP_BUDGET, StopBudget,
};

/// Publications the command task may have waiting for the publisher (a result, an audit
/// record, `config/state`); when full, the task waits (it handles one command at a time).
const COMMAND_OUTPUT: usize = 8;

/// Results waiting for the publisher, per camera. Small on purpose: a result older than a few
/// frames is not worth publishing late; when full, results are dropped and counted.
const RESULTS_PER_CAMERA: usize = 8;

/// Loads the model once and makes one detector per inference thread; also says which model
/// and why.
fn load_detectors(config: &Config) -> anyhow::Result<(Vec<Detector>, ModelReport)> {
    let model = LoadedModel::load(
        config.detection.ort_lib.as_deref(),
        &config.detection.model,
        &CpuFeatures::detect(),
    )?;
    tracing::info!(
        model = %model.spec.name,
        manifest = %model.chosen.manifest.display(),
        "model {} ({})",
        model.spec.name,
        model.chosen.reason
    );
    let options = DetectorOptions {
        intra_threads: 1,
        class_filter: ClassFilter::CoarseClassesOnly,
    };
    let started = std::time::Instant::now();
    let detectors = (0..config.detection.inference_threads.max(1))
        .map(|_| model.detector(&options).map_err(anyhow::Error::from))
        .collect::<anyhow::Result<Vec<_>>>()?;
    tracing::debug!(
        sessions = detectors.len(),
        "model sessions created in {} ms",
        started.elapsed().as_millis()
    );
    let report = ModelReport {
        name: model.spec.name.clone(),
        reason: model.chosen.reason,
    };
    Ok((detectors, report))
}

/// Runs the agent until `shutdown` is cancelled, then stops in order within [`STOP_BUDGET`].
///
/// `config_path` is the file `config` was read from: SIGHUP and the local endpoint's
/// `POST /reload` re-read it and apply it live ([`Control`]); `None` (the demo) turns both off.
///
/// # Errors
/// The model, the ONNX Runtime library or GStreamer cannot be loaded, a thread cannot be
/// started, or the publisher fails in a way retrying cannot fix (bad TLS files). Once the
/// publisher has started, every error still goes through the ordered stop first (`offline`
/// published, the outbox saved).
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let faults = Faults::from_env();
    let (detectors, model) = tokio::task::block_in_place(|| load_detectors(&config))?;
    let model_name = model.name.clone();
    ingest::init_gstreamer()?;
    // A decoder template that does not exist or cannot work here is a configuration error:
    // refuse to start rather than run with a camera that will never stream.
    for camera in cameras_to_run(&config) {
        ingest::choose_decoder(camera)?;
    }
    // SIGHUP reloads the file; installed before anything runs so that a reload never kills
    // a starting agent.
    let hangup = match &config_path {
        Some(_) => match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(signal) => Some(signal),
            Err(e) => {
                tracing::warn!("cannot install the SIGHUP handler ({e}): reload with POST /reload");
                None
            }
        },
        None => None,
    };
    let (control, requests) = Control::new(&config, config_path);

    // Cameras get their slots (ids) as they start; the board, the lanes and the counters'
    // list grow together (`cameras::CameraSet`).
    let registry = Arc::new(Cameras::default());
    // Up to one frame of a camera per inference thread at once: a lone camera uses every
    // thread, and its lane puts the results back in order.
    let board = Arc::new(FrameBoard::new(
        Vec::new(),
        Vec::new(),
        config.detection.max_frame_age,
        detectors.len(),
    ));
    let lanes = Arc::new(Lanes::default());
    let mut camera_set = CameraSet::new(
        Arc::clone(&board),
        Arc::clone(&lanes),
        Arc::clone(&registry),
        shutdown.child_token(),
    );
    // Every camera has its slot before the publisher is made, so that its last will lists
    // them; their pipelines start last.
    for camera in cameras_to_run(&config) {
        camera_set.prepare(camera, &config);
    }
    let publisher_config = publish::PublisherConfig::from_config(&config, &model_name);
    let topics = publisher_config.topics();
    let (started_at, started) = (publisher_config.started_at, publisher_config.started);
    let publisher = publish::Publisher::new(publisher_config, Arc::clone(&registry))
        .context("MQTT publisher")?;
    let broker_state = publisher.broker_state();
    // Remote commands: through the publisher's connection, to their own task.
    let (publisher, command_task) = match (commands::inbox(&config, &topics), control.config_path())
    {
        (Some(inbox), Some(config_file)) => {
            let (incoming_tx, incoming) = mpsc::channel(crate::command::MAX_WAITING);
            let (out, outgoing) = mpsc::channel(COMMAND_OUTPUT);
            let task = commands::CommandTask {
                inbox,
                topics: topics.clone(),
                incoming,
                out,
                control: control.clone(),
                config_file: config_file.to_owned(),
                broker: broker_state.clone(),
                started,
                cameras: Arc::clone(&registry),
                lanes: Arc::clone(&lanes),
            };
            let publisher = publisher.with_commands(publish::CommandLink {
                incoming: incoming_tx,
                outgoing,
            });
            (publisher, Some(task))
        }
        _ => (publisher, None),
    };
    // Opening the outbox scans its log: file work, kept off the async workers.
    let outbox_options = OutboxOptions::from_config(&config.outbox);
    let stamp = publish::outbox_stamp(topics);
    let (outbox, event_sink, delivery) =
        tokio::task::spawn_blocking(move || Outbox::start(outbox_options, stamp))
            .await
            .context("opening the outbox")?
            .context("starting the outbox thread")?;
    // Sized for the cameras at the start; cameras added later share it (a full channel is a
    // counted drop, never a wait).
    let (results_tx, results_rx) =
        mpsc::channel::<AnalysedFrame>(RESULTS_PER_CAMERA * cameras_to_run(&config).len().max(1));

    // The publisher has its own token: it stops last, after the frame path has drained.
    let publisher_shutdown = CancellationToken::new();
    let publisher =
        tokio::spawn(publisher.run(results_rx, Some(delivery), publisher_shutdown.clone()));
    // It stops with the publisher (its output goes nowhere after).
    if let Some(task) = command_task {
        tokio::spawn(task.run(publisher_shutdown.clone()));
    }

    // From here on, every way out goes through `Running::stop`.
    let mut running = Running {
        cameras: camera_set,
        config: Arc::new(config.clone()),
        control: control.clone(),
        requests,
        hangup: hangup
            .map(|signal| tokio::spawn(control::reload_on_hangup(control.clone(), signal))),
        workers: None,
        outbox,
        publisher,
        publisher_shutdown,
        local: None,
    };
    let mut fault_broker = broker_state.clone();
    let started: anyhow::Result<()> = async {
        if let Some(listen) = config.local.listen {
            let sources = Sources {
                cameras: Arc::clone(&registry),
                broker: broker_state,
                outbox: running.outbox.stats(),
                facts: AgentFacts {
                    site: config.device.site.to_string(),
                    device: config.device.id.to_string(),
                    started_at,
                    model: model.clone(),
                },
                started,
                control: Some(control.clone()),
                views: detectors.first().map(|detector| {
                    crate::framepath::Views::new(
                        Arc::clone(&board),
                        Arc::clone(&lanes),
                        detector.spec().input.clone(),
                    )
                }),
            };
            let access = AccessSettings {
                password: config.local.password.clone(),
                metrics_without_login: config.local.metrics_without_login,
                allowed_hosts: config.local.allowed_hosts.clone(),
                tls: config.local.tls.clone(),
            };
            running.local = start_local(listen, access, sources).await;
        }

        let n_threads = detectors.len();
        running.workers = Some(
            framepath::spawn_workers(
                detectors,
                Arc::clone(&board),
                Arc::clone(&lanes),
                event_sink,
                results_tx,
                faults.hang_inference_after,
            )
            .context("starting inference threads")?,
        );

        for camera in cameras_to_run(&config) {
            if faults.refuse_camera_threads {
                // Once connected, so that the stop has an `online` to answer with `offline`.
                let _ = tokio::time::timeout(
                    Duration::from_secs(10),
                    fault_broker.wait_for(|b| b.connected),
                )
                .await;
                anyhow::bail!(
                    "starting camera {}: refused by WATCHPOST_FAULTS (fault injection)",
                    camera.name
                );
            }
            running
                .cameras
                .start(&camera.name)
                .with_context(|| format!("starting camera {}", camera.name))?;
        }
        tracing::info!(
            cameras = cameras_to_run(&config).len(),
            inference_threads = n_threads,
            model = %model_name,
            "agent running"
        );
        Ok(())
    }
    .await;

    let notifier = systemd::Notifier::from_env();
    let publisher_result = match started {
        Ok(()) => {
            notifier.ready();
            running.supervise(&notifier, &shutdown).await
        }
        Err(e) => {
            tracing::error!("{e:#}; stopping");
            notifier.stopping();
            // The start's error is the one to report; the stop's outcome is logged.
            let _ = running.stop(None).await;
            return Err(e);
        }
    };
    notifier.stopping();
    running.stop(publisher_result).await
}

/// The local endpoint, or `None` (logged) when its port cannot be had.
async fn start_local(
    listen: std::net::SocketAddr,
    access: AccessSettings,
    sources: Sources,
) -> Option<LocalServer> {
    let login = if access.password.is_some() {
        "; other machines log in at /login"
    } else {
        ""
    };
    let scheme = if access.tls.is_some() {
        "https"
    } else {
        "http"
    };
    match LocalServer::start(listen, access, sources).await {
        Ok(server) => {
            tracing::info!(
                "local endpoint on {scheme}://{}: GET /status, GET /metrics{login}",
                server.local_addr()
            );
            Some(server)
        }
        Err(e @ crate::local::LocalError::Tls { .. }) => {
            tracing::warn!(
                "{e}; running without it (`watchpost status` and /metrics will not answer): \
                 fix the files and restart the agent (`watchpost config validate` checks them)"
            );
            None
        }
        Err(e) => {
            tracing::warn!(
                "{e}; running without it (`watchpost status` and /metrics will not answer): \
                 free the port, or set [local] listen to another port, or to \"\" to turn the \
                 endpoint off"
            );
            None
        }
    }
}

/// The outcome of the publisher task, once it has ended.
type PublisherOutcome = Result<Result<publish::PublisherReport, publish::PublishError>, JoinError>;

/// What runs once the publisher has started; [`Running::stop`] stops whatever of it exists.
struct Running {
    cameras: CameraSet,
    /// The configuration in effect (what [`Control::running`] shows).
    config: Arc<Config>,
    control: Control,
    /// Configurations to apply, from [`Control::apply`].
    requests: mpsc::Receiver<Request>,
    /// The SIGHUP listener, if any.
    hangup: Option<JoinHandle<()>>,
    workers: Option<WorkerPool>,
    outbox: Outbox,
    publisher: JoinHandle<Result<publish::PublisherReport, publish::PublishError>>,
    publisher_shutdown: CancellationToken,
    local: Option<LocalServer>,
}

impl Running {
    /// Until asked to stop, or until the publisher gives up (its outcome, then); meanwhile,
    /// pings systemd's watchdog while the frame path is alive.
    async fn supervise(
        &mut self,
        notifier: &systemd::Notifier,
        shutdown: &CancellationToken,
    ) -> Option<PublisherOutcome> {
        let mut watchdog = tokio::time::interval(
            notifier
                .ping_interval()
                .unwrap_or(Duration::from_secs(3600))
                .max(Duration::from_millis(100)),
        );
        let mut wedged_logged = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                Some(request) = self.requests.recv() => {
                    let outcome = self.apply(request.config).await;
                    let _ = request.answer.send(outcome);
                }
                result = &mut self.publisher => {
                    tracing::error!("the publisher stopped; shutting down");
                    return Some(result);
                }
                _ = watchdog.tick() => {
                    let busy = self.workers.as_ref().map_or(Duration::ZERO, WorkerPool::longest_busy);
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
        }
    }

    /// Applies `new` (see [`plan`]): cameras removed, restarted, re-paced, given new lane
    /// state, or added; sections that cannot change live are reported. Cameras whose settings
    /// did not change are not touched.
    ///
    /// # Errors
    /// [`ApplyError::Refused`] when a camera to start names a decoder this box does not have;
    /// nothing changes then.
    async fn apply(&mut self, new: Config) -> Result<Applied, ApplyError> {
        use plan::CameraChange;
        let plan = plan::plan(&self.config, &new);
        let by_name = |name: &crate::config::TopicName| {
            cameras_to_run(&new)
                .into_iter()
                .find(|c| c.name == *name)
                .expect("the plan names cameras of the new configuration")
        };
        // Check before changing anything: a decoder that cannot work here refuses the whole.
        let refused: Vec<String> = plan
            .cameras
            .iter()
            .filter(|a| match &a.change {
                CameraChange::Add => true,
                CameraChange::Update(u) => u.pipeline,
                CameraChange::Remove => false,
            })
            .filter_map(|a| ingest::choose_decoder(by_name(&a.name)).err())
            .map(|e| e.to_string())
            .collect();
        if !refused.is_empty() {
            return Err(ApplyError::Refused { reasons: refused });
        }
        let mut live = Vec::new();
        let removed: Vec<&crate::config::TopicName> = plan
            .cameras
            .iter()
            .filter(|a| a.change == CameraChange::Remove)
            .map(|a| &a.name)
            .collect();
        self.cameras.remove(&removed).await;
        let mut restart = Vec::new();
        for action in &plan.cameras {
            let CameraChange::Update(update) = &action.change else {
                continue;
            };
            let camera = by_name(&action.name);
            if update.pacing {
                self.cameras.repace(camera);
            }
            if update.lane {
                self.cameras.relane(camera, &new);
            }
            if update.pipeline {
                restart.push(camera);
            }
        }
        live.extend(self.cameras.restart(&restart).await);
        for action in &plan.cameras {
            if action.change == CameraChange::Add
                && let Err(e) = self.cameras.add(by_name(&action.name), &new)
            {
                live.push(format!(
                    "camera {}: cannot start its thread: {e}",
                    action.name
                ));
            }
        }
        live.splice(0..0, plan.cameras.iter().map(plan::CameraAction::describe));
        self.config = Arc::new(plan::effective(&self.config, &new));
        self.control
            .set_running(Arc::clone(&self.config), plan.at_restart.clone());
        Ok(Applied {
            live,
            at_restart: plan.at_restart,
        })
    }

    /// The ordered stop, within [`STOP_BUDGET`]: cameras (no new frames), the frames in
    /// flight finished or abandoned, the outbox's last events and delivered position saved,
    /// `offline` published, the local endpoint closed. A stage past its deadline is abandoned
    /// and logged; the next one still runs.
    async fn stop(self, publisher_result: Option<PublisherOutcome>) -> anyhow::Result<()> {
        let budget = StopBudget::starting_now(STOP_BUDGET);
        let later = |stages: Duration| stages.saturating_add(PUBLISHER_RESERVE + RUNTIME_CAP);
        let Running {
            mut cameras,
            config: _,
            control: _,
            mut requests,
            hangup,
            workers,
            outbox,
            publisher,
            publisher_shutdown,
            local,
        } = self;

        // Configurations sent from now on, or waiting, get `ApplyError::Stopped`.
        requests.close();
        drop(requests);
        if let Some(hangup) = hangup {
            hangup.abort();
        }
        tracing::info!("shutting down: stopping cameras");
        cameras.shutdown.cancel();
        let threads = cameras.take_threads();
        let limit = budget.stage(CAMERAS_CAP, later(INFERENCE_CAP + OUTBOX_CAP));
        if !cameras::join_within(threads, limit).await {
            tracing::warn!("cameras did not stop within {limit:?}; leaving them behind");
        }
        for s in cameras.registry.live_stats() {
            s.set_state(CameraState::Stopped);
        }

        tracing::info!("shutting down: finishing in-flight inference");
        cameras.board.close();
        if let Some(workers) = workers {
            let limit = budget.stage(INFERENCE_CAP, later(OUTBOX_CAP));
            let joined =
                tokio::time::timeout(limit, tokio::task::spawn_blocking(move || workers.join()))
                    .await;
            if joined.is_err() {
                tracing::warn!(
                    "inference threads did not finish within {limit:?}; abandoning their frames"
                );
            }
        }

        tracing::info!("shutting down: writing the last events");
        let limit = budget.stage(OUTBOX_CAP, later(Duration::ZERO));
        let stopped = tokio::time::timeout(
            limit,
            tokio::task::spawn_blocking(move || outbox.shutdown()),
        )
        .await;
        if stopped.is_err() {
            tracing::warn!(
                "the outbox did not stop within {limit:?}: events written since its last save \
                 (about a second) will be sent again after the restart"
            );
        }

        tracing::info!("shutting down: publishing offline");
        publisher_shutdown.cancel();
        let result = match publisher_result {
            Some(result) => Some(result),
            None => {
                let limit = budget.stage(budget.remaining(), RUNTIME_CAP);
                let ended = tokio::time::timeout(limit, publisher).await.ok();
                if ended.is_none() {
                    tracing::warn!("the publisher did not stop within {limit:?}");
                }
                ended
            }
        };
        if let Some(local) = local {
            local.stop().await;
        }
        match result {
            None => anyhow::bail!("the publisher did not stop in time"),
            Some(Ok(Ok(_report))) => Ok(()),
            Some(Ok(Err(e))) => Err(anyhow::Error::from(e).context("MQTT publisher")),
            Some(Err(join_error)) => {
                Err(anyhow::anyhow!("the publisher task failed: {join_error}"))
            }
        }
    }
}
