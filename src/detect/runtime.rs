//! Finding and loading the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic`: nothing is linked at build time and the library is opened
//! at run time. Left to itself, `ort` panics when `dlopen` fails; here the path is resolved
//! explicitly and every failure is a [`RuntimeError`] that names the file and what to do.
//!
//! Search order (the first that applies wins; an explicitly named file that is missing is an
//! error, never a silent fall-through):
//! 1. the path given by the caller (command line `--ort-lib`, later the config file);
//! 2. `$WATCHPOST_ORT_LIB`, then `$ORT_DYLIB_PATH` (ort's own variable);
//! 3. next to the executable: `libonnxruntime.so` in its folder or in `../lib/watchpost/`;
//! 4. where `deploy/setup.sh` installs it: [`SETUP_LIBRARY_DIR`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where `deploy/setup.sh` installs the library.
pub const SETUP_LIBRARY_DIR: &str = "/opt/watchpost/onnxruntime";
/// The file name looked for in folders.
pub const LIBRARY_FILE_NAME: &str = "libonnxruntime.so";
/// The oldest ONNX Runtime this build accepts (ort's API level).
pub const MINIMUM_VERSION: &str = "1.31";

/// Why the ONNX Runtime library could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    #[error("ONNX Runtime library {path} (from {origin}) does not exist")]
    NamedLibraryMissing { path: PathBuf, origin: &'static str },
    #[error(
        "ONNX Runtime library not found (looked in {}); run deploy/setup.sh or pass --ort-lib",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound { searched: Vec<PathBuf> },
    #[error("ONNX Runtime library {path} could not be loaded: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("{path} is not an ONNX Runtime library (no OrtGetApiBase)")]
    NotOnnxRuntime { path: PathBuf },
    #[error(
        "ONNX Runtime library {path} is version {version}; watchpost needs {MINIMUM_VERSION} or newer (deploy/setup.sh installs one)"
    )]
    TooOld { path: PathBuf, version: String },
    #[error(
        "ONNX Runtime library {path} was loaded, but its environment could not be created: {reason}"
    )]
    Environment { path: PathBuf, reason: String },
    #[error(
        "ONNX Runtime was already loaded from {loaded}; it cannot be switched to {requested} in the same process"
    )]
    AlreadyLoaded { loaded: PathBuf, requested: PathBuf },
}

/// A loaded ONNX Runtime: the library and one shared environment. Cheap to clone; sessions
/// ([`super::Detector`]) are created from it.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) environment: ort::environment::Environment,
    library_path: PathBuf,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("library_path", &self.library_path)
            .finish_non_exhaustive()
    }
}

/// The library can be loaded once per process; the result is kept.
static LOADED: OnceLock<Result<Runtime, RuntimeError>> = OnceLock::new();

impl Runtime {
    /// Loads the library (once per process) from `explicit` or the search order above.
    ///
    /// # Errors
    /// The library is missing, cannot be opened, is not ONNX Runtime, or is older than
    /// [`MINIMUM_VERSION`]. A second call asking for a different file than the one already
    /// loaded is [`RuntimeError::AlreadyLoaded`].
    pub fn load(explicit: Option<&Path>) -> Result<Runtime, RuntimeError> {
        let candidates = Candidates::from_environment(explicit);
        let path = resolve(&candidates, &|p: &Path| p.is_file())?;
        let loaded = LOADED.get_or_init(|| load_from(&path));
        match loaded {
            Ok(runtime) if same_file(&runtime.library_path, &path) => Ok(runtime.clone()),
            Ok(runtime) => Err(RuntimeError::AlreadyLoaded {
                loaded: runtime.library_path.clone(),
                requested: path,
            }),
            Err(e) => Err(e.clone()),
        }
    }

    /// The file the library was loaded from.
    pub fn library_path(&self) -> &Path {
        &self.library_path
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

fn load_from(path: &Path) -> Result<Runtime, RuntimeError> {
    use ort::LoadDynamicError as E;
    let builder = ort::init_from(path).map_err(|e| match e {
        E::Dlopen { error, .. } => RuntimeError::Load {
            path: path.to_owned(),
            reason: error.to_string(),
        },
        E::MissingApi { .. } => RuntimeError::NotOnnxRuntime {
            path: path.to_owned(),
        },
        E::InvalidVersionString => RuntimeError::NotOnnxRuntime {
            path: path.to_owned(),
        },
        E::BadVersion { version_str, .. } => RuntimeError::TooOld {
            path: path.to_owned(),
            version: version_str,
        },
    })?;
    let environment = builder
        .with_name("watchpost")
        .with_telemetry(false)
        .build()
        .map_err(|e| RuntimeError::Environment {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(Runtime {
        environment,
        library_path: path.to_owned(),
    })
}

/// The inputs of the search, gathered once so that [`resolve`] stays pure and testable.
#[derive(Debug, Default, Clone)]
struct Candidates {
    explicit: Option<PathBuf>,
    env_watchpost: Option<PathBuf>,
    env_ort: Option<PathBuf>,
    executable_dir: Option<PathBuf>,
}

impl Candidates {
    fn from_environment(explicit: Option<&Path>) -> Candidates {
        let env_path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Candidates {
            explicit: explicit.map(Path::to_owned),
            env_watchpost: env_path("WATCHPOST_ORT_LIB"),
            env_ort: env_path("ORT_DYLIB_PATH"),
            executable_dir: std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_owned)),
        }
    }
}

/// Picks the library file. `exists` is the file-system check (injected for tests).
fn resolve(
    candidates: &Candidates,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<PathBuf, RuntimeError> {
    let named = [
        (&candidates.explicit, "--ort-lib"),
        (&candidates.env_watchpost, "WATCHPOST_ORT_LIB"),
        (&candidates.env_ort, "ORT_DYLIB_PATH"),
    ];
    for (path, origin) in named {
        if let Some(path) = path {
            // A folder is accepted too: the library file inside it.
            let file = if path.is_dir() {
                path.join(LIBRARY_FILE_NAME)
            } else {
                path.clone()
            };
            return if exists(&file) {
                Ok(file)
            } else {
                Err(RuntimeError::NamedLibraryMissing { path: file, origin })
            };
        }
    }
    let mut searched = Vec::new();
    if let Some(dir) = &candidates.executable_dir {
        searched.push(dir.join(LIBRARY_FILE_NAME));
        searched.push(dir.join("../lib/watchpost").join(LIBRARY_FILE_NAME));
    }
    searched.push(Path::new(SETUP_LIBRARY_DIR).join(LIBRARY_FILE_NAME));
    match searched.iter().find(|p| exists(p)) {
        Some(found) => Ok(found.clone()),
        None => Err(RuntimeError::NotFound { searched }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_order() {
        let all = Candidates {
            explicit: Some("/x/explicit.so".into()),
            env_watchpost: Some("/x/env.so".into()),
            env_ort: Some("/x/ort.so".into()),
            executable_dir: Some("/bin".into()),
        };
        let setup = Path::new(SETUP_LIBRARY_DIR).join(LIBRARY_FILE_NAME);
        let everything = |_: &Path| true;
        let nothing = |_: &Path| false;
        let only_setup = |p: &Path| p == setup;
        type Exists<'a> = &'a dyn Fn(&Path) -> bool;
        let cases: Vec<(&str, Candidates, Exists, Result<PathBuf, &str>)> = vec![
            (
                "explicit first",
                all.clone(),
                &everything,
                Ok("/x/explicit.so".into()),
            ),
            (
                "env next",
                Candidates {
                    explicit: None,
                    ..all.clone()
                },
                &everything,
                Ok("/x/env.so".into()),
            ),
            (
                "ort's variable after ours",
                Candidates {
                    explicit: None,
                    env_watchpost: None,
                    ..all.clone()
                },
                &everything,
                Ok("/x/ort.so".into()),
            ),
            (
                "next to the binary",
                Candidates {
                    executable_dir: Some("/bin".into()),
                    ..Default::default()
                },
                &everything,
                Ok("/bin/libonnxruntime.so".into()),
            ),
            (
                "set-up location last",
                Candidates {
                    executable_dir: Some("/bin".into()),
                    ..Default::default()
                },
                &only_setup,
                Ok(setup.clone()),
            ),
            (
                "named but missing is an error",
                all.clone(),
                &nothing,
                Err("/x/explicit.so (from --ort-lib) does not exist"),
            ),
            (
                "nothing anywhere lists the places",
                Candidates {
                    executable_dir: Some("/bin".into()),
                    ..Default::default()
                },
                &nothing,
                Err(
                    "looked in /bin/libonnxruntime.so, /bin/../lib/watchpost/libonnxruntime.so, /opt/watchpost/onnxruntime/libonnxruntime.so",
                ),
            ),
        ];
        for (name, candidates, exists, expected) in cases {
            let got = resolve(&candidates, exists);
            match (got, expected) {
                (Ok(p), Ok(e)) => assert_eq!(p, e, "{name}"),
                (Err(err), Err(e)) => {
                    assert!(err.to_string().contains(e), "{name}: `{err}` lacks `{e}`")
                }
                (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
            }
        }
    }
}
