//! The default backend: one `redb` database file and one write-ahead log under `DATA_DIR`.
//!
//! redb is a pure-Rust, copy-on-write B-tree with ACID transactions. Readings, the per-sensor
//! aggregates, the global aggregate, `/picus` items and their id counter live in one file, and
//! every group of writes is one transaction: aggregates can never drift from the readings.
//!
//! Tables:
//! - `readings`: `(sensor_id, time in µs since the epoch)` → temperature in µ°C
//! - `sensor_aggregates`: `sensor_id` → encoded [`Aggregate`]
//! - `totals`: `"all"` → encoded [`Aggregate`] over every reading
//! - `items`: item id → the item's JSON object as text
//! - `counters`: `"picus_last_id"` → last item id handed out; `"wal_sequence"` → number of
//!   the last log record applied (see below)
//!
//! # Writes: group commit through a write-ahead log
//!
//! An fsync'd redb commit rewrites and syncs every B-tree page the group touched (about 50
//! pages for 40 single-reading requests) and took 0.6–0.8 ms; that, not the CPU, capped durable
//! PUTs. So a group is made durable by one small sequential log record instead, and redb is
//! synced only at checkpoints:
//!
//! 1. A dedicated OS thread, the **writer** ([`GroupCommit::spawn_thread`]), takes every queued
//!    write (up to 256) as one group and applies it in one redb transaction, which computes
//!    each write's outcome (stored, duplicate, conflict, item id). What the group changed
//!    (new readings, item puts and deletes) is written to `telemetry.wal` as one record — a
//!    sequence number and the changes, framed with a length and a CRC-32 ([`super::wal`]) — and
//!    the transaction is committed with `Durability::None` (no fsync; visible to later
//!    transactions and readers). The writer also keeps recently written sensors' committed
//!    aggregates in memory (it is redb's only writer), saving a lookup per new reading.
//! 2. A second thread, the **syncer**, takes every group committed so far, `fdatasync`s the
//!    log once, and only then answers their callers, in commit order. Meanwhile the writer
//!    applies the next group: the fsync overlaps the next group's B-tree work. At most one
//!    committed group waits behind the fsync in progress; then the writer waits too, and writes
//!    pile up into a larger group (fewer transactions under load). A write answered
//!    "duplicate" or "conflict" waits for the same fsync, so it never rests on a reading that
//!    is not yet durable. **200 still means durable**: the log record is on disk.
//! 3. Every 250 ms (or 64 MiB of log), the group's transaction is committed with
//!    `Durability::Immediate` instead: a **checkpoint**, which makes that group and every
//!    earlier non-durable commit durable in redb, and stores in `counters` the sequence number
//!    of the last record it contains; the log then starts over at offset 0. A clean
//!    shutdown ends with a checkpoint (dropping the last store handle waits for it).
//! 4. **On open**, redb comes back at its last durable commit (non-durable commits live only in
//!    the process) with the sequence number `S` of the last record it contains; the log's
//!    records `S+1, S+2, ...` are replayed in one fsync'd transaction, up to the first torn,
//!    corrupt or out-of-sequence record (a stale record left after a rewind has a smaller
//!    number). A torn record was never acknowledged: its callers were answered only after the
//!    `fdatasync` that would have covered it. Replay is exact (by sequence number) and would be
//!    harmless anyway: readings are immutable and items carry their ids.
//!
//! Caveats:
//! - **Visibility before durability**: a reader may see a group (e.g. in `GET /api/stats`) up
//!   to three `fdatasync`s (under 1 ms) before its writers are answered; if the process dies in
//!   that window the group is lost and the reader saw something that was never acknowledged. No
//!   acknowledged write is ever lost, and no answer depends on an undurable one.
//! - If the log's `fdatasync` fails, nothing is acknowledged any more (every later write gets
//!   503) until a restart replays what the disk really holds; retrying an fsync after a
//!   failure can report success for lost data (PostgreSQL's "fsyncgate").
//! - If a redb commit fails after its record was written, the record is overwritten by the
//!   next one; a crash before that would replay writes whose callers got an error (which only
//!   ever means "outcome unknown, retry": readings are idempotent).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::group_commit::{BlockingCommitter, GroupCommit, GroupObserver};
use super::wal::Log;
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
/// The write-ahead log inside `DATA_DIR`.
pub const LOG_FILE_NAME: &str = "telemetry.wal";
/// `counters` key: sequence number of the last log record applied to redb.
const WAL_SEQUENCE: &str = "wal_sequence";
/// A checkpoint (an fsync'd redb commit, then the log starts over) at least this often...
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// ...or once the log holds this much.
const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
/// Most sensors whose aggregates the writer keeps in memory.
const AGGREGATE_CACHE: usize = 65_536;

#[derive(Clone)]
pub struct EmbeddedStore {
    writer: Arc<WriterHandle>,
    db: Arc<Database>,
}

/// The writer thread's queue and the thread itself: dropping the last store handle closes the
/// queue and waits for the thread's final checkpoint, so the database can be reopened at once.
struct WriterHandle {
    commit: Option<GroupCommit<Write>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WriterHandle {
    fn commit(&self) -> &GroupCommit<Write> {
        self.commit.as_ref().expect("present until dropped")
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        drop(self.commit.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the embedded writer thread panicked");
        }
    }
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

fn log_error(error: std::io::Error) -> StorageError {
    StorageError::Unavailable(format!("write-ahead log: {error}"))
}

/// The write side: owns the log, runs on its own thread (see [`GroupCommit::spawn_thread`]).
struct Writer {
    db: Arc<Database>,
    log: Log,
    /// Sequence number of the last record logged (and applied to redb).
    sequence: u64,
    last_checkpoint: Instant,
    checkpoint_every: Duration,
    /// The current group's log record, reused between groups.
    ops: Vec<u8>,
    /// Bytes appended to the log since open (never rewound): what the syncer must cover.
    appended: u64,
    /// Groups waiting for the log's `fdatasync`, in commit order.
    syncer: Option<std::sync::mpsc::SyncSender<Pending>>,
    syncer_thread: Option<std::thread::JoinHandle<()>>,
    /// Set by the syncer when an `fdatasync` failed: from then on nothing is acknowledged.
    failed: Arc<AtomicBool>,
    /// The committed aggregates of recently written sensors: the writer is redb's only writer,
    /// so these stay exact and save a lookup per new reading. Cleared when it would exceed
    /// `AGGREGATE_CACHE` entries (a few MiB at most).
    aggregates: HashMap<String, Aggregate>,
}

/// A committed group on its way to its callers, once the log is durable up to `appended`.
struct Pending {
    group: Vec<Write>,
    effects: Vec<Effect>,
    appended: u64,
}

impl BlockingCommitter for Writer {
    type Write = Write;

    fn commit(&mut self, group: Vec<Write>) {
        match self.apply(&group) {
            Ok((effects, appended)) => {
                let pending = Pending {
                    group,
                    effects,
                    appended,
                };
                if let Some(syncer) = &self.syncer
                    && let Err(unsent) = syncer.send(pending)
                {
                    // The syncer is gone (it panicked): fail rather than answer undurable.
                    for write in unsent.0.group {
                        write.answer(Err(StorageError::Internal("the log syncer stopped".into())));
                    }
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

    fn finish(&mut self) {
        if !self.failed.load(Ordering::SeqCst)
            && let Err(error) = self.checkpoint()
        {
            tracing::warn!(%error, "final checkpoint failed; the log will be replayed on open");
        }
        // Let the syncer answer what it still holds, and wait for it.
        drop(self.syncer.take());
        if let Some(thread) = self.syncer_thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the embedded log syncer panicked");
        }
    }
}

impl Writer {
    /// Applies a group in one redb transaction: logs its changes (one record, written but not
    /// yet synced) and commits it without fsync; the syncer answers it once the log is durable
    /// up to the returned offset. When a checkpoint is due, the commit is an fsync'd one instead
    /// (which makes every earlier group durable in redb) and the log starts over.
    fn apply(&mut self, group: &[Write]) -> Result<(Vec<Effect>, u64), StorageError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(StorageError::Unavailable(
                "the write-ahead log could not be synced; restart the service".into(),
            ));
        }
        let checkpoint = self.last_checkpoint.elapsed() >= self.checkpoint_every
            || self.log.written() >= CHECKPOINT_BYTES;
        let mut txn = self.db.begin_write().map_err(storage_error)?;
        if !checkpoint {
            txn.set_durability(Durability::None)
                .map_err(|e| StorageError::Internal(e.to_string()))?;
        }
        self.ops.clear();
        let mut sequence = self.sequence;
        // Taken out of the writer while the transaction may fail: a failed group leaves the
        // cache empty rather than ahead of redb.
        let cache = std::mem::take(&mut self.aggregates);
        let (effects, touched, cache) = {
            let mut tables = Tables::open(&txn)?;
            tables.cache = cache;
            let (effects, touched) = tables.apply(group, &mut self.ops)?;
            if !self.ops.is_empty() {
                sequence += 1;
            }
            if checkpoint {
                // Only durable commits need the number: non-durable ones never survive a crash.
                tables
                    .counters()?
                    .insert(WAL_SEQUENCE, sequence)
                    .map_err(storage_error)?;
            }
            (effects, touched, std::mem::take(&mut tables.cache))
        };
        if self.ops.is_empty() && !checkpoint {
            // Duplicates, conflicts, deletes of nothing: nothing to log or commit. The answer
            // still waits for the log to be durable up to here (a duplicate of a reading whose
            // record is not yet synced must not be acknowledged before it).
            txn.abort().map_err(storage_error)?;
            return Ok((effects, self.appended));
        }
        let mark = self.log.written();
        if !checkpoint {
            let bytes = self.log.write(sequence, &self.ops).map_err(log_error)?;
            self.appended += bytes;
        }
        if let Err(error) = txn.commit() {
            // Not applied: the next record takes this one's place in the log. (Were the process
            // to die before that, replay would apply writes whose callers got an error, which
            // only ever means "outcome unknown, retry".)
            self.log.discard_from(mark);
            return Err(storage_error(error));
        }
        self.sequence = sequence;
        self.aggregates = cache;
        if self.aggregates.len() + touched.len() > AGGREGATE_CACHE {
            self.aggregates.clear();
        }
        for (sensor, Touched { after, .. }) in touched {
            self.aggregates.insert(sensor, after);
        }
        if checkpoint {
            self.checkpointed();
        }
        Ok((effects, self.appended))
    }

    /// An fsync'd redb commit: everything applied so far is durable in redb, the log restarts.
    fn checkpoint(&mut self) -> Result<(), StorageError> {
        let txn = self.db.begin_write().map_err(storage_error)?;
        txn.open_table(COUNTERS)
            .map_err(storage_error)?
            .insert(WAL_SEQUENCE, self.sequence)
            .map_err(storage_error)?;
        txn.commit().map_err(storage_error)?;
        self.checkpointed();
        Ok(())
    }

    fn checkpointed(&mut self) {
        self.last_checkpoint = Instant::now();
        if let Err(error) = self.log.rewind() {
            tracing::warn!(%error, "could not shrink the write-ahead log");
        }
    }
}

/// The syncer thread: takes every committed group queued, `fdatasync`s the log once if they
/// need it, then answers them in order. Runs beside the writer, so the next group is applied
/// while this one's log record is being synced.
fn run_syncer(
    file: std::fs::File,
    queue: std::sync::mpsc::Receiver<Pending>,
    failed: Arc<AtomicBool>,
) {
    let mut synced = 0u64;
    let mut batch = Vec::new();
    while let Ok(first) = queue.recv() {
        batch.push(first);
        batch.extend(queue.try_iter());
        let needed = batch.iter().map(|p| p.appended).max().unwrap_or(0);
        let mut result = Ok(());
        if failed.load(Ordering::SeqCst) {
            result = Err(StorageError::Unavailable(
                "the write-ahead log could not be synced; restart the service".into(),
            ));
        } else if needed > synced {
            match file.sync_data() {
                Ok(()) => synced = needed,
                Err(error) => {
                    // The log's state on disk is unknown; so is that of everything committed
                    // after it. Acknowledge nothing more (PostgreSQL's lesson): a restart
                    // replays what the disk really holds.
                    tracing::error!(%error, "fdatasync of the write-ahead log failed");
                    failed.store(true, Ordering::SeqCst);
                    result = Err(log_error(error));
                }
            }
        }
        for pending in batch.drain(..) {
            match &result {
                Ok(()) => {
                    for (write, effect) in pending.group.into_iter().zip(pending.effects) {
                        write.answer(Ok(effect));
                    }
                }
                Err(error) => {
                    for write in pending.group {
                        write.answer(Err(error.clone()));
                    }
                }
            }
        }
    }
}

/// A sensor's aggregate as stored before the group and as the group leaves it.
struct Touched {
    before: Aggregate,
    after: Aggregate,
}

/// Every table, opened once per write transaction.
struct Tables<'t> {
    readings: redb::Table<'t, (&'static str, i64), i64>,
    sensors: redb::Table<'t, &'static str, &'static [u8]>,
    totals: redb::Table<'t, &'static str, &'static [u8]>,
    /// Opened on first use: most groups touch neither.
    items: Option<redb::Table<'t, u64, &'static str>>,
    counters: Option<redb::Table<'t, &'static str, u64>>,
    txn: &'t WriteTransaction,
    /// Sensors' committed aggregates known to the writer (see `Writer::aggregates`).
    cache: HashMap<String, Aggregate>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, StorageError> {
        Ok(Self {
            readings: txn.open_table(READINGS).map_err(storage_error)?,
            sensors: txn.open_table(SENSOR_AGGREGATES).map_err(storage_error)?,
            totals: txn.open_table(TOTALS).map_err(storage_error)?,
            items: None,
            counters: None,
            txn,
            cache: HashMap::new(),
        })
    }

    fn items(&mut self) -> Result<&mut redb::Table<'t, u64, &'static str>, StorageError> {
        if self.items.is_none() {
            self.items = Some(self.txn.open_table(ITEMS).map_err(storage_error)?);
        }
        Ok(self.items.as_mut().expect("just opened"))
    }

    fn counters(&mut self) -> Result<&mut redb::Table<'t, &'static str, u64>, StorageError> {
        if self.counters.is_none() {
            self.counters = Some(self.txn.open_table(COUNTERS).map_err(storage_error)?);
        }
        Ok(self.counters.as_mut().expect("just opened"))
    }

    /// Applies every write of a group; appends what changed to `ops` (the group's log record).
    fn apply(
        &mut self,
        group: &[Write],
        ops: &mut Vec<u8>,
    ) -> Result<(Vec<Effect>, HashMap<String, Touched>), StorageError> {
        let mut effects = Vec::with_capacity(group.len());
        // Aggregates touched by this group, written back once at the end.
        let mut touched: HashMap<String, Touched> = HashMap::new();
        for write in group {
            let effect = match write {
                Write::Readings { batch, .. } => {
                    Effect::Readings(self.put_batch(batch, &mut touched, ops)?)
                }
                Write::ItemPut { json, .. } => {
                    let id = self.last_item_id()? + 1;
                    self.item_put(id, json)?;
                    op::item_put(ops, id, json);
                    Effect::ItemPut(id)
                }
                Write::ItemDelete { id, .. } => {
                    let existed = self.items()?.remove(*id).map_err(storage_error)?.is_some();
                    if existed {
                        op::item_delete(ops, *id);
                    }
                    Effect::ItemDelete(existed)
                }
            };
            effects.push(effect);
        }
        self.write_aggregates(&touched)?;
        Ok((effects, touched))
    }

    /// Re-applies one log record (on open). Exact, because only records newer than the
    /// sequence number stored in redb are replayed; idempotent anyway (readings are immutable,
    /// items carry their ids).
    fn replay(&mut self, mut ops: &[u8]) -> Result<(), StorageError> {
        let mut touched: HashMap<String, Touched> = HashMap::new();
        while !ops.is_empty() {
            match op::decode(&mut ops)? {
                op::Op::Reading {
                    sensor,
                    micros,
                    temperature,
                } => {
                    if self
                        .readings
                        .get((sensor, micros))
                        .map_err(storage_error)?
                        .is_none()
                    {
                        let temperature = Temperature::from_micros(temperature)
                            .map_err(StorageError::Internal)?;
                        self.insert_reading(sensor, micros, temperature, &mut touched)?;
                    }
                }
                op::Op::ItemPut { id, json } => {
                    self.item_put(id, json)?;
                }
                op::Op::ItemDelete { id } => {
                    self.items()?.remove(id).map_err(storage_error)?;
                }
            }
        }
        self.write_aggregates(&touched)
    }

    fn last_item_id(&mut self) -> Result<u64, StorageError> {
        Ok(self
            .counters()?
            .get(LAST_ITEM_ID)
            .map_err(storage_error)?
            .map_or(0, |v| v.value()))
    }

    fn item_put(&mut self, id: ItemId, json: &str) -> Result<(), StorageError> {
        if id > self.last_item_id()? {
            self.counters()?
                .insert(LAST_ITEM_ID, id)
                .map_err(storage_error)?;
        }
        self.items()?.insert(id, json).map_err(storage_error)?;
        Ok(())
    }

    fn insert_reading(
        &mut self,
        sensor: &str,
        micros: i64,
        temperature: Temperature,
        touched: &mut HashMap<String, Touched>,
    ) -> Result<(), StorageError> {
        self.readings
            .insert((sensor, micros), temperature.micros())
            .map_err(storage_error)?;
        self.count_reading(sensor, temperature, touched)
    }

    /// Adds a new reading to its sensor's aggregate in `touched`.
    fn count_reading(
        &mut self,
        sensor: &str,
        temperature: Temperature,
        touched: &mut HashMap<String, Touched>,
    ) -> Result<(), StorageError> {
        let entry = match touched.get_mut(sensor) {
            Some(entry) => entry,
            None => {
                let stored = match self.cache.get(sensor) {
                    Some(cached) => *cached,
                    None => read_aggregate(&self.sensors, sensor)?,
                };
                touched.entry(sensor.to_owned()).or_insert(Touched {
                    before: stored,
                    after: stored,
                })
            }
        };
        entry.after.add(temperature);
        Ok(())
    }

    /// Writes back the touched sensors' aggregates and the total they change.
    fn write_aggregates(&mut self, touched: &HashMap<String, Touched>) -> Result<(), StorageError> {
        if touched.is_empty() {
            return Ok(());
        }
        let mut total = read_aggregate(&self.totals, TOTAL_KEY)?;
        let total_before = total;
        for (sensor, Touched { before, after }) in touched {
            let aggregate = after;
            total = total.merge(&Aggregate {
                count: aggregate.count - before.count,
                sum_micros: aggregate.sum_micros - before.sum_micros,
                min_micros: aggregate.min_micros,
                max_micros: aggregate.max_micros,
            });
            self.sensors
                .insert(sensor.as_str(), aggregate.encode().as_slice())
                .map_err(storage_error)?;
        }
        if total != total_before {
            self.totals
                .insert(TOTAL_KEY, total.encode().as_slice())
                .map_err(storage_error)?;
        }
        Ok(())
    }

    /// Checks a request's readings against stored ones, then inserts the new ones, all or
    /// nothing, and logs them.
    fn put_batch(
        &mut self,
        batch: &Batch,
        touched: &mut HashMap<String, Touched>,
        ops: &mut Vec<u8>,
    ) -> Result<PutOutcome, StorageError> {
        // Insert first, look at what was there after: one B-tree descent per reading instead of
        // a lookup and then an insert. A conflict puts the stored value back, and any conflict
        // undoes the request's fresh inserts (all or nothing; keys are unique within a batch).
        let mut fresh = Vec::with_capacity(batch.readings.len());
        let mut conflicts = Vec::new();
        let mut duplicates = batch.repeats;
        for (index, reading) in &batch.readings {
            let key = (reading.sensor_id.as_str(), reading.time.micros());
            let incoming = reading.temperature.micros();
            let previous = self
                .readings
                .insert(key, incoming)
                .map_err(storage_error)?
                .map(|stored| stored.value());
            match previous {
                None => fresh.push(reading),
                Some(stored) if stored == incoming => duplicates += 1,
                Some(stored) => {
                    self.readings.insert(key, stored).map_err(storage_error)?;
                    let stored = Reading {
                        temperature: Temperature::from_micros(stored)
                            .map_err(StorageError::Internal)?,
                        ..reading.clone()
                    };
                    conflicts.push(Conflict::between(*index, reading, &stored));
                }
            }
        }
        if !conflicts.is_empty() {
            for reading in fresh {
                let key = (reading.sensor_id.as_str(), reading.time.micros());
                self.readings.remove(key).map_err(storage_error)?;
            }
            return Ok(PutOutcome::Conflict(conflicts));
        }
        for reading in &fresh {
            let (sensor, micros) = (reading.sensor_id.as_str(), reading.time.micros());
            self.count_reading(sensor, reading.temperature, touched)?;
            op::reading(ops, sensor, micros, reading.temperature.micros());
        }
        Ok(PutOutcome::Stored {
            stored: fresh.len(),
            duplicates,
        })
    }
}

/// The log record's operations: what a group changed, enough to redo it.
mod op {
    use super::StorageError;

    const READING: u8 = 1;
    const ITEM_PUT: u8 = 2;
    const ITEM_DELETE: u8 = 3;

    pub enum Op<'a> {
        Reading {
            sensor: &'a str,
            micros: i64,
            temperature: i64,
        },
        ItemPut {
            id: u64,
            json: &'a str,
        },
        ItemDelete {
            id: u64,
        },
    }

    fn text(ops: &mut Vec<u8>, text: &str) {
        ops.extend_from_slice(&(text.len() as u32).to_le_bytes());
        ops.extend_from_slice(text.as_bytes());
    }

    pub fn reading(ops: &mut Vec<u8>, sensor: &str, micros: i64, temperature: i64) {
        ops.push(READING);
        text(ops, sensor);
        ops.extend_from_slice(&micros.to_le_bytes());
        ops.extend_from_slice(&temperature.to_le_bytes());
    }

    pub fn item_put(ops: &mut Vec<u8>, id: u64, json: &str) {
        ops.push(ITEM_PUT);
        ops.extend_from_slice(&id.to_le_bytes());
        text(ops, json);
    }

    pub fn item_delete(ops: &mut Vec<u8>, id: u64) {
        ops.push(ITEM_DELETE);
        ops.extend_from_slice(&id.to_le_bytes());
    }

    fn corrupt() -> StorageError {
        StorageError::Internal("corrupt write-ahead log record (its checksum matched)".into())
    }

    fn take<'a>(ops: &mut &'a [u8], n: usize) -> Result<&'a [u8], StorageError> {
        if ops.len() < n {
            return Err(corrupt());
        }
        let (head, rest) = ops.split_at(n);
        *ops = rest;
        Ok(head)
    }

    fn u64_of(ops: &mut &[u8]) -> Result<u64, StorageError> {
        Ok(u64::from_le_bytes(
            take(ops, 8)?.try_into().expect("8 bytes"),
        ))
    }

    fn text_of<'a>(ops: &mut &'a [u8]) -> Result<&'a str, StorageError> {
        let len = u32::from_le_bytes(take(ops, 4)?.try_into().expect("4 bytes")) as usize;
        std::str::from_utf8(take(ops, len)?).map_err(|_| corrupt())
    }

    /// Decodes the next operation and advances `ops` past it.
    pub fn decode<'a>(ops: &mut &'a [u8]) -> Result<Op<'a>, StorageError> {
        match take(ops, 1)?[0] {
            READING => Ok(Op::Reading {
                sensor: text_of(ops)?,
                micros: u64_of(ops)? as i64,
                temperature: u64_of(ops)? as i64,
            }),
            ITEM_PUT => Ok(Op::ItemPut {
                id: u64_of(ops)?,
                json: text_of(ops)?,
            }),
            ITEM_DELETE => Ok(Op::ItemDelete { id: u64_of(ops)? }),
            _ => Err(corrupt()),
        }
    }
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
        Self::open_with(dir, cache_bytes, on_group, CHECKPOINT_EVERY)
    }

    /// [`Self::open`] with a checkpoint interval (tests use a long one to keep groups in the log).
    fn open_with(
        dir: &Path,
        cache_bytes: usize,
        on_group: GroupObserver,
        checkpoint_every: Duration,
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
        let log_path = dir.join(LOG_FILE_NAME);
        let (mut log, records) = Log::open(&log_path).map_err(|e| {
            StorageError::Unavailable(format!("cannot open {}: {e}", log_path.display()))
        })?;
        // One fsync'd transaction creates the tables (readers then open them without special
        // cases) and redoes the log records newer than the last checkpoint.
        let txn = db.begin_write().map_err(storage_error)?;
        let (sequence, replayed) = {
            let mut tables = Tables::open(&txn)?;
            tables.items()?; // created here if new, like every table
            let checkpointed = tables
                .counters()?
                .get(WAL_SEQUENCE)
                .map_err(storage_error)?
                .map_or(0, |v| v.value());
            let mut sequence = checkpointed;
            for (number, ops) in &records {
                // The log continues the checkpoint with consecutive numbers; anything else (an
                // older record left after a rewind) ends it.
                if *number != sequence + 1 {
                    break;
                }
                tables.replay(ops)?;
                sequence = *number;
            }
            if sequence != checkpointed {
                tables
                    .counters()?
                    .insert(WAL_SEQUENCE, sequence)
                    .map_err(storage_error)?;
            }
            (sequence, sequence - checkpointed)
        };
        txn.commit().map_err(storage_error)?;
        if replayed > 0 {
            tracing::info!(replayed, sequence, "replayed the write-ahead log");
        }
        log.rewind().map_err(log_error)?;
        let db = Arc::new(db);
        let failed = Arc::new(AtomicBool::new(false));
        // Room for one group waiting behind the fsync in progress: the writer applies the next
        // group during the fsync, then lets writes pile up into a bigger group instead of
        // running ahead with small ones (fewer, larger transactions; +7 % PUT/s at 64 clients,
        // 3 alternating A/B runs). A queue of 0 (a rendezvous) was worse: -20 %.
        let (syncer, queue) = std::sync::mpsc::sync_channel(1);
        let file = log.sync_handle().map_err(log_error)?;
        let syncer_failed = failed.clone();
        let syncer_thread = std::thread::Builder::new()
            .name("embedded-log-sync".into())
            .spawn(move || run_syncer(file, queue, syncer_failed))
            .map_err(|e| StorageError::Internal(format!("cannot start the log syncer: {e}")))?;
        let writer = Writer {
            db: db.clone(),
            log,
            sequence,
            last_checkpoint: Instant::now(),
            checkpoint_every,
            ops: Vec::new(),
            appended: 0,
            syncer: Some(syncer),
            syncer_thread: Some(syncer_thread),
            failed,
            aggregates: HashMap::new(),
        };
        let (commit, thread) =
            GroupCommit::spawn_thread(writer, "embedded-writer", WRITE_QUEUE, MAX_GROUP, on_group)
                .map_err(|e| {
                    StorageError::Internal(format!("cannot start the writer thread: {e}"))
                })?;
        Ok(Self {
            writer: Arc::new(WriterHandle {
                commit: Some(commit),
                thread: Some(thread),
            }),
            db,
        })
    }

    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StorageError>>) -> Write,
    ) -> Result<T, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.writer.commit().submit(make(reply)).await?;
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

#[cfg(test)]
mod tests {
    //! Crash recovery through the write-ahead log. A crash is simulated by assembling a data
    //! directory from the database file as it was at some durable point (right after open, or
    //! after a clean close) and the log file as it is after the writes were acknowledged: all a
    //! power cut could leave if redb had made nothing durable since. Every acknowledged write
    //! must be back after opening it.

    use std::fs;

    use serde_json::{Value, json};

    use super::*;
    use crate::storage::group_commit::unobserved;

    const CACHE: usize = 1 << 20;
    /// No checkpoint during a test: every acknowledged group is only in the log.
    const NEVER: Duration = Duration::from_secs(3_600);

    fn open(dir: &Path) -> EmbeddedStore {
        EmbeddedStore::open_with(dir, CACHE, unobserved(), NEVER).expect("the store opens")
    }

    fn reading(sensor: &str, second: usize, milli: i64) -> Value {
        json!({
            "sensorID": sensor,
            "time": format!("2021-10-04 {:02}:{:02}:{:02}", second / 3600, second / 60 % 60, second % 60),
            "temperature": milli as f64 / 1000.0,
        })
    }

    async fn put(store: &EmbeddedStore, body: Value) -> PutOutcome {
        store
            .put_readings(Batch::parse(&body).expect("a valid batch"))
            .await
            .expect("the write is acknowledged")
    }

    /// The data directory a crash would leave: `redb` bytes from a durable point, `from`'s log.
    fn crashed_copy(from: &Path, redb: &[u8], to: &Path) {
        fs::create_dir_all(to).unwrap();
        fs::write(to.join(FILE_NAME), redb).unwrap();
        fs::copy(from.join(LOG_FILE_NAME), to.join(LOG_FILE_NAME)).unwrap();
    }

    fn sensor(name: &str) -> SensorId {
        SensorId::from_text(name).unwrap()
    }

    async fn count_of(store: &EmbeddedStore, name: &str) -> usize {
        store
            .readings(ReadingsQuery {
                sensor_id: sensor(name),
                from: None,
                to: None,
                after: None,
                limit: 10_000,
            })
            .await
            .unwrap()
            .readings
            .len()
    }

    /// 16 concurrent writers × 25 readings, a batch, a duplicate, a conflict, and items.
    /// Returns the aggregate over every stored reading.
    async fn write_a_mix(store: &EmbeddedStore) -> Aggregate {
        let mut tasks = Vec::new();
        for writer in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut temperatures = Vec::new();
                for i in 0..25 {
                    let milli = (writer * 1_000 + i * 37) as i64 - 4_000;
                    let outcome = put(&store, reading(&format!("w{writer}"), i, milli)).await;
                    assert_eq!(
                        outcome,
                        PutOutcome::Stored {
                            stored: 1,
                            duplicates: 0
                        }
                    );
                    temperatures.push(Temperature::from_micros(milli * 1_000).unwrap());
                }
                temperatures
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        let batch = json!([
            reading("b", 1, 1_500),
            reading("b", 2, -2_250),
            reading("c", 1, 0)
        ]);
        assert_eq!(
            put(store, batch).await,
            PutOutcome::Stored {
                stored: 3,
                duplicates: 0
            }
        );
        all.extend([1_500, -2_250, 0].map(|m| Temperature::from_micros(m * 1_000).unwrap()));
        assert_eq!(
            put(store, reading("b", 1, 1_500)).await,
            PutOutcome::Stored {
                stored: 0,
                duplicates: 1
            }
        );
        assert!(matches!(
            put(store, reading("b", 2, 9_000)).await,
            PutOutcome::Conflict(_)
        ));
        for name in ["one", "two", "three"] {
            store
                .item_put(json!({ "name": name }).as_object().unwrap().clone())
                .await
                .unwrap();
        }
        assert!(store.item_delete(2).await.unwrap());
        Aggregate::of(all)
    }

    async fn assert_the_mix_is_there(store: &EmbeddedStore, expected: Aggregate) {
        assert_eq!(store.stats(None).await.unwrap(), expected);
        assert_eq!(store.scan_stats(None).await.unwrap(), expected);
        for writer in 0..16 {
            let name = format!("w{writer}");
            assert_eq!(count_of(store, &name).await, 25, "{name}");
            assert_eq!(
                store.stats(Some(&sensor(&name))).await.unwrap(),
                store.scan_stats(Some(&sensor(&name))).await.unwrap()
            );
        }
        let b = store.stats(Some(&sensor("b"))).await.unwrap();
        assert_eq!(
            (b.count, b.max_micros),
            (2, Some(1_500_000)),
            "no conflict stored"
        );
        assert!(store.item_get(1).await.unwrap().is_some());
        assert!(
            store.item_get(2).await.unwrap().is_none(),
            "the delete is replayed"
        );
        assert_eq!(store.item_get(3).await.unwrap().unwrap()["name"], "three");
    }

    /// GUIDE §2: stats come from the stored aggregates, never from the readings, and start-up
    /// does not rebuild them. Deleting the readings behind the store's back shows it: a scan
    /// finds nothing, the stats still count everything, before and after a restart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stats_come_from_stored_aggregates_not_from_the_readings() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let body = json!([
            reading("a", 1, 1_500),
            reading("a", 2, 2_500),
            reading("b", 1, -1_000)
        ]);
        put(&store, body).await;
        let expected = store.stats(None).await.unwrap();
        assert_eq!(expected.count, 3);
        {
            let txn = store.db.begin_write().unwrap();
            txn.delete_table(READINGS).unwrap();
            txn.open_table(READINGS).unwrap();
            txn.commit().unwrap();
        }
        assert_eq!(
            store.scan_stats(None).await.unwrap().count,
            0,
            "the readings are gone"
        );
        assert_eq!(store.stats(None).await.unwrap(), expected);
        assert_eq!(store.stats(Some(&sensor("a"))).await.unwrap().count, 2);
        drop(store);
        let store = open(dir.path());
        assert_eq!(store.scan_stats(None).await.unwrap().count, 0);
        assert_eq!(
            store.stats(None).await.unwrap(),
            expected,
            "start-up rebuilt nothing"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledged_writes_come_back_from_the_log_when_redb_lost_them() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = open(a.path());
        let redb_at_open = fs::read(a.path().join(FILE_NAME)).unwrap();
        let expected = write_a_mix(&store).await;
        crashed_copy(a.path(), &redb_at_open, b.path());
        drop(store);

        let recovered = open(b.path());
        assert_the_mix_is_there(&recovered, expected).await;
        // Item ids go on after the replayed ones.
        let id = recovered
            .item_put(json!({"name": "four"}).as_object().unwrap().clone())
            .await
            .unwrap();
        assert_eq!(id, 4);
        drop(recovered);
        // Opening again (after a clean close, with the old records still in the file) replays
        // nothing twice.
        let reopened = open(b.path());
        assert_eq!(reopened.stats(None).await.unwrap(), expected);
        // The original directory, closed cleanly, holds the same.
        drop(reopened);
        assert_the_mix_is_there(&open(a.path()), expected).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_torn_last_record_is_dropped_and_the_store_goes_on() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = open(a.path());
        let redb_at_open = fs::read(a.path().join(FILE_NAME)).unwrap();
        let expected = write_a_mix(&store).await;
        // The last record: one reading, whose fsync the crash interrupts.
        put(&store, reading("torn", 1, 20_000)).await;
        crashed_copy(a.path(), &redb_at_open, b.path());
        drop(store);
        let log = b.path().join(LOG_FILE_NAME);
        let length = fs::metadata(&log).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(length - 5)
            .unwrap();

        let recovered = open(b.path());
        assert_the_mix_is_there(&recovered, expected).await;
        assert_eq!(count_of(&recovered, "torn").await, 0);
        // New writes go on from there, and survive the next crash as well.
        let redb_now = {
            drop(recovered);
            fs::read(b.path().join(FILE_NAME)).unwrap()
        };
        let store = open(b.path());
        put(&store, reading("torn", 1, 20_000)).await;
        put(&store, reading("after", 1, 21_000)).await;
        let c = tempfile::tempdir().unwrap();
        crashed_copy(b.path(), &redb_now, c.path());
        drop(store);
        let recovered = open(c.path());
        assert_eq!(count_of(&recovered, "torn").await, 1);
        assert_eq!(count_of(&recovered, "after").await, 1);
        assert_eq!(
            recovered.stats(None).await.unwrap().count,
            expected.count + 2
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_checkpoint_the_log_restarts_and_stale_records_are_not_replayed() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // A long first record, checkpointed by the clean close...
        let store = open(a.path());
        let long: Vec<Value> = (0..200).map(|i| reading("long", i, 1_000)).collect();
        put(&store, Value::Array(long)).await;
        drop(store);
        // ...then a short one written over its start: the rest of the long one is stale.
        let store = open(a.path());
        let redb_checkpointed = fs::read(a.path().join(FILE_NAME)).unwrap();
        put(&store, reading("short", 1, 2_000)).await;
        crashed_copy(a.path(), &redb_checkpointed, b.path());
        drop(store);

        let recovered = open(b.path());
        let total = recovered.stats(None).await.unwrap();
        assert_eq!(total.count, 201);
        assert_eq!(total, recovered.scan_stats(None).await.unwrap());
        assert_eq!(count_of(&recovered, "short").await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_a_checkpoint_every_group_nothing_depends_on_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), CACHE, unobserved(), Duration::ZERO)
            .expect("the store opens");
        let expected = write_a_mix(&store).await;
        // The database file alone, with an empty log, holds everything.
        let redb_now = fs::read(dir.path().join(FILE_NAME)).unwrap();
        drop(store);
        let copy = tempfile::tempdir().unwrap();
        fs::write(copy.path().join(FILE_NAME), redb_now).unwrap();
        assert_the_mix_is_there(&open(copy.path()), expected).await;
    }
}
