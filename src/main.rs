//! The `telemetry` binary: reads the environment, sets up logging and runs the service until
//! SIGTERM or ctrl-c. `telemetry healthcheck` probes a running instance instead.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use telemetry::app::Application;
use telemetry::cli::{self, Command};
use telemetry::config::Config;

/// The allocator of the whole process: glibc's malloc and free were a sixth of the writer
/// thread's time (BENCHMARKS.md, "Late readings among the writer's memory, and mimalloc").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a problem with the configuration or the environment (a bad variable, a busy
/// port, an unusable or locked `DATA_DIR`, unreachable storage): fix the set-up, not the code.
const EXIT_SETUP: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match Command::parse(&args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("telemetry: {message}");
            return ExitCode::from(EXIT_SETUP);
        }
    };
    match command {
        Command::Help => {
            print!("{}", cli::help());
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("{}", cli::version());
            return ExitCode::SUCCESS;
        }
        Command::Serve | Command::Healthcheck | Command::Verify => {}
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("telemetry: configuration error: {message}");
            return ExitCode::from(EXIT_SETUP);
        }
    };
    match command {
        Command::Healthcheck => {
            match telemetry::healthcheck::probe(config.port, Duration::from_secs(3)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("telemetry healthcheck: {message}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Verify => verify(&config),
        _ => serve(config),
    }
}

/// `telemetry verify`: exit 0 when the database in `DATA_DIR` is consistent, 1 when something
/// differs (listed on stdout), 2 when it cannot be checked (missing, locked by a running
/// instance, unreadable).
fn verify(config: &Config) -> ExitCode {
    let _lock = match telemetry::data_dir::lock(&config.data_dir) {
        Ok(lock) => lock,
        Err(error) => {
            eprintln!("telemetry verify: {error}");
            return ExitCode::from(EXIT_SETUP);
        }
    };
    let found = match telemetry::storage::embedded::verify(&config.data_dir) {
        Ok(found) => found,
        Err(error) => {
            let error = telemetry::storage::chain(&error);
            eprintln!(
                "telemetry verify: DATA_DIR={}: {error}",
                config.data_dir.display()
            );
            return ExitCode::from(EXIT_SETUP);
        }
    };
    for note in &found.notes {
        println!("note: {note}");
    }
    for difference in &found.differences {
        println!("differs: {difference}");
    }
    if found.difference_count > found.differences.len() {
        println!(
            "... and {} more differences",
            found.difference_count - found.differences.len()
        );
    }
    println!(
        "telemetry verify: DATA_DIR={}: {} readings, {} sensors, {} rollup rows: {}",
        config.data_dir.display(),
        found.readings,
        found.sensors,
        found.rollup_rows,
        if found.is_consistent() {
            "consistent".to_owned()
        } else {
            format!("{} differences", found.difference_count)
        }
    );
    if found.is_consistent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn serve(config: Config) -> ExitCode {
    if let Err(message) = telemetry::logging::init(config.log_format) {
        eprintln!("telemetry: configuration error: {message}");
        return ExitCode::from(EXIT_SETUP);
    }
    // 4 MiB per worker rather than tokio's 2 MiB: the AWS SDK's futures are deep, and stack
    // is only reserved address space until used.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(4 * 1024 * 1024)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("telemetry: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let shutdown = shutdown_signal();
        let app = match Application::build(config).await {
            Ok(app) => app,
            Err(error) => {
                // Once, on stderr (the logs go to stdout): the line names what to fix.
                let error = telemetry::storage::chain(&error);
                eprintln!("telemetry: {error}");
                return ExitCode::from(EXIT_SETUP);
            }
        };
        let addr = app
            .local_addr()
            .map_or_else(|| "?".to_owned(), |addr| addr.to_string());
        tracing::info!(
            port = app.port(),
            url = %format!("http://{addr}"),
            storage = app.storage().backend_name(),
            access_control = app.access_mode(),
            "listening"
        );
        app.run_until(shutdown).await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// Installs the SIGTERM (ECS, Docker) and SIGINT (ctrl-c) handlers *now*, so that a signal
/// arriving while the service starts is not lost (the default action would kill the process
/// without draining), and returns a future that resolves on the first of them.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let terminate = signal(SignalKind::terminate()).ok();
    let interrupt = signal(SignalKind::interrupt()).ok();
    async move {
        let wait = |handler: Option<Signal>| async move {
            match handler {
                Some(mut handler) => {
                    handler.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(terminate) => {},
            () = wait(interrupt) => {},
        }
    }
}
