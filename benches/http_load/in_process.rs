//! Baselines measured in this process, without HTTP: the storage layer's own write ceiling, and
//! `Storage::stats` (the stored aggregate) against `Storage::scan_stats` (reads every reading,
//! as the original service did on every call) on a stopped server's store.

use std::path::Path;
use std::time::{Duration, Instant};

use telemetry::config::Config;
use telemetry::metrics::Metrics;
use telemetry::storage::group_commit::unobserved;
use telemetry::storage::{Backend as StoreBackend, EmbeddedStore, Storage};

use crate::load::{histogram, record, single_reading_batch};
use crate::measure::Measurement;
use crate::options::Options;
use crate::report::print_row;
use crate::server::Backend;

/// Runs `f` on the embedded store in `dir`, on a runtime of its own that is dropped at the end,
/// so the database file is closed before a server opens it again (the store's writer task
/// holds the database too).
fn with_embedded_store<T>(dir: &Path, f: impl AsyncFnOnce(Storage) -> T) -> T {
    let cache = Config::from_env().map_or(32 * 1024 * 1024, |c| c.embedded_cache_bytes);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(async {
        let store = EmbeddedStore::open(dir, cache, unobserved()).expect("open the store");
        f(Storage::new(StoreBackend::Embedded(store), Metrics::new())).await
    });
    drop(runtime);
    result
}

/// Times `Storage::stats` and `Storage::scan_stats` on the stopped server's data in `dir`
/// (which holds `size` readings); checks they agree. Returns the two measurements.
pub fn time_stats(
    backend: &Backend,
    dir: &Path,
    size: u64,
    label: &str,
    options: &Options,
) -> Vec<Measurement> {
    with_embedded_store(dir, async |storage| {
        let stored = storage.stats(None).await.expect("stats");
        let scanned = storage.scan_stats(None).await.expect("scan");
        assert_eq!(
            stored, scanned,
            "the scan and the stored aggregate disagree"
        );
        assert_eq!(stored.count, size, "stored readings");
        let budget = Duration::from_secs_f64((options.seconds / 2.0).max(1.0));
        let mut results = Vec::new();
        for (name, scan) in [("stats (stored aggregate)", false), ("scan baseline", true)] {
            let mut histogram = histogram();
            let started = Instant::now();
            while (started.elapsed() < budget || histogram.len() < 5) && histogram.len() < 100_000 {
                let began = Instant::now();
                let aggregate = if scan {
                    storage.scan_stats(None).await
                } else {
                    storage.stats(None).await
                }
                .expect("aggregate");
                std::hint::black_box(aggregate);
                record(&mut histogram, began);
            }
            let scenario = format!("{name} @ {label}");
            let seconds = started.elapsed().as_secs_f64();
            let mut m = Measurement::in_process(backend, scenario, 1, &histogram, seconds, 0);
            m.stored_readings = Some(size);
            print_row(&m);
            results.push(m);
        }
        results
    })
}

/// The storage layer's own ceiling for single-reading writes: `clients` tasks calling
/// `Storage::put_readings` back to back in this process, without HTTP. Separates the cost of
/// the group commit from the cost of the HTTP stack.
pub fn storage_ceiling(backend: &Backend, clients: usize, options: &Options) -> Measurement {
    let dir = tempfile::tempdir().expect("temporary directory");
    let m = with_embedded_store(dir.path(), async |storage| {
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(options.seconds);
        let mut tasks = Vec::new();
        for task in 0..clients {
            let storage = storage.clone();
            tasks.push(tokio::spawn(async move {
                let mut histogram = histogram();
                let mut seq = 0u64;
                while Instant::now() < deadline {
                    let batch = single_reading_batch(&format!("c{task}"), seq);
                    let began = Instant::now();
                    storage.put_readings(batch).await.expect("stored");
                    record(&mut histogram, began);
                    seq += 1;
                }
                histogram
            }));
        }
        let mut total = histogram();
        for task in tasks {
            total.add(task.await.expect("writer")).expect("histogram");
        }
        let seconds = started.elapsed().as_secs_f64();
        let name = format!("Storage::put_readings x1 ({clients} tasks)");
        Measurement::in_process(backend, name, clients, &total, seconds, 1)
    });
    print_row(&m);
    m
}
