//! `watchpost keys generate` and `watchpost command sign`, run as the central system's operator
//! would; what they print is checked with the library's own inbox (the device's side), the
//! JSON Schemas, and, where the openssl command exists, by openssl itself.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use assert_cmd::cargo::cargo_bin_cmd;
use watchpost::command::{
    self, Command, CommandMessage, DEFAULT_MAX_VALIDITY, DeviceId, Draft, Inbox, Outcome, Policy,
    Received, TrustedKeys, Verdict, keys,
};
use watchpost::config::TopicName;

use common::Run;

fn watchpost(args: &[&str]) -> Run {
    Run::from(cargo_bin_cmd!("watchpost").args(args).output().unwrap())
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `keys generate --out DIR --name NAME`, which must work.
fn generate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let run = watchpost(&["keys", "generate", "--out", path(dir), "--name", name]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    )
}

/// `command sign` with `args` after the key, which must work: the message.
fn sign(key: &Path, args: &[&str]) -> String {
    let run = watchpost(&[&["command", "sign", "--key", path(key)], args].concat());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    run.stdout
}

/// The device's inbox for `device`, trusting `public`, with counters in `state`.
fn inbox(device: &str, public: &Path, state: &Path) -> Inbox {
    let device = DeviceId::parse(device).unwrap();
    let topics = watchpost::publish::Topics::new("watchpost", &device.site, &device.device);
    let policy = Policy {
        topic: topics.command(),
        device,
        keys: TrustedKeys::load(&[public.to_owned()]).unwrap(),
        disabled: Default::default(),
        max_validity: DEFAULT_MAX_VALIDITY,
    };
    Inbox::open(policy, state)
}

fn receive(inbox: &mut Inbox, payload: &str) -> Verdict {
    let topic = inbox.policy().topic.clone();
    inbox.receive(
        Received {
            topic: &topic,
            payload: payload.as_bytes(),
            retained: false,
        },
        SystemTime::now(),
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn generated_keys_sign_a_command_the_device_accepts_and_another_device_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let run = watchpost(&[
        "keys",
        "generate",
        "--out",
        path(&keys_dir),
        "--name",
        "central",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let (private, public) = (keys_dir.join("central.key"), keys_dir.join("central.pub"));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&private), 0o600);
    assert!(run.stdout.contains("central.key") && run.stdout.contains("central.pub"));
    let secret_text = std::fs::read_to_string(&private).unwrap();
    let secret_body = secret_text.lines().nth(1).unwrap();
    assert!(!run.stdout.contains(secret_body) && !run.stdout.contains("PRIVATE KEY"));

    let message = sign(
        &private,
        &[
            "--device",
            "north/box-1",
            "--counter",
            "17",
            "--id",
            "op-1",
            "snapshot",
            r#"{"camera":"gate"}"#,
        ],
    );
    assert!(!message.contains(secret_body));
    common::mosquitto::validate("command", &json(&message)).unwrap();
    let parsed = CommandMessage::parse(message.as_bytes()).unwrap();
    assert_eq!((parsed.key_id.as_str(), parsed.counter), ("central", 17));
    assert_eq!(parsed.id, "op-1");

    let state = tempfile::tempdir().unwrap();
    let mut device = inbox("north/box-1", &public, state.path());
    let Verdict::Accepted(accepted) = receive(&mut device, &message) else {
        panic!("refused: {message}");
    };
    assert_eq!(
        accepted.command,
        Command::Snapshot {
            camera: TopicName::parse("gate").unwrap()
        }
    );
    let result = accepted.result(&Outcome::Done(None), SystemTime::now());
    common::mosquitto::validate("command-result", &json(&result.to_json())).unwrap();

    // The same message on another device's topic, or for another device: refused.
    let mut other = inbox("north/box-2", &public, state.path());
    let Verdict::Refused(refused) = receive(&mut other, &message) else {
        panic!("another device accepted it");
    };
    assert_eq!(refused.refusal.code(), "bad_signature");
    let result = refused.result(SystemTime::now()).unwrap();
    assert_eq!(result.id.as_deref(), Some("op-1"));
    common::mosquitto::validate("command-result", &json(&result.to_json())).unwrap();
    let for_box_2 = sign(
        &private,
        &["--device", "north/box-2", "--counter", "18", "ping"],
    );
    let Verdict::Refused(refused) = receive(&mut device, &for_box_2) else {
        panic!("box-1 accepted a command signed for box-2");
    };
    assert_eq!(refused.refusal.code(), "bad_signature");
    // And the device's own message again: a replay.
    let Verdict::Refused(refused) = receive(&mut device, &message) else {
        panic!("replay accepted");
    };
    assert_eq!(refused.refusal.code(), "replayed");
}

#[test]
fn messages_and_results_match_their_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = generate(dir.path(), "central");
    let state = tempfile::tempdir().unwrap();
    let mut device = inbox("north/box-1", &public, state.path());
    let mut counter = 100;
    let mut sign_args = |args: &[&str]| {
        counter += 1;
        let counter = counter.to_string();
        sign(
            &private,
            &[&["--device", "north/box-1", "--counter", &counter], args].concat(),
        )
    };
    let accepted = [
        sign_args(&["ping"]),
        sign_args(&["camera.enable", r#"{"camera":"yard"}"#]),
        sign_args(&["camera.disable", r#"{"camera":"yard"}"#]),
        sign_args(&["config.get", "{}"]),
        sign_args(&[
            "config.apply",
            r#"{"set":{"cameras.gate.detect_fps":2.5},"expected_version":"abc"}"#,
        ]),
        sign_args(&[
            "config.apply",
            r#"{"toml":"[device]\nsite = \"north\"\n","expected_version":"abc"}"#,
        ]),
        sign_args(&["status.publish"]),
        sign_args(&["--expires-in", "90s", "snapshot", r#"{"camera":"gate"}"#]),
    ];
    for message in &accepted {
        common::mosquitto::validate("command", &json(message)).unwrap();
        let Verdict::Accepted(done) = receive(&mut device, message) else {
            panic!("refused: {message}");
        };
        for outcome in [
            Outcome::Done(Some(serde_json::json!({"any": ["thing"]}))),
            Outcome::Failed("camera `yard` is not configured".to_owned()),
        ] {
            let result = done.result(&outcome, SystemTime::now()).to_json();
            common::mosquitto::validate("command-result", &json(&result)).unwrap();
        }
    }
    // Refusals, each with its result: garbage (id null), old counters, an unknown command, too
    // long.
    let identity = keys::read_private_key(&private).unwrap();
    let device_id = DeviceId::parse("north/box-1").unwrap();
    let topic = device.policy().topic.clone();
    let unknown = command::sign(
        &identity,
        &topic,
        &device_id,
        Draft {
            id: "x".to_owned(),
            command: "reboot".to_owned(),
            args: command::Args::empty(),
            issued_at: SystemTime::now(),
            valid_for: DEFAULT_MAX_VALIDITY,
            counter: 1000,
        },
    )
    .unwrap()
    .to_json();
    for (payload, code) in [
        ("not json".to_owned(), "malformed"),
        ("{}".to_owned(), "malformed"),
        (accepted[0].clone(), "counter_behind"),
        (accepted[7].clone(), "replayed"),
        (unknown, "unknown_command"),
        ("x".repeat(command::MAX_MESSAGE_BYTES + 1), "oversized"),
    ] {
        let Verdict::Refused(refused) = receive(&mut device, &payload) else {
            panic!("accepted {payload}");
        };
        assert_eq!(refused.refusal.code(), code);
        let result = refused.result(SystemTime::now()).unwrap().to_json();
        common::mosquitto::validate("command-result", &json(&result)).unwrap();
    }
    // What the schema refuses: an unknown field, a bad camera name.
    let mut extra = json(&accepted[0]);
    extra["extra"] = 1.into();
    assert!(common::mosquitto::validate("command", &extra).is_err());
    let mut bad_camera = json(&accepted[1]);
    bad_camera["args"]["camera"] = "a/b".into();
    assert!(common::mosquitto::validate("command", &bad_camera).is_err());
}

#[test]
fn mistakes_are_one_line_with_the_usual_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (private, _) = generate(dir.path(), "central");
    let secret_body = std::fs::read_to_string(&private).unwrap();
    let secret_body = secret_body.lines().nth(1).unwrap().to_owned();
    let key = path(&private);
    let missing = dir.path().join("missing.key");
    let public = dir.path().join("central.pub");
    let out = path(dir.path());
    let keys_generate = |name| vec!["keys", "generate", "--out", out, "--name", name];
    let command_sign = |key, device, counter, rest: &[&'static str]| {
        let start = [
            "command",
            "sign",
            "--key",
            key,
            "--device",
            device,
            "--counter",
            counter,
        ];
        [&start[..], rest].concat()
    };
    let (box_1, public, missing) = ("north/box-1", path(&public), path(&missing));
    // (arguments, exit code, words in the error)
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (keys_generate("central"), 1, "never overwritten"),
        (keys_generate("a.b"), 2, "key id"),
        (
            command_sign(key, box_1, "1", &["reboot"]),
            2,
            "unknown command",
        ),
        (command_sign(key, "north", "1", &["ping"]), 2, "SITE/DEVICE"),
        (command_sign(key, box_1, "0", &["ping"]), 2, "--counter"),
        (command_sign(key, box_1, "1", &["snapshot", "{"]), 2, "ARGS"),
        (
            command_sign(key, box_1, "1", &["snapshot", "{}"]),
            2,
            "missing field `camera`",
        ),
        (
            command_sign(key, box_1, "1", &["--id", "a b", "ping"]),
            2,
            "`id`",
        ),
        (
            command_sign(key, box_1, "1", &["--expires-in", "0s", "ping"]),
            2,
            "expires_at",
        ),
        (
            command_sign(missing, box_1, "1", &["ping"]),
            1,
            "missing.key: cannot read",
        ),
        (
            command_sign(public, box_1, "1", &["ping"]),
            1,
            "not an Ed25519 private key",
        ),
    ];
    for (args, code, words) in cases {
        let run = watchpost(&args);
        assert_eq!(run.code, Some(code), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(words), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(!run.stderr.contains(&secret_body), "{args:?}");
        // Ours are one line; clap's (bad values of an argument) add a hint to use --help.
        if run.stderr.starts_with("watchpost: error:") {
            assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        } else {
            assert!(
                run.stderr.starts_with("error: invalid value"),
                "{args:?}: {}",
                run.stderr
            );
        }
    }
}

/// The signed bytes as documented are what openssl verifies too, and a key openssl made signs
/// (skipped, saying so, without the openssl command).
#[test]
fn openssl_agrees_on_keys_and_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let openssl = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
    };
    if openssl(&["version"]).is_err() {
        eprintln!("openssl is not installed: not checked against openssl");
        return;
    }
    // openssl reads the keys `keys generate` writes.
    let (_, ours) = generate(dir.path(), "central");
    let derived = openssl(&["pkey", "-in", "central.key", "-pubout"]).unwrap();
    assert!(derived.status.success(), "{derived:?}");
    assert_eq!(
        String::from_utf8(derived.stdout).unwrap(),
        std::fs::read_to_string(&ours).unwrap()
    );
    // A key openssl made signs commands.
    let made = openssl(&["genpkey", "-algorithm", "ed25519", "-out", "ops.key"]).unwrap();
    assert!(made.status.success(), "{made:?}");
    let public = openssl(&["pkey", "-in", "ops.key", "-pubout", "-out", "ops.pub"]).unwrap();
    assert!(public.status.success(), "{public:?}");
    let message = sign(
        &dir.path().join("ops.key"),
        &["--device", "north/box-1", "--counter", "5", "ping"],
    );
    let state = tempfile::tempdir().unwrap();
    let mut device = inbox("north/box-1", &dir.path().join("ops.pub"), state.path());
    assert!(matches!(
        receive(&mut device, &message),
        Verdict::Accepted(_)
    ));

    // openssl checks the signature over the canonical bytes.
    use base64::Engine as _;
    let parsed = CommandMessage::parse(message.as_bytes()).unwrap();
    let bytes = command::canonical_bytes(
        &device.policy().topic,
        &DeviceId::parse("north/box-1").unwrap(),
        &parsed,
    );
    std::fs::write(dir.path().join("signed.bin"), &bytes).unwrap();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&parsed.signature)
        .unwrap();
    std::fs::write(dir.path().join("sig.bin"), signature).unwrap();
    let verify = |file: &str| {
        openssl(&[
            "pkeyutl", "-verify", "-pubin", "-inkey", "ops.pub", "-rawin", "-in", file, "-sigfile",
            "sig.bin",
        ])
        .unwrap()
    };
    let verified = verify("signed.bin");
    assert!(verified.status.success(), "{verified:?}");
    let mut other = bytes.clone();
    other[0] ^= 1;
    std::fs::write(dir.path().join("other.bin"), &other).unwrap();
    assert!(!verify("other.bin").status.success());
}
