//! The embedded store's write-ahead log: one file of framed, checksummed records.
//!
//! Each record is one group commit's accepted changes, numbered by a sequence number that
//! increases by one per record. On disk a record is
//!
//! ```text
//! [payload length: u32 LE][CRC-32 of the payload: u32 LE][payload: sequence u64 LE, then ops]
//! ```
//!
//! (the ops are [`super::record`]'s encoding). [`Log::write`] puts one record in the file
//! without syncing it; the writer's syncer thread `fdatasync`s a [`Log::sync_handle`] once for
//! every group written so far, and a record is durable only after that. [`Log::rewind`] starts
//! writing again at offset 0 (after a checkpoint made everything before durable elsewhere); the
//! file is not truncated, so later writes overwrite blocks that are already allocated and the
//! `fdatasync` has no metadata to flush. Records left over from before a rewind have smaller
//! sequence numbers than the ones written after it, so the store's replay (which wants
//! consecutive numbers) stops at them, as reading stops at a torn or corrupt record.
//! See the store's module documentation ([`super`]) for how the log and redb fit.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Size of a record's frame header (length + CRC).
const HEADER: usize = 8;
/// Beyond this size the file is truncated at the next rewind, so one burst of large batches
/// does not keep a large file forever.
const KEEP_BYTES: u64 = 64 * 1024 * 1024;
/// Largest payload accepted when reading back: anything bigger is a corrupt length.
const MAX_PAYLOAD: usize = 1 << 30;

/// A record read back: its sequence number and its payload after the number.
pub type Record = (u64, Vec<u8>);

/// What reading the log back found: the well-formed records from offset 0, and where they
/// stopped, if they stopped before the end of the file.
#[derive(Debug, Default)]
pub struct Contents {
    pub records: Vec<Record>,
    pub damage: Option<Damage>,
}

/// Where reading stopped early: a torn or corrupt record (or zeroes) at `offset`, with at least
/// a frame header's worth of bytes after it. After a crash that is normal (a torn last record,
/// then blocks of an older cycle of the log); what is not normal is newer records after it.
#[derive(Debug)]
pub struct Damage {
    /// Byte position of the first record that could not be read.
    pub offset: u64,
    /// The file's bytes from `offset` on.
    tail: Vec<u8>,
}

impl Damage {
    /// How many well-formed records after the damage carry a sequence number above
    /// `newer_than`: records written after the damaged one, which replay would lose.
    pub fn newer_records(&self, newer_than: u64) -> usize {
        let bytes = &self.tail;
        // A record written after the damaged one numbers at most one more per frame.
        let most = newer_than.saturating_add((bytes.len() / (HEADER + 8)) as u64 + 1);
        let mut count = 0;
        let mut at = 1;
        while bytes.len().saturating_sub(at) >= HEADER + 8 {
            match frame_at(bytes, at) {
                Some((sequence, len)) if sequence > newer_than && sequence <= most => {
                    count += 1;
                    at += HEADER + len;
                }
                _ => at += 1,
            }
        }
        count
    }
}

/// One append-only log file.
pub struct Log {
    file: File,
    /// Where the next record goes.
    offset: u64,
    /// The file's length as last known (records beyond `offset` are stale).
    length: u64,
}

impl Log {
    /// Opens (or creates) the log at `path`, makes its directory entry durable, and returns it
    /// with every record found from offset 0 up to the first torn, corrupt or empty one, as
    /// `(sequence, ops)` pairs. Appending starts at offset 0, overwriting those records: make
    /// them durable elsewhere first.
    pub fn open(path: &Path) -> io::Result<(Self, Contents)> {
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if !existed {
            file.sync_all()?;
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let length = bytes.len() as u64;
        let records = read_records(bytes);
        Ok((
            Self {
                file,
                offset: 0,
                length,
            },
            records,
        ))
    }

    /// Reads every record back from the file as it is now (the writer's reopen after a fault):
    /// what [`Self::open`] would find.
    pub fn read_back(&self) -> io::Result<Contents> {
        let length = self.file.metadata()?.len();
        let mut bytes = vec![0; usize::try_from(length).map_err(io::Error::other)?];
        self.file.read_exact_at(&mut bytes, 0)?;
        Ok(read_records(bytes))
    }

    /// Forgets the records appended from `offset` on (a commit that failed after its append):
    /// the next append overwrites them.
    pub fn discard_from(&mut self, offset: u64) {
        self.offset = offset.min(self.offset);
    }

    /// Bytes written since the last rewind.
    pub fn written(&self) -> u64 {
        self.offset
    }

    /// Another handle on the file, for `fdatasync` from another thread.
    pub fn sync_handle(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// Appends one record without syncing it (see [`Self::sync_handle`]); returns its size. On
    /// error the offset does not move, so the next write overwrites whatever part was written.
    pub fn write(&mut self, sequence: u64, ops: &[u8]) -> io::Result<u64> {
        let mut frame = Vec::with_capacity(HEADER + 8 + ops.len());
        frame.extend_from_slice(&[0; HEADER]);
        frame.extend_from_slice(&sequence.to_le_bytes());
        frame.extend_from_slice(ops);
        let payload_len = (frame.len() - HEADER) as u32;
        let crc = crc32(&frame[HEADER..]);
        frame[..4].copy_from_slice(&payload_len.to_le_bytes());
        frame[4..HEADER].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all_at(&frame, self.offset)?;
        self.offset += frame.len() as u64;
        self.length = self.length.max(self.offset);
        Ok(frame.len() as u64)
    }

    /// Starts over at offset 0: everything logged so far is durable elsewhere (a checkpoint).
    /// Truncates the file only when it has grown beyond `KEEP_BYTES`.
    pub fn rewind(&mut self) -> io::Result<()> {
        self.offset = 0;
        if self.length > KEEP_BYTES {
            self.file.set_len(0)?;
            self.file.sync_all()?;
            self.length = 0;
        }
        Ok(())
    }
}

/// Every well-formed record from the start of `bytes`, stopping at the first bad one.
fn read_records(bytes: Vec<u8>) -> Contents {
    let mut records = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= HEADER + 8 {
        let Some((sequence, len)) = frame_at(&bytes, at) else {
            // A torn, corrupt or zeroed record: whatever follows is judged by the caller.
            let tail = bytes[at..].to_vec();
            return Contents {
                records,
                damage: Some(Damage {
                    offset: at as u64,
                    tail,
                }),
            };
        };
        let payload = &bytes[at + HEADER + 8..at + HEADER + len];
        records.push((sequence, payload.to_vec()));
        at += HEADER + len;
    }
    Contents {
        records,
        damage: None,
    }
}

/// The well-formed frame at `at`, as its sequence number and payload length.
fn frame_at(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let header = bytes.get(at..at + HEADER)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if !(8..=MAX_PAYLOAD).contains(&len) || bytes.len() - at - HEADER < len {
        return None; // torn (or zeroed)
    }
    let payload = &bytes[at + HEADER..at + HEADER + len];
    if crc32(payload) != crc {
        return None;
    }
    Some((
        u64::from_le_bytes(payload[..8].try_into().expect("8 bytes")),
        len,
    ))
}

/// CRC-32 (IEEE 802.3, the zlib one), from `crc32fast` (SIMD where the CPU has it).
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn records_come_back_in_order_and_a_torn_or_corrupt_tail_ends_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        {
            let (mut log, contents) = Log::open(&path).unwrap();
            assert!(contents.records.is_empty());
            for seq in 1..=3u64 {
                log.write(seq, &[seq as u8; 100]).unwrap();
            }
        }
        let bytes = std::fs::read(&path).unwrap();
        let records = Log::open(&path).unwrap().1.records;
        assert_eq!(
            records.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(records[1].1, vec![2u8; 100]);

        // A torn last record (cut in its middle) is dropped, the ones before it kept.
        std::fs::write(&path, &bytes[..bytes.len() - 30]).unwrap();
        let records = Log::open(&path).unwrap().1.records;
        assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2]);

        // A flipped bit in the second record ends the log there.
        let mut corrupt = bytes.clone();
        corrupt[HEADER + 108 + HEADER + 20] ^= 1;
        std::fs::write(&path, &corrupt).unwrap();
        let records = Log::open(&path).unwrap().1.records;
        assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1]);

        // Zeroes after the records (a preallocated or partly written block) end the log too.
        let mut zeroed = bytes.clone();
        zeroed.extend_from_slice(&[0; 4096]);
        std::fs::write(&path, &zeroed).unwrap();
        let records = Log::open(&path).unwrap().1.records;
        assert_eq!(records.len(), 3);
    }

    #[test]
    fn after_a_rewind_new_records_overwrite_old_ones_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (mut log, _) = Log::open(&path).unwrap();
        for seq in 1..=5u64 {
            log.write(seq, &[0; 50]).unwrap();
        }
        log.rewind().unwrap();
        assert_eq!(log.written(), 0);
        log.write(6, &[1; 50]).unwrap();
        drop(log);
        // Record 6 first, then the stale 2..=5: the reader of the log stops at the gap.
        let records = Log::open(&path).unwrap().1.records;
        assert_eq!(
            records.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![6, 2, 3, 4, 5]
        );
    }

    /// A damaged record tells how many newer records follow it; a torn last record, zeroes or
    /// older records after a rewind are not "newer".
    #[test]
    fn damage_counts_the_newer_records_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (mut log, _) = Log::open(&path).unwrap();
        for seq in 1..=5u64 {
            log.write(seq, &[seq as u8; 40]).unwrap();
        }
        drop(log);
        let bytes = std::fs::read(&path).unwrap();
        let frame = HEADER + 8 + 40;

        let mut corrupt = bytes.clone();
        corrupt[frame + HEADER + 3] ^= 0x10; // record 2's sequence number
        std::fs::write(&path, &corrupt).unwrap();
        let contents = Log::open(&path).unwrap().1;
        assert_eq!(contents.records.len(), 1);
        let damage = contents.damage.expect("damaged");
        assert_eq!(damage.offset, frame as u64);
        assert_eq!(damage.newer_records(1), 3, "records 3, 4 and 5");
        assert_eq!(damage.newer_records(5), 0, "none newer than 5");

        // A corrupt length: found again by scanning.
        let mut corrupt = bytes.clone();
        corrupt[frame..frame + 4].copy_from_slice(&[0xFF; 4]);
        std::fs::write(&path, &corrupt).unwrap();
        let damage = Log::open(&path).unwrap().1.damage.expect("damaged");
        assert_eq!(damage.newer_records(1), 3);

        // A torn last record: damage with nothing newer after it.
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let contents = Log::open(&path).unwrap().1;
        assert_eq!(contents.records.len(), 4);
        assert_eq!(contents.damage.map_or(0, |d| d.newer_records(4)), 0);

        // After a rewind: record 6 over record 1, then a torn 7 over record 2, then the older
        // records 3..=5, which are not newer than 6.
        let (mut log, _) = Log::open(&path).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        log.rewind().unwrap();
        log.write(6, &[6; 40]).unwrap();
        log.write(7, &[7; 40]).unwrap();
        drop(log);
        let mut torn = std::fs::read(&path).unwrap();
        torn[frame + HEADER + 20] ^= 1;
        std::fs::write(&path, &torn).unwrap();
        let contents = Log::open(&path).unwrap().1;
        assert_eq!(
            contents.records.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![6]
        );
        assert_eq!(contents.damage.expect("damaged").newer_records(6), 0);
    }
}
