//! The command task: takes the messages the publisher receives on `cmd`, has the
//! [`Inbox`] check them, acts on those it accepts, and answers every one (see
//! [`crate::command`] for the contract).
//!
//! ```text
//!  broker ─cmd─▶ publisher's driver ─(bounded: MAX_WAITING; full → `busy`)─▶ this task:
//!     Inbox::receive (signature, time, allow-list, counter stored) ─▶ act
//!        ─▶ cmd/result, audit (MQTT, QoS 1) and the local audit log ─▶ publisher
//! ```
//!
//! Invariants:
//! - One command at a time, in arrival order; a command that changes the configuration goes
//!   the one way every change goes ([`crate::config::change`]: checked by the loader, audited,
//!   written atomically) and is then applied live ([`Control::apply`]).
//! - Every message gets a result on `cmd/result` except a retained one (only logged and
//!   audited), and every message, accepted or not, an audit record on `audit` and in the local
//!   audit log (`{state_dir}/audit.log`, with the configuration changes).
//! - `config/state` (retained) says which configuration is in force: published after every
//!   connection and whenever the configuration changes.
//! - The file work (counter, audit log, configuration) runs with `block_in_place`, off the
//!   other async tasks' way.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::control::Control;
use crate::command::{
    Accepted, AuditRecord, Command, ConfigChange, Inbox, Outcome, Received, Refusal, Verdict,
};
use crate::config::change::{self, ChangeError};
use crate::config::edit::{self, EditError};
use crate::config::version::{ConfigVersion, VersionStore};
use crate::config::{self, Config, SnapshotMode, TopicName, audit};
use crate::framepath::Lanes;
use crate::health::Cameras;
use crate::publish::payload::rfc3339_millis;
use crate::publish::{BrokerState, CommandPublication, IncomingCommand, Topics};

/// How long `snapshot` waits for the camera's next analysed frame.
const PICTURE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `schema` of `config/state`.
pub const CONFIG_STATE_SCHEMA: &str = "watchpost.config-state/1";
/// `schema` of `audit` records.
pub const AUDIT_SCHEMA: &str = "watchpost.command-audit/1";

/// What the command task needs.
pub(crate) struct CommandTask {
    pub inbox: Inbox,
    pub topics: Topics,
    pub incoming: mpsc::Receiver<IncomingCommand>,
    pub out: mpsc::Sender<CommandPublication>,
    pub control: Control,
    /// The configuration file the agent runs from.
    pub config_file: PathBuf,
    pub broker: watch::Receiver<BrokerState>,
    pub started: Instant,
    /// The running cameras by slot, and their lanes (for `snapshot`).
    pub cameras: Arc<Cameras>,
    pub lanes: Arc<Lanes>,
}

/// The running configuration's version, kept up to date.
struct Versions {
    store: VersionStore,
    current: ConfigVersion,
}

impl Versions {
    /// The version of the file as it is now (it is what the agent loaded, or what it just
    /// wrote).
    fn observe_file(&mut self, file: &std::path::Path) -> &ConfigVersion {
        match std::fs::read(file) {
            Ok(bytes) => self.observe(&bytes),
            Err(e) => {
                tracing::warn!(file = %file.display(), "cannot read the configuration to version it: {e}");
                &self.current
            }
        }
    }

    fn observe(&mut self, bytes: &[u8]) -> &ConfigVersion {
        let (version, error) = self.store.observe(bytes);
        if let Some(e) = error {
            tracing::warn!("cannot keep the configuration version: {e}");
        }
        self.current = version;
        &self.current
    }
}

impl CommandTask {
    /// Runs until `shutdown` is cancelled or the publisher is gone.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let state_dir = self.control.running().device.state_dir.clone();
        let mut store = VersionStore::open(&state_dir);
        let current = tokio::task::block_in_place(|| {
            std::fs::read(&self.config_file).map_or_else(
                |_| ConfigVersion {
                    number: 0,
                    checksum: String::new(),
                },
                |bytes| store.observe(&bytes).0,
            )
        });
        let mut versions = Versions { store, current };
        tracing::info!(
            version = %versions.current,
            keys = self.inbox.policy().keys.ids().count(),
            "taking signed commands on {}",
            self.topics.command()
        );
        if let Some(e) = self.inbox.counters_error() {
            tracing::error!("{e}: every command will be refused");
        }
        let mut connections = 0;
        let mut applied = self.control.applied();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                // A reload (SIGHUP, `POST /reload`) or a command changed what runs.
                changed = applied.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let version = tokio::task::block_in_place(|| {
                        versions.observe_file(&self.config_file).clone()
                    });
                    self.publish_state(&version).await;
                }
                changed = self.broker.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = self.broker.borrow_and_update().connections;
                    if now != connections {
                        connections = now;
                        self.publish_state(&versions.current).await;
                    }
                }
                message = self.incoming.recv() => match message {
                    Some(message) => self.handle(&message, &mut versions).await,
                    None => break,
                },
            }
        }
    }

    async fn handle(&mut self, message: &IncomingCommand, versions: &mut Versions) {
        let now = SystemTime::now();
        let verdict = tokio::task::block_in_place(|| {
            self.inbox.receive(
                Received {
                    topic: &message.topic,
                    payload: &message.payload,
                    retained: message.retained,
                },
                now,
            )
        });
        match verdict {
            Verdict::Refused(refused) => {
                tracing::warn!(
                    id = refused.id.as_deref().unwrap_or("-"),
                    key_id = refused.key_id.as_deref().unwrap_or("-"),
                    "command refused: {}",
                    refused.refusal
                );
                let at = SystemTime::now();
                if let Some(result) = refused.result(at) {
                    self.send(
                        self.topics.command_result(),
                        result.to_json().into_bytes(),
                        false,
                    )
                    .await;
                }
                self.audit(&refused.audit(at)).await;
            }
            Verdict::Accepted(accepted) => {
                let name = accepted.command.name();
                let outcome = self.act(&accepted, versions).await;
                match &outcome {
                    Outcome::Done(_) => {
                        tracing::info!(id = %accepted.id, key_id = %accepted.key_id, counter = accepted.counter, "command {name}: done")
                    }
                    Outcome::Failed(reason) => {
                        tracing::warn!(id = %accepted.id, key_id = %accepted.key_id, "command {name}: failed: {reason}")
                    }
                    Outcome::Refused(refusal, _) => {
                        tracing::warn!(id = %accepted.id, key_id = %accepted.key_id, "command {name}: refused: {refusal}")
                    }
                }
                let at = SystemTime::now();
                let result = accepted.result(&outcome, at);
                self.send(
                    self.topics.command_result(),
                    result.to_json().into_bytes(),
                    false,
                )
                .await;
                self.audit(&accepted.audit(&outcome, at)).await;
            }
        }
    }

    /// Does what an accepted command asks.
    async fn act(&mut self, accepted: &Accepted, versions: &mut Versions) -> Outcome {
        match &accepted.command {
            Command::Ping => Outcome::Done(Some(json!({
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_s": self.started.elapsed().as_secs(),
                "config_version": versions.current.to_string(),
            }))),
            Command::ConfigGet => {
                let running = self.control.running();
                Outcome::Done(Some(json!({
                    "version": versions.current.to_string(),
                    "toml": config::render(&running),
                })))
            }
            Command::StatusPublish => {
                let _ = self.out.send(CommandPublication::StatusNow).await;
                self.publish_state(&versions.current).await;
                Outcome::Done(None)
            }
            Command::Snapshot { camera } => self.snapshot(accepted, camera).await,
            Command::CameraEnable { camera } | Command::CameraDisable { camera } => {
                if let Err(refusal) = self.known_camera(camera.as_str()) {
                    return Outcome::Refused(refusal, None);
                }
                let enabled = matches!(accepted.command, Command::CameraEnable { .. });
                let key = format!("cameras.{camera}.enabled");
                self.change(accepted, versions, &key, |text| {
                    edit::set(text, &key, enabled.into()).map(|o| o.text)
                })
                .await
            }
            Command::ConfigApply {
                change,
                expected_version,
            } => {
                let running = versions.observe_file(&self.config_file).to_string();
                if *expected_version != running {
                    return Outcome::Refused(
                        Refusal::StaleVersion {
                            expected: expected_version.clone(),
                            running,
                        },
                        None,
                    );
                }
                match change {
                    ConfigChange::Toml(toml) => {
                        let toml = toml.clone();
                        self.change(accepted, versions, "", move |_| Ok(toml)).await
                    }
                    ConfigChange::Set(keys) => {
                        let mut values = Vec::new();
                        for (key, json) in keys {
                            match edit::value_from_json(json) {
                                Ok(value) => values.push((key.clone(), value)),
                                Err(e) => {
                                    return Outcome::Refused(
                                        Refusal::BadArgs {
                                            command: accepted.command.name(),
                                            detail: format!("set.{key}: {e}"),
                                        },
                                        None,
                                    );
                                }
                            }
                        }
                        let touched = keys.keys().next().cloned().unwrap_or_default();
                        self.change(accepted, versions, &touched, move |text| {
                            let mut text = text.to_owned();
                            for (key, value) in values {
                                text = edit::set(&text, &key, value)?.text;
                            }
                            Ok(text)
                        })
                        .await
                    }
                }
            }
        }
    }

    /// A picture of the camera's next analysed frame, published on
    /// `{camera}/snapshots/{command id}`.
    async fn snapshot(&self, accepted: &Accepted, camera: &TopicName) -> Outcome {
        if let Err(refusal) = self.known_camera(camera.as_str()) {
            return Outcome::Refused(refusal, None);
        }
        let events = &self.control.running().events;
        if events.metadata_only || events.snapshots == SnapshotMode::Off {
            return Outcome::Refused(Refusal::SnapshotsOff, None);
        }
        let slot = self
            .cameras
            .live()
            .into_iter()
            .find(|(_, stats)| stats.name.as_str() == camera.as_str())
            .map(|(slot, _)| slot);
        let (answer, picture) = tokio::sync::oneshot::channel();
        if !slot.is_some_and(|slot| self.lanes.request_picture(slot, answer)) {
            return Outcome::Failed(format!("camera {camera} is not running (enabled = false)"));
        }
        match tokio::time::timeout(PICTURE_TIMEOUT, picture).await {
            Ok(Ok(Ok(jpeg))) => {
                let topic = self.topics.snapshot(camera.as_str(), &accepted.id);
                self.send(topic.clone(), jpeg, false).await;
                Outcome::Done(Some(json!({ "topic": topic })))
            }
            Ok(Ok(Err(reason))) => Outcome::Failed(reason),
            Ok(Err(_)) => Outcome::Failed(format!("camera {camera} stopped")),
            Err(_) => Outcome::Failed(format!(
                "no frame of camera {camera} was analysed within {} s (is it streaming? an idle \
                 camera with idle_fps = 0 is analysed only when something moves)",
                PICTURE_TIMEOUT.as_secs()
            )),
        }
    }

    fn known_camera(&self, camera: &str) -> Result<(), Refusal> {
        let running = self.control.running();
        if running.cameras.iter().any(|c| c.name.as_str() == camera) {
            return Ok(());
        }
        Err(Refusal::UnknownCamera {
            camera: camera.to_owned(),
            known: running.cameras.iter().map(|c| c.name.to_string()).collect(),
        })
    }

    /// Changes the configuration file the one way ([`change::apply`]), then applies the new
    /// configuration live.
    async fn change(
        &mut self,
        accepted: &Accepted,
        versions: &mut Versions,
        touched: &str,
        edit: impl FnOnce(&str) -> Result<String, EditError>,
    ) -> Outcome {
        let mut request = change::Request::new(
            &format!("remote {}", accepted.command.name()),
            &self.config_file,
            touched,
        );
        request.user = Some(format!("key:{} (command {})", accepted.key_id, accepted.id));
        let prepared = match tokio::task::block_in_place(|| change::prepare(&request, edit)) {
            Ok(prepared) => prepared,
            Err(error) => return change_refused(&error),
        };
        // A new broker set-up that reaches no broker would cut the device off at its next
        // start: keep the configuration in force instead.
        let running = self.control.running();
        if audit::changes(Some(&running), &prepared.new)
            .iter()
            .any(|c| c.key.starts_with("mqtt."))
            && let Err(cause) = reachable(&prepared.new.mqtt).await
        {
            return Outcome::Failed(format!(
                "the new [mqtt] reaches no broker ({cause}); nothing was changed"
            ));
        }
        let applied = match tokio::task::block_in_place(|| change::commit(request, prepared)) {
            Ok(applied) => applied,
            Err(error) => return change_refused(&error),
        };
        let version = versions.observe(applied.text.as_bytes()).to_string();
        let changes: Vec<&str> = applied.changes.iter().map(|c| c.key.as_str()).collect();
        if applied.changes.is_empty() {
            return Outcome::Done(Some(json!({
                "version": version,
                "changes": changes,
                "live": [],
                "at_restart": [],
            })));
        }
        match self.control.apply(applied.config).await {
            // `config/state` follows from `Control::applied`.
            Ok(live) => Outcome::Done(Some(json!({
                "version": version,
                "changes": changes,
                "live": live.live,
                "at_restart": live.at_restart,
            }))),
            Err(e) => Outcome::Failed(format!(
                "the file is changed (version {version}) but the agent could not apply it \
                 live: {e}; it applies at the next reload or restart"
            )),
        }
    }

    /// `config/state`, retained.
    async fn publish_state(&self, version: &ConfigVersion) {
        let running = self.control.running();
        let payload = config_state(
            &running,
            version,
            &self.control.at_restart(),
            SystemTime::now(),
        );
        self.send(
            self.topics.config_state(),
            payload.to_string().into_bytes(),
            true,
        )
        .await;
    }

    /// The audit record to the local audit log and to `audit`.
    async fn audit(&self, record: &AuditRecord) {
        let line = AuditLine {
            schema: AUDIT_SCHEMA,
            source: "remote-command",
            record,
        };
        let log = audit::log_path(&self.control.running().device.state_dir);
        if let Err(e) = tokio::task::block_in_place(|| audit::append_line(&log, &line)) {
            tracing::error!(log = %log.display(), "cannot write the command to the audit log: {e}");
        }
        match serde_json::to_vec(&line) {
            Ok(bytes) => self.send(self.topics.audit(), bytes, false).await,
            Err(e) => tracing::error!("audit record: {e}"),
        }
    }

    async fn send(&self, topic: String, payload: Vec<u8>, retain: bool) {
        // The publisher drains this promptly; waiting here only holds the next command.
        let _ = self
            .out
            .send(CommandPublication::Message {
                topic,
                payload,
                retain,
            })
            .await;
    }
}

/// One line of the audit log / one `audit` message.
#[derive(serde::Serialize)]
struct AuditLine<'a> {
    schema: &'static str,
    source: &'static str,
    #[serde(flatten)]
    record: &'a AuditRecord,
}

/// `config/state`: the version in force, the configuration with secrets replaced, and what of
/// the file waits for the next restart ([`Control::at_restart`]).
pub fn config_state(
    config: &Config,
    version: &ConfigVersion,
    at_restart: &[String],
    at: SystemTime,
) -> Value {
    json!({
        "schema": CONFIG_STATE_SCHEMA,
        "version": version.to_string(),
        "number": version.number,
        "checksum": version.checksum,
        "toml": config::render(config),
        "at_restart": at_restart,
        "at": rfc3339_millis(at),
    })
}

/// How long a new `[mqtt]` set-up has to reach a broker before `config.apply` keeps the old
/// one.
const BROKER_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether any endpoint of `mqtt` accepts a connection (as `watchpost doctor` checks it); the
/// first endpoint's failure otherwise.
async fn reachable(mqtt: &crate::config::MqttConfig) -> Result<(), String> {
    let mut first_failure = None;
    for endpoint in 0..mqtt.urls.len() {
        match crate::publish::check_broker(mqtt, endpoint, BROKER_CHECK_TIMEOUT).await {
            Ok(()) => return Ok(()),
            Err(failure) => {
                first_failure
                    .get_or_insert(format!("{}: {}", mqtt.urls[endpoint], failure.message));
            }
        }
    }
    Err(first_failure.unwrap_or_else(|| "no endpoint".to_owned()))
}

/// What to answer when the change could not be made.
fn change_refused(error: &ChangeError) -> Outcome {
    match error {
        ChangeError::Invalid { error, .. } => {
            let problems = error.lines();
            Outcome::Refused(
                Refusal::InvalidConfig {
                    problems: problems.len(),
                },
                Some(json!({ "problems": problems })),
            )
        }
        ChangeError::Edit { error, .. } => Outcome::Refused(
            Refusal::InvalidConfig { problems: 1 },
            Some(json!({ "problems": [error.to_string()] })),
        ),
        ChangeError::Read(_) | ChangeError::Changed { .. } | ChangeError::Commit(_) => {
            Outcome::Failed(error.to_string())
        }
    }
}

/// The command task's share of [`super::run`]: whether commands are on, and the inbox.
pub(crate) fn inbox(config: &Config, topics: &Topics) -> Option<Inbox> {
    let commands = &config.commands;
    if !commands.enabled {
        return None;
    }
    if commands.trusted_keys.is_empty() {
        tracing::warn!("[commands] enabled but no trusted_keys: remote commands stay off");
        return None;
    }
    let keys = match crate::command::TrustedKeys::load(&commands.trusted_keys) {
        Ok(keys) => keys,
        Err(e) => {
            tracing::error!("[commands]: {e}; remote commands stay off");
            return None;
        }
    };
    let policy = crate::command::Policy {
        device: crate::command::DeviceId {
            site: config.device.site.clone(),
            device: config.device.id.clone(),
        },
        topic: topics.command(),
        keys,
        disabled: commands.disabled.clone(),
        max_validity: crate::command::DEFAULT_MAX_VALIDITY,
    };
    Some(Inbox::open(policy, &config.device.state_dir))
}
