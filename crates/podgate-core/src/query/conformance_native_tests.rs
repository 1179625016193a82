//! Cases from Prometheus's own PromQL test data for native histograms
//! (`promql/promqltest/testdata/native_histograms.test`, Prometheus 3.16) that fit one pod's
//! scrapes: the series are loaded as `load <step>` loads them (one scrape per step), the
//! queries evaluated by the scrape language, and the whole result vector compared with
//! Prometheus's. Left out: custom-bucket histograms (schema -53, which the exposition cannot
//! carry), subqueries, `@`, range queries, the trim operators `</` and `>/`, and functions
//! the scrape language refuses (`changes`, `timestamp`, `absent`, `count_values`,
//! `histogram_quantiles`). Annotations (Prometheus's warnings) are not compared; where a
//! warning comes with no result, the result here is empty too.
#![allow(
    clippy::approx_constant,
    reason = "the expected values are Prometheus's, as its test data writes them"
)]

use super::test_load::Want::{F, H};
use super::test_load::{check, load};

const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;

#[test]
fn an_incrementing_histogram_its_functions_and_its_rate() {
    let series = [(
        "incr_histogram",
        "{{schema:0 sum:4 count:4 buckets:[1 2 1]}}+{{sum:2 count:1 buckets:[1] offset:1}}x10",
    )];
    let queries = [
        "histogram_count(incr_histogram)",
        "rate(incr_histogram[10m])",
    ];
    let store = load(&queries, 5 * MIN, &series, 5 * MIN);
    let at = 5 * MIN;
    check(
        &store,
        "histogram_count(incr_histogram)",
        at,
        &[("{}", F(5.0))],
    );
    check(
        &store,
        "histogram_sum(incr_histogram)",
        at,
        &[("{}", F(6.0))],
    );
    check(
        &store,
        "histogram_avg(incr_histogram)",
        at,
        &[("{}", F(1.2))],
    );
    check(
        &store,
        "histogram_fraction(1, 2, incr_histogram)",
        at,
        &[("{}", F(0.6))],
    );
    check(
        &store,
        "histogram_quantile(0.5, incr_histogram)",
        at,
        &[("{}", F(1.414213562373095))],
    );

    let store = load(&queries, 5 * MIN, &series, 50 * MIN);
    let at = 50 * MIN;
    check(
        &store,
        "incr_histogram",
        at,
        &[(
            "incr_histogram{}",
            H("{{count:14 sum:24 buckets:[1 12 1]}}"),
        )],
    );
    check(
        &store,
        "histogram_count(incr_histogram)",
        at,
        &[("{}", F(14.0))],
    );
    check(
        &store,
        "histogram_sum(incr_histogram)",
        at,
        &[("{}", F(24.0))],
    );
    check(
        &store,
        "histogram_avg(incr_histogram)",
        at,
        &[("{}", F(1.7142857142857142))],
    );
    check(
        &store,
        "histogram_fraction(1, 2, incr_histogram)",
        at,
        &[("{}", F(0.8571428571428571))],
    );
    check(
        &store,
        "histogram_quantile(0.5, incr_histogram)",
        at,
        &[("{}", F(1.414213562373095))],
    );
    check(
        &store,
        "rate(incr_histogram[10m])",
        at,
        &[(
            "{}",
            H(
                "{{count:0.0033333333333333335 sum:0.006666666666666667 offset:1 buckets:[0.0033333333333333335]}}",
            ),
        )],
    );
    check(
        &store,
        "histogram_quantile(0.5, rate(incr_histogram[10m]))",
        at,
        &[("{}", F(1.414213562373095))],
    );
}

#[test]
fn sums_of_histograms_and_of_their_last_samples() {
    let series = [
        (
            "incr_sum_histogram{number=\"1\"}",
            "{{schema:0 sum:0 count:0 buckets:[1]}}+{{schema:0 sum:1 count:1 buckets:[1]}}x10",
        ),
        (
            "incr_sum_histogram{number=\"2\"}",
            "{{schema:0 sum:0 count:0 buckets:[1]}}+{{schema:0 sum:2 count:1 buckets:[1]}}x10",
        ),
    ];
    let queries = ["histogram_sum(sum(last_over_time(incr_sum_histogram[5m])))"];
    let store = load(&queries, 5 * MIN, &series, 50 * MIN);
    check(
        &store,
        "histogram_sum(sum(incr_sum_histogram))",
        50 * MIN,
        &[("{}", F(30.0))],
    );
    check(&store, queries[0], 50 * MIN, &[("{}", F(30.0))]);
}

#[test]
fn rate_with_zero_and_negative_buckets() {
    let series = [(
        "histogram_rate",
        "{{schema:1 count:12 sum:18.4 z_bucket:2 z_bucket_w:0.001 buckets:[1 2 0 1 1] \
         n_buckets:[1 2 0 1 1]}}+{{schema:1 count:9 sum:18.4 z_bucket:1 z_bucket_w:0.001 \
         buckets:[1 1 0 1 1] n_buckets:[1 1 0 1 1]}}x100",
    )];
    let query = "rate(histogram_rate[45s])";
    let store = load(&[query], 15 * SEC, &series, 5 * MIN);
    check(
        &store,
        query,
        5 * MIN,
        &[(
            "{}",
            H(
                "{{schema:1 count:0.6 sum:1.2266666666666652 z_bucket:0.06666666666666667 \
               z_bucket_w:0.001 buckets:[0.06666666666666667 0.06666666666666667 0 \
               0.06666666666666667 0.06666666666666667] n_buckets:[0.06666666666666667 \
               0.06666666666666667 0 0.06666666666666667 0.06666666666666667]}}",
            ),
        )],
    );
}

#[test]
fn count_sum_stddev_stdvar_and_quantiles_of_one_histogram() {
    let series = [
        (
            "histogram_count_sum_2",
            "{{schema:0 count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] \
             n_buckets:[2 3 0 1 4]}}x1",
        ),
        (
            "histogram_stddev_stdvar_2",
            "{{schema:8 count:10 sum:10 buckets:[1 2 3 4]}}x1",
        ),
        (
            "histogram_stddev_stdvar_4",
            "{{schema:0 count:10 sum:-112946 z_bucket:0 n_buckets:[0 0 1 1 1 0 1 1 0 0 3 0 0 \
             0 1 0 0 1]}}x1",
        ),
        (
            "histogram_quantile_1",
            "{{schema:0 count:12 sum:100 z_bucket:2 z_bucket_w:0.001 buckets:[2 3 0 1 4]}}x1",
        ),
    ];
    let store = load(&[], 10 * MIN, &series, 10 * MIN);
    let at = 10 * MIN;
    for (query, want) in [
        ("histogram_count(histogram_count_sum_2)", 24.0),
        ("histogram_sum(histogram_count_sum_2)", 100.0),
        (
            "histogram_stddev(histogram_stddev_stdvar_2)",
            0.0048960313898237465,
        ),
        (
            "histogram_stdvar(histogram_stddev_stdvar_2)",
            2.3971123370139447e-05,
        ),
        (
            "histogram_stddev(histogram_stddev_stdvar_4)",
            27556.344499842,
        ),
        (
            "histogram_stdvar(histogram_stddev_stdvar_4)",
            759352122.1939945,
        ),
        (
            "histogram_quantile(1.001, histogram_quantile_1)",
            f64::INFINITY,
        ),
        ("histogram_quantile(1, histogram_quantile_1)", 16.0),
        (
            "histogram_quantile(0.99, histogram_quantile_1)",
            15.67072476139083,
        ),
        (
            "histogram_quantile(0.9, histogram_quantile_1)",
            12.99603834169977,
        ),
        (
            "histogram_quantile(0.6, histogram_quantile_1)",
            4.594793419988138,
        ),
        (
            "histogram_quantile(0.5, histogram_quantile_1)",
            1.5874010519681994,
        ),
        ("histogram_quantile(0.1, histogram_quantile_1)", 0.0006),
        ("histogram_quantile(0, histogram_quantile_1)", 0.0),
        (
            "histogram_quantile(-1, histogram_quantile_1)",
            f64::NEG_INFINITY,
        ),
    ] {
        check(&store, query, at, &[("{}", F(want))]);
    }
}

#[test]
fn multiplying_and_dividing_by_numbers() {
    let series = [
        (
            "histogram_mul_div",
            "{{schema:0 count:30 sum:33 z_bucket:3 z_bucket_w:0.001 buckets:[3 3 3] \
             n_buckets:[6 6 6]}}x1",
        ),
        ("float_series_3", "3+0x1"),
        ("float_series_0", "0+0x1"),
    ];
    let store = load(&[], 10 * MIN, &series, 10 * MIN);
    let times3 = "{{schema:0 count:90 sum:99 z_bucket:9 z_bucket_w:0.001 buckets:[9 9 9] \
                  n_buckets:[18 18 18]}}";
    let negated = "{{schema:0 count:-30 sum:-33 z_bucket:-3 z_bucket_w:0.001 \
                   buckets:[-3 -3 -3] n_buckets:[-6 -6 -6]}}";
    let third = "{{schema:0 count:10 sum:11 z_bucket:1 z_bucket_w:0.001 buckets:[1 1 1] \
                 n_buckets:[2 2 2]}}";
    let zero = "{{schema:0 count:0 sum:0 z_bucket:0 z_bucket_w:0.001 buckets:[0 0 0] \
                n_buckets:[0 0 0]}}";
    let infinite = "{{schema:0 count:Inf sum:Inf z_bucket_w:0.001 z_bucket:Inf}}";
    for (query, want) in [
        ("histogram_mul_div*3", times3),
        ("histogram_mul_div*-1", negated),
        ("-histogram_mul_div", negated),
        (
            "histogram_mul_div*-3",
            "{{schema:0 count:-90 sum:-99 z_bucket:-9 z_bucket_w:0.001 buckets:[-9 -9 -9] \
             n_buckets:[-18 -18 -18]}}",
        ),
        ("3*histogram_mul_div", times3),
        ("histogram_mul_div*float_series_3", times3),
        ("float_series_3*histogram_mul_div", times3),
        ("histogram_mul_div/3", third),
        (
            "histogram_mul_div/-3",
            "{{schema:0 count:-10 sum:-11 z_bucket:-1 z_bucket_w:0.001 buckets:[-1 -1 -1] \
             n_buckets:[-2 -2 -2]}}",
        ),
        ("histogram_mul_div/float_series_3", third),
        ("histogram_mul_div*0", zero),
        ("0*histogram_mul_div", zero),
        ("histogram_mul_div*float_series_0", zero),
        ("float_series_0*histogram_mul_div", zero),
        ("histogram_mul_div/0", infinite),
        ("histogram_mul_div/float_series_0", infinite),
        (
            "histogram_mul_div*0/0",
            "{{schema:0 count:NaN sum:NaN z_bucket_w:0.001 z_bucket:NaN}}",
        ),
    ] {
        check(&store, query, 10 * MIN, &[("{}", H(want))]);
    }
    // Operators that do not apply to a histogram give nothing (Prometheus: an info).
    for query in [
        "histogram_mul_div*histogram_mul_div",
        "histogram_mul_div/histogram_mul_div",
        "float_series_3/histogram_mul_div",
        "0/histogram_mul_div",
    ] {
        check(&store, query, 10 * MIN, &[]);
    }
}

#[test]
fn floats_and_histograms_do_not_add() {
    let series = [
        (
            "histogram_sample",
            "{{schema:0 count:24 sum:100 z_bucket:4 z_bucket_w:0.001 buckets:[2 3 0 1 4] \
             n_buckets:[2 3 0 1 4]}}x1",
        ),
        ("float_sample", "0x1"),
    ];
    let store = load(&[], 10 * MIN, &series, 10 * MIN);
    for query in [
        "float_sample+histogram_sample",
        "histogram_sample+float_sample",
        "float_sample-histogram_sample",
        "histogram_sample-float_sample",
    ] {
        check(&store, query, 10 * MIN, &[]);
    }
}

#[test]
fn increase_across_a_reset_seen_in_one_bucket_only() {
    let series = [(
        "reset_in_bucket",
        "{{schema:0 count:4 sum:5 buckets:[1 2 1]}} {{schema:0 count:5 sum:6 buckets:[1 1 3]}} \
         {{schema:0 count:6 sum:7 buckets:[1 2 3]}}",
    )];
    let query = "increase(reset_in_bucket[15m])";
    let store = load(&[query], 5 * MIN, &series, 10 * MIN);
    check(
        &store,
        query,
        10 * MIN,
        &[("{}", H("{{count:9 sum:10.5 buckets:[1.5 3 4.5]}}"))],
    );
    check(
        &store,
        "histogram_count(increase(reset_in_bucket[15m]))",
        10 * MIN,
        &[("{}", F(9.0))],
    );
    check(
        &store,
        "histogram_sum(increase(reset_in_bucket[15m]))",
        10 * MIN,
        &[("{}", F(10.5))],
    );
}

#[test]
fn the_rate_of_a_constant_histogram_has_no_observations() {
    let series = [(
        "const_histogram",
        "{{schema:0 sum:1 count:1 buckets:[1 1 1]}}x4",
    )];
    let query = "rate(const_histogram[5m])";
    let store = load(&[query], MIN, &series, 5 * MIN);
    let at = 5 * MIN;
    check(
        &store,
        query,
        at,
        &[("{}", H("{{schema:0 sum:0 count:0}}"))],
    );
    for (query, want) in [
        ("histogram_avg(rate(const_histogram[5m]))", f64::NAN),
        ("histogram_count(rate(const_histogram[5m]))", 0.0),
        ("histogram_sum(rate(const_histogram[5m]))", 0.0),
        (
            "histogram_fraction(0.0, 1.0, rate(const_histogram[5m]))",
            f64::NAN,
        ),
        (
            "histogram_count(rate(const_histogram[5m])) == 0.0 or \
             histogram_fraction(0.0, 1.0, rate(const_histogram[5m])) * \
             histogram_count(rate(const_histogram[5m]))",
            0.0,
        ),
        (
            "histogram_quantile(1.0, rate(const_histogram[5m]))",
            f64::NAN,
        ),
        ("histogram_stddev(rate(const_histogram[5m]))", f64::NAN),
        ("histogram_stdvar(rate(const_histogram[5m]))", f64::NAN),
    ] {
        check(&store, query, at, &[("{}", F(want))]);
    }
}

#[test]
fn sum_by_group_drops_a_group_of_floats_and_histograms() {
    let series = [
        ("metric{group=\"just-floats\", series=\"1\"}", "2"),
        ("metric{group=\"just-floats\", series=\"2\"}", "3"),
        (
            "metric{group=\"just-exponential-histograms\", series=\"1\"}",
            "{{sum:3 count:4 buckets:[1 2 1]}}",
        ),
        (
            "metric{group=\"just-exponential-histograms\", series=\"2\"}",
            "{{sum:2 count:3 buckets:[1 1 1]}}",
        ),
        ("metric{group=\"floats-and-histograms\", series=\"1\"}", "2"),
        (
            "metric{group=\"floats-and-histograms\", series=\"2\"}",
            "{{sum:2 count:3 buckets:[1 1 1]}}",
        ),
    ];
    let store = load(&["metric"], MIN, &series, 0);
    check(
        &store,
        "sum by (group) (metric)",
        0,
        &[
            ("{group=\"just-floats\"}", F(5.0)),
            (
                "{group=\"just-exponential-histograms\"}",
                H("{{sum:5 count:7 buckets:[2 3 2]}}"),
            ),
        ],
    );
}

#[test]
fn sum_count_and_avg_of_histograms_with_compensated_summation() {
    let series = [
        (
            "histogram_sum{idx=\"0\"}",
            "{{schema:0 count:25 sum:3.1 z_bucket:4 z_bucket_w:0.001 buckets:[1 2 0 1 1] \
             n_buckets:[2 4 0 0 1 9]}}x1",
        ),
        (
            "histogram_sum{idx=\"1\"}",
            "{{schema:0 count:41 sum:1e100 z_bucket:5 z_bucket_w:0.001 buckets:[1 3 1 2 1 1 1] \
             n_buckets:[0 1 4 2 7 0 0 0 0 5 5 2]}}x1",
        ),
        (
            "histogram_sum{idx=\"2\"}",
            "{{schema:0 count:41 sum:-1e100 z_bucket:5 z_bucket_w:0.001 buckets:[1 3 1 2 1 1 1] \
             n_buckets:[0 1 4 2 7 0 0 0 0 5 5 2]}}x1",
        ),
        (
            "histogram_sum{idx=\"3\"}",
            "{{schema:1 count:0 sum:1.3 z_bucket:3 z_bucket_w:0.001 buckets:[2 4 2 3 2 2] \
             n_buckets:[1 2 5 3 8 1 1 1 1 6 3]}}x1",
        ),
        ("histogram_sum_float{idx=\"0\"}", "42.0x1"),
    ];
    let store = load(
        &["histogram_sum", "{idx=\"0\"}"],
        10 * MIN,
        &series,
        10 * MIN,
    );
    let at = 10 * MIN;
    check(
        &store,
        "sum(histogram_sum)",
        at,
        &[(
            "{}",
            H(
                "{{schema:0 count:107 sum:4.4 z_bucket:17 z_bucket_w:0.001 buckets:[5 14 7 7 3 2 \
               2] n_buckets:[3 13 19 6 17 18 0 0 0 10 10 4]}}",
            ),
        )],
    );
    // A float and a histogram in one group: no result (Prometheus: a warning).
    check(&store, "sum({idx=\"0\"})", at, &[]);
    check(
        &store,
        "sum(histogram_sum{idx=\"0\"} + ignoring(idx) histogram_sum{idx=\"3\"})",
        at,
        &[(
            "{}",
            H(
                "{{schema:0 count:25 sum:4.4 z_bucket:7 z_bucket_w:0.001 buckets:[3 8 5 3 1] \
               n_buckets:[3 11 11 2 3 18]}}",
            ),
        )],
    );
    check(&store, "count(histogram_sum)", at, &[("{}", F(4.0))]);
    check(
        &store,
        "avg(histogram_sum)",
        at,
        &[(
            "{}",
            H(
                "{{schema:0 count:26.75 sum:1.1 z_bucket:4.25 z_bucket_w:0.001 buckets:[1.25 3.5 \
               1.75 1.75 0.75 0.5 0.5] n_buckets:[0.75 3.25 4.75 1.5 4.25 4.5 0 0 0 2.5 2.5 \
               1]}}",
            ),
        )],
    );
}

#[test]
fn avg_switches_to_an_incremental_mean_before_overflowing() {
    let series = [
        (
            "histogram_avg_incremental{idx=\"0\"}",
            "{{schema:0 count:1.7976931348623157e+308 sum:5.30921651659898 z_bucket:1.78264e50 \
             z_bucket_w:0.001 buckets:[1.78264E+50 1.78264E+215 1.78264E+219 3363.5121756487] \
             n_buckets:[1178.20696291113 731.697776280323 715.201503759399 1386.11378876781 \
             855.572553278132]}}x1",
        ),
        (
            "histogram_avg_incremental{idx=\"1\"}",
            "{{schema:0 count:1e308 sum:0.961118537914768 z_bucket:0.76342771 z_bucket_w:0.001 \
             buckets:[0.76342771 0.76342771 0.76342771 195.70084087969] \
             n_buckets:[421.30382970055 0 450441.779]}}x1",
        ),
        (
            "histogram_avg_incremental{idx=\"2\"}",
            "{{schema:0 count:1e-6 sum:1.62091361305318 z_bucket:1.9592258 z_bucket_w:0.001 \
             buckets:[1.9592258 1.9592258 1.9592258 1135.74692279] n_buckets:[0 4504.41779 \
             588.599358265103 40.3760942760943]}}x1",
        ),
        (
            "histogram_avg_incremental{idx=\"3\"}",
            "{{schema:0 count:1e-6 sum:0.865089463758091 z_bucket:7.69805412 z_bucket_w:0.001 \
             buckets:[2.258E+220 2.258E+220 2.3757689E+217 1078.68071312804] \
             n_buckets:[349.905284031261 0 0 0.161173466838949 588.599358]}}x1",
        ),
        (
            "histogram_avg_incremental{idx=\"4\"}",
            "{{schema:0 count:1e-6 sum:0.323055185914577 z_bucket:458.90154 z_bucket_w:0.001 \
             buckets:[7.69805412 7.69805412 2.258E+220 3173.28218135701]}}x1",
        ),
        (
            "histogram_avg_incremental{idx=\"5\"}",
            "{{schema:0 count:1e-6 sum:0.951811357687154 z_bucket:1.78264e50 z_bucket_w:0.001 \
             buckets:[458.90154 458.90154 7.69805412 2178.35] n_buckets:[2054.92644438789 \
             844.560108898123]}}x1",
        ),
        (
            "histogram_avg_incremental{idx=\"6\"}",
            "{{schema:0 count:1e-6 sum:0 z_bucket:5 z_bucket_w:0.001 buckets:[0 0 1.78264E+219 \
             376.770478890989]}}x1",
        ),
        (
            "histogram_avg_incremental{idx=\"7\"}",
            "{{schema:0 count:1e-6 sum:0 z_bucket:0 z_bucket_w:0.001 buckets:[0 0 458.90154 \
             250325.5] n_buckets:[0 0.0000000011353 0 608.697257]}}x1",
        ),
    ];
    let store = load(&["histogram_avg_incremental"], 10 * MIN, &series, 10 * MIN);
    check(
        &store,
        "avg(histogram_avg_incremental)",
        10 * MIN,
        &[(
            "{}",
            H(
                "{{schema:0 count:3.497116418577895e+307 sum:1.2539005843658437 z_bucket:4.4566e49 \
               z_bucket_w:0.001 buckets:[2.8225e+219 2.822522283e+219 3.271129711125e+219 \
               32728.442914086805] n_buckets:[500.5428151288539 760.0844593974477 \
               56468.19748275306 254.4185391888429 180.5214889097665]}}",
            ),
        )],
    );
}

#[test]
fn subtracting_histograms_of_different_schemas() {
    let h0 = "{{schema:0 count:41 sum:2345.6 z_bucket:5 z_bucket_w:0.001 buckets:[1 3 1 2 1 1 1] \
              n_buckets:[0 1 4 2 7 0 0 0 0 5 5 2]}}x1";
    let h1 = |schema: i32| {
        format!(
            "{{{{schema:{schema} count:11 sum:1234.5 z_bucket:3 z_bucket_w:0.001 buckets:[0 2 1] \
             n_buckets:[0 0 3 2]}}}}x1"
        )
    };
    let (s0, s1) = (h1(0), h1(1));
    let series = [
        ("histogram_sub_1{idx=\"0\"}", h0),
        ("histogram_sub_1{idx=\"1\"}", s0.as_str()),
        ("histogram_sub_2{idx=\"0\"}", h0),
        ("histogram_sub_2{idx=\"1\"}", s1.as_str()),
        ("histogram_sub_3{idx=\"0\"}", s1.as_str()),
        ("histogram_sub_3{idx=\"1\"}", h0),
    ];
    let store = load(&[], 10 * MIN, &series, 10 * MIN);
    for (name, want) in [
        (
            "histogram_sub_1",
            "{{schema:0 count:30 sum:1111.1 z_bucket:2 z_bucket_w:0.001 buckets:[1 1 0 2 1 1 1] \
             n_buckets:[0 1 1 0 7 0 0 0 0 5 5 2]}}",
        ),
        (
            "histogram_sub_2",
            "{{schema:0 count:30 sum:1111.1 z_bucket:2 z_bucket_w:0.001 buckets:[1 0 1 2 1 1 1] \
             n_buckets:[0 -2 2 2 7 0 0 0 0 5 5 2]}}",
        ),
        (
            "histogram_sub_3",
            "{{schema:0 count:-30 sum:-1111.1 z_bucket:-2 z_bucket_w:0.001 buckets:[-1 0 -1 -2 \
             -1 -1 -1] n_buckets:[0 2 -2 -2 -7 0 0 0 0 -5 -5 -2]}}",
        ),
    ] {
        let query = format!("{name}{{idx=\"0\"}} - ignoring(idx) {name}{{idx=\"1\"}}");
        check(&store, &query, 10 * MIN, &[("{}", H(want))]);
    }
}

#[test]
fn negation_subtraction_sum_and_avg_of_counter_histograms() {
    let series = [
        (
            "metric{id=\"1\"}",
            "{{schema:0 sum:4 count:4 buckets:[1 2 1]}}x10",
        ),
        (
            "metric{id=\"2\"}",
            "{{schema:0 sum:4 count:4 buckets:[1 2 1]}}x10",
        ),
    ];
    let store = load(&["metric"], 5 * MIN, &series, 5 * MIN);
    let at = 5 * MIN;
    let negative = "{{count:-4 sum:-4 counter_reset_hint:gauge buckets:[-1 -2 -1]}}";
    let both = |h: &'static str| [("{id=\"1\"}", H(h)), ("{id=\"2\"}", H(h))];
    check(&store, "-metric", at, &both(negative));
    check(
        &store,
        "metric - 0.5 * metric",
        at,
        &both("{{count:2 sum:2 counter_reset_hint:gauge buckets:[0.5 1 0.5]}}"),
    );
    check(&store, "metric - 2 * metric", at, &both(negative));
    check(
        &store,
        "sum(metric)",
        at,
        &[("{}", H("{{count:8 sum:8 buckets:[2 4 2]}}"))],
    );
    check(
        &store,
        "avg(metric)",
        at,
        &[("{}", H("{{count:4 sum:4 buckets:[1 2 1]}}"))],
    );
}

#[test]
fn sums_and_means_over_series_and_over_time() {
    let series = [
        (
            "metric{type=\"gauge\"}",
            "{{sum:4 count:4 counter_reset_hint:gauge buckets:[1 2 1]}}+{{sum:2 count:3 \
             counter_reset_hint:gauge buckets:[1 1 1]}}x10",
        ),
        (
            "metric{type=\"counter\"}",
            "{{sum:6 count:5 buckets:[2 2 1]}}+{{sum:2 count:3 buckets:[1 1 1]}}x10",
        ),
        (
            "metric{type=\"counter_with_reset\"}",
            "{{sum:6 count:5 buckets:[2 2 1]}}+{{sum:2 count:3 buckets:[1 1 1]}}x5 {{sum:4 \
             count:4 buckets:[1 2 1]}}+{{sum:2 count:3 buckets:[1 1 1]}}x5",
        ),
        (
            "mixed",
            "{{sum:6 count:5 buckets:[2 2 1]}}+{{sum:2 count:3 buckets:[1 1 1]}}x4 {{sum:4 \
             count:4 counter_reset_hint:gauge buckets:[1 2 1]}} {{sum:6 count:5 buckets:[2 2 \
             1]}}+{{sum:2 count:3 buckets:[1 1 1]}}x4 {{sum:4 count:4 buckets:[1 2 1]}}+{{sum:2 \
             count:3 buckets:[1 1 1]}}x5",
        ),
    ];
    let queries = ["metric", "sum_over_time(mixed[10m])"];
    let cases: [(i64, &str, &str); 16] = [
        (3, "sum(metric)", "{{count:41 sum:34 buckets:[14 15 12]}}"),
        (
            3,
            "avg(metric)",
            "{{count:13.666666666666668 sum:11.333333333333334 buckets:[4.666666666666667 5 4]}}",
        ),
        (
            5,
            "sum_over_time(mixed[3m])",
            "{{count:35 sum:30 buckets:[12 13 10]}}",
        ),
        (
            5,
            "avg_over_time(mixed[3m])",
            "{{count:11.666666666666666 sum:10 buckets:[4 4.333333333333334 3.333333333333333]}}",
        ),
        (6, "sum(metric)", "{{count:49 sum:38 buckets:[16 18 15]}}"),
        (
            6,
            "avg(metric)",
            "{{count:16.333333333333332 sum:12.666666666666666 buckets:[5.333333333333334 6 5]}}",
        ),
        (
            14,
            "sum_over_time(mixed[10m])",
            "{{count:93 sum:82 buckets:[31 36 26]}}",
        ),
        (
            14,
            "avg_over_time(mixed[10m])",
            "{{count:9.3 sum:8.2 buckets:[3.1 3.6 2.6]}}",
        ),
        (
            3,
            "sum(metric{type=~\"counter.*\"})",
            "{{count:28 sum:24 buckets:[10 10 8]}}",
        ),
        (
            3,
            "avg(metric{type=~\"counter.*\"})",
            "{{count:14 sum:12 buckets:[5 5 4]}}",
        ),
        (
            3,
            "sum_over_time(mixed[3m])",
            "{{count:33 sum:30 buckets:[12 12 9]}}",
        ),
        (
            3,
            "avg_over_time(mixed[3m])",
            "{{count:11 sum:10 buckets:[4 4 3]}}",
        ),
        (
            6,
            "sum(metric{type=~\"counter.*\"})",
            "{{count:27 sum:22 buckets:[9 10 8]}}",
        ),
        (
            6,
            "avg(metric{type=~\"counter.*\"})",
            "{{count:13.5 sum:11 buckets:[4.5 5 4]}}",
        ),
        (
            15,
            "sum_over_time(mixed[10m])",
            "{{count:105 sum:90 buckets:[35 40 30]}}",
        ),
        (
            15,
            "avg_over_time(mixed[10m])",
            "{{count:10.5 sum:9 buckets:[3.5 4 3]}}",
        ),
    ];
    for (minutes, query, want) in cases {
        let store = load(&queries, MIN, &series, minutes * MIN);
        check(&store, query, minutes * MIN, &[("{}", H(want))]);
    }
    for (minutes, query, want) in [
        (6, "histogram_count(sum(metric))", 49.0),
        (6, "histogram_count(avg(metric))", 16.333333333333332),
        (14, "histogram_count(sum_over_time(mixed[10m]))", 93.0),
        (14, "histogram_count(avg_over_time(mixed[10m]))", 9.3),
        (11, "histogram_count(sum_over_time(mixed[2m]))", 21.0),
        (11, "histogram_count(avg_over_time(mixed[2m]))", 10.5),
    ] {
        let store = load(&queries, MIN, &series, minutes * MIN);
        check(&store, query, minutes * MIN, &[("{}", F(want))]);
    }
}

#[test]
fn a_native_histogram_and_classic_buckets_of_one_name_are_both_left_out() {
    let series = [
        ("mixedHistogram{le=\"0.1\"}", "0+2x10"),
        ("mixedHistogram{le=\"1\"}", "0+3x10"),
        (
            "mixedHistogram",
            "{{schema:0 count:10 sum:50 buckets:[1 2 3]}}",
        ),
    ];
    let store = load(&["mixedHistogram"], MIN, &series, 0);
    check(&store, "histogram_quantile(0.5, mixedHistogram)", 0, &[]);
}

#[test]
fn counts_after_counter_resets() {
    let series = [
        (
            "reset{timing=\"late\"}",
            "{{schema:0 sum:1 count:0 buckets:[1 1 1]}} {{schema:0 sum:1 count:2 buckets:[1 1 \
             1]}} {{schema:0 sum:1 count:3 buckets:[1 1 1]}}  {{schema:0 sum:1 count:2 \
             buckets:[1 1 1]}}",
        ),
        (
            "reset{timing=\"early\"}",
            "{{schema:0 sum:1 count:3 buckets:[1 1 1]}}  {{schema:0 sum:1 count:2 buckets:[1 1 \
             1]}} {{schema:0 sum:1 count:2 buckets:[1 1 1]}} {{schema:0 sum:1 count:3 \
             buckets:[1 1 1]}} ",
        ),
    ];
    let queries = ["sum_over_time(reset[5m])"];
    let store = load(&queries, MIN, &series, 5 * MIN);
    check(
        &store,
        "histogram_count(sum_over_time(reset{timing=\"late\"}[5m]))",
        5 * MIN,
        &[("{timing=\"late\"}", F(7.0))],
    );
    check(
        &store,
        "histogram_count(sum(reset))",
        5 * MIN,
        &[("{}", F(5.0))],
    );
    check(
        &store,
        "histogram_count(avg(reset))",
        5 * MIN,
        &[("{}", F(2.5))],
    );
    check(
        &store,
        "histogram_count(rate(reset{timing=\"late\"}[5m]))",
        5 * MIN,
        &[("{timing=\"late\"}", F(0.0175))],
    );
    let store = load(&queries, MIN, &series, 30 * SEC);
    check(
        &store,
        "histogram_count(sum(reset))",
        30 * SEC,
        &[("{}", F(3.0))],
    );
    check(
        &store,
        "histogram_count(avg(reset))",
        30 * SEC,
        &[("{}", F(1.5))],
    );
}

#[test]
fn histograms_filtered_by_numbers_taken_from_them() {
    let series = [(
        "histogram",
        "{{schema:0 count:10 sum:50 counter_reset_hint:gauge buckets:[1 2 3 4]}}",
    )];
    let store = load(&["histogram"], MIN, &series, MIN);
    check(
        &store,
        "histogram_count(histogram unless histogram_quantile(0.5, histogram) < 3)",
        MIN,
        &[("{}", F(10.0))],
    );
    check(
        &store,
        "histogram_quantile(0.5, histogram unless histogram_count(histogram) == 0)",
        MIN,
        &[("{}", F(3.1748021039363987))],
    );
}

#[test]
fn histograms_compared_for_equality() {
    let series = [
        ("hist_eq_a", "{{schema:0 count:4 sum:10 buckets:[1 2 1]}}x5"),
        ("hist_eq_b", "{{schema:0 count:4 sum:10 buckets:[2 1 1]}}x5"),
    ];
    let store = load(&["hist_eq_a", "hist_eq_b"], MIN, &series, 2 * MIN);
    let at = 2 * MIN;
    check(&store, "hist_eq_a == hist_eq_b", at, &[]);
    check(&store, "histogram_count(hist_eq_a == hist_eq_b)", at, &[]);
    check(&store, "histogram_sum(hist_eq_a == hist_eq_b)", at, &[]);
    check(
        &store,
        "histogram_count(hist_eq_a != hist_eq_b)",
        at,
        &[("{}", F(4.0))],
    );
    check(
        &store,
        "histogram_sum(hist_eq_a != hist_eq_b)",
        at,
        &[("{}", F(10.0))],
    );
}

#[test]
fn empty_and_single_histograms() {
    let series = [
        ("empty_histogram", "{{}}"),
        (
            "single_histogram",
            "{{schema:0 sum:5 count:4 buckets:[1 2 1]}}",
        ),
    ];
    let store = load(&[], 5 * MIN, &series, MIN);
    check(
        &store,
        "empty_histogram",
        MIN,
        &[("empty_histogram{}", H("{{}}"))],
    );
    for (query, want) in [
        ("histogram_count(empty_histogram)", 0.0),
        ("histogram_sum(empty_histogram)", 0.0),
        ("histogram_avg(empty_histogram)", f64::NAN),
        ("histogram_fraction(-Inf, +Inf, empty_histogram)", f64::NAN),
        ("histogram_fraction(0, 8, empty_histogram)", f64::NAN),
        ("histogram_count(single_histogram)", 4.0),
        ("histogram_sum(single_histogram)", 5.0),
        ("histogram_avg(single_histogram)", 1.25),
        ("histogram_fraction(1, 2, single_histogram)", 0.5),
        ("histogram_fraction(0, 8, single_histogram)", 1.0),
        (
            "histogram_quantile(0.5, single_histogram)",
            1.414213562373095,
        ),
    ] {
        check(&store, query, MIN, &[("{}", F(want))]);
    }
}
