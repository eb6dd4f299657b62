//! Rollups: exact aggregates per bucket, per sensor (minute, hour, day) and over all sensors
//! (second, minute, hour, day), kept in the same redb transaction as the readings they
//! summarise, and the one-time build that fills them for a store written before they existed.
//!
//! Tables:
//! - `sensor_rollups`: `(sensor_id, level code, bucket start µs)` → encoded [`Aggregate`], for
//!   hours and days (and minutes written by earlier versions, see below)
//! - `sensor_minute_rollups`: `(minute start µs, sensor_id)` → encoded [`Aggregate`]
//! - `total_rollups`: `(level code, bucket start µs)` → encoded [`Aggregate`], except seconds:
//!   `(`[`BLOCK_CODE`]`, minute start µs)` → the minute's seconds (see [`second_blocks`])
//! - `rollup_build`: `"cursor"` → the last `(sensor_id, time µs)` reading the build counted
//!
//! # How rollups stay exact
//!
//! A group's new readings are added to in-memory deltas, one per touched bucket, and each
//! delta is merged into its stored row once at the end of the group, in the group's
//! transaction: the rows commit with the readings or not at all. Only new readings are added
//! (duplicates and conflicts never reach the deltas), so a retry never counts twice. Recovery
//! replays the log's readings through the same path, skipping readings already stored, so the
//! rollups are rebuilt exactly with them (the log holds readings, the rollups are derived).
//!
//! # Minutes in time order
//!
//! A sensor reporting every few seconds leaves its minute every few readings, and the writer
//! then moves the minute's partial (see [`partials`]) into a row. Keyed by sensor first, the
//! minute rows of a fleet's sensors lie in as many B-tree leaves as there are sensors, so a
//! group that moved the partials of 1,000 sensors copied and checksummed about 1,000 leaves:
//! a third of the writer's time at 1,000-reading batches, and the largest part of its work
//! per single-reading `PUT`. Keyed by minute first, one group's minute rows are neighbours at
//! the end of the table, in a few leaves. A sensor's minutes are then read by lookups, one
//! per minute between its first and latest reading within the asked span (a window asks for
//! at most 118 minutes at its edges, a series for at most its bucket limit); hours and days,
//! left far less often, stay sensor first. Rows of minutes that earlier versions wrote to
//! `sensor_rollups` stay there and are merged like a partial: a minute's aggregate is its row
//! in either table merged with the partial (aggregates are exact, so the merge is too).
//! Retention deletes the expired minutes of every sensor as one range of this table.
//!
//! # The build, for stores written by the previous version
//!
//! A store without `counters["rollups_version"]` and with readings predates rollups (and its
//! sensor aggregates lack first and latest reading). It opens at once; a background thread then
//! queues build slices to the writer, each counting the next 20,000 readings in key order
//! (`(sensor_id, time)`) into the rollups and the sensor summaries, and storing the cursor, in
//! one transaction. Meanwhile every write keeps the invariant **rollups = the aggregate of the
//! readings at or before the cursor**: a new reading at or before the cursor is added to the
//! rollups at once, one after it is left to the build. First and latest are extended by every
//! write (extending twice changes nothing). A crash loses at most the non-durable slices, with
//! their cursor; the log's readings are replayed against the cursor that survived, so the
//! invariant holds after recovery too and the build resumes where redb's cursor says. Until the
//! build is done, readiness and the window, series and sensor routes answer 503; all-time
//! stats (kept by the previous version already) are answered throughout. Progress is logged.

use std::collections::BTreeMap;
use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, TableDefinition};

use super::partials;
use super::reading_blocks::{self, READING_BLOCKS};
use super::recent::RecentReadings;
use super::second_blocks::{self, BLOCK_CODE, Block};
use super::storage_error;
use super::tables::{READINGS, SENSOR_AGGREGATES, Tables, Touched, TouchedSensors};
use crate::domain::rollup::{Level, SECOND_MICROS, SENSOR_LEVELS, TOTAL_LEVELS};
use crate::domain::window::{Piece, Span};
use crate::domain::{Aggregate, Point, SensorSummary, Temperature, Timestamp};
use crate::storage::StorageError;

pub(super) const SENSOR_ROLLUPS: TableDefinition<(&str, u8, i64), &[u8]> =
    TableDefinition::new("sensor_rollups");
/// Per-sensor minutes, minute first (see "Minutes in time order" above).
pub(super) const MINUTE_ROLLUPS: TableDefinition<(i64, &str), &[u8]> =
    TableDefinition::new("sensor_minute_rollups");
pub(super) const TOTAL_ROLLUPS: TableDefinition<(u8, i64), &[u8]> =
    TableDefinition::new("total_rollups");
pub(super) const ROLLUP_BUILD: TableDefinition<&str, (&str, i64)> =
    TableDefinition::new("rollup_build");
/// `counters` key: present (1) once every reading is counted in the rollups.
pub(super) const ROLLUPS_VERSION: &str = "rollups_version";
const CURSOR: &str = "cursor";
/// Readings one build slice counts (a few tens of milliseconds of the writer's time).
#[cfg(not(test))]
pub(super) const BUILD_SLICE: usize = 20_000;
/// Tiny slices in unit tests, so that writes interleave with a build of a small store.
#[cfg(test)]
pub(super) const BUILD_SLICE: usize = 7;

/// How far the rollups cover the readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Coverage {
    /// Every reading is counted: the normal state.
    Complete,
    /// A build is under way: readings up to this key (none when `None`) are counted.
    Building(Option<(String, i64)>),
}

impl Coverage {
    /// Whether a reading stored now must be added to the rollups (else the build will).
    pub(super) fn covers(&self, sensor: &str, micros: i64) -> bool {
        match self {
            Coverage::Complete => true,
            Coverage::Building(None) => false,
            Coverage::Building(Some((s, m))) => (sensor, micros) <= (s.as_str(), *m),
        }
    }
}

/// What one build slice did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BuildProgress {
    pub(super) counted: usize,
    pub(super) done: bool,
}

/// The group's changes to `total_rollups` (per-sensor ones live in [`Touched`]): rows of the
/// levels above seconds, and the blocks of seconds by minute start (see [`second_blocks`]).
#[derive(Debug, Default)]
pub(super) struct TotalDeltas {
    rows: foldhash::HashMap<(Level, i64), Aggregate>,
    blocks: BTreeMap<i64, Block>,
}

impl TotalDeltas {
    /// Adds `temperature` at `micros` to every level over all sensors.
    pub(super) fn add(&mut self, micros: i64, temperature: Temperature) {
        for level in TOTAL_LEVELS {
            if level == Level::Second {
                self.blocks
                    .entry(second_blocks::minute_of(micros))
                    .or_default()
                    .add(micros, temperature);
            } else {
                self.rows
                    .entry((level, level.bucket_of(micros)))
                    .or_default()
                    .add(temperature);
            }
        }
    }
}

/// Adds `temperature` at `micros` to the deltas of every level of `levels`.
pub(super) fn add_to(
    deltas: &mut Vec<(Level, i64, Aggregate)>,
    levels: &[Level],
    micros: i64,
    temperature: Temperature,
) {
    for &level in levels {
        let bucket = level.bucket_of(micros);
        match deltas
            .iter_mut()
            .find(|(l, b, _)| *l == level && *b == bucket)
        {
            Some((_, _, aggregate)) => aggregate.add(temperature),
            None => deltas.push((level, bucket, Aggregate::of([temperature]))),
        }
    }
}

/// Merges `delta` into the rollup row at `key`: inserted first, and merged with the row it
/// replaced only when there was one, so a new bucket (the usual case as time moves on) costs one
/// B-tree descent, not a lookup and an insert.
fn merge_row<'k, K: redb::Key + 'static>(
    table: &mut redb::Table<'_, K, &'static [u8]>,
    key: &K::SelfType<'k>,
    delta: &Aggregate,
    what: &str,
) -> Result<(), StorageError> {
    let replaced = table
        .insert(key, delta.encode().as_slice())
        .map_err(storage_error)?
        .map(|bytes| decode(bytes.value(), what))
        .transpose()?;
    if let Some(stored) = replaced {
        table
            .insert(key, stored.merge(delta).encode().as_slice())
            .map_err(storage_error)?;
    }
    Ok(())
}

fn decode(bytes: &[u8], what: &str) -> Result<Aggregate, StorageError> {
    Aggregate::decode(bytes)
        .ok_or_else(|| StorageError::Internal(format!("corrupt rollup {what}").into()))
}

impl<'t> Tables<'t> {
    /// Counts a new reading in its sensor's summary and, when covered, in the rollups.
    pub(super) fn count_in_rollups(
        &mut self,
        entry: &mut Touched,
        sensor: &str,
        micros: i64,
        temperature: Temperature,
    ) {
        if self.coverage.covers(sensor, micros) {
            add_to(&mut entry.rollups, &SENSOR_LEVELS, micros, temperature);
            self.total_deltas.add(micros, temperature);
        }
    }

    /// Merges what the partials left of the group's deltas into the stored rollup rows
    /// ([`merge_row`]), each table in its key order (each B-tree walk then starts where the
    /// last one ended); `touched` is in sensor order.
    pub(super) fn write_rollups(
        &mut self,
        touched: &[(&String, &mut Touched)],
    ) -> Result<(), StorageError> {
        // Left by the partials: buckets a sensor left, and late readings (rare). Minutes in
        // their table's order (minute, then sensor), the other levels in sensor order.
        let mut minute_rows: Vec<(i64, &str, Aggregate)> = Vec::new();
        let mut sensors = self.txn.open_table(SENSOR_ROLLUPS).map_err(storage_error)?;
        for (sensor, entry) in touched.iter() {
            for &(level, bucket, delta) in &entry.rollups {
                if level == Level::Minute {
                    minute_rows.push((bucket, sensor.as_str(), delta));
                    continue;
                }
                let key = (sensor.as_str(), level.code(), bucket);
                merge_row(&mut sensors, &key, &delta, sensor)?;
            }
        }
        minute_rows.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut minutes = self.txn.open_table(MINUTE_ROLLUPS).map_err(storage_error)?;
        for (bucket, sensor, delta) in minute_rows {
            merge_row(&mut minutes, &(bucket, sensor), &delta, sensor)?;
        }
        let mut totals = self.txn.open_table(TOTAL_ROLLUPS).map_err(storage_error)?;
        let TotalDeltas { rows, blocks } = std::mem::take(&mut self.total_deltas);
        let mut deltas: Vec<_> = rows.into_iter().collect();
        deltas.sort_unstable_by_key(|((level, bucket), _)| (level.code(), *bucket));
        for ((level, bucket), delta) in deltas {
            merge_row(
                &mut totals,
                &(level.code(), bucket),
                &delta,
                "of all sensors",
            )?;
        }
        // Blocks after the rows: their code sorts after every level's.
        for (minute, delta) in blocks {
            let key = (BLOCK_CODE, minute);
            let replaced = totals
                .insert(key, delta.encode().as_slice())
                .map_err(storage_error)?
                .map(|bytes| Block::decode(bytes.value()))
                .transpose()?;
            if let Some(mut stored) = replaced {
                stored.merge(&delta);
                totals
                    .insert(key, stored.encode().as_slice())
                    .map_err(storage_error)?;
            }
        }
        Ok(())
    }

    /// Counts the next [`BUILD_SLICE`] readings after the cursor into the rollups and the
    /// sensor summaries, and moves the cursor (or marks the rollups complete).
    pub(super) fn build_slice(
        &mut self,
        touched: &mut TouchedSensors,
    ) -> Result<BuildProgress, StorageError> {
        let Coverage::Building(cursor) = self.coverage.clone() else {
            return Ok(BuildProgress {
                counted: 0,
                done: true,
            });
        };
        let mut slice: Vec<(String, i64, i64)> = Vec::with_capacity(BUILD_SLICE);
        {
            let start = match &cursor {
                Some((sensor, micros)) => Bound::Excluded((sensor.as_str(), *micros)),
                None => Bound::Unbounded,
            };
            let range = self
                .readings
                .range::<(&str, i64)>((start, Bound::Unbounded))
                .map_err(storage_error)?;
            for entry in range.take(BUILD_SLICE) {
                let (key, value) = entry.map_err(storage_error)?;
                let (sensor, micros) = key.value();
                slice.push((sensor.to_owned(), micros, value.value()));
            }
        }
        for (sensor, micros, value) in &slice {
            let temperature =
                Temperature::from_micros(*value).map_err(|e| StorageError::Internal(e.into()))?;
            let time = Timestamp::from_micros(*micros)
                .ok_or_else(|| StorageError::Internal(format!("corrupt time {micros}").into()))?;
            let entry = self.touched_entry(sensor, touched)?;
            entry.after.extend(Point { time, temperature });
            add_to(&mut entry.rollups, &SENSOR_LEVELS, *micros, temperature);
            self.total_deltas.add(*micros, temperature);
        }
        let done = slice.len() < BUILD_SLICE;
        let mut build = self.txn.open_table(ROLLUP_BUILD).map_err(storage_error)?;
        if done {
            build.remove(CURSOR).map_err(storage_error)?;
            self.counters()?
                .insert(ROLLUPS_VERSION, 1)
                .map_err(storage_error)?;
            self.coverage = Coverage::Complete;
        } else if let Some((sensor, micros, _)) = slice.last() {
            build
                .insert(CURSOR, (sensor.as_str(), *micros))
                .map_err(storage_error)?;
            self.coverage = Coverage::Building(Some((sensor.clone(), *micros)));
        }
        Ok(BuildProgress {
            counted: slice.len(),
            done,
        })
    }

    /// On open: how far the stored rollups cover the readings. A store that never kept them
    /// and holds readings starts a build; an empty one is complete at once.
    pub(super) fn load_coverage(&mut self) -> Result<Coverage, StorageError> {
        self.txn.open_table(SENSOR_ROLLUPS).map_err(storage_error)?;
        self.txn.open_table(MINUTE_ROLLUPS).map_err(storage_error)?;
        self.txn.open_table(TOTAL_ROLLUPS).map_err(storage_error)?;
        let build = self.txn.open_table(ROLLUP_BUILD).map_err(storage_error)?;
        if self
            .counters()?
            .get(ROLLUPS_VERSION)
            .map_err(storage_error)?
            .is_some()
        {
            return Ok(Coverage::Complete);
        }
        if let Some(cursor) = build.get(CURSOR).map_err(storage_error)? {
            let (sensor, micros) = cursor.value();
            return Ok(Coverage::Building(Some((sensor.to_owned(), micros))));
        }
        if self.readings.first().map_err(storage_error)?.is_none()
            && self.blocks.first().map_err(storage_error)?.is_none()
        {
            self.counters()?
                .insert(ROLLUPS_VERSION, 1)
                .map_err(storage_error)?;
            return Ok(Coverage::Complete);
        }
        Ok(Coverage::Building(None))
    }
}

/// Answers a window's pieces from one read transaction (one consistent snapshot): each rollup
/// row as `(bucket start, aggregate)`, each raw piece as `(its start, aggregate)`. `recent`:
/// the writer's recent readings that go with `txn` (see [`super::recent`]).
pub(super) fn evaluate(
    txn: &ReadTransaction,
    recent: &RecentReadings,
    sensor: Option<&str>,
    pieces: &[Piece],
    mut sink: impl FnMut(i64, &Aggregate),
) -> Result<(), StorageError> {
    for piece in pieces {
        match *piece {
            Piece::Rollup { level, span } => match sensor {
                Some(sensor) => {
                    for (bucket, aggregate) in sensor_buckets(txn, sensor, level, span)? {
                        sink(bucket, &aggregate);
                    }
                }
                None => {
                    let table = txn.open_table(TOTAL_ROLLUPS).map_err(storage_error)?;
                    let code = level.code();
                    for row in table
                        .range((code, span.from)..(code, span.to))
                        .map_err(storage_error)?
                    {
                        let (key, value) = row.map_err(storage_error)?;
                        sink(key.value().1, &decode(value.value(), "of all sensors")?);
                    }
                    if level == Level::Second {
                        // A second is its row (above) merged with its slot of a block.
                        let first = second_blocks::minute_of(span.from);
                        for row in table
                            .range((BLOCK_CODE, first)..(BLOCK_CODE, span.to))
                            .map_err(storage_error)?
                        {
                            let (key, value) = row.map_err(storage_error)?;
                            let block = Block::decode(value.value())?;
                            for (second, aggregate) in block.seconds(key.value().1) {
                                if span.contains(second) {
                                    sink(second, aggregate);
                                }
                            }
                        }
                    }
                }
            },
            Piece::Raw { span } => {
                let readings = txn.open_table(READINGS).map_err(storage_error)?;
                let blocks = txn.open_table(READING_BLOCKS).map_err(storage_error)?;
                let mut aggregate = Aggregate::default();
                let mut add_sensor = |sensor: &str| -> Result<(), StorageError> {
                    let end = Bound::Excluded(span.to);
                    for (_, value) in reading_blocks::range(
                        &readings,
                        &blocks,
                        recent.of(sensor),
                        sensor,
                        span.from,
                        end,
                        usize::MAX,
                    )? {
                        aggregate.add(
                            Temperature::from_micros(value)
                                .map_err(|e| StorageError::Internal(e.into()))?,
                        );
                    }
                    Ok(())
                };
                match sensor {
                    Some(sensor) => add_sensor(sensor)?,
                    None => {
                        let totals = txn.open_table(TOTAL_ROLLUPS).map_err(storage_error)?;
                        match edge_from_blocks(&totals, span)? {
                            Some(edge) => aggregate = edge,
                            // Else each sensor's readings of the span, skipping the sensors
                            // whose first and latest readings say they have none there (a
                            // window ending now, or a retired sensor).
                            None => {
                                let sensors =
                                    txn.open_table(SENSOR_AGGREGATES).map_err(storage_error)?;
                                for entry in sensors.iter().map_err(storage_error)? {
                                    let (key, value) = entry.map_err(storage_error)?;
                                    let sensor = key.value();
                                    if may_hold(&decode_summary(value.value(), sensor)?, span) {
                                        add_sensor(sensor)?;
                                    }
                                }
                            }
                        }
                    }
                }
                sink(span.from, &aggregate);
            }
        }
    }
    Ok(())
}

/// Over all sensors, the readings of a raw `span` (a bound inside a second: it lies within
/// two seconds at most) from the seconds' blocks alone, when they suffice: every second the
/// span touches is in its minute's block, has no row of an earlier version, and holds readings
/// at its start only. Then the part of a second after its start holds nothing, and the part
/// from its start holds the whole second. That is the common case — sensors send whole seconds,
/// a dashboard's bounds rarely are — and it costs a lookup or two instead of a descent into
/// every sensor's readings. `None` when it does not apply (a missing block too: that minute may
/// predate the blocks or lie past the seconds' retention).
fn edge_from_blocks(
    totals: &redb::ReadOnlyTable<(u8, i64), &[u8]>,
    span: Span,
) -> Result<Option<Aggregate>, StorageError> {
    let mut aggregate = Aggregate::default();
    let mut block: Option<(i64, Block)> = None;
    let mut second = Level::Second.bucket_of(span.from);
    while second < span.to {
        let earlier_row = totals
            .get((Level::Second.code(), second))
            .map_err(storage_error)?;
        if earlier_row.is_some() {
            return Ok(None);
        }
        let minute = second_blocks::minute_of(second);
        if block.as_ref().is_none_or(|(start, _)| *start != minute) {
            let Some(bytes) = totals.get((BLOCK_CODE, minute)).map_err(storage_error)? else {
                return Ok(None);
            };
            block = Some((minute, Block::decode(bytes.value())?));
        }
        let (_, current) = block.as_ref().expect("just read");
        let Some(at_start) = current.readings_at_start(second) else {
            return Ok(None);
        };
        if span.contains(second) {
            aggregate = aggregate.merge(&at_start);
        }
        second += SECOND_MICROS;
    }
    Ok(Some(aggregate))
}

/// One sensor's buckets of `level` that start in `span`, in order: each its rollup row merged
/// with the level's partial when that is the partial's bucket (see [`partials`]).
fn sensor_buckets(
    txn: &ReadTransaction,
    sensor: &str,
    level: Level,
    span: Span,
) -> Result<Vec<(i64, Aggregate)>, StorageError> {
    let table = txn.open_table(SENSOR_ROLLUPS).map_err(storage_error)?;
    let code = level.code();
    let mut buckets = Vec::new();
    for row in table
        .range((sensor, code, span.from)..(sensor, code, span.to))
        .map_err(storage_error)?
    {
        let (key, value) = row.map_err(storage_error)?;
        buckets.push((key.value().2, decode(value.value(), sensor)?));
    }
    let summaries = txn.open_table(SENSOR_AGGREGATES).map_err(storage_error)?;
    let Some(row) = summaries.get(sensor).map_err(storage_error)? else {
        // No summary, no reading: an earlier version's rows alone (none in a sound store).
        return Ok(buckets);
    };
    let (summary, partials) = partials::decode_row(row.value(), sensor)?;
    if level == Level::Minute {
        let minutes = sensor_minutes(txn, sensor, &summary, span)?;
        buckets = merge_buckets(buckets, minutes);
    }
    let partial = partials::of_level(&partials, level);
    if let Some((bucket, aggregate)) = partial.filter(|(bucket, _)| span.contains(*bucket)) {
        match buckets.binary_search_by_key(&bucket, |(start, _)| *start) {
            Ok(at) => buckets[at].1 = buckets[at].1.merge(&aggregate),
            Err(at) => buckets.insert(at, (bucket, aggregate)),
        }
    }
    Ok(buckets)
}

/// One sensor's rows of `sensor_minute_rollups` for the minutes of `span`, in order: a lookup
/// per minute from its first reading's (or the span's start) to its latest one's (or the
/// span's end), so at most the minutes where it has readings.
fn sensor_minutes(
    txn: &ReadTransaction,
    sensor: &str,
    summary: &SensorSummary,
    span: Span,
) -> Result<Vec<(i64, Aggregate)>, StorageError> {
    let from = summary.first.map_or(span.from, |first| {
        span.from.max(Level::Minute.bucket_of(first.micros()))
    });
    let to = summary.latest.map_or(span.to, |latest| {
        span.to.min(latest.time.micros().saturating_add(1))
    });
    let table = txn.open_table(MINUTE_ROLLUPS).map_err(storage_error)?;
    let mut found = Vec::new();
    let mut minute = Level::Minute.bucket_of(from);
    if minute < span.from {
        minute += Level::Minute.micros();
    }
    while minute < to {
        if let Some(bytes) = table.get((minute, sensor)).map_err(storage_error)? {
            found.push((minute, decode(bytes.value(), sensor)?));
        }
        minute += Level::Minute.micros();
    }
    Ok(found)
}

/// Two lists of `(bucket, aggregate)` in bucket order, merged into one: a bucket in both is
/// the merge of the two aggregates. (`a`, an earlier version's minute rows, is usually empty.)
fn merge_buckets(mut a: Vec<(i64, Aggregate)>, b: Vec<(i64, Aggregate)>) -> Vec<(i64, Aggregate)> {
    if a.is_empty() {
        return b;
    }
    a.extend(b);
    a.sort_by_key(|(bucket, _)| *bucket);
    a.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = kept.1.merge(&later.1);
        }
        same
    });
    a
}

/// Whether a sensor with this summary may have readings in `span`: not when its first reading
/// is at or after the span's end, or its latest before the span's start. A summary that does
/// not know (a row of an earlier version) may.
fn may_hold(summary: &SensorSummary, span: Span) -> bool {
    let after_end = summary.first.is_some_and(|first| first.micros() >= span.to);
    let before_start = summary
        .latest
        .is_some_and(|latest| latest.time.micros() < span.from);
    !(after_end || before_start)
}

/// A stored sensor summary (the row's partials aside), decoding earlier versions' rows too.
pub(super) fn decode_summary(bytes: &[u8], sensor: &str) -> Result<SensorSummary, StorageError> {
    partials::decode_row(bytes, sensor).map(|(summary, _)| summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(first: i64, latest: i64) -> SensorSummary {
        let point = |micros| Point {
            time: Timestamp::from_micros(micros).unwrap(),
            temperature: Temperature::from_micros(1).unwrap(),
        };
        let mut summary = SensorSummary::default();
        summary.add(point(first));
        summary.add(point(latest));
        summary
    }

    #[test]
    fn a_sensor_is_skipped_only_when_its_readings_lie_wholly_outside_the_span() {
        let span = Span::new(1_000, 2_000);
        assert!(may_hold(&summary(500, 1_000), span));
        assert!(may_hold(&summary(1_999, 5_000), span));
        assert!(may_hold(&summary(0, 9_000), span));
        assert!(!may_hold(&summary(500, 999), span));
        assert!(!may_hold(&summary(2_000, 3_000), span));
        // An earlier version's row knows neither: it is read.
        assert!(may_hold(&SensorSummary::default(), span));
    }
}
