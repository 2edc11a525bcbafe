//! Percentiles and medians.

/// The `p` quantile (nearest rank) of `v`.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// The median of `v`.
pub fn median(v: &[f64]) -> f64 {
    percentile(&mut v.to_vec(), 0.5)
}
