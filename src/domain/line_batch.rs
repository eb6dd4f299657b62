//! Line protocol bodies as readings: which lines are readings (their measurement), which tag
//! names the sensor, which field holds the temperature, and how timestamps are read.
//!
//! - A line of another measurement is not a reading: it is skipped and counted.
//! - The sensor is the first tag present of [`LineSchema::sensor_tags`]; the temperature the
//!   first field present of [`LineSchema::fields`], as an integer, unsigned or float field,
//!   under the same rounding rule as JSON numbers. Other tags and fields are ignored.
//! - A timestamp counts units of the request's precision since the Unix epoch and is
//!   truncated toward the past to the microsecond; a line without one takes the time the
//!   request was received (the same for every line of the request).
//! - Readings are identified by line number (1-based, physical lines), which is what
//!   conflicts and refusals name.

use serde::Serialize;

use super::batch::{Batch, BatchError, Conflict};
use super::line_protocol::{self, Line};
use super::reading::{Reading, SensorId, Temperature, Timestamp};

/// Most lines accepted in one request (blank lines and comments excepted).
pub const MAX_LINES: usize = 10_000;

/// The unit of the timestamps of a request (`precision=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

impl Precision {
    /// InfluxDB 2's names: `ns` (the default), `us`, `ms`, `s`.
    pub fn v2(text: Option<&str>) -> Result<Self, String> {
        match text {
            None | Some("ns") => Ok(Self::Nanoseconds),
            Some("us") => Ok(Self::Microseconds),
            Some("ms") => Ok(Self::Milliseconds),
            Some("s") => Ok(Self::Seconds),
            Some(other) => Err(format!("precision {other:?} is not one of ns, us, ms, s")),
        }
    }

    /// InfluxDB 1's names: `n` or `ns` (the default), `u` or `us`, `ms`, `s`, `m`, `h`.
    pub fn v1(text: Option<&str>) -> Result<Self, String> {
        match text {
            None | Some("n" | "ns") => Ok(Self::Nanoseconds),
            Some("u" | "us") => Ok(Self::Microseconds),
            Some("ms") => Ok(Self::Milliseconds),
            Some("s") => Ok(Self::Seconds),
            Some("m") => Ok(Self::Minutes),
            Some("h") => Ok(Self::Hours),
            Some(other) => Err(format!(
                "precision {other:?} is not one of n, u, ms, s, m, h"
            )),
        }
    }

    fn unit_nanos(self) -> i64 {
        match self {
            Self::Nanoseconds => 1,
            Self::Microseconds => 1_000,
            Self::Milliseconds => 1_000_000,
            Self::Seconds => 1_000_000_000,
            Self::Minutes => 60_000_000_000,
            Self::Hours => 3_600_000_000_000,
        }
    }
}

/// Which lines are readings and where their sensor and temperature are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSchema {
    pub measurement: String,
    pub sensor_tags: Vec<String>,
    pub fields: Vec<String>,
}

impl Default for LineSchema {
    fn default() -> Self {
        Self {
            measurement: "temperature".into(),
            sensor_tags: vec!["sensorID".into(), "sensor_id".into(), "sensor".into()],
            fields: vec!["value".into(), "temperature".into()],
        }
    }
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// Why a body was refused before anything was stored.
#[derive(Debug, Clone, PartialEq)]
pub enum LineBatchError {
    /// No line at all (blank lines and comments only).
    Empty,
    /// More than [`MAX_LINES`] lines.
    TooManyLines,
    /// A line is not line protocol (or not UTF-8): the first one.
    Malformed(LineError),
    /// Well-formed lines that are not valid readings: every one.
    Invalid(Vec<LineError>),
    /// Two lines of the request with one identity and different temperatures.
    SelfConflict(Vec<Conflict>),
}

/// Every line of a request, checked one by one.
#[derive(Debug, Clone, PartialEq)]
pub struct LinesChecked {
    /// Valid readings, by line number.
    pub readings: Vec<(usize, Reading)>,
    pub malformed: Vec<LineError>,
    pub invalid: Vec<LineError>,
    /// Lines of other measurements.
    pub ignored: usize,
}

/// A request ready to store, all or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct LineBatch {
    pub batch: Batch,
    pub ignored: usize,
}

/// What `accept_partial` keeps of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePartial {
    pub batch: Batch,
    /// Malformed and invalid lines, in line order.
    pub refused: Vec<LineError>,
    /// Later lines with the identity of an earlier line and another temperature.
    pub conflicts: Vec<Conflict>,
    pub ignored: usize,
}

impl LinesChecked {
    /// Checks every line of `body`. `received` is the time of lines without a timestamp.
    pub fn parse(
        body: &[u8],
        schema: &LineSchema,
        precision: Precision,
        received: Timestamp,
    ) -> Result<Self, LineBatchError> {
        let (text, not_utf8) = match std::str::from_utf8(body) {
            Ok(text) => (text, None),
            Err(error) => {
                let valid = &body[..error.valid_up_to()];
                let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
                let message = "is not UTF-8".to_owned();
                // Lines before the bad byte are still checked (for accept_partial).
                let text = std::str::from_utf8(valid).unwrap_or_default();
                let text = &text[..text.rfind('\n').map_or(0, |at| at + 1)];
                (text, Some(LineError { line, message }))
            }
        };
        let mut checked = Self {
            readings: Vec::new(),
            malformed: Vec::new(),
            invalid: Vec::new(),
            ignored: 0,
        };
        let mut count = 0;
        for parsed in line_protocol::lines(text) {
            count += 1;
            if count > MAX_LINES {
                return Err(LineBatchError::TooManyLines);
            }
            match parsed {
                Err(error) => checked.malformed.push(LineError {
                    line: error.line,
                    message: error.message,
                }),
                Ok(line) => match reading(&line, schema, precision, received) {
                    Ok(Some(reading)) => checked.readings.push((line.number, reading)),
                    Ok(None) => checked.ignored += 1,
                    Err(message) => checked.invalid.push(LineError {
                        line: line.number,
                        message,
                    }),
                },
            }
        }
        checked.malformed.extend(not_utf8);
        if count == 0 && checked.malformed.is_empty() {
            return Err(LineBatchError::Empty);
        }
        Ok(checked)
    }

    /// All or nothing: a malformed line is a 400, invalid lines a 422, conflicts a 409.
    pub fn all_or_nothing(self) -> Result<LineBatch, LineBatchError> {
        if let Some(first) = self.malformed.into_iter().next() {
            return Err(LineBatchError::Malformed(first));
        }
        if !self.invalid.is_empty() {
            return Err(LineBatchError::Invalid(self.invalid));
        }
        let batch = Batch::from_readings(self.readings).map_err(|error| match error {
            BatchError::SelfConflict(conflicts) => LineBatchError::SelfConflict(conflicts),
            _ => unreachable!("from_readings only refuses conflicts"),
        })?;
        Ok(LineBatch {
            batch,
            ignored: self.ignored,
        })
    }

    /// Line by line: refused lines are set aside, the rest is stored.
    pub fn partial(self) -> LinePartial {
        let mut refused = self.malformed;
        refused.extend(self.invalid);
        refused.sort_by_key(|error| error.line);
        let (batch, conflicts) = Batch::dedup_keeping_first(self.readings);
        LinePartial {
            batch,
            refused,
            conflicts,
            ignored: self.ignored,
        }
    }
}

/// A line as a reading; `None` for another measurement.
fn reading(
    line: &Line<'_>,
    schema: &LineSchema,
    precision: Precision,
    received: Timestamp,
) -> Result<Option<Reading>, String> {
    if line.measurement != schema.measurement.as_str() {
        return Ok(None);
    }
    let Some((tag, sensor)) = schema
        .sensor_tags
        .iter()
        .find_map(|tag| line.tag(tag).map(|value| (tag, value)))
    else {
        return Err(format!(
            "no sensor tag: expected one of {}",
            schema.sensor_tags.join(", ")
        ));
    };
    let sensor_id = SensorId::from_text(sensor).map_err(|detail| format!("tag {tag} {detail}"))?;
    let Some((field, value)) = schema
        .fields
        .iter()
        .find_map(|field| line.field(field).map(|value| (field, value)))
    else {
        return Err(format!(
            "no temperature field: expected one of {}",
            schema.fields.join(", ")
        ));
    };
    let Some(text) = value.numeric_text() else {
        return Err(format!(
            "field {field} must be a number, not a string or boolean"
        ));
    };
    let temperature =
        Temperature::parse_text(text).map_err(|detail| format!("field {field} {detail}"))?;
    let time = match line.timestamp {
        Some(value) => Timestamp::from_unix(value, precision.unit_nanos())?,
        None => received,
    };
    Ok(Some(Reading {
        sensor_id,
        time,
        temperature,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received() -> Timestamp {
        Timestamp::parse_text("2021-10-04 12:00:00").unwrap()
    }

    fn check(body: &str) -> Result<LinesChecked, LineBatchError> {
        LinesChecked::parse(
            body.as_bytes(),
            &LineSchema::default(),
            Precision::Nanoseconds,
            received(),
        )
    }

    #[test]
    fn lines_become_readings_with_rounding_and_truncation() {
        let body = "temperature,sensorID=107 value=15.799999999999997 1633338000123456789\n\
                    temperature,sensor_id=108,room=k temperature=21i,other=\"x\"\n\
                    temperature,sensor=109 value=7u 1633338000000000000\n\
                    cpu,host=a usage=3\n";
        let checked = check(body).unwrap();
        assert_eq!(checked.ignored, 1);
        let batch = checked.all_or_nothing().unwrap().batch;
        let got: Vec<(usize, &str, i64, i64)> = batch
            .readings
            .iter()
            .map(|(n, r)| {
                (
                    *n,
                    r.sensor_id.as_str(),
                    r.time.micros(),
                    r.temperature.micros(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (1, "107", 1_633_338_000_123_456, 15_800_000),
                (2, "108", received().micros(), 21_000_000),
                (3, "109", 1_633_338_000_000_000, 7_000_000),
            ]
        );
    }

    #[test]
    fn the_first_listed_tag_and_field_win() {
        let checked = check("temperature,sensor=b,sensorID=a temperature=2,value=1 0").unwrap();
        let reading = &checked.readings[0].1;
        assert_eq!(reading.sensor_id.as_str(), "a");
        assert_eq!(reading.temperature.micros(), 1_000_000);
    }

    #[test]
    fn precision_scales_timestamps() {
        for (precision, value, micros) in [
            (Precision::Seconds, 2, 2_000_000),
            (Precision::Milliseconds, 2, 2_000),
            (Precision::Microseconds, 2, 2),
            (Precision::Nanoseconds, 2_999, 2),
            (Precision::Minutes, 1, 60_000_000),
            (Precision::Hours, 1, 3_600_000_000),
        ] {
            let body = format!("temperature,sensorID=1 value=1 {value}");
            let checked = LinesChecked::parse(
                body.as_bytes(),
                &LineSchema::default(),
                precision,
                received(),
            )
            .unwrap();
            assert_eq!(checked.readings[0].1.time.micros(), micros, "{precision:?}");
        }
        assert_eq!(Precision::v2(Some("us")), Ok(Precision::Microseconds));
        assert!(Precision::v2(Some("u")).is_err());
        assert!(Precision::v2(Some("h")).is_err());
        assert_eq!(Precision::v1(Some("u")), Ok(Precision::Microseconds));
        assert_eq!(Precision::v1(None), Ok(Precision::Nanoseconds));
        assert!(Precision::v1(Some("x")).is_err());
    }

    #[test]
    fn invalid_readings_name_their_lines() {
        let body = "temperature value=1\n\
                    temperature,sensorID=1 other=1\n\
                    temperature,sensorID=1 value=\"warm\"\n\
                    temperature,sensorID=1 value=-300\n\
                    temperature,sensorID=1 value=1 999999999999999999\n\
                    temperature,sensorID=1 value=1 1\n";
        let checked = check(body).unwrap();
        let lines: Vec<usize> = checked.invalid.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 2, 3, 4]);
        let Err(LineBatchError::Invalid(invalid)) = checked.all_or_nothing() else {
            panic!("expected invalid lines");
        };
        assert!(invalid[0].message.contains("sensorID"), "{invalid:?}");
        assert!(invalid[3].message.contains("273.15"), "{invalid:?}");
        let huge = check("temperature,sensorID=1 value=1 9223372036854775807").unwrap();
        assert!(huge.readings.len() == 1);
        let seconds = LinesChecked::parse(
            b"temperature,sensorID=1 value=1 9223372036854775807",
            &LineSchema::default(),
            Precision::Seconds,
            received(),
        )
        .unwrap();
        assert_eq!(seconds.invalid.len(), 1);
    }

    #[test]
    fn the_first_malformed_line_refuses_the_request() {
        let body = "temperature,sensorID=1 value=1\ntemperature,sensorID=1\nbad line here\n";
        let Err(LineBatchError::Malformed(first)) = check(body).unwrap().all_or_nothing() else {
            panic!("expected a malformed line");
        };
        assert_eq!(first.line, 2);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_a_malformed_line() {
        let mut body = b"temperature,sensorID=1 value=1 1\ntemperature,sensorID=".to_vec();
        body.extend_from_slice(b"\xff value=1 2\n");
        let checked = LinesChecked::parse(
            &body,
            &LineSchema::default(),
            Precision::Nanoseconds,
            received(),
        )
        .unwrap();
        assert_eq!(checked.readings.len(), 1);
        assert_eq!(checked.malformed[0].line, 2);
    }

    #[test]
    fn empty_and_oversized_bodies_are_refused() {
        assert_eq!(check("\n# only a comment\n"), Err(LineBatchError::Empty));
        let within = "temperature,sensorID=1 value=1 1\n".repeat(MAX_LINES);
        assert_eq!(check(&within).unwrap().readings.len(), MAX_LINES);
        let beyond = format!("{within}cpu v=1\n");
        assert_eq!(check(&beyond), Err(LineBatchError::TooManyLines));
    }

    #[test]
    fn conflicts_inside_a_request_refuse_it_or_keep_the_first_line() {
        let body = "temperature,sensorID=1 value=1 5000\n\
                    temperature,sensorID=1 value=1.0000001 5000\n\
                    temperature,sensorID=1 value=2 5999\n\
                    bad\n";
        let Err(LineBatchError::SelfConflict(conflicts)) = check(body)
            .map(|mut c| {
                c.malformed.clear();
                c
            })
            .unwrap()
            .all_or_nothing()
        else {
            panic!("expected a conflict");
        };
        assert_eq!(conflicts[0].index, 3);
        let partial = check(body).unwrap().partial();
        assert_eq!(partial.batch.readings.len(), 1);
        assert_eq!(partial.batch.repeats, 1);
        assert_eq!(partial.refused[0].line, 4);
        assert_eq!(partial.conflicts[0].index, 3);
    }
}
