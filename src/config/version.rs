//! The version of the configuration in force: a number that grows with each change and a
//! checksum of the file, written `7-3fa9c2e1b0d4a611` (number, dash, the first 16 hex digits
//! of the SHA-256 of the file's bytes).
//!
//! The checksum makes the version change whenever the file does, however it was changed (by
//! hand, `watchpost config set`, a remote `config.apply`); the number tells a person which of
//! two versions is newer. Both are kept in `{state_dir}/config-version.json`
//! ([`VersionStore`]); at each start and each reload the agent compares the file's checksum
//! with the one kept and, when they differ, counts one more version. A missing or damaged
//! file starts the count again at 1 (the checksum still tells versions apart).
//!
//! Remote `config.apply` names the version it was written against (`expected_version`) and is
//! refused when that is not the version in force: a change made meanwhile is never silently
//! overwritten.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::audit::StagedFile;

/// `schema` of the version file.
pub const VERSION_SCHEMA: &str = "watchpost.config-version/1";

/// Hex digits of the SHA-256 kept in a version.
const CHECKSUM_DIGITS: usize = 16;

/// One version of the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigVersion {
    /// 1 for the first configuration this state folder saw, +1 per change.
    pub number: u64,
    /// The first 16 hex digits of the SHA-256 of the file.
    pub checksum: String,
}

impl ConfigVersion {
    /// The checksum of a configuration file's bytes.
    pub fn checksum_of(bytes: &[u8]) -> String {
        let digest = Sha256::digest(bytes);
        let mut hex = String::with_capacity(CHECKSUM_DIGITS);
        for byte in digest.iter().take(CHECKSUM_DIGITS / 2) {
            hex.push_str(&format!("{byte:02x}"));
        }
        hex
    }
}

impl fmt::Display for ConfigVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.number, self.checksum)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionFile {
    schema: String,
    #[serde(flatten)]
    version: ConfigVersion,
}

/// The version kept in a state folder (see the module documentation).
#[derive(Debug)]
pub struct VersionStore {
    path: PathBuf,
    current: Option<ConfigVersion>,
}

impl VersionStore {
    /// `{state_dir}/config-version.json`.
    pub fn file(state_dir: &Path) -> PathBuf {
        state_dir.join("config-version.json")
    }

    /// The store of `state_dir`; a missing, unreadable or damaged file is an empty store.
    pub fn open(state_dir: &Path) -> VersionStore {
        let path = VersionStore::file(state_dir);
        let current = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<VersionFile>(&bytes).ok())
            .filter(|file| file.schema == VERSION_SCHEMA)
            .map(|file| file.version);
        VersionStore { path, current }
    }

    /// The version of a configuration file whose bytes are `bytes`: the kept one when the
    /// checksum is the same, else the next number, kept on disk. A version that cannot be
    /// written is still returned (and the error with it, for the log).
    pub fn observe(&mut self, bytes: &[u8]) -> (ConfigVersion, Option<std::io::Error>) {
        let version = self.peek(bytes);
        if self.current.as_ref() == Some(&version) {
            return (version, None);
        }
        let error = self.write(&version).err();
        self.current = Some(version.clone());
        (version, error)
    }

    /// What [`VersionStore::observe`] would answer for `bytes`, without keeping anything: for
    /// readers (the technician's page) that must not write.
    pub fn peek(&self, bytes: &[u8]) -> ConfigVersion {
        let checksum = ConfigVersion::checksum_of(bytes);
        match &self.current {
            Some(current) if current.checksum == checksum => current.clone(),
            current => ConfigVersion {
                number: current.as_ref().map_or(1, |c| c.number + 1),
                checksum,
            },
        }
    }

    fn write(&self, version: &ConfigVersion) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = VersionFile {
            schema: VERSION_SCHEMA.to_owned(),
            version: version.clone(),
        };
        let mut text = serde_json::to_string(&file).map_err(std::io::Error::other)?;
        text.push('\n');
        StagedFile::stage(&self.path, text.as_bytes(), 0o640, None)
            .map_err(std::io::Error::other)?
            .put_in_place()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_number_grows_only_when_the_file_changes_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = VersionStore::open(dir.path());
        // (file bytes, expected number)
        let steps: [(&[u8], u64); 5] = [(b"a", 1), (b"a", 1), (b"b", 2), (b"a", 3), (b"a", 3)];
        for (bytes, number) in steps {
            let (version, error) = store.observe(bytes);
            assert!(error.is_none());
            assert_eq!(version.number, number, "{bytes:?}");
            assert_eq!(version.checksum, ConfigVersion::checksum_of(bytes));
        }
        let (version, _) = VersionStore::open(dir.path()).observe(b"a");
        assert_eq!(
            version.to_string(),
            format!("3-{}", ConfigVersion::checksum_of(b"a"))
        );
        assert_eq!(version.checksum.len(), CHECKSUM_DIGITS);
        // SHA-256("a") starts ca978112ca1bbdca.
        assert_eq!(version.checksum, "ca978112ca1bbdca");
    }

    #[test]
    fn a_peek_answers_like_observe_but_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = VersionStore::open(dir.path());
        assert_eq!(store.peek(b"a").number, 1);
        assert!(
            !VersionStore::file(dir.path()).exists(),
            "a peek writes no file"
        );
        store.observe(b"a");
        let kept = std::fs::read(VersionStore::file(dir.path())).unwrap();
        let store = VersionStore::open(dir.path());
        assert_eq!(
            store.peek(b"a").to_string(),
            format!("1-{}", ConfigVersion::checksum_of(b"a"))
        );
        assert_eq!(store.peek(b"b").number, 2);
        assert_eq!(store.peek(b"b").number, 2, "still 2: nothing kept");
        assert_eq!(std::fs::read(VersionStore::file(dir.path())).unwrap(), kept);
    }

    #[test]
    fn a_damaged_file_starts_again_at_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(VersionStore::file(dir.path()), "{").unwrap();
        let (version, _) = VersionStore::open(dir.path()).observe(b"x");
        assert_eq!(version.number, 1);
    }
}
