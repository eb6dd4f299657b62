//! One chunk's commit: its transaction attempted, retried after cancellations without the
//! readings found stored meanwhile, and what it did reported back to the round.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::CancellationReason;

use super::attributes::aggregate_of;
use super::cancellation::read_reasons;
use super::partials::{ItemState, Origin};
use super::query::batch_get;
use super::shards;
use super::transaction::{Action, Knowledge, MAX_ACTIONS, RollupKey, Transaction, transaction};
use super::writer::NewReading;
use super::{Extent, Inner, sdk_error};
use crate::domain::{Conflict, SensorId};
use crate::storage::StorageError;

/// Tries of one chunk's transaction (cancellations by concurrent writers, throttling).
const MAX_TRANSACTION_ATTEMPTS: u32 = 10;

/// What one chunk's transaction(s) did, by request number.
#[derive(Default)]
pub(super) struct ChunkReport {
    pub stored: Vec<usize>,
    pub duplicates: Vec<usize>,
    pub conflicts: Vec<(usize, Conflict)>,
    pub error: Option<(Vec<usize>, StorageError)>,
    /// The sensors' item states as the chunk left them (known to be stored or stale-safe:
    /// a stale state only costs a cancelled attempt).
    pub sensors: HashMap<SensorId, ItemState>,
}

/// Backoff before retrying a cancelled transaction: exponential from 5 ms, capped, jittered.
pub(super) fn backoff(attempt: u32) -> Duration {
    let base = 5u64 << attempt.min(6);
    let jitter = RandomState::new().hash_one(Instant::now()) % 10;
    Duration::from_millis(base.min(250) + jitter)
}

/// What one attempt at a chunk's transaction came to.
enum Attempt {
    Committed,
    Cancelled(Vec<Action>, Vec<CancellationReason>),
    Failed(StorageError),
}

/// Commits one chunk (its readings sorted by sensor, all from `origin`) on a leased shard:
/// readings that would
/// push its transaction over [`MAX_ACTIONS`] (rollup deltas of late readings, closing
/// buckets) are split off into a next transaction; a cancelled transaction is retried without
/// the readings found stored meanwhile and with the states learnt, until it commits, fails,
/// runs out of attempts or (for retries) passes `deadline`.
pub(super) async fn run_chunk(
    inner: &Arc<Inner>,
    chunk: Vec<NewReading>,
    sensors: HashMap<SensorId, ItemState>,
    deadline: Instant,
    origin: Origin,
) -> ChunkReport {
    let lease = shards::lease(inner);
    let mut report = ChunkReport {
        sensors,
        ..ChunkReport::default()
    };
    let mut rollups: HashMap<RollupKey, Extent> = HashMap::new();
    let mut rest = chunk;
    while !rest.is_empty() {
        let chunk = std::mem::take(&mut rest);
        let committed = commit_part(
            inner,
            chunk,
            &mut rest,
            &mut report,
            &mut rollups,
            lease.shard,
            (deadline, origin),
        )
        .await;
        if let Err((left, error)) = committed {
            let mut numbers: Vec<usize> = left.iter().chain(&rest).map(|p| p.request).collect();
            numbers.sort_unstable();
            numbers.dedup();
            report.error = Some((numbers, error));
            return report;
        }
    }
    report
}

/// Commits `chunk`, or what of it fits one transaction (the rest is prepended to `rest`).
/// `Err`: the readings of the chunk not committed, and why.
async fn commit_part(
    inner: &Arc<Inner>,
    mut chunk: Vec<NewReading>,
    rest: &mut Vec<NewReading>,
    report: &mut ChunkReport,
    rollups: &mut HashMap<RollupKey, Extent>,
    shard: usize,
    (deadline, origin): (Instant, Origin),
) -> Result<(), (Vec<NewReading>, StorageError)> {
    for attempt in 0..MAX_TRANSACTION_ATTEMPTS {
        if chunk.is_empty() {
            return Ok(());
        }
        // First attempts always run (each is bounded by the SDK timeouts, and a big healthy
        // group may take a while); retries stop at the deadline.
        if attempt > 0 && Instant::now() > deadline {
            let error =
                StorageError::Unavailable("DynamoDB writes took longer than the timeout".into());
            return Err((chunk, error));
        }
        let shard_state = match shards::known(inner, shard).await {
            Ok(state) => state,
            Err(error) => return Err((chunk, error)),
        };
        let built = loop {
            let known = Knowledge {
                sensors: &report.sensors,
                shard: (shard, &shard_state),
                rollups,
            };
            match transaction(inner, &chunk, &known, origin) {
                Ok(built) if built.items.len() > MAX_ACTIONS && chunk.len() > 1 => {
                    let last = chunk.pop().expect("more than one reading");
                    rest.insert(0, last);
                }
                Ok(built) if !built.unknown_late.is_empty() => {
                    // Late readings: read their rollup items' min/max first (a read is far
                    // cheaper than a cancelled transaction).
                    if let Err(error) = learn_rollups(inner, built.unknown_late, rollups).await {
                        return Err((chunk, error));
                    }
                }
                Ok(built) => break built,
                Err(error) => return Err((chunk, error)),
            }
        };
        let (actions, reasons) = match attempt_chunk(inner, built, shard, report, rollups).await {
            Attempt::Committed => {
                report.stored.extend(chunk.iter().map(|p| p.request));
                return Ok(());
            }
            Attempt::Failed(error) => return Err((chunk, error)),
            Attempt::Cancelled(actions, reasons) => (actions, reasons),
        };
        let retry = match read_reasons(inner, &chunk, &actions, &reasons, report, rollups).await {
            Ok(retry) => retry,
            Err(error) => return Err((chunk, error)),
        };
        chunk = chunk
            .into_iter()
            .enumerate()
            .filter(|(position, p)| {
                !retry.drop_positions.contains(position) && !retry.conflicted.contains(&p.request)
            })
            .map(|(_, p)| p)
            .collect();
        rest.retain(|p| !retry.conflicted.contains(&p.request));
        if retry.back_off {
            tracing::warn!(
                attempt,
                readings = chunk.len(),
                "DynamoDB transaction cancelled by contention or throttling; retrying"
            );
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    let error = StorageError::Unavailable(
        format!(
            "transaction still cancelled after {MAX_TRANSACTION_ATTEMPTS} attempts \
         (contention or throttling)"
        )
        .into(),
    );
    Err((chunk, error))
}

/// Reads rollup items (consistently) and remembers their min/max (an absent item: none).
async fn learn_rollups(
    inner: &Arc<Inner>,
    keys: Vec<RollupKey>,
    rollups: &mut HashMap<RollupKey, Extent>,
) -> Result<(), StorageError> {
    let found = batch_get(inner, keys.clone()).await?;
    for key in keys {
        let stored = aggregate_of(found.get(&key))?;
        rollups
            .entry(key)
            .or_default()
            .learn(stored.min_micros, stored.max_micros);
    }
    Ok(())
}

/// One `TransactWriteItems`; on success the sensors' and the shard's states are the ones it
/// wrote.
async fn attempt_chunk(
    inner: &Inner,
    built: Transaction,
    shard: usize,
    report: &mut ChunkReport,
    rollups: &mut HashMap<RollupKey, Extent>,
) -> Attempt {
    let Transaction {
        items,
        actions,
        sensors,
        shard: shard_state,
        unknown_late: _,
        rollup_extents,
    } = built;
    inner.count();
    let units = 2 * items.len() as u64;
    inner.bill(units);
    let rollup_actions = actions
        .iter()
        .filter(|a| matches!(a, Action::Rollup(_) | Action::Registry))
        .count();
    inner
        .rollup_units
        .fetch_add(2 * rollup_actions as u64, Ordering::Relaxed);
    let result = inner
        .client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await;
    match result {
        Ok(_) => {
            for (key, written) in rollup_extents {
                rollups
                    .entry(key)
                    .or_default()
                    .learn(written.min, written.max);
            }
            report.sensors.extend(sensors);
            shards::learn(inner, shard, shard_state);
            Attempt::Committed
        }
        Err(error) => match error.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                inner.cancelled_units.fetch_add(units, Ordering::Relaxed);
                Attempt::Cancelled(actions, cancelled.cancellation_reasons().to_vec())
            }
            _ => Attempt::Failed(sdk_error("TransactWriteItems", error)),
        },
    }
}
