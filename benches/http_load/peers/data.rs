//! The readings every system receives: 1,000 sensors, every point new, realistic timestamps,
//! as our JSON and as line protocol; and the exact answers they must give back.
//!
//! Reading `k` is sensor `s{k % 1000}` at `start + (k / 1000) * interval` seconds with a
//! temperature in hundredths of a degree from -10.00 to 39.99, so a request of `n` consecutive
//! readings is what a fleet of 1,000 sensors sends: one round of readings after another.

use std::fmt::Write;

pub const SENSORS: u64 = 1_000;

/// The times the readings are spread over.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    /// Unix seconds of the first round (a whole hour).
    pub start: i64,
    /// Seconds between one sensor's readings.
    pub interval: i64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub sensor: u64,
    pub time: i64,
    pub centi: i64,
}

fn whole_hour_days_ago(days: i64) -> i64 {
    let now = crate::report::unix_time() as i64;
    (now - days * 86_400) / 3_600 * 3_600
}

impl Timeline {
    /// Ingest runs: a reading every 10 s per sensor, from 30 days ago (within every system's
    /// default retention, and never in the future).
    pub fn ingest() -> Self {
        Self {
            start: whole_hour_days_ago(30),
            interval: 10,
        }
    }

    /// The query data set: 10^6 readings, 1,000 per sensor, one every 40 minutes: 27.8 days
    /// from 32 days ago.
    pub fn queries() -> Self {
        Self {
            start: whole_hour_days_ago(32),
            interval: 2_400,
        }
    }

    pub fn reading(&self, k: u64) -> Reading {
        Reading {
            sensor: k % SENSORS,
            time: self.start + (k / SENSORS) as i64 * self.interval,
            centi: (k.wrapping_mul(2_654_435_761) % 5_000) as i64 - 1_000,
        }
    }
}

/// Hundredths as a decimal: `-3.07`, `21.40`.
fn decimal(out: &mut String, centi: i64) {
    let sign = if centi < 0 { "-" } else { "" };
    let _ = write!(out, "{sign}{}.{:02}", centi.abs() / 100, centi.abs() % 100);
}

/// RFC 3339 in UTC, as our routes take and give times.
pub fn rfc3339(time: i64) -> String {
    chrono::DateTime::from_timestamp(time, 0)
        .expect("valid time")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Readings `from..to` as our JSON (one object for one reading, an array otherwise).
pub fn json_body(timeline: &Timeline, from: u64, to: u64) -> String {
    let mut out = String::with_capacity(80 * (to - from) as usize + 2);
    if to - from > 1 {
        out.push('[');
    }
    for k in from..to {
        if k > from {
            out.push(',');
        }
        let r = timeline.reading(k);
        let _ = write!(
            out,
            r#"{{"sensorID":"s{}","time":"{}","temperature":"#,
            r.sensor,
            rfc3339(r.time)
        );
        decimal(&mut out, r.centi);
        out.push('}');
    }
    if to - from > 1 {
        out.push(']');
    }
    out
}

/// Readings `from..to` as line protocol, nanosecond timestamps:
/// `temperature,sensor=s17 value=21.40 1764590400000000000`.
pub fn line_body(timeline: &Timeline, from: u64, to: u64) -> String {
    let mut out = String::with_capacity(50 * (to - from) as usize);
    for k in from..to {
        let r = timeline.reading(k);
        let _ = write!(out, "temperature,sensor=s{} value=", r.sensor);
        decimal(&mut out, r.centi);
        let _ = writeln!(out, " {}000000000", r.time);
    }
    out
}

/// Exact count, min, max and mean (in degrees) of some readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expected {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

impl Expected {
    pub fn of(readings: impl Iterator<Item = Reading>) -> Option<Self> {
        let (mut count, mut sum, mut min, mut max) = (0u64, 0i64, i64::MAX, i64::MIN);
        for r in readings {
            count += 1;
            sum += r.centi;
            min = min.min(r.centi);
            max = max.max(r.centi);
        }
        (count > 0).then(|| Self {
            count,
            min: min as f64 / 100.0,
            max: max as f64 / 100.0,
            mean: sum as f64 / count as f64 / 100.0,
        })
    }

    /// Whether `(count, min, max, mean)` as a system answered equals this, to 10^-6 degrees.
    pub fn agrees(&self, count: u64, min: f64, max: f64, mean: f64) -> bool {
        let near = |a: f64, b: f64| (a - b).abs() <= 1e-6;
        count == self.count && near(min, self.min) && near(max, self.max) && near(mean, self.mean)
    }
}
