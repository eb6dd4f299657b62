//! The DynamoDB table design. Terraform's `aws_dynamodb_table` must match it.
//!
//! One table, billing mode `PAY_PER_REQUEST`, no secondary index:
//! - partition key `pk`, type `S`;
//! - sort key `sk`, type `S`.
//!
//! Every item kind has its own `pk` prefix, so kinds never collide whatever a sensor id holds
//! (the prefix is fixed and the rest of the key is the whole id):
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | reading | `reading#<sensorID>` | time, fixed-width RFC 3339 UTC: `2021-10-04T09:00:00.000000Z` | `t` (N): temperature in integer micro-degrees Celsius; `expires_at` (N): with `RETENTION_RAW` set, the reading's time plus that period in Unix seconds (rounded up), the table's TTL attribute; `r` (N, 1): folded into the rollups (absent on readings of the previous version until the rollup build folds them) |
//! | per-sensor aggregate | `aggregate#sensor#<sensorID>` | `aggregate` | `c` (N) count, `s` (N) sum of micro-degrees, `mn`/`mx` (N) min/max micro-degrees; `rc` (N) readings folded into rollups, `v` (N) version, partials and first/latest (see `partials.rs`) |
//! | global aggregate shard | `aggregate#total` | `shard#NN` (`00`..) | `c`, `s`, `mn`, `mx`, `rc`, `v` and partials as above |
//! | `/picus` item | `item` | id, zero-padded to 20 digits: `00000000000000000042` | `json` (S): the item's JSON object |
//! | `/picus` id counter | `counter` | `picus` | `n` (N): last id handed out |
//!
//! Why this shape:
//! - a sensor's readings are one partition sorted by time, so `GET /api/readings` is one
//!   paginated `Query` with `sk BETWEEN`, and `(sensorID, time)` is the item's identity;
//! - numbers are DynamoDB `N` of integers (micro-degrees), exact to 38 digits, and `ADD` on them
//!   is exact: sums never round;
//! - the global aggregate is split over [`AGGREGATE_SHARDS`] items, each written by whichever
//!   transaction picks it, so no single item takes every write (a partition accepts about
//!   1,000 writes/s). `GET /api/stats` reads them with one `Query` on `pk = aggregate#total` and
//!   merges them: a fixed, small read whatever the table size. The shard count may grow later
//!   without a migration, since the `Query` returns whichever shards exist;
//! - per-sensor aggregates are one item per sensor: their writes are spread like the sensors,
//!   and one transaction updates a sensor's item once for up to 98 of its readings, so even a
//!   single very busy sensor stays far below a partition's write ceiling;
//! - `/picus` items share the partition `item`, so listing is a `Query` in id order (never a
//!   `Scan`). It is a small store: that partition's write ceiling is its limit.

use crate::domain::Timestamp;
use crate::domain::rollup::Level;

/// The partition key attribute (type `S`).
pub const PARTITION_KEY: &str = "pk";
/// The sort key attribute (type `S`).
pub const SORT_KEY: &str = "sk";

/// Reading temperature, integer micro-degrees (`N`).
pub const TEMPERATURE: &str = "t";
/// The table's TTL attribute (`N`, Unix seconds): DynamoDB deletes the item some time after.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// Aggregate attributes (`N`): count, sum of micro-degrees, minimum, maximum.
pub const COUNT: &str = "c";
pub const SUM: &str = "s";
pub const MIN: &str = "mn";
pub const MAX: &str = "mx";
/// Aggregate items' version (`N`), bumped by every write; writes are conditioned on it.
pub const VERSION: &str = "v";
/// Aggregate items (`N`): how many of the readings counted in `c` are folded into rollups and
/// partials (see `windows.rs`, "Tables written by the previous version").
pub const FOLDED_COUNT: &str = "rc";
/// Reading items (`N`, always 1): the reading is folded into rollups and partials. Readings of
/// the previous version lack it until the rollup build folds them.
pub const FOLDED_MARK: &str = "r";
/// Per-sensor aggregate: earliest reading time, latest reading's time and temperature (`N`, µs
/// and µ°C).
pub const FIRST: &str = "f";
pub const LATEST_TIME: &str = "lt";
pub const LATEST_TEMPERATURE: &str = "lv";
/// `/picus` item body (`S`, a JSON object).
pub const ITEM_JSON: &str = "json";
/// Counter value (`N`).
pub const COUNTER_VALUE: &str = "n";

/// How many items the global aggregate is spread over.
pub const AGGREGATE_SHARDS: usize = 16;

pub const AGGREGATE_TOTAL_PK: &str = "aggregate#total";
pub const SENSOR_AGGREGATE_SK: &str = "aggregate";
pub const ITEM_PK: &str = "item";
pub const COUNTER_PK: &str = "counter";
pub const PICUS_COUNTER_SK: &str = "picus";
/// The sensor registry's partition: one item per sensor, `sk` its id.
pub const REGISTRY_PK: &str = "sensors";
/// The table's rollup marker: present once a rollup build found every reading folded (or the
/// table had none). Informational: queries check the counts themselves.
pub const META_PK: &str = "meta";
pub const ROLLUPS_SK: &str = "rollups";
/// The rollup build's lease and cursor (`meta`/`rollup-build`).
pub const BUILD_SK: &str = "rollup-build";

pub fn reading_pk(sensor_id: &str) -> String {
    format!("reading#{sensor_id}")
}

pub fn sensor_aggregate_pk(sensor_id: &str) -> String {
    format!("aggregate#sensor#{sensor_id}")
}

pub fn shard_sk(shard: usize) -> String {
    format!("shard#{shard:02}")
}

/// A sensor's rollup items of one level: `sk` is the bucket start (as a reading's `sk`).
pub fn sensor_rollup_pk(level: Level, sensor_id: &str) -> String {
    format!("rollup#sensor#{}#{sensor_id}", level.name())
}

/// The all-sensor rollup items of one level: `sk` is `<bucket start>#<shard>`.
pub fn total_rollup_pk(level: Level) -> String {
    format!("rollup#total#{}", level.name())
}

pub fn bucket_sk(start: i64) -> String {
    Timestamp::from_micros(start).map_or_else(|| start.to_string(), Timestamp::to_sortable)
}

pub fn total_rollup_sk(start: i64, shard: usize) -> String {
    format!("{}#{shard:02}", bucket_sk(start))
}

pub fn item_sk(id: u64) -> String {
    format!("{id:020}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_sort_as_numbers() {
        assert_eq!(item_sk(42), "00000000000000000042");
        assert_eq!(item_sk(u64::MAX).len(), 20);
        assert!(item_sk(9) < item_sk(10));
    }

    #[test]
    fn kinds_never_collide() {
        assert_ne!(sensor_aggregate_pk("total"), AGGREGATE_TOTAL_PK);
        assert_ne!(reading_pk("x"), sensor_aggregate_pk("x"));
        assert_eq!(shard_sk(3), "shard#03");
    }
}
