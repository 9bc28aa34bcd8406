//! The configuration loader against files nobody would write on purpose: arbitrary text, and
//! valid files mutated byte by byte, line by line (property tests, `proptest`).
//!
//! Whatever the input: no panic; a file that is refused gets at least one problem, and every
//! problem says where (a line, or the key at fault); `watchpost config validate` exits 2 and
//! prints one `FILE:…` line per problem, or 0 for a file the loader accepts.

use std::path::Path;

use assert_cmd::cargo::cargo_bin_cmd;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use watchpost::config::{ConfigError, parse};

/// A valid file with a value of nearly every kind: tables, arrays of tables, nested arrays,
/// strings, numbers, booleans, durations.
const FULL: &str = r#"[device]
site = "bihac-north"
id = "post-07"

[mqtt]
url = "mqtt://127.0.0.1:1883"
keep_alive_s = 5

[detection]
inference_threads = 2
max_frame_age_ms = 1000

[health]
interval_s = 10

[tracking]
inertia = 3

[outbox]
max_size_mb = 64
when_full = "drop_oldest"

[[cameras]]
name = "gate-east"
url = "rtsp://10.0.0.21:554/stream1"
detect_fps = 5
idle_fps = 0.5
transport = "tcp"
latency_ms = 200

[[cameras.zones]]
name = "road"
points = [[0.1, 0.4], [0.9, 0.4], [0.9, 0.95], [0.1, 0.95]]
classes = ["person", "vehicle"]
loiter_s = 60

[[cameras.lines]]
name = "border"
points = [[0.5, 0.2], [0.5, 0.95]]
direction_names = ["inbound", "outbound"]
classes = ["person"]

[[cameras]]
name = "gate-west"
url = "rtsp://10.0.0.22/stream1"
detect_fps = 2
"#;

fn seeds() -> Vec<String> {
    let deployed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/watchpost.toml"),
    )
    .unwrap();
    vec![FULL.to_owned(), deployed]
}

/// One edit of a file's text.
#[derive(Debug, Clone)]
enum Edit {
    /// Remove `len` bytes at `at` (fractions of the text, so they fit any length).
    Delete { at: f64, len: usize },
    /// Insert `text` at `at`.
    Insert { at: f64, text: String },
    /// Repeat the line at `at` right after itself.
    RepeatLine { at: f64 },
    /// Cut the text at `at`.
    Truncate { at: f64 },
    /// Replace the digit run at `at` (the first one from there) with `with`.
    Number { at: f64, with: String },
}

/// Byte position `at` (0..1) of `text`, moved back to a character boundary.
fn position(text: &str, at: f64) -> usize {
    let mut i = ((text.len() as f64) * at) as usize;
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &mut String, edit: &Edit) {
    match edit {
        Edit::Delete { at, len } => {
            let start = position(text, *at);
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(start..end, "");
        }
        Edit::Insert { at, text: inserted } => {
            let i = position(text, *at);
            text.insert_str(i, inserted);
        }
        Edit::RepeatLine { at } => {
            let i = position(text, *at);
            let start = text[..i].rfind('\n').map_or(0, |p| p + 1);
            let end = text[i..].find('\n').map_or(text.len(), |p| i + p + 1);
            let line = text[start..end].to_owned();
            let line = if line.ends_with('\n') {
                line
            } else {
                format!("\n{line}")
            };
            text.insert_str(end, &line);
        }
        Edit::Truncate { at } => {
            let i = position(text, *at);
            text.truncate(i);
        }
        Edit::Number { at, with } => {
            let i = position(text, *at);
            if let Some(offset) = text[i..].find(|c: char| c.is_ascii_digit()) {
                let start = i + offset;
                let len = text[start..]
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(text.len() - start);
                text.replace_range(start..start + len, with);
            }
        }
    }
}

/// Text worth inserting: TOML's own punctuation, keys and values the loader knows, numbers
/// out of every range, invisible and odd characters.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "[",
            "]",
            "[[",
            "]]",
            "=",
            "\"",
            "'",
            "\"\"\"",
            ",",
            ".",
            "#",
            "{",
            "}",
            "\n",
            "\r\n",
            "\t",
            " ",
            "\0",
            "\u{200b}",
            "\u{feff}",
            "\u{7f}",
            "é",
            "🦀",
            "\\",
            "\\u0000",
            "[device]\n",
            "[mqtt]\n",
            "[[cameras]]\n",
            "[[cameras.zones]]\n",
            "[[cameras.lines]]\n",
            "[outbox]\n",
            "[local]\n",
            "[commands]\n",
            "name = \"x\"\n",
            "url = \"rtsp://a\"\n",
            "detect_fps = 0\n",
            "points = []\n",
            "points = [[0.1, 0.1]]\n",
            "classes = [\"cat\"]\n",
            "password = \"hunter2\"\n",
            "password_file = \"/nonexistent\"\n",
            "inference_threads = -1\n",
            "max_size_mb = 99999999999999999999999\n",
            "url = \"mqtt://:0\"\n",
            "true",
            "1e400",
            "-0",
            "nan",
            "inf",
            "1979-05-27T07:32:00Z",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = 0.0..1.0f64;
    prop_oneof![
        (at.clone(), 1..40usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        (at.clone(), fragment()).prop_map(|(at, text)| Edit::Insert { at, text }),
        at.clone().prop_map(|at| Edit::RepeatLine { at }),
        at.clone().prop_map(|at| Edit::Truncate { at }),
        (
            at,
            prop::sample::select(vec![
                "0",
                "-1",
                "99999999999999999999",
                "340282366920938463463374607431768211456",
                "1.5",
                "00",
                "",
            ])
        )
            .prop_map(|(at, with)| Edit::Number {
                at,
                with: with.to_owned()
            }),
    ]
}

/// A seed file with 1 to 6 edits.
fn mutated() -> impl Strategy<Value = String> {
    (
        prop::sample::select(seeds()),
        prop::collection::vec(edit(), 1..6),
    )
        .prop_map(|(mut text, edits)| {
            for e in &edits {
                apply(&mut text, e);
            }
            text
        })
}

/// The loader's verdict on `text`, checked: every problem says where it is.
fn check(text: &str) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchpost.toml");
    match parse(text, &path) {
        Ok(_) => Ok(()),
        Err(ConfigError::Read { .. }) => Err(TestCaseError::fail("parse never reads the file")),
        Err(e @ ConfigError::Invalid { .. }) => {
            prop_assert!(!e.problems().is_empty(), "refused without a problem");
            for p in e.problems() {
                prop_assert!(
                    p.line.is_some() || !p.key.is_empty(),
                    "a problem that does not say where: {p:?}"
                );
                prop_assert!(!p.message.trim().is_empty(), "an empty message: {p:?}");
                prop_assert!(
                    !p.message.contains('\n'),
                    "a message on more than one line: {p:?}"
                );
            }
            Ok(())
        }
    }
}

fn quiet(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // No regression files written into the repository.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(quiet(512))]

    #[test]
    fn a_mutated_valid_file_never_panics_and_every_problem_is_located(text in mutated()) {
        check(&text)?;
    }

    #[test]
    fn arbitrary_text_never_panics_and_every_problem_is_located(text in any::<String>()) {
        check(&text)?;
    }
}

proptest! {
    #![proptest_config(quiet(24))]

    /// The command as a technician runs it: the exit code and the output follow the loader.
    #[test]
    fn config_validate_exits_2_with_located_lines_or_0(text in mutated()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watchpost.toml");
        std::fs::write(&path, &text).unwrap();
        let refused = parse(&text, &path).is_err();
        let output = cargo_bin_cmd!("watchpost")
            .args(["config", "validate"])
            .arg(&path)
            .env_remove("WATCHPOST_MQTT_PASSWORD")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if refused {
            prop_assert_eq!(output.status.code(), Some(2), "stderr: {}", stderr);
            let prefix = path.display().to_string();
            prop_assert!(stderr.lines().count() >= 1);
            for line in stderr.lines() {
                prop_assert!(line.starts_with(&prefix), "not located: {}", line);
            }
        } else {
            prop_assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr);
        }
    }
}
