//! Building and running the service: `Application::build(config)` binds the listener and opens
//! storage; `run_until(shutdown)` serves until the shutdown future resolves, then drains.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::auth::rate::Rate;
use crate::auth::{self, Access};
use crate::config::{Config, DEFAULT_READS_PER_SECOND, DEFAULT_WRITES_PER_SECOND, StorageKind};
use crate::data_dir::{self, DataDirError, DataDirLock};
use crate::metrics::Metrics;
use crate::routes;
use crate::server::{self, connection::Linger};
use crate::storage::embedded::RecoveryOptions;
use crate::storage::{Backend, DynamoSettings, DynamoStore, EmbeddedStore, Storage, StorageError};

/// Why the service could not start: one line naming the variable or resource at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("PORT {} is already in use (BIND_ADDR={})", addr.port(), addr.ip())]
    PortInUse { addr: SocketAddr },
    #[error("BIND_ADDR={} PORT={}: cannot listen: {source}", addr.ip(), addr.port())]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("STORAGE={backend}: cannot open the store: {source}")]
    Storage {
        backend: &'static str,
        source: StorageError,
    },
    #[error("{0}")]
    Config(String),
}

pub struct Application {
    listener: TcpListener,
    storage: Storage,
    metrics: Metrics,
    access: Arc<Access>,
    config: Config,
    /// Embedded store: `DATA_DIR` stays locked to this process until the app is dropped.
    _data_dir_lock: Option<DataDirLock>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let metrics = Metrics::new();
        let access = Arc::new(Access::new(
            access_settings(&config).map_err(StartupError::Config)?,
            metrics.clone(),
        ));
        if config.tokens.is_empty() {
            tracing::warn!(
                "no API token is configured: every route is open to anyone who can reach this \
                 port (set API_TOKENS, and REQUIRE_AUTH=true where the service is deployed)"
            );
        }
        let data_dir_lock = match config.storage {
            StorageKind::Embedded => Some(data_dir::lock(&config.data_dir)?),
            StorageKind::Dynamodb => None,
        };
        let storage = open_storage(&config, &metrics).await?;
        let addr = SocketAddr::new(config.bind_addr, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AddrInUse => StartupError::PortInUse { addr },
                _ => StartupError::Bind { addr, source },
            })?;
        Ok(Self {
            listener,
            storage,
            metrics,
            access,
            config,
            _data_dir_lock: data_dir_lock,
        })
    }

    /// The address actually bound (useful with `PORT=0`).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The port actually bound (useful with `PORT=0`).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// `"on"` when API tokens are configured, `"off"` when every route is open.
    pub fn access_mode(&self) -> &'static str {
        self.access.mode()
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets in-flight requests finish
    /// (at most `SHUTDOWN_GRACE_SECONDS`) and returns. Every acknowledged write was committed
    /// durably before its answer, so nothing is left to flush.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let grace = Duration::from_secs(self.config.shutdown_grace_seconds);
        let limits = server_limits(&self.config);
        let line_protocol = routes::write_lp::LineProtocolSettings {
            schema: self.config.line_schema(),
            max_body_bytes: self.config.max_lp_body_bytes,
            retention: self.config.retention(),
        };
        let routes = routes::all(
            self.storage,
            self.metrics.clone(),
            self.access,
            self.config.max_body_bytes,
            line_protocol,
            self.config.picus_list_max_bytes,
        );
        server::serve(self.listener, routes, limits, self.metrics, shutdown, grace).await;
    }
}

/// The access policy's settings. Rate limits apply per token by default once tokens are
/// configured; in open mode, per client address, only when a rate is set.
pub fn access_settings(config: &Config) -> Result<auth::Settings, String> {
    let with_tokens = !config.tokens.is_empty();
    let rate = |per_second: Option<u32>, burst: Option<u32>, default: u32| {
        let per_second = per_second.or(with_tokens.then_some(default))?;
        Some(Rate {
            per_second,
            burst: burst.unwrap_or(per_second.saturating_mul(2)),
        })
    };
    Ok(auth::Settings {
        tokens: config.tokens.clone(),
        metrics_token: config.metrics_token_digest()?,
        failures_per_minute: config.auth_failures_per_minute,
        read: rate(
            config.rate_limit_reads_per_second,
            config.rate_limit_read_burst,
            DEFAULT_READS_PER_SECOND,
        ),
        write: rate(
            config.rate_limit_writes_per_second,
            config.rate_limit_write_burst,
            DEFAULT_WRITES_PER_SECOND,
        ),
        trust_forwarded_for: config.trust_x_forwarded_for,
    })
}

fn server_limits(config: &Config) -> server::Limits {
    server::Limits {
        max_connections: config.max_connections,
        header_read_timeout: Duration::from_secs(config.header_read_timeout_seconds),
        idle_timeout: Duration::from_secs(config.idle_timeout_seconds),
        body_read_timeout: Duration::from_secs(config.body_read_timeout_seconds),
        max_body_memory: config.max_body_memory_bytes,
        max_headers: config.max_headers,
        linger: Linger {
            time: Duration::from_secs(config.linger_seconds),
            bytes: config.linger_bytes,
        },
        http2_cleartext: config.http2_cleartext,
    }
}

async fn open_storage(config: &Config, metrics: &Metrics) -> Result<Storage, StartupError> {
    let observer = metrics.clone();
    let backend_name = match config.storage {
        StorageKind::Embedded => "embedded",
        StorageKind::Dynamodb => "dynamodb",
    };
    metrics.declare_storage_errors(backend_name);
    let on_group = Box::new(move |writes| observer.observe_group(backend_name, writes));
    let backend = match config.storage {
        StorageKind::Embedded => {
            let recovery = RecoveryOptions {
                allow_empty_database: config.recovery_allow_empty_database,
                truncate_log: config.recovery_truncate_log,
            };
            EmbeddedStore::open_recovering(
                &config.data_dir,
                config.embedded_cache_bytes,
                on_group,
                recovery,
            )
            .map(Backend::Embedded)
        }
        // Boxed: the SDK's set-up future is large; inline, it would sit on the caller's stack.
        StorageKind::Dynamodb => Box::pin(DynamoStore::open(&dynamodb_settings(config), on_group))
            .await
            .map(Backend::Dynamodb),
    }
    .map_err(|source| StartupError::Storage {
        backend: backend_name,
        source,
    })?;
    Storage::new(backend, metrics.clone())
        .with_retention(config.retention())
        .map_err(|source| StartupError::Storage {
            backend: backend_name,
            source,
        })
}

/// The DynamoDB store's settings, from the configuration.
pub fn dynamodb_settings(config: &Config) -> DynamoSettings {
    DynamoSettings {
        table: config.table_name.clone().unwrap_or_default(),
        create_table: config.dynamodb_create_table,
        timeout: Duration::from_millis(config.dynamodb_timeout_ms),
        endpoint_url: config
            .dynamodb_endpoint_url
            .clone()
            .filter(|url| !url.is_empty()),
        retention_raw: config.retention_raw,
        retention: config.retention(),
    }
}
