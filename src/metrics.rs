//! Prometheus metrics, in a registry owned by the app (not the global one), so several apps can
//! run in one test process. Label values are bounded: route templates, methods, status classes
//! and fixed outcome names, never a sensor id or an item id.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use warp::http::{Method, StatusCode};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    readings: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "telemetry_http_requests_total",
                "HTTP requests answered, by route template, method and status class.",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "telemetry_http_request_duration_seconds",
                "Time from request to response, by route template.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )
        .expect("valid metric");
        let readings = IntCounterVec::new(
            Opts::new(
                "telemetry_readings_total",
                "Readings received, by outcome: stored (new), duplicate (exact repeat, no-op), \
                 conflict (same sensorID and time, other temperature), rejected (invalid request).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(readings.clone()),
        ] {
            registry.register(collector).expect("unique metric names");
        }
        for outcome in ["stored", "duplicate", "conflict", "rejected"] {
            readings.with_label_values(&[outcome]);
        }
        Self {
            registry,
            http_requests,
            http_duration,
            readings,
        }
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
            .with_label_values(&[route, method.as_str(), class])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(took.as_secs_f64());
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
    pub fn readings_rejected(&self, _status: StatusCode) {
        self.readings.with_label_values(&["rejected"]).inc();
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

/// The route template of a request path, so that labels stay bounded.
pub fn route_template(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api"] => "/api",
        ["api", "ready"] => "/api/ready",
        ["api", "temperature"] => "/api/temperature",
        ["api", "stats"] => "/api/stats",
        ["api", "readings"] => "/api/readings",
        ["metrics"] => "/metrics",
        ["openapi.json"] => "/openapi.json",
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
        assert_eq!(route_template("/wp-admin/x.php"), "other");
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
    }
}
