//! Pipeline templates (`pipelines/*.pipeline`): parsing, placeholder filling and the choice of a
//! template for a camera. Pure: no GStreamer types; the registry is a `Fn(&str) -> bool`.
//!
//! A template file starts with a header block of `# key: value` lines, ended by the first line
//! that is a bare `#`, blank, or not a comment:
//!
//! ```text
//! # description: one line for people
//! # kind: software | hardware
//! # codecs: h264 h265            (informative)
//! # requires: rtspsrc rtph264depay h264parse v4l2h264dec appsink
//! #
//! # free comments
//! rtspsrc name=src latency={latency_ms} protocols={protocols} ! … ! appsink name=sink …
//! ```
//!
//! The body (every line that is not a comment) is a `gst-launch` description with placeholders
//! `{name}` (`[a-z_][a-z0-9_]*` between braces; any other `{` is kept as it is, so caps lists
//! such as `format={ NV12, I420 }` still work). It must name its `rtspsrc` `src` and its
//! appsink `sink`. Credentials never appear in a template: they are set as properties on `src`.

use crate::config::DecoderChoice;

/// Software decoders run everywhere; hardware ones only where their elements exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecoderKind {
    Software,
    Hardware,
}

/// One parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The file name without `.pipeline` (`software`, `v4l2`, …): what `decoder = "…"` names.
    pub name: String,
    pub description: String,
    pub kind: DecoderKind,
    /// Informative: the codecs this template decodes.
    pub codecs: Vec<String>,
    /// Element factories that must all exist in the registry for the template to be usable.
    pub requires: Vec<String>,
    /// The `gst-launch` description, comment lines removed, lines joined by spaces.
    pub body: String,
}

/// The templates in `pipelines/`, embedded in the binary. Hardware templates are listed in the
/// order `Auto` tries them.
pub const BUNDLED: &[(&str, &str)] = &[
    ("nvv4l2", include_str!("../../pipelines/nvv4l2.pipeline")),
    ("mpp", include_str!("../../pipelines/mpp.pipeline")),
    ("v4l2", include_str!("../../pipelines/v4l2.pipeline")),
    ("va", include_str!("../../pipelines/va.pipeline")),
    ("vaapi", include_str!("../../pipelines/vaapi.pipeline")),
    (
        "software",
        include_str!("../../pipelines/software.pipeline"),
    ),
];

/// The template `Auto` falls back to.
pub const SOFTWARE: &str = "software";

/// A template that cannot be parsed or filled in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template `{template}`, line {line}: unknown header key `{key}`")]
    UnknownKey {
        template: String,
        line: usize,
        key: String,
    },
    #[error("template `{template}`, line {line}: `{text}` is not a `# key: value` header line")]
    BadHeader {
        template: String,
        line: usize,
        text: String,
    },
    #[error("template `{template}`: header `{key}` is missing")]
    MissingKey { template: String, key: &'static str },
    #[error("template `{template}`: kind must be `software` or `hardware`, got `{kind}`")]
    BadKind { template: String, kind: String },
    #[error("template `{template}`: no element named `{element}` (`name={element}`)")]
    MissingName {
        template: String,
        element: &'static str,
    },
    #[error("template `{template}`: unknown placeholder `{{{placeholder}}}`")]
    UnknownPlaceholder {
        template: String,
        placeholder: String,
    },
}

/// Why no template could be chosen for a camera.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("no decoder template named `{name}` (known: {known})")]
    Unknown { name: String, known: String },
    #[error(
        "decoder template `{template}` needs GStreamer element(s) that are not installed: {}",
        missing.join(", ")
    )]
    MissingElements {
        template: String,
        missing: Vec<String>,
    },
}

/// The chosen template and why, for the one log line per camera.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice<'a> {
    pub template: &'a Template,
    pub reason: String,
}

/// Parses one template file; `name` is its file name without `.pipeline`.
///
/// # Errors
/// A malformed or unknown header line, a missing `kind` or `requires`, or a body without an
/// element named `src` or `sink`.
pub fn parse_template(name: &str, text: &str) -> Result<Template, TemplateError> {
    let mut description = String::new();
    let mut kind = None;
    let mut codecs = Vec::new();
    let mut requires = None;
    let mut in_header = true;
    let mut body_lines = Vec::new();

    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let Some(comment) = line.strip_prefix('#') else {
            in_header = false;
            if !line.is_empty() {
                body_lines.push(line);
            }
            continue;
        };
        let comment = comment.trim();
        if !in_header {
            continue;
        }
        if comment.is_empty() {
            in_header = false;
            continue;
        }
        let Some((key, value)) = comment.split_once(':') else {
            return Err(TemplateError::BadHeader {
                template: name.to_owned(),
                line: i + 1,
                text: line.to_owned(),
            });
        };
        let value = value.trim();
        let words = || {
            value
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        match key.trim() {
            "description" => description = value.to_owned(),
            "kind" => {
                kind = Some(match value {
                    "software" => DecoderKind::Software,
                    "hardware" => DecoderKind::Hardware,
                    other => {
                        return Err(TemplateError::BadKind {
                            template: name.to_owned(),
                            kind: other.to_owned(),
                        });
                    }
                });
            }
            "codecs" => codecs = words(),
            "requires" => requires = Some(words()),
            other => {
                return Err(TemplateError::UnknownKey {
                    template: name.to_owned(),
                    line: i + 1,
                    key: other.to_owned(),
                });
            }
        }
    }

    let missing = |key| TemplateError::MissingKey {
        template: name.to_owned(),
        key,
    };
    let kind = kind.ok_or_else(|| missing("kind"))?;
    let requires = requires.ok_or_else(|| missing("requires"))?;
    let body = body_lines.join(" ");
    for element in ["src", "sink"] {
        let named = body
            .split_whitespace()
            .any(|word| word == format!("name={element}"));
        if !named {
            return Err(TemplateError::MissingName {
                template: name.to_owned(),
                element,
            });
        }
    }
    Ok(Template {
        name: name.to_owned(),
        description,
        kind,
        codecs,
        requires,
        body,
    })
}

/// Every bundled template, parsed (in [`BUNDLED`] order).
///
/// # Errors
/// A bundled template is malformed (a unit test makes sure none is).
pub fn bundled_templates() -> Result<&'static [Template], TemplateError> {
    static PARSED: std::sync::OnceLock<Result<Vec<Template>, TemplateError>> =
        std::sync::OnceLock::new();
    PARSED
        .get_or_init(|| {
            BUNDLED
                .iter()
                .map(|(name, text)| parse_template(name, text))
                .collect()
        })
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

/// Replaces every `{name}` placeholder in `template.body` by its value from `values`.
///
/// # Errors
/// [`TemplateError::UnknownPlaceholder`] for a placeholder `values` does not have.
pub fn fill_placeholders(
    template: &Template,
    values: &[(&str, String)],
) -> Result<String, TemplateError> {
    let body = &template.body;
    let mut out = String::with_capacity(body.len());
    let mut rest = body.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match placeholder_name(after) {
            Some(name) => {
                let value = values
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value)
                    .ok_or_else(|| TemplateError::UnknownPlaceholder {
                        template: template.name.clone(),
                        placeholder: name.to_owned(),
                    })?;
                out.push_str(value);
                rest = &after[name.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `name` when `text` starts with `name}` and `name` is `[a-z_][a-z0-9_]*`.
fn placeholder_name(text: &str) -> Option<&str> {
    let end = text.find('}')?;
    let name = &text[..end];
    let mut chars = name.chars();
    let first = chars.next()?;
    let valid = (first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    valid.then_some(name)
}

/// Chooses the template for `choice` among `templates`, given which element factories exist.
///
/// `Auto`: the first hardware template (in `templates` order) whose required elements all
/// exist, else [`SOFTWARE`]. `Named`: that template, if its elements exist.
///
/// # Errors
/// An unknown name, or a template with missing elements (named, including for the software
/// fallback of `Auto`).
pub fn choose_template<'a>(
    choice: &DecoderChoice,
    templates: &'a [Template],
    is_available: impl Fn(&str) -> bool,
) -> Result<Choice<'a>, ChoiceError> {
    let missing_of = |template: &Template| -> Vec<String> {
        template
            .requires
            .iter()
            .filter(|element| !is_available(element))
            .cloned()
            .collect()
    };
    let usable = |template: &'a Template| -> Result<&'a Template, ChoiceError> {
        let missing = missing_of(template);
        if missing.is_empty() {
            Ok(template)
        } else {
            Err(ChoiceError::MissingElements {
                template: template.name.clone(),
                missing,
            })
        }
    };
    let by_name = |name: &str| -> Result<&'a Template, ChoiceError> {
        templates
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| ChoiceError::Unknown {
                name: name.to_owned(),
                known: templates
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    };

    match choice {
        DecoderChoice::Named(name) => Ok(Choice {
            template: usable(by_name(name)?)?,
            reason: "configured".to_owned(),
        }),
        DecoderChoice::Auto => {
            let hardware = templates
                .iter()
                .filter(|t| t.kind == DecoderKind::Hardware)
                .find(|t| missing_of(t).is_empty());
            match hardware {
                Some(template) => Ok(Choice {
                    template,
                    reason: format!("auto: {} found", template.requires.join(", ")),
                }),
                None => Ok(Choice {
                    template: usable(by_name(SOFTWARE)?)?,
                    reason: "auto: no hardware decoder found".to_owned(),
                }),
            }
        }
    }
}

/// Whether an element factory, offered to `decodebin` in a software template, is a hardware
/// decoder to skip: its klass says `Hardware`, or its name is one of the known hardware
/// families (some vendors, NVIDIA's among them, do not say `Hardware`).
pub fn is_hardware_decoder(factory_name: &str, klass: &str) -> bool {
    const HARDWARE_PREFIXES: &[&str] = &[
        "nv", "v4l2", "mpp", "va", "msdk", "qsv", "omx", "d3d11", "d3d12", "vtdec", "amf",
    ];
    klass.contains("Decoder")
        && (klass.contains("Hardware")
            || HARDWARE_PREFIXES
                .iter()
                .any(|prefix| factory_name.starts_with(prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# description: test decoder\n# kind: hardware\n# codecs: h264\n\
        # requires: rtspsrc fancydec appsink\n#\n# free comment: with a colon\n\
        rtspsrc name=src latency={latency_ms}\n  ! fancydec ! appsink name=sink\n";

    #[test]
    fn parses_a_template() {
        let t = parse_template("fancy", GOOD).unwrap();
        assert_eq!(t.name, "fancy");
        assert_eq!(t.description, "test decoder");
        assert_eq!(t.kind, DecoderKind::Hardware);
        assert_eq!(t.codecs, ["h264"]);
        assert_eq!(t.requires, ["rtspsrc", "fancydec", "appsink"]);
        assert_eq!(
            t.body,
            "rtspsrc name=src latency={latency_ms} ! fancydec ! appsink name=sink"
        );
    }

    #[test]
    fn rejects_bad_templates() {
        let body = "rtspsrc name=src ! appsink name=sink";
        let cases: &[(&str, &str)] = &[
            (
                "# kind: hardware\n# requires: a\n# colour: blue\n",
                "unknown header key `colour`",
            ),
            (
                "# kind: hardware\n# no colon here\n",
                "not a `# key: value` header",
            ),
            ("# requires: a\n", "header `kind` is missing"),
            ("# kind: hardware\n", "header `requires` is missing"),
            (
                "# kind: gpu\n# requires: a\n",
                "kind must be `software` or `hardware`, got `gpu`",
            ),
        ];
        for (header, expected) in cases {
            let text = format!("{header}{body}\n");
            let err = parse_template("t", &text).unwrap_err().to_string();
            assert!(err.contains(expected), "{header:?}: {err}");
        }
        let err =
            parse_template("t", "# kind: software\n# requires: a\nrtspsrc name=src\n").unwrap_err();
        assert_eq!(
            err,
            TemplateError::MissingName {
                template: "t".to_owned(),
                element: "sink"
            }
        );
        // After the header block, comment lines are free text.
        let ok = format!("# kind: software\n# requires: a\n#\n# Anything: goes\n{body}\n");
        assert!(parse_template("t", &ok).is_ok());
    }

    #[test]
    fn fills_placeholders() {
        let template = |body: &str| Template {
            name: "t".to_owned(),
            description: String::new(),
            kind: DecoderKind::Software,
            codecs: vec![],
            requires: vec![],
            body: body.to_owned(),
        };
        let values = [
            ("latency_ms", "200".to_owned()),
            ("protocols", "tcp".to_owned()),
        ];
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("a latency={latency_ms} b", Ok("a latency=200 b")),
            ("{protocols}{latency_ms}", Ok("tcp200")),
            ("no placeholders", Ok("no placeholders")),
            (
                "caps format={ NV12, I420 }",
                Ok("caps format={ NV12, I420 }"),
            ),
            ("x={Upper} y={1abc} z={", Ok("x={Upper} y={1abc} z={")),
            ("{latency_ms", Ok("{latency_ms")),
            ("a={password}", Err("unknown placeholder `{password}`")),
        ];
        for (body, expected) in cases {
            let got = fill_placeholders(&template(body), &values);
            match expected {
                Ok(text) => assert_eq!(got.as_deref(), Ok(*text), "{body}"),
                Err(message) => assert!(got.unwrap_err().to_string().contains(message), "{body}"),
            }
        }
    }

    #[test]
    fn bundled_templates_parse_and_fill() {
        let templates = bundled_templates().unwrap();
        assert_eq!(templates.len(), BUNDLED.len());
        let values = [
            ("latency_ms", "200".to_owned()),
            ("protocols", "tcp".to_owned()),
        ];
        for t in templates {
            let body = fill_placeholders(t, &values).unwrap();
            assert!(!body.contains("{latency_ms}") && !body.contains("{protocols}"));
            assert!(
                body.contains("add-reference-timestamp-meta=true"),
                "{}",
                t.name
            );
            assert!(
                body.contains("max-buffers=1 drop=true sync=false"),
                "{}",
                t.name
            );
            // The appsink gets 8-bit 4:2:0 frames the agent reads directly (imaging::YuvFormat),
            // and nothing converts them on the way unless the decoder needs it.
            let caps = body
                .rsplit_once("! appsink")
                .and_then(|(before, _)| before.rsplit_once("! "))
                .map(|(_, caps)| caps.trim())
                .unwrap_or_default();
            let formats = caps
                .strip_prefix("video/x-raw,format=")
                .unwrap_or_else(|| panic!("{}: caps before the appsink: `{caps}`", t.name))
                .trim_matches(|c| c == '{' || c == '}' || c == ' ');
            for format in formats.split(',').map(str::trim) {
                assert!(
                    ["I420", "YV12", "NV12", "NV21"].contains(&format),
                    "{}: {format}",
                    t.name
                );
            }
            assert_eq!(
                body.contains("videoconvert"),
                t.kind == DecoderKind::Software,
                "{}: only decodebin's output may need a converter",
                t.name
            );
            assert_eq!(
                t.requires.iter().any(|e| e == "videoconvert"),
                body.contains("videoconvert"),
                "{}",
                t.name
            );
            assert!(
                !body.contains("user-pw") && !body.contains("location="),
                "{}",
                t.name
            );
            assert!(!t.description.is_empty(), "{}", t.name);
            assert!(t.requires.iter().any(|e| e == "rtspsrc"), "{}", t.name);
        }
        let software: Vec<_> = templates
            .iter()
            .filter(|t| t.kind == DecoderKind::Software)
            .collect();
        assert_eq!(software.len(), 1);
        assert_eq!(software[0].name, SOFTWARE);
        assert_eq!(software[0].codecs, ["h264", "h265"]);
    }

    fn available(list: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |e| list.contains(&e)
    }

    const BASE: &[&str] = &[
        "rtspsrc",
        "decodebin",
        "avdec_h264",
        "avdec_h265",
        "videoconvert",
        "appsink",
        "rtph264depay",
        "h264parse",
    ];

    #[test]
    fn chooses_from_the_registry() {
        let templates = bundled_templates().unwrap();
        let named = |n: &str| DecoderChoice::Named(n.to_owned());
        let with = |extra: &'static [&'static str]| -> Vec<&'static str> {
            BASE.iter().chain(extra).copied().collect()
        };
        // (choice, available elements, expected template or error text)
        let cases: Vec<(DecoderChoice, Vec<&str>, Result<&str, &str>)> = vec![
            (DecoderChoice::Auto, with(&[]), Ok("software")),
            (DecoderChoice::Auto, with(&["v4l2h264dec"]), Ok("v4l2")),
            (
                DecoderChoice::Auto,
                with(&["nvv4l2decoder", "nvvidconv"]),
                Ok("nvv4l2"),
            ),
            // nvv4l2decoder without nvvidconv is not usable: next in line.
            (
                DecoderChoice::Auto,
                with(&["nvv4l2decoder", "v4l2h264dec"]),
                Ok("v4l2"),
            ),
            (
                DecoderChoice::Auto,
                with(&["mppvideodec", "vah264dec"]),
                Ok("mpp"),
            ),
            (DecoderChoice::Auto, with(&["vaapih264dec"]), Ok("vaapi")),
            (
                DecoderChoice::Auto,
                with(&["vah264dec", "vaapih264dec"]),
                Ok("va"),
            ),
            (named("software"), with(&["v4l2h264dec"]), Ok("software")),
            (named("v4l2"), with(&["v4l2h264dec"]), Ok("v4l2")),
            (
                named("v4l2"),
                with(&[]),
                Err("`v4l2` needs GStreamer element(s) that are not installed: v4l2h264dec"),
            ),
            (
                named("nvv4l2"),
                with(&["nvvidconv"]),
                Err("not installed: nvv4l2decoder"),
            ),
            (
                named("cuda"),
                with(&[]),
                Err(
                    "no decoder template named `cuda` (known: nvv4l2, mpp, v4l2, va, vaapi, software)",
                ),
            ),
            (
                DecoderChoice::Auto,
                vec!["rtspsrc", "decodebin", "videoconvert", "appsink"],
                Err(
                    "`software` needs GStreamer element(s) that are not installed: avdec_h264, avdec_h265",
                ),
            ),
        ];
        for (choice, elements, expected) in cases {
            let got = choose_template(&choice, templates, |e| elements.contains(&e));
            match expected {
                Ok(name) => assert_eq!(
                    got.as_ref().map(|c| c.template.name.as_str()),
                    Ok(name),
                    "{choice:?} with {elements:?}"
                ),
                Err(message) => {
                    let err = got.unwrap_err().to_string();
                    assert!(err.contains(message), "{choice:?}: {err}");
                }
            }
        }
        let choice = choose_template(&DecoderChoice::Auto, templates, available(BASE)).unwrap();
        assert_eq!(choice.reason, "auto: no hardware decoder found");
    }

    #[test]
    fn recognises_hardware_decoders() {
        let cases = [
            ("avdec_h264", "Codec/Decoder/Video", false),
            ("avdec_h265", "Codec/Decoder/Video", false),
            ("openh264dec", "Decoder/Video", false),
            ("v4l2h264dec", "Codec/Decoder/Video/Hardware", true),
            ("v4l2slh264dec", "Codec/Decoder/Video/Hardware", true),
            ("nvv4l2decoder", "Codec/Decoder/Video", true),
            ("nvh264dec", "Codec/Decoder/Video/Hardware", true),
            ("vah264dec", "Codec/Decoder/Video/Hardware", true),
            ("vaapih264dec", "Codec/Decoder/Video", true),
            ("mppvideodec", "Codec/Decoder/Video", true),
            ("somethingdec", "Codec/Decoder/Video/Hardware", true),
            ("rtph264depay", "Codec/Depayloader/Network/RTP", false),
            ("h264parse", "Codec/Parser/Converter/Video", false),
        ];
        for (name, klass, expected) in cases {
            assert_eq!(is_hardware_decoder(name, klass), expected, "{name}");
        }
    }
}
