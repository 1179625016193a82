//! Watching pods: what podgate knows about each pod, kept as plain data.
//!
//! One kube-runtime watcher on pods per scope (all namespaces, or one per `--namespace`,
//! optionally only `spec.nodeName=<node>`), plus a metadata-only watcher on namespaces for the
//! override annotation. Each pod is reduced at once to a [`PodSnapshot`] (no Kubernetes types,
//! no managedFields, only the fields podgate uses); those are all that is kept in memory.
//!
//! The controller receives [`PodEvent`]s over a channel: an `Upsert` when a pod appears or a
//! field podgate uses changes (status churn podgate does not read is filtered out), a
//! `Delete` when it goes away or starts terminating, and `Synced` once, after the first
//! complete list of every scope. Re-lists (watch expired, 410 Gone) are kube-runtime's, with
//! its default backoff, plus one it lacks: a watch the API server refuses to start with 410
//! also re-lists (see [`relisting_watcher`]). Pods that vanished during a gap are reported
//! deleted when the re-list completes; each re-list is logged ("pods re-listed").

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use ::kube::api::{Api, PartialObjectMeta};
use ::kube::runtime::watcher::{self, Event};
use ::kube::runtime::{WatchStreamExt, watcher as run_watcher};
use ::kube::{Client, ResourceExt};
use futures::stream::{BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use tokio::sync::mpsc;

use crate::decision::engine::{PodInfo, PodKey};
use crate::decision::gate::{OVERRIDE_ANNOTATION, Override};
use crate::decision::{Condition, Reason};
use crate::peers::PodOwner;

/// The annotation naming the port of a pod's metrics endpoint.
pub const PORT_ANNOTATION: &str = "prometheus.io/port";
/// The annotation naming the path of a pod's metrics endpoint.
pub const PATH_ANNOTATION: &str = "prometheus.io/path";
/// The kubelet's condition that says every container is ready.
pub const CONTAINERS_READY: &str = "ContainersReady";

/// Everything podgate uses of a pod, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSnapshot {
    pub key: PodKey,
    /// What the decision engine needs (uid, labels, gates, ContainersReady, override,
    /// the pod's current gate conditions).
    pub info: PodInfo,
    /// `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`).
    pub phase: Option<String>,
    /// `status.podIP`, when set and a valid address.
    pub pod_ip: Option<IpAddr>,
    /// `spec.nodeName`.
    pub node_name: Option<String>,
    /// `metadata.deletionTimestamp` is set: the pod is terminating. The watcher reports such
    /// pods as deleted.
    pub deleting: bool,
    /// Annotation `prometheus.io/port`.
    pub prometheus_port: Option<String>,
    /// Annotation `prometheus.io/path`.
    pub prometheus_path: Option<String>,
    /// The ports of `spec.containers[*].ports`, in declaration order: `(name, number)`; an
    /// unnamed port has the name `""`.
    pub container_ports: Vec<(String, u16)>,
    /// The workload that owns the pod, from its controller owner reference (a Deployment's
    /// ReplicaSet counts as the Deployment): the default peer group of `peers:` variables.
    pub owner: Option<PodOwner>,
}

impl PodSnapshot {
    /// Whether the pod may be evaluated now: Running, with an IP, ContainersReady True and not
    /// terminating.
    pub fn evaluable(&self) -> bool {
        !self.deleting
            && self.phase.as_deref() == Some("Running")
            && self.pod_ip.is_some()
            && self.info.containers_ready_since.is_some()
    }
}

/// What the watcher tells the controller.
// Nearly every event is an Upsert: boxing it would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum PodEvent {
    /// A pod appeared, or something podgate uses changed (a new uid under the same name is a
    /// new pod).
    Upsert(PodSnapshot),
    /// A pod went away or started terminating.
    Delete(PodKey),
    /// The initial list of every watched scope has been delivered (sent once).
    Synced,
}

/// Which pods to watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchScope {
    /// Namespaces to watch, one watcher each; empty means all namespaces.
    pub namespaces: Vec<String>,
    /// Node-local mode: only pods with `spec.nodeName` equal to this.
    pub node_name: Option<String>,
}

/// Whether an annotation map turns the override on (`"true"`, in any letter case).
pub fn override_annotated(annotations: &BTreeMap<String, String>) -> bool {
    annotations
        .get(OVERRIDE_ANNOTATION)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Reduces a pod to what podgate uses. `ns_override`: the pod's namespace carries the
/// override annotation. Pure: no clock, no I/O.
pub fn pod_snapshot(pod: &Pod, ns_override: bool) -> PodSnapshot {
    let meta = &pod.metadata;
    let key = PodKey::new(
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    );
    let empty = BTreeMap::new();
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();

    let gates: Vec<String> = spec
        .and_then(|s| s.readiness_gates.as_ref())
        .map(|gs| gs.iter().map(|g| g.condition_type.clone()).collect())
        .unwrap_or_default();
    let pod_conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);

    let containers_ready_since = pod_conditions
        .iter()
        .find(|c| c.type_ == CONTAINERS_READY && c.status == "True")
        .map(|c| {
            // A kubelet always sets the transition time; without it, the pod's start time
            // (else long ago) keeps the pod evaluable rather than stuck.
            c.last_transition_time
                .as_ref()
                .or(status.and_then(|s| s.start_time.as_ref()))
                .map(|t| t.0.as_millisecond())
                .unwrap_or(0)
        });

    let mut conditions = BTreeMap::new();
    let mut condition_since = BTreeMap::new();
    for c in pod_conditions {
        if !gates.contains(&c.type_) || conditions.contains_key(&c.type_) {
            continue;
        }
        let status = match c.status.as_str() {
            "True" => true,
            "False" => false,
            _ => continue,
        };
        let Some(reason) = c.reason.as_deref().and_then(Reason::parse) else {
            continue;
        };
        if let Some(t) = &c.last_transition_time {
            condition_since.insert(c.type_.clone(), t.0.as_millisecond());
        }
        conditions.insert(
            c.type_.clone(),
            Condition {
                status,
                reason,
                message: c.message.clone().unwrap_or_default(),
            },
        );
    }

    let override_by = if override_annotated(annotations) {
        Some(Override::Pod)
    } else if ns_override {
        Some(Override::Namespace)
    } else {
        None
    };

    let container_ports = spec
        .map(|s| {
            s.containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .filter_map(|p| {
                    let number = u16::try_from(p.container_port).ok()?;
                    Some((p.name.clone().unwrap_or_default(), number))
                })
                .collect()
        })
        .unwrap_or_default();

    let labels = meta.labels.clone().unwrap_or_default();
    let owner = meta
        .owner_references
        .as_ref()
        .and_then(|refs| refs.iter().find(|r| r.controller == Some(true)))
        .map(|r| PodOwner::from_reference(&r.kind, &r.name, &labels));

    PodSnapshot {
        info: PodInfo {
            uid: meta.uid.clone().unwrap_or_default(),
            labels,
            gates,
            containers_ready_since,
            override_by,
            conditions,
            condition_since,
        },
        phase: status.and_then(|s| s.phase.clone()),
        pod_ip: status
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok()),
        node_name: spec.and_then(|s| s.node_name.clone()),
        deleting: meta.deletion_timestamp.is_some(),
        prometheus_port: annotations.get(PORT_ANNOTATION).cloned(),
        prometheus_path: annotations.get(PATH_ANNOTATION).cloned(),
        container_ports,
        owner,
        key,
    }
}

/// A known pod: its snapshot and where it came from.
struct Known {
    scope: usize,
    /// The pod itself carries the override annotation (the namespace's is applied on top).
    pod_override: bool,
    snapshot: PodSnapshot,
}

/// The watcher state: the compact pod store, namespace overrides, re-list bookkeeping.
#[derive(Default)]
struct Store {
    pods: BTreeMap<PodKey, Known>,
    ns_override: HashMap<String, bool>,
    /// Per scope: the keys seen since the current (re-)list began, while one is under way.
    listing: HashMap<usize, BTreeSet<PodKey>>,
    /// Namespaces seen since the current namespace (re-)list began.
    ns_listing: Option<BTreeSet<String>>,
}

impl Store {
    /// How many pods of `scope` are known.
    fn pods_in(&self, scope: usize) -> usize {
        self.pods.values().filter(|k| k.scope == scope).count()
    }

    fn ns_override(&self, namespace: &str) -> bool {
        self.ns_override.get(namespace).copied().unwrap_or(false)
    }

    /// Applies one pod watch event; returns what the controller must hear.
    fn pod_event(&mut self, scope: usize, event: Event<Pod>) -> Vec<PodEvent> {
        match event {
            Event::Init => {
                self.listing.insert(scope, BTreeSet::new());
                Vec::new()
            }
            Event::InitApply(pod) => {
                let key = pod_key(&pod);
                if let Some(seen) = self.listing.get_mut(&scope) {
                    seen.insert(key);
                }
                self.apply(scope, &pod).into_iter().collect()
            }
            Event::Apply(pod) => self.apply(scope, &pod).into_iter().collect(),
            Event::Delete(pod) => {
                let key = pod_key(&pod);
                let same = match (self.pods.get(&key), pod.metadata.uid.as_deref()) {
                    (Some(k), Some(uid)) => k.snapshot.info.uid == uid,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if same {
                    self.pods.remove(&key);
                    vec![PodEvent::Delete(key)]
                } else {
                    Vec::new()
                }
            }
            Event::InitDone => {
                let Some(seen) = self.listing.remove(&scope) else {
                    return Vec::new();
                };
                let gone: Vec<PodKey> = self
                    .pods
                    .iter()
                    .filter(|(k, v)| v.scope == scope && !seen.contains(*k))
                    .map(|(k, _)| k.clone())
                    .collect();
                gone.into_iter()
                    .map(|k| {
                        self.pods.remove(&k);
                        PodEvent::Delete(k)
                    })
                    .collect()
            }
        }
    }

    fn apply(&mut self, scope: usize, pod: &Pod) -> Option<PodEvent> {
        let pod_override = pod
            .metadata
            .annotations
            .as_ref()
            .is_some_and(override_annotated);
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let snapshot = pod_snapshot(pod, self.ns_override(namespace));
        let key = snapshot.key.clone();
        if snapshot.deleting {
            return self.pods.remove(&key).map(|_| PodEvent::Delete(key));
        }
        if self.pods.get(&key).is_some_and(|k| k.snapshot == snapshot) {
            return None;
        }
        self.pods.insert(
            key,
            Known {
                scope,
                pod_override,
                snapshot: snapshot.clone(),
            },
        );
        Some(PodEvent::Upsert(snapshot))
    }

    /// Applies one namespace watch event; re-emits the pods whose override changes.
    fn namespace_event(&mut self, event: Event<PartialObjectMeta<Namespace>>) -> Vec<PodEvent> {
        match event {
            Event::Init => {
                self.ns_listing = Some(BTreeSet::new());
                Vec::new()
            }
            Event::InitApply(ns) | Event::Apply(ns) => {
                let name = ns.name_any();
                if let Some(seen) = self.ns_listing.as_mut() {
                    seen.insert(name.clone());
                }
                let on = ns
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(override_annotated);
                self.set_ns_override(&name, on)
            }
            Event::Delete(ns) => self.set_ns_override(&ns.name_any(), false),
            Event::InitDone => {
                let Some(seen) = self.ns_listing.take() else {
                    return Vec::new();
                };
                let gone: Vec<String> = self
                    .ns_override
                    .keys()
                    .filter(|n| !seen.contains(*n))
                    .cloned()
                    .collect();
                gone.iter()
                    .flat_map(|n| self.set_ns_override(n, false))
                    .collect()
            }
        }
    }

    fn set_ns_override(&mut self, namespace: &str, on: bool) -> Vec<PodEvent> {
        let was = self.ns_override(namespace);
        if on {
            self.ns_override.insert(namespace.to_string(), true);
        } else {
            self.ns_override.remove(namespace);
        }
        if was == on {
            return Vec::new();
        }
        let start = PodKey::new(namespace, "");
        let mut out = Vec::new();
        for (key, known) in self.pods.range_mut(start..) {
            if key.namespace != namespace {
                break;
            }
            let next = if known.pod_override {
                Some(Override::Pod)
            } else if on {
                Some(Override::Namespace)
            } else {
                None
            };
            if known.snapshot.info.override_by != next {
                known.snapshot.info.override_by = next;
                out.push(PodEvent::Upsert(known.snapshot.clone()));
            }
        }
        out
    }
}

fn pod_key(pod: &Pod) -> PodKey {
    PodKey::new(
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

type PodStream = BoxStream<'static, (usize, Result<Event<Pod>, watcher::Error>)>;

/// Watches pods and namespaces and feeds the controller.
pub struct PodWatcher {
    client: Client,
    scope: WatchScope,
}

impl PodWatcher {
    pub fn new(client: Client, scope: WatchScope) -> PodWatcher {
        PodWatcher { client, scope }
    }

    /// Runs until `events` is closed. API errors are logged and retried (kube-runtime's
    /// default backoff); they never end the watch.
    ///
    /// Pods are reported only after the namespaces have been listed once, so a pod in a
    /// namespace with the override annotation is never first reported without it.
    pub async fn run(self, events: mpsc::Sender<PodEvent>) {
        let mut store = Store::default();
        let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(self.client.clone());
        let mut ns_stream = relisting_watcher(namespaces, watcher::Config::default());

        // Namespaces first: the override annotation must be known before any pod is reported.
        loop {
            let Some(item) = next_or_closed(&mut ns_stream, &events).await else {
                return;
            };
            match item {
                Ok(event) => {
                    let done = matches!(event, Event::InitDone);
                    store.namespace_event(event);
                    if done {
                        break;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "watching namespaces (retrying)"),
            }
        }

        let mut pods = self.pod_streams();
        let mut unsynced: BTreeSet<usize> = (0..pods.len()).collect();
        loop {
            let out = tokio::select! {
                _ = events.closed() => return,
                item = ns_stream.next() => match item {
                    Some(Ok(event)) => store.namespace_event(event),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "watching namespaces (retrying)");
                        Vec::new()
                    }
                    // A watcher stream never ends on its own.
                    None => return,
                },
                item = pods.next() => match item {
                    Some((scope, Ok(event))) => {
                        let done = matches!(event, Event::InitDone);
                        let mut out = store.pod_event(scope, event);
                        if done && unsynced.remove(&scope) {
                            if unsynced.is_empty() {
                                out.push(PodEvent::Synced);
                            }
                        } else if done {
                            // After a 410 Gone (or any watch the API server could not
                            // resume): the cache was rebuilt from a fresh list.
                            tracing::info!(
                                scope = %self.scope_name(scope),
                                pods = store.pods_in(scope),
                                gone = out.len(),
                                "pods re-listed"
                            );
                        }
                        out
                    }
                    Some((scope, Err(e))) => {
                        tracing::warn!(
                            error = %e,
                            scope = %self.scope_name(scope),
                            "watching pods (retrying)"
                        );
                        Vec::new()
                    }
                    None => return,
                },
            };
            for event in out {
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
    }

    fn config(&self) -> watcher::Config {
        let config = watcher::Config::default();
        match &self.scope.node_name {
            Some(node) => config.fields(&format!("spec.nodeName={node}")),
            None => config,
        }
    }

    fn namespaces(&self) -> Vec<String> {
        let unique: BTreeSet<&String> = self.scope.namespaces.iter().collect();
        unique.into_iter().cloned().collect()
    }

    fn scope_name(&self, scope: usize) -> String {
        self.namespaces()
            .get(scope)
            .map(|n| format!("namespace {n}"))
            .unwrap_or_else(|| "all namespaces".to_string())
    }

    fn pod_streams(&self) -> SelectAll<PodStream> {
        let apis: Vec<Api<Pod>> = if self.scope.namespaces.is_empty() {
            vec![Api::all(self.client.clone())]
        } else {
            self.namespaces()
                .iter()
                .map(|n| Api::namespaced(self.client.clone(), n))
                .collect()
        };
        let streams = apis.into_iter().enumerate().map(|(i, api)| {
            relisting_watcher(api, self.config())
                .map(move |e| (i, e))
                .boxed()
        });
        futures::stream::select_all(streams)
    }
}

/// Whether a watcher error is the API server refusing to start a watch with 410 Gone: the
/// resourceVersion the watcher holds is too old (compacted) and only a fresh list helps.
fn watch_start_gone(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchStartFailed(::kube::Error::Api(s)) if s.code == 410)
}

/// Delay before re-listing after the `n`th 410 on a watch's start in a row.
fn relist_delay(n: u32) -> Duration {
    crate::kube::write::backoff_delay(n, Duration::from_millis(500), Duration::from_secs(30))
}

/// kube-runtime's watcher with its default backoff, which re-lists when a watch *ends* with
/// 410 Gone, but when the API server refuses to *start* a watch with 410 it keeps retrying
/// from the same expired resourceVersion forever, and the cache never changes again. On that
/// error this starts a new watcher (its first step is a fresh list), after a backoff that
/// grows while the refusals go on and resets once the new watch delivers an event. Every
/// error is passed on, for the caller to log.
fn relisting_watcher<K>(api: Api<K>, config: watcher::Config) -> WatchStream<K>
where
    K: ::kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    struct St<K: 'static> {
        api: Api<K>,
        config: watcher::Config,
        inner: WatchStream<K>,
        refusals: u32,
        relist: bool,
    }
    fn start<K>(api: &Api<K>, config: &watcher::Config) -> WatchStream<K>
    where
        K: ::kube::Resource
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + 'static,
    {
        run_watcher(api.clone(), config.clone())
            .default_backoff()
            .boxed()
    }
    let inner = start(&api, &config);
    let st = St {
        api,
        config,
        inner,
        refusals: 0,
        relist: false,
    };
    futures::stream::unfold(st, |mut st| async move {
        if st.relist {
            st.relist = false;
            tokio::time::sleep(relist_delay(st.refusals)).await;
            st.inner = start(&st.api, &st.config);
        }
        let item = st.inner.next().await?;
        match &item {
            Err(e) if watch_start_gone(e) => {
                st.refusals = st.refusals.saturating_add(1);
                st.relist = true;
            }
            Ok(Event::Apply(_) | Event::Delete(_)) => st.refusals = 0,
            _ => {}
        }
        Some((item, st))
    })
    .boxed()
}

type WatchStream<K> = BoxStream<'static, Result<Event<K>, watcher::Error>>;

/// The next item of `stream`, or `None` when it ends or nobody listens any more.
async fn next_or_closed<S: Stream + Unpin>(
    stream: &mut S,
    events: &mpsc::Sender<PodEvent>,
) -> Option<S::Item> {
    tokio::select! {
        _ = events.closed() => None,
        item = stream.next() => item,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
