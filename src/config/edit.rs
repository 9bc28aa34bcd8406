//! Editing the configuration file in place, for `watchpost config set/init` and
//! `watchpost camera ...`: pure functions from the file's text to the edited text, over
//! [`toml_edit`] documents, so that an edit changes only the bytes of what it changes and every
//! comment stays where it was.
//!
//! Keys are dotted paths; the items of `[[cameras]]`, `[[cameras.zones]]` and
//! `[[cameras.lines]]` are addressed by their `name`: `mqtt.url`,
//! `cameras.gate-east.detect_fps`, `cameras.gate-east.zones.road.loiter_s`.
//!
//! Nothing here judges values: the caller runs the edited text through the real loader
//! ([`super::parse`]) before writing it, so what the agent would refuse is refused with the
//! loader's own `FILE:LINE: KEY: MESSAGE`. What is checked here is only what the loader cannot
//! see: a camera, zone or line that is not there (or already is), and passwords, which never
//! go into the file through these functions (they belong in `password_file`s).
//!
//! Where things go:
//! - a value that exists is replaced in place, keeping the text around it (its key, the spaces,
//!   a comment after it);
//! - a key that does not exist yet goes right after its commented-out example (`#key = ...`)
//!   in the same table when there is one (as in `deploy/watchpost.toml`), else after the last
//!   key of its table;
//! - a missing top-level table goes before the first `[[cameras]]`;
//! - a new camera goes after the last one, a new zone or line after its camera's last one.
//!   The comments between the table before it and the table after it (or the end of the file)
//!   are split at their first blank line: the block right after the previous table's keys is
//!   taken to be about that table (in `deploy/watchpost.toml`, its commented-out keys) and
//!   stays above the new table, the rest stays with what follows. The first camera of a file
//!   without one goes where the commented-out example camera (`#[[cameras]]`) is;
//! - a removed table takes the comments right above its header with it, but not the block that
//!   belongs to the table before it, so adding then removing a camera, zone or line gives back
//!   the file byte for byte.

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, TableLike, Value};

/// The commented example configuration, the starting point of [`starter_file`].
pub const TEMPLATE: &str = include_str!("../../deploy/watchpost.toml");

/// Why an edit cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The file is not TOML (the loader says where; this is its message).
    #[error("not valid TOML: {0}")]
    Syntax(String),
    #[error(
        "`{key}` is not a key: write dotted names of letters, digits, `-` and `_`, for example \
         `mqtt.url` or `cameras.gate-east.detect_fps`"
    )]
    BadKey { key: String },
    /// A camera, zone or line named in a key or a command is not in the file.
    #[error("{}", not_found(what, name, within.as_deref(), known))]
    NotFound {
        /// `camera`, `zone` or `line`.
        what: &'static str,
        name: String,
        /// `camera `gate-east`` for a zone or line.
        within: Option<String>,
        /// The names that are there.
        known: Vec<String>,
    },
    #[error("{} already has a {what} named `{name}`{}", within, hint)]
    Duplicate {
        what: &'static str,
        name: String,
        /// `the file`, `camera `gate-east``.
        within: String,
        /// An extra sentence after the fact, or empty.
        hint: &'static str,
    },
    #[error("`{key}` is a table: set one of its keys (for example `{key}.{example}`)")]
    IsTable { key: String, example: String },
    #[error("`{key}` is not a table, so `{rest}` cannot be under it")]
    NotATable { key: String, rest: String },
    #[error(
        "`{key}` is a password: passwords are not given on the command line (they would stay in \
         the shell history); put it in a file readable only by the service and set \
         `{key}_file` to that file{}",
        if key.starts_with("mqtt.") {
            ", or run `watchpost config init`, which asks for it without showing it"
        } else {
            ", or use `watchpost camera add --password-file`"
        }
    )]
    Password { key: String },
    #[error(
        "the URL given for `{key}` has a password in it, which would be written into the \
         configuration in clear: give the URL without it and put the password in a file set as \
         `{}password_file`",
        key.rsplit_once('.').map_or(String::new(), |(parent, _)| format!("{parent}."))
    )]
    PasswordInUrl { key: String },
    /// Zones or lines written as an inline array (`zones = [{...}]`): edit those by hand.
    #[error("`{key}` is written as an inline array in the file; edit it by hand")]
    Inline { key: String },
}

fn not_found(what: &str, name: &str, within: Option<&str>, known: &[String]) -> String {
    let place = match within {
        Some(within) => format!("{within} has no {what} named `{name}`"),
        None => format!("there is no {what} named `{name}`"),
    };
    if known.is_empty() {
        format!("{place} (there are none)")
    } else {
        format!("{place} (there are: {})", known.join(", "))
    }
}

/// The result of [`set`].
#[derive(Clone, Debug)]
pub struct SetOutcome {
    /// The edited text.
    pub text: String,
    /// The value the key had, when it was in the file.
    pub old: Option<Value>,
}

/// A camera for [`add_camera`]: what the technician gave; `None` fields are left out (the
/// loader's defaults apply).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewCamera {
    pub name: String,
    /// Without a password (see [`split_password`]).
    pub url: String,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub detect_fps: Option<f64>,
    pub transport: Option<String>,
    pub decoder: Option<String>,
}

/// A zone for [`add_zone`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewZone {
    pub name: String,
    /// `[x, y]`, normalised.
    pub points: Vec<[f64; 2]>,
    /// Empty: left out (both classes).
    pub classes: Vec<String>,
    pub loiter_s: Option<f64>,
    pub inertia: Option<i64>,
}

/// A line for [`add_line`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewLine {
    pub name: String,
    pub points: Vec<[f64; 2]>,
    /// The first for crossing from the left to the right side, looking from the first point to
    /// the last.
    pub direction_names: [String; 2],
    /// Empty: left out (both classes).
    pub classes: Vec<String>,
    pub inertia: Option<i64>,
}

/// The answers of `config init`, for [`starter_file`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Starter {
    pub site: String,
    pub id: String,
    /// One or more broker URLs (several: the endpoints of one clustered broker).
    pub broker_urls: Vec<String>,
    pub state_dir: Option<String>,
    pub mqtt_username: Option<String>,
    pub mqtt_password_file: Option<String>,
    /// `None`: the example camera is commented out (add one later with `camera add`).
    pub camera: Option<NewCamera>,
}

// ---------------------------------------------------------------------------------------------
// Values from the command line.

/// `text` as a TOML value (number, boolean, array, inline table, quoted string), otherwise as
/// a string: `5` → 5, `true` → true, `["a", "b"]` → an array, `mqtt://host` → "mqtt://host".
pub fn parse_value(text: &str) -> Value {
    let text = text.trim();
    match text.parse::<Value>() {
        Ok(mut value) => {
            value.decor_mut().clear();
            value
        }
        Err(_) => Value::from(text),
    }
}

/// A JSON value (from a remote `config.apply` with `set`) as the TOML value `config set`
/// would write: strings, numbers, booleans, arrays of them (points are arrays of `[x, y]`).
///
/// # Errors
/// `null` and objects, which no key of the file takes, in a sentence.
pub fn value_from_json(json: &serde_json::Value) -> Result<Value, String> {
    use serde_json::Value as Json;
    Ok(match json {
        Json::Bool(b) => Value::from(*b),
        Json::String(s) => Value::from(s.as_str()),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(f)) => Value::from(f),
            (None, None) => return Err(format!("{n} is not a number the file can hold")),
        },
        Json::Array(items) => {
            let mut array = toml_edit::Array::new();
            for item in items {
                array.push(value_from_json(item)?);
            }
            Value::Array(array)
        }
        Json::Null => return Err("null is not a value (no key can be removed this way)".into()),
        Json::Object(_) => {
            return Err("an object is not a value: set each of its keys by its dotted name".into());
        }
    })
}

/// `"x,y x,y ..."` → points. Coordinates are not range-checked here (the loader does that).
///
/// # Errors
/// A sentence naming the piece that is not `x,y`.
pub fn parse_points(text: &str) -> Result<Vec<[f64; 2]>, String> {
    let mut points = Vec::new();
    for piece in text.split_whitespace() {
        let parsed = piece.split_once(',').and_then(|(x, y)| {
            let x = x.trim().parse::<f64>().ok()?;
            let y = y.trim().parse::<f64>().ok()?;
            (x.is_finite() && y.is_finite()).then_some([x, y])
        });
        match parsed {
            Some(point) => points.push(point),
            None => {
                return Err(format!(
                    "`{piece}` is not a point: write each point as x,y (fractions of the picture, \
                     0 to 1), points separated by spaces, for example \"0.1,0.4 0.9,0.4 0.5,0.9\""
                ));
            }
        }
    }
    if points.is_empty() {
        return Err("no points given: write them as \"x,y x,y ...\"".to_owned());
    }
    Ok(points)
}

/// `rtsp://user:password@host/path` → (`rtsp://host/path`, Some(user), Some(password)). A URL
/// without a password comes back unchanged (with any user name in it), as does text that is
/// not a URL (the loader will say what is wrong with it).
pub fn split_password(url: &str) -> (String, Option<String>, Option<super::Secret>) {
    match super::url::parse_url(url) {
        Ok(parsed) if parsed.password.is_some() => (
            parsed.without_credentials(),
            parsed.username.clone(),
            parsed.password,
        ),
        _ => (url.to_owned(), None, None),
    }
}

// ---------------------------------------------------------------------------------------------
// Editing.

/// Sets `key` (dotted) to `value`.
///
/// # Errors
/// [`EditError`]: not TOML, a malformed key, a camera/zone/line that is not there, a table
/// where a value was expected, a password.
pub fn set(text: &str, key: &str, value: Value) -> Result<SetOutcome, EditError> {
    let path = split_key(key)?;
    let (leaf, parents) = path.split_last().ok_or_else(|| EditError::BadKey {
        key: key.to_owned(),
    })?;
    if *leaf == "password" {
        return Err(EditError::Password {
            key: key.to_owned(),
        });
    }
    if has_url_password(&value) {
        return Err(EditError::PasswordInUrl {
            key: key.to_owned(),
        });
    }
    let mut doc = parse(text)?;
    if !parents.is_empty() && !doc.as_table().contains_key(parents[0]) {
        insert_top_level_table(&mut doc, parents[0]);
        place_new_table(&mut doc, &[Step::Key(parents[0].to_owned())], None);
    }
    let table = match table_at(doc.as_table_mut(), parents, true) {
        // `cameras.gate-east`: an item of an array of tables.
        Err(EditError::IsTable { .. }) => {
            let example = match parents.last() {
                Some(&"cameras") => "detect_fps",
                _ => "points",
            };
            return Err(EditError::IsTable {
                key: key.to_owned(),
                example: example.to_owned(),
            });
        }
        Err(EditError::NotATable { key: at, .. }) => {
            let rest = key.strip_prefix(&format!("{at}.")).unwrap_or(leaf);
            return Err(EditError::NotATable {
                rest: rest.to_owned(),
                key: at,
            });
        }
        other => other?,
    };
    let old = match table.get_mut(leaf) {
        Some(Item::Value(existing)) => {
            let mut value = value.clone();
            *value.decor_mut() = existing.decor().clone();
            Some(std::mem::replace(existing, value))
        }
        Some(Item::Table(_) | Item::ArrayOfTables(_)) => {
            let example = match table.get(leaf) {
                Some(Item::Table(t)) => t.iter().next().map(|(k, _)| k.to_owned()),
                Some(Item::ArrayOfTables(a)) => a
                    .get(0)
                    .and_then(|t| t.get("name"))
                    .and_then(Item::as_str)
                    .map(|n| format!("{n}.{}", if *leaf == "cameras" { "url" } else { "name" })),
                _ => None,
            };
            return Err(EditError::IsTable {
                key: key.to_owned(),
                example: example.unwrap_or_else(|| "KEY".to_owned()),
            });
        }
        _ => {
            table.insert(leaf, Item::Value(value.clone()));
            None
        }
    };
    let edited = doc.to_string();
    let text = match &old {
        Some(_) => edited,
        None => place_after_example(text, &edited, leaf, &value).unwrap_or(edited),
    };
    Ok(SetOutcome { text, old })
}

/// Appends a `[[cameras]]` table.
///
/// # Errors
/// [`EditError::Duplicate`] when a camera has that name; [`EditError::PasswordInUrl`].
pub fn add_camera(text: &str, camera: &NewCamera) -> Result<String, EditError> {
    if split_password(&camera.url).2.is_some() {
        return Err(EditError::PasswordInUrl {
            key: format!("cameras.{}.url", camera.name),
        });
    }
    let mut doc = parse(text)?;
    let root = doc.as_table_mut();
    if !root.contains_key("cameras") {
        root.insert("cameras", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    let cameras = array_of_tables(root, "cameras", "cameras")?;
    if index_by_name(cameras, &camera.name).is_some() {
        return Err(EditError::Duplicate {
            what: "camera",
            name: camera.name.clone(),
            within: "the file".to_owned(),
            hint: ": camera names must differ (remove it first to replace it)",
        });
    }
    let mut table = Table::new();
    table.insert("name", Item::Value(camera.name.as_str().into()));
    table.insert("url", Item::Value(camera.url.as_str().into()));
    if let Some(username) = &camera.username {
        table.insert("username", Item::Value(username.as_str().into()));
    }
    if let Some(file) = &camera.password_file {
        table.insert("password_file", Item::Value(file.as_str().into()));
    }
    if let Some(fps) = camera.detect_fps {
        table.insert("detect_fps", Item::Value(number(fps)));
    }
    if let Some(transport) = &camera.transport {
        table.insert("transport", Item::Value(transport.as_str().into()));
    }
    if let Some(decoder) = &camera.decoder {
        table.insert("decoder", Item::Value(decoder.as_str().into()));
    }
    cameras.push(table);
    let index = cameras.len() - 1;
    let path = [Step::Key("cameras".into()), Step::Index(index)];
    let anchor = (index == 0).then_some("#[[cameras]]");
    Ok(finish_new_table(doc, &path, anchor))
}

/// Removes the camera `name` with its zones and lines (and the comments right above its
/// `[[cameras]]` line).
///
/// # Errors
/// [`EditError::NotFound`].
pub fn remove_camera(text: &str, name: &str) -> Result<String, EditError> {
    let mut doc = parse(text)?;
    let cameras = cameras(doc.as_table_mut())?;
    let index = index_by_name(cameras, name).ok_or_else(|| EditError::NotFound {
        what: "camera",
        name: name.to_owned(),
        within: None,
        known: names(cameras),
    })?;
    let path = [Step::Key("cameras".into()), Step::Index(index)];
    keep_comments_of_previous(&mut doc, &path);
    cameras_mut(&mut doc).remove(index);
    Ok(doc.to_string())
}

fn cameras_mut(doc: &mut DocumentMut) -> &mut ArrayOfTables {
    match doc.as_table_mut().get_mut("cameras") {
        Some(Item::ArrayOfTables(items)) => items,
        _ => unreachable!("checked by the caller"),
    }
}

/// A zone or a line of a camera: what [`remove_shape`] removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Zone,
    Line,
}

impl Shape {
    /// The camera's key that lists them: `zones`, `lines`.
    pub fn field(self) -> &'static str {
        match self {
            Shape::Zone => "zones",
            Shape::Line => "lines",
        }
    }

    /// One of them, in words: `zone`, `line`.
    pub fn what(self) -> &'static str {
        match self {
            Shape::Zone => "zone",
            Shape::Line => "line",
        }
    }
}

/// Appends a `[[cameras.zones]]` table to camera `camera`.
///
/// # Errors
/// [`EditError::NotFound`] (no such camera), [`EditError::Duplicate`] (a zone or line of the
/// camera has the name).
pub fn add_zone(text: &str, camera: &str, zone: &NewZone) -> Result<String, EditError> {
    let mut table = Table::new();
    table.insert("name", Item::Value(zone.name.as_str().into()));
    table.insert("points", Item::Value(points_value(&zone.points)));
    if !zone.classes.is_empty() {
        table.insert("classes", Item::Value(strings(&zone.classes)));
    }
    if let Some(seconds) = zone.loiter_s {
        table.insert("loiter_s", Item::Value(number(seconds)));
    }
    if let Some(inertia) = zone.inertia {
        table.insert("inertia", Item::Value(inertia.into()));
    }
    add_shape(text, camera, Shape::Zone, &zone.name, table)
}

/// Appends a `[[cameras.lines]]` table to camera `camera`.
///
/// # Errors
/// As [`add_zone`].
pub fn add_line(text: &str, camera: &str, line: &NewLine) -> Result<String, EditError> {
    let mut table = Table::new();
    table.insert("name", Item::Value(line.name.as_str().into()));
    table.insert("points", Item::Value(points_value(&line.points)));
    table.insert(
        "direction_names",
        Item::Value(strings(&line.direction_names)),
    );
    if !line.classes.is_empty() {
        table.insert("classes", Item::Value(strings(&line.classes)));
    }
    if let Some(inertia) = line.inertia {
        table.insert("inertia", Item::Value(inertia.into()));
    }
    add_shape(text, camera, Shape::Line, &line.name, table)
}

/// The starter file of `config init`: [`TEMPLATE`] (every key explained, optional ones
/// commented out) with the answers filled in where the template has its examples.
///
/// # Errors
/// Only when the template and the code disagree (a test checks they do not).
pub fn starter_file(answers: &Starter) -> Result<String, EditError> {
    let mut text = TEMPLATE.to_owned();
    let set_str = |text: &mut String, key: &str, value: &str| -> Result<(), EditError> {
        *text = set(text, key, Value::from(value))?.text;
        Ok(())
    };
    set_str(&mut text, "device.site", &answers.site)?;
    set_str(&mut text, "device.id", &answers.id)?;
    if let Some(dir) = &answers.state_dir {
        set_str(&mut text, "device.state_dir", dir)?;
    }
    let url = match answers.broker_urls.as_slice() {
        [one] => Value::from(one.as_str()),
        many => Value::Array(many.iter().map(String::as_str).collect()),
    };
    text = set(&text, "mqtt.url", url)?.text;
    if let Some(user) = &answers.mqtt_username {
        set_str(&mut text, "mqtt.username", user)?;
    }
    if let Some(file) = &answers.mqtt_password_file {
        set_str(&mut text, "mqtt.password_file", file)?;
    }
    let example = {
        let mut doc = parse(&text)?;
        let cameras = cameras(doc.as_table_mut())?;
        names(cameras)
            .into_iter()
            .next()
            .ok_or(EditError::NotFound {
                what: "camera",
                name: "(the example)".to_owned(),
                within: Some("the template".to_owned()),
                known: Vec::new(),
            })?
    };
    match &answers.camera {
        Some(camera) => {
            let key = |field: &str| format!("cameras.{example}.{field}");
            set_str(&mut text, &key("url"), &camera.url)?;
            if let Some(user) = &camera.username {
                set_str(&mut text, &key("username"), user)?;
            }
            if let Some(file) = &camera.password_file {
                set_str(&mut text, &key("password_file"), file)?;
            }
            if let Some(fps) = camera.detect_fps {
                text = set(&text, &key("detect_fps"), number(fps))?.text;
            }
            if let Some(transport) = &camera.transport {
                set_str(&mut text, &key("transport"), transport)?;
            }
            if let Some(decoder) = &camera.decoder {
                set_str(&mut text, &key("decoder"), decoder)?;
            }
            set_str(&mut text, &key("name"), &camera.name)?;
            Ok(text)
        }
        None => Ok(comment_out_cameras(&text)),
    }
}

// ---------------------------------------------------------------------------------------------
// Inside.

fn parse(text: &str) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>().map_err(|e| {
        EditError::Syntax(e.message().split_whitespace().collect::<Vec<_>>().join(" "))
    })
}

/// `a.b.c` → `["a", "b", "c"]`, each a bare TOML key.
fn split_key(key: &str) -> Result<Vec<&str>, EditError> {
    let path: Vec<&str> = key.split('.').collect();
    let bare = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if path.iter().all(|s| bare(s)) {
        Ok(path)
    } else {
        Err(EditError::BadKey {
            key: key.to_owned(),
        })
    }
}

/// Does a string in `value` (or in an array or inline table in it) hold a URL with a password?
fn has_url_password(value: &Value) -> bool {
    match value {
        Value::String(s) => s.value().contains("://") && split_password(s.value()).2.is_some(),
        Value::Array(items) => items.iter().any(has_url_password),
        Value::InlineTable(table) => table.iter().any(|(_, v)| has_url_password(v)),
        _ => false,
    }
}

/// The table at `path` under `root`; an array of tables takes the next segment as the `name` of
/// one of its items. Missing tables are created when `create`.
fn table_at<'d>(
    root: &'d mut Table,
    path: &[&str],
    create: bool,
) -> Result<&'d mut dyn TableLike, EditError> {
    let mut here: &mut dyn TableLike = root;
    let mut i = 0;
    while i < path.len() {
        let segment = path[i];
        let shown = path[..=i].join(".");
        if !here.contains_key(segment) {
            if !create {
                return Err(EditError::NotATable {
                    key: shown,
                    rest: path[i + 1..].join("."),
                });
            }
            let mut table = Table::new();
            table.set_implicit(false);
            here.insert(segment, Item::Table(table));
        }
        let Some(item) = here.get_mut(segment) else {
            unreachable!("inserted above")
        };
        if let Item::ArrayOfTables(items) = item {
            let Some(name) = path.get(i + 1) else {
                return Err(EditError::IsTable {
                    key: shown,
                    example: "NAME.KEY".to_owned(),
                });
            };
            let Some(index) = index_by_name(items, name) else {
                let (what, within) = item_kind(path, i);
                return Err(EditError::NotFound {
                    what,
                    name: (*name).to_owned(),
                    within,
                    known: names(items),
                });
            };
            here = items.get_mut(index).expect("index from index_by_name");
            i += 2;
        } else {
            let inline_array = matches!(item, Item::Value(Value::Array(_)));
            match item.as_table_like_mut() {
                Some(table) => here = table,
                None if inline_array => return Err(EditError::Inline { key: shown }),
                None => {
                    let rest = path[i + 1..].join(".");
                    return Err(EditError::NotATable { key: shown, rest });
                }
            }
            i += 1;
        }
    }
    Ok(here)
}

/// What the items of the array of tables at `path[i]` are, and what they are in.
fn item_kind(path: &[&str], i: usize) -> (&'static str, Option<String>) {
    let within = (i >= 2 && path[i - 2] == "cameras").then(|| format!("camera `{}`", path[i - 1]));
    match path[i] {
        "cameras" => ("camera", None),
        "zones" => ("zone", within),
        "lines" => ("line", within),
        _ => ("table", Some(format!("`{}`", path[..=i].join(".")))),
    }
}

fn index_by_name(items: &ArrayOfTables, name: &str) -> Option<usize> {
    items
        .iter()
        .position(|t| t.get("name").and_then(Item::as_str) == Some(name))
}

fn names(items: &ArrayOfTables) -> Vec<String> {
    items
        .iter()
        .filter_map(|t| t.get("name").and_then(Item::as_str).map(str::to_owned))
        .collect()
}

fn array_of_tables<'d>(
    table: &'d mut Table,
    field: &str,
    shown: &str,
) -> Result<&'d mut ArrayOfTables, EditError> {
    match table.get_mut(field) {
        Some(Item::ArrayOfTables(items)) => Ok(items),
        Some(Item::Value(Value::Array(_))) => Err(EditError::Inline {
            key: shown.to_owned(),
        }),
        Some(_) => Err(EditError::NotATable {
            key: shown.to_owned(),
            rest: "NAME".to_owned(),
        }),
        None => unreachable!("the caller checked `{shown}` is there"),
    }
}

/// The `[[cameras]]` of the document (an empty list when there are none).
fn cameras(root: &mut Table) -> Result<&mut ArrayOfTables, EditError> {
    if !root.contains_key("cameras") {
        root.insert("cameras", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    array_of_tables(root, "cameras", "cameras")
}

fn camera_index(doc: &mut DocumentMut, camera: &str) -> Result<usize, EditError> {
    let cameras = cameras(doc.as_table_mut())?;
    index_by_name(cameras, camera).ok_or_else(|| EditError::NotFound {
        what: "camera",
        name: camera.to_owned(),
        within: None,
        known: names(cameras),
    })
}

/// The table of the camera at `index`, as [`camera_index`] found it.
fn table_of_camera(doc: &mut DocumentMut, index: usize) -> Result<&mut Table, EditError> {
    Ok(cameras(doc.as_table_mut())?
        .get_mut(index)
        .expect("index from camera_index"))
}

fn add_shape(
    text: &str,
    camera: &str,
    shape: Shape,
    name: &str,
    table: Table,
) -> Result<String, EditError> {
    let mut doc = parse(text)?;
    let index = camera_index(&mut doc, camera)?;
    let camera_table = table_of_camera(&mut doc, index)?;
    for other in [Shape::Zone, Shape::Line] {
        if let Some(Item::ArrayOfTables(items)) = camera_table.get(other.field())
            && index_by_name(items, name).is_some()
        {
            return Err(EditError::Duplicate {
                what: other.what(),
                name: name.to_owned(),
                within: format!("camera `{camera}`"),
                hint: ": zone and line names must differ within a camera",
            });
        }
    }
    if !camera_table.contains_key(shape.field()) {
        camera_table.insert(shape.field(), Item::ArrayOfTables(ArrayOfTables::new()));
    }
    let shown = format!("cameras.{camera}.{}", shape.field());
    let items = array_of_tables(camera_table, shape.field(), &shown)?;
    items.push(table);
    let path = [
        Step::Key("cameras".into()),
        Step::Index(index),
        Step::Key(shape.field().into()),
        Step::Index(items.len() - 1),
    ];
    Ok(finish_new_table(doc, &path, None))
}

/// Removes zone or line (`shape`) `name` of camera `camera`.
///
/// # Errors
/// [`EditError::NotFound`].
pub fn remove_shape(
    text: &str,
    camera: &str,
    shape: Shape,
    name: &str,
) -> Result<String, EditError> {
    let mut doc = parse(text)?;
    let index = camera_index(&mut doc, camera)?;
    let camera_table = table_of_camera(&mut doc, index)?;
    let not_found = |known| EditError::NotFound {
        what: shape.what(),
        name: name.to_owned(),
        within: Some(format!("camera `{camera}`")),
        known,
    };
    let shown = format!("cameras.{camera}.{}", shape.field());
    if !camera_table.contains_key(shape.field()) {
        return Err(not_found(Vec::new()));
    }
    let items = array_of_tables(camera_table, shape.field(), &shown)?;
    let Some(at) = index_by_name(items, name) else {
        return Err(not_found(names(items)));
    };
    let path = [
        Step::Key("cameras".into()),
        Step::Index(index),
        Step::Key(shape.field().into()),
        Step::Index(at),
    ];
    keep_comments_of_previous(&mut doc, &path);
    let camera_table = table_of_camera(&mut doc, index)?;
    let items = array_of_tables(camera_table, shape.field(), &shown)?;
    items.remove(at);
    if items.is_empty() {
        camera_table.remove(shape.field());
    }
    Ok(doc.to_string())
}

/// A number as the technician would write it: `5` for 5.0, `2.5` for 2.5.
#[allow(clippy::cast_possible_truncation)]
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        Value::from(x as i64)
    } else {
        Value::from(x)
    }
}

fn points_value(points: &[[f64; 2]]) -> Value {
    let mut array: toml_edit::Array = points
        .iter()
        .map(|&[x, y]| {
            Value::Array(
                [Value::from(x), Value::from(y)]
                    .into_iter()
                    .collect::<toml_edit::Array>(),
            )
        })
        .collect();
    array.fmt();
    Value::Array(array)
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(String::as_str).collect())
}

// -- where new things go -----------------------------------------------------------------------

/// One step from the root to a table: a key, or an item of an array of tables.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The tables of `doc` in the order toml_edit prints them, by path. Mirrors `Display for
/// DocumentMut`: depth first, a table without a position takes the last position seen, then a
/// stable sort by position.
fn print_order(doc: &DocumentMut) -> Vec<Vec<Step>> {
    fn visit(
        table: &Table,
        path: &mut Vec<Step>,
        last: &mut usize,
        out: &mut Vec<(usize, Vec<Step>)>,
    ) {
        if !table.is_dotted() {
            if let Some(position) = table.position() {
                *last = position;
            }
            out.push((*last, path.clone()));
        }
        for (key, item) in table.iter() {
            match item {
                Item::Table(inner) => {
                    path.push(Step::Key(key.to_owned()));
                    visit(inner, path, last, out);
                    path.pop();
                }
                Item::ArrayOfTables(items) => {
                    for (j, inner) in items.iter().enumerate() {
                        path.push(Step::Key(key.to_owned()));
                        path.push(Step::Index(j));
                        visit(inner, path, last, out);
                        path.truncate(path.len() - 2);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    visit(doc.as_table(), &mut Vec::new(), &mut 0, &mut out);
    out.sort_by_key(|(position, _)| *position);
    out.into_iter().map(|(_, path)| path).collect()
}

fn table_by_steps<'d>(root: &'d mut Table, path: &[Step]) -> Option<&'d mut Table> {
    let mut here = root;
    let mut steps = path.iter().peekable();
    while let Some(step) = steps.next() {
        let Step::Key(key) = step else { return None };
        here = match here.get_mut(key)? {
            Item::Table(inner) => inner,
            Item::ArrayOfTables(items) => match steps.next() {
                Some(Step::Index(j)) => items.get_mut(*j)?,
                _ => return None,
            },
            _ => return None,
        };
    }
    Some(here)
}

/// Gives every table a position in print order (2, 4, 6, ...), leaving odd numbers free for
/// new tables; the text printed does not change.
fn renumber(doc: &mut DocumentMut) {
    for (rank, path) in print_order(doc).iter().enumerate() {
        if let Some(table) = table_by_steps(doc.as_table_mut(), path) {
            table.set_position(2 * rank + 2);
        }
    }
}

/// Adds the empty top-level table `name`, placed before the first `[[cameras]]` (at the end
/// when there is none).
fn insert_top_level_table(doc: &mut DocumentMut, name: &str) {
    renumber(doc);
    let cameras_at = doc
        .get("cameras")
        .and_then(Item::as_array_of_tables)
        .and_then(|items| items.get(0))
        .and_then(Table::position);
    let mut table = Table::new();
    table.set_implicit(false);
    if let Some(position) = cameras_at {
        table.set_position(position - 1);
    }
    doc.as_table_mut().insert(name, Item::Table(table));
}

/// Renders `doc` after a new table at `path` was added, placing it among the comments around
/// it. The comments between the table printed before it and the one printed after it (or the
/// end of the file) are split at their first blank line: the block right after the previous
/// table's keys is taken to be about that table (usually its commented-out keys) and stays
/// before the new table; the rest stays with what follows. The new table gets a blank line
/// before it.
///
/// `anchor`: a commented-out table header (`#[[cameras]]`); when the comments after the new
/// table's place hold it, the new table goes right before it instead (the first camera of a
/// starter file goes where the commented example camera is, above its commented keys).
fn finish_new_table(mut doc: DocumentMut, path: &[Step], anchor: Option<&str>) -> String {
    place_new_table(&mut doc, path, anchor);
    doc.to_string()
}

fn place_new_table(doc: &mut DocumentMut, path: &[Step], anchor: Option<&str>) {
    let order = print_order(doc);
    let next = order
        .iter()
        .position(|p| p == path)
        .and_then(|i| order.get(i + 1))
        .cloned();
    let following = match &next {
        Some(next) => table_by_steps(doc.as_table_mut(), next).and_then(|t| {
            t.decor()
                .prefix()
                .and_then(|p| p.as_str())
                .map(str::to_owned)
        }),
        None => doc.trailing().as_str().map(str::to_owned),
    }
    .unwrap_or_default();
    let anchored = anchor.and_then(|anchor| line_starting_with(&following, anchor));
    let (prefix, after) = match anchored {
        Some(at) => (following[..at].to_owned(), following[at..].to_owned()),
        None => {
            let (before, after) = split_at_blank_line(&following);
            let mut prefix = before.to_owned();
            if !prefix.is_empty() && !prefix.ends_with('\n') {
                prefix.push('\n');
            }
            prefix.push('\n');
            (prefix, after.to_owned())
        }
    };
    if let Some(table) = table_by_steps(doc.as_table_mut(), path) {
        table.decor_mut().set_prefix(prefix);
    }
    match &next {
        Some(next) => {
            if let Some(table) = table_by_steps(doc.as_table_mut(), next) {
                table.decor_mut().set_prefix(after);
            }
        }
        None => doc.set_trailing(after),
    }
}

/// Before the table at `path` is removed: the comments above its header up to the last blank
/// line before it are taken to be about the table printed before it (the block
/// [`place_new_table`] leaves there), so they move to what follows the removed table (and
/// everything nested in it) rather than go with it. What [`place_new_table`] did is undone
/// exactly.
fn keep_comments_of_previous(doc: &mut DocumentMut, path: &[Step]) {
    let prefix = table_by_steps(doc.as_table_mut(), path)
        .and_then(|t| {
            t.decor()
                .prefix()
                .and_then(|p| p.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let keep = match last_blank_line(&prefix) {
        Some(at) => &prefix[..at],
        None => "",
    };
    if keep.is_empty() {
        return;
    }
    let order = print_order(doc);
    let next = order
        .iter()
        .skip_while(|p| p.as_slice() != path)
        .find(|p| !p.starts_with(path))
        .cloned();
    match next.and_then(|next| table_by_steps(doc.as_table_mut(), &next)) {
        Some(table) => {
            let rest = table
                .decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or("")
                .to_owned();
            table.decor_mut().set_prefix(format!("{keep}{rest}"));
        }
        None => {
            let rest = doc.trailing().as_str().unwrap_or("").to_owned();
            doc.set_trailing(format!("{keep}{rest}"));
        }
    }
}

/// The offset of the last blank line of `text`.
fn last_blank_line(text: &str) -> Option<usize> {
    let mut offset = 0;
    let mut last = None;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            last = Some(offset);
        }
        offset += line.len();
    }
    last
}

/// The offset of the first line of `text` that starts with `start`.
fn line_starting_with(text: &str, start: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with(start) {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// `text` split before its first blank line: (the lines before it, the rest from the blank
/// line on). No blank line: (all, "").
fn split_at_blank_line(text: &str) -> (&str, &str) {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            return text.split_at(offset);
        }
        offset += line.len();
    }
    (text, "")
}

/// `edited` is `original` with `key = value` added at the end of its table. When `original`
/// has a commented-out example of the key (`#key = ...`) in that same table, returns
/// `original` with `key = value` added on the line after the example instead; the same
/// document either way (checked by parsing both).
fn place_after_example(original: &str, edited: &str, key: &str, value: &Value) -> Option<String> {
    let expected: toml::Table = edited.parse().ok()?;
    let mut shown = value.clone();
    shown.decor_mut().clear();
    let mut offset = 0;
    for line in original.split_inclusive('\n') {
        offset += line.len();
        let trimmed = line.trim_start();
        let Some(commented) = trimmed.strip_prefix('#') else {
            continue;
        };
        let is_example = commented
            .trim_start()
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if !is_example {
            continue;
        }
        let indent = &line[..line.len() - trimmed.len()];
        let mut candidate = String::with_capacity(original.len() + 64);
        candidate.push_str(&original[..offset]);
        if !line.ends_with('\n') {
            candidate.push('\n');
        }
        candidate.push_str(&format!("{indent}{key} = {shown}\n"));
        candidate.push_str(&original[offset..]);
        if candidate.parse::<toml::Table>().ok().as_ref() == Some(&expected) {
            return Some(candidate);
        }
    }
    None
}

/// Comments out the first `[[cameras]]` table of the template (up to the next real table
/// header), for a starter file without a camera.
fn comment_out_cameras(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            let is_camera = trimmed.starts_with("[[cameras]]") || trimmed.starts_with("[[cameras.");
            inside = is_camera;
        }
        if inside && !trimmed.is_empty() && !trimmed.starts_with('#') {
            out.push('#');
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Comments everywhere: before tables, after values, between keys, at the end.
    const TEXT: &str = r#"# head comment
[device]  # device table
site = "bihac-north"   # the site
id = "post-07"
#state_dir = "/var/lib/watchpost"

[mqtt]
# broker
url = "mqtt://127.0.0.1:1883"  # local
#username = "watchpost"

[[cameras]]
# first
name = "gate-east"
url = "rtsp://10.0.0.21:554/stream1"
detect_fps = 5   # five
#transport = "tcp"

[[cameras.zones]]
name = "road"
points = [[0.1, 0.4], [0.9, 0.4], [0.9, 0.95], [0.1, 0.95]]

[[cameras]]
name = "gate-west"
url = "rtsp://10.0.0.22:554/stream1"
detect_fps = 2.5
# end comment
"#;

    /// `TEXT` with `from` (which must be there exactly once) replaced by `to`.
    fn replaced(from: &str, to: &str) -> String {
        assert_eq!(
            TEXT.matches(from).count(),
            1,
            "`{from}` is not in TEXT once"
        );
        TEXT.replacen(from, to, 1)
    }

    #[test]
    fn untouched_documents_print_as_read() {
        for text in [TEXT, TEMPLATE] {
            let mut doc: DocumentMut = text.parse().unwrap();
            assert_eq!(doc.to_string(), text);
            renumber(&mut doc);
            assert_eq!(doc.to_string(), text, "renumbering changed the text");
        }
    }

    #[test]
    fn set_replaces_only_the_value() {
        // (key, value as typed, text before, text after)
        let cases = [
            (
                "device.site",
                "rafah",
                r#"site = "bihac-north"   # the site"#,
                r#"site = "rafah"   # the site"#,
            ),
            (
                "cameras.gate-east.detect_fps",
                "2.5",
                "detect_fps = 5   # five",
                "detect_fps = 2.5   # five",
            ),
            (
                "cameras.gate-west.detect_fps",
                "7",
                "detect_fps = 2.5",
                "detect_fps = 7",
            ),
            (
                "mqtt.url",
                r#"["mqtt://a:1883", "mqtt://b:1883"]"#,
                r#"url = "mqtt://127.0.0.1:1883"  # local"#,
                r#"url = ["mqtt://a:1883", "mqtt://b:1883"]  # local"#,
            ),
            (
                "cameras.gate-east.zones.road.points",
                "[[0, 0], [1, 0], [1, 1]]",
                "points = [[0.1, 0.4], [0.9, 0.4], [0.9, 0.95], [0.1, 0.95]]",
                "points = [[0, 0], [1, 0], [1, 1]]",
            ),
            (
                "cameras.gate-east.name",
                "gate-north",
                r#"name = "gate-east""#,
                r#"name = "gate-north""#,
            ),
        ];
        for (key, value, before, after) in cases {
            let outcome = set(TEXT, key, parse_value(value)).unwrap();
            assert_eq!(outcome.text, replaced(before, after), "{key}");
            assert!(outcome.old.is_some(), "{key}");
        }
    }

    #[test]
    fn set_adds_a_missing_key_after_its_example() {
        // (key, value, text before, text after)
        let cases = [
            (
                "device.state_dir",
                "/srv/watchpost",
                "#state_dir = \"/var/lib/watchpost\"\n",
                "#state_dir = \"/var/lib/watchpost\"\nstate_dir = \"/srv/watchpost\"\n",
            ),
            (
                "mqtt.username",
                "wp",
                "#username = \"watchpost\"\n",
                "#username = \"watchpost\"\nusername = \"wp\"\n",
            ),
            // The example is in gate-east's part of the file.
            (
                "cameras.gate-east.transport",
                "udp",
                "#transport = \"tcp\"\n",
                "#transport = \"tcp\"\ntransport = \"udp\"\n",
            ),
            // No example in gate-west's part (the one above is gate-east's): after its last key.
            (
                "cameras.gate-west.transport",
                "udp",
                "detect_fps = 2.5\n",
                "detect_fps = 2.5\ntransport = \"udp\"\n",
            ),
            (
                "cameras.gate-east.zones.road.loiter_s",
                "30",
                "[0.1, 0.95]]\n",
                "[0.1, 0.95]]\nloiter_s = 30\n",
            ),
            // A missing table goes before the cameras.
            (
                "health.interval_s",
                "5",
                "\n[[cameras]]\n# first",
                "\n[health]\ninterval_s = 5\n\n[[cameras]]\n# first",
            ),
        ];
        for (key, value, before, after) in cases {
            let outcome = set(TEXT, key, parse_value(value)).unwrap();
            assert_eq!(outcome.text, replaced(before, after), "{key}");
            assert!(outcome.old.is_none(), "{key}");
        }
    }

    #[test]
    fn set_refuses() {
        let names = || vec!["gate-east".to_owned(), "gate-west".to_owned()];
        let cases = [
            (
                "cameras.nope.detect_fps",
                "3",
                EditError::NotFound {
                    what: "camera",
                    name: "nope".into(),
                    within: None,
                    known: names(),
                },
            ),
            (
                "cameras.gate-east.zones.dock.points",
                "[]",
                EditError::NotFound {
                    what: "zone",
                    name: "dock".into(),
                    within: Some("camera `gate-east`".into()),
                    known: vec!["road".into()],
                },
            ),
            (
                "mqtt.password",
                "x",
                EditError::Password {
                    key: "mqtt.password".into(),
                },
            ),
            (
                "cameras.gate-east.password",
                "x",
                EditError::Password {
                    key: "cameras.gate-east.password".into(),
                },
            ),
            (
                "cameras.gate-east.url",
                "rtsp://admin:secret@10.0.0.21/stream1",
                EditError::PasswordInUrl {
                    key: "cameras.gate-east.url".into(),
                },
            ),
            (
                "mqtt",
                "1",
                EditError::IsTable {
                    key: "mqtt".into(),
                    example: "url".into(),
                },
            ),
            (
                "cameras.gate-east",
                "1",
                EditError::IsTable {
                    key: "cameras.gate-east".into(),
                    example: "detect_fps".into(),
                },
            ),
            (
                "device.site.x",
                "1",
                EditError::NotATable {
                    key: "device.site".into(),
                    rest: "x".into(),
                },
            ),
            (
                "mqtt..url",
                "1",
                EditError::BadKey {
                    key: "mqtt..url".into(),
                },
            ),
            ("", "1", EditError::BadKey { key: String::new() }),
            (
                "mqtt.a b",
                "1",
                EditError::BadKey {
                    key: "mqtt.a b".into(),
                },
            ),
        ];
        for (key, value, expected) in cases {
            assert_eq!(
                set(TEXT, key, parse_value(value)).unwrap_err(),
                expected,
                "{key}"
            );
        }
        assert!(matches!(
            set("[a", "a.b", parse_value("1")),
            Err(EditError::Syntax(_))
        ));
    }

    #[test]
    fn values_are_toml_or_text() {
        // (typed, TOML written)
        let cases = [
            ("5", "5"),
            ("2.5", "2.5"),
            ("true", "true"),
            (" 7 ", "7"),
            ("[1, 2]", "[1, 2]"),
            (r#"["a", "b"]"#, r#"["a", "b"]"#),
            ("{ a = 1 }", "{ a = 1 }"),
            (r#""007""#, r#""007""#),
            ("007", r#""007""#),
            ("mqtt://10.0.0.5:1883", r#""mqtt://10.0.0.5:1883""#),
            ("gate-east", r#""gate-east""#),
            ("two words", r#""two words""#),
            (r#"say "hi""#, r#"'say "hi"'"#),
        ];
        for (typed, written) in cases {
            assert_eq!(parse_value(typed).to_string(), written, "{typed}");
        }
    }

    #[test]
    fn points_from_the_command_line() {
        assert_eq!(
            parse_points("0.1,0.4 0.9,0.4  0.5,1").unwrap(),
            vec![[0.1, 0.4], [0.9, 0.4], [0.5, 1.0]]
        );
        // Out of range is the loader's business.
        assert_eq!(parse_points("1.5,-2").unwrap(), vec![[1.5, -2.0]]);
        for bad in [
            "",
            "  ",
            "0.1",
            "0.1,",
            "a,b",
            "0.1,0.2,0.3",
            "0.1;0.2",
            "nan,0",
        ] {
            assert!(parse_points(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_come_out_of_urls() {
        let cases = [
            (
                "rtsp://admin:s3cret@10.0.0.21:554/stream1",
                "rtsp://10.0.0.21:554/stream1",
                Some("admin"),
                Some("s3cret"),
            ),
            (
                "rtsp://admin:p%40ss@cam/x",
                "rtsp://cam/x",
                Some("admin"),
                Some("p@ss"),
            ),
            ("rtsp://admin@cam/x", "rtsp://admin@cam/x", None, None),
            ("rtsp://cam/x", "rtsp://cam/x", None, None),
            ("not a url", "not a url", None, None),
        ];
        for (url, without, user, password) in cases {
            let (rest, u, p) = split_password(url);
            assert_eq!(rest, without, "{url}");
            assert_eq!(u.as_deref(), user, "{url}");
            assert_eq!(
                p.as_ref().map(super::super::Secret::expose),
                password,
                "{url}"
            );
        }
    }

    fn camera(name: &str) -> NewCamera {
        NewCamera {
            name: name.into(),
            url: "rtsp://10.0.0.23/s".into(),
            detect_fps: Some(2.5),
            ..NewCamera::default()
        }
    }

    #[test]
    fn cameras_are_added_after_the_last_and_removed_by_name() {
        let added = add_camera(TEXT, &camera("north")).unwrap();
        assert_eq!(
            added,
            format!(
                "{TEXT}\n[[cameras]]\nname = \"north\"\nurl = \"rtsp://10.0.0.23/s\"\ndetect_fps = 2.5\n"
            )
        );
        let full = NewCamera {
            username: Some("viewer".into()),
            password_file: Some("/etc/watchpost/north-password".into()),
            detect_fps: Some(5.0),
            transport: Some("udp".into()),
            decoder: Some("software".into()),
            ..camera("north")
        };
        assert!(add_camera(TEXT, &full).unwrap().ends_with(
            "\n[[cameras]]\nname = \"north\"\nurl = \"rtsp://10.0.0.23/s\"\nusername = \"viewer\"\n\
             password_file = \"/etc/watchpost/north-password\"\ndetect_fps = 5\n\
             transport = \"udp\"\ndecoder = \"software\"\n"
        ));
        assert_eq!(
            add_camera(TEXT, &camera("gate-west")).unwrap_err(),
            EditError::Duplicate {
                what: "camera",
                name: "gate-west".into(),
                within: "the file".into(),
                hint: ": camera names must differ (remove it first to replace it)",
            }
        );
        let with_password = NewCamera {
            url: "rtsp://a:b@10.0.0.23/s".into(),
            ..camera("north")
        };
        assert!(matches!(
            add_camera(TEXT, &with_password),
            Err(EditError::PasswordInUrl { .. })
        ));

        // gate-east goes with its zone and the comments inside it; the rest stays.
        let removed = remove_camera(TEXT, "gate-east").unwrap();
        let start = TEXT.find("[[cameras]]\n# first").unwrap();
        let end = TEXT.find("[[cameras]]\nname = \"gate-west\"").unwrap();
        assert_eq!(removed, format!("{}{}", &TEXT[..start], &TEXT[end..]));
        assert_eq!(remove_camera(&added, "north").unwrap(), TEXT);
        assert!(matches!(
            remove_camera(TEXT, "nope"),
            Err(EditError::NotFound { what: "camera", .. })
        ));
    }

    #[test]
    fn zones_and_lines_go_under_their_camera() {
        let zone = NewZone {
            name: "dock".into(),
            points: vec![[0.2, 0.2], [0.8, 0.2], [0.5, 0.9]],
            classes: vec!["person".into()],
            loiter_s: Some(60.0),
            inertia: Some(4),
        };
        let zone_text = "\n[[cameras.zones]]\nname = \"dock\"\npoints = [[0.2, 0.2], [0.8, 0.2], \
                         [0.5, 0.9]]\nclasses = [\"person\"]\nloiter_s = 60\ninertia = 4\n";
        // gate-east is not the last camera: right after its last zone.
        let road_end = "[0.1, 0.95]]\n";
        assert_eq!(
            add_zone(TEXT, "gate-east", &zone).unwrap(),
            replaced(road_end, &format!("{road_end}{zone_text}"))
        );
        // gate-west is last: at the end.
        assert_eq!(
            add_zone(TEXT, "gate-west", &zone).unwrap(),
            format!("{TEXT}{zone_text}")
        );
        let line = NewLine {
            name: "border".into(),
            points: vec![[0.5, 0.2], [0.5, 0.95]],
            direction_names: ["in".into(), "out".into()],
            classes: Vec::new(),
            inertia: None,
        };
        let line_text = "\n[[cameras.lines]]\nname = \"border\"\npoints = [[0.5, 0.2], [0.5, \
                         0.95]]\ndirection_names = [\"in\", \"out\"]\n";
        let with_line = add_line(TEXT, "gate-west", &line).unwrap();
        assert_eq!(with_line, format!("{TEXT}{line_text}"));
        assert_eq!(
            remove_shape(&with_line, "gate-west", Shape::Line, "border").unwrap(),
            TEXT
        );

        // Names are unique among a camera's zones and lines.
        let road_line = NewLine {
            name: "road".into(),
            ..line.clone()
        };
        assert_eq!(
            add_line(TEXT, "gate-east", &road_line).unwrap_err(),
            EditError::Duplicate {
                what: "zone",
                name: "road".into(),
                within: "camera `gate-east`".into(),
                hint: ": zone and line names must differ within a camera",
            }
        );
        assert!(add_line(TEXT, "gate-west", &road_line).is_ok());
        assert!(matches!(
            add_zone(TEXT, "nope", &zone),
            Err(EditError::NotFound { what: "camera", .. })
        ));

        let road = "\n[[cameras.zones]]\nname = \"road\"\npoints = [[0.1, 0.4], [0.9, 0.4], \
                    [0.9, 0.95], [0.1, 0.95]]\n";
        assert_eq!(
            remove_shape(TEXT, "gate-east", Shape::Zone, "road").unwrap(),
            replaced(road, "")
        );
        assert_eq!(
            remove_shape(TEXT, "gate-east", Shape::Zone, "dock").unwrap_err(),
            EditError::NotFound {
                what: "zone",
                name: "dock".into(),
                within: Some("camera `gate-east`".into()),
                known: vec!["road".into()],
            }
        );
        assert_eq!(
            remove_shape(TEXT, "gate-west", Shape::Line, "border").unwrap_err(),
            EditError::NotFound {
                what: "line",
                name: "border".into(),
                within: Some("camera `gate-west`".into()),
                known: Vec::new(),
            }
        );
    }

    fn answers(camera: Option<NewCamera>) -> Starter {
        Starter {
            site: "rafah".into(),
            id: "post-3".into(),
            broker_urls: vec!["mqtts://broker.example:8883".into()],
            state_dir: Some("/srv/watchpost".into()),
            mqtt_username: Some("wp".into()),
            mqtt_password_file: None,
            camera,
        }
    }

    #[test]
    fn starter_file_is_the_template_with_the_answers() {
        let camera = NewCamera {
            name: "gate-1".into(),
            url: "rtsp://10.1.1.1/s".into(),
            username: Some("viewer".into()),
            detect_fps: Some(2.0),
            ..NewCamera::default()
        };
        let text = starter_file(&answers(Some(camera))).unwrap();
        let config = super::super::parse(&text, std::path::Path::new("/x/w.toml")).unwrap();
        assert_eq!(config.device.site.as_str(), "rafah");
        assert_eq!(config.device.id.as_str(), "post-3");
        assert_eq!(
            config.device.state_dir,
            std::path::Path::new("/srv/watchpost")
        );
        assert_eq!(
            config.mqtt.urls[0].to_string(),
            "mqtts://broker.example:8883"
        );
        assert_eq!(config.mqtt.username.as_deref(), Some("wp"));
        assert_eq!(config.cameras.len(), 1);
        assert_eq!(config.cameras[0].name.as_str(), "gate-1");
        assert_eq!(config.cameras[0].url, "rtsp://10.1.1.1/s");
        assert_eq!(config.cameras[0].username.as_deref(), Some("viewer"));
        assert!((config.cameras[0].detect_fps - 2.0).abs() < f32::EPSILON);
        // Every comment of the template is still there, in order.
        let comments = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.trim_start().starts_with('#'))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(comments(&text), comments(TEMPLATE));

        // Several brokers are a list.
        let mut two = answers(None);
        two.broker_urls = vec!["mqtt://a".into(), "mqtt://b".into()];
        assert!(
            starter_file(&two)
                .unwrap()
                .contains("url = [\"mqtt://a\", \"mqtt://b\"]")
        );
    }

    #[test]
    fn starter_file_without_a_camera_lacks_only_the_camera() {
        let text = starter_file(&answers(None)).unwrap();
        let err = super::super::parse(&text, std::path::Path::new("/x/w.toml")).unwrap_err();
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["cameras"]);
        // A camera added later lands where the example camera was, and the file is valid.
        let added = add_camera(&text, &camera("gate-1")).unwrap();
        assert!(added.contains(
            "# One [[cameras]] table per camera; at least one.\n[[cameras]]\nname = \"gate-1\"\n"
        ));
        let config = super::super::parse(&added, std::path::Path::new("/x/w.toml")).unwrap();
        assert_eq!(config.cameras.len(), 1);
    }
}
