//! Classic histograms (`_bucket` series with an `le` label): Prometheus 3's `bucketQuantile`
//! and `BucketFraction` over one histogram's buckets: buckets sorted by bound, bounds matched
//! by number (`0.2` and `2e-1` are one bucket), counts made monotonic for the quantile.

use super::outcome::{NoData, QueryValue};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub upper: f64,
    pub count: f64,
}

/// Parses a bucket bound as Prometheus does (`+Inf`, `Inf`, `1e-3`, `0.25`).
pub(crate) fn parse_bound(le: &str) -> Option<f64> {
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
    coalesce(buckets);
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

/// Prometheus's `BucketFraction`: the fraction of observations between `lower` and `upper`,
/// interpolated linearly inside a bucket; the first bucket starts at 0 when its upper bound
/// is positive (else at -Inf, where nothing is interpolated), and nothing is interpolated
/// inside the +Inf bucket. NaN without a +Inf bucket, without observations or for a NaN
/// bound; 0 when `lower >= upper`.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if buckets.is_empty() {
        return f64::NAN;
    }
    buckets.sort_by(|a, b| a.upper.total_cmp(&b.upper));
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return f64::NAN;
    }
    coalesce(buckets);
    let count = buckets.last().map_or(0.0, |b| b.count);
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut lower_bound = match buckets.first() {
        Some(b) if b.upper <= 0.0 => f64::NEG_INFINITY,
        _ => 0.0,
    };
    let mut previous_upper = None;
    for b in buckets.iter() {
        if let Some(p) = previous_upper {
            lower_bound = p;
        }
        previous_upper = Some(b.upper);
        // Nothing is interpolated inside a bucket with an infinite bound.
        let interpolate = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                b.count
            } else {
                rank + (b.count - rank) * (v - lower_bound) / (b.upper - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && b.upper > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && b.upper > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// Sums buckets with the same bound (sorted input).
fn coalesce(buckets: &mut Vec<Bucket>) {
    buckets.dedup_by(|later, kept| {
        if later.upper == kept.upper {
            kept.count += later.count;
            true
        } else {
            false
        }
    });
}
