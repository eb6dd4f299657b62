//! The scenarios, and the series that runs them on one backend.
//!
//! A scenario is one small function returning a [`Scenario`]: its name, its clients and how
//! each request looks. A [`Series`] is what one backend runs: throughput scenarios on one
//! server, in-process baselines, then `GET /api/stats` as the store grows. The embedded series
//! is [`embedded`]; the DynamoDB one is in `dynamodb.rs`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use hyper::Method;
use tokio::runtime::Runtime;

use crate::in_process::{storage_ceiling, time_stats};
use crate::load::{Call, MakeRequest, fill, json_array, reading_line, reading_text};
use crate::measure::{Measurement, measure};
use crate::options::Options;
use crate::server::{Backend, Server};

pub struct Scenario {
    pub name: String,
    pub clients: usize,
    /// Readings each request stores (0 for reads).
    pub items_per_request: u64,
    pub make: MakeRequest,
}

/// `GET path` from `clients` connections.
pub fn get(name: &str, clients: usize, path: &'static str) -> Scenario {
    Scenario {
        name: name.into(),
        clients,
        items_per_request: 0,
        make: Arc::new(move |_, _| Call::get(path)),
    }
}

/// Single-reading PUTs: each request a new reading of sensor `p<clients>-<client>`.
pub fn put_single(clients: usize) -> Scenario {
    let prefix = format!("p{clients}");
    Scenario {
        name: format!("PUT /api/temperature x1 ({clients} clients)"),
        clients,
        items_per_request: 1,
        make: Arc::new(move |task, seq| {
            let body = reading_text(&format!("{prefix}-{task}"), seq, 1_500 + seq % 1_000);
            Call::json(Method::PUT, "/api/temperature", body)
        }),
    }
}

/// Batch PUTs of `size` new readings each, of sensor `<prefix>-<client>`.
pub fn put_batch(clients: usize, size: u64, prefix: &'static str) -> Scenario {
    Scenario {
        name: format!("PUT /api/temperature x{size} ({clients} clients)"),
        clients,
        items_per_request: size,
        make: Arc::new(move |task, seq| {
            let sensor = format!("{prefix}-{task}");
            let body = json_array(
                (0..size).map(|i| reading_text(&sensor, seq * size + i, 1_000 + i * 7 % 2_000)),
            );
            Call::json(Method::PUT, "/api/temperature", body)
        }),
    }
}

/// Line protocol writes of `lines` new readings each, gzip-compressed, of sensor
/// `<prefix>-<client>`, to the InfluxDB 2 route.
pub fn write_lp_gzip(clients: usize, lines: u64, prefix: &'static str) -> Scenario {
    Scenario {
        name: format!("POST /api/v2/write x{lines} gzip ({clients} clients)"),
        clients,
        items_per_request: lines,
        make: Arc::new(move |task, seq| {
            let sensor = format!("{prefix}-{task}");
            let body: String = (0..lines)
                .map(|i| reading_line(&sensor, seq * lines + i, 1_000 + i * 7 % 2_000))
                .collect();
            Call::gzip(
                Method::POST,
                "/api/v2/write?bucket=bench&precision=s",
                "text/plain; charset=utf-8",
                body.as_bytes(),
            )
        }),
    }
}

/// A measurement taken without the server (in this process), run when its name is wanted.
pub struct Baseline {
    pub name: &'static str,
    pub run: fn(&Backend, &Options, &Runtime) -> Measurement,
}

/// `GET /api/stats` at 16 clients after each of `sizes` stored readings (loaded in
/// `batch`-reading requests); with `scan_baseline`, the in-process stats and scan timings at
/// each size (embedded only: it opens the stopped server's store).
pub struct StatsSeries {
    pub sizes: &'static [u64],
    pub batch: u64,
    pub scan_baseline: bool,
}

/// What one backend runs, in order; each part on a store of its own
/// ([`Backend::with_table_suffix`]).
pub struct Series {
    pub backend: Backend,
    pub throughput: Vec<Scenario>,
    pub baselines: Vec<Baseline>,
    pub stats: StatsSeries,
}

impl Series {
    pub fn run(&self, options: &Options, runtime: &Runtime) -> Vec<Measurement> {
        let backend = &self.backend;
        let mut results = runtime.block_on(throughput(backend, options, &self.throughput));
        for baseline in &self.baselines {
            if options.wants_on(backend, baseline.name) {
                let table = backend.with_table_suffix("baseline");
                results.push((baseline.run)(&table, options, runtime));
            }
        }
        let stats = &self.stats;
        if options.wants_on(backend, "GET /api/stats")
            || (stats.scan_baseline && options.wants_on(backend, "scan"))
        {
            let table = backend.with_table_suffix("stats");
            results.extend(runtime.block_on(stats_series(&table, options, stats)));
        }
        results
    }
}

/// The embedded store's series: the `GET /api` ceiling, durable PUTs, the storage layer's own
/// ceiling, and stats at 10^3, 10^5 and 10^6 readings with the scan baseline.
pub fn embedded() -> Series {
    Series {
        backend: Backend::Embedded,
        throughput: vec![
            get("GET /api (64 clients)", 64, "/api"),
            put_single(1),
            put_single(16),
            put_single(64),
            put_batch(16, 100, "b"),
            // Per reading, line protocol against JSON: the same 16 clients, big batches.
            put_batch(16, 1_000, "j"),
            write_lp_gzip(16, 5_000, "l"),
        ],
        baselines: vec![Baseline {
            name: "Storage::put_readings x1 (64 tasks)",
            run: |backend, options, _| storage_ceiling(backend, 64, options),
        }],
        stats: StatsSeries {
            sizes: &[1_000, 100_000, 1_000_000],
            batch: 1_000,
            scan_baseline: true,
        },
    }
}

/// The wanted `scenarios` one after another on one server.
async fn throughput(
    backend: &Backend,
    options: &Options,
    scenarios: &[Scenario],
) -> Vec<Measurement> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = Server::start(backend, &dir.path().join("data"), options);
    let seq = Arc::new(AtomicU64::new(0));
    let mut results = Vec::new();
    for scenario in scenarios
        .iter()
        .filter(|s| options.wants_on(backend, &s.name))
    {
        results.push(measure(backend, &server, scenario, options, &seq, None).await);
    }
    server.stop();
    results
}

fn size_label(size: u64) -> String {
    format!("10^{}", (size as f64).log10().round() as u32)
}

/// `GET /api/stats` as the store grows through `stats.sizes`; the server is restarted at each
/// size (its start-up time is printed: nothing is rescanned).
async fn stats_series(
    backend: &Backend,
    options: &Options,
    stats: &StatsSeries,
) -> Vec<Measurement> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let mut results = Vec::new();
    let mut stored = 0;
    for &size in stats.sizes {
        let server = Server::start(backend, &data, options);
        eprintln!(
            "  server (re)started in {:.0} ms with {stored} readings stored",
            server.started_in.as_secs_f64() * 1e3
        );
        let rate = fill(server.addr, stored, size, stats.batch).await;
        eprintln!(
            "  loaded {} readings at {rate:.0} readings/s ({}-reading batches, 8 clients)",
            size - stored,
            if stats.batch == 1_000 {
                "1,000".to_owned()
            } else {
                stats.batch.to_string()
            }
        );
        stored = size;
        let label = size_label(size);
        let scenario = get(
            &format!("GET /api/stats @ {label} (16 clients)"),
            16,
            "/api/stats",
        );
        let seq = Arc::default();
        results.push(measure(backend, &server, &scenario, options, &seq, Some(size)).await);
        server.stop();
        if stats.scan_baseline {
            results.extend(on_own_thread(|| {
                time_stats(backend, &data, size, &label, options)
            }));
        }
    }
    results
}

/// Runs `f` on a thread of its own: it builds (and drops) its own runtime, which cannot be
/// done on a thread that is driving one.
fn on_own_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("in-process timing"))
}
