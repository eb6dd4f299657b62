//! One chunk's commit: its transaction attempted, retried after cancellations without the
//! readings found stored meanwhile, and what it did reported back to the round.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::CancellationReason;

use super::cancellation::read_reasons;
use super::schema;
use super::transaction::{Action, Transaction, transaction};
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
    pub extents: HashMap<SensorId, Extent>,
}

impl ChunkReport {
    /// The report as it ends: `error`, when given, for every request still in `chunk`, and the
    /// sensors' extents as the chunk left them.
    fn finish(
        mut self,
        chunk: &[NewReading],
        error: Option<StorageError>,
        extents: HashMap<SensorId, Extent>,
    ) -> Self {
        if let Some(error) = error {
            self.error = Some((chunk.iter().map(|p| p.request).collect(), error));
        }
        self.extents = extents;
        self
    }
}

fn random_below(n: usize) -> usize {
    let random = RandomState::new().hash_one(Instant::now());
    usize::try_from(random % (n.max(1) as u64)).unwrap_or(0)
}

/// Backoff before retrying a cancelled transaction: exponential from 5 ms, capped, jittered.
pub(super) fn backoff(attempt: u32) -> Duration {
    let base = 5u64 << attempt.min(6);
    Duration::from_millis(base.min(250) + random_below(10) as u64)
}

/// What one attempt at a chunk's transaction came to.
enum Attempt {
    Committed,
    Cancelled(Vec<Action>, Vec<CancellationReason>),
    Failed(StorageError),
}

/// Commits one chunk (its readings sorted by sensor), retrying cancelled transactions without
/// the readings found stored meanwhile, until it commits, fails, runs out of attempts or (for
/// retries) passes `deadline`.
pub(super) async fn run_chunk(
    inner: &Inner,
    mut chunk: Vec<NewReading>,
    mut extents: HashMap<SensorId, Extent>,
    deadline: Instant,
) -> ChunkReport {
    let mut report = ChunkReport::default();
    for attempt in 0..MAX_TRANSACTION_ATTEMPTS {
        if chunk.is_empty() {
            return report.finish(&chunk, None, extents);
        }
        // First attempts always run (each is bounded by the SDK timeouts, and a big healthy
        // group may take a while); retries stop at the deadline.
        if attempt > 0 && Instant::now() > deadline {
            let error =
                StorageError::Unavailable("DynamoDB writes took longer than the timeout".into());
            return report.finish(&chunk, Some(error), extents);
        }
        let (actions, reasons) = match attempt_chunk(inner, &chunk, &mut extents).await {
            Attempt::Committed => {
                report.stored.extend(chunk.iter().map(|p| p.request));
                return report.finish(&chunk, None, extents);
            }
            Attempt::Failed(error) => return report.finish(&chunk, Some(error), extents),
            Attempt::Cancelled(actions, reasons) => (actions, reasons),
        };
        let retry = match read_reasons(inner, &chunk, &actions, &reasons, &mut report, &mut extents)
            .await
        {
            Ok(retry) => retry,
            Err(error) => return report.finish(&chunk, Some(error), extents),
        };
        chunk = chunk
            .into_iter()
            .enumerate()
            .filter(|(position, p)| {
                !retry.drop_positions.contains(position) && !retry.conflicted.contains(&p.request)
            })
            .map(|(_, p)| p)
            .collect();
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
    report.finish(&chunk, Some(error), extents)
}

/// One `TransactWriteItems` of the chunk against a random global shard; on success the
/// sensors' and the shard's extents learn what it stored.
async fn attempt_chunk(
    inner: &Inner,
    chunk: &[NewReading],
    extents: &mut HashMap<SensorId, Extent>,
) -> Attempt {
    let shard = random_below(schema::AGGREGATE_SHARDS);
    let Transaction {
        items,
        actions,
        deltas,
        total,
    } = match transaction(inner, chunk, extents, shard) {
        Ok(built) => built,
        Err(error) => return Attempt::Failed(error),
    };
    inner.count();
    inner.bill(2 * items.len() as u64);
    let result = inner
        .client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await;
    match result {
        Ok(_) => {
            for (sensor, delta) in &deltas {
                extents
                    .entry(sensor.clone())
                    .or_default()
                    .learn(delta.min_micros, delta.max_micros);
            }
            learn_shard(inner, shard, total.min_micros, total.max_micros);
            Attempt::Committed
        }
        Err(error) => match error.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                Attempt::Cancelled(actions, cancelled.cancellation_reasons().to_vec())
            }
            _ => Attempt::Failed(sdk_error("TransactWriteItems", error)),
        },
    }
}

pub(super) fn learn_shard(inner: &Inner, shard: usize, min: Option<i64>, max: Option<i64>) {
    let mut known = inner
        .shard_extents
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(extent) = known.get_mut(shard) {
        extent.learn(min, max);
    }
}
