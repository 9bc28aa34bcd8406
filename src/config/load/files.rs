//! The files the loader looks at — the configuration file itself, and the certificates, keys and
//! password files it names — behind [`Files`], handed to the checks the way the environment is:
//! [`OsFiles`] is the real file system, and tests or a command about to write files put
//! another in its place. This is the only module of the loader that touches the file system.

use std::io;
use std::path::Path;

/// The files as the loader sees them.
pub trait Files {
    /// Whether `path` is a regular file, links followed (as `std::fs::metadata` says); the
    /// error says why it cannot be looked at.
    ///
    /// # Errors
    /// `path` does not exist or cannot be looked at.
    fn is_file(&self, path: &Path) -> io::Result<bool>;

    /// The whole text of the file at `path`.
    ///
    /// # Errors
    /// The file cannot be read or is not UTF-8.
    fn read_to_string(&self, path: &Path) -> io::Result<String>;
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsFiles;

impl Files for OsFiles {
    fn is_file(&self, path: &Path) -> io::Result<bool> {
        std::fs::metadata(path).map(|meta| meta.is_file())
    }

    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Files held in memory, for tests: each given file, and the folders above them. Errors are
/// the operating system's (`No such file or directory (os error 2)`), so that messages are
/// those of real files.
#[cfg(test)]
pub(super) struct MemoryFiles(std::collections::HashMap<std::path::PathBuf, String>);

#[cfg(test)]
impl MemoryFiles {
    /// `files`: (absolute path, contents).
    pub(super) fn new(files: &[(&str, &str)]) -> MemoryFiles {
        MemoryFiles(
            files
                .iter()
                .map(|&(path, text)| (path.into(), text.to_owned()))
                .collect(),
        )
    }

    fn is_folder(&self, path: &Path) -> bool {
        self.0
            .keys()
            .any(|file| file != path && file.starts_with(path))
    }
}

#[cfg(test)]
impl Files for MemoryFiles {
    fn is_file(&self, path: &Path) -> io::Result<bool> {
        if self.0.contains_key(path) {
            Ok(true)
        } else if self.is_folder(path) {
            Ok(false)
        } else {
            Err(io::Error::from_raw_os_error(libc::ENOENT))
        }
    }

    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        match self.0.get(path) {
            Some(text) => Ok(text.clone()),
            None if self.is_folder(path) => Err(io::Error::from_raw_os_error(libc::EISDIR)),
            None => Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stand-in says what the real file system says, word for word.
    #[test]
    fn memory_files_answer_as_the_real_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        std::fs::write(dir.path().join("keys/client.key"), "key").unwrap();
        let file = dir.path().join("keys/client.key");
        let memory = MemoryFiles::new(&[(file.to_str().unwrap(), "key")]);
        let paths = [
            file.clone(),
            dir.path().join("keys"),
            dir.path().join("keys/."),
            dir.path().join("missing"),
        ];
        fn shown<T>(result: io::Result<T>) -> Result<T, String> {
            result.map_err(|e| e.to_string())
        }
        for path in &paths {
            assert_eq!(
                shown(memory.is_file(path)),
                shown(OsFiles.is_file(path)),
                "{}",
                path.display()
            );
            assert_eq!(
                shown(memory.read_to_string(path)),
                shown(OsFiles.read_to_string(path)),
                "{}",
                path.display()
            );
        }
    }
}
