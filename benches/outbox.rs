//! Outbox benchmarks: appending an event (metadata only, and with a 40 KB snapshot) under each
//! sync policy, and reading records back for delivery. The summary gives each as events per
//! second and as a ratio against the raw model rate measured in the same run: the outbox keeps
//! up as long as it takes events far faster than the model can produce frames.
//!
//! `cargo bench --bench outbox`. The outbox lives in a temporary folder on the disk the
//! benchmark runs from (fdatasync cost depends on that disk).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use watchpost::detect::{ClassFilter, Detector, DetectorOptions, Runtime};
use watchpost::outbox::{Log, LogOptions, Message, SyncPolicy, WhenFull};

const EVENT_JSON: usize = 420;
const SNAPSHOT: usize = 40 * 1024;

fn open(dir: &Path, sync: SyncPolicy) -> Log {
    let options = LogOptions::new(
        1 << 30,
        Duration::from_secs(7 * 24 * 3600),
        WhenFull::DropOldest,
        sync,
    );
    Log::open(dir, options).expect("outbox").0
}

fn messages(snapshot: bool) -> Vec<Message> {
    let mut out = Vec::new();
    if snapshot {
        out.push(Message {
            topic: "watchpost/site/box/gate/snapshots/x".to_owned(),
            payload: vec![0x5a; SNAPSHOT],
        });
    }
    out.push(Message {
        topic: "watchpost/site/box/gate/events".to_owned(),
        payload: vec![b'{'; EVENT_JSON],
    });
    out
}

fn append(log: &mut Log, snapshot: bool) {
    let record = log
        .append("gate", 1_800_000_000_000, |_, _| messages(snapshot))
        .expect("append");
    black_box(record.id);
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("outbox");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    for (name, sync, snapshot) in [
        ("append_event_sync_every", SyncPolicy::EveryRecord, false),
        (
            "append_event_40k_snapshot_sync_every",
            SyncPolicy::EveryRecord,
            true,
        ),
    ] {
        // (Without sync an append takes microseconds: criterion would write gigabytes to
        // measure it; the summary times 300 of them instead.)
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let mut log = open(dir.path(), sync);
        group.bench_function(name, |b| b.iter(|| append(&mut log, snapshot)));
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut log = open(dir.path(), SyncPolicy::Never);
    for _ in 0..2000 {
        append(&mut log, false);
    }
    let mut after = 0;
    group.bench_function("read_back_next_record", |b| {
        b.iter(|| {
            after = match log.next_after(after).unwrap() {
                Some(record) => record.id,
                None => 0,
            };
        })
    });
    group.finish();
}

/// Events per second for each case, and as a ratio of the raw model rate measured now.
fn summary(_: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runtime = Runtime::load(None).expect("ONNX Runtime (run deploy/setup.sh)");
    let options = DetectorOptions {
        intra_threads: 1,
        class_filter: ClassFilter::CoarseClassesOnly,
    };
    let mut detector =
        Detector::load(&runtime, &root.join("models/nanodet-m-416.toml"), &options).expect("model");
    detector.run_model().unwrap();
    let start = Instant::now();
    let n = 30;
    for _ in 0..n {
        detector.run_model().unwrap();
    }
    let model_rate = f64::from(n) / start.elapsed().as_secs_f64();
    println!("\nsummary (ratios against the raw model rate, 1 thread: {model_rate:.1} frames/s):");
    for (name, sync, snapshot) in [
        ("event, fdatasync each", SyncPolicy::EveryRecord, false),
        (
            "event + 40 KB snapshot, fdatasync each",
            SyncPolicy::EveryRecord,
            true,
        ),
        ("event, no sync", SyncPolicy::Never, false),
    ] {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let mut log = open(dir.path(), sync);
        append(&mut log, snapshot);
        let n = 300;
        let start = Instant::now();
        for _ in 0..n {
            append(&mut log, snapshot);
        }
        let rate = f64::from(n) / start.elapsed().as_secs_f64();
        println!(
            "  {name:42} {rate:9.0} events/s  {:8.1}× the model rate",
            rate / model_rate
        );
    }
}

criterion_group!(outbox_benches, benches, summary);

fn main() {
    outbox_benches();
    Criterion::default().configure_from_args().final_summary();
}
