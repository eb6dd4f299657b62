//! What start-up refuses rather than lose data quietly, with the real binary: a database file
//! truncated to 0 bytes or deleted while the log holds records, and a damaged record in the
//! middle of the log. Each exits 2 with one line naming the problem and the variable that
//! overrides it; with that variable set the service starts. Also `telemetry verify`.

use redb::ReadableDatabase;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicI64, Ordering};

use crate::server::{start, start_with};

const DB: &str = "telemetry.redb";
const LOG: &str = "telemetry.wal";

fn telemetry(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_telemetry"));
    command
        .env("BIND_ADDR", "127.0.0.1")
        .env("PORT", "0")
        .env("DATA_DIR", data_dir);
    command
}

/// Runs the binary on `data_dir`, expecting it to refuse to start: its stderr line.
fn refused(data_dir: &Path) -> String {
    let output: Output = telemetry(data_dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

/// Seconds handed out to readings so far: every reading of this file is new.
static NEXT_SECOND: AtomicI64 = AtomicI64::new(0);

/// Stores `n` new readings one request at a time, then kills the server (`kill -9`).
async fn store_and_kill(data_dir: &Path, n: usize) {
    let mut server = start(data_dir);
    let client = reqwest::Client::new();
    for _ in 0..n {
        let second = NEXT_SECOND.fetch_add(1, Ordering::Relaxed);
        let time = chrono::DateTime::from_timestamp(1_704_067_200 + second, 0).unwrap();
        let response = client
            .put(format!("{}/api/temperature", server.base))
            .json(&json!({"sensorID": "a", "time": time.to_rfc3339(), "temperature": 20}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

async fn starts_with(data_dir: &Path, variable: &str) {
    let server = start_with(data_dir, &[(variable, "true")]);
    let ready = reqwest::get(format!("{}/api/ready", server.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{variable}=true starts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_database_file_with_records_in_the_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    store_and_kill(dir.path(), 20).await;
    std::fs::File::create(dir.path().join(DB)).unwrap(); // truncated to 0 bytes
    let line = refused(dir.path());
    assert!(line.contains("missing or empty"), "{line}");
    assert!(
        line.contains("RECOVERY_ALLOW_EMPTY_DATABASE=true"),
        "{line}"
    );
    starts_with(dir.path(), "RECOVERY_ALLOW_EMPTY_DATABASE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_database_file_with_records_in_the_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    store_and_kill(dir.path(), 20).await;
    std::fs::remove_file(dir.path().join(DB)).unwrap();
    let line = refused(dir.path());
    assert!(line.contains("missing or empty"), "{line}");
    assert!(
        line.contains("RECOVERY_ALLOW_EMPTY_DATABASE=true"),
        "{line}"
    );
    starts_with(dir.path(), "RECOVERY_ALLOW_EMPTY_DATABASE").await;
    let kept = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("telemetry.wal.discarded-")
        });
    assert!(kept, "the log is kept beside the new database");
}

/// The sequence number of the last log record in the database's durable state (it repairs
/// the file after the kill, as start-up would).
fn checkpointed(data_dir: &Path) -> u64 {
    let db = redb::Database::open(data_dir.join(DB)).unwrap();
    let txn = db.begin_read().unwrap();
    let counters: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("counters");
    let table = txn.open_table(counters).unwrap();
    table.get("wal_sequence").unwrap().map_or(0, |v| v.value())
}

/// The log's frames from offset 0 that continue the sequence after `checkpointed`, as
/// offsets: `[payload length u32 LE][CRC-32 u32 LE][sequence u64 LE, ...]`.
fn newer_frames(log: &[u8], checkpointed: u64) -> Vec<usize> {
    let mut frames = Vec::new();
    let mut at = 0;
    while log.len() >= at + 16 {
        let len = u32::from_le_bytes(log[at..at + 4].try_into().unwrap()) as usize;
        let sequence = u64::from_le_bytes(log[at + 8..at + 16].try_into().unwrap());
        if len < 8 || log.len() < at + 8 + len || sequence != checkpointed + 1 + frames.len() as u64
        {
            break;
        }
        frames.push(at);
        at += 8 + len;
    }
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_in_the_middle_of_the_log_are_refused_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    // The log holds the records since the last checkpoint (every 250 ms): a kill right after
    // a run of single-reading writes leaves some of them; write more if it left too few.
    let mut frames = Vec::new();
    for attempt in 0..10 {
        store_and_kill(dir.path(), 60 + attempt * 40).await;
        let log = std::fs::read(dir.path().join(LOG)).unwrap();
        frames = newer_frames(&log, checkpointed(dir.path()));
        if frames.len() >= 4 {
            break;
        }
    }
    assert!(
        frames.len() >= 4,
        "the log kept {} new records",
        frames.len()
    );
    let mut log = std::fs::read(dir.path().join(LOG)).unwrap();
    let offset = frames[1];
    log[offset + 20] ^= 0xFF;
    log[offset + 21] ^= 0xFF;
    std::fs::write(dir.path().join(LOG), &log).unwrap();
    let line = refused(dir.path());
    let newer = frames.len() - 2;
    assert!(line.contains(&format!("at byte {offset}")), "{line}");
    assert!(
        line.contains(&format!("followed by {newer} newer records")),
        "{line}"
    );
    assert!(line.contains("RECOVERY_TRUNCATE_LOG=true"), "{line}");
    starts_with(dir.path(), "RECOVERY_TRUNCATE_LOG").await;
}

#[test]
fn verify_finds_a_store_written_by_the_service_consistent() {
    let dir = tempfile::tempdir().unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(store_and_kill(dir.path(), 30));
    let output = telemetry(dir.path()).arg("verify").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("consistent"), "{stdout}");
    let missing = tempfile::tempdir().unwrap();
    let output = telemetry(missing.path()).arg("verify").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "nothing to verify");
}
