//! Logging through `tracing`: plain text by default, one JSON object per line with
//! `LOG_FORMAT=json` (CloudWatch), on stdout. The filter comes from `RUST_LOG` (default
//! `info`). Text logs are coloured only when stdout is a terminal, so a log file or a pipe gets
//! plain text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. A bad `RUST_LOG` is reported as a one-line error.
pub fn init(format: LogFormat) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) => EnvFilter::try_new(&directives)
            .map_err(|e| format!("RUST_LOG={directives:?} is invalid: {e}"))?,
        Err(_) => EnvFilter::new("info"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))
}
