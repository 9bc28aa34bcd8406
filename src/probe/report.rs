//! How a probe's result is told to people, in the same words wherever it is shown: by
//! `watchpost camera probe` (text and JSON) and by the technician's page ("Add a camera").
//! Pure: figures rounded as reported, the stream's facts as `(label, text)` lines, a failure as
//! its kind's word and its one line.

use super::diagnose::Failure;
use super::stream::StreamReport;

/// The `error` of a probe's JSON report: the [`FailureKind`](super::FailureKind)'s word
/// (`refused`, `unauthorized`, `no_video`, …; `model` when the model failed on a working
/// camera) and the sentence for the technician.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FailureReport<'a> {
    pub kind: &'a str,
    pub message: &'a str,
}

impl Failure {
    /// This failure as a report's `error`.
    pub fn report(&self) -> FailureReport<'_> {
        FailureReport {
            kind: self.kind.as_str(),
            message: &self.message,
        }
    }
}

impl StreamReport {
    /// The measured frame rate as reported: to 0.1 fps.
    pub fn fps_shown(&self) -> Option<f64> {
        self.fps_measured.map(|f| (f * 10.0).round() / 10.0)
    }

    /// The announced frame rate as reported: to 0.01 fps.
    pub fn fps_advertised_shown(&self) -> Option<f64> {
        self.fps_advertised.map(|f| (f * 100.0).round() / 100.0)
    }

    /// The time to the first frame in milliseconds.
    pub fn first_frame_ms(&self) -> u64 {
        u64::try_from(self.first_frame.as_millis()).unwrap_or(u64::MAX)
    }

    /// What the stream is, as `(label, text)` lines: codec, resolution, frame rate, first
    /// frame, decoder. `camera probe` prints them as `  LABEL        TEXT`; the page shows them
    /// as a table.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let measured = match self.fps_shown() {
            Some(fps) => format!(
                "{fps:.1} fps measured over {:.1} s ({} frames)",
                self.decoded_for.as_secs_f64(),
                self.frames
            ),
            None => format!("not measured ({} frame)", self.frames),
        };
        let advertised = match self.fps_advertised_shown() {
            Some(fps) => format!("; the stream announces {fps} fps"),
            None => "; the stream announces no rate".to_owned(),
        };
        vec![
            (
                "codec",
                self.codec.as_deref().unwrap_or("unknown").to_owned(),
            ),
            ("resolution", format!("{}x{}", self.width, self.height)),
            ("frame rate", format!("{measured}{advertised}")),
            ("first frame", format!("{} ms", self.first_frame_ms())),
            (
                "decoder",
                format!("{} ({})", self.decoder, self.decoder_reason),
            ),
        ]
    }
}

/// One line of a text report: `  LABEL        TEXT` (labels in a column 12 wide).
pub fn fact_line(label: &str, text: &str) -> String {
    format!("  {label:<12} {text}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::imaging::YuvFrame;
    use crate::probe::FailureKind;

    fn report(fps: Option<f64>, announced: Option<f64>, frames: u64) -> StreamReport {
        StreamReport {
            decoder: "software".to_owned(),
            decoder_reason: "no hardware decoder found".to_owned(),
            codec: Some("H.264".to_owned()),
            width: 640,
            height: 360,
            fps_measured: fps,
            fps_advertised: announced,
            first_frame: Duration::from_millis(412),
            frames,
            decoded_for: Duration::from_millis(2966),
            frame: YuvFrame::solid(16, 16, [16, 128, 128]),
        }
    }

    #[test]
    fn the_facts_are_the_lines_of_the_text_report() {
        let lines: Vec<String> = report(Some(29.9712), Some(29.97003), 90)
            .facts()
            .iter()
            .map(|(label, text)| fact_line(label, text))
            .collect();
        assert_eq!(
            lines,
            [
                "  codec        H.264",
                "  resolution   640x360",
                "  frame rate   30.0 fps measured over 3.0 s (90 frames); the stream announces \
                 29.97 fps",
                "  first frame  412 ms",
                "  decoder      software (no hardware decoder found)",
            ]
        );
        let still = report(None, None, 1).facts();
        assert_eq!(
            still[2].1,
            "not measured (1 frame); the stream announces no rate"
        );
    }

    #[test]
    fn a_failure_reports_its_kind_word() {
        let failure = Failure::new(FailureKind::Refused, "10.0.0.1:554 refused the connection");
        let report = failure.report();
        assert_eq!(report.kind, "refused");
        assert_eq!(report.message, "10.0.0.1:554 refused the connection");
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::json!({ "kind": "refused", "message": "10.0.0.1:554 refused the connection" })
        );
    }
}
