//! The report: the table on stdout, the target verdicts, and `target/bench-results/*.json`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::measure::Measurement;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

pub fn print_header() {
    println!(
        "{:<9} {:<45} {:>7} {:>9} {:>6} {:>10} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7}",
        "backend",
        "scenario",
        "clients",
        "requests",
        "errors",
        "req/s",
        "readings/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "peak MiB",
        "srv CPU",
        "gen CPU",
        "KiB/req"
    );
}

pub fn print_row(m: &Measurement) {
    let items = if m.items_per_request > 0 {
        format!("{:.0}", m.items_per_second)
    } else {
        "-".into()
    };
    let peak = m
        .server_peak_rss_mib
        .map_or("-".into(), |p| format!("{p:.1}"));
    let opt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    let name = if m.transport == "http" {
        m.scenario.clone()
    } else {
        format!("{} [in-process]", m.scenario)
    };
    println!(
        "{:<9} {:<45} {:>7} {:>9} {:>6} {:>10.0} {:>11} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8} {:>7} {:>7} {:>7}",
        m.backend,
        name,
        m.clients,
        m.requests,
        m.errors,
        m.requests_per_second,
        items,
        m.p50_ms,
        m.p99_ms,
        m.p999_ms,
        m.max_ms,
        peak,
        opt(m.server_cpu_cores, 2),
        opt(m.client_cpu_cores, 2),
        opt(m.server_disk_kib_per_request, 1)
    );
}

/// The line under a DynamoDB row: requests the store received per reading.
pub fn print_store_requests(calls: u64, readings: u64, per_reading: f64, source: &str) {
    println!(
        "  DynamoDB requests: {calls} for {readings} readings = {per_reading:.3} per reading \
         ({source})"
    );
}

pub fn print_emulator_cpu(cores: f64) {
    println!("  DynamoDB Local (JVM) CPU: {cores:.2} cores");
}

pub fn find<'a>(
    results: &'a [Measurement],
    backend: &str,
    scenario: &str,
) -> Option<&'a Measurement> {
    results
        .iter()
        .find(|m| m.backend == backend && m.scenario == scenario)
}

#[derive(Debug, serde::Serialize)]
pub struct Target {
    target: &'static str,
    measured: String,
    met: Option<bool>,
}

impl Target {
    /// `measured` and the verdict when the scenarios ran, "not run" otherwise.
    fn new(target: &'static str, outcome: Option<(String, bool)>) -> Self {
        let (measured, met) = match outcome {
            Some((measured, met)) => (measured, Some(met)),
            None => ("not run".into(), None),
        };
        Self {
            target,
            measured,
            met,
        }
    }
}

pub fn targets(results: &[Measurement]) -> Vec<Target> {
    let e = "embedded";
    let get = find(results, e, "GET /api (64 clients)");
    let put = find(results, e, "PUT /api/temperature x1 (64 clients)");
    let small = find(results, e, "GET /api/stats @ 10^3 (16 clients)");
    let large = find(results, e, "GET /api/stats @ 10^6 (16 clients)");
    vec![
        Target::new(
            "durable PUT at 64 clients >= 50% of GET /api req/s",
            get.zip(put).map(|(get, put)| {
                let ratio = put.requests_per_second / get.requests_per_second;
                let measured = format!(
                    "{:.0} / {:.0} req/s = {:.1}%",
                    put.requests_per_second,
                    get.requests_per_second,
                    ratio * 100.0
                );
                (measured, ratio >= 0.5)
            }),
        ),
        Target::new(
            "GET /api/stats p99 at 10^6 <= 1.5x p99 at 10^3",
            small.zip(large).map(|(small, large)| {
                let ratio = large.p99_ms / small.p99_ms;
                let measured = format!(
                    "{:.3} ms / {:.3} ms = {ratio:.2}x",
                    large.p99_ms, small.p99_ms
                );
                (measured, ratio <= 1.5)
            }),
        ),
        Target::new(
            "server peak RSS with 10^6 readings <= 128 MiB",
            large
                .and_then(|m| m.server_peak_rss_mib)
                .map(|peak| (format!("{peak:.1} MiB"), peak <= 128.0)),
        ),
    ]
}

pub fn print_targets(targets: &[Target]) {
    println!();
    for t in targets {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not run",
        };
        println!("target: {:<55} {:<8} {}", t.target, verdict, t.measured);
    }
}

pub fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map(|kib| kib * 1024.0 / GIB);
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": cpu,
        "memory_gib": memory,
        "loadavg": load_average(),
    })
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `target/bench-results/<name>.json` (under `CARGO_TARGET_DIR` when set).
pub fn results_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("bench-results").join(format!("{name}.json"))
}

/// Writes `report` as pretty JSON to `path`, creating the directory.
pub fn write_json(path: &Path, report: &Value) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("results directory");
    std::fs::write(path, serde_json::to_string_pretty(report).expect("json"))
        .expect("write results");
}
