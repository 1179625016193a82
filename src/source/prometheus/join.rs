//! Batched queries: a result joined to pods by their namespace and pod labels, so one query
//! per rule per interval serves every pod the rule covers.

use std::collections::{BTreeMap, HashMap};

use super::response::Vector;
use crate::rules::PrometheusLabels;

/// A pod's entry in a joined result.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    One(f64),
    /// This many series carry the pod's labels: the query must aggregate.
    Many(usize),
}

/// A batched result keyed by `(namespace, pod)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    by_namespace: HashMap<String, HashMap<String, Slot>>,
    ignored: usize,
    ignored_example: Option<BTreeMap<String, String>>,
    namespace_label: String,
    pod_label: String,
}

/// Several series of a batched result carry the same pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{count} series for {namespace}/{pod}; aggregate with max by ({namespace_label}, {pod_label})"
)]
pub struct DuplicateSeries {
    pub namespace: String,
    pub pod: String,
    pub count: usize,
    pub namespace_label: String,
    pub pod_label: String,
}

/// Joins a batched result to pods by the namespace and pod labels. Series without both (an
/// empty value counts as absent, as in Prometheus) are ignored and counted.
pub fn join(vector: Vector, labels: &PrometheusLabels) -> Joined {
    let mut joined = Joined {
        by_namespace: HashMap::new(),
        ignored: 0,
        ignored_example: None,
        namespace_label: labels.namespace_label.clone(),
        pod_label: labels.pod_label.clone(),
    };
    for mut sample in vector.samples {
        let namespace = sample
            .labels
            .remove(&labels.namespace_label)
            .filter(|v| !v.is_empty());
        let pod = sample
            .labels
            .remove(&labels.pod_label)
            .filter(|v| !v.is_empty());
        let (Some(namespace), Some(pod)) = (namespace, pod) else {
            joined.ignored += 1;
            if joined.ignored_example.is_none() {
                joined.ignored_example = Some(sample.labels);
            }
            continue;
        };
        joined
            .by_namespace
            .entry(namespace)
            .or_default()
            .entry(pod)
            .and_modify(|slot| {
                *slot = match *slot {
                    Slot::One(_) => Slot::Many(2),
                    Slot::Many(n) => Slot::Many(n + 1),
                }
            })
            .or_insert(Slot::One(sample.value));
    }
    joined
}

impl Joined {
    /// The pod's value (NaN passed through); `Ok(None)` when the result has no series for it
    /// (no data); an error when it has several.
    pub fn get(&self, namespace: &str, pod: &str) -> Result<Option<f64>, DuplicateSeries> {
        match self.by_namespace.get(namespace).and_then(|p| p.get(pod)) {
            None => Ok(None),
            Some(Slot::One(v)) => Ok(Some(*v)),
            Some(Slot::Many(count)) => Err(DuplicateSeries {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                count: *count,
                namespace_label: self.namespace_label.clone(),
                pod_label: self.pod_label.clone(),
            }),
        }
    }

    /// How many distinct pods the result has series for.
    pub fn pods(&self) -> usize {
        self.by_namespace.values().map(HashMap::len).sum()
    }

    /// How many of those pods have more than one series.
    pub fn duplicated_pods(&self) -> usize {
        self.by_namespace
            .values()
            .flat_map(HashMap::values)
            .filter(|s| matches!(s, Slot::Many(_)))
            .count()
    }

    /// How many series lacked the namespace or pod label and were ignored.
    pub fn ignored(&self) -> usize {
        self.ignored
    }

    /// The labels of the first ignored series (without the join labels), for a log message.
    pub fn ignored_example(&self) -> Option<&BTreeMap<String, String>> {
        self.ignored_example.as_ref()
    }
}
