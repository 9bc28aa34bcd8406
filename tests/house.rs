//! One way to do each thing: checks on the source itself, so that a second copy of a piece of
//! logic the house has one of (a URL redactor, a password-file reader, the `--config`
//! argument, the model run, label drawing) or a command module reaching into another command
//! does not come back unnoticed; likewise a second copy of a helper of the integration tests
//! (they live in `tests/common`).

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its text.
fn rust_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((path, text));
            }
        }
    }
    files.sort();
    files
}

/// The part of a file before its unit tests.
fn without_tests(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

/// Where `needle` occurs in code outside unit tests, as `path:line`.
fn occurrences(needle: &str) -> Vec<String> {
    occurrences_in(&src(), needle, without_tests)
}

/// Where `needle` occurs in the part of each file under `dir` that `part` keeps, outside
/// comments, as `path:line` (the path below `dir`).
fn occurrences_in(dir: &Path, needle: &str, part: fn(&str) -> &str) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in rust_files(dir) {
        for (i, line) in part(&text).lines().enumerate() {
            if line.contains(needle) && !line.trim_start().starts_with("//") {
                let shown = path.strip_prefix(dir).unwrap().display().to_string();
                found.push(format!("{shown}:{}", i + 1));
            }
        }
    }
    found
}

/// The command modules of `src/cli` (a file or a folder each), by name.
fn command_modules() -> Vec<String> {
    let mod_rs = std::fs::read_to_string(src().join("cli/mod.rs")).unwrap();
    let commands = mod_rs
        .split("// The commands:")
        .nth(1)
        .and_then(|rest| rest.split("// Shared by the commands.").next())
        .expect("src/cli/mod.rs lists the command modules, then the shared ones");
    commands
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mod "))
        .map(|m| m.trim_end_matches(';').to_owned())
        .collect()
}

#[test]
fn command_modules_depend_on_shared_modules_never_on_each_other() {
    let commands = command_modules();
    assert!(
        commands.len() >= 8,
        "the command modules listed in src/cli/mod.rs: {commands:?}"
    );
    let mut crossings = Vec::new();
    for command in &commands {
        let file = src().join(format!("cli/{command}.rs"));
        let folder = src().join(format!("cli/{command}"));
        let files = if folder.is_dir() {
            rust_files(&folder)
        } else {
            vec![(file.clone(), std::fs::read_to_string(&file).unwrap())]
        };
        for (path, text) in files {
            for other in commands.iter().filter(|o| *o != command) {
                for pattern in [
                    format!("super::{other}::"),
                    format!("crate::cli::{other}::"),
                    format!("super::super::{other}::"),
                ] {
                    if text.contains(&pattern) {
                        crossings.push(format!("{} uses {pattern}", path.display()));
                    }
                }
            }
        }
    }
    assert!(crossings.is_empty(), "{crossings:#?}");
}

#[test]
fn each_shared_piece_is_defined_once() {
    // (what, the text that defines it, how many definitions)
    let cases = [
        (
            "the default configuration path",
            "DEFAULT_CONFIG: &str =",
            1,
        ),
        ("the `--config` argument", "config: Option<PathBuf>", 1),
        ("a URL redactor", "fn redact", 2), // redact_url and redact_text, side by side
        ("a password-file reader", "fn read_password_file", 1),
        ("the RTSP latency default", "DEFAULT_LATENCY_MS:", 1),
        ("the zone-or-line kind", "enum Shape {", 1),
        ("the model run (`detect::run_session`)", "ort::inputs!", 1),
        (
            "label drawing (`imaging::draw_label`)",
            "imgproc::put_text(",
            1,
        ),
        ("the masked password of `config show`", "string(\"***\")", 1),
    ];
    for (what, needle, expected) in cases {
        let found = occurrences(needle);
        assert_eq!(
            found.len(),
            expected,
            "{what} (`{needle}`) is defined at {found:?}"
        );
    }
    // Detectors come from `detect::LoadedModel`: nothing else chooses and loads a model.
    for needle in ["choose_model(", "Detector::load(", "Detector::from_spec("] {
        let outside: Vec<String> = occurrences(needle)
            .into_iter()
            .filter(|at| !at.starts_with("detect/"))
            .collect();
        assert!(
            outside.is_empty(),
            "`{needle}` outside detect/ (use LoadedModel): {outside:?}"
        );
    }
    let installed = occurrences("share/watchpost");
    assert!(
        installed.iter().all(|at| at.starts_with("install.rs:")),
        "installed files are looked for through install::data_dirs: {installed:?}"
    );
    let redactors = occurrences("fn redact");
    assert!(
        redactors.iter().all(|at| at.starts_with("config/url.rs:")),
        "URL redaction lives in config/url.rs only: {redactors:?}"
    );
    // No command declares `--config` itself: they flatten `cli::args::ConfigFile`.
    let declared: Vec<String> = occurrences("config: PathBuf")
        .into_iter()
        .filter(|at| at.starts_with("cli/"))
        .collect();
    assert!(declared.is_empty(), "--config declared at {declared:?}");
}

#[test]
fn one_pipeline_builder_for_ingest_and_probe() {
    // What turns a template into a pipeline lives in ingest/pipeline.rs alone: filling the
    // placeholders, setting the credentials, finding the appsink, keeping decodebin off
    // hardware decoders. (`fill_placeholders` itself is defined in ingest/template.rs.)
    for needle in ["fill_placeholders(", "\"user-pw\"", "\"autoplug-select\""] {
        let elsewhere: Vec<String> = occurrences(needle)
            .into_iter()
            .filter(|at| {
                let defined_there =
                    needle == "fill_placeholders(" && at.starts_with("ingest/template.rs:");
                !at.starts_with("ingest/pipeline.rs:") && !defined_there
            })
            .collect();
        assert!(
            elsewhere.is_empty(),
            "`{needle}` outside ingest/pipeline.rs: {elsewhere:?}"
        );
    }
}

#[test]
fn the_demo_viewer_reads_payloads_through_publish_types() {
    // The viewer subscribes and reads as the central system would: with `publish::Topics` and
    // `publish::payload::ReceivedDetections`, not topic strings and raw JSON of its own.
    let raw: Vec<String> = ["serde_json::", "\"/detections\"", "+/detections"]
        .into_iter()
        .flat_map(occurrences)
        .filter(|at| at.starts_with("demo/"))
        .collect();
    assert!(raw.is_empty(), "demo/ reads MQTT by hand at {raw:?}");
}

#[test]
fn integration_test_helpers_are_defined_once_in_tests_common() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    // (what, the text that defines it)
    let cases = [
        ("the result of running the binary", "struct Run {"),
        ("the one-at-a-time lock", "fn serial()"),
        ("waiting for a condition", "fn wait_until("),
        ("an ingest test's camera", "fn camera_config("),
        ("the publisher on its own runtime", "struct Running {"),
        ("a publisher's configuration", "fn publisher_config("),
    ];
    for (what, needle) in cases {
        let found: Vec<String> = occurrences_in(&tests, needle, |text| text)
            .into_iter()
            .filter(|at| !at.starts_with("house.rs:")) // the needles above
            .collect();
        assert!(
            found.len() == 1 && found[0].starts_with("common/"),
            "{what} (`{needle}`) is defined at {found:?}: once, in tests/common"
        );
    }
}

/// The configuration loader stays a folder of modules, one per section or concern, none of them
/// the size the single file had grown to; and it touches the file system only in `OsFiles`
/// (`config/load/files.rs`), so that its checks can be run on files that are not written yet.
#[test]
fn the_config_loader_is_split_and_reads_files_only_through_files() {
    let folder = src().join("config/load");
    assert!(
        !src().join("config/load.rs").exists(),
        "src/config/load.rs is back: the loader lives in src/config/load/, a module per section"
    );
    let modules = rust_files(&folder);
    assert!(modules.len() >= 10, "{} modules", modules.len());
    for (path, text) in &modules {
        let shown = path.strip_prefix(src()).unwrap().display();
        let n = text.lines().count();
        assert!(n <= 1200, "{shown}: {n} lines; split it by concern");
        if path.ends_with("files.rs") {
            continue;
        }
        for needle in ["std::fs", "read_password_file("] {
            assert!(
                !without_tests(text)
                    .lines()
                    .any(|l| l.contains(needle) && !l.trim_start().starts_with("//")),
                "{shown} uses `{needle}`: the loader reads files through `Files` (load/files.rs)"
            );
        }
    }
    // In files.rs, only the real implementation touches the file system.
    let files = std::fs::read_to_string(folder.join("files.rs")).unwrap();
    let code: String = without_tests(&files)
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| format!("{l}\n"))
        .collect();
    let os_files = code
        .split("impl Files for OsFiles {")
        .nth(1)
        .and_then(|rest| rest.split("\n}\n").next())
        .expect("load/files.rs implements Files for OsFiles");
    assert_eq!(
        code.matches("std::fs").count(),
        os_files.matches("std::fs").count(),
        "std::fs outside `impl Files for OsFiles` in load/files.rs"
    );
}

/// The commands check a single value with `config::check_value` (the loader's own checks), not
/// by splicing it into a made-up minimal file.
#[test]
fn the_cli_checks_single_values_without_a_made_up_file() {
    let made_up: Vec<String> = ["PROBE", "fn probe("]
        .into_iter()
        .flat_map(occurrences)
        .filter(|at| at.starts_with("cli/"))
        .collect();
    assert!(
        made_up.is_empty(),
        "a fake configuration in the CLI: {made_up:?}"
    );
    assert!(
        !occurrences("config::check_value(").is_empty(),
        "the CLI checks single answers with config::check_value"
    );
}
