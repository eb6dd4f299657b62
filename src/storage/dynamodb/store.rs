//! The storage contract ([`Store`]) on DynamoDB: readings go through the group-commit writer,
//! statistics read the stored aggregates, lists follow `Query` pages; `/picus` items are JSON
//! objects under ids from an atomic counter item.

use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use tokio::sync::oneshot;

use super::attributes::{
    aggregate_of, key, number, string_of, temperature_of, timestamp_of_sort_key,
};
use super::schema::{
    self, AGGREGATE_TOTAL_PK, COUNTER_PK, COUNTER_VALUE, ITEM_JSON, ITEM_PK, PICUS_COUNTER_SK,
    SENSOR_AGGREGATE_SK, SORT_KEY,
};
use super::{DynamoStore, query, sdk_error, writer};
use crate::domain::{Aggregate, Batch, Reading, SensorId, Timestamp};
use crate::storage::{
    ItemId, ItemPageBuilder, ItemText, ItemsPage, PutOutcome, ReadingsPage, ReadingsQuery,
    StorageError, Store, item_text, trim_page,
};

impl Store for DynamoStore {
    fn accepting_writes(&self) -> Result<(), StorageError> {
        self.writer.accepting()
    }

    /// Every DynamoDB failure is retried or clears by itself: nothing here needs a restart.
    fn alive(&self) -> Result<(), StorageError> {
        Ok(())
    }

    async fn put_readings(&self, batch: Batch) -> Result<PutOutcome, StorageError> {
        let (reply, answer) = oneshot::channel();
        let queued = Instant::now();
        self.writer
            .submit(writer::QueuedPut {
                batch,
                reply,
                queued,
            })
            .await?;
        answer
            .await
            .map_err(|_| StorageError::Internal("the storage writer dropped a write".into()))?
    }

    async fn stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError> {
        let inner = &self.inner;
        match sensor {
            Some(sensor) => {
                inner.count();
                let output = inner
                    .client
                    .get_item()
                    .table_name(&inner.table)
                    .set_key(Some(key(
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
                let shards = Box::pin(query::query(inner, AGGREGATE_TOTAL_PK.into(), None, None));
                let mut total = Aggregate::default();
                for item in shards.await? {
                    let shard = aggregate_of(Some(&item))?;
                    self.learn_shard(&item)?;
                    total = total.merge(&shard);
                }
                Ok(total)
            }
        }
    }

    /// **Benchmark baseline only**: one sensor's aggregate computed by a paginated `Query` over
    /// all its readings (what the stored aggregates avoid). Over every sensor it would need a
    /// `Scan` of the whole table, which this backend does only for a one-time rollup build.
    async fn scan_stats(&self, sensor: Option<&SensorId>) -> Result<Aggregate, StorageError> {
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

    async fn readings(&self, query: ReadingsQuery) -> Result<ReadingsPage, StorageError> {
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
        let items = query::query(&self.inner, pk, Some((lower, upper)), Some(wanted));
        for item in Box::pin(items).await? {
            found.push(Reading {
                sensor_id: query.sensor_id.clone(),
                time: timestamp_of_sort_key(string_of(&item, SORT_KEY)?)?,
                temperature: temperature_of(&item)?,
            });
        }
        let (readings, next) = trim_page(found, query.limit, |r| r.time);
        Ok(ReadingsPage { readings, next })
    }

    /// Readiness: one real read, bounded by the SDK timeouts.
    async fn ping(&self) -> Result<(), StorageError> {
        self.inner.count();
        self.inner
            .client
            .get_item()
            .table_name(&self.inner.table)
            .set_key(Some(key(COUNTER_PK, PICUS_COUNTER_SK)))
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(())
    }

    /// A new id from the counter item (`ADD n :1`, atomic across instances), then the item
    /// under it. Two calls, not one transaction: a failure between them only skips an id.
    async fn item_put(&self, item: String) -> Result<ItemId, StorageError> {
        let inner = &self.inner;
        inner.count();
        let output = inner
            .client
            .update_item()
            .table_name(&inner.table)
            .set_key(Some(key(COUNTER_PK, PICUS_COUNTER_SK)))
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
        let mut stored = key(ITEM_PK, schema::item_sk(id));
        stored.insert(ITEM_JSON.into(), AttributeValue::S(item));
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

    async fn item_get(&self, id: ItemId) -> Result<Option<ItemText>, StorageError> {
        let inner = &self.inner;
        inner.count();
        let output = inner
            .client
            .get_item()
            .table_name(&inner.table)
            .set_key(Some(key(ITEM_PK, schema::item_sk(id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        output
            .item()
            .map(|item| item_text(id, string_of(item, ITEM_JSON)?))
            .transpose()
    }

    /// One `Query` page (at most 1 MB) at a time, offered to the page builder until it is full:
    /// memory stays about `max_bytes` plus one `Query` page, whatever `limit` is.
    async fn item_list(
        &self,
        after: Option<ItemId>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<ItemsPage, StorageError> {
        let mut page = ItemPageBuilder::new(limit, max_bytes);
        let lower = match after {
            Some(after) => match after.checked_add(1) {
                Some(next) => schema::item_sk(next),
                None => return Ok(page.finish()),
            },
            None => schema::item_sk(0),
        };
        // Item sort keys are digits: "~" sorts after all of them.
        let between = (lower, "~".to_owned());
        let mut start = None;
        loop {
            let wanted = limit.saturating_add(1).saturating_sub(page.len());
            // Boxed for the same reason as in `readings`.
            let found =
                query::query_page(&self.inner, ITEM_PK, Some(&between), Some(wanted), start);
            let (items, last) = Box::pin(found).await?;
            for item in &items {
                let sk = string_of(item, SORT_KEY)?;
                let id: ItemId = sk.parse().map_err(|_| {
                    StorageError::Internal(format!("corrupt item id {sk:?}").into())
                })?;
                if !page.offer(id, string_of(item, ITEM_JSON)?)? {
                    return Ok(page.finish());
                }
            }
            match last {
                Some(key) => start = Some(key),
                None => return Ok(page.finish()),
            }
        }
    }

    /// Deletes an item; `false` when it did not exist.
    async fn item_delete(&self, id: ItemId) -> Result<bool, StorageError> {
        let inner = &self.inner;
        inner.count();
        let output = inner
            .client
            .delete_item()
            .table_name(&inner.table)
            .set_key(Some(key(ITEM_PK, schema::item_sk(id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", e))?;
        Ok(output.attributes().is_some_and(|a| !a.is_empty()))
    }
}
