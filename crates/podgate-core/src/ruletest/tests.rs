//! Test files with several pods: peers, per-pod expectations, and the mistakes a test file
//! can make.

use super::*;

const RULES: &str = "\
rules:
  - name: vs-peers
    conditionType: example.com/g
    interval: 10s
    failureThreshold: 1
    vars:
      err:  {promql: 'err'}
      base: {peers: {var: err, aggregate: median, of: baseline}}
    expr: 'isnan(base) || err <= 2 * base'
";

/// The report, or the invalid test file's message as `podgate test` prints it.
fn run(test: &str) -> Result<FileReport, String> {
    run_with(RULES, test)
}

/// Runs a test file naming one rule file, `r.yaml`, that holds `rules_text`.
fn run_with(rules_text: &str, test: &str) -> Result<FileReport, String> {
    let file = Path::new("t.test.yaml");
    let text = format!("rule_files: [r.yaml]\ntests:\n{test}");
    super::run(file, &text, |paths| {
        assert_eq!(paths, [Path::new("r.yaml")]);
        rules::load_str("r.yaml", rules_text)
    })
    .map_err(|e| e.to_string())
}

fn failures(test: &str) -> Vec<String> {
    match run(test) {
        Ok(r) => r.failures,
        Err(e) => panic!("invalid test file: {e}"),
    }
}

const TWO_REVISIONS: &str = "\
  - pods:
      - {name: old-a, labels: {pod-template-hash: a}, promql: {err: '0.01x5'}}
      - {name: old-b, labels: {pod-template-hash: a}, promql: {err: '0.02x5'}}
      - name: new
        labels: {pod-template-hash: b}
        containers_ready_at: 20s
        promql: {err: '_ _ 0.1 0.1 0.01 0.01'}
        expect:
";

#[test]
fn each_pod_is_judged_against_its_peers_of_the_same_step() {
    let test = format!(
        "{TWO_REVISIONS}          - {{step: 1, status: Unknown}}\n          - {{step: 2, status: \"False\", reason: MetricsUnhealthy, message_contains: 'base=0.015 is the baseline median of err over 2 pods of revision a'}}\n"
    );
    assert_eq!(failures(&test), Vec::<String>::new());
    // The same file with a wrong expectation fails, naming the pod.
    let wrong = format!("{TWO_REVISIONS}          - {{step: 2, status: \"True\"}}\n");
    let f = failures(&wrong);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].starts_with("test #1: pod new: step 2: gate example.com/g: status False, want True"),
        "{}",
        f[0]
    );
}

#[test]
fn a_startup_rule_keeps_the_gate_once_true() {
    let rules = RULES
        .replace(
            "    failureThreshold: 1\n",
            "    failureThreshold: 1\n    mode: startup\n",
        )
        .replace("isnan(base) || err <= 2 * base", "err < 0.1");
    // True at step 2, then err rises: the gate stays True; a continuous rule would flip.
    let test = concat!(
        "  - pod: {name: p}\n",
        "    promql: {err: '0.5 0.5 0.01 0.9 0.9 0.9'}\n",
        "    expect:\n",
        "      - {step: 1, status: \"False\", reason: MetricsUnhealthy}\n",
        "      - {step: 2, status: \"True\", reason: MetricsHealthy}\n",
        "      - {step: 5, status: \"True\", reason: MetricsHealthy}\n",
    );
    let report = run_with(&rules, test).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.failures, Vec::<String>::new());
    let continuous = rules.replace("    mode: startup\n", "");
    let report = run_with(&continuous, test).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(
        report.failures[0].contains("step 5: "),
        "{:?}",
        report.failures
    );
}

#[test]
fn pods_of_another_owner_are_no_peers() {
    let test = "\
  - pods:
      - {name: old-a, owner: Deployment/other, labels: {pod-template-hash: a}, promql: {err: '0.01x3'}}
      - name: new
        labels: {pod-template-hash: b}
        promql: {err: '0.5x3'}
        expect:
          - {step: 1, status: \"True\", message_contains: 'isnan(base)=true'}
";
    assert_eq!(failures(test), Vec::<String>::new());
}

#[test]
fn mistakes_in_a_test_file_are_errors_that_say_what_to_do() {
    let both = "  - pod: {name: x}\n    pods:\n      - {name: y}\n";
    let e = run(both).map(|_| ()).expect_err("pod and pods");
    assert!(e.contains("move `pod`"), "{e}");
    let twice = "  - pods:\n      - {name: y}\n      - {name: y}\n";
    let e = run(twice).map(|_| ()).expect_err("twice");
    assert!(e.contains("pod \"y\" is listed twice"), "{e}");
    let owner = "  - pods:\n      - {name: y, owner: web}\n";
    let e = run(owner).map(|_| ()).expect_err("owner");
    assert!(e.contains("pod y: owner \"web\": write Kind/name"), "{e}");
    let promql = "  - pods:\n      - {name: y, promql: {nope: '1'}}\n";
    let e = run(promql).map(|_| ()).expect_err("promql");
    assert!(e.contains("pod y: promql nope: no promql variable"), "{e}");
}
