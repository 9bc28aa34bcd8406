//! The technician's page: what each camera sees and what the model finds, and a zone and line
//! editor on the live picture. Plain HTML, CSS and JavaScript embedded in the binary (no build
//! step, nothing fetched from elsewhere), served by the local endpoint.
//!
//! ```text
//!  GET  /                                   overview: every camera, live thumbnails, figures
//!  GET  /cameras/{name}                     camera view and zone/line editor
//!  GET  /cameras/new                        "Add a camera": URL and credentials, probe, save
//!  GET  /assets/{page.css,page.js,add.js}   the page's style and scripts
//!  GET  /api/agent                          version, uptime, configuration version, cameras
//!  GET  /api/cameras/{name}/view?width=W    the camera's next analysed frame (View): picture
//!                                           under its privacy mode, objects, zones, lines
//!  POST /api/cameras/{name}/shapes          save a zone or line (JSON; replaces one of the
//!                                           same name), applied live
//!  POST /api/cameras/{name}/shapes/remove   remove a zone or line
//!  POST /api/cameras/probe                  probe a camera as `camera probe` does (JSON: url,
//!                                           user, password): its facts and a picture, or
//!                                           the failure's word and sentence
//!  POST /api/cameras                        add a camera as `camera add` does (JSON: name,
//!                                           url, user, password), applied live
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
//! - Adding a camera goes the way of `watchpost camera add`: its password goes into a file of
//!   its own beside the configuration ([`change::stage_camera_password`]), never into the file.
//!   Its probe is `camera probe`'s ([`crate::probe::probe_stream`], the same diagnosis and
//!   words, [`crate::probe::StreamReport::facts`]), on a blocking thread, one at a time; its
//!   picture follows the device's privacy (none when pictures are off or persons must be
//!   pixelated: the probe runs no model).
//! - No secret reaches the page: the view has no URL, the agent facts say only whether a
//!   camera has a password, a probe echoes its URL without credentials, and a password sent
//!   ([`crate::config::Secret`]) is never quoted back, not even in an error.

use std::path::Path as FilePath;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Shared, Visitor};
use crate::config::change::{self, ChangeError};
use crate::config::edit::{self, EditError, NewCamera, NewLine, NewZone, Shape};
use crate::config::{Secret, SnapshotMode, TopicName};
use crate::framepath::{MAX_VIEWS_WAITING, ViewRefused};
use crate::probe::{self, ProbeOptions, ProbeTarget, StreamReport};

const OVERVIEW_HTML: &str = include_str!("overview.html");
const CAMERA_HTML: &str = include_str!("camera.html");
const PAGE_CSS: &str = include_str!("page.css");
const PAGE_JS: &str = include_str!("page.js");
const ADD_HTML: &str = include_str!("add.html");
const ADD_JS: &str = include_str!("add.js");

/// How long a view request waits for the camera's next analysed frame.
const VIEW_TIMEOUT: Duration = Duration::from_secs(5);
/// The widest picture the page asks for.
const MAX_VIEW_WIDTH: u32 = 1920;
/// The widest probe picture sent to the page (a wider camera's is scaled down).
const PROBE_PICTURE_WIDTH: u32 = 1280;
/// How long a probe request may take in all: DNS, TCP and the first frame may each take
/// [`ProbeOptions::DEFAULT_TIMEOUT_S`], then [`ProbeOptions::DEFAULT_SECONDS`] of decoding.
const PROBE_DEADLINE: Duration =
    Duration::from_secs(4 * ProbeOptions::DEFAULT_TIMEOUT_S + ProbeOptions::DEFAULT_SECONDS);

/// The page's routes, over the endpoint's shared state.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(overview))
        .route("/cameras/:name", get(camera_page))
        .route("/cameras/new", get(add_page))
        .route("/assets/:file", get(asset))
        .route("/api/agent", get(agent))
        .route("/api/cameras/:name/view", get(view))
        .route("/api/cameras/:name/shapes", post(save_shape))
        .route("/api/cameras/:name/shapes/remove", post(remove_shape))
        .route("/api/cameras/probe", post(probe_camera))
        .route("/api/cameras", post(add_camera))
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

/// `template` filled with the visitor's CSRF token and user name, the device's name, and
/// `values`.
fn visitor_page(
    shared: &Shared,
    visitor: &Visitor,
    template: &str,
    values: &[(&str, &str)],
) -> Response {
    let facts = &shared.sources.facts;
    let device = format!("{}/{}", facts.site, facts.device);
    let mut all = vec![
        ("csrf", visitor.csrf.as_str()),
        ("user", visitor.user.as_str()),
        ("device", device.as_str()),
    ];
    all.extend_from_slice(values);
    page(fill(template, &all))
}

async fn overview(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    visitor_page(&shared, &visitor, OVERVIEW_HTML, &[])
}

async fn camera_page(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    if shared.camera_id(&name).is_none() {
        return not_found_camera(&shared, &name);
    }
    visitor_page(&shared, &visitor, CAMERA_HTML, &[("camera", &name)])
}

/// `GET /cameras/new`: the "Add a camera" form.
async fn add_page(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    visitor_page(&shared, &visitor, ADD_HTML, &[])
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "page.css" => (PAGE_CSS, "text/css; charset=utf-8"),
        "page.js" => (PAGE_JS, "text/javascript; charset=utf-8"),
        "add.js" => (ADD_JS, "text/javascript; charset=utf-8"),
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
/// 503 when [`MAX_VIEWS_WAITING`] views of the camera wait already, 504 when no frame is
/// analysed within [`VIEW_TIMEOUT`] (the camera is not streaming).
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
    let receiver = match views.request(id, width, query.model_input) {
        Ok(receiver) => receiver,
        Err(ViewRefused::UnknownCamera) => return not_found_camera(&shared, &name),
        Err(ViewRefused::Full) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "{MAX_VIEWS_WAITING} views of camera {name} are waiting already: close \
                     some of the pages that show it"
                ),
            );
        }
    };
    match tokio::time::timeout(VIEW_TIMEOUT, receiver).await {
        Ok(Ok(Ok(view))) => {
            let picture = view.jpeg.as_deref().map(jpeg_data_url);
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

/// A form that names the kind of shape it is about.
trait ShapeKind {
    fn kind(&self) -> &str;
}

impl ShapeKind for ShapeForm {
    fn kind(&self) -> &str {
        &self.kind
    }
}

impl ShapeKind for RemoveForm {
    fn kind(&self) -> &str {
        &self.kind
    }
}

/// The request's JSON body as a `T`, or 400 with what is wrong in it (serde's words: they
/// quote no password, see [`Secret`]'s `Deserialize`).
fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(problem(
            StatusCode::BAD_REQUEST,
            &format!("the request: {e}"),
        ))
    })
}

/// A zone or line form and the shape it names; 400 or 422 otherwise.
fn shape_form<T: DeserializeOwned + ShapeKind>(body: &[u8]) -> Result<(T, Shape), Box<Response>> {
    let form: T = json_body(body)?;
    let shape = parse_kind(form.kind())
        .map_err(|why| Box::new(problem(StatusCode::UNPROCESSABLE_ENTITY, &why)))?;
    Ok((form, shape))
}

/// `POST /api/cameras/{name}/shapes`: saves a zone or line (replacing one of the same kind and
/// name) through [`change::apply`], then applies the configuration live.
async fn save_shape(
    State(shared): State<Arc<Shared>>,
    Path(camera): Path<String>,
    Extension(visitor): Extension<Visitor>,
    body: axum::body::Bytes,
) -> Response {
    let (form, shape) = match shape_form::<ShapeForm>(&body) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
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
    change_shapes(
        &shared,
        &visitor,
        "page shape save",
        &camera,
        shape,
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
    let (form, shape) = match shape_form::<RemoveForm>(&body) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    let done = format!("removed {} {} of camera {camera}", shape.what(), form.name);
    let camera_for_edit = camera.clone();
    let edit = move |text: &str| edit::remove_shape(text, &camera_for_edit, shape, &form.name);
    change_shapes(
        &shared,
        &visitor,
        "page shape remove",
        &camera,
        shape,
        done,
        edit,
    )
    .await
}

/// Changes camera `camera`'s zones or lines by `edit` (`command`, for the audit log), then
/// applies it live.
async fn change_shapes(
    shared: &Shared,
    visitor: &Visitor,
    command: &'static str,
    camera: &str,
    shape: Shape,
    done: String,
    edit: impl FnOnce(&str) -> Result<String, EditError> + Send + 'static,
) -> Response {
    let touched = format!("cameras.{camera}.{}", shape.field());
    let user = visitor.user.clone();
    change_and_apply(shared, &visitor.user, done, json!({}), move |file| {
        change::apply(page_request(command, file, &touched, user), edit)
    })
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

/// A camera as the "Add a camera" form sends it, to probe (`name` unused) or to add.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CameraForm {
    #[serde(default)]
    name: String,
    /// As typed: `rtsp://[user[:password]@]host[:port]/path`.
    url: String,
    /// Empty: none (or the URL's).
    #[serde(default)]
    user: String,
    /// Empty: none (or the URL's).
    #[serde(default)]
    password: Option<Secret>,
}

impl CameraForm {
    /// What to connect to: the URL without credentials, the user name and password from the
    /// fields or from the URL (not both: keep one, as `camera add` says).
    ///
    /// # Errors
    /// A sentence for the technician that quotes neither the URL nor the password.
    fn target(&self) -> Result<ProbeTarget, String> {
        let mut target =
            ProbeTarget::from_url(&self.url, None, None).map_err(|e| format!("the URL {e}"))?;
        let user = Some(self.user.trim()).filter(|u| !u.is_empty());
        let password = self.password.clone().filter(|p| !p.expose().is_empty());
        if target.username.is_some() && user.is_some() {
            return Err(
                "the URL has a user name in it and the user field is filled too: keep one"
                    .to_owned(),
            );
        }
        if target.password.is_some() && password.is_some() {
            return Err(
                "the URL has a password in it and the password field is filled too: keep one"
                    .to_owned(),
            );
        }
        if password
            .as_ref()
            .is_some_and(|p| p.expose().contains(['\n', '\r']))
        {
            return Err("the password must be one line".to_owned());
        }
        if user.is_some() {
            target.username = user.map(str::to_owned);
        }
        if password.is_some() {
            target.password = password;
        }
        Ok(target)
    }
}

/// One probe at a time: a probe decodes a stream on the cores the cameras use.
static PROBING: AtomicBool = AtomicBool::new(false);

/// The one probe running; the next may start when it is dropped.
struct ProbeSlot;

impl ProbeSlot {
    fn take() -> Option<ProbeSlot> {
        PROBING
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| ProbeSlot)
    }
}

impl Drop for ProbeSlot {
    fn drop(&mut self) {
        PROBING.store(false, Ordering::Release);
    }
}

/// The camera form in `body` and the stream it names; `400` for a body that is not the form,
/// `422` for a URL or credentials that cannot be used.
fn camera_form(body: &[u8]) -> Result<(CameraForm, ProbeTarget), Box<Response>> {
    let form: CameraForm = json_body(body)?;
    let target = form
        .target()
        .map_err(|why| Box::new(problem(StatusCode::UNPROCESSABLE_ENTITY, &why)))?;
    Ok((form, target))
}

/// `POST /api/cameras/probe`: `camera probe` on the form's URL and credentials, with its
/// default seconds and timeout, on a blocking thread. `200` with `ok` and the stream's facts
/// and picture, or `ok: false` and the failure (`error.kind`: `refused`, `unauthorized`,
/// `no_video`, …; `error.message`: `camera probe`'s sentence); `400`/`422` for a bad request,
/// `429` while another probe runs, `504` past [`PROBE_DEADLINE`].
async fn probe_camera(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    body: axum::body::Bytes,
) -> Response {
    let (_, target) = match camera_form(&body) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let Some(slot) = ProbeSlot::take() else {
        return problem(
            StatusCode::TOO_MANY_REQUESTS,
            "another camera is being probed: try again when it is done",
        );
    };
    let privacy = picture_privacy(&shared);
    let url = target.url.clone();
    let probing = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let report = probe::probe_stream(&target, &ProbeOptions::DEFAULT)?;
        let picture = match privacy {
            Ok(()) => probe_picture(&report).map_err(|e| format!("no picture: {e}")),
            Err(why) => Err(why),
        };
        Ok::<_, probe::Failure>((report, picture))
    });
    let user = visitor.user;
    match tokio::time::timeout(PROBE_DEADLINE, probing).await {
        Ok(Ok(Ok((report, picture)))) => {
            tracing::info!(%user, %url, "camera probe from the page: it works");
            let facts: Vec<[String; 2]> = report
                .facts()
                .into_iter()
                .map(|(label, text)| [label.to_owned(), text])
                .collect();
            let (picture, picture_note) = match picture {
                Ok(picture) => (Some(picture), None),
                Err(note) => (None, Some(note)),
            };
            Json(json!({
                "ok": true,
                "url": url,
                "codec": report.codec,
                "width": report.width,
                "height": report.height,
                "fps": report.fps_shown(),
                "fps_advertised": report.fps_advertised_shown(),
                "first_frame_ms": report.first_frame_ms(),
                "frames": report.frames,
                "decoder": report.decoder,
                "facts": facts,
                "picture": picture,
                "picture_note": picture_note,
            }))
            .into_response()
        }
        Ok(Ok(Err(failure))) => {
            tracing::info!(
                %user,
                %url,
                kind = failure.kind.as_str(),
                "camera probe from the page: {}",
                failure.message
            );
            Json(json!({ "ok": false, "url": url, "error": failure.report() })).into_response()
        }
        Ok(Err(e)) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the probe failed: {e}"),
        ),
        Err(_) => problem(
            StatusCode::GATEWAY_TIMEOUT,
            &format!(
                "the probe did not end within {} s",
                PROBE_DEADLINE.as_secs()
            ),
        ),
    }
}

/// Whether a probe's picture may be shown under the device's privacy (`[events]`), or why not.
/// Pictures off: none; persons pixelated: none either (the probe runs no model to find them).
fn picture_privacy(shared: &Shared) -> Result<(), String> {
    let Some(control) = shared.sources.control.as_ref() else {
        return Ok(());
    };
    let events = &control.running().events;
    match events.snapshots {
        _ if events.metadata_only => Err(crate::events::PictureError::Off.to_string()),
        SnapshotMode::Off => Err(crate::events::PictureError::Off.to_string()),
        SnapshotMode::Redacted => Err(
            "persons are pixelated on this device ([events] snapshots = \"redacted\"): the \
             picture is shown on the camera's view once it is added"
                .to_owned(),
        ),
        SnapshotMode::Annotated => Ok(()),
    }
}

/// The probe's last frame as a `data:` URL of a JPEG at most [`PROBE_PICTURE_WIDTH`] wide.
fn probe_picture(report: &StreamReport) -> Result<String, crate::imaging::ImageError> {
    let picture = report.frame.to_bgr()?;
    let jpeg = crate::imaging::snapshot_jpeg(
        &picture,
        &[],
        &[],
        PROBE_PICTURE_WIDTH,
        probe::draw::JPEG_QUALITY,
    )?;
    Ok(jpeg_data_url(&jpeg))
}

/// `data:image/jpeg;base64,…`.
fn jpeg_data_url(jpeg: &[u8]) -> String {
    format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(jpeg)
    )
}

/// `POST /api/cameras`: adds the form's camera the way `watchpost camera add` does (a password
/// into `NAME-password` beside the configuration, never into it; checked by the loader;
/// audited as `page camera add` with the visitor's user), then applies it live: the camera
/// starts. `409` for a name already taken; `422` with the loader's lines for a refused camera.
async fn add_camera(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    body: axum::body::Bytes,
) -> Response {
    let (form, target) = match camera_form(&body) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    if let Err(why) = TopicName::parse(&form.name) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("name: {why}"));
    }
    let name = form.name;
    let done = format!("added camera {name} ({})", target.url);
    let answer = json!({ "camera": name, "view": format!("/cameras/{name}") });
    let mut camera = NewCamera {
        name,
        url: target.url,
        username: target.username,
        password_file: None,
        detect_fps: None,
        transport: None,
        decoder: None,
    };
    let password = target.password;
    let user = visitor.user.clone();
    change_and_apply(&shared, &visitor.user, done, answer, move |file| {
        let touched = format!("cameras.{}", camera.name);
        let mut request = page_request("page camera add", file, &touched, user);
        if let Some(password) = &password {
            change::stage_camera_password(&mut request, &mut camera, password)?;
        }
        change::apply(request, |text| edit::add_camera(text, &camera))
    })
    .await
}

/// A change asked for by the page's `user` (`page@local`, `page@<ip>`), for the audit log.
fn page_request(command: &str, file: &FilePath, touched: &str, user: String) -> change::Request {
    let mut request = change::Request::new(command, file, touched);
    request.user = Some(user);
    request
}

/// Makes a change to the configuration file the one way (`change`, given the file, on a
/// blocking thread), then applies it live; the answer says what happened: `done`, what
/// applied live and what waits for a restart, and `answer`'s fields.
async fn change_and_apply(
    shared: &Shared,
    user: &str,
    done: String,
    mut answer: serde_json::Value,
    change: impl FnOnce(&FilePath) -> Result<change::Applied, ChangeError> + Send + 'static,
) -> Response {
    let Some(control) = shared.sources.control.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "no configuration file to change",
        );
    };
    let Some(file) = control.config_path().map(FilePath::to_owned) else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "no configuration file to change",
        );
    };
    let applied = match tokio::task::spawn_blocking(move || change(&file)).await {
        Ok(Ok(applied)) => applied,
        Ok(Err(error)) => return change_problem(&error),
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    tracing::info!(user, "{done} (from the page)");
    match control.apply(applied.config).await {
        Ok(live) => {
            answer["done"] = json!(done);
            answer["live"] = json!(live.live);
            answer["at_restart"] = json!(live.at_restart);
            Json(answer).into_response()
        }
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "{done} in the file, but it could not be applied live: {e}; it applies at the next reload or restart"
            ),
        ),
    }
}

fn change_problem(error: &ChangeError) -> Response {
    match error {
        ChangeError::Invalid { error, .. } => {
            let problems = error.lines();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "error": problems.join("; "), "problems": problems })),
            )
                .into_response()
        }
        ChangeError::Edit { error, .. } if matches!(**error, EditError::Duplicate { .. }) => {
            problem(StatusCode::CONFLICT, &error.to_string())
        }
        ChangeError::Edit { error, .. } => {
            problem(StatusCode::UNPROCESSABLE_ENTITY, &error.to_string())
        }
        ChangeError::Changed { .. } => problem(StatusCode::CONFLICT, &error.to_string()),
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
            ("add", ADD_HTML, &["csrf", "user", "device"][..]),
        ] {
            let filled = fill(html, &values.iter().map(|v| (*v, "x")).collect::<Vec<_>>());
            assert!(!filled.contains("{{"), "{name} keeps a placeholder");
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "{name} fetches nothing from elsewhere"
            );
        }
        for script in [PAGE_JS, ADD_JS] {
            assert!(!script.contains("http://") && !script.contains("https://"));
        }
    }
    fn form(json: &str) -> Result<CameraForm, String> {
        json_body::<CameraForm>(json.as_bytes()).map_err(|r| r.status().to_string())
    }

    #[test]
    fn the_camera_form_gives_a_target_without_credentials_in_its_url() {
        const SECRET: &str = "pa55-9f3e";
        /// The URL, user and password, or the start of the error.
        type Expected =
            Result<(&'static str, Option<&'static str>, Option<&'static str>), &'static str>;
        let cases: [(String, Expected); 7] = [
            (
                format!(
                    r#"{{"url": " rtsp://10.0.0.5/s1 ", "user": "admin", "password": "{SECRET}"}}"#
                ),
                Ok(("rtsp://10.0.0.5/s1", Some("admin"), Some(SECRET))),
            ),
            (
                format!(r#"{{"url": "rtsp://admin:{SECRET}@10.0.0.5:8554/s1"}}"#),
                Ok(("rtsp://10.0.0.5:8554/s1", Some("admin"), Some(SECRET))),
            ),
            (
                r#"{"url": "rtsp://10.0.0.5/s1", "user": "", "password": ""}"#.to_owned(),
                Ok(("rtsp://10.0.0.5/s1", None, None)),
            ),
            (
                format!(
                    r#"{{"url": "rtsp://admin:{SECRET}@10.0.0.5/s1", "password": "{SECRET}"}}"#
                ),
                Err("the URL has a password in it and the password field is filled too"),
            ),
            (
                r#"{"url": "rtsp://admin@10.0.0.5/s1", "user": "viewer"}"#.to_owned(),
                Err("the URL has a user name in it and the user field is filled too"),
            ),
            (
                format!(r#"{{"url": "http://u:{SECRET}@10.0.0.5/s1"}}"#),
                Err("the URL has scheme `http`"),
            ),
            (
                format!(r#"{{"url": "rtsp://10.0.0.5/s1", "password": "{SECRET}\nx"}}"#),
                Err("the password must be one line"),
            ),
        ];
        for (json, expected) in cases {
            let got = form(&json).unwrap().target();
            match (got, expected) {
                (Ok(target), Ok((url, user, password))) => {
                    assert_eq!(target.url, url, "{json}");
                    assert_eq!(target.username.as_deref(), user, "{json}");
                    assert_eq!(
                        target.password.as_ref().map(Secret::expose),
                        password,
                        "{json}"
                    );
                }
                (Err(why), Err(start)) => {
                    assert!(why.starts_with(start), "{json}: {why}");
                    assert!(!why.contains(SECRET), "{json}: {why}");
                }
                (got, _) => panic!("{json}: {:?}", got.map(|t| t.url)),
            }
        }
    }

    #[test]
    fn a_bad_camera_form_is_a_400_that_quotes_no_password() {
        for json in [
            "{",
            r#"{"user": "admin"}"#,
            r#"{"url": "rtsp://h/x", "password": 48213377}"#,
            r#"{"url": "rtsp://h/x", "passwd": "48213377"}"#,
        ] {
            let response = json_body::<CameraForm>(json.as_bytes()).unwrap_err();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{json}");
        }
        let response =
            json_body::<CameraForm>(br#"{"url": "rtsp://h/x", "password": 48213377}"#).unwrap_err();
        let body = body_text(*response);
        assert!(body.contains("a password must be a string"), "{body}");
        assert!(!body.contains("48213377"), "{body}");
    }

    /// The body of a response built in memory.
    fn body_text(response: Response) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = runtime
            .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn refused_changes_get_fitting_statuses() {
        let file = std::path::PathBuf::from("/etc/watchpost/watchpost.toml");
        let duplicate = ChangeError::Edit {
            file: file.clone(),
            error: Box::new(EditError::Duplicate {
                what: "camera",
                name: "cam1".to_owned(),
                within: "the file".to_owned(),
                hint: "",
            }),
            invalid_before: None,
        };
        let response = change_problem(&duplicate);
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert!(body_text(response).contains("already has a camera named `cam1`"));
        let changed = ChangeError::Changed { file: file.clone() };
        assert_eq!(change_problem(&changed).status(), StatusCode::CONFLICT);
        let not_found = ChangeError::Edit {
            file,
            error: Box::new(EditError::BadKey {
                key: "x".to_owned(),
            }),
            invalid_before: None,
        };
        assert_eq!(
            change_problem(&not_found).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
