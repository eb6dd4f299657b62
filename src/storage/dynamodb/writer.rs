//! The write side of the DynamoDB store: rounds, pre-check, chunked transactions and the reading
//! of cancellation reasons. The design and its guarantees are described in the parent module.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, KeysAndAttributes, Put,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;

use super::schema::{
    self, AGGREGATE_TOTAL_PK, COUNT, MAX, MIN, PARTITION_KEY, SENSOR_AGGREGATE_SK, SORT_KEY, SUM,
    TEMPERATURE,
};
use super::{Extent, Inner, Item, aggregate_of, sdk_error, temperature_of};
use crate::domain::{Aggregate, Batch, Conflict, Reading, SensorId, Timestamp};
use crate::storage::group_commit::Committer;
use crate::storage::{PutOutcome, StorageError};

/// DynamoDB's limit of actions in one `TransactWriteItems`.
const MAX_ACTIONS: usize = 100;
/// Keys in one `BatchGetItem`.
const MAX_BATCH_GET: usize = 100;
/// Calls of one kind sent at once by one group.
const PARALLEL_CALLS: usize = 8;
/// Tries of one chunk's transaction (cancellations by concurrent writers, throttling).
const MAX_TRANSACTION_ATTEMPTS: u32 = 10;
/// Tries of a `BatchGetItem` that keeps returning `UnprocessedKeys`.
const MAX_BATCH_GET_ATTEMPTS: u32 = 8;

/// One queued request and the channel that answers its caller.
pub struct Write {
    pub batch: Batch,
    pub reply: oneshot::Sender<Result<PutOutcome, StorageError>>,
    /// When the write was queued: one that waited longer than the timeout is answered 503.
    pub queued: Instant,
}

pub struct Writer {
    inner: Arc<Inner>,
    /// Bounds the groups committed at once; while all are busy, requests queue up and the next
    /// group gets bigger (that is the group commit).
    permits: Arc<Semaphore>,
}

impl Writer {
    pub(super) fn new(inner: Arc<Inner>, groups_in_flight: usize) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(groups_in_flight)),
        }
    }
}

impl Committer for Writer {
    type Write = Write;

    async fn commit(&mut self, group: Vec<Write>) {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return; // never closed; dropping the group answers its callers with an error
        };
        let inner = self.inner.clone();
        // Writes that already waited a whole timeout (DynamoDB slow or down): answer 503 now.
        let (group, stale): (Vec<Write>, Vec<Write>) = group
            .into_iter()
            .partition(|w| w.queued.elapsed() < inner.timeout);
        for write in stale {
            let _ = write.reply.send(Err(StorageError::Unavailable(
                "the write waited too long for DynamoDB".into(),
            )));
        }
        if group.is_empty() {
            return;
        }
        // DynamoDB calls are network round trips, not a local fsync: let a few groups overlap.
        // Concurrent groups behave like concurrent instances, which the design already handles.
        tokio::spawn(async move {
            let _permit = permit;
            let deadline = Instant::now() + inner.timeout;
            let mut pending = group;
            while !pending.is_empty() {
                let (round, rest) = split_round(pending);
                commit_round(&inner, round, deadline).await;
                pending = rest;
            }
        });
    }
}

/// Takes the requests that share no `(sensorID, time)` with an earlier request of the group;
/// the others wait for the next round, where they see what this round stored.
fn split_round(group: Vec<Write>) -> (Vec<Write>, Vec<Write>) {
    let mut keys: HashSet<(SensorId, Timestamp)> = HashSet::new();
    let (mut round, mut rest) = (Vec::new(), Vec::new());
    for write in group {
        let overlaps = write
            .batch
            .readings
            .iter()
            .any(|(_, r)| keys.contains(&(r.sensor_id.clone(), r.time)));
        if overlaps {
            rest.push(write);
        } else {
            keys.extend(
                write
                    .batch
                    .readings
                    .iter()
                    .map(|(_, r)| (r.sensor_id.clone(), r.time)),
            );
            round.push(write);
        }
    }
    (round, rest)
}

/// What one request of a round has come to so far.
struct Request {
    write: Write,
    stored: usize,
    duplicates: usize,
    conflicts: Vec<Conflict>,
    error: Option<StorageError>,
}

impl Request {
    fn settled(&self) -> bool {
        !self.conflicts.is_empty() || self.error.is_some()
    }

    fn answer(mut self) {
        let result = if !self.conflicts.is_empty() {
            self.conflicts.sort_by_key(|c| c.index);
            Ok(PutOutcome::Conflict(self.conflicts))
        } else if let Some(error) = self.error {
            Err(error)
        } else {
            Ok(PutOutcome::Stored {
                stored: self.stored,
                duplicates: self.duplicates + self.write.batch.repeats,
            })
        };
        // A caller that gave up (client disconnected) has dropped its receiver: ignore.
        let _ = self.write.reply.send(result);
    }
}

/// A new reading waiting for its transaction.
#[derive(Clone)]
struct Pending {
    request: usize,
    index: usize,
    reading: Reading,
}

fn reading_key(reading: &Reading) -> (String, String) {
    (
        schema::reading_pk(reading.sensor_id.as_str()),
        reading.time.to_sortable(),
    )
}

fn sensor_key(sensor: &SensorId) -> (String, String) {
    (
        schema::sensor_aggregate_pk(sensor.as_str()),
        SENSOR_AGGREGATE_SK.to_owned(),
    )
}

fn key_item((pk, sk): (String, String)) -> Item {
    Inner::key(pk, sk)
}

/// Commits a round; no transaction is *retried* after `deadline` (the requests still pending
/// then are answered 503, and their client's retry is safe).
async fn commit_round(inner: &Arc<Inner>, round: Vec<Write>, deadline: Instant) {
    let mut requests: Vec<Request> = round
        .into_iter()
        .map(|write| Request {
            write,
            stored: 0,
            duplicates: 0,
            conflicts: Vec::new(),
            error: None,
        })
        .collect();

    // 1. Pre-check: every reading of the round and the aggregate of every sensor it touches.
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut sensors: HashSet<SensorId> = HashSet::new();
    for request in &requests {
        for (_, reading) in &request.write.batch.readings {
            keys.push(reading_key(reading));
            sensors.insert(reading.sensor_id.clone());
        }
    }
    keys.extend(sensors.iter().map(sensor_key));
    let found = match batch_get(inner, keys).await {
        Ok(found) => found,
        Err(error) => {
            for mut request in requests {
                request.error = Some(error.clone());
                request.answer();
            }
            return;
        }
    };
    let mut extents: HashMap<SensorId, Extent> = HashMap::new();
    for sensor in sensors {
        let extent = match aggregate_of(found.get(&sensor_key(&sensor))) {
            Ok(aggregate) => Extent {
                min: aggregate.min_micros,
                max: aggregate.max_micros,
            },
            Err(_) => Extent::default(), // unknown: the conditional update finds out
        };
        extents.insert(sensor, extent);
    }

    // 2. Duplicates and conflicts against what is stored.
    let mut pending: Vec<Pending> = Vec::new();
    for (number, request) in requests.iter_mut().enumerate() {
        let mut fresh = Vec::new();
        for (index, reading) in &request.write.batch.readings {
            match found.get(&reading_key(reading)).map(temperature_of) {
                None => fresh.push(Pending {
                    request: number,
                    index: *index,
                    reading: reading.clone(),
                }),
                Some(Ok(stored)) if stored == reading.temperature => request.duplicates += 1,
                Some(Ok(stored)) => {
                    let stored = Reading {
                        temperature: stored,
                        ..reading.clone()
                    };
                    request
                        .conflicts
                        .push(Conflict::between(*index, reading, &stored));
                }
                Some(Err(error)) => request.error = Some(error),
            }
        }
        if !request.settled() {
            pending.extend(fresh);
        }
    }

    // 3. Transactions, chunk by chunk; chunks of one wave share no sensor and run at once.
    pending.sort_by(|a, b| a.reading.sensor_id.cmp(&b.reading.sensor_id));
    for wave in waves(pack(pending)) {
        let mut tasks = JoinSet::new();
        for chunk in wave {
            let chunk: Vec<Pending> = chunk
                .into_iter()
                .filter(|p| !requests[p.request].settled())
                .collect();
            if chunk.is_empty() {
                continue;
            }
            let chunk_extents: HashMap<SensorId, Extent> = chunk
                .iter()
                .map(|p| {
                    let id = p.reading.sensor_id.clone();
                    let extent = extents.get(&id).copied().unwrap_or_default();
                    (id, extent)
                })
                .collect();
            let inner = inner.clone();
            tasks.spawn(async move { run_chunk(&inner, chunk, chunk_extents, deadline).await });
        }
        while let Some(report) = tasks.join_next().await {
            let report = match report {
                Ok(report) => report,
                Err(error) => {
                    // A panicked chunk: its requests cannot know what happened.
                    let error = StorageError::Internal(format!("transaction task failed: {error}"));
                    for request in requests.iter_mut().filter(|r| !r.settled()) {
                        request.error = Some(error.clone());
                    }
                    continue;
                }
            };
            for number in report.stored {
                requests[number].stored += 1;
            }
            for number in report.duplicates {
                requests[number].duplicates += 1;
            }
            for (number, conflict) in report.conflicts {
                requests[number].conflicts.push(conflict);
            }
            if let Some((numbers, error)) = report.error {
                for number in numbers {
                    requests[number].error.get_or_insert_with(|| error.clone());
                }
            }
            extents.extend(report.extents);
        }
    }
    for request in requests {
        request.answer();
    }
}

/// Packs readings (sorted by sensor) into transactions of at most [`MAX_ACTIONS`] actions:
/// one per reading, one per sensor of the chunk and one for the global shard.
fn pack(pending: Vec<Pending>) -> Vec<Vec<Pending>> {
    let mut chunks = Vec::new();
    let mut current: Vec<Pending> = Vec::new();
    let mut sensors = 0;
    for p in pending {
        let mut new_sensor = current
            .last()
            .is_none_or(|last| last.reading.sensor_id != p.reading.sensor_id);
        if current.len() + 1 + sensors + usize::from(new_sensor) + 1 > MAX_ACTIONS {
            chunks.push(std::mem::take(&mut current));
            sensors = 0;
            new_sensor = true;
        }
        sensors += usize::from(new_sensor);
        current.push(p);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Groups chunks into waves whose chunks share no sensor (two transactions on one aggregate
/// item at once would cancel each other), at most [`PARALLEL_CALLS`] chunks a wave.
fn waves(chunks: Vec<Vec<Pending>>) -> Vec<Vec<Vec<Pending>>> {
    let mut waves: Vec<(HashSet<SensorId>, Vec<Vec<Pending>>)> = Vec::new();
    for chunk in chunks {
        let sensors: HashSet<SensorId> =
            chunk.iter().map(|p| p.reading.sensor_id.clone()).collect();
        let slot = waves
            .iter()
            .position(|(taken, wave)| wave.len() < PARALLEL_CALLS && taken.is_disjoint(&sensors));
        match slot {
            Some(i) => {
                waves[i].0.extend(sensors);
                waves[i].1.push(chunk);
            }
            None => waves.push((sensors, vec![chunk])),
        }
    }
    waves.into_iter().map(|(_, wave)| wave).collect()
}

/// What one chunk's transaction(s) did, by request number.
#[derive(Default)]
struct ChunkReport {
    stored: Vec<usize>,
    duplicates: Vec<usize>,
    conflicts: Vec<(usize, Conflict)>,
    error: Option<(Vec<usize>, StorageError)>,
    extents: HashMap<SensorId, Extent>,
}

/// What each action of a transaction is, to read its cancellation reason.
enum Action {
    Reading(usize),
    Sensor(SensorId),
    Shard(usize),
}

fn random_below(n: usize) -> usize {
    let random = RandomState::new().hash_one(Instant::now());
    usize::try_from(random % (n.max(1) as u64)).unwrap_or(0)
}

/// Backoff before retrying a cancelled transaction: exponential from 5 ms, capped, jittered.
fn backoff(attempt: u32) -> Duration {
    let base = 5u64 << attempt.min(6);
    Duration::from_millis(base.min(250) + random_below(10) as u64)
}

async fn run_chunk(
    inner: &Inner,
    mut chunk: Vec<Pending>,
    mut extents: HashMap<SensorId, Extent>,
    deadline: Instant,
) -> ChunkReport {
    let mut report = ChunkReport::default();
    for attempt in 0..MAX_TRANSACTION_ATTEMPTS {
        if chunk.is_empty() {
            report.extents = extents;
            return report;
        }
        // First attempts always run (each is bounded by the SDK timeouts, and a big healthy
        // group may take a while); retries stop at the deadline.
        if attempt > 0 && Instant::now() > deadline {
            report.error = Some((
                chunk.iter().map(|p| p.request).collect(),
                StorageError::Unavailable("DynamoDB writes took longer than the timeout".into()),
            ));
            report.extents = extents;
            return report;
        }
        let shard = random_below(schema::AGGREGATE_SHARDS);
        let (items, actions, deltas, total) = match transaction(inner, &chunk, &extents, shard) {
            Ok(built) => built,
            Err(error) => {
                report.error = Some((chunk.iter().map(|p| p.request).collect(), error));
                report.extents = extents;
                return report;
            }
        };
        inner.count();
        let result = inner
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let error = match result {
            Ok(_) => {
                report.stored.extend(chunk.iter().map(|p| p.request));
                for (sensor, delta) in &deltas {
                    extents
                        .entry(sensor.clone())
                        .or_default()
                        .learn(delta.min_micros, delta.max_micros);
                }
                learn_shard(inner, shard, total.min_micros, total.max_micros);
                report.extents = extents;
                return report;
            }
            Err(error) => error,
        };
        let reasons: Vec<CancellationReason> = match error.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                cancelled.cancellation_reasons().to_vec()
            }
            _ => {
                report.error = Some((
                    chunk.iter().map(|p| p.request).collect(),
                    sdk_error("TransactWriteItems", error),
                ));
                report.extents = extents;
                return report;
            }
        };
        let mut back_off = false;
        let mut drop_positions: HashSet<usize> = HashSet::new();
        let mut conflicted: HashSet<usize> = HashSet::new();
        for (action, reason) in actions.iter().zip(&reasons) {
            let code = reason.code().unwrap_or("None");
            match (code, action) {
                ("None", _) => {}
                ("ConditionalCheckFailed", Action::Reading(position)) => {
                    let pending = &chunk[*position];
                    let stored = match old_item(inner, reason, reading_key(&pending.reading)).await
                    {
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
                            conflicted.insert(pending.request);
                        }
                        Err(error) => {
                            report.error = Some((vec![pending.request], error));
                            conflicted.insert(pending.request);
                        }
                    }
                    drop_positions.insert(*position);
                }
                ("ConditionalCheckFailed", Action::Sensor(sensor)) => {
                    if let Ok(Some(item)) = old_item(inner, reason, sensor_key(sensor)).await
                        && let Ok(stored) = aggregate_of(Some(&item))
                    {
                        extents
                            .entry(sensor.clone())
                            .or_default()
                            .learn(stored.min_micros, stored.max_micros);
                    }
                }
                ("ConditionalCheckFailed", Action::Shard(shard)) => {
                    let key = (AGGREGATE_TOTAL_PK.to_owned(), schema::shard_sk(*shard));
                    if let Ok(Some(item)) = old_item(inner, reason, key).await
                        && let Ok(stored) = aggregate_of(Some(&item))
                    {
                        learn_shard(inner, *shard, stored.min_micros, stored.max_micros);
                    }
                }
                (
                    "TransactionConflict"
                    | "ThrottlingError"
                    | "ProvisionedThroughputExceeded"
                    | "RequestLimitExceeded",
                    _,
                ) => back_off = true,
                (other, _) => {
                    let message = reason.message().unwrap_or_default();
                    report.error = Some((
                        chunk.iter().map(|p| p.request).collect(),
                        StorageError::Internal(format!(
                            "transaction cancelled: {other}: {message}"
                        )),
                    ));
                    report.extents = extents;
                    return report;
                }
            }
        }
        chunk = chunk
            .into_iter()
            .enumerate()
            .filter(|(position, p)| {
                !drop_positions.contains(position) && !conflicted.contains(&p.request)
            })
            .map(|(_, p)| p)
            .collect();
        if back_off {
            tracing::warn!(
                attempt,
                readings = chunk.len(),
                "DynamoDB transaction cancelled by contention or throttling; retrying"
            );
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    report.error = Some((
        chunk.iter().map(|p| p.request).collect(),
        StorageError::Unavailable(format!(
            "transaction still cancelled after {MAX_TRANSACTION_ATTEMPTS} attempts \
             (contention or throttling)"
        )),
    ));
    report.extents = extents;
    report
}

fn learn_shard(inner: &Inner, shard: usize, min: Option<i64>, max: Option<i64>) {
    let mut known = inner
        .shard_extents
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(extent) = known.get_mut(shard) {
        extent.learn(min, max);
    }
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

type Built = (
    Vec<TransactWriteItem>,
    Vec<Action>,
    BTreeMap<SensorId, Aggregate>,
    Aggregate,
);

/// The transaction of a chunk: conditional puts, one update per sensor, one shard update.
fn transaction(
    inner: &Inner,
    chunk: &[Pending],
    extents: &HashMap<SensorId, Extent>,
    shard: usize,
) -> Result<Built, StorageError> {
    let build = |e: aws_sdk_dynamodb::error::BuildError| StorageError::Internal(e.to_string());
    let mut items = Vec::with_capacity(MAX_ACTIONS);
    let mut actions = Vec::with_capacity(MAX_ACTIONS);
    let mut deltas: BTreeMap<SensorId, Aggregate> = BTreeMap::new();
    for (position, pending) in chunk.iter().enumerate() {
        let reading = &pending.reading;
        let mut item = key_item(reading_key(reading));
        item.insert(
            TEMPERATURE.to_owned(),
            AttributeValue::N(reading.temperature.micros().to_string()),
        );
        let put = Put::builder()
            .table_name(&inner.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build)?;
        items.push(TransactWriteItem::builder().put(put).build());
        actions.push(Action::Reading(position));
        deltas
            .entry(reading.sensor_id.clone())
            .or_default()
            .add(reading.temperature);
    }
    let mut total = Aggregate::default();
    for (sensor, delta) in &deltas {
        total = total.merge(delta);
        let known = extents.get(sensor).copied().unwrap_or_default();
        items.push(aggregate_update(inner, sensor_key(sensor), delta, known)?);
        actions.push(Action::Sensor(sensor.clone()));
    }
    let known = inner
        .shard_extents
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(shard)
        .copied()
        .unwrap_or_default();
    let key = (AGGREGATE_TOTAL_PK.to_owned(), schema::shard_sk(shard));
    items.push(aggregate_update(inner, key, &total, known)?);
    actions.push(Action::Shard(shard));
    debug_assert!(items.len() <= MAX_ACTIONS);
    Ok((items, actions, deltas, total))
}

/// `ADD` count and sum (exact, commutative); `SET` min/max only where this delta extends what
/// is known, guarded so a concurrent writer's more extreme value is never overwritten.
fn aggregate_update(
    inner: &Inner,
    key: (String, String),
    delta: &Aggregate,
    known: Extent,
) -> Result<TransactWriteItem, StorageError> {
    let mut names = HashMap::from([
        ("#c".to_owned(), COUNT.to_owned()),
        ("#s".to_owned(), SUM.to_owned()),
    ]);
    let mut values = HashMap::from([
        (":c".to_owned(), AttributeValue::N(delta.count.to_string())),
        (
            ":s".to_owned(),
            AttributeValue::N(delta.sum_micros.to_string()),
        ),
    ]);
    let mut sets = Vec::new();
    let mut conditions = Vec::new();
    if let Some(min) = delta.min_micros
        && known.min.is_none_or(|k| min < k)
    {
        names.insert("#mn".into(), MIN.into());
        values.insert(":mn".into(), AttributeValue::N(min.to_string()));
        sets.push("#mn = :mn");
        conditions.push("(attribute_not_exists(#mn) OR #mn >= :mn)");
    }
    if let Some(max) = delta.max_micros
        && known.max.is_none_or(|k| max > k)
    {
        names.insert("#mx".into(), MAX.into());
        values.insert(":mx".into(), AttributeValue::N(max.to_string()));
        sets.push("#mx = :mx");
        conditions.push("(attribute_not_exists(#mx) OR #mx <= :mx)");
    }
    let mut expression = "ADD #c :c, #s :s".to_owned();
    if !sets.is_empty() {
        expression.push_str(" SET ");
        expression.push_str(&sets.join(", "));
    }
    let condition = (!conditions.is_empty()).then(|| conditions.join(" AND "));
    let update = Update::builder()
        .table_name(&inner.table)
        .set_key(Some(key_item(key)))
        .update_expression(expression)
        .set_condition_expression(condition)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(|e| StorageError::Internal(e.to_string()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Strongly consistent `BatchGetItem` of every key (100 a call, a few calls at once), retrying
/// `UnprocessedKeys`. Returns the items found, by `(pk, sk)`.
async fn batch_get(
    inner: &Arc<Inner>,
    keys: Vec<(String, String)>,
) -> Result<HashMap<(String, String), Item>, StorageError> {
    let mut found = HashMap::with_capacity(keys.len());
    let mut calls = JoinSet::new();
    let mut chunks = keys.chunks(MAX_BATCH_GET).map(<[_]>::to_vec);
    loop {
        while calls.len() < PARALLEL_CALLS {
            let Some(chunk) = chunks.next() else { break };
            let inner = inner.clone();
            calls.spawn(async move { batch_get_once(&inner, chunk).await });
        }
        let Some(result) = calls.join_next().await else {
            break;
        };
        let items = result
            .map_err(|e| StorageError::Internal(format!("BatchGetItem task failed: {e}")))??;
        for item in items {
            let pk = item.get(PARTITION_KEY).and_then(|v| v.as_s().ok()).cloned();
            let sk = item.get(SORT_KEY).and_then(|v| v.as_s().ok()).cloned();
            if let (Some(pk), Some(sk)) = (pk, sk) {
                found.insert((pk, sk), item);
            }
        }
    }
    Ok(found)
}

async fn batch_get_once(
    inner: &Inner,
    keys: Vec<(String, String)>,
) -> Result<Vec<Item>, StorageError> {
    let mut items = Vec::with_capacity(keys.len());
    let mut request = KeysAndAttributes::builder()
        .set_keys(Some(keys.into_iter().map(key_item).collect()))
        .consistent_read(true)
        .build()
        .map_err(|e| StorageError::Internal(e.to_string()))?;
    for attempt in 0..MAX_BATCH_GET_ATTEMPTS {
        inner.count();
        let output = inner
            .client
            .batch_get_item()
            .request_items(&inner.table, request)
            .send()
            .await
            .map_err(|e| sdk_error("BatchGetItem", e))?;
        if let Some(found) = output.responses().and_then(|r| r.get(&inner.table)) {
            items.extend(found.iter().cloned());
        }
        match output
            .unprocessed_keys()
            .and_then(|u| u.get(&inner.table))
            .filter(|k| !k.keys().is_empty())
        {
            Some(unprocessed) => {
                request = unprocessed.clone();
                tracing::warn!(
                    attempt,
                    keys = unprocessed.keys().len(),
                    "DynamoDB BatchGetItem left keys unprocessed (throttling); retrying"
                );
                tokio::time::sleep(backoff(attempt)).await;
            }
            None => return Ok(items),
        }
    }
    Err(StorageError::Unavailable(
        "BatchGetItem kept returning unprocessed keys (throttled)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Temperature;

    fn pending(sensor: &str, second: i64) -> Pending {
        Pending {
            request: 0,
            index: 0,
            reading: Reading {
                sensor_id: SensorId::from_text(sensor).unwrap(),
                time: Timestamp::from_micros(second * 1_000_000).unwrap(),
                temperature: Temperature::from_micros(1).unwrap(),
            },
        }
    }

    #[test]
    fn chunks_never_exceed_one_hundred_actions() {
        // 1,000 readings of one sensor: 98 readings + 1 sensor + 1 shard a chunk.
        let one: Vec<Pending> = (0..1_000).map(|s| pending("a", s)).collect();
        let chunks = pack(one);
        assert!(
            chunks
                .iter()
                .all(|c| c.len() == 98 || c.len() == 1_000 % 98)
        );
        // Every reading of its own sensor: 49 readings + 49 sensors + 1 shard.
        let mut many: Vec<Pending> = (0..1_000).map(|s| pending(&format!("{s:04}"), 0)).collect();
        many.sort_by(|a, b| a.reading.sensor_id.cmp(&b.reading.sensor_id));
        let chunks = pack(many);
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 1_000);
        for chunk in &chunks {
            let sensors: HashSet<_> = chunk.iter().map(|p| &p.reading.sensor_id).collect();
            assert!(chunk.len() + sensors.len() < MAX_ACTIONS, "{}", chunk.len());
        }
    }

    #[test]
    fn chunks_sharing_a_sensor_land_in_different_waves() {
        let one: Vec<Pending> = (0..300).map(|s| pending("a", s)).collect();
        let waves = waves(pack(one));
        assert!(
            waves.iter().all(|w| w.len() == 1),
            "one aggregate item: one chunk a wave"
        );
        let many: Vec<Pending> = (0..300).map(|s| pending(&format!("{s:04}"), 0)).collect();
        assert_eq!(waves_of(many), 1);
    }

    fn waves_of(pending: Vec<Pending>) -> usize {
        waves(pack(pending)).len()
    }

    fn inner() -> Inner {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        Inner {
            client: aws_sdk_dynamodb::Client::from_conf(config),
            table: "t".into(),
            requests: Default::default(),
            timeout: Duration::from_secs(5),
            shard_extents: Default::default(),
        }
    }

    #[test]
    fn aggregate_updates_add_always_and_set_min_max_only_when_they_extend() {
        let delta = Aggregate::of([3, -2].map(|m| Temperature::from_micros(m).unwrap()));
        let key = ("p".to_owned(), "s".to_owned());
        let update = |known: Extent| {
            let item = aggregate_update(&inner(), key.clone(), &delta, known).unwrap();
            item.update.unwrap()
        };
        let unknown = update(Extent::default());
        assert_eq!(
            unknown.update_expression(),
            "ADD #c :c, #s :s SET #mn = :mn, #mx = :mx"
        );
        assert_eq!(
            unknown.condition_expression(),
            Some(
                "(attribute_not_exists(#mn) OR #mn >= :mn) AND (attribute_not_exists(#mx) OR #mx <= :mx)"
            )
        );
        assert_eq!(
            unknown.expression_attribute_values().unwrap()[":s"],
            AttributeValue::N("1".into())
        );
        let wider = update(Extent {
            min: Some(-5),
            max: Some(5),
        });
        assert_eq!(wider.update_expression(), "ADD #c :c, #s :s");
        assert_eq!(wider.condition_expression(), None);
        assert_eq!(wider.expression_attribute_names().unwrap().len(), 2);
        let lower = update(Extent {
            min: Some(0),
            max: Some(5),
        });
        assert_eq!(lower.update_expression(), "ADD #c :c, #s :s SET #mn = :mn");
        assert!(
            !lower
                .expression_attribute_values()
                .unwrap()
                .contains_key(":mx")
        );
    }

    #[test]
    fn overlapping_requests_wait_for_the_next_round() {
        let batch = |sensor: &str| Batch {
            readings: vec![(0, pending(sensor, 0).reading)],
            repeats: 0,
        };
        let write = |sensor: &str| Write {
            batch: batch(sensor),
            reply: oneshot::channel().0,
            queued: Instant::now(),
        };
        let (round, rest) = split_round(vec![write("a"), write("b"), write("a")]);
        assert_eq!(round.len(), 2);
        assert_eq!(rest.len(), 1);
    }
}
