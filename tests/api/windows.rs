//! Windows, series and sensor summaries, black box: every `/api/stats?from&to` and every
//! `/api/series` bucket equals a recomputation from `/api/readings`, exactly, for random
//! readings (late, out of order, repeated) and random unaligned windows, before and after a
//! restart; `/api/sensors` reports counts, first and latest by reading time.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_on};
use crate::window_checks::{Rng, SENSORS, check_windows, get_json, write_random_readings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_and_series_equal_a_recomputation_before_and_after_a_restart() {
    let (app, store) = spawn_app().await;
    let mut rng = Rng(0x5eed_0001);
    let written = write_random_readings(&app, &mut rng, &SENSORS).await;
    assert!(written > 500);
    check_windows(&app, &mut rng, 60).await;
    app.stop().await;
    let app = spawn_app_on(&store).await;
    check_windows(&app, &mut rng, 20).await;
    // Writes after the restart land in the same rollups.
    write_random_readings(&app, &mut Rng(0x5eed_0002), &SENSORS).await;
    check_windows(&app, &mut rng, 20).await;
}

#[tokio::test]
async fn series_lists_empty_buckets_and_clips_the_edges() {
    let (app, _store) = spawn_app().await;
    app.put_ok(&json!([
        {"sensorID": "s", "time": "2021-10-04 09:10:00", "temperature": 10},
        {"sensorID": "s", "time": "2021-10-04 09:50:00", "temperature": 20},
        {"sensorID": "s", "time": "2021-10-04 11:05:00", "temperature": 30},
    ]))
    .await;
    let query = [
        ("from", "2021-10-04 09:30:00".to_owned()),
        ("to", "2021-10-04T13:00:00+02:00".to_owned()),
        ("step", "1h".to_owned()),
        ("sensorID", "s".to_owned()),
    ];
    let series = get_json(&app, "/api/series", &query).await;
    let null = Value::Null;
    assert_eq!(
        series,
        json!({
            "step": "1h",
            "from": "2021-10-04T09:30:00Z",
            "to": "2021-10-04T11:00:00Z",
            "buckets": [
                {"time": "2021-10-04T09:00:00Z", "Count": 1, "Average": 20.0, "Minimum": 20.0, "Maximum": 20.0},
                {"time": "2021-10-04T10:00:00Z", "Count": 0, "Average": null, "Minimum": null, "Maximum": null},
            ]
        })
    );
    assert_eq!(series["buckets"][1]["Average"], null);
}

async fn series_problem(app: &TestApp, query: &str, status: u16) -> Value {
    let response = app.get(&format!("/api/series?{query}")).await;
    assert_problem(response, StatusCode::from_u16(status).unwrap()).await
}

#[tokio::test]
async fn bad_series_requests_are_problems_that_say_how_to_fix_them() {
    let (app, _store) = spawn_app().await;
    let body = series_problem(&app, "step=1h&to=2021-10-04%2010:00:00", 422).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("from and to are required")
    );
    let window = "from=2021-10-04%2009:00:00&to=2021-10-04%2010:00:00";
    let body = series_problem(&app, &format!("{window}&step=7m"), 422).await;
    assert_eq!(body["steps"], json!(["1m", "5m", "15m", "1h", "6h", "1d"]));
    let year = "from=2020-01-01%2000:00:00&to=2021-01-01%2000:00:00&step=1m";
    let body = series_problem(&app, year, 422).await;
    assert_eq!(body["limit"], 10_000);
    assert!(body["detail"].as_str().unwrap().contains("narrow"));
    series_problem(&app, "from=soon&to=2021-10-04%2010:00:00&step=1h", 400).await;
    assert_problem(
        app.get("/api/stats?from=2021-13-01%2000:00:00").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn sensors_report_count_first_and_latest_by_reading_time() {
    let (app, _store) = spawn_app().await;
    let empty = get_json(&app, "/api/sensors", &[]).await;
    assert_eq!(empty, json!({"sensors": [], "next": null}));
    app.put_ok(&json!([
        {"sensorID": "107", "time": "2021-10-04 09:00:00", "temperature": 12.5},
        {"sensorID": "107", "time": "2021-10-04 08:00:00", "temperature": 11},
    ]))
    .await;
    // Late and older: it does not replace the latest.
    app.put_ok(&json!({"sensorID": "107", "time": "2021-10-04 07:00:00", "temperature": 3}))
        .await;
    app.put_ok(&json!({"sensorID": "a b/c", "time": "2021-10-05T00:00:00.5Z", "temperature": -1}))
        .await;
    app.put_ok(&json!({"sensorID": 9, "time": "2021-10-05 00:00:00", "temperature": "0"}))
        .await;
    let sensor_107 = json!({
        "sensorID": "107",
        "Count": 3,
        "first": "2021-10-04T07:00:00Z",
        "latest": {"time": "2021-10-04T09:00:00Z", "temperature": 12.5},
    });
    let page = get_json(&app, "/api/sensors", &[("limit", "2".into())]).await;
    assert_eq!(page["sensors"][0], sensor_107);
    assert_eq!(page["sensors"][1]["sensorID"], "9");
    assert_eq!(page["next"], "9");
    let rest = get_json(
        &app,
        "/api/sensors",
        &[("limit", "2".into()), ("cursor", "9".into())],
    )
    .await;
    assert_eq!(
        rest,
        json!({"sensors": [{
            "sensorID": "a b/c",
            "Count": 1,
            "first": "2021-10-05T00:00:00.500Z",
            "latest": {"time": "2021-10-05T00:00:00.500Z", "temperature": -1.0},
        }], "next": null})
    );
    assert_eq!(get_json(&app, "/api/sensors/107", &[]).await, sensor_107);
    assert_eq!(
        get_json(&app, "/api/sensors/a%20b%2Fc", &[]).await["Count"],
        1
    );
    let body = assert_problem(app.get("/api/sensors/nobody").await, StatusCode::NOT_FOUND).await;
    assert!(body["detail"].as_str().unwrap().contains("nobody"));
    assert_problem(
        app.get("/api/sensors?limit=0").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}
