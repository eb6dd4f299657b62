//! The redb tables and their encoding, and the write transaction's work on them: a group's
//! readings checked and inserted all or nothing, items put and deleted, aggregates updated in
//! the same transaction.
//!
//! Tables:
//! - `readings`: `(sensor_id, time in µs since the epoch)` → temperature in µ°C, for the
//!   readings that are not in a block: late and out-of-order ones, those written while the
//!   one-time rollup build runs, and those of earlier versions
//! - `reading_blocks`: a sensor's in-order readings, packed (see [`super::reading_blocks`]),
//!   except those since the last checkpoint, which the writer keeps in memory until then (see
//!   [`super::recent`])
//! - `sensor_aggregates`: `sensor_id` → encoded [`SensorSummary`] (its aggregate, first
//!   reading time and latest reading) followed by the partials of its current buckets (see
//!   [`super::partials`]; earlier versions stored the summary alone, or the bare aggregate)
//! - `totals`: `"all"` → encoded [`Aggregate`] over every reading
//! - `items`: item id → the item's JSON object as text
//! - `counters`: `"picus_last_id"` → last item id handed out; `"wal_sequence"` → number of
//!   the last log record applied (see [`super`]); `"recent_generation"` → the generation of
//!   the writer's recent readings the committed state goes with (see [`super::recent`]); `"rollups_version"` (see [`super::rollups`])
//! - the rollup tables: see [`super::rollups`]; `retention`: see [`super::retention`]

use std::sync::Arc;

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::partials::{self, Partials};
use super::reading_blocks::{self, READING_BLOCKS};
use super::recent::RecentReadings;
use super::record;
use super::retention;
use super::rollups::{Coverage, TotalDeltas};
use super::storage_error;
use super::writer::{Effect, QueuedWrite};
use crate::domain::rollup::Level;
use crate::domain::{
    Aggregate, Batch, Conflict, Point, Reading, SensorSummary, Temperature, Timestamp,
};
use crate::storage::{ItemId, PutOutcome, StorageError};

pub(super) const READINGS: TableDefinition<(&str, i64), i64> = TableDefinition::new("readings");
pub(super) const SENSOR_AGGREGATES: TableDefinition<&str, &[u8]> =
    TableDefinition::new("sensor_aggregates");
pub(super) const TOTALS: TableDefinition<&str, &[u8]> = TableDefinition::new("totals");
pub(super) const ITEMS: TableDefinition<u64, &str> = TableDefinition::new("items");
pub(super) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

pub(super) const TOTAL_KEY: &str = "all";
pub(super) const LAST_ITEM_ID: &str = "picus_last_id";
/// `counters` key: sequence number of the last log record applied to redb.
pub(super) const WAL_SEQUENCE: &str = "wal_sequence";

/// The sensors a group touched, by id (foldhash: hashed once or more per reading).
pub(super) type TouchedSensors = foldhash::HashMap<String, Touched>;
/// Per sensor, the readings a group appends to its blocks, in time order.
pub(super) type Appends = foldhash::HashMap<String, Vec<(i64, i64)>>;
/// Sensors' committed summary rows, by id.
pub(super) type SummaryCache = foldhash::HashMap<String, Cached>;

/// What the writer knows of a sensor's committed row (see `Writer::aggregates`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Cached {
    pub(super) summary: SensorSummary,
    pub(super) partials: Partials,
}

/// A sensor's summary as stored before the group and as the group leaves it, the group's
/// rollup deltas, and its partials (as stored before the group; as written, once the group's
/// aggregates are written).
pub(super) struct Touched {
    pub(super) before: SensorSummary,
    pub(super) after: SensorSummary,
    pub(super) rollups: Vec<(Level, i64, Aggregate)>,
    pub(super) partials: Partials,
}

/// Where a sensor's readings go in a group, and which need which lookup: a reading after
/// `in_tables_until` is in no table, so it is looked for in memory only (the group's appends,
/// the writer's recent readings) and, when new, goes to the blocks (through the appends); after
/// `committed` (its latest committed reading) only the group's appends can hold it; after
/// `unchecked` (its latest reading, this group's included) it needs no lookup at all.
#[derive(Debug, Clone, Copy)]
pub(super) struct AppendRule {
    in_tables_until: i64,
    committed: i64,
    unchecked: i64,
}

/// Every table, opened once per write transaction.
pub(super) struct Tables<'t> {
    pub(super) readings: redb::Table<'t, (&'static str, i64), i64>,
    pub(super) blocks: redb::Table<'t, (&'static str, i64), &'static [u8]>,
    /// The group's in-order readings, written to their sensors' blocks with the aggregates
    /// (unless `defer_appends`).
    pub(super) appends: Appends,
    /// The writer's recent readings committed before this group (see [`super::recent`]).
    pub(super) recent: Arc<RecentReadings>,
    /// Leave the group's appends in `appends` for the writer's recent readings instead of
    /// writing them to the blocks.
    pub(super) defer_appends: bool,
    pub(super) sensors: redb::Table<'t, &'static str, &'static [u8]>,
    pub(super) totals: redb::Table<'t, &'static str, &'static [u8]>,
    /// Opened on first use: most groups touch neither.
    pub(super) items: Option<redb::Table<'t, u64, &'static str>>,
    pub(super) counters: Option<redb::Table<'t, &'static str, u64>>,
    pub(super) txn: &'t WriteTransaction,
    /// Sensors' committed summaries known to the writer (see `Writer::aggregates`).
    pub(super) cache: SummaryCache,
    /// How far the rollups cover the readings (known to the writer, loaded on open).
    pub(super) coverage: Coverage,
    /// The group's changes to the rollups over all sensors.
    pub(super) total_deltas: TotalDeltas,
}

impl<'t> Tables<'t> {
    pub(super) fn open(txn: &'t WriteTransaction) -> Result<Self, StorageError> {
        Ok(Self {
            readings: txn.open_table(READINGS).map_err(storage_error)?,
            blocks: txn.open_table(READING_BLOCKS).map_err(storage_error)?,
            appends: Appends::default(),
            recent: Arc::default(),
            defer_appends: false,
            sensors: txn.open_table(SENSOR_AGGREGATES).map_err(storage_error)?,
            totals: txn.open_table(TOTALS).map_err(storage_error)?,
            items: None,
            counters: None,
            txn,
            cache: SummaryCache::default(),
            coverage: Coverage::Complete,
            total_deltas: TotalDeltas::default(),
        })
    }

    pub(super) fn items(
        &mut self,
    ) -> Result<&mut redb::Table<'t, u64, &'static str>, StorageError> {
        if self.items.is_none() {
            self.items = Some(self.txn.open_table(ITEMS).map_err(storage_error)?);
        }
        Ok(self.items.as_mut().expect("just opened"))
    }

    pub(super) fn counters(
        &mut self,
    ) -> Result<&mut redb::Table<'t, &'static str, u64>, StorageError> {
        if self.counters.is_none() {
            self.counters = Some(self.txn.open_table(COUNTERS).map_err(storage_error)?);
        }
        Ok(self.counters.as_mut().expect("just opened"))
    }

    /// Applies every write of a group; appends what changed to `ops` (the group's log record).
    pub(super) fn apply(
        &mut self,
        group: &[QueuedWrite],
        ops: &mut Vec<u8>,
    ) -> Result<(Vec<Effect>, TouchedSensors), StorageError> {
        let mut effects = Vec::with_capacity(group.len());
        // Aggregates touched by this group, written back once at the end.
        let mut touched = TouchedSensors::default();
        for write in group {
            let effect = match write {
                QueuedWrite::Readings { batch, .. } => {
                    Effect::Readings(self.put_batch(batch, &mut touched, ops)?)
                }
                QueuedWrite::ItemPut { json, .. } => {
                    let id = self.last_item_id()? + 1;
                    self.item_put(id, json)?;
                    record::item_put(ops, id, json);
                    Effect::ItemPut(id)
                }
                QueuedWrite::ItemDelete { id, .. } => {
                    let existed = self.items()?.remove(*id).map_err(storage_error)?.is_some();
                    if existed {
                        record::item_delete(ops, *id);
                    }
                    Effect::ItemDelete(existed)
                }
                QueuedWrite::BuildRollups { .. } => {
                    Effect::BuildRollups(self.build_slice(&mut touched)?)
                }
                // A begun write transaction is all a readiness probe needs.
                QueuedWrite::Probe { .. } => Effect::Probe,
                QueuedWrite::Sweep { cutoffs, .. } => Effect::Sweep(self.sweep_chunk(*cutoffs)?),
            };
            effects.push(effect);
        }
        self.write_aggregates(&mut touched)?;
        Ok((effects, touched))
    }

    pub(super) fn last_item_id(&mut self) -> Result<u64, StorageError> {
        Ok(self
            .counters()?
            .get(LAST_ITEM_ID)
            .map_err(storage_error)?
            .map_or(0, |v| v.value()))
    }

    pub(super) fn item_put(&mut self, id: ItemId, json: &str) -> Result<(), StorageError> {
        if id > self.last_item_id()? {
            self.counters()?
                .insert(LAST_ITEM_ID, id)
                .map_err(storage_error)?;
        }
        self.items()?.insert(id, json).map_err(storage_error)?;
        Ok(())
    }

    /// Stores a reading known to be new (no reading of its sensor at its time): appended to
    /// the sensor's blocks when `append_after` says it is newer than every reading of the
    /// sensor in a table (in time order among the group's appends: requests of concurrent
    /// clients reach a group in any order), else a row. Then counts it.
    pub(super) fn store_fresh(
        &mut self,
        sensor: &str,
        micros: i64,
        temperature: Temperature,
        append_after: Option<i64>,
        touched: &mut TouchedSensors,
    ) -> Result<(), StorageError> {
        if append_after.is_some_and(|after| micros > after) {
            match self.appends.get_mut(sensor) {
                Some(readings) => {
                    let at = match readings.last() {
                        Some(&(last, _)) if last > micros => {
                            readings.partition_point(|&(time, _)| time < micros)
                        }
                        _ => readings.len(),
                    };
                    readings.insert(at, (micros, temperature.micros()));
                }
                None => {
                    self.appends
                        .insert(sensor.to_owned(), vec![(micros, temperature.micros())]);
                }
            }
        } else {
            self.readings
                .insert((sensor, micros), temperature.micros())
                .map_err(storage_error)?;
        }
        self.count_reading(sensor, micros, temperature, touched)
    }

    /// The time after which a reading of `sensor` goes to its blocks: it is then newer than
    /// every reading of the sensor in a table. `None` while the rollup build runs (it reads rows
    /// only) or when the sensor's summary does not say (a summary of an earlier version without
    /// its latest reading).
    pub(super) fn append_after(
        &mut self,
        sensor: &str,
        touched: &mut TouchedSensors,
    ) -> Result<Option<i64>, StorageError> {
        Ok(self
            .append_rule(sensor, touched)?
            .map(|rule| rule.in_tables_until))
    }

    /// [`Self::append_after`], and the times after which a reading of `sensor` needs fewer
    /// lookups (see [`AppendRule`]).
    ///
    /// Every reading of the sensor in a table is at or before its latest committed reading,
    /// and before the first of the writer's recent readings of it, which are newer than all of
    /// them (see [`super::recent`]). So a late reading, older than the latest committed one
    /// (requests of concurrent clients commit in any order), that is still newer than the
    /// first recent reading joins the recent readings in its place, found new by lookups in
    /// memory alone; only one older than those is looked up in the tables and becomes a row.
    fn append_rule(
        &mut self,
        sensor: &str,
        touched: &mut TouchedSensors,
    ) -> Result<Option<AppendRule>, StorageError> {
        if self.coverage != Coverage::Complete {
            return Ok(None);
        }
        let entry = self.touched_entry(sensor, touched)?;
        let latest = |summary: &SensorSummary| match summary.latest {
            Some(latest) => Some(latest.time.micros()),
            None if summary.aggregate.count == 0 => Some(i64::MIN),
            None => None,
        };
        Ok(latest(&entry.before).map(|committed| AppendRule {
            in_tables_until: match self.recent.of(sensor).first() {
                Some(&(first, _)) => committed.min(first.saturating_sub(1)),
                None => committed,
            },
            committed,
            unchecked: latest(&entry.after).unwrap_or(committed).max(committed),
        }))
    }

    /// The temperature of `(sensor, micros)` among the group's appends.
    fn appended(&self, sensor: &str, micros: i64) -> Option<i64> {
        let appended = self.appends.get(sensor)?;
        let at = appended
            .binary_search_by_key(&micros, |&(time, _)| time)
            .ok()?;
        Some(appended[at].1)
    }

    /// The temperature stored for `(sensor, micros)`: a row, a block, a recent reading, or an
    /// append of this group.
    pub(super) fn stored(&self, sensor: &str, micros: i64) -> Result<Option<i64>, StorageError> {
        if let Some(row) = self.readings.get((sensor, micros)).map_err(storage_error)? {
            return Ok(Some(row.value()));
        }
        if let Some(appended) = self.appended(sensor, micros) {
            return Ok(Some(appended));
        }
        if let Some(recent) = self.recent.find(sensor, micros) {
            return Ok(Some(recent));
        }
        reading_blocks::find(&self.blocks, sensor, micros)
    }

    /// Writes the writer's recent readings to their blocks: from then on this transaction's
    /// tables hold every reading.
    pub(super) fn write_recent(&mut self) -> Result<(), StorageError> {
        if !self.recent.is_empty() {
            self.recent.write_to_blocks(&mut self.blocks)?;
            self.recent = Arc::default();
        }
        Ok(())
    }

    /// Writes the group's appends to the sensors' blocks, in key order (unless deferred).
    fn write_appends(&mut self) -> Result<(), StorageError> {
        if self.defer_appends {
            return Ok(());
        }
        let mut appends: Vec<(String, Vec<(i64, i64)>)> = self.appends.drain().collect();
        appends.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (sensor, readings) in &appends {
            reading_blocks::append(&mut self.blocks, sensor, readings)?;
        }
        Ok(())
    }

    /// Adds a new reading to its sensor's summary in `touched` and to the rollups.
    pub(super) fn count_reading(
        &mut self,
        sensor: &str,
        micros: i64,
        temperature: Temperature,
        touched: &mut TouchedSensors,
    ) -> Result<(), StorageError> {
        let time = Timestamp::from_micros(micros)
            .ok_or_else(|| StorageError::Internal(format!("corrupt time {micros}").into()))?;
        let entry = self.touched_entry(sensor, touched)?;
        entry.after.add(Point { time, temperature });
        self.count_in_rollups(entry, sensor, micros, temperature);
        Ok(())
    }

    /// The sensor's entry in `touched`, from the writer's cache or the table on first use.
    pub(super) fn touched_entry<'a>(
        &mut self,
        sensor: &str,
        touched: &'a mut TouchedSensors,
    ) -> Result<&'a mut Touched, StorageError> {
        if !touched.contains_key(sensor) {
            let Cached { summary, partials } = match self.cache.get(sensor) {
                Some(cached) => *cached,
                None => match self.sensors.get(sensor).map_err(storage_error)? {
                    Some(bytes) => {
                        let (summary, partials) = partials::decode_row(bytes.value(), sensor)?;
                        Cached { summary, partials }
                    }
                    None => Cached::default(),
                },
            };
            touched.insert(
                sensor.to_owned(),
                Touched {
                    before: summary,
                    after: summary,
                    rollups: Vec::new(),
                    partials,
                },
            );
        }
        Ok(touched.get_mut(sensor).expect("just inserted"))
    }

    /// Writes back the touched sensors' rows (summary and partials), the total they change and
    /// the rollups: each sensor's deltas first move its partials on ([`partials::advance`]),
    /// and only what they leave behind is merged into rollup rows.
    pub(super) fn write_aggregates(
        &mut self,
        touched: &mut TouchedSensors,
    ) -> Result<(), StorageError> {
        self.write_appends()?;
        if touched.is_empty() {
            return Ok(());
        }
        // In key order: each B-tree walk starts where the last one ended.
        let mut sensors: Vec<(&String, &mut Touched)> = touched.iter_mut().collect();
        sensors.sort_unstable_by_key(|(sensor, _)| sensor.as_str());
        let mut total = read_aggregate(&self.totals, TOTAL_KEY)?;
        let total_before = total;
        for (sensor, entry) in &mut sensors {
            let (before, aggregate) = (&entry.before.aggregate, &entry.after.aggregate);
            total = total.merge(&Aggregate {
                count: aggregate.count - before.count,
                sum_micros: aggregate.sum_micros - before.sum_micros,
                min_micros: aggregate.min_micros,
                max_micros: aggregate.max_micros,
            });
            let (next, rows) = partials::advance(&entry.partials, &entry.rollups);
            if entry.after != entry.before || next != entry.partials {
                self.sensors
                    .insert(
                        sensor.as_str(),
                        partials::encode_row(&entry.after, &next).as_slice(),
                    )
                    .map_err(storage_error)?;
            }
            entry.partials = next;
            entry.rollups = rows;
        }
        if total != total_before {
            self.totals
                .insert(TOTAL_KEY, total.encode().as_slice())
                .map_err(storage_error)?;
        }
        self.write_rollups(&sensors)
    }

    /// Checks a request's readings against stored ones, then inserts the new ones, all or
    /// nothing, and logs them.
    pub(super) fn put_batch(
        &mut self,
        batch: &Batch,
        touched: &mut TouchedSensors,
        ops: &mut Vec<u8>,
    ) -> Result<PutOutcome, StorageError> {
        if let Some(refused) = retention::refusal(self.expired_in(batch)?) {
            return Ok(refused);
        }
        // Checked first, written after, so a conflict changes nothing (all or nothing; keys are
        // unique within a batch). A reading newer than every stored reading of its sensor needs
        // no lookup (the common case); any other is looked up. In key order (redb's order for
        // `(&str, i64)`): each lookup walks to a leaf next to the last one, and a sensor's
        // appends come in time order. Conflicts are reported in request order below.
        let mut in_key_order: Vec<&(usize, Reading)> = batch.readings.iter().collect();
        fn key_of<'r>((_, reading): &&'r (usize, Reading)) -> (&'r str, Timestamp) {
            (reading.sensor_id.as_str(), reading.time)
        }
        if !in_key_order.is_sorted_by_key(key_of) {
            in_key_order.sort_unstable_by(|a, b| key_of(a).cmp(&key_of(b)));
        }
        let mut fresh = Vec::with_capacity(batch.readings.len());
        let mut conflicts = Vec::new();
        let mut duplicates = batch.repeats;
        // The sensor being checked, and where its readings go (see `append_rule`).
        let mut current: Option<(&str, Option<AppendRule>)> = None;
        for (index, reading) in in_key_order {
            let (sensor, micros) = (reading.sensor_id.as_str(), reading.time.micros());
            let rule = match current {
                Some((name, rule)) if name == sensor => rule,
                _ => {
                    let rule = self.append_rule(sensor, touched)?;
                    current = Some((sensor, rule));
                    rule
                }
            };
            let append_after = rule.map(|rule| rule.in_tables_until);
            let incoming = reading.temperature.micros();
            let stored = match rule {
                Some(rule) if micros > rule.unchecked => None,
                // Newer than anything committed: only the group's appends can hold it.
                Some(rule) if micros > rule.committed => self.appended(sensor, micros),
                // In no table: in memory, if anywhere.
                Some(rule) if micros > rule.in_tables_until => self
                    .appended(sensor, micros)
                    .or_else(|| self.recent.find(sensor, micros)),
                _ => self.stored(sensor, micros)?,
            };
            match stored {
                None => fresh.push((reading, append_after)),
                Some(stored) if stored == incoming => duplicates += 1,
                Some(stored) => {
                    let stored = Reading {
                        temperature: Temperature::from_micros(stored)
                            .map_err(|e| StorageError::Internal(e.into()))?,
                        ..reading.clone()
                    };
                    conflicts.push(Conflict::between(*index, reading, &stored));
                }
            }
        }
        if !conflicts.is_empty() {
            conflicts.sort_unstable_by_key(|conflict| conflict.index);
            return Ok(PutOutcome::Conflict(conflicts));
        }
        for (reading, append_after) in &fresh {
            let (sensor, micros) = (reading.sensor_id.as_str(), reading.time.micros());
            self.store_fresh(sensor, micros, reading.temperature, *append_after, touched)?;
            record::reading(ops, sensor, micros, reading.temperature.micros());
        }
        Ok(PutOutcome::Stored {
            stored: fresh.len(),
            duplicates,
        })
    }
}

pub(super) fn read_aggregate(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Aggregate, StorageError> {
    match table.get(key).map_err(storage_error)? {
        None => Ok(Aggregate::default()),
        Some(bytes) => Aggregate::decode(bytes.value())
            .ok_or_else(|| StorageError::Internal(format!("corrupt aggregate for {key:?}").into())),
    }
}
