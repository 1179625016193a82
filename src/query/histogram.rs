//! `histogram_quantile` over classic histograms (`_bucket` series with an `le` label), as
//! Prometheus 3's `bucketQuantile` computes it: buckets grouped by their other labels, bounds
//! matched by number (`0.2` and `2e-1` are one bucket), counts made monotonic.

use super::ast::Call;
use super::eval::{Cx, EvalError, NoData, Produced, QueryValue, Sink, scalar, vector};
use super::labels::{Element, Filter, Groups, Labels, Value};

/// The labels a bucket's group is made of: all but `le` (and the metric name).
const LE: &[Box<str>] = &[];

pub(crate) fn eval<'a>(
    cx: &Cx<'a>,
    call: &'a Call,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    let (Some(q), Some(input)) = (call.args.first(), call.args.get(1)) else {
        return Err(EvalError::new("histogram_quantile() takes two arguments"));
    };
    let q = scalar(cx, q)?;
    let le: [Box<str>; 1] = ["le".into()];
    // Every label but `le` (and the name) tells the histograms apart; in podgate's earlier
    // form all buckets make one histogram.
    let filter = if call.sum_by_le {
        Filter::Only(LE)
    } else {
        Filter::AllBut(&le)
    };
    let mut groups = Groups::default();
    let mut buckets: Vec<Vec<Bucket>> = Vec::new();
    let inner = vector(cx, input, &mut |el| {
        let upper = bucket_bound(&el.labels)?;
        let (g, created) = groups.find_or_insert(&el.labels, filter);
        if created {
            buckets.push(Vec::new());
        }
        if let (Some(b), Some(count)) = (buckets.get_mut(g), el.value.float()) {
            b.push(Bucket { upper, count });
        }
        Ok(())
    })?;
    if groups.len() == 0 {
        return Ok(Produced::none(inner.reason()));
    }
    for (key, mut group) in groups.keys.iter().zip(buckets) {
        let value = match bucket_quantile(q, &mut group) {
            QueryValue::Number(v) => v,
            // Prometheus yields NaN; the reason is kept for the result.
            QueryValue::NoData(why) => {
                cx.nan_because(why);
                f64::NAN
            }
        };
        sink(Element {
            labels: key.keep(filter),
            value: Value::Float(value),
        })?;
    }
    Ok(Produced::some(groups.len()))
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub upper: f64,
    pub count: f64,
}

fn bucket_bound(labels: &Labels<'_>) -> Result<f64, EvalError> {
    let le = labels.get("le");
    if le.is_empty() {
        return Err(EvalError::new(format!(
            "histogram_quantile needs bucket series with an `le` label, but {} has none; \
             select the `_bucket` series",
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
