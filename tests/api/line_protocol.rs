//! `POST /api/v2/write` and `POST /write`: InfluxDB line protocol, answered as InfluxDB answers.
//! (The official client libraries drive the same routes in `tests/clients/`.)

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

async fn post(app: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> Response {
    app.client
        .post(app.url(path))
        .header("content-type", "text/plain; charset=utf-8")
        .body(body)
        .send()
        .await
        .expect("request sent")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

async fn assert_no_content(response: Response) {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert!(text.is_empty());
}

/// An InfluxDB 2 error: `{"code", "message"}` as JSON.
async fn assert_v2_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// The `line` of each entry of a list in an error body.
fn line_numbers(list: &Value) -> Vec<u64> {
    let entries = list.as_array().expect("a list");
    entries.iter().filter_map(|e| e["line"].as_u64()).collect()
}

#[tokio::test]
async fn v2_lines_are_stored_as_readings() {
    let (app, _store) = spawn_app().await;
    let body = "# from a gateway\n\
                temperature,sensorID=107,room=kitchen value=21.299999237060547 1633338000123456789\n\
                temperature,sensor_id=108 temperature=-3i,humidity=40 1633338001000000000\n\
                \n\
                temperature,sensor=109,site=a\\ b value=7u,note=\"a, b\" 1633338002000000000\r\n\
                cpu,host=a usage_idle=99.5 1633338000000000000\n";
    let response = post(&app, "/api/v2/write?org=o&bucket=b&precision=ns", body).await;
    assert_no_content(response).await;
    assert_eq!(
        app.series("107").await,
        [("2021-10-04T09:00:00.123456Z".to_owned(), 21.299999)]
    );
    assert_eq!(
        app.series("108").await,
        [("2021-10-04T09:00:01Z".to_owned(), -3.0)]
    );
    assert_eq!(app.series("109").await[0].1, 7.0);
    assert_eq!(app.stats(None).await["Count"], 3);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("telemetry_line_protocol_ignored_lines_total 1"),
        "the cpu line is counted as ignored"
    );
}

#[tokio::test]
async fn v1_writes_take_its_precision_names_and_ignore_credentials() {
    let (app, _store) = spawn_app().await;
    let response = post(
        &app,
        "/write?db=telemetry&rp=autogen&precision=s&u=user&p=secret",
        "temperature,sensorID=1 value=20.5 1633338000\ntemperature,sensorID=1 value=20.6 1633338060",
    )
    .await;
    assert_no_content(response).await;
    assert_eq!(
        app.series("1").await,
        [
            ("2021-10-04T09:00:00Z".to_owned(), 20.5),
            ("2021-10-04T09:01:00Z".to_owned(), 20.6)
        ]
    );
    let response = post(
        &app,
        "/write?db=x&precision=u",
        "temperature,sensorID=2 value=1 5",
    )
    .await;
    assert_no_content(response).await;
    let response = post(
        &app,
        "/write?precision=fortnights",
        "temperature,sensorID=2 value=1",
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("precision"),
        "{body}"
    );
}

#[tokio::test]
async fn a_line_without_a_timestamp_takes_the_receive_time() {
    let (app, _store) = spawn_app().await;
    let before = chrono::Utc::now();
    assert_no_content(post(&app, "/api/v2/write", "temperature,sensorID=now value=1").await).await;
    let after = chrono::Utc::now();
    let stored = app.series("now").await;
    let at = chrono::DateTime::parse_from_rfc3339(&stored[0].0).unwrap();
    let truncated = |t: chrono::DateTime<chrono::Utc>| t.timestamp_micros();
    assert!(
        truncated(before) <= at.timestamp_micros() && at.timestamp_micros() <= truncated(after)
    );
}

#[tokio::test]
async fn a_5000_line_gzip_body_is_stored_whole() {
    let (app, _store) = spawn_app().await;
    let body: String = (0..5000)
        .map(|i| {
            format!(
                "temperature,sensorID=s{} value={}.5 {}\n",
                i % 10,
                i % 40,
                1_633_338_000 + i
            )
        })
        .collect();
    // Sent twice: the second time every line is a duplicate. A 503 (DynamoDB Local can exceed
    // the operation timeout on 5,000 readings on a busy machine) is retried after Retry-After,
    // as the InfluxDB clients do; a retry must never double count what an earlier try stored.
    for _ in 0..2 {
        let mut tries = 0;
        let response = loop {
            let response = app
                .client
                .post(app.url("/api/v2/write?bucket=b&precision=s"))
                .header("content-encoding", "gzip")
                .body(gzip(body.as_bytes()))
                .send()
                .await
                .unwrap();
            tries += 1;
            if response.status() != StatusCode::SERVICE_UNAVAILABLE || tries == 10 {
                break response;
            }
            assert!(response.headers().contains_key("retry-after"));
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        };
        assert_no_content(response).await;
        assert_eq!(app.stats(None).await["Count"], 5000);
    }
}

#[tokio::test]
async fn a_conflict_refuses_the_whole_request_as_influxdb_errors() {
    let (app, _store) = spawn_app().await;
    assert_no_content(post(&app, "/api/v2/write", "temperature,sensorID=1 value=1 1000").await)
        .await;
    let body = "temperature,sensorID=1 value=1.0000004 1999\n\
                temperature,sensorID=2 value=5 1000\n\
                temperature,sensorID=1 value=2 1000\n";
    let error = assert_v2_error(
        post(&app, "/api/v2/write", body).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(error["conflicts"][0]["line"], 3, "{error}");
    assert_eq!(error["conflicts"][0]["storedTemperature"], 1.0);
    assert_eq!(
        app.stats(None).await["Count"],
        1,
        "nothing of the request is stored"
    );
    let response = post(&app, "/write", body).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let v1: Value = response.json().await.unwrap();
    assert!(v1["error"].as_str().unwrap().contains("immutable"), "{v1}");
}

#[tokio::test]
async fn malformed_lines_are_400_with_the_line_number_and_store_nothing() {
    let (app, _store) = spawn_app().await;
    let body = "temperature,sensorID=1 value=1 1\n\ntemperature,sensorID=1 value=\n";
    let error = assert_v2_error(
        post(&app, "/api/v2/write", body).await,
        StatusCode::BAD_REQUEST,
        "invalid",
    )
    .await;
    assert_eq!(error["line"], 3);
    assert!(
        error["message"].as_str().unwrap().contains("line 3"),
        "{error}"
    );
    let error = assert_v2_error(
        post(&app, "/api/v2/write", "\n# nothing\n").await,
        StatusCode::BAD_REQUEST,
        "invalid",
    )
    .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("requires points")
    );
    assert_eq!(app.stats(None).await["Count"], 0);
}

#[tokio::test]
async fn invalid_readings_are_422_naming_every_line() {
    let (app, _store) = spawn_app().await;
    let body = "temperature,sensorID=1 value=1 1\n\
                temperature,room=k value=1 2\n\
                temperature,sensorID=1 value=\"hot\" 3\n\
                temperature,sensorID=1 value=-274 4\n";
    let error = assert_v2_error(
        post(&app, "/api/v2/write", body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable entity",
    )
    .await;
    assert_eq!(line_numbers(&error["errors"]), [2, 3, 4]);
    assert_eq!(app.stats(None).await["Count"], 0);
}

#[tokio::test]
async fn accept_partial_stores_the_valid_lines_and_names_the_others() {
    let (app, _store) = spawn_app().await;
    assert_no_content(post(&app, "/api/v2/write", "temperature,sensorID=1 value=1 1000").await)
        .await;
    let body = "temperature,sensorID=1 value=2 1000\n\
                temperature,sensorID=1 value=3 2000\n\
                not line protocol\n\
                temperature,sensorID=1 value=-300 3000\n\
                temperature,sensorID=1 value=4 4000\n";
    let error = assert_v2_error(
        post(&app, "/api/v2/write?accept_partial=true", body).await,
        StatusCode::BAD_REQUEST,
        "invalid",
    )
    .await;
    assert_eq!(line_numbers(&error["refused"]), [1, 3, 4], "{error}");
    assert_eq!(app.stats(None).await["Count"], 3);
    let clean = "temperature,sensorID=1 value=5 5000\n";
    assert_no_content(post(&app, "/write?accept_partial=true", clean).await).await;
}

#[tokio::test]
async fn limits_are_413_and_unknown_encodings_415() {
    let (app, _store) = spawn_app().await;
    let many: String = (0..10_001)
        .map(|i| format!("temperature,sensorID=1 value=1 {i}000\n"))
        .collect();
    let error = assert_v2_error(
        post(&app, "/api/v2/write", many).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request too large",
    )
    .await;
    assert_eq!(error["limit"], 10_000);
    // A small gzip body inflating past the 10 MiB limit: refused after at most the limit.
    let bomb = gzip(&vec![b' '; 16 * 1024 * 1024]);
    assert!(bomb.len() < 1024 * 1024, "{} bytes", bomb.len());
    let response = app
        .client
        .post(app.url("/api/v2/write"))
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_v2_error(response, StatusCode::PAYLOAD_TOO_LARGE, "request too large").await;
    let response = app
        .client
        .post(app.url("/write"))
        .header("content-encoding", "br")
        .body("temperature,sensorID=1 value=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        response.headers()["accept-encoding"],
        "gzip, deflate, identity"
    );
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("br"));
    assert_eq!(app.stats(None).await["Count"], 0);
}
