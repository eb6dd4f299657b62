//! InfluxDB-compatible writes of line protocol: `POST /api/v2/write` (InfluxDB 2) and
//! `POST /write` (InfluxDB 1), so Telegraf and the official client libraries can write here.
//!
//! Answers are InfluxDB's, so those clients behave: `204` with no body on success; errors as
//! `{"code": "...", "message": "..."}` on v2 and `{"error": "..."}` on v1 (with an
//! `X-Influxdb-Error` header, as InfluxDB 1 sends), and `503` + `Retry-After` when storage is
//! unavailable so their retry logic backs off. `org`, `bucket`, `db`, `rp`, `u` and `p` are
//! accepted and ignored. Semantics are those of `PUT /api/temperature`: all or nothing, exact
//! repeats are no-ops, a conflicting value is refused, durable before the answer.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::body::{self, BodyError};
use super::partial_write::put_partial;
use super::problem::RETRY_AFTER_SECONDS;
use super::readings::accept_partial;
use super::with_storage;
use crate::domain::line_batch::{
    LineBatchError, LineError, LinePartial, LineSchema, LinesChecked, MAX_LINES, Precision,
};
use crate::domain::retention::Retention;
use crate::domain::{Conflict, Timestamp};
use crate::metrics::Metrics;
use crate::storage::{PutOutcome, Storage, StorageError};

/// What the write routes need beyond storage and metrics.
#[derive(Debug, Clone)]
pub struct LineProtocolSettings {
    pub schema: LineSchema,
    /// Largest body, on the wire and after decoding.
    pub max_body_bytes: usize,
    /// Lines older than its horizon or too far ahead are invalid lines (422).
    pub retention: Retention,
}

/// Which InfluxDB API a request came through: it decides parameter names and error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    V1,
    V2,
}

/// POST /api/v2/write?org=&bucket=&precision=ns|us|ms|s[&accept_partial=true]
pub fn write_v2(
    storage: Storage,
    metrics: Metrics,
    settings: Arc<LineProtocolSettings>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    route(
        warp::path!("api" / "v2" / "write"),
        Dialect::V2,
        storage,
        metrics,
        settings,
    )
}

/// POST /write?db=&precision=n|u|ms|s|m|h[&accept_partial=true]
pub fn write_v1(
    storage: Storage,
    metrics: Metrics,
    settings: Arc<LineProtocolSettings>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    route(
        warp::path!("write"),
        Dialect::V1,
        storage,
        metrics,
        settings,
    )
}

fn route(
    path: impl Filter<Extract = (), Error = Rejection> + Clone,
    dialect: Dialect,
    storage: Storage,
    metrics: Metrics,
    settings: Arc<LineProtocolSettings>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let limit = settings.max_body_bytes;
    path.and(warp::post())
        .and(warp::query::<HashMap<String, String>>())
        .and(body::decoded(limit))
        .and(with_storage(storage))
        .and(warp::any().map(move || (metrics.clone(), settings.clone())))
        .then(
            move |query,
                  body,
                  storage,
                  (metrics, settings): (Metrics, Arc<LineProtocolSettings>)| {
                write(dialect, query, body, storage, metrics, settings)
            },
        )
}

async fn write(
    dialect: Dialect,
    query: HashMap<String, String>,
    body: Result<Bytes, BodyError>,
    storage: Storage,
    metrics: Metrics,
    settings: Arc<LineProtocolSettings>,
) -> Response {
    // Admission before parsing, as the JSON write route does.
    let slot = match storage.admit_write().await {
        Ok(slot) => slot,
        Err(error) => return WriteError::from(error).into_response(dialect),
    };
    let received = Timestamp::from_micros(chrono::Utc::now().timestamp_micros())
        .expect("the clock is within years 1 to 9999");
    let checked = parse(dialect, &query, body, &settings, received);
    let (partial, checked) = match checked {
        Ok(parsed) => parsed,
        Err(error) => {
            metrics.readings_rejected();
            return error.into_response(dialect);
        }
    };
    metrics.line_protocol_ignored(checked.ignored);
    let sent = checked.readings.len() + checked.invalid.len() + checked.malformed.len();
    if partial {
        drop(slot);
        return write_partially(dialect, checked.partial(), &storage, &metrics).await;
    }
    let batch = match checked.all_or_nothing() {
        Ok(line_batch) => line_batch.batch,
        Err(error @ LineBatchError::SelfConflict(_)) => {
            // A conflict, counted like one with stored readings: each reading received.
            metrics.readings_conflicted(sent);
            return WriteError::from(error).into_response(dialect);
        }
        Err(error) => {
            metrics.readings_rejected();
            return WriteError::from(error).into_response(dialect);
        }
    };
    if batch.readings.is_empty() {
        metrics.readings_stored(0, batch.repeats);
        return no_content();
    }
    let received_count = batch.readings.len() + batch.repeats;
    drop(slot); // parsed: the commit wait is bounded by the write queue
    match storage.put_readings(batch).await {
        Ok(PutOutcome::Stored { stored, duplicates }) => {
            metrics.readings_stored(stored, duplicates);
            no_content()
        }
        Ok(PutOutcome::Conflict(conflicts)) => {
            metrics.readings_conflicted(received_count);
            conflict_error(
                "conflict with stored readings of the same sensor and time; readings are \
                 immutable, so nothing of this request was stored",
                conflicts,
            )
            .into_response(dialect)
        }
        Ok(PutOutcome::Expired(lines)) => {
            metrics.readings_rejected();
            WriteError::from(LineBatchError::Invalid(expired_lines(&lines))).into_response(dialect)
        }
        Err(error) => WriteError::from(error).into_response(dialect),
    }
}

/// The lines the store refused as older than what retention already deleted.
fn expired_lines(lines: &[usize]) -> Vec<LineError> {
    lines
        .iter()
        .map(|line| LineError {
            line: *line,
            message: format!("timestamp {}", super::readings::EXPIRED),
        })
        .collect()
}

/// The request's parameters and body, checked line by line.
fn parse(
    dialect: Dialect,
    query: &HashMap<String, String>,
    body: Result<Bytes, BodyError>,
    settings: &LineProtocolSettings,
    received: Timestamp,
) -> Result<(bool, LinesChecked), WriteError> {
    let precision_text = query.get("precision").map(String::as_str);
    let precision = match dialect {
        Dialect::V1 => Precision::v1(precision_text),
        Dialect::V2 => Precision::v2(precision_text),
    }
    .map_err(WriteError::invalid)?;
    let partial = accept_partial(query).map_err(WriteError::invalid)?;
    let body = body.map_err(WriteError::from)?;
    let checked = LinesChecked::parse(&body, &settings.schema, precision, received)?
        .within(&settings.retention.horizons(received.micros()));
    Ok((partial, checked))
}

/// `accept_partial=true`: 204 when every line was stored; otherwise 400 (as InfluxDB 3 answers
/// a partial write) naming every refused line, the other lines being stored.
async fn write_partially(
    dialect: Dialect,
    partial: LinePartial,
    storage: &Storage,
    metrics: &Metrics,
) -> Response {
    let LinePartial {
        batch,
        refused,
        conflicts: in_request,
        ..
    } = partial;
    let lines = batch.readings.len() + batch.repeats + refused.len() + in_request.len();
    metrics.readings_conflicted(in_request.len());
    let (with_stored, expired) = match put_partial(storage, metrics, batch).await {
        Ok(outcome) => (outcome.conflicts, expired_lines(&outcome.expired)),
        Err(error) => return WriteError::from(error).into_response(dialect),
    };
    let mut all: Vec<Value> =
        refused
            .iter()
            .chain(&expired)
            .map(|error| json!({"line": error.line, "message": error.message}))
            .chain(in_request.iter().chain(&with_stored).map(
                |conflict| json!({"line": conflict.index, "message": conflict_message(conflict)}),
            ))
            .collect();
    if all.is_empty() {
        return no_content();
    }
    all.sort_by_key(|entry| entry["line"].as_u64());
    WriteError {
        status: StatusCode::BAD_REQUEST,
        message: format!(
            "partial write: {} of {lines} reading line(s) refused, the others are stored",
            all.len()
        ),
        extra: vec![("refused", Value::Array(all))],
    }
    .into_response(dialect)
}

fn conflict_message(conflict: &Conflict) -> String {
    format!(
        "sensor {} at {} already holds {}; {} refused (readings are immutable)",
        conflict.sensor_id, conflict.time, conflict.stored_temperature, conflict.temperature
    )
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// An error, before it is spelled in one dialect.
#[derive(Debug)]
struct WriteError {
    status: StatusCode,
    message: String,
    /// Extra members of the body (`line`, `errors`, `conflicts`, `refused`).
    extra: Vec<(&'static str, Value)>,
}

impl WriteError {
    fn invalid(message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message,
            extra: Vec::new(),
        }
    }

    /// InfluxDB 2's error codes, by status.
    fn code(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "invalid",
            409 => "conflict",
            413 => "request too large",
            415 => "unsupported media type",
            422 => "unprocessable entity",
            503 => "unavailable",
            _ => "internal error",
        }
    }

    fn into_response(self, dialect: Dialect) -> Response {
        let mut body = match dialect {
            Dialect::V2 => json!({"code": self.code(), "message": self.message}),
            Dialect::V1 => json!({"error": self.message}),
        };
        if let Value::Object(map) = &mut body {
            for (key, value) in self.extra {
                map.insert(key.to_owned(), value);
            }
        }
        let mut response = super::json::reply(&body).into_response();
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if dialect == Dialect::V1
            && let Ok(value) = HeaderValue::from_str(&self.message.replace(['\r', '\n'], " "))
        {
            headers.insert("x-influxdb-error", value);
        }
        if self.status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static(body::ACCEPTED_ENCODINGS),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

fn conflict_error(message: &str, conflicts: Vec<Conflict>) -> WriteError {
    let first = conflicts.first().map(conflict_message).unwrap_or_default();
    let conflicts: Vec<Value> = conflicts
        .into_iter()
        .map(|conflict| {
            json!({
                "line": conflict.index,
                "sensorID": conflict.sensor_id,
                "time": conflict.time,
                "temperature": conflict.temperature,
                "storedTemperature": conflict.stored_temperature,
            })
        })
        .collect();
    WriteError {
        status: StatusCode::CONFLICT,
        message: format!("{} line(s) {message}: {first}", conflicts.len()),
        extra: vec![("conflicts", Value::Array(conflicts))],
    }
}

impl From<BodyError> for WriteError {
    fn from(error: BodyError) -> Self {
        Self {
            status: error.status(),
            message: error.message(),
            extra: Vec::new(),
        }
    }
}

impl From<LineBatchError> for WriteError {
    fn from(error: LineBatchError) -> Self {
        let (status, message, extra) = match error {
            LineBatchError::Empty => (
                StatusCode::BAD_REQUEST,
                "writing requires points".to_owned(),
                Vec::new(),
            ),
            LineBatchError::TooManyLines => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body has more than {MAX_LINES} lines; send at most {MAX_LINES} per request"
                ),
                vec![("limit", json!(MAX_LINES))],
            ),
            LineBatchError::Malformed(LineError { line, message }) => (
                StatusCode::BAD_REQUEST,
                format!("unable to parse line {line}: {message}; nothing was stored"),
                vec![("line", json!(line))],
            ),
            LineBatchError::Invalid(errors) => {
                let first = &errors[0];
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "{} line(s) are not valid readings, nothing was stored; line {}: {}",
                        errors.len(),
                        first.line,
                        first.message
                    ),
                    vec![("line", json!(first.line)), ("errors", json!(errors))],
                )
            }
            LineBatchError::SelfConflict(conflicts) => {
                return conflict_error(
                    "repeat an earlier line's sensor and time with another temperature; \
                     nothing was stored",
                    conflicts,
                );
            }
        };
        Self {
            status,
            message,
            extra,
        }
    }
}

impl From<StorageError> for WriteError {
    fn from(error: StorageError) -> Self {
        let status = match &error {
            StorageError::Unavailable(cause) | StorageError::Pending(cause) => {
                tracing::warn!(%cause, "storage unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            StorageError::Internal(cause) => {
                tracing::error!(%cause, "storage failure");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            // Writes are offered by every backend; kept exhaustive for the type's sake.
            StorageError::Unsupported(cause) => {
                tracing::error!(%cause, "storage operation not supported");
                StatusCode::NOT_IMPLEMENTED
            }
        };
        let message = match status {
            StatusCode::SERVICE_UNAVAILABLE => "storage is temporarily unavailable; retry later",
            StatusCode::NOT_IMPLEMENTED => "not supported by this storage backend",
            _ => "internal storage error",
        };
        Self {
            status,
            message: message.into(),
            extra: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> Value {
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn errors_are_spelled_as_each_influxdb_version_does() {
        let error = || {
            WriteError::from(LineBatchError::Malformed(LineError {
                line: 3,
                message: "missing fields".into(),
            }))
        };
        let v2 = error().into_response(Dialect::V2);
        assert_eq!(v2.status(), StatusCode::BAD_REQUEST);
        let v2 = body(v2).await;
        assert_eq!(v2["code"], "invalid");
        assert_eq!(v2["line"], 3);
        assert!(v2["message"].as_str().unwrap().contains("line 3"));
        let v1 = error().into_response(Dialect::V1);
        assert!(
            v1.headers()["x-influxdb-error"]
                .to_str()
                .unwrap()
                .contains("line 3")
        );
        let v1 = body(v1).await;
        assert!(v1["error"].as_str().unwrap().contains("missing fields"));
        assert!(v1.get("code").is_none());
    }

    #[test]
    fn unavailable_storage_is_503_with_retry_after() {
        let error = WriteError::from(StorageError::Unavailable("disk".into()));
        assert_eq!(error.code(), "unavailable");
        let response = error.into_response(Dialect::V2);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
