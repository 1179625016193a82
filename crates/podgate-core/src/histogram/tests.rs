//! Cases from Prometheus's own PromQL test data (`promql/promqltest/testdata/
//! native_histograms.test`, Prometheus 3.16): the same histograms must give the same numbers
//! here. Series are written in the test language's notation (`{{schema:0 count:4 sum:5
//! buckets:[1 2 1]}}`, `A+BxN`, `AxN`) and loaded like `load <step>` does: value `i` at
//! `i × step`. Range windows are left-open, `(t - range, t]`, as in Prometheus 3.
#![allow(
    clippy::approx_constant,
    reason = "the expected values are Prometheus's, as its test data writes them"
)]

use super::testing::{assert_close, assert_histogram};
use super::*;

const MIN: i64 = 60_000;
const SEC: i64 = 1_000;

/// A histogram literal of the test language.
fn h(literal: &str) -> FloatHistogram {
    notation::parse_literal(literal).unwrap_or_else(|e| panic!("{literal}: {e}"))
}

/// A series in the test language: literals, `A+BxN`, `AxN` and `_` (no sample).
fn series(spec: &str) -> Vec<Option<FloatHistogram>> {
    notation::expand(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

/// The sample an instant selector reads at `t`: the latest at or before it, within 5m.
fn at(s: &[Option<FloatHistogram>], step: i64, t: i64) -> FloatHistogram {
    (0..s.len() as i64)
        .rev()
        .map(|i| (i * step, s.get(i as usize).and_then(Option::as_ref)))
        .find(|(ts, h)| *ts <= t && t - *ts <= 5 * MIN && h.is_some())
        .and_then(|(_, h)| h.cloned())
        .unwrap_or_else(|| panic!("no sample at {t}"))
}

/// `rate()` (`per_second`), `increase()` or `delta()` (`!counter`) over `(t - range, t]`.
fn range_fn(
    s: &[Option<FloatHistogram>],
    step: i64,
    t: i64,
    range: i64,
    per_second: bool,
    counter: bool,
) -> Option<FloatHistogram> {
    let points: Vec<HistogramPoint<'_>> = s
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.as_ref().map(|h| (i as i64 * step, h)))
        .filter(|(ts, _)| *ts > t - range && *ts <= t)
        .map(|(t, h)| HistogramPoint { t, h })
        .collect();
    let window = RateWindow {
        end_ms: t,
        range_ms: range,
        per_second,
        counter,
    };
    histogram_rate(&points, window)
}

fn rate(s: &[Option<FloatHistogram>], step: i64, t: i64, range: i64) -> FloatHistogram {
    range_fn(s, step, t, range, true, true).expect("a rate")
}

fn increase(s: &[Option<FloatHistogram>], step: i64, t: i64, range: i64) -> FloatHistogram {
    range_fn(s, step, t, range, false, true).expect("an increase")
}

#[test]
fn count_sum_avg_fraction_and_quantile_of_one_histogram() {
    let s = series("{{schema:0 sum:5 count:4 buckets:[1 2 1]}}");
    let x = at(&s, 5 * MIN, MIN);
    assert_close(x.count(), 4.0);
    assert_close(x.sum(), 5.0);
    assert_close(x.avg(), 1.25);
    assert_close(x.fraction(1.0, 2.0), 0.5);
    assert_close(x.fraction(0.0, 8.0), 1.0);
    // Exponential interpolation: the middle of (1,2] is √2.
    assert_close(x.quantile(0.5), 1.414213562373095);

    let empty = h("{{}}");
    assert_close(empty.count(), 0.0);
    assert!(empty.avg().is_nan());
    assert!(empty.fraction(f64::NEG_INFINITY, f64::INFINITY).is_nan());
    assert!(empty.fraction(0.0, 8.0).is_nan());
}

#[test]
fn an_incrementing_histogram_and_its_rate() {
    let s = series(
        "{{schema:0 sum:4 count:4 buckets:[1 2 1]}}+{{sum:2 count:1 buckets:[1] offset:1}}x10",
    );
    let step = 5 * MIN;
    let x = at(&s, step, 5 * MIN);
    assert_close(x.count(), 5.0);
    assert_close(x.sum(), 6.0);
    assert_close(x.avg(), 1.2);
    assert_close(x.fraction(1.0, 2.0), 0.6);
    assert_close(x.quantile(0.5), 1.414213562373095);
    let x = at(&s, step, 50 * MIN);
    assert_histogram(&x, "{{count:14 sum:24 buckets:[1 12 1]}}");
    assert_close(x.avg(), 1.7142857142857142);
    assert_close(x.fraction(1.0, 2.0), 0.8571428571428571);
    assert_close(x.quantile(0.5), 1.414213562373095);
    let r = rate(&s, step, 50 * MIN, 10 * MIN);
    assert_histogram(
        &r,
        "{{count:0.0033333333333333335 sum:0.006666666666666667 offset:1 buckets:[0.0033333333333333335]}}",
    );
    assert_eq!(r.hint, CounterResetHint::Gauge);
    assert_close(r.quantile(0.5), 1.414213562373095);
}

#[test]
fn adding_a_higher_resolution_histogram_keeps_the_lower_schema() {
    let s = series(
        "{{schema:-1 sum:4 count:1 buckets:[1] offset:1}}+{{schema:0 sum:4 count:4 buckets:[2 2] offset:1}}x1",
    );
    let x = at(&s, 5 * MIN, 5 * MIN);
    assert_histogram(&x, "{{schema:-1 count:5 sum:8 offset:1 buckets:[5]}}");
    assert_close(x.avg(), 1.6);
    assert_close(x.fraction(1.0, 4.0), 1.0);
}

#[test]
fn zero_bucket_negative_and_balanced_histograms() {
    let zero = h("{{schema:0 z_bucket:1 z_bucket_w:0.5 sum:0.25 count:1}}");
    assert_close(zero.fraction(-0.5, 0.5), 1.0);
    assert_close(zero.quantile(0.5), 0.0);

    let negative = h("{{schema:0 sum:-5 count:4 n_buckets:[1 2 1]}}");
    assert_close(negative.avg(), -1.25);
    assert_close(negative.fraction(-2.0, -1.0), 0.5);
    assert_close(negative.quantile(0.5), -1.414213562373095);

    let s = series(
        "{{schema:0 sum:4 count:4 buckets:[1 2 1]}}+{{schema:0 sum:-4 count:4 n_buckets:[1 2 1]}}x1",
    );
    let balanced = at(&s, 5 * MIN, 5 * MIN);
    assert_close(balanced.count(), 8.0);
    assert_close(balanced.sum(), 0.0);
    assert_close(balanced.fraction(0.0, 4.0), 0.5);
    assert_close(balanced.quantile(0.5), 0.5);
}

#[test]
fn quantiles_over_positive_negative_and_both_sides() {
    let positive =
        h("{{schema:0 count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}");
    for (q, want) in [
        (1.001, f64::INFINITY),
        (1.0, 16.0),
        (0.99, 15.67072476139083),
        (0.9, 12.99603834169977),
        (0.6, 4.594793419988138),
        (0.5, 1.5874010519681994),
        (0.1, 0.0006),
        (0.0, 0.0),
        (-1.0, f64::NEG_INFINITY),
    ] {
        assert_close(positive.quantile(q), want);
    }
    let negative =
        h("{{schema:0 count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}");
    for (q, want) in [
        (1.001, f64::INFINITY),
        (1.0, 0.0),
        (0.99, -0.00006),
        (0.9, -0.0006),
        (0.5, -1.5874010519681996),
        (0.1, -12.996038341699768),
        (0.0, -16.0),
        (-1.0, f64::NEG_INFINITY),
    ] {
        assert_close(negative.quantile(q), want);
    }
    let both = h(
        "{{schema:0 count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
    );
    for (q, want) in [
        (1.0, 16.0),
        (0.99, 15.34822590920423),
        (0.9, 10.556063286183155),
        (0.7, 1.2030250360821164),
        (0.55, 0.0006),
        (0.5, 0.0),
        (0.45, -0.0006),
        (0.3, -1.2030250360821169),
        (0.1, -10.556063286183155),
        (0.01, -15.34822590920423),
        (0.0, -16.0),
    ] {
        assert_close(both.quantile(q), want);
    }
    assert!(both.quantile(f64::NAN).is_nan());
}

#[test]
fn quantile_and_fraction_at_negative_zero_and_positive_schemas() {
    for (buckets, sign) in [("buckets", 1.0), ("n_buckets", -1.0)] {
        for (schema, sum, one_up, two_up) in [
            (-1, 6, 2.0, 8.0),
            (0, 4, 1.4142135623730951, 2.82842712474619),
            (1, 4, 1.189207, 1.6817928305074292),
        ] {
            let x = h(&format!(
                "{{{{schema:{schema} sum:{sum} count:5 {buckets}:[0 5]}}}}"
            ));
            let got = x.quantile(0.5);
            // The 1.189207 of the test data is rounded to 7 digits.
            assert!((got - sign * one_up).abs() < 1e-6, "{schema}: {got}");
            let (lo, hi) = if sign > 0.0 {
                (0.0, one_up)
            } else {
                (-one_up, 0.0)
            };
            assert!((x.fraction(lo, hi) - 0.5).abs() < 1e-6, "{schema}");
            let x = h(&format!(
                "{{{{schema:{schema} sum:{sum} count:5 {buckets}:[0 0 5]}}}}"
            ));
            assert_close(x.quantile(0.5), sign * two_up);
            let (lo, hi) = if sign > 0.0 {
                (0.0, two_up)
            } else {
                (-two_up, 0.0)
            };
            assert_close(x.fraction(lo, hi), 0.5);
        }
    }
}

#[test]
fn fractions_with_zero_bucket_and_both_sides() {
    let inf = f64::INFINITY;
    let positive =
        h("{{schema:0 count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}");
    for (lo, hi, want) in [
        (0.0, inf, 1.0),
        (-inf, 0.0, 0.0),
        (-0.001, 0.0, 0.0),
        (0.0, 0.001, 0.16666666666666666),
        (0.001, inf, 0.8333333333333334),
        (0.0, 0.0005, 0.08333333333333333),
        (-inf, -0.001, 0.0),
        (1.0, 2.0, 0.25),
        (0.0, 1.5, 0.4795739585136224),
        (1.5, 2.0, 0.10375937481971091),
        (1.0, 8.0, 0.3333333333333333),
        (0.0, 6.0, 0.6320802083934297),
        (1.0, 6.0, 0.29874687506009634),
        (1.5, 6.0, 0.15250624987980724),
        (-2.0, -1.0, 0.0),
        (-6.0, -1.5, 0.0),
        (42.0, 3.1415, 0.0),
        (0.0, 0.0, 0.0),
        (42.0, 42.0, 0.0),
        (3.1415, f64::NAN, f64::NAN),
        (f64::NAN, 42.0, f64::NAN),
        (-inf, inf, 1.0),
    ] {
        assert_close(positive.fraction(lo, hi), want);
    }
    assert_close(positive.quantile(0.08333333333333333), 0.0005);
    assert_close(positive.quantile(0.6320802083934297), 6.0);

    let negative =
        h("{{schema:0 count:12 sum:100 z_bucket:2 z_bucket_w:0.001 n_buckets:[2 3 0 1 4]}}");
    for (lo, hi, want) in [
        (0.0, inf, 0.0),
        (-inf, 0.0, 1.0),
        (-0.001, 0.0, 0.16666666666666666),
        (0.0, 0.001, 0.0),
        (-0.0005, 0.0, 0.08333333333333333),
        (-inf, -0.0005, 0.9166666666666666),
        (-inf, -0.001, 0.8333333333333334),
        (1.0, 2.0, 0.0),
        (-2.0, -1.0, 0.25),
        (-2.0, -1.5, 0.10375937481971091),
        (-8.0, -1.0, 0.3333333333333333),
        (-inf, -6.0, 0.36791979160657035),
        (-6.0, -1.0, 0.29874687506009634),
        (-6.0, -1.5, 0.15250624987980724),
        (-inf, inf, 1.0),
    ] {
        assert_close(negative.fraction(lo, hi), want);
    }
    assert_close(negative.quantile(0.9166666666666666), -0.0005);
    assert_close(negative.quantile(0.36791979160657035), -6.0);

    let both = h(
        "{{schema:0 count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] n_buckets:[2 3 0 1 4]}}",
    );
    for (lo, hi, want) in [
        (0.0, inf, 0.5),
        (-inf, 0.0, 0.5),
        (-0.001, 0.0, 0.08333333333333333),
        (0.0, 0.001, 0.08333333333333333),
        (-0.0005, 0.0005, 0.08333333333333333),
        (-inf, 0.0005, 0.5416666666666666),
        (-inf, -0.0005, 0.4583333333333333),
        (0.001, inf, 0.4166666666666667),
        (-inf, -0.001, 0.4166666666666667),
        (1.0, 2.0, 0.125),
        (1.5, 2.0, 0.051879687409855414),
        (1.0, 8.0, 0.16666666666666666),
        (1.0, 6.0, 0.14937343753004825),
        (1.5, 6.0, 0.07625312493990366),
        (-2.0, -1.0, 0.125),
        (-2.0, -1.5, 0.051879687409855456),
        (-8.0, -1.0, 0.16666666666666666),
        (-6.0, -1.0, 0.14937343753004817),
        (-6.0, -1.5, 0.07625312493990362),
        (-inf, inf, 1.0),
    ] {
        assert_close(both.fraction(lo, hi), want);
    }
    assert_close(both.quantile(0.5416666666666666), 0.0005);
    assert_close(both.quantile(0.4583333333333333), -0.0005);
}

#[test]
fn scaling_by_a_number() {
    let x = h(
        "{{schema:0 count:30 sum:33 z_bucket:3 z_bucket_w:0.001 buckets:[3 3 3] n_buckets:[6 6 6]}}",
    );
    let mut y = x.clone();
    y.mul(3.0);
    assert_histogram(
        &y,
        "{{schema:0 count:90 sum:99 z_bucket:9 z_bucket_w:0.001 buckets:[9 9 9] n_buckets:[18 18 18]}}",
    );
    let mut y = x.clone();
    y.mul(-1.0);
    assert_histogram(
        &y,
        "{{schema:0 count:-30 sum:-33 z_bucket:-3 z_bucket_w:0.001 buckets:[-3 -3 -3] n_buckets:[-6 -6 -6]}}",
    );
    assert_eq!(y.hint, CounterResetHint::Gauge);
    let mut y = x.clone();
    y.div(-3.0);
    assert_histogram(
        &y,
        "{{schema:0 count:-10 sum:-11 z_bucket:-1 z_bucket_w:0.001 buckets:[-1 -1 -1] n_buckets:[-2 -2 -2]}}",
    );
    let mut y = x.clone();
    y.div(0.0);
    assert_histogram(
        &y,
        "{{schema:0 count:Inf sum:Inf z_bucket_w:0.001 z_bucket:Inf}}",
    );
    let mut y = x;
    y.mul(0.0);
    y.div(0.0);
    assert_histogram(
        &y,
        "{{schema:0 count:NaN sum:NaN z_bucket_w:0.001 z_bucket:NaN}}",
    );
}

#[test]
fn adding_histograms_of_different_schemas_and_zero_buckets() {
    let a = h(
        "{{schema:0 count:25 sum:3.1 z_bucket:4 z_bucket_w:0.001 buckets:[1 2 0 1 1] n_buckets:[2 4 0 0 1 9]}}",
    );
    let b = h(
        "{{schema:1 count:0 sum:1.3 z_bucket:3 z_bucket_w:0.001 buckets:[2 4 2 3 2 2] n_buckets:[1 2 5 3 8 1 1 1 1 6 3]}}",
    );
    let mut sum = a.clone();
    sum.add(&b);
    assert_histogram(
        &sum,
        "{{schema:0 count:25 sum:4.4 z_bucket:7 z_bucket_w:0.001 buckets:[3 8 5 3 1] n_buckets:[3 11 11 2 3 18]}}",
    );
    // The same with the higher schema on the left.
    let mut sum = b;
    sum.add(&a);
    assert_histogram(
        &sum,
        "{{schema:0 count:25 sum:4.4 z_bucket:7 z_bucket_w:0.001 buckets:[3 8 5 3 1] n_buckets:[3 11 11 2 3 18]}}",
    );
}

#[test]
fn rate_with_zero_bucket_and_negative_buckets_at_schema_1() {
    let s = series(
        "{{schema:1 count:12 sum:18.4 z_bucket:2 z_bucket_w:0.001 buckets:[1 2 0 1 1] n_buckets:[1 2 0 1 1]}}+{{schema:1 count:9 sum:18.4 z_bucket:1 z_bucket_w:0.001 buckets:[1 1 0 1 1] n_buckets:[1 1 0 1 1]}}x100",
    );
    assert_histogram(
        &rate(&s, 15 * SEC, 5 * MIN, 45 * SEC),
        "{{schema:1 count:0.6 sum:1.2266666666666652 z_bucket:0.06666666666666667 z_bucket_w:0.001 buckets:[0.06666666666666667 0.06666666666666667 0 0.06666666666666667 0.06666666666666667] n_buckets:[0.06666666666666667 0.06666666666666667 0 0.06666666666666667 0.06666666666666667]}}",
    );
}

#[test]
fn increase_across_a_reset_inside_one_bucket() {
    let s = series(
        "{{schema:0 count:4 sum:5 buckets:[1 2 1]}} {{schema:0 count:5 sum:6 buckets:[1 1 3]}} {{schema:0 count:6 sum:7 buckets:[1 2 3]}}",
    );
    let x = increase(&s, 5 * MIN, 10 * MIN, 15 * MIN);
    assert_histogram(&x, "{{count:9 sum:10.5 buckets:[1.5 3 4.5]}}");
    assert_close(x.count(), 9.0);
    assert_close(x.sum(), 10.5);
}

#[test]
fn rate_of_gauge_histograms_and_of_a_constant_histogram() {
    let s = series(
        "{{schema:0 sum:1 count:1 buckets:[1] counter_reset_hint:gauge}} {{schema:0 sum:2 count:2 buckets:[2] counter_reset_hint:gauge}} {{schema:0 sum:3 count:3 buckets:[3] counter_reset_hint:gauge}}",
    );
    let want =
        "{{count:0.03333333333333333 sum:0.03333333333333333 buckets:[0.03333333333333333]}}";
    assert_histogram(&rate(&s, 30 * SEC, 30 * SEC, MIN), want);
    assert_histogram(&rate(&s, 30 * SEC, MIN, 90 * SEC), want);

    let s = series("{{schema:0 sum:1 count:1 buckets:[1 1 1]}}x4");
    let r = rate(&s, MIN, 5 * MIN, 5 * MIN);
    assert_histogram(&r, "{{schema:0 sum:0 count:0}}");
    assert!(r.avg().is_nan());
    assert_close(r.count(), 0.0);
    assert!(r.fraction(0.0, 1.0).is_nan());
    assert!(r.quantile(1.0).is_nan());
}

#[test]
fn a_single_sample_has_no_rate() {
    let s = series("{{schema:0 sum:1 count:1 buckets:[1]}}");
    assert!(range_fn(&s, MIN, MIN, 5 * MIN, true, true).is_none());
}

#[test]
fn counter_histograms_are_not_extrapolated_below_zero() {
    let s = series(
        "{{schema:0 count:15 sum:25 buckets:[5 10]}} {{schema:0 count:2490 sum:75 buckets:[15 2475]}}x55",
    );
    for (t, range, want) in [
        (
            55 * MIN,
            90 * MIN,
            "{{count:2490 sum:50.303030303030305 buckets:[10.06060606060606 2479.939393939394]}}",
        ),
        (
            54 * MIN + 30 * SEC,
            90 * MIN,
            "{{count:2512.9166666666665 sum:50.76599326599326 buckets:[10.153198653198652 2502.7634680134674]}}",
        ),
        (
            55 * MIN,
            55 * MIN + 15 * SEC,
            "{{count:2486.25 sum:50.227272727272734 buckets:[10.045454545454547 2476.2045454545455]}}",
        ),
        (
            54 * MIN + 30 * SEC,
            54 * MIN + 45 * SEC,
            "{{count:2509.375 sum:50.69444444444444 buckets:[10.13888888888889 2499.236111111111]}}",
        ),
    ] {
        assert_histogram(&increase(&s, MIN, t, range), want);
    }
}

#[test]
fn rate_restarts_at_a_late_counter_reset() {
    let s = series(
        "{{schema:0 sum:1 count:0 buckets:[1 1 1]}} {{schema:0 sum:1 count:2 buckets:[1 1 1]}} {{schema:0 sum:1 count:3 buckets:[1 1 1]}}  {{schema:0 sum:1 count:2 buckets:[1 1 1]}}",
    );
    assert_close(rate(&s, MIN, 5 * MIN, 5 * MIN).count(), 0.0175);
}

#[test]
fn counter_resets_are_detected_as_prometheus_detects_them() {
    let before = h("{{schema:1 count:4 sum:5 z_bucket:1 z_bucket_w:0.001 buckets:[1 1 1]}}");
    // More of everything: no reset.
    let after = h("{{schema:1 count:6 sum:7 z_bucket:1 z_bucket_w:0.001 buckets:[1 2 2]}}");
    assert!(!after.detect_reset(&before));
    // A bucket went down, or disappeared while populated.
    let lower = h("{{schema:1 count:6 sum:7 z_bucket:1 z_bucket_w:0.001 buckets:[2 0 4]}}");
    assert!(lower.detect_reset(&before));
    let gone = h("{{schema:1 count:6 sum:7 z_bucket:1 z_bucket_w:0.001 buckets:[5]}}");
    assert!(gone.detect_reset(&before));
    // Higher resolution or a smaller zero bucket: a reset.
    let finer = h("{{schema:2 count:6 sum:7 z_bucket:1 z_bucket_w:0.001 buckets:[1 1 1]}}");
    assert!(finer.detect_reset(&before));
    let narrower = h("{{schema:1 count:6 sum:7 z_bucket:1 z_bucket_w:0.0001 buckets:[1 1 1]}}");
    assert!(narrower.detect_reset(&before));
    // Lower resolution: schema-1 buckets 1 and 2 merge into schema-0 bucket 1.
    let coarser = h("{{schema:0 count:6 sum:7 z_bucket:1 z_bucket_w:0.001 buckets:[1 2]}}");
    assert!(
        h("{{schema:0 count:6 sum:7 z_bucket:1 z_bucket_w:0.001 buckets:[2 1]}}")
            .detect_reset(&before)
    );
    assert!(!coarser.detect_reset(&before));
    // A wider zero bucket that swallows the empty buckets near zero: no reset; one that
    // cuts through a populated bucket: a reset.
    let near_zero =
        h("{{schema:0 count:3 sum:1 z_bucket:1 z_bucket_w:0.25 offset:-1 buckets:[1 1]}}");
    let wider = h("{{schema:0 count:3 sum:1 z_bucket:2 z_bucket_w:0.5 offset:0 buckets:[1]}}");
    assert!(!wider.detect_reset(&near_zero));
    let cutting = h("{{schema:0 count:3 sum:1 z_bucket:2 z_bucket_w:0.7 offset:0 buckets:[1]}}");
    assert!(cutting.detect_reset(&near_zero));
    // The producer's hint wins.
    let mut hinted = lower.clone();
    hinted.hint = CounterResetHint::NotReset;
    assert!(!hinted.detect_reset(&before));
}

#[test]
fn subtracting_reconciles_zero_buckets_of_different_widths() {
    // The wider zero bucket takes the buckets of the other histogram that lie inside it.
    let mut wide = h("{{schema:0 count:5 sum:5 z_bucket:3 z_bucket_w:0.5 buckets:[2]}}");
    let narrow = h("{{schema:0 count:4 sum:4 z_bucket:1 z_bucket_w:0.25 offset:-1 buckets:[1 2]}}");
    wide.sub(&narrow);
    assert_histogram(
        &wide,
        "{{schema:0 count:1 sum:1 z_bucket:1 z_bucket_w:0.5 buckets:[0]}}",
    );
}

#[test]
fn stddev_and_stdvar_take_each_bucket_at_its_geometric_mean() {
    // {1, 2, 3, 4} at schema 2.
    let low_res = h("{{schema:2 count:4 sum:10 buckets:[1 0 0 0 1 0 0 1 1]}}");
    assert_close(low_res.stddev(), 1.0787993180043811);
    assert_close(low_res.stdvar(), 1.163807968526718);
    // {-10 x 10}: one negative bucket.
    let negative = h("{{schema:0 count:10 sum:-100 z_bucket:0 n_buckets:[0 0 0 0 10]}}");
    assert_close(negative.stddev(), 1.3137084989848);
    assert_close(negative.stdvar(), 1.725830020304794);
    // {-50, -8, 0, 3, 8, 9}: both sides and the zero bucket; a NaN or infinite sum.
    let both = "count:7 z_bucket:1 buckets:[0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 1 \
                0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1] n_buckets:[0 0 0 \
                0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 \
                0 0 0 1]";
    let finite = h(&format!("{{{{schema:3 sum:62 {both}}}}}"));
    assert_close(finite.stddev(), 42.94723640026);
    assert_close(finite.stdvar(), 1844.4651144196398);
    assert!(
        h(&format!("{{{{schema:3 sum:NaN {both}}}}}"))
            .stdvar()
            .is_nan()
    );
    assert_eq!(
        h(&format!("{{{{schema:3 sum:Inf {both}}}}}")).stddev(),
        f64::INFINITY
    );
    assert!(h("{{}}").stdvar().is_nan());
}

#[test]
fn equality_compares_layout_counts_and_sum_bit_for_bit() {
    let a = h("{{schema:0 count:3 sum:NaN z_bucket:1 z_bucket_w:0.001 buckets:[1 0 1]}}");
    assert!(a.same_as(&a.clone()));
    // An empty bucket is no difference; a moved, rescaled or recounted one is.
    assert!(a.same_as(&h(
        "{{schema:0 count:3 sum:NaN z_bucket:1 z_bucket_w:0.001 buckets:[1 0 1 0]}}"
    )));
    for other in [
        "{{schema:1 count:3 sum:NaN z_bucket:1 z_bucket_w:0.001 buckets:[1 0 1]}}",
        "{{schema:0 count:3 sum:0 z_bucket:1 z_bucket_w:0.001 buckets:[1 0 1]}}",
        "{{schema:0 count:3 sum:NaN z_bucket:1 z_bucket_w:0.01 buckets:[1 0 1]}}",
        "{{schema:0 count:3 sum:NaN z_bucket:1 z_bucket_w:0.001 buckets:[1 1]}}",
        "{{schema:0 count:3 sum:NaN z_bucket:1 z_bucket_w:0.001 n_buckets:[1 0 1]}}",
    ] {
        assert!(!a.same_as(&h(other)), "{other}");
    }
}
