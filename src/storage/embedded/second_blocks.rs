//! The per-second rollups over all sensors, kept as one row per minute (a **block** of up to 60
//! second aggregates) instead of one row per second.
//!
//! # Why
//!
//! The writer is one thread, bounded by B-tree inserts. With a row per second, every second a
//! group's readings fall in cost an insert of its own into `total_rollups`: a 100-reading batch
//! of one sensor at 1 Hz spans 100 seconds, so the seconds alone doubled the inserts of its
//! readings, and a fleet whose sensors' clocks drift apart spreads each group over as many
//! seconds as it has requests. A block costs one insert per minute the group touches (two or
//! three for that batch), however many of its seconds are hit.
//!
//! # What a second holds
//!
//! The aggregate over all sensors of second `s` is **its row `(second, s)` in `total_rollups`
//! (if any), merged with slot `s` of the block of `s`'s minute (if any)**. Rows are what earlier
//! versions wrote; this version writes blocks only, so a store of an earlier version opens as it
//! is, and a new reading in one of its seconds lands in the block beside the old row. Both are
//! exact fixed-point aggregates, so the merge is exact in any order; every reader of seconds
//! (windows and series, the verification, retention) reads both.
//!
//! # Format
//!
//! Key `(`[`BLOCK_CODE`]`, minute start µs)` in `total_rollups`. Value: a big-endian `u64`
//! whose bit `i` says second `i` of the minute is present, then the encoded [`Aggregate`] of
//! each present second, in order. A store written by this version cannot be opened by an
//! earlier one (it would not see the blocks).

use crate::domain::Aggregate;
use crate::domain::aggregate::ENCODED_LEN as AGGREGATE_LEN;
use crate::domain::rollup::{Level, MINUTE_MICROS, SECOND_MICROS};
use crate::storage::StorageError;

/// The level code of blocks in `total_rollups` keys (after the codes of [`Level`]).
pub(super) const BLOCK_CODE: u8 = 4;
const SECONDS: usize = 60;
const _: () = assert!(Level::Day.code() < BLOCK_CODE);

/// One minute's second aggregates over all sensors; an empty slot has count 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Block {
    slots: [Aggregate; SECONDS],
}

impl Default for Block {
    fn default() -> Self {
        Self {
            slots: [Aggregate::default(); SECONDS],
        }
    }
}

/// The block's key: the start of the minute holding `second`.
pub(super) fn minute_of(second: i64) -> i64 {
    Level::Minute.bucket_of(second)
}

impl Block {
    /// Adds `delta` to the second starting at `second` (which must lie in this block's minute).
    pub(super) fn merge_at(&mut self, second: i64, delta: &Aggregate) {
        let slot = &mut self.slots[slot_of(second)];
        *slot = slot.merge(delta);
    }

    /// Merges every slot of `other` into this block.
    pub(super) fn merge(&mut self, other: &Block) {
        for (slot, theirs) in self.slots.iter_mut().zip(&other.slots) {
            *slot = slot.merge(theirs);
        }
    }

    /// The present seconds of the block of minute `minute`: `(second start µs, aggregate)`.
    pub(super) fn seconds(&self, minute: i64) -> impl Iterator<Item = (i64, &Aggregate)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, aggregate)| aggregate.count > 0)
            .map(move |(slot, aggregate)| (minute + slot as i64 * SECOND_MICROS, aggregate))
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut present = 0u64;
        let mut out = Vec::with_capacity(8 + SECONDS * AGGREGATE_LEN);
        out.extend_from_slice(&[0; 8]);
        for (slot, aggregate) in self.slots.iter().enumerate() {
            if aggregate.count > 0 {
                present |= 1 << slot;
                out.extend_from_slice(&aggregate.encode());
            }
        }
        out[..8].copy_from_slice(&present.to_be_bytes());
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let corrupt = || StorageError::Internal("corrupt block of second rollups".into());
        let (head, mut rest) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let present = u64::from_be_bytes(*head);
        if present >> SECONDS != 0 || rest.len() != present.count_ones() as usize * AGGREGATE_LEN {
            return Err(corrupt());
        }
        let mut block = Block::default();
        for (slot, aggregate) in block.slots.iter_mut().enumerate() {
            if present & (1 << slot) != 0 {
                let (encoded, tail) = rest.split_at(AGGREGATE_LEN);
                *aggregate = Aggregate::decode(encoded)
                    .filter(|a| a.count > 0)
                    .ok_or_else(corrupt)?;
                rest = tail;
            }
        }
        Ok(block)
    }
}

fn slot_of(second: i64) -> usize {
    (second.rem_euclid(MINUTE_MICROS) / SECOND_MICROS) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Temperature;

    fn of(micros: &[i64]) -> Aggregate {
        Aggregate::of(micros.iter().map(|&m| Temperature::from_micros(m).unwrap()))
    }

    #[test]
    fn a_block_round_trips_and_lists_its_seconds_in_order() {
        // 2021-10-04T09:17:00Z, and a minute before 1970 (alignment towards minus infinity).
        for minute in [1_633_339_020_000_000, -MINUTE_MICROS] {
            let mut block = Block::default();
            block.merge_at(minute + 59 * SECOND_MICROS, &of(&[-5_000_000]));
            block.merge_at(minute, &of(&[1, 2]));
            block.merge_at(minute, &of(&[3]));
            assert_eq!(minute_of(minute + 59 * SECOND_MICROS), minute);
            let encoded = block.encode();
            assert_eq!(encoded.len(), 8 + 2 * AGGREGATE_LEN);
            let decoded = Block::decode(&encoded).unwrap();
            assert_eq!(decoded, block);
            let seconds: Vec<_> = decoded.seconds(minute).map(|(s, a)| (s, *a)).collect();
            assert_eq!(
                seconds,
                [
                    (minute, of(&[1, 2, 3])),
                    (minute + 59 * SECOND_MICROS, of(&[-5_000_000]))
                ]
            );
        }
        assert_eq!(
            Block::decode(&Block::default().encode()).unwrap(),
            Block::default()
        );
    }

    #[test]
    fn blocks_merge_slot_by_slot() {
        let (mut a, mut b) = (Block::default(), Block::default());
        a.merge_at(SECOND_MICROS, &of(&[10]));
        b.merge_at(SECOND_MICROS, &of(&[-10]));
        b.merge_at(2 * SECOND_MICROS, &of(&[7]));
        a.merge(&b);
        let seconds: Vec<_> = a.seconds(0).map(|(s, x)| (s, *x)).collect();
        assert_eq!(
            seconds,
            [
                (SECOND_MICROS, of(&[10, -10])),
                (2 * SECOND_MICROS, of(&[7]))
            ]
        );
    }

    #[test]
    fn a_corrupt_block_is_an_error() {
        let mut block = Block::default();
        block.merge_at(0, &of(&[1]));
        let good = block.encode();
        let mut short = good.clone();
        short.pop();
        let mut beyond = good.clone();
        beyond[0] = 0x80; // second 63 present
        let mut empty_slot = good.clone();
        empty_slot[8..16].fill(0); // a present slot that counts nothing
        for bad in [&good[..4], &short[..], &beyond[..], &empty_slot[..]] {
            assert!(Block::decode(bad).is_err(), "{bad:?}");
        }
    }
}
