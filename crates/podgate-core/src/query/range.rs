//! Functions over a range selector (`rate`, `irate`, `deriv`, `*_over_time`, ...) and the
//! element-wise functions (`abs`, `clamp`, `round`, ...), as Prometheus computes them.

use super::ast::{Call, MatrixSel};
use super::catalog::Func;
use super::eval::{Cx, EvalError, NoData, Produced, Sink, before_history, matching, scalar};
use super::histogram_range::{self, Skip, Window};
use super::labels::{Element, Labels, Value};
use super::store::Point;
pub(crate) use crate::histogram::kahan_inc;

/// A range function over every series its selector matches.
pub(crate) fn eval<'a>(
    cx: &Cx<'a>,
    func: Func,
    m: &'a MatrixSel,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    let store = cx.store;
    let t = cx.now_ms.saturating_sub(m.vector.offset_ms);
    let start = t.saturating_sub(m.range_ms);
    let (mut matched, mut produced, mut max_points) = (0usize, 0usize, 0usize);
    let (mut short, mut mixed, mut ignored) = (0usize, 0usize, 0usize);
    for series in matching(store, &m.vector.selector) {
        // The window is left-open, right-closed: (t - range, t].
        let lo = series.points.partition_point(|p| p.t <= start);
        let hi = series.points.partition_point(|p| p.t <= t);
        let n = hi.saturating_sub(lo);
        let histograms = if series.histograms.is_empty() {
            0..0
        } else {
            let hlo = series.histograms.partition_point(|p| p.t <= start);
            hlo..series.histograms.partition_point(|p| p.t <= t).max(hlo)
        };
        let total = n + histograms.len();
        if total == 0 {
            continue;
        }
        matched += 1;
        max_points = max_points.max(total);
        if series.evicted_until_ms.is_some_and(|e| e > start) {
            return Err(EvalError::new(format!(
                "{}({}[{}]) needs more than the {} points kept per series at this scrape \
                 interval; shorten the range or raise the per-series point limit",
                func.name(),
                m.vector.selector.text,
                m.range_text,
                store.limits().max_points_per_series
            )));
        }
        let value = if histograms.is_empty() {
            let points = series.points.range(lo..hi);
            match (n >= func.min_points())
                .then(|| apply(func, points, n, start, t, m.range_ms))
                .flatten()
            {
                Some(v) => Value::Float(v),
                None => {
                    short += 1;
                    continue;
                }
            }
        } else {
            let window = Window {
                start,
                end: t,
                range_ms: m.range_ms,
            };
            match histogram_range::apply(func, series, lo..hi, histograms, window) {
                Ok(v) => v,
                Err(Skip::Short) => {
                    short += 1;
                    continue;
                }
                Err(Skip::Mixed) => {
                    mixed += 1;
                    continue;
                }
                Err(Skip::Ignored) => {
                    ignored += 1;
                    continue;
                }
            }
        };
        produced += 1;
        sink(Element {
            labels: Labels::Series {
                series,
                name: func.keeps_name(),
            },
            value,
        })?;
    }
    Ok(Produced::counted(produced, || {
        let expr = || {
            format!(
                "{}({}[{}])",
                func.name(),
                m.vector.selector.text,
                m.range_text
            )
        };
        if matched > 0 {
            // A window short of points may fill up; the other reasons are for good.
            return if short == 0 && mixed > 0 {
                NoData::MixedFloatsAndHistograms { expr: expr() }
            } else if short == 0 && ignored > 0 {
                NoData::HistogramIgnored { expr: expr() }
            } else {
                NoData::NotEnoughHistory {
                    function: func.name(),
                    range: m.range_text.to_string(),
                    points: max_points,
                }
            };
        }
        match store.scrape_at_or_before(t) {
            None => before_history(cx, &m.vector),
            // Nothing in the window because scrapes stopped succeeding: say that.
            Some(scrape) if t - scrape >= m.range_ms => NoData::ScrapeTooOld { age_ms: t - scrape },
            Some(_) => NoData::NoSeries {
                selector: m.vector.selector.text.to_string(),
                stale: 0,
            },
        }
    }))
}

/// Prometheus's `extrapolatedRate`: the change between the first and last point in the
/// window, for counters corrected for resets, extrapolated towards the window boundaries (all
/// the way when the gap is within 1.1× the average interval, else half an interval), for
/// counters never below zero; divided by the range for `rate`. `delta` is the gauge form.
fn extrapolated_rate<'p>(
    points: impl Iterator<Item = &'p Point> + Clone,
    count: usize,
    range_start_ms: i64,
    range_end_ms: i64,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> f64 {
    let mut iter = points.clone();
    let Some(first) = iter.next().copied() else {
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
        last = *p;
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

pub(crate) fn apply<'p>(
    func: Func,
    points: impl Iterator<Item = &'p Point> + Clone,
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

/// `min_over_time`/`max_over_time`: NaN loses against any number.
fn extreme<'p>(mut points: impl Iterator<Item = &'p Point>, better: fn(f64, f64) -> bool) -> f64 {
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
pub(crate) fn avg(mut values: impl Iterator<Item = f64>) -> f64 {
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
pub(crate) fn instant_value<'p>(
    points: impl Iterator<Item = &'p Point>,
    is_rate: bool,
) -> Option<f64> {
    let (mut previous, mut last) = (None::<Point>, None::<Point>);
    for p in points {
        previous = last;
        last = Some(*p);
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
fn deriv<'p>(points: impl Iterator<Item = &'p Point> + Clone) -> f64 {
    let mut iter = points.clone();
    let Some(first) = iter.next().copied() else {
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

/// Go's `math.Min`: NaN wins, unlike `f64::min`.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Go's `math.Max`: NaN wins, unlike `f64::max`.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// The element-wise functions: each element's value mapped, its metric name dropped.
pub(crate) fn elementwise<'a>(
    cx: &Cx<'a>,
    call: &'a Call,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    let arg = |i: usize| -> Result<f64, EvalError> {
        match call.args.get(i) {
            Some(e) => scalar(cx, e),
            None => Ok(f64::NAN),
        }
    };
    let (lo, hi) = match call.func {
        Func::Clamp => (arg(1)?, arg(2)?),
        Func::ClampMin => (arg(1)?, f64::INFINITY),
        Func::ClampMax => (f64::NEG_INFINITY, arg(1)?),
        _ => (f64::NEG_INFINITY, f64::INFINITY),
    };
    let to_nearest = match (call.func, call.args.get(1)) {
        (Func::Round, Some(e)) => scalar(cx, e)?,
        _ => 1.0,
    };
    let Some(input) = call.args.first() else {
        return Err(EvalError::new(format!(
            "{}() needs an argument",
            call.func.name()
        )));
    };
    // Prometheus returns nothing when the bounds cross.
    if hi < lo {
        let mut seen = 0usize;
        let inner = super::eval::vector(cx, input, &mut |_| {
            seen += 1;
            Ok(())
        })?;
        return Ok(Produced::none(if seen == 0 {
            inner.reason()
        } else {
            NoData::Filtered {
                expr: call.text.to_string(),
            }
        }));
    }
    let inverse = 1.0 / to_nearest;
    let func = call.func;
    let (mut count, mut histograms) = (0usize, 0usize);
    let inner = super::eval::vector(cx, input, &mut |el| {
        // Native histograms are skipped, as Prometheus does.
        let Value::Float(v) = el.value else {
            histograms += 1;
            return Ok(());
        };
        count += 1;
        let v = match func {
            Func::Abs => v.abs(),
            Func::Ceil => v.ceil(),
            Func::Floor => v.floor(),
            Func::Sqrt => v.sqrt(),
            Func::Exp => v.exp(),
            Func::Ln => v.ln(),
            // Ties round up, as in Prometheus.
            Func::Round => (v * inverse + 0.5).floor() / inverse,
            _ => go_max(lo, go_min(hi, v)),
        };
        sink(Element {
            labels: el.labels.without_name(),
            value: Value::Float(v),
        })
    })?;
    Ok(if count > 0 || histograms == 0 {
        Produced {
            count,
            why: inner.why,
        }
    } else {
        Produced::none(NoData::HistogramIgnored {
            expr: call.text.to_string(),
        })
    })
}
