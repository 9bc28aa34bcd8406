//! `[local]` (optional): the agent's local HTTP endpoint; also read on its own by
//! [`load_local`], for `watchpost status`.

use std::path::Path;

use serde::Deserialize;

use super::files::OsFiles;
use super::table::RawTable;
use super::{Checker, check_text};
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
        let local = checker.local_section();
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
}

impl RawTable for RawLocal {}

impl<'a> Checker<'a> {
    /// `[local]`, defaults when it is missing.
    pub(super) fn local_section(&mut self) -> Option<LocalConfig> {
        let raw = self.optional_section::<RawLocal>("local")?;
        self.local(raw)
    }

    /// `listen`: a loopback address with a port, or `""` for no endpoint.
    fn local(&mut self, raw: RawLocal) -> Option<LocalConfig> {
        const KEY: &str = "local.listen";
        let Some(text) = raw.listen else {
            return Some(LocalConfig::default());
        };
        if text.is_empty() {
            return Some(LocalConfig { listen: None });
        }
        let message = match text.parse::<std::net::SocketAddr>() {
            Err(_) => format!(
                "`{text}` is not an address with a port: write it as `127.0.0.1:9750` (or \
                 \"\" to turn the local endpoint off)"
            ),
            Ok(addr) if !addr.ip().is_loopback() => format!(
                "`{text}` is not a loopback address: the local endpoint has no authentication \
                 and must only be reachable from this device; use 127.0.0.1 or [::1] (or \"\" \
                 to turn it off)"
            ),
            Ok(addr) if addr.port() == 0 => format!(
                "`{text}`: port 0 would be a different port at every start, where `watchpost \
                 status` cannot find it; choose a port such as 9750"
            ),
            Ok(addr) => return Some(LocalConfig { listen: Some(addr) }),
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
        let on = |addr: &str| Ok(Some(addr.parse::<std::net::SocketAddr>().unwrap()));
        // lines of [local], Ok(listen) or Err(`KEY: MESSAGE` start)
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
                    "local.listen: `0.0.0.0:9750` is not a loopback address: the local endpoint \
                     has no authentication",
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
                Err("local.port: unknown field `port`, expected `listen`"),
            ),
        ];
        for (lines, expected) in cases {
            let text = with("local", lines);
            match (parse(&text, file()), expected) {
                (Ok(config), Ok(listen)) => assert_eq!(config.local.listen, *listen, "{lines}"),
                (Err(_), Err(message)) => {
                    let p = problem(&text);
                    assert_eq!(p.line, Some(11), "{lines}: {p:?}");
                    assert!(
                        format!("{}: {}", p.key, p.message).starts_with(message),
                        "{lines}: {p:?}"
                    );
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
