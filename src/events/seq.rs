//! Per-camera event sequence numbers that survive restarts.
//!
//! Invariant: a `seq` is written to disk (fsync'd, atomically replaced) before it is handed
//! out, so after a crash or power loss the next run continues after the last `seq` any event
//! carried: numbers are never reused and never skipped. The file also holds a random epoch
//! made when the file is created; `event_id` = `{epoch}-{seq}`, so ids stay unique even if the
//! state directory is wiped.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Why the sequence file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SeqError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a watchpost sequence file (expected `EPOCH NEXT_SEQ`)")]
    Corrupt { path: PathBuf },
}

/// The sequence of one camera.
#[derive(Debug)]
pub struct SeqStore {
    /// `None` when persistence is off (no writable state directory): numbers then restart at 1
    /// with a fresh epoch on every run.
    path: Option<PathBuf>,
    epoch: u64,
    next: u64,
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok()
    {
        return u64::from_le_bytes(bytes);
    }
    // No /dev/urandom: time and pid are unique enough for an epoch.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

impl SeqStore {
    /// Opens (or creates) `{dir}/{camera}.seq`.
    ///
    /// # Errors
    /// The folder or file cannot be created, read or written, or the file is not ours.
    pub fn open(dir: &Path, camera: &str) -> Result<SeqStore, SeqError> {
        let path = dir.join(format!("{camera}.seq"));
        let io = |source| SeqError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|source| SeqError::Io {
            path: dir.to_owned(),
            source,
        })?;
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let mut parts = text.split_whitespace();
                let epoch = parts.next().and_then(|e| u64::from_str_radix(e, 16).ok());
                let next = parts.next().and_then(|n| n.parse::<u64>().ok());
                match (epoch, next) {
                    (Some(epoch), Some(next)) if next >= 1 => Ok(SeqStore {
                        path: Some(path),
                        epoch,
                        next,
                    }),
                    _ => Err(SeqError::Corrupt { path }),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let store = SeqStore {
                    path: Some(path.clone()),
                    epoch: random_u64(),
                    next: 1,
                };
                store.write(1).map_err(io)?;
                Ok(store)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A store that keeps nothing on disk.
    pub fn in_memory() -> SeqStore {
        SeqStore {
            path: None,
            epoch: random_u64(),
            next: 1,
        }
    }

    /// Writes `next` durably: temp file, fsync, rename over, fsync the folder.
    fn write(&self, next: u64) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let tmp = path.with_extension("seq.tmp");
        {
            let mut file = File::create(&tmp)?;
            writeln!(file, "{:016x} {next}", self.epoch)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// The next `(seq, event_id)`, persisted before it is returned.
    ///
    /// # Errors
    /// The file could not be written; the number is then not handed out (the caller decides
    /// whether to go on without persistence with [`SeqStore::detach`]).
    pub fn next_seq(&mut self) -> Result<(u64, String), SeqError> {
        let seq = self.next;
        self.write(seq + 1).map_err(|source| SeqError::Io {
            path: self.path.clone().unwrap_or_default(),
            source,
        })?;
        self.next = seq + 1;
        Ok((seq, format!("{:016x}-{seq}", self.epoch)))
    }

    /// Goes on in memory only (after a write failure): numbers continue, but a restart may
    /// reuse them.
    pub fn detach(&mut self) {
        self.path = None;
    }

    pub fn is_persistent(&self) -> bool {
        self.path.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_continues_across_restarts_and_ids_stay_unique() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = SeqStore::open(dir.path(), "gate").unwrap();
        let a: Vec<(u64, String)> = (0..3).map(|_| first.next_seq().unwrap()).collect();
        assert_eq!(a.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![1, 2, 3]);
        drop(first); // as after a crash: nothing else is flushed
        let mut second = SeqStore::open(dir.path(), "gate").unwrap();
        let (seq, id) = second.next_seq().unwrap();
        assert_eq!(seq, 4, "continues after the last handed out, none skipped");
        assert_eq!(id.split('-').next(), a[0].1.split('-').next(), "same epoch");
        assert!(a.iter().all(|(_, other)| *other != id));

        let mut other_camera = SeqStore::open(dir.path(), "road").unwrap();
        assert_eq!(other_camera.next_seq().unwrap().0, 1, "per camera");

        // A wiped state directory starts again at 1 with another epoch: ids differ.
        let wiped = tempfile::tempdir().unwrap();
        let (seq, wiped_id) = SeqStore::open(wiped.path(), "gate")
            .unwrap()
            .next_seq()
            .unwrap();
        assert_eq!(seq, 1);
        assert_ne!(wiped_id, a[0].1);
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gate.seq"), "hello").unwrap();
        let err = SeqStore::open(dir.path(), "gate").unwrap_err().to_string();
        assert!(err.contains("not a watchpost sequence file"), "{err}");
    }

    #[test]
    fn a_read_only_directory_is_an_error_not_a_panic() {
        let err = SeqStore::open(Path::new("/proc/watchpost-test"), "gate").unwrap_err();
        assert!(err.to_string().starts_with("/proc/watchpost-test"), "{err}");
    }
}
