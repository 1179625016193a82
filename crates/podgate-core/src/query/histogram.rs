//! The histogram functions of the scrape language. `histogram_quantile` and
//! `histogram_fraction` read native histograms (one result each) and classic `_bucket`
//! series (one result per group of buckets with the same labels besides `le`), as
//! Prometheus 3 does; `histogram_count`, `histogram_sum`, `histogram_avg`,
//! `histogram_stddev` and `histogram_stdvar` read native histograms only.

use super::ast::Call;
use super::catalog::Func;
use super::classic::{Bucket, bucket_fraction, bucket_quantile, parse_bound};
use super::context::Cx;
use super::labels::{Element, Filter, Groups, Labels, Value};
use super::outcome::{EvalError, NoData, QueryValue};
use super::stream::{Produced, Sink};

/// What to compute from each histogram.
#[derive(Debug, Clone, Copy)]
enum Wanted {
    Quantile(f64),
    Fraction(f64, f64),
}

/// `histogram_quantile(q, v)` and `histogram_fraction(lower, upper, v)`.
pub(crate) fn buckets<'a>(
    cx: &Cx<'a>,
    call: &'a Call,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    let arg = |i: usize| {
        call.args
            .get(i)
            .ok_or_else(|| EvalError::new(format!("{}() is missing an argument", call.func.name())))
    };
    let (wanted, input) = match call.func {
        Func::HistogramFraction => (
            Wanted::Fraction(cx.scalar(arg(0)?)?, cx.scalar(arg(1)?)?),
            arg(2)?,
        ),
        _ => (Wanted::Quantile(cx.scalar(arg(0)?)?), arg(1)?),
    };
    let le: [Box<str>; 1] = ["le".into()];
    // Every label but `le` (and the name) tells the classic histograms apart.
    let filter = Filter::AllBut(&le);
    let mut natives: Vec<Element<'a>> = Vec::new();
    let mut groups = Groups::default();
    let mut buckets: Vec<Vec<Bucket>> = Vec::new();
    let inner = cx.vector(input, &mut |el| {
        if el.value.histogram().is_some() {
            natives.push(el);
            return Ok(());
        }
        let upper = bucket_bound(call, &el.labels)?;
        let (g, created) = groups.find_or_insert(&el.labels, filter);
        if created {
            buckets.push(Vec::new());
        }
        if let (Some(b), Some(count)) = (buckets.get_mut(g), el.value.float()) {
            b.push(Bucket { upper, count });
        }
        Ok(())
    })?;
    if groups.len() == 0 && natives.is_empty() {
        return Ok(Produced::none(inner.reason()));
    }
    // podgate's earlier form (classic buckets only): all buckets make one histogram.
    if call.sum_by_le && natives.is_empty() {
        let all: Vec<Bucket> = buckets.into_iter().flatten().collect();
        let value = classic_value(cx, wanted, all);
        sink(Element {
            labels: Labels::Empty,
            value: Value::Float(value),
        })?;
        return Ok(Produced::some(1));
    }
    // A native histogram and classic buckets with the same labels: Prometheus uses neither.
    let mut unused = vec![false; groups.len()];
    let mut conflict = None;
    if groups.len() > 0 {
        natives.retain(|native| {
            let Some(g) = groups
                .keys
                .iter()
                .position(|key| same_but_le(&native.labels, key))
            else {
                return true;
            };
            if let Some(u) = unused.get_mut(g) {
                *u = true;
            }
            conflict.get_or_insert_with(|| native.labels.describe());
            false
        });
    }
    let mut count = 0;
    for native in natives {
        let Some(h) = native.value.histogram() else {
            continue;
        };
        let value = match wanted {
            Wanted::Quantile(q) => h.quantile(q),
            Wanted::Fraction(lower, upper) => h.fraction(lower, upper),
        };
        if value.is_nan() && h.count == 0.0 {
            cx.nan_because(NoData::NoObservations);
        }
        count += 1;
        sink(Element {
            labels: native.labels.without_name(),
            value: Value::Float(value),
        })?;
    }
    for ((key, group), unused) in groups.keys.iter().zip(buckets).zip(unused) {
        if unused {
            continue;
        }
        let value = classic_value(cx, wanted, group);
        count += 1;
        sink(Element {
            labels: key.keep(filter),
            value: Value::Float(value),
        })?;
    }
    Ok(Produced::counted(count, || NoData::NativeAndClassic {
        expr: call.text.to_string(),
        labels: conflict.unwrap_or_default(),
    }))
}

/// The quantile or fraction of one classic histogram's buckets; where Prometheus yields NaN
/// for missing data, the reason is kept for the result.
fn classic_value(cx: &Cx<'_>, wanted: Wanted, mut group: Vec<Bucket>) -> f64 {
    match wanted {
        Wanted::Quantile(q) => match bucket_quantile(q, &mut group) {
            QueryValue::Number(v) => v,
            QueryValue::NoData(why) => {
                cx.nan_because(why);
                f64::NAN
            }
        },
        Wanted::Fraction(lower, upper) => {
            let v = bucket_fraction(lower, upper, &mut group);
            if v.is_nan() {
                match group.last() {
                    Some(b) if b.upper != f64::INFINITY => cx.nan_because(NoData::NoInfBucket),
                    Some(b) if b.count == 0.0 => cx.nan_because(NoData::NoObservations),
                    _ => {}
                }
            }
            v
        }
    }
}

/// Whether two label sets agree on every label but `le`, the metric name included (how
/// Prometheus pairs a native histogram with classic buckets).
fn same_but_le(a: &Labels<'_>, b: &Labels<'_>) -> bool {
    let pairs = |l: &Labels<'_>| {
        let mut out: Vec<(String, String)> = Vec::new();
        l.each(&mut |k, v| {
            if k != "le" && !v.is_empty() {
                out.push((k.to_string(), v.to_string()));
            }
        });
        out.sort_unstable();
        out
    };
    pairs(a) == pairs(b)
}

fn bucket_bound(call: &Call, labels: &Labels<'_>) -> Result<f64, EvalError> {
    let le = labels.get("le");
    if le.is_empty() {
        return Err(EvalError::new(format!(
            "{}() reads native histograms and classic bucket series with an `le` label, but \
             {} is neither; select a native histogram or the `_bucket` series",
            call.func.name(),
            labels.describe()
        )));
    }
    parse_bound(le).ok_or_else(|| {
        EvalError::new(format!(
            "bucket series {} has an `le` label that is not a number",
            labels.describe()
        ))
    })
}

/// `histogram_count`, `histogram_sum`, `histogram_avg`, `histogram_stddev`,
/// `histogram_stdvar`: one number per native histogram; floats are skipped, as Prometheus
/// does.
pub(crate) fn statistic<'a>(
    cx: &Cx<'a>,
    call: &'a Call,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    let Some(input) = call.args.first() else {
        return Err(EvalError::new(format!(
            "{}() needs an argument",
            call.func.name()
        )));
    };
    let (mut count, mut floats) = (0usize, 0usize);
    let inner = cx.vector(input, &mut |el| {
        let Some(h) = el.value.histogram() else {
            floats += 1;
            return Ok(());
        };
        let value = match call.func {
            Func::HistogramCount => h.count(),
            Func::HistogramSum => h.sum(),
            Func::HistogramAvg => h.avg(),
            Func::HistogramStddev => h.stddev(),
            _ => h.stdvar(),
        };
        if value.is_nan() && h.count == 0.0 {
            cx.nan_because(NoData::NoObservations);
        }
        count += 1;
        sink(Element {
            labels: el.labels.without_name(),
            value: Value::Float(value),
        })
    })?;
    Ok(if count > 0 {
        Produced::some(count)
    } else if floats > 0 {
        Produced::none(NoData::NotNativeHistogram {
            expr: call.text.to_string(),
        })
    } else {
        Produced::none(inner.reason())
    })
}
