//! What can go wrong in ingest, and whether retrying helps.

use super::pipeline::PipelineError;
use super::template::{ChoiceError, TemplateError};
use crate::config::TopicName;

/// An ingest failure. Every variant names the camera (and the element where there is one);
/// messages never contain credentials. [`IngestError::is_retryable`] says whether a new
/// attempt can succeed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// GStreamer itself could not be initialised (not retryable).
    #[error("GStreamer could not be initialised: {0}")]
    Init(String),
    /// No usable decoder template (not retryable: install the elements or change `decoder`).
    // The cause is part of the message (not a `#[source]`), so that a log line with `%error`
    // says everything and a cause chain does not say it twice.
    #[error("camera `{camera}`: {cause}")]
    Decoder { camera: String, cause: ChoiceError },
    /// A template that cannot be used (not retryable: a bug in the template).
    #[error("camera `{camera}`: {cause}")]
    Template {
        camera: String,
        cause: TemplateError,
    },
    /// The pipeline could not be built from the template (not retryable).
    #[error("camera `{camera}`: pipeline `{template}` cannot be built: {reason}")]
    Build {
        camera: String,
        template: String,
        reason: String,
    },
    /// An element reported an error: network, RTSP, authentication, decoding (retryable).
    #[error("camera `{camera}`: {element}: {message}")]
    Stream {
        camera: String,
        element: String,
        message: String,
    },
    /// The stream ended (retryable: cameras do not end their streams on purpose).
    #[error("camera `{camera}`: the stream ended (EOS)")]
    EndOfStream { camera: String },
    /// No frame for too long (retryable).
    #[error("camera `{camera}`: no frame for {}", humantime::format_duration(*.timeout))]
    Stalled {
        camera: String,
        timeout: std::time::Duration,
    },
}

impl IngestError {
    /// Camera `camera`'s pipeline could not be made.
    pub(crate) fn pipeline(camera: &TopicName, error: PipelineError) -> IngestError {
        let camera = camera.to_string();
        match error {
            PipelineError::Template(cause) => IngestError::Template { camera, cause },
            PipelineError::Choice(cause) => IngestError::Decoder { camera, cause },
            PipelineError::Build { template, reason } => IngestError::Build {
                camera,
                template,
                reason,
            },
        }
    }

    /// Whether a new attempt (after a backoff) can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            IngestError::Stream { .. }
                | IngestError::EndOfStream { .. }
                | IngestError::Stalled { .. }
        )
    }
}

/// `GST_RESOURCE_ERROR_NOT_FOUND`.
pub const RESOURCE_NOT_FOUND: i32 = 3;
/// `GST_RESOURCE_ERROR_NOT_AUTHORIZED`.
pub const RESOURCE_NOT_AUTHORIZED: i32 = 15;

/// An RTSP refusal the camera answered with, found in an error rtspsrc posted: the same
/// reading and the same words for the agent's `last_error` and `camera probe`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtspRefusal {
    /// 401: wrong or missing credentials.
    Unauthorized,
    /// 404: no stream at the path.
    NotFound,
}

impl RtspRefusal {
    /// The refusal in a bus error: `resource_code` is the error's code when its domain is
    /// GStreamer's resource errors, `text` its message and debug text. A `NOT_FOUND` counts
    /// only while the camera has offered no stream (later, it is a missing element).
    pub fn of(
        resource_code: Option<i32>,
        text: &str,
        offered_nothing: bool,
    ) -> Option<RtspRefusal> {
        if resource_code == Some(RESOURCE_NOT_AUTHORIZED) || text.contains("Unauthorized") {
            Some(RtspRefusal::Unauthorized)
        } else if (resource_code == Some(RESOURCE_NOT_FOUND) && offered_nothing)
            || text.contains("Not Found")
        {
            Some(RtspRefusal::NotFound)
        } else {
            None
        }
    }

    /// One sentence a technician can act on; `path` is the URL's path (`/stream1`).
    pub fn explain(self, credentials_given: bool, path: &str) -> String {
        match self {
            RtspRefusal::Unauthorized if credentials_given => {
                "the camera refused the credentials (401 Unauthorized): check \
                 username/password_file"
                    .to_owned()
            }
            RtspRefusal::Unauthorized => "the camera wants a user name and password (401 \
                                          Unauthorized): set username/password_file"
                .to_owned(),
            RtspRefusal::NotFound => {
                let path = if path.is_empty() { "/" } else { path };
                format!(
                    "the camera has no stream at `{path}` (404 Not Found): check the stream \
                     path/profile"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtsp_refusals_are_read_from_the_code_or_the_text() {
        // (resource code, text, offered nothing, expected)
        let cases = [
            (Some(15), "", false, Some(RtspRefusal::Unauthorized)),
            (
                None,
                "Got error response: 401 (Unauthorized).",
                false,
                Some(RtspRefusal::Unauthorized),
            ),
            (Some(3), "", true, Some(RtspRefusal::NotFound)),
            (Some(3), "no element", false, None),
            (None, "Not Found (404)", false, Some(RtspRefusal::NotFound)),
            (Some(7), "Could not connect", true, None),
            (None, "", true, None),
        ];
        for (code, text, offered_nothing, expected) in cases {
            assert_eq!(
                RtspRefusal::of(code, text, offered_nothing),
                expected,
                "{code:?} {text:?}"
            );
        }
        assert!(RtspRefusal::NotFound.explain(false, "").contains("`/`"));
        assert!(
            RtspRefusal::Unauthorized
                .explain(true, "/x")
                .contains("refused the credentials")
        );
    }
}
