//! The `telemetry-lambda` binary (cargo feature `lambda`; deployed as `bootstrap` on the
//! `provided.al2023` runtime): reads the service's configuration from the environment, builds
//! the function once (access policy, DynamoDB client) and serves invocations from the Lambda
//! Runtime API (`AWS_LAMBDA_RUNTIME_API`) until the environment is shut down.
//!
//! A configuration error is one line on stderr and exit code 2, before the first event: Lambda
//! reports it as the init failure, and no request is ever served with a wrong set-up.

use std::process::ExitCode;

use lambda_http::{Request, service_fn};
use telemetry::config::Config;
use telemetry::lambda::Function;

/// Exit code for a problem with the configuration (as the service's).
const EXIT_SETUP: u8 = 2;

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("telemetry-lambda: configuration error: {message}");
            return ExitCode::from(EXIT_SETUP);
        }
    };
    if let Err(message) = telemetry::logging::init(config.log_format) {
        eprintln!("telemetry-lambda: configuration error: {message}");
        return ExitCode::from(EXIT_SETUP);
    }
    // One thread: an execution environment gets one event at a time, and a cold start should
    // not spawn a worker pool it never uses.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("telemetry-lambda: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let function = match Function::build(&config).await {
            Ok(function) => function,
            Err(message) => {
                eprintln!("telemetry-lambda: {message}");
                return ExitCode::from(EXIT_SETUP);
            }
        };
        let handler = service_fn(move |request: Request| {
            let function = function.clone();
            async move { Ok::<_, std::convert::Infallible>(function.handle(request).await) }
        });
        match lambda_http::run(handler).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("telemetry-lambda: the runtime stopped: {error}");
                ExitCode::FAILURE
            }
        }
    })
}
