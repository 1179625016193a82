//! Range functions over a window that holds native histogram points, as Prometheus 3
//! computes them (`promql/functions.go`): `rate`, `increase` and `delta` give a histogram
//! (`histogram_rate`), `irate`/`idelta` the difference of the last two, `sum_over_time` and
//! `avg_over_time` their sum and mean, `count_over_time` and `last_over_time` count and pick
//! samples of either kind; `deriv`, `min_over_time` and `max_over_time` read the floats only.
//! A window that mixes floats and histograms gives nothing where the two cannot be combined.

use std::borrow::Cow;
use std::ops::Range;

use super::catalog::Func;
use super::float_range;
use super::labels::Value;
use super::store::{FloatWindow, SeriesRef};
use crate::histogram::{
    CounterResetHint, FloatHistogram, HistogramPoint, HistogramSum, RateWindow, histogram_rate,
};

/// The window `(start, end]` a range function reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub start: i64,
    pub end: i64,
    pub range_ms: i64,
}

/// Why a series gives nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// Too few points in the window (yet).
    Short,
    /// Floats and histograms in one window, where they cannot be combined.
    Mixed,
    /// Only histograms, for a function that reads floats.
    Ignored,
}

/// `func` over the float points `floats` and the histogram points `histograms` (indexes into
/// the series' histogram points, not empty) of `series` in `window`.
pub(crate) fn apply<'a>(
    func: Func,
    series: SeriesRef<'a>,
    floats: FloatWindow<'a>,
    histograms: Range<usize>,
    window: Window,
) -> Result<Value<'a>, Skip> {
    let (nf, nh) = (floats.len(), histograms.len());
    let float_points = || floats.clone();
    let float = |f: Func| {
        float_range::apply(
            f,
            float_points(),
            nf,
            window.start,
            window.end,
            window.range_ms,
        )
        .map(Value::Float)
    };
    let hist_points = series
        .histograms()
        .get(histograms)
        .unwrap_or_default()
        .iter();
    match func {
        Func::Rate | Func::Increase | Func::Delta => {
            if nf > 0 {
                return Err(Skip::Mixed);
            }
            let points: Vec<HistogramPoint<'_>> =
                series.histogram_points(window.start, window.end).collect();
            let rate = RateWindow {
                end_ms: window.end,
                range_ms: window.range_ms,
                per_second: func == Func::Rate,
                counter: func != Func::Delta,
            };
            histogram_rate(&points, rate)
                .map(Value::owned)
                .ok_or(Skip::Short)
        }
        Func::Irate | Func::Idelta => {
            if nf + nh < 2 {
                return Err(Skip::Short);
            }
            // The last two samples, of either kind.
            let last_float = float_points().next_back().map(|p| p.t);
            let mut last_two = hist_points.rev().take(2);
            let (Some(last), before) = (last_two.next(), last_two.next()) else {
                return Err(Skip::Short);
            };
            match (before, last_float) {
                (_, Some(t)) if t > last.t => {
                    // The newest sample is a float: the one before it must be one too.
                    let second_float =
                        nf >= 2 && float_points().nth(nf - 2).is_some_and(|p| p.t > last.t);
                    if second_float {
                        float(func).ok_or(Skip::Short)
                    } else {
                        Err(Skip::Mixed)
                    }
                }
                (Some(before), t) if t.is_none_or(|t| t < before.t) => {
                    instant_difference(&before.h, before.t, &last.h, last.t, func == Func::Irate)
                        .map(Value::owned)
                        .ok_or(Skip::Short)
                }
                _ => Err(Skip::Mixed),
            }
        }
        Func::SumOverTime | Func::AvgOverTime => {
            if nf > 0 {
                return Err(Skip::Mixed);
            }
            let mut points = hist_points;
            let first = points.next().ok_or(Skip::Short)?;
            let mut sum = HistogramSum::new(first.h.clone());
            for p in points {
                if func == Func::AvgOverTime {
                    sum.add_to_mean(&p.h);
                } else {
                    sum.add(&p.h);
                }
            }
            Ok(Value::owned(if func == Func::AvgOverTime {
                sum.mean()
            } else {
                sum.sum()
            }))
        }
        Func::CountOverTime => Ok(Value::Float((nf + nh) as f64)),
        Func::LastOverTime => {
            let last = hist_points.last().ok_or(Skip::Short)?;
            match float_points().next_back() {
                Some(p) if p.t > last.t => Ok(Value::Float(p.v)),
                _ => Ok(Value::Histogram(Cow::Borrowed(&last.h))),
            }
        }
        // The functions of floats: the histograms are left out.
        _ if nf < func.min_points() => Err(Skip::Ignored),
        _ => float(func).ok_or(Skip::Short),
    }
}

/// `irate` (`per_second`) and `idelta` of two histogram samples: the last one minus the one
/// before, or for `irate` the last one alone after a counter reset; a gauge histogram.
fn instant_difference(
    before: &FloatHistogram,
    before_t: i64,
    last: &FloatHistogram,
    last_t: i64,
    per_second: bool,
) -> Option<FloatHistogram> {
    let interval = last_t - before_t;
    if interval == 0 {
        return None;
    }
    let mut h = last.clone();
    if !per_second || !last.detect_reset(before) {
        h.sub(before);
    }
    h.hint = CounterResetHint::Gauge;
    h.compact();
    if per_second {
        h.div(interval as f64 / 1000.0);
    }
    Some(h)
}
