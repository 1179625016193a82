//! What the controller loop and the pod tasks tell each other: a pod task's configuration
//! (sent by the loop when the pod or the rules change) and an evaluation's result (sent back).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::target::Target;
use crate::decision::engine::PodKey;
use crate::evaluate::RuleEvaluation;
use crate::peers::PodOwner;
use crate::rules::Rule;

/// What a pod task works from; replaced (through a watch channel) when the pod or the rules
/// change.
#[derive(Debug, Clone)]
pub struct PodConfig {
    pub key: PodKey,
    pub uid: String,
    pub target: Target,
    pub node: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The workload owning the pod (its default peer group).
    pub owner: Option<PodOwner>,
    /// When ContainersReady turned True (ms).
    pub ready_since: i64,
    pub rules: Vec<Arc<Rule>>,
    /// Rules already decided on this pod (e.g. found on the pod after a restart): their first
    /// evaluation is spread over the interval so a restart does not scrape everything at once.
    /// Undecided rules are evaluated at once, so a new pod's gate turns True quickly.
    pub spread: HashSet<String>,
}

impl PodConfig {
    /// Whether a task working from `self` would do the same with `other`: same pod, target,
    /// facts and the very same rules (a reloaded rule is another `Arc`).
    pub fn same_work(&self, other: &PodConfig) -> bool {
        self.uid == other.uid
            && self.target == other.target
            && self.ready_since == other.ready_since
            && self.labels == other.labels
            && self.owner == other.owner
            && self.node == other.node
            && self.rules.len() == other.rules.len()
            && self
                .rules
                .iter()
                .zip(&other.rules)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

/// One evaluation, for the controller loop.
#[derive(Debug)]
pub struct EvalMsg {
    pub key: PodKey,
    pub uid: String,
    pub rule: Arc<Rule>,
    pub result: RuleEvaluation,
    pub at_ms: i64,
    pub took: Duration,
}
