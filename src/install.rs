//! Where the files installed beside the binary are: the bundled models and the demo clip.
//!
//! One search order for all of them, so a package, a `cargo install` and a source checkout
//! find the same things: next to the executable (`../share/watchpost/{kind}`, for a relocated
//! install), the system location (`/usr/share/watchpost/{kind}`), then the source tree this
//! binary was built from. Each caller puts its own environment override first.

use std::path::{Path, PathBuf};

/// The folders that may hold installed files of `kind` (`models`, `demo`), in search order;
/// `in_source_tree` is the same folder relative to the source tree (`models`, `tests/data`).
pub fn data_dirs(kind: &str, in_source_tree: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_owned))
    {
        dirs.push(exe_dir.join("../share/watchpost").join(kind));
    }
    dirs.push(Path::new("/usr/share/watchpost").join(kind));
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(in_source_tree));
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_tree_comes_last_and_the_system_location_before_it() {
        let dirs = data_dirs("models", "models");
        let n = dirs.len();
        assert!(n >= 2);
        assert_eq!(dirs[n - 2], Path::new("/usr/share/watchpost/models"));
        assert_eq!(
            dirs[n - 1],
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
        );
        assert!(dirs[n - 1].join("nanodet-m-416.toml").is_file());
    }
}
