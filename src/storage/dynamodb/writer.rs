//! The write side of the DynamoDB store: rounds, pre-check, chunked transactions. A group's
//! requests go through [`commit_round`] in rounds; each round is [`precheck`]ed, [`sort_out`]
//! into duplicates, conflicts and new readings, and the new readings are committed chunk by
//! chunk (`chunk.rs`). The design and its guarantees are described in the parent module.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;

use super::Inner;
use super::attributes::{Item, key, temperature_of};
use super::chunk::{ChunkReport, run_chunk};
use super::partials::{ItemState, Origin};
use super::query::batch_get;
use super::schema::{self, SENSOR_AGGREGATE_SK};
use super::transaction::MAX_ACTIONS;
use crate::domain::{Batch, Conflict, Reading, SensorId, Timestamp};
use crate::storage::group_commit::Committer;
use crate::storage::{Cause, PutOutcome, StorageError};

/// Calls of one kind sent at once by one group.
pub(super) const PARALLEL_CALLS: usize = 8;

/// One queued request and the channel that answers its caller.
pub struct QueuedPut {
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
    type Write = QueuedPut;

    async fn commit(&mut self, group: Vec<QueuedPut>) {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return; // never closed; dropping the group answers its callers with an error
        };
        let inner = self.inner.clone();
        // Writes that already waited a whole timeout (DynamoDB slow or down): answer 503 now.
        let (group, stale): (Vec<QueuedPut>, Vec<QueuedPut>) = group
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
fn split_round(group: Vec<QueuedPut>) -> (Vec<QueuedPut>, Vec<QueuedPut>) {
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
    write: QueuedPut,
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
pub(super) struct NewReading {
    pub request: usize,
    pub index: usize,
    pub reading: Reading,
}

pub(super) fn reading_key(reading: &Reading) -> (String, String) {
    (
        schema::reading_pk(reading.sensor_id.as_str()),
        reading.time.to_sortable(),
    )
}

pub(super) fn sensor_key(sensor: &SensorId) -> (String, String) {
    (
        schema::sensor_aggregate_pk(sensor.as_str()),
        SENSOR_AGGREGATE_SK.to_owned(),
    )
}

pub(super) fn key_item((pk, sk): (String, String)) -> Item {
    key(pk, sk)
}

/// Commits a round; no transaction is *retried* after `deadline` (the requests still pending
/// then are answered 503, and their client's retry is safe).
async fn commit_round(inner: &Arc<Inner>, round: Vec<QueuedPut>, deadline: Instant) {
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
    let (found, extents) = match precheck(inner, &requests).await {
        Ok(checked) => checked,
        Err(error) => {
            for mut request in requests {
                request.error = Some(error.clone());
                request.answer();
            }
            return;
        }
    };
    let fresh = sort_out(&mut requests, &found);
    run_waves(inner, &mut requests, fresh, extents, deadline).await;
    for request in requests {
        request.answer();
    }
}

/// Stored items by `(pk, sk)`, as [`batch_get`] returns them.
type Found = HashMap<(String, String), Item>;

/// 1. Pre-check: every reading of the round and the aggregate item of every sensor it
///    touches, whose state the sensor's write is conditioned on.
async fn precheck(
    inner: &Arc<Inner>,
    requests: &[Request],
) -> Result<(Found, HashMap<SensorId, ItemState>), StorageError> {
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut sensors: HashSet<SensorId> = HashSet::new();
    for request in requests {
        for (_, reading) in &request.write.batch.readings {
            keys.push(reading_key(reading));
            sensors.insert(reading.sensor_id.clone());
        }
    }
    keys.extend(sensors.iter().map(sensor_key));
    let found = batch_get(inner, keys).await?;
    let mut states: HashMap<SensorId, ItemState> = HashMap::new();
    for sensor in sensors {
        let state = ItemState::from_item(found.get(&sensor_key(&sensor)))?;
        states.insert(sensor, state);
    }
    Ok((found, states))
}

/// 2. Duplicates and conflicts against what is stored: a request with a conflict is settled
///    (nothing of it is written); the new readings of the others are returned.
fn sort_out(requests: &mut [Request], found: &Found) -> Vec<NewReading> {
    let mut pending: Vec<NewReading> = Vec::new();
    for (number, request) in requests.iter_mut().enumerate() {
        let mut fresh = Vec::new();
        for (index, reading) in &request.write.batch.readings {
            match found.get(&reading_key(reading)).map(temperature_of) {
                None => fresh.push(NewReading {
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
    pending
}

/// 3. Transactions, chunk by chunk; chunks of one wave share no sensor and run at once.
async fn run_waves(
    inner: &Arc<Inner>,
    requests: &mut [Request],
    mut pending: Vec<NewReading>,
    mut states: HashMap<SensorId, ItemState>,
    deadline: Instant,
) {
    pending.sort_by(|a, b| a.reading.sensor_id.cmp(&b.reading.sensor_id));
    for wave in waves(pack(pending)) {
        let mut tasks = JoinSet::new();
        for chunk in wave {
            let chunk: Vec<NewReading> = chunk
                .into_iter()
                .filter(|p| !requests[p.request].settled())
                .collect();
            if chunk.is_empty() {
                continue;
            }
            let chunk_states: HashMap<SensorId, ItemState> = chunk
                .iter()
                .map(|p| {
                    let id = p.reading.sensor_id.clone();
                    let state = states.get(&id).cloned().unwrap_or_default();
                    (id, state)
                })
                .collect();
            let inner = inner.clone();
            tasks.spawn(async move {
                run_chunk(&inner, chunk, chunk_states, deadline, Origin::New).await
            });
        }
        while let Some(report) = tasks.join_next().await {
            let report = match report {
                Ok(report) => report,
                Err(error) => {
                    // A panicked chunk: its requests cannot know what happened.
                    let error =
                        StorageError::Internal(Cause::new("transaction task failed", error));
                    for request in requests.iter_mut().filter(|r| !r.settled()) {
                        request.error = Some(error.clone());
                    }
                    continue;
                }
            };
            merge(requests, report, &mut states);
        }
    }
}

/// Adds what one chunk did to its requests, and what it learnt to the round's states.
fn merge(requests: &mut [Request], report: ChunkReport, states: &mut HashMap<SensorId, ItemState>) {
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
    states.extend(report.sensors);
}

/// Packs readings (sorted by sensor) into transactions of at most [`MAX_ACTIONS`] actions:
/// one per reading, one per sensor of the chunk and one for the global shard.
pub(super) fn pack(pending: Vec<NewReading>) -> Vec<Vec<NewReading>> {
    let mut chunks = Vec::new();
    let mut current: Vec<NewReading> = Vec::new();
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
fn waves(chunks: Vec<Vec<NewReading>>) -> Vec<Vec<Vec<NewReading>>> {
    let mut waves: Vec<(HashSet<SensorId>, Vec<Vec<NewReading>>)> = Vec::new();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Temperature;

    fn pending(sensor: &str, second: i64) -> NewReading {
        NewReading {
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
        let one: Vec<NewReading> = (0..1_000).map(|s| pending("a", s)).collect();
        let chunks = pack(one);
        assert!(
            chunks
                .iter()
                .all(|c| c.len() == 98 || c.len() == 1_000 % 98)
        );
        // Every reading of its own sensor: 49 readings + 49 sensors + 1 shard.
        let mut many: Vec<NewReading> =
            (0..1_000).map(|s| pending(&format!("{s:04}"), 0)).collect();
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
        let one: Vec<NewReading> = (0..300).map(|s| pending("a", s)).collect();
        let waves = waves(pack(one));
        assert!(
            waves.iter().all(|w| w.len() == 1),
            "one aggregate item: one chunk a wave"
        );
        let many: Vec<NewReading> = (0..300).map(|s| pending(&format!("{s:04}"), 0)).collect();
        assert_eq!(waves_of(many), 1);
    }

    fn waves_of(pending: Vec<NewReading>) -> usize {
        waves(pack(pending)).len()
    }

    #[test]
    fn overlapping_requests_wait_for_the_next_round() {
        let batch = |sensor: &str| Batch {
            readings: vec![(0, pending(sensor, 0).reading)],
            repeats: 0,
        };
        let write = |sensor: &str| QueuedPut {
            batch: batch(sensor),
            reply: oneshot::channel().0,
            queued: Instant::now(),
        };
        let (round, rest) = split_round(vec![write("a"), write("b"), write("a")]);
        assert_eq!(round.len(), 2);
        assert_eq!(rest.len(), 1);
    }
}
