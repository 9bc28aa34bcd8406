//! The routes of the local endpoint. One line per route; a new page or command is a new route
//! and a handler here, reading [`Shared`].
//!
//! Any other path is `404`; a known path with another method than `GET` (or `HEAD`) is `405`
//! with an `Allow` header (axum's method router).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

use super::Shared;
use super::metrics;

/// The endpoint's routes over `shared`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(shared)
}

/// `GET /status`: [`super::StatusReport`] as JSON.
async fn status(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.status_report()).into_response()
}

/// `GET /metrics`: the Prometheus text format.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        shared.metrics_text(),
    )
        .into_response()
}

async fn not_found() -> (StatusCode, &'static str) {
    (
        StatusCode::NOT_FOUND,
        "not found: this endpoint serves GET /status (JSON) and GET /metrics (Prometheus)\n",
    )
}
