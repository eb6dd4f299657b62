//! The service under test as a child process, and what can be read about it from outside.
//!
//! The server is the release binary (`CARGO_BIN_EXE_telemetry`, or `BENCH_SERVER_BIN` when set:
//! another build of it, e.g. a release server under a debug load generator) on 127.0.0.1 with
//! `PORT=0` and the given `DATA_DIR`; the port comes from its JSON "listening" log line. A separate process
//! keeps the load generator out of the server's peak RSS. Its probes ([`Server::snapshot`],
//! [`Server::usage_since`]) read `/proc/<pid>/{stat,io,status}` and, on DynamoDB, the server's
//! request counter and the emulator's CPU: the measurement code never asks which backend runs.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::options::Options;

/// Which storage the server uses: the environment it is started with.
#[derive(Debug, Clone)]
pub enum Backend {
    Embedded,
    /// DynamoDB Local at `endpoint` (always `http://127.0.0.1:PORT`), table `table`.
    Dynamodb {
        table: String,
        endpoint: String,
    },
}

impl Backend {
    pub fn name(&self) -> &'static str {
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
    pub fn with_table_suffix(&self, suffix: &str) -> Self {
        match self {
            Self::Embedded => Self::Embedded,
            Self::Dynamodb { table, endpoint } => Self::Dynamodb {
                table: format!("{table}-{suffix}"),
                endpoint: endpoint.clone(),
            },
        }
    }
}

pub struct Server {
    child: Child,
    backend: Backend,
    pub addr: SocketAddr,
    pub started_in: Duration,
}

/// Counters read before a measured window (see [`Server::usage_since`]).
pub struct Snapshot {
    cpu_seconds: f64,
    disk_bytes: u64,
    /// `(count, what one scrape itself adds)` of the store's requests, when counted.
    store_requests: Option<(u64, u64)>,
    emulator_cpu_seconds: Option<f64>,
}

/// What the server (and the store behind it) used during a window.
pub struct Usage {
    pub cpu_seconds: f64,
    pub disk_bytes: u64,
    /// Requests the server sent to its store (DynamoDB only).
    pub store_requests: Option<u64>,
    /// CPU of the store's own process (DynamoDB Local, when `BENCH_DYNAMODB_PID` names it).
    pub emulator_cpu_seconds: Option<f64>,
}

impl Server {
    pub fn start(backend: &Backend, data_dir: &Path, options: &Options) -> Self {
        let log_path = data_dir.with_extension(format!("server-{}.log", unique()));
        let log = File::create(&log_path).expect("server log file");
        let mut command = Command::new(server_binary());
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
                    backend: backend.clone(),
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `(VmHWM, VmRSS)` in bytes: peak and current resident memory of the server.
    pub fn memory(&self) -> (u64, u64) {
        memory(self.pid())
    }

    /// The counters a window starts from; `store_requests` asks for the store's request count
    /// too (it costs two scrapes of `/metrics`, so only write scenarios ask).
    pub async fn snapshot(&self, store_requests: bool) -> Snapshot {
        // Two scrapes in a row give what one scrape costs (it refreshes the aggregate gauges),
        // subtracted from the window's count.
        let store_requests = match (&self.backend, store_requests) {
            (Backend::Dynamodb { .. }, true) => {
                let first = self.dynamodb_requests().await;
                let second = self.dynamodb_requests().await;
                Some((second, second.saturating_sub(first)))
            }
            _ => None,
        };
        Snapshot {
            cpu_seconds: cpu_seconds(self.pid()),
            disk_bytes: disk_bytes(self.pid()),
            store_requests,
            emulator_cpu_seconds: self.emulator_cpu_seconds(),
        }
    }

    /// What was used since `before`.
    pub async fn usage_since(&self, before: &Snapshot) -> Usage {
        let cpu = cpu_seconds(self.pid()) - before.cpu_seconds;
        let disk = disk_bytes(self.pid()).saturating_sub(before.disk_bytes);
        let emulator = before
            .emulator_cpu_seconds
            .zip(self.emulator_cpu_seconds())
            .map(|(before, after)| after - before);
        let store_requests = match before.store_requests {
            Some((count, scrape_cost)) => Some(
                self.dynamodb_requests()
                    .await
                    .saturating_sub(count)
                    .saturating_sub(scrape_cost),
            ),
            None => None,
        };
        Usage {
            cpu_seconds: cpu,
            disk_bytes: disk,
            store_requests,
            emulator_cpu_seconds: emulator,
        }
    }

    fn emulator_cpu_seconds(&self) -> Option<f64> {
        matches!(self.backend, Backend::Dynamodb { .. })
            .then(dynamodb_local_cpu)
            .flatten()
    }

    /// `telemetry_dynamodb_requests_total` from the server's `/metrics` (one scrape).
    async fn dynamodb_requests(&self) -> u64 {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        let request = Request::get("/metrics")
            .header("host", "127.0.0.1")
            .body(Empty::<Bytes>::new())
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

    /// SIGTERM, then wait for the graceful drain (SIGKILL after 30 s).
    pub fn stop(mut self) {
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

impl Server {
    /// `kill -9`: the process gets no chance to flush anything.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
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

/// CPU seconds used so far by DynamoDB Local, when `BENCH_DYNAMODB_PID` names its process.
pub fn dynamodb_local_cpu() -> Option<f64> {
    let pid: u32 = std::env::var("BENCH_DYNAMODB_PID")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new(&format!("/proc/{pid}"))
        .exists()
        .then(|| cpu_seconds(pid))
}

/// utime + stime of `/proc/<pid>/stat`, in seconds (USER_HZ is 100 on Linux).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
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

/// `(VmHWM, VmRSS)` of process `pid`, in bytes.
pub fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Bytes process `pid` wrote towards storage so far (`write_bytes`, page cache included).
pub fn disk_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("write_bytes:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The binary under test: `BENCH_SERVER_BIN`, else the one cargo built with this benchmark.
pub fn server_binary() -> std::path::PathBuf {
    std::env::var_os("BENCH_SERVER_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_telemetry").into(), Into::into)
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
