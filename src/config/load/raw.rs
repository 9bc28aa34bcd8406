//! The raw values several tables share: numbers that say "expected a whole number" or "a
//! number" in words and hold any value the file can write (so that a range says what is wrong,
//! not a type), and passwords refused without being quoted. No `Debug`: some are passwords.

use std::fmt;

use serde::Deserialize;

/// An integer; "expected a whole number" when it is not. Held wider than any setting needs, so
/// that a number too large for its setting is refused by its range, in words, not by a type.
#[derive(Clone, Copy)]
pub(super) struct Int(pub(super) i128);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Int, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Int, E> {
                Ok(Int(i128::try_from(v).unwrap_or(i128::MAX)))
            }
        }
        deserializer.deserialize_i64(Visitor)
    }
}

/// A number, whole or not; "expected a number" when it is not.
#[derive(Clone, Copy)]
pub(super) struct Float(pub(super) f64);

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Float, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Float;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Float, E> {
                Ok(Float(v))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
        }
        deserializer.deserialize_f64(Visitor)
    }
}

/// A password as written in the file. A value of the wrong type is refused without quoting it.
pub(super) struct RawSecret(pub(super) String);

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RawSecret, D::Error> {
        const NOT_SHOWN: &str = "must be a string (the value is not shown)";
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawSecret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSecret, E> {
                Ok(RawSecret(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawSecret, E> {
                Ok(RawSecret(v))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_char<E: serde::de::Error>(self, _: char) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
            fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<RawSecret, E> {
                Err(E::custom(NOT_SHOWN))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load::tests::{MINIMAL, problem};

    #[test]
    fn numbers_too_large_for_any_setting_are_out_of_range_in_words() {
        let table = [
            (
                format!("{MINIMAL}[detection]\ninference_threads = 99999999999999999999\n"),
                "detection.inference_threads",
                "out of range: must be between 1 and 64, got 99999999999999999999",
            ),
            (
                format!("{MINIMAL}[detection]\nmax_frame_age_ms = -99999999999999999999\n"),
                "detection.max_frame_age_ms",
                "out of range: must be between 50 and 60000, got -99999999999999999999",
            ),
            (
                format!("{MINIMAL}[detection]\ninference_threads = 9223372036854775807\n"),
                "detection.inference_threads",
                "must be between 1 and 64, got 9223372036854775807",
            ),
            (
                MINIMAL.replace("detect_fps = 5", "detect_fps = 99999999999999999999"),
                "cameras[0].detect_fps",
                "must be more than 0 and at most 60, got 100000000000000000000",
            ),
        ];
        for (text, key, message) in table {
            let p = problem(&text);
            assert_eq!(p.key, key, "{text}");
            assert!(p.message.starts_with(message), "{key}: {}", p.message);
            assert!(!p.message.contains("i128"), "{}", p.message);
        }
    }
}
