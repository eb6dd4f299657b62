//! What a client sees on the wire from the real binary, fetched with the real `curl`: JSON
//! answers end with a newline, and `/metrics` declares its series from the start.

use std::process::Command;

use crate::server::{Server, start};

/// `curl -sS` of `path`: (status, body).
fn curl(server: &Server, args: &[&str], path: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}"])
        .args(args)
        .arg(format!("{}{path}", server.base))
        .output()
        .expect("curl runs (scripts/test.sh installs it)");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

#[test]
fn json_answers_and_problems_end_with_a_newline() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    for (args, path, status) in [
        (&[][..], "/api", 200),
        (&[], "/api/ready", 200),
        (&[], "/api/stats", 200),
        (&[], "/api/readings?sensorID=1", 200),
        (&[], "/picus/list", 200),
        (&[], "/picus/get/404", 404),
        (&[], "/nowhere", 404),
        (&["-X", "PUT", "-d", "{}"], "/api/temperature", 422),
    ] {
        let (answered, body) = curl(&server, args, path);
        assert_eq!(answered, status, "{path}: {body}");
        assert!(
            body.ends_with("}\n") || body.ends_with("]\n"),
            "{path}: {body:?}"
        );
        assert_eq!(body.matches('\n').count(), 1, "{path}: one line: {body:?}");
    }
}

#[test]
fn storage_errors_are_declared_at_zero_and_a_conflict_within_a_request_counts_as_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let (_, metrics) = curl(&server, &[], "/metrics");
    for operation in telemetry::metrics::STORAGE_OPERATIONS {
        for kind in telemetry::metrics::STORAGE_ERROR_KINDS {
            let series = format!(
                "telemetry_storage_errors_total{{backend=\"embedded\",kind=\"{kind}\",operation=\"{operation}\"}} 0"
            );
            assert!(
                metrics.lines().any(|l| l == series),
                "{series} in {metrics}"
            );
        }
    }
    let batch = r#"[{"sensorID":"1","temperature":1,"time":"2021-10-04 10:00:00"},
                    {"sensorID":"1","temperature":2,"time":"2021-10-04 10:00:00"}]"#;
    let (status, _) = curl(
        &server,
        &[
            "-X",
            "PUT",
            "-H",
            "content-type: application/json",
            "-d",
            batch,
        ],
        "/api/temperature",
    );
    assert_eq!(status, 409);
    let (_, metrics) = curl(&server, &[], "/metrics");
    for line in [
        "telemetry_readings_total{outcome=\"conflict\"} 2",
        "telemetry_readings_total{outcome=\"rejected\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
}
