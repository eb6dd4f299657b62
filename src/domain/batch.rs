//! The body of `PUT /api/temperature`: one reading or an array of readings, validated as a whole
//! (all or nothing) or reading by reading (`accept_partial`).
//!
//! Request bodies are read with [`RawValue`], so each number reaches validation as its
//! literal text.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::batch_body::Body;
use super::reading::{Field, FieldError, Reading, SensorId, Timestamp};

/// Most readings accepted in one request.
pub const MAX_BATCH: usize = 1_000;

/// Why a body was refused before anything was stored.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchError {
    /// The body is not JSON.
    Malformed(String),
    /// An empty array: nothing to store is almost always a client bug.
    Empty,
    /// More than [`MAX_BATCH`] readings.
    TooMany(usize),
    /// The body is not an object or an array of objects.
    NotReadings,
    /// Some readings are invalid; nothing is stored.
    Invalid(Vec<InvalidReading>),
    /// Two readings of the same request share an identity with different temperatures.
    SelfConflict(Vec<Conflict>),
}

/// One invalid reading of a batch, by position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidReading {
    pub index: usize,
    pub errors: Vec<FieldError>,
}

/// A reading whose identity already holds another temperature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    pub index: usize,
    #[serde(rename = "sensorID")]
    pub sensor_id: String,
    pub time: String,
    pub temperature: f64,
    #[serde(rename = "storedTemperature")]
    pub stored_temperature: f64,
}

/// A validated request: unique readings, with the request index each one came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Unique readings in request order, with the index of their first occurrence.
    pub readings: Vec<(usize, Reading)>,
    /// Exact repeats inside the request itself (already dropped from `readings`).
    pub repeats: usize,
}

/// Every item of a request, validated one by one: the valid readings and the invalid ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub readings: Vec<(usize, Reading)>,
    pub invalid: Vec<InvalidReading>,
}

/// What `accept_partial` keeps of a request: the readings to store, and those refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    pub batch: Batch,
    pub invalid: Vec<InvalidReading>,
    /// Later readings of the request with the identity of an earlier one and another value.
    pub conflicts: Vec<Conflict>,
}

/// The three fields of a reading object, as raw JSON; other members are ignored.
#[derive(Deserialize)]
struct RawReading<'a> {
    #[serde(rename = "sensorID", borrow, default)]
    sensor_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    time: Option<&'a RawValue>,
    #[serde(borrow, default)]
    temperature: Option<&'a RawValue>,
}

impl Checked {
    /// A request body: one reading object or an array of them, numbers kept as literal text.
    pub fn from_json(body: &[u8]) -> Result<Self, BatchError> {
        let malformed = |error: serde_json::Error| BatchError::Malformed(error.to_string());
        match Body::parse(body).map_err(malformed)? {
            Body::Many { items, count } => {
                Self::check(count, items.into_iter().map(reading_from_raw))
            }
            Body::One(item) => Self::check(1, std::iter::once(reading_from_raw(item))),
            Body::NotReadings => Err(BatchError::NotReadings),
        }
    }

    /// A value built in code (tests, benchmarks): numbers are read through their shortest
    /// round-trip text, since a [`Value`] keeps no other.
    pub fn from_value(body: &Value) -> Result<Self, BatchError> {
        let items: Vec<&Value> = match body {
            Value::Array(items) => items.iter().collect(),
            Value::Object(_) => vec![body],
            _ => return Err(BatchError::NotReadings),
        };
        Self::check(items.len(), items.into_iter().map(Reading::parse))
    }

    fn check(
        count: usize,
        items: impl Iterator<Item = Result<Reading, Vec<FieldError>>>,
    ) -> Result<Self, BatchError> {
        if count == 0 {
            return Err(BatchError::Empty);
        }
        if count > MAX_BATCH {
            return Err(BatchError::TooMany(count));
        }
        let mut readings = Vec::with_capacity(count);
        let mut invalid = Vec::new();
        for (index, item) in items.enumerate() {
            match item {
                Ok(reading) => readings.push((index, reading)),
                Err(errors) => invalid.push(InvalidReading { index, errors }),
            }
        }
        Ok(Self { readings, invalid })
    }

    /// All or nothing: any invalid reading or conflict inside the request refuses it whole.
    pub fn all_or_nothing(self) -> Result<Batch, BatchError> {
        if !self.invalid.is_empty() {
            return Err(BatchError::Invalid(self.invalid));
        }
        Batch::from_readings(self.readings)
    }

    /// Reading by reading: invalid ones are set aside, and of two readings with one identity
    /// and different values the first is kept and the later ones refused.
    pub fn partial(self) -> Partial {
        let (batch, conflicts) = Batch::dedup_keeping_first(self.readings);
        Partial {
            batch,
            invalid: self.invalid,
            conflicts,
        }
    }
}

fn reading_from_raw(item: &RawValue) -> Result<Reading, Vec<FieldError>> {
    if !item.get().starts_with('{') {
        return Err(vec![FieldError::not_an_object()]);
    }
    let raw: RawReading<'_> = serde_json::from_str(item.get()).map_err(|error| {
        vec![FieldError {
            field: "",
            detail: format!("the reading object is invalid: {error}"),
        }]
    })?;
    Reading::from_fields(
        &Field::from_raw(raw.sensor_id),
        &Field::from_raw(raw.time),
        &Field::from_raw(raw.temperature),
    )
}

impl Batch {
    /// A request body, all or nothing (what `PUT /api/temperature` does by default).
    pub fn from_json(body: &[u8]) -> Result<Self, BatchError> {
        Checked::from_json(body)?.all_or_nothing()
    }

    /// A value built in code, all or nothing (see [`Checked::from_value`]).
    pub fn parse(body: &Value) -> Result<Self, BatchError> {
        Checked::from_value(body)?.all_or_nothing()
    }

    /// Valid readings, with the request index (or line number) of each: exact repeats collapse,
    /// two values for one identity are a [`BatchError::SelfConflict`].
    pub fn from_readings(all: Vec<(usize, Reading)>) -> Result<Self, BatchError> {
        match Self::dedup_keeping_first(all) {
            (batch, conflicts) if conflicts.is_empty() => Ok(batch),
            (_, conflicts) => Err(BatchError::SelfConflict(conflicts)),
        }
    }

    /// Keeps the first reading of each identity; later exact repeats are counted, later
    /// different values are returned as conflicts.
    pub(crate) fn dedup_keeping_first(all: Vec<(usize, Reading)>) -> (Self, Vec<Conflict>) {
        // foldhash, not SipHash: one hash per reading is a visible share of a batch's parse,
        // and a request holds at most MAX_BATCH keys, so flooding one map is bounded anyway.
        let mut first: foldhash::HashMap<(&SensorId, Timestamp), &Reading> =
            HashMap::with_capacity_and_hasher(all.len(), Default::default());
        let mut keep = vec![true; all.len()];
        let mut conflicts = Vec::new();
        for (position, (index, reading)) in all.iter().enumerate() {
            match first.entry((&reading.sensor_id, reading.time)) {
                Entry::Vacant(vacant) => {
                    vacant.insert(reading);
                }
                Entry::Occupied(earlier) if earlier.get().temperature == reading.temperature => {
                    keep[position] = false;
                }
                Entry::Occupied(earlier) => {
                    keep[position] = false;
                    conflicts.push(Conflict::between(*index, reading, earlier.get()));
                }
            }
        }
        let repeats = keep.iter().filter(|k| !**k).count() - conflicts.len();
        let readings = all
            .into_iter()
            .zip(keep)
            .filter_map(|(entry, keep)| keep.then_some(entry))
            .collect();
        (Self { readings, repeats }, conflicts)
    }
}

impl Conflict {
    pub fn between(index: usize, incoming: &Reading, stored: &Reading) -> Self {
        Self {
            index,
            sensor_id: incoming.sensor_id.to_string(),
            time: incoming.time.to_rfc3339(),
            temperature: incoming.temperature.celsius(),
            stored_temperature: stored.temperature.celsius(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reading(sensor: &str, time: &str, temperature: f64) -> Value {
        json!({"sensorID": sensor, "time": time, "temperature": temperature})
    }

    #[test]
    fn a_single_object_is_a_batch_of_one() {
        let batch = Batch::parse(&reading("1", "2021-10-04 09:00:00", 12.0)).unwrap();
        assert_eq!(batch.readings.len(), 1);
        assert_eq!(batch.readings[0].0, 0);
        assert_eq!(batch.repeats, 0);
    }

    #[test]
    fn invalid_readings_are_named_by_index() {
        let body = json!([
            reading("1", "2021-10-04 09:00:00", 12.0),
            {"sensorID": "1", "time": "yesterday", "temperature": 1},
            reading("1", "2021-10-04 09:00:01", 12.0),
            "not an object",
        ]);
        let Err(BatchError::Invalid(invalid)) = Batch::parse(&body) else {
            panic!("expected invalid readings");
        };
        let indexes: Vec<_> = invalid.iter().map(|i| i.index).collect();
        assert_eq!(indexes, [1, 3]);
        assert_eq!(invalid[0].errors[0].field, "time");
    }

    #[test]
    fn exact_repeats_inside_a_request_collapse() {
        let r = reading("7", "2021-10-04 09:00:00", 1.5);
        let batch = Batch::parse(&json!([r, r, reading("8", "2021-10-04 09:00:00", 1.5)])).unwrap();
        let indexes: Vec<_> = batch.readings.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, [0, 2]);
        assert_eq!(batch.repeats, 1);
    }

    #[test]
    fn same_identity_with_two_values_inside_a_request_conflicts() {
        let body = json!([
            reading("7", "2021-10-04 09:00:00", 1.5),
            reading("7", "2021-10-04T09:00:00Z", 2.5),
        ]);
        let Err(BatchError::SelfConflict(conflicts)) = Batch::parse(&body) else {
            panic!("expected a conflict");
        };
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].index, 1);
        assert_eq!(conflicts[0].stored_temperature, 1.5);
    }

    #[test]
    fn two_sensors_at_the_same_second_are_different_readings() {
        let body = json!([
            reading("1", "2021-10-04 09:00:00", 1.0),
            reading("2", "2021-10-04 09:00:00", 2.0),
        ]);
        assert_eq!(Batch::parse(&body).unwrap().readings.len(), 2);
    }

    #[test]
    fn a_body_keeps_each_number_as_its_literal_text() {
        // Through f64, the first would be 5e-7 and round up; its digits say it rounds down.
        let body = br#"[{"sensorID": 1, "time": "2021-10-04 09:00:00", "temperature": 0.00000049999999999999999999},
                        {"sensorID": 1, "time": "2021-10-04 09:00:01", "temperature": 15.799999999999997, "unit": "C"}]"#;
        let batch = Batch::from_json(body).unwrap();
        let micros: Vec<i64> = batch
            .readings
            .iter()
            .map(|(_, r)| r.temperature.micros())
            .collect();
        assert_eq!(micros, [0, 15_800_000]);
    }

    #[test]
    fn malformed_and_non_object_bodies_are_told_apart() {
        assert!(matches!(
            Batch::from_json(b"[{"),
            Err(BatchError::Malformed(_))
        ));
        assert_eq!(Batch::from_json(b"12"), Err(BatchError::NotReadings));
        assert_eq!(Batch::from_json(b"[]"), Err(BatchError::Empty));
        let Err(BatchError::Invalid(invalid)) = Batch::from_json(br#"[1, {"sensorID": true}]"#)
        else {
            panic!("expected invalid readings");
        };
        assert_eq!(invalid.len(), 2);
    }

    #[test]
    fn partial_keeps_the_valid_readings_and_the_first_of_each_identity() {
        let body = json!([
            reading("1", "2021-10-04 09:00:00", 1.0),
            {"sensorID": "1", "time": "never", "temperature": 1},
            reading("1", "2021-10-04 09:00:00", 2.0),
            reading("1", "2021-10-04 09:00:00", 1.0),
            reading("2", "2021-10-04 09:00:00", 1.0),
        ]);
        let partial = Checked::from_value(&body).unwrap().partial();
        let kept: Vec<usize> = partial.batch.readings.iter().map(|(i, _)| *i).collect();
        assert_eq!(kept, [0, 4]);
        assert_eq!(partial.batch.repeats, 1);
        assert_eq!(partial.invalid[0].index, 1);
        assert_eq!(partial.conflicts[0].index, 2);
    }

    #[test]
    fn empty_oversized_and_non_reading_bodies_are_refused() {
        assert_eq!(Batch::parse(&json!([])), Err(BatchError::Empty));
        let many: Vec<Value> = (0..=MAX_BATCH)
            .map(|i| reading("1", "2021-10-04 09:00:00", i as f64))
            .collect();
        assert_eq!(
            Batch::parse(&Value::Array(many)),
            Err(BatchError::TooMany(MAX_BATCH + 1))
        );
        assert_eq!(Batch::parse(&json!("12")), Err(BatchError::NotReadings));
        assert_eq!(Batch::parse(&json!(12)), Err(BatchError::NotReadings));
    }
}
