//! `podgate run` when a pod's metrics endpoint misbehaves: the `onError` and `onNoData`
//! policies as seen on the pod's condition, and a message that names what went wrong
//! (timeout, HTTP error, unparseable body, body over the limit, connection closed mid-body),
//! while the other pods of the namespace carry on.

use crate::support;

use std::time::Duration;

use support::daemon::{Daemon, rules_dir};
use support::labelled_queue as queue;
use support::scene::Scene;
use support::{TestPod, unique_loopback_ip};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const GATE: &str = "podgate.dev/source-healthy";

/// Three rules on one gate, one per policy; a pod picks its rule with the label `policy`.
fn rules() -> String {
    let mut out = String::from("rules:\n");
    for policy in ["fail", "pass", "keep"] {
        out.push_str(&format!(
            r#"  - name: on-{policy}
    conditionType: {GATE}
    selector: {{matchLabels: {{policy: {policy}}}}}
    interval: 1s
    timeout: 500ms
    failureThreshold: 1
    onNoData: {policy}
    onError: {policy}
    scrape: {{port: metrics}}
    vars:
      queue: {{scrape: 'max(work_queue_depth)'}}
    expr: 'queue < 100'
"#
        ));
    }
    out
}

fn pod(name: &str, policy: &str) -> TestPod {
    TestPod::new(name).gate(GATE).label("policy", policy)
}

/// Pods `fail`, `pass`, `keep` (one per policy) and `bystander` (policy fail, stays
/// healthy), all True/MetricsHealthy; returns their endpoints in that order.
async fn healthy_pods(scene: &Scene, daemon: &Daemon) -> [support::MetricsEndpoint; 4] {
    let eps = [
        scene.running_pod(pod("fail", "fail"), &queue(1)).await,
        scene.running_pod(pod("pass", "pass"), &queue(1)).await,
        scene.running_pod(pod("keep", "keep"), &queue(1)).await,
        scene.running_pod(pod("bystander", "fail"), &queue(1)).await,
    ];
    for name in ["fail", "pass", "keep", "bystander"] {
        scene
            .wait_gate(name, GATE, "True", "MetricsHealthy", daemon)
            .await;
    }
    eps
}

#[tokio::test]
async fn on_error_policies_fail_pass_and_keep() {
    let scene = Scene::new("on-error").await;
    let daemon = scene.start_daemon(&rules(), &[]).await;
    let [fail, pass, keep, _bystander] = healthy_pods(&scene, &daemon).await;
    let keep_before = scene.gate("keep", GATE).await;
    let bystander_rv = scene.resource_version("bystander").await;

    for ep in [&fail, &pass, &keep] {
        ep.set_status(500);
    }
    let g = scene
        .wait_gate("fail", GATE, "False", "SourceError", &daemon)
        .await;
    assert!(g.message.contains("HTTP status 500"), "{g:?}");
    assert!(g.message.contains("(rule on-fail)"), "{g:?}");
    let g = scene
        .wait_gate("pass", GATE, "True", "SourceError", &daemon)
        .await;
    assert!(g.message.contains("HTTP status 500"), "{g:?}");
    assert!(g.message.contains("(rule on-pass)"), "{g:?}");

    // keep: the condition stays exactly as it was while the endpoint keeps failing.
    let scrapes = keep.requests();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        keep.requests() >= scrapes + 2,
        "the keep pod is still scraped"
    );
    assert_eq!(scene.gate("keep", GATE).await, keep_before);

    // The healthy pod next door was not touched at all.
    assert_eq!(scene.resource_version("bystander").await, bystander_rv);
    let g = scene.gate("bystander", GATE).await;
    assert_eq!(
        g.as_ref().map(|g| (g.status.as_str(), g.reason.as_str())),
        Some(("True", "MetricsHealthy"))
    );

    // The endpoints recover: every policy ends up healthy again.
    for ep in [&fail, &pass, &keep] {
        ep.set_status(200);
    }
    for name in ["fail", "pass"] {
        scene
            .wait_gate(name, GATE, "True", "MetricsHealthy", &daemon)
            .await;
    }
    let errors = daemon
        .sum(
            "podgate_evaluations_total",
            &[("rule", "on-keep"), ("result", "error")],
        )
        .await;
    assert!(errors >= 2.0, "keep counted its errors: {errors}");
}

#[tokio::test]
async fn on_no_data_policies_fail_pass_and_keep() {
    let scene = Scene::new("on-nodata").await;
    let daemon = scene.start_daemon(&rules(), &[]).await;
    let [fail, pass, keep, _bystander] = healthy_pods(&scene, &daemon).await;
    let keep_before = scene.gate("keep", GATE).await;
    let bystander_rv = scene.resource_version("bystander").await;

    // The series disappears (the endpoint itself answers fine).
    let other = "# TYPE unrelated gauge\nunrelated 1\n";
    for ep in [&fail, &pass, &keep] {
        ep.set_body(other);
    }
    let g = scene
        .wait_gate("fail", GATE, "False", "NoData", &daemon)
        .await;
    assert!(g.message.contains("no data"), "{g:?}");
    assert!(g.message.contains("queue"), "names the variable: {g:?}");
    assert!(
        g.message.contains("work_queue_depth"),
        "names the series: {g:?}"
    );
    let g = scene
        .wait_gate("pass", GATE, "True", "NoData", &daemon)
        .await;
    assert!(g.message.contains("no data"), "{g:?}");

    let scrapes = keep.requests();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(keep.requests() >= scrapes + 2);
    assert_eq!(scene.gate("keep", GATE).await, keep_before);
    assert_eq!(scene.resource_version("bystander").await, bystander_rv);

    // After keeping, evaluation goes on as usual once data is back.
    keep.set_body(queue(500));
    let g = scene
        .wait_gate("keep", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    assert!(g.message.contains("queue=500 >= 100"), "{g:?}");
    for ep in [&fail, &pass] {
        ep.set_body(queue(2));
    }
    for name in ["fail", "pass"] {
        scene
            .wait_gate(name, GATE, "True", "MetricsHealthy", &daemon)
            .await;
    }
}

/// Serves one fixed raw HTTP response to every connection, then closes it: for answers
/// `MetricsEndpoint` cannot give (a body cut short, a chunked body with no length).
struct RawEndpoint {
    port: u16,
    ip: std::net::Ipv4Addr,
    task: JoinHandle<()>,
}

impl RawEndpoint {
    async fn start(response: Vec<u8>) -> RawEndpoint {
        let ip = unique_loopback_ip();
        let listener = TcpListener::bind((ip, 0))
            .await
            .unwrap_or_else(|e| panic!("raw endpoint: binding {ip}: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("raw endpoint: {e}"))
            .port();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    // Read the request head, then answer and close.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = conn.write_all(&response).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        RawEndpoint { port, ip, task }
    }
}

impl Drop for RawEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn each_kind_of_source_failure_is_a_source_error_that_says_what_happened() {
    const LIMIT: usize = 4096;
    let scene = Scene::new("source-failures").await;
    let rules = rules_dir(&rules());
    let daemon = Daemon::start(
        rules.path(),
        scene.name(),
        &["--body-limit", &LIMIT.to_string()],
    );
    daemon.wait_ready().await;

    let healthy = scene.running_pod(pod("healthy", "fail"), &queue(1)).await;
    let slow = scene.running_pod(pod("slow", "fail"), &queue(1)).await;
    slow.set_delay(Duration::from_secs(3));
    let broken = scene.running_pod(pod("broken", "fail"), &queue(1)).await;
    broken.set_status(500);
    let garbage = "# TYPE work_queue_depth gauge\nwork_queue_depth{queue=\"a\" 1\n";
    let _garbage = scene.running_pod(pod("garbage", "fail"), garbage).await;
    let big_body = queue(1) + &"# padding to exceed the body limit\n".repeat(LIMIT / 30);
    assert!(big_body.len() > LIMIT);
    let _big = scene.running_pod(pod("big", "fail"), &big_body).await;

    // A body announced at 2000 bytes (under the limit), cut off after a few lines.
    let partial = queue(1);
    let cut = RawEndpoint::start(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
             Content-Length: 2000\r\n\r\n{partial}"
        )
        .into_bytes(),
    )
    .await;
    TestPod::new("cut")
        .gate(GATE)
        .label("policy", "fail")
        .port("metrics", cut.port)
        .create(&scene.pods)
        .await;
    scene.kubelet.run("cut", cut.ip, true).await;

    // A chunked body (no Content-Length up front) that grows past the limit.
    let mut chunked = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
    );
    let line = "work_queue_depth{queue=\"a\"} 1\n";
    for _ in 0..(2 * LIMIT / line.len()) {
        chunked.push_str(&format!("{:x}\r\n{line}\r\n", line.len()));
    }
    chunked.push_str("0\r\n\r\n");
    let streamed = RawEndpoint::start(chunked.into_bytes()).await;
    TestPod::new("streamed")
        .gate(GATE)
        .label("policy", "fail")
        .port("metrics", streamed.port)
        .create(&scene.pods)
        .await;
    scene.kubelet.run("streamed", streamed.ip, true).await;

    let expect: [(&str, &[&str]); 6] = [
        ("slow", &["timed out after 500ms", &slow.url()]),
        ("broken", &["HTTP status 500", &broken.url()]),
        ("garbage", &["invalid exposition", "line 2"]),
        ("big", &[&format!("larger than the {LIMIT} byte limit")]),
        (
            "streamed",
            &[&format!("larger than the {LIMIT} byte limit")],
        ),
        ("cut", &["reading body"]),
    ];
    for (name, needles) in expect {
        let g = scene
            .wait_gate(name, GATE, "False", "SourceError", &daemon)
            .await;
        for needle in needles {
            assert!(
                g.message.contains(needle),
                "pod {name}: message should contain {needle:?}: {g:?}"
            );
        }
        assert!(g.message.contains("(rule on-fail)"), "{g:?}");
    }
    // The connection closed mid-body is named as such, not only as a generic decode error.
    let g = scene.gate("cut", GATE).await;
    let msg = g.map(|g| g.message).unwrap_or_default().to_lowercase();
    assert!(
        msg.contains("end of file before message length reached") || msg.contains("closed"),
        "the message says the body was cut short: {msg}"
    );

    // None of that touched the healthy pod.
    scene
        .wait_gate("healthy", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    assert!(healthy.requests() >= 1);
    let rv = scene.resource_version("healthy").await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(scene.resource_version("healthy").await, rv);

    let m = daemon.samples().await;
    let timeouts = support::daemon::sum_of(
        &m,
        "podgate_source_requests_total",
        &[("source", "scrape"), ("result", "timeout")],
    );
    assert!(timeouts >= 1.0, "timeouts are counted as such");
    let invalid = support::daemon::sum_of(
        &m,
        "podgate_source_requests_total",
        &[("source", "scrape"), ("result", "invalid")],
    );
    assert!(invalid >= 1.0, "unparseable bodies are counted as invalid");
}
