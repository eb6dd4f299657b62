//! `telemetry`: sensors PUT temperature readings, dashboards GET exact statistics, Prometheus
//! scrapes `/metrics`.
//!
//! Layout:
//! - [`config`]: the environment, read once with envy, and the table of every variable;
//! - [`cli`]: the commands and `--help`;
//! - [`domain`]: readings, batches and exact aggregates, free of HTTP and storage;
//! - [`storage`]: the storage contract ([`storage::Store`], [`storage::Storage`]), its errors
//!   and group commit; [`storage::embedded`] (redb behind a write-ahead log, the default: API,
//!   writer threads, tables, log record, recovery) and [`storage::dynamodb`] (AWS: API, table
//!   set-up, attribute mapping, queries, the group-commit writer and its transactions);
//! - [`routes`]: the HTTP API, one file per resource, and RFC 9457 problem bodies;
//! - [`metrics`]: the Prometheus registry the app owns;
//! - [`auth`]: tokens, scopes, rate limits: who may call which route, how often;
//! - [`server`]: the HTTP server under connection limits (timeouts, connection count, body
//!   memory);
//! - [`app`]: binds, wires and runs it all with graceful shutdown, building each backend's
//!   settings from the configuration;
//! - [`data_dir`]: the embedded store's directory, created and locked to one process;
//! - [`healthcheck`]: the container's health probe (`telemetry healthcheck`);
//! - [`logging`]: `tracing` set-up, plain text or JSON lines;
//! - `lambda` (cargo feature `lambda`): `DELETE /picus/{key}` as an AWS Lambda function, on
//!   the same access policy, handler and storage code.
//!
//! `main.rs` only reads the configuration, sets up logging and runs [`app::Application`];
//! `bin/telemetry-lambda.rs` does the same for the Lambda function.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod domain;
pub mod healthcheck;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod storage;
