//! `histogram_stddev`, `histogram_stdvar` and the equality `==` compares histograms with
//! (Prometheus's `histogramVariance` in `promql/functions.go` and `FloatHistogram.Equals`).

use super::{FloatHistogram, kahan_inc};

impl FloatHistogram {
    /// `histogram_stdvar(h)`: the variance of the observations, each bucket's observations
    /// taken at the bucket's geometric mean (0 in the zero bucket). NaN when empty.
    pub fn stdvar(&self) -> f64 {
        let mean = self.sum / self.count;
        let (mut variance, mut c) = (0.0, 0.0);
        for b in self.buckets_ascending() {
            if b.count == 0.0 {
                continue;
            }
            let value = if b.lower <= 0.0 && b.upper >= 0.0 {
                0.0
            } else if b.upper < 0.0 {
                -(b.upper * b.lower).sqrt()
            } else {
                (b.upper * b.lower).sqrt()
            };
            let delta = value - mean;
            (variance, c) = kahan_inc(b.count * delta * delta, variance, c);
        }
        (variance + c) / self.count
    }

    /// `histogram_stddev(h)`: the square root of [`FloatHistogram::stdvar`].
    pub fn stddev(&self) -> f64 {
        self.stdvar().sqrt()
    }

    /// Prometheus's `Equals`: same schema, zero bucket, count, sum (bit for bit, so NaN
    /// equals NaN) and populated buckets. Empty buckets are not compared: the sparse form
    /// does not keep them apart from absent ones.
    pub fn same_as(&self, other: &FloatHistogram) -> bool {
        let bits = |a: f64, b: f64| a.to_bits() == b.to_bits();
        let populated = |a: &[(i32, f64)], b: &[(i32, f64)]| {
            let mut a = a.iter().filter(|(_, c)| *c != 0.0);
            let mut b = b.iter().filter(|(_, c)| *c != 0.0);
            loop {
                match (a.next(), b.next()) {
                    (None, None) => return true,
                    (Some(x), Some(y)) if x.0 == y.0 && bits(x.1, y.1) => {}
                    _ => return false,
                }
            }
        };
        self.schema == other.schema
            && bits(self.count, other.count)
            && bits(self.sum, other.sum)
            && self.zero_threshold == other.zero_threshold
            && bits(self.zero_count, other.zero_count)
            && populated(&self.negative, &other.negative)
            && populated(&self.positive, &other.positive)
    }
}
