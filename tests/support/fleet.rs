//! Pods that controllers create (a Deployment's ReplicaSets), run the way test pods are, and
//! what a rollout looks like from the API.
//!
//! - [`Fleet::stand_in`] adopts every pod of a namespace bound to [`TEST_NODE`]: a
//!   [`MetricsEndpoint`] on a fresh address of the stand-in pod network (on the port the pod
//!   template declares; not 127.0.0.x, which the EndpointSlice API refuses: see
//!   [`ControlPlane::pod_network`]), then [`Kubelet::try_run`] (Running, that IP,
//!   ContainersReady True, `Ready` computed), and
//!   from then on `Ready` recomputed whenever the pod's gates change, as a kubelet's status sync
//!   does (the Deployment controller counts availability from `Ready`).
//! - [`Fleet::beside_kubelet`] serves the pods of a real kubelet's node (the hollow node, whose
//!   pods all have the address 192.168.192.168): one endpoint per pod on a fresh 127.0.0.x
//!   address, listed with the pod's `namespace` and `pod` as target labels in a Prometheus
//!   `file_sd` file, so a real Prometheus scrapes them as its Kubernetes discovery would. It
//!   never writes a pod: the kubelet does.
//!
//! What a pod's endpoint serves is the test's choice, made from the pod ([`PodBody`]);
//! [`Traffic`] is the usual one: request counters that grow with time, a share of them 5xx per
//! version (the pod's `version` label), changeable at any time ("healing" a version).
//!
//! [`Rollout`] reads a Deployment with its ReplicaSets, pods and the Service's EndpointSlices
//! in one [`RolloutView`], and waits on it with the controller manager watched: if it dies, the
//! test fails with its log tail instead of waiting for a rollout that cannot happen.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::json;
use tokio::task::JoinHandle;

use super::control_plane::ControlPlane;
use super::daemon::Daemon;
use super::metrics_endpoint::BodyFn;
use super::pods::{TEST_NODE, condition, condition_status, ready_as_kubelet};
use super::{Kubelet, MetricsEndpoint, unique_loopback_ip, unique_pod_ip};

/// The pod label [`Traffic::by_version`] reads, and [`deployment`] sets.
pub const VERSION_LABEL: &str = "version";

/// Requests per second every pod's counters grow by.
pub const REQUESTS_PER_SECOND: f64 = 20.0;

/// Chooses, from a pod as first seen, what its endpoint serves.
pub type PodBody = Arc<dyn Fn(&Pod) -> BodyFn + Send + Sync>;

/// Request counters per version: each pod serves `http_requests_total{code="200"}` and
/// `{code="500"}`, counters from 0 that grow by [`REQUESTS_PER_SECOND`] in all, the version's
/// error ratio of them 5xx (or the pod's own, when one is set). Changing a ratio changes how
/// the counters grow from then on, for every pod of that version (they stay counters: they
/// never go down).
#[derive(Clone, Default)]
pub struct Traffic {
    error_ratio: Arc<Mutex<BTreeMap<String, f64>>>,
    /// Per pod name: a ratio of its own, over its version's.
    pod_error_ratio: Arc<Mutex<BTreeMap<String, f64>>>,
}

impl Traffic {
    pub fn new() -> Traffic {
        Traffic::default()
    }

    /// The share (0..=1) of `version`'s requests that fail with 500 from now on (0 until set).
    pub fn set_error_ratio(&self, version: &str, ratio: f64) {
        lock(&self.error_ratio).insert(version.to_string(), ratio);
    }

    /// The share of pod `pod`'s requests that fail from now on, whatever its version's
    /// (`None`: its version's again). An outlier among its peers.
    pub fn set_pod_error_ratio(&self, pod: &str, ratio: Option<f64>) {
        let mut pods = lock(&self.pod_error_ratio);
        match ratio {
            Some(r) => pods.insert(pod.to_string(), r),
            None => pods.remove(pod),
        };
    }

    fn ratio(&self, version: &str, pod: Option<&str>) -> f64 {
        let own = pod.and_then(|p| lock(&self.pod_error_ratio).get(p).copied());
        own.unwrap_or_else(|| lock(&self.error_ratio).get(version).copied().unwrap_or(0.0))
    }

    /// A fresh pair of counters for one pod of `version`, computed at each request.
    pub fn counters(&self, version: &str) -> BodyFn {
        self.counters_of(version, None)
    }

    /// [`Traffic::counters`] for the pod named `pod`, which may have a ratio of its own.
    fn counters_of(&self, version: &str, pod: Option<String>) -> BodyFn {
        let traffic = self.clone();
        let version = version.to_string();
        let state = Mutex::new((Instant::now(), 0.0f64, 0.0f64));
        Arc::new(move || {
            let ratio = traffic.ratio(&version, pod.as_deref());
            let mut s = lock(&state);
            let now = Instant::now();
            let requests = now.duration_since(s.0).as_secs_f64() * REQUESTS_PER_SECOND;
            s.0 = now;
            s.1 += requests * (1.0 - ratio);
            s.2 += requests * ratio;
            format!(
                "# TYPE http_requests_total counter\n\
                 http_requests_total{{code=\"200\"}} {:.3}\n\
                 http_requests_total{{code=\"500\"}} {:.3}\n",
                s.1, s.2
            )
        })
    }

    /// Counters per pod, by the pod's [`VERSION_LABEL`] (a pod without it counts as version "").
    pub fn by_version(&self) -> PodBody {
        let traffic = self.clone();
        Arc::new(move |pod: &Pod| traffic.counters_of(&version_of(pod), pod.metadata.name.clone()))
    }
}

/// The pod's [`VERSION_LABEL`] ("" when it has none).
pub fn version_of(pod: &Pod) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(VERSION_LABEL))
        .cloned()
        .unwrap_or_default()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

enum Mode {
    /// Plays the kubelet of `TEST_NODE`; endpoints listen on the template's port, on addresses
    /// of the pod network `[a, b, ..]`.
    StandIn {
        kubelet: Box<Kubelet>,
        port: u16,
        network: [u8; 2],
    },
    /// A real kubelet runs the pods; endpoints are listed for Prometheus in `targets`.
    BesideKubelet { targets: PathBuf },
}

struct Adopted {
    endpoint: MetricsEndpoint,
    /// Stand-in mode: the kubelet's first write went through.
    running: bool,
}

struct State {
    pods: BTreeMap<String, Adopted>,
    /// The last API error and how many polls in a row failed.
    errors_in_a_row: u32,
    last_error: String,
}

/// Runs (or serves) the pods of one namespace on one node; stops when dropped.
pub struct Fleet {
    namespace: String,
    node: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

/// How often the fleet looks at the namespace's pods.
const POLL: Duration = Duration::from_millis(200);
/// API errors in a row after which [`Fleet::check`] fails the test.
const MAX_ERRORS_IN_A_ROW: u32 = 50;

impl Fleet {
    /// Plays the kubelet for every pod in `namespace` bound to [`TEST_NODE`]. Each pod's
    /// endpoint listens on `port` (what the pod template declares as its `metrics` port; see
    /// [`free_port`]) on its own address of `cp`'s pod network, which becomes the pod's IP.
    /// Fails the test where `cp` has no pod network (outside scripts/test's namespace).
    pub fn stand_in(
        cp: &ControlPlane,
        admin: Client,
        namespace: &str,
        port: u16,
        body: PodBody,
    ) -> Fleet {
        let network = cp.pod_network();
        let kubelet = Box::new(Kubelet::new(admin.clone(), namespace));
        Fleet::spawn(
            admin,
            namespace,
            TEST_NODE,
            Mode::StandIn {
                kubelet,
                port,
                network,
            },
            body,
        )
    }

    /// Serves the pods in `namespace` bound to `node`, which a real kubelet runs: each gets an
    /// endpoint on its own loopback address, listed in the Prometheus `file_sd` file `targets`
    /// (rewritten whenever the pods change) with target labels `namespace` and `pod`.
    pub fn beside_kubelet(
        admin: Client,
        namespace: &str,
        node: &str,
        targets: PathBuf,
        body: PodBody,
    ) -> Fleet {
        write_targets(&targets, namespace, &[]);
        Fleet::spawn(
            admin,
            namespace,
            node,
            Mode::BesideKubelet { targets },
            body,
        )
    }

    fn spawn(admin: Client, namespace: &str, node: &str, mode: Mode, body: PodBody) -> Fleet {
        let state = Arc::new(Mutex::new(State {
            pods: BTreeMap::new(),
            errors_in_a_row: 0,
            last_error: String::new(),
        }));
        let pods: Api<Pod> = Api::namespaced(admin, namespace);
        let task = tokio::spawn(run(
            pods,
            namespace.to_string(),
            node.to_string(),
            mode,
            body,
            state.clone(),
        ));
        Fleet {
            namespace: namespace.to_string(),
            node: node.to_string(),
            state,
            task,
        }
    }

    /// Fails the test if the fleet stopped or cannot reach the API server.
    pub fn check(&self) {
        if self.task.is_finished() {
            panic!(
                "the fleet of {}/{} stopped (it panicked: see the message above)",
                self.namespace, self.node
            );
        }
        let state = lock(&self.state);
        if state.errors_in_a_row >= MAX_ERRORS_IN_A_ROW {
            panic!(
                "the fleet of {}/{}: {} API calls in a row failed, the last with: {}",
                self.namespace, self.node, state.errors_in_a_row, state.last_error
            );
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    pods: Api<Pod>,
    namespace: String,
    node: String,
    mode: Mode,
    body: PodBody,
    state: Arc<Mutex<State>>,
) {
    loop {
        match pods.list(&ListParams::default()).await {
            Ok(list) => {
                let mut failed = None;
                let mine: Vec<Pod> = list
                    .items
                    .into_iter()
                    .filter(|p| {
                        p.metadata.deletion_timestamp.is_none()
                            && p.spec.as_ref().and_then(|s| s.node_name.as_deref())
                                == Some(node.as_str())
                    })
                    .collect();
                if let Err(e) = reconcile(&namespace, &mode, &body, &state, &mine).await {
                    failed = Some(e);
                }
                let mut s = lock(&state);
                match failed {
                    Some(e) => {
                        s.errors_in_a_row += 1;
                        s.last_error = e;
                    }
                    None => s.errors_in_a_row = 0,
                }
            }
            Err(e) => {
                let mut s = lock(&state);
                s.errors_in_a_row += 1;
                s.last_error = format!("listing pods: {e}");
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One pass: adopts new pods, keeps `Ready` in step with the gates (stand-in), forgets pods
/// that are gone. Returns the first API error (the next pass retries).
async fn reconcile(
    namespace: &str,
    mode: &Mode,
    body: &PodBody,
    state: &Arc<Mutex<State>>,
    pods: &[Pod],
) -> Result<(), String> {
    let mut first_error = None;
    let live: Vec<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let mut changed = false;
    {
        let mut s = lock(state);
        let before = s.pods.len();
        s.pods.retain(|name, _| live.contains(name));
        changed |= s.pods.len() != before;
    }
    for pod in pods {
        let Some(name) = pod.metadata.name.as_deref() else {
            continue;
        };
        let known = lock(state).pods.get(name).map(|a| a.running);
        match (mode, known) {
            (Mode::StandIn { port, network, .. }, None) => {
                let endpoint = bind_endpoint(Some(*network), Some(*port)).await?;
                endpoint.set_body_fn(body(pod));
                lock(state).pods.insert(
                    name.to_string(),
                    Adopted {
                        endpoint,
                        running: false,
                    },
                );
            }
            (Mode::BesideKubelet { .. }, None) => {
                let endpoint = bind_endpoint(None, None).await?;
                endpoint.set_body_fn(body(pod));
                lock(state).pods.insert(
                    name.to_string(),
                    Adopted {
                        endpoint,
                        running: true,
                    },
                );
                changed = true;
            }
            _ => {}
        }
        if let Mode::StandIn { kubelet, .. } = mode {
            let result = if known != Some(true) {
                let ip = lock(state).pods.get(name).map(|a| a.endpoint.ip());
                match ip {
                    Some(ip) => kubelet.try_run(name, ip, true).await.map(|_| {
                        if let Some(a) = lock(state).pods.get_mut(name) {
                            a.running = true;
                        }
                    }),
                    None => Ok(()),
                }
            } else if ready_as_kubelet(pod).0 != (condition_status(pod, "Ready") == Some("True"))
                || condition(pod, "Ready").is_none()
            {
                // podgate changed a gate: the kubelet's next status sync recomputes Ready.
                kubelet.try_sync_ready(name).await.map(|_| ())
            } else {
                Ok(())
            };
            match result {
                Ok(()) => {}
                // Deleted meanwhile (e.g. a ReplicaSet scaled down): forgotten next pass.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => {
                    first_error.get_or_insert(format!("pod {namespace}/{name}: {e}"));
                }
            }
        }
    }
    if changed && let Mode::BesideKubelet { targets } = mode {
        let list: Vec<(String, String)> = lock(state)
            .pods
            .iter()
            .map(|(name, a)| (name.clone(), a.endpoint.addr().to_string()))
            .collect();
        write_targets(targets, namespace, &list);
    }
    first_error.map_or(Ok(()), Err)
}

/// An endpoint on a fresh address of the pod network `network` (None: a loopback address), on
/// `port` (None: any free port). A port taken on one address is tried on a few others.
async fn bind_endpoint(
    network: Option<[u8; 2]>,
    port: Option<u16>,
) -> Result<MetricsEndpoint, String> {
    let mut last = String::new();
    for _ in 0..5 {
        let ip = match network {
            Some(network) => unique_pod_ip(network),
            None => unique_loopback_ip(),
        };
        match MetricsEndpoint::try_start_on(ip, port.unwrap_or(0)).await {
            Ok(endpoint) => return Ok(endpoint),
            Err(e) => last = format!("binding {ip}:{}: {e}", port.unwrap_or(0)),
        }
    }
    Err(last)
}

/// Writes a Prometheus `file_sd` file (atomically: Prometheus may read it at any time).
fn write_targets(path: &PathBuf, namespace: &str, targets: &[(String, String)]) {
    let groups: Vec<_> = targets
        .iter()
        .map(|(pod, addr)| {
            json!({
                "targets": [addr],
                "labels": { "namespace": namespace, "pod": pod },
            })
        })
        .collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::Value::Array(groups).to_string())
        .unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path)
        .unwrap_or_else(|e| panic!("renaming {} to {}: {e}", tmp.display(), path.display()));
}

/// A port number to give every pod of a Deployment (their template declares one port): free
/// on every address now, so binding it on fresh loopback addresses works.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("0.0.0.0", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("finding a free port: {e}"))
}

/// A Deployment of `replicas` pods labelled `app: <name>` and `version`, bound to `node`, with
/// the readiness gate `gate`, a container port named `metrics` (`port`), a rolling update of
/// one pod at a time that never lowers availability (`maxSurge: 1`, `maxUnavailable: 0`) and
/// the given progress deadline.
pub fn deployment(
    name: &str,
    node: &str,
    gate: &str,
    port: u16,
    version: &str,
    replicas: i32,
    progress_deadline_seconds: i32,
) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": progress_deadline_seconds,
            "revisionHistoryLimit": 5,
            "selector": { "matchLabels": { "app": name } },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 },
            },
            "template": {
                "metadata": { "labels": { "app": name, VERSION_LABEL: version } },
                "spec": {
                    "nodeName": node,
                    "readinessGates": [{ "conditionType": gate }],
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{
                        "name": super::pods::CONTAINER,
                        "image": format!("registry.invalid/{name}:{version}"),
                        "ports": [{ "name": "metrics", "containerPort": port, "protocol": "TCP" }],
                    }],
                },
            },
        },
    }))
    .unwrap_or_else(|e| panic!("building Deployment {name}: {e}"))
}

/// A ClusterIP Service for [`deployment`] `name`'s pods (port 80 to their `metrics` port).
pub fn service(name: &str) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name },
        "spec": {
            "selector": { "app": name },
            "ports": [{ "name": "http", "port": 80, "targetPort": "metrics", "protocol": "TCP" }],
        },
    }))
    .unwrap_or_else(|e| panic!("building Service {name}: {e}"))
}

/// One ReplicaSet of a rollout, as counted by its controller.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSetCounts {
    pub name: String,
    pub version: String,
    /// `spec.replicas`: what the Deployment controller asks of it.
    pub desired: i32,
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
}

/// One pod: its version, phase, `Ready` and gate as set in its status.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSummary {
    pub name: String,
    pub version: String,
    pub phase: String,
    pub ready: Option<String>,
    pub gate: Option<String>,
}

/// One endpoint of the Service's EndpointSlices.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSummary {
    pub pod: String,
    pub addresses: Vec<String>,
    pub ready: Option<bool>,
}

/// A Deployment, its ReplicaSets, its pods and its Service's endpoints, read at one moment.
#[derive(Debug, Clone)]
pub struct RolloutView {
    pub deployment: Deployment,
    pub replica_sets: Vec<ReplicaSetCounts>,
    pub pods: Vec<PodSummary>,
    pub endpoints: Vec<EndpointSummary>,
}

impl RolloutView {
    /// The ReplicaSet whose pods carry `version`.
    pub fn replica_set(&self, version: &str) -> Option<&ReplicaSetCounts> {
        self.replica_sets.iter().find(|r| r.version == version)
    }

    /// The pods of `version`.
    pub fn pods_of(&self, version: &str) -> Vec<&PodSummary> {
        self.pods.iter().filter(|p| p.version == version).collect()
    }

    /// The endpoint of pod `name`, if a slice lists it.
    pub fn endpoint(&self, pod: &str) -> Option<&EndpointSummary> {
        self.endpoints.iter().find(|e| e.pod == pod)
    }

    /// `(status, reason)` of the Deployment's condition `type_`.
    pub fn deployment_condition(&self, type_: &str) -> Option<(String, String)> {
        self.deployment
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
    }

    /// `(replicas, updated, ready, available)` of the Deployment's status.
    pub fn deployment_counts(&self) -> (i32, i32, i32, i32) {
        let s = self.deployment.status.clone().unwrap_or_default();
        (
            s.replicas.unwrap_or(0),
            s.updated_replicas.unwrap_or(0),
            s.ready_replicas.unwrap_or(0),
            s.available_replicas.unwrap_or(0),
        )
    }

    /// A compact description for failure messages.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let (replicas, updated, ready, available) = self.deployment_counts();
        let conditions: Vec<String> = self
            .deployment
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        format!(
                            "{}={} ({})",
                            c.type_,
                            c.status,
                            c.reason.as_deref().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "deployment: replicas={replicas} updated={updated} ready={ready} \
             available={available} conditions={conditions:?}"
        );
        for r in &self.replica_sets {
            let _ = writeln!(out, "  replicaset {r:?}");
        }
        for p in &self.pods {
            let _ = writeln!(out, "  pod {p:?}");
        }
        for e in &self.endpoints {
            let _ = writeln!(out, "  endpoint {e:?}");
        }
        out
    }
}

/// What one poll of [`Rollout::wait`] concluded.
pub enum Check<T> {
    /// Done, with a value.
    Done(T),
    /// Not yet; what was seen.
    Wait(String),
    /// Something that must not happen happened: fail now, with this.
    Fail(String),
}

/// A Deployment `name` with a Service of the same name, watched in one namespace.
pub struct Rollout<'a> {
    pub cp: &'a ControlPlane,
    pub namespace: String,
    pub name: String,
    deployments: Api<Deployment>,
    replica_sets: Api<ReplicaSet>,
    pods: Api<Pod>,
    slices: Api<EndpointSlice>,
    gate: String,
}

/// How long a rollout step may take. Generous: a shared 2-core machine, debug builds.
pub const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(90);

impl<'a> Rollout<'a> {
    pub fn new(
        cp: &'a ControlPlane,
        admin: Client,
        namespace: &str,
        name: &str,
        gate: &str,
    ) -> Rollout<'a> {
        Rollout {
            cp,
            namespace: namespace.to_string(),
            name: name.to_string(),
            deployments: Api::namespaced(admin.clone(), namespace),
            replica_sets: Api::namespaced(admin.clone(), namespace),
            pods: Api::namespaced(admin.clone(), namespace),
            slices: Api::namespaced(admin, namespace),
            gate: gate.to_string(),
        }
    }

    pub fn deployments(&self) -> &Api<Deployment> {
        &self.deployments
    }

    pub fn pods(&self) -> &Api<Pod> {
        &self.pods
    }

    /// Reads the Deployment, its ReplicaSets and pods, and the Service's EndpointSlices.
    pub async fn view(&self) -> Result<RolloutView, String> {
        let ns = &self.namespace;
        let deployment = self
            .deployments
            .get(&self.name)
            .await
            .map_err(|e| format!("reading Deployment {ns}/{}: {e}", self.name))?;
        let selector = format!("app={}", self.name);
        let by_app = ListParams::default().labels(&selector);
        let mut replica_sets: Vec<ReplicaSetCounts> = self
            .replica_sets
            .list(&by_app)
            .await
            .map_err(|e| format!("listing ReplicaSets of {ns}: {e}"))?
            .items
            .into_iter()
            .map(|rs| {
                let status = rs.status.clone().unwrap_or_default();
                ReplicaSetCounts {
                    name: rs.metadata.name.clone().unwrap_or_default(),
                    version: rs
                        .spec
                        .as_ref()
                        .and_then(|s| s.template.as_ref())
                        .and_then(|t| t.metadata.as_ref())
                        .and_then(|m| m.labels.as_ref())
                        .and_then(|l| l.get(VERSION_LABEL))
                        .cloned()
                        .unwrap_or_default(),
                    desired: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
                    replicas: status.replicas,
                    ready: status.ready_replicas.unwrap_or(0),
                    available: status.available_replicas.unwrap_or(0),
                }
            })
            .collect();
        replica_sets.sort_by(|a, b| a.version.cmp(&b.version));
        let mut pods: Vec<PodSummary> = self
            .pods
            .list(&by_app)
            .await
            .map_err(|e| format!("listing pods of {ns}: {e}"))?
            .items
            .iter()
            .map(|p| PodSummary {
                name: p.metadata.name.clone().unwrap_or_default(),
                version: version_of(p),
                phase: p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default(),
                ready: condition_status(p, "Ready").map(str::to_string),
                gate: condition_status(p, &self.gate).map(str::to_string),
            })
            .collect();
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        let by_service =
            ListParams::default().labels(&format!("kubernetes.io/service-name={}", self.name));
        let mut endpoints: Vec<EndpointSummary> = self
            .slices
            .list(&by_service)
            .await
            .map_err(|e| format!("listing EndpointSlices of {ns}: {e}"))?
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .map(|e| EndpointSummary {
                pod: e
                    .target_ref
                    .as_ref()
                    .and_then(|t| t.name.clone())
                    .unwrap_or_default(),
                addresses: e.addresses.clone(),
                ready: e.conditions.as_ref().and_then(|c| c.ready),
            })
            .collect();
        endpoints.sort_by(|a, b| a.pod.cmp(&b.pod));
        Ok(RolloutView {
            deployment,
            replica_sets,
            pods,
            endpoints,
        })
    }

    /// Polls [`Rollout::view`] until `check` says done, and returns its value. Fails the test
    /// when `check` says so, when the controller manager, the daemon or `fleet` die, or on
    /// timeout — with the last view, the daemon's log and the controller manager's log.
    pub async fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        daemon: &Daemon,
        fleet: Option<&Fleet>,
        mut check: impl FnMut(&RolloutView) -> Check<T>,
    ) -> T {
        let started = Instant::now();
        let mut last = String::from("(no view read yet)");
        loop {
            self.cp.assert_controller_manager_running();
            if let Some(fleet) = fleet {
                fleet.check();
            }
            let outcome = match self.view().await {
                Ok(view) => {
                    let outcome = check(&view);
                    last = view.summary();
                    outcome
                }
                Err(e) => Check::Wait(e),
            };
            match outcome {
                Check::Done(value) => return value,
                Check::Wait(seen) => {
                    if started.elapsed() > timeout {
                        self.fail(
                            &format!("timed out after {timeout:?} waiting for: {what} ({seen})"),
                            &last,
                            daemon,
                        )
                        .await;
                    }
                }
                Check::Fail(why) => {
                    self.fail(&format!("while waiting for {what}: {why}"), &last, daemon)
                        .await
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls [`Rollout::view`] for `how_long`, failing the test as soon as `invariant` does
    /// not hold (or the controller manager, the daemon or `fleet` die).
    pub async fn hold(
        &self,
        what: &str,
        how_long: Duration,
        daemon: &Daemon,
        fleet: Option<&Fleet>,
        invariant: impl Fn(&RolloutView) -> Result<(), String>,
    ) {
        let until = Instant::now() + how_long;
        self.wait(
            what,
            how_long + ROLLOUT_TIMEOUT,
            daemon,
            fleet,
            |v| match invariant(v) {
                Err(why) => Check::Fail(why),
                Ok(()) if Instant::now() >= until => Check::Done(()),
                Ok(()) => Check::Wait("holding".to_string()),
            },
        )
        .await;
    }

    async fn fail(&self, why: &str, view: &str, daemon: &Daemon) -> ! {
        let cm_log = self.cp.state_dir().join(format!(
            "{}.log",
            super::Component::ControllerManager.name()
        ));
        panic!(
            "rollout of {}/{}: {why}\nlast view:\n{view}\ndaemon metrics:\n{}\n\
             daemon log (tail):\n{}\nkube-controller-manager log (tail):\n{}",
            self.namespace,
            self.name,
            daemon.activity().await,
            daemon.log_tail(60),
            super::control_plane::log_tail(&cm_log, 30)
        );
    }
}
