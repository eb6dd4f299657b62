//! Black-box contract suite: the real app on a random port, spoken to over HTTP.
//! Run against the embedded store by default, against DynamoDB with
//! `TELEMETRY_TEST_STORAGE=dynamodb` (see `helpers.rs`).

mod access;
mod access_line_protocol;
mod encoding;
mod errors;
mod health;
mod helpers;
mod http;
mod limits;
mod line_protocol;
mod numbers;
mod picus;
mod promtool;
mod readings;
mod restart;
mod retention;
mod stats;
mod upgrade;
mod window_checks;
mod windows;
