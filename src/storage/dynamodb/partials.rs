//! An aggregate item's whole state (a sensor's, or a global shard's) and how a chunk's readings
//! move it on: the all-time aggregate, first and latest reading, and per rollup level the
//! partial aggregate of the item's *current* bucket (the latest bucket it has seen). Readings of
//! the current bucket (or a later one) stay on the item; a reading of an earlier bucket, and the
//! partial of a bucket the item leaves, become a rollup delta written in the same transaction
//! (see `windows.rs` for why this is exact and what it costs).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::attributes::{Item, aggregate_of, number};
use super::schema::{
    COUNT, FIRST, FOLDED_COUNT, LATEST_TEMPERATURE, LATEST_TIME, MAX, MIN, SUM, VERSION,
};
use crate::domain::rollup::{Level, SENSOR_LEVELS};
use crate::domain::{Aggregate, Point, SensorSummary, Temperature, Timestamp};
use crate::storage::StorageError;

/// The rollup levels kept on DynamoDB, per sensor and over all sensors (finest first).
pub(crate) const LEVELS: [Level; 3] = SENSOR_LEVELS;

/// Attribute-name prefixes of each level's partial (`pmb`, `pmc`, ... for minutes).
const PREFIXES: [&str; 3] = ["pm", "ph", "pd"];

/// What the writer knows of the stored item, which its write is conditioned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Version {
    /// No item.
    #[default]
    Absent,
    /// An item written by the previous version (no `v`, no partials).
    Legacy,
    /// `v` as stored.
    At(u64),
}

/// One bucket's partial aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Partial {
    pub bucket: i64,
    pub aggregate: Aggregate,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ItemState {
    pub version: Version,
    pub aggregate: Aggregate,
    /// `rc`: how many of the readings counted in `aggregate` this item has folded into its
    /// partials and rollup deltas. Writes of this version bump it with the count; the
    /// previous version bumped only the count, so `count - folded` of this item's readings
    /// are in no rollup yet (see `windows.rs`, "Tables written by the previous version").
    pub folded: u64,
    /// Earliest reading time (µs).
    pub first: Option<i64>,
    /// Latest reading by reading time: (µs, µ°C).
    pub latest: Option<(i64, i64)>,
    /// By level, as [`LEVELS`].
    pub partials: [Option<Partial>; 3],
}

/// Rollup deltas of one item's write: `(level, bucket start)` → what to add to that rollup item.
pub(crate) type Deltas = BTreeMap<(Level, i64), Aggregate>;

/// Where the readings a fold moves an item on with come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// New readings: counted in the all-time aggregate and folded, both now.
    New,
    /// Readings the previous version stored and counted (`c, s, mn, mx`) but never folded:
    /// the rollup build folds them, leaving the all-time aggregate as it is.
    Previous,
}

impl ItemState {
    /// The state after adding `points` (new readings, `(µs, µ°C)`), and the rollup deltas: for
    /// each level the item's current bucket becomes the latest of its own and the readings'
    /// buckets; the partial of a bucket left behind and every reading of an earlier bucket are
    /// deltas of their buckets' rollup items.
    #[cfg(test)]
    pub(crate) fn fold(&self, points: &[(i64, i64)]) -> (ItemState, Deltas) {
        self.fold_from(Origin::New, points)
    }

    /// [`Self::fold`] of readings from `origin`: [`Origin::Previous`] readings move the
    /// partials, first and latest reading, rollup deltas and `folded` on exactly as new ones,
    /// but are already in the all-time aggregate.
    pub(crate) fn fold_from(&self, origin: Origin, points: &[(i64, i64)]) -> (ItemState, Deltas) {
        let mut next = self.clone();
        let mut deltas = Deltas::new();
        next.folded += points.len() as u64;
        for &(time, value) in points {
            let temperature = Temperature::from_micros(value).expect("a stored temperature");
            if origin == Origin::New {
                next.aggregate.add(temperature);
            }
            if next.first.is_none_or(|first| time < first) {
                next.first = Some(time);
            }
            if next.latest.is_none_or(|(latest, _)| time > latest) {
                next.latest = Some((time, value));
            }
        }
        for (slot, level) in LEVELS.into_iter().enumerate() {
            let Some(newest) = points.iter().map(|&(t, _)| level.bucket_of(t)).max() else {
                continue;
            };
            let old = self.partials[slot];
            let current = old.map_or(newest, |p| p.bucket.max(newest));
            let mut partial = match old {
                Some(p) if p.bucket == current => p.aggregate,
                Some(p) => {
                    let delta = deltas.entry((level, p.bucket)).or_default();
                    *delta = delta.merge(&p.aggregate);
                    Aggregate::default()
                }
                None => Aggregate::default(),
            };
            for &(time, value) in points {
                let temperature = Temperature::from_micros(value).expect("a stored temperature");
                let bucket = level.bucket_of(time);
                if bucket == current {
                    partial.add(temperature);
                } else {
                    deltas.entry((level, bucket)).or_default().add(temperature);
                }
            }
            next.partials[slot] = Some(Partial {
                bucket: current,
                aggregate: partial,
            });
        }
        next.version = self.next_version();
        (next, deltas)
    }

    /// The state after counting `n` more readings as folded that no rollup can ever hold:
    /// readings of the previous version that DynamoDB's TTL deleted before the build folded
    /// them (see `build.rs`). Nothing else changes.
    pub(crate) fn written_off(&self, n: u64) -> ItemState {
        ItemState {
            folded: self.folded + n,
            version: self.next_version(),
            ..self.clone()
        }
    }

    fn next_version(&self) -> Version {
        Version::At(match self.version {
            Version::At(v) => v + 1,
            Version::Absent | Version::Legacy => 1,
        })
    }

    /// The state stored in `item` (`None`: no item).
    pub(crate) fn from_item(item: Option<&Item>) -> Result<Self, StorageError> {
        let Some(item) = item else {
            return Ok(Self::default());
        };
        let version = match number(item, VERSION)? {
            None => Version::Legacy,
            Some(v) => Version::At(u64::try_from(v).map_err(|_| corrupt(VERSION))?),
        };
        let time = |name: &str| -> Result<Option<i64>, StorageError> {
            number(item, name)?
                .map(|n| i64::try_from(n).map_err(|_| corrupt(name)))
                .transpose()
        };
        let latest = match (time(LATEST_TIME)?, time(LATEST_TEMPERATURE)?) {
            (Some(at), Some(value)) => Some((at, value)),
            _ => None,
        };
        let mut partials = [None; 3];
        for (slot, prefix) in PREFIXES.into_iter().enumerate() {
            let Some(bucket) = time(&format!("{prefix}b"))? else {
                continue;
            };
            let mut fields = Item::new();
            for (from, to) in [("c", COUNT), ("s", SUM), ("n", MIN), ("x", MAX)] {
                if let Some(value) = item.get(&format!("{prefix}{from}")) {
                    fields.insert(to.to_owned(), value.clone());
                }
            }
            partials[slot] = Some(Partial {
                bucket,
                aggregate: aggregate_of(Some(&fields))?,
            });
        }
        let aggregate = aggregate_of(Some(item))?;
        // Legacy items folded nothing; items of development builds that kept partials but no
        // `rc` only ever ran on complete tables, so they folded everything they counted.
        let folded = match (version, number(item, FOLDED_COUNT)?) {
            (_, Some(rc)) => u64::try_from(rc).map_err(|_| corrupt(FOLDED_COUNT))?,
            (Version::Legacy, None) => 0,
            (_, None) => aggregate.count,
        };
        Ok(Self {
            version,
            aggregate,
            folded,
            first: time(FIRST)?,
            latest,
            partials,
        })
    }

    /// The attributes to store (besides the key): every field of the state.
    pub(crate) fn attributes(&self) -> Item {
        let n = |v: String| AttributeValue::N(v);
        let mut item = Item::new();
        let version = match self.version {
            Version::At(v) => v,
            Version::Absent | Version::Legacy => 0,
        };
        item.insert(VERSION.into(), n(version.to_string()));
        put_aggregate(&mut item, "", &self.aggregate);
        item.insert(FOLDED_COUNT.into(), n(self.folded.to_string()));
        if let Some(first) = self.first {
            item.insert(FIRST.into(), n(first.to_string()));
        }
        if let Some((at, value)) = self.latest {
            item.insert(LATEST_TIME.into(), n(at.to_string()));
            item.insert(LATEST_TEMPERATURE.into(), n(value.to_string()));
        }
        for (partial, prefix) in self.partials.iter().zip(PREFIXES) {
            if let Some(partial) = partial {
                item.insert(format!("{prefix}b"), n(partial.bucket.to_string()));
                put_aggregate(&mut item, prefix, &partial.aggregate);
            }
        }
        item
    }

    /// How many readings this item counts that no rollup or partial holds yet (written by the
    /// previous version and not folded by the build). Over the shards only the sum means
    /// anything: the build folds a reading on whichever shard it leases, not on the one the
    /// previous version counted it on.
    pub(crate) fn unfolded(&self) -> i128 {
        i128::from(self.aggregate.count) - i128::from(self.folded)
    }

    /// The partial of `level`'s current bucket, if any.
    pub(crate) fn partial(&self, level: Level) -> Option<Partial> {
        let slot = LEVELS.iter().position(|l| *l == level)?;
        self.partials[slot]
    }

    /// The current bucket of each level (what a query's snapshot check compares).
    pub(crate) fn buckets(&self) -> [Option<i64>; 3] {
        self.partials.map(|p| p.map(|p| p.bucket))
    }

    /// A sensor's summary (`None`: no reading stored).
    pub(crate) fn summary(&self) -> Result<Option<SensorSummary>, StorageError> {
        if self.version == Version::Absent {
            return Ok(None);
        }
        let time = |micros: i64| Timestamp::from_micros(micros).ok_or_else(|| corrupt(FIRST));
        let latest = match self.latest {
            None => None,
            Some((at, value)) => Some(Point {
                time: time(at)?,
                temperature: Temperature::from_micros(value).map_err(|_| corrupt(LATEST_TIME))?,
            }),
        };
        Ok(Some(SensorSummary {
            aggregate: self.aggregate,
            first: self.first.map(time).transpose()?,
            latest,
        }))
    }
}

/// `c`, `s`, `mn`, `mx` (no prefix) or a partial's `<prefix>c`, `s`, `n`, `x`.
fn put_aggregate(item: &mut Item, prefix: &str, aggregate: &Aggregate) {
    let names: [&str; 4] = if prefix.is_empty() {
        [COUNT, SUM, MIN, MAX]
    } else {
        ["c", "s", "n", "x"]
    };
    let n = |v: String| AttributeValue::N(v);
    item.insert(
        format!("{prefix}{}", names[0]),
        n(aggregate.count.to_string()),
    );
    item.insert(
        format!("{prefix}{}", names[1]),
        n(aggregate.sum_micros.to_string()),
    );
    if let Some(min) = aggregate.min_micros {
        item.insert(format!("{prefix}{}", names[2]), n(min.to_string()));
    }
    if let Some(max) = aggregate.max_micros {
        item.insert(format!("{prefix}{}", names[3]), n(max.to_string()));
    }
}

fn corrupt(name: &str) -> StorageError {
    StorageError::Internal(format!("aggregate attribute {name} out of range").into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rollup::{HOUR_MICROS, MINUTE_MICROS};

    const T0: i64 = 1_633_305_600_000_000; // 2021-10-04T00:00:00Z

    /// Every reading counted once: in a partial or in a delta, at every level.
    fn total_at(state: &ItemState, deltas: &[Deltas], level: Level) -> Aggregate {
        let mut total = state
            .partial(level)
            .map(|p| p.aggregate)
            .unwrap_or_default();
        for d in deltas {
            for ((l, _), a) in d {
                if *l == level {
                    total = total.merge(a);
                }
            }
        }
        total
    }

    #[test]
    fn in_order_readings_stay_in_the_partial_until_their_bucket_closes() {
        let state = ItemState::default();
        let (state, deltas) = state.fold(&[(T0 + 1, 10), (T0 + 2, 20)]);
        assert!(deltas.is_empty());
        assert_eq!(state.version, Version::At(1));
        assert_eq!(state.partial(Level::Minute).unwrap().aggregate.count, 2);
        // The next minute closes the first: one minute delta, hours and days still open.
        let (next, deltas) = state.fold(&[(T0 + MINUTE_MICROS, 30)]);
        assert_eq!(deltas.len(), 1);
        assert_eq!(deltas[&(Level::Minute, T0)].count, 2);
        assert_eq!(
            next.partial(Level::Minute).unwrap().bucket,
            T0 + MINUTE_MICROS
        );
        assert_eq!(next.partial(Level::Hour).unwrap().aggregate.count, 3);
        assert_eq!(next.latest, Some((T0 + MINUTE_MICROS, 30)));
        assert_eq!(next.first, Some(T0 + 1));
    }

    #[test]
    fn late_and_out_of_order_readings_become_deltas_and_nothing_is_lost() {
        let mut state = ItemState::default();
        let mut all = Vec::new();
        let batches: [&[(i64, i64)]; 4] = [
            &[(T0 + 5 * MINUTE_MICROS, 1), (T0 + 2 * HOUR_MICROS, 2)],
            &[(T0 + 3, 3)], // late: an old minute and an old hour
            &[(T0 + 2 * HOUR_MICROS + 1, 4), (T0 + MINUTE_MICROS, 5)],
            &[(T0 + 30 * HOUR_MICROS, 6)],
        ];
        for batch in batches {
            let (next, deltas) = state.fold(batch);
            state = next;
            all.push(deltas);
        }
        for level in LEVELS {
            assert_eq!(total_at(&state, &all, level).count, 6, "{level}");
            assert_eq!(total_at(&state, &all, level).sum_micros, 21);
        }
        assert_eq!(state.latest, Some((T0 + 30 * HOUR_MICROS, 6)));
        assert_eq!(state.aggregate.count, 6);
        assert_eq!(state.version, Version::At(4));
    }

    #[test]
    fn the_state_round_trips_through_its_item() {
        let (state, _) = ItemState::default().fold(&[(T0 + 1, -273_150_000), (T0 + 9, 42)]);
        let item = state.attributes();
        assert_eq!(ItemState::from_item(Some(&item)).unwrap(), state);
        assert_eq!(ItemState::from_item(None).unwrap(), ItemState::default());
        let mut legacy = item.clone();
        legacy.retain(|name, _| [COUNT, SUM, MIN, MAX].contains(&name.as_str()));
        let legacy = ItemState::from_item(Some(&legacy)).unwrap();
        assert_eq!(legacy.version, Version::Legacy);
        assert_eq!(legacy.aggregate, state.aggregate);
        assert_eq!(legacy.partials, [None; 3]);
        assert_eq!((legacy.folded, legacy.unfolded()), (0, 2));
        let mut development = item.clone();
        development.remove(FOLDED_COUNT);
        let development = ItemState::from_item(Some(&development)).unwrap();
        assert_eq!((development.folded, development.unfolded()), (2, 0));
    }

    #[test]
    fn folding_previous_readings_moves_everything_on_but_the_all_time_aggregate() {
        let points = [(T0 + 1, 10), (T0 + MINUTE_MICROS, 20)];
        let (new, new_deltas) = ItemState::default().fold(&points);
        let legacy = ItemState {
            version: Version::Legacy,
            aggregate: new.aggregate,
            ..ItemState::default()
        };
        assert_eq!(legacy.unfolded(), 2);
        let (built, built_deltas) = legacy.fold_from(Origin::Previous, &points);
        assert_eq!(built_deltas, new_deltas);
        assert_eq!(built, new, "the same state as if written by this version");
        assert_eq!(built.unfolded(), 0);
    }
}
