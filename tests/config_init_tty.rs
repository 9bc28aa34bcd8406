//! `watchpost config init` as a technician uses it: through a real terminal (tmux), answering
//! its questions, one of them wrongly, typing a password that must not appear on the screen.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A tmux server of its own (`-L`, no user configuration), killed when dropped, even when the
/// test fails.
struct Tmux {
    socket: String,
}

const SESSION: &str = "init";

impl Tmux {
    fn start(command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("watchpost-init-test-{}", std::process::id()),
        };
        let output = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "200",
            "-y",
            "50",
            "-s",
            SESSION,
            command,
        ]);
        assert!(
            output.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux is installed (deploy/setup.sh installs it)")
    }

    /// Types `text` and Enter.
    fn answer(&self, text: &str) {
        if !text.is_empty() {
            assert!(
                self.run(&["send-keys", "-t", SESSION, "-l", text])
                    .status
                    .success()
            );
        }
        assert!(
            self.run(&["send-keys", "-t", SESSION, "Enter"])
                .status
                .success()
        );
    }

    /// What the terminal shows (wrapped lines joined).
    fn screen(&self) -> String {
        let output = self.run(&["capture-pane", "-p", "-J", "-t", SESSION, "-S", "-"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until `text` is on the screen `count` times, and returns the screen.
    fn wait_for(&self, text: &str, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= count {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "`{text}` (×{count}) never showed up; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn init_asks_rechecks_and_hides_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("etc/watchpost.toml");
    let state = dir.path().join("state");
    let binary = assert_cmd::cargo::cargo_bin!("watchpost");
    const PASSWORD: &str = "Zz9-s3cret!pw";
    // The pane stays open after the command so that its last words can be read.
    let command = format!(
        "env -u WATCHPOST_MQTT_PASSWORD SUDO_USER=tech '{}' config init '{}' --state-dir '{}'; \
         echo EXIT=$?; sleep 600",
        binary.display(),
        file.display(),
        state.display()
    );
    let tmux = Tmux::start(&command);

    tmux.wait_for("Site (border crossing this post belongs to): ", 1);
    tmux.answer("rafah-east");
    tmux.wait_for("Device id (unique within the site) [", 1);
    tmux.answer("post-9");
    let broker_prompt =
        "Broker URL (mqtt://HOST[:PORT] or mqtts://HOST[:PORT]) [mqtt://127.0.0.1:1883]: ";
    tmux.wait_for(broker_prompt, 1);
    tmux.answer("http://broker:1883");
    // Refused with the reason, and asked again.
    let screen = tmux.wait_for(broker_prompt, 2);
    assert!(
        screen.contains(
            "  Not usable: `http://broker:1883` is not an MQTT URL; expected mqtt://HOST[:PORT] \
             or mqtts://HOST[:PORT]. Try again."
        ),
        "{screen}"
    );
    tmux.answer("mqtt://10.9.0.5:1883");
    tmux.wait_for("MQTT user name (- for none) [none]: ", 1);
    tmux.answer("wp");
    tmux.wait_for("MQTT password (not shown) [none]: ", 1);
    tmux.answer(PASSWORD);
    tmux.wait_for("Add a first camera now? [Y/n]: ", 1);
    tmux.answer(""); // Enter: the default, yes
    tmux.wait_for("Camera name [camera-1]: ", 1);
    tmux.answer("gate-1");
    tmux.wait_for(
        "Camera RTSP URL (rtsp://HOST[:PORT]/PATH; the password is asked next): ",
        1,
    );
    tmux.answer("rtsp://10.9.0.21:554/stream1");
    tmux.wait_for("Camera user name (- for none) [none]: ", 1);
    tmux.answer(""); // none: no camera password is asked
    let screen = tmux.wait_for("EXIT=", 1);
    drop(tmux);

    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        !screen.contains(PASSWORD),
        "the password was shown:\n{screen}"
    );
    assert!(!screen.contains("Camera password"), "{screen}");
    let password_file = dir.path().join("etc/mqtt-password");
    assert!(
        screen.contains(&format!(
            "{}: written and valid (1 camera)\nMQTT password: {} (mode 0600)\n",
            file.display(),
            password_file.display()
        )),
        "{screen}"
    );

    // The file is valid and holds the answers; the password is in its own 0600 file.
    let validated = assert_cmd::cargo::cargo_bin_cmd!("watchpost")
        .args(["config", "validate"])
        .arg(&file)
        .env_remove("WATCHPOST_MQTT_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&validated.stdout),
        format!("{}: ok (1 camera)\n", file.display()),
        "{}",
        String::from_utf8_lossy(&validated.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    for line in [
        "site = \"rafah-east\"",
        "id = \"post-9\"",
        "url = \"mqtt://10.9.0.5:1883\"",
        "username = \"wp\"",
        &format!("password_file = \"{}\"", password_file.display()),
        "name = \"gate-1\"",
        "url = \"rtsp://10.9.0.21:554/stream1\"",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    assert!(!text.contains(PASSWORD));
    assert_eq!(
        std::fs::read_to_string(&password_file).unwrap(),
        format!("{PASSWORD}\n")
    );
    let mode = std::fs::metadata(&password_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // One audit line, by the person behind sudo, without the password.
    let log = std::fs::read_to_string(state.join("audit.log")).unwrap();
    assert!(!log.contains(PASSWORD));
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["command"], "config init");
    assert_eq!(entries[0]["user"], "tech");
    assert_eq!(entries[0]["file"], file.to_str().unwrap());
    let changes = entries[0]["changes"].as_array().unwrap();
    let mqtt = changes.iter().find(|c| c["key"] == "mqtt").unwrap();
    assert_eq!(mqtt["new"]["password"], "***");
    assert_eq!(mqtt["new"]["username"], "wp");
    assert!(Path::new(&state).is_dir());
}
