//! The MQTT publisher on its own tokio runtime, driven from a plain test thread (which can
//! block on a subscriber and feed results with `blocking_send`), and its configuration for a
//! device of site `north`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use watchpost::config::TopicName;
use watchpost::framepath::AnalysedFrame;
use watchpost::health::{CameraStats, Cameras};
use watchpost::publish::{BrokerState, PublishError, Publisher, PublisherConfig, PublisherReport};

/// The model the payloads name.
pub const MODEL: &str = "nanodet-m-416";

fn name(s: &str) -> TopicName {
    TopicName::parse(s).unwrap()
}

/// A publisher configuration for device `device` of site `north`, to `url`
/// (`mqtt[s]://HOST:PORT`), as the loader makes it: no credentials, `health` every 60 s.
pub fn publisher_config(url: &str, device: &str) -> PublisherConfig {
    let text = format!(
        "[device]\nsite = \"north\"\nid = \"{device}\"\nstate_dir = \"{state_dir}\"\n\n\
         [mqtt]\nurl = \"{url}\"\n\n[health]\ninterval_s = 60\n\n\
         [[cameras]]\nname = \"gate\"\nurl = \"rtsp://127.0.0.1/gate\"\n",
        state_dir = std::env::temp_dir().display()
    );
    let mut config = super::parse_config(&text);
    // No password, whatever this process's environment says (`WATCHPOST_MQTT_PASSWORD`).
    config.mqtt.password = None;
    PublisherConfig::from_config(&config, MODEL)
}

/// A publisher on its own runtime.
pub struct Running {
    pub runtime: tokio::runtime::Runtime,
    pub task: tokio::task::JoinHandle<Result<PublisherReport, PublishError>>,
    /// Kept open even when nothing is fed: the publisher waits for results as in the agent.
    pub results: mpsc::Sender<AnalysedFrame>,
    pub shutdown: CancellationToken,
    pub broker: watch::Receiver<BrokerState>,
    /// The cameras' counters, in the order given.
    pub cameras: Vec<Arc<CameraStats>>,
}

impl Running {
    /// A publisher for `cameras` with room for 64 results.
    pub fn start(config: PublisherConfig, cameras: &[&str]) -> Running {
        Running::start_with_queue(config, cameras, 64)
    }

    pub fn start_with_queue(config: PublisherConfig, cameras: &[&str], queue: usize) -> Running {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cameras: Vec<Arc<CameraStats>> = cameras
            .iter()
            .map(|c| Arc::new(CameraStats::new(name(c))))
            .collect();
        let publisher = Publisher::new(config, Arc::new(Cameras::new(cameras.clone()))).unwrap();
        let broker = publisher.broker_state();
        let (results, results_rx) = mpsc::channel(queue);
        let shutdown = CancellationToken::new();
        let task = runtime.spawn(publisher.run(results_rx, None, shutdown.clone()));
        Running {
            runtime,
            task,
            results,
            shutdown,
            broker,
            cameras,
        }
    }

    pub fn feed(&self, frame: AnalysedFrame) {
        self.results.blocking_send(frame).unwrap();
    }

    pub fn state(&self) -> BrokerState {
        self.broker.borrow().clone()
    }

    /// Waits until the broker state satisfies `predicate`; fails after `timeout`.
    #[track_caller]
    pub fn wait_broker(
        &self,
        predicate: impl Fn(&BrokerState) -> bool,
        timeout: Duration,
    ) -> BrokerState {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.state();
            if predicate(&state) {
                return state;
            }
            assert!(Instant::now() < deadline, "broker state stayed {state:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Cancels and waits for the report (the publisher gives itself ~4 s at most).
    pub fn stop(self) -> PublisherReport {
        self.shutdown.cancel();
        let started = Instant::now();
        let report = self
            .runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), self.task).await })
            .expect("the publisher did not stop within 10 s")
            .expect("publisher task")
            .expect("publisher result");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        report
    }
}
