//! The default backend: one `redb` database file and one write-ahead log under `DATA_DIR`.
//!
//! redb is a pure-Rust, copy-on-write B-tree with ACID transactions. Readings, the per-sensor
//! aggregates, the global aggregate, `/picus` items and their id counter live in one file, and
//! every group of writes is one transaction: aggregates can never drift from the readings.
//!
//! The tables and their encoding are described in [`tables`].
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
//!    sequence number and the changes, framed with a length and a CRC-32 ([`wal`]) — and
//!    the transaction is committed with `Durability::None` (no fsync; visible to later
//!    transactions and readers). The writer also keeps recently written sensors' committed
//!    aggregates in memory (it is redb's only writer), saving a lookup per new reading, and
//!    keeps the group's in-order readings in memory until the next checkpoint instead of
//!    rewriting their blocks every group ([`recent`]: readers see them with the commit that
//!    counted them).
//! 2. A second thread, the **syncer**, takes every group committed so far, `fdatasync`s the
//!    log once, and only then answers their callers, in commit order. Meanwhile the writer
//!    applies the next group: the fsync overlaps the next group's B-tree work. At most one
//!    committed group waits behind the fsync in progress; then the writer waits too, and writes
//!    pile up into a larger group (fewer transactions under load). A write answered
//!    "duplicate" or "conflict" waits for the same fsync, so it never rests on a reading that
//!    is not yet durable. **200 still means durable**: the log record is on disk.
//! 3. Every 250 ms (or 64 MiB of log), the group's transaction is committed with
//!    `Durability::Immediate` instead: a **checkpoint**, which writes the writer's recent
//!    readings to their blocks and makes that group and every earlier non-durable commit
//!    durable in redb; every commit stores in `counters` the sequence number of the last record
//!    it contains; after a checkpoint the log starts over at offset 0. A clean
//!    shutdown ends with a checkpoint (dropping the last store handle waits for it).
//! 4. **On open**, redb comes back at its last durable commit after a crash (non-durable
//!    commits live only in the process), or at its last commit after a close (redb makes the
//!    pending non-durable commits durable then), with the sequence number `S` of the last
//!    record it contains; the log's records `S+1, S+2, ...` are replayed in one fsync'd
//!    transaction, up to the first torn, corrupt or out-of-sequence record (a stale record left
//!    after a rewind has a smaller number). A state that counted readings still in the
//!    writer's memory gets them written to their blocks from the log first ([`recent`]). A torn record was never acknowledged: its callers were answered only after the
//!    `fdatasync` that would have covered it. Replay is exact (by sequence number) and would be
//!    harmless anyway: readings are immutable and items carry their ids. A damaged record with
//!    newer records after it, or a missing database beside a log that holds records, stops
//!    start-up instead ([`recovery`]).
//!
//! Caveats:
//! - **Visibility before durability**: a reader may see a group (e.g. in `GET /api/stats`) up
//!   to three `fdatasync`s (under 1 ms) before its writers are answered; if the process dies in
//!   that window the group is lost and the reader saw something that was never acknowledged. No
//!   acknowledged write is ever lost, and no answer depends on an undurable one.
//! - If the log's `fdatasync` fails, nothing is acknowledged any more (every later write gets
//!   503) until the store is reopened and the log replayed into an fsync'd redb commit
//!   ([`health`]); retrying an fsync after a failure can report success for lost data
//!   (PostgreSQL's "fsyncgate"), so the log is never trusted again before that commit.
//! - A storage fault (a full disk, an I/O error) makes the store unavailable (503 +
//!   `Retry-After`, not ready) until the writer has reopened it: see [`health`].
//! - If a redb commit fails after its record was written, the record is overwritten by the
//!   next one; a crash before that would replay writes whose callers got an error (which only
//!   ever means "outcome unknown, retry": readings are idempotent).
//!
//! # Files
//! - this file: the store's API; each call is a read transaction or a write queued to the writer;
//! - [`writer`]: the writer and syncer threads (group commit, checkpoints);
//! - [`recent`]: the sensors' newest in-order readings, kept by the writer in memory between
//!   checkpoints, and how readers pair them with their transactions;
//! - [`tables`]: the redb tables, their encoding and what a write transaction does to them;
//! - [`wal`]: the log's frame; [`record`]: the log record's payload (what a group changed);
//! - [`recovery`]: the replay on open, and what start-up refuses;
//! - [`health`]: storage faults, the reopen that recovers from them, and the threads' liveness;
//! - [`verify`]: the offline check of aggregates and rollups against the readings;
//! - [`rollups`]: the rollup tables behind windows and series, and their one-time build for a
//!   store written before they existed ([`build`] drives it); [`partials`]: each sensor's
//!   current buckets, kept in its summary row;
//! - [`retention`]: the background sweep that deletes expired readings and rollup rows.

mod build;
mod health;
mod partials;
mod reading_blocks;
mod recent;
mod record;
mod recovery;
mod retention;
mod rollups;
mod second_blocks;
mod tables;
#[cfg(test)]
mod tests;
mod verify;
mod wal;
mod writer;

pub use self::recovery::RecoveryOptions;
pub use self::verify::{Verification, verify};

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redb::{Database, ReadableDatabase};
use tokio::sync::oneshot;

use self::health::Health;
use self::reading_blocks::READING_BLOCKS;
use self::recent::RecentReadings;
use self::recovery::Truncation;
use self::rollups::{Coverage, decode_summary};
use self::tables::{ITEMS, READINGS, SENSOR_AGGREGATES, TOTAL_KEY, TOTALS, read_aggregate};
use self::wal::Log;
use self::writer::{CHECKPOINT_EVERY, QueuedWrite, WriterHandle};
use super::group_commit::GroupObserver;
use super::{
    Cause, ItemId, ItemPageBuilder, ItemText, ItemsPage, PutOutcome, ReadingsPage, ReadingsQuery,
    SensorsPage, StorageError, Store, item_text, trim_page,
};
use crate::domain::retention::Retention;
use crate::domain::rollup;
use crate::domain::window::{Piece, SeriesPlan, Span, plan};
use crate::domain::{Aggregate, Batch, Reading, SensorId, SensorSummary, Temperature, Timestamp};
use crate::metrics::Metrics;

/// The database file inside `DATA_DIR`.
pub const FILE_NAME: &str = "telemetry.redb";
/// The write-ahead log inside `DATA_DIR`.
pub const LOG_FILE_NAME: &str = "telemetry.wal";

#[derive(Clone)]
pub struct EmbeddedStore {
    writer: Arc<WriterHandle>,
    /// The database (reopened after a fault), the fault if any, the threads' liveness.
    health: Arc<Health>,
    /// True while the one-time rollup build runs (see [`rollups`]): windows wait for it.
    building: Arc<AtomicBool>,
}

impl EmbeddedStore {
    /// Until the rollup build is done, windows, series and sensor summaries are not answered.
    fn rollups_ready(&self) -> Result<(), StorageError> {
        if self.building.load(Ordering::SeqCst) {
            Err(StorageError::Unavailable(
                "the rollups of a store written by the previous version are being built (see \
                 the log for progress)"
                    .into(),
            ))
        } else {
            Ok(())
        }
    }

    /// The readings with `window.from <= time < window.to`: whole rollup buckets plus the raw
    /// readings of the partial buckets at the edges, in one read transaction.
    pub async fn window_stats(
        &self,
        sensor: Option<&SensorId>,
        window: Span,
    ) -> Result<Aggregate, StorageError> {
        self.rollups_ready()?;
        let sensor = sensor.cloned();
        self.read_readings(move |txn, recent| {
            let name = sensor.as_ref().map(SensorId::as_str);
            let pieces = plan(window, rollup::levels(name.is_some()));
            let mut total = Aggregate::default();
            rollups::evaluate(txn, recent, name, &pieces, |_, a| total = total.merge(a))?;
            Ok(total)
        })
        .await
    }

    /// One aggregate per bucket of `plan`, in one read transaction.
    pub async fn series(
        &self,
        sensor: Option<&SensorId>,
        plan: &SeriesPlan,
    ) -> Result<Vec<Aggregate>, StorageError> {
        self.rollups_ready()?;
        let sensor = sensor.cloned();
        let plan = plan.clone();
        self.read_readings(move |txn, recent| {
            let mut buckets = plan.empty();
            let pieces: &[Piece] = &plan.pieces;
            rollups::evaluate(
                txn,
                recent,
                sensor.as_ref().map(SensorId::as_str),
                pieces,
                |at, a| buckets.add(at, a),
            )?;
            Ok(buckets.into_aggregates())
        })
        .await
    }

    /// Sensors in id order after `after`, with their summaries.
    pub async fn sensors(
        &self,
        after: Option<&SensorId>,
        limit: usize,
    ) -> Result<SensorsPage, StorageError> {
        self.rollups_ready()?;
        let after = after.cloned();
        self.read(move |txn| {
            let table = txn.open_table(SENSOR_AGGREGATES).map_err(storage_error)?;
            let range = match &after {
                Some(after) => table.range::<&str>((
                    std::ops::Bound::Excluded(after.as_str()),
                    std::ops::Bound::Unbounded,
                )),
                None => table.range::<&str>(..),
            }
            .map_err(storage_error)?;
            let wanted = limit.saturating_add(1);
            let mut found = Vec::with_capacity(wanted.min(1_024));
            for entry in range.take(wanted) {
                let (key, value) = entry.map_err(storage_error)?;
                let sensor = SensorId::from_text(key.value())
                    .map_err(|e| StorageError::Internal(e.into()))?;
                let summary = decode_summary(value.value(), key.value())?;
                found.push((sensor, summary));
            }
            let (sensors, next) = trim_page(found, limit, |(sensor, _)| sensor.clone());
            Ok(SensorsPage { sensors, next })
        })
        .await
    }

    /// One sensor's summary; `None` when it has no reading.
    pub async fn sensor(&self, sensor: &SensorId) -> Result<Option<SensorSummary>, StorageError> {
        self.rollups_ready()?;
        let sensor = sensor.clone();
        self.read(move |txn| {
            let table = txn.open_table(SENSOR_AGGREGATES).map_err(storage_error)?;
            match table.get(sensor.as_str()).map_err(storage_error)? {
                None => Ok(None),
                Some(bytes) => decode_summary(bytes.value(), sensor.as_str()).map(Some),
            }
        })
        .await
    }

    /// Opens (or creates) the database in `dir`. Start-up reads no readings: aggregates are stored.
    pub fn open(
        dir: &Path,
        cache_bytes: usize,
        on_group: GroupObserver,
    ) -> Result<Self, StorageError> {
        Self::open_with(
            dir,
            cache_bytes,
            on_group,
            CHECKPOINT_EVERY,
            RecoveryOptions::default(),
        )
    }

    /// [`Self::open`], with what start-up may do when it would drop data (see [`recovery`]).
    pub fn open_recovering(
        dir: &Path,
        cache_bytes: usize,
        on_group: GroupObserver,
        options: RecoveryOptions,
    ) -> Result<Self, StorageError> {
        Self::open_with(dir, cache_bytes, on_group, CHECKPOINT_EVERY, options)
    }

    /// [`Self::open`] with a checkpoint interval (tests use a long one to keep groups in the log).
    fn open_with(
        dir: &Path,
        cache_bytes: usize,
        on_group: GroupObserver,
        checkpoint_every: Duration,
        options: RecoveryOptions,
    ) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StorageError::Unavailable(Cause::new(format!("cannot create {}", dir.display()), e))
        })?;
        let path = dir.join(FILE_NAME);
        let log_path = dir.join(LOG_FILE_NAME);
        let database_missing = std::fs::metadata(&path).map_or(true, |m| m.len() == 0);
        let (mut log, contents) = Log::open(&log_path).map_err(|e| {
            StorageError::Unavailable(Cause::new(format!("cannot open {}", log_path.display()), e))
        })?;
        if database_missing && !contents.records.is_empty() {
            let problem = format!(
                "{} is missing or empty but {} holds {} records",
                path.display(),
                log_path.display(),
                contents.records.len()
            );
            if !options.allow_empty_database {
                return Err(StorageError::Internal(
                    format!(
                        "{problem}: acknowledged data would be lost; restore the database file, \
                         or set RECOVERY_ALLOW_EMPTY_DATABASE=true to start with an empty one"
                    )
                    .into(),
                ));
            }
            let kept = keep_copy(&log_path, "discarded")?;
            tracing::warn!(
                kept = %kept.display(),
                "{problem}: starting with an empty database (RECOVERY_ALLOW_EMPTY_DATABASE=true)"
            );
        }
        let db = open_database(&path, cache_bytes)?;
        // One fsync'd transaction creates the tables (readers then open them without special
        // cases) and redoes the log records newer than the last checkpoint.
        let (sequence, coverage) = recovery::recover(&db, &contents, |truncation| {
            refuse_or_truncate(&log_path, truncation, options)
        })?;
        log.rewind().map_err(log_error)?;
        let generation = recent::stored_generation(&db.begin_read().map_err(storage_error)?)?;
        let db = Arc::new(db);
        let health = Health::new(db.clone(), generation);
        let building = Arc::new(AtomicBool::new(coverage != Coverage::Complete));
        let writer = Arc::new(WriterHandle::start(
            writer::Reopen {
                path,
                cache_bytes,
                health: health.clone(),
            },
            db.clone(),
            log,
            writer::Recovered {
                sequence,
                generation,
                coverage,
            },
            checkpoint_every,
            on_group,
        )?);
        if building.load(Ordering::SeqCst) {
            build::start(Arc::downgrade(&writer), building.clone(), db)?;
        }
        Ok(Self {
            writer,
            health,
            building,
        })
    }

    /// Starts the background sweep that deletes what `retention` no longer keeps (nothing when
    /// it keeps everything). See [`retention`].
    pub fn start_retention(
        &self,
        retention: Retention,
        metrics: Metrics,
    ) -> Result<(), StorageError> {
        retention::start(
            Arc::downgrade(&self.writer),
            self.building.clone(),
            retention,
            metrics,
        )
    }

    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StorageError>>) -> QueuedWrite,
    ) -> Result<T, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.writer.commit().submit(make(reply)).await?;
        // Dropped unanswered: the writer or the syncer stopped (a panic) with the write in hand.
        answer.await.map_err(|_| {
            StorageError::Unavailable("the storage writer stopped before answering".into())
        })?
    }

    /// Runs a read-only closure on a blocking thread with a fresh read transaction and the
    /// writer's recent readings that go with it: for every read of raw readings (see
    /// [`recent`]).
    async fn read_readings<T: Send + 'static>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction, &RecentReadings) -> Result<T, StorageError>
        + Send
        + 'static,
    ) -> Result<T, StorageError> {
        let health = self.health.clone();
        tokio::task::spawn_blocking(move || {
            let (txn, recent) = health.snapshot()?;
            f(&txn, &recent)
        })
        .await
        .map_err(join_error)?
    }

    /// Runs a read-only closure on a blocking thread with a fresh read transaction.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let health = self.health.clone();
        tokio::task::spawn_blocking(move || {
            // The handle is dropped at once: the writer may have to close the database.
            let txn = health.database()?.begin_read().map_err(storage_error)?;
            f(&txn)
        })
        .await
        .map_err(join_error)?
    }
}

impl Store for EmbeddedStore {
    fn accepting_writes(&self) -> Result<(), StorageError> {
        self.writer.commit().accepting()
    }

    async fn put_readings(&self, batch: Batch) -> Result<PutOutcome, StorageError> {
        self.write(|reply| QueuedWrite::Readings { batch, reply })
            .await
    }

    async fn stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError> {
        let sensor = sensor.cloned();
        self.read(move |txn| match sensor {
            None => read_aggregate(&txn.open_table(TOTALS).map_err(storage_error)?, TOTAL_KEY),
            Some(sensor) => {
                let table = txn.open_table(SENSOR_AGGREGATES).map_err(storage_error)?;
                match table.get(sensor.as_str()).map_err(storage_error)? {
                    None => Ok(Aggregate::default()),
                    Some(bytes) => Ok(decode_summary(bytes.value(), sensor.as_str())?.aggregate),
                }
            }
        })
        .await
    }

    /// Benchmark baseline only: the aggregate computed by reading every stored reading (all of
    /// them, or one sensor's), as the original service did on every stats call. The service
    /// never calls this; `benches/http_load.rs` times it against [`Self::stats`].
    async fn scan_stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError> {
        let sensor = sensor.cloned();
        self.read_readings(move |txn, recent| {
            let rows = txn.open_table(READINGS).map_err(storage_error)?;
            let blocks = txn.open_table(READING_BLOCKS).map_err(storage_error)?;
            // One sensor's readings are collected (a range merges rows, blocks and the recent
            // readings); the whole store's are streamed, the recent ones after them (an
            // aggregate does not depend on the order).
            let values: Box<dyn Iterator<Item = Result<i64, StorageError>>> = match &sensor {
                None => Box::new(
                    reading_blocks::all(&rows, &blocks)?
                        .map(|reading| reading.map(|(_, _, value)| value))
                        .chain(recent.values().map(Ok)),
                ),
                Some(s) => Box::new(
                    reading_blocks::range(
                        &rows,
                        &blocks,
                        recent.of(s.as_str()),
                        s.as_str(),
                        i64::MIN,
                        Bound::Unbounded,
                        usize::MAX,
                    )?
                    .into_iter()
                    .map(|(_, value)| Ok(value)),
                ),
            };
            let mut aggregate = Aggregate::default();
            for value in values {
                let value = value?;
                aggregate.add(
                    Temperature::from_micros(value)
                        .map_err(|e| StorageError::Internal(e.into()))?,
                );
            }
            Ok(aggregate)
        })
        .await
    }

    async fn readings(&self, query: ReadingsQuery) -> Result<ReadingsPage, StorageError> {
        self.read_readings(move |txn, recent| {
            let rows = txn.open_table(READINGS).map_err(storage_error)?;
            let blocks = txn.open_table(READING_BLOCKS).map_err(storage_error)?;
            let sensor = query.sensor_id.as_str();
            let start = match (query.from, query.after) {
                (from, Some(after)) => {
                    from.map_or(after.micros() + 1, |f| f.micros().max(after.micros() + 1))
                }
                (Some(from), None) => from.micros(),
                (None, None) => i64::MIN,
            };
            let end = query.to.map_or(i64::MAX, |to| to.micros());
            // One more than the page: whether it is there says if more follow.
            let wanted = query.limit.saturating_add(1);
            let mut found = Vec::with_capacity(wanted.min(1_024));
            if start < end || query.to.is_none() {
                let end = if query.to.is_some() {
                    Bound::Excluded(end)
                } else {
                    Bound::Included(end)
                };
                for (micros, value) in reading_blocks::range(
                    &rows,
                    &blocks,
                    recent.of(sensor),
                    sensor,
                    start,
                    end,
                    wanted,
                )? {
                    let time = Timestamp::from_micros(micros).ok_or_else(|| {
                        StorageError::Internal(
                            format!("corrupt time {micros} for {sensor:?}").into(),
                        )
                    })?;
                    found.push(Reading {
                        sensor_id: query.sensor_id.clone(),
                        time,
                        temperature: Temperature::from_micros(value)
                            .map_err(|e| StorageError::Internal(e.into()))?,
                    });
                }
            }
            let (readings, next) = trim_page(found, query.limit, |r| r.time);
            Ok(ReadingsPage { readings, next })
        })
        .await
    }

    /// Ready when the writer and the syncer are alive, no storage fault is pending and a read
    /// transaction works. While a fault is pending, the check goes through the writer, which
    /// tries to reopen the store (at most once a second): a drained instance recovers too.
    fn alive(&self) -> Result<(), StorageError> {
        self.health.threads_alive()
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.health.threads_alive()?;
        if self.health.is_faulted() {
            self.write(|reply| QueuedWrite::Probe { reply }).await?;
        }
        self.rollups_ready()?;
        self.read(|txn| {
            txn.open_table(TOTALS).map_err(storage_error)?;
            Ok(())
        })
        .await
    }

    async fn item_put(&self, item: String) -> Result<ItemId, StorageError> {
        self.write(|reply| QueuedWrite::ItemPut { json: item, reply })
            .await
    }

    async fn item_get(&self, id: ItemId) -> Result<Option<ItemText>, StorageError> {
        self.read(move |txn| {
            let table = txn.open_table(ITEMS).map_err(storage_error)?;
            match table.get(id).map_err(storage_error)? {
                None => Ok(None),
                Some(json) => item_text(id, json.value()).map(Some),
            }
        })
        .await
    }

    async fn item_list(
        &self,
        after: Option<ItemId>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<ItemsPage, StorageError> {
        self.read(move |txn| {
            let table = txn.open_table(ITEMS).map_err(storage_error)?;
            let Some(start) = after.map_or(Some(0), |a| a.checked_add(1)) else {
                return Ok(ItemPageBuilder::new(limit, max_bytes).finish());
            };
            let mut page = ItemPageBuilder::new(limit, max_bytes);
            for entry in table.range(start..).map_err(storage_error)? {
                let (id, json) = entry.map_err(storage_error)?;
                if !page.offer(id.value(), json.value())? {
                    break;
                }
            }
            Ok(page.finish())
        })
        .await
    }

    async fn item_delete(&self, id: ItemId) -> Result<bool, StorageError> {
        self.write(|reply| QueuedWrite::ItemDelete { id, reply })
            .await
    }
}

fn storage_error(error: impl Into<redb::Error>) -> StorageError {
    match error.into() {
        // Disk full, I/O trouble: possibly transient, the client may retry. The writer reopens
        // the database once it can (see `health`).
        redb::Error::Io(io) => StorageError::Unavailable(Cause::new("I/O error", io)),
        error @ (redb::Error::PreviousIo | redb::Error::DatabaseClosed) => {
            StorageError::Unavailable(Cause::new("the database must be reopened", error))
        }
        other => StorageError::Internal(Cause::new("redb", other)),
    }
}

/// Opens (or creates) the database file.
fn open_database(path: &Path, cache_bytes: usize) -> Result<Database, StorageError> {
    Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| {
            let cause = Cause::new(format!("cannot open {}", path.display()), e);
            StorageError::Unavailable(cause)
        })
}

/// At start-up, the log is damaged with newer records after the damage: refuse, unless told to
/// truncate (then keep a copy of the log first).
fn refuse_or_truncate(
    log_path: &Path,
    Truncation { offset, dropped }: Truncation,
    options: RecoveryOptions,
) -> Result<(), StorageError> {
    let problem = format!(
        "{}: a torn or corrupt record at byte {offset} is followed by {dropped} newer records",
        log_path.display()
    );
    if !options.truncate_log {
        return Err(StorageError::Internal(
            format!(
                "{problem}, which replay would drop (after a power cut, a few at the end may be \
                 writes never acknowledged); set RECOVERY_TRUNCATE_LOG=true to replay up to byte \
                 {offset} and drop them (a copy of the log is kept)"
            )
            .into(),
        ));
    }
    let kept = keep_copy(log_path, "truncated")?;
    tracing::warn!(
        kept = %kept.display(),
        "{problem}: replaying up to the damage and dropping them (RECOVERY_TRUNCATE_LOG=true)"
    );
    Ok(())
}

/// Copies the log to `telemetry.wal.<reason>-<unix seconds>` before it is overwritten.
fn keep_copy(log_path: &Path, reason: &str) -> Result<std::path::PathBuf, StorageError> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let kept = log_path.with_file_name(format!("{LOG_FILE_NAME}.{reason}-{seconds}"));
    std::fs::copy(log_path, &kept).map_err(|e| {
        StorageError::Unavailable(Cause::new(
            format!("cannot copy the log to {}", kept.display()),
            e,
        ))
    })?;
    Ok(kept)
}

fn join_error(error: tokio::task::JoinError) -> StorageError {
    StorageError::Internal(Cause::new("storage task failed", error))
}

fn log_error(error: std::io::Error) -> StorageError {
    StorageError::Unavailable(Cause::new("write-ahead log", error))
}
