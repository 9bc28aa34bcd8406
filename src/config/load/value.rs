//! One value checked alone, by the checks the loader runs on a whole file and with their
//! messages: for `config init`, which checks each answer as it is given, before there is a file.
//!
//! The value is put alone at its key in an otherwise empty document, and the loader runs on
//! that in [`Scope::OneValue`], where the keys a table must have are not asked for; of what it
//! says, only what is about the value counts.

use std::borrow::Cow;

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::problems::one_line;
use super::{Checker, OsFiles, Scope};

/// The tables written `[[...]]`: a value of theirs is checked as in their first item.
const ARRAYS_OF_TABLES: [&str; 3] = ["cameras", "cameras.zones", "cameras.lines"];

/// Checks `value` at `key` with the loader's own checks and messages, without a file around it.
/// `key` is the table as its header names it, then the key: `mqtt.url`, `cameras.detect_fps`,
/// `cameras.zones.loiter_s`. The keys beside the value are not asked for (a camera's `name` for
/// its `url`), and those it is compared with have their defaults (`cameras.idle_fps` with the
/// default `detect_fps`). A relative path is taken from the current folder (in a file, from the
/// file's folder); a password file or certificate is looked at as the loader would.
///
/// # Errors
/// What the loader says about the value, one message each, as in a file (never a password's
/// value); for a key that is not one, what it says about that.
pub fn check_value(key: &str, value: &toml_edit::Value) -> Result<(), Vec<String>> {
    let mut value = value.clone();
    value.decor_mut().clear();
    let text = value.to_string();
    let value = DeValue::parse(&text).map_err(|e| vec![one_line(e.message())])?;
    let (root, value_key) = document(key, value);
    let mut checker = Checker {
        text: &text,
        root: &root,
        base_dir: std::path::Path::new(""),
        env: &|_| None,
        files: &OsFiles,
        scope: Scope::OneValue,
        problems: Vec::new(),
    };
    // Not a configuration (it lacks every other table): only what is said about the value counts.
    let _ = checker.config();
    let messages: Vec<String> = checker
        .finish()
        .into_iter()
        .filter(|p| is_about(&p.key, &value_key))
        .map(|p| p.message)
        .collect();
    if messages.is_empty() {
        Ok(())
    } else {
        Err(messages)
    }
}

/// A document holding only `value` at `key` (a table of an array of tables as its first item),
/// and the key the loader names the value by there (`cameras[0].url`).
fn document<'i>(key: &str, value: Spanned<DeValue<'i>>) -> (DeTable<'i>, String) {
    let span = value.span();
    let segments: Vec<&str> = key.split('.').collect();
    let is_array = |depth: usize| ARRAYS_OF_TABLES.contains(&segments[..depth].join(".").as_str());
    let name = |segment: &str| Spanned::new(span.clone(), Cow::Owned(segment.to_owned()));
    let mut inner = value;
    for depth in (1..segments.len()).rev() {
        let mut table = DeTable::new();
        table.insert(name(segments[depth]), inner);
        let table = Spanned::new(span.clone(), DeValue::Table(table));
        inner = if is_array(depth) {
            Spanned::new(span.clone(), DeValue::Array(DeArray::from_iter([table])))
        } else {
            table
        };
    }
    let mut root = DeTable::new();
    root.insert(name(segments[0]), inner);
    let mut value_key = String::new();
    for (depth, segment) in segments.iter().enumerate() {
        if depth > 0 {
            value_key.push('.');
        }
        value_key.push_str(segment);
        if depth + 1 < segments.len() && is_array(depth + 1) {
            value_key.push_str("[0]");
        }
    }
    (root, value_key)
}

/// Whether a problem with `problem_key` is about the value at `value_key`: the value, a part of
/// it (`mqtt.url[1]`) or a table it would be in (a table that is not one).
fn is_about(problem_key: &str, value_key: &str) -> bool {
    problem_key == value_key || is_below(problem_key, value_key) || is_below(value_key, problem_key)
}

/// `inner` is a key inside `outer`.
fn is_below(inner: &str, outer: &str) -> bool {
    !outer.is_empty()
        && inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with(['.', '[']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::tests::{MINIMAL, file, parse};

    /// MINIMAL with `key = value` in its table (a zone or line of the camera: a new one), in
    /// place of the table's own line for that key if it has one.
    fn whole_file(key: &str, value: &str) -> String {
        let (table, field) = key.rsplit_once('.').unwrap();
        let mut text = MINIMAL.to_owned();
        match table {
            "cameras.zones" => text.push_str(
                "[[cameras.zones]]\nname = \"z\"\npoints = [[0.1, 0.1], [0.9, 0.1], [0.1, 0.9]]\n",
            ),
            "cameras.lines" => {
                text.push_str(
                    "[[cameras.lines]]\nname = \"l\"\npoints = [[0.1, 0.1], [0.9, 0.1]]\n",
                );
            }
            _ => {}
        }
        let header = if ARRAYS_OF_TABLES.contains(&table) {
            format!("[[{table}]]\n")
        } else {
            format!("[{table}]\n")
        };
        let Some(start) = text.find(&header).map(|at| at + header.len()) else {
            return format!("{text}{header}{field} = {value}\n");
        };
        let end = text[start..]
            .find("\n[")
            .map_or(text.len(), |at| start + at + 1);
        let mut lines: Vec<String> = text[start..end].lines().map(str::to_owned).collect();
        let line = format!("{field} = {value}");
        match lines
            .iter()
            .position(|l| l.starts_with(&format!("{field} = ")))
        {
            Some(at) => lines[at] = line,
            None => lines.insert(0, line),
        }
        format!("{}{}\n{}", &text[..start], lines.join("\n"), &text[end..])
    }

    #[test]
    fn one_value_is_checked_as_in_a_whole_file() {
        // key, value (TOML), the key the loader names it by in MINIMAL, None = accepted or
        // Some(what the first message starts with)
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("mqtt.url", "\"mqtts://broker:8883\"", "mqtt.url", None),
            (
                "mqtt.url",
                "[\"mqtt://a\", \"mqtt://b:1884\"]",
                "mqtt.url",
                None,
            ),
            (
                "mqtt.url",
                "\"http://broker:1883\"",
                "mqtt.url",
                Some("`http://broker:1883` is not an MQTT URL; expected mqtt://HOST[:PORT]"),
            ),
            (
                "mqtt.url",
                "[\"mqtt://a\", \"tcp://b\"]",
                "mqtt.url",
                Some("`tcp://b` is not an MQTT URL"),
            ),
            (
                "mqtt.url",
                "[\"mqtt://a\", \"mqtts://b\"]",
                "mqtt.url",
                Some("mixes mqtt:// and mqtts:// URLs"),
            ),
            (
                "mqtt.url",
                "\"mqtt://agent:s3cr3t@b\"",
                "mqtt.url",
                Some("`mqtt://agent:***@b` has a user name or password in it"),
            ),
            (
                "mqtt.url",
                "1883",
                "mqtt.url",
                Some("invalid type: integer `1883`, expected a broker URL or a list"),
            ),
            ("mqtt.keep_alive_s", "60", "mqtt.keep_alive_s", None),
            (
                "mqtt.keep_alive_s",
                "4",
                "mqtt.keep_alive_s",
                Some("must be between 5 and 3600, got 4"),
            ),
            (
                "mqtt.keep_alive_s",
                "2.5",
                "mqtt.keep_alive_s",
                Some("invalid type: floating point `2.5`, expected a whole number"),
            ),
            (
                "mqtt.client_id",
                "\"a\\tb\"",
                "mqtt.client_id",
                Some("contains an invisible character, U+0009 (TAB) at position 2"),
            ),
            // A password alone is not refused for the user name it lacks.
            ("mqtt.password", "\"s3cr3t\"", "mqtt.password", None),
            (
                "mqtt.password",
                "12345",
                "mqtt.password",
                Some("must be a string (the value is not shown)"),
            ),
            (
                "mqtt.colour",
                "1",
                "mqtt.colour",
                Some("unknown field `colour`, expected one of `url`"),
            ),
            ("device.site", "\"bihac-north\"", "device.site", None),
            (
                "device.site",
                "\"bihac north\"",
                "device.site",
                Some("`bihac north` is not usable in an MQTT topic"),
            ),
            // A camera's URL without its name, and the other way round.
            (
                "cameras.url",
                "\"rtsp://10.0.0.21:554/stream1\"",
                "cameras[0].url",
                None,
            ),
            (
                "cameras.url",
                "\"http://cam/\"",
                "cameras[0].url",
                Some("`http://cam/` is not an RTSP URL"),
            ),
            ("cameras.name", "\"gate-west\"", "cameras[0].name", None),
            ("cameras.detect_fps", "2.5", "cameras[0].detect_fps", None),
            (
                "cameras.detect_fps",
                "0",
                "cameras[0].detect_fps",
                Some("must be more than 0 and at most 60, got 0"),
            ),
            (
                "cameras.detect_fps",
                "\"fast\"",
                "cameras[0].detect_fps",
                Some("invalid type: string \"fast\", expected a number"),
            ),
            // Compared with the default detect_fps (MINIMAL's is the same, 5).
            (
                "cameras.idle_fps",
                "6",
                "cameras[0].idle_fps",
                Some("must be between 0 (never) and detect_fps (5), got 6"),
            ),
            (
                "cameras.zones.loiter_s",
                "90",
                "cameras[0].zones[0].loiter_s",
                None,
            ),
            (
                "cameras.zones.points",
                "[[0.1, 0.1], [0.9, 0.9]]",
                "cameras[0].zones[0].points",
                Some("a polygon needs at least 3 points, got 2"),
            ),
            (
                "cameras.lines.direction_names",
                "[\"in\", \"in\"]",
                "cameras[0].lines[0].direction_names",
                Some("`in` is given for both directions"),
            ),
            ("outbox.max_size_mb", "1024", "outbox.max_size_mb", None),
            (
                "outbox.sync_interval_ms",
                "500",
                "outbox.sync_interval_ms",
                Some("only used with sync = \"interval\", and sync is `every_event` (the default)"),
            ),
            ("local.listen", "\"\"", "local.listen", None),
            (
                "local.listen",
                "\"0.0.0.0:9750\"",
                "local.listen",
                Some("`0.0.0.0:9750` is not a loopback address"),
            ),
            (
                "events.snapshot_kinds",
                "[\"zone_entry\"]",
                "events.snapshot_kinds",
                Some("`zone_entry` is not an event kind"),
            ),
            (
                "tracking.high_score",
                "1.5",
                "tracking.high_score",
                Some("must be between 0 and 1, got 1.5"),
            ),
        ];
        for &(key, value, file_key, expected) in cases {
            let got = check_value(key, &value.parse().unwrap());
            // What the loader says about the same value in a whole file.
            let text = whole_file(key, value);
            let in_file: Vec<String> = match parse(&text, file()) {
                Ok(_) => Vec::new(),
                Err(e) => e
                    .problems()
                    .iter()
                    .filter(|p| p.key == file_key || p.key.starts_with(&format!("{file_key}[")))
                    .map(|p| p.message.clone())
                    .collect(),
            };
            assert_eq!(
                got.clone().err().unwrap_or_default(),
                in_file,
                "{key} = {value}\nin:\n{text}"
            );
            match (got, expected) {
                (Ok(()), None) => {}
                (Err(messages), Some(start)) => {
                    assert!(
                        messages[0].starts_with(start),
                        "{key} = {value}: {messages:?}"
                    );
                    assert!(
                        !messages.concat().contains("s3cr3t")
                            && !messages.concat().contains("12345"),
                        "{messages:?}"
                    );
                }
                (got, _) => panic!("{key} = {value}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn a_key_that_is_not_one_is_said() {
        let refused = |key: &str| check_value(key, &toml_edit::Value::from(1_i64)).unwrap_err();
        assert_eq!(
            refused("bogus.x"),
            [
                "unknown key `bogus`: expected one of the tables `device`, `mqtt`, `detection`, \
              `health`, `tracking`, `events`, `outbox`, `local`, `commands`, `cameras`"
            ]
        );
        assert_eq!(
            refused("cameras.zones.colour"),
            [
                "unknown field `colour`, expected one of `name`, `points`, `classes`, `loiter_s`, \
              `inertia`"
            ]
        );
    }
}
