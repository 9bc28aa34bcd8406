//! `[health]` (optional): how often the agent reports its health.

use serde::Deserialize;

use super::Checker;
use super::raw::Int;
use super::table::RawTable;
use crate::config::HealthConfig;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    interval_s: Option<Int>,
}

impl RawTable for RawHealth {}

impl<'a> Checker<'a> {
    /// `[health]` (its defaults when the table is left out).
    pub(super) fn health(&mut self, raw: RawHealth) -> Option<HealthConfig> {
        let interval = self.seconds("health.interval_s", raw.interval_s, 1..=3600, 10)?;
        Some(HealthConfig { interval })
    }
}
