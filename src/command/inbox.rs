//! [`Inbox`]: every check a command message goes through, in order, ending in a verified
//! [`Command`] or a [`Refusal`]; and what the agent answers and audits afterwards.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::canonical::canonical_bytes;
use super::commands::{Command, CommandName};
use super::counters::{CounterCheck, CounterError, CounterStore};
use super::keys::TrustedKeys;
use super::message::{CommandMessage, CommandResult, DeviceId, Peek, Status, bounded};
use super::refusal::Refusal;
use crate::config::TopicName;
use crate::publish::payload::rfc3339_millis;

/// How far ahead of the device's clock `issued_at` may be (clocks differ a little); there is no
/// such allowance for `expires_at`.
pub const CLOCK_SKEW: Duration = Duration::from_secs(30);
/// The longest `expires_at` − `issued_at` allowed unless configured otherwise.
pub const DEFAULT_MAX_VALIDITY: Duration = Duration::from_secs(5 * 60);
/// Command messages waiting to be checked and acted on, at most; one more is refused as
/// [`Refusal::Busy`] without being read.
pub const MAX_WAITING: usize = 16;

/// What the inbox accepts: the device, its command topic, the keys it trusts, the commands
/// turned off, and how long a command may be valid.
#[derive(Clone, Debug)]
pub struct Policy {
    pub device: DeviceId,
    /// The topic the agent subscribes to ([`Topics::command`](crate::publish::Topics::command)).
    pub topic: String,
    pub keys: TrustedKeys,
    pub disabled: BTreeSet<CommandName>,
    /// At most this long between `issued_at` and `expires_at` ([`DEFAULT_MAX_VALIDITY`]).
    pub max_validity: Duration,
}

/// One message as it came from the broker.
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    /// The MQTT retain flag as delivered (set for a message the broker kept, when subscribing).
    pub retained: bool,
}

/// The inbox's decision on one message.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Verified and its counter stored: act on it, then answer with [`Accepted::result`].
    Accepted(Accepted),
    /// Not acted on; nothing changed. Answer with [`Refused::result`] (none for a retained
    /// message).
    Refused(Refused),
}

/// A verified command.
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    pub id: String,
    pub command: Command,
    pub key_id: TopicName,
    pub counter: u64,
}

/// A refused message, with what could be read of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Refused {
    /// `id` when well-formed (`null` in the result otherwise).
    pub id: Option<String>,
    /// `command` as sent, when well-formed.
    pub command: Option<String>,
    /// `key_id` and `counter` as the message claims them.
    pub key_id: Option<String>,
    pub counter: Option<u64>,
    /// Whether the signature had been verified before the refusal (the claims above are then
    /// the key holder's).
    pub verified: bool,
    pub refusal: Refusal,
}

/// How an accepted command ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Done; what it returns (`null` for nothing).
    Done(Option<serde_json::Value>),
    /// Tried, did not work: why, in words.
    Failed(String),
    /// Verified, but not acted on (nothing changed): why, and what to say beside it (`null`
    /// for nothing).
    Refused(Refusal, Option<serde_json::Value>),
}

/// One command as the audit keeps it (where it is written is the agent's choice).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    /// When the agent decided (RFC 3339, UTC, milliseconds).
    pub at: String,
    pub id: Option<String>,
    pub command: Option<String>,
    pub key_id: Option<String>,
    pub counter: Option<u64>,
    /// Whether the signature verified: `key_id` and `counter` are only claims otherwise.
    pub verified: bool,
    pub outcome: Status,
    /// The refusal's code.
    pub code: Option<&'static str>,
    pub reason: Option<String>,
}

impl Accepted {
    /// The result to publish.
    pub fn result(&self, outcome: &Outcome, at: SystemTime) -> CommandResult {
        let (status, code, reason, result) = match outcome {
            Outcome::Done(value) => (Status::Ok, None, None, value.clone()),
            Outcome::Failed(reason) => (Status::Failed, None, Some(reason.clone()), None),
            Outcome::Refused(refusal, detail) => (
                Status::Refused,
                Some(refusal.code()),
                Some(refusal.reason()),
                detail.clone(),
            ),
        };
        CommandResult::new(
            Some(self.id.clone()),
            Some(self.command.name().as_str().to_owned()),
            status,
            code,
            reason,
            result,
            at,
        )
    }

    /// The audit record.
    pub fn audit(&self, outcome: &Outcome, at: SystemTime) -> AuditRecord {
        let (outcome, code, reason) = match outcome {
            Outcome::Done(_) => (Status::Ok, None, None),
            Outcome::Failed(reason) => (Status::Failed, None, Some(bounded(reason))),
            Outcome::Refused(refusal, _) => (
                Status::Refused,
                Some(refusal.code()),
                Some(bounded(&refusal.reason())),
            ),
        };
        AuditRecord {
            at: rfc3339_millis(at),
            id: Some(self.id.clone()),
            command: Some(self.command.name().as_str().to_owned()),
            key_id: Some(self.key_id.to_string()),
            counter: Some(self.counter),
            verified: true,
            outcome,
            code,
            reason,
        }
    }
}

impl Refused {
    /// A message not read because [`MAX_WAITING`] commands are already waiting: refused as
    /// [`Refusal::Busy`] (a retained one as [`Refusal::Retained`], unanswered as always).
    pub fn busy(message: Received<'_>) -> Refused {
        let peek = CommandMessage::peek(message.payload);
        Refused {
            id: peek.id,
            command: peek.command,
            key_id: None,
            counter: None,
            verified: false,
            refusal: if message.retained {
                Refusal::Retained
            } else {
                Refusal::Busy
            },
        }
    }

    /// The result to publish; `None` for a retained message (only logged).
    pub fn result(&self, at: SystemTime) -> Option<CommandResult> {
        self.refusal.is_answered().then(|| {
            CommandResult::new(
                self.id.clone(),
                self.command.clone(),
                Status::Refused,
                Some(self.refusal.code()),
                Some(self.refusal.reason()),
                None,
                at,
            )
        })
    }

    /// The audit record (also for a retained message).
    pub fn audit(&self, at: SystemTime) -> AuditRecord {
        AuditRecord {
            at: rfc3339_millis(at),
            id: self.id.clone(),
            command: self.command.clone(),
            key_id: self.key_id.clone(),
            counter: self.counter,
            verified: self.verified,
            outcome: Status::Refused,
            code: Some(self.refusal.code()),
            reason: Some(bounded(&self.refusal.reason())),
        }
    }
}

/// Checks command messages for one device (see the module documentation for the order). Not
/// shared between threads: the agent hands it one message at a time.
#[derive(Debug)]
pub struct Inbox {
    policy: Policy,
    counters: Result<CounterStore, CounterError>,
}

impl Inbox {
    /// An inbox with the counters of `state_dir`. A counter file that cannot be read is kept as
    /// an error ([`Inbox::counters_error`]): every command is then refused with
    /// `counters_unusable`.
    pub fn open(policy: Policy, state_dir: &std::path::Path) -> Inbox {
        Inbox {
            policy,
            counters: CounterStore::open(state_dir),
        }
    }

    /// Why the counters cannot be used, if they cannot (for the log and `health`).
    pub fn counters_error(&self) -> Option<&CounterError> {
        self.counters.as_ref().err()
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Decides on one message. When it returns [`Verdict::Accepted`], the key's counter is
    /// already on disk. Never panics, whatever the payload.
    pub fn receive(&mut self, message: Received<'_>, now: SystemTime) -> Verdict {
        let refuse_unread = |peek: Peek, refusal| {
            Verdict::Refused(Refused {
                id: peek.id,
                command: peek.command,
                key_id: None,
                counter: None,
                verified: false,
                refusal,
            })
        };
        if message.retained {
            return refuse_unread(CommandMessage::peek(message.payload), Refusal::Retained);
        }
        if message.topic != self.policy.topic {
            return refuse_unread(
                CommandMessage::peek(message.payload),
                Refusal::WrongTopic {
                    topic: bounded(message.topic),
                },
            );
        }
        let parsed = match CommandMessage::parse(message.payload) {
            Ok(parsed) => parsed,
            Err(refusal) => return refuse_unread(CommandMessage::peek(message.payload), refusal),
        };
        let (verified, decision) = match self.check(&parsed, now) {
            Ok(command) => (true, self.advance(&parsed, command)),
            Err((verified, refusal)) => (verified, Err(refusal)),
        };
        match decision {
            Ok(accepted) => Verdict::Accepted(accepted),
            Err(refusal) => Verdict::Refused(Refused {
                id: Some(parsed.id),
                command: Some(parsed.command),
                key_id: Some(parsed.key_id),
                counter: Some(parsed.counter),
                verified,
                refusal,
            }),
        }
    }

    /// Key, signature, time, command: everything but the counter. The error says whether the
    /// signature had verified.
    fn check(&self, message: &CommandMessage, now: SystemTime) -> Result<Command, (bool, Refusal)> {
        let policy = &self.policy;
        let key = policy.keys.get(&message.key_id).ok_or_else(|| {
            (
                false,
                Refusal::UnknownKey {
                    key_id: message.key_id.clone(),
                },
            )
        })?;
        let bytes = canonical_bytes(&policy.topic, &policy.device, message);
        let verifies = message
            .signature_value()
            .is_ok_and(|signature| key.verify_strict(&bytes, &signature).is_ok());
        if !verifies {
            return Err((false, Refusal::BadSignature));
        }
        let refused = |refusal| (true, refusal);
        let (issued_at, expires_at) = message
            .validity()
            .ok_or_else(|| refused(Refusal::Malformed("unreadable times".to_owned())))?;
        let validity = expires_at
            .duration_since(issued_at)
            .unwrap_or(Duration::ZERO);
        if validity > policy.max_validity {
            return Err(refused(Refusal::ValidityTooLong {
                validity,
                max: policy.max_validity,
            }));
        }
        if issued_at
            .duration_since(now)
            .is_ok_and(|ahead| ahead > CLOCK_SKEW)
        {
            return Err(refused(Refusal::NotYetValid {
                issued_at: message.issued_at.clone(),
            }));
        }
        if now >= expires_at {
            return Err(refused(Refusal::Expired {
                expires_at: message.expires_at.clone(),
            }));
        }
        let name = CommandName::parse(&message.command).ok_or_else(|| {
            refused(Refusal::UnknownCommand {
                command: message.command.clone(),
            })
        })?;
        if policy.disabled.contains(&name) {
            return Err(refused(Refusal::Disabled { command: name }));
        }
        Command::from_args(name, &message.args).map_err(|detail| {
            refused(Refusal::BadArgs {
                command: name,
                detail: bounded(&detail),
            })
        })
    }

    /// The last step: the counter, stored before the command is handed out.
    fn advance(&mut self, message: &CommandMessage, command: Command) -> Result<Accepted, Refusal> {
        let store = self
            .counters
            .as_mut()
            .map_err(|e| Refusal::CountersUnusable(e.to_string()))?;
        let key_id = &message.key_id;
        let key = TopicName::parse(key_id).map_err(Refusal::Malformed)?;
        let counter = message.counter;
        match store.advance(key_id, counter) {
            Err(e) => Err(Refusal::CountersUnusable(e.to_string())),
            Ok(CounterCheck::Replayed) => Err(Refusal::Replayed {
                key_id: key_id.clone(),
                counter,
            }),
            Ok(CounterCheck::Behind { last }) => Err(Refusal::CounterBehind {
                key_id: key_id.clone(),
                counter,
                last,
            }),
            Ok(CounterCheck::Advanced) => Ok(Accepted {
                id: message.id.clone(),
                command,
                key_id: key,
                counter,
            }),
        }
    }
}
