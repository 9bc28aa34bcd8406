//! The last accepted counter of each key, kept durably in
//! `{state_dir}/commands/counters.json`:
//!
//! ```json
//! {"schema":"watchpost.command-counters/1","counters":{"central":42}}
//! ```
//!
//! Invariant: a counter is on disk (written to a temporary file, fsync'd, renamed over the old
//! file, the folder fsync'd) before [`CounterStore::advance`] returns, so before the command is
//! acted on; a crash afterwards loses the command, never the counter (commands run at most
//! once). A file that cannot be read or understood is an error, never an empty store: the
//! caller refuses every command rather than accept a replay. A missing file is an empty store
//! (a new device); deleting it lets a command that has not expired yet be replayed once.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `schema` of the counter file.
pub const COUNTERS_SCHEMA: &str = "watchpost.command-counters/1";

/// The counter file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}: damaged ({detail}); commands are refused until it is repaired or removed",
        path.display()
    )]
    Damaged { path: PathBuf, detail: String },
    #[error("{}: cannot {op}: {source}", path.display())]
    Write {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
}

/// How a counter compares with the last accepted one of its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterCheck {
    /// Above the last one: now stored durably.
    Advanced,
    /// The last one again.
    Replayed,
    /// Below the last one.
    Behind { last: u64 },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountersFile {
    schema: String,
    counters: BTreeMap<String, u64>,
}

/// The counters of every key (see the module documentation).
#[derive(Debug)]
pub struct CounterStore {
    path: PathBuf,
    counters: BTreeMap<String, u64>,
}

impl CounterStore {
    /// `{state_dir}/commands/counters.json`.
    pub fn file(state_dir: &Path) -> PathBuf {
        state_dir.join("commands").join("counters.json")
    }

    /// Reads the store of `state_dir` (empty when the file does not exist).
    ///
    /// # Errors
    /// [`CounterError::Read`] or [`CounterError::Damaged`].
    pub fn open(state_dir: &Path) -> Result<CounterStore, CounterError> {
        let path = CounterStore::file(state_dir);
        let counters = match fs::read(&path) {
            Ok(bytes) => parse(&bytes).map_err(|detail| CounterError::Damaged {
                path: path.clone(),
                detail,
            })?,
            Err(e) if e.kind() == ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(CounterError::Read { path, source }),
        };
        Ok(CounterStore { path, counters })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last counter accepted for `key_id`.
    pub fn last(&self, key_id: &str) -> Option<u64> {
        self.counters.get(key_id).copied()
    }

    /// Compares `counter` with the last one of `key_id` and, when it is above, stores it
    /// durably before returning [`CounterCheck::Advanced`]. Nothing changes otherwise.
    ///
    /// # Errors
    /// [`CounterError::Write`]: the counter is not stored (in memory either).
    pub fn advance(&mut self, key_id: &str, counter: u64) -> Result<CounterCheck, CounterError> {
        match self.last(key_id) {
            Some(last) if counter == last => return Ok(CounterCheck::Replayed),
            Some(last) if counter < last => return Ok(CounterCheck::Behind { last }),
            _ => {}
        }
        let mut counters = self.counters.clone();
        counters.insert(key_id.to_owned(), counter);
        self.write(&counters)?;
        self.counters = counters;
        Ok(CounterCheck::Advanced)
    }

    fn write(&self, counters: &BTreeMap<String, u64>) -> Result<(), CounterError> {
        let error = |path: &Path, op| {
            let path = path.to_owned();
            move |source| CounterError::Write { path, op, source }
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(error(dir, "create the folder"))?;
        let file = CountersFile {
            schema: COUNTERS_SCHEMA.to_owned(),
            counters: counters.clone(),
        };
        let mut text = serde_json::to_string(&file).unwrap_or_default();
        text.push('\n');
        let tmp = self.path.with_extension("json.tmp");
        let mut out = File::create(&tmp).map_err(error(&tmp, "create"))?;
        out.write_all(text.as_bytes())
            .and_then(|()| out.sync_all())
            .map_err(error(&tmp, "write"))?;
        fs::rename(&tmp, &self.path).map_err(error(&self.path, "replace"))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(error(dir, "sync the folder"))
    }
}

fn parse(bytes: &[u8]) -> Result<BTreeMap<String, u64>, String> {
    let file: CountersFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.schema != COUNTERS_SCHEMA {
        return Err(format!("`schema` is not \"{COUNTERS_SCHEMA}\""));
    }
    Ok(file.counters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_only_grow_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CounterStore::open(dir.path()).unwrap();
        assert_eq!(store.last("central"), None);
        // (key, counter, expected)
        let steps = [
            ("central", 5, CounterCheck::Advanced),
            ("central", 5, CounterCheck::Replayed),
            ("central", 4, CounterCheck::Behind { last: 5 }),
            ("central", 9, CounterCheck::Advanced),
            ("backup", 1, CounterCheck::Advanced),
            ("central", 6, CounterCheck::Behind { last: 9 }),
        ];
        for (key, counter, expected) in steps {
            assert_eq!(
                store.advance(key, counter).unwrap(),
                expected,
                "{key} {counter}"
            );
        }
        let reopened = CounterStore::open(dir.path()).unwrap();
        assert_eq!(reopened.last("central"), Some(9));
        assert_eq!(reopened.last("backup"), Some(1));
        let text = fs::read_to_string(CounterStore::file(dir.path())).unwrap();
        assert_eq!(
            text,
            "{\"schema\":\"watchpost.command-counters/1\",\"counters\":{\"backup\":1,\"central\":9}}\n"
        );
        assert!(
            !CounterStore::file(dir.path())
                .with_extension("json.tmp")
                .exists()
        );
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_store() {
        for text in [
            "",
            "{",
            "{\"schema\":\"watchpost.command-counters/2\",\"counters\":{}}",
            "{\"schema\":\"watchpost.command-counters/1\",\"counters\":{\"a\":-1}}",
            "{\"schema\":\"watchpost.command-counters/1\",\"counters\":{},\"x\":1}",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = CounterStore::file(dir.path());
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
            let error = CounterStore::open(dir.path()).unwrap_err();
            assert!(
                matches!(error, CounterError::Damaged { .. }),
                "{text}: {error}"
            );
            assert!(error.to_string().contains("counters.json"), "{error}");
        }
    }

    #[test]
    fn a_counter_that_cannot_be_written_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CounterStore::open(dir.path()).unwrap();
        // The folder `commands` is a file (and root may write anywhere else).
        fs::write(dir.path().join("commands"), "").unwrap();
        let error = store.advance("central", 3).unwrap_err();
        assert!(matches!(error, CounterError::Write { .. }), "{error}");
        assert_eq!(store.last("central"), None);
    }
}
