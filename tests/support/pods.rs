//! Test pods and a stand-in kubelet.
//!
//! No kubelet runs for [`TEST_NODE`]: its pods stay Pending until a test moves them along
//! with [`Kubelet`], which writes `pods/status` the way a kubelet does — including the `Ready`
//! condition, which only a kubelet computes (all containers ready AND every readiness gate's
//! condition True). Pods that controllers create are run the same way by
//! [`super::fleet::Fleet`]. (A real kubelet, kubemark's hollow node, runs only inside
//! scripts/test's network namespace, for its own node: see [`super::ControlPlane::hollow_node`].)

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Pod, PodCondition, PodReadinessGate, PodSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The node every test pod is "scheduled" to. A `spec.nodeName` makes the apiserver treat the
/// pod as bound (deletion then needs `gracePeriodSeconds: 0`). `scripts/control-plane start`
/// creates its Node object, without which the EndpointSlice controller skips the pods.
pub const TEST_NODE: &str = "podgate-test-node";
/// The (single) container's name.
pub const CONTAINER: &str = "app";

/// A pod to create: readiness gates, labels, annotations and a named container port.
#[derive(Clone, Debug)]
pub struct TestPod {
    pub name: String,
    pub gates: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub port_name: String,
    pub port: u16,
    /// `spec.nodeName` ([`TEST_NODE`] unless set with [`TestPod::node`]).
    pub node: String,
}

impl TestPod {
    /// A pod with one container exposing port `metrics` (9090 until [`TestPod::port`]).
    pub fn new(name: &str) -> TestPod {
        TestPod {
            name: name.to_string(),
            gates: Vec::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            port_name: "metrics".to_string(),
            port: 9090,
            node: TEST_NODE.to_string(),
        }
    }

    /// Adds a readiness gate (`spec.readinessGates[].conditionType`).
    pub fn gate(mut self, condition_type: &str) -> TestPod {
        self.gates.push(condition_type.to_string());
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> TestPod {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> TestPod {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }

    /// The named container port (e.g. the port of a [`super::MetricsEndpoint`]).
    pub fn port(mut self, name: &str, number: u16) -> TestPod {
        self.port_name = name.to_string();
        self.port = number;
        self
    }

    /// The node the pod is bound to (`spec.nodeName`).
    pub fn node(mut self, node: &str) -> TestPod {
        self.node = node.to_string();
        self
    }

    pub fn build(&self) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(self.labels.clone()),
                annotations: Some(self.annotations.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some(self.node.clone()),
                readiness_gates: Some(
                    self.gates
                        .iter()
                        .map(|g| PodReadinessGate {
                            condition_type: g.clone(),
                        })
                        .collect(),
                ),
                containers: vec![Container {
                    name: CONTAINER.to_string(),
                    image: Some("registry.invalid/podgate-test:1".to_string()),
                    ports: Some(vec![ContainerPort {
                        name: Some(self.port_name.clone()),
                        container_port: i32::from(self.port),
                        protocol: Some("TCP".to_string()),
                        ..ContainerPort::default()
                    }]),
                    ..Container::default()
                }],
                termination_grace_period_seconds: Some(0),
                ..PodSpec::default()
            }),
            status: None,
        }
    }

    /// Creates the pod (Pending, no IP) through `pods`.
    pub async fn create(&self, pods: &Api<Pod>) -> Pod {
        pods.create(&PostParams::default(), &self.build())
            .await
            .unwrap_or_else(|e| panic!("creating pod {}: {e}", self.name))
    }
}

/// Deletes a pod at once (no kubelet will ever confirm a graceful deletion).
pub async fn delete_pod_now(pods: &Api<Pod>, name: &str) {
    pods.delete(name, &DeleteParams::default().grace_period(0))
        .await
        .unwrap_or_else(|e| panic!("deleting pod {name}: {e}"));
}

/// The condition `type_` of a pod, if present.
pub fn condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// The status ("True"/"False"/"Unknown") of condition `type_`, if present.
pub fn condition_status<'a>(pod: &'a Pod, type_: &str) -> Option<&'a str> {
    condition(pod, type_).map(|c| c.status.as_str())
}

/// `Ready` as a kubelet computes it: containers ready AND every readiness gate's condition
/// True. Returns the status and, when not ready, the kubelet's reason and message.
pub fn ready_as_kubelet(pod: &Pod) -> (bool, Option<(String, String)>) {
    if condition_status(pod, "ContainersReady") != Some("True") {
        return (
            false,
            Some((
                "ContainersNotReady".to_string(),
                format!("containers with unready status: [{CONTAINER}]"),
            )),
        );
    }
    let gates = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut unready = Vec::new();
    for gate in gates {
        match condition(pod, &gate.condition_type) {
            None => unready.push(format!(
                "corresponding condition of pod readiness gate \"{}\" does not exist.",
                gate.condition_type
            )),
            Some(c) if c.status != "True" => unready.push(format!(
                "the status of pod readiness gate \"{}\" is not \"True\", but {}",
                gate.condition_type, c.status
            )),
            Some(_) => {}
        }
    }
    if unready.is_empty() {
        (true, None)
    } else {
        (
            false,
            Some(("ReadinessGatesNotReady".to_string(), unready.join(", "))),
        )
    }
}

/// Plays the kubelet of one namespace: writes `pods/status` with an admin client.
#[derive(Clone)]
pub struct Kubelet {
    pods: Api<Pod>,
}

impl Kubelet {
    pub fn new(admin: Client, namespace: &str) -> Kubelet {
        Kubelet {
            pods: Api::namespaced(admin, namespace),
        }
    }

    /// Starts the pod: phase Running with `pod_ip` (and the node's IP 127.0.0.1),
    /// PodScheduled/Initialized True, ContainersReady as given, and `Ready` computed.
    pub async fn run(&self, name: &str, pod_ip: Ipv4Addr, containers_ready: bool) -> Pod {
        self.try_run(name, pod_ip, containers_ready)
            .await
            .unwrap_or_else(|e| panic!("kubelet: running pod {name}: {e}"))
    }

    /// As [`Kubelet::run`], returning the API's error (e.g. the pod was deleted meanwhile)
    /// instead of failing the test.
    pub async fn try_run(
        &self,
        name: &str,
        pod_ip: Ipv4Addr,
        containers_ready: bool,
    ) -> Result<Pod, kube::Error> {
        let pod = self.pods.get(name).await?;
        let mut conditions = vec![
            self.condition(&pod, "PodScheduled", true, None),
            self.condition(&pod, "Initialized", true, None),
            self.condition(&pod, "ContainersReady", containers_ready, None),
        ];
        let started = Time(Timestamp::now());
        let status = json!({
            "phase": "Running",
            "podIP": pod_ip.to_string(),
            "podIPs": [{ "ip": pod_ip.to_string() }],
            "hostIP": "127.0.0.1",
            "hostIPs": [{ "ip": "127.0.0.1" }],
            "startTime": started,
            "containerStatuses": [container_status(containers_ready, &started)],
        });
        // Ready follows from the conditions as they will be after this write.
        let mut preview = pod.clone();
        merge_conditions(&mut preview, &conditions);
        conditions.push(self.ready_condition(&preview));
        self.try_patch_status(name, status, conditions).await
    }

    /// Sets ContainersReady (and the container's `ready`), then recomputes `Ready`.
    pub async fn set_containers_ready(&self, name: &str, ready: bool) -> Pod {
        let pod = self.get(name).await;
        let mut conditions = vec![self.condition(&pod, "ContainersReady", ready, None)];
        let mut preview = pod.clone();
        merge_conditions(&mut preview, &conditions);
        conditions.push(self.ready_condition(&preview));
        let started = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.clone())
            .unwrap_or(Time(Timestamp::now()));
        let status = json!({ "containerStatuses": [container_status(ready, &started)] });
        self.patch_status(name, status, conditions).await
    }

    /// Recomputes `Ready` from the pod's current conditions, as a kubelet does on its next
    /// status sync (e.g. after podgate changed a gate).
    pub async fn sync_ready(&self, name: &str) -> Pod {
        self.try_sync_ready(name)
            .await
            .unwrap_or_else(|e| panic!("kubelet: syncing Ready of pod {name}: {e}"))
    }

    /// As [`Kubelet::sync_ready`], returning the API's error instead of failing the test.
    pub async fn try_sync_ready(&self, name: &str) -> Result<Pod, kube::Error> {
        let pod = self.pods.get(name).await?;
        let ready = self.ready_condition(&pod);
        self.try_patch_status(name, json!({}), vec![ready]).await
    }

    /// Gives the pod another IP (as after a sandbox restart). A JSON merge patch, because a
    /// strategic merge would add to `podIPs` rather than replace it.
    pub async fn set_pod_ip(&self, name: &str, pod_ip: Ipv4Addr) -> Pod {
        let patch = json!({ "status": {
            "podIP": pod_ip.to_string(),
            "podIPs": [{ "ip": pod_ip.to_string() }],
        }});
        self.pods
            .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap_or_else(|e| panic!("kubelet: moving pod {name} to {pod_ip}: {e}"))
    }

    async fn get(&self, name: &str) -> Pod {
        self.pods
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("kubelet: reading pod {name}: {e}"))
    }

    fn ready_condition(&self, pod: &Pod) -> Value {
        let (ready, why) = ready_as_kubelet(pod);
        self.condition(pod, "Ready", ready, why)
    }

    /// A condition entry; `lastTransitionTime` moves only when the status changes.
    fn condition(
        &self,
        pod: &Pod,
        type_: &str,
        status: bool,
        why: Option<(String, String)>,
    ) -> Value {
        let status = if status { "True" } else { "False" };
        let transition = match condition(pod, type_) {
            Some(c) if c.status == status => c.last_transition_time.clone(),
            _ => None,
        }
        .unwrap_or(Time(Timestamp::now()));
        let mut c = json!({
            "type": type_,
            "status": status,
            "lastProbeTime": null,
            "lastTransitionTime": transition,
        });
        if let Some((reason, message)) = why {
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        } else {
            // Strategic merge keeps fields that are absent; null removes a stale reason.
            c["reason"] = Value::Null;
            c["message"] = Value::Null;
        }
        c
    }

    /// A strategic-merge patch of `pods/status`: conditions merge by `type`, so podgate's
    /// own conditions stay untouched — exactly how a kubelet writes.
    async fn patch_status(&self, name: &str, status: Value, conditions: Vec<Value>) -> Pod {
        self.try_patch_status(name, status, conditions)
            .await
            .unwrap_or_else(|e| panic!("kubelet: patching status of pod {name}: {e}"))
    }

    async fn try_patch_status(
        &self,
        name: &str,
        mut status: Value,
        conditions: Vec<Value>,
    ) -> Result<Pod, kube::Error> {
        if !conditions.is_empty() {
            status["conditions"] = Value::Array(conditions);
        }
        let patch = json!({ "status": status });
        self.pods
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
    }
}

fn container_status(ready: bool, started: &Time) -> Value {
    json!({
        "name": CONTAINER,
        "image": "registry.invalid/podgate-test:1",
        "imageID": "",
        "ready": ready,
        "started": true,
        "restartCount": 0,
        "state": { "running": { "startedAt": started } },
    })
}

/// Applies condition entries (JSON as sent to the API) to a local copy of a pod, merging by
/// type, so `Ready` can be computed before the write.
fn merge_conditions(pod: &mut Pod, entries: &[Value]) {
    let status = pod.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    for entry in entries {
        let (Some(type_), Some(value)) = (
            entry.get("type").and_then(Value::as_str),
            entry.get("status").and_then(Value::as_str),
        ) else {
            continue;
        };
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => c.status = value.to_string(),
            None => conditions.push(PodCondition {
                type_: type_.to_string(),
                status: value.to_string(),
                ..PodCondition::default()
            }),
        }
    }
}
