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
//! `ConditionCheckItem`) are used at run time; `CreateTable` only with
//! `DYNAMODB_CREATE_TABLE=true` (local runs).

pub mod schema;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType, TableDescription, TableStatus,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use self::schema::{
    AGGREGATE_TOTAL_PK, COUNT, COUNTER_PK, COUNTER_VALUE, ITEM_JSON, ITEM_PK, MAX, MIN,
    PARTITION_KEY, PICUS_COUNTER_SK, SENSOR_AGGREGATE_SK, SORT_KEY, SUM, TEMPERATURE,
};
use super::group_commit::{GroupCommit, GroupObserver};
use super::{ItemId, ItemsPage, PutOutcome, ReadingsPage, ReadingsQuery, StorageError};
use crate::config::Config;
use crate::domain::{Aggregate, Batch, Reading, SensorId, Temperature, Timestamp};

/// Pending requests beyond which callers wait (back-pressure).
const WRITE_QUEUE: usize = 4_096;
/// Most requests in one group (at most 64,000 readings: 640 `BatchGetItem` calls at worst).
const MAX_GROUP: usize = 64;
/// Groups committed at once by one instance (each is a few DynamoDB round trips).
const GROUPS_IN_FLIGHT: usize = 2;
/// Default for `DYNAMODB_TIMEOUT_MS`.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// How long start-up waits for a table to become ACTIVE.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct DynamoStore {
    inner: Arc<Inner>,
    writer: GroupCommit<writer::Write>,
}

/// What every task of the store shares.
pub(crate) struct Inner {
    client: Client,
    table: String,
    /// DynamoDB calls made by this store (not counting the SDK's own retries of one call).
    requests: AtomicU64,
    /// `DYNAMODB_TIMEOUT_MS`: also bounds how long a write waits in the queue and how long its
    /// group keeps retrying, so no request waits much beyond a few timeouts.
    timeout: Duration,
    /// Per global shard: a min/max the stored shard is known to reach (see the module docs).
    /// A std Mutex: held for a few instructions, never across an `.await`.
    shard_extents: Mutex<Vec<Extent>>,
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

type Item = HashMap<String, AttributeValue>;

impl Inner {
    /// Counts one DynamoDB call (see [`DynamoStore::request_count`]).
    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
        HashMap::from([
            (PARTITION_KEY.to_owned(), AttributeValue::S(pk.into())),
            (SORT_KEY.to_owned(), AttributeValue::S(sk.into())),
        ])
    }
}

/// Maps an SDK failure: what may pass by itself is `Unavailable` (503), the rest `Internal`.
pub(crate) fn sdk_error<E>(operation: &str, error: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = format!(
        "DynamoDB {operation}: {}",
        aws_sdk_dynamodb::error::DisplayErrorContext(&error)
    );
    match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StorageError::Unavailable(message)
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
            ) => StorageError::Unavailable(message),
            _ if service.raw().status().as_u16() >= 500 => StorageError::Unavailable(message),
            _ => StorageError::Internal(message),
        },
        _ => StorageError::Internal(message),
    }
}

pub(crate) fn number(item: &Item, name: &str) -> Result<Option<i128>, StorageError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(n)) => n.parse::<i128>().map(Some).map_err(|_| {
            StorageError::Internal(format!("attribute {name} is not an integer: {n}"))
        }),
        Some(other) => Err(StorageError::Internal(format!(
            "attribute {name} is not a number: {other:?}"
        ))),
    }
}

fn number_i64(item: &Item, name: &str) -> Result<Option<i64>, StorageError> {
    number(item, name)?
        .map(|n| {
            i64::try_from(n)
                .map_err(|_| StorageError::Internal(format!("attribute {name} out of range: {n}")))
        })
        .transpose()
}

/// Reads an aggregate item (`c`, `s`, `mn`, `mx`); a missing item is the empty aggregate.
pub(crate) fn aggregate_of(item: Option<&Item>) -> Result<Aggregate, StorageError> {
    let Some(item) = item else {
        return Ok(Aggregate::default());
    };
    let count = number(item, COUNT)?.unwrap_or(0);
    let count = u64::try_from(count)
        .map_err(|_| StorageError::Internal(format!("aggregate count out of range: {count}")))?;
    let present = count > 0;
    Ok(Aggregate {
        count,
        sum_micros: number(item, SUM)?.unwrap_or(0),
        min_micros: number_i64(item, MIN)?.filter(|_| present),
        max_micros: number_i64(item, MAX)?.filter(|_| present),
    })
}

/// The stored temperature of a reading item.
pub(crate) fn temperature_of(item: &Item) -> Result<Temperature, StorageError> {
    let micros = number_i64(item, TEMPERATURE)?
        .ok_or_else(|| StorageError::Internal("reading without temperature".into()))?;
    Temperature::from_micros(micros).map_err(StorageError::Internal)
}

fn timestamp_of_sort_key(sk: &str) -> Result<Timestamp, StorageError> {
    DateTime::parse_from_rfc3339(sk)
        .ok()
        .and_then(|at| Timestamp::from_datetime(at.with_timezone(&Utc)).ok())
        .ok_or_else(|| StorageError::Internal(format!("corrupt reading time {sk:?}")))
}

fn string_of<'a>(item: &'a Item, name: &str) -> Result<&'a str, StorageError> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(StorageError::Internal(format!("attribute {name} missing"))),
    }
}

fn startup(message: impl Into<String>) -> StorageError {
    StorageError::Unavailable(message.into())
}

impl DynamoStore {
    /// Connects with aws-config's standard chain (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL`),
    /// checks the table (creating it when `DYNAMODB_CREATE_TABLE=true`) and starts the writer.
    pub async fn open(config: &Config, on_group: GroupObserver) -> Result<Self, StorageError> {
        let table = config
            .table_name
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| startup("TABLE_NAME is required when STORAGE=dynamodb"))?;
        let operation = Duration::from_millis(config.dynamodb_timeout_ms.max(100));
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
        if let Some(url) = config
            .dynamodb_endpoint_url
            .as_deref()
            .filter(|u| !u.is_empty())
        {
            builder = builder.endpoint_url(url);
        }
        let inner = Arc::new(Inner {
            client: Client::from_conf(builder.build()),
            table,
            requests: AtomicU64::new(0),
            timeout: operation,
            shard_extents: Mutex::new(vec![Extent::default(); schema::AGGREGATE_SHARDS]),
        });
        ensure_table(&inner, config.dynamodb_create_table).await?;
        let store = Self {
            writer: GroupCommit::spawn(
                writer::Writer::new(inner.clone(), GROUPS_IN_FLIGHT),
                WRITE_QUEUE,
                MAX_GROUP,
                on_group,
            ),
            inner,
        };
        // Learn the shards' min/max once, so the first writes rarely need a retry.
        store.stats(None).await?;
        Ok(store)
    }

    /// DynamoDB calls made so far by this store (each `send`, not the SDK's retries of it);
    /// divide by readings stored for the requests-per-reading figure of the benchmark.
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// The table this store uses.
    pub fn table_name(&self) -> &str {
        &self.inner.table
    }

    pub async fn put_readings(&self, batch: Batch) -> Result<PutOutcome, StorageError> {
        let (reply, answer) = oneshot::channel();
        let queued = Instant::now();
        self.writer
            .submit(writer::Write {
                batch,
                reply,
                queued,
            })
            .await?;
        answer
            .await
            .map_err(|_| StorageError::Internal("the storage writer dropped a write".into()))?
    }

    /// **Benchmark baseline only**: one unconditional `PutItem` per reading, no duplicate or
    /// conflict check and no aggregate update — what a naive port would do. Never used by the
    /// service; the benchmark compares it with [`Self::put_readings`].
    pub async fn naive_put(&self, reading: &Reading) -> Result<(), StorageError> {
        let mut item = Inner::key(
            schema::reading_pk(reading.sensor_id.as_str()),
            reading.time.to_sortable(),
        );
        item.insert(
            TEMPERATURE.into(),
            AttributeValue::N(reading.temperature.micros().to_string()),
        );
        self.inner.count();
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

    pub async fn stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError> {
        let inner = &self.inner;
        match sensor {
            Some(sensor) => {
                inner.count();
                let output = inner
                    .client
                    .get_item()
                    .table_name(&inner.table)
                    .set_key(Some(Inner::key(
                        schema::sensor_aggregate_pk(sensor.as_str()),
                        SENSOR_AGGREGATE_SK,
                    )))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| sdk_error("GetItem", e))?;
                aggregate_of(output.item())
            }
            None => {
                let mut total = Aggregate::default();
                let mut start: Option<Item> = None;
                loop {
                    inner.count();
                    let output = inner
                        .client
                        .query()
                        .table_name(&inner.table)
                        .key_condition_expression("#pk = :pk")
                        .expression_attribute_names("#pk", PARTITION_KEY)
                        .expression_attribute_values(
                            ":pk",
                            AttributeValue::S(AGGREGATE_TOTAL_PK.into()),
                        )
                        .consistent_read(true)
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(|e| sdk_error("Query", e))?;
                    for item in output.items() {
                        let shard = aggregate_of(Some(item))?;
                        self.learn_shard(item, &shard);
                        total = total.merge(&shard);
                    }
                    match output.last_evaluated_key() {
                        Some(key) if !key.is_empty() => start = Some(key.clone()),
                        _ => break,
                    }
                }
                Ok(total)
            }
        }
    }

    /// **Benchmark baseline only**: one sensor's aggregate computed by a paginated `Query` over
    /// all its readings (what the stored aggregates avoid). Over every sensor it would need a
    /// `Scan`, which this backend never does (nor may, under the task role's IAM policy).
    pub async fn scan_stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError> {
        let Some(sensor) = sensor else {
            return Err(StorageError::Internal(
                "scan_stats over every sensor would need a Scan; the DynamoDB backend has none"
                    .into(),
            ));
        };
        let mut aggregate = Aggregate::default();
        let mut after = None;
        loop {
            let page = self
                .readings(ReadingsQuery {
                    sensor_id: sensor.clone(),
                    from: None,
                    to: None,
                    after,
                    limit: 1_000,
                })
                .await?;
            for reading in &page.readings {
                aggregate.add(reading.temperature);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(aggregate),
            }
        }
    }

    /// Remembers a shard's stored min/max (reads are a free refresh of the writer's cache).
    fn learn_shard(&self, item: &Item, shard: &Aggregate) {
        let index = string_of(item, SORT_KEY)
            .ok()
            .and_then(|sk| sk.strip_prefix("shard#"))
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(index) = index {
            let mut extents = self
                .inner
                .shard_extents
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(extent) = extents.get_mut(index) {
                extent.learn(shard.min_micros, shard.max_micros);
            }
        }
    }

    /// Up to `wanted` items of partition `pk` whose sort key lies in `lower..=upper`, in
    /// sort-key order: a strongly consistent `Query`, following its pages (never a `Scan`).
    async fn query_range(
        &self,
        pk: String,
        lower: String,
        upper: String,
        wanted: usize,
    ) -> Result<Vec<Item>, StorageError> {
        let inner = &self.inner;
        let mut found = Vec::with_capacity(wanted.min(1_024));
        let mut start: Option<Item> = None;
        loop {
            let remaining = i32::try_from(wanted - found.len()).unwrap_or(i32::MAX);
            inner.count();
            let output = inner
                .client
                .query()
                .table_name(&inner.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :lower AND :upper")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .expression_attribute_values(":lower", AttributeValue::S(lower.clone()))
                .expression_attribute_values(":upper", AttributeValue::S(upper.clone()))
                .consistent_read(true)
                .limit(remaining)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            found.extend(output.items().iter().cloned());
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() && found.len() < wanted => start = Some(key.clone()),
                _ => return Ok(found),
            }
        }
    }

    pub async fn readings(&self, query: ReadingsQuery) -> Result<ReadingsPage, StorageError> {
        let empty = ReadingsPage {
            readings: Vec::new(),
            next: None,
        };
        // Inclusive bounds in whole microseconds: `after` is exclusive, `to` is exclusive.
        let mut lower = query.from;
        if let Some(after) = query.after {
            match Timestamp::from_micros(after.micros().saturating_add(1)) {
                Some(next) => lower = Some(lower.map_or(next, |l| l.max(next))),
                None => return Ok(empty),
            }
        }
        let upper = match query.to {
            Some(to) => match Timestamp::from_micros(to.micros().saturating_sub(1)) {
                Some(upper) => Some(upper),
                None => return Ok(empty),
            },
            None => None,
        };
        // Sort keys start with a digit: "0" sorts before all of them, "~" after all of them.
        let lower = lower.map_or_else(|| "0".to_owned(), Timestamp::to_sortable);
        let upper = upper.map_or_else(|| "~".to_owned(), Timestamp::to_sortable);
        if lower > upper || query.limit == 0 {
            return Ok(empty);
        }
        let wanted = query.limit.saturating_add(1);
        let mut found = Vec::with_capacity(wanted.min(1_024));
        let pk = schema::reading_pk(query.sensor_id.as_str());
        // Boxed: the SDK's query future is large, and inlined into every route's future it
        // overflowed the 2 MiB stack of a test thread in debug builds.
        for item in Box::pin(self.query_range(pk, lower, upper, wanted)).await? {
            found.push(Reading {
                sensor_id: query.sensor_id.clone(),
                time: timestamp_of_sort_key(string_of(&item, SORT_KEY)?)?,
                temperature: temperature_of(&item)?,
            });
        }
        let more = found.len() > query.limit;
        found.truncate(query.limit);
        let next = if more {
            found.last().map(|r| r.time)
        } else {
            None
        };
        Ok(ReadingsPage {
            readings: found,
            next,
        })
    }

    /// Readiness: one real read, bounded by the SDK timeouts.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.inner.count();
        self.inner
            .client
            .get_item()
            .table_name(&self.inner.table)
            .set_key(Some(Inner::key(COUNTER_PK, PICUS_COUNTER_SK)))
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(())
    }

    /// A new id from the counter item (`ADD n :1`, atomic across instances), then the item
    /// under it. Two calls, not one transaction: a failure between them only skips an id.
    pub async fn item_put(&self, item: Map<String, Value>) -> Result<ItemId, StorageError> {
        let inner = &self.inner;
        inner.count();
        let output = inner
            .client
            .update_item()
            .table_name(&inner.table)
            .set_key(Some(Inner::key(COUNTER_PK, PICUS_COUNTER_SK)))
            .update_expression("ADD #n :one")
            .expression_attribute_names("#n", COUNTER_VALUE)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        let id = output
            .attributes()
            .and_then(|a| number(a, COUNTER_VALUE).transpose())
            .transpose()?
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| StorageError::Internal("the id counter returned no value".into()))?;
        let mut stored = Inner::key(ITEM_PK, schema::item_sk(id));
        stored.insert(
            ITEM_JSON.into(),
            AttributeValue::S(Value::Object(item).to_string()),
        );
        inner.count();
        inner
            .client
            .put_item()
            .table_name(&inner.table)
            .set_item(Some(stored))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", e))?;
        Ok(id)
    }

    pub async fn item_get(&self, id: ItemId) -> Result<Option<Map<String, Value>>, StorageError> {
        let inner = &self.inner;
        inner.count();
        let output = inner
            .client
            .get_item()
            .table_name(&inner.table)
            .set_key(Some(Inner::key(ITEM_PK, schema::item_sk(id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        output.item().map(|item| parse_item(id, item)).transpose()
    }

    pub async fn item_list(
        &self,
        after: Option<ItemId>,
        limit: usize,
    ) -> Result<ItemsPage, StorageError> {
        let empty = ItemsPage {
            items: Vec::new(),
            next: None,
        };
        if limit == 0 {
            return Ok(empty);
        }
        let lower = match after {
            Some(after) => match after.checked_add(1) {
                Some(next) => schema::item_sk(next),
                None => return Ok(empty),
            },
            None => schema::item_sk(0),
        };
        let wanted = limit.saturating_add(1);
        let mut items = Vec::with_capacity(wanted.min(1_024));
        // Item sort keys are digits: "~" sorts after all of them.
        // Boxed for the same reason as in `readings`.
        for item in Box::pin(self.query_range(ITEM_PK.into(), lower, "~".into(), wanted)).await? {
            let sk = string_of(&item, SORT_KEY)?;
            let id: ItemId = sk
                .parse()
                .map_err(|_| StorageError::Internal(format!("corrupt item id {sk:?}")))?;
            items.push((id, parse_item(id, &item)?));
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more {
            items.last().map(|(id, _)| *id)
        } else {
            None
        };
        Ok(ItemsPage { items, next })
    }

    /// Deletes an item; `false` when it did not exist.
    pub async fn item_delete(&self, id: ItemId) -> Result<bool, StorageError> {
        let inner = &self.inner;
        inner.count();
        let output = inner
            .client
            .delete_item()
            .table_name(&inner.table)
            .set_key(Some(Inner::key(ITEM_PK, schema::item_sk(id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", e))?;
        Ok(output.attributes().is_some_and(|a| !a.is_empty()))
    }
}

fn parse_item(id: ItemId, item: &Item) -> Result<Map<String, Value>, StorageError> {
    match serde_json::from_str(string_of(item, ITEM_JSON)?) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(StorageError::Internal(format!("corrupt item {id}"))),
    }
}

/// Start-up: the table must exist with the key schema of [`schema`]; create it when allowed.
async fn ensure_table(inner: &Inner, create: bool) -> Result<(), StorageError> {
    let table = &inner.table;
    let description = match describe(inner).await? {
        Some(description) => description,
        None if create => {
            tracing::info!(
                table,
                "creating the DynamoDB table (DYNAMODB_CREATE_TABLE=true)"
            );
            create_table(inner).await?;
            wait_until_active(inner).await?
        }
        None => {
            return Err(startup(format!(
                "DynamoDB table {table:?} does not exist (Terraform creates it on AWS; set \
                 DYNAMODB_CREATE_TABLE=true to create it for a local run)"
            )));
        }
    };
    check_key_schema(table, &description)?;
    if description.table_status() != Some(&TableStatus::Active) {
        wait_until_active(inner).await?;
    }
    Ok(())
}

/// `None` when the table does not exist.
async fn describe(inner: &Inner) -> Result<Option<TableDescription>, StorageError> {
    inner.count();
    match inner
        .client
        .describe_table()
        .table_name(&inner.table)
        .send()
        .await
    {
        Ok(output) => Ok(output.table().cloned()),
        Err(error)
            if matches!(
                error.as_service_error(),
                Some(DescribeTableError::ResourceNotFoundException(_))
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(startup(format!(
            "cannot describe DynamoDB table {:?}: {}",
            inner.table,
            aws_sdk_dynamodb::error::DisplayErrorContext(&error)
        ))),
    }
}

async fn create_table(inner: &Inner) -> Result<(), StorageError> {
    let build = |e: aws_sdk_dynamodb::error::BuildError| StorageError::Internal(e.to_string());
    inner.count();
    let result = inner
        .client
        .create_table()
        .table_name(&inner.table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(PARTITION_KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build)?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(SORT_KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(PARTITION_KEY)
                .key_type(KeyType::Hash)
                .build()
                .map_err(build)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(SORT_KEY)
                .key_type(KeyType::Range)
                .build()
                .map_err(build)?,
        )
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // Another instance created it first: fine, its key schema is checked next.
        Err(error) if error.code() == Some("ResourceInUseException") => Ok(()),
        Err(error) => Err(startup(format!(
            "cannot create DynamoDB table {:?}: {}",
            inner.table,
            aws_sdk_dynamodb::error::DisplayErrorContext(&error)
        ))),
    }
}

/// Polls `DescribeTable` (the SDK's waiter polls every 20 s, far too slow for start-up).
async fn wait_until_active(inner: &Inner) -> Result<TableDescription, StorageError> {
    let deadline = Instant::now() + TABLE_ACTIVE_TIMEOUT;
    loop {
        if let Some(description) = describe(inner).await?
            && description.table_status() == Some(&TableStatus::Active)
        {
            return Ok(description);
        }
        if Instant::now() > deadline {
            return Err(startup(format!(
                "DynamoDB table {:?} is not ACTIVE after {TABLE_ACTIVE_TIMEOUT:?}",
                inner.table
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn check_key_schema(table: &str, description: &TableDescription) -> Result<(), StorageError> {
    let keys: Vec<(String, String)> = description
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect();
    let types: HashMap<&str, &str> = description
        .attribute_definitions()
        .iter()
        .map(|a| (a.attribute_name(), a.attribute_type().as_str()))
        .collect();
    let expected = [
        (PARTITION_KEY.to_owned(), "HASH".to_owned()),
        (SORT_KEY.to_owned(), "RANGE".to_owned()),
    ];
    let typed = types.get(PARTITION_KEY) == Some(&"S") && types.get(SORT_KEY) == Some(&"S");
    if keys.as_slice() != expected.as_slice() || !typed {
        return Err(startup(format!(
            "DynamoDB table {table:?} has the wrong key schema: found {keys:?} with types \
             {types:?}; expected partition key {PARTITION_KEY:?} (S) and sort key {SORT_KEY:?} \
             (S), see src/storage/dynamodb/schema.rs"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_items_round_trip_exact_numbers() {
        let item: Item = HashMap::from([
            (COUNT.to_owned(), AttributeValue::N("3".into())),
            (
                SUM.to_owned(),
                AttributeValue::N("123456789012345678901234567".into()),
            ),
            (MIN.to_owned(), AttributeValue::N("-273150000".into())),
            (MAX.to_owned(), AttributeValue::N("42".into())),
        ]);
        let aggregate = aggregate_of(Some(&item)).unwrap();
        assert_eq!(aggregate.count, 3);
        assert_eq!(aggregate.sum_micros, 123456789012345678901234567);
        assert_eq!(aggregate.min_micros, Some(-273_150_000));
        assert_eq!(aggregate.max_micros, Some(42));
        assert_eq!(aggregate_of(None).unwrap(), Aggregate::default());
    }

    #[test]
    fn sort_keys_parse_back_to_the_same_instant() {
        let time = Timestamp::parse_text("2021-10-04T09:00:00.000001Z").unwrap();
        assert_eq!(timestamp_of_sort_key(&time.to_sortable()).unwrap(), time);
        let early = Timestamp::parse_text("0001-01-01 00:00:00").unwrap();
        assert!("0" < early.to_sortable().as_str());
        assert!(early.to_sortable() < time.to_sortable());
    }

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
