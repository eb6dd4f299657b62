//! Admission of writes before their bodies are parsed: a bounded number of write requests parse
//! and validate their readings at once, and one that waits longer than [`MAX_ADMISSION_WAIT`]
//! for its turn is refused (`Unavailable`: 503 + `Retry-After`) instead of joining a queue that
//! only grows. Parsing a 1,000-reading body is CPU work on the request path, before the write
//! queue's own shedding (see [`super::group_commit`]) can see it: without this bound, a flood
//! of large batches makes every accepted request wait behind every other one's parse.
//!
//! The slot is held for the parse only, not while the readings wait for their commit (that
//! wait has its own bound in the write queue). A refused write was never parsed or queued, so
//! nothing acknowledged is lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::StorageError;

/// How long a write may wait for a parse slot before it is refused.
pub const MAX_ADMISSION_WAIT: Duration = Duration::from_secs(1);

/// Parse slots shared by every write route.
#[derive(Clone)]
pub struct WriteAdmission {
    slots: Arc<Semaphore>,
    wait: Duration,
}

/// A write's turn to parse; the slot is free again when this is dropped.
pub struct ParseSlot {
    _permit: OwnedSemaphorePermit,
}

impl WriteAdmission {
    /// `slots` writes parse at once; one waits at most `wait` for its turn.
    pub fn new(slots: usize, wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            wait,
        }
    }

    /// Two slots per CPU (a parse never waits on I/O, so more would only interleave), and
    /// [`MAX_ADMISSION_WAIT`].
    pub fn for_this_machine() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cpus * 2, MAX_ADMISSION_WAIT)
    }

    /// Waits for a parse slot, at most the configured wait.
    pub async fn admit(&self) -> Result<ParseSlot, StorageError> {
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
        let admission = WriteAdmission::new(1, Duration::from_millis(20));
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
        let admission = WriteAdmission::new(1, Duration::from_secs(30));
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
}
