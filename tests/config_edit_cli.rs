//! `watchpost config init/show/set` and `watchpost camera add/remove/list/zone/line`, driven as
//! a technician would: the real binary on files on disk, failures included, the audit log read
//! back. (The interactive `config init` through a real terminal is `config_init_tty.rs`.)

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use common::Run;
use serde_json::Value;

/// `watchpost ARGS...` with a known user and no MQTT password from the environment.
fn watchpost(args: &[&str]) -> Run {
    let output = cargo_bin_cmd!("watchpost")
        .args(args)
        .env_remove("WATCHPOST_MQTT_PASSWORD")
        .env_remove("SUDO_USER")
        .env("USER", "tech")
        .output()
        .unwrap();
    Run::from(output)
}

/// A folder with `watchpost.toml` (from `text`, `{STATE}` replaced by `state/` in the folder).
struct Site {
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl Site {
    fn new(text: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("watchpost.toml");
        let state = dir.path().join("state");
        std::fs::write(&file, text.replace("{STATE}", &state.to_string_lossy())).unwrap();
        Site { dir, file }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.file).unwrap()
    }

    fn arg(&self) -> &str {
        self.file.to_str().unwrap()
    }

    /// `watchpost ARGS... --config FILE`.
    fn run(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--config", self.arg()]);
        watchpost(&all)
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.path().join("state/audit.log")
    }

    /// The audit log's entries (none when there is no log).
    fn audit(&self) -> Vec<Value> {
        match std::fs::read_to_string(self.audit_path()) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The example configuration, with state kept in the test's folder, a comment after a value
/// and a second camera: comments everywhere.
fn deploy_like() -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/watchpost.toml"),
    )
    .unwrap();
    let text = replace_once(
        &text,
        "#state_dir = \"/var/lib/watchpost\"\n",
        "#state_dir = \"/var/lib/watchpost\"\nstate_dir = \"{STATE}\"   # tests keep it here\n",
    );
    let text = replace_once(
        &text,
        "\ndetect_fps = 5\n",
        "\ndetect_fps = 5   # enough here\n",
    );
    format!(
        "{text}\n# The west gate.\n[[cameras]]\nname = \"gate-west\"   # by the fence\n\
         url = \"rtsp://10.0.0.22:554/stream1\"\ndetect_fps = 2.5\n# end of file\n"
    )
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "`{from}` is not there once");
    text.replacen(from, to, 1)
}

/// The 1-based number of the first line of `text` that starts with `start`.
fn line_of(text: &str, start: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starts with `{start}`"))
        + 1
}

fn assert_audit_entry(entry: &Value, command: &str, file: &Path) {
    let keys: Vec<&str> = entry
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["at", "changes", "command", "file", "host", "user"],
        "{entry}"
    );
    assert_eq!(entry["command"], command, "{entry}");
    assert_eq!(entry["file"], file.to_str().unwrap(), "{entry}");
    assert_eq!(entry["user"], "tech", "{entry}");
    assert!(!entry["host"].as_str().unwrap().is_empty(), "{entry}");
    let at = entry["at"].as_str().unwrap();
    assert!(
        at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "not RFC 3339 UTC: {at}"
    );
}

#[test]
fn set_changes_only_the_bytes_of_the_value() {
    let site = Site::new(&deploy_like());
    let original = site.text();
    // (key, value as typed, old text, new text): a top-level table, cameras by name, a value
    // followed by a comment, an array.
    let steps = [
        (
            "device.site",
            "rafah-east",
            "site = \"bihac-north\"",
            "site = \"rafah-east\"",
        ),
        (
            "cameras.gate-east.detect_fps",
            "2.5",
            "detect_fps = 5   # enough here",
            "detect_fps = 2.5   # enough here",
        ),
        (
            "cameras.gate-west.detect_fps",
            "10",
            "detect_fps = 2.5\n# end of file",
            "detect_fps = 10\n# end of file",
        ),
        (
            "mqtt.url",
            "[\"mqtt://10.0.0.5:1883\", \"mqtt://10.0.0.6:1883\"]",
            "url = \"mqtt://127.0.0.1:1883\"",
            "url = [\"mqtt://10.0.0.5:1883\", \"mqtt://10.0.0.6:1883\"]",
        ),
        (
            "cameras.gate-west.name",
            "gate-south",
            "name = \"gate-west\"   # by the fence",
            "name = \"gate-south\"   # by the fence",
        ),
    ];
    let mut expected = original.clone();
    for (key, value, old, new) in steps {
        let run = site.run(&["config", "set", key, value]);
        assert_eq!(run.code, Some(0), "{key}: {}", run.stderr);
        assert_eq!(run.stderr, "", "{key}");
        expected = replace_once(&expected, old, new);
        assert_eq!(site.text(), expected, "{key}");
    }
    assert_eq!(
        watchpost(&["config", "validate", site.arg()]).code,
        Some(0),
        "the edited file is not valid"
    );
    // What was said, and what the audit log has.
    let run = site.run(&["config", "set", "outbox.max_size_mb", "512"]);
    assert_eq!(
        run.stdout,
        format!(
            "{}: outbox.max_size_mb = 512 (was 256)\n",
            site.file.display()
        )
    );
    // A key that was only an example (`#max_size_mb = 256`) goes right after it.
    expected = replace_once(
        &expected,
        "#max_size_mb = 256\n",
        "#max_size_mb = 256\nmax_size_mb = 512\n",
    );
    assert_eq!(site.text(), expected);

    let audit = site.audit();
    assert_eq!(audit.len(), steps.len() + 1);
    for entry in &audit {
        assert_audit_entry(entry, "config set", &site.file);
    }
    assert_eq!(
        audit[1]["changes"],
        serde_json::json!([{"key": "cameras.gate-east.detect_fps", "old": 5.0, "new": 2.5}])
    );
    assert_eq!(
        audit[3]["changes"][0]["new"],
        serde_json::json!(["mqtt://10.0.0.5:1883", "mqtt://10.0.0.6:1883"])
    );
    // A renamed camera: gone under one name, there under the other.
    let renamed: Vec<&str> = audit[4]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(renamed, ["cameras.gate-south", "cameras.gate-west"]);
    assert_eq!(
        audit[5]["changes"],
        serde_json::json!([{"key": "outbox.max_size_mb", "old": 256, "new": 512}])
    );
}

#[test]
fn refused_values_print_the_loader_line_and_change_nothing() {
    let site = Site::new(&deploy_like());
    let original = site.text();
    let file = site.file.display().to_string();
    let fps_line = line_of(&original, "detect_fps = 5");
    let url_line = line_of(&original, "url = \"mqtt://");
    // (key, value, expected first line of stderr)
    let cases = [
        (
            "cameras.gate-east.detect_fps",
            "0",
            format!(
                "{file}:{fps_line}: cameras[0].detect_fps: must be more than 0 and at most 60, got 0"
            ),
        ),
        (
            "mqtt.url",
            "http://broker:1883",
            format!(
                "{file}:{url_line}: mqtt.url: `http://broker:1883` is not an MQTT URL; expected \
                 mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"
            ),
        ),
        (
            "device.site",
            "a b",
            format!(
                "{file}:{}: device.site: `a b` is not usable in an MQTT topic: ` ` is not allowed \
                 (use letters, digits, `-` and `_`)",
                line_of(&original, "site = \"bihac-north\"")
            ),
        ),
        (
            "cameras.gate-east.detect_fps",
            "fast",
            format!(
                "{file}:{fps_line}: cameras[0].detect_fps: invalid type: string \"fast\", \
                 expected a number"
            ),
        ),
        (
            "mqtt.urll",
            "mqtt://x",
            format!(
                "{file}:{}: mqtt.urll: unknown field `urll`, expected one of `url`,",
                url_line + 1
            ),
        ),
        (
            "cameras.gate-north.detect_fps",
            "3",
            format!(
                "watchpost: error: {file}: there is no camera named `gate-north` (there are: \
                 gate-east, gate-west)"
            ),
        ),
        (
            "mqtt.password",
            "hunter2",
            format!(
                "watchpost: error: {file}: `mqtt.password` is a password: passwords are not \
                 given on the command line"
            ),
        ),
        (
            "cameras.gate-east.url",
            "rtsp://admin:hunter2@10.0.0.21/stream1",
            format!(
                "watchpost: error: {file}: the URL given for `cameras.gate-east.url` has a \
                 password in it"
            ),
        ),
        (
            "mqtt",
            "1",
            format!("watchpost: error: {file}: `mqtt` is a table: set one of its keys"),
        ),
        (
            "mqtt..url",
            "1",
            format!("watchpost: error: {file}: `mqtt..url` is not a key"),
        ),
    ];
    for (key, value, first_line) in cases {
        let run = site.run(&["config", "set", key, value]);
        assert_eq!(run.code, Some(2), "{key} {value}: {}", run.stderr);
        assert!(
            run.stderr.starts_with(&first_line),
            "{key} {value}:\n{}\nexpected:\n{first_line}",
            run.stderr
        );
        assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
        assert_eq!(run.stdout, "", "{key}");
        assert_eq!(site.text(), original, "{key} {value} changed the file");
    }
    assert!(site.audit().is_empty(), "refused changes were audited");

    // A missing file is one line.
    let missing = site.path("missing.toml");
    let run = watchpost(&[
        "config",
        "set",
        "device.site",
        "x",
        "--config",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        format!(
            "{}: cannot read: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
}

#[test]
fn a_change_that_cannot_be_audited_is_not_made() {
    let site = Site::new(&deploy_like());
    // The state folder is a file: no audit log can be written there.
    std::fs::write(site.path("state"), "not a folder").unwrap();
    let original = site.text();
    let run = site.run(&["config", "set", "cameras.gate-east.detect_fps", "3"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "watchpost: error: nothing was changed: cannot write the audit log {}: File exists \
             (os error 17)\n",
            site.path("state").join("audit.log").display()
        )
    );
    assert_eq!(site.text(), original);
    // No temporary file is left beside the configuration.
    let names: Vec<String> = std::fs::read_dir(site.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn show_prints_the_configuration_in_force_without_secrets() {
    let site = Site::new(&deploy_like());
    std::fs::write(site.path("mqtt-password"), "m0squitto-pw\n").unwrap();
    let text = replace_once(
        &site.text(),
        "#username = \"watchpost\"\n",
        &format!(
            "username = \"wp\"\npassword_file = \"{}\"\n",
            site.path("mqtt-password").display()
        ),
    );
    let text = replace_once(
        &text,
        "\nurl = \"rtsp://10.0.0.22:554/stream1\"",
        "\nurl = \"rtsp://admin:hunter2@10.0.0.22:554/stream1\"",
    );
    std::fs::write(&site.file, text).unwrap();

    let run = site.run(&["config", "show"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for secret in ["hunter2", "m0squitto-pw"] {
        assert!(
            !run.stdout.contains(secret),
            "{secret} shown:\n{}",
            run.stdout
        );
    }
    for line in [
        "site = \"bihac-north\"",
        "username = \"wp\"",
        "password = \"***\"",
        "url = \"rtsp://10.0.0.22:554/stream1\"",
        "username = \"admin\"",
        "max_size_mb = 256",
        "keep_alive_s = 30",
        "latency_ms = 200",
        "# model: auto: the int8 model where the CPU has integer dot-product instructions, else fp32",
    ] {
        assert!(
            run.stdout.lines().any(|l| l == line),
            "no `{line}` in:\n{}",
            run.stdout
        );
    }
    // What it prints is a valid configuration, and the same one.
    let shown = site.path("shown.toml");
    std::fs::write(&shown, &run.stdout).unwrap();
    let validated = watchpost(&["config", "validate", shown.to_str().unwrap()]);
    assert_eq!(validated.code, Some(0), "{}", validated.stderr);
    let again = watchpost(&["config", "show", "--config", shown.to_str().unwrap()]);
    assert_eq!(
        again.stdout.lines().skip(1).collect::<Vec<_>>(),
        run.stdout.lines().skip(1).collect::<Vec<_>>()
    );

    // A bad file: the loader's lines, exit 2.
    std::fs::write(&site.file, "[device]\nsite = 1\n").unwrap();
    let run = site.run(&["config", "show"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains(&format!(
            "{}:2: device.site: invalid type",
            site.file.display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn cameras_are_added_listed_and_removed() {
    let site = Site::new(&deploy_like());
    let file = site.file.display().to_string();

    // A URL with a password: the password goes to a file of its own.
    let run = site.run(&[
        "camera",
        "add",
        "yard",
        "rtsp://admin:hunter2@10.0.0.23:554/live",
        "--detect-fps",
        "1.5",
        "--transport",
        "udp",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let password_file = site.path("yard-password");
    assert_eq!(
        run.stdout,
        format!(
            "{file}: added camera yard (rtsp://10.0.0.23:554/live); 3 cameras\n\
             Its password is in {} (mode 0600).\n",
            password_file.display()
        )
    );
    let mode = std::fs::metadata(&password_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        std::fs::read_to_string(&password_file).unwrap(),
        "hunter2\n"
    );
    let text = site.text();
    assert!(!text.contains("hunter2"));
    assert!(text.ends_with(&format!(
        "# end of file\n\n[[cameras]]\nname = \"yard\"\nurl = \"rtsp://10.0.0.23:554/live\"\n\
         username = \"admin\"\npassword_file = \"{}\"\ndetect_fps = 1.5\ntransport = \"udp\"\n",
        password_file.display()
    )));
    assert_eq!(
        watchpost(&["config", "validate", site.arg()]).stdout,
        format!("{file}: ok (3 cameras)\n")
    );

    let run = site.run(&["camera", "list"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "NAME       URL                                  DETECT_FPS  ZONES  LINES\n\
         gate-east  rtsp://10.0.0.21:554/stream1         5           -      -\n\
         gate-west  rtsp://10.0.0.22:554/stream1         2.5         -      -\n\
         yard       rtsp://admin:***@10.0.0.23:554/live  1.5         -      -\n"
    );
    let run = site.run(&["camera", "list", "--format", "json"]);
    let listed: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        listed[2],
        serde_json::json!({"name": "yard", "url": "rtsp://admin:***@10.0.0.23:554/live",
            "detect_fps": 1.5, "zones": [], "lines": []})
    );

    // Refusals: the file stays as it is.
    let before = site.text();
    let refusals: [(&[&str], &str); 5] = [
        (
            &["camera", "add", "gate-west", "rtsp://10.0.0.24/x"],
            "watchpost: error: FILE: the file already has a camera named `gate-west`",
        ),
        (
            &[
                "camera",
                "add",
                "dock",
                "rtsp://10.0.0.24/x",
                "--detect-fps",
                "90",
            ],
            "FILE:LINE: cameras[3].detect_fps: must be more than 0 and at most 60, got 90",
        ),
        (
            &["camera", "add", "dock", "http://10.0.0.24/x"],
            "FILE:LINE: cameras[3].url: `http://10.0.0.24/x` is not an RTSP URL",
        ),
        (
            &["camera", "remove", "dock"],
            "watchpost: error: FILE: there is no camera named `dock` (there are: gate-east, \
             gate-west, yard)",
        ),
        (
            &[
                "camera",
                "add",
                "dock",
                "rtsp://a:b@10.0.0.24/x",
                "--password-file",
                "/x",
            ],
            "watchpost: error: camera add: the URL has a password in it and --password-file is \
             given too: keep one",
        ),
    ];
    // The new camera would start after a blank line: header, name, url, detect_fps.
    let n = before.lines().count();
    for (args, expected) in refusals {
        let run = site.run(args);
        let line = if expected.contains("detect_fps") {
            n + 5
        } else {
            n + 4
        };
        let expected = expected
            .replace("FILE", &file)
            .replace("LINE", &line.to_string());
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with(&expected),
            "{args:?}:\n{}\nexpected:\n{expected}",
            run.stderr
        );
        assert_eq!(site.text(), before, "{args:?} changed the file");
    }
    assert!(!site.path("dock-password").exists());

    let run = site.run(&["camera", "remove", "yard"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("{file}: removed camera yard; 2 cameras left\n")
    );
    assert_eq!(
        site.text(),
        deploy_like().replace("{STATE}", &site.path("state").to_string_lossy())
    );

    // The audit log: both changes, the password as ***.
    let audit = site.audit();
    assert_eq!(audit.len(), 2);
    assert_audit_entry(&audit[0], "camera add", &site.file);
    assert_audit_entry(&audit[1], "camera remove", &site.file);
    let added = &audit[0]["changes"][0];
    assert_eq!(added["key"], "cameras.yard");
    assert_eq!(added["old"], Value::Null);
    assert_eq!(added["new"]["password"], "***");
    assert_eq!(added["new"]["username"], "admin");
    assert_eq!(added["new"]["url"], "rtsp://10.0.0.23:554/live");
    assert_eq!(audit[1]["changes"][0]["key"], "cameras.yard");
    assert_eq!(audit[1]["changes"][0]["new"], Value::Null);
    let log = std::fs::read_to_string(site.audit_path()).unwrap();
    assert!(!log.contains("hunter2"));
}

#[test]
fn zones_and_lines_are_added_checked_and_removed() {
    let site = Site::new(&deploy_like());
    let file = site.file.display().to_string();
    let original = site.text();

    let run = site.run(&[
        "camera",
        "zone",
        "add",
        "gate-east",
        "road",
        "--points",
        "0.1,0.4 0.9,0.4 0.9,0.95 0.1,0.95",
        "--classes",
        "person,vehicle",
        "--loiter",
        "60",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("{file}: added zone road to camera gate-east\n")
    );
    let run = site.run(&[
        "camera",
        "line",
        "add",
        "gate-west",
        "border",
        "--points",
        "0.5,0.2 0.5,0.95",
        "--directions",
        "in,out",
        "--classes",
        "person",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let text = site.text();
    assert!(text.contains(
        "\n[[cameras.zones]]\nname = \"road\"\npoints = [[0.1, 0.4], [0.9, 0.4], [0.9, 0.95], \
         [0.1, 0.95]]\nclasses = [\"person\", \"vehicle\"]\nloiter_s = 60\n"
    ));
    assert!(text.ends_with(
        "# end of file\n\n[[cameras.lines]]\nname = \"border\"\npoints = [[0.5, 0.2], [0.5, \
         0.95]]\ndirection_names = [\"in\", \"out\"]\nclasses = [\"person\"]\n"
    ));
    let run = site.run(&["camera", "list"]);
    assert!(
        run.stdout
            .contains("gate-east  rtsp://10.0.0.21:554/stream1  5           road   -\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("gate-west  rtsp://10.0.0.22:554/stream1  2.5         -      border\n"),
        "{}",
        run.stdout
    );

    // Refused by the loader (or before): the file stays as it is.
    let before = site.text();
    // The new zone's `points`: after road's 5 lines, a blank line, its header and name.
    let zone_line = line_of(&before, "[[cameras.zones]]") + 8;
    let refusals: [(&[&str], String); 6] = [
        (
            &[
                "camera",
                "zone",
                "add",
                "gate-east",
                "far",
                "--points",
                "0.1,0.1 1.5,0.1 0.5,0.5",
            ],
            format!(
                "{file}:{zone_line}: cameras[0].zones[1].points: point 2 (1.5, 0.1) is outside \
                 0..1"
            ),
        ),
        (
            &[
                "camera",
                "zone",
                "add",
                "gate-east",
                "bow",
                "--points",
                "0,0 1,1 1,0 0,1",
            ],
            format!("{file}:{zone_line}: cameras[0].zones[1].points: edges 1 and 3 cross"),
        ),
        (
            &[
                "camera",
                "zone",
                "add",
                "gate-east",
                "border",
                "--points",
                "0,0 1,0 1,1",
                "--classes",
                "dog",
            ],
            format!(
                "{file}:{}: cameras[0].zones[1].classes: `dog` is not a class",
                zone_line + 1
            ),
        ),
        (
            &[
                "camera",
                "line",
                "add",
                "gate-west",
                "road",
                "--points",
                "0,0 1,1",
                "--directions",
                "in,in",
            ],
            format!(
                "{file}:{}: cameras[1].lines[1].direction_names: `in` is given for both directions",
                before.lines().count() + 5
            ),
        ),
        (
            &[
                "camera",
                "line",
                "add",
                "gate-west",
                "border",
                "--points",
                "0,0 1,1",
                "--directions",
                "a,b",
            ],
            format!(
                "watchpost: error: {file}: camera `gate-west` already has a line named `border`"
            ),
        ),
        (
            &[
                "camera",
                "zone",
                "add",
                "nope",
                "x",
                "--points",
                "0,0 1,0 1,1",
            ],
            format!("watchpost: error: {file}: there is no camera named `nope`"),
        ),
    ];
    for (args, expected) in refusals {
        let run = site.run(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with(&expected),
            "{args:?}:\n{}\nexpected:\n{expected}",
            run.stderr
        );
        assert_eq!(site.text(), before, "{args:?} changed the file");
    }
    for (args, expected) in [
        (
            [
                "camera",
                "zone",
                "add",
                "gate-east",
                "x",
                "--points",
                "0.1;0.2",
            ],
            "watchpost: error: --points: `0.1;0.2` is not a point",
        ),
        (
            [
                "camera",
                "line",
                "add",
                "gate-east",
                "x",
                "--points",
                "0,0 1,1",
            ],
            "error: the following required arguments were not provided:",
        ),
    ] {
        let run = site.run(&args);
        assert_eq!(run.code, Some(2), "{args:?}");
        assert!(run.stderr.starts_with(expected), "{args:?}: {}", run.stderr);
    }

    let run = site.run(&["camera", "zone", "remove", "gate-east", "road"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("{file}: removed zone road from camera gate-east\n")
    );
    let run = site.run(&["camera", "line", "remove", "gate-west", "border"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(site.text(), original, "adding and removing left traces");
    let run = site.run(&["camera", "line", "remove", "gate-west", "border"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        format!(
            "watchpost: error: {file}: camera `gate-west` has no line named `border` (there are none)\n"
        )
    );

    let audit = site.audit();
    let commands: Vec<&str> = audit
        .iter()
        .map(|e| e["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        [
            "camera zone add",
            "camera line add",
            "camera zone remove",
            "camera line remove"
        ]
    );
    for entry in &audit {
        assert_eq!(entry["file"], file.as_str());
    }
    assert_eq!(
        audit[0]["changes"][0]["key"],
        "cameras.gate-east.zones.road"
    );
    assert_eq!(audit[0]["changes"][0]["new"]["loiter_s"], 60.0);
    assert_eq!(
        audit[1]["changes"][0]["key"],
        "cameras.gate-west.lines.border"
    );
    assert_eq!(audit[2]["changes"][0]["new"], Value::Null);
}

#[test]
fn init_without_a_terminal_takes_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("etc/watchpost.toml");
    let state = dir.path().join("state");
    let file_arg = file.to_str().unwrap();
    let state_arg = state.to_str().unwrap();

    // Missing options are named, in one line.
    let run = watchpost(&["config", "init", file_arg, "--site", "rafah"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "watchpost: error: config init: --id, --broker are needed (no terminal to ask on, or \
         --no-input)\n"
    );
    // A bad answer names its option.
    let base = [
        "config",
        "init",
        file_arg,
        "--no-input",
        "--site",
        "rafah",
        "--id",
        "post-3",
        "--state-dir",
        state_arg,
    ];
    for (extra, expected) in [
        (
            vec!["--broker", "mqtt://broker:99999"],
            "watchpost: error: --broker: `mqtt://broker:99999` has port `99999`, expected a \
             number 1..65535",
        ),
        (
            vec![
                "--broker",
                "mqtt://b",
                "--camera-name",
                "gate 1",
                "--camera-url",
                "rtsp://c/",
            ],
            "watchpost: error: --camera-name: `gate 1` is not usable in an MQTT topic",
        ),
        (
            vec!["--broker", "mqtt://b", "--camera-name", "gate-1"],
            "watchpost: error: --camera-name needs --camera-url",
        ),
    ] {
        let mut args = base.to_vec();
        args.extend(extra);
        let run = watchpost(&args);
        assert_eq!(run.code, Some(2), "{args:?}");
        assert!(run.stderr.starts_with(expected), "{}", run.stderr);
        assert!(!file.exists());
    }

    let mut args = base.to_vec();
    args.extend([
        "--broker",
        "mqtt://10.9.0.5:1883,mqtt://10.9.0.6:1883",
        "--mqtt-user",
        "wp",
        "--camera-name",
        "gate-1",
        "--camera-url",
        "rtsp://admin:hunter2@10.9.0.21:554/stream1",
    ]);
    let run = watchpost(&args);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let password_file = dir.path().join("etc/gate-1-password");
    assert_eq!(
        run.stdout,
        format!(
            "{file_arg}: written and valid (1 camera)\nCamera password: {} (mode 0600)\n\
             Next: watchpost run --config {file_arg}\n",
            password_file.display()
        )
    );
    let validated = watchpost(&["config", "validate", file_arg]);
    assert_eq!(validated.stdout, format!("{file_arg}: ok (1 camera)\n"));
    let text = std::fs::read_to_string(&file).unwrap();
    for line in [
        "site = \"rafah\"",
        "id = \"post-3\"",
        "url = [\"mqtt://10.9.0.5:1883\", \"mqtt://10.9.0.6:1883\"]",
        "username = \"wp\"",
        "name = \"gate-1\"",
        "url = \"rtsp://10.9.0.21:554/stream1\"",
        "username = \"admin\"",
        &format!("password_file = \"{}\"", password_file.display()),
        "# Check it after every change:   watchpost config validate /etc/watchpost/watchpost.toml",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    assert!(!text.contains("hunter2"));
    let mode = std::fs::metadata(&password_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // It is not replaced without --force.
    let run = watchpost(&args);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .starts_with(&format!("watchpost: error: {file_arg} exists: use --force")),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    let log = std::fs::read_to_string(state.join("audit.log")).unwrap();
    assert!(!log.contains("hunter2"));
    let entries: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 1);
    assert_audit_entry(&entries[0], "config init", &file);
    let changes = entries[0]["changes"].as_array().unwrap();
    let change = |key: &str| {
        changes
            .iter()
            .find(|c| c["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {changes:?}"))
    };
    assert_eq!(change("device")["new"]["site"], "rafah");
    assert_eq!(change("cameras.gate-1")["new"]["password"], "***");
    assert_eq!(change("cameras.gate-1.password")["new"], "***");

    // Without a camera: written, and `camera add` completes it.
    let bare = dir.path().join("bare.toml");
    let run = watchpost(&[
        "config",
        "init",
        bare.to_str().unwrap(),
        "--site",
        "rafah",
        "--id",
        "post-4",
        "--broker",
        "mqtt://10.9.0.5",
        "--state-dir",
        state_arg,
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("no camera yet: add one with `watchpost camera add"),
        "{}",
        run.stdout
    );
    let validated = watchpost(&["config", "validate", bare.to_str().unwrap()]);
    assert_eq!(validated.code, Some(2));
    assert!(
        validated
            .stderr
            .contains(": cameras: missing: at least one [[cameras]] table")
    );
    let run = watchpost(&[
        "camera",
        "add",
        "gate-1",
        "rtsp://10.9.0.21/s",
        "--config",
        bare.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let validated = watchpost(&["config", "validate", bare.to_str().unwrap()]);
    assert_eq!(validated.code, Some(0), "{}", validated.stderr);
}

#[test]
fn every_command_has_an_example() {
    let commands: [&[&str]; 12] = [
        &["config", "init"],
        &["config", "show"],
        &["config", "set"],
        &["camera", "add"],
        &["camera", "remove"],
        &["camera", "list"],
        &["camera", "zone"],
        &["camera", "zone", "add"],
        &["camera", "zone", "remove"],
        &["camera", "line"],
        &["camera", "line", "add"],
        &["camera", "line", "remove"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let run = watchpost(&args);
        assert_eq!(run.code, Some(0), "{command:?}: {}", run.stderr);
        let example = run
            .stdout
            .split_once("\nExample:\n  ")
            .map(|(_, example)| example)
            .unwrap_or_else(|| panic!("{command:?}: no example:\n{}", run.stdout));
        // One of its commands is this one.
        let shown = format!("watchpost {}", command.join(" "));
        assert!(
            example.lines().any(|l| l
                .trim_start()
                .trim_start_matches("sudo ")
                .starts_with(&shown)),
            "{command:?}: {example}"
        );
        // No example line is wrapped: each is a command or the continuation of one.
        let lines: Vec<&str> = example.lines().collect();
        for pair in lines.windows(2) {
            assert!(
                pair[1].trim_start().starts_with("watchpost") || pair[0].ends_with('\\'),
                "{command:?}: wrapped example:\n{example}"
            );
        }
    }
}

#[test]
fn a_refused_file_can_be_mended_with_set() {
    let site = Site::new(&replace_once(
        &deploy_like(),
        "detect_fps = 5   # enough here",
        "detect_fps = 0   # enough here",
    ));
    assert_eq!(watchpost(&["config", "validate", site.arg()]).code, Some(2));
    let run = site.run(&["config", "set", "cameras.gate-east.detect_fps", "4"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(site.text().contains("\ndetect_fps = 4   # enough here\n"));
    assert_eq!(watchpost(&["config", "validate", site.arg()]).code, Some(0));
    // The file before could not be read as a whole: the entry has the key that changed, as it
    // was written.
    let audit = site.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        audit[0]["changes"],
        serde_json::json!([{"key": "cameras.gate-east.detect_fps", "old": 0, "new": 4.0}])
    );
}

/// The package installs the example as `/etc/watchpost/watchpost.toml`, `root:watchpost` 0640,
/// and the README's second line is `sudo watchpost config init`: the untouched example is
/// replaced without --force, keeps its owner and mode, and the password files written beside it
/// can be read by the service's group (as root; otherwise they are 0600).
#[test]
fn init_replaces_the_packaged_example_and_shares_passwords_with_its_group() {
    const SERVICE_GROUP: u32 = 65534;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("watchpost.toml");
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/watchpost.toml"),
    )
    .unwrap();
    std::fs::write(&file, &example).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::os::unix::fs::chown(&file, Some(0), Some(SERVICE_GROUP)).unwrap();
    }
    let state = dir.path().join("state");
    let args = [
        "config",
        "init",
        file.to_str().unwrap(),
        "--no-input",
        "--site",
        "rafah",
        "--id",
        "post-3",
        "--broker",
        "mqtt://10.9.0.5",
        "--state-dir",
        state.to_str().unwrap(),
        "--camera-name",
        "gate-1",
        "--camera-url",
        "rtsp://admin:hunter2@10.9.0.21:554/stream1",
    ];
    let run = watchpost(&args);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let password_file = dir.path().join("gate-1-password");
    let expected_mode = if root { 0o640 } else { 0o600 };
    assert!(
        run.stdout.contains(&format!(
            "Camera password: {} (mode {expected_mode:04o})\n",
            password_file.display()
        )),
        "{}",
        run.stdout
    );
    let config_meta = std::fs::metadata(&file).unwrap();
    let password_meta = std::fs::metadata(&password_file).unwrap();
    assert_eq!(config_meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(password_meta.permissions().mode() & 0o777, expected_mode);
    if root {
        use std::os::unix::fs::MetadataExt;
        assert_eq!((config_meta.uid(), config_meta.gid()), (0, SERVICE_GROUP));
        assert_eq!(
            (password_meta.uid(), password_meta.gid()),
            (0, SERVICE_GROUP)
        );
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.lines().any(|l| l == "site = \"rafah\""), "{text}");

    // Once it is the site's own configuration, it is only replaced with --force.
    let run = watchpost(&args);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("exists: use --force"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}
