//! The audit log of configuration changes, and making a change so that it is always audited.
//!
//! Every change made through `watchpost config init/set` and `watchpost camera ...` appends one
//! JSON object on its own line to `{device.state_dir}/audit.log` ([`log_path`]; the folder is
//! created when missing):
//!
//! ```json
//! {"at":"2025-03-01T02:14:07Z","user":"tech","host":"post-07","command":"config set",
//!  "file":"/etc/watchpost/watchpost.toml",
//!  "changes":[{"key":"cameras.gate-east.detect_fps","old":5.0,"new":2.5}]}
//! ```
//!
//! `user` is the login name (`$SUDO_USER`, else `$USER` or `$LOGNAME`, else the numeric uid),
//! `changes` is what differs between the configuration before and after ([`changes`]), key by
//! key, with cameras, zones and lines keyed by name. Passwords are `"***"`: the trees compared
//! are rendered by [`super::render()`], which never shows one.
//!
//! ## Order of a change ([`commit`])
//! 1. The new files (the configuration, password files) are written and fsync'd beside their
//!    targets under temporary names ([`StagedFile`]), before anything else happens.
//! 2. The audit entry is appended (`O_APPEND`) and fsync'd. If that fails, nothing is changed
//!    and the command fails: an unaudited change is what the log exists to prevent.
//! 3. The staged files are renamed into place (password files first, the configuration last)
//!    and their folders fsync'd.
//!
//! A crash between 2 and 3 leaves an audit line for a change that did not (or only partly)
//! happen, never a change without its line. Read the log with that in mind: a line says a
//! change was *made or attempted*; the file says what is in force.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Map, Value};

use super::Config;

/// The audit log of the configuration whose state folder is `state_dir`.
pub fn log_path(state_dir: &Path) -> PathBuf {
    state_dir.join("audit.log")
}

/// One changed key: `old`/`new` are `null` when the key (or camera, zone, line) is not there
/// on that side.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Change {
    pub key: String,
    pub old: Value,
    pub new: Value,
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Entry {
    /// RFC 3339, UTC.
    pub at: String,
    pub user: String,
    pub host: String,
    /// `config set`, `camera add`, ...
    pub command: String,
    /// The configuration file changed.
    pub file: String,
    pub changes: Vec<Change>,
}

impl Entry {
    /// An entry made now, by the user running this process, on this host.
    pub fn now(command: &str, file: &Path, changes: Vec<Change>) -> Entry {
        Entry {
            at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            user: login_name(),
            host: host_name(),
            command: command.to_owned(),
            file: file.display().to_string(),
            changes,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What changed.

/// The configuration as a JSON tree: [`super::render()`] read back, with the `[[cameras]]`,
/// `[[cameras.zones]]` and `[[cameras.lines]]` lists turned into objects keyed by name.
pub fn tree(config: &Config) -> Value {
    let text = super::render(config);
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        // render() writes valid TOML (tested); an empty tree is the safe answer otherwise.
        Err(_) => return Value::Object(Map::new()),
    };
    keyed_by_name(serde_json::to_value(table).unwrap_or_default())
}

/// A configuration file's text as a JSON tree, as written (no defaults), for a file the loader
/// refuses: lists keyed by name as in [`tree`], every `password` value `"***"`, user and
/// password taken out of URLs. `None` when the text is not TOML.
pub fn document_tree(text: &str) -> Option<Value> {
    let table: toml::Table = text.parse().ok()?;
    let tree = keyed_by_name(serde_json::to_value(table).ok()?);
    Some(mask(tree, None))
}

/// The changes between the configuration before (`None`: there was none, or it was not valid)
/// and after.
pub fn changes(old: Option<&Config>, new: &Config) -> Vec<Change> {
    let old = old.map_or_else(|| Value::Object(Map::new()), tree);
    diff(&old, &tree(new))
}

/// Key by key differences between two trees: objects are compared key by key (keys in order),
/// anything else as a whole. The key of a change is the dotted path (`mqtt.url`,
/// `cameras.gate-east`, `cameras.gate-east.zones.road.points`).
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk(&mut Vec::new(), Some(old), Some(new), &mut changes);
    changes
}

/// [`diff`] limited to the subtree at `path` (dotted names, as in [`diff`]'s keys).
pub fn diff_at(path: &str, old: &Value, new: &Value) -> Vec<Change> {
    fn at<'v>(tree: &'v Value, path: &str) -> Option<&'v Value> {
        path.split('.')
            .try_fold(tree, |here, key| here.as_object()?.get(key))
    }
    let mut prefix: Vec<String> = path.split('.').map(str::to_owned).collect();
    let mut changes = Vec::new();
    walk(&mut prefix, at(old, path), at(new, path), &mut changes);
    changes
}

fn walk(path: &mut Vec<String>, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Change>) {
    // A list keyed by name (cameras, zones, lines) that is only on one side is compared with an
    // empty one: the change is then about each item (`cameras.x.zones.road`).
    let empty = Value::Object(Map::new());
    let (old, new) = match (old, new) {
        (None, Some(b)) if is_keyed_list(b) => (Some(&empty), new),
        (Some(a), None) if is_keyed_list(a) => (old, Some(&empty)),
        _ => (old, new),
    };
    if let (Some(Value::Object(a)), Some(Value::Object(b))) = (old, new) {
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for key in keys {
            path.push(key.clone());
            walk(path, a.get(key), b.get(key), out);
            path.pop();
        }
    } else if old != new {
        out.push(Change {
            key: path.join("."),
            old: old.cloned().unwrap_or(Value::Null),
            new: new.cloned().unwrap_or(Value::Null),
        });
    }
}

/// An object made by [`keyed_by_name`] from a list: every value an object with its key as
/// `name`.
fn is_keyed_list(value: &Value) -> bool {
    value.as_object().is_some_and(|map| {
        !map.is_empty()
            && map
                .iter()
                .all(|(k, v)| v.get("name").and_then(Value::as_str) == Some(k.as_str()))
    })
}

/// Lists of objects that all have a string `name` become objects keyed by it (recursively).
fn keyed_by_name(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, keyed_by_name(v)))
                .collect(),
        ),
        Value::Array(items)
            if !items.is_empty()
                && items
                    .iter()
                    .all(|item| item.get("name").is_some_and(Value::is_string)) =>
        {
            Value::Object(
                items
                    .into_iter()
                    .map(|item| {
                        let name = item
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        (name, keyed_by_name(item))
                    })
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(keyed_by_name).collect()),
        other => other,
    }
}

/// Passwords as `"***"`, URLs without their password.
fn mask(value: Value, key: Option<&str>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let masked = mask(v, Some(&k));
                    (k, masked)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| mask(v, key)).collect()),
        _ if key == Some("password") => Value::String("***".to_owned()),
        Value::String(s) => Value::String(super::url::redact_url(&s)),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Who and where.

/// The person making the change: `$SUDO_USER` (the login behind `sudo`), else `$USER`, else
/// `$LOGNAME`, else the numeric user id.
pub fn login_name() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty())
        // SAFETY: getuid cannot fail and touches no memory of ours.
        .unwrap_or_else(|| unsafe { libc::getuid() }.to_string())
}

/// This machine's host name (`unknown` if it cannot be read).
pub fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if rc != 0 {
        return "unknown".to_owned();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Making the change.

/// Why a change was not (or not completely) made.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A new file could not be prepared; nothing was changed.
    #[error("nothing was changed: cannot write {}", path.display())]
    Stage {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The audit entry could not be written; nothing was changed.
    #[error("nothing was changed: cannot write the audit log {}", path.display())]
    Audit {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The entry is in the audit log, but a file could not be put in place.
    #[error(
        "cannot put {} in place (the audit log already records the change)",
        path.display()
    )]
    Apply {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A new version of `target`, written and fsync'd beside it under a temporary name; put in
/// place by [`commit`], removed if dropped before.
#[derive(Debug)]
pub struct StagedFile {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagedFile {
    /// Writes `contents` to a new temporary file in `target`'s folder with permissions `mode`
    /// (exactly, whatever the umask) and, when `owner` is given and differs, that owner
    /// (`uid`, `gid`). Only root can give a file away: any other user keeps the file and gives
    /// it `gid` only (a group it is in; the agent, `watchpost:watchpost`, rewriting the
    /// package's `root:watchpost` configuration gives `watchpost:watchpost`, still readable by
    /// the service and by root).
    ///
    /// # Errors
    /// [`CommitError::Stage`].
    pub fn stage(
        target: &Path,
        contents: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<StagedFile, CommitError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let folder = parent(target);
        let name = target
            .file_name()
            .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
        let temp = folder.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let stage_error = |source| CommitError::Stage {
            path: target.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
            .map_err(stage_error)?;
        let staged = StagedFile {
            temp,
            target: target.to_owned(),
            committed: false,
        };
        let written = (|| {
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            if let Some((uid, gid)) = owner {
                let meta = file.metadata()?;
                let uid = (meta.uid() != uid && super::change::is_root()).then_some(uid);
                let gid = (meta.gid() != gid).then_some(gid);
                if uid.is_some() || gid.is_some() {
                    std::os::unix::fs::fchown(&file, uid, gid)?;
                }
            }
            file.write_all(contents)?;
            file.sync_all()
        })();
        written.map_err(stage_error)?;
        Ok(staged)
    }

    /// Where the new contents are until [`commit`].
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Where they go.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Puts the new contents in place without an audit entry (for the agent's own state
    /// files), and fsyncs the folder.
    ///
    /// # Errors
    /// The rename or the folder's fsync failed.
    pub fn put_in_place(mut self) -> std::io::Result<()> {
        std::fs::rename(&self.temp, &self.target)?;
        self.committed = true;
        sync_folder(parent(&self.target))
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Appends `entry` to the audit log `log` (creating its folder), then puts `files` in place in
/// their order. See the module documentation for the order and what a crash leaves.
///
/// # Errors
/// [`CommitError::Audit`] (nothing changed) or [`CommitError::Apply`] (audited, not all in
/// place).
pub fn commit(log: &Path, entry: &Entry, files: Vec<StagedFile>) -> Result<(), CommitError> {
    append(log, entry).map_err(|source| CommitError::Audit {
        path: log.to_owned(),
        source,
    })?;
    let mut folders = BTreeSet::new();
    for mut file in files {
        std::fs::rename(&file.temp, &file.target).map_err(|source| CommitError::Apply {
            path: file.target.clone(),
            source,
        })?;
        file.committed = true;
        folders.insert(parent(&file.target).to_owned());
    }
    for folder in folders {
        sync_folder(&folder).map_err(|source| CommitError::Apply {
            path: folder.clone(),
            source,
        })?;
    }
    Ok(())
}

/// One line, appended with `O_APPEND` in one write, then fsync'd (and the folder too when the
/// log is new).
fn append(log: &Path, entry: &Entry) -> std::io::Result<()> {
    append_line(log, entry)
}

/// Appends `record` as one JSON line to the audit log `log`, as configuration changes are
/// (the remote commands' records go there too, so the log is one trail).
///
/// # Errors
/// The folder cannot be created, or the line cannot be written and fsync'd.
pub fn append_line<T: serde::Serialize>(log: &Path, record: &T) -> std::io::Result<()> {
    let folder = parent(log);
    std::fs::create_dir_all(folder)?;
    let existed = log.exists();
    let mut line = serde_json::to_string(record).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(log)?;
    if !existed {
        give_to_folder_owner(&file, folder)?;
    }
    file.write_all(line.as_bytes())?;
    file.sync_all()?;
    if !existed {
        sync_folder(folder)?;
    }
    Ok(())
}

/// A log that root starts in a folder it does not own (`sudo watchpost config set` before the
/// service's first change, in the service's `/var/lib/watchpost`) goes to the folder's owner,
/// or the service could never append to its own audit log.
fn give_to_folder_owner(file: &File, folder: &Path) -> std::io::Result<()> {
    let owner = std::fs::metadata(folder)?;
    if super::change::is_root() && owner.uid() != 0 {
        std::os::unix::fs::fchown(file, Some(owner.uid()), Some(owner.gid()))?;
    }
    Ok(())
}

fn sync_folder(folder: &Path) -> std::io::Result<()> {
    File::open(folder)?.sync_all()
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn change(key: &str, old: Value, new: Value) -> Change {
        Change {
            key: key.to_owned(),
            old,
            new,
        }
    }

    #[test]
    fn differences_key_by_key() {
        let camera = json!({"name": "gate-east", "url": "rtsp://a/", "detect_fps": 5.0});
        let cases = [
            (json!({}), json!({}), vec![]),
            (json!({"a": {"b": 1}}), json!({"a": {"b": 1}}), vec![]),
            (
                json!({"a": {"b": 1, "c": "x"}}),
                json!({"a": {"b": 2, "c": "x"}}),
                vec![change("a.b", json!(1), json!(2))],
            ),
            // A value that appears or goes.
            (
                json!({"mqtt": {"url": "u"}}),
                json!({"mqtt": {"url": "u", "username": "wp"}}),
                vec![change("mqtt.username", Value::Null, json!("wp"))],
            ),
            (
                json!({"mqtt": {"url": "u", "username": "wp"}}),
                json!({"mqtt": {"url": "u"}}),
                vec![change("mqtt.username", json!("wp"), Value::Null)],
            ),
            // Arrays are values.
            (
                json!({"e": {"kinds": ["a", "b"]}}),
                json!({"e": {"kinds": ["a"]}}),
                vec![change("e.kinds", json!(["a", "b"]), json!(["a"]))],
            ),
            // A camera added is one change; keys in order.
            (
                json!({"cameras": {"gate-east": camera}, "z": 1}),
                json!({"cameras": {"gate-east": camera, "gate-west": {"name": "gate-west"}}, "a": 0, "z": 1}),
                vec![
                    change("a", Value::Null, json!(0)),
                    change(
                        "cameras.gate-west",
                        Value::Null,
                        json!({"name": "gate-west"}),
                    ),
                ],
            ),
            // A first zone is a change of that zone, not of the (missing) list.
            (
                json!({"cameras": {"gate-east": camera}}),
                json!({"cameras": {"gate-east": {"name": "gate-east", "url": "rtsp://a/",
                    "detect_fps": 5.0, "zones": {"road": {"name": "road", "points": [[0, 0]]}}}}}),
                vec![change(
                    "cameras.gate-east.zones.road",
                    Value::Null,
                    json!({"name": "road", "points": [[0, 0]]}),
                )],
            ),
        ];
        for (old, new, expected) in cases {
            assert_eq!(diff(&old, &new), expected, "{old} → {new}");
        }
        assert_eq!(
            diff_at(
                "a.b",
                &json!({"a": {"b": 1, "c": 1}}),
                &json!({"a": {"b": 2, "c": 2}})
            ),
            vec![change("a.b", json!(1), json!(2))]
        );
        assert_eq!(
            diff_at("a.x", &json!({}), &json!({"a": {"x": {"y": 1}}})),
            vec![change("a.x", Value::Null, json!({"y": 1}))]
        );
    }

    const BEFORE: &str = r#"
[device]
site = "bihac-north"
id = "post-07"
[mqtt]
url = "mqtt://127.0.0.1:1883"
username = "wp"
password = "hunter2"
[[cameras]]
name = "gate-east"
url = "rtsp://admin:s3cret@10.0.0.21/stream1"
"#;

    #[test]
    fn changes_between_configurations_hide_passwords() {
        let file = Path::new("/etc/watchpost/watchpost.toml");
        let before = super::super::parse(BEFORE, file).unwrap();
        let text = BEFORE.replace("bihac-north", "rafah").replace(
            "password = \"hunter2\"",
            "password = \"other\"\n[outbox]\nmax_size_mb = 512",
        ) + "detect_fps = 2.5\n";
        let after = super::super::parse(&text, file).unwrap();
        assert_eq!(
            changes(Some(&before), &after),
            vec![
                change("cameras.gate-east.detect_fps", json!(5.0), json!(2.5)),
                change("device.site", json!("bihac-north"), json!("rafah")),
                change("outbox.max_size_mb", json!(256), json!(512)),
            ]
        );
        // From nothing: everything, passwords as ***.
        let all = changes(None, &before);
        let line = serde_json::to_string(&all).unwrap();
        assert!(
            !line.contains("hunter2") && !line.contains("s3cret"),
            "{line}"
        );
        assert!(
            all.iter()
                .any(|c| c.key == "mqtt" && c.new["password"] == "***")
        );
        assert!(all.iter().any(|c| c.key == "cameras.gate-east"
            && c.new["password"] == "***"
            && c.new["url"] == "rtsp://10.0.0.21/stream1"));
    }

    #[test]
    fn documents_as_written_hide_passwords() {
        let tree = document_tree(BEFORE).unwrap();
        assert_eq!(tree["mqtt"]["password"], "***");
        assert_eq!(tree["mqtt"]["username"], "wp");
        assert_eq!(
            tree["cameras"]["gate-east"]["url"],
            "rtsp://admin:***@10.0.0.21/stream1"
        );
        assert!(document_tree("[a").is_none());
    }

    #[test]
    fn commit_appends_then_puts_files_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("watchpost.toml");
        std::fs::write(&target, "old").unwrap();
        let log = dir.path().join("state/audit.log");
        let entry = Entry::now("config set", &target, vec![change("a", json!(1), json!(2))]);

        let staged = StagedFile::stage(&target, b"new", 0o640, None).unwrap();
        let secret = dir.path().join("pw");
        let staged_secret = StagedFile::stage(&secret, b"pw\n", 0o600, None).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert!(staged.temp_path().exists());
        commit(&log, &entry, vec![staged_secret, staged]).unwrap();
        commit(&log, &entry, Vec::new()).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&target), 0o640);
        assert_eq!(mode(&secret), 0o600);
        let lines: Vec<Value> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["command"], "config set");
        assert_eq!(lines[0]["changes"][0]["key"], "a");
        assert!(lines[0]["at"].as_str().unwrap().ends_with('Z'));
        // No temporary file is left.
        let names: BTreeSet<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["pw", "state", "watchpost.toml"].map(String::from).into()
        );
    }

    #[test]
    fn no_audit_no_change() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("watchpost.toml");
        std::fs::write(&target, "old").unwrap();
        // The log's folder is a file: the entry cannot be written.
        std::fs::write(dir.path().join("state"), "").unwrap();
        let log = dir.path().join("state/audit.log");
        let staged = StagedFile::stage(&target, b"new", 0o644, None).unwrap();
        let temp = staged.temp_path().to_owned();
        let entry = Entry::now("config set", &target, Vec::new());
        let err = commit(&log, &entry, vec![staged]).unwrap_err();
        assert!(matches!(err, CommitError::Audit { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert!(!temp.exists(), "the staged file is left behind");
    }

    /// Run as root (CI), the log root starts in the service's folder is the service's; run as
    /// anyone else, the log is theirs (they cannot give it away).
    #[test]
    fn a_new_log_belongs_to_its_folders_owner() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let me = std::fs::metadata(&state).unwrap();
        let folder_owner = if super::super::change::is_root() {
            std::os::unix::fs::chown(&state, Some(4321), Some(4322)).unwrap();
            (4321, 4322)
        } else {
            (me.uid(), me.gid())
        };
        let log = log_path(&state);
        let entry = Entry::now("config set", &log, Vec::new());
        append(&log, &entry).unwrap();
        let meta = std::fs::metadata(&log).unwrap();
        assert_eq!((meta.uid(), meta.gid()), folder_owner);
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        // Appending again leaves the owner as it is.
        append(&log, &entry).unwrap();
        let meta = std::fs::metadata(&log).unwrap();
        assert_eq!((meta.uid(), meta.gid()), folder_owner);
        assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);
    }
}
