//! Crash safety: `kill -9` the real binary while concurrent writers PUT (in order and late),
//! restart it on the same `DATA_DIR`, and check that every acknowledged reading is there with
//! its value and that the stored aggregates, the rollups behind `/api/series` and an unaligned
//! `/api/stats` window equal a recomputation over the stored readings.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::start;

const WRITERS: usize = 8;
const READINGS_PER_WRITER: usize = 2_000;
/// Kill once this many readings were acknowledged (or after `KILL_AFTER`).
const KILL_AT_ACKS: usize = 400;
const KILL_AFTER: Duration = Duration::from_secs(10);

fn time_of(i: usize) -> String {
    format!(
        "2021-10-04T{:02}:{:02}:{:02}Z",
        i / 3600,
        (i / 60) % 60,
        i % 60
    )
}

/// Temperatures in milli-degrees that differ per reading, so sums are non-trivial.
fn temperature_of(writer: usize, i: usize) -> i64 {
    ((writer * 7919 + i * 104_729) % 100_000) as i64 - 40_000
}

/// Milli-degrees as the exact decimal string a sensor would send.
fn decimal(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    format!("{sign}{}.{:03}", milli.abs() / 1000, milli.abs() % 1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_readings_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let acked: Arc<Mutex<Vec<(String, String, i64)>>> = Arc::default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (client, base, acked) = (client.clone(), server.base.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for sent in 0..READINGS_PER_WRITER {
                // Every other reading a second late (1 before 0, 3 before 2...), as readings
                // of concurrent requests commit in any order: both in-order and late ones.
                let i = sent ^ 1;
                let (sensor, time, t) =
                    (format!("w{writer}"), time_of(i), temperature_of(writer, i));
                let body = json!({"sensorID": sensor, "time": time, "temperature": decimal(t)});
                match client
                    .put(format!("{base}/api/temperature"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) if response.status() == 200 => {
                        acked.lock().unwrap().push((sensor, time, t));
                    }
                    Ok(response) => panic!("unexpected status {}", response.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    let started = Instant::now();
    while acked.lock().unwrap().len() < KILL_AT_ACKS && started.elapsed() < KILL_AFTER {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
    server.child.wait().unwrap();
    drop(server);
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= KILL_AT_ACKS / 2,
        "only {} acks before the kill",
        acked.len()
    );

    let server = start(dir.path());
    // Everything stored, per sensor, through the paginated readings API.
    let mut stored: HashMap<(String, String), i64> = HashMap::new();
    for writer in 0..WRITERS {
        let sensor = format!("w{writer}");
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("sensorID", sensor.clone()), ("limit", "1000".into())];
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.clone()));
            }
            let page = get_json(&client, &format!("{}/api/readings", server.base), &query).await;
            for r in page["readings"].as_array().unwrap() {
                let time = r["time"].as_str().unwrap().to_owned();
                let celsius = r["temperature"].as_f64().unwrap();
                stored.insert((sensor.clone(), time), (celsius * 1000.0).round() as i64);
            }
            match page["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }
    eprintln!(
        "killed after {} acknowledged readings; {} stored after restart",
        acked.len(),
        stored.len()
    );
    assert!(stored.len() >= acked.len());
    for (sensor, time, t) in &acked {
        assert_eq!(
            stored.get(&(sensor.clone(), time.clone())),
            Some(t),
            "acknowledged reading {sensor} {time} lost or changed"
        );
    }
    // Stats equal a recomputation over what is stored (exact, in micro-degrees).
    let micros: Vec<i64> = stored.values().map(|milli| milli * 1000).collect();
    let count = micros.len() as i64;
    let sum: i64 = micros.iter().sum();
    let stats = get_json(&client, &format!("{}/api/stats", server.base), &[]).await;
    assert_eq!(stats["Count"].as_i64(), Some(count));
    let celsius = |micros: i64| micros as f64 / 1e6;
    assert_eq!(
        stats["Minimum"].as_f64(),
        micros.iter().min().copied().map(celsius)
    );
    assert_eq!(
        stats["Maximum"].as_f64(),
        micros.iter().max().copied().map(celsius)
    );
    // The mean rounded half away from zero to a micro-degree, as the service promises.
    let exact_mean = sum as f64 / count as f64;
    let rounded = (i128::from(sum) * 2 + i128::from(count) * i128::from(sum.signum()))
        / (i128::from(count) * 2);
    assert!((rounded as f64 - exact_mean).abs() <= 0.5 + 1e-9);
    assert_eq!(stats["Average"].as_f64(), Some(rounded as f64 / 1e6));
    // Rollups too: every minute of the series over the whole range, and an unaligned window,
    // equal a recomputation over what is stored.
    let step = 60_000_000i64;
    let t0 = chrono::DateTime::parse_from_rfc3339(&time_of(0))
        .unwrap()
        .timestamp_micros();
    let to = t0 + READINGS_PER_WRITER as i64 * 1_000_000;
    let query = [
        ("from", time_of(0)),
        ("to", time_of(READINGS_PER_WRITER)),
        ("step", "1m".to_owned()),
    ];
    let series = get_json(&client, &format!("{}/api/series", server.base), &query).await;
    let micros_at: Vec<(i64, i64)> = stored
        .iter()
        .map(|((_, time), milli)| {
            let at = chrono::DateTime::parse_from_rfc3339(time)
                .unwrap()
                .timestamp_micros();
            (at, milli * 1000)
        })
        .collect();
    let buckets = series["buckets"].as_array().unwrap();
    assert_eq!(buckets.len() as i64, (to - t0 + step - 1) / step);
    for (index, bucket) in buckets.iter().enumerate() {
        let start = t0 + index as i64 * step;
        let values: Vec<i64> = micros_at
            .iter()
            .filter(|(at, _)| (start..start + step).contains(at))
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(
            bucket["Count"].as_u64(),
            Some(values.len() as u64),
            "bucket {index}"
        );
        assert_eq!(
            bucket["Minimum"].as_f64(),
            values.iter().min().map(|m| *m as f64 / 1e6)
        );
        assert_eq!(
            bucket["Maximum"].as_f64(),
            values.iter().max().map(|m| *m as f64 / 1e6)
        );
    }
    let (from, until) = (t0 + 61_500_000, t0 + 1_234_000_000);
    let window = [
        ("from", "2021-10-04T00:01:01.5Z".to_owned()),
        ("to", time_of(1234)),
    ];
    let stats = get_json(&client, &format!("{}/api/stats", server.base), &window).await;
    let inside = micros_at
        .iter()
        .filter(|(at, _)| (from..until).contains(at))
        .count();
    assert_eq!(stats["Count"].as_u64(), Some(inside as u64), "{window:?}");
    // Per-sensor aggregates too.
    let mut per_sensor: BTreeMap<&str, usize> = BTreeMap::new();
    for (sensor, _) in stored.keys() {
        *per_sensor.entry(sensor.as_str()).or_default() += 1;
    }
    for (sensor, n) in per_sensor {
        let query = [("sensorID", sensor.to_owned())];
        let stats = get_json(&client, &format!("{}/api/stats", server.base), &query).await;
        assert_eq!(stats["Count"].as_u64(), Some(n as u64), "sensor {sensor}");
    }
}

async fn get_json(client: &reqwest::Client, url: &str, query: &[(&str, String)]) -> Value {
    let response = client
        .get(url)
        .query(query)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.expect("a JSON body")
}
