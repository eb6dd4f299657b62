//! One chunk's `TransactWriteItems`: a conditional `Put` per new reading, an `Update` per
//! sensor of the chunk and one of a global aggregate shard (see the parent module).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::schema::{
    self, AGGREGATE_TOTAL_PK, COUNT, MAX, MIN, PARTITION_KEY, SUM, TEMPERATURE, TTL_ATTRIBUTE,
};
use super::writer::{NewReading, key_item, reading_key, sensor_key};
use super::{Extent, Inner};
use crate::domain::{Aggregate, SensorId};
use crate::storage::{Cause, StorageError};

/// DynamoDB's limit of actions in one `TransactWriteItems`.
pub(super) const MAX_ACTIONS: usize = 100;

/// What each action of a transaction is, to read its cancellation reason.
pub(super) enum Action {
    Reading(usize),
    Sensor(SensorId),
    Shard(usize),
}

/// A chunk's transaction: its actions, what each action is, each sensor's delta and the
/// delta of the whole chunk (the shard's).
pub(super) struct Transaction {
    pub items: Vec<TransactWriteItem>,
    pub actions: Vec<Action>,
    pub deltas: BTreeMap<SensorId, Aggregate>,
    pub total: Aggregate,
}

/// The transaction of a chunk: conditional puts, one update per sensor, one shard update.
pub(super) fn transaction(
    inner: &Inner,
    chunk: &[NewReading],
    extents: &HashMap<SensorId, Extent>,
    shard: usize,
) -> Result<Transaction, StorageError> {
    let build = |e: aws_sdk_dynamodb::error::BuildError| {
        StorageError::Internal(Cause::new("building TransactWriteItems", e))
    };
    let mut items = Vec::with_capacity(MAX_ACTIONS);
    let mut actions = Vec::with_capacity(MAX_ACTIONS);
    let mut deltas: BTreeMap<SensorId, Aggregate> = BTreeMap::new();
    for (position, pending) in chunk.iter().enumerate() {
        let reading = &pending.reading;
        let mut item = key_item(reading_key(reading));
        item.insert(
            TEMPERATURE.to_owned(),
            AttributeValue::N(reading.temperature.micros().to_string()),
        );
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
            .map_err(build)?;
        items.push(TransactWriteItem::builder().put(put).build());
        actions.push(Action::Reading(position));
        deltas
            .entry(reading.sensor_id.clone())
            .or_default()
            .add(reading.temperature);
    }
    let mut total = Aggregate::default();
    for (sensor, delta) in &deltas {
        total = total.merge(delta);
        let known = extents.get(sensor).copied().unwrap_or_default();
        items.push(aggregate_update(inner, sensor_key(sensor), delta, known)?);
        actions.push(Action::Sensor(sensor.clone()));
    }
    let known = inner
        .shard_extents
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(shard)
        .copied()
        .unwrap_or_default();
    let key = (AGGREGATE_TOTAL_PK.to_owned(), schema::shard_sk(shard));
    items.push(aggregate_update(inner, key, &total, known)?);
    actions.push(Action::Shard(shard));
    debug_assert!(items.len() <= MAX_ACTIONS);
    Ok(Transaction {
        items,
        actions,
        deltas,
        total,
    })
}

/// `ADD` count and sum (exact, commutative); `SET` min/max only where this delta extends what
/// is known, guarded so a concurrent writer's more extreme value is never overwritten.
fn aggregate_update(
    inner: &Inner,
    key: (String, String),
    delta: &Aggregate,
    known: Extent,
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
    use crate::domain::Temperature;

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
            timeout: Duration::from_secs(5),
            shard_extents: Default::default(),
            retention_raw: crate::domain::retention::Period::FOREVER,
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
    fn aggregate_updates_add_always_and_set_min_max_only_when_they_extend() {
        let delta = Aggregate::of([3, -2].map(|m| Temperature::from_micros(m).unwrap()));
        let key = ("p".to_owned(), "s".to_owned());
        let update = |known: Extent| {
            let item = aggregate_update(&inner(), key.clone(), &delta, known).unwrap();
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
