//! The OpenMetrics project's parser suite (`tests/testdata/parsers` of
//! github.com/prometheus/OpenMetrics: one `metrics` body and a `test.json` saying whether it
//! should parse, per case), checked against what Prometheus 3 makes of each body.
//!
//! `scripts/openmetrics-suite` fetches the suite from the Go module proxy and writes the
//! ground truth next to it (`tests/support/textparse-truth`: Prometheus's own OpenMetrics
//! parser and the scrape loop's label checks); `scripts/test` sets
//! `PODGATE_TEST_OPENMETRICS_SUITE` to that directory. For every case:
//!
//! - a case the suite calls valid parses;
//! - a body Prometheus 3 refuses is refused, and the samples podgate yields before its
//!   error are ones Prometheus yields before its own (the same, in order);
//! - a body Prometheus 3 accepts is accepted with exactly Prometheus's samples, in order:
//!   names, labels, values, timestamps and exemplars.
//!
//! The same program's verdict is also the ground truth for podgate's own hand-written edge
//! cases (`tests/fixtures/exposition-edge`), in both formats.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use podgate::exposition::{Format, Labels, decode_body, parse};
use serde_json::Value;

use crate::support::exposition::{api_value, value_bits};

const SUITE_VAR: &str = "PODGATE_TEST_OPENMETRICS_SUITE";
/// The ground truth file in the suite directory.
const TRUTH_FILE: &str = "prometheus-truth.json";
/// The ground-truth program, kept in the suite directory to run on other bodies.
const TRUTH_PROGRAM: &str = "textparse-truth";
const EDGE_CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/exposition-edge"
);

/// An exemplar reduced to what can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExemplarRow {
    labels: BTreeMap<String, String>,
    value_bits: u64,
    timestamp_ms: Option<i64>,
}

/// A sample reduced to what can be compared: the value as bits (NaN canonical).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    name: String,
    labels: BTreeMap<String, String>,
    value_bits: u64,
    timestamp_ms: Option<i64>,
    exemplar: Option<ExemplarRow>,
}

/// What one side made of a body: its samples, then the error that ended it, if any.
#[derive(Debug)]
struct Outcome {
    samples: Vec<Row>,
    error: Option<String>,
}

struct Case {
    name: String,
    body: Vec<u8>,
    should_parse: bool,
}

fn suite_dir() -> PathBuf {
    let dir = std::env::var_os(SUITE_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "{SUITE_VAR} is not set: scripts/test sets it; by hand: export \
             {SUITE_VAR}=$(scripts/openmetrics-suite path)"
            )
        });
    if !dir.join(TRUTH_FILE).is_file()
        || !dir.join("parsers").is_dir()
        || !dir.join(TRUTH_PROGRAM).is_file()
    {
        panic!(
            "{} ({SUITE_VAR}) lacks parsers/, {TRUTH_FILE} or {TRUTH_PROGRAM}: run \
             scripts/openmetrics-suite build, and point {SUITE_VAR} at the directory \
             `scripts/openmetrics-suite path` prints",
            dir.display()
        );
    }
    dir
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cases(dir: &Path) -> Vec<Case> {
    let parsers = dir.join("parsers");
    let mut cases: Vec<Case> = fs::read_dir(&parsers)
        .unwrap_or_else(|e| panic!("{}: {e}", parsers.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", parsers.display()))
                .path()
        })
        .filter(|p| p.is_dir())
        .map(|case_dir| {
            let name = case_dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let test = read_json(&case_dir.join("test.json"));
            let file = test["file"].as_str().unwrap_or("metrics");
            assert_eq!(test["type"], "text", "{name}: a case of another type");
            let body_path = case_dir.join(file);
            Case {
                body: fs::read(&body_path)
                    .unwrap_or_else(|e| panic!("{}: {e}", body_path.display())),
                should_parse: test["shouldParse"]
                    .as_bool()
                    .unwrap_or_else(|| panic!("{name}: test.json without shouldParse")),
                name,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

fn json_labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn json_value(v: &Value) -> u64 {
    value_bits(api_value(v.as_str().unwrap_or_default()))
}

fn truth_row(s: &Value) -> Row {
    Row {
        name: s["name"].as_str().unwrap_or_default().to_string(),
        labels: json_labels(&s["labels"]),
        value_bits: json_value(&s["value"]),
        timestamp_ms: s["timestamp_ms"].as_i64(),
        exemplar: s["exemplar"].as_object().map(|_| ExemplarRow {
            labels: json_labels(&s["exemplar"]["labels"]),
            value_bits: json_value(&s["exemplar"]["value"]),
            timestamp_ms: s["exemplar"]["timestamp_ms"].as_i64(),
        }),
    }
}

/// textparse-truth's output: Prometheus's outcome per file, as named in the output.
fn truth_outcomes(json: &Value, source: &str) -> BTreeMap<String, Outcome> {
    let list = json
        .as_array()
        .unwrap_or_else(|| panic!("{source}: not a JSON array"));
    list.iter()
        .map(|r| {
            let file = r["file"].as_str().unwrap_or_default().to_string();
            let samples = r["samples"]
                .as_array()
                .unwrap_or_else(|| panic!("{source}: {file} without samples"))
                .iter()
                .map(truth_row)
                .collect();
            let error = (r["accepted"] != true)
                .then(|| r["error"].as_str().unwrap_or("(no message)").to_string());
            (file, Outcome { samples, error })
        })
        .collect()
}

/// Prometheus's outcome per suite case (the directory holding the body).
fn suite_truth(dir: &Path) -> BTreeMap<String, Outcome> {
    let path = dir.join(TRUTH_FILE);
    truth_outcomes(&read_json(&path), &path.display().to_string())
        .into_iter()
        .map(|(file, outcome)| {
            let case = Path::new(&file)
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or_else(|| panic!("{}: no case in {file:?}", path.display()))
                .to_string();
            (case, outcome)
        })
        .collect()
}

/// Runs the ground-truth program on `files` in `format` (`openmetrics` or `text`).
fn run_truth(dir: &Path, format: &str, files: &[PathBuf]) -> BTreeMap<String, Outcome> {
    let program = dir.join(TRUTH_PROGRAM);
    let out = std::process::Command::new(&program)
        .arg("-format")
        .arg(format)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{} printed no JSON: {e}", program.display()));
    truth_outcomes(&json, &program.display().to_string())
}

fn owned(labels: &Labels<'_>) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// podgate's outcome: the UTF-8 check, then the parser up to its first error.
fn podgate(body: &[u8], format: Format) -> Outcome {
    let text = match decode_body(body) {
        Ok(text) => text,
        Err(e) => {
            return Outcome {
                samples: Vec::new(),
                error: Some(e.to_string()),
            };
        }
    };
    let mut samples = Vec::new();
    let mut parser = parse(text, format);
    while let Some(item) = parser.next() {
        match item {
            Ok(s) => samples.push(Row {
                name: s.name.to_string(),
                labels: owned(&s.labels),
                value_bits: value_bits(s.value),
                timestamp_ms: s.timestamp_ms,
                exemplar: parser.exemplar().map(|e| ExemplarRow {
                    labels: owned(&e.labels),
                    value_bits: value_bits(e.value),
                    timestamp_ms: e.timestamp_ms,
                }),
            }),
            Err(e) => {
                return Outcome {
                    samples,
                    error: Some(e.to_string()),
                };
            }
        }
    }
    Outcome {
        samples,
        error: None,
    }
}

/// Where `ours` and `theirs` first differ, for the failure message.
fn first_difference(ours: &[Row], theirs: &[Row]) -> String {
    match ours.iter().zip(theirs).position(|(a, b)| a != b) {
        Some(i) => format!(
            "sample {i}: podgate {:?}, Prometheus {:?}",
            ours.get(i),
            theirs.get(i)
        ),
        None => format!(
            "podgate has {} samples, Prometheus {}",
            ours.len(),
            theirs.len()
        ),
    }
}

/// What is wrong with podgate's outcome for one body, if anything; `should_parse` when the
/// body is valid whatever Prometheus says.
fn judge(should_parse: bool, ours: &Outcome, theirs: &Outcome) -> Option<String> {
    if should_parse && let Some(e) = &ours.error {
        return Some(format!("a valid case, refused: {e}"));
    }
    match (&ours.error, &theirs.error) {
        (None, Some(e)) => Some(format!("accepted; Prometheus 3 refuses it: {e}")),
        (Some(e), None) => Some(format!("refused ({e}); Prometheus 3 accepts it")),
        (Some(_), Some(_)) if !theirs.samples.starts_with(&ours.samples) => Some(format!(
            "samples before the error differ: {}",
            first_difference(&ours.samples, &theirs.samples)
        )),
        (None, None) if ours.samples != theirs.samples => Some(format!(
            "samples differ: {}",
            first_difference(&ours.samples, &theirs.samples)
        )),
        _ => None,
    }
}

#[test]
fn openmetrics_suite_matches_prometheus_3() {
    let dir = suite_dir();
    let truth = suite_truth(&dir);
    let cases = cases(&dir);
    let mut failures = Vec::new();
    let (mut valid, mut refused, mut accepted_invalid) = (0, 0, 0);
    for case in &cases {
        let theirs = truth.get(&case.name).unwrap_or_else(|| {
            panic!(
                "{}: no ground truth for case {} (regenerate it: scripts/openmetrics-suite build)",
                dir.join(TRUTH_FILE).display(),
                case.name
            )
        });
        let ours = podgate(&case.body, Format::OpenMetrics);
        if let Some(problem) = judge(case.should_parse, &ours, theirs) {
            failures.push(format!("{}: {problem}", case.name));
        }
        match (case.should_parse, &theirs.error) {
            (true, _) => valid += 1,
            (false, Some(_)) => refused += 1,
            (false, None) => accepted_invalid += 1,
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with Prometheus 3:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // The suite holds 211 cases: 44 valid, and of the invalid ones Prometheus 3.16 refuses
    // 88 and reads 79 (it does not check what the suite's semantic cases check).
    assert!(
        valid >= 40 && refused >= 80 && accepted_invalid >= 1,
        "suite too small: {valid} valid, {refused} refused, {accepted_invalid} invalid but read"
    );
}

#[test]
fn edge_cases_match_prometheus_3() {
    let dir = suite_dir();
    let mut files: Vec<PathBuf> = fs::read_dir(EDGE_CASES)
        .unwrap_or_else(|e| panic!("{EDGE_CASES}: {e}"))
        .map(|entry| entry.unwrap_or_else(|e| panic!("{EDGE_CASES}: {e}")).path())
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (extension, format, name) in [
        ("openmetrics", Format::OpenMetrics, "openmetrics"),
        ("prom", Format::Text, "text"),
    ] {
        let bodies: Vec<PathBuf> = files
            .iter()
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(extension))
            .cloned()
            .collect();
        let truth = run_truth(&dir, name, &bodies);
        for path in &bodies {
            let theirs = truth
                .get(&path.display().to_string())
                .unwrap_or_else(|| panic!("no ground truth for {}", path.display()));
            let body = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let ours = podgate(&body, format);
            if let Some(problem) = judge(false, &ours, theirs) {
                failures.push(format!("{}: {problem}", path.display()));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 7, "only {checked} edge cases in {EDGE_CASES}");
}
