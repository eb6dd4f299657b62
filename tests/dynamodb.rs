//! DynamoDB-only tests: several instances on one table, DynamoDB going away and coming back,
//! restarts, the start-up checks of the table, tables written by the previous release (their
//! rollup build, and instances of that release still writing), and requests per reading.
//!
//! They need a DynamoDB-compatible server at `AWS_ENDPOINT_URL` and
//! `TELEMETRY_TEST_STORAGE=dynamodb`; `scripts/dynamodb-tests.sh` starts DynamoDB Local and runs
//! them. A plain `cargo test` skips the target (`test = false`), and without that variable
//! every test fails (see `dynamodb_store`): none passes without having run.

#[path = "api/helpers.rs"]
mod helpers;
#[path = "dynamodb/previous_release.rs"]
mod previous_release;
#[path = "api/window_checks.rs"]
mod window_checks;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use helpers::{TestStore, reading, spawn_app_on, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use telemetry::app::{Application, dynamodb_settings};
use telemetry::config::StorageKind;
use telemetry::domain::{Batch, Reading};
use telemetry::storage::group_commit::unobserved;
use telemetry::storage::{DynamoStore, PutOutcome, Store};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// A fresh table of this test's own. A plain `cargo test` skips this target; it runs when named
/// (`--test dynamodb`), which `scripts/dynamodb-tests.sh` does with a running DynamoDB Local:
/// without one, these tests fail rather than pass vacuously.
fn dynamodb_store() -> TestStore {
    let store = TestStore::new();
    assert_eq!(
        store.kind,
        StorageKind::Dynamodb,
        "tests/dynamodb.rs needs TELEMETRY_TEST_STORAGE=dynamodb and DynamoDB Local at \
         AWS_ENDPOINT_URL: run scripts/dynamodb-tests.sh"
    );
    store
}

fn time(second: u32) -> String {
    format!("2021-10-04 09:{:02}:{:02}", second / 60, second % 60)
}

/// Temperatures in micro-degrees that would drift as floats: 0.1, 0.2, ... -12.345678.
fn temperature_micros(sensor: u32, second: u32) -> i64 {
    i64::from(sensor) * 100_000 + i64::from(second % 97) * 1_234_567 - 12_345_678
}

#[tokio::test]
async fn two_instances_writing_the_same_readings_at_once_end_exact() {
    let store = dynamodb_store();
    let a = Arc::new(spawn_app_on(&store).await);
    let b = Arc::new(spawn_app_on(&store).await);

    // 12 sensors × 150 seconds = 1,800 readings, in requests of 1 to 120 readings.
    let (sensors, seconds) = (12u32, 150u32);
    let mut all: Vec<(u32, u32)> = Vec::new();
    for second in 0..seconds {
        for sensor in 0..sensors {
            all.push((sensor, second));
        }
    }
    let mut requests: Vec<Value> = Vec::new();
    let mut rest = all.as_slice();
    let mut size = 1;
    while !rest.is_empty() {
        let (now, later) = rest.split_at(size.min(rest.len()));
        requests.push(Value::Array(
            now.iter()
                .map(|&(sensor, second)| {
                    let micros = temperature_micros(sensor, second);
                    reading(&format!("s{sensor}"), &time(second), micros as f64 / 1e6)
                })
                .collect(),
        ));
        rest = later;
        size = size % 120 + 17;
    }

    // Every request goes through both instances at once, 8 requests in flight per instance.
    let requests = Arc::new(requests);
    let mut workers = Vec::new();
    for worker in 0..8 {
        for app in [a.clone(), b.clone()] {
            let requests = requests.clone();
            workers.push(tokio::spawn(async move {
                for body in requests.iter().skip(worker).step_by(8) {
                    window_checks::put_retrying(&app, body).await;
                }
            }));
        }
    }
    for worker in workers {
        worker.await.expect("writer task");
    }

    let count = u64::from(sensors * seconds);
    let micros: Vec<i64> = all
        .iter()
        .map(|&(sensor, second)| temperature_micros(sensor, second))
        .collect();
    let sum: i128 = micros.iter().map(|&m| i128::from(m)).sum();
    let average = ((sum * 2 + i128::from(count)) / (2 * i128::from(count))) as f64 / 1e6;
    for app in [&a, &b] {
        let stats = app.stats(None).await;
        assert_eq!(stats["Count"], count, "{stats}");
        assert_eq!(
            stats["Minimum"].as_f64(),
            Some(*micros.iter().min().unwrap() as f64 / 1e6)
        );
        assert_eq!(
            stats["Maximum"].as_f64(),
            Some(*micros.iter().max().unwrap() as f64 / 1e6)
        );
        assert_eq!(stats["Average"].as_f64(), Some(average), "{stats}");
    }
    for sensor in [0, 7, 11] {
        let expected: Vec<i64> = (0..seconds)
            .map(|second| temperature_micros(sensor, second))
            .collect();
        let stats = b.stats(Some(&format!("s{sensor}"))).await;
        assert_eq!(stats["Count"], u64::from(seconds));
        assert_eq!(
            stats["Minimum"].as_f64(),
            Some(*expected.iter().min().unwrap() as f64 / 1e6)
        );
        assert_eq!(
            stats["Maximum"].as_f64(),
            Some(*expected.iter().max().unwrap() as f64 / 1e6)
        );
        let response = a
            .readings(&[("sensorID", &format!("s{sensor}")), ("limit", "1000")])
            .await;
        let body: Value = response.json().await.unwrap();
        let listed = body["readings"].as_array().unwrap();
        assert_eq!(listed.len(), seconds as usize);
        for (second, listed) in listed.iter().enumerate() {
            assert_eq!(
                listed["temperature"].as_f64(),
                Some(expected[second] as f64 / 1e6)
            );
        }
    }
}

/// Two instances on one table, each writing the same random readings at once (late, out of
/// order and repeated: the rollups' bucket closes and late deltas race) and each its own
/// interleaved ones; then every window, series bucket and sensor summary, asked of either
/// instance, equals a recomputation from `/api/readings`, exactly. A second round of late
/// readings for long-closed buckets follows, and the checks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_writing_the_same_and_interleaved_readings_keep_windows_exact() {
    use window_checks::{Rng, SENSORS, check_windows, get_json, stored, write_random_readings};
    let store = dynamodb_store();
    let a = Arc::new(spawn_app_on(&store).await);
    let b = Arc::new(spawn_app_on(&store).await);
    let write = |app: &Arc<helpers::TestApp>, seed: u64| {
        let app = app.clone();
        tokio::spawn(async move { write_random_readings(&app, &mut Rng(seed), &SENSORS).await })
    };
    // The same readings through both at once, and different ones through each.
    let writers = [
        write(&a, 0xd1),
        write(&b, 0xd1),
        write(&a, 0xa2),
        write(&b, 0xb3),
    ];
    for writer in writers {
        assert!(writer.await.expect("writer task") > 500);
    }
    let mut rng = Rng(0xc4ec);
    check_windows(&a, &mut rng, 30).await;
    check_windows(&b, &mut rng, 30).await;
    // More readings over the same days: most are late for buckets both instances closed.
    let writers = [write(&a, 0xe5), write(&b, 0xe5), write(&b, 0xf6)];
    for writer in writers {
        writer.await.expect("writer task");
    }
    check_windows(&b, &mut rng, 30).await;
    check_windows(&a, &mut rng, 30).await;
    // Sensor summaries: counts, first and latest (by reading time) as stored.
    let all = stored(&a).await;
    let page = get_json(&b, "/api/sensors", &[]).await;
    let listed = page["sensors"].as_array().expect("sensors");
    assert_eq!(listed.len(), SENSORS.len(), "{page}");
    for entry in listed {
        let readings = &all[entry["sensorID"].as_str().expect("id")];
        assert_eq!(entry["Count"], readings.len(), "{entry}");
        let (latest, value) = readings.last_key_value().expect("readings");
        let latest = chrono::DateTime::from_timestamp_micros(*latest).expect("time");
        let shown = chrono::DateTime::parse_from_rfc3339(entry["latest"]["time"].as_str().unwrap())
            .expect("RFC 3339");
        assert_eq!(shown, latest, "{entry}");
        assert_eq!(
            entry["latest"]["temperature"].as_f64(),
            Some(*value as f64 / 1e6)
        );
    }
}

#[tokio::test]
async fn two_instances_racing_on_one_identity_store_one_value_and_refuse_the_other() {
    let store = dynamodb_store();
    let a = Arc::new(spawn_app_on(&store).await);
    let b = Arc::new(spawn_app_on(&store).await);
    let mut races = Vec::new();
    for second in 0..40 {
        let (a, b) = (a.clone(), b.clone());
        races.push(tokio::spawn(async move {
            let via_a = reading("race", &time(second), 1.0);
            let via_b = reading("race", &time(second), 2.0);
            let (ra, rb) = tokio::join!(a.put_readings(&via_a), b.put_readings(&via_b));
            (ra.status(), rb.status())
        }));
    }
    let mut expected_sum = 0.0;
    for race in races {
        let (sa, sb) = race.await.unwrap();
        match (sa, sb) {
            (StatusCode::OK, StatusCode::CONFLICT) => expected_sum += 1.0,
            (StatusCode::CONFLICT, StatusCode::OK) => expected_sum += 2.0,
            other => panic!("exactly one of two racing values must win: {other:?}"),
        }
    }
    let stats = a.stats(Some("race")).await;
    assert_eq!(stats["Count"], 40);
    assert_eq!(stats["Average"].as_f64(), Some(expected_sum / 40.0));
    assert_eq!(a.stats(None).await["Count"], 40);
}

/// A TCP proxy in front of DynamoDB that can be cut: while paused it drops the connections it
/// carried and accepts new ones without ever answering (a black hole, the worst case).
struct Proxy {
    port: u16,
    paused: Arc<AtomicBool>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let paused = Arc::new(AtomicBool::new(false));
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accept = {
            let (paused, tasks, held) = (paused.clone(), tasks.clone(), held.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if paused.load(Ordering::SeqCst) {
                        held.lock().await.push(client);
                        continue;
                    }
                    let upstream = upstream.clone();
                    tasks.lock().await.push(tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    }));
                }
            })
        };
        Self {
            port,
            paused,
            tasks,
            held,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        for task in self.tasks.lock().await.drain(..) {
            task.abort();
        }
    }

    async fn resume(&self) {
        self.held.lock().await.clear();
        self.paused.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn upstream() -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL for DynamoDB Local");
    endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

async fn assert_unavailable(response: reqwest::Response, started: Instant, bound: Duration) {
    let elapsed = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        response.headers().contains_key("retry-after"),
        "503 without Retry-After"
    );
    assert!(elapsed < bound, "503 took {elapsed:?}, more than {bound:?}");
}

#[tokio::test]
async fn dynamodb_unreachable_gives_503_with_retry_after_quickly_then_recovers() {
    let store = dynamodb_store();
    let proxy = Proxy::start(upstream()).await;
    let mut config = store.config();
    config.dynamodb_endpoint_url = Some(proxy.url());
    config.dynamodb_timeout_ms = 1_500;
    let app = spawn_app_with(config).await;
    app.put_ok(&reading("p", &time(0), 20.0)).await;
    assert_eq!(app.get("/api/ready").await.status(), StatusCode::OK);

    proxy.pause().await;
    // The operation timeout (1.5 s) bounds every answer; allow scheduling slack.
    let bound = Duration::from_secs(4);
    let started = Instant::now();
    let response = app.put_readings(&reading("p", &time(1), 21.0)).await;
    assert_unavailable(response, started, bound).await;
    let started = Instant::now();
    assert_unavailable(app.get("/api/ready").await, started, bound).await;
    let started = Instant::now();
    assert_unavailable(app.get("/api/stats").await, started, bound).await;
    // Many writers at once while it is down: each still gets its 503 in bounded time (a write
    // that waited in the queue a whole timeout is answered without another try).
    let app = Arc::new(app);
    let started = Instant::now();
    let mut writers = Vec::new();
    for second in 2..34 {
        let app = app.clone();
        writers.push(tokio::spawn(async move {
            app.put_readings(&reading("p", &time(second), 22.0)).await
        }));
    }
    for writer in writers {
        let response = writer.await.unwrap();
        assert_unavailable(response, started, Duration::from_secs(10)).await;
    }
    let app = Arc::into_inner(app).expect("no other owner");

    proxy.resume().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.get("/api/ready").await.status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "readiness did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The request that got 503 is retried by the client and stored once.
    app.put_ok(&reading("p", &time(1), 21.0)).await;
    app.put_ok(&reading("p", &time(1), 21.0)).await;
    let stats = app.stats(None).await;
    assert_eq!(stats["Count"], 2, "{stats}");
    assert_eq!(stats["Average"].as_f64(), Some(20.5));
    app.stop().await;
}

#[tokio::test]
async fn dynamodb_unreachable_at_start_up_is_a_clear_error_in_bounded_time() {
    let store = dynamodb_store();
    // A port nobody listens on: bind one, then free it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = store.config();
    config.dynamodb_endpoint_url = Some(format!("http://127.0.0.1:{port}"));
    config.dynamodb_timeout_ms = 1_000;
    let started = Instant::now();
    let error = match Application::build(config).await {
        Ok(_) => panic!("started without DynamoDB"),
        Err(error) => error.to_string(),
    };
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(error.contains("cannot describe DynamoDB table"), "{error}");
}

#[tokio::test]
async fn restart_keeps_stats_readings_and_identity() {
    let store = dynamodb_store();
    let app = spawn_app_on(&store).await;
    app.put_ok(&json!([
        reading("r", &time(0), -1.25),
        reading("r", &time(1), 3.5),
        reading("q", &time(0), 0.1),
    ]))
    .await;
    let before = app.stats(None).await;
    app.stop().await;

    let app = spawn_app_on(&store).await;
    assert_eq!(app.stats(None).await, before);
    assert_eq!(app.stats(None).await["Count"], 3);
    assert_eq!(app.stats(Some("r")).await["Minimum"].as_f64(), Some(-1.25));
    let conflict = app.put_readings(&reading("r", &time(0), 9.0)).await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    app.put_ok(&reading("r", &time(0), -1.25)).await;
    assert_eq!(app.stats(None).await, before);
    app.stop().await;
}

/// With `RETENTION_RAW`, each reading item carries its TTL: its time plus the period, in Unix
/// seconds rounded up; without it, no TTL.
#[tokio::test]
async fn readings_carry_their_expiry_for_dynamodb_ttl() {
    let store = dynamodb_store();
    let mut config = store.config();
    config.retention_raw = telemetry::domain::retention::Period::parse("30d").unwrap();
    let app = spawn_app_with(config).await;
    let now = chrono::Utc::now().timestamp_micros();
    let at = chrono::DateTime::from_timestamp_micros(now - now.rem_euclid(1_000_000) + 250_000)
        .unwrap()
        .to_rfc3339();
    app.put_ok(&reading("ttl", &at, 1.0)).await;
    app.stop().await;
    let app = spawn_app_on(&store).await;
    app.put_ok(&reading("kept", &time(0), 1.0)).await;
    app.stop().await;
    let client = sdk_client().await;
    let expiry = |sensor: &'static str| {
        let client = client.clone();
        let table = store.table.clone();
        async move {
            let items = client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(
                    ":pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(format!("reading#{sensor}")),
                )
                .send()
                .await
                .expect("query")
                .items
                .unwrap_or_default();
            assert_eq!(items.len(), 1);
            items[0]
                .get("expires_at")
                .map(|value| value.as_n().expect("a number").parse::<i64>().unwrap())
        }
    };
    let seconds = now.div_euclid(1_000_000);
    assert_eq!(expiry("ttl").await, Some(seconds + 30 * 86_400 + 1));
    assert_eq!(expiry("kept").await, None);
}

async fn sdk_client() -> aws_sdk_dynamodb::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&config)
}

#[tokio::test]
async fn a_table_with_the_wrong_key_schema_stops_start_up() {
    let store = dynamodb_store();
    sdk_client()
        .await
        .create_table()
        .table_name(&store.table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create a table of the wrong shape");
    let error = match Application::build(store.config()).await {
        Ok(_) => panic!("started on a table with the wrong key schema"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("wrong key schema"), "{error}");
    assert!(error.contains("\"pk\""), "{error}");
}

/// A table as the previous release leaves it: its readings (none marked folded), sensor items
/// and shards with `c, s, mn, mx` only, no registry, no marker. The app's own start-up created
/// the table first (and put the marker, which the previous release never wrote: deleted).
async fn previous_release_table(store: &TestStore, readings: &[previous_release::Old]) {
    previous_release_table_with_gone(store, readings, &[]).await;
}

/// [`previous_release_table`], where the readings `gone` were deleted by their TTL since.
async fn previous_release_table_with_gone(
    store: &TestStore,
    readings: &[previous_release::Old],
    gone: &[previous_release::Old],
) {
    spawn_app_on(store).await.stop().await;
    let client = sdk_client().await;
    let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.into());
    client
        .delete_item()
        .table_name(&store.table)
        .key("pk", s("meta"))
        .key("sk", s("rollups"))
        .send()
        .await
        .expect("marker deleted");
    previous_release::write_table(&client, &store.table, readings, gone).await;
}

/// The old sensors of these tests; `z` is left for readings written by this version.
const OLD_SENSORS: [&str; 3] = ["107", "a b", "gw/3"];

/// Waits (bounded) until the rollup build is done: `/api/sensors` answers 200. Every 503
/// meanwhile must say why.
async fn await_build(app: &helpers::TestApp) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let response = app.get("/api/sensors").await;
        if response.status() == StatusCode::OK {
            return;
        }
        let body = helpers::assert_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("previous version"),
            "{body}"
        );
        assert!(Instant::now() < deadline, "the rollup build did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_table_of_the_previous_release_builds_its_rollups_and_answers_windows_exactly() {
    let store = dynamodb_store();
    let old = previous_release::readings(0x01d7_ab1e, 600, &OLD_SENSORS);
    previous_release_table(&store, &old).await;
    let client = sdk_client().await;
    // Another instance holds the build's lease: the build cannot start yet.
    previous_release::hold_build_lease(&client, &store.table, true).await;
    let app = spawn_app_on(&store).await;
    assert_eq!(
        app.get("/api/ready").await.status(),
        StatusCode::OK,
        "ready at once"
    );
    let values: Vec<i64> = old.iter().map(|(_, _, v)| *v).collect();
    assert_eq!(app.stats(None).await, window_checks::expected(&values));
    for path in [
        "/api/stats?from=2021-10-04T00:00:00.5Z&to=2021-10-05T00:00:00Z",
        "/api/stats?from=2021-10-04T00:00:00Z&sensorID=107",
        "/api/series?from=2021-10-04T00:00:00Z&to=2021-10-05T00:00:00Z&step=1h",
        "/api/sensors",
        "/api/sensors/107",
    ] {
        let response = app.get(path).await;
        assert!(response.headers().contains_key("retry-after"), "{path}");
        let body = helpers::assert_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("previous version"), "{path}: {body}");
        assert!(detail.contains("readings left"), "{path}: {body}");
    }
    // New readings while the build waits, in the old readings' buckets, of an old sensor and
    // of a new one: counted once, by their own writes.
    let mut rng = window_checks::Rng(0x5eed_0021);
    window_checks::write_random_readings(&app, &mut rng, &["z"]).await;
    app.put_ok(&reading("107", "2021-10-04T01:00:00.25Z", 21.5))
        .await;
    previous_release::hold_build_lease(&client, &store.table, false).await;
    await_build(&app).await;
    let stored = window_checks::stored(&app).await;
    let all: Vec<i64> = stored.values().flat_map(|r| r.values().copied()).collect();
    assert_eq!(all.len(), old.len() + stored["z"].len() + 1);
    assert_eq!(app.stats(None).await, window_checks::expected(&all));
    window_checks::check_sensors(&app, &stored).await;
    window_checks::check_windows(&app, &mut rng, 40).await;
    // And after: new readings of every sensor (at a fraction no old reading has: readings
    // are immutable), in old and new buckets, windows still exact.
    window_checks::write_random_readings(&app, &mut window_checks::Rng(0x5eed_0022), &["z"]).await;
    for (i, sensor) in OLD_SENSORS.iter().enumerate() {
        let batch: Vec<Value> = (0..20)
            .map(|k| {
                let time = format!("2021-10-0{}T01:{:02}:{:02}.654321Z", 4 + k % 3, k, i * 7);
                reading(sensor, &time, f64::from(k) - 3.5)
            })
            .collect();
        app.put_ok(&Value::Array(batch)).await;
    }
    window_checks::check_windows(&app, &mut rng, 20).await;
    window_checks::check_sensors(&app, &window_checks::stored(&app).await).await;
}

/// A rolling deploy: instances of the previous release keep writing the table while this
/// version runs on it, during its build and after the build is done. Windows answer 503,
/// never a wrong answer, until the build (woken by the queries once it is done) has folded
/// those readings too.
#[tokio::test]
async fn readings_of_previous_release_instances_still_writing_are_folded_and_never_miscounted() {
    let store = dynamodb_store();
    let old = previous_release::readings(0x00dd_ba11, 300, &OLD_SENSORS);
    previous_release_table(&store, &old).await;
    let client = sdk_client().await;
    previous_release::hold_build_lease(&client, &store.table, true).await;
    let app = spawn_app_on(&store).await;
    let taken: std::collections::HashSet<(&str, i64)> =
        old.iter().map(|(s, t, _)| (s.as_str(), *t)).collect();
    let late = previous_release::readings(0x1a7e, 340, &OLD_SENSORS);
    let late: Vec<_> = late
        .into_iter()
        .filter(|(s, t, _)| !taken.contains(&(s.as_str(), *t)))
        .take(40)
        .collect();
    // Interleaved with writes of this version on the same sensors and shards: the first
    // half before the build starts and while it runs, the second half once it is done.
    let write = |i: usize| {
        let (client, table, app, late) = (&client, &store.table, &app, &late);
        async move {
            previous_release::write_one(client, table, &late[i], i % 16).await;
            let time = format!("2021-10-05T12:00:{i:02}Z");
            app.put_ok(&reading(OLD_SENSORS[i % 3], &time, i as f64))
                .await;
        }
    };
    for i in 0..20 {
        if i == 10 {
            previous_release::hold_build_lease(&client, &store.table, false).await;
        }
        write(i).await;
    }
    windows_exact_once_folded(&app, old.len() + 2 * 20).await;
    for i in 20..40 {
        write(i).await;
    }
    let stored = windows_exact_once_folded(&app, old.len() + 2 * 40).await;
    window_checks::check_sensors(&app, &stored).await;
    window_checks::check_windows(&app, &mut window_checks::Rng(0xfeed), 30).await;
}

/// Polls a few windows until all answer (bounded): each answer meanwhile is 503 or exactly
/// the recomputation from the `stored` readings (`count` of them). Returns them.
async fn windows_exact_once_folded(
    app: &helpers::TestApp,
    count: usize,
) -> BTreeMap<String, BTreeMap<i64, i64>> {
    let stored = window_checks::stored(app).await;
    assert_eq!(stored.values().map(BTreeMap::len).sum::<usize>(), count);
    let in_range = |sensor: Option<&str>, from: i64, to: i64| -> Value {
        let values: Vec<i64> = stored
            .iter()
            .filter(|(s, _)| sensor.is_none_or(|x| x == s.as_str()))
            .flat_map(|(_, r)| r.range(from..to).map(|(_, v)| *v))
            .collect();
        window_checks::expected(&values)
    };
    const DAY0: i64 = 1_633_305_600_000_000;
    let (day, hour) = (86_400_000_000, 3_600_000_000);
    let windows = [
        (
            "/api/stats?from=2021-10-04T00:00:00.5Z&to=2021-10-06T00:00:00Z",
            None,
            DAY0 + 500_000,
            DAY0 + 2 * day,
        ),
        (
            "/api/stats?from=2021-10-04T00:00:00Z&to=2021-10-07T00:00:00Z&sensorID=107",
            Some("107"),
            DAY0,
            DAY0 + 3 * day,
        ),
        (
            "/api/stats?from=2021-10-04T01:00:00Z&to=2021-10-04T01:10:00Z&sensorID=gw%2F3",
            Some("gw/3"),
            DAY0 + hour,
            DAY0 + hour + 600_000_000,
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut pending = false;
        for (path, sensor, from, to) in &windows {
            let response = app.get(path).await;
            if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                pending = true;
                continue;
            }
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                body,
                in_range(*sensor, *from, *to),
                "{path}: a wrong answer"
            );
        }
        if !pending {
            break;
        }
        assert!(Instant::now() < deadline, "the readings were never folded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_time = in_range(None, i64::MIN, i64::MAX);
    assert_eq!(app.stats(None).await, all_time, "all-time");
    stored
}

/// A build stopped in the middle of a pass (its lease taken by another instance that then
/// stops, as in a crash; this instance is restarted meanwhile) continues from the stored
/// cursor, and still folds every reading exactly once.
#[tokio::test]
async fn an_interrupted_rollup_build_resumes_and_counts_every_reading_once() {
    let store = dynamodb_store();
    let old = previous_release::readings(0x00c0_ffee, 1_500, &OLD_SENSORS);
    previous_release_table(&store, &old).await;
    let client = sdk_client().await;
    let app = spawn_app_on(&store).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !previous_release::take_build_lease_mid_pass(&client, &store.table).await {
        assert!(
            Instant::now() < deadline,
            "no pass with a stored cursor seen"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.stop().await;
    assert!(
        shards_count_unfolded_readings(&client, &store.table).await,
        "the pass was stopped before its end"
    );
    // The other instance is gone: its lease expires.
    previous_release::hold_build_lease(&client, &store.table, false).await;
    let app = spawn_app_on(&store).await;
    await_build(&app).await;
    let stored = window_checks::stored(&app).await;
    let count: usize = stored.values().map(BTreeMap::len).sum();
    assert_eq!(count, old.len());
    let values: Vec<i64> = old.iter().map(|(_, _, v)| *v).collect();
    assert_eq!(app.stats(None).await, window_checks::expected(&values));
    window_checks::check_sensors(&app, &stored).await;
    window_checks::check_windows(&app, &mut window_checks::Rng(0xabc), 30).await;
}

/// Readings of the previous release that DynamoDB's TTL deleted before the build could fold
/// them are written off: the build ends, windows answer exactly for the readings stored, and
/// all-time stats and sensor counts still count the deleted ones (as for any deleted reading).
#[tokio::test]
async fn readings_deleted_before_the_build_folded_them_are_written_off() {
    let store = dynamodb_store();
    let all = previous_release::readings(0x7711, 400, &OLD_SENSORS);
    let (gone, kept): (Vec<_>, Vec<_>) = all.iter().cloned().partition(|(_, t, _)| t % 7 == 3);
    let (gone, kept): (Vec<_>, Vec<_>) = if gone.is_empty() {
        (all[..40].to_vec(), all[40..].to_vec())
    } else {
        (gone, kept)
    };
    previous_release_table_with_gone(&store, &kept, &gone).await;
    let app = spawn_app_on(&store).await;
    await_build(&app).await;
    let stored = window_checks::stored(&app).await;
    let count: usize = stored.values().map(BTreeMap::len).sum();
    assert_eq!(count, kept.len());
    let values: Vec<i64> = all.iter().map(|(_, _, v)| *v).collect();
    assert_eq!(app.stats(None).await, window_checks::expected(&values));
    for sensor in OLD_SENSORS {
        let path = format!(
            "/api/sensors/{}",
            sensor.replace(' ', "%20").replace('/', "%2F")
        );
        let summary = window_checks::get_json(&app, &path, &[]).await;
        let counted = all.iter().filter(|(s, _, _)| s == sensor).count();
        assert_eq!(summary["Count"], counted, "{sensor}");
    }
    window_checks::check_windows(&app, &mut window_checks::Rng(0x90e), 30).await;
}

/// Whether the shards still count readings no rollup holds (`Σc > Σrc`).
async fn shards_count_unfolded_readings(client: &aws_sdk_dynamodb::Client, table: &str) -> bool {
    let shards = client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S("aggregate#total".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("shards read");
    let number =
        |item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
         name: &str| {
            item.get(name)
                .map_or(0, |v| v.as_n().unwrap().parse::<i64>().unwrap())
        };
    let (c, rc) = shards.items().iter().fold((0, 0), |(c, rc), item| {
        (c + number(item, "c"), rc + number(item, "rc"))
    });
    c > rc
}

/// A rolling deploy: an instance of the previous release `ADD`s to a shard this instance
/// knows (its cached state, one version behind nothing: the `ADD` leaves `v` alone). This
/// instance's next write to that shard must not overwrite the `ADD`: every acknowledged
/// reading stays counted.
#[tokio::test]
async fn a_previous_version_add_between_two_writes_is_never_overwritten() {
    let store = dynamodb_store();
    let app = spawn_app_on(&store).await;
    app.put_ok(&reading("mix", "2021-10-04 09:00:00", 1.0))
        .await;
    // The shard the app wrote (and whose state it now caches): the only one with a count.
    let client = sdk_client().await;
    let shards = client
        .query()
        .table_name(&store.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S("aggregate#total".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("shards read");
    let written: Vec<usize> = shards
        .items()
        .iter()
        .filter(|item| item.get("c").is_some_and(|c| c.as_n().unwrap() != "0"))
        .map(|item| {
            item["sk"].as_s().unwrap()["shard#".len()..]
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(written.len(), 1, "one shard written: {written:?}");
    let old = ("mix".to_owned(), 1_633_338_001_000_000, 2_000_000); // 09:00:01, 2 °C
    previous_release::write_one(&client, &store.table, &old, written[0]).await;
    // A lightly loaded instance keeps leasing its preferred shard: the same one, known stale.
    app.put_ok(&reading("mix", "2021-10-04 09:00:02", 3.0))
        .await;
    let all = json!({"Average": 2.0, "Maximum": 3.0, "Minimum": 1.0, "Count": 3});
    assert_eq!(app.stats(None).await, all, "over all sensors");
    assert_eq!(app.stats(Some("mix")).await, all, "the sensor");
}

#[tokio::test]
async fn a_missing_table_stops_start_up_unless_creation_is_allowed() {
    let store = dynamodb_store();
    let mut config = store.config();
    config.dynamodb_create_table = false;
    let error = match Application::build(config).await {
        Ok(_) => panic!("started without a table"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("does not exist"), "{error}");
    assert!(error.contains("DYNAMODB_CREATE_TABLE"), "{error}");
}

#[tokio::test]
async fn a_thousand_readings_cost_a_few_dozen_requests_and_the_naive_baseline_works() {
    let store = dynamodb_store();
    // The request count is the point here, not latency: one 1,000-reading put of 100-action
    // transactions took 7.5–10 s through DynamoDB Local on the loaded 2-core machine, past
    // the default 5-s operation timeout.
    let mut config = store.config();
    config.dynamodb_timeout_ms = 60_000;
    let dynamo = DynamoStore::open(&dynamodb_settings(&config), unobserved())
        .await
        .expect("store opens");
    let body = Value::Array(
        (0..1_000u32)
            .map(|i| reading(&format!("n{}", i % 10), &time(i), f64::from(i) / 10.0))
            .collect(),
    );
    let batch = Batch::parse(&body).unwrap();
    let before = dynamo.request_count();
    let outcome = dynamo.put_readings(batch.clone()).await.unwrap();
    assert_eq!(
        outcome,
        PutOutcome::Stored {
            stored: 1_000,
            duplicates: 0
        }
    );
    let used = dynamo.request_count() - before;
    // 11 BatchGetItem (1,000 readings + 10 aggregates), about 20 transactions (each sensor's
    // readings span 17 minutes, so a chunk carries a minute-rollup delta per minute for its
    // sensors and its shard, and is split when that passes 100 actions), up to 8 shard reads
    // (their first use) and a rollup pre-read for each part of a sensor committed after its
    // later readings (late for that sensor's item): 52 when measured.
    assert!(used <= 60, "{used} DynamoDB requests for 1,000 readings");
    eprintln!("requests per reading: {:.4}", used as f64 / 1_000.0);
    // A retry of the whole batch is all duplicates and costs only the pre-check.
    let before = dynamo.request_count();
    let outcome = dynamo.put_readings(batch).await.unwrap();
    assert_eq!(
        outcome,
        PutOutcome::Stored {
            stored: 0,
            duplicates: 1_000
        }
    );
    assert!(dynamo.request_count() - before <= 11);
    assert_eq!(dynamo.stats(None).await.unwrap().count, 1_000);

    let one: Reading = Batch::parse(&reading("naive", &time(0), 1.0))
        .unwrap()
        .readings
        .remove(0)
        .1;
    let before = dynamo.request_count();
    dynamo.naive_put(&one).await.unwrap();
    assert_eq!(dynamo.request_count() - before, 1);
}

/// Not a correctness test: the figures the benchmark notes quote. Run it with
/// `scripts/dynamodb-tests.sh throughput -- --ignored --nocapture` (add `--release` for
/// optimised figures). 64 writers, `THROUGHPUT_SECONDS` (default 5) per scenario: single-reading
/// PUTs and 50-reading PUTs through the service, and the naive one-`PutItem`-per-reading
/// baseline (no duplicate check, no aggregates) straight against the table. A short warm-up
/// first (DynamoDB Local is a JVM), then two rounds with the scenarios interleaved, so a busy
/// machine weighs on every scenario alike.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn throughput_64_writers_against_the_naive_baseline() {
    let store = dynamodb_store();
    let seconds = std::env::var("THROUGHPUT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let app = Application::build(store.config())
        .await
        .expect("the app starts");
    let storage = app.storage().clone();
    let address = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(app.run_until(std::future::pending::<()>()));
    let naive = Arc::new(
        DynamoStore::open(&dynamodb_settings(&store.config()), unobserved())
            .await
            .expect("store opens"),
    );

    let warm_up = Duration::from_secs(2);
    let _ = through_service(&address, 1, warm_up, 0).await;
    let _ = naive_baseline(&naive, warm_up, 0).await;
    let run_for = Duration::from_secs(seconds);
    for round in 1..=2 {
        for per_request in [1u32, 50] {
            let before = storage.dynamodb_request_count().unwrap();
            let (readings, elapsed) = through_service(&address, per_request, run_for, round).await;
            let requests = storage.dynamodb_request_count().unwrap() - before;
            eprintln!(
                "round {round}: service, {WRITERS} writers, {per_request} reading(s)/PUT: \
                 {readings} readings in {elapsed:.1} s = {:.0} readings/s, \
                 {:.3} DynamoDB requests/reading",
                readings as f64 / elapsed,
                requests as f64 / readings as f64
            );
        }
        let (readings, elapsed) = naive_baseline(&naive, run_for, round).await;
        eprintln!(
            "round {round}: naive baseline, {WRITERS} writers, one PutItem per reading: \
             {readings} readings in {elapsed:.1} s = {:.0} readings/s, 1 DynamoDB request/reading",
            readings as f64 / elapsed
        );
    }
    server.abort();
}

const WRITERS: u32 = 64;

/// A distinct instant for the n-th reading of a writer: readings never repeat across runs.
fn nth_time(run: u32, n: u32) -> String {
    format!(
        "{:04}-01-{:02}T{:02}:{:02}:{:02}Z",
        2000 + run,
        1 + n / 86_400 % 28,
        n / 3_600 % 24,
        n / 60 % 60,
        n % 60
    )
}

/// `WRITERS` clients PUT `per_request` readings at a time for `run_for`: (readings, seconds).
async fn through_service(
    address: &str,
    per_request: u32,
    run_for: Duration,
    run: u32,
) -> (u64, f64) {
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let url = format!("{address}/api/temperature");
        let client = reqwest::Client::new();
        writers.push(tokio::spawn(async move {
            let mut sent = 0u32;
            while started.elapsed() < run_for {
                let body = Value::Array(
                    (0..per_request)
                        .map(|i| {
                            let n = sent + i;
                            let sensor = format!("w{per_request}-{writer}");
                            reading(&sensor, &nth_time(run, n), f64::from(n % 400) / 8.0)
                        })
                        .collect(),
                );
                let response = client.put(&url).json(&body).send().await.expect("sent");
                assert_eq!(response.status(), StatusCode::OK);
                sent += per_request;
            }
            sent
        }));
    }
    let mut total = 0u64;
    for writer in writers {
        total += u64::from(writer.await.unwrap());
    }
    (total, started.elapsed().as_secs_f64())
}

/// `WRITERS` tasks each calling [`DynamoStore::naive_put`] back to back: (readings, seconds).
async fn naive_baseline(naive: &Arc<DynamoStore>, run_for: Duration, run: u32) -> (u64, f64) {
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let naive = naive.clone();
        writers.push(tokio::spawn(async move {
            let mut sent = 0u32;
            while started.elapsed() < run_for {
                let body = reading(&format!("naive-{writer}"), &nth_time(run, sent), 1.0);
                let one = Batch::parse(&body).unwrap().readings.remove(0).1;
                naive.naive_put(&one).await.expect("PutItem");
                sent += 1;
            }
            sent
        }));
    }
    let mut total = 0u64;
    for writer in writers {
        total += u64::from(writer.await.unwrap());
    }
    (total, started.elapsed().as_secs_f64())
}

/// Not a correctness test: the write units per reading BENCHMARKS.md quotes ("DynamoDB: write
/// units per reading"), counted from the requests sent ([`DynamoStore::write_units`]; DynamoDB
/// Local's `ConsumedCapacity` is not faithful for transactions). Run it with
/// `scripts/dynamodb-tests.sh write_units -- --ignored --nocapture`. Three loads, each on its own
/// sensors of one table, straight against the store (no HTTP):
/// - a 1 Hz fleet: 100 sensors, each sending one reading a second (single-reading writes, the
///   sensors' phases spread over the second) for `FLEET_SECONDS` (default 60) seconds;
/// - a gateway: 60 batches, each one reading of each of 100 sensors (one second apart);
/// - one sensor: 30 batches of 100 consecutive seconds of one sensor.
///
/// Readings start at 09:00:30, so each minute of them crosses one minute's end (the rollup
/// writes are not understated). Printed: write units per reading, the part of them that
/// rollup and sensor-registry actions are, and the part spent on cancelled transactions.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn write_units_per_reading_of_a_fleet_a_gateway_and_one_sensor() {
    let store = dynamodb_store();
    let dynamo = Arc::new(
        DynamoStore::open(&dynamodb_settings(&store.config()), unobserved())
            .await
            .expect("store opens"),
    );
    let seconds: u32 = std::env::var("FLEET_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    // From 09:00:30, so that every minute of readings crosses a minute's end.
    let at = |second: u32| {
        let second = second + 9 * 3_600 + 30;
        format!(
            "2021-10-04T{:02}:{:02}:{:02}Z",
            second / 3_600 % 24,
            second / 60 % 60,
            second % 60
        )
    };
    let put = |dynamo: Arc<DynamoStore>, body: Value| async move {
        let outcome = dynamo.put_readings(Batch::parse(&body).unwrap()).await;
        assert!(
            matches!(outcome, Ok(PutOutcome::Stored { duplicates: 0, .. })),
            "{outcome:?}"
        );
    };
    let counters = |dynamo: &DynamoStore| {
        let (rollups, cancelled) = dynamo.write_unit_breakdown();
        [
            dynamo.write_units(),
            dynamo.request_count(),
            rollups,
            cancelled,
        ]
    };
    let measure = |name: &str, before: [u64; 4], readings: u64, dynamo: &DynamoStore| {
        let now = counters(dynamo);
        let per = |i: usize| (now[i] - before[i]) as f64 / readings as f64;
        eprintln!(
            "{name}: {} write units for {readings} readings = {:.3} WU/reading \
             (rollup and registry actions {:.3}, cancelled transactions {:.3}; \
             {:.3} DynamoDB requests/reading)",
            now[0] - before[0],
            per(0),
            per(2),
            per(3),
            per(1)
        );
    };

    let before = counters(&dynamo);
    let started = Instant::now();
    let mut sensors = Vec::new();
    for sensor in 0..100u32 {
        let dynamo = dynamo.clone();
        sensors.push(tokio::spawn(async move {
            let phase = Duration::from_millis(u64::from(sensor) * 10);
            for second in 0..seconds {
                let due = started + Duration::from_secs(u64::from(second)) + phase;
                tokio::time::sleep_until(due.into()).await;
                let body = reading(&format!("f{sensor}"), &at(second), f64::from(second) / 4.0);
                put(dynamo.clone(), body).await;
            }
        }));
    }
    for sensor in sensors {
        sensor.await.expect("sensor task");
    }
    measure(
        "1 Hz fleet (100 sensors, single-reading writes)",
        before,
        u64::from(100 * seconds),
        &dynamo,
    );

    let before = counters(&dynamo);
    for second in 0..60u32 {
        let body = Value::Array(
            (0..100u32)
                .map(|s| reading(&format!("g{s}"), &at(second), f64::from(s) / 8.0))
                .collect(),
        );
        put(dynamo.clone(), body).await;
    }
    measure(
        "gateway batch (100 sensors, one reading each)",
        before,
        6_000,
        &dynamo,
    );

    let before = counters(&dynamo);
    for batch in 0..30u32 {
        let body = Value::Array(
            (0..100u32)
                .map(|i| reading("one", &at(batch * 100 + i), f64::from(i) / 8.0))
                .collect(),
        );
        put(dynamo.clone(), body).await;
    }
    measure(
        "one-sensor batch (100 consecutive seconds)",
        before,
        3_000,
        &dynamo,
    );
}

/// **Measurement, run by hand** (`scripts/dynamodb-tests.sh --ignored
/// write_units_of_the_rollup_build`): the write units the rollup build spends per reading of
/// the previous release, counted from the requests as [`DynamoStore::write_units`] does
/// (BENCHMARKS.md). The table: a fleet of 100 sensors at 1 Hz for a minute, from 09:00:30
/// (so each sensor's readings cross a minute's end), and one sensor with 3,000 consecutive
/// seconds.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn write_units_of_the_rollup_build_per_previous_release_reading() {
    let client = sdk_client().await;
    let at = |second: i64| (1_633_338_000 + 30 + second) * 1_000_000;
    let fleet: Vec<previous_release::Old> = (0..100)
        .flat_map(|s| (0..60).map(move |t| (format!("f{s}"), at(t), t * 250_000)))
        .collect();
    let one: Vec<previous_release::Old> = (0..3_000)
        .map(|t| ("one".to_owned(), at(t), t * 125_000))
        .collect();
    for (name, readings) in [("1 Hz fleet, 100 sensors", fleet), ("one sensor", one)] {
        let store = dynamodb_store();
        previous_release_table(&store, &readings).await;
        let dynamo = DynamoStore::open(&dynamodb_settings(&store.config()), unobserved())
            .await
            .expect("store opens");
        let started = Instant::now();
        let deadline = started + Duration::from_secs(600);
        while shards_count_unfolded_readings(&client, &store.table).await {
            assert!(Instant::now() < deadline, "the build did not finish");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let units = dynamo.write_units();
        let (rollups, cancelled) = dynamo.write_unit_breakdown();
        let per = |n: u64| n as f64 / readings.len() as f64;
        eprintln!(
            "rollup build, {name}: {units} write units for {} readings = {:.3} WU/reading \
             (rollup and registry actions {:.3}, cancelled {:.3}; {:.3} requests/reading; \
             {:.1} s on DynamoDB Local)",
            readings.len(),
            per(units),
            per(rollups),
            per(cancelled),
            per(dynamo.request_count()),
            started.elapsed().as_secs_f64()
        );
    }
}
