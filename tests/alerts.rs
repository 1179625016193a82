//! podgate's shipped alerts: the rule file `deploy/alerts/podgate-alerts.yaml` passes its
//! `promtool test rules` unit tests (promtool from Debian's prometheus package, which
//! `scripts/test` installs), the tests catch a changed threshold, the PrometheusRule copies
//! (kustomize component, Helm chart) carry the same groups, the component is accepted by the
//! apiserver, and every alert has its runbook section in docs/operations.md.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::manifests::{apply_dry_run, find, install_prometheusrule_crd, kubectl, repo};

const RULE_FILE: &str = "deploy/alerts/podgate-alerts.yaml";
const RULE_TESTS: &str = "deploy/alerts/podgate-alerts.test.yaml";
/// The PrometheusRule copies of the rule file's groups.
const PROMETHEUS_RULE_COPIES: [&str; 1] = ["deploy/components/alerts/prometheusrule.yaml"];
const ALERTS_OVERLAY: &str = "tests/deploy/alerts-overlay";

/// promtool: `PODGATE_TEST_PROMTOOL`, else Debian's.
fn promtool() -> PathBuf {
    let path = std::env::var_os("PODGATE_TEST_PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/promtool"));
    assert!(
        path.is_file(),
        "{} not found: install Debian's prometheus package (scripts/test does) or set \
         PODGATE_TEST_PROMTOOL",
        path.display()
    );
    path
}

/// Runs promtool in `dir`; returns whether it succeeded and what it printed.
fn run_promtool(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running promtool {args:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn read_yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path))
        .unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} does not parse: {e}"))
}

/// The alert names of a `groups` list.
fn alert_names(groups: &Value) -> Vec<String> {
    groups
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn shipped_alerts_pass_their_promtool_unit_tests() {
    let dir = repo().join("deploy/alerts");
    let (ok, out) = run_promtool(&dir, &["check", "rules", "podgate-alerts.yaml"]);
    assert!(ok, "promtool check rules {RULE_FILE}:\n{out}");
    let (ok, out) = run_promtool(&dir, &["test", "rules", "podgate-alerts.test.yaml"]);
    assert!(ok, "promtool test rules {RULE_TESTS}:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every alert has at least one test that expects it to fire.
#[test]
fn every_shipped_alert_has_a_test_that_fires_it() {
    let alerts = alert_names(&read_yaml(RULE_FILE)["groups"]);
    assert!(alerts.len() >= 6, "alerts in {RULE_FILE}: {alerts:?}");
    let tests = read_yaml(RULE_TESTS);
    let fired: Vec<String> = tests["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["alert_rule_test"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()))
        .filter_map(|c| c["alertname"].as_str().map(str::to_string))
        .collect();
    let untested: Vec<&String> = alerts.iter().filter(|a| !fired.contains(a)).collect();
    assert!(
        untested.is_empty(),
        "{RULE_TESTS} never expects these alerts to fire: {untested:?}"
    );
}

/// The unit tests can fail: the same tests against a rule file whose thresholds moved.
#[test]
fn promtool_unit_tests_catch_a_changed_threshold() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = std::fs::read_to_string(repo().join(RULE_FILE)).expect(RULE_FILE);
    let changed = rules
        .replace("for: 2m", "for: 5m")
        .replace("> 0.1", "> 0.2");
    assert_ne!(
        rules, changed,
        "the thresholds to change are gone from {RULE_FILE}"
    );
    std::fs::write(dir.path().join("podgate-alerts.yaml"), changed).expect("write rules");
    std::fs::copy(
        repo().join(RULE_TESTS),
        dir.path().join("podgate-alerts.test.yaml"),
    )
    .expect("copy tests");
    let (ok, out) = run_promtool(dir.path(), &["test", "rules", "podgate-alerts.test.yaml"]);
    assert!(!ok, "the unit tests passed on changed thresholds:\n{out}");
    for alert in ["PodgateNoWriter", "PodgateSourceErrors"] {
        assert!(out.contains(alert), "no failure named {alert}:\n{out}");
    }
}

#[test]
fn every_prometheus_rule_carries_the_rule_file_groups() {
    let groups = read_yaml(RULE_FILE)["groups"].clone();
    for copy in PROMETHEUS_RULE_COPIES {
        let rule = read_yaml(copy);
        assert_eq!(rule["kind"], "PrometheusRule", "{copy}");
        assert_eq!(
            rule["spec"]["groups"], groups,
            "{copy} differs from {RULE_FILE}: edit the rule file, then copy its groups"
        );
    }
}

#[test]
fn alerts_component_is_accepted_by_the_apiserver() {
    install_prometheusrule_crd();
    let objects = apply_dry_run(ALERTS_OVERLAY);
    let rule = find(&objects, "PrometheusRule", "podgate");
    assert_eq!(rule["metadata"]["namespace"], "podgate");
    assert_eq!(
        alert_names(&rule["spec"]["groups"]),
        alert_names(&read_yaml(RULE_FILE)["groups"])
    );
    // The CRD validates for real: a bad duration is refused.
    let mut bad = rule.clone();
    bad["spec"]["groups"][0]["rules"][0]["for"] = Value::from("two minutes");
    let yaml = serde_json::to_string(&bad).expect("json");
    let out = kubectl(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        Some(&yaml),
    );
    assert!(
        !out.ok && out.stderr.contains("for"),
        "a PrometheusRule with for: \"two minutes\" must be refused: {}{}",
        out.stdout,
        out.stderr
    );
}

/// Each alert's `runbook` annotation names its section of docs/operations.md, and the section
/// exists.
#[test]
fn every_alert_has_a_runbook_section() {
    let ops = std::fs::read_to_string(repo().join("docs/operations.md")).expect("operations.md");
    let groups = read_yaml(RULE_FILE)["groups"].clone();
    for rule in groups
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
    {
        let Some(alert) = rule["alert"].as_str() else {
            continue;
        };
        assert!(
            ops.lines().any(|l| l == format!("### {alert}")),
            "docs/operations.md has no runbook section \"### {alert}\""
        );
        assert_eq!(
            rule["annotations"]["runbook"],
            format!("docs/operations.md#{}", alert.to_lowercase()),
            "{alert}'s runbook annotation"
        );
    }
}
