//! `[[cameras.zones]]` and `[[cameras.lines]]` of a camera, each checked on its own.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::Checker;
use super::checks::one_of;
use super::raw::{Float, Int};
use super::table::{RawTable, kind};
use crate::config::{LineConfig, TopicName, ZoneConfig};
use crate::detect::CoarseClass;
use crate::geometry::{Point, Polygon, Polyline};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    name: Option<String>,
    points: Option<Vec<RawPoint>>,
    classes: Option<Vec<String>>,
    loiter_s: Option<Float>,
    inertia: Option<Int>,
}

impl RawTable for RawZone {
    const REQUIRED: &[&str] = &["name", "points"];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    name: Option<String>,
    points: Option<Vec<RawPoint>>,
    direction_names: Option<Vec<String>>,
    classes: Option<Vec<String>>,
    inertia: Option<Int>,
}

impl RawTable for RawLine {
    const REQUIRED: &[&str] = &["name", "points"];
}

/// `[x, y]`: exactly two numbers.
struct RawPoint(f64, f64);

impl<'de> Deserialize<'de> for RawPoint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RawPoint, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawPoint;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a point [x, y]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawPoint, A::Error> {
                let mut numbers = Vec::with_capacity(2);
                while let Some(Float(v)) = seq.next_element::<Float>()? {
                    numbers.push(v);
                }
                match numbers[..] {
                    [x, y] => Ok(RawPoint(x, y)),
                    _ => Err(serde::de::Error::custom(format!(
                        "a point is [x, y], got {} number{}",
                        numbers.len(),
                        if numbers.len() == 1 { "" } else { "s" }
                    ))),
                }
            }
        }
        deserializer.deserialize_seq(Visitor)
    }
}

impl<'a> Checker<'a> {
    /// The items of the array `field` (`zones`, `lines`) of camera `i` that deserialize, each on
    /// its own, with their key path; and whether all did. No array: no items.
    fn camera_items<T: RawTable>(
        &mut self,
        i: usize,
        camera: &'a Spanned<DeValue<'a>>,
        field: &str,
        what: &str,
    ) -> (Vec<(String, T)>, bool) {
        let DeValue::Table(table) = camera.get_ref() else {
            return (Vec::new(), true); // refused as a camera already
        };
        let Some((key, value)) = table.get_key_value(field) else {
            return (Vec::new(), true);
        };
        let DeValue::Array(items) = value.get_ref() else {
            self.problem_at(
                format!("cameras[{i}].{field}"),
                key.span().start,
                format!(
                    "must be written as [[cameras.{field}]] tables, one per {what}, got {}",
                    kind(value.get_ref())
                ),
            );
            return (Vec::new(), false);
        };
        let mut raws = Vec::with_capacity(items.len());
        let mut all_good = true;
        for (j, item) in items.iter().enumerate() {
            let prefix = format!("cameras[{i}].{field}[{j}]");
            match self.deserialize::<T>(&prefix, item) {
                Some(raw) => raws.push((prefix, raw)),
                None => all_good = false,
            }
        }
        (raws, all_good)
    }

    /// `[[cameras.zones]]` of camera `i`. `names`: zone and line names of the camera so far.
    pub(super) fn zones(
        &mut self,
        i: usize,
        camera: &'a Spanned<DeValue<'a>>,
        names: &mut HashMap<TopicName, String>,
    ) -> Option<Vec<ZoneConfig>> {
        let (raws, mut all_good) = self.camera_items::<RawZone>(i, camera, "zones", "zone");
        let mut zones = Vec::new();
        for (prefix, raw) in raws {
            let key = |field: &str| format!("{prefix}.{field}");
            let name = raw
                .name
                .as_deref()
                .and_then(|name| self.shape_name(&key("name"), name, &prefix, names));
            let polygon = self.shape_points(key("points"), raw.points.as_deref(), Polygon::new);
            let classes = self.classes(&key("classes"), raw.classes.as_deref());
            let loiter = match raw.loiter_s {
                None => Some(None),
                Some(Float(s)) if s > 0.0 && s <= 86_400.0 => {
                    Some(Some(Duration::from_secs_f64(s)))
                }
                Some(Float(s)) => {
                    self.problem(
                        key("loiter_s"),
                        format!("must be more than 0 and at most 86400 (a day), got {s}"),
                    );
                    None
                }
            };
            let inertia = self.inertia(&key("inertia"), raw.inertia);
            match (name, polygon, classes, loiter, inertia) {
                (Some(name), Some(polygon), Some(classes), Some(loiter), Some(inertia)) => {
                    zones.push(ZoneConfig {
                        name,
                        polygon,
                        classes,
                        loiter,
                        inertia,
                    });
                }
                _ => all_good = false,
            }
        }
        all_good.then_some(zones)
    }

    /// `[[cameras.lines]]` of camera `i`. `names`: zone and line names of the camera so far.
    pub(super) fn lines(
        &mut self,
        i: usize,
        camera: &'a Spanned<DeValue<'a>>,
        names: &mut HashMap<TopicName, String>,
    ) -> Option<Vec<LineConfig>> {
        let (raws, mut all_good) = self.camera_items::<RawLine>(i, camera, "lines", "line");
        let mut lines = Vec::new();
        for (prefix, raw) in raws {
            let key = |field: &str| format!("{prefix}.{field}");
            let name = raw
                .name
                .as_deref()
                .and_then(|name| self.shape_name(&key("name"), name, &prefix, names));
            let polyline = self.shape_points(key("points"), raw.points.as_deref(), Polyline::new);
            let direction_names =
                self.direction_names(&key("direction_names"), raw.direction_names.as_deref());
            let classes = self.classes(&key("classes"), raw.classes.as_deref());
            let inertia = self.inertia(&key("inertia"), raw.inertia);
            match (name, polyline, direction_names, classes, inertia) {
                (
                    Some(name),
                    Some(polyline),
                    Some(direction_names),
                    Some(classes),
                    Some(inertia),
                ) => {
                    lines.push(LineConfig {
                        name,
                        polyline,
                        direction_names,
                        classes,
                        inertia,
                    });
                }
                _ => all_good = false,
            }
        }
        all_good.then_some(lines)
    }

    /// A zone's or line's `points` (when given) made into its shape by `make`; what `make`
    /// refuses is a problem at `key`.
    fn shape_points<T, E: std::fmt::Display>(
        &mut self,
        key: String,
        raw: Option<&[RawPoint]>,
        make: impl FnOnce(Vec<Point>) -> Result<T, E>,
    ) -> Option<T> {
        make(points(raw?))
            .map_err(|e| self.problem(key, e.to_string()))
            .ok()
    }

    /// A zone or line name, unique among the camera's zones and lines (`names`, by the path of
    /// the zone or line that has it).
    fn shape_name(
        &mut self,
        key: &str,
        name: &str,
        prefix: &str,
        names: &mut HashMap<TopicName, String>,
    ) -> Option<TopicName> {
        let name = self.topic_name(key, name)?;
        match names.entry(name.clone()) {
            Entry::Occupied(first) => {
                let message = format!(
                    "`{name}` is already the name of {}; zone and line names must differ within \
                     a camera",
                    first.get()
                );
                self.problem(key, message);
                None
            }
            Entry::Vacant(slot) => {
                slot.insert(prefix.to_owned());
                Some(name)
            }
        }
    }

    /// `classes = [...]`: default both, not empty, no duplicates.
    fn classes(&mut self, key: &str, names: Option<&[String]>) -> Option<Vec<CoarseClass>> {
        let Some(names) = names else {
            return Some(CoarseClass::ALL.to_vec());
        };
        if names.is_empty() {
            self.problem(
                key,
                "must not be empty: list `person`, `vehicle` or both (leave it out for both)",
            );
            return None;
        }
        let mut classes = Vec::with_capacity(names.len());
        let mut good = true;
        for name in names {
            match CoarseClass::parse(name) {
                Some(class) if classes.contains(&class) => {
                    self.problem(key, format!("`{name}` is listed twice"));
                    good = false;
                }
                Some(class) => classes.push(class),
                None => {
                    let message = format!(
                        "`{name}` is not a class: use {}",
                        one_of(CoarseClass::ALL.map(CoarseClass::as_str))
                    );
                    self.problem(key, message);
                    good = false;
                }
            }
        }
        good.then_some(classes)
    }

    /// `direction_names = [first, second]`: default `["in", "out"]`.
    fn direction_names(&mut self, key: &str, names: Option<&[String]>) -> Option<[TopicName; 2]> {
        let Some(names) = names else {
            return Some(["in", "out"].map(|n| TopicName(n.to_owned())));
        };
        let [first, second] = match names {
            [first, second] => [first, second],
            _ => {
                self.problem(
                    key,
                    format!(
                        "must be exactly 2 names, got {}: the first for crossing from the left \
                         to the right side, the second for the other way",
                        names.len()
                    ),
                );
                return None;
            }
        };
        let first = self.topic_name(key, first);
        let second = self.topic_name(key, second);
        let (first, second) = (first?, second?);
        if first == second {
            self.problem(
                key,
                format!("`{first}` is given for both directions: the two names must differ"),
            );
            return None;
        }
        Some([first, second])
    }

    /// An optional `inertia` override, 1..=100.
    fn inertia(&mut self, key: &str, value: Option<Int>) -> Option<Option<u32>> {
        match value {
            None => Some(None),
            Some(value) => {
                let inertia = self.int(key, Some(value), 1..=100, 0)?;
                u32::try_from(inertia).ok().map(Some)
            }
        }
    }
}

/// Points from the file; coordinates far out of range become infinite and are refused as outside
/// 0..1.
#[allow(clippy::cast_possible_truncation)]
fn points(raw: &[RawPoint]) -> Vec<Point> {
    raw.iter()
        .map(|&RawPoint(x, y)| Point::new(x as f32, y as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::tests::{MINIMAL, file, parse, problem, problems};
    use crate::config::{LineConfig, TopicName, ZoneConfig};
    use std::time::Duration;

    /// The zone and line of the tracking issue, appended to MINIMAL (lines 10 to 18).
    const ZONE_AND_LINE: &str = r#"[[cameras.zones]]
name = "road"
points = [[0.1, 0.4], [0.9, 0.4], [0.9, 0.95], [0.1, 0.95]]
classes = ["person", "vehicle"]
[[cameras.lines]]
name = "border"
points = [[0.5, 0.2], [0.5, 0.95]]
direction_names = ["in", "out"]   # first: crossing from the left to the right side
"#;

    fn pts(points: &[(f32, f32)]) -> Vec<Point> {
        points.iter().map(|&(x, y)| Point::new(x, y)).collect()
    }

    fn name(text: &str) -> TopicName {
        TopicName::parse(text).unwrap()
    }

    #[test]
    fn zones_and_lines_are_read() {
        let config = parse(&format!("{MINIMAL}{ZONE_AND_LINE}"), file()).expect("valid");
        let camera = &config.cameras[0];
        let road = ZoneConfig {
            name: name("road"),
            polygon: Polygon::new(pts(&[(0.1, 0.4), (0.9, 0.4), (0.9, 0.95), (0.1, 0.95)]))
                .unwrap(),
            classes: vec![CoarseClass::Person, CoarseClass::Vehicle],
            loiter: None,
            inertia: None,
        };
        let border = LineConfig {
            name: name("border"),
            polyline: Polyline::new(pts(&[(0.5, 0.2), (0.5, 0.95)])).unwrap(),
            direction_names: [name("in"), name("out")],
            classes: vec![CoarseClass::Person, CoarseClass::Vehicle],
            inertia: None,
        };
        assert_eq!(camera.zones, vec![road]);
        assert_eq!(camera.lines, vec![border]);

        // Every optional key, two of each, and defaults where left out.
        let text = format!(
            r#"{MINIMAL}[[cameras.zones]]
name = "dock"
points = [[0, 0], [1, 0], [0.5, 1]]
classes = ["vehicle"]
loiter_s = 90.5
inertia = 5
[[cameras.zones]]
name = "yard"
points = [[0.2, 0.2], [0.4, 0.2], [0.4, 0.4]]
[[cameras.lines]]
name = "fence"
points = [[0.1, 0.5], [0.5, 0.6], [0.9, 0.5]]
direction_names = ["north", "south"]
classes = ["person"]
inertia = 1
[[cameras.lines]]
name = "gate"
points = [[0.1, 0.1], [0.2, 0.2]]
"#
        );
        let config = parse(&text, file()).expect("valid");
        let camera = &config.cameras[0];
        let zones: Vec<_> = camera
            .zones
            .iter()
            .map(|z| (z.name.as_str(), z.classes.clone(), z.loiter, z.inertia))
            .collect();
        assert_eq!(
            zones,
            vec![
                (
                    "dock",
                    vec![CoarseClass::Vehicle],
                    Some(Duration::from_millis(90_500)),
                    Some(5)
                ),
                ("yard", CoarseClass::ALL.to_vec(), None, None),
            ]
        );
        assert_eq!(
            camera.zones[0].polygon.points(),
            pts(&[(0.0, 0.0), (1.0, 0.0), (0.5, 1.0)])
        );
        let lines: Vec<_> = camera
            .lines
            .iter()
            .map(|l| {
                (
                    l.name.as_str(),
                    l.polyline.points().len(),
                    [l.direction_names[0].as_str(), l.direction_names[1].as_str()],
                    l.classes.clone(),
                    l.inertia,
                )
            })
            .collect();
        assert_eq!(
            lines,
            vec![
                (
                    "fence",
                    3,
                    ["north", "south"],
                    vec![CoarseClass::Person],
                    Some(1)
                ),
                ("gate", 2, ["in", "out"], CoarseClass::ALL.to_vec(), None),
            ]
        );
    }

    #[test]
    fn zone_and_line_problems_name_key_and_line() {
        // Appended to MINIMAL after a zone `road` (lines 10 to 12): text, key, line, message.
        let zone =
            "[[cameras.zones]]\nname = \"road\"\npoints = [[0.1, 0.4], [0.9, 0.4], [0.5, 0.9]]\n";
        let cases: &[(&str, &str, usize, &str)] = &[
            (
                "[[cameras.zones]]\nname = \"z\"\npoints = [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]",
                "cameras[0].zones[1].points",
                15,
                "edges 1 and 3 cross",
            ),
            (
                "[[cameras.zones]]\nname = \"z\"\npoints = [[0.1, 0.1], [0.9, 0.9]]",
                "cameras[0].zones[1].points",
                15,
                "a polygon needs at least 3 points, got 2",
            ),
            (
                "[[cameras.zones]]\nname = \"z\"\npoints = [[0.1, 0.1], [1.2, 0.5], [0.1, 0.9]]",
                "cameras[0].zones[1].points",
                15,
                "point 2 (1.2, 0.5) is outside 0..1",
            ),
            (
                "[[cameras.zones]]\nname = \"z\"\npoints = [[0.1, 0.1], [0.5, 0.5, 0.5], [0.1, 0.9]]",
                "cameras[0].zones[1].points",
                15,
                "a point is [x, y], got 3 numbers",
            ),
            (
                "[[cameras.zones]]\nname = \"z\"\npoints = [0.1, 0.1, 0.5]",
                "cameras[0].zones[1].points",
                15,
                "invalid type: floating point `0.1`, expected a point [x, y]",
            ),
            (
                "[[cameras.zones]]\nname = \"z\"",
                "cameras[0].zones[1]",
                13,
                "missing field `points`",
            ),
            (
                "[[cameras.zones]]\nname = \"road\"\npoints = [[0.1, 0.1], [0.9, 0.1], [0.1, 0.9]]",
                "cameras[0].zones[1].name",
                14,
                "`road` is already the name of cameras[0].zones[0]; zone and line names must differ",
            ),
            (
                "[[cameras.lines]]\nname = \"road\"\npoints = [[0.1, 0.1], [0.9, 0.1]]",
                "cameras[0].lines[0].name",
                14,
                "`road` is already the name of cameras[0].zones[0]",
            ),
            (
                "[[cameras.zones]]\nname = \"z 1\"\npoints = [[0.1, 0.1], [0.9, 0.1], [0.1, 0.9]]",
                "cameras[0].zones[1].name",
                14,
                "`z 1` is not usable in an MQTT topic",
            ),
            (
                "classes = [\"bicycle\"]",
                "cameras[0].zones[0].classes",
                13,
                "`bicycle` is not a class: use `person` or `vehicle`",
            ),
            (
                "classes = [\"person\", \"person\"]",
                "cameras[0].zones[0].classes",
                13,
                "`person` is listed twice",
            ),
            (
                "classes = []",
                "cameras[0].zones[0].classes",
                13,
                "must not be empty",
            ),
            (
                "loiter_s = 0",
                "cameras[0].zones[0].loiter_s",
                13,
                "must be more than 0 and at most 86400 (a day), got 0",
            ),
            (
                "loiter_s = 86401",
                "cameras[0].zones[0].loiter_s",
                13,
                "must be more than 0 and at most 86400 (a day), got 86401",
            ),
            (
                "inertia = 0",
                "cameras[0].zones[0].inertia",
                13,
                "must be between 1 and 100, got 0",
            ),
            (
                "inertia = 101",
                "cameras[0].zones[0].inertia",
                13,
                "must be between 1 and 100, got 101",
            ),
            (
                "colour = 1",
                "cameras[0].zones[0].colour",
                13,
                "unknown field `colour`",
            ),
            (
                "[cameras.zones]\nname = \"x\"",
                "cameras[0].zones",
                0, // the zone above makes `zones` an array already: a TOML error
                "",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.2]]",
                "cameras[0].lines[0].points",
                15,
                "points 1 and 2 are the same (0.5, 0.2): leave one out",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2]]",
                "cameras[0].lines[0].points",
                15,
                "a line needs at least 2 points, got 1",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.9]]\ndirection_names = [\"in\", \"in bound\"]",
                "cameras[0].lines[0].direction_names",
                16,
                "`in bound` is not usable in an MQTT topic",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.9]]\ndirection_names = [\"in\", \"in\"]",
                "cameras[0].lines[0].direction_names",
                16,
                "`in` is given for both directions: the two names must differ",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.9]]\ndirection_names = [\"in\"]",
                "cameras[0].lines[0].direction_names",
                16,
                "must be exactly 2 names, got 1",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.9]]\ndirection_names = []",
                "cameras[0].lines[0].direction_names",
                16,
                "must be exactly 2 names, got 0",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.9]]\nclasses = [\"truck\"]",
                "cameras[0].lines[0].classes",
                16,
                "`truck` is not a class",
            ),
            (
                "[[cameras.lines]]\nname = \"l\"\npoints = [[0.5, 0.2], [0.5, 0.9]]\ninertia = 0",
                "cameras[0].lines[0].inertia",
                16,
                "must be between 1 and 100, got 0",
            ),
        ];
        for &(extra, key, line, message) in cases {
            let text = format!("{MINIMAL}{zone}{extra}\n");
            let p = problem(&text);
            if line == 0 {
                assert_eq!(p.key, "", "{extra}\n{p:?}");
                continue;
            }
            assert_eq!(
                (p.key.as_str(), p.line),
                (key, Some(line)),
                "{extra}\n{p:?}"
            );
            assert!(p.message.starts_with(message), "{extra}\n{p:?}");
        }
        // Not an array of tables.
        let p = problem(&format!("{MINIMAL}[cameras.lines]\nname = \"l\"\n"));
        assert_eq!(
            (p.key.as_str(), p.line),
            ("cameras[0].lines", Some(10)),
            "{p:?}"
        );
        assert!(
            p.message.starts_with(
                "must be written as [[cameras.lines]] tables, one per line, got a table"
            ),
            "{p:?}"
        );
    }

    #[test]
    fn zone_problems_are_reported_beside_camera_problems() {
        let text = format!(
            "{MINIMAL}colour = 1\n[[cameras.zones]]\nname = \"a\"\npoints = [[0.1, 0.1]]\n\
             [[cameras.zones]]\nname = \"b\"\npoints = 5\n[[cameras.lines]]\nname = \"a\"\n\
             points = [[0.1, 0.1], [0.1, 0.1]]\n"
        );
        let got: Vec<_> = problems(&text)
            .into_iter()
            .map(|p| (p.line, p.key))
            .collect();
        let expected: Vec<_> = [
            (10, "cameras[0].colour"),
            (13, "cameras[0].zones[0].points"),
            (16, "cameras[0].zones[1].points"),
            (18, "cameras[0].lines[0].name"),
            (19, "cameras[0].lines[0].points"),
        ]
        .into_iter()
        .map(|(l, k)| (Some(l), k.to_owned()))
        .collect();
        assert_eq!(got, expected);
    }
}
