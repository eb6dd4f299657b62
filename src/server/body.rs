//! Request bodies under two limits: a deadline for the whole body (`BODY_READ_TIMEOUT_SECONDS`:
//! a client that sends 1 MiB at one byte a second is cut off), and a budget of body bytes held
//! in memory across all requests at once (`MAX_BODY_MEMORY_BYTES`). A body past either ends
//! with an error, and the request's [`Flags`] say which, so the answer can say it too.

use std::error::Error;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use super::connection::Activity;

type BoxError = Box<dyn Error + Send + Sync>;

/// Body bytes held by all requests at once, and the limit.
pub struct BodyBudget {
    limit: usize,
    held: AtomicUsize,
}

impl BodyBudget {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            held: AtomicUsize::new(0),
        }
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// One request's share of the budget, given back when the request is answered (its body may
/// live in the handler until then).
pub struct Hold {
    budget: Arc<BodyBudget>,
    bytes: AtomicUsize,
}

impl Hold {
    pub fn new(budget: Arc<BodyBudget>) -> Self {
        Self {
            budget,
            bytes: AtomicUsize::new(0),
        }
    }

    fn take(&self, bytes: usize) -> bool {
        let taken = self.budget.try_take(bytes);
        if taken {
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        taken
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.budget.give_back(*self.bytes.get_mut());
    }
}

/// Which limit ended a request's body, if one did.
#[derive(Default)]
pub struct Flags {
    pub timed_out: AtomicBool,
    pub over_budget: AtomicBool,
}

/// A request body with a deadline and a memory budget.
pub struct GuardedBody<B> {
    inner: B,
    // In a Mutex only to make the body `Sync`, which warp asks of bodies; never contended.
    deadline: std::sync::Mutex<Pin<Box<Sleep>>>,
    hold: Arc<Hold>,
    flags: Arc<Flags>,
    activity: Arc<Activity>,
    ended: bool,
}

impl<B> GuardedBody<B> {
    pub fn new(
        inner: B,
        deadline: Pin<Box<Sleep>>,
        hold: Arc<Hold>,
        flags: Arc<Flags>,
        activity: Arc<Activity>,
    ) -> Self {
        Self {
            inner,
            deadline: std::sync::Mutex::new(deadline),
            hold,
            flags,
            activity,
            ended: false,
        }
    }

    fn end(&mut self) {
        self.ended = true;
        self.activity.body_finished();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyLimit {
    #[error("the request body took longer than the body read timeout")]
    TimedOut,
    #[error("the server holds too many request bodies at once")]
    OverBudget,
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let size = frame.data_ref().map_or(0, Bytes::len);
                if !self.hold.take(size) {
                    self.flags.over_budget.store(true, Ordering::Relaxed);
                    self.ended = true;
                    return Poll::Ready(Some(Err(BodyLimit::OverBudget.into())));
                }
                if self.inner.is_end_stream() {
                    self.end();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                self.ended = true;
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                self.end();
                Poll::Ready(None)
            }
            Poll::Pending => {
                let expired = {
                    let deadline = self.deadline.get_mut().unwrap_or_else(|e| e.into_inner());
                    deadline.as_mut().poll(cx).is_ready()
                };
                if expired {
                    self.flags.timed_out.store(true, Ordering::Relaxed);
                    self.ended = true;
                    return Poll::Ready(Some(Err(BodyLimit::TimedOut.into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back_when_a_request_ends() {
        let budget = Arc::new(BodyBudget::new(100));
        let first = Hold::new(budget.clone());
        let second = Hold::new(budget.clone());
        assert!(first.take(60));
        assert!(!second.take(41), "over the shared limit");
        assert!(second.take(40));
        assert_eq!(budget.held(), 100);
        drop(first);
        assert_eq!(budget.held(), 40);
        drop(second);
        assert_eq!(budget.held(), 0);
    }
}
