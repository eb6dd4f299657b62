//! Retention on the embedded store: a background sweep that deletes expired readings and
//! rollup rows, in small chunks queued to the writer like any other write.
//!
//! Table `retention`:
//! - `"floor"` → µs: readings older than this may have been deleted. The writer refuses any
//!   new reading older than it ([`PutOutcome::Expired`]), inside the same serialised
//!   transactions that delete, so a reading deleted by retention can never be stored and
//!   counted again, even by a request that passed the routes' horizon check just before a
//!   sweep moved the floor. The floor only ever rises.
//! - `"pass"` → the pass in progress: its cutoffs and how far it got (see [`Pass`]).
//!
//! # A pass
//!
//! A pass fixes its cutoffs (`now - RETENTION_*`) when it starts, raising the floor in the same
//! transaction, then visits every sensor in id order, deleting its readings older than the raw
//! cutoff and its rollup rows whose bucket ends before the level's cutoff, then every sensor's
//! expired minutes (one range: that table is in time order) and the all-sensor rollup rows.
//! Each chunk deletes at most [`CHUNK_DELETIONS`] rows, for at most [`CHUNK_TIME`], visits at
//! most [`CHUNK_SENSORS`] sensors, and stores the pass's cursor, in one write transaction: a
//! chunk holds the writer for a couple of milliseconds at most, and ordinary writes queued
//! meanwhile go into the next group. A pass is resumable: after a restart (or a `kill -9`) the
//! next chunk continues from the cursor redb kept (never deleting more than the current
//! retention allows, should it have been lengthened meanwhile).
//!
//! # Why deletions need no log record
//!
//! Aggregates, sensor summaries and the remaining rollups are never changed by a deletion
//! (they keep counting expired readings), so a chunk changes nothing the answers to writes
//! depend on but the floor. A chunk lost in a crash (its commit was not yet checkpointed)
//! takes its floor with it, and its deletions are simply done again by a later chunk; the
//! log's replay can bring back a reading inserted and deleted since the checkpoint, counted
//! exactly once as it was, and the next pass deletes it again.

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use redb::{ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use super::reading_blocks::{self, BlockBuf};
use super::rollups::{MINUTE_ROLLUPS, SENSOR_ROLLUPS, TOTAL_ROLLUPS};
use super::second_blocks::BLOCK_CODE;
use super::storage_error;
use super::tables::Tables;
use super::writer::{QueuedWrite, WriterHandle};
use crate::domain::Batch;
use crate::domain::retention::Retention;
use crate::domain::rollup::{Level, MINUTE_MICROS, SENSOR_LEVELS, TOTAL_LEVELS};
use crate::metrics::Metrics;
use crate::storage::{PutOutcome, StorageError};

pub(super) const RETENTION: TableDefinition<&str, &[u8]> = TableDefinition::new("retention");
const FLOOR: &str = "floor";
const PASS: &str = "pass";

/// Most rows one chunk deletes (about a millisecond of the writer's time).
#[cfg(not(test))]
const CHUNK_DELETIONS: usize = 1_000;
/// Tiny chunks in unit tests, so that a pass takes many chunks.
#[cfg(test)]
const CHUNK_DELETIONS: usize = 5;
/// Most sensors one chunk visits.
const CHUNK_SENSORS: usize = 256;
/// Longest a chunk keeps deleting: it holds the writer, so ordinary writes wait this long at
/// most (plus the deletion in progress and the commit).
const CHUNK_TIME: Duration = Duration::from_millis(2);
/// Deletions between two looks at the clock.
const CLOCK_EVERY: usize = 32;

/// What a chunk may still do: rows to delete and time to take.
struct Budget {
    rows: usize,
    until: Instant,
}

impl Budget {
    fn new() -> Self {
        Self {
            rows: CHUNK_DELETIONS,
            until: Instant::now() + CHUNK_TIME,
        }
    }

    fn spent(&self) -> bool {
        self.rows == 0 || Instant::now() >= self.until
    }

    /// Takes up to `wanted` deletions at once (a block's readings): how many it may do. With
    /// budget left that is at least one of a non-empty `wanted`.
    fn take(&mut self, wanted: usize) -> usize {
        if Instant::now() >= self.until {
            self.rows = self.rows.min(1);
        }
        let granted = wanted.min(self.rows);
        self.rows -= granted;
        granted
    }

    /// Takes (so deletes: every entry taken from `extract` is removed) entries until it ends or
    /// the budget is spent; returns how many, and whether it stopped early (entries may remain).
    /// With budget left it deletes at least one entry or reaches the end, so passes progress.
    fn drain<T, E: Into<redb::Error>>(
        &mut self,
        extract: impl Iterator<Item = Result<T, E>>,
    ) -> Result<(u64, bool), StorageError> {
        if self.rows == 0 {
            return Ok((0, true));
        }
        let mut deleted = 0;
        for entry in extract {
            entry.map_err(storage_error)?;
            deleted += 1;
            self.rows -= 1;
            if deleted % CLOCK_EVERY as u64 == 0 && Instant::now() >= self.until {
                self.rows = 0;
            }
            if self.rows == 0 {
                return Ok((deleted, true));
            }
        }
        Ok((deleted, false))
    }
}
/// Pause after a failed chunk before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a pass deletes: readings before `raw`, rollup rows of a level whose bucket starts
/// before `levels[code]` (their end is then at or before the level's horizon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cutoffs {
    raw: Option<i64>,
    levels: [Option<i64>; 4],
}

impl Cutoffs {
    /// The cutoffs of `retention` at `now` (µs).
    pub(super) fn at(retention: &Retention, now: i64) -> Self {
        let horizons = retention.horizons(now);
        Self {
            raw: horizons.raw(),
            levels: Level::ALL.map(|level| horizons.level_start(level)),
        }
    }

    fn level(&self, level: Level) -> Option<i64> {
        self.levels[usize::from(level.code())]
    }

    /// What both cutoffs delete: a pass resumed after a restart with a longer retention
    /// deletes no more than the new one allows (`None` deletes nothing).
    fn narrowed(self, other: Self) -> Self {
        let both = |a: Option<i64>, b: Option<i64>| Some(a?.min(b?));
        Self {
            raw: both(self.raw, other.raw),
            levels: [0, 1, 2, 3].map(|i| both(self.levels[i], other.levels[i])),
        }
    }
}

/// Where a pass is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Visiting sensors; every sensor up to and including this one is done.
    Sensors(Option<String>),
    /// Deleting the all-sensor rollup rows.
    Totals,
}

/// A pass in progress, as stored under `"pass"`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pass {
    cutoffs: Cutoffs,
    stage: Stage,
}

const NONE: i64 = i64::MIN;

impl Pass {
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(48);
        for value in std::iter::once(self.cutoffs.raw).chain(self.cutoffs.levels) {
            bytes.extend_from_slice(&value.unwrap_or(NONE).to_le_bytes());
        }
        match &self.stage {
            Stage::Sensors(None) => bytes.push(0),
            Stage::Sensors(Some(sensor)) => {
                bytes.push(1);
                bytes.extend_from_slice(sensor.as_bytes());
            }
            Stage::Totals => bytes.push(2),
        }
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let value = |i: usize| -> Option<Option<i64>> {
            let raw = i64::from_le_bytes(bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?);
            Some((raw != NONE).then_some(raw))
        };
        let cutoffs = Cutoffs {
            raw: value(0)?,
            levels: [value(1)?, value(2)?, value(3)?, value(4)?],
        };
        let stage = match bytes.get(40)? {
            0 => Stage::Sensors(None),
            1 => Stage::Sensors(Some(String::from_utf8(bytes[41..].to_vec()).ok()?)),
            2 => Stage::Totals,
            _ => return None,
        };
        Some(Self { cutoffs, stage })
    }
}

/// What one chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct SweepProgress {
    /// Readings deleted.
    pub(super) readings: u64,
    /// Rollup rows deleted.
    pub(super) rollups: u64,
    /// The pass is over (nothing is in progress now).
    pub(super) done: bool,
}

fn corrupt() -> StorageError {
    StorageError::Internal("corrupt retention state".into())
}

impl Tables<'_> {
    /// The request indexes of `batch`'s readings older than the floor: refused, since readings
    /// of that time may already have been deleted.
    pub(super) fn expired_in(&self, batch: &Batch) -> Result<Vec<usize>, StorageError> {
        let Some(floor) = self.floor()? else {
            return Ok(Vec::new());
        };
        Ok(batch
            .readings
            .iter()
            .filter(|(_, reading)| reading.time.micros() < floor)
            .map(|(index, _)| *index)
            .collect())
    }

    fn floor(&self) -> Result<Option<i64>, StorageError> {
        let table = self.txn.open_table(RETENTION).map_err(storage_error)?;
        match table.get(FLOOR).map_err(storage_error)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(i64::from_le_bytes(
                bytes.value().try_into().map_err(|_| corrupt())?,
            ))),
        }
    }

    /// One chunk of the pass in progress, or of a new pass with `cutoffs` when none is.
    pub(super) fn sweep_chunk(&mut self, cutoffs: Cutoffs) -> Result<SweepProgress, StorageError> {
        let stored = {
            let table = self.txn.open_table(RETENTION).map_err(storage_error)?;
            let pass = table.get(PASS).map_err(storage_error)?;
            pass.map(|bytes| Pass::decode(bytes.value()).ok_or_else(corrupt))
                .transpose()?
        };
        let mut pass = match stored {
            Some(pass) => Pass {
                cutoffs: pass.cutoffs.narrowed(cutoffs),
                ..pass
            },
            None => {
                if let Some(raw) = cutoffs.raw
                    && self.floor()?.is_none_or(|floor| floor < raw)
                {
                    self.txn
                        .open_table(RETENTION)
                        .map_err(storage_error)?
                        .insert(FLOOR, raw.to_le_bytes().as_slice())
                        .map_err(storage_error)?;
                }
                Pass {
                    cutoffs,
                    stage: Stage::Sensors(None),
                }
            }
        };
        let mut progress = SweepProgress::default();
        let mut budget = Budget::new();
        if let Stage::Sensors(after) = &pass.stage {
            let sensors = self.sensors_after(after.as_deref())?;
            let mut done_up_to = after.clone();
            let mut finished = sensors.len() < CHUNK_SENSORS;
            for (visited, sensor) in sensors.into_iter().enumerate() {
                // The first sensor is always visited, so every chunk makes progress.
                if visited > 0 && budget.spent() {
                    finished = false;
                    break;
                }
                let (readings, rollups, complete) =
                    self.sweep_sensor(&sensor, &pass.cutoffs, &mut budget)?;
                progress.readings += readings;
                progress.rollups += rollups;
                if !complete {
                    finished = false;
                    break;
                }
                done_up_to = Some(sensor);
            }
            pass.stage = if finished {
                Stage::Totals
            } else {
                Stage::Sensors(done_up_to)
            };
        }
        if pass.stage == Stage::Totals && !budget.spent() {
            // Every sensor's expired minutes at once: that table is in time order.
            let mut minutes_left = false;
            if let Some(cut) = pass.cutoffs.level(Level::Minute) {
                let mut minutes = self.txn.open_table(MINUTE_ROLLUPS).map_err(storage_error)?;
                let extract = minutes
                    .extract_from_if((i64::MIN, "")..(cut, ""), |_, _| true)
                    .map_err(storage_error)?;
                let (deleted, early) = budget.drain(extract)?;
                progress.rollups += deleted;
                minutes_left = early;
            }
            let mut totals = self.txn.open_table(TOTAL_ROLLUPS).map_err(storage_error)?;
            // Rows of each level below its cut, then whole minutes of second blocks below the
            // seconds' cut: the minute holding the cut keeps its earlier seconds until a later
            // pass (windows never ask for buckets beyond a level's horizon, so they are never
            // read).
            let mut ranges = Vec::with_capacity(TOTAL_LEVELS.len() + 1);
            for level in TOTAL_LEVELS {
                if let Some(cut) = pass.cutoffs.level(level) {
                    ranges.push((level.code(), cut));
                }
            }
            if let Some(cut) = pass.cutoffs.level(Level::Second) {
                ranges.push((BLOCK_CODE, cut.saturating_sub(MINUTE_MICROS - 1)));
            }
            let mut complete = !minutes_left;
            if complete {
                for (code, below) in ranges {
                    let extract = totals
                        .extract_from_if((code, i64::MIN)..(code, below), |_, _| true)
                        .map_err(storage_error)?;
                    let (deleted, early) = budget.drain(extract)?;
                    progress.rollups += deleted;
                    if early {
                        complete = false;
                        break;
                    }
                }
            }
            progress.done = complete;
        }
        let mut table = self.txn.open_table(RETENTION).map_err(storage_error)?;
        if progress.done {
            table.remove(PASS).map_err(storage_error)?;
        } else {
            table
                .insert(PASS, pass.encode().as_slice())
                .map_err(storage_error)?;
        }
        Ok(progress)
    }

    /// The next [`CHUNK_SENSORS`] sensor ids after `after`.
    fn sensors_after(&self, after: Option<&str>) -> Result<Vec<String>, StorageError> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut found = Vec::with_capacity(CHUNK_SENSORS);
        for entry in self
            .sensors
            .range::<&str>((start, Bound::Unbounded))
            .map_err(storage_error)?
            .take(CHUNK_SENSORS)
        {
            let (key, _) = entry.map_err(storage_error)?;
            found.push(key.value().to_owned());
        }
        Ok(found)
    }

    /// Deletes one sensor's expired readings and rollup rows within `budget`; says how many of
    /// each and whether the sensor is done.
    fn sweep_sensor(
        &mut self,
        sensor: &str,
        cutoffs: &Cutoffs,
        budget: &mut Budget,
    ) -> Result<(u64, u64, bool), StorageError> {
        let mut readings = 0;
        if let Some(cut) = cutoffs.raw {
            let extract = self
                .readings
                .extract_from_if((sensor, i64::MIN)..(sensor, cut), |_, _| true)
                .map_err(storage_error)?;
            let (deleted, early) = budget.drain(extract)?;
            readings = deleted;
            if early {
                return Ok((readings, 0, false));
            }
            let (deleted, early) = self.sweep_blocks(sensor, cut, budget)?;
            readings += deleted;
            if early {
                return Ok((readings, 0, false));
            }
        }
        let mut rollups = 0;
        let mut table = self.txn.open_table(SENSOR_ROLLUPS).map_err(storage_error)?;
        for level in SENSOR_LEVELS {
            let Some(cut) = cutoffs.level(level) else {
                continue;
            };
            let code = level.code();
            let extract = table
                .extract_from_if((sensor, code, i64::MIN)..(sensor, code, cut), |_, _| true)
                .map_err(storage_error)?;
            let (deleted, early) = budget.drain(extract)?;
            rollups += deleted;
            if early {
                return Ok((readings, rollups, false));
            }
        }
        Ok((readings, rollups, true))
    }
}

impl Tables<'_> {
    /// Deletes a sensor's readings older than `cut` from its blocks, oldest first, within
    /// `budget`: a block wholly older is removed, one holding the cut (or the budget's end)
    /// is written back with its newer readings, keyed by the first of them. Returns how many
    /// readings it deleted and whether it stopped early.
    fn sweep_blocks(
        &mut self,
        sensor: &str,
        cut: i64,
        budget: &mut Budget,
    ) -> Result<(u64, bool), StorageError> {
        let mut deleted = 0;
        loop {
            let oldest = self
                .blocks
                .range((sensor, i64::MIN)..(sensor, cut))
                .map_err(storage_error)?
                .next()
                .transpose()
                .map_err(storage_error)?
                .map(|(key, value)| (key.value().1, value.value().to_vec()));
            let Some((first, bytes)) = oldest else {
                return Ok((deleted, false));
            };
            let readings = reading_blocks::decode(sensor, first, &bytes)?;
            let expired = readings.partition_point(|&(micros, _)| micros < cut);
            let taken = budget.take(expired);
            if taken == 0 {
                return Ok((deleted, true));
            }
            self.blocks.remove((sensor, first)).map_err(storage_error)?;
            if let Some(&(start, value)) = readings.get(taken) {
                let mut kept = BlockBuf::starting(start, value);
                for &(micros, value) in &readings[taken + 1..] {
                    kept.push(micros, value);
                }
                self.blocks
                    .insert((sensor, start), kept.encoded())
                    .map_err(storage_error)?;
            }
            deleted += taken as u64;
            if taken < expired {
                return Ok((deleted, true));
            }
            if expired < readings.len() {
                return Ok((deleted, false));
            }
        }
    }
}

/// Whether a group holding these writes must be committed though it logged nothing.
pub(super) fn changes_derived_rows(write: &QueuedWrite) -> bool {
    matches!(
        write,
        QueuedWrite::BuildRollups { .. } | QueuedWrite::Sweep { .. }
    )
}

/// A refusal for the readings older than the floor (`None` when there are none).
pub(super) fn refusal(expired: Vec<usize>) -> Option<PutOutcome> {
    (!expired.is_empty()).then_some(PutOutcome::Expired(expired))
}

/// How long the sweep waits between passes: a quarter of the shortest finite period, between
/// one second and a minute.
fn pause_between_passes(retention: &Retention) -> Duration {
    let shortest = std::iter::once(retention.raw)
        .chain(Level::ALL.map(|level| retention.level(level)))
        .filter_map(|period| period.micros())
        .min()
        .unwrap_or(i64::MAX);
    Duration::from_micros(u64::try_from(shortest / 4).unwrap_or(u64::MAX))
        .clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Starts the sweep thread when `retention` deletes anything. It holds the writer only while a
/// chunk is queued, so dropping the store stops it (the pass resumes on the next open).
pub(super) fn start(
    writer: Weak<WriterHandle>,
    building: Arc<AtomicBool>,
    retention: Retention,
    metrics: Metrics,
) -> Result<(), StorageError> {
    if !retention.deletes_anything() {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("embedded-retention".into())
        .spawn(move || run(&writer, &building, &retention, &metrics))
        .map(drop)
        .map_err(|e| {
            StorageError::Internal(format!("cannot start the retention sweep: {e}").into())
        })
}

/// Sleeps `pause` in short steps; `false` as soon as the store is closed.
fn sleep_while_open(writer: &Weak<WriterHandle>, pause: Duration) -> bool {
    const STEP: Duration = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < pause {
        if writer.strong_count() == 0 {
            return false;
        }
        std::thread::sleep(STEP.min(pause - slept));
        slept += STEP;
    }
    writer.strong_count() > 0
}

fn run(
    writer: &Weak<WriterHandle>,
    building: &AtomicBool,
    retention: &Retention,
    metrics: &Metrics,
) {
    let pause = pause_between_passes(retention);
    tracing::info!(
        raw = %retention.raw,
        every_seconds = pause.as_secs_f64(),
        "retention sweep started"
    );
    loop {
        // Readings not yet counted by a rollup build must stay until it has counted them.
        if building.load(Ordering::SeqCst) {
            if !sleep_while_open(writer, pause) {
                return;
            }
            continue;
        }
        let Some(handle) = writer.upgrade() else {
            return;
        };
        let cutoffs = Cutoffs::at(retention, chrono::Utc::now().timestamp_micros());
        let (reply, answer) = oneshot::channel();
        let queued = handle
            .commit()
            .submit_blocking(QueuedWrite::Sweep { cutoffs, reply });
        drop(handle);
        let result = match queued {
            Ok(()) => answer.blocking_recv().unwrap_or_else(|_| {
                Err(StorageError::Internal(
                    "the writer dropped a sweep chunk".into(),
                ))
            }),
            Err(error) => Err(error),
        };
        match result {
            Ok(progress) => {
                metrics.retention_deleted(progress.readings, progress.rollups);
                if progress.done {
                    metrics.retention_swept(chrono::Utc::now().timestamp_micros());
                    if !sleep_while_open(writer, pause) {
                        return;
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "a retention sweep chunk failed; retrying");
                if !sleep_while_open(writer, RETRY_AFTER) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{Value, json};

    use super::super::{EmbeddedStore, FILE_NAME, LOG_FILE_NAME};
    use super::*;
    use crate::domain::window::Span;
    use crate::domain::{Aggregate, SensorId};
    use crate::storage::group_commit::unobserved;
    use crate::storage::{ReadingsQuery, Store};

    const T0: i64 = 1_633_305_600_000_000; // 2021-10-04T00:00:00Z
    const HOUR: i64 = 3_600_000_000;
    /// No checkpoint during a test unless the store is closed.
    const NEVER: Duration = Duration::from_secs(3_600);

    fn open(dir: &Path) -> EmbeddedStore {
        EmbeddedStore::open_with(dir, 1 << 20, unobserved(), NEVER, Default::default())
            .expect("the store opens")
    }

    fn reading(sensor: &str, micros: i64, milli: i64) -> Value {
        let time = chrono::DateTime::from_timestamp_micros(micros).unwrap();
        json!({"sensorID": sensor, "time": time.to_rfc3339(), "temperature": milli as f64 / 1e3})
    }

    async fn put(store: &EmbeddedStore, body: Value) -> PutOutcome {
        store
            .put_readings(Batch::parse(&body).unwrap())
            .await
            .unwrap()
    }

    /// Three sensors with ten readings each in the first minute of T0, and one an hour later.
    async fn fill(store: &EmbeddedStore) {
        for sensor in ["a", "b", "c"] {
            let early: Vec<Value> = (0..10)
                .map(|i| reading(sensor, T0 + i * 1_000_000, i * 111 - 500))
                .collect();
            put(store, Value::Array(early)).await;
            put(store, reading(sensor, T0 + 2 * HOUR, 42)).await;
        }
    }

    /// Readings before T0 + 1 h go, and minute rollups ending before it.
    fn cutoffs() -> Cutoffs {
        let mut levels = [None; 4];
        levels[usize::from(Level::Minute.code())] = Some(T0 + HOUR);
        Cutoffs {
            raw: Some(T0 + HOUR),
            levels,
        }
    }

    async fn chunk(store: &EmbeddedStore) -> SweepProgress {
        store
            .write(|reply| QueuedWrite::Sweep {
                cutoffs: cutoffs(),
                reply,
            })
            .await
            .unwrap()
    }

    /// Runs chunks until the pass is over; returns (readings, rollup rows, chunks).
    async fn sweep(store: &EmbeddedStore) -> (u64, u64, usize) {
        let mut total = (0, 0, 0);
        for _ in 0..1_000 {
            let progress = chunk(store).await;
            assert!((progress.readings + progress.rollups) as usize <= CHUNK_DELETIONS);
            total = (
                total.0 + progress.readings,
                total.1 + progress.rollups,
                total.2 + 1,
            );
            if progress.done {
                return total;
            }
        }
        panic!("the pass never ended");
    }

    async fn readings_of(store: &EmbeddedStore, name: &str) -> usize {
        let query = ReadingsQuery {
            sensor_id: SensorId::from_text(name).unwrap(),
            from: None,
            to: None,
            after: None,
            limit: 1_000,
        };
        store.readings(query).await.unwrap().readings.len()
    }

    async fn first_hour(store: &EmbeddedStore) -> Aggregate {
        store
            .window_stats(None, Span::new(T0, T0 + HOUR))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_pass_deletes_in_bounded_chunks_and_changes_no_aggregate() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        fill(&store).await;
        let stats = store.stats(None).await.unwrap();
        let hour = first_hour(&store).await;
        assert_eq!(hour.count, 30);
        let (readings, rollups, chunks) = sweep(&store).await;
        assert_eq!(readings, 30);
        // One minute row per sensor, one over all sensors.
        assert_eq!(rollups, 4);
        assert!(chunks >= 7, "{chunks} chunks of at most {CHUNK_DELETIONS}");
        for sensor in ["a", "b", "c"] {
            assert_eq!(readings_of(&store, sensor).await, 1);
        }
        assert_eq!(store.stats(None).await.unwrap(), stats);
        // The hour rollups are kept and still count the deleted readings.
        assert_eq!(first_hour(&store).await, hour);
        // A second pass finds nothing.
        assert_eq!(sweep(&store).await.0, 0);
        // Readings older than the floor are refused, however they got past the routes.
        let late = put(&store, reading("a", T0 + 5_000_000, -500 + 5 * 111)).await;
        assert_eq!(late, PutOutcome::Expired(vec![0]));
        let fresh = put(&store, reading("a", T0 + HOUR, 1)).await;
        assert!(matches!(fresh, PutOutcome::Stored { stored: 1, .. }));
        assert_eq!(store.stats(None).await.unwrap().count, stats.count + 1);
    }

    #[tokio::test]
    async fn a_pass_resumes_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        fill(&store).await;
        let first = chunk(&store).await;
        assert!(!first.done);
        drop(store); // a clean close checkpoints the pass's cursor
        let store = open(dir.path());
        let (readings, rollups, _) = sweep(&store).await;
        assert_eq!(first.readings + readings, 30);
        assert_eq!(first.rollups + rollups, 4);
    }

    /// A crash that loses the chunks since the last checkpoint (they are in no log record)
    /// loses nothing else: the log's readings come back, counted once, and a new pass deletes
    /// what the lost chunks had deleted.
    #[tokio::test]
    async fn chunks_lost_in_a_crash_are_done_again_and_aggregates_stay_exact() {
        let dir = tempfile::tempdir().unwrap();
        let durable = {
            drop(open(dir.path()));
            std::fs::read(dir.path().join(FILE_NAME)).unwrap()
        };
        let store = open(dir.path());
        fill(&store).await;
        let stats = store.stats(None).await.unwrap();
        let hour = first_hour(&store).await;
        chunk(&store).await;
        chunk(&store).await;
        let crashed = tempfile::tempdir().unwrap();
        std::fs::write(crashed.path().join(FILE_NAME), &durable).unwrap();
        std::fs::copy(
            dir.path().join(LOG_FILE_NAME),
            crashed.path().join(LOG_FILE_NAME),
        )
        .unwrap();
        drop(store);
        let store = open(crashed.path());
        assert_eq!(store.stats(None).await.unwrap(), stats);
        assert_eq!(first_hour(&store).await, hour);
        assert_eq!(readings_of(&store, "a").await, 11);
        let (readings, _, _) = sweep(&store).await;
        assert_eq!(readings, 30);
        assert_eq!(store.stats(None).await.unwrap(), stats);
        assert_eq!(first_hour(&store).await, hour);
    }

    /// Seconds over all sensors are kept in blocks of a minute: a pass deletes the blocks that
    /// end at or before the cut and keeps the one holding it whole.
    #[tokio::test]
    async fn a_pass_deletes_the_minutes_of_seconds_that_end_before_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        fill(&store).await;
        let count_in = |from: i64, to: i64| {
            let store = &store;
            async move {
                store
                    .window_stats(None, Span::new(from, to))
                    .await
                    .unwrap()
                    .count
            }
        };
        let late_second = (T0 + 2 * HOUR, T0 + 2 * HOUR + 1_000_000);
        assert_eq!(count_in(T0, T0 + 10_000_000).await, 30);
        let mut levels = [None; 4];
        levels[usize::from(Level::Second.code())] = Some(T0 + 2 * HOUR + 30_000_000);
        let cutoffs = Cutoffs { raw: None, levels };
        let mut deleted = 0;
        for _ in 0..100 {
            let progress = store
                .write(|reply| QueuedWrite::Sweep { cutoffs, reply })
                .await
                .unwrap();
            deleted += progress.rollups;
            if progress.done {
                break;
            }
        }
        // The minute at T0 (ten seconds, one block) went; the one holding the cut stayed.
        assert_eq!(deleted, 1);
        assert_eq!(count_in(T0, T0 + 10_000_000).await, 0);
        assert_eq!(count_in(late_second.0, late_second.1).await, 3);
        assert_eq!(store.stats(None).await.unwrap().count, 33);
    }

    #[test]
    fn a_pass_round_trips_through_its_encoding() {
        for stage in [
            Stage::Sensors(None),
            Stage::Sensors(Some("gh-7 ü".into())),
            Stage::Totals,
        ] {
            let pass = Pass {
                cutoffs: Cutoffs {
                    raw: Some(-5),
                    levels: [None, Some(60_000_000), None, Some(i64::MAX)],
                },
                stage,
            };
            assert_eq!(Pass::decode(&pass.encode()), Some(pass));
        }
        assert_eq!(Pass::decode(&[1, 2, 3]), None);
    }

    #[test]
    fn a_resumed_pass_deletes_no_more_than_the_current_retention_allows() {
        let stored = Cutoffs {
            raw: Some(100),
            levels: [Some(5), None, Some(7), Some(9)],
        };
        let now = Cutoffs {
            raw: Some(50),
            levels: [None, Some(3), Some(8), Some(1)],
        };
        assert_eq!(
            stored.narrowed(now),
            Cutoffs {
                raw: Some(50),
                levels: [None, None, Some(7), Some(1)],
            }
        );
    }

    #[test]
    fn a_chunk_stops_at_its_row_or_time_budget_and_always_progresses() {
        let items = || (0..100).map(|_| Ok::<(), redb::StorageError>(()));
        let mut rows = Budget {
            rows: 40,
            until: Instant::now() + Duration::from_secs(60),
        };
        assert_eq!(rows.drain(items()).unwrap(), (40, true));
        assert!(rows.spent());
        assert_eq!(rows.drain(items()).unwrap(), (0, true));
        let mut late = Budget {
            rows: 1_000,
            until: Instant::now(),
        };
        assert_eq!(late.drain(items()).unwrap(), (CLOCK_EVERY as u64, true));
        let mut plenty = Budget {
            rows: 1_000,
            until: Instant::now() + Duration::from_secs(60),
        };
        assert_eq!(plenty.drain(items()).unwrap(), (100, false));
    }

    #[test]
    fn passes_are_spaced_by_the_shortest_period() {
        use crate::domain::retention::Period;
        let short = Retention {
            raw: Period::seconds(2),
            ..Retention::default()
        };
        assert_eq!(pause_between_passes(&short), Duration::from_secs(1));
        let month = Retention {
            raw: Period::parse("30d").unwrap(),
            ..Retention::default()
        };
        assert_eq!(pause_between_passes(&month), Duration::from_secs(60));
        let minute = Retention {
            raw: Period::seconds(60),
            ..Retention::default()
        };
        assert_eq!(pause_between_passes(&minute), Duration::from_secs(15));
    }
}
