//! Access control on the line-protocol write routes, with the credentials InfluxDB clients
//! send: `Authorization: Token` (InfluxDB 2 clients, Telegraf), and on the v1 route the
//! `u`/`p` query parameters (the v1 Python client) or Basic auth with the token as password
//! (Telegraf's v1 output, curl `-u`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;

use crate::access::{ADMIN, READ, WRITE, with_tokens};
use crate::helpers::{TestApp, TestStore, spawn_app_with};

const LINE: &str = "temperature,sensorID=lp value=20.5 1633338000";

async fn post(app: &TestApp, path: &str, authorization: Option<String>) -> StatusCode {
    let mut request = app.client.post(app.url(path)).body(LINE);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.send().await.expect("request sent").status()
}

fn basic(user: &str, password: &str) -> Option<String> {
    Some(format!(
        "Basic {}",
        STANDARD.encode(format!("{user}:{password}"))
    ))
}

#[tokio::test]
async fn v2_takes_token_and_bearer_with_a_write_scope() {
    let store = TestStore::new();
    let app = spawn_app_with(with_tokens(&store)).await;
    let path = "/api/v2/write?org=o&bucket=b&precision=s";
    assert_eq!(post(&app, path, None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        post(&app, path, Some(format!("Token {READ}"))).await,
        StatusCode::FORBIDDEN
    );
    for authorization in [format!("Token {WRITE}"), format!("Bearer {ADMIN}")] {
        assert_eq!(
            post(&app, path, Some(authorization)).await,
            StatusCode::NO_CONTENT
        );
    }
    // Basic and p= are the v1 route's forms only.
    assert_eq!(
        post(&app, path, basic("telegraf", WRITE)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, &format!("{path}&p={WRITE}"), None).await,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn v1_takes_the_query_password_basic_auth_and_token() {
    let store = TestStore::new();
    let app = spawn_app_with(with_tokens(&store)).await;
    let path = "/write?db=telemetry&precision=s";
    assert_eq!(post(&app, path, None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        post(
            &app,
            &format!("{path}&u=me&p=wrong-token-000000000000"),
            None
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, &format!("{path}&u=me&p={READ}"), None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&app, &format!("{path}&u=me&p={WRITE}"), None).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post(&app, path, basic("telegraf", WRITE)).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post(&app, path, Some(format!("Token {WRITE}"))).await,
        StatusCode::NO_CONTENT
    );
    app.stop().await;
}
