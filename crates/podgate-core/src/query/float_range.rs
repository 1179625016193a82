//! Range functions over a window of float points (`rate`, `irate`, `deriv`, `*_over_time`,
//! ...), as Prometheus computes them (`promql/functions.go`).

use super::catalog::Func;
use super::store::Point;
use crate::histogram::kahan_inc;

/// `func` over the `n` float points `points` of the window `(start, end]`; `None` where the
/// function gives nothing (too few points, or not a range function).
pub(crate) fn apply(
    func: Func,
    points: impl Iterator<Item = Point> + Clone,
    n: usize,
    start: i64,
    end: i64,
    range_ms: i64,
) -> Option<f64> {
    Some(match func {
        Func::Rate => extrapolated_rate(points, n, start, end, range_ms, true, true),
        Func::Increase => extrapolated_rate(points, n, start, end, range_ms, true, false),
        Func::Delta => extrapolated_rate(points, n, start, end, range_ms, false, false),
        Func::Irate => return instant_value(points, true),
        Func::Idelta => return instant_value(points, false),
        Func::Deriv => deriv(points),
        Func::AvgOverTime => avg(points.map(|p| p.v)),
        Func::SumOverTime => {
            let (sum, c) = points.fold((0.0, 0.0), |(s, c), p| kahan_inc(p.v, s, c));
            if sum.is_infinite() { sum } else { sum + c }
        }
        Func::MinOverTime => extreme(points, |cur, best| cur < best),
        Func::MaxOverTime => extreme(points, |cur, best| cur > best),
        Func::CountOverTime => n as f64,
        Func::LastOverTime => points.last()?.v,
        _ => return None,
    })
}

/// Prometheus's `extrapolatedRate`: the change between the first and last point in the
/// window, for counters corrected for resets, extrapolated towards the window boundaries (all
/// the way when the gap is within 1.1× the average interval, else half an interval), for
/// counters never below zero; divided by the range for `rate`. `delta` is the gauge form.
fn extrapolated_rate(
    points: impl Iterator<Item = Point> + Clone,
    count: usize,
    range_start_ms: i64,
    range_end_ms: i64,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> f64 {
    let mut iter = points.clone();
    let Some(first) = iter.next() else {
        return f64::NAN;
    };
    let mut last = first;
    // A drop in value is a counter reset: the counter restarted from zero, so everything it
    // had counted before the reset is added back.
    let mut resets = 0.0;
    for p in iter {
        if is_counter && p.v < last.v {
            resets += last.v;
        }
        last = p;
    }
    let mut result = last.v - first.v + resets;

    let mut to_start = (first.t - range_start_ms) as f64 / 1000.0;
    let mut to_end = (range_end_ms - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let average = sampled / (count - 1) as f64;
    let threshold = average * 1.1;
    if to_start >= threshold {
        to_start = average / 2.0;
    }
    // Counters cannot go negative: do not extrapolate past the point where it would be zero.
    if is_counter && result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = average / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    result *= factor;
    result
}

/// `min_over_time`/`max_over_time`: NaN loses against any number.
fn extreme(mut points: impl Iterator<Item = Point>, better: fn(f64, f64) -> bool) -> f64 {
    let mut best = points.next().map_or(f64::NAN, |p| p.v);
    for p in points {
        if better(p.v, best) || best.is_nan() {
            best = p.v;
        }
    }
    best
}

/// Prometheus's mean: a compensated sum divided at the end, switching to an incremental mean
/// when the sum would overflow.
fn avg(mut values: impl Iterator<Item = f64>) -> f64 {
    let Some(first) = values.next() else {
        return f64::NAN;
    };
    let (mut sum, mut count, mut mean, mut c) = (first, 1.0, 0.0, 0.0);
    let mut incremental = false;
    for v in values {
        count += 1.0;
        if !incremental {
            let (new_sum, new_c) = kahan_inc(v, sum, c);
            if !new_sum.is_infinite() {
                (sum, c) = (new_sum, new_c);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

/// `irate` (`is_rate`) and `idelta`: from the last two points.
fn instant_value(points: impl Iterator<Item = Point>, is_rate: bool) -> Option<f64> {
    let (mut previous, mut last) = (None::<Point>, None::<Point>);
    for p in points {
        previous = last;
        last = Some(p);
    }
    let (previous, last) = (previous?, last?);
    let interval = last.t - previous.t;
    if interval == 0 {
        return None;
    }
    // A counter reset: the last value is the increase since.
    let mut result = if is_rate && last.v < previous.v {
        last.v
    } else {
        last.v - previous.v
    };
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// `deriv`: the slope of the least-squares line, times relative to the first point.
fn deriv(points: impl Iterator<Item = Point> + Clone) -> f64 {
    let mut iter = points.clone();
    let Some(first) = iter.next() else {
        return f64::NAN;
    };
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let mut constant = true;
    for p in points {
        if p.v != first.v {
            constant = false;
        }
        n += 1.0;
        let x = (p.t - first.t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if constant {
        return if first.v.is_infinite() { f64::NAN } else { 0.0 };
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    cov / var
}
