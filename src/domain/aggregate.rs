//! Exact running statistics over readings.
//!
//! The sum is kept as an `i128` of micro-degrees, so adding, merging and averaging never round:
//! merging partial aggregates in any order gives the same answer, and an aggregate kept for
//! years does not drift.

use serde::Serialize;

use super::reading::Temperature;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Aggregate {
    pub count: u64,
    /// Sum of every temperature, in micro-degrees Celsius.
    pub sum_micros: i128,
    pub min_micros: Option<i64>,
    pub max_micros: Option<i64>,
}

/// The answer of `GET /api/stats`, named as the original service named it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    #[serde(rename = "Average")]
    pub average: Option<f64>,
    #[serde(rename = "Maximum")]
    pub maximum: Option<f64>,
    #[serde(rename = "Minimum")]
    pub minimum: Option<f64>,
    #[serde(rename = "Count")]
    pub count: u64,
}

/// Encoded size: count (8) + sum (16) + min (8) + max (8).
pub const ENCODED_LEN: usize = 40;

impl Aggregate {
    pub fn of(temperatures: impl IntoIterator<Item = Temperature>) -> Self {
        let mut aggregate = Self::default();
        for t in temperatures {
            aggregate.add(t);
        }
        aggregate
    }

    pub fn add(&mut self, temperature: Temperature) {
        let t = temperature.micros();
        self.count += 1;
        self.sum_micros += i128::from(t);
        self.min_micros = Some(self.min_micros.map_or(t, |m| m.min(t)));
        self.max_micros = Some(self.max_micros.map_or(t, |m| m.max(t)));
    }

    /// Combines two aggregates of disjoint sets of readings. Associative and commutative.
    pub fn merge(&self, other: &Self) -> Self {
        let pick = |a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        Self {
            count: self.count + other.count,
            sum_micros: self.sum_micros + other.sum_micros,
            min_micros: pick(self.min_micros, other.min_micros, i64::min),
            max_micros: pick(self.max_micros, other.max_micros, i64::max),
        }
    }

    /// The mean, rounded half away from zero to the nearest micro-degree.
    pub fn average_micros(&self) -> Option<i128> {
        if self.count == 0 {
            return None;
        }
        let count = i128::from(self.count);
        let twice = 2 * self.sum_micros;
        let rounded = if twice >= 0 {
            (twice + count) / (2 * count)
        } else {
            (twice - count) / (2 * count)
        };
        Some(rounded)
    }

    pub fn stats(&self) -> Stats {
        let celsius = |micros: i64| micros as f64 / 1e6;
        Stats {
            average: self.average_micros().map(|m| m as f64 / 1e6),
            maximum: self.max_micros.map(celsius),
            minimum: self.min_micros.map(celsius),
            count: self.count,
        }
    }

    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        out[0..8].copy_from_slice(&self.count.to_be_bytes());
        out[8..24].copy_from_slice(&self.sum_micros.to_be_bytes());
        // An empty aggregate has no min/max; count == 0 says so, the bytes are then unused.
        out[24..32].copy_from_slice(&self.min_micros.unwrap_or(0).to_be_bytes());
        out[32..40].copy_from_slice(&self.max_micros.unwrap_or(0).to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; ENCODED_LEN] = bytes.try_into().ok()?;
        let count = u64::from_be_bytes(bytes[0..8].try_into().ok()?);
        let sum_micros = i128::from_be_bytes(bytes[8..24].try_into().ok()?);
        let min = i64::from_be_bytes(bytes[24..32].try_into().ok()?);
        let max = i64::from_be_bytes(bytes[32..40].try_into().ok()?);
        let present = count > 0;
        Some(Self {
            count,
            sum_micros,
            min_micros: present.then_some(min),
            max_micros: present.then_some(max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(micros: i64) -> Temperature {
        Temperature::from_micros(micros).unwrap()
    }

    fn agg(values: &[i64]) -> Aggregate {
        Aggregate::of(values.iter().copied().map(t))
    }

    #[test]
    fn empty_aggregate_has_count_zero_and_no_values() {
        let stats = Aggregate::default().stats();
        assert_eq!(stats.count, 0);
        assert_eq!(
            (stats.average, stats.minimum, stats.maximum),
            (None, None, None)
        );
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Average": null, "Maximum": null, "Minimum": null, "Count": 0})
        );
    }

    #[test]
    fn stats_are_exact_decimals() {
        // 0.1 + 0.2 is 0.30000000000000004 in f64; here it is exactly 0.3.
        let stats = agg(&[100_000, 200_000]).stats();
        assert_eq!(stats.average, Some(0.15));
        assert_eq!(stats.minimum, Some(0.1));
        assert_eq!(stats.maximum, Some(0.2));
        assert_eq!(stats.count, 2);
        assert_eq!(agg(&[100_000, 200_000, 0]).sum_micros, 300_000);
    }

    #[test]
    fn average_rounds_half_away_from_zero() {
        assert_eq!(agg(&[1, 2]).average_micros(), Some(2)); // 1.5 -> 2
        assert_eq!(agg(&[-1, -2]).average_micros(), Some(-2)); // -1.5 -> -2
        assert_eq!(agg(&[1, 1, 2]).average_micros(), Some(1)); // 1.33 -> 1
    }

    #[test]
    fn merge_is_associative_commutative_and_equals_the_whole() {
        let parts = [
            agg(&[5_000_000, -1_000_000]),
            agg(&[]),
            agg(&[12_500_000]),
            agg(&[-273_150_000, 42, 7]),
        ];
        let whole = agg(&[5_000_000, -1_000_000, 12_500_000, -273_150_000, 42, 7]);
        let left = parts
            .iter()
            .fold(Aggregate::default(), |acc, p| acc.merge(p));
        let right = parts
            .iter()
            .rev()
            .fold(Aggregate::default(), |acc, p| p.merge(&acc));
        let grouped = parts[0].merge(&parts[1]).merge(&parts[2].merge(&parts[3]));
        assert_eq!(left, whole);
        assert_eq!(right, whole);
        assert_eq!(grouped, whole);
        assert_eq!(parts[2].merge(&parts[0]), parts[0].merge(&parts[2]));
    }

    #[test]
    fn merge_with_empty_is_identity() {
        let a = agg(&[3, 9]);
        assert_eq!(a.merge(&Aggregate::default()), a);
        assert_eq!(Aggregate::default().merge(&a), a);
    }

    #[test]
    fn a_million_readings_sum_without_drift() {
        let mut a = Aggregate::default();
        for _ in 0..1_000_000 {
            a.add(t(100_000)); // 0.1 °C
        }
        assert_eq!(a.sum_micros, 100_000_000_000);
        assert_eq!(a.stats().average, Some(0.1));
    }

    #[test]
    fn encoding_round_trips() {
        for a in [
            agg(&[]),
            agg(&[-273_150_000]),
            agg(&[1, i64::from(i32::MAX), -5]),
        ] {
            assert_eq!(Aggregate::decode(&a.encode()), Some(a));
        }
        assert_eq!(Aggregate::decode(&[0u8; 3]), None);
    }
}
