//! A temperature reading: parsing of what sensors send and validation of every field.
//!
//! Sensors send `sensorID` as a string or an integer, `temperature` as a JSON number or a
//! numeric string, and `time` as `YYYY-MM-DD HH:MM:SS` (UTC, the original service's format) or
//! RFC 3339 with an offset. Everything is normalised here, once, so storage only ever sees
//! canonical values: a sensor id string, a UTC instant in whole microseconds and a temperature
//! in whole micro-degrees Celsius (exact fixed point, no floats).

use std::fmt;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

/// Longest accepted sensor id, in characters.
pub const MAX_SENSOR_ID_CHARS: usize = 128;
/// Absolute zero: nothing colder is a temperature.
pub const MIN_CELSIUS_MICROS: i64 = -273_150_000;
/// A generous upper bound that keeps every sum of a billion readings far inside `i128`.
pub const MAX_CELSIUS_MICROS: i64 = 1_000_000_000_000_000; // 10^9 °C
/// Fractional digits kept for a temperature: micro-degrees.
pub const TEMPERATURE_SCALE_DIGITS: u32 = 6;

/// A sensor's identity, as a non-empty string of at most [`MAX_SENSOR_ID_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SensorId(String);

impl SensorId {
    pub fn parse(value: &Value) -> Result<Self, String> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            Value::Number(_) => return Err("must be a string or an integer".into()),
            Value::Null => return Err("is required".into()),
            _ => return Err("must be a string or an integer".into()),
        };
        Self::from_text(&text)
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
        let text = match value {
            // serde_json prints the shortest text that reads back as the same f64, so a
            // sensor's `12.1` arrives here as "12.1", not as a binary approximation.
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().to_owned(),
            Value::Null => return Err("is required".into()),
            _ => return Err("must be a number or a numeric string".into()),
        };
        Self::from_micros(parse_decimal_micros(&text)?)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// Degrees Celsius as the nearest `f64` (exact decimal in, shortest decimal out).
    pub fn celsius(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

/// Parses a decimal such as `-12`, `12.5`, `1e2` or `1.25E-1` into exact micro-units.
/// More than six significant fractional digits would be silently rounded, so they are refused.
fn parse_decimal_micros(text: &str) -> Result<i64, String> {
    const NOT_NUMERIC: &str = "must be a finite decimal number";
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => {
            let exp: i32 = text[at + 1..].parse().map_err(|_| NOT_NUMERIC.to_owned())?;
            (&text[..at], exp)
        }
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
    // value = digits * 10^(exponent - frac_len); we want it * 10^6 as an integer.
    let mut all: String = format!("{int_part}{frac_part}");
    let scale = i64::from(exponent) - frac_part.len() as i64 + i64::from(TEMPERATURE_SCALE_DIGITS);
    let trimmed = all.trim_start_matches('0');
    if trimmed.is_empty() {
        return Ok(0);
    }
    all = trimmed.to_owned();
    if scale < 0 {
        let drop = usize::try_from(-scale).unwrap_or(usize::MAX);
        if drop >= all.len() || all[all.len() - drop..].bytes().any(|b| b != b'0') {
            return Err("must have at most 6 decimal places".into());
        }
        all.truncate(all.len() - drop);
    } else {
        let zeros = usize::try_from(scale).unwrap_or(usize::MAX);
        if zeros > 30 {
            return Err("is out of range".into());
        }
        all.push_str(&"0".repeat(zeros));
    }
    if all.len() > 30 {
        return Err("is out of range".into());
    }
    let magnitude: i128 = all.parse().map_err(|_| NOT_NUMERIC.to_owned())?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).map_err(|_| "is out of range".to_owned())
}

/// An instant in UTC, in whole microseconds since the Unix epoch, between years 1 and 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// The original service's format: a naive date and time, taken as UTC.
const NAIVE_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f";

impl Timestamp {
    pub fn parse(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(s) => Self::parse_text(s.trim()),
            Value::Null => Err("is required".into()),
            _ => Err("must be a string: \"YYYY-MM-DD HH:MM:SS\" (UTC) or RFC 3339".into()),
        }
    }

    pub fn parse_text(text: &str) -> Result<Self, String> {
        let parsed = if let Ok(naive) = NaiveDateTime::parse_from_str(text, NAIVE_FORMAT) {
            naive.and_utc()
        } else if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
            with_offset.with_timezone(&Utc)
        } else {
            return Err(format!(
                "must be \"YYYY-MM-DD HH:MM:SS\" (UTC) or RFC 3339 with an offset, got {text:?}"
            ));
        };
        Self::from_datetime(parsed)
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

impl Reading {
    /// Validates one reading object, reporting every bad field at once.
    pub fn parse(value: &Value) -> Result<Self, Vec<FieldError>> {
        let Value::Object(fields) = value else {
            return Err(vec![FieldError {
                field: "",
                detail: "a reading must be a JSON object".into(),
            }]);
        };
        let get = |name| fields.get(name).unwrap_or(&Value::Null);
        let mut errors = Vec::new();
        let mut check = |field: &'static str, result: Result<(), String>| {
            if let Err(detail) = result {
                errors.push(FieldError {
                    field,
                    detail: format!("{field} {detail}"),
                });
            }
        };
        let sensor_id = SensorId::parse(get("sensorID"));
        let time = Timestamp::parse(get("time"));
        let temperature = Temperature::parse(get("temperature"));
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
            json!("0.0000001"),
            json!(12.3456789),
            json!("1000000000.000001"),
            json!("99999999999999999999999999999999"),
        ] {
            assert!(micros(bad.clone()).is_err(), "{bad} should be rejected");
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
            json!("2021-10-04T09:00:00.0000001Z"),
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
