//! Remote commands, the pure core: checking a signed command message, and what to answer.
//!
//! The agent (wired elsewhere) subscribes with QoS 1 to `{prefix}/{site}/{device}/cmd`
//! ([`Topics::command`](crate::publish::Topics::command)) and hands every message to [`Inbox::receive`] with its retain flag and
//! the time. [`Verdict::Accepted`] carries a typed [`Command`] whose counter is already on
//! disk: the agent acts on it and publishes [`Accepted::result`] on `.../cmd/result`
//! ([`Topics::command_result`](crate::publish::Topics::command_result)). [`Verdict::Refused`] carries a [`Refusal`]: the agent publishes
//! [`Refused::result`] (every refusal but a retained message, which is only logged) and changes
//! nothing. Both give an [`AuditRecord`]. Subscribing, acting, publishing, where audit records
//! go, and the `[commands]` configuration are not here.
//!
//! ## A command message (`watchpost.command/1`, JSON, at most [`MAX_MESSAGE_BYTES`])
//!
//! | field | what | bounds |
//! |---|---|---|
//! | `schema` | `"watchpost.command/1"` | |
//! | `id` | the sender's name for this command, echoed in the result | 1–64 of `A-Z a-z 0-9 . _ : -` |
//! | `command` | a name of the allow-list ([`CommandName`]) | 1–32 of `a-z 0-9 . _ -` |
//! | `args` | a JSON object, the command's arguments ([`Command`]) | no duplicate keys; integers within ±(2^53 − 1) |
//! | `issued_at`, `expires_at` | RFC 3339 UTC, `2026-11-29T02:31:08Z` or with 1–9 fractional digits | `expires_at` after `issued_at`, by at most the configured window ([`DEFAULT_MAX_VALIDITY`], 5 min) |
//! | `key_id` | the signing key: the file name of its public key on the device, without extension | a topic level: 1–64 of `A-Z a-z 0-9 _ -` |
//! | `counter` | a number per key that only grows (Unix time in milliseconds does) | 1 to 2^53 − 1 |
//! | `signature` | Ed25519 over the signed bytes below, base64 (standard alphabet, padded) | 64 bytes |
//!
//! No other field is allowed. Allowed commands and their `args`: `ping {}`,
//! `snapshot {camera}`, `camera.enable {camera}`, `camera.disable {camera}`, `config.get {}`,
//! `config.apply {toml, expected_version}` or `{set: {KEY: VALUE, ..}, expected_version}`,
//! `status.publish {}`.
//!
//! ## The signed bytes ([`canonical_bytes`])
//!
//! UTF-8 text: the line `watchpost.command/1`, then one line per field in this order, each
//! `NAME SP LENGTH SP VALUE LF`, where LENGTH is the number of bytes of VALUE in decimal
//! (no leading zeros):
//!
//! 1. `topic`: the topic the device receives commands on, `{prefix}/{site}/{device}/cmd`;
//! 2. `device`: `{site}/{device}`;
//! 3. `id`, 4. `command`: as in the message;
//! 5. `args`: the canonical JSON of `args`, RFC 8785 (JCS): no white space, object keys sorted
//!    by UTF-16 code units, strings escaped as `JSON.stringify` does, numbers as ECMAScript
//!    writes a double (`2.5`, `100`, `1e+21`) — any RFC 8785 library gives these bytes;
//! 6. `issued_at`, 7. `expires_at`: the strings exactly as in the message;
//! 8. `key_id`: as in the message;
//! 9. `counter`: in decimal.
//!
//! Topic and device come from the receiving device, never from the message: a message signed
//! for another device or topic fails as `bad_signature`. The signature is checked with
//! `verify_strict` (no small-order keys or non-canonical signatures).
//!
//! The example's signed bytes (device `north/box-1`, prefix `watchpost`; every line ends with
//! LF):
//!
//! ```text
//! watchpost.command/1
//! topic 25 watchpost/north/box-1/cmd
//! device 11 north/box-1
//! id 6 cmd-42
//! command 8 snapshot
//! args 17 {"camera":"gate"}
//! issued_at 24 2026-11-29T02:31:08.000Z
//! expires_at 24 2026-11-29T02:36:08.000Z
//! key_id 7 central
//! counter 2 42
//! ```
//!
//! The example message, signed with the secret key of RFC 8032's first test vector
//! (`9d61b19d…1cae7f60`, public `d75a9801…f707511a`):
//!
//! ```json
//! {"schema":"watchpost.command/1","id":"cmd-42","command":"snapshot","args":{"camera":"gate"},"issued_at":"2026-11-29T02:31:08.000Z","expires_at":"2026-11-29T02:36:08.000Z","key_id":"central","counter":42,"signature":"hpZx9WNQN0oU7X/KJKkj4WA0PTBwhIQZSry6TFdo+xeiMCrjGMFy4+/YgaxNg8K3F50ZqGEIJaeAqJidj96iDA=="}
//! ```
//!
//! ## Checks, in order ([`Inbox::receive`]; each refusal has a stable [`Refusal::code`])
//! 1. retained → `retained` (only logged, no result);
//! 2. another topic → `wrong_topic`;
//! 3. larger than [`MAX_MESSAGE_BYTES`] → `oversized` (not read); not a well-formed message →
//!    `malformed` (the result's `id` is `null` unless a well-formed `id` could be read);
//! 4. `key_id` not trusted → `unknown_key`; signature → `bad_signature`;
//! 5. `expires_at` − `issued_at` over the window → `validity_too_long`; `issued_at` more than
//!    [`CLOCK_SKEW`] (30 s) ahead of the device's clock → `not_yet_valid`; `expires_at` reached
//!    → `expired` (no allowance: a device whose clock is ahead sees commands expire early);
//! 6. not on the allow-list → `unknown_command`; disabled → `disabled`; wrong arguments →
//!    `bad_args`;
//! 7. `counter` equal to the key's last accepted → `replayed`, below it → `counter_behind`;
//!    the counter file unreadable or unwritable → `counters_unusable`. Otherwise the counter is
//!    stored durably ([`CounterStore`]) and the command is accepted.
//!
//! A refused message changes nothing, not even the counter. An accepted command's counter is
//! stored before it is acted on, so a command runs at most once: if the agent stops before
//! acting, the broker's redelivery is refused as `replayed`; the central system sends a new
//! command with a new counter.
//!
//! ## Results (`watchpost.command-result/1`)
//! `{"schema", "id", "command", "status": "ok"|"refused"|"failed", "code", "reason", "result",
//! "at"}` ([`CommandResult`]): `code` is the refusal's code (`null` unless refused), `reason`
//! words (`null` when ok, at most [`MAX_REASON_CHARS`] characters), `result` what the command
//! returned.
//!
//! ## Keys ([`keys`])
//! Ed25519 in PEM: private keys PKCS#8 (`BEGIN PRIVATE KEY`), public keys SPKI (`BEGIN PUBLIC
//! KEY`), as `watchpost keys generate` or `openssl genpkey -algorithm ed25519` and
//! `openssl pkey -pubout` make them. A key's id is its file's name without the extension.

mod canonical;
mod commands;
mod counters;
mod inbox;
pub mod keys;
mod message;
mod refusal;
mod sign;

pub use canonical::{Args, MAX_SAFE_INTEGER, canonical_bytes};
pub use commands::{
    Command, CommandName, ConfigChange, MAX_SET_KEY_LEN, MAX_SET_KEYS, MAX_VERSION_LEN,
};
pub use counters::{COUNTERS_SCHEMA, CounterCheck, CounterError, CounterStore};
pub use inbox::{
    Accepted, AuditRecord, CLOCK_SKEW, DEFAULT_MAX_VALIDITY, Inbox, MAX_WAITING, Outcome, Policy,
    Received, Refused, Verdict,
};
pub use keys::{KeyError, SigningIdentity, TrustedKey, TrustedKeys};
pub use message::{
    COMMAND_SCHEMA, CommandMessage, CommandResult, DeviceId, MAX_COMMAND_LEN, MAX_ID_LEN,
    MAX_MESSAGE_BYTES, MAX_REASON_CHARS, MAX_TIMESTAMP_LEN, Peek, RESULT_SCHEMA, Status,
};
pub use refusal::Refusal;
pub use sign::{Draft, new_id, set_signature, sign};

#[cfg(test)]
mod tests;
