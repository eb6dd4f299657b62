//! Storage: one interface, two backends, one contract (the black-box suite in `tests/api`
//! runs against each).
//!
//! Every backend keeps the same promises:
//! - a write is answered only once it is durable;
//! - a request's readings are applied atomically with the aggregates they change;
//! - an exact repeat of a stored reading is a no-op, the same identity with another
//!   temperature is a conflict that changes nothing;
//! - statistics come from stored aggregates, never from scanning readings: all-time ones
//!   from the aggregates, windows and series from rollups per bucket kept in the same commit
//!   (plus the raw readings of a window's partial edge buckets), sensor lists from per-sensor
//!   summaries (count, first reading time, latest reading).
//!
//! # A trait for the contract, an enum for dispatch
//!
//! The methods both backends offer are stated once, by the [`Store`] trait, and each backend
//! implements it: the compiler then checks that both keep the same methods and signatures
//! (before, nothing but the dispatch macro noticed a drift, and only for methods it called).
//! Dispatch stays an enum, [`Backend`], inside [`Storage`], not a `dyn Store`: the backends
//! are few and known, `async fn` in a trait is not object-safe without boxing every future,
//! and matching on the enum keeps each call's future concrete, so it is `Send` without the
//! trait promising it. A third backend (a fault-injecting wrapper for tests, say) is one more
//! `impl Store` and one more variant. Backend-specific calls (`DynamoStore::naive_put`,
//! `DynamoStore::request_count`) stay inherent methods.
//!
//! # Files
//! - this file: the contract, the [`Storage`] handle the routes use (every call timed and its
//!   failures counted), and the page-trimming both backends share;
//! - `item_page.rs`: the `/picus` list page, bounded by count and bytes, both backends fill;
//! - `error.rs`: [`StorageError`], two classes (`Unavailable` → 503, `Internal` → 500), each
//!   with a [`Cause`] that keeps the error behind it as its `source`;
//! - [`group_commit`]: the writer queue both backends use;
//! - [`admission`]: parse slots that admit write requests before their bodies are parsed;
//! - [`embedded`], [`dynamodb`]: the backends.

pub mod admission;
pub mod dynamodb;
pub mod embedded;
mod error;
pub mod group_commit;
mod item_page;

use std::future::Future;
use std::time::Instant;

use crate::domain::retention::Retention;
use crate::domain::window::{SeriesPlan, Span};
use crate::domain::{Aggregate, Batch, Conflict, Reading, SensorId, SensorSummary, Timestamp};
use crate::metrics::Metrics;

use admission::{ParseSlot, WriteAdmission};
pub use dynamodb::{DynamoSettings, DynamoStore};
pub use embedded::EmbeddedStore;
pub use error::{Cause, StorageError, chain};
pub use item_page::{ItemPageBuilder, ItemText, item_text};

/// What a `PUT` of readings did.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    /// Every reading is durable: `stored` are new, `duplicates` were already there unchanged.
    Stored { stored: usize, duplicates: usize },
    /// Some readings conflict with stored ones; nothing of this request was stored.
    Conflict(Vec<Conflict>),
    /// Some readings (by request index) are older than data retention has already deleted;
    /// nothing of this request was stored. Routes refuse such readings before storage sees
    /// them; this is the writer's own check for a request that raced with a deletion.
    Expired(Vec<usize>),
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

/// One page of `GET /api/sensors`: sensors in id order with their summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorsPage {
    pub sensors: Vec<(SensorId, SensorSummary)>,
    /// Present when more sensors may follow: the last id of this page.
    pub next: Option<SensorId>,
}

/// A `/picus` item id: a decimal counter starting at 1.
pub type ItemId = u64;

/// One page of `/picus/list`, filled by an [`ItemPageBuilder`].
#[derive(Debug)]
pub struct ItemsPage {
    pub items: Vec<(ItemId, ItemText)>,
    pub next: Option<ItemId>,
}

/// The page of at most `limit` items from `found`, which was fetched with more than `limit`
/// items when more exist, and the key to continue after: present only when more followed.
pub(crate) fn trim_page<T, K>(
    mut found: Vec<T>,
    limit: usize,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, Option<K>) {
    let more = found.len() > limit;
    found.truncate(limit);
    let next = if more { found.last().map(key) } else { None };
    (found, next)
}

/// What both backends offer, keeping the promises in this module's documentation. A trait so
/// that the compiler checks both backends keep the same methods and signatures; [`Storage`]
/// still dispatches over the [`Backend`] enum (see the module documentation).
#[allow(
    async_fn_in_trait,
    reason = "called only on the concrete backends, whose futures are known to be Send"
)]
pub trait Store {
    /// Stores a request's readings atomically with the aggregates they change, once durable.
    async fn put_readings(&self, batch: Batch) -> Result<PutOutcome, StorageError>;
    /// `Unavailable` when a write submitted now would be shed (the writer is behind or its
    /// queue is full): write routes ask before they parse a body.
    fn accepting_writes(&self) -> Result<(), StorageError>;
    /// All readings' aggregate, or one sensor's, from the stored aggregates.
    async fn stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError>;
    /// Benchmark baseline only: the aggregate recomputed from the stored readings.
    async fn scan_stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError>;
    /// One page of one sensor's readings in time order.
    async fn readings(&self, query: ReadingsQuery) -> Result<ReadingsPage, StorageError>;
    /// Readiness: can storage serve reads and writes right now?
    async fn ping(&self) -> Result<(), StorageError>;
    /// Liveness: `Unavailable` only for a fault no retry clears (a storage thread has died),
    /// so that the process is restarted; a full disk or an unreachable DynamoDB is not one.
    fn alive(&self) -> Result<(), StorageError>;
    /// Stores a `/picus` item (the text of one JSON object, kept as it is) under a new id.
    async fn item_put(&self, item: String) -> Result<ItemId, StorageError>;
    /// An item's text as stored.
    async fn item_get(&self, id: ItemId) -> Result<Option<ItemText>, StorageError>;
    /// One page of items in id order, starting after `after`: at most `limit` items and, past
    /// its first, at most `max_bytes` of item text (see [`ItemPageBuilder`]).
    async fn item_list(
        &self,
        after: Option<ItemId>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<ItemsPage, StorageError>;
    /// Deletes an item; `false` when it did not exist.
    async fn item_delete(&self, id: ItemId) -> Result<bool, StorageError>;
}

/// The backend behind [`Storage`].
#[derive(Clone)]
pub enum Backend {
    Embedded(EmbeddedStore),
    Dynamodb(DynamoStore),
}

/// The storage handle the routes use: a backend, with every call timed and every failure
/// counted in the app's metrics.
#[derive(Clone)]
pub struct Storage {
    backend: Backend,
    metrics: Metrics,
    /// How long data is kept: the routes refuse readings beyond its horizons and read only
    /// what it retains (see [`crate::domain::retention`]).
    retention: Retention,
    /// Parse slots for write requests (see [`admission`]).
    admission: WriteAdmission,
}

/// Calls the same method on whichever backend this is.
macro_rules! on_backend {
    ($self:ident, $store:ident => $call:expr) => {
        match &$self.backend {
            Backend::Embedded($store) => $call,
            Backend::Dynamodb($store) => $call,
        }
    };
}

impl Storage {
    /// Keeps everything (see [`Self::with_retention`]).
    pub fn new(backend: Backend, metrics: Metrics) -> Self {
        Self {
            backend,
            metrics,
            retention: Retention::default(),
            admission: WriteAdmission::for_this_machine(),
        }
    }

    /// The same storage with a retention: on the embedded store this also starts the
    /// background sweep that deletes what it no longer keeps.
    pub fn with_retention(mut self, retention: Retention) -> Result<Self, StorageError> {
        if let Backend::Embedded(store) = &self.backend {
            store.start_retention(retention, self.metrics.clone())?;
        }
        self.retention = retention;
        Ok(self)
    }

    pub fn retention(&self) -> &Retention {
        &self.retention
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Embedded(_) => "embedded",
            Backend::Dynamodb(_) => "dynamodb",
        }
    }

    /// DynamoDB calls made so far (benchmarks divide it by readings stored).
    pub fn dynamodb_request_count(&self) -> Option<u64> {
        match &self.backend {
            Backend::Dynamodb(store) => Some(store.request_count()),
            Backend::Embedded(_) => None,
        }
    }

    /// Times one storage call and counts its failure, by backend and operation.
    async fn observed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let started = Instant::now();
        let result = call.await;
        let failure = result.as_ref().err().map(failure_kind);
        self.metrics
            .observe_storage(self.backend_name(), operation, started.elapsed(), failure);
        result
    }

    pub async fn put_readings(&self, batch: Batch) -> Result<PutOutcome, StorageError> {
        self.observed("put_readings", async {
            on_backend!(self, store => store.put_readings(batch).await)
        })
        .await
    }

    /// Admits a write request before its body is parsed: `Unavailable` at once when the
    /// write queue would shed it anyway ([`Store::accepting_writes`]), or once it has waited
    /// [`admission::MAX_ADMISSION_WAIT`] for one of the parse slots; otherwise the slot, to
    /// hold while parsing (not while committing). Refusals count as an unavailable
    /// `put_readings`, as the same refusal from the queue itself does.
    pub async fn admit_write(&self) -> Result<ParseSlot, StorageError> {
        let result = match on_backend!(self, store => store.accepting_writes()) {
            Ok(()) => self.admission.admit().await,
            Err(error) => Err(error),
        };
        if result.is_err() {
            self.metrics
                .storage_refused(self.backend_name(), "put_readings", "unavailable");
        }
        result
    }

    /// All readings' aggregate, or one sensor's.
    pub async fn stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError> {
        self.observed("stats", async {
            on_backend!(self, store => store.stats(sensor).await)
        })
        .await
    }

    /// The readings with `window.from <= time < window.to`, all sensors' or one's: stored
    /// rollups for the whole buckets inside the window, raw readings for its partial edges.
    pub async fn window_stats(
        &self,
        sensor: Option<&SensorId>,
        window: Span,
    ) -> Result<Aggregate, StorageError> {
        self.observed("window_stats", async {
            on_backend!(self, store => store.window_stats(sensor, window).await)
        })
        .await
    }

    /// One aggregate per bucket of `plan` (see [`SeriesPlan`]).
    pub async fn series(
        &self,
        sensor: Option<&SensorId>,
        plan: &SeriesPlan,
    ) -> Result<Vec<Aggregate>, StorageError> {
        self.observed("series", async {
            on_backend!(self, store => store.series(sensor, plan).await)
        })
        .await
    }

    /// Sensors in id order after `after` (exclusive), at most `limit`, with their summaries.
    pub async fn sensors(
        &self,
        after: Option<&SensorId>,
        limit: usize,
    ) -> Result<SensorsPage, StorageError> {
        self.observed("sensors", async {
            on_backend!(self, store => store.sensors(after, limit).await)
        })
        .await
    }

    /// One sensor's summary; `None` when no reading of it is stored.
    pub async fn sensor(&self, sensor: &SensorId) -> Result<Option<SensorSummary>, StorageError> {
        self.observed("sensor", async {
            on_backend!(self, store => store.sensor(sensor).await)
        })
        .await
    }

    /// Benchmark baseline only: the aggregate recomputed by reading every stored reading, as
    /// the original service did. Never used by a route.
    pub async fn scan_stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError> {
        on_backend!(self, store => store.scan_stats(sensor).await)
    }

    pub async fn readings(&self, query: ReadingsQuery) -> Result<ReadingsPage, StorageError> {
        self.observed("readings", async {
            on_backend!(self, store => store.readings(query).await)
        })
        .await
    }

    /// Liveness: see [`Store::alive`]. Touches no storage.
    pub fn alive(&self) -> Result<(), StorageError> {
        on_backend!(self, store => store.alive())
    }

    /// Readiness: can storage serve reads and writes right now?
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.observed("ping", async {
            on_backend!(self, store => store.ping().await)
        })
        .await
    }

    pub async fn item_put(&self, item: String) -> Result<ItemId, StorageError> {
        self.observed("item_put", async {
            on_backend!(self, store => store.item_put(item).await)
        })
        .await
    }

    pub async fn item_get(&self, id: ItemId) -> Result<Option<ItemText>, StorageError> {
        self.observed("item_get", async {
            on_backend!(self, store => store.item_get(id).await)
        })
        .await
    }

    pub async fn item_list(
        &self,
        after: Option<ItemId>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<ItemsPage, StorageError> {
        self.observed("item_list", async {
            on_backend!(self, store => store.item_list(after, limit, max_bytes).await)
        })
        .await
    }

    /// Deletes an item; `false` when it did not exist.
    pub async fn item_delete(&self, id: ItemId) -> Result<bool, StorageError> {
        self.observed("item_delete", async {
            on_backend!(self, store => store.item_delete(id).await)
        })
        .await
    }
}

/// The `kind` label of `telemetry_storage_errors_total` for `error` (one of
/// [`crate::metrics::STORAGE_ERROR_KINDS`]).
fn failure_kind(error: &StorageError) -> &'static str {
    match error {
        StorageError::Unavailable(_) => "unavailable",
        // Work in progress that ends by itself (a rollup build): not an outage to alert on.
        StorageError::Pending(_) => "pending",
        StorageError::Internal(_) => "internal",
        StorageError::Unsupported(_) => "unsupported",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::STORAGE_ERROR_KINDS;

    #[test]
    fn a_build_in_progress_is_counted_apart_from_an_outage() {
        let kinds = [
            StorageError::Unavailable("disk full".into()),
            StorageError::Pending("rollups being built".into()),
            StorageError::Internal("corrupt".into()),
            StorageError::Unsupported("windows".into()),
        ]
        .map(|error| failure_kind(&error));
        assert_eq!(kinds, ["unavailable", "pending", "internal", "unsupported"]);
        // Every kind is declared at zero from the start.
        assert_eq!(kinds, STORAGE_ERROR_KINDS);
    }
}
