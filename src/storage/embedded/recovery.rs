//! Start-up: redo the log records newer than redb's last checkpoint, in one fsync'd
//! transaction that also creates every table.

use std::collections::HashMap;

use redb::{Database, ReadableTable};

use super::record::{self, Op};
use super::storage_error;
use super::tables::{Tables, Touched, WAL_SEQUENCE};
use super::wal::Record;
use crate::domain::Temperature;
use crate::storage::StorageError;

/// Creates the tables (readers then open them without special cases) and replays `records`,
/// the log read back, from the one after redb's last checkpoint up to the first that does not
/// continue the sequence. Returns the sequence number of the last record applied.
pub(super) fn recover(db: &Database, records: &[Record]) -> Result<u64, StorageError> {
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
        for (number, ops) in records {
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
    Ok(sequence)
}

impl Tables<'_> {
    /// Re-applies one log record (on open). Exact, because only records newer than the
    /// sequence number stored in redb are replayed; idempotent anyway (readings are immutable,
    /// items carry their ids).
    fn replay(&mut self, mut ops: &[u8]) -> Result<(), StorageError> {
        let mut touched: HashMap<String, Touched> = HashMap::new();
        while !ops.is_empty() {
            match record::decode(&mut ops)? {
                Op::Reading {
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
                            .map_err(|e| StorageError::Internal(e.into()))?;
                        self.insert_reading(sensor, micros, temperature, &mut touched)?;
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
        self.write_aggregates(&touched)
    }
}
