//! HTTP load benchmark (`harness = false`): the real service against N keep-alive clients.
//!
//! The server is the release binary (`target/release/telemetry`, built by `cargo bench`) run as
//! a child process on 127.0.0.1 with `PORT=0` and a fresh temporary `DATA_DIR`
//! ([`server`]). Each client task holds one HTTP/1.1 keep-alive connection and sends requests
//! back to back ([`load`]); each scenario runs for a fixed time after a short warm-up, and
//! stops early at a request cap ([`measure`]). The table and the JSON file: [`report`].
//!
//! Scenarios ([`scenarios::embedded`]): `GET /api` at 64 clients (the HTTP ceiling of the same
//! server); durable single-reading `PUT /api/temperature` at 1, 16 and 64 clients; `PUT`
//! batches of 100 and 1,000 readings at 16 clients, next to gzip line protocol bodies of 5,000
//! lines to `POST /api/v2/write` at 16 clients (cost per reading); the storage layer's write ceiling in this process
//! ([`in_process`]); `GET /api/stats` at 16 clients after 10^3, 10^5 and 10^6 stored readings,
//! and at each size `Storage::scan_stats` timed against `Storage::stats` without HTTP.
//! With `BENCH_DYNAMODB_ENDPOINT`, the DynamoDB series too ([`dynamodb`]); `-- dynamodb` runs
//! only it. To add a scenario: write a function returning a [`scenarios::Scenario`] and list
//! it in a series.
//!
//! `-- --peers` runs the comparison with InfluxDB and VictoriaMetrics instead ([`peers`];
//! `scripts/bench-peers.sh` installs them and runs it).
//!
//! `-- --flood --seconds 20` runs the open-loop flood at twice the measured write capacity
//! instead ([`flood`]; issue #13's load-shedding benchmark).
//!
//! Usage: `cargo bench --bench http_load [-- --long | --seconds N] [-- FILTER]`.
//! Environment: `BENCH_SECONDS` (per scenario, default 5; `--long` makes it 30),
//! `BENCH_SERVER_BIN` (the server binary, default the one cargo builds with the benchmark),
//! `BENCH_MAX_REQUESTS` (cap per scenario, default 2,000,000), `BENCH_CLIENT_THREADS` (load
//! generator workers, default 2), `BENCH_SERVER_LOG` (the server's `RUST_LOG`, default keeps the
//! start-up line and drops the per-request line; `info` measures with per-request logging).
//! Any other variable is inherited by the server (e.g. `TOKIO_WORKER_THREADS`,
//! `EMBEDDED_CACHE_BYTES`). Results: a table on stdout and `target/bench-results/http_load.json`.

mod dynamodb;
mod flood;
mod in_process;
mod load;
mod measure;
mod options;
mod peers;
mod report;
mod scenarios;
mod server;

use std::time::Instant;

use serde_json::json;

use crate::options::Options;
use crate::report::{load_average, machine, results_path, unix_time, write_json};

fn main() {
    let options = Options::parse();
    if options.peers {
        peers::run(&options);
        return;
    }
    if options.flood {
        flood::run(&options);
        return;
    }
    let started = Instant::now();
    let machine = machine();
    eprintln!(
        "http_load: {} s per scenario (+{} s warm-up), machine {machine}",
        options.seconds, options.warmup
    );
    report::print_header();
    let runtime = options.client_runtime();
    let mut results = scenarios::embedded().run(&options, &runtime);
    drop(runtime);
    results.extend(dynamodb::scenarios(&options));
    let targets = report::targets(&results);
    report::print_targets(&targets);
    let report = json!({
        "benchmark": "http_load",
        "unix_time": unix_time(),
        "machine": machine,
        "loadavg_after": load_average(),
        "seconds_per_scenario": options.seconds,
        "warmup_seconds": options.warmup,
        "server_log": options.server_log,
        "total_seconds": started.elapsed().as_secs_f64(),
        "results": results,
        "targets": targets,
    });
    let path = results_path("http_load");
    write_json(&path, &report);
    println!(
        "\nwrote {} ({:.0} s in all)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
}
