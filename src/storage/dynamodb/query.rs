//! Reads that follow pages or split keys: the strongly consistent `Query` of one partition
//! (never a `Scan`), and `BatchGetItem` of many keys with its `UnprocessedKeys` retried.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use tokio::task::JoinSet;

use super::attributes::{Item, key};
use super::chunk::backoff;
use super::schema::{PARTITION_KEY, SORT_KEY};
use super::writer::PARALLEL_CALLS;
use super::{Inner, sdk_error};
use crate::storage::{Cause, StorageError};

/// Keys in one `BatchGetItem`.
const MAX_BATCH_GET: usize = 100;
/// Tries of a `BatchGetItem` that keeps returning `UnprocessedKeys`.
const MAX_BATCH_GET_ATTEMPTS: u32 = 8;

/// Items of partition `pk` in sort-key order — those whose sort key lies in `lower..=upper`
/// when `between` is given, and at most `wanted` when that is given: a strongly consistent
/// `Query`, following its pages.
pub(super) async fn query(
    inner: &Inner,
    pk: String,
    between: Option<(String, String)>,
    wanted: Option<usize>,
) -> Result<Vec<Item>, StorageError> {
    let mut found = Vec::with_capacity(wanted.unwrap_or(0).min(1_024));
    let mut start: Option<Item> = None;
    loop {
        let remaining = wanted.map(|w| w - found.len());
        let (items, last) =
            query_page(inner, &pk, between.as_ref(), remaining, start.take()).await?;
        found.extend(items);
        match last {
            Some(key) if wanted.is_none_or(|w| found.len() < w) => start = Some(key),
            _ => return Ok(found),
        }
    }
}

/// One page of [`query`] (DynamoDB answers at most 1 MB a page), at most `limit` items,
/// starting after `start`: the items, and the key to continue after when more may follow.
pub(super) async fn query_page(
    inner: &Inner,
    pk: &str,
    between: Option<&(String, String)>,
    limit: Option<usize>,
    start: Option<Item>,
) -> Result<(Vec<Item>, Option<Item>), StorageError> {
    let mut request = inner
        .client
        .query()
        .table_name(&inner.table)
        .expression_attribute_names("#pk", PARTITION_KEY)
        .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
        .consistent_read(true)
        .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
        .set_exclusive_start_key(start);
    request = match between {
        Some((lower, upper)) => request
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :lower AND :upper")
            .expression_attribute_names("#sk", SORT_KEY)
            .expression_attribute_values(":lower", AttributeValue::S(lower.clone()))
            .expression_attribute_values(":upper", AttributeValue::S(upper.clone())),
        None => request.key_condition_expression("#pk = :pk"),
    };
    inner.count();
    let mut output = request.send().await.map_err(|e| sdk_error("Query", e))?;
    let last = output
        .last_evaluated_key
        .take()
        .filter(|key| !key.is_empty());
    Ok((output.items.take().unwrap_or_default(), last))
}

/// Strongly consistent `BatchGetItem` of every key (100 a call, a few calls at once), retrying
/// `UnprocessedKeys`. Returns the items found, by `(pk, sk)`.
pub(super) async fn batch_get(
    inner: &Arc<Inner>,
    keys: Vec<(String, String)>,
) -> Result<HashMap<(String, String), Item>, StorageError> {
    let mut found = HashMap::with_capacity(keys.len());
    let mut calls = JoinSet::new();
    let mut chunks = keys.chunks(MAX_BATCH_GET).map(<[_]>::to_vec);
    loop {
        while calls.len() < PARALLEL_CALLS {
            let Some(chunk) = chunks.next() else { break };
            let inner = inner.clone();
            calls.spawn(async move { batch_get_once(&inner, chunk).await });
        }
        let Some(result) = calls.join_next().await else {
            break;
        };
        let items = result
            .map_err(|e| StorageError::Internal(Cause::new("BatchGetItem task failed", e)))??;
        for item in items {
            let pk = item.get(PARTITION_KEY).and_then(|v| v.as_s().ok()).cloned();
            let sk = item.get(SORT_KEY).and_then(|v| v.as_s().ok()).cloned();
            if let (Some(pk), Some(sk)) = (pk, sk) {
                found.insert((pk, sk), item);
            }
        }
    }
    Ok(found)
}

async fn batch_get_once(
    inner: &Inner,
    keys: Vec<(String, String)>,
) -> Result<Vec<Item>, StorageError> {
    let mut items = Vec::with_capacity(keys.len());
    let mut request = KeysAndAttributes::builder()
        .set_keys(Some(keys.into_iter().map(|(pk, sk)| key(pk, sk)).collect()))
        .consistent_read(true)
        .build()
        .map_err(|e| StorageError::Internal(Cause::new("building BatchGetItem", e)))?;
    for attempt in 0..MAX_BATCH_GET_ATTEMPTS {
        inner.count();
        let output = inner
            .client
            .batch_get_item()
            .request_items(&inner.table, request)
            .send()
            .await
            .map_err(|e| sdk_error("BatchGetItem", e))?;
        if let Some(found) = output.responses().and_then(|r| r.get(&inner.table)) {
            items.extend(found.iter().cloned());
        }
        match output
            .unprocessed_keys()
            .and_then(|u| u.get(&inner.table))
            .filter(|k| !k.keys().is_empty())
        {
            Some(unprocessed) => {
                request = unprocessed.clone();
                tracing::warn!(
                    attempt,
                    keys = unprocessed.keys().len(),
                    "DynamoDB BatchGetItem left keys unprocessed (throttling); retrying"
                );
                tokio::time::sleep(backoff(attempt)).await;
            }
            None => return Ok(items),
        }
    }
    Err(StorageError::Unavailable(
        "BatchGetItem kept returning unprocessed keys (throttled)".into(),
    ))
}
