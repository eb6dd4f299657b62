//! Crash recovery through the write-ahead log. A crash is simulated by assembling a data
//! directory from the database file as it was at some durable point (right after open, or
//! after a clean close) and the log file as it is after the writes were acknowledged: all a
//! power cut could leave if redb had made nothing durable since. Every acknowledged write
//! must be back after opening it.

use std::fs;

use serde_json::{Value, json};

use super::*;
use crate::storage::group_commit::unobserved;

const CACHE: usize = 1 << 20;
/// No checkpoint during a test: every acknowledged group is only in the log.
const NEVER: Duration = Duration::from_secs(3_600);

fn open(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open_with(dir, CACHE, unobserved(), NEVER, RecoveryOptions::default())
        .expect("the store opens")
}

/// The store in `dir` with a checkpoint at least every `interval`.
fn open_checkpointing_every(dir: &Path, interval: Duration) -> EmbeddedStore {
    EmbeddedStore::open_with(
        dir,
        CACHE,
        unobserved(),
        interval,
        RecoveryOptions::default(),
    )
    .expect("the store opens")
}

fn reading(sensor: &str, second: usize, milli: i64) -> Value {
    json!({
        "sensorID": sensor,
        "time": format!("2021-10-04 {:02}:{:02}:{:02}", second / 3600, second / 60 % 60, second % 60),
        "temperature": milli as f64 / 1000.0,
    })
}

async fn put(store: &EmbeddedStore, body: Value) -> PutOutcome {
    store
        .put_readings(Batch::parse(&body).expect("a valid batch"))
        .await
        .expect("the write is acknowledged")
}

/// The data directory a crash would leave: `redb` bytes from a durable point, `from`'s log.
fn crashed_copy(from: &Path, redb: &[u8], to: &Path) {
    fs::create_dir_all(to).unwrap();
    fs::write(to.join(FILE_NAME), redb).unwrap();
    fs::copy(from.join(LOG_FILE_NAME), to.join(LOG_FILE_NAME)).unwrap();
}

fn sensor(name: &str) -> SensorId {
    SensorId::from_text(name).unwrap()
}

/// Every stored reading of sensor `name` (up to 100,000), in time order, through the readings
/// route's query.
async fn readings_of(store: &EmbeddedStore, name: &str) -> Vec<Reading> {
    store
        .readings(ReadingsQuery {
            sensor_id: sensor(name),
            from: None,
            to: None,
            after: None,
            limit: 100_000,
        })
        .await
        .unwrap()
        .readings
}

async fn count_of(store: &EmbeddedStore, name: &str) -> usize {
    readings_of(store, name).await.len()
}

/// 16 concurrent writers × 25 readings, a batch, a duplicate, a conflict, and items.
/// Returns the aggregate over every stored reading.
async fn write_a_mix(store: &EmbeddedStore) -> Aggregate {
    let mut tasks = Vec::new();
    for writer in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut temperatures = Vec::new();
            for i in 0..25 {
                let milli = (writer * 1_000 + i * 37) as i64 - 4_000;
                let outcome = put(&store, reading(&format!("w{writer}"), i, milli)).await;
                assert_eq!(
                    outcome,
                    PutOutcome::Stored {
                        stored: 1,
                        duplicates: 0
                    }
                );
                temperatures.push(Temperature::from_micros(milli * 1_000).unwrap());
            }
            temperatures
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let batch = json!([
        reading("b", 1, 1_500),
        reading("b", 2, -2_250),
        reading("c", 1, 0)
    ]);
    assert_eq!(
        put(store, batch).await,
        PutOutcome::Stored {
            stored: 3,
            duplicates: 0
        }
    );
    all.extend([1_500, -2_250, 0].map(|m| Temperature::from_micros(m * 1_000).unwrap()));
    assert_eq!(
        put(store, reading("b", 1, 1_500)).await,
        PutOutcome::Stored {
            stored: 0,
            duplicates: 1
        }
    );
    assert!(matches!(
        put(store, reading("b", 2, 9_000)).await,
        PutOutcome::Conflict(_)
    ));
    // A late reading, among the ones the writer may still hold in memory.
    for (second, milli) in [(5, 700), (3, 300)] {
        assert_eq!(
            put(store, reading("c", second, milli)).await,
            PutOutcome::Stored {
                stored: 1,
                duplicates: 0
            }
        );
        all.push(Temperature::from_micros(milli * 1_000).unwrap());
    }
    for name in ["one", "two", "three"] {
        store
            .item_put(json!({ "name": name }).to_string())
            .await
            .unwrap();
    }
    assert!(store.item_delete(2).await.unwrap());
    Aggregate::of(all)
}

async fn assert_the_mix_is_there(store: &EmbeddedStore, expected: Aggregate) {
    assert_eq!(store.stats(None).await.unwrap(), expected);
    assert_eq!(store.scan_stats(None).await.unwrap(), expected);
    for writer in 0..16 {
        let name = format!("w{writer}");
        assert_eq!(count_of(store, &name).await, 25, "{name}");
        assert_eq!(
            store.stats(Some(&sensor(&name))).await.unwrap(),
            store.scan_stats(Some(&sensor(&name))).await.unwrap()
        );
    }
    let b = store.stats(Some(&sensor("b"))).await.unwrap();
    assert_eq!(
        (b.count, b.max_micros),
        (2, Some(1_500_000)),
        "no conflict stored"
    );
    let c: Vec<i64> = readings_of(store, "c")
        .await
        .iter()
        .map(|r| r.temperature.micros() / 1_000)
        .collect();
    assert_eq!(
        c,
        [0, 300, 700],
        "c in time order, the late reading in its place"
    );
    assert!(store.item_get(1).await.unwrap().is_some());
    assert!(
        store.item_get(2).await.unwrap().is_none(),
        "the delete is replayed"
    );
    assert_eq!(
        store.item_get(3).await.unwrap().unwrap().get(),
        r#"{"name":"three"}"#
    );
}

/// Stats come from the stored aggregates, never from the readings, and start-up
/// does not rebuild them. Deleting the readings behind the store's back shows it: a scan
/// finds nothing, the stats still count everything, before and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_come_from_stored_aggregates_not_from_the_readings() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let body = json!([
        reading("a", 1, 1_500),
        reading("a", 2, 2_500),
        reading("b", 1, -1_000)
    ]);
    put(&store, body).await;
    let expected = store.stats(None).await.unwrap();
    assert_eq!(expected.count, 3);
    // Closed and opened again: the readings are in the tables, none in the writer's memory.
    drop(store);
    let store = open(dir.path());
    {
        let txn = store.health.database().unwrap().begin_write().unwrap();
        txn.delete_table(READINGS).unwrap();
        txn.open_table(READINGS).unwrap();
        txn.delete_table(READING_BLOCKS).unwrap();
        txn.open_table(READING_BLOCKS).unwrap();
        txn.commit().unwrap();
    }
    assert_eq!(
        store.scan_stats(None).await.unwrap().count,
        0,
        "the readings are gone"
    );
    assert_eq!(store.stats(None).await.unwrap(), expected);
    assert_eq!(store.stats(Some(&sensor("a"))).await.unwrap().count, 2);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.scan_stats(None).await.unwrap().count, 0);
    assert_eq!(
        store.stats(None).await.unwrap(),
        expected,
        "start-up rebuilt nothing"
    );
}

/// Rollup rows merged from the writer's memory (no lookup) stay equal to a recomputation:
/// commits into the same minute, hour and day, a later bucket, then an earlier one again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_rows_merged_from_memory_equal_a_recomputation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for (second, milli) in [
        (1, 1_000),
        (2, 2_000),
        (3, -500),
        (61, 4_000),
        (4, 7_000),
        (3_700, 1),
    ] {
        put(
            &store,
            json!([reading("a", second, milli), reading("b", second, milli * 2)]),
        )
        .await;
    }
    let all = store.stats(None).await.unwrap();
    assert_eq!(all.count, 12);
    drop(store);
    let verification = verify(dir.path()).unwrap();
    assert!(verification.is_consistent(), "{verification:?}");
}

/// A minute of a sensor whose row an earlier version wrote sensor first (`sensor_rollups`), and
/// whose later readings went to the minute-first table, is answered and verified as the merge
/// of both rows and the partial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_split_between_an_earlier_versions_row_and_the_minute_table_is_merged() {
    use super::rollups::{MINUTE_ROLLUPS, SENSOR_ROLLUPS};
    use crate::domain::rollup::Level;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Minute 0 of "a", then minute 1: minute 0 moves from the partial into its row.
    put(
        &store,
        json!([reading("a", 10, 1_000), reading("a", 20, 2_000)]),
    )
    .await;
    put(&store, json!([reading("a", 70, 4_000)])).await;
    drop(store);
    let minute = 1_633_305_600_000_000; // 2021-10-04T00:00:00Z
    {
        let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut minutes = txn.open_table(MINUTE_ROLLUPS).unwrap();
            let row = minutes
                .remove((minute, "a"))
                .unwrap()
                .expect("minute 0's row")
                .value()
                .to_vec();
            let mut earlier = txn.open_table(SENSOR_ROLLUPS).unwrap();
            earlier
                .insert(("a", Level::Minute.code(), minute), row.as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let store = open(dir.path());
    // A late reading of minute 0 (its delta goes to the minute table), one more of minute 1
    // (its partial).
    put(
        &store,
        json!([reading("a", 30, -500), reading("a", 80, 5_000)]),
    )
    .await;
    {
        let (txn, _) = store.health.snapshot().unwrap();
        let minutes = txn.open_table(MINUTE_ROLLUPS).unwrap();
        let earlier = txn.open_table(SENSOR_ROLLUPS).unwrap();
        assert!(minutes.get((minute, "a")).unwrap().is_some());
        let key = ("a", Level::Minute.code(), minute);
        assert!(earlier.get(key).unwrap().is_some());
    }
    let celsius = |values: &[f64]| {
        Aggregate::of(
            values
                .iter()
                .map(|c| Temperature::from_micros((c * 1e6) as i64).unwrap()),
        )
    };
    let second = 1_000_000;
    let a = Some(sensor("a"));
    let minute_0 = Span::new(minute, minute + 60 * second);
    let both = Span::new(minute, minute + 120 * second);
    assert_eq!(
        store.window_stats(a.as_ref(), minute_0).await.unwrap(),
        celsius(&[1.0, 2.0, -0.5])
    );
    assert_eq!(
        store.window_stats(a.as_ref(), both).await.unwrap(),
        celsius(&[1.0, 2.0, -0.5, 4.0, 5.0])
    );
    drop(store);
    let verification = verify(dir.path()).unwrap();
    assert!(verification.is_consistent(), "{verification:?}");
}

/// A batch is inserted in key order, not request order: its conflicts are still named in
/// request order, and a conflict still undoes every fresh insert of the batch.
/// Rows of the `readings` table, and readings of the `reading_blocks` table followed by the
/// writer's recent ones (on their way to the blocks), for one sensor.
fn stored_layout(store: &EmbeddedStore, name: &str) -> (Vec<i64>, Vec<i64>) {
    let (txn, recent) = store.health.snapshot().unwrap();
    let rows = txn.open_table(READINGS).unwrap();
    let rows = rows
        .range((name, i64::MIN)..=(name, i64::MAX))
        .unwrap()
        .map(|entry| entry.unwrap().0.value().1 / 1_000_000 % 60)
        .collect();
    let blocks = txn.open_table(READING_BLOCKS).unwrap();
    let mut in_blocks = Vec::new();
    for entry in blocks.range((name, i64::MIN)..=(name, i64::MAX)).unwrap() {
        let (key, value) = entry.unwrap();
        for (micros, _) in reading_blocks::decode(name, key.value().1, value.value()).unwrap() {
            in_blocks.push(micros / 1_000_000 % 60);
        }
    }
    in_blocks.extend(
        recent
            .of(name)
            .iter()
            .map(|(micros, _)| micros / 1_000_000 % 60),
    );
    (rows, in_blocks)
}

/// In-order readings go to the blocks (through the writer's memory until a checkpoint). A late
/// reading still newer than the first one in memory joins those in its place; an older one, or
/// any late one once the memory is written to the blocks, is a row. Each place answers the
/// duplicate and conflict checks for its own readings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_order_readings_go_to_blocks_late_ones_among_them_or_to_rows_and_all_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let stored = |stored, duplicates| PutOutcome::Stored { stored, duplicates };
    assert_eq!(
        put(
            &store,
            json!([
                reading("a", 10, 1_000),
                reading("a", 12, 1_200),
                reading("a", 14, 1_400)
            ])
        )
        .await,
        stored(3, 0)
    );
    // Late, but after the first reading in memory: among them. Earlier than all: a row.
    for late in [reading("a", 11, 1_100), reading("a", 1, 100)] {
        assert_eq!(put(&store, late.clone()).await, stored(1, 0));
        assert_eq!(put(&store, late).await, stored(0, 1));
    }
    assert_eq!(
        put(&store, json!(reading("a", 12, 1_200))).await,
        stored(0, 1)
    );
    for late in [
        reading("a", 1, 9_000),
        reading("a", 11, 9_000),
        reading("a", 12, 9_000),
    ] {
        assert!(matches!(put(&store, late).await, PutOutcome::Conflict(_)));
    }
    // A conflict undoes the request's in-order reading too.
    let body = json!([reading("a", 20, 2_000), reading("a", 14, 9_000)]);
    assert!(matches!(put(&store, body).await, PutOutcome::Conflict(_)));
    assert_eq!(stored_layout(&store, "a"), (vec![1], vec![10, 11, 12, 14]));
    let (_, recent) = store.health.snapshot().unwrap();
    assert_eq!(recent.of("a").len(), 4, "not in the blocks yet");
    drop(recent);
    // A later reading is appended, a late one in the same request takes its place.
    assert_eq!(
        put(
            &store,
            json!([reading("a", 15, 1_500), reading("a", 13, 1_300)])
        )
        .await,
        stored(2, 0)
    );
    assert_eq!(
        stored_layout(&store, "a"),
        (vec![1], vec![10, 11, 12, 13, 14, 15])
    );
    drop(store);
    // The final checkpoint wrote them to the blocks: a late reading now is a row.
    let store = open(dir.path());
    assert_eq!(put(&store, json!(reading("a", 9, 900))).await, stored(1, 0));
    assert_eq!(
        stored_layout(&store, "a"),
        (vec![1, 9], vec![10, 11, 12, 13, 14, 15])
    );
    let seconds: Vec<u32> = readings_of(&store, "a")
        .await
        .iter()
        .map(|r| r.time.to_datetime().timestamp() as u32 % 60)
        .collect();
    assert_eq!(seconds, [1, 9, 10, 11, 12, 13, 14, 15]);
    assert_eq!(store.stats(None).await.unwrap().count, 8);
    drop(store);
    let verified = verify(dir.path()).unwrap();
    assert!(verified.is_consistent(), "{:?}", verified.differences);
    assert_eq!(verified.readings, 8);
}

/// The answers a store gives about sensors "a" and "b" (pages, windows with edges inside the
/// readings, stats and scans), to compare between the writer's memory and the tables.
async fn answers_about_a_and_b(store: &EmbeddedStore) -> Vec<String> {
    let mut answers = Vec::new();
    for name in ["a", "b"] {
        let page = |after: Option<Timestamp>, limit| ReadingsQuery {
            sensor_id: sensor(name),
            from: None,
            to: None,
            after,
            limit,
        };
        let first = store.readings(page(None, 2)).await.unwrap();
        let rest = store.readings(page(first.next, 10)).await.unwrap();
        let seconds: Vec<i64> = first
            .readings
            .iter()
            .chain(&rest.readings)
            .map(|r| r.time.to_datetime().timestamp() % 3_600)
            .collect();
        answers.push(format!("{name}: {seconds:?}, then {:?}", rest.next));
        let micros = |second: i64| first.readings[0].time.micros() + (second - 10) * 1_000_000;
        // Edges inside minutes, whole minutes and hours from rollups, and both.
        for (from, to) in [
            (12, 25),
            (10, 31),
            (16, 30),
            (29, 100),
            (0, 7_200),
            (60, 3_600),
            (61, 3_701),
            (120, 180),
        ] {
            let window = Span::new(micros(from), micros(to));
            let got = store
                .window_stats(Some(&sensor(name)), window)
                .await
                .unwrap();
            let all = store.window_stats(None, window).await.unwrap();
            answers.push(format!("{name} {from}..{to}: {got:?}, all sensors {all:?}"));
        }
        let stats = store.stats(Some(&sensor(name))).await.unwrap();
        assert_eq!(stats, store.scan_stats(Some(&sensor(name))).await.unwrap());
        answers.push(format!("{name}: {stats:?}"));
    }
    let all = store.stats(None).await.unwrap();
    assert_eq!(all, store.scan_stats(None).await.unwrap());
    answers.push(format!("all: {all:?}"));
    answers
}

/// Between checkpoints the writer keeps its sensors' newest in-order readings in memory, not in
/// their blocks: they are paged, windowed, scanned and checked for duplicates and conflicts
/// exactly as the same readings once in the tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_in_the_writers_memory_are_answered_and_checked_like_stored_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let stored = |stored, duplicates| PutOutcome::Stored { stored, duplicates };
    // Minutes and an hour apart too: windows take whole buckets from rollups.
    for second in [10, 20, 30, 70, 130, 3_700] {
        let milli = second as i64 % 100 * 100;
        let body = json!([reading("a", second, milli), reading("b", second, -milli)]);
        assert_eq!(put(&store, body).await, stored(2, 0));
    }
    // A late reading takes its place among the recent ones.
    assert_eq!(
        put(&store, json!(reading("a", 15, 1_500))).await,
        stored(1, 0)
    );
    let (_, recent) = store.health.snapshot().unwrap();
    let in_memory = |name| recent.of(name).len();
    assert_eq!(
        (in_memory("a"), in_memory("b")),
        (7, 6),
        "not in the blocks yet"
    );
    drop(recent);
    assert_eq!(
        stored_layout(&store, "a"),
        (vec![], vec![10, 15, 20, 30, 10, 10, 40])
    );
    assert_eq!(
        put(&store, json!(reading("a", 20, 2_000))).await,
        stored(0, 1)
    );
    let contradicts = json!([reading("a", 31, 1), reading("a", 30, 1)]);
    assert!(matches!(
        put(&store, contradicts).await,
        PutOutcome::Conflict(_)
    ));
    let before = answers_about_a_and_b(&store).await;
    assert_eq!(before[0], "a: [10, 15, 20, 30, 70, 130, 100], then None");
    assert!(
        before[1].contains("count: 2, sum_micros: 3500000"),
        "15 and 20 in 12..25: {}",
        before[1]
    );
    drop(store);
    // The final checkpoint wrote them to their blocks: the same answers from the tables.
    let store = open(dir.path());
    let (_, recent) = store.health.snapshot().unwrap();
    assert!(recent.is_empty());
    assert_eq!(answers_about_a_and_b(&store).await, before);
    drop(store);
    let verified = verify(dir.path()).unwrap();
    assert!(verified.is_consistent(), "{:?}", verified.differences);
    assert_eq!(verified.readings, 13);
}

/// Whatever commit a reader lands between (checkpoints every 2 ms here, so the writer's memory
/// is written to the blocks and emptied again and again), its snapshot of the tables and the
/// writer's memory hold exactly the readings its summary counts: none missing, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_snapshot_pairs_the_tables_with_the_writers_memory_of_the_same_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_checkpointing_every(dir.path(), Duration::from_millis(2));
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for batch in 0..300 {
                let body: Vec<Value> = (0..10)
                    .map(|i| reading("c", batch * 10 + i, (i as i64) * 10))
                    .collect();
                put(&store, json!(body)).await;
            }
        })
    };
    let mut snapshots = 0;
    let mut seen_in_memory = 0;
    while !writer.is_finished() && snapshots < 100_000 {
        let health = store.health.clone();
        let (counted, held, in_memory) = tokio::task::spawn_blocking(move || {
            let (txn, recent) = health.snapshot().unwrap();
            let summaries = txn.open_table(SENSOR_AGGREGATES).unwrap();
            let counted = match summaries.get("c").unwrap() {
                Some(bytes) => decode_summary(bytes.value(), "c").unwrap().aggregate.count,
                None => 0,
            };
            let rows = txn.open_table(READINGS).unwrap();
            let blocks = txn.open_table(READING_BLOCKS).unwrap();
            let held = reading_blocks::range(
                &rows,
                &blocks,
                recent.of("c"),
                "c",
                i64::MIN,
                Bound::Unbounded,
                usize::MAX,
            )
            .unwrap();
            (counted, held.len() as u64, !recent.of("c").is_empty())
        })
        .await
        .unwrap();
        assert_eq!(counted, held, "snapshot {snapshots}");
        snapshots += 1;
        seen_in_memory += usize::from(in_memory);
    }
    writer.await.unwrap();
    assert!(seen_in_memory > 0, "no snapshot found readings in memory");
    assert_eq!(store.stats(Some(&sensor("c"))).await.unwrap().count, 3_000);
}

/// redb makes the writer's non-durable commits durable when the database is closed, so a close
/// without the final checkpoint (here: a pending fault) leaves a state whose summaries count
/// readings that were only in the writer's memory. Opening it writes them from the log to their
/// blocks, without counting them twice, and replays only the records that were not applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_without_the_final_checkpoint_loses_no_recent_reading_and_counts_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let expected = write_a_mix(&store).await;
    let (_, recent) = store.health.snapshot().unwrap();
    assert!(!recent.is_empty(), "the mix left readings in memory");
    drop(recent);
    // The final checkpoint is skipped while a fault is pending.
    store
        .health
        .set_fault("a simulated fault at shutdown".into());
    drop(store);
    let store = open(dir.path());
    assert_the_mix_is_there(&store, expected).await;
    let ids: Vec<ItemId> = store
        .item_list(None, 10, 1 << 20)
        .await
        .unwrap()
        .items
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(ids, [1, 3], "item puts and deletes applied once");
    drop(store);
    let verified = verify(dir.path()).unwrap();
    assert!(verified.is_consistent(), "{:?}", verified.differences);
    assert_eq!(verified.readings, expected.count);
}

#[test]
fn a_group_finds_the_readings_it_appends_itself() {
    // One group of requests: the second repeats the first's in-order reading, the third
    // contradicts it; both must see the append, which is only written at the group's end. The
    // fourth is older than the first (concurrent clients' requests arrive in any order) but
    // newer than anything committed: it joins the appends in time order.
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join(FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    let mut tables = tables::Tables::open(&txn).unwrap();
    let request = |second, milli| QueuedWrite::Readings {
        batch: Batch::parse(&reading("g", second, milli)).unwrap(),
        reply: oneshot::channel().0,
    };
    let group = [
        request(5, 1_000),
        request(5, 1_000),
        request(5, 2_000),
        request(3, 500),
        request(3, 500),
        request(3, 600),
    ];
    let (effects, _) = tables.apply(&group, &mut Vec::new()).unwrap();
    let outcomes: Vec<String> = effects
        .iter()
        .map(|effect| match effect {
            writer::Effect::Readings(PutOutcome::Stored { stored, duplicates }) => {
                format!("stored {stored}, duplicates {duplicates}")
            }
            writer::Effect::Readings(PutOutcome::Conflict(_)) => "conflict".into(),
            _ => "another effect".into(),
        })
        .collect();
    let (stored, repeated) = ("stored 1, duplicates 0", "stored 0, duplicates 1");
    assert_eq!(
        outcomes,
        [stored, repeated, "conflict", stored, repeated, "conflict"]
    );
    drop(tables);
    txn.commit().unwrap();
    let txn = db.begin_read().unwrap();
    let blocks = txn.open_table(READING_BLOCKS).unwrap();
    let (key, value) = redb::ReadableTable::first(&blocks).unwrap().unwrap();
    let seconds: Vec<(i64, i64)> = reading_blocks::decode("g", key.value().1, value.value())
        .unwrap()
        .into_iter()
        .map(|(micros, value)| (micros / 1_000_000 % 60, value))
        .collect();
    assert_eq!(seconds, [(3, 500_000), (5, 1_000_000)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_named_in_request_order_whatever_the_insert_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    put(
        &store,
        json!([reading("b", 1, 1_000), reading("a", 1, 1_000)]),
    )
    .await;
    let body = json!([
        reading("c", 1, 1_000),
        reading("b", 1, 2_000),
        reading("a", 2, 1_000),
        reading("a", 1, 2_000),
    ]);
    let PutOutcome::Conflict(conflicts) = put(&store, body).await else {
        panic!("expected conflicts");
    };
    let named: Vec<(usize, &str)> = conflicts
        .iter()
        .map(|c| (c.index, c.sensor_id.as_str()))
        .collect();
    assert_eq!(named, [(1, "b"), (3, "a")]);
    assert_eq!(count_of(&store, "a").await, 1, "the fresh a@2 was undone");
    assert_eq!(count_of(&store, "c").await, 0, "the fresh c@1 was undone");
    assert_eq!(store.stats(None).await.unwrap().count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_come_back_from_the_log_when_redb_lost_them() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = open(a.path());
    let redb_at_open = fs::read(a.path().join(FILE_NAME)).unwrap();
    let expected = write_a_mix(&store).await;
    crashed_copy(a.path(), &redb_at_open, b.path());
    drop(store);

    let recovered = open(b.path());
    assert_the_mix_is_there(&recovered, expected).await;
    // Item ids go on after the replayed ones.
    let id = recovered
        .item_put(json!({"name": "four"}).to_string())
        .await
        .unwrap();
    assert_eq!(id, 4);
    drop(recovered);
    // Opening again (after a clean close, with the old records still in the file) replays
    // nothing twice.
    let reopened = open(b.path());
    assert_eq!(reopened.stats(None).await.unwrap(), expected);
    // The original directory, closed cleanly, holds the same.
    drop(reopened);
    assert_the_mix_is_there(&open(a.path()), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_record_is_dropped_and_the_store_goes_on() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = open(a.path());
    let redb_at_open = fs::read(a.path().join(FILE_NAME)).unwrap();
    let expected = write_a_mix(&store).await;
    // The last record: one reading, whose fsync the crash interrupts.
    put(&store, reading("torn", 1, 20_000)).await;
    crashed_copy(a.path(), &redb_at_open, b.path());
    drop(store);
    let log = b.path().join(LOG_FILE_NAME);
    let length = fs::metadata(&log).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(length - 5)
        .unwrap();

    let recovered = open(b.path());
    assert_the_mix_is_there(&recovered, expected).await;
    assert_eq!(count_of(&recovered, "torn").await, 0);
    // New writes go on from there, and survive the next crash as well.
    let redb_now = {
        drop(recovered);
        fs::read(b.path().join(FILE_NAME)).unwrap()
    };
    let store = open(b.path());
    put(&store, reading("torn", 1, 20_000)).await;
    put(&store, reading("after", 1, 21_000)).await;
    let c = tempfile::tempdir().unwrap();
    crashed_copy(b.path(), &redb_now, c.path());
    drop(store);
    let recovered = open(c.path());
    assert_eq!(count_of(&recovered, "torn").await, 1);
    assert_eq!(count_of(&recovered, "after").await, 1);
    assert_eq!(
        recovered.stats(None).await.unwrap().count,
        expected.count + 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_checkpoint_the_log_restarts_and_stale_records_are_not_replayed() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A long first record, checkpointed by the clean close...
    let store = open(a.path());
    let long: Vec<Value> = (0..200).map(|i| reading("long", i, 1_000)).collect();
    put(&store, Value::Array(long)).await;
    drop(store);
    // ...then a short one written over its start: the rest of the long one is stale.
    let store = open(a.path());
    let redb_checkpointed = fs::read(a.path().join(FILE_NAME)).unwrap();
    put(&store, reading("short", 1, 2_000)).await;
    crashed_copy(a.path(), &redb_checkpointed, b.path());
    drop(store);

    let recovered = open(b.path());
    let total = recovered.stats(None).await.unwrap();
    assert_eq!(total.count, 201);
    assert_eq!(total, recovered.scan_stats(None).await.unwrap());
    assert_eq!(count_of(&recovered, "short").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_checkpoint_every_group_nothing_depends_on_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_checkpointing_every(dir.path(), Duration::ZERO);
    let expected = write_a_mix(&store).await;
    // The database file alone, with an empty log, holds everything.
    let redb_now = fs::read(dir.path().join(FILE_NAME)).unwrap();
    drop(store);
    let copy = tempfile::tempdir().unwrap();
    fs::write(copy.path().join(FILE_NAME), redb_now).unwrap();
    assert_the_mix_is_there(&open(copy.path()), expected).await;
}

/// Rollup builds of a store written by the previous release (`tests/fixtures/previous-release`:
/// 3,000 readings of `107`, `a b`, `gw/3` over two days from 2021-10-04, at whole and quarter
/// seconds). Unit tests build 7 readings a slice, so writes interleave with hundreds of slices.
mod build {
    use super::*;
    use crate::domain::window::Span;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/previous-release/telemetry.redb"
    );
    const SENSORS: [&str; 3] = ["107", "a b", "gw/3"];
    const T0: i64 = 1_633_305_600_000_000;
    const HOUR: i64 = 3_600_000_000;

    /// Readings at a tenth of a second past (never a fixture time), spread over both days.
    fn fresh(round: i64) -> Value {
        let readings: Vec<Value> = (0..40)
            .map(|i| {
                let micros = T0 + (i * 4_321 + round * 977) % 48 * HOUR + i * 61_000_000 + 100_000;
                json!({
                    "sensorID": SENSORS[(i % 3) as usize],
                    "time": Timestamp::from_micros(micros).unwrap().to_rfc3339(),
                    "temperature": (i * 37 + round) % 90 - 20,
                })
            })
            .collect();
        Value::Array(readings)
    }

    async fn wait_until_built(store: &EmbeddedStore) {
        for _ in 0..2_000 {
            if store.ping().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the rollup build did not finish");
    }

    /// Every window answered from rollups equals the aggregate of the stored readings.
    async fn assert_rollups_exact(store: &EmbeddedStore) {
        let mut all = Vec::new();
        for name in SENSORS {
            all.extend(readings_of(store, name).await);
        }
        let windows = [
            (T0, T0 + 48 * HOUR),
            (T0 + 1, T0 + 47 * HOUR - 1),
            (T0 + 5 * HOUR + 250_000, T0 + 30 * HOUR + 61_500_000),
            (
                T0 + 23 * HOUR + 59 * 60_000_000,
                T0 + 24 * HOUR + 60_000_001,
            ),
        ];
        for (from, to) in windows {
            for name in [None, Some("107"), Some("gw/3")] {
                let expected = Aggregate::of(
                    all.iter()
                        .filter(|r| name.is_none_or(|n| r.sensor_id.as_str() == n))
                        .filter(|r| (from..to).contains(&r.time.micros()))
                        .map(|r| r.temperature),
                );
                let id = name.map(sensor);
                let got = store
                    .window_stats(id.as_ref(), Span::new(from, to))
                    .await
                    .unwrap();
                assert_eq!(got, expected, "{name:?} {from}..{to}");
            }
        }
        let summaries = store.sensors(None, 10).await.unwrap().sensors;
        assert_eq!(summaries.len(), 3);
        for (id, summary) in summaries {
            let own: Vec<&Reading> = all.iter().filter(|r| r.sensor_id == id).collect();
            assert_eq!(summary.aggregate.count as usize, own.len());
            assert_eq!(summary.first, own.iter().map(|r| r.time).min());
            assert_eq!(
                summary.latest.map(|p| p.time),
                own.iter().map(|r| r.time).max()
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_during_the_build_are_counted_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::copy(FIXTURE, dir.path().join(FILE_NAME)).unwrap();
        let store = open(dir.path());
        for round in 0..10 {
            put(&store, fresh(round)).await;
        }
        wait_until_built(&store).await;
        assert_eq!(store.stats(None).await.unwrap().count, 3_000 + 400);
        assert_rollups_exact(&store).await;
        // Closed and opened again: complete, nothing rebuilt or counted twice.
        drop(store);
        let store = open(dir.path());
        assert!(store.ping().await.is_ok());
        assert_rollups_exact(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crash_during_the_build_replays_the_log_against_the_surviving_cursor() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        fs::copy(FIXTURE, a.path().join(FILE_NAME)).unwrap();
        let store = open(a.path());
        let redb_at_open = fs::read(a.path().join(FILE_NAME)).unwrap();
        for round in 0..10 {
            put(&store, fresh(round)).await;
        }
        // Whatever the build had done lived in non-durable commits: the crash loses it.
        crashed_copy(a.path(), &redb_at_open, b.path());
        drop(store);
        let recovered = open(b.path());
        wait_until_built(&recovered).await;
        assert_eq!(recovered.stats(None).await.unwrap().count, 3_000 + 400);
        assert_rollups_exact(&recovered).await;
    }
}

/// Storage faults, thread panics and what start-up refuses (see `health` and `recovery`).
mod faults {
    use super::*;

    /// A fault (as redb's "previous I/O error" leaves it) makes the writer close the database,
    /// open it again and replay the log: every acknowledged write is there, writes go on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_fault_the_writer_reopens_the_store_and_replays_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let expected = write_a_mix(&store).await;
        store.health.set_fault("a simulated I/O error".into());
        // Readiness goes through the writer while a fault is pending: it reopens the store.
        store.ping().await.expect("reopened on the readiness check");
        assert!(!store.health.is_faulted());
        assert_the_mix_is_there(&store, expected).await;
        store.health.set_fault("another simulated I/O error".into());
        // Attempts are at most once a retry interval: let one pass, then a write reopens.
        tokio::time::sleep(health::RECOVERY_RETRY).await;
        let outcome = put(&store, reading("after", 1, 1_000)).await;
        assert_eq!(
            outcome,
            PutOutcome::Stored {
                stored: 1,
                duplicates: 0
            }
        );
        drop(store);
        let store = open(dir.path());
        assert_eq!(count_of(&store, "after").await, 1);
        assert_eq!(store.stats(None).await.unwrap().count, expected.count + 1);
        drop(store);
        let verdict = verify(dir.path()).unwrap();
        assert!(verdict.is_consistent(), "{:?}", verdict.differences);
    }

    async fn not_ready_after_a_panic_in(thread: &'static str) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        put(&store, reading("a", 1, 1_000)).await;
        *store.health.inject.lock().unwrap() = Some(thread);
        let error = store
            .put_readings(Batch::parse(&reading("a", 2, 2_000)).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(error, StorageError::Unavailable(_)), "{error:?}");
        // Whichever thread died, the instance says so from now on.
        let mut refused = None;
        for _ in 0..1_000 {
            if let Err(error) = store.ping().await {
                refused = Some(error);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = refused.expect("not ready after the panic");
        assert!(
            matches!(refused, StorageError::Unavailable(_)),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("stopped"), "{refused}");
        // Not a passing fault: liveness fails too, so the orchestrator restarts the process.
        let dead = store.alive().expect_err("not alive after the panic");
        assert!(dead.to_string().contains("stopped"), "{dead}");
        let error = store
            .put_readings(Batch::parse(&reading("a", 3, 3_000)).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(error, StorageError::Unavailable(_)), "{error:?}");
        // What was acknowledged before the panic is there after a restart (the write in hand
        // may be too: a 503 means "outcome unknown").
        drop(store);
        let store = open(dir.path());
        assert!(count_of(&store, "a").await >= 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_in_the_writer_is_caught_and_leaves_the_store_not_ready() {
        not_ready_after_a_panic_in("writer panic").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_in_the_syncer_is_caught_and_leaves_the_store_not_ready() {
        not_ready_after_a_panic_in("syncer panic").await;
    }

    /// A failed `fdatasync` of the log: nothing is acknowledged, the instance is not ready until
    /// the writer has reopened the store and made the log's contents durable in redb.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_log_sync_is_503_until_the_store_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        put(&store, reading("a", 1, 1_000)).await;
        *store.health.inject.lock().unwrap() = Some("sync failure");
        let error = store
            .put_readings(Batch::parse(&reading("a", 2, 2_000)).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(error, StorageError::Unavailable(_)), "{error:?}");
        assert!(store.health.is_faulted(), "not ready from the failure on");
        store.ping().await.expect("reopened on the readiness check");
        put(&store, reading("a", 3, 3_000)).await;
        drop(store);
        let store = open(dir.path());
        // Reading 2 got a 503 ("outcome unknown"); it was in the log, so it is stored too.
        assert!(count_of(&store, "a").await >= 2);
        assert_eq!(
            readings_of(&store, "a")
                .await
                .last()
                .map(|r| r.temperature.micros()),
            Some(3_000_000)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_database_with_records_in_the_log_is_refused_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        put(&store, reading("a", 1, 1_000)).await;
        drop(store);
        fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
        let open_with =
            |options| EmbeddedStore::open_with(dir.path(), CACHE, unobserved(), NEVER, options);
        let error = open_with(RecoveryOptions::default())
            .err()
            .expect("refused");
        assert!(
            error
                .to_string()
                .contains("RECOVERY_ALLOW_EMPTY_DATABASE=true"),
            "{error}"
        );
        assert!(!dir.path().join(FILE_NAME).exists(), "nothing created");
        let allowed = RecoveryOptions {
            allow_empty_database: true,
            ..RecoveryOptions::default()
        };
        let store = open_with(allowed).expect("opens when allowed");
        // A new database; only log records that continue from it (numbered from 1) replay.
        assert!(store.stats(None).await.unwrap().count <= 1);
        let kept = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("telemetry.wal.discarded-")
            });
        assert!(kept, "a copy of the log is kept");
    }

    /// Five groups in the log; the second one's payload damaged.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_damaged_record_in_the_middle_of_the_log_is_refused_unless_truncation_is_allowed() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = open(a.path());
        let redb_at_open = fs::read(a.path().join(FILE_NAME)).unwrap();
        for second in 0..5 {
            put(&store, reading("a", second, 1_000)).await;
        }
        crashed_copy(a.path(), &redb_at_open, b.path());
        drop(store);
        let log = b.path().join(LOG_FILE_NAME);
        let mut bytes = fs::read(&log).unwrap();
        let first = 8 + u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        bytes[first + 20] ^= 0xFF;
        fs::write(&log, &bytes).unwrap();
        let open_with =
            |options| EmbeddedStore::open_with(b.path(), CACHE, unobserved(), NEVER, options);
        let error = open_with(RecoveryOptions::default())
            .err()
            .expect("refused");
        let message = error.to_string();
        assert!(message.contains(&format!("at byte {first}")), "{message}");
        assert!(message.contains("followed by 3 newer records"), "{message}");
        assert!(message.contains("RECOVERY_TRUNCATE_LOG=true"), "{message}");
        let truncate = RecoveryOptions {
            truncate_log: true,
            ..RecoveryOptions::default()
        };
        let store = open_with(truncate).expect("opens when truncation is allowed");
        assert_eq!(
            count_of(&store, "a").await,
            1,
            "the record before the damage"
        );
    }

    /// A torn last record after a crash is normal: replayed up to, silently.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_torn_last_record_is_replayed_up_to_without_complaint() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = open(a.path());
        let redb_at_open = fs::read(a.path().join(FILE_NAME)).unwrap();
        for second in 0..5 {
            put(&store, reading("a", second, 1_000)).await;
        }
        crashed_copy(a.path(), &redb_at_open, b.path());
        drop(store);
        let log = b.path().join(LOG_FILE_NAME);
        let bytes = fs::read(&log).unwrap();
        fs::write(&log, &bytes[..bytes.len() - 5]).unwrap();
        let store = open(b.path());
        assert_eq!(count_of(&store, "a").await, 4);
    }
}
