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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (app, _store) = spawn_app().await;
    let address = app.address.clone();
    let mut connection = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    // A first request on this connection proves the server accepted it and is serving it.
    connection
        .write_all(b"GET /api HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    let n = connection.read(&mut buffer).await.unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
    // A slow client: headers and half the body, then shutdown starts.
    let body = reading("g", "2021-10-04 09:00:00", 1.0).to_string();
    let (first, second) = body.split_at(10);
    let head = format!(
        "PUT /api/temperature HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n{first}",
        body.len()
    );
    connection.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown waits for the in-flight request"
    );
    connection.write_all(second.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    connection.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("Ok"), "{response}");
    stopping.await.unwrap();
    let refused = reqwest::Client::new()
        .get(format!("{address}/api"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "a stopped server accepts no connections");
}
