//! The watcher's store: the compact snapshot of every known pod, the namespaces' override
//! annotations and the bookkeeping of a (re-)list, fed watch events one at a time and saying
//! what the controller must hear. Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ::kube::ResourceExt;
use ::kube::api::PartialObjectMeta;
use ::kube::runtime::watcher::Event;
use k8s_openapi::api::core::v1::{Namespace, Pod};

use super::snapshot::{PodEvent, PodSnapshot, override_annotated, pod_key, pod_snapshot};
use crate::decision::engine::PodKey;
use crate::decision::gate::Override;

/// A known pod: its snapshot and where it came from.
pub(super) struct Known {
    scope: usize,
    /// The pod itself carries the override annotation (the namespace's is applied on top).
    pod_override: bool,
    snapshot: PodSnapshot,
}

/// The watcher state: the compact pod store, namespace overrides, re-list bookkeeping.
#[derive(Default)]
pub(super) struct Store {
    pub(super) pods: BTreeMap<PodKey, Known>,
    ns_override: HashMap<String, bool>,
    /// Per scope: the keys seen since the current (re-)list began, while one is under way.
    listing: HashMap<usize, BTreeSet<PodKey>>,
    /// Namespaces seen since the current namespace (re-)list began.
    ns_listing: Option<BTreeSet<String>>,
}

impl Store {
    /// How many pods of `scope` are known.
    pub(super) fn pods_in(&self, scope: usize) -> usize {
        self.pods.values().filter(|k| k.scope == scope).count()
    }

    fn ns_override(&self, namespace: &str) -> bool {
        self.ns_override.get(namespace).copied().unwrap_or(false)
    }

    /// Applies one pod watch event; returns what the controller must hear.
    pub(super) fn pod_event(&mut self, scope: usize, event: Event<Pod>) -> Vec<PodEvent> {
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
    pub(super) fn namespace_event(
        &mut self,
        event: Event<PartialObjectMeta<Namespace>>,
    ) -> Vec<PodEvent> {
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
