//! HTTP routes, one file per resource. Each route is a function returning a filter, with a
//! `/// METHOD /path` doc line; handlers answer a `Response` themselves (problems included),
//! and [`problem::recover`] turns whatever warp rejects into a problem body.

pub mod allow;
pub mod auth;
pub mod body;
pub mod dashboard;
pub mod health;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod partial_write;
pub mod picus;
pub mod problem;
pub mod query;
pub mod readings;
pub mod sensors;
pub mod series;
pub mod write_lp;

use std::convert::Infallible;
use std::sync::Arc;

use warp::Filter;
use warp::reply::Reply;

use crate::auth::Access;
use crate::metrics::Metrics;
use crate::storage::Storage;
use write_lp::LineProtocolSettings;

/// Injects the storage handle into a handler.
pub fn with_storage(
    storage: Storage,
) -> impl Filter<Extract = (Storage,), Error = Infallible> + Clone {
    warp::any().map(move || storage.clone())
}

/// Every route of the service behind the access-control guard, with problem bodies for
/// rejections and one log line and metrics sample per request.
pub fn all(
    storage: Storage,
    metrics: Metrics,
    access: Arc<Access>,
    max_body_bytes: usize,
    line_protocol: LineProtocolSettings,
    picus_list_max_bytes: usize,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let line_protocol = Arc::new(line_protocol);
    let mode = access.mode();
    let observer = metrics.clone();
    let log = warp::log::custom(move |info| {
        let route = crate::metrics::route_template(info.path());
        observer.observe_request(route, info.method(), info.status(), info.elapsed());
        tracing::info!(
            target: "telemetry::http",
            route,
            method = %info.method(),
            status = info.status().as_u16(),
            latency_ms = info.elapsed().as_secs_f64() * 1e3,
            "request"
        );
    });
    let routes = health::liveness_get(mode, storage.clone())
        .or(health::readiness_get(storage.clone()))
        .unify()
        .or(readings::readings_put(
            storage.clone(),
            metrics.clone(),
            max_body_bytes,
        ))
        .unify()
        .or(write_lp::write_v2(
            storage.clone(),
            metrics.clone(),
            line_protocol.clone(),
        ))
        .unify()
        .or(write_lp::write_v1(
            storage.clone(),
            metrics.clone(),
            line_protocol,
        ))
        .unify()
        .or(readings::stats_get(storage.clone()))
        .unify()
        .or(readings::readings_get(storage.clone()))
        .unify()
        .or(series::series_get(storage.clone()))
        .unify()
        .or(sensors::sensors_list(storage.clone()))
        .unify()
        .or(sensors::sensor_get(storage.clone()))
        .unify()
        .or(picus::item_put(storage.clone()))
        .unify()
        .or(picus::item_get(storage.clone()))
        .unify()
        .or(picus::item_list(storage.clone(), picus_list_max_bytes))
        .unify()
        .or(picus::item_delete(storage.clone()))
        .unify()
        .or(metrics::metrics_get(metrics, storage))
        .unify()
        .or(openapi::openapi_get())
        .unify()
        .or(dashboard::dashboard_get())
        .unify();
    auth::guard(access)
        .and(routes)
        .recover(problem::recover)
        .unify()
        .with(log)
}
