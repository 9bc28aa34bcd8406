//! Problems and where they are: the line of a key, TOML syntax errors (a table or key given
//! twice named with both lines), and invisible characters named by code point.

use toml::de::{DeTable, DeValue};

use super::Checker;
use crate::config::Problem;

impl<'a> Checker<'a> {
    /// A problem with `key`, on the line of the key (or of the nearest table that is there).
    pub(super) fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let line = self.line_of(&key);
        self.problems.push(Problem {
            key,
            line,
            message: message.into(),
        });
    }

    /// A problem at a known place in the text.
    pub(super) fn problem_at(
        &mut self,
        key: impl Into<String>,
        offset: usize,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            key: key.into(),
            line: Some(line_at(self.text, offset)),
            message: message.into(),
        });
    }

    /// The line of `key` (`mqtt.url`, `cameras[1].name`); for a key that is not in the file, the
    /// line of the deepest table on its path that is.
    fn line_of(&self, key: &str) -> Option<usize> {
        let mut table = self.root;
        let mut offset = None;
        for segment in key.split('.') {
            let (name, index) = match segment.split_once('[') {
                Some((name, index)) => (name, index.trim_end_matches(']').parse::<usize>().ok()),
                None => (segment, None),
            };
            let Some((k, mut value)) = table.get_key_value(name) else {
                break;
            };
            offset = Some(k.span().start);
            if let Some(index) = index {
                let DeValue::Array(items) = value.get_ref() else {
                    break;
                };
                let Some(item) = items.get(index) else {
                    break;
                };
                offset = Some(item.span().start);
                value = item;
            }
            let DeValue::Table(inner) = value.get_ref() else {
                break;
            };
            table = inner;
        }
        offset.map(|o| line_at(self.text, o))
    }
}

/// 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A TOML syntax error as a problem. A table or key given twice names both lines, which the
/// parser does not.
pub(super) fn syntax_problem(text: &str, error: &toml::de::Error) -> Problem {
    let line = error.span().map(|span| line_at(text, span.start));
    let mut message = one_line(error.message());
    if let Some(line) = line.filter(|_| message.contains("duplicate key"))
        && let Some(twice) = given_twice(text, line)
    {
        message = twice;
    }
    Problem {
        key: String::new(),
        line,
        message,
    }
}

/// What is given twice at 1-based `line`: a table header seen before, or a key set before in
/// the same table; `None` when neither is found.
fn given_twice(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?.trim();
    let before = &lines[..line - 1];
    if here.starts_with('[') && !here.starts_with("[[") {
        let header = here.split('#').next()?.trim();
        let first = before
            .iter()
            .position(|l| l.split('#').next().map(str::trim) == Some(header))?;
        return Some(format!(
            "table `{header}` is declared twice, on lines {} and {line}: merge them into one",
            first + 1
        ));
    }
    let key = here.split('=').next()?.trim();
    let first = before
        .iter()
        .rposition(|l| {
            let l = l.trim();
            l.starts_with('[') || l.split('=').next().map(str::trim) == Some(key)
        })
        .filter(|&i| !before[i].trim().starts_with('['))?;
    Some(format!(
        "`{key}` is set twice in the same table, on lines {} and {line}: keep one",
        first + 1
    ))
}

/// Every string value below `table` (`prefix` is its key) with a control or other invisible
/// character, named by code point: such a character cannot be seen in an editor.
pub(super) fn invisible_characters(table: &DeTable<'_>, prefix: &str, text: &str) -> Vec<Problem> {
    let mut found = Vec::new();
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.get_ref().to_string()
        } else {
            format!("{prefix}.{}", name.get_ref())
        };
        invisible_in_value(value, &key, text, &mut found);
    }
    found
}

fn invisible_in_value(
    value: &toml::Spanned<DeValue<'_>>,
    key: &str,
    text: &str,
    found: &mut Vec<Problem>,
) {
    match value.get_ref() {
        DeValue::String(string) => {
            if let Some((position, c)) = string.chars().enumerate().find(|(_, c)| invisible(*c)) {
                found.push(Problem {
                    key: key.to_owned(),
                    line: Some(line_at(text, value.span().start)),
                    message: format!(
                        "contains an invisible character, {} at position {}: type the value again",
                        code_point(c),
                        position + 1
                    ),
                });
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let key = match item.get_ref() {
                    DeValue::Table(_) => format!("{key}[{i}]"),
                    _ => key.to_owned(),
                };
                invisible_in_value(item, &key, text, found);
            }
        }
        DeValue::Table(inner) => found.extend(invisible_characters(inner, key, text)),
        _ => {}
    }
}

fn invisible(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}')
}

/// `U+0000 (NUL)`.
fn code_point(c: char) -> String {
    let name = match c {
        '\0' => Some("NUL"),
        '\t' => Some("TAB"),
        '\n' => Some("LINE FEED"),
        '\r' => Some("CARRIAGE RETURN"),
        '\u{1b}' => Some("ESC"),
        '\u{7f}' => Some("DEL"),
        '\u{200b}' => Some("ZERO WIDTH SPACE"),
        '\u{200c}' => Some("ZERO WIDTH NON-JOINER"),
        '\u{200d}' => Some("ZERO WIDTH JOINER"),
        '\u{200e}' => Some("LEFT-TO-RIGHT MARK"),
        '\u{200f}' => Some("RIGHT-TO-LEFT MARK"),
        '\u{2060}' => Some("WORD JOINER"),
        '\u{feff}' => Some("BYTE ORDER MARK"),
        c if c.is_control() => Some("a control character"),
        _ => None,
    };
    match name {
        Some(name) => format!("U+{:04X} ({name})", u32::from(c)),
        None => format!("U+{:04X}", u32::from(c)),
    }
}

/// toml's messages may span lines; keep one.
pub(super) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use crate::config::load::tests::{MINIMAL, problem};

    #[test]
    fn invisible_characters_are_named_by_code_point_with_their_key() {
        let table = [
            (
                "site = \"bihac-north\"",
                "site = \"bihac\\u0000north\"",
                "device.site",
                "U+0000 (NUL) at position 6",
            ),
            (
                "id = \"post-07\"",
                "id = \"post\\u200b-07\"",
                "device.id",
                "U+200B (ZERO WIDTH SPACE) at position 5",
            ),
            (
                "url = \"rtsp://10.0.0.21:554/stream1\"",
                "url = \"rtsp://10.0.0.21:554/stream1\\t\"",
                "cameras[0].url",
                "U+0009 (TAB) at position 29",
            ),
        ];
        for (from, to, key, said) in table {
            let text = MINIMAL.replace(from, to);
            assert_ne!(text, MINIMAL, "{from}");
            let p = problem(&text);
            assert_eq!(p.key, key, "{text}");
            assert!(p.line.is_some());
            assert!(
                p.message.contains("invisible character") && p.message.contains(said),
                "{key}: {}",
                p.message
            );
        }
    }

    #[test]
    fn a_table_or_key_given_twice_names_both_lines() {
        let p = problem(&format!("{MINIMAL}[device]\nsite = \"x\"\n"));
        assert_eq!(p.line, Some(10));
        assert_eq!(
            p.message,
            "table `[device]` is declared twice, on lines 1 and 10: merge them into one"
        );
        let p = problem(&MINIMAL.replace("id = \"post-07\"", "id = \"post-07\"\nsite = \"b\""));
        assert_eq!(p.line, Some(4));
        assert_eq!(
            p.message,
            "`site` is set twice in the same table, on lines 2 and 4: keep one"
        );
    }
}
