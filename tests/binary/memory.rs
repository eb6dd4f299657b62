//! Memory per request is bounded by bytes: the real binary stores 300 `/picus` items of about
//! 64 KiB (each an array of 32,000 numbers, the costliest shape to parse), then 8 clients at
//! once walk `GET /picus/list?limit=1000` to its end, and the server's peak resident memory
//! (`VmHWM`, reset before the walk) may grow only by a bounded amount over its resident memory
//! before it.

use std::time::Duration;

use serde_json::Value;

use crate::server::{Server, start};

const ITEMS: usize = 300;
const NUMBERS_PER_ITEM: usize = 32_000;
const CLIENTS: usize = 8;
/// The most the server's peak RSS may grow during the concurrent walks: measured at about
/// 7 MiB with 1 MiB pages. Without the byte budget one walk was a single 19 MB page parsed
/// into about 300 MiB of values, and 8 at once grew the peak by 2.6 GiB.
const MAX_GROWTH_KIB: u64 = 64 * 1024;

/// A `/proc/<pid>/status` field in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("procfs");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// Resets the process's peak RSS to its current RSS (Linux 4.0+); false when not allowed, and
/// then the peak also counts the storing phase, which only makes the bound stricter.
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Walks the whole list by its `Link: rel="next"` headers; returns the ids and the largest
/// page body seen.
async fn walk(client: &reqwest::Client, server_base: &str) -> (Vec<u64>, usize) {
    let mut ids = Vec::new();
    let mut largest = 0;
    let mut next = Some("/picus/list?limit=1000".to_owned());
    for _ in 0..=ITEMS {
        let Some(path) = next.take() else { break };
        let response = client
            .get(format!("{server_base}{path}"))
            .send()
            .await
            .expect("the list answers");
        assert_eq!(response.status(), 200);
        next = response
            .headers()
            .get("link")
            .and_then(|link| link.to_str().ok())
            .and_then(|link| Some(link.strip_prefix('<')?.split_once('>')?.0.to_owned()));
        let body = response.bytes().await.expect("a body");
        largest = largest.max(body.len());
        let page: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array");
        for entry in page {
            assert_eq!(
                entry["item"]["v"].as_array().map(Vec::len),
                Some(NUMBERS_PER_ITEM),
                "items come back whole"
            );
            ids.push(entry["id"].as_str().unwrap().parse().unwrap());
        }
    }
    assert!(next.is_none(), "the walk ended");
    (ids, largest)
}

async fn store_items(client: &reqwest::Client, server: &Server) {
    let numbers = vec!["0"; NUMBERS_PER_ITEM].join(",");
    let item = format!("{{\"v\":[{numbers}]}}");
    let mut writers = Vec::new();
    for writer in 0..CLIENTS {
        let (client, base, item) = (client.clone(), server.base.clone(), item.clone());
        writers.push(tokio::spawn(async move {
            for _ in (writer..ITEMS).step_by(CLIENTS) {
                let response = client
                    .post(format!("{base}/picus/put"))
                    .header("content-type", "application/json")
                    .body(item.clone())
                    .send()
                    .await
                    .expect("the put answers");
                assert_eq!(response.status(), 201);
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lists_of_large_items_have_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let pid = server.child.id();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    store_items(&client, &server).await;
    // One walk first, so the database's cache and the allocator's arenas are warm.
    let (ids, _) = walk(&client, &server.base).await;
    assert_eq!(ids, (1..=ITEMS as u64).collect::<Vec<_>>());

    let before = status_kib(pid, "VmRSS");
    let peak_reset = reset_peak(pid);
    let mut walkers = Vec::new();
    for _ in 0..CLIENTS {
        let (client, base) = (client.clone(), server.base.clone());
        walkers.push(tokio::spawn(async move { walk(&client, &base).await }));
    }
    let mut largest_page = 0;
    for walker in walkers {
        let (walked, largest) = walker.await.unwrap();
        assert_eq!(walked.len(), ITEMS, "every item once, in order");
        largest_page = largest_page.max(largest);
    }
    let peak = status_kib(pid, "VmHWM");
    let growth = peak.saturating_sub(before);
    eprintln!(
        "RSS before {before} KiB, peak {peak} KiB, growth {growth} KiB over {CLIENTS} concurrent \
         walks (peak reset: {peak_reset}); largest page {largest_page} bytes"
    );
    assert!(
        largest_page <= 2 * 1024 * 1024,
        "a page is bounded by bytes: {largest_page}"
    );
    assert!(
        growth <= MAX_GROWTH_KIB,
        "peak RSS grew by {growth} KiB (from {before} KiB to {peak} KiB)"
    );
}
