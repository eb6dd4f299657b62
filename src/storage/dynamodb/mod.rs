//! The DynamoDB backend: the same contract as the embedded store, for many instances writing one
//! table at once. The table design (keys and every item shape) is in [`schema`].
//!
//! # Writes: how a request's readings are applied
//!
//! Readings go through the [group-commit writer](super::group_commit), so concurrent requests
//! share DynamoDB calls. For each group of requests (`writer.rs`):
//!
//! 1. **Rounds.** Requests of a group that touch the same `(sensorID, time)` as an earlier
//!    request of the group wait for the next round, so one transaction never names an item twice
//!    and the earlier request decides what is stored.
//! 2. **Pre-check.** One strongly consistent `BatchGetItem` pass (100 keys a call) reads every
//!    reading of the round and the aggregates of its sensors. A request with a reading already
//!    stored under another temperature is answered `Conflict` at once and **nothing of it is
//!    written**; exact repeats are counted as duplicates and dropped.
//! 3. **Transactions.** The remaining new readings, sorted by sensor, are packed into
//!    `TransactWriteItems` of at most 100 actions: one conditional `Put` per reading
//!    (`attribute_not_exists(pk)`, `ReturnValuesOnConditionCheckFailure=ALL_OLD`), one `Update`
//!    per sensor of the chunk, and one `Update` of a randomly chosen global aggregate shard.
//!    Aggregates are updated with `ADD c :count, s :sum` — exact on DynamoDB numbers, and
//!    commutative, so concurrent writers never need to read-modify-write counts or sums. Min and
//!    max only ever move outwards: an update sets `mn`/`mx` only when the chunk extends the
//!    range known from the pre-check (per sensor) or from a per-instance cache (per shard; stale
//!    knowledge is always safe because it can only be less extreme than the truth), guarded by
//!    `attribute_not_exists(mn) OR mn >= :mn`. A transaction is all-or-nothing, so aggregates can
//!    never drift from the readings, and a reading already stored fails its condition instead
//!    of being counted twice.
//! 4. **Cancellations** (another instance wrote concurrently) are read from
//!    `CancellationReasons`: a reading stored meanwhile with the same temperature becomes a
//!    duplicate and the chunk is retried without it; with another temperature it is a conflict;
//!    an aggregate whose min/max moved has its knowledge refreshed from `ALL_OLD`;
//!    `TransactionConflict` and throttling back off and retry (bounded).
//!
//! # What is not atomic, and why that is acceptable
//!
//! DynamoDB cannot make a 1,000-reading request one transaction (100 actions at most). Each
//! chunk is atomic with its aggregates, and the pre-check makes the ordinary conflict (a reading
//! stored earlier with another value) change nothing. Two cases remain, both documented here:
//! - a conflict **discovered only after some chunks committed** (another instance stored the
//!   same `(sensorID, time)` with another temperature between our pre-check and our
//!   transaction): the answer is `Conflict`, the chunks already committed **stay stored**
//!   (with their aggregates — counts stay exact), and the conflicting reading itself is never
//!   overwritten;
//! - a failure (timeout, throttling beyond retries) after some chunks committed: the answer is
//!   503, and the client's retry finds those readings as duplicates, so nothing is doubled.
//!
//! # Failures
//!
//! Every SDK call has an attempt timeout and an operation timeout (`DYNAMODB_TIMEOUT_MS`,
//! default 5,000 ms; attempts get 2/5 of it) and the SDK's standard retry mode (3 attempts,
//! exponential backoff with jitter, throttling retried). What is still failing after that —
//! timeouts, connection failures, throttling, 5xx — becomes [`StorageError::Unavailable`]
//! (503 + `Retry-After`). A write that waited in the queue longer than that timeout, or whose
//! group is still retrying after it, is answered 503 too, so a slow or flapping DynamoDB gives
//! bounded answers rather than a pile of waiting requests. The SDK fills `TransactWriteItems`' `ClientRequestToken` once per
//! call, so its retry of an attempt that did commit (a lost answer) is answered idempotently
//! instead of being applied twice; readiness (`ping`) is a real `GetItem`, so it fails while DynamoDB is
//! unreachable and recovers by itself when it is back.
//!
//! # Permissions
//!
//! Only `GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`, `Query`, `BatchGetItem`,
//! `DescribeTable` and `TransactWriteItems` (authorised through the per-item actions and
//! `ConditionCheckItem`) are used at run time, and `Scan` by the rollup build of a table the
//! previous version wrote (`build.rs`); `CreateTable` only with
//! `DYNAMODB_CREATE_TABLE=true` (local runs). `telemetry-lambda` opens the store with
//! [`DynamoStore::connect`] and only deletes `/picus` items: it calls `DeleteItem` alone.
//!
//! # Files
//! - this file: the store's settings, its SDK client set-up and the benchmark-only calls;
//! - [`schema`]: the table's keys and item shapes; `table.rs`: the table's creation and
//!   key-schema check at start-up; `attributes.rs`: items to and from domain values;
//! - `query.rs`: paginated `Query` and `BatchGetItem` reads;
//! - `writer.rs`: the group-commit writer (rounds, pre-check, chunks); `transaction.rs`: one
//!   chunk's `TransactWriteItems`; `cancellation.rs`: reading its `CancellationReasons`;
//!   `chunk.rs`: one chunk's commit and retries;
//! - `windows.rs`: windows, series and sensor summaries; `partials.rs`: an aggregate item's
//!   state and how readings move it on; `shards.rs`: the global shards one instance knows;
//!   `build.rs`: the rollup build of a table the previous version wrote;
//! - `store.rs`: the storage contract ([`super::Store`]) on DynamoDB, `/picus` items included.

mod attributes;
mod build;
mod cancellation;
mod chunk;
mod partials;
mod query;
pub mod schema;
mod shards;
mod store;
mod table;
mod transaction;
mod windows;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use self::attributes::{Item, key, string_of};
use self::schema::{SORT_KEY, TEMPERATURE};
use self::table::startup;
use super::group_commit::{GroupCommit, GroupObserver};
use super::{Cause, StorageError, Store};
use crate::domain::Reading;
use crate::domain::retention::{Period, Retention};
use crate::domain::rollup::Level;

/// Pending requests beyond which callers wait (back-pressure).
const WRITE_QUEUE: usize = 4_096;
/// Most requests in one group (at most 64,000 readings: 640 `BatchGetItem` calls at worst).
const MAX_GROUP: usize = 64;
/// Groups committed at once by one instance (each is a few DynamoDB round trips).
const GROUPS_IN_FLIGHT: usize = 2;

/// What [`DynamoStore::open`] needs: `app.rs` builds it from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamoSettings {
    /// `TABLE_NAME`.
    pub table: String,
    /// `DYNAMODB_CREATE_TABLE`: create the table when it is missing (local runs).
    pub create_table: bool,
    /// `DYNAMODB_TIMEOUT_MS`: every call's operation timeout (at least 100 ms).
    pub timeout: Duration,
    /// `DYNAMODB_ENDPOINT_URL` (a local emulator); `None`: aws-config's choice (`AWS_ENDPOINT_URL`, else AWS).
    pub endpoint_url: Option<String>,
    /// `RETENTION_RAW`: each reading's TTL (`expires_at`) is its time plus this period.
    pub retention_raw: Period,
    /// The rollup levels' retention: each rollup item's TTL is its bucket's end plus its
    /// level's period (`RETENTION_MINUTE`, `RETENTION_HOUR`, `RETENTION_DAY`).
    pub retention: Retention,
}

#[derive(Clone)]
pub struct DynamoStore {
    inner: Arc<Inner>,
    writer: GroupCommit<writer::QueuedPut>,
}

/// What every task of the store shares.
pub(crate) struct Inner {
    client: Client,
    table: String,
    /// DynamoDB calls made by this store (not counting the SDK's own retries of one call).
    requests: AtomicU64,
    /// Write units of the writes this store sent (see [`DynamoStore::write_units`]).
    write_units: AtomicU64,
    /// Of those: rollup and registry actions, and transactions that were cancelled.
    rollup_units: AtomicU64,
    cancelled_units: AtomicU64,
    /// `DYNAMODB_TIMEOUT_MS`: also bounds how long a write waits in the queue and how long its
    /// group keeps retrying, so no request waits much beyond a few timeouts.
    timeout: Duration,
    /// The global shards this instance knows and leases (see [`shards`]). A std Mutex: held
    /// for a few instructions, never across an `.await`.
    shards: Mutex<shards::Shards>,
    /// `RETENTION_RAW`: how long after its time a reading expires (its `expires_at`).
    retention_raw: Period,
    /// `RETENTION_MINUTE`/`HOUR`/`DAY`: how long after its end a rollup item expires.
    retention: Retention,
    /// Wakes this instance's rollup build (see `build.rs`).
    build: build::Signal,
}

/// What is known of an aggregate item's min and max: the stored values are at least this
/// extreme (`None`: nothing known).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Extent {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

impl Extent {
    /// Widens the knowledge with values known to be stored.
    pub fn learn(&mut self, min: Option<i64>, max: Option<i64>) {
        if let Some(m) = min {
            self.min = Some(self.min.map_or(m, |k| k.min(m)));
        }
        if let Some(m) = max {
            self.max = Some(self.max.map_or(m, |k| k.max(m)));
        }
    }
}

impl Inner {
    /// A reading's `expires_at`: its time plus `RETENTION_RAW`, in Unix seconds rounded up
    /// (never before the horizon); `None` when readings are kept forever.
    pub(crate) fn expires_at(&self, time_micros: i64) -> Option<i64> {
        let period = self.retention_raw.micros()?;
        Some(time_micros.saturating_add(period).div_euclid(1_000_000) + 1)
    }

    /// A rollup item's `expires_at`: its bucket's end plus the level's retention, in Unix
    /// seconds rounded up; `None` when the level is kept forever.
    pub(crate) fn rollup_expires_at(&self, level: Level, bucket: i64) -> Option<i64> {
        let period = self.retention.level(level).micros()?;
        let end = bucket.saturating_add(level.micros());
        Some(end.saturating_add(period).div_euclid(1_000_000) + 1)
    }

    /// Counts one DynamoDB call (see [`DynamoStore::request_count`]).
    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the write units of a write sent (see [`DynamoStore::write_units`]).
    fn bill(&self, units: u64) {
        self.write_units.fetch_add(units, Ordering::Relaxed);
    }
}

/// Maps an SDK failure: what may pass by itself is `Unavailable` (503), the rest `Internal`.
pub(crate) fn sdk_error<E>(operation: &str, error: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let unavailable = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => match service.err().code() {
            Some(
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "TransactionInProgressException"
                | "TransactionConflictException"
                | "ResourceNotFoundException",
            ) => true,
            _ if service.raw().status().as_u16() >= 500 => true,
            _ => false,
        },
        _ => false,
    };
    let cause = Cause::new(format!("DynamoDB {operation}"), error);
    if unavailable {
        StorageError::Unavailable(cause)
    } else {
        StorageError::Internal(cause)
    }
}

impl DynamoStore {
    /// Connects with aws-config's standard chain (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL`),
    /// checks the table (creating it when `DYNAMODB_CREATE_TABLE=true`) and starts the writer.
    pub async fn open(
        settings: &DynamoSettings,
        on_group: GroupObserver,
    ) -> Result<Self, StorageError> {
        let store = Self::connect(settings, on_group).await?;
        table::ensure_table(&store.inner, settings.create_table).await?;
        if !windows::check_rollups(&store.inner).await? {
            tracing::info!(
                table = store.inner.table,
                "the DynamoDB table was written by a version that kept no rollups: building \
                 them in the background; windows, series and sensor summaries answer 503 until \
                 then (see storage/dynamodb/windows.rs)"
            );
        }
        // Learn the shards' min/max once, so the first writes rarely need a retry.
        store.stats(None).await?;
        // Not waited for: the instance is ready at once (see `build.rs`).
        build::spawn(&store.inner);
        Ok(store)
    }

    /// Builds the SDK client and starts the writer, **without a single DynamoDB call**: no table
    /// check, no shard read. For `telemetry-lambda`, whose cold start should be short and whose
    /// role may only `DeleteItem`; a missing table then shows as the first call's failure (503).
    pub async fn connect(
        settings: &DynamoSettings,
        on_group: GroupObserver,
    ) -> Result<Self, StorageError> {
        if settings.table.is_empty() {
            return Err(startup("TABLE_NAME is required when STORAGE=dynamodb"));
        }
        let table = settings.table.clone();
        let operation = settings.timeout.max(Duration::from_millis(100));
        let attempt = operation * 2 / 5;
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(attempt.min(Duration::from_secs(1)))
                    .operation_attempt_timeout(attempt)
                    .operation_timeout(operation)
                    .build(),
            )
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(50)),
            )
            .load()
            .await;
        if sdk.region().is_none() {
            return Err(startup(
                "no AWS region: set AWS_REGION (or run where aws-config finds one)",
            ));
        }
        let mut builder = aws_sdk_dynamodb::config::Builder::from(&sdk);
        if let Some(url) = settings.endpoint_url.as_deref() {
            builder = builder.endpoint_url(url);
        }
        let inner = Arc::new(Inner {
            client: Client::from_conf(builder.build()),
            table,
            requests: AtomicU64::new(0),
            write_units: AtomicU64::new(0),
            rollup_units: AtomicU64::new(0),
            cancelled_units: AtomicU64::new(0),
            timeout: operation,
            shards: Mutex::new(shards::Shards::default()),
            retention_raw: settings.retention_raw,
            retention: settings.retention,
            build: build::Signal::default(),
        });
        Ok(Self {
            writer: GroupCommit::spawn(
                writer::Writer::new(inner.clone(), GROUPS_IN_FLIGHT),
                WRITE_QUEUE,
                MAX_GROUP,
                on_group,
            ),
            inner,
        })
    }

    /// DynamoDB calls made so far by this store (each `send`, not the SDK's retries of it);
    /// divide by readings stored for the requests-per-reading figure of the benchmark.
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Write units of the writes sent so far, counted from the requests as AWS bills them
    /// (DynamoDB Local's `ConsumedCapacity` is not faithful for transactions): 2 per KB of
    /// each `TransactWriteItems` action, 1 per KB of a `PutItem`/`UpdateItem`/`DeleteItem`,
    /// every item this service writes rounded up to 1 KB (each is well below it). A cancelled
    /// transaction is counted like a committed one (AWS bills it too); the SDK's own retries
    /// of one call are not. Only the reading path and the baseline are counted (`/picus` is not).
    pub fn write_units(&self) -> u64 {
        self.inner.write_units.load(Ordering::Relaxed)
    }

    /// Of [`Self::write_units`]: `(rollup and sensor-registry actions, cancelled
    /// transactions)` — what rollups add directly, and what contention wasted.
    pub fn write_unit_breakdown(&self) -> (u64, u64) {
        (
            self.inner.rollup_units.load(Ordering::Relaxed),
            self.inner.cancelled_units.load(Ordering::Relaxed),
        )
    }

    /// **Benchmark baseline only**: one unconditional `PutItem` per reading, no duplicate or
    /// conflict check and no aggregate update — what a naive port would do. Never used by the
    /// service; the benchmark compares it with [`Self::put_readings`].
    pub async fn naive_put(&self, reading: &Reading) -> Result<(), StorageError> {
        let mut item = key(
            schema::reading_pk(reading.sensor_id.as_str()),
            reading.time.to_sortable(),
        );
        item.insert(
            TEMPERATURE.into(),
            AttributeValue::N(reading.temperature.micros().to_string()),
        );
        self.inner.count();
        self.inner.bill(1);
        self.inner
            .client
            .put_item()
            .table_name(&self.inner.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", e))?;
        Ok(())
    }

    /// Remembers a shard's stored state (reads are a free refresh of the writer's cache).
    fn learn_shard(&self, item: &Item) -> Result<(), StorageError> {
        let index = string_of(item, SORT_KEY)
            .ok()
            .and_then(|sk| sk.strip_prefix("shard#"))
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(index) = index {
            shards::learn(
                &self.inner,
                index,
                partials::ItemState::from_item(Some(item))?,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_only_widen() {
        let mut extent = Extent::default();
        extent.learn(Some(5), Some(7));
        extent.learn(Some(6), Some(6));
        assert_eq!(
            extent,
            Extent {
                min: Some(5),
                max: Some(7)
            }
        );
        extent.learn(None, Some(9));
        assert_eq!(extent.max, Some(9));
    }
}
