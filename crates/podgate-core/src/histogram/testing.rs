//! Comparisons for tests: numbers equal up to the last bits, and histograms equal as
//! promqltest compares them.

use super::{FloatHistogram, notation};

/// Equal, both NaN, or within a relative 1e-12 (bucket bounds come from `exp2` here and from
/// a table in Prometheus, and interpolation goes through `log2` of them).
pub(crate) fn close(got: f64, want: f64) -> bool {
    (got.is_nan() && want.is_nan())
        || got == want
        || (got - want).abs() <= 1e-12 * want.abs().max(got.abs())
}

#[track_caller]
pub(crate) fn assert_close(got: f64, want: f64) {
    assert!(close(got, want), "got {got}, want {want}");
}

/// Equal as promqltest compares histograms: same schema and zero bucket, counts and sum
/// equal up to rounding, the same populated buckets. `want` is a literal of the test
/// language.
#[track_caller]
pub(crate) fn assert_histogram(got: &FloatHistogram, want: &str) {
    let mut want = notation::parse_literal(want).unwrap_or_else(|e| panic!("{want}: {e}"));
    want.compact();
    let mut got = got.clone();
    got.compact();
    let same = got.schema == want.schema
        && close(got.zero_threshold, want.zero_threshold)
        && close(got.zero_count, want.zero_count)
        && close(got.count, want.count)
        && close(got.sum, want.sum)
        && got.positive.len() == want.positive.len()
        && got.negative.len() == want.negative.len()
        && got
            .positive
            .iter()
            .zip(&want.positive)
            .chain(got.negative.iter().zip(&want.negative))
            .all(|(a, b)| a.0 == b.0 && close(a.1, b.1));
    assert!(same, "got {got:?}\nwant {want:?}");
}
