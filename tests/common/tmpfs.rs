//! A tmpfs mounted for one test (read-only, or of a given size, through the mount options), so
//! tests can give the agent a disk that refuses writes or fills up. Needs root (CI runs as root).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A filesystem mounted for one test, unmounted when dropped. Needs root (CI runs as root).
pub struct Mount(PathBuf);

impl Mount {
    /// Mounts a tmpfs at `at` (created if missing) with `mount -o options`, e.g. `"ro,size=1m"`.
    /// Panics, saying root is needed, when `mount` fails.
    pub fn tmpfs(at: &Path, options: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount -t tmpfs -o {options} {} failed: these tests need root (CI runs as root)",
            at.display()
        );
        Mount(at.to_owned())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
