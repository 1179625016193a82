//! A protobuf `Histogram`'s native part as a [`FloatHistogram`], checked as Prometheus 3
//! checks it before storing it (`checkNativeHistogramConsistency` in its parser, schema
//! reduction to 8, then `Histogram.Validate`/`FloatHistogram.Validate`).

use super::wire;
use crate::histogram::{CounterResetHint, FloatHistogram, MAX_SCHEMA, MIN_SCHEMA};

/// The highest schema Prometheus accepts and reduces to [`MAX_SCHEMA`].
const MAX_RESERVED_SCHEMA: i32 = 52;

/// Whether the histogram has a native part: spans, or a zero bucket (Prometheus's
/// `isNativeHistogram`; a native histogram without observations shows it with an empty
/// span).
pub(super) fn is_native(h: &wire::Histogram) -> bool {
    !h.positive_span.is_empty()
        || !h.negative_span.is_empty()
        || h.zero_threshold > 0.0
        || h.zero_count > 0
}

/// Float counts instead of integer ones (Prometheus's `isFloatHistogram`).
fn is_float(h: &wire::Histogram) -> bool {
    h.sample_count_float > 0.0
        || h.zero_count_float > 0.0
        || !h.positive_count.is_empty()
        || !h.negative_count.is_empty()
}

/// The native histogram of `h`, or what is wrong with it.
pub(super) fn convert(h: &wire::Histogram, gauge: bool) -> Result<FloatHistogram, String> {
    let float = is_float(h);
    let (positive_len, negative_len) = if float {
        (h.positive_count.len(), h.negative_count.len())
    } else {
        (h.positive_delta.len(), h.negative_delta.len())
    };
    check_span_lengths("positive", &h.positive_span, positive_len)?;
    check_span_lengths("negative", &h.negative_span, negative_len)?;
    if !(h.zero_threshold >= 0.0 && h.zero_threshold.is_finite()) {
        return Err(format!(
            "zero threshold {} is not a finite number >= 0",
            h.zero_threshold
        ));
    }
    let positive_counts = counts(float, &h.positive_count, &h.positive_delta);
    let negative_counts = counts(float, &h.negative_count, &h.negative_delta);
    let mut out = FloatHistogram {
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: if float {
            h.zero_count_float
        } else {
            h.zero_count as f64
        },
        count: if float {
            h.sample_count_float
        } else {
            h.sample_count as f64
        },
        sum: h.sample_sum,
        positive: buckets("positive", &h.positive_span, &positive_counts)?,
        negative: buckets("negative", &h.negative_span, &negative_counts)?,
        hint: if gauge {
            CounterResetHint::Gauge
        } else {
            CounterResetHint::Unknown
        },
    };
    if !(MIN_SCHEMA..=MAX_RESERVED_SCHEMA).contains(&out.schema) {
        return Err(format!(
            "schema {} is not an exponential schema podgate reads ({MIN_SCHEMA} to \
             {MAX_SCHEMA}, or up to {MAX_RESERVED_SCHEMA} reduced to {MAX_SCHEMA})",
            out.schema
        ));
    }
    for (side, list) in [("positive", &out.positive), ("negative", &out.negative)] {
        if let Some((n, &(_, c))) = list.iter().enumerate().find(|(_, (_, c))| *c < 0.0) {
            return Err(format!(
                "{side} side: bucket number {} has observation count of {c} (negative)",
                n + 1
            ));
        }
    }
    if float {
        if out.zero_count < 0.0 {
            return Err(format!(
                "zero bucket has observation count of {} (negative)",
                out.zero_count
            ));
        }
        if out.count < 0.0 {
            return Err(format!("observation count is {} (negative)", out.count));
        }
    } else {
        // Integer counts must add up: every observation is in exactly one bucket, except
        // NaN observations (then the sum is NaN and the count may be larger).
        let in_buckets: i128 = positive_counts
            .iter()
            .chain(&negative_counts)
            .map(|&c| c as i128)
            .sum::<i128>()
            + i128::from(h.zero_count);
        let count = i128::from(h.sample_count);
        if (h.sample_sum.is_nan() && in_buckets > count)
            || (!h.sample_sum.is_nan() && in_buckets != count)
        {
            return Err(format!(
                "{in_buckets} observations found in buckets, but the count field is {count}"
            ));
        }
    }
    out.compact();
    if out.schema > MAX_SCHEMA {
        out = out.copy_to_schema(MAX_SCHEMA);
    }
    Ok(out)
}

/// Absolute bucket counts: float counts as they are, integer deltas accumulated.
fn counts(float: bool, absolute: &[f64], deltas: &[i64]) -> Vec<f64> {
    if float {
        return absolute.to_vec();
    }
    let mut current = 0i64;
    deltas
        .iter()
        .map(|&d| {
            current = current.wrapping_add(d);
            current as f64
        })
        .collect()
}

/// The spans must describe exactly as many buckets as there are counts.
fn check_span_lengths(
    side: &str,
    spans: &[wire::BucketSpan],
    buckets: usize,
) -> Result<(), String> {
    let described: u64 = spans.iter().map(|s| u64::from(s.length)).sum();
    if described != buckets as u64 {
        return Err(format!(
            "{side} side: spans require {described} buckets, have {buckets}"
        ));
    }
    Ok(())
}

/// `(index, count)` pairs from spans: the first span's offset is the first index, each
/// later offset the gap after the previous span.
fn buckets(
    side: &str,
    spans: &[wire::BucketSpan],
    counts: &[f64],
) -> Result<Vec<(i32, f64)>, String> {
    let mut out = Vec::with_capacity(counts.len());
    let mut counts = counts.iter();
    let mut index: i64 = 0;
    for (n, span) in spans.iter().enumerate() {
        if n > 0 && span.offset < 0 {
            return Err(format!(
                "{side} side: span number {} has a negative offset {}",
                n + 1,
                span.offset
            ));
        }
        if n == 0 && span.offset == i32::MIN {
            return Err(format!(
                "{side} side: span number 1 starts at bucket index {}, out of range",
                span.offset
            ));
        }
        index += i64::from(span.offset);
        for _ in 0..span.length {
            let i = i32::try_from(index).map_err(|_| {
                format!(
                    "{side} side: span number {} reaches bucket index {index}, out of range",
                    n + 1
                )
            })?;
            if let Some(&c) = counts.next() {
                out.push((i, c));
            }
            index += 1;
        }
    }
    Ok(out)
}
