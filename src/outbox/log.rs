//! The disk-backed, append-only, segmented log behind the event outbox.
//!
//! An event (with its snapshot) becomes one [`Record`]: the MQTT messages that are delivered
//! together. [`Log::append`] numbers it and writes it to the current segment; the publisher
//! reads records in order with [`Log::next_after`] and reports each acknowledged one with
//! [`Log::mark_done`]; [`Log::enforce`] drops what is too old or over the size bound;
//! [`Log::persist_state`] writes the delivery state and deletes delivered segments.
//!
//! Pure synchronous `std` file I/O, owned by one thread (no locking inside).
//!
//! ## Files (all in the log's directory)
//! - `{first_id:020}.log`, the segments: records back to back, each framed as
//!   `magic u32 LE | body length u32 LE | crc32 of the body u32 LE | body`; the body holds
//!   `id, created_ms, seq u64 LE, camera, event_id, message count u32, (topic, payload)*`,
//!   strings and bytes as `u32 LE length | bytes`. Ids are contiguous inside a segment.
//! - `state`: text, replaced atomically (`state.tmp`, fsync, rename, fsync the directory):
//!   ```text
//!   watchpost-outbox 1
//!   next_id 42
//!   done_through 37
//!   camera gate epoch 3f2a9c0d11e4b705 last_seq 17
//!   ```
//!
//! ## Invariants
//! - **Append before produced**: a record exists only once it is written (and, under
//!   [`SyncPolicy::EveryRecord`], fdatasync'd, with the segment's directory entry synced when
//!   the segment was created). A failed append leaves no partial record behind (best effort
//!   truncation, and the next append overwrites the same place) and consumes neither an id nor
//!   a seq.
//! - **Ids strictly increase** (from 1) and are never reused, even when every segment has
//!   been deleted: the state file, written before any segment is deleted, keeps `next_id`.
//!   Exception: the ids of records lost from the end of the log (below) are handed out again.
//! - **Seqs per camera are contiguous**, never skipped and never reused, across restarts and
//!   crashes: a seq is assigned from the highest seq in the log or in the state, and the state
//!   (written before a segment is deleted) holds the highest seq handed out when it was
//!   written. A camera's random epoch is in the state file before its first record is written.
//!   Exceptions, both a loss of records: under [`SyncPolicy::Interval`] and
//!   [`SyncPolicy::Never`] a *power loss* (not a process crash: the page cache survives those)
//!   can lose the unsynced tail, and a damaged disk can lose records anywhere. Their seqs are
//!   skipped if the state file had been written since they were appended (it is about once a
//!   second while records are delivered), else handed out again.
//! - **At least once**: the done state is persisted lazily by [`Log::persist_state`]; after a
//!   crash, records marked done since the last persist are read (and delivered) again.
//!   Dropped records ([`Log::enforce`]) count as done and are reported as [`Dropped`].
//! - **Bounded disk**: with [`WhenFull::DropOldest`] the segments take at most `max_bytes`
//!   plus one segment (`segment_bytes`, or one record when a record is larger) after
//!   [`Log::enforce`]: the segment being written is never dropped. With
//!   [`WhenFull::DropNewest`] an append that would go over `max_bytes` is refused.
//! - **Every intact record survives damage**: on open every record is checked (magic, length,
//!   crc, ids). Damaged bytes (a torn tail after a crash, flipped bits, a lost block) are cut
//!   away; the intact records before them stay in their segment, the intact records after
//!   them (found by looking for the next record that checks) are moved to a segment of their
//!   own, named by their first id, before the damaged segment is cut (an interrupted repair is
//!   done again on the next open). Each repair is reported in [`Recovery`], with the records
//!   lost: the ids missing between intact records, and at the end of the log the ids the state
//!   file counts (a torn write the state does not know of was never produced). A damaged log
//!   never stops the agent from starting. A `state` file that cannot be parsed is moved to
//!   `state.damaged` and the state recovered from the segments as if it had been lost; only an
//!   unreadable one, or one of a later version, is an error (the caller decides).
//! - A `state` file has no checksum: damage that leaves it parseable (a digit flipped) is not
//!   detected.
//! - **Bounded memory**: per segment only its id range, size and per-camera highest seq are
//!   kept; records are read from disk. Records marked done out of order are kept in a set
//!   until the ids below them are done.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The largest record (frame header included), in bytes; a larger event is refused with
/// [`OutboxError::TooLarge`].
pub const MAX_RECORD_BYTES: u64 = 16 << 20;

/// `magic` of every record frame: `wpR1`.
const MAGIC: u32 = u32::from_le_bytes(*b"wpR1");
/// magic, body length, crc.
const FRAME_HEADER_BYTES: u64 = 12;
/// id, created_ms, seq, camera length: the fixed start of every body.
const HEAD_FIXED_BYTES: usize = 8 + 8 + 8 + 4;
/// Camera names: 1..=64 of `[A-Za-z0-9_-]`, as in the configuration.
const MAX_CAMERA_LEN: usize = 64;
const STATE_VERSION_LINE: &str = "watchpost-outbox 1";
const STATE_FILE: &str = "state";
const STATE_TMP_FILE: &str = "state.tmp";
const SEGMENT_SUFFIX: &str = ".log";
/// A segment being written by a repair ([`copy_to_segment`]), renamed to `.log` when complete.
const SALVAGE_SUFFIX: &str = ".log.tmp";
/// Where a damaged `state` file is moved by [`Log::open`].
const STATE_DAMAGED_FILE: &str = "state.damaged";
const READ_BUFFER_BYTES: usize = 64 << 10;

/// One MQTT message of a record; always published with QoS 1, not retained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// One event waiting for delivery: the messages that are published together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Log-wide, strictly increasing from 1, never reused.
    pub id: u64,
    pub camera: String,
    /// Per camera, +1 per record, assigned by the log.
    pub seq: u64,
    /// `{epoch:016x}-{seq}` with the camera's random epoch.
    pub event_id: String,
    /// Unix time in milliseconds when it was appended (given by the caller).
    pub created_ms: u64,
    pub messages: Vec<Message>,
}

/// When appended records are forced to disk (fdatasync).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Before [`Log::append`] returns: a power loss loses nothing that was appended.
    EveryRecord,
    /// At most once per interval: in [`Log::append`] when the interval has passed since the
    /// last sync, else in [`Log::sync_if_due`]; a power loss can lose up to one interval.
    Interval(Duration),
    /// Left to the kernel (only [`Log::sync_now`] syncs).
    Never,
}

/// What happens when the log reaches `max_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Appends go on; [`Log::enforce`] drops the oldest segment (counted, reported).
    DropOldest,
    /// Appends are refused with [`OutboxError::Full`]; what is stored is kept.
    DropNewest,
}

/// The log's bounds and policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Bound on the sum of the segment file sizes (see [`WhenFull`]; with `DropOldest` it can
    /// be exceeded by up to one segment).
    pub max_bytes: u64,
    /// Records older than this (by `created_ms`) are dropped by [`Log::enforce`].
    pub max_age: Duration,
    pub when_full: WhenFull,
    pub sync: SyncPolicy,
    /// A new segment is started when a record would take the current one over this size.
    pub segment_bytes: u64,
}

impl LogOptions {
    /// Options with `segment_bytes` = `max_bytes / 16`, clamped to 64 KiB..=16 MiB.
    pub fn new(max_bytes: u64, max_age: Duration, when_full: WhenFull, sync: SyncPolicy) -> Self {
        LogOptions {
            max_bytes,
            max_age,
            when_full,
            sync,
            segment_bytes: (max_bytes / 16).clamp(64 << 10, 16 << 20),
        }
    }
}

/// Why the log could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A file could not be read or written (disk full, read-only, removed). Retrying may help
    /// once the cause is gone; nothing was half done.
    #[error("{}: cannot {op}", path.display())]
    Io {
        path: PathBuf,
        /// What was being done: `open`, `read`, `write`, `sync`, ...
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// A file is not what this log can use: a `state` file of a later version (at open), or a
    /// segment damaged while running (reopening the log repairs it). Retrying does not help.
    #[error("{}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// The event is over [`MAX_RECORD_BYTES`]; retrying does not help. Its seq is not used.
    #[error(
        "event {event_id} of camera {camera} takes {bytes} bytes, over the {max} bytes an outbox record may hold"
    )]
    TooLarge {
        camera: String,
        event_id: String,
        bytes: u64,
        max: u64,
    },
    /// [`WhenFull::DropNewest`] and the event does not fit; retrying helps once records are
    /// delivered. Its seq is not used.
    #[error(
        "outbox {} is full ({used} of {max} bytes used, the event needs {needed}): event of camera {camera} refused",
        dir.display()
    )]
    Full {
        dir: PathBuf,
        camera: String,
        needed: u64,
        used: u64,
        max: u64,
    },
    /// The camera name cannot be stored (1 to 64 of `[A-Za-z0-9_-]`).
    #[error(
        "camera name `{camera}` cannot be stored in the outbox (use 1 to 64 of A-Z a-z 0-9 _ -)"
    )]
    BadCamera { camera: String },
}

impl OutboxError {
    /// The disk is full (or the user's quota used up).
    pub fn is_no_space(&self) -> bool {
        matches!(
            self,
            OutboxError::Io { source, .. }
                if matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
        )
    }
}

/// Why records were dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropCause {
    /// The log was over `max_bytes` ([`WhenFull::DropOldest`]).
    Full,
    /// Older than `max_age`.
    Expired,
}

impl DropCause {
    /// `full` or `expired`, for counters and log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            DropCause::Full => "full",
            DropCause::Expired => "expired",
        }
    }
}

/// Records of one camera dropped for one cause by one [`Log::enforce`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    pub camera: String,
    pub count: u64,
    /// Lowest and highest dropped seq; seqs in between that were already delivered are not
    /// counted, so `count` can be less than `last_seq - first_seq + 1`.
    pub first_seq: u64,
    pub last_seq: u64,
    pub reason: DropCause,
}

/// What [`Log::open`] found and repaired; the caller logs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// `false` when there was no `state` file (a new log, or a lost state: every record in
    /// the log is then delivered again), or a damaged one.
    pub state_found: bool,
    /// Why the `state` file was not usable: it was moved to `state.damaged` and the state
    /// recovered from the segments, as if it had been lost.
    pub state_damaged: Option<String>,
    /// Segments kept.
    pub segments: usize,
    /// Records kept (delivered or not).
    pub records: u64,
    /// Records not done.
    pub pending: u64,
    /// `created_ms` of the oldest record not done.
    pub oldest_created_ms: Option<u64>,
    /// Bytes cut away from damaged segments, summed over `repairs`.
    pub truncated_bytes: u64,
    /// Records lost to damage, summed over `repairs` (see [`Repair::damaged_records`]).
    pub damaged_records: u64,
    /// Intact records found after damage and kept, summed over `repairs`.
    pub salvaged_records: u64,
    /// One entry per damaged segment.
    pub repairs: Vec<Repair>,
    /// Segments deleted because every record in them was done.
    pub deleted_segments: usize,
}

/// A damaged segment, and what was done about it: the intact records before the damage stay
/// in it (it is cut where they end), intact records after it are moved to segments of their
/// own, the damaged bytes are gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    pub path: PathBuf,
    /// Where the intact records before the damage end; the segment now ends there (0: the
    /// file was deleted, or replaced by the records found after the damage).
    pub offset: u64,
    /// Damaged bytes removed.
    pub truncated_bytes: u64,
    /// `true` for the newest segment: a torn write (crash, power loss) is expected there;
    /// damage in an older segment means the disk lost data.
    pub last_segment: bool,
    /// What was wrong first.
    pub reason: String,
    /// Records lost, not yet delivered: the ids between the intact records around the damage;
    /// after the last intact one, the ids up to the next segment or, in the newest segment,
    /// up to the state file's `next_id` (a torn write the state does not know of was never
    /// produced, and is not counted).
    pub damaged_records: u64,
    /// Intact records found after the damage, kept in segments of their own.
    pub salvaged_records: u64,
}

/// A snapshot of the log's size and progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogStats {
    /// Records not done.
    pub pending: u64,
    /// Sum of the segment file sizes.
    pub disk_bytes: u64,
    pub segments: usize,
    /// `created_ms` of the oldest record not done, as of the last [`Log::enforce`] or
    /// [`Log::append`]: it can be that of a record delivered since, and is `None` when no
    /// record is pending or, after segments were deleted, until the next [`Log::enforce`].
    pub oldest_pending_created_ms: Option<u64>,
    /// The id the next record gets.
    pub next_id: u64,
    /// Every id up to this one is delivered or dropped.
    pub done_through: u64,
}

/// One segment file. Invariant: it holds at least one record, ids `first_id..=last_id`.
#[derive(Debug)]
struct Segment {
    first_id: u64,
    last_id: u64,
    path: PathBuf,
    /// Valid bytes (= the file size, but for a failed write whose truncation failed).
    bytes: u64,
    /// Highest seq per camera in this segment.
    cameras: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct Camera {
    epoch: u64,
    /// The highest seq in the log or in the state: the next record gets `last_seq + 1`.
    last_seq: u64,
    /// `last_seq` as last written to the state file.
    persisted_seq: u64,
}

/// Where a record starts, and what its head says.
#[derive(Clone, Debug)]
struct Position {
    segment: u64,
    offset: u64,
    id: u64,
    created_ms: u64,
    seq: u64,
    camera: String,
}

/// The oldest record not done, tracked so that [`Log::enforce`] need not read the disk.
#[derive(Clone, Debug)]
enum Oldest {
    /// No record is pending.
    Nothing,
    /// This record, or (once it is done) the first pending record after it.
    At(Position),
    /// Look from `done_through + 1`.
    Unknown,
}

/// The disk-backed outbox log. See the module documentation for its invariants.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    options: LogOptions,
    /// In id order; the last one is the one appended to.
    segments: Vec<Segment>,
    /// Open on the last segment, once something was appended to it in this run.
    writer: Option<File>,
    next_id: u64,
    done_through: u64,
    /// Done ids above `done_through + 1`; each is held by a segment.
    done_above: BTreeSet<u64>,
    cameras: BTreeMap<String, Camera>,
    /// `done_through` or a camera changed since the state was written.
    state_dirty: bool,
    disk_bytes: u64,
    /// Where [`Log::next_after`] stopped.
    reader: Option<SegmentReader>,
    oldest: Oldest,
    /// Just after the record `oldest` names, when it was read.
    age_reader: Option<SegmentReader>,
    /// `next_id` as last written to the state file.
    persisted_next_id: u64,
    /// Dropped by an [`Log::enforce`] that then failed: reported by the next one.
    unreported_drops: BTreeMap<(DropCause, String), Dropped>,
    /// The writer has data not yet synced.
    unsynced: bool,
    last_sync: Instant,
}

impl Log {
    /// Opens or creates the log in `dir`.
    ///
    /// Reads `state` (one that cannot be parsed is moved to `state.damaged` and reported in
    /// [`Recovery::state_damaged`]), scans the segments in id order and checks every record.
    /// Damaged bytes (a torn tail after a crash, a crc mismatch, zeros) are cut away and
    /// reported in [`Recovery::repairs`]; every intact record is kept, those after damage in a
    /// segment of their own. Deletes segments whose records are all done. A camera's last seq
    /// is the highest of the state's and the log's.
    ///
    /// # Errors
    /// [`OutboxError::Corrupt`] for a `state` file of a later version (left alone);
    /// [`OutboxError::Io`] when the directory or a file cannot be created, listed, read,
    /// truncated or written. Damaged segments are never an error.
    pub fn open(dir: &Path, options: LogOptions) -> Result<(Log, Recovery), OutboxError> {
        fs::create_dir_all(dir).map_err(io_error(dir, "create the directory"))?;
        let state_path = dir.join(STATE_FILE);
        let mut recovery = Recovery::default();
        let state = match fs::read(&state_path) {
            Ok(bytes) => {
                let parsed = match String::from_utf8(bytes) {
                    Ok(text) => parse_state(&text),
                    Err(_) => Err(StateError::Damaged(
                        "not a watchpost outbox state file (not text)".to_owned(),
                    )),
                };
                match parsed {
                    Ok(state) => Some(state),
                    Err(StateError::Unsupported(reason)) => {
                        return Err(OutboxError::Corrupt {
                            path: state_path,
                            reason,
                        });
                    }
                    Err(StateError::Damaged(reason)) => {
                        // Kept for a look, out of the way; the segments say what the state
                        // said, but for what was delivered.
                        let aside = dir.join(STATE_DAMAGED_FILE);
                        fs::rename(&state_path, &aside)
                            .map_err(io_error(&state_path, "move aside"))?;
                        recovery.state_damaged = Some(reason);
                        None
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(OutboxError::Io {
                    path: state_path,
                    op: "read",
                    source,
                });
            }
        };
        let tmp = dir.join(STATE_TMP_FILE);
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_error(&tmp, "remove")(e));
            }
            _ => {}
        }

        recovery.state_found = state.is_some();
        let state = state.unwrap_or_default();
        let mut state_dirty = !recovery.state_found;
        let mut cameras: BTreeMap<String, Camera> = state
            .cameras
            .iter()
            .map(|(name, &(epoch, last_seq))| {
                let camera = Camera {
                    epoch,
                    last_seq,
                    persisted_seq: last_seq,
                };
                (name.clone(), camera)
            })
            .collect();

        let mut listed: VecDeque<(u64, PathBuf)> = list_segments(dir)?.into();
        // The newest segment file: its first id and path.
        let mut last_listed: Option<(u64, PathBuf)> = None;
        let mut segments: Vec<Segment> = Vec::with_capacity(listed.len());
        let mut oldest = Oldest::Nothing;
        // Ids above this one may be pending; only those count as damaged.
        let not_done =
            |from: u64, below: u64| below.saturating_sub(from.max(state.done_through + 1));
        while let Some((first_id, path)) = listed.pop_front() {
            let min_id = segments.last().map_or(1, |s: &Segment| s.last_id + 1);
            let scan = scan_segment(&path, first_id, min_id)?;
            let kept_bytes: u64 = scan.runs.iter().map(|r| r.end - r.start).sum();
            let mut repair = scan.damage.map(|reason| Repair {
                path: path.clone(),
                offset: 0,
                truncated_bytes: scan.file_bytes - kept_bytes,
                last_segment: false,
                reason,
                damaged_records: 0,
                salvaged_records: 0,
            });
            // Ids lost between the intact runs, and (but in the newest segment, counted below
            // against the state) after the last one.
            let mut expected = first_id.max(min_id);
            let mut in_place: Option<Run> = None;
            let mut moved: Vec<(PathBuf, Run)> = Vec::new();
            for run in scan.runs {
                if let Some(repair) = &mut repair {
                    repair.damaged_records += not_done(expected, run.first_id());
                }
                expected = run.last_id() + 1;
                if run.start == 0 {
                    in_place = Some(run);
                } else {
                    moved.push((segment_path(dir, run.first_id()), run));
                }
            }
            // Intact records after damage move to segments of their own (written before the
            // damaged file is cut: an interruption leaves the damage to be found again).
            // (One that takes the damaged file's own name goes last: the others are copied
            // from that file.)
            let replaced = moved.iter().any(|(target, _)| *target == path);
            let (others, same): (Vec<_>, Vec<_>) =
                moved.iter().partition(|(target, _)| *target != path);
            for (target, run) in others.into_iter().chain(same) {
                copy_to_segment(&path, run.start, run.end, target)?;
                // A copy left by an interrupted repair was just written again.
                listed.retain(|(_, p)| p != target);
            }
            if !moved.is_empty() {
                sync_dir(dir)?;
            }
            if let Some(repair) = &mut repair {
                match listed.front() {
                    Some(&(next, _)) => repair.damaged_records += not_done(expected, next),
                    None => repair.last_segment = true,
                }
                repair.offset = in_place.as_ref().map_or(0, |r| r.end);
                repair.salvaged_records = moved.iter().map(|(_, r)| r.heads.len() as u64).sum();
                if let (Some(run), false) = (&in_place, replaced) {
                    truncate_segment(&path, run.end)?;
                }
            }
            if in_place.is_none() && !replaced {
                // Nothing usable here (an empty file left by a crash, or damaged from the
                // start).
                fs::remove_file(&path).map_err(io_error(&path, "remove"))?;
            }
            let kept = in_place
                .map(|run| (path.clone(), run, 0))
                .into_iter()
                .chain(moved.into_iter().map(|(target, run)| {
                    let start = run.start;
                    (target, run, start)
                }));
            for (path, run, shift) in kept {
                let mut segment = Segment {
                    first_id: run.first_id(),
                    last_id: run.last_id(),
                    path,
                    bytes: run.end - run.start,
                    cameras: BTreeMap::new(),
                };
                for head in &run.heads {
                    let seq = segment.cameras.entry(head.camera.clone()).or_insert(0);
                    *seq = (*seq).max(head.seq);
                    let camera = cameras.entry(head.camera.clone()).or_insert_with(|| {
                        state_dirty = true;
                        Camera {
                            epoch: head.epoch,
                            last_seq: 0,
                            persisted_seq: 0,
                        }
                    });
                    camera.last_seq = camera.last_seq.max(head.seq);
                    if matches!(oldest, Oldest::Nothing) && head.id > state.done_through {
                        oldest = Oldest::At(Position {
                            segment: segment.first_id,
                            offset: head.offset - shift,
                            id: head.id,
                            created_ms: head.created_ms,
                            seq: head.seq,
                            camera: head.camera.clone(),
                        });
                    }
                }
                segments.push(segment);
            }
            if let Some(repair) = repair {
                recovery.repairs.push(repair);
            }
            if listed.is_empty() {
                last_listed = Some((first_id, path));
            }
        }

        // Records the state counts (ids below its next_id) that the newest segment no longer
        // holds: its tail was cut or damaged. They are counted once: the log forgets their ids
        // (the next record takes the first of them), and their seqs stay used.
        let last_log_id = segments.last().map_or(0, |s| s.last_id);
        let last_listed_first_id = last_listed.as_ref().map_or(0, |(id, _)| *id);
        let tail_from = last_log_id.max(last_listed_first_id.saturating_sub(1)) + 1;
        let tail_lost = if recovery.state_found {
            not_done(tail_from, state.next_id)
        } else {
            0
        };
        let next_id = if tail_lost > 0 {
            last_log_id.max(state.done_through) + 1
        } else {
            state
                .next_id
                .max(last_log_id + 1)
                .max(state.done_through + 1)
        };
        if tail_lost > 0 {
            let reason = format!(
                "records {tail_from} to {} are missing (the state file counts them)",
                state.next_id - 1
            );
            match recovery.repairs.iter_mut().find(|r| r.last_segment) {
                Some(repair) => repair.damaged_records += tail_lost,
                None => recovery.repairs.push(Repair {
                    path: last_listed.map_or_else(|| dir.to_owned(), |(_, path)| path),
                    offset: segments
                        .last()
                        .filter(|s| s.last_id >= last_listed_first_id)
                        .map_or(0, |s| s.bytes),
                    truncated_bytes: 0,
                    last_segment: true,
                    reason,
                    damaged_records: tail_lost,
                    salvaged_records: 0,
                }),
            }
        }
        recovery.truncated_bytes = recovery.repairs.iter().map(|r| r.truncated_bytes).sum();
        recovery.damaged_records = recovery.repairs.iter().map(|r| r.damaged_records).sum();
        recovery.salvaged_records = recovery.repairs.iter().map(|r| r.salvaged_records).sum();
        let disk_bytes = segments.iter().map(|s| s.bytes).sum();
        let mut log = Log {
            dir: dir.to_owned(),
            options,
            segments,
            writer: None,
            next_id,
            done_through: state.done_through,
            done_above: BTreeSet::new(),
            cameras,
            state_dirty,
            disk_bytes,
            reader: None,
            oldest,
            age_reader: None,
            persisted_next_id: state.next_id,
            unreported_drops: BTreeMap::new(),
            unsynced: false,
            last_sync: Instant::now(),
        };
        log.advance_done_through();
        log.state_dirty |= state_dirty || log.next_id != state.next_id;
        let before = log.segments.len();
        log.delete_done_segments(true)?;
        recovery.deleted_segments = before - log.segments.len();
        if log.state_dirty {
            log.write_state()?;
        }
        let stats = log.stats();
        recovery.records = log
            .segments
            .iter()
            .map(|s| s.last_id - s.first_id + 1)
            .sum();
        recovery.segments = stats.segments;
        recovery.pending = stats.pending;
        recovery.oldest_created_ms = stats.oldest_pending_created_ms;
        Ok((log, recovery))
    }

    /// Appends one event of `camera`: assigns the camera's next seq and event_id, calls
    /// `build(seq, &event_id)` for its messages, writes the record and syncs per the
    /// [`SyncPolicy`]. A camera seen for the first time gets a random epoch, written to the
    /// state file before its first record.
    ///
    /// A new segment is started when the record would take the current one over
    /// `segment_bytes`. With [`WhenFull::DropOldest`] the caller calls [`Log::enforce`] after
    /// appends to keep the log within its bounds.
    ///
    /// A full disk (ENOSPC) first gets back the room of delivered records: their segments are
    /// deleted (the one being written too, when all of it is delivered; the state file is
    /// written first if it must be, which a full disk may refuse) and the write is tried once
    /// more.
    ///
    /// # Errors
    /// On any error no id and no seq are used: the next append of the camera gets the same
    /// seq, and no partial record is left (the segment is truncated back, best effort).
    /// [`OutboxError::Full`] ([`WhenFull::DropNewest`] only), [`OutboxError::TooLarge`],
    /// [`OutboxError::BadCamera`], [`OutboxError::Io`] (disk full, read-only).
    pub fn append(
        &mut self,
        camera: &str,
        created_ms: u64,
        build: impl FnOnce(u64, &str) -> Vec<Message>,
    ) -> Result<Record, OutboxError> {
        if !valid_camera(camera) {
            return Err(OutboxError::BadCamera {
                camera: camera.to_owned(),
            });
        }
        if !self.cameras.contains_key(camera) {
            let new = Camera {
                epoch: random_u64(),
                last_seq: 0,
                persisted_seq: 0,
            };
            self.cameras.insert(camera.to_owned(), new);
            if let Err(e) = self.write_state() {
                self.cameras.remove(camera);
                return Err(e);
            }
        }
        let (epoch, seq) = {
            let c = &self.cameras[camera];
            (c.epoch, c.last_seq + 1)
        };
        let event_id = format!("{epoch:016x}-{seq}");
        let messages = build(seq, &event_id);
        let record = Record {
            id: self.next_id,
            camera: camera.to_owned(),
            seq,
            event_id,
            created_ms,
            messages,
        };
        let frame_bytes = frame_len(&record);
        if frame_bytes > MAX_RECORD_BYTES {
            return Err(OutboxError::TooLarge {
                camera: record.camera,
                event_id: record.event_id,
                bytes: frame_bytes,
                max: MAX_RECORD_BYTES,
            });
        }
        if self.options.when_full == WhenFull::DropNewest
            && self.disk_bytes + frame_bytes > self.options.max_bytes
        {
            self.delete_done_segments(true)?;
            if self.disk_bytes + frame_bytes > self.options.max_bytes {
                return Err(OutboxError::Full {
                    dir: self.dir.clone(),
                    camera: record.camera,
                    needed: frame_bytes,
                    used: self.disk_bytes,
                    max: self.options.max_bytes,
                });
            }
        }
        let frame = encode_frame(&record);
        let offset = match self.write_frame(record.id, &frame) {
            Err(e)
                if e.is_no_space()
                    && self
                        .segments
                        .first()
                        .is_some_and(|s| s.last_id <= self.done_through) =>
            {
                // The disk is full and delivered records take room on it (the segment being
                // written too, once all of it is delivered): give that room back, once.
                self.delete_done_segments(true).map_err(|_| e)?;
                self.write_frame(record.id, &frame)?
            }
            result => result?,
        };

        let segment = self
            .segments
            .last_mut()
            .expect("write_frame leaves a segment");
        let seg_seq = segment.cameras.entry(record.camera.clone()).or_insert(0);
        *seg_seq = (*seg_seq).max(seq);
        let segment_first_id = segment.first_id;
        if let Some(c) = self.cameras.get_mut(camera) {
            c.last_seq = seq;
        }
        self.next_id += 1;
        if matches!(self.oldest, Oldest::Nothing) {
            self.oldest = Oldest::At(Position {
                segment: segment_first_id,
                offset,
                id: record.id,
                created_ms,
                seq,
                camera: record.camera.clone(),
            });
        }
        Ok(record)
    }

    /// Syncs the current segment if the [`SyncPolicy::Interval`] has passed since the last
    /// sync and something is unsynced; does nothing under the other policies.
    ///
    /// # Errors
    /// The sync failed ([`OutboxError::Io`]); appended records may not be durable.
    pub fn sync_if_due(&mut self) -> Result<(), OutboxError> {
        match self.options.sync {
            SyncPolicy::Interval(interval) if self.last_sync.elapsed() >= interval => {
                self.sync_now()
            }
            _ => Ok(()),
        }
    }

    /// Syncs the current segment now if something is unsynced (any policy; for shutdown).
    ///
    /// # Errors
    /// The sync failed ([`OutboxError::Io`]); appended records may not be durable.
    pub fn sync_now(&mut self) -> Result<(), OutboxError> {
        if self.unsynced
            && let (Some(writer), Some(segment)) = (&self.writer, self.segments.last())
        {
            writer
                .sync_data()
                .map_err(io_error(&segment.path, "sync"))?;
        }
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// The first record with id > `after` that is not done, read from disk; `None` when there
    /// is none (yet).
    ///
    /// Reading on from the previous record (`after` = its id) continues where the last call
    /// stopped: O(1) amortised. Going back (after a lost connection) rereads the segment from
    /// its start.
    ///
    /// # Errors
    /// [`OutboxError::Io`] or, for a segment damaged since [`Log::open`],
    /// [`OutboxError::Corrupt`] (reopening the log repairs it).
    pub fn next_after(&mut self, after: u64) -> Result<Option<Record>, OutboxError> {
        let target = after.max(self.done_through).saturating_add(1);
        let mut slot = self.reader.take();
        let found = self.seek_pending(&mut slot, target);
        let result = match found {
            Ok(Some(head)) => match slot.as_mut() {
                Some(reader) => reader.read_record(head).map(Some),
                None => Ok(None),
            },
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        // After an error the reader's position is unknown: start afresh next time.
        self.reader = if result.is_ok() { slot } else { None };
        result
    }

    /// Marks `id` delivered (its PUBACK arrived). Ids may be marked in any order and more than
    /// once; `done_through` advances over contiguous done ids. Ids the log does not hold are
    /// ignored. Segments whose records are all done are deleted by the next
    /// [`Log::persist_state`] (after the state that covers them is on disk).
    pub fn mark_done(&mut self, id: u64) {
        if id <= self.done_through || !self.holds(id) {
            return;
        }
        if self.done_above.insert(id) {
            self.advance_done_through();
        }
    }

    /// `true` when `id` was delivered or dropped.
    pub fn is_done(&self, id: u64) -> bool {
        id <= self.done_through || self.done_above.contains(&id)
    }

    /// Drops what is over the bounds, oldest first, and says what was dropped, one
    /// [`Dropped`] per camera and cause:
    /// 1. records whose `created_ms` is before `now_ms - max_age`, in id order up to the first
    ///    one that is young enough ([`DropCause::Expired`]);
    /// 2. with [`WhenFull::DropOldest`], while the segments take more than `max_bytes`:
    ///    segments whose records are all done are deleted, then the oldest segment's records
    ///    that are not done are dropped ([`DropCause::Full`]) and it is deleted. The segment
    ///    being written is never dropped, so the bound can be exceeded by up to one segment.
    ///
    /// Dropped records count as done. Cheap when nothing is due: the oldest pending record's
    /// time is kept in memory, and the disk is read only when it was delivered.
    ///
    /// # Errors
    /// [`OutboxError::Io`] or [`OutboxError::Corrupt`] reading a segment or writing the state;
    /// what was dropped before the error stays dropped and is reported by the next call that
    /// succeeds.
    pub fn enforce(&mut self, now_ms: u64) -> Result<Vec<Dropped>, OutboxError> {
        let mut dropped = std::mem::take(&mut self.unreported_drops);
        let result = self.enforce_into(now_ms, &mut dropped);
        match result {
            Ok(()) => Ok(dropped.into_values().collect()),
            Err(e) => {
                self.unreported_drops = dropped;
                Err(e)
            }
        }
    }

    fn enforce_into(
        &mut self,
        now_ms: u64,
        dropped: &mut BTreeMap<(DropCause, String), Dropped>,
    ) -> Result<(), OutboxError> {
        let max_age_ms = u64::try_from(self.options.max_age.as_millis()).unwrap_or(u64::MAX);
        let cutoff_ms = now_ms.saturating_sub(max_age_ms);
        loop {
            self.refresh_oldest()?;
            let Oldest::At(position) = &self.oldest else {
                break;
            };
            if position.created_ms >= cutoff_ms {
                break;
            }
            let (id, camera, seq) = (position.id, position.camera.clone(), position.seq);
            add_dropped(dropped, DropCause::Expired, camera, seq);
            self.mark_done(id);
        }

        if self.options.when_full == WhenFull::DropOldest
            && self.disk_bytes > self.options.max_bytes
        {
            self.delete_done_segments(true)?;
            while self.disk_bytes > self.options.max_bytes && self.segments.len() > 1 {
                let segment = &self.segments[0];
                let mut reader = SegmentReader::open(segment)?;
                while reader.next_id <= segment.last_id {
                    let head = reader.read_head()?;
                    if !self.is_done(head.id) {
                        add_dropped(dropped, DropCause::Full, head.camera.clone(), head.seq);
                    }
                    reader.skip(&head)?;
                }
                self.done_through = self.done_through.max(segment.last_id);
                self.done_above = self.done_above.split_off(&(self.done_through + 1));
                self.state_dirty = true;
                self.advance_done_through();
                self.delete_done_segments(false)?;
            }
        }
        self.refresh_oldest()
    }

    /// Writes the state file if `done_through` or a camera changed since it was last written,
    /// then deletes the segments whose records are all done (but the one being written).
    /// Call it about once a second and at shutdown.
    ///
    /// # Errors
    /// [`OutboxError::Io`]: the state could not be written (nothing is deleted then) or a
    /// segment could not be deleted.
    pub fn persist_state(&mut self) -> Result<(), OutboxError> {
        if self.state_dirty {
            self.write_state()?;
        }
        self.delete_done_segments(false)
    }

    /// The log's size and progress.
    pub fn stats(&self) -> LogStats {
        let in_log_pending: u64 = self
            .segments
            .iter()
            .filter(|s| s.last_id > self.done_through)
            .map(|s| s.last_id - s.first_id.max(self.done_through + 1) + 1)
            .sum();
        let oldest_pending_created_ms = match &self.oldest {
            Oldest::At(position) => Some(position.created_ms),
            Oldest::Nothing | Oldest::Unknown => None,
        };
        LogStats {
            pending: in_log_pending.saturating_sub(self.done_above.len() as u64),
            disk_bytes: self.disk_bytes,
            segments: self.segments.len(),
            oldest_pending_created_ms,
            next_id: self.next_id,
            done_through: self.done_through,
        }
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `frame` (record `id`) to the current segment, or to a new one; returns its
    /// offset. On error nothing is left behind (best effort) and the log is unchanged.
    fn write_frame(&mut self, id: u64, frame: &[u8]) -> Result<u64, OutboxError> {
        let frame_bytes = frame.len() as u64;
        let continue_last = self.segments.last().is_some_and(|s| {
            s.last_id + 1 == id && s.bytes + frame_bytes <= self.options.segment_bytes
        });
        if continue_last {
            let segment = self.segments.last().expect("checked above");
            let path = segment.path.clone();
            let offset = segment.bytes;
            if self.writer.is_none() {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_error(&path, "open"))?;
                self.writer = Some(file);
            }
            let sync = match self.options.sync {
                SyncPolicy::EveryRecord => true,
                SyncPolicy::Interval(interval) => self.last_sync.elapsed() >= interval,
                SyncPolicy::Never => false,
            };
            let file = self.writer.as_ref().expect("opened above");
            let mut result = file
                .write_all_at(frame, offset)
                .map_err(io_error(&path, "write"));
            if result.is_ok() && sync {
                result = file.sync_data().map_err(io_error(&path, "sync"));
            }
            if let Err(e) = result {
                let _ = file.set_len(offset);
                // Reopen next time (the file may have been replaced or remounted), and do not
                // trust what the readers buffered past the end.
                self.writer = None;
                self.reader = None;
                self.age_reader = None;
                return Err(e);
            }
            if sync {
                self.last_sync = Instant::now();
            }
            self.unsynced = !sync;
            let segment = self.segments.last_mut().expect("checked above");
            segment.last_id = id;
            segment.bytes += frame_bytes;
            self.disk_bytes += frame_bytes;
            return Ok(offset);
        }

        // A new segment. What is unsynced in the current one is synced first: nothing
        // else would sync it later.
        if self.options.sync != SyncPolicy::Never && self.unsynced {
            self.sync_now()?;
        }
        let path = segment_path(&self.dir, id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_error(&path, "create"))?;
        let mut result = file
            .write_all_at(frame, 0)
            .map_err(io_error(&path, "write"));
        if result.is_ok() && self.options.sync != SyncPolicy::Never {
            result = file
                .sync_data()
                .map_err(io_error(&path, "sync"))
                .and_then(|()| sync_dir(&self.dir));
        }
        if let Err(e) = result {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        // The readers may hold the old writer's segment; they stay valid.
        self.last_sync = Instant::now();
        self.unsynced = self.options.sync == SyncPolicy::Never;
        self.writer = Some(file);
        self.segments.push(Segment {
            first_id: id,
            last_id: id,
            path,
            bytes: frame_bytes,
            cameras: BTreeMap::new(),
        });
        self.disk_bytes += frame_bytes;
        Ok(0)
    }

    /// Whether some segment holds `id`.
    fn holds(&self, id: u64) -> bool {
        self.segment_at_or_after(id)
            .is_some_and(|i| self.segments[i].first_id <= id)
    }

    /// The first segment holding `id` or a later id.
    fn segment_at_or_after(&self, id: u64) -> Option<usize> {
        let i = self.segments.partition_point(|s| s.last_id < id);
        (i < self.segments.len()).then_some(i)
    }

    /// Moves `done_through` over done ids and over ids that no segment holds.
    fn advance_done_through(&mut self) {
        let start = self.done_through;
        loop {
            let next = self.done_through + 1;
            if next >= self.next_id {
                break;
            }
            match self.segment_at_or_after(next) {
                None => self.done_through = self.next_id - 1,
                Some(i) if self.segments[i].first_id > next => {
                    self.done_through = self.segments[i].first_id - 1;
                }
                Some(_) => {
                    if self.done_above.remove(&next) {
                        self.done_through = next;
                    } else {
                        break;
                    }
                }
            }
        }
        if self.done_through != start {
            self.state_dirty = true;
        }
    }

    /// Positions `slot` on the first record with id ≥ `target` that is not done and returns
    /// its head (the reader is then just after the head).
    fn seek_pending(
        &self,
        slot: &mut Option<SegmentReader>,
        mut target: u64,
    ) -> Result<Option<Head>, OutboxError> {
        while let Some(i) = self.segment_at_or_after(target) {
            let segment = &self.segments[i];
            let start = target.max(segment.first_id);
            let reusable = slot
                .as_ref()
                .is_some_and(|r| r.segment == segment.first_id && r.next_id <= start);
            if !reusable {
                *slot = Some(SegmentReader::open(segment)?);
            }
            let reader = slot.as_mut().expect("set above");
            while reader.next_id <= segment.last_id {
                let head = reader.read_head()?;
                if head.id < start || self.is_done(head.id) {
                    reader.skip(&head)?;
                } else {
                    return Ok(Some(head));
                }
            }
            target = segment.last_id + 1;
        }
        Ok(None)
    }

    /// Makes `oldest` name the oldest pending record, reading forward from the one it named.
    fn refresh_oldest(&mut self) -> Result<(), OutboxError> {
        let (mut slot, target) = match &self.oldest {
            Oldest::Nothing => return Ok(()),
            Oldest::At(p) if !self.is_done(p.id) => return Ok(()),
            Oldest::At(p) => {
                let target = p.id.max(self.done_through) + 1;
                let slot = match self.age_reader.take() {
                    Some(reader) if reader.segment == p.segment && reader.next_id <= target => {
                        Some(reader)
                    }
                    _ => match self
                        .segments
                        .binary_search_by_key(&p.segment, |s| s.first_id)
                    {
                        Ok(i) => Some(SegmentReader::open_at(&self.segments[i], p.offset, p.id)?),
                        Err(_) => None,
                    },
                };
                (slot, target)
            }
            Oldest::Unknown => (self.age_reader.take(), self.done_through + 1),
        };
        self.oldest = match self.seek_pending(&mut slot, target)? {
            Some(head) => {
                if let Some(reader) = slot.as_mut() {
                    reader.skip(&head)?;
                }
                Oldest::At(Position {
                    segment: head.segment,
                    offset: head.offset,
                    id: head.id,
                    created_ms: head.created_ms,
                    seq: head.seq,
                    camera: head.camera,
                })
            }
            None => Oldest::Nothing,
        };
        self.age_reader = slot;
        Ok(())
    }

    /// Writes the state, then deletes the segments whose records are all done; the last
    /// segment only if `include_last` (it is the one being written).
    fn delete_done_segments(&mut self, include_last: bool) -> Result<(), OutboxError> {
        let mut n = self
            .segments
            .partition_point(|s| s.last_id <= self.done_through);
        if !include_last && n == self.segments.len() {
            n = n.saturating_sub(1);
        }
        if n == 0 {
            return Ok(());
        }
        // The state must hold next_id and the deleted seqs before they leave the disk.
        let covered = self.persisted_next_id > self.segments[n - 1].last_id
            && self.segments[..n].iter().all(|s| {
                s.cameras.iter().all(|(name, &seq)| {
                    self.cameras
                        .get(name)
                        .is_some_and(|c| c.persisted_seq >= seq)
                })
            });
        if self.state_dirty || !covered {
            self.write_state()?;
        }
        for _ in 0..n {
            let segment = &self.segments[0];
            match fs::remove_file(&segment.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_error(&segment.path, "remove")(e));
                }
                _ => {}
            }
            let segment = self.segments.remove(0);
            self.disk_bytes -= segment.bytes;
            if self.segments.is_empty() {
                self.writer = None;
                self.unsynced = false;
            }
            for reader in [&mut self.reader, &mut self.age_reader] {
                if reader
                    .as_ref()
                    .is_some_and(|r| r.segment == segment.first_id)
                {
                    *reader = None;
                }
            }
            if matches!(&self.oldest, Oldest::At(p) if p.segment == segment.first_id) {
                self.oldest = Oldest::Unknown;
            }
        }
        Ok(())
    }

    /// Writes the state file atomically and durably.
    fn write_state(&mut self) -> Result<(), OutboxError> {
        let mut text = format!(
            "{STATE_VERSION_LINE}\nnext_id {}\ndone_through {}\n",
            self.next_id, self.done_through
        );
        let mut seqs = Vec::with_capacity(self.cameras.len());
        for (name, camera) in &self.cameras {
            // The highest seq handed out: if records are lost later (a cut or damaged
            // segment), their seqs are not handed out again.
            let last_seq = camera.last_seq;
            let _ = writeln!(
                text,
                "camera {name} epoch {:016x} last_seq {last_seq}",
                camera.epoch
            );
            seqs.push(last_seq);
        }
        let tmp = self.dir.join(STATE_TMP_FILE);
        let path = self.dir.join(STATE_FILE);
        {
            let mut file = File::create(&tmp).map_err(io_error(&tmp, "create"))?;
            file.write_all(text.as_bytes())
                .map_err(io_error(&tmp, "write"))?;
            file.sync_all().map_err(io_error(&tmp, "sync"))?;
        }
        fs::rename(&tmp, &path).map_err(io_error(&path, "replace"))?;
        sync_dir(&self.dir)?;
        for (camera, seq) in self.cameras.values_mut().zip(seqs) {
            camera.persisted_seq = seq;
        }
        self.persisted_next_id = self.next_id;
        self.state_dirty = false;
        Ok(())
    }
}

fn add_dropped(
    dropped: &mut BTreeMap<(DropCause, String), Dropped>,
    reason: DropCause,
    camera: String,
    seq: u64,
) {
    let entry = dropped
        .entry((reason, camera.clone()))
        .or_insert_with(|| Dropped {
            camera,
            count: 0,
            first_seq: seq,
            last_seq: seq,
            reason,
        });
    entry.count += 1;
    entry.first_seq = entry.first_seq.min(seq);
    entry.last_seq = entry.last_seq.max(seq);
}

fn io_error(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> OutboxError {
    let path = path.to_owned();
    move |source| OutboxError::Io { path, op, source }
}

fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir, "sync the directory"))
}

fn valid_camera(name: &str) -> bool {
    (1..=MAX_CAMERA_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A random epoch for a new camera (from `/dev/urandom`, else time and pid).
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok()
    {
        return u64::from_le_bytes(bytes);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

// ---------------------------------------------------------------------------------------------
// State file

#[derive(Debug, Default, PartialEq, Eq)]
struct StateFile {
    next_id: u64,
    done_through: u64,
    /// camera → (epoch, last_seq)
    cameras: BTreeMap<String, (u64, u64)>,
}

/// Why a state file could not be used.
#[derive(Debug, PartialEq, Eq)]
enum StateError {
    /// A later version of watchpost wrote it: left alone, the log is not opened.
    Unsupported(String),
    /// Not a state file (damaged, or not ours), with the line that is wrong and why.
    Damaged(String),
}

/// Parses the state file.
fn parse_state(text: &str) -> Result<StateFile, StateError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, line)) if line.trim_end() == STATE_VERSION_LINE => {}
        Some((_, line))
            if line
                .strip_prefix("watchpost-outbox ")
                .map(str::trim_end)
                .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())) =>
        {
            return Err(StateError::Unsupported(format!(
                "outbox state version `{}` is not supported (expected `{STATE_VERSION_LINE}`)",
                line.trim_end()
            )));
        }
        _ => {
            return Err(StateError::Damaged(format!(
                "not a watchpost outbox state file (the first line is not `{STATE_VERSION_LINE}`)"
            )));
        }
    }
    parse_state_lines(lines).map_err(StateError::Damaged)
}

/// The lines after the version line.
fn parse_state_lines<'a>(
    lines: impl Iterator<Item = (usize, &'a str)>,
) -> Result<StateFile, String> {
    let mut next_id = None;
    let mut done_through = None;
    let mut cameras = BTreeMap::new();
    for (index, line) in lines {
        let n = index + 1;
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |word: &str| {
            word.parse::<u64>()
                .map_err(|_| format!("line {n}: `{word}` is not a number"))
        };
        match words.as_slice() {
            [] => {}
            ["next_id", value] if next_id.is_none() => next_id = Some(number(value)?),
            ["done_through", value] if done_through.is_none() => {
                done_through = Some(number(value)?);
            }
            ["camera", name, "epoch", epoch, "last_seq", last_seq] => {
                if !valid_camera(name) {
                    return Err(format!("line {n}: `{name}` is not a camera name"));
                }
                let epoch = u64::from_str_radix(epoch, 16)
                    .map_err(|_| format!("line {n}: epoch `{epoch}` is not hexadecimal"))?;
                if cameras
                    .insert((*name).to_owned(), (epoch, number(last_seq)?))
                    .is_some()
                {
                    return Err(format!("line {n}: camera `{name}` is listed twice"));
                }
            }
            [key, ..] => return Err(format!("line {n}: unexpected `{key}` line")),
        }
    }
    let next_id = next_id.ok_or("no `next_id` line")?;
    let done_through = done_through.ok_or("no `done_through` line")?;
    if next_id == 0 || done_through >= next_id {
        return Err(format!(
            "done_through {done_through} must be below next_id {next_id}"
        ));
    }
    Ok(StateFile {
        next_id,
        done_through,
        cameras,
    })
}

// ---------------------------------------------------------------------------------------------
// Segment files

/// The segment files in `dir`, by first id. Removes what an interrupted repair left behind
/// (`*.log.tmp`: [`Log::open`] writes them again when it is needed).
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, OutboxError> {
    let mut segments = Vec::new();
    let entries = fs::read_dir(dir).map_err(io_error(dir, "list"))?;
    for entry in entries {
        let entry = entry.map_err(io_error(dir, "list"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(digits) = name.strip_suffix(SALVAGE_SUFFIX)
            && segment_first_id(digits).is_some()
        {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error(&path, "remove"))?;
            continue;
        }
        if let Some(first_id) = name.strip_suffix(SEGMENT_SUFFIX).and_then(segment_first_id) {
            segments.push((first_id, entry.path()));
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

/// The first id a segment file name (without its suffix) stands for.
fn segment_first_id(digits: &str) -> Option<u64> {
    if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

fn segment_path(dir: &Path, first_id: u64) -> PathBuf {
    dir.join(format!("{first_id:020}{SEGMENT_SUFFIX}"))
}

/// A record's head as found by [`scan_segment`].
struct ScannedHead {
    id: u64,
    offset: u64,
    created_ms: u64,
    seq: u64,
    camera: String,
    epoch: u64,
}

/// Intact records back to back, ids contiguous: `start..end` of the file.
struct Run {
    start: u64,
    end: u64,
    heads: Vec<ScannedHead>,
}

impl Run {
    fn first_id(&self) -> u64 {
        self.heads[0].id
    }

    fn last_id(&self) -> u64 {
        self.heads[self.heads.len() - 1].id
    }
}

struct Scan {
    /// In file order; never empty runs. A run that does not start at 0 follows damage.
    runs: Vec<Run>,
    file_bytes: u64,
    /// Why the first damaged bytes are not a record; `None` when the file is all records.
    damage: Option<String>,
}

/// Reads and checks every record of a segment. Damage (bytes that are not the record expected
/// there) does not end the scan: the rest of the file is searched for the next intact record
/// (its magic, a sane head, an id after the last good one, a matching crc), and reading goes on
/// from there. Only opening the file is an error; damage is reported
/// in [`Scan::damage`] and by the gaps between [`Scan::runs`].
fn scan_segment(path: &Path, first_id: u64, min_id: u64) -> Result<Scan, OutboxError> {
    let file = File::open(path).map_err(io_error(path, "open"))?;
    let file_bytes = file.metadata().map_err(io_error(path, "read"))?.len();
    let mut scan = Scan {
        runs: Vec::new(),
        file_bytes,
        damage: None,
    };
    if first_id < min_id {
        scan.damage = Some(format!(
            "first id {first_id} is not after the previous segment's last id {}",
            min_id - 1
        ));
        return Ok(scan);
    }
    let mut reader = SegmentReader {
        segment: first_id,
        path: path.to_owned(),
        file: BufReader::with_capacity(READ_BUFFER_BYTES, file),
        offset: 0,
        next_id: first_id,
    };
    let mut run: Option<Run> = None;
    while reader.offset < file_bytes {
        let offset = reader.offset;
        match check_record(&mut reader, file_bytes) {
            Ok(head) => {
                let run = run.get_or_insert_with(|| Run {
                    start: offset,
                    end: offset,
                    heads: Vec::new(),
                });
                run.heads.push(head);
                run.end = reader.offset;
            }
            Err(why) => {
                if scan.damage.is_none() {
                    scan.damage = Some(format!("record at offset {offset}: {why}"));
                }
                scan.runs.extend(run.take());
                let found = find_record(
                    reader.file.get_ref(),
                    path,
                    offset + 1,
                    file_bytes,
                    reader.next_id,
                );
                let Some((at, id)) = found else { break };
                reader
                    .file
                    .seek(SeekFrom::Start(at))
                    .map_err(io_error(path, "read"))?;
                reader.offset = at;
                reader.next_id = id;
            }
        }
    }
    scan.runs.extend(run);
    Ok(scan)
}

/// Reads and checks the record at the reader's position (it must have the reader's next id);
/// the reader is then after it. The error says why it is not a good record.
fn check_record(reader: &mut SegmentReader, file_bytes: u64) -> Result<ScannedHead, String> {
    let offset = reader.offset;
    let left = file_bytes - offset;
    if left < FRAME_HEADER_BYTES + HEAD_FIXED_BYTES as u64 {
        return Err(format!("torn record: only {left} bytes at the end"));
    }
    let head = reader.read_head().map_err(|e| reason(&e))?;
    if FRAME_HEADER_BYTES + head.body_len > left {
        return Err(format!(
            "torn record: {} bytes announced, {left} left",
            FRAME_HEADER_BYTES + head.body_len
        ));
    }
    let record = reader.read_record(head).map_err(|e| reason(&e))?;
    if !valid_camera(&record.camera) {
        return Err(format!("camera name `{}` is not valid", record.camera));
    }
    let epoch = record
        .event_id
        .split_once('-')
        .filter(|(epoch, seq)| epoch.len() == 16 && *seq == record.seq.to_string())
        .and_then(|(epoch, _)| u64::from_str_radix(epoch, 16).ok())
        .ok_or_else(|| {
            format!(
                "event_id `{}` does not match seq {}",
                record.event_id, record.seq
            )
        })?;
    Ok(ScannedHead {
        id: record.id,
        offset,
        created_ms: record.created_ms,
        seq: record.seq,
        camera: record.camera,
        epoch,
    })
}

/// The first intact record at or after `from`, with an id of at least `min_id`: where it
/// starts, and its id. Reads the file in blocks looking for the magic; a read error ends the
/// search (what follows is treated as damaged).
fn find_record(
    file: &File,
    path: &Path,
    from: u64,
    file_bytes: u64,
    min_id: u64,
) -> Option<(u64, u64)> {
    let magic = MAGIC.to_le_bytes();
    let mut block = vec![0u8; READ_BUFFER_BYTES];
    let mut at = from;
    while at + FRAME_HEADER_BYTES + (HEAD_FIXED_BYTES as u64) <= file_bytes {
        let n = (file_bytes - at).min(block.len() as u64) as usize;
        file.read_exact_at(&mut block[..n], at).ok()?;
        for i in 0..n.saturating_sub(magic.len() - 1) {
            if block[i..i + magic.len()] != magic {
                continue;
            }
            let candidate = at + i as u64;
            if let Some(id) = record_at(file, path, candidate, file_bytes, min_id) {
                return Some((candidate, id));
            }
        }
        // The next block overlaps this one by the magic's length less one byte, so a magic
        // across the boundary is found.
        at += (n - (magic.len() - 1)).max(1) as u64;
    }
    None
}

/// The id of the intact record at `offset`, if there is one with an id of at least `min_id`.
fn record_at(file: &File, path: &Path, offset: u64, file_bytes: u64, min_id: u64) -> Option<u64> {
    let mut fixed = [0u8; FRAME_HEADER_BYTES as usize + HEAD_FIXED_BYTES];
    file.read_exact_at(&mut fixed, offset).ok()?;
    let id = u64::from_le_bytes(fixed[12..20].try_into().expect("8 bytes"));
    if id < min_id {
        return None;
    }
    let mut probe = SegmentReader {
        segment: 0,
        path: path.to_owned(),
        file: BufReader::with_capacity(8 << 10, file.try_clone().ok()?),
        offset,
        next_id: id,
    };
    probe.file.seek(SeekFrom::Start(offset)).ok()?;
    check_record(&mut probe, file_bytes)
        .ok()
        .map(|head| head.id)
}

/// The reason of a [`SegmentReader`] error, for a [`Repair`].
fn reason(error: &OutboxError) -> String {
    match error {
        OutboxError::Corrupt { reason, .. } => reason.clone(),
        OutboxError::Io { op, source, .. } => format!("cannot {op}: {source}"),
        other => other.to_string(),
    }
}

/// Copies `start..end` of segment `from` to a new segment file `to` (through a temporary name,
/// synced): intact records found after damage get a segment of their own. The directory is
/// synced by the caller.
fn copy_to_segment(from: &Path, start: u64, end: u64, to: &Path) -> Result<(), OutboxError> {
    let mut tmp = to.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let source = File::open(from).map_err(io_error(from, "open"))?;
    let target = File::create(&tmp).map_err(io_error(&tmp, "create"))?;
    let mut block = vec![0u8; READ_BUFFER_BYTES];
    let mut at = start;
    while at < end {
        let n = (end - at).min(block.len() as u64) as usize;
        source
            .read_exact_at(&mut block[..n], at)
            .map_err(io_error(from, "read"))?;
        target
            .write_all_at(&block[..n], at - start)
            .map_err(io_error(&tmp, "write"))?;
        at += n as u64;
    }
    target.sync_all().map_err(io_error(&tmp, "sync"))?;
    fs::rename(&tmp, to).map_err(io_error(to, "create"))
}

/// Cuts a segment at `valid_bytes` (durably); an empty one is deleted by the caller.
fn truncate_segment(path: &Path, valid_bytes: u64) -> Result<(), OutboxError> {
    if valid_bytes == 0 {
        return Ok(());
    }
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error(path, "open"))?;
    file.set_len(valid_bytes)
        .map_err(io_error(path, "truncate"))?;
    file.sync_all().map_err(io_error(path, "sync"))
}

/// A record's frame header and the fixed start of its body: enough to skip it.
#[derive(Debug)]
struct Head {
    segment: u64,
    offset: u64,
    id: u64,
    created_ms: u64,
    seq: u64,
    camera: String,
    body_len: u64,
    crc: u32,
    /// The body bytes read so far (fixed part and camera).
    prefix: Vec<u8>,
}

/// Reads one segment forward, record by record.
#[derive(Debug)]
struct SegmentReader {
    segment: u64,
    path: PathBuf,
    file: BufReader<File>,
    /// Where the next record starts.
    offset: u64,
    /// The id the next record must have.
    next_id: u64,
}

impl SegmentReader {
    fn open(segment: &Segment) -> Result<SegmentReader, OutboxError> {
        SegmentReader::open_at(segment, 0, segment.first_id)
    }

    /// A reader at `offset`, where record `id` starts.
    fn open_at(segment: &Segment, offset: u64, id: u64) -> Result<SegmentReader, OutboxError> {
        let file = File::open(&segment.path).map_err(io_error(&segment.path, "open"))?;
        let mut file = BufReader::with_capacity(READ_BUFFER_BYTES, file);
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .map_err(io_error(&segment.path, "read"))?;
        }
        Ok(SegmentReader {
            segment: segment.first_id,
            path: segment.path.clone(),
            file,
            offset,
            next_id: id,
        })
    }

    fn corrupt(&self, offset: u64, why: impl std::fmt::Display) -> OutboxError {
        OutboxError::Corrupt {
            path: self.path.clone(),
            reason: format!("record at offset {offset}: {why}"),
        }
    }

    fn read_exact(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), OutboxError> {
        self.file.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                self.corrupt(offset, "the file ends inside the record")
            } else {
                io_error(&self.path, "read")(e)
            }
        })
    }

    fn read_head(&mut self) -> Result<Head, OutboxError> {
        let offset = self.offset;
        let mut fixed = [0u8; FRAME_HEADER_BYTES as usize + HEAD_FIXED_BYTES];
        self.read_exact(offset, &mut fixed)?;
        let word = |at: usize| u32::from_le_bytes(fixed[at..at + 4].try_into().expect("4 bytes"));
        let long = |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().expect("8 bytes"));
        if word(0) != MAGIC {
            return Err(self.corrupt(offset, "bad magic"));
        }
        let body_len = u64::from(word(4));
        let crc = word(8);
        let (id, created_ms, seq) = (long(12), long(20), long(28));
        let camera_len = word(36) as usize;
        if body_len > MAX_RECORD_BYTES - FRAME_HEADER_BYTES
            || camera_len > MAX_CAMERA_LEN
            || (HEAD_FIXED_BYTES + camera_len) as u64 > body_len
        {
            return Err(self.corrupt(offset, "bad length"));
        }
        if id != self.next_id {
            return Err(self.corrupt(
                offset,
                format!("id {id} where {} was expected", self.next_id),
            ));
        }
        let mut prefix = Vec::with_capacity(HEAD_FIXED_BYTES + camera_len);
        prefix.extend_from_slice(&fixed[FRAME_HEADER_BYTES as usize..]);
        prefix.resize(HEAD_FIXED_BYTES + camera_len, 0);
        self.read_exact(offset, &mut prefix[HEAD_FIXED_BYTES..])?;
        let camera = String::from_utf8(prefix[HEAD_FIXED_BYTES..].to_vec())
            .map_err(|_| self.corrupt(offset, "camera name is not UTF-8"))?;
        Ok(Head {
            segment: self.segment,
            offset,
            id,
            created_ms,
            seq,
            camera,
            body_len,
            crc,
            prefix,
        })
    }

    /// Moves past the record whose head was just read.
    fn skip(&mut self, head: &Head) -> Result<(), OutboxError> {
        let rest = head.body_len - head.prefix.len() as u64;
        self.file
            .seek_relative(rest as i64)
            .map_err(io_error(&self.path, "read"))?;
        self.finish(head);
        Ok(())
    }

    /// Reads the rest of the record whose head was just read, and checks it.
    fn read_record(&mut self, head: Head) -> Result<Record, OutboxError> {
        let mut body = head.prefix.clone();
        let read = body.len();
        body.resize(head.body_len as usize, 0);
        self.read_exact(head.offset, &mut body[read..])?;
        if crc32fast::hash(&body) != head.crc {
            return Err(self.corrupt(head.offset, "crc mismatch"));
        }
        let record = decode_body(&body).map_err(|why| self.corrupt(head.offset, why))?;
        self.finish(&head);
        Ok(record)
    }

    fn finish(&mut self, head: &Head) {
        self.offset = head.offset + FRAME_HEADER_BYTES + head.body_len;
        self.next_id = head.id + 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Record encoding (pure)

/// The size of `record`'s frame, header included.
fn frame_len(record: &Record) -> u64 {
    let string = |len: usize| 4 + len as u64;
    FRAME_HEADER_BYTES
        + 24
        + string(record.camera.len())
        + string(record.event_id.len())
        + 4
        + record
            .messages
            .iter()
            .map(|m| string(m.topic.len()) + string(m.payload.len()))
            .sum::<u64>()
}

/// The record's frame; `frame_len(record)` must be at most [`MAX_RECORD_BYTES`].
fn encode_frame(record: &Record) -> Vec<u8> {
    fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::with_capacity(frame_len(record) as usize);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // length and crc, below
    out.extend_from_slice(&record.id.to_le_bytes());
    out.extend_from_slice(&record.created_ms.to_le_bytes());
    out.extend_from_slice(&record.seq.to_le_bytes());
    put_bytes(&mut out, record.camera.as_bytes());
    put_bytes(&mut out, record.event_id.as_bytes());
    out.extend_from_slice(&(record.messages.len() as u32).to_le_bytes());
    for message in &record.messages {
        put_bytes(&mut out, message.topic.as_bytes());
        put_bytes(&mut out, &message.payload);
    }
    let body_len = (out.len() - FRAME_HEADER_BYTES as usize) as u32;
    let crc = crc32fast::hash(&out[FRAME_HEADER_BYTES as usize..]);
    out[4..8].copy_from_slice(&body_len.to_le_bytes());
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a body (crc already checked).
fn decode_body(body: &[u8]) -> Result<Record, String> {
    struct Cursor<'a>(&'a [u8]);
    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
            if self.0.len() < n {
                return Err("the body ends early".to_owned());
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Ok(head)
        }
        fn u32(&mut self) -> Result<u32, String> {
            Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
        }
        fn u64(&mut self) -> Result<u64, String> {
            Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
        }
        fn bytes(&mut self) -> Result<&'a [u8], String> {
            let n = self.u32()? as usize;
            self.take(n)
        }
        fn string(&mut self, what: &str) -> Result<String, String> {
            String::from_utf8(self.bytes()?.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
        }
    }
    let mut c = Cursor(body);
    let id = c.u64()?;
    let created_ms = c.u64()?;
    let seq = c.u64()?;
    let camera = c.string("camera")?;
    let event_id = c.string("event_id")?;
    let count = c.u32()? as usize;
    // Each message takes at least 8 bytes: do not trust `count` for the allocation.
    let mut messages = Vec::with_capacity(count.min(c.0.len() / 8));
    for _ in 0..count {
        let topic = c.string("topic")?;
        let payload = c.bytes()?.to_vec();
        messages.push(Message { topic, payload });
    }
    if !c.0.is_empty() {
        return Err(format!("{} bytes after the last message", c.0.len()));
    }
    Ok(Record {
        id,
        camera,
        seq,
        event_id,
        created_ms,
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    /// Options with a given size bound and segment size, no age limit to speak of.
    fn options(max_bytes: u64, segment_bytes: u64, when_full: WhenFull) -> LogOptions {
        LogOptions {
            segment_bytes,
            ..LogOptions::new(max_bytes, HOUR, when_full, SyncPolicy::EveryRecord)
        }
    }

    fn big() -> LogOptions {
        options(1 << 30, 1 << 20, WhenFull::DropOldest)
    }

    /// The messages of an event: its JSON and a picture of `picture_bytes`.
    fn messages(seq: u64, event_id: &str, picture_bytes: usize) -> Vec<Message> {
        vec![
            Message {
                topic: "site/dev/events".to_owned(),
                payload: format!("{{\"seq\":{seq},\"event_id\":\"{event_id}\"}}").into_bytes(),
            },
            Message {
                topic: "site/dev/snapshot".to_owned(),
                payload: vec![seq as u8; picture_bytes],
            },
        ]
    }

    fn add(log: &mut Log, camera: &str, created_ms: u64) -> Record {
        log.append(camera, created_ms, |seq, id| messages(seq, id, 50))
            .unwrap()
    }

    /// The frame size of an event added by `add` (cameras of 4 letters, seqs below 10).
    fn frame_bytes() -> u64 {
        let record = Record {
            id: 1,
            camera: "gate".to_owned(),
            seq: 1,
            event_id: format!("{:016x}-1", 0),
            created_ms: 0,
            messages: messages(1, &format!("{:016x}-1", 0), 50),
        };
        frame_len(&record)
    }

    /// Room enough (1 MiB), in segments of `events` events each (as added by `add`).
    fn small_segments(events: u64) -> LogOptions {
        options(1 << 20, events * frame_bytes(), WhenFull::DropOldest)
    }

    fn read_all(log: &mut Log) -> Vec<Record> {
        let mut records = Vec::new();
        let mut after = 0;
        while let Some(record) = log.next_after(after).unwrap() {
            after = record.id;
            records.push(record);
        }
        records
    }

    fn ids(records: &[Record]) -> Vec<u64> {
        records.iter().map(|r| r.id).collect()
    }

    /// The camera epoch in a record's event id.
    fn epoch(record: &Record) -> String {
        record.event_id.split_once('-').unwrap().0.to_owned()
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        list_segments(dir)
            .unwrap()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// Where each record of a segment file starts.
    fn frame_offsets(path: &Path) -> Vec<u64> {
        let bytes = fs::read(path).unwrap();
        let mut offsets = Vec::new();
        let mut at = 0usize;
        while at < bytes.len() {
            offsets.push(at as u64);
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
            at += FRAME_HEADER_BYTES as usize + len as usize;
        }
        offsets
    }

    #[test]
    fn records_read_back_in_order_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let frame = frame_bytes();
        let (mut log, recovery) = Log::open(dir.path(), small_segments(2)).unwrap();
        assert_eq!(recovery.records, 0);
        assert!(!recovery.state_found);
        let written: Vec<Record> = (1..=7).map(|t| add(&mut log, "gate", t * 1000)).collect();
        assert_eq!(ids(&written), vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            written.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6, 7]
        );

        let read = read_all(&mut log);
        assert_eq!(read, written, "same records, same order, messages intact");
        assert_eq!(read[2].messages, messages(3, &read[2].event_id, 50));
        let names: Vec<String> = segment_files(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [1, 3, 5, 7].map(|id| format!("{id:020}.log")),
            "two records per segment, named by the first id"
        );
        let stats = log.stats();
        assert_eq!(stats.segments, 4);
        assert_eq!(stats.pending, 7);
        assert_eq!(stats.disk_bytes, 7 * frame);
        assert_eq!(stats.oldest_pending_created_ms, Some(1000));
        assert_eq!((stats.next_id, stats.done_through), (8, 0));

        assert_eq!(log.next_after(3).unwrap().unwrap().id, 4, "jump");
        assert_eq!(log.next_after(7).unwrap(), None, "nothing after the last");
        assert_eq!(log.next_after(u64::MAX).unwrap(), None);

        drop(log);
        let (mut log, recovery) = Log::open(dir.path(), small_segments(2)).unwrap();
        assert_eq!((recovery.records, recovery.pending), (7, 7));
        assert_eq!(recovery.segments, 4);
        assert!(recovery.repairs.is_empty());
        assert_eq!(recovery.oldest_created_ms, Some(1000));
        assert_eq!(read_all(&mut log), written, "the same after a reopen");
    }

    #[test]
    fn rewind_rereads_and_skips_what_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), small_segments(3)).unwrap();
        for t in 0..8 {
            add(&mut log, "gate", t);
        }
        assert_eq!(ids(&read_all(&mut log)), (1..=8).collect::<Vec<_>>());
        log.mark_done(3);
        log.mark_done(5);
        // A lost connection: delivery starts again from the oldest not acknowledged.
        assert_eq!(ids(&read_all(&mut log)), vec![1, 2, 4, 6, 7, 8]);
        assert_eq!(log.next_after(1).unwrap().unwrap().id, 2);
        assert_eq!(log.next_after(2).unwrap().unwrap().id, 4);
        log.mark_done(1);
        log.mark_done(2);
        assert_eq!(
            log.next_after(0).unwrap().unwrap().id,
            4,
            "after done_through"
        );
    }

    #[test]
    fn reopening_continues_ids_and_seqs() {
        // (deliver and persist everything before the restart, segments left afterwards)
        for (deliver_all, segments_after) in [(false, 3), (true, 0)] {
            let dir = tempfile::tempdir().unwrap();
            let opts = small_segments(2);
            let (mut log, _) = Log::open(dir.path(), opts.clone()).unwrap();
            for t in 0..5 {
                add(&mut log, "gate", t);
            }
            add(&mut log, "road", 5);
            if deliver_all {
                for id in 1..=6 {
                    log.mark_done(id);
                }
                log.persist_state().unwrap();
                assert_eq!(log.stats().segments, 1, "the segment being written is kept");
            }
            drop(log); // as after a crash

            let (mut log, recovery) = Log::open(dir.path(), opts.clone()).unwrap();
            assert!(recovery.state_found);
            assert_eq!(
                recovery.segments, segments_after,
                "deliver_all {deliver_all}"
            );
            assert_eq!(recovery.deleted_segments, usize::from(deliver_all));
            assert_eq!(segment_files(dir.path()).len(), segments_after);
            let record = add(&mut log, "gate", 6);
            assert_eq!((record.id, record.seq), (7, 6), "deliver_all {deliver_all}");
            assert_eq!(add(&mut log, "road", 7).seq, 2);
            if deliver_all {
                log.mark_done(7);
                log.mark_done(8);
                log.persist_state().unwrap();
            }
            drop(log);

            let (mut log, _) = Log::open(dir.path(), opts).unwrap();
            let record = add(&mut log, "gate", 8);
            assert_eq!((record.id, record.seq), (9, 7), "deliver_all {deliver_all}");
            assert_eq!(add(&mut log, "road", 9).seq, 3);
        }
    }

    #[test]
    fn cameras_get_independent_seqs_and_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), big()).unwrap();
        let mut seen = Vec::new();
        let records: Vec<Record> = ["gate", "road", "gate", "road", "gate"]
            .iter()
            .map(|camera| {
                log.append(camera, 0, |seq, event_id| {
                    seen.push((seq, event_id.to_owned()));
                    Vec::new()
                })
                .unwrap()
            })
            .collect();
        let seqs: Vec<(&str, u64)> = records.iter().map(|r| (r.camera.as_str(), r.seq)).collect();
        assert_eq!(
            seqs,
            vec![
                ("gate", 1),
                ("road", 1),
                ("gate", 2),
                ("road", 2),
                ("gate", 3)
            ]
        );
        let epoch = |r: &Record| r.event_id.split_once('-').unwrap().0.to_owned();
        for (record, (seq, event_id)) in records.iter().zip(&seen) {
            assert_eq!(
                (record.seq, &record.event_id),
                (*seq, event_id),
                "build saw them"
            );
            let (hex, tail) = record.event_id.split_once('-').unwrap();
            assert_eq!(hex.len(), 16, "{}", record.event_id);
            assert!(
                hex.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(tail, record.seq.to_string());
        }
        assert_eq!(epoch(&records[0]), epoch(&records[2]));
        assert_ne!(
            epoch(&records[0]),
            epoch(&records[1]),
            "one epoch per camera"
        );
        assert!(records.iter().all(|r| r.messages.is_empty()));

        drop(log);
        let (mut log, _) = Log::open(dir.path(), big()).unwrap();
        let again = log.append("road", 0, |_, _| Vec::new()).unwrap();
        assert_eq!(again.seq, 3);
        assert_eq!(
            epoch(&again),
            epoch(&records[1]),
            "the epoch survives a restart"
        );
        let state = fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
        assert!(state.starts_with("watchpost-outbox 1\n"), "{state}");
        assert!(
            state.contains(&format!("camera road epoch {} last_seq ", epoch(&again))),
            "{state}"
        );
    }

    #[test]
    fn a_lost_state_file_recovers_epochs_and_seqs_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), big()).unwrap();
        let first = add(&mut log, "gate", 0);
        add(&mut log, "gate", 1);
        log.mark_done(1);
        log.persist_state().unwrap();
        drop(log);
        fs::remove_file(dir.path().join(STATE_FILE)).unwrap();
        // An empty segment, as left by a crash right after it was created.
        fs::write(dir.path().join(format!("{:020}.log", 3)), b"").unwrap();

        let (mut log, recovery) = Log::open(dir.path(), big()).unwrap();
        assert!(!recovery.state_found);
        assert_eq!(
            (recovery.segments, recovery.records, recovery.pending),
            (1, 2, 2)
        );
        assert_eq!(
            segment_files(dir.path()).len(),
            1,
            "the empty segment is gone"
        );
        assert_eq!(ids(&read_all(&mut log)), vec![1, 2], "delivered again");
        let record = add(&mut log, "gate", 2);
        assert_eq!((record.id, record.seq), (3, 3));
        assert_eq!(
            record.event_id.split_once('-').unwrap().0,
            first.event_id.split_once('-').unwrap().0,
            "the epoch is read back from the event ids"
        );
    }

    #[test]
    fn bad_camera_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), big()).unwrap();
        for camera in ["", "a b", "gate\n", "kamera-ü", &"x".repeat(65), "../x"] {
            let err = log.append(camera, 0, |_, _| Vec::new()).unwrap_err();
            assert!(
                matches!(err, OutboxError::BadCamera { .. }),
                "{camera:?}: {err}"
            );
        }
        assert_eq!(add(&mut log, "Gate_2-b", 0).id, 1, "no id was used");
    }

    #[test]
    fn mark_done_out_of_order_then_contiguous_advance_deletes_segments() {
        let dir = tempfile::tempdir().unwrap();
        let frame = frame_bytes();
        let (mut log, _) = Log::open(dir.path(), small_segments(2)).unwrap();
        for t in 0..6 {
            add(&mut log, "gate", t);
        }
        log.mark_done(3);
        log.mark_done(2);
        log.mark_done(2); // idempotent
        log.mark_done(99); // not in the log
        log.mark_done(0);
        assert!(log.is_done(2) && log.is_done(3) && !log.is_done(1) && !log.is_done(4));
        let stats = log.stats();
        assert_eq!((stats.done_through, stats.pending), (0, 4));
        assert_eq!(log.next_after(0).unwrap().unwrap().id, 1);
        assert_eq!(
            log.next_after(1).unwrap().unwrap().id,
            4,
            "done ones are skipped"
        );

        log.mark_done(1);
        assert_eq!(
            log.stats().done_through,
            3,
            "advances over the contiguous done ids"
        );
        log.mark_done(4);
        assert_eq!(log.stats().done_through, 4);
        assert_eq!(
            log.stats().segments,
            3,
            "deleted only once the state is written"
        );
        log.persist_state().unwrap();
        assert_eq!(log.stats().segments, 1);
        assert_eq!(
            segment_files(dir.path()),
            vec![dir.path().join(format!("{:020}.log", 5))]
        );
        assert_eq!(log.stats().disk_bytes, 2 * frame);
        assert_eq!(log.stats().pending, 2);

        log.mark_done(6);
        log.mark_done(5);
        log.persist_state().unwrap();
        let stats = log.stats();
        assert_eq!(
            (stats.done_through, stats.pending, stats.segments),
            (6, 0, 1)
        );
        assert_eq!(log.next_after(0).unwrap(), None);
        assert_eq!(log.enforce(0).unwrap(), Vec::new());
        assert_eq!(log.stats().oldest_pending_created_ms, None);
        // The segment being written is wholly done; the next one starts as usual.
        let record = add(&mut log, "gate", 7);
        assert_eq!((record.id, record.seq), (7, 7));
        assert_eq!(log.next_after(0).unwrap().unwrap().id, 7);
    }

    #[test]
    fn done_state_is_at_least_once_across_restarts() {
        // (persist_state before the crash, first record read again)
        for (persist, first_again) in [(false, 1), (true, 4)] {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = Log::open(dir.path(), big()).unwrap();
            for t in 0..5 {
                add(&mut log, "gate", t);
            }
            for id in 1..=3 {
                log.mark_done(id);
            }
            if persist {
                log.persist_state().unwrap();
            }
            drop(log);
            let (mut log, recovery) = Log::open(dir.path(), big()).unwrap();
            assert_eq!(recovery.pending, 6 - first_again, "persist {persist}");
            assert_eq!(
                ids(&read_all(&mut log)),
                (first_again..=5).collect::<Vec<_>>(),
                "persist {persist}"
            );
            assert_eq!(add(&mut log, "gate", 5).seq, 6);
        }
    }

    #[test]
    fn a_torn_or_garbage_tail_is_truncated_on_open() {
        // (what happens to the last segment, records kept of 4)
        type Damage = fn(&Path, u64);
        let cases: [(&str, Damage, u64); 6] = [
            ("cut inside the header", |p, last| truncate(p, last + 5), 3),
            ("cut inside the body", |p, last| truncate(p, last + 40), 3),
            (
                "last byte missing",
                |p, _| {
                    let len = fs::metadata(p).unwrap().len();
                    truncate(p, len - 1)
                },
                3,
            ),
            (
                "garbage appended",
                |p, _| append_bytes(p, b"garbage after a crash"),
                4,
            ),
            ("zeros appended", |p, _| append_bytes(p, &[0; 4096]), 4),
            (
                "a whole header of zeros",
                |p, last| {
                    truncate(p, last);
                    append_bytes(p, &[0; 40])
                },
                3,
            ),
        ];
        fn truncate(path: &Path, len: u64) {
            OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(len)
                .unwrap();
        }
        fn append_bytes(path: &Path, bytes: &[u8]) {
            OpenOptions::new()
                .append(true)
                .open(path)
                .unwrap()
                .write_all(bytes)
                .unwrap();
        }
        for (name, damage, kept) in cases {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = Log::open(dir.path(), big()).unwrap();
            for t in 0..4 {
                add(&mut log, "gate", t);
            }
            drop(log);
            let path = segment_files(dir.path()).remove(0);
            let before = fs::metadata(&path).unwrap().len();
            let last = *frame_offsets(&path).last().unwrap();
            damage(&path, last);
            let damaged = fs::metadata(&path).unwrap().len();

            let (mut log, recovery) = Log::open(dir.path(), big()).unwrap();
            assert_eq!(recovery.repairs.len(), 1, "{name}");
            let repair = &recovery.repairs[0];
            assert!(repair.last_segment, "{name}");
            assert_eq!(
                repair.damaged_records, 0,
                "{name}: the state knows no record after the last good one"
            );
            let valid = if kept == 4 { before } else { last };
            assert_eq!(repair.offset, valid, "{name}");
            assert_eq!(repair.truncated_bytes, damaged - valid, "{name}");
            assert_eq!(recovery.truncated_bytes, damaged - valid, "{name}");
            assert_eq!(fs::metadata(&path).unwrap().len(), valid, "{name}");
            assert_eq!(recovery.records, kept, "{name}");
            assert_eq!(
                ids(&read_all(&mut log)),
                (1..=kept).collect::<Vec<_>>(),
                "{name}"
            );
            let next = add(&mut log, "gate", 9);
            assert_eq!(
                next.seq,
                kept + 1,
                "{name}: continues after the last good one"
            );
            drop(log);
            let (mut log, recovery) = Log::open(dir.path(), big()).unwrap();
            assert!(recovery.repairs.is_empty(), "{name}: {recovery:?}");
            assert_eq!(read_all(&mut log).len() as u64, kept + 1, "{name}");
        }
    }

    #[test]
    fn damage_in_the_middle_of_a_segment_keeps_the_intact_records_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), big()).unwrap();
        let written: Vec<Record> = (0..5).map(|t| add(&mut log, "gate", t)).collect();
        drop(log);
        let path = segment_files(dir.path()).remove(0);
        let offsets = frame_offsets(&path);
        let mut bytes = fs::read(&path).unwrap();
        let flip = offsets[2] as usize + 100; // inside the picture of record 3
        bytes[flip] ^= 0x40;
        fs::write(&path, &bytes).unwrap();

        let (mut log, recovery) = Log::open(dir.path(), big()).unwrap();
        assert_eq!(recovery.repairs.len(), 1);
        let repair = &recovery.repairs[0];
        assert_eq!(
            repair.offset, offsets[2],
            "the segment ends where record 3 began"
        );
        assert_eq!(
            repair.truncated_bytes,
            offsets[3] - offsets[2],
            "only record 3 is gone"
        );
        assert!(repair.reason.contains("crc mismatch"), "{}", repair.reason);
        assert!(
            repair.reason.contains(&format!("offset {}", offsets[2])),
            "{}",
            repair.reason
        );
        assert_eq!((repair.damaged_records, repair.salvaged_records), (1, 2));
        assert_eq!(
            (recovery.damaged_records, recovery.salvaged_records),
            (1, 2)
        );
        assert_eq!(recovery.records, 4);
        let read = read_all(&mut log);
        assert_eq!(ids(&read), vec![1, 2, 4, 5]);
        assert_eq!(read[2], written[3], "moved intact");
        assert_eq!(
            segment_files(dir.path()),
            vec![segment_path(dir.path(), 1), segment_path(dir.path(), 4)],
            "the records after the damage have a segment of their own"
        );
        let next = add(&mut log, "gate", 5);
        assert_eq!(
            (next.id, next.seq),
            (6, 6),
            "nothing after the damage is reused"
        );
        log.mark_done(1);
        log.mark_done(2);
        assert_eq!(log.stats().done_through, 3, "the lost id 3 is skipped");
        drop(log);
        let (mut log, recovery) = Log::open(dir.path(), big()).unwrap();
        assert!(recovery.repairs.is_empty(), "repaired once: {recovery:?}");
        assert_eq!(ids(&read_all(&mut log)), vec![1, 2, 4, 5, 6]);
    }

    #[test]
    fn an_interrupted_repair_is_done_again_with_the_same_result() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), big()).unwrap();
        for t in 0..7 {
            add(&mut log, "gate", t);
        }
        drop(log);
        let path = segment_files(dir.path()).remove(0);
        let offsets = frame_offsets(&path);
        let mut bytes = fs::read(&path).unwrap();
        bytes[offsets[1] as usize + 4] ^= 0x01; // the length of record 2
        bytes[offsets[5] as usize - 1] ^= 0x01; // the picture of record 5
        fs::write(&path, &bytes).unwrap();
        // As a repair that stopped part way leaves it: the first records after the damage
        // copied (3 and 4), a copy of the next ones being written, the damaged segment as it
        // was.
        let moved = segment_path(dir.path(), 3);
        fs::write(&moved, &bytes[offsets[2] as usize..offsets[4] as usize]).unwrap();
        fs::write(dir.path().join("00000000000000000006.log.tmp"), b"half").unwrap();

        let (mut log, recovery) = Log::open(dir.path(), big()).unwrap();
        assert_eq!(
            (recovery.damaged_records, recovery.salvaged_records),
            (2, 4),
            "{recovery:?}"
        );
        assert_eq!(ids(&read_all(&mut log)), vec![1, 3, 4, 6, 7]);
        assert_eq!(
            segment_files(dir.path()),
            vec![path, moved, segment_path(dir.path(), 6)]
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            4,
            "three segments and the state, nothing left over"
        );
    }

    #[test]
    fn a_cut_newest_segment_counts_what_the_state_says_it_held_once() {
        for (name, cut_inside) in [("between two records", false), ("inside a record", true)] {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = Log::open(dir.path(), big()).unwrap();
            for t in 0..5 {
                add(&mut log, "gate", t);
            }
            log.mark_done(1);
            log.persist_state().unwrap(); // the state counts 5 records
            drop(log);
            let path = segment_files(dir.path()).remove(0);
            let offsets = frame_offsets(&path);
            let cut = offsets[3] + if cut_inside { 30 } else { 0 };
            OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(cut)
                .unwrap();

            let (mut log, recovery) = Log::open(dir.path(), big()).unwrap();
            assert_eq!(recovery.repairs.len(), 1, "{name}: {recovery:?}");
            let repair = &recovery.repairs[0];
            assert!(repair.last_segment, "{name}");
            assert_eq!(repair.damaged_records, 2, "{name}: records 4 and 5");
            assert_eq!(repair.truncated_bytes, cut - offsets[3], "{name}");
            assert_eq!(ids(&read_all(&mut log)), vec![2, 3], "{name}");
            let next = add(&mut log, "gate", 9);
            assert_eq!(
                (next.id, next.seq),
                (4, 6),
                "{name}: the lost ids are used again, their seqs are not"
            );
            drop(log);
            let (_, recovery) = Log::open(dir.path(), big()).unwrap();
            assert!(
                recovery.repairs.is_empty(),
                "{name}: counted once: {recovery:?}"
            );
        }
    }

    #[test]
    fn damage_in_an_earlier_segment_keeps_the_good_records_around_it() {
        let dir = tempfile::tempdir().unwrap();
        let opts = small_segments(2);
        let (mut log, _) = Log::open(dir.path(), opts.clone()).unwrap();
        for t in 0..6 {
            add(&mut log, "gate", t);
        }
        drop(log);
        let first = segment_files(dir.path()).remove(0);
        let second_record = frame_offsets(&first)[1];
        let mut bytes = fs::read(&first).unwrap();
        bytes[second_record as usize] = b'X'; // its magic
        fs::write(&first, &bytes).unwrap();

        let (mut log, recovery) = Log::open(dir.path(), opts).unwrap();
        assert_eq!(recovery.repairs.len(), 1);
        assert!(!recovery.repairs[0].last_segment);
        assert!(
            recovery.repairs[0].reason.contains("bad magic"),
            "{recovery:?}"
        );
        assert_eq!(recovery.records, 5);
        assert_eq!(recovery.damaged_records, 1, "up to the next segment");
        assert_eq!(ids(&read_all(&mut log)), vec![1, 3, 4, 5, 6]);
        log.mark_done(1);
        log.mark_done(3);
        assert_eq!(log.stats().done_through, 3, "the lost id 2 is skipped");
        assert_eq!(log.stats().pending, 3);
        assert_eq!(add(&mut log, "gate", 7).id, 7);
    }

    #[test]
    fn enforce_full_drops_the_oldest_segment_with_counts_per_camera() {
        let dir = tempfile::tempdir().unwrap();
        let frame = frame_bytes();
        let opts = options(6 * frame, 4 * frame, WhenFull::DropOldest);
        let (mut log, _) = Log::open(dir.path(), opts).unwrap();
        // Segment 1: gate 1, road 1, gate 2, gate 3; segment 2: road 2, gate 4, road 3,
        // gate 5; segment 3: road 4, gate 6.
        let cameras = [
            "gate", "road", "gate", "gate", "road", "gate", "road", "gate",
        ];
        for camera in cameras.iter().chain(&["road", "gate"]) {
            add(&mut log, camera, 0);
        }
        assert_eq!(log.stats().segments, 3);
        log.mark_done(3); // gate 2 was delivered
        let dropped = log.enforce(1).unwrap();
        assert_eq!(
            dropped,
            vec![
                Dropped {
                    camera: "gate".to_owned(),
                    count: 2,
                    first_seq: 1,
                    last_seq: 3,
                    reason: DropCause::Full,
                },
                Dropped {
                    camera: "road".to_owned(),
                    count: 1,
                    first_seq: 1,
                    last_seq: 1,
                    reason: DropCause::Full,
                },
            ]
        );
        assert_eq!(DropCause::Full.as_str(), "full");
        let stats = log.stats();
        assert_eq!((stats.segments, stats.disk_bytes), (2, 6 * frame));
        assert_eq!((stats.done_through, stats.pending), (4, 6));
        assert_eq!(segment_files(dir.path()).len(), 2);
        assert_eq!(
            log.next_after(0).unwrap().unwrap().id,
            5,
            "dropped count as done"
        );
        assert_eq!(log.enforce(2).unwrap(), Vec::new(), "within bounds now");

        // However small the bound, the segment being written stays.
        log.options.max_bytes = 1;
        let dropped = log.enforce(3).unwrap();
        assert_eq!(dropped.iter().map(|d| d.count).sum::<u64>(), 4);
        assert_eq!(log.stats().segments, 1);
        assert_eq!(
            log.stats().disk_bytes,
            2 * frame,
            "over the bound by one segment"
        );
        assert_eq!(log.enforce(4).unwrap(), Vec::new());
        drop(log);
        let (mut log, _) =
            Log::open(dir.path(), options(1, 4 * frame, WhenFull::DropOldest)).unwrap();
        assert_eq!(ids(&read_all(&mut log)), vec![9, 10], "drops are persisted");
        assert_eq!(add(&mut log, "road", 0).seq, 5);
    }

    #[test]
    fn enforce_expires_the_oldest_records_first() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LogOptions {
            segment_bytes: 2 * frame_bytes(),
            ..LogOptions::new(
                1 << 20,
                Duration::from_secs(5),
                WhenFull::DropOldest,
                SyncPolicy::EveryRecord,
            )
        };
        let (mut log, _) = Log::open(dir.path(), opts).unwrap();
        for (camera, created_ms) in [
            ("gate", 1000),
            ("road", 2000),
            ("gate", 3000),
            ("gate", 4000),
            ("road", 9000),
            ("gate", 2000), // a clock step back: still behind a younger record
        ] {
            add(&mut log, camera, created_ms);
        }
        log.mark_done(2);
        assert_eq!(
            log.enforce(5_500).unwrap(),
            Vec::new(),
            "cutoff 500: nothing older"
        );
        let dropped = log.enforce(8_500).unwrap();
        assert_eq!(
            dropped,
            vec![Dropped {
                camera: "gate".to_owned(),
                count: 2,
                first_seq: 1,
                last_seq: 2,
                reason: DropCause::Expired,
            }]
        );
        assert_eq!(DropCause::Expired.as_str(), "expired");
        let stats = log.stats();
        assert_eq!(stats.oldest_pending_created_ms, Some(4000));
        assert_eq!((stats.done_through, stats.pending), (3, 3));
        assert_eq!(log.enforce(8_500).unwrap(), Vec::new(), "nothing twice");

        log.mark_done(4);
        assert_eq!(log.enforce(8_600).unwrap(), Vec::new());
        assert_eq!(
            log.stats().oldest_pending_created_ms,
            Some(9000),
            "read forward"
        );
        let dropped = log.enforce(100_000).unwrap();
        let summary: Vec<(&str, u64, u64, u64)> = dropped
            .iter()
            .map(|d| (d.camera.as_str(), d.count, d.first_seq, d.last_seq))
            .collect();
        assert_eq!(summary, vec![("gate", 1, 4, 4), ("road", 1, 2, 2)]);
        assert_eq!(log.stats().pending, 0);
        assert_eq!(log.stats().oldest_pending_created_ms, None);
        assert_eq!(log.next_after(0).unwrap(), None);
    }

    #[test]
    fn drop_newest_refuses_without_using_a_seq() {
        let dir = tempfile::tempdir().unwrap();
        let frame = frame_bytes();
        let (mut log, _) = Log::open(
            dir.path(),
            options(3 * frame, 2 * frame, WhenFull::DropNewest),
        )
        .unwrap();
        for t in 0..3 {
            add(&mut log, "gate", t);
        }
        let err = log
            .append("gate", 3, |seq, id| messages(seq, id, 50))
            .unwrap_err();
        assert!(matches!(err, OutboxError::Full { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        assert!(text.contains("camera gate refused"), "{text}");
        assert_eq!(log.stats().next_id, 4);
        assert_eq!(
            log.enforce(3).unwrap(),
            Vec::new(),
            "DropNewest drops nothing"
        );
        assert_eq!(log.stats().disk_bytes, 3 * frame);

        for id in 1..=3 {
            log.mark_done(id);
        }
        let record = add(&mut log, "gate", 4);
        assert_eq!(
            (record.id, record.seq),
            (4, 4),
            "the refused seq is used now"
        );
        assert_eq!(
            log.stats().disk_bytes,
            frame,
            "delivered segments made room"
        );
    }

    #[derive(Clone, Copy, Debug)]
    enum Failure {
        /// The segment is a symlink to `/dev/full`: ENOSPC on write.
        DiskFull,
        /// The segment's path is a directory: the open fails.
        Directory,
        /// The event is over 16 MiB.
        TooLarge,
    }

    #[test]
    fn a_failed_append_uses_no_seq_and_leaves_no_partial_record() {
        for failure in [Failure::DiskFull, Failure::Directory, Failure::TooLarge] {
            if matches!(failure, Failure::DiskFull) && !Path::new("/dev/full").exists() {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = Log::open(dir.path(), big()).unwrap();
            add(&mut log, "gate", 0);
            add(&mut log, "gate", 1);
            drop(log);
            // Reopened, so that the segment is opened again for writing.
            let (mut log, _) = Log::open(dir.path(), big()).unwrap();
            let path = segment_files(dir.path()).remove(0);
            let aside = dir.path().join("aside");
            let err = match failure {
                Failure::DiskFull | Failure::Directory => {
                    fs::rename(&path, &aside).unwrap();
                    if matches!(failure, Failure::DiskFull) {
                        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
                    } else {
                        fs::create_dir(&path).unwrap();
                    }
                    let err = log
                        .append("gate", 2, |seq, id| messages(seq, id, 50))
                        .unwrap_err();
                    if path.is_dir() {
                        fs::remove_dir(&path).unwrap();
                    } else {
                        fs::remove_file(&path).unwrap();
                    }
                    fs::rename(&aside, &path).unwrap();
                    err
                }
                Failure::TooLarge => log
                    .append("gate", 2, |seq, id| {
                        messages(seq, id, MAX_RECORD_BYTES as usize)
                    })
                    .unwrap_err(),
            };
            let text = err.to_string();
            match failure {
                Failure::DiskFull => {
                    let OutboxError::Io { op, source, .. } = &err else {
                        panic!("{failure:?}: {err}");
                    };
                    assert_eq!(*op, "write");
                    assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{source}");
                    assert!(text.starts_with(&path.display().to_string()), "{text}");
                }
                Failure::Directory => {
                    assert!(matches!(err, OutboxError::Io { op: "open", .. }), "{err}");
                }
                Failure::TooLarge => {
                    assert!(matches!(err, OutboxError::TooLarge { .. }), "{err}");
                    assert!(text.contains("event "), "{text}");
                }
            }
            let record = add(&mut log, "gate", 3);
            assert_eq!((record.id, record.seq), (3, 3), "{failure:?}");
            assert_eq!(ids(&read_all(&mut log)), vec![1, 2, 3], "{failure:?}");
            drop(log);
            let (mut log, recovery) = Log::open(dir.path(), big()).unwrap();
            assert!(recovery.repairs.is_empty(), "{failure:?}: {recovery:?}");
            assert_eq!(
                read_all(&mut log).iter().map(|r| r.seq).collect::<Vec<_>>(),
                vec![1, 2, 3],
                "{failure:?}"
            );
        }
    }

    #[test]
    fn a_full_disk_first_gives_back_the_room_of_delivered_records() {
        if !Path::new("/dev/full").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), big()).unwrap();
        for t in 0..3 {
            add(&mut log, "gate", t);
        }
        let path = segment_files(dir.path()).remove(0);
        // Not all delivered: nothing to give back, the append fails as the disk does.
        log.mark_done(1);
        log.mark_done(2);
        log.persist_state().unwrap();
        let aside = dir.path().join("aside");
        fs::rename(&path, &aside).unwrap();
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        log.writer = None; // as after a restart: the segment is opened again to append
        let err = log
            .append("gate", 3, |seq, id| messages(seq, id, 50))
            .unwrap_err();
        assert!(err.is_no_space(), "{err}");
        assert!(path.is_symlink(), "a segment with a pending record stays");

        // All delivered: the full segment goes, the event is written to a new one.
        log.mark_done(3);
        log.persist_state().unwrap();
        let record = add(&mut log, "gate", 4);
        assert_eq!((record.id, record.seq), (4, 4));
        assert!(
            !path.is_symlink() && !path.exists(),
            "the delivered segment is gone"
        );
        assert_eq!(segment_files(dir.path()), vec![segment_path(dir.path(), 4)]);
        assert_eq!(ids(&read_all(&mut log)), vec![4]);
        drop(log);
        let (mut log, recovery) = Log::open(dir.path(), big()).unwrap();
        assert!(recovery.repairs.is_empty(), "{recovery:?}");
        assert_eq!(add(&mut log, "gate", 5).seq, 5);
    }

    #[test]
    fn a_damaged_state_file_is_moved_aside_and_the_log_kept() {
        let cases: [(&[u8], &str); 9] = [
            (b"hello\n", "not a watchpost outbox state file"),
            (b"", "not a watchpost outbox state file"),
            (
                b"watchpost-outbox X\nnext_id 1\n",
                "not a watchpost outbox state file",
            ),
            (
                b"watchpost-outbox 1\nnext_id x\ndone_through 0\n",
                "line 2: `x` is not a number",
            ),
            (b"watchpost-outbox 1\nnext_id 3\n", "no `done_through` line"),
            (
                b"watchpost-outbox 1\nnext_id 3\ndone_through 3\n",
                "must be below next_id",
            ),
            (
                b"watchpost-outbox 1\nnext_id 5\ndone_through 2\ncamera a/b epoch 1 last_seq 1\n",
                "line 4: `a/b` is not a camera name",
            ),
            (
                b"watchpost-outbox 1\nnext_id 5\ndone_through 2\nsurprise 1\n",
                "line 4: unexpected `surprise` line",
            ),
            (b"\xff\xfe\x00binary", "not text"),
        ];
        for (text, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = Log::open(dir.path(), big()).unwrap();
            let first = add(&mut log, "gate", 0);
            add(&mut log, "gate", 1);
            log.mark_done(1);
            log.persist_state().unwrap();
            drop(log);
            let path = dir.path().join(STATE_FILE);
            fs::write(&path, text).unwrap();

            let (mut log, recovery) = Log::open(dir.path(), big()).unwrap();
            let why = recovery.state_damaged.as_deref().unwrap_or_default();
            assert!(why.contains(expected), "{why} should say {expected}");
            assert!(!why.contains('\n'), "one line: {why}");
            assert!(!recovery.state_found);
            assert_eq!(
                fs::read(dir.path().join(STATE_DAMAGED_FILE)).unwrap(),
                text,
                "kept for a look"
            );
            assert_eq!(
                ids(&read_all(&mut log)),
                vec![1, 2],
                "{expected}: delivered again"
            );
            let record = add(&mut log, "gate", 2);
            assert_eq!((record.id, record.seq), (3, 3), "{expected}");
            assert_eq!(epoch(&record), epoch(&first), "{expected}: the log's epoch");
            drop(log);
            let (_, recovery) = Log::open(dir.path(), big()).unwrap();
            assert!(recovery.state_found && recovery.state_damaged.is_none());
        }

        // A later version's state is left alone: opening is an error naming it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        fs::write(&path, b"watchpost-outbox 2\nnext_id 1\ndone_through 0\n").unwrap();
        let err = Log::open(dir.path(), big()).unwrap_err();
        assert!(matches!(err, OutboxError::Corrupt { .. }), "{err}");
        let shown = err.to_string();
        assert!(shown.starts_with(&path.display().to_string()), "{shown}");
        assert!(
            shown.contains("version `watchpost-outbox 2` is not supported"),
            "{shown}"
        );
        assert!(path.exists());

        let dir = tempfile::tempdir().unwrap();
        let good = format!(
            "{STATE_VERSION_LINE}\nnext_id 5\ndone_through 4\ncamera gate epoch 00000000000000ff last_seq 7\n"
        );
        fs::write(dir.path().join(STATE_FILE), good).unwrap();
        let (mut log, recovery) = Log::open(dir.path(), big()).unwrap();
        assert!(recovery.state_found);
        let record = add(&mut log, "gate", 0);
        assert_eq!((record.id, record.seq), (5, 8));
        assert_eq!(record.event_id, "00000000000000ff-8");
    }

    #[test]
    fn io_errors_name_the_file_and_leave_the_cause_to_the_chain() {
        let err = Log::open(Path::new("/proc/watchpost-outbox-test"), big()).unwrap_err();
        let shown = err.to_string();
        assert_eq!(
            shown,
            "/proc/watchpost-outbox-test: cannot create the directory"
        );
        let source = std::error::Error::source(&err).unwrap().to_string();
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(chain.matches(&source).count(), 1, "{chain}");
    }

    #[test]
    fn sync_policies_all_keep_the_records() {
        for sync in [
            SyncPolicy::EveryRecord,
            SyncPolicy::Interval(HOUR),
            SyncPolicy::Interval(Duration::ZERO),
            SyncPolicy::Never,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let opts = LogOptions {
                segment_bytes: 2 * frame_bytes(),
                ..LogOptions::new(1 << 20, HOUR, WhenFull::DropOldest, sync)
            };
            let (mut log, _) = Log::open(dir.path(), opts.clone()).unwrap();
            for t in 0..5 {
                add(&mut log, "gate", t);
                log.sync_if_due().unwrap();
            }
            log.sync_now().unwrap();
            log.persist_state().unwrap();
            drop(log);
            let (mut log, _) = Log::open(dir.path(), opts).unwrap();
            assert_eq!(read_all(&mut log).len(), 5, "{sync:?}");
        }
    }

    #[test]
    fn segment_size_follows_the_bound() {
        for (max_bytes, segment_bytes) in [
            (0, 64 << 10),
            (1 << 20, 64 << 10),
            (160 << 20, 10 << 20),
            (1 << 30, 16 << 20),
            (u64::MAX, 16 << 20),
        ] {
            let options = LogOptions::new(max_bytes, HOUR, WhenFull::DropOldest, SyncPolicy::Never);
            assert_eq!(
                options.segment_bytes, segment_bytes,
                "max_bytes {max_bytes}"
            );
        }
    }

    #[test]
    fn records_encode_and_decode() {
        let record = Record {
            id: 42,
            camera: "gate".to_owned(),
            seq: 7,
            event_id: "00000000000000ff-7".to_owned(),
            created_ms: 1_700_000_000_000,
            messages: messages(7, "00000000000000ff-7", 3),
        };
        let frame = encode_frame(&record);
        assert_eq!(frame.len() as u64, frame_len(&record));
        assert_eq!(&frame[..4], b"wpR1");
        let body = &frame[FRAME_HEADER_BYTES as usize..];
        assert_eq!(decode_body(body).unwrap(), record);
        for bad in [
            &body[..body.len() - 1],
            &[body, b"x"].concat()[..],
            &body[..10],
        ] {
            assert!(decode_body(bad).is_err());
        }
    }

    /// Random damage to a log written by [`Log`]: bytes flipped anywhere in its segments, the
    /// newest segment cut anywhere, and sometimes the state file flipped too.
    mod random_damage {
        use super::*;
        use proptest::prelude::*;

        const CAMERAS: [&str; 3] = ["gate", "road", "yard"];

        /// Something that happens to a segment file.
        #[derive(Clone, Debug)]
        enum Harm {
            /// A byte (anywhere in the segment `which` picks) xor'd with a non-zero value.
            Flip { which: usize, at: u64, xor: u8 },
            /// Bytes zeroed, as a lost block reads.
            Zero { which: usize, at: u64, len: usize },
        }

        #[derive(Clone, Debug)]
        struct Damage {
            /// (camera index, picture bytes) of each record written.
            records: Vec<(usize, usize)>,
            harms: Vec<Harm>,
            /// Where the newest segment is cut, as a share of its length.
            cut: Option<f64>,
            /// (where in the state file, xor with).
            state_flip: Option<(u64, u8)>,
        }

        fn harm() -> impl Strategy<Value = Harm> {
            prop_oneof![
                3 => (any::<usize>(), any::<u64>(), 1u8..=255)
                    .prop_map(|(which, at, xor)| Harm::Flip { which, at, xor }),
                1 => (any::<usize>(), any::<u64>(), 1usize..600)
                    .prop_map(|(which, at, len)| Harm::Zero { which, at, len }),
            ]
        }

        fn damage() -> impl Strategy<Value = Damage> {
            (
                prop::collection::vec((0..CAMERAS.len(), 0usize..400), 1..24),
                prop::collection::vec(harm(), 0..4),
                prop::option::of(0.0f64..=1.0),
                prop::option::weighted(0.2, (any::<u64>(), 1u8..=255)),
            )
                .prop_map(|(records, harms, cut, state_flip)| Damage {
                    records,
                    harms,
                    cut,
                    state_flip,
                })
        }

        fn flip(path: &Path, at: u64, xor: u8) {
            let mut bytes = fs::read(path).unwrap();
            if !bytes.is_empty() {
                let at = (at % bytes.len() as u64) as usize;
                bytes[at] ^= xor;
                fs::write(path, bytes).unwrap();
            }
        }

        fn check(damage: &Damage) -> Result<(), TestCaseError> {
            // In memory where there is a tmpfs: the log syncs its state file, and many cases
            // on a busy disk would take long.
            let dir = tempfile::tempdir_in("/dev/shm")
                .or_else(|_| tempfile::tempdir())
                .unwrap();
            let opts = LogOptions {
                segment_bytes: 1500,
                ..LogOptions::new(1 << 30, HOUR, WhenFull::DropOldest, SyncPolicy::Never)
            };
            let (mut log, _) = Log::open(dir.path(), opts.clone()).unwrap();
            let written: Vec<Record> = damage
                .records
                .iter()
                .map(|&(camera, picture)| {
                    log.append(CAMERAS[camera], 7, |seq, id| messages(seq, id, picture))
                        .unwrap()
                })
                .collect();
            log.write_state().unwrap(); // it counts every record
            drop(log);

            // Each record's bytes: (segment index, start, end).
            let segments = segment_files(dir.path());
            let before: Vec<Vec<u8>> = segments.iter().map(|p| fs::read(p).unwrap()).collect();
            let mut places = Vec::new();
            for (index, path) in segments.iter().enumerate() {
                let offsets = frame_offsets(path);
                for (i, &start) in offsets.iter().enumerate() {
                    let end = offsets
                        .get(i + 1)
                        .copied()
                        .unwrap_or(before[index].len() as u64);
                    places.push((index, start as usize, end as usize));
                }
            }
            prop_assert_eq!(places.len(), written.len());

            for harm in &damage.harms {
                match *harm {
                    Harm::Flip { which, at, xor } => {
                        flip(&segments[which % segments.len()], at, xor)
                    }
                    Harm::Zero { which, at, len } => {
                        let path = &segments[which % segments.len()];
                        let mut bytes = fs::read(path).unwrap();
                        let at = (at % bytes.len() as u64) as usize;
                        let end = (at + len).min(bytes.len());
                        bytes[at..end].fill(0);
                        fs::write(path, bytes).unwrap();
                    }
                }
            }
            let last = segments.len() - 1;
            if let Some(share) = damage.cut {
                let len = fs::metadata(&segments[last]).unwrap().len();
                OpenOptions::new()
                    .write(true)
                    .open(&segments[last])
                    .unwrap()
                    .set_len((len as f64 * share) as u64)
                    .unwrap();
            }
            if let Some((at, xor)) = damage.state_flip {
                flip(&dir.path().join(STATE_FILE), at, xor);
            }
            // Intact: every byte of the record is still there, unchanged.
            let after: Vec<Vec<u8>> = segments.iter().map(|p| fs::read(p).unwrap()).collect();
            let intact: Vec<bool> = places
                .iter()
                .map(|&(index, start, end)| {
                    after[index].get(start..end) == Some(&before[index][start..end])
                })
                .collect();
            // A record is moved when an earlier one of its segment is not intact.
            let salvaged = places
                .iter()
                .zip(&intact)
                .enumerate()
                .filter(|&(i, (&(index, _, _), &ok))| {
                    ok && (0..i).any(|j| places[j].0 == index && !intact[j])
                })
                .count() as u64;

            let opened = Log::open(dir.path(), opts.clone());
            if damage.state_flip.is_some() {
                // A state file has no checksum: a flipped digit can be a different but valid
                // state. What holds: no panic, a one-line error or records that are intact.
                match opened {
                    Err(e) => prop_assert!(!e.to_string().contains('\n'), "{}", e),
                    Ok((mut log, _)) => {
                        let mut after = 0;
                        while let Some(record) = log.next_after(after).unwrap() {
                            after = record.id;
                            let i = written.iter().position(|w| *w == record);
                            prop_assert!(
                                i.is_some_and(|i| intact[i]),
                                "not a record as written: {:?}",
                                record
                            );
                        }
                    }
                }
                return Ok(());
            }

            let (mut log, recovery) = opened.unwrap();
            let expected: Vec<&Record> = written
                .iter()
                .zip(&intact)
                .filter(|(_, ok)| **ok)
                .map(|(r, _)| r)
                .collect();
            let read = read_all(&mut log);
            prop_assert_eq!(read.iter().collect::<Vec<_>>(), expected.clone());
            let lost = (written.len() - expected.len()) as u64;
            prop_assert_eq!(recovery.damaged_records, lost, "{:?}", recovery);
            prop_assert_eq!(recovery.salvaged_records, salvaged, "{:?}", recovery);
            prop_assert_eq!(recovery.records, expected.len() as u64);
            // Numbering goes on after the highest seq ever written, per camera.
            let mut appended = Vec::new();
            for (index, camera) in CAMERAS.iter().enumerate() {
                let highest = written
                    .iter()
                    .zip(&damage.records)
                    .filter(|(_, (c, _))| *c == index)
                    .map(|(r, _)| r.seq)
                    .max();
                if let Some(highest) = highest {
                    let record = log
                        .append(camera, 8, |seq, id| messages(seq, id, 1))
                        .unwrap();
                    prop_assert_eq!(record.seq, highest + 1, "{}", camera);
                    appended.push(record);
                }
            }
            drop(log);
            let (mut log, recovery) = Log::open(dir.path(), opts).unwrap();
            prop_assert!(recovery.repairs.is_empty(), "repaired once: {:?}", recovery);
            let all: Vec<Record> = read.into_iter().chain(appended).collect();
            prop_assert_eq!(read_all(&mut log), all);
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 64,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn damage_keeps_every_intact_record_and_counts_the_rest(damage in damage()) {
                check(&damage)?;
            }
        }
    }
}
