//! The scrape language over native histograms: what each construct does with a histogram
//! (Prometheus's rules), and the result, no-data reason or error a rule sees when a query
//! cannot give one number.

use std::f64::consts::SQRT_2;

use super::test_load::Want::{F, H};
use super::test_load::{check, load};
use super::*;

const MIN: i64 = 60_000;

/// `latency` (a native histogram counter growing by one bucket-1 observation a minute) and
/// `requests_total` (a float counter), scraped every minute for 5 minutes.
fn pod() -> SeriesStore {
    load(
        &["rate(latency[5m])", "rate(requests_total[5m])"],
        MIN,
        &[
            (
                "latency{path=\"/a\"}",
                "{{schema:0 count:4 sum:4 buckets:[1 2 1]}}+{{count:1 sum:1.5 buckets:[0 1]}}x5",
            ),
            ("requests_total", "0+60x5"),
        ],
        5 * MIN,
    )
}

fn eval(store: &SeriesStore, query: &str) -> Result<QueryValue, EvalError> {
    parse(query)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .eval(store, 5 * MIN)
}

#[track_caller]
fn number(store: &SeriesStore, query: &str) -> f64 {
    match eval(store, query) {
        Ok(QueryValue::Number(v)) => v,
        other => panic!("{query}: {other:?}"),
    }
}

#[track_caller]
fn no_data(store: &SeriesStore, query: &str) -> NoData {
    match eval(store, query) {
        Ok(QueryValue::NoData(why)) => why,
        other => panic!("{query}: {other:?}"),
    }
}

#[test]
fn a_histogram_as_the_whole_result_is_an_error_that_shows_how_to_take_a_number() {
    let store = pod();
    for query in ["latency", "rate(latency[5m])", "sum(rate(latency[5m])) * 2"] {
        let e = eval(&store, query).expect_err("a histogram is not one number");
        assert!(
            e.message.contains("yields a native histogram")
                && e.message
                    .contains(&format!("histogram_quantile(0.99, {query})")),
            "{query}: {e}"
        );
    }
}

#[test]
fn the_usual_latency_queries_give_one_number() {
    let store = pod();
    // 5 observations in bucket (1,2] over the window of 4 scrapes: rate 1/60 per second.
    let rate = number(&store, "histogram_count(rate(latency[5m]))");
    assert!((rate - 5.0 / 300.0).abs() < 1e-12, "{rate}");
    let p99 = number(&store, "histogram_quantile(0.99, sum(rate(latency[5m])))");
    assert!(p99 > 1.0 && p99 <= 2.0, "{p99}");
    assert_eq!(number(&store, "histogram_count(latency)"), 9.0);
    assert_eq!(number(&store, "histogram_sum(latency)"), 11.5);
    // Buckets [1 7 1] from index 0: one observation in (0.5, 1].
    assert_eq!(
        number(&store, "histogram_fraction(0, 1, latency)"),
        1.0 / 9.0
    );
    // Error ratio style: a histogram's count next to a float counter.
    let ratio = number(
        &store,
        "sum(histogram_count(rate(latency[5m]))) / sum(rate(requests_total[5m]))",
    );
    assert!((ratio - (5.0 / 300.0) / 1.0).abs() < 1e-9, "{ratio}");
}

#[test]
fn range_functions_over_histogram_points() {
    let store = pod();
    let at = 5 * MIN;
    let path = "{path=\"/a\"}";
    check(
        &store,
        "increase(latency[5m])",
        at,
        &[(
            path,
            H("{{count:5 sum:7.5 buckets:[0 5] counter_reset_hint:gauge}}"),
        )],
    );
    // The last two scrapes: one observation a minute.
    check(
        &store,
        "idelta(latency[5m])",
        at,
        &[(path, H("{{count:1 sum:1.5 buckets:[0 1]}}"))],
    );
    check(
        &store,
        "irate(latency[5m])",
        at,
        &[(
            path,
            H("{{count:0.016666666666666666 sum:0.025 buckets:[0 0.016666666666666666]}}"),
        )],
    );
    check(
        &store,
        "count_over_time(latency[5m])",
        at,
        &[(path, F(5.0))],
    );
    check(
        &store,
        "last_over_time(latency[5m])",
        at,
        &[(
            "latency{path=\"/a\"}",
            H("{{count:9 sum:11.5 buckets:[1 7 1]}}"),
        )],
    );
    check(
        &store,
        "sum_over_time(latency[2m])",
        at,
        &[(path, H("{{count:17 sum:21.5 buckets:[2 13 2]}}"))],
    );
    check(
        &store,
        "avg_over_time(latency[2m])",
        at,
        &[(path, H("{{count:8.5 sum:10.75 buckets:[1 6.5 1]}}"))],
    );
    // The float functions skip histograms.
    for query in [
        "max_over_time(latency[5m])",
        "min_over_time(latency[5m])",
        "deriv(latency[5m])",
    ] {
        assert!(
            matches!(no_data(&store, query), NoData::HistogramIgnored { .. }),
            "{query}"
        );
    }
}

#[test]
fn a_window_of_floats_and_histograms_gives_nothing_where_they_do_not_combine() {
    // The series was a float counter, then became a native histogram.
    let store = load(
        &["rate(x[5m])"],
        MIN,
        &[(
            "x",
            "1 2 3 {{count:1 sum:1 buckets:[1]}} {{count:2 sum:2 buckets:[2]}} {{count:3 sum:3 buckets:[3]}}",
        )],
        5 * MIN,
    );
    for query in [
        "histogram_count(rate(x[5m]))",
        "histogram_count(sum_over_time(x[5m]))",
    ] {
        let why = no_data(&store, query);
        assert!(
            matches!(why, NoData::MixedFloatsAndHistograms { .. }),
            "{query}: {why:?}"
        );
        assert!(
            why.to_string()
                .contains("mixes float samples and native histograms")
        );
    }
    // The last two samples are histograms; the float ones are older.
    assert_eq!(number(&store, "histogram_count(idelta(x[5m]))"), 1.0);
    // count_over_time counts both; last_over_time takes the newest.
    assert_eq!(number(&store, "count_over_time(x[5m])"), 5.0);
    assert_eq!(
        number(&store, "histogram_count(last_over_time(x[5m]))"),
        3.0
    );
    // max_over_time reads the floats alone.
    assert_eq!(number(&store, "max_over_time(x[5m])"), 3.0);
}

#[test]
fn aggregations_sum_and_count_histograms_and_skip_them_otherwise() {
    let store = pod();
    assert_eq!(number(&store, "count(latency)"), 1.0);
    assert_eq!(number(&store, "group(latency)"), 1.0);
    assert_eq!(number(&store, "histogram_count(sum(latency))"), 9.0);
    assert_eq!(number(&store, "histogram_count(avg(latency * 2))"), 18.0);
    for query in [
        "max(latency)",
        "min(latency)",
        "stddev(latency)",
        "stdvar(latency)",
        "quantile(0.5, latency)",
        "topk(1, latency)",
        "bottomk(1, latency)",
        "max by (path) (latency)",
    ] {
        let why = no_data(&store, query);
        assert!(
            matches!(&why, NoData::HistogramIgnored { expr } if expr == query),
            "{query}: {why:?}"
        );
    }
    // A histogram and a float in one group of sum: nothing, and why.
    let why = no_data(&store, "sum({__name__=~\"latency|requests_total\"})");
    assert!(
        matches!(why, NoData::MixedFloatsAndHistograms { .. }),
        "{why:?}"
    );
    // In groups of their own, each kind is summed.
    assert_eq!(
        number(
            &store,
            "histogram_count(sum by (__name__) ({__name__=~\"latency|requests_total\"}))"
        ),
        9.0
    );
}

#[test]
fn operators_on_histograms_follow_prometheus() {
    let store = pod();
    assert_eq!(number(&store, "histogram_count(latency * 2)"), 18.0);
    assert_eq!(number(&store, "histogram_count(2 * latency)"), 18.0);
    assert_eq!(number(&store, "histogram_count(latency / 3)"), 3.0);
    assert_eq!(number(&store, "histogram_count(-latency)"), -9.0);
    assert_eq!(number(&store, "histogram_count(latency + latency)"), 18.0);
    assert_eq!(number(&store, "histogram_count(latency - latency)"), 0.0);
    assert_eq!(number(&store, "histogram_count(latency == latency)"), 9.0);
    assert_eq!(number(&store, "latency == bool latency"), 1.0);
    assert_eq!(number(&store, "latency != bool latency"), 0.0);
    for query in [
        "latency + 1",
        "latency > 0.5",
        "latency > bool 0.5",
        "1 / latency",
        "latency ^ 2",
        "latency * latency",
        "latency > latency",
    ] {
        let why = no_data(&store, query);
        assert!(
            matches!(&why, NoData::HistogramOperand { .. }),
            "{query}: {why:?}"
        );
        assert!(why.to_string().contains("histogram_quantile(0.9, x) > 0.5"));
    }
    // A number taken from the histogram compares as usual.
    assert_eq!(number(&store, "histogram_count(latency) > 5"), 9.0);
}

#[test]
fn float_functions_skip_histograms_and_histogram_functions_skip_floats() {
    let store = pod();
    for query in ["abs(latency)", "clamp_min(latency, 0)", "round(latency)"] {
        let why = no_data(&store, query);
        assert!(
            matches!(&why, NoData::HistogramIgnored { expr } if expr == query),
            "{query}: {why:?}"
        );
    }
    // scalar() of a histogram is NaN, reported as no data with the reason.
    let why = no_data(&store, "scalar(latency) + 1");
    assert!(matches!(why, NoData::HistogramIgnored { .. }), "{why:?}");
    for query in [
        "histogram_count(requests_total)",
        "histogram_sum(rate(requests_total[5m]))",
        "histogram_avg(requests_total)",
        "histogram_stddev(requests_total)",
    ] {
        let why = no_data(&store, query);
        assert!(
            matches!(&why, NoData::NotNativeHistogram { expr } if expr == query),
            "{query}: {why:?}"
        );
        assert!(why.to_string().contains("_bucket series"), "{why}");
    }
}

#[test]
fn an_empty_histogram_has_no_quantile_and_says_why() {
    let store = load(
        &[],
        MIN,
        &[("idle_seconds", "{{schema:3 count:0 sum:0}}")],
        0,
    );
    let q = parse("histogram_quantile(0.9, idle_seconds)").unwrap();
    assert_eq!(
        q.eval(&store, 0).unwrap(),
        QueryValue::NoData(NoData::NoObservations)
    );
    let q = parse("histogram_count(idle_seconds)").unwrap();
    assert_eq!(q.eval(&store, 0).unwrap(), QueryValue::Number(0.0));
}

#[test]
fn histogram_quantile_reads_native_and_classic_histograms_side_by_side() {
    let store = load(
        &[],
        MIN,
        &[
            ("rpc_seconds", "{{schema:0 count:4 sum:5 buckets:[1 2 1]}}"),
            ("rpc_seconds_bucket{le=\"1\"}", "1"),
            ("rpc_seconds_bucket{le=\"2\"}", "3"),
            ("rpc_seconds_bucket{le=\"+Inf\"}", "4"),
        ],
        0,
    );
    // Different names: two histograms, one result each, as in Prometheus.
    check(
        &store,
        "histogram_quantile(0.5, {__name__=~\"rpc_seconds|rpc_seconds_bucket\"})",
        0,
        &[("{}", F(SQRT_2)), ("{}", F(1.5))],
    );
    let e = eval_at_zero(
        &store,
        "histogram_quantile(0.5, {__name__=~\"rpc_seconds|rpc_seconds_bucket\"})",
    );
    assert!(e.is_err(), "two results are not one number: {e:?}");
    // After rate() both lose their name and pair up: Prometheus uses neither.
    let store = load(
        &["rate(rpc_seconds[2m])"],
        MIN,
        &[
            (
                "rpc_seconds",
                "{{schema:0 count:4 sum:5 buckets:[1 2 1]}}+{{schema:0 count:4 sum:5 buckets:[1 2 1]}}x1",
            ),
            ("rpc_seconds_bucket{le=\"1\"}", "1+1x1"),
            ("rpc_seconds_bucket{le=\"+Inf\"}", "4+4x1"),
        ],
        MIN,
    );
    let q = parse(
        "histogram_quantile(0.5, sum by (le) (rate({__name__=~\"rpc_seconds|rpc_seconds_bucket\"}[2m])))",
    )
    .unwrap();
    match q.eval(&store, MIN).unwrap() {
        QueryValue::NoData(why @ NoData::NativeAndClassic { .. }) => {
            assert!(why.to_string().contains("select one of them"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

fn eval_at_zero(store: &SeriesStore, query: &str) -> Result<QueryValue, EvalError> {
    parse(query).unwrap().eval(store, 0)
}

#[test]
fn the_earlier_histogram_quantile_form_stays_for_classic_buckets_only() {
    // Two native series: PromQL's grouping (one result per series), so the query must
    // aggregate them.
    let store = load(
        &[],
        MIN,
        &[
            (
                "lat{path=\"/a\"}",
                "{{schema:0 count:4 sum:5 buckets:[1 2 1]}}",
            ),
            (
                "lat{path=\"/b\"}",
                "{{schema:0 count:4 sum:5 buckets:[1 2 1]}}",
            ),
        ],
        0,
    );
    let e = eval_at_zero(&store, "histogram_quantile(0.5, lat)").expect_err("two series");
    assert!(e.message.contains("2 series"), "{e}");
    assert!(matches!(
        eval_at_zero(&store, "histogram_quantile(0.5, sum(lat))"),
        Ok(QueryValue::Number(_))
    ));
}
