//! The inbox from tables: every refusal, acceptance, a restart, the documented example, and
//! arbitrary or mutated payloads.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use proptest::prelude::*;

use super::*;
use crate::config::TopicName;

/// RFC 8032, section 7.1, test 1: the secret key.
const RFC8032_SECRET: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
const TOPIC: &str = "watchpost/north/box-1/cmd";
const NOW: &str = "2026-11-29T02:31:10Z";

fn name(s: &str) -> TopicName {
    TopicName::parse(s).unwrap()
}

fn time(text: &str) -> SystemTime {
    humantime::parse_rfc3339(text).unwrap()
}

fn device(text: &str) -> DeviceId {
    DeviceId::parse(text).unwrap()
}

fn central() -> SigningIdentity {
    SigningIdentity::from_secret(name("central"), &RFC8032_SECRET)
}

/// Another key pair, of the given id.
fn other_key(id: &str) -> SigningIdentity {
    SigningIdentity::from_secret(name(id), &[7; 32])
}

fn policy() -> Policy {
    let mut keys = TrustedKeys::default();
    keys.insert(central().public(), Path::new("central.pub"))
        .unwrap();
    Policy {
        device: device("north/box-1"),
        topic: TOPIC.to_owned(),
        keys,
        disabled: [CommandName::CameraDisable].into(),
        max_validity: DEFAULT_MAX_VALIDITY,
    }
}

/// A state folder and an inbox on it.
struct Env {
    dir: tempfile::TempDir,
    inbox: Inbox,
    now: SystemTime,
    /// The counter file just before the last message was received.
    counters_before_last: Option<Vec<u8>>,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(policy(), dir.path());
        Env {
            dir,
            inbox,
            now: time(NOW),
            counters_before_last: None,
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// The inbox again, from what is on disk (an agent restart).
    fn restart(&mut self) {
        self.inbox = Inbox::open(policy(), self.dir.path());
    }

    fn counter_file(&self) -> Option<Vec<u8>> {
        std::fs::read(CounterStore::file(self.dir.path())).ok()
    }

    fn receive_on(&mut self, topic: &str, payload: &[u8], retained: bool) -> Verdict {
        self.counters_before_last = self.counter_file();
        let received = Received {
            topic,
            payload,
            retained,
        };
        self.inbox.receive(received, self.now)
    }

    fn receive(&mut self, payload: &[u8]) -> Verdict {
        self.receive_on(TOPIC, payload, false)
    }
}

fn draft(command: &str, args: &str, counter: u64) -> Draft {
    Draft {
        id: format!("cmd-{counter}"),
        command: command.to_owned(),
        args: Args::parse(args).unwrap(),
        issued_at: time("2026-11-29T02:31:08Z"),
        valid_for: Duration::from_secs(300),
        counter,
    }
}

fn signed_as(key: &SigningIdentity, topic: &str, device_id: &str, draft: Draft) -> Vec<u8> {
    sign(key, topic, &device(device_id), draft)
        .unwrap()
        .to_json()
        .into_bytes()
}

fn signed(draft: Draft) -> Vec<u8> {
    signed_as(&central(), TOPIC, "north/box-1", draft)
}

/// A signed message changed by `edit` on its JSON (and, when `resign`, signed again).
fn edited(draft: Draft, resign: bool, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_slice(&signed(draft)).unwrap();
    edit(&mut value);
    if resign {
        let mut message: CommandMessage = serde_json::from_value(value).unwrap();
        set_signature(&central(), TOPIC, &device("north/box-1"), &mut message);
        return message.to_json().into_bytes();
    }
    value.to_string().into_bytes()
}

/// What a case expects.
#[derive(Debug)]
enum Expect {
    Accepted(Command),
    /// The code, and whether the result echoes the id.
    Refused(&'static str, bool),
}

fn ping() -> Draft {
    draft("ping", "{}", 5)
}

type Case = (&'static str, Box<dyn Fn(&mut Env) -> Verdict>, Expect);

fn cases() -> Vec<Case> {
    use Expect::{Accepted as Ok_, Refused as No};
    vec![
        (
            "ping",
            Box::new(|e| e.receive(&signed(ping()))),
            Ok_(Command::Ping),
        ),
        (
            "snapshot",
            Box::new(|e| e.receive(&signed(draft("snapshot", r#"{"camera":"gate"}"#, 7)))),
            Ok_(Command::Snapshot {
                camera: name("gate"),
            }),
        ),
        (
            "config.apply with a float, written otherwise than canonically",
            Box::new(|e| {
                let payload = edited(draft("config.apply", "{}", 8), true, |v| {
                    v["args"] = serde_json::json!({"set": {"cameras.gate.detect_fps": 2.5}, "expected_version": "v1"});
                });
                let text = String::from_utf8(payload).unwrap().replace("2.5", "2.50e0");
                e.receive(text.as_bytes())
            }),
            Ok_(Command::ConfigApply {
                change: ConfigChange::Set(
                    [("cameras.gate.detect_fps".to_owned(), serde_json::json!(2.5))].into(),
                ),
                expected_version: "v1".to_owned(),
            }),
        ),
        (
            "issued within the clock skew ahead",
            Box::new(|e| {
                let mut d = ping();
                d.issued_at = e.now + Duration::from_secs(29);
                e.receive(&signed(d))
            }),
            Ok_(Command::Ping),
        ),
        (
            "args changed after signing",
            Box::new(|e| {
                e.receive(&edited(
                    draft("snapshot", r#"{"camera":"gate"}"#, 7),
                    false,
                    |v| {
                        v["args"]["camera"] = "yard".into();
                    },
                ))
            }),
            No("bad_signature", true),
        ),
        (
            "counter changed after signing",
            Box::new(|e| e.receive(&edited(ping(), false, |v| v["counter"] = 6.into()))),
            No("bad_signature", true),
        ),
        (
            "signed by another key calling itself central",
            Box::new(|e| {
                e.receive(&signed_as(
                    &other_key("central"),
                    TOPIC,
                    "north/box-1",
                    ping(),
                ))
            }),
            No("bad_signature", true),
        ),
        (
            "wrong device in the signed bytes",
            Box::new(|e| e.receive(&signed_as(&central(), TOPIC, "north/box-2", ping()))),
            No("bad_signature", true),
        ),
        (
            "another topic in the signed bytes",
            Box::new(|e| {
                let topic = "acme/north/box-1/cmd";
                e.receive(&signed_as(&central(), topic, "north/box-1", ping()))
            }),
            No("bad_signature", true),
        ),
        (
            "unknown key",
            Box::new(|e| {
                e.receive(&signed_as(
                    &other_key("backup"),
                    TOPIC,
                    "north/box-1",
                    ping(),
                ))
            }),
            No("unknown_key", true),
        ),
        (
            "expired",
            Box::new(|e| {
                e.now = time("2026-11-29T02:36:08Z");
                e.receive(&signed(ping()))
            }),
            No("expired", true),
        ),
        (
            "not yet valid",
            Box::new(|e| {
                let mut d = ping();
                d.issued_at = e.now + Duration::from_secs(31);
                e.receive(&signed(d))
            }),
            No("not_yet_valid", true),
        ),
        (
            "valid for longer than the window",
            Box::new(|e| {
                let mut d = ping();
                d.valid_for = DEFAULT_MAX_VALIDITY + Duration::from_millis(1);
                e.receive(&signed(d))
            }),
            No("validity_too_long", true),
        ),
        (
            "replayed",
            Box::new(|e| {
                assert!(matches!(e.receive(&signed(ping())), Verdict::Accepted(_)));
                e.receive(&signed(ping()))
            }),
            No("replayed", true),
        ),
        (
            "counter going backwards",
            Box::new(|e| {
                assert!(matches!(
                    e.receive(&signed(draft("ping", "{}", 9))),
                    Verdict::Accepted(_)
                ));
                e.receive(&signed(draft("ping", "{}", 8)))
            }),
            No("counter_behind", true),
        ),
        (
            "counter going backwards after a restart",
            Box::new(|e| {
                assert!(matches!(
                    e.receive(&signed(draft("ping", "{}", 9))),
                    Verdict::Accepted(_)
                ));
                e.restart();
                e.receive(&signed(draft("ping", "{}", 8)))
            }),
            No("counter_behind", true),
        ),
        (
            "replayed after a restart",
            Box::new(|e| {
                let payload = signed(draft("ping", "{}", 9));
                assert!(matches!(e.receive(&payload), Verdict::Accepted(_)));
                e.restart();
                e.receive(&payload)
            }),
            No("replayed", true),
        ),
        (
            "retained",
            Box::new(|e| e.receive_on(TOPIC, &signed(ping()), true)),
            No("retained", true),
        ),
        (
            "on another topic",
            Box::new(|e| e.receive_on("watchpost/north/box-1/cmd/x", &signed(ping()), false)),
            No("wrong_topic", true),
        ),
        (
            "unknown command",
            Box::new(|e| e.receive(&signed(draft("reboot", "{}", 5)))),
            No("unknown_command", true),
        ),
        (
            "disabled command",
            Box::new(|e| e.receive(&signed(draft("camera.disable", r#"{"camera":"gate"}"#, 5)))),
            No("disabled", true),
        ),
        (
            "bad arguments",
            Box::new(|e| e.receive(&signed(draft("snapshot", r#"{"cam":"gate"}"#, 5)))),
            No("bad_args", true),
        ),
        (
            "not JSON",
            Box::new(|e| e.receive(b"{\"id\":\"x\",")),
            No("malformed", false),
        ),
        (
            "empty",
            Box::new(|e| e.receive(b"")),
            No("malformed", false),
        ),
        (
            "a field missing (the id still echoed)",
            Box::new(|e| {
                e.receive(&edited(ping(), false, |v| {
                    v.as_object_mut().unwrap().remove("counter");
                }))
            }),
            No("malformed", true),
        ),
        (
            "an unknown field",
            Box::new(|e| e.receive(&edited(ping(), false, |v| v["extra"] = 1.into()))),
            No("malformed", true),
        ),
        (
            "the wrong schema",
            Box::new(|e| {
                e.receive(&edited(ping(), true, |v| {
                    v["schema"] = "watchpost.command/2".into()
                }))
            }),
            No("malformed", true),
        ),
        (
            "an id too long (not echoed)",
            Box::new(|e| e.receive(&edited(ping(), true, |v| v["id"] = "x".repeat(65).into()))),
            No("malformed", false),
        ),
        (
            "counter 0",
            Box::new(|e| e.receive(&signed_unchecked(draft("ping", "{}", 0)))),
            No("malformed", true),
        ),
        (
            "a duplicate key in args",
            Box::new(|e| {
                let text = String::from_utf8(signed(draft("snapshot", r#"{"camera":"gate"}"#, 7)))
                    .unwrap()
                    .replace(
                        r#"{"camera":"gate"}"#,
                        r#"{"camera":"gate","camera":"yard"}"#,
                    );
                e.receive(text.as_bytes())
            }),
            No("malformed", true),
        ),
        (
            "a signature of the wrong length",
            Box::new(|e| e.receive(&edited(ping(), false, |v| v["signature"] = "AAAA".into()))),
            No("malformed", true),
        ),
        (
            "oversized",
            Box::new(|e| {
                let big = format!(
                    r#"{{"toml":"{}","expected_version":"v1"}}"#,
                    "#".repeat(MAX_MESSAGE_BYTES)
                );
                e.receive(&signed(draft("config.apply", &big, 5)))
            }),
            No("oversized", false),
        ),
        (
            "a damaged counter file",
            Box::new(|e| {
                let file = CounterStore::file(&e.state());
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, "{\"schema\":").unwrap();
                e.restart();
                assert!(e.inbox.counters_error().is_some());
                e.receive(&signed(ping()))
            }),
            No("counters_unusable", true),
        ),
    ]
}

/// A signed message that `sign` would refuse to make (bounds broken on purpose).
fn signed_unchecked(draft: Draft) -> Vec<u8> {
    let good = Draft {
        counter: 1,
        ..draft.clone()
    };
    let mut message: CommandMessage = serde_json::from_slice(&signed(good)).unwrap();
    message.counter = draft.counter;
    set_signature(&central(), TOPIC, &device("north/box-1"), &mut message);
    message.to_json().into_bytes()
}

fn last_counter(state: &Path) -> Option<u64> {
    CounterStore::open(state)
        .ok()
        .and_then(|s| s.last("central"))
}

#[test]
fn every_refusal_and_acceptance_from_a_table() {
    let mut codes_seen = std::collections::BTreeSet::new();
    for (what, run, expected) in cases() {
        let mut env = Env::new();
        let verdict = run(&mut env);
        match (&verdict, &expected) {
            (Verdict::Accepted(accepted), Expect::Accepted(command)) => {
                assert_eq!(&accepted.command, command, "{what}");
                assert_eq!(last_counter(&env.state()), Some(accepted.counter), "{what}");
                let result = accepted.result(&Outcome::Done(None), env.now);
                assert_eq!(result.status, Status::Ok, "{what}");
                assert_eq!(result.id.as_deref(), Some(accepted.id.as_str()));
            }
            (Verdict::Refused(refused), Expect::Refused(code, echoes_id)) => {
                assert_eq!(refused.refusal.code(), *code, "{what}: {}", refused.refusal);
                codes_seen.insert(*code);
                // Nothing changed on disk.
                assert_eq!(env.counter_file(), env.counters_before_last, "{what}");
                let audit = refused.audit(env.now);
                assert_eq!(audit.outcome, Status::Refused);
                assert_eq!(audit.code, Some(*code));
                match refused.result(env.now) {
                    None => assert_eq!(*code, "retained", "{what}: only retained is unanswered"),
                    Some(result) => {
                        assert_eq!(result.status, Status::Refused, "{what}");
                        assert_eq!(result.code, Some(*code), "{what}");
                        assert_eq!(result.id.is_some(), *echoes_id, "{what}: {result:?}");
                        let reason = result.reason.unwrap();
                        assert!(!reason.is_empty() && !reason.contains('\n'), "{what}");
                        assert!(reason.chars().count() <= MAX_REASON_CHARS, "{what}");
                    }
                }
            }
            _ => panic!("{what}: {verdict:?}, expected {expected:?}"),
        }
    }
    // The others come from the agent: a full queue, or a verified command it cannot carry out.
    let after_the_inbox = [
        "busy",
        "unknown_camera",
        "stale_version",
        "invalid_config",
        "snapshots_off",
    ];
    let mut all: Vec<&str> = Refusal::CODES
        .into_iter()
        .filter(|c| !after_the_inbox.contains(c))
        .collect();
    all.sort_unstable();
    assert_eq!(codes_seen.into_iter().collect::<Vec<_>>(), all);
}

#[test]
fn refusals_after_the_inbox_are_answered_with_their_code() {
    let mut env = Env::new();
    let payload = signed(draft("config.get", "{}", 12));
    let busy = Refused::busy(Received {
        topic: TOPIC,
        payload: &payload,
        retained: false,
    });
    assert_eq!(busy.refusal, Refusal::Busy);
    assert_eq!(busy.id.as_deref(), Some("cmd-12"));
    let result = busy.result(env.now).unwrap();
    assert_eq!(
        (result.status, result.code),
        (Status::Refused, Some("busy"))
    );
    let retained = Refused::busy(Received {
        topic: TOPIC,
        payload: &payload,
        retained: true,
    });
    assert!(
        retained.result(env.now).is_none(),
        "a retained message is not answered"
    );

    let Verdict::Accepted(accepted) = env.receive(&payload) else {
        panic!("not accepted");
    };
    let stale = Outcome::Refused(
        Refusal::StaleVersion {
            expected: "1-00".into(),
            running: "2-ff".into(),
        },
        None,
    );
    let result = accepted.result(&stale, env.now);
    assert_eq!(result.code, Some("stale_version"));
    assert!(result.reason.unwrap().contains("2-ff"));
    let audit = accepted.audit(&stale, env.now);
    assert_eq!(
        (audit.outcome, audit.code),
        (Status::Refused, Some("stale_version"))
    );
    let invalid = Outcome::Refused(
        Refusal::InvalidConfig { problems: 2 },
        Some(serde_json::json!({"problems": ["a", "b"]})),
    );
    let json: serde_json::Value =
        serde_json::from_str(&accepted.result(&invalid, env.now).to_json()).unwrap();
    assert_eq!(json["code"], "invalid_config");
    assert_eq!(json["result"]["problems"][1], "b");
}

#[test]
fn results_and_audit_records_as_json() {
    let mut env = Env::new();
    let Verdict::Accepted(accepted) = env.receive(&signed(draft("config.get", "{}", 11))) else {
        panic!("not accepted");
    };
    let at = time("2026-11-29T02:31:09.5Z");
    let done = Outcome::Done(Some(serde_json::json!({"version": "v1"})));
    assert_eq!(
        accepted.result(&done, at).to_json(),
        r#"{"schema":"watchpost.command-result/1","id":"cmd-11","command":"config.get","status":"ok","code":null,"reason":null,"result":{"version":"v1"},"at":"2026-11-29T02:31:09.500Z"}"#
    );
    let failed = Outcome::Failed("no such camera".to_owned());
    assert_eq!(
        accepted.result(&failed, at).to_json(),
        r#"{"schema":"watchpost.command-result/1","id":"cmd-11","command":"config.get","status":"failed","code":null,"reason":"no such camera","result":null,"at":"2026-11-29T02:31:09.500Z"}"#
    );
    assert_eq!(
        serde_json::to_string(&accepted.audit(&failed, at)).unwrap(),
        r#"{"at":"2026-11-29T02:31:09.500Z","id":"cmd-11","command":"config.get","key_id":"central","counter":11,"verified":true,"outcome":"failed","code":null,"reason":"no such camera"}"#
    );
    let Verdict::Refused(refused) = env.receive(b"[1,2") else {
        panic!("accepted garbage");
    };
    let result = refused.result(at).unwrap().to_json();
    assert!(
        result.starts_with(
            r#"{"schema":"watchpost.command-result/1","id":null,"command":null,"status":"refused","code":"malformed","reason":"not a watchpost.command/1: "#
        ),
        "{result}"
    );
    let audit = serde_json::to_value(refused.audit(at)).unwrap();
    assert_eq!(audit["verified"], false);
    assert_eq!(audit["key_id"], serde_json::Value::Null);
}

/// The lines of the first fenced block of `kind` after `marker` in this module's documentation.
fn documented_block(marker: &str, kind: &str) -> String {
    let doc = include_str!("mod.rs");
    let after = &doc[doc.find(marker).expect("marker in the module docs")..];
    let lines: Vec<&str> = after
        .lines()
        .map(|l| l.strip_prefix("//!").unwrap_or(l))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .skip_while(|l| *l != format!("```{kind}"))
        .skip(1)
        .take_while(|l| *l != "```")
        .collect();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn the_documented_example_is_what_the_code_signs() {
    let example = Draft {
        id: "cmd-42".to_owned(),
        command: "snapshot".to_owned(),
        args: Args::parse(r#"{"camera":"gate"}"#).unwrap(),
        issued_at: time("2026-11-29T02:31:08Z"),
        valid_for: Duration::from_secs(300),
        counter: 42,
    };
    let message = sign(&central(), TOPIC, &device("north/box-1"), example).unwrap();
    let bytes = canonical_bytes(TOPIC, &device("north/box-1"), &message);
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        documented_block("The example's signed bytes", "text")
    );
    assert_eq!(
        format!("{}\n", message.to_json()),
        documented_block("The example message", "json")
    );
    // RFC 8032's public key for that secret.
    let public = central().public().key.to_bytes();
    assert_eq!(
        public[..4],
        [0xd7, 0x5a, 0x98, 0x01],
        "the documented public key"
    );
    let mut env = Env::new();
    assert!(matches!(
        env.receive(message.to_json().as_bytes()),
        Verdict::Accepted(_)
    ));
}

#[test]
fn command_and_result_topics_follow_the_device_topics() {
    let topics = crate::publish::Topics::new("watchpost/", &name("north"), &name("box-1"));
    assert_eq!(topics.command(), TOPIC);
    assert_eq!(topics.command_result(), "watchpost/north/box-1/cmd/result");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused_without_a_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
        retained in any::<bool>(),
    ) {
        let mut env = Env::new();
        let verdict = env.receive_on(TOPIC, &payload, retained);
        prop_assert!(matches!(verdict, Verdict::Refused(_)));
        let _ = CommandMessage::peek(&payload);
    }

    #[test]
    fn arbitrary_json_text_is_refused_without_a_panic(text in "\\{(\"[a-z_]{1,10}\":(\"[ -~]{0,20}\"|[0-9.eE+-]{1,25}|\\{\\}|null|true),?){0,10}\\}") {
        let mut env = Env::new();
        prop_assert!(matches!(env.receive(text.as_bytes()), Verdict::Refused(_)));
        let _ = Args::parse(&text).map(|a| a.canonical());
    }

    #[test]
    fn a_mutated_signed_message_is_accepted_only_if_it_means_the_same(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..4),
    ) {
        let original = signed(draft("config.apply", r#"{"set":{"cameras.gate.detect_fps":2.5,"mqtt.url":"mqtt://a:1883"},"expected_version":"v1"}"#, 5));
        let mut payload = original.clone();
        for (at, byte, kind) in edits {
            let i = at.index(payload.len() + 1);
            match kind {
                0 if i < payload.len() => payload[i] = byte,
                1 => payload.insert(i, byte),
                _ if i < payload.len() => { payload.remove(i); }
                _ => payload.truncate(i),
            }
        }
        let mut env = Env::new();
        let verdict = env.receive(&payload);
        if let Verdict::Accepted(_) = verdict {
            let expected = CommandMessage::parse(&original).unwrap();
            prop_assert_eq!(CommandMessage::parse(&payload).ok(), Some(expected));
        }
    }
}
