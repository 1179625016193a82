//! `histogram_quantile` and `histogram_fraction` over a native histogram, as Prometheus 3
//! computes them (`promql/quantile.go`, exponential schemas).

use super::{Bucket, FloatHistogram};

impl FloatHistogram {
    /// `histogram_quantile(q, h)`: the value below which a fraction `q` of the observations
    /// fall.
    ///
    /// Within an exponential bucket the observations are assumed to fill a
    /// higher-resolution histogram evenly, so the result is interpolated on a logarithmic
    /// scale (the median of the bucket (1,2] is √2). In the zero bucket the interpolation is
    /// linear, with 0 as its lower (upper) bound when the histogram has only positive
    /// (negative) buckets. `q < 0` gives -Inf, `q > 1` +Inf, `q` NaN or an empty histogram
    /// NaN. With NaN observations (sum NaN) a rank past every bucket gives NaN.
    pub fn quantile(&self, q: f64) -> f64 {
        if q < 0.0 {
            return f64::NEG_INFINITY;
        }
        if q > 1.0 {
            return f64::INFINITY;
        }
        if self.count == 0.0 || q.is_nan() {
            return f64::NAN;
        }
        // NaN observations are in the count but in no bucket: rank from the bottom then.
        let forward = self.sum.is_nan() || q < 0.5;
        let mut rank = if forward {
            q * self.count
        } else {
            (1.0 - q) * self.count
        };
        let buckets: Box<dyn Iterator<Item = Bucket>> = if forward {
            Box::new(self.buckets_ascending())
        } else {
            Box::new(self.buckets_descending())
        };
        let mut bucket = Bucket::default();
        let mut count = 0.0;
        for b in buckets {
            bucket = b;
            if b.count == 0.0 {
                continue;
            }
            count += b.count;
            if count >= rank {
                break;
            }
        }
        if bucket.lower < 0.0 && bucket.upper > 0.0 {
            if self.negative.is_empty() && !self.positive.is_empty() {
                bucket.lower = 0.0;
            } else if self.positive.is_empty() && !self.negative.is_empty() {
                bucket.upper = 0.0;
            }
        }
        // Rounding could make the running count exceed the total.
        count = count.min(self.count);
        if count < rank {
            if self.sum.is_nan() {
                return f64::NAN;
            }
            return bucket.upper;
        }
        if forward {
            rank -= count - bucket.count;
        } else {
            rank = count - rank;
        }
        let fraction = rank / bucket.count;
        if bucket.lower <= 0.0 && bucket.upper >= 0.0 {
            return bucket.lower + (bucket.upper - bucket.lower) * fraction;
        }
        let log_lower = bucket.lower.abs().log2();
        let log_upper = bucket.upper.abs().log2();
        if bucket.lower > 0.0 {
            (log_lower + (log_upper - log_lower) * fraction).exp2()
        } else {
            -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2()
        }
    }

    /// `histogram_fraction(lower, upper, h)`: the fraction of observations between `lower`
    /// and `upper`, interpolated like [`FloatHistogram::quantile`]. NaN for an empty
    /// histogram or a NaN bound, 0 when `lower >= upper`. NaN observations are in no bucket,
    /// so `histogram_fraction(-Inf, +Inf, h)` may be below 1.
    pub fn fraction(&self, lower: f64, upper: f64) -> f64 {
        if self.count == 0.0 || lower.is_nan() || upper.is_nan() {
            return f64::NAN;
        }
        if lower >= upper {
            return 0.0;
        }
        let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
        let (mut lower_set, mut upper_set) = (false, false);
        let only_positive = self.negative.is_empty() && !self.positive.is_empty();
        let only_negative = self.positive.is_empty() && !self.negative.is_empty();
        for mut b in self.buckets_ascending() {
            let zero_bucket = b.lower <= 0.0 && b.upper >= 0.0;
            if zero_bucket {
                if only_positive {
                    b.lower = 0.0;
                } else if only_negative {
                    b.upper = 0.0;
                }
            }
            // Linear within the zero bucket, logarithmic within exponential buckets.
            let below = |v: f64| rank + b.count * fraction_below(&b, v, zero_bucket);
            if !lower_set && b.lower >= lower {
                lower_rank = rank;
                lower_set = true;
            }
            if !upper_set && b.lower >= upper {
                upper_rank = rank;
                upper_set = true;
            }
            if lower_set && upper_set {
                break;
            }
            if !lower_set && b.lower < lower && b.upper > lower {
                lower_rank = below(lower);
                lower_set = true;
            }
            if !upper_set && b.lower < upper && b.upper > upper {
                upper_rank = below(upper);
                upper_set = true;
            }
            if lower_set && upper_set {
                break;
            }
            rank += b.count;
        }
        let count = if self.sum.is_nan() {
            // Only the observations in buckets: NaN observations are in none.
            self.buckets_ascending().map(|b| b.count).sum::<f64>()
        } else {
            self.count
        };
        if !lower_set || lower_rank > count {
            lower_rank = count;
        }
        if !upper_set || upper_rank > count {
            upper_rank = count;
        }
        (upper_rank - lower_rank) / self.count
    }
}

/// The share of bucket `b`'s width at or below `v` (`lower < v < upper`), linear or on a
/// logarithmic scale (Prometheus's `Bucket.FractionBelow`).
fn fraction_below(b: &Bucket, v: f64, linear: bool) -> f64 {
    if linear {
        return (v - b.lower) / (b.upper - b.lower);
    }
    let log_lower = b.lower.abs().log2();
    let log_upper = b.upper.abs().log2();
    let log_v = v.abs().log2();
    if v > 0.0 {
        (log_v - log_lower) / (log_upper - log_lower)
    } else {
        1.0 - (log_v - log_upper) / (log_lower - log_upper)
    }
}
