//! Pure logic of the Prometheus source: response parsing, the join, templates, messages.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::error::{QUERY_SHOWN_CHARS, shorten};
use super::redact::redact;
use super::secrets::{FileStamp, stamp_is_settled};
use super::*;
use crate::query::{Placeholder, Template};
use crate::rules::PrometheusLabels;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse_ok(body: &str) -> Vector {
    match parse_response(200, body.as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("expected a vector from {body}, got error: {e}"),
    }
}

fn parse_err(status: u16, body: &str) -> PromErrorKind {
    match parse_response(status, body.as_bytes()) {
        Ok(v) => panic!("expected an error from HTTP {status} {body}, got {v:?}"),
        Err(e) => e,
    }
}

fn sample(pairs: &[(&str, &str)], value: f64) -> Sample {
    Sample {
        labels: labels(pairs),
        value,
    }
}

// --- parsing ---------------------------------------------------------------------------

#[test]
fn vector_with_labels_and_name() {
    let v = parse_ok(
        r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","job":"a","instance":"x:1"},"value":[1700000000.123,"1"]},
            {"metric":{"job":"b"},"value":[1700000000.123,"0.25"]}
        ]}}"#,
    );
    assert_eq!(
        v.samples,
        vec![
            sample(
                &[("__name__", "up"), ("job", "a"), ("instance", "x:1")],
                1.0
            ),
            sample(&[("job", "b")], 0.25),
        ]
    );
    assert!(v.warnings.is_empty());
}

#[test]
fn empty_vector_is_no_samples() {
    let v = parse_ok(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#);
    assert!(v.samples.is_empty());
}

#[test]
fn special_float_values() {
    let v = parse_ok(
        r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"k":"nan"},"value":[1,"NaN"]},
            {"metric":{"k":"pinf"},"value":[1,"+Inf"]},
            {"metric":{"k":"ninf"},"value":[1,"-Inf"]},
            {"metric":{"k":"exp"},"value":[1,"1.5e-7"]},
            {"metric":{"k":"neg"},"value":[1,"-42"]}
        ]}}"#,
    );
    let values: Vec<f64> = v.samples.iter().map(|s| s.value).collect();
    assert!(values[0].is_nan());
    assert_eq!(values[1], f64::INFINITY);
    assert_eq!(values[2], f64::NEG_INFINITY);
    assert_eq!(values[3], 1.5e-7);
    assert_eq!(values[4], -42.0);
}

#[test]
fn parse_value_accepts_only_prometheus_forms() {
    assert_eq!(parse_value("0"), Some(0.0));
    assert_eq!(parse_value("3.25"), Some(3.25));
    assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
    assert_eq!(parse_value("Inf"), Some(f64::INFINITY));
    assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
    assert!(parse_value("NaN").is_some_and(f64::is_nan));
    for bad in [
        "", "inf", "nan", "infinity", "1,5", "0x10", " 1", "abc", "--1",
    ] {
        assert_eq!(parse_value(bad), None, "{bad:?} must be rejected");
    }
}

#[test]
fn scalar_is_one_sample_without_labels() {
    let v = parse_ok(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2.5"]}}"#);
    assert_eq!(v.samples, vec![sample(&[], 2.5)]);
    let v = parse_ok(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#);
    assert!(v.samples[0].value.is_nan());
}

#[test]
fn matrix_is_not_a_vector() {
    let e = parse_err(
        200,
        r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"a":"b"},"values":[[1,"1"],[2,"2"]]}]}}"#,
    );
    assert_eq!(
        e,
        PromErrorKind::NotVector {
            result_type: "matrix".into()
        }
    );
    assert!(
        e.to_string()
            .starts_with("expected an instant vector, got matrix"),
        "{e}"
    );
}

#[test]
fn string_is_not_a_vector() {
    let e = parse_err(
        200,
        r#"{"status":"success","data":{"resultType":"string","result":[1,"hello"]}}"#,
    );
    assert_eq!(e.to_string(), "expected an instant vector, got string");
}

#[test]
fn api_error_keeps_type_and_text() {
    let e = parse_err(
        400,
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unexpected end of input"}"#,
    );
    assert_eq!(
        e,
        PromErrorKind::Api {
            status: 400,
            error_type: "bad_data".into(),
            message: "invalid parameter \"query\": 1:5: parse error: unexpected end of input"
                .into()
        }
    );
    assert_eq!(e.request_result(), RequestResult::Error);
}

#[test]
fn api_timeout_counts_as_timeout() {
    let e = parse_err(
        503,
        r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#,
    );
    assert_eq!(e.request_result(), RequestResult::Timeout);
    assert_eq!(
        e.to_string(),
        "timeout: query timed out in expression evaluation"
    );
}

#[test]
fn api_error_with_malformed_data_still_reports_the_error() {
    let e = parse_err(
        422,
        r#"{"status":"error","errorType":"execution","error":"boom","data":{"resultType":"bogus"}}"#,
    );
    assert_eq!(e.to_string(), "execution: boom");
}

#[test]
fn api_error_without_text() {
    let e = parse_err(500, r#"{"status":"error"}"#);
    assert_eq!(e.to_string(), "error: (no error text)");
}

#[test]
fn multi_line_error_text_becomes_one_line() {
    let e = parse_err(
        400,
        r#"{"status":"error","errorType":"bad_data","error":"line one\nline   two\n"}"#,
    );
    assert_eq!(e.to_string(), "bad_data: line one line two");
}

#[test]
fn warnings_and_infos_are_kept() {
    let v = parse_ok(
        r#"{"status":"success","warnings":["partial response"],"infos":["metric might not be a counter"],
            "data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}"#,
    );
    assert_eq!(v.warnings, vec!["partial response".to_string()]);
    assert_eq!(v.infos, vec!["metric might not be a counter".to_string()]);
}

#[test]
fn extra_fields_are_ignored() {
    let v = parse_ok(
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"4"]}],
            "stats":{"timings":{"evalTotalTime":0.1}}},"extra":true}"#,
    );
    assert_eq!(v.samples, vec![sample(&[("a", "1")], 4.0)]);
}

#[test]
fn missing_metric_means_no_labels() {
    let v = parse_ok(
        r#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"4"]}]}}"#,
    );
    assert_eq!(v.samples, vec![sample(&[], 4.0)]);
}

#[test]
fn malformed_bodies_are_bad_responses() {
    let cases = [
        "",
        "not json",
        "<html><body>gateway</body></html>",
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}"#,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,1]}]}}"#,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":1},"value":[1,"1"]}]}}"#,
        r#"{"status":"success","data":{"resultType":"vector","result":{}}}"#,
        r#"{"status":"success","data":{"resultType":"table","result":[]}}"#,
        r#"{"data":{"resultType":"vector","result":[]}}"#,
        r#"[1,2,3]"#,
    ];
    for body in cases {
        let e = parse_err(200, body);
        assert!(
            matches!(e, PromErrorKind::BadResponse(_)),
            "{body:?} gave {e:?}"
        );
        assert!(!e.to_string().contains('\n'), "{e}");
    }
}

#[test]
fn empty_answer_says_so() {
    assert_eq!(
        parse_err(200, " \n").to_string(),
        "bad response: empty answer"
    );
    assert_eq!(parse_err(503, "").to_string(), "HTTP 503");
}

#[test]
fn success_without_data_is_bad_response() {
    let e = parse_err(200, r#"{"status":"success"}"#);
    assert_eq!(
        e.to_string(),
        "bad response: a successful answer without data"
    );
}

#[test]
fn unknown_status_is_bad_response() {
    let e = parse_err(200, r#"{"status":"maybe","data":null}"#);
    assert_eq!(
        e.to_string(),
        "bad response: status \"maybe\", expected \"success\" or \"error\""
    );
}

#[test]
fn unparseable_sample_value_names_the_series() {
    let e = parse_err(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"p1"},"value":[1,"twelve"]}]}}"#,
    );
    assert_eq!(
        e.to_string(),
        "bad response: sample value \"twelve\" of {pod=\"p1\"} is not a number"
    );
}

#[test]
fn native_histogram_sample_is_an_error_with_advice() {
    let e = parse_err(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"lat"},"histogram":[1,{"count":"2","sum":"3","buckets":[]}]}]}}"#,
    );
    let text = e.to_string();
    assert!(text.contains("native histogram"), "{text}");
    assert!(text.contains("histogram_quantile"), "{text}");
}

#[test]
fn http_error_without_prometheus_json_shows_status_and_body_start() {
    let e = parse_err(
        502,
        "<html>\n<head><title>502 Bad Gateway</title></head>\n</html>",
    );
    assert_eq!(
        e,
        PromErrorKind::Http {
            status: 502,
            detail: "<html> <head><title>502 Bad Gateway</title></head> </html>".into()
        }
    );
    assert_eq!(e.request_result(), RequestResult::Error);
    let e = parse_err(401, "");
    assert_eq!(e.to_string(), "HTTP 401");
}

#[test]
fn foreign_json_error_is_an_http_error() {
    // A Kubernetes API server (or another proxy) answering with its own JSON.
    let e = parse_err(
        403,
        r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden","code":403}"#,
    );
    assert!(
        matches!(e, PromErrorKind::Http { status: 403, .. }),
        "{e:?}"
    );
}

#[test]
fn http_error_body_is_cut() {
    let body = "x".repeat(10_000);
    let e = parse_err(500, &body);
    assert!(e.to_string().len() < 300, "{}", e.to_string().len());
}

// --- errors and messages ---------------------------------------------------------------

#[test]
fn error_message_names_query_on_one_line() {
    let query = "sum by (pod) (\n  rate(http_requests_total{code=~\"5..\"}[1m])\n)";
    let e = PromError::new(query, PromErrorKind::Timeout(Duration::from_millis(1500)));
    assert_eq!(
        e.to_string(),
        "prometheus query `sum by (pod) ( rate(http_requests_total{code=~\"5..\"}[1m]) )`: \
         timed out after 1.5s"
    );
    assert_eq!(e.request_result(), RequestResult::Timeout);
}

#[test]
fn long_query_is_shortened() {
    let query = format!("sum({})", "a".repeat(500));
    let e = PromError::new(&query, PromErrorKind::Request("x".into()));
    assert_eq!(e.query.chars().count(), QUERY_SHOWN_CHARS + 1);
    assert!(e.query.ends_with('…'));
    assert!(e.query.starts_with("sum(aaa"));
}

#[test]
fn shorten_collapses_whitespace_and_cuts_on_chars() {
    assert_eq!(shorten("  a \n\t b  ", 10), "a b");
    assert_eq!(shorten("äöüß", 2), "äö…");
    assert_eq!(shorten("abc", 3), "abc");
}

#[test]
fn request_result_labels() {
    assert_eq!(RequestResult::Ok.as_str(), "ok");
    assert_eq!(RequestResult::Error.as_str(), "error");
    assert_eq!(RequestResult::Timeout.to_string(), "timeout");
    assert_eq!(
        PromErrorKind::Connect {
            url: "http://x".into(),
            detail: "refused".into()
        }
        .request_result(),
        RequestResult::Error
    );
}

// --- join ------------------------------------------------------------------------------

fn vector(samples: Vec<Sample>) -> Vector {
    Vector {
        samples,
        ..Vector::default()
    }
}

#[test]
fn join_maps_pods_to_values() {
    let joined = join(
        vector(vec![
            sample(&[("namespace", "shop"), ("pod", "checkout-0")], 3.0),
            sample(&[("namespace", "shop"), ("pod", "checkout-1")], 7.0),
            sample(
                &[("namespace", "other"), ("pod", "checkout-0"), ("x", "y")],
                11.0,
            ),
        ]),
        &PrometheusLabels::default(),
    );
    assert_eq!(joined.get("shop", "checkout-0"), Ok(Some(3.0)));
    assert_eq!(joined.get("shop", "checkout-1"), Ok(Some(7.0)));
    assert_eq!(joined.get("other", "checkout-0"), Ok(Some(11.0)));
    assert_eq!(joined.get("shop", "checkout-2"), Ok(None));
    assert_eq!(joined.get("nowhere", "checkout-0"), Ok(None));
    assert_eq!(joined.pods(), 3);
    assert_eq!(joined.ignored(), 0);
    assert_eq!(joined.duplicated_pods(), 0);
}

#[test]
fn join_counts_series_without_pod_labels() {
    let joined = join(
        vector(vec![
            sample(&[("namespace", "shop")], 1.0),
            sample(&[("pod", "checkout-0"), ("job", "j")], 2.0),
            sample(&[("namespace", ""), ("pod", "checkout-0")], 3.0),
            sample(&[], 4.0),
            sample(&[("namespace", "shop"), ("pod", "checkout-0")], 5.0),
        ]),
        &PrometheusLabels::default(),
    );
    assert_eq!(joined.ignored(), 4);
    assert_eq!(joined.ignored_example(), Some(&BTreeMap::new()));
    assert_eq!(joined.get("shop", "checkout-0"), Ok(Some(5.0)));
    assert_eq!(joined.get("", "checkout-0"), Ok(None));
}

#[test]
fn join_ignored_example_is_the_first_ignored_series() {
    let joined = join(
        vector(vec![sample(&[("job", "a"), ("pod", "p")], 1.0)]),
        &PrometheusLabels::default(),
    );
    assert_eq!(joined.ignored_example(), Some(&labels(&[("job", "a")])));
}

#[test]
fn join_duplicate_pod_is_an_error_for_that_pod_only() {
    let joined = join(
        vector(vec![
            sample(
                &[("namespace", "shop"), ("pod", "checkout-0"), ("c", "a")],
                1.0,
            ),
            sample(
                &[("namespace", "shop"), ("pod", "checkout-0"), ("c", "b")],
                2.0,
            ),
            sample(&[("namespace", "shop"), ("pod", "checkout-1")], 5.0),
        ]),
        &PrometheusLabels::default(),
    );
    let err = joined
        .get("shop", "checkout-0")
        .expect_err("two series for one pod");
    assert_eq!(err.count, 2);
    assert_eq!(
        err.to_string(),
        "2 series for shop/checkout-0; aggregate with max by (namespace, pod)"
    );
    assert_eq!(joined.get("shop", "checkout-1"), Ok(Some(5.0)));
    assert_eq!(joined.duplicated_pods(), 1);
}

#[test]
fn join_counts_every_duplicate() {
    let joined = join(
        vector(
            (0..3)
                .map(|i| {
                    sample(
                        &[("namespace", "n"), ("pod", "p"), ("i", &i.to_string())],
                        1.0,
                    )
                })
                .collect(),
        ),
        &PrometheusLabels::default(),
    );
    assert_eq!(joined.get("n", "p").map_err(|e| e.count), Err(3));
}

#[test]
fn join_uses_configured_label_names() {
    let names = PrometheusLabels {
        namespace_label: "k8s_ns".into(),
        pod_label: "k8s_pod".into(),
    };
    let joined = join(
        vector(vec![
            sample(&[("k8s_ns", "shop"), ("k8s_pod", "a")], 1.0),
            sample(&[("k8s_ns", "shop"), ("k8s_pod", "a"), ("x", "1")], 1.0),
            sample(&[("namespace", "shop"), ("pod", "b")], 2.0),
        ]),
        &names,
    );
    assert_eq!(joined.get("shop", "b"), Ok(None));
    assert_eq!(joined.ignored(), 1);
    assert_eq!(
        joined.get("shop", "a").map_err(|e| e.to_string()),
        Err("2 series for shop/a; aggregate with max by (k8s_ns, k8s_pod)".to_string())
    );
}

#[test]
fn join_passes_nan_through() {
    let joined = join(
        vector(vec![sample(&[("namespace", "n"), ("pod", "p")], f64::NAN)]),
        &PrometheusLabels::default(),
    );
    assert!(joined.get("n", "p").ok().flatten().is_some_and(f64::is_nan));
}

// --- templates -------------------------------------------------------------------------

fn template(src: &str) -> Template {
    match Template::parse(src) {
        Ok(t) => t,
        Err(e) => panic!("template {src}: {e}"),
    }
}

#[test]
fn render_for_pod_fills_every_placeholder() {
    let pod_labels = labels(&[("app", "checkout")]);
    let pod = PodFacts {
        name: "checkout-0",
        namespace: "shop",
        node: Some("node-1"),
        pod_ip: Some("10.0.0.7"),
        labels: &pod_labels,
    };
    let t = template(
        r#"m{pod="{{pod}}",namespace="{{namespace}}",node="{{node}}",ip="{{podIP}}",app="{{label "app"}}"}"#,
    );
    assert_eq!(
        render_for_pod(&t, &pod),
        Ok(
            r#"m{pod="checkout-0",namespace="shop",node="node-1",ip="10.0.0.7",app="checkout"}"#
                .to_string()
        )
    );
}

#[test]
fn render_for_pod_escapes_label_values() {
    let pod_labels = labels(&[("team", "a\"b\\c'd")]);
    let pod = PodFacts {
        name: "p",
        namespace: "n",
        node: None,
        pod_ip: None,
        labels: &pod_labels,
    };
    let t = template(r#"m{team="{{label "team"}}"}"#);
    assert_eq!(
        render_for_pod(&t, &pod),
        Ok(r#"m{team="a\"b\\c'd"}"#.to_string())
    );
    let t = template(r#"m{team='{{label "team"}}'}"#);
    assert_eq!(
        render_for_pod(&t, &pod),
        Ok(r#"m{team='a"b\\c\'d'}"#.to_string())
    );
}

#[test]
fn render_for_pod_reports_missing_values() {
    let no_labels = BTreeMap::new();
    let pod = PodFacts {
        name: "p",
        namespace: "n",
        node: Some(""),
        pod_ip: None,
        labels: &no_labels,
    };
    let err = |src: &str| render_for_pod(&template(src), &pod).map_err(|e| e.placeholder);
    assert_eq!(err(r#"m{n="{{node}}"}"#), Err(Placeholder::Node));
    assert_eq!(err(r#"m{n="{{podIP}}"}"#), Err(Placeholder::PodIp));
    assert_eq!(
        err(r#"m{n="{{label "app"}}"}"#),
        Err(Placeholder::Label("app".into()))
    );
}

#[test]
fn pod_facts_label_may_be_empty() {
    let pod_labels = labels(&[("tier", "")]);
    let pod = PodFacts {
        name: "p",
        namespace: "n",
        node: None,
        pod_ip: None,
        labels: &pod_labels,
    };
    assert_eq!(pod.value(&Placeholder::Label("tier".into())), Some(""));
    assert_eq!(pod.value(&Placeholder::Pod), Some("p"));
}

#[test]
fn single_value_counts_series() {
    assert_eq!(single_value(&vector(vec![])), Ok(None));
    assert_eq!(
        single_value(&vector(vec![sample(&[("a", "b")], 2.0)])),
        Ok(Some(2.0))
    );
    let e = single_value(&vector(vec![sample(&[], 1.0), sample(&[("a", "b")], 2.0)]))
        .expect_err("two series");
    assert_eq!(e, PromErrorKind::SeriesCount { count: 2 });
    assert!(e.to_string().starts_with("2 series for one pod"), "{e}");
}

// --- credentials -----------------------------------------------------------------------

fn stamp(modified: Option<SystemTime>) -> FileStamp {
    FileStamp {
        modified,
        len: 5,
        dev: 1,
        ino: 2,
    }
}

#[test]
fn a_file_read_right_after_a_change_is_read_again() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    // Read well after the last change: the content is settled.
    assert!(stamp_is_settled(
        &stamp(Some(t0)),
        t0 + Duration::from_secs(3)
    ));
    // Read within the window: a same-size rewrite could keep the mtime, so re-read.
    assert!(!stamp_is_settled(
        &stamp(Some(t0)),
        t0 + Duration::from_millis(500)
    ));
    // Without an mtime nothing can be trusted.
    assert!(!stamp_is_settled(&stamp(None), t0));
}

#[test]
fn config_debug_hides_header_values() {
    let config = PrometheusConfig {
        url: "http://user:pa55word@prom:9090/".into(),
        headers: vec![("X-Scope-OrgID".into(), "tenant-secret".into())],
        ..PrometheusConfig::default()
    };
    let shown = format!("{config:?}");
    assert!(shown.contains("X-Scope-OrgID"), "{shown}");
    assert!(!shown.contains("tenant-secret"), "{shown}");
    assert!(!shown.contains("pa55word"), "{shown}");
}

#[test]
fn redact_replaces_every_secret_longest_first() {
    let secrets = vec![
        "abc".to_string(),
        "abcdef".to_string(),
        String::new(),
        "zz".to_string(),
    ];
    assert_eq!(
        redact("token abcdef and abc, zz twice: zz", &secrets),
        "token <redacted> and <redacted>, <redacted> twice: <redacted>"
    );
    assert_eq!(
        redact("nothing secret here", &secrets),
        "nothing secret here"
    );
}

#[test]
fn an_error_echoing_a_secret_is_redacted_before_it_is_cut() {
    // The secret sits where the 200-character cut of an HTTP error would split it.
    let secret = "s3cr3t-".repeat(10);
    let body = format!("{}rejected {secret}", "x".repeat(180));
    let kind = parse_response(401, body.as_bytes()).expect_err("401");
    assert!(
        kind.to_string().contains("s3cr3t"),
        "the test must be able to fail"
    );
    let clean = redact(&body, std::slice::from_ref(&secret));
    let kind = parse_response(401, clean.as_bytes()).expect_err("401");
    assert!(!kind.to_string().contains("s3cr3t"), "{kind}");

    let api = PromErrorKind::Api {
        status: 500,
        error_type: "internal".into(),
        message: format!("echo {secret}"),
    }
    .redact(std::slice::from_ref(&secret));
    assert_eq!(api.to_string(), "internal: echo <redacted>");
}
