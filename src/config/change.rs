//! Changing the configuration file, the one way every change goes: `watchpost config set`, the
//! `watchpost camera ...` commands and the remote commands `config.apply`, `camera.enable` and
//! `camera.disable` ([`crate::command`]).
//!
//! [`apply`]: the file is read (a symbolic link is followed: the file it points to is
//! changed), the edit is made on its text (comments and layout kept, [`super::edit`]), the
//! result is checked by the real loader as the file will be (password files being written are
//! read where they are staged), the change is recorded in the audit log and the file written
//! atomically ([`super::audit::commit`]). Nothing is written unless all of that succeeds; an
//! edit that changes nothing writes nothing and records nothing.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::audit::{self, Change, CommitError, StagedFile};
use super::edit::{EditError, NewCamera};
use super::{Config, ConfigError, Files, OsFiles, Secret, TopicName};

/// One change to a configuration file.
#[derive(Debug)]
pub struct Request {
    /// For the audit log: `config set`, `camera add`, `remote config.apply`, ...
    pub command: String,
    pub file: PathBuf,
    /// The key of what the command changes (`cameras.gate-east`), for the audit entry when the
    /// file before the change was not valid (and cannot be compared as a whole).
    pub touched: String,
    /// Password files to put in place with the change (their paths are in the edited text).
    pub secrets: Vec<StagedFile>,
    /// Said in the audit log besides the differences (a password that changed cannot be seen in
    /// them).
    pub extra_changes: Vec<Change>,
    /// Who asked, for the audit log; the login name of this process's user when `None`.
    pub user: Option<String>,
}

impl Request {
    pub fn new(command: &str, file: &Path, touched: &str) -> Request {
        Request {
            command: command.to_owned(),
            file: file.to_owned(),
            touched: touched.to_owned(),
            secrets: Vec::new(),
            extra_changes: Vec::new(),
            user: None,
        }
    }
}

/// What [`apply`] did.
#[derive(Debug)]
pub struct Applied {
    /// The file, its symbolic links resolved.
    pub file: PathBuf,
    /// The configuration as the file now is.
    pub config: Config,
    /// What changed (empty: the edit changed nothing and nothing was written).
    pub changes: Vec<Change>,
    /// The file's text now.
    pub text: String,
}

/// Why a change was not made (or, for [`ChangeError::Commit`], not completely).
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The file cannot be read.
    #[error(transparent)]
    Read(ConfigError),
    /// The edit cannot be made on this file. `invalid_before` is the loader's verdict on the
    /// file as it is, when it is not valid (it explains a syntax error better than the edit).
    #[error("{}: {error}", file.display())]
    Edit {
        file: PathBuf,
        error: Box<EditError>,
        invalid_before: Option<Box<ConfigError>>,
    },
    /// The file would not be valid after the edit; it was not changed. `lines_moved`: the
    /// edit added or removed lines, so the line numbers are those of the file as it would have
    /// been.
    #[error("{error}")]
    Invalid {
        file: PathBuf,
        error: Box<ConfigError>,
        lines_moved: bool,
    },
    /// The file changed between [`prepare`] and [`commit`]: nothing was written.
    #[error("{}: changed by someone else meanwhile; nothing was written", file.display())]
    Changed { file: PathBuf },
    /// Writing failed: [`CommitError::Audit`] (nothing changed) or [`CommitError::Apply`]
    /// (audited, not all in place).
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// Reads `request.file`, applies `edit` to its text, checks the result with the loader, records
/// the change in the audit log and writes the file atomically (see the module documentation):
/// [`prepare`], then [`commit`].
///
/// # Errors
/// See [`ChangeError`].
pub fn apply(
    request: Request,
    edit: impl FnOnce(&str) -> Result<String, EditError>,
) -> Result<Applied, ChangeError> {
    let prepared = prepare(&request, edit)?;
    commit(request, prepared)
}

/// A change made and checked in memory, not written yet ([`prepare`]).
#[derive(Debug)]
pub struct Prepared {
    file: PathBuf,
    old_text: String,
    old: Result<Config, ConfigError>,
    new_text: String,
    /// The configuration as the file will be.
    pub new: Config,
}

/// The first half of [`apply`]: reads the file, makes the edit and checks the result, writing
/// nothing (to look at the new configuration before committing to it).
///
/// # Errors
/// [`ChangeError::Read`], [`ChangeError::Edit`] or [`ChangeError::Invalid`].
pub fn prepare(
    request: &Request,
    edit: impl FnOnce(&str) -> Result<String, EditError>,
) -> Result<Prepared, ChangeError> {
    let read_error = |source| {
        ChangeError::Read(ConfigError::Read {
            path: request.file.clone(),
            source,
        })
    };
    let file = std::fs::canonicalize(&request.file).map_err(read_error)?;
    let text = std::fs::read_to_string(&file).map_err(read_error)?;
    let old = super::parse(&text, &file);
    let new_text = match edit(&text) {
        Ok(new_text) => new_text,
        Err(error) => {
            return Err(ChangeError::Edit {
                file,
                error: Box::new(error),
                invalid_before: old.err().map(Box::new),
            });
        }
    };
    let new = parse_as_staged(&new_text, &request.secrets, &file).map_err(|error| {
        ChangeError::Invalid {
            file: file.clone(),
            error: Box::new(error),
            lines_moved: new_text.lines().count() != text.lines().count(),
        }
    })?;
    Ok(Prepared {
        file,
        old_text: text,
        old,
        new_text,
        new,
    })
}

/// The second half of [`apply`]: audits and writes a prepared change, unless the file changed
/// since it was prepared.
///
/// # Errors
/// [`ChangeError::Read`], [`ChangeError::Changed`] or [`ChangeError::Commit`].
pub fn commit(request: Request, prepared: Prepared) -> Result<Applied, ChangeError> {
    let Prepared {
        file,
        old_text: text,
        old,
        new_text,
        new,
    } = prepared;
    if new_text == text {
        return Ok(Applied {
            file,
            config: new,
            changes: Vec::new(),
            text,
        });
    }
    let now = std::fs::read_to_string(&file).map_err(|source| {
        ChangeError::Read(ConfigError::Read {
            path: file.clone(),
            source,
        })
    })?;
    if now != text {
        return Err(ChangeError::Changed { file });
    }
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
    let (mode, owner) = mode_and_owner(&file, 0o644);
    let staged = StagedFile::stage(&file, new_text.as_bytes(), mode, owner)?;
    let mut files = request.secrets;
    files.push(staged);
    let mut entry = audit::Entry::now(&request.command, &file, changes.clone());
    if let Some(user) = request.user {
        entry.user = user;
    }
    audit::commit(&audit::log_path(&new.device.state_dir), &entry, files)?;
    Ok(Applied {
        file,
        config: new,
        changes,
        text: new_text,
    })
}

/// Gets `camera` ready to be added by `request`, the way `watchpost camera add` and the page's
/// "Add a camera" both do it: `password` (taken out of the URL, asked, or typed in the page)
/// goes into a new file `NAME-password` beside the configuration ([`stage_password`]),
/// written with the change, which the camera's `password_file` names; the configuration never
/// holds it. The path of that file, or `None` for a name that makes no file name (the loader
/// refuses such a camera anyway, with its own message).
///
/// # Errors
/// The password file cannot be written ([`CommitError::Stage`]).
pub fn stage_camera_password(
    request: &mut Request,
    camera: &mut NewCamera,
    password: &Secret,
) -> Result<Option<PathBuf>, CommitError> {
    if TopicName::parse(&camera.name).is_err() {
        return Ok(None);
    }
    let config_file = std::fs::canonicalize(&request.file).unwrap_or(request.file.clone());
    let folder = config_file.parent().unwrap_or(Path::new("/"));
    let target = folder.join(format!("{}-password", camera.name));
    request
        .secrets
        .push(stage_password(&target, password.expose(), &config_file)?);
    camera.password_file = Some(target.to_string_lossy().into_owned());
    Ok(Some(target))
}

/// Stages `password` as a password file at `target`.
///
/// Readable by its owner only (0600), except where the configuration is shared with a service
/// group: run as root on a `config_file` whose group is not root's and which that group may
/// read (the package's `/etc/watchpost/watchpost.toml` is `root:watchpost` 0660, so that the
/// service, which runs as `watchpost`, can read and edit it), the password file gets the same
/// owner and group and 0640, or the service could not read its own passwords. A password file
/// is never more open than the configuration that names it (nor writable by the group).
///
/// # Errors
/// [`CommitError::Stage`].
pub fn stage_password(
    target: &Path,
    password: &str,
    config_file: &Path,
) -> Result<StagedFile, CommitError> {
    let (mode, owner) = password_mode_and_owner(config_file);
    StagedFile::stage(target, format!("{password}\n").as_bytes(), mode, owner)
}

/// The mode and owner of a new password file for `config_file` (see [`stage_password`]).
fn password_mode_and_owner(config_file: &Path) -> (u32, Option<(u32, u32)>) {
    if !is_root() {
        return (0o600, None);
    }
    match mode_and_owner(config_file, 0o600) {
        (mode, Some((uid, gid))) if gid != 0 => (0o600 | (mode & 0o040), Some((uid, gid))),
        (_, owner) => (0o600, owner),
    }
}

/// Whether this process runs as root (may give files away, may write anywhere).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() == 0 }
}

/// The permissions and owner of `file` if it exists (a new version keeps them), else `mode`
/// and no particular owner.
pub fn mode_and_owner(file: &Path, mode: u32) -> (u32, Option<(u32, u32)>) {
    match std::fs::metadata(file) {
        Ok(meta) => (meta.mode() & 0o7777, Some((meta.uid(), meta.gid()))),
        Err(_) => (mode, None),
    }
}

/// Checks `text` with the loader as the file `file` will be once written: the password files
/// being staged are read where they are staged.
///
/// # Errors
/// The loader's.
pub fn parse_as_staged(
    text: &str,
    staged: &[StagedFile],
    file: &Path,
) -> Result<Config, ConfigError> {
    super::parse_with_files(text, file, &AsStaged(staged))
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

impl Files for AsStaged<'_> {
    fn is_file(&self, path: &Path) -> std::io::Result<bool> {
        OsFiles.is_file(self.now(path))
    }

    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        OsFiles.read_to_string(self.now(path))
    }
}
