//! `podgate run` with `promql:` variables against a real Prometheus, which scrapes an
//! exporter publishing one series per pod (`namespace`/`pod` labels, `honor_labels: true`):
//! a batched query runs once per rule per interval and each pod's gate follows its own
//! series; a templated query runs per pod.

use crate::support;

use std::time::Duration;

use support::daemon::{Daemon, parse_metrics, rules_dir, sum_of};
use support::scene::Scene;
use support::{MetricsEndpoint, Prometheus, Release, TestPod, unique_loopback_ip, wait_for};

const GATE: &str = "podgate.dev/queue-healthy";

fn prometheus_config(exporter: &MetricsEndpoint) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: exporter\n    honor_labels: true\n    \
         static_configs:\n      - targets: ['{}']\n",
        exporter.addr()
    )
}

/// The exporter's body: `work_queue_depth{namespace, pod}` per `(namespace, pod, value)`.
fn series(rows: &[(&str, &str, u32)]) -> String {
    let mut out = String::from("# TYPE work_queue_depth gauge\n");
    for (ns, pod, v) in rows {
        out.push_str(&format!(
            "work_queue_depth{{namespace=\"{ns}\",pod=\"{pod}\"}} {v}\n"
        ));
    }
    out
}

fn rule(name: &str, query: &str) -> String {
    format!(
        r#"rules:
  - name: {name}
    conditionType: {GATE}
    interval: 1s
    timeout: 800ms
    failureThreshold: 1
    onNoData: fail
    onError: fail
    vars:
      queue: {{promql: '{query}'}}
    expr: 'queue < 100'
"#
    )
}

/// Creates and runs pods (no endpoint: their metrics come from Prometheus).
async fn run_pods(scene: &Scene, names: &[&str]) {
    for name in names {
        TestPod::new(name)
            .gate(GATE)
            .label("app", "queue")
            .create(&scene.pods)
            .await;
        scene.kubelet.run(name, unique_loopback_ip(), true).await;
    }
}

/// Waits until Prometheus returns `n` series for `query`.
async fn wait_series(prom: &Prometheus, query: &str, n: usize) {
    wait_for(
        &format!("{n} series for {query}"),
        Duration::from_secs(30),
        || async {
            let data = prom.query(query).await;
            let got = data
                .get("result")
                .and_then(|r| r.as_array())
                .map_or(0, Vec::len);
            if got == n { Ok(()) } else { Err(data) }
        },
    )
    .await;
}

/// Prometheus's own count of instant queries answered, from its /metrics (reading it is not
/// a query, so it does not count itself).
async fn prometheus_queries(prom: &Prometheus) -> f64 {
    let text = support::http_client(Duration::from_secs(5))
        .get(format!("{}/metrics", prom.url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("prometheus /metrics: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("prometheus /metrics body: {e}"));
    sum_of(
        &parse_metrics(&text),
        "prometheus_http_requests_total",
        &[("handler", "/api/v1/query")],
    )
}

#[tokio::test]
async fn batched_query_runs_once_per_interval_and_each_pod_follows_its_own_series() {
    batched_query_on(Release::V3, "promql-batched").await;
}

#[tokio::test]
async fn batched_query_on_prometheus_2_runs_once_per_interval_and_follows_each_pod() {
    batched_query_on(Release::V2, "promql2-batched").await;
}

async fn batched_query_on(release: Release, prefix: &str) {
    let scene = Scene::new(prefix).await;
    let ns = scene.name().to_string();
    let exporter = MetricsEndpoint::start(unique_loopback_ip()).await;
    // A same-named pod in another namespace must not be mistaken for ours.
    let other_ns = format!("{ns}-other");
    exporter.set_body(series(&[
        (&ns, "a", 1),
        (&ns, "b", 500),
        (&ns, "c", 2),
        (&ns, "d", 3),
        (&other_ns, "a", 999),
    ]));
    let prom = Prometheus::start_release(release, &prometheus_config(&exporter)).await;
    wait_series(&prom, "work_queue_depth", 5).await;

    let rules = rules_dir(&rule(
        "queue-batched",
        "max by (namespace, pod) (work_queue_depth)",
    ));
    let daemon = Daemon::start(rules.path(), &ns, &["--prometheus-url", &prom.url()]);
    daemon.wait_ready().await;
    run_pods(&scene, &["a", "b", "c", "d", "e"]).await;

    for name in ["a", "c", "d"] {
        let g = scene
            .wait_gate(name, GATE, "True", "MetricsHealthy", &daemon)
            .await;
        assert!(g.message.contains("(rule queue-batched)"), "{g:?}");
    }
    let g = scene
        .wait_gate("b", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    assert!(g.message.contains("queue=500 >= 100"), "{g:?}");
    // No series for e in the result: no data, said as such.
    let g = scene.wait_gate("e", GATE, "False", "NoData", &daemon).await;
    assert!(g.message.contains(&format!("{ns}/e")), "{g:?}");

    // One query per interval, however many pods: count at Prometheus and at podgate over a
    // window in which the test itself sends no query.
    let window = Duration::from_secs(6);
    let prom_before = prometheus_queries(&prom).await;
    let ours_before = daemon
        .sum("podgate_source_requests_total", &[("source", "prometheus")])
        .await;
    tokio::time::sleep(window).await;
    let prom_queries = prometheus_queries(&prom).await - prom_before;
    let ours = daemon
        .sum("podgate_source_requests_total", &[("source", "prometheus")])
        .await
        - ours_before;
    // 6 intervals: about 6 queries; per pod it would be about 30.
    let most = window.as_secs_f64() + 2.0;
    assert!(
        (1.0..=most).contains(&prom_queries),
        "Prometheus answered {prom_queries} queries in {window:?} (1s interval, 5 pods)"
    );
    assert!(
        (1.0..=most).contains(&ours),
        "podgate counted {ours} Prometheus requests in {window:?}"
    );

    // Each pod follows its own series as values move.
    exporter.set_body(series(&[
        (&ns, "a", 700),
        (&ns, "b", 4),
        (&ns, "c", 2),
        (&ns, "d", 3),
        (&ns, "e", 5),
        (&other_ns, "a", 1),
    ]));
    let g = scene
        .wait_gate("a", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    assert!(g.message.contains("queue=700 >= 100"), "{g:?}");
    for name in ["b", "e"] {
        scene
            .wait_gate(name, GATE, "True", "MetricsHealthy", &daemon)
            .await;
    }
    for name in ["c", "d"] {
        let g = scene.gate(name, GATE).await;
        assert_eq!(
            g.as_ref().map(|g| (g.status.as_str(), g.reason.as_str())),
            Some(("True", "MetricsHealthy")),
            "{name}"
        );
    }
}

#[tokio::test]
async fn templated_query_runs_per_pod_with_its_name_and_namespace() {
    let scene = Scene::new("promql-templated").await;
    let ns = scene.name().to_string();
    let exporter = MetricsEndpoint::start(unique_loopback_ip()).await;
    exporter.set_body(series(&[(&ns, "x", 1), (&ns, "y", 300), (&ns, "z", 3)]));
    let prom = Prometheus::start(&prometheus_config(&exporter)).await;
    wait_series(&prom, "work_queue_depth", 3).await;

    let rules = rules_dir(&rule(
        "queue-templated",
        r#"max(work_queue_depth{namespace="{{namespace}}",pod="{{pod}}",app!="{{label "app"}}"})"#,
    ));
    let daemon = Daemon::start(rules.path(), &ns, &["--prometheus-url", &prom.url()]);
    daemon.wait_ready().await;
    run_pods(&scene, &["x", "y", "z", "w"]).await;

    for name in ["x", "z"] {
        scene
            .wait_gate(name, GATE, "True", "MetricsHealthy", &daemon)
            .await;
    }
    let g = scene
        .wait_gate("y", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    assert!(g.message.contains("queue=300 >= 100"), "{g:?}");
    let g = scene.wait_gate("w", GATE, "False", "NoData", &daemon).await;
    assert!(g.message.contains("no series"), "{g:?}");

    exporter.set_body(series(&[
        (&ns, "x", 400),
        (&ns, "y", 1),
        (&ns, "z", 3),
        (&ns, "w", 2),
    ]));
    scene
        .wait_gate("x", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    for name in ["y", "w"] {
        scene
            .wait_gate(name, GATE, "True", "MetricsHealthy", &daemon)
            .await;
    }

    // One query per pod per interval: four pods ask about four times as often as one would.
    let window = Duration::from_secs(5);
    let before = prometheus_queries(&prom).await;
    tokio::time::sleep(window).await;
    let queries = prometheus_queries(&prom).await - before;
    assert!(
        queries >= 2.0 * window.as_secs_f64(),
        "4 pods, 1s interval, {window:?}: only {queries} queries"
    );
}
