//! The allow-list: which commands exist and what arguments each takes.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::canonical::Args;
use crate::config::TopicName;

/// The most keys one `config.apply` with `set` may change.
pub const MAX_SET_KEYS: usize = 64;
/// The longest key of `config.apply` with `set` (bytes).
pub const MAX_SET_KEY_LEN: usize = 256;
/// The longest `expected_version` (bytes).
pub const MAX_VERSION_LEN: usize = 128;

/// A command the agent knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CommandName {
    Ping,
    Snapshot,
    CameraEnable,
    CameraDisable,
    ConfigGet,
    ConfigApply,
    StatusPublish,
}

impl CommandName {
    /// The allow-list, in documentation order.
    pub const ALL: [CommandName; 7] = [
        CommandName::Ping,
        CommandName::Snapshot,
        CommandName::CameraEnable,
        CommandName::CameraDisable,
        CommandName::ConfigGet,
        CommandName::ConfigApply,
        CommandName::StatusPublish,
    ];

    /// The name in messages and in `[commands] disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandName::Ping => "ping",
            CommandName::Snapshot => "snapshot",
            CommandName::CameraEnable => "camera.enable",
            CommandName::CameraDisable => "camera.disable",
            CommandName::ConfigGet => "config.get",
            CommandName::ConfigApply => "config.apply",
            CommandName::StatusPublish => "status.publish",
        }
    }

    /// The command of that name, if it is on the allow-list.
    pub fn parse(name: &str) -> Option<CommandName> {
        CommandName::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for CommandName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verified command with its typed arguments.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `{}`: answer `ok`.
    Ping,
    /// `{"camera": NAME}`: publish a picture of the camera.
    Snapshot { camera: TopicName },
    /// `{"camera": NAME}`.
    CameraEnable { camera: TopicName },
    /// `{"camera": NAME}`.
    CameraDisable { camera: TopicName },
    /// `{}`: the configuration in force (secrets as `***`) and its version.
    ConfigGet,
    /// `{"toml": TEXT, "expected_version": V}` or `{"set": {KEY: VALUE, ..},
    /// "expected_version": V}`: applied only if the configuration is still at version `V`.
    ConfigApply {
        change: ConfigChange,
        expected_version: String,
    },
    /// `{}`: publish `status` now.
    StatusPublish,
}

/// What `config.apply` changes.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigChange {
    /// A whole new configuration file.
    Toml(String),
    /// Keys as `watchpost config set` takes them (`cameras.gate.detect_fps`) and their new
    /// values.
    Set(BTreeMap<String, Value>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CameraArgs {
    camera: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyArgs {
    toml: Option<String>,
    set: Option<BTreeMap<String, Value>>,
    expected_version: String,
}

impl Command {
    /// The command's name.
    pub fn name(&self) -> CommandName {
        match self {
            Command::Ping => CommandName::Ping,
            Command::Snapshot { .. } => CommandName::Snapshot,
            Command::CameraEnable { .. } => CommandName::CameraEnable,
            Command::CameraDisable { .. } => CommandName::CameraDisable,
            Command::ConfigGet => CommandName::ConfigGet,
            Command::ConfigApply { .. } => CommandName::ConfigApply,
            Command::StatusPublish => CommandName::StatusPublish,
        }
    }

    /// Checks `args` for command `name`.
    ///
    /// # Errors
    /// What is wrong with the arguments, in words.
    pub fn from_args(name: CommandName, args: &Args) -> Result<Command, String> {
        let camera = || -> Result<TopicName, String> {
            let CameraArgs { camera } = typed(args)?;
            TopicName::parse(&camera).map_err(|e| format!("camera {e}"))
        };
        Ok(match name {
            CommandName::Ping => typed::<NoArgs>(args).map(|_| Command::Ping)?,
            CommandName::ConfigGet => typed::<NoArgs>(args).map(|_| Command::ConfigGet)?,
            CommandName::StatusPublish => typed::<NoArgs>(args).map(|_| Command::StatusPublish)?,
            CommandName::Snapshot => Command::Snapshot { camera: camera()? },
            CommandName::CameraEnable => Command::CameraEnable { camera: camera()? },
            CommandName::CameraDisable => Command::CameraDisable { camera: camera()? },
            CommandName::ConfigApply => config_apply(typed(args)?)?,
        })
    }
}

fn typed<T: DeserializeOwned>(args: &Args) -> Result<T, String> {
    serde_json::from_value(Value::Object(args.as_map().clone())).map_err(|e| e.to_string())
}

fn config_apply(args: ApplyArgs) -> Result<Command, String> {
    let ApplyArgs {
        toml,
        set,
        expected_version,
    } = args;
    if !(1..=MAX_VERSION_LEN).contains(&expected_version.len()) {
        return Err(format!(
            "`expected_version` must be 1 to {MAX_VERSION_LEN} bytes"
        ));
    }
    let change = match (toml, set) {
        (Some(toml), None) => ConfigChange::Toml(toml),
        (None, Some(set)) => {
            if set.is_empty() || set.len() > MAX_SET_KEYS {
                return Err(format!("`set` must change 1 to {MAX_SET_KEYS} keys"));
            }
            if let Some(key) = set
                .keys()
                .find(|k| k.is_empty() || k.len() > MAX_SET_KEY_LEN)
            {
                return Err(format!(
                    "a key of `set` must be 1 to {MAX_SET_KEY_LEN} bytes, got {}",
                    key.len()
                ));
            }
            ConfigChange::Set(set)
        }
        _ => return Err("give exactly one of `toml` and `set`".to_owned()),
    };
    Ok(Command::ConfigApply {
        change,
        expected_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in CommandName::ALL {
            assert_eq!(CommandName::parse(name.as_str()), Some(name));
        }
        assert_eq!(CommandName::parse("reboot"), None);
        assert_eq!(CommandName::parse("Ping"), None);
    }

    #[test]
    fn arguments_from_tables() {
        let camera = |s: &str| TopicName::parse(s).unwrap();
        // (command, args, expected command or the error's words)
        let cases: Vec<(CommandName, &str, Result<Command, &str>)> = vec![
            (CommandName::Ping, "{}", Ok(Command::Ping)),
            (CommandName::Ping, r#"{"x":1}"#, Err("unknown field `x`")),
            (CommandName::ConfigGet, "{}", Ok(Command::ConfigGet)),
            (CommandName::StatusPublish, "{}", Ok(Command::StatusPublish)),
            (
                CommandName::Snapshot,
                r#"{"camera":"gate"}"#,
                Ok(Command::Snapshot {
                    camera: camera("gate"),
                }),
            ),
            (CommandName::Snapshot, "{}", Err("missing field `camera`")),
            (
                CommandName::Snapshot,
                r#"{"camera":"a/b"}"#,
                Err("camera `a/b`"),
            ),
            (
                CommandName::Snapshot,
                r#"{"camera":7}"#,
                Err("invalid type"),
            ),
            (
                CommandName::CameraEnable,
                r#"{"camera":"yard"}"#,
                Ok(Command::CameraEnable {
                    camera: camera("yard"),
                }),
            ),
            (
                CommandName::CameraDisable,
                r#"{"camera":"yard"}"#,
                Ok(Command::CameraDisable {
                    camera: camera("yard"),
                }),
            ),
            (
                CommandName::ConfigApply,
                r#"{"toml":"[device]\n","expected_version":"v7"}"#,
                Ok(Command::ConfigApply {
                    change: ConfigChange::Toml("[device]\n".to_owned()),
                    expected_version: "v7".to_owned(),
                }),
            ),
            (
                CommandName::ConfigApply,
                r#"{"set":{"cameras.gate.detect_fps":2.5},"expected_version":"v7"}"#,
                Ok(Command::ConfigApply {
                    change: ConfigChange::Set(BTreeMap::from([(
                        "cameras.gate.detect_fps".to_owned(),
                        Value::from(2.5),
                    )])),
                    expected_version: "v7".to_owned(),
                }),
            ),
            (
                CommandName::ConfigApply,
                r#"{"toml":"","set":{"a":1},"expected_version":"v7"}"#,
                Err("exactly one"),
            ),
            (
                CommandName::ConfigApply,
                r#"{"expected_version":"v7"}"#,
                Err("exactly one"),
            ),
            (
                CommandName::ConfigApply,
                r#"{"set":{},"expected_version":"v7"}"#,
                Err("1 to 64 keys"),
            ),
            (
                CommandName::ConfigApply,
                r#"{"set":{"":1},"expected_version":"v7"}"#,
                Err("a key of `set`"),
            ),
            (
                CommandName::ConfigApply,
                r#"{"toml":""}"#,
                Err("missing field `expected_version`"),
            ),
            (
                CommandName::ConfigApply,
                r#"{"toml":"","expected_version":""}"#,
                Err("`expected_version` must be"),
            ),
        ];
        for (name, text, expected) in cases {
            let got = Command::from_args(name, &Args::parse(text).unwrap());
            match (&got, &expected) {
                (Ok(got), Ok(expected)) => {
                    assert_eq!(got, expected, "{name} {text}");
                    assert_eq!(got.name(), name);
                }
                (Err(error), Err(words)) => assert!(error.contains(words), "{text}: {error}"),
                _ => panic!("{name} {text}: {got:?}, expected {expected:?}"),
            }
        }
    }
}
