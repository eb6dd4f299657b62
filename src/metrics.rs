//! Prometheus metrics, in a registry owned by the app (not the global one), so several apps can
//! run in one test process. Label values are bounded: route templates, methods, status classes
//! and fixed outcome names, never a sensor id or an item id.

use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use warp::http::{Method, StatusCode};

use std::sync::Arc;

use crate::domain::Aggregate;

/// The app's metrics. A handle: cloning it (every request's filters take a copy) is one
/// reference count, not one per collector — the 21 collector clones and drops it cost before
/// were about a fifth of the server's CPU on single-reading `PUT`s (BENCHMARKS.md).
#[derive(Clone)]
pub struct Metrics {
    collectors: Arc<Collectors>,
}

impl std::ops::Deref for Metrics {
    type Target = Collectors;

    fn deref(&self) -> &Collectors {
        &self.collectors
    }
}

/// Every collector of [`Metrics`], registered once in its own registry.
pub struct Collectors {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    http_rejected: IntCounterVec,
    readings: IntCounterVec,
    storage_duration: HistogramVec,
    storage_errors: IntCounterVec,
    group_size: HistogramVec,
    aggregate_count: IntGauge,
    aggregate_min: Gauge,
    aggregate_max: Gauge,
    aggregate_average: Gauge,
    dynamodb_requests: IntCounter,
    line_protocol_ignored: IntCounter,
    auth_failures: IntCounterVec,
    rate_limited: IntCounterVec,
    connections_closed: IntCounterVec,
    open_connections: IntGauge,
    retention_deleted_readings: IntCounter,
    retention_deleted_rollups: IntCounter,
    retention_last_sweep: Gauge,
}

/// Every storage operation (the `operation` label), so that
/// `telemetry_storage_errors_total` can be declared at zero for each from the start. A new
/// storage operation must be added here: debug builds (every test) assert it.
pub const STORAGE_OPERATIONS: [&str; 12] = [
    "put_readings",
    "stats",
    "window_stats",
    "series",
    "sensors",
    "sensor",
    "readings",
    "ping",
    "item_put",
    "item_get",
    "item_list",
    "item_delete",
];

/// The `kind` label of `telemetry_storage_errors_total`.
pub const STORAGE_ERROR_KINDS: [&str; 4] = ["unavailable", "pending", "internal", "unsupported"];

/// Latency buckets from 0.5 ms to 5 s.
const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn histogram(name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .expect("valid metric")
}

fn gauge(name: &str, help: &str) -> Gauge {
    Gauge::new(name, help).expect("valid metric")
}

impl Metrics {
    pub fn new() -> Self {
        let metrics = Collectors {
            registry: Registry::new(),
            http_requests: counter(
                "telemetry_http_requests_total",
                "HTTP requests answered, by route template, method and status class.",
                &["route", "method", "status"],
            ),
            http_duration: histogram(
                "telemetry_http_request_duration_seconds",
                "Time from request to response, by route template.",
                &["route"],
                LATENCY_BUCKETS.to_vec(),
            ),
            http_rejected: counter(
                "telemetry_http_rejected_requests_total",
                "Requests answered with a 4xx problem, by route template and reason.",
                &["route", "reason"],
            ),
            readings: counter(
                "telemetry_readings_total",
                "Readings received, by outcome: stored (new), duplicate (exact repeat, no-op), \
                 conflict (in a request refused for a conflict), rejected (invalid request).",
                &["outcome"],
            ),
            storage_duration: histogram(
                "telemetry_storage_operation_duration_seconds",
                "Time spent in storage, by backend and operation.",
                &["backend", "operation"],
                LATENCY_BUCKETS.to_vec(),
            ),
            storage_errors: counter(
                "telemetry_storage_errors_total",
                "Storage operations that failed, by backend, operation and kind \
                 (unavailable: retryable; internal: a bug or corruption).",
                &["backend", "operation", "kind"],
            ),
            group_size: histogram(
                "telemetry_storage_group_commit_writes",
                "Writes (requests) committed together by one group commit, by backend.",
                &["backend"],
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            ),
            aggregate_count: IntGauge::new(
                "telemetry_aggregate_readings",
                "Readings stored, as of the last scrape.",
            )
            .expect("valid metric"),
            aggregate_min: gauge(
                "telemetry_aggregate_min_celsius",
                "Lowest stored temperature (NaN when there is none), as of the last scrape.",
            ),
            aggregate_max: gauge(
                "telemetry_aggregate_max_celsius",
                "Highest stored temperature (NaN when there is none), as of the last scrape.",
            ),
            aggregate_average: gauge(
                "telemetry_aggregate_average_celsius",
                "Mean stored temperature (NaN when there is none), as of the last scrape.",
            ),
            dynamodb_requests: IntCounter::new(
                "telemetry_dynamodb_requests_total",
                "DynamoDB API calls made by this instance (each call once, not the SDK's retries \
                 of it), as of the last scrape; 0 on the embedded store.",
            )
            .expect("valid metric"),
            line_protocol_ignored: IntCounter::new(
                "telemetry_line_protocol_ignored_lines_total",
                "Line protocol lines skipped because their measurement is not the configured one.",
            )
            .expect("valid metric"),
            auth_failures: counter(
                "telemetry_auth_failures_total",
                "Requests refused by access control, by reason: missing, malformed or \
                 unknown_token (401), forbidden (403, the token lacks the scope), throttled \
                 (429, too many failures from the address).",
                &["reason"],
            ),
            rate_limited: counter(
                "telemetry_rate_limited_requests_total",
                "Requests refused with 429 because their token's (or address's) budget was \
                 used up, by budget (read, write).",
                &["budget"],
            ),
            connections_closed: counter(
                "telemetry_connections_closed_total",
                "Connections closed by a limit, by reason: header_timeout, idle, body_timeout, \
                 body_memory.",
                &["reason"],
            ),
            open_connections: IntGauge::new(
                "telemetry_open_connections",
                "HTTP connections open now.",
            )
            .expect("valid metric"),
            retention_deleted_readings: IntCounter::new(
                "telemetry_retention_deleted_readings_total",
                "Readings deleted by the retention sweep (embedded store).",
            )
            .expect("valid metric"),
            retention_deleted_rollups: IntCounter::new(
                "telemetry_retention_deleted_rollups_total",
                "Rollup rows deleted by the retention sweep (embedded store).",
            )
            .expect("valid metric"),
            retention_last_sweep: gauge(
                "telemetry_retention_last_sweep_timestamp_seconds",
                "When the retention sweep last finished a pass, in Unix seconds (0: never).",
            ),
        };
        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(metrics.http_requests.clone()),
            Box::new(metrics.http_duration.clone()),
            Box::new(metrics.http_rejected.clone()),
            Box::new(metrics.readings.clone()),
            Box::new(metrics.storage_duration.clone()),
            Box::new(metrics.storage_errors.clone()),
            Box::new(metrics.group_size.clone()),
            Box::new(metrics.aggregate_count.clone()),
            Box::new(metrics.aggregate_min.clone()),
            Box::new(metrics.aggregate_max.clone()),
            Box::new(metrics.aggregate_average.clone()),
            Box::new(metrics.dynamodb_requests.clone()),
            Box::new(metrics.line_protocol_ignored.clone()),
            Box::new(metrics.auth_failures.clone()),
            Box::new(metrics.rate_limited.clone()),
            Box::new(metrics.connections_closed.clone()),
            Box::new(metrics.open_connections.clone()),
            Box::new(metrics.retention_deleted_readings.clone()),
            Box::new(metrics.retention_deleted_rollups.clone()),
            Box::new(metrics.retention_last_sweep.clone()),
        ];
        for collector in collectors {
            metrics
                .registry
                .register(collector)
                .expect("unique metric names");
        }
        #[cfg(target_os = "linux")]
        {
            // process_cpu_seconds_total, process_resident_memory_bytes, open fds, ...
            let process = prometheus::process_collector::ProcessCollector::for_self();
            metrics
                .registry
                .register(Box::new(process))
                .expect("unique metric names");
        }
        for outcome in ["stored", "duplicate", "conflict", "rejected"] {
            metrics.readings.with_label_values(&[outcome]);
        }
        for reason in [
            "missing",
            "malformed",
            "unknown_token",
            "forbidden",
            "throttled",
        ] {
            metrics.auth_failures.with_label_values(&[reason]);
        }
        let metrics = Self {
            collectors: Arc::new(metrics),
        };
        metrics.set_aggregate(&Aggregate::default());
        metrics
    }

    /// A request refused by access control (`reason`: a fixed name, never the token).
    pub fn auth_failed(&self, reason: &'static str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }

    /// A request refused because its budget (`read` or `write`) was used up.
    pub fn rate_limited(&self, budget: &'static str) {
        self.rate_limited.with_label_values(&[budget]).inc();
    }

    /// A connection closed by a limit (`reason`: a fixed name).
    pub fn connection_closed(&self, reason: &'static str) {
        self.connections_closed.with_label_values(&[reason]).inc();
    }

    /// One more (`+1`) or one less (`-1`) open connection.
    pub fn connections_changed(&self, delta: i64) {
        self.open_connections.add(delta);
    }

    pub fn observe_request(
        &self,
        route: &str,
        method: &Method,
        status: StatusCode,
        took: Duration,
    ) {
        let class = match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http_requests
            .with_label_values(&[route, method_label(method), class])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(took.as_secs_f64());
        if status.is_client_error() {
            self.http_rejected
                .with_label_values(&[route, rejection_reason(status)])
                .inc();
        }
    }

    /// Declares `telemetry_storage_errors_total` at zero for every operation and kind of
    /// `backend`, so dashboards and alerts can reference each series before the first error.
    pub fn declare_storage_errors(&self, backend: &str) {
        for operation in STORAGE_OPERATIONS {
            for kind in STORAGE_ERROR_KINDS {
                self.storage_errors
                    .with_label_values(&[backend, operation, kind]);
            }
        }
    }

    /// One storage call: its duration, and its failure if it failed.
    pub fn observe_storage(
        &self,
        backend: &str,
        operation: &str,
        took: Duration,
        failure: Option<&'static str>,
    ) {
        debug_assert!(
            STORAGE_OPERATIONS.contains(&operation),
            "add {operation:?} to metrics::STORAGE_OPERATIONS"
        );
        self.storage_duration
            .with_label_values(&[backend, operation])
            .observe(took.as_secs_f64());
        if let Some(kind) = failure {
            self.storage_errors
                .with_label_values(&[backend, operation, kind])
                .inc();
        }
    }

    /// A storage call refused before it was made (a write shed before its body was parsed).
    pub fn storage_refused(&self, backend: &str, operation: &str, kind: &'static str) {
        self.storage_errors
            .with_label_values(&[backend, operation, kind])
            .inc();
    }

    /// The size of one group commit.
    pub fn observe_group(&self, backend: &str, writes: usize) {
        self.group_size
            .with_label_values(&[backend])
            .observe(writes as f64);
    }

    /// Publishes the global aggregate as gauges (called on every scrape).
    pub fn set_aggregate(&self, aggregate: &Aggregate) {
        let stats = aggregate.stats();
        self.aggregate_count
            .set(i64::try_from(stats.count).unwrap_or(i64::MAX));
        self.aggregate_min.set(stats.minimum.unwrap_or(f64::NAN));
        self.aggregate_max.set(stats.maximum.unwrap_or(f64::NAN));
        self.aggregate_average
            .set(stats.average.unwrap_or(f64::NAN));
    }

    /// Brings the DynamoDB call counter up to the store's own count (read at scrape time).
    pub fn set_dynamodb_requests(&self, total: u64) {
        let current = self.dynamodb_requests.get();
        if total > current {
            self.dynamodb_requests.inc_by(total - current);
        }
    }

    pub fn readings_stored(&self, stored: usize, duplicates: usize) {
        self.readings
            .with_label_values(&["stored"])
            .inc_by(stored as u64);
        self.readings
            .with_label_values(&["duplicate"])
            .inc_by(duplicates as u64);
    }

    pub fn readings_conflicted(&self, received: usize) {
        self.readings
            .with_label_values(&["conflict"])
            .inc_by(received as u64);
    }

    /// A `PUT /api/temperature` refused before storage (its readings are not counted).
    /// The retention sweep deleted these many readings and rollup rows.
    pub fn retention_deleted(&self, readings: u64, rollups: u64) {
        self.retention_deleted_readings.inc_by(readings);
        self.retention_deleted_rollups.inc_by(rollups);
    }

    /// The retention sweep finished a pass at `micros` since the epoch.
    pub fn retention_swept(&self, micros: i64) {
        self.retention_last_sweep.set(micros as f64 / 1e6);
    }

    pub fn readings_rejected(&self) {
        self.readings.with_label_values(&["rejected"]).inc();
    }

    /// Line protocol lines of other measurements, skipped.
    pub fn line_protocol_ignored(&self, lines: usize) {
        self.line_protocol_ignored.inc_by(lines as u64);
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(error) = encoder.encode(&self.registry.gather(), &mut out) {
            tracing::error!(%error, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A bounded label for why a request was refused.
fn rejection_reason(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "malformed",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        409 => "conflict",
        413 => "too_large",
        415 => "unsupported_media_type",
        422 => "invalid",
        429 => "rate_limited",
        _ => "other",
    }
}

/// The method label: the methods the routes answer, `other` for every other, so that made-up
/// methods cannot grow the label set.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The route template of a request path, so that labels stay bounded.
pub fn route_template(path: &str) -> &'static str {
    // No route has more than three segments: a fixed array, no allocation per request.
    let mut segments = [""; 4];
    let mut count = 0;
    for segment in path.trim_matches('/').split('/') {
        if count == segments.len() {
            return "other";
        }
        segments[count] = segment;
        count += 1;
    }
    match &segments[..count] {
        ["api"] => "/api",
        ["api", "ready"] => "/api/ready",
        ["api", "temperature"] => "/api/temperature",
        ["api", "stats"] => "/api/stats",
        ["api", "readings"] => "/api/readings",
        ["api", "v2", "write"] => "/api/v2/write",
        ["write"] => "/write",
        ["api", "series"] => "/api/series",
        ["api", "sensors"] => "/api/sensors",
        ["api", "sensors", _] => "/api/sensors/{sensorID}",
        ["metrics"] => "/metrics",
        ["openapi.json"] => "/openapi.json",
        [""] => "/",
        ["dashboard", "app.js"] => "/dashboard/app.js",
        ["dashboard", "app.css"] => "/dashboard/app.css",
        ["picus", "list"] => "/picus/list",
        ["picus", "put"] => "/picus/put",
        ["picus", "get", _] => "/picus/get/{key}",
        ["picus", _] => "/picus/{key}",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_never_carry_ids() {
        assert_eq!(route_template("/picus/get/42"), "/picus/get/{key}");
        assert_eq!(route_template("/picus/42"), "/picus/{key}");
        assert_eq!(route_template("/api/stats"), "/api/stats");
        assert_eq!(
            route_template("/api/sensors/107"),
            "/api/sensors/{sensorID}"
        );
        assert_eq!(route_template("/"), "/");
        assert_eq!(route_template("/wp-admin/x.php"), "other");
        assert_eq!(route_template("/api/sensors/1/2/3"), "other");
        assert_eq!(route_template("//api//"), "/api");
    }

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        assert_eq!(method_label(&Method::TRACE), "other");
        let made_up = Method::from_bytes(b"X0000001").unwrap();
        assert_eq!(method_label(&made_up), "other");
    }

    #[test]
    fn counters_show_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.readings_stored(3, 1);
        metrics.observe_request(
            "/api",
            &Method::GET,
            StatusCode::OK,
            Duration::from_millis(1),
        );
        let text = metrics.render();
        assert!(
            text.contains("telemetry_readings_total{outcome=\"stored\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("telemetry_readings_total{outcome=\"duplicate\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "telemetry_http_requests_total{method=\"GET\",route=\"/api\",status=\"2xx\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("telemetry_aggregate_min_celsius NaN"),
            "{text}"
        );
    }

    #[test]
    fn client_errors_count_as_rejections_by_reason() {
        let metrics = Metrics::new();
        let took = Duration::from_millis(1);
        let route = "/api/temperature";
        metrics.observe_request(route, &Method::PUT, StatusCode::UNPROCESSABLE_ENTITY, took);
        metrics.observe_request(route, &Method::PUT, StatusCode::PAYLOAD_TOO_LARGE, took);
        metrics.observe_request(route, &Method::PUT, StatusCode::OK, took);
        let text = metrics.render();
        for line in [
            "telemetry_http_rejected_requests_total{reason=\"invalid\",route=\"/api/temperature\"} 1",
            "telemetry_http_rejected_requests_total{reason=\"too_large\",route=\"/api/temperature\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in {text}");
        }
    }

    #[test]
    fn storage_errors_are_declared_at_zero_for_the_running_backend() {
        let metrics = Metrics::new();
        assert!(!metrics.render().contains("telemetry_storage_errors_total{"));
        metrics.declare_storage_errors("embedded");
        let text = metrics.render();
        for operation in STORAGE_OPERATIONS {
            for kind in STORAGE_ERROR_KINDS {
                let line = format!(
                    "telemetry_storage_errors_total{{backend=\"embedded\",kind=\"{kind}\",operation=\"{operation}\"}} 0"
                );
                assert!(text.lines().any(|l| l == line), "missing {line} in {text}");
            }
        }
        assert!(!text.contains("backend=\"dynamodb\""), "{text}");
    }

    #[test]
    fn aggregate_gauges_follow_the_stats() {
        let metrics = Metrics::new();
        let mut aggregate = Aggregate::default();
        for micros in [1_500_000, -2_000_000] {
            aggregate.add(crate::domain::Temperature::from_micros(micros).unwrap());
        }
        metrics.set_aggregate(&aggregate);
        let text = metrics.render();
        for line in [
            "telemetry_aggregate_readings 2",
            "telemetry_aggregate_min_celsius -2",
            "telemetry_aggregate_max_celsius 1.5",
            "telemetry_aggregate_average_celsius -0.25",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in {text}");
        }
    }
}
