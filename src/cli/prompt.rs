//! Questions on the technician's terminal (`config init`, `camera add`).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;

/// Questions on the terminal: stdin and stdout.
pub(super) struct Prompter {
    input: std::io::StdinLock<'static>,
}

impl Prompter {
    /// `None` unless both stdin and stdout are terminals.
    pub fn on_terminal() -> Option<Prompter> {
        (std::io::stdin().is_terminal() && std::io::stdout().is_terminal()).then(|| Prompter {
            input: std::io::stdin().lock(),
        })
    }

    fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        let n = self.input.read_line(&mut line)?;
        anyhow::ensure!(n > 0, "the input ended before every question was answered");
        Ok(line.trim().to_owned())
    }

    /// Asks until `check` accepts the answer (Enter: `default`); `check` returns the value to
    /// keep or why the answer is refused.
    pub fn ask(
        &mut self,
        question: &str,
        default: Option<&str>,
        check: impl Fn(&str) -> Result<String, String>,
    ) -> anyhow::Result<String> {
        loop {
            match default {
                Some(default) => print!("{question} [{default}]: "),
                None => print!("{question}: "),
            }
            std::io::stdout().flush()?;
            let line = self.line()?;
            let answer = match (line.as_str(), default) {
                ("", Some(default)) => default.to_owned(),
                ("", None) => {
                    println!("  An answer is needed.");
                    continue;
                }
                (answer, _) => answer.to_owned(),
            };
            match check(&answer) {
                Ok(value) => return Ok(value),
                Err(why) => println!("  Not usable: {why}. Try again."),
            }
        }
    }

    /// As [`Prompter::ask`], for something that may be left out: Enter keeps `default` (shown
    /// as `[none]` when there is none), `-` gives none.
    pub fn ask_optional(
        &mut self,
        question: &str,
        default: Option<&str>,
        check: impl Fn(&str) -> Result<String, String>,
    ) -> anyhow::Result<Option<String>> {
        let shown = default.unwrap_or("none");
        let answer = self.ask(question, Some(shown), |answer| match answer {
            "none" if default.is_none() => Ok(String::new()),
            "-" => Ok(String::new()),
            answer => check(answer),
        })?;
        Ok(Some(answer).filter(|a| !a.is_empty()))
    }

    /// Yes or no; Enter takes `default`.
    pub fn confirm(&mut self, question: &str, default: bool) -> anyhow::Result<bool> {
        let shown = if default { "Y/n" } else { "y/N" };
        let answer = self.ask(question, Some(shown), |answer| {
            match answer.to_ascii_lowercase().as_str() {
                "y/n" => Ok(if default { "y" } else { "n" }.to_owned()),
                "y" | "yes" => Ok("y".to_owned()),
                "n" | "no" => Ok("n".to_owned()),
                _ => Err("answer y or n".to_owned()),
            }
        })?;
        Ok(answer == "y")
    }

    /// A password, read without showing it; `None` for an empty answer.
    pub fn password(&mut self, question: &str) -> anyhow::Result<Option<String>> {
        print!("{question} (not shown) [none]: ");
        std::io::stdout().flush()?;
        let echo = EchoOff::new().context("cannot turn off the terminal's echo")?;
        let line = self.line();
        drop(echo);
        let line = line?;
        Ok(Some(line).filter(|l| !l.is_empty()))
    }
}

/// Turns off echo on stdin's terminal (keeping the newline echo) until dropped.
struct EchoOff {
    saved: libc::termios,
}

impl EchoOff {
    fn new() -> std::io::Result<EchoOff> {
        // SAFETY: termios is plain data; tcgetattr fills it and reports failure by its return.
        let mut term: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &raw mut term) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let saved = term;
        term.c_lflag &= !libc::ECHO;
        term.c_lflag |= libc::ECHONL;
        // SAFETY: `term` is a valid termios from tcgetattr.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw const term) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: `saved` is the valid termios read in `new`.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw const self.saved) };
    }
}
