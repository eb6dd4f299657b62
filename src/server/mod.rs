//! The HTTP server: accepts connections and serves the warp routes on each with hyper, under
//! limits that keep slow or idle clients from starving the others.
//!
//! warp's own server sets no timer, so this module runs hyper itself:
//! - at most `MAX_CONNECTIONS` open connections (beyond, new ones wait in the listen backlog);
//! - a request head must arrive within `HEADER_READ_TIMEOUT_SECONDS` of the connection opening
//!   or of its first byte (slowloris), else the connection is dropped;
//! - a connection with no request for `IDLE_TIMEOUT_SECONDS` is closed (keep this above the
//!   load balancer's idle timeout, 60 s on an ALB, so the ALB never reuses a connection the
//!   service is closing);
//! - a request body must arrive within `BODY_READ_TIMEOUT_SECONDS` (408), and all requests
//!   together hold at most `MAX_BODY_MEMORY_BYTES` of body (503 + `Retry-After` beyond), see
//!   [`body`];
//! - at most `MAX_HEADERS` header lines and 64 KiB of header (431 beyond);
//! - a lingering close, so early answers reach clients still sending a body, see
//!   [`connection`];
//! - HTTP/1.1 only unless `HTTP2_CLEARTEXT=true` (the ALB speaks HTTP/1.1 to its targets);
//!   with it, at most 32 concurrent streams a connection.
//!
//! On shutdown it stops accepting, lets each connection finish its requests, and returns once
//! all are closed or the grace period is over.

pub mod body;
pub mod connection;
pub mod service;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::metrics::Metrics;
use body::BodyBudget;
use connection::{Activity, Linger, Verdict, Watched};
use service::Guarded;

/// The TCP peer of a request, in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Connection limits (see the module documentation for what each does).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_body_memory: usize,
    pub max_headers: usize,
    pub linger: Linger,
    pub http2_cleartext: bool,
}

/// Largest read buffer of a connection, so also the most header bytes of a request (the ALB
/// itself allows 64 KiB of headers). hyper's default, about 400 KiB, let 500 slow uploads
/// hold 200 MB in read buffers alone.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Concurrent streams per HTTP/2 connection, when HTTP/2 is on.
const HTTP2_MAX_STREAMS: u32 = 32;

/// Serves `routes` on `listener` until `shutdown` resolves, then drains for at most `grace`.
pub async fn serve<F, R>(
    listener: TcpListener,
    routes: F,
    limits: Limits,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) where
    F: warp::Filter<Extract = (R,), Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    R: warp::Reply,
    F::Future: Send,
{
    let service = warp::service(routes);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let budget = Arc::new(BodyBudget::new(limits.max_body_memory));
    let builder = Arc::new(builder(&limits));
    let (draining, drain_signal) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = Connection {
            builder: builder.clone(),
            service: service.clone(),
            budget: budget.clone(),
            metrics: metrics.clone(),
            limits,
        };
        let drain_signal = drain_signal.clone();
        tokio::spawn(async move {
            connection.run(stream, peer, drain_signal).await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutdown requested: draining in-flight requests");
    let _ = draining.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    match tokio::time::timeout(grace, permits.acquire_many(all)).await {
        Ok(_) => tracing::info!("all connections drained"),
        Err(_) => tracing::warn!(
            ?grace,
            "drain deadline passed; closing remaining connections"
        ),
    }
}

fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Header and idle timeouts are this module's own (hyper's header timer would also cut
    // idle keep-alive connections at the header timeout).
    builder
        .http1()
        .header_read_timeout(None)
        .max_headers(limits.max_headers)
        .max_buf_size(READ_BUFFER_BYTES);
    if limits.http2_cleartext {
        builder
            .http2()
            .max_concurrent_streams(HTTP2_MAX_STREAMS)
            .max_header_list_size(64 * 1024);
        builder
    } else {
        builder.http1_only()
    }
}

struct Connection<S> {
    builder: Arc<auto::Builder<TokioExecutor>>,
    service: S,
    budget: Arc<BodyBudget>,
    metrics: Metrics,
    limits: Limits,
}

impl<S> Connection<S>
where
    S: tower_service::Service<
            hyper::Request<body::GuardedBody<hyper::body::Incoming>>,
            Response = warp::reply::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    async fn run(self, stream: TcpStream, peer: SocketAddr, mut draining: watch::Receiver<bool>) {
        let _ = stream.set_nodelay(true);
        self.metrics.connections_changed(1);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched::new(stream, activity.clone(), self.limits.linger));
        let service = Guarded {
            inner: self.service,
            peer,
            activity: activity.clone(),
            budget: self.budget,
            body_timeout: self.limits.body_read_timeout,
            metrics: self.metrics.clone(),
        };
        let connection = self.builder.serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        let check_every = (self
            .limits
            .header_read_timeout
            .min(self.limits.idle_timeout)
            / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut ticks = tokio::time::interval(check_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut closing = *draining.borrow();
        if closing {
            connection.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    break;
                }
                changed = draining.changed(), if !closing => {
                    if changed.is_err() || *draining.borrow() {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
                _ = ticks.tick() => {
                    match activity.verdict(self.limits.header_read_timeout, self.limits.idle_timeout) {
                        Verdict::Keep => {}
                        Verdict::Idle => if !closing {
                            closing = true;
                            self.metrics.connection_closed("idle");
                            connection.as_mut().graceful_shutdown();
                        },
                        Verdict::HeaderTimeout => {
                            self.metrics.connection_closed("header_timeout");
                            break;
                        }
                    }
                }
            }
        }
        self.metrics.connections_changed(-1);
    }
}
