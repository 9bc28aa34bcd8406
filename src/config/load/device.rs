//! `[device]`: which post this is, and where it keeps its state.

use std::path::PathBuf;

use serde::Deserialize;

use super::Checker;
use super::table::{Part, RawTable};
use crate::config::DeviceConfig;

/// Where the agent keeps its state unless `device.state_dir` says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/watchpost";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    site: Option<String>,
    id: Option<String>,
    state_dir: Option<PathBuf>,
}

impl RawTable for RawDevice {
    const REQUIRED: &[&str] = &["site", "id"];
}

impl<'a> Checker<'a> {
    /// `[device]`: required.
    pub(super) fn device_section(&mut self) -> Option<DeviceConfig> {
        match self.section::<RawDevice>("device") {
            Part::Found(raw) => self.device(raw),
            Part::Missing => {
                self.problem("device", "missing: a [device] table with `site` and `id`");
                None
            }
            Part::Refused => None,
        }
    }

    fn device(&mut self, raw: RawDevice) -> Option<DeviceConfig> {
        let site = raw
            .site
            .and_then(|site| self.topic_name("device.site", &site));
        let id = raw.id.and_then(|id| self.topic_name("device.id", &id));
        let state_dir = match raw.state_dir {
            Some(dir) => self.path("device.state_dir", dir),
            None => Some(PathBuf::from(DEFAULT_STATE_DIR)),
        };
        Some(DeviceConfig {
            site: site?,
            id: id?,
            state_dir: state_dir?,
        })
    }
}
