//! The daemon's peer index: what the controller loop records from every evaluation and pod
//! tasks read for their `peers:` variables.
//!
//! One index behind a lock, shared by the loop and the pod tasks. The loop writes (an
//! evaluation's values, a pod gone or moved, a reload); a pod task takes the lock only while
//! it reads one `peers:` variable, never across an await.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::messages::PodConfig;
use crate::decision::engine::PodKey;
use crate::evaluate::RuleEvaluation;
use crate::kube::watch::PodSnapshot;
use crate::peers::{GroupId, PeerIndex, PeerLookup, PeerReading, PodPeers};
use crate::rules::{PeersSpec, Rule, RuleSet};

#[derive(Debug, Default)]
pub struct SharedPeers(RwLock<PeerIndex>);

/// The peers of the group (if any) `snap` belongs to under `rule`.
fn group_of(rule: &Rule, snap: &PodSnapshot) -> Option<GroupId> {
    let group = rule.peers.group(&snap.info.labels, snap.owner.as_ref())?;
    Some(GroupId {
        rule: rule.name.clone(),
        namespace: snap.key.namespace.clone(),
        group,
    })
}

impl SharedPeers {
    // A panic while the lock was held cannot leave the index inconsistent in a way that
    // matters (each write is one map update), so a poisoned lock is used as it is.
    fn read(&self) -> RwLockReadGuard<'_, PeerIndex> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, PeerIndex> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Entries held (for tests and the soak: bounded by the tracked pods).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Records what `result` (an evaluation of `rule` on the pod of `snap` at `at_ms`) leaves
    /// for the pod's peers. Nothing for a rule without `peers:` variables.
    pub fn record(&self, rule: &Rule, snap: &PodSnapshot, result: &RuleEvaluation, at_ms: i64) {
        if !rule.uses_peers() {
            return;
        }
        let Some(id) = group_of(rule, snap) else {
            return;
        };
        let revision = rule.peers.revision(&snap.info.labels);
        let values = result.peer_values(rule);
        self.write()
            .record(&id, &snap.key.name, revision, at_ms, values);
    }

    /// Keeps the pod's entries only in the groups it belongs to under `rules` (the rules that
    /// still evaluate it): a pod whose labels, owner or rules changed stops counting where it
    /// no longer belongs.
    pub fn sync_pod(&self, snap: &PodSnapshot, rules: &[Arc<Rule>]) {
        let keep: Vec<GroupId> = rules
            .iter()
            .filter(|r| r.uses_peers())
            .filter_map(|r| group_of(r, snap))
            .collect();
        self.write()
            .retain_pod(&snap.key.namespace, &snap.key.name, |g| keep.contains(g));
    }

    pub fn remove_pod(&self, key: &PodKey) {
        self.write().remove_pod(&key.namespace, &key.name);
    }

    /// After `new` replaced `old`: a rule keeps its peers' values when it is still there with
    /// the same grouping, and of those the values of variables whose definition is unchanged.
    pub fn reload(&self, old: &RuleSet, new: &RuleSet) {
        let same_grouping = |name: &str| match (old.get(name), new.get(name)) {
            (Some(a), Some(b)) => a.peers == b.peers && b.uses_peers(),
            _ => false,
        };
        let same_var = |rule: &str, var: &str| {
            let def = |set: &RuleSet| set.get(rule).and_then(|r| r.var(var)).cloned();
            matches!((def(old), def(new)), (Some(a), Some(b)) if a.same_definition(&b))
        };
        self.write().retain(same_grouping, same_var);
    }

    /// What a pod task's evaluations read for the pod of `cfg`.
    pub fn lookup<'a>(&'a self, cfg: &'a PodConfig) -> LivePeers<'a> {
        LivePeers { shared: self, cfg }
    }
}

/// One pod's peers in the shared index; the lock is held for one variable's read at a time.
pub struct LivePeers<'a> {
    shared: &'a SharedPeers,
    cfg: &'a PodConfig,
}

impl PeerLookup for LivePeers<'_> {
    fn read(&self, rule: &Rule, name: &str, spec: &PeersSpec, now_ms: i64) -> PeerReading {
        let index = self.shared.read();
        PodPeers {
            index: &index,
            namespace: &self.cfg.key.namespace,
            pod: &self.cfg.key.name,
            labels: &self.cfg.labels,
            owner: self.cfg.owner.as_ref(),
            list: false,
        }
        .read(rule, name, spec, now_ms)
    }
}
