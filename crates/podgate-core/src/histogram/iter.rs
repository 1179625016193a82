//! Buckets with their bounds, in value order (Prometheus's `AllBucketIterator` and
//! `AllReverseBucketIterator`).

use super::bounds::bound;
use super::{Bucket, FloatHistogram};

impl FloatHistogram {
    /// Positive bucket `index` with count `count`: `(bound(i-1), bound(i)]`.
    pub(super) fn positive_bucket(&self, (index, count): (i32, f64)) -> Bucket {
        Bucket {
            lower: bound(i64::from(index) - 1, self.schema),
            upper: bound(i64::from(index), self.schema),
            count,
            index,
        }
    }

    /// Negative bucket `index`: `[-bound(i), -bound(i-1))`.
    pub(super) fn negative_bucket(&self, (index, count): (i32, f64)) -> Bucket {
        Bucket {
            lower: -bound(i64::from(index), self.schema),
            upper: -bound(i64::from(index) - 1, self.schema),
            count,
            index,
        }
    }

    /// The zero bucket `[-zero_threshold, zero_threshold]`.
    pub fn zero_bucket(&self) -> Bucket {
        Bucket {
            lower: -self.zero_threshold,
            upper: self.zero_threshold,
            count: self.zero_count,
            index: 0,
        }
    }

    /// A bucket next to the zero bucket that overlaps it ends at the zero threshold.
    fn clamp_to_zero_bucket(&self, mut b: Bucket) -> Bucket {
        if b.lower > 0.0 && b.lower < self.zero_threshold {
            b.lower = self.zero_threshold;
        }
        if b.upper < 0.0 && b.upper > -self.zero_threshold {
            b.upper = -self.zero_threshold;
        }
        b
    }

    /// Every bucket from the lowest value up: negative buckets, the zero bucket when it
    /// holds observations, positive buckets.
    pub fn buckets_ascending(&self) -> impl Iterator<Item = Bucket> + '_ {
        let negative = self
            .negative
            .iter()
            .rev()
            .map(|&b| self.clamp_to_zero_bucket(self.negative_bucket(b)));
        let positive = self
            .positive
            .iter()
            .map(|&b| self.clamp_to_zero_bucket(self.positive_bucket(b)));
        negative.chain(self.populated_zero_bucket()).chain(positive)
    }

    /// Every bucket from the highest value down.
    pub fn buckets_descending(&self) -> impl Iterator<Item = Bucket> + '_ {
        let positive = self
            .positive
            .iter()
            .rev()
            .map(|&b| self.clamp_to_zero_bucket(self.positive_bucket(b)));
        let negative = self
            .negative
            .iter()
            .map(|&b| self.clamp_to_zero_bucket(self.negative_bucket(b)));
        positive.chain(self.populated_zero_bucket()).chain(negative)
    }

    fn populated_zero_bucket(&self) -> Option<Bucket> {
        (self.zero_count > 0.0).then(|| self.zero_bucket())
    }
}
