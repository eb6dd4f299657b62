//! A cancelled transaction's `CancellationReasons`, read action by action: a reading stored
//! meanwhile is a duplicate (same temperature) or a conflict (another one); an aggregate whose
//! condition failed teaches its stored min/max; contention and throttling mean back off and
//! retry (see the parent module).

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::CancellationReason;

use super::attributes::{Item, aggregate_of, temperature_of};
use super::chunk::ChunkReport;
use super::partials::ItemState;
use super::schema::{self, AGGREGATE_TOTAL_PK};
use super::shards;
use super::transaction::{Action, RollupKey};
use super::writer::{NewReading, key_item, reading_key, sensor_key};
use super::{Extent, Inner, sdk_error};
use crate::domain::{Conflict, Reading};
use crate::storage::StorageError;

/// What a cancelled transaction's reasons say about the chunk's next attempt.
#[derive(Default)]
pub(super) struct Retry {
    /// Contention or throttling: wait before the next attempt.
    pub back_off: bool,
    /// Positions in the chunk of readings found stored meanwhile: not retried.
    pub drop_positions: HashSet<usize>,
    /// Requests now settled by a conflict or an error: none of their readings is retried.
    pub conflicted: HashSet<usize>,
}

/// Reads each action's cancellation reason into `report` (duplicates, conflicts, sensor
/// states learnt), the shard cache and `rollups` (rollup items' min/max learnt); an
/// unexpected reason is an error for the chunk.
pub(super) async fn read_reasons(
    inner: &Inner,
    chunk: &[NewReading],
    actions: &[Action],
    reasons: &[CancellationReason],
    report: &mut ChunkReport,
    rollups: &mut HashMap<RollupKey, Extent>,
) -> Result<Retry, StorageError> {
    let mut retry = Retry::default();
    for (action, reason) in actions.iter().zip(reasons) {
        let code = reason.code().unwrap_or("None");
        match (code, action) {
            ("None", _) => {}
            ("ConditionalCheckFailed", Action::Reading(position)) => {
                let pending = &chunk[*position];
                let stored = match old_item(inner, reason, reading_key(&pending.reading)).await {
                    Ok(Some(item)) => temperature_of(&item),
                    // Gone again? Readings are never deleted; retry the chunk as it is.
                    Ok(None) => continue,
                    Err(error) => Err(error),
                };
                match stored {
                    Ok(t) if t == pending.reading.temperature => {
                        report.duplicates.push(pending.request);
                    }
                    Ok(t) => {
                        let stored = Reading {
                            temperature: t,
                            ..pending.reading.clone()
                        };
                        report.conflicts.push((
                            pending.request,
                            Conflict::between(pending.index, &pending.reading, &stored),
                        ));
                        retry.conflicted.insert(pending.request);
                    }
                    Err(error) => {
                        report.error = Some((vec![pending.request], error));
                        retry.conflicted.insert(pending.request);
                    }
                }
                retry.drop_positions.insert(*position);
            }
            // Folded by another builder meanwhile (or deleted by its TTL): not this one's.
            ("ConditionalCheckFailed", Action::Mark(position)) => {
                retry.drop_positions.insert(*position);
            }
            ("ConditionalCheckFailed", Action::Sensor(sensor)) => {
                let item = old_item(inner, reason, sensor_key(sensor)).await?;
                let state = ItemState::from_item(item.as_ref())?;
                report.sensors.insert(sensor.clone(), state);
            }
            ("ConditionalCheckFailed", Action::Shard(shard)) => {
                let key = (AGGREGATE_TOTAL_PK.to_owned(), schema::shard_sk(*shard));
                let item = old_item(inner, reason, key).await?;
                shards::learn(inner, *shard, ItemState::from_item(item.as_ref())?);
            }
            ("ConditionalCheckFailed", Action::Rollup(key)) => {
                if let Some(item) = old_item(inner, reason, key.clone()).await?
                    && let Ok(stored) = aggregate_of(Some(&item))
                {
                    rollups
                        .entry(key.clone())
                        .or_default()
                        .learn(stored.min_micros, stored.max_micros);
                }
            }
            (
                "TransactionConflict"
                | "ThrottlingError"
                | "ProvisionedThroughputExceeded"
                | "RequestLimitExceeded",
                _,
            ) => retry.back_off = true,
            (other, _) => {
                let message = reason.message().unwrap_or_default();
                return Err(StorageError::Internal(
                    format!("transaction cancelled: {other}: {message}").into(),
                ));
            }
        }
    }
    Ok(retry)
}

/// The item as it was when a condition failed: from `ALL_OLD` when the server sent it, else
/// read again (consistently).
async fn old_item(
    inner: &Inner,
    reason: &CancellationReason,
    key: (String, String),
) -> Result<Option<Item>, StorageError> {
    if let Some(item) = reason.item().filter(|i| !i.is_empty()) {
        return Ok(Some(item.clone()));
    }
    inner.count();
    let output = inner
        .client
        .get_item()
        .table_name(&inner.table)
        .set_key(Some(key_item(key)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| sdk_error("GetItem", e))?;
    Ok(output.item().cloned())
}
