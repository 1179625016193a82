//! Cases from Prometheus's own PromQL test data (`promql/promqltest/testdata/functions.test`
//! and `histograms.test`, 3.x with left-open range windows): the same samples must give the
//! same numbers here. Series are loaded like `load <step>` does: value `i` at `i × step`,
//! as scrapes up to the evaluation time.

use super::*;

struct Def {
    name: &'static str,
    labels: &'static [(&'static str, &'static str)],
    values: Vec<f64>,
}

/// `start+step x n` from the test language: n+1 values.
fn ramp(start: f64, step: f64, n: usize) -> Vec<f64> {
    (0..=n).map(|i| start + step * i as f64).collect()
}

fn def(
    name: &'static str,
    labels: &'static [(&'static str, &'static str)],
    values: Vec<f64>,
) -> Def {
    Def {
        name,
        labels,
        values,
    }
}

const MIN: i64 = 60_000;

type Sample<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// A store holding `defs` sampled every `step_ms` up to `now` (what the store would hold when
/// evaluated at `now`), for every query in `queries`.
fn load(queries: &[&str], step_ms: i64, defs: &[Def], now: i64) -> SeriesStore {
    let compiled: Vec<Query> = queries.iter().map(|q| parse(q).unwrap()).collect();
    let mut store = SeriesStore::new(Interest::new(&compiled), StoreLimits::default());
    let steps = defs.iter().map(|d| d.values.len()).max().unwrap_or(0);
    for i in (0..steps).take_while(|i| *i as i64 * step_ms <= now) {
        let samples: Vec<Sample<'_>> = defs
            .iter()
            .filter_map(|d| d.values.get(i).map(|v| (d.name, d.labels, *v)))
            .collect();
        store.ingest_samples(i as i64 * step_ms, samples).unwrap();
    }
    store
}

fn eval_at(store: &SeriesStore, query: &str, now: i64) -> QueryValue {
    parse(query).unwrap().eval(store, now).unwrap()
}

fn assert_value(store: &SeriesStore, query: &str, now: i64, want: f64) {
    match eval_at(store, query, now) {
        QueryValue::Number(got) => assert!(
            (got - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{query} at {now}: got {got}, want {want}"
        ),
        other => panic!("{query} at {now}: got {other:?}, want {want}"),
    }
}

fn assert_no_data(store: &SeriesStore, query: &str, now: i64) {
    let got = eval_at(store, query, now);
    assert!(
        matches!(got, QueryValue::NoData(_)),
        "{query} at {now}: got {got:?}"
    );
}

#[test]
fn increase_with_extrapolation_and_zero_clamp() {
    let mut bar = ramp(0.0, 18.0, 5);
    bar.extend(ramp(0.0, 18.0, 5));
    let defs = [
        def(
            "http_requests_total",
            &[("path", "/foo")],
            ramp(0.0, 10.0, 10),
        ),
        def("http_requests_total", &[("path", "/bar")], bar),
        def(
            "http_requests_total",
            &[("path", "/dings")],
            ramp(10.0, 10.0, 10),
        ),
        def(
            "http_requests_total",
            &[("path", "/bumms")],
            ramp(1.0, 10.0, 10),
        ),
    ];
    let queries = [
        "increase(http_requests_total{path=\"/foo\"}[50m])",
        "increase(http_requests_total{path=\"/bar\"}[50m])",
        "increase(http_requests_total{path=\"/dings\"}[50m])",
        "increase(http_requests_total{path=\"/bumms\"}[50m])",
        "increase(http_requests_total{path=\"/foo\"}[100m])",
        "increase(http_requests_total{path=\"/bar\"}[100m])",
        "increase(http_requests_total{path=\"/dings\"}[100m])",
        "increase(http_requests_total{path=\"/bumms\"}[100m])",
    ];
    let store = load(&queries, 5 * MIN, &defs, 50 * MIN);
    let want = [100.0, 160.0, 100.0, 100.0, 100.0, 162.0, 105.0, 101.0];
    for (query, want) in queries.iter().zip(want) {
        assert_value(&store, query, 50 * MIN, want);
    }
}

#[test]
fn increase_across_a_counter_reset() {
    let defs = [def(
        "http_requests_total",
        &[("path", "/foo")],
        vec![0.0, 1.0, 2.0, 3.0, 2.0, 3.0, 4.0],
    )];
    let query = "increase(http_requests_total[30m])";
    let store = load(&[query], 5 * MIN, &defs, 30 * MIN);
    assert_value(&store, query, 30 * MIN, 7.0);
}

#[test]
fn rate_with_resets_in_the_middle_and_at_the_end() {
    let mut middle = ramp(0.0, 27.0, 4);
    middle.extend(ramp(0.0, 27.0, 5));
    let mut end = ramp(0.0, 10.0, 9);
    end.extend([0.0, 10.0]);
    let defs = [
        def("testcounter_reset_middle_total", &[], middle),
        def("testcounter_reset_end_total", &[], end),
        def("calculate_rate_window_total", &[], ramp(0.0, 80.0, 10)),
    ];
    let queries = [
        "rate(testcounter_reset_middle_total[50m])",
        "rate(testcounter_reset_end_total[5m])",
        "rate(testcounter_reset_end_total[6m])",
        "rate(calculate_rate_window_total[50m])",
    ];
    let store = load(&queries, 5 * MIN, &defs, 50 * MIN);
    assert_value(&store, queries[0], 50 * MIN, 0.08);
    // One point in (45m, 50m]: no result.
    assert_no_data(&store, queries[1], 50 * MIN);
    assert_value(&store, queries[2], 50 * MIN, 0.0);
    assert_value(&store, queries[3], 50 * MIN, 0.26666666666666666);
}

#[test]
fn rate_zero_cutoff() {
    let defs = [
        def("c", &[("start", "0m")], ramp(0.0, 240.0, 10)),
        def("c", &[("start", "1m")], ramp(60.0, 240.0, 10)),
        def("c", &[("start", "2m")], ramp(120.0, 240.0, 10)),
        def("c", &[("start", "3m")], ramp(180.0, 240.0, 10)),
        def("c", &[("start", "4m")], ramp(240.0, 240.0, 10)),
        def("c", &[("start", "5m")], ramp(300.0, 240.0, 10)),
    ];
    let starts = ["0m", "1m", "2m", "3m", "4m", "5m"];
    let queries: Vec<String> = starts
        .iter()
        .map(|s| format!("rate(c{{start=\"{s}\"}}[20m])"))
        .collect();
    let refs: Vec<&str> = queries.iter().map(String::as_str).collect();
    let store = load(&refs, 4 * MIN, &defs, 10 * MIN);
    for (query, want) in refs.iter().zip([0.5, 0.55, 0.6, 0.6, 0.6, 0.6]) {
        assert_value(&store, query, 10 * MIN, want);
    }
    let store = load(&refs, 4 * MIN, &defs, 50 * MIN);
    for query in &refs {
        assert_value(&store, query, 50 * MIN, 0.6);
    }
}

fn testhistogram() -> Vec<Def> {
    vec![
        def(
            "testhistogram_bucket",
            &[("le", "0.1"), ("start", "positive")],
            ramp(0.0, 5.0, 10),
        ),
        def(
            "testhistogram_bucket",
            &[("le", ".2"), ("start", "positive")],
            ramp(0.0, 7.0, 10),
        ),
        def(
            "testhistogram_bucket",
            &[("le", "1e0"), ("start", "positive")],
            ramp(0.0, 11.0, 10),
        ),
        def(
            "testhistogram_bucket",
            &[("le", "+Inf"), ("start", "positive")],
            ramp(0.0, 12.0, 10),
        ),
        def(
            "testhistogram_bucket",
            &[("le", "-.2"), ("start", "negative")],
            ramp(0.0, 1.0, 10),
        ),
        def(
            "testhistogram_bucket",
            &[("le", "-0.1"), ("start", "negative")],
            ramp(0.0, 2.0, 10),
        ),
        def(
            "testhistogram_bucket",
            &[("le", "0.3"), ("start", "negative")],
            ramp(0.0, 2.0, 10),
        ),
        def(
            "testhistogram_bucket",
            &[("le", "+Inf"), ("start", "negative")],
            ramp(0.0, 3.0, 10),
        ),
    ]
}

#[test]
fn histogram_quantile_classic_buckets() {
    let cases = [
        (0.0, 0.0, -0.2),
        (1.0, 1.0, 0.3),
        (0.2, 0.048, -0.2),
        (0.5, 0.15, -0.15),
        (0.8, 0.72, 0.3),
    ];
    for (q, positive, negative) in cases {
        for (start, want) in [("positive", positive), ("negative", negative)] {
            for inner in [
                format!("testhistogram_bucket{{start=\"{start}\"}}"),
                format!("rate(testhistogram_bucket{{start=\"{start}\"}}[10m])"),
            ] {
                let query = format!("histogram_quantile({q}, {inner})");
                let store = load(&[&query], 5 * MIN, &testhistogram(), 50 * MIN);
                assert_value(&store, &query, 50 * MIN, want);
            }
        }
    }
}

#[test]
fn histogram_quantile_mid_bucket() {
    let defs = [
        def("testhistogram2_bucket", &[("le", "0")], ramp(0.0, 0.0, 10)),
        def("testhistogram2_bucket", &[("le", "2")], ramp(0.0, 1.0, 10)),
        def("testhistogram2_bucket", &[("le", "4")], ramp(0.0, 2.0, 10)),
        def("testhistogram2_bucket", &[("le", "6")], ramp(0.0, 3.0, 10)),
        def(
            "testhistogram2_bucket",
            &[("le", "+Inf")],
            ramp(0.0, 3.0, 10),
        ),
    ];
    for (q, want) in [(1.0 / 6.0, 1.0), (0.5, 3.0), (5.0 / 6.0, 5.0)] {
        let instant = format!("histogram_quantile({q}, testhistogram2_bucket)");
        let rate = format!("histogram_quantile({q}, rate(testhistogram2_bucket[15m]))");
        let store = load(&[&instant], 5 * MIN, &defs, 7 * MIN);
        assert_value(&store, &instant, 7 * MIN, want);
        let store = load(&[&rate], 5 * MIN, &defs, 47 * MIN);
        assert_value(&store, &rate, 47 * MIN, want);
    }
}

#[test]
fn histogram_quantile_sums_over_all_series() {
    let defs = [
        def(
            "request_duration_seconds_bucket",
            &[("job", "job1"), ("instance", "ins1"), ("le", "0.1")],
            ramp(0.0, 1.0, 10),
        ),
        def(
            "request_duration_seconds_bucket",
            &[("job", "job1"), ("instance", "ins1"), ("le", "0.2")],
            ramp(0.0, 3.0, 10),
        ),
        def(
            "request_duration_seconds_bucket",
            &[("job", "job1"), ("instance", "ins1"), ("le", "+Inf")],
            ramp(0.0, 4.0, 10),
        ),
        def(
            "request_duration_seconds_bucket",
            &[("job", "job1"), ("instance", "ins2"), ("le", "0.1")],
            ramp(0.0, 2.0, 10),
        ),
        def(
            "request_duration_seconds_bucket",
            &[("job", "job1"), ("instance", "ins2"), ("le", "0.2")],
            ramp(0.0, 5.0, 10),
        ),
        def(
            "request_duration_seconds_bucket",
            &[("job", "job1"), ("instance", "ins2"), ("le", "+Inf")],
            ramp(0.0, 6.0, 10),
        ),
        def(
            "request_duration_seconds_bucket",
            &[("job", "job2"), ("instance", "ins1"), ("le", "0.1")],
            ramp(0.0, 3.0, 10),
        ),
        def(
            "request_duration_seconds_bucket",
            &[("job", "job2"), ("instance", "ins1"), ("le", "0.2")],
            ramp(0.0, 4.0, 10),
        ),
        def(
            "request_duration_seconds_bucket",
            &[("job", "job2"), ("instance", "ins1"), ("le", "+Inf")],
            ramp(0.0, 6.0, 10),
        ),
        def(
            "request_duration_seconds_bucket",
            &[("job", "job2"), ("instance", "ins2"), ("le", "0.1")],
            ramp(0.0, 4.0, 10),
        ),
        def(
            "request_duration_seconds_bucket",
            &[("job", "job2"), ("instance", "ins2"), ("le", "0.2")],
            ramp(0.0, 7.0, 10),
        ),
        def(
            "request_duration_seconds_bucket",
            &[("job", "job2"), ("instance", "ins2"), ("le", "+Inf")],
            ramp(0.0, 9.0, 10),
        ),
    ];
    for (query, want) in [
        (
            "histogram_quantile(0.3, rate(request_duration_seconds_bucket[10m]))",
            0.075,
        ),
        (
            "histogram_quantile(0.5, rate(request_duration_seconds_bucket[10m]))",
            0.1277777777777778,
        ),
        (
            "histogram_quantile(0.3, rate(request_duration_seconds_bucket{job=\"job1\"}[10m]))",
            0.1,
        ),
        (
            "histogram_quantile(0.3, rate(request_duration_seconds_bucket{job=\"job2\"}[10m]))",
            0.0642857142857143,
        ),
        (
            "histogram_quantile(0.5, rate(request_duration_seconds_bucket{job=\"job1\"}[10m]))",
            0.14,
        ),
        (
            "histogram_quantile(0.5, rate(request_duration_seconds_bucket{job=\"job2\"}[10m]))",
            0.1125,
        ),
        (
            "histogram_quantile(0.5, rate(request_duration_seconds_bucket{instance=\"ins1\"}[10m]))",
            0.1333333333,
        ),
        (
            "histogram_quantile(0.3, rate(request_duration_seconds_bucket{job=\"job2\", instance=\"ins2\"}[10m]))",
            0.0675,
        ),
    ] {
        let store = load(&[query], 5 * MIN, &defs, 50 * MIN);
        match eval_at(&store, query, 50 * MIN) {
            QueryValue::Number(got) => {
                assert!((got - want).abs() < 1e-9, "{query}: got {got}, want {want}")
            }
            other => panic!("{query}: {other:?}"),
        }
    }
}

#[test]
fn histogram_quantile_nonmonotonic_and_mixed_bounds() {
    let defs = [
        def("nonmonotonic_bucket", &[("le", "0.1")], ramp(0.0, 2.0, 10)),
        def("nonmonotonic_bucket", &[("le", "1")], ramp(0.0, 1.0, 10)),
        def("nonmonotonic_bucket", &[("le", "10")], ramp(0.0, 5.0, 10)),
        def("nonmonotonic_bucket", &[("le", "100")], ramp(0.0, 4.0, 10)),
        def("nonmonotonic_bucket", &[("le", "1000")], ramp(0.0, 9.0, 10)),
        def("nonmonotonic_bucket", &[("le", "+Inf")], ramp(0.0, 8.0, 10)),
        def(
            "mixed_bucket",
            &[("instance", "ins1"), ("le", "0.1")],
            ramp(0.0, 1.0, 10),
        ),
        def(
            "mixed_bucket",
            &[("instance", "ins1"), ("le", "0.2")],
            ramp(0.0, 1.0, 10),
        ),
        def(
            "mixed_bucket",
            &[("instance", "ins1"), ("le", "2e-1")],
            ramp(0.0, 1.0, 10),
        ),
        def(
            "mixed_bucket",
            &[("instance", "ins1"), ("le", "2.0e-1")],
            ramp(0.0, 1.0, 10),
        ),
        def(
            "mixed_bucket",
            &[("instance", "ins1"), ("le", "+Inf")],
            ramp(0.0, 4.0, 10),
        ),
        def(
            "mixed_bucket",
            &[("instance", "ins2"), ("le", "+inf")],
            ramp(0.0, 0.0, 10),
        ),
        def(
            "mixed_bucket",
            &[("instance", "ins2"), ("le", "+Inf")],
            ramp(0.0, 0.0, 10),
        ),
    ];
    for (query, want) in [
        ("histogram_quantile(0.01, nonmonotonic_bucket)", 0.0045),
        ("histogram_quantile(0.5, nonmonotonic_bucket)", 8.5),
        ("histogram_quantile(0.99, nonmonotonic_bucket)", 979.75),
        (
            "histogram_quantile(0.5, rate(mixed_bucket{instance=\"ins1\"}[10m]))",
            0.15,
        ),
        (
            "histogram_quantile(0.75, rate(mixed_bucket{instance=\"ins1\"}[10m]))",
            0.2,
        ),
        (
            "histogram_quantile(1, rate(mixed_bucket{instance=\"ins1\"}[10m]))",
            0.2,
        ),
    ] {
        let store = load(&[query], 5 * MIN, &defs, 50 * MIN);
        assert_value(&store, query, 50 * MIN, want);
    }
    // Prometheus returns NaN (one distinct bound: +Inf); here it is "no data" with the reason.
    let query = "histogram_quantile(0.5, rate(mixed_bucket{instance=\"ins2\"}[10m]))";
    let store = load(&[query], 5 * MIN, &defs, 50 * MIN);
    assert_eq!(
        eval_at(&store, query, 50 * MIN),
        QueryValue::NoData(NoData::TooFewBuckets)
    );
}
