//! Evaluating one rule on one pod: each variable from its source, then the expression.
//!
//! The result is an [`Evaluation`] for the decision core plus a report of every variable,
//! which `podgate eval`, the logs and the condition message use.

use std::collections::BTreeSet;
use std::fmt;

use crate::decision::{Evaluation, Outcome};
use crate::expr::format_value;
use crate::peers::{PeerLookup, PeerSummary};
use crate::query::{NoData, QueryValue, SeriesStore};
use crate::rules::{Rule, Var, VarSource};

/// A variable's value for one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum VarResult {
    Value(f64),
    /// No sample, with the reason (e.g. `no series matched work_queue_depth`).
    NoData(String),
    /// The source failed or the query cannot be answered, with what happened.
    Error(String),
    /// No data yet, and none can exist before `until_ms`: the window the variable reads
    /// reaches back before podgate (scrape) or Prometheus (PromQL) could see the pod.
    Warming {
        why: String,
        until_ms: i64,
    },
}

impl fmt::Display for VarResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarResult::Value(v) => f.write_str(&format_value(*v)),
            VarResult::NoData(why) => write!(f, "no data ({why})"),
            VarResult::Error(why) => write!(f, "error ({why})"),
            VarResult::Warming { why, until_ms } => {
                write!(f, "warming up until {} ({why})", format_utc(*until_ms))
            }
        }
    }
}

/// One variable as evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct VarReport {
    pub name: String,
    /// `scrape`, `promql` or `peers`.
    pub source: &'static str,
    /// The query text.
    pub query: String,
    pub result: VarResult,
    /// For a `peers:` variable, what it was computed from.
    pub peers: Option<PeerSummary>,
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
/// from its Prometheus results, the CLI from the command line or test file); `peers` its
/// `peers:` variables, from the latest evaluations of the pod's peers.
///
/// `ready_since_ms` is when the pod's ContainersReady turned True, if known: a `promql:`
/// variable without data while the pod is younger than the query's longest range plus one
/// interval is warming, not "no data" (Prometheus cannot hold the series yet). A `scrape:`
/// variable warms while the pod's scrape history is shorter than its range.
pub fn evaluate_rule(
    rule: &Rule,
    scrape: ScrapeInput<'_>,
    promql: &mut dyn FnMut(&Var) -> VarResult,
    peers: &dyn PeerLookup,
    ready_since_ms: Option<i64>,
    now_ms: i64,
) -> RuleEvaluation {
    let in_expr: BTreeSet<String> = rule.expr.variables().into_iter().collect();
    // The variables the used `peers:` variables aggregate are evaluated too: the pod's peers
    // read them from this evaluation.
    let mut needed = in_expr.clone();
    needed.extend(
        rule.vars
            .iter()
            .filter(|v| in_expr.contains(&v.name))
            .filter_map(|v| v.peers().map(|p| p.var.clone())),
    );
    let vars: Vec<VarReport> = rule
        .vars
        .iter()
        .filter(|v| needed.contains(&v.name))
        .map(|v| {
            let mut summary = None;
            let result = match &v.source {
                VarSource::Scrape(q) => scrape_value(q, scrape, now_ms),
                VarSource::Promql(t) => {
                    let until = ready_since_ms.map(|ready| {
                        ready
                            .saturating_add(t.longest_range_ms())
                            .saturating_add(crate::time::millis(rule.interval))
                    });
                    promql_value(promql(v), until, now_ms)
                }
                VarSource::Peers(spec) => {
                    let reading = peers.read(rule, &v.name, spec, now_ms);
                    summary = reading.summary;
                    reading.result
                }
            };
            VarReport {
                name: v.name.clone(),
                source: v.source.kind(),
                query: v.text.clone(),
                result,
                peers: summary,
            }
        })
        .collect();
    let evaluation = decide(rule, &vars, &in_expr);
    RuleEvaluation { evaluation, vars }
}

impl RuleEvaluation {
    /// The numbers this evaluation leaves for the pod's peers: the values of the variables
    /// the rule's `peers:` variables aggregate.
    pub fn peer_values(&self, rule: &Rule) -> Vec<(String, f64)> {
        let sources: BTreeSet<&str> = rule.peer_sources().collect();
        self.vars
            .iter()
            .filter(|v| sources.contains(v.name.as_str()))
            .filter_map(|v| match v.result {
                VarResult::Value(x) if !x.is_nan() => Some((v.name.clone(), x)),
                _ => None,
            })
            .collect()
    }
}

fn scrape_value(q: &crate::query::Query, scrape: ScrapeInput<'_>, now_ms: i64) -> VarResult {
    match scrape {
        ScrapeInput::Failed(e) => VarResult::Error(e.to_string()),
        ScrapeInput::Store(store) => match q.eval(store, now_ms) {
            Ok(QueryValue::Number(v)) => VarResult::Value(v),
            Ok(QueryValue::NoData(why)) => {
                // Too few points in the window (or an offset before the first scrape), and the
                // window reaches back before the first scrape: the points cannot exist yet. A series that is simply absent is not
                // warming: it may never appear (onNoData decides once the data could exist).
                let until = store
                    .first_scrape_ms()
                    .map(|first| first.saturating_add(q.range_ms()));
                match (&why, until) {
                    (
                        NoData::NotEnoughHistory { .. } | NoData::NoHistoryYet { .. },
                        Some(until),
                    ) if now_ms < until => VarResult::Warming {
                        why: why.to_string(),
                        until_ms: until,
                    },
                    _ => VarResult::NoData(why.to_string()),
                }
            }
            Err(e) => VarResult::Error(e.to_string()),
        },
    }
}

/// A `promql:` result, warming while Prometheus cannot hold the pod's series yet.
fn promql_value(result: VarResult, until: Option<i64>, now_ms: i64) -> VarResult {
    match (result, until) {
        (VarResult::NoData(why), Some(until)) if now_ms < until => VarResult::Warming {
            why: format!("{why}; the pod is younger than the query's range plus one interval"),
            until_ms: until,
        },
        (other, _) => other,
    }
}

/// Errors first (the source is broken), then warming (no verdict can exist yet), then no data,
/// then the expression. Only the variables the expression reads count (`in_expr`): one
/// evaluated only for the pod's peers does not decide the pod's gate.
fn decide(rule: &Rule, all: &[VarReport], in_expr: &BTreeSet<String>) -> Evaluation {
    let vars: Vec<&VarReport> = all.iter().filter(|v| in_expr.contains(&v.name)).collect();
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
    // isnan() does not apply here: a window that cannot be full yet says nothing, so it must
    // not read as "no errors" either.
    let warming: Vec<(&str, &str)> = vars
        .iter()
        .filter_map(|v| match &v.result {
            VarResult::Warming { why, .. } => Some((v.name.as_str(), why.as_str())),
            _ => None,
        })
        .collect();
    let until = vars
        .iter()
        .filter_map(|v| match v.result {
            VarResult::Warming { until_ms, .. } => Some(until_ms),
            _ => None,
        })
        .max();
    if let Some(until) = until {
        let prefix = format!("warming up until {} at the latest", format_utc(until));
        return Evaluation {
            outcome: Outcome::Warming,
            detail: group_by_message(&prefix, &warming),
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
            VarResult::Error(_) | VarResult::Warming { .. } => None,
        })
        .collect();
    match rule.expr.eval(&values) {
        Ok(pass) => Evaluation {
            outcome: if pass { Outcome::Pass } else { Outcome::Fail },
            detail: with_peers(rule.expr.explain(&values), &vars),
        },
        Err(e) => Evaluation {
            outcome: Outcome::Error,
            detail: format!("expression error: {e}"),
        },
    }
}

/// The verdict's explanation, then where each `peers:` value came from:
/// `err=0.031 > 2*base_err=0.008; base_err=0.004 is the baseline median of err over 5 pods of
/// revision 7d9f4c`.
fn with_peers(mut detail: String, vars: &[&VarReport]) -> String {
    for v in vars {
        if let (VarResult::Value(x), Some(summary)) = (&v.result, &v.peers) {
            detail.push_str("; ");
            detail.push_str(&summary.explain(&v.name, *x));
        }
    }
    detail
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

/// `2026-12-05T08:41:02Z`: an instant (ms since the Unix epoch) in UTC, for messages.
pub fn format_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil, inverted).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod peer_tests;
#[cfg(test)]
mod tests;
