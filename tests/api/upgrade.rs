//! Upgrade from the two earlier store formats.
//!
//! - `tests/fixtures/previous-release/telemetry.redb` was written by the release before rollups
//!   (commit e50631d): 3,000 readings of sensors `107`, `a b` and `gw/3` over two days from
//!   2021-10-04, some at quarter seconds, PUT in batches of 100, then a clean SIGTERM. It opens,
//!   builds its rollups in the background, becomes ready, and then answers windows, series and
//!   sensor summaries exactly.
//! - `tests/fixtures/rows-release/telemetry.redb` was written by the release that kept every
//!   per-sensor bucket in a rollup row (commit 33d96ab; this version keeps each sensor's
//!   current buckets in its summary row instead): `write_random_readings` with seed
//!   `0x0005_eed1` for sensors `107`, `a b` and `gw/3` through the in-process app, then a clean
//!   stop. New readings of the same sensors land in the buckets it left in rows, current and
//!   late: every window stays exact.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use telemetry::config::StorageKind;

use crate::helpers::{TestStore, spawn_app_on};
use crate::window_checks::{
    DAY, Rng, T0, check_windows, expected, get_json, in_window, put_retrying, rfc3339, stored,
    write_random_readings,
};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/previous-release/telemetry.redb"
);
const ROWS_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/rows-release/telemetry.redb"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_the_previous_release_builds_its_rollups_and_answers_exactly() {
    let store = TestStore::new();
    if store.kind != StorageKind::Embedded {
        eprintln!("skipped: the fixture is an embedded store file");
        return;
    }
    std::fs::copy(FIXTURE, store.dir.path().join("telemetry.redb")).unwrap();
    let app = spawn_app_on(&store).await;
    // All-time stats were kept by the previous release: answered at once.
    let all_time =
        json!({"Average": 9.745675, "Maximum": 50.981, "Minimum": -30.972, "Count": 3000});
    assert_eq!(app.stats(None).await, all_time);
    // Ready once the build is done (bounded wait; the build of 3,000 readings is one slice).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = app.get("/api/ready").await.status();
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "the rollup build did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let readings = stored(&app).await;
    let count: usize = readings.values().map(|r| r.len()).sum();
    assert_eq!(count, 3000);
    // Sensor summaries were rebuilt: first and latest from the readings.
    let sensors: serde_json::Value = app.get("/api/sensors").await.json().await.unwrap();
    let listed = sensors["sensors"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for sensor in listed {
        let name = sensor["sensorID"].as_str().unwrap();
        let own = &readings[name];
        assert_eq!(sensor["Count"], own.len());
        let (first, _) = own.first_key_value().unwrap();
        let (last, value) = own.last_key_value().unwrap();
        let time = |micros: i64| {
            chrono::DateTime::from_timestamp_micros(micros)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        };
        assert_eq!(sensor["first"], time(*first), "{name}");
        assert_eq!(sensor["latest"]["time"], time(*last), "{name}");
        assert_eq!(
            sensor["latest"]["temperature"],
            *value as f64 / 1e6,
            "{name}"
        );
    }
    let mut rng = Rng(0x0bad_cafe);
    check_windows(&app, &mut rng, 40).await;
    // New readings after the build, in the old data's buckets (of another sensor: the
    // fixture's readings would conflict).
    write_random_readings(&app, &mut Rng(0x5eed_0003), &["z"]).await;
    check_windows(&app, &mut rng, 20).await;
    app.stop().await;
    // And again after a restart: the build is not repeated, the answers are the same.
    let app = spawn_app_on(&store).await;
    assert_eq!(app.get("/api/ready").await.status(), StatusCode::OK);
    check_windows(&app, &mut rng, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_kept_every_bucket_in_rows_goes_on_exactly_with_partials() {
    let store = TestStore::new();
    if store.kind != StorageKind::Embedded {
        eprintln!("skipped: the fixture is an embedded store file");
        return;
    }
    std::fs::copy(ROWS_FIXTURE, store.dir.path().join("telemetry.redb")).unwrap();
    let sensors = ["107", "a b", "gw/3"];
    let app = spawn_app_on(&store).await;
    assert_eq!(app.get("/api/ready").await.status(), StatusCode::OK);
    let fixture = stored(&app).await;
    let before: usize = fixture.values().map(|r| r.len()).sum();
    assert!(before > 300, "the fixture holds {before} readings");
    let mut rng = Rng(0x0dd_ba11);
    check_windows(&app, &mut rng, 20).await;
    // The same sensors again (temperatures are a function of the identity, so repeats of the
    // fixture's readings are duplicates, not conflicts): readings of the buckets the fixture
    // left in rows, later ones, and late ones.
    write_random_readings(&app, &mut Rng(0x0005_eed2), &sensors).await;
    let after: usize = stored(&app).await.values().map(|r| r.len()).sum();
    assert!(after > before + 300, "{before} readings, then {after}");
    check_windows(&app, &mut rng, 40).await;
    // A second whose readings off its start are counted in the fixture's row of that second,
    // and whose block (written now) holds one reading at its start only: an edge inside that
    // second must read the readings, not trust the block.
    let off_start = fixture
        .values()
        .flat_map(|readings| readings.keys())
        .find(|micros| *micros % 1_000_000 != 0)
        .copied()
        .expect("the fixture holds readings off a second's start");
    let second = off_start - off_start.rem_euclid(1_000_000);
    let at_start = json!({"sensorID": "z", "time": rfc3339(second), "temperature": 1});
    put_retrying(&app, &at_start).await;
    let readings = stored(&app).await;
    let (from, to) = (second + 1, second + 1_000_000);
    let stats = get_json(
        &app,
        "/api/stats",
        &[("from", rfc3339(from)), ("to", rfc3339(to))],
    )
    .await;
    let want = in_window(&readings, None, from, to);
    assert!(!want.is_empty());
    assert_eq!(stats, expected(&want), "after the start of {second} µs");
    // Whole days and hours of one sensor are answered from its rows merged with its partials
    // (the fixture left rows for the buckets that are current again now).
    let readings = stored(&app).await;
    for sensor in sensors {
        let (from, to) = ((T0 - DAY) * 1_000_000, (T0 + 4 * DAY) * 1_000_000);
        for step in ["1d", "1h"] {
            let query = [
                ("from", rfc3339(from)),
                ("to", rfc3339(to)),
                ("sensorID", sensor.to_owned()),
                ("step", step.to_owned()),
            ];
            let series = get_json(&app, "/api/series", &query).await;
            let width = if step == "1d" { DAY } else { 3_600 } * 1_000_000;
            for (index, bucket) in series["buckets"].as_array().unwrap().iter().enumerate() {
                let start = from + index as i64 * width;
                let mut want = expected(&in_window(&readings, Some(sensor), start, start + width));
                want["time"] = bucket["time"].clone();
                assert_eq!(*bucket, want, "{sensor} {step} bucket {index}");
            }
        }
        let stats = get_json(
            &app,
            "/api/stats",
            &[
                ("from", rfc3339(from)),
                ("to", rfc3339(to)),
                ("sensorID", sensor.to_owned()),
            ],
        )
        .await;
        assert_eq!(
            stats,
            expected(&in_window(&readings, Some(sensor), from, to)),
            "{sensor}"
        );
    }
    app.stop().await;
    let verification = telemetry::storage::embedded::verify(store.dir.path()).unwrap();
    assert!(
        verification.is_consistent(),
        "{:?}",
        verification.differences
    );
    let app = spawn_app_on(&store).await;
    check_windows(&app, &mut rng, 20).await;
}
