//! The messages as they travel: a command ([`CommandMessage`], parsed with every bound checked)
//! and its result ([`CommandResult`]).

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use super::canonical::{Args, MAX_SAFE_INTEGER};
use super::refusal::Refusal;
use crate::config::TopicName;
use crate::publish::payload::rfc3339_millis;

/// `schema` of a command, and the first line of the bytes its signature covers.
pub const COMMAND_SCHEMA: &str = "watchpost.command/1";
/// `schema` of a command's result.
pub const RESULT_SCHEMA: &str = "watchpost.command-result/1";
/// The largest command message read; a larger one is refused unread.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// `id`: 1 to 64 of `A-Z a-z 0-9 . _ : -`.
pub const MAX_ID_LEN: usize = 64;
/// `command`: 1 to 32 of `a-z 0-9 . _ -` (an unknown but well-formed name is echoed back).
pub const MAX_COMMAND_LEN: usize = 32;
/// `issued_at`, `expires_at`: `2026-11-29T02:31:08Z` with up to 9 fractional digits.
pub const MAX_TIMESTAMP_LEN: usize = 30;
/// A result's `reason` is cut to this many characters.
pub const MAX_REASON_CHARS: usize = 300;

/// The device a command is for, as it appears in the signed bytes: `{site}/{device}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceId {
    pub site: TopicName,
    pub device: TopicName,
}

impl DeviceId {
    /// `SITE/DEVICE`, each a valid topic level.
    ///
    /// # Errors
    /// What is wrong, in words.
    pub fn parse(text: &str) -> Result<DeviceId, String> {
        let (site, device) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not SITE/DEVICE (as `north/box-1`)"))?;
        Ok(DeviceId {
            site: TopicName::parse(site).map_err(|e| format!("site {e}"))?,
            device: TopicName::parse(device).map_err(|e| format!("device {e}"))?,
        })
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.site, self.device)
    }
}

/// A command message (`watchpost.command/1`). A value of this type that came from
/// [`CommandMessage::parse`] keeps every bound of the module documentation; its signature has
/// not been checked (that is [`super::Inbox::receive`]'s work).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandMessage {
    pub schema: String,
    pub id: String,
    pub command: String,
    pub args: Args,
    pub issued_at: String,
    pub expires_at: String,
    pub key_id: String,
    pub counter: u64,
    /// Base64 (standard alphabet, padded) of the 64-byte Ed25519 signature.
    pub signature: String,
}

/// What a message that failed to parse still tells: its `id` and `command` when they are
/// well-formed, for the result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peek {
    pub id: Option<String>,
    pub command: Option<String>,
}

impl CommandMessage {
    /// Parses and checks a payload.
    ///
    /// # Errors
    /// [`Refusal::Oversized`] (not read) or [`Refusal::Malformed`] (what is wrong, bounded).
    pub fn parse(payload: &[u8]) -> Result<CommandMessage, Refusal> {
        if payload.len() > MAX_MESSAGE_BYTES {
            return Err(Refusal::Oversized {
                bytes: payload.len(),
            });
        }
        let message: CommandMessage =
            serde_json::from_slice(payload).map_err(|e| Refusal::Malformed(e.to_string()))?;
        message.check().map_err(Refusal::Malformed)?;
        Ok(message)
    }

    pub(super) fn check(&self) -> Result<(), String> {
        if self.schema != COMMAND_SCHEMA {
            return Err(format!("`schema` must be \"{COMMAND_SCHEMA}\""));
        }
        if !valid_id(&self.id) {
            return Err(format!(
                "`id` must be 1 to {MAX_ID_LEN} of A-Z a-z 0-9 . _ : -"
            ));
        }
        if !valid_command_name(&self.command) {
            return Err(format!(
                "`command` must be 1 to {MAX_COMMAND_LEN} of a-z 0-9 . _ -"
            ));
        }
        let issued_at = parse_timestamp(&self.issued_at).map_err(|e| format!("`issued_at` {e}"))?;
        let expires_at =
            parse_timestamp(&self.expires_at).map_err(|e| format!("`expires_at` {e}"))?;
        if expires_at <= issued_at {
            return Err("`expires_at` must be after `issued_at`".to_owned());
        }
        TopicName::parse(&self.key_id).map_err(|e| format!("`key_id` {e}"))?;
        if !(1..=MAX_SAFE_INTEGER).contains(&self.counter) {
            return Err(format!("`counter` must be 1 to {MAX_SAFE_INTEGER}"));
        }
        self.signature_value()?;
        Ok(())
    }

    /// The signature, decoded.
    ///
    /// # Errors
    /// When `signature` is not the base64 of 64 bytes.
    pub fn signature_value(&self) -> Result<Signature, String> {
        let bytes = BASE64
            .decode(&self.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or("`signature` must be the base64 (standard, padded) of 64 bytes")?;
        Ok(Signature::from_bytes(&bytes))
    }

    /// `issued_at` and `expires_at` as times (checked by [`CommandMessage::parse`]).
    pub fn validity(&self) -> Option<(SystemTime, SystemTime)> {
        Some((
            parse_timestamp(&self.issued_at).ok()?,
            parse_timestamp(&self.expires_at).ok()?,
        ))
    }

    /// The `id` and `command` of a payload that may not parse, where they are well-formed.
    pub fn peek(payload: &[u8]) -> Peek {
        if payload.len() > MAX_MESSAGE_BYTES {
            return Peek::default();
        }
        let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(payload) else {
            return Peek::default();
        };
        let field = |name: &str, valid: fn(&str) -> bool| {
            map.get(name)
                .and_then(serde_json::Value::as_str)
                .filter(|s| valid(s))
                .map(str::to_owned)
        };
        Peek {
            id: field("id", valid_id),
            command: field("command", valid_command_name),
        }
    }

    /// The message as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

pub(crate) fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

pub(crate) fn valid_command_name(name: &str) -> bool {
    (1..=MAX_COMMAND_LEN).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// `2026-11-29T02:31:08Z` or `2026-11-29T02:31:08.123Z` (RFC 3339, UTC, `T` and `Z` upper
/// case, up to 9 fractional digits).
pub(crate) fn parse_timestamp(text: &str) -> Result<SystemTime, String> {
    let shape_ok = text.len() <= MAX_TIMESTAMP_LEN
        && text.is_ascii()
        && text.ends_with('Z')
        && text.as_bytes().get(10) == Some(&b'T');
    let parsed = shape_ok
        .then(|| humantime::parse_rfc3339(text).ok())
        .flatten();
    parsed.ok_or_else(|| {
        "must be an RFC 3339 time in UTC, as 2026-11-29T02:31:08Z or 2026-11-29T02:31:08.123Z"
            .to_owned()
    })
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Verified and done.
    Ok,
    /// Not acted on: see the code and reason.
    Refused,
    /// Verified, tried, and it did not work.
    Failed,
}

/// A command's result (`watchpost.command-result/1`), published on `.../cmd/result`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandResult {
    pub schema: &'static str,
    /// The command's `id`; `null` when the message had none that could be read.
    pub id: Option<String>,
    /// The command's name as sent; `null` when it could not be read.
    pub command: Option<String>,
    pub status: Status,
    /// A refusal's stable code ([`Refusal::code`]); `null` unless `refused`.
    pub code: Option<&'static str>,
    /// Why it was refused or failed, in words; `null` when `ok`.
    pub reason: Option<String>,
    /// What the command returned; `null` unless `ok` (and `null` for commands returning
    /// nothing).
    pub result: Option<serde_json::Value>,
    /// When the agent answered (RFC 3339, UTC, milliseconds).
    pub at: String,
}

impl CommandResult {
    pub(crate) fn new(
        id: Option<String>,
        command: Option<String>,
        status: Status,
        code: Option<&'static str>,
        reason: Option<String>,
        result: Option<serde_json::Value>,
        at: SystemTime,
    ) -> CommandResult {
        CommandResult {
            schema: RESULT_SCHEMA,
            id,
            command,
            status,
            code,
            reason: reason.map(|r| bounded(&r)),
            result,
            at: rfc3339_millis(at),
        }
    }

    /// The result as one line of JSON (the payload).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `text` cut to [`MAX_REASON_CHARS`] characters (`…` marks a cut).
pub(crate) fn bounded(text: &str) -> String {
    if text.chars().count() <= MAX_REASON_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_REASON_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_from_tables() {
        // (text, accepted)
        let cases = [
            ("2026-11-29T02:31:08Z", true),
            ("2026-11-29T02:31:08.123Z", true),
            ("2026-11-29T02:31:08.123456789Z", true),
            ("2026-11-29T02:31:08.1234567891Z", false),
            ("2026-11-29T02:31:08+00:00", false),
            ("2026-11-29 02:31:08Z", false),
            ("2026-11-29t02:31:08z", false),
            ("2026-13-29T02:31:08Z", false),
            ("2026-11-29T02:31:08", false),
            ("", false),
            ("ééééééééééééééééééééZ", false),
        ];
        for (text, accepted) in cases {
            assert_eq!(parse_timestamp(text).is_ok(), accepted, "{text}");
        }
    }

    #[test]
    fn ids_and_names_from_tables() {
        for (id, ok) in [
            ("cmd-42", true),
            ("0b3c8e7e-5d1a-4c57-9a43-2f6d0c9d1e11", true),
            ("a:b.c_d", true),
            ("", false),
            ("has space", false),
            ("é", false),
            (&"x".repeat(MAX_ID_LEN), true),
            (&"x".repeat(MAX_ID_LEN + 1), false),
        ] {
            assert_eq!(valid_id(id), ok, "{id:?}");
        }
        for (name, ok) in [
            ("ping", true),
            ("camera.enable", true),
            ("Ping", false),
            ("", false),
            ("a/b", false),
            (&"x".repeat(MAX_COMMAND_LEN + 1), false),
        ] {
            assert_eq!(valid_command_name(name), ok, "{name:?}");
        }
    }

    #[test]
    fn device_ids_from_tables() {
        assert_eq!(
            DeviceId::parse("north/box-1").unwrap().to_string(),
            "north/box-1"
        );
        for bad in ["north", "north/", "/box", "north/box/1", "no rth/box"] {
            assert!(DeviceId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_long_reason_is_cut() {
        let long = "é".repeat(MAX_REASON_CHARS + 10);
        let cut = bounded(&long);
        assert_eq!(cut.chars().count(), MAX_REASON_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(bounded("short"), "short");
    }
}
