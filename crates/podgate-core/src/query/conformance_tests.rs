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

// ---------------------------------------------------------------- whole vectors
//
// The cases below compare every element of the result with Prometheus's expected output
// (`operators.test`, `aggregators.test`, `functions.test`, `histograms.test`); a scrape
// variable then takes the one number, but the intermediate vectors must match.

/// `name{b="2", a="1"}` as the evaluator renders labels: sorted, `, `-separated.
fn normalize(labels: &str) -> String {
    let (name, rest) = labels.split_once('{').unwrap_or((labels, "}"));
    let inner = rest.trim_end_matches('}');
    let mut pairs: Vec<String> = inner
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    pairs.sort();
    format!("{}{{{}}}", name.trim(), pairs.join(", "))
}

fn same_value(got: f64, want: f64) -> bool {
    (got.is_nan() && want.is_nan())
        || got == want
        || (got - want).abs() <= 1e-9 * want.abs().max(1.0)
}

/// The query yields exactly `want` (labels → value) at `now`.
fn assert_vector(store: &SeriesStore, query: &str, now: i64, want: &[(&str, f64)]) {
    let got = match parse(query) {
        Ok(q) => match q.eval_vector(store, now) {
            Ok(v) => v,
            Err(e) => panic!("{query}: {e}"),
        },
        Err(e) => panic!("{query}: {e}"),
    };
    let mut want: Vec<(String, f64)> = want.iter().map(|(l, v)| (normalize(l), *v)).collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    let matches = got.len() == want.len()
        && got
            .iter()
            .zip(&want)
            .all(|(g, w)| g.0 == w.0 && same_value(g.1, w.1));
    assert!(matches, "{query} at {now}:\n got  {got:?}\n want {want:?}");
}

/// The query fails to evaluate.
fn assert_eval_error(store: &SeriesStore, query: &str, now: i64) {
    let q = parse(query).unwrap();
    assert!(q.eval_vector(store, now).is_err(), "{query} should fail");
}

/// `load 5m` of operators.test and aggregators.test: http_requests_total over two jobs, two
/// instances and two groups, plus vector_matching_a/b.
fn http_requests() -> Vec<Def> {
    let mut defs = Vec::new();
    let mut step = 10.0;
    for job in ["api-server", "app-server"] {
        for group in ["production", "canary"] {
            for instance in ["0", "1"] {
                let labels: &'static [(&'static str, &'static str)] = Box::leak(Box::new([
                    ("job", job),
                    ("instance", instance),
                    ("group", group),
                ]));
                defs.push(def("http_requests_total", labels, ramp(0.0, step, 10)));
                step += 10.0;
            }
        }
    }
    defs.push(def("vector_matching_a", &[("l", "x")], ramp(0.0, 1.0, 100)));
    defs.push(def("vector_matching_a", &[("l", "y")], ramp(0.0, 2.0, 50)));
    defs.push(def("vector_matching_b", &[("l", "x")], ramp(0.0, 4.0, 25)));
    defs
}

fn store_of(queries: &[&str], step: i64, defs: &[Def], now: i64) -> SeriesStore {
    load(queries, step, defs, now)
}

#[test]
fn operators_arithmetic_precedence_and_unary() {
    let cases: &[(&str, &[(&str, f64)])] = &[
        (
            "SUM(http_requests_total) BY (job) - COUNT(http_requests_total) BY (job)",
            &[
                ("{job=\"api-server\"}", 996.0),
                ("{job=\"app-server\"}", 2596.0),
            ],
        ),
        (
            "2 - SUM(http_requests_total) BY (job)",
            &[
                ("{job=\"api-server\"}", -998.0),
                ("{job=\"app-server\"}", -2598.0),
            ],
        ),
        (
            "-http_requests_total{job=\"api-server\",instance=\"0\",group=\"production\"}",
            &[(
                "{job=\"api-server\",instance=\"0\",group=\"production\"}",
                -100.0,
            )],
        ),
        (
            "+http_requests_total{job=\"api-server\",instance=\"0\",group=\"production\"}",
            &[(
                "http_requests_total{job=\"api-server\",instance=\"0\",group=\"production\"}",
                100.0,
            )],
        ),
        (
            "- - - SUM(http_requests_total) BY (job)",
            &[
                ("{job=\"api-server\"}", -1000.0),
                ("{job=\"app-server\"}", -2600.0),
            ],
        ),
        ("- - - 1", &[("{}", -1.0)]),
        ("-2^---1*3", &[("{}", -1.5)]),
        ("2/-2^---1*3+2", &[("{}", -10.0)]),
        (
            "-10^3 * - SUM(http_requests_total) BY (job) ^ -1",
            &[
                ("{job=\"api-server\"}", 1.0),
                ("{job=\"app-server\"}", 0.38461538461538464),
            ],
        ),
        (
            "SUM(http_requests_total) BY (job) % 3",
            &[("{job=\"api-server\"}", 1.0), ("{job=\"app-server\"}", 2.0)],
        ),
        (
            "SUM(http_requests_total) BY (job) % 0.3",
            &[("{job=\"api-server\"}", 0.1), ("{job=\"app-server\"}", 0.2)],
        ),
        (
            "SUM(http_requests_total) BY (job) % 3 ^ 2",
            &[("{job=\"api-server\"}", 1.0), ("{job=\"app-server\"}", 8.0)],
        ),
        (
            "SUM(http_requests_total) BY (job) % 2 ^ 3 ^ 2",
            &[
                ("{job=\"api-server\"}", 488.0),
                ("{job=\"app-server\"}", 40.0),
            ],
        ),
        (
            "SUM(http_requests_total) BY (job) % 2 ^ 3 ^ 2 ^ 2",
            &[
                ("{job=\"api-server\"}", 1000.0),
                ("{job=\"app-server\"}", 2600.0),
            ],
        ),
        (
            "COUNT(http_requests_total) BY (job) ^ COUNT(http_requests_total) BY (job)",
            &[
                ("{job=\"api-server\"}", 256.0),
                ("{job=\"app-server\"}", 256.0),
            ],
        ),
        (
            "SUM(http_requests_total) BY (job) / 0",
            &[
                ("{job=\"api-server\"}", f64::INFINITY),
                ("{job=\"app-server\"}", f64::INFINITY),
            ],
        ),
        (
            "-1 * http_requests_total{group=\"canary\", instance=\"0\", job=\"api-server\"} / 0",
            &[(
                "{group=\"canary\", instance=\"0\", job=\"api-server\"}",
                f64::NEG_INFINITY,
            )],
        ),
        (
            "0 * http_requests_total{group=\"canary\", instance=\"0\", job=\"api-server\"} % 0",
            &[(
                "{group=\"canary\", instance=\"0\", job=\"api-server\"}",
                f64::NAN,
            )],
        ),
        (
            "(SUM((http_requests_total)) BY (job)) + SUM(http_requests_total) BY (job)",
            &[
                ("{job=\"api-server\"}", 2000.0),
                ("{job=\"app-server\"}", 5200.0),
            ],
        ),
        (
            "http_requests_total{job=\"api-server\", group=\"canary\"} + rate(http_requests_total{job=\"api-server\"}[10m]) * 5 * 60",
            &[
                (
                    "{group=\"canary\", instance=\"0\", job=\"api-server\"}",
                    330.0,
                ),
                (
                    "{group=\"canary\", instance=\"1\", job=\"api-server\"}",
                    440.0,
                ),
            ],
        ),
        (
            "(rate((http_requests_total[25m])) * 25) * 60",
            &[
                (
                    "{group=\"canary\", instance=\"0\", job=\"api-server\"}",
                    150.0,
                ),
                (
                    "{group=\"canary\", instance=\"0\", job=\"app-server\"}",
                    350.0,
                ),
                (
                    "{group=\"canary\", instance=\"1\", job=\"api-server\"}",
                    200.0,
                ),
                (
                    "{group=\"canary\", instance=\"1\", job=\"app-server\"}",
                    400.0,
                ),
                (
                    "{group=\"production\", instance=\"0\", job=\"api-server\"}",
                    50.0,
                ),
                (
                    "{group=\"production\", instance=\"0\", job=\"app-server\"}",
                    249.99999999999997,
                ),
                (
                    "{group=\"production\", instance=\"1\", job=\"api-server\"}",
                    100.0,
                ),
                (
                    "{group=\"production\", instance=\"1\", job=\"app-server\"}",
                    300.0,
                ),
            ],
        ),
    ];
    let queries: Vec<&str> = cases.iter().map(|(q, _)| *q).collect();
    let store = store_of(&queries, 5 * MIN, &http_requests(), 50 * MIN);
    for (query, want) in cases {
        assert_vector(&store, query, 50 * MIN, want);
    }
}

#[test]
fn operators_set_operations_and_matching() {
    let canary_plus_one = [
        (
            "{group=\"canary\", instance=\"0\", job=\"api-server\"}",
            301.0,
        ),
        (
            "{group=\"canary\", instance=\"0\", job=\"app-server\"}",
            701.0,
        ),
    ];
    let canary_1 = [
        (
            "http_requests_total{group=\"canary\", instance=\"1\", job=\"api-server\"}",
            400.0,
        ),
        (
            "http_requests_total{group=\"canary\", instance=\"1\", job=\"app-server\"}",
            800.0,
        ),
    ];
    let ratio = [
        ("{instance=\"0\", job=\"api-server\"}", 3.0),
        ("{instance=\"0\", job=\"app-server\"}", 1.4),
        ("{instance=\"1\", job=\"api-server\"}", 2.0),
        ("{instance=\"1\", job=\"app-server\"}", 1.3333333333333333),
    ];
    let cases: Vec<(&str, Vec<(&str, f64)>)> = vec![
        (
            "http_requests_total{group=\"canary\"} and http_requests_total{instance=\"0\"}",
            vec![
                (
                    "http_requests_total{group=\"canary\", instance=\"0\", job=\"api-server\"}",
                    300.0,
                ),
                (
                    "http_requests_total{group=\"canary\", instance=\"0\", job=\"app-server\"}",
                    700.0,
                ),
            ],
        ),
        (
            "(http_requests_total{group=\"canary\"} + 1) and http_requests_total{instance=\"0\"}",
            canary_plus_one.to_vec(),
        ),
        (
            "(http_requests_total{group=\"canary\"} + 1) and on(instance, job) http_requests_total{instance=\"0\", group=\"production\"}",
            canary_plus_one.to_vec(),
        ),
        (
            "(http_requests_total{group=\"canary\"} + 1) and ignoring(group, job) http_requests_total{instance=\"0\", group=\"production\"}",
            canary_plus_one.to_vec(),
        ),
        (
            "(http_requests_total{group=\"canary\"} + 1) or http_requests_total{instance=\"1\"}",
            vec![
                (
                    "{group=\"canary\", instance=\"0\", job=\"api-server\"}",
                    301.0,
                ),
                (
                    "{group=\"canary\", instance=\"0\", job=\"app-server\"}",
                    701.0,
                ),
                (
                    "{group=\"canary\", instance=\"1\", job=\"api-server\"}",
                    401.0,
                ),
                (
                    "{group=\"canary\", instance=\"1\", job=\"app-server\"}",
                    801.0,
                ),
                (
                    "http_requests_total{group=\"production\", instance=\"1\", job=\"api-server\"}",
                    200.0,
                ),
                (
                    "http_requests_total{group=\"production\", instance=\"1\", job=\"app-server\"}",
                    600.0,
                ),
            ],
        ),
        (
            "(http_requests_total{group=\"canary\"} + 1) or on(instance) (http_requests_total or cpu_count or vector_matching_a)",
            vec![
                (
                    "{group=\"canary\", instance=\"0\", job=\"api-server\"}",
                    301.0,
                ),
                (
                    "{group=\"canary\", instance=\"0\", job=\"app-server\"}",
                    701.0,
                ),
                (
                    "{group=\"canary\", instance=\"1\", job=\"api-server\"}",
                    401.0,
                ),
                (
                    "{group=\"canary\", instance=\"1\", job=\"app-server\"}",
                    801.0,
                ),
                ("vector_matching_a{l=\"x\"}", 10.0),
                ("vector_matching_a{l=\"y\"}", 20.0),
            ],
        ),
        (
            "http_requests_total{group=\"canary\"} unless http_requests_total{instance=\"0\"}",
            canary_1.to_vec(),
        ),
        (
            "http_requests_total{group=\"canary\"} unless on(job) http_requests_total{instance=\"0\"}",
            vec![],
        ),
        (
            "http_requests_total{group=\"canary\"} unless ignoring(group) http_requests_total{instance=\"0\"}",
            canary_1.to_vec(),
        ),
        (
            "http_requests_total{group=\"canary\"} / on(instance,job) http_requests_total{group=\"production\"}",
            ratio.to_vec(),
        ),
        (
            "http_requests_total{group=\"canary\"} / ignoring(group) http_requests_total{group=\"production\"}",
            ratio.to_vec(),
        ),
        (
            "sum(http_requests_total AND ON (dummy) vector(1))",
            vec![("{}", 3600.0)],
        ),
        (
            "count(http_requests_total AND IGNORING (group, instance, job) vector(1))",
            vec![("{}", 8.0)],
        ),
        (
            "SUM(http_requests_total) BY (job) > 1000",
            vec![("{job=\"app-server\"}", 2600.0)],
        ),
        (
            "1000 < SUM(http_requests_total) BY (job)",
            vec![("{job=\"app-server\"}", 2600.0)],
        ),
        (
            "SUM(http_requests_total) BY (job) <= 1000",
            vec![("{job=\"api-server\"}", 1000.0)],
        ),
        (
            "SUM(http_requests_total) BY (job) != 1000",
            vec![("{job=\"app-server\"}", 2600.0)],
        ),
        (
            "SUM(http_requests_total) BY (job) == 1000",
            vec![("{job=\"api-server\"}", 1000.0)],
        ),
        (
            "SUM(http_requests_total) BY (job) == bool 1000",
            vec![("{job=\"api-server\"}", 1.0), ("{job=\"app-server\"}", 0.0)],
        ),
        (
            "SUM(http_requests_total) BY (job) == bool SUM(http_requests_total) BY (job)",
            vec![("{job=\"api-server\"}", 1.0), ("{job=\"app-server\"}", 1.0)],
        ),
        (
            "SUM(http_requests_total) BY (job) != bool SUM(http_requests_total) BY (job)",
            vec![("{job=\"api-server\"}", 0.0), ("{job=\"app-server\"}", 0.0)],
        ),
        ("0 == bool 1", vec![("{}", 0.0)]),
        ("1 == bool 1", vec![("{}", 1.0)]),
        (
            "http_requests_total{job=\"api-server\", instance=\"0\", group=\"production\"} == bool 100",
            vec![(
                "{job=\"api-server\", instance=\"0\", group=\"production\"}",
                1.0,
            )],
        ),
    ];
    let queries: Vec<&str> = cases.iter().map(|(q, _)| *q).collect();
    let store = store_of(&queries, 5 * MIN, &http_requests(), 50 * MIN);
    for (query, want) in &cases {
        assert_vector(&store, query, 50 * MIN, want);
    }
}

#[test]
fn operators_many_to_one_matching_is_checked_before_filtering() {
    let defs = [
        def("many_side", &[("label", "foo"), ("job", "test")], vec![0.0]),
        def("many_side", &[("label", "bar"), ("job", "test")], vec![1.0]),
        def("one_side", &[("job", "test")], vec![1.0]),
    ];
    let queries = [
        "many_side > on(job) one_side",
        "many_side >= on(job) one_side",
        "many_side <= on(job) one_side",
    ];
    let store = load(&queries, 5 * MIN, &defs, 0);
    for query in queries {
        assert_eval_error(&store, query, 0);
    }
}

#[test]
fn operators_group_left_and_group_right() {
    let defs = [
        def(
            "node_var",
            &[("instance", "abc"), ("job", "node")],
            vec![2.0],
        ),
        def(
            "node_role",
            &[("instance", "abc"), ("job", "node"), ("role", "prometheus")],
            vec![1.0],
        ),
        def(
            "node_cpu",
            &[("instance", "abc"), ("job", "node"), ("mode", "idle")],
            vec![3.0],
        ),
        def(
            "node_cpu",
            &[("instance", "abc"), ("job", "node"), ("mode", "user")],
            vec![1.0],
        ),
        def(
            "node_cpu",
            &[("instance", "def"), ("job", "node"), ("mode", "idle")],
            vec![8.0],
        ),
        def(
            "node_cpu",
            &[("instance", "def"), ("job", "node"), ("mode", "user")],
            vec![2.0],
        ),
        def("random", &[("foo", "bar")], vec![1.0]),
        def(
            "threshold",
            &[("instance", "abc"), ("job", "node"), ("target", "a@b.com")],
            vec![0.0],
        ),
    ];
    let role = [("{instance=\"abc\",job=\"node\",role=\"prometheus\"}", 2.0)];
    let shares = [
        ("{instance=\"abc\",job=\"node\",mode=\"idle\"}", 0.75),
        ("{instance=\"abc\",job=\"node\",mode=\"user\"}", 0.25),
        ("{instance=\"def\",job=\"node\",mode=\"idle\"}", 0.80),
        ("{instance=\"def\",job=\"node\",mode=\"user\"}", 0.20),
    ];
    let cases: Vec<(&str, Vec<(&str, f64)>)> = vec![
        (
            "node_role * on (instance) group_right (role) node_var",
            role.to_vec(),
        ),
        (
            "node_var * on (instance) group_left (role) node_role",
            role.to_vec(),
        ),
        (
            "node_var * ignoring (role) group_left (role) node_role",
            role.to_vec(),
        ),
        (
            "node_role * ignoring (role) group_right (role) node_var",
            role.to_vec(),
        ),
        (
            "node_cpu * ignoring (role, mode) group_left (role) node_role",
            vec![
                (
                    "{instance=\"abc\",job=\"node\",mode=\"idle\",role=\"prometheus\"}",
                    3.0,
                ),
                (
                    "{instance=\"abc\",job=\"node\",mode=\"user\",role=\"prometheus\"}",
                    1.0,
                ),
            ],
        ),
        (
            "node_cpu / on (instance) group_left sum by (instance,job)(node_cpu)",
            shares.to_vec(),
        ),
        (
            "sum by (mode, job)(node_cpu) / on (job) group_left sum by (job)(node_cpu)",
            vec![
                ("{job=\"node\",mode=\"idle\"}", 0.7857142857142857),
                ("{job=\"node\",mode=\"user\"}", 0.21428571428571427),
            ],
        ),
        (
            "sum(sum by (mode, job)(node_cpu) / on (job) group_left sum by (job)(node_cpu))",
            vec![("{}", 1.0)],
        ),
        (
            "node_cpu / ignoring (mode) group_left(dummy) sum without (mode)(node_cpu)",
            shares.to_vec(),
        ),
        (
            "sum(sum without (instance)(node_cpu) / ignoring (mode) group_left sum without (instance, mode)(node_cpu))",
            vec![("{}", 1.0)],
        ),
        (
            "node_cpu + on(dummy) group_left(foo) random*0",
            vec![
                (
                    "{instance=\"abc\",job=\"node\",mode=\"idle\",foo=\"bar\"}",
                    3.0,
                ),
                (
                    "{instance=\"abc\",job=\"node\",mode=\"user\",foo=\"bar\"}",
                    1.0,
                ),
                (
                    "{instance=\"def\",job=\"node\",mode=\"idle\",foo=\"bar\"}",
                    8.0,
                ),
                (
                    "{instance=\"def\",job=\"node\",mode=\"user\",foo=\"bar\"}",
                    2.0,
                ),
            ],
        ),
        (
            "node_cpu > on(job, instance) group_left(target) threshold",
            vec![
                (
                    "node_cpu{instance=\"abc\",job=\"node\",mode=\"idle\",target=\"a@b.com\"}",
                    3.0,
                ),
                (
                    "node_cpu{instance=\"abc\",job=\"node\",mode=\"user\",target=\"a@b.com\"}",
                    1.0,
                ),
            ],
        ),
        (
            "node_cpu > on(job, instance) group_left(target) (threshold or on (job, instance) (sum by (job, instance)(node_cpu) * 0 + 1))",
            vec![
                (
                    "node_cpu{instance=\"abc\",job=\"node\",mode=\"idle\",target=\"a@b.com\"}",
                    3.0,
                ),
                (
                    "node_cpu{instance=\"abc\",job=\"node\",mode=\"user\",target=\"a@b.com\"}",
                    1.0,
                ),
                ("node_cpu{instance=\"def\",job=\"node\",mode=\"idle\"}", 8.0),
                ("node_cpu{instance=\"def\",job=\"node\",mode=\"user\"}", 2.0),
            ],
        ),
        (
            "node_cpu % 2",
            vec![
                ("{instance=\"abc\",job=\"node\",mode=\"idle\"}", 1.0),
                ("{instance=\"abc\",job=\"node\",mode=\"user\"}", 1.0),
                ("{instance=\"def\",job=\"node\",mode=\"idle\"}", 0.0),
                ("{instance=\"def\",job=\"node\",mode=\"user\"}", 0.0),
            ],
        ),
    ];
    let queries: Vec<&str> = cases.iter().map(|(q, _)| *q).collect();
    let store = load(&queries, 5 * MIN, &defs, MIN);
    for (query, want) in &cases {
        assert_vector(&store, query, MIN, want);
    }
}

/// aggregators.test's `http_requests` load (the operators' series under another name).
fn aggregator_requests() -> Vec<Def> {
    let mut defs: Vec<Def> = http_requests()
        .into_iter()
        .filter(|d| d.name == "http_requests_total")
        .map(|d| def("http_requests", d.labels, d.values))
        .collect();
    defs.push(def(
        "foo",
        &[
            ("job", "api-server"),
            ("instance", "0"),
            ("region", "europe"),
        ],
        ramp(0.0, 90.0, 10),
    ));
    defs.push(def("foo", &[("job", "api-server")], ramp(0.0, 100.0, 10)));
    defs
}

#[test]
fn aggregators_by_without_and_statistics() {
    let by_group = [
        ("{group=\"canary\"}", 700.0),
        ("{group=\"production\"}", 300.0),
    ];
    let cases: Vec<(&str, Vec<(&str, f64)>)> = vec![
        (
            "SUM BY (group) (http_requests{job=\"api-server\"})",
            by_group.to_vec(),
        ),
        (
            "SUM BY (group) (((http_requests{job=\"api-server\"})))",
            by_group.to_vec(),
        ),
        (
            "sum(http_requests{job=\"api-server\"}) by (group)",
            by_group.to_vec(),
        ),
        (
            "avg by (group) (http_requests{job=\"api-server\"})",
            vec![
                ("{group=\"canary\"}", 350.0),
                ("{group=\"production\"}", 150.0),
            ],
        ),
        (
            "count by (group) (http_requests{job=\"api-server\"})",
            vec![("{group=\"canary\"}", 2.0), ("{group=\"production\"}", 2.0)],
        ),
        (
            "sum without (instance) (http_requests{job=\"api-server\"})",
            vec![
                ("{group=\"canary\",job=\"api-server\"}", 700.0),
                ("{group=\"production\",job=\"api-server\"}", 300.0),
            ],
        ),
        (
            "sum by () (http_requests{job=\"api-server\"})",
            vec![("{}", 1000.0)],
        ),
        (
            "sum(http_requests{job=\"api-server\"})",
            vec![("{}", 1000.0)],
        ),
        (
            "sum without () (http_requests{job=\"api-server\",group=\"production\"})",
            vec![
                (
                    "{group=\"production\",job=\"api-server\",instance=\"0\"}",
                    100.0,
                ),
                (
                    "{group=\"production\",job=\"api-server\",instance=\"1\"}",
                    200.0,
                ),
            ],
        ),
        (
            "sum without (instance) (http_requests{job=\"api-server\"} or foo)",
            vec![
                ("{group=\"canary\",job=\"api-server\"}", 700.0),
                ("{group=\"production\",job=\"api-server\"}", 300.0),
                ("{region=\"europe\",job=\"api-server\"}", 900.0),
                ("{job=\"api-server\"}", 1000.0),
            ],
        ),
        (
            "sum(http_requests) by (job) + min(http_requests) by (job) + max(http_requests) by (job) + avg(http_requests) by (job)",
            vec![
                ("{job=\"app-server\"}", 4550.0),
                ("{job=\"api-server\"}", 1750.0),
            ],
        ),
        ("stddev(http_requests)", vec![("{}", 229.12878474779)]),
        (
            "stddev by (instance)(http_requests)",
            vec![
                ("{instance=\"0\"}", 223.60679774998),
                ("{instance=\"1\"}", 223.60679774998),
            ],
        ),
        ("stdvar(http_requests)", vec![("{}", 52500.0)]),
        (
            "stdvar by (instance)(http_requests)",
            vec![("{instance=\"0\"}", 50000.0), ("{instance=\"1\"}", 50000.0)],
        ),
    ];
    let queries: Vec<&str> = cases.iter().map(|(q, _)| *q).collect();
    let store = load(&queries, 5 * MIN, &aggregator_requests(), 50 * MIN);
    for (query, want) in &cases {
        // stddev's expected values are given to 14 digits.
        if query.starts_with("stddev") {
            let got = parse(query).unwrap().eval_vector(&store, 50 * MIN).unwrap();
            assert_eq!(got.len(), want.len(), "{query}");
            for ((gl, gv), (wl, wv)) in got.iter().zip(want) {
                assert_eq!(gl, &normalize(wl), "{query}");
                assert!((gv - wv).abs() < 1e-9, "{query}: {gv} vs {wv}");
            }
            continue;
        }
        assert_vector(&store, query, 50 * MIN, want);
    }
    // Float precision: identical series have no deviation.
    let same: Vec<Def> = ["0", "1", "2"]
        .iter()
        .map(|i| {
            let labels: &'static [(&'static str, &'static str)] =
                Box::leak(Box::new([("instance", *i)]));
            def("http_requests", labels, ramp(0.0, 1.33, 10))
        })
        .collect();
    let store = load(&["stddev(http_requests)"], 5 * MIN, &same, 50 * MIN);
    assert_vector(&store, "stddev(http_requests)", 50 * MIN, &[("{}", 0.0)]);
    assert_vector(&store, "stdvar(http_requests)", 50 * MIN, &[("{}", 0.0)]);
}

#[test]
fn aggregators_topk_bottomk() {
    let mut defs: Vec<Def> = aggregator_requests()
        .into_iter()
        .filter(|d| d.name == "http_requests")
        .collect();
    defs.push(def(
        "http_requests",
        &[
            ("job", "api-server"),
            ("instance", "2"),
            ("group", "production"),
        ],
        vec![f64::NAN; 11],
    ));
    let mut foo = ramp(1.0, 1.0, 9);
    foo.push(3.0);
    defs.push(def("foo", &[], foo));
    let req = |g: &str, i: &str, j: &str| -> String {
        format!("http_requests{{group=\"{g}\", instance=\"{i}\", job=\"{j}\"}}")
    };
    let cases: Vec<(&str, Vec<(String, f64)>)> = vec![
        (
            "topk(3, http_requests)",
            vec![
                (req("canary", "1", "app-server"), 800.0),
                (req("canary", "0", "app-server"), 700.0),
                (req("production", "1", "app-server"), 600.0),
            ],
        ),
        (
            "topk((3), (http_requests))",
            vec![
                (req("canary", "1", "app-server"), 800.0),
                (req("canary", "0", "app-server"), 700.0),
                (req("production", "1", "app-server"), 600.0),
            ],
        ),
        (
            "topk(5, http_requests{group=\"canary\",job=\"app-server\"})",
            vec![
                (req("canary", "1", "app-server"), 800.0),
                (req("canary", "0", "app-server"), 700.0),
            ],
        ),
        (
            "bottomk(3, http_requests)",
            vec![
                (req("production", "0", "api-server"), 100.0),
                (req("production", "1", "api-server"), 200.0),
                (req("canary", "0", "api-server"), 300.0),
            ],
        ),
        (
            "topk by (group) (1, http_requests)",
            vec![
                (req("production", "1", "app-server"), 600.0),
                (req("canary", "1", "app-server"), 800.0),
            ],
        ),
        (
            "bottomk by (group) (2, http_requests)",
            vec![
                (req("canary", "0", "api-server"), 300.0),
                (req("canary", "1", "api-server"), 400.0),
                (req("production", "0", "api-server"), 100.0),
                (req("production", "1", "api-server"), 200.0),
            ],
        ),
        (
            "bottomk(9999999999, http_requests{job=\"app-server\",group=\"canary\"})",
            vec![
                (req("canary", "0", "app-server"), 700.0),
                (req("canary", "1", "app-server"), 800.0),
            ],
        ),
        (
            "topk(scalar(foo), http_requests)",
            vec![
                (req("canary", "1", "app-server"), 800.0),
                (req("canary", "0", "app-server"), 700.0),
                (req("production", "1", "app-server"), 600.0),
            ],
        ),
    ];
    let queries: Vec<&str> = cases.iter().map(|(q, _)| *q).collect();
    let store = load(&queries, 5 * MIN, &defs, 50 * MIN);
    for (query, want) in &cases {
        let want: Vec<(&str, f64)> = want.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        assert_vector(&store, query, 50 * MIN, &want);
    }
}

fn quantile_data() -> Vec<Def> {
    vec![
        def(
            "data",
            &[("test", "two samples"), ("point", "a")],
            vec![0.0],
        ),
        def(
            "data",
            &[("test", "two samples"), ("point", "b")],
            vec![1.0],
        ),
        def(
            "data",
            &[("test", "three samples"), ("point", "a")],
            vec![0.0],
        ),
        def(
            "data",
            &[("test", "three samples"), ("point", "b")],
            vec![1.0],
        ),
        def(
            "data",
            &[("test", "three samples"), ("point", "c")],
            vec![2.0],
        ),
        def(
            "data",
            &[("test", "uneven samples"), ("point", "a")],
            vec![0.0],
        ),
        def(
            "data",
            &[("test", "uneven samples"), ("point", "b")],
            vec![1.0],
        ),
        def(
            "data",
            &[("test", "uneven samples"), ("point", "c")],
            vec![4.0],
        ),
        def("data", &[("test", "NaN sample"), ("point", "a")], vec![0.0]),
        def("data", &[("test", "NaN sample"), ("point", "b")], vec![1.0]),
        def(
            "data",
            &[("test", "NaN sample"), ("point", "c")],
            vec![f64::NAN],
        ),
        def("foo", &[], vec![0.8]),
    ]
}

#[test]
fn aggregators_quantile_and_group() {
    let p80 = vec![
        ("{test=\"two samples\"}", 0.8),
        ("{test=\"three samples\"}", 1.6),
        ("{test=\"uneven samples\"}", 2.8),
        ("{test=\"NaN sample\"}", 0.6),
    ];
    let cases: Vec<(&str, Vec<(&str, f64)>)> = vec![
        ("quantile without(point)(0.8, data)", p80.clone()),
        ("quantile without(point)(scalar(foo), data)", p80.clone()),
        ("quantile without(point)((scalar(foo)), data)", p80),
        (
            "quantile without(point)(0.2, data)",
            vec![
                ("{test=\"two samples\"}", 0.2),
                ("{test=\"three samples\"}", 0.4),
                ("{test=\"uneven samples\"}", 0.4),
                ("{test=\"NaN sample\"}", f64::NAN),
            ],
        ),
        (
            "quantile without(point)(NaN, data)",
            vec![
                ("{test=\"two samples\"}", f64::NAN),
                ("{test=\"three samples\"}", f64::NAN),
                ("{test=\"uneven samples\"}", f64::NAN),
                ("{test=\"NaN sample\"}", f64::NAN),
            ],
        ),
        (
            "group without(point)(data)",
            vec![
                ("{test=\"two samples\"}", 1.0),
                ("{test=\"three samples\"}", 1.0),
                ("{test=\"uneven samples\"}", 1.0),
                ("{test=\"NaN sample\"}", 1.0),
            ],
        ),
        ("group(foo)", vec![("{}", 1.0)]),
    ];
    let queries: Vec<&str> = cases.iter().map(|(q, _)| *q).collect();
    let store = load(&queries, 10_000, &quantile_data(), MIN);
    for (query, want) in &cases {
        assert_vector(&store, query, MIN, want);
    }
}

#[test]
fn functions_irate_delta_idelta_deriv() {
    let mut bar = ramp(0.0, 10.0, 5);
    bar.extend(ramp(0.0, 10.0, 5));
    let defs = [
        def(
            "http_requests_total",
            &[("path", "/foo")],
            ramp(0.0, 10.0, 10),
        ),
        def("http_requests_total", &[("path", "/bar")], bar),
    ];
    let query = "irate(http_requests_total[50m])";
    let store = load(&[query], 5 * MIN, &defs, 50 * MIN);
    let third = 0.033_333_333_333_333_33;
    assert_vector(
        &store,
        query,
        50 * MIN,
        &[("{path=\"/foo\"}", third), ("{path=\"/bar\"}", third)],
    );
    // A counter reset between the last two points.
    let store = load(&[query], 5 * MIN, &defs, 30 * MIN);
    assert_vector(
        &store,
        query,
        30 * MIN,
        &[("{path=\"/foo\"}", third), ("{path=\"/bar\"}", 0.0)],
    );

    let defs = [
        def(
            "http_requests",
            &[("path", "/foo")],
            vec![0.0, 50.0, 100.0, 150.0, 200.0],
        ),
        def(
            "http_requests",
            &[("path", "/bar")],
            vec![200.0, 150.0, 100.0, 50.0, 0.0],
        ),
    ];
    let query = "delta(http_requests[20m])";
    let store = load(&[query], 5 * MIN, &defs, 20 * MIN);
    assert_vector(
        &store,
        query,
        20 * MIN,
        &[("{path=\"/foo\"}", 200.0), ("{path=\"/bar\"}", -200.0)],
    );

    let defs = [
        def(
            "http_requests",
            &[("path", "/foo")],
            vec![0.0, 50.0, 100.0, 150.0],
        ),
        def(
            "http_requests",
            &[("path", "/bar")],
            vec![0.0, 50.0, 100.0, 50.0],
        ),
    ];
    let query = "idelta(http_requests[20m])";
    let store = load(&[query], 5 * MIN, &defs, 20 * MIN);
    assert_vector(
        &store,
        query,
        20 * MIN,
        &[("{path=\"/foo\"}", 50.0), ("{path=\"/bar\"}", -50.0)],
    );

    let mut middle = ramp(0.0, 10.0, 4);
    middle.extend(ramp(0.0, 10.0, 5));
    let defs = [
        def("testcounter_reset_middle_total", &[], middle),
        def(
            "http_requests_total",
            &[
                ("job", "app-server"),
                ("instance", "1"),
                ("group", "canary"),
            ],
            ramp(0.0, 80.0, 10),
        ),
    ];
    let queries = [
        "rate(http_requests_total{group=\"canary\", instance=\"1\", job=\"app-server\"}[50m])",
        "deriv(http_requests_total{group=\"canary\", instance=\"1\", job=\"app-server\"}[50m])",
        "deriv(testcounter_reset_middle_total[100m])",
    ];
    let store = load(&queries, 5 * MIN, &defs, 50 * MIN);
    let series = "{group=\"canary\", instance=\"1\", job=\"app-server\"}";
    assert_vector(
        &store,
        queries[0],
        50 * MIN,
        &[(series, 0.26666666666666666)],
    );
    assert_vector(
        &store,
        queries[1],
        50 * MIN,
        &[(series, 0.26666666666666666)],
    );
    assert_vector(
        &store,
        queries[2],
        50 * MIN,
        &[("{}", 0.010606060606060607)],
    );
}

#[test]
// The values are written as in Prometheus's test data.
#[allow(clippy::excessive_precision)]
fn functions_over_time() {
    let defs = [
        def("metric", &[], vec![1.0, 2.0, 3.0, 4.0, 5.0]),
        def("metric2", &[], vec![1.0, 2.0, 3.0, 4.0, f64::INFINITY]),
        def("metric3", &[], vec![1.0, 2.0, 3.0, 4.0, f64::NEG_INFINITY]),
        def(
            "metric4",
            &[],
            vec![1.0, 2.0, 3.0, f64::INFINITY, f64::NEG_INFINITY],
        ),
        def("metric5", &[], vec![f64::INFINITY, 0.0, f64::INFINITY]),
        def(
            "metric8",
            &[],
            vec![9.988465674311579e307, 9.988465674311579e307],
        ),
        def(
            "metric9",
            &[],
            vec![
                -9.988465674311579e307,
                -9.988465674311579e307,
                -9.988465674311579e307,
            ],
        ),
        def(
            "metric10",
            &[],
            vec![-9.988465674311579e307, 9.988465674311579e307],
        ),
        def("metric11", &[], vec![1.0, 2.0, 3.0, f64::NAN, f64::NAN]),
    ];
    let cases: Vec<(&str, Vec<(&str, f64)>)> = vec![
        ("avg_over_time(metric[10s])", vec![]),
        ("avg_over_time(metric[20s])", vec![("{}", 5.0)]),
        ("avg_over_time(metric[1m])", vec![("{}", 3.0)]),
        (
            "sum_over_time(metric[1m])/count_over_time(metric[1m])",
            vec![("{}", 3.0)],
        ),
        ("avg_over_time(metric2[1m])", vec![("{}", f64::INFINITY)]),
        (
            "avg_over_time(metric3[1m])",
            vec![("{}", f64::NEG_INFINITY)],
        ),
        ("avg_over_time(metric4[1m])", vec![("{}", f64::NAN)]),
        (
            "sum_over_time(metric4[1m])/count_over_time(metric4[1m])",
            vec![("{}", f64::NAN)],
        ),
        ("avg_over_time(metric5[1m])", vec![("{}", f64::INFINITY)]),
        (
            "avg_over_time(metric8[1m])",
            vec![("{}", 9.988465674311579e307)],
        ),
        (
            "sum_over_time(metric8[1m])/count_over_time(metric8[1m])",
            vec![("{}", f64::INFINITY)],
        ),
        (
            "avg_over_time(metric9[1m])",
            vec![("{}", -9.988465674311579e307)],
        ),
        ("avg_over_time(metric10[1m])", vec![("{}", 0.0)]),
        ("avg_over_time(metric11[1m])", vec![("{}", f64::NAN)]),
    ];
    let queries: Vec<&str> = cases.iter().map(|(q, _)| *q).collect();
    let store = load(&queries, 10_000, &defs, 55_000);
    for (query, want) in &cases {
        assert_vector(&store, query, 55_000, want);
    }

    let defs = [
        def("data", &[("type", "numbers")], vec![2.0, 0.0, 3.0]),
        def("data", &[("type", "some_nan")], vec![2.0, 0.0, f64::NAN]),
        def("data", &[("type", "some_nan2")], vec![2.0, f64::NAN, 1.0]),
        def("data", &[("type", "some_nan3")], vec![f64::NAN, 0.0, 1.0]),
        def("data", &[("type", "only_nan")], vec![f64::NAN; 3]),
    ];
    let cases: Vec<(&str, Vec<(&str, f64)>)> = vec![
        (
            "min_over_time(data[2m])",
            vec![
                ("{type=\"numbers\"}", 0.0),
                ("{type=\"some_nan\"}", 0.0),
                ("{type=\"some_nan2\"}", 1.0),
                ("{type=\"some_nan3\"}", 0.0),
                ("{type=\"only_nan\"}", f64::NAN),
            ],
        ),
        (
            "max_over_time(data[2m])",
            vec![
                ("{type=\"numbers\"}", 3.0),
                ("{type=\"some_nan\"}", 2.0),
                ("{type=\"some_nan2\"}", 2.0),
                ("{type=\"some_nan3\"}", 1.0),
                ("{type=\"only_nan\"}", f64::NAN),
            ],
        ),
        (
            "last_over_time(data[2m])",
            vec![
                ("data{type=\"numbers\"}", 3.0),
                ("data{type=\"some_nan\"}", f64::NAN),
                ("data{type=\"some_nan2\"}", 1.0),
                ("data{type=\"some_nan3\"}", 1.0),
                ("data{type=\"only_nan\"}", f64::NAN),
            ],
        ),
    ];
    let queries: Vec<&str> = cases.iter().map(|(q, _)| *q).collect();
    let store = load(&queries, 10_000, &defs, MIN);
    for (query, want) in &cases {
        assert_vector(&store, query, MIN, want);
    }
}

#[test]
fn functions_clamp_round_math_vector_scalar_time() {
    let defs = [
        def("test_clamp", &[("src", "clamp-a")], vec![-50.0]),
        def("test_clamp", &[("src", "clamp-b")], vec![0.0]),
        def("test_clamp", &[("src", "clamp-c")], vec![100.0]),
    ];
    let abc = |a: f64, b: f64, c: f64| {
        vec![
            ("{src=\"clamp-a\"}", a),
            ("{src=\"clamp-b\"}", b),
            ("{src=\"clamp-c\"}", c),
        ]
    };
    let nan = f64::NAN;
    let cases: Vec<(&str, Vec<(&str, f64)>)> = vec![
        ("clamp_max(test_clamp, 75)", abc(-50.0, 0.0, 75.0)),
        ("clamp_min(test_clamp, -25)", abc(-25.0, 0.0, 100.0)),
        ("clamp(test_clamp, -25, 75)", abc(-25.0, 0.0, 75.0)),
        (
            "clamp_max(clamp_min(test_clamp, -20), 70)",
            abc(-20.0, 0.0, 70.0),
        ),
        (
            "clamp_max((clamp_min(test_clamp, (-20))), (70))",
            abc(-20.0, 0.0, 70.0),
        ),
        ("clamp(test_clamp, 0, NaN)", abc(nan, nan, nan)),
        ("clamp(test_clamp, NaN, 0)", abc(nan, nan, nan)),
        ("clamp_max(test_clamp, NaN)", abc(nan, nan, nan)),
        ("clamp_min(test_clamp, NaN)", abc(nan, nan, nan)),
        ("clamp_max(test_clamp, Inf)", abc(-50.0, 0.0, 100.0)),
        (
            "clamp_max(test_clamp, -Inf)",
            abc(f64::NEG_INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY),
        ),
        ("clamp_min(test_clamp, -Inf)", abc(-50.0, 0.0, 100.0)),
        (
            "clamp_min(test_clamp, Inf)",
            abc(f64::INFINITY, f64::INFINITY, f64::INFINITY),
        ),
        ("clamp(test_clamp, -Inf, Inf)", abc(-50.0, 0.0, 100.0)),
        ("clamp(test_clamp, 5, -5)", vec![]),
        ("abs(test_clamp)", abc(50.0, 0.0, 100.0)),
        ("sqrt(test_clamp)", abc(nan, 0.0, 10.0)),
        (
            "exp(test_clamp / 50)",
            abc((-1.0f64).exp(), 1.0, 2.0f64.exp()),
        ),
        ("ln(test_clamp)", abc(nan, f64::NEG_INFINITY, 100.0f64.ln())),
        ("ceil(test_clamp / 40)", abc(-1.0, 0.0, 3.0)),
        ("floor(test_clamp / 40)", abc(-2.0, 0.0, 2.0)),
        ("vector(1)", vec![("{}", 1.0)]),
        ("vector(time())", vec![("{}", 0.0)]),
    ];
    let queries: Vec<&str> = cases.iter().map(|(q, _)| *q).collect();
    let store = load(&queries, 5 * MIN, &defs, 0);
    for (query, want) in &cases {
        assert_vector(&store, query, 0, want);
    }
    assert_vector(&store, "vector(time())", 5_000, &[("{}", 5.0)]);
    assert_vector(&store, "time()", 50 * MIN, &[("{}", 3000.0)]);

    // round(): ties go up; to the nearest multiple of the second argument.
    let defs = [
        def("t", &[("v", "a")], vec![1.5]),
        def("t", &[("v", "b")], vec![-1.5]),
        def("t", &[("v", "c")], vec![2.24]),
        def("t", &[("v", "d")], vec![2.26]),
    ];
    let store = load(&["round(t)"], MIN, &defs, 0);
    assert_vector(
        &store,
        "round(t)",
        0,
        &[
            ("{v=\"a\"}", 2.0),
            ("{v=\"b\"}", -1.0),
            ("{v=\"c\"}", 2.0),
            ("{v=\"d\"}", 2.0),
        ],
    );
    assert_vector(
        &store,
        "round(t, 0.5)",
        0,
        &[
            ("{v=\"a\"}", 1.5),
            ("{v=\"b\"}", -1.5),
            ("{v=\"c\"}", 2.0),
            ("{v=\"d\"}", 2.5),
        ],
    );
    assert_vector(&store, "scalar(t{v=\"a\"})", 0, &[("{}", 1.5)]);
    assert_vector(&store, "scalar(t)", 0, &[("{}", f64::NAN)]);
}

#[test]
fn histograms_sum_by_le_and_without() {
    // histograms.test: request_duration_seconds_bucket over two jobs and instances.
    let mut defs = Vec::new();
    for (job, instance, steps) in [
        ("job1", "ins1", [1.0, 3.0, 4.0]),
        ("job1", "ins2", [2.0, 5.0, 6.0]),
        ("job2", "ins1", [3.0, 4.0, 6.0]),
        ("job2", "ins2", [4.0, 7.0, 9.0]),
    ] {
        for (le, step) in ["0.1", "0.2", "+Inf"].into_iter().zip(steps) {
            let labels: &'static [(&'static str, &'static str)] =
                Box::leak(Box::new([("job", job), ("instance", instance), ("le", le)]));
            defs.push(def(
                "request_duration_seconds_bucket",
                labels,
                ramp(0.0, step, 10),
            ));
        }
    }
    let cases: Vec<(&str, Vec<(&str, f64)>)> = vec![
        (
            "histogram_quantile(0.3, sum(rate(request_duration_seconds_bucket[10m])) by (le))",
            vec![("{}", 0.075)],
        ),
        (
            "histogram_quantile(0.5, sum(rate(request_duration_seconds_bucket[10m])) by (le))",
            vec![("{}", 0.1277777777777778)],
        ),
        (
            "histogram_quantile(0.3, sum(rate(request_duration_seconds_bucket[10m])) by (le, job))",
            vec![
                ("{job=\"job1\"}", 0.1),
                ("{job=\"job2\"}", 0.0642857142857143),
            ],
        ),
        (
            "histogram_quantile(0.5, sum(rate(request_duration_seconds_bucket[10m])) by (le, instance))",
            vec![
                ("{instance=\"ins1\"}", 0.1333333333),
                ("{instance=\"ins2\"}", 0.125),
            ],
        ),
        (
            "histogram_quantile(0.3, sum(rate(request_duration_seconds_bucket[10m])) by (le, job, instance))",
            vec![
                ("{instance=\"ins1\", job=\"job1\"}", 0.11),
                ("{instance=\"ins2\", job=\"job1\"}", 0.09),
                ("{instance=\"ins1\", job=\"job2\"}", 0.06),
                ("{instance=\"ins2\", job=\"job2\"}", 0.0675),
            ],
        ),
        // Inside an expression, one quantile per label set as in Prometheus (at the top of a
        // query, podgate's earlier form sums the buckets by le: see the test below).
        (
            "histogram_quantile(0.5, rate(request_duration_seconds_bucket[10m])) * 1",
            vec![
                ("{instance=\"ins1\", job=\"job1\"}", 0.15),
                ("{instance=\"ins2\", job=\"job1\"}", 0.13333333333333333),
                ("{instance=\"ins1\", job=\"job2\"}", 0.1),
                ("{instance=\"ins2\", job=\"job2\"}", 0.11666666666666667),
            ],
        ),
        // `without (instance)` keeps `le` and `job`: the groups of `by (le, job)`.
        (
            "histogram_quantile(0.5, sum without (instance) (rate(request_duration_seconds_bucket[10m])))",
            vec![("{job=\"job1\"}", 0.14), ("{job=\"job2\"}", 0.1125)],
        ),
        (
            "histogram_quantile(0.3, avg(rate(request_duration_seconds_bucket[10m])) by (le))",
            vec![("{}", 0.075)],
        ),
        (
            "histogram_quantile(0.5, avg(rate(request_duration_seconds_bucket[10m])) by (le))",
            vec![("{}", 0.12777777777777778)],
        ),
        (
            "avg (request_duration_seconds_bucket{le=\"0.1\"})",
            vec![("{}", 25.0)],
        ),
        (
            "avg (request_duration_seconds_bucket{le=\"0.2\"}) - avg (request_duration_seconds_bucket{le=\"0.1\"})",
            vec![("{}", 22.5)],
        ),
        (
            "avg (request_duration_seconds_bucket{le=\"+Inf\"}) - avg (request_duration_seconds_bucket{le=\"0.2\"})",
            vec![("{}", 15.0)],
        ),
    ];
    let queries: Vec<&str> = cases.iter().map(|(q, _)| *q).collect();
    let store = load(&queries, 5 * MIN, &defs, 50 * MIN);
    for (query, want) in &cases {
        assert_vector(&store, query, 50 * MIN, want);
    }
    // The earlier form at the top of a query: the same number as `sum by (le)`.
    assert_vector(
        &store,
        "histogram_quantile(0.5, rate(request_duration_seconds_bucket[10m]))",
        50 * MIN,
        &[("{}", 0.12777777777777778)],
    );
}

/// `histogram_fraction` over classic buckets, from Prometheus's `histograms.test` (3.16):
/// the `_bucket` forms of its cases (the native forms there are converted custom-bucket
/// histograms, which podgate does not build).
#[test]
fn histogram_fraction_over_classic_buckets() {
    use super::test_load::Want::F;
    use super::test_load::{check, load};
    let series = [
        ("testhistogram2_bucket{le=\"0\"}", "0+0x10"),
        ("testhistogram2_bucket{le=\"2\"}", "0+1x10"),
        ("testhistogram2_bucket{le=\"4\"}", "0+2x10"),
        ("testhistogram2_bucket{le=\"6\"}", "0+3x10"),
        ("testhistogram2_bucket{le=\"+Inf\"}", "0+3x10"),
        (
            "testhistogram3_bucket{le=\"0\", start=\"positive\"}",
            "0+0x10",
        ),
        (
            "testhistogram3_bucket{le=\"0.1\", start=\"positive\"}",
            "0+5x10",
        ),
        (
            "testhistogram3_bucket{le=\".2\", start=\"positive\"}",
            "0+7x10",
        ),
        (
            "testhistogram3_bucket{le=\"1e0\", start=\"positive\"}",
            "0+11x10",
        ),
        (
            "testhistogram3_bucket{le=\"+Inf\", start=\"positive\"}",
            "0+11x10",
        ),
        (
            "testhistogram3_bucket{le=\"-.25\", start=\"negative\"}",
            "0+0x10",
        ),
        (
            "testhistogram3_bucket{le=\"-.2\", start=\"negative\"}",
            "0+1x10",
        ),
        (
            "testhistogram3_bucket{le=\"-0.1\", start=\"negative\"}",
            "0+2x10",
        ),
        (
            "testhistogram3_bucket{le=\"0.3\", start=\"negative\"}",
            "0+2x10",
        ),
        (
            "testhistogram3_bucket{le=\"+Inf\", start=\"negative\"}",
            "0+2x10",
        ),
        ("testhistogram4_bucket{le=\"0\"}", "0+4x10"),
        ("testhistogram4_bucket{le=\"1\"}", "0+7x10"),
        ("testhistogram4_bucket{le=\"2\"}", "0+9x10"),
        ("testhistogram4_bucket{le=\"+Inf\"}", "0+10x10"),
        ("testhistogram5_bucket{le=\"-5\"}", "0+1x10"),
        ("testhistogram5_bucket{le=\"1\"}", "0+3x10"),
        ("testhistogram5_bucket{le=\"+Inf\"}", "0+4x10"),
        ("positive_bucket{le=\"1\"}", "1+0x10"),
        ("positive_bucket{le=\"2\"}", "3+0x10"),
        ("positive_bucket{le=\"3\"}", "6+0x10"),
        ("positive_bucket{le=\"+Inf\"}", "100+0x10"),
        ("negative_bucket{le=\"-3\"}", "10+0x10"),
        ("negative_bucket{le=\"-2\"}", "12+0x10"),
        ("negative_bucket{le=\"-1\"}", "15+0x10"),
        ("negative_bucket{le=\"+Inf\"}", "100+0x10"),
    ];
    let queries = ["rate(testhistogram3_bucket[10m])"];
    let store = load(&queries, 5 * MIN, &series, 50 * MIN);
    let at = 50 * MIN;
    for (query, want) in [
        (
            "histogram_fraction(0, 4, testhistogram2_bucket)",
            0.6666666666666666,
        ),
        ("histogram_fraction(0, 6, testhistogram2_bucket)", 1.0),
        (
            "histogram_fraction(0, 3.5, testhistogram2_bucket)",
            0.5833333333333334,
        ),
        // A populated le="0" bucket belongs to the (-Inf, 0] side.
        ("histogram_fraction(-Inf, 0, testhistogram4_bucket)", 0.4),
        ("histogram_fraction(0, Inf, testhistogram4_bucket)", 0.6),
        // A bucket spanning zero is an ordinary bucket: its bounds are not moved to 0.
        (
            "histogram_fraction(-Inf, 0, testhistogram5_bucket)",
            0.6666666666666666,
        ),
        // The first bucket starts at 0 (positive) or is not interpolated (-Inf).
        ("histogram_fraction(0, 1.5, positive_bucket)", 0.02),
        ("histogram_fraction(-4, -2, negative_bucket)", 0.02),
        ("histogram_fraction(-Inf, -1.5, negative_bucket)", 0.135),
        ("histogram_fraction(-Inf, +Inf, positive_bucket)", 1.0),
        ("histogram_fraction(-Inf, +Inf, negative_bucket)", 1.0),
        // Nothing is interpolated inside the +Inf bucket.
        ("histogram_fraction(4, 5, positive_bucket)", 0.0),
        ("histogram_fraction(0, 1, negative_bucket)", 0.0),
        ("histogram_fraction(2, 5, positive_bucket)", 0.03),
    ] {
        check(&store, query, at, &[("{}", F(want))]);
    }
    for query in [
        "histogram_fraction(0, 0.2, testhistogram3_bucket)",
        "histogram_fraction(0, 0.2, rate(testhistogram3_bucket[10m]))",
    ] {
        check(
            &store,
            query,
            at,
            &[
                ("{start=\"negative\"}", F(0.0)),
                ("{start=\"positive\"}", F(0.6363636363636364)),
            ],
        );
    }
}
