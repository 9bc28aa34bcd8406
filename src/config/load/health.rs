//! `[health]` (optional): how often the agent reports its health.

use serde::Deserialize;

use super::Checker;
use super::raw::Int;
use super::table::Part;
use crate::config::HealthConfig;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    interval_s: Option<Int>,
}

impl<'a> Checker<'a> {
    /// `[health]`, defaults when it is missing.
    pub(super) fn health_section(&mut self) -> Option<HealthConfig> {
        match self.section::<RawHealth>("health") {
            Part::Found(raw) => self.health(raw),
            Part::Missing => self.health(RawHealth::default()),
            Part::Refused => None,
        }
    }

    fn health(&mut self, raw: RawHealth) -> Option<HealthConfig> {
        let interval = self.seconds("health.interval_s", raw.interval_s, 1..=3600, 10)?;
        Some(HealthConfig { interval })
    }
}
