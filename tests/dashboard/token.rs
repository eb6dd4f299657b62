//! The dashboard on a service with tokens: the page asks for a read token, says when the one
//! given is refused, shows the data once a read token is in, and forgets it on request.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use telemetry::auth::TokenSet;

use super::browser::Browser;
use super::helpers::{TestStore, spawn_app_with};
use super::{reading, sensor_ids, until_sensor_ids};

const READ: &str = "dashboard-read-token-3c5e7a9b";
const WRITE: &str = "dashboard-write-token-8d6f4b2a";

const NEEDED: &str = "A read token is needed.";
const REFUSED: &str = "The read token was refused.";

#[tokio::test]
async fn the_dashboard_asks_for_a_read_token_and_shows_the_data_once_given_one() {
    let Some(browser) = Browser::start("dashboard-token", 1280, 900).await else {
        return;
    };
    let store = TestStore::new();
    let mut config = store.config();
    config.tokens = TokenSet::parse(&format!("read:{READ},write:{WRITE}")).expect("valid tokens");
    let app = spawn_app_with(config).await;
    let stored = app
        .client
        .put(app.url("/api/temperature"))
        .bearer_auth(WRITE)
        .json(&reading("107", Utc::now() - Duration::minutes(5), 21.5))
        .send()
        .await
        .expect("request sent");
    assert_eq!(stored.status(), StatusCode::OK);

    // No token: the page asks for one and shows no data.
    browser.open(&app.url("/")).await;
    let message = browser
        .until_text("#token-message", |text| text.contains(NEEDED))
        .await;
    assert!(message.contains("sent as a Bearer token"), "{message}");
    assert_eq!(browser.text("#status").await, "Waiting for a read token");
    assert!(sensor_ids(&browser).await.is_empty());

    // A write token has no read scope (403): refused, still no data.
    browser.type_into("#token", WRITE).await;
    browser.click("#token-form button[type=submit]").await;
    browser
        .until_text("#token-message", |text| text.contains(REFUSED))
        .await;
    assert!(sensor_ids(&browser).await.is_empty());

    // The read token: the sensor appears, the form goes away, the token can be forgotten.
    browser.type_into("#token", READ).await;
    browser.click("#token-form button[type=submit]").await;
    until_sensor_ids(&browser, &["107"]).await;
    assert!(!displayed(&browser, "#token-form").await);
    assert!(displayed(&browser, "#forget-token").await);
    let kept: String = browser
        .client
        .execute(
            "return window.localStorage.getItem('telemetry.readToken');",
            vec![],
        )
        .await
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    assert_eq!(kept, READ, "kept in this browser's storage");

    // Forgotten: asked again, and nothing is kept.
    browser.click("#forget-token").await;
    browser
        .until_text("#token-message", |text| text.contains(NEEDED))
        .await;
    let kept = browser
        .client
        .execute(
            "return window.localStorage.getItem('telemetry.readToken');",
            vec![],
        )
        .await
        .expect("the script runs");
    assert!(kept.is_null(), "the token is gone: {kept}");
    browser.close().await;
}

async fn displayed(browser: &Browser, css: &str) -> bool {
    browser
        .find(css)
        .await
        .is_displayed()
        .await
        .unwrap_or_else(|error| panic!("{css} can be inspected: {error}"))
}
