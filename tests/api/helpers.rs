//! Spawning the real app on 127.0.0.1, port 0, and typed request helpers.
//!
//! The contract suite runs against whichever backend `TELEMETRY_TEST_STORAGE` names
//! (`embedded`, the default, or `dynamodb`, which needs a DynamoDB-compatible server at
//! `AWS_ENDPOINT_URL`; `scripts/test.sh` starts DynamoDB Local and runs the suite both ways).

#![allow(dead_code)] // each test file uses a different subset of the helpers

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use telemetry::app::Application;
use telemetry::config::{Config, StorageKind};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where a test's data lives; kept alive across restarts of the app.
pub struct TestStore {
    pub kind: StorageKind,
    /// Embedded: the data directory (removed when the store is dropped).
    pub dir: tempfile::TempDir,
    /// DynamoDB: a table of this test's own.
    pub table: String,
}

impl TestStore {
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let kind = match std::env::var("TELEMETRY_TEST_STORAGE").as_deref() {
            Ok("dynamodb") => StorageKind::Dynamodb,
            Ok("embedded") | Err(_) => StorageKind::Embedded,
            Ok(other) => panic!("TELEMETRY_TEST_STORAGE={other:?}: expected embedded or dynamodb"),
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let table = format!(
            "telemetry-test-{}-{}-{}",
            std::process::id(),
            nanos % 1_000_000_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            kind,
            dir: tempfile::tempdir().expect("temporary directory"),
            table,
        }
    }

    pub fn config(&self) -> Config {
        let mut config = Config::for_tests(self.dir.path());
        if self.kind == StorageKind::Dynamodb {
            config.storage = StorageKind::Dynamodb;
            config.table_name = Some(self.table.clone());
            config.dynamodb_create_table = true;
        }
        config
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// A fresh app on fresh storage. Keep the returned store alive as long as the app.
pub async fn spawn_app() -> (TestApp, TestStore) {
    let store = TestStore::new();
    let app = spawn_app_on(&store).await;
    (app, store)
}

/// An app on existing storage (for restart tests).
pub async fn spawn_app_on(store: &TestStore) -> TestApp {
    spawn_app_with(store.config()).await
}

pub async fn spawn_app_with(config: Config) -> TestApp {
    let app = Application::build(config).await.expect("the app starts");
    let port = app.port();
    let (shutdown, signal) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = signal.await;
    }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::new(),
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    /// Graceful stop: waits until the server has drained.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("the server task ends cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn put_readings(&self, body: &Value) -> Response {
        self.client
            .put(self.url("/api/temperature"))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// PUT with an exact body and content type, as curl or a sensor would send it.
    pub async fn put_raw(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> Response {
        let mut request = self.client.put(self.url("/api/temperature")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send().await.expect("request sent")
    }

    /// PUTs and asserts 200 `Ok`.
    pub async fn put_ok(&self, body: &Value) {
        assert_put_answered_ok(body, self.put_readings(body).await).await;
    }

    pub async fn stats(&self, sensor: Option<&str>) -> Value {
        let mut request = self.client.get(self.url("/api/stats"));
        if let Some(sensor) = sensor {
            request = request.query(&[("sensorID", sensor)]);
        }
        let response = request.send().await.expect("request sent");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("stats are JSON")
    }

    pub async fn readings(&self, query: &[(&str, &str)]) -> Response {
        self.client
            .get(self.url("/api/readings"))
            .query(query)
            .send()
            .await
            .expect("request sent")
    }
}

impl TestApp {
    /// One sensor's stored readings (at most 1,000) as `(RFC 3339 time, temperature)`.
    pub async fn series(&self, sensor: &str) -> Vec<(String, f64)> {
        let response = self
            .readings(&[("sensorID", sensor), ("limit", "1000")])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.expect("a JSON page");
        page["readings"]
            .as_array()
            .expect("readings")
            .iter()
            .map(|r| {
                let time = r["time"].as_str().expect("time").to_owned();
                (time, r["temperature"].as_f64().expect("temperature"))
            })
            .collect()
    }
}

pub fn reading(sensor: &str, time: &str, temperature: f64) -> Value {
    json!({"sensorID": sensor, "time": time, "temperature": temperature})
}

/// Asserts an RFC 9457 problem with `status`, and returns its body.
pub async fn assert_problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("a JSON problem body");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["title"].is_string(), "title: {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "detail: {body}"
    );
    assert!(body["type"].is_string(), "type: {body}");
    body
}

/// Asserts that the PUT of `body` answered 200 `Ok`, naming the body and the answer if not.
pub async fn assert_put_answered_ok(body: &Value, response: Response) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::OK,
        "PUT {body} answered {status}: {text}"
    );
    assert_eq!(text, "Ok");
}
