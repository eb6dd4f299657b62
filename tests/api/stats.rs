//! GET /api/stats: exact, per sensor, and defined when empty.

use serde_json::{Value, json};

use crate::helpers::{reading, spawn_app};

#[tokio::test]
async fn empty_stats_are_count_zero_and_nulls() {
    let (app, _store) = spawn_app().await;
    let expected = json!({"Average": null, "Maximum": null, "Minimum": null, "Count": 0});
    assert_eq!(app.stats(None).await, expected);
    assert_eq!(app.stats(Some("nobody")).await, expected);
}

#[tokio::test]
async fn stats_are_exact_where_floats_would_drift() {
    let (app, _store) = spawn_app().await;
    // 0.1 + 0.2 + 0.3 is 0.6000000000000001 in binary floating point.
    app.put_ok(&json!([
        reading("f", "2021-10-04 09:00:00", 0.1),
        reading("f", "2021-10-04 09:00:01", 0.2),
        reading("f", "2021-10-04 09:00:02", 0.3),
    ]))
    .await;
    let stats = app.stats(None).await;
    assert_eq!(stats["Average"], 0.2);
    assert_eq!(stats["Minimum"], 0.1);
    assert_eq!(stats["Maximum"], 0.3);
}

#[tokio::test]
async fn per_sensor_stats_cover_only_that_sensor() {
    let (app, _store) = spawn_app().await;
    app.put_ok(&json!([
        reading("a", "2021-10-04 09:00:00", -5.0),
        reading("a", "2021-10-04 09:00:01", 5.0),
        reading("b", "2021-10-04 09:00:00", 100.0),
        {"sensorID": 42, "time": "2021-10-04 09:00:00", "temperature": "-273.15"},
    ]))
    .await;
    assert_eq!(
        app.stats(Some("a")).await,
        json!({"Average": 0.0, "Maximum": 5.0, "Minimum": -5.0, "Count": 2})
    );
    assert_eq!(app.stats(Some("42")).await["Minimum"], -273.15);
    let all: Value = app.stats(None).await;
    assert_eq!(all["Count"], 4);
    assert_eq!(all["Maximum"], 100.0);
    assert_eq!(all["Minimum"], -273.15);
    assert_eq!(all["Average"], -43.2875); // (-5 + 5 + 100 - 273.15) / 4
}
