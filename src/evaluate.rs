//! Evaluating one rule on one pod: each variable from its source, then the expression.
//!
//! The result is an [`Evaluation`] for the decision core plus a report of every variable,
//! which `podgate eval`, the logs and the condition message use.

use std::fmt;

use crate::decision::{Evaluation, Outcome};
use crate::expr::format_value;
use crate::query::{QueryValue, SeriesStore};
use crate::rules::{Rule, Var, VarSource};

/// A variable's value for one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum VarResult {
    Value(f64),
    /// No sample, with the reason (e.g. `no series matched work_queue_depth`).
    NoData(String),
    /// The source failed or the query cannot be answered, with what happened.
    Error(String),
}

impl fmt::Display for VarResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarResult::Value(v) => f.write_str(&format_value(*v)),
            VarResult::NoData(why) => write!(f, "no data ({why})"),
            VarResult::Error(why) => write!(f, "error ({why})"),
        }
    }
}

/// One variable as evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct VarReport {
    pub name: String,
    /// `scrape` or `promql`.
    pub source: &'static str,
    /// The query text.
    pub query: String,
    pub result: VarResult,
}

/// The pod's scrape as the `scrape:` variables see it.
#[derive(Debug, Clone, Copy)]
pub enum ScrapeInput<'a> {
    /// The store after the latest successful scrape.
    Store(&'a SeriesStore),
    /// The latest scrape failed with this error.
    Failed(&'a str),
}

/// The evaluation and the variables behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleEvaluation {
    pub evaluation: Evaluation,
    pub vars: Vec<VarReport>,
}

/// Evaluates `rule` at `now_ms`. `promql` answers the rule's `promql:` variables (the daemon
/// from its Prometheus results, the CLI from the command line or test file).
pub fn evaluate_rule(
    rule: &Rule,
    scrape: ScrapeInput<'_>,
    promql: &mut dyn FnMut(&Var) -> VarResult,
    now_ms: i64,
) -> RuleEvaluation {
    let used = rule.expr.variables();
    let vars: Vec<VarReport> = rule
        .vars
        .iter()
        .filter(|v| used.contains(&v.name))
        .map(|v| {
            let (source, result) = match &v.source {
                VarSource::Scrape(q) => ("scrape", scrape_value(q, scrape, now_ms)),
                VarSource::Promql(_) => ("promql", promql(v)),
            };
            VarReport {
                name: v.name.clone(),
                source,
                query: v.text.clone(),
                result,
            }
        })
        .collect();
    let evaluation = decide(rule, &vars);
    RuleEvaluation { evaluation, vars }
}

fn scrape_value(q: &crate::query::Query, scrape: ScrapeInput<'_>, now_ms: i64) -> VarResult {
    match scrape {
        ScrapeInput::Failed(e) => VarResult::Error(e.to_string()),
        ScrapeInput::Store(store) => match q.eval(store, now_ms) {
            Ok(QueryValue::Number(v)) => VarResult::Value(v),
            Ok(QueryValue::NoData(why)) => VarResult::NoData(why.to_string()),
            Err(e) => VarResult::Error(e.to_string()),
        },
    }
}

/// Errors first (the source is broken), then no data, then the expression.
fn decide(rule: &Rule, vars: &[VarReport]) -> Evaluation {
    let nan_aware = rule.expr.nan_aware_variables();
    let errors: Vec<(&str, &str)> = vars
        .iter()
        .filter_map(|v| match &v.result {
            VarResult::Error(e) => Some((v.name.as_str(), e.as_str())),
            _ => None,
        })
        .collect();
    if !errors.is_empty() {
        return Evaluation {
            outcome: Outcome::Error,
            detail: group_by_message("source error", &errors),
        };
    }
    // A variable the expression tests with isnan() gets NaN for "no data" and decides for
    // itself; any other variable without a number makes the whole evaluation "no data".
    let missing: Vec<(&str, &str)> = vars
        .iter()
        .filter(|v| !nan_aware.contains(&v.name))
        .filter_map(|v| match &v.result {
            VarResult::NoData(why) => Some((v.name.as_str(), why.as_str())),
            VarResult::Value(x) if x.is_nan() => Some((v.name.as_str(), "the value is NaN")),
            _ => None,
        })
        .collect();
    if !missing.is_empty() {
        return Evaluation {
            outcome: Outcome::NoData,
            detail: group_by_message("no data", &missing),
        };
    }
    let values: Vec<(&str, f64)> = vars
        .iter()
        .filter_map(|v| match v.result {
            VarResult::Value(x) => Some((v.name.as_str(), x)),
            VarResult::NoData(_) => Some((v.name.as_str(), f64::NAN)),
            VarResult::Error(_) => None,
        })
        .collect();
    match rule.expr.eval(&values) {
        Ok(pass) => Evaluation {
            outcome: if pass { Outcome::Pass } else { Outcome::Fail },
            detail: rule.expr.explain(&values),
        },
        Err(e) => Evaluation {
            outcome: Outcome::Error,
            detail: format!("expression error: {e}"),
        },
    }
}

/// `prefix: a, b: why; c: other why` — variables sharing a reason are named together, so a
/// failed scrape reads once, not once per variable.
fn group_by_message(prefix: &str, items: &[(&str, &str)]) -> String {
    let mut groups: Vec<(Vec<&str>, &str)> = Vec::new();
    for (name, why) in items {
        match groups.iter_mut().find(|(_, w)| w == why) {
            Some((names, _)) => names.push(name),
            None => groups.push((vec![name], why)),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(names, why)| format!("{}: {why}", names.join(", ")))
        .collect();
    format!("{prefix}: {}", parts.join("; "))
}
