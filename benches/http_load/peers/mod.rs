//! Peer benchmarks (`-- --peers`, run by `scripts/bench-peers.sh`): the service against
//! InfluxDB 1.6 and VictoriaMetrics 1.79 on the same machine, the same readings, one system at
//! a time, every table labelled with its durability class (see [`systems`]).
//!
//! - ingest ([`ingest`]): batches of 1, 100, 1,000 and 5,000 readings at 1, 16 and 64 clients;
//!   ours through JSON and, when the server has `POST /write`, through line protocol; the
//!   peers through their line-protocol write endpoints;
//! - queries at 10^6 readings ([`queries`]);
//! - the `kill -9` durability proof ([`durability`]).
//!
//! Results: tables on stdout and `target/bench-results/peers.json` (which
//! `scripts/plot-peers.py` draws). A text after `--peers` runs only the parts whose
//! `<part> <system>` contains it (`-- --peers InfluxDB`, `-- --peers queries`).

mod data;
mod durability;
mod ingest;
mod queries;
mod systems;

use serde_json::{Value, json};

use crate::load::Call;
use crate::options::Options;
use crate::report::{load_average, machine, results_path, unix_time, write_json};
use systems::System;

pub const BATCHES: [u64; 4] = [1, 100, 1_000, 5_000];
pub const CLIENTS: [usize; 3] = [1, 16, 64];

/// The systems this machine can run: ours always, ours through line protocol when the server
/// has the route, each peer when its binary is installed.
async fn available(options: &Options) -> Vec<System> {
    let mut systems = vec![System::OursJson];
    let dir = tempfile::tempdir().expect("temporary directory");
    let ours = System::OursJson
        .start(&dir.path().join("data"), options)
        .await;
    // An empty body writes nothing; an absent route answers 404 (405 if only the path exists).
    let probe = Call::with_body(hyper::Method::POST, "/write?db=bench", "text/plain", "");
    let status = ours.answer(probe).await.map(|(status, _)| status);
    ours.stop();
    if status.is_some_and(|s| s != 404 && s != 405) {
        systems.push(System::OursLineProtocol);
    } else {
        eprintln!("peers: ours through line protocol skipped (no POST /write route yet)");
    }
    for peer in [System::InfluxDb, System::VictoriaMetrics] {
        if peer.binary().is_some() {
            systems.push(peer);
        } else {
            eprintln!(
                "peers: {} skipped (not installed; scripts/bench-peers.sh installs it)",
                peer.name()
            );
        }
    }
    systems
}

/// The ingest cells' batch sizes or client counts: all of `all`, or those listed (comma
/// separated) in the environment variable `name` — to profile one cell, e.g.
/// `BENCH_PEER_BATCHES=1000 BENCH_PEER_CLIENTS=16`.
fn only<T: Copy + std::str::FromStr + PartialEq>(name: &str, all: &[T]) -> Vec<T> {
    let Ok(listed) = std::env::var(name) else {
        return all.to_vec();
    };
    let wanted: Vec<T> = listed
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .ok()
                .unwrap_or_else(|| panic!("{name}: {v:?} is not a number"))
        })
        .collect();
    all.iter().copied().filter(|v| wanted.contains(v)).collect()
}

pub fn run(options: &Options) {
    let started = std::time::Instant::now();
    let machine = machine();
    eprintln!(
        "peers: {} s per cell (+{} s warm-up), machine {machine}",
        options.seconds, options.warmup
    );
    let runtime = options.client_runtime();
    let systems = runtime.block_on(available(options));
    let wants = |part: &str, system: System| options.wants(&format!("{part} {}", system.name()));

    println!("\n## Durable ingest (readings/s; durability class on every row)\n");
    ingest::print_header();
    let mut cells = Vec::new();
    for &system in &systems {
        if !wants("ingest", system) {
            continue;
        }
        for batch in only("BENCH_PEER_BATCHES", &BATCHES) {
            if batch > system.max_batch() {
                println!(
                    "{:<22} batches of {batch} skipped: more than the {} readings a request may carry",
                    system.name(),
                    system.max_batch()
                );
                continue;
            }
            for clients in only("BENCH_PEER_CLIENTS", &CLIENTS) {
                cells.push(runtime.block_on(ingest::cell(system, batch, clients, options)));
            }
        }
    }

    println!("\n## Queries at 10^6 readings (1 client)\n");
    println!(
        "{:<22} {:<48} {:>6} {:>10} {:>10}  answer",
        "system", "query", "calls", "p50 ms", "p99 ms"
    );
    let mut queries = Vec::new();
    for &system in systems.iter().filter(|s| **s != System::OursLineProtocol) {
        if wants("queries", system) {
            queries.extend(runtime.block_on(queries::compare(system, options)));
        }
    }

    println!("\n## Durability: kill -9 while 8 writers send 100-reading batches\n");
    let mut proofs = Vec::new();
    for &system in systems.iter().filter(|s| **s != System::OursLineProtocol) {
        if wants("durability", system) {
            proofs.push(runtime.block_on(durability::prove(system, options)));
        }
    }
    drop(runtime);

    let ratios = ratios(&cells);
    let report = json!({
        "benchmark": "peers",
        "unix_time": unix_time(),
        "machine": machine,
        "loadavg_after": load_average(),
        "seconds_per_cell": options.seconds,
        "warmup_seconds": options.warmup,
        "configuration": {
            "influxdb.conf": systems::influxdb_config(std::path::Path::new("DATA"), 8086, 8088),
            "victoria-metrics": systems::victoria_metrics_flags(std::path::Path::new("DATA"), 8428),
        },
        "ingest": cells,
        "ratios": ratios,
        "queries": queries,
        "durability": proofs,
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    let path = results_path("peers");
    write_json(&path, &report);
    println!(
        "\nwrote {} ({:.0} s in all)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
}

/// Ours (JSON) over each peer, cell by cell.
fn ratios(cells: &[ingest::IngestRow]) -> Vec<Value> {
    let rate = |system: System, batch: u64, clients: usize| {
        cells
            .iter()
            .find(|c| c.system == system.name() && c.batch == batch && c.clients == clients)
            .map(|c| c.readings_per_second)
    };
    println!("\n## Ours (JSON) / peer, readings/s\n");
    println!(
        "{:>6} {:>7} {:>14} {:>20}",
        "batch", "clients", "/ InfluxDB", "/ VictoriaMetrics"
    );
    let mut out = Vec::new();
    for batch in BATCHES {
        for clients in CLIENTS {
            let Some(ours) = rate(System::OursJson, batch, clients) else {
                continue;
            };
            let influx = rate(System::InfluxDb, batch, clients).map(|r| ours / r);
            let vm = rate(System::VictoriaMetrics, batch, clients).map(|r| ours / r);
            let show = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{r:.2}"));
            println!(
                "{batch:>6} {clients:>7} {:>14} {:>20}",
                show(influx),
                show(vm)
            );
            out.push(json!({"batch": batch, "clients": clients, "over_influxdb": influx, "over_victoria_metrics": vm}));
        }
    }
    out
}
