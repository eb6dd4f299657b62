//! `telemetry verify`: an offline check that everything derived from the readings equals a
//! recomputation from them — the all-time aggregate, every sensor's summary (aggregate, first
//! and latest reading), and every rollup row per sensor and over all sensors, with no row
//! missing and none extra. It reads the database as it was last made durable (records still in
//! the log are replayed at the next start, in their own atomic transactions), in one read
//! transaction, and changes nothing but what redb's own repair after a crash changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::path::Path;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};

use super::partials::{self, Partials};
use super::reading_blocks::{self, READING_BLOCKS};
use super::rollups::{MINUTE_ROLLUPS, ROLLUPS_VERSION, SENSOR_ROLLUPS, TOTAL_ROLLUPS};
use super::second_blocks::{BLOCK_CODE, Block};
use super::tables::{COUNTERS, READINGS, SENSOR_AGGREGATES, TOTAL_KEY, TOTALS, read_aggregate};
use super::{FILE_NAME, storage_error};
use crate::domain::rollup::{Level, SECOND_MICROS, SENSOR_LEVELS, TOTAL_LEVELS};
use crate::domain::{Aggregate, Point, SensorSummary, Temperature, Timestamp};
use crate::storage::{Cause, StorageError};

/// Differences listed one by one; beyond this many only their number.
const LISTED: usize = 50;

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Verification {
    pub readings: u64,
    pub sensors: u64,
    /// Rollup rows compared (per sensor and over all sensors).
    pub rollup_rows: u64,
    /// What differs, one line each (the first [`LISTED`]).
    pub differences: Vec<String>,
    /// How many differences there are in all.
    pub difference_count: usize,
    /// Things worth knowing that are not differences.
    pub notes: Vec<String>,
}

impl Verification {
    pub fn is_consistent(&self) -> bool {
        self.difference_count == 0
    }

    fn differs(&mut self, what: String) {
        self.difference_count += 1;
        if self.differences.len() < LISTED {
            self.differences.push(what);
        }
    }

    /// One line per difference when they differ.
    fn compare<T: PartialEq + Debug>(&mut self, what: &str, stored: &T, recomputed: &T) {
        if stored != recomputed {
            self.differs(format!(
                "{what}: stored {stored:?}, recomputed from the readings {recomputed:?}"
            ));
        }
    }
}

/// Checks the database in `dir` (which must exist). Errors are for a database that cannot be
/// read at all; what differs is in the answer.
pub fn verify(dir: &Path) -> Result<Verification, StorageError> {
    let path = dir.join(FILE_NAME);
    if !path.exists() {
        return Err(StorageError::Unavailable(
            format!("{} does not exist", path.display()).into(),
        ));
    }
    let db = Database::builder().open(&path).map_err(|e| {
        StorageError::Unavailable(Cause::new(format!("cannot open {}", path.display()), e))
    })?;
    let txn = db.begin_read().map_err(storage_error)?;
    check(&txn)
}

type Rollups = BTreeMap<(u8, i64), Aggregate>;

fn add_rollups(rollups: &mut Rollups, levels: &[Level], micros: i64, temperature: Temperature) {
    for level in levels {
        rollups
            .entry((level.code(), level.bucket_of(micros)))
            .or_default()
            .add(temperature);
    }
}

fn check(txn: &ReadTransaction) -> Result<Verification, StorageError> {
    let mut found = Verification::default();
    let complete = txn
        .open_table(COUNTERS)
        .map_err(storage_error)?
        .get(ROLLUPS_VERSION)
        .map_err(storage_error)?
        .is_some();
    if !complete {
        found.notes.push(
            "the one-time rollup build has not finished: rollups were not compared (the next \
             start resumes the build)"
                .into(),
        );
    }
    let rows = txn.open_table(READINGS).map_err(storage_error)?;
    let blocks = txn.open_table(READING_BLOCKS).map_err(storage_error)?;
    let sensors = txn.open_table(SENSOR_AGGREGATES).map_err(storage_error)?;
    let sensor_rollups = txn.open_table(SENSOR_ROLLUPS).map_err(storage_error)?;
    // Per-sensor minutes are stored minute first: gathered per sensor up front. (A store
    // last written by an earlier version has no such table.)
    let mut minute_rows: HashMap<String, Vec<(i64, Aggregate)>> = HashMap::new();
    let minutes = match txn.open_table(MINUTE_ROLLUPS) {
        Ok(table) => Some(table),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(error) => return Err(storage_error(error)),
    };
    if let Some(minutes) = minutes.filter(|_| complete) {
        for row in minutes.iter().map_err(storage_error)? {
            let (key, value) = row.map_err(storage_error)?;
            let (minute, sensor) = key.value();
            found.rollup_rows += 1;
            minute_rows
                .entry(sensor.to_owned())
                .or_default()
                .push((minute, decode_rollup(value.value())?));
        }
    }
    let mut total = Aggregate::default();
    let mut total_rollups = Rollups::new();
    let mut seen: HashSet<String> = HashSet::new();
    // Seconds holding a reading that is not at the second's start.
    let mut off_start: HashSet<i64> = HashSet::new();
    // The sensor being summed (readings come in (sensor, time) order).
    let mut current: Option<(String, SensorSummary, Rollups)> = None;
    let mut finish = |found: &mut Verification,
                      (sensor, summary, rollups): (String, SensorSummary, Rollups)|
     -> Result<(), StorageError> {
        let (stored, partials) = match sensors.get(sensor.as_str()).map_err(storage_error)? {
            Some(bytes) => {
                let (summary, partials) = partials::decode_row(bytes.value(), &sensor)?;
                (Some(summary), partials)
            }
            None => (None, Partials::default()),
        };
        found.compare(
            &format!("sensor {sensor:?} summary"),
            &stored,
            &Some(summary),
        );
        if complete {
            let mut stored = Rollups::new();
            let range = (sensor.as_str(), 0u8, i64::MIN)..=(sensor.as_str(), u8::MAX, i64::MAX);
            for row in sensor_rollups.range(range).map_err(storage_error)? {
                let (key, value) = row.map_err(storage_error)?;
                let (_, level, bucket) = key.value();
                stored.insert((level, bucket), decode_rollup(value.value())?);
            }
            for (minute, aggregate) in minute_rows.remove(&sensor).unwrap_or_default() {
                let row = stored.entry((Level::Minute.code(), minute)).or_default();
                *row = row.merge(&aggregate);
            }
            // A bucket is its row merged with the partial of its level, when current.
            for level in SENSOR_LEVELS {
                if let Some((bucket, partial)) = partials::of_level(&partials, level) {
                    let row = stored.entry((level.code(), bucket)).or_default();
                    *row = row.merge(&partial);
                }
            }
            compare_rollups(found, &format!("sensor {sensor:?}"), &stored, &rollups);
        }
        seen.insert(sensor);
        Ok(())
    };
    // Rows and blocks merged in key order; a key seen twice is a reading held twice.
    let mut previous: Option<(String, i64)> = None;
    for entry in reading_blocks::all(&rows, &blocks)? {
        let (sensor, micros, value) = match entry {
            Ok(reading) => reading,
            Err(error) => {
                found.differs(format!("{error}"));
                continue;
            }
        };
        let sensor = sensor.as_str();
        if let Some((before, at)) = &previous
            && (before.as_str(), *at) >= (sensor, micros)
        {
            found.differs(format!(
                "reading ({sensor:?}, {micros} µs) is held twice (as a row and in a block, or \
                 in two blocks)"
            ));
            continue;
        }
        previous = Some((sensor.to_owned(), micros));
        let (Ok(temperature), Some(time)) = (
            Temperature::from_micros(value),
            Timestamp::from_micros(micros),
        ) else {
            found.differs(format!(
                "reading ({sensor:?}, {micros} µs) holds an invalid time or temperature ({value})"
            ));
            continue;
        };
        found.readings += 1;
        if current.as_ref().is_none_or(|(name, _, _)| name != sensor) {
            if let Some(done) = current.take() {
                finish(&mut found, done)?;
            }
            current = Some((sensor.to_owned(), SensorSummary::default(), Rollups::new()));
        }
        let (_, summary, rollups) = current.as_mut().expect("just set");
        summary.add(Point { time, temperature });
        add_rollups(rollups, &SENSOR_LEVELS, micros, temperature);
        add_rollups(&mut total_rollups, &TOTAL_LEVELS, micros, temperature);
        if micros.rem_euclid(SECOND_MICROS) != 0 {
            off_start.insert(Level::Second.bucket_of(micros));
        }
        total.add(temperature);
    }
    if let Some(done) = current.take() {
        finish(&mut found, done)?;
    }
    found.sensors = seen.len() as u64;
    // Summaries and rollup rows of sensors that have no reading.
    for entry in sensors.iter().map_err(storage_error)? {
        let (key, _) = entry.map_err(storage_error)?;
        if !seen.contains(key.value()) {
            found.differs(format!(
                "sensor {:?} has a summary but no reading",
                key.value()
            ));
        }
    }
    if complete {
        for row in sensor_rollups.iter().map_err(storage_error)? {
            let (key, _) = row.map_err(storage_error)?;
            let (sensor, level, bucket) = key.value();
            found.rollup_rows += 1;
            if !seen.contains(sensor) {
                found.differs(format!(
                    "sensor {sensor:?} has a rollup row (level {level}, bucket {bucket}) but no reading"
                ));
            }
        }
        for (sensor, rows) in &minute_rows {
            for (minute, _) in rows {
                found.differs(format!(
                    "sensor {sensor:?} has a rollup row (minute {minute}) but no reading"
                ));
            }
        }
        let mut stored = Rollups::new();
        for row in txn
            .open_table(TOTAL_ROLLUPS)
            .map_err(storage_error)?
            .iter()
            .map_err(storage_error)?
        {
            let (key, value) = row.map_err(storage_error)?;
            found.rollup_rows += 1;
            // A second is its row merged with its slot of its minute's block.
            let merge = |stored: &mut Rollups, key: (u8, i64), aggregate: &Aggregate| {
                let entry = stored.entry(key).or_default();
                *entry = entry.merge(aggregate);
            };
            match key.value() {
                (BLOCK_CODE, minute) => {
                    let block = Block::decode(value.value())?;
                    for (second, aggregate) in block.seconds(minute) {
                        // Rows sort before blocks: a second's row of an earlier version, if
                        // any, is in `stored` already. Windows trust a block's second to hold
                        // readings at its start only when the second has no such row.
                        let earlier_row = stored.contains_key(&(Level::Second.code(), second));
                        merge(&mut stored, (Level::Second.code(), second), aggregate);
                        if !earlier_row
                            && !block.may_hold_off_start(second)
                            && off_start.contains(&second)
                        {
                            found.differs(format!(
                                "the block of seconds over all sensors says second {second} µs \
                                 holds readings at its start only, but it holds one after"
                            ));
                        }
                    }
                }
                key => merge(&mut stored, key, &decode_rollup(value.value())?),
            }
        }
        compare_rollups(&mut found, "all sensors", &stored, &total_rollups);
    }
    let stored_total = read_aggregate(&txn.open_table(TOTALS).map_err(storage_error)?, TOTAL_KEY)?;
    found.compare("the all-time aggregate", &stored_total, &total);
    Ok(found)
}

fn decode_rollup(bytes: &[u8]) -> Result<Aggregate, StorageError> {
    Aggregate::decode(bytes).ok_or_else(|| StorageError::Internal("corrupt rollup row".into()))
}

/// Every row of `stored` and `recomputed`, by level and bucket: equal, missing or extra.
fn compare_rollups(found: &mut Verification, whose: &str, stored: &Rollups, recomputed: &Rollups) {
    let level_name = |code: u8| {
        Level::from_code(code).map_or_else(|| format!("level {code}"), |l| l.to_string())
    };
    for (key, value) in recomputed {
        let what = format!("{whose}: {} rollup at {} µs", level_name(key.0), key.1);
        found.compare(&what, &stored.get(key).copied(), &Some(*value));
    }
    for key in stored.keys().filter(|key| !recomputed.contains_key(key)) {
        found.differs(format!(
            "{whose}: {} rollup at {} µs is stored but covers no reading",
            level_name(key.0),
            key.1
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Batch;
    use crate::storage::Store;
    use crate::storage::embedded::EmbeddedStore;
    use crate::storage::group_commit::unobserved;
    use redb::TableDefinition;
    use serde_json::json;

    async fn store_some(dir: &Path) {
        let store = EmbeddedStore::open(dir, 1 << 20, unobserved()).unwrap();
        for (sensor, second, celsius) in [("a", 1, 20.5), ("a", 75, -3.25), ("b", 3_700, 8.0)] {
            let body = json!({
                "sensorID": sensor,
                "time": format!("2021-10-04 {:02}:{:02}:{:02}", second / 3600, second / 60 % 60, second % 60),
                "temperature": celsius,
            });
            store
                .put_readings(Batch::parse(&body).unwrap())
                .await
                .unwrap();
        }
    }

    /// Overwrites one row of a `&str → &[u8]` table, as a bug or a bad disk might.
    fn overwrite(dir: &Path, table: TableDefinition<&str, &[u8]>, key: &str, value: &[u8]) {
        let db = Database::create(dir.join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(table).unwrap().insert(key, value).unwrap();
        txn.commit().unwrap();
    }

    #[tokio::test]
    async fn a_clean_store_verifies_and_a_corrupted_aggregate_or_rollup_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        store_some(dir.path()).await;
        let clean = verify(dir.path()).unwrap();
        assert!(clean.is_consistent(), "{:?}", clean.differences);
        assert_eq!((clean.readings, clean.sensors), (3, 2));
        assert!(clean.rollup_rows > 0);

        // One reading too many in the all-time aggregate.
        let mut total = Aggregate::of([Temperature::from_micros(20_500_000).unwrap()]);
        total.add(Temperature::from_micros(-3_250_000).unwrap());
        total.add(Temperature::from_micros(8_000_000).unwrap());
        total.add(Temperature::from_micros(1_000_000).unwrap());
        overwrite(dir.path(), TOTALS, TOTAL_KEY, &total.encode());
        let found = verify(dir.path()).unwrap();
        assert_eq!(found.difference_count, 1, "{:?}", found.differences);
        assert!(found.differences[0].contains("the all-time aggregate"));

        // And an hour rollup of all sensors that counts nothing.
        let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        let empty = Aggregate::of([Temperature::from_micros(0).unwrap()]);
        txn.open_table(TOTAL_ROLLUPS)
            .unwrap()
            .insert((Level::Hour.code(), 0), empty.encode().as_slice())
            .unwrap();
        txn.commit().unwrap();
        drop(db);
        let found = verify(dir.path()).unwrap();
        assert_eq!(found.difference_count, 2, "{:?}", found.differences);
        assert!(
            found
                .differences
                .iter()
                .any(|d| d
                    .contains("all sensors: hour rollup at 0 µs is stored but covers no reading")),
            "{:?}",
            found.differences
        );
    }

    #[tokio::test]
    async fn a_second_marked_as_holding_readings_at_its_start_only_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), 1 << 20, unobserved()).unwrap();
        let body = json!([
            {"sensorID": "a", "time": "2021-10-04T00:00:01Z", "temperature": 1},
            {"sensorID": "b", "time": "2021-10-04T00:00:01.25Z", "temperature": 2},
        ]);
        store
            .put_readings(Batch::parse(&body).unwrap())
            .await
            .unwrap();
        drop(store);
        let clean = verify(dir.path()).unwrap();
        assert!(clean.is_consistent(), "{:?}", clean.differences);

        // Clear the block's bitmap of seconds off their start (bytes 8..16 of its value).
        let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(TOTAL_ROLLUPS).unwrap();
            let minute = 1_633_305_600_000_000;
            let mut bytes = table
                .get((BLOCK_CODE, minute))
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            assert_ne!(bytes[8..16], [0; 8]);
            bytes[8..16].fill(0);
            table
                .insert((BLOCK_CODE, minute), bytes.as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
        drop(db);
        let found = verify(dir.path()).unwrap();
        assert_eq!(found.difference_count, 1, "{:?}", found.differences);
        assert!(
            found.differences[0].contains("second 1633305601000000 µs holds readings at its start"),
            "{:?}",
            found.differences
        );
    }

    #[test]
    fn a_missing_database_is_an_error_not_a_verdict() {
        let dir = tempfile::tempdir().unwrap();
        assert!(verify(dir.path()).is_err());
    }
}
