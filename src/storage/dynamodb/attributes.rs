//! Attribute mapping: DynamoDB items to and from the domain's aggregates, readings and times
//! (the item shapes are in [`super::schema`]; `/picus` items keep their JSON text as stored).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::schema::{COUNT, MAX, MIN, PARTITION_KEY, SORT_KEY, SUM, TEMPERATURE};
use crate::domain::{Aggregate, Temperature, Timestamp};
use crate::storage::StorageError;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The key attributes of the item `(pk, sk)`.
pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([
        (PARTITION_KEY.to_owned(), AttributeValue::S(pk.into())),
        (SORT_KEY.to_owned(), AttributeValue::S(sk.into())),
    ])
}

pub(crate) fn number(item: &Item, name: &str) -> Result<Option<i128>, StorageError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(n)) => n.parse::<i128>().map(Some).map_err(|_| {
            StorageError::Internal(format!("attribute {name} is not an integer: {n}").into())
        }),
        Some(other) => Err(StorageError::Internal(
            format!("attribute {name} is not a number: {other:?}").into(),
        )),
    }
}

fn number_i64(item: &Item, name: &str) -> Result<Option<i64>, StorageError> {
    number(item, name)?
        .map(|n| {
            i64::try_from(n).map_err(|_| {
                StorageError::Internal(format!("attribute {name} out of range: {n}").into())
            })
        })
        .transpose()
}

/// Reads an aggregate item (`c`, `s`, `mn`, `mx`); a missing item is the empty aggregate.
pub(crate) fn aggregate_of(item: Option<&Item>) -> Result<Aggregate, StorageError> {
    let Some(item) = item else {
        return Ok(Aggregate::default());
    };
    let count = number(item, COUNT)?.unwrap_or(0);
    let count = u64::try_from(count).map_err(|_| {
        StorageError::Internal(format!("aggregate count out of range: {count}").into())
    })?;
    let present = count > 0;
    Ok(Aggregate {
        count,
        sum_micros: number(item, SUM)?.unwrap_or(0),
        min_micros: number_i64(item, MIN)?.filter(|_| present),
        max_micros: number_i64(item, MAX)?.filter(|_| present),
    })
}

/// The stored temperature of a reading item.
pub(crate) fn temperature_of(item: &Item) -> Result<Temperature, StorageError> {
    let micros = number_i64(item, TEMPERATURE)?
        .ok_or_else(|| StorageError::Internal("reading without temperature".into()))?;
    Temperature::from_micros(micros).map_err(|e| StorageError::Internal(e.into()))
}

pub(crate) fn timestamp_of_sort_key(sk: &str) -> Result<Timestamp, StorageError> {
    DateTime::parse_from_rfc3339(sk)
        .ok()
        .and_then(|at| Timestamp::from_datetime(at.with_timezone(&Utc)).ok())
        .ok_or_else(|| StorageError::Internal(format!("corrupt reading time {sk:?}").into()))
}

pub(crate) fn string_of<'a>(item: &'a Item, name: &str) -> Result<&'a str, StorageError> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(StorageError::Internal(
            format!("attribute {name} missing").into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_items_round_trip_exact_numbers() {
        let item: Item = HashMap::from([
            (COUNT.to_owned(), AttributeValue::N("3".into())),
            (
                SUM.to_owned(),
                AttributeValue::N("123456789012345678901234567".into()),
            ),
            (MIN.to_owned(), AttributeValue::N("-273150000".into())),
            (MAX.to_owned(), AttributeValue::N("42".into())),
        ]);
        let aggregate = aggregate_of(Some(&item)).unwrap();
        assert_eq!(aggregate.count, 3);
        assert_eq!(aggregate.sum_micros, 123456789012345678901234567);
        assert_eq!(aggregate.min_micros, Some(-273_150_000));
        assert_eq!(aggregate.max_micros, Some(42));
        assert_eq!(aggregate_of(None).unwrap(), Aggregate::default());
    }

    #[test]
    fn sort_keys_parse_back_to_the_same_instant() {
        let time = Timestamp::parse_text("2021-10-04T09:00:00.000001Z").unwrap();
        assert_eq!(timestamp_of_sort_key(&time.to_sortable()).unwrap(), time);
        let early = Timestamp::parse_text("0001-01-01 00:00:00").unwrap();
        assert!("0" < early.to_sortable().as_str());
        assert!(early.to_sortable() < time.to_sortable());
    }
}
