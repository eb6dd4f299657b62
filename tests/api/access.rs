//! Access control, black box: every route with no token, a wrong one, and a read, write and
//! admin token; the accepted forms of credentials; 401/403/429 answers; open mode.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use telemetry::auth::TokenSet;
use telemetry::config::{Config, Secret};

use crate::helpers::{TestApp, TestStore, assert_problem, reading, spawn_app, spawn_app_with};

pub const READ: &str = "read-token-5f3c9a1e7b2d4c6f";
pub const WRITE: &str = "write-token-8e1d2c3b4a596877";
pub const ADMIN: &str = "admin-token-c0de4d3a2b1f0e9d";

/// sha256(ADMIN): the admin token is configured in its hashed form.
pub fn admin_digest() -> String {
    use std::fmt::Write;
    telemetry::auth::tokens::digest(ADMIN)
        .iter()
        .fold(String::new(), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

pub fn with_tokens(store: &TestStore) -> Config {
    let mut config = store.config();
    config.tokens = TokenSet::parse(&format!(
        "read:{READ},write:{WRITE},admin:sha256:{}",
        admin_digest()
    ))
    .expect("valid tokens");
    config
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<String>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request sent")
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

/// Creates a /picus item with the admin token and returns its id.
async fn new_item(app: &TestApp) -> String {
    let response = send(
        app,
        Method::POST,
        "/picus/put",
        bearer(ADMIN),
        Some(json!({"name": "greenhouse"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_route_answers_each_kind_of_caller_as_documented() {
    let store = TestStore::new();
    let app = spawn_app_with(with_tokens(&store)).await;
    let item = new_item(&app).await;
    const OK: u16 = 200;
    const DENY: u16 = 401;
    const FORBID: u16 = 403;
    // (method, path, body, [none, wrong, read, write, admin])
    let put = json!(reading("s1", "2021-10-04 09:00:00", 1.0));
    let routes: Vec<(Method, String, Option<Value>, [u16; 5])> = vec![
        (Method::GET, "/api".into(), None, [OK; 5]),
        (Method::GET, "/api/ready".into(), None, [OK; 5]),
        (Method::GET, "/openapi.json".into(), None, [OK; 5]),
        (Method::GET, "/metrics".into(), None, [OK; 5]),
        (
            Method::PUT,
            "/api/temperature".into(),
            Some(put),
            [DENY, DENY, FORBID, OK, OK],
        ),
        (
            Method::GET,
            "/api/stats".into(),
            None,
            [DENY, DENY, OK, FORBID, OK],
        ),
        (
            Method::GET,
            "/api/readings?sensorID=s1".into(),
            None,
            [DENY, DENY, OK, FORBID, OK],
        ),
        (
            Method::GET,
            format!("/picus/get/{item}"),
            None,
            [DENY, DENY, OK, FORBID, OK],
        ),
        (
            Method::GET,
            "/picus/list".into(),
            None,
            [DENY, DENY, OK, FORBID, OK],
        ),
        (
            Method::POST,
            "/picus/put".into(),
            Some(json!({"a": 1})),
            [DENY, DENY, FORBID, FORBID, 201],
        ),
        (
            Method::GET,
            "/no/such/route".into(),
            None,
            [DENY, DENY, 404, FORBID, 404],
        ),
    ];
    let callers = [
        None,
        bearer("wrong-token-0000000000000000"),
        bearer(READ),
        bearer(WRITE),
        bearer(ADMIN),
    ];
    for (method, path, body, expected) in &routes {
        for (caller, want) in callers.iter().zip(expected) {
            let response = send(&app, method.clone(), path, caller.clone(), body.clone()).await;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            assert_eq!(status, *want, "{method} {path} as {caller:?}: {text}");
            for token in [READ, WRITE, ADMIN] {
                assert!(!text.contains(token), "{method} {path} echoed a token");
            }
        }
    }
    // DELETE: an item of its own for every caller, so each answer is about access only.
    for (caller, want) in callers.iter().zip([DENY, DENY, FORBID, FORBID, OK]) {
        let item = new_item(&app).await;
        let response = send(
            &app,
            Method::DELETE,
            &format!("/picus/{item}"),
            caller.clone(),
            None,
        )
        .await;
        assert_eq!(response.status().as_u16(), want, "DELETE as {caller:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_401_challenges_with_a_problem_and_a_403_names_the_scope() {
    let store = TestStore::new();
    let app = spawn_app_with(with_tokens(&store)).await;
    let response = send(&app, Method::GET, "/api/stats", None, None).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"telemetry\""
    );
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    let response = send(
        &app,
        Method::GET,
        "/api/stats",
        Some("Basic abc".into()),
        None,
    )
    .await;
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer realm=\"telemetry\"")
    );
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    let response = send(&app, Method::GET, "/api/stats", bearer(WRITE), None).await;
    let body = assert_problem(response, StatusCode::FORBIDDEN).await;
    assert_eq!(body["scope"], "read");
    app.stop().await;
}

#[tokio::test]
async fn token_and_bearer_forms_and_the_hashed_entry_work() {
    let store = TestStore::new();
    let app = spawn_app_with(with_tokens(&store)).await;
    for authorization in [
        format!("Bearer {READ}"),
        format!("Token {READ}"),
        format!("token {ADMIN}"),
        format!("bearer {ADMIN}"),
    ] {
        let response = send(
            &app,
            Method::GET,
            "/api/stats",
            Some(authorization.clone()),
            None,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{authorization}");
    }
    // The digest of the hashed entry is not itself a token.
    let response = send(
        &app,
        Method::GET,
        "/api/stats",
        bearer(&admin_digest()),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = app.get("/api").await.json().await.unwrap();
    assert_eq!(body["auth"], "on");
    app.stop().await;
}

#[tokio::test]
async fn open_mode_says_so_and_lets_everyone_in() {
    let (app, _store) = spawn_app().await;
    let body: Value = app.get("/api").await.json().await.unwrap();
    assert_eq!(body["auth"], "off");
    assert_eq!(app.get("/api/stats").await.status(), StatusCode::OK);
    app.put_ok(&reading("open", "2021-10-04 09:00:00", 1.0))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn metrics_need_the_metrics_token_when_one_is_set() {
    let store = TestStore::new();
    let mut config = with_tokens(&store);
    config.metrics_token = Some(Secret::new("scrape-token-0123456789abcdef"));
    let app = spawn_app_with(config).await;
    assert_eq!(app.get("/metrics").await.status(), StatusCode::UNAUTHORIZED);
    let scrape = send(
        &app,
        Method::GET,
        "/metrics",
        bearer("scrape-token-0123456789abcdef"),
        None,
    )
    .await;
    assert_eq!(scrape.status(), StatusCode::OK);
    let read = send(&app, Method::GET, "/metrics", bearer(READ), None).await;
    assert_eq!(read.status(), StatusCode::UNAUTHORIZED);
    let admin = send(&app, Method::GET, "/metrics", bearer(ADMIN), None).await;
    assert_eq!(admin.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn failures_are_counted_by_reason_and_repeated_ones_get_429() {
    let store = TestStore::new();
    let mut config = with_tokens(&store);
    config.auth_failures_per_minute = 3;
    let app = spawn_app_with(config).await;
    assert_eq!(
        send(&app, Method::GET, "/api/stats", None, None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    for _ in 0..3 {
        let response = send(
            &app,
            Method::GET,
            "/api/stats",
            bearer("guess-guess-guess-guess"),
            None,
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Blocked now, even with the right token, so a right guess is not told apart.
    let response = send(&app, Method::GET, "/api/stats", bearer(READ), None).await;
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    // Health routes stay open.
    assert_eq!(app.get("/api").await.status(), StatusCode::OK);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for line in [
        "telemetry_auth_failures_total{reason=\"missing\"} 1",
        "telemetry_auth_failures_total{reason=\"unknown_token\"} 3",
        "telemetry_auth_failures_total{reason=\"throttled\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(!metrics.contains("guess-guess"));
    app.stop().await;
}

#[tokio::test]
async fn a_token_past_its_budget_gets_429_with_retry_after_and_others_do_not() {
    let store = TestStore::new();
    let mut config = with_tokens(&store);
    config.rate_limit_reads_per_second = Some(1);
    config.rate_limit_read_burst = Some(3);
    let app = spawn_app_with(config).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = send(&app, Method::GET, "/api/stats", bearer(READ), None).await;
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(response.headers()["retry-after"], "1");
            assert_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
        }
    }
    // 3 at once, then at most one more refilled during the loop.
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 2,
        "{statuses:?}"
    );
    let admin = send(&app, Method::GET, "/api/stats", bearer(ADMIN), None).await;
    assert_eq!(
        admin.status(),
        StatusCode::OK,
        "another token has its own budget"
    );
    let put = app
        .client
        .put(app.url("/api/temperature"))
        .header("authorization", format!("Bearer {WRITE}"))
        .json(&reading("r", "2021-10-04 09:00:00", 1.0))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK, "writes have their own budget");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("telemetry_rate_limited_requests_total{budget=\"read\"}")),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn in_open_mode_a_configured_budget_applies_per_address() {
    let store = TestStore::new();
    let mut config = store.config();
    config.rate_limit_writes_per_second = Some(1);
    config.rate_limit_write_burst = Some(1);
    let app = spawn_app_with(config).await;
    app.put_ok(&reading("a", "2021-10-04 09:00:00", 1.0)).await;
    let mut refused = 0;
    for second in 1..4 {
        let response = app
            .put_readings(&reading("a", &format!("2021-10-04 09:00:0{second}"), 1.0))
            .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert!(refused >= 2, "{refused} of 3 refused");
    app.stop().await;
}

#[tokio::test]
async fn every_answer_has_security_headers_and_no_server_header() {
    let store = TestStore::new();
    let app = spawn_app_with(with_tokens(&store)).await;
    for (path, token) in [
        ("/api", None),
        ("/api/stats", bearer(READ)),
        ("/api/stats", None),
        ("/nope", bearer(READ)),
    ] {
        let response = send(&app, Method::GET, path, token, None).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(headers.contains_key("cache-control"), "{path}");
        assert!(!headers.contains_key("server"), "{path}");
    }
    app.stop().await;
}
