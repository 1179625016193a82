//! The latest values of every pod's variables, per peer group, for `peers:` variables.
//!
//! Per (rule, namespace, group) and pod: the pod's revision, when it was evaluated and the
//! values its last evaluation gave. Its owner (the controller loop, or `podgate test`) records
//! each evaluation and removes pods that are gone or leave the rule, so the index holds at most
//! one entry per tracked (pod, rule). Reads are deterministic: peers in pod-name order, values
//! aggregated sorted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::group::{PeerGroup, PeerSet};

/// One peer group of one rule in one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId {
    pub rule: String,
    pub namespace: String,
    pub group: PeerGroup,
}

/// A pod's latest evaluation as its peers see it.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    revision: Option<String>,
    at_ms: i64,
    /// The variables that had a number (never NaN), by name.
    values: BTreeMap<String, f64>,
}

/// One peer's value, when the reader asked for the list.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerValue {
    pub pod: String,
    pub revision: Option<String>,
    pub value: f64,
}

/// What a read found: the fresh values of one variable among the peers in a set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PeerValues {
    /// In pod-name order.
    pub values: Vec<f64>,
    /// The distinct revisions of the peers counted, sorted.
    pub revisions: Vec<String>,
    /// Peers in the set whose value is missing or older than the freshness limit.
    pub stale: usize,
    /// Every peer counted, when asked for (`podgate eval`).
    pub listed: Vec<PeerValue>,
}

/// A read of the index: whose peers, which variable, which set, how fresh.
#[derive(Debug, Clone, Copy)]
pub struct PeerQuery<'a> {
    pub group: &'a GroupId,
    /// The pod itself, never its own peer.
    pub pod: &'a str,
    pub revision: Option<&'a str>,
    pub var: &'a str,
    pub of: PeerSet,
    /// Values from evaluations before this time (ms) do not count.
    pub fresh_since_ms: i64,
    /// Fill [`PeerValues::listed`].
    pub list: bool,
}

#[derive(Debug, Default)]
pub struct PeerIndex {
    groups: HashMap<GroupId, BTreeMap<String, Entry>>,
    /// Per (namespace, pod): the groups it has an entry in, so removing a pod is cheap.
    pods: HashMap<(String, String), BTreeSet<GroupId>>,
}

impl PeerIndex {
    pub fn new() -> PeerIndex {
        PeerIndex::default()
    }

    /// Entries held: one per (pod, rule) recorded and not removed.
    pub fn len(&self) -> usize {
        self.groups.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Records pod `pod`'s evaluation of `group.rule` at `at_ms`: `values` replace what the
    /// pod had (a variable without a number now has none). NaN values are left out. A pod
    /// recorded under another group of the same rule before (its labels changed) leaves it.
    pub fn record(
        &mut self,
        group: &GroupId,
        pod: &str,
        revision: Option<&str>,
        at_ms: i64,
        values: impl IntoIterator<Item = (String, f64)>,
    ) {
        let key = (group.namespace.clone(), pod.to_string());
        let moved: Vec<GroupId> = self
            .pods
            .get(&key)
            .map(|gs| {
                gs.iter()
                    .filter(|g| g.rule == group.rule && *g != group)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for g in moved {
            self.remove_entry(&g, &key);
        }
        let entry = Entry {
            revision: revision.map(str::to_string),
            at_ms,
            values: values.into_iter().filter(|(_, v)| !v.is_nan()).collect(),
        };
        self.groups
            .entry(group.clone())
            .or_default()
            .insert(pod.to_string(), entry);
        self.pods.entry(key).or_default().insert(group.clone());
    }

    /// Forgets a pod (deleted, or no longer evaluated).
    pub fn remove_pod(&mut self, namespace: &str, pod: &str) {
        self.retain_pod(namespace, pod, |_| false);
    }

    /// Keeps only the pod's entries whose group `keep` accepts: a pod that left a rule (its
    /// labels or gates changed) or moved to another group stops counting there at once.
    pub fn retain_pod(&mut self, namespace: &str, pod: &str, keep: impl Fn(&GroupId) -> bool) {
        let key = (namespace.to_string(), pod.to_string());
        let Some(groups) = self.pods.get(&key) else {
            return;
        };
        let gone: Vec<GroupId> = groups.iter().filter(|g| !keep(g)).cloned().collect();
        for g in gone {
            self.remove_entry(&g, &key);
        }
    }

    /// After a reload: drops every entry of rules `keep_rule` refuses (removed, regrouped), and
    /// of the rules it keeps, the values of variables `keep_var(rule, var)` refuses (their
    /// definition changed). Values of unchanged variables stay, so an edit of one expression
    /// does not leave every peer group empty for an interval.
    pub fn retain(
        &mut self,
        keep_rule: impl Fn(&str) -> bool,
        keep_var: impl Fn(&str, &str) -> bool,
    ) {
        let gone: Vec<GroupId> = self
            .groups
            .keys()
            .filter(|g| !keep_rule(&g.rule))
            .cloned()
            .collect();
        for g in gone {
            if let Some(entries) = self.groups.remove(&g) {
                for pod in entries.keys() {
                    let key = (g.namespace.clone(), pod.clone());
                    if let Some(set) = self.pods.get_mut(&key) {
                        set.remove(&g);
                        if set.is_empty() {
                            self.pods.remove(&key);
                        }
                    }
                }
            }
        }
        for (g, entries) in &mut self.groups {
            for e in entries.values_mut() {
                e.values.retain(|var, _| keep_var(&g.rule, var));
            }
        }
    }

    fn remove_entry(&mut self, group: &GroupId, key: &(String, String)) {
        if let Some(entries) = self.groups.get_mut(group) {
            entries.remove(&key.1);
            if entries.is_empty() {
                self.groups.remove(group);
            }
        }
        if let Some(set) = self.pods.get_mut(key) {
            set.remove(group);
            if set.is_empty() {
                self.pods.remove(key);
            }
        }
    }

    /// The fresh values of `q.var` among the pod's peers in `q.of`, the pod itself excluded.
    pub fn read(&self, q: &PeerQuery<'_>) -> PeerValues {
        let mut out = PeerValues::default();
        let Some(entries) = self.groups.get(q.group) else {
            return out;
        };
        let mut revisions = BTreeSet::new();
        for (pod, e) in entries {
            if pod == q.pod || !q.of.admits(q.revision, e.revision.as_deref()) {
                continue;
            }
            let value = e.values.get(q.var).filter(|_| e.at_ms >= q.fresh_since_ms);
            let Some(&value) = value else {
                out.stale += 1;
                continue;
            };
            out.values.push(value);
            if let Some(r) = &e.revision {
                revisions.insert(r.clone());
            }
            if q.list {
                out.listed.push(PeerValue {
                    pod: pod.clone(),
                    revision: e.revision.clone(),
                    value,
                });
            }
        }
        out.revisions = revisions.into_iter().collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::PodOwner;

    fn group(rule: &str, owner: &str) -> GroupId {
        GroupId {
            rule: rule.into(),
            namespace: "shop".into(),
            group: PeerGroup::Owner(PodOwner::parse(owner).unwrap_or_else(|| panic!("{owner}"))),
        }
    }

    fn err(v: f64) -> Vec<(String, f64)> {
        vec![("err".to_string(), v)]
    }

    fn query<'a>(g: &'a GroupId, pod: &'a str, rev: Option<&'a str>, of: PeerSet) -> PeerQuery<'a> {
        PeerQuery {
            group: g,
            pod,
            revision: rev,
            var: "err",
            of,
            fresh_since_ms: 0,
            list: false,
        }
    }

    /// Two stable pods (rev a) and one new one (rev b), plus a pod of another Deployment.
    fn fleet() -> (PeerIndex, GroupId) {
        let web = group("r", "Deployment/web");
        let mut ix = PeerIndex::new();
        ix.record(&web, "web-a1", Some("a"), 100, err(0.01));
        ix.record(&web, "web-a2", Some("a"), 100, err(0.03));
        ix.record(&web, "web-b1", Some("b"), 100, err(0.5));
        ix.record(
            &group("r", "Deployment/api"),
            "api-1",
            Some("a"),
            100,
            err(9.0),
        );
        (ix, web)
    }

    #[test]
    fn baseline_cohort_and_all_exclude_the_pod_itself() {
        let (ix, web) = fleet();
        let new = |of| ix.read(&query(&web, "web-b1", Some("b"), of)).values;
        assert_eq!(new(PeerSet::Baseline), [0.01, 0.03]);
        assert_eq!(new(PeerSet::Cohort), Vec::<f64>::new());
        assert_eq!(new(PeerSet::All), [0.01, 0.03]);
        let old = |of| ix.read(&query(&web, "web-a1", Some("a"), of)).values;
        assert_eq!(old(PeerSet::Baseline), [0.5]);
        assert_eq!(old(PeerSet::Cohort), [0.03]);
        assert_eq!(old(PeerSet::All), [0.03, 0.5]);
        let r = ix.read(&query(&web, "web-b1", Some("b"), PeerSet::Baseline));
        assert_eq!(r.revisions, ["a"]);
    }

    #[test]
    fn only_values_no_older_than_the_limit_count() {
        let (mut ix, web) = fleet();
        ix.record(&web, "web-a2", Some("a"), 50, err(0.03));
        let mut q = query(&web, "web-b1", Some("b"), PeerSet::Baseline);
        q.fresh_since_ms = 100;
        let r = ix.read(&q);
        assert_eq!(r.values, [0.01]);
        assert_eq!(r.stale, 1);
        q.fresh_since_ms = 101;
        assert!(ix.read(&q).values.is_empty());
        // A variable without a number in the latest evaluation is missing, not its old value.
        ix.record(&web, "web-a1", Some("a"), 200, Vec::new());
        q.fresh_since_ms = 0;
        assert_eq!(ix.read(&q).values, [0.03]);
        // NaN is never a value.
        ix.record(&web, "web-a2", Some("a"), 200, err(f64::NAN));
        assert!(ix.read(&q).values.is_empty());
    }

    #[test]
    fn removed_pods_and_pods_leaving_a_group_stop_counting() {
        let (mut ix, web) = fleet();
        assert_eq!(ix.len(), 4);
        ix.remove_pod("shop", "web-a1");
        let r = |ix: &PeerIndex| {
            ix.read(&query(&web, "web-b1", Some("b"), PeerSet::All))
                .values
        };
        assert_eq!(r(&ix), [0.03]);
        // web-a2 moves to another group of the same rule (its labels changed).
        let other = group("r", "Deployment/web2");
        ix.record(&other, "web-a2", Some("a"), 100, err(0.03));
        assert!(r(&ix).is_empty());
        // It leaves the rule.
        ix.retain_pod("shop", "web-a2", |g| g.rule != "r");
        assert_eq!(ix.len(), 2, "web-b1 and api-1");
        ix.remove_pod("shop", "web-b1");
        ix.remove_pod("shop", "api-1");
        assert!(ix.is_empty());
        assert_eq!(ix.len(), 0);
        assert!(ix.pods.is_empty(), "nothing is kept for pods that are gone");
    }

    #[test]
    fn a_reload_keeps_unchanged_variables_and_drops_the_rest() {
        let (mut ix, web) = fleet();
        let other = group("gone", "Deployment/web");
        ix.record(&other, "web-a1", Some("a"), 100, err(1.0));
        ix.record(
            &web,
            "web-a1",
            Some("a"),
            100,
            vec![("err".into(), 0.01), ("req".into(), 5.0)],
        );
        ix.retain(|rule| rule == "r", |_, var| var == "err");
        assert!(
            ix.read(&query(&other, "x", None, PeerSet::All))
                .values
                .is_empty()
        );
        let mut q = query(&web, "web-b1", Some("b"), PeerSet::All);
        assert_eq!(ix.read(&q).values, [0.01, 0.03]);
        q.var = "req";
        assert!(ix.read(&q).values.is_empty());
        assert_eq!(ix.len(), 4);
    }

    #[test]
    fn reads_are_in_pod_order_and_list_when_asked() {
        let (ix, web) = fleet();
        let mut q = query(&web, "nobody", Some("b"), PeerSet::All);
        q.list = true;
        let r = ix.read(&q);
        let pods: Vec<&str> = r.listed.iter().map(|p| p.pod.as_str()).collect();
        assert_eq!(pods, ["web-a1", "web-a2", "web-b1"]);
        assert_eq!(r.values, [0.01, 0.03, 0.5]);
        assert_eq!(r.revisions, ["a", "b"]);
    }
}
