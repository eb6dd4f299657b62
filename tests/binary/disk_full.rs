//! A full disk, for real: the real binary on a 20 MiB tmpfs. Writes through the API until the
//! disk is full, then fill what is left with a file of our own: writes answer 503 with
//! `Retry-After` and `/api/ready` answers 503. Delete the files we placed: the instance comes
//! back by itself (no restart), writes succeed again, and every acknowledged reading is there,
//! before and after a restart; `telemetry verify` finds the store consistent.
//!
//! Mounting a tmpfs needs root (CI runs the suite as root, see `scripts/test.sh`). Without it
//! the test says so loudly on stderr and checks nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::start;

/// Readings per PUT.
const BATCH: usize = 500;
/// Most PUTs before the disk must have filled (20 MiB hold far fewer).
const MOST_BATCHES: usize = 2_000;

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (after saying why, loudly) when this process may not mount.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !is_root {
            eprintln!(
                "\n!!!!!!!! SKIPPED: the full-disk test needs root to mount a tmpfs; it checked \
                 NOTHING. Run it as root (scripts/test.sh does in CI). !!!!!!!!\n"
            );
            return None;
        }
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount -t tmpfs failed as root");
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Writes zeroes to `path` until the file system is full (or `most` bytes are written).
fn fill(path: &Path, most: usize) -> usize {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0;
    while written < most {
        match file.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n,
        }
    }
    let _ = file.sync_all();
    written
}

fn batch(index: usize) -> Value {
    let readings = (0..BATCH).map(|i| {
        let n = index * BATCH + i;
        json!({
            "sensorID": format!("s{}", n % 7),
            "time": time_of(n),
            "temperature": format!("{}.{:03}", n % 50, n % 1000),
        })
    });
    Value::Array(readings.collect())
}

/// A distinct second per reading.
fn time_of(n: usize) -> String {
    let at = chrono::DateTime::from_timestamp(1_704_067_200 + n as i64, 0).unwrap();
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn put(client: &reqwest::Client, base: &str, index: usize) -> reqwest::Response {
    client
        .put(format!("{base}/api/temperature"))
        .json(&batch(index))
        .send()
        .await
        .expect("the server answers")
}

async fn count(client: &reqwest::Client, base: &str) -> u64 {
    let stats: Value = client
        .get(format!("{base}/api/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["Count"].as_u64().unwrap()
}

/// Every reading of every sensor through the paginated readings API.
async fn stored_readings(client: &reqwest::Client, base: &str) -> usize {
    let mut total = 0;
    for sensor in 0..7 {
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("sensorID", format!("s{sensor}")), ("limit", "1000".into())];
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.clone()));
            }
            let page: Value = client
                .get(format!("{base}/api/readings"))
                .query(&query)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            total += page["readings"].as_array().unwrap().len();
            match page["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }
    total
}

fn ready_status(response: &reqwest::Response) -> (u16, bool) {
    (
        response.status().as_u16(),
        response.headers().contains_key("retry-after"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_the_instance_recovers_without_a_restart() {
    let Some(tmpfs) = Tmpfs::mount("20m") else {
        return;
    };
    let data: PathBuf = tmpfs.path().join("data");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut server = start(&data);
    let base = server.base.clone();
    // Most of the space goes to a file of ours; the store fills the rest.
    let placed = fill(&tmpfs.path().join("filler"), 12 * 1024 * 1024);
    let mut acknowledged = 0usize;
    let mut refused = Vec::new();
    let mut index = 0;
    while refused.is_empty() {
        assert!(index < MOST_BATCHES, "the disk never filled");
        let response = put(&client, &base, index).await;
        match response.status().as_u16() {
            200 => acknowledged += BATCH,
            503 => {
                assert!(
                    response.headers().contains_key("retry-after"),
                    "503 without Retry-After"
                );
                refused.push(index);
            }
            other => panic!(
                "batch {index}: {other} {}",
                response.text().await.unwrap_or_default()
            ),
        }
        index += 1;
    }
    // Whatever room is left goes to a second file: the disk is full now, for certain.
    let rest = fill(&tmpfs.path().join("filler-rest"), usize::MAX);
    let full_at = index;
    let ready = client
        .get(format!("{base}/api/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready_status(&ready), (503, true), "ready on a full disk");
    for _ in 0..5 {
        let response = put(&client, &base, index).await;
        assert_eq!(response.status(), 503, "a write on a full disk");
        assert!(response.headers().contains_key("retry-after"));
        refused.push(index);
        index += 1;
    }
    let ready = client
        .get(format!("{base}/api/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready_status(&ready), (503, true), "still not ready");
    // Reads are answered or refused with 503, never a 500.
    for path in ["/api/stats", "/api/readings?sensorID=s1", "/api/sensors"] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        let status = response.status().as_u16();
        assert!(
            status == 200 || status == 503,
            "GET {path} on a full disk: {status}"
        );
        if status == 503 {
            assert!(response.headers().contains_key("retry-after"), "{path}");
        }
    }

    // Free the space: the instance comes back by itself.
    std::fs::remove_file(tmpfs.path().join("filler")).unwrap();
    std::fs::remove_file(tmpfs.path().join("filler-rest")).unwrap();
    let freed = Instant::now();
    let mut probes = 0;
    loop {
        probes += 1;
        let ready = client
            .get(format!("{base}/api/ready"))
            .send()
            .await
            .unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(probes < 600, "not ready again after {probes} probes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovery = freed.elapsed();
    // Readiness comes back as the writer reopens, just before it logs so, and the log is read
    // from the server's stderr by another thread: wait for the line (bounded).
    let logged = Instant::now();
    let reopened = loop {
        let line = server
            .log
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|line| line.contains("reopened after a storage fault"))
            .cloned();
        if let Some(line) = line {
            break line;
        }
        assert!(
            logged.elapsed() < Duration::from_secs(10),
            "the reopen is not logged within 10 s of readiness"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("{reopened}");
    // The refused batches again (readings are idempotent), then new ones: all acknowledged.
    for &again in &refused {
        let response = put(&client, &base, again).await;
        assert_eq!(response.status(), 200, "batch {again} after recovery");
        acknowledged += BATCH;
    }
    for _ in 0..3 {
        let response = put(&client, &base, index).await;
        assert_eq!(response.status(), 200, "a new batch after recovery");
        acknowledged += BATCH;
        index += 1;
    }
    let counted = count(&client, &base).await;
    let listed = stored_readings(&client, &base).await;
    eprintln!(
        "full disk: filler {placed} + {rest} bytes; the store filled after {full_at} batches \
         of {BATCH}; {} writes answered 503; ready again {:.0} ms after space was freed \
         ({probes} probes); acknowledged {acknowledged}, counted {counted}, listed {listed}",
        refused.len(),
        recovery.as_secs_f64() * 1e3,
    );
    assert_eq!(counted, acknowledged as u64);
    assert_eq!(listed, acknowledged);

    // And after a restart, then offline.
    server.terminate(Duration::from_secs(20));
    drop(server);
    let server = start(&data);
    assert_eq!(count(&client, &server.base).await, acknowledged as u64);
    assert_eq!(stored_readings(&client, &server.base).await, acknowledged);
    drop(server);
    let verify = Command::new(env!("CARGO_BIN_EXE_telemetry"))
        .arg("verify")
        .env("DATA_DIR", &data)
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
