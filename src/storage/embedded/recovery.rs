//! Start-up (and the writer's reopen after a storage fault): redo the log records newer than
//! redb's last checkpoint, in one fsync'd transaction that also creates every table.
//!
//! # Refusing to lose data quietly
//!
//! Two states of `DATA_DIR` would lose acknowledged writes if start-up went on as usual, so it
//! refuses (exit 2, one line naming the problem and the variable that overrides it):
//! - the database file is missing or empty while the log holds records: the file was deleted,
//!   truncated or not restored from a backup (starting empty would look like data loss to
//!   everyone who reads the service). `RECOVERY_ALLOW_EMPTY_DATABASE=true` starts anyway with an
//!   empty database;
//! - a torn or corrupt record in the middle of the log, with newer records after it: replay
//!   stops at the damage, so those newer records would be dropped. `RECOVERY_TRUNCATE_LOG=true`
//!   replays up to the damage and drops the rest. (A power cut can leave this too: the log's
//!   last few records, written but not yet synced, may reach the disk out of order; those
//!   were never acknowledged. At most four records are in flight so: one group being synced,
//!   one more taken with it, one queued behind it, one being written. A damaged record with
//!   more after it is certain loss of acknowledged writes; with fewer, the operator decides.)
//!
//! Either way, before the log is overwritten a copy of it is kept beside it
//! (`telemetry.wal.<reason>-<unix seconds>`) so that nothing is thrown away for good. A torn
//! *last* record (a crash during an append that was never acknowledged) is not damage: it is
//! replayed up to, silently, as before.

use redb::{Database, ReadableTable};

use super::reading_blocks;
use super::recent::RECENT_SINCE;
use super::record::{self, Op};
use super::rollups::Coverage;
use super::storage_error;
use super::tables::{Appends, Tables, TouchedSensors, WAL_SEQUENCE};
use super::wal::Contents;
use crate::domain::Temperature;
use crate::storage::StorageError;

/// What start-up may do to come up when that would drop data (see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryOptions {
    /// Start with an empty database although the log holds records.
    pub allow_empty_database: bool,
    /// Replay the log up to a damaged record and drop the newer records after it.
    pub truncate_log: bool,
}

/// Why the log cannot be replayed whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Truncation {
    /// Byte position of the damaged record.
    pub(super) offset: u64,
    /// Newer records after it, which are dropped.
    pub(super) dropped: usize,
}

/// Creates the tables (readers then open them without special cases) and replays the log read
/// back, from the record after redb's last checkpoint up to the first that does not continue
/// the sequence. Returns the sequence number of the last record applied.
///
/// When the log is damaged with newer records after the damage, `allow_truncation` decides:
/// `None` refuses (nothing is committed), `Some` replays up to the damage and returns how many
/// records were dropped through it.
pub(super) fn recover(
    db: &Database,
    log: &Contents,
    allow_truncation: impl FnOnce(Truncation) -> Result<(), StorageError>,
) -> Result<(u64, Coverage), StorageError> {
    let records = &log.records;
    let txn = db.begin_write().map_err(storage_error)?;
    let (sequence, replayed, coverage) = {
        let mut tables = Tables::open(&txn)?;
        tables.items()?; // created here if new, like every table
        // Replay keeps the rollups as far as the build had got (see `rollups`).
        tables.coverage = tables.load_coverage()?;
        let counters = tables.counters()?;
        let checkpointed = counters
            .get(WAL_SEQUENCE)
            .map_err(storage_error)?
            .map_or(0, |v| v.value());
        // Set when the state is a commit that left recent readings in the writer's memory
        // (a non-durable commit that redb made durable when it was closed): the in-order
        // readings of the records after this one, up to `checkpointed`, may be missing from
        // the blocks although their summaries count them (see `recent`).
        let recent_since = counters
            .get(RECENT_SINCE)
            .map_err(storage_error)?
            .map(|v| v.value());
        let mut sequence = checkpointed;
        let mut missing = Appends::default();
        for (number, ops) in records {
            if *number <= checkpointed {
                // Applied already: only its readings that were recent may need writing.
                if recent_since.is_some_and(|since| *number > since) {
                    tables.find_missing(ops, &mut missing)?;
                }
                continue;
            }
            tables.restore(&mut missing)?;
            // The log continues the last applied record with consecutive numbers; anything
            // else (an older record left after a rewind) ends it.
            if *number != sequence + 1 {
                break;
            }
            tables.replay(ops)?;
            sequence = *number;
        }
        tables.restore(&mut missing)?;
        if recent_since.is_some() {
            tables
                .counters()?
                .remove(RECENT_SINCE)
                .map_err(storage_error)?;
        }
        if let Some(damage) = &log.damage {
            let dropped = damage.newer_records(sequence);
            if dropped > 0 {
                allow_truncation(Truncation {
                    offset: damage.offset,
                    dropped,
                })?;
            }
        }
        if sequence != checkpointed {
            tables
                .counters()?
                .insert(WAL_SEQUENCE, sequence)
                .map_err(storage_error)?;
        }
        (sequence, sequence - checkpointed, tables.coverage.clone())
    };
    txn.commit().map_err(storage_error)?;
    if replayed > 0 {
        tracing::info!(replayed, sequence, "replayed the write-ahead log");
    }
    Ok((sequence, coverage))
}

impl Tables<'_> {
    /// Adds to `missing` the readings of an applied log record that are in no table: they were
    /// the writer's recent readings, counted but lost with its memory.
    fn find_missing(&mut self, mut ops: &[u8], missing: &mut Appends) -> Result<(), StorageError> {
        while !ops.is_empty() {
            if let Op::Reading {
                sensor,
                micros,
                temperature,
            } = record::decode(&mut ops)?
                && self.stored(sensor, micros)?.is_none()
            {
                missing
                    .entry(sensor.to_owned())
                    .or_default()
                    .push((micros, temperature));
            }
        }
        Ok(())
    }

    /// Writes the readings [`Self::find_missing`] found to their blocks, where they were going
    /// (each is newer than everything in its sensor's blocks), without counting them again.
    fn restore(&mut self, missing: &mut Appends) -> Result<(), StorageError> {
        if missing.is_empty() {
            return Ok(());
        }
        let mut sensors: Vec<(String, Vec<(i64, i64)>)> = missing.drain().collect();
        sensors.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut restored = 0;
        for (sensor, mut readings) in sensors {
            readings.sort_unstable();
            restored += readings.len();
            reading_blocks::append(&mut self.blocks, &sensor, &readings)?;
        }
        tracing::info!(
            restored,
            "wrote the readings the writer held in memory at its last commit to their blocks"
        );
        Ok(())
    }

    /// Re-applies one log record (on open). Exact, because only records newer than the
    /// sequence number stored in redb are replayed; idempotent anyway (readings are immutable,
    /// items carry their ids).
    fn replay(&mut self, mut ops: &[u8]) -> Result<(), StorageError> {
        let mut touched = TouchedSensors::default();
        while !ops.is_empty() {
            match record::decode(&mut ops)? {
                Op::Reading {
                    sensor,
                    micros,
                    temperature,
                } => {
                    if self.stored(sensor, micros)?.is_none() {
                        let temperature = Temperature::from_micros(temperature)
                            .map_err(|e| StorageError::Internal(e.into()))?;
                        let append_after = self.append_after(sensor, &mut touched)?;
                        self.store_fresh(sensor, micros, temperature, append_after, &mut touched)?;
                    }
                }
                Op::ItemPut { id, json } => {
                    self.item_put(id, json)?;
                }
                Op::ItemDelete { id } => {
                    self.items()?.remove(id).map_err(storage_error)?;
                }
            }
        }
        self.write_aggregates(&mut touched)
    }
}
