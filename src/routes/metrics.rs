//! `GET /metrics` for Prometheus.

use warp::http::header;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use crate::metrics::Metrics;

/// GET /metrics
pub fn metrics_get(
    metrics: Metrics,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("metrics").and(warp::get()).map(move || {
        warp::reply::with_header(
            metrics.render(),
            header::CONTENT_TYPE,
            prometheus::TEXT_FORMAT,
        )
        .into_response()
    })
}
