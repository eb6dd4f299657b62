//! The service hyper calls for each request: it wraps the body in its limits, tells the
//! connection a request is in flight, hands the request to the warp routes with the peer's
//! address, and finishes every answer with the security headers (and a `405` with `Allow`).
//!
//! `HEAD` is served as `GET` (RFC 9110 section 9.3.2): the routes see a `GET`, and hyper, which
//! knows the request was `HEAD`, sends the answer's headers without its body. So every `GET`
//! route answers `HEAD` with the same status and headers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body::Body as _;
use hyper::body::Incoming;
use tower_service::Service;
use warp::http::{HeaderValue, Method, Request, StatusCode, header};
use warp::reply::{Reply, Response};

use super::PeerAddr;
use super::body::{BodyBudget, Flags, GuardedBody, Hold};
use super::connection::Activity;
use crate::metrics::Metrics;
use crate::routes::allow::allowed_methods;
use crate::routes::problem::{Problem, RETRY_AFTER_SECONDS};

/// One connection's request service.
#[derive(Clone)]
pub struct Guarded<S> {
    pub inner: S,
    pub peer: SocketAddr,
    pub activity: Arc<Activity>,
    pub budget: Arc<BodyBudget>,
    pub body_timeout: Duration,
    pub metrics: Metrics,
}

/// Marks the request answered when the service's future ends, however it ends.
struct Answered(Arc<Activity>);

impl Drop for Answered {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for Guarded<S>
where
    S: Service<Request<GuardedBody<Incoming>>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.activity
            .request_started(!request.body().is_end_stream());
        let answered = Answered(self.activity.clone());
        let hold = Arc::new(Hold::new(self.budget.clone()));
        let flags = Arc::new(Flags::default());
        let deadline = Box::pin(tokio::time::sleep(self.body_timeout));
        let (activity, body_flags, body_hold) =
            (self.activity.clone(), flags.clone(), hold.clone());
        let mut request =
            request.map(|body| GuardedBody::new(body, deadline, body_hold, body_flags, activity));
        request.extensions_mut().insert(PeerAddr(self.peer));
        if request.method() == Method::HEAD {
            *request.method_mut() = Method::GET;
        }
        // Cheap (shared bytes); the path is looked up only for a 405.
        let uri = request.uri().clone();
        let mut inner = self.inner.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let response = inner.call(request).await?;
            let allow = || allowed_methods(uri.path());
            let response = finish(response, &flags, &metrics, allow);
            // The body's bytes are given back once the handler is done with them.
            drop(hold);
            drop(answered);
            Ok(response)
        })
    }
}

/// The answer for a body cut off by a limit, then the headers every answer carries, and
/// `Allow` (the resource's methods) on a `405`.
fn finish(
    response: Response,
    flags: &Flags,
    metrics: &Metrics,
    allow: impl FnOnce() -> Option<&'static str>,
) -> Response {
    let mut response = if flags.timed_out.load(Ordering::Relaxed) {
        metrics.connection_closed("body_timeout");
        closing(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "the request body took too long to arrive",
        ))
    } else if flags.over_budget.load(Ordering::Relaxed) {
        metrics.connection_closed("body_memory");
        closing(
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is receiving too many request bodies at once; retry later",
            )
            .retry_after(RETRY_AFTER_SECONDS),
        )
    } else {
        response
    };
    let status = response.status();
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.remove(header::SERVER);
    if status == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = allow()
    {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

/// A problem answer after which the connection closes (its body was not read to the end).
fn closing(problem: Problem) -> Response {
    let mut response = problem.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_gets_the_security_headers_and_keeps_its_own_cache_control() {
        let metrics = Metrics::new();
        let plain = finish("Ok".into_response(), &Flags::default(), &metrics, || None);
        assert_eq!(plain.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(plain.headers()[header::CACHE_CONTROL], "no-store");
        let cached = warp::reply::with_header("doc", header::CACHE_CONTROL, "max-age=60");
        let cached = finish(cached.into_response(), &Flags::default(), &metrics, || None);
        assert_eq!(cached.headers()[header::CACHE_CONTROL], "max-age=60");
    }

    #[test]
    fn a_cut_off_body_is_answered_408_or_503_and_closes() {
        let metrics = Metrics::new();
        let flags = Flags::default();
        flags.timed_out.store(true, Ordering::Relaxed);
        let response = finish("Ok".into_response(), &flags, &metrics, || None);
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        let flags = Flags::default();
        flags.over_budget.store(true, Ordering::Relaxed);
        let response = finish("Ok".into_response(), &flags, &metrics, || None);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn a_405_names_the_allowed_methods() {
        let metrics = Metrics::new();
        let refused = warp::reply::with_status("no", StatusCode::METHOD_NOT_ALLOWED);
        let response = finish(refused.into_response(), &Flags::default(), &metrics, || {
            Some("PUT")
        });
        assert_eq!(response.headers()[header::ALLOW], "PUT");
        let fine = finish("Ok".into_response(), &Flags::default(), &metrics, || {
            Some("PUT")
        });
        assert!(!fine.headers().contains_key(header::ALLOW));
    }
}
