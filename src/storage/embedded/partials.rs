//! A sensor's current buckets, kept in its `sensor_aggregates` row beside its summary instead of
//! in `sensor_rollups` rows.
//!
//! # Why
//!
//! The writer is one thread, and it was bounded by B-tree inserts: every group rewrote, per
//! sensor it touched, the summary row and three rollup rows (minute, hour, day) — four inserts
//! per sensor, for a fleet that sends each sensor's readings in order and so nearly always
//! lands in the buckets it landed in last time. Measured on redb alone (`benches/layouts.rs`),
//! one row per sensor instead of four made the writer's work per reading of the peer
//! benchmark's readings 1.8 times cheaper. Now the **partial** aggregate of each level's
//! current bucket (the latest bucket the sensor has a reading in) rides on the summary row,
//! which is rewritten anyway, and a rollup row is written only when the sensor leaves a bucket
//! (the partial moves into its row) or for a late reading of an earlier bucket.
//!
//! # What a bucket holds
//!
//! A sensor's aggregate of bucket `b` at a level is **its `sensor_rollups` row for `b` (if
//! any), merged with the partial of that level when the partial's bucket is `b`**. Both are
//! exact fixed-point aggregates, so the merge is exact in any order. Every reader of per-sensor
//! rollups (windows and series, the verification) merges the two, in one read transaction, so
//! they are as consistent as the rows were.
//!
//! # Why it stays exact
//!
//! A group's new readings become deltas per (level, bucket), as before; [`advance`] splits them,
//! per level, into the new partial (the newest bucket among the partial's and the deltas') and
//! row deltas (the old partial when its bucket was left, and deltas of earlier buckets), and
//! the writer merges the row deltas into their rows — all in the group's transaction, with the
//! readings. A reading is thus counted once, in its bucket's partial or in its row. Buckets a
//! row already held before (written by the previous version, which kept every bucket in rows,
//! or by the one-time build) stay correct: a partial is only ever merged with them.
//!
//! A partial older than its level's retention horizon stays on the row until the sensor moves
//! on (then it becomes a row that the next sweep deletes): windows never ask for buckets beyond
//! a level's horizon (they are refused before reaching storage), so it is never read.
//!
//! # Format
//!
//! The row is the summary's encoding ([`SensorSummary::encode`]) followed, per level of
//! [`SENSOR_LEVELS`], by the partial's bucket start (µs, big-endian; `i64::MIN` for none) and
//! its encoded aggregate. Rows of the previous versions (a bare aggregate, or a summary) decode
//! with no partials. A store written by this version cannot be opened by an earlier one.

use crate::domain::aggregate::ENCODED_LEN as AGGREGATE_LEN;
use crate::domain::rollup::{Level, SENSOR_LEVELS};
use crate::domain::summary::ENCODED_LEN as SUMMARY_LEN;
use crate::domain::{Aggregate, SensorSummary};
use crate::storage::StorageError;

/// Per level of [`SENSOR_LEVELS`]: the current bucket's start (µs) and the aggregate of its
/// readings that its rollup row does not hold.
pub(super) type Partials = [Option<(i64, Aggregate)>; SENSOR_LEVELS.len()];

/// One level's partial on disk: bucket start, then the aggregate.
const PARTIAL_LEN: usize = 8 + AGGREGATE_LEN;
/// A sensor's row: summary, then the partials.
pub(super) const ROW_LEN: usize = SUMMARY_LEN + SENSOR_LEVELS.len() * PARTIAL_LEN;

/// Rollup changes of one sensor: `(level, bucket start, aggregate to merge)`.
pub(super) type Deltas = Vec<(Level, i64, Aggregate)>;

pub(super) fn encode_row(summary: &SensorSummary, partials: &Partials) -> [u8; ROW_LEN] {
    let mut out = [0u8; ROW_LEN];
    out[..SUMMARY_LEN].copy_from_slice(&summary.encode());
    for (slot, partial) in partials.iter().enumerate() {
        let at = SUMMARY_LEN + slot * PARTIAL_LEN;
        let (bucket, aggregate) = partial.unwrap_or((i64::MIN, Aggregate::default()));
        out[at..at + 8].copy_from_slice(&bucket.to_be_bytes());
        out[at + 8..at + PARTIAL_LEN].copy_from_slice(&aggregate.encode());
    }
    out
}

/// Decodes [`encode_row`]'s bytes, or a row of an earlier version (no partials).
pub(super) fn decode_row(
    bytes: &[u8],
    sensor: &str,
) -> Result<(SensorSummary, Partials), StorageError> {
    let corrupt = || StorageError::Internal(format!("corrupt aggregate for {sensor:?}").into());
    if bytes.len() != ROW_LEN {
        let summary = SensorSummary::decode(bytes).ok_or_else(corrupt)?;
        return Ok((summary, Partials::default()));
    }
    let summary = SensorSummary::decode(&bytes[..SUMMARY_LEN]).ok_or_else(corrupt)?;
    let mut partials = Partials::default();
    for (slot, partial) in partials.iter_mut().enumerate() {
        let at = SUMMARY_LEN + slot * PARTIAL_LEN;
        let bucket = i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        if bucket != i64::MIN {
            let aggregate =
                Aggregate::decode(&bytes[at + 8..at + PARTIAL_LEN]).ok_or_else(corrupt)?;
            *partial = Some((bucket, aggregate));
        }
    }
    Ok((summary, partials))
}

/// The partials after a group's `deltas`, and the deltas left for rollup rows: per level, the
/// newest bucket among the partial's and the deltas' becomes (or stays) current and takes its
/// deltas; a partial whose bucket is left, and deltas of earlier buckets, go to their rows.
pub(super) fn advance(
    partials: &Partials,
    deltas: &[(Level, i64, Aggregate)],
) -> (Partials, Deltas) {
    let mut next = *partials;
    let mut rows = Deltas::new();
    for (slot, level) in SENSOR_LEVELS.into_iter().enumerate() {
        let of_level = || deltas.iter().filter(move |(l, _, _)| *l == level);
        let Some(newest) = of_level().map(|(_, bucket, _)| *bucket).max() else {
            continue;
        };
        let mut current = match partials[slot] {
            Some((bucket, aggregate)) if bucket >= newest => (bucket, aggregate),
            Some((bucket, aggregate)) => {
                rows.push((level, bucket, aggregate));
                (newest, Aggregate::default())
            }
            None => (newest, Aggregate::default()),
        };
        for &(_, bucket, delta) in of_level() {
            if bucket == current.0 {
                current.1 = current.1.merge(&delta);
            } else {
                rows.push((level, bucket, delta));
            }
        }
        next[slot] = Some(current);
    }
    (next, rows)
}

/// The partial of `level`, when that level is kept in partials.
pub(super) fn of_level(partials: &Partials, level: Level) -> Option<(i64, Aggregate)> {
    let slot = SENSOR_LEVELS.iter().position(|l| *l == level)?;
    partials[slot]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rollup::{HOUR_MICROS, MINUTE_MICROS};
    use crate::domain::{Point, Temperature, Timestamp};

    const T0: i64 = 1_633_305_600_000_000; // 2021-10-04T00:00:00Z

    fn agg(celsius: &[i64]) -> Aggregate {
        Aggregate::of(
            celsius
                .iter()
                .map(|c| Temperature::from_micros(c * 1_000_000).unwrap()),
        )
    }

    /// The deltas of readings at `(µs, °C)`, as the writer makes them.
    fn deltas(readings: &[(i64, i64)]) -> Deltas {
        let mut out = Deltas::new();
        for &(time, celsius) in readings {
            for level in SENSOR_LEVELS {
                let bucket = level.bucket_of(time);
                match out.iter_mut().find(|(l, b, _)| *l == level && *b == bucket) {
                    Some((_, _, a)) => *a = a.merge(&agg(&[celsius])),
                    None => out.push((level, bucket, agg(&[celsius]))),
                }
            }
        }
        out
    }

    #[test]
    fn in_order_readings_of_the_current_buckets_write_no_row() {
        let (first, rows) = advance(&Partials::default(), &deltas(&[(T0, 1), (T0 + 5, 2)]));
        assert!(rows.is_empty());
        let (next, rows) = advance(&first, &deltas(&[(T0 + 10, 3)]));
        assert!(rows.is_empty(), "{rows:?}");
        assert_eq!(of_level(&next, Level::Minute), Some((T0, agg(&[1, 2, 3]))));
        assert_eq!(of_level(&next, Level::Day), Some((T0, agg(&[1, 2, 3]))));
    }

    #[test]
    fn leaving_a_bucket_moves_its_partial_into_its_row() {
        let (first, _) = advance(&Partials::default(), &deltas(&[(T0, 1), (T0 + 5, 2)]));
        let (next, rows) = advance(&first, &deltas(&[(T0 + MINUTE_MICROS, 3)]));
        assert_eq!(rows, vec![(Level::Minute, T0, agg(&[1, 2]))]);
        assert_eq!(
            of_level(&next, Level::Minute),
            Some((T0 + MINUTE_MICROS, agg(&[3])))
        );
        assert_eq!(of_level(&next, Level::Hour), Some((T0, agg(&[1, 2, 3]))));
    }

    #[test]
    fn late_readings_go_to_their_rows_and_the_newest_bucket_of_a_group_becomes_current() {
        let (first, _) = advance(&Partials::default(), &deltas(&[(T0 + HOUR_MICROS, 5)]));
        // One group: a late reading an hour back, and one of the current minute.
        let (next, rows) = advance(&first, &deltas(&[(T0, 1), (T0 + HOUR_MICROS + 1, 2)]));
        assert_eq!(
            rows,
            vec![(Level::Minute, T0, agg(&[1])), (Level::Hour, T0, agg(&[1]))]
        );
        assert_eq!(
            of_level(&next, Level::Minute),
            Some((T0 + HOUR_MICROS, agg(&[5, 2])))
        );
        assert_eq!(of_level(&next, Level::Day), Some((T0, agg(&[5, 1, 2]))));
        // A group spanning two new minutes: the earlier one goes to its row at once.
        let m = T0 + HOUR_MICROS;
        let (after, rows) = advance(
            &next,
            &deltas(&[(m + MINUTE_MICROS, 3), (m + 2 * MINUTE_MICROS, 4)]),
        );
        assert_eq!(
            rows,
            vec![
                (Level::Minute, m, agg(&[5, 2])),
                (Level::Minute, m + MINUTE_MICROS, agg(&[3]))
            ]
        );
        assert_eq!(
            of_level(&after, Level::Minute),
            Some((m + 2 * MINUTE_MICROS, agg(&[4])))
        );
    }

    #[test]
    fn every_reading_is_in_exactly_one_of_its_partial_or_its_row() {
        // Readings in a scrambled order, a few per group: per level and bucket, rows plus the
        // final partial equal the aggregate of that bucket's readings.
        let times: Vec<i64> = (0..200)
            .map(|k| T0 + ((k * 7_919) % 200) * 37 * 1_000_000)
            .collect();
        let mut partials = Partials::default();
        let mut stored: std::collections::BTreeMap<(u8, i64), Aggregate> = Default::default();
        for chunk in times.chunks(3) {
            let readings: Vec<_> = chunk.iter().map(|&t| (t, t % 7)).collect();
            let (next, rows) = advance(&partials, &deltas(&readings));
            for (level, bucket, delta) in rows {
                let row = stored.entry((level.code(), bucket)).or_default();
                *row = row.merge(&delta);
            }
            partials = next;
        }
        for level in SENSOR_LEVELS {
            let (bucket, partial) = of_level(&partials, level).unwrap();
            let row = stored.entry((level.code(), bucket)).or_default();
            *row = row.merge(&partial);
        }
        let expected = deltas(&times.iter().map(|&t| (t, t % 7)).collect::<Vec<_>>());
        assert_eq!(stored.len(), expected.len());
        for (level, bucket, aggregate) in expected {
            assert_eq!(
                stored[&(level.code(), bucket)],
                aggregate,
                "{level} {bucket}"
            );
        }
    }

    #[test]
    fn rows_round_trip_and_earlier_rows_decode_without_partials() {
        let mut summary = SensorSummary::default();
        summary.add(Point {
            time: Timestamp::from_micros(T0).unwrap(),
            temperature: Temperature::from_micros(1_500_000).unwrap(),
        });
        let (partials, _) = advance(&Partials::default(), &deltas(&[(T0, 1)]));
        let row = encode_row(&summary, &partials);
        assert_eq!(decode_row(&row, "s").unwrap(), (summary, partials));
        assert_eq!(
            decode_row(&summary.encode(), "s").unwrap(),
            (summary, Partials::default())
        );
        let bare = summary.aggregate.encode();
        assert_eq!(
            decode_row(&bare, "s").unwrap().0.aggregate,
            summary.aggregate
        );
        assert!(decode_row(&row[..ROW_LEN - 1], "s").is_err());
    }
}
