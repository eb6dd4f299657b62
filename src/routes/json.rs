//! JSON answers: compact JSON and a final newline, so that `curl` output, shell pipelines and
//! line-based tools see a complete line. Every JSON body of the service goes through [`reply`]
//! (problem bodies included); use it rather than `warp::reply::json` in new routes.

use serde::Serialize;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

/// `value` as `application/json`, ending with `\n`.
pub fn reply<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            let mut response = warp::http::Response::new(body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => {
            tracing::error!(%error, "cannot serialise an answer as JSON");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn the_body_is_compact_json_and_a_newline() {
        let response = reply(&serde_json::json!({"a": [1, 2]}));
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"{\"a\":[1,2]}\n");
    }
}
