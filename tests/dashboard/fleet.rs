//! A realistic day of a small fleet, for the README's screenshot: five sensors reporting
//! every two minutes with a daily swing (warmest mid-afternoon in the browser's zone) and some
//! noise, one of them silent for three hours.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, DurationRound, Timelike, Utc};
use serde_json::Value;

/// In the order the dashboard sorts them by id.
pub const SENSORS: [&str; 5] = [
    "cold-store",
    "greenhouse-1",
    "greenhouse-2",
    "office",
    "roof",
];

/// The sensor with an outage.
pub const WITH_OUTAGE: &str = "roof";

pub struct Fleet {
    pub readings: Vec<Value>,
    times: Vec<(&'static str, DateTime<Utc>)>,
}

impl Fleet {
    /// Readings from 23 h 48 min before `now` up to `now`, one every two minutes.
    pub fn last_day(now: DateTime<Utc>) -> Self {
        let end = now
            .duration_trunc(Duration::minutes(2))
            .expect("a whole minute");
        // Deterministic noise (a linear congruential generator), so every run is alike.
        let mut seed: u64 = 20211004;
        let mut noise = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        let mut readings = Vec::new();
        let mut times = Vec::new();
        for k in (0..715).rev() {
            let time = end - Duration::minutes(2 * k);
            let local = time + Duration::minutes(super::browser::UTC_OFFSET_MINUTES);
            let hour = f64::from(local.hour()) + f64::from(local.minute()) / 60.0;
            // Warmest mid-afternoon, coldest before dawn.
            let day = (std::f64::consts::TAU * (hour - 9.0) / 24.0).sin();
            for (sensor, mean, swing, jitter) in [
                ("cold-store", 3.5, 0.4, 0.6),
                ("greenhouse-1", 22.0, 5.0, 1.2),
                ("greenhouse-2", 20.5, 4.0, 1.6),
                ("office", 21.0, 1.2, 0.4),
                ("roof", 4.0, 6.0, 1.8),
            ] {
                let silent = sensor == WITH_OUTAGE && (300..390).contains(&k);
                let value = mean + swing * day + jitter * noise();
                if silent {
                    continue;
                }
                let temperature = (value * 100.0).round() / 100.0;
                readings.push(super::reading(sensor, time, temperature));
                times.push((sensor, time));
            }
        }
        Self { readings, times }
    }

    pub fn count_of(&self, sensor: &str) -> usize {
        self.times.iter().filter(|(s, _)| *s == sensor).count()
    }

    /// How many `minutes`-wide buckets (aligned to the epoch) hold readings of `sensor`, and
    /// in how many unbroken runs.
    pub fn buckets_of(&self, sensor: &str, minutes: i64) -> (usize, usize) {
        let buckets: BTreeSet<i64> = self
            .times
            .iter()
            .filter(|(s, _)| *s == sensor)
            .map(|(_, time)| time.timestamp().div_euclid(minutes * 60))
            .collect();
        let runs = buckets
            .iter()
            .filter(|&&bucket| !buckets.contains(&(bucket - 1)))
            .count();
        (buckets.len(), runs)
    }
}
