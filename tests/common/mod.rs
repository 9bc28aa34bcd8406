//! Shared helpers for the integration tests: paths to the bundled model and test data, the
//! ground truth checked by eye, waiting for a condition, running the `watchpost` binary, and
//! the lock that runs a file's heavy tests one at a time.
#![allow(dead_code)]

pub mod agent;
pub mod browser;
pub mod camera;
pub mod central;
pub mod http;
pub mod mosquitto;
pub mod publisher;
pub mod tmpfs;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Held by a test that must not run beside the others of its file (they share two cores):
/// `let _serial = serial();`. A test that failed while holding it does not block the rest.
pub fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls `probe` every `every` until it gives a value, or `timeout` passes (`None`).
pub fn wait_for<T>(
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Polls `condition` every 20 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    wait_for(timeout, Duration::from_millis(20), || {
        condition().then_some(())
    })
    .is_some()
}

/// `text` through the real loader, as the agent would load it from `./watchpost.toml`.
pub fn parse_config(text: &str) -> watchpost::config::Config {
    watchpost::config::parse(text, Path::new("watchpost.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// How a run of the `watchpost` binary ended: its exit code and its output.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(output: std::process::Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub fn bundled_manifest() -> PathBuf {
    repo_path("models/nanodet-m-416.toml")
}

pub fn frames_dir() -> PathBuf {
    repo_path("tests/data/frames")
}

/// `tests/data/frames/ground-truth.toml`: persons checked by eye, per frame.
#[derive(Debug, serde::Deserialize)]
pub struct GroundTruth {
    pub frames: Vec<FrameTruth>,
}

#[derive(Debug, serde::Deserialize)]
pub struct FrameTruth {
    pub file: String,
    pub persons_min: usize,
    pub persons_max: usize,
    #[serde(default)]
    pub persons: Vec<PersonTruth>,
    #[serde(flatten)]
    pub other: toml::Table,
}

#[derive(Debug, serde::Deserialize)]
pub struct PersonTruth {
    /// Normalised `[x, y, w, h]`.
    pub bbox: [f32; 4],
    #[serde(default)]
    pub note: String,
    /// A person the detector is known to miss or merge with a neighbour: reported, not required.
    #[serde(default)]
    pub hard: bool,
}

pub fn ground_truth() -> GroundTruth {
    let path = frames_dir().join("ground-truth.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// IoU of two normalised `[x, y, w, h]` boxes.
pub fn iou_xywh(a: [f32; 4], b: [f32; 4]) -> f32 {
    let ra = watchpost::geometry::Rect::from_xywh(a[0], a[1], a[2], a[3]);
    let rb = watchpost::geometry::Rect::from_xywh(b[0], b[1], b[2], b[3]);
    ra.iou(&rb)
}

/// One-to-one matching of boxes `a` against boxes `b`, greedy by IoU: pairs `(index in a, index
/// in b, IoU)` with IoU >= `min_iou`, each box in at most one pair; `same(i, j)` must hold for a
/// pair (the same class, say). One loose box over two people counts once.
pub fn match_one_to_one(
    a: &[[f32; 4]],
    b: &[[f32; 4]],
    min_iou: f32,
    same: impl Fn(usize, usize) -> bool,
) -> Vec<(usize, usize, f32)> {
    let mut candidates: Vec<(f32, usize, usize)> = Vec::new();
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            let iou = iou_xywh(*x, *y);
            if iou >= min_iou && same(i, j) {
                candidates.push((iou, i, j));
            }
        }
    }
    candidates.sort_by(|p, q| q.0.total_cmp(&p.0));
    let (mut a_used, mut b_used) = (vec![false; a.len()], vec![false; b.len()]);
    let mut pairs = Vec::new();
    for (iou, i, j) in candidates {
        if !a_used[i] && !b_used[j] {
            a_used[i] = true;
            b_used[j] = true;
            pairs.push((i, j, iou));
        }
    }
    pairs
}
