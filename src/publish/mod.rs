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
//! | `{camera}/events` | 1 | no | per event, through the disk outbox (at least once) | `watchpost.events/1` |
//! | `{camera}/snapshots/{event_id}` | 1 | no | just before its event, when it has a picture | JPEG bytes |
//! | `health` | 0 | no | every `[health] interval` | `watchpost.health/1` |
//! | `cmd` (subscribed) | 1 | no | published by the central system | `watchpost.command/1` |
//! | `cmd/result` | 1 | no | one per message on `cmd`, but retained ones | `watchpost.command-result/1` |
//! | `audit` | 1 | no | one per message on `cmd` | `watchpost.command-audit/1` |
//! | `config/state` | 1 | yes | after every connection and every configuration change | `watchpost.config-state/1` |
//!
//! The schema files are in `src/publish/schemas/` ([`schema_json`]); the payload types are in
//! [`payload`]. The last four topics exist only while remote commands are on
//! ([`Publisher::with_commands`]): the publisher subscribes to `cmd` after every connection and
//! hands each message to the command task (`agent::commands`; checks in [`crate::command`]),
//! whose answers it publishes.
//!
//! ## Shape
//! [`run_publisher`] (or [`Publisher::run`]) owns a rumqttc client; the event loop is polled in
//! its own task (`driver.rs`), which reconnects by itself with capped backoff, fails over
//! between the `[mqtt] url` endpoints, reports the broker's state through a `watch` channel
//! ([`BrokerState`], [`Publisher::broker_state`]) and tells the publisher, in order, when a
//! connection is up, which of its QoS ≥ 1 publications were acknowledged, and which were lost
//! with a connection. The publisher loop drains the results channel (detections), takes
//! records from the outbox ([`crate::outbox`]) while connected, checks camera states every
//! second and publishes `health` on its interval.
//!
//! ## Invariants
//! - Nothing blocks on the broker: the client's request queue holds [`REQUEST_CAPACITY`]
//!   requests and every publication uses `try_publish`.
//! - Detections are dropped, never queued for later, and counted on their camera:
//!   [`DropReason::BrokerDown`] while the broker is unreachable (including those lost in the
//!   client's queue when a connection ends), [`DropReason::PublishQueueFull`] when the request
//!   queue is full. `health` is skipped while the broker is unreachable; `status` is published
//!   again on every connection.
//! - Events are never dropped here: an outbox record is acknowledged to the outbox only when
//!   the broker has acknowledged every message of it; a record of a connection that ended is
//!   ignored and the outbox sends it again, in order, on the next connection. A record that
//!   does not fit in the request queue waits (in order) for room.
//! - Shutdown: stop waiting for results (those already queued are still handled), publish
//!   `offline` (QoS 1) and wait up to 3 s for its acknowledgement, send DISCONNECT, return.
//!   Unacknowledged events stay in the outbox. If the task is dropped or aborted instead, the
//!   connection closes without DISCONNECT and the broker publishes the last will: `offline`,
//!   with every camera `stopped`.
//! - Credentials never reach a log line or an error message.

mod connection;
mod driver;
pub mod payload;
pub mod topics;

pub use connection::{BrokerFailure, BrokerFailureKind};
pub use topics::Topics;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rumqttc::{AsyncClient, ClientError, LastWill, QoS};
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{Config, DeviceConfig, MqttConfig, Qos};
use crate::framepath::AnalysedFrame;
use crate::health::{CameraCounters, CameraState, Cameras, DropReason, ProcessSampler};
use crate::outbox::{DeliveryLink, Entry, Message, OutboxFigures, Outgoing, Stamp};
use driver::{Note, Tag, TaggedClient};
use payload::{
    BrokerHealth, CameraHealth, CameraStatus, DetectionsPayload, DeviceState, DroppedEventsPayload,
    EventPayload, HealthPayload, OutboxHealth, ProcessFigures, StatusPayload,
};

/// Requests the rumqttc client queues before `try_publish` fails (and a detection is dropped as
/// [`DropReason::PublishQueueFull`]).
pub const REQUEST_CAPACITY: usize = 256;
/// How often outbox records waiting for room in the request queue are tried again.
const HELD_RETRY_INTERVAL: Duration = Duration::from_millis(50);
/// How often camera states are compared with the last published `status`.
pub const STATUS_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long shutdown waits for the broker to acknowledge `offline`.
pub const OFFLINE_ACK_TIMEOUT: Duration = Duration::from_secs(3);
/// How long shutdown waits for DISCONNECT to be sent after `offline`.
pub const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The names [`schema_json`] knows.
pub const SCHEMA_NAMES: [&str; 8] = [
    "status",
    "detections",
    "health",
    "events",
    "command",
    "command-result",
    "command-audit",
    "config-state",
];

/// The JSON Schema (draft 2020-12) of a payload: `status`, `detections`, `health`, `events`
/// (the topic's last level), `command` or `command-result` (remote commands and their results,
/// [`crate::command`]); the full schema ids `watchpost.status/1` … work too.
pub fn schema_json(name: &str) -> Option<&'static str> {
    use crate::command::{COMMAND_SCHEMA, RESULT_SCHEMA};
    match name {
        "status" | payload::STATUS_SCHEMA => Some(include_str!("schemas/status.schema.json")),
        "detections" | payload::DETECTIONS_SCHEMA => {
            Some(include_str!("schemas/detections.schema.json"))
        }
        "health" | payload::HEALTH_SCHEMA => Some(include_str!("schemas/health.schema.json")),
        "events" | payload::EVENTS_SCHEMA => Some(include_str!("schemas/events.schema.json")),
        "command" | COMMAND_SCHEMA => Some(include_str!("schemas/command.schema.json")),
        "command-result" | RESULT_SCHEMA => {
            Some(include_str!("schemas/command-result.schema.json"))
        }
        "command-audit" | "watchpost.command-audit/1" => {
            Some(include_str!("schemas/command-audit.schema.json"))
        }
        "config-state" | "watchpost.config-state/1" => {
            Some(include_str!("schemas/config-state.schema.json"))
        }
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

/// Remote commands through the publisher's connection ([`Publisher::with_commands`]): the
/// publisher subscribes (QoS 1) to the command topic after every connection and hands each
/// message on; the command task answers through `outgoing`.
#[derive(Debug)]
pub struct CommandLink {
    /// Messages that arrive on the command topic. Bounded ([`crate::command::MAX_WAITING`]):
    /// when full, a message is answered `busy` without being read.
    pub incoming: mpsc::Sender<IncomingCommand>,
    /// What the command task wants published.
    pub outgoing: mpsc::Receiver<CommandPublication>,
}

/// A message that arrived on the command topic, as the broker delivered it.
#[derive(Clone, Debug)]
pub struct IncomingCommand {
    pub topic: String,
    pub payload: Vec<u8>,
    /// The MQTT retain flag.
    pub retained: bool,
}

/// A publication the command task asks for.
#[derive(Debug)]
pub enum CommandPublication {
    /// QoS 1 (results, audit records, snapshots, `config/state`). Dropped and logged when the
    /// broker is unreachable or the request queue is full.
    Message {
        topic: String,
        payload: Vec<u8>,
        retain: bool,
    },
    /// `status` and `health` now (the command `status.publish`).
    StatusNow,
}

/// The broker connection as the publisher sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerState {
    pub connected: bool,
    /// Successful connections (CONNACKs) so far.
    pub connections: u64,
    /// Successful connections after the first.
    pub reconnects: u64,
    /// The endpoint (`host:port`) connected to.
    pub endpoint: Option<String>,
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
    cameras: Arc<Cameras>,
    /// One per `[mqtt] url` endpoint.
    endpoints: Vec<rumqttc::MqttOptions>,
    broker_tx: watch::Sender<BrokerState>,
    broker_rx: watch::Receiver<BrokerState>,
    commands: Option<CommandLink>,
}

impl Publisher {
    /// Checks the configuration (TLS roots and client certificates are read here) and prepares
    /// the client. [`AnalysedFrame::camera`] is an id of `cameras`; `status` and `health` list
    /// its live cameras as they are at each publication (they may change while running).
    ///
    /// # Errors
    /// A CA, certificate or key file that cannot be used, or `mqtts://` without any CA
    /// certificates.
    pub fn new(config: PublisherConfig, cameras: Arc<Cameras>) -> Result<Publisher, PublishError> {
        let topics = config.topics();
        let will_payload = StatusPayload::new(
            DeviceState::Offline,
            config.started_at,
            cameras
                .live_stats()
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
        let endpoints = (0..config.mqtt.urls.len())
            .map(|endpoint| connection::mqtt_options(&config.mqtt, endpoint, will.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let (broker_tx, broker_rx) = watch::channel(BrokerState::default());
        Ok(Publisher {
            config,
            cameras,
            endpoints,
            broker_tx,
            broker_rx,
            commands: None,
        })
    }

    /// Takes remote commands too (see [`CommandLink`]).
    #[must_use]
    pub fn with_commands(mut self, link: CommandLink) -> Publisher {
        self.commands = Some(link);
        self
    }

    /// The broker's state, updated as it changes (for `watchpost status`).
    pub fn broker_state(&self) -> watch::Receiver<BrokerState> {
        self.broker_rx.clone()
    }

    /// Publishes until `shutdown` is cancelled, then publishes `offline` and disconnects.
    /// Events come from `outbox` (none without one).
    ///
    /// # Errors
    /// Only if the connection task dies unexpectedly; broker failures are retried.
    pub async fn run(
        self,
        results: mpsc::Receiver<AnalysedFrame>,
        outbox: Option<DeliveryLink>,
        shutdown: CancellationToken,
    ) -> Result<PublisherReport, PublishError> {
        let urls = self
            .config
            .mqtt
            .urls
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let span = tracing::info_span!("mqtt", broker = %urls);
        self.run_in_span(results, outbox, shutdown)
            .instrument(span)
            .await
    }

    async fn run_in_span(
        self,
        mut results: mpsc::Receiver<AnalysedFrame>,
        mut outbox: Option<DeliveryLink>,
        shutdown: CancellationToken,
    ) -> Result<PublisherReport, PublishError> {
        let Publisher {
            config,
            cameras,
            endpoints,
            broker_tx,
            broker_rx,
            commands,
        } = self;
        let topics = config.topics();
        let (subscription, mut command_out) = match commands {
            Some(CommandLink { incoming, outgoing }) => (
                Some(driver::Subscription {
                    topic: topics.command(),
                    result_topic: topics.command_result(),
                    incoming,
                }),
                Some(outgoing),
            ),
            None => (None, None),
        };

        let (client, eventloop) = AsyncClient::new(endpoints[0].clone(), REQUEST_CAPACITY);
        let client = TaggedClient::new(client);
        // Driver -> here: unbounded on purpose, because the driver must never wait on it (that
        // would stall the event loop, and with it keep-alives and PUBACKs). Bounded in fact:
        // one note per connection, and one per publication acknowledged or lost, of which no
        // more can be outstanding than the request channel (REQUEST_CAPACITY) and rumqttc's
        // in-flight window hold.
        let (notes_tx, mut notes) = mpsc::unbounded_channel();
        let stop_driver = CancellationToken::new();
        // If this future is dropped (task aborted, runtime gone), the driver stops too and the
        // connection closes without DISCONNECT: the broker publishes the last will.
        let _stop_driver_on_drop = stop_driver.clone().drop_guard();
        let driver = driver::Driver {
            eventloop,
            endpoint_names: config
                .mqtt
                .urls
                .iter()
                .map(|u| format!("{}:{}", u.host, u.port))
                .collect(),
            endpoints,
            unverified_tls: connection::tls_unverified(&config.mqtt),
            client: client.clone(),
            state: broker_tx,
            notes: notes_tx,
            stop: stop_driver.clone(),
            commands: subscription,
        };
        let mut driver_task = tokio::spawn(driver.run().in_current_span());

        let outbox_stats = outbox.as_ref().map(DeliveryLink::stats);
        let mut out = Out {
            client,
            topics,
            detections_qos: qos(config.mqtt.detections_qos),
            model: config.model.clone(),
            started_at: config.started_at,
            cameras,
            published_states: None,
            dropping_broker_down: false,
            dropping_queue_full: false,
            epoch: None,
            parts: HashMap::new(),
            held: VecDeque::new(),
            offline_acked: false,
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
        let mut retry_tick = tokio::time::interval(HELD_RETRY_INTERVAL);
        retry_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
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
                Some(note) = notes.recv() => out.on_note(note, outbox.as_ref()),
                record = next_record(&mut outbox), if outbox.is_some() => match record {
                    Some(record) => out.publish_record(record),
                    None => {
                        tracing::debug!("the outbox stopped");
                        outbox = None;
                    }
                },
                _ = retry_tick.tick(), if !out.held.is_empty() => out.flush_held(),
                publication = next_command_publication(&mut command_out), if command_out.is_some() => match publication {
                    Some(CommandPublication::Message { topic, payload, retain }) => {
                        let connected = broker_rx.borrow().connected;
                        out.publish_for_commands(topic, payload, retain, connected);
                    }
                    Some(CommandPublication::StatusNow) => {
                        if broker_rx.borrow().connected {
                            out.publish_status(DeviceState::Online);
                        }
                        let broker = broker_rx.borrow().clone();
                        let figures = outbox_stats.as_ref().map(|s| s.figures()).unwrap_or_default();
                        out.publish_health(&mut health, &config, &broker, &figures);
                    }
                    None => command_out = None,
                },
                _ = status_tick.tick() => {
                    if broker_rx.borrow().connected {
                        out.publish_status_if_changed();
                    }
                }
                _ = health_tick.tick() => {
                    let broker = broker_rx.borrow().clone();
                    let figures = outbox_stats.as_ref().map(|s| s.figures()).unwrap_or_default();
                    out.publish_health(&mut health, &config, &broker, &figures);
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

        // Shutdown. Results already waiting are still handled; no waiting for more. Events
        // not acknowledged stay in the outbox for the next run.
        let connected = broker_rx.borrow().connected;
        for _ in 0..results.len() {
            let Ok(frame) = results.try_recv() else { break };
            out.publish_detections(&frame, connected);
        }
        drop(results);
        out.report.broker_reconnects = broker_rx.borrow().reconnects;
        let mut driver_done = false;
        if connected {
            out.report.offline_acked = out.publish_offline(&mut notes, outbox.as_ref()).await;
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

async fn next_record(outbox: &mut Option<DeliveryLink>) -> Option<Outgoing> {
    match outbox {
        Some(link) => link.next().await,
        None => std::future::pending().await,
    }
}

/// The next publication the command task asks for; pending forever without one.
async fn next_command_publication(
    out: &mut Option<mpsc::Receiver<CommandPublication>>,
) -> Option<CommandPublication> {
    match out {
        Some(out) => out.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs a publisher: [`Publisher::new`], then [`Publisher::run`]. Use [`Publisher`] directly
/// to get its [`BrokerState`] channel.
///
/// # Errors
/// As [`Publisher::new`] and [`Publisher::run`].
pub async fn run_publisher(
    config: PublisherConfig,
    cameras: Arc<Cameras>,
    results: mpsc::Receiver<AnalysedFrame>,
    outbox: Option<DeliveryLink>,
    shutdown: CancellationToken,
) -> Result<PublisherReport, PublishError> {
    Publisher::new(config, cameras)?
        .run(results, outbox, shutdown)
        .await
}

/// The messages of an outbox record, made when the outbox numbers an entry: for an event, its
/// snapshot (when it has one) then the event; for a drop announcement, the `events_dropped`
/// event.
pub fn outbox_stamp(topics: Topics) -> Stamp {
    Box::new(move |camera, seq, event_id, entry| match entry {
        Entry::Event(event) => {
            let mut messages = Vec::with_capacity(2);
            let snapshot_topic = event.snapshot.as_ref().map(|snapshot| {
                let topic = topics.snapshot(camera, event_id);
                messages.push(Message {
                    topic: topic.clone(),
                    payload: snapshot.jpeg.clone(),
                });
                topic
            });
            let payload = EventPayload::new(camera, seq, event_id, event, snapshot_topic);
            if let Some(bytes) = to_json(&payload) {
                messages.push(Message {
                    topic: topics.events(camera),
                    payload: bytes,
                });
            }
            messages
        }
        Entry::Dropped(notice) => {
            let payload = DroppedEventsPayload::new(camera, seq, event_id, notice);
            to_json(&payload)
                .map(|bytes| Message {
                    topic: topics.events(camera),
                    payload: bytes,
                })
                .into_iter()
                .collect()
        }
    })
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

/// The counters at the start of the current `health` interval, by camera id.
struct HealthWindow {
    since: Instant,
    counters: HashMap<usize, CameraCounters>,
    sampler: ProcessSampler,
}

impl HealthWindow {
    fn new(cameras: &Cameras) -> HealthWindow {
        let mut sampler = ProcessSampler::new();
        // The first sample starts the CPU interval.
        let _ = sampler.sample();
        HealthWindow {
            since: Instant::now(),
            counters: live_counters(cameras).into_iter().collect(),
            sampler,
        }
    }
}

/// The live cameras' counters now, by id.
fn live_counters(cameras: &Cameras) -> Vec<(usize, CameraCounters)> {
    cameras
        .live()
        .into_iter()
        .map(|(id, c)| (id, c.snapshot()))
        .collect()
}

/// An outbox record not yet fully handed to the client (its request channel was full).
struct Held {
    epoch: u64,
    id: u64,
    messages: VecDeque<Message>,
}

/// The publishing side: the client and what has been published.
struct Out {
    client: TaggedClient,
    topics: Topics,
    detections_qos: QoS,
    model: String,
    started_at: SystemTime,
    cameras: Arc<Cameras>,
    /// The cameras and their states in the last `status` queued; `None` = publish at the next
    /// check.
    published_states: Option<Vec<CameraStatus>>,
    /// A drop was logged since the broker came back / since the last queued detection.
    dropping_broker_down: bool,
    dropping_queue_full: bool,
    /// The current connection's number, while connected.
    epoch: Option<u64>,
    /// Outbox record id → messages not yet acknowledged, for records of the current epoch.
    parts: HashMap<u64, usize>,
    /// Records waiting for room in the client's request channel, in order.
    held: VecDeque<Held>,
    offline_acked: bool,
    report: PublisherReport,
}

impl Out {
    fn on_note(&mut self, note: Note, outbox: Option<&DeliveryLink>) {
        match note {
            Note::Connected(epoch) => {
                self.epoch = Some(epoch);
                self.parts.clear();
                self.held.clear();
                self.dropping_broker_down = false;
                self.publish_status(DeviceState::Online);
                if let Some(link) = outbox {
                    link.connected(epoch);
                }
            }
            Note::Acked(Tag::Outbox { epoch, id }) => {
                if Some(epoch) != self.epoch {
                    return;
                }
                if let Some(remaining) = self.parts.get_mut(&id) {
                    *remaining = remaining.saturating_sub(1);
                    if *remaining == 0 {
                        self.parts.remove(&id);
                        if let Some(link) = outbox {
                            link.acked(epoch, id);
                        }
                    }
                }
            }
            Note::Acked(Tag::Offline) => self.offline_acked = true,
            Note::Acked(_) => {}
            Note::Lost(tags) => {
                let was_connected = self.epoch.take().is_some();
                self.parts.clear();
                self.held.clear();
                for tag in tags {
                    if let Tag::Detections(camera) = tag
                        && let Some(stats) = self.cameras.get(camera)
                    {
                        stats.count_drop(DropReason::BrokerDown);
                    }
                }
                if was_connected && let Some(link) = outbox {
                    link.disconnected();
                }
            }
        }
    }

    /// Hands an outbox record's messages to the client (QoS 1), in order.
    fn publish_record(&mut self, record: Outgoing) {
        if Some(record.epoch) != self.epoch {
            // Handed out for a connection that has ended: the outbox sends it again.
            return;
        }
        self.parts.insert(record.id, record.messages.len());
        if record.messages.is_empty() {
            // Nothing to send (a payload that could not be serialised): done.
            self.parts.remove(&record.id);
            return;
        }
        self.held.push_back(Held {
            epoch: record.epoch,
            id: record.id,
            messages: record.messages.into(),
        });
        self.flush_held();
    }

    /// Hands held records to the client until its request channel is full.
    fn flush_held(&mut self) {
        while let Some(held) = self.held.front_mut() {
            while let Some(message) = held.messages.pop_front() {
                let tag = Tag::Outbox {
                    epoch: held.epoch,
                    id: held.id,
                };
                if let Err(e) = self.client.try_publish(
                    message.topic.clone(),
                    QoS::AtLeastOnce,
                    false,
                    message.payload.clone(),
                    tag,
                ) {
                    if matches!(e, ClientError::TryRequest(_)) {
                        // Full: try again shortly.
                        held.messages.push_front(message);
                        return;
                    }
                    // Closed (shutting down) or an invalid topic: never sendable as it is.
                    tracing::error!(topic = %message.topic, "outbox message not publishable: {e}");
                }
            }
            self.held.pop_front();
        }
    }

    /// The live cameras and their states now.
    fn camera_states(&self) -> Vec<CameraStatus> {
        self.cameras
            .live_stats()
            .iter()
            .map(|c| CameraStatus {
                name: c.name.clone(),
                state: c.state(),
            })
            .collect()
    }

    fn status_payload(&self, state: DeviceState, states: &[CameraStatus]) -> StatusPayload {
        StatusPayload::new(state, self.started_at, states.to_vec())
    }

    fn publish_status(&mut self, state: DeviceState) {
        let states = self.camera_states();
        let Some(bytes) = to_json(&self.status_payload(state, &states)) else {
            return;
        };
        match self.client.try_publish(
            self.topics.status(),
            QoS::AtLeastOnce,
            true,
            bytes,
            Tag::Status,
        ) {
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

    /// A command task's publication (QoS 1, untracked): dropped and logged when it cannot go.
    fn publish_for_commands(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        retain: bool,
        connected: bool,
    ) {
        if !connected {
            tracing::warn!(topic = %topic, "broker unreachable: command output not published");
            return;
        }
        if self
            .client
            .try_publish(
                topic.clone(),
                QoS::AtLeastOnce,
                retain,
                payload,
                Tag::Untracked,
            )
            .is_err()
        {
            tracing::warn!(topic = %topic, "request queue full: command output not published");
        }
    }

    fn publish_status_if_changed(&mut self) {
        if self.published_states.as_deref() != Some(self.camera_states().as_slice()) {
            self.publish_status(DeviceState::Online);
        }
    }

    fn publish_detections(&mut self, frame: &AnalysedFrame, connected: bool) {
        if frame.objects.is_empty() {
            return;
        }
        let Some(stats) = self.cameras.get(frame.camera) else {
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
        let tag = if self.detections_qos == QoS::AtMostOnce {
            Tag::Untracked
        } else {
            Tag::Detections(frame.camera)
        };
        match self.client.try_publish(
            self.topics.detections(&stats.name),
            self.detections_qos,
            false,
            bytes,
            tag,
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
        outbox: &OutboxFigures,
    ) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let elapsed = now.duration_since(window.since);
        let process = ProcessFigures::from(window.sampler.sample());
        let live = self.cameras.live();
        let counters: Vec<(usize, CameraCounters)> =
            live.iter().map(|(id, c)| (*id, c.snapshot())).collect();
        let cameras = live
            .iter()
            .zip(&counters)
            .map(|((_, camera), (id, now))| {
                // A camera added within this interval: nothing to compare with until the next.
                let earlier = window.counters.get(id).unwrap_or(now);
                CameraHealth::from_counters(&camera.name, now, earlier, elapsed, wall)
            })
            .collect();
        window.since = now;
        window.counters = counters.into_iter().collect();
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
            OutboxHealth::new(outbox, wall),
        );
        let Some(bytes) = to_json(&payload) else {
            return;
        };
        match self.client.try_publish(
            self.topics.health(),
            QoS::AtMostOnce,
            false,
            bytes,
            Tag::Untracked,
        ) {
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

    /// Queues `offline` and waits for its acknowledgement (up to [`OFFLINE_ACK_TIMEOUT`]),
    /// still handling the driver's notes meanwhile. `true` if it was acknowledged.
    async fn publish_offline(
        &mut self,
        notes: &mut mpsc::UnboundedReceiver<Note>,
        outbox: Option<&DeliveryLink>,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + OFFLINE_ACK_TIMEOUT;
        let states = self.camera_states();
        let Some(bytes) = to_json(&self.status_payload(DeviceState::Offline, &states)) else {
            return false;
        };
        let status = self.topics.status();
        // Wait for room in the request queue, bounded by the deadline.
        loop {
            match self.client.try_publish(
                status.clone(),
                QoS::AtLeastOnce,
                true,
                bytes.clone(),
                Tag::Offline,
            ) {
                Ok(()) => break,
                Err(ClientError::TryRequest(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => return false,
            }
        }
        self.offline_acked = false;
        while !self.offline_acked {
            match tokio::time::timeout_at(deadline, notes.recv()).await {
                Ok(Some(note)) => self.on_note(note, outbox),
                Ok(None) | Err(_) => return false,
            }
        }
        self.report.status_published += 1;
        true
    }
}

/// Connects once to the endpoint `config.urls[endpoint]` as the agent would (same credentials,
/// TLS set-up and files), waits for the broker's CONNACK, and disconnects: for
/// `watchpost doctor`. It publishes nothing, registers no last will (so it cannot publish
/// `offline` for a running agent), and connects as `{client_id}-doctor` so that a running agent,
/// which has the configured client id, keeps its connection.
///
/// # Errors
/// Why the connection failed, in the words of the agent's log (no credentials): refused, bad
/// user name or password, TLS, no answer within `timeout`, or a TLS file that cannot be used.
///
/// # Panics
/// If `endpoint` is not an index of `config.urls`.
pub async fn check_broker(
    config: &MqttConfig,
    endpoint: usize,
    timeout: Duration,
) -> Result<(), BrokerFailure> {
    // The agent's options (TLS, credentials), rebuilt without the last will.
    let unused_will = LastWill::new("unused", Vec::<u8>::new(), QoS::AtMostOnce, false);
    let agent_options = connection::mqtt_options(config, endpoint, unused_will)
        .map_err(|e| BrokerFailure::new(BrokerFailureKind::TlsFiles, e.to_string()))?;
    let (host, port) = agent_options.broker_address();
    let client_id = format!("{}-doctor", config.client_id);
    let mut options = rumqttc::MqttOptions::new(client_id, host, port);
    options
        .set_keep_alive(agent_options.keep_alive())
        .set_clean_session(true)
        .set_transport(agent_options.transport());
    if let Some(login) = agent_options.credentials() {
        options.set_credentials(login.username, login.password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 4);
    let connected = tokio::time::timeout(timeout, async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(BrokerFailure::of(&e)),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(BrokerFailure::new(
            BrokerFailureKind::Timeout,
            format!("no answer within {}s", timeout.as_secs_f32()),
        ))
    });
    if connected.is_ok() {
        // A clean DISCONNECT; the check has passed whatever happens to it.
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(event) = eventloop.poll().await {
                if matches!(
                    event,
                    rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)
                ) {
                    break;
                }
            }
        })
        .await;
    }
    connected
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
    fn command_schemas_name_every_refusal_code_and_command() {
        use crate::command::{CommandName, Refusal};
        let result: serde_json::Value =
            serde_json::from_str(schema_json("command-result").unwrap()).unwrap();
        let mut codes: Vec<serde_json::Value> = vec![serde_json::Value::Null];
        codes.extend(Refusal::CODES.map(serde_json::Value::from));
        assert_eq!(
            result["properties"]["code"]["enum"].as_array().unwrap(),
            &codes
        );
        let command: serde_json::Value =
            serde_json::from_str(schema_json("command").unwrap()).unwrap();
        let mut named: Vec<&str> = Vec::new();
        for rule in command["allOf"].as_array().unwrap() {
            let names = &rule["if"]["properties"]["command"];
            match names["enum"].as_array() {
                Some(list) => named.extend(list.iter().map(|v| v.as_str().unwrap())),
                None => named.push(names["const"].as_str().unwrap()),
            }
        }
        named.sort_unstable();
        let mut all: Vec<&str> = CommandName::ALL.iter().map(|c| c.as_str()).collect();
        all.sort_unstable();
        assert_eq!(named, all);
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
