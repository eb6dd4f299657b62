//! `promtool check metrics` accepts what `/metrics` serves.
//!
//! promtool comes from Debian's `prometheus` package; `scripts/test.sh` installs it and sets
//! `REQUIRE_PROMTOOL=1`, so in CI a missing promtool fails instead of skipping.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{reading, spawn_app};

#[tokio::test]
async fn promtool_accepts_the_metrics() {
    let available = Command::new("promtool").arg("--version").output().is_ok();
    if !available {
        assert!(
            std::env::var_os("REQUIRE_PROMTOOL").is_none(),
            "REQUIRE_PROMTOOL is set but promtool is not installed"
        );
        eprintln!(
            "SKIPPED promtool_accepts_the_metrics: promtool not installed (apt-get install prometheus)"
        );
        return;
    }
    let (app, _store) = spawn_app().await;
    // Touch every family so that labelled series exist.
    app.put_ok(&json!([reading("p", "2021-10-04 09:00:00", 1.0)]))
        .await;
    let _ = app
        .put_readings(&reading("p", "2021-10-04 09:00:00", 2.0))
        .await;
    let _ = app.put_raw("{", None).await;
    let _ = app.get("/api/stats").await;
    let _ = app.get("/nowhere").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();

    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool rejected /metrics:\n{report}\n---\n{text}"
    );
    // promtool also prints lint findings (naming, units) while exiting 0: we want none.
    assert!(
        report.trim().is_empty(),
        "promtool lint findings:\n{report}"
    );
}
