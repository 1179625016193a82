use prost::Message as _;

use super::wire::{self, *};
use super::*;

/// A body of `families`, each length-delimited, as client libraries write it.
fn body(families: &[wire::MetricFamily]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        f.encode_length_delimited(&mut out).expect("a Vec grows");
    }
    out
}

fn family(name: &str, kind: i32, metrics: &[Metric]) -> wire::MetricFamily {
    wire::MetricFamily {
        name: name.to_string(),
        help: "help".to_string(),
        r#type: kind,
        metric: metrics
            .iter()
            .map(|m| Bytes::from(m.encode_to_vec()))
            .collect(),
        unit: String::new(),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(n, v)| LabelPair {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

fn gauge(pairs: &[(&str, &str)], value: f64) -> Metric {
    Metric {
        label: labels(pairs),
        gauge: Some(Gauge { value }),
        ..Metric::default()
    }
}

fn span(offset: i32, length: u32) -> BucketSpan {
    BucketSpan { offset, length }
}

/// A native histogram with integer counts: 2 observations in (0.5,1], 1 in (1,2], 1 in
/// (4,8], 1 in the zero bucket, 1 in [-2,-1).
fn native_histogram() -> Histogram {
    Histogram {
        sample_count: 6,
        sample_sum: 7.5,
        schema: 0,
        zero_threshold: 0.001,
        zero_count: 1,
        positive_span: vec![span(0, 2), span(1, 1)],
        positive_delta: vec![2, -1, 0],
        negative_span: vec![span(1, 1)],
        negative_delta: vec![1],
        ..Histogram::default()
    }
}

fn classic_buckets() -> Vec<wire::Bucket> {
    [(0.5, 2), (1.0, 2), (5.0, 5)]
        .iter()
        .map(|&(upper_bound, cumulative_count)| wire::Bucket {
            upper_bound,
            cumulative_count,
            ..wire::Bucket::default()
        })
        .collect()
}

fn histogram_metric(h: Histogram) -> Metric {
    Metric {
        label: labels(&[("path", "/")]),
        histogram: Some(h),
        ..Metric::default()
    }
}

/// `name{labels} value` per float sample, `name{labels} histogram(count)` per native one.
fn lines(body: Vec<u8>, options: HistogramOptions) -> Vec<String> {
    let decoded = decode(body, options).expect("valid body");
    decoded
        .samples()
        .map(|s| {
            let labels: Vec<String> = s.labels().map(|(k, v)| format!("{k}={v:?}")).collect();
            let value = match s.value {
                ProtoValue::Float(v) => v.to_string(),
                ProtoValue::Histogram(h) => format!("histogram({})", h.count),
            };
            let ts = s.timestamp_ms.map(|t| format!(" @{t}")).unwrap_or_default();
            format!("{}{{{}}} {value}{ts}", s.name, labels.join(","))
        })
        .collect()
}

/// `message` with its varint length in front (messages here are under 128 bytes).
fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = vec![message.len() as u8];
    out.extend_from_slice(message);
    out
}

/// A body of one gauge family `g` around `metric`, the metric's bytes as given (maybe
/// broken). The metric starts at byte offset 8.
fn gauge_family_around(metric: &[u8]) -> Vec<u8> {
    let mut family = vec![0x0a, 1, b'g', 0x18, GAUGE as u8, 0x22, metric.len() as u8];
    family.extend_from_slice(metric);
    framed(&family)
}

fn error(body: Vec<u8>) -> ProtoError {
    match decode(body, HistogramOptions::PODGATE) {
        Ok(_) => panic!("the body should be refused"),
        Err(e) => e,
    }
}

#[test]
fn counters_gauges_untyped_and_summaries_become_prometheus_series() {
    let counter = Metric {
        label: labels(&[("code", "200"), ("http.route", "/a")]),
        counter: Some(Counter {
            value: 12.0,
            ..Counter::default()
        }),
        timestamp_ms: 1_700_000_000_123,
        ..Metric::default()
    };
    let untyped = Metric {
        untyped: Some(Untyped { value: -1.5 }),
        ..Metric::default()
    };
    let summary = Metric {
        summary: Some(Summary {
            sample_count: 4,
            sample_sum: 2.5,
            quantile: vec![
                Quantile {
                    quantile: 0.5,
                    value: 0.25,
                },
                Quantile {
                    quantile: 1.0,
                    value: 1.5,
                },
            ],
            ..Summary::default()
        }),
        ..Metric::default()
    };
    let b = body(&[
        family("http.requests_total", COUNTER, &[counter]),
        family(
            "temp",
            GAUGE,
            &[gauge(&[], 21.5), gauge(&[("room", "b")], 0.0)],
        ),
        family("u", UNTYPED, &[untyped]),
        family("rpc", SUMMARY, &[summary]),
    ]);
    assert_eq!(
        lines(b, HistogramOptions::PODGATE),
        [
            r#"http.requests_total{code="200",http.route="/a"} 12 @1700000000123"#,
            "temp{} 21.5",
            r#"temp{room="b"} 0"#,
            "u{} -1.5",
            "rpc_count{} 4",
            "rpc_sum{} 2.5",
            r#"rpc{quantile="0.5"} 0.25"#,
            r#"rpc{quantile="1.0"} 1.5"#,
        ]
    );
}

#[test]
fn classic_histograms_get_le_as_prometheus_writes_it_and_an_inf_bucket() {
    let h = Histogram {
        sample_count: 7,
        sample_sum: 9.0,
        bucket: classic_buckets(),
        ..Histogram::default()
    };
    let b = body(&[family("lat", HISTOGRAM, &[histogram_metric(h)])]);
    assert_eq!(
        lines(b, HistogramOptions::PODGATE),
        [
            r#"lat_count{path="/"} 7"#,
            r#"lat_sum{path="/"} 9"#,
            r#"lat_bucket{path="/",le="0.5"} 2"#,
            r#"lat_bucket{path="/",le="1.0"} 2"#,
            r#"lat_bucket{path="/",le="5.0"} 5"#,
            r#"lat_bucket{path="/",le="+Inf"} 7"#,
        ]
    );
    // Float counts override integer ones; buckets after an explicit +Inf are not read.
    let mut buckets = classic_buckets();
    buckets.insert(
        2,
        wire::Bucket {
            upper_bound: f64::INFINITY,
            cumulative_count_float: 6.5,
            ..wire::Bucket::default()
        },
    );
    let h = Histogram {
        sample_count_float: 6.5,
        bucket: buckets,
        ..Histogram::default()
    };
    let b = body(&[family("lat", GAUGE_HISTOGRAM, &[histogram_metric(h)])]);
    assert_eq!(
        lines(b, HistogramOptions::PODGATE),
        [
            r#"lat_count{path="/"} 6.5"#,
            r#"lat_sum{path="/"} 0"#,
            r#"lat_bucket{path="/",le="0.5"} 2"#,
            r#"lat_bucket{path="/",le="1.0"} 2"#,
            r#"lat_bucket{path="/",le="+Inf"} 6.5"#,
        ]
    );
}

#[test]
fn native_histograms_are_kept_with_or_without_their_classic_series_as_configured() {
    let mut h = native_histogram();
    h.bucket = classic_buckets();
    let b = || body(&[family("lat", HISTOGRAM, &[histogram_metric(h.clone())])]);
    let classic = [
        r#"lat_count{path="/"} 6"#,
        r#"lat_sum{path="/"} 7.5"#,
        r#"lat_bucket{path="/",le="0.5"} 2"#,
        r#"lat_bucket{path="/",le="1.0"} 2"#,
        r#"lat_bucket{path="/",le="5.0"} 5"#,
        r#"lat_bucket{path="/",le="+Inf"} 6"#,
    ];
    let native = r#"lat{path="/"} histogram(6)"#;
    let mut both = vec![native];
    both.extend(classic);
    assert_eq!(lines(b(), HistogramOptions::PODGATE), both);
    assert_eq!(lines(b(), HistogramOptions::PROMETHEUS_NATIVE), [native]);
    assert_eq!(lines(b(), HistogramOptions::PROMETHEUS_DEFAULT), classic);
    // A native-only histogram read as classic: _count, _sum and +Inf.
    let b = body(&[family(
        "lat",
        HISTOGRAM,
        &[histogram_metric(native_histogram())],
    )]);
    assert_eq!(lines(b.clone(), HistogramOptions::PODGATE), [native]);
    assert_eq!(
        lines(b, HistogramOptions::PROMETHEUS_DEFAULT),
        [
            r#"lat_count{path="/"} 6"#,
            r#"lat_sum{path="/"} 7.5"#,
            r#"lat_bucket{path="/",le="+Inf"} 6"#,
        ]
    );
}

#[test]
fn native_buckets_come_from_spans_and_deltas_or_float_counts() {
    let b = body(&[family(
        "lat",
        HISTOGRAM,
        &[histogram_metric(native_histogram())],
    )]);
    let decoded = decode(b, HistogramOptions::PODGATE).expect("valid");
    let sample = decoded.samples().next().expect("one sample");
    let h = sample.histogram().expect("a native histogram");
    assert_eq!(
        (h.schema, h.zero_threshold, h.zero_count, h.count, h.sum),
        (0, 0.001, 1.0, 6.0, 7.5)
    );
    assert_eq!(h.positive, [(0, 2.0), (1, 1.0), (3, 1.0)]);
    assert_eq!(h.negative, [(1, 1.0)]);
    assert_eq!(h.hint, crate::histogram::CounterResetHint::Unknown);

    let float = Histogram {
        sample_count_float: 3.5,
        sample_sum: 1.0,
        schema: 3,
        positive_span: vec![span(-2, 3)],
        positive_count: vec![1.5, 0.0, 2.0],
        ..Histogram::default()
    };
    let b = body(&[family("g", GAUGE_HISTOGRAM, &[histogram_metric(float)])]);
    let decoded = decode(b, HistogramOptions::PODGATE).expect("valid");
    let h = decoded
        .samples()
        .next()
        .and_then(|s| s.histogram())
        .expect("native");
    // The empty bucket is dropped, as Prometheus compacts what it reads.
    assert_eq!(h.positive, [(-2, 1.5), (0, 2.0)]);
    assert_eq!((h.schema, h.count), (3, 3.5));
    assert_eq!(h.hint, crate::histogram::CounterResetHint::Gauge);

    // No observations yet: the empty span marks it native.
    let empty = Histogram {
        positive_span: vec![span(0, 0)],
        ..Histogram::default()
    };
    let b = body(&[family("e", HISTOGRAM, &[histogram_metric(empty)])]);
    assert_eq!(
        lines(b, HistogramOptions::PODGATE),
        [r#"e{path="/"} histogram(0)"#]
    );
}

#[test]
fn schemas_above_8_are_reduced_to_8() {
    let h = Histogram {
        sample_count: 3,
        schema: 10,
        positive_span: vec![span(1, 4)],
        positive_delta: vec![1, 0, 0, -1],
        ..Histogram::default()
    };
    let b = body(&[family("h", HISTOGRAM, &[histogram_metric(h)])]);
    let decoded = decode(b, HistogramOptions::PODGATE).expect("valid");
    let h = decoded
        .samples()
        .next()
        .and_then(|s| s.histogram())
        .expect("native");
    assert_eq!(h.schema, 8);
    // Schema-10 buckets 1..4 fall in schema-8 bucket 1.
    assert_eq!(h.positive, [(1, 3.0)]);
}

#[test]
fn exemplars_of_counters_buckets_and_native_histograms() {
    let ex = |id: &str, value: f64, ts: Option<i64>| wire::Exemplar {
        label: labels(&[("trace_id", id)]),
        value,
        timestamp: ts.map(|s| Timestamp {
            seconds: s,
            nanos: 5_000_000,
        }),
    };
    let counter = Metric {
        counter: Some(Counter {
            value: 1.0,
            exemplar: Some(ex("a", 1.0, None)),
            ..Counter::default()
        }),
        ..Metric::default()
    };
    let mut h = native_histogram();
    h.bucket = classic_buckets();
    if let Some(b) = h.bucket.get_mut(0) {
        b.exemplar = Some(ex("b", 0.3, Some(10)));
    }
    if let Some(b) = h.bucket.get_mut(1) {
        b.exemplar = Some(ex("c", 0.7, None));
    }
    let b = body(&[
        family("c", COUNTER, &[counter]),
        family("h", HISTOGRAM, &[histogram_metric(h)]),
    ]);
    let decoded = decode(b, HistogramOptions::PODGATE).expect("valid");
    let samples: Vec<_> = decoded.samples().collect();
    let ids = |s: &ProtoSample<'_>| -> Vec<(String, Option<i64>)> {
        s.exemplars
            .iter()
            .map(|e| (e.labels[0].1.clone(), e.timestamp_ms))
            .collect()
    };
    assert_eq!(ids(&samples[0]), [("a".to_string(), None)]);
    // The native histogram takes bucket exemplars with a timestamp only.
    assert_eq!(samples[1].name, "h");
    assert_eq!(ids(&samples[1]), [("b".to_string(), Some(10_005))]);
    // Classic buckets keep their own.
    assert_eq!(samples[4].extra_label, Some(("le", "0.5")));
    assert_eq!(ids(&samples[4]), [("b".to_string(), Some(10_005))]);
    assert_eq!(ids(&samples[5]), [("c".to_string(), None)]);
    assert!(samples[2].exemplars.is_empty());
}

#[test]
fn empty_families_are_skipped_even_when_invalid() {
    let empty = wire::MetricFamily {
        name: String::new(),
        r#type: 42,
        ..wire::MetricFamily::default()
    };
    let b = body(&[empty, family("g", GAUGE, &[gauge(&[], 1.0)])]);
    assert_eq!(lines(b, HistogramOptions::PODGATE), ["g{} 1"]);
    assert_eq!(
        lines(Vec::new(), HistogramOptions::PODGATE),
        Vec::<String>::new()
    );
}

// ----- Malformed bodies: an error with the byte offset, never a panic ------------------

#[test]
fn a_truncated_length_prefix_is_refused_at_its_offset() {
    let mut b = body(&[family("g", GAUGE, &[gauge(&[], 1.0)])]);
    let first = b.len();
    b.push(0x80); // A varint continuation byte, then nothing.
    let e = error(b);
    assert_eq!(e.offset, first, "{e}");
    assert!(
        e.message
            .contains("message 2: its length prefix is not a valid varint"),
        "{e}"
    );
}

#[test]
fn a_length_prefix_of_more_than_five_bytes_is_refused() {
    let e = error(vec![0x81, 0x80, 0x80, 0x80, 0x80, 0x00]);
    assert_eq!(e.offset, 0);
    assert!(e.message.contains("takes 6 bytes"), "{e}");
}

#[test]
fn a_length_past_the_end_is_refused_at_the_prefix() {
    let mut b = body(&[family("g", GAUGE, &[gauge(&[], 1.0)])]);
    b.truncate(b.len() - 3);
    let e = error(b.clone());
    assert_eq!(e.offset, 0, "{e}");
    assert!(
        e.message.contains(&format!("only {} remain", b.len() - 1)),
        "{e}"
    );
}

#[test]
fn a_truncated_varint_inside_a_metric_is_refused_where_it_runs_out() {
    let metric = Metric {
        timestamp_ms: 1_700_000_000_000,
        ..gauge(&[], 1.0)
    };
    let encoded = metric.encode_to_vec();
    // Cut the metric inside its timestamp varint, then wrap it by hand: family{metric}.
    let b = gauge_family_around(&encoded[..encoded.len() - 2]);
    let e = error(b.clone());
    assert_eq!(e.offset, b.len(), "the decoder ran out at the end: {e}");
    assert!(e.message.contains("metric 1 of \"g\""), "{e}");
    assert!(e.message.contains("Metric.timestamp_ms"), "{e}");
}

#[test]
fn a_wrong_wire_type_is_refused_after_its_key() {
    // MetricFamily.name (field 1) sent as a varint (wire type 0) instead of bytes.
    let e = error(framed(&[0x08, 0x01]));
    assert_eq!(e.offset, 2, "{e}");
    assert!(e.message.contains("MetricFamily.name"), "{e}");
    assert!(e.message.contains("invalid wire type"), "{e}");
}

#[test]
fn a_nested_length_past_its_message_is_refused() {
    // Metric.label (field 1) claims 50 bytes inside a 4-byte metric.
    let e = error(gauge_family_around(&[0x0a, 50, 0x0a, 0x00]));
    assert!(e.message.contains("metric 1 of \"g\""), "{e}");
    assert!(e.message.contains("Metric.label"), "{e}");
    // The metric starts at byte 8; the decoder stops after the label's length.
    assert_eq!(e.offset, 10, "{e}");
}

/// The offset of the `n`th metric (1-based) of the single family of `b`.
fn metric_offset(b: &[u8], n: usize) -> usize {
    let f = wire::MetricFamily::decode_length_delimited(b).expect("valid family");
    let before: usize = f.metric.iter().take(n - 1).map(|m| m.len() + 2).sum();
    let family_start = 1 + usize::from(b.len() > 128);
    // name field: 2 + len; help: 2 + len; type: 0 or 2 bytes.
    let header = 2 + f.name.len() + 2 + f.help.len() + if f.r#type == 0 { 0 } else { 2 };
    family_start + header + before + 2
}

fn histogram_error(h: Histogram) -> (ProtoError, usize) {
    let b = body(&[family(
        "lat",
        HISTOGRAM,
        &[gauge(&[], 0.0), histogram_metric(h)],
    )]);
    let offset = metric_offset(&b, 2);
    (error(b), offset)
}

#[test]
fn spans_that_disagree_with_the_bucket_counts_are_refused_at_the_metric() {
    let mut h = native_histogram();
    h.positive_delta.pop();
    let (e, offset) = histogram_error(h);
    assert_eq!(e.offset, offset, "{e}");
    assert!(
        e.message.contains(
            "metric 2 of \"lat\": native histogram: positive side: spans require 3 buckets, have 2"
        ),
        "{e}"
    );
    let mut h = native_histogram();
    h.negative_span.push(span(0, 1));
    let (e, _) = histogram_error(h);
    assert!(
        e.message
            .contains("negative side: spans require 2 buckets, have 1"),
        "{e}"
    );
}

#[test]
fn negative_counts_are_refused() {
    let mut h = native_histogram();
    h.positive_delta = vec![2, -3, 1];
    let (e, offset) = histogram_error(h);
    assert_eq!(e.offset, offset);
    assert!(
        e.message
            .contains("positive side: bucket number 2 has observation count of -1"),
        "{e}"
    );

    let float = Histogram {
        sample_count_float: 1.0,
        zero_count_float: 1.0,
        positive_span: vec![span(0, 1)],
        positive_count: vec![-1.0],
        ..Histogram::default()
    };
    let (e, _) = histogram_error(float.clone());
    assert!(
        e.message
            .contains("bucket number 1 has observation count of -1"),
        "{e}"
    );
    let (e, _) = histogram_error(Histogram {
        positive_count: vec![0.0],
        sample_count_float: 0.0,
        zero_count_float: -2.0,
        ..float
    });
    assert!(
        e.message
            .contains("zero bucket has observation count of -2"),
        "{e}"
    );
}

#[test]
fn integer_counts_must_add_up_and_spans_must_be_in_range() {
    let mut h = native_histogram();
    h.sample_count = 9;
    let (e, _) = histogram_error(h.clone());
    assert!(
        e.message
            .contains("6 observations found in buckets, but the count field is 9"),
        "{e}"
    );
    // With NaN observations (sum NaN) the count may be larger.
    h.sample_sum = f64::NAN;
    let b = body(&[family("lat", HISTOGRAM, &[histogram_metric(h)])]);
    assert!(decode(b, HistogramOptions::PODGATE).is_ok());

    let mut h = native_histogram();
    h.positive_span = vec![span(0, 2), span(-1, 1)];
    let (e, _) = histogram_error(h);
    assert!(
        e.message.contains("span number 2 has a negative offset -1"),
        "{e}"
    );

    let mut h = native_histogram();
    h.positive_span = vec![span(i32::MAX, 2), span(1, 1)];
    let (e, _) = histogram_error(h);
    assert!(e.message.contains("out of range"), "{e}");
}

#[test]
fn schemas_outside_what_prometheus_reads_are_refused() {
    for schema in [-5, 53, -53] {
        let mut h = native_histogram();
        h.schema = schema;
        let (e, _) = histogram_error(h);
        assert!(
            e.message.contains(&format!("schema {schema} is not")),
            "{e}"
        );
    }
    let mut h = native_histogram();
    h.zero_threshold = f64::NAN;
    let (e, _) = histogram_error(h);
    assert!(e.message.contains("zero threshold NaN"), "{e}");
}

#[test]
fn names_types_and_labels_are_checked_like_prometheus() {
    let e = error(body(&[family("", GAUGE, &[gauge(&[], 1.0)])]));
    assert_eq!(e.offset, 1);
    assert!(e.message.contains("empty name"), "{e}");
    let e = error(body(&[family("g", 9, &[gauge(&[], 1.0)])]));
    assert!(e.message.contains("unknown metric type 9"), "{e}");
    let e = error(body(&[family("g", GAUGE, &[gauge(&[("", "x")], 1.0)])]));
    assert!(
        e.message
            .contains("metric 1 of \"g\": a label has an empty name"),
        "{e}"
    );
    let e = error(body(&[family(
        "g",
        GAUGE,
        &[gauge(&[("__name__", "x")], 1.0)],
    )]));
    assert!(e.message.contains("`__name__`"), "{e}");
    // A label value that is not UTF-8: prost refuses the string.
    let mut metric = gauge(&[("a", "b")], 1.0).encode_to_vec();
    let pos = metric.iter().position(|&c| c == b'b').expect("value byte");
    metric[pos] = 0xff;
    let e = error(gauge_family_around(&metric));
    assert!(e.message.contains("LabelPair.value"), "{e}");
}

#[test]
fn every_prefix_of_a_valid_body_is_refused_or_read_without_panicking() {
    let mut h = native_histogram();
    h.bucket = classic_buckets();
    let b = body(&[
        family("g", GAUGE, &[gauge(&[("a", "b")], 1.0)]),
        family("lat", HISTOGRAM, &[histogram_metric(h)]),
    ]);
    for cut in 0..b.len() {
        let prefix = b.get(..cut).unwrap_or_default().to_vec();
        if let Err(e) = decode(prefix, HistogramOptions::PODGATE) {
            assert!(e.offset <= cut, "{cut}: {e}");
        }
    }
}
