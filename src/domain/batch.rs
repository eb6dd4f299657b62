//! The body of `PUT /api/temperature`: one reading or an array of readings, validated as a whole.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use super::reading::{FieldError, Reading, SensorId, Timestamp};

/// Most readings accepted in one request.
pub const MAX_BATCH: usize = 1_000;

/// Why a body was refused before anything was stored.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchError {
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

impl Batch {
    pub fn parse(body: &Value) -> Result<Self, BatchError> {
        let items: Vec<&Value> = match body {
            Value::Array(items) if items.is_empty() => return Err(BatchError::Empty),
            Value::Array(items) if items.len() > MAX_BATCH => {
                return Err(BatchError::TooMany(items.len()));
            }
            Value::Array(items) => items.iter().collect(),
            Value::Object(_) => vec![body],
            _ => return Err(BatchError::NotReadings),
        };
        let mut readings = Vec::with_capacity(items.len());
        let mut invalid = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            match Reading::parse(item) {
                Ok(reading) => readings.push((index, reading)),
                Err(errors) => invalid.push(InvalidReading { index, errors }),
            }
        }
        if !invalid.is_empty() {
            return Err(BatchError::Invalid(invalid));
        }
        Self::dedup(readings)
    }

    fn dedup(all: Vec<(usize, Reading)>) -> Result<Self, BatchError> {
        let mut first: HashMap<(&SensorId, Timestamp), &Reading> = HashMap::new();
        let mut keep = vec![true; all.len()];
        let mut conflicts = Vec::new();
        for (position, (index, reading)) in all.iter().enumerate() {
            match first.get(&(&reading.sensor_id, reading.time)) {
                None => {
                    first.insert((&reading.sensor_id, reading.time), reading);
                }
                Some(earlier) if earlier.temperature == reading.temperature => {
                    keep[position] = false;
                }
                Some(earlier) => conflicts.push(Conflict::between(*index, reading, earlier)),
            }
        }
        if !conflicts.is_empty() {
            return Err(BatchError::SelfConflict(conflicts));
        }
        let repeats = keep.iter().filter(|k| !**k).count();
        let readings = all
            .into_iter()
            .zip(keep)
            .filter_map(|(entry, keep)| keep.then_some(entry))
            .collect();
        Ok(Self { readings, repeats })
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
