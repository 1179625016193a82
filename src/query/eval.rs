//! Evaluation of a compiled scrape query against one pod's [`SeriesStore`].
//!
//! `rate`/`increase` follow Prometheus's `extrapolatedRate` and `histogram_quantile` its
//! `bucketQuantile`, so a number computed here matches what Prometheus would compute from the
//! same samples at the same times.

use std::fmt;

use super::parse::{AggOp, QueryExpr, RangeFunc, Selector, VectorExpr};
use super::store::{Point, Series, SeriesStore};
use crate::expr::format_value;

/// The result of a query: one number, or no data and why.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Number(f64),
    NoData(NoData),
}

impl QueryValue {
    /// The number, or NaN for no data.
    pub fn as_f64(&self) -> f64 {
        match self {
            QueryValue::Number(v) => *v,
            QueryValue::NoData(_) => f64::NAN,
        }
    }
}

impl fmt::Display for QueryValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryValue::Number(v) => f.write_str(&format_value(*v)),
            QueryValue::NoData(reason) => write!(f, "no data: {reason}"),
        }
    }
}

/// Why a query has no value.
#[derive(Debug, Clone, PartialEq)]
pub enum NoData {
    /// The pod has not been scraped successfully yet.
    NoScrape,
    /// The latest scrape is older than the lookback window.
    ScrapeTooOld { age_ms: i64 },
    /// No series matched. `stale` counts matching series absent from the latest scrape.
    NoSeries { selector: String, stale: usize },
    /// Matching series exist but none has the two points in the window a rate needs.
    NotEnoughHistory {
        function: &'static str,
        range: String,
        points: usize,
    },
    /// The buckets have no `le="+Inf"` bucket.
    NoInfBucket,
    /// Fewer than two distinct bucket bounds.
    TooFewBuckets,
    /// The histogram counted no observations (in the window, for rate/increase).
    NoObservations,
}

impl fmt::Display for NoData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoData::NoScrape => f.write_str("no successful scrape yet"),
            NoData::ScrapeTooOld { age_ms } => write!(
                f,
                "the latest successful scrape is {} old",
                format_duration(*age_ms)
            ),
            NoData::NoSeries { selector, stale } => {
                write!(f, "no series matched {selector}")?;
                match stale {
                    0 => Ok(()),
                    1 => f.write_str(" (1 series went stale: absent from the latest scrape)"),
                    n => write!(f, " ({n} series went stale: absent from the latest scrape)"),
                }
            }
            NoData::NotEnoughHistory {
                function,
                range,
                points,
            } => write!(
                f,
                "not enough history for {function} over {range} ({points} point{})",
                if *points == 1 { "" } else { "s" }
            ),
            NoData::NoInfBucket => f.write_str("histogram has no le=\"+Inf\" bucket"),
            NoData::TooFewBuckets => f.write_str("histogram has fewer than 2 buckets"),
            NoData::NoObservations => f.write_str("histogram has no observations"),
        }
    }
}

/// A query that cannot yield a number for reasons the user must fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
}

fn format_duration(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let mut secs = ms / 1000;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// What a vector expression produced, besides the values handed to the callback.
#[derive(Debug, Default)]
struct VectorStats {
    /// Series the selector matched (live ones for an instant selector; ones with a point in
    /// the window for a range function).
    matched: usize,
    /// Values produced.
    produced: usize,
    /// Most points any matched series had in the window.
    max_points: usize,
    /// Matching series absent from the latest scrape (instant selectors).
    stale: usize,
}

/// Evaluates `expr` at `now_ms`.
pub(crate) fn eval(
    expr: &QueryExpr,
    store: &SeriesStore,
    now_ms: i64,
) -> Result<QueryValue, EvalError> {
    let vector = expr.vector();
    let Some(scrape) = store.scrape_at_or_before(now_ms) else {
        return Ok(QueryValue::NoData(NoData::NoScrape));
    };
    if let VectorExpr::Instant(_) = vector {
        let age_ms = now_ms - scrape;
        if age_ms > store.limits().lookback_ms {
            return Ok(QueryValue::NoData(NoData::ScrapeTooOld { age_ms }));
        }
    }
    match expr {
        QueryExpr::Vector(vector) => {
            let mut value = f64::NAN;
            let stats = for_each(vector, store, now_ms, scrape, &mut |_, v| value = v)?;
            if stats.matched > 1 {
                return Err(EvalError {
                    message: format!(
                        "{} matched {} series, but a scrape variable must be one number; \
                         aggregate them, e.g. sum({}) or max({})",
                        describe(vector),
                        stats.matched,
                        describe(vector),
                        describe(vector)
                    ),
                });
            }
            Ok(match no_data(vector, &stats) {
                Some(reason) => QueryValue::NoData(reason),
                None => QueryValue::Number(value),
            })
        }
        QueryExpr::Aggregate { op, inner } => {
            let mut agg = Aggregator::new(*op);
            let stats = for_each(inner, store, now_ms, scrape, &mut |_, v| agg.add(v))?;
            Ok(match no_data(inner, &stats) {
                Some(reason) => QueryValue::NoData(reason),
                None => QueryValue::Number(agg.result()),
            })
        }
        QueryExpr::HistogramQuantile { q, inner } => {
            let mut buckets: Vec<Bucket> = Vec::new();
            let mut bad: Option<EvalError> = None;
            let stats = for_each(inner, store, now_ms, scrape, &mut |series, count| {
                if bad.is_some() {
                    return;
                }
                match bucket_bound(series) {
                    Ok(upper) => buckets.push(Bucket { upper, count }),
                    Err(e) => bad = Some(e),
                }
            })?;
            if let Some(e) = bad {
                return Err(e);
            }
            if let Some(reason) = no_data(inner, &stats) {
                return Ok(QueryValue::NoData(reason));
            }
            Ok(bucket_quantile(*q, &mut buckets))
        }
    }
}

fn describe(vector: &VectorExpr) -> String {
    match vector {
        VectorExpr::Instant(selector) => selector.text.to_string(),
        VectorExpr::Range {
            func,
            selector,
            range_text,
            ..
        } => format!("{}({}[{}])", func.name(), selector.text, range_text),
    }
}

fn no_data(vector: &VectorExpr, stats: &VectorStats) -> Option<NoData> {
    if stats.produced > 0 {
        return None;
    }
    if stats.matched == 0 {
        return Some(NoData::NoSeries {
            selector: vector.selector().text.to_string(),
            stale: stats.stale,
        });
    }
    match vector {
        VectorExpr::Range {
            func, range_text, ..
        } => Some(NoData::NotEnoughHistory {
            function: func.name(),
            range: range_text.to_string(),
            points: stats.max_points,
        }),
        VectorExpr::Instant(selector) => Some(NoData::NoSeries {
            selector: selector.text.to_string(),
            stale: stats.stale,
        }),
    }
}

/// Calls `f` with every (series, value) the vector expression yields.
fn for_each(
    vector: &VectorExpr,
    store: &SeriesStore,
    now_ms: i64,
    scrape_ms: i64,
    f: &mut dyn FnMut(&Series, f64),
) -> Result<VectorStats, EvalError> {
    let mut stats = VectorStats::default();
    match vector {
        VectorExpr::Instant(selector) => {
            for series in matching(store, selector) {
                // Prometheus staleness: a series absent from the latest scrape is gone.
                match point_at(series, scrape_ms) {
                    Some(p) => {
                        stats.matched += 1;
                        stats.produced += 1;
                        f(series, p.v);
                    }
                    None => stats.stale += 1,
                }
            }
        }
        VectorExpr::Range {
            func,
            selector,
            range_ms,
            range_text,
        } => {
            let start = now_ms.saturating_sub(*range_ms);
            for series in matching(store, selector) {
                // The window is left-open, right-closed: (now - range, now].
                let lo = series.points.partition_point(|p| p.t <= start);
                let hi = series.points.partition_point(|p| p.t <= now_ms);
                let n = hi.saturating_sub(lo);
                if n == 0 {
                    continue;
                }
                stats.matched += 1;
                stats.max_points = stats.max_points.max(n);
                if series.evicted_until_ms.is_some_and(|t| t > start) {
                    return Err(EvalError {
                        message: format!(
                            "{}({}[{range_text}]) needs more than the {} points kept per series \
                             at this scrape interval; shorten the range or raise the per-series \
                             point limit",
                            func.name(),
                            selector.text,
                            store.limits().max_points_per_series
                        ),
                    });
                }
                if n < 2 {
                    continue;
                }
                let value = extrapolated_rate(
                    series.points.range(lo..hi),
                    n,
                    start,
                    now_ms,
                    *range_ms,
                    *func == RangeFunc::Rate,
                );
                stats.produced += 1;
                f(series, value);
            }
        }
    }
    Ok(stats)
}

fn matching<'s>(
    store: &'s SeriesStore,
    selector: &'s Selector,
) -> impl Iterator<Item = &'s Series> {
    store.series().iter().filter(move |s| s.matches(selector))
}

fn point_at(series: &Series, t: i64) -> Option<&Point> {
    // The latest scrape is almost always the last point; search otherwise.
    match series.points.back() {
        Some(p) if p.t == t => Some(p),
        _ => {
            let i = series.points.partition_point(|p| p.t < t);
            series.points.get(i).filter(|p| p.t == t)
        }
    }
}

/// Prometheus's `extrapolatedRate` for float counters: the increase between the first and
/// last point in the window, corrected for counter resets, extrapolated towards the window
/// boundaries (all the way when the gap is within 1.1× the average interval, else half an
/// interval), never extrapolating below zero; divided by the range for `rate`.
fn extrapolated_rate<'p>(
    points: impl Iterator<Item = &'p Point> + Clone,
    count: usize,
    range_start_ms: i64,
    range_end_ms: i64,
    range_ms: i64,
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
        if p.v < last.v {
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
    if result > 0.0 && first.v >= 0.0 {
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

/// Aggregation as Prometheus does it: Kahan-compensated sums, NaN-skipping min/max.
struct Aggregator {
    op: AggOp,
    sum: f64,
    compensation: f64,
    count: usize,
    extreme: f64,
}

impl Aggregator {
    fn new(op: AggOp) -> Aggregator {
        Aggregator {
            op,
            sum: 0.0,
            compensation: 0.0,
            count: 0,
            extreme: f64::NAN,
        }
    }

    fn add(&mut self, v: f64) {
        self.count += 1;
        match self.op {
            AggOp::Sum | AggOp::Avg => {
                let t = self.sum + v;
                if t.is_infinite() {
                    self.compensation = 0.0;
                } else if self.sum.abs() >= v.abs() {
                    self.compensation += (self.sum - t) + v;
                } else {
                    self.compensation += (v - t) + self.sum;
                }
                self.sum = t;
            }
            AggOp::Min => {
                if self.extreme > v || self.extreme.is_nan() {
                    self.extreme = v;
                }
            }
            AggOp::Max => {
                if self.extreme < v || self.extreme.is_nan() {
                    self.extreme = v;
                }
            }
            AggOp::Count => {}
        }
    }

    fn result(&self) -> f64 {
        match self.op {
            AggOp::Sum => self.sum + self.compensation,
            AggOp::Avg => (self.sum + self.compensation) / self.count as f64,
            AggOp::Min | AggOp::Max => self.extreme,
            AggOp::Count => self.count as f64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub upper: f64,
    pub count: f64,
}

fn bucket_bound(series: &Series) -> Result<f64, EvalError> {
    let le = series.label("le");
    if le.is_empty() {
        return Err(EvalError {
            message: format!(
                "histogram_quantile needs bucket series with an `le` label, but {} has none; \
                 select the `_bucket` series",
                series.describe()
            ),
        });
    }
    parse_bound(le).ok_or_else(|| EvalError {
        message: format!(
            "bucket series {} has an `le` label that is not a number",
            series.describe()
        ),
    })
}

/// Parses a bucket bound as Prometheus does (`+Inf`, `Inf`, `1e-3`, `0.25`).
fn parse_bound(le: &str) -> Option<f64> {
    let lower = le.to_ascii_lowercase();
    match lower.trim_start_matches('+') {
        "inf" => Some(f64::INFINITY),
        _ if lower == "-inf" => Some(f64::NEG_INFINITY),
        _ => le.parse::<f64>().ok(),
    }
}

/// Prometheus's `bucketQuantile`: buckets are sorted by upper bound and buckets with the same
/// bound summed (the implicit `sum by (le)`); the +Inf bucket is required; counts are made
/// monotonic; the quantile is interpolated linearly inside its bucket, with 0 as the lower
/// bound of the first bucket when its upper bound is positive; a quantile in the +Inf bucket
/// yields the highest finite bound.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> QueryValue {
    if q.is_nan() {
        return QueryValue::Number(f64::NAN);
    }
    if q < 0.0 {
        return QueryValue::Number(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return QueryValue::Number(f64::INFINITY);
    }
    buckets.sort_by(|a, b| a.upper.total_cmp(&b.upper));
    if !buckets.last().is_some_and(|b| b.upper == f64::INFINITY) {
        return QueryValue::NoData(NoData::NoInfBucket);
    }
    // Sum buckets with the same bound.
    buckets.dedup_by(|later, kept| {
        if later.upper == kept.upper {
            kept.count += later.count;
            true
        } else {
            false
        }
    });
    // Tiny floating-point dips between neighbours are treated as equal counts.
    let mut prev = buckets.first().map_or(0.0, |b| b.count);
    for b in buckets.iter_mut().skip(1) {
        let delta = (b.count - prev).abs();
        if delta == 0.0 {
            continue;
        }
        if delta / b.count <= 1e-12 {
            b.count = prev;
        } else {
            prev = b.count;
        }
    }
    // Force monotonic counts (the envelope), as inconsistent inputs otherwise break the search.
    let mut max = buckets.first().map_or(0.0, |b| b.count);
    for b in buckets.iter_mut().skip(1) {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
    if buckets.len() < 2 {
        return QueryValue::NoData(NoData::TooFewBuckets);
    }
    let observations = buckets.last().map_or(0.0, |b| b.count);
    if observations == 0.0 {
        return QueryValue::NoData(NoData::NoObservations);
    }
    let rank = q * observations;
    // First bucket (among all but +Inf) whose cumulative count reaches the rank.
    let searchable = buckets.len() - 1;
    let b = buckets
        .get(..searchable)
        .map_or(0, |s| s.partition_point(|bucket| bucket.count < rank));
    if b == searchable {
        return QueryValue::Number(buckets.get(searchable - 1).map_or(f64::NAN, |x| x.upper));
    }
    let (Some(bucket), previous) = (
        buckets.get(b),
        b.checked_sub(1).and_then(|i| buckets.get(i)),
    ) else {
        return QueryValue::Number(f64::NAN);
    };
    if b == 0 && bucket.upper <= 0.0 {
        return QueryValue::Number(bucket.upper);
    }
    let (start, mut count, mut rank) = (0.0, bucket.count, rank);
    let start = match previous {
        Some(prev) => {
            count -= prev.count;
            rank -= prev.count;
            prev.upper
        }
        None => start,
    };
    QueryValue::Number(start + (bucket.upper - start) * (rank / count))
}
