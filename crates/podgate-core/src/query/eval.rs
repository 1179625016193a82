//! Evaluation of a compiled scrape query against one pod's [`SeriesStore`]: the tree walk,
//! and the outcome (one number, no data and why, or an error).
//!
//! Vectors are streamed element by element to their consumer wherever PromQL allows it
//! (selectors, range functions, element-wise functions and operations with a number,
//! aggregations into one group), so the common queries evaluate without allocating; only
//! grouping and vector-vector matching collect their input. Functions follow Prometheus's
//! code, so a number computed here matches what Prometheus computes from the same samples at
//! the same times.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use super::aggregate;
use super::ast::{BinOp, Call, Expr, Type, VectorSel};
use super::binary;
use super::catalog::Func;
use super::histogram;
use super::labels::{Element, Labels, Value};
use super::range;
use super::selector::Selector;
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
    /// An offset reaches back before the pod's first scrape.
    NoHistoryYet { offset: String },
    /// Both sides of a vector operation had series, but none matched the other side.
    NoMatch { expr: String },
    /// A comparison, `unless` or `clamp` removed every series.
    Filtered { expr: String },
    /// `scalar(...)` needs exactly one series.
    NotOneSeries { expr: String, count: usize },
    /// A function or aggregation that reads floats found only native histograms (which
    /// Prometheus skips).
    HistogramIgnored { expr: String },
    /// An operator that does not apply to a native histogram (`h + 1`, `h > 0.5`) found
    /// only such pairs.
    HistogramOperand { expr: String },
    /// A histogram function found only float samples.
    NotNativeHistogram { expr: String },
    /// Floats and native histograms where they cannot be combined: one aggregation group,
    /// one range window.
    MixedFloatsAndHistograms { expr: String },
    /// A native histogram and classic buckets with the same labels, which
    /// `histogram_quantile` and `histogram_fraction` leave out, as Prometheus does.
    NativeAndClassic { expr: String, labels: String },
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
            NoData::NoHistoryYet { offset } => {
                write!(f, "no scrape from {offset} ago yet (offset {offset})")
            }
            NoData::NoMatch { expr } => write!(
                f,
                "no series on one side of {expr} matched a series on the other side \
                 (compare their labels, or use on (...) / ignoring (...))"
            ),
            NoData::Filtered { expr } => write!(f, "{expr} filtered out every series"),
            NoData::NotOneSeries { expr, count } => {
                write!(f, "{expr} needs exactly one series, found {count}")
            }
            NoData::HistogramIgnored { expr } => write!(
                f,
                "{expr} reads float samples, but found only native histograms; read them with \
                 histogram_quantile, histogram_count, histogram_sum, histogram_fraction or \
                 histogram_avg"
            ),
            NoData::HistogramOperand { expr } => write!(
                f,
                "{expr} does not apply to native histograms (they take * and / by a number, \
                 and +, -, == and != with another histogram); compare a number taken from \
                 them, e.g. histogram_quantile(0.9, x) > 0.5"
            ),
            NoData::NotNativeHistogram { expr } => write!(
                f,
                "{expr} reads native histograms, but found only float samples; for a classic \
                 histogram use its _count and _sum series, or histogram_quantile over its \
                 _bucket series"
            ),
            NoData::MixedFloatsAndHistograms { expr } => write!(
                f,
                "{expr} mixes float samples and native histograms, which cannot be combined; \
                 select one kind with matchers"
            ),
            NoData::NativeAndClassic { expr, labels } => write!(
                f,
                "{expr}: {labels} is both a native histogram and classic buckets, so neither \
                 is used; select one of them"
            ),
        }
    }
}

/// A query that cannot yield a number for reasons the user must fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
}

pub(crate) fn format_duration(ms: i64) -> String {
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

impl EvalError {
    pub(crate) fn new(message: impl Into<String>) -> EvalError {
        EvalError {
            message: message.into(),
        }
    }
}

/// Receives the elements of a vector as they are produced.
pub(crate) type Sink<'s, 'a> = &'s mut dyn FnMut(Element<'a>) -> Result<(), EvalError>;

/// What a vector expression produced besides its elements: how many, and why none when none.
#[derive(Debug)]
pub(crate) struct Produced {
    pub count: usize,
    pub why: Option<NoData>,
}

impl Produced {
    pub fn some(count: usize) -> Produced {
        Produced { count, why: None }
    }

    pub fn none(why: NoData) -> Produced {
        Produced {
            count: 0,
            why: Some(why),
        }
    }

    /// `count` elements; when none, `why()` says why.
    pub fn counted(count: usize, why: impl FnOnce() -> NoData) -> Produced {
        if count > 0 {
            Produced::some(count)
        } else {
            Produced::none(why())
        }
    }

    /// Why nothing came out (a placeholder when the producer gave no reason).
    pub fn reason(self) -> NoData {
        self.why.unwrap_or(NoData::Filtered {
            expr: "the query".to_string(),
        })
    }
}

/// The evaluation context: the store, the evaluation time, and the first reason a value came
/// out NaN where Prometheus returns NaN for missing data (a histogram without observations,
/// `scalar()` of no series), so a NaN result is reported as no data with that reason.
pub(crate) struct Cx<'a> {
    pub store: &'a SeriesStore,
    pub now_ms: i64,
    nan_reason: RefCell<Option<NoData>>,
}

impl Cx<'_> {
    pub fn nan_because(&self, why: NoData) {
        let mut reason = self.nan_reason.borrow_mut();
        if reason.is_none() {
            *reason = Some(why);
        }
    }
}

/// Evaluates `expr` (the query `source`) at `now_ms`.
pub(crate) fn eval(
    expr: &Expr,
    source: &str,
    store: &SeriesStore,
    now_ms: i64,
) -> Result<QueryValue, EvalError> {
    let mut reads_series = false;
    expr.selectors(&mut |_, _| reads_series = true);
    if reads_series && store.scrape_at_or_before(now_ms).is_none() {
        return Ok(QueryValue::NoData(NoData::NoScrape));
    }
    let cx = Cx {
        store,
        now_ms,
        nan_reason: RefCell::new(None),
    };
    let value = if expr.ty() == Type::Scalar {
        scalar(&cx, expr)?
    } else {
        let mut count = 0usize;
        let mut first = None;
        let produced = vector(&cx, expr, &mut |el| {
            count += 1;
            if first.is_none() {
                first = Some(el.value);
            }
            Ok(())
        })?;
        match (count, first) {
            (1, Some(Value::Float(v))) => v,
            (1, Some(Value::Histogram(_))) => return Err(histogram_result(source.trim())),
            (0, _) | (_, None) => return Ok(QueryValue::NoData(produced.reason())),
            (n, _) => return Err(ambiguous(expr, source.trim(), n)),
        }
    };
    if value.is_nan()
        && let Some(why) = cx.nan_reason.into_inner()
    {
        return Ok(QueryValue::NoData(why));
    }
    Ok(QueryValue::Number(value))
}

/// A native histogram where one number is needed: say how to take one from it.
fn histogram_result(source: &str) -> EvalError {
    EvalError::new(format!(
        "{source} yields a native histogram, but a scrape variable must be one number; take \
         one from it, e.g. histogram_quantile(0.99, {source}), histogram_count({source}), \
         histogram_sum({source}), histogram_fraction(0, 0.25, {source}) or \
         histogram_avg({source})"
    ))
}

/// Several series where one number is needed: say how to make it one.
fn ambiguous(expr: &Expr, source: &str, n: usize) -> EvalError {
    if let Expr::Call(call) = expr
        && matches!(call.func, Func::HistogramQuantile | Func::HistogramFraction)
    {
        return EvalError::new(format!(
            "{source} yields {n} series (one per native histogram, and one per label set \
             besides le of classic buckets), but a scrape variable must be one number; \
             aggregate the histograms first, e.g. {f}(..., sum(rate(x[1m]))) for a native \
             histogram or {f}(..., sum by (le) (rate(x_bucket[1m]))) for classic buckets",
            f = call.func.name()
        ));
    }
    let verb = match expr {
        Expr::Vector(_) => "matched",
        Expr::Call(c) if matches!(c.args.first(), Some(Expr::Matrix(_))) => "matched",
        _ => "yields",
    };
    EvalError::new(format!(
        "{source} {verb} {n} series, but a scrape variable must be one number; aggregate them, \
         e.g. sum({source}) or max({source})"
    ))
}

/// Evaluates a scalar-typed expression.
pub(crate) fn scalar(cx: &Cx<'_>, expr: &Expr) -> Result<f64, EvalError> {
    match expr {
        Expr::Number(n) => Ok(*n),
        Expr::Neg(inner) => Ok(-scalar(cx, inner)?),
        Expr::Binary(b) => {
            let (l, r) = (scalar(cx, &b.lhs)?, scalar(cx, &b.rhs)?);
            // The parser requires `bool` for comparisons between numbers.
            Ok(binary::apply(b.op, l, r).map_or(0.0, |(v, keep)| {
                if b.op.is_comparison() {
                    f64::from(u8::from(keep))
                } else {
                    v
                }
            }))
        }
        Expr::Call(call) => match call.func {
            Func::Time => Ok(cx.now_ms as f64 / 1000.0),
            Func::Scalar => scalar_of(cx, call),
            _ => Err(internal(expr)),
        },
        _ => Err(internal(expr)),
    }
}

/// `scalar(v)`: the value of its one element, else NaN (with the reason noted).
fn scalar_of(cx: &Cx<'_>, call: &Call) -> Result<f64, EvalError> {
    let Some(arg) = call.args.first() else {
        return Err(EvalError::new("scalar() needs an argument"));
    };
    // Native histograms are skipped, as Prometheus does.
    let (mut count, mut histograms) = (0usize, 0usize);
    let mut value = f64::NAN;
    let produced = vector(cx, arg, &mut |el| {
        match el.value.float() {
            Some(v) => {
                count += 1;
                value = v;
            }
            None => histograms += 1,
        }
        Ok(())
    })?;
    match count {
        1 => Ok(value),
        0 if histograms > 0 => {
            cx.nan_because(NoData::HistogramIgnored {
                expr: call.text.to_string(),
            });
            Ok(f64::NAN)
        }
        0 => {
            cx.nan_because(produced.reason());
            Ok(f64::NAN)
        }
        n => {
            cx.nan_because(NoData::NotOneSeries {
                expr: call.text.to_string(),
                count: n,
            });
            Ok(f64::NAN)
        }
    }
}

fn internal(expr: &Expr) -> EvalError {
    EvalError::new(format!(
        "internal error: {} evaluated as the wrong type",
        match expr {
            Expr::Call(c) => c.text.to_string(),
            _ => "an expression".to_string(),
        }
    ))
}

/// Streams the elements of a vector-typed expression to `sink`.
pub(crate) fn vector<'a>(
    cx: &Cx<'a>,
    expr: &'a Expr,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    match expr {
        Expr::Vector(v) => instant(cx, v, sink),
        Expr::Neg(inner) => vector(cx, inner, &mut |el| {
            let value = match el.value {
                Value::Float(v) => Value::Float(-v),
                Value::Histogram(h) => {
                    let mut h = h.into_owned();
                    h.mul(-1.0);
                    Value::owned(h)
                }
            };
            sink(Element {
                labels: el.labels.without_name(),
                value,
            })
        }),
        Expr::Binary(b) => binary::eval(cx, b, sink),
        Expr::Aggregate(a) => aggregate::eval(cx, a, sink),
        Expr::Call(call) => match call.func {
            Func::Vector => {
                let v = match call.args.first() {
                    Some(arg) => scalar(cx, arg)?,
                    None => f64::NAN,
                };
                sink(Element {
                    labels: Labels::Empty,
                    value: Value::Float(v),
                })?;
                Ok(Produced::some(1))
            }
            Func::HistogramQuantile | Func::HistogramFraction => histogram::buckets(cx, call, sink),
            Func::HistogramCount
            | Func::HistogramSum
            | Func::HistogramAvg
            | Func::HistogramStddev
            | Func::HistogramStdvar => histogram::statistic(cx, call, sink),
            _ => match call.args.first() {
                Some(Expr::Matrix(m)) => range::eval(cx, call.func, m, sink),
                _ => range::elementwise(cx, call, sink),
            },
        },
        Expr::Number(_) | Expr::String | Expr::Matrix(_) => Err(internal(expr)),
    }
}

/// Whether an operation with `op` drops the metric name, as Prometheus does for arithmetic and
/// `bool` comparisons.
pub(crate) fn drops_name(op: BinOp, return_bool: bool) -> bool {
    !(op.is_set() || (op.is_comparison() && !return_bool))
}

pub(crate) fn matching<'s>(
    store: &'s SeriesStore,
    selector: &'s Selector,
) -> impl Iterator<Item = &'s Series> {
    store.series().iter().filter(move |s| s.matches(selector))
}

pub(crate) fn point_at(series: &Series, t: i64) -> Option<&Point> {
    // The latest scrape is almost always the last point; search otherwise.
    match series.points.back() {
        Some(p) if p.t == t => Some(p),
        _ => {
            let i = series.points.partition_point(|p| p.t < t);
            series.points.get(i).filter(|p| p.t == t)
        }
    }
}

/// An instant selector: each matching series' value in the latest scrape at or before the
/// evaluation time (minus the offset); a series absent from that scrape is stale.
fn instant<'a>(cx: &Cx<'a>, v: &'a VectorSel, sink: Sink<'_, 'a>) -> Result<Produced, EvalError> {
    let store = cx.store;
    let t = cx.now_ms.saturating_sub(v.offset_ms);
    let Some(scrape) = store.scrape_at_or_before(t) else {
        return Ok(Produced::none(before_history(cx, v)));
    };
    let age_ms = t - scrape;
    if age_ms > store.limits().lookback_ms {
        return Ok(Produced::none(NoData::ScrapeTooOld { age_ms }));
    }
    let (mut count, mut stale) = (0usize, 0usize);
    for series in matching(store, &v.selector) {
        if series.evicted_until_ms.is_some_and(|e| e >= scrape) {
            return Err(EvalError::new(format!(
                "{} offset {} needs more than the {} points kept per series at this scrape \
                 interval; shorten the offset or raise the per-series point limit",
                v.selector.text,
                v.offset_text,
                store.limits().max_points_per_series
            )));
        }
        // Prometheus staleness: a series absent from the latest scrape is gone.
        let value = match point_at(series, scrape) {
            Some(p) => Value::Float(p.v),
            None => match series.histogram_at(scrape) {
                Some(h) => Value::Histogram(Cow::Borrowed(h)),
                None => {
                    stale += 1;
                    continue;
                }
            },
        };
        count += 1;
        sink(Element {
            labels: Labels::Series { series, name: true },
            value,
        })?;
    }
    Ok(Produced::counted(count, || NoData::NoSeries {
        selector: v.selector.text.to_string(),
        stale,
    }))
}

/// No scrape at or before the selector's time: it has an offset reaching before the first
/// scrape (or there is no scrape at all).
pub(crate) fn before_history(cx: &Cx<'_>, v: &VectorSel) -> NoData {
    if v.offset_ms > 0 && cx.store.first_scrape_ms().is_some() {
        NoData::NoHistoryYet {
            offset: v.offset_text.to_string(),
        }
    } else {
        NoData::NoScrape
    }
}

/// Every element `expr` yields, as (labels as PromQL writes them, value): for tests that
/// compare whole vectors with Prometheus's.
#[cfg(test)]
pub(crate) fn eval_elements(
    expr: &Expr,
    store: &SeriesStore,
    now_ms: i64,
) -> Result<Vec<(String, Value<'static>)>, EvalError> {
    let cx = Cx {
        store,
        now_ms,
        nan_reason: RefCell::new(None),
    };
    if expr.ty() == Type::Scalar {
        return Ok(vec![("{}".to_string(), Value::Float(scalar(&cx, expr)?))]);
    }
    let mut out = Vec::new();
    vector(&cx, expr, &mut |el| {
        let mut name = "";
        let mut pairs = Vec::new();
        el.labels.each(&mut |k, v| {
            if k == "__name__" {
                name = v;
            } else if !v.is_empty() {
                pairs.push(format!("{k}={v:?}"));
            }
        });
        pairs.sort();
        let value = match el.value {
            Value::Float(v) => Value::Float(v),
            Value::Histogram(h) => Value::owned(h.into_owned()),
        };
        out.push((format!("{name}{{{}}}", pairs.join(", ")), value));
        Ok(())
    })?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// [`eval_elements`] with float values (a native histogram reads as NaN).
#[cfg(test)]
pub(crate) fn eval_vector(
    expr: &Expr,
    store: &SeriesStore,
    now_ms: i64,
) -> Result<Vec<(String, f64)>, EvalError> {
    Ok(eval_elements(expr, store, now_ms)?
        .into_iter()
        .map(|(k, v)| (k, v.float().unwrap_or(f64::NAN)))
        .collect())
}
