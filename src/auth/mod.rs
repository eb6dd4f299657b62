//! Access control: who may call which route, and how often.
//!
//! | route | needs |
//! |---|---|
//! | `GET /api`, `GET /api/ready`, `GET /openapi.json` | nothing (load-balancer health checks, the API description) |
//! | `GET /`, `GET /dashboard/app.js`, `GET /dashboard/app.css` | nothing (the dashboard page; its data needs a read token) |
//! | `GET /metrics` | nothing, or `METRICS_TOKEN` (or an admin token) when that is set |
//! | `PUT /api/temperature`, `POST /api/v2/write`, `POST /write` | a `write` token |
//! | every other `GET`/`HEAD` (readings, stats, `/picus/get`, `/picus/list`, ...) | a `read` token |
//! | everything else (`POST /picus/put`, `DELETE /picus/{key}`, ...) | an `admin` token |
//!
//! `admin` tokens may call every route. Paths that match no route need a token like any other
//! (a `GET` a read token), so an unauthenticated client learns nothing about which exist.
//! With no token configured the service is open (local use): every route is allowed.
//!
//! Submodules: [`tokens`] (parsing, constant-time verification), [`credentials`] (where a
//! request carries its token), [`client`] (the address limits are kept for), [`failures`]
//! (slowing down guessing) and [`rate`] (request budgets).

pub mod client;
pub mod credentials;
pub mod failures;
pub mod rate;
pub mod tokens;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use warp::http::Method;

use crate::metrics::Metrics;
use credentials::{Forms, Presented};
use failures::FailureLimiter;
use rate::{Budget, Rate, RateKey, RateLimits};
pub use tokens::{Grant, Scope, TokenDigest, TokenSet};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Open,
    /// `/metrics`: open unless `METRICS_TOKEN` is set.
    Metrics,
    /// A token of this scope (or admin); requests spend this budget; credentials come in
    /// these forms.
    Token(Scope, Budget, Forms),
}

/// The policy table of the module documentation. `route` is the route template
/// ([`crate::metrics::route_template`]).
pub fn requirement(method: &Method, route: &str) -> Requirement {
    let reading = *method == Method::GET || *method == Method::HEAD;
    match route {
        "/api" | "/api/ready" | "/openapi.json" => Requirement::Open,
        // The dashboard's page, script and styles hold no data: the page asks for a read
        // token itself when the data routes answer 401.
        "/" | "/dashboard/app.js" | "/dashboard/app.css" if reading => Requirement::Open,
        "/metrics" => Requirement::Metrics,
        "/write" => Requirement::Token(Scope::Write, Budget::Write, Forms::InfluxV1),
        "/api/v2/write" => Requirement::Token(Scope::Write, Budget::Write, Forms::Standard),
        "/api/temperature" if !reading => {
            Requirement::Token(Scope::Write, Budget::Write, Forms::Standard)
        }
        _ if reading => Requirement::Token(Scope::Read, Budget::Read, Forms::Standard),
        _ => Requirement::Token(Scope::Admin, Budget::Write, Forms::Standard),
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no usable credentials.
    Unauthenticated(Failure),
    /// 403: a valid token without the scope the route needs.
    Forbidden { needed: Scope, held: Scope },
    /// 429: this address failed authentication too often this minute.
    TooManyFailures(Duration),
    /// 429: the token's (or, in open mode, the address's) budget is used up.
    RateLimited(Budget, Duration),
}

/// Why authentication failed (the `reason` label of `telemetry_auth_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Missing,
    Malformed,
    UnknownToken,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::UnknownToken => "unknown_token",
        }
    }
}

/// Everything about a request the policy looks at.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a Method,
    pub route: &'a str,
    pub authorization: Option<&'a [u8]>,
    /// The `p` query parameter, decoded.
    pub p_query: Option<&'a str>,
    pub peer: Option<IpAddr>,
    pub forwarded_for: Option<&'a [u8]>,
}

/// Access settings, from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub tokens: TokenSet,
    pub metrics_token: Option<TokenDigest>,
    pub failures_per_minute: u32,
    pub read: Option<Rate>,
    pub write: Option<Rate>,
    pub trust_forwarded_for: bool,
}

/// The access policy, shared by every request.
pub struct Access {
    tokens: TokenSet,
    metrics_token: Option<TokenDigest>,
    failures: FailureLimiter,
    rates: RateLimits,
    trust_forwarded_for: bool,
    metrics: Metrics,
}

impl Access {
    pub fn new(settings: Settings, metrics: Metrics) -> Self {
        Self {
            tokens: settings.tokens,
            metrics_token: settings.metrics_token,
            failures: FailureLimiter::new(settings.failures_per_minute),
            rates: RateLimits::new(settings.read, settings.write),
            trust_forwarded_for: settings.trust_forwarded_for,
            metrics,
        }
    }

    /// `"on"` when tokens are configured, `"off"` in open mode (shown by `GET /api`).
    pub fn mode(&self) -> &'static str {
        if self.tokens.is_empty() { "off" } else { "on" }
    }

    /// Decides one request: `Ok` with the token's grant (`None` when the route or the service
    /// is open), or why it is refused. Refusals are counted in the metrics.
    pub fn check(&self, request: &Request<'_>, now: Instant) -> Result<Option<Grant>, Refusal> {
        let result = self.decide(request, now);
        match &result {
            Err(Refusal::Unauthenticated(failure)) => self.metrics.auth_failed(failure.as_str()),
            Err(Refusal::Forbidden { .. }) => self.metrics.auth_failed("forbidden"),
            Err(Refusal::TooManyFailures(_)) => self.metrics.auth_failed("throttled"),
            Err(Refusal::RateLimited(budget, _)) => self.metrics.rate_limited(match budget {
                Budget::Read => "read",
                Budget::Write => "write",
            }),
            Ok(_) => {}
        }
        result
    }

    fn decide(&self, request: &Request<'_>, now: Instant) -> Result<Option<Grant>, Refusal> {
        let client = || {
            client::client_key(
                request.peer,
                request.forwarded_for,
                self.trust_forwarded_for,
            )
        };
        match requirement(request.method, request.route) {
            Requirement::Open => Ok(None),
            Requirement::Metrics => match self.metrics_token {
                None => Ok(None),
                Some(expected) => {
                    let presented =
                        credentials::presented(request.authorization, None, Forms::Standard);
                    let token = self.authenticate(presented, client(), now)?;
                    let matches: bool = tokens::digest(&token).ct_eq(&expected).into();
                    let admin = self
                        .tokens
                        .verify(&token)
                        .is_some_and(|grant| grant.scope == Scope::Admin);
                    if matches || admin {
                        Ok(None)
                    } else {
                        self.failures.record(client(), now);
                        Err(Refusal::Unauthenticated(Failure::UnknownToken))
                    }
                }
            },
            Requirement::Token(needed, budget, forms) => {
                if self.tokens.is_empty() {
                    self.rates
                        .check(budget, RateKey::Client(client()))
                        .map_err(|wait| Refusal::RateLimited(budget, wait))?;
                    return Ok(None);
                }
                let presented =
                    credentials::presented(request.authorization, request.p_query, forms);
                let token = self.authenticate(presented, client(), now)?;
                let Some(grant) = self.tokens.verify(&token) else {
                    self.failures.record(client(), now);
                    return Err(Refusal::Unauthenticated(Failure::UnknownToken));
                };
                if !grant.scope.allows(needed) {
                    return Err(Refusal::Forbidden {
                        needed,
                        held: grant.scope,
                    });
                }
                self.rates
                    .check(budget, RateKey::Token(grant.id))
                    .map_err(|wait| Refusal::RateLimited(budget, wait))?;
                Ok(Some(grant))
            }
        }
    }

    /// The presented token, unless the address is blocked or nothing usable was presented.
    fn authenticate(
        &self,
        presented: Presented,
        client: IpAddr,
        now: Instant,
    ) -> Result<String, Refusal> {
        if let Some(wait) = self.failures.blocked(client, now) {
            return Err(Refusal::TooManyFailures(wait));
        }
        match presented {
            Presented::Token(token) => Ok(token),
            Presented::Missing => Err(Refusal::Unauthenticated(Failure::Missing)),
            Presented::Malformed => {
                self.failures.record(client, now);
                Err(Refusal::Unauthenticated(Failure::Malformed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: &str = "read-token-0123456789";
    const WRITE: &str = "write-token-0123456789";
    const ADMIN: &str = "admin-token-0123456789";

    fn access(failures_per_minute: u32, read: Option<Rate>) -> Access {
        let tokens = TokenSet::parse(&format!("read:{READ},write:{WRITE},admin:{ADMIN}")).unwrap();
        Access::new(
            Settings {
                tokens,
                failures_per_minute,
                read,
                ..Settings::default()
            },
            Metrics::new(),
        )
    }

    fn request<'a>(method: &'a Method, route: &'a str, auth: Option<&'a str>) -> Request<'a> {
        Request {
            method,
            route,
            authorization: auth.map(str::as_bytes),
            p_query: None,
            peer: Some("192.0.2.1".parse().unwrap()),
            forwarded_for: None,
        }
    }

    #[test]
    fn the_policy_table() {
        let get = Method::GET;
        let put = Method::PUT;
        let post = Method::POST;
        let delete = Method::DELETE;
        let token = |scope| Requirement::Token(scope, Budget::Read, Forms::Standard);
        assert_eq!(requirement(&get, "/api"), Requirement::Open);
        assert_eq!(requirement(&get, "/api/ready"), Requirement::Open);
        assert_eq!(requirement(&get, "/metrics"), Requirement::Metrics);
        assert_eq!(requirement(&get, "/api/stats"), token(Scope::Read));
        assert_eq!(requirement(&get, "/picus/list"), token(Scope::Read));
        assert_eq!(requirement(&get, "other"), token(Scope::Read));
        assert_eq!(
            requirement(&put, "/api/temperature"),
            Requirement::Token(Scope::Write, Budget::Write, Forms::Standard)
        );
        assert_eq!(
            requirement(&post, "/write"),
            Requirement::Token(Scope::Write, Budget::Write, Forms::InfluxV1)
        );
        for (method, route) in [
            (&post, "/picus/put"),
            (&delete, "/picus/{key}"),
            (&post, "other"),
        ] {
            assert_eq!(
                requirement(method, route),
                Requirement::Token(Scope::Admin, Budget::Write, Forms::Standard)
            );
        }
    }

    #[test]
    fn scopes_are_enforced() {
        let access = access(0, None);
        let now = Instant::now();
        let get = Method::GET;
        let put = Method::PUT;
        let bearer = |t: &str| format!("Bearer {t}");
        let (r, w, a) = (bearer(READ), bearer(WRITE), bearer(ADMIN));
        assert!(
            access
                .check(&request(&get, "/api/stats", Some(&r)), now)
                .is_ok()
        );
        assert!(
            access
                .check(&request(&get, "/api/stats", Some(&a)), now)
                .is_ok()
        );
        assert_eq!(
            access.check(&request(&get, "/api/stats", Some(&w)), now),
            Err(Refusal::Forbidden {
                needed: Scope::Read,
                held: Scope::Write
            })
        );
        assert!(
            access
                .check(&request(&put, "/api/temperature", Some(&w)), now)
                .is_ok()
        );
        assert_eq!(
            access.check(&request(&put, "/api/temperature", None), now),
            Err(Refusal::Unauthenticated(Failure::Missing))
        );
        assert_eq!(
            access.check(
                &request(&get, "/api/stats", Some("Bearer nope-nope-nope-nope")),
                now
            ),
            Err(Refusal::Unauthenticated(Failure::UnknownToken))
        );
        assert_eq!(access.check(&request(&get, "/api", None), now), Ok(None));
        assert_eq!(
            access.check(&request(&get, "/metrics", None), now),
            Ok(None)
        );
    }

    #[test]
    fn repeated_failures_block_the_address_even_for_a_right_token() {
        let access = access(2, None);
        let now = Instant::now();
        let get = Method::GET;
        for _ in 0..2 {
            assert!(matches!(
                access.check(
                    &request(&get, "/api/stats", Some("Bearer wrong-wrong-wrong")),
                    now
                ),
                Err(Refusal::Unauthenticated(Failure::UnknownToken))
            ));
        }
        let right = format!("Bearer {READ}");
        assert!(matches!(
            access.check(&request(&get, "/api/stats", Some(&right)), now),
            Err(Refusal::TooManyFailures(_))
        ));
        let mut elsewhere = request(&get, "/api/stats", Some(&right));
        elsewhere.peer = Some("192.0.2.99".parse().unwrap());
        assert!(access.check(&elsewhere, now).is_ok());
    }

    #[test]
    fn budgets_are_per_token() {
        let access = access(
            0,
            Some(Rate {
                per_second: 1,
                burst: 2,
            }),
        );
        let now = Instant::now();
        let get = Method::GET;
        let read = format!("Bearer {READ}");
        let admin = format!("Bearer {ADMIN}");
        for _ in 0..2 {
            assert!(
                access
                    .check(&request(&get, "/api/stats", Some(&read)), now)
                    .is_ok()
            );
        }
        assert!(matches!(
            access.check(&request(&get, "/api/stats", Some(&read)), now),
            Err(Refusal::RateLimited(Budget::Read, _))
        ));
        assert!(
            access
                .check(&request(&get, "/api/stats", Some(&admin)), now)
                .is_ok()
        );
    }

    #[test]
    fn metrics_token_guards_metrics() {
        let access = Access::new(
            Settings {
                metrics_token: Some(tokens::digest("scrape-token-0123456789")),
                ..Settings::default()
            },
            Metrics::new(),
        );
        let now = Instant::now();
        let get = Method::GET;
        assert_eq!(
            access.check(&request(&get, "/metrics", None), now),
            Err(Refusal::Unauthenticated(Failure::Missing))
        );
        assert_eq!(
            access.check(
                &request(&get, "/metrics", Some("Bearer scrape-token-0123456789")),
                now
            ),
            Ok(None)
        );
        // Open mode otherwise: other routes stay open.
        assert_eq!(
            access.check(&request(&get, "/api/stats", None), now),
            Ok(None)
        );
        assert_eq!(access.mode(), "off");
    }
}
