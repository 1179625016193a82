//! Prometheus's compensated (Kahan–Neumaier) summation (`util/kahansum`), for floats and
//! for native histograms (`FloatHistogram.KahanAdd`), which `sum`, `avg`, `sum_over_time`
//! and `avg_over_time` use: a sum of histograms whose sums or counts differ by many orders
//! of magnitude (1e100 and 3.1) keeps the small ones.

use super::FloatHistogram;
use super::arith::{beyond_zero_bucket, reduce};
use super::bounds::{bound, target_index};

/// `sum + inc` and the new compensation `c`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// A running sum, or mean, of native histograms with compensated summation; the mean
/// switches to an incremental mean when the sum would overflow, as Prometheus's `avg` and
/// `avg_over_time` do.
#[derive(Debug, Clone)]
pub struct HistogramSum {
    /// The sum; the mean once `incremental`.
    value: FloatHistogram,
    /// The compensation, laid out like `value` (same schema, zero bucket and indexes).
    c: FloatHistogram,
    n: f64,
    incremental: bool,
}

impl HistogramSum {
    pub fn new(first: FloatHistogram) -> HistogramSum {
        let c = FloatHistogram {
            schema: first.schema,
            zero_threshold: first.zero_threshold,
            positive: first.positive.iter().map(|&(i, _)| (i, 0.0)).collect(),
            negative: first.negative.iter().map(|&(i, _)| (i, 0.0)).collect(),
            ..FloatHistogram::default()
        };
        HistogramSum {
            value: first,
            c,
            n: 1.0,
            incremental: false,
        }
    }

    /// Adds `h` to the sum.
    pub fn add(&mut self, h: &FloatHistogram) {
        self.n += 1.0;
        self.value.kahan_add(h, &mut self.c);
    }

    /// Adds `h` to the mean.
    pub fn add_to_mean(&mut self, h: &FloatHistogram) {
        self.n += 1.0;
        if !self.incremental {
            let (mut v, mut c) = (self.value.clone(), self.c.clone());
            v.kahan_add(h, &mut c);
            if !v.has_overflow() {
                (self.value, self.c) = (v, c);
                return;
            }
            // The sum would overflow: continue with an incremental mean.
            self.incremental = true;
            self.value.div(self.n - 1.0);
            self.c.div(self.n - 1.0);
        }
        let q = (self.n - 1.0) / self.n;
        self.value.mul(q);
        self.c.mul(q);
        let mut share = h.clone();
        share.div(self.n);
        self.value.kahan_add(&share, &mut self.c);
    }

    /// The sum of what was added.
    pub fn sum(mut self) -> FloatHistogram {
        self.value.add(&self.c);
        self.value.compact();
        self.value
    }

    /// The mean of what was added.
    pub fn mean(mut self) -> FloatHistogram {
        if !self.incremental {
            self.value.div(self.n);
            self.c.div(self.n);
        }
        self.value.add(&self.c);
        self.value.compact();
        self.value
    }
}

impl FloatHistogram {
    /// Whether a count, the sum or a bucket is infinite.
    fn has_overflow(&self) -> bool {
        [self.count, self.sum, self.zero_count]
            .into_iter()
            .chain(self.positive.iter().map(|&(_, c)| c))
            .chain(self.negative.iter().map(|&(_, c)| c))
            .any(f64::is_infinite)
    }

    /// [`FloatHistogram::add`] with compensated summation; `c` is laid out like `self` and
    /// follows its schema and zero bucket.
    fn kahan_add(&mut self, other: &FloatHistogram, c: &mut FloatHistogram) {
        self.adjust_hint(other.hint);
        let other_zero_count = self.reconcile_zero_buckets(other);
        if c.zero_threshold != self.zero_threshold {
            // The zero bucket widened: the compensation of the buckets it took moves too.
            let threshold = self.zero_threshold;
            let schema = c.schema;
            let inside = |&(i, _): &(i32, f64)| bound(i64::from(i) - 1, schema) < threshold;
            let moved: f64 = c
                .positive
                .iter()
                .chain(&c.negative)
                .filter(|b| inside(b))
                .map(|&(_, v)| v)
                .sum();
            c.zero_count += moved;
            c.positive.retain(|b| !inside(b));
            c.negative.retain(|b| !inside(b));
            c.zero_threshold = threshold;
        }
        (self.zero_count, c.zero_count) =
            kahan_inc(other_zero_count, self.zero_count, c.zero_count);
        (self.count, c.count) = kahan_inc(other.count, self.count, c.count);
        (self.sum, c.sum) = kahan_inc(other.sum, self.sum, c.sum);
        let (other_positive, other_negative);
        let (mut theirs_positive, mut theirs_negative) = (&other.positive, &other.negative);
        if other.schema < self.schema {
            let (from, to) = (self.schema, other.schema);
            (self.positive, c.positive) = kahan_reduce(&self.positive, &c.positive, from, to);
            (self.negative, c.negative) = kahan_reduce(&self.negative, &c.negative, from, to);
            (self.schema, c.schema) = (to, to);
        } else if other.schema > self.schema {
            other_positive = reduce(&other.positive, other.schema, self.schema);
            other_negative = reduce(&other.negative, other.schema, self.schema);
            theirs_positive = &other_positive;
            theirs_negative = &other_negative;
        }
        let (schema, threshold) = (self.schema, self.zero_threshold);
        kahan_add_buckets(
            &mut self.positive,
            &mut c.positive,
            theirs_positive,
            schema,
            threshold,
        );
        kahan_add_buckets(
            &mut self.negative,
            &mut c.negative,
            theirs_negative,
            schema,
            threshold,
        );
    }
}

/// Buckets as `(index, count)`.
type Buckets = Vec<(i32, f64)>;

/// Buckets `a` with their compensation `c` (same indexes) merged into schema `target`.
fn kahan_reduce(
    a: &[(i32, f64)],
    c: &[(i32, f64)],
    origin: i32,
    target: i32,
) -> (Buckets, Buckets) {
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(a.len());
    let mut out_c: Vec<(i32, f64)> = Vec::with_capacity(a.len());
    let compensation = c.iter().map(|&(_, v)| v).chain(std::iter::repeat(0.0));
    for (&(index, count), comp) in a.iter().zip(compensation) {
        let t = target_index(index, origin, target);
        match (out.last_mut(), out_c.last_mut()) {
            (Some((last, v)), Some((_, cv))) if *last == t => {
                (*v, *cv) = kahan_inc(count, *v, *cv);
                *cv += comp;
            }
            _ => {
                out.push((t, count));
                out_c.push((t, comp));
            }
        }
    }
    (out, out_c)
}

/// Adds the buckets `b` into `a` with compensation `c` (laid out like `a`); the leading
/// buckets of `b` inside the zero bucket are skipped (their count is in its zero count).
fn kahan_add_buckets(
    a: &mut Vec<(i32, f64)>,
    c: &mut Vec<(i32, f64)>,
    b: &[(i32, f64)],
    schema: i32,
    threshold: f64,
) {
    let b = beyond_zero_bucket(b, schema, threshold);
    if b.is_empty() {
        return;
    }
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let mut merged_c = Vec::with_capacity(a.len() + b.len());
    let compensation = c.iter().map(|&(_, v)| v).chain(std::iter::repeat(0.0));
    let mut x = a.iter().zip(compensation).peekable();
    let mut y = b.iter().peekable();
    loop {
        match (x.peek(), y.peek()) {
            (Some(&(&(i, v), cv)), Some(&&(j, d))) if i == j => {
                let (v, cv) = kahan_inc(d, v, cv);
                merged.push((i, v));
                merged_c.push((i, cv));
                x.next();
                y.next();
            }
            (Some(&(&(i, v), cv)), Some(&&(j, _))) if i < j => {
                merged.push((i, v));
                merged_c.push((i, cv));
                x.next();
            }
            (Some(&(&(i, v), cv)), None) => {
                merged.push((i, v));
                merged_c.push((i, cv));
                x.next();
            }
            (_, Some(&&(j, d))) => {
                merged.push((j, d));
                merged_c.push((j, 0.0));
                y.next();
            }
            (None, None) => break,
        }
    }
    *a = merged;
    *c = merged_c;
}
