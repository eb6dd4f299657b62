//! The systems compared, each a child process on 127.0.0.1 with a fresh data directory and the
//! configuration written here: how each is started, written to, counted and flushed.
//!
//! - ours: the release binary, embedded store (every `200` after an fsync'd commit);
//! - InfluxDB 1.6 (`influxd`): `wal-fsync-delay = "0s"`, so a write is answered after its WAL
//!   segment is fsync'd (concurrent writes share one fsync): the same durability as ours;
//! - VictoriaMetrics 1.79: answers once the points are in its in-memory buffers, which reach
//!   the disk about every second: acknowledged before any fsync.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::Value;

use crate::load::{Call, send, try_connect};
use crate::options::Options;
use crate::server::{Backend, Server};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// Ours through `PUT /api/temperature` (JSON).
    OursJson,
    /// Ours through `POST /write` (line protocol), when the route exists.
    OursLineProtocol,
    InfluxDb,
    VictoriaMetrics,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            Self::OursJson => "ours (JSON)",
            Self::OursLineProtocol => "ours (line protocol)",
            Self::InfluxDb => "InfluxDB 1.6",
            Self::VictoriaMetrics => "VictoriaMetrics 1.79",
        }
    }

    /// The durability class every table labels.
    pub fn durability(self) -> &'static str {
        match self {
            Self::VictoriaMetrics => "ack-before-fsync",
            _ => "ack-after-fsync",
        }
    }

    /// Most readings one request may carry: our JSON route refuses more than 1,000 (the
    /// service's batch limit); line protocol takes up to 10,000 lines on every system.
    pub fn max_batch(self) -> u64 {
        match self {
            Self::OursJson => 1_000,
            _ => 10_000,
        }
    }

    pub fn is_ours(self) -> bool {
        matches!(self, Self::OursJson | Self::OursLineProtocol)
    }

    /// The peer's binary, `None` when it is not installed.
    pub fn binary(self) -> Option<PathBuf> {
        let name = match self {
            Self::OursJson | Self::OursLineProtocol => {
                return Some(crate::server::server_binary());
            }
            Self::InfluxDb => "influxd",
            Self::VictoriaMetrics => "victoria-metrics",
        };
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|dir| Path::new(dir).join(name))
            .find(|path| path.is_file())
    }

    /// Starts the system on a fresh (or, after a kill, the same) `data` directory.
    pub async fn start(self, data: &Path, options: &Options) -> Peer {
        std::fs::create_dir_all(data).expect("data directory");
        let process = match self {
            Self::OursJson | Self::OursLineProtocol => Process::Ours(Server::start(
                &Backend::Embedded,
                &data.join("store"),
                options,
            )),
            Self::InfluxDb | Self::VictoriaMetrics => {
                let port = free_port();
                let child = self.spawn(data, port);
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                return Peer::ready(self, Process::Other(child, addr), data).await;
            }
        };
        Peer::ready(self, process, data).await
    }

    fn spawn(self, data: &Path, port: u16) -> Child {
        let log = std::fs::File::create(data.join("server.log")).expect("log file");
        let mut command = match self {
            Self::InfluxDb => {
                let config = data.join("influxdb.conf");
                std::fs::write(&config, influxdb_config(data, port, free_port()))
                    .expect("write influxdb.conf");
                let mut command = Command::new(self.binary().expect("influxd"));
                command.arg("-config").arg(config);
                command
            }
            Self::VictoriaMetrics => {
                let mut command = Command::new(self.binary().expect("victoria-metrics"));
                command.args(victoria_metrics_flags(data, port));
                command
            }
            Self::OursJson | Self::OursLineProtocol => unreachable!("started through Server"),
        };
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start the peer")
    }

    /// Request `seq` of a scenario writing `batch` readings: readings
    /// `seq * batch .. (seq + 1) * batch` of `timeline`.
    pub fn write(self, timeline: &super::data::Timeline, seq: u64, batch: u64) -> Call {
        use super::data::{json_body, line_body};
        let (from, to) = (seq * batch, (seq + 1) * batch);
        match self {
            Self::OursJson => Call::json(
                Method::PUT,
                "/api/temperature",
                json_body(timeline, from, to),
            ),
            Self::OursLineProtocol | Self::InfluxDb => Call::with_body(
                Method::POST,
                "/write?db=bench",
                "text/plain",
                line_body(timeline, from, to),
            ),
            Self::VictoriaMetrics => Call::with_body(
                Method::POST,
                "/write",
                "text/plain",
                line_body(timeline, from, to),
            ),
        }
    }
}

impl System {
    /// Bytes the system's store occupies on disk under its `data` directory (its logs and
    /// configuration left out).
    pub fn disk_bytes(self, data: &Path) -> u64 {
        let dirs: &[&str] = match self {
            Self::OursJson | Self::OursLineProtocol => &["store"],
            Self::InfluxDb => &["meta", "data", "wal"],
            Self::VictoriaMetrics => &["vm"],
        };
        dirs.iter().map(|dir| disk_usage(&data.join(dir))).sum()
    }
}

/// InfluxDB 1.6's configuration: loopback only, fsync before every answer, no self-monitoring.
pub fn influxdb_config(data: &Path, http_port: u16, rpc_port: u16) -> String {
    let d = data.display();
    format!(
        r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{d}/meta"

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  # Answer a write only after its WAL segment is fsync'd (concurrent writes share an fsync).
  wal-fsync-delay = "0s"
  query-log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false

[logging]
  level = "warn"
"#
    )
}

/// VictoriaMetrics 1.79's flags: loopback only, retention long enough for any timestamp we
/// send, no response cache (every query is computed, as the other systems compute theirs).
pub fn victoria_metrics_flags(data: &Path, port: u16) -> Vec<String> {
    vec![
        format!("-storageDataPath={}", data.join("vm").display()),
        format!("-httpListenAddr=127.0.0.1:{port}"),
        "-retentionPeriod=100y".into(),
        "-search.disableCache".into(),
        "-loggerLevel=WARN".into(),
    ]
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("address").port()
}

enum Process {
    Ours(Server),
    Other(Child, SocketAddr),
}

/// A running system.
pub struct Peer {
    pub system: System,
    process: Option<Process>,
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub started_in: Duration,
}

impl Peer {
    async fn ready(system: System, process: Process, data: &Path) -> Self {
        let started = Instant::now();
        let addr = match &process {
            Process::Ours(server) => server.addr,
            Process::Other(_, addr) => *addr,
        };
        let mut peer = Self {
            system,
            process: Some(process),
            addr,
            data: data.to_owned(),
            started_in: Duration::ZERO,
        };
        let health = match system {
            System::InfluxDb => "/ping",
            System::VictoriaMetrics => "/health",
            _ => "/api",
        };
        {
            while peer
                .answer(Call::get(health))
                .await
                .is_none_or(|(s, _)| s >= 300)
            {
                if let Some(Process::Other(child, _)) = &mut peer.process
                    && let Ok(Some(status)) = child.try_wait()
                {
                    let log = std::fs::read_to_string(data.join("server.log")).unwrap_or_default();
                    panic!("{} exited with {status}:\n{log}", system.name());
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "{} did not start",
                    system.name()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if system == System::InfluxDb {
                let call = Call::with_body(
                    Method::POST,
                    "/query?q=CREATE%20DATABASE%20bench",
                    "application/x-www-form-urlencoded",
                    "",
                );
                let status = peer.answer(call).await.map(|(s, _)| s);
                assert_eq!(status, Some(200), "CREATE DATABASE bench");
            }
        }
        peer.started_in = started.elapsed();
        peer
    }

    pub fn pid(&self) -> u32 {
        match self.process.as_ref().expect("running") {
            Process::Ours(server) => server.pid(),
            Process::Other(child, _) => child.id(),
        }
    }

    /// One request on a connection of its own; `None` when the connection failed.
    pub async fn answer(&self, call: Call) -> Option<(u16, bytes::Bytes)> {
        let mut sender = try_connect(self.addr).await?;
        send(&mut sender, call).await
    }

    /// `GET path` as JSON; panics on anything but a 2xx JSON answer.
    pub async fn json(&self, path: impl Into<std::borrow::Cow<'static, str>>) -> Value {
        let path = path.into();
        let (status, body) = self.answer(Call::get(path.clone())).await.expect("answer");
        assert!(
            status < 300,
            "{} GET {path}: {status} {}",
            self.system.name(),
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).expect("a JSON answer")
    }

    /// Makes everything acknowledged visible to queries (VictoriaMetrics buffers for ~1 s).
    pub async fn flush(&self) {
        if self.system == System::VictoriaMetrics {
            let status = self
                .answer(Call::get("/internal/force_flush"))
                .await
                .map(|(s, _)| s);
            assert_eq!(status, Some(200), "force_flush");
        }
    }

    /// How many readings the system holds once what it acknowledged is visible:
    /// VictoriaMetrics makes points searchable some time after `force_flush` answers, so it is
    /// asked again (every 0.5 s, for up to 15 s) until it shows `expected` or, without an
    /// expectation, gives the same count twice in a row. The others are read once.
    pub async fn settled_count(&self, expected: Option<u64>) -> u64 {
        let mut count = self.count().await;
        if self.system != System::VictoriaMetrics {
            return count;
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && expected.is_none_or(|e| e != count) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let again = self.count().await;
            if expected.is_none() && again == count {
                break;
            }
            count = again;
        }
        count
    }

    /// How many readings the system holds (all time), as it answers now.
    pub async fn count(&self) -> u64 {
        self.flush().await;
        match self.system {
            System::OursJson | System::OursLineProtocol => {
                self.json("/api/stats").await["Count"].as_u64().unwrap_or(0)
            }
            System::InfluxDb => {
                let v = self
                    .json("/query?db=bench&q=SELECT%20count(value)%20FROM%20temperature")
                    .await;
                v.pointer("/results/0/series/0/values/0/1")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            }
            System::VictoriaMetrics => {
                let q = "sum(count_over_time(temperature_value[3650d]))";
                super::queries::promql_scalar(self, q, None)
                    .await
                    .map_or(0, |v| v as u64)
            }
        }
    }

    /// SIGTERM and wait (each system flushes what it buffers).
    pub fn stop(mut self) {
        match self.process.take().expect("running") {
            Process::Ours(server) => server.stop(),
            Process::Other(mut child, _) => {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(30);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// `kill -9`: nothing is flushed.
    pub fn kill(mut self) {
        match self.process.take().expect("running") {
            Process::Ours(server) => server.kill(),
            Process::Other(mut child, _) => {
                child.kill().expect("SIGKILL");
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Only reached on a panic path: stop() and kill() take the process.
        if let Some(Process::Other(mut child, _)) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Bytes allocated on disk under `path`, recursively (`st_blocks`, so preallocated or sparse
/// files count what they occupy).
fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !metadata.is_dir() {
        return metadata.blocks() * 512;
    }
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| disk_usage(&entry.path()))
                .sum()
        })
        .unwrap_or(0)
}
