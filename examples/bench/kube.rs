//! The fleet's Kubernetes side: pods with one gate each, a stand-in kubelet that sets the
//! status a kubelet would (Running, pod IP, ContainersReady), and a watch that records when
//! each pod's gate changes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::json;

use crate::sim::{PORT, pod_ip};

pub const GATE: &str = "bench.podgate.dev/healthy";
pub const LABEL: &str = "bench.podgate.dev/fleet";

pub async fn client(kubeconfig: &Path) -> Result<Client, String> {
    podgate::source::init_tls();
    let kc = Kubeconfig::read_from(kubeconfig)
        .map_err(|e| format!("reading {}: {e}", kubeconfig.display()))?;
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("loading {}: {e}", kubeconfig.display()))?;
    config.read_timeout = Some(Duration::from_secs(300));
    Client::try_from(config).map_err(|e| format!("kube client: {e}"))
}

pub fn pod_name(i: usize) -> String {
    format!("app-{i:05}")
}

pub async fn ensure_namespace(client: &Client, name: &str) -> Result<(), String> {
    let api: Api<Namespace> = Api::all(client.clone());
    if api
        .get_opt(name)
        .await
        .map_err(|e| format!("reading namespace {name}: {e}"))?
        .is_none()
    {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))
            .map_err(|e| e.to_string())?;
        api.create(&PostParams::default(), &ns)
            .await
            .map_err(|e| format!("creating namespace {name}: {e}"))?;
    }
    Ok(())
}

/// Deletes every pod of the namespace at once (no kubelet confirms a graceful deletion).
pub async fn delete_all(client: &Client, ns: &str) -> Result<(), String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.delete_collection(
        &DeleteParams::default().grace_period(0),
        &ListParams::default(),
    )
    .await
    .map_err(|e| format!("deleting the pods of {ns}: {e}"))?;
    Ok(())
}

/// The namespace's pods API once the namespace exists and holds no pods.
pub async fn empty_namespace(client: &Client, ns: &str) -> Result<Api<Pod>, String> {
    ensure_namespace(client, ns).await?;
    delete_all(client, ns).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    crate::wait_until("old pods gone", Duration::from_secs(120), || async {
        pods.list_metadata(&Default::default())
            .await
            .is_ok_and(|l| l.items.is_empty())
    })
    .await?;
    Ok(pods)
}

fn manifest(i: usize) -> Result<Pod, String> {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name(i), "labels": {LABEL: "yes", "app.kubernetes.io/name": "app"}},
        "spec": {
            "nodeName": "bench-node",
            "terminationGracePeriodSeconds": 0,
            "readinessGates": [{"conditionType": GATE}],
            "containers": [{
                "name": "app",
                "image": "registry.invalid/app:1",
                "ports": [{"name": "metrics", "containerPort": PORT, "protocol": "TCP"}],
            }],
        },
    }))
    .map_err(|e| format!("pod manifest: {e}"))
}

pub async fn create_pod(api: &Api<Pod>, i: usize) -> Result<(), String> {
    api.create(&PostParams::default(), &manifest(i)?)
        .await
        .map_err(|e| format!("creating pod {}: {e}", pod_name(i)))?;
    Ok(())
}

pub async fn delete_pod(api: &Api<Pod>, i: usize) -> Result<(), String> {
    api.delete(&pod_name(i), &DeleteParams::default().grace_period(0))
        .await
        .map_err(|e| format!("deleting pod {}: {e}", pod_name(i)))?;
    Ok(())
}

/// What a kubelet writes once the containers run: phase, IPs, and the conditions up to
/// ContainersReady (Ready stays False: a gate is not set yet).
pub async fn start_pod(api: &Api<Pod>, i: usize) -> Result<(), String> {
    let now = Time(Timestamp::now());
    let ip = pod_ip(i).to_string();
    let cond = |t: &str, s: &str| json!({"type": t, "status": s, "lastProbeTime": null, "lastTransitionTime": now});
    let patch = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "hostIP": "127.0.0.1",
        "startTime": now,
        "containerStatuses": [{
            "name": "app", "image": "registry.invalid/app:1", "imageID": "",
            "ready": true, "started": true, "restartCount": 0,
            "state": {"running": {"startedAt": now}},
        }],
        "conditions": [cond("PodScheduled", "True"), cond("Initialized", "True"),
                       cond("ContainersReady", "True"), cond("Ready", "False")],
    }});
    api.patch_status(
        &pod_name(i),
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .map_err(|e| format!("setting the status of {}: {e}", pod_name(i)))?;
    Ok(())
}

/// Creates and starts pods `range` with `concurrency` requests in flight.
pub async fn create_fleet(
    api: &Api<Pod>,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> Result<(), String> {
    stream::iter(range)
        .map(|i| async move {
            create_pod(api, i).await?;
            start_pod(api, i).await
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// The pod's gate: True, False, or None before podgate set it.
fn gate_status(pod: &Pod) -> Option<bool> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == GATE))
        .map(|c| c.status == "True")
}

/// Every pod's gate status as the API server has it now (pods without the condition are
/// left out).
pub async fn gate_statuses(api: &Api<Pod>) -> Result<HashMap<String, bool>, String> {
    let mut out = HashMap::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| format!("listing pods: {e}"))?;
        for pod in &page.items {
            if let (Some(name), Some(status)) = (pod.metadata.name.clone(), gate_status(pod)) {
                out.insert(name, status);
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => params = params.continue_token(&c),
            None => return Ok(out),
        }
    }
}

/// Each change of one pod's gate: (status, when first seen).
type History = Vec<(bool, Instant)>;

/// Gate changes seen by the watch, per pod name.
#[derive(Clone, Default)]
pub struct Gates {
    inner: Arc<Mutex<HashMap<String, History>>>,
}

impl Gates {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, History>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn observe(&self, pod: &Pod, at: Instant) {
        let Some(name) = pod.metadata.name.clone() else {
            return;
        };
        let Some(status) = gate_status(pod) else {
            return;
        };
        let mut map = self.lock();
        let history = map.entry(name).or_default();
        if history.last().map(|(s, _)| *s) != Some(status) {
            history.push((status, at));
        }
    }

    /// How many of `names` have the gate at `status` now.
    pub fn count(&self, names: &[String], status: bool) -> usize {
        let map = self.lock();
        names
            .iter()
            .filter(|n| {
                map.get(*n)
                    .and_then(|h| h.last())
                    .is_some_and(|(s, _)| *s == status)
            })
            .count()
    }

    /// When `name`'s gate first reached `status` at or after `since`.
    pub fn reached(&self, name: &str, status: bool, since: Instant) -> Option<Instant> {
        self.lock()
            .get(name)?
            .iter()
            .find(|(s, at)| *s == status && *at >= since)
            .map(|(_, at)| *at)
    }

    /// Gate changes seen for `names` at or after `since`.
    pub fn changes_since(&self, names: &[String], since: Instant) -> usize {
        let map = self.lock();
        names
            .iter()
            .filter_map(|n| map.get(n))
            .map(|h| h.iter().filter(|(_, at)| *at >= since).count())
            .sum()
    }
}

/// Watches the namespace's pods and records gate changes until the process ends.
pub fn watch_gates(client: Client, ns: &str) -> Gates {
    let gates = Gates::default();
    let api: Api<Pod> = Api::namespaced(client, ns);
    let g = gates.clone();
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = stream.next().await {
            let now = Instant::now();
            match event {
                Ok(watcher::Event::Apply(pod)) | Ok(watcher::Event::InitApply(pod)) => {
                    g.observe(&pod, now)
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("bench: pod watch: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    gates
}
