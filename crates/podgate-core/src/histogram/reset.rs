//! Counter reset detection between two samples of a counter histogram
//! (Prometheus's `FloatHistogram.DetectReset`).

use super::arith::{beyond_zero_bucket, reduce};
use super::{CounterResetHint, FloatHistogram};

impl FloatHistogram {
    /// True when this histogram cannot follow `previous` without a counter reset: a count
    /// went down (total, zero bucket or any bucket), a populated bucket disappeared, the
    /// resolution went up or the zero bucket shrank. The producer's hint decides first.
    pub fn detect_reset(&self, previous: &FloatHistogram) -> bool {
        match self.hint {
            CounterResetHint::Reset => return true,
            CounterResetHint::NotReset => return false,
            CounterResetHint::Unknown | CounterResetHint::Gauge => {}
        }
        if self.count < previous.count
            || self.schema > previous.schema
            || self.zero_threshold < previous.zero_threshold
        {
            return true;
        }
        let (previous_zero_count, threshold) =
            previous.zero_count_for_larger_threshold(self.zero_threshold);
        if threshold != self.zero_threshold {
            // The zero threshold cuts a populated bucket of the previous histogram.
            return true;
        }
        if self.zero_count < previous_zero_count {
            return true;
        }
        let side = |current: &[(i32, f64)], before: &[(i32, f64)]| {
            let before = reduce(before, previous.schema, self.schema);
            bucket_went_down(
                beyond_zero_bucket(current, self.schema, self.zero_threshold),
                beyond_zero_bucket(&before, self.schema, self.zero_threshold),
            )
        };
        side(&self.positive, &previous.positive) || side(&self.negative, &previous.negative)
    }
}

/// Whether a bucket of `before` holds more than the same bucket of `current` (an absent
/// bucket holds nothing).
fn bucket_went_down(current: &[(i32, f64)], before: &[(i32, f64)]) -> bool {
    let mut current = current.iter().peekable();
    for &(index, count) in before {
        while current.next_if(|&&(i, _)| i < index).is_some() {}
        match current.peek() {
            Some(&&(i, c)) if i == index => {
                if c < count {
                    return true;
                }
            }
            _ => {
                if count != 0.0 {
                    return true;
                }
            }
        }
    }
    false
}
