//! The outbox thread: owns the [`Log`]; numbers and appends the events the inference threads
//! offer, hands records to the publisher while the broker is connected, marks them done on
//! PUBACK, enforces the bounds and announces what it drops.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::log::{DropCause, Log, LogOptions, Message, OutboxError, Recovery};
use crate::events::Event;

/// Records handed to the publisher and not yet acknowledged, at most.
pub const WINDOW: usize = 16;
/// Events offered by the inference threads and not yet written, at most; more are dropped
/// (counted as `backlog` and announced).
pub const INBOX_CAPACITY: usize = 1024;
/// How often the thread wakes without work: age bound, interval sync, state file.
const TICK: Duration = Duration::from_millis(250);
/// How often the delivered position is written to the state file.
const PERSIST_INTERVAL: Duration = Duration::from_secs(1);
/// How often an outbox that could not be opened is tried again.
const REOPEN_INTERVAL: Duration = Duration::from_secs(30);
/// The same error is logged at most this often.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Where and how the outbox keeps its log.
#[derive(Clone, Debug)]
pub struct OutboxOptions {
    pub dir: PathBuf,
    pub log: LogOptions,
}

/// Why events were dropped, as the `events_dropped` announcement says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoticeReason {
    /// The outbox was over `max_size_mb`.
    Full,
    /// Older than `max_age_h`.
    Expired,
    /// The inference threads produced events faster than the disk took them.
    Backlog,
    /// The outbox could not be written (read-only, disk full, I/O error).
    WriteFailed,
}

impl NoticeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeReason::Full => "full",
            NoticeReason::Expired => "expired",
            NoticeReason::Backlog => "backlog",
            NoticeReason::WriteFailed => "write_failed",
        }
    }
}

/// Events of one camera that will never be delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropNotice {
    pub camera: String,
    pub reason: NoticeReason,
    pub count: u64,
    /// The first and last `seq` dropped, for events that had been numbered (`full`, `expired`);
    /// `None` for events dropped before they got a number (`backlog`, `write_failed`), which
    /// leave no gap in `seq`.
    pub seqs: Option<(u64, u64)>,
    /// When the drop was decided.
    pub at: SystemTime,
}

/// What a record is made from.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    Event(&'a Event),
    Dropped(&'a DropNotice),
}

/// Turns an entry, once numbered, into the messages of its record: given the camera, `seq` and
/// `event_id`. Made by the publisher (it knows topics and payloads).
pub type Stamp = Box<dyn Fn(&str, u64, &str, Entry<'_>) -> Vec<Message> + Send>;

/// A record on its way to the broker.
#[derive(Debug)]
pub struct Outgoing {
    /// The delivery round (connection) it was handed out in; stale rounds are ignored.
    pub epoch: u64,
    pub id: u64,
    pub messages: Vec<Message>,
}

/// Figures for `health` and `watchpost status`, updated by the outbox thread.
#[derive(Debug, Default)]
pub struct OutboxStats {
    usable: AtomicBool,
    pending: AtomicU64,
    bytes: AtomicU64,
    /// Unix ms of the oldest pending record; 0 when none.
    oldest_ms: AtomicU64,
    appended: AtomicU64,
    delivered: AtomicU64,
    dropped_full: AtomicU64,
    dropped_expired: AtomicU64,
    dropped_backlog: AtomicU64,
    write_errors: AtomicU64,
    damaged: AtomicU64,
    /// Why the outbox is not usable, while it is not.
    error: Mutex<Option<String>>,
}

/// A copy of [`OutboxStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxFigures {
    /// The log is open and its last writes of each kind (events, the delivered position)
    /// succeeded.
    pub usable: bool,
    /// Why not, while not `usable`: what failed, the file and the OS's reason, on one line.
    pub error: Option<String>,
    /// Records (events) waiting for delivery.
    pub pending: u64,
    /// Bytes of the log on disk.
    pub bytes: u64,
    /// Unix ms of the oldest pending record.
    pub oldest_ms: Option<u64>,
    /// Records written since start.
    pub appended: u64,
    /// Records acknowledged by the broker since start.
    pub delivered: u64,
    pub dropped_full: u64,
    pub dropped_expired: u64,
    pub dropped_backlog: u64,
    /// Events not written because the disk refused (each also dropped).
    pub write_errors: u64,
    /// Events lost to disk damage, found when the outbox was opened (or reopened to repair a
    /// record found damaged while running) since start.
    pub damaged: u64,
}

impl OutboxStats {
    pub fn figures(&self) -> OutboxFigures {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OutboxFigures {
            usable: self.usable.load(Ordering::Relaxed),
            error: self.error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            pending: get(&self.pending),
            bytes: get(&self.bytes),
            oldest_ms: Some(get(&self.oldest_ms)).filter(|&ms| ms != 0),
            appended: get(&self.appended),
            delivered: get(&self.delivered),
            dropped_full: get(&self.dropped_full),
            dropped_expired: get(&self.dropped_expired),
            dropped_backlog: get(&self.dropped_backlog),
            write_errors: get(&self.write_errors),
            damaged: get(&self.damaged),
        }
    }

    fn add(&self, reason: NoticeReason, count: u64) {
        let counter = match reason {
            NoticeReason::Full => &self.dropped_full,
            NoticeReason::Expired => &self.dropped_expired,
            NoticeReason::Backlog => &self.dropped_backlog,
            NoticeReason::WriteFailed => &self.write_errors,
        };
        counter.fetch_add(count, Ordering::Relaxed);
    }
}

enum Control {
    Connected(u64),
    Disconnected,
    Acked { epoch: u64, id: u64 },
    Shutdown,
}

#[derive(Default)]
struct Inbox {
    /// Events with their camera's name.
    events: VecDeque<(String, Event)>,
    control: VecDeque<Control>,
    /// Per camera name: events refused because `events` was full.
    backlog: HashMap<String, u64>,
}

struct Shared {
    inbox: Mutex<Inbox>,
    wake: Condvar,
    stats: Arc<OutboxStats>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn control(&self, control: Control) {
        self.lock().control.push_back(control);
        self.wake.notify_one();
    }
}

/// Where the inference threads hand their events; never blocks.
#[derive(Clone)]
pub struct EventSink {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink").finish_non_exhaustive()
    }
}

impl EventSink {
    /// Queues the events of camera `camera` (its name: events are numbered per name, so a
    /// camera keeps its `seq` across reloads and restarts) for writing. Over
    /// [`INBOX_CAPACITY`] they are dropped, counted and announced (`backlog`).
    pub fn offer(&self, camera: &str, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let mut inbox = self.shared.lock();
        for event in events {
            if inbox.events.len() < INBOX_CAPACITY {
                inbox.events.push_back((camera.to_owned(), event));
            } else {
                *inbox.backlog.entry(camera.to_owned()).or_default() += 1;
            }
        }
        drop(inbox);
        self.shared.wake.notify_one();
    }
}

/// The publisher's side: records to send, and what became of them.
pub struct DeliveryLink {
    shared: Arc<Shared>,
    records: mpsc::Receiver<Outgoing>,
}

impl std::fmt::Debug for DeliveryLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryLink").finish_non_exhaustive()
    }
}

impl DeliveryLink {
    /// The broker is connected: send pending records from the oldest, tagged `epoch`.
    pub fn connected(&self, epoch: u64) {
        self.shared.control(Control::Connected(epoch));
    }

    /// The connection ended: what was handed out and not acknowledged is sent again on the
    /// next connection.
    pub fn disconnected(&self) {
        self.shared.control(Control::Disconnected);
    }

    /// The broker acknowledged every message of record `id`.
    pub fn acked(&self, epoch: u64, id: u64) {
        self.shared.control(Control::Acked { epoch, id });
    }

    /// The next record to send; `None` once the outbox has stopped.
    pub async fn next(&mut self) -> Option<Outgoing> {
        self.records.recv().await
    }

    pub fn stats(&self) -> Arc<OutboxStats> {
        Arc::clone(&self.shared.stats)
    }
}

/// The running outbox thread.
pub struct Outbox {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    /// Opens the log and starts the thread. An outbox that cannot be opened (read-only or
    /// missing disk, damaged state file) is an error in the log, not a reason to stop: events
    /// are then counted as `write_failed` and the thread tries again every 30 s.
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn start(
        options: OutboxOptions,
        stamp: Stamp,
    ) -> std::io::Result<(Outbox, EventSink, DeliveryLink)> {
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox::default()),
            wake: Condvar::new(),
            stats: Arc::new(OutboxStats::default()),
        });
        let (tx, records) = mpsc::channel(WINDOW);
        let mut worker = Worker {
            shared: Arc::clone(&shared),
            options,
            stamp,
            log: None,
            last_open_attempt: None,
            tx,
            connected: None,
            send_after: 0,
            in_flight: HashSet::new(),
            notices: Vec::new(),
            announced: HashMap::new(),
            last_persist: Instant::now(),
            last_enforce: None,
            errors: ErrorLog::default(),
            faults: Faults::default(),
            last_damage_reopen: None,
        };
        worker.try_open();
        let thread = std::thread::Builder::new()
            .name("outbox".to_owned())
            .spawn(move || worker.run())?;
        Ok((
            Outbox {
                shared: Arc::clone(&shared),
                thread: Some(thread),
            },
            EventSink {
                shared: Arc::clone(&shared),
            },
            DeliveryLink { shared, records },
        ))
    }

    pub fn stats(&self) -> Arc<OutboxStats> {
        Arc::clone(&self.shared.stats)
    }

    /// Writes every event still waiting, saves the delivered position, syncs and stops the
    /// thread. Call after the inference threads have stopped, so no event is left behind.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shared.control(Control::Shutdown);
            if thread.join().is_err() {
                tracing::error!("the outbox thread panicked");
            }
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Logs an error the first time and then at most once a minute, with how many were not logged.
#[derive(Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn error(&mut self, what: &str, error: &OutboxError) {
        let due = self.last.is_none_or(|t| t.elapsed() >= ERROR_LOG_INTERVAL);
        if due {
            tracing::error!(
                error = %chain(error),
                repeated = self.suppressed,
                "outbox: {what}"
            );
            self.last = Some(Instant::now());
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
    }

    fn recovered(&mut self) {
        if self.last.take().is_some() {
            tracing::info!("outbox: writing again");
        }
        self.suppressed = 0;
    }
}

struct Worker {
    shared: Arc<Shared>,
    options: OutboxOptions,
    stamp: Stamp,
    log: Option<Log>,
    last_open_attempt: Option<Instant>,
    tx: mpsc::Sender<Outgoing>,
    /// The current delivery round, while the broker is connected.
    connected: Option<u64>,
    /// The last record handed out in this round.
    send_after: u64,
    in_flight: HashSet<u64>,
    /// Drops not yet announced.
    notices: Vec<DropNotice>,
    /// Per camera and reason: the last announcement written and not yet acknowledged.
    announced: HashMap<(String, NoticeReason), (u64, DropNotice)>,
    last_persist: Instant,
    last_enforce: Option<Instant>,
    errors: ErrorLog,
    faults: Faults,
    /// When the log was last reopened to repair a record found damaged while running.
    last_damage_reopen: Option<Instant>,
}

/// What kind of write failed.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Opening the log (which writes its state).
    Open,
    /// Appending (and syncing) events.
    Append,
    /// Saving the delivered position, enforcing the bounds.
    State,
}

impl Fault {
    fn what(self) -> &'static str {
        match self {
            Fault::Open => "the outbox cannot be opened",
            Fault::Append => "events cannot be written",
            Fault::State => "the delivered position cannot be saved",
        }
    }
}

/// The outbox's current faults, one per kind: each is set when a write of its kind fails and
/// cleared when one succeeds. `health` and `status` show the first.
#[derive(Debug, Default)]
struct Faults {
    open: Option<String>,
    append: Option<String>,
    state: Option<String>,
}

impl Faults {
    fn slot(&mut self, fault: Fault) -> &mut Option<String> {
        match fault {
            Fault::Open => &mut self.open,
            Fault::Append => &mut self.append,
            Fault::State => &mut self.state,
        }
    }

    fn first(&self) -> Option<&String> {
        self.open
            .as_ref()
            .or(self.append.as_ref())
            .or(self.state.as_ref())
    }
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Worker {
    fn try_open(&mut self) {
        self.last_open_attempt = Some(Instant::now());
        match Log::open(&self.options.dir, self.options.log.clone()) {
            Ok((log, recovery)) => {
                let stats = log.stats();
                tracing::info!(
                    dir = %self.options.dir.display(),
                    pending = stats.pending,
                    bytes = stats.disk_bytes,
                    "outbox open"
                );
                self.report_recovery(&recovery);
                self.log = Some(log);
                self.clear(Fault::Open);
            }
            Err(e) => {
                let what = format!(
                    "cannot be opened; events are counted as write_failed and not kept until it can (retrying every {} s)",
                    REOPEN_INTERVAL.as_secs()
                );
                self.fail(Fault::Open, &what, &e);
            }
        }
    }

    /// Logs what [`Log::open`] found damaged and repaired, and counts the events lost.
    fn report_recovery(&self, recovery: &Recovery) {
        let dir = self.options.dir.display();
        if let Some(reason) = &recovery.state_damaged {
            tracing::warn!(
                dir = %dir,
                reason = %reason,
                "outbox: the state file was damaged; it was moved to state.damaged and the state recovered from the stored events (those still stored are sent again; a camera with none left starts a new event_id epoch)"
            );
        }
        for repair in &recovery.repairs {
            let path = repair.path.display();
            if repair.damaged_records == 0 && repair.last_segment && repair.salvaged_records == 0 {
                tracing::warn!(
                    path = %path,
                    offset = repair.offset,
                    truncated_bytes = repair.truncated_bytes,
                    reason = %repair.reason,
                    "outbox: a torn tail (crash or power loss while writing) was cut off; the events in it had not been produced"
                );
            } else {
                tracing::error!(
                    path = %path,
                    offset = repair.offset,
                    truncated_bytes = repair.truncated_bytes,
                    reason = %repair.reason,
                    damaged = repair.damaged_records,
                    kept_after_the_damage = repair.salvaged_records,
                    "outbox: damaged stored events were cut out (lost by the disk, or not yet synced at a power cut); every intact one is kept"
                );
            }
        }
        self.shared
            .stats
            .damaged
            .fetch_add(recovery.damaged_records, Ordering::Relaxed);
    }

    /// A write of kind `fault` failed: logged (at most once a minute), shown in `health`.
    fn fail(&mut self, fault: Fault, what: &str, error: &OutboxError) {
        self.errors.error(what, error);
        *self.faults.slot(fault) = Some(format!("{}: {}", fault.what(), chain(error)));
    }

    /// A write of kind `fault` succeeded.
    fn clear(&mut self, fault: Fault) {
        if self.faults.slot(fault).take().is_some() && self.faults.first().is_none() {
            self.errors.recovered();
        }
    }

    /// A record was found damaged while running: reopening the log repairs it (at most once
    /// per [`REOPEN_INTERVAL`]; delivery waits until then).
    fn reopen_damaged(&mut self, what: &str, error: &OutboxError) {
        if self
            .last_damage_reopen
            .is_some_and(|t| t.elapsed() < REOPEN_INTERVAL)
        {
            self.errors.error(what, error);
            return;
        }
        self.last_damage_reopen = Some(Instant::now());
        tracing::error!(error = %chain(error), "outbox: {what}; reopening the outbox to repair it");
        if let Some(mut log) = self.log.take()
            && let Err(e) = log.sync_now().and_then(|()| log.persist_state())
        {
            self.fail(Fault::State, "delivered position not saved", &e);
        }
        self.try_open();
    }

    fn run(mut self) {
        loop {
            let (controls, events, backlog) = {
                let mut inbox = self.shared.lock();
                if inbox.control.is_empty() && inbox.events.is_empty() && inbox.backlog.is_empty() {
                    inbox = self
                        .shared
                        .wake
                        .wait_timeout(inbox, TICK)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                (
                    std::mem::take(&mut inbox.control),
                    std::mem::take(&mut inbox.events),
                    std::mem::take(&mut inbox.backlog),
                )
            };
            let mut shutdown = false;
            for control in controls {
                match control {
                    Control::Connected(epoch) => {
                        self.connected = Some(epoch);
                        self.in_flight.clear();
                        self.send_after = 0;
                    }
                    Control::Disconnected => {
                        self.connected = None;
                        self.in_flight.clear();
                    }
                    Control::Acked { epoch, id } => {
                        if self.connected == Some(epoch) {
                            self.in_flight.remove(&id);
                        }
                        if let Some(log) = &mut self.log {
                            if !log.is_done(id) {
                                self.shared.stats.delivered.fetch_add(1, Ordering::Relaxed);
                            }
                            log.mark_done(id);
                        }
                        self.announced
                            .retain(|_, (announcement, _)| *announcement != id);
                    }
                    Control::Shutdown => shutdown = true,
                }
            }
            for (camera, count) in backlog {
                self.note(camera, NoticeReason::Backlog, count, None);
            }
            if !events.is_empty() || !self.notices.is_empty() {
                self.reopen_if_due();
            }
            for (camera, event) in events {
                self.append(&camera, Entry::Event(&event));
            }
            self.housekeeping(shutdown);
            self.announce();
            self.pump();
            self.publish_stats();
            if shutdown {
                if let Some(log) = &mut self.log
                    && let Err(e) = log.sync_now().and_then(|()| log.persist_state())
                {
                    self.fail(Fault::State, "state not saved at shutdown", &e);
                }
                return;
            }
        }
    }

    fn reopen_if_due(&mut self) {
        if self.log.is_none()
            && self
                .last_open_attempt
                .is_none_or(|t| t.elapsed() >= REOPEN_INTERVAL)
        {
            self.try_open();
        }
    }

    /// Records a drop to announce; the counter rises now.
    fn note(&mut self, camera: String, reason: NoticeReason, count: u64, seqs: Option<(u64, u64)>) {
        self.shared.stats.add(reason, count);
        tracing::warn!(camera = %camera, reason = reason.as_str(), count, "outbox: events dropped");
        let notice = DropNotice {
            camera,
            reason,
            count,
            seqs,
            at: SystemTime::now(),
        };
        match self
            .notices
            .iter_mut()
            .find(|n| n.camera == notice.camera && n.reason == notice.reason)
        {
            Some(existing) => *existing = merge(existing.clone(), &notice),
            None => self.notices.push(notice),
        }
    }

    /// Appends one entry; `true` if it was written.
    fn append(&mut self, camera: &str, entry: Entry<'_>) -> bool {
        let Some(log) = &mut self.log else {
            if let Entry::Event(_) = entry {
                self.note(camera.to_owned(), NoticeReason::WriteFailed, 1, None);
            }
            return false;
        };
        let stamp = &self.stamp;
        match log.append(camera, unix_ms(SystemTime::now()), |seq, event_id| {
            stamp(camera, seq, event_id, entry)
        }) {
            Ok(_) => {
                self.shared.stats.appended.fetch_add(1, Ordering::Relaxed);
                self.clear(Fault::Append);
                true
            }
            Err(OutboxError::Full { .. }) => {
                if let Entry::Event(_) = entry {
                    self.note(camera.to_owned(), NoticeReason::Full, 1, None);
                }
                false
            }
            Err(e) => {
                let what = "an event could not be written; it is dropped";
                if let OutboxError::Io { .. } = e {
                    self.fail(Fault::Append, what, &e);
                } else {
                    // The event's own fault (too large, a camera name the log cannot hold),
                    // not the disk's.
                    self.errors.error(what, &e);
                }
                if let Entry::Event(_) = entry {
                    self.note(camera.to_owned(), NoticeReason::WriteFailed, 1, None);
                }
                false
            }
        }
    }

    /// Bounds, interval sync, state file.
    fn housekeeping(&mut self, now: bool) {
        let Some(log) = &mut self.log else {
            if now
                || self
                    .last_open_attempt
                    .is_none_or(|t| t.elapsed() >= REOPEN_INTERVAL)
            {
                self.try_open();
            }
            return;
        };
        let enforce_due = self
            .last_enforce
            .is_none_or(|t| t.elapsed() >= PERSIST_INTERVAL);
        let mut dropped = Vec::new();
        if enforce_due || log.stats().disk_bytes > self.options.log.max_bytes {
            self.last_enforce = Some(Instant::now());
            match log.enforce(unix_ms(SystemTime::now())) {
                Ok(d) => dropped = d,
                Err(e @ OutboxError::Corrupt { .. }) => {
                    self.reopen_damaged("a stored event is damaged", &e);
                    return;
                }
                Err(e) => self.fail(Fault::State, "bounds not enforced", &e),
            }
        }
        let Some(log) = &mut self.log else { return };
        let synced = log.sync_if_due();
        let persisted = if now || self.last_persist.elapsed() >= PERSIST_INTERVAL {
            self.last_persist = Instant::now();
            Some(log.persist_state())
        } else {
            None
        };
        if let Err(e) = synced {
            self.fail(Fault::Append, "sync failed", &e);
        }
        match persisted {
            Some(Ok(())) => self.clear(Fault::State),
            Some(Err(e)) => self.fail(Fault::State, "delivered position not saved", &e),
            None => {}
        }
        for d in dropped {
            let reason = match d.reason {
                DropCause::Full => NoticeReason::Full,
                DropCause::Expired => NoticeReason::Expired,
            };
            self.note(d.camera, reason, d.count, Some((d.first_seq, d.last_seq)));
        }
    }

    /// Appends the pending drop announcements (each an event of its own, numbered like the
    /// others). One that cannot be written yet stays pending.
    ///
    /// An announcement waiting in the outbox can itself be dropped later; so until the broker
    /// has acknowledged one, the next announcement of the same camera and reason covers its
    /// drops too (counts added, seq ranges joined): the newest announcement delivered always
    /// explains every gap before it.
    fn announce(&mut self) {
        if self.notices.is_empty() || self.log.is_none() {
            return;
        }
        let notices = std::mem::take(&mut self.notices);
        let mut kept = Vec::new();
        for notice in notices {
            let key = (notice.camera.clone(), notice.reason);
            let merged = match self.announced.get(&key) {
                Some((_, earlier)) => merge(earlier.clone(), &notice),
                None => notice.clone(),
            };
            match self.append_notice(&merged) {
                Some(id) => {
                    self.announced.insert(key, (id, merged));
                }
                None => kept.push(notice),
            }
        }
        // Drops noted while appending (a full outbox) merge into the kept ones.
        for notice in std::mem::take(&mut self.notices) {
            kept.push(notice);
        }
        self.notices = kept;
    }

    /// The record id of the announcement, if it was written.
    fn append_notice(&mut self, notice: &DropNotice) -> Option<u64> {
        let Some(log) = &mut self.log else {
            return None;
        };
        let stamp = &self.stamp;
        let camera = notice.camera.as_str();
        match log.append(camera, unix_ms(SystemTime::now()), |seq, event_id| {
            stamp(camera, seq, event_id, Entry::Dropped(notice))
        }) {
            Ok(record) => {
                // (An announcement is small: it can fit where events do not, so it does not
                // clear a fault of writing events.)
                self.shared.stats.appended.fetch_add(1, Ordering::Relaxed);
                Some(record.id)
            }
            Err(OutboxError::Full { .. }) => None,
            Err(e) => {
                self.fail(
                    Fault::Append,
                    "a drop announcement could not be written",
                    &e,
                );
                None
            }
        }
    }

    /// Hands records to the publisher while connected, up to [`WINDOW`] unacknowledged.
    fn pump(&mut self) {
        let Some(epoch) = self.connected else { return };
        let Some(log) = &mut self.log else { return };
        while self.in_flight.len() < WINDOW {
            let record = match log.next_after(self.send_after) {
                Ok(Some(record)) => record,
                Ok(None) => return,
                Err(e @ OutboxError::Corrupt { .. }) => {
                    self.reopen_damaged("a stored event is damaged", &e);
                    return;
                }
                Err(e) => {
                    self.errors.error("a record could not be read back", &e);
                    return;
                }
            };
            let id = record.id;
            match self.tx.try_send(Outgoing {
                epoch,
                id,
                messages: record.messages,
            }) {
                Ok(()) => {
                    self.send_after = id;
                    self.in_flight.insert(id);
                }
                // Cannot happen while `in_flight` bounds the channel; try again later.
                Err(mpsc::error::TrySendError::Full(_)) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.connected = None;
                    return;
                }
            }
        }
    }

    fn publish_stats(&self) {
        let stats = &self.shared.stats;
        if let Some(log) = &self.log {
            let s = log.stats();
            stats.pending.store(s.pending, Ordering::Relaxed);
            stats.bytes.store(s.disk_bytes, Ordering::Relaxed);
            stats
                .oldest_ms
                .store(s.oldest_pending_created_ms.unwrap_or(0), Ordering::Relaxed);
        }
        let error = self.faults.first();
        stats
            .usable
            .store(self.log.is_some() && error.is_none(), Ordering::Relaxed);
        let mut shown = stats.error.lock().unwrap_or_else(|e| e.into_inner());
        if shown.as_ref() != error {
            *shown = error.cloned();
        }
    }
}

/// `earlier` and `later` as one notice: counts added, seq ranges joined, the later time.
fn merge(earlier: DropNotice, later: &DropNotice) -> DropNotice {
    DropNotice {
        count: earlier.count + later.count,
        seqs: match (earlier.seqs, later.seqs) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (a, b) => a.or(b),
        },
        at: later.at,
        ..earlier
    }
}

/// An error and its sources on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EventKind;
    use crate::outbox::log::{SyncPolicy, WhenFull};

    fn event(track_id: u64) -> Event {
        Event {
            kind: EventKind::TrackStart,
            at: SystemTime::now(),
            track_id,
            class: "person",
            label: "person".to_owned(),
            score: 0.5,
            bbox: [0.1, 0.1, 0.2, 0.2],
            zone: None,
            line: None,
            direction: None,
            dwell_s: None,
            snapshot: None,
        }
    }

    /// Messages name the camera, seq and track, so the order can be read back.
    fn stamp() -> Stamp {
        Box::new(|camera, seq, event_id, entry| {
            let what = match entry {
                Entry::Event(e) => format!("track {}", e.track_id),
                Entry::Dropped(n) => format!("dropped {} {}", n.reason.as_str(), n.count),
            };
            vec![Message {
                topic: format!("{camera}/events"),
                payload: format!("{seq} {event_id} {what}").into_bytes(),
            }]
        })
    }

    fn start(dir: &std::path::Path) -> (Outbox, EventSink, DeliveryLink) {
        let options = OutboxOptions {
            dir: dir.to_owned(),
            log: LogOptions::new(
                1 << 20,
                Duration::from_secs(3600),
                WhenFull::DropOldest,
                SyncPolicy::EveryRecord,
            ),
        };
        Outbox::start(options, stamp()).unwrap()
    }

    fn receive(link: &mut DeliveryLink) -> Outgoing {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match link.records.try_recv() {
                Ok(record) => return record,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("no record: {e}"),
            }
        }
    }

    fn seq_of(record: &Outgoing) -> u64 {
        let text = String::from_utf8(record.messages[0].payload.clone()).unwrap();
        text.split(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn records_go_out_in_order_and_again_from_the_oldest_unacknowledged_after_a_reconnect() {
        let dir = tempfile::tempdir().unwrap();
        let (outbox, sink, mut link) = start(dir.path());
        sink.offer("gate", (1..=5).map(event).collect());
        link.connected(1);
        let first: Vec<Outgoing> = (0..5).map(|_| receive(&mut link)).collect();
        assert_eq!(
            first.iter().map(seq_of).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert!(first.iter().all(|r| r.epoch == 1));
        link.acked(1, first[0].id);
        link.acked(1, first[2].id); // out of order: 2 is still unacknowledged
        link.disconnected();
        link.connected(2);
        let again: Vec<u64> = (0..3).map(|_| seq_of(&receive(&mut link))).collect();
        assert_eq!(again, [2, 4, 5], "acknowledged records are not sent again");
        assert!(link.records.try_recv().is_err(), "nothing more");
        outbox.shutdown();

        // A restart sends everything after the contiguous delivered position (3 again: at least
        // once), and numbering goes on.
        let (outbox, sink, mut link) = start(dir.path());
        sink.offer("gate", vec![event(6)]);
        link.connected(1);
        let after: Vec<u64> = (0..5).map(|_| seq_of(&receive(&mut link))).collect();
        assert_eq!(after, [2, 3, 4, 5, 6]);
        let figures = outbox.stats().figures();
        assert_eq!((figures.pending, figures.appended), (5, 1));
        outbox.shutdown();
    }

    #[test]
    fn a_record_damaged_while_running_is_cut_out_and_delivery_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (outbox, sink, mut link) = start(dir.path());
        sink.offer("gate", (1..=5).map(event).collect());
        let deadline = Instant::now() + Duration::from_secs(5);
        while outbox.stats().figures().appended < 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // A bit of record 3 flips on the disk (its last byte: the payload).
        let segment = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "log"))
            .unwrap();
        let mut bytes = std::fs::read(&segment).unwrap();
        let mut end = 0;
        for _ in 0..3 {
            let len = u32::from_le_bytes(bytes[end + 4..end + 8].try_into().unwrap());
            end += 12 + len as usize;
        }
        bytes[end - 1] ^= 0x20;
        std::fs::write(&segment, &bytes).unwrap();

        link.connected(1);
        let seqs: Vec<u64> = (0..4).map(|_| seq_of(&receive(&mut link))).collect();
        assert_eq!(
            seqs,
            [1, 2, 4, 5],
            "the records after the damaged one still go out"
        );
        let figures = outbox.stats().figures();
        assert_eq!(figures.damaged, 1, "{figures:?}");
        assert!(figures.usable, "{figures:?}");
        outbox.shutdown();
    }

    #[test]
    fn a_full_inbox_drops_counts_and_announces_without_using_a_seq() {
        let dir = tempfile::tempdir().unwrap();
        let (outbox, sink, mut link) = start(dir.path());
        // More than the inbox holds, offered at once: the thread cannot keep up.
        sink.offer(
            "gate",
            (1..=(INBOX_CAPACITY as u64 + 10)).map(event).collect(),
        );
        link.connected(1);
        let mut texts = Vec::new();
        for _ in 0..=INBOX_CAPACITY {
            let record = receive(&mut link);
            link.acked(1, record.id);
            texts.push(String::from_utf8(record.messages[0].payload.clone()).unwrap());
        }
        let last = texts.last().unwrap();
        assert!(
            last.starts_with(&format!("{} ", INBOX_CAPACITY + 1))
                && last.ends_with("dropped backlog 10"),
            "{last}"
        );
        assert_eq!(outbox.stats().figures().dropped_backlog, 10);
        outbox.shutdown();
    }
}
