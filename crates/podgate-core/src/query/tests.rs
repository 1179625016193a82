use super::classic::{Bucket, bucket_quantile};
use super::*;
use crate::exposition;

type S<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

fn q(src: &str) -> Query {
    match parse(src) {
        Ok(q) => q,
        Err(e) => panic!("{src:?} should parse: {e}"),
    }
}

fn parse_err(src: &str) -> QueryError {
    match parse(src) {
        Ok(_) => panic!("{src:?} should be rejected"),
        Err(e) => e,
    }
}

fn store_for(queries: &[&Query]) -> SeriesStore {
    SeriesStore::new(
        Interest::new(queries.iter().copied()),
        StoreLimits::default(),
    )
}

fn ingest(store: &mut SeriesStore, t: i64, samples: &[S<'_>]) -> IngestStats {
    match store.ingest_samples(t, samples.iter().copied()) {
        Ok(stats) => stats,
        Err(e) => panic!("ingest at {t} failed: {e}"),
    }
}

fn number(query: &Query, store: &SeriesStore, now: i64) -> f64 {
    match query.eval(store, now) {
        Ok(QueryValue::Number(v)) => v,
        other => panic!(
            "{} at {now}: expected a number, got {other:?}",
            query.source
        ),
    }
}

fn no_data(query: &Query, store: &SeriesStore, now: i64) -> NoData {
    match query.eval(store, now) {
        Ok(QueryValue::NoData(reason)) => reason,
        other => panic!("{} at {now}: expected no data, got {other:?}", query.source),
    }
}

fn assert_close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "got {got}, want {want}"
    );
}

// ---------------------------------------------------------------- parsing

#[test]
fn parses_the_supported_forms() {
    for src in [
        "up",
        "job:requests:rate5m",
        "x{}",
        "x{a=\"1\", b!='2', c=~\"3.*\", d!~`4|5`,}",
        "{__name__=\"x\"}",
        "{__name__=~\"http_.*\", job=\"a\"}",
        "sum(x)",
        "min(x{a=\"b\"})",
        "max (x)",
        "avg(rate(x[1m]))",
        "count(x)",
        "rate(x[30s])",
        "increase(x{code=~\"5..\"}[1h30m])",
        "rate(x[500ms])",
        "histogram_quantile(0.99, rate(h_bucket[2m]))",
        "histogram_quantile(.5, h_bucket)",
        "sum(rate(http_requests_total{code=~\"5..\"}[1m]))",
        "(sum(x))",
        "  sum(x) # trailing comment",
        "sum",
        "rate",
    ] {
        q(src);
    }
}

#[test]
fn parse_errors_have_columns() {
    let e = parse_err("rate(x{a=\"b\"}[1m");
    assert_eq!(
        e.to_string(),
        "column 17: expected ']' after range duration"
    );
    assert_eq!(parse_err("sum(x").column, 6);
    let e = parse_err("x{a=\"b}");
    assert_eq!(e.column, 5);
    assert!(e.message.contains("unterminated"), "{e}");
    let e = parse_err("x{a=~\"(\"}");
    assert_eq!(e.column, 6);
    assert!(e.message.contains("regular expression"), "{e}");
    let e = parse_err("x{a==\"b\"}");
    assert_eq!(e.column, 4);
    let e = parse_err("rate(x[1x])");
    assert_eq!(e.column, 9);
    assert!(e.message.contains("unit"), "{e}");
    let e = parse_err("rate(x[1m1h])");
    assert_eq!(e.column, 11);
    assert!(e.message.contains("largest to smallest"), "{e}");
    let e = parse_err("rate(x[0s])");
    assert!(e.message.contains("greater than zero"), "{e}");
    // Columns count characters, not bytes.
    let e = parse_err("x{a=\"é\"} +");
    assert_eq!(e.column, 10);
}

#[test]
fn rejects_unsupported_constructs() {
    assert!(parse_err("foo(x)").message.contains("unknown function"));
    assert!(parse_err("x[1m]").message.contains("rate"));
    assert!(parse_err("rate(x)").message.contains("'['"));
    assert!(parse_err("{}").message.contains("empty string"));
    assert!(parse_err("{a=~\".*\"}").message.contains("empty string"));
    assert!(
        parse_err("x{__name__=\"y\"}")
            .message
            .contains("given twice")
    );
    assert!(parse_err("").message.contains("empty"));
    assert!(
        parse_err(&"x".repeat(MAX_QUERY_BYTES + 1))
            .message
            .contains("limit")
    );
    assert!(
        parse_err("histogram_quantile(x, h_bucket)")
            .message
            .contains("number")
    );
    let deep = format!("{}x{}", "(".repeat(65), ")".repeat(65));
    assert_eq!(parse_err(&deep).column, 65);
    q(&format!("{}x{}", "(".repeat(64), ")".repeat(64)));
}

#[test]
fn string_escapes() {
    let query = q(r#"x{a="tab\there \"q\" \u00e9 \x41 \101", b='it\'s', c=`raw\n`}"#);
    let mut store = store_for(&[&query]);
    ingest(
        &mut store,
        1000,
        &[(
            "x",
            &[
                ("a", "tab\there \"q\" é A A"),
                ("b", "it's"),
                ("c", "raw\\n"),
            ],
            7.0,
        )],
    );
    assert_eq!(number(&query, &store, 1000), 7.0);
    assert!(parse_err(r#"x{a="\q"}"#).message.contains("escape"));
}

// ---------------------------------------------------------------- selectors and staleness

// ---------------------------------------------------------------- UTF-8 names (PromQL 3)

#[test]
fn utf8_selectors_parse_as_in_promql_3() {
    for (src, name) in [
        (r#"{"http.server.duration"}"#, Some("http.server.duration")),
        (
            r#"{"http.server.duration", code="200"}"#,
            Some("http.server.duration"),
        ),
        (
            r#"{code="200", "http.server.duration",}"#,
            Some("http.server.duration"),
        ),
        (
            r#"sum(rate({"http.server.requests_total", "http.status"=~"5.."}[1m]))"#,
            Some("http.server.requests_total"),
        ),
        (
            r#"histogram_quantile(0.9, rate({"http.server.duration_bucket", "service.name"="checkout"}[5m]))"#,
            Some("http.server.duration_bucket"),
        ),
        (
            r#"{'foo\'bar', 'a\\dos\\path'='boo\\urns'}"#,
            Some("foo'bar"),
        ),
        ("{`a.b`, `c.d`!~`x|y`}", Some("a.b")),
        (r#"my_metric{"label.name"="v"}"#, Some("my_metric")),
        (
            r#"{"température.celsius", "区域"!="东"}"#,
            Some("température.celsius"),
        ),
        // As in PromQL 3: a second name inside the braces is one more matcher.
        (r#"{"a", __name__="b"}"#, Some("a")),
        (r#"{"http.status"=~"5..", __name__=~"http\\..*"}"#, None),
    ] {
        assert_eq!(q(src).metric_name(), name, "{src}");
    }
    // A quoted legacy name is the same selector as the bare one.
    assert_eq!(q(r#"{"up"}"#).metric_name(), Some("up"));
}

#[test]
fn utf8_selector_errors_name_the_construct() {
    let e = parse_err(r#"foo{"bar"}"#);
    assert_eq!(e.column, 5);
    assert!(
        e.message
            .contains("the metric name is given twice: `foo` before the braces and \"bar\""),
        "{e}"
    );
    let e = parse_err("sum(rate(http.server.requests_total[1m]))");
    assert_eq!(e.column, 10);
    assert!(
        e.message.contains(
            "metric name `http.server.requests_total` has characters other than letters, \
             digits, '_' and ':'; quote it inside the braces, as in PromQL 3: \
             {\"http.server.requests_total\"}"
        ),
        "{e}"
    );
    let e = parse_err("x{http.status=\"500\"}");
    assert_eq!(e.column, 3);
    assert!(
        e.message
            .contains("label name `http.status` has characters other than letters"),
        "{e}"
    );
    assert!(e.message.contains("\"http.status\"=\"...\""), "{e}");
    let e = parse_err(r#""http.server.duration""#);
    assert!(e.message.contains("goes inside the braces"), "{e}");
    let e = parse_err(r#"rate("x.y"[1m])"#);
    assert!(e.message.contains("goes inside the braces"), "{e}");
    let e = parse_err(r#"{"a.b" "c"}"#);
    assert!(
        e.message.contains(
            "expected a label matcher operator (=, !=, =~, !~) after the label name \"a.b\", \
             or ',' or '}' after it if it is the metric name, found '\"'"
        ),
        "{e}"
    );
    let e = parse_err(r#"{"a.b"="#);
    assert!(e.message.contains("expected a quoted string"), "{e}");
    assert!(parse_err(r#"{""}"#).message.contains("empty string"));
    assert!(
        parse_err(r#"{"a.b", ""="x"}"#)
            .message
            .contains("label name must not be empty")
    );
    assert!(parse_err(r#"{"a.b"#).message.contains("unterminated"));
    assert!(
        parse_err(r#"{"a.b", , c="d"}"#)
            .message
            .contains("expected a label name")
    );
}

#[test]
fn utf8_series_are_read_from_a_scraped_body() {
    // A Prometheus 3 text body as client_golang writes it with escaping=allow-utf-8.
    let body = |ok: f64, errors: f64| {
        format!(
            "# TYPE \"http.server.requests_total\" counter\n\
             {{\"http.server.requests_total\",\"http.status\"=\"200\",method=\"GET\"}} {ok}\n\
             {{\"http.server.requests_total\",\"http.status\"=\"503\",method=\"GET\"}} {errors}\n\
             {{\"http.server.requests_total\",\"http.status\"=\"500\",method=\"POST\"}} {errors}\n\
             {{\"name.with.dots\"}} 42\n\
             my_metric{{\"label.name\"=\"v\"}} 1\n"
        )
    };
    let errors = q(r#"sum(rate({"http.server.requests_total", "http.status"=~"5.."}[1m]))"#);
    let dots = q(r#"{"name.with.dots"}"#);
    let label = q(r#"my_metric{"label.name"="v"}"#);
    let several = q(r#"{"http.server.requests_total", method="GET"}"#);
    let mut store = store_for(&[&errors, &dots, &label, &several]);
    for (t, ok, err) in [(0, 100.0, 0.0), (30_000, 160.0, 3.0), (60_000, 220.0, 6.0)] {
        let text = body(ok, err);
        if let Err(e) = store.ingest(t, exposition::parse(&text, exposition::Format::Text)) {
            panic!("ingest: {e}");
        }
    }
    // Two 5xx series, each +6 over 60 s in a 1m window: 2 × 0.1/s, extrapolated as
    // Prometheus does (points at the window's edges).
    assert_close(number(&errors, &store, 60_000), 0.2);
    assert_eq!(number(&dots, &store, 60_000), 42.0);
    assert_eq!(number(&label, &store, 60_000), 1.0);
    let e = several.eval(&store, 60_000).unwrap_err();
    assert!(e.message.contains("matched 2 series"), "{e}");
}

#[test]
fn utf8_series_are_described_as_promql_3_writes_them() {
    let query = q(r#"histogram_quantile(0.5, {"h.bucket"})"#);
    let mut store = store_for(&[&query]);
    ingest(
        &mut store,
        1000,
        &[("h.bucket", &[("service.name", "a"), ("le", "x")], 1.0)],
    );
    let e = query.eval(&store, 1000).unwrap_err();
    assert!(
        e.message
            .contains(r#"{"h.bucket", le="x", "service.name"="a"} has an `le` label"#),
        "{e}"
    );
}

#[test]
fn matchers_select_series() {
    let samples: &[S<'_>] = &[
        ("req", &[("code", "200"), ("path", "/a")], 1.0),
        ("req", &[("code", "500"), ("path", "/a")], 2.0),
        ("req", &[("code", "503"), ("path", "/b")], 4.0),
        ("req", &[("code", "404")], 8.0),
        ("other", &[("code", "500")], 16.0),
    ];
    for (src, want) in [
        ("sum(req)", 15.0),
        ("sum(req{code=\"500\"})", 2.0),
        ("sum(req{code!=\"500\"})", 13.0),
        ("sum(req{code=~\"5..\"})", 6.0),
        // Anchored: "5" alone does not match "500".
        ("sum(req{code=~\"5\"})", f64::NAN),
        ("sum(req{code!~\"5..\"})", 9.0),
        // A missing label has the empty value.
        ("sum(req{path=\"\"})", 8.0),
        ("sum(req{path!=\"\"})", 7.0),
        ("sum({__name__=~\"req|other\", code=\"500\"})", 18.0),
        ("sum({__name__=\"other\"})", 16.0),
        ("count(req)", 4.0),
        ("min(req)", 1.0),
        ("max(req)", 8.0),
        ("avg(req)", 3.75),
    ] {
        let query = q(src);
        let mut store = store_for(&[&query]);
        ingest(&mut store, 1000, samples);
        if want.is_nan() {
            assert!(matches!(
                no_data(&query, &store, 1000),
                NoData::NoSeries { .. }
            ));
        } else {
            assert_eq!(number(&query, &store, 1000), want, "{src}");
        }
    }
}

#[test]
fn label_order_does_not_change_identity() {
    let query = q("rate(x[1m])");
    let mut store = store_for(&[&query]);
    ingest(&mut store, 0, &[("x", &[("a", "1"), ("b", "2")], 10.0)]);
    ingest(
        &mut store,
        10_000,
        &[("x", &[("b", "2"), ("a", "1")], 20.0)],
    );
    assert_eq!(store.len(), 1);
    // Empty label values are the same as absent labels.
    ingest(
        &mut store,
        20_000,
        &[("x", &[("b", "2"), ("c", ""), ("a", "1")], 30.0)],
    );
    assert_eq!(store.len(), 1);
    number(&query, &store, 20_000);
}

#[test]
fn bare_selector_matching_several_series_is_an_error() {
    let query = q("req");
    let mut store = store_for(&[&query]);
    ingest(
        &mut store,
        1000,
        &[
            ("req", &[("code", "200")], 1.0),
            ("req", &[("code", "500")], 2.0),
        ],
    );
    let err = query.eval(&store, 1000).unwrap_err();
    assert!(err.message.contains("matched 2 series"), "{err}");
    assert!(err.message.contains("sum(req)"), "{err}");
    let rate = q("rate(req[1m])");
    let mut store = store_for(&[&rate]);
    for t in [1000, 11_000] {
        ingest(
            &mut store,
            t,
            &[
                ("req", &[("code", "200")], 1.0),
                ("req", &[("code", "500")], 2.0),
            ],
        );
    }
    let err = rate.eval(&store, 11_000).unwrap_err();
    assert!(err.message.contains("sum(rate(req[1m]))"), "{err}");
}

#[test]
fn no_data_reasons() {
    let query = q("up");
    let mut store = store_for(&[&query]);
    assert_eq!(no_data(&query, &store, 0), NoData::NoScrape);
    ingest(&mut store, 1000, &[("other", &[], 1.0)]);
    let reason = no_data(&query, &store, 1000);
    assert_eq!(reason.to_string(), "no series matched up");
    ingest(&mut store, 2000, &[("up", &[], 1.0)]);
    assert_eq!(number(&query, &store, 2000), 1.0);
    // Older than the 5m lookback.
    let reason = no_data(&query, &store, 2000 + 301_000);
    assert!(matches!(reason, NoData::ScrapeTooOld { .. }), "{reason}");
    assert!(reason.to_string().contains("5m1s"), "{reason}");
}

#[test]
fn a_series_absent_from_a_scrape_is_stale() {
    let instant = q("sum(x)");
    let range = q("sum(increase(x[1m]))");
    let mut store = store_for(&[&instant, &range]);
    let a: &[(&str, &str)] = &[("id", "a")];
    let b: &[(&str, &str)] = &[("id", "b")];
    ingest(&mut store, 0, &[("x", a, 10.0), ("x", b, 100.0)]);
    ingest(&mut store, 15_000, &[("x", a, 20.0), ("x", b, 110.0)]);
    assert_eq!(number(&instant, &store, 15_000), 130.0);
    // `b` disappears: it no longer counts for instant selectors...
    ingest(&mut store, 30_000, &[("x", a, 30.0)]);
    assert_eq!(number(&instant, &store, 30_000), 30.0);
    // ...but its points inside the window still count for range functions.
    let with_b = number(&range, &store, 30_000);
    ingest(&mut store, 45_000, &[("x", a, 40.0)]);
    ingest(&mut store, 60_000, &[("x", a, 50.0)]);
    ingest(&mut store, 75_000, &[("x", a, 60.0)]);
    let without_b = number(&range, &store, 75_000);
    assert!(with_b > without_b, "{with_b} vs {without_b}");
    // Once only `a` has points in the window, the sum is a's increase alone.
    assert_close(without_b, 40.0);

    let only_b = q("x{id=\"b\"}");
    let reason = no_data(&only_b, &store, 75_000);
    assert!(
        reason.to_string().starts_with("no series matched"),
        "{reason}"
    );
    assert!(
        reason.to_string().contains("1 series went stale"),
        "{reason}"
    );
    assert_eq!(number(&instant, &store, 75_000), 60.0);
}

// ---------------------------------------------------------------- rate and increase

/// Points (seconds, value) → rate computed by the same formula Prometheus documents, by hand.
#[test]
fn rate_extrapolates_to_the_window_boundaries() {
    // Scrapes every 15s at t=15..60 for a 1m window ending at 60: the first point is 15s from
    // the window start, within 1.1 × 15s, so it extrapolates all the way: 45s sampled,
    // 15s extrapolated → increase × 60/45.
    let increase = q("increase(c[1m])");
    let rate = q("rate(c[1m])");
    let mut store = store_for(&[&increase, &rate]);
    for (t, v) in [(15, 100.0), (30, 110.0), (45, 120.0), (60, 130.0)] {
        ingest(&mut store, t * 1000, &[("c", &[], v)]);
    }
    assert_close(number(&increase, &store, 60_000), 30.0 * 60.0 / 45.0);
    assert_close(number(&rate, &store, 60_000), 30.0 * 60.0 / 45.0 / 60.0);
    // Evaluated 5s later: the window is (5s, 65s]; the gap to the end is 5s, extrapolated too.
    assert_close(
        number(&increase, &store, 65_000),
        30.0 * (45.0 + 10.0 + 5.0) / 45.0,
    );
}

#[test]
fn rate_extrapolates_half_an_interval_over_large_gaps() {
    let increase = q("increase(c[2m])");
    let mut store = store_for(&[&increase]);
    // The series starts 60s into a 120s window: that gap (> 1.1 × 10s) gets half an
    // interval (5s); the end is exact.
    for (t, v) in [
        (60, 1000.0),
        (70, 1010.0),
        (80, 1020.0),
        (90, 1030.0),
        (100, 1040.0),
        (110, 1050.0),
        (120, 1060.0),
    ] {
        ingest(&mut store, t * 1000, &[("c", &[], v)]);
    }
    assert_close(
        number(&increase, &store, 120_000),
        60.0 * (60.0 + 5.0) / 60.0,
    );
}

#[test]
fn rate_does_not_extrapolate_below_zero() {
    let increase = q("increase(c[1m])");
    let mut store = store_for(&[&increase]);
    // A counter starting at 2 that grows 10 per 10s: the zero point is 2s before the first
    // sample, closer than the 10s window start gap → extrapolate 2s only.
    for (t, v) in [
        (10, 2.0),
        (20, 12.0),
        (30, 22.0),
        (40, 32.0),
        (50, 42.0),
        (60, 52.0),
    ] {
        ingest(&mut store, t * 1000, &[("c", &[], v)]);
    }
    let sampled = 50.0;
    assert_close(
        number(&increase, &store, 60_000),
        50.0 * (sampled + 2.0) / sampled,
    );
}

#[test]
fn rate_handles_counter_resets() {
    let increase = q("increase(c[1m])");
    let mut store = store_for(&[&increase]);
    // Pod restart between 30s and 45s: 100 → 5. Increase = (130 - 100) ... via resets:
    // last - first + value before reset = 15 - 100 + 120 = 35 over 45s sampled.
    for (t, v) in [(15, 100.0), (30, 120.0), (45, 5.0), (60, 15.0)] {
        ingest(&mut store, t * 1000, &[("c", &[], v)]);
    }
    assert_close(number(&increase, &store, 60_000), 35.0 * 60.0 / 45.0);
}

#[test]
fn rate_needs_two_points() {
    let rate = q("rate(c[1m])");
    let mut store = store_for(&[&rate]);
    ingest(&mut store, 10_000, &[("c", &[], 1.0)]);
    let reason = no_data(&rate, &store, 10_000);
    assert_eq!(
        reason.to_string(),
        "not enough history for rate over 1m (1 point)"
    );
    ingest(&mut store, 20_000, &[("c", &[], 2.0)]);
    number(&rate, &store, 20_000);
    // Both points outside the window because scraping stopped: said so.
    let reason = no_data(&rate, &store, 200_000);
    assert_eq!(reason.to_string(), "the latest successful scrape is 3m old");
    // The window is left-open: a point exactly at now - range does not count.
    let reason = no_data(&rate, &store, 70_000);
    assert_eq!(
        reason.to_string(),
        "not enough history for rate over 1m (1 point)"
    );
}

#[test]
fn sum_of_rates_skips_series_without_history() {
    let query = q("sum(rate(c[1m]))");
    let mut store = store_for(&[&query]);
    let a: &[(&str, &str)] = &[("id", "a")];
    let b: &[(&str, &str)] = &[("id", "b")];
    ingest(&mut store, 0, &[("c", a, 0.0)]);
    ingest(&mut store, 30_000, &[("c", a, 30.0)]);
    ingest(&mut store, 60_000, &[("c", a, 60.0), ("c", b, 80.0)]);
    // a: the window (0s, 60s] excludes the point at 0s; 30 over 30s sampled, the 30s gap to
    // the window start is within 1.1 × 30s, so it extrapolates all the way: 60 per 60s.
    // b has one point: no rate, and it does not make the sum "no data".
    assert_close(number(&query, &store, 60_000), 1.0);
    ingest(&mut store, 90_000, &[("c", a, 90.0), ("c", b, 110.0)]);
    assert_close(number(&query, &store, 90_000), 2.0);
}

// ---------------------------------------------------------------- histogram_quantile

fn buckets(pairs: &[(f64, f64)]) -> Vec<Bucket> {
    pairs
        .iter()
        .map(|&(upper, count)| Bucket { upper, count })
        .collect()
}

fn quantile(qv: f64, pairs: &[(f64, f64)]) -> QueryValue {
    bucket_quantile(qv, &mut buckets(pairs))
}

#[test]
fn bucket_quantile_interpolates() {
    let h = [
        (0.1, 50.0),
        (0.5, 90.0),
        (1.0, 100.0),
        (f64::INFINITY, 100.0),
    ];
    // rank 25 in the first bucket: 0 + 0.1 × 25/50.
    assert_eq!(quantile(0.25, &h), QueryValue::Number(0.05));
    // rank 70: 0.1 + 0.4 × (70-50)/40.
    assert_eq!(quantile(0.7, &h), QueryValue::Number(0.1 + 0.4 * 0.5));
    assert_eq!(quantile(0.99, &h), QueryValue::Number(0.5 + 0.5 * 0.9));
    // Unsorted input is sorted first.
    let shuffled = [
        (1.0, 100.0),
        (f64::INFINITY, 100.0),
        (0.5, 90.0),
        (0.1, 50.0),
    ];
    assert_eq!(quantile(0.7, &shuffled), quantile(0.7, &h));
}

#[test]
fn bucket_quantile_special_cases() {
    let h = [(1.0, 10.0), (f64::INFINITY, 20.0)];
    // In the +Inf bucket: the highest finite bound.
    assert_eq!(quantile(0.9, &h), QueryValue::Number(1.0));
    assert_eq!(quantile(-0.1, &h), QueryValue::Number(f64::NEG_INFINITY));
    assert_eq!(quantile(1.1, &h), QueryValue::Number(f64::INFINITY));
    assert!(matches!(quantile(f64::NAN, &h), QueryValue::Number(v) if v.is_nan()));
    assert_eq!(
        quantile(0.5, &[(1.0, 10.0)]),
        QueryValue::NoData(NoData::NoInfBucket)
    );
    assert_eq!(
        quantile(0.5, &[(f64::INFINITY, 10.0)]),
        QueryValue::NoData(NoData::TooFewBuckets)
    );
    assert_eq!(
        quantile(0.5, &[(1.0, 0.0), (f64::INFINITY, 0.0)]),
        QueryValue::NoData(NoData::NoObservations)
    );
    // First bucket with a non-positive bound: its bound, no interpolation from 0.
    assert_eq!(
        quantile(0.1, &[(-1.0, 10.0), (0.0, 20.0), (f64::INFINITY, 20.0)]),
        QueryValue::Number(-1.0)
    );
    // Non-monotonic counts are flattened: the 0.5 bucket's 5 becomes 10.
    assert_eq!(
        quantile(
            0.5,
            &[(0.1, 10.0), (0.5, 5.0), (1.0, 20.0), (f64::INFINITY, 20.0)]
        ),
        QueryValue::Number(0.1)
    );
    // Equal bounds are summed (the implicit sum by le).
    assert_eq!(
        quantile(
            0.5,
            &[
                (1.0, 5.0),
                (1.0, 5.0),
                (2.0, 20.0),
                (f64::INFINITY, 10.0),
                (f64::INFINITY, 10.0)
            ]
        ),
        QueryValue::Number(1.0)
    );
}

#[test]
fn histogram_quantile_sums_buckets_over_series() {
    let query = q("histogram_quantile(0.5, h_bucket)");
    let mut store = store_for(&[&query]);
    let samples: &[S<'_>] = &[
        ("h_bucket", &[("le", "1"), ("path", "/a")], 10.0),
        ("h_bucket", &[("le", "2"), ("path", "/a")], 20.0),
        ("h_bucket", &[("le", "+Inf"), ("path", "/a")], 20.0),
        ("h_bucket", &[("le", "1.0"), ("path", "/b")], 0.0),
        ("h_bucket", &[("le", "2.0"), ("path", "/b")], 20.0),
        ("h_bucket", &[("le", "+Inf"), ("path", "/b")], 20.0),
    ];
    ingest(&mut store, 1000, samples);
    // Summed: le=1 → 10, le=2 → 40, +Inf → 40; rank 20 → 1 + 1 × (20-10)/30.
    assert_close(number(&query, &store, 1000), 1.0 + 10.0 / 30.0);
}

#[test]
fn histogram_quantile_over_rates() {
    let query = q("histogram_quantile(0.9, rate(h_bucket[1m]))");
    let mut store = store_for(&[&query]);
    for (t, scale) in [(0, 0.0), (30, 1.0), (60, 2.0)] {
        let f = |n: f64| n * scale;
        ingest(
            &mut store,
            t * 1000,
            &[
                ("h_bucket", &[("le", "0.1")], f(50.0)),
                ("h_bucket", &[("le", "1")], f(100.0)),
                ("h_bucket", &[("le", "+Inf")], f(100.0)),
            ],
        );
    }
    // Rates are proportional to the per-window increase (50 and 100 per 30s): rank 90 of 100
    // → 0.1 + 0.9 × (90-50)/50.
    assert_close(number(&query, &store, 60_000), 0.1 + 0.9 * 0.8);
}

#[test]
fn histogram_quantile_input_errors() {
    let query = q("histogram_quantile(0.5, {__name__=~\"h_.*\"})");
    let mut store = store_for(&[&query]);
    ingest(&mut store, 1000, &[("h_count", &[], 3.0)]);
    let err = query.eval(&store, 1000).unwrap_err();
    assert!(err.message.contains("`le`"), "{err}");
    let query = q("histogram_quantile(0.5, h_bucket)");
    let mut store = store_for(&[&query]);
    ingest(&mut store, 1000, &[("h_bucket", &[("le", "fast")], 3.0)]);
    assert!(
        query
            .eval(&store, 1000)
            .unwrap_err()
            .message
            .contains("not a number")
    );
    let mut store = store_for(&[&query]);
    ingest(&mut store, 1000, &[("h_bucket", &[("le", "1")], 3.0)]);
    assert_eq!(no_data(&query, &store, 1000), NoData::NoInfBucket);
}

// ---------------------------------------------------------------- the store

#[test]
fn store_keeps_only_wanted_series() {
    let query = q("sum(rate(wanted[1m]))");
    let mut store = store_for(&[&query]);
    let stats = ingest(
        &mut store,
        1000,
        &[
            ("wanted", &[("a", "1")], 1.0),
            ("unwanted", &[("a", "1")], 1.0),
            ("wanted", &[("a", "2")], 1.0),
        ],
    );
    assert_eq!(
        stats,
        IngestStats {
            samples: 3,
            kept: 2,
            duplicates: 0
        }
    );
    assert_eq!(store.len(), 2);
    assert_eq!(
        store.interest().metric_names().collect::<Vec<_>>(),
        vec!["wanted"]
    );
    assert_eq!(store.interest().longest_range_ms(), 60_000);
}

#[test]
fn duplicates_keep_the_first_sample() {
    let query = q("x");
    let mut store = store_for(&[&query]);
    let stats = ingest(&mut store, 1000, &[("x", &[], 1.0), ("x", &[], 2.0)]);
    assert_eq!(stats.duplicates, 1);
    assert_eq!(number(&query, &store, 1000), 1.0);
}

#[test]
fn old_points_are_dropped() {
    let query = q("rate(x[1m])");
    let limits = StoreLimits {
        retention_margin_ms: 10_000,
        ..StoreLimits::default()
    };
    let mut store = SeriesStore::new(Interest::new([&query]), limits);
    for t in 0..20 {
        ingest(&mut store, t * 10_000, &[("x", &[], t as f64)]);
    }
    // Kept: points after 190s - 60s - 10s = 120s → 130..190 = 7 points.
    assert_eq!(store.series().first().map(|s| s.points.len()), Some(7));
    // A series that went away entirely is dropped once its points age out.
    let gone = q("y");
    let mut store = store_for(&[&gone]);
    ingest(&mut store, 1000, &[("y", &[], 1.0)]);
    ingest(&mut store, 2000, &[]);
    assert!(store.is_empty());
}

#[test]
fn point_cap_truncation_is_reported() {
    let query = q("rate(x[10m])");
    let limits = StoreLimits {
        max_points_per_series: 8,
        ..StoreLimits::default()
    };
    let mut store = SeriesStore::new(Interest::new([&query]), limits);
    for t in 0..20 {
        ingest(&mut store, t * 10_000, &[("x", &[], t as f64)]);
    }
    let err = query.eval(&store, 190_000).unwrap_err();
    assert!(err.message.contains("8 points"), "{err}");
}

#[test]
fn series_limit_is_an_error_and_rolls_back() {
    let query = q("sum(x)");
    let limits = StoreLimits {
        max_series: 2,
        ..StoreLimits::default()
    };
    let mut store = SeriesStore::new(Interest::new([&query]), limits);
    ingest(&mut store, 1000, &[("x", &[("i", "1")], 1.0)]);
    let err = store
        .ingest_samples(
            2000,
            [
                ("x", &[("i", "1")][..], 5.0),
                ("x", &[("i", "2")][..], 1.0),
                ("x", &[("i", "3")][..], 1.0),
            ],
        )
        .unwrap_err();
    assert!(err.to_string().contains("more than 2 series"), "{err}");
    // The failed scrape left nothing behind.
    assert_eq!(store.len(), 1);
    assert_eq!(store.last_scrape_ms(), Some(1000));
    assert_eq!(number(&query, &store, 1000), 1.0);
}

#[test]
fn source_errors_roll_back_the_scrape() {
    let query = q("sum(x)");
    let mut store = store_for(&[&query]);
    ingest(&mut store, 1000, &[("x", &[], 1.0)]);
    let items: Vec<Result<S<'_>, &str>> = vec![Ok(("x", &[], 2.0)), Err("line 3: bad")];
    let err = store.ingest(2000, items).unwrap_err();
    assert_eq!(err, IngestError::Source("line 3: bad"));
    assert_eq!(store.last_scrape_ms(), Some(1000));
    assert_eq!(number(&query, &store, 5000), 1.0);
}

#[test]
fn scrape_times_must_increase() {
    let query = q("x");
    let mut store = store_for(&[&query]);
    ingest(&mut store, 1000, &[("x", &[], 1.0)]);
    assert!(matches!(
        store.ingest_samples(1000, [("x", &[][..], 1.0)]),
        Err(IngestError::OutOfOrder { .. })
    ));
}

#[test]
fn duplicate_label_names_are_rejected() {
    let query = q("x");
    let mut store = store_for(&[&query]);
    let err = store
        .ingest_samples(1000, [("x", &[("a", "1"), ("a", "2")][..], 1.0)])
        .unwrap_err();
    assert!(err.to_string().contains("`a` twice"), "{err}");
}

#[test]
fn set_interest_drops_unneeded_series() {
    let a = q("a");
    let b = q("b");
    let mut store = store_for(&[&a, &b]);
    ingest(&mut store, 1000, &[("a", &[], 1.0), ("b", &[], 2.0)]);
    assert_eq!(store.len(), 2);
    store.set_interest(Interest::new([&b]));
    assert_eq!(store.len(), 1);
    assert_eq!(number(&b, &store, 1000), 2.0);
}

// ---------------------------------------------------------------- templates

fn pod_lookup(p: &Placeholder) -> Option<&'static str> {
    match p {
        Placeholder::Pod => Some("web-7d9f\"x"),
        Placeholder::Namespace => Some("shop"),
        Placeholder::Node => None,
        Placeholder::PodIp => Some("10.0.0.7"),
        Placeholder::Label(k) if k == "app" => Some("it's\\new\nline"),
        Placeholder::Label(_) => None,
    }
}

#[test]
fn template_renders_escaped_values() {
    let t = Template::parse(
        r#"sum(rate(x{namespace="{{namespace}}", pod="{{ pod }}", app='{{label "app"}}'}[1m]))"#,
    )
    .unwrap();
    assert!(!t.is_batched());
    assert_eq!(t.placeholders().count(), 3);
    assert_eq!(
        t.render(pod_lookup).unwrap(),
        r#"sum(rate(x{namespace="shop", pod="web-7d9f\"x", app='it\'s\\new\nline'}[1m]))"#
    );
    let t = Template::parse(r#"x{node="{{node}}"}"#).unwrap();
    let err = t.render(pod_lookup).unwrap_err();
    assert_eq!(err.placeholder, Placeholder::Node);
    let t = Template::parse(r#"x{team="{{label 'team'}}"}"#).unwrap();
    let err = t.render(pod_lookup).unwrap_err();
    assert!(err.to_string().contains("\"team\""), "{err}");
}

#[test]
fn template_batched_queries() {
    let t =
        Template::parse("max by (namespace, pod) (work_queue_depth{job=\"a\"}) # depth").unwrap();
    assert!(t.is_batched());
    assert_eq!(t.render(|_| None).unwrap(), t.source);
}

#[test]
fn template_longest_range_reads_ranges_and_subqueries_outside_strings() {
    for (src, ms) in [
        ("max by (namespace, pod) (work_queue_depth)", 0),
        ("sum(rate(x[1m])) / sum(rate(y[2m30s]))", 150_000),
        ("max_over_time(rate(x[30s])[1h:1m])", 3_600_000),
        (r#"rate(x{path="[9h]"}[500ms])"#, 500),
        (
            "histogram_quantile(0.9, sum by (le) (rate(b[5m])))",
            300_000,
        ),
        ("x[1d]", 86_400_000),
    ] {
        let t = Template::parse(src).unwrap();
        assert_eq!(t.longest_range_ms(), ms, "{src}");
    }
}

#[test]
fn template_errors_have_columns() {
    for (src, column, needle) in [
        ("x{pod={{pod}}}", 7, "string literal"),
        ("x{pod=\"{{pdo}}\"}", 8, "unknown placeholder"),
        ("x{pod=\"{{pod\"}", 8, "unterminated placeholder"),
        ("x{pod=\"{{label app}}\"}", 8, "unknown placeholder"),
        ("x{pod=`{{pod}}`}", 8, "raw"),
        ("sum(x{a=\"b\"}", 4, "never closed"),
        ("sum(x{a=\"b\")}", 12, "does not match"),
        ("x{a=\"b}", 5, "unterminated string"),
        ("x)", 2, "unbalanced"),
    ] {
        match Template::parse(src) {
            Ok(_) => panic!("{src:?} should be rejected"),
            Err(e) => {
                assert_eq!(e.column, column, "{src}: {e}");
                assert!(e.message.contains(needle), "{src}: {e}");
            }
        }
    }
}

#[test]
fn label_length_limit_names_the_part_its_size_and_the_limit() {
    let query = q("sum({__name__=~\"x.*\"})");
    let limits = StoreLimits {
        max_label_bytes: 8,
        ..StoreLimits::default()
    };
    let mut store = SeriesStore::new(Interest::new([&query]), limits);
    // At the limit is fine.
    ingest(&mut store, 1000, &[("x", &[("abcdefgh", "12345678")], 1.0)]);
    let cases: [(S<'_>, &str); 3] = [
        (("x123456789", &[], 1.0), "the metric name is 10 bytes"),
        (
            ("x", &[("abcdefghi", "1")], 1.0),
            "label name `abcdefghi` is 9 bytes",
        ),
        (
            ("x", &[("a", "123456789")], 1.0),
            "the value of label `a` is 9 bytes",
        ),
    ];
    for (t, (sample, want)) in (2..).zip(cases) {
        let err = store.ingest_samples(t * 1000, [sample]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(want), "{msg}");
        assert!(msg.contains("over the 8 byte label length limit"), "{msg}");
    }
    // The rejected scrapes left nothing behind.
    assert_eq!(store.len(), 1);
    assert_eq!(store.last_scrape_ms(), Some(1000));
}

#[test]
fn long_names_are_shortened_in_the_label_limit_message() {
    let query = q("sum({__name__=~\"x.*\"})");
    let mut store = SeriesStore::new(Interest::new([&query]), StoreLimits::default());
    let name = format!("x{}", "y".repeat(100_000));
    let err = store
        .ingest_samples(1000, [(name.as_str(), &[][..], 1.0)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("100001 bytes, over the 4096 byte"), "{err}");
    assert!(
        err.len() < 300,
        "the message quotes a shortened name: {} bytes",
        err.len()
    );
}
