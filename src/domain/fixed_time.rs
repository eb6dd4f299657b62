//! The fast path of time parsing: the two forms sensors actually send, read at fixed positions.
//!
//! `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC) and `YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)`, with one
//! to six fraction digits. Anything else — other widths, lowercase `t`/`z`, second 60, an
//! invalid date — answers `None`, and the caller falls back to chrono's general parsers, which
//! accept or refuse it with their own message. So this adds speed, never a new accepted form:
//! whatever it accepts, chrono's `%Y-%m-%d %H:%M:%S%.f` or `parse_from_rfc3339` accepts as the
//! same instant (the unit tests compare the two).

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// The instant `text` names, when it is one of the two fixed-width forms; `None` otherwise.
pub(super) fn parse(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    if bytes.len() < 19
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let rfc3339 = match bytes[10] {
        b' ' => false,
        b'T' => true,
        _ => return None,
    };
    let year = digits(bytes, 0, 4)?;
    let month = digits(bytes, 5, 2)?;
    let day = digits(bytes, 8, 2)?;
    let hour = digits(bytes, 11, 2)?;
    let minute = digits(bytes, 14, 2)?;
    let second = digits(bytes, 17, 2)?;
    if second > 59 {
        return None; // second 60: the general path words its refusal
    }
    let (micros, rest) = fraction(&bytes[19..])?;
    let offset_seconds = match (rfc3339, rest) {
        (false, []) => 0,
        (true, [b'Z']) => 0,
        (true, [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]) => {
            let hours = digits(&[*h1, *h2], 0, 2)?;
            let minutes = digits(&[*m1, *m2], 0, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = i64::from(hours * 3_600 + minutes * 60);
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let local = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
        .and_hms_micro_opt(hour, minute, second, micros)?
        .and_utc();
    local.checked_sub_signed(TimeDelta::seconds(offset_seconds))
}

/// `len` ASCII digits at `at`, as a number.
fn digits(bytes: &[u8], at: usize, len: usize) -> Option<u32> {
    bytes.get(at..at + len)?.iter().try_fold(0_u32, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// An optional `.` with one to six digits, as microseconds, and what follows it.
fn fraction(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let Some(after_dot) = bytes.strip_prefix(b".") else {
        return Some((0, bytes));
    };
    let count = after_dot.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=6).contains(&count) {
        return None;
    }
    let value = digits(after_dot, 0, count)?;
    Some((value * 10_u32.pow(6 - count as u32), &after_dot[count..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    /// What chrono's general parsers make of `text` (the path this one shortcuts).
    fn general(text: &str) -> Option<DateTime<Utc>> {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
            .map(|naive| naive.and_utc())
            .or_else(|_| DateTime::parse_from_rfc3339(text).map(|at| at.with_timezone(&Utc)))
            .ok()
    }

    #[test]
    fn both_forms_agree_with_chrono() {
        for text in [
            "2021-10-04 09:00:00",
            "2021-10-04 09:00:00.5",
            "2021-10-04 09:00:00.123456",
            "2021-10-04T09:00:00Z",
            "2021-10-04T09:00:00.25Z",
            "2021-10-04T11:00:00+02:00",
            "2021-10-04T11:00:00.000001-07:30",
            "0001-01-01 00:00:00",
            "0001-01-01T00:30:00+01:00",
            "9999-12-31 23:59:59.999999",
            "9999-12-31T23:59:59-23:59",
            "2024-02-29 12:00:00",
            "1969-12-31T23:59:59.999999Z",
        ] {
            let fast = parse(text);
            assert!(fast.is_some(), "{text} takes the fast path");
            assert_eq!(fast, general(text), "{text}");
        }
    }

    #[test]
    fn everything_else_is_left_to_the_general_parsers() {
        for text in [
            "2021-10-04",
            "2021-10-04 25:00:00",
            "2021-02-30 00:00:00",
            "2023-02-29 00:00:00",
            "2021-10-04T09:00:00",
            "2021-10-04 09:00:00Z",
            "2021-10-04t09:00:00Z",
            "2021-10-04T09:00:00z",
            "2021-10-04 12:34:60",
            "2021-10-04T23:59:60Z",
            "2021-10-04 09:00:00.",
            "2021-10-04 09:00:00.1234567",
            "2021-10-04T09:00:00+24:00",
            "2021-10-04T09:00:00+0200",
            "2021-1-04 09:00:00",
            "+2021-10-04 09:00:00",
            "2021-10-04 09:00:0x",
            "2021-10-04 09:00:00 ",
            "",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
