//! /picus: a small JSON item store with generated ids.

use reqwest::StatusCode;
use serde_json::{Value, json};

use telemetry::config::StorageKind;

use crate::helpers::{TestApp, assert_problem, spawn_app};

async fn post(app: &TestApp, body: &str, content_type: &str) -> reqwest::Response {
    app.client
        .post(app.url("/picus/put"))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn put_get_list_delete_round_trip() {
    let (app, _store) = spawn_app().await;
    // The original's curl example: -X POST -d '{..}' sends form-urlencoded.
    let response = post(
        &app,
        r#"{"name": "half", "value": 2.5}"#,
        "application/x-www-form-urlencoded",
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["location"], "/picus/get/1");
    let created: Value = response.json().await.unwrap();
    assert_eq!(created, json!({"id": "1"}));

    let fetched: Value = app.get("/picus/get/1").await.json().await.unwrap();
    assert_eq!(
        fetched,
        json!({"id": "1", "item": {"name": "half", "value": 2.5}})
    );

    let second: Value = post(&app, r#"{"id": "999", "n": 2}"#, "application/json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        second["id"], "2",
        "a client id never overrides the generated one"
    );

    let list: Value = app.get("/picus/list").await.json().await.unwrap();
    assert_eq!(
        list,
        json!([
            {"id": "1", "item": {"name": "half", "value": 2.5}},
            {"id": "2", "item": {"id": "999", "n": 2}},
        ])
    );

    let deleted = app.client.delete(app.url("/picus/1")).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let deleted: Value = deleted.json().await.unwrap();
    assert_eq!(deleted, json!({"message": "Item deleted successfully"}));
    let again = app.client.delete(app.url("/picus/1")).send().await.unwrap();
    assert_problem(again, StatusCode::NOT_FOUND).await;
    assert_problem(app.get("/picus/get/1").await, StatusCode::NOT_FOUND).await;
    let list: Value = app.get("/picus/list").await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_and_malformed_keys_are_404_never_500() {
    let (app, _store) = spawn_app().await;
    for key in [
        "1",
        "abc",
        "0",
        "-1",
        "01",
        "1.5",
        "99999999999999999999999",
    ] {
        assert_problem(
            app.get(&format!("/picus/get/{key}")).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        let response = app
            .client
            .delete(app.url(&format!("/picus/{key}")))
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::NOT_FOUND).await;
    }
}

#[tokio::test]
async fn non_objects_and_oversized_items_are_refused() {
    let (app, _store) = spawn_app().await;
    for body in ["[1, 2]", "\"text\"", "42", "null"] {
        assert_problem(
            post(&app, body, "application/json").await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    assert_problem(
        post(&app, "{", "application/json").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_problem(
        post(&app, "<a/>", "application/xml").await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    let big = format!("{{\"blob\": \"{}\"}}", "x".repeat(64 * 1024));
    assert_problem(
        post(&app, &big, "application/json").await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    let list: Value = app.get("/picus/list").await.json().await.unwrap();
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn list_paginates_with_a_link_header() {
    let (app, _store) = spawn_app().await;
    for n in 0..5 {
        let response = post(&app, &json!({"n": n}).to_string(), "application/json").await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut path = "/picus/list?limit=2".to_owned();
    for _ in 0..10 {
        let response = app.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK);
        let link = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned());
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|i| i["item"]["n"].as_i64().unwrap()));
        match link {
            Some(link) => {
                assert!(link.ends_with("; rel=\"next\""), "{link}");
                path = link[1..link.find('>').unwrap()].to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, [0, 1, 2, 3, 4]);
    for bad in ["limit=0", "limit=1001", "limit=x", "cursor=abc"] {
        assert_problem(
            app.get(&format!("/picus/list?{bad}")).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
}

#[tokio::test]
async fn concurrent_puts_get_unique_ids() {
    let (app, store) = spawn_app().await;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for n in 0..40 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let body: Value = post(&app, &json!({"n": n}).to_string(), "application/json")
                .await
                .json()
                .await
                .unwrap();
            body["id"].as_str().unwrap().parse::<u64>().unwrap()
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        40,
        "every concurrent put got its own id: {ids:?}"
    );
    if store.kind == StorageKind::Embedded {
        // The embedded counter moves in the writer's transaction: no gaps.
        assert_eq!(ids, (1..=40).collect::<Vec<u64>>());
    }
    // DynamoDB promises unique and increasing ids, not gapless ones: an `ADD` whose answer
    // was lost to a timeout is retried by the SDK and leaves a gap.
}

#[tokio::test]
async fn list_pages_stop_at_a_byte_budget_and_items_come_back_as_stored() {
    let store = crate::helpers::TestStore::new();
    let mut config = store.config();
    config.picus_list_max_bytes = 100 * 1024;
    let app = crate::helpers::spawn_app_with(config).await;
    // 12 items of about 40 KiB: at most two fit the 100 KiB budget, whatever the limit.
    let numbers = vec!["1e-400"; 5_000].join(",");
    for n in 0..12 {
        let item = format!("{{\"n\": {n}, \"exact\": 999999999.99999999, \"v\": [{numbers}]}}");
        let response = post(&app, &item, "application/json").await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut path = "/picus/list?limit=1000".to_owned();
    for _ in 0..20 {
        let response = app.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK);
        let link = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        assert!(body.len() < 100 * 1024, "a page is {} bytes", body.len());
        // The stored text, not a re-serialised float: `1e-400` stays `1e-400`, not `0.0`.
        assert!(body.contains("\"exact\": 999999999.99999999, \"v\": [1e-400,"));
        let page: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert!(!page.is_empty());
        seen.extend(page.iter().map(|i| i["item"]["n"].as_i64().unwrap()));
        match link {
            Some(link) => path = link[1..link.find('>').unwrap()].to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, (0..12).collect::<Vec<_>>());
    let one = app.get("/picus/get/3").await.text().await.unwrap();
    assert!(one.starts_with("{\"id\":\"3\",\"item\":{\"n\": 2, \"exact\": 999999999.99999999,"));
}

#[tokio::test]
async fn an_item_larger_than_the_byte_budget_is_listed_alone() {
    let store = crate::helpers::TestStore::new();
    let mut config = store.config();
    config.picus_list_max_bytes = 1;
    let app = crate::helpers::spawn_app_with(config).await;
    for n in 0..3 {
        let response = post(&app, &json!({"n": n}).to_string(), "application/json").await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let first = app.get("/picus/list").await;
    assert_eq!(
        first.headers()["link"],
        "</picus/list?limit=100&cursor=1>; rel=\"next\""
    );
    let page: Value = first.json().await.unwrap();
    assert_eq!(page, json!([{"id": "1", "item": {"n": 0}}]));
}
