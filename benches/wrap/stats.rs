//! Summaries of the samples: nearest-rank percentiles and the mean, and the units they are
//! reported in.
//!
//! Nearest rank (rather than interpolation) keeps every reported figure a time that was
//! actually measured.

use std::time::Duration;

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub struct Stats {
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
}

impl Stats {
    pub fn of(samples: &[f64]) -> Stats {
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let pct = |p: f64| -> f64 {
            if v.is_empty() {
                return f64::NAN;
            }
            // Nearest rank.
            let rank = (p * v.len() as f64).ceil() as usize;
            v[rank.clamp(1, v.len()) - 1]
        };
        let mean = if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        };
        Stats {
            median: pct(0.5),
            p90: pct(0.9),
            p99: pct(0.99),
            mean,
        }
    }

    /// The statistics of per-mode samples, `[direct, wrapped]`.
    pub fn per_mode(samples: &[Vec<f64>; 2]) -> [Stats; 2] {
        [Stats::of(&samples[0]), Stats::of(&samples[1])]
    }
}

/// The median of a few whole numbers, the lower one of the middle two for an even count.
pub fn lower_median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied()
}
