//! HTTP load benchmark (`harness = false`): the real service against N keep-alive clients.
//!
//! The server is the release binary (`target/release/telemetry`, built by `cargo bench`) run as
//! a child process on 127.0.0.1 with `PORT=0` and a fresh temporary `DATA_DIR`; the port comes
//! from its JSON "listening" log line. A separate process keeps the load generator out of the
//! server's peak RSS (`VmHWM` of `/proc/<pid>/status`). Each client task holds one HTTP/1.1
//! connection (hyper, keep-alive) and sends requests back to back; every latency goes into an
//! `hdrhistogram`. Each scenario runs for a fixed time after a short warm-up, and stops early at
//! a request cap.
//!
//! Scenarios (see [`embedded_scenarios`]):
//! - `GET /api` at 64 clients: the HTTP ceiling of the same server;
//! - durable single-reading `PUT /api/temperature` at 1, 16 and 64 clients;
//! - `PUT` batches of 100 readings at 16 clients (readings/s);
//! - `GET /api/stats` at 16 clients after 10^3, 10^5 and 10^6 stored readings, and at each size
//!   the scan baseline: the server is stopped, the store opened in this process, and
//!   `Storage::scan_stats` (reads every reading, as the original did) timed against
//!   `Storage::stats` (reads the stored aggregate), both without HTTP.
//!
//! With `BENCH_DYNAMODB_ENDPOINT=http://127.0.0.1:PORT` (DynamoDB Local, set up by
//! `scripts/bench-dynamodb.sh`), the same server on `STORAGE=dynamodb` too (see [`dynamodb_scenarios`]): durable
//! single-reading and 100-reading `PUT`s at 64 clients with DynamoDB requests per reading, the
//! naive one-`PutItem`-per-reading baseline from 64 tasks, and `GET /api/stats` after 10^3 and
//! 10^4 readings. Without it they are skipped (one line says so). `-- dynamodb` runs only them.
//!
//! Usage: `cargo bench --bench http_load [-- --long | --seconds N] [-- FILTER]`.
//! Environment: `BENCH_SECONDS` (per scenario, default 5; `--long` makes it 30),
//! `BENCH_MAX_REQUESTS` (cap per scenario, default 2,000,000), `BENCH_CLIENT_THREADS` (load
//! generator workers, default 2), `BENCH_SERVER_LOG` (the server's `RUST_LOG`, default keeps the
//! start-up line and drops the per-request line; `info` measures with per-request logging).
//! Any other variable is inherited by the server (e.g. `TOKIO_WORKER_THREADS`,
//! `EMBEDDED_CACHE_BYTES`). Results: a table on stdout and `target/bench-results/http_load.json`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use telemetry::config::Config;
use telemetry::metrics::Metrics;
use telemetry::storage::group_commit::unobserved;
use telemetry::storage::{Backend as StoreBackend, DynamoStore, EmbeddedStore, Storage};
use tokio::net::TcpStream;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const MIB: f64 = 1024.0 * 1024.0;
/// Readings are timed from here on, one second apart per sensor.
const BASE_EPOCH: i64 = 1_633_338_000; // 2021-10-04 09:00:00 UTC

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Options {
    seconds: f64,
    warmup: f64,
    max_requests: u64,
    client_threads: usize,
    server_log: String,
    filter: Option<String>,
}

impl Options {
    fn parse() -> Self {
        let env_f64 = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
        let mut seconds = env_f64("BENCH_SECONDS").unwrap_or(5.0);
        let mut filter = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--long" => seconds = 30.0,
                "--seconds" => {
                    seconds = args
                        .next()
                        .and_then(|v| v.parse().ok())
                        .expect("--seconds needs a number")
                }
                // `cargo bench` passes `--bench`; ignore it and other harness flags.
                flag if flag.starts_with('-') => {}
                name => filter = Some(name.to_owned()),
            }
        }
        Self {
            seconds,
            warmup: (seconds / 5.0).clamp(0.5, 3.0),
            max_requests: env_f64("BENCH_MAX_REQUESTS").map_or(2_000_000, |v| v as u64),
            client_threads: env_f64("BENCH_CLIENT_THREADS").map_or(2, |v| v as usize),
            server_log: std::env::var("BENCH_SERVER_LOG")
                .unwrap_or_else(|_| "warn,telemetry=info,telemetry::http=warn".into()),
            filter,
        }
    }

    fn wants(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
    }

    /// Filter on `<backend> <scenario>`: `-- dynamodb` runs only the DynamoDB scenarios.
    fn wants_on(&self, backend: &Backend, name: &str) -> bool {
        match backend {
            Backend::Embedded => self.wants(name),
            Backend::Dynamodb { .. } => self.wants(&format!("dynamodb {name}")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server as a child process

/// Which storage the server uses: the environment it is started with.
#[derive(Debug, Clone)]
enum Backend {
    Embedded,
    /// DynamoDB Local at `endpoint` (always `http://127.0.0.1:PORT`), table `table`.
    Dynamodb {
        table: String,
        endpoint: String,
    },
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Dynamodb { .. } => "dynamodb",
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Embedded => vec![("STORAGE", "embedded".into())],
            Self::Dynamodb { table, endpoint } => vec![
                ("STORAGE", "dynamodb".into()),
                ("TABLE_NAME", table.clone()),
                ("DYNAMODB_CREATE_TABLE", "true".into()),
                ("AWS_ENDPOINT_URL", endpoint.clone()),
            ],
        }
    }

    /// The same backend on another table (`<table>-<suffix>`): each series starts empty.
    fn with_table_suffix(&self, suffix: &str) -> Self {
        match self {
            Self::Embedded => Self::Embedded,
            Self::Dynamodb { table, endpoint } => Self::Dynamodb {
                table: format!("{table}-{suffix}"),
                endpoint: endpoint.clone(),
            },
        }
    }
}

struct Server {
    child: Child,
    addr: SocketAddr,
    started_in: Duration,
}

impl Server {
    fn start(backend: &Backend, data_dir: &Path, options: &Options) -> Self {
        let log_path = data_dir.with_extension(format!("server-{}.log", unique()));
        let log = File::create(&log_path).expect("server log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_telemetry"));
        command
            .env("PORT", "0")
            .env("BIND_ADDR", "127.0.0.1")
            .env("DATA_DIR", data_dir)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", &options.server_log)
            .env("SHUTDOWN_GRACE_SECONDS", "5")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        for (name, value) in backend.env() {
            command.env(name, value);
        }
        let started = Instant::now();
        let mut child = command.spawn().expect("start the telemetry binary");
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Some(port) = listening_port(&log_path) {
                return Self {
                    child,
                    addr: SocketAddr::from(([127, 0, 0, 1], port)),
                    started_in: started.elapsed(),
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("the server exited with {status} before listening:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start in 60 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `(VmHWM, VmRSS)` in bytes: peak and current resident memory of the server.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |kib| kib * 1024)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// CPU time used so far, in seconds.
    fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&format!("/proc/{}/stat", self.child.id()))
    }

    /// Bytes written towards storage so far (page cache included).
    fn disk_bytes(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/io", self.child.id()))
            .ok()
            .and_then(|io| {
                io.lines()
                    .find_map(|l| l.strip_prefix("write_bytes:"))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// SIGTERM, then wait for the graceful drain (SIGKILL after 30 s).
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only reached on a panic path (stop() consumes the server after waiting).
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// utime + stime of `/proc/<pid>/stat`, in seconds (USER_HZ is 100 on Linux).
fn cpu_seconds(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn listening_port(log_path: &Path) -> Option<u16> {
    let file = File::open(log_path).ok()?;
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let value: Value = serde_json::from_str(&line).ok()?;
            let port = value
                .get("port")
                .or_else(|| value.pointer("/fields/port"))?;
            u16::try_from(port.as_u64()?).ok()
        })
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------
// Load generation

/// What each request of a scenario looks like: `(method, path, body)` for client `task`'s
/// `seq`-th request. Bodies must make every reading new (unique sensor and time).
type MakeRequest = Arc<dyn Fn(usize, u64) -> (Method, &'static str, Option<String>) + Send + Sync>;

#[derive(Debug, Clone, serde::Serialize)]
struct Measurement {
    backend: String,
    scenario: String,
    transport: &'static str,
    clients: usize,
    requests: u64,
    errors: u64,
    seconds: f64,
    requests_per_second: f64,
    /// Readings per request (1 for single PUTs, 100 for batches; 0 for reads).
    items_per_request: u64,
    items_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    server_peak_rss_mib: Option<f64>,
    server_rss_mib: Option<f64>,
    /// CPU used by the server and by this load generator during the measured window, in cores.
    server_cpu_cores: Option<f64>,
    client_cpu_cores: Option<f64>,
    /// Bytes the server sent towards the disk (`write_bytes` of `/proc/<pid>/io`) per request.
    server_disk_kib_per_request: Option<f64>,
    stored_readings: Option<u64>,
    /// DynamoDB API calls per stored reading during the measured window (DynamoDB only).
    #[serde(skip_serializing_if = "Option::is_none")]
    dynamodb_requests_per_reading: Option<f64>,
    /// CPU used by the DynamoDB Local JVM during the measured window, in cores (when
    /// `BENCH_DYNAMODB_PID` names it).
    #[serde(skip_serializing_if = "Option::is_none")]
    dynamodb_local_cpu_cores: Option<f64>,
}

fn histogram() -> Histogram<u64> {
    // Microseconds, 1 µs to 60 s, 3 significant figures.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

struct Run {
    histogram: Histogram<u64>,
    requests: u64,
    errors: u64,
    elapsed: Duration,
}

/// `clients` connections, each sending back-to-back requests until `duration` has passed or
/// `cap` requests have been sent in total.
async fn drive(
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
    cap: u64,
    make: MakeRequest,
    seq_base: Arc<AtomicU64>,
) -> Run {
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(clients);
    for task in 0..clients {
        let make = make.clone();
        let sent = sent.clone();
        let seq_base = seq_base.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram = histogram();
            let mut errors = 0u64;
            let stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(connection);
            while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < cap {
                let seq = seq_base.fetch_add(1, Ordering::Relaxed);
                let (method, path, body) = make(task, seq);
                let builder = Request::builder()
                    .method(method)
                    .uri(path)
                    .header("host", "127.0.0.1");
                let began = Instant::now();
                let status = match body {
                    Some(body) => {
                        let request = builder
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(body)).boxed())
                            .expect("request");
                        send(&mut sender, request).await
                    }
                    None => {
                        let request = builder
                            .body(
                                Empty::<Bytes>::new()
                                    .map_err(|never| match never {})
                                    .boxed(),
                            )
                            .expect("request");
                        send(&mut sender, request).await
                    }
                };
                let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                histogram.saturating_record(micros.max(1));
                match status {
                    Some(status) if status < 300 => {}
                    Some(_) => errors += 1,
                    None => {
                        errors += 1;
                        break; // the connection is gone
                    }
                }
            }
            (histogram, errors)
        }));
    }
    let mut total = histogram();
    let mut errors = 0;
    for task in tasks {
        let (h, e) = task.await.expect("client task");
        total.add(&h).expect("compatible histograms");
        errors += e;
    }
    Run {
        requests: total.len(),
        histogram: total,
        errors,
        elapsed: start.elapsed(),
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// Sends one request and reads its whole body; `None` when the connection failed.
async fn send(sender: &mut http1::SendRequest<Body>, request: Request<Body>) -> Option<u16> {
    sender.ready().await.ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    response.into_body().collect().await.ok()?;
    Some(status)
}

struct Scenario {
    name: String,
    clients: usize,
    items_per_request: u64,
    make: MakeRequest,
}

fn reading_text(sensor: &str, second: u64, temperature_centi: u64) -> String {
    let time = chrono::DateTime::from_timestamp(BASE_EPOCH + second as i64, 0)
        .expect("valid time")
        .format("%Y-%m-%d %H:%M:%S");
    format!(
        r#"{{"sensorID":"{sensor}","time":"{time}","temperature":{}.{:02}}}"#,
        temperature_centi / 100,
        temperature_centi % 100
    )
}

fn get(name: &str, clients: usize, path: &'static str) -> Scenario {
    Scenario {
        name: name.into(),
        clients,
        items_per_request: 0,
        make: Arc::new(move |_, _| (Method::GET, path, None)),
    }
}

/// Single-reading PUTs: each request a new reading of sensor `<prefix>-<client>`.
fn put_single(clients: usize) -> Scenario {
    let prefix = format!("p{clients}");
    Scenario {
        name: format!("PUT /api/temperature x1 ({clients} clients)"),
        clients,
        items_per_request: 1,
        make: Arc::new(move |task, seq| {
            let body = reading_text(&format!("{prefix}-{task}"), seq, 1_500 + seq % 1_000);
            (Method::PUT, "/api/temperature", Some(body))
        }),
    }
}

/// Batch PUTs of `size` new readings each.
fn put_batch(clients: usize, size: u64, prefix: &'static str) -> Scenario {
    Scenario {
        name: format!("PUT /api/temperature x{size} ({clients} clients)"),
        clients,
        items_per_request: size,
        make: Arc::new(move |task, seq| {
            let sensor = format!("{prefix}-{task}");
            let mut body = String::with_capacity(80 * size as usize);
            body.push('[');
            for i in 0..size {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(&reading_text(
                    &sensor,
                    seq * size + i,
                    1_000 + i * 7 % 2_000,
                ));
            }
            body.push(']');
            (Method::PUT, "/api/temperature", Some(body))
        }),
    }
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1e3
}

async fn measure(
    backend: &Backend,
    server: &Server,
    scenario: &Scenario,
    options: &Options,
    seq: &Arc<AtomicU64>,
    stored_readings: Option<u64>,
) -> Measurement {
    let count_requests =
        matches!(backend, Backend::Dynamodb { .. }) && scenario.items_per_request > 0;
    let warmup = Duration::from_secs_f64(options.warmup);
    let _ = drive(
        server.addr,
        scenario.clients,
        warmup,
        options.max_requests,
        scenario.make.clone(),
        seq.clone(),
    )
    .await;
    // DynamoDB calls are read from the server's counter: two scrapes in a row give what one
    // scrape costs (it refreshes the aggregate gauges), subtracted from the window's count.
    let dynamodb_before = if count_requests {
        let first = dynamodb_requests(server).await;
        let second = dynamodb_requests(server).await;
        Some((second, second.saturating_sub(first)))
    } else {
        None
    };
    let (server_cpu, client_cpu) = (server.cpu_seconds(), cpu_seconds("/proc/self/stat"));
    let emulator_cpu = dynamodb_local_cpu().filter(|_| matches!(backend, Backend::Dynamodb { .. }));
    let disk = server.disk_bytes();
    let run = drive(
        server.addr,
        scenario.clients,
        Duration::from_secs_f64(options.seconds),
        options.max_requests,
        scenario.make.clone(),
        seq.clone(),
    )
    .await;
    let (peak, rss) = server.memory();
    let seconds = run.elapsed.as_secs_f64();
    let server_cpu = (server.cpu_seconds() - server_cpu) / seconds;
    let client_cpu = (cpu_seconds("/proc/self/stat") - client_cpu) / seconds;
    let disk =
        server.disk_bytes().saturating_sub(disk) as f64 / 1024.0 / run.requests.max(1) as f64;
    let rps = run.requests as f64 / seconds;
    let mut measurement = Measurement {
        backend: backend.name().into(),
        scenario: scenario.name.clone(),
        transport: "http",
        clients: scenario.clients,
        requests: run.requests,
        errors: run.errors,
        seconds,
        requests_per_second: rps,
        items_per_request: scenario.items_per_request,
        items_per_second: rps * scenario.items_per_request as f64,
        p50_ms: ms(&run.histogram, 0.50),
        p99_ms: ms(&run.histogram, 0.99),
        p999_ms: ms(&run.histogram, 0.999),
        max_ms: run.histogram.max() as f64 / 1e3,
        server_peak_rss_mib: Some(peak as f64 / MIB),
        server_rss_mib: Some(rss as f64 / MIB),
        server_cpu_cores: Some(server_cpu),
        client_cpu_cores: Some(client_cpu),
        server_disk_kib_per_request: Some(disk),
        stored_readings,
        dynamodb_requests_per_reading: None,
        dynamodb_local_cpu_cores: None,
    };
    print_row(&measurement);
    if let (Some(before), Some(after)) = (emulator_cpu, dynamodb_local_cpu()) {
        let cores = (after - before) / seconds;
        measurement.dynamodb_local_cpu_cores = Some(cores);
        println!("  DynamoDB Local (JVM) CPU: {cores:.2} cores");
    }
    if let Some((before, scrape_cost)) = dynamodb_before {
        let after = dynamodb_requests(server).await;
        let calls = after.saturating_sub(before).saturating_sub(scrape_cost);
        let readings = (run.requests - run.errors) * scenario.items_per_request;
        if readings > 0 {
            let per_reading = calls as f64 / readings as f64;
            measurement.dynamodb_requests_per_reading = Some(per_reading);
            print_requests(calls, readings, per_reading, "server /metrics");
        }
    }
    measurement
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// Throughput scenarios on one server (embedded: the `GET /api` ceiling, then durable PUTs).
async fn put_scenarios(
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

/// Loads `from..to` readings in `batch`-reading requests over 8 connections; returns
/// readings/s.
async fn load(server: &Server, from: u64, to: u64, batch: u64) -> f64 {
    const SENSORS: u64 = 100;
    let next = Arc::new(AtomicU64::new(from / batch));
    let end = to / batch;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let next = next.clone();
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(connection);
            loop {
                let chunk = next.fetch_add(1, Ordering::Relaxed);
                if chunk >= end {
                    break;
                }
                let mut body = String::with_capacity(80 * batch as usize);
                body.push('[');
                for i in chunk * batch..(chunk + 1) * batch {
                    if i > chunk * batch {
                        body.push(',');
                    }
                    let sensor = format!("s{}", i % SENSORS);
                    body.push_str(&reading_text(&sensor, i / SENSORS, 500 + i % 3_000));
                }
                body.push(']');
                let request = Request::put("/api/temperature")
                    .header("host", "127.0.0.1")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)).boxed())
                    .expect("request");
                let status = send(&mut sender, request).await;
                assert_eq!(status, Some(200), "loading batch {chunk}");
            }
        }));
    }
    for task in tasks {
        task.await.expect("loader");
    }
    (to - from) as f64 / started.elapsed().as_secs_f64()
}

/// Times `Storage::stats` and `Storage::scan_stats` in this process on the stopped server's
/// data; checks they agree. Returns the two measurements.
fn time_in_process(
    backend: &Backend,
    dir: &Path,
    size: u64,
    options: &Options,
) -> Vec<Measurement> {
    let cache = Config::from_env().map_or(32 * 1024 * 1024, |c| c.embedded_cache_bytes);
    // Its own runtime, dropped at the end, so the database file is closed before the server
    // opens it again (the store's writer task holds the database too).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let results = runtime.block_on(async {
        let storage = Storage::new(
            StoreBackend::Embedded(
                EmbeddedStore::open(dir, cache, unobserved()).expect("open the store"),
            ),
            Metrics::new(),
        );
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
                histogram.saturating_record((began.elapsed().as_micros() as u64).max(1));
            }
            let scenario = format!("{name} @ {}", size_label(size));
            let seconds = started.elapsed().as_secs_f64();
            let m = in_process(backend, scenario, 1, &histogram, seconds, 0, Some(size));
            print_row(&m);
            results.push(m);
        }
        results
    });
    drop(runtime);
    results
}

/// A measurement taken in this process (no HTTP, no server process).
fn in_process(
    backend: &Backend,
    scenario: String,
    clients: usize,
    histogram: &Histogram<u64>,
    seconds: f64,
    items_per_request: u64,
    stored_readings: Option<u64>,
) -> Measurement {
    let rps = histogram.len() as f64 / seconds;
    Measurement {
        backend: backend.name().into(),
        scenario,
        transport: "in-process",
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
        stored_readings,
        dynamodb_requests_per_reading: None,
        dynamodb_local_cpu_cores: None,
    }
}

/// The storage layer's own ceiling for single-reading writes: `clients` tasks calling
/// `Storage::put_readings` back to back in this process, without HTTP. Separates the cost of
/// the group commit from the cost of the HTTP stack.
fn storage_ceiling(backend: &Backend, clients: usize, options: &Options) -> Measurement {
    let dir = tempfile::tempdir().expect("temporary directory");
    let cache = Config::from_env().map_or(32 * 1024 * 1024, |c| c.embedded_cache_bytes);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let m = runtime.block_on(async {
        let storage = Storage::new(
            StoreBackend::Embedded(
                EmbeddedStore::open(dir.path(), cache, unobserved()).expect("open"),
            ),
            Metrics::new(),
        );
        let duration = Duration::from_secs_f64(options.seconds);
        let started = Instant::now();
        let deadline = started + duration;
        let mut tasks = Vec::new();
        for task in 0..clients {
            let storage = storage.clone();
            tasks.push(tokio::spawn(async move {
                let mut histogram = histogram();
                let mut seq = 0u64;
                while Instant::now() < deadline {
                    let text = reading_text(&format!("c{task}"), seq, 1_500 + seq % 1_000);
                    let value: Value = serde_json::from_str(&text).expect("json");
                    let batch = telemetry::domain::Batch::parse(&value).expect("valid");
                    let began = Instant::now();
                    storage.put_readings(batch).await.expect("stored");
                    histogram.saturating_record((began.elapsed().as_micros() as u64).max(1));
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
        in_process(backend, name, clients, &total, seconds, 1, None)
    });
    drop(runtime);
    print_row(&m);
    m
}

fn size_label(size: u64) -> String {
    format!("10^{}", (size as f64).log10().round() as u32)
}

/// `GET /api/stats` as the store grows through `sizes` (loaded in `batch`-reading requests),
/// with the scan baseline at each size on the embedded store.
async fn stats_series(
    backend: &Backend,
    options: &Options,
    sizes: &[u64],
    batch: u64,
) -> Vec<Measurement> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let mut results = Vec::new();
    let mut stored = 0;
    for &size in sizes {
        let server = Server::start(backend, &data, options);
        eprintln!(
            "  server (re)started in {:.0} ms with {stored} readings stored",
            server.started_in.as_secs_f64() * 1e3
        );
        let rate = load(&server, stored, size, batch).await;
        eprintln!(
            "  loaded {} readings at {:.0} readings/s ({}-reading batches, 8 clients)",
            size - stored,
            rate,
            if batch == 1_000 {
                "1,000".to_owned()
            } else {
                batch.to_string()
            }
        );
        stored = size;
        let scenario = get(
            &format!("GET /api/stats @ {} (16 clients)", size_label(size)),
            16,
            "/api/stats",
        );
        results.push(
            measure(
                backend,
                &server,
                &scenario,
                options,
                &Arc::default(),
                Some(size),
            )
            .await,
        );
        server.stop();
        if matches!(backend, Backend::Embedded) {
            // On a thread of its own: it builds (and drops) its own runtime.
            let timed = std::thread::scope(|s| {
                s.spawn(|| time_in_process(backend, &data, size, options))
                    .join()
                    .expect("in-process timing")
            });
            results.extend(timed);
        }
    }
    results
}

fn embedded_scenarios(options: &Options) -> Vec<Measurement> {
    let backend = Backend::Embedded;
    let runtime = client_runtime(options);
    let scenarios = [
        get("GET /api (64 clients)", 64, "/api"),
        put_single(1),
        put_single(16),
        put_single(64),
        put_batch(16, 100, "b"),
    ];
    let mut results = runtime.block_on(put_scenarios(&backend, options, &scenarios));
    if options.wants("Storage::put_readings x1 (64 tasks)") {
        results.push(storage_ceiling(&backend, 64, options));
    }
    if options.wants("GET /api/stats") || options.wants("scan") {
        let sizes = [1_000, 100_000, 1_000_000];
        results.extend(runtime.block_on(stats_series(&backend, options, &sizes, 1_000)));
    }
    results
}

// ---------------------------------------------------------------------------------------------
// DynamoDB (DynamoDB Local)

/// The DynamoDB scenarios, run when `BENCH_DYNAMODB_ENDPOINT=http://127.0.0.1:PORT` names a
/// DynamoDB Local (`scripts/bench-dynamodb.sh` starts one and sets it, with the AWS variables
/// of `scripts/dynamodb-local.sh env PORT`, which both the server and this process need):
/// - durable single-reading `PUT` and `PUT` batches of 100 at 64 clients, through the real
///   server (`STORAGE=dynamodb`, a fresh `TABLE_NAME`, `DYNAMODB_CREATE_TABLE=true`), with the
///   DynamoDB calls per reading read from the server's `telemetry_dynamodb_requests_total`;
/// - the naive baseline in the same run: 64 tasks in this process, each calling
///   `DynamoStore::naive_put` (one unconditional `PutItem` per reading, no duplicate check, no
///   aggregate) back to back on a table of its own; calls from `DynamoStore::request_count`;
/// - `GET /api/stats` at 16 clients after 10^3 and 10^4 readings (a third table).
fn dynamodb_scenarios(options: &Options) -> Vec<Measurement> {
    const HOW: &str = "run scripts/bench-dynamodb.sh, or set BENCH_DYNAMODB_ENDPOINT=\
                       http://127.0.0.1:PORT and eval \"$(scripts/dynamodb-local.sh env PORT)\"";
    let Some(endpoint) = std::env::var("BENCH_DYNAMODB_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
    else {
        eprintln!("DynamoDB scenarios skipped (BENCH_DYNAMODB_ENDPOINT not set): {HOW}");
        return Vec::new();
    };
    if !endpoint.starts_with("http://127.0.0.1:") {
        eprintln!(
            "DynamoDB scenarios skipped: BENCH_DYNAMODB_ENDPOINT must be http://127.0.0.1:PORT \
             (DynamoDB Local binds every interface; clients only use loopback), got {endpoint}"
        );
        return Vec::new();
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
        return Vec::new();
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let backend = Backend::Dynamodb {
        table: format!("bench-{stamp}-{}", std::process::id()),
        endpoint,
    };
    // DynamoDB Local is a JVM: give its JIT a longer warm-up before each scenario.
    let options = &Options {
        warmup: options.warmup.max(2.0),
        ..options.clone()
    };
    let runtime = client_runtime(options);
    let scenarios = [put_single(64), put_batch(64, 100, "b")];
    let mut results = runtime.block_on(put_scenarios(&backend, options, &scenarios));
    if options.wants_on(&backend, NAIVE) {
        let naive = backend.with_table_suffix("naive");
        results.push(runtime.block_on(naive_baseline(&naive, 64, options)));
    }
    if options.wants_on(&backend, "GET /api/stats") {
        let stats = backend.with_table_suffix("stats");
        results.extend(runtime.block_on(stats_series(&stats, options, &[1_000, 10_000], 100)));
    }
    drop(runtime);
    print_dynamodb_summary(&results);
    results
}

const NAIVE: &str = "naive PutItem x1 (64 tasks)";

/// CPU seconds used so far by DynamoDB Local, when `BENCH_DYNAMODB_PID` names its process.
fn dynamodb_local_cpu() -> Option<f64> {
    let pid = std::env::var("BENCH_DYNAMODB_PID").ok()?;
    let path = format!("/proc/{}/stat", pid.trim());
    Path::new(&path).exists().then(|| cpu_seconds(&path))
}

/// `telemetry_dynamodb_requests_total` from the server's `/metrics` (one scrape).
async fn dynamodb_requests(server: &Server) -> u64 {
    let stream = TcpStream::connect(server.addr).await.expect("connect");
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let request = Request::get("/metrics")
        .header("host", "127.0.0.1")
        .body(
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("request");
    let response = sender.send_request(request).await.expect("/metrics");
    assert!(
        response.status().is_success(),
        "/metrics answered {}",
        response.status()
    );
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|line| line.strip_prefix("telemetry_dynamodb_requests_total "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
        .expect("telemetry_dynamodb_requests_total in /metrics")
}

fn print_requests(calls: u64, readings: u64, per_reading: f64, source: &str) {
    println!(
        "  DynamoDB requests: {calls} for {readings} readings = {per_reading:.3} per reading \
         ({source})"
    );
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
                let text = reading_text(&format!("{prefix}-{task}"), seq, 1_500 + seq % 1_000);
                let value: Value = serde_json::from_str(&text).expect("json");
                let (_, reading) = telemetry::domain::Batch::parse(&value)
                    .expect("valid")
                    .readings
                    .remove(0);
                let began = Instant::now();
                if store.naive_put(&reading).await.is_err() {
                    errors += 1;
                }
                histogram.saturating_record((began.elapsed().as_micros() as u64).max(1));
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
    let (histogram, errors) = naive_writers(
        &store,
        clients,
        Duration::from_secs_f64(options.seconds),
        "n",
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let calls = store.request_count() - before;
    let readings = histogram.len() - errors;
    let mut m = in_process(backend, NAIVE.into(), clients, &histogram, seconds, 1, None);
    m.errors = errors;
    m.items_per_second = readings as f64 / seconds;
    print_row(&m);
    if let (Some(before), Some(after)) = (emulator_cpu, dynamodb_local_cpu()) {
        let cores = (after - before) / seconds;
        m.dynamodb_local_cpu_cores = Some(cores);
        println!("  DynamoDB Local (JVM) CPU: {cores:.2} cores");
    }
    if readings > 0 {
        let per_reading = calls as f64 / readings as f64;
        m.dynamodb_requests_per_reading = Some(per_reading);
        print_requests(calls, readings, per_reading, "DynamoStore::request_count");
    }
    m
}

fn print_dynamodb_summary(results: &[Measurement]) {
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

fn client_runtime(options: &Options) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.client_threads)
        .enable_all()
        .build()
        .expect("runtime")
}

// ---------------------------------------------------------------------------------------------
// Report

fn print_header() {
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

fn print_row(m: &Measurement) {
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

#[derive(Debug, serde::Serialize)]
struct Target {
    target: &'static str,
    measured: String,
    met: Option<bool>,
}

fn find<'a>(results: &'a [Measurement], backend: &str, scenario: &str) -> Option<&'a Measurement> {
    results
        .iter()
        .find(|m| m.backend == backend && m.scenario == scenario)
}

fn targets(results: &[Measurement]) -> Vec<Target> {
    let e = "embedded";
    let mut targets = Vec::new();
    let (get, put) = (
        find(results, e, "GET /api (64 clients)"),
        find(results, e, "PUT /api/temperature x1 (64 clients)"),
    );
    targets.push(match (get, put) {
        (Some(get), Some(put)) => {
            let ratio = put.requests_per_second / get.requests_per_second;
            Target {
                target: "durable PUT at 64 clients >= 50% of GET /api req/s",
                measured: format!(
                    "{:.0} / {:.0} req/s = {:.1}%",
                    put.requests_per_second,
                    get.requests_per_second,
                    ratio * 100.0
                ),
                met: Some(ratio >= 0.5),
            }
        }
        _ => Target {
            target: "durable PUT at 64 clients >= 50% of GET /api req/s",
            measured: "not run".into(),
            met: None,
        },
    });
    let (small, large) = (
        find(results, e, "GET /api/stats @ 10^3 (16 clients)"),
        find(results, e, "GET /api/stats @ 10^6 (16 clients)"),
    );
    targets.push(match (small, large) {
        (Some(small), Some(large)) => {
            let ratio = large.p99_ms / small.p99_ms;
            Target {
                target: "GET /api/stats p99 at 10^6 <= 1.5x p99 at 10^3",
                measured: format!(
                    "{:.3} ms / {:.3} ms = {ratio:.2}x",
                    large.p99_ms, small.p99_ms
                ),
                met: Some(ratio <= 1.5),
            }
        }
        _ => Target {
            target: "GET /api/stats p99 at 10^6 <= 1.5x p99 at 10^3",
            measured: "not run".into(),
            met: None,
        },
    });
    targets.push(match large.and_then(|m| m.server_peak_rss_mib) {
        Some(peak) => Target {
            target: "server peak RSS with 10^6 readings <= 128 MiB",
            measured: format!("{peak:.1} MiB"),
            met: Some(peak <= 128.0),
        },
        None => Target {
            target: "server peak RSS with 10^6 readings <= 128 MiB",
            measured: "not run".into(),
            met: None,
        },
    });
    targets
}

fn machine() -> Value {
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

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn results_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("bench-results").join("http_load.json")
}

fn main() {
    let options = Options::parse();
    let started = Instant::now();
    let machine = machine();
    eprintln!(
        "http_load: {} s per scenario (+{} s warm-up), machine {machine}",
        options.seconds, options.warmup
    );
    print_header();
    let mut results = embedded_scenarios(&options);
    results.extend(dynamodb_scenarios(&options));
    let targets = targets(&results);
    println!();
    for t in &targets {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not run",
        };
        println!("target: {:<55} {:<8} {}", t.target, verdict, t.measured);
    }
    let report = json!({
        "benchmark": "http_load",
        "unix_time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "machine": machine,
        "loadavg_after": load_average(),
        "seconds_per_scenario": options.seconds,
        "warmup_seconds": options.warmup,
        "server_log": options.server_log,
        "total_seconds": started.elapsed().as_secs_f64(),
        "results": results,
        "targets": targets,
    });
    let path = results_path();
    std::fs::create_dir_all(path.parent().expect("parent")).expect("results directory");
    std::fs::write(&path, serde_json::to_string_pretty(&report).expect("json"))
        .expect("write results");
    println!(
        "\nwrote {} ({:.0} s in all)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
}
