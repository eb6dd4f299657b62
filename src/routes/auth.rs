//! The access-control filter in front of every route (the policy itself is [`crate::auth`]),
//! and the answers it gives: 401 with `WWW-Authenticate: Bearer realm="telemetry"`, 403, and
//! 429 with `Retry-After`, each with a problem body that never repeats the token.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use warp::path::FullPath;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::problem::Problem;
use crate::auth::rate::Budget;
use crate::auth::{Access, Failure, Refusal, Request};
use crate::metrics::route_template;
use crate::server::PeerAddr;

/// The challenge of a 401 (RFC 6750 section 3).
pub const CHALLENGE: &str = "Bearer realm=\"telemetry\"";

/// A refused request, turned into its answer by [`super::problem::recover`].
#[derive(Debug)]
pub struct Refused(pub Refusal);

impl warp::reject::Reject for Refused {}

/// Passes the requests the policy allows and rejects the others with [`Refused`].
pub fn guard(access: Arc<Access>) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(
            warp::query::<HashMap<String, String>>()
                .or(warp::any().map(HashMap::new))
                .unify(),
        )
        .and(warp::ext::optional::<PeerAddr>())
        .and_then(
            move |method: Method,
                  path: FullPath,
                  headers: HeaderMap,
                  query: HashMap<String, String>,
                  peer: Option<PeerAddr>| {
                let access = access.clone();
                async move {
                    let request = Request {
                        method: &method,
                        route: route_template(path.as_str()),
                        authorization: headers
                            .get(header::AUTHORIZATION)
                            .map(HeaderValue::as_bytes),
                        p_query: query.get("p").map(String::as_str),
                        peer: peer.map(|p| p.0.ip()),
                        forwarded_for: headers.get("x-forwarded-for").map(HeaderValue::as_bytes),
                    };
                    match access.check(&request, Instant::now()) {
                        Ok(_) => Ok(()),
                        Err(refusal) => Err(warp::reject::custom(Refused(refusal))),
                    }
                }
            },
        )
        .untuple_one()
}

/// Whole seconds to wait, rounded up (at least 1).
fn retry_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

impl Refused {
    pub fn response(&self) -> Response {
        match self.0 {
            Refusal::Unauthenticated(failure) => {
                let detail = match failure {
                    Failure::Missing => {
                        "this route needs a token: send Authorization: Bearer <token>"
                    }
                    Failure::Malformed => {
                        "the Authorization header is not understood: send Bearer <token> or \
                         Token <token>"
                    }
                    Failure::UnknownToken => "the token is not valid",
                };
                let challenge = match failure {
                    Failure::Missing => CHALLENGE.to_owned(),
                    _ => format!("{CHALLENGE}, error=\"invalid_token\""),
                };
                let mut response = Problem::new(StatusCode::UNAUTHORIZED, detail).into_response();
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            Refusal::Forbidden { needed, held } => Problem::new(
                StatusCode::FORBIDDEN,
                format!(
                    "this token's scope is {}; this route needs a {} token",
                    held.as_str(),
                    needed.as_str()
                ),
            )
            .with("scope", needed.as_str())
            .into_response(),
            Refusal::TooManyFailures(wait) => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed authentications from this address; retry later",
            )
            .retry_after(retry_seconds(wait))
            .into_response(),
            Refusal::RateLimited(budget, wait) => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "the {} request budget of this client is used up; retry later",
                    match budget {
                        Budget::Read => "read",
                        Budget::Write => "write",
                    }
                ),
            )
            .retry_after(retry_seconds(wait))
            .into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scope;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_seconds(Duration::ZERO), 1);
        assert_eq!(retry_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_seconds(Duration::from_secs(1)), 1);
        assert_eq!(retry_seconds(Duration::from_millis(40_001)), 41);
    }

    #[test]
    fn a_401_challenges_and_a_403_names_the_scope() {
        let response = Refused(Refusal::Unauthenticated(Failure::Missing)).response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], CHALLENGE);
        let response = Refused(Refusal::Unauthenticated(Failure::UnknownToken)).response();
        assert!(
            response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
        let response = Refused(Refusal::Forbidden {
            needed: Scope::Admin,
            held: Scope::Read,
        })
        .response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let response = Refused(Refusal::RateLimited(
            Budget::Write,
            Duration::from_millis(1500),
        ))
        .response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }
}
