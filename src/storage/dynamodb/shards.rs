//! The global aggregate shards as one instance sees them: the last state it knows of each
//! (every write to a shard is conditioned on that state's version) and which shards its own
//! transactions hold right now. A chunk *leases* a shard no other chunk of this instance is
//! using, so this instance's transactions never race each other on a shard; only another
//! instance can make the known state stale, which the version condition catches (the
//! cancellation returns the stored state, and the retry uses it).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Instant;

use super::Inner;
use super::attributes::key;
use super::partials::{ItemState, Version};
use super::schema::{self, AGGREGATE_TOTAL_PK};
use super::sdk_error;
use crate::storage::StorageError;

#[derive(Debug)]
pub(crate) struct Shards {
    known: Vec<Option<ItemState>>,
    leased: Vec<bool>,
    /// This instance's first choice (random per instance): leases take the first free shard
    /// from here on, so a lightly loaded instance keeps writing one shard (each shard's
    /// buckets then close about once per bucket, not once per visit), and instances start
    /// from different shards.
    preferred: usize,
}

impl Default for Shards {
    fn default() -> Self {
        Self {
            known: vec![None; schema::AGGREGATE_SHARDS],
            leased: vec![false; schema::AGGREGATE_SHARDS],
            preferred: random_below(schema::AGGREGATE_SHARDS),
        }
    }
}

impl Shards {
    /// Keeps `state` unless a later state of the shard is known already: a later version, or
    /// the same version with at least the count (an instance of the previous version `ADD`s
    /// to the count without changing the version, and counts only grow).
    pub(crate) fn learn(&mut self, shard: usize, state: ItemState) {
        let Some(slot) = self.known.get_mut(shard) else {
            return;
        };
        let newer = match slot.as_ref().map(|s| (s.version, s.aggregate.count)) {
            Some((Version::At(known), count)) => match state.version {
                Version::At(new) => new > known || (new == known && state.aggregate.count > count),
                _ => false,
            },
            _ => true,
        };
        if newer {
            *slot = Some(state);
        }
    }
}

/// A shard held by one chunk; released when dropped.
pub(crate) struct Lease {
    inner: Arc<Inner>,
    pub shard: usize,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut shards = self.inner.shards.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(leased) = shards.leased.get_mut(self.shard) {
            *leased = false;
        }
    }
}

fn random_below(n: usize) -> usize {
    let random = RandomState::new().hash_one(Instant::now());
    usize::try_from(random % (n.max(1) as u64)).unwrap_or(0)
}

/// Leases the first free shard from this instance's preferred one (a random one when all are
/// held: the version condition still keeps it exact, at the price of a retry).
pub(crate) fn lease(inner: &Arc<Inner>) -> Lease {
    let mut shards = inner.shards.lock().unwrap_or_else(|e| e.into_inner());
    let count = shards.leased.len();
    let shard = (0..count)
        .map(|i| (shards.preferred + i) % count)
        .find(|&i| !shards.leased[i])
        .unwrap_or_else(|| random_below(count));
    shards.leased[shard] = true;
    Lease {
        inner: inner.clone(),
        shard,
    }
}

/// The known state of `shard`, read (consistently) when this instance knows none yet.
pub(crate) async fn known(inner: &Inner, shard: usize) -> Result<ItemState, StorageError> {
    let cached = {
        let shards = inner.shards.lock().unwrap_or_else(|e| e.into_inner());
        shards.known.get(shard).cloned().flatten()
    };
    if let Some(state) = cached {
        return Ok(state);
    }
    inner.count();
    let output = inner
        .client
        .get_item()
        .table_name(&inner.table)
        .set_key(Some(key(AGGREGATE_TOTAL_PK, schema::shard_sk(shard))))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| sdk_error("GetItem", e))?;
    let state = ItemState::from_item(output.item())?;
    learn(inner, shard, state.clone());
    Ok(state)
}

pub(crate) fn learn(inner: &Inner, shard: usize, state: ItemState) {
    let mut shards = inner.shards.lock().unwrap_or_else(|e| e.into_inner());
    shards.learn(shard, state);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_state_never_replaces_a_newer_one() {
        let mut shards = Shards::default();
        let at = |v| ItemState {
            version: Version::At(v),
            ..ItemState::default()
        };
        shards.learn(3, at(5));
        shards.learn(3, at(4));
        assert_eq!(shards.known[3], Some(at(5)));
        shards.learn(3, at(6));
        assert_eq!(shards.known[3], Some(at(6)));
        shards.learn(3, ItemState::default());
        assert_eq!(shards.known[3], Some(at(6)));
        // The same version with a higher count: a previous-version `ADD` since.
        let mut added = at(6);
        added.aggregate.count = 1;
        shards.learn(3, added.clone());
        assert_eq!(shards.known[3], Some(added.clone()));
        shards.learn(3, at(6));
        assert_eq!(shards.known[3], Some(added));
    }
}
