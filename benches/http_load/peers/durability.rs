//! The durability proof: the `kill -9` harness of `tests/binary/crash.rs` pointed at each
//! system. Writers send 100-reading batches back to back (one in flight each, every reading
//! new, each writer its own sensors' later times); once enough batches are acknowledged the
//! process is killed with SIGKILL, restarted on the same data, and every acknowledged reading
//! is looked for. Ack-after-fsync systems must lose none.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::data::{SENSORS, Timeline};
use super::systems::System;
use crate::load::{connect, send};
use crate::options::Options;

const WRITERS: u64 = 8;
const BATCH: u64 = 100;
/// Kill once this many readings were acknowledged (or after `KILL_AFTER`).
const KILL_AT: u64 = 50_000;
const KILL_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, serde::Serialize)]
pub struct DurabilityRow {
    pub system: &'static str,
    pub durability: &'static str,
    pub acknowledged: u64,
    pub stored_after_restart: u64,
    /// Acknowledged readings missing after the restart.
    pub lost: u64,
}

/// Writer `w`'s `n`-th batch: round `w * 10^5 + n` of the timeline, so writers never overlap
/// and every batch holds 100 sensors' readings of one round.
fn batch_of(writer: u64, n: u64) -> (u64, u64) {
    let first = (writer * 100_000 + n) * SENSORS;
    (first, first + BATCH)
}

pub async fn prove(system: System, options: &Options) -> DurabilityRow {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let peer = system.start(&data, options).await;
    let timeline = Timeline {
        start: Timeline::ingest().start - 86_400 * 20,
        interval: 1,
    };
    let acknowledged = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (addr, acknowledged) = (peer.addr, acknowledged.clone());
        writers.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            let mut acked_batches = 0;
            loop {
                let (from, _) = batch_of(writer, acked_batches);
                let call = system.write(&timeline, from / BATCH, BATCH);
                match send(&mut sender, call).await {
                    Some((status, _)) if status < 300 => {
                        acked_batches += 1;
                        acknowledged.fetch_add(BATCH, Ordering::Relaxed);
                    }
                    Some((status, body)) => {
                        panic!(
                            "{}: {status} {}",
                            system.name(),
                            String::from_utf8_lossy(&body)
                        )
                    }
                    None => return acked_batches, // killed
                }
            }
        }));
    }
    let started = Instant::now();
    while acknowledged.load(Ordering::Relaxed) < KILL_AT && started.elapsed() < KILL_AFTER {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    peer.kill();
    let mut acked = Vec::new();
    for writer in writers {
        acked.push(writer.await.expect("writer"));
    }
    let peer = system.start(&data, options).await;
    let stored = peer.settled_count(None).await;
    // Each writer's acknowledged batches are its first ones: count what is stored of them.
    let mut lost = 0;
    for (writer, &batches) in acked.iter().enumerate() {
        let found = stored_of(&peer, &timeline, writer as u64, batches).await;
        lost += batches * BATCH - found;
    }
    peer.stop();
    let acknowledged = acked.iter().sum::<u64>() * BATCH;
    let row = DurabilityRow {
        system: system.name(),
        durability: system.durability(),
        acknowledged,
        stored_after_restart: stored,
        lost,
    };
    println!(
        "{:<22} {:<17} acknowledged {:>7}, stored after kill -9 and restart {:>7}, acknowledged and lost {:>6}",
        row.system, row.durability, row.acknowledged, row.stored_after_restart, row.lost
    );
    row
}

/// How many of writer `writer`'s first `batches` batches' readings `peer` holds: readings of
/// sensors s0..s99 with times in the writer's acknowledged rounds.
async fn stored_of(
    peer: &super::systems::Peer,
    timeline: &Timeline,
    writer: u64,
    batches: u64,
) -> u64 {
    if batches == 0 {
        return 0;
    }
    let from = timeline.reading(batch_of(writer, 0).0).time;
    let to = timeline.reading(batch_of(writer, batches).0).time; // exclusive
    super::queries::count_between(peer, from, to, BATCH).await
}
