//! Rule-by-rule tests of the parser in both formats.

use std::borrow::Cow;

use super::*;

type Owned = (String, Vec<(String, String)>, f64, Option<i64>);

fn owned(s: &Sample<'_>) -> Owned {
    (
        s.name.to_string(),
        s.labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.into_owned()))
            .collect(),
        s.value,
        s.timestamp_ms,
    )
}

fn parse_all(body: &str, format: Format) -> Result<Vec<Owned>, ParseError> {
    parse(body, format).map(|r| r.map(|s| owned(&s))).collect()
}

#[track_caller]
fn ok(body: &str, format: Format) -> Vec<Owned> {
    match parse_all(body, format) {
        Ok(samples) => samples,
        Err(e) => panic!("{body:?} should parse, got {e}"),
    }
}

#[track_caller]
fn text(body: &str) -> Vec<Owned> {
    ok(body, Format::Text)
}

#[track_caller]
fn om(body: &str) -> Vec<Owned> {
    ok(body, Format::OpenMetrics)
}

#[track_caller]
fn err(body: &str, format: Format) -> ParseError {
    match parse_all(body, format) {
        Ok(samples) => panic!("{body:?} should fail, parsed {samples:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn text_err(body: &str) -> ParseError {
    err(body, Format::Text)
}

#[track_caller]
fn om_err(body: &str) -> ParseError {
    err(body, Format::OpenMetrics)
}

fn s(name: &str, labels: &[(&str, &str)], value: f64, ts: Option<i64>) -> Owned {
    (
        name.to_string(),
        labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        value,
        ts,
    )
}

// ----- shared API ---------------------------------------------------------------------------

#[test]
fn format_from_content_type() {
    for ct in [
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "application/openmetrics-text",
        "Application/OpenMetrics-Text;version=0.0.1",
        " application/openmetrics-text ; version=1.0.0",
        "application/openmetrics-text;",
        "application/openmetrics-text; version=1.0.0; charset=\"utf-8; really\"",
    ] {
        assert_eq!(Format::from_content_type(ct), Format::OpenMetrics, "{ct}");
    }
    for ct in [
        "text/plain; version=0.0.4; charset=utf-8",
        "text/plain",
        "",
        "application/json",
        "application/openmetrics-textual",
        // Malformed parameters make Go's mime.ParseMediaType fail; Prometheus then
        // falls back to the text parser.
        "application/openmetrics-text; version",
        "application/openmetrics-text; version=",
        "application/openmetrics-text; version=1;;",
        "application/openmetrics-text; =1",
        "application/openmetrics-text; a=1; A=2",
        "application/openmetrics-text; a=\"unterminated",
        "application/openmetrics-text x",
    ] {
        assert_eq!(Format::from_content_type(ct), Format::Text, "{ct}");
    }
}

#[test]
fn parse_error_display_names_the_line() {
    let e = ParseError {
        line: 12,
        message: "expected '=' after label name \"code\", found '}'".to_string(),
    };
    assert_eq!(
        e.to_string(),
        "line 12: expected '=' after label name \"code\", found '}'"
    );
}

#[test]
fn iterator_ends_after_an_error() {
    let mut p = parse("a 1\nb x\nc 3\n", Format::Text);
    assert!(matches!(p.next(), Some(Ok(_))));
    assert!(matches!(p.next(), Some(Err(ParseError { line: 2, .. }))));
    assert!(p.next().is_none());
    assert!(p.next().is_none());
}

#[test]
fn decode_body_reports_the_line_of_invalid_utf8() {
    assert_eq!(decode_body(b"a 1\n"), Ok("a 1\n"));
    let e = decode_body(b"a 1\nb{l=\"\xff\"} 2\n").expect_err("invalid UTF-8");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("invalid UTF-8"), "{e}");
}

// ----- text format: what is accepted ----------------------------------------------------------

#[test]
fn text_basic_samples() {
    assert_eq!(
        text(
            "go_goroutines 10\nhttp_requests_total{code=\"200\",path=\"/api\"} 1042 1700000000000\n"
        ),
        vec![
            s("go_goroutines", &[], 10.0, None),
            s(
                "http_requests_total",
                &[("code", "200"), ("path", "/api")],
                1042.0,
                Some(1_700_000_000_000)
            ),
        ]
    );
}

#[test]
fn text_names_with_colons_and_underscores() {
    assert_eq!(
        text("job:http_requests:rate5m{job=\"a\"} 12.5\n_x 1\n:y 2\n"),
        vec![
            s("job:http_requests:rate5m", &[("job", "a")], 12.5, None),
            s("_x", &[], 1.0, None),
            s(":y", &[], 2.0, None),
        ]
    );
}

#[test]
fn text_empty_label_set_and_trailing_comma() {
    assert_eq!(
        text("a{} 1\nb{x=\"1\",} 2\nc { x = \"1\" , y= \"2\", } 3\n"),
        vec![
            s("a", &[], 1.0, None),
            s("b", &[("x", "1")], 2.0, None),
            s("c", &[("x", "1"), ("y", "2")], 3.0, None),
        ]
    );
}

#[test]
fn text_accepts_prometheus_quirks() {
    // promparse accepts labels without a comma between them, a value right after '}',
    // tabs as separators, and a value glued to the name when it cannot continue the name.
    assert_eq!(
        text("a{x=\"1\" y=\"2\"} 1\nb{}2\nc\t3\t4\nd+5\n"),
        vec![
            s("a", &[("x", "1"), ("y", "2")], 1.0, None),
            s("b", &[], 2.0, None),
            s("c", &[], 3.0, Some(4)),
            s("d", &[], 5.0, None),
        ]
    );
}

#[test]
fn text_escaped_label_values() {
    let body = concat!(
        r#"m{path="/api/v1,users",query="a=b&c=}d",quote="say \"hi\"",msg="line1\nline2",backslash="C:\\temp"} 1"#,
        "\n"
    );
    assert_eq!(
        text(body),
        vec![s(
            "m",
            &[
                ("path", "/api/v1,users"),
                ("query", "a=b&c=}d"),
                ("quote", "say \"hi\""),
                ("msg", "line1\nline2"),
                ("backslash", "C:\\temp"),
            ],
            1.0,
            None
        )]
    );
}

#[test]
fn text_unknown_escapes_are_kept_as_written() {
    // Prometheus's replacer only knows \\, \" and \n; others stay, backslash included.
    assert_eq!(
        text("m{a=\"tab\\there\",b=\"\\q\\\\n\"} 1\n"),
        vec![s("m", &[("a", "tab\\there"), ("b", "\\q\\n")], 1.0, None)]
    );
}

#[test]
fn text_label_values_may_hold_raw_newlines() {
    let body = "m{a=\"x\ny\"} 1\nbad\n";
    let mut p = parse(body, Format::Text);
    let first = p.next().and_then(Result::ok).map(|s| owned(&s));
    assert_eq!(first, Some(s("m", &[("a", "x\ny")], 1.0, None)));
    // Line numbers keep counting through the value.
    assert!(matches!(p.next(), Some(Err(ParseError { line: 3, .. }))));
}

#[test]
fn text_special_values() {
    let got = text("a NaN\nb +Inf\nc -Inf\nd nan\ne inf\nf -infinity\ng Infinity\n");
    assert!(got[0].2.is_nan() && got[3].2.is_nan());
    assert_eq!(got[1].2, f64::INFINITY);
    assert_eq!(got[2].2, f64::NEG_INFINITY);
    assert_eq!(got[4].2, f64::INFINITY);
    assert_eq!(got[5].2, f64::NEG_INFINITY);
    assert_eq!(got[6].2, f64::INFINITY);
    assert_eq!(got.len(), 7);
}

#[test]
fn text_number_spellings() {
    let got = text("a 1.44565e+06\nb -0.5\nc .5\nd 1.\ne 1E-3\nf +7\n");
    let values: Vec<f64> = got.iter().map(|x| x.2).collect();
    assert_eq!(values, vec![1_445_650.0, -0.5, 0.5, 1.0, 0.001, 7.0]);
}

#[test]
fn text_comments_metadata_and_blank_lines() {
    let body = "\
# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
#\tTYPE tabbed counter
#just a comment
# some comment with \\ backslash
#
# HELP
# HELPER not metadata
# EOF is only a comment here

   \t
  go_goroutines 10
# TYPE after gauge
after 1
";
    assert_eq!(
        text(body),
        vec![
            s("go_goroutines", &[], 10.0, None),
            s("after", &[], 1.0, None)
        ]
    );
}

#[test]
fn text_without_final_newline() {
    assert_eq!(text("a 1"), vec![s("a", &[], 1.0, None)]);
    assert_eq!(text("a 1 5"), vec![s("a", &[], 1.0, Some(5))]);
    assert_eq!(
        text("a{b=\"c\"} 1   "),
        vec![s("a", &[("b", "c")], 1.0, None)]
    );
    assert_eq!(text("# TYPE a gauge"), vec![]);
    assert_eq!(text(""), vec![]);
}

#[test]
fn text_trailing_blanks_after_value_and_timestamp() {
    assert_eq!(
        text("a 1 \t\nb 2 7  \n"),
        vec![s("a", &[], 1.0, None), s("b", &[], 2.0, Some(7))]
    );
}

#[test]
fn text_help_and_type_metadata() {
    let body = "# HELP a_total Requests \\\\ served\\nsecond line \\\"q\\\".\n# TYPE a_total counter\na_total 1\n";
    let mut p = parse(body, Format::Text);
    assert!(matches!(p.next(), Some(Ok(_))));
    assert_eq!(p.metric_type("a_total"), MetricType::Counter);
    assert_eq!(p.metric_type("other"), MetricType::Unknown);
    let (name, help) = p.help().expect("help was read");
    assert_eq!(name, "a_total");
    assert_eq!(help, "Requests \\ served\nsecond line \\\"q\\\".");
    assert!(p.exemplar().is_none());

    let mut p = parse("# HELP x\n# HELP y   \nx 1\n", Format::Text);
    assert!(matches!(p.next(), Some(Ok(_))));
    assert_eq!(p.help(), Some((Cow::Borrowed("y"), Cow::Borrowed(""))));

    let mut p = parse(
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\n# TYPE u untyped\nu 1\n",
        Format::Text,
    );
    assert!(matches!(p.next(), Some(Ok(_))));
    assert_eq!(p.metric_type("h_bucket"), MetricType::Histogram);
    assert!(matches!(p.next(), Some(Ok(_))));
    assert_eq!(p.metric_type("u"), MetricType::Unknown);
}

#[test]
fn text_help_may_run_into_the_name() {
    // promlex drops the byte after the name whatever it is.
    let mut p = parse("# HELP a{b\na 1\n", Format::Text);
    assert!(matches!(p.next(), Some(Ok(_))));
    assert_eq!(p.help(), Some((Cow::Borrowed("a"), Cow::Borrowed("b"))));
}

#[test]
fn text_nul_bytes_inside_label_values_and_comments() {
    assert_eq!(
        text("# comment \0 here\n# HELP m a\0b\nm{a=\"abc\0\"} 1\n"),
        vec![s("m", &[("a", "abc\0")], 1.0, None)]
    );
}

#[test]
fn empty_label_values_are_left_out_as_prometheus_does() {
    assert_eq!(
        text("m{a=\"\",b=\"x\"} 1\n"),
        vec![s("m", &[("b", "x")], 1.0, None)]
    );
    assert_eq!(
        om("m{a=\"\",b=\"x\",c=\"\"} 1\n# EOF\n"),
        vec![s("m", &[("b", "x")], 1.0, None)]
    );
    let sample = parse("m{a=\"\"} 1\n", Format::Text)
        .next()
        .and_then(Result::ok)
        .expect("one sample");
    assert!(sample.labels.is_empty());
    assert_eq!(sample.labels.len(), 0);
    // Still a duplicate, whatever the values.
    assert_text_err("m{a=\"\",a=\"x\"} 1\n", 1, "duplicate label name \"a\"");
}

#[test]
fn text_many_labels_are_checked_for_duplicates() {
    let names: Vec<String> = (0..40).map(|i| format!("l{i}=\"v\"")).collect();
    let body = format!("m{{{}}} 1\n", names.join(","));
    assert_eq!(text(&body)[0].1.len(), 40);
    let dup = format!("m{{{},l7=\"again\"}} 1\n", names.join(","));
    let e = text_err(&dup);
    assert_eq!(e.line, 1);
    assert!(e.message.contains("duplicate label name \"l7\""), "{e}");
}

// ----- text format: what is refused -----------------------------------------------------------

#[track_caller]
fn assert_text_err(body: &str, line: usize, needle: &str) {
    let e = text_err(body);
    assert_eq!(e.line, line, "{body:?}: {e}");
    assert!(e.message.contains(needle), "{body:?}: {e}");
}

#[test]
fn text_missing_equals_names_the_label() {
    assert_text_err(
        "ok 1\n\n# c\nhttp_requests_total{code} 1\n",
        4,
        "expected '=' after label name \"code\", found '}'",
    );
}

#[test]
fn text_unterminated_label_value() {
    assert_text_err(
        "a 1\nb{x=\"open} 1\nc 2\n",
        2,
        "value of label \"x\" is not terminated",
    );
    assert_text_err("b{x=\"ends with backslash\\", 1, "not terminated");
    assert_text_err("b{x=\"a\\\nb\"} 1\n", 1, "backslash before end of line");
}

#[test]
fn text_missing_value() {
    assert_text_err("a 1\nb\n", 2, "expected a value after b, found end of line");
    assert_text_err(
        "b{x=\"1\"}",
        1,
        "expected a value after b, found end of input",
    );
    assert_text_err(
        "b{x=\"1\"}{y=\"2\"} 1\n",
        1,
        "expected a value after b, found '{'",
    );
}

#[test]
fn text_bad_values() {
    assert_text_err("a true\n", 1, "value of a \"true\" is not a number");
    assert_text_err("a 1,5\n", 1, "\"1,5\" is not a number");
    assert_text_err("a 0x1p-3\n", 1, "hex floats");
    assert_text_err("a 1_000\n", 1, "'_' digit separators");
    assert_text_err("a 1e400\n", 1, "out of the range");
    assert_text_err("a +NaN\n", 1, "is not a number");
    assert_text_err("a 1\r\nb 2\r\n", 1, "\\r\\n");
}

#[test]
fn text_bad_timestamps() {
    assert_text_err("a 1 -5\n", 1, "expected a timestamp (integer milliseconds)");
    assert_text_err("a 1 1.5\n", 1, "expected end of line after the timestamp");
    assert_text_err("a 1 1e3\n", 1, "expected end of line after the timestamp");
    assert_text_err("a 1 99999999999999999999\n", 1, "out of range");
    assert_text_err("a 1 2 3\n", 1, "expected end of line after the timestamp");
    assert_text_err("a 1 x\n", 1, "expected a timestamp");
}

#[test]
fn text_bad_names() {
    assert_text_err(
        "1a 1\n",
        1,
        "expected a metric name, a comment or a blank line, found '1'",
    );
    assert_text_err("a\n", 1, "expected a value after a, found end of line");
    assert_text_err("a.b 1\n", 1, "value of a \".b\" is not a number");
    assert_text_err("{a=\"b\"} 1\n", 1, "a sample needs a metric name");
    assert_text_err(
        "a{1x=\"b\"} 1\n",
        1,
        "expected a label name or '}' in the labels of a",
    );
    assert_text_err(
        "a{b:c=\"d\"} 1\n",
        1,
        "expected '=' after label name \"b\", found ':'",
    );
    assert_text_err("a{,b=\"c\"} 1\n", 1, "expected a label name or '}'");
    assert_text_err("a{b=\"c\",,d=\"e\"} 1\n", 1, "found ','");
    assert_text_err(
        "a{b='c'} 1\n",
        1,
        "expected '\"' to start the value of label \"b\"",
    );
    assert_text_err("a{b=c} 1\n", 1, "expected '\"'");
    assert_text_err("\0a 1\n", 1, "found '\\0'");
    assert_text_err("a 1\n  é 2\n", 2, "found 'é'");
}

#[test]
fn text_duplicate_and_reserved_labels() {
    assert_text_err(
        "a{b=\"1\",c=\"2\",b=\"3\"} 1\n",
        1,
        "duplicate label name \"b\"",
    );
    assert_text_err("a{__name__=\"a\"} 1\n", 1, "\"__name__\" is not allowed");
}

#[test]
fn text_bad_metadata() {
    assert_text_err("# TYPE a meter\n", 1, "invalid metric type \"meter\" for a");
    assert_text_err(
        "# TYPE a gauge \na 1\n",
        1,
        "invalid metric type \"gauge \"",
    );
    assert_text_err("# TYPE a  gauge\n", 1, "invalid metric type \" gauge\"");
    assert_text_err("# TYPE a\n", 1, "invalid metric type \"\"");
    assert_text_err("# TYPE a unknown\n", 1, "invalid metric type \"unknown\"");
    assert_text_err("# TYPE a gaugehistogram\n", 1, "invalid metric type");
    assert_text_err(
        "# HELP 1a text\n",
        1,
        "expected a metric name after '# HELP'",
    );
    assert_text_err(
        "# HELP \n",
        1,
        "expected a metric name after '# HELP', found end of line",
    );
    assert_text_err(
        "# TYPE a\u{e9}gauge\n",
        1,
        "expected a blank after the metric name",
    );
    assert_text_err("# TYPE a gauge\r\n", 1, "not \\r\\n");
}

// ----- OpenMetrics: what is accepted ----------------------------------------------------------

#[test]
fn om_basic_body() {
    let body = "\
# HELP http_requests Requests served.
# TYPE http_requests counter
http_requests_total{code=\"200\",path=\"/api\"} 1042.0
http_requests_created{code=\"200\",path=\"/api\"} 1.7952568908251984e+09
# TYPE work_queue_depth_items gauge
# UNIT work_queue_depth_items items
work_queue_depth_items{queue=\"slow \\\"lane\\\"\"} 3.5
empty{} 0
# EOF
";
    assert_eq!(
        om(body),
        vec![
            s(
                "http_requests_total",
                &[("code", "200"), ("path", "/api")],
                1042.0,
                None
            ),
            s(
                "http_requests_created",
                &[("code", "200"), ("path", "/api")],
                1_795_256_890.825_198_4,
                None
            ),
            s(
                "work_queue_depth_items",
                &[("queue", "slow \"lane\"")],
                3.5,
                None
            ),
            s("empty", &[], 0.0, None),
        ]
    );
}

#[test]
fn om_eof_forms() {
    assert_eq!(om("# EOF"), vec![]);
    assert_eq!(om("# EOF\n"), vec![]);
    assert_eq!(om("a 1\n# EOF"), vec![s("a", &[], 1.0, None)]);
}

#[test]
fn an_empty_body_is_a_scrape_without_samples() {
    // Prometheus's scrape loop takes an empty response as an empty scrape in every format;
    // anything else must end with '# EOF' in OpenMetrics.
    assert_eq!(om(""), vec![]);
    assert_eq!(text(""), vec![]);
}

#[test]
fn om_timestamps_past_the_range_of_milliseconds_are_the_earliest_time() {
    // Go's int64(s * 1000) on amd64, as Prometheus 3 computes it: a time no storage keeps.
    assert_eq!(
        om("a 1 12345678901234567890.1\nb 2 -1e300\nc 3 9223372036854775.807\n# EOF\n"),
        vec![
            s("a", &[], 1.0, Some(i64::MIN)),
            s("b", &[], 2.0, Some(i64::MIN)),
            s("c", &[], 3.0, Some(i64::MIN)),
        ]
    );
    let body = "a 1 # {t=\"x\"} 1 1e300\n# EOF\n";
    let mut p = parse(body, Format::OpenMetrics);
    assert!(matches!(p.next(), Some(Ok(_))));
    assert_eq!(p.exemplar().and_then(|e| e.timestamp_ms), Some(i64::MIN));
}

#[test]
fn le_and_quantile_values_are_read_in_openmetrics_float_form() {
    // As Prometheus 3 stores them, in both formats: after a histogram TYPE line `le`, after
    // a summary TYPE line `quantile`, whatever family the sample belongs to (Prometheus goes
    // by the last TYPE line); other types and other labels keep their spelling.
    let body = "\
# TYPE h histogram
h_bucket{le=\"1\",quantile=\"1\"} 1
h_bucket{le=\"1e6\"} 1
other{le=\"0.50\"} 1
# TYPE s summary
s{quantile=\"0\",le=\"1\"} 1
s{quantile=\"+inf\"} 1
# TYPE g gauge
g{le=\"1\",quantile=\"1\"} 1
";
    let want = vec![
        s("h_bucket", &[("le", "1.0"), ("quantile", "1")], 1.0, None),
        s("h_bucket", &[("le", "1e+06")], 1.0, None),
        s("other", &[("le", "0.5")], 1.0, None),
        s("s", &[("quantile", "0.0"), ("le", "1")], 1.0, None),
        s("s", &[("quantile", "+Inf")], 1.0, None),
        s("g", &[("le", "1"), ("quantile", "1")], 1.0, None),
    ];
    assert_eq!(text(body), want);
    assert_eq!(om(&format!("{body}# EOF\n")), want);
    // `gaugehistogram` buckets and values that are not numbers stay as written.
    assert_eq!(
        om(
            "# TYPE g gaugehistogram\ng_bucket{le=\"1\"} 1\n# TYPE h histogram\nh_bucket{le=\"x\"} 1\n# EOF\n"
        ),
        vec![
            s("g_bucket", &[("le", "1")], 1.0, None),
            s("h_bucket", &[("le", "x")], 1.0, None),
        ]
    );
    // Every way of reading the labels agrees, and a value already in that form is borrowed.
    let body = "# TYPE h histogram\nh_bucket{le=\"1\",a=\"b\"} 1\nh_bucket{le=\"2.5\"} 1\n";
    let samples: Vec<_> = parse(body, Format::Text)
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    let [first, second] = samples.as_slice() else {
        panic!("two samples expected, got {samples:?}");
    };
    assert_eq!(first.labels.get("le").as_deref(), Some("1.0"));
    assert_eq!(first.to_string(), "h_bucket{le=\"1.0\",a=\"b\"} 1");
    assert_eq!(
        serde_json::to_string(&first.labels).unwrap_or_default(),
        r#"{"a":"b","le":"1.0"}"#
    );
    assert!(matches!(
        second.labels.get("le"),
        Some(Cow::Borrowed("2.5"))
    ));
}

#[test]
fn om_timestamps_are_seconds() {
    assert_eq!(
        om("a 1 1520879607.789\nb 2 -1.5\nc 3 0.0015\nd 4 1e3\n# EOF\n"),
        vec![
            s("a", &[], 1.0, Some(1_520_879_607_789)),
            s("b", &[], 2.0, Some(-1500)),
            s("c", &[], 3.0, Some(1)),
            s("d", &[], 4.0, Some(1_000_000)),
        ]
    );
}

#[test]
fn om_exemplars_do_not_alter_the_sample() {
    let body = "\
# TYPE h histogram
h_bucket{le=\"1.0\",route=\"/c\"} 5.0 # {trace_id=\"abc123\"} 0.7 1795256890.8253279
h_bucket{le=\"+Inf\",route=\"/c\"} 6.0 # {} 3.0
h_count{route=\"/c\"} 6.0 123 # {a=\"b\",c=\"d\"} 1
h_sum{route=\"/c\"} 3.951
# EOF
";
    assert_eq!(
        om(body),
        vec![
            s("h_bucket", &[("le", "1.0"), ("route", "/c")], 5.0, None),
            s("h_bucket", &[("le", "+Inf"), ("route", "/c")], 6.0, None),
            s("h_count", &[("route", "/c")], 6.0, Some(123_000)),
            s("h_sum", &[("route", "/c")], 3.951, None),
        ]
    );
    let mut p = parse(body, Format::OpenMetrics);
    assert!(matches!(p.next(), Some(Ok(_))));
    let ex = p.exemplar().expect("first bucket has an exemplar");
    assert_eq!(ex.labels.get("trace_id").as_deref(), Some("abc123"));
    assert_eq!(ex.value, 0.7);
    assert_eq!(ex.timestamp_ms, Some(1_795_256_890_825));
    assert_eq!(p.metric_type("h_bucket"), MetricType::Histogram);
    assert!(matches!(p.next(), Some(Ok(_))));
    assert!(
        p.exemplar()
            .is_some_and(|e| e.labels.is_empty() && e.timestamp_ms.is_none())
    );
    assert!(matches!(p.next(), Some(Ok(_))));
    assert_eq!(p.exemplar().map(|e| e.labels.len()), Some(2));
    assert!(matches!(p.next(), Some(Ok(_))));
    assert!(p.exemplar().is_none(), "h_sum has no exemplar");
}

#[test]
fn om_all_types_and_units() {
    let body = "\
# TYPE a counter
# TYPE b gauge
# TYPE c histogram
# TYPE d gaugehistogram
# TYPE e summary
# TYPE f info
# TYPE h unknown
# TYPE g stateset
# UNIT x_seconds seconds
# UNIT nounit \n# HELP nohelp \n# HELP esc a \\\"q\\\" \\\\ \\n
g{g=\"on\"} 1
# EOF
";
    let mut p = parse(body, Format::OpenMetrics);
    assert!(matches!(p.next(), Some(Ok(_))));
    assert_eq!(p.metric_type("g"), MetricType::StateSet);
    assert_eq!(p.unit(), Some((Cow::Borrowed("nounit"), "")));
    assert_eq!(
        p.help(),
        Some((
            Cow::Borrowed("esc"),
            Cow::Owned("a \"q\" \\ \n".to_string())
        ))
    );
    assert!(p.next().is_none());
}

#[test]
fn om_special_values() {
    let got = om("a NaN\nb +Inf\nc -Inf\nd -inf\n# EOF\n");
    assert!(got[0].2.is_nan());
    assert_eq!(got[1].2, f64::INFINITY);
    assert_eq!(got[2].2, f64::NEG_INFINITY);
    assert_eq!(got[3].2, f64::NEG_INFINITY);
}

// ----- OpenMetrics: what is refused -----------------------------------------------------------

#[track_caller]
fn assert_om_err(body: &str, line: usize, needle: &str) {
    let e = om_err(body);
    assert_eq!(e.line, line, "{body:?}: {e}");
    assert!(e.message.contains(needle), "{body:?}: {e}");
}

#[test]
fn om_requires_eof() {
    assert_om_err("a 1\n", 2, "missing '# EOF'");
    assert_om_err("\n", 1, "found end of line");
    assert_om_err("a 1", 1, "found end of input");
    assert_om_err("a 1 # {b=\"c\"} 1", 1, "found end of input");
}

#[test]
fn om_refuses_text_after_eof() {
    assert_om_err("# EOF\na 1\n", 2, "unexpected data after '# EOF'");
    assert_om_err("# EOF\n\n", 2, "unexpected data after '# EOF'");
    assert_om_err("# EOFa 1", 1, "unexpected data after '# EOF'");
    assert_om_err("# EOF \n", 1, "unexpected data after '# EOF'");
}

#[test]
fn om_refuses_text_format_leniencies() {
    assert_om_err("\n# EOF\n", 1, "found end of line");
    assert_om_err(" a 1\n# EOF\n", 1, "found ' '");
    assert_om_err(
        "a  1\n# EOF\n",
        1,
        "expected ' ' and a value after a, found ' '",
    );
    assert_om_err("a\t1\n# EOF\n", 1, "found '\\t'");
    assert_om_err("a 1 \n# EOF\n", 1, "expected a timestamp");
    assert_om_err("a{b=\"c\" ,d=\"e\"} 1\n# EOF\n", 1, "expected ',' or '}'");
    assert_om_err("a{b=\"c\"d=\"e\"} 1\n# EOF\n", 1, "expected ',' or '}'");
    assert_om_err(
        "a {b=\"c\"} 1\n# EOF\n",
        1,
        "value of a \"{b=\\\"c\\\"}\" is not a number",
    );
    assert_om_err(
        "a{b=\"x\ny\"} 1\n# EOF\n",
        1,
        "not terminated before the end of the line",
    );
    assert_om_err(
        "# just a comment\n# EOF\n",
        1,
        "OpenMetrics has no other comments",
    );
    assert_om_err(
        "#  TYPE c counter\n# EOF\n",
        1,
        "OpenMetrics has no other comments",
    );
    assert_om_err(
        "#\tTYPE c counter\n# EOF\n",
        1,
        "OpenMetrics has no other comments",
    );
    assert_om_err("a 1 1 1\n# EOF\n", 1, "after the timestamp of a, found ' '");
}

#[test]
fn om_bad_metadata() {
    assert_om_err(
        "# TYPE u untyped\n# EOF\n",
        1,
        "invalid metric type \"untyped\"",
    );
    assert_om_err(
        "# TYPE c counter \n# EOF\n",
        1,
        "invalid metric type \"counter \"",
    );
    assert_om_err(
        "# TYPE c  counter\n# EOF\n",
        1,
        "invalid metric type \" counter\"",
    );
    assert_om_err(
        "# TYPE m\n# EOF\n",
        1,
        "expected ' ' and text after the metric name",
    );
    assert_om_err("# HELP m\n# EOF\n", 1, "expected ' ' and text");
    assert_om_err(
        "# HELP \n# EOF\n",
        1,
        "expected a metric name after '# HELP', found end of line",
    );
    assert_om_err(
        "# UNIT metric suffix\n# EOF\n",
        1,
        "unit \"suffix\" is not a suffix",
    );
    assert_om_err("# UNIT metricsuffix suffix\n# EOF\n", 1, "not a suffix");
    assert_om_err("# UNIT m suffix\n# EOF\n", 1, "not a suffix");
    assert_om_err("# HELP m text", 1, "found end of input");
}

#[test]
fn om_bad_samples() {
    assert_om_err("a true\n# EOF\n", 1, "value of a \"true\" is not a number");
    assert_om_err(
        "a 1 1z\n# EOF\n",
        1,
        "timestamp of a \"1z\" is not a number",
    );
    assert_om_err("a 1 NaN\n# EOF\n", 1, "not a finite time");
    assert_om_err("a 1 -Inf\n# EOF\n", 1, "not a finite time");
    assert_om_err("a 1_2\n# EOF\n", 1, "'_' digit separators");
    assert_om_err("a{b='c'} 1\n# EOF\n", 1, "expected '\"'");
    assert_om_err(
        "a{b=\"c} 1\n# EOF\n",
        1,
        "not terminated before the end of the line",
    );
    assert_om_err(
        "a{b=\"1\",b=\"2\"} 1\n# EOF\n",
        1,
        "duplicate label name \"b\"",
    );
    assert_om_err("a{=\"\"} 0\n# EOF\n", 1, "expected a label name");
    assert_om_err("9 1\n# EOF\n", 1, "expected a metric name or '# '");
}

#[test]
fn om_bad_exemplars() {
    assert_om_err("a_total 1 # {aa=bb}\n# EOF\n", 1, "expected '\"'");
    assert_om_err(
        "a_total 1 # {aa=\"bb\"}\n# EOF\n",
        1,
        "expected ' ' and a value after the labels of the exemplar of a_total",
    );
    assert_om_err(
        "a_total 1 # {bb}\n# EOF\n",
        1,
        "expected '=' after label name \"bb\"",
    );
    assert_om_err(
        "a_total 1 # {aa=\"bb\",,cc=\"dd\"} 1\n# EOF\n",
        1,
        "expected a label name",
    );
    assert_om_err(
        "a_total 1 # {aa=\"bb\"} true\n# EOF\n",
        1,
        "value of the exemplar of a_total",
    );
    assert_om_err(
        "a_total 1 # {aa=\"bb\"} 1 NaN\n# EOF\n",
        1,
        "not a finite time",
    );
    assert_om_err(
        "a_total 1 # {aa=\"bb\"} 1 2 3\n# EOF\n",
        1,
        "expected end of line after the exemplar",
    );
    assert_om_err(
        "a_total 1 #{aa=\"bb\"} 1\n# EOF\n",
        1,
        "timestamp of a_total \"#{aa=\\\"bb\\\"}\"",
    );
}

// ----- UTF-8 names (Prometheus 3) -----------------------------------------------------------

#[test]
fn text_utf8_names_are_quoted_inside_the_braces() {
    assert_eq!(
        text(
            "{\"http.server.duration\", \"service.name\"=\"x\"} 1\n\
             {\"name.with.dots\"} 1\n\
             my_metric{\"label.name\"=\"v\"} 1\n\
             { \"a.b\" , \"c.d\" = \"x\" , } 2\n\
             {c=\"d\" \"a.b\"} 3\n\
             {\"a.b\",} 4\n\
             {\"a.b\"}5\n\
             a{\"b\"=\"c\"} 6\n\
             {\"abc\"} 7 1700000000000\n\
             {\"température.celsius\",ville=\"Zürich\",\"区域\"=\"东\"} 21.5\n"
        ),
        vec![
            s("http.server.duration", &[("service.name", "x")], 1.0, None),
            s("name.with.dots", &[], 1.0, None),
            s("my_metric", &[("label.name", "v")], 1.0, None),
            s("a.b", &[("c.d", "x")], 2.0, None),
            s("a.b", &[("c", "d")], 3.0, None),
            s("a.b", &[], 4.0, None),
            s("a.b", &[], 5.0, None),
            s("a", &[("b", "c")], 6.0, None),
            s("abc", &[], 7.0, Some(1_700_000_000_000)),
            s(
                "température.celsius",
                &[("ville", "Zürich"), ("区域", "东")],
                21.5,
                None
            ),
        ]
    );
    // A quoted legacy label name is the same label as the bare one.
    let quoted = text("a{\"b\"=\"c\"} 1\n");
    assert_eq!(quoted, text("a{b=\"c\"} 1\n"));
}

#[test]
fn quoted_names_unescape_like_label_values() {
    // As client_golang writes a name that needs every escape (tests/fixtures).
    let body = "{\"quote\\\"back\\\\slash\\nnewline\",\"la\\\"bel\\\\x\"=\"a\\\"b\"} -1.5\n\
                {\"keep\\q\"} 1\n";
    let want = vec![
        s(
            "quote\"back\\slash\nnewline",
            &[("la\"bel\\x", "a\"b")],
            -1.5,
            None,
        ),
        s("keep\\q", &[], 1.0, None),
    ];
    assert_eq!(text(body), want);
    let om_body = format!("{body}# EOF\n");
    assert_eq!(om(&om_body), want);
}

#[test]
fn raw_newlines_inside_quoted_names() {
    assert_eq!(text("{\"a\nb\"} 1\n"), vec![s("a\nb", &[], 1.0, None)]);
    assert_eq!(
        om("{\"a\nb\",\"c\nd\"=\"e\"} 1\n# EOF\n"),
        vec![s("a\nb", &[("c\nd", "e")], 1.0, None)]
    );
    // The escaped and the raw spelling are one name.
    assert_eq!(
        text("{\"x\\ny\"} 1\n{\"x\ny\"} 2\n"),
        vec![s("x\ny", &[], 1.0, None), s("x\ny", &[], 2.0, None)]
    );
    let e = text_err("{\"a\nb\"} 1\n{\"x\"} y\n");
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn names_are_borrowed_unless_escaped() {
    let body = "{\"a.b\",\"c.d\"=\"x\",\"e\\\"f\"=\"y\"} 1\nplain{g=\"h\"} 2\n{\"i\\\\j\"} 3\n";
    let samples: Vec<Sample<'_>> = parse(body, Format::Text)
        .collect::<Result<_, _>>()
        .expect("valid body");
    assert!(matches!(samples[0].name, Cow::Borrowed("a.b")));
    let names: Vec<_> = samples[0].labels.iter().map(|(n, _)| n).collect();
    assert!(matches!(names[0], Cow::Borrowed("c.d")));
    assert!(matches!(&names[1], Cow::Owned(n) if n == "e\"f"));
    assert_eq!(samples[0].labels.get("e\"f").as_deref(), Some("y"));
    assert!(matches!(samples[1].name, Cow::Borrowed("plain")));
    assert!(matches!(&samples[2].name, Cow::Owned(n) if n == "i\\j"));
}

#[test]
fn quoted_names_in_metadata() {
    let body = "# HELP \"http.server.duration\" Duration of HTTP server requests.\n\
                # TYPE \"http.server.duration\" histogram\n\
                {\"http.server.duration_bucket\",le=\"+Inf\"} 1\n\
                # TYPE \"a\\\"b\" counter\n\
                {\"a\\\"b_total\"} 2\n";
    let mut p = parse(body, Format::Text);
    let first = p.next().and_then(Result::ok).expect("a sample");
    assert_eq!(first.name, "http.server.duration_bucket");
    assert_eq!(p.metric_type(&first.name), MetricType::Histogram);
    assert_eq!(
        p.help(),
        Some((
            Cow::Borrowed("http.server.duration"),
            Cow::Borrowed("Duration of HTTP server requests.")
        ))
    );
    let second = p.next().and_then(Result::ok).expect("a sample");
    assert_eq!(second.name, "a\"b_total");
    assert_eq!(p.metric_type(&second.name), MetricType::Counter);

    let om_body = "# TYPE \"a.b\" counter\n# UNIT \"a.b_seconds\" seconds\n\
                   # HELP \"a.b_seconds\" Help.\n{\"a.b_seconds_total\"} 1\n# EOF\n";
    let mut p = parse(om_body, Format::OpenMetrics);
    assert!(matches!(p.next(), Some(Ok(_))));
    assert_eq!(p.unit(), Some((Cow::Borrowed("a.b_seconds"), "seconds")));
    assert_eq!(p.metric_type("a.b_total"), MetricType::Counter);
    assert_om_err(
        "# UNIT \"a.b\" seconds\n# EOF\n",
        1,
        "unit \"seconds\" is not a suffix of metric \"a.b\"",
    );
    assert_text_err(
        "# TYPE \"a.b\" meter\n",
        1,
        "invalid metric type \"meter\" for \"a.b\"",
    );
    assert_text_err(
        "# TYPE \"a.b counter\n",
        1,
        "quoted metric name is not terminated",
    );
    assert_om_err("# TYPE \"a.b\"counter\n# EOF\n", 1, "expected ' ' and text");
}

#[test]
fn om_utf8_names_and_exemplars() {
    // A line client_golang writes with `escaping=allow-utf-8` (tests/fixtures).
    let body = "{\"http.server.duration_bucket\",\"http.route\"=\"/api/cart\",\"service.name\"=\"checkout\",le=\"0.05\"} 3 # {\"trace.id\"=\"4bf92f35\"} 0.02 1.7964614355277019e+09\n\
                {\"a.b\",} 1\n\
                a{b=\"1\",} 2\n\
                {c=\"d\",\"a.b\"} 3\n\
                # EOF\n";
    assert_eq!(
        om(body),
        vec![
            s(
                "http.server.duration_bucket",
                &[
                    ("http.route", "/api/cart"),
                    ("service.name", "checkout"),
                    ("le", "0.05")
                ],
                3.0,
                None
            ),
            s("a.b", &[], 1.0, None),
            s("a", &[("b", "1")], 2.0, None),
            s("a.b", &[("c", "d")], 3.0, None),
        ]
    );
    let mut p = parse(body, Format::OpenMetrics);
    assert!(matches!(p.next(), Some(Ok(_))));
    let ex = p.exemplar().expect("the bucket has an exemplar");
    assert_eq!(ex.labels.get("trace.id").as_deref(), Some("4bf92f35"));
    assert_eq!(ex.value, 0.02);
    assert_eq!(ex.timestamp_ms, Some(1_796_461_435_527));
}

#[test]
fn utf8_name_errors_follow_prometheus_3() {
    for format in [Format::Text, Format::OpenMetrics] {
        let eof = if format == Format::OpenMetrics {
            "# EOF\n"
        } else {
            ""
        };
        let check = |body: &str, line: usize, needle: &str| {
            let e = err(&format!("{body}{eof}"), format);
            assert_eq!(e.line, line, "{body:?} ({format:?}): {e}");
            assert!(e.message.contains(needle), "{body:?} ({format:?}): {e}");
        };
        check(
            "ok 1\na{\"b\"} 1\n",
            2,
            "the metric name is given twice: a and \"b\"",
        );
        check(
            "{\"a\",\"b\"} 1\n",
            1,
            "the metric name is given twice: \"a\" and \"b\"",
        );
        check("{\"\"} 1\n", 1, "empty metric name");
        check("{\"a.b\",\"\"=\"x\"} 1\n", 1, "empty label name");
        check("{c=\"d\"} 1\n", 1, "a sample needs a metric name");
        check("{} 1\n", 1, "a sample needs a metric name");
        check(
            "{\"a.b\",\"c.d\" 1}\n",
            1,
            "expected '=' after label name \"c.d\", found",
        );
        check(
            "{\"a.b\",\"c\"=\"1\",c=\"2\"} 1\n",
            1,
            "duplicate label name \"c\"",
        );
        check(
            "{\"x\",\"__name__\"=\"y\"} 1\n",
            1,
            "\"__name__\" is not allowed",
        );
        check("{\"a.b} 1\n", 1, "is not terminated");
        check("{\"a\\\nb\"} 1\n", 1, "backslash before end of line");
        check("{\"a\0b\"} 1\n", 1, "NUL byte in a quoted name");
        check(
            "a{http.status=\"5\"} 1\n",
            1,
            "expected '=' after label name \"http\", found '.' (a label name with characters \
             other than letters, digits and '_' must be quoted",
        );
        check("colon_label{a:b=\"c\"} 1\n", 1, "found ':' (a label name");
    }
    assert_text_err(
        "http.server.duration 1\n",
        1,
        "value of http \".server.duration\" is not a number (a metric name with characters \
         other than letters, digits, '_' and ':' must be quoted inside the braces, e.g. \
         {\"http.server.duration\"})",
    );
    assert_om_err(
        "http.server.duration 1\n# EOF\n",
        1,
        "expected ' ' and a value after http, found '.' (a metric name",
    );
    // OpenMetrics has no blanks inside the braces, and an exemplar has no metric name.
    assert_om_err(
        "{\"a.b\", c=\"d\"} 1\n# EOF\n",
        1,
        "expected a label name or '}' in the labels of the sample, found ' '",
    );
    assert_om_err(
        "a_total 1 # {\"trace.id\"} 1\n# EOF\n",
        1,
        "an exemplar has no metric name",
    );
    assert_text_err(
        "a{b=\"x\"c\"y\"} 1\n",
        1,
        "expected '=' after label name \"c\", found '\"'",
    );
    // The text format needs a comma after a quoted metric name.
    assert_text_err(
        "{\"a.b\" c=\"d\"} 1\n",
        1,
        "expected '=' after label name \"a.b\", found 'c'",
    );
}

#[test]
fn many_quoted_labels_are_checked_for_duplicates() {
    let mut labels: Vec<String> = (0..20).map(|i| format!("\"l.{i}\"=\"v\"")).collect();
    labels.push("\"l\\n5\"=\"v\"".to_string());
    labels.push("\"l\n5\"=\"w\"".to_string());
    let e = text_err(&format!("{{\"m\",{}}} 1\n", labels.join(",")));
    assert!(e.message.contains("duplicate label name"), "{e}");
    labels.pop();
    assert_eq!(
        text(&format!("{{\"m\",{}}} 1\n", labels.join(",")))[0]
            .1
            .len(),
        21
    );
}

#[test]
fn utf8_names_display_quoted_and_read_back() {
    let body = "{\"http.server.duration\",\"service.name\"=\"x\",code=\"200\"} 1\n\
                {\"name.with.dots\"} 42\n\
                my_metric{\"label.name\"=\"v\"} 1\n\
                {\"quote\\\"back\\\\slash\\nnewline\",\"la\\\"bel\"=\"a\"} -1.5 17\n\
                {\"a\nb\",\"a:b\"=\"c\"} 2\n\
                {\"legacy_name\",\"legacy_label\"=\"v\"} 3\n";
    let first: Vec<Sample<'_>> = parse(body, Format::Text)
        .collect::<Result<_, _>>()
        .expect("valid body");
    let printed: Vec<String> = first.iter().map(ToString::to_string).collect();
    assert_eq!(
        printed,
        [
            r#"{"http.server.duration","service.name"="x",code="200"} 1"#,
            r#"{"name.with.dots"} 42"#,
            r#"my_metric{"label.name"="v"} 1"#,
            r#"{"quote\"back\\slash\nnewline","la\"bel"="a"} -1.5 17"#,
            r#"{"a\nb","a:b"="c"} 2"#,
            r#"legacy_name{legacy_label="v"} 3"#,
        ]
    );
    for (sample, line) in first.iter().zip(&printed) {
        let again: Vec<Sample<'_>> = parse(line, Format::Text)
            .collect::<Result<_, _>>()
            .expect("printed line parses");
        assert!(again.len() == 1 && again[0].same_as(sample), "{line}");
    }
    let json = serde_json::to_value(&first[3]).expect("serializes");
    assert_eq!(
        json,
        serde_json::json!({
            "name": "quote\"back\\slash\nnewline",
            "labels": {"la\"bel": "a"},
            "value": "-1.5",
            "timestamp_ms": 17
        })
    );
}

#[test]
fn om_float_second_timestamps_in_every_position() {
    // Seconds with a fraction or an exponent, as client_golang writes them; Prometheus 3
    // keeps trunc(seconds * 1000) ms.
    let body = "a_total 1 1.5e3\n\
                b_total 1 0.0\n\
                c_total 1 1.796461178123e+09\n\
                d_bucket{le=\"1.0\"} 1 1.5e3 # {t=\"x\"} 1 1.5e3\n\
                e_bucket{le=\"+Inf\"} 1 # {\"trace.id\"=\"y\"} 1 0.0\n\
                {\"f.g_total\"} 1 2.5E-1 # {t=\"z\"} 1 1796461435.5\n\
                h 1 -1.5e0\n\
                # EOF";
    assert_eq!(
        om(body),
        vec![
            s("a_total", &[], 1.0, Some(1_500_000)),
            s("b_total", &[], 1.0, Some(0)),
            s("c_total", &[], 1.0, Some(1_796_461_178_123)),
            s("d_bucket", &[("le", "1.0")], 1.0, Some(1_500_000)),
            s("e_bucket", &[("le", "+Inf")], 1.0, None),
            s("f.g_total", &[], 1.0, Some(250)),
            s("h", &[], 1.0, Some(-1500)),
        ]
    );
    let mut p = parse(body, Format::OpenMetrics);
    let exemplar_ts: Vec<Option<i64>> = std::iter::from_fn(|| {
        p.next()?.ok()?;
        Some(p.exemplar().and_then(|e| e.timestamp_ms))
    })
    .collect();
    assert_eq!(
        exemplar_ts,
        [
            None,
            None,
            None,
            Some(1_500_000),
            Some(0),
            Some(1_796_461_435_500),
            None
        ]
    );
    // The format is found from `# EOF` when there is no Content-Type (`podgate samples`).
    assert_eq!(detect_format(None, body), Format::OpenMetrics);
    // What Prometheus 3 refuses stays refused: the text format has integer milliseconds.
    assert_text_err(
        "a 1 1.5e3\n",
        1,
        "expected end of line after the timestamp of a, found '.'",
    );
    assert_om_err("a 1 0x10\n# EOF\n", 1, "timestamp of a \"0x10\"");
    assert_om_err("a 1 1.5e3 \n# EOF\n", 1, "after the timestamp of a");
}

// ----- robustness ---------------------------------------------------------------------------

/// Truncating and corrupting a varied body at every position must never panic, and must
/// either parse or report a line that exists.
#[test]
fn corrupted_bodies_never_panic() {
    let body = "\
# HELP h Latency \\ with \\n escapes.
# TYPE h histogram
# UNIT h_seconds seconds
h_bucket{le=\"0.5\",path=\"/a,b=}\\\"c\\\\\"} 1.0 1.5 # {trace_id=\"x\"} 0.2 1.25
h_count{ path = \"/é\" , } 2 17
h:rate{} NaN
# TYPE \"u.t\\\"f\" gauge
{\"u.t\\\"f\",\"l.b\"=\"v\"} 3 1.5e3 # {\"t.id\"=\"x\"} 1 0.0
# EOF
";
    let inserts = [
        "", "\n", " ", "\"", "\\", "{", "}", ",", "=", "#", "\0", "é", "\r",
    ];
    for format in [Format::Text, Format::OpenMetrics] {
        for (cut, _) in body.char_indices() {
            for insert in inserts {
                let (head, tail) = body.split_at(cut);
                for candidate in [head.to_string(), format!("{head}{insert}{tail}")] {
                    let lines = candidate.split('\n').count();
                    for item in parse(&candidate, format) {
                        match item {
                            Ok(sample) => {
                                assert_eq!(sample.labels.iter().count(), sample.labels.len());
                            }
                            Err(e) => {
                                assert!(e.line >= 1 && e.line <= lines, "{e} in {candidate:?}")
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn display_reparses_to_the_same_samples() {
    let body = "\
a{path=\"/api,v1\",q=\"say \\\"hi\\\"\",m=\"l1\\nl2\",b=\"C:\\\\t\",odd=\"\\q\"} 1.44565e+06 1700000000000
b NaN
c -Inf
d{} 1e-7
e{x=\"raw\nnewline\"} -0
";
    let first: Vec<Sample<'_>> = parse(body, Format::Text)
        .collect::<Result<_, _>>()
        .expect("valid body");
    let printed: String = first.iter().map(|s| format!("{s}\n")).collect();
    let second: Vec<Sample<'_>> = parse(&printed, Format::Text)
        .collect::<Result<_, _>>()
        .expect("printed body parses");
    assert_eq!(first.len(), second.len());
    for (a, b) in first.iter().zip(&second) {
        assert!(a.same_as(b), "{a} vs {b}");
    }
    assert_eq!(
        printed.lines().next(),
        Some(
            r#"a{path="/api,v1",q="say \"hi\"",m="l1\nl2",b="C:\\t",odd="\\q"} 1445650 1700000000000"#
        )
    );
}

#[test]
fn escape_free_values_are_borrowed() {
    let body = "m{a=\"plain\",b=\"with \\\"escape\\\"\"} 1\n";
    let sample = parse(body, Format::Text)
        .next()
        .and_then(Result::ok)
        .expect("one sample");
    let values: Vec<_> = sample.labels.iter().map(|(_, v)| v).collect();
    assert!(matches!(values.first(), Some(Cow::Borrowed("plain"))));
    assert!(matches!(values.get(1), Some(Cow::Owned(v)) if v == "with \"escape\""));
}

#[test]
fn format_from_content_type_or_eof() {
    assert_eq!(
        detect_format(Some("application/openmetrics-text; version=1.0.0"), "x 1\n"),
        Format::OpenMetrics
    );
    assert_eq!(
        detect_format(Some("text/plain; version=0.0.4"), "x 1\n# EOF\n"),
        Format::Text
    );
    assert_eq!(detect_format(None, "x 1\n# EOF\n"), Format::OpenMetrics);
    assert_eq!(detect_format(None, "x 1\n"), Format::Text);
    // What client_golang answers to ACCEPT (and to an Accept without escaping).
    for (content_type, format) in [
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8",
            Format::OpenMetrics,
        ),
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores",
            Format::OpenMetrics,
        ),
        (
            "text/plain; version=0.0.4; charset=utf-8; escaping=allow-utf-8",
            Format::Text,
        ),
        (
            "text/plain; version=1.0.0; escaping=allow-utf-8",
            Format::Text,
        ),
    ] {
        assert_eq!(detect_format(Some(content_type), "x 1\n"), format);
    }
}

#[test]
fn protobuf_is_recognised_by_its_media_type() {
    // What client_golang answers to ACCEPT.
    for content_type in [
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=allow-utf-8",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        "Application/Vnd.Google.Protobuf",
    ] {
        assert_eq!(
            detect_encoding(Some(content_type)),
            Encoding::Protobuf,
            "{content_type}"
        );
    }
    for (content_type, format) in [
        (
            "application/openmetrics-text; version=1.0.0",
            Format::OpenMetrics,
        ),
        ("text/plain; version=0.0.4", Format::Text),
        // Malformed parameters: Prometheus falls back to text.
        ("application/vnd.google.protobuf; proto", Format::Text),
        ("application/x-protobuf", Format::Text),
    ] {
        assert_eq!(
            detect_encoding(Some(content_type)),
            Encoding::Text(format),
            "{content_type}"
        );
    }
    assert_eq!(detect_encoding(None), Encoding::Text(Format::Text));
}
