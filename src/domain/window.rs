//! Time windows and series: how `[from, to)` is cut into whole rollup buckets plus raw edges,
//! and how the answers for those pieces are put back together, exactly.
//!
//! A window is planned coarsest level first: the whole buckets of the coarsest level that fit
//! inside it are one [`Piece::Rollup`] (a range of bucket starts, read in one range query);
//! what is left on each side is planned the same way with the next finer level; what is left
//! below the finest level is a [`Piece::Raw`] range, answered from the readings. With levels
//! minute, hour and day that is at most 5 rollup ranges and 2 raw ranges each shorter than a
//! minute, whatever the window holds. The pieces are disjoint and cover the window exactly,
//! and [`Aggregate`]s merge exactly, so the answer equals a recomputation over the readings.
//!
//! A series is one bucket per `step`, aligned to the epoch like the rollup levels. The buckets
//! wholly inside the window are one rollup range of the coarsest level dividing the step (the
//! rows are summed into their step bucket); the first and last bucket, when the window clips
//! them, are planned as windows of their own. An empty bucket is listed with count 0.

use std::fmt;

use super::aggregate::Aggregate;
use super::rollup::{DAY_MICROS, HOUR_MICROS, Level, MINUTE_MICROS, align_down, align_up};

/// Every instant a reading can have: from 0001-01-01T00:00:00Z to 10000-01-01T00:00:00Z
/// (exclusive). An open window bound is this span's end.
pub const ALL_TIME: Span = Span {
    from: -62_135_596_800_000_000,
    to: 253_402_300_800_000_000,
};

/// Most buckets one series answer may hold.
pub const MAX_BUCKETS: usize = 10_000;

/// A series step: the widths a series can be asked for, each a whole number of minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    name: &'static str,
    micros: i64,
}

/// Every accepted step, finest first.
pub const STEPS: [Step; 6] = [
    Step::new("1m", MINUTE_MICROS),
    Step::new("5m", 5 * MINUTE_MICROS),
    Step::new("15m", 15 * MINUTE_MICROS),
    Step::new("1h", HOUR_MICROS),
    Step::new("6h", 6 * HOUR_MICROS),
    Step::new("1d", DAY_MICROS),
];

impl Step {
    const fn new(name: &'static str, micros: i64) -> Self {
        Self { name, micros }
    }

    /// One of [`STEPS`] by name (`1m`, `5m`, `15m`, `1h`, `6h`, `1d`).
    pub fn parse(text: &str) -> Option<Self> {
        STEPS.into_iter().find(|step| step.name == text)
    }

    /// The accepted names, for error messages.
    pub fn names() -> Vec<&'static str> {
        STEPS.iter().map(|step| step.name).collect()
    }

    pub fn name(self) -> &'static str {
        self.name
    }

    pub fn micros(self) -> i64 {
        self.micros
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A half-open span of instants, `from <= t < to`, in microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: i64,
    pub to: i64,
}

impl Span {
    pub fn new(from: i64, to: i64) -> Self {
        Self { from, to }
    }

    pub fn is_empty(self) -> bool {
        self.from >= self.to
    }

    pub fn contains(self, micros: i64) -> bool {
        self.from <= micros && micros < self.to
    }
}

/// One part of a planned window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// The whole buckets of `level` whose starts lie in `span` (both ends aligned to it).
    Rollup { level: Level, span: Span },
    /// The readings in `span`, which is shorter than two buckets of the finest level (it holds
    /// no whole one).
    Raw { span: Span },
}

/// Cuts `span` into whole buckets of the coarsest usable level and raw edges. `levels` must be
/// sorted finest first and nest (each width a multiple of the previous one).
pub fn plan(span: Span, levels: &[Level]) -> Vec<Piece> {
    let mut pieces = Vec::with_capacity(2 * levels.len() + 1);
    plan_into(span, levels, &mut pieces);
    pieces
}

fn plan_into(span: Span, levels: &[Level], pieces: &mut Vec<Piece>) {
    if span.is_empty() {
        return;
    }
    let Some((&coarsest, finer)) = levels.split_last() else {
        pieces.push(Piece::Raw { span });
        return;
    };
    let width = coarsest.micros();
    let (inner_from, inner_to) = (align_up(span.from, width), align_down(span.to, width));
    if inner_from < inner_to {
        plan_into(Span::new(span.from, inner_from), finer, pieces);
        pieces.push(Piece::Rollup {
            level: coarsest,
            span: Span::new(inner_from, inner_to),
        });
        plan_into(Span::new(inner_to, span.to), finer, pieces);
    } else {
        plan_into(span, finer, pieces);
    }
}

/// Why a series cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeriesError {
    /// `from` is not before `to`.
    EmptyWindow,
    /// The answer would hold this many buckets, more than [`MAX_BUCKETS`].
    TooManyBuckets(u64),
}

/// A planned series: `buckets` buckets of `step` from `first`, and the pieces that fill them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesPlan {
    pub step: Step,
    pub window: Span,
    /// Start of the first bucket (`window.from` aligned down to the step).
    pub first: i64,
    pub buckets: usize,
    pub pieces: Vec<Piece>,
}

impl SeriesPlan {
    pub fn new(window: Span, step: Step, levels: &[Level]) -> Result<Self, SeriesError> {
        if window.is_empty() {
            return Err(SeriesError::EmptyWindow);
        }
        let width = step.micros();
        let first = align_down(window.from, width);
        let end = align_up(window.to, width);
        let count = u64::try_from((i128::from(end) - i128::from(first)) / i128::from(width))
            .unwrap_or(u64::MAX);
        if count > MAX_BUCKETS as u64 {
            return Err(SeriesError::TooManyBuckets(count));
        }
        let inner = Span::new(align_up(window.from, width), align_down(window.to, width));
        let mut pieces = Vec::new();
        // The clipped first bucket (the whole window, when it lies inside one bucket).
        plan_into(
            Span::new(window.from, inner.from.min(window.to)),
            levels,
            &mut pieces,
        );
        if !inner.is_empty() {
            // Aligned to the step, so to every level dividing it: one rollup range.
            let dividing: Vec<Level> = levels
                .iter()
                .copied()
                .filter(|level| width % level.micros() == 0)
                .collect();
            plan_into(inner, &dividing, &mut pieces);
        }
        // The clipped last bucket.
        plan_into(
            Span::new(inner.to.max(inner.from), window.to),
            levels,
            &mut pieces,
        );
        Ok(Self {
            step,
            window,
            first,
            buckets: usize::try_from(count).unwrap_or(MAX_BUCKETS),
            pieces,
        })
    }

    /// Start of bucket `index`.
    pub fn bucket_start(&self, index: usize) -> i64 {
        self.first + self.step.micros() * index as i64
    }

    /// An empty answer to fill with [`Buckets::add`].
    pub fn empty(&self) -> Buckets {
        Buckets {
            first: self.first,
            width: self.step.micros(),
            aggregates: vec![Aggregate::default(); self.buckets],
        }
    }
}

/// Exact aggregates of consecutive buckets, filled piece by piece in any order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buckets {
    first: i64,
    width: i64,
    aggregates: Vec<Aggregate>,
}

impl Buckets {
    /// Adds the aggregate of readings at or after `at` that all fall in `at`'s bucket: a rollup
    /// row (`at` its bucket start) or a raw piece (`at` its start). Outside the series: ignored.
    pub fn add(&mut self, at: i64, aggregate: &Aggregate) {
        let offset = i128::from(align_down(at, self.width)) - i128::from(self.first);
        if offset < 0 {
            return;
        }
        let index = usize::try_from(offset / i128::from(self.width)).unwrap_or(usize::MAX);
        if let Some(slot) = self.aggregates.get_mut(index) {
            *slot = slot.merge(aggregate);
        }
    }

    pub fn aggregates(&self) -> &[Aggregate] {
        &self.aggregates
    }

    pub fn into_aggregates(self) -> Vec<Aggregate> {
        self.aggregates
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::domain::Temperature;
    use crate::domain::rollup::{SECOND_MICROS, SENSOR_LEVELS, TOTAL_LEVELS};

    const T0: i64 = 1_633_305_600_000_000; // 2021-10-04T00:00:00Z

    fn agg_of(readings: &[(i64, i64)], span: Span) -> Aggregate {
        Aggregate::of(
            readings
                .iter()
                .filter(|(t, _)| span.contains(*t))
                .map(|(_, v)| Temperature::from_micros(*v).unwrap()),
        )
    }

    /// Rollups computed the obvious way: every reading added to its bucket at every level.
    fn rollups(readings: &[(i64, i64)], levels: &[Level]) -> BTreeMap<(Level, i64), Aggregate> {
        let mut table = BTreeMap::new();
        for &(t, v) in readings {
            for &level in levels {
                table
                    .entry((level, level.bucket_of(t)))
                    .or_insert_with(Aggregate::default)
                    .add(Temperature::from_micros(v).unwrap());
            }
        }
        table
    }

    /// Answers every piece from the rollups and readings, as a backend would.
    fn answer(
        pieces: &[Piece],
        readings: &[(i64, i64)],
        table: &BTreeMap<(Level, i64), Aggregate>,
        mut sink: impl FnMut(i64, &Aggregate),
    ) {
        for piece in pieces {
            match *piece {
                Piece::Rollup { level, span } => {
                    for ((_, start), aggregate) in table.range((level, span.from)..(level, span.to))
                    {
                        sink(*start, aggregate);
                    }
                }
                Piece::Raw { span } => sink(span.from, &agg_of(readings, span)),
            }
        }
    }

    fn covers_exactly(pieces: &[Piece], window: Span, finest: Level) {
        let mut at = window.from;
        for piece in pieces {
            let span = match *piece {
                Piece::Rollup { level, span } => {
                    assert_eq!(span.from % level.micros(), 0, "{piece:?}");
                    assert_eq!(span.to % level.micros(), 0, "{piece:?}");
                    span
                }
                Piece::Raw { span } => {
                    assert!(
                        span.to - span.from < 2 * finest.micros(),
                        "a raw piece is shorter than two finest buckets: {piece:?}"
                    );
                    span
                }
            };
            assert!(!span.is_empty());
            assert_eq!(span.from, at, "pieces are contiguous and in order");
            at = span.to;
        }
        if !window.is_empty() {
            assert_eq!(at, window.to);
        }
    }

    #[test]
    fn an_aligned_day_is_one_rollup_and_unaligned_edges_are_raw() {
        let day = Span::new(T0, T0 + DAY_MICROS);
        assert_eq!(
            plan(day, &SENSOR_LEVELS),
            [Piece::Rollup {
                level: Level::Day,
                span: day
            }]
        );
        let window = Span::new(T0 + 90 * SECOND_MICROS + 1, T0 + 2 * HOUR_MICROS + 30);
        let pieces = plan(window, &SENSOR_LEVELS);
        assert_eq!(
            pieces,
            [
                Piece::Raw {
                    span: Span::new(window.from, T0 + 2 * MINUTE_MICROS)
                },
                Piece::Rollup {
                    level: Level::Minute,
                    span: Span::new(T0 + 2 * MINUTE_MICROS, T0 + HOUR_MICROS)
                },
                Piece::Rollup {
                    level: Level::Hour,
                    span: Span::new(T0 + HOUR_MICROS, T0 + 2 * HOUR_MICROS)
                },
                Piece::Raw {
                    span: Span::new(T0 + 2 * HOUR_MICROS, window.to)
                },
            ]
        );
        assert!(plan(Span::new(T0, T0), &SENSOR_LEVELS).is_empty());
    }

    #[test]
    fn steps_parse_by_name_only() {
        assert_eq!(Step::parse("1h").map(Step::micros), Some(HOUR_MICROS));
        assert_eq!(Step::parse("15m").map(Step::name), Some("15m"));
        for bad in ["", "1H", "2h", "60m", "1", "1 h"] {
            assert_eq!(Step::parse(bad), None, "{bad}");
        }
        assert_eq!(Step::names(), ["1m", "5m", "15m", "1h", "6h", "1d"]);
    }

    #[test]
    fn series_count_and_limits() {
        let step = Step::parse("1h").unwrap();
        let plan = SeriesPlan::new(
            Span::new(T0 + 1, T0 + 30 * DAY_MICROS - 1),
            step,
            &SENSOR_LEVELS,
        )
        .unwrap();
        assert_eq!(plan.buckets, 720);
        assert_eq!(plan.first, T0);
        assert_eq!(
            SeriesPlan::new(Span::new(T0, T0), step, &SENSOR_LEVELS),
            Err(SeriesError::EmptyWindow)
        );
        let minute = Step::parse("1m").unwrap();
        let ok = Span::new(T0, T0 + MAX_BUCKETS as i64 * MINUTE_MICROS);
        assert_eq!(
            SeriesPlan::new(ok, minute, &SENSOR_LEVELS).unwrap().buckets,
            MAX_BUCKETS
        );
        let over = Span::new(T0, ok.to + 1);
        assert_eq!(
            SeriesPlan::new(over, minute, &SENSOR_LEVELS),
            Err(SeriesError::TooManyBuckets(MAX_BUCKETS as u64 + 1))
        );
        // The whole range of timestamps does not overflow the count.
        assert_eq!(ALL_TIME.from % DAY_MICROS, 0, "open bounds are day-aligned");
        assert_eq!(ALL_TIME.to % DAY_MICROS, 0);
        assert!(matches!(
            SeriesPlan::new(ALL_TIME, minute, &SENSOR_LEVELS),
            Err(SeriesError::TooManyBuckets(_))
        ));
    }

    /// Readings over a few days, clustered so that buckets hold several and some repeat times.
    fn readings_strategy() -> impl Strategy<Value = Vec<(i64, i64)>> {
        let time = prop_oneof![
            0..4 * DAY_MICROS,
            (0..300i64).prop_map(|s| s * SECOND_MICROS),
            (0..100i64).prop_map(|m| HOUR_MICROS + m * MINUTE_MICROS),
        ];
        prop::collection::vec((time, -273_150_000..100_000_000i64), 0..200)
            .prop_map(|v| v.into_iter().map(|(t, x)| (T0 + t, x)).collect())
    }

    fn bound_strategy() -> impl Strategy<Value = i64> {
        prop_oneof![
            (-DAY_MICROS..5 * DAY_MICROS),
            (0..6 * 24i64).prop_map(|h| h * HOUR_MICROS),
            (0..400i64).prop_map(|s| s * SECOND_MICROS),
        ]
        .prop_map(|t| T0 + t)
    }

    proptest! {
        #[test]
        fn windows_equal_a_recomputation(
            readings in readings_strategy(),
            a in bound_strategy(),
            b in bound_strategy(),
            total in any::<bool>(),
        ) {
            let levels: &[Level] = if total { &TOTAL_LEVELS } else { &SENSOR_LEVELS };
            let window = Span::new(a.min(b), a.max(b));
            let pieces = plan(window, levels);
            covers_exactly(&pieces, window, levels[0]);
            prop_assert!(pieces.len() <= 2 * levels.len() + 1);
            let raw = pieces.iter().filter(|p| matches!(p, Piece::Raw { .. })).count();
            prop_assert!(raw <= 2);
            let table = rollups(&readings, levels);
            let mut merged = Aggregate::default();
            answer(&pieces, &readings, &table, |_, aggregate| merged = merged.merge(aggregate));
            prop_assert_eq!(merged, agg_of(&readings, window));
        }

        #[test]
        fn series_buckets_equal_a_recomputation(
            readings in readings_strategy(),
            a in bound_strategy(),
            b in bound_strategy(),
            step in prop::sample::select(STEPS.to_vec()),
            total in any::<bool>(),
        ) {
            let levels: &[Level] = if total { &TOTAL_LEVELS } else { &SENSOR_LEVELS };
            let window = Span::new(a.min(b), a.max(b));
            prop_assume!(!window.is_empty());
            // At most 6 days at 1m: always within the bucket limit.
            let plan = SeriesPlan::new(window, step, levels).unwrap();
            covers_exactly(&plan.pieces, window, levels[0]);
            let table = rollups(&readings, levels);
            let mut buckets = plan.empty();
            answer(&plan.pieces, &readings, &table, |at, aggregate| buckets.add(at, aggregate));
            for (index, aggregate) in buckets.aggregates().iter().enumerate() {
                let start = plan.bucket_start(index);
                let clipped = Span::new(
                    start.max(window.from),
                    (start + step.micros()).min(window.to),
                );
                prop_assert!(!clipped.is_empty());
                prop_assert_eq!(*aggregate, agg_of(&readings, clipped), "bucket {}", index);
            }
        }
    }
}
