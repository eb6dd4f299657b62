//! GET /api, GET /api/ready, GET /metrics, and graceful shutdown.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{reading, spawn_app};

#[tokio::test]
async fn liveness_answers_json() {
    let (app, _store) = spawn_app().await;
    let response = app.get("/api").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readiness_checks_storage() {
    let (app, _store) = spawn_app().await;
    let response = app.get("/api/ready").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let (app, _store) = spawn_app().await;
    app.put_ok(&reading("m", "2021-10-04 09:00:00", 1.0)).await;
    app.put_ok(&reading("m", "2021-10-04 09:00:00", 1.0)).await;
    let conflict = app
        .put_readings(&reading("m", "2021-10-04 09:00:00", 2.0))
        .await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    for line in [
        "telemetry_readings_total{outcome=\"stored\"} 1",
        "telemetry_readings_total{outcome=\"duplicate\"} 1",
        "telemetry_readings_total{outcome=\"conflict\"} 1",
        "telemetry_http_requests_total{method=\"PUT\",route=\"/api/temperature\",status=\"2xx\"} 2",
        "telemetry_http_requests_total{method=\"PUT\",route=\"/api/temperature\",status=\"4xx\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    // Storage calls are timed by backend and operation; the three PUTs were three writes.
    let value_of = |prefix: &str, needle: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix) && l.contains(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    assert_eq!(
        value_of(
            "telemetry_storage_operation_duration_seconds_count{",
            "operation=\"put_readings\""
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value_of("telemetry_storage_group_commit_writes_sum{", "backend="),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value_of("telemetry_aggregate_readings ", ""),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_then_refuses_new_ones() {
    let (app, _store) = spawn_app().await;
    let client = app.client.clone();
    let url = app.url("/api/temperature");
    // A slow client: the request is in flight while shutdown starts.
    let (sender, body) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(1);
    let in_flight = tokio::spawn(async move {
        client
            .put(url)
            .body(reqwest::Body::wrap_stream(tokio_stream_from(body)))
            .send()
            .await
    });
    sender
        .send(Ok(reading("g", "2021-10-04 09:00:00", 1.0).to_string()
            [..10]
            .to_owned()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let address = app.address.clone();
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rest = reading("g", "2021-10-04 09:00:00", 1.0).to_string()[10..].to_owned();
    sender.send(Ok(rest)).await.unwrap();
    drop(sender);
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), StatusCode::OK);
    stopping.await.unwrap();
    let refused = reqwest::Client::new()
        .get(format!("{address}/api"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "a stopped server accepts no connections");
}

fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<Result<String, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}
