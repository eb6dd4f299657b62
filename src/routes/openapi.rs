//! `GET /openapi.json`: the API's OpenAPI 3 description, which `schemathesis` fuzzes in CI.

use warp::http::header;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

/// The document, kept beside the routes it describes.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// GET /openapi.json
pub fn openapi_get() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("openapi.json").and(warp::get()).map(|| {
        warp::reply::with_header(DOCUMENT, header::CONTENT_TYPE, "application/json").into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_json_and_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/api",
            "/api/ready",
            "/api/temperature",
            "/api/stats",
            "/api/readings",
            "/api/v2/write",
            "/write",
            "/metrics",
            "/",
            "/dashboard/app.js",
            "/dashboard/app.css",
            "/picus/put",
            "/picus/get/{key}",
            "/picus/list",
            "/picus/{key}",
        ] {
            assert!(paths.contains_key(path), "{path} is documented");
            assert_ne!(
                crate::metrics::route_template(&path.replace("{key}", "1")),
                "other"
            );
        }
    }
}
