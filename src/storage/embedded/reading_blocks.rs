//! Readings packed in per-sensor blocks: where a sensor's in-order readings are kept.
//!
//! Table `reading_blocks`: `(sensor_id, µs of the block's first reading)` → up to
//! [`CAPACITY`] readings of that sensor, in increasing time order:
//!
//! ```text
//! [count: u16 LE][µs of the last reading: i64 LE]
//! then per reading: [varint: µs after the previous reading (the first: 0)][zigzag varint: µ°C]
//! ```
//!
//! A reading newer than every stored reading of its sensor — the common case, a sensor sends in
//! time order — is appended to the sensor's last block, or starts a new block when that one is
//! full (at the next checkpoint: until then the writer keeps it in memory, see
//! [`super::recent`], and readers take it from there after the sensor's blocks). Every other reading (late or out of order, or written while the one-time rollup build
//! runs, which reads rows only) is a row of the `readings` table, where every reading lived
//! before blocks; a store written by an earlier version keeps its rows as they are. So a
//! sensor's blocks never overlap, a reading is in exactly one place, and readers merge the two
//! in time order ([`range`], [`AllReadings`]). Why: a group commit of a fleet's readings
//! rewrites one block per sensor instead of inserting one row per reading (a B-tree descent and
//! a copied leaf each); the layouts benchmark measured 2.6–2.8× the writer's throughput.
//! Versions before this one do not know the table: a store written by this version must not be
//! opened by an earlier one.

use std::ops::Bound;

use redb::{ReadableTable, TableDefinition};

use super::storage_error;
use crate::storage::StorageError;

pub(super) const READING_BLOCKS: TableDefinition<(&str, i64), &[u8]> =
    TableDefinition::new("reading_blocks");

/// Most readings a block holds: an append rewrites the block, so this bounds the bytes copied
/// per appended reading (a full block is about 1 KiB at 10 s and 0.01 °C steps).
pub(super) const CAPACITY: usize = 128;

/// Size of a block's header: count and last time.
const HEADER: usize = 10;

/// One block being written: its key, and its encoding so far.
#[derive(Debug, Clone)]
pub(super) struct BlockBuf {
    /// µs of the first reading (the block's key).
    pub(super) first: i64,
    count: usize,
    last: i64,
    bytes: Vec<u8>,
}

impl BlockBuf {
    /// A block holding one reading.
    pub(super) fn starting(micros: i64, temperature: i64) -> Self {
        let mut block = Self {
            first: micros,
            count: 0,
            last: micros,
            bytes: vec![0; HEADER],
        };
        block.push(micros, temperature);
        block
    }

    /// The stored block at `first`, to append to; checks its header.
    pub(super) fn resume(sensor: &str, first: i64, bytes: &[u8]) -> Result<Self, StorageError> {
        let (count, last) = header(sensor, first, bytes)?;
        Ok(Self {
            first,
            count,
            last,
            bytes: bytes.to_vec(),
        })
    }

    pub(super) fn is_full(&self) -> bool {
        self.count >= CAPACITY
    }

    /// Appends a reading newer than the block's last (the caller's promise).
    pub(super) fn push(&mut self, micros: i64, temperature: i64) {
        debug_assert!(self.count == 0 || micros > self.last);
        let step = if self.count == 0 {
            0
        } else {
            micros - self.last
        };
        put_varint(&mut self.bytes, step as u64);
        put_varint(&mut self.bytes, zigzag(temperature));
        self.count += 1;
        self.last = micros;
    }

    /// The block's encoding, header included.
    pub(super) fn encoded(&mut self) -> &[u8] {
        self.bytes[..2].copy_from_slice(&(self.count as u16).to_le_bytes());
        self.bytes[2..HEADER].copy_from_slice(&self.last.to_le_bytes());
        &self.bytes
    }
}

/// Appends `readings` (in increasing time order, each newer than every stored reading of the
/// sensor) to the sensor's last block, starting new blocks as they fill; each block touched is
/// written once.
pub(super) fn append(
    table: &mut redb::Table<'_, (&'static str, i64), &'static [u8]>,
    sensor: &str,
    readings: &[(i64, i64)],
) -> Result<(), StorageError> {
    let Some(&(first_time, first_value)) = readings.first() else {
        return Ok(());
    };
    let last = table
        .range((sensor, i64::MIN)..=(sensor, i64::MAX))
        .map_err(storage_error)?
        .next_back()
        .transpose()
        .map_err(storage_error)?
        .map(|(key, value)| BlockBuf::resume(sensor, key.value().1, value.value()))
        .transpose()?;
    let (mut block, rest) = match last {
        Some(block) if !block.is_full() => (block, readings),
        _ => (BlockBuf::starting(first_time, first_value), &readings[1..]),
    };
    for &(micros, value) in rest {
        if block.is_full() {
            table
                .insert((sensor, block.first), block.encoded())
                .map_err(storage_error)?;
            block = BlockBuf::starting(micros, value);
        } else {
            block.push(micros, value);
        }
    }
    table
        .insert((sensor, block.first), block.encoded())
        .map_err(storage_error)?;
    Ok(())
}

/// The readings of the block stored at `(sensor, first)`, as `(µs, µ°C)` in time order; a
/// block that does not decode to `count` increasing readings from `first` to its last time is
/// an error.
pub(super) fn decode(
    sensor: &str,
    first: i64,
    bytes: &[u8],
) -> Result<Vec<(i64, i64)>, StorageError> {
    let (count, last) = header(sensor, first, bytes)?;
    let mut readings = Vec::with_capacity(count);
    let mut at = &bytes[HEADER..];
    let mut time = first;
    for index in 0..count {
        let step = take_varint(&mut at).ok_or_else(|| corrupt(sensor, first))?;
        let value = take_varint(&mut at).ok_or_else(|| corrupt(sensor, first))?;
        if index > 0 {
            time = i64::try_from(step)
                .ok()
                .filter(|step| *step > 0)
                .and_then(|step| time.checked_add(step))
                .ok_or_else(|| corrupt(sensor, first))?;
        } else if step != 0 {
            return Err(corrupt(sensor, first));
        }
        readings.push((time, unzigzag(value)));
    }
    if !at.is_empty() || time != last {
        return Err(corrupt(sensor, first));
    }
    Ok(readings)
}

/// The temperature stored in a block for `(sensor, micros)`, if any.
pub(super) fn find(
    table: &impl ReadableTable<(&'static str, i64), &'static [u8]>,
    sensor: &str,
    micros: i64,
) -> Result<Option<i64>, StorageError> {
    let Some(entry) = table
        .range((sensor, i64::MIN)..=(sensor, micros))
        .map_err(storage_error)?
        .next_back()
    else {
        return Ok(None);
    };
    let (key, value) = entry.map_err(storage_error)?;
    let first = key.value().1;
    let (_, last) = header(sensor, first, value.value())?;
    if micros > last {
        return Ok(None);
    }
    let readings = decode(sensor, first, value.value())?;
    Ok(readings
        .binary_search_by_key(&micros, |&(time, _)| time)
        .ok()
        .map(|at| readings[at].1))
}

/// One sensor's readings with `start <= time` and `time` within `end`, rows and blocks merged
/// in time order, at most `limit` of them, as `(µs, µ°C)`. `newest`: the sensor's readings
/// newer than all of its blocks' that are not in a block yet (the writer's recent readings, see
/// [`super::recent`]), in time order: they follow its blocks.
pub(super) fn range(
    rows: &impl ReadableTable<(&'static str, i64), i64>,
    blocks: &impl ReadableTable<(&'static str, i64), &'static [u8]>,
    newest: &[(i64, i64)],
    sensor: &str,
    start: i64,
    end: Bound<i64>,
    limit: usize,
) -> Result<Vec<(i64, i64)>, StorageError> {
    let within = |micros: i64| match end {
        Bound::Included(end) => micros <= end,
        Bound::Excluded(end) => micros < end,
        Bound::Unbounded => true,
    };
    let key_end = match end {
        Bound::Included(end) => Bound::Included((sensor, end)),
        Bound::Excluded(end) => Bound::Excluded((sensor, end)),
        Bound::Unbounded => Bound::Included((sensor, i64::MAX)),
    };
    let mut from_rows = Vec::new();
    for entry in rows
        .range::<(&str, i64)>((Bound::Included((sensor, start)), key_end))
        .map_err(storage_error)?
        .take(limit)
    {
        let (key, value) = entry.map_err(storage_error)?;
        from_rows.push((key.value().1, value.value()));
    }
    let mut from_blocks = Vec::new();
    // The block holding `start`, if one began before it, then every block beginning in range.
    let before = blocks
        .range((sensor, i64::MIN)..(sensor, start))
        .map_err(storage_error)?
        .next_back();
    let later = blocks
        .range::<(&str, i64)>((Bound::Included((sensor, start)), key_end))
        .map_err(storage_error)?;
    // Whether a reading is taken; `false` once past the range or the limit.
    let mut take = |(micros, temperature): (i64, i64)| {
        if !within(micros) || from_blocks.len() == limit {
            return false;
        }
        if micros >= start {
            from_blocks.push((micros, temperature));
        }
        true
    };
    let mut more = true;
    'blocks: for entry in before.into_iter().chain(later) {
        let (key, value) = entry.map_err(storage_error)?;
        for reading in decode(sensor, key.value().1, value.value())? {
            if !take(reading) {
                more = false;
                break 'blocks;
            }
        }
    }
    if more {
        let from = newest.partition_point(|&(micros, _)| micros < start);
        for &reading in &newest[from..] {
            if !take(reading) {
                break;
            }
        }
    }
    Ok(merge(from_rows, from_blocks, limit))
}

/// Two lists in increasing time order merged into one, at most `limit` long.
fn merge(a: Vec<(i64, i64)>, b: Vec<(i64, i64)>, limit: usize) -> Vec<(i64, i64)> {
    if b.is_empty() || a.is_empty() {
        let mut only = if b.is_empty() { a } else { b };
        only.truncate(limit);
        return only;
    }
    let mut merged = Vec::with_capacity((a.len() + b.len()).min(limit));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while merged.len() < limit {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0 <= y.0 => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => None,
        };
        match next {
            Some(reading) => merged.push(reading),
            None => break,
        }
    }
    merged
}

/// A reading of the whole store: sensor, µs, µ°C.
pub(super) type Owned = (String, i64, i64);

/// Every reading of the store in `(sensor, time)` order, rows and blocks merged: for the
/// verifier and the scanning baseline, not for answering requests. A reading held twice (a
/// row and a block, or two blocks) comes out twice, so a caller checking order sees it.
pub(super) struct AllReadings<R: Iterator, B> {
    rows: std::iter::Peekable<R>,
    blocks: B,
    /// What is left of the block being read, reversed (the next reading last).
    block: Vec<Owned>,
}

impl<R, B> AllReadings<R, B>
where
    R: Iterator<Item = Result<Owned, StorageError>>,
    B: Iterator<Item = Result<(String, i64, Vec<u8>), StorageError>>,
{
    pub(super) fn new(rows: R, blocks: B) -> Self {
        Self {
            rows: rows.peekable(),
            blocks,
            block: Vec::new(),
        }
    }

    fn refill(&mut self) -> Result<(), StorageError> {
        while self.block.is_empty() {
            let Some(next) = self.blocks.next() else {
                return Ok(());
            };
            let (sensor, first, bytes) = next?;
            let readings = decode(&sensor, first, &bytes)?;
            self.block = readings
                .into_iter()
                .rev()
                .map(|(micros, temperature)| (sensor.clone(), micros, temperature))
                .collect();
        }
        Ok(())
    }
}

impl<R, B> Iterator for AllReadings<R, B>
where
    R: Iterator<Item = Result<Owned, StorageError>>,
    B: Iterator<Item = Result<(String, i64, Vec<u8>), StorageError>>,
{
    type Item = Result<Owned, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(error) = self.refill() {
            return Some(Err(error));
        }
        let row_first = match (self.rows.peek(), self.block.last()) {
            (Some(Err(_)), _) | (Some(_), None) => true,
            (Some(Ok(row)), Some(reading)) => {
                (row.0.as_str(), row.1) <= (reading.0.as_str(), reading.1)
            }
            (None, _) => false,
        };
        if row_first {
            self.rows.next()
        } else {
            self.block.pop().map(Ok)
        }
    }
}

/// The whole store's readings (see [`AllReadings`]) from a read transaction's tables.
pub(super) fn all<'a>(
    rows: &'a impl ReadableTable<(&'static str, i64), i64>,
    blocks: &'a impl ReadableTable<(&'static str, i64), &'static [u8]>,
) -> Result<impl Iterator<Item = Result<Owned, StorageError>> + 'a, StorageError> {
    let rows = rows.iter().map_err(storage_error)?.map(|entry| {
        let (key, value) = entry.map_err(storage_error)?;
        let (sensor, micros) = key.value();
        Ok((sensor.to_owned(), micros, value.value()))
    });
    let blocks = blocks.iter().map_err(storage_error)?.map(|entry| {
        let (key, value) = entry.map_err(storage_error)?;
        let (sensor, first) = key.value();
        Ok((sensor.to_owned(), first, value.value().to_vec()))
    });
    Ok(AllReadings::new(rows, blocks))
}

fn header(sensor: &str, first: i64, bytes: &[u8]) -> Result<(usize, i64), StorageError> {
    if bytes.len() < HEADER {
        return Err(corrupt(sensor, first));
    }
    let count = u16::from_le_bytes([bytes[0], bytes[1]]) as usize;
    let last = i64::from_le_bytes(bytes[2..HEADER].try_into().expect("8 bytes"));
    if count == 0 || count > CAPACITY || last < first {
        return Err(corrupt(sensor, first));
    }
    Ok((count, last))
}

fn corrupt(sensor: &str, first: i64) -> StorageError {
    StorageError::Internal(format!("corrupt reading block ({sensor:?}, {first} µs)").into())
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

fn put_varint(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push((value as u8) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            *bytes = &bytes[index + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use redb::{Database, ReadableDatabase};

    use super::*;
    use crate::storage::embedded::tables::READINGS;

    fn database() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("blocks.redb")).unwrap();
        (dir, db)
    }

    fn block_keys(db: &Database, sensor: &str) -> Vec<i64> {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(READING_BLOCKS).unwrap();
        table
            .range((sensor, i64::MIN)..=(sensor, i64::MAX))
            .unwrap()
            .map(|entry| entry.unwrap().0.value().1)
            .collect()
    }

    #[test]
    fn a_block_round_trips_and_any_damage_is_an_error() {
        let mut block = BlockBuf::starting(1_000, -5_250_000);
        for (micros, value) in [
            (1_001, 0),
            (11_000_000_000, 39_990_000),
            (11_000_000_001, i64::MIN),
        ] {
            block.push(micros, value);
        }
        let bytes = block.encoded().to_vec();
        assert_eq!(
            decode("s", 1_000, &bytes).unwrap(),
            [
                (1_000, -5_250_000),
                (1_001, 0),
                (11_000_000_000, 39_990_000),
                (11_000_000_001, i64::MIN)
            ]
        );
        // Another key, a cut tail, a byte too many, a wrong count, a wrong last time.
        assert!(decode("s", 999, &bytes).is_err());
        assert!(decode("s", 1_000, &bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode("s", 1_000, &longer).is_err());
        let mut count = bytes.clone();
        count[0] = 3;
        assert!(decode("s", 1_000, &count).is_err());
        let mut last = bytes.clone();
        last[2] ^= 1;
        assert!(decode("s", 1_000, &last).is_err());
        assert!(decode("s", 1_000, &bytes[..4]).is_err());
    }

    #[test]
    fn appends_fill_the_last_block_then_start_new_ones_and_finds_see_every_reading() {
        let (_dir, db) = database();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(READING_BLOCKS).unwrap();
            let first: Vec<(i64, i64)> = (0..100).map(|i| (i * 10, i)).collect();
            append(&mut table, "s", &first).unwrap();
            let second: Vec<(i64, i64)> = (100..300).map(|i| (i * 10, i)).collect();
            append(&mut table, "s", &second).unwrap();
            append(&mut table, "t", &[(5, 7)]).unwrap();
        }
        txn.commit().unwrap();
        assert_eq!(
            block_keys(&db, "s"),
            [0, CAPACITY as i64 * 10, 2 * CAPACITY as i64 * 10]
        );
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(READING_BLOCKS).unwrap();
        for i in 0..300 {
            assert_eq!(find(&table, "s", i * 10).unwrap(), Some(i), "reading {i}");
            assert_eq!(find(&table, "s", i * 10 + 1).unwrap(), None);
        }
        assert_eq!(find(&table, "s", -1).unwrap(), None);
        assert_eq!(find(&table, "t", 5).unwrap(), Some(7));
        assert_eq!(find(&table, "u", 5).unwrap(), None);
    }

    #[test]
    fn a_range_merges_rows_blocks_and_the_newest_in_time_order_within_its_bounds_and_limit() {
        let (_dir, db) = database();
        let txn = db.begin_write().unwrap();
        // The even readings below 600 in blocks, the rest not in a block yet.
        let even: Vec<(i64, i64)> = (0..400).map(|i| (i * 2, i * 2)).collect();
        let newest = &even[300..];
        {
            let mut blocks = txn.open_table(READING_BLOCKS).unwrap();
            append(&mut blocks, "s", &even[..300]).unwrap();
            append(&mut blocks, "r", &[(1, -1)]).unwrap();
            let mut rows = txn.open_table(READINGS).unwrap();
            for i in 0..400 {
                rows.insert(("s", i * 2 + 1), i * 2 + 1).unwrap();
            }
            rows.insert(("t", 3), 3).unwrap();
        }
        txn.commit().unwrap();
        let txn = db.begin_read().unwrap();
        let rows = txn.open_table(READINGS).unwrap();
        let blocks = txn.open_table(READING_BLOCKS).unwrap();
        let all = |start, end, limit| {
            range(&rows, &blocks, newest, "s", start, end, limit)
                .unwrap()
                .into_iter()
                .map(|(micros, value)| {
                    assert_eq!(micros, value);
                    micros
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            all(i64::MIN, Bound::Unbounded, usize::MAX),
            (0..800).collect::<Vec<_>>()
        );
        // Bounds inside blocks, both kinds of end.
        assert_eq!(
            all(301, Bound::Excluded(555), usize::MAX),
            (301..555).collect::<Vec<_>>()
        );
        assert_eq!(
            all(301, Bound::Included(555), usize::MAX),
            (301..=555).collect::<Vec<_>>()
        );
        assert_eq!(
            all(301, Bound::Unbounded, 7),
            (301..308).collect::<Vec<_>>()
        );
        assert_eq!(all(900, Bound::Unbounded, 7), Vec::<i64>::new());
        // Across the last block and the newest, and within the newest alone.
        assert_eq!(
            all(590, Bound::Excluded(610), usize::MAX),
            (590..610).collect::<Vec<_>>()
        );
        assert_eq!(
            all(701, Bound::Included(705), 3),
            (701..704).collect::<Vec<_>>()
        );
        assert_eq!(
            all(301, Bound::Excluded(302), usize::MAX),
            [301],
            "a row, blocks and newest after it"
        );
        // Every reading of the tables (not the newest), sensor by sensor.
        let whole: Vec<Owned> = all_readings(&rows, &blocks);
        assert_eq!(whole.len(), 702);
        assert_eq!(whole[0], ("r".into(), 1, -1));
        let stored: Vec<i64> = (0..800).filter(|i| i % 2 == 1 || *i < 600).collect();
        assert!(
            whole[1..701]
                .iter()
                .zip(&stored)
                .all(|(r, &i)| *r == ("s".into(), i, i))
        );
        assert_eq!(whole[701], ("t".into(), 3, 3));
    }

    fn all_readings(
        rows: &impl ReadableTable<(&'static str, i64), i64>,
        blocks: &impl ReadableTable<(&'static str, i64), &'static [u8]>,
    ) -> Vec<Owned> {
        all(rows, blocks).unwrap().map(Result::unwrap).collect()
    }
}
