//! The rollup build: folds the readings the previous version stored (no fold mark) into the
//! rollups, partials and first/latest readings, each exactly once, in the background of every
//! instance started with [`super::DynamoStore::open`] (see `windows.rs`, "Tables written by
//! the previous version", for why queries stay exact meanwhile).
//!
//! One pass is a paginated `Scan` of the reading items without the mark. Each page's readings
//! go through the writer's own chunked transactions ([`run_chunk`] with [`Origin::Previous`]):
//! a reading is marked on condition it is still unmarked, in the transaction that folds it
//! into its sensor's item and one shard (versioned, count-conditioned puts), so a reading
//! folded by another builder meanwhile cancels only itself out of the retry, and a version or
//! count that moved is retried from the stored state, as for writes.
//!
//! Only the holder of the lease (`meta`/`rollup-build`: an owner and an expiry time, taken by
//! a conditional update) scans; the others try again later. The lease saves duplicate scans,
//! not exactness: two builders at once (a lease expired under a slow one) still fold each
//! reading once. The holder stores the `Scan`'s `LastEvaluatedKey` on the lease item after
//! every page, so a build stopped by a restart or a deploy continues from there.
//!
//! After a pass, the shards tell how many readings are still unfolded (`Σc − Σrc`): none, and
//! the build puts the marker `meta`/`rollups` and waits; some (instances of the previous version
//! still writing, or readings written behind the cursor), and it starts another pass after a
//! pause. A query that finds unfolded readings wakes the waiting build, so readings written by
//! previous-version instances after a build finished are folded too.
//!
//! **Readings that are gone.** With `RETENTION_RAW`, DynamoDB's TTL deletes readings, and the
//! previous version's counts still count the deleted ones, which no pass can find. A pass
//! from the start that found no unmarked reading, under a lease renewed after every page (so
//! no other builder ran), while `Σc − Σrc` stayed the same from its start to its end (a
//! previous-version write would have raised it: only folds lower it), proves that the
//! readings still unfolded are no longer in the table (a `Scan` returns every item that
//! exists throughout it). The pass also lists the sensor items with `c > rc`; each is then
//! *written off*: its `rc` set to its `c`, and one shard's `rc` raised by as much, in one
//! transaction conditioned on both items' versions and counts (a write meanwhile cancels it,
//! and a later pass tries again). Those readings stay in the all-time stats and summaries
//! (as every deleted reading does) and are in no window, as if deleted after being folded
//! with their rollups expired.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use tokio::sync::Notify;

use super::attributes::{Item, key, string_of, temperature_of, timestamp_of_sort_key};
use super::chunk::run_chunk;
use super::partials::{ItemState, Origin};
use super::query::batch_get;
use super::schema::{
    self, AGGREGATE_TOTAL_PK, BUILD_SK, COUNT, FOLDED_COUNT, FOLDED_MARK, META_PK, PARTITION_KEY,
    ROLLUPS_SK, SORT_KEY,
};
use super::transaction::state_put;
use super::writer::{NewReading, pack, sensor_key};
use super::{Inner, query, sdk_error, shards, windows};
use crate::domain::{Reading, SensorId};
use crate::storage::StorageError;

/// Items a `Scan` page evaluates (the filter drops marked readings and other items after
/// that): a page's unfolded readings are a handful of transactions.
const PAGE_ITEMS: i32 = 200;
/// How long a lease lasts unless renewed (every page renews it).
const LEASE: Duration = Duration::from_secs(30);
/// Pause before another pass while readings are left, and before trying a held lease again;
/// it doubles after every such step, up to [`MAX_PAUSE`], and starts over once the build is
/// done. Each pass reads the whole table, so while previous-version instances go on writing
/// (a slow rolling deploy) the passes grow rarer instead of scanning the table back to back.
const PAUSE: Duration = Duration::from_secs(2);
const MAX_PAUSE: Duration = Duration::from_secs(300);
/// Pause after a failed page or lease call (DynamoDB unreachable, throttled).
const ERROR_PAUSE: Duration = Duration::from_secs(5);

/// Wakes the waiting build of this instance (a query found unfolded readings).
#[derive(Default)]
pub(crate) struct Signal(Notify);

impl Signal {
    pub(crate) fn wake(&self) {
        self.0.notify_one();
    }
}

/// Starts this instance's build task. It holds the store only while it works, so it ends
/// once the store is dropped.
pub(super) fn spawn(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    let owner = format!("{:016x}", rand_u64());
    tokio::spawn(async move { run(weak, owner).await });
}

fn rand_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(Instant::now())
}

/// What one step of the build came to.
enum Step {
    /// Every reading is folded: wait until woken.
    Done,
    /// Readings are left, or another instance holds the lease: try again after a pause.
    Again,
}

async fn run(weak: Weak<Inner>, owner: String) {
    let mut pause = PAUSE;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let step = step(&weak, &inner, &owner).await;
        drop(inner);
        match step {
            Ok(Step::Done) => {
                pause = PAUSE;
                // Until a query finds unfolded readings: no DynamoDB call meanwhile. Waiting
                // holds the store, so check now and then whether it is gone.
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    let woken =
                        tokio::time::timeout(Duration::from_secs(5), inner.build.0.notified())
                            .await;
                    if woken.is_ok() {
                        break;
                    }
                }
            }
            Ok(Step::Again) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(error) => {
                tracing::warn!(%error, "rollup build: a call failed; trying again shortly");
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
}

/// One step: nothing to do, or one pass under the lease.
async fn step(weak: &Weak<Inner>, inner: &Arc<Inner>, owner: &str) -> Result<Step, StorageError> {
    let at_start = unfolded(inner).await?;
    if at_start <= 0 {
        return Ok(Step::Done);
    }
    let Some(mut cursor) = take_lease(inner, owner).await? else {
        return Ok(Step::Again); // another instance is building
    };
    tracing::info!(
        resumed = cursor.is_some(),
        "rollup build: folding the readings written by the previous version"
    );
    let resumed = cursor.is_some();
    let (mut pages, mut folded, mut found) = (0u64, 0u64, 0usize);
    let mut short = BTreeSet::new();
    loop {
        // Stop with the store: the lease is given up, the cursor kept for the next holder.
        if weak.strong_count() <= 1 {
            release_lease(inner, owner).await?;
            return Ok(Step::Again);
        }
        let (readings, sensors, next) = scan_page(inner, cursor.clone()).await?;
        found += readings.len();
        short.extend(sensors);
        folded += fold(inner, readings).await?;
        pages += 1;
        if !renew_lease(inner, owner, next.as_ref()).await? {
            tracing::info!("rollup build: the lease passed to another instance");
            return Ok(Step::Again);
        }
        let left = unfolded(inner).await?;
        tracing::info!(
            pages,
            folded,
            left,
            "rollup build: progress (left: readings of the previous version not yet folded)"
        );
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    let mut left = unfolded(inner).await?;
    // See "Readings that are gone" (a resumed pass did not see the whole table).
    if left > 0 && found == 0 && left == at_start && !resumed {
        let gone = write_off(inner, &short).await?;
        tracing::warn!(
            gone,
            "rollup build: readings of the previous version counted but no longer in the table \
             (deleted by their TTL before the build folded them): kept in all-time stats, in \
             no window"
        );
        left = unfolded(inner).await?;
    }
    if left > 0 {
        release_lease(inner, owner).await?;
        tracing::info!(
            left,
            "rollup build: pass done, readings left (written meanwhile); another pass follows"
        );
        return Ok(Step::Again);
    }
    put_marker(inner).await?;
    release_lease(inner, owner).await?;
    tracing::info!(pages, folded, "rollup build: done, every reading is folded");
    Ok(Step::Done)
}

/// `Σc − Σrc` over the global shards: readings in no rollup yet.
pub(super) async fn unfolded(inner: &Inner) -> Result<i128, StorageError> {
    let shards = query::query(inner, AGGREGATE_TOTAL_PK.into(), None, None).await?;
    let mut left = 0;
    for item in &shards {
        left += ItemState::from_item(Some(item))?.unfolded();
    }
    Ok(left)
}

/// One `Scan` page of reading items without the fold mark (strongly consistent, so marks
/// just written are seen), the sensors whose items count readings not folded, and where the
/// next page starts.
async fn scan_page(
    inner: &Inner,
    start: Option<Item>,
) -> Result<(Vec<Reading>, Vec<SensorId>, Option<Item>), StorageError> {
    inner.count();
    let output = inner
        .client
        .scan()
        .table_name(&inner.table)
        .filter_expression(
            "(begins_with(#pk, :reading) AND attribute_not_exists(#m)) OR \
             (begins_with(#pk, :sensor) AND (attribute_not_exists(#rc) OR #c <> #rc))",
        )
        .expression_attribute_names("#pk", PARTITION_KEY)
        .expression_attribute_names("#m", FOLDED_MARK)
        .expression_attribute_names("#rc", FOLDED_COUNT)
        .expression_attribute_names("#c", COUNT)
        .expression_attribute_values(":reading", AttributeValue::S("reading#".into()))
        .expression_attribute_values(":sensor", AttributeValue::S(SENSOR_PREFIX.into()))
        .consistent_read(true)
        .limit(PAGE_ITEMS)
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(|e| sdk_error("Scan", e))?;
    let mut readings = Vec::with_capacity(output.items().len());
    let mut sensors = Vec::new();
    let id_of = |id: &str| SensorId::from_text(id).map_err(|e| StorageError::Internal(e.into()));
    for item in output.items() {
        let pk = string_of(item, PARTITION_KEY)?;
        if let Some(id) = pk.strip_prefix(SENSOR_PREFIX) {
            if ItemState::from_item(Some(item))?.unfolded() > 0 {
                sensors.push(id_of(id)?);
            }
            continue;
        }
        let id = pk.strip_prefix("reading#").unwrap_or(pk);
        readings.push(Reading {
            sensor_id: SensorId::from_text(id).map_err(|e| StorageError::Internal(e.into()))?,
            time: timestamp_of_sort_key(string_of(item, SORT_KEY)?)?,
            temperature: temperature_of(item)?,
        });
    }
    let next = output
        .last_evaluated_key()
        .filter(|k| !k.is_empty())
        .cloned();
    Ok((readings, sensors, next))
}

/// The `pk` prefix of sensor aggregate items.
const SENSOR_PREFIX: &str = "aggregate#sensor#";

/// Writes off, per sensor, the readings its item counts and no rollup holds (see "Readings
/// that are gone"): its `rc` set to its `c` and one shard's `rc` raised by as much, in one
/// transaction conditioned on both items as read. Returns how many were written off; a
/// cancelled one (a write meanwhile) is left to a later pass.
async fn write_off(inner: &Arc<Inner>, sensors: &BTreeSet<SensorId>) -> Result<u64, StorageError> {
    let found = batch_get(inner, sensors.iter().map(sensor_key).collect()).await?;
    let mut written = 0;
    for sensor in sensors {
        let state = ItemState::from_item(found.get(&sensor_key(sensor)))?;
        let gap = match u64::try_from(state.unfolded()) {
            Ok(gap) if gap > 0 => gap,
            _ => continue,
        };
        let lease = shards::lease(inner);
        let shard_key = (AGGREGATE_TOTAL_PK.to_owned(), schema::shard_sk(lease.shard));
        let shard = ItemState::from_item(windows::get(inner, shard_key.clone()).await?.as_ref())?;
        let next_shard = shard.written_off(gap);
        let (pk, sk) = sensor_key(sensor);
        let items = vec![
            state_put(inner, key(pk, sk), &state, &state.written_off(gap))?,
            state_put(inner, key(shard_key.0, shard_key.1), &shard, &next_shard)?,
        ];
        inner.count();
        inner.bill(4);
        let result = inner
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => {
                shards::learn(inner, lease.shard, next_shard);
                written += gap;
            }
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(TransactWriteItemsError::TransactionCanceledException(_))
                ) => {}
            Err(error) => return Err(sdk_error("TransactWriteItems", error)),
        }
    }
    Ok(written)
}

/// Folds a page's readings, chunk after chunk (the writer's chunks, so the 100-action limit
/// and every retry are its own): how many this builder folded (the others were folded by
/// another builder meanwhile). An error leaves the page for the next pass.
async fn fold(inner: &Arc<Inner>, readings: Vec<Reading>) -> Result<u64, StorageError> {
    if readings.is_empty() {
        return Ok(0);
    }
    let mut pending: Vec<NewReading> = readings
        .into_iter()
        .enumerate()
        .map(|(request, reading)| NewReading {
            request,
            index: 0,
            reading,
        })
        .collect();
    pending.sort_by(|a, b| a.reading.sensor_id.cmp(&b.reading.sensor_id));
    let mut sensors: Vec<SensorId> = pending
        .iter()
        .map(|p| p.reading.sensor_id.clone())
        .collect();
    sensors.dedup();
    let found = batch_get(inner, sensors.iter().map(sensor_key).collect()).await?;
    let mut states = std::collections::HashMap::new();
    for sensor in sensors {
        let state = ItemState::from_item(found.get(&sensor_key(&sensor)))?;
        states.insert(sensor, state);
    }
    let mut folded = 0;
    for chunk in pack(pending) {
        let chunk_states = chunk
            .iter()
            .map(|p| {
                let id = p.reading.sensor_id.clone();
                let state = states.get(&id).cloned().unwrap_or_default();
                (id, state)
            })
            .collect();
        let deadline = Instant::now() + inner.timeout;
        let report = run_chunk(inner, chunk, chunk_states, deadline, Origin::Previous).await;
        folded += report.stored.len() as u64;
        states.extend(report.sensors);
        if let Some((_, error)) = report.error {
            return Err(error);
        }
    }
    Ok(folded)
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Takes (or keeps) the lease when it is free, expired or this instance's: `Some(cursor)`
/// where the last holder stopped (`None` inside: from the start), `None` when another
/// instance holds it.
async fn take_lease(inner: &Inner, owner: &str) -> Result<Option<Option<Item>>, StorageError> {
    inner.count();
    inner.bill(1);
    let now = now_millis();
    let until = now + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    let result = inner
        .client
        .update_item()
        .table_name(&inner.table)
        .set_key(Some(key(META_PK, BUILD_SK)))
        .update_expression("SET #o = :me, #u = :until")
        .condition_expression("attribute_not_exists(#o) OR #u < :now OR #o = :me")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_names("#u", "until")
        .expression_attribute_values(":me", AttributeValue::S(owner.to_owned()))
        .expression_attribute_values(":until", number(until))
        .expression_attribute_values(":now", number(now))
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    match result {
        Ok(output) => {
            let item = output.attributes().cloned().unwrap_or_default();
            let cursor = match (item.get("cpk"), item.get("csk")) {
                (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => {
                    Some(key(pk.clone(), sk.clone()))
                }
                _ => None,
            };
            Ok(Some(cursor))
        }
        Err(error) if is_condition_failure(&error) => Ok(None),
        Err(error) => Err(sdk_error("UpdateItem", error)),
    }
}

fn is_condition_failure<E, R>(error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

/// Extends the lease and stores where the next page starts (`None`: the pass is done, the
/// cursor is removed). `false`: the lease is another instance's now.
async fn renew_lease(
    inner: &Inner,
    owner: &str,
    next: Option<&Item>,
) -> Result<bool, StorageError> {
    inner.count();
    inner.bill(1);
    let until = now_millis() + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    let mut request = inner
        .client
        .update_item()
        .table_name(&inner.table)
        .set_key(Some(key(META_PK, BUILD_SK)))
        .condition_expression("#o = :me")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_names("#u", "until")
        .expression_attribute_names("#cp", "cpk")
        .expression_attribute_names("#cs", "csk")
        .expression_attribute_values(":me", AttributeValue::S(owner.to_owned()))
        .expression_attribute_values(":until", number(until));
    request = match next.map(|k| (k.get(PARTITION_KEY), k.get(SORT_KEY))) {
        Some((Some(pk), Some(sk))) => request
            .update_expression("SET #u = :until, #cp = :cp, #cs = :cs")
            .expression_attribute_values(":cp", pk.clone())
            .expression_attribute_values(":cs", sk.clone()),
        _ => request.update_expression("SET #u = :until REMOVE #cp, #cs"),
    };
    match request.send().await {
        Ok(_) => Ok(true),
        Err(error) if is_condition_failure(&error) => Ok(false),
        Err(error) => Err(sdk_error("UpdateItem", error)),
    }
}

/// Gives the lease up (the cursor stays for the next holder).
async fn release_lease(inner: &Inner, owner: &str) -> Result<(), StorageError> {
    inner.count();
    inner.bill(1);
    let result = inner
        .client
        .update_item()
        .table_name(&inner.table)
        .set_key(Some(key(META_PK, BUILD_SK)))
        .update_expression("REMOVE #o, #u")
        .condition_expression("#o = :me")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_names("#u", "until")
        .expression_attribute_values(":me", AttributeValue::S(owner.to_owned()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(error) if is_condition_failure(&error) => Ok(()),
        Err(error) => Err(sdk_error("UpdateItem", error)),
    }
}

/// The marker: a build found every reading folded.
pub(super) async fn put_marker(inner: &Inner) -> Result<(), StorageError> {
    inner.count();
    inner.bill(1);
    inner
        .client
        .put_item()
        .table_name(&inner.table)
        .set_item(Some(key(META_PK, ROLLUPS_SK)))
        .send()
        .await
        .map_err(|e| sdk_error("PutItem", e))?;
    Ok(())
}
