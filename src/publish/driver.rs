//! The task that polls rumqttc's event loop: reconnects with capped backoff, fails over between
//! the broker's endpoints, reports the broker's state, and tells the publisher which of its
//! messages the broker acknowledged.
//!
//! rumqttc's `EventLoop::poll` returns an error for every failed connection attempt or lost
//! connection and reconnects on the next call; this task keeps calling it after a delay.
//! After a failure the next attempt goes to the next endpoint in `[mqtt] url`; the delay is
//! short while untried endpoints remain, and grows (1 s, doubling, at most 30 s, minus up to
//! 20% jitter so a fleet does not reconnect in step) once every endpoint has failed in turn.
//!
//! ## Which PUBACK is whose ([`TaggedClient`])
//! rumqttc gives no handle per publication. It does handle requests strictly in the order they
//! enter its request channel, and reports every publication it writes as
//! `Outgoing::Publish(pkid)` (or `Outgoing::AwaitAck(pkid)` when the packet id is still taken,
//! followed later by `Outgoing::Publish(pkid)` for the same publication) in that order. So
//! every publication carries a [`Tag`], queued in the same order under the same lock as the
//! request itself; the driver pairs each `Outgoing::Publish` with the next tag, remembers
//! packet id → tag, and reports [`Note::Acked`] when the PUBACK (QoS 1) or PUBCOMP (QoS 2)
//! arrives. When a connection ends, every request not acknowledged (in flight, or still in the
//! channel) is discarded (clean session) and its tag returned in [`Note::Lost`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::{
    AsyncClient, ClientError, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::BrokerState;
use super::connection::{Backoff, describe, jitter};

/// The delay before trying the next endpoint while some have not failed yet in this round.
const NEXT_ENDPOINT_DELAY: Duration = Duration::from_millis(200);

/// What a publication was, so its fate can be reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    /// Nothing to report (QoS 0, or nobody waits for it).
    Untracked,
    Status,
    Offline,
    /// A detections message (QoS ≥ 1) of camera index `.0`.
    Detections(usize),
    /// Part of outbox record `id`, handed out in outbox connection `epoch`.
    Outbox {
        epoch: u64,
        id: u64,
    },
}

/// What the driver tells the publisher, in the order it happened.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Note {
    /// Connection number `.0` (1, 2, …) is up.
    Connected(u64),
    /// The broker acknowledged a QoS ≥ 1 publication.
    Acked(Tag),
    /// The connection ended (or an attempt failed); these publications were discarded
    /// unacknowledged.
    Lost(Vec<Tag>),
}

/// An `AsyncClient` whose publications carry a [`Tag`].
#[derive(Clone, Debug)]
pub(crate) struct TaggedClient {
    client: AsyncClient,
    /// Tags of publications in the request channel, in channel order. Locked around each
    /// request and around the driver's clean-up after a lost connection, so the two always
    /// agree.
    tags: Arc<Mutex<VecDeque<Tag>>>,
}

impl TaggedClient {
    pub(crate) fn new(client: AsyncClient) -> TaggedClient {
        TaggedClient {
            client,
            tags: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Tag>> {
        self.tags.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a publication without waiting; fails when the request channel is full.
    pub(crate) fn try_publish(
        &self,
        topic: String,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
        tag: Tag,
    ) -> Result<(), ClientError> {
        let mut tags = self.lock();
        tags.push_back(tag);
        let sent = self.client.try_publish(topic, qos, retain, payload);
        if sent.is_err() {
            // Ours is the last one: the lock is held since it was pushed.
            tags.pop_back();
        }
        sent
    }

    /// Queues DISCONNECT, waiting for room in the channel.
    pub(crate) async fn disconnect(&self) -> Result<(), ClientError> {
        self.client.disconnect().await
    }
}

/// Polls the event loop until stopped; owns it.
pub(crate) struct Driver {
    pub(crate) eventloop: EventLoop,
    /// The options of every endpoint, in `[mqtt] url` order (the event loop starts with the
    /// first).
    pub(crate) endpoints: Vec<MqttOptions>,
    /// Endpoint names for the log (`host:port`).
    pub(crate) endpoint_names: Vec<String>,
    /// `tls_verify = false`: warn at every connection.
    pub(crate) unverified_tls: bool,
    pub(crate) client: TaggedClient,
    pub(crate) state: watch::Sender<BrokerState>,
    pub(crate) notes: mpsc::UnboundedSender<Note>,
    pub(crate) stop: CancellationToken,
    /// Remote commands: subscribed after every connection, handed on as they arrive.
    pub(crate) commands: Option<Subscription>,
}

/// The command topic, and where its messages go.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) topic: String,
    /// Where a message that finds `incoming` full is answered (`busy`).
    pub(crate) result_topic: String,
    /// Bounded ([`crate::command::MAX_WAITING`]); when full, the message is refused as `busy`
    /// here, without being read, and logged.
    pub(crate) incoming: mpsc::Sender<super::IncomingCommand>,
}

/// Packet id → tag of publications written and not yet acknowledged.
#[derive(Debug, Default)]
struct InFlight {
    by_pkid: HashMap<u16, Tag>,
    /// A publication whose packet id was still taken (`AwaitAck`): sent after that PUBACK.
    collided: Option<(u16, Tag)>,
}

impl Driver {
    /// Runs until `stop` is cancelled, a DISCONNECT has been sent, or every client handle is
    /// gone.
    pub(crate) async fn run(mut self) {
        let mut backoff = Backoff::new();
        let mut endpoint = 0;
        let mut failed_in_round = 0;
        let mut ever_connected = false;
        let mut last_failure: Option<String> = None;
        let mut in_flight = InFlight::default();
        loop {
            let polled = tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                polled = self.eventloop.poll() => polled,
            };
            match polled {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    failed_in_round = 0;
                    let again = ever_connected;
                    ever_connected = true;
                    last_failure = None;
                    let name = &self.endpoint_names[endpoint];
                    if again {
                        tracing::info!(endpoint = %name, "connected to the MQTT broker again");
                    } else {
                        tracing::info!(endpoint = %name, "connected to the MQTT broker");
                    }
                    if self.unverified_tls {
                        tracing::warn!(
                            endpoint = %name,
                            "the broker's TLS certificate is NOT verified (mqtt.tls_verify = false): anyone on the path can read and change this traffic"
                        );
                    }
                    // A clean session keeps no subscription: subscribe again every time, and before
                    // the state says connected: what that sets off (config/state) goes after it.
                    if let Some(commands) = &self.commands
                        && let Err(e) = self
                            .client
                            .client
                            .try_subscribe(&commands.topic, QoS::AtLeastOnce)
                    {
                        tracing::warn!(topic = %commands.topic, "cannot subscribe to the command topic: {e}");
                    }
                    let mut connections = 0;
                    self.state.send_modify(|s| {
                        s.connected = true;
                        s.connections += 1;
                        s.endpoint = Some(name.clone());
                        if again {
                            s.reconnects += 1;
                        }
                        connections = s.connections;
                    });
                    let _ = self.notes.send(Note::Connected(connections));
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => self.received(publish),
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => match in_flight.collided {
                    Some((collided, tag)) if collided == pkid => {
                        in_flight.collided = None;
                        in_flight.by_pkid.insert(pkid, tag);
                    }
                    _ => {
                        let tag = self.client.lock().pop_front();
                        if pkid != 0
                            && let Some(tag) = tag
                        {
                            in_flight.by_pkid.insert(pkid, tag);
                        }
                    }
                },
                Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => {
                    let tag = self.client.lock().pop_front().unwrap_or(Tag::Untracked);
                    in_flight.collided = Some((pkid, tag));
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => self.acked(&mut in_flight, ack.pkid),
                Ok(Event::Incoming(Packet::PubComp(comp))) => {
                    self.acked(&mut in_flight, comp.pkid);
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    tracing::debug!("disconnected from the MQTT broker");
                    break;
                }
                Ok(_) => {}
                Err(ConnectionError::RequestsDone) => break,
                Err(error) => {
                    let cause = describe(&error);
                    let was_connected = self.state.borrow().connected;
                    let lost = self.discard_pending(&mut in_flight);
                    let name = self.endpoint_names[endpoint].clone();
                    // The next attempt goes to the next endpoint; the delay grows only once
                    // every endpoint has failed in turn.
                    failed_in_round += 1;
                    let delay = if failed_in_round < self.endpoints.len() {
                        NEXT_ENDPOINT_DELAY
                    } else {
                        failed_in_round = 0;
                        backoff.next_delay(jitter())
                    };
                    if self.endpoints.len() > 1 {
                        endpoint = (endpoint + 1) % self.endpoints.len();
                        self.eventloop.mqtt_options = self.endpoints[endpoint].clone();
                    }
                    if was_connected {
                        tracing::warn!(
                            endpoint = %name,
                            cause = %cause,
                            unacknowledged = lost,
                            "lost the connection to the MQTT broker; reconnecting"
                        );
                    } else if last_failure.as_deref() != Some(cause.as_str()) {
                        tracing::warn!(
                            endpoint = %name,
                            cause = %cause,
                            "cannot connect to the MQTT broker; retrying (every {}–{} s)",
                            Backoff::MIN.as_secs(),
                            Backoff::MAX.as_secs()
                        );
                    } else {
                        tracing::debug!(endpoint = %name, cause = %cause, ?delay, "MQTT connection attempt failed");
                    }
                    self.state.send_modify(|s| {
                        s.connected = false;
                        s.endpoint = None;
                        s.last_error = Some(cause.clone());
                    });
                    last_failure = Some(cause);
                    tokio::select! {
                        biased;
                        () = self.stop.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        self.state.send_modify(|s| {
            s.connected = false;
            s.endpoint = None;
        });
    }

    /// A message from the broker: a command (the only subscription) goes to the command task,
    /// or, when too many are waiting, is answered `busy` here.
    fn received(&self, publish: rumqttc::Publish) {
        let Some(commands) = &self.commands else {
            return;
        };
        let message = super::IncomingCommand {
            topic: publish.topic,
            payload: publish.payload.to_vec(),
            retained: publish.retain,
        };
        let Err(mpsc::error::TrySendError::Full(message)) = commands.incoming.try_send(message)
        else {
            return;
        };
        let refused = crate::command::Refused::busy(crate::command::Received {
            topic: &message.topic,
            payload: &message.payload,
            retained: message.retained,
        });
        tracing::warn!(
            id = refused.id.as_deref().unwrap_or("-"),
            "command refused: {}",
            refused.refusal
        );
        if let Some(result) = refused.result(std::time::SystemTime::now()) {
            let _ = self.client.try_publish(
                commands.result_topic.clone(),
                QoS::AtLeastOnce,
                false,
                result.to_json().into_bytes(),
                Tag::Untracked,
            );
        }
    }

    fn acked(&self, in_flight: &mut InFlight, pkid: u16) {
        if let Some(tag) = in_flight.by_pkid.remove(&pkid)
            && tag != Tag::Untracked
        {
            let _ = self.notes.send(Note::Acked(tag));
        }
    }

    /// After a lost connection rumqttc keeps what was queued or unacknowledged to send it again;
    /// with a clean session it would be discarded at the next connection anyway. Discards it
    /// now, with the tags of everything in the request channel, and reports them as lost.
    /// Returns how many publications were lost.
    fn discard_pending(&mut self, in_flight: &mut InFlight) -> usize {
        let mut tags = self.client.lock();
        // `clean` moves what is still in the request channel into `pending` too; under the
        // lock, no publication can enter the channel meanwhile.
        self.eventloop.clean();
        self.eventloop.pending.clear();
        let mut lost: Vec<Tag> = in_flight.by_pkid.drain().map(|(_, tag)| tag).collect();
        lost.extend(in_flight.collided.take().map(|(_, tag)| tag));
        lost.extend(tags.drain(..));
        drop(tags);
        let count = lost.len();
        lost.retain(|tag| *tag != Tag::Untracked);
        let _ = self.notes.send(Note::Lost(lost));
        count
    }
}
