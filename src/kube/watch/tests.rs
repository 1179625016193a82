//! The watcher: pods reduced to snapshots, the store fed watch events, and the watch streams
//! restarted on a refused start.

use std::collections::BTreeMap;

use super::store::Store;
use super::*;
use crate::decision::engine::PodKey;
use crate::decision::gate::{OVERRIDE_ANNOTATION, Override};
use crate::decision::{Condition, Reason};
use serde_json::json;

const GATE: &str = "example.com/healthy";

fn pod_from(value: serde_json::Value) -> Pod {
    match serde_json::from_value(value) {
        Ok(p) => p,
        Err(e) => panic!("test pod does not parse: {e}"),
    }
}

/// A pod as the API server returns it, managedFields and all.
fn full_pod() -> Pod {
    pod_from(json!({
        "metadata": {
            "name": "web-1", "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
            "labels": {"app": "web"},
            "annotations": {"prometheus.io/port": "metrics", "prometheus.io/path": "/m",
                            "other": "x"},
            "managedFields": [{"manager": "kubelet", "operation": "Update",
                               "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}],
        },
        "spec": {
            "nodeName": "node-a",
            "readinessGates": [{"conditionType": GATE}, {"conditionType": "example.com/b"}],
            "containers": [
                {"name": "app", "ports": [{"name": "http", "containerPort": 8080},
                                          {"containerPort": 9000}]},
                {"name": "side", "ports": [{"name": "metrics", "containerPort": 9090}]},
            ],
        },
        "status": {
            "phase": "Running", "podIP": "10.1.2.3", "startTime": "2025-01-01T00:00:00Z",
            "conditions": [
                {"type": "ContainersReady", "status": "True",
                 "lastTransitionTime": "2025-01-01T00:00:10Z"},
                {"type": "Ready", "status": "False", "reason": "ReadinessGatesNotReady"},
                {"type": GATE, "status": "False", "reason": "MetricsUnhealthy",
                 "message": "x=3 >= 1 (rule r)", "lastTransitionTime": "2025-01-01T00:01:00Z"},
                {"type": "example.com/b", "status": "True", "reason": "SomeoneElse"},
            ],
        },
    }))
}

fn status(code: u16) -> Box<::kube::core::Status> {
    let mut s = ::kube::core::Status::failure("too old resource version: 1 (2)", "Expired");
    s.code = code;
    s.boxed()
}

#[test]
fn only_a_410_on_a_watch_start_restarts_the_watcher() {
    let start = |code| watcher::Error::WatchStartFailed(::kube::Error::Api(status(code)));
    assert!(watch_start_gone(&start(410)));
    assert!(!watch_start_gone(&start(500)));
    assert!(!watch_start_gone(&start(403)));
    // A 410 *event* in a running watch: kube-runtime re-lists by itself.
    assert!(!watch_start_gone(&watcher::Error::WatchError(status(410))));
    assert!(!watch_start_gone(&watcher::Error::InitialListFailed(
        ::kube::Error::Api(status(410))
    )));
}

#[test]
fn relists_back_off_while_the_refusals_go_on() {
    assert_eq!(relist_delay(1), Duration::from_millis(500));
    assert_eq!(relist_delay(2), Duration::from_secs(1));
    assert!(relist_delay(7) > relist_delay(6));
    assert_eq!(relist_delay(100), Duration::from_secs(30));
}

#[test]
fn snapshot_keeps_what_podgate_uses() {
    let s = pod_snapshot(&full_pod(), false);
    assert_eq!(s.key, PodKey::new("shop", "web-1"));
    assert_eq!(s.info.uid, "u-1");
    assert_eq!(
        s.info.labels,
        BTreeMap::from([("app".to_string(), "web".to_string())])
    );
    assert_eq!(s.info.gates, [GATE, "example.com/b"]);
    assert_eq!(s.info.containers_ready_since, Some(1_735_689_610_000));
    assert_eq!(s.info.override_by, None);
    // Only gate conditions with a podgate reason are picked up.
    assert_eq!(
        s.info.conditions,
        BTreeMap::from([(
            GATE.to_string(),
            Condition {
                status: false,
                reason: Reason::MetricsUnhealthy,
                message: "x=3 >= 1 (rule r)".into(),
            }
        )])
    );
    assert_eq!(
        s.info.condition_since,
        BTreeMap::from([(GATE.to_string(), 1_735_689_660_000)])
    );
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod_ip, "10.1.2.3".parse().ok());
    assert_eq!(s.node_name.as_deref(), Some("node-a"));
    assert!(!s.deleting);
    assert_eq!(s.prometheus_port.as_deref(), Some("metrics"));
    assert_eq!(s.prometheus_path.as_deref(), Some("/m"));
    assert_eq!(
        s.container_ports,
        [
            ("http".to_string(), 8080),
            (String::new(), 9000),
            ("metrics".to_string(), 9090)
        ]
    );
    assert!(s.evaluable());
}

#[test]
fn a_pending_pod_without_status() {
    let p = pod_from(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {"containers": [{"name": "a"}]},
    }));
    let s = pod_snapshot(&p, false);
    assert_eq!(s.info.gates, Vec::<String>::new());
    assert_eq!(s.info.containers_ready_since, None);
    assert_eq!(s.phase, None);
    assert_eq!(s.pod_ip, None);
    assert!(s.container_ports.is_empty());
    assert_eq!(s.owner, None);
    assert!(!s.evaluable());
}

#[test]
fn the_owner_is_the_controller_reference_and_a_replica_sets_deployment() {
    let owned = |refs: serde_json::Value| {
        pod_from(json!({
            "metadata": {"name": "web-7d9f4c5b8-x2x9q", "namespace": "ns", "uid": "u",
                         "labels": {"pod-template-hash": "7d9f4c5b8"},
                         "ownerReferences": refs},
            "spec": {"containers": [{"name": "a"}]},
        }))
    };
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f4c5b8",
                    "uid": "rs", "controller": true});
    let s = pod_snapshot(&owned(json!([rs])), false);
    assert_eq!(
        s.owner.map(|o| o.to_string()).as_deref(),
        Some("Deployment/web")
    );
    // Only the controller reference names the workload.
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "c"});
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db",
                     "uid": "s", "controller": true});
    let s = pod_snapshot(&owned(json!([other.clone(), sts])), false);
    assert_eq!(
        s.owner.map(|o| o.to_string()).as_deref(),
        Some("StatefulSet/db")
    );
    let s = pod_snapshot(&owned(json!([other])), false);
    assert_eq!(s.owner, None);
}

#[test]
fn containers_ready_only_when_true() {
    let mut p = full_pod();
    let conditions = p
        .status
        .as_mut()
        .and_then(|s| s.conditions.as_mut())
        .expect("conditions");
    conditions[0].status = "False".into();
    let s = pod_snapshot(&p, false);
    assert_eq!(s.info.containers_ready_since, None);
    assert!(!s.evaluable());
}

#[test]
fn override_from_pod_or_namespace() {
    let mut p = full_pod();
    assert_eq!(
        pod_snapshot(&p, true).info.override_by,
        Some(Override::Namespace)
    );
    p.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(OVERRIDE_ANNOTATION.into(), "True".into());
    assert_eq!(
        pod_snapshot(&p, false).info.override_by,
        Some(Override::Pod)
    );
    assert_eq!(pod_snapshot(&p, true).info.override_by, Some(Override::Pod));
    p.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(OVERRIDE_ANNOTATION.into(), "false".into());
    assert_eq!(pod_snapshot(&p, false).info.override_by, None);
}

#[test]
fn bad_ip_and_ports_are_left_out() {
    let p = pod_from(json!({
        "metadata": {"name": "p", "namespace": "ns", "deletionTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "a", "ports": [{"containerPort": 70000},
                                                        {"name": "ok", "containerPort": 1}]}]},
        "status": {"podIP": "not-an-ip", "phase": "Running"},
    }));
    let s = pod_snapshot(&p, false);
    assert_eq!(s.pod_ip, None);
    assert_eq!(s.container_ports, [("ok".to_string(), 1)]);
    assert!(s.deleting);
}

fn named(name: &str, uid: &str) -> Pod {
    let mut p = full_pod();
    p.metadata.name = Some(name.into());
    p.metadata.uid = Some(uid.into());
    p
}

fn namespace(name: &str, overridden: bool) -> PartialObjectMeta<Namespace> {
    let mut ns = PartialObjectMeta::<Namespace>::default();
    ns.metadata.name = Some(name.into());
    if overridden {
        ns.metadata.annotations = Some(BTreeMap::from([(
            OVERRIDE_ANNOTATION.to_string(),
            "true".to_string(),
        )]));
    }
    ns
}

fn kinds(events: &[PodEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            PodEvent::Upsert(s) => format!("upsert {}", s.key),
            PodEvent::Delete(k) => format!("delete {k}"),
            PodEvent::Synced => "synced".to_string(),
        })
        .collect()
}

#[test]
fn only_changes_podgate_uses_are_reported() {
    let mut store = Store::default();
    let p = named("a", "1");
    assert_eq!(
        kinds(&store.pod_event(0, Event::Apply(p.clone()))),
        ["upsert shop/a"]
    );
    // A new resourceVersion, other annotations, the Ready condition: not podgate's business.
    let mut same = p.clone();
    same.metadata.resource_version = Some("43".into());
    same.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert("unrelated".into(), "y".into());
    assert!(store.pod_event(0, Event::Apply(same)).is_empty());
    let mut moved = p.clone();
    if let Some(s) = moved.status.as_mut() {
        s.pod_ip = Some("10.9.9.9".into());
    }
    assert_eq!(
        kinds(&store.pod_event(0, Event::Apply(moved))),
        ["upsert shop/a"]
    );
}

#[test]
fn terminating_and_deleted_pods_are_reported_deleted_once() {
    let mut store = Store::default();
    store.pod_event(0, Event::Apply(named("a", "1")));
    let mut terminating = named("a", "1");
    terminating.metadata.deletion_timestamp = terminating
        .status
        .as_ref()
        .and_then(|s| s.start_time.clone());
    assert_eq!(
        kinds(&store.pod_event(0, Event::Apply(terminating.clone()))),
        ["delete shop/a"]
    );
    assert!(
        store
            .pod_event(0, Event::Apply(terminating.clone()))
            .is_empty()
    );
    assert!(store.pod_event(0, Event::Delete(terminating)).is_empty());
}

#[test]
fn a_late_delete_of_the_old_uid_keeps_the_new_pod() {
    let mut store = Store::default();
    store.pod_event(0, Event::Apply(named("a", "1")));
    store.pod_event(0, Event::Apply(named("a", "2")));
    assert!(
        store
            .pod_event(0, Event::Delete(named("a", "1")))
            .is_empty()
    );
    assert_eq!(
        kinds(&store.pod_event(0, Event::Delete(named("a", "2")))),
        ["delete shop/a"]
    );
}

#[test]
fn a_relist_reports_pods_that_vanished_meanwhile() {
    let mut store = Store::default();
    store.pod_event(0, Event::Apply(named("a", "1")));
    store.pod_event(0, Event::Apply(named("b", "2")));
    let mut other_scope = named("c", "3");
    other_scope.metadata.namespace = Some("other".into());
    store.pod_event(1, Event::Apply(other_scope));
    assert!(store.pod_event(0, Event::Init).is_empty());
    assert!(
        store
            .pod_event(0, Event::InitApply(named("b", "2")))
            .is_empty()
    );
    assert_eq!(
        kinds(&store.pod_event(0, Event::InitDone)),
        ["delete shop/a"]
    );
    assert_eq!(store.pods.len(), 2, "the other scope's pod stays");
}

#[test]
fn namespace_override_reemits_its_pods() {
    let mut store = Store::default();
    store.pod_event(0, Event::Apply(named("a", "1")));
    let mut own = named("b", "2");
    own.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(OVERRIDE_ANNOTATION.into(), "true".into());
    store.pod_event(0, Event::Apply(own));
    let mut elsewhere = named("c", "3");
    elsewhere.metadata.namespace = Some("shopx".into());
    store.pod_event(0, Event::Apply(elsewhere));

    let out = store.namespace_event(Event::Apply(namespace("shop", true)));
    assert_eq!(kinds(&out), ["upsert shop/a"], "b has its own override");
    let PodEvent::Upsert(a) = &out[0] else {
        panic!("an upsert")
    };
    assert_eq!(a.info.override_by, Some(Override::Namespace));
    assert!(
        store
            .namespace_event(Event::Apply(namespace("shop", true)))
            .is_empty()
    );
    // New pods in the namespace get it at once.
    let out = store.pod_event(0, Event::Apply(named("d", "4")));
    assert!(
        matches!(&out[..], [PodEvent::Upsert(d)] if d.info.override_by == Some(Override::Namespace))
    );

    // Removed by a re-list that no longer sees the annotation (or the namespace).
    store.namespace_event(Event::Init);
    store.namespace_event(Event::InitApply(namespace("shopx", false)));
    let out = store.namespace_event(Event::InitDone);
    assert_eq!(kinds(&out), ["upsert shop/a", "upsert shop/d"]);
    assert!(
        out.iter()
            .all(|e| matches!(e, PodEvent::Upsert(s) if s.info.override_by.is_none()))
    );
}
