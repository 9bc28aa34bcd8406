//! Why a command was not acted on: a typed reason with a stable code for machines and words for
//! people.

use std::time::Duration;

use super::commands::CommandName;

/// Why a command message was refused. Nothing was changed, not even the key's counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Larger than [`super::MAX_MESSAGE_BYTES`]: not read.
    Oversized { bytes: usize },
    /// Not a well-formed command message (JSON, fields, bounds): what is wrong.
    Malformed(String),
    /// It arrived retained: a command is never acted on from a retained message, and is
    /// answered with nothing (only logged).
    Retained,
    /// It arrived on another topic than the device's command topic.
    WrongTopic { topic: String },
    /// `key_id` names no trusted key.
    UnknownKey { key_id: String },
    /// The signature does not verify (strictly) over the canonical bytes for this device and
    /// topic: altered, signed with another key, or signed for another device or topic.
    BadSignature,
    /// `expires_at` is more than the allowed window after `issued_at`.
    ValidityTooLong { validity: Duration, max: Duration },
    /// `issued_at` is more than [`super::CLOCK_SKEW`] ahead of the device's clock.
    NotYetValid { issued_at: String },
    /// `expires_at` has passed on the device's clock.
    Expired { expires_at: String },
    /// A signed, well-formed name that is not on the allow-list.
    UnknownCommand { command: String },
    /// On the allow-list but disabled in the configuration.
    Disabled { command: CommandName },
    /// The command's arguments are wrong: what is wrong.
    BadArgs {
        command: CommandName,
        detail: String,
    },
    /// The key's counter is the last one accepted: the same message again.
    Replayed { key_id: String, counter: u64 },
    /// The key's counter is below the last one accepted (reordered, or an old message after a
    /// restart).
    CounterBehind {
        key_id: String,
        counter: u64,
        last: u64,
    },
    /// The counter store cannot be read or written: every command is refused rather than risk
    /// accepting a replay.
    CountersUnusable(String),
    /// More commands are waiting than the device holds ([`super::MAX_WAITING`]): not read.
    Busy,
    /// Verified, but names a camera the configuration does not have.
    UnknownCamera { camera: String, known: Vec<String> },
    /// `config.apply` written against another configuration version than the one in force.
    StaleVersion { expected: String, running: String },
    /// `config.apply` would leave an invalid configuration: how many problems (the loader's
    /// messages go in the result's `result.problems`).
    InvalidConfig { problems: usize },
    /// `snapshot` on a device whose privacy settings send no pictures.
    SnapshotsOff,
}

impl Refusal {
    /// Every code [`Refusal::code`] gives, for schemas and documentation.
    pub const CODES: [&'static str; 20] = [
        "oversized",
        "malformed",
        "retained",
        "wrong_topic",
        "unknown_key",
        "bad_signature",
        "validity_too_long",
        "not_yet_valid",
        "expired",
        "unknown_command",
        "disabled",
        "bad_args",
        "replayed",
        "counter_behind",
        "counters_unusable",
        "busy",
        "unknown_camera",
        "stale_version",
        "invalid_config",
        "snapshots_off",
    ];

    /// A stable code (part of the result's contract; never changes meaning).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Oversized { .. } => "oversized",
            Refusal::Malformed(_) => "malformed",
            Refusal::Retained => "retained",
            Refusal::WrongTopic { .. } => "wrong_topic",
            Refusal::UnknownKey { .. } => "unknown_key",
            Refusal::BadSignature => "bad_signature",
            Refusal::ValidityTooLong { .. } => "validity_too_long",
            Refusal::NotYetValid { .. } => "not_yet_valid",
            Refusal::Expired { .. } => "expired",
            Refusal::UnknownCommand { .. } => "unknown_command",
            Refusal::Disabled { .. } => "disabled",
            Refusal::BadArgs { .. } => "bad_args",
            Refusal::Replayed { .. } => "replayed",
            Refusal::CounterBehind { .. } => "counter_behind",
            Refusal::CountersUnusable(_) => "counters_unusable",
            Refusal::Busy => "busy",
            Refusal::UnknownCamera { .. } => "unknown_camera",
            Refusal::StaleVersion { .. } => "stale_version",
            Refusal::InvalidConfig { .. } => "invalid_config",
            Refusal::SnapshotsOff => "snapshots_off",
        }
    }

    /// The reason in words, one line.
    pub fn reason(&self) -> String {
        match self {
            Refusal::Oversized { bytes } => format!(
                "the message has {bytes} bytes; at most {} are read",
                super::MAX_MESSAGE_BYTES
            ),
            Refusal::Malformed(detail) => format!("not a {}: {detail}", super::COMMAND_SCHEMA),
            Refusal::Retained => {
                "the message was retained by the broker; commands are never taken from retained \
                 messages"
                    .to_owned()
            }
            Refusal::WrongTopic { topic } => format!("not the command topic: {topic}"),
            Refusal::UnknownKey { key_id } => format!("no trusted key `{key_id}`"),
            Refusal::BadSignature => "the signature does not verify for this device and topic \
                 (altered, another key, or signed for another device)"
                .to_owned(),
            Refusal::ValidityTooLong { validity, max } => format!(
                "valid for {}; at most {} allowed",
                humantime::format_duration(*validity),
                humantime::format_duration(*max)
            ),
            Refusal::NotYetValid { issued_at } => format!(
                "issued at {issued_at}, more than {} s ahead of the device's clock",
                super::CLOCK_SKEW.as_secs()
            ),
            Refusal::Expired { expires_at } => format!("expired at {expires_at}"),
            Refusal::UnknownCommand { command } => format!(
                "unknown command `{command}` (known: {})",
                CommandName::ALL.map(CommandName::as_str).join(", ")
            ),
            Refusal::Disabled { command } => {
                format!("`{command}` is disabled on this device ([commands] disabled)")
            }
            Refusal::BadArgs { command, detail } => format!("`{command}`: {detail}"),
            Refusal::Replayed { key_id, counter } => {
                format!("counter {counter} of key `{key_id}` was already used")
            }
            Refusal::CounterBehind {
                key_id,
                counter,
                last,
            } => format!("counter {counter} of key `{key_id}` is below the last accepted, {last}"),
            Refusal::CountersUnusable(detail) => {
                format!("the command counters cannot be used: {detail}")
            }
            Refusal::Busy => format!(
                "the device already has {} commands waiting; send it again later (with a new \
                 counter)",
                super::MAX_WAITING
            ),
            Refusal::UnknownCamera { camera, known } => {
                format!("no camera `{camera}` (configured: {})", known.join(", "))
            }
            Refusal::StaleVersion { expected, running } => format!(
                "written against configuration version {expected}, but {running} is in force: \
                 get it again (config.get) and redo the change"
            ),
            Refusal::InvalidConfig { problems } => format!(
                "the configuration would not be valid ({problems} problem{}: see \
                 result.problems); nothing was changed",
                if *problems == 1 { "" } else { "s" }
            ),
            Refusal::SnapshotsOff => {
                "pictures are off on this device ([events] snapshots = \"off\" \
                 or metadata_only = true)"
                    .to_owned()
            }
        }
    }

    /// Whether a result is published for it: every refusal but [`Refusal::Retained`], which is
    /// only logged.
    pub fn is_answered(&self) -> bool {
        !matches!(self, Refusal::Retained)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.reason())
    }
}
