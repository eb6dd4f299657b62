//! The DynamoDB series, run when `BENCH_DYNAMODB_ENDPOINT=http://127.0.0.1:PORT` names a
//! DynamoDB Local (`scripts/bench-dynamodb.sh` starts one and sets it, with the AWS variables
//! of `scripts/dynamodb-local.sh env PORT`, which both the server and this process need):
//! - durable single-reading `PUT` and `PUT` batches of 100 at 64 clients, through the real
//!   server (`STORAGE=dynamodb`, a fresh `TABLE_NAME`, `DYNAMODB_CREATE_TABLE=true`), with the
//!   DynamoDB calls per reading read from the server's `telemetry_dynamodb_requests_total`;
//! - the naive baseline in the same run: 64 tasks in this process, each calling
//!   `DynamoStore::naive_put` (one unconditional `PutItem` per reading, no duplicate check, no
//!   aggregate) back to back on a table of its own; calls from `DynamoStore::request_count`;
//! - `GET /api/stats` at 16 clients after 10^3 and 10^4 readings (a third table).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use telemetry::config::Config;
use telemetry::storage::DynamoStore;
use telemetry::storage::group_commit::unobserved;

use crate::load::{histogram, record, single_reading_batch};
use crate::measure::Measurement;
use crate::options::Options;
use crate::report::{find, print_emulator_cpu, print_row, print_store_requests, unix_time};
use crate::scenarios::{Baseline, Series, StatsSeries, put_batch, put_single};
use crate::server::{Backend, dynamodb_local_cpu};

const NAIVE: &str = "naive PutItem x1 (64 tasks)";

/// The DynamoDB series, or nothing (one line says why) without a usable DynamoDB Local.
pub fn scenarios(options: &Options) -> Vec<Measurement> {
    let Some(backend) = backend() else {
        return Vec::new();
    };
    // DynamoDB Local is a JVM: give its JIT a longer warm-up before each scenario.
    let options = &Options {
        warmup: options.warmup.max(2.0),
        ..options.clone()
    };
    let series = Series {
        backend,
        throughput: vec![put_single(64), put_batch(64, 100, "b")],
        baselines: vec![Baseline {
            name: NAIVE,
            run: |backend, options, runtime| runtime.block_on(naive_baseline(backend, 64, options)),
        }],
        stats: StatsSeries {
            sizes: &[1_000, 10_000],
            batch: 100,
            scan_baseline: false,
        },
    };
    let runtime = options.client_runtime();
    let results = series.run(options, &runtime);
    drop(runtime);
    print_summary(&results);
    results
}

/// The backend `BENCH_DYNAMODB_ENDPOINT` and the AWS variables describe, on a fresh table.
fn backend() -> Option<Backend> {
    const HOW: &str = "run scripts/bench-dynamodb.sh, or set BENCH_DYNAMODB_ENDPOINT=\
                       http://127.0.0.1:PORT and eval \"$(scripts/dynamodb-local.sh env PORT)\"";
    let Some(endpoint) = std::env::var("BENCH_DYNAMODB_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
    else {
        eprintln!("DynamoDB scenarios skipped (BENCH_DYNAMODB_ENDPOINT not set): {HOW}");
        return None;
    };
    if !endpoint.starts_with("http://127.0.0.1:") {
        eprintln!(
            "DynamoDB scenarios skipped: BENCH_DYNAMODB_ENDPOINT must be http://127.0.0.1:PORT \
             (DynamoDB Local binds every interface; clients only use loopback), got {endpoint}"
        );
        return None;
    }
    let missing: Vec<&str> = ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .into_iter()
        .filter(|name| std::env::var_os(name).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "DynamoDB scenarios skipped: {} not set: {HOW}",
            missing.join(", ")
        );
        return None;
    }
    Some(Backend::Dynamodb {
        table: format!("bench-{}-{}", unix_time(), std::process::id()),
        endpoint,
    })
}

/// `clients` tasks in this process, each calling `DynamoStore::naive_put` back to back for
/// `duration`: the histogram of calls, the failed calls.
async fn naive_writers(
    store: &Arc<DynamoStore>,
    clients: usize,
    duration: Duration,
    prefix: &'static str,
) -> (Histogram<u64>, u64) {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for task in 0..clients {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram = histogram();
            let mut errors = 0u64;
            let mut seq = 0u64;
            while Instant::now() < deadline {
                let (_, reading) = single_reading_batch(&format!("{prefix}-{task}"), seq)
                    .readings
                    .remove(0);
                let began = Instant::now();
                if store.naive_put(&reading).await.is_err() {
                    errors += 1;
                }
                record(&mut histogram, began);
                seq += 1;
            }
            (histogram, errors)
        }));
    }
    let mut total = histogram();
    let mut errors = 0;
    for task in tasks {
        let (h, e) = task.await.expect("naive writer");
        total.add(h).expect("histogram");
        errors += e;
    }
    (total, errors)
}

/// The naive baseline: one unconditional `PutItem` per reading from `clients` tasks.
async fn naive_baseline(backend: &Backend, clients: usize, options: &Options) -> Measurement {
    let Backend::Dynamodb { table, endpoint } = backend else {
        unreachable!("the naive baseline is DynamoDB-only")
    };
    let config = Config::from_vars(
        [
            ("STORAGE", "dynamodb"),
            ("TABLE_NAME", table.as_str()),
            ("DYNAMODB_CREATE_TABLE", "true"),
            ("DYNAMODB_ENDPOINT_URL", endpoint.as_str()),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned())),
    )
    .expect("DynamoDB configuration");
    let store = Arc::new(
        DynamoStore::open(&telemetry::app::dynamodb_settings(&config), unobserved())
            .await
            .expect("open the naive baseline's table"),
    );
    let warmup = Duration::from_secs_f64(options.warmup);
    let _ = naive_writers(&store, clients, warmup, "nw").await;
    let before = store.request_count();
    let emulator_cpu = dynamodb_local_cpu();
    let started = Instant::now();
    let measured = Duration::from_secs_f64(options.seconds);
    let (histogram, errors) = naive_writers(&store, clients, measured, "n").await;
    let seconds = started.elapsed().as_secs_f64();
    let calls = store.request_count() - before;
    let readings = histogram.len() - errors;
    let mut m = Measurement::in_process(backend, NAIVE.into(), clients, &histogram, seconds, 1);
    m.errors = errors;
    m.items_per_second = readings as f64 / seconds;
    print_row(&m);
    if let Some((before, after)) = emulator_cpu.zip(dynamodb_local_cpu()) {
        let cores = (after - before) / seconds;
        m.dynamodb_local_cpu_cores = Some(cores);
        print_emulator_cpu(cores);
    }
    if readings > 0 {
        let per_reading = calls as f64 / readings as f64;
        m.dynamodb_requests_per_reading = Some(per_reading);
        print_store_requests(calls, readings, per_reading, "DynamoStore::request_count");
    }
    m
}

fn print_summary(results: &[Measurement]) {
    let row = |scenario: &str| {
        find(results, "dynamodb", scenario).map_or("not run".to_owned(), |m| {
            format!(
                "{:.0} readings/s, {} DynamoDB requests/reading, p99 {:.1} ms",
                m.items_per_second,
                m.dynamodb_requests_per_reading
                    .map_or("-".to_owned(), |r| format!("{r:.3}")),
                m.p99_ms
            )
        })
    };
    println!();
    println!(
        "dynamodb: service, 64 clients, 1 reading/PUT:    {}",
        row("PUT /api/temperature x1 (64 clients)")
    );
    println!(
        "dynamodb: service, 64 clients, 100 readings/PUT: {}",
        row("PUT /api/temperature x100 (64 clients)")
    );
    println!(
        "dynamodb: naive PutItem per reading, 64 tasks:   {}",
        row(NAIVE)
    );
}
