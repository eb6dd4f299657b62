//! The thread that drives the one-time rollup build (see [`super::rollups`]): it queues one
//! build slice at a time to the writer, so the build interleaves with ordinary writes, logs its
//! progress, and clears the store's `building` flag when the last slice is committed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase};
use tokio::sync::oneshot;

use super::storage_error;
use super::tables::{TOTAL_KEY, TOTALS, read_aggregate};
use super::writer::{QueuedWrite, WriterHandle};
use crate::storage::StorageError;

/// How often progress is logged.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// Pause after a failed slice before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Starts the build thread. It holds the writer only while a slice is queued, so dropping the
/// store stops the build (it resumes from the stored cursor on the next open).
pub(super) fn start(
    writer: Weak<WriterHandle>,
    building: Arc<AtomicBool>,
    db: Arc<Database>,
) -> Result<(), StorageError> {
    let total = {
        let txn = db.begin_read().map_err(storage_error)?;
        read_aggregate(&txn.open_table(TOTALS).map_err(storage_error)?, TOTAL_KEY)?.count
    };
    drop(db);
    tracing::info!(
        readings = total,
        "building rollups for a store written by the previous version; /api/ready answers 503 \
         until it is done"
    );
    std::thread::Builder::new()
        .name("embedded-rollup-build".into())
        .spawn(move || run(writer, building, total))
        .map(drop)
        .map_err(|e| StorageError::Internal(format!("cannot start the rollup build: {e}").into()))
}

fn run(writer: Weak<WriterHandle>, building: Arc<AtomicBool>, total: u64) {
    let started = Instant::now();
    let mut logged = Instant::now();
    let mut counted = 0u64;
    loop {
        let Some(handle) = writer.upgrade() else {
            tracing::info!(counted, "rollup build paused: the store was closed");
            return;
        };
        let (reply, answer) = oneshot::channel();
        let queued = handle
            .commit()
            .submit_blocking(QueuedWrite::BuildRollups { reply });
        drop(handle);
        let result = match queued {
            Ok(()) => answer.blocking_recv().unwrap_or_else(|_| {
                Err(StorageError::Internal(
                    "the writer dropped a build slice".into(),
                ))
            }),
            Err(error) => Err(error),
        };
        match result {
            Ok(progress) => {
                counted += progress.counted as u64;
                if progress.done {
                    building.store(false, Ordering::SeqCst);
                    tracing::info!(
                        counted,
                        seconds = started.elapsed().as_secs_f64(),
                        "rollups built; the store is ready"
                    );
                    return;
                }
                if logged.elapsed() >= LOG_EVERY {
                    logged = Instant::now();
                    tracing::info!(counted, of = total, "building rollups");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "a rollup build slice failed; retrying");
                std::thread::sleep(RETRY_AFTER);
            }
        }
    }
}
