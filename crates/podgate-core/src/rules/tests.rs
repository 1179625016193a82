//! Loading and validation tests: each check, with the position, rule and field it reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::testing::{BASE, render, rule_file, with};
use super::*;

fn diagnostics(src: &str) -> Vec<Diagnostic> {
    match load_str("t.yaml", src) {
        Ok(set) => set.warnings,
        Err(e) => e.diagnostics,
    }
}

fn errors(src: &str) -> Vec<Diagnostic> {
    diagnostics(src)
        .into_iter()
        .filter(|d| d.is_error())
        .collect()
}

/// The single error `src` produces.
fn one_error(src: &str) -> Diagnostic {
    let errs = errors(src);
    assert_eq!(
        errs.len(),
        1,
        "expected exactly one error, got:\n{}",
        render(&errs)
    );
    errs.into_iter().next().unwrap_or_else(|| unreachable!())
}

fn load_ok(src: &str) -> RuleSet {
    match load_str("t.yaml", src) {
        Ok(set) => set,
        Err(e) => panic!("expected to load, got:\n{}", render(&e.diagnostics)),
    }
}

fn only_rule(src: &str) -> Arc<Rule> {
    let set = load_ok(src);
    assert_eq!(set.rules.len(), 1);
    set.rules[0].clone()
}

/// Asserts position, rule, field and a message fragment.
#[track_caller]
fn assert_diag(d: &Diagnostic, line: usize, column: usize, field: Option<&str>, fragment: &str) {
    assert_eq!(
        (d.line, d.column, d.field.as_deref()),
        (line, column, field),
        "position/field of: {d}"
    );
    assert!(
        d.message.contains(fragment),
        "message {:?} lacks {fragment:?}",
        d.message
    );
}

/// Line and column where `needle` starts in `src`; it must occur exactly once.
#[track_caller]
fn start(src: &str, needle: &str) -> (usize, usize) {
    assert_eq!(
        src.matches(needle).count(),
        1,
        "{needle:?} must occur once in:\n{src}"
    );
    let offset = src.find(needle).unwrap_or_else(|| unreachable!());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Line and column just after `needle` (where the value after `key: ` starts).
#[track_caller]
fn after(src: &str, needle: &str) -> (usize, usize) {
    let (line, column) = start(src, needle);
    (line, column + needle.chars().count())
}

#[track_caller]
fn assert_at(d: &Diagnostic, at: (usize, usize), field: Option<&str>, fragment: &str) {
    assert_diag(d, at.0, at.1, field, fragment);
}

/// The single error of `with(extra)`, asserted to be at `after(extra-in-src, needle)`.
#[track_caller]
fn check_after(extra: &str, needle: &str, field: &str, fragment: &str) {
    let src = with(extra);
    assert_at(&one_error(&src), after(&src, needle), Some(field), fragment);
}

// ---------------------------------------------------------------- defaults and model

#[test]
fn defaults_follow_kubelet_probes() {
    let r = only_rule(BASE);
    assert_eq!(r.name, "r1");
    assert_eq!(r.condition_type, "example.com/gate");
    assert_eq!(r.interval, Duration::from_secs(10));
    assert_eq!(r.timeout, Duration::from_secs(1));
    assert_eq!(r.initial_delay, Duration::ZERO);
    assert_eq!(r.success_threshold, 1);
    assert_eq!(r.failure_threshold, 3);
    assert_eq!(r.for_duration, Duration::ZERO);
    assert_eq!(r.on_no_data, Policy::Fail);
    assert_eq!(r.on_error, Policy::Keep);
    assert_eq!(r.fail_open_after, None);
    assert_eq!(r.max_unavailable, MaxUnavailable::Percent(100));
    assert!(!r.dry_run);
    assert_eq!(r.scrape, ScrapeConfig::default());
    assert_eq!(r.scrape.port, None);
    assert_eq!(r.scrape.path, None);
    assert_eq!(r.scrape.scheme, Scheme::Http);
    assert_eq!(r.prometheus.namespace_label, "namespace");
    assert_eq!(r.prometheus.pod_label, "pod");
    assert_eq!(r.selector, Selector::default());
    assert_eq!(r.origin.file, PathBuf::from("t.yaml"));
    assert_eq!(r.origin.line, 2);
}

const FULL: &str = r#"rules:
  - name: checkout-errors
    conditionType: example.com/metrics-healthy
    selector:
      namespaces: [shop]
      matchLabels: {app: checkout}
      matchExpressions:
        - {key: track, operator: NotIn, values: [canary]}
    interval: 10s
    timeout: 2s
    initialDelay: 5s
    successThreshold: 2
    failureThreshold: 4
    for: 1m30s
    onNoData: keep
    onError: fail
    failOpenAfter: 10m
    maxUnavailable: 25%
    dryRun: true
    scrape:
      port: metrics
      path: /metrics
      scheme: https
      caFile: /etc/ca.pem
    prometheus: {namespaceLabel: kube_namespace, podLabel: kube_pod}
    vars:
      errors:   {scrape: 'rate(http_requests_total{code=~"5.."}[1m])'}
      requests: {scrape: 'rate(http_requests_total[1m])'}
      p99:      {promql: 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{namespace}}",pod="{{pod}}"}[2m])))'}
      queue:    {promql: 'max by (namespace, pod) (work_queue_depth)'}
    expr: 'requests == 0 || errors / requests < 0.01 && p99 < 0.25 && queue < 100'
"#;

#[test]
fn full_example_loads_every_field() {
    let r = only_rule(FULL);
    assert_eq!(r.selector.namespaces.iter().collect::<Vec<_>>(), ["shop"]);
    assert_eq!(
        r.selector.match_labels.get("app").map(String::as_str),
        Some("checkout")
    );
    assert_eq!(r.selector.match_expressions.len(), 1);
    assert_eq!(r.selector.match_expressions[0].operator, Operator::NotIn);
    assert_eq!(r.interval, Duration::from_secs(10));
    assert_eq!(r.timeout, Duration::from_secs(2));
    assert_eq!(r.initial_delay, Duration::from_secs(5));
    assert_eq!((r.success_threshold, r.failure_threshold), (2, 4));
    assert_eq!(r.for_duration, Duration::from_secs(90));
    assert_eq!((r.on_no_data, r.on_error), (Policy::Keep, Policy::Fail));
    assert_eq!(r.fail_open_after, Some(Duration::from_secs(600)));
    assert_eq!(r.max_unavailable, MaxUnavailable::Percent(25));
    assert!(r.dry_run);
    assert_eq!(r.scrape.port, Some(Port::Name("metrics".to_string())));
    assert_eq!(r.scrape.path.as_deref(), Some("/metrics"));
    assert_eq!(r.scrape.scheme, Scheme::Https);
    assert_eq!(r.scrape.ca_file, Some(PathBuf::from("/etc/ca.pem")));
    assert_eq!(r.prometheus.namespace_label, "kube_namespace");
    assert_eq!(r.prometheus.pod_label, "kube_pod");
    let names: Vec<&str> = r.vars.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        ["errors", "requests", "p99", "queue"],
        "declaration order"
    );
    assert!(r.vars[0].is_scrape() && !r.vars[2].is_scrape());
    assert_eq!(r.vars[1].text, "rate(http_requests_total[1m])");
    assert!(r.expr_text.starts_with("requests == 0"));
}

#[test]
fn fail_open_zero_is_off_and_numeric_zero_durations_are_accepted() {
    let r = only_rule(&with("failOpenAfter: 0s\nfor: 0\ninitialDelay: 0"));
    assert_eq!(r.fail_open_after, None);
    assert_eq!(r.for_duration, Duration::ZERO);
}

#[test]
fn null_fields_take_their_defaults() {
    let r = only_rule(&with("interval:\ntimeout: ~\nselector:"));
    assert_eq!(r.interval, DEFAULT_INTERVAL);
    assert_eq!(r.timeout, DEFAULT_TIMEOUT);
}

#[test]
fn same_definition_ignores_origin_only() {
    let a = only_rule(FULL);
    let moved = format!("\n\n# moved down\n{FULL}");
    let b = match load_str("other.yaml", &moved) {
        Ok(set) => set.rules[0].clone(),
        Err(e) => panic!("{}", render(&e.diagnostics)),
    };
    assert_ne!(a.origin, b.origin);
    assert!(a.same_definition(&b));

    for (from, to) in [
        ("interval: 10s", "interval: 20s"),
        (
            "rate(http_requests_total[1m])",
            "rate(http_requests_total[2m])",
        ),
        ("< 0.01", "< 0.02"),
        ("namespaces: [shop]", "namespaces: [shop, pay]"),
        ("maxUnavailable: 25%", "maxUnavailable: 2"),
        ("dryRun: true", "dryRun: false"),
        ("podLabel: kube_pod", "podLabel: pod"),
    ] {
        let changed = FULL.replace(from, to);
        assert_ne!(changed, FULL, "{from} not found");
        let c = only_rule(&changed);
        assert!(
            !a.same_definition(&c),
            "changing {from:?} must count as a change"
        );
    }
}

// ---------------------------------------------------------------- file structure

#[test]
fn empty_rules_list_is_fine() {
    let set = load_ok("rules: []\n");
    assert!(set.is_empty());
}

#[test]
fn empty_file_is_an_error() {
    let d = one_error("");
    assert_diag(&d, 1, 1, None, "empty");
    assert!(d.message.contains("rules: []"));
    let d = one_error("# only a comment\n");
    assert!(d.message.contains("empty"));
}

#[test]
fn missing_or_null_rules_is_an_error() {
    assert_diag(
        &one_error("rules:\n"),
        1,
        1,
        Some("rules"),
        "`rules:` holds no list",
    );
    let errs = errors("rule: []\n");
    assert_eq!(errs.len(), 2, "{}", render(&errs));
    assert_diag(&errs[0], 1, 1, Some("rule"), "did you mean \"rules\"");
    assert_diag(&errs[1], 1, 1, Some("rules"), "missing `rules:`");
}

#[test]
fn rules_must_be_a_list_of_mappings() {
    assert_diag(
        &one_error("rules: {a: 1}\n"),
        1,
        8,
        Some("rules"),
        "expected a list",
    );
    assert_diag(&one_error("- a\n"), 1, 1, None, "expected a mapping");
    let d = one_error("rules:\n  - just a string\n");
    assert_diag(&d, 2, 5, Some("rules[0]"), "expected a rule");
}

#[test]
fn yaml_syntax_error_has_position() {
    let d = one_error("rules:\n  - name: [a\n");
    assert_eq!(d.line, 2);
    assert!(d.message.starts_with("invalid YAML"), "{}", d.message);
    let d = one_error("rules: []\nrules: []\n");
    assert!(d.message.contains("duplicate"), "{}", d.message);
    assert_eq!(d.line, 2);
}

#[test]
fn several_documents_are_an_error() {
    let d = one_error("rules: []\n---\nrules: []\n");
    assert!(d.message.contains("invalid YAML"));
}

#[test]
fn every_error_is_collected_and_sorted() {
    let src = with("interval: 10\nfailureTreshold: 3\nonNoData: maybe\ndryRun: yes");
    let errs = errors(&src);
    assert_eq!(errs.len(), 4, "{}", render(&errs));
    let lines: Vec<usize> = errs.iter().map(|d| d.line).collect();
    assert_eq!(lines, [7, 8, 9, 10]);
    assert!(errs.iter().all(|d| d.rule.as_deref() == Some("r1")));
}

#[test]
fn display_format_names_file_position_rule_and_field() {
    let d = one_error(&with("interval: 10"));
    assert_eq!(
        d.to_string(),
        "t.yaml:7:15: error: rule \"r1\": field interval: duration \"10\" has no unit; add \
         one, e.g. 10s (units: ns, us, ms, s, m, h)"
    );
}

// ---------------------------------------------------------------- unknown fields

#[test]
fn misspelled_field_is_an_error_with_suggestion() {
    let d = one_error(&with("failureTreshold: 3"));
    assert_diag(
        &d,
        7,
        5,
        Some("failureTreshold"),
        "did you mean \"failureThreshold\"?",
    );
    assert_eq!(d.rule.as_deref(), Some("r1"));
}

#[test]
fn unknown_field_without_close_match_lists_known_fields() {
    let d = one_error(&with("colour: blue"));
    assert_diag(&d, 7, 5, Some("colour"), "unknown field \"colour\"");
    assert!(d.message.contains("conditionType"));
}

#[test]
fn unknown_nested_fields() {
    let d = one_error(&with("selector:\n  matchLabel: {a: b}"));
    assert_diag(
        &d,
        8,
        7,
        Some("selector.matchLabel"),
        "did you mean \"matchLabels\"",
    );
    let d = one_error(&with("scrape:\n  prot: 80"));
    assert_diag(&d, 8, 7, Some("scrape.prot"), "did you mean \"port\"");
    let d = one_error(&with("prometheus: {podLabels: p}"));
    assert_diag(
        &d,
        7,
        18,
        Some("prometheus.podLabels"),
        "did you mean \"podLabel\"",
    );
    let src = with("selector:\n  matchExpressions:\n    - {key: a, operater: Exists}");
    assert_at(
        &one_error(&src),
        start(&src, "operater"),
        Some("selector.matchExpressions[0].operater"),
        "did you mean \"operator\"",
    );
}

#[test]
fn unknown_top_level_field() {
    let d = one_error(&format!("{BASE}version: 2\n"));
    assert_diag(&d, 7, 1, Some("version"), "unknown field");
    assert_eq!(d.rule, None);
}

// ---------------------------------------------------------------- names

#[test]
fn rule_name_syntax() {
    let d = one_error(&BASE.replace("name: r1", "name: Checkout_Errors"));
    assert_diag(&d, 2, 11, Some("name"), "invalid rule name");
    assert_eq!(d.rule.as_deref(), Some("Checkout_Errors"));
    let long = "a".repeat(64);
    let d = one_error(&BASE.replace("name: r1", &format!("name: {long}")));
    assert!(d.message.contains("63"));
    let d = one_error(&BASE.replace("name: r1", "name: -r1"));
    assert!(d.message.contains("'-'"));
    let d = one_error(&BASE.replace("name: r1", "name: 42"));
    assert_diag(&d, 2, 11, Some("rules[0].name"), "expected a string");
}

#[test]
fn missing_name_reports_by_index() {
    let d = one_error(&BASE.replace("  - name: r1\n    conditionType", "  - conditionType"));
    assert_diag(
        &d,
        2,
        5,
        Some("rules[0].name"),
        "missing required field `name`",
    );
    assert_eq!(d.rule, None);
}

#[test]
fn duplicate_names_in_one_file_name_both_places() {
    let src = format!("{BASE}{}", &BASE["rules:\n".len()..]);
    let d = one_error(&src);
    assert_diag(&d, 7, 11, Some("name"), "already defined at t.yaml:2:11");
    assert_eq!(d.rule.as_deref(), Some("r1"));
}

#[test]
fn condition_type_syntax() {
    let d = one_error(&BASE.replace("example.com/gate", "Example.com/gate"));
    assert_diag(&d, 3, 20, Some("conditionType"), "invalid condition type");
    let d = one_error(&BASE.replace("example.com/gate", "example.com/"));
    assert_diag(&d, 3, 20, Some("conditionType"), "must not be empty");
    let d = one_error(&BASE.replace("example.com/gate", "a/b/c"));
    assert!(d.message.contains("at most one '/'"));
    let d = one_error(&BASE.replace("example.com/gate", "Ready"));
    assert_diag(&d, 3, 20, Some("conditionType"), "built-in");
    let d = one_error(&BASE.replace("    conditionType: example.com/gate\n", ""));
    assert_diag(&d, 2, 5, Some("conditionType"), "missing required field");
    // Without a prefix is valid label-key syntax.
    let r = only_rule(&BASE.replace("example.com/gate", "metrics-healthy"));
    assert_eq!(r.condition_type, "metrics-healthy");
}

// ---------------------------------------------------------------- durations and numbers

#[test]
fn bad_durations() {
    assert_diag(
        &one_error(&with("interval: 10")),
        7,
        15,
        Some("interval"),
        "add one, e.g. 10s",
    );
    assert_diag(
        &one_error(&with("interval: 1.5")),
        7,
        15,
        Some("interval"),
        "no unit",
    );
    assert_diag(&one_error(&with("for: 1d")), 7, 10, Some("for"), "24h");
    assert_diag(
        &one_error(&with("initialDelay: -5s")),
        7,
        19,
        Some("initialDelay"),
        "negative",
    );
    assert_diag(
        &one_error(&with("failOpenAfter: soon")),
        7,
        20,
        Some("failOpenAfter"),
        "invalid duration",
    );
    assert_diag(
        &one_error(&with("timeout: [1s]")),
        7,
        14,
        Some("timeout"),
        "expected a duration",
    );
    assert_diag(
        &one_error(&with("interval: true")),
        7,
        15,
        Some("interval"),
        "found a boolean",
    );
}

#[test]
fn interval_at_least_one_second() {
    assert_diag(
        &one_error(&with("interval: 500ms\ntimeout: 100ms")),
        7,
        15,
        Some("interval"),
        "at least 1s",
    );
    let r = only_rule(&with("interval: 1s\ntimeout: 500ms"));
    assert_eq!(r.interval, Duration::from_secs(1));
}

#[test]
fn timeout_below_interval() {
    let d = one_error(&with("interval: 5s\ntimeout: 5s"));
    assert_diag(
        &d,
        8,
        14,
        Some("timeout"),
        "timeout (5s) must be less than interval (5s)",
    );
    let d = one_error(&with("timeout: 30s"));
    assert_diag(&d, 7, 14, Some("timeout"), "less than interval (10s)");
    // The default timeout (1s) against a 1s interval points at the interval.
    let d = one_error(&with("interval: 1s"));
    assert_diag(&d, 7, 15, Some("interval"), "the default");
    assert_diag(
        &one_error(&with("timeout: 0s")),
        7,
        14,
        Some("timeout"),
        "greater than 0s",
    );
}

#[test]
fn thresholds_are_positive_integers() {
    assert_diag(
        &one_error(&with("successThreshold: 0")),
        7,
        23,
        Some("successThreshold"),
        "at least 1, got 0",
    );
    assert_diag(
        &one_error(&with("failureThreshold: -2")),
        7,
        23,
        Some("failureThreshold"),
        "at least 1, got -2",
    );
    assert_diag(
        &one_error(&with("failureThreshold: 1.5")),
        7,
        23,
        Some("failureThreshold"),
        "whole number, found 1.5",
    );
    assert_diag(
        &one_error(&with("failureThreshold: '3'")),
        7,
        23,
        Some("failureThreshold"),
        "remove the quotes",
    );
    assert_diag(
        &one_error(&with("failureThreshold: 5000000000")),
        7,
        23,
        Some("failureThreshold"),
        "too large",
    );
    assert_diag(
        &one_error(&with("failureThreshold: 99999999999999999999999")),
        7,
        23,
        Some("failureThreshold"),
        "whole number",
    );
    assert_diag(
        &one_error(&with("failureThreshold: many")),
        7,
        23,
        Some("failureThreshold"),
        "expected a whole number",
    );
}

#[test]
fn policies() {
    let d = one_error(&with("onNoData: Fail"));
    assert_diag(&d, 7, 15, Some("onNoData"), "did you mean \"fail\"");
    let d = one_error(&with("onError: ignore"));
    assert_diag(&d, 7, 14, Some("onError"), "expected pass, fail or keep");
    let r = only_rule(&with("onNoData: pass\nonError: fail"));
    assert_eq!((r.on_no_data, r.on_error), (Policy::Pass, Policy::Fail));
}

#[test]
fn dry_run_is_a_strict_boolean() {
    let d = one_error(&with("dryRun: yes"));
    assert_diag(
        &d,
        7,
        13,
        Some("dryRun"),
        "expected true or false, found a string (\"yes\")",
    );
    assert!(only_rule(&with("dryRun: true")).dry_run);
}

#[test]
fn max_unavailable_forms() {
    assert_eq!(
        only_rule(&with("maxUnavailable: 3")).max_unavailable,
        MaxUnavailable::Count(3)
    );
    assert_eq!(
        only_rule(&with("maxUnavailable: 0")).max_unavailable,
        MaxUnavailable::Count(0)
    );
    assert_eq!(
        only_rule(&with("maxUnavailable: '0%'")).max_unavailable,
        MaxUnavailable::Percent(0)
    );
    assert_eq!(
        only_rule(&with("maxUnavailable: \"100%\"")).max_unavailable,
        MaxUnavailable::Percent(100)
    );
    assert_diag(
        &one_error(&with("maxUnavailable: 101%")),
        7,
        21,
        Some("maxUnavailable"),
        "0% to 100%",
    );
    assert_diag(
        &one_error(&with("maxUnavailable: 12.5%")),
        7,
        21,
        Some("maxUnavailable"),
        "whole number",
    );
    assert_diag(
        &one_error(&with("maxUnavailable: -1%")),
        7,
        21,
        Some("maxUnavailable"),
        "0% to 100%",
    );
    assert_diag(
        &one_error(&with("maxUnavailable: -1")),
        7,
        21,
        Some("maxUnavailable"),
        "negative",
    );
    assert_diag(
        &one_error(&with("maxUnavailable: '3'")),
        7,
        21,
        Some("maxUnavailable"),
        "without quotes",
    );
    assert_diag(
        &one_error(&with("maxUnavailable: 1.5")),
        7,
        21,
        Some("maxUnavailable"),
        "expected a pod count",
    );
    assert_diag(
        &one_error(&with("maxUnavailable: half")),
        7,
        21,
        Some("maxUnavailable"),
        "expected a pod count",
    );
}

// ---------------------------------------------------------------- selector

#[test]
fn selector_values_are_checked() {
    check_after(
        "selector: {namespaces: [shop, Bad_NS]}",
        "shop, ",
        "selector.namespaces[1]",
        "invalid namespace",
    );
    check_after(
        "selector: {namespaces: [7]}",
        "[",
        "selector.namespaces[0]",
        "expected a string",
    );
    check_after(
        "selector: {namespaces: shop}",
        "namespaces: ",
        "selector.namespaces",
        "expected a list",
    );
    check_after(
        "selector:\n  matchLabels: {'bad key': x}",
        "matchLabels: {",
        "selector.matchLabels.bad key",
        "invalid label key",
    );
    check_after(
        "selector:\n  matchLabels: {app: -x}",
        "app: ",
        "selector.matchLabels.app",
        "invalid label value",
    );
    check_after(
        "selector:\n  matchLabels: {version: 1.10}",
        "version: ",
        "selector.matchLabels.version",
        "quote it: \"1.10\"",
    );
    check_after(
        "selector:\n  matchLabels: [a]",
        "matchLabels: ",
        "selector.matchLabels",
        "expected a mapping",
    );
    check_after(
        "selector: [a]",
        "selector: ",
        "selector",
        "expected a mapping",
    );
    let r = only_rule(&with(
        "selector:\n  namespaces: []\n  matchLabels: {empty: ''}",
    ));
    assert!(r.selector.namespaces.is_empty());
    assert_eq!(
        r.selector.match_labels.get("empty").map(String::as_str),
        Some("")
    );
}

#[test]
fn match_expressions_operators_and_values() {
    let r = only_rule(&with(
        "selector:\n  matchExpressions:\n    - {key: env, operator: In, values: [prod, prod, dev]}\n    - {key: canary, operator: DoesNotExist}\n    - {key: x, operator: Exists, values: []}",
    ));
    let exprs = &r.selector.match_expressions;
    assert_eq!(exprs.len(), 3);
    assert_eq!(exprs[0].values.len(), 2, "values are a set");

    let pre = "selector:\n  matchExpressions:\n    - ";
    let field = |f: &str| format!("selector.matchExpressions[0].{f}");
    let cases = [
        (
            "{key: env, operator: In}",
            "        - ",
            "values",
            "needs a non-empty",
        ),
        (
            "{key: env, operator: NotIn, values: []}",
            "values: ",
            "values",
            "needs a non-empty",
        ),
        (
            "{key: env, operator: Exists, values: [a]}",
            "values: ",
            "values",
            "takes no `values`",
        ),
        (
            "{key: env, operator: in, values: [a]}",
            "operator: ",
            "operator",
            "did you mean \"In\"",
        ),
        (
            "{operator: Exists}",
            "        - ",
            "key",
            "missing required field `key`",
        ),
        (
            "{key: env}",
            "        - ",
            "operator",
            "missing required field `operator`",
        ),
        (
            "{key: env, operator: In, values: [ok, 'no way']}",
            "ok, ",
            "values[1]",
            "invalid label value",
        ),
        (
            "{key: env, operator: In, values: [1]}",
            "values: [",
            "values[0]",
            "quote it",
        ),
        (
            "{key: 'bad key', operator: Exists}",
            "key: ",
            "key",
            "invalid label key",
        ),
        (
            "{key: env, operator: In, values: x}",
            "values: ",
            "values",
            "expected a list",
        ),
    ];
    for (entry, needle, f, fragment) in cases {
        check_after(&format!("{pre}{entry}"), needle, &field(f), fragment);
    }
    let src = with("selector: {matchExpressions: {key: a}}");
    let d = one_error(&src);
    assert_at(
        &d,
        after(&src, "matchExpressions: "),
        Some("selector.matchExpressions"),
        "expected a list",
    );
}

// ---------------------------------------------------------------- scrape and prometheus

#[test]
fn scrape_port_number_or_name() {
    assert_eq!(
        only_rule(&with("scrape: {port: 8080}")).scrape.port,
        Some(Port::Number(8080))
    );
    assert_eq!(
        only_rule(&with("scrape: {port: http-metrics}")).scrape.port,
        Some(Port::Name("http-metrics".to_string()))
    );
    for (value, fragment) in [
        ("0", "out of range"),
        ("70000", "out of range"),
        ("-1", "out of range"),
        ("'8080'", "without quotes"),
        ("Metrics", "invalid port name"),
        ("a-very-long-port-name", "15"),
        ("[80]", "expected a port number"),
    ] {
        check_after(
            &format!("scrape: {{port: {value}}}"),
            "port: ",
            "scrape.port",
            fragment,
        );
    }
}

#[test]
fn scrape_path_scheme_and_tls() {
    check_after(
        "scrape: {path: metrics}",
        "path: ",
        "scrape.path",
        "must start with '/'",
    );
    check_after(
        "scrape: {path: '/a b'}",
        "path: ",
        "scrape.path",
        "no spaces",
    );
    check_after(
        "scrape: {scheme: ftp}",
        "scheme: ",
        "scrape.scheme",
        "http or https",
    );
    check_after(
        "scrape: {caFile: /ca.pem}",
        "caFile: ",
        "scrape.caFile",
        "scheme: https",
    );
    check_after(
        "scrape: {insecureSkipVerify: true}",
        "Verify: ",
        "scrape.insecureSkipVerify",
        "scheme: https",
    );
    check_after(
        "scrape: {scheme: https, caFile: ''}",
        "caFile: ",
        "scrape.caFile",
        "empty",
    );
    // A bad scheme does not also make caFile an error.
    check_after(
        "scrape: {scheme: HTTPS, caFile: /a}",
        "scheme: ",
        "scrape.scheme",
        "http or https",
    );
    let r = only_rule(&with(
        "scrape: {scheme: https, insecureSkipVerify: true, path: '/m?x=1'}",
    ));
    assert!(r.scrape.insecure_skip_verify);
    assert_eq!(r.scrape.path.as_deref(), Some("/m?x=1"));

    // Both: valid, with a warning that caFile is unused.
    let src = with("scrape: {scheme: https, caFile: /ca.pem, insecureSkipVerify: true}");
    let set = load_ok(&src);
    let w: Vec<&Diagnostic> = set
        .warnings
        .iter()
        .filter(|d| d.field.as_deref() == Some("scrape.insecureSkipVerify"))
        .collect();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].severity, Severity::Warning);
    assert_eq!((w[0].line, w[0].column), after(&src, "Verify: "));
}

#[test]
fn prometheus_label_names() {
    check_after(
        "prometheus: {podLabel: 'pod-name'}",
        "podLabel: ",
        "prometheus.podLabel",
        "invalid label name",
    );
    check_after(
        "prometheus: {namespaceLabel: __ns}",
        "namespaceLabel: ",
        "prometheus.namespaceLabel",
        "reserved",
    );
    check_after(
        "prometheus: [pod]",
        "prometheus: ",
        "prometheus",
        "expected a mapping",
    );
}

// ---------------------------------------------------------------- vars and expr

#[test]
fn var_names_are_identifiers_and_not_reserved() {
    let d = one_error(&BASE.replace("      x: {", "      1x: {"));
    assert_diag(&d, 5, 7, Some("vars.1x"), "invalid variable name");
    let d = one_error(&BASE.replace("      x: {", "      error-rate: {"));
    assert_diag(&d, 5, 7, Some("vars.error-rate"), "invalid variable name");
    for reserved in ["'true'", "\"false\"", "isnan", "max", "if"] {
        let d = one_error(&BASE.replace("      x: {", &format!("      {reserved}: {{")));
        let bare = reserved.trim_matches(['\'', '"']);
        assert_diag(&d, 5, 7, Some(&format!("vars.{bare}")), "reserved");
    }
    // Unquoted, YAML reads `true` as a boolean key.
    let d = one_error(&BASE.replace("      x: {", "      true: {"));
    assert_diag(&d, 5, 7, Some("vars"), "expected a string");
}

#[test]
fn var_has_exactly_one_source() {
    let src = BASE.replace("{scrape: 'up'}", "{scrape: 'up', promql: 'up'}");
    assert_at(
        &one_error(&src),
        after(&src, "promql: "),
        Some("vars.x"),
        "not both",
    );
    let src = BASE.replace("{scrape: 'up'}", "{}");
    assert_at(
        &one_error(&src),
        after(&src, "x: "),
        Some("vars.x"),
        "needs a source",
    );
    let src = BASE.replace("{scrape: 'up'}", "'up'");
    assert_at(
        &one_error(&src),
        after(&src, "x: "),
        Some("vars.x"),
        "expected a mapping",
    );
    let src = BASE.replace("{scrape: 'up'}", "{scrape: 42}");
    assert_at(
        &one_error(&src),
        after(&src, "scrape: "),
        Some("vars.x.scrape"),
        "expected a string",
    );
    let src = BASE.replace("{scrape: 'up'}", "{scrap: 'up'}");
    assert_at(
        &one_error(&src),
        start(&src, "scrap:"),
        Some("vars.x.scrap"),
        "did you mean \"scrape\"",
    );
    let src = BASE.replace("vars:\n      x: {scrape: 'up'}", "vars: [x]");
    assert_at(
        &one_error(&src),
        after(&src, "vars: "),
        Some("vars"),
        "expected a mapping",
    );
}

#[test]
fn vars_and_expr_are_required() {
    let d = one_error(&BASE.replace("    vars:\n      x: {scrape: 'up'}\n", ""));
    assert_diag(&d, 2, 5, Some("vars"), "missing required field `vars`");
    let d = one_error(&BASE.replace("      x: {scrape: 'up'}\n", "      {}\n"));
    assert_eq!(d.field.as_deref(), Some("vars"));
    assert!(d.message.contains("at least one variable"), "{}", d.message);
    let d = one_error(&BASE.replace("    expr: 'x > 0'\n", ""));
    assert_diag(&d, 2, 5, Some("expr"), "missing required field `expr`");
    let d = one_error(&BASE.replace("expr: 'x > 0'", "expr: 1"));
    assert_diag(&d, 6, 11, Some("expr"), "expected a string");
}

// These need the real query and expression compilers; the placeholders accept everything.

/// Column of character `index` of the scalar that starts at `scalar_col` with `quote_len`.
fn col_of(scalar_col: usize, quote_len: usize, index0: usize) -> usize {
    scalar_col + quote_len + index0
}

#[test]
fn bad_scrape_query_points_into_the_query() {
    let q = "rate(http_requests_total[1m]";
    let e = match crate::query::parse(q) {
        Ok(_) => panic!("query should not compile"),
        Err(e) => e,
    };
    let d = one_error(&BASE.replace("{scrape: 'up'}", &format!("{{scrape: '{q}'}}")));
    assert_eq!(d.field.as_deref(), Some("vars.x.scrape"));
    assert_eq!((d.line, d.column), (5, col_of(19, 1, e.column - 1)), "{d}");
}

#[test]
fn bad_promql_template_points_into_the_query() {
    let q = "sum(up{pod=\"{{pood}}\"})";
    let e = match crate::query::Template::parse(q) {
        Ok(_) => panic!("template should not compile"),
        Err(e) => e,
    };
    let d = one_error(&BASE.replace("{scrape: 'up'}", &format!("{{promql: '{q}'}}")));
    assert_eq!(d.field.as_deref(), Some("vars.x.promql"));
    assert_eq!((d.line, d.column), (5, col_of(19, 1, e.column - 1)), "{d}");
}

#[test]
fn bad_query_in_block_scalar_names_the_column() {
    let src = BASE.replace(
        "x: {scrape: 'up'}",
        "x:\n        scrape: |\n          rate(http_requests_total[1m]",
    );
    let d = one_error(&src);
    assert_eq!(d.field.as_deref(), Some("vars.x.scrape"));
    assert!(d.message.contains("of the query"), "{d}");
}

#[test]
fn bad_expr_points_into_the_expression() {
    let text = "x > > 1";
    let e = match crate::expr::Expr::compile(text) {
        Ok(_) => panic!("expression should not compile"),
        Err(e) => e,
    };
    let d = one_error(&BASE.replace("'x > 0'", &format!("\"{text}\"")));
    assert_eq!(d.field.as_deref(), Some("expr"));
    match e.column {
        Some(c) => assert_eq!((d.line, d.column), (6, col_of(11, 1, c - 1)), "{d}"),
        None => assert_eq!((d.line, d.column), (6, 11), "{d}"),
    }
}

#[test]
fn undefined_variable_is_an_error_at_its_use() {
    let d = one_error(&BASE.replace("'x > 0'", "'x > 0 && errros < 1'"));
    // 'x > 0 && errros' : `errros` is character 9 of the expression.
    assert_diag(
        &d,
        6,
        col_of(11, 1, 9),
        Some("expr"),
        "\"errros\" is not defined",
    );
}

#[test]
fn unused_variable_is_a_warning() {
    let src = BASE.replace(
        "      x: {scrape: 'up'}\n",
        "      x: {scrape: 'up'}\n      y: {scrape: 'up'}\n",
    );
    let set = load_ok(&src);
    assert_eq!(set.warnings.len(), 1, "{}", render(&set.warnings));
    let w = &set.warnings[0];
    assert_eq!(w.severity, Severity::Warning);
    assert_diag(w, 6, 7, Some("vars.y"), "not use it");
    assert_eq!(
        check_str(&src).exit_code(),
        0,
        "warnings alone pass the check"
    );
}

// ---------------------------------------------------------------- limits and robustness

#[test]
fn too_many_rules() {
    let mut src = String::from("rules:\n");
    for i in 0..=MAX_RULES {
        src.push_str(&format!(
            "  - {{name: r{i}, conditionType: a/b, vars: {{x: {{scrape: up}}}}, expr: x > 0}}\n"
        ));
    }
    let d = one_error(&src);
    assert_eq!(d.line, MAX_RULES + 2);
    assert!(
        d.message.contains(&format!(
            "too many rules: {} across all files; the limit is {MAX_RULES}",
            MAX_RULES + 1
        )),
        "{d}"
    );
}

#[test]
fn too_many_variables_in_one_rule() {
    let vars = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("v{i}: {{scrape: up}}")).collect();
        format!(
            "rules:\n  - name: r1\n    conditionType: a/b\n    vars: {{{}}}\n    expr: 'v0 > 0'\n",
            list.join(", ")
        )
    };
    assert!(
        errors(&vars(MAX_VARS)).is_empty(),
        "{}",
        render(&errors(&vars(MAX_VARS)))
    );
    let d = one_error(&vars(MAX_VARS + 1));
    assert_eq!(d.field.as_deref(), Some("vars"));
    assert_eq!(d.line, 4);
    assert!(
        d.message.contains(&format!(
            "{} variables; a rule may define at most {MAX_VARS}",
            MAX_VARS + 1
        )),
        "{d}"
    );
}

#[test]
fn query_expression_and_template_size_limits_name_the_limit_and_the_size() {
    use crate::expr::MAX_SOURCE_BYTES;
    use crate::query::{MAX_QUERY_BYTES, MAX_TEMPLATE_BYTES};
    let pad = |n: usize| format!("up{}", " ".repeat(n - 2));
    let rule = |var: &str, expr: &str| {
        format!(
            "rules:\n  - name: r1\n    conditionType: a/b\n    vars:\n      x: {var}\n    expr: '{expr}'\n"
        )
    };
    let cases = [
        (
            rule(
                &format!("{{scrape: '{}'}}", pad(MAX_QUERY_BYTES + 1)),
                "x > 0",
            ),
            "vars.x.scrape",
            format!(
                "query is {} bytes long; the limit is {MAX_QUERY_BYTES}",
                MAX_QUERY_BYTES + 1
            ),
        ),
        (
            rule(
                &format!("{{promql: '{}'}}", pad(MAX_TEMPLATE_BYTES + 1)),
                "x > 0",
            ),
            "vars.x.promql",
            format!(
                "query is {} bytes long; the limit is {MAX_TEMPLATE_BYTES}",
                MAX_TEMPLATE_BYTES + 1
            ),
        ),
        (
            rule(
                "{scrape: up}",
                &format!("x > 0{}", " ".repeat(MAX_SOURCE_BYTES)),
            ),
            "expr",
            format!(
                "expression is {} bytes long; the limit is {MAX_SOURCE_BYTES}",
                MAX_SOURCE_BYTES + 5
            ),
        ),
        (
            rule(
                "{scrape: up}",
                &format!("{}x{} > 0", "(".repeat(70), ")".repeat(70)),
            ),
            "expr",
            "nested deeper than 64".to_string(),
        ),
        (
            rule(
                &format!("{{scrape: '{}up{}'}}", "(".repeat(70), ")".repeat(70)),
                "x > 0",
            ),
            "vars.x.scrape",
            "parentheses nested deeper than 64".to_string(),
        ),
    ];
    for (src, field, want) in cases {
        let d = one_error(&src);
        assert_eq!(d.field.as_deref(), Some(field), "{d}");
        assert!(d.message.contains(&want), "want {want:?} in {d}");
    }
    // At the limit, the query and the template load.
    let at = rule(&format!("{{scrape: '{}'}}", pad(MAX_QUERY_BYTES)), "x > 0");
    assert!(errors(&at).is_empty(), "{}", render(&errors(&at)));
    let at = rule(
        &format!("{{promql: '{}'}}", pad(MAX_TEMPLATE_BYTES)),
        "x > 0",
    );
    assert!(errors(&at).is_empty(), "{}", render(&errors(&at)));
}

#[test]
fn file_size_limit() {
    let big = format!("rules: []\n{}", "#".repeat(MAX_FILE_BYTES as usize));
    let d = one_error(&big);
    assert_eq!((d.line, d.column), (0, 0));
    assert!(d.message.contains("larger than 1024 KiB"), "{d}");
}

/// Every field with values of every type: errors, never a panic, and never a rule built
/// from a wrong type.
#[test]
fn wrong_types_everywhere_never_panic() {
    let values = [
        "~",
        "true",
        "0",
        "-1",
        "1.5",
        "99999999999999999999999999",
        "-99999999999999999999",
        "''",
        "x",
        "[]",
        "[1, [2]]",
        "{}",
        "{a: {b: c}}",
        ".nan",
        "-.inf",
        "0x1F",
        "!!str 1",
        "'\\u0000'",
        "\"\\u0000\"",
        "\"é🚀\"",
    ];
    let fields = [
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
        "scrape",
        "prometheus",
        "vars",
        "expr",
    ];
    for field in fields {
        for value in values {
            let src = format!(
                "rules:\n  - name: r1\n    conditionType: a/b\n    vars: {{x: {{scrape: up}}}}\n    expr: x\n    {field}: {value}\n"
            );
            // Drop the earlier definition of the same field to avoid duplicate keys.
            let src = dedupe_field(&src, field);
            let _ = diagnostics(&src);
        }
        for nested in ["selector", "scrape", "prometheus"] {
            for value in values {
                let src = with(&format!("{nested}: {{{field}: {value}}}"));
                let _ = diagnostics(&src);
            }
        }
    }
}

fn dedupe_field(src: &str, field: &str) -> String {
    let needle = format!("    {field}: ");
    let mut seen = 0;
    let count = src.lines().filter(|l| l.starts_with(&needle)).count();
    src.lines()
        .filter(|l| {
            if l.starts_with(&needle) {
                seen += 1;
                seen == count
            } else {
                true
            }
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn garbage_never_panics() {
    let samples = [
        "\0\0\0",
        "rules: [",
        "rules: {{{{",
        "rules:\n  - *undefined",
        "rules: &a [*a]",
        "%YAML 1.2\n---\nrules: []",
        "rules: !!binary aGVsbG8=",
        "rules:\n  - name: \"\\xff\"",
        "\u{feff}rules: []",
        "rules: []\n...\n",
        ": : :",
        "? [a, b]\n: c",
        "rules:\n  - ? {a: b}\n    : c",
        "rules:\n- name: r\n  conditionType: a/b\n  vars: {x: {scrape: up}}\n  expr: x\n  <<: {interval: 5s}",
        "rules:\n\t- name: tab",
    ];
    for s in samples {
        let _ = diagnostics(s);
    }
    let deep = format!(
        "rules:\n  - name: r1\n    selector: {}{}",
        "{a: ".repeat(500),
        "}".repeat(500)
    );
    assert!(!errors(&deep).is_empty());
    let deep_list = format!("rules: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(!errors(&deep_list).is_empty());

    // Pseudo-random YAML-ish token soup, deterministic.
    let tokens = [
        "rules",
        ":",
        " ",
        "\n",
        "  ",
        "- ",
        "name",
        "r1",
        "{",
        "}",
        "[",
        "]",
        ",",
        "'",
        "\"",
        "&a",
        "*a",
        "vars",
        "expr",
        "10s",
        "-1",
        "#",
        "|",
        ">",
        "!!str",
        "?",
        "interval",
        "conditionType",
        "x/y",
        "scrape",
        "%",
        "\\",
        "é",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let mut s = String::new();
        for _ in 0..(seed % 40) {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            s.push_str(tokens[(seed >> 33) as usize % tokens.len()]);
        }
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let _ = diagnostics(&s);
    }
}

#[test]
fn non_string_keys_are_errors() {
    let d = one_error(&with("1: x"));
    assert_diag(&d, 7, 5, None, "expected a field name");
    let d = one_error(&BASE.replace("      x: {", "      7: {"));
    assert_diag(&d, 5, 7, Some("vars"), "expected a string");
}

#[test]
fn aliases_and_merge_keys_work() {
    let src = "\
defaults: &d {interval: 30s, timeout: 5s}
rules: []
";
    assert_eq!(one_error(src).field.as_deref(), Some("defaults"));
    let src = "\
rules:
  - &base
    name: a
    conditionType: a/b
    vars: {x: {scrape: up}}
    expr: x > 0
  - <<: *base
    name: b
    interval: 30s
";
    let set = load_ok(src);
    assert_eq!(set.len(), 2);
    assert_eq!(set.rules[1].name, "b");
    assert_eq!(set.rules[1].interval, Duration::from_secs(30));
    assert_eq!(set.rules[1].condition_type, "a/b");
}

// ---------------------------------------------------------------- check

/// What `podgate check` reports for a file holding `src` (the daemon's reading of files is
/// tested with it, in `rules_dir`).
fn check_str(src: &str) -> CheckReport {
    check_bytes(Path::new("rules.yaml"), src.as_bytes())
}

#[test]
fn check_of_valid_files_exits_zero() {
    let report = check_str(&rule_file("fine"));
    assert!(!report.has_errors(), "{}", render(&report.diagnostics));
    assert_eq!(report.exit_code(), 0);
    assert_eq!((report.files, report.rules), (1, 1));
}

#[test]
fn rules_error_display_lists_errors() {
    let err = match load_str("t.yaml", &with("interval: 10\ndryRun: 1")) {
        Ok(_) => panic!("must fail"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(
        text.starts_with("rule files rejected with 2 errors"),
        "{text}"
    );
    assert!(
        text.contains("t.yaml:7:15: error: rule \"r1\": field interval"),
        "{text}"
    );
    assert!(
        text.contains("t.yaml:8:13: error: rule \"r1\": field dryRun"),
        "{text}"
    );
}

#[test]
fn misspelt_required_field_is_reported_once() {
    let src = BASE.replace("    expr: 'x > 0'", "    exp: 'x > 0'");
    let d = one_error(&src);
    assert_at(
        &d,
        start(&src, "exp:"),
        Some("exp"),
        "did you mean \"expr\"",
    );
    let src = BASE.replace("  - name: r1", "  - nme: r1");
    let d = one_error(&src);
    assert_at(
        &d,
        start(&src, "nme"),
        Some("rules[0].nme"),
        "did you mean \"name\"",
    );
}

#[test]
fn null_required_field_is_reported_at_its_key() {
    let src = BASE.replace("expr: 'x > 0'", "expr:");
    assert_at(
        &one_error(&src),
        start(&src, "expr:"),
        Some("expr"),
        "missing required field `expr`",
    );
    let src = BASE.replace("name: r1", "name: ~");
    assert_at(
        &one_error(&src),
        start(&src, "name:"),
        Some("rules[0].name"),
        "missing required field `name`",
    );
}

/// Found by fuzzing: YAML ends a line at LF, CRLF and a lone CR alike, so positions in a
/// file with carriage returns count those lines too (as YAML-aware editors show them).
#[test]
fn positions_count_crlf_and_lone_cr_as_line_breaks() {
    for eol in ["\n", "\r\n", "\r"] {
        let src = with("bogus: 1").replace('\n', eol);
        let d = one_error(&src);
        assert_eq!((d.line, d.column), (7, 5), "line ends {eol:?}: {d}");
        assert!(d.message.contains("bogus"), "{d}");
    }
    // A run of lone CRs inside a value, then a YAML error further down.
    let src = "rules:\n  - name: r1\r\r\r\r    bad: [\n";
    let d = one_error(src);
    assert!(d.line >= 6, "each CR ended a line: {d}");
}

// ---------------------------------------------------------------- rollout safety (warm-up)

#[test]
fn a_window_that_cannot_fill_before_fail_open_is_an_error_naming_both() {
    let src =
        with("failOpenAfter: 1m").replace("{scrape: 'up'}", "{scrape: 'sum(rate(x_total[10m]))'}");
    let e = one_error(&src);
    assert_diag(
        &e,
        7,
        20,
        Some("failOpenAfter"),
        "ends before vars.x can have data",
    );
    assert!(e.message.contains("10m"), "{e}");
    // Prometheus needs the range plus one interval (10 s by default): 1m is not enough
    // for a 50 s range either.
    let src = with("failOpenAfter: 1m").replace(
        "{scrape: 'up'}",
        "{promql: 'max by (namespace, pod) (rate(x_total[50s]))'}",
    );
    let e = one_error(&src);
    assert!(
        e.message.contains("1m") && e.message.contains("plus one interval"),
        "{e}"
    );
    // A window that fits is no error, only the warning that failOpenAfter can let a pod in.
    let src =
        with("failOpenAfter: 11m").replace("{scrape: 'up'}", "{scrape: 'sum(rate(x_total[10m]))'}");
    let set = load_ok(&src);
    assert_eq!(set.warnings.len(), 1, "{}", render(&set.warnings));
    assert_diag(
        &set.warnings[0],
        7,
        20,
        Some("failOpenAfter"),
        "without a data-based verdict",
    );
}

#[test]
fn pasted_promql_scrape_queries_pass_the_check() {
    for query in [
        "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))",
        "sum(rate(errors_total[1m])) / sum(rate(requests_total[1m]))",
        "histogram_quantile(0.99, sum without (pod, instance) (rate(h_bucket[5m])))",
        "max(max_over_time(queue_depth[5m])) > bool 100",
        "clamp_min(sum(irate(x_total[1m])), 0)",
    ] {
        let src = BASE.replace("'up'", &format!("'{query}'"));
        assert_eq!(check_str(&src).exit_code(), 0, "{query}");
        load_ok(&src);
    }
}

#[test]
fn fail_open_is_checked_against_the_longest_window_of_every_selector() {
    // The longest window is the second selector's; an offset reaches back further still.
    for (query, needs) in [
        ("sum(rate(a_total[1m])) / sum(rate(b_total[10m]))", "10m"),
        (
            "sum(rate(a_total[1m])) - sum(rate(a_total[1m] offset 9m))",
            "10m",
        ),
    ] {
        let src =
            with("failOpenAfter: 5m").replace("{scrape: 'up'}", &format!("{{scrape: '{query}'}}"));
        let e = one_error(&src);
        assert_diag(
            &e,
            7,
            20,
            Some("failOpenAfter"),
            "ends before vars.x can have data",
        );
        assert!(e.message.contains(needs), "{query}: {e}");
        assert!(e.message.contains("longest range plus offset"), "{e}");
    }
}

#[test]
fn settings_that_let_a_pod_in_without_data_are_warnings_naming_the_field() {
    let set = load_ok(&with("onNoData: pass\nonError: pass"));
    let fields: Vec<Option<&str>> = set.warnings.iter().map(|w| w.field.as_deref()).collect();
    assert_eq!(
        fields,
        [Some("onNoData"), Some("onError")],
        "{}",
        render(&set.warnings)
    );
    assert!(set.warnings.iter().all(|w| w.severity == Severity::Warning));
    assert_eq!(check_str(&with("onNoData: pass")).exit_code(), 0);
    // The defaults and the safe settings say nothing.
    for extra in [
        "onNoData: fail",
        "onNoData: keep\nonError: keep",
        "onError: fail",
    ] {
        let set = load_ok(&with(extra));
        assert!(
            set.warnings.is_empty(),
            "{extra}: {}",
            render(&set.warnings)
        );
    }
}

mod peers;
