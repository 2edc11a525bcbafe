//! Scalar values as they appear in configuration files: durations (`"30s"`, or a number of
//! seconds; milliseconds in OpenClaw's `…Ms` keys), sizes (`"16MiB"`, or bytes), counts, and
//! environment values (OpenClaw allows numbers and booleans).

use std::time::Duration;

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The longest duration accepted anywhere in a configuration.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// A duration as written: a string like `"500ms"`, `"30s"`, `"10m"`, or a number.
#[derive(Debug, Clone)]
pub enum DurationValue {
    /// A number (seconds, or milliseconds for `…Ms` keys).
    Number(f64),
    /// A humantime string.
    Text(String),
}

impl DurationValue {
    /// The duration, a number read in `unit`s; an error says what was expected.
    pub fn to_duration(&self, unit: Duration) -> Result<Duration, String> {
        let d = match self {
            DurationValue::Number(n) if n.is_finite() && *n >= 0.0 => {
                Duration::try_from_secs_f64(n * unit.as_secs_f64()).map_err(|e| format!("{n}: {e}"))?
            }
            DurationValue::Number(n) => {
                return Err(format!(
                    "{n} is not a duration (expected a positive number or a string like \"30s\")"
                ))
            }
            DurationValue::Text(t) => humantime::parse_duration(t.trim())
                .map_err(|e| format!("{t:?} is not a duration like \"500ms\", \"30s\" or \"10m\": {e}"))?,
        };
        if d > MAX_DURATION {
            return Err(format!("{} is longer than a week", humantime::format_duration(d)));
        }
        Ok(d)
    }
}

/// A size as written: bytes, or a string like `"16MiB"`, `"512KiB"`, `"4MB"`.
#[derive(Debug, Clone)]
pub enum SizeValue {
    /// Bytes.
    Number(u64),
    /// With a unit.
    Text(String),
}

impl SizeValue {
    /// The size in bytes.
    pub fn to_bytes(&self) -> Result<usize, String> {
        let bytes = match self {
            SizeValue::Number(n) => *n,
            SizeValue::Text(t) => {
                let t = t.trim();
                let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                let (digits, unit) = t.split_at(split);
                let n: u64 = digits
                    .parse()
                    .map_err(|_| format!("{t:?} is not a size like \"16MiB\" or \"512KiB\""))?;
                let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
                    "" | "b" => 1,
                    "k" | "kb" => 1000,
                    "kib" => 1024,
                    "m" | "mb" => 1_000_000,
                    "mib" => 1024 * 1024,
                    "g" | "gb" => 1_000_000_000,
                    "gib" => 1024 * 1024 * 1024,
                    other => return Err(format!("{t:?}: unknown unit {other:?} (B, KiB, MiB, GiB, KB, MB, GB)")),
                };
                n.checked_mul(mult).ok_or_else(|| format!("{t:?} is too large"))?
            }
        };
        if bytes < 1024 {
            return Err(format!("{bytes} bytes is too small (at least 1KiB)"));
        }
        usize::try_from(bytes).map_err(|_| format!("{bytes} bytes is too large"))
    }
}

/// An environment value: OpenClaw allows numbers and booleans besides strings.
#[derive(Debug, Clone)]
pub enum EnvValue {
    /// A string.
    Text(String),
    /// A number, written as JSON would.
    Number(String),
    /// A boolean.
    Bool(bool),
}

impl EnvValue {
    /// The value as the program sees it.
    pub fn into_string(self) -> String {
        match self {
            EnvValue::Text(s) => s,
            EnvValue::Number(n) => n,
            EnvValue::Bool(b) => b.to_string(),
        }
    }
}

/// Deserializes from a string or a number, with `expected` in the error: untagged enums would
/// only say that no variant matched.
macro_rules! string_or_number {
    ($ty:ident, $expected:literal, text: $text:expr, float: $float:expr, int: $int:expr, bool: $bool:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expected)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        #[allow(clippy::redundant_closure_call)]
                        Ok(($text)(v))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$ty, E> {
                        #[allow(clippy::redundant_closure_call)]
                        ($float)(v).ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &self))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        #[allow(clippy::redundant_closure_call)]
                        ($int)(v).ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        let signed =
                            i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))?;
                        self.visit_i64(signed)
                    }
                    fn visit_bool<E: de::Error>(self, v: bool) -> Result<$ty, E> {
                        #[allow(clippy::redundant_closure_call)]
                        ($bool)(v).ok_or_else(|| E::invalid_type(de::Unexpected::Bool(v), &self))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

string_or_number!(DurationValue, "a duration like \"30s\" or \"500ms\", or a number",
    text: |v: &str| DurationValue::Text(v.to_string()),
    float: |v: f64| Some(DurationValue::Number(v)),
    int: |v: i64| Some(DurationValue::Number(v as f64)),
    bool: |_| None);
string_or_number!(SizeValue, "a size like \"16MiB\", or a number of bytes",
    text: |v: &str| SizeValue::Text(v.to_string()),
    float: |_| None,
    int: |v: i64| u64::try_from(v).ok().map(SizeValue::Number),
    bool: |_| None);
string_or_number!(EnvValue, "a string (or a number or boolean)",
    text: |v: &str| EnvValue::Text(v.to_string()),
    float: |v: f64| Some(EnvValue::Number(v.to_string())),
    int: |v: i64| Some(EnvValue::Number(v.to_string())),
    bool: |v: bool| Some(EnvValue::Bool(v)));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let s = Duration::from_secs(1);
        assert_eq!(
            DurationValue::Text("30s".into()).to_duration(s),
            Ok(Duration::from_secs(30))
        );
        assert_eq!(
            DurationValue::Number(1.5).to_duration(s),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(
            DurationValue::Number(250.0).to_duration(Duration::from_millis(1)),
            Ok(Duration::from_millis(250))
        );
        assert!(DurationValue::Text("soon".into()).to_duration(s).is_err());
        assert!(DurationValue::Number(-1.0).to_duration(s).is_err());
        assert!(DurationValue::Text("30days".into()).to_duration(s).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(SizeValue::Text("16MiB".into()).to_bytes(), Ok(16 << 20));
        assert_eq!(SizeValue::Text("4 MB".into()).to_bytes(), Ok(4_000_000));
        assert_eq!(SizeValue::Number(2048).to_bytes(), Ok(2048));
        assert!(SizeValue::Text("lots".into()).to_bytes().is_err());
        assert!(SizeValue::Number(10).to_bytes().is_err());
        assert!(SizeValue::Text("5XB".into()).to_bytes().is_err());
    }
}

/// Properties over wide inputs (proptest): what parses is exactly what was written, and nothing
/// panics or wraps around, whatever the string.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const UNITS: [(&str, u64); 4] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];

    proptest! {
        #[test]
        fn a_written_duration_is_read_back_or_refused_past_a_week(n in 0u64..20_000_000, unit in 0usize..4) {
            let (suffix, ms) = UNITS[unit];
            let want = Duration::from_millis(n * ms);
            let got = DurationValue::Text(format!("{n}{suffix}")).to_duration(Duration::from_secs(1));
            if want <= MAX_DURATION {
                prop_assert_eq!(got, Ok(want));
            } else {
                prop_assert!(got.is_err_and(|e| e.contains("longer than a week")));
            }
        }

        #[test]
        fn a_number_is_read_in_its_unit(ms in 0u32..604_800_000) {
            let got = DurationValue::Number(f64::from(ms)).to_duration(Duration::from_millis(1));
            prop_assert_eq!(got, Ok(Duration::from_millis(u64::from(ms))));
        }

        #[test]
        fn any_text_is_a_duration_or_an_error_naming_it(t in ".{0,40}") {
            if let Err(e) = DurationValue::Text(t.clone()).to_duration(Duration::from_secs(1)) {
                prop_assert!(e.contains(&format!("{t:?}")) || e.contains("longer than a week"), "{}", e);
            }
        }

        #[test]
        fn a_written_size_is_exact_or_refused(n in 0u64..u64::MAX, unit in 0usize..7) {
            let (suffix, mult) = [("", 1u64), ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000)][unit];
            let got = SizeValue::Text(format!("{n}{suffix}")).to_bytes();
            match n.checked_mul(mult) {
                Some(bytes) if bytes >= 1024 && usize::try_from(bytes).is_ok() => prop_assert_eq!(got, Ok(bytes as usize)),
                _ => prop_assert!(got.is_err()),
            }
        }

        #[test]
        fn any_text_is_a_size_or_an_error(t in ".{0,40}") {
            let _ = SizeValue::Text(t).to_bytes();
        }
    }
}
