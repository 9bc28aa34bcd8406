//! The routes of the local endpoint. One line per route; a new page or command is a new route
//! and a handler here, reading [`Shared`].
//!
//! `/login` and `/logout` are `access.rs`'s; every route is behind its guard.
//!
//! Any other path is `404`; a known path with another method than its own (`GET` or `HEAD`;
//! `POST` for `/reload`) is `405` with an `Allow` header (axum's method router).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};

use super::access::{self, Access};
use super::metrics;
use super::{ReloadAnswer, Shared};

/// The endpoint's routes over `shared`, every one (the fallback too) behind
/// [`access::guard`], which puts the [`access::Visitor`] in the request's extensions.
pub(crate) fn router(shared: Arc<Shared>, access: Arc<Access>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/reload", post(reload))
        .merge(super::page::routes())
        .fallback(not_found)
        .with_state(shared)
        .merge(access::routes(Arc::clone(&access)))
        .layer(middleware::from_fn_with_state(access, access::guard))
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

/// `POST /reload`: re-reads the configuration file on disk and applies it;
/// [`ReloadAnswer`] as JSON: `200` applied, `422` invalid or refused (nothing changed), `503`
/// busy, stopping, or no configuration to reload. The request's body is ignored: this never
/// takes a configuration from the network, only the file root wrote.
async fn reload(State(shared): State<Arc<Shared>>) -> Response {
    let Some(control) = shared.sources.control.clone() else {
        let answer = ReloadAnswer::new(&Err(crate::agent::ApplyError::NoFile));
        return (StatusCode::SERVICE_UNAVAILABLE, Json(answer)).into_response();
    };
    let outcome = control.reload().await;
    crate::agent::log_reload(&outcome);
    let status = match &outcome {
        Ok(_) => StatusCode::OK,
        Err(
            crate::agent::ApplyError::Invalid { .. } | crate::agent::ApplyError::Refused { .. },
        ) => StatusCode::UNPROCESSABLE_ENTITY,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(ReloadAnswer::new(&outcome))).into_response()
}

async fn not_found() -> (StatusCode, &'static str) {
    (
        StatusCode::NOT_FOUND,
        "not found: this endpoint serves the technician's page (GET /), GET /status (JSON), GET /metrics (Prometheus) and POST /reload\n",
    )
}
