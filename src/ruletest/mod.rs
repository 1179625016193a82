//! `podgate test`: rule unit tests in the spirit of `promtool test rules`.
//!
//! A test file names rule files and, per test, a pod, the samples its endpoint serves at each
//! step (promtool's series notation), the values of `promql:` variables per step, and the
//! gate status and reason expected at given steps. Each step is one evaluation of every rule
//! covering the pod, `interval` apart, through the same engine the daemon uses.

pub mod series;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::decision::engine::{Engine, PodInfo, PodKey};
use crate::decision::{Condition, Reason};
use crate::evaluate::{ScrapeInput, VarResult, evaluate_rule};
use crate::exposition::{self, Format};
use crate::query::{Interest, SeriesStore, StoreLimits};
use crate::rules::{self, VarSource, duration::parse_duration};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Rule files, relative to the test file.
    pub rule_files: Vec<PathBuf>,
    pub tests: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    #[serde(default)]
    pub name: Option<String>,
    /// Time between steps; default: the interval of the first rule covering the pod.
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub pod: TestPod,
    /// When ContainersReady turned True, from step 0 (for `initialDelay`, `failOpenAfter`).
    #[serde(default)]
    pub containers_ready_at: Option<String>,
    #[serde(default)]
    pub input_series: Vec<InputSeries>,
    /// `promql:` variable values per step, in series notation (`_` = no data).
    #[serde(default)]
    pub promql: BTreeMap<String, String>,
    pub expect: Vec<Expectation>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestPod {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Declared readiness gates; default: the gates of every rule that selects the pod.
    #[serde(default)]
    pub gates: Option<Vec<String>>,
    /// The override annotation is set on the pod.
    #[serde(default)]
    pub overridden: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSeries {
    pub series: String,
    pub values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub step: usize,
    /// Which gate; may be left out when the pod has one.
    #[serde(default)]
    pub gate: Option<String>,
    /// `True`, `False`, or `Unknown` (no condition written yet).
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message_contains: Option<String>,
}

/// The outcome of one test file.
#[derive(Debug, Default)]
pub struct FileReport {
    pub tests: usize,
    /// One line per failed expectation.
    pub failures: Vec<String>,
}

/// Reads and runs a test file. `Err` is an invalid test file (exit 2), not a failing test.
pub fn run_file(path: &Path) -> Result<FileReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: TestFile =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let rule_paths: Vec<PathBuf> = file.rule_files.iter().map(|f| base.join(f)).collect();
    let set = rules::load_files(&rule_paths).map_err(|e| e.to_string())?;
    let mut report = FileReport::default();
    for (i, case) in file.tests.iter().enumerate() {
        let label = case
            .name
            .clone()
            .unwrap_or_else(|| format!("test #{}", i + 1));
        report.tests += 1;
        let failures =
            run_case(&set, case).map_err(|e| format!("{}: {label}: {e}", path.display()))?;
        report
            .failures
            .extend(failures.into_iter().map(|f| format!("{label}: {f}")));
    }
    Ok(report)
}

/// One input series' sample at a step: name, labels, value.
type StepSample<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

struct Series {
    name: String,
    labels: Vec<(String, String)>,
    values: Vec<Option<f64>>,
}

fn parse_series(input: &InputSeries) -> Result<Series, String> {
    // Reuse the exposition parser for `name{labels}` by giving it a value.
    let line = format!("{} 0\n", input.series.trim());
    let sample = exposition::parse(&line, Format::Text)
        .next()
        .ok_or_else(|| format!("series {:?} is empty", input.series))?
        .map_err(|e| format!("series {:?}: {}", input.series, e.message))?;
    let values =
        series::expand(&input.values).map_err(|e| format!("series {:?}: {e}", input.series))?;
    Ok(Series {
        name: sample.name.to_string(),
        labels: sample
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.into_owned()))
            .collect(),
        values,
    })
}

fn ms(text: &Option<String>, what: &str) -> Result<Option<i64>, String> {
    text.as_deref()
        .map(|t| {
            parse_duration(t)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .map_err(|e| format!("{what}: {e}"))
        })
        .transpose()
}

fn run_case(set: &rules::RuleSet, case: &TestCase) -> Result<Vec<String>, String> {
    let key = PodKey::new(
        case.pod.namespace.as_deref().unwrap_or("default"),
        case.pod.name.as_deref().unwrap_or("test-pod"),
    );
    let gates = match &case.pod.gates {
        Some(g) => g.clone(),
        None => {
            let mut g: Vec<String> = set
                .rules
                .iter()
                .filter(|r| r.selector.matches(&key.namespace, &case.pod.labels))
                .map(|r| r.condition_type.clone())
                .collect();
            g.sort();
            g.dedup();
            g
        }
    };
    let ready_at = ms(&case.containers_ready_at, "containers_ready_at")?.unwrap_or(0);
    let mut engine = Engine::new(set);
    engine.upsert_pod(
        key.clone(),
        PodInfo {
            uid: "test".into(),
            labels: case.pod.labels.clone(),
            gates: gates.clone(),
            containers_ready_since: Some(ready_at),
            override_by: case
                .pod
                .overridden
                .then_some(crate::decision::gate::Override::Pod),
            conditions: BTreeMap::new(),
            condition_since: BTreeMap::new(),
        },
    );
    let covering = engine.rules_for(&key);
    let Some(first) = covering.first() else {
        return Err(format!(
            "no rule covers pod {key} (gates {gates:?}, labels {:?})",
            case.pod.labels
        ));
    };
    let interval = ms(&case.interval, "interval")?
        .unwrap_or_else(|| i64::try_from(first.interval.as_millis()).unwrap_or(i64::MAX));
    if interval <= 0 {
        return Err("interval must be positive".into());
    }
    let series: Vec<Series> = case
        .input_series
        .iter()
        .map(parse_series)
        .collect::<Result<_, _>>()?;
    let promql: BTreeMap<&str, Vec<Option<f64>>> = case
        .promql
        .iter()
        .map(|(k, v)| {
            series::expand(v)
                .map(|vals| (k.as_str(), vals))
                .map_err(|e| format!("promql {k}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    for k in promql.keys() {
        let known = covering.iter().any(|r| {
            r.var(k)
                .is_some_and(|v| matches!(v.source, VarSource::Promql(_)))
        });
        if !known {
            return Err(format!("promql {k}: no promql variable of that name"));
        }
    }
    let queries = covering.iter().flat_map(|r| r.scrape_queries());
    let mut store = SeriesStore::new(Interest::new(queries), StoreLimits::default());
    let last_expect = case.expect.iter().map(|e| e.step).max().unwrap_or(0);
    let longest = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let steps = (last_expect + 1).max(longest);
    if steps > 100_000 {
        return Err(format!(
            "{steps} steps is more than the 100000 a test may have"
        ));
    }

    let mut failures = Vec::new();
    for step in 0..steps {
        let now = ready_at + interval * i64::try_from(step).unwrap_or(i64::MAX);
        let samples: Vec<StepSample<'_>> = series
            .iter()
            .filter_map(|s| {
                let v = s.values.get(step).copied().flatten()?;
                let labels = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                Some((s.name.as_str(), labels, v))
            })
            .collect();
        store
            .ingest_samples(now, samples.iter().map(|(n, l, v)| (*n, l.as_slice(), *v)))
            .map_err(|e| format!("step {step}: {e}"))?;
        for rule in &covering {
            let delay = i64::try_from(rule.initial_delay.as_millis()).unwrap_or(i64::MAX);
            if now < ready_at.saturating_add(delay) {
                continue;
            }
            let mut promql_value = |v: &rules::Var| match promql.get(v.name.as_str()) {
                Some(vals) => match vals.get(step).copied().flatten() {
                    Some(x) => VarResult::Value(x),
                    None => VarResult::NoData("no value at this step".into()),
                },
                None => VarResult::NoData("no promql values given in the test".into()),
            };
            let evaluated = evaluate_rule(
                rule,
                ScrapeInput::Store(&store),
                &mut promql_value,
                &crate::peers::NoPeers("peers are not read here yet"),
                Some(ready_at),
                now,
            );
            engine.observe(&key, &rule.name, &evaluated.evaluation, now);
        }
        for exp in case.expect.iter().filter(|e| e.step == step) {
            if let Some(f) = check(&engine, &key, &gates, exp)? {
                failures.push(format!("step {step}: {f}"));
            }
        }
    }
    Ok(failures)
}

fn check(
    engine: &Engine,
    key: &PodKey,
    gates: &[String],
    exp: &Expectation,
) -> Result<Option<String>, String> {
    let gate = match (&exp.gate, gates) {
        (Some(g), _) => g.as_str(),
        (None, [only]) => only.as_str(),
        (None, _) => {
            return Err(format!(
                "step {}: the pod has {} gates; say which with `gate:`",
                exp.step,
                gates.len()
            ));
        }
    };
    if !matches!(exp.status.as_str(), "True" | "False" | "Unknown") {
        return Err(format!(
            "step {}: status must be True, False or Unknown, not {:?}",
            exp.step, exp.status
        ));
    }
    if let Some(r) = &exp.reason
        && Reason::parse(r).is_none()
    {
        return Err(format!("step {}: unknown reason {r:?}", exp.step));
    }
    let got = engine.gate(key, gate);
    let got_status = got.map_or("Unknown", Condition::status_str);
    let mut wrong = Vec::new();
    if got_status != exp.status {
        wrong.push(format!("status {got_status}, want {}", exp.status));
    }
    if let Some(r) = &exp.reason {
        let got_reason = got.map_or("none", |c| c.reason.as_str());
        if got_reason != r {
            wrong.push(format!("reason {got_reason}, want {r}"));
        }
    }
    if let Some(m) = &exp.message_contains {
        let msg = got.map_or("", |c| c.message.as_str());
        if !msg.contains(m.as_str()) {
            wrong.push(format!("message does not contain {m:?}"));
        }
    }
    if wrong.is_empty() {
        return Ok(None);
    }
    let mut line = format!("gate {gate}: {}", wrong.join(", "));
    if let Some(c) = got {
        let _ = write!(
            line,
            " (got {} {}: {})",
            c.status_str(),
            c.reason,
            c.message
        );
    }
    Ok(Some(line))
}
