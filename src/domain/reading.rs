//! A temperature reading: parsing of what sensors send and validation of every field.
//!
//! Sensors send `sensorID` as a string or an integer, `temperature` as a JSON number or a
//! numeric string, and `time` as `YYYY-MM-DD HH:MM:SS` (UTC, the original service's format) or
//! RFC 3339 with an offset. Everything is normalised here, once, so storage only ever sees
//! canonical values: a sensor id string, a UTC instant in whole microseconds and a temperature
//! in whole micro-degrees Celsius (exact fixed point, no floats).
//!
//! One rule for numbers, whatever form they arrive in (JSON number, numeric string, line
//! protocol field): the literal decimal text is rounded to the nearest micro-degree, half away
//! from zero, on its digits (never through `f64`), and the range is checked on the rounded
//! value. One rule for times: digits beyond the microsecond are truncated (toward the past);
//! second 60 (a leap second) is refused.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// Longest accepted sensor id, in characters.
pub const MAX_SENSOR_ID_CHARS: usize = 128;
/// Absolute zero: nothing colder is a temperature.
pub const MIN_CELSIUS_MICROS: i64 = -273_150_000;
/// A generous upper bound that keeps every sum of a billion readings far inside `i128`.
pub const MAX_CELSIUS_MICROS: i64 = 1_000_000_000_000_000; // 10^9 °C
/// Fractional digits kept for a temperature: micro-degrees.
pub const TEMPERATURE_SCALE_DIGITS: u32 = 6;

/// One field of a reading as it arrived, before validation: the literal text of a number is
/// kept, so numbers are judged on their digits rather than on a binary approximation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field<'a> {
    /// Absent, or `null`.
    Missing,
    /// A JSON number, as its literal text (`15.799999999999997`, `1e-400`).
    Number(Cow<'a, str>),
    /// A JSON string, unescaped.
    Text(Cow<'a, str>),
    /// A boolean, an array or an object.
    Other,
}

impl<'a> Field<'a> {
    /// A field of a request body, from its raw JSON text.
    pub fn from_raw(raw: Option<&'a RawValue>) -> Self {
        let Some(raw) = raw else {
            return Self::Missing;
        };
        let text = raw.get();
        match text.as_bytes().first() {
            // Valid JSON already: a string without escapes is its text between the quotes.
            Some(b'"') if !text.contains('\\') => {
                Self::Text(Cow::Borrowed(&text[1..text.len() - 1]))
            }
            Some(b'"') => match serde_json::from_str::<Cow<'a, str>>(text) {
                Ok(unescaped) => Self::Text(unescaped),
                Err(_) => Self::Other,
            },
            Some(b'-' | b'0'..=b'9') => Self::Number(Cow::Borrowed(text)),
            Some(b'n') => Self::Missing,
            _ => Self::Other,
        }
    }

    /// A field of a value built in code. A [`Value`] holds no literal text, so a number is
    /// read through its shortest round-trip text (what `serde_json` prints).
    pub fn from_value(value: &'a Value) -> Self {
        match value {
            Value::Null => Self::Missing,
            Value::Number(n) => Self::Number(Cow::Owned(n.to_string())),
            Value::String(s) => Self::Text(Cow::Borrowed(s)),
            _ => Self::Other,
        }
    }
}

/// A sensor's identity, as a non-empty string of at most [`MAX_SENSOR_ID_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SensorId(String);

impl SensorId {
    pub fn parse(value: &Value) -> Result<Self, String> {
        Self::from_field(&Field::from_value(value))
    }

    /// A string, or an integer (its decimal text is the id: `107` and `"107"` are one sensor).
    pub fn from_field(field: &Field<'_>) -> Result<Self, String> {
        match field {
            Field::Text(text) => Self::from_text(text),
            Field::Number(text) if is_integer_literal(text) => Self::from_text(text),
            Field::Missing => Err("is required".into()),
            Field::Number(_) | Field::Other => Err("must be a string or an integer".into()),
        }
    }

    pub fn from_text(text: &str) -> Result<Self, String> {
        let chars = text.chars().count();
        if chars == 0 {
            return Err("must not be empty".into());
        }
        if chars > MAX_SENSOR_ID_CHARS {
            return Err(format!("must be at most {MAX_SENSOR_ID_CHARS} characters"));
        }
        if text.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SensorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A temperature in whole micro-degrees Celsius.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Temperature(i64);

impl Temperature {
    pub fn from_micros(micros: i64) -> Result<Self, String> {
        if micros < MIN_CELSIUS_MICROS {
            return Err("must be at least -273.15 (absolute zero, in Celsius)".into());
        }
        if micros > MAX_CELSIUS_MICROS {
            return Err("must be at most 1000000000".into());
        }
        Ok(Self(micros))
    }

    pub fn parse(value: &Value) -> Result<Self, String> {
        Self::from_field(&Field::from_value(value))
    }

    /// A JSON number or a numeric string, under the one rule for numbers.
    pub fn from_field(field: &Field<'_>) -> Result<Self, String> {
        match field {
            Field::Number(text) | Field::Text(text) => Self::parse_text(text.trim()),
            Field::Missing => Err("is required".into()),
            Field::Other => Err("must be a number or a numeric string".into()),
        }
    }

    /// A decimal literal, rounded to the nearest micro-degree (half away from zero), then
    /// checked against the allowed range.
    pub fn parse_text(text: &str) -> Result<Self, String> {
        Self::from_micros(parse_decimal_micros(text)?)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// Degrees Celsius as the nearest `f64` (exact decimal in, shortest decimal out).
    pub fn celsius(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

/// `-?[0-9]+`: the literal text of an integer.
fn is_integer_literal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Exponents beyond this magnitude mean the same as this one (0 or out of range).
const EXPONENT_CAP: i64 = 1_000_000_000;
/// Digits before the micro-unit point beyond which a value is surely out of range (10^18).
const MAX_MICRO_DIGITS: i64 = 18;

/// Parses a decimal such as `-12`, `12.5`, `1e2`, `1.25E-1` or `15.799999999999997` into
/// micro-units, rounded to the nearest micro-unit, half away from zero. Exact: the rounding is
/// done on the literal digits, so `0.0000004999999999999999999` is 0 and `0.0000005` is 1.
/// Work is linear in the text's length whatever its exponent.
pub fn parse_decimal_micros(text: &str) -> Result<i64, String> {
    const NOT_NUMERIC: &str = "must be a finite decimal number";
    const OUT_OF_RANGE: &str = "is out of range";
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (
            &text[..at],
            parse_exponent(&text[at + 1..]).ok_or(NOT_NUMERIC)?,
        ),
        None => (text, 0),
    };
    let (negative, digits) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() && frac_part.is_empty()
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return Err(NOT_NUMERIC.into());
    }
    // value = D × 10^shift micro-units, D the significant digits of int_part ++ frac_part
    // (read again where needed rather than collected: no allocation per number).
    let significant = || {
        int_part
            .bytes()
            .chain(frac_part.bytes())
            .skip_while(|b| *b == b'0')
            .map(|b| b - b'0')
    };
    let len = significant().count() as i64;
    if len == 0 {
        return Ok(0);
    }
    let frac_len = i64::try_from(frac_part.len()).unwrap_or(i64::MAX);
    let shift = exponent - frac_len + i64::from(TEMPERATURE_SCALE_DIGITS);
    // Digits left of the micro-unit point: D × 10^shift has len + shift of them.
    let whole_len = len + shift;
    if whole_len > MAX_MICRO_DIGITS {
        return Err(OUT_OF_RANGE.into());
    }
    let (kept, first_dropped) = if shift >= 0 {
        (len as usize, 0)
    } else if whole_len <= 0 {
        // Below one micro-unit: rounds up only from exactly 0.5 (first digit 5..9, no gap).
        let first = if whole_len == 0 {
            significant().next().unwrap_or(0)
        } else {
            0
        };
        (0, first)
    } else {
        let cut = whole_len as usize;
        (cut, significant().nth(cut).unwrap_or(0))
    };
    let mut magnitude = significant()
        .take(kept)
        .fold(0_i64, |acc, digit| acc * 10 + i64::from(digit));
    if shift > 0 {
        magnitude *= 10_i64.pow(shift as u32);
    }
    if first_dropped >= 5 {
        magnitude += 1;
    }
    Ok(if negative { -magnitude } else { magnitude })
}

/// `[+-]digits`, saturated at [`EXPONENT_CAP`].
fn parse_exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.bytes().fold(0_i64, |acc, b| {
        (acc * 10 + i64::from(b - b'0')).min(EXPONENT_CAP)
    });
    Some(if negative { -magnitude } else { magnitude })
}

/// An instant in UTC, in whole microseconds since the Unix epoch, between years 1 and 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// The original service's format: a naive date and time, taken as UTC.
const NAIVE_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f";

impl Timestamp {
    pub fn parse(value: &Value) -> Result<Self, String> {
        Self::from_field(&Field::from_value(value))
    }

    pub fn from_field(field: &Field<'_>) -> Result<Self, String> {
        match field {
            Field::Text(text) => Self::parse_text(text.trim()),
            Field::Missing => Err("is required".into()),
            _ => Err("must be a string: \"YYYY-MM-DD HH:MM:SS\" (UTC) or RFC 3339".into()),
        }
    }

    /// Either accepted format; fraction digits beyond the microsecond are truncated (toward
    /// the past), second 60 is refused.
    pub fn parse_text(text: &str) -> Result<Self, String> {
        let text = &*truncate_to_micros(text);
        let parsed = if let Some(at) = super::fixed_time::parse(text) {
            at
        } else if let Ok(naive) = NaiveDateTime::parse_from_str(text, NAIVE_FORMAT) {
            naive.and_utc()
        } else if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
            with_offset.with_timezone(&Utc)
        } else {
            return Err(format!(
                "must be \"YYYY-MM-DD HH:MM:SS\" (UTC) or RFC 3339 with an offset, got {text:?}"
            ));
        };
        if parsed.timestamp_subsec_nanos() >= 1_000_000_000 {
            return Err("must not be second 60 (leap seconds are not accepted)".into());
        }
        Self::from_datetime(parsed)
    }

    /// A count of `unit_nanos`-nanosecond units since the Unix epoch (line protocol's
    /// timestamps), truncated toward the past to the microsecond.
    pub fn from_unix(value: i64, unit_nanos: i64) -> Result<Self, String> {
        const OUT_OF_RANGE: &str = "timestamp is out of range (years 1 to 9999)";
        let micros = if unit_nanos < 1_000 {
            (i128::from(value) * i128::from(unit_nanos)).div_euclid(1_000)
        } else {
            i128::from(value) * i128::from(unit_nanos / 1_000)
        };
        i64::try_from(micros)
            .ok()
            .and_then(Self::from_micros)
            .ok_or_else(|| OUT_OF_RANGE.to_owned())
    }

    pub fn from_datetime(at: DateTime<Utc>) -> Result<Self, String> {
        if !at.timestamp_subsec_nanos().is_multiple_of(1_000) {
            return Err("must have at most microsecond precision".into());
        }
        let year = chrono::Datelike::year(&at);
        if !(1..=9999).contains(&year) {
            return Err("year must be between 1 and 9999".into());
        }
        Ok(Self(at.timestamp_micros()))
    }

    pub fn from_micros(micros: i64) -> Option<Self> {
        DateTime::from_timestamp_micros(micros).and_then(|at| Self::from_datetime(at).ok())
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).expect("validated on construction")
    }

    /// RFC 3339 in UTC with a `Z`, fractional digits only when there are any.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// Fixed-width (27 characters), lexicographically sortable: `2021-10-04T09:00:00.000000Z`.
    pub fn to_sortable(self) -> String {
        self.to_datetime()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    }
}

/// Drops fraction digits beyond the sixth: in both formats the fraction is the only `.`, right
/// after the seconds, and it always counts forward from the second, so cutting digits
/// truncates toward the past.
fn truncate_to_micros(text: &str) -> Cow<'_, str> {
    let Some(dot) = text.find('.') else {
        return Cow::Borrowed(text);
    };
    let fraction = &text[dot + 1..];
    let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
    if digits <= 6 {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!("{}{}", &text[..dot + 7], &fraction[digits..]))
}

/// One validated reading. Its identity is `(sensor_id, time)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub sensor_id: SensorId,
    pub time: Timestamp,
    pub temperature: Temperature,
}

/// What was wrong with one field of one reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub detail: String,
}

impl FieldError {
    pub fn not_an_object() -> Self {
        Self {
            field: "",
            detail: "a reading must be a JSON object".into(),
        }
    }
}

impl Reading {
    /// Validates one reading object, reporting every bad field at once.
    pub fn parse(value: &Value) -> Result<Self, Vec<FieldError>> {
        let Value::Object(fields) = value else {
            return Err(vec![FieldError::not_an_object()]);
        };
        let get = |name| Field::from_value(fields.get(name).unwrap_or(&Value::Null));
        Self::from_fields(&get("sensorID"), &get("time"), &get("temperature"))
    }

    /// Validates the three fields of a reading, reporting every bad one at once.
    pub fn from_fields(
        sensor_id: &Field<'_>,
        time: &Field<'_>,
        temperature: &Field<'_>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut check = |field: &'static str, result: Result<(), String>| {
            if let Err(detail) = result {
                errors.push(FieldError {
                    field,
                    detail: format!("{field} {detail}"),
                });
            }
        };
        let sensor_id = SensorId::from_field(sensor_id);
        let time = Timestamp::from_field(time);
        let temperature = Temperature::from_field(temperature);
        check(
            "sensorID",
            sensor_id.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        check("time", time.as_ref().map(|_| ()).map_err(Clone::clone));
        check(
            "temperature",
            temperature.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        match (sensor_id, time, temperature) {
            (Ok(sensor_id), Ok(time), Ok(temperature)) => Ok(Self {
                sensor_id,
                time,
                temperature,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn micros(value: Value) -> Result<i64, String> {
        Temperature::parse(&value).map(Temperature::micros)
    }

    #[test]
    fn temperature_accepts_numbers_and_numeric_strings_exactly() {
        assert_eq!(micros(json!(12)), Ok(12_000_000));
        assert_eq!(micros(json!("12")), Ok(12_000_000));
        assert_eq!(micros(json!(12.5)), Ok(12_500_000));
        assert_eq!(micros(json!("12.5")), Ok(12_500_000));
        assert_eq!(micros(json!(0.1)), Ok(100_000));
        assert_eq!(micros(json!("-0.000001")), Ok(-1));
        assert_eq!(micros(json!("+3")), Ok(3_000_000));
        assert_eq!(micros(json!("1e2")), Ok(100_000_000));
        assert_eq!(micros(json!("1.25E-1")), Ok(125_000));
        assert_eq!(micros(json!(" 7 ")), Ok(7_000_000));
        assert_eq!(micros(json!("12.500000000")), Ok(12_500_000));
        assert_eq!(micros(json!("-273.15")), Ok(-273_150_000));
        assert_eq!(micros(json!(".5")), Ok(500_000));
        assert_eq!(micros(json!("5.")), Ok(5_000_000));
        assert_eq!(micros(json!("0")), Ok(0));
        assert_eq!(micros(json!("-0")), Ok(0));
    }

    #[test]
    fn temperature_rejects_every_bad_form() {
        for bad in [
            json!(""),
            json!("abc"),
            json!("12,5"),
            json!("NaN"),
            json!("inf"),
            json!("1e"),
            json!("--1"),
            json!("."),
            json!("0x10"),
            json!(true),
            json!(null),
            json!([1]),
            json!({"v": 1}),
            json!("-273.150001"),
            json!(-300),
            json!("1e400"),
            json!("1e+999999999999"),
            json!("1000000000.0000005"),
            json!("-273.1500005"),
            json!("1e2e3"),
            json!("1e+"),
            json!("1.2.3"),
            json!("99999999999999999999999999999999"),
        ] {
            assert!(micros(bad.clone()).is_err(), "{bad} should be rejected");
        }
    }

    /// The literal text of a JSON number, as a request body carries it.
    fn literal(text: &str) -> Result<i64, String> {
        let raw: Box<RawValue> = serde_json::from_str(text).unwrap();
        Temperature::from_field(&Field::from_raw(Some(&raw))).map(Temperature::micros)
    }

    #[test]
    fn temperature_rounds_to_the_micro_degree_half_away_from_zero() {
        for (text, expected) in [
            ("15.799999999999997", 15_800_000),
            ("21.299999237060547", 21_299_999),
            ("-20.000000000000004", -20_000_000),
            ("12.3456785", 12_345_679),
            ("-12.3456785", -12_345_679),
            ("12.34567849999999999999", 12_345_678),
            ("0.0000005", 1),
            ("-0.0000005", -1),
            ("0.00000049999999999999999999", 0),
            ("0.0000001", 0),
            ("1e-400", 0),
            ("-1e-400", 0),
            ("1e-999999999999999", 0),
            ("999999999.99999999", 1_000_000_000_000_000),
            ("1000000000.0000004", 1_000_000_000_000_000),
            ("-273.1500004", -273_150_000),
            ("2.5e-6", 3),
            ("1E+2", 100_000_000),
        ] {
            assert_eq!(literal(text), Ok(expected), "number {text}");
            assert_eq!(
                literal(&format!("\"{text}\"")),
                Ok(expected),
                "string {text}"
            );
        }
        for text in ["1e400", "1000000000.0000005", "-273.1500005", "1e19"] {
            assert!(literal(text).is_err(), "number {text}");
            assert!(literal(&format!("\"{text}\"")).is_err(), "string {text}");
        }
    }

    #[test]
    fn a_field_keeps_the_literal_text_of_a_number() {
        let raw: Box<RawValue> = serde_json::from_str("0.00000049999999999999999999").unwrap();
        assert_eq!(
            Field::from_raw(Some(&raw)),
            Field::Number(Cow::Borrowed("0.00000049999999999999999999"))
        );
        let raw: Box<RawValue> = serde_json::from_str(r#""a\"b""#).unwrap();
        assert_eq!(Field::from_raw(Some(&raw)), Field::Text("a\"b".into()));
        let raw: Box<RawValue> = serde_json::from_str("null").unwrap();
        assert_eq!(Field::from_raw(Some(&raw)), Field::Missing);
        let raw: Box<RawValue> = serde_json::from_str("[1]").unwrap();
        assert_eq!(Field::from_raw(Some(&raw)), Field::Other);
    }

    proptest::proptest! {
        /// Rounding on the digits agrees with exact integer arithmetic for any value written
        /// with up to 12 fraction digits.
        #[test]
        fn rounding_matches_exact_arithmetic(units in -10_i64.pow(17)..10_i64.pow(17)) {
            // units are pico-degrees (12 fraction digits): value = units / 10^12.
            let sign = if units < 0 { "-" } else { "" };
            let magnitude = units.unsigned_abs();
            let text = format!("{sign}{}.{:012}", magnitude / 10_u64.pow(12), magnitude % 10_u64.pow(12));
            let rounded = (magnitude + 500_000) / 1_000_000;
            let expected = if units < 0 { -(rounded as i64) } else { rounded as i64 };
            proptest::prop_assert_eq!(parse_decimal_micros(&text), Ok(expected), "{}", text);
            // The same value in scientific notation rounds the same way.
            let scientific = format!("{sign}{magnitude}e-12");
            proptest::prop_assert_eq!(parse_decimal_micros(&scientific), Ok(expected), "{}", scientific);
        }

        /// Whatever the text, parsing answers (no panic) and a success is within i64.
        #[test]
        fn any_text_is_answered(text in "[-+]?[0-9]{0,30}(\\.[0-9]{0,30})?([eE][-+]?[0-9]{0,25})?") {
            let _ = parse_decimal_micros(&text);
        }
    }

    #[test]
    fn sensor_id_accepts_strings_and_integers() {
        assert_eq!(SensorId::parse(&json!("107")).unwrap().as_str(), "107");
        assert_eq!(SensorId::parse(&json!(107)).unwrap().as_str(), "107");
        assert_eq!(SensorId::parse(&json!(-3)).unwrap().as_str(), "-3");
        let longest = "é".repeat(MAX_SENSOR_ID_CHARS);
        assert!(SensorId::parse(&json!(longest)).is_ok());
    }

    #[test]
    fn sensor_id_rejects_every_bad_form() {
        for bad in [
            json!(""),
            json!("x".repeat(MAX_SENSOR_ID_CHARS + 1)),
            json!("a\nb"),
            json!(1.5),
            json!(true),
            json!(null),
            json!({}),
        ] {
            assert!(SensorId::parse(&bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn time_accepts_the_original_format_as_utc_and_rfc3339() {
        let t = |s: &str| Timestamp::parse(&json!(s)).unwrap();
        let original = t("2021-10-04 09:00:00");
        assert_eq!(original.to_rfc3339(), "2021-10-04T09:00:00Z");
        assert_eq!(t("2021-10-04T09:00:00Z"), original);
        assert_eq!(t("2021-10-04T11:00:00+02:00"), original);
        assert_eq!(t("2021-10-04T09:00:00.000+00:00"), original);
        let fractional = t("2021-10-04T09:00:00.25Z");
        assert_eq!(fractional.micros() - original.micros(), 250_000);
        assert_eq!(fractional.to_rfc3339(), "2021-10-04T09:00:00.250Z");
        assert_eq!(original.to_sortable(), "2021-10-04T09:00:00.000000Z");
        assert_eq!(t("0001-01-01 00:00:00").to_sortable().len(), 27);
        assert_eq!(t("9999-12-31 23:59:59").to_sortable().len(), 27);
    }

    #[test]
    fn time_truncates_beyond_the_microsecond_toward_the_past() {
        let t = |s: &str| Timestamp::parse_text(s).unwrap();
        let base = t("2021-10-04T09:00:00.123456Z");
        assert_eq!(t("2021-10-04T09:00:00.1234569Z"), base);
        assert_eq!(t("2021-10-04T09:00:00.1234569999Z"), base);
        assert_eq!(t("2021-10-04 09:00:00.123456999999999999"), base);
        assert_eq!(t("2021-10-04T11:00:00.1234567+02:00"), base);
        let before_epoch = t("1969-12-31T23:59:59.9999999Z");
        assert_eq!(before_epoch.micros(), -1);
        assert_eq!(t("2021-10-04T09:00:00.0000001Z"), t("2021-10-04 09:00:00"));
    }

    #[test]
    fn unix_timestamps_truncate_toward_the_past() {
        let ns = |v| Timestamp::from_unix(v, 1).map(Timestamp::micros);
        assert_eq!(ns(1_633_338_000_123_456_789), Ok(1_633_338_000_123_456));
        assert_eq!(ns(-1), Ok(-1));
        assert_eq!(ns(-1_000), Ok(-1));
        assert_eq!(ns(-1_001), Ok(-2));
        assert_eq!(Timestamp::from_unix(5, 1_000).map(Timestamp::micros), Ok(5));
        assert_eq!(
            Timestamp::from_unix(5, 1_000_000).map(Timestamp::micros),
            Ok(5_000)
        );
        assert_eq!(
            Timestamp::from_unix(1_633_338_000, 1_000_000_000).map(Timestamp::micros),
            Ok(1_633_338_000_000_000)
        );
        assert!(Timestamp::from_unix(i64::MAX, 1_000_000_000).is_err());
        assert!(Timestamp::from_unix(300_000_000_000, 1_000_000_000).is_err());
    }

    #[test]
    fn time_sortable_form_orders_like_instants() {
        let a = Timestamp::parse_text("1999-12-31T23:59:59.999999Z").unwrap();
        let b = Timestamp::parse_text("2000-01-01 00:00:00").unwrap();
        assert!(a < b);
        assert!(a.to_sortable() < b.to_sortable());
    }

    #[test]
    fn time_rejects_every_bad_form() {
        for bad in [
            json!("2021-10-04"),
            json!("2021-10-04 25:00:00"),
            json!("2021-02-30 00:00:00"),
            json!("2021-10-04T09:00:00"),
            json!("04/10/2021 09:00"),
            json!("2021-10-04 12:34:60"),
            json!("2021-10-04T23:59:60Z"),
            json!(""),
            json!(1633338000),
            json!(null),
        ] {
            assert!(Timestamp::parse(&bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn reading_reports_every_bad_field() {
        let errors = Reading::parse(&json!({"sensorID": "", "temperature": "hot"})).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["sensorID", "time", "temperature"]);
        assert!(Reading::parse(&json!([1])).is_err());
    }

    #[test]
    fn reading_parses_the_original_example() {
        let reading = Reading::parse(
            &json!({"sensorID": "107", "temperature": "12", "time": "2021-10-04 09:00:00"}),
        )
        .unwrap();
        assert_eq!(reading.sensor_id.as_str(), "107");
        assert_eq!(reading.temperature.micros(), 12_000_000);
        assert_eq!(reading.time.to_rfc3339(), "2021-10-04T09:00:00Z");
    }
}
