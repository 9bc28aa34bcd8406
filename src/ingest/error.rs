//! What can go wrong in ingest, and whether retrying helps.

use super::template::{ChoiceError, TemplateError};

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
