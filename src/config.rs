//! Configuration from the environment (12-factor), read once at start-up with `envy`.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PORT` | `8080` | TCP port to listen on |
//! | `BIND_ADDR` | `0.0.0.0` | address to listen on (tests use `127.0.0.1`) |
//! | `DATA_DIR` | `./data` | directory of the embedded database |
//! | `STORAGE` | `embedded` | `embedded` or `dynamodb` |
//! | `TABLE_NAME` | — | DynamoDB table (required with `STORAGE=dynamodb`) |
//! | `DYNAMODB_CREATE_TABLE` | `false` | create the table when missing (local runs; Terraform owns it on AWS) |
//! | `DYNAMODB_TIMEOUT_MS` | `5000` | DynamoDB operation timeout, retries included (each attempt gets 2/5 of it) |
//! | `DYNAMODB_ENDPOINT_URL` | — | DynamoDB endpoint for this service only (else `AWS_ENDPOINT_URL`, else AWS) |
//! | `MAX_BODY_BYTES` | `1048576` | largest accepted request body |
//! | `SHUTDOWN_GRACE_SECONDS` | `20` | how long in-flight requests may take to drain on SIGTERM |
//! | `EMBEDDED_CACHE_BYTES` | `33554432` | page cache of the embedded database |
//! | `LOG_FORMAT` | `text` | `text` or `json` (one JSON object per line, for CloudWatch) |
//! | `RUST_LOG` | `info` | log filter (`tracing_subscriber::EnvFilter` syntax) |
//! | `API_TOKENS` | — | `scope:token` entries, comma-separated (`read`, `write`, `admin`; a token as `sha256:<64 hex>` too) |
//! | `API_TOKENS_FILE` | — | a file of the same entries, one a line, `#` comments |
//! | `REQUIRE_AUTH` | `false` | refuse to start (exit 2) when no token is configured |
//! | `METRICS_TOKEN` | — | when set, `GET /metrics` needs it (or an admin token) as a Bearer token |
//! | `AUTH_FAILURES_PER_MINUTE` | `20` | failed authentications an address may make a minute before it gets 429 (0: no limit) |
//! | `RATE_LIMIT_WRITES_PER_SECOND` | `1000` with tokens, none without | write requests a second per token (per client address in open mode); 0: no limit |
//! | `RATE_LIMIT_WRITE_BURST` | twice the rate | write requests a token may send at once |
//! | `RATE_LIMIT_READS_PER_SECOND` | `100` with tokens, none without | read requests a second per token (per address in open mode); 0: no limit |
//! | `RATE_LIMIT_READ_BURST` | twice the rate | read requests a token may send at once |
//! | `TRUST_X_FORWARDED_FOR` | `false` | take the client address from the last `X-Forwarded-For` entry (behind the ALB) |
//! | `MAX_CONNECTIONS` | `4096` | open connections at most; more wait in the listen backlog |
//! | `HEADER_READ_TIMEOUT_SECONDS` | `10` | time to send a request head, from connecting or from its first byte |
//! | `IDLE_TIMEOUT_SECONDS` | `75` | keep-alive connections with no request are closed after this |
//! | `BODY_READ_TIMEOUT_SECONDS` | `30` | time to send a whole request body (408 beyond) |
//! | `MAX_BODY_MEMORY_BYTES` | `134217728` | request body bytes held by all requests at once (503 beyond) |
//! | `MAX_HEADERS` | `128` | header lines a request may have (431 beyond) |
//! | `LINGER_SECONDS` | `5` | after an early answer, how long an unread request body is read and discarded |
//! | `LINGER_BYTES` | `8388608` | ... and how many of its bytes at most |
//! | `HTTP2_CLEARTEXT` | `false` | also serve HTTP/2 without TLS (prior knowledge), 32 streams a connection |

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::Deserialize;

use crate::auth::{TokenDigest, TokenSet, tokens};

/// A secret from the environment: never shown by `Debug` or in error messages.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Variables whose values are secrets, so messages never repeat them.
const SECRET_VARIABLES: [&str; 2] = ["API_TOKENS", "METRICS_TOKEN"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    Embedded,
    Dynamodb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(default = "defaults::port")]
    pub port: u16,
    #[serde(default = "defaults::bind_addr")]
    pub bind_addr: IpAddr,
    #[serde(default = "defaults::data_dir")]
    pub data_dir: PathBuf,
    #[serde(default = "defaults::storage")]
    pub storage: StorageKind,
    #[serde(default)]
    pub table_name: Option<String>,
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    #[serde(default = "defaults::shutdown_grace_seconds")]
    pub shutdown_grace_seconds: u64,
    #[serde(default = "defaults::embedded_cache_bytes")]
    pub embedded_cache_bytes: usize,
    #[serde(default = "defaults::log_format")]
    pub log_format: LogFormat,
    #[serde(default)]
    pub dynamodb_create_table: bool,
    #[serde(default = "defaults::dynamodb_timeout_ms")]
    pub dynamodb_timeout_ms: u64,
    #[serde(default)]
    pub dynamodb_endpoint_url: Option<String>,
    #[serde(default)]
    pub api_tokens: Option<Secret>,
    #[serde(default)]
    pub api_tokens_file: Option<PathBuf>,
    #[serde(default)]
    pub require_auth: bool,
    #[serde(default)]
    pub metrics_token: Option<Secret>,
    #[serde(default = "defaults::auth_failures_per_minute")]
    pub auth_failures_per_minute: u32,
    #[serde(default)]
    pub rate_limit_writes_per_second: Option<u32>,
    #[serde(default)]
    pub rate_limit_write_burst: Option<u32>,
    #[serde(default)]
    pub rate_limit_reads_per_second: Option<u32>,
    #[serde(default)]
    pub rate_limit_read_burst: Option<u32>,
    #[serde(default)]
    pub trust_x_forwarded_for: bool,
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    #[serde(default = "defaults::header_read_timeout_seconds")]
    pub header_read_timeout_seconds: u64,
    #[serde(default = "defaults::idle_timeout_seconds")]
    pub idle_timeout_seconds: u64,
    #[serde(default = "defaults::body_read_timeout_seconds")]
    pub body_read_timeout_seconds: u64,
    #[serde(default = "defaults::max_body_memory_bytes")]
    pub max_body_memory_bytes: usize,
    #[serde(default = "defaults::max_headers")]
    pub max_headers: usize,
    #[serde(default = "defaults::linger_seconds")]
    pub linger_seconds: u64,
    #[serde(default = "defaults::linger_bytes")]
    pub linger_bytes: usize,
    #[serde(default)]
    pub http2_cleartext: bool,
    /// The tokens of `API_TOKENS` and `API_TOKENS_FILE`, as digests (filled by `from_vars`).
    #[serde(skip)]
    pub tokens: TokenSet,
}

mod defaults {
    use super::*;

    pub fn port() -> u16 {
        8080
    }
    pub fn bind_addr() -> IpAddr {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
    pub fn data_dir() -> PathBuf {
        PathBuf::from("./data")
    }
    pub fn storage() -> StorageKind {
        StorageKind::Embedded
    }
    pub fn max_body_bytes() -> usize {
        1024 * 1024
    }
    pub fn shutdown_grace_seconds() -> u64 {
        20
    }
    pub fn embedded_cache_bytes() -> usize {
        32 * 1024 * 1024
    }
    pub fn log_format() -> LogFormat {
        LogFormat::Text
    }
    pub fn dynamodb_timeout_ms() -> u64 {
        crate::storage::dynamodb::DEFAULT_TIMEOUT_MS
    }
    pub fn auth_failures_per_minute() -> u32 {
        20
    }
    pub fn max_connections() -> usize {
        4096
    }
    pub fn header_read_timeout_seconds() -> u64 {
        10
    }
    pub fn idle_timeout_seconds() -> u64 {
        75
    }
    pub fn body_read_timeout_seconds() -> u64 {
        30
    }
    pub fn max_body_memory_bytes() -> usize {
        128 * 1024 * 1024
    }
    pub fn max_headers() -> usize {
        128
    }
    pub fn linger_seconds() -> u64 {
        5
    }
    pub fn linger_bytes() -> usize {
        8 * 1024 * 1024
    }
}

/// Write requests a second per token when tokens are configured and no rate is set.
pub const DEFAULT_WRITES_PER_SECOND: u32 = 1000;
/// Read requests a second per token when tokens are configured and no rate is set.
pub const DEFAULT_READS_PER_SECOND: u32 = 100;

/// The variables [`Config`] reads, for error messages that name the culprit.
const VARIABLES: [&str; 31] = [
    "PORT",
    "BIND_ADDR",
    "DATA_DIR",
    "STORAGE",
    "TABLE_NAME",
    "MAX_BODY_BYTES",
    "SHUTDOWN_GRACE_SECONDS",
    "EMBEDDED_CACHE_BYTES",
    "LOG_FORMAT",
    "DYNAMODB_CREATE_TABLE",
    "DYNAMODB_TIMEOUT_MS",
    "DYNAMODB_ENDPOINT_URL",
    "API_TOKENS",
    "API_TOKENS_FILE",
    "REQUIRE_AUTH",
    "METRICS_TOKEN",
    "AUTH_FAILURES_PER_MINUTE",
    "RATE_LIMIT_WRITES_PER_SECOND",
    "RATE_LIMIT_WRITE_BURST",
    "RATE_LIMIT_READS_PER_SECOND",
    "RATE_LIMIT_READ_BURST",
    "TRUST_X_FORWARDED_FOR",
    "MAX_CONNECTIONS",
    "HEADER_READ_TIMEOUT_SECONDS",
    "IDLE_TIMEOUT_SECONDS",
    "BODY_READ_TIMEOUT_SECONDS",
    "MAX_BODY_MEMORY_BYTES",
    "MAX_HEADERS",
    "LINGER_SECONDS",
    "LINGER_BYTES",
    "HTTP2_CLEARTEXT",
];

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(std::env::vars())
    }

    /// Reads configuration from `(name, value)` pairs; the error is one line naming the variable.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, String> {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, _)| VARIABLES.contains(&name.as_str()))
            .collect();
        // Check one variable at a time, so the message can say which one is wrong.
        for (name, value) in &vars {
            if let Err(error) = envy::from_iter::<_, Config>([(name.clone(), value.clone())]) {
                if SECRET_VARIABLES.contains(&name.as_str()) {
                    return Err(format!("{name} is invalid"));
                }
                return Err(format!("{name}={value:?} is invalid: {error}"));
            }
        }
        let mut config: Config = envy::from_iter(vars).map_err(|e| e.to_string())?;
        config.tokens = TokenSet::load(
            config.api_tokens.as_ref().map(Secret::expose),
            config.api_tokens_file.as_deref(),
        )?;
        config.validate()?;
        Ok(config)
    }

    /// The digest `METRICS_TOKEN` names (a token, or `sha256:<64 hex>`).
    pub fn metrics_token_digest(&self) -> Result<Option<TokenDigest>, String> {
        self.metrics_token
            .as_ref()
            .map(|secret| {
                tokens::parse_secret(secret.expose()).map_err(|why| format!("METRICS_TOKEN: {why}"))
            })
            .transpose()
    }

    fn validate(&self) -> Result<(), String> {
        if self.storage == StorageKind::Dynamodb
            && self.table_name.as_deref().is_none_or(str::is_empty)
        {
            return Err("TABLE_NAME is required when STORAGE=dynamodb".into());
        }
        if self.max_body_bytes == 0 {
            return Err("MAX_BODY_BYTES must be greater than 0".into());
        }
        if self.require_auth && self.tokens.is_empty() {
            return Err(
                "REQUIRE_AUTH=true but no token is configured: set API_TOKENS or API_TOKENS_FILE"
                    .into(),
            );
        }
        self.metrics_token_digest()?;
        for (name, value) in [
            ("MAX_CONNECTIONS", self.max_connections as u64),
            (
                "HEADER_READ_TIMEOUT_SECONDS",
                self.header_read_timeout_seconds,
            ),
            ("IDLE_TIMEOUT_SECONDS", self.idle_timeout_seconds),
            ("BODY_READ_TIMEOUT_SECONDS", self.body_read_timeout_seconds),
            ("MAX_HEADERS", self.max_headers as u64),
        ] {
            if value == 0 {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        if self.max_body_memory_bytes < self.max_body_bytes {
            return Err("MAX_BODY_MEMORY_BYTES must be at least MAX_BODY_BYTES".into());
        }
        Ok(())
    }

    /// A configuration for tests: the embedded store in `data_dir`, on 127.0.0.1, any port.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            port: 0,
            bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            data_dir: data_dir.into(),
            storage: StorageKind::Embedded,
            table_name: None,
            max_body_bytes: defaults::max_body_bytes(),
            shutdown_grace_seconds: 5,
            embedded_cache_bytes: 4 * 1024 * 1024,
            log_format: LogFormat::Text,
            dynamodb_create_table: false,
            dynamodb_timeout_ms: defaults::dynamodb_timeout_ms(),
            dynamodb_endpoint_url: None,
            api_tokens: None,
            api_tokens_file: None,
            require_auth: false,
            metrics_token: None,
            auth_failures_per_minute: defaults::auth_failures_per_minute(),
            rate_limit_writes_per_second: None,
            rate_limit_write_burst: None,
            rate_limit_reads_per_second: None,
            rate_limit_read_burst: None,
            trust_x_forwarded_for: false,
            max_connections: defaults::max_connections(),
            header_read_timeout_seconds: defaults::header_read_timeout_seconds(),
            idle_timeout_seconds: defaults::idle_timeout_seconds(),
            body_read_timeout_seconds: defaults::body_read_timeout_seconds(),
            max_body_memory_bytes: defaults::max_body_memory_bytes(),
            max_headers: defaults::max_headers(),
            linger_seconds: defaults::linger_seconds(),
            linger_bytes: defaults::linger_bytes(),
            http2_cleartext: false,
            tokens: TokenSet::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_environment() {
        let config = Config::from_vars(vars(&[("HOME", "/root")])).unwrap();
        assert_eq!(config.port, 8080);
        assert_eq!(config.storage, StorageKind::Embedded);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.max_body_bytes, 1_048_576);
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn values_are_read() {
        let config = Config::from_vars(vars(&[
            ("PORT", "9000"),
            ("STORAGE", "dynamodb"),
            ("TABLE_NAME", "telemetry"),
            ("LOG_FORMAT", "json"),
            ("MAX_BODY_BYTES", "2048"),
        ]))
        .unwrap();
        assert_eq!(config.port, 9000);
        assert_eq!(config.storage, StorageKind::Dynamodb);
        assert_eq!(config.table_name.as_deref(), Some("telemetry"));
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.max_body_bytes, 2048);
    }

    #[test]
    fn a_bad_value_names_its_variable_on_one_line() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("STORAGE", "postgres"),
            ("LOG_FORMAT", "xml"),
            ("MAX_BODY_BYTES", "-1"),
            ("BIND_ADDR", "localhost:80"),
        ] {
            let error = Config::from_vars(vars(&[(name, value)])).unwrap_err();
            assert!(error.starts_with(name), "{error:?} should name {name}");
            assert!(!error.contains('\n'), "{error:?} should be one line");
        }
    }

    #[test]
    fn dynamodb_settings_are_read() {
        let config = Config::from_vars(vars(&[
            ("STORAGE", "dynamodb"),
            ("TABLE_NAME", "t"),
            ("DYNAMODB_CREATE_TABLE", "true"),
            ("DYNAMODB_TIMEOUT_MS", "1500"),
            ("DYNAMODB_ENDPOINT_URL", "http://127.0.0.1:8000"),
        ]))
        .unwrap();
        assert!(config.dynamodb_create_table);
        assert_eq!(config.dynamodb_timeout_ms, 1500);
        assert_eq!(
            config.dynamodb_endpoint_url.as_deref(),
            Some("http://127.0.0.1:8000")
        );
        let defaults = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(defaults.dynamodb_timeout_ms, 5_000);
        assert!(!defaults.dynamodb_create_table);
        let error = Config::from_vars(vars(&[("DYNAMODB_TIMEOUT_MS", "soon")])).unwrap_err();
        assert!(error.starts_with("DYNAMODB_TIMEOUT_MS"), "{error}");
    }

    #[test]
    fn tokens_are_read_from_the_list_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "# fleet\nwrite:fleet-token-0123456789\n").unwrap();
        let config = Config::from_vars(vars(&[
            ("API_TOKENS", "read:dash-token-0123456789"),
            ("API_TOKENS_FILE", file.to_str().unwrap()),
            ("REQUIRE_AUTH", "true"),
        ]))
        .unwrap();
        assert_eq!(config.tokens.len(), 2);
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("dash-token"),
            "Debug leaks a token: {shown}"
        );
    }

    #[test]
    fn require_auth_without_tokens_is_one_line_and_bad_tokens_are_not_repeated() {
        let error = Config::from_vars(vars(&[("REQUIRE_AUTH", "true")])).unwrap_err();
        assert!(error.starts_with("REQUIRE_AUTH"), "{error}");
        assert!(!error.contains('\n'));
        let error = Config::from_vars(vars(&[("API_TOKENS", "read:tiny-secret")])).unwrap_err();
        assert!(!error.contains("tiny-secret"), "{error}");
        let error = Config::from_vars(vars(&[("METRICS_TOKEN", "tiny-secret")])).unwrap_err();
        assert!(
            error.starts_with("METRICS_TOKEN") && !error.contains("tiny-secret"),
            "{error}"
        );
    }

    #[test]
    fn connection_limits_are_read_and_must_be_positive() {
        let config = Config::from_vars(vars(&[
            ("MAX_CONNECTIONS", "10"),
            ("HEADER_READ_TIMEOUT_SECONDS", "2"),
            ("HTTP2_CLEARTEXT", "true"),
        ]))
        .unwrap();
        assert_eq!(config.max_connections, 10);
        assert_eq!(config.header_read_timeout_seconds, 2);
        assert!(config.http2_cleartext);
        let defaults = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(defaults.idle_timeout_seconds, 75);
        assert!(!defaults.http2_cleartext);
        let error = Config::from_vars(vars(&[("IDLE_TIMEOUT_SECONDS", "0")])).unwrap_err();
        assert!(error.starts_with("IDLE_TIMEOUT_SECONDS"), "{error}");
    }

    #[test]
    fn dynamodb_needs_a_table_name() {
        let error = Config::from_vars(vars(&[("STORAGE", "dynamodb")])).unwrap_err();
        assert!(error.contains("TABLE_NAME"), "{error}");
    }
}
