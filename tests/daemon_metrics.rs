//! `podgate run`'s own `/metrics` after a run that exercised passes, failures, source
//! errors, transitions, writes and a panic-threshold hold: every metric the product promises,
//! values that agree with what happened and with each other, and no per-pod label.

use crate::support;

use std::time::Duration;

use support::TestPod;
use support::daemon::{MetricSample, parse_metrics, sum_of};
use support::scene::Scene;
use support::{RuleYaml, queue};

const GATE: &str = "podgate.dev/metrics-healthy";

fn rules() -> String {
    RuleYaml::queue(GATE)
        .with("onError", "fail")
        .with("maxUnavailable", 1)
        .file()
}

/// Every metric of the product's contract, by the sample names it shows up as.
const PROMISED: [&str; 16] = [
    "podgate_evaluations_total",
    "podgate_evaluation_duration_seconds_bucket",
    "podgate_source_requests_total",
    "podgate_source_request_duration_seconds_bucket",
    "podgate_gate_transitions_total",
    "podgate_gates",
    "podgate_panic_threshold_holds_total",
    "podgate_kube_writes_total",
    "podgate_kube_write_duration_seconds_bucket",
    "podgate_pods_tracked",
    "podgate_config_reloads_total",
    "podgate_config_last_reload_successful",
    "podgate_config_last_reload_success_timestamp_seconds",
    "podgate_rules_loaded",
    "podgate_leader",
    "podgate_build_info",
];

fn one(samples: &[MetricSample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&MetricSample> = samples
        .iter()
        .filter(|s| s.name == name && s.has(labels))
        .collect();
    match found.as_slice() {
        [s] => s.value,
        other => panic!("expected one sample {name}{labels:?}, found {other:#?}"),
    }
}

/// A histogram's buckets are cumulative, its `+Inf` bucket equals its count, and the count
/// is `want` (within `slack`: the counter and the histogram are updated one after the other).
fn check_histogram(samples: &[MetricSample], name: &str, labels: &[(&str, &str)], want: f64) {
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.name == format!("{name}_bucket") && s.has(labels))
        .map(|s| {
            let le = match s.label("le") {
                Some("+Inf") => f64::INFINITY,
                Some(le) => le.parse().unwrap_or(f64::NAN),
                None => f64::NAN,
            };
            (le, s.value)
        })
        .collect();
    assert!(buckets.len() > 2, "{name}{labels:?}: buckets {buckets:?}");
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "{name}: buckets not cumulative: {buckets:?}"
    );
    let count = one(samples, &format!("{name}_count"), labels);
    let sum = one(samples, &format!("{name}_sum"), labels);
    assert_eq!(
        buckets.last().map(|b| b.1),
        Some(count),
        "{name}: +Inf bucket"
    );
    assert!(
        (want - 2.0..=want).contains(&count),
        "{name}{labels:?}: count {count}, expected about {want}"
    );
    assert!(sum > 0.0 && sum.is_finite(), "{name}: sum {sum}");
}

#[tokio::test]
async fn metrics_cover_the_contract_with_values_that_match_the_run() {
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let scene = Scene::new("metrics").await;
    let daemon = scene.start_daemon(&rules(), &[]).await;
    let steady = scene
        .running_pod(TestPod::new("steady-pod").gate(GATE), &queue(1))
        .await;
    let failing = scene
        .running_pod(TestPod::new("failing-pod").gate(GATE), &queue(1))
        .await;
    for name in ["steady-pod", "failing-pod"] {
        scene
            .wait_gate(name, GATE, "True", "MetricsHealthy", &daemon)
            .await;
    }
    // An ordinary healthy run already shows every promised metric, rare events at 0 (so the
    // first one is seen by increase() and alerts).
    support::wait_for(
        "every promised metric after a healthy run",
        Duration::from_secs(20),
        || async {
            let m = daemon.samples().await;
            let missing: Vec<&str> = PROMISED
                .into_iter()
                .filter(|name| !m.iter().any(|s| s.name == *name))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(missing)
            }
        },
    )
    .await;
    let m = daemon.samples().await;
    assert_eq!(
        one(
            &m,
            "podgate_panic_threshold_holds_total",
            &[("rule", "queue")]
        ),
        0.0
    );
    assert_eq!(
        one(&m, "podgate_config_reloads_total", &[("result", "failure")]),
        0.0
    );

    // One pod fails its expression (False), then the other's source breaks: maxUnavailable 1
    // holds it True.
    failing.set_body(queue(500));
    scene
        .wait_gate("failing-pod", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    steady.set_status(500);
    scene
        .wait_gate("steady-pod", GATE, "True", "PanicThreshold", &daemon)
        .await;
    // The per-rule gauges are refreshed every few seconds: wait for them to show this state.
    support::wait_for("podgate_gates updated", Duration::from_secs(20), || async {
        let m = daemon.samples().await;
        let by_status = |status: &str| {
            sum_of(
                &m,
                "podgate_gates",
                &[("rule", "queue"), ("status", status)],
            )
        };
        let seen = (by_status("True"), by_status("False"), by_status("Unknown"));
        if seen == (1.0, 1.0, 0.0) {
            Ok(())
        } else {
            Err(seen)
        }
    })
    .await;

    let (status, text) = {
        let r = support::http_client(Duration::from_secs(5))
            .get(format!("http://{}/metrics", daemon.metrics_addr))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    };
    assert_eq!(status, 200);
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    let m = parse_metrics(&text);
    for name in PROMISED {
        assert!(
            m.iter().any(|s| s.name == name),
            "{name} missing from /metrics:\n{text}"
        );
    }

    // No per-pod label, and no pod name anywhere.
    for s in &m {
        assert!(
            !s.labels.contains_key("pod") && !s.labels.contains_key("namespace"),
            "per-pod label on {s:?}"
        );
    }
    for pod in ["steady-pod", "failing-pod", scene.name()] {
        assert!(!text.contains(pod), "{pod} appears in /metrics:\n{text}");
    }
    // Nor a pod's uid or IP, as a label value or anywhere else.
    let mut identities = vec![steady.ip().to_string(), failing.ip().to_string()];
    for name in ["steady-pod", "failing-pod"] {
        let uid = scene.pod(name).await.metadata.uid.unwrap_or_default();
        assert!(!uid.is_empty(), "{name} has no uid");
        identities.push(uid);
    }
    for id in &identities {
        assert!(
            !m.iter().any(|s| s.labels.values().any(|v| v == id)),
            "a label value is the pod identity {id}:\n{text}"
        );
        assert!(
            !text.contains(id.as_str()),
            "{id} appears in /metrics:\n{text}"
        );
    }

    let rule = [("rule", "queue")];
    let evals = |result: &str| {
        sum_of(
            &m,
            "podgate_evaluations_total",
            &[("rule", "queue"), ("result", result)],
        )
    };
    assert!(evals("pass") >= 2.0, "passes: {}", evals("pass"));
    assert!(evals("fail") >= 1.0, "fails: {}", evals("fail"));
    assert!(evals("error") >= 1.0, "errors: {}", evals("error"));
    let evaluations = sum_of(&m, "podgate_evaluations_total", &rule);
    check_histogram(
        &m,
        "podgate_evaluation_duration_seconds",
        &rule,
        evaluations,
    );

    let scrape = [("source", "scrape")];
    let scrapes = sum_of(&m, "podgate_source_requests_total", &scrape);
    assert!(
        one(
            &m,
            "podgate_source_requests_total",
            &[("source", "scrape"), ("result", "ok")]
        ) >= 3.0
    );
    assert!(
        one(
            &m,
            "podgate_source_requests_total",
            &[("source", "scrape"), ("result", "error")]
        ) >= 1.0
    );
    check_histogram(
        &m,
        "podgate_source_request_duration_seconds",
        &scrape,
        scrapes,
    );
    // Evaluations and scrapes go together here: one scrape per pod per interval.
    assert!(
        (scrapes - evaluations).abs() <= 2.0,
        "{scrapes} scrapes for {evaluations} evaluations"
    );

    let transitions = |status: &str, reason: &str| {
        sum_of(
            &m,
            "podgate_gate_transitions_total",
            &[("rule", "queue"), ("status", status), ("reason", reason)],
        )
    };
    assert_eq!(transitions("True", "MetricsHealthy"), 2.0);
    assert_eq!(transitions("False", "MetricsUnhealthy"), 1.0);
    assert_eq!(sum_of(&m, "podgate_gate_transitions_total", &[]), 3.0);
    assert!(one(&m, "podgate_panic_threshold_holds_total", &rule) >= 1.0);

    // Writes: True twice, False once, and the hold's reason change.
    let writes_ok = one(&m, "podgate_kube_writes_total", &[("result", "ok")]);
    assert_eq!(writes_ok, 4.0);
    let writes = sum_of(&m, "podgate_kube_writes_total", &[]);
    check_histogram(&m, "podgate_kube_write_duration_seconds", &[], writes);

    assert_eq!(one(&m, "podgate_pods_tracked", &[]), 2.0);
    assert_eq!(
        one(&m, "podgate_config_reloads_total", &[("result", "success")]),
        1.0
    );
    assert_eq!(one(&m, "podgate_config_last_reload_successful", &[]), 1.0);
    let loaded_at = one(
        &m,
        "podgate_config_last_reload_success_timestamp_seconds",
        &[],
    );
    assert!(
        (started_unix - 5.0..started_unix + 600.0).contains(&loaded_at),
        "load time {loaded_at}, test started at {started_unix}"
    );
    assert_eq!(one(&m, "podgate_rules_loaded", &[]), 1.0);
    assert_eq!(one(&m, "podgate_leader", &[]), 1.0);
    let build = m
        .iter()
        .find(|s| s.name == "podgate_build_info")
        .map(|s| (s.label("version").unwrap_or_default().to_string(), s.value));
    assert_eq!(build, Some((env!("CARGO_PKG_VERSION").to_string(), 1.0)));
}
