//! Health: `GET /api` (liveness, touches no storage) and `GET /api/ready` (checks storage).

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::problem::{Problem, RETRY_AFTER_SECONDS};
use super::with_storage;
use crate::storage::Storage;

/// GET /api — the ALB and container health check: cheap, no storage access. `auth` is `"on"`
/// when tokens are configured, `"off"` when the service is open. 503 only when the process
/// cannot recover without a restart (a storage thread has died), so that ECS replaces it; a
/// passing fault (full disk, DynamoDB unreachable) makes only `/api/ready` fail.
pub fn liveness_get(
    auth: &'static str,
    storage: Storage,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api")
        .and(warp::get())
        .and(with_storage(storage))
        .map(move |storage: Storage| match storage.alive() {
            Ok(()) => super::json::reply(&json!({
                "status": "ok",
                "service": "telemetry",
                "version": env!("CARGO_PKG_VERSION"),
                "auth": auth,
            }))
            .into_response(),
            Err(error) => {
                tracing::error!(%error, "not alive: this instance needs a restart");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "a storage thread has stopped; this instance needs a restart",
                )
                .with("storage", storage.backend_name())
                .into_response()
            }
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
