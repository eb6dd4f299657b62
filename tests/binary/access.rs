//! The binary's access-control contract: `REQUIRE_AUTH=true` without tokens refuses to start,
//! and no token ever reaches the log, whatever the request did with it.

use std::time::Duration;

use crate::cli::start_up_failure;
use crate::server::start_with;

const READ: &str = "read-token-a1b2c3d4e5f60718";
const WRITE: &str = "write-token-9f8e7d6c5b4a3928";
const GUESS: &str = "guess-token-0badc0ffee0badc0";

#[test]
fn require_auth_without_a_token_exits_2_with_one_line() {
    let line = start_up_failure(&[("REQUIRE_AUTH", "true")]);
    assert!(line.contains("REQUIRE_AUTH"), "{line}");
}

#[test]
fn a_bad_token_entry_exits_2_without_repeating_it() {
    let line = start_up_failure(&[("API_TOKENS", "read:short-secret")]);
    assert!(line.contains("API_TOKENS entry 1"), "{line}");
    assert!(!line.contains("short-secret"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = format!("read:{READ},write:{WRITE}");
    let mut server = start_with(
        dir.path(),
        &[
            ("API_TOKENS", &tokens),
            ("REQUIRE_AUTH", "true"),
            ("AUTH_FAILURES_PER_MINUTE", "5"),
            ("RUST_LOG", "debug"),
        ],
    );
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let body = r#"{"sensorID": "1", "temperature": 1, "time": "2021-10-04 09:00:00"}"#;
    // Accepted, refused for scope, unknown, malformed, in the query string, throttled.
    for (token, path) in [
        (WRITE, "/api/temperature"),
        (READ, "/api/temperature"),
        (GUESS, "/api/temperature"),
        (READ, "/api/stats"),
        (WRITE, "/api/stats"),
    ] {
        let response = client
            .put(url(path))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().as_u16() < 500);
        let response = client
            .get(url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(response.status().as_u16() < 500);
    }
    for _ in 0..8 {
        let response = client
            .get(url(&format!("/write?db=x&u=me&p={GUESS}")))
            .header("authorization", format!("Digest {GUESS}"))
            .send()
            .await
            .unwrap();
        assert!(response.status().as_u16() < 500);
    }
    let status = server.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.contains("\"request\""),
        "the requests were logged: {log}"
    );
    for token in [READ, WRITE, GUESS] {
        assert!(!log.contains(token), "a token is in the log:\n{log}");
    }
}
