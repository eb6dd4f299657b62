//! Starting the real `telemetry` binary as a child process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub base: String,
    /// Every line the server has logged so far (every line, once `terminate` returned).
    pub log: Arc<Mutex<Vec<String>>>,
    /// The thread that drains the log; it ends when the server's stdout closes.
    drain: Option<JoinHandle<()>>,
}

/// Starts the binary on 127.0.0.1 with an OS-chosen port, read back from its JSON log.
pub fn start(data_dir: &Path) -> Server {
    start_with(data_dir, &[])
}

pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_telemetry"))
        .env("BIND_ADDR", "127.0.0.1")
        .env("PORT", "0")
        .env("DATA_DIR", data_dir)
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "json")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let log = Arc::new(Mutex::new(Vec::new()));
    let port = loop {
        let line = lines
            .next()
            .expect("the server logs before exiting")
            .expect("readable log");
        log.lock().unwrap().push(line.clone());
        let event: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("LOG_FORMAT=json logs JSON lines ({e}): {line}"));
        if event["message"] == "listening" {
            let port = event["port"]
                .as_u64()
                .expect("the listening line has a port");
            break u16::try_from(port).expect("a TCP port");
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    let kept = log.clone();
    let drain = std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    Server {
        child,
        port,
        base: format!("http://127.0.0.1:{port}"),
        log,
        drain: Some(drain),
    }
}

impl Server {
    /// Sends SIGTERM and waits (bounded) for the exit status; then the log holds every line
    /// the server wrote (the drain thread has read its stdout to the end).
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("waitable") {
                if let Some(drain) = self.drain.take() {
                    drain.join().expect("the log drain does not panic");
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
