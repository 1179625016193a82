//! The in-memory index of every pod podgate decides for, and the decisions themselves.
//!
//! The engine knows pods only as plain data ([`PodInfo`]); the Kubernetes layer translates.
//! It answers which rules cover a pod, feeds evaluations to each (pod, rule) state machine,
//! applies the panic threshold across a rule's pods in a namespace, combines the rules of a
//! gate, and emits a [`GateUpdate`] only when a gate's condition changes.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use super::gate::{self, Override, RuleVerdict};
use super::state::{Params, PodFacts, RuleState, Step};
use super::{Condition, Evaluation};
use crate::rules::{Rule, RuleSet};

/// A pod's identity: namespace and name (ordered so a namespace is one contiguous range).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl PodKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> PodKey {
        PodKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What the engine needs to know about a pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodInfo {
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    /// `spec.readinessGates[].conditionType`.
    pub gates: Vec<String>,
    /// When ContainersReady last turned True (ms), if it is True.
    pub containers_ready_since: Option<i64>,
    pub override_by: Option<Override>,
    /// The pod's current conditions for its gates, as last seen on the API server; used to
    /// pick up where a previous podgate left off instead of deciding from nothing.
    pub conditions: BTreeMap<String, Condition>,
}

/// A gate condition to write.
#[derive(Debug, Clone, PartialEq)]
pub struct GateUpdate {
    pub pod: PodKey,
    pub uid: String,
    pub condition_type: String,
    pub condition: Condition,
}

/// What one evaluation did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    pub step: Option<Step>,
    pub update: Option<GateUpdate>,
}

struct Tracked {
    rule: Arc<Rule>,
    state: RuleState,
}

struct PodEntry {
    info: PodInfo,
    tracked: Vec<Tracked>,
    /// The last condition computed per gate (None: undecided).
    gates: BTreeMap<String, Option<Condition>>,
}

/// Counts of rule verdicts, for `podgate_gates{rule,status}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerdictCounts {
    pub true_: usize,
    pub false_: usize,
    pub unknown: usize,
}

#[derive(Default)]
pub struct Engine {
    rules: Vec<Arc<Rule>>,
    pods: BTreeMap<PodKey, PodEntry>,
}

impl Engine {
    pub fn new(rules: &RuleSet) -> Engine {
        Engine {
            rules: rules.rules.clone(),
            pods: BTreeMap::new(),
        }
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// Whether some rule owns `condition_type`.
    pub fn owns(&self, condition_type: &str) -> bool {
        self.rules.iter().any(|r| r.condition_type == condition_type)
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    pub fn pod(&self, key: &PodKey) -> Option<&PodInfo> {
        self.pods.get(key).map(|e| &e.info)
    }

    /// The rules that cover a pod, in rule order.
    pub fn rules_for(&self, key: &PodKey) -> Vec<Arc<Rule>> {
        self.pods
            .get(key)
            .map(|e| e.tracked.iter().map(|t| t.rule.clone()).collect())
            .unwrap_or_default()
    }

    /// A rule's state on a pod.
    pub fn state(&self, key: &PodKey, rule: &str) -> Option<&RuleState> {
        let entry = self.pods.get(key)?;
        entry
            .tracked
            .iter()
            .find(|t| t.rule.name == rule)
            .map(|t| &t.state)
    }

    /// The keys of every tracked pod.
    pub fn pod_keys(&self) -> impl Iterator<Item = &PodKey> {
        self.pods.keys()
    }

    /// Swaps in a new rule set. Rules whose definition is unchanged keep their state on every
    /// pod; changed or new rules start afresh. Returns the gate conditions that change.
    pub fn set_rules(&mut self, rules: &RuleSet) -> Vec<GateUpdate> {
        self.rules = rules.rules.clone();
        let keys: Vec<PodKey> = self.pods.keys().cloned().collect();
        let mut updates = Vec::new();
        for key in keys {
            if let Some(entry) = self.pods.remove(&key) {
                let PodEntry { info, tracked, .. } = entry;
                let mut old: HashMap<String, Tracked> = tracked
                    .into_iter()
                    .map(|t| (t.rule.name.clone(), t))
                    .collect();
                let mut entry = self.build_entry(&key, info, |rule| {
                    old.remove(&rule.name)
                        .filter(|t| t.rule.same_definition(rule))
                        .map(|t| t.state)
                });
                // A gate whose rules all went away is left as it was: podgate no longer owns it.
                updates.extend(recompute_gates(&key, &mut entry));
                self.pods.insert(key, entry);
            }
        }
        updates
    }

    /// Adds or refreshes a pod. A new uid under the same name is a new pod.
    pub fn upsert_pod(&mut self, key: PodKey, info: PodInfo) -> Vec<GateUpdate> {
        let mut old: HashMap<String, RuleState> = match self.pods.remove(&key) {
            Some(e) if e.info.uid == info.uid => e
                .tracked
                .into_iter()
                .map(|t| (t.rule.name.clone(), t.state))
                .collect(),
            _ => HashMap::new(),
        };
        let mut entry = self.build_entry(&key, info, |rule| old.remove(&rule.name));
        let updates = recompute_gates(&key, &mut entry);
        self.pods.insert(key, entry);
        updates
    }

    pub fn remove_pod(&mut self, key: &PodKey) {
        self.pods.remove(key);
    }

    fn build_entry(
        &self,
        key: &PodKey,
        info: PodInfo,
        mut keep: impl FnMut(&Rule) -> Option<RuleState>,
    ) -> PodEntry {
        let tracked: Vec<Tracked> = self
            .rules
            .iter()
            .filter(|r| {
                info.gates.contains(&r.condition_type)
                    && r.selector.matches(&key.namespace, &info.labels)
            })
            .map(|r| {
                let state = keep(r).unwrap_or_else(|| {
                    // Pick up the pod's existing condition (e.g. after a restart or a
                    // failover), so a healthy pod is not re-decided from nothing.
                    let mut s = RuleState::default();
                    if let Some(c) = info.conditions.get(&r.condition_type) {
                        s.restore(c.clone());
                    }
                    s
                });
                Tracked {
                    rule: r.clone(),
                    state,
                }
            })
            .collect();
        let gates = tracked
            .iter()
            .map(|t| {
                let seen = info.conditions.get(&t.rule.condition_type).cloned();
                (t.rule.condition_type.clone(), seen)
            })
            .collect();
        PodEntry {
            info,
            tracked,
            gates,
        }
    }

    /// Feeds one evaluation of `rule` on pod `key` at time `now` (ms).
    pub fn observe(&mut self, key: &PodKey, rule: &str, eval: &Evaluation, now: i64) -> Observed {
        let Some(entry) = self.pods.get(key) else {
            return Observed::default();
        };
        let Some(idx) = entry.tracked.iter().position(|t| t.rule.name == rule) else {
            return Observed::default();
        };
        let facts = PodFacts {
            containers_ready_since: entry.info.containers_ready_since,
        };
        let tracked = &entry.tracked[idx];
        let params = Params::of(&tracked.rule);
        let allowed = if tracked.state.flip_pending(&params, eval, facts, now) {
            self.may_flip(&key.namespace, &tracked.rule)
        } else {
            true
        };
        let Some(entry) = self.pods.get_mut(key) else {
            return Observed::default();
        };
        let tracked = &mut entry.tracked[idx];
        let rule = tracked.rule.clone();
        let step = tracked.state.observe(
            &Params::of(&rule),
            eval,
            facts,
            now,
            &mut || allowed,
        );
        let update = if step.changed {
            recompute_gates(key, entry)
                .into_iter()
                .find(|u| u.condition_type == rule.condition_type)
        } else {
            None
        };
        Observed {
            step: Some(step),
            update,
        }
    }

    /// The panic threshold: may one more of `rule`'s pods in `namespace` turn False?
    fn may_flip(&self, namespace: &str, rule: &Rule) -> bool {
        let start = PodKey::new(namespace, "");
        let mut covered = 0usize;
        let mut unavailable = 0usize;
        for (k, e) in self
            .pods
            .range((Bound::Included(&start), Bound::Unbounded))
        {
            if k.namespace != namespace {
                break;
            }
            if let Some(t) = e.tracked.iter().find(|t| t.rule.name == rule.name) {
                covered += 1;
                if t.state.is_false() {
                    unavailable += 1;
                }
            }
        }
        unavailable < rule.max_unavailable.resolve(covered)
    }

    /// Per rule: how many pods it currently says True, False, or has not decided.
    pub fn verdict_counts(&self) -> BTreeMap<String, VerdictCounts> {
        let mut out: BTreeMap<String, VerdictCounts> = self
            .rules
            .iter()
            .map(|r| (r.name.clone(), VerdictCounts::default()))
            .collect();
        for e in self.pods.values() {
            for t in &e.tracked {
                let c = out.entry(t.rule.name.clone()).or_default();
                match t.state.verdict() {
                    Some(v) if v.status => c.true_ += 1,
                    Some(_) => c.false_ += 1,
                    None => c.unknown += 1,
                }
            }
        }
        out
    }
}

/// Recomputes every gate of a pod; returns the ones whose condition changed.
fn recompute_gates(key: &PodKey, entry: &mut PodEntry) -> Vec<GateUpdate> {
    let mut updates = Vec::new();
    let types: Vec<String> = entry.gates.keys().cloned().collect();
    for ct in types {
        let verdicts: Vec<RuleVerdict<'_>> = entry
            .tracked
            .iter()
            .filter(|t| t.rule.condition_type == ct)
            .map(|t| RuleVerdict {
                rule: &t.rule.name,
                verdict: t.state.verdict(),
                dry_run: t.rule.dry_run,
            })
            .collect();
        let Some(next) = gate::combine(&verdicts, entry.info.override_by) else {
            continue;
        };
        let prev = entry.gates.get(&ct).cloned().flatten();
        if prev.as_ref() != Some(&next) {
            entry.gates.insert(ct.clone(), Some(next.clone()));
            updates.push(GateUpdate {
                pod: key.clone(),
                uid: entry.info.uid.clone(),
                condition_type: ct,
                condition: next,
            });
        }
    }
    updates
}
