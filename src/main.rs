//! The `telemetry` binary: reads the environment, sets up logging and runs the service until
//! SIGTERM or ctrl-c. `telemetry healthcheck` probes a running instance instead.

use std::process::ExitCode;
use std::time::Duration;

use telemetry::app::Application;
use telemetry::config::Config;

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("telemetry: configuration error: {message}");
            return ExitCode::from(2);
        }
    };
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => serve(config),
        Some("healthcheck") => {
            match telemetry::healthcheck::probe(config.port, Duration::from_secs(3)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("telemetry healthcheck: {message}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(other) => {
            eprintln!("telemetry: unknown command {other:?}; usage: telemetry [serve|healthcheck]");
            ExitCode::from(2)
        }
    }
}

fn serve(config: Config) -> ExitCode {
    if let Err(message) = telemetry::telemetry_log::init(config.log_format) {
        eprintln!("telemetry: configuration error: {message}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("telemetry: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let app = match Application::build(config).await {
            Ok(app) => app,
            Err(error) => {
                tracing::error!(%error, "start-up failed");
                eprintln!("telemetry: {error}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(
            port = app.port(),
            storage = app.storage().backend_name(),
            "listening"
        );
        app.run_until(shutdown_signal()).await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// Resolves on SIGTERM (ECS, Docker) or ctrl-c.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
