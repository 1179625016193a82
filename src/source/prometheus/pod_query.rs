//! Templated queries: a `promql:` variable with per-pod placeholders, rendered for one pod,
//! whose result must be at most one series.

use std::collections::BTreeMap;

use super::error::PromErrorKind;
use super::response::Vector;
use crate::query::{Placeholder, RenderError, Template};

/// What a templated query may know about a pod (filled from the pod by the caller).
#[derive(Debug, Clone, Copy)]
pub struct PodFacts<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    /// `spec.nodeName`, None before scheduling.
    pub node: Option<&'a str>,
    /// `status.podIP`, None before it has one.
    pub pod_ip: Option<&'a str>,
    pub labels: &'a BTreeMap<String, String>,
}

impl<'a> PodFacts<'a> {
    /// The value of a placeholder for this pod; None when it has none (an empty name, node or
    /// IP counts as none; a label may be present with an empty value).
    pub fn value(&self, placeholder: &Placeholder) -> Option<&'a str> {
        let non_empty = |s: &'a str| Some(s).filter(|s| !s.is_empty());
        match placeholder {
            Placeholder::Pod => non_empty(self.name),
            Placeholder::Namespace => non_empty(self.namespace),
            Placeholder::Node => self.node.and_then(non_empty),
            Placeholder::PodIp => self.pod_ip.and_then(non_empty),
            Placeholder::Label(key) => self.labels.get(key).map(String::as_str),
        }
    }
}

/// The query a template gives for one pod, values escaped for PromQL string literals.
pub fn render_for_pod(template: &Template, pod: &PodFacts<'_>) -> Result<String, RenderError> {
    template.render(|p| pod.value(p))
}

/// The value of a templated query's result: `Ok(None)` for no series (no data), the value
/// (NaN passed through) for one, an error naming the count for more.
pub fn single_value(vector: &Vector) -> Result<Option<f64>, PromErrorKind> {
    match vector.samples.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.value)),
        many => Err(PromErrorKind::SeriesCount { count: many.len() }),
    }
}
