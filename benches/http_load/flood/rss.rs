//! The server's resident memory over a phase: `VmRSS` of `/proc/<pid>/status` every 250 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::server::memory;

const MIB: f64 = 1024.0 * 1024.0;
pub const EVERY: Duration = Duration::from_millis(250);

/// `(seconds since the phase began, RSS MiB)` samples.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RssSeries {
    pub samples: Vec<(f64, f64)>,
}

impl RssSeries {
    pub fn min(&self) -> f64 {
        self.samples
            .iter()
            .map(|s| s.1)
            .fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.samples.iter().map(|s| s.1).fold(0.0, f64::max)
    }

    /// The largest sample of each quarter of the phase: flat memory shows no climb from the
    /// first quarter to the last.
    pub fn quarter_maxima(&self) -> [f64; 4] {
        let end = self
            .samples
            .last()
            .map_or(0.0, |s| s.0)
            .max(f64::MIN_POSITIVE);
        let mut maxima = [0.0f64; 4];
        for &(at, rss) in &self.samples {
            let quarter = ((at / end * 4.0) as usize).min(3);
            maxima[quarter] = maxima[quarter].max(rss);
        }
        maxima
    }
}

/// Samples process `pid` every [`EVERY`] until `done` is set, or `limit` has passed.
pub async fn sample(pid: u32, done: Arc<AtomicBool>, limit: Instant) -> RssSeries {
    let began = Instant::now();
    let mut series = RssSeries::default();
    let mut tick = tokio::time::interval(EVERY);
    while !done.load(Ordering::Relaxed) && Instant::now() < limit {
        tick.tick().await;
        let (_, rss) = memory(pid);
        series
            .samples
            .push((began.elapsed().as_secs_f64(), rss as f64 / MIB));
    }
    series
}
