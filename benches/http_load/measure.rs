//! One scenario measured against a running server: warm-up, the timed window, and what the
//! server used meanwhile — as a [`Measurement`], the row every report prints and saves.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::load::{Run, drive};
use crate::options::Options;
use crate::report::{print_emulator_cpu, print_row, print_store_requests};
use crate::scenarios::Scenario;
use crate::server::{Backend, Server, cpu_seconds};

const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Measurement {
    pub backend: String,
    pub scenario: String,
    pub transport: &'static str,
    pub clients: usize,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub requests_per_second: f64,
    /// Readings per request (1 for single PUTs, 100 for batches; 0 for reads).
    pub items_per_request: u64,
    pub items_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub server_peak_rss_mib: Option<f64>,
    pub server_rss_mib: Option<f64>,
    /// CPU used by the server and by this load generator during the measured window, in cores.
    pub server_cpu_cores: Option<f64>,
    pub client_cpu_cores: Option<f64>,
    /// Bytes the server sent towards the disk (`write_bytes` of `/proc/<pid>/io`) per request.
    pub server_disk_kib_per_request: Option<f64>,
    pub stored_readings: Option<u64>,
    /// DynamoDB API calls per stored reading during the measured window (DynamoDB only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamodb_requests_per_reading: Option<f64>,
    /// CPU used by the DynamoDB Local JVM during the measured window, in cores (when
    /// `BENCH_DYNAMODB_PID` names it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamodb_local_cpu_cores: Option<f64>,
}

impl Measurement {
    /// The latency and rate figures of `histogram` (one entry per request) over `seconds`;
    /// the server-side figures are left empty.
    pub fn from_histogram(
        backend: &str,
        scenario: String,
        transport: &'static str,
        clients: usize,
        histogram: &Histogram<u64>,
        seconds: f64,
        items_per_request: u64,
    ) -> Self {
        let rps = histogram.len() as f64 / seconds;
        Self {
            backend: backend.into(),
            scenario,
            transport,
            clients,
            requests: histogram.len(),
            errors: 0,
            seconds,
            requests_per_second: rps,
            items_per_request,
            items_per_second: rps * items_per_request as f64,
            p50_ms: ms(histogram, 0.50),
            p99_ms: ms(histogram, 0.99),
            p999_ms: ms(histogram, 0.999),
            max_ms: histogram.max() as f64 / 1e3,
            server_peak_rss_mib: None,
            server_rss_mib: None,
            server_cpu_cores: None,
            client_cpu_cores: None,
            server_disk_kib_per_request: None,
            stored_readings: None,
            dynamodb_requests_per_reading: None,
            dynamodb_local_cpu_cores: None,
        }
    }

    /// A measurement taken in this process (no HTTP, no server process).
    pub fn in_process(
        backend: &Backend,
        scenario: String,
        clients: usize,
        histogram: &Histogram<u64>,
        seconds: f64,
        items_per_request: u64,
    ) -> Self {
        let name = backend.name();
        Self::from_histogram(
            name,
            scenario,
            "in-process",
            clients,
            histogram,
            seconds,
            items_per_request,
        )
    }
}

pub fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1e3
}

/// Runs `scenario` on `server` (warm-up, then the measured window), prints its row.
pub async fn measure(
    backend: &Backend,
    server: &Server,
    scenario: &Scenario,
    options: &Options,
    seq: &Arc<AtomicU64>,
    stored_readings: Option<u64>,
) -> Measurement {
    let window = |seconds: f64| {
        drive(
            server.addr,
            scenario.clients,
            Duration::from_secs_f64(seconds),
            options.max_requests,
            scenario.make.clone(),
            seq.clone(),
        )
    };
    let _ = window(options.warmup).await;
    let before = server.snapshot(scenario.items_per_request > 0).await;
    let client_cpu = cpu_seconds(std::process::id());
    let run: Run = window(options.seconds).await;
    let (peak, rss) = server.memory();
    let seconds = run.elapsed.as_secs_f64();
    let client_cpu = (cpu_seconds(std::process::id()) - client_cpu) / seconds;
    let usage = server.usage_since(&before).await;
    let mut m = Measurement::from_histogram(
        backend.name(),
        scenario.name.clone(),
        "http",
        scenario.clients,
        &run.histogram,
        seconds,
        scenario.items_per_request,
    );
    m.errors = run.errors;
    m.server_peak_rss_mib = Some(peak as f64 / MIB);
    m.server_rss_mib = Some(rss as f64 / MIB);
    m.server_cpu_cores = Some(usage.cpu_seconds / seconds);
    m.client_cpu_cores = Some(client_cpu);
    m.server_disk_kib_per_request =
        Some(usage.disk_bytes as f64 / 1024.0 / run.requests.max(1) as f64);
    m.stored_readings = stored_readings;
    print_row(&m);
    if let Some(cpu) = usage.emulator_cpu_seconds {
        m.dynamodb_local_cpu_cores = Some(cpu / seconds);
        print_emulator_cpu(cpu / seconds);
    }
    let readings = (run.requests - run.errors) * scenario.items_per_request;
    if let Some(calls) = usage.store_requests.filter(|_| readings > 0) {
        let per_reading = calls as f64 / readings as f64;
        m.dynamodb_requests_per_reading = Some(per_reading);
        print_store_requests(calls, readings, per_reading, "server /metrics");
    }
    m
}
