//! Reading request bodies: `Content-Encoding` (gzip, deflate), a size limit on the wire and
//! after decoding that also covers chunked bodies, and a content-type rule for JSON that
//! accepts what sensors actually send.
//!
//! The original service's users post with `curl -d '{...}'`, which labels the body
//! `application/x-www-form-urlencoded`. So a body is parsed as JSON whatever its label says,
//! unless the label names another real format (XML, CSV, multipart, ...): that is 415.
//!
//! A compressed body is inflated into at most `limit + 1` bytes: a small gzip bomb costs at
//! most `limit` bytes of memory and one bounded read before its 413.

use std::convert::Infallible;
use std::io::Read;

use bytes::{Buf, Bytes, BytesMut};
use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use warp::Filter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reject::Rejection;
use warp::reply::{Reply, Response};

use super::problem::Problem;

/// The encodings a body may arrive in, as an `Accept-Encoding` value for 415 answers.
pub const ACCEPTED_ENCODINGS: &str = "gzip, deflate, identity";

/// Why a request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// More than `limit` bytes on the wire or after decoding.
    TooLarge { limit: usize },
    /// The connection failed while the body was arriving.
    Unreadable,
    /// A `Content-Encoding` other than gzip, deflate or identity.
    UnsupportedEncoding(String),
    /// The body is not valid data of its declared encoding.
    Undecodable(&'static str),
}
impl warp::reject::Reject for BodyError {}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unreadable | Self::Undecodable(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::TooLarge { limit } => {
                format!("the request body exceeds {limit} bytes (after decoding)")
            }
            Self::Unreadable => "the request body could not be read".into(),
            Self::UnsupportedEncoding(coding) => format!(
                "content-encoding {coding:?} is not supported; use one of {ACCEPTED_ENCODINGS}"
            ),
            Self::Undecodable(coding) => format!("the request body is not valid {coding} data"),
        }
    }

    /// Headers that go with the answer (RFC 7694: a 415 for an encoding names the accepted ones).
    pub fn add_headers(&self, response: &mut Response) {
        if let Self::UnsupportedEncoding(_) = self {
            response.headers_mut().insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static(ACCEPTED_ENCODINGS),
            );
        }
    }

    /// The RFC 9457 answer of the JSON routes.
    pub fn problem_response(&self) -> Response {
        let mut problem = Problem::new(self.status(), self.message());
        if let Self::TooLarge { limit } = self {
            problem = problem.with("limit", limit);
        }
        let mut response = problem.into_response();
        self.add_headers(&mut response);
        response
    }
}

/// The whole body, decoded, at most `limit` bytes on the wire and after decoding, whatever its
/// transfer encoding; a failure is a rejection that [`super::problem::recover`] answers.
pub fn limited(limit: usize) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    decoded(limit).and_then(|body: Result<Bytes, BodyError>| async move {
        body.map_err(warp::reject::custom)
    })
}

/// Like [`limited`], but hands the failure to the handler, for routes that answer errors in
/// another format (the InfluxDB write routes).
pub fn decoded(
    limit: usize,
) -> impl Filter<Extract = (Result<Bytes, BodyError>,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::header::optional::<String>("content-encoding"))
        .and(warp::body::stream())
        .then(
            move |declared: Option<u64>, encoding: Option<String>, stream| async move {
                let coding = Coding::parse(encoding.as_deref())?;
                if declared.is_some_and(|length| length > limit as u64) {
                    return Err(BodyError::TooLarge { limit });
                }
                let wire = collect(stream, limit).await?;
                match coding {
                    Coding::Identity => Ok(wire),
                    // Inflating is CPU work: off the async workers.
                    coding => tokio::task::spawn_blocking(move || coding.decode(&wire, limit))
                        .await
                        .map_err(|_| BodyError::Unreadable)?,
                }
            },
        )
}

/// A body's `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Deflate,
}

impl Coding {
    fn parse(header: Option<&str>) -> Result<Self, BodyError> {
        let Some(header) = header else {
            return Ok(Self::Identity);
        };
        match header.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(Self::Identity),
            "gzip" | "x-gzip" => Ok(Self::Gzip),
            "deflate" => Ok(Self::Deflate),
            _ => Err(BodyError::UnsupportedEncoding(header.trim().to_owned())),
        }
    }

    fn decode(self, wire: &[u8], limit: usize) -> Result<Bytes, BodyError> {
        match self {
            Self::Identity => Ok(Bytes::copy_from_slice(wire)),
            Self::Gzip => inflate(MultiGzDecoder::new(wire), limit, "gzip"),
            // HTTP's deflate is zlib-wrapped (RFC 9110); some clients send raw deflate.
            Self::Deflate if is_zlib_header(wire) => {
                inflate(ZlibDecoder::new(wire), limit, "deflate")
            }
            Self::Deflate => inflate(DeflateDecoder::new(wire), limit, "deflate"),
        }
    }
}

/// RFC 1950: method 8 (deflate), and the header's check bits.
fn is_zlib_header(wire: &[u8]) -> bool {
    match wire {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// Reads at most `limit + 1` decoded bytes: one more than the limit proves it is exceeded.
fn inflate(decoder: impl Read, limit: usize, coding: &'static str) -> Result<Bytes, BodyError> {
    let mut out = Vec::new();
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| BodyError::Undecodable(coding))?;
    if out.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(Bytes::from(out))
}

async fn collect<S, B>(stream: S, limit: usize) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if body.len() + chunk.remaining() > limit {
            return Err(BodyError::TooLarge { limit });
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

/// Checks a JSON body's label and emptiness (the content-type rule above); the caller parses.
pub fn check_json(content_type: Option<&str>, body: &[u8]) -> Result<(), Problem> {
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
    Ok(())
}

/// A request's `Content-Type` label, or the 400 for a label that is not text.
pub type ContentType = Result<Option<String>, Problem>;

/// The `Content-Type` label. A label that is not visible ASCII text is handed to the handler as
/// a 400 rather than rejected: a rejection here would lose to another route's 405.
pub fn content_type() -> impl Filter<Extract = (ContentType,), Error = Infallible> + Clone {
    warp::header::optional::<String>("content-type")
        .map(Ok)
        .or(warp::any().map(|| {
            Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "the Content-Type header is not valid text",
            ))
        }))
        .unify()
}

/// Parses a JSON body under the content-type rule above.
pub fn parse_json(content_type: Option<&str>, body: &[u8]) -> Result<Value, Problem> {
    check_json(content_type, body)?;
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
        assert_eq!(
            beyond.unwrap_err().find::<BodyError>(),
            Some(&BodyError::TooLarge { limit: 8 })
        );
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    async fn decode(encoding: &str, body: Vec<u8>, limit: usize) -> Result<Bytes, BodyError> {
        warp::test::request()
            .header("content-encoding", encoding)
            .body(body)
            .filter(&decoded(limit))
            .await
            .expect("decoded never rejects")
    }

    #[tokio::test]
    async fn gzip_and_both_deflates_are_decoded() {
        use std::io::Write;
        let data = b"temperature,sensorID=1 value=1\n".repeat(10);
        assert_eq!(decode("gzip", gzip(&data), 1024).await.unwrap(), data);
        assert_eq!(decode("X-GZIP", gzip(&data), 1024).await.unwrap(), data);
        let mut twice = gzip(&data[..100]);
        twice.extend(gzip(&data[100..]));
        assert_eq!(decode("gzip", twice, 1024).await.unwrap(), data);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&data).unwrap();
        assert_eq!(
            decode("deflate", zlib.finish().unwrap(), 1024)
                .await
                .unwrap(),
            data
        );
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&data).unwrap();
        assert_eq!(
            decode("deflate", raw.finish().unwrap(), 1024)
                .await
                .unwrap(),
            data
        );
        assert_eq!(decode("identity", data.clone(), 1024).await.unwrap(), data);
    }

    #[tokio::test]
    async fn the_limit_applies_after_decoding() {
        let data = vec![b'0'; 4096];
        assert_eq!(decode("gzip", gzip(&data), 4096).await.unwrap().len(), 4096);
        let bomb = gzip(&data);
        assert!(bomb.len() < 100, "a {} byte bomb", bomb.len());
        assert_eq!(
            decode("gzip", bomb, 4095).await,
            Err(BodyError::TooLarge { limit: 4095 })
        );
    }

    #[tokio::test]
    async fn unknown_and_corrupt_encodings_are_refused() {
        assert_eq!(
            decode("br", b"x".to_vec(), 10).await,
            Err(BodyError::UnsupportedEncoding("br".into()))
        );
        assert_eq!(
            decode("gzip", b"not gzip".to_vec(), 100).await,
            Err(BodyError::Undecodable("gzip"))
        );
        let mut truncated = gzip(b"some data that is cut short");
        truncated.truncate(truncated.len() - 6);
        assert_eq!(
            decode("gzip", truncated, 100).await,
            Err(BodyError::Undecodable("gzip"))
        );
        let response = BodyError::UnsupportedEncoding("br".into()).problem_response();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            response.headers()[header::ACCEPT_ENCODING],
            ACCEPTED_ENCODINGS
        );
    }
}
