//! The `podgate` binary as an operator uses it: exit codes, output, error lines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn podgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podgate"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run podgate")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn check_accepts_the_promql_people_paste() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "pasted.yaml",
        "rules:\n  - name: pasted\n    conditionType: example.com/healthy\n    vars:\n      \
         p90:   {scrape: 'histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))'}\n      \
         ratio: {scrape: 'sum(rate(errors_total[1m])) / sum(rate(requests_total[1m]))'}\n    \
         expr: 'p90 < 0.25 && ratio < 0.01'\n",
    );
    let o = podgate(&["check", &dir.path().display().to_string()]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("0 error(s)"), "{}", stdout(&o));
    // A refused construct names itself and the form to use instead.
    write(
        dir.path(),
        "pasted.yaml",
        "rules:\n  - name: pasted\n    conditionType: example.com/healthy\n    vars:\n      \
         x: {scrape: 'max_over_time(rate(x_total[1m])[5m:1m])'}\n    expr: 'x < 1'\n",
    );
    let o = podgate(&["check", &dir.path().display().to_string()]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("subqueries"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("max_over_time(x[5m])"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn shipped_rules_pass_check_and_their_tests() {
    let o = podgate(&["check", "rules"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("0 error(s)"));
    let tests: Vec<String> = std::fs::read_dir("rules/tests")
        .expect("rules/tests")
        .filter_map(|e| e.ok().map(|e| e.path().display().to_string()))
        .collect();
    assert!(tests.len() >= 3, "a test file per shipped rule file");
    let mut args = vec!["test"];
    args.extend(tests.iter().map(String::as_str));
    let o = podgate(&args);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn check_reports_every_error_with_position_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(
        dir.path(),
        "bad.yaml",
        "rules:\n  - name: ok-name\n    conditionType: example.com/g\n    failureTreshold: 3\n    vars: {x: {scrape: 'rate(x[1m)'}}\n    expr: 'x < 1'\n",
    );
    let o = podgate(&["check", &f.display().to_string()]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(err.contains("bad.yaml:4:5: error"), "{err}");
    assert!(err.contains("did you mean \"failureThreshold\""), "{err}");
    assert!(
        err.contains("bad.yaml:5:"),
        "the query error has a position too: {err}"
    );
}

#[test]
fn rule_test_failures_exit_1_and_bad_test_files_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules_file = std::fs::canonicalize("rules/warmup.yaml").expect("rules");
    let failing = write(
        dir.path(),
        "failing.yaml",
        &format!(
            "rule_files: [{}]\ntests:\n  - pod: {{labels: {{podgate.dev/profile: worker}}}}\n    input_series:\n      - {{series: cache_warm_ratio, values: '0.1x3'}}\n      - {{series: work_queue_depth, values: '1x3'}}\n    expect:\n      - {{step: 1, status: \"True\"}}\n",
            rules_file.display()
        ),
    );
    let o = podgate(&["test", &failing.display().to_string()]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("FAILED"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("status False, want True"),
        "{}",
        stdout(&o)
    );

    let broken = write(
        dir.path(),
        "broken.yaml",
        "rule_files: [x.yaml]\ntestz: []\n",
    );
    let o = podgate(&["test", &broken.display().to_string()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn samples_prints_every_fixture_sample_and_rejects_bad_input_with_a_line() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/exposition");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{fixtures}/expected/pushgateway_tricky.prom.json"))
            .expect("fixture"),
    )
    .expect("json");
    let count = expected.as_array().map(Vec::len).unwrap_or(0);
    assert!(count > 0);
    let o = podgate(&[
        "samples",
        "--file",
        &format!("{fixtures}/pushgateway_tricky.prom"),
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), count);
    assert!(lines.iter().any(|l| l["labels"]["query"] == "a=b&c=}d"));

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(
        dir.path(),
        "bad.prom",
        "ok 1\nalso_ok{a=\"b\"} 2\nbroken{a=\"b} 3\n",
    );
    let o = podgate(&["samples", "--file", &bad.display().to_string()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("line 3"), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().count(),
        2,
        "samples before the error are shown"
    );
}

#[test]
fn eval_exit_codes_follow_the_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warm = write(
        dir.path(),
        "warm.prom",
        "cache_warm_ratio 0.99\nwork_queue_depth 3\n",
    );
    let cold = write(
        dir.path(),
        "cold.prom",
        "cache_warm_ratio 0.2\nwork_queue_depth 3\n",
    );
    let none = write(dir.path(), "none.prom", "work_queue_depth 3\n");
    let run = |f: &PathBuf| {
        podgate(&[
            "eval",
            "--rule",
            "worker-warm",
            "--rules-dir",
            "rules",
            "--metrics-file",
            &f.display().to_string(),
        ])
    };
    let o = run(&warm);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("verdict: pass"));
    let o = run(&cold);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("warm=0.2 < 0.95"), "{}", stdout(&o));
    let o = run(&none);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("verdict: nodata"), "{}", stdout(&o));
    let o = podgate(&[
        "eval",
        "--rule",
        "nope",
        "--rules-dir",
        "rules",
        "--metrics-file",
        "x",
    ]);
    assert_eq!(code(&o), 64, "{}", stderr(&o));
}

#[test]
fn eval_and_samples_read_native_histograms_from_the_protobuf_fixtures() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/exposition");
    let first = format!("{fixtures}/client_golang_native.pb");
    let later = format!("{fixtures}/client_golang_native.later.pb");
    let o = podgate(&["samples", "--file", &first]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("request_duration_seconds{method=\"GET\"} {count:10, sum:"),
        "{}",
        stdout(&o)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let rule = |name: &str, vars: &str, expr: &str| {
        format!(
            "  - name: {name}\n    conditionType: example.com/{name}\n    interval: 10s\n    \
             vars:\n{vars}    expr: '{expr}'\n"
        )
    };
    let latency = "      p90: {scrape: 'histogram_quantile(0.9, sum(rate(request_duration_seconds[1m])))'}\n      \
                   requests: {scrape: 'histogram_count(sum(request_duration_seconds))'}\n";
    let raw = "      raw: {scrape: 'rate(request_duration_seconds{method=\"GET\"}[1m])'}\n";
    write(
        dir.path(),
        "native.yaml",
        &format!(
            "rules:\n{}{}{}",
            rule("fast", latency, "p90 < 2 && requests > 0"),
            rule("faster", latency, "p90 < 0.1"),
            rule("raw", raw, "raw < 1"),
        ),
    );
    let rules_dir = dir.path().display().to_string();
    let o = podgate(&["check", &rules_dir]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let eval = |rule: &str| {
        podgate(&[
            "eval",
            "--rule",
            rule,
            "--rules-dir",
            &rules_dir,
            "--metrics-file",
            &first,
            "--metrics-file",
            &later,
        ])
    };
    // Two scrapes 10 s apart: GET went from 10 to 22 observations, POST stayed at 1.
    let o = eval("fast");
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("verdict: pass"), "{}", stdout(&o));
    assert!(stdout(&o).contains("requests=23 > 0"), "{}", stdout(&o));
    let o = eval("faster");
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("p90="), "{}", stdout(&o));
    // A histogram is not one number: the error says how to take one.
    let o = eval("raw");
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("yields a native histogram"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn usage_errors_exit_64() {
    assert_eq!(code(&podgate(&["frobnicate"])), 64);
    assert_eq!(code(&podgate(&["samples"])), 64);
    assert_eq!(code(&podgate(&["--help"])), 0);
}
