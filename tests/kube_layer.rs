//! The Kubernetes layer against a real API server, with podgate's own RBAC (the `podgate`
//! user's kubeconfig): the pod watcher, the gate writer and its events, and leader election.

use crate::support;

use support::proxy::Proxy;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::events::v1::Event as EventV1;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use podgate::decision::engine::{GateUpdate, PodKey};
use podgate::decision::gate::Override;
use podgate::decision::{Condition, Reason};
use podgate::kube::lease::{LeaderElection, LeaseConfig};
use podgate::kube::watch::{PodEvent, PodSnapshot, PodWatcher, WatchScope};
use podgate::kube::write::{WriteResult, Writer, WriterConfig, status_patch};
use podgate::kube::{EventRecorder, connect};
use serde_json::json;
use support::pods::{TEST_NODE, delete_pod_now};
use support::{
    ControlPlane, Kubelet, TestNamespace, TestPod, condition, condition_status, unique_loopback_ip,
    unique_suffix, wait_for,
};
use tokio::sync::{mpsc, watch};

const GATE: &str = "podgate.dev/kube-layer";
const WAIT: Duration = Duration::from_secs(20);

async fn podgate_client() -> Client {
    support::install_crypto_provider();
    let path = ControlPlane::get().podgate_kubeconfig_path();
    match connect(Some(path)).await {
        Ok(c) => c,
        Err(e) => panic!("podgate client from {}: {e}", path.display()),
    }
}

/// Receives pod events until one satisfies `want`; fails the test after `WAIT`.
async fn next_matching(
    rx: &mut mpsc::Receiver<PodEvent>,
    what: &str,
    mut want: impl FnMut(&PodEvent) -> bool,
) -> PodEvent {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) if want(&e) => return e,
            Ok(Some(e)) => seen.push(e),
            Ok(None) => panic!("{what}: the watcher stopped; seen: {seen:#?}"),
            Err(_) => panic!("{what}: timed out after {WAIT:?}; seen: {seen:#?}"),
        }
    }
}

fn upsert_of<'a>(e: &'a PodEvent, name: &str) -> Option<&'a PodSnapshot> {
    match e {
        PodEvent::Upsert(s) if s.key.name == name => Some(s),
        _ => None,
    }
}

/// Nothing but events about other pods arrive for `quiet`.
async fn assert_no_event_for(rx: &mut mpsc::Receiver<PodEvent>, name: &str, quiet: Duration) {
    let deadline = tokio::time::Instant::now() + quiet;
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        let about = match &e {
            PodEvent::Upsert(s) => s.key.name == name,
            PodEvent::Delete(k) => k.name == name,
            PodEvent::Synced => false,
        };
        assert!(!about, "unexpected event for {name}: {e:#?}");
    }
}

fn start_watcher(client: Client, scope: WatchScope) -> mpsc::Receiver<PodEvent> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(PodWatcher::new(client, scope).run(tx));
    rx
}

async fn patch_annotations(api: &Api<Pod>, name: &str, annotations: serde_json::Value) -> Pod {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "annotations": annotations } })),
    )
    .await
    .unwrap_or_else(|e| panic!("annotating pod {name}: {e}"))
}

#[tokio::test]
async fn watcher_sees_pods_appear_change_and_disappear() {
    let ns = TestNamespace::new("kube-watch").await;
    let admin_pods: Api<Pod> = ns.api(ns.admin_client());
    let kubelet = Kubelet::new(ns.admin_client(), ns.name());
    let mut rx = start_watcher(
        podgate_client().await,
        WatchScope {
            namespaces: vec![ns.name().to_string()],
            node_name: None,
        },
    );
    // An empty namespace lists at once.
    next_matching(&mut rx, "initial list complete", |e| {
        matches!(e, PodEvent::Synced)
    })
    .await;

    TestPod::new("web")
        .gate(GATE)
        .label("app", "web")
        .annotation("prometheus.io/path", "/stats")
        .port("metrics", 9100)
        .create(&admin_pods)
        .await;
    let e = next_matching(&mut rx, "web created", |e| upsert_of(e, "web").is_some()).await;
    let s = upsert_of(&e, "web").cloned().expect("an upsert");
    assert_eq!(s.key, PodKey::new(ns.name(), "web"));
    assert!(!s.info.uid.is_empty());
    assert_eq!(s.info.gates, [GATE]);
    assert_eq!(s.info.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(s.prometheus_path.as_deref(), Some("/stats"));
    assert_eq!(s.prometheus_port, None);
    assert_eq!(s.container_ports, [("metrics".to_string(), 9100)]);
    assert_eq!(s.node_name.as_deref(), Some(TEST_NODE));
    assert_eq!(s.pod_ip, None);
    assert_eq!(s.info.containers_ready_since, None);
    assert!(!s.evaluable());

    // The kubelet starts it: phase, IP and ContainersReady arrive.
    let ip = unique_loopback_ip();
    kubelet.run("web", ip, true).await;
    let e = next_matching(&mut rx, "web running and ready", |e| {
        upsert_of(e, "web").is_some_and(PodSnapshot::evaluable)
    })
    .await;
    let s = upsert_of(&e, "web").cloned().expect("an upsert");
    assert_eq!(s.pod_ip, Some(ip.into()));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert!(s.info.containers_ready_since.is_some());

    // A change podgate does not use is not reported; one it uses is. Watch events arrive in
    // order, so the next event about the pod must be the second change.
    patch_annotations(&admin_pods, "web", json!({ "unrelated": "x" })).await;
    patch_annotations(&admin_pods, "web", json!({ "prometheus.io/port": "9100" })).await;
    let e = next_matching(&mut rx, "the next event about web", |e| match e {
        PodEvent::Upsert(s) => s.key.name == "web",
        PodEvent::Delete(k) => k.name == "web",
        PodEvent::Synced => false,
    })
    .await;
    assert_eq!(
        upsert_of(&e, "web").and_then(|s| s.prometheus_port.as_deref()),
        Some("9100"),
        "the unrelated annotation was reported: {e:#?}"
    );

    // Override on the pod, then on the namespace.
    patch_annotations(
        &admin_pods,
        "web",
        json!({ "podgate.dev/override": "true" }),
    )
    .await;
    next_matching(&mut rx, "pod override", |e| {
        upsert_of(e, "web").is_some_and(|s| s.info.override_by == Some(Override::Pod))
    })
    .await;
    patch_annotations(&admin_pods, "web", json!({ "podgate.dev/override": null })).await;
    next_matching(&mut rx, "pod override lifted", |e| {
        upsert_of(e, "web").is_some_and(|s| s.info.override_by.is_none())
    })
    .await;
    let namespaces: Api<Namespace> = Api::all(ns.admin_client());
    let annotate_ns = |value: serde_json::Value| {
        let namespaces = namespaces.clone();
        let name = ns.name().to_string();
        async move {
            namespaces
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "metadata": { "annotations": {
                        "podgate.dev/override": value
                    }}})),
                )
                .await
                .unwrap_or_else(|e| panic!("annotating namespace {name}: {e}"))
        }
    };
    annotate_ns(json!("true")).await;
    next_matching(&mut rx, "namespace override", |e| {
        upsert_of(e, "web").is_some_and(|s| s.info.override_by == Some(Override::Namespace))
    })
    .await;
    annotate_ns(serde_json::Value::Null).await;
    next_matching(&mut rx, "namespace override lifted", |e| {
        upsert_of(e, "web").is_some_and(|s| s.info.override_by.is_none())
    })
    .await;

    delete_pod_now(&admin_pods, "web").await;
    next_matching(
        &mut rx,
        "web deleted",
        |e| matches!(e, PodEvent::Delete(k) if k.name == "web"),
    )
    .await;
}

#[tokio::test]
async fn node_local_watch_sees_only_its_node() {
    let ns = TestNamespace::new("kube-node").await;
    let admin_pods: Api<Pod> = ns.api(ns.admin_client());
    let node = format!("node-{}", unique_suffix());
    // All namespaces, one node: the field selector keeps the rest of the cluster out.
    let mut rx = start_watcher(
        podgate_client().await,
        WatchScope {
            namespaces: Vec::new(),
            node_name: Some(node.clone()),
        },
    );
    next_matching(&mut rx, "initial list complete", |e| {
        matches!(e, PodEvent::Synced)
    })
    .await;
    let mut elsewhere = TestPod::new("elsewhere").gate(GATE).build();
    let mut here = TestPod::new("here").gate(GATE).build();
    if let Some(spec) = here.spec.as_mut() {
        spec.node_name = Some(node.clone());
    }
    if let Some(spec) = elsewhere.spec.as_mut() {
        spec.node_name = Some(format!("{node}-other"));
    }
    for pod in [&elsewhere, &here] {
        admin_pods
            .create(&Default::default(), pod)
            .await
            .unwrap_or_else(|e| panic!("creating a pod: {e}"));
    }
    let e = next_matching(&mut rx, "the pod on this node", |e| {
        matches!(e, PodEvent::Upsert(_))
    })
    .await;
    let s = upsert_of(&e, "here")
        .cloned()
        .unwrap_or_else(|| panic!("the first pod reported is the one on {node}, got {e:#?}"));
    assert_eq!(s.node_name.as_deref(), Some(node.as_str()));
    assert_no_event_for(&mut rx, "elsewhere", Duration::from_secs(1)).await;
}

/// Collects what the writer reports.
#[derive(Clone, Default)]
struct Results(Arc<Mutex<Vec<WriteResult>>>);

impl Results {
    fn all(&self) -> Vec<WriteResult> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
    fn count(&self, r: WriteResult) -> usize {
        self.all().iter().filter(|x| **x == r).count()
    }
    fn observer(&self) -> impl Fn(WriteResult, Duration) + Send + Sync + 'static {
        let inner = self.0.clone();
        move |r, _| {
            if let Ok(mut v) = inner.lock() {
                v.push(r);
            }
        }
    }
}

struct TestWriter {
    updates: mpsc::Sender<GateUpdate>,
    may_write: watch::Sender<bool>,
    results: Results,
}

fn start_writer(client: Client, may_write: bool, events: bool) -> TestWriter {
    let (tx, rx) = mpsc::channel(64);
    let (flag_tx, flag_rx) = watch::channel(may_write);
    let results = Results::default();
    let mut writer = Writer::new(client.clone(), flag_rx)
        .with_config(WriterConfig {
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_millis(400),
            request_timeout: Duration::from_secs(2),
            ..WriterConfig::default()
        })
        .with_observer(results.observer());
    if events {
        writer = writer.with_events(EventRecorder::new(client, "podgate-test"));
    }
    tokio::spawn(writer.run(rx));
    TestWriter {
        updates: tx,
        may_write: flag_tx,
        results,
    }
}

impl TestWriter {
    async fn send(&self, update: GateUpdate) {
        self.updates
            .send(update)
            .await
            .unwrap_or_else(|e| panic!("the writer stopped: {e}"));
    }

    async fn wait_results(&self, what: &str, n: usize) -> Vec<WriteResult> {
        wait_for(what, WAIT, || async {
            let all = self.results.all();
            if all.len() >= n { Ok(all) } else { Err(all) }
        })
        .await
    }
}

fn gate_update(pod: &Pod, status: bool, reason: Reason, message: &str) -> GateUpdate {
    GateUpdate {
        pod: PodKey::new(
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        condition_type: GATE.to_string(),
        condition: Condition {
            status,
            reason,
            message: message.to_string(),
        },
    }
}

async fn wait_gate(pods: &Api<Pod>, name: &str, what: &str, want: impl Fn(&Pod) -> bool) -> Pod {
    wait_for(what, WAIT, || async {
        let pod = pods.get(name).await.map_err(|e| e.to_string())?;
        if want(&pod) {
            Ok(pod)
        } else {
            Err(format!("{:#?}", condition(&pod, GATE)))
        }
    })
    .await
}

fn gate_message(pod: &Pod) -> Option<&str> {
    condition(pod, GATE).and_then(|c| c.message.as_deref())
}

fn transition_time(pod: &Pod) -> Option<String> {
    condition(pod, GATE)
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0.to_string())
}

/// `GateTrue`/`GateFalse` occurrences recorded for `pod` (a repeated event counts its series).
async fn event_counts(events: &Api<EventV1>, pod: &str) -> BTreeMap<String, i32> {
    let list = events
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("listing events: {e}"));
    let mut counts = BTreeMap::new();
    for e in list.items {
        let about = e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod);
        if !about || e.reporting_controller.as_deref() != Some("podgate") {
            continue;
        }
        let n = e.series.as_ref().map(|s| s.count).unwrap_or(1);
        *counts.entry(e.reason.unwrap_or_default()).or_insert(0) += n;
    }
    counts
}

#[tokio::test]
async fn writer_sets_only_its_condition_once_and_records_transitions() {
    let ns = TestNamespace::new("kube-write").await;
    let admin_pods: Api<Pod> = ns.api(ns.admin_client());
    let kubelet = Kubelet::new(ns.admin_client(), ns.name());
    TestPod::new("web").gate(GATE).create(&admin_pods).await;
    let running = kubelet.run("web", unique_loopback_ip(), true).await;
    let kubelet_conditions: Vec<(String, String)> = ["PodScheduled", "ContainersReady", "Ready"]
        .iter()
        .filter_map(|t| condition(&running, t).map(|c| (c.type_.clone(), c.status.clone())))
        .collect();
    assert_eq!(
        kubelet_conditions.len(),
        3,
        "the kubelet set its conditions"
    );

    let w = start_writer(podgate_client().await, true, true);
    w.send(gate_update(
        &running,
        true,
        Reason::MetricsHealthy,
        "x=0 < 1 (rule r)",
    ))
    .await;
    let written = wait_gate(&admin_pods, "web", "gate True", |p| {
        condition_status(p, GATE) == Some("True")
    })
    .await;
    let c = condition(&written, GATE)
        .cloned()
        .expect("the gate condition");
    assert_eq!(c.reason.as_deref(), Some("MetricsHealthy"));
    assert_eq!(c.message.as_deref(), Some("x=0 < 1 (rule r)"));
    assert!(c.last_transition_time.is_some());
    for (t, status) in &kubelet_conditions {
        assert_eq!(
            condition_status(&written, t),
            Some(status.as_str()),
            "the kubelet's {t} survives"
        );
    }
    assert_eq!(w.wait_results("first write", 1).await, [WriteResult::Ok]);

    // The same decision again: read, compared, not written.
    let version = written.metadata.resource_version.clone();
    w.send(gate_update(
        &running,
        true,
        Reason::MetricsHealthy,
        "x=0 < 1 (rule r)",
    ))
    .await;
    assert_eq!(
        w.wait_results("second update", 2).await,
        [WriteResult::Ok, WriteResult::Unchanged]
    );
    let again = admin_pods
        .get("web")
        .await
        .unwrap_or_else(|e| panic!("reading web: {e}"));
    assert_eq!(again.metadata.resource_version, version, "no write at all");

    // A new message with the same status keeps lastTransitionTime.
    let first_transition = transition_time(&written);
    tokio::time::sleep(Duration::from_millis(1100)).await; // the API's times have 1 s resolution
    w.send(gate_update(
        &running,
        true,
        Reason::MetricsHealthy,
        "x=0.5 < 1 (rule r)",
    ))
    .await;
    let updated = wait_gate(&admin_pods, "web", "new message", |p| {
        gate_message(p) == Some("x=0.5 < 1 (rule r)")
    })
    .await;
    assert_eq!(transition_time(&updated), first_transition);

    // A status change moves it.
    w.send(gate_update(
        &running,
        false,
        Reason::MetricsUnhealthy,
        "x=3 >= 1 (rule r)",
    ))
    .await;
    let down = wait_gate(&admin_pods, "web", "gate False", |p| {
        condition_status(p, GATE) == Some("False")
    })
    .await;
    assert_ne!(transition_time(&down), first_transition);
    assert_eq!(
        condition(&down, GATE).and_then(|c| c.reason.as_deref()),
        Some("MetricsUnhealthy")
    );
    for (t, _) in &kubelet_conditions {
        assert!(condition(&down, t).is_some(), "the kubelet's {t} survives");
    }

    // And back: one event per transition (the repeat is counted on its series).
    w.send(gate_update(
        &running,
        true,
        Reason::MetricsHealthy,
        "x=0 < 1 (rule r)",
    ))
    .await;
    wait_gate(&admin_pods, "web", "gate True again", |p| {
        condition_status(p, GATE) == Some("True")
    })
    .await;
    let events: Api<EventV1> = ns.api(ns.admin_client());
    let counts = wait_for("three transition events", WAIT, || async {
        let counts = event_counts(&events, "web").await;
        if counts.values().sum::<i32>() >= 3 {
            Ok(counts)
        } else {
            Err(counts)
        }
    })
    .await;
    assert_eq!(
        counts,
        BTreeMap::from([("GateFalse".to_string(), 1), ("GateTrue".to_string(), 2)]),
        "a message change is no transition"
    );
    let list = events
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("listing events: {e}"));
    let down_event = list
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("GateFalse"))
        .expect("a GateFalse event");
    assert_eq!(down_event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        down_event.note.as_deref(),
        Some("MetricsUnhealthy: x=3 >= 1 (rule r)")
    );
    let regarding = down_event.regarding.clone().unwrap_or_default();
    assert_eq!(regarding.kind.as_deref(), Some("Pod"));
    assert_eq!(regarding.uid, running.metadata.uid);
}

#[tokio::test]
async fn a_recreated_pod_is_not_written_with_the_old_uid() {
    let ns = TestNamespace::new("kube-uid").await;
    let admin_pods: Api<Pod> = ns.api(ns.admin_client());
    let old = TestPod::new("web").gate(GATE).create(&admin_pods).await;
    delete_pod_now(&admin_pods, "web").await;
    wait_for("old pod gone", WAIT, || async {
        match admin_pods.get_opt("web").await {
            Ok(None) => Ok(()),
            other => Err(format!("{:?}", other.map(|p| p.map(|p| p.metadata.uid)))),
        }
    })
    .await;
    let new = TestPod::new("web").gate(GATE).create(&admin_pods).await;
    assert_ne!(old.metadata.uid, new.metadata.uid);

    let client = podgate_client().await;
    let w = start_writer(client.clone(), true, false);
    w.send(gate_update(
        &old,
        false,
        Reason::MetricsUnhealthy,
        "old pod",
    ))
    .await;
    assert_eq!(w.wait_results("old uid", 1).await, [WriteResult::Gone]);
    let pod = admin_pods
        .get("web")
        .await
        .unwrap_or_else(|e| panic!("reading web: {e}"));
    assert_eq!(condition(&pod, GATE), None, "the new pod is untouched");

    // The patch carries the uid, so even a write that raced the replacement is refused.
    let podgate_pods: Api<Pod> = ns.api(client);
    let old_uid = old.metadata.uid.clone().unwrap_or_default();
    let stale = status_patch(
        &old_uid,
        GATE,
        &Condition {
            status: false,
            reason: Reason::MetricsUnhealthy,
            message: "old pod".into(),
        },
        "old pod",
        &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    );
    match podgate_pods
        .patch_status("web", &PatchParams::default(), &Patch::Strategic(&stale))
        .await
    {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert!(
                s.details
                    .as_ref()
                    .is_some_and(|d| d.causes.iter().any(|c| c.field == "metadata.uid")),
                "{s:?}"
            );
        }
        other => panic!("a patch with the old uid must be refused, got {other:?}"),
    }

    w.send(gate_update(&new, true, Reason::MetricsHealthy, "new pod"))
        .await;
    wait_gate(&admin_pods, "web", "the new pod's gate", |p| {
        gate_message(p) == Some("new pod")
    })
    .await;
}

/// A writer that may not write holds nothing: what it is sent meanwhile is dropped (the
/// controller resyncs from its decisions when the right to write arrives), so a standby or a
/// dry run does not grow with pod churn.
#[tokio::test]
async fn updates_are_dropped_while_not_allowed_and_written_once_allowed() {
    let ns = TestNamespace::new("kube-hold").await;
    let admin_pods: Api<Pod> = ns.api(ns.admin_client());
    let pod = TestPod::new("web").gate(GATE).create(&admin_pods).await;
    let w = start_writer(podgate_client().await, false, false);
    w.send(gate_update(&pod, false, Reason::NoData, "first"))
        .await;
    w.send(gate_update(&pod, true, Reason::MetricsHealthy, "second"))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        w.results.all().is_empty(),
        "nothing tried while not allowed"
    );

    let _ = w.may_write.send(true);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let web = admin_pods
        .get("web")
        .await
        .unwrap_or_else(|e| panic!("reading web: {e}"));
    assert_eq!(condition(&web, GATE), None, "nothing was held to flush");
    assert!(w.results.all().is_empty());

    w.send(gate_update(&pod, true, Reason::MetricsHealthy, "latest"))
        .await;
    wait_gate(&admin_pods, "web", "the update sent once allowed", |p| {
        gate_message(p) == Some("latest")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.results.all(), [WriteResult::Ok], "one write: the latest");
}

async fn podgate_client_via(addr: SocketAddr) -> Client {
    support::install_crypto_provider();
    let path = ControlPlane::get().podgate_kubeconfig_path();
    let kc = Kubeconfig::read_from(path).unwrap_or_else(|e| panic!("kubeconfig: {e}"));
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("kubeconfig: {e}"));
    config.cluster_url = format!("https://{addr}")
        .parse()
        .unwrap_or_else(|e| panic!("proxy url: {e}"));
    Client::try_from(config).unwrap_or_else(|e| panic!("client via proxy: {e}"))
}

#[tokio::test]
async fn a_write_during_an_outage_is_retried_until_it_lands() {
    let ns = TestNamespace::new("kube-retry").await;
    let admin_pods: Api<Pod> = ns.api(ns.admin_client());
    let pod = TestPod::new("web").gate(GATE).create(&admin_pods).await;
    let upstream: SocketAddr = ControlPlane::get()
        .apiserver_url()
        .trim_start_matches("https://")
        .parse()
        .unwrap_or_else(|e| panic!("apiserver address: {e}"));
    let proxy = Proxy::start(upstream).await;
    proxy.set_up(false);
    let w = start_writer(podgate_client_via(proxy.addr).await, true, false);
    w.send(gate_update(
        &pod,
        false,
        Reason::SourceError,
        "during the outage",
    ))
    .await;
    let failed = w.wait_results("failed attempts", 3).await;
    assert!(
        failed.iter().all(|r| *r == WriteResult::Error),
        "{failed:?}"
    );
    proxy.set_up(true);
    wait_gate(&admin_pods, "web", "written after the outage", |p| {
        gate_message(p) == Some("during the outage")
    })
    .await;
    wait_for("the write reported", WAIT, || async {
        if w.results.count(WriteResult::Ok) == 1 {
            Ok(())
        } else {
            Err(w.results.all())
        }
    })
    .await;
}

fn lease_config(name: &str, identity: &str, duration: u64) -> LeaseConfig {
    LeaseConfig {
        name: name.to_string(),
        identity: identity.to_string(),
        duration: Duration::from_secs(duration),
        grace: Duration::from_secs(1),
        poll: Duration::from_millis(500),
        ..LeaseConfig::new("podgate")
    }
}

async fn elect(name: &str, identity: &str, duration: u64) -> LeaderElection {
    match LeaderElection::start(
        podgate_client().await,
        lease_config(name, identity, duration),
    )
    .await
    {
        Ok(e) => e,
        Err(e) => panic!("starting election {identity}: {e}"),
    }
}

/// Waits until exactly one of two candidates leads; returns (leader, standby).
async fn one_leader(a: LeaderElection, b: LeaderElection) -> (LeaderElection, LeaderElection) {
    wait_for("exactly one leader", WAIT, || async {
        match (a.is_leader(), b.is_leader()) {
            (true, false) | (false, true) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    // And it stays that way.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(a.is_leader() != b.is_leader(), "both or neither lead");
    }
    if a.is_leader() { (a, b) } else { (b, a) }
}

#[tokio::test]
async fn one_leader_and_a_released_lease_hands_over_before_it_expires() {
    let lease = format!("test-{}", unique_suffix());
    // A long lease: the standby could only win this fast by seeing the release.
    let a = elect(&lease, "a", 60).await;
    let b = elect(&lease, "b", 60).await;
    let (leader, standby) = one_leader(a, b).await;
    let mut flag = standby.subscribe();
    assert!(!*flag.borrow());
    leader.shutdown().await;
    tokio::time::timeout(Duration::from_secs(20), flag.wait_for(|l| *l))
        .await
        .unwrap_or_else(|_| panic!("the standby did not take over the released lease"))
        .unwrap_or_else(|e| panic!("election stopped: {e}"));
    standby.shutdown().await;
}

#[tokio::test]
async fn a_vanished_leader_is_replaced_after_its_lease_expires() {
    let lease = format!("test-{}", unique_suffix());
    let a = elect(&lease, "a", 3).await;
    let b = elect(&lease, "b", 3).await;
    let (leader, standby) = one_leader(a, b).await;
    let mut leader_flag = leader.subscribe();
    // Dropped without releasing: like a killed process.
    drop(leader);
    let stopped = tokio::time::timeout(WAIT, leader_flag.wait_for(|l| !*l)).await;
    assert!(
        matches!(stopped, Ok(Ok(_))),
        "a stopped election says it is not leader"
    );
    let mut flag = standby.subscribe();
    tokio::time::timeout(Duration::from_secs(20), flag.wait_for(|l| *l))
        .await
        .unwrap_or_else(|_| panic!("the standby did not take over the expired lease"))
        .unwrap_or_else(|e| panic!("election stopped: {e}"));
    standby.shutdown().await;
}

#[tokio::test]
async fn a_standby_writer_holds_nothing_and_writes_once_it_leads() {
    let ns = TestNamespace::new("kube-failover").await;
    let admin_pods: Api<Pod> = ns.api(ns.admin_client());
    let pod = TestPod::new("web").gate(GATE).create(&admin_pods).await;
    let lease = format!("test-{}", unique_suffix());
    let a = elect(&lease, "a", 60).await;
    let b = elect(&lease, "b", 60).await;
    let (leader, standby) = one_leader(a, b).await;

    let (tx, rx) = mpsc::channel(8);
    let results = Results::default();
    tokio::spawn(
        Writer::new(podgate_client().await, standby.subscribe())
            .with_observer(results.observer())
            .run(rx),
    );
    tx.send(gate_update(
        &pod,
        true,
        Reason::MetricsHealthy,
        "while standby",
    ))
    .await
    .unwrap_or_else(|e| panic!("writer stopped: {e}"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(results.all().is_empty(), "a standby does not write");

    leader.shutdown().await;
    let mut flag = standby.subscribe();
    tokio::time::timeout(Duration::from_secs(20), flag.wait_for(|l| *l))
        .await
        .unwrap_or_else(|_| panic!("the standby did not take over"))
        .unwrap_or_else(|e| panic!("election stopped: {e}"));
    // What the standby was sent is gone; what it is sent as leader (the controller's resync)
    // is written.
    tx.send(gate_update(
        &pod,
        true,
        Reason::MetricsHealthy,
        "from the new leader",
    ))
    .await
    .unwrap_or_else(|e| panic!("writer stopped: {e}"));
    wait_gate(&admin_pods, "web", "written by the new leader", |p| {
        gate_message(p) == Some("from the new leader")
    })
    .await;
    assert_eq!(results.all(), [WriteResult::Ok]);
    standby.shutdown().await;
}
