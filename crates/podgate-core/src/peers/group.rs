//! Which pods are peers: the owning workload (or the `groupBy` labels) and the revision.
//!
//! Everything here is read from the pod itself (labels and owner references), so grouping
//! needs no permission beyond reading pods.

use std::collections::BTreeMap;
use std::fmt;

/// The label the ReplicaSet controller puts on a Deployment's pods (and in the ReplicaSet's
/// name): the hash of the pod template, i.e. the revision.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The label the StatefulSet and DaemonSet controllers put on their pods: their revision.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// Which of the pod's peers a `peers:` variable reads (`of:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerSet {
    /// Every peer.
    #[default]
    All,
    /// Peers of another revision: the stable pods while a new version rolls out.
    Baseline,
    /// Peers of the pod's own revision.
    Cohort,
}

impl PeerSet {
    pub const NAMES: [&'static str; 3] = ["all", "baseline", "cohort"];

    pub fn parse(s: &str) -> Option<PeerSet> {
        match s {
            "all" => Some(PeerSet::All),
            "baseline" => Some(PeerSet::Baseline),
            "cohort" => Some(PeerSet::Cohort),
            _ => None,
        }
    }

    /// Whether a peer of revision `theirs` belongs to the set of a pod of revision `mine`.
    /// `baseline` needs both revisions known: a pod without one cannot tell old from new.
    pub fn admits(self, mine: Option<&str>, theirs: Option<&str>) -> bool {
        match self {
            PeerSet::All => true,
            PeerSet::Baseline => matches!((mine, theirs), (Some(a), Some(b)) if a != b),
            PeerSet::Cohort => mine == theirs,
        }
    }
}

impl fmt::Display for PeerSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerSet::All => "all",
            PeerSet::Baseline => "baseline",
            PeerSet::Cohort => "cohort",
        })
    }
}

/// A rule's `peers:` settings: how its pods are grouped and where their revision is read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeersSettings {
    /// Label keys whose values a pod's peers share; empty: the pod's owner workload.
    pub group_by: Vec<String>,
    /// The label holding the revision; None: `pod-template-hash`, else
    /// `controller-revision-hash`.
    pub revision_label: Option<String>,
}

impl PeersSettings {
    /// The pod's revision, from its labels.
    pub fn revision<'a>(&self, labels: &'a BTreeMap<String, String>) -> Option<&'a str> {
        match &self.revision_label {
            Some(l) => labels.get(l).map(String::as_str),
            None => labels
                .get(POD_TEMPLATE_HASH)
                .or_else(|| labels.get(CONTROLLER_REVISION_HASH))
                .map(String::as_str),
        }
    }

    /// The pod's peer group; None when it has none (no owner and no `groupBy`).
    pub fn group(
        &self,
        labels: &BTreeMap<String, String>,
        owner: Option<&PodOwner>,
    ) -> Option<PeerGroup> {
        if self.group_by.is_empty() {
            return owner.cloned().map(PeerGroup::Owner);
        }
        // A missing label counts as empty, as in a PromQL `by (...)`.
        Some(PeerGroup::Labels(
            self.group_by
                .iter()
                .map(|k| (k.clone(), labels.get(k).cloned().unwrap_or_default()))
                .collect(),
        ))
    }
}

/// The workload a pod belongs to, as far as the pod itself tells.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodOwner {
    pub kind: String,
    pub name: String,
}

impl PodOwner {
    /// From the pod's controller owner reference. A ReplicaSet named `<name>-<hash>`, where
    /// `<hash>` is the pod's `pod-template-hash` label, is the ReplicaSet of Deployment
    /// `<name>`: its pods and those of the Deployment's other ReplicaSets are one workload
    /// (reading the ReplicaSet to be sure would need another permission).
    pub fn from_reference(kind: &str, name: &str, labels: &BTreeMap<String, String>) -> PodOwner {
        if kind == "ReplicaSet"
            && let Some(hash) = labels.get(POD_TEMPLATE_HASH).filter(|h| !h.is_empty())
            && let Some(deployment) = name
                .strip_suffix(hash.as_str())
                .and_then(|n| n.strip_suffix('-'))
                .filter(|n| !n.is_empty())
        {
            return PodOwner {
                kind: "Deployment".to_string(),
                name: deployment.to_string(),
            };
        }
        PodOwner {
            kind: kind.to_string(),
            name: name.to_string(),
        }
    }

    /// `Kind/name`, as the test files and messages write it.
    pub fn parse(s: &str) -> Option<PodOwner> {
        let (kind, name) = s.split_once('/')?;
        (!kind.is_empty() && !name.is_empty()).then(|| PodOwner {
            kind: kind.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for PodOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// Pods of one rule and namespace that are peers of each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerGroup {
    /// The same owner workload.
    Owner(PodOwner),
    /// The same values of the `groupBy` labels, in `groupBy` order.
    Labels(Vec<(String, String)>),
}

impl fmt::Display for PeerGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerGroup::Owner(o) => o.fmt(f),
            PeerGroup::Labels(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}={v:?}")?;
                }
                f.write_str("}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_replica_set_of_a_deployment_is_the_deployment() {
        let l = labels(&[(POD_TEMPLATE_HASH, "7d9f4c5b8")]);
        let o = PodOwner::from_reference("ReplicaSet", "web-7d9f4c5b8", &l);
        assert_eq!(o.to_string(), "Deployment/web");
        let o = PodOwner::from_reference("ReplicaSet", "my-api-v2-7d9f4c5b8", &l);
        assert_eq!(o.to_string(), "Deployment/my-api-v2");
        // A ReplicaSet of its own (no hash label, or a name that does not end in it).
        let o = PodOwner::from_reference("ReplicaSet", "web", &labels(&[]));
        assert_eq!(o.to_string(), "ReplicaSet/web");
        let o = PodOwner::from_reference("ReplicaSet", "web-abc", &l);
        assert_eq!(o.to_string(), "ReplicaSet/web-abc");
        let o = PodOwner::from_reference("ReplicaSet", "-7d9f4c5b8", &l);
        assert_eq!(o.to_string(), "ReplicaSet/-7d9f4c5b8");
        let o = PodOwner::from_reference("StatefulSet", "db", &l);
        assert_eq!(o.to_string(), "StatefulSet/db");
    }

    #[test]
    fn the_revision_comes_from_the_template_hash_or_the_controller_revision() {
        let s = PeersSettings::default();
        let d = labels(&[(POD_TEMPLATE_HASH, "a1"), (CONTROLLER_REVISION_HASH, "b2")]);
        assert_eq!(s.revision(&d), Some("a1"));
        let ss = labels(&[(CONTROLLER_REVISION_HASH, "db-5f6")]);
        assert_eq!(s.revision(&ss), Some("db-5f6"));
        assert_eq!(s.revision(&labels(&[])), None);
        let custom = PeersSettings {
            revision_label: Some("version".into()),
            ..PeersSettings::default()
        };
        assert_eq!(custom.revision(&d), None);
        assert_eq!(custom.revision(&labels(&[("version", "v2")])), Some("v2"));
    }

    #[test]
    fn groups_by_owner_or_by_labels() {
        let owner = PodOwner::parse("Deployment/web");
        let l = labels(&[("app", "web"), ("track", "stable")]);
        let by_owner = PeersSettings::default();
        assert_eq!(
            by_owner.group(&l, owner.as_ref()).map(|g| g.to_string()),
            Some("Deployment/web".to_string())
        );
        assert_eq!(by_owner.group(&l, None), None, "a bare pod has no peers");
        let by_labels = PeersSettings {
            group_by: vec!["app".into(), "zone".into()],
            ..PeersSettings::default()
        };
        let g = by_labels.group(&l, None);
        assert_eq!(
            g.as_ref().map(ToString::to_string),
            Some("{app=\"web\", zone=\"\"}".to_string())
        );
        assert_eq!(
            g,
            by_labels.group(&labels(&[("app", "web")]), owner.as_ref())
        );
    }

    #[test]
    fn baseline_cohort_and_all() {
        assert!(PeerSet::All.admits(Some("a"), None));
        assert!(PeerSet::Baseline.admits(Some("a"), Some("b")));
        assert!(!PeerSet::Baseline.admits(Some("a"), Some("a")));
        assert!(!PeerSet::Baseline.admits(None, Some("a")));
        assert!(!PeerSet::Baseline.admits(Some("a"), None));
        assert!(PeerSet::Cohort.admits(Some("a"), Some("a")));
        assert!(PeerSet::Cohort.admits(None, None));
        assert!(!PeerSet::Cohort.admits(Some("a"), Some("b")));
    }
}
