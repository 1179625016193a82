//! Evaluation of a compiled scrape query against one pod's [`SeriesStore`]: the tree walk
//! that dispatches each node to the operator that evaluates it, and the outcome (one number,
//! no data and why, or an error).
//!
//! Vectors are streamed element by element to their consumer wherever PromQL allows it
//! (selectors, range functions, element-wise functions and operations with a number,
//! aggregations into one group), so the common queries evaluate without allocating; only
//! grouping and vector-vector matching collect their input. Functions follow Prometheus's
//! code, so a number computed here matches what Prometheus computes from the same samples at
//! the same times.

use super::aggregate;
use super::ast::{Call, Expr};
use super::binary;
use super::catalog::Func;
use super::context::{Cx, Dispatch};
use super::elementwise;
use super::histogram;
use super::instant;
use super::labels::{Element, Labels, Value};
use super::outcome::{EvalError, NoData, QueryValue};
use super::range;
use super::store::SeriesStore;
use super::stream::{Produced, Sink};
use super::types::Type;

/// This dispatcher, as the operators reach it through [`Cx`] for their operands.
const DISPATCH: Dispatch = Dispatch { vector, scalar };

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
    let cx = Cx::new(store, now_ms, DISPATCH);
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
        && let Some(why) = cx.into_nan_reason()
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
fn scalar(cx: &Cx<'_>, expr: &Expr) -> Result<f64, EvalError> {
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
fn vector<'a>(cx: &Cx<'a>, expr: &'a Expr, sink: Sink<'_, 'a>) -> Result<Produced, EvalError> {
    match expr {
        Expr::Vector(v) => instant::eval(cx, v, sink),
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
                _ => elementwise::eval(cx, call, sink),
            },
        },
        Expr::Number(_) | Expr::String | Expr::Matrix(_) => Err(internal(expr)),
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
    let cx = Cx::new(store, now_ms, DISPATCH);
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
