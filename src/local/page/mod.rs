//! The technician's page: what each camera sees and what the model finds, and a zone and line
//! editor on the live picture. Plain HTML, CSS and JavaScript embedded in the binary (no build
//! step, nothing fetched from elsewhere), served by the local endpoint.
//!
//! ```text
//!  GET  /                                   overview: every camera, live thumbnails, figures
//!  GET  /cameras/{name}                     camera view and zone/line editor
//!  GET  /assets/{page.css,page.js}          the page's style and script
//!  GET  /api/agent                          version, uptime, configuration version, cameras
//!  GET  /api/cameras/{name}/view?width=W    the camera's next analysed frame (View): picture
//!                                           under its privacy mode, objects, zones, lines
//!  POST /api/cameras/{name}/shapes          save a zone or line (JSON; replaces one of the
//!                                           same name), applied live
//!  POST /api/cameras/{name}/shapes/remove   remove a zone or line
//! ```
//!
//! - The figures come from `/status`, polled by the page once a second.
//! - A view is rendered only when asked, by the thread that analyses the camera's next frame
//!   ([`crate::framepath::Views`]): an unwatched page costs nothing, and a watched camera
//!   gives at most one picture per analysed frame.
//! - Saving goes the one way the configuration file changes ([`crate::config::change`], the
//!   path of `watchpost camera zone add`): validated by the loader, written atomically with
//!   its comments kept, audited with the page's user, then applied live
//!   ([`crate::agent::Control::apply`]).
//! - No secret reaches the page: the view has no URL, the agent facts say only whether a
//!   camera has a password.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::{Shared, Visitor};
use crate::config::change;
use crate::config::edit::{self, EditError, NewLine, NewZone, Shape};

const OVERVIEW_HTML: &str = include_str!("overview.html");
const CAMERA_HTML: &str = include_str!("camera.html");
const PAGE_CSS: &str = include_str!("page.css");
const PAGE_JS: &str = include_str!("page.js");

/// How long a view request waits for the camera's next analysed frame.
const VIEW_TIMEOUT: Duration = Duration::from_secs(5);
/// The widest picture the page asks for.
const MAX_VIEW_WIDTH: u32 = 1920;

/// The page's routes, over the endpoint's shared state.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(overview))
        .route("/cameras/:name", get(camera_page))
        .route("/assets/:file", get(asset))
        .route("/api/agent", get(agent))
        .route("/api/cameras/:name/view", get(view))
        .route("/api/cameras/:name/shapes", post(save_shape))
        .route("/api/cameras/:name/shapes/remove", post(remove_shape))
}

/// `template` with each `{{name}}` replaced by its value, escaped.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(
            &format!("{{{{{name}}}}}"),
            &super::access::escape_html(value),
        );
    }
    out
}

fn page(html: String) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        Html(html),
    )
        .into_response()
}

async fn overview(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    let facts = &shared.sources.facts;
    page(fill(
        OVERVIEW_HTML,
        &[
            ("csrf", &visitor.csrf),
            ("user", &visitor.user),
            ("device", &format!("{}/{}", facts.site, facts.device)),
        ],
    ))
}

async fn camera_page(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    if shared.camera_id(&name).is_none() {
        return not_found_camera(&shared, &name);
    }
    let facts = &shared.sources.facts;
    page(fill(
        CAMERA_HTML,
        &[
            ("csrf", &visitor.csrf),
            ("user", &visitor.user),
            ("camera", &name),
            ("device", &format!("{}/{}", facts.site, facts.device)),
        ],
    ))
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "page.css" => (PAGE_CSS, "text/css; charset=utf-8"),
        "page.js" => (PAGE_JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// `GET /api/agent`: what the overview shows beside `/status`: the configuration's version
/// and, per camera, what a technician checks first (never a URL or password).
async fn agent(State(shared): State<Arc<Shared>>) -> Response {
    let Some(control) = shared.sources.control.clone() else {
        return Json(json!({ "config_version": null, "cameras": [] })).into_response();
    };
    let running = control.running();
    let version = match control.config_path() {
        Some(path) => {
            let path = path.to_owned();
            let state_dir = running.device.state_dir.clone();
            tokio::task::spawn_blocking(move || {
                let bytes = std::fs::read(&path).ok()?;
                // A read: what the agent keeps when it loads the file, without writing it.
                let store = crate::config::version::VersionStore::open(&state_dir);
                Some(store.peek(&bytes).to_string())
            })
            .await
            .ok()
            .flatten()
        }
        None => None,
    };
    let cameras: Vec<_> = running
        .cameras
        .iter()
        .map(|c| {
            json!({
                "name": c.name.as_str(),
                "enabled": c.enabled,
                "detect_fps": c.detect_fps,
                "password": if c.password.is_some() { "set" } else { "not set" },
                "zones": c.zones.len(),
                "lines": c.lines.len(),
            })
        })
        .collect();
    Json(json!({
        "config_version": version,
        "cameras": cameras,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct ViewQuery {
    width: Option<u32>,
    /// `true`: what the model sees (the frame scaled into its input), `width` ignored.
    #[serde(default)]
    model_input: bool,
}

/// `GET /api/cameras/{name}/view`: the next analysed frame's [`crate::events::View`] as JSON,
/// with the picture as a `data:` URL (`null` when pictures are off). 404 for an unknown camera,
/// 504 when no frame is analysed within [`VIEW_TIMEOUT`] (the camera is not streaming).
async fn view(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<ViewQuery>,
) -> Response {
    let Some(id) = shared.camera_id(&name) else {
        return not_found_camera(&shared, &name);
    };
    let Some(views) = shared.sources.views.as_ref() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "no frame path in this process",
        );
    };
    let width = query.width.unwrap_or(1280).clamp(64, MAX_VIEW_WIDTH);
    let Some(receiver) = views.request(id, width, query.model_input) else {
        return not_found_camera(&shared, &name);
    };
    match tokio::time::timeout(VIEW_TIMEOUT, receiver).await {
        Ok(Ok(Ok(view))) => {
            let picture = view.jpeg.as_ref().map(|jpeg| {
                format!(
                    "data:image/jpeg;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(jpeg)
                )
            });
            let mut body = serde_json::to_value(&view).unwrap_or_default();
            body["camera"] = json!(name);
            body["picture"] = json!(picture);
            body["captured_at"] = json!(crate::publish::payload::rfc3339_millis(view.captured_at));
            ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
        }
        Ok(Ok(Err(why))) => problem(StatusCode::INTERNAL_SERVER_ERROR, &why),
        Ok(Err(_)) | Err(_) => problem(
            StatusCode::GATEWAY_TIMEOUT,
            &format!(
                "no frame of camera {name} analysed in {} s: is it streaming?",
                VIEW_TIMEOUT.as_secs()
            ),
        ),
    }
}

/// A zone or line drawn on the page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapeForm {
    /// `zone` or `line`.
    kind: String,
    name: String,
    /// `[x, y]`, fractions of the frame.
    points: Vec<[f64; 2]>,
    /// Zones and lines: empty for both classes.
    #[serde(default)]
    classes: Vec<String>,
    /// Lines: `[first, second]` (default `["in", "out"]`).
    #[serde(default)]
    direction_names: Option<[String; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveForm {
    kind: String,
    name: String,
}

fn parse_kind(kind: &str) -> Result<Shape, String> {
    match kind {
        "zone" => Ok(Shape::Zone),
        "line" => Ok(Shape::Line),
        other => Err(format!("kind: `{other}` is neither `zone` nor `line`")),
    }
}

/// `POST /api/cameras/{name}/shapes`: saves a zone or line (replacing one of the same kind and
/// name) through [`change::apply`], then applies the configuration live.
async fn save_shape(
    State(shared): State<Arc<Shared>>,
    Path(camera): Path<String>,
    Extension(visitor): Extension<Visitor>,
    body: axum::body::Bytes,
) -> Response {
    let form: ShapeForm = match serde_json::from_slice(&body) {
        Ok(form) => form,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("the request: {e}")),
    };
    let shape = match parse_kind(&form.kind) {
        Ok(shape) => shape,
        Err(why) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &why),
    };
    let user = visitor.user;
    let done = format!("saved {} {} of camera {camera}", shape.what(), form.name);
    let name = form.name.clone();
    let camera_for_edit = camera.clone();
    let edit = move |text: &str| -> Result<String, EditError> {
        let text = without_shape(text, &camera_for_edit, shape, &name)?;
        match shape {
            Shape::Zone => edit::add_zone(
                &text,
                &camera_for_edit,
                &NewZone {
                    name: form.name.clone(),
                    points: form.points.clone(),
                    classes: form.classes.clone(),
                    loiter_s: None,
                    inertia: None,
                },
            ),
            Shape::Line => edit::add_line(
                &text,
                &camera_for_edit,
                &NewLine {
                    name: form.name.clone(),
                    points: form.points.clone(),
                    direction_names: form
                        .direction_names
                        .clone()
                        .unwrap_or_else(|| ["in".to_owned(), "out".to_owned()]),
                    classes: form.classes.clone(),
                    inertia: None,
                },
            ),
        }
    };
    change_and_apply(
        &shared,
        "page shape save",
        &camera,
        shape,
        &user,
        done,
        edit,
    )
    .await
}

/// `POST /api/cameras/{name}/shapes/remove`.
async fn remove_shape(
    State(shared): State<Arc<Shared>>,
    Path(camera): Path<String>,
    Extension(visitor): Extension<Visitor>,
    body: axum::body::Bytes,
) -> Response {
    let form: RemoveForm = match serde_json::from_slice(&body) {
        Ok(form) => form,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("the request: {e}")),
    };
    let shape = match parse_kind(&form.kind) {
        Ok(shape) => shape,
        Err(why) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &why),
    };
    let user = visitor.user;
    let done = format!("removed {} {} of camera {camera}", shape.what(), form.name);
    let camera_for_edit = camera.clone();
    let edit = move |text: &str| edit::remove_shape(text, &camera_for_edit, shape, &form.name);
    change_and_apply(
        &shared,
        "page shape remove",
        &camera,
        shape,
        &user,
        done,
        edit,
    )
    .await
}

/// `text` without camera `camera`'s `shape` called `name`, if it has one.
fn without_shape(text: &str, camera: &str, shape: Shape, name: &str) -> Result<String, EditError> {
    match edit::remove_shape(text, camera, shape, name) {
        Ok(text) => Ok(text),
        Err(EditError::NotFound { what, .. }) if what != "camera" => Ok(text.to_owned()),
        Err(e) => Err(e),
    }
}

/// Changes the file the one way, then applies it live; the answer says what happened.
async fn change_and_apply(
    shared: &Shared,
    command: &'static str,
    camera: &str,
    shape: Shape,
    user: &str,
    done: String,
    edit: impl FnOnce(&str) -> Result<String, EditError> + Send + 'static,
) -> Response {
    let Some(control) = shared.sources.control.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "no configuration file to change",
        );
    };
    let Some(file) = control.config_path().map(std::path::Path::to_owned) else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "no configuration file to change",
        );
    };
    let mut request = change::Request::new(
        command,
        &file,
        &format!("cameras.{camera}.{}", shape.field()),
    );
    request.user = Some(user.to_owned());
    let applied = match tokio::task::spawn_blocking(move || change::apply(request, edit)).await {
        Ok(Ok(applied)) => applied,
        Ok(Err(error)) => return change_problem(&error),
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    tracing::info!(user, "{done} (from the page)");
    match control.apply(applied.config).await {
        Ok(live) => Json(json!({
            "done": done,
            "live": live.live,
            "at_restart": live.at_restart,
        }))
        .into_response(),
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "{done} in the file, but it could not be applied live: {e}; it applies at the next reload or restart"
            ),
        ),
    }
}

fn change_problem(error: &change::ChangeError) -> Response {
    match error {
        change::ChangeError::Invalid { error, .. } => {
            let problems = error.lines();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "error": problems.join("; "), "problems": problems })),
            )
                .into_response()
        }
        change::ChangeError::Edit { error, .. } => {
            problem(StatusCode::UNPROCESSABLE_ENTITY, &error.to_string())
        }
        other => problem(StatusCode::INTERNAL_SERVER_ERROR, &other.to_string()),
    }
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn not_found_camera(shared: &Shared, name: &str) -> Response {
    let known: Vec<String> = shared.counters().into_iter().map(|(_, n, _)| n).collect();
    problem(
        StatusCode::NOT_FOUND,
        &format!("no camera `{name}` (cameras: {})", known.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_into_the_templates() {
        let cases = [
            ("{{a}}", "cam0", "cam0"),
            ("<b>{{a}}</b>", "<script>", "<b>&lt;script&gt;</b>"),
            (
                "x=\"{{a}}\"",
                "\" onload=\"x",
                "x=\"&quot; onload=&quot;x\"",
            ),
            ("{{a}}{{a}}", "'&", "&#39;&amp;&#39;&amp;"),
        ];
        for (template, value, expected) in cases {
            assert_eq!(
                fill(template, &[("a", value)]),
                expected,
                "{template} {value}"
            );
        }
    }

    #[test]
    fn every_template_placeholder_is_filled() {
        for (name, html, values) in [
            ("overview", OVERVIEW_HTML, &["csrf", "user", "device"][..]),
            (
                "camera",
                CAMERA_HTML,
                &["csrf", "user", "camera", "device"][..],
            ),
        ] {
            let filled = fill(html, &values.iter().map(|v| (*v, "x")).collect::<Vec<_>>());
            assert!(!filled.contains("{{"), "{name} keeps a placeholder");
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "{name} fetches nothing from elsewhere"
            );
        }
        assert!(!PAGE_JS.contains("http://") && !PAGE_JS.contains("https://"));
    }
}
