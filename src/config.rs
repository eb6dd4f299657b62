//! Configuration from the environment (12-factor), read once at start-up with `envy`.
//!
//! [`VARIABLES`] is the one list of the service's settings: each variable's name, its default
//! and its meaning. The parser takes its defaults from it (a variable left unset is read as if
//! it held the table's default, through the same parser), and `telemetry --help` prints it, so
//! the help, the defaults and the parser cannot disagree. A unit test checks that every
//! [`Config`] field has a row.
//!
//! **Adding a setting**: add the field to [`Config`] (`Option<T>` when it has no default) and
//! one [`Variable`] row to [`VARIABLES`] named after the field in upper case; write its
//! `default` as the text a user would set (it is parsed like one). Variables read elsewhere
//! (`RUST_LOG`, read by the logger) get a row too, and are listed in the test's
//! `READ_OUTSIDE_CONFIG`. Then add the row to README.md's configuration table.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::auth::{TokenDigest, TokenSet, tokens};
use crate::domain::line_batch::LineSchema;
use crate::domain::retention::{Period, Retention};

/// A secret from the environment: never shown by `Debug`, serialised or repeated in an error
/// message.
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

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

/// Variables whose values are secrets, so messages never repeat them.
const SECRET_VARIABLES: [&str; 2] = ["API_TOKENS", "METRICS_TOKEN"];

/// Write requests a second per token when tokens are configured and no rate is set.
pub const DEFAULT_WRITES_PER_SECOND: u32 = 1000;
/// Read requests a second per token when tokens are configured and no rate is set.
pub const DEFAULT_READS_PER_SECOND: u32 = 100;

/// One environment variable the service reads.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    /// The value used when the variable is unset, written as a user would set it; `None` when
    /// unset means "not configured".
    pub default: Option<&'static str>,
    /// One line for `--help`.
    pub meaning: &'static str,
}

/// Every variable the service reads, in the order `--help` shows them.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "PORT",
        default: Some("8080"),
        meaning: "TCP port to listen on (0: any free port)",
    },
    Variable {
        name: "BIND_ADDR",
        default: Some("127.0.0.1"),
        meaning: "address to listen on; 0.0.0.0 for every interface (the container image sets it)",
    },
    Variable {
        name: "STORAGE",
        default: Some("embedded"),
        meaning: "embedded (a database in DATA_DIR) or dynamodb",
    },
    Variable {
        name: "DATA_DIR",
        default: Some("./data"),
        meaning: "directory of the embedded database (created when missing)",
    },
    Variable {
        name: "EMBEDDED_CACHE_BYTES",
        default: Some("67108864"),
        meaning: "page cache of the embedded database",
    },
    Variable {
        name: "RECOVERY_ALLOW_EMPTY_DATABASE",
        default: Some("false"),
        meaning: "true: start although the embedded database file is missing or empty while its log holds records (else exit 2)",
    },
    Variable {
        name: "RECOVERY_TRUNCATE_LOG",
        default: Some("false"),
        meaning: "true: replay the embedded log up to a damaged record and drop the newer records after it (else exit 2)",
    },
    Variable {
        name: "TABLE_NAME",
        default: None,
        meaning: "the DynamoDB table; required with STORAGE=dynamodb",
    },
    Variable {
        name: "DYNAMODB_CREATE_TABLE",
        default: Some("false"),
        meaning: "create the DynamoDB table when missing (local runs; Terraform owns it on AWS)",
    },
    Variable {
        name: "DYNAMODB_TIMEOUT_MS",
        default: Some("5000"),
        meaning: "DynamoDB operation timeout, retries included; past it a request answers 503",
    },
    Variable {
        name: "DYNAMODB_ENDPOINT_URL",
        default: None,
        meaning: "DynamoDB endpoint for this service only (else AWS_ENDPOINT_URL, else AWS)",
    },
    Variable {
        name: "RETENTION_RAW",
        default: Some("forever"),
        meaning: "how long readings are kept (30d, 12h, 90s, or forever); older ones are deleted, and refused with 422",
    },
    Variable {
        name: "RETENTION_SECOND",
        default: Some("forever"),
        meaning: "how long the all-sensor one-second rollups are kept (at least RETENTION_RAW)",
    },
    Variable {
        name: "RETENTION_MINUTE",
        default: Some("forever"),
        meaning: "how long the one-minute rollups are kept (at least RETENTION_SECOND)",
    },
    Variable {
        name: "RETENTION_HOUR",
        default: Some("forever"),
        meaning: "how long the one-hour rollups are kept (at least RETENTION_MINUTE)",
    },
    Variable {
        name: "RETENTION_DAY",
        default: Some("forever"),
        meaning: "how long the one-day rollups are kept (at least RETENTION_HOUR)",
    },
    Variable {
        name: "FUTURE_MARGIN",
        default: Some("5m"),
        meaning: "readings more than this ahead of the server's clock are refused with 422 (forever: no limit)",
    },
    Variable {
        name: "MAX_BODY_BYTES",
        default: Some("1048576"),
        meaning: "largest accepted JSON request body, on the wire and after gzip/deflate decoding; larger is 413",
    },
    Variable {
        name: "MAX_LP_BODY_BYTES",
        default: Some("10485760"),
        meaning: "largest line protocol body (/api/v2/write, /write), on the wire and decoded; larger is 413",
    },
    Variable {
        name: "LP_MEASUREMENT",
        default: Some("temperature"),
        meaning: "the line protocol measurement whose lines are readings; other lines are ignored",
    },
    Variable {
        name: "LP_SENSOR_TAGS",
        default: Some("sensorID,sensor_id,sensor"),
        meaning: "line protocol tags naming the sensor, comma-separated; the first present wins",
    },
    Variable {
        name: "LP_FIELDS",
        default: Some("value,temperature"),
        meaning: "line protocol fields holding the temperature, comma-separated; the first present wins",
    },
    Variable {
        name: "SHUTDOWN_GRACE_SECONDS",
        default: Some("20"),
        meaning: "on SIGTERM/ctrl-c, how long in-flight requests may take to finish",
    },
    Variable {
        name: "LOG_FORMAT",
        default: Some("text"),
        meaning: "text, or json (one object per line, for CloudWatch)",
    },
    Variable {
        name: "RUST_LOG",
        default: Some("info"),
        meaning: "log filter, e.g. info,telemetry=debug",
    },
    Variable {
        name: "API_TOKENS",
        default: None,
        meaning: "scope:token entries, comma-separated (read, write, admin; scope:sha256:<64 hex> for a hashed token); none: the service is open",
    },
    Variable {
        name: "API_TOKENS_FILE",
        default: None,
        meaning: "a file of the same entries, one a line, # comments",
    },
    Variable {
        name: "REQUIRE_AUTH",
        default: Some("false"),
        meaning: "true: refuse to start (exit 2) when no token is configured",
    },
    Variable {
        name: "METRICS_TOKEN",
        default: None,
        meaning: "when set, GET /metrics needs it (or an admin token) as a Bearer token",
    },
    Variable {
        name: "AUTH_FAILURES_PER_MINUTE",
        default: Some("20"),
        meaning: "failed authentications a client address may make a minute before it gets 429 (0: no limit)",
    },
    Variable {
        name: "RATE_LIMIT_WRITES_PER_SECOND",
        default: None,
        meaning: "write requests a second per token (1000 when tokens are set), or per client address in open mode (none unless set); 0: no limit",
    },
    Variable {
        name: "RATE_LIMIT_WRITE_BURST",
        default: None,
        meaning: "write requests a token may send at once (twice the rate unless set)",
    },
    Variable {
        name: "RATE_LIMIT_READS_PER_SECOND",
        default: None,
        meaning: "read requests a second per token (100 when tokens are set), or per client address in open mode (none unless set); 0: no limit",
    },
    Variable {
        name: "RATE_LIMIT_READ_BURST",
        default: None,
        meaning: "read requests a token may send at once (twice the rate unless set)",
    },
    Variable {
        name: "TRUST_X_FORWARDED_FOR",
        default: Some("false"),
        meaning: "take the client address from the last X-Forwarded-For entry (only behind a proxy such as the ALB)",
    },
    Variable {
        name: "MAX_CONNECTIONS",
        default: Some("4096"),
        meaning: "open connections at most; more wait in the listen backlog",
    },
    Variable {
        name: "HEADER_READ_TIMEOUT_SECONDS",
        default: Some("10"),
        meaning: "time to send a request head, from connecting or from its first byte",
    },
    Variable {
        name: "IDLE_TIMEOUT_SECONDS",
        default: Some("75"),
        meaning: "a keep-alive connection without a request is closed after this (keep it above the ALB's 60 s)",
    },
    Variable {
        name: "BODY_READ_TIMEOUT_SECONDS",
        default: Some("30"),
        meaning: "time to send a whole request body; past it 408",
    },
    Variable {
        name: "MAX_BODY_MEMORY_BYTES",
        default: Some("134217728"),
        meaning: "request body bytes held by all requests at once; past it 503 (at least MAX_BODY_BYTES)",
    },
    Variable {
        name: "MAX_HEADERS",
        default: Some("128"),
        meaning: "header lines a request may have; more is 431",
    },
    Variable {
        name: "LINGER_SECONDS",
        default: Some("5"),
        meaning: "after an early answer (413...), how long an unread request body is read and discarded",
    },
    Variable {
        name: "LINGER_BYTES",
        default: Some("8388608"),
        meaning: "the most bytes of an unread request body read and discarded so",
    },
    Variable {
        name: "PICUS_LIST_MAX_BYTES",
        default: Some("1048576"),
        meaning: "item text in one /picus/list page at most (past its first item); the Link header continues",
    },
    Variable {
        name: "HTTP2_CLEARTEXT",
        default: Some("false"),
        meaning: "also serve HTTP/2 without TLS (prior knowledge), 32 streams a connection",
    },
];

/// The row of `name`, if the service reads it.
pub fn variable(name: &str) -> Option<&'static Variable> {
    VARIABLES.iter().find(|variable| variable.name == name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    Embedded,
    Dynamodb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The settings, one field per row of [`VARIABLES`] (defaults come from there, not from here).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub port: u16,
    pub bind_addr: IpAddr,
    pub data_dir: PathBuf,
    pub storage: StorageKind,
    #[serde(default)]
    pub table_name: Option<String>,
    pub retention_raw: Period,
    pub retention_second: Period,
    pub retention_minute: Period,
    pub retention_hour: Period,
    pub retention_day: Period,
    pub future_margin: Period,
    pub max_body_bytes: usize,
    pub max_lp_body_bytes: usize,
    pub lp_measurement: String,
    pub lp_sensor_tags: Vec<String>,
    pub lp_fields: Vec<String>,
    pub shutdown_grace_seconds: u64,
    pub embedded_cache_bytes: usize,
    pub recovery_allow_empty_database: bool,
    pub recovery_truncate_log: bool,
    pub log_format: LogFormat,
    pub dynamodb_create_table: bool,
    pub dynamodb_timeout_ms: u64,
    #[serde(default)]
    pub dynamodb_endpoint_url: Option<String>,
    #[serde(default)]
    pub api_tokens: Option<Secret>,
    #[serde(default)]
    pub api_tokens_file: Option<PathBuf>,
    pub require_auth: bool,
    #[serde(default)]
    pub metrics_token: Option<Secret>,
    pub auth_failures_per_minute: u32,
    #[serde(default)]
    pub rate_limit_writes_per_second: Option<u32>,
    #[serde(default)]
    pub rate_limit_write_burst: Option<u32>,
    #[serde(default)]
    pub rate_limit_reads_per_second: Option<u32>,
    #[serde(default)]
    pub rate_limit_read_burst: Option<u32>,
    pub trust_x_forwarded_for: bool,
    pub max_connections: usize,
    pub header_read_timeout_seconds: u64,
    pub idle_timeout_seconds: u64,
    pub body_read_timeout_seconds: u64,
    pub max_body_memory_bytes: usize,
    pub max_headers: usize,
    pub linger_seconds: u64,
    pub linger_bytes: usize,
    pub http2_cleartext: bool,
    pub picus_list_max_bytes: usize,
    /// The tokens of `API_TOKENS` and `API_TOKENS_FILE`, as digests (filled by `from_vars`).
    #[serde(skip)]
    pub tokens: TokenSet,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(std::env::vars())
    }

    /// Reads configuration from `(name, value)` pairs; unset variables take their
    /// [`VARIABLES`] default. The error is one line naming the variable.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, String> {
        let set: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, _)| variable(name).is_some())
            .collect();
        let defaults: Vec<(String, String)> = VARIABLES
            .iter()
            .filter(|variable| !set.iter().any(|(name, _)| name == variable.name))
            .filter_map(|variable| Some((variable.name.to_owned(), variable.default?.to_owned())))
            .collect();
        // Check one set variable at a time (the others at their defaults), so the message can
        // say which one is wrong.
        for (name, value) in &set {
            let alone = VARIABLES
                .iter()
                .filter(|variable| variable.name != name)
                .filter_map(|variable| {
                    Some((variable.name.to_owned(), variable.default?.to_owned()))
                })
                .chain([(name.clone(), value.clone())]);
            if let Err(error) = envy::from_iter::<_, Config>(alone) {
                if SECRET_VARIABLES.contains(&name.as_str()) {
                    return Err(format!("{name} is invalid"));
                }
                return Err(format!("{name}={value:?} is invalid: {error}"));
            }
        }
        let mut config: Config = envy::from_iter(set.into_iter().chain(defaults))
            .map_err(|e| format!("the configuration is invalid: {e}"))?;
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
        if self.max_lp_body_bytes == 0 {
            return Err("MAX_LP_BODY_BYTES must be greater than 0".into());
        }
        if self.lp_measurement.is_empty() {
            return Err("LP_MEASUREMENT must not be empty".into());
        }
        for (name, list) in [
            ("LP_SENSOR_TAGS", &self.lp_sensor_tags),
            ("LP_FIELDS", &self.lp_fields),
        ] {
            if list.is_empty() || list.iter().any(String::is_empty) {
                return Err(format!(
                    "{name} must be a comma-separated list of non-empty names"
                ));
            }
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
            ("PICUS_LIST_MAX_BYTES", self.picus_list_max_bytes as u64),
        ] {
            if value == 0 {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        if self.max_body_memory_bytes < self.max_body_bytes {
            return Err("MAX_BODY_MEMORY_BYTES must be at least MAX_BODY_BYTES".into());
        }
        self.retention().validate()
    }

    /// How long data is kept and how far ahead a reading may be (`RETENTION_*`, `FUTURE_MARGIN`).
    pub fn retention(&self) -> Retention {
        Retention {
            raw: self.retention_raw,
            second: self.retention_second,
            minute: self.retention_minute,
            hour: self.retention_hour,
            day: self.retention_day,
            future_margin: self.future_margin,
        }
    }

    /// Which line protocol lines are readings, and where their sensor and temperature are.
    pub fn line_schema(&self) -> LineSchema {
        LineSchema {
            measurement: self.lp_measurement.clone(),
            sensor_tags: self.lp_sensor_tags.clone(),
            fields: self.lp_fields.clone(),
        }
    }

    /// A configuration for tests: the embedded store in `data_dir`, on 127.0.0.1, any port.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        let defaults = Self::from_vars([]).expect("the defaults are valid");
        Self {
            port: 0,
            bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            data_dir: data_dir.into(),
            shutdown_grace_seconds: 5,
            embedded_cache_bytes: 4 * 1024 * 1024,
            ..defaults
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

    /// Variables with a row in [`VARIABLES`] that another module reads, not [`Config`].
    const READ_OUTSIDE_CONFIG: [&str; 1] = ["RUST_LOG"];

    #[test]
    fn every_config_field_has_a_row_and_every_row_a_reader() {
        let config = serde_json::to_value(Config::from_vars(vars(&[])).unwrap()).unwrap();
        let fields: Vec<String> = config
            .as_object()
            .unwrap()
            .keys()
            .map(|field| field.to_uppercase())
            .collect();
        for field in &fields {
            assert!(variable(field).is_some(), "{field} has no row in VARIABLES");
        }
        for row in VARIABLES {
            assert!(
                fields.iter().any(|field| field == row.name)
                    || READ_OUTSIDE_CONFIG.contains(&row.name),
                "{} is documented but nothing reads it",
                row.name
            );
            assert!(!row.meaning.is_empty() && !row.meaning.contains('\n'));
        }
    }

    #[test]
    fn the_documented_defaults_are_the_ones_used() {
        let config = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(config.bind_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.dynamodb_timeout_ms, 5_000);
        assert_eq!(config.embedded_cache_bytes, 64 * 1024 * 1024);
        assert_eq!(config.shutdown_grace_seconds, 20);
        assert_eq!(config.table_name, None);
    }

    #[test]
    fn line_protocol_settings_are_read() {
        let defaults = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(defaults.line_schema(), LineSchema::default());
        assert_eq!(defaults.max_lp_body_bytes, 10 * 1024 * 1024);
        let config = Config::from_vars(vars(&[
            ("LP_MEASUREMENT", "climate"),
            ("LP_SENSOR_TAGS", "device,host"),
            ("LP_FIELDS", "celsius"),
            ("MAX_LP_BODY_BYTES", "4096"),
        ]))
        .unwrap();
        let schema = config.line_schema();
        assert_eq!(schema.measurement, "climate");
        assert_eq!(schema.sensor_tags, ["device", "host"]);
        assert_eq!(schema.fields, ["celsius"]);
        assert_eq!(config.max_lp_body_bytes, 4096);
        for (name, value) in [
            ("LP_FIELDS", "a,,b"),
            ("LP_MEASUREMENT", ""),
            ("MAX_LP_BODY_BYTES", "0"),
        ] {
            let error = Config::from_vars(vars(&[(name, value)])).unwrap_err();
            assert!(error.contains(name), "{error}");
        }
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
    fn retention_settings_are_read_and_checked() {
        let defaults = Config::from_vars(vars(&[])).unwrap().retention();
        assert!(!defaults.deletes_anything());
        assert_eq!(defaults.future_margin, Period::parse("5m").unwrap());
        let config = Config::from_vars(vars(&[
            ("RETENTION_RAW", "90s"),
            ("RETENTION_SECOND", "1d"),
            ("RETENTION_MINUTE", "90d"),
            ("FUTURE_MARGIN", "10m"),
        ]))
        .unwrap();
        let retention = config.retention();
        assert_eq!(retention.raw, Period::seconds(90));
        assert_eq!(retention.minute, Period::parse("90d").unwrap());
        assert_eq!(retention.second, Period::parse("1d").unwrap());
        assert_eq!(retention.hour, Period::FOREVER);
        let error = Config::from_vars(vars(&[("RETENTION_RAW", "soon")])).unwrap_err();
        assert!(error.starts_with("RETENTION_RAW"), "{error}");
        let error = Config::from_vars(vars(&[("RETENTION_HOUR", "1d")])).unwrap_err();
        assert!(error.starts_with("RETENTION_HOUR=1d"), "{error}");
    }

    #[test]
    fn dynamodb_needs_a_table_name() {
        let error = Config::from_vars(vars(&[("STORAGE", "dynamodb")])).unwrap_err();
        assert!(error.contains("TABLE_NAME"), "{error}");
    }
}
