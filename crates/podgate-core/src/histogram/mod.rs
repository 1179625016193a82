//! Native histograms: Prometheus's float histogram (`FloatHistogram`) and the arithmetic
//! PromQL applies to it, for the scrape language's `histogram_quantile`,
//! `histogram_fraction`, `histogram_count`, `histogram_sum`, `rate()` and `increase()`.
//!
//! A native histogram has exponential buckets: at schema `s` the bucket with index `i`
//! covers `(2^((i-1)/2^s), 2^(i/2^s)]` on the positive side (mirrored on the negative
//! side), plus a zero bucket `[-zero_threshold, zero_threshold]`. Buckets are kept sparse:
//! a list of `(index, count)` per side, sorted by index. Prometheus keeps spans of
//! consecutive buckets instead; a bucket absent here is a bucket of count 0 there, and every
//! function below gives the same result for both layouts.
//!
//! Pure functions, no I/O. The algorithms follow Prometheus 3.16 (`model/histogram` and
//! `promql/quantile.go`, `promql/functions.go`); `docs/native-histograms.md` explains them and
//! where podgate differs.

mod arith;
mod bounds;
mod display;
mod iter;
mod kahan;
pub mod notation;
mod quantile;
mod rate;
mod reset;
mod stats;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use bounds::{MAX_SCHEMA, MIN_SCHEMA, bucket_bound};
pub use display::ApiBucket;
pub use kahan::HistogramSum;
pub(crate) use kahan::kahan_inc;
pub use rate::{HistogramPoint, RateWindow, histogram_rate};

/// What the producer said about a counter reset before this histogram (Prometheus's
/// `CounterResetHint`). Scraped histograms are `Unknown` (or `Gauge` for gauge histograms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CounterResetHint {
    #[default]
    Unknown,
    Reset,
    NotReset,
    /// A gauge histogram: its counts may go down; never a counter reset.
    Gauge,
}

/// A native histogram with float counts (Prometheus's `FloatHistogram` with an exponential
/// schema). Integer histograms from the exposition are converted to this form.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FloatHistogram {
    /// Resolution, from [`MIN_SCHEMA`] to [`MAX_SCHEMA`].
    pub schema: i32,
    /// Width of the zero bucket: observations in `[-zero_threshold, zero_threshold]`.
    pub zero_threshold: f64,
    pub zero_count: f64,
    /// Observations in total (NaN observations count here but in no bucket).
    pub count: f64,
    pub sum: f64,
    /// Positive buckets as `(index, count)`, indexes strictly increasing.
    pub positive: Vec<(i32, f64)>,
    /// Negative buckets as `(index, count)`, indexes strictly increasing (index `i` covers
    /// `[-2^(i/2^s), -2^((i-1)/2^s))`).
    pub negative: Vec<(i32, f64)>,
    pub hint: CounterResetHint,
}

/// One bucket with its bounds, as the bucket iterators yield it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub count: f64,
    /// Index within the schema; meaningless for the zero bucket.
    pub index: i32,
}

impl FloatHistogram {
    /// `histogram_count()`: the number of observations.
    pub fn count(&self) -> f64 {
        self.count
    }

    /// `histogram_sum()`: the sum of observations.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `histogram_avg()`: sum over count (NaN for an empty histogram).
    pub fn avg(&self) -> f64 {
        self.sum / self.count
    }

    /// Number of buckets held (both sides, zero bucket excluded).
    pub fn bucket_count(&self) -> usize {
        self.positive.len() + self.negative.len()
    }
}
