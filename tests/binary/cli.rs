//! The binary's process-level contract: configuration errors, SIGTERM, `healthcheck`.

use std::process::Command;
use std::time::Duration;

use crate::server::start;

fn telemetry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_telemetry"))
}

#[test]
fn a_bad_variable_exits_2_with_one_line_naming_it() {
    for (name, value) in [
        ("PORT", "eighty"),
        ("STORAGE", "postgres"),
        ("MAX_BODY_BYTES", "lots"),
        ("LOG_FORMAT", "xml"),
        ("RUST_LOG", "info,[[["),
    ] {
        let output = telemetry()
            .env(name, value)
            .env("BIND_ADDR", "127.0.0.1")
            .env("PORT", if name == "PORT" { value } else { "0" })
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(name), "{stderr:?} names {name}");
    }
}

#[test]
fn dynamodb_without_a_table_name_refuses_to_start() {
    let output = telemetry().env("STORAGE", "dynamodb").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("TABLE_NAME"));
}

#[test]
fn sigterm_drains_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let status = server.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn healthcheck_exits_0_against_a_live_server_and_1_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let port = server.port.to_string();
    let live = telemetry()
        .arg("healthcheck")
        .env("PORT", &port)
        .output()
        .unwrap();
    assert_eq!(
        live.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );
    server.terminate(Duration::from_secs(10));
    let dead = telemetry()
        .arg("healthcheck")
        .env("PORT", &port)
        .output()
        .unwrap();
    assert_eq!(dead.status.code(), Some(1));
}

#[test]
fn an_unknown_command_exits_2() {
    let output = telemetry().arg("frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}
