//! Every real exposition body in the shared fixtures parses to the samples a Prometheus 2.42
//! server ingested from it (`expected/<file>.json`), with `le` and `quantile` values in the
//! form Prometheus 3 stores (2.42 kept them as written); and every real-client body in
//! `tests/fixtures/exposition` parses to exactly what a Prometheus 3.16 server ingested.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use podgate::exposition::{Format, parse};

use crate::support::exposition::{api_value, value_bits};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/exposition");

/// A sample reduced to what the expected files hold, with the value kept as f64 bits so
/// that samples can be compared and sorted (NaN has a canonical form here), and `le` and
/// `quantile` values as numbers ([`label_key`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    name: String,
    labels: BTreeMap<String, String>,
    value_bits: u64,
}

/// The labels whose values Prometheus 3 stores in OpenMetrics float form on histograms
/// (`le`) and summaries (`quantile`), as podgate reads them: `le="1"` is `le="1.0"`.
/// Prometheus 2.42 kept them as written.
const FLOAT_FORM_LABELS: [&str; 2] = ["le", "quantile"];

/// `labels` with `le` and `quantile` values replaced by their number, so that a spelling of
/// Prometheus 2.42 (`1`) matches the same number in Prometheus 3's (`1.0`).
fn label_key(labels: BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .into_iter()
        .map(|(k, v)| {
            let v = match v.parse::<f64>() {
                Ok(f) if FLOAT_FORM_LABELS.contains(&k.as_str()) => format!("#{}", value_bits(f)),
                _ => v,
            };
            (k, v)
        })
        .collect()
}

fn expected_rows(path: &Path) -> Vec<Row> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let list = json
        .as_array()
        .unwrap_or_else(|| panic!("{}: not a JSON array", path.display()));
    list.iter()
        .map(|entry| {
            let name = entry["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: entry without name: {entry}", path.display()));
            let labels = entry["labels"]
                .as_object()
                .unwrap_or_else(|| panic!("{}: entry without labels: {entry}", path.display()))
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let value = entry["value"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: entry without value: {entry}", path.display()));
            Row {
                name: name.to_string(),
                labels: label_key(labels),
                value_bits: value_bits(api_value(value)),
            }
        })
        .collect()
}

fn parsed_rows(path: &Path, format: Format) -> Vec<Row> {
    let body = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&body, format)
        .map(|item| {
            let sample = item.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Row {
                name: sample.name.to_string(),
                labels: label_key(
                    sample
                        .labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.into_owned()))
                        .collect(),
                ),
                value_bits: value_bits(sample.value),
            }
        })
        .collect()
}

fn fixture_files() -> Vec<PathBuf> {
    let dir = Path::new(FIXTURES);
    let entries = fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "fixture directory {} is missing ({e}); the repository must be checked out with \
             shared/ beside it",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("prom" | "openmetrics")
                )
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no fixtures (*.prom, *.openmetrics) in {}",
        dir.display()
    );
    files
}

#[test]
fn every_fixture_parses_to_what_prometheus_ingested() {
    let mut checked = 0;
    for path in fixture_files() {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let format = if file_name.ends_with(".openmetrics") {
            Format::OpenMetrics
        } else {
            Format::Text
        };
        let expected_path = path
            .parent()
            .unwrap_or(Path::new(FIXTURES))
            .join("expected")
            .join(format!("{file_name}.json"));
        let mut expected = expected_rows(&expected_path);
        let mut got = parsed_rows(&path, format);
        assert_eq!(
            got.len(),
            expected.len(),
            "{file_name}: sample count differs"
        );
        expected.sort();
        got.sort();
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g, e, "{file_name}: sample differs");
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} fixtures checked");
}

// ----- Real-client fixtures, Prometheus 3 ground truth -------------------------------------

/// Bodies captured from real client libraries (see its README), with what a Prometheus 3.16
/// server ingested from each: `expected/<file>.json` (name, labels, value, timestamp_ms),
/// `expected/<file>.exemplars.json`, or `expected/<file>.error` when Prometheus refused the
/// body.
const CLIENT_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/exposition");

/// A sample as Prometheus 3 stored it: labels exactly, `le` and `quantile` included.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Prom3Row {
    name: String,
    labels: BTreeMap<String, String>,
    value_bits: u64,
    timestamp_ms: Option<i64>,
}

fn prom3_row(
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    ts: Option<i64>,
) -> Prom3Row {
    Prom3Row {
        name,
        labels,
        value_bits: value_bits(value),
        timestamp_ms: ts,
    }
}

fn json_labels(path: &Path, entry: &serde_json::Value) -> BTreeMap<String, String> {
    entry["labels"]
        .as_object()
        .unwrap_or_else(|| panic!("{}: entry without labels: {entry}", path.display()))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

fn read_json(path: &Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    json.as_array()
        .unwrap_or_else(|| panic!("{}: not a JSON array", path.display()))
        .clone()
}

fn prom3_expected(path: &Path) -> Vec<Prom3Row> {
    read_json(path)
        .iter()
        .map(|entry| {
            let name = entry["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: entry without name", path.display()));
            let value = entry["value"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: entry without value", path.display()));
            prom3_row(
                name.to_string(),
                json_labels(path, entry),
                api_value(value),
                entry["timestamp_ms"].as_i64(),
            )
        })
        .collect()
}

fn owned_labels(labels: &podgate::exposition::Labels<'_>) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Where Prometheus refused a body: it quotes the start of the entry it was parsing
/// (`... while parsing: "colon_label{a:"`); the line of the body that starts with it.
fn refused_line(body: &str, prometheus_error: &str) -> usize {
    let quoted = prometheus_error
        .split_once("while parsing: \"")
        .and_then(|(_, rest)| rest.trim_end().strip_suffix('"'))
        .unwrap_or_else(|| panic!("no quoted input in {prometheus_error:?}"));
    let prefix = quoted.replace("\\\"", "\"").replace("\\\\", "\\");
    1 + body
        .lines()
        .position(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line starts with {prefix:?}"))
}

#[test]
fn client_fixtures_parse_to_what_prometheus_3_ingested() {
    let dir = Path::new(CLIENT_FIXTURES);
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("prom" | "openmetrics")
            )
        })
        .collect();
    files.sort();
    let (mut ingested, mut refused) = (0, 0);
    for path in files {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let format = if file_name.ends_with(".openmetrics") {
            Format::OpenMetrics
        } else {
            Format::Text
        };
        let body = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file_name}: {e}"));
        let expected_dir = dir.join("expected");

        let error_path = expected_dir.join(format!("{file_name}.error"));
        if error_path.exists() {
            let prometheus_error = fs::read_to_string(&error_path)
                .unwrap_or_else(|e| panic!("{}: {e}", error_path.display()));
            let error = parse(&body, format)
                .find_map(Result::err)
                .unwrap_or_else(|| panic!("{file_name}: Prometheus 3 refused it, podgate did not"));
            assert_eq!(
                error.line,
                refused_line(&body, &prometheus_error),
                "{file_name}: {error} (Prometheus 3: {prometheus_error})"
            );
            refused += 1;
            continue;
        }

        let mut expected = prom3_expected(&expected_dir.join(format!("{file_name}.json")));
        let exemplars_path = expected_dir.join(format!("{file_name}.exemplars.json"));
        let expected_exemplars = if exemplars_path.exists() {
            read_json(&exemplars_path)
        } else {
            Vec::new()
        };
        let mut exemplars_seen = 0;
        let mut got = Vec::new();
        let mut parser = parse(&body, format);
        while let Some(item) = parser.next() {
            let sample = item.unwrap_or_else(|e| panic!("{file_name}: {e}"));
            let row = prom3_row(
                sample.name.to_string(),
                owned_labels(&sample.labels),
                sample.value,
                sample.timestamp_ms,
            );
            if let Some(exemplar) = parser.exemplar() {
                let want = expected_exemplars
                    .iter()
                    .find(|e| {
                        e["series"]["name"].as_str() == Some(&*sample.name)
                            && json_labels(&exemplars_path, &e["series"]) == row.labels
                    })
                    .unwrap_or_else(|| {
                        panic!(
                            "{file_name}: {} has an exemplar Prometheus did not store",
                            sample
                        )
                    });
                assert_eq!(
                    owned_labels(&exemplar.labels),
                    json_labels(&exemplars_path, want)
                );
                assert_eq!(
                    value_bits(exemplar.value),
                    value_bits(api_value(want["value"].as_str().unwrap_or_default()))
                );
                assert_eq!(exemplar.timestamp_ms, want["timestamp_ms"].as_i64());
                exemplars_seen += 1;
            }
            got.push(row);
        }
        assert_eq!(
            exemplars_seen,
            expected_exemplars.len(),
            "{file_name}: exemplars"
        );
        assert_eq!(
            got.len(),
            expected.len(),
            "{file_name}: sample count differs"
        );
        expected.sort();
        got.sort();
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g, e, "{file_name}: sample differs");
        }
        ingested += 1;
    }
    assert!(
        ingested >= 2 && refused >= 1,
        "{ingested} ingested, {refused} refused"
    );
}

// ----- Protobuf fixtures with native histograms, Prometheus 3 ground truth ------------------

use podgate::exposition::protobuf::{self, HistogramOptions, ProtoBody, ProtoSample, ProtoValue};
use podgate::histogram::{FloatHistogram, HistogramPoint, RateWindow, histogram_rate};

/// The first state of the client_golang endpoint (see the README) and the later one, after
/// more observations.
const PROTOBUF_FIRST: &str = "client_golang_native.pb";
const PROTOBUF_LATER: &str = "client_golang_native.later.pb";

fn decode_fixture(file: &str, options: HistogramOptions) -> ProtoBody {
    let path = Path::new(CLIENT_FIXTURES).join(file);
    let body = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    protobuf::decode(body, options).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn proto_labels(sample: &ProtoSample<'_>) -> BTreeMap<String, String> {
    sample
        .labels()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Equal up to the last bits: podgate computes bucket bounds with `exp2` where Prometheus
/// reads a table, and interpolation goes through `log2` of them.
fn close(got: f64, want: f64) -> bool {
    (got.is_nan() && want.is_nan())
        || got == want
        || (got - want).abs() <= 1e-12 * got.abs().max(want.abs())
}

/// A histogram as the Prometheus API prints it (`{"count", "sum", "buckets"}`) against ours.
fn assert_api_histogram(context: &str, got: &FloatHistogram, want: &serde_json::Value) {
    let got = got.api_json();
    let num = |v: &serde_json::Value| api_value(v.as_str().unwrap_or("NaN"));
    assert!(
        close(num(&got["count"]), num(&want["count"]))
            && close(num(&got["sum"]), num(&want["sum"])),
        "{context}: count/sum {got} vs {want}"
    );
    let empty = Vec::new();
    let (g, w) = (
        got["buckets"].as_array().unwrap_or(&empty),
        want["buckets"].as_array().unwrap_or(&empty),
    );
    assert_eq!(g.len(), w.len(), "{context}: buckets {got} vs {want}");
    for (gb, wb) in g.iter().zip(w) {
        let same = gb[0] == wb[0] && (1..4).all(|i| close(num(&gb[i]), num(&wb[i])));
        assert!(same, "{context}: bucket {gb} vs {wb}");
    }
}

/// Compares a decoded body with `expected/<file>` (samples as the API printed them).
fn assert_ingested(body: &ProtoBody, expected_file: &str) {
    let path = Path::new(CLIENT_FIXTURES)
        .join("expected")
        .join(expected_file);
    let expected = read_json(&path);
    let mut got: Vec<ProtoSample<'_>> = body.samples().collect();
    got.sort_by_key(|s| (s.name.to_string(), proto_labels(s)));
    let names: Vec<(&str, BTreeMap<String, String>)> =
        got.iter().map(|s| (s.name, proto_labels(s))).collect();
    assert_eq!(got.len(), expected.len(), "{expected_file}: {names:?}");
    for (sample, want) in got.iter().zip(&expected) {
        let context = format!(
            "{expected_file}: {} {:?}",
            sample.name,
            proto_labels(sample)
        );
        assert_eq!(Some(sample.name), want["name"].as_str(), "{context}");
        assert_eq!(proto_labels(sample), json_labels(&path, want), "{context}");
        assert_eq!(
            sample.timestamp_ms,
            want["timestamp_ms"].as_i64(),
            "{context}"
        );
        match sample.value {
            ProtoValue::Float(v) => {
                let w = api_value(want["value"].as_str().unwrap_or("missing"));
                assert_eq!(value_bits(v), value_bits(w), "{context}");
            }
            ProtoValue::Histogram(h) => assert_api_histogram(&context, h, &want["histogram"]),
        }
    }
}

#[test]
fn protobuf_fixtures_decode_to_what_prometheus_3_ingested() {
    // Native histograms on and classic series kept: what podgate ingests.
    let body = decode_fixture(PROTOBUF_FIRST, HistogramOptions::PODGATE);
    assert_ingested(&body, "client_golang_native.pb.json");
    // Prometheus 3's defaults: native histograms read as classic ones.
    let body = decode_fixture(PROTOBUF_FIRST, HistogramOptions::PROMETHEUS_DEFAULT);
    assert_ingested(&body, "client_golang_native.pb.default.json");
}

#[test]
fn protobuf_fixture_exemplars_are_those_prometheus_3_stored() {
    let body = decode_fixture(PROTOBUF_FIRST, HistogramOptions::PODGATE);
    let path = Path::new(CLIENT_FIXTURES)
        .join("expected")
        .join("client_golang_native.pb.exemplars.json");
    let expected = read_json(&path);
    let mut got = Vec::new();
    for sample in body.samples() {
        for e in sample.exemplars {
            got.push((
                sample.name.to_string(),
                proto_labels(&sample),
                e.labels.iter().cloned().collect::<BTreeMap<_, _>>(),
                value_bits(e.value),
                e.timestamp_ms,
            ));
        }
    }
    let mut want: Vec<_> = expected
        .iter()
        .map(|e| {
            (
                e["series"]["name"].as_str().unwrap_or_default().to_string(),
                json_labels(&path, &e["series"]),
                json_labels(&path, e),
                value_bits(api_value(e["value"].as_str().unwrap_or("NaN"))),
                e["timestamp_ms"].as_i64(),
            )
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

/// The series a selector of the capture queries names.
fn selector_name(selector: &str) -> &str {
    selector
        .strip_prefix("{\"")
        .and_then(|s| s.strip_suffix("\"}"))
        .unwrap_or(selector)
}

/// The native histogram of series `name{labels}` in `body`.
fn native<'a>(
    body: &'a ProtoBody,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> &'a FloatHistogram {
    body.samples()
        .find(|s| s.name == name && proto_labels(s) == *labels && s.histogram().is_some())
        .and_then(|s| s.histogram())
        .unwrap_or_else(|| panic!("no native histogram {name} {labels:?}"))
}

/// A series: name and labels.
type SeriesKey = (String, BTreeMap<String, String>);

/// `expected/client_golang_native.functions.json`: its path, the evaluation time and the
/// results.
fn capture_functions() -> (PathBuf, i64, Vec<serde_json::Value>) {
    let path = Path::new(CLIENT_FIXTURES)
        .join("expected")
        .join("client_golang_native.functions.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let expected: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let t = expected["time_ms"].as_i64().expect("time_ms");
    let results = expected["results"].as_array().expect("results").clone();
    (path, t, results)
}

/// A function query of the capture: `f(args, X)`, `f(args, rate(X[1m]))` or `rate(X[1m])`,
/// X a selector.
struct CaptureQuery<'q> {
    function: &'q str,
    /// The arguments before the histogram (`0.9`, `0, 0.1`), or empty.
    args: &'q str,
    selector: &'q str,
    over_rate: bool,
}

/// `query` split; `None` for the range selectors (`X[1m]`) the capture also recorded.
fn capture_query(query: &str) -> Option<CaptureQuery<'_>> {
    if query.ends_with("[1m]") {
        return None;
    }
    let (function, inner) = query
        .strip_suffix(')')
        .and_then(|q| q.split_once('('))
        .unwrap_or_else(|| panic!("{query}"));
    if function == "rate" {
        return Some(CaptureQuery {
            function,
            args: "",
            selector: inner.strip_suffix("[1m]").unwrap_or(inner),
            over_rate: true,
        });
    }
    let (args, operand) = inner.rsplit_once(", ").unwrap_or(("", inner));
    let (selector, over_rate) = match operand.strip_prefix("rate(") {
        Some(rest) => (rest.strip_suffix("[1m])").unwrap_or(rest), true),
        None => (operand, false),
    };
    Some(CaptureQuery {
        function,
        args,
        selector,
        over_rate,
    })
}

#[test]
fn native_histogram_functions_give_what_prometheus_3_computed() {
    let first = decode_fixture(PROTOBUF_FIRST, HistogramOptions::PODGATE);
    let later = decode_fixture(PROTOBUF_LATER, HistogramOptions::PODGATE);
    let (path, t, results) = capture_functions();
    let range_ms = 60_000;

    // The scrapes in the rate window, each one of the two bodies (told apart by count).
    let mut windows: BTreeMap<SeriesKey, Vec<(i64, &FloatHistogram)>> = BTreeMap::new();
    for r in &results {
        let query = r["query"].as_str().unwrap_or_default();
        let Some(selector) = query.strip_suffix("[1m]") else {
            continue;
        };
        let name = selector_name(selector);
        for series in r["result"].as_array().expect("result") {
            let labels = json_labels(&path, series);
            let (a, b) = (native(&first, name, &labels), native(&later, name, &labels));
            let points = series["samples"]
                .as_array()
                .expect("samples")
                .iter()
                .map(|s| {
                    let count = api_value(s[1].as_str().unwrap_or("NaN"));
                    let h = if count == b.count { b } else { a };
                    assert_eq!(h.count, count, "{query}: a scrape matches neither body");
                    (s[0].as_i64().expect("timestamp"), h)
                })
                .collect();
            windows.insert((name.to_string(), labels), points);
        }
    }
    assert!(windows.len() >= 5, "{windows:?}");

    let mut checked = 0;
    for r in &results {
        let query = r["query"].as_str().unwrap_or_default();
        let Some(CaptureQuery {
            function,
            args,
            selector,
            over_rate,
        }) = capture_query(query)
        else {
            continue;
        };
        let name = selector_name(selector);
        for series in r["result"].as_array().expect("result") {
            let labels = json_labels(&path, series);
            let context = format!("{query} {labels:?}");
            let points = windows
                .get(&(name.to_string(), labels.clone()))
                .unwrap_or_else(|| panic!("{context}: no window"));
            let h = if over_rate {
                let points: Vec<HistogramPoint<'_>> = points
                    .iter()
                    .map(|&(t, h)| HistogramPoint { t, h })
                    .collect();
                let window = RateWindow {
                    end_ms: t,
                    range_ms,
                    per_second: true,
                    counter: true,
                };
                histogram_rate(&points, window).unwrap_or_else(|| panic!("{context}: no rate"))
            } else {
                points.last().map(|&(_, h)| h.clone()).expect("a sample")
            };
            if function == "rate" {
                assert_api_histogram(&context, &h, &series["histogram"]);
                checked += 1;
                continue;
            }
            let got = match function {
                "histogram_quantile" => h.quantile(args.parse().expect("q")),
                "histogram_count" => h.count(),
                "histogram_sum" => h.sum(),
                "histogram_fraction" => {
                    let (lo, hi) = args.split_once(", ").expect("bounds");
                    h.fraction(lo.parse().expect("lower"), hi.parse().expect("upper"))
                }
                other => panic!("{context}: unexpected function {other}"),
            };
            let want = api_value(series["value"].as_str().unwrap_or("missing"));
            assert!(
                close(got, want),
                "{context}: podgate {got}, Prometheus 3 {want}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} results checked");
}

/// `selector` (as the capture queries write it) narrowed to the series `labels`:
/// `x` becomes `x{"a"="1"}`, `{"a.b"}` becomes `{"a.b", "a"="1"}`.
fn narrowed(selector: &str, labels: &BTreeMap<String, String>) -> String {
    let matchers: Vec<String> = labels.iter().map(|(k, v)| format!("{k:?}={v:?}")).collect();
    match selector.strip_suffix('}') {
        Some(open) if !matchers.is_empty() => format!("{open}, {}}}", matchers.join(", ")),
        Some(_) => selector.to_string(),
        None => format!("{selector}{{{}}}", matchers.join(", ")),
    }
}

/// What a scrape query over the fixtures must give: Prometheus 3's number, or an error
/// naming this text.
enum Expect {
    Value(f64),
    Error(&'static str),
}

#[test]
fn scrape_queries_over_the_protobuf_fixtures_give_what_prometheus_3_computed() {
    use podgate::query::{self, Interest, QueryValue, SeriesStore, StoreLimits};

    let bodies = [
        decode_fixture(PROTOBUF_FIRST, HistogramOptions::PODGATE),
        decode_fixture(PROTOBUF_LATER, HistogramOptions::PODGATE),
    ];
    let (path, t, results) = capture_functions();

    // The scrapes Prometheus took in the window, and which body each served (the counts of
    // a histogram that grew tell them apart; every series must agree).
    let mut scrapes: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &results {
        let query = r["query"].as_str().unwrap_or_default();
        let Some(selector) = query.strip_suffix("[1m]") else {
            continue;
        };
        let name = selector_name(selector);
        for series in r["result"].as_array().expect("result") {
            let labels = json_labels(&path, series);
            let counts = bodies.each_ref().map(|b| native(b, name, &labels).count);
            for sample in series["samples"].as_array().expect("samples") {
                let ts = sample[0].as_i64().expect("timestamp");
                let count = api_value(sample[1].as_str().unwrap_or("NaN"));
                if counts[0] == counts[1] {
                    continue;
                }
                let body = usize::from(count == counts[1]);
                assert_eq!(
                    *scrapes.entry(ts).or_insert(body),
                    body,
                    "{query}: scrape {ts}"
                );
            }
        }
    }
    assert!(scrapes.len() >= 8, "{scrapes:?}");

    // Every query of the capture, narrowed to each series Prometheus returned (a scrape
    // variable is one number), with what Prometheus computed.
    let mut cases: Vec<(String, Expect)> = Vec::new();
    for r in &results {
        let query = r["query"].as_str().unwrap_or_default();
        let Some(CaptureQuery {
            function,
            args,
            selector,
            over_rate,
        }) = capture_query(query)
        else {
            continue;
        };
        for series in r["result"].as_array().expect("result") {
            let labels = json_labels(&path, series);
            let one = narrowed(selector, &labels);
            let operand = if over_rate {
                format!("rate({one}[1m])")
            } else {
                one
            };
            if function != "rate" {
                let want = api_value(series["value"].as_str().unwrap_or("missing"));
                let args = if args.is_empty() {
                    String::new()
                } else {
                    format!("{args}, ")
                };
                cases.push((format!("{function}({args}{operand})"), Expect::Value(want)));
                continue;
            }
            // A histogram is not one number: refused, with the forms that take one. Its
            // count, sum and each bucket (its fraction times the count) are compared.
            cases.push((operand.clone(), Expect::Error("yields a native histogram")));
            let h = &series["histogram"];
            let num = |v: &serde_json::Value| api_value(v.as_str().unwrap_or("NaN"));
            cases.push((
                format!("histogram_count({operand})"),
                Expect::Value(num(&h["count"])),
            ));
            cases.push((
                format!("histogram_sum({operand})"),
                Expect::Value(num(&h["sum"])),
            ));
            for b in h["buckets"].as_array().into_iter().flatten() {
                let (lower, upper) = (num(&b[1]), num(&b[2]));
                cases.push((
                    format!(
                        "histogram_fraction({lower:?}, {upper:?}, {operand}) * \
                         histogram_count({operand})"
                    ),
                    Expect::Value(num(&b[3])),
                ));
            }
        }
    }

    let compiled: Vec<query::Query> = cases
        .iter()
        .map(|(q, _)| query::parse(q).unwrap_or_else(|e| panic!("{q}: {e}")))
        .collect();
    let mut store = SeriesStore::new(Interest::new(&compiled), StoreLimits::default());
    for (&ts, &body) in &scrapes {
        let samples = bodies.get(body).expect("a body").samples();
        store
            .ingest_samples(ts, samples)
            .unwrap_or_else(|e| panic!("scrape {ts}: {e}"));
    }
    for ((text, expect), q) in cases.iter().zip(&compiled) {
        let got = q.eval(&store, t);
        match (expect, got) {
            (Expect::Value(want), Ok(QueryValue::Number(v))) => {
                assert!(close(v, *want), "{text}: podgate {v}, Prometheus 3 {want}");
            }
            // Where Prometheus computes NaN for missing data (no observations), podgate
            // says "no data" and why.
            (Expect::Value(want), Ok(QueryValue::NoData(why))) => {
                assert!(
                    want.is_nan(),
                    "{text}: podgate no data ({why}), Prometheus 3 {want}"
                );
            }
            (Expect::Error(message), Err(e)) => {
                assert!(e.message.contains(message), "{text}: {e}");
            }
            (_, got) => panic!("{text}: {got:?}"),
        }
    }
    assert!(cases.len() >= 80, "only {} queries", cases.len());
}

#[test]
fn the_capture_script_asks_with_podgates_accept() {
    let path = Path::new(CLIENT_FIXTURES)
        .join("capture")
        .join("capture.sh");
    let script = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let accept = script
        .lines()
        .find_map(|l| l.strip_prefix("ACCEPT='"))
        .and_then(|l| l.strip_suffix('\''))
        .unwrap_or_else(|| panic!("{}: no ACCEPT='...' line", path.display()));
    assert_eq!(accept, podgate::source::scrape::ACCEPT);
}
