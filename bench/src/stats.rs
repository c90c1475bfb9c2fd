//! Medians and percentiles of samples.

/// The middle value (the lower middle for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// The nearest-rank percentile `p` (0–100) of `values`; 0 when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Percentile of latencies kept as microseconds, in milliseconds.
pub fn percentile_ms(latencies_us: &mut [u32], p: f64) -> f64 {
    if latencies_us.is_empty() {
        return 0.0;
    }
    latencies_us.sort_unstable();
    let rank = ((p / 100.0) * latencies_us.len() as f64).ceil() as usize;
    latencies_us[rank.clamp(1, latencies_us.len()) - 1] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles_follow_nearest_rank() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.0);
        assert_eq!(median(&[]), 0.0);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 99.0), 99.0);
        assert_eq!(percentile(&hundred, 100.0), 100.0);
        let mut us: Vec<u32> = (1..=1000).rev().collect();
        assert_eq!(percentile_ms(&mut us, 50.0), 0.5);
        assert_eq!(percentile_ms(&mut us, 99.0), 0.99);
    }
}
