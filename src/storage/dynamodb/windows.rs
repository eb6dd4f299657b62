//! Windows, series and sensor summaries on DynamoDB: `GET /api/stats?from&to`, `/api/series`,
//! `/api/sensors` and `/api/sensors/{id}`, exact for any bounds, from rollup items, the
//! partials of the current buckets and the raw readings of the edges (never the readings in
//! between). Items: see [`super::schema`].
//!
//! # Writes: partials of the current bucket, rollup items when a bucket is left
//!
//! Every reading transaction already writes its sensors' aggregate items and one global
//! aggregate shard (`transaction.rs`). Each of those items now also carries, per level
//! (minute, hour, day), the **partial** aggregate of its *current* bucket — the latest bucket
//! it has seen — plus, on sensor items, the first and the latest reading (by reading time) and
//! a version `v`. A chunk's readings move the item on (`partials.rs`, [`ItemState::fold`]):
//! - a reading of the current bucket, or of a later one, goes into the item's partial (a later
//!   one first makes its bucket current, and the partial of the bucket left behind becomes a
//!   delta of that bucket's rollup item);
//! - a reading of an earlier bucket (a late reading) is a delta of its bucket's rollup item.
//!
//! The item is written whole (`Put`) on condition that it still has the version the state was
//! computed from, and each delta is an `ADD` to its rollup item (per sensor: `rollup#sensor#
//! <level>#<id>`/bucket; over all sensors: `rollup#total#<level>`/`<bucket>#<shard>`), in the
//! same transaction. The first reading of a sensor also puts its registry item (`sensors`/id),
//! which `/api/sensors` pages through.
//!
//! # Why it is exact under races
//!
//! - **Each reading is counted once.** Its conditional `Put` (`attribute_not_exists`) commits
//!   at most once, in the transaction that also adds it to its sensor's item and to one shard.
//! - **Each item's states form one chain.** Every write of a sensor item or shard is
//!   conditioned on the version and count it was computed from, and a transaction is all-or-nothing: a
//!   concurrent writer (another instance, or a retry) fails its condition, the cancellation
//!   returns the stored item (`ALL_OLD`), and the retry folds its readings into that state.
//!   Within one instance a chunk *leases* its shard (`shards.rs`), so the instance's own
//!   transactions never race on one; chunks of one wave share no sensor, as before.
//! - **So, per item, level and bucket `b`:** the readings of `b` that item has counted are
//!   exactly its rollup delta(s) for `b` plus its partial when `b` is current. A bucket stops
//!   being current only once (buckets only move forward), and that transaction moves the
//!   partial into the rollup item; late readings of `b` arrive only after that (the item's
//!   current bucket is past `b`, or `b` would be current) and are `ADD`ed, commutatively.
//! - **Min and max** of rollup items only move outwards: a delta `SET`s them only when it
//!   extends what is known, guarded (`attribute_not_exists(mn) OR mn >= :mn`); a failing guard
//!   cancels the transaction and the retry knows the stored value (as for the aggregates
//!   before). Partials are computed whole from the known state, so they need no guard.
//! - **Queries read a snapshot.** A window reads the items' current buckets (the sensor's item,
//!   or all shards), then the rollup items and raw readings, then the current buckets again;
//!   if any moved (a bucket closed in between, so its partial may be in both or neither), it
//!   reads again (up to 8 times, then 503). Otherwise every reading is in exactly one of: a
//!   rollup item read, a partial of the second read, or a raw edge. Readings committed during
//!   the query may or may not be counted; none twice.
//! - **Latest per sensor** is on the sensor item, replaced only by a reading with a later
//!   time, in the same versioned write.
//!
//! # What it costs (write units, counted from the requests as AWS bills them)
//!
//! Nothing per reading while its buckets stay open: the partials ride on the two item writes
//! every reading transaction already made (items stay far below 1 KB: about 35 numbers plus
//! the key). A sensor leaving a minute adds one `ADD` action (2 WU) — at 1 Hz once per 60
//! readings, ~0.033 WU per reading, plus ~0.0006 for hours; each of the 16 shards leaves a
//! minute at most once a minute (negligible for a fleet). A new sensor adds its registry put
//! once. A late reading adds at most one action per level and item (≤ 6 per chunk, shared by
//! the chunk's readings of the same buckets). Measured before and after: BENCHMARKS.md,
//! "DynamoDB: write units per reading". The 100-action limit: readings whose deltas would
//! push a transaction past it are split into the next transaction (`chunk.rs`).
//!
//! # Hot keys
//!
//! Per reading, still only the sensor's item and one of 16 shards are written. Rollup items
//! are written once per bucket and item (per sensor: the sensor's own partitions; over all
//! sensors: one partition per level taking ~16 writes a minute plus late readings, far below
//! a partition's 1,000 writes/s). The registry partition takes one write per new sensor.
//!
//! # Reads
//!
//! A window is planned as on the embedded store ([`plan`]) with levels minute, hour and day:
//! at most 5 rollup ranges (one `Query` each; over all sensors up to 16 items per bucket, one
//! per shard) and 2 raw edges shorter than two minutes. One sensor's raw edge is one `Query` of
//! its readings; over all sensors it is one `Query` per registered sensor (there is no second
//! level here: keeping one per shard would cost a rollup write per transaction, up to 2 WU
//! per reading for small fleets) — bounded by the fleet's size, never by the window's
//! readings. A series is planned again with these levels.
//!
//! # Retention
//!
//! Rollup items carry `expires_at`: their bucket's end plus `RETENTION_MINUTE`/`HOUR`/`DAY`
//! (DynamoDB's TTL deletes them, as it deletes readings after `RETENTION_RAW`). Partials live
//! on the aggregate items, which never expire.
//!
//! # Tables written by the previous version
//!
//! The previous release wrote each reading with a conditional `Put` plus `ADD c, s` (and
//! guarded `SET mn/mx`) on its sensor's item and one shard, with no version and no rollup. Its
//! readings are in no rollup, and during a rolling or blue/green deploy its instances keep
//! writing the same table for a while. What keeps every answer exact:
//!
//! - **Counting what is folded.** Every aggregate item this version writes carries `rc`, the
//!   readings folded into rollups and partials by that item, bumped with `c` by each write; a
//!   previous-version write bumps `c` alone, and its `ADD` cancels our count-conditioned put
//!   (`transaction.rs`), so it is never overwritten. So `c − rc` readings of an item are in no
//!   rollup. A legacy item (no `v`) has `rc = 0`; an item with `v` but no `rc` (written by
//!   unreleased development builds, which only ran on complete tables) counts `rc = c`.
//! - **Marking what is folded.** Every reading this version writes carries the mark `r`;
//!   previous-version readings lack it until the build folds them.
//! - **Queries guard themselves.** A window over one sensor, and `/api/sensors/{id}`, is
//!   answered only if that sensor's item (read for the snapshot anyway) has `c == rc`; over all
//!   sensors, and `/api/sensors` (whose registry the previous version never filled), only if
//!   `Σc == Σrc` over the 16 shards (read anyway; `/api/sensors` reads them too). Both snapshot
//!   reads are checked. Otherwise the answer is 503 + `Retry-After` saying how many readings
//!   are left (`Σc − Σrc`), and the instance's build is woken. All-time stats and readings
//!   are always served (the previous version kept `c, s, mn, mx` exactly).
//! - **The build** (`build.rs`), a background task of each instance started by
//!   [`DynamoStore::open`] (not by `connect`, the Lambda's): under a lease (a conditional
//!   update of `meta`/`rollup-build` with an expiry time) one instance at a time pages
//!   through a `Scan` of the unmarked readings, storing its `LastEvaluatedKey` on the lease
//!   item after every page, so a restart continues there. Each reading is folded exactly
//!   once: in one transaction, the reading is marked on condition it is still unmarked, and
//!   its sensor's item and one shard take the same versioned fold as a normal write — its
//!   partials, first/latest reading and rollup deltas, and `rc` — except that `c, s, mn, mx`,
//!   which count it already, stay; the sensor's registry item is put with the sensor's first
//!   fold. These are the writer's chunks (100-action limit, retries from `ALL_OLD`); a reading
//!   marked by another builder meanwhile is dropped from the retry. After a pass, `Σc == Σrc`
//!   puts the marker `meta`/`rollups` (a record, never trusted by queries); otherwise
//!   (previous-version instances still writing, readings behind the cursor) another pass
//!   follows after a pause. Progress (readings folded, pages, readings left) is logged per
//!   page. `/api/ready` does not wait for it: in a deploy the new tasks must become healthy
//!   while old ones still write, and the guard keeps answers exact meanwhile.
//! - **Why exact.** Each previous-version reading is in `c` of its sensor item and of one
//!   shard, and in no rollup, until the transaction that marks it adds it to partials or
//!   rollup deltas and to `rc` of its sensor item and of one shard (any: so only the sum over
//!   the shards means anything). So `c == rc` on a sensor item means every reading it counts
//!   is in its rollups/partials, and `Σc == Σrc` the same over all sensors (and every sensor
//!   with readings registered, since each first fold or write of this version registers it).
//!   Readings folded or written during a query may or may not be counted; none twice.
//! - **Costs.** Per reading this version writes, the mark adds 3 bytes to an item far below
//!   1 KB: no write unit. The build costs, per previous-version reading, about one
//!   transaction action (2 WU) for the mark plus its share of the item puts and rollup deltas
//!   (BENCHMARKS.md, "DynamoDB: write units per reading"), and its `Scan` reads the table once
//!   per pass (read units).
//! - **Readings that are gone.** Previous-version readings that DynamoDB's TTL
//!   (`RETENTION_RAW`) deleted before the build folded them are still counted in `c` and can
//!   never be folded. A full pass under the lease that finds no unmarked reading while
//!   `Σc − Σrc` stays the same proves they are gone; they are then written off (`rc` raised
//!   to `c` on their sensors' items, and on a shard by as much: `build.rs`). They stay in the
//!   all-time stats and sensor counts, like every deleted reading, and are in no window.

use super::attributes::{
    Item, aggregate_of, key, string_of, temperature_of, timestamp_of_sort_key,
};
use super::partials::{ItemState, LEVELS};
use super::query::{batch_get, query, query_page};
use super::schema::{self, AGGREGATE_TOTAL_PK, META_PK, REGISTRY_PK, ROLLUPS_SK, SORT_KEY};
use super::writer::sensor_key;
use super::{DynamoStore, Inner, sdk_error};
use crate::domain::rollup::Level;
use crate::domain::window::{Piece, SeriesPlan, Span, plan};
use crate::domain::{Aggregate, SensorId, SensorSummary};
use crate::storage::{SensorsPage, StorageError, trim_page};

/// Tries of a window's snapshot (see "Queries" above) before answering 503.
const SNAPSHOT_ATTEMPTS: u32 = 8;

/// The current buckets of the items a window reads (the sensor's, or every shard's), by key.
type Buckets = Vec<(String, [Option<i64>; 3])>;

impl DynamoStore {
    pub async fn window_stats(
        &self,
        sensor: Option<&SensorId>,
        window: Span,
    ) -> Result<Aggregate, StorageError> {
        let pieces = plan(window, &LEVELS);
        let mut total = Aggregate::default();
        Box::pin(self.evaluate(sensor, &pieces, |_, a| total = total.merge(a))).await?;
        Ok(total)
    }

    pub async fn series(
        &self,
        sensor: Option<&SensorId>,
        plan: &SeriesPlan,
    ) -> Result<Vec<Aggregate>, StorageError> {
        // Planned again with this backend's levels (no seconds over all sensors).
        let plan = SeriesPlan::new(plan.window, plan.step, &LEVELS)
            .map_err(|e| StorageError::Internal(format!("series plan: {e:?}").into()))?;
        let mut buckets = plan.empty();
        Box::pin(self.evaluate(sensor, &plan.pieces, |at, a| buckets.add(at, a))).await?;
        Ok(buckets.into_aggregates())
    }

    pub async fn sensors(
        &self,
        after: Option<&SensorId>,
        limit: usize,
    ) -> Result<SensorsPage, StorageError> {
        let shards = Box::pin(states(&self.inner, None)).await?;
        self.all_folded(&shards)?;
        let wanted = limit.saturating_add(1);
        let ids = Box::pin(registry_page(&self.inner, after, wanted)).await?;
        let keys = ids.iter().map(sensor_key).collect();
        let found = Box::pin(batch_get(&self.inner, keys)).await?;
        let mut sensors = Vec::with_capacity(ids.len());
        for id in ids {
            let state = ItemState::from_item(found.get(&sensor_key(&id)))?;
            if let Some(summary) = state.summary()? {
                sensors.push((id, summary));
            }
        }
        let (sensors, next) = trim_page(sensors, limit, |(sensor, _)| sensor.clone());
        Ok(SensorsPage { sensors, next })
    }

    pub async fn sensor(&self, sensor: &SensorId) -> Result<Option<SensorSummary>, StorageError> {
        let item = Box::pin(get(&self.inner, sensor_key(sensor))).await?;
        let state = ItemState::from_item(item.as_ref())?;
        self.all_folded(&[(String::new(), state.clone())])?;
        state.summary()
    }

    /// Answers need every reading they cover folded (see "Tables written by the previous
    /// version"): over the items read — the sensor's item, or every shard — the counts equal
    /// the folded counts. Otherwise 503 saying how many are left, and the build is woken.
    fn all_folded(&self, states: &[(String, ItemState)]) -> Result<(), StorageError> {
        let left: i128 = states.iter().map(|(_, state)| state.unfolded()).sum();
        if left <= 0 {
            return Ok(());
        }
        self.inner.build.wake();
        Err(StorageError::Pending(
            format!(
                "the rollups of readings written by the previous version are being built: \
                 {left} readings left to fold; retry later (all-time stats and readings are \
                 served meanwhile)"
            )
            .into(),
        ))
    }

    /// Answers `pieces` from one snapshot: the items' current buckets read before and after
    /// the rollup and raw reads are the same, so no bucket moved from a partial into its rollup
    /// item meanwhile (see "Queries" above). Each rollup item, partial and raw piece is passed
    /// to `sink` as `(its start, its aggregate)`.
    async fn evaluate(
        &self,
        sensor: Option<&SensorId>,
        pieces: &[Piece],
        mut sink: impl FnMut(i64, &Aggregate),
    ) -> Result<(), StorageError> {
        let inner = &self.inner;
        let rollup_levels: Vec<Level> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Rollup { level, .. } => Some(*level),
                Piece::Raw { .. } => None,
            })
            .collect();
        for _ in 0..SNAPSHOT_ATTEMPTS {
            let before = Box::pin(states(inner, sensor)).await?;
            self.all_folded(&before)?;
            let mut found: Vec<(i64, Aggregate)> = Vec::new();
            for piece in pieces {
                match *piece {
                    Piece::Rollup { level, span } => {
                        Box::pin(rollup_rows(inner, sensor, level, span, &mut found)).await?;
                    }
                    Piece::Raw { span } => {
                        let aggregate = Box::pin(raw(inner, sensor, span)).await?;
                        found.push((span.from, aggregate));
                    }
                }
            }
            if rollup_levels.is_empty() {
                for (at, aggregate) in &found {
                    sink(*at, aggregate);
                }
                return Ok(());
            }
            let after = Box::pin(states(inner, sensor)).await?;
            self.all_folded(&after)?;
            if current_buckets(&before) != current_buckets(&after) {
                continue; // a bucket closed meanwhile: read again
            }
            for piece in pieces {
                let Piece::Rollup { level, span } = *piece else {
                    continue;
                };
                for (_, state) in &after {
                    if let Some(partial) = state.partial(level)
                        && span.contains(partial.bucket)
                    {
                        found.push((partial.bucket, partial.aggregate));
                    }
                }
            }
            for (at, aggregate) in &found {
                sink(*at, aggregate);
            }
            return Ok(());
        }
        Err(StorageError::Unavailable(
            "rollup buckets kept closing while the window was read; try again".into(),
        ))
    }
}

fn current_buckets(states: &[(String, ItemState)]) -> Buckets {
    states
        .iter()
        .map(|(name, state)| (name.clone(), state.buckets()))
        .collect()
}

/// The item states a window's partials come from: the sensor's aggregate item, or every global
/// shard (one `Query`).
async fn states(
    inner: &Inner,
    sensor: Option<&SensorId>,
) -> Result<Vec<(String, ItemState)>, StorageError> {
    match sensor {
        Some(sensor) => {
            let item = get(inner, sensor_key(sensor)).await?;
            Ok(vec![(String::new(), ItemState::from_item(item.as_ref())?)])
        }
        None => {
            let shards = query(inner, AGGREGATE_TOTAL_PK.into(), None, None).await?;
            let mut states = Vec::with_capacity(shards.len());
            for item in &shards {
                let name = string_of(item, SORT_KEY)?.to_owned();
                states.push((name, ItemState::from_item(Some(item))?));
            }
            states.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(states)
        }
    }
}

/// The rollup items of `level` whose buckets start in `span` (both aligned to the level), as
/// `(bucket start, aggregate)`: one paginated `Query`.
async fn rollup_rows(
    inner: &Inner,
    sensor: Option<&SensorId>,
    level: Level,
    span: Span,
    found: &mut Vec<(i64, Aggregate)>,
) -> Result<(), StorageError> {
    let (lower, upper) = (schema::bucket_sk(span.from), schema::bucket_sk(span.to - 1));
    let (pk, between) = match sensor {
        Some(sensor) => (
            schema::sensor_rollup_pk(level, sensor.as_str()),
            (lower, upper),
        ),
        // Shard suffixes (`#NN`) sort before `~`.
        None => (schema::total_rollup_pk(level), (lower, format!("{upper}~"))),
    };
    for item in query(inner, pk, Some(between), None).await? {
        let sk = string_of(&item, SORT_KEY)?;
        let start = sk.split('#').next().unwrap_or(sk);
        let start = timestamp_of_sort_key(start)?.micros();
        found.push((start, aggregate_of(Some(&item))?));
    }
    Ok(())
}

/// The readings in `span` (shorter than two minutes): the sensor's, or each registered
/// sensor's in turn (one `Query` per sensor).
async fn raw(
    inner: &std::sync::Arc<Inner>,
    sensor: Option<&SensorId>,
    span: Span,
) -> Result<Aggregate, StorageError> {
    let sensors = match sensor {
        Some(sensor) => vec![sensor.clone()],
        None => registry_page(inner, None, usize::MAX).await?,
    };
    let lower = schema::bucket_sk(span.from);
    let upper = schema::bucket_sk(span.to - 1);
    let mut aggregate = Aggregate::default();
    for sensor in sensors {
        let pk = schema::reading_pk(sensor.as_str());
        for item in query(inner, pk, Some((lower.clone(), upper.clone())), None).await? {
            aggregate.add(temperature_of(&item)?);
        }
    }
    Ok(aggregate)
}

/// Up to `wanted` registered sensor ids after `after`, in id order (registry `Query` pages).
async fn registry_page(
    inner: &Inner,
    after: Option<&SensorId>,
    wanted: usize,
) -> Result<Vec<SensorId>, StorageError> {
    let mut ids = Vec::new();
    let mut start = after.map(|after| key(REGISTRY_PK, after.as_str()));
    loop {
        let limit = (wanted - ids.len()).min(1_000);
        let (items, last) = query_page(inner, REGISTRY_PK, None, Some(limit), start).await?;
        for item in &items {
            let id = string_of(item, SORT_KEY)?;
            ids.push(SensorId::from_text(id).map_err(|e| StorageError::Internal(e.into()))?);
        }
        match last {
            Some(last) if ids.len() < wanted => start = Some(last),
            _ => return Ok(ids),
        }
    }
}

/// One item, read consistently.
pub(super) async fn get(
    inner: &Inner,
    (pk, sk): (String, String),
) -> Result<Option<Item>, StorageError> {
    inner.count();
    let output = inner
        .client
        .get_item()
        .table_name(&inner.table)
        .set_key(Some(key(pk, sk)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| sdk_error("GetItem", e))?;
    Ok(output.item().cloned())
}

/// At start-up: whether the table is known complete. A table with the marker item is (a build
/// finished on it); a table without any aggregate shard holds no reading yet (every reading's
/// transaction writes one), so it gets the marker and is; any other table was written by the
/// previous version and needs the build (whose first step checks the counts anyway).
pub(super) async fn check_rollups(inner: &Inner) -> Result<bool, StorageError> {
    if get(inner, (META_PK.into(), ROLLUPS_SK.into()))
        .await?
        .is_some()
    {
        return Ok(true);
    }
    let (shards, _) = query_page(inner, AGGREGATE_TOTAL_PK, None, Some(1), None).await?;
    if !shards.is_empty() {
        return Ok(false);
    }
    super::build::put_marker(inner).await?;
    Ok(true)
}
