//! Items as the previous release (before rollups, `git show bf8c112^:src/storage/dynamodb/`)
//! wrote them, written directly with the SDK: readings with `t` only (no fold mark), the
//! sensor's aggregate item and one of 16 global shards with `c, s, mn, mx` and no version, no
//! registry item, no marker.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, PutRequest, TransactWriteItem, Update, WriteRequest,
};

/// One reading: sensor, time (µs since the epoch), temperature (µ°C).
pub type Old = (String, i64, i64);

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A reading's sort key, as every release wrote it.
pub fn sort_key(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn reading_item(sensor: &str, micros: i64, value: i64) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), s(format!("reading#{sensor}"))),
        ("sk".to_owned(), s(sort_key(micros))),
        ("t".to_owned(), n(value)),
    ])
}

fn aggregate_item(pk: String, sk: String, values: &[i64]) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), s(pk)),
        ("sk".to_owned(), s(sk)),
        ("c".to_owned(), n(values.len())),
        (
            "s".to_owned(),
            n(values.iter().map(|v| i128::from(*v)).sum::<i128>()),
        ),
        ("mn".to_owned(), n(values.iter().min().unwrap())),
        ("mx".to_owned(), n(values.iter().max().unwrap())),
    ])
}

/// The table as the previous release left it after writing `readings` and `gone` (each with
/// distinct `(sensor, time)`), the readings `gone` deleted by their TTL since: the readings
/// kept, each sensor's aggregate item and the shards counting both (reading `i` counted on
/// shard `i % 16`), written whole with `BatchWriteItem` (the end state of the previous
/// release's transactions, without their round trips).
pub async fn write_table(client: &Client, table: &str, readings: &[Old], gone: &[Old]) {
    let mut items = Vec::new();
    let mut sensors: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let mut shards: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    for (i, (sensor, micros, value)) in readings.iter().chain(gone).enumerate() {
        if i < readings.len() {
            items.push(reading_item(sensor, *micros, *value));
        }
        sensors.entry(sensor).or_default().push(*value);
        shards.entry(i % 16).or_default().push(*value);
    }
    for (sensor, values) in &sensors {
        let pk = format!("aggregate#sensor#{sensor}");
        items.push(aggregate_item(pk, "aggregate".into(), values));
    }
    for (shard, values) in &shards {
        let sk = format!("shard#{shard:02}");
        items.push(aggregate_item("aggregate#total".into(), sk, values));
    }
    for batch in items.chunks(25) {
        let mut requests: Vec<WriteRequest> = batch
            .iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item.clone()))
                    .build()
                    .unwrap();
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        while !requests.is_empty() {
            let output = client
                .batch_write_item()
                .request_items(table, requests)
                .send()
                .await
                .expect("BatchWriteItem");
            requests = output
                .unprocessed_items()
                .and_then(|u| u.get(table))
                .cloned()
                .unwrap_or_default();
        }
    }
}

/// One reading written as a running instance of the previous release writes it, while this
/// version may be writing the same items: one transaction of the reading's conditional `Put`
/// and `ADD c, s` (with `SET mn`/`mx` where the reading extends what was read, guarded) on the
/// sensor's item and on `shard`, never touching a version; retried when cancelled.
pub async fn write_one(client: &Client, table: &str, (sensor, micros, value): &Old, shard: usize) {
    let sensor_key = (format!("aggregate#sensor#{sensor}"), "aggregate".to_owned());
    let shard_key = ("aggregate#total".to_owned(), format!("shard#{shard:02}"));
    for _ in 0..50 {
        let mut actions = vec![
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(reading_item(sensor, *micros, *value)))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .unwrap(),
                )
                .build(),
        ];
        for (pk, sk) in [&sensor_key, &shard_key] {
            let stored = client
                .get_item()
                .table_name(table)
                .key("pk", s(pk.clone()))
                .key("sk", s(sk.clone()))
                .consistent_read(true)
                .send()
                .await
                .expect("GetItem");
            let number = |name: &str| {
                stored
                    .item()
                    .and_then(|i| i.get(name))
                    .map(|v| v.as_n().unwrap().parse::<i64>().unwrap())
            };
            let mut expression = "ADD c :one, s :s".to_owned();
            let mut conditions = Vec::new();
            let mut sets = Vec::new();
            if number("mn").is_none_or(|mn| *value < mn) {
                sets.push("mn = :v");
                conditions.push("(attribute_not_exists(mn) OR mn >= :v)");
            }
            if number("mx").is_none_or(|mx| *value > mx) {
                sets.push("mx = :v");
                conditions.push("(attribute_not_exists(mx) OR mx <= :v)");
            }
            if !sets.is_empty() {
                expression.push_str(" SET ");
                expression.push_str(&sets.join(", "));
            }
            let mut update = Update::builder()
                .table_name(table)
                .key("pk", s(pk.clone()))
                .key("sk", s(sk.clone()))
                .update_expression(expression)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":s", n(value));
            if !sets.is_empty() {
                update = update
                    .condition_expression(conditions.join(" AND "))
                    .expression_attribute_values(":v", n(value));
            }
            actions.push(
                TransactWriteItem::builder()
                    .update(update.build().unwrap())
                    .build(),
            );
        }
        match client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
        {
            Ok(_) => return,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    panic!("the previous-version write of {sensor} at {micros} kept being cancelled");
}

/// `count` readings of `sensors` over three days from 2021-10-04 (some at fractions of a
/// second, clustered in a few minutes and hours so buckets hold many), distinct by
/// `(sensor, time)`, deterministic for a `seed`.
pub fn readings(seed: u64, count: usize, sensors: &[&str]) -> Vec<Old> {
    const T0: i64 = 1_633_305_600; // 2021-10-04T00:00:00Z
    let mut state = seed | 1;
    let mut next = move |n: u64| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    };
    let mut found = BTreeMap::new();
    while found.len() < count {
        let sensor = sensors[next(sensors.len() as u64) as usize];
        let second = match next(3) {
            0 => next(3 * 86_400) as i64,
            1 => 3_600 + next(600) as i64,
            _ => 86_400 - 30 + next(60) as i64,
        };
        let fraction = if next(5) == 0 {
            next(1_000_000) as i64
        } else {
            0
        };
        let micros = (T0 + second) * 1_000_000 + fraction;
        let value = next(80_000_000) as i64 - 30_000_000;
        found.insert((sensor.to_owned(), micros), value);
    }
    found.into_iter().map(|((s, t), v)| (s, t, v)).collect()
}

/// Holds the rollup build's lease as another instance would (for an hour), or gives it up.
pub async fn hold_build_lease(client: &Client, table: &str, held: bool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let until = if held { now + 3_600_000 } else { 0 };
    client
        .update_item()
        .table_name(table)
        .key("pk", s("meta"))
        .key("sk", s("rollup-build"))
        .update_expression("SET #o = :o, #u = :u")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_names("#u", "until")
        .expression_attribute_values(":o", s("another instance"))
        .expression_attribute_values(":u", n(until))
        .send()
        .await
        .expect("lease item written");
}

/// Takes the rollup build's lease from its holder (for an hour) if a pass is under way, that
/// is if a cursor is stored: the holder's next renewal fails and its pass stops there, with
/// the cursor kept. `false`: no cursor stored (yet, or any more).
pub async fn take_build_lease_mid_pass(client: &Client, table: &str) -> bool {
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 3_600_000;
    client
        .update_item()
        .table_name(table)
        .key("pk", s("meta"))
        .key("sk", s("rollup-build"))
        .update_expression("SET #o = :o, #u = :u")
        .condition_expression("attribute_exists(csk)")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_names("#u", "until")
        .expression_attribute_values(":o", s("another instance"))
        .expression_attribute_values(":u", n(until))
        .send()
        .await
        .is_ok()
}
