//! The service's replies (warp responses: status, headers, a body already in memory) as the
//! responses `lambda_http` turns into an ALB or API Gateway answer.

use http_body_util::BodyExt;
use lambda_http::{Body, Response};

/// The same status, headers and body. JSON and problem bodies are text; anything that is not
/// UTF-8 stays binary (`lambda_http` base64-encodes it for the event).
pub async fn from_service(response: warp::reply::Response) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        // The service's replies are built in memory and cannot fail to be read; if one ever
        // did, the answer is an error rather than a truncated body.
        Err(error) => {
            tracing::error!(%error, "reading a reply body");
            let mut response = Response::new(Body::Text(
                r#"{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"internal error"}"#
                    .to_owned(),
            ));
            *response.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
            return response;
        }
    };
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes) {
            Ok(text) => Body::Text(text),
            Err(error) => Body::Binary(error.into_bytes()),
        }
    };
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::Reply;
    use warp::http::{StatusCode, header};

    #[tokio::test]
    async fn status_headers_and_body_are_kept() {
        let reply = warp::reply::with_status(
            warp::reply::with_header("{\"a\":1}", header::CONTENT_TYPE, "application/json"),
            StatusCode::NOT_FOUND,
        )
        .into_response();
        let response = from_service(reply).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert!(matches!(response.body(), Body::Text(text) if text == "{\"a\":1}"));
    }

    #[tokio::test]
    async fn bytes_that_are_not_text_stay_binary() {
        let reply = warp::reply::Response::new(vec![0xff_u8, 0x00].into());
        let response = from_service(reply).await;
        assert!(matches!(response.body(), Body::Binary(bytes) if bytes == &[0xff, 0x00]));
        let empty = from_service(warp::reply::Response::new(Vec::<u8>::new().into())).await;
        assert!(matches!(empty.body(), Body::Empty));
    }
}
