//! RFC 9457 problem details: every error this service answers is one of these.
//!
//! `type` is `about:blank`, so `title` is the status's reason phrase; `detail` says what went
//! wrong in words a client developer can act on, and extension members (`errors`,
//! `conflicts`, ...) carry the machine-readable specifics.

use std::convert::Infallible;

use serde_json::{Map, Value, json};
use warp::http::{HeaderValue, StatusCode, header};
use warp::reject::Rejection;
use warp::reply::{Reply, Response};

use super::body::BodyError;
use crate::storage::StorageError;

/// Seconds a client should wait before retrying when storage is unavailable.
pub const RETRY_AFTER_SECONDS: u64 = 1;

#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    detail: String,
    extensions: Map<String, Value>,
    retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            extensions: Map::new(),
            retry_after: None,
        }
    }

    /// Adds an extension member (RFC 9457 section 3.2).
    pub fn with(mut self, key: &str, value: impl serde::Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.extensions.insert(key.to_owned(), value);
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Value::Object(map) = &mut body {
            map.extend(self.extensions.clone());
        }
        body
    }
}

impl Reply for Problem {
    fn into_response(self) -> Response {
        let mut response = super::json::reply(&self.body()).into_response();
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StorageError> for Problem {
    fn from(error: StorageError) -> Self {
        let cause = crate::storage::chain(&error);
        match error {
            StorageError::Unavailable(_) => {
                tracing::warn!(%cause, "storage unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage is temporarily unavailable; retry later",
                )
                .retry_after(RETRY_AFTER_SECONDS)
            }
            StorageError::Unsupported(what) => {
                Problem::new(StatusCode::NOT_IMPLEMENTED, what.to_string())
            }
            StorageError::Pending(what) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, what.to_string())
                    .retry_after(RETRY_AFTER_SECONDS)
            }
            StorageError::Internal(cause) => {
                // Logged in full, never sent: internals are not the client's business.
                tracing::error!(%cause, "storage failure");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal storage error")
            }
        }
    }
}

/// Turns every rejection left after routing into a problem; nothing escapes as a bare 404/500.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(refused) = rejection.find::<super::auth::Refused>() {
        return Ok(refused.response());
    }
    let problem = if rejection.is_not_found() {
        Problem::new(StatusCode::NOT_FOUND, "no such resource")
    } else if let Some(error) = rejection.find::<BodyError>() {
        return Ok(error.problem_response());
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "this method is not allowed on this resource",
        )
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        )
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        Problem::new(StatusCode::BAD_REQUEST, "the query string is malformed")
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported content type",
        )
    } else if rejection.find::<warp::reject::InvalidHeader>().is_some()
        || rejection.find::<warp::reject::MissingHeader>().is_some()
    {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "a required header is missing or invalid",
        )
    } else {
        tracing::error!(?rejection, "unhandled rejection");
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    };
    Ok(problem.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_rfc9457_json_with_extensions() {
        let response = Problem::new(StatusCode::CONFLICT, "it conflicts")
            .with("conflicts", [1, 2])
            .into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    #[test]
    fn unavailable_storage_is_503_with_retry_after_and_no_internals() {
        let problem = Problem::from(StorageError::Unavailable("secret host down".into()));
        assert_eq!(problem.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!problem.body().to_string().contains("secret"));
        let response = problem.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn pending_work_is_503_with_retry_after_and_says_what_it_waits_for() {
        let problem = Problem::from(StorageError::Pending("rollups being built".into()));
        assert_eq!(problem.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(problem.body()["detail"], "rollups being built");
        let response = problem.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn internal_storage_errors_do_not_leak() {
        let problem = Problem::from(StorageError::Internal("corrupt page 7".into()));
        assert_eq!(problem.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!problem.body().to_string().contains("page 7"));
    }
}
