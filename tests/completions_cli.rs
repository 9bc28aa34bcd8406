//! `watchpost completions` and `watchpost man`, driven as a packager would.

use assert_cmd::cargo::cargo_bin_cmd;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = cargo_bin_cmd!("watchpost").args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn completions_for_each_shell() {
    // (shell, what only its script has)
    for (shell, marker) in [
        ("bash", "complete -F _watchpost"),
        ("zsh", "#compdef watchpost"),
        ("fish", "complete -c watchpost"),
    ] {
        let (code, stdout, stderr) = run(&["completions", shell]);
        assert_eq!(code, Some(0), "{shell}: {stderr}");
        assert!(stdout.contains(marker), "{shell}:\n{stdout}");
        for command in ["status", "doctor", "format"] {
            assert!(stdout.contains(command), "{shell} lacks {command}");
        }
    }
    let (code, stdout, stderr) = run(&["completions", "tcsh"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("invalid value 'tcsh'") && stderr.contains("bash, zsh, fish"),
        "{stderr}"
    );
}

#[test]
fn the_manual_page_on_stdout_and_one_per_command_in_a_folder() {
    let (code, stdout, stderr) = run(&["man"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(".TH watchpost 1"), "{stdout}");
    assert!(stdout.contains("watchpost\\-doctor(1)"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let (code, stdout, stderr) = run(&["man", "--dir", out.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "");
    for page in [
        "watchpost.1",
        "watchpost-status.1",
        "watchpost-config-validate.1",
    ] {
        let text =
            std::fs::read_to_string(out.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains("Example"), "{page}:\n{text}");
    }
}

#[test]
fn every_help_has_an_example() {
    for command in [
        &["status"][..],
        &["doctor"],
        &["completions"],
        &["man"],
        &["run"],
        &["demo"],
        &["detect"],
        &["keys"],
        &["keys", "generate"],
        &["command"],
        &["command", "sign"],
    ] {
        let (code, stdout, stderr) = run(&[command, &["--help"]].concat());
        assert_eq!(code, Some(0), "{command:?}: {stderr}");
        assert!(
            stdout.contains("Example:\n  watchpost "),
            "{command:?}:\n{stdout}"
        );
    }
}
