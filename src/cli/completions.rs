//! `watchpost completions SHELL` and `watchpost man`: shell completions and manual pages,
//! generated from the command line's own definition ([`super::command`]), so they never drift
//! from it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

#[derive(Debug, Args)]
#[command(
    about = "Print shell completions for watchpost",
    after_help = "Example:\n  \
                  watchpost completions bash > /etc/bash_completion.d/watchpost\n  \
                  watchpost completions zsh > /usr/local/share/zsh/site-functions/_watchpost\n  \
                  watchpost completions fish > ~/.config/fish/completions/watchpost.fish"
)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
#[command(
    about = "Print the manual page (roff), or write one per command into a folder",
    after_help = "Example:\n  \
                  watchpost man | man -l -\n  \
                  watchpost man --dir /usr/share/man/man1"
)]
pub(crate) struct ManArgs {
    /// Write `watchpost.1` and a page per command (`watchpost-run.1`, ...) into DIR instead
    /// of printing `watchpost.1`.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub(crate) fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut text = Vec::new();
    write_completions(args.shell, &mut text);
    Ok(print(&text))
}

fn write_completions(shell: Shell, out: &mut dyn Write) {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut super::command(), "watchpost", out);
}

pub(crate) fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).with_context(|| format!("--dir {}", dir.display()))?;
        clap_mangen::generate_to(super::command(), dir)
            .with_context(|| format!("writing the manual pages into {}", dir.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut roff = Vec::new();
    clap_mangen::Man::new(super::command())
        .render(&mut roff)
        .context("rendering the manual page")?;
    Ok(print(&roff))
}

/// Writes `bytes` on stdout; a closed pipe (`| head`) ends the command quietly.
fn print(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(super::EXIT_FAILURE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command and subcommand, with its path (`watchpost config validate`).
    fn all_commands() -> Vec<(String, clap::Command)> {
        fn walk(path: String, command: &clap::Command, found: &mut Vec<(String, clap::Command)>) {
            found.push((path.clone(), command.clone()));
            for sub in command.get_subcommands() {
                // clap's own `help` subcommand.
                if sub.get_name() == "help" {
                    continue;
                }
                walk(format!("{path} {}", sub.get_name()), sub, found);
            }
        }
        let mut command = super::super::command();
        command.build();
        let mut found = Vec::new();
        walk("watchpost".to_owned(), &command, &mut found);
        found
    }

    #[test]
    fn every_command_has_an_example_in_its_help() {
        let commands = all_commands();
        for name in [
            "watchpost",
            "watchpost run",
            "watchpost demo",
            "watchpost detect",
            "watchpost config validate",
            "watchpost status",
            "watchpost doctor",
            "watchpost completions",
            "watchpost man",
        ] {
            assert!(
                commands.iter().any(|(path, _)| path == name),
                "{name} is missing from the tree"
            );
        }
        let mut lacking = Vec::new();
        for (path, mut command) in commands {
            let help = command.render_long_help().to_string();
            if !help.contains("Example") {
                lacking.push(path);
            }
        }
        assert!(
            lacking.is_empty(),
            "no `Example` in the --help of: {}",
            lacking.join(", ")
        );
    }

    #[test]
    fn completions_know_every_command() {
        // (shell, text that only a completion script for it has)
        let cases = [
            (Shell::Bash, "complete -F _watchpost"),
            (Shell::Zsh, "#compdef watchpost"),
            (Shell::Fish, "complete -c watchpost"),
        ];
        for (shell, marker) in cases {
            let mut text = Vec::new();
            write_completions(shell, &mut text);
            let text = String::from_utf8(text).unwrap();
            assert!(text.contains(marker), "{shell:?}:\n{text}");
            for command in ["run", "status", "doctor", "completions", "validate"] {
                assert!(text.contains(command), "{shell:?} lacks {command}");
            }
        }
    }

    #[test]
    fn the_manual_page_is_roff_for_every_command() {
        let mut roff = Vec::new();
        clap_mangen::Man::new(super::super::command())
            .render(&mut roff)
            .unwrap();
        let roff = String::from_utf8(roff).unwrap();
        assert!(roff.starts_with(".ie \\n(.g .ds Aq"), "{roff}");
        assert!(roff.contains(".TH watchpost 1"), "{roff}");
        for command in ["run", "status", "doctor", "completions", "man"] {
            assert!(
                roff.contains(&format!("watchpost\\-{command}(1)")),
                "{command}: {roff}"
            );
        }

        let dir = tempfile::tempdir().unwrap();
        man(ManArgs {
            dir: Some(dir.path().to_owned()),
        })
        .unwrap();
        for page in [
            "watchpost.1",
            "watchpost-run.1",
            "watchpost-config-validate.1",
        ] {
            let text = std::fs::read_to_string(dir.path().join(page))
                .unwrap_or_else(|e| panic!("{page}: {e}"));
            assert!(text.contains(".TH"), "{page}");
        }
    }
}
