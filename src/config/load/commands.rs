//! `[commands]` (optional): remote commands from the central system, taken only when signed
//! by a trusted key (see [`crate::command`]).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use serde::Deserialize;

use super::Checker;
use super::table::RawTable;
use crate::command::CommandName;
use crate::command::keys::key_id;
use crate::config::CommandsConfig;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCommands {
    enabled: Option<bool>,
    trusted_keys: Option<Vec<PathBuf>>,
    disabled: Option<Vec<String>>,
}

impl RawTable for RawCommands {}

impl<'a> Checker<'a> {
    /// `[commands]`, off when it is missing.
    pub(super) fn commands_section(&mut self) -> Option<CommandsConfig> {
        let raw = self.optional_section::<RawCommands>("commands")?;
        self.commands(raw)
    }

    fn commands(&mut self, raw: RawCommands) -> Option<CommandsConfig> {
        let mut all_good = true;
        let mut trusted_keys = Vec::new();
        // Key id → the key that has it: two files with one stem would be one key id.
        let mut ids = HashMap::new();
        for (i, file) in raw.trusted_keys.unwrap_or_default().into_iter().enumerate() {
            let key = format!("commands.trusted_keys[{i}]");
            let Some(path) = self.existing_file(&key, file) else {
                all_good = false;
                continue;
            };
            match key_id(&path) {
                Err(e) => {
                    self.problem(
                        key,
                        format!("{e}: the file's name without `.pub` is the key's id"),
                    );
                    all_good = false;
                }
                Ok(id) => match ids.insert(id.clone(), key.clone()) {
                    Some(first) => {
                        self.problem(
                            key,
                            format!(
                                "key id `{id}` is already {first}'s: each trusted key needs a \
                                 file name of its own"
                            ),
                        );
                        all_good = false;
                    }
                    None => trusted_keys.push(path),
                },
            }
        }
        let mut disabled = BTreeSet::new();
        for (i, name) in raw.disabled.unwrap_or_default().iter().enumerate() {
            match CommandName::parse(name) {
                Some(command) => {
                    disabled.insert(command);
                }
                None => {
                    let known: Vec<&str> = CommandName::ALL.iter().map(|c| c.as_str()).collect();
                    self.problem(
                        format!("commands.disabled[{i}]"),
                        format!("`{name}` is not a command: one of {}", known.join(", ")),
                    );
                    all_good = false;
                }
            }
        }
        all_good.then(|| CommandsConfig {
            enabled: raw.enabled.unwrap_or(false),
            trusted_keys,
            disabled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::files::MemoryFiles;
    use super::super::tests::{MINIMAL, parse_in};
    use super::*;

    fn with(lines: &str) -> String {
        format!("{MINIMAL}[commands]\n{lines}\n")
    }

    #[test]
    fn commands_from_tables() {
        let files = MemoryFiles::new(&[
            ("/etc/watchpost/keys/central.pub", ""),
            ("/etc/watchpost/keys/backup.pub", ""),
            ("/other/central.pub", ""),
        ]);
        let keys = |names: &[&str]| -> Vec<PathBuf> { names.iter().map(PathBuf::from).collect() };
        let cases: &[(&str, Result<CommandsConfig, &str>)] = &[
            ("", Ok(CommandsConfig::default())),
            (
                "enabled = true",
                Ok(CommandsConfig {
                    enabled: true,
                    ..Default::default()
                }),
            ),
            (
                "enabled = true\ntrusted_keys = [\"/etc/watchpost/keys/central.pub\", \"/etc/watchpost/keys/backup.pub\"]\ndisabled = [\"config.apply\", \"snapshot\"]",
                Ok(CommandsConfig {
                    enabled: true,
                    trusted_keys: keys(&[
                        "/etc/watchpost/keys/central.pub",
                        "/etc/watchpost/keys/backup.pub",
                    ]),
                    disabled: [CommandName::ConfigApply, CommandName::Snapshot].into(),
                }),
            ),
            (
                "trusted_keys = [\"/etc/watchpost/keys/none.pub\"]",
                Err("commands.trusted_keys[0]: cannot use `/etc/watchpost/keys/none.pub`"),
            ),
            (
                "trusted_keys = [\"/etc/watchpost/keys/central.pub\", \"/other/central.pub\"]",
                Err(
                    "commands.trusted_keys[1]: key id `central` is already commands.trusted_keys[0]'s",
                ),
            ),
            (
                "disabled = [\"reboot\"]",
                Err(
                    "commands.disabled[0]: `reboot` is not a command: one of ping, snapshot, camera.enable, camera.disable, config.get, config.apply, status.publish",
                ),
            ),
            ("enabled = \"yes\"", Err("commands.enabled: invalid type")),
            (
                "keys = []",
                Err("commands.keys: unknown field `keys`, expected one of `enabled`"),
            ),
        ];
        for (lines, expected) in cases {
            let text = with(lines);
            match (parse_in(&text, &files), expected) {
                (Ok(config), Ok(commands)) => assert_eq!(&config.commands, commands, "{lines}"),
                (Err(e), Err(message)) => {
                    let found: Vec<String> = e
                        .problems()
                        .iter()
                        .map(|p| format!("{}: {}", p.key, p.message))
                        .collect();
                    assert!(
                        found.iter().any(|f| f.starts_with(message)),
                        "{lines}: {found:?}"
                    );
                }
                (Ok(_), Err(e)) => panic!("{lines}: accepted, expected {e}"),
                (Err(e), Ok(_)) => panic!("{lines}: {e}"),
            }
        }
    }
}
