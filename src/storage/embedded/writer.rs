//! The writer and syncer threads: group commit through the write-ahead log (see [`super`]).
//!
//! The writer applies each group of queued writes in one redb transaction and logs what it
//! changed; the syncer `fdatasync`s the log and only then answers the group's callers. After a
//! storage fault the writer reopens the database and replays the log (see [`super::health`]);
//! a panic in either thread is caught and leaves the store not ready.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase};
use tokio::sync::oneshot;

use super::health::{Health, RECOVERY_RETRY, ROOM_NEEDED, check_room, panic_message};
use super::reading_blocks::READING_BLOCKS;
use super::recent::{RECENT_GENERATION, RECENT_SINCE, RecentReadings, stored_generation};
use super::recovery;
use super::retention::{Cutoffs, SweepProgress, changes_derived_rows};
use super::rollups::{BuildProgress, Coverage};
use super::tables::{COUNTERS, Cached, SummaryCache, Tables, Touched, WAL_SEQUENCE};
use super::wal::Log;
use super::{log_error, open_database, storage_error};
use crate::domain::Batch;
use crate::storage::group_commit::{BlockingCommitter, GroupCommit, GroupObserver};
use crate::storage::{Cause, ItemId, PutOutcome, StorageError};

/// Pending writes beyond which callers wait (back-pressure).
const WRITE_QUEUE: usize = 4_096;
/// Most requests in one transaction (see also [`Writer`]'s `MAX_GROUP_WEIGHT`).
const MAX_GROUP: usize = 256;
/// A group stops taking requests once it holds this many readings: 256 requests of 1,000
/// readings made commits of up to 256,000 readings, and under a flood every accepted write
/// waited for one such commit behind another (p99 about 3 s) while the group's batches held
/// memory. 32 such requests still share one fsync.
const MAX_GROUP_READINGS: usize = 32_768;
/// A checkpoint (an fsync'd redb commit, then the log starts over) at least this often...
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// ...or once the log holds this much.
const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
/// Most sensors whose aggregates the writer keeps in memory.
const AGGREGATE_CACHE: usize = 65_536;

/// The writer thread's queue and the thread itself: dropping the last store handle closes the
/// queue and waits for the thread's final checkpoint, so the database can be reopened at once.
pub(super) struct WriterHandle {
    commit: Option<GroupCommit<QueuedWrite>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WriterHandle {
    pub(super) fn commit(&self) -> &GroupCommit<QueuedWrite> {
        self.commit.as_ref().expect("present until dropped")
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        drop(self.commit.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the embedded writer thread panicked");
        }
    }
}

/// What the writer needs to reopen the database after a fault.
pub(super) struct Reopen {
    pub(super) path: PathBuf,
    pub(super) cache_bytes: usize,
    pub(super) health: Arc<Health>,
}

/// Where recovery left the store: what the writer continues from.
pub(super) struct Recovered {
    /// The last log record recovery applied.
    pub(super) sequence: u64,
    /// The recent readings' generation stored in the database (see [`super::recent`]).
    pub(super) generation: u64,
    /// How far the rollups cover the readings.
    pub(super) coverage: Coverage,
}

impl WriterHandle {
    /// Starts the syncer and the writer thread on `db` and `log`, continuing from `recovered`.
    pub(super) fn start(
        reopen: Reopen,
        db: Arc<Database>,
        log: Log,
        recovered: Recovered,
        checkpoint_every: Duration,
        on_group: GroupObserver,
    ) -> Result<Self, StorageError> {
        let Recovered {
            sequence,
            generation,
            coverage,
        } = recovered;
        let failed = Arc::new(AtomicBool::new(false));
        // Room for one group waiting behind the fsync in progress: the writer applies the next
        // group during the fsync, then lets writes pile up into a bigger group instead of
        // running ahead with small ones (fewer, larger transactions; +7 % PUT/s at 64 clients,
        // 3 alternating A/B runs). A queue of 0 (a rendezvous) was worse: -20 %.
        let (syncer, queue) = std::sync::mpsc::sync_channel(1);
        let file = log.sync_handle().map_err(log_error)?;
        let syncer_failed = failed.clone();
        let health = reopen.health.clone();
        let syncer_thread = std::thread::Builder::new()
            .name("embedded-log-sync".into())
            .spawn(move || {
                let caught = catch_unwind(AssertUnwindSafe(|| {
                    run_syncer(file, queue, syncer_failed, &health);
                }));
                if let Err(payload) = caught {
                    tracing::error!(
                        panic = %panic_message(&*payload),
                        "the embedded log syncer panicked; the store is not ready until a restart"
                    );
                }
                health.syncer_stopped();
            })
            .map_err(|e| StorageError::Internal(Cause::new("cannot start the log syncer", e)))?;
        let writer = Writer {
            db: Some(db),
            reopen,
            last_attempt: None,
            stopped: false,
            log,
            sequence,
            last_checkpoint: Instant::now(),
            checkpoint_every,
            ops: Vec::new(),
            appended: 0,
            syncer: Some(syncer),
            syncer_thread: Some(syncer_thread),
            failed,
            aggregates: SummaryCache::default(),
            coverage,
            recent: Arc::default(),
            generation,
        };
        let (commit, thread) =
            GroupCommit::spawn_thread(writer, "embedded-writer", WRITE_QUEUE, MAX_GROUP, on_group)
                .map_err(|e| {
                    StorageError::Internal(Cause::new("cannot start the writer thread", e))
                })?;
        Ok(Self {
            commit: Some(commit),
            thread: Some(thread),
        })
    }
}

/// One queued write and the channel that answers its caller.
pub(super) enum QueuedWrite {
    Readings {
        batch: Batch,
        reply: oneshot::Sender<Result<PutOutcome, StorageError>>,
    },
    ItemPut {
        json: String,
        reply: oneshot::Sender<Result<ItemId, StorageError>>,
    },
    ItemDelete {
        id: ItemId,
        reply: oneshot::Sender<Result<bool, StorageError>>,
    },
    /// The next slice of the rollup build (see [`super::rollups`]).
    BuildRollups {
        reply: oneshot::Sender<Result<BuildProgress, StorageError>>,
    },
    /// Readiness while a fault is pending: answered once the writer could reopen the store.
    Probe {
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
    /// The next chunk of the retention sweep (see [`super::retention`]).
    Sweep {
        cutoffs: Cutoffs,
        reply: oneshot::Sender<Result<SweepProgress, StorageError>>,
    },
}

/// What one write did inside a group's transaction, before it is acknowledged.
pub(super) enum Effect {
    Readings(PutOutcome),
    ItemPut(ItemId),
    ItemDelete(bool),
    BuildRollups(BuildProgress),
    Probe,
    Sweep(SweepProgress),
}

impl QueuedWrite {
    fn answer(self, effect: Result<Effect, StorageError>) {
        // A caller that gave up (client disconnected) has dropped its receiver: ignore.
        match (self, effect) {
            (Self::Readings { reply, .. }, Ok(Effect::Readings(outcome))) => {
                let _ = reply.send(Ok(outcome));
            }
            (Self::ItemPut { reply, .. }, Ok(Effect::ItemPut(id))) => {
                let _ = reply.send(Ok(id));
            }
            (Self::ItemDelete { reply, .. }, Ok(Effect::ItemDelete(existed))) => {
                let _ = reply.send(Ok(existed));
            }
            (Self::BuildRollups { reply }, Ok(Effect::BuildRollups(progress))) => {
                let _ = reply.send(Ok(progress));
            }
            (Self::Probe { reply }, Ok(Effect::Probe)) => {
                let _ = reply.send(Ok(()));
            }
            (Self::Sweep { reply, .. }, Ok(Effect::Sweep(progress))) => {
                let _ = reply.send(Ok(progress));
            }
            (write, result) => {
                let error = match result {
                    Err(error) => error,
                    Ok(_) => StorageError::Internal("write answered with another kind".into()),
                };
                match write {
                    Self::Readings { reply, .. } => drop(reply.send(Err(error))),
                    Self::ItemPut { reply, .. } => drop(reply.send(Err(error))),
                    Self::ItemDelete { reply, .. } => drop(reply.send(Err(error))),
                    Self::BuildRollups { reply } => drop(reply.send(Err(error))),
                    Self::Probe { reply } => drop(reply.send(Err(error))),
                    Self::Sweep { reply, .. } => drop(reply.send(Err(error))),
                }
            }
        }
    }
}

/// The write side: owns the log, runs on its own thread (see [`GroupCommit::spawn_thread`]).
struct Writer {
    /// `None` after a fault closed it, until it is reopened.
    db: Option<Arc<Database>>,
    reopen: Reopen,
    /// When the last attempt to reopen after a fault was made.
    last_attempt: Option<Instant>,
    /// Set after a caught panic: every write is refused from then on.
    stopped: bool,
    log: Log,
    /// Sequence number of the last record logged (and applied to redb).
    sequence: u64,
    last_checkpoint: Instant,
    checkpoint_every: Duration,
    /// The current group's log record, reused between groups.
    ops: Vec<u8>,
    /// Bytes appended to the log since open (never rewound): what the syncer must cover.
    appended: u64,
    /// Groups waiting for the log's `fdatasync`, in commit order.
    syncer: Option<std::sync::mpsc::SyncSender<AwaitingSync>>,
    syncer_thread: Option<std::thread::JoinHandle<()>>,
    /// Set by the syncer when an `fdatasync` failed: from then on nothing is acknowledged.
    failed: Arc<AtomicBool>,
    /// The committed aggregates of recently written sensors: the writer is redb's only writer,
    /// so these stay exact and save a lookup per new reading. Cleared when it would exceed
    /// `AGGREGATE_CACHE` entries (a few MiB at most).
    aggregates: SummaryCache,
    /// How far the rollups cover the readings: the writer is the only one to change it.
    coverage: Coverage,
    /// The sensors' in-order readings since the last checkpoint, not in their blocks yet, as
    /// committed (see [`super::recent`]).
    recent: Arc<RecentReadings>,
    /// The generation `recent` goes with, as stored in the last commit.
    generation: u64,
}

/// A committed group on its way to its callers, once the log is durable up to `appended`.
struct AwaitingSync {
    group: Vec<QueuedWrite>,
    effects: Vec<Effect>,
    appended: u64,
}

impl BlockingCommitter for Writer {
    type Write = QueuedWrite;

    const MAX_GROUP_WEIGHT: usize = MAX_GROUP_READINGS;

    /// Readings for a batch, 1 for anything else.
    fn weight(write: &QueuedWrite) -> usize {
        match write {
            QueuedWrite::Readings { batch, .. } => batch.readings.len().max(1),
            _ => 1,
        }
    }

    fn commit(&mut self, group: Vec<QueuedWrite>) {
        if self.stopped {
            for write in group {
                write.answer(Err(stopped()));
            }
            return;
        }
        // A panic drops the group's reply channels: its callers get 503.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| self.commit_group(group))) {
            tracing::error!(
                panic = %panic_message(&*payload),
                "the embedded writer panicked; the store is not ready until a restart"
            );
            self.stopped = true;
            self.reopen.health.writer_stopped();
        }
    }

    fn finish(&mut self) {
        if !self.failed.load(Ordering::SeqCst)
            && !self.stopped
            && !self.reopen.health.is_faulted()
            && let Err(error) = self.checkpoint()
        {
            tracing::warn!(%error, "final checkpoint failed; the log will be replayed on open");
        }
        // Let the syncer answer what it still holds, and wait for it.
        drop(self.syncer.take());
        if let Some(thread) = self.syncer_thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the embedded log syncer panicked");
        }
    }
}

impl Drop for Writer {
    /// The writer thread is ending (shutdown, or a panic outside a group): not alive any more.
    fn drop(&mut self) {
        self.reopen.health.writer_stopped();
    }
}

fn stopped() -> StorageError {
    StorageError::Unavailable("the storage writer has stopped; restart the service".into())
}

impl Writer {
    fn commit_group(&mut self, group: Vec<QueuedWrite>) {
        #[cfg(test)]
        if self.reopen.health.take_injected("writer panic") {
            panic!("a panic injected into the writer");
        }
        if let Err(error) = self.recovered() {
            for write in group {
                write.answer(Err(error.clone()));
            }
            return;
        }
        match self.apply(&group) {
            Ok((effects, appended)) => {
                let pending = AwaitingSync {
                    group,
                    effects,
                    appended,
                };
                if let Some(syncer) = &self.syncer
                    && let Err(unsent) = syncer.send(pending)
                {
                    // The syncer is gone (it panicked): fail rather than answer undurable.
                    for write in unsent.0.group {
                        write.answer(Err(StorageError::Unavailable(
                            "the log syncer has stopped; restart the service".into(),
                        )));
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, writes = group.len(), "embedded commit failed");
                if matches!(error, StorageError::Unavailable(_)) {
                    // I/O trouble: redb refuses everything until it is reopened.
                    self.reopen.health.set_fault(crate::storage::chain(&error));
                }
                for write in group {
                    write.answer(Err(error.clone()));
                }
            }
        }
    }

    /// `Ok` when writes can be applied: no fault is pending, or the store could be reopened now
    /// (tried at most once a [`RECOVERY_RETRY`]).
    fn recovered(&mut self) -> Result<(), StorageError> {
        let health = self.reopen.health.clone();
        if self.failed.load(Ordering::SeqCst) && !health.is_faulted() {
            health.set_fault("the write-ahead log could not be synced".into());
        }
        let Some(fault) = health.fault() else {
            return Ok(());
        };
        let unavailable = |detail: &str| {
            StorageError::Unavailable(
                format!("storage fault ({fault}){detail}; retry later").into(),
            )
        };
        if self
            .last_attempt
            .is_some_and(|at| at.elapsed() < RECOVERY_RETRY)
        {
            return Err(unavailable(""));
        }
        self.last_attempt = Some(Instant::now());
        let started = Instant::now();
        match self.reopen_database() {
            Ok(()) => {
                self.failed.store(false, Ordering::SeqCst);
                health.clear_fault();
                tracing::info!(
                    fault,
                    seconds = started.elapsed().as_secs_f64(),
                    "the embedded store was reopened after a storage fault; writes are accepted again"
                );
                Ok(())
            }
            Err(error) => {
                let error = crate::storage::chain(&error);
                tracing::warn!(fault, %error, "the embedded store cannot be reopened yet");
                Err(unavailable(&format!(", reopening failed: {error}")))
            }
        }
    }

    /// Closes the database, opens it again (redb repairs it back to its last durable commit)
    /// and replays the log on top, as a restart would.
    fn reopen_database(&mut self) -> Result<(), StorageError> {
        if let Some(dir) = self.reopen.path.parent() {
            check_room(dir).map_err(|e| {
                StorageError::Unavailable(Cause::new(
                    format!("{} has no room for {ROOM_NEEDED} more bytes", dir.display()),
                    e,
                ))
            })?;
        }
        drop(self.reopen.health.take_database());
        if let Some(db) = self.db.take() {
            close(db);
        }
        let db = open_database(&self.reopen.path, self.reopen.cache_bytes)?;
        let contents = self.log.read_back().map_err(log_error)?;
        let (sequence, coverage) = recovery::recover(&db, &contents, |truncation| {
            // Nothing else wrote the log since start-up: this would be a bug or a bad disk.
            tracing::error!(
                offset = truncation.offset,
                dropped = truncation.dropped,
                "the write-ahead log is damaged; replayed up to the damage"
            );
            Ok(())
        })?;
        self.log.rewind().map_err(log_error)?;
        self.sequence = sequence;
        self.coverage = coverage;
        self.aggregates.clear();
        self.last_checkpoint = Instant::now();
        // The replay wrote every reading to the tables: nothing is recent.
        self.generation = stored_generation(&db.begin_read().map_err(storage_error)?)?;
        self.recent = Arc::default();
        self.reopen.health.recent.reset(self.generation);
        let db = Arc::new(db);
        self.db = Some(db.clone());
        self.reopen.health.put_database(db);
        Ok(())
    }

    fn db(&self) -> Result<&Database, StorageError> {
        self.db
            .as_deref()
            .ok_or_else(|| StorageError::Unavailable("the database is closed".into()))
    }

    /// Applies a group in one redb transaction: logs its changes (one record, written but not
    /// yet synced) and commits it without fsync; the syncer answers it once the log is durable
    /// up to the returned offset. When a checkpoint is due, the commit is an fsync'd one instead
    /// (which makes every earlier group durable in redb) and the log starts over.
    ///
    /// A group that is not a checkpoint leaves its in-order readings in `recent` instead of the
    /// blocks; a checkpoint, a build slice or a sweep first writes `recent` to the blocks (see
    /// [`super::recent`]).
    fn apply(&mut self, group: &[QueuedWrite]) -> Result<(Vec<Effect>, u64), StorageError> {
        let checkpoint = self.last_checkpoint.elapsed() >= self.checkpoint_every
            || self.log.written() >= CHECKPOINT_BYTES;
        let mut txn = self.db()?.begin_write().map_err(storage_error)?;
        if !checkpoint {
            txn.set_durability(Durability::None)
                .map_err(|e| StorageError::Internal(Cause::new("redb durability", e)))?;
        }
        self.ops.clear();
        let mut sequence = self.sequence;
        // Taken out of the writer while the transaction may fail: a failed group leaves the
        // cache empty rather than ahead of redb.
        // (A build slice or a sweep rewrites or deletes rollup rows, which the cache does not
        // hold; a build slice's changes to summaries and partials pass through `touched`.)
        let cache = std::mem::take(&mut self.aggregates);
        let built = group.iter().any(changes_derived_rows);
        let defer = !checkpoint && !built;
        let (effects, touched, cache, coverage, recent) = {
            let mut tables = Tables::open(&txn)?;
            tables.cache = cache;
            tables.coverage = self.coverage.clone();
            tables.recent = self.recent.clone();
            if !defer {
                tables.write_recent()?;
            }
            tables.defer_appends = defer;
            let (effects, touched) = tables.apply(group, &mut self.ops)?;
            if !self.ops.is_empty() {
                sequence += 1;
            }
            // The recent readings this commit leaves, when it changes them.
            let recent = if defer {
                let appends = std::mem::take(&mut tables.appends);
                (!appends.is_empty()).then(|| Arc::new(self.recent.with(&appends)))
            } else {
                (!self.recent.is_empty()).then(Arc::default)
            };
            let counters = tables.counters()?;
            if let Some(recent) = &recent {
                counters
                    .insert(RECENT_GENERATION, self.generation + 1)
                    .map_err(storage_error)?;
                match (self.recent.is_empty(), recent.is_empty()) {
                    // The records up to the last one have all their readings in the tables.
                    (true, false) => counters.insert(RECENT_SINCE, self.sequence).map(drop),
                    (false, true) => counters.remove(RECENT_SINCE).map(drop),
                    _ => Ok(()),
                }
                .map_err(storage_error)?;
            }
            if checkpoint || sequence != self.sequence {
                // Non-durable commits too: redb makes them durable when the database is closed
                // (a clean shutdown whose checkpoint failed, a reopen after a fault), and then
                // recovery must know which records they applied (see `recent`).
                counters
                    .insert(WAL_SEQUENCE, sequence)
                    .map_err(storage_error)?;
            }
            let coverage = std::mem::replace(&mut tables.coverage, Coverage::Complete);
            (
                effects,
                touched,
                std::mem::take(&mut tables.cache),
                coverage,
                recent,
            )
        };
        if self.ops.is_empty() && !checkpoint && !built {
            // Duplicates, conflicts, deletes of nothing: nothing to log or commit. The answer
            // still waits for the log to be durable up to here (a duplicate of a reading whose
            // record is not yet synced must not be acknowledged before it).
            txn.abort().map_err(storage_error)?;
            return Ok((effects, self.appended));
        }
        let mark = self.log.written();
        // A build slice or sweep chunk alone changes only derived rows: nothing to log (a record must carry
        // the next sequence number, and only records with changes take one).
        if !checkpoint && !self.ops.is_empty() {
            let bytes = self.log.write(sequence, &self.ops).map_err(log_error)?;
            self.appended += bytes;
        }
        let published = &self.reopen.health.recent;
        if let Some(recent) = &recent {
            published.propose(self.generation + 1, recent.clone());
        }
        if let Err(error) = txn.commit() {
            // Not applied: the next record takes this one's place in the log. (Were the process
            // to die before that, replay would apply writes whose callers got an error, which
            // only ever means "outcome unknown, retry".)
            self.log.discard_from(mark);
            published.abandon();
            return Err(storage_error(error));
        }
        if let Some(recent) = recent {
            published.commit();
            self.recent = recent;
            self.generation += 1;
        }
        self.sequence = sequence;
        self.coverage = coverage;
        self.aggregates = cache;
        if self.aggregates.len() + touched.len() > AGGREGATE_CACHE {
            self.aggregates.clear();
        }
        for (
            sensor,
            Touched {
                after, partials, ..
            },
        ) in touched
        {
            self.aggregates.insert(
                sensor,
                Cached {
                    summary: after,
                    partials,
                },
            );
        }
        if checkpoint {
            self.checkpointed();
        }
        Ok((effects, self.appended))
    }

    /// An fsync'd redb commit: everything applied so far is durable in redb (the recent
    /// readings written to their blocks), the log restarts.
    fn checkpoint(&mut self) -> Result<(), StorageError> {
        let txn = self.db()?.begin_write().map_err(storage_error)?;
        let flushed = !self.recent.is_empty();
        {
            let mut counters = txn.open_table(COUNTERS).map_err(storage_error)?;
            counters
                .insert(WAL_SEQUENCE, self.sequence)
                .map_err(storage_error)?;
            if flushed {
                let mut blocks = txn.open_table(READING_BLOCKS).map_err(storage_error)?;
                self.recent.write_to_blocks(&mut blocks)?;
                counters
                    .insert(RECENT_GENERATION, self.generation + 1)
                    .map_err(storage_error)?;
                counters.remove(RECENT_SINCE).map_err(storage_error)?;
            }
        }
        let published = &self.reopen.health.recent;
        if flushed {
            published.propose(self.generation + 1, Arc::default());
        }
        if let Err(error) = txn.commit() {
            published.abandon();
            return Err(storage_error(error));
        }
        if flushed {
            published.commit();
            self.recent = Arc::default();
            self.generation += 1;
        }
        self.checkpointed();
        Ok(())
    }

    fn checkpointed(&mut self) {
        self.last_checkpoint = Instant::now();
        if let Err(error) = self.log.rewind() {
            tracing::warn!(%error, "could not shrink the write-ahead log");
        }
    }
}

/// The syncer thread: takes every committed group queued, `fdatasync`s the log once if they
/// need it, then answers them in order. Runs beside the writer, so the next group is applied
/// while this one's log record is being synced.
fn run_syncer(
    file: std::fs::File,
    queue: std::sync::mpsc::Receiver<AwaitingSync>,
    failed: Arc<AtomicBool>,
    health: &Health,
) {
    let mut synced = 0u64;
    let mut batch = Vec::new();
    while let Ok(first) = queue.recv() {
        batch.push(first);
        #[cfg(test)]
        if health.take_injected("syncer panic") {
            panic!("a panic injected into the log syncer");
        }
        batch.extend(queue.try_iter());
        let needed = batch.iter().map(|p| p.appended).max().unwrap_or(0);
        let mut result = Ok(());
        if failed.load(Ordering::SeqCst) {
            result = Err(StorageError::Unavailable(
                "the write-ahead log could not be synced; retry later".into(),
            ));
        } else if needed > synced {
            let outcome = file.sync_data();
            #[cfg(test)]
            let outcome = match health.take_injected("sync failure") {
                true => Err(std::io::Error::other("an injected fdatasync failure")),
                false => outcome,
            };
            match outcome {
                Ok(()) => synced = needed,
                Err(error) => {
                    // The log's state on disk is unknown; so is that of everything committed
                    // after it. Acknowledge nothing more (PostgreSQL's lesson) until the writer
                    // has reopened the store and replayed the log into an fsync'd redb commit.
                    tracing::error!(%error, "fdatasync of the write-ahead log failed");
                    failed.store(true, Ordering::SeqCst);
                    health.set_fault(format!("fdatasync of the write-ahead log failed: {error}"));
                    result = Err(log_error(error));
                }
            }
        }
        for pending in batch.drain(..) {
            match &result {
                Ok(()) => {
                    for (write, effect) in pending.group.into_iter().zip(pending.effects) {
                        write.answer(Ok(effect));
                    }
                }
                Err(error) => {
                    for write in pending.group {
                        write.answer(Err(error.clone()));
                    }
                }
            }
        }
    }
}

/// Closes a database the writer is done with. A reader may hold the handle for the moment it
/// takes to begin a transaction: wait for that (bounded); past it, the last reader closes it.
fn close(mut db: Arc<Database>) {
    for _ in 0..1_000 {
        match Arc::try_unwrap(db) {
            Ok(db) => {
                if let Err(error) = db.close() {
                    tracing::debug!(%error, "closing the faulted database reported an error");
                }
                return;
            }
            Err(shared) => {
                db = shared;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}
