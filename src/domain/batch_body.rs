//! Splitting a `PUT /api/temperature` body into its items in one pass: the top-level object,
//! or each item of the top-level array as raw JSON borrowed from the body (no tree, no copy;
//! the body is read once here, and each object once more for its fields).
//!
//! Items beyond [`MAX_BATCH`] are checked (the body must be valid JSON to its end) and
//! counted, never kept: a body's memory stays bounded by [`MAX_BATCH`] items.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::batch::MAX_BATCH;

/// What a body holds at its top level.
#[derive(Debug)]
pub(super) enum Body<'a> {
    /// One reading object.
    One(&'a RawValue),
    /// An array: its first [`MAX_BATCH`] items, and how many it has in all.
    Many {
        items: Vec<&'a RawValue>,
        count: usize,
    },
    /// Valid JSON, but neither an object nor an array.
    NotReadings,
}

impl<'a> Body<'a> {
    /// The body's items; an error when it is not JSON.
    pub(super) fn parse(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        let first = body
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        match first {
            Some(b'[') => {
                let mut deserializer = serde_json::Deserializer::from_slice(body);
                let body = (&mut deserializer).deserialize_seq(ItemsVisitor)?;
                deserializer.end()?;
                Ok(body)
            }
            Some(b'{') => serde_json::from_slice(body).map(Body::One),
            // Checked as JSON without reading numbers as f64 (`1e400` is valid JSON).
            _ => serde_json::from_slice::<IgnoredAny>(body).map(|_| Body::NotReadings),
        }
    }
}

/// The top-level array, item by item.
struct ItemsVisitor;

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = Body<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of reading objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while items.len() < MAX_BATCH {
            match seq.next_element::<&'de RawValue>()? {
                Some(item) => items.push(item),
                None => {
                    let count = items.len();
                    return Ok(Body::Many { items, count });
                }
            }
        }
        let mut count = items.len();
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
        }
        Ok(Body::Many { items, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(body: &[u8]) -> (Vec<String>, usize) {
        match Body::parse(body) {
            Ok(Body::Many { items, count }) => {
                (items.iter().map(|i| i.get().to_owned()).collect(), count)
            }
            other => panic!("expected an array, got {other:?}"),
        }
    }

    #[test]
    fn items_are_the_raw_text_of_each_value() {
        let (items, count) = texts(br#" [{"a": [1, {"b": 2}]}, 1e400, "x\"y", null] "#);
        assert_eq!(
            items,
            [r#"{"a": [1, {"b": 2}]}"#, "1e400", r#""x\"y""#, "null"]
        );
        assert_eq!(count, 4);
        assert!(matches!(Body::parse(b"\n{}"), Ok(Body::One(raw)) if raw.get() == "{}"));
    }

    #[test]
    fn items_beyond_the_limit_are_counted_not_kept() {
        let body = format!("[{}{{}}]", "{},".repeat(MAX_BATCH + 4));
        let (items, count) = texts(body.as_bytes());
        assert_eq!((items.len(), count), (MAX_BATCH, MAX_BATCH + 5));
    }

    #[test]
    fn scalars_are_not_readings_and_bad_json_is_an_error() {
        for body in [&b"12"[..], b"\"x\"", b"null", b"true", b" 1e400"] {
            assert!(
                matches!(Body::parse(body), Ok(Body::NotReadings)),
                "{body:?}"
            );
        }
        for body in [
            &b"[{"[..],
            b"[1,]",
            b"[] x",
            b"{} x",
            b"[\"\xff\"]",
            b"12 x",
            b"",
        ] {
            assert!(Body::parse(body).is_err(), "{body:?}");
        }
    }
}
