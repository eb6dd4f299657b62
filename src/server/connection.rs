//! One accepted connection's socket, watched: when it last read or wrote and whether a request
//! is in flight, so the connection's task can close it when it idles or dribbles its headers;
//! and a lingering close for requests answered before their body was read.
//!
//! Lingering close (as nginx's `lingering_close`): a client without `Expect: 100-continue`
//! sends its whole body before it reads the answer. If the server answers early (413, 401...)
//! and closes while body bytes are still arriving, the kernel resets the connection and the
//! client sees a broken pipe instead of the answer. So on close, when a request's body was
//! left unread, the socket's write side is shut (the answer and a FIN are on their way) and
//! incoming bytes are read and discarded until the client closes, for at most
//! `LINGER_SECONDS` and `LINGER_BYTES`.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// No head being read.
const NONE: u64 = u64::MAX;

/// What the connection is doing, shared by its socket, its requests and its task.
pub struct Activity {
    started: Instant,
    /// Milliseconds since `started`, of the last read or write.
    last_active: AtomicU64,
    /// When the bytes of the next request head started to come (or the connection opened).
    head_started: AtomicU64,
    in_flight: AtomicUsize,
    /// A request's body was not read to its end.
    body_unread: AtomicBool,
}

/// What the connection's task should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// No request for the idle timeout: close it gracefully.
    Idle,
    /// A request head took longer than the header timeout: drop it.
    HeaderTimeout,
}

impl Activity {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            last_active: AtomicU64::new(0),
            // A new connection owes its first request head within the header timeout.
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            body_unread: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn on_read(&self) {
        let now = self.now_ms();
        self.last_active.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ =
                self.head_started
                    .compare_exchange(NONE, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_active.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A request head was read; `with_body` when a body follows it.
    pub fn request_started(&self, with_body: bool) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(NONE, Ordering::Relaxed);
        self.body_unread.store(with_body, Ordering::Relaxed);
    }

    /// The request's body was read to its end.
    pub fn body_finished(&self) {
        self.body_unread.store(false, Ordering::Relaxed);
    }

    /// The request was answered.
    pub fn request_finished(&self) {
        self.head_started.store(NONE, Ordering::Relaxed);
        self.last_active.store(self.now_ms(), Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn verdict(&self, header_timeout: Duration, idle_timeout: Duration) -> Verdict {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Verdict::Keep;
        }
        let now = self.now_ms();
        let head = self.head_started.load(Ordering::Relaxed);
        let since = |ms: u64| Duration::from_millis(now.saturating_sub(ms));
        if head != NONE {
            if since(head) > header_timeout {
                return Verdict::HeaderTimeout;
            }
        } else if since(self.last_active.load(Ordering::Relaxed)) > idle_timeout {
            return Verdict::Idle;
        }
        Verdict::Keep
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// How long and how much a lingering close may read.
#[derive(Debug, Clone, Copy)]
pub struct Linger {
    pub time: Duration,
    pub bytes: usize,
}

enum Closing {
    Open,
    Draining {
        deadline: Pin<Box<Sleep>>,
        left: usize,
    },
    Closed,
}

/// A socket that reports its activity and lingers on close.
pub struct Watched<T> {
    io: T,
    activity: std::sync::Arc<Activity>,
    linger: Linger,
    closing: Closing,
}

impl<T> Watched<T> {
    pub fn new(io: T, activity: std::sync::Arc<Activity>, linger: Linger) -> Self {
        Self {
            io,
            activity,
            linger,
            closing: Closing::Open,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.activity.on_read();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.io).poll_write(cx, buf))?;
        if written > 0 {
            self.activity.on_write();
        }
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, bufs))?;
        if written > 0 {
            self.activity.on_write();
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Shuts the write side, then lingers if a request body was left unread.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.closing {
                Closing::Open => {
                    ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
                    this.closing = if this.activity.body_unread.load(Ordering::Relaxed) {
                        Closing::Draining {
                            deadline: Box::pin(tokio::time::sleep(this.linger.time)),
                            left: this.linger.bytes,
                        }
                    } else {
                        Closing::Closed
                    };
                }
                Closing::Draining { deadline, left } => {
                    if deadline.as_mut().poll(cx).is_ready() {
                        this.closing = Closing::Closed;
                        continue;
                    }
                    let mut scratch = [0u8; 8192];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.io).poll_read(cx, &mut buf) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(_)) => this.closing = Closing::Closed,
                        Poll::Ready(Ok(())) => {
                            let read = buf.filled().len();
                            if read == 0 || read >= *left {
                                this.closing = Closing::Closed;
                            } else {
                                *left -= read;
                            }
                        }
                    }
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_connection_owes_its_head_and_an_answered_one_may_idle() {
        let activity = Activity::new();
        let short = Duration::ZERO;
        let long = Duration::from_secs(3600);
        assert_eq!(activity.verdict(long, long), Verdict::Keep);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(activity.verdict(short, long), Verdict::HeaderTimeout);
        activity.request_started(false);
        assert_eq!(activity.verdict(short, short), Verdict::Keep, "in flight");
        activity.request_finished();
        assert_eq!(
            activity.verdict(short, long),
            Verdict::Keep,
            "idle, not reading"
        );
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(activity.verdict(short, short), Verdict::Idle);
        activity.on_read();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(activity.verdict(short, long), Verdict::HeaderTimeout);
    }
}
