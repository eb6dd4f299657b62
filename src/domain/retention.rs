//! Retention: how long raw readings and each rollup level are kept, the horizon before which a
//! reading is refused, and the margin after which a reading from the future is refused.
//!
//! - A reading is **retained** while `time >= now - RETENTION_RAW`; the horizon is that
//!   instant. A reading older than the horizon is refused (422), so a reading that retention
//!   deleted can never be stored and counted a second time: deletion only ever removes readings
//!   beyond a horizon that writes already refuse.
//! - A rollup bucket of a level is retained while its end is after `now - RETENTION_<LEVEL>`.
//!   Periods must not shrink from finer to coarser data (`RETENTION_RAW <= RETENTION_SECOND <=
//!   RETENTION_MINUTE <= RETENTION_HOUR <= RETENTION_DAY`): where a level is gone, every finer
//!   one is gone too, so a window reaching there can only be answered from coarser buckets.
//! - A reading more than `FUTURE_MARGIN` ahead of the server's clock is refused: a sensor with a
//!   wrong clock would otherwise plant readings that no retention ever expires.
//!
//! All-time statistics, sensor summaries and the rollups that remain keep counting expired
//! readings: retention deletes data, never what the aggregates say about it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::batch::{Checked, InvalidReading};
use super::line_batch::{LineError, LinesChecked};
use super::reading::{FieldError, Reading, Timestamp};
use super::rollup::{DAY_MICROS, HOUR_MICROS, Level, MINUTE_MICROS, SECOND_MICROS, align_down};
use super::window::Piece;

/// A period of time as configured (`30d`, `12h`, `5m`, `90s`), or `forever`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(Option<i64>);

/// Shorter first; `forever` is longer than every finite period.
impl Ord for Period {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |p: &Period| p.0.map_or(i128::MAX, i128::from);
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for Period {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Units a period may be written in, coarsest first.
const UNITS: [(char, i64); 4] = [
    ('d', DAY_MICROS),
    ('h', HOUR_MICROS),
    ('m', MINUTE_MICROS),
    ('s', SECOND_MICROS),
];
/// Longest finite period: about 10,000 years, so `now - period` never overflows.
const MAX_PERIOD_MICROS: i64 = 3_650_000 * DAY_MICROS;

impl Period {
    pub const FOREVER: Period = Period(None);

    pub const fn seconds(seconds: i64) -> Self {
        Self(Some(seconds * SECOND_MICROS))
    }

    /// `forever`, or a positive whole number followed by `d`, `h`, `m` or `s`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "forever" {
            return Ok(Self::FOREVER);
        }
        let wrong = || {
            format!(
                "{text:?} is not a period: write forever, or a whole number of d, h, m or s \
                 (30d, 12h, 5m, 90s)"
            )
        };
        let unit = text.chars().last().ok_or_else(wrong)?;
        let (_, unit_micros) = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .ok_or_else(wrong)?;
        let digits = &text[..text.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(wrong());
        }
        let count: i64 = digits.parse().map_err(|_| wrong())?;
        if count == 0 {
            return Err(format!("{text:?} must be longer than 0 (or forever)"));
        }
        match count.checked_mul(*unit_micros) {
            Some(micros) if micros <= MAX_PERIOD_MICROS => Ok(Self(Some(micros))),
            _ => Err(format!("{text:?} is too long: use forever")),
        }
    }

    pub fn micros(self) -> Option<i64> {
        self.0
    }

    pub fn is_forever(self) -> bool {
        self.0.is_none()
    }

    /// `now - self`, or `None` for forever.
    fn before(self, now: i64) -> Option<i64> {
        self.0.map(|micros| now - micros)
    }
}

impl fmt::Display for Period {
    /// The coarsest unit that writes the period exactly (`90s` stays `90s`, `120s` is `2m`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("forever"),
            Some(micros) => {
                let (unit, width) = UNITS
                    .iter()
                    .find(|(_, width)| micros % width == 0)
                    .copied()
                    .unwrap_or(('s', SECOND_MICROS));
                write!(f, "{}{unit}", micros / width)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// How long each kind of data is kept, and how far ahead of the clock a reading may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub raw: Period,
    pub second: Period,
    pub minute: Period,
    pub hour: Period,
    pub day: Period,
    pub future_margin: Period,
}

impl Default for Retention {
    /// Everything kept forever, any future time accepted.
    fn default() -> Self {
        Self {
            raw: Period::FOREVER,
            second: Period::FOREVER,
            minute: Period::FOREVER,
            hour: Period::FOREVER,
            day: Period::FOREVER,
            future_margin: Period::FOREVER,
        }
    }
}

/// Each variable's name, for messages.
const RAW_NAME: &str = "RETENTION_RAW";

fn level_variable(level: Level) -> &'static str {
    match level {
        Level::Second => "RETENTION_SECOND",
        Level::Minute => "RETENTION_MINUTE",
        Level::Hour => "RETENTION_HOUR",
        Level::Day => "RETENTION_DAY",
    }
}

impl Retention {
    pub fn level(&self, level: Level) -> Period {
        match level {
            Level::Second => self.second,
            Level::Minute => self.minute,
            Level::Hour => self.hour,
            Level::Day => self.day,
        }
    }

    /// Whether any data is ever deleted.
    pub fn deletes_anything(&self) -> bool {
        !self.raw.is_forever() || Level::ALL.iter().any(|l| !self.level(*l).is_forever())
    }

    /// Coarser data is kept at least as long as finer data (see the module documentation).
    pub fn validate(&self) -> Result<(), String> {
        let mut finer = (RAW_NAME, self.raw);
        for level in Level::ALL {
            let this = (level_variable(level), self.level(level));
            if this.1 < finer.1 {
                return Err(format!(
                    "{}={} is shorter than {}={}: coarser data must be kept at least as long as \
                     the finer data it summarises",
                    this.0, this.1, finer.0, finer.1
                ));
            }
            finer = this;
        }
        Ok(())
    }

    /// The horizons at `now` (µs since the epoch).
    pub fn horizons(&self, now: i64) -> Horizons {
        Horizons {
            retention: *self,
            raw: self.raw.before(now),
            levels: Level::ALL.map(|level| self.level(level).before(now)),
            newest: self.future_margin.micros().map(|m| now.saturating_add(m)),
        }
    }

    /// The horizons now, by the system clock.
    pub fn horizons_now(&self) -> Horizons {
        self.horizons(chrono::Utc::now().timestamp_micros())
    }
}

/// What is kept at one instant: the oldest reading time retained, the oldest retained bucket end
/// per level, and the newest reading time accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizons {
    retention: Retention,
    raw: Option<i64>,
    /// By [`Level::code`].
    levels: [Option<i64>; 4],
    newest: Option<i64>,
}

/// Why a window or series cannot be answered exactly: part of it lies where the data it needs
/// (raw readings, or one level's rollups) has expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beyond {
    /// The expired data: `None` for raw readings.
    pub level: Option<Level>,
    /// Where that data's retained part starts.
    pub horizon: i64,
    /// The finest coarser level still kept where the window needs it, if any.
    pub coarser: Option<Level>,
    pub detail: String,
}

impl Horizons {
    /// The oldest reading time retained; `None` when readings are kept forever.
    pub fn raw(&self) -> Option<i64> {
        self.raw
    }

    /// Where `level`'s retained buckets start (the first bucket whose end is after the horizon).
    pub fn level_start(&self, level: Level) -> Option<i64> {
        self.levels[usize::from(level.code())].map(|h| align_down(h, level.micros()))
    }

    /// Whether a reading at `time` may be stored: refused beyond the horizon or the margin.
    pub fn check_time(&self, time: Timestamp) -> Result<(), String> {
        let at = time.micros();
        if let Some(oldest) = self.raw
            && at < oldest
        {
            return Err(format!(
                "is older than the retention horizon: readings before {} \
                 ({RAW_NAME}={}) are no longer kept, so they are refused",
                rfc3339(oldest),
                self.retention.raw
            ));
        }
        if let Some(newest) = self.newest
            && at > newest
        {
            return Err(format!(
                "is more than {} ahead of the server's clock (FUTURE_MARGIN): readings after \
                 {} are refused",
                self.retention.future_margin,
                rfc3339(newest)
            ));
        }
        Ok(())
    }

    /// Checks that every piece of a planned window or series reads retained data. `levels` are
    /// the levels the plan was made with (finest first), used to say what would work instead.
    pub fn check_pieces(&self, pieces: &[Piece], levels: &[Level]) -> Result<(), Beyond> {
        for piece in pieces {
            let (level, from, horizon) = match *piece {
                Piece::Raw { span } => (None, span.from, self.raw),
                Piece::Rollup { level, span } => (Some(level), span.from, self.level_start(level)),
            };
            let Some(horizon) = horizon.filter(|h| from < *h) else {
                continue;
            };
            let coarser = levels
                .iter()
                .copied()
                .filter(|l| level.is_none_or(|level| *l > level))
                .find(|l| self.level_start(*l).is_none_or(|start| from >= start));
            let (what, variable, period) = match level {
                None => ("raw readings".to_owned(), RAW_NAME, self.retention.raw),
                Some(level) => (
                    format!("{level} rollups"),
                    level_variable(level),
                    self.retention.level(level),
                ),
            };
            let advice = match coarser {
                Some(coarser) => format!(
                    "there, only whole {coarser} buckets can be answered: align from and to to \
                     whole {coarser}s (UTC), or, for a series, use a step of at least 1 {coarser}"
                ),
                None => "nothing finer than what remains is kept there".to_owned(),
            };
            return Err(Beyond {
                level,
                horizon,
                coarser,
                detail: format!(
                    "the window reaches before {}, where {what} are no longer kept \
                     ({variable}={period}); {advice}; or start at or after {}",
                    rfc3339(horizon),
                    rfc3339(horizon)
                ),
            });
        }
        Ok(())
    }

    /// Moves the readings outside the horizons out of `readings`, as `(index, why)`.
    fn split(&self, readings: &mut Vec<(usize, Reading)>) -> Vec<(usize, String)> {
        let mut refused = Vec::new();
        readings.retain(|(index, reading)| match self.check_time(reading.time) {
            Ok(()) => true,
            Err(why) => {
                refused.push((*index, why));
                false
            }
        });
        refused
    }
}

fn rfc3339(micros: i64) -> String {
    Timestamp::from_micros(micros).map_or_else(|| micros.to_string(), Timestamp::to_rfc3339)
}

impl Checked {
    /// The readings outside `horizons` become invalid (their `time` field), like any bad value.
    pub fn within(mut self, horizons: &Horizons) -> Self {
        let refused = horizons.split(&mut self.readings);
        if !refused.is_empty() {
            self.invalid
                .extend(refused.into_iter().map(|(index, detail)| InvalidReading {
                    index,
                    errors: vec![FieldError {
                        field: "time",
                        detail,
                    }],
                }));
            self.invalid.sort_by_key(|invalid| invalid.index);
        }
        self
    }
}

impl LinesChecked {
    /// The lines whose time is outside `horizons` become invalid lines.
    pub fn within(mut self, horizons: &Horizons) -> Self {
        let refused = horizons.split(&mut self.readings);
        if !refused.is_empty() {
            self.invalid
                .extend(refused.into_iter().map(|(line, why)| LineError {
                    line,
                    message: format!("timestamp {why}"),
                }));
            self.invalid.sort_by_key(|error| error.line);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rollup::{SENSOR_LEVELS, TOTAL_LEVELS};
    use crate::domain::window::{Span, plan};

    const T0: i64 = 1_633_305_600_000_000; // 2021-10-04T00:00:00Z

    #[test]
    fn periods_parse_in_every_unit_and_print_in_the_coarsest() {
        assert_eq!(Period::parse("90s"), Ok(Period::seconds(90)));
        assert_eq!(
            Period::parse("30d").unwrap().micros(),
            Some(30 * DAY_MICROS)
        );
        assert_eq!(Period::parse("12h").unwrap().to_string(), "12h");
        assert_eq!(Period::parse("120s").unwrap().to_string(), "2m");
        assert_eq!(Period::parse("90s").unwrap().to_string(), "90s");
        assert_eq!(Period::parse("forever"), Ok(Period::FOREVER));
        assert_eq!(Period::FOREVER.to_string(), "forever");
        for bad in [
            "",
            "0s",
            "5",
            "d",
            "1w",
            "-1d",
            "1.5h",
            "5 m",
            "99999999999999d",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Period::FOREVER > Period::parse("3650000d").unwrap());
    }

    #[test]
    fn coarser_data_must_not_expire_before_finer_data() {
        let mut retention = Retention {
            raw: Period::parse("30d").unwrap(),
            second: Period::parse("30d").unwrap(),
            minute: Period::parse("90d").unwrap(),
            ..Retention::default()
        };
        assert_eq!(retention.validate(), Ok(()));
        retention.hour = Period::parse("60d").unwrap();
        let error = retention.validate().unwrap_err();
        assert!(error.starts_with("RETENTION_HOUR=60d"), "{error}");
        let error = Retention {
            minute: Period::parse("1d").unwrap(),
            ..Retention::default()
        }
        .validate()
        .unwrap_err();
        assert!(error.contains("RETENTION_SECOND=forever"), "{error}");
        assert!(Retention::default().validate().is_ok());
    }

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_micros(micros).unwrap()
    }

    #[test]
    fn readings_beyond_the_horizon_or_the_margin_are_refused_and_say_why() {
        let retention = Retention {
            raw: Period::seconds(60),
            future_margin: Period::seconds(300),
            ..Retention::default()
        };
        let now = T0 + HOUR_MICROS;
        let horizons = retention.horizons(now);
        assert_eq!(horizons.raw(), Some(now - MINUTE_MICROS));
        assert!(horizons.check_time(at(now - MINUTE_MICROS)).is_ok());
        let old = horizons
            .check_time(at(now - MINUTE_MICROS - 1))
            .unwrap_err();
        assert!(
            old.contains("RETENTION_RAW=1m") && old.contains("2021-10-04T00:59:00Z"),
            "{old}"
        );
        assert!(horizons.check_time(at(now + 300 * SECOND_MICROS)).is_ok());
        let future = horizons
            .check_time(at(now + 300 * SECOND_MICROS + 1))
            .unwrap_err();
        assert!(future.contains("5m ahead"), "{future}");
        let forever = Retention::default().horizons(now);
        assert!(forever.check_time(at(T0 - 100 * DAY_MICROS)).is_ok());
        assert!(forever.check_time(at(now + 100 * DAY_MICROS)).is_ok());
    }

    #[test]
    fn windows_before_a_horizon_must_use_the_levels_still_kept() {
        let retention = Retention {
            raw: Period::parse("1d").unwrap(),
            second: Period::parse("1d").unwrap(),
            minute: Period::parse("2d").unwrap(),
            ..Retention::default()
        };
        // Now is 2021-10-10T12:00Z: raw readings kept from 10-09T12:00, minutes from 10-08T12:00.
        let now = T0 + 6 * DAY_MICROS + 12 * HOUR_MICROS;
        let horizons = retention.horizons(now);
        let check = |from: i64, to: i64| {
            horizons.check_pieces(&plan(Span::new(from, to), &SENSOR_LEVELS), &SENSOR_LEVELS)
        };
        // Recent and unaligned: fine.
        assert_eq!(check(now - HOUR_MICROS - 7, now), Ok(()));
        // Older than the raw horizon, unaligned: raw edges are gone, minutes remain.
        let beyond = check(T0 + 5 * DAY_MICROS + 7, now).unwrap_err();
        assert_eq!(beyond.level, None);
        assert_eq!(beyond.coarser, Some(Level::Minute));
        assert!(
            beyond.detail.contains("RETENTION_RAW=1d"),
            "{}",
            beyond.detail
        );
        // Minute-aligned there: fine.
        assert_eq!(check(T0 + 5 * DAY_MICROS + MINUTE_MICROS, now), Ok(()));
        // Older than the minute horizon, minute-aligned: only hours remain.
        let beyond = check(T0 + 3 * DAY_MICROS + MINUTE_MICROS, now).unwrap_err();
        assert_eq!(beyond.level, Some(Level::Minute));
        assert_eq!(beyond.coarser, Some(Level::Hour));
        assert_eq!(check(T0 + 3 * DAY_MICROS + HOUR_MICROS, now), Ok(()));
        // Over all sensors (with seconds) the same rules hold.
        let total = horizons.check_pieces(
            &plan(
                Span::new(T0 + 5 * DAY_MICROS + SECOND_MICROS, now),
                &TOTAL_LEVELS,
            ),
            &TOTAL_LEVELS,
        );
        assert_eq!(total.unwrap_err().coarser, Some(Level::Minute));
        // Nothing expires with the defaults.
        let forever = Retention::default().horizons(now);
        assert_eq!(
            forever.check_pieces(
                &plan(Span::new(T0 + 7, now), &SENSOR_LEVELS),
                &SENSOR_LEVELS
            ),
            Ok(())
        );
    }

    #[test]
    fn refused_readings_become_invalid_fields_and_lines() {
        let retention = Retention {
            raw: Period::seconds(60),
            ..Retention::default()
        };
        let now = T0 + HOUR_MICROS;
        let horizons = retention.horizons(now);
        let body = serde_json::json!([
            {"sensorID": "a", "temperature": 1, "time": "2021-10-04 00:59:30"},
            {"sensorID": "a", "temperature": 1, "time": "2021-10-04 00:58:59"},
        ]);
        let checked = Checked::from_value(&body).unwrap().within(&horizons);
        assert_eq!(checked.readings.len(), 1);
        assert_eq!(checked.invalid.len(), 1);
        assert_eq!(checked.invalid[0].index, 1);
        assert_eq!(checked.invalid[0].errors[0].field, "time");
        let lines = LinesChecked::parse(
            b"temperature,sensor=a value=1 1633309170\ntemperature,sensor=a value=1 1633309139",
            &crate::domain::line_batch::LineSchema::default(),
            crate::domain::line_batch::Precision::Seconds,
            at(now),
        )
        .unwrap()
        .within(&horizons);
        assert_eq!(lines.readings.len(), 1);
        assert_eq!(lines.invalid[0].line, 2);
        assert!(lines.invalid[0].message.starts_with("timestamp is older"));
    }
}
