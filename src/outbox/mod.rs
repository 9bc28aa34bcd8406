//! The event outbox: events wait on disk until the broker has acknowledged them, so a dead
//! uplink, a broker restart, an agent crash or a power cut loses no event that fits the bound.
//!
//! ```text
//!  inference threads ─EventSink::offer (never blocks; over 1024 waiting: dropped, `backlog`)─▶
//!    outbox thread: numbers the event (seq, event_id), appends it to the log (synced per
//!    `[outbox] sync`), enforces the bounds, announces drops
//!      │ while connected: up to WINDOW records handed out, oldest first
//!      ▼
//!    publisher ─QoS 1─▶ broker ─PUBACK─▶ publisher ─DeliveryLink::acked─▶ record done
//! ```
//!
//! ## Invariants
//! - **Produced means written.** An event gets its `seq` and `event_id` only when its record is
//!   appended to the log, and under the default `sync = "every_event"` the append is on disk
//!   (fdatasync) before the next event is taken. An event that could not be written (read-only
//!   or full disk) gets no number: `seq` has no gap for it; it is counted as `write_failed` and
//!   announced once the disk takes writes again. While the disk refuses, `health` and `status`
//!   say what failed, where and why (`outbox.error`); the thread never stops for it, and
//!   storing resumes by itself when the disk takes writes again.
//! - **Per camera, `seq` is contiguous and never reused**, across restarts, crashes and power
//!   loss (the log and its state file hold the last number; a torn tail is cut off on open, and
//!   the events in it were never produced).
//! - **Damage loses only what is damaged.** On open every record is checked; damaged bytes are
//!   cut out and every intact record kept, those after the damage too ([`log`] says how). The
//!   events lost are counted in `health` (`outbox.damaged`) and logged, not announced: their
//!   seqs are a gap no `events_dropped` explains. A record found damaged while delivering makes
//!   the thread reopen the log, which repairs it the same way. A state file that does not
//!   parse is moved aside and the state rebuilt from the records.
//! - **A record leaves only after the broker's PUBACK** for every message of it (the snapshot,
//!   then the event). After a reconnect, delivery resumes from the oldest unacknowledged
//!   record, in log order, so each camera's events arrive in `seq` order. Records handed out
//!   for a connection that ended are ignored by the publisher and sent again.
//! - **At least once.** The delivered position is saved about once a second and at shutdown;
//!   after a crash, records acknowledged since the last save are sent again. Consumers drop
//!   duplicates by `event_id`.
//! - **Bounded.** By bytes (`max_size_mb`; the log can exceed it by one segment, 1/16 of the
//!   bound) and by age (`max_age_h`). When full, `drop_oldest` (default) drops the oldest
//!   segment's undelivered events, `drop_newest` refuses new ones. Every drop is counted in
//!   `health` (`outbox.dropped`) and announced by an `events_dropped` event of its own on the
//!   camera's events topic, naming the reason, the count and, for numbered events, the seq
//!   range.
//! - **Never on the frame path.** The inference threads only push into a bounded in-memory
//!   inbox; disk and broker waits happen on the outbox thread and the publisher task.
//! - Detections are not kept here: they are a live QoS 0 stream, dropped (and counted) while
//!   the broker is unreachable.

pub mod log;
mod service;

pub use log::{DropCause, Log, LogOptions, Message, OutboxError, Record, SyncPolicy, WhenFull};
pub use service::{
    DeliveryLink, DropNotice, Entry, EventSink, INBOX_CAPACITY, NoticeReason, Outbox,
    OutboxFigures, OutboxOptions, OutboxStats, Outgoing, Stamp, WINDOW,
};

use crate::config::{OutboxConfig, OutboxSync};

impl OutboxOptions {
    /// The options `[outbox]` asks for.
    pub fn from_config(config: &OutboxConfig) -> OutboxOptions {
        let when_full = match config.when_full {
            crate::config::WhenFull::DropOldest => WhenFull::DropOldest,
            crate::config::WhenFull::DropNewest => WhenFull::DropNewest,
        };
        let sync = match config.sync {
            OutboxSync::EveryEvent => SyncPolicy::EveryRecord,
            OutboxSync::Interval(every) => SyncPolicy::Interval(every),
            OutboxSync::Never => SyncPolicy::Never,
        };
        OutboxOptions {
            dir: config.dir.clone(),
            log: LogOptions::new(config.max_bytes, config.max_age, when_full, sync),
        }
    }
}
