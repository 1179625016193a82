//! Every real exposition body in the shared fixtures parses to exactly the samples a
//! Prometheus 2.42 server ingested from it (`expected/<file>.json`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use podgate::exposition::{Format, parse};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/exposition");

/// A sample reduced to what the expected files hold, with the value kept as f64 bits so
/// that samples can be compared and sorted (NaN has a canonical form here).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    name: String,
    labels: BTreeMap<String, String>,
    value_bits: u64,
}

fn bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

/// Values as the Prometheus API prints them: "NaN", "+Inf", "-Inf" or a decimal.
fn parse_expected_value(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .unwrap_or_else(|e| panic!("expected value {other:?}: {e}")),
    }
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
                labels,
                value_bits: bits(parse_expected_value(value)),
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
                labels: sample
                    .labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.into_owned()))
                    .collect(),
                value_bits: bits(sample.value),
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
