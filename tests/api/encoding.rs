//! `Content-Encoding` on the JSON write routes: gzip and deflate bodies are decoded, the size
//! limit applies after decoding, unknown encodings are 415.

use std::io::Write;

use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, reading, spawn_app};

#[tokio::test]
async fn gzip_and_deflate_readings_are_stored() {
    let (app, _store) = spawn_app().await;
    let body = serde_json::to_vec(&json!([
        reading("g", "2021-10-04 09:00:00", 1.0),
        reading("g", "2021-10-04 09:00:01", 2.0),
    ]))
    .unwrap();
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(&body).unwrap();
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    zlib.write_all(&body).unwrap();
    for (coding, encoded) in [
        ("gzip", gzip.finish().unwrap()),
        ("deflate", zlib.finish().unwrap()),
    ] {
        let response = app
            .client
            .put(app.url("/api/temperature"))
            .header("content-encoding", coding)
            .header("content-type", "application/json")
            .body(encoded)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{coding}");
    }
    assert_eq!(app.stats(None).await["Count"], 2);
    let mut item = GzEncoder::new(Vec::new(), Compression::default());
    item.write_all(br#"{"name": "greenhouse"}"#).unwrap();
    let response = app
        .client
        .post(app.url("/picus/put"))
        .header("content-encoding", "gzip")
        .body(item.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_gzip_bomb_is_413_and_bad_encodings_are_refused() {
    let (app, _store) = spawn_app().await;
    let mut bomb = GzEncoder::new(Vec::new(), Compression::fast());
    bomb.write_all(&vec![b' '; 8 * 1024 * 1024]).unwrap();
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 1024 * 1024, "the wire size is under the limit");
    let send = |coding: &'static str, body: Vec<u8>| {
        app.client
            .put(app.url("/api/temperature"))
            .header("content-encoding", coding)
            .body(body)
            .send()
    };
    let problem = assert_problem(
        send("gzip", bomb).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(problem["limit"], 1_048_576);
    let response = send("br", b"{}".to_vec()).await.unwrap();
    assert_eq!(
        response.headers()["accept-encoding"],
        "gzip, deflate, identity"
    );
    assert_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let response = send("gzip", b"{\"not\": \"gzip\"}".to_vec()).await.unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(app.stats(None).await["Count"], 0);
}
