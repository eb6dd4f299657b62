//! What is known of one sensor without reading its readings: its exact aggregate, its first
//! reading time and its latest reading (by reading time, not arrival time).
//!
//! Kept by storage beside the sensor's aggregate and updated in the same commit as the
//! readings. Observing a reading again changes nothing but the aggregate (which storage only
//! feeds new readings), so `first` and `latest` may be folded in any order, and more than once.

use super::aggregate::Aggregate;
use super::reading::{Temperature, Timestamp};

/// A reading's time and temperature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub time: Timestamp,
    pub temperature: Temperature,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SensorSummary {
    pub aggregate: Aggregate,
    /// Time of the earliest reading.
    pub first: Option<Timestamp>,
    /// The reading with the greatest time.
    pub latest: Option<Point>,
}

/// Encoded size: the aggregate, then first time, latest time and latest temperature.
pub const ENCODED_LEN: usize = super::aggregate::ENCODED_LEN + 24;

impl SensorSummary {
    /// Counts a new reading in the aggregate and extends first and latest.
    pub fn add(&mut self, point: Point) {
        self.aggregate.add(point.temperature);
        self.extend(point);
    }

    /// Extends first and latest only (idempotent): for a reading already counted.
    pub fn extend(&mut self, point: Point) {
        if self.first.is_none_or(|first| point.time < first) {
            self.first = Some(point.time);
        }
        if self.latest.is_none_or(|latest| point.time > latest.time) {
            self.latest = Some(point);
        }
    }

    /// `first` and `latest` as they were before this version kept them are unknown (`None`).
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        let head = super::aggregate::ENCODED_LEN;
        out[..head].copy_from_slice(&self.aggregate.encode());
        // i64::MIN is no valid time (it is before year 1): it says "unknown".
        let first = self.first.map_or(i64::MIN, Timestamp::micros);
        let (latest, temperature) = self
            .latest
            .map_or((i64::MIN, 0), |p| (p.time.micros(), p.temperature.micros()));
        out[head..head + 8].copy_from_slice(&first.to_be_bytes());
        out[head + 8..head + 16].copy_from_slice(&latest.to_be_bytes());
        out[head + 16..head + 24].copy_from_slice(&temperature.to_be_bytes());
        out
    }

    /// Decodes [`Self::encode`]'s bytes, or a bare aggregate as the previous version stored it
    /// (first and latest then unknown).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let head = super::aggregate::ENCODED_LEN;
        let aggregate = Aggregate::decode(bytes.get(..head)?)?;
        if bytes.len() == head {
            return Some(Self {
                aggregate,
                ..Self::default()
            });
        }
        if bytes.len() != ENCODED_LEN {
            return None;
        }
        let word = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let first = Timestamp::from_micros(word(head));
        let latest = match Timestamp::from_micros(word(head + 8)) {
            None => None,
            Some(time) => Some(Point {
                time,
                temperature: Temperature::from_micros(word(head + 16)).ok()?,
            }),
        };
        Some(Self {
            aggregate,
            first,
            latest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(second: i64, micros: i64) -> Point {
        Point {
            time: Timestamp::from_micros(1_633_338_000_000_000 + second * 1_000_000).unwrap(),
            temperature: Temperature::from_micros(micros).unwrap(),
        }
    }

    #[test]
    fn latest_is_by_reading_time_not_arrival() {
        let mut summary = SensorSummary::default();
        summary.add(point(10, 1));
        summary.add(point(5, 2)); // late and older: not the latest
        summary.add(point(20, 3));
        summary.add(point(15, 4));
        assert_eq!(summary.latest, Some(point(20, 3)));
        assert_eq!(summary.first, Some(point(5, 2).time));
        assert_eq!(summary.aggregate.count, 4);
        let before = summary;
        summary.extend(point(5, 2));
        summary.extend(point(20, 3));
        assert_eq!(
            summary, before,
            "extending with known readings changes nothing"
        );
    }

    #[test]
    fn encoding_round_trips_and_reads_the_previous_layout() {
        let mut summary = SensorSummary::default();
        assert_eq!(SensorSummary::decode(&summary.encode()), Some(summary));
        summary.add(point(-3, -273_150_000));
        summary.add(point(7, 42));
        assert_eq!(SensorSummary::decode(&summary.encode()), Some(summary));
        let previous = summary.aggregate.encode();
        let decoded = SensorSummary::decode(&previous).unwrap();
        assert_eq!(decoded.aggregate, summary.aggregate);
        assert_eq!((decoded.first, decoded.latest), (None, None));
        assert_eq!(SensorSummary::decode(&[0u8; 41]), None);
    }
}
