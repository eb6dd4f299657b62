//! Health: `GET /api` (liveness, touches nothing) and `GET /api/ready` (checks storage).

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::problem::{Problem, RETRY_AFTER_SECONDS};
use super::with_storage;
use crate::storage::Storage;

/// GET /api — the ALB health check: cheap, no storage access.
pub fn liveness_get() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api").and(warp::get()).map(|| {
        super::json::reply(&json!({
            "status": "ok",
            "service": "telemetry",
            "version": env!("CARGO_PKG_VERSION"),
        }))
        .into_response()
    })
}

/// GET /api/ready — can this instance serve requests right now?
pub fn readiness_get(
    storage: Storage,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "ready")
        .and(warp::get())
        .and(with_storage(storage))
        .then(|storage: Storage| async move {
            match storage.ping().await {
                Ok(()) => super::json::reply(&json!({
                    "status": "ready",
                    "storage": storage.backend_name(),
                }))
                .into_response(),
                Err(error) => {
                    tracing::warn!(%error, "not ready");
                    Problem::new(StatusCode::SERVICE_UNAVAILABLE, "storage is not reachable")
                        .with("storage", storage.backend_name())
                        .retry_after(RETRY_AFTER_SECONDS)
                        .into_response()
                }
            }
        })
}
