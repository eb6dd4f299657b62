//! Storage: one interface, several backends, one contract (see `tests/contract`).
//!
//! [`Storage`] is an enum rather than a trait object: the backends are few and known, and an
//! enum keeps `async fn` without boxing. Every backend keeps the same promises:
//! - a write is answered only once it is durable;
//! - a request's readings are applied atomically with the aggregates they change;
//! - an exact repeat of a stored reading is a no-op, the same identity with another
//!   temperature is a conflict that changes nothing;
//! - statistics come from stored aggregates, never from scanning readings.

pub mod dynamodb;
pub mod embedded;
pub mod group_commit;

use serde_json::{Map, Value};

use crate::domain::{Aggregate, Batch, Conflict, Reading, SensorId, Timestamp};

pub use dynamodb::DynamoStore;
pub use embedded::EmbeddedStore;

/// Why storage could not answer. Never the client's fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// Temporarily unreachable or overloaded: the client should retry (503 + Retry-After).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or corruption (500, logged, details not sent to the client).
    #[error("storage failure: {0}")]
    Internal(String),
}

/// What a `PUT` of readings did.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    /// Every reading is durable: `stored` are new, `duplicates` were already there unchanged.
    Stored { stored: usize, duplicates: usize },
    /// Some readings conflict with stored ones; nothing of this request was stored.
    Conflict(Vec<Conflict>),
}

/// `GET /api/readings`: one sensor's readings in time order, `from` inclusive, `to` exclusive,
/// starting strictly after `after` (the cursor of the previous page).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingsQuery {
    pub sensor_id: SensorId,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub after: Option<Timestamp>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadingsPage {
    pub readings: Vec<Reading>,
    /// Present when more readings may follow: pass it back as `after`.
    pub next: Option<Timestamp>,
}

/// A `/picus` item id: a decimal counter starting at 1.
pub type ItemId = u64;

/// One page of `/picus/list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemsPage {
    pub items: Vec<(ItemId, Map<String, Value>)>,
    pub next: Option<ItemId>,
}

#[derive(Clone)]
pub enum Storage {
    Embedded(EmbeddedStore),
    Dynamodb(DynamoStore),
}

impl Storage {
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Embedded(_) => "embedded",
            Self::Dynamodb(_) => "dynamodb",
        }
    }

    /// DynamoDB calls made so far (for requests-per-reading figures); `None` on other backends.
    pub fn dynamodb_request_count(&self) -> Option<u64> {
        match self {
            Self::Dynamodb(store) => Some(store.request_count()),
            Self::Embedded(_) => None,
        }
    }

    pub async fn put_readings(&self, batch: Batch) -> Result<PutOutcome, StorageError> {
        match self {
            Self::Embedded(store) => store.put_readings(batch).await,
            Self::Dynamodb(store) => store.put_readings(batch).await,
        }
    }

    /// All readings' aggregate, or one sensor's.
    pub async fn stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError> {
        match self {
            Self::Embedded(store) => store.stats(sensor).await,
            Self::Dynamodb(store) => store.stats(sensor).await,
        }
    }

    /// Benchmark baseline only: [`Self::stats`] computed by reading every stored reading.
    pub async fn scan_stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError> {
        match self {
            Self::Embedded(store) => store.scan_stats(sensor).await,
            Self::Dynamodb(store) => store.scan_stats(sensor).await,
        }
    }

    pub async fn readings(&self, query: ReadingsQuery) -> Result<ReadingsPage, StorageError> {
        match self {
            Self::Embedded(store) => store.readings(query).await,
            Self::Dynamodb(store) => store.readings(query).await,
        }
    }

    /// Readiness: can storage serve reads and writes right now?
    pub async fn ping(&self) -> Result<(), StorageError> {
        match self {
            Self::Embedded(store) => store.ping().await,
            Self::Dynamodb(store) => store.ping().await,
        }
    }

    pub async fn item_put(&self, item: Map<String, Value>) -> Result<ItemId, StorageError> {
        match self {
            Self::Embedded(store) => store.item_put(item).await,
            Self::Dynamodb(store) => store.item_put(item).await,
        }
    }

    pub async fn item_get(&self, id: ItemId) -> Result<Option<Map<String, Value>>, StorageError> {
        match self {
            Self::Embedded(store) => store.item_get(id).await,
            Self::Dynamodb(store) => store.item_get(id).await,
        }
    }

    pub async fn item_list(
        &self,
        after: Option<ItemId>,
        limit: usize,
    ) -> Result<ItemsPage, StorageError> {
        match self {
            Self::Embedded(store) => store.item_list(after, limit).await,
            Self::Dynamodb(store) => store.item_list(after, limit).await,
        }
    }

    /// Deletes an item; `false` when it did not exist.
    pub async fn item_delete(&self, id: ItemId) -> Result<bool, StorageError> {
        match self {
            Self::Embedded(store) => store.item_delete(id).await,
            Self::Dynamodb(store) => store.item_delete(id).await,
        }
    }
}
