//! Where the log goes: stderr as text, or the systemd journal with fields.
//!
//! Under systemd (`watchpost.service`), stderr is a stream into the journal, and systemd says
//! so in `$JOURNAL_STREAM` (`DEVICE:INODE` of that stream). Then each line is sent to journald
//! natively instead (`tracing-journald`), so that its fields are fields of the journal entry,
//! not words in a line: the camera of a line is `WATCHPOST_CAMERA` (every span and event field
//! is `WATCHPOST_` + its name in capitals, the span is `SPAN_NAME`), the level is `PRIORITY`,
//! and the technician can ask `journalctl -u watchpost WATCHPOST_CAMERA=gate-east -p warning`.
//! If journald cannot be reached (no socket), the text goes to stderr as before. A stderr that
//! is not that stream (a terminal, a pipe, `systemd-run --pty`, or a stream inherited by a
//! child) keeps the text: systemd's documented test compares the device and inode.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The prefix of every field this program gives the journal (journald's own fields, like
/// `MESSAGE` and `PRIORITY`, have none).
pub const JOURNAL_FIELD_PREFIX: &str = "WATCHPOST";

/// Installs the global subscriber: `filter` (a `RUST_LOG`-style directive) for the journal or
/// for stderr.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| {
        eprintln!("watchpost: warning: bad log filter `{filter}`, using `warn`");
        EnvFilter::new("warn")
    });
    let journald = stderr_is_the_journal()
        .then(|| {
            tracing_journald::layer().map(|layer| {
                layer
                    .with_field_prefix(Some(JOURNAL_FIELD_PREFIX.to_owned()))
                    .with_syslog_identifier("watchpost".to_owned())
            })
        })
        .and_then(Result::ok);
    let text = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(text)
        .try_init();
}

/// Whether stderr is the journal stream systemd connected it to (`$JOURNAL_STREAM`).
fn stderr_is_the_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(stderr).metadata() else {
        return false;
    };
    let (device, inode) = (meta.dev(), meta.ino());
    stream.to_str().and_then(parse_stream) == Some((device, inode))
}

/// `DEVICE:INODE` of `$JOURNAL_STREAM`, both decimal.
fn parse_stream(text: &str) -> Option<(u64, u64)> {
    let (device, inode) = text.split_once(':')?;
    Some((device.parse().ok()?, inode.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::parse_stream;

    #[test]
    fn journal_stream_values() {
        for (text, expected) in [
            ("8:1234", Some((8, 1234))),
            ("0:0", Some((0, 0))),
            ("64769:18446744073709551615", Some((64769, u64::MAX))),
            ("8", None),
            ("8:", None),
            (":12", None),
            ("a:12", None),
            ("8:12:3", None),
            (" 8:12", None),
        ] {
            assert_eq!(parse_stream(text), expected, "{text:?}");
        }
    }
}
