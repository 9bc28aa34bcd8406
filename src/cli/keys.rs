//! `watchpost keys generate`: the Ed25519 key pair that signs remote commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::command::KeyError;
use crate::command::keys;

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
#[command(
    about = "Make an Ed25519 key pair for signing remote commands",
    after_help = "Writes DIR/NAME.key (the private key, PKCS#8 PEM, mode 0600: keep it on the \
                  central system) and DIR/NAME.pub (the public key, SPKI PEM: install it on each \
                  device, e.g. as /etc/watchpost/keys/NAME.pub). NAME is the key's id in signed \
                  commands. An existing key is never overwritten. `openssl genpkey -algorithm \
                  ed25519` makes keys of the same kind.\n\n\
                  Example:\n  watchpost keys generate --out ./keys --name central"
)]
pub(crate) struct GenerateArgs {
    /// The folder for the two files (made, mode 0700, when missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// The key's name and id: 1 to 64 letters, digits, `-` and `_`.
    #[arg(long, value_name = "NAME")]
    name: String,
}

pub(crate) fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    let KeysCommand::Generate(args) = command;
    match keys::generate(&args.out, &args.name) {
        Ok(files) => {
            println!(
                "wrote {} (private: keep it on the central system, never on a device)",
                files.private.display()
            );
            println!(
                "wrote {} (public: install it on each device that takes commands signed with it)",
                files.public.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ KeyError::Name { .. }) => {
            super::print_error(&e.into());
            Ok(ExitCode::from(super::EXIT_USAGE))
        }
        Err(e) => Err(e.into()),
    }
}
