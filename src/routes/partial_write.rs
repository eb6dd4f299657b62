//! `accept_partial=true` (InfluxDB 3's name): store the valid readings of a request and say
//! which were refused and why.
//!
//! Built on the all-or-nothing storage call, so no backend needs to know about it: put the
//! valid readings; when some conflict with stored ones (storage then stores nothing), set
//! those aside and put the rest again. Each round removes at least one reading, and only a
//! concurrent writer can create a new conflict between rounds, so a few rounds suffice; past
//! them the request answers 503 (retry), never a partial result it cannot describe. Readings
//! the store refuses as expired (older than what retention already deleted) are set aside the
//! same way.

use std::collections::HashSet;

use crate::domain::{Batch, Conflict};
use crate::metrics::Metrics;
use crate::storage::{PutOutcome, Storage, StorageError};

/// Rounds of put-and-set-aside before giving up with 503.
const MAX_ROUNDS: usize = 4;

/// What a partial write stored, and the readings it refused for conflicts with stored ones.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialOutcome {
    pub stored: usize,
    pub duplicates: usize,
    pub conflicts: Vec<Conflict>,
    /// Request indexes of readings refused as older than data retention already deleted.
    pub expired: Vec<usize>,
}

/// Stores what can be stored of `batch`, counting the outcome in `metrics`.
pub async fn put_partial(
    storage: &Storage,
    metrics: &Metrics,
    batch: Batch,
) -> Result<PartialOutcome, StorageError> {
    let outcome = rounds(storage, batch).await?;
    metrics.readings_stored(outcome.stored, outcome.duplicates);
    metrics.readings_conflicted(outcome.conflicts.len());
    Ok(outcome)
}

async fn rounds(storage: &Storage, mut batch: Batch) -> Result<PartialOutcome, StorageError> {
    let mut conflicts = Vec::new();
    let mut expired = Vec::new();
    for _ in 0..MAX_ROUNDS {
        if batch.readings.is_empty() {
            return Ok(PartialOutcome {
                stored: 0,
                duplicates: batch.repeats,
                conflicts,
                expired,
            });
        }
        match storage.put_readings(batch.clone()).await? {
            PutOutcome::Stored { stored, duplicates } => {
                return Ok(PartialOutcome {
                    stored,
                    duplicates,
                    conflicts,
                    expired,
                });
            }
            PutOutcome::Conflict(found) => {
                let refused: HashSet<usize> = found.iter().map(|c| c.index).collect();
                batch.readings.retain(|(index, _)| !refused.contains(index));
                conflicts.extend(found);
            }
            PutOutcome::Expired(found) => {
                let refused: HashSet<usize> = found.iter().copied().collect();
                batch.readings.retain(|(index, _)| !refused.contains(index));
                expired.extend(found);
            }
        }
    }
    Err(StorageError::Unavailable(
        "conflicting readings kept arriving during a partial write".into(),
    ))
}
