//! A filesystem mounted for one test, so tests can give the agent a disk that refuses writes,
//! fills up or turns read-only under it: a tmpfs (read-only, or of a given size, through the
//! mount options), or ext4 in an image file on a loop device, which the kernel can be told to
//! remount read-only as it does on an I/O error (`errors=remount-ro`). Needs root (CI runs as
//! root).

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

    /// Makes an ext4 filesystem of `size_mb` in the file `image` and mounts it at `at`
    /// (created if missing) on a loop device, with `errors=remount-ro`: see
    /// [`Mount::fail_read_only`]. Panics, saying what is needed, when that fails.
    pub fn ext4(at: &Path, image: &Path, size_mb: u64) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        std::fs::File::create(image)
            .and_then(|f| f.set_len(size_mb << 20))
            .unwrap();
        let made = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(image)
            .status()
            .expect("run mkfs.ext4 (e2fsprogs)");
        assert!(made.success(), "mkfs.ext4 {} failed", image.display());
        let status = Command::new("mount")
            .args(["-t", "ext4", "-o", "loop,errors=remount-ro"])
            .arg(image)
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount -o loop {} {} failed: these tests need root and a loop device (CI runs as \
             root)",
            image.display(),
            at.display()
        );
        Mount(at.to_owned())
    }

    /// For an [`Mount::ext4`]: reports a filesystem error to the kernel (ext4's
    /// `trigger_fs_error`), which aborts the journal and remounts it read-only at once, open
    /// files and all, as a failing card or disk does. Writes then fail with EROFS.
    pub fn fail_read_only(&self) {
        let output = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(&self.0)
            .output()
            .expect("run findmnt");
        let source = String::from_utf8(output.stdout).unwrap();
        let device = Path::new(source.trim())
            .file_name()
            .unwrap_or_else(|| panic!("no device mounted at {}", self.0.display()))
            .to_owned();
        let knob = Path::new("/sys/fs/ext4")
            .join(device)
            .join("trigger_fs_error");
        std::fs::write(&knob, "test: made read-only by the test")
            .unwrap_or_else(|e| panic!("{}: {e}", knob.display()));
        let options = Command::new("findmnt")
            .args(["-n", "-o", "OPTIONS"])
            .arg(&self.0)
            .output()
            .expect("run findmnt");
        let options = String::from_utf8(options.stdout).unwrap();
        assert!(
            options
                .trim()
                .split(',')
                .any(|o| o == "ro" || o == "emergency_ro"),
            "{} is not read-only after the error: {options}",
            self.0.display()
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
