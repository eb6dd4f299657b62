//! What the store's readers, its writer and its readiness check share: the current redb
//! [`Database`] (replaced when the writer reopens it after a storage fault), why writes cannot
//! succeed right now (if they cannot), and whether the writer and syncer threads are alive.
//!
//! # Storage faults and how the store comes back from them
//!
//! Once redb hits an I/O error (a full disk, a failing device), it refuses every later
//! operation ("previous I/O error") until the database is closed; after a failed `fdatasync`
//! of the log, nothing written since may be trusted to be on disk. So a fault is a state of
//! the store, not of one request: the writer (or the syncer, for a failed `fdatasync`) records
//! it ([`Health::set_fault`]), every write is answered `Unavailable` (503 + `Retry-After`), and
//! `GET /api/ready` answers 503. At most once a [`RECOVERY_RETRY`], on the next write or
//! readiness check, the writer tries to come back ([`super::writer`]): once `DATA_DIR` can take
//! [`ROOM_NEEDED`] bytes again, it closes the database, opens it again (redb repairs it from
//! its last durable commit) and replays the write-ahead log on top into an fsync'd commit,
//! exactly as a restart would. Every acknowledged write is in that log or in redb's durable
//! state, so nothing acknowledged is lost. While the disk is still full the attempt fails and
//! the store stays unavailable; once space is freed the next attempt succeeds and writes are
//! answered again, with no restart. (Exiting for the orchestrator to restart the process would
//! do the same replay, later, and only where something restarts it.)
//!
//! A panic in the writer or the syncer is caught and logged, and the store is then not ready
//! for good (every write 503, `/api/ready` 503): a thread that died in the middle of a group
//! may have left the store's state half-changed in memory, so only a restart (which replays
//! the log) is trusted to bring it back.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use redb::{Database, ReadTransaction};

use super::recent::{Published, RecentReadings};
use crate::storage::StorageError;

/// Least time between two attempts to reopen a faulted store.
pub(super) const RECOVERY_RETRY: Duration = Duration::from_secs(1);
/// Free space `DATA_DIR` must take (written, synced and removed) before a reopen is tried:
/// reopening on a disk that is still full would only fail again.
pub(super) const ROOM_NEEDED: usize = 1 << 20;
/// The file written to check for room.
const ROOM_CHECK_FILE: &str = "telemetry.room-check";

/// Whether `dir` can take [`ROOM_NEEDED`] more bytes: writes them, syncs, removes the file.
pub(super) fn check_room(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(ROOM_CHECK_FILE);
    let written = (|| {
        let mut file = std::fs::File::create(&path)?;
        file.write_all(&vec![0; ROOM_NEEDED])?;
        file.sync_data()
    })();
    let removed = std::fs::remove_file(&path);
    written.and(removed)
}

/// Shared by the store's handles, its writer and its syncer.
pub(super) struct Health {
    /// The open database; `None` while the writer reopens it.
    db: RwLock<Option<Arc<Database>>>,
    /// The writer's recent readings that go with each committed state (see [`super::recent`]).
    pub(super) recent: Published,
    /// Why writes cannot succeed right now; `None` when they can.
    fault: Mutex<Option<String>>,
    /// Fast path for [`Self::fault`].
    faulted: AtomicBool,
    writer_alive: AtomicBool,
    syncer_alive: AtomicBool,
    /// Tests only: the fault to inject next (`"writer panic"`, `"syncer panic"`,
    /// `"sync failure"`).
    #[cfg(test)]
    pub(super) inject: Mutex<Option<&'static str>>,
}

impl Health {
    /// `generation`: the recent readings' generation stored in `db` (see [`super::recent`]).
    pub(super) fn new(db: Arc<Database>, generation: u64) -> Arc<Self> {
        Arc::new(Self {
            db: RwLock::new(Some(db)),
            recent: Published::new(generation),
            fault: Mutex::new(None),
            faulted: AtomicBool::new(false),
            writer_alive: AtomicBool::new(true),
            syncer_alive: AtomicBool::new(true),
            #[cfg(test)]
            inject: Mutex::new(None),
        })
    }

    /// The database, for one transaction: hold the handle no longer than it takes to begin it,
    /// so that the writer can close the database when it must reopen it.
    pub(super) fn database(&self) -> Result<Arc<Database>, StorageError> {
        self.db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                StorageError::Unavailable(
                    self.fault()
                        .unwrap_or_else(|| "the database is being reopened".into())
                        .into(),
                )
            })
    }

    /// A read transaction and the writer's recent readings that go with it: what every reader
    /// of readings needs (see [`super::recent`]).
    pub(super) fn snapshot(&self) -> Result<(ReadTransaction, Arc<RecentReadings>), StorageError> {
        self.recent.snapshot(&*self.database()?)
    }

    /// Takes the database out (readers get `Unavailable` until [`Self::put_database`]).
    pub(super) fn take_database(&self) -> Option<Arc<Database>> {
        self.db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    pub(super) fn put_database(&self, db: Arc<Database>) {
        *self
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(db);
    }

    pub(super) fn set_fault(&self, reason: String) {
        *self
            .fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
        self.faulted.store(true, Ordering::SeqCst);
    }

    pub(super) fn clear_fault(&self) {
        self.faulted.store(false, Ordering::SeqCst);
        *self
            .fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    pub(super) fn is_faulted(&self) -> bool {
        self.faulted.load(Ordering::SeqCst)
    }

    pub(super) fn fault(&self) -> Option<String> {
        self.fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) fn writer_stopped(&self) {
        self.writer_alive.store(false, Ordering::SeqCst);
    }

    pub(super) fn syncer_stopped(&self) {
        self.syncer_alive.store(false, Ordering::SeqCst);
    }

    /// Whether both threads are alive: `Unavailable` naming the one that is not.
    pub(super) fn threads_alive(&self) -> Result<(), StorageError> {
        for (alive, name) in [
            (&self.writer_alive, "writer"),
            (&self.syncer_alive, "log syncer"),
        ] {
            if !alive.load(Ordering::SeqCst) {
                return Err(StorageError::Unavailable(
                    format!("the storage {name} thread has stopped; restart the service").into(),
                ));
            }
        }
        Ok(())
    }

    /// Tests only: whether `fault` should happen now (once).
    #[cfg(test)]
    pub(super) fn take_injected(&self, fault: &str) -> bool {
        let mut injected = self.inject.lock().unwrap();
        if *injected == Some(fault) {
            *injected = None;
            true
        } else {
            false
        }
    }
}

/// The text of a caught panic's payload.
pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
