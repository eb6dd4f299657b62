//! One chunk's `TransactWriteItems`: a conditional `Put` per new reading; per sensor of the
//! chunk, its aggregate item written whole (conditioned on its version and count), its
//! registry item when it is new, and its rollup deltas; one global aggregate shard, likewise,
//! with its all-sensor rollup deltas (see `windows.rs`). The rollup build's chunks of readings
//! of the previous version ([`Origin::Previous`]) are the same transaction, except that each
//! reading is marked folded (an `Update` on condition it is not yet) instead of put, and the
//! aggregate items' all-time counts stay as they are.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::attributes::{Item, key};
use super::partials::{Deltas, ItemState, Origin, Version};
use super::schema::{
    self, AGGREGATE_TOTAL_PK, COUNT, FOLDED_MARK, MAX, MIN, PARTITION_KEY, REGISTRY_PK, SUM,
    TEMPERATURE, TTL_ATTRIBUTE, VERSION,
};
use super::writer::{NewReading, key_item, reading_key, sensor_key};
use super::{Extent, Inner};
use crate::domain::rollup::Level;
use crate::domain::{Aggregate, Reading, SensorId};
use crate::storage::{Cause, StorageError};

/// DynamoDB's limit of actions in one `TransactWriteItems`.
pub(super) const MAX_ACTIONS: usize = 100;

/// A rollup item's key.
pub(super) type RollupKey = (String, String);

/// What each action of a transaction is, to read its cancellation reason.
pub(super) enum Action {
    Reading(usize),
    /// A reading of the previous version marked folded (the rollup build).
    Mark(usize),
    Sensor(SensorId),
    Registry,
    Shard(usize),
    Rollup(RollupKey),
}

/// A chunk's transaction: its actions, what each action is, and the states the sensors' and
/// the shard's items will have once it commits.
pub(super) struct Transaction {
    pub items: Vec<TransactWriteItem>,
    pub actions: Vec<Action>,
    pub sensors: BTreeMap<SensorId, ItemState>,
    pub shard: ItemState,
    /// Rollup items of late readings (their bucket is not the one the item leaves, so the
    /// rollup item may exist) whose min/max is not known: read them first, or a guard that
    /// fails would cancel the whole transaction.
    pub unknown_late: Vec<RollupKey>,
    /// Each rollup delta's key and min/max: once committed, the stored item reaches them.
    pub rollup_extents: Vec<(RollupKey, Extent)>,
}

/// What the chunk's writer knows of the items it writes.
pub(super) struct Knowledge<'a> {
    pub sensors: &'a HashMap<SensorId, ItemState>,
    pub shard: (usize, &'a ItemState),
    pub rollups: &'a HashMap<RollupKey, Extent>,
}

/// The transaction of a chunk of readings from `origin` (see the module documentation).
pub(super) fn transaction(
    inner: &Inner,
    chunk: &[NewReading],
    known: &Knowledge<'_>,
    origin: Origin,
) -> Result<Transaction, StorageError> {
    let mut items = Vec::with_capacity(MAX_ACTIONS);
    let mut actions = Vec::with_capacity(MAX_ACTIONS);
    let mut points: BTreeMap<SensorId, Vec<(i64, i64)>> = BTreeMap::new();
    for (position, pending) in chunk.iter().enumerate() {
        let reading = &pending.reading;
        match origin {
            Origin::New => {
                items.push(reading_put(inner, reading)?);
                actions.push(Action::Reading(position));
            }
            Origin::Previous => {
                items.push(reading_mark(inner, reading)?);
                actions.push(Action::Mark(position));
            }
        }
        points
            .entry(reading.sensor_id.clone())
            .or_default()
            .push((reading.time.micros(), reading.temperature.micros()));
    }
    let mut sensors = BTreeMap::new();
    let mut unknown_late = Vec::new();
    let mut rollup_extents = Vec::new();
    let mut all = Vec::with_capacity(chunk.len());
    for (sensor, points) in &points {
        all.extend_from_slice(points);
        let state = known.sensors.get(sensor).cloned().unwrap_or_default();
        let (next, deltas) = state.fold_from(origin, points);
        let (pk, sk) = sensor_key(sensor);
        items.push(state_put(inner, key(pk, sk), &state, &next)?);
        actions.push(Action::Sensor(sensor.clone()));
        // The previous version registered no sensor: its items are registered by the first
        // write of this version (a new reading or the build's fold), which gives them a `v`.
        if matches!(state.version, Version::Absent | Version::Legacy) {
            let registry = Put::builder()
                .table_name(&inner.table)
                .set_item(Some(key(REGISTRY_PK, sensor.as_str())))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().put(registry).build());
            actions.push(Action::Registry);
        }
        let keys = |level: Level, bucket: i64| {
            (
                schema::sensor_rollup_pk(level, sensor.as_str()),
                schema::bucket_sk(bucket),
            )
        };
        let out = Out {
            items: &mut items,
            actions: &mut actions,
            unknown_late: &mut unknown_late,
            extents: &mut rollup_extents,
        };
        push_deltas(inner, &state, &deltas, keys, known.rollups, out)?;
        sensors.insert(sensor.clone(), next);
    }
    let (shard, state) = known.shard;
    let (next, deltas) = state.fold_from(origin, &all);
    let shard_key = key(AGGREGATE_TOTAL_PK, schema::shard_sk(shard));
    items.push(state_put(inner, shard_key, state, &next)?);
    actions.push(Action::Shard(shard));
    let keys = |level: Level, bucket: i64| {
        (
            schema::total_rollup_pk(level),
            schema::total_rollup_sk(bucket, shard),
        )
    };
    let out = Out {
        items: &mut items,
        actions: &mut actions,
        unknown_late: &mut unknown_late,
        extents: &mut rollup_extents,
    };
    push_deltas(inner, state, &deltas, keys, known.rollups, out)?;
    Ok(Transaction {
        items,
        actions,
        sensors,
        shard: next,
        unknown_late,
        rollup_extents,
    })
}

/// A new reading's `Put` (marked folded), on condition that it is not stored yet.
fn reading_put(inner: &Inner, reading: &Reading) -> Result<TransactWriteItem, StorageError> {
    let mut item = key_item(reading_key(reading));
    item.insert(
        TEMPERATURE.to_owned(),
        AttributeValue::N(reading.temperature.micros().to_string()),
    );
    item.insert(FOLDED_MARK.to_owned(), AttributeValue::N("1".into()));
    if let Some(expires_at) = inner.expires_at(reading.time.micros()) {
        item.insert(
            TTL_ATTRIBUTE.to_owned(),
            AttributeValue::N(expires_at.to_string()),
        );
    }
    let put = Put::builder()
        .table_name(&inner.table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", PARTITION_KEY)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A stored reading of the previous version marked folded, on condition that it is still
/// there and not marked yet: so each is folded once, however many builders run.
fn reading_mark(inner: &Inner, reading: &Reading) -> Result<TransactWriteItem, StorageError> {
    let update = Update::builder()
        .table_name(&inner.table)
        .set_key(Some(key_item(reading_key(reading))))
        .update_expression("SET #m = :one")
        .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#m)")
        .expression_attribute_names("#pk", PARTITION_KEY)
        .expression_attribute_names("#m", FOLDED_MARK)
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StorageError {
    StorageError::Internal(Cause::new("building TransactWriteItems", e))
}

/// The item written whole in its next state, on condition that it is still as known: the same
/// version **and the same count**. The count matters while instances of the previous version
/// still write the table (a rolling deploy): their `ADD c, s` leaves `v` as it is, and a put
/// conditioned on `v` alone would overwrite it, losing an acknowledged reading from the
/// all-time aggregate. With the count in the condition, such an `ADD` cancels this put and
/// the retry folds into the stored state (`ALL_OLD`), which counts it.
pub(super) fn state_put(
    inner: &Inner,
    mut item: Item,
    known: &ItemState,
    next: &ItemState,
) -> Result<TransactWriteItem, StorageError> {
    item.extend(next.attributes());
    let mut put = Put::builder()
        .table_name(&inner.table)
        .set_item(Some(item))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .expression_attribute_names("#pk", PARTITION_KEY);
    let count = AttributeValue::N(known.aggregate.count.to_string());
    put = match known.version {
        // An `ADD` of the previous version creates the item: this condition fails then too.
        Version::Absent => put.condition_expression("attribute_not_exists(#pk)"),
        Version::Legacy => put
            .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#v) AND #c = :c")
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_names("#c", COUNT)
            .expression_attribute_values(":c", count),
        Version::At(v) => put
            .condition_expression("attribute_exists(#pk) AND #v = :v AND #c = :c")
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_names("#c", COUNT)
            .expression_attribute_values(":v", AttributeValue::N(v.to_string()))
            .expression_attribute_values(":c", count),
    };
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(build_error)?)
        .build())
}

/// Where [`push_deltas`] puts what it builds.
struct Out<'a> {
    items: &'a mut Vec<TransactWriteItem>,
    actions: &'a mut Vec<Action>,
    unknown_late: &'a mut Vec<RollupKey>,
    extents: &'a mut Vec<(RollupKey, Extent)>,
}

/// One `ADD` per rollup delta (see [`aggregate_update`]), each with its level's expiry. A
/// rollup item is written only by its own item's transactions, for buckets before that item's
/// current one (see `windows.rs`): the delta of the bucket the item leaves, or of a bucket
/// after it, creates the rollup item, so its guards always pass; a delta of an earlier bucket
/// (a late reading) may meet a stored min/max, which must be known (else it is listed in
/// `unknown_late`).
fn push_deltas(
    inner: &Inner,
    before: &ItemState,
    deltas: &Deltas,
    keys: impl Fn(Level, i64) -> RollupKey,
    known: &HashMap<RollupKey, Extent>,
    out: Out<'_>,
) -> Result<(), StorageError> {
    for (&(level, bucket), delta) in deltas {
        let key = keys(level, bucket);
        let extent = known.get(&key).copied();
        // Only a bucket before the item's current one can have a rollup item already.
        let may_exist = before.partial(level).is_some_and(|p| bucket < p.bucket);
        if extent.is_none() && may_exist {
            out.unknown_late.push(key.clone());
        }
        let expires = inner.rollup_expires_at(level, bucket);
        let extent = extent.unwrap_or_default();
        let update = aggregate_update(inner, key.clone(), delta, extent, expires)?;
        out.items.push(update);
        out.extents.push((
            key.clone(),
            Extent {
                min: delta.min_micros,
                max: delta.max_micros,
            },
        ));
        out.actions.push(Action::Rollup(key));
    }
    Ok(())
}

/// `ADD` count and sum (exact, commutative); `SET` min/max only where this delta extends what
/// is known, guarded so a concurrent writer's more extreme value is never overwritten (a
/// guard that fails cancels the transaction, whose retry knows the stored value); `SET` the
/// expiry when there is one.
fn aggregate_update(
    inner: &Inner,
    key: (String, String),
    delta: &Aggregate,
    known: Extent,
    expires_at: Option<i64>,
) -> Result<TransactWriteItem, StorageError> {
    let mut names = HashMap::from([
        ("#c".to_owned(), COUNT.to_owned()),
        ("#s".to_owned(), SUM.to_owned()),
    ]);
    let mut values = HashMap::from([
        (":c".to_owned(), AttributeValue::N(delta.count.to_string())),
        (
            ":s".to_owned(),
            AttributeValue::N(delta.sum_micros.to_string()),
        ),
    ]);
    let mut sets = Vec::new();
    let mut conditions = Vec::new();
    if let Some(expires_at) = expires_at {
        names.insert("#e".into(), TTL_ATTRIBUTE.into());
        values.insert(":e".into(), AttributeValue::N(expires_at.to_string()));
        sets.push("#e = :e");
    }
    if let Some(min) = delta.min_micros
        && known.min.is_none_or(|k| min < k)
    {
        names.insert("#mn".into(), MIN.into());
        values.insert(":mn".into(), AttributeValue::N(min.to_string()));
        sets.push("#mn = :mn");
        conditions.push("(attribute_not_exists(#mn) OR #mn >= :mn)");
    }
    if let Some(max) = delta.max_micros
        && known.max.is_none_or(|k| max > k)
    {
        names.insert("#mx".into(), MAX.into());
        values.insert(":mx".into(), AttributeValue::N(max.to_string()));
        sets.push("#mx = :mx");
        conditions.push("(attribute_not_exists(#mx) OR #mx <= :mx)");
    }
    let mut expression = "ADD #c :c, #s :s".to_owned();
    if !sets.is_empty() {
        expression.push_str(" SET ");
        expression.push_str(&sets.join(", "));
    }
    let condition = (!conditions.is_empty()).then(|| conditions.join(" AND "));
    let update = Update::builder()
        .table_name(&inner.table)
        .set_key(Some(key_item(key)))
        .update_expression(expression)
        .set_condition_expression(condition)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(|e| StorageError::Internal(Cause::new("building an aggregate update", e)))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{Aggregate, Temperature};

    fn inner() -> Inner {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        Inner {
            client: aws_sdk_dynamodb::Client::from_conf(config),
            table: "t".into(),
            requests: Default::default(),
            write_units: Default::default(),
            rollup_units: Default::default(),
            cancelled_units: Default::default(),
            timeout: Duration::from_secs(5),
            shards: Default::default(),
            retention_raw: crate::domain::retention::Period::FOREVER,
            retention: Default::default(),
            build: Default::default(),
        }
    }

    #[test]
    fn a_reading_expires_after_its_time_plus_the_raw_retention() {
        assert_eq!(inner().expires_at(1_633_338_000_000_000), None);
        let inner = Inner {
            retention_raw: crate::domain::retention::Period::seconds(60),
            ..inner()
        };
        // Rounded up to the next whole second, never before the horizon.
        assert_eq!(inner.expires_at(1_633_338_000_000_000), Some(1_633_338_061));
        assert_eq!(inner.expires_at(1_633_338_000_250_000), Some(1_633_338_061));
    }

    #[test]
    fn a_previous_reading_is_marked_and_folded_without_counting_it_again() {
        let sensor = SensorId::from_text("old").unwrap();
        let reading = Reading {
            sensor_id: sensor.clone(),
            time: crate::domain::Timestamp::from_micros(1_633_338_000_000_000).unwrap(),
            temperature: Temperature::from_micros(5_000_000).unwrap(),
        };
        let legacy = ItemState {
            version: Version::Legacy,
            aggregate: Aggregate::of([reading.temperature]),
            ..ItemState::default()
        };
        let sensors = HashMap::from([(sensor.clone(), legacy.clone())]);
        let rollups = HashMap::new();
        let known = Knowledge {
            sensors: &sensors,
            shard: (3, &legacy),
            rollups: &rollups,
        };
        let chunk = [NewReading {
            request: 0,
            index: 0,
            reading,
        }];
        let built = transaction(&inner(), &chunk, &known, Origin::Previous).unwrap();
        let kinds: Vec<&str> = built
            .actions
            .iter()
            .map(|a| match a {
                Action::Mark(_) => "mark",
                Action::Sensor(_) => "sensor",
                Action::Registry => "registry",
                Action::Shard(_) => "shard",
                Action::Reading(_) | Action::Rollup(_) => "other",
            })
            .collect();
        assert_eq!(kinds, ["mark", "sensor", "registry", "shard"]);
        let mark = built.items[0].update.as_ref().unwrap();
        assert_eq!(
            mark.condition_expression(),
            Some("attribute_exists(#pk) AND attribute_not_exists(#m)")
        );
        for state in [&built.sensors[&sensor], &built.shard] {
            assert_eq!(state.aggregate, legacy.aggregate, "counted once");
            assert_eq!((state.folded, state.unfolded()), (1, 0));
        }
        let put = built.items[1].put.as_ref().unwrap();
        assert_eq!(
            put.condition_expression(),
            Some("attribute_exists(#pk) AND attribute_not_exists(#v) AND #c = :c")
        );
        assert_eq!(
            put.expression_attribute_values().unwrap()[":c"],
            AttributeValue::N("1".into())
        );
        // A new reading's put carries the mark.
        let built = transaction(&inner(), &chunk, &known, Origin::New).unwrap();
        let item = built.items[0].put.as_ref().unwrap().item();
        assert_eq!(item[FOLDED_MARK], AttributeValue::N("1".into()));
        assert_eq!(built.sensors[&sensor].aggregate.count, 2);
    }

    #[test]
    fn aggregate_updates_add_always_and_set_min_max_only_when_they_extend() {
        let delta = Aggregate::of([3, -2].map(|m| Temperature::from_micros(m).unwrap()));
        let key = ("p".to_owned(), "s".to_owned());
        let update = |known: Extent| {
            let item = aggregate_update(&inner(), key.clone(), &delta, known, None).unwrap();
            item.update.unwrap()
        };
        let unknown = update(Extent::default());
        assert_eq!(
            unknown.update_expression(),
            "ADD #c :c, #s :s SET #mn = :mn, #mx = :mx"
        );
        assert_eq!(
            unknown.condition_expression(),
            Some(
                "(attribute_not_exists(#mn) OR #mn >= :mn) AND (attribute_not_exists(#mx) OR #mx <= :mx)"
            )
        );
        assert_eq!(
            unknown.expression_attribute_values().unwrap()[":s"],
            AttributeValue::N("1".into())
        );
        let wider = update(Extent {
            min: Some(-5),
            max: Some(5),
        });
        assert_eq!(wider.update_expression(), "ADD #c :c, #s :s");
        assert_eq!(wider.condition_expression(), None);
        assert_eq!(wider.expression_attribute_names().unwrap().len(), 2);
        let lower = update(Extent {
            min: Some(0),
            max: Some(5),
        });
        assert_eq!(lower.update_expression(), "ADD #c :c, #s :s SET #mn = :mn");
        assert!(
            !lower
                .expression_attribute_values()
                .unwrap()
                .contains_key(":mx")
        );
    }
}
