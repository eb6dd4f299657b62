//! Durable ingest, one cell at a time: one system, one batch size, one number of clients, on a
//! fresh process and data directory. Figures: readings/s, the server's CPU-seconds per million
//! readings, latency, bytes on disk per reading after a graceful stop (each system flushes
//! what it buffers), peak RSS; and the stored count checked against what was acknowledged.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::data::Timeline;
use super::systems::System;
use crate::load::{MakeRequest, drive};
use crate::measure::ms;
use crate::options::Options;
use crate::server::{cpu_seconds, memory};

const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Clone, serde::Serialize)]
pub struct IngestRow {
    pub system: &'static str,
    pub durability: &'static str,
    pub batch: u64,
    pub clients: usize,
    pub readings_per_second: f64,
    pub server_cpu_seconds_per_million: f64,
    /// CPU of this load generator during the window, in cores (it shares the machine).
    pub generator_cpu_cores: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub disk_bytes_per_reading: f64,
    pub peak_rss_mib: f64,
    pub errors: u64,
    /// Readings answered with a 2xx (warm-up included).
    pub acknowledged: u64,
    pub stored: u64,
}

impl IngestRow {
    /// A benchmark that loses or invents data is not a result.
    pub fn count_checks(&self) -> bool {
        self.stored == self.acknowledged
    }
}

pub fn print_header() {
    println!(
        "{:<22} {:<17} {:>6} {:>7} {:>11} {:>10} {:>8} {:>8} {:>9} {:>9} {:>8} {:>7} {:>6} {:>7}",
        "system",
        "durability",
        "batch",
        "clients",
        "readings/s",
        "CPU s/1M",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "disk B/r",
        "peak MiB",
        "gen CPU",
        "count",
        "errors"
    );
}

fn print_row(r: &IngestRow) {
    println!(
        "{:<22} {:<17} {:>6} {:>7} {:>11.0} {:>10.2} {:>8.3} {:>8.3} {:>9.3} {:>9.1} {:>8.1} {:>7.2} {:>6} {:>7}",
        r.system,
        r.durability,
        r.batch,
        r.clients,
        r.readings_per_second,
        r.server_cpu_seconds_per_million,
        r.p50_ms,
        r.p99_ms,
        r.p999_ms,
        r.disk_bytes_per_reading,
        r.peak_rss_mib,
        r.generator_cpu_cores,
        if r.count_checks() { "ok" } else { "WRONG" },
        r.errors
    );
    if !r.count_checks() {
        println!(
            "  stored {} readings, acknowledged {} ({} errors)",
            r.stored, r.acknowledged, r.errors
        );
    }
}

pub async fn cell(system: System, batch: u64, clients: usize, options: &Options) -> IngestRow {
    let dir = tempfile::tempdir().expect("temporary directory");
    let peer = system.start(&dir.path().join("data"), options).await;
    let timeline = Timeline::ingest();
    let make: MakeRequest = Arc::new(move |_, seq| system.write(&timeline, seq, batch));
    let seq = Arc::new(AtomicU64::new(0));
    let window = |seconds: f64| {
        let duration = Duration::from_secs_f64(seconds);
        drive(
            peer.addr,
            clients,
            duration,
            options.max_requests,
            make.clone(),
            seq.clone(),
        )
    };
    let warmup = window(options.warmup).await;
    let (server_cpu, generator_cpu) = (cpu_seconds(peer.pid()), cpu_seconds(std::process::id()));
    let run = window(options.seconds).await;
    let seconds = run.elapsed.as_secs_f64();
    let server_cpu = cpu_seconds(peer.pid()) - server_cpu;
    let generator_cpu = cpu_seconds(std::process::id()) - generator_cpu;
    let (peak, _) = memory(peer.pid());
    let readings = (run.requests - run.errors) * batch;
    let acknowledged = readings + (warmup.requests - warmup.errors) * batch;
    let stored = peer.settled_count(Some(acknowledged)).await;
    let system_data = peer.data.clone();
    peer.stop();
    let disk = system.disk_bytes(&system_data);
    let row = IngestRow {
        system: system.name(),
        durability: system.durability(),
        batch,
        clients,
        readings_per_second: readings as f64 / seconds,
        server_cpu_seconds_per_million: server_cpu / readings.max(1) as f64 * 1e6,
        generator_cpu_cores: generator_cpu / seconds,
        p50_ms: ms(&run.histogram, 0.5),
        p99_ms: ms(&run.histogram, 0.99),
        p999_ms: ms(&run.histogram, 0.999),
        disk_bytes_per_reading: disk as f64 / stored.max(1) as f64,
        peak_rss_mib: peak as f64 / MIB,
        errors: run.errors + warmup.errors,
        acknowledged,
        stored,
    };
    print_row(&row);
    row
}
