//! A `watchpost run` child process against the in-process RTSP server and a test mosquitto, as
//! deployed: config and log in a temporary folder, restartable on the same state.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::mosquitto::Mosquitto;
use watchpost::demo::clip_server::ClipServer;

pub const SITE: &str = "test-site";
pub const DEVICE: &str = "post-1";

/// `watchpost/test-site/post-1/{rest}`.
pub fn topic(rest: &str) -> String {
    format!("watchpost/{SITE}/{DEVICE}/{rest}")
}

/// The RTSP server playing the sample clip from memory, on a free port.
pub fn clip_server() -> ClipServer {
    watchpost::ingest::init_gstreamer().expect("GStreamer");
    ClipServer::start(&super::repo_path("tests/data/sample-clip.mp4"), 0).expect("RTSP server")
}

/// Settings of one agent run.
pub struct AgentSetup {
    pub cameras: Vec<String>,
    pub detect_fps: f32,
    pub inference_threads: usize,
    pub stall_timeout_s: u64,
    /// TOML appended to every camera's table (zones, lines).
    pub camera_extra: String,
    /// TOML lines appended to `[mqtt]`.
    pub mqtt_extra: String,
    /// Whole tables (`[outbox]`, `[events]`) placed before the cameras.
    pub tables: String,
    /// `--log` level.
    pub log: &'static str,
    /// Environment variables of the agent process (e.g. `WATCHPOST_FAULTS`).
    pub env: Vec<(&'static str, String)>,
}

impl AgentSetup {
    pub fn one_camera(url: String) -> AgentSetup {
        AgentSetup {
            cameras: vec![url],
            detect_fps: 5.0,
            inference_threads: 2,
            stall_timeout_s: 3,
            camera_extra: String::new(),
            mqtt_extra: String::new(),
            tables: String::new(),
            log: "info",
            env: Vec::new(),
        }
    }

    /// Sets `[local]` to listen on every address (`0.0.0.0:port`) behind a login with
    /// `password`: an agent a peer on the LAN reaches (this machine's own LAN address, see
    /// `http::lan_address`). The password file is in the folder returned: keep it until the
    /// agent is started.
    pub fn listen_on_the_network(&mut self, port: u16, password: &str) -> tempfile::TempDir {
        let secrets = tempfile::tempdir().unwrap();
        let password_file = secrets.path().join("page-password");
        std::fs::write(&password_file, format!("{password}\n")).unwrap();
        self.tables.push_str(&format!(
            "[local]\nlisten = \"0.0.0.0:{port}\"\npassword_file = \"{}\"\n",
            password_file.display()
        ));
        secrets
    }

    /// The config file's text for `broker_url`, with state in `state_dir`.
    pub fn config_text(&self, broker_url: &str, state_dir: &Path) -> String {
        let mut text = format!(
            r#"[device]
site = "{SITE}"
id = "{DEVICE}"
state_dir = "{state}"

[mqtt]
url = "{broker_url}"
keep_alive_s = 5
{mqtt_extra}

[detection]
inference_threads = {threads}
max_frame_age_ms = 1000

[health]
interval_s = 1

{tables}
"#,
            state = state_dir.display(),
            mqtt_extra = self.mqtt_extra,
            threads = self.inference_threads,
            tables = self.tables,
        );
        for (i, url) in self.cameras.iter().enumerate() {
            text.push_str(&format!(
                "\n[[cameras]]\nname = \"cam{i}\"\nurl = \"{url}\"\ndetect_fps = {}\nstall_timeout_s = {}\n{}\n",
                self.detect_fps, self.stall_timeout_s, self.camera_extra
            ));
        }
        text
    }
}

/// A `watchpost run` child process with its config and log in a temporary folder.
pub struct Agent {
    pub child: Child,
    pub dir: tempfile::TempDir,
    /// Runs so far (the log of run `n` is `agent-{n}.log`).
    runs: usize,
    env: Vec<(&'static str, String)>,
}

impl Agent {
    pub fn start(broker: &Mosquitto, setup: &AgentSetup) -> Agent {
        Agent::start_with_url(&broker.url(), setup)
    }

    pub fn start_with_url(broker_url: &str, setup: &AgentSetup) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let text = setup.config_text(broker_url, &dir.path().join("state"));
        Agent::start_in(dir, &text, setup.log, setup.env.clone())
    }

    /// An agent with this config text (its `state_dir` should be a folder of its own).
    pub fn start_with_config(text: &str) -> Agent {
        Agent::start_in(tempfile::tempdir().unwrap(), text, "info", Vec::new())
    }

    fn start_in(
        dir: tempfile::TempDir,
        text: &str,
        log: &str,
        env: Vec<(&'static str, String)>,
    ) -> Agent {
        std::fs::write(dir.path().join("watchpost.toml"), text).unwrap();
        let child = spawn(dir.path(), 1, log, &env);
        Agent {
            child,
            dir,
            runs: 1,
            env,
        }
    }

    /// Starts the agent again on the same config, state and environment (after it exited or
    /// was killed).
    pub fn restart(&mut self, log: &str) {
        let env = self.env.clone();
        self.restart_with_env(log, env);
    }

    /// Starts the agent again on the same config and state, with this environment.
    pub fn restart_with_env(&mut self, log: &str, env: Vec<(&'static str, String)>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.runs += 1;
        self.env = env;
        self.child = spawn(self.dir.path(), self.runs, log, &self.env);
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("watchpost.toml")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The logs of every run so far, in order.
    pub fn log(&self) -> String {
        (1..=self.runs)
            .map(|n| {
                std::fs::read_to_string(self.dir.path().join(format!("agent-{n}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill({signal})");
    }

    /// Waits for the process to exit; `None` if it did not within `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

fn spawn(dir: &Path, run: usize, log_level: &str, env: &[(&'static str, String)]) -> Child {
    let log = std::fs::File::create(dir.join(format!("agent-{run}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["run", "--log", log_level, "--config"])
        .arg(dir.join("watchpost.toml"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start watchpost run")
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails with the agent's log attached.
#[track_caller]
pub fn expect<T>(value: Option<T>, what: &str, agent: &Agent) -> T {
    match value {
        Some(v) => v,
        None => panic!("{what}\n--- agent log ---\n{}", agent.log()),
    }
}
