//! Each sensor's newest in-order readings since the last checkpoint, kept by the writer in
//! memory instead of in redb's `reading_blocks`, and the versions of them that readers pair
//! with their read transactions.
//!
//! # Why
//!
//! A group of a fleet's requests holds a reading or a few of each of its sensors, so writing
//! the group's in-order readings to their blocks rewrites one block per sensor per group. The
//! groups between two checkpoints (every 250 ms) are committed without fsync and made durable by
//! the write-ahead log alone; their blocks only need to reach redb with the checkpoint that lets
//! the log start over. So a group that is not a checkpoint leaves its in-order readings here
//! (its summaries, totals and rollups are still written in its transaction), and the checkpoint
//! writes every sensor's readings gathered here to its blocks at once: one block write per
//! sensor per checkpoint instead of one per group (the layouts benchmark measured 1.5–1.8× the
//! writer's redb throughput).
//!
//! # What stays true
//!
//! - **Durable as before.** The readings here are in the log, which is rewound only after the
//!   fsync'd checkpoint that wrote them to their blocks; a crash loses this memory and the log
//!   replays them (into blocks) on open, as it replays everything after the last checkpoint.
//! - **Every reader sees the readings its summaries count.** A reading here is newer than every
//!   reading of its sensor in a table, row or block: it comes here only when it is newer than
//!   the sensor's latest committed reading or, arriving late (requests of concurrent clients
//!   commit in any order), than the first of its readings here, and then takes its place among
//!   them; an older late reading becomes a row. So a sensor's readings are its rows merged with
//!   its blocks followed by its readings here. Each version of this memory is tagged with a
//!   generation, which the writer stores in `counters` (`"recent_generation"`) in the same
//!   transaction that makes that version true: the version is published *before* the commit,
//!   the earlier one dropped after it, and a reader begins its transaction and picks the
//!   version of the generation it sees under one lock ([`Published::snapshot`]). So a reader
//!   never sees a reading twice (here and in a block) or not at all, whichever commit it lands
//!   between.
//! - **The writer's own checks see them**: the duplicate and conflict lookups of a group look
//!   here too.
//! - **Memory is bounded** by what 250 ms of writes (or 64 MiB of log) can hold: both end in a
//!   checkpoint, which empties it. A group that rebuilds or sweeps rollups and readings (the
//!   one-time build, retention) first writes everything here to the blocks, so those read
//!   and change redb alone.

use std::sync::{Arc, Mutex};

use redb::{Database, ReadTransaction, ReadableDatabase};

use super::reading_blocks;
use super::storage_error;
use super::tables::{Appends, COUNTERS};
use crate::storage::StorageError;

/// `counters` key: the generation of the [`RecentReadings`] that the committed state goes with.
pub(super) const RECENT_GENERATION: &str = "recent_generation";
/// `counters` key, present while the committed state leaves readings in the writer's memory:
/// the number of the last log record all of whose readings are in the tables.
pub(super) const RECENT_SINCE: &str = "recent_since";

/// One sensor's readings here, `(µs, µ°C)` in increasing time order.
type Tail = Arc<Vec<(i64, i64)>>;

/// Each sensor's in-order readings not yet in its blocks (see the module's documentation).
/// Cheap to clone: a version shares the readings of the sensors a group did not touch.
#[derive(Debug, Clone, Default)]
pub(super) struct RecentReadings {
    sensors: foldhash::HashMap<Arc<str>, Tail>,
    readings: usize,
}

impl RecentReadings {
    /// The sensor's readings here, in time order (every one newer than its blocks').
    pub(super) fn of(&self, sensor: &str) -> &[(i64, i64)] {
        self.sensors.get(sensor).map_or(&[], |tail| tail.as_slice())
    }

    /// The temperature here of `(sensor, micros)`, if any.
    pub(super) fn find(&self, sensor: &str, micros: i64) -> Option<i64> {
        let readings = self.of(sensor);
        let at = readings
            .binary_search_by_key(&micros, |&(time, _)| time)
            .ok()?;
        Some(readings[at].1)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.readings == 0
    }

    /// Every reading here, in no particular order of sensors.
    pub(super) fn values(&self) -> impl Iterator<Item = i64> + '_ {
        self.sensors
            .values()
            .flat_map(|tail| tail.iter().map(|&(_, value)| value))
    }

    /// This version with a group's appends among each sensor's readings. Each append is newer
    /// than every reading of its sensor in a table and is none of the readings here; most are
    /// newer than these too, and a late one takes its place among them.
    pub(super) fn with(&self, appends: &Appends) -> Self {
        let mut next = self.clone();
        for (sensor, readings) in appends {
            if readings.is_empty() {
                continue;
            }
            next.readings += readings.len();
            match next.sensors.get_mut(sensor.as_str()) {
                Some(tail) => {
                    // Copies the sensor's readings only while an earlier version shares them.
                    let tail = Arc::make_mut(tail);
                    let earliest = readings[0].0;
                    let merged_from = tail.partition_point(|&(time, _)| time < earliest);
                    let late = merged_from < tail.len();
                    tail.extend_from_slice(readings);
                    if late {
                        tail[merged_from..].sort_unstable_by_key(|&(time, _)| time);
                    }
                }
                None => {
                    next.sensors
                        .insert(Arc::from(sensor.as_str()), Arc::new(readings.clone()));
                }
            }
        }
        next
    }

    /// Writes every sensor's readings here to its blocks, in key order.
    pub(super) fn write_to_blocks(
        &self,
        blocks: &mut redb::Table<'_, (&'static str, i64), &'static [u8]>,
    ) -> Result<(), StorageError> {
        let mut sensors: Vec<(&Arc<str>, &Tail)> = self.sensors.iter().collect();
        sensors.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (sensor, readings) in sensors {
            reading_blocks::append(blocks, sensor, readings)?;
        }
        Ok(())
    }
}

/// The generation stored with a committed state (0 in a store that never stored one).
pub(super) fn stored_generation(txn: &ReadTransaction) -> Result<u64, StorageError> {
    let counters = txn.open_table(COUNTERS).map_err(storage_error)?;
    Ok(counters
        .get(RECENT_GENERATION)
        .map_err(storage_error)?
        .map_or(0, |v| v.value()))
}

/// A version of the recent readings and the generation it goes with.
#[derive(Debug, Clone)]
struct Version {
    generation: u64,
    recent: Arc<RecentReadings>,
}

/// The committed version, and the one being committed (if a commit is in progress).
#[derive(Debug)]
struct Versions {
    committed: Version,
    proposed: Option<Version>,
}

/// What the writer publishes and readers take (see the module's documentation).
#[derive(Debug)]
pub(super) struct Published {
    // A std mutex: held for a `begin_read`, a counter lookup and two `Arc` clones, never across
    // an await, and taken from blocking threads only.
    versions: Mutex<Versions>,
}

impl Published {
    /// Nothing recent, with the state committed at `generation`.
    pub(super) fn new(generation: u64) -> Self {
        Self {
            versions: Mutex::new(Versions {
                committed: Version {
                    generation,
                    recent: Arc::default(),
                },
                proposed: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Versions> {
        // The state under the lock is always whole (replaced, never half-changed).
        self.versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A read transaction of `db` and the recent readings that go with it.
    pub(super) fn snapshot(
        &self,
        db: &Database,
    ) -> Result<(ReadTransaction, Arc<RecentReadings>), StorageError> {
        let versions = self.lock();
        let txn = db.begin_read().map_err(storage_error)?;
        let generation = stored_generation(&txn)?;
        let recent = [Some(&versions.committed), versions.proposed.as_ref()]
            .into_iter()
            .flatten()
            .find(|version| version.generation == generation)
            .map(|version| version.recent.clone())
            // Only a transaction of a database the writer has just closed and reopened after a
            // fault can see a generation the writer no longer publishes.
            .ok_or_else(|| {
                StorageError::Unavailable(
                    format!(
                        "the store was reopened (no recent readings of generation {generation}); \
                         retry"
                    )
                    .into(),
                )
            })?;
        Ok((txn, recent))
    }

    /// Before a commit that stores `generation`: readers that see it take `recent`.
    pub(super) fn propose(&self, generation: u64, recent: Arc<RecentReadings>) {
        self.lock().proposed = Some(Version { generation, recent });
    }

    /// The proposed version was committed: the earlier one is no longer seen by a new reader.
    pub(super) fn commit(&self) {
        let mut versions = self.lock();
        if let Some(proposed) = versions.proposed.take() {
            versions.committed = proposed;
        }
    }

    /// The commit failed: the proposed version never becomes true.
    pub(super) fn abandon(&self) {
        self.lock().proposed = None;
    }

    /// After the database was reopened: nothing recent, with its state at `generation`.
    pub(super) fn reset(&self, generation: u64) {
        *self.lock() = Versions {
            committed: Version {
                generation,
                recent: Arc::default(),
            },
            proposed: None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appends(entries: &[(&str, &[(i64, i64)])]) -> Appends {
        entries
            .iter()
            .map(|(sensor, readings)| (sensor.to_string(), readings.to_vec()))
            .collect()
    }

    #[test]
    fn a_new_version_extends_the_sensors_a_group_touched_and_leaves_the_old_one_whole() {
        let first = RecentReadings::default().with(&appends(&[("a", &[(1, 10), (2, 20)])]));
        let second = first.with(&appends(&[("a", &[(5, 50)]), ("b", &[(3, 30)])]));
        assert_eq!(first.of("a"), [(1, 10), (2, 20)]);
        assert_eq!(first.of("b"), []);
        assert_eq!(second.of("a"), [(1, 10), (2, 20), (5, 50)]);
        assert_eq!(second.of("b"), [(3, 30)]);
        assert_eq!(second.find("a", 5), Some(50));
        assert_eq!(second.find("a", 4), None);
        assert_eq!(second.find("c", 1), None);
        let mut values: Vec<i64> = second.values().collect();
        values.sort_unstable();
        assert_eq!(values, [10, 20, 30, 50]);
        // Late appends take their places; the earlier version keeps its own.
        let third = second.with(&appends(&[("a", &[(3, 30), (4, 40), (6, 60)])]));
        assert_eq!(
            third.of("a"),
            [(1, 10), (2, 20), (3, 30), (4, 40), (5, 50), (6, 60)]
        );
        assert_eq!(second.of("a"), [(1, 10), (2, 20), (5, 50)]);
        assert_eq!((third.find("a", 4), third.values().count()), (Some(40), 7));
    }

    fn db_at(dir: &std::path::Path, generation: Option<u64>) -> Database {
        let db = Database::create(dir.join("recent.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut counters = txn.open_table(COUNTERS).unwrap();
            if let Some(generation) = generation {
                counters.insert(RECENT_GENERATION, generation).unwrap();
            }
        }
        txn.commit().unwrap();
        db
    }

    fn commit_generation(db: &Database, generation: u64) {
        let txn = db.begin_write().unwrap();
        txn.open_table(COUNTERS)
            .unwrap()
            .insert(RECENT_GENERATION, generation)
            .unwrap();
        txn.commit().unwrap();
    }

    #[test]
    fn a_reader_takes_the_version_of_the_generation_its_transaction_sees() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_at(dir.path(), None);
        let published = Published::new(0);
        let (_, recent) = published.snapshot(&db).unwrap();
        assert!(recent.is_empty(), "a store that never stored one is at 0");

        let one = Arc::new(RecentReadings::default().with(&appends(&[("a", &[(1, 10)])])));
        published.propose(1, one.clone());
        // Proposed but not committed yet: a reader still sees generation 0 and nothing recent.
        let (_, recent) = published.snapshot(&db).unwrap();
        assert!(recent.is_empty());
        // Committed to redb but not yet acknowledged to `published`: the proposed version.
        commit_generation(&db, 1);
        let (_, recent) = published.snapshot(&db).unwrap();
        assert_eq!(recent.of("a"), [(1, 10)]);
        published.commit();
        let (_, recent) = published.snapshot(&db).unwrap();
        assert_eq!(recent.of("a"), [(1, 10)]);

        // A commit that failed leaves the committed version.
        published.propose(2, Arc::default());
        published.abandon();
        let (_, recent) = published.snapshot(&db).unwrap();
        assert_eq!(recent.of("a"), [(1, 10)]);
    }

    #[test]
    fn a_generation_without_a_version_is_refused_not_answered_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_at(dir.path(), Some(7));
        let published = Published::new(3);
        let error = published.snapshot(&db).unwrap_err();
        assert!(format!("{error}").contains("generation 7"), "{error}");
        published.reset(7);
        assert!(published.snapshot(&db).unwrap().1.is_empty());
    }
}
