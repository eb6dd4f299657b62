//! Load generation: keep-alive clients sending requests back to back, and the readings they send.
//!
//! Each client task holds one HTTP/1.1 connection (hyper `conn::http1`, `TCP_NODELAY`) and
//! sends its requests back to back, reading each whole response; every latency goes into an
//! `hdrhistogram` (µs, 3 significant figures). A non-2xx answer or a broken connection counts
//! as an error.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Readings are timed from here on, one second apart per sensor.
pub const BASE_EPOCH: i64 = 1_633_338_000; // 2021-10-04 09:00:00 UTC

/// One request of a scenario.
pub struct Call {
    pub method: Method,
    pub path: Cow<'static, str>,
    /// `(content type, bytes)`.
    pub body: Option<(&'static str, Bytes)>,
    /// The body's `Content-Encoding`, when compressed.
    pub content_encoding: Option<&'static str>,
}

impl Call {
    pub fn get(path: impl Into<Cow<'static, str>>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            body: None,
            content_encoding: None,
        }
    }

    pub fn json(method: Method, path: &'static str, body: String) -> Self {
        Self::with_body(method, path, "application/json", body)
    }

    pub fn with_body(
        method: Method,
        path: impl Into<Cow<'static, str>>,
        content_type: &'static str,
        body: impl Into<Bytes>,
    ) -> Self {
        Self {
            method,
            path: path.into(),
            body: Some((content_type, body.into())),
            content_encoding: None,
        }
    }

    /// `body` gzip-compressed (fast level, as Telegraf and the InfluxDB clients compress).
    pub fn gzip(
        method: Method,
        path: impl Into<Cow<'static, str>>,
        content_type: &'static str,
        body: &[u8],
    ) -> Self {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        encoder.write_all(body).expect("compress in memory");
        let compressed = encoder.finish().expect("compress in memory");
        Self {
            content_encoding: Some("gzip"),
            ..Self::with_body(method, path, content_type, compressed)
        }
    }
}

/// What each request of a scenario looks like: client `task`'s request number `seq` (numbers
/// are unique across the clients of a run). Bodies must make every reading new.
pub type MakeRequest = Arc<dyn Fn(usize, u64) -> Call + Send + Sync>;

pub fn histogram() -> Histogram<u64> {
    // Microseconds, 1 µs to 60 s, 3 significant figures.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// Records the time since `began` in a histogram of microseconds.
pub fn record(histogram: &mut Histogram<u64>, began: Instant) {
    let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.max(1));
}

pub struct Run {
    pub histogram: Histogram<u64>,
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;
pub type Sender = http1::SendRequest<Body>;

/// One keep-alive connection to `addr`.
pub async fn connect(addr: SocketAddr) -> Sender {
    try_connect(addr).await.expect("connect")
}

/// One keep-alive connection to `addr`, `None` when nothing listens there (yet).
pub async fn try_connect(addr: SocketAddr) -> Option<Sender> {
    let stream = TcpStream::connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// Sends one request and reads its whole body; `None` when the connection failed.
pub async fn send(sender: &mut Sender, call: Call) -> Option<(u16, Bytes)> {
    let mut builder = Request::builder()
        .method(call.method)
        .uri(call.path.as_ref())
        .header("host", "127.0.0.1");
    if let Some(coding) = call.content_encoding {
        builder = builder.header("content-encoding", coding);
    }
    let request = match call.body {
        Some((content_type, bytes)) => builder
            .header("content-type", content_type)
            .body(Full::new(bytes).boxed()),
        None => builder.body(
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed(),
        ),
    }
    .expect("request");
    sender.ready().await.ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, body))
}

/// `clients` connections, each sending back-to-back requests until `duration` has passed or
/// `cap` requests have been sent in total.
pub async fn drive(
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
    cap: u64,
    make: MakeRequest,
    seq_base: Arc<AtomicU64>,
) -> Run {
    let sent = Arc::new(AtomicU64::new(0));
    let told_refusal = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(clients);
    for task in 0..clients {
        let make = make.clone();
        let sent = sent.clone();
        let seq_base = seq_base.clone();
        let told_refusal = told_refusal.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram = histogram();
            let mut errors = 0u64;
            let mut sender = connect(addr).await;
            while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < cap {
                let call = make(task, seq_base.fetch_add(1, Ordering::Relaxed));
                let began = Instant::now();
                let answer = send(&mut sender, call).await;
                record(&mut histogram, began);
                match answer {
                    Some((status, _)) if status < 300 => {}
                    Some((status, body)) => {
                        errors += 1;
                        // The first refusal of a run, status and problem body, once: a cell with
                        // errors says what refused it (the server log says why in full).
                        if !told_refusal.swap(true, Ordering::Relaxed) {
                            eprintln!(
                                "  first refusal: {status} {}",
                                String::from_utf8_lossy(&body).trim_end()
                            );
                        }
                    }
                    None => {
                        errors += 1;
                        break; // the connection is gone
                    }
                }
            }
            (histogram, errors)
        }));
    }
    let mut total = histogram();
    let mut errors = 0;
    for task in tasks {
        let (h, e) = task.await.expect("client task");
        total.add(&h).expect("compatible histograms");
        errors += e;
    }
    Run {
        requests: total.len(),
        histogram: total,
        errors,
        elapsed: start.elapsed(),
    }
}

/// One reading as the service's JSON: `second` seconds after [`BASE_EPOCH`].
pub fn reading_text(sensor: &str, second: u64, temperature_centi: u64) -> String {
    let time = chrono::DateTime::from_timestamp(BASE_EPOCH + second as i64, 0)
        .expect("valid time")
        .format("%Y-%m-%d %H:%M:%S");
    format!(
        r#"{{"sensorID":"{sensor}","time":"{time}","temperature":{}.{:02}}}"#,
        temperature_centi / 100,
        temperature_centi % 100
    )
}

/// One line of line protocol: reading `second` of `sensor`, timestamp in seconds.
pub fn reading_line(sensor: &str, second: u64, temperature_centi: u64) -> String {
    format!(
        "temperature,sensorID={sensor} value={}.{:02} {}\n",
        temperature_centi / 100,
        temperature_centi % 100,
        BASE_EPOCH + second as i64
    )
}

/// A JSON array of `readings`.
pub fn json_array(readings: impl Iterator<Item = String>) -> String {
    let mut body = String::with_capacity(2 + 81 * readings.size_hint().0);
    body.push('[');
    for (i, reading) in readings.enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&reading);
    }
    body.push(']');
    body
}

/// Reading `seq` of sensor `sensor` as a one-reading batch, parsed as the service parses it.
pub fn single_reading_batch(sensor: &str, seq: u64) -> telemetry::domain::Batch {
    let text = reading_text(sensor, seq, 1_500 + seq % 1_000);
    let value: serde_json::Value = serde_json::from_str(&text).expect("json");
    telemetry::domain::Batch::parse(&value).expect("valid")
}

/// Stores readings `from..to` in `batch`-reading `PUT`s over 8 connections; returns
/// readings/s. Reading `i` is sensor `s{i % 100}`, `i / 100` seconds after [`BASE_EPOCH`].
pub async fn fill(addr: SocketAddr, from: u64, to: u64, batch: u64) -> f64 {
    const SENSORS: u64 = 100;
    let next = Arc::new(AtomicU64::new(from / batch));
    let end = to / batch;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            loop {
                let chunk = next.fetch_add(1, Ordering::Relaxed);
                if chunk >= end {
                    break;
                }
                let body = json_array((chunk * batch..(chunk + 1) * batch).map(|i| {
                    reading_text(&format!("s{}", i % SENSORS), i / SENSORS, 500 + i % 3_000)
                }));
                let call = Call::json(Method::PUT, "/api/temperature", body);
                let status = send(&mut sender, call).await.map(|(status, _)| status);
                assert_eq!(status, Some(200), "loading batch {chunk}");
            }
        }));
    }
    for task in tasks {
        task.await.expect("loader");
    }
    (to - from) as f64 / started.elapsed().as_secs_f64()
}
