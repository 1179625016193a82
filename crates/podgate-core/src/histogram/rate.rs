//! `rate()`, `increase()` and `delta()` over native histogram samples, as Prometheus 3
//! computes them (`extrapolatedRate` and `histogramRate` in `promql/functions.go`).

use super::{CounterResetHint, FloatHistogram};

/// One stored sample of a histogram series.
#[derive(Debug, Clone, Copy)]
pub struct HistogramPoint<'a> {
    /// Milliseconds since the epoch.
    pub t: i64,
    pub h: &'a FloatHistogram,
}

/// The window a range function covers: `(end_ms - range_ms, end_ms]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    pub end_ms: i64,
    pub range_ms: i64,
    /// `rate()` divides by the range in seconds; `increase()` and `delta()` do not.
    pub per_second: bool,
    /// `rate()`/`increase()` treat the histogram as a counter (resets add the previous
    /// sample back); `delta()` treats it as a gauge.
    pub counter: bool,
}

/// The rate (or increase, or delta) of the histogram samples `points` (oldest first, all
/// inside `window`), extrapolated to the window's edges by the rule of the float `rate()`:
/// to an edge when the first/last sample is within 110 % of the average spacing of it,
/// else half a spacing; for counters never past the point where the count would be zero.
/// `None` with fewer than two samples. The result is a gauge histogram at the lowest
/// schema among the samples used.
pub fn histogram_rate(points: &[HistogramPoint<'_>], window: RateWindow) -> Option<FloatHistogram> {
    let (first, last) = match points {
        [first, .., last] => (*first, *last),
        _ => return None,
    };
    let mut result = difference(points, window.counter)?;
    let range_start = window.end_ms - window.range_ms;
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    let mut to_end = (window.end_ms - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let average_spacing = sampled / (points.len() - 1) as f64;
    let threshold = average_spacing * 1.1;
    if to_start >= threshold {
        to_start = average_spacing / 2.0;
    }
    if window.counter {
        // A counter is not extrapolated below zero.
        let mut to_zero = to_start;
        if result.count > 0.0 && first.h.count >= 0.0 {
            to_zero = sampled * (first.h.count / result.count);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = average_spacing / 2.0;
    }
    let mut factor = 1.0;
    if sampled != 0.0 {
        factor = (sampled + to_start + to_end) / sampled;
    }
    if window.per_second {
        factor /= window.range_ms as f64 / 1000.0;
    }
    result.mul(factor);
    Some(result)
}

/// Last minus first, with every counter reset adding back the sample before it
/// (Prometheus's `histogramRate`).
fn difference(points: &[HistogramPoint<'_>], counter: bool) -> Option<FloatHistogram> {
    let (first, second, last) = match points {
        [first, second, .., last] => (*first, *second, *last),
        [first, last] => (*first, *last, *last),
        _ => return None,
    };
    // A reset between the first two samples: the first one's layout does not matter.
    let empty;
    let mut previous = first.h;
    if counter && second.h.detect_reset(first.h) {
        empty = FloatHistogram {
            schema: second.h.schema,
            ..FloatHistogram::default()
        };
        previous = &empty;
    }
    let mut min_schema = last.h.schema.min(previous.schema);
    if counter {
        for p in points.get(1..points.len() - 1).unwrap_or_default() {
            min_schema = min_schema.min(p.h.schema);
        }
    }
    let mut h = last.h.copy_to_schema(min_schema);
    h.sub(previous);
    if counter {
        for p in points.get(1..).unwrap_or_default() {
            if p.h.detect_reset(previous) {
                h.add(previous);
            }
            previous = p.h;
        }
    }
    h.hint = CounterResetHint::Gauge;
    h.compact();
    Some(h)
}
