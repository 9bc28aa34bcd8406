//! `[local]` (optional): the agent's local HTTP endpoint; also read on its own by
//! [`load_local`], for `watchpost status`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::files::OsFiles;
use super::table::RawTable;
use super::{Checker, check_text};
use crate::config::secret::read_password_in;
use crate::config::{ConfigError, LocalConfig};

/// Reads only the `[local]` table of the configuration file at `path`, checked as
/// [`load`](super::load) checks it; the rest of the file is not looked at. For `watchpost
/// status`, which needs only the endpoint's address and may run as a user who cannot read the
/// password files the rest of the configuration names.
///
/// # Errors
/// [`ConfigError::Read`] when the file cannot be read; [`ConfigError::Invalid`] when it is not
/// TOML or its `[local]` table is refused.
pub fn load_local(path: &Path) -> Result<LocalConfig, ConfigError> {
    parse_local(&super::read(path)?, path)
}

/// [`load_local`] on text.
fn parse_local(text: &str, path: &Path) -> Result<LocalConfig, ConfigError> {
    check_text(text, path, &|_| None, &OsFiles, |mut checker| {
        let local = checker.local_section(LocalPassword::PathOnly);
        match local {
            Some(local) if checker.problems.is_empty() => Ok(local),
            _ => Err(checker.problems),
        }
    })
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocal {
    listen: Option<String>,
    password_file: Option<PathBuf>,
    metrics_without_login: Option<bool>,
}

impl RawTable for RawLocal {}

/// Whether the `[local]` checks read the password file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LocalPassword {
    /// The whole configuration, for the agent.
    Read,
    /// [`load_local`]: only that the key is set matters.
    PathOnly,
}

impl<'a> Checker<'a> {
    /// `[local]`, defaults when it is missing.
    pub(super) fn local_section(&mut self, password: LocalPassword) -> Option<LocalConfig> {
        let raw = self.optional_section::<RawLocal>("local")?;
        self.local(raw, password)
    }

    /// `listen`: a loopback address with a port, any address with a port when `password_file`
    /// is set, or `""` for no endpoint; `password_file` read (with `password`); and
    /// `metrics_without_login`.
    fn local(&mut self, raw: RawLocal, password: LocalPassword) -> Option<LocalConfig> {
        const FILE_KEY: &str = "local.password_file";
        let password_file = match raw.password_file {
            Some(file) => Some(self.path(FILE_KEY, file)?),
            None => None,
        };
        let password = match (&password_file, password) {
            (Some(file), LocalPassword::Read) => match read_password_in(self.files, file) {
                Ok(secret) => Some(secret),
                Err(e) => {
                    self.problem(FILE_KEY, e.to_string());
                    return None;
                }
            },
            _ => None,
        };
        let listen = self.listen(raw.listen, password_file.is_some())?;
        Some(LocalConfig {
            listen,
            password_file,
            password,
            metrics_without_login: raw.metrics_without_login.unwrap_or(false),
        })
    }

    /// `listen`; `Some(None)`: no endpoint.
    fn listen(
        &mut self,
        text: Option<String>,
        with_password: bool,
    ) -> Option<Option<std::net::SocketAddr>> {
        const KEY: &str = "local.listen";
        let Some(text) = text else {
            return Some(Some(LocalConfig::DEFAULT_LISTEN));
        };
        if text.is_empty() {
            return Some(None);
        }
        let message = match text.parse::<std::net::SocketAddr>() {
            Err(_) => format!(
                "`{text}` is not an address with a port: write it as `127.0.0.1:9750` (or \
                 \"\" to turn the local endpoint off)"
            ),
            Ok(addr) if !addr.ip().is_loopback() && !with_password => format!(
                "`{text}` is not a loopback address: to open the local endpoint to the network, \
                 set [local] password_file (the password a technician logs in with); otherwise \
                 use 127.0.0.1 or [::1] (or \"\" to turn it off)"
            ),
            Ok(addr) if addr.port() == 0 => format!(
                "`{text}`: port 0 would be a different port at every start, where `watchpost \
                 status` cannot find it; choose a port such as 9750"
            ),
            Ok(addr) => return Some(Some(addr)),
        };
        self.problem(KEY, message);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;
    use crate::config::load::tests::{file, parse, problem, with};

    #[test]
    fn local_from_table() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("page-pw"), "page-s3cret\n").unwrap();
        std::fs::write(dir.path().join("empty"), "").unwrap();
        let on = |addr: &str| Ok(Some(addr.parse::<std::net::SocketAddr>().unwrap()));
        // lines of [local] (`{DIR}`: a folder with `page-pw` and `empty`), Ok(listen) or
        // Err(`KEY: MESSAGE` start)
        type Expected = Result<Option<std::net::SocketAddr>, &'static str>;
        let cases: &[(&str, Expected)] = &[
            ("", on("127.0.0.1:9750")),
            ("listen = \"127.0.0.1:9750\"", on("127.0.0.1:9750")),
            ("listen = \"127.0.0.1:1\"", on("127.0.0.1:1")),
            ("listen = \"127.0.0.53:65535\"", on("127.0.0.53:65535")),
            ("listen = \"[::1]:9750\"", on("[::1]:9750")),
            ("listen = \"\"", Ok(None)),
            (
                "listen = \"0.0.0.0:9750\"",
                Err(
                    "local.listen: `0.0.0.0:9750` is not a loopback address: to open the local \
                     endpoint to the network, set [local] password_file",
                ),
            ),
            (
                "listen = \"192.168.1.10:9750\"",
                Err("local.listen: `192.168.1.10:9750` is not a loopback address"),
            ),
            (
                "listen = \"[::]:9750\"",
                Err("local.listen: `[::]:9750` is not a loopback address"),
            ),
            (
                "listen = \"0.0.0.0:9750\"\npassword_file = \"{DIR}/page-pw\"",
                on("0.0.0.0:9750"),
            ),
            (
                "listen = \"192.168.1.10:9750\"\npassword_file = \"{DIR}/page-pw\"",
                on("192.168.1.10:9750"),
            ),
            (
                "listen = \"[::]:9750\"\npassword_file = \"{DIR}/page-pw\"\n\
                 metrics_without_login = true",
                on("[::]:9750"),
            ),
            ("password_file = \"{DIR}/page-pw\"", on("127.0.0.1:9750")),
            (
                "listen = \"0.0.0.0:0\"\npassword_file = \"{DIR}/page-pw\"",
                Err("local.listen: `0.0.0.0:0`: port 0"),
            ),
            (
                "password_file = \"{DIR}/missing\"\nlisten = \"0.0.0.0:9750\"",
                Err("local.password_file: cannot read `"),
            ),
            (
                "password_file = \"{DIR}/empty\"",
                Err("local.password_file: the first line of `"),
            ),
            (
                "password_file = \"\"",
                Err("local.password_file: must not be empty"),
            ),
            (
                "metrics_without_login = \"yes\"",
                Err(
                    "local.metrics_without_login: invalid type: string \"yes\", expected a boolean",
                ),
            ),
            (
                "listen = \"127.0.0.1:0\"",
                Err("local.listen: `127.0.0.1:0`: port 0 would be a different port at every start"),
            ),
            (
                "listen = \"127.0.0.1\"",
                Err(
                    "local.listen: `127.0.0.1` is not an address with a port: write it as \
                     `127.0.0.1:9750`",
                ),
            ),
            (
                "listen = \"localhost:9750\"",
                Err("local.listen: `localhost:9750` is not an address with a port"),
            ),
            (
                "listen = \"::1:9750\"",
                Err("local.listen: `::1:9750` is not an address with a port"),
            ),
            (
                "listen = 9750",
                Err("local.listen: invalid type: integer `9750`, expected a string"),
            ),
            (
                "port = 9750",
                Err("local.port: unknown field `port`, expected one of `listen`, `password_file`"),
            ),
        ];
        for (lines, expected) in cases {
            let lines = lines.replace("{DIR}", &dir.path().to_string_lossy());
            let text = with("local", &lines);
            match (parse(&text, file()), expected) {
                (Ok(config), Ok(listen)) => {
                    assert_eq!(config.local.listen, *listen, "{lines}");
                    let with_file = lines.contains("password_file");
                    assert_eq!(config.local.password_file.is_some(), with_file, "{lines}");
                    assert_eq!(
                        config.local.password.as_ref().map(|p| p.expose()),
                        with_file.then_some("page-s3cret"),
                        "{lines}"
                    );
                    assert_eq!(
                        config.local.metrics_without_login,
                        lines.contains("metrics_without_login = true"),
                        "{lines}"
                    );
                    // `load_local` takes the same, without reading the password.
                    let local = parse_local(&text, file()).unwrap();
                    assert_eq!(
                        (local.listen, local.password_file.as_ref(), local.password),
                        (*listen, config.local.password_file.as_ref(), None),
                        "{lines}"
                    );
                }
                (Err(_), Err(message)) => {
                    let p = problem(&text);
                    assert!(
                        format!("{}: {}", p.key, p.message).starts_with(message),
                        "{lines}: {p:?}"
                    );
                    assert!(!p.message.contains("page-s3cret"), "{p:?}");
                    assert_eq!(p.line, Some(11), "{lines}: {p:?}");
                    let read = ["cannot read `", "the first line of `"];
                    if read.iter().any(|start| p.message.starts_with(start)) {
                        // `load_local` does not read the password file.
                        assert!(parse_local(&text, file()).is_ok(), "{lines}");
                        continue;
                    }
                    // `load_local` reports the same problem at the same line.
                    let Err(ConfigError::Invalid { problems, .. }) = parse_local(&text, file())
                    else {
                        panic!("{lines}: parse_local accepted it");
                    };
                    assert_eq!(problems, vec![p], "{lines}");
                }
                (Ok(_), Err(e)) => panic!("{lines}: accepted, expected {e}"),
                (Err(e), Ok(_)) => panic!("{lines}: {e}"),
            }
        }
    }

    #[test]
    fn load_local_looks_at_local_only() {
        // The rest of the file may be wrong or missing: only [local] is read.
        let text = "[local]\nlisten = \"127.0.0.1:9999\"\n[mqtt]\nurl = \"tcp://nope\"\n";
        assert_eq!(
            parse_local(text, file()).unwrap().listen,
            Some("127.0.0.1:9999".parse().unwrap())
        );
        assert_eq!(parse_local("", file()).unwrap(), LocalConfig::default());
        let Err(ConfigError::Invalid { problems, .. }) = parse_local("[local\n", file()) else {
            panic!("not TOML, accepted");
        };
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(1));
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        assert!(matches!(
            load_local(&missing),
            Err(ConfigError::Read { path, .. }) if path == missing
        ));
    }
}
