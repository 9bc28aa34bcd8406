//! Which cameras run: their counters by slot id, for everything that reports on them (the
//! publisher's `status` and `health`, the local endpoint's `/status` and `/metrics`).
//!
//! A camera's id is its slot on the frame path ([`crate::framepath::FrameBoard`]): ids are
//! handed out in order, 0, 1, 2, …, and never reused. A camera removed by a reload is
//! *retired*: it leaves the live list at once, but its counters stay reachable by id so that
//! the results of its last frames (still in the inference threads) are published and counted
//! under its name.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::CameraStats;

/// One camera's place in the list.
#[derive(Debug)]
struct Entry {
    stats: Arc<CameraStats>,
    live: bool,
}

/// The cameras, live and retired, by slot id. Shared (`Arc`) between the supervisor, which
/// adds and retires, and the readers. Readers hold the lock only to copy an `Arc`.
#[derive(Debug, Default)]
pub struct Cameras {
    entries: RwLock<Vec<Entry>>,
}

impl Cameras {
    /// A list of these cameras, with ids 0, 1, 2, … in this order.
    pub fn new(stats: Vec<Arc<CameraStats>>) -> Cameras {
        let cameras = Cameras::default();
        for s in stats {
            cameras.add(s);
        }
        cameras
    }

    fn read(&self) -> RwLockReadGuard<'_, Vec<Entry>> {
        // Every update is one push or one flag: a poisoned lock is still consistent.
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<Entry>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a live camera; its id (the next one, never used before).
    pub fn add(&self, stats: Arc<CameraStats>) -> usize {
        let mut entries = self.write();
        entries.push(Entry { stats, live: true });
        entries.len() - 1
    }

    /// Takes camera `id` off the live list; its counters stay reachable by id.
    pub fn retire(&self, id: usize) {
        if let Some(entry) = self.write().get_mut(id) {
            entry.live = false;
        }
    }

    /// The counters of camera `id`, live or retired.
    pub fn get(&self, id: usize) -> Option<Arc<CameraStats>> {
        self.read().get(id).map(|e| Arc::clone(&e.stats))
    }

    /// The live cameras with their ids, in id order (the order they were started).
    pub fn live(&self) -> Vec<(usize, Arc<CameraStats>)> {
        self.read()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.live)
            .map(|(id, e)| (id, Arc::clone(&e.stats)))
            .collect()
    }

    /// The live cameras' counters, in id order.
    pub fn live_stats(&self) -> Vec<Arc<CameraStats>> {
        self.live().into_iter().map(|(_, s)| s).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicName;

    fn stats(name: &str) -> Arc<CameraStats> {
        Arc::new(CameraStats::new(TopicName::parse(name).unwrap()))
    }

    #[test]
    fn ids_are_never_reused_and_retired_cameras_stay_reachable() {
        let cameras = Cameras::new(vec![stats("a"), stats("b")]);
        cameras.retire(0);
        assert_eq!(cameras.add(stats("c")), 2, "a fresh id");
        let live: Vec<(usize, String)> = cameras
            .live()
            .into_iter()
            .map(|(id, s)| (id, s.name.to_string()))
            .collect();
        assert_eq!(live, [(1, "b".to_owned()), (2, "c".to_owned())]);
        assert_eq!(
            cameras.get(0).map(|s| s.name.to_string()).as_deref(),
            Some("a")
        );
        assert!(cameras.get(3).is_none());
    }
}
