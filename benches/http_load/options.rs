//! Command-line and environment options of the HTTP load benchmark.

use crate::server::Backend;

#[derive(Debug, Clone)]
pub struct Options {
    /// Measured seconds per scenario (`BENCH_SECONDS`, `--seconds N`, `--long` = 30).
    pub seconds: f64,
    /// Discarded warm-up before each scenario.
    pub warmup: f64,
    /// Request cap per scenario (`BENCH_MAX_REQUESTS`).
    pub max_requests: u64,
    /// Worker threads of the load generator's runtime (`BENCH_CLIENT_THREADS`).
    pub client_threads: usize,
    /// The server's `RUST_LOG` (`BENCH_SERVER_LOG`).
    pub server_log: String,
    /// Only scenarios whose name contains this text run.
    pub filter: Option<String>,
    /// `--peers`: the comparison with InfluxDB and VictoriaMetrics instead of the scenarios.
    pub peers: bool,
    /// `--flood`: the open-loop flood at twice the capacity instead of the scenarios.
    pub flood: bool,
}

impl Options {
    pub fn parse() -> Self {
        let env_f64 = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
        let mut seconds = env_f64("BENCH_SECONDS").unwrap_or(5.0);
        let mut filter = None;
        let mut peers = false;
        let mut flood = false;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--long" => seconds = 30.0,
                "--peers" => peers = true,
                "--flood" => flood = true,
                "--seconds" => {
                    seconds = args
                        .next()
                        .and_then(|v| v.parse().ok())
                        .expect("--seconds needs a number")
                }
                // `cargo bench` passes `--bench`; ignore it and other harness flags.
                flag if flag.starts_with('-') => {}
                name => filter = Some(name.to_owned()),
            }
        }
        Self {
            seconds,
            warmup: (seconds / 5.0).clamp(0.5, 3.0),
            max_requests: env_f64("BENCH_MAX_REQUESTS").map_or(2_000_000, |v| v as u64),
            client_threads: env_f64("BENCH_CLIENT_THREADS").map_or(2, |v| v as usize),
            server_log: std::env::var("BENCH_SERVER_LOG")
                .unwrap_or_else(|_| "warn,telemetry=info,telemetry::http=warn".into()),
            filter,
            peers,
            flood,
        }
    }

    pub fn wants(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
    }

    /// Filter on `<backend> <scenario>` for every backend but the default one: `-- dynamodb`
    /// runs only the DynamoDB scenarios.
    pub fn wants_on(&self, backend: &Backend, name: &str) -> bool {
        match backend {
            Backend::Embedded => self.wants(name),
            Backend::Dynamodb { .. } => self.wants(&format!("dynamodb {name}")),
        }
    }

    /// The load generator's runtime.
    pub fn client_runtime(&self) -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.client_threads)
            .enable_all()
            .build()
            .expect("runtime")
    }
}
