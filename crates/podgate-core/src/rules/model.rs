//! Validated rules: every field of a rule with its default applied and its value typed,
//! queries and the expression compiled.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::diag::Diagnostic;
use super::selector::Selector;
use crate::expr::Expr;
use crate::peers::{Aggregate, PeerSet, PeersSettings};
use crate::query::{Query, Template};

/// What an evaluation outcome (no data, source error) does to the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Count it as a passing evaluation.
    Pass,
    /// Count it as a failing evaluation.
    Fail,
    /// Hold the current condition and count nothing.
    Keep,
}

impl Policy {
    pub const NAMES: [&'static str; 3] = ["pass", "fail", "keep"];

    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "pass" => Some(Policy::Pass),
            "fail" => Some(Policy::Fail),
            "keep" => Some(Policy::Keep),
            _ => None,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Pass => "pass",
            Policy::Fail => "fail",
            Policy::Keep => "keep",
        })
    }
}

/// `maxUnavailable`: how many of a rule's pods in a namespace may be False at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaxUnavailable {
    Count(u32),
    /// 0–100.
    Percent(u8),
}

impl Default for MaxUnavailable {
    fn default() -> Self {
        MaxUnavailable::Percent(100)
    }
}

impl MaxUnavailable {
    /// The number of pods, out of `total`, that may be False.
    ///
    /// A percentage is rounded up, as the PodDisruptionBudget controller does for its
    /// `maxUnavailable` (`GetScaledValueFromIntOrPercent(.., roundUp=true)`): `10%` of 5 pods
    /// is 1, so a rule with a small percentage can still take a single bad pod out of a small
    /// fleet. (A Deployment's rolling update rounds its `maxUnavailable` down instead; that
    /// would make `10%` of 5 pods 0 and keep every broken pod in service.) A count larger than
    /// `total` is capped at `total`.
    pub fn resolve(&self, total: usize) -> usize {
        match *self {
            MaxUnavailable::Count(n) => usize::try_from(n).unwrap_or(usize::MAX).min(total),
            MaxUnavailable::Percent(p) => {
                let scaled = (total as u128 * u128::from(p)).div_ceil(100);
                usize::try_from(scaled).unwrap_or(total).min(total)
            }
        }
    }
}

impl fmt::Display for MaxUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxUnavailable::Count(n) => write!(f, "{n}"),
            MaxUnavailable::Percent(p) => write!(f, "{p}%"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

/// A container port, by number or by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Port {
    Number(u16),
    Name(String),
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Number(n) => write!(f, "{n}"),
            Port::Name(n) => f.write_str(n),
        }
    }
}

/// How to reach a pod's own metrics endpoint for `scrape:` variables.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScrapeConfig {
    /// None: the pod's `prometheus.io/port` annotation, else its first declared container port.
    pub port: Option<Port>,
    /// None: the pod's `prometheus.io/path` annotation, else `/metrics`.
    pub path: Option<String>,
    pub scheme: Scheme,
    /// CA bundle for https; None: the system roots.
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

/// The labels a batched `promql:` result is joined to pods on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusLabels {
    pub namespace_label: String,
    pub pod_label: String,
}

impl Default for PrometheusLabels {
    fn default() -> Self {
        PrometheusLabels {
            namespace_label: "namespace".to_string(),
            pod_label: "pod".to_string(),
        }
    }
}

/// Whether a rule keeps evaluating a pod once it has let it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Evaluate for as long as the pod runs.
    #[default]
    Continuous,
    /// Once the rule has set the pod's gate True, stop evaluating it: the gate stays True.
    Startup,
}

impl Mode {
    pub const NAMES: [&'static str; 2] = ["continuous", "startup"];

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "continuous" => Some(Mode::Continuous),
            "startup" => Some(Mode::Startup),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Continuous => "continuous",
            Mode::Startup => "startup",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `peers:` variable: another variable of the rule, aggregated over the pod's peers.
#[derive(Debug, Clone, PartialEq)]
pub struct PeersSpec {
    /// The variable aggregated (a `scrape:` or `promql:` one of the same rule).
    pub var: String,
    pub aggregate: Aggregate,
    pub of: PeerSet,
    /// Fewer peers with a fresh value than this is "no data".
    pub min_peers: u32,
}

impl PeersSpec {
    /// The canonical text of the definition (every field, defaults included).
    pub fn text(&self) -> String {
        format!(
            "{{var: {}, aggregate: {}, of: {}, minPeers: {}}}",
            self.var, self.aggregate, self.of, self.min_peers
        )
    }
}

/// Where a variable's number comes from, compiled.
#[derive(Debug, Clone)]
pub enum VarSource {
    /// Evaluated on the pod's own scrape.
    Scrape(Query),
    /// A Prometheus instant query (templated per pod, or batched per rule).
    Promql(Template),
    /// Another variable's latest values on the pod's peers, aggregated.
    Peers(PeersSpec),
}

impl VarSource {
    /// `scrape`, `promql` or `peers`, as written in the rule.
    pub fn kind(&self) -> &'static str {
        match self {
            VarSource::Scrape(_) => "scrape",
            VarSource::Promql(_) => "promql",
            VarSource::Peers(_) => "peers",
        }
    }
}

/// A named number the expression reads.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    /// The query text as written (for `peers:`, [`PeersSpec::text`]).
    pub text: String,
    pub source: VarSource,
}

impl Var {
    pub fn is_scrape(&self) -> bool {
        matches!(self.source, VarSource::Scrape(_))
    }

    /// The definition, when the variable is a `peers:` one.
    pub fn peers(&self) -> Option<&PeersSpec> {
        match &self.source {
            VarSource::Peers(p) => Some(p),
            _ => None,
        }
    }

    /// Whether `other` defines the same variable (name, source kind and text).
    pub fn same_definition(&self, other: &Var) -> bool {
        self.name == other.name
            && self.text == other.text
            && self.source.kind() == other.source.kind()
    }
}

/// Where a rule was defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// The readiness gate this rule drives.
    pub condition_type: String,
    pub selector: Selector,
    pub interval: Duration,
    pub timeout: Duration,
    pub initial_delay: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// YAML `for`: a failure must also have lasted this long before the gate turns False.
    pub for_duration: Duration,
    pub on_no_data: Policy,
    pub on_error: Policy,
    /// None when off (`0s`, the default).
    pub fail_open_after: Option<Duration>,
    pub max_unavailable: MaxUnavailable,
    pub dry_run: bool,
    pub mode: Mode,
    pub scrape: ScrapeConfig,
    pub prometheus: PrometheusLabels,
    /// How `peers:` variables find the pod's peers.
    pub peers: PeersSettings,
    /// In declaration order.
    pub vars: Vec<Var>,
    /// The expression text as written.
    pub expr_text: String,
    pub expr: Expr,
    pub origin: Origin,
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 1;
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
pub const DEFAULT_ON_NO_DATA: Policy = Policy::Fail;
pub const DEFAULT_ON_ERROR: Policy = Policy::Keep;

impl Rule {
    /// Whether `other` defines the same rule, ignoring where it is written: a reload keeps
    /// the evaluation state (streaks) of rules for which this holds.
    pub fn same_definition(&self, other: &Rule) -> bool {
        // Destructured so that a new field cannot be forgotten here.
        let Rule {
            name,
            condition_type,
            selector,
            interval,
            timeout,
            initial_delay,
            success_threshold,
            failure_threshold,
            for_duration,
            on_no_data,
            on_error,
            fail_open_after,
            max_unavailable,
            dry_run,
            mode,
            scrape,
            prometheus,
            peers,
            vars,
            expr_text,
            expr: _,
            origin: _,
        } = self;
        *name == other.name
            && *condition_type == other.condition_type
            && *selector == other.selector
            && *interval == other.interval
            && *timeout == other.timeout
            && *initial_delay == other.initial_delay
            && *success_threshold == other.success_threshold
            && *failure_threshold == other.failure_threshold
            && *for_duration == other.for_duration
            && *on_no_data == other.on_no_data
            && *on_error == other.on_error
            && *fail_open_after == other.fail_open_after
            && *max_unavailable == other.max_unavailable
            && *dry_run == other.dry_run
            && *mode == other.mode
            && *scrape == other.scrape
            && *prometheus == other.prometheus
            && *peers == other.peers
            && vars.len() == other.vars.len()
            && vars
                .iter()
                .zip(&other.vars)
                .all(|(a, b)| a.same_definition(b))
            && *expr_text == other.expr_text
    }

    /// The compiled queries of the rule's `scrape:` variables.
    pub fn scrape_queries(&self) -> impl Iterator<Item = &Query> {
        self.vars.iter().filter_map(|v| match &v.source {
            VarSource::Scrape(q) => Some(q),
            VarSource::Promql(_) | VarSource::Peers(_) => None,
        })
    }

    /// Whether the expression reads a `peers:` variable.
    pub fn uses_peers(&self) -> bool {
        self.peer_sources().next().is_some()
    }

    /// The variables the `peers:` variables the expression reads aggregate: what each pod's
    /// evaluation leaves for its peers.
    pub fn peer_sources(&self) -> impl Iterator<Item = &str> {
        let used = self.expr.variables();
        self.vars
            .iter()
            .filter(move |v| used.contains(&v.name))
            .filter_map(|v| v.peers().map(|p| p.var.as_str()))
    }

    /// Whether the rule reads the pod's own endpoint.
    pub fn uses_scrape(&self) -> bool {
        self.scrape_queries().next().is_some()
    }

    pub fn var(&self, name: &str) -> Option<&Var> {
        self.vars.iter().find(|v| v.name == name)
    }
}

/// A validated set of rules from one load, in file order then document order.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Arc<Rule>>,
    /// Findings that did not prevent loading (e.g. a variable defined but never used).
    pub warnings: Vec<Diagnostic>,
}

impl RuleSet {
    pub fn get(&self, name: &str) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.name == name)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rounds_up_like_pdb() {
        assert_eq!(MaxUnavailable::Percent(10).resolve(5), 1);
        assert_eq!(MaxUnavailable::Percent(25).resolve(10), 3);
        assert_eq!(MaxUnavailable::Percent(25).resolve(8), 2);
        assert_eq!(MaxUnavailable::Percent(50).resolve(3), 2);
        assert_eq!(MaxUnavailable::Percent(100).resolve(7), 7);
        assert_eq!(MaxUnavailable::Percent(0).resolve(7), 0);
        assert_eq!(MaxUnavailable::Percent(33).resolve(0), 0);
        assert_eq!(MaxUnavailable::Percent(1).resolve(1000), 10);
        assert_eq!(MaxUnavailable::Percent(1).resolve(1001), 11);
        assert_eq!(MaxUnavailable::Percent(100).resolve(usize::MAX), usize::MAX);
        assert!(MaxUnavailable::Percent(99).resolve(usize::MAX) < usize::MAX);
    }

    #[test]
    fn count_is_capped_at_total() {
        assert_eq!(MaxUnavailable::Count(2).resolve(10), 2);
        assert_eq!(MaxUnavailable::Count(20).resolve(10), 10);
        assert_eq!(MaxUnavailable::Count(0).resolve(10), 0);
    }

    #[test]
    fn default_is_everything() {
        assert_eq!(MaxUnavailable::default().resolve(12), 12);
        assert_eq!(MaxUnavailable::default().to_string(), "100%");
    }
}
