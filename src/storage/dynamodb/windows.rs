//! Windows, series and sensor summaries on DynamoDB: **not available yet** on this backend;
//! each answers 501 with a problem body saying so. The embedded store serves them.
//!
//! # The design they will follow (rollups that cost at most 0.5 write units per reading)
//!
//! Today a 1 Hz fleet costs 4.27 write units (WU) per reading (a conditional `Put` and its
//! sensor's aggregate update, each transactional: 2 WU per action). Rollup items updated in the
//! same transaction at three levels per sensor and over all sensors would more than double it.
//! Instead:
//! - **In-order readings touch no rollup item.** A *sealed horizon* `h` is stored on each of the
//!   16 global aggregate shards (every reading transaction already updates one shard, so a
//!   condition on it is free): the transaction's shard update carries `h <= :earliest` (the
//!   chunk's earliest reading time). A reading at or after `h` is in the unfolded tail.
//! - **A folder** (any instance; idempotent, keyed by bucket) closes buckets: it first raises
//!   `h` to `H'` on all 16 shards in one transaction (so every reading transaction committed
//!   before it is seen, every one after it fails its condition and retries as *late*), then
//!   reads the readings of `[h, H')` of each sensor (a registry item per sensor, written once in
//!   the transaction that stores its first reading, lists them) and writes one rollup item per
//!   `(sensor or all, level, bucket)` with `SET` of the folded part (re-running computes the
//!   same: no unmarked reading can appear below `H'` any more), then advances the *folded
//!   horizon* `F` that queries read. Plain `PutItem`s: ~1/60 WU per reading at 1 Hz for minute
//!   items, far less for hours, days and the all-sensor items.
//! - **Late readings** (below `h`) are marked `late` on the reading item and `ADD` to the
//!   rollup items' separate late part in their own transaction (the folder excludes marked
//!   readings, so nothing is counted twice whether the late reading commits before or after
//!   the fold; the all-sensor items' late parts are sharded like the global aggregate).
//! - **Queries** combine rollups below `F` with the raw readings of `[F, to)` (seconds to a few
//!   minutes of readings per sensor).
//! - **Races**: two instances writing the same readings are already serialised by the
//!   readings' `attribute_not_exists` conditions; a writer racing the seal either commits
//!   before it (seen by the folder, which reads after the seal) or fails its shard condition
//!   and retries as late; two folders write the same `SET`s; min and max move outwards only,
//!   as for the aggregates today.
//! - **Latest per sensor** is kept on the sensor's aggregate item, set only when the chunk's
//!   latest reading is later than the known one, guarded like min and max.

use super::DynamoStore;
use crate::domain::window::{SeriesPlan, Span};
use crate::domain::{Aggregate, SensorId, SensorSummary};
use crate::storage::{SensorsPage, StorageError};

fn unsupported() -> StorageError {
    StorageError::Unsupported(
        "windows, series and sensor summaries are not yet available with STORAGE=dynamodb; the \
         embedded store serves them"
            .into(),
    )
}

impl DynamoStore {
    pub async fn window_stats(
        &self,
        _sensor: Option<&SensorId>,
        _window: Span,
    ) -> Result<Aggregate, StorageError> {
        Err(unsupported())
    }

    pub async fn series(
        &self,
        _sensor: Option<&SensorId>,
        _plan: &SeriesPlan,
    ) -> Result<Vec<Aggregate>, StorageError> {
        Err(unsupported())
    }

    pub async fn sensors(
        &self,
        _after: Option<&SensorId>,
        _limit: usize,
    ) -> Result<SensorsPage, StorageError> {
        Err(unsupported())
    }

    pub async fn sensor(&self, _sensor: &SensorId) -> Result<Option<SensorSummary>, StorageError> {
        Err(unsupported())
    }
}
