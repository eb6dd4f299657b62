//! HTTP details: `HEAD` on every `GET` route, `Allow` on every `405`, a bad `Content-Type` is
//! a `400` rather than a `405`, and made-up methods and paths cannot grow `/metrics`.

use reqwest::{Method, StatusCode};

use crate::helpers::{TestApp, assert_problem, spawn_app};

const GET_ROUTES: [&str; 12] = [
    "/api",
    "/api/ready",
    "/api/stats",
    "/api/readings?sensorID=s",
    "/api/series?sensorID=s&from=2021-10-04T00:00:00Z&to=2021-10-05T00:00:00Z&step=1h",
    "/api/sensors",
    "/metrics",
    "/openapi.json",
    "/",
    "/dashboard/app.js",
    "/picus/list",
    "/api/sensors/none",
];

#[tokio::test]
async fn every_get_route_answers_head_without_a_body() {
    let (app, _store) = spawn_app().await;
    for path in GET_ROUTES {
        let get = app.get(path).await;
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "HEAD {path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods() {
    let (app, _store) = spawn_app().await;
    for (method, path, allowed) in [
        (Method::POST, "/api/stats", "GET, HEAD"),
        (Method::DELETE, "/api/sensors/7", "GET, HEAD"),
        (Method::GET, "/api/temperature", "PUT"),
        (Method::PUT, "/api/v2/write", "POST"),
        (Method::GET, "/picus/put", "POST"),
        (Method::PUT, "/picus/7", "DELETE"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        let got = response.headers().get("allow").cloned();
        assert_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
        assert_eq!(got.unwrap(), allowed, "{method} {path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_content_type_that_is_not_text_is_400_not_405() {
    let (app, _store) = spawn_app().await;
    let label =
        reqwest::header::HeaderValue::from_bytes(b"application/json; charset=\xff").unwrap();
    for (method, path, body) in [
        (Method::POST, "/picus/put", "{}"),
        (Method::PUT, "/api/temperature", "[]"),
    ] {
        let response = app
            .client
            .request(method, app.url(path))
            .header("content-type", label.clone())
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("Content-Type"),
            "{path}: {problem}"
        );
    }
    app.stop().await;
}

async fn made_up_requests(app: &TestApp, numbers: std::ops::Range<u32>) {
    for i in numbers {
        let method = Method::from_bytes(format!("X{i:07}").as_bytes()).unwrap();
        let path = format!("/made-up/{i}?q={i}");
        let response = app
            .client
            .request(method, app.url(&path))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{path}");
    }
}

async fn metrics_text(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// The values of `label` on the samples of metric `name`.
fn label_values(text: &str, name: &str, label: &str) -> Vec<String> {
    let prefix = format!("{name}{{");
    let key = format!("{label}=\"");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|labels| {
            let start = labels.find(&key)? + key.len();
            let end = labels[start..].find('"')?;
            Some(labels[start..start + end].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn thousands_of_made_up_methods_and_paths_keep_the_metrics_bounded() {
    let (app, _store) = spawn_app().await;
    made_up_requests(&app, 0..100).await;
    // A first scrape, so that the scrapes' own series are there before the comparison.
    metrics_text(&app).await;
    let before = metrics_text(&app).await;
    made_up_requests(&app, 100..3_000).await;
    let after = metrics_text(&app).await;
    let methods = label_values(&after, "telemetry_http_requests_total", "method");
    assert!(methods.iter().any(|m| m == "other"), "{methods:?}");
    for method in &methods {
        assert!(
            [
                "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "other"
            ]
            .contains(&method.as_str()),
            "method label {method:?}"
        );
    }
    let routes = label_values(&after, "telemetry_http_requests_total", "route");
    assert!(routes.iter().all(|r| !r.contains("made-up")), "{routes:?}");
    assert_eq!(
        before.lines().count(),
        after.lines().count(),
        "no new series"
    );
    // Only counts grow (a few more digits), never the set of series.
    assert!(
        after.len() < before.len() + 1024,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    app.stop().await;
}
