//! The central system's side of remote commands: signing command messages for the test device
//! as `watchpost command sign` does, and the `[commands]` table that trusts the key.

use std::path::Path;
use std::time::{Duration, SystemTime};

use watchpost::command::{self, Args, DeviceId, Draft, SigningIdentity, keys};

use super::agent::{DEVICE, SITE, topic};

/// `[commands]` on, trusting `public`, with `disabled` commands refused.
pub fn commands_table(public: &Path, disabled: &[&str]) -> String {
    let disabled: Vec<String> = disabled.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        "[commands]\nenabled = true\ntrusted_keys = [\"{}\"]\ndisabled = [{}]\n",
        public.display(),
        disabled.join(", ")
    )
}

/// Signs commands for the test device, counting up.
pub struct Central {
    identity: SigningIdentity,
    pub device: DeviceId,
    pub counter: u64,
}

impl Central {
    pub fn new(private_key: &Path) -> Central {
        Central {
            identity: keys::read_private_key(private_key).unwrap(),
            device: DeviceId::parse(&format!("{SITE}/{DEVICE}")).unwrap(),
            counter: 0,
        }
    }

    /// `command` with `args` (JSON text), the next counter, issued now for the test device.
    pub fn sign(&mut self, id: &str, command: &str, args: &str) -> String {
        let device = self.device.clone();
        self.counter += 1;
        self.make(id, command, args, self.counter, SystemTime::now(), &device)
    }

    /// `ping` with the next counter, issued at `issued_at`.
    pub fn ping_issued_at(&mut self, id: &str, issued_at: SystemTime) -> String {
        let device = self.device.clone();
        self.counter += 1;
        self.make(id, "ping", "{}", self.counter, issued_at, &device)
    }

    /// `ping` with the next counter, signed for `device`.
    pub fn ping_for(&mut self, id: &str, device: &DeviceId) -> String {
        self.counter += 1;
        self.make(id, "ping", "{}", self.counter, SystemTime::now(), device)
    }

    /// `ping` with this counter.
    pub fn ping_with_counter(&self, id: &str, counter: u64) -> String {
        self.make(id, "ping", "{}", counter, SystemTime::now(), &self.device)
    }

    fn make(
        &self,
        id: &str,
        command: &str,
        args: &str,
        counter: u64,
        issued_at: SystemTime,
        device: &DeviceId,
    ) -> String {
        let draft = Draft {
            id: id.to_owned(),
            command: command.to_owned(),
            args: Args::parse(args).unwrap(),
            issued_at,
            valid_for: Duration::from_secs(300),
            counter,
        };
        command::sign(&self.identity, &topic("cmd"), device, draft)
            .unwrap()
            .to_json()
    }
}
