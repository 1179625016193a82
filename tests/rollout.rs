//! The effect podgate exists for, observed with the real components that produce it: the
//! Deployment and ReplicaSet controllers hold a rolling update while the new pod's gate is False
//! and finish it once the gate turns True; the EndpointSlice controller keeps the held pod out of
//! the Service's ready endpoints; a real kubelet (kubemark's hollow node) computes `Ready` from
//! podgate's condition without either side overwriting the other.
//!
//! The hollow-node tests run only inside the network namespace `scripts/test` creates (the
//! hollow kubelet gives every pod the private address 192.168.192.168); elsewhere they fail
//! and say so.

use crate::support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use support::daemon::{Daemon, rules_dir};
use support::fleet::{
    Check, Fleet, ROLLOUT_TIMEOUT, Rollout, RolloutView, Traffic, deployment, free_port, service,
};
use support::pods::{TEST_NODE, condition};
use support::scene::Scene;
use support::{
    Component, ControlPlane, MetricsEndpoint, PrivateControlPlane, Prometheus, TestPod,
    unique_loopback_ip, wait_for,
};

pub(crate) const GATE: &str = "podgate.dev/rollout-healthy";
/// The Deployment's `progressDeadlineSeconds`: short, so the held rollout is reported soon.
const PROGRESS_DEADLINE: i32 = 20;
pub(crate) const REPLICAS: usize = 3;
pub(crate) const APP: &str = "web";

/// The rule's expression and thresholds: under 1% of requests fail. A pod with no request
/// counters yet (or not two scrapes of them) has no data, which fails.
fn rule(name: &str, errors: &str, requests: &str, extra: &str) -> String {
    format!(
        r#"rules:
  - name: {name}
    conditionType: {GATE}
    interval: 2s
    timeout: 1s
    successThreshold: 1
    failureThreshold: 1
    onNoData: fail
    onError: fail
{extra}    vars:
      errors: {{{errors}}}
      requests: {{{requests}}}
    expr: 'isnan(errors) || errors / requests < 0.01'
"#
    )
}

/// Scrape mode: podgate reads each pod's own endpoint.
fn scrape_rule() -> String {
    rule(
        "web-errors",
        r#"scrape: 'sum(rate(http_requests_total{code=~"5.."}[10s]))'"#,
        r#"scrape: 'sum(rate(http_requests_total[10s]))'"#,
        "    scrape: {port: metrics}\n",
    )
}

/// Prometheus mode: per-pod series, labelled by Prometheus with the pod's namespace and name.
fn promql_rule() -> String {
    rule(
        "web-errors-promql",
        r#"promql: 'sum(rate(http_requests_total{namespace="{{namespace}}", pod="{{pod}}", code=~"5.."}[10s]))'"#,
        r#"promql: 'sum(rate(http_requests_total{namespace="{{namespace}}", pod="{{pod}}"}[10s]))'"#,
        "",
    )
}

pub(crate) async fn create_app(scene: &Scene, node: &str, port: u16) {
    Api::<Service>::namespaced(scene.admin.clone(), scene.name())
        .create(&PostParams::default(), &service(APP))
        .await
        .unwrap_or_else(|e| panic!("creating Service {APP}: {e}"));
    let d = deployment(
        APP,
        node,
        GATE,
        port,
        "v1",
        REPLICAS as i32,
        PROGRESS_DEADLINE,
    );
    scene
        .ns
        .api(scene.admin.clone())
        .create(&PostParams::default(), &d)
        .await
        .unwrap_or_else(|e| panic!("creating Deployment {APP}: {e}"));
}

pub(crate) fn gate_is(p: &support::fleet::PodSummary, status: &str) -> bool {
    p.gate.as_deref() == Some(status)
}

/// While the rollout to v2 is held: v1 keeps all its pods available and ready endpoints, v2
/// has no available pod, and no v2 pod is Ready, gated True or a ready endpoint.
pub(crate) fn held(v: &RolloutView) -> Result<(), String> {
    if let Some(old) = v.replica_set("v1") {
        let n = REPLICAS as i32;
        if old.desired != n || old.available != n || old.ready != n {
            return Err(format!("the v1 ReplicaSet lost pods: {old:?}"));
        }
    } else {
        return Err("the v1 ReplicaSet is gone".to_string());
    }
    if let Some(new) = v.replica_set("v2")
        && new.available != 0
    {
        return Err(format!("a v2 pod counts as available: {new:?}"));
    }
    for p in v.pods_of("v2") {
        if gate_is(p, "True") || p.ready.as_deref() == Some("True") {
            return Err(format!("a v2 pod passed: {p:?}"));
        }
        if let Some(e) = v.endpoint(&p.name)
            && e.ready == Some(true)
        {
            return Err(format!("a v2 pod is a ready endpoint: {e:?}"));
        }
    }
    let ready_v1 = v
        .pods_of("v1")
        .iter()
        .filter(|p| v.endpoint(&p.name).and_then(|e| e.ready) == Some(true))
        .count();
    if ready_v1 != REPLICAS {
        return Err(format!("{ready_v1} of the v1 pods are ready endpoints"));
    }
    Ok(())
}

/// The story: v1 serves; a rollout to v2, whose requests fail 30% of the time, is held (the
/// new pod's gate False, not available, not a ready endpoint, old pods untouched) until the
/// Deployment reports ProgressDeadlineExceeded; v2 heals and the rollout completes.
async fn hold_and_release(
    rollout: &Rollout<'_>,
    traffic: &Traffic,
    daemon: &Daemon,
    fleet: &Fleet,
) {
    wait_v1(rollout, daemon, fleet).await;

    // Roll to v2, which fails 30% of its requests.
    traffic.set_error_ratio("v2", 0.3);
    roll_to_v2(rollout).await;

    // One new pod (maxSurge 1), which podgate holds: gate False once its data shows the errors.
    let new_pod = rollout
        .wait(
            "the v2 pod gated False for its errors",
            ROLLOUT_TIMEOUT,
            daemon,
            Some(fleet),
            |v| {
                if let Err(why) = held(v) {
                    return Check::Fail(why);
                }
                let v2 = v.pods_of("v2");
                if v2.len() > 1 {
                    return Check::Fail(format!("{} v2 pods with maxSurge 1", v2.len()));
                }
                match v2.first() {
                    Some(p) if gate_is(p, "False") => Check::Done(p.name.clone()),
                    other => Check::Wait(format!("v2 pod: {other:?}")),
                }
            },
        )
        .await;
    let pods = rollout.pods();
    wait_for(
        "the v2 pod's gate False for its error ratio (after warm-up)",
        ROLLOUT_TIMEOUT,
        || async {
            let pod = pods.get(&new_pod).await.map_err(|e| e.to_string())?;
            match condition(&pod, GATE) {
                Some(c)
                    if c.status == "False"
                        && c.reason.as_deref() == Some("MetricsUnhealthy")
                        && c.message.as_deref().unwrap_or("").contains(">= 0.01") =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    // Held until the Deployment gives up on progress, and still held then.
    rollout
        .wait(
            "Progressing=False ProgressDeadlineExceeded, the v2 pod a not-ready endpoint",
            Duration::from_secs(PROGRESS_DEADLINE as u64) + ROLLOUT_TIMEOUT,
            daemon,
            Some(fleet),
            |v| {
                if let Err(why) = held(v) {
                    return Check::Fail(why);
                }
                let progressing = v.deployment_condition("Progressing");
                let endpoint = v.endpoint(&new_pod).map(|e| e.ready);
                if progressing
                    == Some(("False".to_string(), "ProgressDeadlineExceeded".to_string()))
                    && endpoint == Some(Some(false))
                {
                    Check::Done(())
                } else {
                    Check::Wait(format!(
                        "Progressing {progressing:?}, v2 endpoint ready {endpoint:?}"
                    ))
                }
            },
        )
        .await;
    let view = rollout
        .view()
        .await
        .unwrap_or_else(|e| panic!("reading the rollout: {e}"));
    let new_rs = view
        .replica_set("v2")
        .unwrap_or_else(|| panic!("no v2 ReplicaSet:\n{}", view.summary()));
    assert_eq!(
        (new_rs.desired, new_rs.available),
        (1, 0),
        "the v2 ReplicaSet holds one unavailable pod:\n{}",
        view.summary()
    );

    // v2 heals: its gate turns True, and the rollout goes through one pod at a time.
    traffic.set_error_ratio("v2", 0.0);
    wait_v2_complete(rollout, daemon, fleet, |_| Ok(())).await;
    let gate = support::scene::gate_of_pod(
        &pods
            .get(&new_pod)
            .await
            .unwrap_or_else(|e| panic!("reading pod {new_pod}: {e}")),
        GATE,
    );
    assert_eq!(
        gate.as_ref().map(|g| g.status.as_str()),
        Some("True"),
        "the first v2 pod, held before, is gated True after healing: {gate:?}"
    );
}

/// Waits for the first rollout: v1's pods available, gated True and ready endpoints.
pub(crate) async fn wait_v1(rollout: &Rollout<'_>, daemon: &Daemon, fleet: &Fleet) {
    let n = REPLICAS as i32;
    rollout
        .wait(
            "v1 rolled out: 3 pods available, gated True and ready endpoints",
            ROLLOUT_TIMEOUT,
            daemon,
            Some(fleet),
            |v| {
                let counts = v.deployment_counts();
                let v1 = v.pods_of("v1");
                let ready_endpoints = v.endpoints.iter().filter(|e| e.ready == Some(true)).count();
                if counts == (n, n, n, n)
                    && v1.len() == REPLICAS
                    && v1.iter().all(|p| gate_is(p, "True"))
                    && ready_endpoints == REPLICAS
                {
                    Check::Done(())
                } else {
                    Check::Wait(format!(
                        "counts {counts:?}, {ready_endpoints} ready endpoints"
                    ))
                }
            },
        )
        .await;
}

/// Rolls the Deployment to v2: a new pod template, so a new ReplicaSet and revision.
pub(crate) async fn roll_to_v2(rollout: &Rollout<'_>) {
    let patch = json!({ "spec": { "template": {
        "metadata": { "labels": { "version": "v2" } },
        "spec": { "containers": [{ "name": support::pods::CONTAINER, "image": "registry.invalid/web:v2" }] },
    }}});
    rollout
        .deployments()
        .patch(APP, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap_or_else(|e| panic!("rolling {APP} to v2: {e}"));
}

/// Waits for the rollout to v2 to complete: 3 v2 pods available, gated True and ready
/// endpoints, v1 scaled to 0. `invariant` must hold at every poll on the way.
pub(crate) async fn wait_v2_complete(
    rollout: &Rollout<'_>,
    daemon: &Daemon,
    fleet: &Fleet,
    invariant: impl Fn(&RolloutView) -> Result<(), String>,
) {
    let n = REPLICAS as i32;
    rollout
        .wait(
            "the rollout to v2 complete: 3 v2 pods available and ready endpoints, v1 at 0",
            Duration::from_secs(3) * ROLLOUT_TIMEOUT.as_secs() as u32,
            daemon,
            Some(fleet),
            |v| {
                if let Err(why) = invariant(v) {
                    return Check::Fail(why);
                }
                let counts = v.deployment_counts();
                let old = v.replica_set("v1");
                let v2 = v.pods_of("v2");
                let ready: Vec<&str> = v
                    .endpoints
                    .iter()
                    .filter(|e| e.ready == Some(true))
                    .map(|e| e.pod.as_str())
                    .collect();
                let done = counts == (n, n, n, n)
                    && old.is_some_and(|o| o.desired == 0 && o.replicas == 0)
                    && v.pods.len() == REPLICAS
                    && v2.len() == REPLICAS
                    && v2.iter().all(|p| gate_is(p, "True"))
                    && v.endpoints.len() == REPLICAS
                    && ready.len() == REPLICAS
                    && v2.iter().all(|p| ready.contains(&p.name.as_str()))
                    && v.deployment_condition("Progressing")
                        == Some(("True".to_string(), "NewReplicaSetAvailable".to_string()));
                if done {
                    Check::Done(())
                } else {
                    Check::Wait(format!(
                        "counts {counts:?}, v1 {old:?}, ready endpoints {ready:?}"
                    ))
                }
            },
        )
        .await;
}

/// A Service and a gated Deployment run by the stand-in kubelet (Ready computed as a kubelet
/// does), podgate with `rules_yaml` scraping each pod, and the hold-and-release story.
async fn rollout_with_the_stand_in_kubelet(prefix: &str, rules_yaml: &str) -> Daemon {
    let app = StandInApp::start(prefix, rules_yaml, Traffic::new()).await;
    let rollout = app.rollout();
    hold_and_release(&rollout, &app.traffic, &app.daemon, &app.fleet).await;
    app.daemon
}

/// A gated Deployment (v1, [`REPLICAS`] pods) behind a Service, run by the stand-in kubelet
/// with `traffic`, and podgate with `rules_yaml` scraping each pod.
pub(crate) struct StandInApp {
    pub cp: &'static ControlPlane,
    pub scene: Scene,
    pub traffic: Traffic,
    pub fleet: Fleet,
    pub daemon: Daemon,
    pub rules: tempfile::TempDir,
}

impl StandInApp {
    pub(crate) async fn start(prefix: &str, rules_yaml: &str, traffic: Traffic) -> StandInApp {
        let cp = ControlPlane::get();
        cp.assert_controller_manager_running();
        let scene = Scene::new(prefix).await;
        let port = free_port();
        let fleet = Fleet::stand_in(
            cp,
            scene.admin.clone(),
            scene.name(),
            port,
            traffic.by_version(),
        );
        let rules = rules_dir(rules_yaml);
        let daemon = Daemon::start(rules.path(), scene.name(), &[]);
        daemon.wait_ready().await;
        create_app(&scene, TEST_NODE, port).await;
        StandInApp {
            cp,
            scene,
            traffic,
            fleet,
            daemon,
            rules,
        }
    }

    pub(crate) fn rollout(&self) -> Rollout<'static> {
        Rollout::new(
            self.cp,
            self.scene.admin.clone(),
            self.scene.name(),
            APP,
            GATE,
        )
    }
}

/// The same on the hollow node: the real kubelet computes Ready, and podgate reads each pod's
/// series from Prometheus 3 (`file_sd` targets labelled with the pods), never the pods' address.
async fn rollout_on_the_hollow_node(prefix: &str, rules_yaml: &str) {
    let cp = ControlPlane::get();
    let node = cp.hollow_node().to_string();
    cp.check_running(Component::HollowKubelet)
        .unwrap_or_else(|why| panic!("{why}"));
    cp.assert_controller_manager_running();
    let scene = Scene::new(prefix).await;
    let traffic = Traffic::new();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let targets = dir.path().join("targets.json");
    let fleet = Fleet::beside_kubelet(
        scene.admin.clone(),
        scene.name(),
        &node,
        targets.clone(),
        traffic.by_version(),
    );
    let prom = Prometheus::start(&prometheus_file_sd(&targets)).await;
    let rules = rules_dir(rules_yaml);
    let daemon = Daemon::start(
        rules.path(),
        scene.name(),
        &["--prometheus-url", &prom.url()],
    );
    daemon.wait_ready().await;
    // The port is never used: the pods' metrics reach podgate through Prometheus.
    create_app(&scene, &node, 9090).await;
    let rollout = Rollout::new(cp, scene.admin.clone(), scene.name(), APP, GATE);
    hold_and_release(&rollout, &traffic, &daemon, &fleet).await;
}

/// Test 1: the Deployment, ReplicaSet and EndpointSlice controllers with the stand-in kubelet
/// (Ready computed as a kubelet does), podgate scraping each pod.
#[tokio::test]
async fn a_rollout_to_a_failing_version_is_held_and_completes_once_it_heals() {
    rollout_with_the_stand_in_kubelet("rollout-scrape", &scrape_rule()).await;
}

/// Prometheus scraping `file_sd` targets (the fleet's endpoints, labelled with their pods).
fn prometheus_file_sd(targets: &std::path::Path) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: pods\n    file_sd_configs:\n      - files: ['{}']\n",
        targets.display()
    )
}

/// Test 3: the same rollout on the hollow node: the real kubelet computes Ready, podgate reads
/// each pod's series from a real Prometheus (nothing contacts the pods' address).
#[tokio::test]
async fn a_rollout_on_the_real_kubelet_is_held_and_completes_once_it_heals() {
    rollout_on_the_hollow_node("rollout-kubelet", &promql_rule()).await;
}

/// The kubelet's own conditions, which podgate must never erase.
const KUBELET_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "ContainersReady",
    "PodScheduled",
    "Ready",
];

/// `(podgate's condition status, its lastTransitionTime, Ready status, Ready reason)`, after
/// checking that every kubelet condition is there.
fn conditions_of(pod: &Pod) -> Result<(String, String, String, String), String> {
    for type_ in KUBELET_CONDITIONS {
        if condition(pod, type_).is_none() {
            return Err(format!(
                "kubelet condition {type_} missing: {:?}",
                pod.status
            ));
        }
    }
    let gate = condition(pod, GATE).ok_or_else(|| format!("no {GATE}: {:?}", pod.status))?;
    let ready = condition(pod, "Ready").ok_or("no Ready")?;
    Ok((
        gate.status.clone(),
        gate.last_transition_time
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        ready.status.clone(),
        ready.reason.clone().unwrap_or_default(),
    ))
}

/// When the hollow kubelet last wrote the pod's status (its managedFields entry).
fn kubelet_write_time(pod: &Pod) -> Option<Timestamp> {
    pod.metadata
        .managed_fields
        .as_ref()?
        .iter()
        .filter(|m| {
            m.manager.as_deref() == Some("hollow-kubelet")
                && m.subresource.as_deref() == Some("status")
        })
        .filter_map(|m| m.time.as_ref().map(|t| t.0))
        .max()
}

fn healthy_series(namespace: &str, pod: &str, value: u32) -> String {
    format!(
        "# TYPE podgate_test_healthy gauge\n\
         podgate_test_healthy{{namespace=\"{namespace}\",pod=\"{pod}\"}} {value}\n"
    )
}

/// Test 2: the real kubelet honours podgate's gate, and neither overwrites the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_kubelet_honours_the_gate_and_neither_side_erases_the_other() {
    // A control plane of its own: this test restarts its kubelet.
    let cp = tokio::task::spawn_blocking(PrivateControlPlane::start_with_hollow_node)
        .await
        .unwrap_or_else(|e| panic!("starting a private control plane: {e}"));
    let node = cp.hollow_node().to_string();
    let scene = Scene::new_on(&cp, "kubelet-gate").await;
    let ns = scene.name().to_string();

    // The verdict comes from Prometheus, never from the pod's address.
    let exporter = MetricsEndpoint::start(unique_loopback_ip()).await;
    exporter.set_body(healthy_series(&ns, "web", 0));
    let prom = Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: exporter\n    honor_labels: true\n    \
         static_configs:\n      - targets: ['{}']\n",
        exporter.addr()
    ))
    .await;
    let rules = rules_dir(&format!(
        r#"rules:
  - name: web-healthy
    conditionType: {GATE}
    interval: 2s
    timeout: 1s
    successThreshold: 1
    failureThreshold: 1
    onNoData: fail
    onError: fail
    vars:
      healthy: {{promql: 'max(podgate_test_healthy{{namespace="{{{{namespace}}}}", pod="{{{{pod}}}}"}})'}}
    expr: 'healthy > 0'
"#
    ));
    let daemon = Daemon::start_with_kubeconfig(
        cp.podgate_kubeconfig_path(),
        rules.path(),
        &ns,
        &["--prometheus-url", &prom.url()],
    );
    daemon.wait_ready().await;

    // Nothing in this test writes the pod's status: the kubelet and podgate do.
    TestPod::new("web")
        .gate(GATE)
        .node(&node)
        .create(&scene.pods)
        .await;
    let pods = scene.pods.clone();
    let until = |gate: &'static str, ready: &'static str, reason: &'static str| {
        let pods = pods.clone();
        async move {
            wait_for(
                &format!("gate {gate}, Ready {ready} ({reason}) from the kubelet"),
                Duration::from_secs(60),
                || async {
                    let pod = pods.get("web").await.map_err(|e| e.to_string())?;
                    match conditions_of(&pod) {
                        Ok((g, t, r, why)) if g == gate && r == ready && why == reason => Ok(t),
                        other => Err(format!("{other:?}")),
                    }
                },
            )
            .await
        }
    };
    until("False", "False", "ReadinessGatesNotReady").await;
    let ready_message = condition(&scene.pod("web").await, "Ready")
        .and_then(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        ready_message.contains(GATE),
        "the kubelet's Ready message names the gate: {ready_message:?}"
    );

    // A new pod without series is warming first (False, Warming), then, once its series could
    // exist, "no data" (False, NoData): two writes, one per reason.
    wait_for(
        "the warm-up to end: gate False, NoData",
        Duration::from_secs(60),
        || async {
            let pod = pods.get("web").await.map_err(|e| e.to_string())?;
            match condition(&pod, GATE).and_then(|c| c.reason.clone()) {
                Some(r) if r == "NoData" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(daemon.writes_ok().await, 2.0, "Warming, then NoData");

    // Transitions: each is one podgate write, and the kubelet follows on its own.
    let mut transitions = 2.0;
    for (value, gate, ready, reason) in [
        (1, "True", "True", ""),
        (0, "False", "False", "ReadinessGatesNotReady"),
        (1, "True", "True", ""),
    ] {
        exporter.set_body(healthy_series(&ns, "web", value));
        until(gate, ready, reason).await;
        transitions += 1.0;
        assert_eq!(
            daemon.writes_ok().await,
            transitions,
            "one podgate write per transition\ndaemon log:\n{}",
            daemon.log_tail(40)
        );
    }
    let settled = conditions_of(&scene.pod("web").await).unwrap_or_else(|e| panic!("{e}"));

    // Several kubelet status syncs (every 10 s in the hollow kubelet): nothing changes, nobody
    // writes, no condition goes missing.
    let rv = scene.resource_version("web").await;
    let hold = std::time::Instant::now();
    while hold.elapsed() < Duration::from_secs(25) {
        let pod = scene.pod("web").await;
        let now = conditions_of(&pod).unwrap_or_else(|e| panic!("during the kubelet's syncs: {e}"));
        assert_eq!(
            now, settled,
            "conditions changed during the kubelet's syncs"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        scene.resource_version("web").await,
        rv,
        "the pod was written while nothing changed (podgate and the kubelet fighting?)"
    );
    assert_eq!(
        daemon.writes_ok().await,
        transitions,
        "podgate wrote without a transition"
    );

    // A kubelet restart: the new kubelet syncs the pod's status and leaves podgate's condition.
    let restarted = Timestamp::now();
    cp.down(Component::HollowKubelet).await;
    cp.up(Component::HollowKubelet).await;
    wait_for(
        "the restarted kubelet writes the pod's status",
        Duration::from_secs(60),
        || async {
            let pod = pods.get("web").await.map_err(|e| e.to_string())?;
            match kubelet_write_time(&pod) {
                Some(t) if t.as_second() >= restarted.as_second() => Ok(()),
                other => Err(format!(
                    "last kubelet write {other:?}, restarted {restarted}"
                )),
            }
        },
    )
    .await;
    let after =
        conditions_of(&scene.pod("web").await).unwrap_or_else(|e| panic!("after the restart: {e}"));
    assert_eq!(
        after, settled,
        "podgate's condition and Ready after the kubelet restart"
    );
    assert_eq!(
        daemon.writes_ok().await,
        transitions,
        "podgate had to write again after the kubelet restart"
    );

    // The restarted kubelet still honours the gate.
    exporter.set_body(healthy_series(&ns, "web", 0));
    until("False", "False", "ReadinessGatesNotReady").await;
    assert_eq!(daemon.writes_ok().await, transitions + 1.0);
}

// ------------------------------------------------ no True verdict before the data can exist

/// A rule shaped like the README's before the warm-up existed: `onNoData: pass`, an
/// `isnan(errors)` guard, `failureThreshold: 3`, rates over a window. Its first evaluation of a
/// new pod has one point per counter: once that read as "no data, pass" and let a bad version
/// replace the old pods. Now that evaluation is `Warming` and gives no verdict.
fn readme_shaped_rule() -> String {
    format!(
        r#"rules:
  - name: web-errors-readme
    conditionType: {GATE}
    interval: 2s
    timeout: 1s
    failureThreshold: 3
    onNoData: pass
    onError: keep
    scrape: {{port: metrics}}
    vars:
      errors:   {{scrape: 'sum(rate(http_requests_total{{code=~"5.."}}[10s]))'}}
      requests: {{scrape: 'sum(rate(http_requests_total[10s]))'}}
    expr: 'requests == 0 || isnan(errors) || errors / requests < 0.01'
"#
    )
}

/// Issue "a bad version never gets in on no data yet", test 1: under the README-shaped rule
/// with `onNoData: pass`, a rollout to a 30%-error version keeps all three old pods (checked
/// at every poll: no new pod is ever gated True, Ready, available or a ready endpoint) and
/// ends ProgressDeadlineExceeded; healed, it completes.
#[tokio::test]
async fn on_no_data_pass_does_not_let_a_bad_version_in_while_its_windows_warm_up() {
    let daemon = rollout_with_the_stand_in_kubelet("rollout-nodata", &readme_shaped_rule()).await;
    let warming = daemon
        .sum(
            "podgate_evaluations_total",
            &[("rule", "web-errors-readme"), ("result", "warming")],
        )
        .await;
    assert!(warming >= 1.0, "new pods were warming first: {warming}");
}

/// The same with a batched PromQL rule against Prometheus 3, on the real kubelet: a new pod has
/// no series yet, which is warming (not "no data, pass") until its range plus one interval.
#[tokio::test]
async fn a_batched_promql_rule_with_on_no_data_pass_holds_a_bad_rollout() {
    rollout_on_the_hollow_node(
        "rollout-batched",
        &format!(
            r#"rules:
  - name: web-errors-batched
    conditionType: {GATE}
    interval: 2s
    timeout: 1s
    failureThreshold: 1
    onNoData: pass
    onError: keep
    vars:
      ratio:
        promql: >-
          sum by (namespace, pod) (rate(http_requests_total{{code=~"5.."}}[10s]))
          / sum by (namespace, pod) (rate(http_requests_total[10s]))
    expr: 'ratio < 0.01'
"#
        ),
    )
    .await;
}

/// A healthy new pod gets in after the warm-up and no later: its first evaluation is warming,
/// the next one (one interval later, when rate() has two points) sets the gate True. Prints the
/// time from ContainersReady to the gate True, at intervals of 2 s and 10 s.
#[tokio::test]
async fn a_healthy_new_pod_is_let_in_one_interval_after_its_first_scrape() {
    let scene = Scene::new("warmup-delay").await;
    let traffic = Traffic::new();
    for interval in [2u64, 10] {
        let rule_name = format!("warm-{interval}s");
        let gate = format!("podgate.dev/warm-{interval}s");
        let rules = rules_dir(&format!(
            r#"rules:
  - name: {rule_name}
    conditionType: {gate}
    interval: {interval}s
    timeout: 1s
    onNoData: fail
    scrape: {{port: metrics}}
    vars:
      errors:   {{scrape: 'sum(rate(http_requests_total{{code=~"5.."}}[1m]))'}}
      requests: {{scrape: 'sum(rate(http_requests_total[1m]))'}}
    expr: 'requests == 0 || isnan(errors) || errors / requests < 0.01'
"#
        ));
        let daemon = Daemon::start(rules.path(), scene.name(), &[]);
        daemon.wait_ready().await;
        let name = format!("web-{interval}s");
        let ep = MetricsEndpoint::start(unique_loopback_ip()).await;
        ep.set_body_fn(traffic.counters("v1"));
        TestPod::new(&name)
            .gate(&gate)
            .port("metrics", ep.port())
            .create(&scene.pods)
            .await;
        let pod = scene.kubelet.run(&name, ep.ip(), true).await;
        let ready_at = condition(&pod, "ContainersReady")
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0)
            .unwrap_or_else(|| panic!("no ContainersReady time on {name}"));
        let g = scene
            .wait_gate_within(
                &name,
                &gate,
                "True",
                "MetricsHealthy",
                &daemon,
                Duration::from_secs(4 * interval + 30),
            )
            .await;
        let evaluations = |result: &'static str| {
            let (daemon, rule_name) = (&daemon, rule_name.as_str());
            async move {
                daemon
                    .sum(
                        "podgate_evaluations_total",
                        &[("rule", rule_name), ("result", result)],
                    )
                    .await
            }
        };
        assert_eq!(evaluations("warming").await, 1.0, "one warming evaluation");
        assert_eq!(evaluations("fail").await, 0.0);
        assert_eq!(evaluations("nodata").await, 0.0);
        let true_at: Timestamp = g
            .last_transition
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no transition time: {g:?}"));
        let delay = true_at.duration_since(ready_at);
        eprintln!("interval {interval}s: ContainersReady -> gate True in {delay:#}");
    }
}
