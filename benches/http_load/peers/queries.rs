//! The query comparison at 10^6 readings (the same data in every system): all-time
//! min/max/mean/count, the same over an unaligned one-day window, 30 days at 1 h buckets for one
//! sensor, and the latest value of every sensor — InfluxQL for InfluxDB, MetricsQL for
//! VictoriaMetrics, our routes for us (the window, series and latest routes only when the
//! server has them). Each answer is checked against the exact figures computed here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde_json::Value;

use super::data::{Expected, SENSORS, Timeline, rfc3339};
use super::systems::{Peer, System};
use crate::load::{Call, MakeRequest, drive};
use crate::measure::ms;
use crate::options::Options;

pub const READINGS: u64 = 1_000_000;
const LOAD_BATCH: u64 = 5_000;
const SERIES_SENSOR: u64 = 17;

#[derive(Debug, Clone, serde::Serialize)]
pub struct QueryRow {
    pub system: &'static str,
    pub query: &'static str,
    pub calls: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Whether the answer equals the exact one, and how it differs when not.
    pub agrees: bool,
    pub note: String,
}

/// The questions, in the order the tables list them.
#[derive(Debug, Clone, Copy)]
enum Question {
    AllTime,
    Window,
    Series,
    Latest,
}

impl Question {
    const ALL: [Self; 4] = [Self::AllTime, Self::Window, Self::Series, Self::Latest];

    fn name(self) -> &'static str {
        match self {
            Self::AllTime => "all-time min/max/mean/count",
            Self::Window => "one-day window (unaligned) min/max/mean/count",
            Self::Series => "30 days at 1 h buckets, one sensor",
            Self::Latest => "latest value of every sensor",
        }
    }
}

/// The windows asked about: the day and the 30 days.
struct Windows {
    day: (i64, i64),
    month: (i64, i64),
}

impl Windows {
    fn of(timeline: &Timeline) -> Self {
        // 3 days and 17 min 23 s in: on no reading's time, so every system's edge rule agrees.
        let from = timeline.start + 3 * 86_400 + 1_043;
        Self {
            day: (from, from + 86_400),
            month: (timeline.start, timeline.start + 30 * 86_400),
        }
    }
}

fn enc(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn influxql(q: &str) -> String {
    format!("/query?db=bench&epoch=s&q={}", enc(q))
}

fn metricsql(q: &str, time: i64) -> String {
    format!("/api/v1/query?query={}&time={time}", enc(q))
}

/// VictoriaMetrics: four aggregates of `range` in one query, told apart by an `agg` label.
fn vm_aggregates(range: &str) -> String {
    let part = |agg: &str, inner: &str| format!("label_set({inner}, \"agg\", \"{agg}\")");
    [
        part(
            "count",
            &format!("sum(count_over_time(temperature_value[{range}]))"),
        ),
        part(
            "min",
            &format!("min(min_over_time(temperature_value[{range}]))"),
        ),
        part(
            "max",
            &format!("max(max_over_time(temperature_value[{range}]))"),
        ),
        part(
            "sum",
            &format!("sum(sum_over_time(temperature_value[{range}]))"),
        ),
    ]
    .join(" or ")
}

/// The request asking `question` of `system`, or `None` when our server lacks the route.
fn request(
    system: System,
    question: Question,
    w: &Windows,
    ours_has_windows: bool,
) -> Option<String> {
    let (day_from, day_to) = w.day;
    let (month_from, month_to) = w.month;
    let now = crate::report::unix_time() as i64;
    let sensor = format!("s{SERIES_SENSOR}");
    Some(match (system, question) {
        (System::InfluxDb, Question::AllTime) => {
            influxql("SELECT count(value), min(value), max(value), mean(value) FROM temperature")
        }
        (System::InfluxDb, Question::Window) => influxql(&format!(
            "SELECT count(value), min(value), max(value), mean(value) FROM temperature WHERE time >= '{}' AND time < '{}'",
            rfc3339(day_from),
            rfc3339(day_to)
        )),
        (System::InfluxDb, Question::Series) => influxql(&format!(
            "SELECT mean(value) FROM temperature WHERE sensor = '{sensor}' AND time >= '{}' AND time < '{}' GROUP BY time(1h)",
            rfc3339(month_from),
            rfc3339(month_to)
        )),
        (System::InfluxDb, Question::Latest) => {
            influxql("SELECT last(value) FROM temperature GROUP BY sensor")
        }
        (System::VictoriaMetrics, Question::AllTime) => metricsql(&vm_aggregates("3650d"), now),
        (System::VictoriaMetrics, Question::Window) => metricsql(&vm_aggregates("1d"), day_to),
        // Evaluated 1 ms before each hour ends, so each window (t - 1 h, t] holds the readings of
        // [hour start, hour end) at whole seconds.
        (System::VictoriaMetrics, Question::Series) => format!(
            "/api/v1/query_range?query={}&start={}.999&end={}&step=3600",
            enc(&format!(
                "avg_over_time(temperature_value{{sensor=\"{sensor}\"}}[1h])"
            )),
            month_from + 3_599,
            month_to
        ),
        (System::VictoriaMetrics, Question::Latest) => {
            metricsql("last_over_time(temperature_value[3650d])", now)
        }
        (_, Question::AllTime) => "/api/stats".into(),
        (_, _) if !ours_has_windows => return None,
        (_, Question::Window) => format!(
            "/api/stats?from={}&to={}",
            rfc3339(day_from),
            rfc3339(day_to)
        ),
        (_, Question::Series) => format!(
            "/api/series?from={}&to={}&step=1h&sensorID={sensor}",
            rfc3339(month_from),
            rfc3339(month_to)
        ),
        (_, Question::Latest) => "/api/sensors?limit=1000".into(),
    })
}

/// One scalar of an instant MetricsQL query (`time` = now unless given).
pub async fn promql_scalar(peer: &Peer, query: &str, time: Option<i64>) -> Option<f64> {
    let time = time.unwrap_or_else(|| crate::report::unix_time() as i64);
    let answer = peer.json(metricsql(query, time)).await;
    answer
        .pointer("/data/result/0/value/1")?
        .as_str()?
        .parse()
        .ok()
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.parse().ok())
}

fn epoch(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

/// `(count, min, max, mean)` out of an aggregate answer.
fn aggregates(system: System, v: &Value) -> Option<(u64, f64, f64, f64)> {
    match system {
        System::InfluxDb => {
            let row = v.pointer("/results/0/series/0/values/0")?;
            Some((
                row[1].as_u64()?,
                number(&row[2])?,
                number(&row[3])?,
                number(&row[4])?,
            ))
        }
        System::VictoriaMetrics => {
            let mut by: BTreeMap<&str, f64> = BTreeMap::new();
            for r in v.pointer("/data/result")?.as_array()? {
                by.insert(r["metric"]["agg"].as_str()?, number(&r["value"][1])?);
            }
            let count = *by.get("count")?;
            Some((
                count as u64,
                *by.get("min")?,
                *by.get("max")?,
                by.get("sum")? / count,
            ))
        }
        _ => Some((
            v["Count"].as_u64()?,
            number(&v["Minimum"])?,
            number(&v["Maximum"])?,
            number(&v["Average"])?,
        )),
    }
}

/// Bucket start (Unix seconds) to mean, non-empty buckets only.
fn buckets(system: System, v: &Value) -> Option<BTreeMap<i64, f64>> {
    let mut out = BTreeMap::new();
    match system {
        System::InfluxDb => {
            for row in v.pointer("/results/0/series/0/values")?.as_array()? {
                if let Some(mean) = number(&row[1]) {
                    out.insert(row[0].as_i64()?, mean);
                }
            }
        }
        System::VictoriaMetrics => {
            for point in v.pointer("/data/result/0/values")?.as_array()? {
                let t = point[0].as_f64()?;
                out.insert((t + 0.001).round() as i64 - 3_600, number(&point[1])?);
            }
        }
        _ => {
            for b in v["buckets"].as_array()? {
                if b["Count"].as_u64()? > 0 {
                    out.insert(epoch(b["time"].as_str()?)?, number(&b["Average"])?);
                }
            }
        }
    }
    Some(out)
}

/// Sensor to latest temperature.
fn latest(system: System, v: &Value) -> Option<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    match system {
        System::InfluxDb => {
            for s in v.pointer("/results/0/series")?.as_array()? {
                out.insert(
                    s["tags"]["sensor"].as_str()?.to_owned(),
                    number(&s["values"][0][1])?,
                );
            }
        }
        System::VictoriaMetrics => {
            for r in v.pointer("/data/result")?.as_array()? {
                out.insert(
                    r["metric"]["sensor"].as_str()?.to_owned(),
                    number(&r["value"][1])?,
                );
            }
        }
        _ => {
            for s in v["sensors"].as_array()? {
                let t = s.pointer("/latest/temperature").and_then(number)?;
                out.insert(s["sensorID"].as_str()?.to_owned(), t);
            }
        }
    }
    Some(out)
}

/// Checks `answer` against the exact figures; `(agrees, note)`.
fn check(
    system: System,
    question: Question,
    answer: &Value,
    t: &Timeline,
    w: &Windows,
) -> (bool, String) {
    let all = || (0..READINGS).map(|k| t.reading(k));
    let near = |a: f64, b: f64| (a - b).abs() <= 1e-6;
    match question {
        Question::AllTime | Question::Window => {
            let (from, to) = if matches!(question, Question::AllTime) {
                (i64::MIN, i64::MAX)
            } else {
                w.day
            };
            let expected =
                Expected::of(all().filter(|r| r.time >= from && r.time < to)).expect("readings");
            match aggregates(system, answer) {
                Some((c, min, max, mean)) if expected.agrees(c, min, max, mean) => {
                    (true, format!("count {c}"))
                }
                Some(got) => (false, format!("answered {got:?}, exact {expected:?}")),
                None => (false, format!("unreadable answer: {answer}")),
            }
        }
        Question::Series => {
            let (from, to) = w.month;
            let mut sums: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
            for r in all().filter(|r| r.sensor == SERIES_SENSOR && r.time >= from && r.time < to) {
                let e = sums
                    .entry(from + (r.time - from) / 3_600 * 3_600)
                    .or_default();
                e.0 += r.centi;
                e.1 += 1;
            }
            let expected: BTreeMap<i64, f64> = sums
                .into_iter()
                .map(|(b, (s, n))| (b, s as f64 / n as f64 / 100.0))
                .collect();
            match buckets(system, answer) {
                Some(got) => {
                    let wrong = expected
                        .iter()
                        .filter(|(b, m)| got.get(b).is_none_or(|g| !near(*g, **m)))
                        .count();
                    let extra = got.keys().filter(|b| !expected.contains_key(b)).count();
                    let note = format!(
                        "{} buckets with readings; {wrong} missing or different, {extra} extra",
                        expected.len()
                    );
                    (wrong == 0 && extra == 0, note)
                }
                None => (false, format!("unreadable answer: {answer}")),
            }
        }
        Question::Latest => {
            let expected: BTreeMap<String, f64> = (READINGS - SENSORS..READINGS)
                .map(|k| t.reading(k))
                .map(|r| (format!("s{}", r.sensor), r.centi as f64 / 100.0))
                .collect();
            match latest(system, answer) {
                Some(got) => {
                    let wrong = expected
                        .iter()
                        .filter(|(s, v)| got.get(*s).is_none_or(|g| !near(*g, **v)))
                        .count();
                    (
                        wrong == 0 && got.len() == expected.len(),
                        format!("{} sensors; {wrong} missing or different", got.len()),
                    )
                }
                None => (false, format!("unreadable answer: {answer}")),
            }
        }
    }
}

/// Loads the query data set into a fresh `system` and times every question on it.
pub async fn compare(system: System, options: &Options) -> Vec<QueryRow> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let peer = system.start(&dir.path().join("data"), options).await;
    let timeline = Timeline::queries();
    let batch = LOAD_BATCH.min(system.max_batch());
    let make: MakeRequest = Arc::new(move |_, seq| system.write(&timeline, seq, batch));
    let cap = READINGS / batch;
    let load = drive(
        peer.addr,
        16,
        Duration::from_secs(600),
        cap,
        make,
        Arc::default(),
    )
    .await;
    assert_eq!(
        load.errors,
        0,
        "{}: loading the query data set",
        system.name()
    );
    let stored = peer.settled_count(Some(READINGS)).await;
    assert_eq!(
        stored,
        READINGS,
        "{}: stored readings after the load",
        system.name()
    );
    eprintln!(
        "  {}: loaded {READINGS} readings in {:.1} s",
        system.name(),
        load.elapsed.as_secs_f64()
    );
    let ours_has_windows = system.is_ours()
        && peer
            .answer(Call::get("/api/series"))
            .await
            .is_some_and(|(s, _)| s != 404);
    let windows = Windows::of(&timeline);
    let mut rows = Vec::new();
    for question in Question::ALL {
        let Some(path) = request(system, question, &windows, ours_has_windows) else {
            eprintln!(
                "  {}: {} skipped (no such route yet)",
                system.name(),
                question.name()
            );
            continue;
        };
        let answer = peer.json(path.clone()).await;
        let (agrees, note) = check(system, question, &answer, &timeline, &windows);
        let make: MakeRequest = Arc::new(move |_, _| Call::get(path.clone()));
        let seconds = Duration::from_secs_f64(options.seconds.min(3.0));
        let run = drive(
            peer.addr,
            1,
            seconds,
            10_000,
            make,
            Arc::new(AtomicU64::new(0)),
        )
        .await;
        let row = QueryRow {
            system: system.name(),
            query: question.name(),
            calls: run.requests,
            p50_ms: ms(&run.histogram, 0.5),
            p99_ms: ms(&run.histogram, 0.99),
            agrees: agrees && run.errors == 0,
            note,
        };
        println!(
            "{:<22} {:<48} {:>6} {:>10.3} {:>10.3}  {} ({})",
            row.system,
            row.query,
            row.calls,
            row.p50_ms,
            row.p99_ms,
            if row.agrees { "exact" } else { "DIFFERS" },
            row.note
        );
        rows.push(row);
    }
    peer.stop();
    rows
}

/// How many readings `peer` holds with `from <= time < to` (whole seconds); every reading of
/// that window is of sensors `s0..s{sensors - 1}`.
pub async fn count_between(peer: &Peer, from: i64, to: i64, sensors: u64) -> u64 {
    peer.flush().await;
    match peer.system {
        System::InfluxDb => {
            let q = format!(
                "SELECT count(value) FROM temperature WHERE time >= {from}s AND time < {to}s"
            );
            let v = peer.json(influxql(&q)).await;
            v.pointer("/results/0/series/0/values/0/1")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        }
        System::VictoriaMetrics => {
            // The window (t - range, t] at t = to - 0.5 s holds the whole seconds from..to.
            let q = format!("sum(count_over_time(temperature_value[{}s]))", to - from);
            let path = format!("/api/v1/query?query={}&time={}.5", enc(&q), to - 1);
            let v = peer.json(path).await;
            v.pointer("/data/result/0/value/1")
                .and_then(number)
                .map_or(0, |n| n as u64)
        }
        System::OursJson | System::OursLineProtocol => {
            // Through the readings list (it exists in every version), sensor by sensor.
            let mut count = 0;
            for sensor in 0..sensors {
                let mut cursor: Option<String> = None;
                loop {
                    let mut path = format!(
                        "/api/readings?sensorID=s{sensor}&from={}&to={}&limit=1000",
                        rfc3339(from),
                        rfc3339(to)
                    );
                    if let Some(c) = &cursor {
                        path.push_str(&format!("&cursor={}", enc(c)));
                    }
                    let page = peer.json(path).await;
                    count += page["readings"].as_array().map_or(0, Vec::len) as u64;
                    match page["next"].as_str() {
                        Some(next) => cursor = Some(next.to_owned()),
                        None => break,
                    }
                }
            }
            count
        }
    }
}
