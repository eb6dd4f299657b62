//! Admission of writes before their bodies are parsed: a bounded number of write requests parse
//! and validate their readings at once; a bounded number more wait for their turn
//! ([`WAITING_PER_SLOT`] per slot), and one that finds the waiting line full is refused at
//! once, one that waits longer than [`MAX_ADMISSION_WAIT`] when its turn comes too late
//! (`Unavailable`: 503 + `Retry-After`), instead of joining a queue that only grows.
//!
//! Why the line is short and not only the wait: under a sustained flood a line bounded by time
//! alone stays full, so every write that gets in has waited almost the whole bound (FIFO), and
//! every refused one has held its connection and body for that long. A line a few writes per
//! slot long keeps every slot busy and bounds the wait of an admitted write by a few parse
//! times rather than by the timeout.
//!
//! Parsing a 1,000-reading body is CPU work on the request path, before the write queue's own
//! shedding (see [`super::group_commit`]) can see it: without this bound, a flood of large
//! batches makes every accepted request wait behind every other one's parse.
//!
//! The slot is held for the parse only, not while the readings wait for their commit (that
//! wait has its own bound in the write queue). A refused write was never parsed or queued, so
//! nothing acknowledged is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::StorageError;

/// How long a write may wait for a parse slot before it is refused.
pub const MAX_ADMISSION_WAIT: Duration = Duration::from_secs(1);

/// Writes that may wait for a parse slot, per slot; one more is refused at once.
pub const WAITING_PER_SLOT: usize = 4;

/// Parse slots shared by every write route.
#[derive(Clone)]
pub struct WriteAdmission {
    slots: Arc<Semaphore>,
    /// Writes waiting for a slot now, and how many may.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    wait: Duration,
}

/// Counts one write in the waiting line while it lives.
struct InLine(Arc<AtomicUsize>);

impl Drop for InLine {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A write's turn to parse; the slot is free again when this is dropped.
pub struct ParseSlot {
    _permit: OwnedSemaphorePermit,
}

impl WriteAdmission {
    /// `slots` writes parse at once, `max_waiting` more wait for their turn, each at most
    /// `wait`.
    pub fn new(slots: usize, max_waiting: usize, wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
            wait,
        }
    }

    /// Two slots per CPU (a parse never waits on I/O, so more would only interleave),
    /// [`WAITING_PER_SLOT`] waiting per slot, and [`MAX_ADMISSION_WAIT`].
    pub fn for_this_machine() -> Self {
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        Self::new(slots, slots * WAITING_PER_SLOT, MAX_ADMISSION_WAIT)
    }

    /// A free parse slot at once; else a place in the waiting line and the slot within the
    /// configured wait; else `Unavailable`.
    pub async fn admit(&self) -> Result<ParseSlot, StorageError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(ParseSlot { _permit: permit });
        }
        let joined = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < self.max_waiting).then_some(waiting + 1)
            });
        if joined.is_err() {
            return Err(StorageError::Unavailable(
                "too many writes are waiting to be parsed; retry later".into(),
            ));
        }
        let _in_line = InLine(self.waiting.clone());
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(ParseSlot { _permit: permit }),
            Ok(Err(_closed)) => Err(StorageError::Unavailable(
                "the service is shutting down".into(),
            )),
            Err(_elapsed) => Err(StorageError::Unavailable(
                "too many writes are waiting to be parsed; retry later".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With every slot taken, a write is refused once its wait is over, and admitted again as
    /// soon as a slot is free.
    #[tokio::test]
    async fn a_write_that_waits_too_long_for_a_slot_is_refused_and_later_ones_get_in() {
        let admission = WriteAdmission::new(1, 4, Duration::from_millis(20));
        let held = admission.admit().await.expect("a free slot");
        let refused = admission
            .admit()
            .await
            .err()
            .expect("no slot within the wait");
        assert!(
            matches!(&refused, StorageError::Unavailable(reason) if reason.to_string().contains("retry")),
            "{refused:?}"
        );
        drop(held);
        admission.admit().await.expect("the slot is free again");
    }

    /// A write that waits less than the bound gets the slot the one before it frees: on a
    /// current-thread runtime the waiter is seen waiting (not finished) while the slot is
    /// held, is admitted once it is dropped, and then holds it, so a third write is refused.
    #[tokio::test(flavor = "current_thread")]
    async fn a_waiting_write_takes_the_slot_freed_within_its_wait() {
        let admission = WriteAdmission::new(1, 4, Duration::from_secs(30));
        let held = admission.admit().await.expect("a free slot");
        let waiting = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await }
        });
        // The only other task runs until it waits for the slot.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            !waiting.is_finished(),
            "the second write waits while the slot is held"
        );
        assert_eq!(admission.slots.available_permits(), 0);
        drop(held);
        let slot = waiting
            .await
            .expect("the task ends")
            .expect("admitted once the slot was freed, within its wait");
        let third = WriteAdmission {
            wait: Duration::from_millis(10),
            ..admission.clone()
        };
        assert!(
            third.admit().await.is_err(),
            "the waiter holds the freed slot"
        );
        drop(slot);
        assert_eq!(admission.slots.available_permits(), 1);
    }

    /// With every slot taken and the waiting line full, a write is refused at once (it does
    /// not wait out the bound); once a waiter leaves the line, a new write may wait again.
    #[tokio::test(flavor = "current_thread")]
    async fn a_write_that_finds_the_waiting_line_full_is_refused_at_once() {
        let admission = WriteAdmission::new(1, 2, Duration::from_secs(30));
        let held = admission.admit().await.expect("a free slot");
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let admission = admission.clone();
                tokio::spawn(async move { admission.admit().await })
            })
            .collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            admission.waiting.load(Ordering::Acquire),
            2,
            "the line is full"
        );
        // The outer 5 s only makes a regression fail instead of waiting out the 30 s bound.
        let refused = tokio::time::timeout(Duration::from_secs(5), admission.admit())
            .await
            .expect("answered at once")
            .err()
            .expect("refused: the line is full");
        assert!(
            matches!(&refused, StorageError::Unavailable(reason) if reason.to_string().contains("waiting")),
            "{refused:?}"
        );
        drop(held);
        let first = waiters.into_iter().next().expect("two waiters");
        let slot = first
            .await
            .expect("ends")
            .expect("the first waiter gets the slot");
        assert_eq!(
            admission.waiting.load(Ordering::Acquire),
            1,
            "the admitted write left the line"
        );
        let again = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!again.is_finished(), "room in the line again: it waits");
        assert_eq!(admission.waiting.load(Ordering::Acquire), 2);
        drop(slot);
        again.abort();
    }
}
