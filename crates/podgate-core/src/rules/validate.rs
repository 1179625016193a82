//! Validation of one rule file: walks the YAML tree, checks every field, collects every
//! problem as a [`Diagnostic`], and builds the [`Rule`]s that have none.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diag::{Diagnostic, Severity};
use super::duration::{format_duration, parse_duration};
use super::model::{
    DEFAULT_FAILURE_THRESHOLD, DEFAULT_INTERVAL, DEFAULT_ON_ERROR, DEFAULT_ON_NO_DATA,
    DEFAULT_SUCCESS_THRESHOLD, DEFAULT_TIMEOUT, MaxUnavailable, Mode, Origin, Policy, Port,
    PrometheusLabels, Rule, Scheme, ScrapeConfig, Var, VarSource,
};
use super::names;
use super::selector::{Operator, Requirement, Selector};
use super::yaml::{self, Kind, Node, Pos};
use crate::expr::Expr;
use crate::peers::PeersSettings;
use crate::query::{self, Template};

mod peers;

const TOP_FIELDS: &[&str] = &["rules"];
const RULE_FIELDS: &[&str] = &[
    "name",
    "conditionType",
    "selector",
    "interval",
    "timeout",
    "initialDelay",
    "successThreshold",
    "failureThreshold",
    "for",
    "onNoData",
    "onError",
    "failOpenAfter",
    "maxUnavailable",
    "dryRun",
    "mode",
    "scrape",
    "prometheus",
    "peers",
    "vars",
    "expr",
];
const SELECTOR_FIELDS: &[&str] = &["namespaces", "matchLabels", "matchExpressions"];
const EXPRESSION_FIELDS: &[&str] = &["key", "operator", "values"];
const SCRAPE_FIELDS: &[&str] = &["port", "path", "scheme", "caFile", "insecureSkipVerify"];
const PROMETHEUS_FIELDS: &[&str] = &["namespaceLabel", "podLabel"];
const VAR_FIELDS: &[&str] = &["scrape", "promql", "peers"];
/// Most variables one rule may define: each is a query per pod per interval.
pub const MAX_VARS: usize = 64;

/// Condition types the kubelet and the control plane own; podgate must never write them.
const BUILTIN_CONDITIONS: &[&str] = &[
    "PodScheduled",
    "PodReadyToStartContainers",
    "Initialized",
    "ContainersReady",
    "Ready",
    "DisruptionTarget",
    "PodResizePending",
    "PodResizeInProgress",
];

const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// What one file yields.
#[derive(Debug, Default)]
pub(crate) struct FileOutcome {
    /// Rules without errors.
    pub rules: Vec<Rule>,
    /// Every rule entry, valid or not: its name (when it is a string) and the position of
    /// the name (else of the entry).
    pub entries: Vec<(Option<String>, Pos)>,
}

/// Validates one file's text, appending diagnostics to `diags`.
pub(crate) fn validate_file(file: &Path, src: &str, diags: &mut Vec<Diagnostic>) -> FileOutcome {
    let mut w = Walker {
        file,
        src,
        diags,
        rule: None,
        prefix: String::new(),
        errors: 0,
        suggested: BTreeSet::new(),
    };
    let mut out = FileOutcome::default();
    let root = match yaml::parse(src) {
        Ok(root) => root,
        Err(e) => {
            let pos = e.pos.unwrap_or_default();
            w.error(pos, "", format!("invalid YAML: {}", e.message));
            return out;
        }
    };
    if root.is_null() {
        w.error(
            Pos { line: 1, column: 1 },
            "",
            "the file is empty; a rule file holds `rules:` with a list \
             (write `rules: []` for a file without rules)",
        );
        return out;
    }
    let Some(fields) = w.fields(&root, "", TOP_FIELDS) else {
        return out;
    };
    let Some(rules) = get(&fields, "rules") else {
        let (at, message) = match fields.iter().find(|(k, _, _)| *k == "rules") {
            Some((_, key, _)) => (key.at, "`rules:` holds no list"),
            None => (root.at, "missing `rules:` list"),
        };
        w.error(
            at,
            "rules",
            format!("{message} (write `rules: []` for a file without rules)"),
        );
        return out;
    };
    let Kind::Seq(items) = &rules.kind else {
        w.type_error(rules, "rules", "a list of rules");
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let name_node = match &item.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some("name"))
                .map(|(_, v)| v),
            _ => None,
        };
        let name = name_node.and_then(|n| n.as_str().map(str::to_string));
        out.entries
            .push((name, name_node.map_or(item.at, |n| n.at)));
        if let Some(rule) = w.rule(i, item) {
            out.rules.push(rule);
        }
    }
    out
}

type Fields<'n> = Vec<(&'n str, &'n Node, &'n Node)>;

/// The value of `key`, unless it is absent or null (null means "not set", as in Kubernetes).
fn get<'n>(fields: &Fields<'n>, key: &str) -> Option<&'n Node> {
    fields
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, _, v)| *v)
        .filter(|v| !v.is_null())
}

/// Where to report a missing `key`: at the key when it is written with a null value, else
/// at the mapping that lacks it.
fn key_pos(fields: &Fields<'_>, key: &str, map: &Node) -> Pos {
    fields
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or(map.at, |(_, k, _)| k.at)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

struct Walker<'a> {
    file: &'a Path,
    src: &'a str,
    diags: &'a mut Vec<Diagnostic>,
    /// Name of the rule being walked, when it has a string name.
    rule: Option<String>,
    /// `rules[i].` while walking a rule without a usable name, so fields stay findable.
    prefix: String,
    /// Errors emitted so far; a rule is built only if this did not grow while walking it.
    errors: usize,
    /// Field paths suggested for unknown (misspelt) fields: a "missing field" error for
    /// them would only repeat the finding.
    suggested: BTreeSet<String>,
}

impl Walker<'_> {
    fn emit(&mut self, severity: Severity, pos: Pos, field: &str, message: impl Into<String>) {
        if severity == Severity::Error {
            self.errors += 1;
        }
        let full = format!("{}{}", self.prefix, field);
        let full = full.trim_end_matches('.');
        self.diags.push(Diagnostic {
            severity,
            file: PathBuf::from(self.file),
            line: pos.line,
            column: pos.column,
            rule: self.rule.clone(),
            field: (!full.is_empty()).then(|| full.to_string()),
            message: message.into(),
        });
    }

    fn error(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        self.emit(Severity::Error, pos, field, message);
    }

    fn warn(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        self.emit(Severity::Warning, pos, field, message);
    }

    /// "expected X, found Y", with a hint to quote scalars that YAML read as another type.
    fn type_error(&mut self, node: &Node, path: &str, expected: &str) {
        let found = node.describe();
        let hint = match (&node.kind, node.raw(self.src)) {
            (Kind::Int(_) | Kind::UInt(_) | Kind::Float(_) | Kind::Bool(_), Some(raw))
                if expected.contains("string") =>
            {
                format!(" ({raw}); to use it as a string, quote it: \"{raw}\"")
            }
            (Kind::Int(_) | Kind::UInt(_) | Kind::Float(_) | Kind::Bool(_), Some(raw)) => {
                format!(" ({raw})")
            }
            (Kind::Str(s), _) if s.chars().count() <= 40 => format!(" ({s:?})"),
            _ => String::new(),
        };
        self.error(
            node.at,
            path,
            format!("expected {expected}, found {found}{hint}"),
        );
    }

    /// Checks `node` is a mapping whose keys are strings from `known`, and returns its
    /// entries. Unknown keys are errors with a suggestion of the closest known one.
    fn fields<'n>(&mut self, node: &'n Node, path: &str, known: &[&str]) -> Option<Fields<'n>> {
        let Kind::Map(entries) = &node.kind else {
            let expected = if path.is_empty() {
                "a mapping with a `rules:` list".to_string()
            } else {
                format!("a mapping with fields {}", known.join(", "))
            };
            self.type_error(node, path, &expected);
            return None;
        };
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let Some(key) = k.as_str() else {
                self.type_error(k, path, "a field name (a string)");
                continue;
            };
            if known.contains(&key) {
                out.push((key, k, v));
            } else {
                if let Some(s) = names::closest(key, known) {
                    self.suggested
                        .insert(format!("{}{}", self.prefix, join(path, s)));
                }
                let hint = names::did_you_mean(key, known);
                self.error(
                    k.at,
                    &join(path, key),
                    format!(
                        "unknown field {key:?}{hint}{}",
                        if hint.is_empty() {
                            format!(" (known fields: {})", known.join(", "))
                        } else {
                            String::new()
                        }
                    ),
                );
            }
        }
        Some(out)
    }

    /// Reports a missing required field, unless a misspelling of it was reported already.
    fn missing(&mut self, pos: Pos, path: &str, what: &str) {
        if !self.suggested.contains(&format!("{}{}", self.prefix, path)) {
            let field = path.rsplit('.').next().unwrap_or(path);
            self.error(pos, path, format!("missing required field `{field}`{what}"));
        }
    }

    fn string<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n str> {
        match &node.kind {
            Kind::Str(s) => Some(s),
            _ => {
                self.type_error(node, path, "a string");
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        match &node.kind {
            Kind::Str(s) => match parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.error(node.at, path, e.message);
                    None
                }
            },
            Kind::UInt(0) | Kind::Int(0) => Some(Duration::ZERO),
            Kind::Int(_) | Kind::UInt(_) | Kind::Float(_) => {
                let raw = node.raw(self.src).unwrap_or("the number");
                let message = match parse_duration(raw) {
                    Err(e) => e.message,
                    Ok(_) => format!("duration {raw} has no unit; add one, e.g. {raw}s"),
                };
                self.error(node.at, path, message);
                None
            }
            _ => {
                self.type_error(node, path, "a duration such as 10s, 1m30s or 500ms");
                None
            }
        }
    }

    /// An integer in `min..=u32::MAX`.
    fn count(&mut self, node: &Node, path: &str, min: u32) -> Option<u32> {
        let raw = node.raw(self.src).unwrap_or("").to_string();
        match &node.kind {
            Kind::UInt(v) => match u32::try_from(*v) {
                Ok(v) if v >= min => Some(v),
                Ok(v) => {
                    self.error(node.at, path, format!("must be at least {min}, got {v}"));
                    None
                }
                Err(_) => {
                    self.error(
                        node.at,
                        path,
                        format!("{v} is too large (max {})", u32::MAX),
                    );
                    None
                }
            },
            Kind::Int(v) => {
                self.error(node.at, path, format!("must be at least {min}, got {v}"));
                None
            }
            Kind::Float(f) => {
                let shown = if raw.is_empty() { f.to_string() } else { raw };
                self.error(
                    node.at,
                    path,
                    format!("expected a whole number, found {shown}"),
                );
                None
            }
            Kind::Str(s) if s.trim().parse::<u64>().is_ok() => {
                self.error(
                    node.at,
                    path,
                    format!("expected a number, found the string {s:?}; remove the quotes"),
                );
                None
            }
            _ => {
                self.type_error(node, path, "a whole number");
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.kind {
            Kind::Bool(b) => Some(*b),
            _ => {
                self.type_error(node, path, "true or false");
                None
            }
        }
    }

    fn policy(&mut self, node: &Node, path: &str) -> Option<Policy> {
        let s = self.string(node, path)?;
        match Policy::parse(s) {
            Some(p) => Some(p),
            None => {
                let hint = names::did_you_mean(s, &Policy::NAMES);
                self.error(
                    node.at,
                    path,
                    format!("unknown policy {s:?}{hint}; expected pass, fail or keep"),
                );
                None
            }
        }
    }

    /// The source position of character `index` of a string scalar, or `None` when the
    /// scalar's layout does not allow an exact position.
    fn pos_in(&self, node: &Node, index: usize) -> Option<Pos> {
        node.char_pos(self.src, index)
    }

    /// Reports an error at 1-based `column` of the text of `node` (a query or expression):
    /// at the exact character when possible, else at the scalar with the column in the text.
    fn error_in_text(
        &mut self,
        node: &Node,
        path: &str,
        column: Option<usize>,
        what: &str,
        message: &str,
    ) {
        let exact = column.and_then(|c| self.pos_in(node, c.saturating_sub(1)));
        match (exact, column) {
            (Some(pos), _) => self.error(pos, path, message.to_string()),
            (None, Some(c)) => self.error(
                node.at,
                path,
                format!("at column {c} of the {what}: {message}"),
            ),
            (None, None) => self.error(node.at, path, message.to_string()),
        }
    }

    fn rule(&mut self, index: usize, node: &Node) -> Option<Rule> {
        self.rule = None;
        self.prefix = format!("rules[{index}].");
        self.suggested.clear();
        let errors_before = self.errors;
        if !matches!(node.kind, Kind::Map(_)) {
            self.type_error(
                node,
                "",
                "a rule (a mapping with name, conditionType, vars, expr, ...)",
            );
            return None;
        }
        // Name first, so every finding in the rule (unknown fields included) names the rule.
        let name_node = match &node.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some("name"))
                .map(|(_, v)| v),
            _ => None,
        };
        if let Some(s) = name_node.and_then(|n| n.as_str()) {
            self.rule = Some(s.to_string());
            self.prefix.clear();
        }
        let fields = self.fields(node, "", RULE_FIELDS)?;
        let name = match get(&fields, "name") {
            Some(n) => match &n.kind {
                Kind::Str(s) => {
                    if let Err(e) = names::rule_name(s) {
                        self.error(n.at, "name", format!("invalid rule name: {e}"));
                    }
                    Some(s.clone())
                }
                _ => {
                    self.type_error(n, "name", "a string");
                    None
                }
            },
            None => {
                self.missing(key_pos(&fields, "name", node), "name", "");
                None
            }
        };

        let condition_type = match get(&fields, "conditionType") {
            Some(n) => self.string(n, "conditionType").and_then(|s| {
                if let Err(e) = names::qualified_name(s) {
                    self.error(
                        n.at,
                        "conditionType",
                        format!(
                            "invalid condition type {s:?}: {e} (label-key syntax, e.g. \
                             example.com/metrics-healthy)"
                        ),
                    );
                    None
                } else if BUILTIN_CONDITIONS.contains(&s) {
                    self.error(
                        n.at,
                        "conditionType",
                        format!(
                            "{s:?} is a built-in pod condition owned by Kubernetes; use your \
                             own type, e.g. example.com/metrics-healthy"
                        ),
                    );
                    None
                } else {
                    Some(s.to_string())
                }
            }),
            None => {
                self.missing(key_pos(&fields, "conditionType", node), "conditionType", "");
                None
            }
        };

        let selector = match get(&fields, "selector") {
            Some(n) => self.selector(n),
            None => Some(Selector::default()),
        };

        let interval = match get(&fields, "interval") {
            Some(n) => self.duration(n, "interval").and_then(|d| {
                if d < MIN_INTERVAL {
                    self.error(n.at, "interval", "must be at least 1s");
                    None
                } else {
                    Some(d)
                }
            }),
            None => Some(DEFAULT_INTERVAL),
        };
        let timeout = match get(&fields, "timeout") {
            Some(n) => self.duration(n, "timeout").and_then(|d| {
                if d.is_zero() {
                    self.error(n.at, "timeout", "must be greater than 0s");
                    None
                } else {
                    Some(d)
                }
            }),
            None => Some(DEFAULT_TIMEOUT),
        };
        if let (Some(i), Some(t)) = (interval, timeout)
            && t >= i
        {
            // Point at the timeout when it is written; else the default timeout meets a
            // short interval, and the interval is what the user wrote.
            let (field, at, note) = match get(&fields, "timeout") {
                Some(n) => ("timeout", n.at, ""),
                None => (
                    "interval",
                    get(&fields, "interval").map_or(node.at, |n| n.at),
                    ", the default; set a shorter timeout",
                ),
            };
            self.error(
                at,
                field,
                format!(
                    "timeout ({}{note}) must be less than interval ({})",
                    format_duration(t),
                    format_duration(i)
                ),
            );
        }
        let initial_delay = self.optional_duration(&fields, "initialDelay");
        let for_duration = self.optional_duration(&fields, "for");
        let fail_open_after = self.optional_duration(&fields, "failOpenAfter");

        let success_threshold = match get(&fields, "successThreshold") {
            Some(n) => self.count(n, "successThreshold", 1),
            None => Some(DEFAULT_SUCCESS_THRESHOLD),
        };
        let failure_threshold = match get(&fields, "failureThreshold") {
            Some(n) => self.count(n, "failureThreshold", 1),
            None => Some(DEFAULT_FAILURE_THRESHOLD),
        };
        let on_no_data = match get(&fields, "onNoData") {
            Some(n) => self.policy(n, "onNoData"),
            None => Some(DEFAULT_ON_NO_DATA),
        };
        let on_error = match get(&fields, "onError") {
            Some(n) => self.policy(n, "onError"),
            None => Some(DEFAULT_ON_ERROR),
        };
        let max_unavailable = match get(&fields, "maxUnavailable") {
            Some(n) => self.max_unavailable(n),
            None => Some(MaxUnavailable::default()),
        };
        let dry_run = match get(&fields, "dryRun") {
            Some(n) => self.boolean(n, "dryRun"),
            None => Some(false),
        };
        let mode = match get(&fields, "mode") {
            Some(n) => self.mode(n),
            None => Some(Mode::default()),
        };
        let peers = match get(&fields, "peers") {
            Some(n) => self.peers_settings(n),
            None => Some(PeersSettings::default()),
        };
        let scrape = match get(&fields, "scrape") {
            Some(n) => self.scrape(n),
            None => Some(ScrapeConfig::default()),
        };
        let prometheus = match get(&fields, "prometheus") {
            Some(n) => self.prometheus(n),
            None => Some(PrometheusLabels::default()),
        };
        let vars = match get(&fields, "vars") {
            Some(n) => self.vars(n),
            None => {
                self.missing(
                    key_pos(&fields, "vars", node),
                    "vars",
                    " (the named numbers `expr` uses)",
                );
                None
            }
        };
        let expr = match get(&fields, "expr") {
            Some(n) => self.expr(n, vars.as_ref()),
            None => {
                self.missing(key_pos(&fields, "expr", node), "expr", "");
                None
            }
        };

        if self.errors != errors_before {
            return None;
        }
        if let (Some(n), Some((vars, _))) = (get(&fields, "peers"), &vars) {
            self.unused_peer_settings(n.at, vars);
        }
        if let (Some(n), Some(Mode::Startup), Some((vars, _))) = (get(&fields, "mode"), mode, &vars)
        {
            self.startup_with_peers(n.at, vars);
        }
        if let (Some(vars), Some(interval), Some(on_no_data), Some(on_error), Some(fail_open)) =
            (&vars, interval, on_no_data, on_error, &fail_open_after)
        {
            self.rollout_safety(
                &fields,
                vars,
                interval,
                on_no_data,
                on_error,
                fail_open.filter(|d| !d.is_zero()),
            );
            if self.errors != errors_before {
                return None;
            }
        }
        let (vars, _) = vars?;
        let (expr_text, expr) = expr?;
        Some(Rule {
            name: name?,
            condition_type: condition_type?,
            selector: selector?,
            interval: interval?,
            timeout: timeout?,
            initial_delay: initial_delay?.unwrap_or(Duration::ZERO),
            success_threshold: success_threshold?,
            failure_threshold: failure_threshold?,
            for_duration: for_duration?.unwrap_or(Duration::ZERO),
            on_no_data: on_no_data?,
            on_error: on_error?,
            fail_open_after: fail_open_after?.filter(|d| !d.is_zero()),
            max_unavailable: max_unavailable?,
            dry_run: dry_run?,
            mode: mode?,
            scrape: scrape?,
            prometheus: prometheus?,
            peers: peers?,
            vars,
            expr_text,
            expr,
            origin: Origin {
                file: PathBuf::from(self.file),
                line: node.at.line,
            },
        })
    }

    /// Settings that let a pod in before its first data-based verdict: warnings naming the
    /// field. A `failOpenAfter` that ends before a variable's window can hold data would fail
    /// every new pod open: an error naming both.
    fn rollout_safety(
        &mut self,
        fields: &Fields<'_>,
        vars: &(Vec<Var>, Vec<Pos>),
        interval: Duration,
        on_no_data: Policy,
        on_error: Policy,
        fail_open_after: Option<Duration>,
    ) {
        let mut fails_open_early = false;
        if let (Some(limit), Some(n)) = (fail_open_after, get(fields, "failOpenAfter")) {
            let mut longest: Option<(&Var, Duration)> = None;
            for v in &vars.0 {
                let warm = warm_up(v, interval);
                if longest.is_none_or(|(_, d)| warm > d) {
                    longest = Some((v, warm));
                }
            }
            if let Some((v, warm)) = longest
                && warm >= limit
            {
                let field = join("vars", &v.name);
                fails_open_early = true;
                self.error(
                    n.at,
                    "failOpenAfter",
                    format!(
                        "failOpenAfter ({}) ends before {field} can have data: its window needs \
                         {} after ContainersReady{}, so every new pod would fail open without a \
                         data-based verdict; set failOpenAfter above {} or shorten the window",
                        format_duration(limit),
                        format_duration(warm),
                        if v.is_scrape() {
                            " (its longest range plus offset)"
                        } else {
                            " (its longest range plus one interval, for Prometheus to scrape it)"
                        },
                        format_duration(warm),
                    ),
                );
            }
        }
        if on_no_data == Policy::Pass
            && let Some(n) = get(fields, "onNoData")
        {
            self.warn(
                n.at,
                "onNoData",
                "onNoData: pass lets a pod in when a variable has no data once its window could \
                 hold some (e.g. a metric a new version no longer exposes): a rollout gate \
                 usually wants onNoData: fail, with isnan() on series a healthy pod may lack",
            );
        }
        if on_error == Policy::Pass
            && let Some(n) = get(fields, "onError")
        {
            self.warn(
                n.at,
                "onError",
                "onError: pass sets the gate True when the source fails (endpoint unreachable, \
                 Prometheus down), also on a new pod that never had a data-based verdict",
            );
        }
        if let (Some(limit), Some(n), false) = (
            fail_open_after,
            get(fields, "failOpenAfter"),
            fails_open_early,
        ) {
            self.warn(
                n.at,
                "failOpenAfter",
                format!(
                    "failOpenAfter sets the gate True on a pod with no passing verdict {} after \
                     ContainersReady: a rollout then proceeds without a data-based verdict on it",
                    format_duration(limit)
                ),
            );
        }
    }

    /// `Some(None)` when absent, `Some(Some(d))` when valid, `None` after an error.
    fn optional_duration(&mut self, fields: &Fields<'_>, key: &str) -> Option<Option<Duration>> {
        match get(fields, key) {
            Some(n) => self.duration(n, key).map(Some),
            None => Some(None),
        }
    }

    fn selector(&mut self, node: &Node) -> Option<Selector> {
        let fields = self.fields(node, "selector", SELECTOR_FIELDS)?;
        let mut ok = true;
        let mut selector = Selector::default();

        if let Some(n) = get(&fields, "namespaces") {
            match &n.kind {
                Kind::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let path = format!("selector.namespaces[{i}]");
                        match self.string(item, &path) {
                            Some(ns) => match names::dns1123_label(ns) {
                                Ok(()) => {
                                    selector.namespaces.insert(ns.to_string());
                                }
                                Err(e) => {
                                    self.error(
                                        item.at,
                                        &path,
                                        format!("invalid namespace {ns:?}: {e}"),
                                    );
                                    ok = false;
                                }
                            },
                            None => ok = false,
                        }
                    }
                }
                _ => {
                    self.type_error(n, "selector.namespaces", "a list of namespace names");
                    ok = false;
                }
            }
        }

        if let Some(n) = get(&fields, "matchLabels") {
            match &n.kind {
                Kind::Map(entries) => {
                    for (k, v) in entries {
                        let Some(key) = self.string(k, "selector.matchLabels") else {
                            ok = false;
                            continue;
                        };
                        let path = format!("selector.matchLabels.{key}");
                        if let Err(e) = names::qualified_name(key) {
                            self.error(k.at, &path, format!("invalid label key {key:?}: {e}"));
                            ok = false;
                        }
                        match &v.kind {
                            Kind::Str(value) => match names::label_value(value) {
                                Ok(()) => {
                                    selector.match_labels.insert(key.to_string(), value.clone());
                                }
                                Err(e) => {
                                    self.error(
                                        v.at,
                                        &path,
                                        format!("invalid label value {value:?}: {e}"),
                                    );
                                    ok = false;
                                }
                            },
                            _ => {
                                self.type_error(v, &path, "a label value (a string)");
                                ok = false;
                            }
                        }
                    }
                }
                _ => {
                    self.type_error(
                        n,
                        "selector.matchLabels",
                        "a mapping of label keys to values",
                    );
                    ok = false;
                }
            }
        }

        if let Some(n) = get(&fields, "matchExpressions") {
            match &n.kind {
                Kind::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        match self.requirement(item, &format!("selector.matchExpressions[{i}]")) {
                            Some(r) => selector.match_expressions.push(r),
                            None => ok = false,
                        }
                    }
                }
                _ => {
                    self.type_error(
                        n,
                        "selector.matchExpressions",
                        "a list of {key, operator, values}",
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(selector)
    }

    fn requirement(&mut self, node: &Node, path: &str) -> Option<Requirement> {
        let fields = self.fields(node, path, EXPRESSION_FIELDS)?;
        let mut ok = true;
        let key = match get(&fields, "key") {
            Some(n) => {
                self.string(n, &join(path, "key"))
                    .and_then(|k| match names::qualified_name(k) {
                        Ok(()) => Some(k.to_string()),
                        Err(e) => {
                            self.error(
                                n.at,
                                &join(path, "key"),
                                format!("invalid label key {k:?}: {e}"),
                            );
                            None
                        }
                    })
            }
            None => {
                self.missing(key_pos(&fields, "key", node), &join(path, "key"), "");
                None
            }
        };
        let operator = match get(&fields, "operator") {
            Some(n) => self.string(n, &join(path, "operator")).and_then(|s| {
                let op = Operator::parse(s);
                if op.is_none() {
                    let hint = names::did_you_mean(s, &Operator::NAMES);
                    self.error(
                        n.at,
                        &join(path, "operator"),
                        format!(
                            "unknown operator {s:?}{hint}; expected In, NotIn, Exists or DoesNotExist"
                        ),
                    );
                }
                op
            }),
            None => {
                self.missing(key_pos(&fields, "operator", node), &join(path, "operator"), "");
                None
            }
        };
        let values_path = join(path, "values");
        let values_node = get(&fields, "values");
        let mut values = BTreeSet::new();
        if let Some(n) = values_node {
            match &n.kind {
                Kind::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let p = format!("{values_path}[{i}]");
                        match &item.kind {
                            Kind::Str(v) => match names::label_value(v) {
                                Ok(()) => {
                                    values.insert(v.clone());
                                }
                                Err(e) => {
                                    self.error(
                                        item.at,
                                        &p,
                                        format!("invalid label value {v:?}: {e}"),
                                    );
                                    ok = false;
                                }
                            },
                            _ => {
                                self.type_error(item, &p, "a label value (a string)");
                                ok = false;
                            }
                        }
                    }
                }
                _ => {
                    self.type_error(n, &values_path, "a list of label values");
                    ok = false;
                }
            }
        }
        if let Some(op) = operator {
            let given =
                values_node.is_some_and(|n| !matches!(&n.kind, Kind::Seq(v) if v.is_empty()));
            if op.takes_values() && !given && ok {
                self.error(
                    values_node.map_or(node.at, |n| n.at),
                    &values_path,
                    format!("operator {op} needs a non-empty `values` list"),
                );
                ok = false;
            }
            if !op.takes_values() && given {
                self.error(
                    values_node.map_or(node.at, |n| n.at),
                    &values_path,
                    format!("operator {op} takes no `values`; remove them"),
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        Some(Requirement {
            key: key?,
            operator: operator?,
            values,
        })
    }

    fn max_unavailable(&mut self, node: &Node) -> Option<MaxUnavailable> {
        const FIELD: &str = "maxUnavailable";
        match &node.kind {
            Kind::UInt(v) => match u32::try_from(*v) {
                Ok(v) => Some(MaxUnavailable::Count(v)),
                Err(_) => {
                    self.error(
                        node.at,
                        FIELD,
                        format!("{v} is too large (max {})", u32::MAX),
                    );
                    None
                }
            },
            Kind::Int(v) => {
                self.error(node.at, FIELD, format!("must not be negative, got {v}"));
                None
            }
            Kind::Str(s) => {
                let Some(num) = s.strip_suffix('%') else {
                    let hint = if s.trim().parse::<u64>().is_ok() {
                        "; write a count without quotes (3)"
                    } else {
                        ""
                    };
                    self.error(
                        node.at,
                        FIELD,
                        format!(
                            "invalid value {s:?}: expected a pod count (3) or a percentage \
                             (\"25%\"){hint}"
                        ),
                    );
                    return None;
                };
                match num.parse::<u8>() {
                    Ok(p) if p <= 100 && num.chars().all(|c| c.is_ascii_digit()) => {
                        Some(MaxUnavailable::Percent(p))
                    }
                    _ => {
                        self.error(
                            node.at,
                            FIELD,
                            format!(
                                "invalid percentage {s:?}: expected a whole number from 0% to 100%"
                            ),
                        );
                        None
                    }
                }
            }
            _ => {
                self.type_error(node, FIELD, "a pod count (3) or a percentage (\"25%\")");
                None
            }
        }
    }

    fn scrape(&mut self, node: &Node) -> Option<ScrapeConfig> {
        let fields = self.fields(node, "scrape", SCRAPE_FIELDS)?;
        let mut ok = true;
        let mut cfg = ScrapeConfig::default();

        if let Some(n) = get(&fields, "port") {
            match &n.kind {
                Kind::UInt(p) => match u16::try_from(*p) {
                    Ok(p) if p >= 1 => cfg.port = Some(Port::Number(p)),
                    _ => {
                        self.error(
                            n.at,
                            "scrape.port",
                            format!("port {p} is out of range 1-65535"),
                        );
                        ok = false;
                    }
                },
                Kind::Int(p) => {
                    self.error(
                        n.at,
                        "scrape.port",
                        format!("port {p} is out of range 1-65535"),
                    );
                    ok = false;
                }
                Kind::Str(s) => match names::iana_svc_name(s) {
                    Ok(()) => cfg.port = Some(Port::Name(s.clone())),
                    Err(e) => {
                        let hint = if s.parse::<u16>().is_ok() {
                            "; write a port number without quotes"
                        } else {
                            ""
                        };
                        self.error(
                            n.at,
                            "scrape.port",
                            format!("invalid port name {s:?}: {e}{hint}"),
                        );
                        ok = false;
                    }
                },
                _ => {
                    self.type_error(n, "scrape.port", "a port number or a container port name");
                    ok = false;
                }
            }
        }

        if let Some(n) = get(&fields, "path") {
            match self.string(n, "scrape.path") {
                Some(p)
                    if p.starts_with('/')
                        && !p.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                {
                    cfg.path = Some(p.to_string());
                }
                Some(p) => {
                    self.error(
                        n.at,
                        "scrape.path",
                        format!("invalid path {p:?}: must start with '/' and contain no spaces"),
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }

        let mut scheme_known = true;
        if let Some(n) = get(&fields, "scheme") {
            match self.string(n, "scrape.scheme") {
                Some("http") => cfg.scheme = Scheme::Http,
                Some("https") => cfg.scheme = Scheme::Https,
                Some(s) => {
                    self.error(
                        n.at,
                        "scrape.scheme",
                        format!("unknown scheme {s:?}; expected http or https"),
                    );
                    scheme_known = false;
                }
                None => scheme_known = false,
            }
        }
        ok &= scheme_known;

        if let Some(n) = get(&fields, "caFile") {
            match self.string(n, "scrape.caFile") {
                Some("") => {
                    self.error(n.at, "scrape.caFile", "must not be empty");
                    ok = false;
                }
                Some(f) => {
                    if scheme_known && cfg.scheme != Scheme::Https {
                        self.error(n.at, "scrape.caFile", "caFile needs `scheme: https`");
                        ok = false;
                    }
                    cfg.ca_file = Some(PathBuf::from(f));
                }
                None => ok = false,
            }
        }
        if let Some(n) = get(&fields, "insecureSkipVerify") {
            match self.boolean(n, "scrape.insecureSkipVerify") {
                Some(b) => {
                    if scheme_known && cfg.scheme != Scheme::Https {
                        self.error(
                            n.at,
                            "scrape.insecureSkipVerify",
                            "insecureSkipVerify needs `scheme: https`",
                        );
                        ok = false;
                    } else if b && cfg.ca_file.is_some() {
                        self.warn(
                            n.at,
                            "scrape.insecureSkipVerify",
                            "insecureSkipVerify: true makes caFile unused: certificates are not verified",
                        );
                    }
                    cfg.insecure_skip_verify = b;
                }
                None => ok = false,
            }
        }
        ok.then_some(cfg)
    }

    fn prometheus(&mut self, node: &Node) -> Option<PrometheusLabels> {
        let fields = self.fields(node, "prometheus", PROMETHEUS_FIELDS)?;
        let mut labels = PrometheusLabels::default();
        let mut ok = true;
        for (key, slot) in [
            ("namespaceLabel", &mut labels.namespace_label),
            ("podLabel", &mut labels.pod_label),
        ] {
            let Some(n) = get(&fields, key) else { continue };
            let path = join("prometheus", key);
            match self.string(n, &path) {
                Some(s) => match names::prometheus_label_name(s) {
                    Ok(()) => *slot = s.to_string(),
                    Err(e) => {
                        self.error(n.at, &path, format!("invalid label name {s:?}: {e}"));
                        ok = false;
                    }
                },
                None => ok = false,
            }
        }
        ok.then_some(labels)
    }

    /// Returns the variables and, for each, the position of its name (for warnings).
    fn vars(&mut self, node: &Node) -> Option<(Vec<Var>, Vec<Pos>)> {
        let Kind::Map(entries) = &node.kind else {
            self.type_error(
                node,
                "vars",
                "a mapping of variable names to {scrape: ...} or {promql: ...}",
            );
            return None;
        };
        if entries.is_empty() {
            self.error(node.at, "vars", "a rule needs at least one variable");
            return None;
        }
        if entries.len() > MAX_VARS {
            self.error(
                node.at,
                "vars",
                format!(
                    "{} variables; a rule may define at most {MAX_VARS} (split it into several \
                     rules on the same gate)",
                    entries.len()
                ),
            );
            return None;
        }
        let mut ok = true;
        let mut vars = Vec::with_capacity(entries.len());
        let mut positions = Vec::with_capacity(entries.len());
        let mut peer_refs = Vec::new();
        for (k, v) in entries {
            let Some(name) = self.string(k, "vars") else {
                ok = false;
                continue;
            };
            let path = join("vars", name);
            if !names::is_identifier(name) {
                self.error(
                    k.at,
                    &path,
                    format!(
                        "invalid variable name {name:?}: use letters, digits and '_', not \
                         starting with a digit"
                    ),
                );
                ok = false;
                continue;
            }
            if crate::expr::RESERVED_NAMES.contains(&name) {
                self.error(
                    k.at,
                    &path,
                    format!("{name:?} is reserved by the expression language; choose another name"),
                );
                ok = false;
                continue;
            }
            let errors_before = self.errors;
            let Some(fields) = self.fields(v, &path, VAR_FIELDS) else {
                ok = false;
                continue;
            };
            let had_unknown = self.errors != errors_before;
            let scrape = get(&fields, "scrape");
            let promql = get(&fields, "promql");
            if let Some(p) = get(&fields, "peers") {
                match self.peers_var(p, &path, scrape.or(promql)) {
                    Some((spec, at)) => {
                        peer_refs.push(peers::PeerRef {
                            name: name.to_string(),
                            at,
                        });
                        vars.push(Var {
                            name: name.to_string(),
                            text: spec.text(),
                            source: VarSource::Peers(spec),
                        });
                        positions.push(k.at);
                    }
                    None => ok = false,
                }
                continue;
            }
            let source = match (scrape, promql) {
                (Some(_), Some(p)) => {
                    self.error(
                        p.at,
                        &path,
                        "a variable has exactly one source: `scrape` or `promql`, not both",
                    );
                    None
                }
                (None, None) => {
                    // An unknown key (likely a misspelt source) was reported already.
                    if !had_unknown {
                        self.error(
                            v.at,
                            &path,
                            "a variable needs a source: {scrape: '...'}, {promql: '...'} or \
                             {peers: {var: ..., aggregate: ...}}",
                        );
                    }
                    None
                }
                (Some(q), None) => {
                    let qpath = join(&path, "scrape");
                    self.string(q, &qpath)
                        .and_then(|text| match query::parse(text) {
                            Ok(compiled) => Some((text.to_string(), VarSource::Scrape(compiled))),
                            Err(e) => {
                                self.error_in_text(q, &qpath, Some(e.column), "query", &e.message);
                                None
                            }
                        })
                }
                (None, Some(q)) => {
                    let qpath = join(&path, "promql");
                    self.string(q, &qpath)
                        .and_then(|text| match Template::parse(text) {
                            Ok(compiled) => Some((text.to_string(), VarSource::Promql(compiled))),
                            Err(e) => {
                                self.error_in_text(q, &qpath, Some(e.column), "query", &e.message);
                                None
                            }
                        })
                }
            };
            match source {
                Some((text, source)) => {
                    vars.push(Var {
                        name: name.to_string(),
                        text,
                        source,
                    });
                    positions.push(k.at);
                }
                None => ok = false,
            }
        }
        // A reference can only be checked against a complete list of variables.
        if ok {
            ok = self.check_peer_refs(&vars, &peer_refs);
        }
        ok.then_some((vars, positions))
    }

    fn expr(&mut self, node: &Node, vars: Option<&(Vec<Var>, Vec<Pos>)>) -> Option<(String, Expr)> {
        let text = self.string(node, "expr")?;
        let expr = match Expr::compile(text) {
            Ok(e) => e,
            Err(e) => {
                self.error_in_text(node, "expr", e.column, "expression", &e.message);
                return None;
            }
        };
        // Cross-checks need the full variable list; without it they would only add noise.
        if let Some((vars, positions)) = vars {
            let defined: BTreeMap<&str, Pos> = vars
                .iter()
                .map(|v| v.name.as_str())
                .zip(positions.iter().copied())
                .collect();
            let mut used: BTreeSet<String> = expr.variables().into_iter().collect();
            // The variables a used `peers:` variable aggregates are used as well.
            let aggregated: Vec<String> = vars
                .iter()
                .filter(|v| used.contains(&v.name))
                .filter_map(|v| v.peers().map(|p| p.var.clone()))
                .collect();
            used.extend(aggregated);
            let defined_names: Vec<&str> = defined.keys().copied().collect();
            let mut undefined = false;
            for name in &used {
                if defined.contains_key(name.as_str()) {
                    continue;
                }
                undefined = true;
                let pos = find_word(text, name)
                    .and_then(|i| self.pos_in(node, i))
                    .unwrap_or(node.at);
                let hint = names::did_you_mean(name, &defined_names);
                self.error(
                    pos,
                    "expr",
                    format!(
                        "variable {name:?} is not defined in vars{hint} (defined: {})",
                        defined_names.join(", ")
                    ),
                );
            }
            for (name, pos) in &defined {
                if !used.contains(*name) {
                    self.warn(
                        *pos,
                        &join("vars", name),
                        format!("variable {name:?} is defined but expr does not use it"),
                    );
                }
            }
            if undefined {
                return None;
            }
        }
        Some((text.to_string(), expr))
    }
}

/// Character index of the first whole-word occurrence of `word` in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let chars: Vec<char> = text.chars().collect();
    let w: Vec<char> = word.chars().collect();
    if w.is_empty() || w.len() > chars.len() {
        return None;
    }
    (0..=chars.len() - w.len()).find(|&i| {
        chars[i..i + w.len()] == w[..]
            && (i == 0 || !is_word(chars[i - 1]))
            && chars.get(i + w.len()).is_none_or(|c| !is_word(*c))
    })
}

/// How long after ContainersReady a variable's data can first exist: a scrape window fills
/// one range after the first scrape; Prometheus needs the range plus one interval.
fn warm_up(var: &Var, interval: Duration) -> Duration {
    let ms = |v: i64| Duration::from_millis(u64::try_from(v).unwrap_or(0));
    match &var.source {
        VarSource::Scrape(q) => ms(q.range_ms()),
        VarSource::Promql(t) => ms(t.longest_range_ms()).saturating_add(interval),
        // Its peers' values exist once the variable it aggregates has data on them.
        VarSource::Peers(_) => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::find_word;

    #[test]
    fn finds_whole_words_only() {
        assert_eq!(find_word("errors2 + errors", "errors"), Some(10));
        assert_eq!(find_word("x_errors", "errors"), None);
        assert_eq!(find_word("a", "abc"), None);
        assert_eq!(find_word("é + abc", "abc"), Some(4));
    }
}
