//! Building and running the service: `Application::build(config)` binds the listener and opens
//! storage; `run_until(shutdown)` serves until the shutdown future resolves, then drains.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::{Config, StorageKind};
use crate::data_dir::{self, DataDirError, DataDirLock};
use crate::metrics::Metrics;
use crate::routes;
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
}

pub struct Application {
    listener: TcpListener,
    storage: Storage,
    metrics: Metrics,
    config: Config,
    /// Embedded store: `DATA_DIR` stays locked to this process until the app is dropped.
    _data_dir_lock: Option<DataDirLock>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let metrics = Metrics::new();
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

    /// Serves until `shutdown` resolves; then stops accepting, lets in-flight requests finish
    /// (at most `SHUTDOWN_GRACE_SECONDS`) and returns. Every acknowledged write was committed
    /// durably before its answer, so nothing is left to flush.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let grace = Duration::from_secs(self.config.shutdown_grace_seconds);
        let line_protocol = routes::write_lp::LineProtocolSettings {
            schema: self.config.line_schema(),
            max_body_bytes: self.config.max_lp_body_bytes,
        };
        let routes = routes::all(
            self.storage,
            self.metrics,
            self.config.max_body_bytes,
            line_protocol,
        );
        let (draining, drain_started) = oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutdown requested: draining in-flight requests");
            let _ = draining.send(());
        };
        let server = warp::serve(routes)
            .incoming(self.listener)
            .graceful(signal)
            .run();
        let deadline = async move {
            if drain_started.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = server => tracing::info!("all connections drained"),
            () = deadline => tracing::warn!(?grace, "drain deadline passed; closing remaining connections"),
        }
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
            EmbeddedStore::open(&config.data_dir, config.embedded_cache_bytes, on_group)
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
    Ok(Storage::new(backend, metrics.clone()))
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
    }
}
