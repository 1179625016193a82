//! `podgate run` against the real control plane: the gate lifecycle end to end.

use crate::support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use support::daemon::{Daemon, rules_dir};
use support::scene::Scene;
use support::{TestPod, condition, condition_status, wait_for};

const GATE: &str = "podgate.dev/test-healthy";

fn healthy(queue: u32) -> String {
    format!("# TYPE work_queue_depth gauge\nwork_queue_depth{{queue=\"a\"}} {queue}\n")
}

const RULES: &str = r#"
rules:
  - name: queue
    conditionType: podgate.dev/test-healthy
    interval: 1s
    timeout: 500ms
    failureThreshold: 3
    successThreshold: 2
    onNoData: fail
    onError: keep
    scrape: {port: metrics}
    vars:
      queue: {scrape: 'max(work_queue_depth)'}
    expr: 'queue < 100'
"#;

#[tokio::test]
async fn gate_lifecycle_true_false_true_with_values_events_and_no_steady_writes() {
    let scene = Scene::new("lifecycle").await;
    let (pods, kubelet, admin) = (&scene.pods, &scene.kubelet, scene.admin.clone());
    let ep = scene
        .pending_pod(TestPod::new("web").gate(GATE), &healthy(3))
        .await;
    let ip = ep.ip();

    let rules = rules_dir(RULES);
    let daemon = Daemon::start(rules.path(), scene.name(), &[]);
    daemon.wait_ready().await;

    // Running with ContainersReady: evaluated at once; successThreshold 2 needs two passes.
    kubelet.run("web", ip, true).await;
    let msg = scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await
        .message;
    assert!(msg.contains("queue=3 < 100"), "{msg}");
    assert!(msg.contains("(rule queue)"), "{msg}");

    // The kubelet's own conditions survive podgate's writes, and Ready follows the gate.
    let pod = kubelet.sync_ready("web").await;
    assert_eq!(condition_status(&pod, "ContainersReady"), Some("True"));
    assert_eq!(condition_status(&pod, "PodScheduled"), Some("True"));
    assert_eq!(condition_status(&pod, "Ready"), Some("True"));

    // Steady state: several intervals with changing values, not one write.
    let rv = pods
        .get("web")
        .await
        .ok()
        .and_then(|p| p.metadata.resource_version);
    for q in [4, 7, 2, 9] {
        ep.set_body(healthy(q));
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let rv_after = pods
        .get("web")
        .await
        .ok()
        .and_then(|p| p.metadata.resource_version);
    assert_eq!(
        rv,
        rv_after,
        "steady state must not write\nlog:\n{}",
        daemon.log()
    );

    // Bad values: False after failureThreshold, with the values in the message.
    ep.set_body(healthy(500));
    let msg = scene
        .wait_gate("web", GATE, "False", "MetricsUnhealthy", &daemon)
        .await
        .message;
    assert!(msg.contains("queue=500 >= 100"), "{msg}");
    let pod = kubelet.sync_ready("web").await;
    assert_eq!(condition_status(&pod, "Ready"), Some("False"));
    assert_eq!(condition_status(&pod, "ContainersReady"), Some("True"));

    // Good again: True after successThreshold.
    ep.set_body(healthy(1));
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;

    // An Event per transition: True, False, True. Repeats of the same reason are aggregated
    // into one Event with a count, as the kubelet's are (`kubectl describe`: "x2 over 20s").
    let events: Api<Event> = scene.ns.api(admin.clone());
    let reasons = wait_for("three gate events", Duration::from_secs(10), || async {
        let list = events
            .list(&ListParams::default())
            .await
            .map_err(|e| vec![e.to_string()])?;
        let mut reasons: Vec<String> = Vec::new();
        for e in &list.items {
            if e.involved_object.name.as_deref() != Some("web") {
                continue;
            }
            let Some(reason) = e.reason.clone().filter(|r| r.starts_with("Gate")) else {
                continue;
            };
            let series = e.series.as_ref().and_then(|s| s.count).unwrap_or(0);
            let count = e.count.unwrap_or(1).max(series).max(1);
            for _ in 0..count {
                reasons.push(reason.clone());
            }
        }
        reasons.sort();
        if reasons.len() >= 3 {
            Ok(reasons)
        } else {
            Err(reasons)
        }
    })
    .await;
    assert_eq!(reasons, ["GateFalse", "GateTrue", "GateTrue"]);

    // The daemon's own metrics saw it all.
    let m = daemon.metrics().await;
    assert!(m.contains("podgate_gate_transitions_total{rule=\"queue\",status=\"False\",reason=\"MetricsUnhealthy\"} 1"), "{m}");
    assert!(
        m.contains("podgate_evaluations_total{rule=\"queue\",result=\"pass\"}"),
        "{m}"
    );
    assert!(
        m.contains("podgate_kube_writes_total{result=\"ok\"}"),
        "{m}"
    );
}

#[tokio::test]
async fn eval_pod_evaluates_a_live_pod_once_without_writing() {
    let scene = Scene::new("eval-pod").await;
    let pods = &scene.pods;
    let ep = scene
        .running_pod(TestPod::new("web").gate(GATE), &healthy(3))
        .await;
    let rules = rules_dir(RULES);
    let cp = support::ControlPlane::get();
    let rules_path = rules.path().to_path_buf();
    let kubeconfig = cp.podgate_kubeconfig_path().to_path_buf();
    let target = format!("{}/web", scene.name());
    let run = move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_podgate"))
            .args(["eval", "--rule", "queue", "--rules-dir"])
            .arg(&rules_path)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--pod")
            .arg(&target)
            .output()
            .expect("run podgate eval")
    };
    let out = tokio::task::spawn_blocking(run.clone())
        .await
        .expect("eval");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("queue  scrape  max(work_queue_depth)  = 3"),
        "{stdout}"
    );
    assert!(stdout.contains("verdict: pass — queue=3 < 100"), "{stdout}");

    ep.set_body(healthy(250));
    let out = tokio::task::spawn_blocking(run).await.expect("eval");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("queue=250 >= 100"), "{stdout}");
    // eval never writes.
    let pod = pods.get("web").await.expect("pod");
    assert!(
        condition(&pod, GATE).is_none(),
        "eval must not write a condition"
    );
}

#[tokio::test]
async fn an_api_server_outage_flips_nothing_and_the_daemon_resumes() {
    let scene = Scene::new("outage").await;
    let pods = &scene.pods;
    let ep = scene
        .running_pod(TestPod::new("web").gate(GATE), &healthy(3))
        .await;

    let proxy = support::proxy::Proxy::to_apiserver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = proxy.kubeconfig(
        support::ControlPlane::get().podgate_kubeconfig_path(),
        dir.path(),
    );
    let rules = rules_dir(RULES);
    let daemon = Daemon::start_with_kubeconfig(&kubeconfig, rules.path(), scene.name(), &[]);
    daemon.wait_ready().await;
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    let rv = pods
        .get("web")
        .await
        .ok()
        .and_then(|p| p.metadata.resource_version);

    // The API server is unreachable for a while; metrics stay healthy.
    proxy.set_up(false);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let health = support::http_client(Duration::from_secs(2))
        .get(format!("http://{}/healthz", daemon.metrics_addr))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(
        health.ok(),
        Some(200),
        "the daemon keeps running\n{}",
        daemon.log()
    );
    proxy.set_up(true);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rv_after = pods
        .get("web")
        .await
        .ok()
        .and_then(|p| p.metadata.resource_version);
    assert_eq!(
        rv,
        rv_after,
        "the outage alone must not flip or rewrite the gate\n{}",
        daemon.log()
    );

    // It resumes: a real change after the outage is written.
    ep.set_body(healthy(500));
    scene
        .wait_gate("web", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
}
