//! `[local]` (optional): the agent's local HTTP endpoint; also read on its own by
//! [`load_local`], for `watchpost status`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::files::OsFiles;
use super::table::RawTable;
use super::{Checker, check_text};
use crate::config::secret::read_password_in;
use crate::config::{CertKeyFiles, ConfigError, LocalConfig};
use crate::tls;

/// `name` as a host name (letters, digits, `-`, `_` and dots between labels), lower-cased and
/// without a final dot; `None` when it is not one.
fn host_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (name.len() <= 253 && name.split('.').all(label_ok)).then(|| name.to_ascii_lowercase())
}

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
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    allowed_hosts: Option<Vec<String>>,
}

impl RawTable for RawLocal {}

/// Whether the `[local]` checks read the password file and the TLS certificate and key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LocalPassword {
    /// The whole configuration, for the agent.
    Read,
    /// [`load_local`]: only that the keys are set matters (the client reads the certificate
    /// itself).
    PathOnly,
}

impl<'a> Checker<'a> {
    /// `[local]`, defaults when it is missing.
    pub(super) fn local_section(&mut self, password: LocalPassword) -> Option<LocalConfig> {
        let raw = self.optional_section::<RawLocal>("local")?;
        self.local(raw, password)
    }

    /// `listen`: a loopback address with a port, any address with a port when `password_file`
    /// is set, or `""` for no endpoint; `password_file` read (with `password`);
    /// `metrics_without_login`; `tls_cert` and `tls_key` (read and checked with `password`);
    /// and `allowed_hosts`.
    fn local(&mut self, raw: RawLocal, password: LocalPassword) -> Option<LocalConfig> {
        const FILE_KEY: &str = "local.password_file";
        let tls = self.local_tls(raw.tls_cert, raw.tls_key, password);
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
        let allowed_hosts = self.allowed_hosts(raw.allowed_hosts.unwrap_or_default());
        let listen = self.listen(raw.listen, password_file.is_some())?;
        Some(LocalConfig {
            listen,
            password_file,
            password,
            metrics_without_login: raw.metrics_without_login.unwrap_or(false),
            tls: tls?,
            allowed_hosts: allowed_hosts?,
        })
    }

    /// `tls_cert` and `tls_key`: both or neither; with [`LocalPassword::Read`], a PEM
    /// certificate chain and the private key of its first certificate.
    fn local_tls(
        &mut self,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        read: LocalPassword,
    ) -> Option<Option<CertKeyFiles>> {
        const CERT_KEY: &str = "local.tls_cert";
        const KEY_KEY: &str = "local.tls_key";
        let Some((cert, key)) =
            self.both_or_neither("local", ["tls_cert", "tls_key"], cert, key)?
        else {
            return Some(None);
        };
        let (cert, key) = (self.path(CERT_KEY, cert), self.path(KEY_KEY, key));
        let files = CertKeyFiles {
            cert: cert?,
            key: key?,
        };
        if read == LocalPassword::PathOnly {
            return Some(Some(files));
        }
        let chain = self
            .files
            .read_to_string(&files.cert)
            .map_err(|e| format!("cannot read `{}`: {e}", files.cert.display()))
            .and_then(|text| {
                tls::certificates_from_pem(text.as_bytes())
                    .map_err(|reason| format!("`{}`: {reason}", files.cert.display()))
            });
        // The key's content never goes into a message: only its path and what is wrong.
        let private_key = self
            .files
            .read_to_string(&files.key)
            .map_err(|e| format!("cannot read `{}`: {e}", files.key.display()))
            .and_then(|text| {
                tls::private_key_from_pem(text.as_bytes())
                    .map_err(|reason| format!("`{}`: {reason}", files.key.display()))
            });
        match (chain, private_key) {
            (Ok(chain), Ok(private_key)) => match tls::http_server_config(chain, private_key) {
                Ok(_) => Some(Some(files)),
                Err(e) => {
                    self.problem(
                        KEY_KEY,
                        format!(
                            "`{}` {e} in `{}`",
                            files.key.display(),
                            files.cert.display()
                        ),
                    );
                    None
                }
            },
            (chain, private_key) => {
                if let Err(message) = chain {
                    self.problem(CERT_KEY, message);
                }
                if let Err(message) = private_key {
                    self.problem(KEY_KEY, message);
                }
                None
            }
        }
    }

    /// `allowed_hosts`: host names, each without scheme, port or path; lower-cased, a final
    /// dot dropped.
    fn allowed_hosts(&mut self, names: Vec<String>) -> Option<Vec<String>> {
        let mut allowed = Vec::with_capacity(names.len());
        let mut ok = true;
        for (i, name) in names.into_iter().enumerate() {
            match host_name(&name) {
                Some(name) => allowed.push(name),
                None => {
                    ok = false;
                    self.problem(
                        format!("local.allowed_hosts[{i}]"),
                        format!(
                            "`{name}` is not a host name: give the name alone, without scheme, \
                             port or path (as \"post-7.lan\")"
                        ),
                    );
                }
            }
        }
        ok.then_some(allowed)
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
    fn local_tls_and_allowed_hosts_from_table() {
        use crate::config::load::files::MemoryFiles;
        use crate::config::load::tests::parse_in;
        let pair = || {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec!["post-7.lan".to_owned()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let ((cert, key), (_, other_key)) = (pair(), pair());
        let files = MemoryFiles::new(&[
            ("/etc/watchpost/page.pem", &cert),
            ("/etc/watchpost/page.key", &key),
            ("/etc/watchpost/other.key", &other_key),
            ("/etc/watchpost/garbage.pem", "not PEM\n"),
        ]);
        let files_of = |cert: &str, key: &str| {
            Some(CertKeyFiles {
                cert: cert.into(),
                key: key.into(),
            })
        };
        // lines of [local], Ok((tls, allowed_hosts)) or Err(`KEY: MESSAGE` start)
        type Expected = Result<(Option<CertKeyFiles>, Vec<&'static str>), &'static str>;
        let cases: Vec<(&str, Expected)> = vec![
            ("", Ok((None, vec![]))),
            (
                "tls_cert = \"page.pem\"\ntls_key = \"page.key\"",
                Ok((
                    files_of("/etc/watchpost/page.pem", "/etc/watchpost/page.key"),
                    vec![],
                )),
            ),
            (
                "tls_cert = \"page.pem\"",
                Err("local.tls_cert: `tls_cert` is set but `tls_key` is not: set both"),
            ),
            (
                "tls_key = \"page.key\"",
                Err("local.tls_key: `tls_key` is set but `tls_cert` is not: set both"),
            ),
            (
                "tls_cert = \"page.pem\"\ntls_key = \"other.key\"",
                Err(
                    "local.tls_key: `/etc/watchpost/other.key` is not the private key of the \
                     certificate in `/etc/watchpost/page.pem`",
                ),
            ),
            (
                "tls_cert = \"missing.pem\"\ntls_key = \"page.key\"",
                Err("local.tls_cert: cannot read `/etc/watchpost/missing.pem`: No such file"),
            ),
            (
                "tls_cert = \"garbage.pem\"\ntls_key = \"page.key\"",
                Err("local.tls_cert: `/etc/watchpost/garbage.pem`: no PEM certificate in it"),
            ),
            (
                "tls_cert = \"page.pem\"\ntls_key = \"page.pem\"",
                Err("local.tls_key: `/etc/watchpost/page.pem`: no PEM private key in it"),
            ),
            (
                "tls_cert = \"page.pem\"\ntls_key = \"\"",
                Err("local.tls_key: must not be empty"),
            ),
            (
                "allowed_hosts = [\"Post-7.LAN.\", \"watchpost_1.site\"]",
                Ok((None, vec!["post-7.lan", "watchpost_1.site"])),
            ),
            (
                "allowed_hosts = [\"post-7.lan:9750\"]",
                Err("local.allowed_hosts[0]: `post-7.lan:9750` is not a host name"),
            ),
            (
                "allowed_hosts = [\"ok\", \"https://post-7.lan\"]",
                Err("local.allowed_hosts[1]: `https://post-7.lan` is not a host name"),
            ),
            (
                "allowed_hosts = [\"\"]",
                Err("local.allowed_hosts[0]: `` is not a host name"),
            ),
            (
                "allowed_hosts = [\"a..b\"]",
                Err("local.allowed_hosts[0]: `a..b` is not a host name"),
            ),
            (
                "allowed_hosts = \"post-7.lan\"",
                Err("local.allowed_hosts: invalid type: string"),
            ),
        ];
        for (lines, expected) in cases {
            let text = with("local", lines);
            match (parse_in(&text, &files), expected) {
                (Ok(config), Ok((tls, hosts))) => {
                    assert_eq!(config.local.tls, tls, "{lines}");
                    assert_eq!(config.local.allowed_hosts, hosts, "{lines}");
                }
                (Err(e), Err(message)) => {
                    let problems = e.problems();
                    assert_eq!(problems.len(), 1, "{lines}: {problems:?}");
                    let p = &problems[0];
                    assert!(
                        format!("{}: {}", p.key, p.message).starts_with(message),
                        "{lines}: {p:?}"
                    );
                    assert!(p.line.is_some(), "{lines}: {p:?}");
                    assert!(!p.message.contains("PRIVATE KEY"), "{p:?}");
                }
                (got, expected) => panic!("{lines}: {got:?}, expected {expected:?}"),
            }
        }
        // `load_local` takes the paths without reading them (the client reads the certificate).
        let text = with(
            "local",
            "tls_cert = \"missing.pem\"\ntls_key = \"missing.key\"",
        );
        assert_eq!(
            parse_local(&text, file()).unwrap().tls,
            files_of("/etc/watchpost/missing.pem", "/etc/watchpost/missing.key")
        );
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
