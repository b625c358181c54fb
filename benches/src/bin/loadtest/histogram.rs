//! Latency histograms in nanoseconds, read as microseconds.

use hdrhistogram::Histogram;

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("histogram bounds")
}

/// Quantile `q` of a histogram in nanoseconds, as microseconds.
pub(crate) fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1_000.0
}
