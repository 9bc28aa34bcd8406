//! `watchpost config validate` driven as a technician would: real binary, files on disk.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use common::Run;

const MINIMAL: &str = r#"[device]
site = "bihac-north"
id = "post-07"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[[cameras]]
name = "gate-east"
url = "rtsp://10.0.0.21:554/stream1"
detect_fps = 5
"#;

fn validate(path: &Path) -> Run {
    validate_with_env(path, None)
}

/// `config validate` with `WATCHPOST_MQTT_PASSWORD` set to `mqtt_password` (or unset, whatever
/// the test process has).
fn validate_with_env(path: &Path, mqtt_password: Option<&str>) -> Run {
    let mut command = cargo_bin_cmd!("watchpost");
    command.args(["config", "validate"]).arg(path);
    match mqtt_password {
        Some(password) => command.env("WATCHPOST_MQTT_PASSWORD", password),
        None => command.env_remove("WATCHPOST_MQTT_PASSWORD"),
    };
    let output = command.output().unwrap();
    Run::from(output)
}

/// Writes `text` as `watchpost.toml` in a fresh folder (kept alive by the returned guard).
fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchpost.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn minimal_file_is_valid() {
    let (_dir, path) = write_config(MINIMAL);
    let run = validate(&path);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, format!("{}: ok (1 camera)\n", path.display()));
    assert_eq!(run.stderr, "");
}

#[test]
fn deploy_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/watchpost.toml");
    let run = validate(&path);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, format!("{}: ok (1 camera)\n", path.display()));
}

/// The zone and line of the tracking issue; appended to MINIMAL they are lines 10 to 17.
const ZONE_AND_LINE: &str = r#"[[cameras.zones]]
name = "road"
points = [[0.1, 0.4], [0.9, 0.4], [0.9, 0.95], [0.1, 0.95]]
classes = ["person", "vehicle"]
[[cameras.lines]]
name = "border"
points = [[0.5, 0.2], [0.5, 0.95]]
direction_names = ["in", "out"]   # first: crossing from the left to the right side, looking from the first point to the last
"#;

#[test]
fn the_issue_example_zone_and_line_are_valid() {
    let text = format!(
        "{MINIMAL}{ZONE_AND_LINE}[tracking]\ninertia = 5\n[events]\nsnapshots = \"redacted\"\n"
    );
    let (_dir, path) = write_config(&text);
    let run = validate(&path);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, format!("{}: ok (1 camera)\n", path.display()));
    assert_eq!(run.stderr, "");
}

#[test]
fn each_bad_zone_line_or_event_setting_names_the_line_and_the_problem() {
    let with = |from: &str, to: &str| {
        let text = format!("{MINIMAL}{ZONE_AND_LINE}");
        assert!(text.contains(from), "{from}");
        text.replacen(from, to, 1)
    };
    // name, file text, expected line, expected text after `FILE:LINE: `
    let cases: &[(&str, String, usize, &str)] = &[
        (
            "self-intersecting polygon",
            with("[0.9, 0.95], [0.1, 0.95]", "[0.1, 0.95], [0.9, 0.95]"),
            12,
            "cameras[0].zones[0].points: edges 2 and 4 cross",
        ),
        (
            "2-point polygon",
            with(
                "[[0.1, 0.4], [0.9, 0.4], [0.9, 0.95], [0.1, 0.95]]",
                "[[0.1, 0.4], [0.9, 0.4]]",
            ),
            12,
            "cameras[0].zones[0].points: a polygon needs at least 3 points, got 2",
        ),
        (
            "coordinate 1.2",
            with("[0.9, 0.4]", "[1.2, 0.4]"),
            12,
            "cameras[0].zones[0].points: point 2 (1.2, 0.4) is outside 0..1",
        ),
        (
            "polygon closed by repeating the first point",
            with("[0.1, 0.95]]", "[0.1, 0.95], [0.1, 0.4]]"),
            12,
            "cameras[0].zones[0].points: the last point repeats the first (0.1, 0.4): leave it out",
        ),
        (
            "point that is not a pair",
            with("[0.9, 0.4]", "[0.9, 0.4, 0.5]"),
            12,
            "cameras[0].zones[0].points: a point is [x, y], got 3 numbers",
        ),
        (
            "line with identical points",
            with("[[0.5, 0.2], [0.5, 0.95]]", "[[0.5, 0.2], [0.5, 0.2]]"),
            16,
            "cameras[0].lines[0].points: points 1 and 2 are the same (0.5, 0.2): leave one out",
        ),
        (
            "duplicate zone/line name",
            with("name = \"border\"", "name = \"road\""),
            15,
            "cameras[0].lines[0].name: `road` is already the name of cameras[0].zones[0]; zone and \
             line names must differ within a camera",
        ),
        (
            "duplicate zone name",
            format!(
                "{MINIMAL}{}",
                ZONE_AND_LINE
                    .replace("border", "road")
                    .replace("cameras.lines", "cameras.zones")
            )
            .replace(
                "points = [[0.5, 0.2], [0.5, 0.95]]",
                "points = [[0.5, 0.2], [0.5, 0.95], [0.2, 0.9]]",
            )
            .replace("direction_names = [\"in\", \"out\"]", ""),
            15,
            "cameras[0].zones[1].name: `road` is already the name of cameras[0].zones[0]",
        ),
        (
            "bad class",
            with("[\"person\", \"vehicle\"]", "[\"person\", \"bicycle\"]"),
            13,
            "cameras[0].zones[0].classes: `bicycle` is not a class: use `person` or `vehicle`",
        ),
        (
            "bad direction name",
            with("[\"in\", \"out\"]", "[\"in\", \"out/back\"]"),
            17,
            "cameras[0].lines[0].direction_names: `out/back` is not usable in an MQTT topic: `/` \
             is not allowed",
        ),
        (
            "same direction name twice",
            with("[\"in\", \"out\"]", "[\"in\", \"in\"]"),
            17,
            "cameras[0].lines[0].direction_names: `in` is given for both directions",
        ),
        (
            "three direction names",
            with("[\"in\", \"out\"]", "[\"in\", \"out\", \"up\"]"),
            17,
            "cameras[0].lines[0].direction_names: must be exactly 2 names, got 3",
        ),
        (
            "loiter_s 0",
            with("classes = [\"person\", \"vehicle\"]", "loiter_s = 0"),
            13,
            "cameras[0].zones[0].loiter_s: must be more than 0 and at most 86400",
        ),
        (
            "zone inertia 0",
            with("classes = [\"person\", \"vehicle\"]", "inertia = 0"),
            13,
            "cameras[0].zones[0].inertia: must be between 1 and 100, got 0",
        ),
        (
            "bad snapshots mode",
            format!("{MINIMAL}{ZONE_AND_LINE}[events]\nsnapshots = \"blurred\"\n"),
            19,
            "events.snapshots: `blurred` is not a snapshot mode: use `off`, `annotated` or \
             `redacted`",
        ),
        (
            "bad snapshot kind",
            format!("{MINIMAL}[events]\nsnapshot_kinds = [\"zone_entry\"]\n"),
            11,
            "events.snapshot_kinds: `zone_entry` is not an event kind",
        ),
        (
            "tracking inertia out of range",
            format!("{MINIMAL}[tracking]\ninertia = 0\n"),
            11,
            "tracking.inertia: must be between 1 and 100, got 0",
        ),
        (
            "tracking max_age_s out of range",
            format!("{MINIMAL}[tracking]\nmax_age_s = 0\n"),
            11,
            "tracking.max_age_s: must be between 0.1 and 60, got 0",
        ),
    ];
    for (name, text, line, expected) in cases {
        let (_dir, path) = write_config(text);
        let run = validate(&path);
        assert_eq!(run.code, Some(2), "{name}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{name}");
        let prefix = format!("{}:{line}: ", path.display());
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{name}: one problem expected:\n{}",
            run.stderr
        );
        assert!(
            lines[0].starts_with(&prefix) && lines[0][prefix.len()..].starts_with(expected),
            "{name}: expected `{prefix}{expected}...`, got:\n{}",
            run.stderr
        );
    }
}

#[test]
fn the_local_endpoint_on_loopback_or_off_is_valid() {
    for listen in ["127.0.0.1:9750", "127.0.0.2:80", "[::1]:19750", ""] {
        let text = format!("{MINIMAL}[local]\nlisten = \"{listen}\"\n");
        let (_dir, path) = write_config(&text);
        let run = validate(&path);
        assert_eq!(run.code, Some(0), "{listen}: {}", run.stderr);
        assert_eq!(run.stdout, format!("{}: ok (1 camera)\n", path.display()));
    }
}

#[test]
fn two_cameras_are_counted() {
    let text = format!("{MINIMAL}[[cameras]]\nname = \"gate-west\"\nurl = \"rtsp://cam-2/s\"\n");
    let (_dir, path) = write_config(&text);
    let run = validate(&path);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, format!("{}: ok (2 cameras)\n", path.display()));
}

#[test]
fn each_bad_file_names_the_line_and_the_problem() {
    let no_cameras = &MINIMAL[..MINIMAL.find("[[cameras]]").unwrap()];
    // name, file text, expected line, expected text after `FILE:LINE: `
    let cases: &[(&str, String, Option<usize>, &str)] = &[
        (
            "unknown top-level key",
            format!("{MINIMAL}[recording]\nenabled = true\n"),
            Some(10),
            "recording: unknown key `recording`",
        ),
        (
            "unknown key in tracking",
            format!("{MINIMAL}[tracking]\nenabled = true\n"),
            Some(11),
            "tracking.enabled: unknown field `enabled`, expected one of",
        ),
        (
            "unknown key in mqtt",
            MINIMAL.replace("[mqtt]\n", "[mqtt]\nhost = \"broker\"\n"),
            Some(5),
            "mqtt.host: unknown field `host`, expected one of",
        ),
        (
            "unknown key in a camera",
            format!("{MINIMAL}fps = 5\n"),
            Some(10),
            "cameras[0].fps: unknown field `fps`",
        ),
        (
            "local endpoint open to the network",
            format!("{MINIMAL}[local]\nlisten = \"0.0.0.0:9750\"\n"),
            Some(11),
            "local.listen: `0.0.0.0:9750` is not a loopback address: to open the local endpoint \
             to the network, set [local] password_file",
        ),
        (
            "local endpoint without a port",
            format!("{MINIMAL}[local]\nlisten = \"127.0.0.1\"\n"),
            Some(11),
            "local.listen: `127.0.0.1` is not an address with a port: write it as \
             `127.0.0.1:9750`",
        ),
        (
            "local endpoint on port 0",
            format!("{MINIMAL}[local]\nlisten = \"[::1]:0\"\n"),
            Some(11),
            "local.listen: `[::1]:0`: port 0 would be a different port at every start",
        ),
        (
            "wrong type",
            MINIMAL.replace("detect_fps = 5", "detect_fps = \"5\""),
            Some(9),
            "cameras[0].detect_fps: invalid type: string \"5\", expected a number",
        ),
        (
            "duplicate camera names",
            format!("{MINIMAL}[[cameras]]\nname = \"gate-east\"\nurl = \"rtsp://cam-2/s\"\n"),
            Some(11),
            "cameras[1].name: `gate-east` is already the name of cameras[0]",
        ),
        (
            "camera name with a space",
            MINIMAL.replace("\"gate-east\"", "\"gate east\""),
            Some(7),
            "cameras[0].name: `gate east` is not usable in an MQTT topic: ` ` is not allowed",
        ),
        (
            "camera name with a slash",
            MINIMAL.replace("\"gate-east\"", "\"gate/east\""),
            Some(7),
            "cameras[0].name: `gate/east` is not usable in an MQTT topic: `/` is not allowed",
        ),
        (
            "http camera URL",
            MINIMAL.replace("rtsp://10.0.0.21:554", "http://10.0.0.21:80"),
            Some(8),
            "cameras[0].url: `http://10.0.0.21:80/stream1` is not an RTSP URL",
        ),
        (
            "camera URL without host",
            MINIMAL.replace("rtsp://10.0.0.21:554", "rtsp://"),
            Some(8),
            "cameras[0].url: `rtsp:///stream1` has no host",
        ),
        (
            "bad mqtt URL",
            MINIMAL.replace("mqtt://127.0.0.1:1883", "mqtt://127.0.0.1:99999"),
            Some(5),
            "mqtt.url: `mqtt://127.0.0.1:99999` has port `99999`",
        ),
        (
            "mqtt URL of another scheme",
            MINIMAL.replace("mqtt://127.0.0.1:1883", "tcp://127.0.0.1:1883"),
            Some(5),
            "mqtt.url: `tcp://127.0.0.1:1883` is not an MQTT URL",
        ),
        (
            "duplicate broker in a URL list",
            MINIMAL.replace(
                "url = \"mqtt://127.0.0.1:1883\"",
                "url = [\"mqtt://127.0.0.1:1883\", \"mqtt://127.0.0.1\"]",
            ),
            Some(5),
            "mqtt.url[1]: `mqtt://127.0.0.1:1883` is listed twice (also as mqtt.url[0]): list \
             each broker once",
        ),
        (
            "mqtt:// and mqtts:// in one URL list",
            MINIMAL.replace(
                "url = \"mqtt://127.0.0.1:1883\"",
                "url = [\"mqtts://broker-1:8883\", \"mqtt://broker-2:1883\"]",
            ),
            Some(5),
            "mqtt.url: mixes mqtt:// and mqtts:// URLs: use one scheme for every broker",
        ),
        (
            "empty URL list",
            MINIMAL.replace("url = \"mqtt://127.0.0.1:1883\"", "url = []"),
            Some(5),
            "mqtt.url: the list is empty: give at least one broker URL",
        ),
        (
            "17 broker URLs",
            MINIMAL.replace(
                "url = \"mqtt://127.0.0.1:1883\"",
                &format!(
                    "url = [{}]",
                    (1..=17)
                        .map(|i| format!("\"mqtt://10.0.0.{i}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Some(5),
            "mqtt.url: lists 17 broker URLs, at most 16 are allowed",
        ),
        (
            "bad URL in a list",
            MINIMAL.replace(
                "url = \"mqtt://127.0.0.1:1883\"",
                "url = [\n  \"mqtt://broker-1\",\n  \"tcp://broker-2\",\n]",
            ),
            Some(7),
            "mqtt.url[1]: `tcp://broker-2` is not an MQTT URL",
        ),
        (
            "tls_verify = false without TLS",
            MINIMAL.replace("[mqtt]\n", "[mqtt]\ntls_verify = false\n"),
            Some(5),
            "mqtt.tls_verify: `tls_verify = false` is about the certificate of an mqtts:// broker, \
             and the broker URL is mqtt:// (no TLS)",
        ),
        (
            "client certificate without TLS",
            // Both files exist (the configuration itself): only the scheme is wrong.
            MINIMAL.replace(
                "[mqtt]\n",
                "[mqtt]\nclient_cert = \"watchpost.toml\"\nclient_key = \"watchpost.toml\"\n",
            ),
            Some(5),
            "mqtt.client_cert: a client certificate is only sent over TLS, and the broker URL is \
             mqtt://",
        ),
        (
            "client certificate without its key",
            MINIMAL
                .replace("mqtt://127.0.0.1:1883", "mqtts://127.0.0.1:8883")
                .replace("[mqtt]\n", "[mqtt]\nclient_cert = \"client.pem\"\n"),
            Some(5),
            "mqtt.client_cert: `client_cert` is set but `client_key` is not: set both",
        ),
        (
            "missing client key file",
            MINIMAL
                .replace("mqtt://127.0.0.1:1883", "mqtts://127.0.0.1:8883")
                .replace(
                    "[mqtt]\n",
                    "[mqtt]\nclient_cert = \"watchpost.toml\"\nclient_key = \"client.key\"\n",
                ),
            Some(6),
            "mqtt.client_key: cannot use `",
        ),
        (
            "unknown key in outbox",
            format!("{MINIMAL}[outbox]\nmax_size = 5\n"),
            Some(11),
            "outbox.max_size: unknown field `max_size`, expected one of",
        ),
        (
            "outbox size 0",
            format!("{MINIMAL}[outbox]\nmax_size_mb = 0\n"),
            Some(11),
            "outbox.max_size_mb: must be between 1 and 1048576, got 0",
        ),
        (
            "outbox age too long",
            format!("{MINIMAL}[outbox]\nmax_age_h = 9000\n"),
            Some(11),
            "outbox.max_age_h: must be between 0.01 and 8760, got 9000",
        ),
        (
            "bad outbox policy",
            format!("{MINIMAL}[outbox]\nwhen_full = \"block\"\n"),
            Some(11),
            "outbox.when_full: `block` is not a choice: use `drop_oldest` or `drop_newest`",
        ),
        (
            "bad outbox sync",
            format!("{MINIMAL}[outbox]\nsync = \"always\"\n"),
            Some(11),
            "outbox.sync: `always` is not a sync policy: use `every_event`, `interval` or `never`",
        ),
        (
            "sync interval without sync = interval",
            format!("{MINIMAL}[outbox]\nsync = \"never\"\nsync_interval_ms = 500\n"),
            Some(12),
            "outbox.sync_interval_ms: only used with sync = \"interval\", and sync is `never`",
        ),
        (
            "sync interval out of range",
            format!("{MINIMAL}[outbox]\nsync = \"interval\"\nsync_interval_ms = 5\n"),
            Some(12),
            "outbox.sync_interval_ms: must be between 10 and 60000, got 5",
        ),
        (
            "detect_fps 0",
            MINIMAL.replace("detect_fps = 5", "detect_fps = 0"),
            Some(9),
            "cameras[0].detect_fps: must be more than 0 and at most 60, got 0",
        ),
        (
            "detect_fps 61",
            MINIMAL.replace("detect_fps = 5", "detect_fps = 61"),
            Some(9),
            "cameras[0].detect_fps: must be more than 0 and at most 60, got 61",
        ),
        (
            "no cameras at all",
            no_cameras.to_owned(),
            None,
            "cameras: missing: at least one [[cameras]] table",
        ),
        (
            "empty camera list",
            format!("cameras = []\n{no_cameras}"),
            Some(1),
            "cameras: at least one camera is needed",
        ),
        (
            "password and password_file",
            format!(
                "{MINIMAL}username = \"viewer\"\npassword = \"pw\"\npassword_file = \"pw.txt\"\n"
            ),
            Some(12),
            "cameras[0].password_file: `password` and `password_file` are both set",
        ),
        (
            "missing password_file",
            format!("{MINIMAL}username = \"viewer\"\npassword_file = \"gate-east.pw\"\n"),
            Some(11),
            "cameras[0].password_file: cannot read `",
        ),
        (
            "TOML syntax error",
            MINIMAL.replace("id = \"post-07\"", "id = post-07"),
            Some(3),
            "string values must be quoted",
        ),
    ];
    for (name, text, line, expected) in cases {
        let (_dir, path) = write_config(text);
        let run = validate(&path);
        assert_eq!(run.code, Some(2), "{name}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{name}");
        let prefix = match line {
            Some(line) => format!("{}:{line}: ", path.display()),
            None => format!("{}: ", path.display()),
        };
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{name}: one problem expected:\n{}",
            run.stderr
        );
        assert!(
            lines[0].starts_with(&prefix) && lines[0][prefix.len()..].starts_with(expected),
            "{name}: expected `{prefix}{expected}...`, got:\n{}",
            run.stderr
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"[device]
site = "bihac-north"
id = "post/07"
colour = "green"
[mqtt]
url = "mqtt://broker:1883/watchpost"
detections_qos = 3
[[cameras]]
name = "gate-east"
url = "http://10.0.0.21/stream1"
[[cameras]]
name = "gate-west"
url = "rtsp://10.0.0.22/stream1"
detect_fps = 0
"#;
    let (_dir, path) = write_config(text);
    let run = validate(&path);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    let file = path.display();
    let expected = [
        // Not hidden by the unknown key next to it.
        format!("{file}:3: device.id: `post/07` is not usable in an MQTT topic"),
        format!("{file}:4: device.colour: unknown field `colour`"),
        format!("{file}:6: mqtt.url: `mqtt://broker:1883/watchpost` has a path"),
        format!("{file}:7: mqtt.detections_qos: must be between 0 and 2, got 3"),
        format!("{file}:10: cameras[0].url: `http://10.0.0.21/stream1` is not an RTSP URL"),
        format!("{file}:14: cameras[1].detect_fps: must be more than 0 and at most 60, got 0"),
    ];
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{}", run.stderr);
    for (line, expected) in lines.iter().zip(&expected) {
        assert!(
            line.starts_with(expected.as_str()),
            "`{line}` is not `{expected}...`"
        );
    }
}

#[test]
fn camera_passwords_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw.txt"), "s3cr3t-pw-file\n").unwrap();
    let in_url = MINIMAL.replace("rtsp://", "rtsp://admin:s3cr3t-pw@");
    let files = [
        // valid
        in_url.clone(),
        format!("{MINIMAL}username = \"admin\"\npassword = \"s3cr3t-pw\"\n"),
        format!("{MINIMAL}username = \"admin\"\npassword_file = \"pw.txt\"\n"),
        // invalid, with the password in the URL or field
        format!("{in_url}username = \"admin\"\n"),
        in_url.replace("10.0.0.21:554", "10.0.0.21:rtsp"),
        in_url.replace("rtsp://", "http://"),
        in_url.replace("@10.0.0.21:554", "@"),
        MINIMAL.replace("rtsp://", "rtsp://admin:s3cr3t/pw@"),
        MINIMAL.replace("rtsp://10.0.0.21:554/stream1", "admin:s3cr3t-pw@10.0.0.21"),
        format!("{in_url}detect_fps = 0\n").replace("detect_fps = 5\n", ""),
        format!("{MINIMAL}password = \"s3cr3t-pw\"\npassword_file = \"pw.txt\"\n"),
        format!("{MINIMAL}password = \"s3cr3t-pw\"\ncolour = 1\n"),
        format!("{MINIMAL}username = \"admin\"\npassword = 5123123\n"),
        format!("{MINIMAL}username = \"admin\"\npassword = 3.14159\n"),
        format!("{MINIMAL}password_file = \"pw.txt\"\n"),
        MINIMAL.replace("mqtt://", "mqtt://agent:s3cr3t-pw@"),
    ];
    for (i, text) in files.iter().enumerate() {
        let path = dir.path().join(format!("watchpost-{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let run = validate(&path);
        let expected_code = if i < 3 { 0 } else { 2 };
        assert_eq!(run.code, Some(expected_code), "{text}\n{}", run.stderr);
        for secret in ["s3cr3t", "5123123", "3.14159"] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "`{secret}` printed for\n{text}\nstdout: {}\nstderr: {}",
                run.stdout,
                run.stderr
            );
        }
    }
}

#[test]
fn mqtt_password_from_the_environment_is_used_and_never_printed() {
    let with_user = MINIMAL.replace("[mqtt]\n", "[mqtt]\nusername = \"agent\"\n");
    let (_dir, path) = write_config(&with_user);
    let run = validate_with_env(&path, Some("s3cr3t-env-pw"));
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(!run.stdout.contains("s3cr3t") && !run.stderr.contains("s3cr3t"));

    // No user name: the variable would be ignored by the broker; refused, naming it.
    let (_dir, path) = write_config(MINIMAL);
    let run = validate_with_env(&path, Some("s3cr3t-env-pw"));
    assert_eq!(run.code, Some(2), "stdout: {}", run.stdout);
    assert_eq!(
        run.stderr,
        format!(
            "{}:4: mqtt.username: the environment variable WATCHPOST_MQTT_PASSWORD sets a \
             password but there is no user name: add `username` (or unset \
             WATCHPOST_MQTT_PASSWORD)\n",
            path.display()
        )
    );
    // Empty counts as unset.
    let run = validate_with_env(&path, Some(""));
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    // A password in the file wins over the variable (and is checked as before).
    let text = with_user.replace(
        "username = \"agent\"\n",
        "username = \"agent\"\npassword = \"\"\n",
    );
    let (_dir, path) = write_config(&text);
    let run = validate_with_env(&path, Some("s3cr3t-env-pw"));
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("mqtt.password: must not be empty"),
        "{}",
        run.stderr
    );
}

#[test]
fn unreadable_file_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let run = validate(&path);
    assert_eq!(run.code, Some(2));
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        format!(
            "{}: cannot read: No such file or directory (os error 2)\n",
            path.display()
        )
    );
}

#[test]
fn help_has_an_example() {
    let output = cargo_bin_cmd!("watchpost")
        .args(["config", "validate", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("Example:"), "{help}");
    assert!(
        help.contains("watchpost config validate /etc/watchpost/watchpost.toml"),
        "{help}"
    );
}

#[test]
fn run_refuses_a_bad_config_with_exit_code_2_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[device]\nsite = \"s\"\nid = \"d\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n[[cameras]]\nname = \"a b\"\nurl = \"rtsp://h/x\"\ndetect_fps = 0\n",
    )
    .unwrap();
    let output = assert_cmd::cargo::cargo_bin_cmd!("watchpost")
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(stderr.contains(":7: cameras[0].name: "), "{stderr}");
    assert!(stderr.contains(":9: cameras[0].detect_fps: "), "{stderr}");
}
