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
//! | `MAX_BODY_BYTES` | `1048576` | largest accepted request body (JSON routes; after decoding gzip/deflate too) |
//! | `MAX_LP_BODY_BYTES` | `10485760` | largest line protocol body, on the wire and after decoding |
//! | `LP_MEASUREMENT` | `temperature` | the line protocol measurement whose lines are readings |
//! | `LP_SENSOR_TAGS` | `sensorID,sensor_id,sensor` | tags naming the sensor, the first present wins |
//! | `LP_FIELDS` | `value,temperature` | fields holding the temperature, the first present wins |
//! | `SHUTDOWN_GRACE_SECONDS` | `20` | how long in-flight requests may take to drain on SIGTERM |
//! | `EMBEDDED_CACHE_BYTES` | `33554432` | page cache of the embedded database |
//! | `LOG_FORMAT` | `text` | `text` or `json` (one JSON object per line, for CloudWatch) |
//! | `RUST_LOG` | `info` | log filter (`tracing_subscriber::EnvFilter` syntax) |

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::Deserialize;

use crate::domain::line_batch::LineSchema;

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
    #[serde(default = "defaults::max_lp_body_bytes")]
    pub max_lp_body_bytes: usize,
    #[serde(default = "defaults::lp_measurement")]
    pub lp_measurement: String,
    #[serde(default = "defaults::lp_sensor_tags")]
    pub lp_sensor_tags: Vec<String>,
    #[serde(default = "defaults::lp_fields")]
    pub lp_fields: Vec<String>,
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
    pub fn max_lp_body_bytes() -> usize {
        10 * 1024 * 1024
    }
    pub fn lp_measurement() -> String {
        LineSchema::default().measurement
    }
    pub fn lp_sensor_tags() -> Vec<String> {
        LineSchema::default().sensor_tags
    }
    pub fn lp_fields() -> Vec<String> {
        LineSchema::default().fields
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
}

/// The variables [`Config`] reads, for error messages that name the culprit.
const VARIABLES: [&str; 16] = [
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
    "MAX_LP_BODY_BYTES",
    "LP_MEASUREMENT",
    "LP_SENSOR_TAGS",
    "LP_FIELDS",
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
                return Err(format!("{name}={value:?} is invalid: {error}"));
            }
        }
        let config: Config = envy::from_iter(vars).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
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
        Ok(())
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
        Self {
            port: 0,
            bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            data_dir: data_dir.into(),
            storage: StorageKind::Embedded,
            table_name: None,
            max_body_bytes: defaults::max_body_bytes(),
            max_lp_body_bytes: defaults::max_lp_body_bytes(),
            lp_measurement: defaults::lp_measurement(),
            lp_sensor_tags: defaults::lp_sensor_tags(),
            lp_fields: defaults::lp_fields(),
            shutdown_grace_seconds: 5,
            embedded_cache_bytes: 4 * 1024 * 1024,
            log_format: LogFormat::Text,
            dynamodb_create_table: false,
            dynamodb_timeout_ms: defaults::dynamodb_timeout_ms(),
            dynamodb_endpoint_url: None,
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
    fn dynamodb_needs_a_table_name() {
        let error = Config::from_vars(vars(&[("STORAGE", "dynamodb")])).unwrap_err();
        assert!(error.contains("TABLE_NAME"), "{error}");
    }
}
