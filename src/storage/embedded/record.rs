//! The write-ahead log record's payload: the operations a group changed, enough to redo it.
//!
//! The frame around it (length, CRC-32, sequence number) is [`super::wal`]'s.

use crate::storage::StorageError;

const READING: u8 = 1;
const ITEM_PUT: u8 = 2;
const ITEM_DELETE: u8 = 3;

pub enum Op<'a> {
    Reading {
        sensor: &'a str,
        micros: i64,
        temperature: i64,
    },
    ItemPut {
        id: u64,
        json: &'a str,
    },
    ItemDelete {
        id: u64,
    },
}

fn text(ops: &mut Vec<u8>, text: &str) {
    ops.extend_from_slice(&(text.len() as u32).to_le_bytes());
    ops.extend_from_slice(text.as_bytes());
}

pub fn reading(ops: &mut Vec<u8>, sensor: &str, micros: i64, temperature: i64) {
    ops.push(READING);
    text(ops, sensor);
    ops.extend_from_slice(&micros.to_le_bytes());
    ops.extend_from_slice(&temperature.to_le_bytes());
}

pub fn item_put(ops: &mut Vec<u8>, id: u64, json: &str) {
    ops.push(ITEM_PUT);
    ops.extend_from_slice(&id.to_le_bytes());
    text(ops, json);
}

pub fn item_delete(ops: &mut Vec<u8>, id: u64) {
    ops.push(ITEM_DELETE);
    ops.extend_from_slice(&id.to_le_bytes());
}

fn corrupt() -> StorageError {
    StorageError::Internal("corrupt write-ahead log record (its checksum matched)".into())
}

fn take<'a>(ops: &mut &'a [u8], n: usize) -> Result<&'a [u8], StorageError> {
    if ops.len() < n {
        return Err(corrupt());
    }
    let (head, rest) = ops.split_at(n);
    *ops = rest;
    Ok(head)
}

fn u64_of(ops: &mut &[u8]) -> Result<u64, StorageError> {
    Ok(u64::from_le_bytes(
        take(ops, 8)?.try_into().expect("8 bytes"),
    ))
}

fn text_of<'a>(ops: &mut &'a [u8]) -> Result<&'a str, StorageError> {
    let len = u32::from_le_bytes(take(ops, 4)?.try_into().expect("4 bytes")) as usize;
    std::str::from_utf8(take(ops, len)?).map_err(|_| corrupt())
}

/// Decodes the next operation and advances `ops` past it.
pub fn decode<'a>(ops: &mut &'a [u8]) -> Result<Op<'a>, StorageError> {
    match take(ops, 1)?[0] {
        READING => Ok(Op::Reading {
            sensor: text_of(ops)?,
            micros: u64_of(ops)? as i64,
            temperature: u64_of(ops)? as i64,
        }),
        ITEM_PUT => Ok(Op::ItemPut {
            id: u64_of(ops)?,
            json: text_of(ops)?,
        }),
        ITEM_DELETE => Ok(Op::ItemDelete { id: u64_of(ops)? }),
        _ => Err(corrupt()),
    }
}
