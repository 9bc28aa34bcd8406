//! Changing the configuration file: shared by `config set`, `config init` and the `camera`
//! commands. Each edit is made on the text (comments and layout kept), checked by the real
//! loader, recorded in the audit log and written atomically.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use crate::config::change::{self, ChangeError};
use crate::config::edit::EditError;

use super::report::report_config_error;

pub(super) use crate::config::change::{
    Applied, Request as EditRequest, mode_and_owner, parse_as_staged, stage_camera_password,
    stage_password,
};

/// Makes a change the one way ([`change::apply`]), printing what went wrong: problems with the
/// file, the edit or the result give `Err(exit code)` (2); a failure to write is the `anyhow`
/// error (exit 1).
pub(super) fn apply_edit(
    request: EditRequest,
    edit: impl FnOnce(&str) -> Result<String, EditError>,
) -> anyhow::Result<Result<Applied, ExitCode>> {
    let usage = || ExitCode::from(super::EXIT_USAGE);
    let error = match change::apply(request, edit) {
        Ok(applied) => {
            if !applied.changes.is_empty() {
                tell_agent(&applied);
            }
            return Ok(Ok(applied));
        }
        Err(error) => error,
    };
    match error {
        ChangeError::Read(e) => Ok(Err(report_config_error(&e))),
        ChangeError::Edit {
            file,
            error,
            invalid_before,
        } => {
            match (*error, invalid_before) {
                (EditError::Syntax(_), Some(before)) => {
                    report_config_error(&before);
                }
                (EditError::Syntax(message), None) => {
                    super::print_error(&anyhow::anyhow!("{}: {message}", file.display()));
                }
                (error, _) => {
                    super::print_error(&anyhow::anyhow!("{}: {error}", file.display()));
                }
            }
            Ok(Err(usage()))
        }
        ChangeError::Invalid {
            file,
            error,
            lines_moved,
        } => {
            report_config_error(&error);
            let moved = if lines_moved {
                " (the lines above are those of the file as it would have been)"
            } else {
                ""
            };
            eprintln!("watchpost: {} was not changed{moved}", file.display());
            Ok(Err(usage()))
        }
        e @ ChangeError::Changed { .. } => {
            super::print_error(&anyhow::anyhow!(e));
            Ok(Err(usage()))
        }
        ChangeError::Commit(e) => Err(e.into()),
    }
}

/// How long the running agent may take to apply a change (pipelines of changed cameras stop
/// first).
const RELOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Asks the agent running on this box (its local endpoint, `[local] listen`) to re-read the
/// file it runs from, and says what it did (on stderr, after the change itself), so that a
/// change takes effect without a restart. Says nothing when no agent answers.
fn tell_agent(applied: &Applied) {
    let Some(endpoint) = crate::local::client::Endpoint::of(&applied.config.local) else {
        return;
    };
    match crate::local::client::request_reload(endpoint, RELOAD_TIMEOUT) {
        Ok(answer) if answer.applied() => {
            if answer.live.is_empty() && answer.at_restart.is_empty() {
                eprintln!("the running agent re-read the file: nothing to change");
            }
            for line in &answer.live {
                eprintln!("applied live: {line}");
            }
            for line in &answer.at_restart {
                eprintln!("waits for a restart: {line}");
            }
        }
        Ok(answer) => {
            eprintln!(
                "the running agent did not apply it ({}); it applies at the next reload or \
                 restart",
                answer.outcome
            );
            for line in &answer.problems {
                eprintln!("  {line}");
            }
        }
        // No agent running here: it reads the file when it starts.
        Err(crate::local::client::FetchError::NotAnswering { .. }) => {}
        Err(e) => eprintln!(
            "could not tell the running agent ({e}): `systemctl reload watchpost` applies the \
             change"
        ),
    }
}

/// `PATH (mode 0600)`: where a password was written, and who may read it.
pub(super) fn password_file_note(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(meta) => format!("{} (mode {:04o})", path.display(), meta.mode() & 0o7777),
        Err(_) => path.display().to_string(),
    }
}
