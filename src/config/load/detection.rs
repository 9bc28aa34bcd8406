//! `[detection]` (optional): the model, ONNX Runtime, and how much work inference may take.

use std::path::PathBuf;

use serde::Deserialize;

use super::Checker;
use super::checks::millis;
use super::raw::Int;
use super::table::RawTable;
use crate::config::DetectionConfig;
use crate::detect::ModelChoice;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDetection {
    model: Option<String>,
    ort_lib: Option<PathBuf>,
    inference_threads: Option<Int>,
    max_frame_age_ms: Option<Int>,
}

impl RawTable for RawDetection {}

impl<'a> Checker<'a> {
    /// `[detection]` (its defaults when the table is left out).
    pub(super) fn detection(&mut self, raw: RawDetection) -> Option<DetectionConfig> {
        let model = match raw.model {
            Some(value) => match ModelChoice::parse(&value, self.base_dir) {
                Ok(choice) => Some(choice),
                Err(message) => {
                    self.problem("detection.model", message);
                    None
                }
            },
            None => Some(ModelChoice::Auto),
        };
        let ort_lib = match raw.ort_lib {
            Some(path) => self.path("detection.ort_lib", path).map(Some),
            None => Some(None),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(64));
        let inference_threads = self.int(
            "detection.inference_threads",
            raw.inference_threads,
            1..=64,
            i64::try_from(cores).unwrap_or(1),
        );
        let max_frame_age = self
            .int(
                "detection.max_frame_age_ms",
                raw.max_frame_age_ms,
                50..=60_000,
                1000,
            )
            .map(millis);
        Some(DetectionConfig {
            model: model?,
            ort_lib: ort_lib?,
            inference_threads: usize::try_from(inference_threads?).ok()?,
            max_frame_age: max_frame_age?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::tests::{MINIMAL, file, parse, problem};
    use std::path::PathBuf;

    #[test]
    fn the_model_is_auto_a_bundled_name_or_a_manifest_path() {
        let with = |value: &str| format!("{MINIMAL}[detection]\nmodel = \"{value}\"\n");
        let table = [
            ("auto", ModelChoice::Auto),
            (
                "nanodet-m-416-int8",
                ModelChoice::Bundled("nanodet-m-416-int8"),
            ),
            (
                "models/mine.toml",
                ModelChoice::Manifest(PathBuf::from("/etc/watchpost/models/mine.toml")),
            ),
        ];
        for (value, expected) in table {
            let config = parse(&with(value), file()).expect(value);
            assert_eq!(config.detection.model, expected, "{value}");
        }
        let p = problem(&with("yolov8"));
        assert_eq!(p.key, "detection.model");
        assert_eq!(p.line, Some(11));
        assert!(
            p.message
                .contains("neither a bundled model (nanodet-m-416, nanodet-m-416-int8, or auto)"),
            "{}",
            p.message
        );
    }
}
