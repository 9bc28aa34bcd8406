//! Signing, the central side's half (`watchpost command sign`, tests, and the documented
//! example).

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::canonical::{Args, canonical_bytes};
use super::keys::SigningIdentity;
use super::message::{COMMAND_SCHEMA, CommandMessage, DeviceId};
use crate::publish::payload::rfc3339_millis;

/// A command before it is signed.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    pub id: String,
    pub command: String,
    pub args: Args,
    pub issued_at: SystemTime,
    /// `expires_at` − `issued_at`.
    pub valid_for: Duration,
    pub counter: u64,
}

/// Signs `draft` with `identity` for `device` on `topic`.
///
/// # Errors
/// When the message would break a bound (id, name, counter, times): what is wrong.
pub fn sign(
    identity: &SigningIdentity,
    topic: &str,
    device: &DeviceId,
    draft: Draft,
) -> Result<CommandMessage, String> {
    let expires_at = draft
        .issued_at
        .checked_add(draft.valid_for)
        .ok_or("`expires_at` is beyond any date")?;
    let mut message = CommandMessage {
        schema: COMMAND_SCHEMA.to_owned(),
        id: draft.id,
        command: draft.command,
        args: draft.args,
        issued_at: rfc3339_millis(draft.issued_at),
        expires_at: rfc3339_millis(expires_at),
        key_id: identity.id.to_string(),
        counter: draft.counter,
        signature: String::new(),
    };
    set_signature(identity, topic, device, &mut message);
    message.check()?;
    Ok(message)
}

/// Sets `message.signature` to `identity`'s signature over the message's canonical bytes (its
/// `key_id` is left as it is).
pub fn set_signature(
    identity: &SigningIdentity,
    topic: &str,
    device: &DeviceId,
    message: &mut CommandMessage,
) {
    let signature = identity.sign(&canonical_bytes(topic, device, message));
    message.signature = BASE64.encode(signature.to_bytes());
}

/// A fresh command id: 32 hexadecimal digits from the system's random source.
pub fn new_id() -> String {
    use rand_core::RngCore as _;
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    format!("{:032x}", u128::from_be_bytes(bytes))
}
