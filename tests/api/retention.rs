//! Retention, black box: with `RETENTION_RAW` of a few seconds, readings leave
//! `/api/readings` once past the horizon while all-time statistics (and, on the embedded store,
//! series, windows and the sum over rollups) stay exactly as they were; a resend of an expired
//! reading is refused with 422 and never counted twice; readings beyond the horizon or more
//! than `FUTURE_MARGIN` ahead are refused on the JSON and line protocol routes.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use telemetry::config::StorageKind;
use telemetry::domain::retention::Period;

use crate::helpers::{TestApp, TestStore, assert_problem, spawn_app, spawn_app_with};

const MINUTE: i64 = 60_000_000;

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("a JSON body")
}

/// Polls (at most a minute) until `sensor` has no readings left in `/api/readings`; returns
/// the last page.
async fn wait_until_expired(app: &TestApp, sensor: &str) -> Value {
    for _ in 0..600 {
        let page = json_of(app.readings(&[("sensorID", sensor)]).await).await;
        if page["readings"].as_array().is_some_and(Vec::is_empty) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the readings of {sensor} never expired");
}

/// The value of a metric without labels in `/metrics`.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in /metrics"))
}

#[tokio::test]
async fn expired_readings_leave_the_readings_but_not_the_statistics() {
    let store = TestStore::new();
    let mut config = store.config();
    config.retention_raw = Period::seconds(5);
    let app = spawn_app_with(config).await;
    // Six readings of one sensor, within the horizon when sent.
    let base = now_micros() - 500_000;
    let sent: Vec<Value> = (0..6)
        .map(|i| json!({"sensorID": "old", "time": rfc3339(base - i * 1_000), "temperature": format!("{}.25", i * 3 - 7)}))
        .collect();
    app.put_ok(&Value::Array(sent.clone())).await;
    let fresh = json_of(app.readings(&[("sensorID", "old")]).await).await;
    assert_eq!(fresh["readings"].as_array().unwrap().len(), 6, "{fresh}");
    let before = app.stats(None).await;
    let before_sensor = app.stats(Some("old")).await;
    assert_eq!(before["Count"], 6);

    let page = wait_until_expired(&app, "old").await;
    // The body says where the retained readings start.
    let retained_from = page["retainedFrom"].as_str().expect("retainedFrom");
    assert!(
        chrono::DateTime::parse_from_rfc3339(retained_from)
            .unwrap()
            .timestamp_micros()
            > base,
        "{page}"
    );
    let from = rfc3339(base - MINUTE);
    let page = json_of(app.readings(&[("sensorID", "old"), ("from", &from)]).await).await;
    assert!(page["retainedFrom"].is_string(), "{page}");
    // No horizon note when from is after the horizon.
    let recent = rfc3339(now_micros() + 1);
    let page = json_of(
        app.readings(&[("sensorID", "old"), ("from", &recent)])
            .await,
    )
    .await;
    assert!(page.get("retainedFrom").is_none(), "{page}");
    // All-time statistics still count them.
    assert_eq!(app.stats(None).await, before);
    assert_eq!(app.stats(Some("old")).await, before_sensor);

    // A resend of an expired reading is refused, whole batch or partial, and never counted.
    let body = assert_problem(
        app.put_readings(&sent[0]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["errors"][0]["field"], "time", "{body}");
    let detail = body["errors"][0]["errors"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("RETENTION_RAW=5s"), "{detail}");
    let partial = app
        .client
        .put(app.url("/api/temperature?accept_partial=true"))
        .json(
            &json!([sent[1], {"sensorID": "new", "time": rfc3339(now_micros()), "temperature": 1}]),
        )
        .send()
        .await
        .unwrap();
    let partial = json_of(partial).await;
    assert_eq!(partial["stored"], 1, "{partial}");
    assert_eq!(partial["refused"][0]["index"], 0, "{partial}");
    assert_eq!(partial["refused"][0]["status"], 422, "{partial}");
    assert_eq!(app.stats(Some("old")).await, before_sensor);
    assert_eq!(app.stats(None).await["Count"], 7);

    // The same over line protocol, with InfluxDB's error body.
    let line = format!("temperature,sensorID=old value=1 {}", base * 1_000);
    let response = app
        .client
        .post(app.url("/api/v2/write"))
        .body(line)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unprocessable entity", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("retention horizon"),
        "{body}"
    );
    assert_eq!(app.stats(Some("old")).await, before_sensor);

    if store.kind == StorageKind::Embedded {
        rollups_still_count_expired_readings(&app, base, &before_sensor).await;
        // The sweep deleted them, and said so.
        for _ in 0..600 {
            if metric(&app, "telemetry_retention_deleted_readings_total").await >= 6.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            metric(&app, "telemetry_retention_deleted_readings_total").await,
            6.0
        );
        assert!(metric(&app, "telemetry_retention_last_sweep_timestamp_seconds").await > 0.0);
    }
    app.stop().await;
}

/// Series and windows over whole minutes are answered from the rollups, which still count the
/// expired readings, and equal the all-time statistics; a window needing the expired raw
/// readings (an unaligned bound before the horizon) is a 422 that says how to align it.
async fn rollups_still_count_expired_readings(app: &TestApp, base: i64, stats: &Value) {
    let from = rfc3339(base - base.rem_euclid(MINUTE) - MINUTE);
    let to = rfc3339(base - base.rem_euclid(MINUTE) + 2 * MINUTE);
    let series = json_of(
        app.get(&format!(
            "/api/series?sensorID=old&step=1m&from={from}&to={to}"
        ))
        .await,
    )
    .await;
    let buckets = series["buckets"].as_array().unwrap();
    let count: u64 = buckets.iter().map(|b| b["Count"].as_u64().unwrap()).sum();
    assert_eq!(count, 6, "{series}");
    let sum: f64 = buckets
        .iter()
        .filter(|b| b["Count"].as_u64() != Some(0))
        .map(|b| b["Average"].as_f64().unwrap() * b["Count"].as_f64().unwrap())
        .sum();
    let expected = stats["Average"].as_f64().unwrap() * 6.0;
    assert!((sum - expected).abs() < 1e-6, "{sum} != {expected}");
    let max = buckets
        .iter()
        .filter_map(|b| b["Maximum"].as_f64())
        .fold(f64::MIN, f64::max);
    let min = buckets
        .iter()
        .filter_map(|b| b["Minimum"].as_f64())
        .fold(f64::MAX, f64::min);
    assert_eq!(json!(max), stats["Maximum"]);
    assert_eq!(json!(min), stats["Minimum"]);
    let window = json_of(
        app.get(&format!("/api/stats?sensorID=old&from={from}&to={to}"))
            .await,
    )
    .await;
    assert_eq!(&window, stats);
    // An unaligned start before the horizon would need the deleted readings.
    let unaligned = rfc3339(base - base.rem_euclid(MINUTE) - MINUTE + 1);
    let body = assert_problem(
        app.get(&format!("/api/stats?sensorID=old&from={unaligned}&to={to}"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["alignTo"], "minute", "{body}");
    assert!(body["retainedFrom"].is_string(), "{body}");
    let body = assert_problem(
        app.get(&format!("/api/series?step=1m&from={unaligned}&to={to}"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("RETENTION_RAW"),
        "{body}"
    );
}

#[tokio::test]
async fn readings_beyond_the_horizon_are_refused_on_every_write_route() {
    let store = TestStore::new();
    let mut config = store.config();
    config.retention_raw = Period::parse("30d").unwrap();
    let app = spawn_app_with(config).await;
    let old = now_micros() - 31 * 24 * 60 * MINUTE;
    let body = assert_problem(
        app.put_readings(&json!([
            {"sensorID": "s", "time": rfc3339(now_micros()), "temperature": 1},
            {"sensorID": "s", "time": rfc3339(old), "temperature": 1},
        ]))
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["index"], 1, "{body}");
    assert!(
        body["errors"][0]["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("RETENTION_RAW=30d"),
        "{body}"
    );
    // InfluxDB 1's answer on /write.
    let response = app
        .client
        .post(app.url("/write?precision=s"))
        .body(format!("temperature,sensor=s value=1 {}", old / 1_000_000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.headers().contains_key("x-influxdb-error"));
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("line 1"), "{body}");
    assert_eq!(app.stats(None).await["Count"], 0);
    app.stop().await;
}

#[tokio::test]
async fn readings_too_far_in_the_future_are_refused() {
    let (app, _store) = spawn_app().await;
    // FUTURE_MARGIN defaults to 5 minutes.
    let soon = now_micros() + 4 * MINUTE;
    let later = now_micros() + 6 * MINUTE;
    app.put_ok(&json!({"sensorID": "f", "time": rfc3339(soon), "temperature": 1}))
        .await;
    let body = assert_problem(
        app.put_readings(&json!({"sensorID": "f", "time": rfc3339(later), "temperature": 1}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let detail = body["errors"][0]["errors"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("5m ahead of the server's clock"),
        "{detail}"
    );
    let response = app
        .client
        .post(app.url("/api/v2/write?precision=us"))
        .body(format!("temperature,sensor=f value=1 {later}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("ahead of the server's clock"),
        "{body}"
    );
    assert_eq!(app.stats(None).await["Count"], 1);
    app.stop().await;

    let store = TestStore::new();
    let mut config = store.config();
    config.future_margin = Period::FOREVER;
    let app = spawn_app_with(config).await;
    app.put_ok(&json!({"sensorID": "f", "time": rfc3339(later), "temperature": 1}))
        .await;
    app.stop().await;
}
