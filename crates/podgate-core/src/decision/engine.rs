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
use super::{Condition, Evaluation, Reason};
use crate::rules::{Mode, Rule, RuleSet};

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
    /// When each of those conditions last changed status (ms, `lastTransitionTime`).
    pub condition_since: BTreeMap<String, i64>,
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

/// (pod, rule) pairs by the rule's mode, for `podgate_rule_pods{mode,state}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModeCounts {
    pub continuous: usize,
    /// `mode: startup`, the pod not let in yet: still evaluated.
    pub startup_evaluating: usize,
    /// `mode: startup`, the pod let in: no longer evaluated.
    pub startup_done: usize,
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
        self.rules
            .iter()
            .any(|r| r.condition_type == condition_type)
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

    /// The rules that still evaluate a pod: those covering it, less the `mode: startup` ones
    /// that have let it in.
    pub fn rules_to_evaluate(&self, key: &PodKey) -> Vec<Arc<Rule>> {
        self.pods
            .get(key)
            .map(|e| {
                e.tracked
                    .iter()
                    .filter(|t| !t.state.done())
                    .map(|t| t.rule.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `rule` is a `mode: startup` rule done with the pod (it set the gate True).
    pub fn done(&self, key: &PodKey, rule: &str) -> bool {
        self.state(key, rule).is_some_and(RuleState::done)
    }

    /// Every tracked (pod, rule) pair by the rule's mode.
    pub fn mode_counts(&self) -> ModeCounts {
        let mut c = ModeCounts::default();
        for t in self.pods.values().flat_map(|e| &e.tracked) {
            match (t.rule.mode, t.state.done()) {
                (Mode::Continuous, _) => c.continuous += 1,
                (Mode::Startup, false) => c.startup_evaluating += 1,
                (Mode::Startup, true) => c.startup_done += 1,
            }
        }
        c
    }

    /// The condition last computed for a gate of a pod (None: undecided or not podgate's).
    pub fn gate(&self, key: &PodKey, condition_type: &str) -> Option<&Condition> {
        self.pods.get(key)?.gates.get(condition_type)?.as_ref()
    }

    /// Every gate whose verdict as decided (status and reason) differs from the one last seen
    /// on the API server: what a writer that just gained the right to write (a new leader, a
    /// standby taking over) must write. A condition that shows the same verdict with another
    /// message is left alone: the message explains the transition the previous leader saw, and
    /// every replica words its own from the values it scraped, so comparing messages would
    /// rewrite nearly every gate on each failover. Pods that are gone are not tracked, so
    /// nothing is sent for them.
    pub fn resync(&self) -> Vec<GateUpdate> {
        let mut out = Vec::new();
        for (key, entry) in &self.pods {
            for (ct, decided) in &entry.gates {
                let Some(decided) = decided else { continue };
                let shown = entry.info.conditions.get(ct);
                if !shown.is_some_and(|c| c.status == decided.status && c.reason == decided.reason)
                {
                    out.push(GateUpdate {
                        pod: key.clone(),
                        uid: entry.info.uid.clone(),
                        condition_type: ct.clone(),
                        condition: decided.clone(),
                    });
                }
            }
        }
        out
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
                    // The override's condition is no rule's verdict: it says nothing about
                    // the metrics.
                    let restorable = info
                        .conditions
                        .get(&r.condition_type)
                        .filter(|c| c.reason != Reason::Overridden);
                    if let Some(c) = restorable {
                        let facts = PodFacts {
                            containers_ready_since: info.containers_ready_since,
                        };
                        let since = info.condition_since.get(&r.condition_type).copied();
                        s.restore_at(&Params::of(r), c.clone(), since, facts);
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

    /// [`Engine::observe`] for an evaluation computed with `rule`: ignored (stale) when the
    /// rule in force under that name is another definition — a result in flight across a
    /// reload never counts toward the new rule's streak. A result of an unchanged definition
    /// (the rule's state was kept across the reload) still counts: no evaluation is lost.
    pub fn observe_for(
        &mut self,
        key: &PodKey,
        rule: &Rule,
        eval: &Evaluation,
        now: i64,
    ) -> Observed {
        let current = self
            .pods
            .get(key)
            .and_then(|e| e.tracked.iter().find(|t| t.rule.name == rule.name));
        match current {
            Some(t) if std::ptr::eq(&*t.rule, rule) || t.rule.same_definition(rule) => {
                self.observe(key, &rule.name, eval, now)
            }
            _ => Observed::default(),
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
        let step = tracked
            .state
            .observe(&Params::of(&rule), eval, facts, now, &mut || allowed);
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
        for (k, e) in self.pods.range((Bound::Included(&start), Bound::Unbounded)) {
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
        let prev = entry.gates.get(&ct).cloned().flatten();
        let next = match gate::combine(&verdicts, entry.info.override_by) {
            Some(next) => next,
            // The override is gone but no rule has decided yet: the gate must not stay True on
            // the strength of a bypass that no longer exists.
            None if entry.info.override_by.is_none()
                && prev
                    .as_ref()
                    .is_some_and(|c| c.reason == Reason::Overridden) =>
            {
                gate::override_lifted(&verdicts)
            }
            None => continue,
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Outcome;
    use crate::rules::load_str;

    const GATE: &str = "example.com/healthy";

    fn rules(yaml: &str) -> RuleSet {
        match load_str("test.yaml", yaml) {
            Ok(set) => set,
            Err(e) => panic!("test rules do not load: {e}"),
        }
    }

    fn rule(name: &str, extra: &str) -> String {
        format!(
            "  - name: {name}\n    conditionType: {GATE}\n    failureThreshold: 1\n{extra}    vars: {{x: {{scrape: 'x'}}}}\n    expr: 'x < 1'\n"
        )
    }

    fn pod(uid: &str) -> PodInfo {
        PodInfo {
            uid: uid.into(),
            gates: vec![GATE.into()],
            ..PodInfo::default()
        }
    }

    fn ev(outcome: Outcome) -> Evaluation {
        Evaluation {
            outcome,
            detail: "x=0".into(),
        }
    }

    fn gate_of(e: &Engine, key: &PodKey) -> Option<(bool, Reason)> {
        e.pods
            .get(key)
            .and_then(|p| p.gates.get(GATE).cloned().flatten())
            .map(|c| (c.status, c.reason))
    }

    #[test]
    fn only_pods_declaring_the_gate_and_matching_the_selector_are_covered() {
        let set = rules(&format!(
            "rules:\n{}",
            rule(
                "r",
                "    selector:\n      namespaces: [shop]\n      matchLabels: {app: web}\n"
            )
        ));
        let mut e = Engine::new(&set);
        let mut web = pod("1");
        web.labels.insert("app".into(), "web".into());
        e.upsert_pod(PodKey::new("shop", "a"), web.clone());
        e.upsert_pod(PodKey::new("other", "b"), web.clone());
        e.upsert_pod(PodKey::new("shop", "c"), pod("3"));
        let mut no_gate = web;
        no_gate.gates.clear();
        e.upsert_pod(PodKey::new("shop", "d"), no_gate);
        let covered: Vec<String> = e
            .pod_keys()
            .filter(|k| !e.rules_for(k).is_empty())
            .map(|k| k.to_string())
            .collect();
        assert_eq!(covered, ["shop/a"]);
    }

    #[test]
    fn an_update_only_when_the_gate_changes() {
        let set = rules(&format!("rules:\n{}", rule("r", "")));
        let mut e = Engine::new(&set);
        let key = PodKey::new("ns", "p");
        e.upsert_pod(key.clone(), pod("1"));
        let first = e.observe(&key, "r", &ev(Outcome::Pass), 0);
        let update = first.update.expect("first pass sets the gate True");
        assert!(update.condition.status);
        assert_eq!(update.condition_type, GATE);
        for t in 1..5 {
            assert_eq!(e.observe(&key, "r", &ev(Outcome::Pass), t).update, None);
        }
        let down = e.observe(&key, "r", &ev(Outcome::Fail), 10);
        assert_eq!(down.update.map(|u| u.condition.status), Some(false));
    }

    #[test]
    fn existing_condition_is_picked_up_and_not_rewritten() {
        let set = rules(&format!("rules:\n{}", rule("r", "")));
        let mut e = Engine::new(&set);
        let key = PodKey::new("ns", "p");
        let mut info = pod("1");
        let healthy = Condition {
            status: true,
            reason: Reason::MetricsHealthy,
            message: "from before".into(),
        };
        info.conditions.insert(GATE.into(), healthy);
        assert!(e.upsert_pod(key.clone(), info).is_empty());
        assert_eq!(e.observe(&key, "r", &ev(Outcome::Pass), 0).update, None);
    }

    #[test]
    fn panic_threshold_limits_false_pods_per_namespace() {
        let set = rules(&format!(
            "rules:\n{}",
            rule("r", "    maxUnavailable: 50%\n")
        ));
        let mut e = Engine::new(&set);
        let keys: Vec<PodKey> = (0..4).map(|i| PodKey::new("ns", format!("p{i}"))).collect();
        for (i, k) in keys.iter().enumerate() {
            e.upsert_pod(k.clone(), pod(&i.to_string()));
            e.observe(k, "r", &ev(Outcome::Pass), 0);
        }
        // Another namespace does not count against this one.
        let other = PodKey::new("other", "q");
        e.upsert_pod(other.clone(), pod("9"));
        e.observe(&other, "r", &ev(Outcome::Pass), 0);

        let mut held = 0;
        for k in &keys {
            let o = e.observe(k, "r", &ev(Outcome::Fail), 1);
            if o.step.is_some_and(|s| s.held_by_panic) {
                held += 1;
            }
        }
        assert_eq!(held, 2, "50% of 4 pods may go False, the rest are held");
        let states: Vec<_> = keys.iter().map(|k| gate_of(&e, k)).collect();
        assert_eq!(
            states
                .iter()
                .filter(|s| **s == Some((false, Reason::MetricsUnhealthy)))
                .count(),
            2
        );
        assert_eq!(
            states
                .iter()
                .filter(|s| **s == Some((true, Reason::PanicThreshold)))
                .count(),
            2
        );
        let o = e.observe(&other, "r", &ev(Outcome::Fail), 1);
        assert_eq!(o.update.map(|u| u.condition.status), Some(false));

        // One recovers: a held pod may now go False.
        e.observe(&keys[0], "r", &ev(Outcome::Pass), 2);
        let flipped = keys[2..]
            .iter()
            .filter(|k| {
                e.observe(k, "r", &ev(Outcome::Fail), 3)
                    .update
                    .is_some_and(|u| !u.condition.status)
            })
            .count();
        assert_eq!(flipped, 1);
    }

    #[test]
    fn reload_keeps_streaks_of_unchanged_rules_only() {
        let two = format!("rules:\n{}{}", rule("a", ""), rule("b", ""));
        let set = rules(&two.replace("failureThreshold: 1", "failureThreshold: 3"));
        let mut e = Engine::new(&set);
        let key = PodKey::new("ns", "p");
        e.upsert_pod(key.clone(), pod("1"));
        for r in ["a", "b"] {
            e.observe(&key, r, &ev(Outcome::Pass), 0);
            e.observe(&key, r, &ev(Outcome::Fail), 1);
            e.observe(&key, r, &ev(Outcome::Fail), 2);
        }
        // b changes its expression; a is untouched.
        let text = format!(
            "rules:\n{}{}",
            rule("a", ""),
            rule("b", "").replace("x < 1", "x < 2")
        )
        .replace("failureThreshold: 1", "failureThreshold: 3");
        e.set_rules(&rules(&text));
        assert_eq!(e.state(&key, "a").map(|s| s.fail_streak()), Some(2));
        assert_eq!(e.state(&key, "b").map(|s| s.fail_streak()), Some(0));
    }

    #[test]
    fn a_result_of_a_replaced_rule_does_not_count_toward_the_new_one() {
        let old_set = rules(&format!("rules:\n{}", rule("r", "")));
        let mut e = Engine::new(&old_set);
        let key = PodKey::new("ns", "p");
        e.upsert_pod(key.clone(), pod("1"));
        let old_rule = old_set.rules[0].clone();
        // The rule changes (threshold 1 -> 2) while an evaluation of the old one is in flight.
        let new_set = rules(&format!(
            "rules:\n{}",
            rule("r", "").replace("x < 1", "x < 2")
        ));
        e.set_rules(&new_set);
        let stale = e.observe_for(&key, &old_rule, &ev(Outcome::Pass), 5);
        assert_eq!(stale, Observed::default());
        assert_eq!(e.state(&key, "r").map(|s| s.pass_streak()), Some(0));
        // A result of the rule in force counts.
        let fresh = e.observe_for(&key, &new_set.rules[0], &ev(Outcome::Pass), 6);
        assert!(fresh.step.is_some());
        assert_eq!(e.state(&key, "r").map(|s| s.pass_streak()), Some(1));
        // An unchanged definition keeps its state across a reload, and its results in flight
        // still count.
        let same_again = rules(&format!(
            "rules:\n{}",
            rule("r", "").replace("x < 1", "x < 2")
        ));
        e.set_rules(&same_again);
        let kept = e.observe_for(&key, &new_set.rules[0], &ev(Outcome::Pass), 7);
        assert!(kept.step.is_some());
        assert_eq!(e.state(&key, "r").map(|s| s.pass_streak()), Some(2));
    }

    #[test]
    fn resync_lists_every_decided_gate_the_api_does_not_show() {
        let set = rules(&format!("rules:\n{}", rule("r", "")));
        let mut e = Engine::new(&set);
        let (a, b) = (PodKey::new("ns", "a"), PodKey::new("ns", "b"));
        e.upsert_pod(a.clone(), pod("1"));
        e.upsert_pod(b.clone(), pod("2"));
        let written = e
            .observe(&a, "r", &ev(Outcome::Pass), 0)
            .update
            .expect("a decided");
        e.observe(&b, "r", &ev(Outcome::Fail), 0);
        // The API shows a's condition (written by the old leader); b's never reached it.
        let mut seen = pod("1");
        seen.conditions.insert(GATE.into(), written.condition);
        e.upsert_pod(a.clone(), seen);
        let ups = e.resync();
        assert_eq!(ups.len(), 1, "{ups:?}");
        assert_eq!(ups[0].pod, b);
        assert_eq!(ups[0].uid, "2");
        // A pod that is gone is not resynced.
        e.remove_pod(&b);
        assert!(e.resync().is_empty());
    }

    #[test]
    fn resync_leaves_a_gate_that_shows_the_same_verdict_in_other_words() {
        let set = rules(&format!("rules:\n{}", rule("r", "")));
        let mut e = Engine::new(&set);
        let (a, b) = (PodKey::new("ns", "a"), PodKey::new("ns", "b"));
        e.upsert_pod(a.clone(), pod("1"));
        e.upsert_pod(b.clone(), pod("2"));
        let decided_a = e
            .observe(&a, "r", &ev(Outcome::Pass), 0)
            .update
            .expect("a decided");
        let decided_b = e
            .observe(&b, "r", &ev(Outcome::Fail), 0)
            .update
            .expect("b decided");
        // The old leader wrote a's verdict with its own numbers, and b True where this replica
        // decided False.
        let mut seen_a = pod("1");
        let mut worded = decided_a.condition.clone();
        worded.message = format!("{} (as the previous leader saw it)", worded.message);
        seen_a.conditions.insert(GATE.into(), worded);
        e.upsert_pod(a.clone(), seen_a);
        let mut seen_b = pod("2");
        seen_b
            .conditions
            .insert(GATE.into(), decided_a.condition.clone());
        e.upsert_pod(b.clone(), seen_b);
        let ups = e.resync();
        assert_eq!(ups.len(), 1, "{ups:?}");
        assert_eq!(ups[0].pod, b);
        assert_eq!(ups[0].condition, decided_b.condition);
    }

    #[test]
    fn several_rules_on_one_gate_and_override() {
        let set = rules(&format!("rules:\n{}{}", rule("a", ""), rule("b", "")));
        let mut e = Engine::new(&set);
        let key = PodKey::new("ns", "p");
        e.upsert_pod(key.clone(), pod("1"));
        assert_eq!(
            e.observe(&key, "a", &ev(Outcome::Pass), 0).update,
            None,
            "b undecided"
        );
        let both = e.observe(&key, "b", &ev(Outcome::Pass), 0).update;
        assert_eq!(both.map(|u| u.condition.status), Some(true));
        let failing = e.observe(&key, "b", &ev(Outcome::Fail), 1).update;
        let failing = failing.expect("b fails the gate");
        assert!(failing.condition.message.contains("(rule b)"));

        let mut over = pod("1");
        over.override_by = Some(Override::Namespace);
        let ups = e.upsert_pod(key.clone(), over);
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].condition.reason, Reason::Overridden);
        // Removing the override resumes from the rules' verdicts.
        let ups = e.upsert_pod(key.clone(), pod("1"));
        assert_eq!(ups.first().map(|u| u.condition.status), Some(false));
    }

    #[test]
    fn lifting_the_override_before_any_verdict_takes_the_gate_back_from_true() {
        let set = rules(&format!("rules:\n{}", rule("r", "")));
        let mut e = Engine::new(&set);
        let key = PodKey::new("ns", "p");
        let mut over = pod("1");
        over.override_by = Some(Override::Pod);
        let ups = e.upsert_pod(key.clone(), over.clone());
        assert_eq!(
            ups.first().map(|u| u.condition.reason),
            Some(Reason::Overridden)
        );
        // The API now shows the override's condition; the annotation goes away.
        let mut lifted = pod("1");
        lifted
            .conditions
            .insert(GATE.into(), ups[0].condition.clone());
        let ups = e.upsert_pod(key.clone(), lifted.clone());
        let c = ups.first().map(|u| u.condition.clone()).expect("an update");
        assert!(!c.status);
        assert_eq!(c.reason, Reason::NoData);
        assert!(c.message.contains("removed"), "{}", c.message);
        assert!(c.message.contains("(rule r)"), "{}", c.message);
        // Once written, stable until a rule decides; then the rule's verdict.
        lifted.conditions.insert(GATE.into(), c);
        assert!(e.upsert_pod(key.clone(), lifted).is_empty());
        let up = e.observe(&key, "r", &ev(Outcome::Pass), 1).update;
        assert_eq!(
            up.map(|u| (u.condition.status, u.condition.reason)),
            Some((true, Reason::MetricsHealthy))
        );
        // A podgate starting after the override was lifted does the same: the override's
        // condition is no rule's verdict.
        let mut fresh = Engine::new(&set);
        let mut seen = pod("1");
        seen.conditions.insert(
            GATE.into(),
            Condition {
                status: true,
                reason: Reason::Overridden,
                message: "bypassed".into(),
            },
        );
        let ups = fresh.upsert_pod(PodKey::new("ns", "p"), seen);
        assert_eq!(
            ups.first()
                .map(|u| (u.condition.status, u.condition.reason)),
            Some((false, Reason::NoData))
        );
        assert!(
            fresh
                .state(&PodKey::new("ns", "p"), "r")
                .is_some_and(|s| s.verdict().is_none())
        );

        // A gate someone else set True is not podgate's to take back.
        let key = PodKey::new("ns", "q");
        let mut other = pod("2");
        other.conditions.insert(
            GATE.into(),
            Condition {
                status: true,
                reason: Reason::MetricsHealthy,
                message: "from before".into(),
            },
        );
        assert!(e.upsert_pod(key, other).is_empty());
    }

    #[test]
    fn a_new_uid_is_a_new_pod() {
        let set = rules(&format!(
            "rules:\n{}",
            rule("r", "").replace("failureThreshold: 1", "failureThreshold: 3")
        ));
        let mut e = Engine::new(&set);
        let key = PodKey::new("ns", "p");
        e.upsert_pod(key.clone(), pod("1"));
        e.observe(&key, "r", &ev(Outcome::Pass), 0);
        e.observe(&key, "r", &ev(Outcome::Fail), 1);
        e.upsert_pod(key.clone(), pod("1"));
        assert_eq!(e.state(&key, "r").map(|s| s.fail_streak()), Some(1));
        e.upsert_pod(key.clone(), pod("2"));
        assert_eq!(e.state(&key, "r").map(|s| s.fail_streak()), Some(0));
        assert!(e.state(&key, "r").is_some_and(|s| s.verdict().is_none()));
    }

    #[test]
    fn a_startup_rule_done_with_a_pod_stops_evaluating_it_also_after_a_restart() {
        let set = rules(&format!(
            "rules:\n{}{}",
            rule("warm", "    mode: startup\n").replace(GATE, "example.com/warm"),
            rule("cont", "")
        ));
        let mut e = Engine::new(&set);
        let key = PodKey::new("ns", "p");
        let mut info = pod("1");
        info.gates.push("example.com/warm".into());
        e.upsert_pod(key.clone(), info.clone());
        let names = |rs: Vec<Arc<Rule>>| rs.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(e.rules_to_evaluate(&key)), ["warm", "cont"]);
        let up = e.observe(&key, "warm", &ev(Outcome::Pass), 0).update;
        assert_eq!(up.as_ref().map(|u| u.condition.status), Some(true));
        assert!(e.done(&key, "warm"));
        assert_eq!(names(e.rules_to_evaluate(&key)), ["cont"]);
        assert_eq!(e.observe(&key, "warm", &ev(Outcome::Fail), 1).update, None);
        assert_eq!(
            e.mode_counts(),
            ModeCounts {
                continuous: 1,
                startup_evaluating: 0,
                startup_done: 1
            }
        );
        // A new podgate finds the gate True on the pod: done at once, nothing to write.
        let mut fresh = Engine::new(&set);
        let mut seen = info;
        seen.conditions.insert(
            "example.com/warm".into(),
            up.map(|u| u.condition).unwrap_or_else(|| unreachable!()),
        );
        assert!(fresh.upsert_pod(key.clone(), seen).is_empty());
        assert_eq!(names(fresh.rules_to_evaluate(&key)), ["cont"]);
        assert_eq!(fresh.mode_counts().startup_done, 1);
    }

    #[test]
    fn verdict_counts_per_rule() {
        let set = rules(&format!("rules:\n{}", rule("r", "")));
        let mut e = Engine::new(&set);
        for (i, o) in [Outcome::Pass, Outcome::Fail, Outcome::Error]
            .into_iter()
            .enumerate()
        {
            let k = PodKey::new("ns", format!("p{i}"));
            e.upsert_pod(k.clone(), pod(&i.to_string()));
            e.observe(&k, "r", &ev(o), 0);
        }
        let c = e.verdict_counts();
        assert_eq!(
            c.get("r"),
            Some(&VerdictCounts {
                true_: 1,
                false_: 1,
                unknown: 1
            })
        );
    }
}
