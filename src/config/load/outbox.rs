//! `[outbox]` (optional): where events wait for the broker, and what happens when it is full.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Checker;
use super::checks::{millis, one_of};
use super::raw::{Float, Int};
use super::table::RawTable;
use crate::config::{DeviceConfig, OutboxConfig, OutboxSync, WhenFull};

const MIB: u64 = 1024 * 1024;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutbox {
    dir: Option<PathBuf>,
    max_size_mb: Option<Int>,
    max_age_h: Option<Float>,
    when_full: Option<String>,
    sync: Option<String>,
    sync_interval_ms: Option<Int>,
}

impl RawTable for RawOutbox {}

impl<'a> Checker<'a> {
    /// `[outbox]` (its defaults when the table is left out). `device`: its state folder holds
    /// the default folder (`None`: the device is refused).
    pub(super) fn outbox(
        &mut self,
        raw: RawOutbox,
        device: Option<&DeviceConfig>,
    ) -> Option<OutboxConfig> {
        let dir = match raw.dir {
            Some(dir) => self.path("outbox.dir", dir),
            // None: the device is refused, and said so already.
            None => device.map(|d| OutboxConfig::in_state_dir(&d.state_dir).dir),
        };
        let default_mb = OutboxConfig::DEFAULT_MAX_BYTES / MIB;
        let max_size_mb = self.int(
            "outbox.max_size_mb",
            raw.max_size_mb,
            1..=1_048_576,
            i64::try_from(default_mb).unwrap_or(256),
        );
        let max_age = self
            .float(
                "outbox.max_age_h",
                raw.max_age_h,
                0.01..=8760.0,
                OutboxConfig::DEFAULT_MAX_AGE.as_secs_f64() / 3600.0,
            )
            .map(|h| Duration::from_secs_f64(h * 3600.0));
        let when_full = match raw.when_full.as_deref() {
            None => Some(WhenFull::DropOldest),
            Some(name) => {
                let policy = WhenFull::parse(name);
                if policy.is_none() {
                    let message = format!(
                        "`{name}` is not a choice: use {}",
                        one_of(WhenFull::ALL.map(WhenFull::as_str))
                    );
                    self.problem("outbox.when_full", message);
                }
                policy
            }
        };
        let sync = match raw.sync.as_deref() {
            None | Some("every_event") => Some(OutboxSync::EveryEvent),
            Some("never") => Some(OutboxSync::Never),
            Some("interval") => self
                .int(
                    "outbox.sync_interval_ms",
                    raw.sync_interval_ms,
                    10..=60_000,
                    1000,
                )
                .map(|ms| OutboxSync::Interval(millis(ms))),
            Some(other) => {
                let message = format!(
                    "`{other}` is not a sync policy: use {}",
                    one_of(OutboxSync::NAMES)
                );
                self.problem("outbox.sync", message);
                None
            }
        };
        if let Some(sync) = sync
            && sync.as_str() != "interval"
            && raw.sync_interval_ms.is_some()
        {
            let shown = match raw.sync {
                Some(_) => format!("`{}`", sync.as_str()),
                None => format!("`{}` (the default)", sync.as_str()),
            };
            self.problem(
                "outbox.sync_interval_ms",
                format!(
                    "only used with sync = \"interval\", and sync is {shown}: remove \
                     `sync_interval_ms` or set sync = \"interval\""
                ),
            );
            return None;
        }
        Some(OutboxConfig {
            dir: dir?,
            max_bytes: u64::try_from(max_size_mb?).ok()? * MIB,
            max_age: max_age?,
            when_full: when_full?,
            sync: sync?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::tests::{file, parse, problem, with};
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    #[test]
    fn outbox_from_table() {
        let defaults = OutboxConfig::in_state_dir(Path::new("/var/lib/watchpost"));
        let cases: &[(&str, Result<OutboxConfig, &str>)] = &[
            ("", Ok(defaults.clone())),
            (
                "dir = \"/data/outbox\"\nmax_size_mb = 1\nmax_age_h = 0.01\n\
                 when_full = \"drop_oldest\"\nsync = \"never\"",
                Ok(OutboxConfig {
                    dir: PathBuf::from("/data/outbox"),
                    max_bytes: 1024 * 1024,
                    max_age: Duration::from_secs(36),
                    when_full: WhenFull::DropOldest,
                    sync: OutboxSync::Never,
                }),
            ),
            (
                "dir = \"outbox-here\"\nmax_size_mb = 1048576\nmax_age_h = 8760\n\
                 when_full = \"drop_newest\"\nsync = \"every_event\"",
                Ok(OutboxConfig {
                    dir: PathBuf::from("/etc/watchpost/outbox-here"),
                    max_bytes: 1024 * 1024 * 1024 * 1024,
                    max_age: Duration::from_secs(8760 * 3600),
                    when_full: WhenFull::DropNewest,
                    sync: OutboxSync::EveryEvent,
                }),
            ),
            (
                "sync = \"interval\"",
                Ok(OutboxConfig {
                    sync: OutboxSync::Interval(Duration::from_secs(1)),
                    ..defaults.clone()
                }),
            ),
            (
                "sync = \"interval\"\nsync_interval_ms = 10",
                Ok(OutboxConfig {
                    sync: OutboxSync::Interval(Duration::from_millis(10)),
                    ..defaults.clone()
                }),
            ),
            (
                "sync = \"interval\"\nsync_interval_ms = 60000",
                Ok(OutboxConfig {
                    sync: OutboxSync::Interval(Duration::from_secs(60)),
                    ..defaults.clone()
                }),
            ),
            ("dir = \"\"", Err("outbox.dir: must not be empty")),
            (
                "max_size_mb = 0",
                Err("outbox.max_size_mb: must be between 1 and 1048576, got 0"),
            ),
            (
                "max_size_mb = 1048577",
                Err("outbox.max_size_mb: must be between 1 and 1048576, got 1048577"),
            ),
            (
                "max_size_mb = 1.5",
                Err(
                    "outbox.max_size_mb: invalid type: floating point `1.5`, expected a whole number",
                ),
            ),
            (
                "max_age_h = 0.001",
                Err("outbox.max_age_h: must be between 0.01 and 8760, got 0.001"),
            ),
            (
                "max_age_h = 8761",
                Err("outbox.max_age_h: must be between 0.01 and 8760, got 8761"),
            ),
            (
                "max_age_h = nan",
                Err("outbox.max_age_h: must be between 0.01 and 8760, got NaN"),
            ),
            (
                "when_full = \"block\"",
                Err(
                    "outbox.when_full: `block` is not a choice: use `drop_oldest` or `drop_newest`",
                ),
            ),
            (
                "sync = \"always\"",
                Err(
                    "outbox.sync: `always` is not a sync policy: use `every_event`, `interval` or `never`",
                ),
            ),
            (
                "sync = \"interval\"\nsync_interval_ms = 9",
                Err("outbox.sync_interval_ms: must be between 10 and 60000, got 9"),
            ),
            (
                "sync = \"interval\"\nsync_interval_ms = 60001",
                Err("outbox.sync_interval_ms: must be between 10 and 60000, got 60001"),
            ),
            (
                "sync_interval_ms = 500",
                Err(
                    "outbox.sync_interval_ms: only used with sync = \"interval\", and sync is \
                     `every_event` (the default): remove `sync_interval_ms` or set sync = \"interval\"",
                ),
            ),
            (
                "sync = \"never\"\nsync_interval_ms = 500",
                Err(
                    "outbox.sync_interval_ms: only used with sync = \"interval\", and sync is \
                     `never`: remove",
                ),
            ),
            (
                "max_files = 5",
                Err("outbox.max_files: unknown field `max_files`, expected one of `dir`"),
            ),
        ];
        for (lines, expected) in cases {
            let text = with("outbox", lines);
            match (parse(&text, file()), expected) {
                (Ok(config), Ok(outbox)) => assert_eq!(&config.outbox, outbox, "{lines}"),
                (Err(_), Err(message)) => {
                    let p = problem(&text);
                    let first_key = lines.split(" = ").next().unwrap();
                    let key = p.key.rsplit('.').next().unwrap();
                    let line = 11 + lines.lines().position(|l| l.starts_with(key)).unwrap_or(0);
                    assert!(!first_key.is_empty());
                    assert_eq!(p.line, Some(line), "{lines}: {p:?}");
                    assert!(
                        format!("{}: {}", p.key, p.message).starts_with(message),
                        "{lines}: {p:?}"
                    );
                }
                (Ok(_), Err(e)) => panic!("{lines}: accepted, expected {e}"),
                (Err(e), Ok(_)) => panic!("{lines}: {e}"),
            }
        }

        // The default folder follows device.state_dir, relative to the file's folder.
        let text = with("device", "state_dir = \"state\"");
        let config = parse(&text, file()).unwrap();
        assert_eq!(
            config.outbox.dir,
            Path::new("/etc/watchpost/state/outbox"),
            "{text}"
        );
        // A refused device: no second problem from the outbox.
        let text = with("device", "state_dir = \"\"");
        assert_eq!(problem(&text).key, "device.state_dir");
    }
}
