//! Running one example: the real binary as a fresh server, the command in bash with the real
//! curl, and the comparison of what came back with what README.md says.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::markdown::{Example, is_curl};
use crate::pattern::output_matches;

/// The `telemetry` binary on 127.0.0.1, any port, a fresh data directory.
pub struct Server {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start(env: &[(String, String)]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut child = Command::new(env!("CARGO_BIN_EXE_telemetry"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND_ADDR", "127.0.0.1")
            .env("PORT", "0")
            .env("DATA_DIR", dir.path())
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn,telemetry=info")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("the server logs `listening` before it exits")
                .expect("a readable log");
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["message"] == "listening" {
                break event["port"].as_u64().expect("a port");
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            address: format!("127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one command printed, and the status and headers of its (last) response.
pub struct Run {
    stdout: String,
    stderr: String,
    success: bool,
    status: Option<u16>,
    headers: Vec<(String, String)>,
}

pub fn run(example: &Example, server: &Server, scratch: &Path) -> Run {
    let headers_file = scratch.join("headers");
    let _ = std::fs::remove_file(&headers_file);
    let mut command = example.command.replace("localhost:8080", &server.address);
    if is_curl(&command) {
        // `-q` (first) ignores a ~/.curlrc, so only the README's arguments shape the request.
        let extra = format!("curl -q -sS -D {} ", headers_file.display());
        // Only the first `curl` of a pipeline: one response per command.
        let at = command.find("curl ").expect("is_curl found it");
        command.replace_range(at..at + "curl ".len(), &extra);
    }
    let output = Command::new("bash")
        .args(["-o", "pipefail", "-c", &command])
        .current_dir(scratch)
        // A proxy from the environment must not stand between curl and the test server.
        .env("no_proxy", "127.0.0.1")
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .expect("bash runs");
    let raw_headers = std::fs::read_to_string(&headers_file).unwrap_or_default();
    // With redirects or `100 Continue` there are several header blocks: the last one counts.
    let last = raw_headers
        .split("\r\n\r\n")
        .filter(|block| !block.trim().is_empty())
        .last()
        .unwrap_or("");
    let mut lines = last.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok());
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        success: output.status.success(),
        status,
        headers,
    }
}

fn is_header_line(line: &str) -> bool {
    line.split_once(": ").is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// Checks one command's run against the README; the error says what differs.
pub fn check(example: &Example, run: &Run) -> Result<(), String> {
    if !run.success {
        return Err(format!("the command failed: {}", run.stderr.trim()));
    }
    let mut expected = example.expected.iter().map(String::as_str).peekable();
    let mut stdout = run.stdout.as_str();
    if is_curl(&example.command) {
        let status = run.status.ok_or("no HTTP response")?;
        match expected.peek().filter(|line| line.starts_with("HTTP/")) {
            Some(status_line) => {
                let written: u16 = status_line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .ok_or_else(|| format!("cannot read the status of {status_line:?}"))?;
                if written != status {
                    return Err(format!("status {status}, README says {status_line:?}"));
                }
                expected.next();
                while let Some(line) = expected.next_if(|line| is_header_line(line)) {
                    let (name, value) = line.split_once(": ").expect("a header line");
                    let found = run.headers.iter().any(|(n, v)| {
                        n.eq_ignore_ascii_case(name.trim()) && output_matches(value, v)
                    });
                    if !found {
                        return Err(format!("no header {line:?} in {:?}", run.headers));
                    }
                }
                // `curl -i` prints the headers before the body: compare the body alone.
                if stdout.starts_with("HTTP/") {
                    stdout = stdout.split_once("\n\n").map_or("", |(_, body)| body);
                }
            }
            None if !(200..300).contains(&status) => {
                return Err(format!(
                    "status {status} (the README shows no status line, so 2xx is expected); body: {}",
                    run.stdout.trim()
                ));
            }
            None => {}
        }
    }
    let body: Vec<&str> = expected.collect();
    if body.is_empty() {
        return Ok(());
    }
    let pattern = body.join("\n");
    if output_matches(&pattern, stdout) {
        Ok(())
    } else {
        Err(format!(
            "the output differs.\nREADME:\n{pattern}\nactual:\n{}",
            stdout.trim()
        ))
    }
}
