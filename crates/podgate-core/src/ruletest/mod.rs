//! `podgate test`: rule unit tests in the spirit of `promtool test rules`.
//!
//! A test file names rule files and, per test, a pod (or several: `pods:`), the samples its
//! endpoint serves at each step (promtool's series notation), the values of `promql:`
//! variables per step, and the gate status and reason expected at given steps. Each step is
//! one evaluation of every rule covering each pod, `interval` apart, through the same engine
//! the daemon uses; pods of one owner are each other's peers for `peers:` variables.

mod error;
pub mod series;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::decision::engine::{Engine, PodInfo, PodKey};
use crate::decision::{Condition, Reason};
use crate::evaluate::{RuleEvaluation, ScrapeInput, VarResult, evaluate_rule};
use crate::exposition::{self, Format};
use crate::peers::{GroupId, NoPeers, PeerIndex, PeerLookup, PodOwner, PodPeers};
use crate::query::{Interest, SampleValue, SeriesStore, StoreLimits};
use crate::rules::{self, Rule, RuleSet, RulesError, VarSource, duration::parse_duration};

pub use error::RuleTestError;

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
    /// Time between steps; default: the interval of the first rule covering the first pod.
    #[serde(default)]
    pub interval: Option<String>,
    /// The pod, when the test has one (else `pods`).
    #[serde(default)]
    pub pod: TestPod,
    /// When the pod's ContainersReady turned True, counted from step 0 (for `initialDelay`,
    /// `failOpenAfter`); it is evaluated from then on.
    #[serde(default)]
    pub containers_ready_at: Option<String>,
    #[serde(default)]
    pub input_series: Vec<InputSeries>,
    /// `promql:` variable values per step, in series notation (`_` = no data).
    #[serde(default)]
    pub promql: BTreeMap<String, String>,
    #[serde(default)]
    pub expect: Vec<Expectation>,
    /// Several pods evaluated side by side, each with its own series and expectations
    /// (instead of `pod`, `input_series`, `promql` and `expect`). Pods of the same owner are
    /// peers for `peers:` variables.
    #[serde(default)]
    pub pods: Vec<PodCase>,
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
    /// The owner workload, `Kind/name`; default `Deployment/test`.
    #[serde(default)]
    pub owner: Option<String>,
}

/// One pod of a test with several.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodCase {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub gates: Option<Vec<String>>,
    #[serde(default)]
    pub overridden: bool,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub containers_ready_at: Option<String>,
    #[serde(default)]
    pub input_series: Vec<InputSeries>,
    #[serde(default)]
    pub promql: BTreeMap<String, String>,
    #[serde(default)]
    pub expect: Vec<Expectation>,
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

/// Runs the test file `path` whose text is `text`; `load_rules` loads its `rule_files`,
/// given relative to the test file's directory (the caller reads them: this crate reads no
/// file). `Err` is an invalid test file (exit 2), not a failing test.
pub fn run(
    path: &Path,
    text: &str,
    load_rules: impl FnOnce(&[PathBuf]) -> Result<RuleSet, RulesError>,
) -> Result<FileReport, RuleTestError> {
    let file: TestFile = serde_saphyr::from_str(text).map_err(|source| RuleTestError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let rule_paths: Vec<PathBuf> = file.rule_files.iter().map(|f| base.join(f)).collect();
    let set = load_rules(&rule_paths)?;
    let mut report = FileReport::default();
    for (i, case) in file.tests.iter().enumerate() {
        let label = case
            .name
            .clone()
            .unwrap_or_else(|| format!("test #{}", i + 1));
        report.tests += 1;
        let failures = run_case(&set, case).map_err(|message| RuleTestError::Test {
            path: path.to_path_buf(),
            test: label.clone(),
            message,
        })?;
        report
            .failures
            .extend(failures.into_iter().map(|f| format!("{label}: {f}")));
    }
    Ok(report)
}

/// One input series' sample at a step: name, labels, value.
type StepSample<'a> = (&'a str, Vec<(&'a str, &'a str)>, SampleValue<'a>);

struct Series {
    name: String,
    labels: Vec<(String, String)>,
    values: Vec<Option<series::StepValue>>,
}

/// A series identity that does not parse; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IdentityError {
    pub message: String,
}

/// A series' identity written as in PromQL (`name{a="1"}`): its name and labels.
pub(crate) fn parse_identity(
    series: &str,
) -> Result<(String, Vec<(String, String)>), IdentityError> {
    let invalid = |message| IdentityError { message };
    // Reuse the exposition parser for `name{labels}` by giving it a value.
    let line = format!("{} 0\n", series.trim());
    let sample = exposition::parse(&line, Format::Text)
        .next()
        .ok_or_else(|| invalid(format!("series {series:?} is empty")))?
        .map_err(|e| invalid(format!("series {series:?}: {}", e.message)))?;
    let labels = sample
        .labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.into_owned()))
        .collect();
    Ok((sample.name.to_string(), labels))
}

fn parse_series(input: &InputSeries) -> Result<Series, String> {
    let (name, labels) = parse_identity(&input.series).map_err(|e| e.message)?;
    let values =
        series::expand(&input.values).map_err(|e| format!("series {:?}: {e}", input.series))?;
    Ok(Series {
        name,
        labels,
        values,
    })
}

fn ms(text: &Option<String>, what: &str) -> Result<Option<i64>, String> {
    text.as_deref()
        .map(|t| {
            parse_duration(t)
                .map(crate::time::millis)
                .map_err(|e| format!("{what}: {e}"))
        })
        .transpose()
}

/// The owner of test pods that name none: every pod of a test is then a peer of the others.
const DEFAULT_OWNER: &str = "Deployment/test";

/// One pod of a test, whichever way it was written, ready to run.
struct PodRun<'c> {
    key: PodKey,
    labels: &'c BTreeMap<String, String>,
    owner: PodOwner,
    gates: Vec<String>,
    ready_at: i64,
    covering: Vec<Arc<Rule>>,
    series: Vec<Series>,
    promql: BTreeMap<&'c str, Vec<Option<f64>>>,
    expect: &'c [Expectation],
    store: SeriesStore,
}

/// The fields of one pod as written: a [`PodCase`], or a single-pod test's own fields.
struct PodSpec<'c> {
    name: &'c str,
    namespace: Option<&'c str>,
    labels: &'c BTreeMap<String, String>,
    gates: Option<&'c Vec<String>>,
    overridden: bool,
    owner: Option<&'c str>,
    containers_ready_at: &'c Option<String>,
    input_series: &'c [InputSeries],
    promql: &'c BTreeMap<String, String>,
    expect: &'c [Expectation],
}

fn pod_specs(case: &TestCase) -> Result<Vec<PodSpec<'_>>, String> {
    if case.pods.is_empty() {
        return Ok(vec![PodSpec {
            name: case.pod.name.as_deref().unwrap_or("test-pod"),
            namespace: case.pod.namespace.as_deref(),
            labels: &case.pod.labels,
            gates: case.pod.gates.as_ref(),
            overridden: case.pod.overridden,
            owner: case.pod.owner.as_deref(),
            containers_ready_at: &case.containers_ready_at,
            input_series: &case.input_series,
            promql: &case.promql,
            expect: &case.expect,
        }]);
    }
    let single = case.pod.name.is_some()
        || case.pod.namespace.is_some()
        || !case.pod.labels.is_empty()
        || case.pod.gates.is_some()
        || case.pod.overridden
        || case.pod.owner.is_some()
        || case.containers_ready_at.is_some()
        || !case.input_series.is_empty()
        || !case.promql.is_empty()
        || !case.expect.is_empty();
    if single {
        return Err(
            "a test with `pods:` gives each pod its own labels, series and expectations: \
             move `pod`, `containers_ready_at`, `input_series`, `promql` and `expect` into the \
             pods"
                .to_string(),
        );
    }
    let mut names = std::collections::BTreeSet::new();
    for p in &case.pods {
        if !names.insert((p.namespace.as_deref().unwrap_or("default"), p.name.as_str())) {
            return Err(format!("pod {:?} is listed twice", p.name));
        }
    }
    Ok(case
        .pods
        .iter()
        .map(|p| PodSpec {
            name: &p.name,
            namespace: p.namespace.as_deref(),
            labels: &p.labels,
            gates: p.gates.as_ref(),
            overridden: p.overridden,
            owner: p.owner.as_deref(),
            containers_ready_at: &p.containers_ready_at,
            input_series: &p.input_series,
            promql: &p.promql,
            expect: &p.expect,
        })
        .collect())
}

fn prepare<'c>(
    set: &rules::RuleSet,
    engine: &mut Engine,
    spec: PodSpec<'c>,
) -> Result<PodRun<'c>, String> {
    let key = PodKey::new(spec.namespace.unwrap_or("default"), spec.name);
    let at = |e: String| format!("pod {}: {e}", spec.name);
    let gates = match spec.gates {
        Some(g) => g.clone(),
        None => {
            let mut g: Vec<String> = set
                .rules
                .iter()
                .filter(|r| r.selector.matches(&key.namespace, spec.labels))
                .map(|r| r.condition_type.clone())
                .collect();
            g.sort();
            g.dedup();
            g
        }
    };
    let owner_text = spec.owner.unwrap_or(DEFAULT_OWNER);
    let owner = PodOwner::parse(owner_text).ok_or_else(|| {
        at(format!(
            "owner {owner_text:?}: write Kind/name, e.g. Deployment/web"
        ))
    })?;
    let ready_at = ms(spec.containers_ready_at, "containers_ready_at")
        .map_err(at)?
        .unwrap_or(0);
    engine.upsert_pod(
        key.clone(),
        PodInfo {
            uid: format!("uid-{}", spec.name),
            labels: spec.labels.clone(),
            gates: gates.clone(),
            containers_ready_since: Some(ready_at),
            override_by: spec
                .overridden
                .then_some(crate::decision::gate::Override::Pod),
            conditions: BTreeMap::new(),
            condition_since: BTreeMap::new(),
        },
    );
    let covering = engine.rules_for(&key);
    if covering.is_empty() {
        return Err(format!(
            "no rule covers pod {key} (gates {gates:?}, labels {:?})",
            spec.labels
        ));
    }
    let series: Vec<Series> = spec
        .input_series
        .iter()
        .map(parse_series)
        .collect::<Result<_, _>>()
        .map_err(at)?;
    let promql: BTreeMap<&str, Vec<Option<f64>>> = spec
        .promql
        .iter()
        .map(|(k, v)| {
            series::expand_floats(v)
                .map(|vals| (k.as_str(), vals))
                .map_err(|e| at(format!("promql {k}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    for k in promql.keys() {
        let known = covering.iter().any(|r| {
            r.var(k)
                .is_some_and(|v| matches!(v.source, VarSource::Promql(_)))
        });
        if !known {
            return Err(at(format!("promql {k}: no promql variable of that name")));
        }
    }
    let queries = covering.iter().flat_map(|r| r.scrape_queries());
    let store = SeriesStore::new(Interest::new(queries), StoreLimits::default());
    Ok(PodRun {
        key,
        labels: spec.labels,
        owner,
        gates,
        ready_at,
        covering,
        series,
        promql,
        expect: spec.expect,
        store,
    })
}

impl PodRun<'_> {
    /// The samples its endpoint serves at `step`.
    fn ingest(&mut self, step: usize, now: i64) -> Result<(), String> {
        let samples: Vec<StepSample<'_>> = self
            .series
            .iter()
            .filter_map(|s| {
                let v = match s.values.get(step)?.as_ref()? {
                    series::StepValue::Float(v) => SampleValue::Float(*v),
                    series::StepValue::Histogram(h) => SampleValue::Histogram(h),
                };
                let labels = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                Some((s.name.as_str(), labels, v))
            })
            .collect();
        self.store
            .ingest_samples(now, samples.iter().map(|(n, l, v)| (*n, l.as_slice(), *v)))
            .map(drop)
            .map_err(|e| format!("step {step}: {e}"))
    }

    /// Evaluates `rule` on the pod at `step`, reading its peers from `peers`.
    fn evaluate(
        &self,
        rule: &Rule,
        step: usize,
        now: i64,
        peers: &dyn PeerLookup,
    ) -> RuleEvaluation {
        let mut promql_value = |v: &rules::Var| match self.promql.get(v.name.as_str()) {
            Some(vals) => match vals.get(step).copied().flatten() {
                Some(x) => VarResult::Value(x),
                None => VarResult::NoData("no value at this step".into()),
            },
            None => VarResult::NoData("no promql values given in the test".into()),
        };
        evaluate_rule(
            rule,
            ScrapeInput::Store(&self.store),
            &mut promql_value,
            peers,
            Some(self.ready_at),
            now,
        )
    }

    /// The rules due on the pod at `now`: ready, past `initialDelay`, and not a startup rule
    /// done with it.
    fn due(&self, engine: &Engine, now: i64) -> Vec<Arc<Rule>> {
        engine
            .rules_to_evaluate(&self.key)
            .into_iter()
            .filter(|r| {
                let delay = crate::time::millis(r.initial_delay);
                now >= self.ready_at.saturating_add(delay)
            })
            .collect()
    }

    fn peers<'a>(&'a self, index: &'a PeerIndex) -> PodPeers<'a> {
        PodPeers {
            index,
            namespace: &self.key.namespace,
            pod: &self.key.name,
            labels: self.labels,
            owner: Some(&self.owner),
            list: false,
        }
    }
}

/// Runs one test: at each step, `interval` apart from time 0, every pod that is ready scrapes
/// its series, then every due rule is evaluated on it. A `peers:` variable reads its peers'
/// values of the same step: every pod's own variables are evaluated first.
fn run_case(set: &rules::RuleSet, case: &TestCase) -> Result<Vec<String>, String> {
    let mut engine = Engine::new(set);
    let mut pods: Vec<PodRun<'_>> = pod_specs(case)?
        .into_iter()
        .map(|spec| prepare(set, &mut engine, spec))
        .collect::<Result<_, _>>()?;
    let several = pods.len() > 1;
    let first = pods
        .first()
        .and_then(|p| p.covering.first())
        .ok_or("the test has no pod")?;
    let interval =
        ms(&case.interval, "interval")?.unwrap_or_else(|| crate::time::millis(first.interval));
    if interval <= 0 {
        return Err("interval must be positive".into());
    }
    let steps = pods
        .iter()
        .map(|p| {
            let last_expect = p.expect.iter().map(|e| e.step + 1).max().unwrap_or(0);
            let longest = p.series.iter().map(|s| s.values.len()).max().unwrap_or(0);
            last_expect.max(longest)
        })
        .max()
        .unwrap_or(0);
    if steps > 100_000 {
        return Err(format!(
            "{steps} steps is more than the 100000 a test may have"
        ));
    }

    let mut index = PeerIndex::new();
    let mut failures = Vec::new();
    for step in 0..steps {
        let now = interval.saturating_mul(i64::try_from(step).unwrap_or(i64::MAX));
        for pod in pods.iter_mut().filter(|p| now >= p.ready_at) {
            pod.ingest(step, now)?;
        }
        // First what each pod leaves for its peers, so none reads a peer's previous step.
        for pod in &pods {
            for rule in pod.due(&engine, now).iter().filter(|r| r.uses_peers()) {
                let own = pod.evaluate(rule, step, now, &NoPeers("not read in this pass"));
                let group = rule.peers.group(pod.labels, Some(&pod.owner));
                if let Some(group) = group {
                    let id = GroupId {
                        rule: rule.name.clone(),
                        namespace: pod.key.namespace.clone(),
                        group,
                    };
                    let revision = rule.peers.revision(pod.labels);
                    index.record(&id, &pod.key.name, revision, now, own.peer_values(rule));
                }
            }
        }
        for pod in &pods {
            for rule in pod.due(&engine, now) {
                let evaluated = pod.evaluate(&rule, step, now, &pod.peers(&index));
                engine.observe(&pod.key, &rule.name, &evaluated.evaluation, now);
            }
        }
        for pod in &pods {
            for exp in pod.expect.iter().filter(|e| e.step == step) {
                if let Some(f) = check(&engine, &pod.key, &pod.gates, exp)? {
                    if several {
                        failures.push(format!("pod {}: step {step}: {f}", pod.key.name));
                    } else {
                        failures.push(format!("step {step}: {f}"));
                    }
                }
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

#[cfg(test)]
mod tests;
