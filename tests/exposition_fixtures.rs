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
