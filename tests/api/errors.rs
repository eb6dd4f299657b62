//! Bad input gets a clear 4xx problem, never a panic or a 500.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, reading, spawn_app};

#[tokio::test]
async fn unknown_routes_are_404_problems() {
    let (app, _store) = spawn_app().await;
    // `/` is the dashboard page (tests/dashboard).
    for path in [
        "/nope",
        "/api/temperature/extra",
        "/api/stats/x",
        "/picus/get/1/2",
    ] {
        let response = app.get(path).await;
        assert_problem(response, StatusCode::NOT_FOUND).await;
    }
}

#[tokio::test]
async fn wrong_methods_are_405_problems() {
    let (app, _store) = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/temperature"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
    let response = app
        .client
        .delete(app.url("/api/stats"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn malformed_json_and_empty_bodies_are_400() {
    let (app, _store) = spawn_app().await;
    for body in ["", "{", "{\"sensorID\": }", "nul", "\u{feff}{}"] {
        let response = app.put_raw(body, Some("application/json")).await;
        assert_problem(response, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn other_formats_are_415() {
    let (app, _store) = spawn_app().await;
    let response = app
        .put_raw("<reading sensor='1'/>", Some("application/xml"))
        .await;
    assert_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let response = app.put_raw("sensorID,time\n1,2", Some("text/csv")).await;
    assert_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn well_formed_but_invalid_values_are_422() {
    let (app, _store) = spawn_app().await;
    for body in [
        json!([]),
        json!("12"),
        json!(12),
        json!({"sensorID": "1", "time": "2021-10-04 09:00:00"}),
        json!({"sensorID": "1", "time": "2021-10-04 09:00:00", "temperature": "NaN"}),
        json!({"sensorID": "1", "time": "2021-10-04 09:00:00", "temperature": -273.16}),
        json!({"sensorID": "x".repeat(129), "time": "2021-10-04 09:00:00", "temperature": 1}),
        json!({"sensorID": 1.5, "time": "2021-10-04 09:00:00", "temperature": 1}),
        json!({"sensorID": "1", "time": "2021-10-04T09:00:00", "temperature": 1}),
        json!({"sensorID": "1", "time": 1633338000, "temperature": 1}),
    ] {
        let response = app.put_readings(&body).await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    assert_eq!(app.stats(None).await["Count"], 0);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_even_when_chunked() {
    let (app, _store) = spawn_app().await;
    let huge = format!(
        "[{}]",
        vec![reading("1", "2021-10-04 09:00:00", 1.0).to_string(); 20_000].join(",")
    );
    assert!(huge.len() > 1024 * 1024);
    let response = app.put_raw(huge.clone(), Some("application/json")).await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    // Without a Content-Length (chunked transfer encoding) the limit still holds.
    let chunks: Vec<Result<String, std::io::Error>> = huge
        .as_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
        .collect();
    let stream = futures_util::stream::iter(chunks);
    let response = app
        .put_raw(reqwest::Body::wrap_stream(stream), Some("application/json"))
        .await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn a_bad_stats_query_is_400() {
    let (app, _store) = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/stats"))
        .query(&[("sensorID", "")])
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST).await;
}
