//! `telemetry-lambda`: `DELETE /picus/{key}` as an AWS Lambda function (cargo feature `lambda`).
//!
//! An ALB target group of type `lambda`, or an API Gateway HTTP API (payload format 2.0),
//! invokes the function with one request; `lambda_http` turns either event into an
//! `http::Request` and the answer back into that event's response shape. In between runs the
//! service's own code, not a copy of it:
//! - the access policy ([`crate::auth`]): `DELETE /picus/{key}` needs an `admin` token, taken
//!   from `API_TOKENS` / `API_TOKENS_FILE`, presented as `Bearer` or `Token`, compared in
//!   constant time; 401 with `WWW-Authenticate` or 403 exactly as the service answers them
//!   ([`crate::routes::auth::Refused`]). The load balancer sends DELETE straight here, past
//!   the service, so the function refuses to start without a token;
//! - the route's handler ([`crate::routes::picus::delete_item`]): 200 `{"message": "Item deleted
//!   successfully"}`, 404 problem for an unknown or malformed key, 503 + `Retry-After` when
//!   DynamoDB is unavailable;
//! - storage ([`crate::storage::Storage`] on the DynamoDB backend), opened once per cold start
//!   with [`DynamoStore::connect`]: the SDK client is built before the first event and reused
//!   by every later one, and opening makes no DynamoDB call (the role may only `DeleteItem`).
//!
//! Any other method or path is answered 405 with `Allow: DELETE` without looking at the token:
//! the function holds nothing else to protect. Configuration is the service's
//! ([`crate::config::Config`]); `STORAGE` must be `dynamodb`.
//!
//! Files: this one (the function: built once, then one call per event); `route.rs` (which
//! requests it serves); `reply.rs` (the service's replies as Lambda responses).

pub mod reply;
pub mod route;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use warp::Reply;

use crate::app::{access_settings, dynamodb_settings};
use crate::auth::{self, Access};
use crate::config::{Config, StorageKind};
use crate::metrics::{Metrics, route_template};
use crate::routes::auth::Refused;
use crate::routes::picus;
use crate::routes::problem::Problem;
use crate::storage::group_commit::unobserved;
use crate::storage::{Backend, DynamoStore, Storage, chain};
use route::Route;

/// The function's state, built once per cold start and shared by every invocation.
#[derive(Clone)]
pub struct Function {
    storage: Storage,
    access: Arc<Access>,
}

impl Function {
    /// Checks the configuration, builds the access policy and the DynamoDB client. The error
    /// is one line naming what to fix.
    pub async fn build(config: &Config) -> Result<Self, String> {
        if config.storage != StorageKind::Dynamodb {
            return Err(
                "STORAGE=dynamodb is required: the function deletes items from the \
                        service's DynamoDB table"
                    .into(),
            );
        }
        if config.tokens.is_empty() {
            return Err(
                "API_TOKENS (or API_TOKENS_FILE) must hold an admin token: the load \
                        balancer sends DELETE /picus/* straight to this function, which never \
                        runs open"
                    .into(),
            );
        }
        let metrics = Metrics::new();
        let access = Arc::new(Access::new(access_settings(config)?, metrics.clone()));
        // Boxed: the SDK's set-up future is large (as in the service's start-up).
        let store = Box::pin(DynamoStore::connect(
            &dynamodb_settings(config),
            unobserved(),
        ))
        .await
        .map_err(|error| format!("STORAGE=dynamodb: cannot open the store: {}", chain(&error)))?;
        Ok(Self {
            storage: Storage::new(Backend::Dynamodb(store), metrics),
            access,
        })
    }

    /// Answers one request (never fails: every outcome is an HTTP answer).
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let (stage, source_ip) = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => (
                context.stage.as_deref(),
                context
                    .http
                    .source_ip
                    .as_deref()
                    .and_then(|ip| ip.parse::<IpAddr>().ok()),
            ),
            _ => (None, None),
        };
        let path = route::without_stage(request.raw_http_path(), stage);
        let reply = match route::route(request.method(), path) {
            Route::NotServed => not_served(),
            Route::Delete(key) => match self.authorize(&request, path, source_ip) {
                Err(refused) => refused.response(),
                Ok(()) => picus::delete_item(key, self.storage.clone()).await,
            },
        };
        tracing::info!(
            method = %request.method(),
            route = route_template(path),
            status = reply.status().as_u16(),
            "request"
        );
        reply::from_service(reply).await
    }

    /// The service's access check for this request.
    fn authorize(
        &self,
        request: &Request,
        path: &str,
        peer: Option<IpAddr>,
    ) -> Result<(), Refused> {
        let headers = request.headers();
        let check = auth::Request {
            method: request.method(),
            route: route_template(path),
            authorization: headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
            p_query: None,
            peer,
            forwarded_for: headers.get("x-forwarded-for").map(HeaderValue::as_bytes),
        };
        self.access
            .check(&check, Instant::now())
            .map(|_| ())
            .map_err(Refused)
    }
}

/// 405 for everything but `DELETE /picus/{key}`.
fn not_served() -> warp::reply::Response {
    let mut response = Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this function serves only DELETE /picus/{key}",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("DELETE"));
    response
}
