//! MQTT: the contract with the central system. The only module that knows MQTT and the JSON
//! shapes of the payloads.
//!
//! ## Topics (a public API: versioned, described by JSON Schema files, tested)
//! Under `{prefix}/{site}/{device}/` ([`Topics`]):
//!
//! | topic | QoS | retained | when | schema |
//! |---|---|---|---|---|
//! | `status` | 1 | yes | after every connection, on a camera state change (checked every second), `offline` at shutdown; also the last will | `watchpost.status/1` |
//! | `{camera}/detections` | `mqtt.detections_qos` | no | per analysed frame with objects | `watchpost.detections/1` |
//! | `health` | 0 | no | every `[health] interval` | `watchpost.health/1` |
//!
//! The schema files are in `src/publish/schemas/` ([`schema_json`]); the payload types are in
//! [`payload`].
//!
//! ## Shape
//! [`run_publisher`] (or [`Publisher::run`]) owns a rumqttc client; the event loop is polled in
//! its own task (`connection.rs`), which reconnects by itself with capped backoff (1 s doubling
//! to 30 s) and reports the broker's state through a `watch` channel ([`BrokerState`],
//! [`Publisher::broker_state`]). The publisher loop drains the results channel, checks camera
//! states every second and publishes `health` on its interval.
//!
//! ## Invariants
//! - Nothing blocks on the broker: the client's request queue holds [`REQUEST_CAPACITY`]
//!   requests and every publication uses `try_publish`.
//! - Detections are dropped, never queued for later, and counted on their camera:
//!   [`DropReason::BrokerDown`] while the broker is unreachable (including those lost in the
//!   client's queue when a connection ends), [`DropReason::PublishQueueFull`] when the request
//!   queue is full. `health` is skipped while the broker is unreachable; `status` is published
//!   again on every connection.
//! - Shutdown: stop waiting for results (those already queued are still handled), publish
//!   `offline` (QoS 1) and wait up to 3 s for its acknowledgement, send DISCONNECT, return. If
//!   the task is dropped or aborted instead, the connection closes without DISCONNECT and the
//!   broker publishes the last will: `offline`, with every camera `stopped`.
//! - Credentials never reach a log line or an error message.

mod connection;
mod driver;
pub mod payload;
pub mod topics;

pub use topics::Topics;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rumqttc::{AsyncClient, LastWill, QoS};
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{Config, DeviceConfig, MqttConfig, Qos};
use crate::framepath::AnalysedFrame;
use crate::health::{CameraCounters, CameraState, CameraStats, DropReason, ProcessSampler};
use payload::{
    BrokerHealth, CameraHealth, CameraStatus, DetectionsPayload, DeviceState, EventPayload,
    HealthPayload, ProcessFigures, StatusPayload,
};

/// Requests the rumqttc client queues before `try_publish` fails (and a detection is dropped as
/// [`DropReason::PublishQueueFull`]).
pub const REQUEST_CAPACITY: usize = 64;
/// How often camera states are compared with the last published `status`.
pub const STATUS_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long shutdown waits for the broker to acknowledge `offline`.
pub const OFFLINE_ACK_TIMEOUT: Duration = Duration::from_secs(3);
/// How long shutdown waits for DISCONNECT to be sent after `offline`.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The names [`schema_json`] knows.
pub const SCHEMA_NAMES: [&str; 4] = ["status", "detections", "health", "events"];

/// The JSON Schema (draft 2020-12) of a payload: `status`, `detections` or `health` (the
/// topic's last level; the full schema ids `watchpost.status/1` … work too).
pub fn schema_json(name: &str) -> Option<&'static str> {
    match name {
        "status" | payload::STATUS_SCHEMA => Some(include_str!("schemas/status.schema.json")),
        "detections" | payload::DETECTIONS_SCHEMA => {
            Some(include_str!("schemas/detections.schema.json"))
        }
        "health" | payload::HEALTH_SCHEMA => Some(include_str!("schemas/health.schema.json")),
        "events" | payload::EVENTS_SCHEMA => Some(include_str!("schemas/events.schema.json")),
        _ => None,
    }
}

/// What the publisher needs from the configuration.
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    pub mqtt: MqttConfig,
    pub device: DeviceConfig,
    /// How often `health` is published.
    pub health_interval: Duration,
    /// The model's name, as `detections` carries it.
    pub model: String,
    /// When the agent started: `status.started_at`.
    pub started_at: SystemTime,
    /// The same moment on the monotonic clock: `health.uptime_s` counts from here.
    pub started: Instant,
}

impl PublisherConfig {
    /// Takes `[mqtt]`, `[device]` and `[health]` from `config`; the agent starts now.
    pub fn from_config(config: &Config, model_name: &str) -> PublisherConfig {
        PublisherConfig {
            mqtt: config.mqtt.clone(),
            device: config.device.clone(),
            health_interval: config.health.interval,
            model: model_name.to_owned(),
            started_at: SystemTime::now(),
            started: Instant::now(),
        }
    }

    pub fn topics(&self) -> Topics {
        Topics::new(&self.mqtt.topic_prefix, &self.device.site, &self.device.id)
    }
}

/// The broker connection as the publisher sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerState {
    pub connected: bool,
    /// Successful connections (CONNACKs) so far.
    pub connections: u64,
    /// Successful connections after the first.
    pub reconnects: u64,
    /// Why the last connection attempt failed or the last connection ended (no credentials).
    pub last_error: Option<String>,
}

/// What the publisher did, returned when it stops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublisherReport {
    pub detections_published: u64,
    /// Counted as [`DropReason::BrokerDown`] or [`DropReason::PublishQueueFull`] by the
    /// publisher loop (those lost in the client's queue when a connection ends are counted on
    /// the cameras only).
    pub detections_dropped: u64,
    pub health_published: u64,
    /// Skipped because the broker was unreachable or the queue was full.
    pub health_skipped: u64,
    pub status_published: u64,
    pub broker_reconnects: u64,
    /// The broker acknowledged `offline` at shutdown.
    pub offline_acked: bool,
}

/// Errors that retrying cannot fix; everything about the broker itself is retried.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("mqtt.ca_file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error(
        "mqtts:// needs CA certificates: no system bundle found (looked in {looked_in}); set mqtt.ca_file"
    )]
    NoSystemRoots { looked_in: String },
    #[error("TLS set-up: {0}")]
    Tls(String),
    #[error("the MQTT connection task stopped unexpectedly: {0}")]
    ConnectionTask(String),
}

/// A publisher, built but not yet running: get its [`BrokerState`] channel, then [`run`] it.
///
/// [`run`]: Publisher::run
pub struct Publisher {
    config: PublisherConfig,
    cameras: Vec<Arc<CameraStats>>,
    options: rumqttc::MqttOptions,
    broker_tx: watch::Sender<BrokerState>,
    broker_rx: watch::Receiver<BrokerState>,
}

impl Publisher {
    /// Checks the configuration (TLS roots are read here) and prepares the client. `cameras`
    /// are in configuration order: [`AnalysedFrame::camera`] indexes them.
    ///
    /// # Errors
    /// A CA file that cannot be used, or `mqtts://` without any CA certificates.
    pub fn new(
        config: PublisherConfig,
        cameras: Vec<Arc<CameraStats>>,
    ) -> Result<Publisher, PublishError> {
        let topics = config.topics();
        let will_payload = StatusPayload::new(
            DeviceState::Offline,
            config.started_at,
            cameras
                .iter()
                .map(|c| CameraStatus {
                    name: c.name.clone(),
                    state: CameraState::Stopped,
                })
                .collect(),
        );
        let will = LastWill::new(
            topics.status(),
            to_json(&will_payload).unwrap_or_default(),
            QoS::AtLeastOnce,
            true,
        );
        let options = connection::mqtt_options(&config.mqtt, will)?;
        let (broker_tx, broker_rx) = watch::channel(BrokerState::default());
        Ok(Publisher {
            config,
            cameras,
            options,
            broker_tx,
            broker_rx,
        })
    }

    /// The broker's state, updated as it changes (for `watchpost status`).
    pub fn broker_state(&self) -> watch::Receiver<BrokerState> {
        self.broker_rx.clone()
    }

    /// Publishes until `shutdown` is cancelled, then publishes `offline` and disconnects.
    ///
    /// # Errors
    /// Only if the connection task dies unexpectedly; broker failures are retried.
    pub async fn run(
        self,
        results: mpsc::Receiver<AnalysedFrame>,
        shutdown: CancellationToken,
    ) -> Result<PublisherReport, PublishError> {
        let span = tracing::info_span!("mqtt", broker = %self.config.mqtt.url);
        self.run_in_span(results, shutdown).instrument(span).await
    }

    async fn run_in_span(
        self,
        mut results: mpsc::Receiver<AnalysedFrame>,
        shutdown: CancellationToken,
    ) -> Result<PublisherReport, PublishError> {
        let Publisher {
            config,
            cameras,
            options,
            broker_tx,
            mut broker_rx,
        } = self;
        let topics = config.topics();

        let (client, eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
        let (flushed_tx, mut flushed_rx) = watch::channel(false);
        let stop_driver = CancellationToken::new();
        // If this future is dropped (task aborted, runtime gone), the driver stops too and the
        // connection closes without DISCONNECT: the broker publishes the last will.
        let _stop_driver_on_drop = stop_driver.clone().drop_guard();
        let driver = driver::Driver {
            eventloop,
            state: broker_tx,
            flushed: flushed_tx,
            owners: driver::DetectionOwners::new(topics.clone(), &cameras),
            stop: stop_driver.clone(),
        };
        let mut driver_task = tokio::spawn(driver.run().in_current_span());

        let mut out = Outbox {
            client,
            topics,
            detections_qos: qos(config.mqtt.detections_qos),
            model: config.model.clone(),
            started_at: config.started_at,
            cameras,
            published_states: None,
            dropping_broker_down: false,
            dropping_queue_full: false,
            report: PublisherReport::default(),
        };
        let mut health = HealthWindow::new(&out.cameras);
        let mut status_tick = tokio::time::interval(STATUS_CHECK_INTERVAL);
        status_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let health_interval = config.health_interval.max(Duration::from_millis(100));
        let mut health_tick = tokio::time::interval_at(
            tokio::time::Instant::now() + health_interval,
            health_interval,
        );
        health_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut seen_connections = 0;
        let mut results_open = true;

        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                joined = &mut driver_task => {
                    let why = match joined {
                        Ok(()) => "it ended".to_owned(),
                        Err(e) => e.to_string(),
                    };
                    return Err(PublishError::ConnectionTask(why));
                }
                changed = broker_rx.changed() => {
                    if changed.is_err() {
                        // The driver is gone; the branch above reports why.
                        continue;
                    }
                    let state = broker_rx.borrow_and_update().clone();
                    if state.connections > seen_connections {
                        seen_connections = state.connections;
                        out.dropping_broker_down = false;
                        out.publish_status(DeviceState::Online);
                    }
                }
                _ = status_tick.tick() => {
                    if broker_rx.borrow().connected {
                        out.publish_status_if_changed();
                    }
                }
                _ = health_tick.tick() => {
                    let broker = broker_rx.borrow().clone();
                    out.publish_health(&mut health, &config, &broker);
                }
                frame = results.recv(), if results_open => match frame {
                    Some(frame) => {
                        let connected = broker_rx.borrow().connected;
                        out.publish_detections(&frame, connected);
                    }
                    None => {
                        tracing::debug!("results channel closed; waiting for shutdown");
                        results_open = false;
                    }
                },
            }
        }

        // Shutdown. Results already waiting are still handled; no waiting for more.
        let connected = broker_rx.borrow().connected;
        for _ in 0..results.len() {
            let Ok(frame) = results.try_recv() else { break };
            out.publish_detections(&frame, connected);
        }
        drop(results);
        out.report.broker_reconnects = broker_rx.borrow().reconnects;
        let mut driver_done = false;
        if connected {
            out.report.offline_acked = out.publish_offline(&mut flushed_rx).await;
            if out.report.offline_acked {
                tracing::info!("published offline");
            } else {
                tracing::warn!(
                    "offline not acknowledged within {OFFLINE_ACK_TIMEOUT:?}; disconnecting anyway"
                );
            }
            // DISCONNECT goes out after `offline` (the queue is FIFO); the driver stops once it
            // is sent.
            let sent = async {
                let _ = out.client.disconnect().await;
                (&mut driver_task).await
            };
            driver_done = tokio::time::timeout(DISCONNECT_TIMEOUT, sent).await.is_ok();
            if !driver_done {
                tracing::debug!("DISCONNECT not sent in time; closing the connection");
            }
        } else {
            tracing::warn!(
                "the MQTT broker is unreachable at shutdown: offline not published (the broker publishes the last will)"
            );
        }
        stop_driver.cancel();
        if !driver_done {
            let _ = driver_task.await;
        }
        Ok(out.report)
    }
}

/// Runs a publisher: [`Publisher::new`], then [`Publisher::run`]. Use [`Publisher`] directly
/// to get its [`BrokerState`] channel.
///
/// # Errors
/// As [`Publisher::new`] and [`Publisher::run`].
pub async fn run_publisher(
    config: PublisherConfig,
    cameras: Vec<Arc<CameraStats>>,
    results: mpsc::Receiver<AnalysedFrame>,
    shutdown: CancellationToken,
) -> Result<PublisherReport, PublishError> {
    Publisher::new(config, cameras)?
        .run(results, shutdown)
        .await
}

fn qos(qos: Qos) -> QoS {
    match qos {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
        Qos::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Option<Vec<u8>> {
    match serde_json::to_vec(value) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::error!(error = %e, "payload not serialisable; not published");
            None
        }
    }
}

/// The counters at the start of the current `health` interval.
struct HealthWindow {
    since: Instant,
    counters: Vec<CameraCounters>,
    sampler: ProcessSampler,
}

impl HealthWindow {
    fn new(cameras: &[Arc<CameraStats>]) -> HealthWindow {
        let mut sampler = ProcessSampler::new();
        // The first sample starts the CPU interval.
        let _ = sampler.sample();
        HealthWindow {
            since: Instant::now(),
            counters: cameras.iter().map(|c| c.snapshot()).collect(),
            sampler,
        }
    }
}

/// The publishing side: the client and what has been published.
struct Outbox {
    client: AsyncClient,
    topics: Topics,
    detections_qos: QoS,
    model: String,
    started_at: SystemTime,
    cameras: Vec<Arc<CameraStats>>,
    /// Camera states in the last `status` queued; `None` = publish at the next check.
    published_states: Option<Vec<CameraState>>,
    /// A drop was logged since the broker came back / since the last queued detection.
    dropping_broker_down: bool,
    dropping_queue_full: bool,
    report: PublisherReport,
}

impl Outbox {
    fn camera_states(&self) -> Vec<CameraState> {
        self.cameras.iter().map(|c| c.state()).collect()
    }

    fn status_payload(&self, state: DeviceState, states: &[CameraState]) -> StatusPayload {
        StatusPayload::new(
            state,
            self.started_at,
            self.cameras
                .iter()
                .zip(states)
                .map(|(c, s)| CameraStatus {
                    name: c.name.clone(),
                    state: *s,
                })
                .collect(),
        )
    }

    fn publish_status(&mut self, state: DeviceState) {
        let states = self.camera_states();
        let Some(bytes) = to_json(&self.status_payload(state, &states)) else {
            return;
        };
        match self
            .client
            .try_publish(self.topics.status(), QoS::AtLeastOnce, true, bytes)
        {
            Ok(()) => {
                self.report.status_published += 1;
                self.published_states = Some(states);
            }
            Err(_) => {
                tracing::warn!("request queue full: status not published; retrying in a second");
                self.published_states = None;
            }
        }
    }

    fn publish_status_if_changed(&mut self) {
        if self.published_states.as_deref() != Some(self.camera_states().as_slice()) {
            self.publish_status(DeviceState::Online);
        }
    }

    /// Events of one frame (QoS 1), each after its snapshot. While the broker is unreachable
    /// they are handed to the MQTT client all the same (it holds a few); the disk outbox that
    /// keeps them through long outages is a later step.
    fn publish_events(&mut self, frame: &AnalysedFrame) {
        let Some(stats) = self.cameras.get(frame.camera).cloned() else {
            return;
        };
        for event in &frame.events {
            let snapshot_topic = event.snapshot.as_ref().and_then(|snapshot| {
                let topic = self.topics.snapshot(&stats.name, &event.event_id);
                match self.client.try_publish(topic.clone(), QoS::AtLeastOnce, false, snapshot.jpeg.clone()) {
                    Ok(()) => Some(topic),
                    Err(_) => {
                        tracing::warn!(camera = %stats.name, event_id = %event.event_id, "MQTT request queue full: snapshot not published");
                        None
                    }
                }
            });
            let payload = EventPayload::new(&stats.name, event, snapshot_topic);
            let Some(bytes) = to_json(&payload) else {
                continue;
            };
            if self
                .client
                .try_publish(
                    self.topics.events(&stats.name),
                    QoS::AtLeastOnce,
                    false,
                    bytes,
                )
                .is_err()
            {
                tracing::warn!(camera = %stats.name, event_id = %event.event_id, seq = event.seq, "MQTT request queue full: event not published");
            }
        }
    }

    fn publish_detections(&mut self, frame: &AnalysedFrame, connected: bool) {
        self.publish_events(frame);
        if frame.objects.is_empty() {
            return;
        }
        let Some(stats) = self.cameras.get(frame.camera).cloned() else {
            tracing::error!(
                camera = frame.camera,
                "result for an unknown camera index; ignored"
            );
            return;
        };
        if !connected {
            stats.count_drop(DropReason::BrokerDown);
            self.report.detections_dropped += 1;
            if !self.dropping_broker_down {
                self.dropping_broker_down = true;
                tracing::warn!(
                    camera = %stats.name,
                    drops = stats.snapshot().drops(DropReason::BrokerDown),
                    "broker unreachable: dropping detections (counted as broker_down)"
                );
            }
            return;
        }
        let latency = frame.arrived.elapsed();
        let payload =
            DetectionsPayload::new(&stats.name, frame, &self.model, SystemTime::now(), latency);
        let Some(bytes) = to_json(&payload) else {
            return;
        };
        match self.client.try_publish(
            self.topics.detections(&stats.name),
            self.detections_qos,
            false,
            bytes,
        ) {
            Ok(()) => {
                stats.record_latency(latency);
                self.report.detections_published += 1;
                self.dropping_queue_full = false;
            }
            Err(_) => {
                stats.count_drop(DropReason::PublishQueueFull);
                self.report.detections_dropped += 1;
                if !self.dropping_queue_full {
                    self.dropping_queue_full = true;
                    tracing::warn!(
                        camera = %stats.name,
                        drops = stats.snapshot().drops(DropReason::PublishQueueFull),
                        "MQTT request queue full: dropping detections (counted as publish_queue_full)"
                    );
                }
            }
        }
    }

    fn publish_health(
        &mut self,
        window: &mut HealthWindow,
        config: &PublisherConfig,
        broker: &BrokerState,
    ) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let elapsed = now.duration_since(window.since);
        let process = ProcessFigures::from(window.sampler.sample());
        let counters: Vec<CameraCounters> = self.cameras.iter().map(|c| c.snapshot()).collect();
        let cameras = self
            .cameras
            .iter()
            .zip(&counters)
            .zip(&window.counters)
            .map(|((camera, now), earlier)| {
                CameraHealth::from_counters(&camera.name, now, earlier, elapsed, wall)
            })
            .collect();
        window.since = now;
        window.counters = counters;
        if !broker.connected {
            self.report.health_skipped += 1;
            return;
        }
        let payload = HealthPayload::new(
            wall,
            elapsed,
            now.duration_since(config.started),
            process,
            cameras,
            BrokerHealth {
                connected: broker.connected,
                reconnects: broker.reconnects,
            },
        );
        let Some(bytes) = to_json(&payload) else {
            return;
        };
        match self
            .client
            .try_publish(self.topics.health(), QoS::AtMostOnce, false, bytes)
        {
            Ok(()) => self.report.health_published += 1,
            Err(_) => {
                self.report.health_skipped += 1;
                tracing::warn!(
                    skipped = self.report.health_skipped,
                    "request queue full: health not published"
                );
            }
        }
    }

    /// Queues `offline` and a marker behind it, and waits until both are out and nothing is
    /// unacknowledged. `true` if that happened within [`OFFLINE_ACK_TIMEOUT`].
    async fn publish_offline(&mut self, flushed: &mut watch::Receiver<bool>) -> bool {
        let deadline = tokio::time::Instant::now() + OFFLINE_ACK_TIMEOUT;
        let states = self.camera_states();
        let Some(bytes) = to_json(&self.status_payload(DeviceState::Offline, &states)) else {
            return false;
        };
        let status = self.topics.status();
        let sequence = async {
            // These wait for room in the request queue, bounded by the deadline.
            self.client
                .publish(status.clone(), QoS::AtLeastOnce, true, bytes)
                .await
                .ok()?;
            // The marker: an UNSUBSCRIBE (of a topic never subscribed, harmless) is sent after
            // `offline`, so once it is out and nothing is in flight, `offline` was acknowledged.
            self.client.unsubscribe(status).await.ok()?;
            flushed.wait_for(|f| *f).await.ok()?;
            Some(())
        };
        let acked = matches!(
            tokio::time::timeout_at(deadline, sequence).await,
            Ok(Some(()))
        );
        if acked {
            self.report.status_published += 1;
        }
        acked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_is_json_with_its_id() {
        for name in SCHEMA_NAMES {
            let text = schema_json(name).unwrap();
            let schema: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
                "{name}"
            );
            assert_eq!(
                schema["properties"]["schema"]["const"],
                format!("watchpost.{name}/1")
            );
            assert_eq!(schema["additionalProperties"], false, "{name}");
            assert_eq!(schema_json(&format!("watchpost.{name}/1")), Some(text));
        }
        assert_eq!(schema_json("snapshots"), None);
    }

    #[test]
    fn health_schema_names_every_drop_reason() {
        let schema: serde_json::Value =
            serde_json::from_str(schema_json("health").unwrap()).unwrap();
        let drops = &schema["$defs"]["drops"];
        let mut required: Vec<&str> = drops["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut properties: Vec<&str> = drops["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut reasons: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        required.sort_unstable();
        properties.sort_unstable();
        reasons.sort_unstable();
        assert_eq!(required, reasons);
        assert_eq!(properties, reasons);
    }

    #[test]
    fn camera_states_in_schemas_match_the_code() {
        let states = [
            CameraState::Connecting,
            CameraState::Streaming,
            CameraState::Retrying,
            CameraState::Stopped,
        ];
        let expected: Vec<serde_json::Value> = states
            .iter()
            .map(|s| serde_json::Value::from(s.as_str()))
            .collect();
        let status: serde_json::Value =
            serde_json::from_str(schema_json("status").unwrap()).unwrap();
        assert_eq!(
            status["$defs"]["camera_state"]["enum"].as_array().unwrap(),
            &expected
        );
        let health: serde_json::Value =
            serde_json::from_str(schema_json("health").unwrap()).unwrap();
        assert_eq!(
            health["properties"]["cameras"]["items"]["properties"]["state"]["enum"]
                .as_array()
                .unwrap(),
            &expected
        );
    }
}
