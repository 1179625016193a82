//! What podgate knows about a pod, as plain data: a [`PodSnapshot`] holds only the fields
//! podgate uses (no Kubernetes types, no managedFields), and [`PodEvent`] is what the watcher
//! tells the controller. [`pod_snapshot`] reduces a pod to it; pure, no clock, no I/O.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;

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

pub(super) fn pod_key(pod: &Pod) -> PodKey {
    PodKey::new(
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}
