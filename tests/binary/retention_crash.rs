//! Retention and crashes: `kill -9` the real binary while its retention sweep is deleting
//! expired readings, restart it on the same `DATA_DIR`, and check that nothing that should stay
//! was lost, the aggregates and rollups still count every reading exactly once, and the sweep
//! finishes after the restart.

use std::time::Duration;

use serde_json::{Value, json};

use crate::server::{Server, start_with};

/// Readings expire 10 s after their time.
const RETENTION: &str = "10s";
const EXPIRING_SENSORS: usize = 20;
const PER_SENSOR: usize = 1_000;
const STAYING_SENSORS: usize = 4;
const MINUTE: i64 = 60_000_000;

fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Milli-degrees that differ per reading, so sums are non-trivial.
fn milli(sensor: usize, i: usize) -> i64 {
    ((sensor * 7919 + i * 104_729) % 100_000) as i64 - 40_000
}

fn decimal(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    format!("{sign}{}.{:03}", milli.abs() / 1000, milli.abs() % 1000)
}

async fn get_json(client: &reqwest::Client, url: &str, query: &[(&str, String)]) -> Value {
    let response = client.get(url).query(query).send().await.expect("sent");
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.expect("a JSON body")
}

async fn metric(client: &reqwest::Client, server: &Server, name: &str) -> f64 {
    let text = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in /metrics"))
}

async fn put(client: &reqwest::Client, server: &Server, body: &Value) {
    let response = client
        .put(format!("{}/api/temperature", server.base))
        .json(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_sweep_loses_nothing_that_stays_and_keeps_aggregates_exact() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("RETENTION_RAW", RETENTION)];
    let mut server = start_with(dir.path(), &env);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // Readings that expire together, within a millisecond of `start` + 10 s (whatever the
    // time the PUTs take, up to 9 s), and readings a minute or two ahead (inside
    // FUTURE_MARGIN) that stay.
    let start = now_micros() - 1_000_000;
    let all_expired_at = start + PER_SENSOR as i64 + 10_000_000;
    let mut all: Vec<(i64, i64)> = Vec::new();
    for sensor in 0..EXPIRING_SENSORS {
        let batch: Vec<(i64, i64)> = (0..PER_SENSOR)
            .map(|i| (start + i as i64, milli(sensor, i)))
            .collect();
        let body: Vec<Value> = batch
            .iter()
            .map(|(at, t)| json!({"sensorID": format!("e{sensor:02}"), "time": rfc3339(*at), "temperature": decimal(*t)}))
            .collect();
        put(&client, &server, &Value::Array(body)).await;
        all.extend(batch);
    }
    let ahead = now_micros() + MINUTE;
    let mut staying: Vec<(String, String, i64)> = Vec::new();
    for sensor in 0..STAYING_SENSORS {
        let batch: Vec<(String, String, i64)> = (0..PER_SENSOR / 2)
            .map(|i| {
                let at = ahead + i as i64 * 100_000;
                all.push((at, milli(100 + sensor, i)));
                (format!("k{sensor}"), rfc3339(at), milli(100 + sensor, i))
            })
            .collect();
        let body: Vec<Value> = batch
            .iter()
            .map(|(s, at, t)| json!({"sensorID": s, "time": at, "temperature": decimal(*t)}))
            .collect();
        put(&client, &server, &Value::Array(body)).await;
        staying.extend(batch);
    }
    // Kill as soon as the sweep has deleted something (20 chunks or so remain to do).
    let mut deleted = 0.0;
    for _ in 0..30_000 {
        deleted = metric(
            &client,
            &server,
            "telemetry_retention_deleted_readings_total",
        )
        .await;
        if deleted > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    drop(server);
    eprintln!(
        "killed with {deleted} of {} expired readings deleted",
        EXPIRING_SENSORS * PER_SENSOR
    );
    assert!(deleted > 0.0, "the sweep never started");

    let server = start_with(dir.path(), &env);
    let base = server.base.clone();
    // The kill followed the first deletion, so the horizon had passed `start`; a millisecond
    // more and it has passed every expiring reading.
    while now_micros() <= all_expired_at {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let check_aggregates = |client: reqwest::Client, base: String, all: Vec<(i64, i64)>| async move {
        let count = all.len() as u64;
        let sum: i64 = all.iter().map(|(_, t)| t * 1000).sum();
        let stats = get_json(&client, &format!("{base}/api/stats"), &[]).await;
        assert_eq!(stats["Count"].as_u64(), Some(count), "{stats}");
        let min = all.iter().map(|(_, t)| *t).min().unwrap() as f64 / 1e3;
        let max = all.iter().map(|(_, t)| *t).max().unwrap() as f64 / 1e3;
        assert_eq!(stats["Minimum"].as_f64(), Some(min));
        assert_eq!(stats["Maximum"].as_f64(), Some(max));
        let rounded = (i128::from(sum) * 2 + i128::from(count as i64) * i128::from(sum.signum()))
            / (i128::from(count as i64) * 2);
        assert_eq!(stats["Average"].as_f64(), Some(rounded as f64 / 1e6));
        // The rollups, minute by minute, count every reading once too.
        let first = all.iter().map(|(at, _)| *at).min().unwrap();
        let last = all.iter().map(|(at, _)| *at).max().unwrap();
        let query = [
            ("from", rfc3339(first - first.rem_euclid(MINUTE))),
            ("to", rfc3339(last - last.rem_euclid(MINUTE) + MINUTE)),
            ("step", "1m".to_owned()),
        ];
        let series = get_json(&client, &format!("{base}/api/series"), &query).await;
        for bucket in series["buckets"].as_array().unwrap() {
            let start = chrono::DateTime::parse_from_rfc3339(bucket["time"].as_str().unwrap())
                .unwrap()
                .timestamp_micros();
            let inside: Vec<i64> = all
                .iter()
                .filter(|(at, _)| (start..start + MINUTE).contains(at))
                .map(|(_, t)| *t)
                .collect();
            assert_eq!(
                bucket["Count"].as_u64(),
                Some(inside.len() as u64),
                "{bucket}"
            );
            assert_eq!(
                bucket["Maximum"].as_f64(),
                inside.iter().max().map(|t| *t as f64 / 1e3)
            );
        }
    };
    check_aggregates(client.clone(), base.clone(), all.clone()).await;
    for sensor in 0..EXPIRING_SENSORS {
        let query = [("sensorID", format!("e{sensor:02}"))];
        let stats = get_json(&client, &format!("{base}/api/stats"), &query).await;
        assert_eq!(stats["Count"].as_u64(), Some(PER_SENSOR as u64));
        let page = get_json(&client, &format!("{base}/api/readings"), &query).await;
        assert_eq!(page["readings"], json!([]), "e{sensor:02} expired");
    }
    // Every reading that should stay is there, with its value.
    for sensor in 0..STAYING_SENSORS {
        let query = [
            ("sensorID", format!("k{sensor}")),
            ("limit", "1000".to_owned()),
        ];
        let page = get_json(&client, &format!("{base}/api/readings"), &query).await;
        let stored: Vec<(String, String, i64)> = page["readings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    format!("k{sensor}"),
                    rfc3339(
                        chrono::DateTime::parse_from_rfc3339(r["time"].as_str().unwrap())
                            .unwrap()
                            .timestamp_micros(),
                    ),
                    (r["temperature"].as_f64().unwrap() * 1000.0).round() as i64,
                )
            })
            .collect();
        let expected: Vec<_> = staying
            .iter()
            .filter(|(s, _, _)| *s == format!("k{sensor}"))
            .cloned()
            .collect();
        assert_eq!(stored, expected, "k{sensor}");
    }
    // The sweep resumes and completes a pass after the restart; still exact afterwards.
    let mut swept = 0.0;
    for _ in 0..600 {
        swept = metric(
            &client,
            &server,
            "telemetry_retention_last_sweep_timestamp_seconds",
        )
        .await;
        if swept > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(swept > 0.0, "no sweep pass finished after the restart");
    check_aggregates(client.clone(), base.clone(), all.clone()).await;
}
