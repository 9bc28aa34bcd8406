//! The task that polls rumqttc's event loop, reconnects with capped backoff, and reports the
//! broker's state.
//!
//! rumqttc's `EventLoop::poll` returns an error for every failed connection attempt or lost
//! connection and reconnects on the next call; this task keeps calling it after a delay
//! (1 s, doubling, at most 30 s, minus up to 20% jitter so a fleet does not reconnect in step).

use std::collections::HashMap;
use std::sync::Arc;

use rumqttc::{ConnectionError, Event, EventLoop, Outgoing, Packet, Request};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::connection::{Backoff, describe, jitter};
use super::{BrokerState, Topics};
use crate::health::{CameraStats, DropReason};
/// Which camera a queued detections message belongs to, to count it when it is lost.
pub(crate) struct DetectionOwners {
    topics: Topics,
    cameras: HashMap<String, Arc<CameraStats>>,
}

impl DetectionOwners {
    pub(crate) fn new(topics: Topics, cameras: &[Arc<CameraStats>]) -> DetectionOwners {
        DetectionOwners {
            topics,
            cameras: cameras
                .iter()
                .map(|c| (c.name.as_str().to_owned(), Arc::clone(c)))
                .collect(),
        }
    }

    fn owner(&self, topic: &str) -> Option<&CameraStats> {
        let camera = self.topics.camera_of_detections(topic)?;
        self.cameras.get(camera).map(Arc::as_ref)
    }
}

/// Polls the event loop until stopped; owns it.
pub(crate) struct Driver {
    pub(crate) eventloop: EventLoop,
    pub(crate) state: watch::Sender<BrokerState>,
    /// Set once the shutdown marker (an UNSUBSCRIBE queued right after `offline`) has been sent
    /// and nothing QoS ≥ 1 is in flight any more: `offline` was acknowledged.
    pub(crate) flushed: watch::Sender<bool>,
    pub(crate) owners: DetectionOwners,
    pub(crate) stop: CancellationToken,
}

impl Driver {
    /// Runs until `stop` is cancelled, a DISCONNECT has been sent, or every client handle is
    /// gone.
    pub(crate) async fn run(mut self) {
        let mut backoff = Backoff::new();
        let mut ever_connected = false;
        let mut last_failure: Option<String> = None;
        let mut marker_sent = false;
        loop {
            let polled = tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                polled = self.eventloop.poll() => polled,
            };
            match polled {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    marker_sent = false;
                    let again = ever_connected;
                    ever_connected = true;
                    last_failure = None;
                    if again {
                        tracing::info!("connected to the MQTT broker again");
                    } else {
                        tracing::info!("connected to the MQTT broker");
                    }
                    self.state.send_modify(|s| {
                        s.connected = true;
                        s.connections += 1;
                        if again {
                            s.reconnects += 1;
                        }
                    });
                }
                Ok(Event::Outgoing(Outgoing::Unsubscribe(_))) => marker_sent = true,
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    tracing::debug!("disconnected from the MQTT broker");
                    break;
                }
                Ok(_) => {}
                Err(ConnectionError::RequestsDone) => break,
                Err(error) => {
                    marker_sent = false;
                    let cause = describe(&error);
                    let was_connected = self.state.borrow().connected;
                    let lost_detections = self.drop_pending();
                    let delay = backoff.next_delay(jitter());
                    if was_connected {
                        tracing::warn!(
                            cause = %cause,
                            lost_detections,
                            "lost the connection to the MQTT broker; reconnecting"
                        );
                    } else if last_failure.as_deref() != Some(cause.as_str()) {
                        tracing::warn!(
                            cause = %cause,
                            "cannot connect to the MQTT broker; retrying (every {}–{} s)",
                            Backoff::MIN.as_secs(),
                            Backoff::MAX.as_secs()
                        );
                    } else {
                        tracing::debug!(cause = %cause, ?delay, "MQTT connection attempt failed");
                    }
                    self.state.send_modify(|s| {
                        s.connected = false;
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
            if marker_sent && self.eventloop.state.inflight() == 0 {
                self.flushed.send_replace(true);
            }
        }
        self.state.send_modify(|s| s.connected = false);
    }

    /// After a lost connection rumqttc keeps what was queued or unacknowledged to send it again;
    /// with a clean session it would be discarded at the next connection anyway. Detections
    /// among it are counted as [`DropReason::BrokerDown`] on their camera (status is published
    /// again on connection; a late `health` is worthless). Returns how many were detections.
    fn drop_pending(&mut self) -> u64 {
        let mut lost = 0;
        for request in self.eventloop.pending.drain(..) {
            if let Request::Publish(publish) = request
                && let Some(camera) = self.owners.owner(&publish.topic)
            {
                camera.count_drop(DropReason::BrokerDown);
                lost += 1;
            }
        }
        lost
    }
}
