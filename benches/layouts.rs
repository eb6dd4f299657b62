//! What the writer thread's redb work costs per reading in other layouts of the readings table,
//! measured on redb alone: no HTTP, no parsing, no log, one thread, as the embedded writer runs.
//!
//! Why: under the peer benchmark's ingest (1,000 sensors, each request one reading per sensor,
//! 16 clients) the `embedded-writer` thread is 92 % of the server's CPU, and inside it the
//! `readings` inserts are about half and the per-sensor rows (summary and three rollup rows)
//! about a fifth (BENCHMARKS.md, "Where the writer's time goes"). The writer is one thread, so
//! ingest is bounded by its cost per reading. Before changing the store's format, this measures
//! what a change would buy, on the same readings:
//!
//! - **rows**: today's `readings` table, `(sensor, µs) → µ°C`, one entry per reading, inserted in
//!   key order per group (the insert's previous value is the duplicate check);
//! - **rows, u128 key**: the same rows keyed by one fixed-width integer (a sensor number from a
//!   dictionary in the high 64 bits, the time in the low 64), so comparing keys decodes nothing;
//! - **blocks**: `(sensor, µs of the block's first reading) → up to 128 packed (µs, µ°C)`: an
//!   in-order reading is appended to its sensor's last block, which the writer keeps in memory,
//!   and each block a group touched is written once;
//! - **blocks, at checkpoints**: the same blocks, but the non-durable groups write nothing to
//!   redb (only a block that fills up leaves memory): the blocks and the derived rows of all
//!   the groups since the last durable one are written by the durable group. That is the
//!   ceiling of a writer that keeps recent groups in memory — the log keeps them durable, and
//!   every reader would have to merge that memory (not measured here). With 4 rows per sensor
//!   it writes every minute bucket the deferred groups touched, the others only each group's last.
//!
//! - **LSM rows** (the `fjall` crate, instead of redb): the same rows, keyed by the sensor's name
//!   (length-prefixed) and the big-endian time, written as one atomic batch per group into a
//!   memtable and fjall's journal; an LSM insert does not return the previous value, so the
//!   duplicate check is a point read, skipped for a reading newer than its sensor's latest
//!   (which the writer already keeps per sensor), as it is here for every reading (in order).
//!
//! and for the per-sensor rows a group rewrites, either **4 per sensor** (summary + minute, hour
//! and day rollup rows, as today) or **1 per sensor** (the current buckets' partials inside the
//! summary, rollup rows written only when a bucket is left, as the DynamoDB backend does).
//!
//! The readings: the peer benchmark's (reading `k` is sensor `s{k % 1000}` at start + (k / 1000)
//! × 10 s); a group is 16 requests of 1,000 readings, committed with `Durability::None` and every
//! eighth group with `Durability::Immediate` (the writer's checkpoints). Each layout first loads
//! 30 groups (480,000 readings, so the trees have their depth), then 40 groups are timed.
//!
//! Durability: the embedded store makes a group durable by fsyncing its own log, not redb, so
//! the redb cases time redb's work only (no fsync but the checkpoints). fjall's journal is its
//! log: the LSM case is timed the same way (journal written to the OS per group, fsync'd every
//! eighth), and once more with an fdatasync of the journal per group, the cost a real group
//! would pay. An LSM defers work: the timed run ends with the memtable flushed to a table on
//! disk, and "CPU ns" counts every thread of the process (fjall flushes and compacts in the
//! background), so deferred work is not hidden from the figures.
//!
//! Run: `cargo bench --bench layouts` (about a minute). Not a criterion benchmark: each case is
//! one long, stateful run, printed as a table.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use fjall::{KeyspaceCreateOptions, PersistMode};
use redb::{Database, Durability, TableDefinition};

const SENSORS: usize = 1_000;
const GROUP: usize = 16 * SENSORS;
const PREFILL_GROUPS: usize = 30;
const TIMED_GROUPS: usize = 40;
const CHECKPOINT_EVERY: usize = 8;
const BLOCK_READINGS: usize = 128;
const START_MICROS: i64 = 1_633_338_000_000_000;

const ROWS: TableDefinition<(&str, i64), i64> = TableDefinition::new("readings");
const ROWS_U128: TableDefinition<u128, i64> = TableDefinition::new("readings_u128");
const SENSOR_NUMBERS: TableDefinition<&str, u64> = TableDefinition::new("sensor_numbers");
const BLOCKS: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("blocks");
const SUMMARIES: TableDefinition<&str, &[u8]> = TableDefinition::new("sensor_aggregates");
const ROLLUPS: TableDefinition<(&str, u8, i64), &[u8]> = TableDefinition::new("sensor_rollups");

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    Rows,
    RowsU128,
    Blocks,
    /// Blocks, with the blocks and the derived rows written to redb only by the durable groups
    /// (every [`CHECKPOINT_EVERY`]th): what a writer keeping the groups in between in memory
    /// (with the log for durability, and readers merging that memory) would pay.
    BlocksDeferred,
    /// Blocks written to redb only by the durable groups, the derived rows by every group: a
    /// writer keeping only its sensors' newest readings in memory between checkpoints.
    BlocksDeferredRowsNow,
    /// fjall; `true`: the journal fdatasync'd every group.
    Lsm {
        sync_every_group: bool,
    },
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Rows => "rows (sensor, µs) → µ°C",
            Layout::RowsU128 => "rows, u128 key",
            Layout::Blocks => "blocks of 128",
            Layout::BlocksDeferred => "blocks, at checkpoints",
            Layout::BlocksDeferredRowsNow => "blocks at checkpoints only",
            Layout::Lsm {
                sync_every_group: false,
            } => "LSM rows (fjall)",
            Layout::Lsm {
                sync_every_group: true,
            } => "LSM rows, fsync a group",
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Derived {
    /// Summary + three rollup rows per touched sensor and group.
    FourRows,
    /// The summary only (partials inside it).
    OneRow,
}

fn sensor_name(k: usize) -> String {
    format!("s{}", k % SENSORS)
}

/// Reading `k`: (sensor index, µs, µ°C).
fn reading(k: usize) -> (usize, i64, i64) {
    let time = START_MICROS + (k / SENSORS) as i64 * 10_000_000;
    let temperature = ((k * 7_919) % 5_000) as i64 * 10_000 - 10_000_000;
    (k % SENSORS, time, temperature)
}

/// What the writer keeps per sensor in memory in the blocks layout: its last block.
#[derive(Default, Clone)]
struct LastBlock {
    first: i64,
    bytes: Vec<u8>,
    dirty: bool,
}

struct Writer {
    layout: Layout,
    derived: Derived,
    names: Vec<String>,
    numbers: HashMap<String, u64>,
    blocks: Vec<LastBlock>,
    /// [`Layout::BlocksDeferred`]: the derived rows of the groups since the last durable one.
    deferred_rows: Vec<(usize, i64)>,
}

impl Writer {
    fn new(layout: Layout, derived: Derived) -> Self {
        Self {
            layout,
            derived,
            names: (0..SENSORS).map(sensor_name).collect(),
            numbers: HashMap::new(),
            blocks: vec![LastBlock::default(); SENSORS],
            deferred_rows: Vec::new(),
        }
    }

    /// One group: readings `from..from + GROUP`, in one transaction.
    fn group(&mut self, db: &Database, from: usize, durable: bool) -> usize {
        let mut txn = db.begin_write().expect("begin");
        if !durable {
            txn.set_durability(Durability::None).expect("durability");
        }
        let mut group: Vec<(usize, i64, i64)> = (from..from + GROUP).map(reading).collect();
        // The writer inserts a group's readings in key order.
        group.sort_unstable_by(|a, b| self.names[a.0].cmp(&self.names[b.0]).then(a.1.cmp(&b.1)));
        let mut stored = 0;
        match self.layout {
            Layout::Rows => {
                let mut table = txn.open_table(ROWS).expect("table");
                for &(s, time, value) in &group {
                    let old = table
                        .insert((self.names[s].as_str(), time), value)
                        .expect("insert");
                    stored += usize::from(old.is_none());
                }
            }
            Layout::RowsU128 => {
                let mut table = txn.open_table(ROWS_U128).expect("table");
                let mut numbers = txn.open_table(SENSOR_NUMBERS).expect("table");
                for &(s, time, value) in &group {
                    let next = self.numbers.len() as u64;
                    let number = match self.numbers.get(&self.names[s]) {
                        Some(&n) => n,
                        None => {
                            numbers
                                .insert(self.names[s].as_str(), next)
                                .expect("insert");
                            self.numbers.insert(self.names[s].clone(), next);
                            next
                        }
                    };
                    let key = (u128::from(number) << 64) | u128::from((time as u64) ^ (1 << 63));
                    let old = table.insert(key, value).expect("insert");
                    stored += usize::from(old.is_none());
                }
            }
            Layout::Blocks | Layout::BlocksDeferred | Layout::BlocksDeferredRowsNow => {
                let write_now = self.layout == Layout::Blocks || durable;
                let mut table = txn.open_table(BLOCKS).expect("table");
                for &(s, time, value) in &group {
                    let block = &mut self.blocks[s];
                    let last =
                        block.bytes.len().checked_sub(16).map(|at| {
                            i64::from_le_bytes(block.bytes[at..at + 8].try_into().unwrap())
                        });
                    // This workload is in order: a reading older than the block's last would
                    // need a lookup of its own block (not measured here).
                    assert!(
                        last.is_none_or(|last| time > last),
                        "in-order readings only"
                    );
                    if block.bytes.len() == BLOCK_READINGS * 16 {
                        // A full block is written at once in both cases (it leaves memory).
                        if block.dirty {
                            table
                                .insert(
                                    (self.names[s].as_str(), block.first),
                                    block.bytes.as_slice(),
                                )
                                .expect("insert");
                        }
                        block.bytes.clear();
                    }
                    if block.bytes.is_empty() {
                        block.first = time;
                    }
                    block.bytes.extend_from_slice(&time.to_le_bytes());
                    block.bytes.extend_from_slice(&value.to_le_bytes());
                    block.dirty = true;
                    stored += 1;
                }
                for (s, block) in self.blocks.iter_mut().enumerate() {
                    if block.dirty && write_now {
                        table
                            .insert(
                                (self.names[s].as_str(), block.first),
                                block.bytes.as_slice(),
                            )
                            .expect("insert");
                        block.dirty = false;
                    }
                }
            }
            Layout::Lsm { .. } => unreachable!("run_lsm writes the LSM layout"),
        }
        if self.layout == Layout::BlocksDeferred {
            self.deferred_rows
                .extend(group.iter().map(|&(s, time, _)| (s, time)));
            if durable {
                let rows = std::mem::take(&mut self.deferred_rows);
                self.derived_rows(&txn, rows.into_iter());
            }
        } else {
            self.derived_rows(&txn, group.iter().map(|&(s, time, _)| (s, time)));
        }
        txn.commit().expect("commit");
        stored
    }

    /// Per touched sensor: its summary (about the size of today's encoding) and, with
    /// [`Derived::FourRows`], its minute, hour and day rows.
    /// With [`Layout::BlocksDeferred`], once per durable group for the readings of all the
    /// groups since the last one: every rollup bucket they touched, not only the last.
    fn derived_rows(
        &self,
        txn: &redb::WriteTransaction,
        readings: impl Iterator<Item = (usize, i64)>,
    ) {
        let mut summaries = txn.open_table(SUMMARIES).expect("table");
        let mut rollups = txn.open_table(ROLLUPS).expect("table");
        let mut last_time = vec![None; SENSORS];
        let mut buckets = std::collections::BTreeSet::new();
        for (s, time) in readings {
            last_time[s] = Some(time);
            if self.layout == Layout::BlocksDeferred {
                buckets.insert((s, time - time.rem_euclid(60_000_000)));
            }
        }
        let row = [3u8; 40];
        if self.derived == Derived::FourRows {
            // The minute buckets the deferred groups left behind (the last one is written below).
            for &(s, minute) in &buckets {
                rollups
                    .insert((self.names[s].as_str(), 0u8, minute), row.as_slice())
                    .expect("insert");
            }
        }
        let summary = [7u8; 72];
        for (s, time) in last_time.iter().enumerate() {
            let Some(time) = *time else { continue };
            let name = self.names[s].as_str();
            summaries.insert(name, summary.as_slice()).expect("insert");
            if self.derived == Derived::FourRows {
                for (level, width) in [
                    (0u8, 60_000_000i64),
                    (1, 3_600_000_000),
                    (2, 86_400_000_000),
                ] {
                    let bucket = time - time.rem_euclid(width);
                    rollups
                        .insert((name, level, bucket), row.as_slice())
                        .expect("insert");
                }
            }
        }
    }
}

/// CPU time of every thread of this process so far: utime + stime of `/proc/self/stat`
/// (fields 14 and 15, in ticks of USER_HZ, which is 100 on Linux).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<u64>().expect("ticks");
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Bytes of every file under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("directory")
        .map(|entry| {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                disk_bytes(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

/// What one timed run measured.
struct Figures {
    stored: usize,
    wall: Duration,
    cpu: Duration,
    disk: u64,
}

fn print(layout: Layout, derived: Derived, figures: &Figures) {
    let readings = figures.stored as f64;
    println!(
        "{:<26} {:<16} {:>12.0} {:>10.0} {:>10.0} {:>12.1}",
        layout.name(),
        match derived {
            Derived::FourRows => "4 per sensor",
            Derived::OneRow => "1 per sensor",
        },
        readings / figures.wall.as_secs_f64(),
        figures.wall.as_secs_f64() * 1e9 / readings,
        figures.cpu.as_secs_f64() * 1e9 / readings,
        figures.disk as f64 / ((PREFILL_GROUPS + TIMED_GROUPS) * GROUP) as f64,
    );
}

fn run(layout: Layout, derived: Derived) {
    let figures = match layout {
        Layout::Lsm { sync_every_group } => run_lsm(derived, sync_every_group),
        _ => run_redb(layout, derived),
    };
    assert_eq!(figures.stored, TIMED_GROUPS * GROUP, "every reading new");
    print(layout, derived, &figures);
}

fn run_redb(layout: Layout, derived: Derived) -> Figures {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("layout.redb");
    let db = Database::builder()
        .set_cache_size(32 * 1024 * 1024)
        .create(&path)
        .expect("database");
    let mut writer = Writer::new(layout, derived);
    for g in 0..PREFILL_GROUPS {
        writer.group(&db, g * GROUP, (g + 1) % CHECKPOINT_EVERY == 0);
    }
    let (started, cpu) = (Instant::now(), process_cpu());
    let mut stored = 0;
    for g in PREFILL_GROUPS..PREFILL_GROUPS + TIMED_GROUPS {
        stored += writer.group(&db, g * GROUP, (g + 1) % CHECKPOINT_EVERY == 0);
    }
    Figures {
        stored,
        wall: started.elapsed(),
        cpu: process_cpu() - cpu,
        disk: disk_bytes(dir.path()),
    }
}

/// An LSM key: the sensor's name, length-prefixed, then the time, big-endian with the sign bit
/// flipped, so keys sort as `(sensor, time)` do.
fn lsm_key(sensor: &str, micros: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + sensor.len() + 8);
    key.push(sensor.len() as u8);
    key.extend_from_slice(sensor.as_bytes());
    key.extend_from_slice(&((micros as u64) ^ (1 << 63)).to_be_bytes());
    key
}

fn run_lsm(derived: Derived, sync_every_group: bool) -> Figures {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = fjall::Database::builder(dir.path())
        .cache_size(32 * 1024 * 1024)
        .manual_journal_persist(true)
        .open()
        .expect("database");
    let readings = db
        .keyspace("readings", KeyspaceCreateOptions::default)
        .expect("keyspace");
    let summaries = db
        .keyspace("sensor_aggregates", KeyspaceCreateOptions::default)
        .expect("keyspace");
    let rollups = db
        .keyspace("sensor_rollups", KeyspaceCreateOptions::default)
        .expect("keyspace");
    let names: Vec<String> = (0..SENSORS).map(sensor_name).collect();
    // The writer's per-sensor latest time (it keeps each sensor's summary in memory).
    let mut latest: Vec<Option<i64>> = vec![None; SENSORS];
    let mut group = |from: usize, durable: bool| -> usize {
        let mut batch = db.batch();
        let mut stored = 0;
        let mut last_time = vec![None; SENSORS];
        for (s, time, value) in (from..from + GROUP).map(reading) {
            let key = lsm_key(&names[s], time);
            // The duplicate check: only a reading at or before its sensor's latest can be one.
            if latest[s].is_some_and(|l| time <= l) {
                assert!(readings.get(&key).expect("get").is_none(), "in order");
            }
            batch.insert(&readings, key, value.to_le_bytes());
            latest[s] = Some(time);
            last_time[s] = Some(time);
            stored += 1;
        }
        let summary = [7u8; 72];
        let row = [3u8; 40];
        for (s, time) in last_time.iter().enumerate() {
            let Some(time) = *time else { continue };
            batch.insert(&summaries, names[s].as_bytes(), summary);
            if derived == Derived::FourRows {
                for (level, width) in [
                    (0u8, 60_000_000i64),
                    (1, 3_600_000_000),
                    (2, 86_400_000_000),
                ] {
                    let mut key = lsm_key(&names[s], time - time.rem_euclid(width));
                    key.insert(0, level);
                    batch.insert(&rollups, key, row);
                }
            }
        }
        batch.commit().expect("commit");
        if sync_every_group {
            db.persist(PersistMode::SyncData).expect("persist");
        } else if durable {
            db.persist(PersistMode::SyncAll).expect("persist");
        }
        stored
    };
    for g in 0..PREFILL_GROUPS {
        group(g * GROUP, (g + 1) % CHECKPOINT_EVERY == 0);
    }
    let (started, cpu) = (Instant::now(), process_cpu());
    let mut stored = 0;
    for g in PREFILL_GROUPS..PREFILL_GROUPS + TIMED_GROUPS {
        stored += group(g * GROUP, (g + 1) % CHECKPOINT_EVERY == 0);
    }
    // Deferred work, paid within the timed run: the memtables become tables on disk.
    for keyspace in [&readings, &summaries, &rollups] {
        keyspace.rotate_memtable_and_wait().expect("flush");
    }
    Figures {
        stored,
        wall: started.elapsed(),
        cpu: process_cpu() - cpu,
        disk: disk_bytes(dir.path()),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we need either:
    // under `cargo test` (no `--bench`), only check that one small case runs.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    println!(
        "{:<26} {:<16} {:>12} {:>10} {:>10} {:>12}",
        "readings layout", "derived rows", "readings/s", "ns/reading", "CPU ns", "disk B/rdg"
    );
    if !benchmarking {
        return;
    }
    for layout in [
        Layout::Rows,
        Layout::RowsU128,
        Layout::Blocks,
        Layout::BlocksDeferred,
        Layout::BlocksDeferredRowsNow,
        Layout::Lsm {
            sync_every_group: false,
        },
        Layout::Lsm {
            sync_every_group: true,
        },
    ] {
        for derived in [Derived::FourRows, Derived::OneRow] {
            run(layout, derived);
        }
    }
}
