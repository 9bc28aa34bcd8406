//! Changing the configuration file: shared by `config set`, `config init` and the `camera`
//! commands. Each edit is made on the text (comments and layout kept), checked by the real
//! loader, recorded in the audit log and written atomically.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::audit::{self, Change, StagedFile};
use crate::config::edit::EditError;
use crate::config::{self, Config, ConfigError};

use super::report::report_config_error;

/// One change to a configuration file, for [`apply_edit`].
pub(super) struct EditRequest {
    /// For the audit log: `config set`, `camera add`, ...
    pub command: &'static str,
    pub file: PathBuf,
    /// The key of what the command changes (`cameras.gate-east`), for the audit entry when the
    /// file before the change was not valid (and cannot be compared as a whole).
    pub touched: String,
    /// Password files to put in place with the change (their paths are in the edited text).
    pub secrets: Vec<StagedFile>,
    /// Said in the audit log besides the differences (a password that changed cannot be seen in
    /// them).
    pub extra_changes: Vec<Change>,
}

impl EditRequest {
    pub fn new(command: &'static str, file: &Path, touched: &str) -> EditRequest {
        EditRequest {
            command,
            file: file.to_owned(),
            touched: touched.to_owned(),
            secrets: Vec::new(),
            extra_changes: Vec::new(),
        }
    }
}

/// What [`apply_edit`] did.
pub(super) struct Applied {
    /// The file, its symbolic links resolved.
    pub file: PathBuf,
    pub config: Config,
    pub changes: Vec<Change>,
}

/// Reads the file, applies `edit` to its text, checks the result with the loader, records the
/// change in the audit log and writes the file atomically. Problems with the file, the edit or
/// the result are printed here and give `Err(exit code)` (2); a failure to write is the
/// `anyhow` error (exit 1).
pub(super) fn apply_edit(
    request: EditRequest,
    edit: impl FnOnce(&str) -> Result<String, EditError>,
) -> anyhow::Result<Result<Applied, ExitCode>> {
    let usage = || ExitCode::from(super::EXIT_USAGE);
    let read_error = |source| {
        report_config_error(&ConfigError::Read {
            path: request.file.clone(),
            source,
        })
    };
    // Edit the file a link points to, not the link.
    let file = match std::fs::canonicalize(&request.file) {
        Ok(file) => file,
        Err(source) => return Ok(Err(read_error(source))),
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(source) => return Ok(Err(read_error(source))),
    };
    let old = config::parse(&text, &file);
    let new_text = match edit(&text) {
        Ok(new_text) => new_text,
        Err(EditError::Syntax(message)) => {
            match &old {
                Err(e) => report_config_error(e),
                Ok(_) => {
                    super::print_error(&anyhow::anyhow!("{}: {message}", file.display()));
                    usage()
                }
            };
            return Ok(Err(usage()));
        }
        Err(e) => {
            super::print_error(&anyhow::anyhow!("{}: {e}", file.display()));
            return Ok(Err(usage()));
        }
    };
    let new = match parse_as_staged(&new_text, &request.secrets, &file) {
        Ok(new) => new,
        Err(e) => {
            report_config_error(&e);
            let moved = if new_text.lines().count() == text.lines().count() {
                ""
            } else {
                " (the lines above are those of the file as it would have been)"
            };
            eprintln!("watchpost: {} was not changed{moved}", file.display());
            return Ok(Err(usage()));
        }
    };
    let mut changes = match &old {
        Ok(old) => audit::changes(Some(old), &new),
        Err(_) => {
            let before = audit::document_tree(&text).unwrap_or_default();
            audit::diff_at(&request.touched, &before, &audit::tree(&new))
        }
    };
    for extra in request.extra_changes {
        if !changes.iter().any(|c| c.key == extra.key) {
            changes.push(extra);
        }
    }
    if new_text == text {
        return Ok(Ok(Applied {
            file,
            config: new,
            changes: Vec::new(),
        }));
    }
    let (mode, owner) = mode_and_owner(&file, 0o644);
    let staged = StagedFile::stage(&file, new_text.as_bytes(), mode, owner)?;
    let mut files = request.secrets;
    files.push(staged);
    let entry = audit::Entry::now(request.command, &file, changes.clone());
    audit::commit(&audit::log_path(&new.device.state_dir), &entry, files)?;
    Ok(Ok(Applied {
        file,
        config: new,
        changes,
    }))
}

/// The permissions and owner of `file` if it exists (a new version keeps them), else `mode`
/// and no particular owner.
pub(super) fn mode_and_owner(file: &Path, mode: u32) -> (u32, Option<(u32, u32)>) {
    match std::fs::metadata(file) {
        Ok(meta) => (meta.mode() & 0o7777, Some((meta.uid(), meta.gid()))),
        Err(_) => (mode, None),
    }
}

/// Stages `password` as a password file at `target`.
///
/// Readable by its owner only (0600), except where the configuration is shared with a service
/// group: run as root on a `config_file` whose group is not root's and which that group may
/// read (the package's `/etc/watchpost/watchpost.toml` is `root:watchpost` 0640, so that the
/// service, which runs as `watchpost`, can read it), the password file gets the same owner and
/// group and 0640, or the service could not read its own passwords. A password file is never
/// more open than the configuration that names it.
pub(super) fn stage_password(
    target: &Path,
    password: &str,
    config_file: &Path,
) -> anyhow::Result<StagedFile> {
    let (mode, owner) = password_mode_and_owner(config_file);
    Ok(StagedFile::stage(
        target,
        format!("{password}\n").as_bytes(),
        mode,
        owner,
    )?)
}

/// The mode and owner of a new password file for `config_file` (see [`stage_password`]).
fn password_mode_and_owner(config_file: &Path) -> (u32, Option<(u32, u32)>) {
    if !super::is_root() {
        return (0o600, None);
    }
    match mode_and_owner(config_file, 0o600) {
        (mode, Some((uid, gid))) if gid != 0 => (0o600 | (mode & 0o040), Some((uid, gid))),
        (_, owner) => (0o600, owner),
    }
}

/// `PATH (mode 0600)`: where a password was written, and who may read it.
pub(super) fn password_file_note(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(meta) => format!("{} (mode {:04o})", path.display(), meta.mode() & 0o7777),
        Err(_) => path.display().to_string(),
    }
}

/// Checks `text` with the loader as the file `file` will be once written: the password files
/// being staged are read where they are staged.
pub(super) fn parse_as_staged(
    text: &str,
    staged: &[StagedFile],
    file: &Path,
) -> Result<Config, ConfigError> {
    config::parse_with_files(text, file, &AsStaged(staged))
}

/// The files as they will be once the staged ones are in place.
struct AsStaged<'a>(&'a [StagedFile]);

impl AsStaged<'_> {
    /// Where what will be at `path` is now.
    fn now<'p>(&'p self, path: &'p Path) -> &'p Path {
        self.0
            .iter()
            .find(|staged| staged.target() == path)
            .map_or(path, StagedFile::temp_path)
    }
}

impl config::Files for AsStaged<'_> {
    fn is_file(&self, path: &Path) -> std::io::Result<bool> {
        config::OsFiles.is_file(self.now(path))
    }

    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        config::OsFiles.read_to_string(self.now(path))
    }
}
