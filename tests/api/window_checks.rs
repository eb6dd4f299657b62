//! The window checks both the contract suite (`windows.rs`, `upgrade.rs`) and the DynamoDB
//! two-instance test use: random readings (late, out of order, repeated) written through the
//! API, and random unaligned windows and series compared with a recomputation from
//! `/api/readings`, exactly.

#![allow(dead_code)] // each test target uses a different subset

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_put_answered_ok};

/// 2021-10-04T00:00:00Z in seconds.
pub const T0: i64 = 1_633_305_600;
pub const DAY: i64 = 86_400;
pub const SENSORS: [&str; 4] = ["107", "a b", "gw/3", "z"];

/// A small deterministic generator (xorshift64*): the same readings on every run.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// RFC 3339 for `micros` since the epoch, with all six fractional digits.
pub fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn decimal(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:06}",
        micros.abs() / 1_000_000,
        micros.abs() % 1_000_000
    )
}

/// The stats body the service promises for these temperatures (µ°C).
pub fn expected(values: &[i64]) -> Value {
    if values.is_empty() {
        return json!({"Average": null, "Maximum": null, "Minimum": null, "Count": 0});
    }
    let count = values.len() as i128;
    let sum: i128 = values.iter().map(|v| i128::from(*v)).sum();
    let twice = 2 * sum;
    let mean = if twice >= 0 {
        (twice + count) / (2 * count)
    } else {
        (twice - count) / (2 * count)
    };
    let celsius = |m: i128| m as f64 / 1e6;
    json!({
        "Average": celsius(mean),
        "Maximum": celsius(i128::from(*values.iter().max().unwrap())),
        "Minimum": celsius(i128::from(*values.iter().min().unwrap())),
        "Count": values.len(),
    })
}

/// Everything stored, by sensor, read back through the paginated readings API (µs → µ°C).
pub async fn stored(app: &TestApp) -> BTreeMap<String, BTreeMap<i64, i64>> {
    let mut all = BTreeMap::new();
    for sensor in SENSORS {
        let mut readings = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("sensorID", sensor.to_owned()), ("limit", "1000".into())];
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.clone()));
            }
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let response = app.readings(&query).await;
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.unwrap();
            for r in page["readings"].as_array().unwrap() {
                let time = chrono::DateTime::parse_from_rfc3339(r["time"].as_str().unwrap())
                    .unwrap()
                    .timestamp_micros();
                let micros = (r["temperature"].as_f64().unwrap() * 1e6).round() as i64;
                readings.insert(time, micros);
            }
            match page["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        all.insert(sensor.to_owned(), readings);
    }
    all
}

pub fn in_window(
    stored: &BTreeMap<String, BTreeMap<i64, i64>>,
    sensor: Option<&str>,
    from: i64,
    to: i64,
) -> Vec<i64> {
    stored
        .iter()
        .filter(|(s, _)| sensor.is_none_or(|x| x == s.as_str()))
        .flat_map(|(_, readings)| readings.range(from..to).map(|(_, v)| *v))
        .collect()
}

pub async fn get_json(app: &TestApp, path: &str, query: &[(&str, String)]) -> Value {
    let response = app
        .client
        .get(app.url(path))
        .query(query)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "GET {path} {query:?}: {body}");
    body
}

/// Random readings over three days and four sensors, sent in random order in single PUTs and
/// batches, with exact repeats (and repeats inside a batch).
pub async fn write_random_readings(app: &TestApp, rng: &mut Rng, sensors: &[&str]) -> usize {
    let mut readings = Vec::new();
    for _ in 0..600 {
        let index = rng.below(sensors.len() as u64);
        let sensor = sensors[index as usize];
        // Clustered times: some buckets hold many readings, a few carry fractions of a second.
        let second = match rng.below(3) {
            0 => rng.below(3 * DAY as u64) as i64,
            1 => 3_600 + rng.below(600) as i64,
            _ => DAY - 30 + rng.below(60) as i64,
        };
        let fraction = if rng.below(5) == 0 {
            rng.below(1_000_000) as i64
        } else {
            0
        };
        let micros = (T0 + second) * 1_000_000 + fraction;
        // A function of the identity, so rounds written later repeat, never conflict.
        let mix = Rng((micros as u64) ^ (index << 56) | 1).next();
        let temperature = (mix % 80_000_000) as i64 - 30_000_000;
        readings.push((sensor, micros, temperature));
    }
    // Drawn twice: sent twice (one of them dropped as a repeat, or stored as a duplicate).
    let body = |batch: &[(&str, i64, i64)]| -> Value {
        batch
            .iter()
            .map(
                |(s, t, v)| json!({"sensorID": s, "time": rfc3339(*t), "temperature": decimal(*v)}),
            )
            .collect()
    };
    let mut at = 0;
    while at < readings.len() {
        let size = [1, 1, 7, 50][rng.below(4) as usize].min(readings.len() - at);
        let batch = &readings[at..at + size];
        let mut sent = body(batch);
        if rng.below(4) == 0 {
            let repeat = sent[0].clone();
            sent.as_array_mut().unwrap().push(repeat);
        }
        put_retrying(app, &sent).await;
        if rng.below(5) == 0 {
            put_retrying(app, &body(&batch[..1])).await; // a sensor's retry
        }
        at += size;
    }
    readings.len()
}

fn random_bound(rng: &mut Rng) -> i64 {
    let second = match rng.below(4) {
        0 => rng.below(4 * DAY as u64) as i64 - DAY / 2,
        1 => (rng.below(80) * 3_600) as i64,
        2 => 3_500 + rng.below(800) as i64,
        _ => DAY - 90 + rng.below(120) as i64,
    };
    let fraction = if rng.below(3) == 0 {
        rng.below(1_000_000) as i64
    } else {
        0
    };
    (T0 + second) * 1_000_000 + fraction
}

/// Random windows and series, each compared with the recomputation from `stored`.
pub async fn check_windows(app: &TestApp, rng: &mut Rng, rounds: usize) {
    let stored = stored(app).await;
    let steps = ["1m", "5m", "15m", "1h", "6h", "1d"];
    for _ in 0..rounds {
        let (a, b) = (random_bound(rng), random_bound(rng));
        let (from, to) = (a.min(b), a.max(b));
        let scope = [
            None,
            Some(SENSORS[rng.below(SENSORS.len() as u64) as usize]),
        ][rng.below(2) as usize];
        let mut query = vec![("from", rfc3339(from)), ("to", rfc3339(to))];
        if let Some(sensor) = scope {
            query.push(("sensorID", sensor.to_owned()));
        }
        let stats = get_json(app, "/api/stats", &query).await;
        assert_eq!(
            stats,
            expected(&in_window(&stored, scope, from, to)),
            "stats {query:?}"
        );
        if from == to {
            continue;
        }
        let step = steps[rng.below(steps.len() as u64) as usize];
        let width: i64 = match step {
            "1m" => 60,
            "5m" => 300,
            "15m" => 900,
            "1h" => 3_600,
            "6h" => 21_600,
            _ => DAY,
        } * 1_000_000;
        query.push(("step", step.to_owned()));
        let series = get_json(app, "/api/series", &query).await;
        assert_eq!(series["step"], step);
        let buckets = series["buckets"].as_array().unwrap();
        let first = from.div_euclid(width) * width;
        let expected_count = (to - first + width - 1) / width;
        assert_eq!(buckets.len() as i64, expected_count, "{query:?}");
        for (index, bucket) in buckets.iter().enumerate() {
            let start = first + index as i64 * width;
            assert_eq!(bucket["time"], rfc3339_short(start), "{query:?}");
            let values = in_window(&stored, scope, start.max(from), (start + width).min(to));
            let mut want = expected(&values);
            want["time"] = bucket["time"].clone();
            assert_eq!(*bucket, want, "bucket {index} of {query:?}");
        }
    }
    // Open bounds.
    for (name, bound) in [
        ("from", T0 * 1_000_000 + 5_400_000_123),
        ("to", (T0 + DAY) * 1_000_000),
    ] {
        let stats = get_json(app, "/api/stats", &[(name, rfc3339(bound))]).await;
        let (from, to) = if name == "from" {
            (bound, i64::MAX)
        } else {
            (i64::MIN, bound)
        };
        assert_eq!(
            stats,
            expected(&in_window(&stored, None, from, to)),
            "{name}"
        );
    }
}

/// RFC 3339 as the service prints times: no fraction when there is none.
pub fn rfc3339_short(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// PUTs as a sensor does: a 503 acknowledged nothing, so the same request is sent again after
/// `Retry-After` (at most 10 times); it must end in 200 `Ok`. Several instances on a loaded
/// DynamoDB Local may exceed the operation timeout; a retry is then also a test that resending
/// readings some of which were stored never double counts them.
pub async fn put_retrying(app: &TestApp, body: &Value) {
    for _ in 0..10 {
        let response = app.put_readings(body).await;
        if response.status() != StatusCode::SERVICE_UNAVAILABLE {
            assert_put_answered_ok(body, response).await;
            return;
        }
        let wait = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
            .expect("a 503 carries Retry-After");
        tokio::time::sleep(Duration::from_secs(wait.min(2))).await;
    }
    panic!("PUT {body} still answered 503 after 10 tries");
}

/// `/api/sensors` and `/api/sensors/{id}` against `stored`: every sensor with readings listed
/// once, with its count, first and latest reading recomputed from them.
pub async fn check_sensors(app: &TestApp, stored: &BTreeMap<String, BTreeMap<i64, i64>>) {
    let listed = get_json(app, "/api/sensors", &[("limit", "1000".into())]).await;
    let listed = listed["sensors"].as_array().unwrap().clone();
    let with_readings: Vec<&String> = stored
        .iter()
        .filter(|(_, r)| !r.is_empty())
        .map(|(s, _)| s)
        .collect();
    let names: Vec<&str> = listed
        .iter()
        .map(|s| s["sensorID"].as_str().unwrap())
        .collect();
    assert_eq!(names, with_readings, "listed sensors");
    for summary in &listed {
        let name = summary["sensorID"].as_str().unwrap();
        let own = &stored[name];
        assert_eq!(summary["Count"], own.len(), "{name}");
        let (first, _) = own.first_key_value().unwrap();
        let (last, value) = own.last_key_value().unwrap();
        assert_eq!(summary["first"], rfc3339_short(*first), "{name}");
        assert_eq!(summary["latest"]["time"], rfc3339_short(*last), "{name}");
        assert_eq!(
            summary["latest"]["temperature"],
            *value as f64 / 1e6,
            "{name}"
        );
        let path = format!(
            "/api/sensors/{}",
            name.replace(' ', "%20").replace('/', "%2F")
        );
        let one = get_json(app, &path, &[]).await;
        assert_eq!(one, *summary, "{path}");
    }
}
