//! Reading one table (a section, a camera, a zone or a line) into its raw struct on its own, so
//! that a mistake in one does not hide mistakes in the others: every unknown key of the table is
//! said, and the table is read without them.

use std::ops::Range;

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::problems::one_line;
use super::{Checker, Scope};

/// The raw struct of a table, read by serde. The keys a table must have are `Option` fields
/// like the others, named in `REQUIRED`: [`Checker::deserialize`] refuses a table without one in
/// serde's words ("missing field `name`"), except where one value is checked alone
/// ([`Scope::OneValue`]), which must not need the keys beside it.
pub(super) trait RawTable: DeserializeOwned {
    /// The keys the table must have, in the order of the struct's fields (the first one
    /// missing is named).
    const REQUIRED: &[&str] = &[];
}

/// What deserializing one table gave.
pub(super) enum Part<T> {
    Missing,
    Refused,
    Found(T),
}

impl<'a> Checker<'a> {
    /// Deserializes the top-level table `name` on its own.
    pub(super) fn section<T: RawTable>(&mut self, name: &str) -> Part<T> {
        let root = self.root;
        match root.get(name) {
            None => Part::Missing,
            Some(value) => match self.deserialize(name, value) {
                Some(raw) => Part::Found(raw),
                None => Part::Refused,
            },
        }
    }

    /// The top-level table `name` that may be left out, deserialized on its own: the defaults
    /// when it is missing, `None` when it is refused.
    pub(super) fn optional_section<T: RawTable + Default>(&mut self, name: &str) -> Option<T> {
        match self.section(name) {
            Part::Found(raw) => Some(raw),
            Part::Missing => Some(T::default()),
            Part::Refused => None,
        }
    }

    /// Deserializes one table (a section or a camera) named `prefix` in problems.
    pub(super) fn deserialize<T: RawTable>(
        &mut self,
        prefix: &str,
        value: &Spanned<DeValue<'a>>,
    ) -> Option<T> {
        let DeValue::Table(table) = value.get_ref() else {
            self.problem_at(
                prefix,
                value.span().start,
                format!("must be a table, got {}", kind(value.get_ref())),
            );
            return None;
        };
        // Every unknown key of the table is said, and the table is read without them, so that
        // its other problems are said too (serde's `deny_unknown_fields` stops at the first).
        let unknown: Vec<_> = match field_names::<T>() {
            Some(fields) => table
                .keys()
                .filter(|k| !fields.contains(&k.get_ref().as_ref()))
                .collect(),
            None => Vec::new(),
        };
        let known = if unknown.is_empty() {
            value.clone()
        } else {
            let fields = field_names::<T>().unwrap_or_default();
            for key in &unknown {
                self.problem_at(
                    format!("{prefix}.{}", key.get_ref()),
                    key.span().start,
                    unknown_field(key.get_ref(), fields),
                );
            }
            let mut known = table.clone();
            for key in &unknown {
                known.remove(key.get_ref().as_ref());
            }
            Spanned::new(value.span(), DeValue::Table(known))
        };
        let raw = match T::deserialize(known.into_deserializer()) {
            Ok(raw) => raw,
            Err(e) => {
                self.serde_problem(prefix, table, e.span(), one_line(e.message()));
                return None;
            }
        };
        let missing = T::REQUIRED.iter().find(|name| !table.contains_key(**name));
        match (missing, self.scope) {
            (Some(name), Scope::WholeFile) => {
                // Where and how serde says it: at the table.
                let message = format!("missing field `{name}`");
                self.serde_problem(prefix, table, Some(value.span()), message);
                None
            }
            (None, _) | (Some(_), Scope::OneValue) => Some(raw),
        }
    }

    /// A problem serde found in `table` (named `prefix`), at `span` of the text.
    fn serde_problem(
        &mut self,
        prefix: &str,
        table: &DeTable<'_>,
        span: Option<Range<usize>>,
        message: String,
    ) {
        match span {
            Some(span) => {
                // The key the error is about: the one whose key or value holds the span.
                let key = table
                    .iter()
                    .find(|(k, v)| k.span().contains(&span.start) || v.span().contains(&span.start))
                    .map_or_else(
                        || prefix.to_owned(),
                        |(k, _)| format!("{prefix}.{}", k.get_ref()),
                    );
                self.problem_at(key, span.start, message);
            }
            None => self.problem(prefix, message),
        }
    }
}

/// The fields of the struct `T` deserializes into, as serde's derive names them; `None` for a
/// type that is not read as a struct (a map, or a struct with flattened fields).
fn field_names<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut fields = None;
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// A deserializer that only learns the field names a derived `Deserialize` asks for.
struct FieldNames<'f>(&'f mut Option<&'static [&'static str]>);

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(serde::de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// What serde says of an unknown field, word for word.
fn unknown_field(name: &str, fields: &[&str]) -> String {
    let quoted: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
    match quoted.as_slice() {
        [] => format!("unknown field `{name}`, there are no fields"),
        [one] => format!("unknown field `{name}`, expected {one}"),
        [a, b] => format!("unknown field `{name}`, expected {a} or {b}"),
        all => format!("unknown field `{name}`, expected one of {}", all.join(", ")),
    }
}

pub(super) fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load::tests::{MINIMAL, problem, problems, with};

    #[test]
    fn every_unknown_key_and_every_other_problem_of_a_table_at_once() {
        let text = MINIMAL
            .replace(
                "id = \"post-07\"",
                "id = \"post-07\"\nbogus = 1\nsite2 = \"x\"",
            )
            .replace(
                "url = \"mqtt://127.0.0.1:1883\"",
                "url = \"mqtt://127.0.0.1:1883\"\nkeep_alive_s = -5\nwhat = 1",
            )
            .replace("detect_fps = 5", "detect_fps = 500\nfps = 5");
        let all = problems(&text);
        let said: Vec<(&str, Option<usize>)> =
            all.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(
            said,
            [
                ("device.bogus", Some(4)),
                ("device.site2", Some(5)),
                ("mqtt.keep_alive_s", Some(8)),
                ("mqtt.what", Some(9)),
                ("cameras[0].detect_fps", Some(13)),
                ("cameras[0].fps", Some(14)),
            ],
            "{all:#?}"
        );
        assert_eq!(
            all[0].message,
            "unknown field `bogus`, expected one of `site`, `id`, `state_dir`"
        );
    }

    #[test]
    fn shape_errors_name_key_and_line() {
        // text, key, line, message part
        let cases: &[(&str, &str, Option<usize>, &str)] = &[
            (
                &with("device", "colour = \"red\""),
                "device.colour",
                Some(2),
                "unknown field `colour`, expected one of `site`, `id`, `state_dir`",
            ),
            (
                &format!("{MINIMAL}[extra]\n"),
                "extra",
                Some(10),
                "unknown key `extra`",
            ),
            (
                &format!("site = 1\n{MINIMAL}"),
                "site",
                Some(1),
                "unknown key `site`",
            ),
            (
                &with("cameras", "fps = 5"),
                "cameras[0].fps",
                Some(10),
                "unknown field `fps`",
            ),
            (
                &MINIMAL.replace("detect_fps = 5", "detect_fps = \"fast\""),
                "cameras[0].detect_fps",
                Some(9),
                "invalid type: string \"fast\", expected a number",
            ),
            (
                &with("mqtt", "keep_alive_s = 2.5"),
                "mqtt.keep_alive_s",
                Some(5),
                "invalid type: floating point `2.5`, expected a whole number",
            ),
            (
                &MINIMAL.replace("name = \"gate-east\"\n", ""),
                "cameras[0]",
                Some(6),
                "missing field `name`",
            ),
            (
                &MINIMAL.replace("[device]\nsite = \"bihac-north\"\nid = \"post-07\"\n", ""),
                "device",
                None,
                "missing: a [device] table",
            ),
            (
                &MINIMAL.replace("[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n", ""),
                "mqtt",
                None,
                "missing: an [mqtt] table",
            ),
            (
                &MINIMAL[..MINIMAL.find("[[cameras]]").unwrap()],
                "cameras",
                None,
                "missing: at least one [[cameras]] table",
            ),
            (
                &format!(
                    "cameras = []\n{}",
                    &MINIMAL[..MINIMAL.find("[[cameras]]").unwrap()]
                ),
                "cameras",
                Some(1),
                "at least one camera is needed",
            ),
            (
                &MINIMAL.replace("[[cameras]]", "[cameras]"),
                "cameras",
                Some(6),
                "must be written as [[cameras]] tables, one per camera, got a table",
            ),
            (
                &format!("health = 5\n{MINIMAL}"),
                "health",
                Some(1),
                "must be a table, got an integer",
            ),
            (
                &format!("{MINIMAL}[mqtt]\n"),
                "",
                Some(10),
                "table `[mqtt]` is declared twice, on lines 4 and 10",
            ),
            (
                &format!("{MINIMAL}name = \n"),
                "",
                Some(10),
                "string values must be quoted",
            ),
        ];
        for &(text, key, line, message) in cases {
            let p = problem(text);
            assert_eq!((p.key.as_str(), p.line), (key, line), "{text}\n{p:?}");
            assert!(p.message.contains(message), "{text}\n{p:?}");
        }
    }

    /// A table without a key it must have is refused at its header, naming the first key
    /// missing in the words serde uses, and its other keys are not looked at.
    #[test]
    fn a_table_without_a_key_it_must_have_names_the_first_one_missing() {
        let zone = "[[cameras.zones]]\nclasses = [\"bicycle\"]\n";
        let line = "[[cameras.lines]]\nname = \"l\"\ninertia = 0\n";
        let cases = [
            (
                MINIMAL.replace("site = \"bihac-north\"\nid = \"post-07\"", "bogus = 1"),
                vec![
                    ("device", 1, "missing field `site`"),
                    ("device.bogus", 2, "unknown field `bogus`"),
                ],
            ),
            (
                MINIMAL.replace("id = \"post-07\"", "state_dir = \"\""),
                vec![("device", 1, "missing field `id`")],
            ),
            (
                MINIMAL.replace("url = \"mqtt://127.0.0.1:1883\"", "keep_alive_s = 1"),
                vec![("mqtt", 4, "missing field `url`")],
            ),
            (
                MINIMAL.replace("url = \"rtsp://10.0.0.21:554/stream1\"", "latency_ms = -1"),
                vec![("cameras[0]", 6, "missing field `url`")],
            ),
            (
                format!("{MINIMAL}{zone}{line}"),
                vec![
                    ("cameras[0].zones[0]", 10, "missing field `name`"),
                    ("cameras[0].lines[0]", 12, "missing field `points`"),
                ],
            ),
        ];
        for (text, expected) in cases {
            let got: Vec<_> = problems(&text)
                .into_iter()
                .map(|p| (p.key, p.line, p.message))
                .collect();
            let expected: Vec<_> = expected
                .into_iter()
                .map(|(key, line, message)| (key.to_owned(), Some(line), message.to_owned()))
                .collect();
            assert_eq!(got.len(), expected.len(), "{text}\n{got:#?}");
            for (got, expected) in got.iter().zip(&expected) {
                assert!(
                    got.0 == expected.0 && got.1 == expected.1 && got.2.starts_with(&expected.2),
                    "{text}\n{got:?}, expected {expected:?}"
                );
            }
        }
    }
}
