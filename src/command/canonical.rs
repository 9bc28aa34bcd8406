//! The bytes a command's signature covers ([`canonical_bytes`]) and the canonical JSON of its
//! `args` ([`Args`], RFC 8785). Pure; the layout is documented in the module above.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use serde_json::{Map, Number, Value};

use super::message::{COMMAND_SCHEMA, CommandMessage, DeviceId};

/// The largest integer `args` may hold (2^53 − 1): every JSON library reads it exactly.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A command's `args`: a JSON object with no duplicate keys and no integer beyond
/// ±[`MAX_SAFE_INTEGER`], so that its canonical form ([`Args::canonical`]) means what the agent
/// acts on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args(Map<String, Value>);

impl Args {
    /// `{}`.
    pub fn empty() -> Args {
        Args(Map::new())
    }

    /// Parses `text` as [`Args`] (strictly: an object, no duplicate keys, safe integers).
    ///
    /// # Errors
    /// The JSON error, or what breaks a rule.
    pub fn parse(text: &str) -> Result<Args, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// RFC 8785 (JSON Canonicalization Scheme): no white space, object keys sorted by their
    /// UTF-16 code units, strings escaped as ECMAScript's `JSON.stringify` does, numbers as
    /// ECMAScript writes an IEEE 754 double.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        write_object(&mut out, &self.0);
        out
    }
}

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Args, D::Error> {
        match deserializer.deserialize_any(StrictVisitor)? {
            Value::Object(map) => Ok(Args(map)),
            _ => Err(de::Error::custom("`args` must be a JSON object")),
        }
    }
}

/// Builds a [`Value`], refusing duplicate object keys and integers beyond ±2^53 − 1.
struct StrictVisitor;

/// One strict value inside an array or object.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Strict, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

fn unsafe_integer<E: de::Error>(text: impl fmt::Display) -> E {
    E::custom(format!(
        "the integer {text} in `args` is beyond ±{MAX_SAFE_INTEGER} (2^53 − 1)"
    ))
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        if v.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(unsafe_integer(v));
        }
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if v > MAX_SAFE_INTEGER {
            return Err(unsafe_integer(v));
        }
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number in `args` is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "the key `{}` appears twice in an object of `args`",
                    key.chars().take(64).collect::<String>()
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|(a, _), (b, _)| utf16_order(a, b));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

/// serde_json escapes exactly as RFC 8785 asks: `"`, `\`, \b \f \n \r \t, other control
/// characters as \u00xx (lower-case hex), nothing else.
fn write_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// RFC 8785 sorts object keys by their UTF-16 code units (which differs from byte order only
/// for characters above U+FFFF against U+E000..U+FFFF).
fn utf16_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        out.push_str(&es_number(f));
    }
}

/// A double as ECMAScript's `Number.prototype.toString` writes it (RFC 8785 §3.2.2.3): the
/// shortest digits that read back as the same double, in plain notation for exponents −7 <
/// e < 21, else as `d.ddde±x`.
pub(crate) fn es_number(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        // -0 is written 0; a JSON number is never infinite or NaN.
        return "0".to_owned();
    }
    if value < 0.0 {
        return format!("-{}", es_number(-value));
    }
    // Rust's `{:e}` gives the shortest digits that round-trip (`d.ddde±x`); where two such
    // digit strings are equally close, ECMAScript takes the even one, as Rust's exact
    // formatting to that many digits does.
    let shortest = format!("{value:e}");
    let n_digits = shortest
        .split('e')
        .next()
        .map_or(1, |m| m.chars().filter(char::is_ascii_digit).count());
    let scientific = format!("{value:.*e}", n_digits.saturating_sub(1));
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    // value = 0.digits × 10^n
    let n = exponent + 1;
    let k = digits.len() as i32;
    if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        if rest.is_empty() {
            format!("{first}e{sign}{}", e.abs())
        } else {
            format!("{first}.{rest}e{sign}{}", e.abs())
        }
    }
}

/// The bytes a command's signature covers: the domain line `watchpost.command/1`, then one
/// line per field, `NAME LENGTH VALUE`, in a fixed order (see the module documentation). The
/// topic and the device are the receiver's, never taken from the message, so a message signed
/// for another device or topic does not verify. `message.signature` and `message.schema` are not
/// part of it (the domain line stands for the schema).
pub fn canonical_bytes(topic: &str, device: &DeviceId, message: &CommandMessage) -> Vec<u8> {
    let device = device.to_string();
    let args = message.args.canonical();
    let counter = message.counter.to_string();
    let fields: [(&str, &str); 9] = [
        ("topic", topic),
        ("device", &device),
        ("id", &message.id),
        ("command", &message.command),
        ("args", &args),
        ("issued_at", &message.issued_at),
        ("expires_at", &message.expires_at),
        ("key_id", &message.key_id),
        ("counter", &counter),
    ];
    let mut out = Vec::with_capacity(256 + args.len());
    out.extend_from_slice(COMMAND_SCHEMA.as_bytes());
    out.push(b'\n');
    for (name, value) in fields {
        out.extend_from_slice(format!("{name} {} ", value.len()).as_bytes());
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_rfc_8785_writes_them() {
        // (IEEE 754 bits, canonical text): RFC 8785 appendix B.
        let cases: [(u64, &str); 24] = [
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, expected) in cases {
            assert_eq!(es_number(f64::from_bits(bits)), expected, "{bits:#018x}");
        }
        for (value, expected) in [(2.5, "2.5"), (100.0, "100"), (1e-7, "1e-7"), (0.5, "0.5")] {
            assert_eq!(es_number(value), expected);
        }
    }

    #[test]
    fn args_in_canonical_form() {
        // (message text, canonical text)
        let cases = [
            ("{}", "{}"),
            (
                r#"{ "b" : 1, "a" : [true, null, "x"] }"#,
                r#"{"a":[true,null,"x"],"b":1}"#,
            ),
            (
                r#"{"fps": 2.50, "n": -3, "big": 1E3}"#,
                r#"{"big":1000,"fps":2.5,"n":-3}"#,
            ),
            (
                r#"{"s": "é\u00e9\n\t\u0001/\"\\"}"#,
                "{\"s\":\"éé\\n\\t\\u0001/\\\"\\\\\"}",
            ),
            // UTF-16 order: U+1F600 (surrogates D83D…) sorts before U+FB01.
            (
                "{\"\u{fb01}\":1,\"\u{1f600}\":2}",
                "{\"\u{1f600}\":2,\"\u{fb01}\":1}",
            ),
            (r#"{"z":{"b":{},"a":[]}}"#, r#"{"z":{"a":[],"b":{}}}"#),
            (
                r#"{"max": 9007199254740991, "min": -9007199254740991}"#,
                r#"{"max":9007199254740991,"min":-9007199254740991}"#,
            ),
        ];
        for (text, expected) in cases {
            let args = Args::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(args.canonical(), expected, "{text}");
            // Canonical text is a fixed point.
            assert_eq!(Args::parse(expected).unwrap().canonical(), expected);
        }
    }

    #[test]
    fn args_that_could_mean_two_things_are_refused() {
        // (text, what the error mentions)
        let cases = [
            (r#"{"a":1,"a":2}"#, "appears twice"),
            (r#"{"x":{"k":1,"k":1}}"#, "appears twice"),
            (r#"{"n":9007199254740992}"#, "2^53"),
            (r#"{"n":-9007199254740992}"#, "2^53"),
            (r#"{"n":[18446744073709551615]}"#, "2^53"),
            ("[]", "object"),
            ("null", "object"),
            (r#""text""#, "object"),
            ("{", "EOF"),
        ];
        for (text, expected) in cases {
            let error = Args::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
