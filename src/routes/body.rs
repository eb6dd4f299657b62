//! Reading JSON request bodies: a size limit that also covers chunked bodies, and a
//! content-type rule that accepts what sensors actually send.
//!
//! The original service's users post with `curl -d '{...}'`, which labels the body
//! `application/x-www-form-urlencoded`. So a body is parsed as JSON whatever its label says,
//! unless the label names another real format (XML, CSV, multipart, ...): that is 415.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use warp::Filter;
use warp::http::StatusCode;
use warp::reject::Rejection;

use super::problem::{BodyTooLarge, BodyUnreadable, Problem};

/// Labels under which a JSON body may arrive.
fn is_json_compatible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "" | "application/json"
            | "text/json"
            | "text/plain"
            | "application/x-www-form-urlencoded"
            | "application/octet-stream"
            | "*/*"
    ) || essence.ends_with("+json")
}

/// The whole body, at most `limit` bytes (413 beyond), whatever its transfer encoding.
pub fn limited(limit: usize) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |declared: Option<u64>, stream| async move {
            if declared.is_some_and(|length| length > limit as u64) {
                return Err(warp::reject::custom(BodyTooLarge { limit }));
            }
            collect(stream, limit).await
        })
}

async fn collect<S, B>(stream: S, limit: usize) -> Result<Bytes, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| warp::reject::custom(BodyUnreadable))?;
        if body.len() + chunk.remaining() > limit {
            return Err(warp::reject::custom(BodyTooLarge { limit }));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(body.freeze())
}

/// Parses a JSON body under the content-type rule above.
pub fn parse_json(content_type: Option<&str>, body: &[u8]) -> Result<Value, Problem> {
    if let Some(label) = content_type.filter(|label| !is_json_compatible(label)) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the body must be JSON, not {label}"),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "the request body is empty",
        ));
    }
    serde_json::from_slice(body).map_err(|error| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {error}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_what_curl_sends_are_accepted() {
        for label in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/x-www-form-urlencoded",
            "text/plain",
            "application/problem+json",
            "application/octet-stream",
        ] {
            assert!(parse_json(Some(label), b"{}").is_ok(), "{label}");
        }
        assert!(parse_json(None, b"[1]").is_ok());
    }

    #[test]
    fn other_real_formats_are_415() {
        for label in [
            "application/xml",
            "text/csv",
            "multipart/form-data; boundary=x",
        ] {
            let problem = parse_json(Some(label), b"{}").unwrap_err();
            assert_eq!(
                problem.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{label}"
            );
        }
    }

    #[test]
    fn empty_and_malformed_bodies_are_400() {
        for body in [&b""[..], b"  \n", b"{", b"{\"a\":}", b"\xff"] {
            let problem = parse_json(None, body).unwrap_err();
            assert_eq!(problem.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[tokio::test]
    async fn chunked_bodies_are_limited_too() {
        let filter = limited(8);
        let within = warp::test::request().body("12345678").filter(&filter).await;
        assert_eq!(within.unwrap(), Bytes::from_static(b"12345678"));
        let beyond = warp::test::request()
            .body("123456789")
            .filter(&filter)
            .await;
        assert!(beyond.unwrap_err().find::<BodyTooLarge>().is_some());
    }
}
