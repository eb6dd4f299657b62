//! The open-loop flood: requests sent on a fixed arrival schedule whatever the server does,
//! each one's latency taken from the time it was *scheduled* (so a server that stalls is
//! charged for every request it kept waiting: no coordinated omission).
//!
//! Request `i` is due at `start + i / rate`. The scheduler sleeps until then and hands it to
//! a task that takes an idle keep-alive connection, or opens one, up to `connections` in
//! flight (past that a due request waits for one, and the wait is part of its latency). The
//! schedule is bounded by count (`rate × seconds`); every request by [`REQUEST_TIMEOUT`].
//! Each answer is classed: `200` accepted, `503`/`429` refused, anything else an error; a
//! request that timed out or whose connection broke after it was sent is `unknown` (its
//! readings may or may not be stored).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hyper::Method;
use tokio::sync::Semaphore;

use crate::load::{Call, Sender, histogram, send, try_connect};

/// The longest a flood request may take before it is given up (and counted `unknown`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The schedule: `total` requests at `rate` a second from `connections` connections at most.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub rate: f64,
    pub total: u64,
    pub connections: usize,
}

/// What became of the requests of a schedule.
pub struct Tally {
    /// Latency of the `200`s, µs from the scheduled send time.
    pub accepted: Histogram<u64>,
    /// The same, by quarter of the schedule the request was due in (does it grow?).
    pub accepted_by_quarter: [Histogram<u64>; 4],
    /// Latency of the `503`s and `429`s, the same way.
    pub refused: Histogram<u64>,
    pub refused_by_status: BTreeMap<u16, u64>,
    /// Other statuses, and connections that could not be opened (status 0).
    pub errors: BTreeMap<u16, u64>,
    /// Sent, but no answer within [`REQUEST_TIMEOUT`] or the connection broke.
    pub unknown: u64,
    /// The latest the scheduler was at a due time (the generator's own lag), µs.
    pub max_dispatch_lag_us: u64,
    pub connections_opened: u64,
    /// From the first due time to the last answer.
    pub elapsed: Duration,
}

impl Tally {
    fn new() -> Self {
        Self {
            accepted: histogram(),
            accepted_by_quarter: [histogram(), histogram(), histogram(), histogram()],
            refused: histogram(),
            refused_by_status: BTreeMap::new(),
            errors: BTreeMap::new(),
            unknown: 0,
            max_dispatch_lag_us: 0,
            connections_opened: 0,
            elapsed: Duration::ZERO,
        }
    }

    pub fn refused_total(&self) -> u64 {
        self.refused_by_status.values().sum()
    }
}

/// How one request ended.
enum Answer {
    Status(u16),
    /// No connection could be opened: never sent.
    NoConnection,
    /// Sent, then no answer.
    Unknown,
}

struct Shared {
    addr: SocketAddr,
    idle: Mutex<Vec<Sender>>,
    tally: Mutex<Tally>,
    in_flight: Semaphore,
}

impl Shared {
    /// An idle open connection, or a new one.
    async fn connection(&self) -> Option<Sender> {
        loop {
            let idle = self.idle.lock().expect("pool").pop();
            match idle {
                Some(sender) if !sender.is_closed() => return Some(sender),
                Some(_) => continue,
                None => break,
            }
        }
        self.tally.lock().expect("tally").connections_opened += 1;
        try_connect(self.addr).await
    }

    /// Sends `call` on a connection that is ready; a pooled one the server closed meanwhile
    /// is replaced before anything is sent.
    async fn answer(&self, call: Call) -> (Answer, Option<Sender>) {
        let mut sender = match self.connection().await {
            Some(sender) => sender,
            None => return (Answer::NoConnection, None),
        };
        if sender.ready().await.is_err() {
            match try_connect(self.addr).await {
                Some(fresh) => sender = fresh,
                None => return (Answer::NoConnection, None),
            }
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, send(&mut sender, call)).await {
            Ok(Some((status, _))) => (Answer::Status(status), Some(sender)),
            Ok(None) | Err(_) => (Answer::Unknown, None),
        }
    }

    /// Classes the answer to a request due at `due`, in `quarter` of the schedule.
    fn record(&self, answer: Answer, due: Instant, quarter: usize) {
        let micros = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut tally = self.tally.lock().expect("tally");
        match answer {
            Answer::Status(200) => {
                tally.accepted.saturating_record(micros.max(1));
                tally.accepted_by_quarter[quarter].saturating_record(micros.max(1));
            }
            Answer::Status(status @ (503 | 429)) => {
                tally.refused.saturating_record(micros.max(1));
                *tally.refused_by_status.entry(status).or_default() += 1;
            }
            Answer::Status(status) => *tally.errors.entry(status).or_default() += 1,
            Answer::NoConnection => *tally.errors.entry(0).or_default() += 1,
            Answer::Unknown => tally.unknown += 1,
        }
    }
}

/// Runs `schedule` against `addr`; request `i` is `make(i)`.
pub async fn flood(
    addr: SocketAddr,
    schedule: Schedule,
    make: Arc<dyn Fn(u64) -> Call + Send + Sync>,
) -> Tally {
    let shared = Arc::new(Shared {
        addr,
        idle: Mutex::new(Vec::new()),
        tally: Mutex::new(Tally::new()),
        in_flight: Semaphore::new(schedule.connections),
    });
    let interval = Duration::from_secs_f64(1.0 / schedule.rate);
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(schedule.total as usize);
    for i in 0..schedule.total {
        let due = start + interval.mul_f64(i as f64);
        let quarter = (i * 4 / schedule.total.max(1)) as usize;
        tokio::time::sleep_until(due).await;
        let lag = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
        let shared = shared.clone();
        let make = make.clone();
        {
            let mut tally = shared.tally.lock().expect("tally");
            tally.max_dispatch_lag_us = tally.max_dispatch_lag_us.max(lag);
        }
        tasks.push(tokio::spawn(async move {
            let due = due.into_std();
            let _permit = shared.in_flight.acquire().await.expect("never closed");
            let (answer, sender) = shared.answer(make(i)).await;
            shared.record(answer, due, quarter);
            if let Some(sender) = sender {
                shared.idle.lock().expect("pool").push(sender);
            }
        }));
    }
    for task in tasks {
        task.await.expect("flood request task");
    }
    let elapsed = start.elapsed();
    let shared = Arc::into_inner(shared).expect("every task is done");
    let mut tally = shared.tally.into_inner().expect("tally");
    tally.elapsed = elapsed;
    tally
}

/// A flood request: `PUT /api/temperature` with `body`.
pub fn put(body: String) -> Call {
    Call::json(Method::PUT, "/api/temperature", body)
}
