//! A secret value whose `Debug` and `Display` never show it.

/// A password or key. Printing it, in any form, gives `***`; use [`Secret::expose`] where the
/// value must really be used (handing it to rtspsrc or the MQTT client), and nowhere else.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself. Never log or format the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// A password in a request (the page's "Add a camera"): a JSON string. Anything else is refused
/// with an error that does not quote what was sent (serde's own would).
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        struct Text;

        impl serde::de::Visitor<'_> for Text {
            type Value = Secret;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a password (a string)")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Secret, E> {
                Ok(Secret::new(value))
            }

            fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Secret, E> {
                Ok(Secret(value))
            }

            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom("a password must be a string"))
            }

            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::custom("a password must be a string"))
            }

            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::custom("a password must be a string"))
            }

            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom("a password must be a string"))
            }
        }

        // `deserialize_any`: a format that is asked for a string builds its own error, quoting
        // what it found.
        deserializer.deserialize_any(Text)
    }
}

/// Why a password file gave no password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    #[error("cannot read `{}`: {reason}", path.display())]
    Read {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("the first line of `{}` is empty", path.display())]
    Empty { path: std::path::PathBuf },
}

/// The password in a password file: its first line, without the line end. The one reader for
/// the configuration's `password_file` keys and the commands' `--password-file`.
///
/// # Errors
/// The file cannot be read, or its first line is empty.
pub fn read_password_file(path: &std::path::Path) -> Result<Secret, PasswordFileError> {
    read_password_in(&super::OsFiles, path)
}

/// [`read_password_file`] in `files`.
pub(crate) fn read_password_in(
    files: &dyn super::Files,
    path: &std::path::Path,
) -> Result<Secret, PasswordFileError> {
    let text = files
        .read_to_string(path)
        .map_err(|e| PasswordFileError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    match text.lines().next() {
        Some(line) if !line.is_empty() => Ok(Secret::new(line)),
        _ => Err(PasswordFileError::Empty {
            path: path.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        // (content, the password, or the start of the error)
        let cases: [(&[u8], Result<&str, &str>); 6] = [
            (b"s3cret\n", Ok("s3cret")),
            (b"s3cret", Ok("s3cret")),
            (b"s3cret\r\nsecond line\n", Ok("s3cret")),
            (b" spaced out \n", Ok(" spaced out ")),
            (b"\ns3cret\n", Err("the first line of")),
            (b"", Err("the first line of")),
        ];
        for (i, (content, expected)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("p{i}"));
            std::fs::write(&path, content).unwrap();
            match (read_password_file(&path), expected) {
                (Ok(secret), Ok(password)) => assert_eq!(secret.expose(), password, "{content:?}"),
                (Err(e), Err(start)) => assert!(e.to_string().starts_with(start), "{e}"),
                (got, _) => panic!("{content:?}: {got:?}"),
            }
        }
        let missing = read_password_file(&dir.path().join("missing")).unwrap_err();
        assert!(
            missing.to_string().starts_with("cannot read `"),
            "{missing}"
        );
    }

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn read_from_json_strings_only_and_never_quoted_in_errors() {
        let s: Secret = serde_json::from_str(r#""hunter2""#).unwrap();
        assert_eq!(s.expose(), "hunter2");
        let s: Secret = serde_json::from_str(r#""a\"b""#).unwrap();
        assert_eq!(s.expose(), "a\"b");
        for sent in [
            "74638291",
            "-74638291",
            "74638.291",
            "true",
            "[\"74638291\"]",
        ] {
            let e = serde_json::from_str::<Secret>(sent)
                .unwrap_err()
                .to_string();
            assert!(!e.contains("74638") && !e.contains("true"), "{sent}: {e}");
            assert!(e.contains("string"), "{sent}: {e}");
        }
    }
}
