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
//! # Edges inside a second
//!
//! A window whose bound falls inside a second (a dashboard's "the last hour" does) needs the
//! readings of the part of that second inside the window. Over all sensors that is a B-tree
//! descent into every sensor's readings, which grows with the store. Most sensors send whole
//! seconds, though, and then the part holds either nothing (the part after the second's start)
//! or exactly the second's readings (the part from its start). So a block also says, per second,
//! whether a reading off the second's start may be there: when none may, the edge is answered
//! from the block alone (see `rollups::evaluate`).
//!
//! # Format
//!
//! Key `(`[`BLOCK_CODE`]`, minute start µs)` in `total_rollups`. Value: a big-endian `u64`
//! whose bit `i` says second `i` of the minute is present, a big-endian `u64` whose bit `i` says
//! second `i` may hold a reading that is not at its start (only present seconds may), then the
//! encoded [`Aggregate`] of each present second, in order. A block of the version before that
//! second bitmap lacks it, and decodes as if every present second may hold such a reading. A
//! store written by this version cannot be opened by an earlier one (it would not see the
//! blocks).

use crate::domain::aggregate::ENCODED_LEN as AGGREGATE_LEN;
use crate::domain::rollup::{Level, MINUTE_MICROS, SECOND_MICROS};
use crate::domain::{Aggregate, Temperature};
use crate::storage::StorageError;

/// The level code of blocks in `total_rollups` keys (after the codes of [`Level`]).
pub(super) const BLOCK_CODE: u8 = 4;
const SECONDS: usize = 60;
const _: () = assert!(Level::Day.code() < BLOCK_CODE);

/// One minute's second aggregates over all sensors; an empty slot has count 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Block {
    slots: [Aggregate; SECONDS],
    /// Bit `i`: second `i` may hold a reading that is not at the second's start.
    off_start: u64,
}

impl Default for Block {
    fn default() -> Self {
        Self {
            slots: [Aggregate::default(); SECONDS],
            off_start: 0,
        }
    }
}

/// The block's key: the start of the minute holding `second`.
pub(super) fn minute_of(second: i64) -> i64 {
    Level::Minute.bucket_of(second)
}

impl Block {
    /// Adds a reading at `micros` (which must lie in this block's minute).
    pub(super) fn add(&mut self, micros: i64, temperature: Temperature) {
        let slot = slot_of(micros);
        self.slots[slot].add(temperature);
        if micros.rem_euclid(SECOND_MICROS) != 0 {
            self.off_start |= 1 << slot;
        }
    }

    /// Merges every slot of `other` into this block.
    pub(super) fn merge(&mut self, other: &Block) {
        for (slot, theirs) in self.slots.iter_mut().zip(&other.slots) {
            *slot = slot.merge(theirs);
        }
        self.off_start |= other.off_start;
    }

    /// The present seconds of the block of minute `minute`: `(second start µs, aggregate)`.
    pub(super) fn seconds(&self, minute: i64) -> impl Iterator<Item = (i64, &Aggregate)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, aggregate)| aggregate.count > 0)
            .map(move |(slot, aggregate)| (minute + slot as i64 * SECOND_MICROS, aggregate))
    }

    /// Whether the second starting at `second` may hold a reading that is not at its start.
    pub(super) fn may_hold_off_start(&self, second: i64) -> bool {
        self.off_start & (1 << slot_of(second)) != 0
    }

    /// The aggregate of the second starting at `second` (count 0 when it is empty), when every
    /// reading it holds is at its start; `None` when one may not be.
    pub(super) fn readings_at_start(&self, second: i64) -> Option<Aggregate> {
        (!self.may_hold_off_start(second)).then(|| self.slots[slot_of(second)])
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut present = 0u64;
        let mut out = Vec::with_capacity(16 + SECONDS * AGGREGATE_LEN);
        out.extend_from_slice(&[0; 16]);
        for (slot, aggregate) in self.slots.iter().enumerate() {
            if aggregate.count > 0 {
                present |= 1 << slot;
                out.extend_from_slice(&aggregate.encode());
            }
        }
        out[..8].copy_from_slice(&present.to_be_bytes());
        out[8..16].copy_from_slice(&(self.off_start & present).to_be_bytes());
        out
    }

    /// Decodes [`Block::encode`]'s bytes, or a block of the version before the second bitmap.
    pub(super) fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let corrupt = || StorageError::Internal("corrupt block of second rollups".into());
        let (head, rest) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let present = u64::from_be_bytes(*head);
        if present >> SECONDS != 0 {
            return Err(corrupt());
        }
        let aggregates = present.count_ones() as usize * AGGREGATE_LEN;
        let (off_start, mut rest) = if rest.len() == aggregates {
            (present, rest)
        } else {
            let (off, rest) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
            let off = u64::from_be_bytes(*off);
            if rest.len() != aggregates || off & !present != 0 {
                return Err(corrupt());
            }
            (off, rest)
        };
        let mut block = Block {
            off_start,
            ..Block::default()
        };
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

    fn temperature(micros: i64) -> Temperature {
        Temperature::from_micros(micros).unwrap()
    }

    fn of(micros: &[i64]) -> Aggregate {
        Aggregate::of(micros.iter().map(|&m| temperature(m)))
    }

    /// A block holding `(time µs, temperature µs)` readings.
    fn block(readings: &[(i64, i64)]) -> Block {
        let mut block = Block::default();
        for &(time, value) in readings {
            block.add(time, temperature(value));
        }
        block
    }

    #[test]
    fn a_block_round_trips_and_lists_its_seconds_in_order() {
        // 2021-10-04T09:17:00Z, and a minute before 1970 (alignment towards minus infinity).
        for minute in [1_633_339_020_000_000, -MINUTE_MICROS] {
            let last = minute + 59 * SECOND_MICROS;
            let block = block(&[
                (last + 1, -5_000_000),
                (minute, 1),
                (minute, 2),
                (minute, 3),
            ]);
            assert_eq!(minute_of(last), minute);
            let encoded = block.encode();
            assert_eq!(encoded.len(), 16 + 2 * AGGREGATE_LEN);
            let decoded = Block::decode(&encoded).unwrap();
            assert_eq!(decoded, block);
            let seconds: Vec<_> = decoded.seconds(minute).map(|(s, a)| (s, *a)).collect();
            assert_eq!(
                seconds,
                [(minute, of(&[1, 2, 3])), (last, of(&[-5_000_000]))]
            );
            assert!(!decoded.may_hold_off_start(minute));
            assert!(decoded.may_hold_off_start(last));
        }
        assert_eq!(
            Block::decode(&Block::default().encode()).unwrap(),
            Block::default()
        );
    }

    #[test]
    fn a_second_answers_from_its_start_only_when_every_reading_is_there() {
        let block = block(&[
            (0, 1),
            (0, 2),
            (SECOND_MICROS + 1, 3),
            (2 * SECOND_MICROS, 4),
        ]);
        assert_eq!(block.readings_at_start(0), Some(of(&[1, 2])));
        assert_eq!(block.readings_at_start(SECOND_MICROS), None);
        assert_eq!(block.readings_at_start(2 * SECOND_MICROS), Some(of(&[4])));
        // An empty second holds nothing, at its start or after.
        assert_eq!(block.readings_at_start(3 * SECOND_MICROS), Some(of(&[])));
    }

    #[test]
    fn blocks_merge_slot_by_slot_and_keep_every_second_off_its_start() {
        let mut a = block(&[(SECOND_MICROS, 10)]);
        let b = block(&[(SECOND_MICROS + 500_000, -10), (2 * SECOND_MICROS, 7)]);
        a.merge(&b);
        let seconds: Vec<_> = a.seconds(0).map(|(s, x)| (s, *x)).collect();
        assert_eq!(
            seconds,
            [
                (SECOND_MICROS, of(&[10, -10])),
                (2 * SECOND_MICROS, of(&[7]))
            ]
        );
        assert_eq!(a.readings_at_start(SECOND_MICROS), None);
        assert_eq!(a.readings_at_start(2 * SECOND_MICROS), Some(of(&[7])));
    }

    #[test]
    fn a_block_of_the_version_before_the_second_bitmap_may_hold_anything_off_start() {
        let block = block(&[(0, 1), (5 * SECOND_MICROS, 2)]);
        let encoded = block.encode();
        // That version wrote the presence bitmap and the aggregates only.
        let earlier: Vec<u8> = [&encoded[..8], &encoded[16..]].concat();
        let decoded = Block::decode(&earlier).unwrap();
        assert_eq!(decoded.seconds(0).count(), 2);
        assert_eq!(decoded.readings_at_start(0), None);
        assert_eq!(decoded.readings_at_start(5 * SECOND_MICROS), None);
        assert_eq!(decoded.readings_at_start(SECOND_MICROS), Some(of(&[])));
    }

    #[test]
    fn a_corrupt_block_is_an_error() {
        let good = block(&[(1, 1)]).encode();
        let mut short = good.clone();
        short.pop();
        let mut beyond = good.clone();
        beyond[0] = 0x80; // second 63 present
        let mut empty_slot = good.clone();
        empty_slot[16..24].fill(0); // a present slot that counts nothing
        let mut off_absent = good.clone();
        off_absent[15] |= 0b10; // second 1 off its start, but absent
        for bad in [
            &good[..4],
            &short[..],
            &beyond[..],
            &empty_slot[..],
            &off_absent[..],
        ] {
            assert!(Block::decode(bad).is_err(), "{bad:?}");
        }
    }
}
