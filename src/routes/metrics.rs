//! `GET /metrics` for Prometheus.

use warp::http::header;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::with_storage;
use crate::metrics::Metrics;
use crate::storage::Storage;

/// GET /metrics — refreshes the aggregate gauges (one aggregate read, never a scan), then
/// renders every family.
pub fn metrics_get(
    metrics: Metrics,
    storage: Storage,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .and(with_storage(storage))
        .then(move |storage: Storage| {
            let metrics = metrics.clone();
            async move {
                match storage.stats(None).await {
                    Ok(aggregate) => metrics.set_aggregate(&aggregate),
                    // The scrape still succeeds; the gauges keep their last values.
                    Err(error) => tracing::warn!(%error, "cannot refresh aggregate gauges"),
                }
                if let Some(requests) = storage.dynamodb_request_count() {
                    metrics.set_dynamodb_requests(requests);
                }
                warp::reply::with_header(
                    metrics.render(),
                    header::CONTENT_TYPE,
                    prometheus::TEXT_FORMAT,
                )
                .into_response()
            }
        })
}
