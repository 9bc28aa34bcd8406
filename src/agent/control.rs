//! [`Control`]: changing a running agent's configuration (live configuration, issue 15).
//!
//! ```text
//!  SIGHUP ─┐                     ┌─ POST /reload (local endpoint)
//!          ▼                     ▼
//!        Control::reload: config::load(file) ── invalid: the loader's lines, nothing changes
//!          │ Control::apply(config) (also the command inbox)
//!          ▼ bounded channel (REQUESTS_CAPACITY; full: ApplyError::Busy, at once)
//!        the supervisor (Running::supervise): plan::plan(running, new) → cameras added,
//!        removed, restarted or updated; other sections reported "applied at next restart"
//!          │ answer (oneshot)
//!          ▼
//!        Applied { live, at_restart }
//! ```
//!
//! One request is applied at a time, by the supervisor, between its other duties; while the
//! agent stops (or has stopped) every request gets [`ApplyError::Stopped`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{Config, ConfigError};

/// Requests waiting for the supervisor. When full, [`Control::apply`] answers
/// [`ApplyError::Busy`] at once rather than wait: a reload is a person's action, and they can
/// try again; a queue of stale configurations helps nobody.
pub const REQUESTS_CAPACITY: usize = 4;

/// What applying a configuration did, one line per change for people.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    /// Done now: `camera gate-2 added`, `camera gate-1 restarted (url changed)`.
    pub live: Vec<String>,
    /// Waiting for the next start: `[mqtt] applied at next restart` (also shown by `status`).
    pub at_restart: Vec<String>,
}

/// Why a configuration was not applied. Nothing changed, except where said.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// [`REQUESTS_CAPACITY`] requests are already waiting; try again shortly.
    #[error("the agent is busy applying other changes; try again")]
    Busy,
    /// The agent is stopping or has stopped.
    #[error("the agent is stopping")]
    Stopped,
    /// The agent was started without a configuration file (`demo`): there is nothing to
    /// re-read.
    #[error("the agent runs without a configuration file: nothing to reload")]
    NoFile,
    /// The file is not valid: the loader's lines (`FILE:LINE: KEY: MESSAGE`), no secrets. The
    /// running configuration stays.
    #[error("the configuration is not valid; the running one stays:\n{}", problems.join("\n"))]
    Invalid { problems: Vec<String> },
    /// Valid, but this agent cannot run it (a decoder it does not have). The running
    /// configuration stays.
    #[error("the configuration cannot be applied; the running one stays:\n{}", reasons.join("\n"))]
    Refused { reasons: Vec<String> },
}

impl ApplyError {
    /// The loader's error as lines, one per problem.
    pub fn invalid(error: &ConfigError) -> ApplyError {
        let problems = match error {
            ConfigError::Invalid { .. } => error.to_string().lines().map(str::to_owned).collect(),
            ConfigError::Read { source, .. } => {
                vec![format!(
                    "{error}: {}",
                    crate::cli::one_line(&source.to_string())
                )]
            }
        };
        ApplyError::Invalid { problems }
    }
}

/// One request to the supervisor.
pub(crate) struct Request {
    pub config: Config,
    pub answer: oneshot::Sender<Result<Applied, ApplyError>>,
}

/// What the supervisor shows readers.
#[derive(Debug)]
struct Shared {
    running: RwLock<Arc<Config>>,
    at_restart: RwLock<Vec<String>>,
    config_path: Option<PathBuf>,
    /// +1 each time the supervisor records a new running configuration.
    applied: watch::Sender<u64>,
}

/// A handle on the running agent's configuration: cheap to clone, usable from any task, and
/// after the agent has stopped (every request then gets [`ApplyError::Stopped`]).
#[derive(Clone, Debug)]
pub struct Control {
    requests: mpsc::Sender<Request>,
    shared: Arc<Shared>,
}

impl Control {
    /// A handle for an agent running `config` (read from `config_path`, if any), and the
    /// supervisor's end of its requests.
    pub(crate) fn new(
        config: &Config,
        config_path: Option<PathBuf>,
    ) -> (Control, mpsc::Receiver<Request>) {
        let (requests, receiver) = mpsc::channel(REQUESTS_CAPACITY);
        let control = Control {
            requests,
            shared: Arc::new(Shared {
                running: RwLock::new(Arc::new(config.clone())),
                at_restart: RwLock::new(Vec::new()),
                config_path,
                applied: watch::Sender::new(0),
            }),
        };
        (control, receiver)
    }

    /// Applies `new`: cameras added, removed or restarted as their settings say, the others
    /// untouched; sections that cannot change live are reported in
    /// [`Applied::at_restart`].
    ///
    /// # Errors
    /// [`ApplyError::Busy`], [`ApplyError::Stopped`], [`ApplyError::Refused`].
    pub async fn apply(&self, new: Config) -> Result<Applied, ApplyError> {
        let (answer, answered) = oneshot::channel();
        self.requests
            .try_send(Request {
                config: new,
                answer,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ApplyError::Busy,
                mpsc::error::TrySendError::Closed(_) => ApplyError::Stopped,
            })?;
        answered.await.unwrap_or(Err(ApplyError::Stopped))
    }

    /// Re-reads and re-validates the configuration file the agent was started with
    /// (`config::load`, off the async workers) and applies it.
    ///
    /// # Errors
    /// [`ApplyError::NoFile`], [`ApplyError::Invalid`] (the loader's lines), or as
    /// [`Control::apply`].
    pub async fn reload(&self) -> Result<Applied, ApplyError> {
        let path = self.shared.config_path.clone().ok_or(ApplyError::NoFile)?;
        let loaded = tokio::task::spawn_blocking(move || crate::config::load(&path))
            .await
            .map_err(|_| ApplyError::Stopped)?;
        match loaded {
            Ok(config) => self.apply(config).await,
            Err(e) => Err(ApplyError::invalid(&e)),
        }
    }

    /// The configuration in effect: the cameras, `[tracking]` and `[events]` as last applied,
    /// the other sections as the agent started with them.
    pub fn running(&self) -> Arc<Config> {
        Arc::clone(
            &self
                .shared
                .running
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// Changes waiting for a restart (`[mqtt] applied at next restart`); empty when none.
    pub fn at_restart(&self) -> Vec<String> {
        self.shared
            .at_restart
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes each time a configuration is applied, however it came (SIGHUP, `POST /reload`,
    /// a remote command): for those who publish what runs.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.shared.applied.subscribe()
    }

    /// The file [`Control::reload`] reads.
    pub fn config_path(&self) -> Option<&Path> {
        self.shared.config_path.as_deref()
    }

    /// The supervisor records what now runs.
    pub(crate) fn set_running(&self, config: Arc<Config>, at_restart: Vec<String>) {
        *self
            .shared
            .running
            .write()
            .unwrap_or_else(|e| e.into_inner()) = config;
        *self
            .shared
            .at_restart
            .write()
            .unwrap_or_else(|e| e.into_inner()) = at_restart;
        self.shared.applied.send_modify(|n| *n += 1);
    }
}

/// Until the process ends: on each SIGHUP, [`Control::reload`], the outcome logged (an invalid
/// file one line per problem; the running configuration stays).
pub(crate) async fn reload_on_hangup(control: Control, mut hangup: tokio::signal::unix::Signal) {
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the configuration");
        log_outcome(&control.reload().await);
    }
}

/// Logs what a reload did, one line per change or problem.
pub fn log_outcome(outcome: &Result<Applied, ApplyError>) {
    match outcome {
        Ok(applied) => {
            if applied.live.is_empty() && applied.at_restart.is_empty() {
                tracing::info!("configuration reloaded: nothing changed");
            }
            for line in &applied.live {
                tracing::info!("configuration reloaded: {line}");
            }
            for line in &applied.at_restart {
                tracing::warn!("configuration reloaded: {line}");
            }
        }
        Err(ApplyError::Invalid { problems }) => {
            tracing::error!(
                "configuration not reloaded, the running one stays: the file is not valid"
            );
            for line in problems {
                tracing::error!("{line}");
            }
        }
        Err(ApplyError::Refused { reasons }) => {
            tracing::error!("configuration not reloaded, the running one stays");
            for line in reasons {
                tracing::error!("{line}");
            }
        }
        Err(e) => tracing::warn!("configuration not reloaded: {e}"),
    }
}
