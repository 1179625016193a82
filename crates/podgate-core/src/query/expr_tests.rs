//! The PromQL expression forms: what parses, every refusal and its message and column, and
//! the outcomes of evaluation (one number, no data and why, errors).

use super::*;

type S<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

fn q(src: &str) -> Query {
    match parse(src) {
        Ok(q) => q,
        Err(e) => panic!("{src:?} should parse: {e}"),
    }
}

#[track_caller]
fn refused(src: &str, column: usize, fragment: &str) {
    match parse(src) {
        Ok(_) => panic!("{src:?} should be refused"),
        Err(e) => {
            assert!(e.message.contains(fragment), "{src:?}: {e}");
            assert_eq!(e.column, column, "{src:?}: {e}");
        }
    }
}

/// A store for `queries` holding the scrapes `(time, samples)`.
fn store(queries: &[&Query], scrapes: &[(i64, &[S<'_>])]) -> SeriesStore {
    let mut store = SeriesStore::new(
        Interest::new(queries.iter().copied()),
        StoreLimits::default(),
    );
    for (t, samples) in scrapes {
        if let Err(e) = store.ingest_samples(*t, samples.iter().copied()) {
            panic!("ingest at {t}: {e}");
        }
    }
    store
}

fn outcome(query: &Query, store: &SeriesStore, now: i64) -> Result<QueryValue, EvalError> {
    query.eval(store, now)
}

#[test]
fn the_pasted_forms_parse() {
    for src in [
        "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))",
        "histogram_quantile(0.9, sum(rate(x_bucket[1m])) by (le))",
        "histogram_quantile(0.99, sum without (pod) (rate(x_bucket[5m])))",
        "sum(rate(errors_total[1m])) / sum(rate(requests_total[1m]))",
        "sum(rate(x{code=~\"5..\"}[5m])) / sum(rate(x[5m])) > bool 0.01",
        "1 - avg(rate(cpu_idle_seconds_total[1m]))",
        "max(max_over_time(q[5m])) or vector(0)",
        "time() - process_start_time_seconds",
        "count(up == 1) / count(up)",
        "topk(1, sum by (path) (rate(r[1m])))",
        "quantile(0.9, rate(r[1m]))",
        "a * on (pod) group_left (role) b",
        "a / ignoring (code) group_right b",
        "rate(x[1m] offset 5m)",
        "x offset 1m",
        "SUM(x) BY (job)",
        "sum by (\"service.name\") (x)",
        "2 ^ 3 ^ 2",
        "-x",
        "0x1f + 1e3 + .5 + Inf - NaN",
        "scalar(x) * 2",
        "round(x, 0.1)",
        "clamp(x, 0, 1)",
    ] {
        q(src);
    }
}

#[test]
fn refusals_name_the_construct_and_the_nearest_form() {
    refused(
        "label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")",
        1,
        "labels cannot be rewritten",
    );
    refused("sum(predict_linear(x[5m], 60))", 5, "deriv(x[5m])");
    refused(
        "histogram_quantiles(x, \"q\", 0.5)",
        1,
        "one histogram_quantile(0.9, x)",
    );
    refused("absent(x)", 1, "isnan(var)");
    refused("quantile_over_time(0.9, x[5m])", 1, "avg_over_time");
    refused("log2(x)", 1, "math::log2");
    refused("timestamp(x)", 1, "time()");
    refused("count_values(\"v\", x)", 1, "count, topk or bottomk");
    refused("foo(x)", 1, "unknown function `foo`");
    refused("max_over_time(rate(x[1m])[5m:1m])", 15, "subqueries");
    refused("max_over_time(x[5m:1m])", 15, "subqueries");
    refused("x @ 100", 3, "`@` modifier");
    refused("x offset -5m", 10, "negative offset");
    refused("x offset 5m [1m]", 13, "the range goes before the offset");
    refused("rate(x[1m]) offset 5m", 13, "apply to a selector only");
    refused("(x) offset 5m", 5, "apply to a selector only");
    refused("x[1m]", 1, "must be the argument of a function");
    refused("x[1m] + 1", 1, "range selector");
    refused(
        "sum(x[1m])",
        5,
        "takes an instant vector, not a range selector",
    );
    refused("rate(x)", 6, "expected '['");
    refused("rate(sum(x))", 6, "takes a range selector");
    refused(
        "abs(x[1m])",
        5,
        "argument 1 of abs() must be an instant vector",
    );
    refused("histogram_quantile(x, h_bucket)", 20, "must be a number");
    refused("clamp(x, 1)", 1, "clamp() takes 3 arguments");
    refused("round(x, 1, 2)", 1, "takes 1 or 2 arguments");
    refused(
        "topk(x, y)",
        6,
        "the first argument of topk(...) must be a number",
    );
    refused("sum(x, y)", 6, "takes one argument");
    refused("sum by (a) (x) by (b)", 16, "two by/without clauses");
    refused("sum by a (x)", 8, "expected '(' and label names after `by`");
    refused("x and 1", 3, "between two instant vectors");
    refused("1 > 2", 3, "needs `bool`");
    refused("x + bool y", 3, "`bool` only follows a comparison");
    refused("1 + on (a) x", 5, "between two instant vectors only");
    refused("x and on (a) group_left y", 14, "cannot be used with `and`");
    refused("x * group_left y", 5, "follow on(...) or ignoring(...)");
    refused("x atan2 y", 3, "atan2");
    refused("x +", 3, "needs an operand on its right");
    refused("(x + )", 4, "needs an operand on its right");
    refused("5m", 1, "`5m` is not a number");
    refused("\"x.y\"", 1, "a string is not a number");
    refused("x by (a)", 3, "goes right after an aggregation's name");
    refused("x = 1", 3, "use '==' to compare");
    refused(
        "-x[1m]",
        2,
        "unary minus needs a number or an instant vector",
    );
    refused("sum(x) )", 8, "unexpected ')'");
    let deep = format!("{}x", "-".repeat(200));
    refused(&deep, 129, "deeper than 128");
}

#[test]
fn ratios_of_sub_queries_are_one_number() {
    let query = q("sum(rate(errors_total[1m])) / sum(rate(requests_total[1m]))");
    let a: &[(&str, &str)] = &[("path", "/a")];
    let b: &[(&str, &str)] = &[("path", "/b")];
    let s0: &[S<'_>] = &[
        ("errors_total", a, 0.0),
        ("requests_total", a, 0.0),
        ("requests_total", b, 0.0),
    ];
    let s1: &[S<'_>] = &[
        ("errors_total", a, 3.0),
        ("requests_total", a, 60.0),
        ("requests_total", b, 240.0),
    ];
    let st = store(&[&query], &[(0, s0), (30_000, s1)]);
    // Both windows extrapolate alike: the ratio is the ratio of the increases.
    match outcome(&query, &st, 30_000) {
        Ok(QueryValue::Number(v)) => assert!((v - 0.01).abs() < 1e-12, "{v}"),
        other => panic!("{other:?}"),
    }
    // One scrape: not enough history on both sides, which the warm-up recognises.
    let st = store(&[&query], &[(0, s0)]);
    assert!(matches!(
        outcome(&query, &st, 0),
        Ok(QueryValue::NoData(NoData::NotEnoughHistory { .. }))
    ));
    // A side that matches nothing: no data naming that selector.
    let only: &[S<'_>] = &[("requests_total", a, 0.0)];
    let only1: &[S<'_>] = &[("requests_total", a, 60.0)];
    let st = store(&[&query], &[(0, only), (30_000, only1)]);
    match outcome(&query, &st, 30_000) {
        Ok(QueryValue::NoData(why)) => {
            assert_eq!(why.to_string(), "no series matched errors_total")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_data_reasons_of_the_new_constructs() {
    let s: &[S<'_>] = &[("x", &[("a", "1")], 5.0), ("y", &[("a", "2")], 1.0)];
    for (src, want) in [
        ("x > 10", "x > 10 filtered out every series"),
        ("x unless x", "x unless x filtered out every series"),
        ("clamp(x, 2, 1)", "clamp(x, 2, 1) filtered out every series"),
        (
            "x / y",
            "no series on one side of x / y matched a series on the other side",
        ),
        ("x and y", "no series on one side of x and y matched"),
        (
            "scalar(x or y) + 1",
            "scalar(x or y) needs exactly one series, found 2",
        ),
        ("scalar(z) + 1", "no series matched z"),
        ("x offset 1m", "no scrape from 1m ago yet (offset 1m)"),
        ("sum(z) or sum(w)", "no series matched z"),
    ] {
        let query = q(src);
        let st = store(&[&query], &[(1000, s)]);
        match outcome(&query, &st, 1000) {
            Ok(QueryValue::NoData(why)) => {
                assert!(why.to_string().starts_with(want), "{src}: {why}")
            }
            other => panic!("{src}: {other:?}"),
        }
    }
}

#[test]
fn errors_of_the_new_constructs() {
    let s: &[S<'_>] = &[
        ("x", &[("a", "1"), ("b", "1")], 5.0),
        ("x", &[("a", "1"), ("b", "2")], 6.0),
        ("y", &[("a", "1")], 1.0),
        ("h_bucket", &[("le", "1"), ("p", "a")], 1.0),
        ("h_bucket", &[("le", "+Inf"), ("p", "a")], 1.0),
        ("h_bucket", &[("le", "1"), ("p", "b")], 1.0),
        ("h_bucket", &[("le", "+Inf"), ("p", "b")], 1.0),
    ];
    for (src, want) in [
        (
            "x",
            "x matched 2 series, but a scrape variable must be one number; aggregate them, e.g. sum(x) or max(x)",
        ),
        ("x + 1", "x + 1 yields 2 series"),
        (
            "x / on (a) y",
            "several series on the left side match one on the right side",
        ),
        (
            "y / on (a) x",
            "several series on the right side have the same labels {a=\"1\"}",
        ),
        ("histogram_quantile(0.5, h_bucket) * 1", "yields 2 series"),
        (
            "histogram_quantile(0.5, sum by (le, p) (h_bucket))",
            "sum by (le) (rate(x_bucket[1m]))",
        ),
        ("topk(Inf, x)", "finite number"),
    ] {
        let query = q(src);
        let st = store(&[&query], &[(1000, s)]);
        match outcome(&query, &st, 1000) {
            Err(e) => assert!(e.message.contains(want), "{src}: {e}"),
            other => panic!("{src}: {other:?}"),
        }
    }
    // The earlier form at the top of a query sums the buckets: one number.
    let query = q("histogram_quantile(0.5, h_bucket)");
    let st = store(&[&query], &[(1000, s)]);
    assert!(matches!(
        outcome(&query, &st, 1000),
        Ok(QueryValue::Number(_))
    ));
}

#[test]
fn histogram_nan_is_no_data_with_its_reason() {
    let query = q("histogram_quantile(0.5, sum by (le) (h_bucket)) * 2");
    let s: &[S<'_>] = &[
        ("h_bucket", &[("le", "1")], 0.0),
        ("h_bucket", &[("le", "+Inf")], 0.0),
    ];
    let st = store(&[&query], &[(1000, s)]);
    assert_eq!(
        outcome(&query, &st, 1000),
        Ok(QueryValue::NoData(NoData::NoObservations))
    );
}

#[test]
fn offset_reads_an_earlier_scrape() {
    let query = q("x - x offset 20s");
    let st = store(
        &[&query],
        &[
            (0, &[("x", &[], 1.0)]),
            (10_000, &[("x", &[], 4.0)]),
            (20_000, &[("x", &[], 9.0)]),
        ],
    );
    assert_eq!(outcome(&query, &st, 20_000), Ok(QueryValue::Number(8.0)));
    assert_eq!(query.range_ms(), 20_000);
    assert_eq!(st.interest().longest_range_ms(), 20_000);
}

#[test]
fn every_selector_counts_for_names_and_ranges() {
    let query = q("sum(rate(a_total[1m])) / sum(rate(b_total[5m] offset 1m)) + c");
    assert_eq!(
        query.metric_names().collect::<Vec<_>>(),
        ["a_total", "b_total", "c"]
    );
    assert_eq!(query.metric_name(), None);
    assert_eq!(query.range_ms(), 360_000);
    assert_eq!(q("x + x").metric_name(), Some("x"));
    let st = store(
        &[&query],
        &[(
            0,
            &[
                ("a_total", &[], 1.0),
                ("b_total", &[], 1.0),
                ("c", &[], 1.0),
                ("d", &[], 1.0),
            ],
        )],
    );
    assert_eq!(st.len(), 3);
    assert_eq!(st.interest().longest_range_ms(), 360_000);
}

#[test]
fn scalar_queries_need_no_series() {
    let query = q("vector(2) * 3");
    let st = store(&[&query], &[]);
    assert_eq!(outcome(&query, &st, 0), Ok(QueryValue::Number(6.0)));
    assert_eq!(
        outcome(&q("1 + 2 * 3 ^ 2"), &st, 0),
        Ok(QueryValue::Number(19.0))
    );
}
