//! The running cameras: for each, its slot (one id on the frame board, the lanes and the
//! counters' list, kept in step here and nowhere else), its configuration, and its pipeline
//! thread with a cancellation token of its own, so that one camera can be stopped alone.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{CameraConfig, Config, TopicName};
use crate::events::CameraEvents;
use crate::framepath::{FrameBoard, Lane, Lanes, Pacing};
use crate::health::{CameraState, CameraStats, Cameras};
use crate::ingest;

/// How long a reload waits for the pipelines it stops (set to NULL, threads joined); a thread
/// still running then is left behind, logged, as at shutdown.
pub const RELOAD_STOP_CAP: Duration = Duration::from_secs(5);

/// One running camera.
struct Running {
    id: usize,
    config: CameraConfig,
    stats: Arc<CameraStats>,
    /// A child of the agent's cameras token: cancelling either stops the thread.
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

/// Every camera the agent runs.
pub(crate) struct CameraSet {
    pub board: Arc<FrameBoard>,
    pub lanes: Arc<Lanes>,
    pub registry: Arc<Cameras>,
    /// The parent of every camera's token (cancelled by the ordered stop).
    pub shutdown: CancellationToken,
    running: Vec<Running>,
}

impl CameraSet {
    pub fn new(
        board: Arc<FrameBoard>,
        lanes: Arc<Lanes>,
        registry: Arc<Cameras>,
        shutdown: CancellationToken,
    ) -> CameraSet {
        CameraSet {
            board,
            lanes,
            registry,
            shutdown,
            running: Vec::new(),
        }
    }

    /// Gives `camera` a fresh slot (counters, board slot with its pacing, lane) and starts its
    /// pipeline.
    ///
    /// # Errors
    /// The OS refused to start its thread (its slot is retired again).
    pub fn add(&mut self, camera: &CameraConfig, config: &Config) -> std::io::Result<()> {
        self.prepare(camera, config);
        self.start(&camera.name)
    }

    /// Gives `camera` a fresh slot (counters, board slot with its pacing, lane), without
    /// starting its pipeline yet ([`CameraSet::start`]): at start-up, so that the publisher's
    /// last will lists every camera.
    pub fn prepare(&mut self, camera: &CameraConfig, config: &Config) {
        let stats = Arc::new(CameraStats::new(camera.name.clone()));
        let id = self.registry.add(Arc::clone(&stats));
        let slot = self
            .board
            .add_camera(Pacing::of(camera), Arc::clone(&stats));
        let lane = self.lanes.add(
            Arc::clone(&stats),
            Lane::new(CameraEvents::new(camera, &config.tracking, &config.events)),
        );
        assert_eq!((id, slot), (lane, lane), "one id per camera everywhere");
        self.running.push(Running {
            id,
            config: camera.clone(),
            stats,
            stop: self.shutdown.child_token(),
            thread: None,
        });
    }

    /// Starts the pipeline of a camera given its slot by [`CameraSet::prepare`].
    ///
    /// # Errors
    /// The OS refused to start its thread: the camera is removed again (its slot retired).
    pub fn start(&mut self, name: &TopicName) -> std::io::Result<()> {
        let Some(i) = self.position(name) else {
            return Ok(());
        };
        if let Err(e) = spawn(&self.board, &mut self.running[i]) {
            let camera = self.running.remove(i);
            self.retire(&camera);
            return Err(e);
        }
        Ok(())
    }

    fn retire(&self, camera: &Running) {
        self.board.retire(camera.id);
        self.registry.retire(camera.id);
        camera.stats.set_state(CameraState::Stopped);
    }

    fn position(&self, name: &TopicName) -> Option<usize> {
        self.running.iter().position(|c| c.config.name == *name)
    }

    /// Stops the pipelines of these cameras together (each its own token), waiting at most
    /// [`RELOAD_STOP_CAP`] off the async workers; a thread still running then is left behind.
    async fn stop_pipelines(&mut self, names: &[&TopicName]) {
        let mut threads = Vec::new();
        for name in names {
            if let Some(i) = self.position(name) {
                let camera = &mut self.running[i];
                camera.stop.cancel();
                threads.extend(camera.thread.take());
            }
        }
        if threads.is_empty() {
            return;
        }
        if !join_within(threads, RELOAD_STOP_CAP).await {
            tracing::warn!(
                "a camera did not stop within {RELOAD_STOP_CAP:?}; leaving its thread behind"
            );
        }
    }

    /// Stops and removes these cameras: pipelines stopped, slots retired (their frames in
    /// flight still go through their lanes: no event lost).
    pub async fn remove(&mut self, names: &[&TopicName]) {
        self.stop_pipelines(names).await;
        for name in names {
            if let Some(i) = self.position(name) {
                let camera = self.running.remove(i);
                self.retire(&camera);
            }
        }
    }

    /// Stops these cameras' pipelines and starts them again with their new settings, on the
    /// same slot (same counters, lane and frame order).
    ///
    /// # Errors
    /// The OS refused to start a thread: the names of those cameras (left stopped) and why.
    pub async fn restart(&mut self, cameras: &[&CameraConfig]) -> Vec<String> {
        let names: Vec<&TopicName> = cameras.iter().map(|c| &c.name).collect();
        self.stop_pipelines(&names).await;
        let mut failed = Vec::new();
        for camera in cameras {
            let Some(i) = self.position(&camera.name) else {
                continue;
            };
            let running = &mut self.running[i];
            running.config = (*camera).clone();
            running.stop = self.shutdown.child_token();
            if let Err(e) = spawn(&self.board, running) {
                failed.push(format!(
                    "camera {}: cannot start its thread: {e}",
                    camera.name
                ));
                running.stats.set_state(CameraState::Stopped);
            }
        }
        failed
    }

    /// New pacing on `camera`'s slot.
    pub fn repace(&mut self, camera: &CameraConfig) {
        if let Some(i) = self.position(&camera.name) {
            self.board
                .set_pacing(self.running[i].id, Pacing::of(camera));
            self.running[i].config = camera.clone();
        }
    }

    /// New tracking and watch state in `camera`'s lane.
    pub fn relane(&mut self, camera: &CameraConfig, config: &Config) {
        if let Some(i) = self.position(&camera.name) {
            self.lanes.replace_events(
                self.running[i].id,
                CameraEvents::new(camera, &config.tracking, &config.events),
            );
            self.running[i].config = camera.clone();
        }
    }

    /// Every pipeline thread, for the ordered stop (which cancels [`CameraSet::shutdown`]).
    pub fn take_threads(&mut self) -> Vec<JoinHandle<()>> {
        self.running
            .iter_mut()
            .filter_map(|c| c.thread.take())
            .collect()
    }
}

/// Starts `camera`'s pipeline thread on its slot.
fn spawn(board: &Arc<FrameBoard>, camera: &mut Running) -> std::io::Result<()> {
    let sink: Arc<dyn ingest::FrameSink> = Arc::clone(board) as _;
    camera.thread = Some(ingest::spawn_camera(
        camera.id,
        camera.config.clone(),
        sink,
        Arc::clone(&camera.stats),
        camera.stop.clone(),
    )?);
    Ok(())
}

/// Joins camera threads off the async workers, waiting at most `limit`; false when some were
/// still running then (they are left behind).
pub(crate) async fn join_within(threads: Vec<JoinHandle<()>>, limit: std::time::Duration) -> bool {
    tokio::time::timeout(
        limit,
        tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        }),
    )
    .await
    .is_ok()
}
