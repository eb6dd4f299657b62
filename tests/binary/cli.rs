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

#[test]
fn help_lists_the_commands_and_every_setting_and_needs_no_valid_configuration() {
    for spelling in ["--help", "-h", "help"] {
        let output = telemetry()
            .arg(spelling)
            .env("PORT", "not-a-port")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{spelling}");
        let help = String::from_utf8(output.stdout).unwrap();
        for command in ["serve", "healthcheck", "help", "version"] {
            assert!(help.contains(&format!("  {command} ")), "{command}: {help}");
        }
        for variable in telemetry::config::VARIABLES {
            let default = variable.default.unwrap_or("unset");
            assert!(
                help.contains(variable.name) && help.contains(&format!("[{default}]")),
                "{} [{default}] in {help}",
                variable.name
            );
        }
        assert!(help.contains("README.md"), "{help}");
    }
}

#[test]
fn version_prints_the_package_version() {
    for spelling in ["--version", "-V", "version"] {
        let output = telemetry().arg(spelling).output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            format!("telemetry {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

/// Runs the server expecting a start-up failure; returns its one stderr line.
fn start_up_failure(env: &[(&str, &str)]) -> String {
    let output = telemetry()
        .env("BIND_ADDR", "127.0.0.1")
        .env("PORT", "0")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(2),
        "exit 2 for {env:?}: {stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "printed once, on one line: {stderr:?}"
    );
    stderr.trim_end().to_owned()
}

#[test]
fn an_unusable_data_dir_is_named_with_its_variable() {
    let line = start_up_failure(&[("DATA_DIR", "/proc/x")]);
    assert!(
        line.starts_with("telemetry: DATA_DIR=/proc/x: cannot create directory: "),
        "{line}"
    );
}

#[test]
fn a_busy_port_is_named_with_its_variable() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let line = start_up_failure(&[("PORT", &port), ("DATA_DIR", dir.path().to_str().unwrap())]);
    assert_eq!(
        line,
        format!("telemetry: PORT {port} is already in use (BIND_ADDR=127.0.0.1)")
    );
}

#[test]
fn a_data_dir_in_use_names_the_process_that_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let line = start_up_failure(&[("DATA_DIR", dir.path().to_str().unwrap())]);
    assert_eq!(
        line,
        format!(
            "telemetry: DATA_DIR={} is locked by another telemetry process (pid {})",
            dir.path().display(),
            server.child.id()
        )
    );
}

#[test]
fn text_logs_to_a_pipe_have_no_colour_codes_and_say_where_the_service_listens() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = telemetry()
        .env("BIND_ADDR", "127.0.0.1")
        .env("PORT", "0")
        .env("DATA_DIR", dir.path())
        .env("LOG_FORMAT", "text")
        .env("RUST_LOG", "info")
        .env_remove("API_TOKENS")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let listening = loop {
        let line = lines.next().expect("a listening line").unwrap();
        assert!(!line.contains('\u{1b}'), "no ANSI escape in {line:?}");
        if line.contains("listening") {
            break line;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening.contains("url=http://127.0.0.1:"), "{listening}");
    assert!(listening.contains("access_control=\"off\""), "{listening}");
    assert!(listening.contains("storage=\"embedded\""), "{listening}");
}
