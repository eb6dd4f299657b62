//! Rollup levels: the fixed bucket widths whose exact aggregates storage keeps beside the
//! readings, and the alignment of instants to their buckets.
//!
//! Buckets are half-open, `[start, start + width)`, aligned to the Unix epoch in UTC (a day
//! starts at 00:00:00Z), so every bucket of a level lies inside exactly one bucket of each
//! coarser level: a minute in one hour, an hour in one day. That nesting is what lets a window
//! be cut into whole buckets of the coarsest level that fits and finer ones at its edges.

use std::fmt;

/// Microseconds in one second.
pub const SECOND_MICROS: i64 = 1_000_000;
pub const MINUTE_MICROS: i64 = 60 * SECOND_MICROS;
pub const HOUR_MICROS: i64 = 60 * MINUTE_MICROS;
pub const DAY_MICROS: i64 = 24 * HOUR_MICROS;

/// A rollup level, finest first (the derived order is by width).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Second,
    Minute,
    Hour,
    Day,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Second, Level::Minute, Level::Hour, Level::Day];

    /// The bucket width in microseconds.
    pub const fn micros(self) -> i64 {
        match self {
            Level::Second => SECOND_MICROS,
            Level::Minute => MINUTE_MICROS,
            Level::Hour => HOUR_MICROS,
            Level::Day => DAY_MICROS,
        }
    }

    /// A stable one-byte code, used in storage keys.
    pub const fn code(self) -> u8 {
        match self {
            Level::Second => 0,
            Level::Minute => 1,
            Level::Hour => 2,
            Level::Day => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.code() == code)
    }

    /// A short name, used in storage keys and logs: `second`, `minute`, `hour`, `day`.
    pub const fn name(self) -> &'static str {
        match self {
            Level::Second => "second",
            Level::Minute => "minute",
            Level::Hour => "hour",
            Level::Day => "day",
        }
    }

    /// The start of the bucket holding `micros`.
    pub fn bucket_of(self, micros: i64) -> i64 {
        align_down(micros, self.micros())
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The largest multiple of `width` at or below `micros` (towards minus infinity, so instants
/// before 1970 align like any other).
pub fn align_down(micros: i64, width: i64) -> i64 {
    micros - micros.rem_euclid(width)
}

/// The smallest multiple of `width` at or above `micros`, saturating at the top of `i64`.
pub fn align_up(micros: i64, width: i64) -> i64 {
    let down = align_down(micros, width);
    if down == micros {
        micros
    } else {
        down.saturating_add(width)
    }
}

/// Levels kept per sensor: a sensor's windows read its raw readings only for the partial
/// minutes at their edges (at 1 Hz, at most 59 readings a side).
pub const SENSOR_LEVELS: [Level; 3] = [Level::Minute, Level::Hour, Level::Day];
/// Levels kept over all sensors: with seconds, a window with whole-second bounds reads no raw
/// readings at all (raw readings of every sensor would be needed otherwise).
pub const TOTAL_LEVELS: [Level; 4] = Level::ALL;

/// The levels kept for one sensor's windows or for all sensors'.
pub fn levels(per_sensor: bool) -> &'static [Level] {
    if per_sensor {
        &SENSOR_LEVELS
    } else {
        &TOTAL_LEVELS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_nest_and_round_trip_their_codes() {
        for pair in Level::ALL.windows(2) {
            assert_eq!(pair[1].micros() % pair[0].micros(), 0);
            assert!(pair[0] < pair[1]);
        }
        for level in Level::ALL {
            assert_eq!(Level::from_code(level.code()), Some(level));
        }
        assert_eq!(Level::from_code(9), None);
    }

    #[test]
    fn alignment_is_towards_minus_infinity() {
        assert_eq!(align_down(0, 60), 0);
        assert_eq!(align_down(59, 60), 0);
        assert_eq!(align_down(60, 60), 60);
        assert_eq!(align_down(-1, 60), -60);
        assert_eq!(align_up(-1, 60), 0);
        assert_eq!(align_up(1, 60), 60);
        assert_eq!(align_up(120, 60), 120);
        assert_eq!(align_up(i64::MAX, 60), i64::MAX);
        // 2021-10-04T09:17:42.5Z is in the 09:00 hour and the 2021-10-04 day.
        let t = 1_633_339_062_500_000;
        assert_eq!(Level::Hour.bucket_of(t), 1_633_338_000_000_000);
        assert_eq!(Level::Day.bucket_of(t), 1_633_305_600_000_000);
    }
}
