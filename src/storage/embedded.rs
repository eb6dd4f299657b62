//! The default backend: one `redb` database file under `DATA_DIR`.
//!
//! redb is a pure-Rust, copy-on-write B-tree with ACID transactions; a commit with
//! `Durability::Immediate` (its default) returns only after fsync. Readings, the per-sensor
//! aggregates, the global aggregate, `/picus` items and their id counter live in one file, and
//! every group of writes is one transaction: aggregates can never drift from the readings.
//!
//! Tables:
//! - `readings`: `(sensor_id, time in µs since the epoch)` → temperature in µ°C
//! - `sensor_aggregates`: `sensor_id` → encoded [`Aggregate`]
//! - `totals`: `"all"` → encoded [`Aggregate`] over every reading
//! - `items`: item id → the item's JSON object as text
//! - `counters`: `"picus_last_id"` → last item id handed out

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::group_commit::{Committer, GroupCommit, GroupObserver};
use super::{ItemId, ItemsPage, PutOutcome, ReadingsPage, ReadingsQuery, StorageError};
use crate::domain::{Aggregate, Batch, Conflict, Reading, SensorId, Temperature, Timestamp};

const READINGS: TableDefinition<(&str, i64), i64> = TableDefinition::new("readings");
const SENSOR_AGGREGATES: TableDefinition<&str, &[u8]> = TableDefinition::new("sensor_aggregates");
const TOTALS: TableDefinition<&str, &[u8]> = TableDefinition::new("totals");
const ITEMS: TableDefinition<u64, &str> = TableDefinition::new("items");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

const TOTAL_KEY: &str = "all";
const LAST_ITEM_ID: &str = "picus_last_id";
/// The database file inside `DATA_DIR`.
pub const FILE_NAME: &str = "telemetry.redb";
/// Pending writes beyond which callers wait (back-pressure).
const WRITE_QUEUE: usize = 4_096;
/// Most requests in one transaction: bounds the work (at most 256 × 1,000 readings) of a commit.
const MAX_GROUP: usize = 256;

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    writer: GroupCommit<Write>,
}

/// One queued write and the channel that answers its caller.
pub enum Write {
    Readings {
        batch: Batch,
        reply: oneshot::Sender<Result<PutOutcome, StorageError>>,
    },
    ItemPut {
        json: String,
        reply: oneshot::Sender<Result<ItemId, StorageError>>,
    },
    ItemDelete {
        id: ItemId,
        reply: oneshot::Sender<Result<bool, StorageError>>,
    },
}

/// What one write did inside a group's transaction, before it is acknowledged.
enum Effect {
    Readings(PutOutcome),
    ItemPut(ItemId),
    ItemDelete(bool),
}

impl Write {
    fn answer(self, effect: Result<Effect, StorageError>) {
        // A caller that gave up (client disconnected) has dropped its receiver: ignore.
        match (self, effect) {
            (Self::Readings { reply, .. }, Ok(Effect::Readings(outcome))) => {
                let _ = reply.send(Ok(outcome));
            }
            (Self::ItemPut { reply, .. }, Ok(Effect::ItemPut(id))) => {
                let _ = reply.send(Ok(id));
            }
            (Self::ItemDelete { reply, .. }, Ok(Effect::ItemDelete(existed))) => {
                let _ = reply.send(Ok(existed));
            }
            (write, result) => {
                let error = match result {
                    Err(error) => error,
                    Ok(_) => StorageError::Internal("write answered with another kind".into()),
                };
                match write {
                    Self::Readings { reply, .. } => drop(reply.send(Err(error))),
                    Self::ItemPut { reply, .. } => drop(reply.send(Err(error))),
                    Self::ItemDelete { reply, .. } => drop(reply.send(Err(error))),
                }
            }
        }
    }
}

fn storage_error(error: impl Into<redb::Error>) -> StorageError {
    match error.into() {
        // Disk full, I/O trouble: possibly transient, the client may retry.
        redb::Error::Io(io) => StorageError::Unavailable(format!("I/O error: {io}")),
        other => StorageError::Internal(other.to_string()),
    }
}

fn join_error(error: tokio::task::JoinError) -> StorageError {
    StorageError::Internal(format!("storage task failed: {error}"))
}

struct Writer {
    db: Arc<Database>,
}

impl Committer for Writer {
    type Write = Write;

    async fn commit(&mut self, group: Vec<Write>) {
        let db = self.db.clone();
        // redb is blocking I/O (including the fsync): keep it off the async workers.
        let outcome = tokio::task::spawn_blocking(move || {
            let effects = apply_group(&db, &group);
            (group, effects)
        })
        .await;
        // A panic inside the closure drops the group, and with it every reply sender: callers
        // see a closed channel, which `receive` turns into an error.
        if let Ok((group, effects)) = outcome {
            match effects {
                Ok(effects) => {
                    for (write, effect) in group.into_iter().zip(effects) {
                        write.answer(Ok(effect));
                    }
                }
                Err(error) => {
                    tracing::error!(%error, writes = group.len(), "embedded commit failed");
                    for write in group {
                        write.answer(Err(error.clone()));
                    }
                }
            }
        }
    }
}

/// Applies every write of a group in one transaction and commits it (fsync) once.
fn apply_group(db: &Database, group: &[Write]) -> Result<Vec<Effect>, StorageError> {
    let txn = db.begin_write().map_err(storage_error)?;
    let mut effects = Vec::with_capacity(group.len());
    {
        let mut readings = txn.open_table(READINGS).map_err(storage_error)?;
        let mut sensors = txn.open_table(SENSOR_AGGREGATES).map_err(storage_error)?;
        let mut totals = txn.open_table(TOTALS).map_err(storage_error)?;
        let mut items = txn.open_table(ITEMS).map_err(storage_error)?;
        let mut counters = txn.open_table(COUNTERS).map_err(storage_error)?;
        // Aggregates touched by this group, written back once at the end.
        let mut touched: HashMap<SensorId, Aggregate> = HashMap::new();
        let mut total = read_aggregate(&totals, TOTAL_KEY)?;
        let total_before = total;
        for write in group {
            let effect = match write {
                Write::Readings { batch, .. } => {
                    Effect::Readings(put_batch(batch, &mut readings, &sensors, &mut touched)?)
                }
                Write::ItemPut { json, .. } => {
                    let id = counters
                        .get(LAST_ITEM_ID)
                        .map_err(storage_error)?
                        .map_or(0, |v| v.value())
                        + 1;
                    counters.insert(LAST_ITEM_ID, id).map_err(storage_error)?;
                    items.insert(id, json.as_str()).map_err(storage_error)?;
                    Effect::ItemPut(id)
                }
                Write::ItemDelete { id, .. } => {
                    let existed = items.remove(*id).map_err(storage_error)?.is_some();
                    Effect::ItemDelete(existed)
                }
            };
            effects.push(effect);
        }
        for (sensor, aggregate) in &touched {
            let before = read_aggregate(&sensors, sensor.as_str())?;
            total = total.merge(&Aggregate {
                count: aggregate.count - before.count,
                sum_micros: aggregate.sum_micros - before.sum_micros,
                min_micros: aggregate.min_micros,
                max_micros: aggregate.max_micros,
            });
            sensors
                .insert(sensor.as_str(), aggregate.encode().as_slice())
                .map_err(storage_error)?;
        }
        if total != total_before {
            totals
                .insert(TOTAL_KEY, total.encode().as_slice())
                .map_err(storage_error)?;
        }
    }
    txn.commit().map_err(storage_error)?;
    Ok(effects)
}

/// Checks a request's readings against stored ones, then inserts the new ones, all or nothing.
fn put_batch(
    batch: &Batch,
    readings: &mut redb::Table<(&str, i64), i64>,
    sensors: &redb::Table<&str, &[u8]>,
    touched: &mut HashMap<SensorId, Aggregate>,
) -> Result<PutOutcome, StorageError> {
    let mut fresh = Vec::with_capacity(batch.readings.len());
    let mut conflicts = Vec::new();
    let mut duplicates = batch.repeats;
    for (index, reading) in &batch.readings {
        let key = (reading.sensor_id.as_str(), reading.time.micros());
        match readings.get(key).map_err(storage_error)? {
            None => fresh.push(reading),
            Some(stored) if stored.value() == reading.temperature.micros() => duplicates += 1,
            Some(stored) => {
                let stored = Reading {
                    temperature: Temperature::from_micros(stored.value())
                        .map_err(StorageError::Internal)?,
                    ..reading.clone()
                };
                conflicts.push(Conflict::between(*index, reading, &stored));
            }
        }
    }
    if !conflicts.is_empty() {
        return Ok(PutOutcome::Conflict(conflicts));
    }
    for reading in &fresh {
        let key = (reading.sensor_id.as_str(), reading.time.micros());
        readings
            .insert(key, reading.temperature.micros())
            .map_err(storage_error)?;
        let aggregate = match touched.get_mut(&reading.sensor_id) {
            Some(aggregate) => aggregate,
            None => {
                let stored = read_aggregate(sensors, reading.sensor_id.as_str())?;
                touched.entry(reading.sensor_id.clone()).or_insert(stored)
            }
        };
        aggregate.add(reading.temperature);
    }
    Ok(PutOutcome::Stored {
        stored: fresh.len(),
        duplicates,
    })
}

fn read_aggregate(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Aggregate, StorageError> {
    match table.get(key).map_err(storage_error)? {
        None => Ok(Aggregate::default()),
        Some(bytes) => Aggregate::decode(bytes.value())
            .ok_or_else(|| StorageError::Internal(format!("corrupt aggregate for {key:?}"))),
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the database in `dir`. Start-up reads no readings: aggregates are stored.
    pub fn open(
        dir: &Path,
        cache_bytes: usize,
        on_group: GroupObserver,
    ) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StorageError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
        let path = dir.join(FILE_NAME);
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(&path)
            .map_err(|e| {
                StorageError::Unavailable(format!("cannot open {}: {e}", path.display()))
            })?;
        let txn = db.begin_write().map_err(storage_error)?;
        {
            // Creating every table up front lets readers open them without special cases.
            txn.open_table(READINGS).map_err(storage_error)?;
            txn.open_table(SENSOR_AGGREGATES).map_err(storage_error)?;
            txn.open_table(TOTALS).map_err(storage_error)?;
            txn.open_table(ITEMS).map_err(storage_error)?;
            txn.open_table(COUNTERS).map_err(storage_error)?;
        }
        txn.commit().map_err(storage_error)?;
        let db = Arc::new(db);
        let writer =
            GroupCommit::spawn(Writer { db: db.clone() }, WRITE_QUEUE, MAX_GROUP, on_group);
        Ok(Self { db, writer })
    }

    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StorageError>>) -> Write,
    ) -> Result<T, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.writer.submit(make(reply)).await?;
        answer
            .await
            .map_err(|_| StorageError::Internal("the storage writer dropped a write".into()))?
    }

    /// Runs a read-only closure on a blocking thread with a fresh read transaction.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(storage_error)?;
            f(&txn)
        })
        .await
        .map_err(join_error)?
    }

    pub async fn put_readings(&self, batch: Batch) -> Result<PutOutcome, StorageError> {
        self.write(|reply| Write::Readings { batch, reply }).await
    }

    pub async fn stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError> {
        let sensor = sensor.cloned();
        self.read(move |txn| match sensor {
            None => read_aggregate(&txn.open_table(TOTALS).map_err(storage_error)?, TOTAL_KEY),
            Some(sensor) => read_aggregate(
                &txn.open_table(SENSOR_AGGREGATES).map_err(storage_error)?,
                sensor.as_str(),
            ),
        })
        .await
    }

    /// Benchmark baseline only: the aggregate computed by reading every stored reading (all of
    /// them, or one sensor's), as the original service did on every stats call. The service
    /// never calls this; `benches/http_load.rs` times it against [`Self::stats`].
    pub async fn scan_stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError> {
        let sensor = sensor.cloned();
        self.read(move |txn| {
            let table = txn.open_table(READINGS).map_err(storage_error)?;
            let entries = match &sensor {
                None => table.iter(),
                Some(s) => table.range((s.as_str(), i64::MIN)..=(s.as_str(), i64::MAX)),
            }
            .map_err(storage_error)?;
            let mut aggregate = Aggregate::default();
            for entry in entries {
                let (_, value) = entry.map_err(storage_error)?;
                aggregate
                    .add(Temperature::from_micros(value.value()).map_err(StorageError::Internal)?);
            }
            Ok(aggregate)
        })
        .await
    }

    pub async fn readings(&self, query: ReadingsQuery) -> Result<ReadingsPage, StorageError> {
        self.read(move |txn| {
            let table = txn.open_table(READINGS).map_err(storage_error)?;
            let sensor = query.sensor_id.as_str();
            let start = match (query.from, query.after) {
                (from, Some(after)) => {
                    from.map_or(after.micros() + 1, |f| f.micros().max(after.micros() + 1))
                }
                (Some(from), None) => from.micros(),
                (None, None) => i64::MIN,
            };
            let end = query.to.map_or(i64::MAX, |to| to.micros());
            let mut page = Vec::with_capacity(query.limit.min(1_024));
            let mut more = false;
            if start < end || query.to.is_none() {
                let range = if query.to.is_some() {
                    table.range((sensor, start)..(sensor, end))
                } else {
                    table.range((sensor, start)..=(sensor, end))
                }
                .map_err(storage_error)?;
                for entry in range {
                    let (key, value) = entry.map_err(storage_error)?;
                    if page.len() == query.limit {
                        more = true;
                        break;
                    }
                    let (_, micros) = key.value();
                    let time = Timestamp::from_micros(micros).ok_or_else(|| {
                        StorageError::Internal(format!("corrupt time {micros} for {sensor:?}"))
                    })?;
                    page.push(Reading {
                        sensor_id: query.sensor_id.clone(),
                        time,
                        temperature: Temperature::from_micros(value.value())
                            .map_err(StorageError::Internal)?,
                    });
                }
            }
            let next = if more {
                page.last().map(|r| r.time)
            } else {
                None
            };
            Ok(ReadingsPage {
                readings: page,
                next,
            })
        })
        .await
    }

    pub async fn ping(&self) -> Result<(), StorageError> {
        self.read(|txn| {
            txn.open_table(TOTALS).map_err(storage_error)?;
            Ok(())
        })
        .await
    }

    pub async fn item_put(&self, item: Map<String, Value>) -> Result<ItemId, StorageError> {
        let json = Value::Object(item).to_string();
        self.write(|reply| Write::ItemPut { json, reply }).await
    }

    pub async fn item_get(&self, id: ItemId) -> Result<Option<Map<String, Value>>, StorageError> {
        self.read(move |txn| {
            let table = txn.open_table(ITEMS).map_err(storage_error)?;
            match table.get(id).map_err(storage_error)? {
                None => Ok(None),
                Some(json) => parse_item(id, json.value()).map(Some),
            }
        })
        .await
    }

    pub async fn item_list(
        &self,
        after: Option<ItemId>,
        limit: usize,
    ) -> Result<ItemsPage, StorageError> {
        self.read(move |txn| {
            let table = txn.open_table(ITEMS).map_err(storage_error)?;
            let start = after.map_or(0, |a| a.saturating_add(1));
            let mut items = Vec::with_capacity(limit.min(1_024));
            let mut more = false;
            for entry in table.range(start..).map_err(storage_error)? {
                let (id, json) = entry.map_err(storage_error)?;
                if items.len() == limit {
                    more = true;
                    break;
                }
                items.push((id.value(), parse_item(id.value(), json.value())?));
            }
            let next = if more {
                items.last().map(|(id, _)| *id)
            } else {
                None
            };
            Ok(ItemsPage { items, next })
        })
        .await
    }

    pub async fn item_delete(&self, id: ItemId) -> Result<bool, StorageError> {
        self.write(|reply| Write::ItemDelete { id, reply }).await
    }
}

fn parse_item(id: ItemId, json: &str) -> Result<Map<String, Value>, StorageError> {
    match serde_json::from_str(json) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(StorageError::Internal(format!("corrupt item {id}"))),
    }
}
