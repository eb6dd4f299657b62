//! The flood (`-- --flood`, issue #13): does load shedding keep the accepted writes' latency
//! bounded and memory flat when writes arrive faster than the server can store them, and is
//! every acknowledged reading stored?
//!
//! 1. The release server, fresh `DATA_DIR`, 127.0.0.1, a random port.
//! 2. Capacity, closed loop: 16 keep-alive clients send 1,000-reading batches back to back
//!    (every reading new, [`batches`]) for a warm-up, then for `min(--seconds, 10)` s;
//!    capacity = accepted batches/s of that window.
//! 3. The flood, open loop ([`open_loop`]): `BENCH_FLOOD_FACTOR` (default 2) × capacity
//!    batches/s on a fixed schedule for `--seconds`, from up to `BENCH_FLOOD_CONNECTIONS`
//!    (default 2,048) connections; accepted p50/p99/max from each request's scheduled time;
//!    RSS every 250 ms ([`rss`]).
//! 4. The count: `GET /api/stats` `Count` against the readings of every `200` of both phases.
//!
//! Results: a summary on stdout and `target/bench-results/flood.json` (every RSS sample too).

mod batches;
mod open_loop;
mod rss;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::load::{Call, MakeRequest, connect, drive, send};
use crate::measure::ms;
use crate::options::Options;
use crate::report::{load_average, machine, results_path, unix_time, write_json};
use crate::server::{Backend, Server, cpu_seconds, server_binary};
use batches::BATCH;
use open_loop::{Schedule, flood};

const CAPACITY_CLIENTS: usize = 16;
/// How this load generator was compiled (the server's binary is named in the report).
const GENERATOR_BUILD: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn run(options: &Options) {
    let factor: f64 = env_or("BENCH_FLOOD_FACTOR", 2.0);
    let connections: usize = env_or("BENCH_FLOOD_CONNECTIONS", 2_048);
    let flood_seconds = options.seconds;
    let capacity_seconds = options.seconds.min(10.0);
    let machine = machine();
    let load_before = load_average();
    let binary = server_binary();
    eprintln!(
        "flood: server {}, load generator {GENERATOR_BUILD}",
        binary.display()
    );
    eprintln!(
        "flood: capacity {capacity_seconds} s (+{} s warm-up) at {CAPACITY_CLIENTS} clients, \
         then {factor}x that for {flood_seconds} s; load average {load_before}",
        options.warmup
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = Server::start(&Backend::Embedded, &dir.path().join("data"), options);
    let runtime = options.client_runtime();

    // Capacity, closed loop.
    let make: MakeRequest = Arc::new(|_, seq| open_loop::put(batches::body("c", seq)));
    let seq = Arc::new(AtomicU64::new(0));
    let window = |seconds: f64| {
        drive(
            server.addr,
            CAPACITY_CLIENTS,
            Duration::from_secs_f64(seconds),
            options.max_requests,
            make.clone(),
            seq.clone(),
        )
    };
    let warmup = runtime.block_on(window(options.warmup));
    let closed = runtime.block_on(window(capacity_seconds));
    let capacity = (closed.requests - closed.errors) as f64 / closed.elapsed.as_secs_f64();
    let closed_acked = (warmup.requests - warmup.errors + closed.requests - closed.errors) * BATCH;
    println!(
        "capacity: {capacity:.1} batches/s ({:.0} readings/s) at {CAPACITY_CLIENTS} clients, \
         p50 {:.1} ms, p99 {:.1} ms, {} errors",
        capacity * BATCH as f64,
        ms(&closed.histogram, 0.5),
        ms(&closed.histogram, 0.99),
        closed.errors + warmup.errors
    );

    // The flood, open loop.
    let schedule = Schedule {
        rate: capacity * factor,
        total: (capacity * factor * flood_seconds).round() as u64,
        connections,
    };
    let rss_before = server.memory().1 as f64 / (1024.0 * 1024.0);
    let load_at_flood = load_average();
    let make_flood: Arc<dyn Fn(u64) -> Call + Send + Sync> =
        Arc::new(|i| open_loop::put(batches::body("f", i)));
    let pid = server.pid();
    let cpu_before = (cpu_seconds(pid), cpu_seconds(std::process::id()));
    let (tally, rss) = runtime.block_on(async {
        let done = Arc::new(AtomicBool::new(false));
        let limit =
            Instant::now() + Duration::from_secs_f64(flood_seconds) + Duration::from_secs(60);
        let sampler = tokio::spawn(rss::sample(pid, done.clone(), limit));
        let tally = flood(server.addr, schedule, make_flood).await;
        done.store(true, Ordering::Relaxed);
        (tally, sampler.await.expect("RSS sampler"))
    });
    let seconds = tally.elapsed.as_secs_f64();
    let server_cores = (cpu_seconds(pid) - cpu_before.0) / seconds;
    let generator_cores = (cpu_seconds(std::process::id()) - cpu_before.1) / seconds;
    let load_after = load_average();
    let accepted = tally.accepted.len();
    let acked = closed_acked + accepted * BATCH;
    let stored = runtime.block_on(stored_count(&server));
    let (peak, _) = server.memory();
    server.stop();
    drop(runtime);

    let quarters = rss.quarter_maxima();
    println!(
        "flood: offered {:.1} batches/s ({factor}x) for {flood_seconds} s = {} requests; \
         generator lag at most {:.1} ms; {} connections opened",
        schedule.rate,
        schedule.total,
        tally.max_dispatch_lag_us as f64 / 1e3,
        tally.connections_opened
    );
    println!(
        "  accepted {accepted} ({:.1}/s), p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (from the scheduled time)",
        accepted as f64 / seconds,
        ms(&tally.accepted, 0.5),
        ms(&tally.accepted, 0.99),
        tally.accepted.max() as f64 / 1e3
    );
    let quarter_p99: Vec<f64> = tally
        .accepted_by_quarter
        .iter()
        .map(|h| ms(h, 0.99))
        .collect();
    println!(
        "  accepted p99 by quarter of the schedule: {:.0} / {:.0} / {:.0} / {:.0} ms",
        quarter_p99[0], quarter_p99[1], quarter_p99[2], quarter_p99[3]
    );
    println!(
        "  refused {} {:?}, p50 {:.0} ms, p99 {:.0} ms; errors {:?}; unknown {}",
        tally.refused_total(),
        tally.refused_by_status,
        ms(&tally.refused, 0.5),
        ms(&tally.refused, 0.99),
        tally.errors,
        tally.unknown
    );
    println!(
        "  RSS MiB: {rss_before:.0} before, {:.0}-{:.0} during (quarter maxima {:.0} / {:.0} / {:.0} / {:.0}), peak {:.0}",
        rss.min(),
        rss.max(),
        quarters[0],
        quarters[1],
        quarters[2],
        quarters[3],
        peak as f64 / (1024.0 * 1024.0)
    );
    let verdict = if stored == acked {
        "none lost"
    } else {
        "MISMATCH"
    };
    println!("  acknowledged readings {acked}, stored {stored}: {verdict}");
    println!(
        "  CPU during the flood: server {server_cores:.2} cores, load generator {generator_cores:.2} cores ({} build)",
        GENERATOR_BUILD
    );
    println!(
        "  load average: {load_before} before, {load_at_flood} at the flood, {load_after} after"
    );

    let report = json!({
        "benchmark": "flood",
        "unix_time": unix_time(),
        "machine": machine,
        "server_binary": binary,
        "generator_build": GENERATOR_BUILD,
        "cpu_cores_during_flood": {"server": server_cores, "generator": generator_cores},
        "loadavg": {"before": load_before, "flood": load_at_flood, "after": load_after},
        "capacity": {
            "clients": CAPACITY_CLIENTS,
            "seconds": closed.elapsed.as_secs_f64(),
            "batches_per_second": capacity,
            "p50_ms": ms(&closed.histogram, 0.5),
            "p99_ms": ms(&closed.histogram, 0.99),
            "errors": closed.errors + warmup.errors,
        },
        "flood": {
            "factor": factor,
            "rate": schedule.rate,
            "requests": schedule.total,
            "connections_limit": connections,
            "connections_opened": tally.connections_opened,
            "seconds": seconds,
            "max_dispatch_lag_ms": tally.max_dispatch_lag_us as f64 / 1e3,
            "accepted": accepted,
            "accepted_p50_ms": ms(&tally.accepted, 0.5),
            "accepted_p99_ms": ms(&tally.accepted, 0.99),
            "accepted_max_ms": tally.accepted.max() as f64 / 1e3,
            "accepted_p99_ms_by_quarter": quarter_p99,
            "refused": tally.refused_by_status,
            "refused_p99_ms": ms(&tally.refused, 0.99),
            "errors": tally.errors,
            "unknown": tally.unknown,
        },
        "rss_mib": {
            "before": rss_before,
            "min": rss.min(),
            "max": rss.max(),
            "quarter_maxima": quarters,
            "peak_vmhwm": peak as f64 / (1024.0 * 1024.0),
            "samples": rss.samples,
        },
        "acknowledged_readings": acked,
        "stored_readings": stored,
    });
    let path = results_path("flood");
    write_json(&path, &report);
    println!("\nwrote {}", path.display());
}

/// `Count` of `GET /api/stats`.
async fn stored_count(server: &Server) -> u64 {
    let mut sender = connect(server.addr).await;
    let (status, body) = send(&mut sender, Call::get("/api/stats"))
        .await
        .expect("GET /api/stats");
    assert_eq!(status, 200, "GET /api/stats");
    let stats: Value = serde_json::from_slice(&body).expect("stats JSON");
    stats["Count"].as_u64().expect("Count")
}
