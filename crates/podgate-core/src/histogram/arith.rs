//! Adding, subtracting and scaling histograms, with the schema and zero-bucket
//! reconciliation Prometheus applies (`FloatHistogram.Add`/`Sub`/`Mul`/`CopyToSchema`).

use super::bounds::{bound, target_index};
use super::{CounterResetHint, FloatHistogram};

/// Bounds the loops that widen zero buckets: each pass moves a threshold up to a bucket
/// boundary, so a valid histogram settles in a few; a pathological one must not spin.
const MAX_RECONCILE_PASSES: usize = 64;

impl FloatHistogram {
    /// A copy at `target` schema, buckets merged, when `target` is below this histogram's
    /// schema; otherwise a plain copy.
    pub fn copy_to_schema(&self, target: i32) -> FloatHistogram {
        let mut h = self.clone();
        if target < self.schema {
            h.positive = reduce(&self.positive, self.schema, target);
            h.negative = reduce(&self.negative, self.schema, target);
            h.schema = target;
        }
        h
    }

    /// Scales every count and the sum by `factor` (a negative factor makes a gauge).
    pub fn mul(&mut self, factor: f64) {
        self.zero_count *= factor;
        self.count *= factor;
        self.sum *= factor;
        for (_, c) in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            *c *= factor;
        }
        if factor < 0.0 {
            self.hint = CounterResetHint::Gauge;
        }
    }

    /// Divides every count and the sum by `divisor`; dividing by 0 drops the buckets.
    pub fn div(&mut self, divisor: f64) {
        self.zero_count /= divisor;
        self.count /= divisor;
        self.sum /= divisor;
        if divisor == 0.0 {
            self.positive.clear();
            self.negative.clear();
            return;
        }
        for (_, c) in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            *c /= divisor;
        }
        if divisor < 0.0 {
            self.hint = CounterResetHint::Gauge;
        }
    }

    /// Adds `other` into this histogram: the lower schema and the wider zero bucket win.
    pub fn add(&mut self, other: &FloatHistogram) {
        self.combine(other, 1.0);
    }

    /// Subtracts `other` from this histogram (counts may go negative), reconciling schema
    /// and zero bucket as [`FloatHistogram::add`] does.
    pub fn sub(&mut self, other: &FloatHistogram) {
        self.combine(other, -1.0);
    }

    /// Drops buckets whose count is 0 (Prometheus's `Compact(0)`).
    pub fn compact(&mut self) {
        self.positive.retain(|&(_, c)| c != 0.0);
        self.negative.retain(|&(_, c)| c != 0.0);
    }

    fn combine(&mut self, other: &FloatHistogram, sign: f64) {
        self.adjust_hint(other.hint);
        let other_zero_count = self.reconcile_zero_buckets(other);
        self.zero_count += sign * other_zero_count;
        self.count += sign * other.count;
        self.sum += sign * other.sum;
        let (other_positive, other_negative);
        let (mut theirs_positive, mut theirs_negative) = (&other.positive, &other.negative);
        if other.schema < self.schema {
            self.positive = reduce(&self.positive, self.schema, other.schema);
            self.negative = reduce(&self.negative, self.schema, other.schema);
            self.schema = other.schema;
        } else if other.schema > self.schema {
            other_positive = reduce(&other.positive, other.schema, self.schema);
            other_negative = reduce(&other.negative, other.schema, self.schema);
            theirs_positive = &other_positive;
            theirs_negative = &other_negative;
        }
        let (schema, threshold) = (self.schema, self.zero_threshold);
        add_buckets(&mut self.positive, theirs_positive, schema, threshold, sign);
        add_buckets(&mut self.negative, theirs_negative, schema, threshold, sign);
    }

    /// Prometheus's `adjustCounterReset`: a gauge stays a gauge, conflicting hints become
    /// unknown.
    pub(super) fn adjust_hint(&mut self, other: CounterResetHint) {
        use CounterResetHint::*;
        self.hint = match (self.hint, other) {
            (a, b) if a == b => a,
            (Gauge, _) | (_, Gauge) => Gauge,
            _ => Unknown,
        };
    }

    /// What the zero count would be with the larger (or equal) `threshold`, and the
    /// threshold itself, moved up to a bucket boundary when it falls inside a populated
    /// bucket.
    pub(super) fn zero_count_for_larger_threshold(&self, mut threshold: f64) -> (f64, f64) {
        if threshold == self.zero_threshold {
            return (self.zero_count, threshold);
        }
        for _ in 0..MAX_RECONCILE_PASSES {
            let mut zero_count = self.zero_count;
            for &p in &self.positive {
                let b = self.positive_bucket(p);
                if b.lower >= threshold {
                    break;
                }
                zero_count += b.count;
                if b.upper > threshold {
                    if b.count != 0.0 {
                        threshold = b.upper;
                    }
                    break;
                }
            }
            let mut again = false;
            for &n in &self.negative {
                let b = self.negative_bucket(n);
                if b.upper <= -threshold {
                    break;
                }
                zero_count += b.count;
                if b.lower < -threshold {
                    if b.count != 0.0 {
                        // The positive side must be redone with the wider threshold.
                        threshold = -b.lower;
                        again = true;
                    }
                    break;
                }
            }
            if !again {
                return (zero_count, threshold);
            }
        }
        (self.zero_count, threshold)
    }

    /// Removes the buckets inside the zero bucket (their counts are already in it).
    fn trim_buckets_in_zero_bucket(&mut self) {
        let threshold = self.zero_threshold;
        let schema = self.schema;
        self.positive
            .retain(|&(i, _)| bound(i64::from(i) - 1, schema) >= threshold);
        self.negative
            .retain(|&(i, _)| -bound(i64::from(i) - 1, schema) <= -threshold);
    }

    /// Widens the zero bucket of this histogram, or of `other` (in the returned count only),
    /// until both have the same threshold, never inside a populated bucket. Returns the zero
    /// count `other` would have.
    pub(super) fn reconcile_zero_buckets(&mut self, other: &FloatHistogram) -> f64 {
        let mut other_zero_count = other.zero_count;
        let mut other_threshold = other.zero_threshold;
        for _ in 0..MAX_RECONCILE_PASSES {
            if other_threshold == self.zero_threshold
                || other_threshold.is_nan()
                || self.zero_threshold.is_nan()
            {
                break;
            }
            if self.zero_threshold > other_threshold {
                (other_zero_count, other_threshold) =
                    other.zero_count_for_larger_threshold(self.zero_threshold);
            }
            if other_threshold > self.zero_threshold {
                (self.zero_count, self.zero_threshold) =
                    self.zero_count_for_larger_threshold(other_threshold);
                self.trim_buckets_in_zero_bucket();
            }
        }
        other_zero_count
    }
}

/// `buckets` (at `origin` schema) merged into the buckets of `target` schema.
pub(super) fn reduce(buckets: &[(i32, f64)], origin: i32, target: i32) -> Vec<(i32, f64)> {
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(buckets.len());
    for &(index, count) in buckets {
        let t = target_index(index, origin, target);
        match out.last_mut() {
            Some((last, c)) if *last == t => *c += count,
            _ => out.push((t, count)),
        }
    }
    out
}

/// The buckets of `b` after its leading ones that end at or below `threshold`: those are
/// inside the zero bucket, whose count already holds them.
pub(super) fn beyond_zero_bucket(b: &[(i32, f64)], schema: i32, threshold: f64) -> &[(i32, f64)] {
    let skip = b
        .iter()
        .take_while(|&&(i, _)| bound(i64::from(i), schema) <= threshold)
        .count();
    b.get(skip..).unwrap_or_default()
}

/// Adds `sign ×` the buckets of `b` into `a` (both sorted, same schema); the buckets of `b`
/// inside the zero bucket are skipped.
fn add_buckets(a: &mut Vec<(i32, f64)>, b: &[(i32, f64)], schema: i32, threshold: f64, sign: f64) {
    let b = beyond_zero_bucket(b, schema, threshold);
    if b.is_empty() {
        return;
    }
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut x, mut y) = (a.iter().peekable(), b.iter().peekable());
    loop {
        match (x.peek(), y.peek()) {
            (Some(&&(i, c)), Some(&&(j, d))) => {
                if i == j {
                    merged.push((i, c + sign * d));
                    x.next();
                    y.next();
                } else if i < j {
                    merged.push((i, c));
                    x.next();
                } else {
                    merged.push((j, sign * d));
                    y.next();
                }
            }
            (Some(&&p), None) => {
                merged.push(p);
                x.next();
            }
            (None, Some(&&(j, d))) => {
                merged.push((j, sign * d));
                y.next();
            }
            (None, None) => break,
        }
    }
    *a = merged;
}
