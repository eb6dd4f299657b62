//! Durability across restarts: stats and readings survive, with no rescan.

use serde_json::json;

use crate::helpers::{TestStore, reading, spawn_app_on};

#[tokio::test]
async fn stats_readings_and_items_survive_a_restart() {
    let store = TestStore::new();
    let app = spawn_app_on(&store).await;
    app.put_ok(&json!([
        reading("r", "2021-10-04 09:00:00", 1.0),
        reading("r", "2021-10-04 09:00:01", 2.0),
        reading("q", "2021-10-04 09:00:00", 6.0),
    ]))
    .await;
    let created = app
        .client
        .post(app.url("/picus/put"))
        .json(&json!({"name": "kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let before = app.stats(None).await;
    app.stop().await;

    let app = spawn_app_on(&store).await;
    assert_eq!(app.stats(None).await, before);
    assert_eq!(app.stats(None).await["Count"], 3);
    assert_eq!(app.stats(Some("r")).await["Average"], 1.5);
    let body: serde_json::Value = app
        .readings(&[("sensorID", "r")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["readings"].as_array().unwrap().len(), 2);
    // Identity is still enforced after the restart.
    let conflict = app
        .put_readings(&reading("r", "2021-10-04 09:00:00", 5.0))
        .await;
    assert_eq!(conflict.status(), 409);
    let item: serde_json::Value = app.get("/picus/get/1").await.json().await.unwrap();
    assert_eq!(item["item"]["name"], "kept");
    // The id counter continues; ids are never reused.
    let next: serde_json::Value = app
        .client
        .post(app.url("/picus/put"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(next["id"], "2");
    app.stop().await;
}
