//! `watchpost command sign`: a signed command message for one device, on stdout, ready for
//! `mosquitto_pub -s`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};

use crate::command::{
    self, Args as CommandArgs, Command, CommandName, DeviceId, Draft, MAX_SAFE_INTEGER, keys,
};
use crate::config::DEFAULT_TOPIC_PREFIX;
use crate::publish::Topics;

#[derive(Debug, Subcommand)]
pub(crate) enum CommandCommand {
    Sign(SignArgs),
}

#[derive(Debug, Args)]
#[command(
    about = "Sign a remote command for one device and print the message",
    after_help = "Prints one JSON line (watchpost.command/1) to publish, QoS 1 and not retained, \
                  on PREFIX/SITE/ID/cmd; the device answers on PREFIX/SITE/ID/cmd/result. \
                  Commands: ping, snapshot {\"camera\":NAME}, camera.enable {\"camera\":NAME}, \
                  camera.disable {\"camera\":NAME}, config.get, config.apply \
                  {\"toml\":TEXT,\"expected_version\":V} or {\"set\":{KEY:VALUE},\"expected_version\":V}, \
                  status.publish.\n\n\
                  Example:\n  \
                  watchpost command sign --key keys/central.key --device north/box-1 \\\n    \
                  --counter \"$(date +%s%3N)\" snapshot '{\"camera\":\"gate\"}' \\\n    \
                  | mosquitto_pub -h broker -q 1 -t watchpost/north/box-1/cmd -s"
)]
pub(crate) struct SignArgs {
    /// The private key (PKCS#8 PEM); its file name without extension is the key id.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,

    /// The device, as SITE/ID of its `[device]` section.
    #[arg(long, value_name = "SITE/ID", value_parser = DeviceId::parse)]
    device: DeviceId,

    /// This key's counter: above every counter it signed before (milliseconds since 1970 do).
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=MAX_SAFE_INTEGER)
    )]
    counter: u64,

    /// How long the command stays valid; devices refuse more than their window (5m unless
    /// configured otherwise).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    expires_in: Duration,

    /// The device's `[mqtt] topic_prefix`.
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_TOPIC_PREFIX)]
    topic_prefix: String,

    /// The command's id, echoed in its result [default: random].
    #[arg(long, value_name = "ID")]
    id: Option<String>,

    /// The command: ping, snapshot, camera.enable, camera.disable, config.get, config.apply,
    /// status.publish.
    #[arg(value_name = "COMMAND", value_parser = parse_command_name)]
    command: CommandName,

    /// Its arguments, a JSON object [default: {}].
    #[arg(value_name = "ARGS")]
    args: Option<String>,
}

fn parse_command_name(text: &str) -> Result<CommandName, String> {
    CommandName::parse(text).ok_or_else(|| {
        let known: Vec<&str> = CommandName::ALL.iter().map(|c| c.as_str()).collect();
        format!("unknown command (known: {})", known.join(", "))
    })
}

fn usage(message: String) -> anyhow::Result<ExitCode> {
    super::print_error(&anyhow::anyhow!(message));
    Ok(ExitCode::from(super::EXIT_USAGE))
}

pub(crate) fn run(command: CommandCommand) -> anyhow::Result<ExitCode> {
    let CommandCommand::Sign(args) = command;
    let name = args.command;
    let command_args = match CommandArgs::parse(args.args.as_deref().unwrap_or("{}")) {
        Ok(parsed) => parsed,
        Err(e) => return usage(format!("ARGS: {e}")),
    };
    if let Err(e) = Command::from_args(name, &command_args) {
        return usage(format!("ARGS of {name}: {e}"));
    }
    if args.topic_prefix.contains(['+', '#']) || args.topic_prefix.chars().any(char::is_control) {
        return usage(format!(
            "--topic-prefix `{}` must not contain `+`, `#` or control characters",
            args.topic_prefix
        ));
    }
    let identity = keys::read_private_key(&args.key)?;
    let device = args.device;
    let topic = Topics::new(&args.topic_prefix, &device.site, &device.device).command();
    let draft = Draft {
        id: args.id.unwrap_or_else(command::new_id),
        command: name.as_str().to_owned(),
        args: command_args,
        issued_at: SystemTime::now(),
        valid_for: args.expires_in,
        counter: args.counter,
    };
    match command::sign(&identity, &topic, &device, draft) {
        Ok(message) => {
            println!("{}", message.to_json());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => usage(e),
    }
}
