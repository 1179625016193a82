//! What an evaluation reads for its `peers:` variables: the pod's peer group in the index,
//! the fresh values in the chosen set, their aggregate, and a summary that explains it.

use std::collections::BTreeMap;

use super::aggregate::Aggregate;
use super::group::{PeerSet, PodOwner};
use super::index::{GroupId, PeerIndex, PeerQuery, PeerValue};
use crate::evaluate::VarResult;
use crate::expr::format_value;
use crate::rules::{PeersSpec, Rule};

/// Answers the `peers:` variables of one pod's evaluation.
pub trait PeerLookup {
    /// The value of the `peers:` variable `name` (defined by `spec`) of `rule`, at `now_ms`.
    fn read(&self, rule: &Rule, name: &str, spec: &PeersSpec, now_ms: i64) -> PeerReading;
}

/// A `peers:` variable's value and, when a peer group was found, what it was computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerReading {
    pub result: VarResult,
    pub summary: Option<PeerSummary>,
}

/// What a `peers:` variable was computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerSummary {
    pub var: String,
    pub aggregate: Aggregate,
    pub of: PeerSet,
    /// The peer group (`Deployment/web`, or the `groupBy` labels).
    pub group: String,
    /// The evaluated pod's revision.
    pub revision: Option<String>,
    /// Peers whose value counted.
    pub pods: usize,
    /// Their distinct revisions, sorted.
    pub revisions: Vec<String>,
    /// Peers in the set without a fresh value.
    pub stale: usize,
    /// Each peer's value, when listing was asked for (`podgate eval`).
    pub listed: Vec<PeerValue>,
}

impl PeerSummary {
    /// `baseline median of err over 5 pods of revision 7d9f4c`.
    pub fn describe(&self) -> String {
        let pods = plural(self.pods, "pod");
        let of_revisions = match self.revisions.as_slice() {
            [] => String::new(),
            [one] => format!(" of revision {one}"),
            many if many.len() <= 3 => format!(" of revisions {}", many.join(", ")),
            many => format!(" of revisions {}, …", many[..3].join(", ")),
        };
        match self.of {
            PeerSet::All => format!(
                "{} of {} over {pods} in {}",
                self.aggregate, self.var, self.group
            ),
            PeerSet::Baseline | PeerSet::Cohort => {
                format!(
                    "{} {} of {} over {pods}{of_revisions}",
                    self.of, self.aggregate, self.var
                )
            }
        }
    }

    /// `base_err=0.004 is the baseline median of err over 5 pods of revision 7d9f4c`: the
    /// variable `name`'s value `value` and where it came from.
    pub fn explain(&self, name: &str, value: f64) -> String {
        format!("{name}={} is the {}", format_value(value), self.describe())
    }

    /// Why there is no value: too few peers with a fresh one.
    fn shortfall(&self, min_peers: u32) -> String {
        let set = match (self.of, self.revision.as_deref()) {
            (PeerSet::All, _) => "peers".to_string(),
            (PeerSet::Baseline, Some(r)) => format!("baseline peers (a revision other than {r})"),
            (PeerSet::Baseline, None) => {
                "baseline peers (the pod has no revision label to tell them apart)".to_string()
            }
            (PeerSet::Cohort, Some(r)) => format!("peers of revision {r}"),
            (PeerSet::Cohort, None) => "peers without a revision label".to_string(),
        };
        let stale = if self.stale > 0 {
            format!(
                " ({} more without a value from the last two intervals)",
                self.stale
            )
        } else {
            String::new()
        };
        format!(
            "{} {set} in {} with a fresh {}{stale}, fewer than minPeers {min_peers}",
            self.pods, self.group, self.var
        )
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// No peers at all (a single-pod evaluation): every `peers:` variable has no data, saying why.
pub struct NoPeers<'a>(pub &'a str);

impl PeerLookup for NoPeers<'_> {
    fn read(&self, _: &Rule, _: &str, _: &PeersSpec, _: i64) -> PeerReading {
        PeerReading {
            result: VarResult::NoData(self.0.to_string()),
            summary: None,
        }
    }
}

/// The peers of one pod, read from an index.
pub struct PodPeers<'a> {
    pub index: &'a PeerIndex,
    pub namespace: &'a str,
    pub pod: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub owner: Option<&'a PodOwner>,
    /// Keep every peer's value in the summary.
    pub list: bool,
}

impl PeerLookup for PodPeers<'_> {
    fn read(&self, rule: &Rule, _: &str, spec: &PeersSpec, now_ms: i64) -> PeerReading {
        let Some(group) = rule.peers.group(self.labels, self.owner) else {
            return PeerReading {
                result: VarResult::NoData(
                    "the pod has no owner workload to find its peers by; set the rule's \
                     peers.groupBy"
                        .to_string(),
                ),
                summary: None,
            };
        };
        let revision = rule.peers.revision(self.labels);
        let id = GroupId {
            rule: rule.name.clone(),
            namespace: self.namespace.to_string(),
            group,
        };
        // Values from the last two intervals: a peer evaluated on its own slot is always
        // within one, and a missed evaluation is tolerated once.
        let interval = crate::time::millis(rule.interval);
        let found = self.index.read(&PeerQuery {
            group: &id,
            pod: self.pod,
            revision,
            var: &spec.var,
            of: spec.of,
            fresh_since_ms: now_ms.saturating_sub(interval.saturating_mul(2)),
            list: self.list,
        });
        let summary = PeerSummary {
            var: spec.var.clone(),
            aggregate: spec.aggregate,
            of: spec.of,
            group: id.group.to_string(),
            revision: revision.map(str::to_string),
            pods: found.values.len(),
            revisions: found.revisions,
            stale: found.stale,
            listed: found.listed,
        };
        let n = u32::try_from(summary.pods).unwrap_or(u32::MAX);
        let result = if n < spec.min_peers {
            VarResult::NoData(summary.shortfall(spec.min_peers))
        } else {
            match spec.aggregate.apply(&found.values) {
                v if v.is_nan() => VarResult::NoData(format!(
                    "the {} of {} over {} is NaN",
                    spec.aggregate,
                    spec.var,
                    plural(summary.pods, "peer")
                )),
                v => VarResult::Value(v),
            }
        };
        PeerReading {
            result,
            summary: Some(summary),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::load_str;

    fn rule(extra: &str, spec: &str) -> std::sync::Arc<Rule> {
        let yaml = format!(
            "rules:\n  - name: r\n    conditionType: example.com/g\n    interval: 10s\n{extra}    \
             vars:\n      err: {{scrape: 'err'}}\n      base: {{peers: {spec}}}\n    \
             expr: 'err <= 2 * base'\n"
        );
        match load_str("t.yaml", &yaml) {
            Ok(set) => set.rules[0].clone(),
            Err(e) => panic!("{e}"),
        }
    }

    fn labels(rev: &str) -> BTreeMap<String, String> {
        [("pod-template-hash".to_string(), rev.to_string())]
            .into_iter()
            .collect()
    }

    fn spec(r: &Rule) -> PeersSpec {
        r.var("base")
            .and_then(|v| v.peers())
            .cloned()
            .unwrap_or_else(|| panic!("no peers var"))
    }

    /// Stable pods a1..a5 (revision a) and the new pod b1, of Deployment/web, at `at`.
    fn index(r: &Rule, at: i64) -> PeerIndex {
        let mut ix = PeerIndex::new();
        let owner = PodOwner::parse("Deployment/web");
        for (pod, rev, v) in [
            ("a1", "a", 0.004),
            ("a2", "a", 0.002),
            ("a3", "a", 0.006),
            ("a4", "a", 0.004),
            ("a5", "a", 0.005),
            ("b1", "b", 0.031),
        ] {
            let l = labels(rev);
            let id = GroupId {
                rule: r.name.clone(),
                namespace: "shop".into(),
                group: r
                    .peers
                    .group(&l, owner.as_ref())
                    .unwrap_or_else(|| unreachable!()),
            };
            ix.record(&id, pod, Some(rev), at, [("err".to_string(), v)]);
        }
        ix
    }

    fn read(r: &Rule, ix: &PeerIndex, pod: &str, rev: &str, now: i64) -> PeerReading {
        let owner = PodOwner::parse("Deployment/web");
        let l = labels(rev);
        let peers = PodPeers {
            index: ix,
            namespace: "shop",
            pod,
            labels: &l,
            owner: owner.as_ref(),
            list: false,
        };
        peers.read(r, "base", &spec(r), now)
    }

    #[test]
    fn the_baseline_median_with_its_story() {
        let r = rule("", "{var: err, aggregate: median, of: baseline}");
        let ix = index(&r, 1_000);
        let got = read(&r, &ix, "b1", "b", 1_000);
        assert_eq!(got.result, VarResult::Value(0.004));
        let s = got.summary.unwrap_or_else(|| panic!("a summary"));
        assert_eq!(
            s.explain("base", 0.004),
            "base=0.004 is the baseline median of err over 5 pods of revision a"
        );
    }

    #[test]
    fn fewer_fresh_peers_than_min_peers_is_no_data_that_says_why() {
        let r = rule("", "{var: err, aggregate: mean, of: baseline, minPeers: 6}");
        let ix = index(&r, 1_000);
        match read(&r, &ix, "b1", "b", 1_000).result {
            VarResult::NoData(why) => assert_eq!(
                why,
                "5 baseline peers (a revision other than b) in Deployment/web with a fresh \
                 err, fewer than minPeers 6"
            ),
            other => panic!("{other:?}"),
        }
        // Two intervals (20 s) later the values still count; after that they are stale.
        let r = rule("", "{var: err, aggregate: count, of: all}");
        let ix = index(&r, 1_000);
        assert_eq!(
            read(&r, &ix, "b1", "b", 21_000).result,
            VarResult::Value(5.0)
        );
        match read(&r, &ix, "b1", "b", 21_001).result {
            VarResult::NoData(why) => {
                assert!(why.contains("0 peers in Deployment/web"), "{why}");
                assert!(why.contains("5 more without a value"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_first_deployment_has_no_baseline() {
        let r = rule("", "{var: err, aggregate: median, of: baseline}");
        let ix = index(&r, 1_000);
        // A stable pod's baseline is the one new pod; a fleet of one revision has none.
        assert_eq!(
            read(&r, &ix, "a1", "a", 1_000).result,
            VarResult::Value(0.031)
        );
        let mut only_a = PeerIndex::new();
        let id = GroupId {
            rule: "r".into(),
            namespace: "shop".into(),
            group: crate::peers::PeerGroup::Owner(PodOwner {
                kind: "Deployment".into(),
                name: "web".into(),
            }),
        };
        only_a.record(&id, "a2", Some("a"), 1_000, [("err".to_string(), 0.1)]);
        assert!(matches!(
            read(&r, &only_a, "a1", "a", 1_000).result,
            VarResult::NoData(_)
        ));
    }

    #[test]
    fn outliers_against_mean_and_stddev_of_everyone_else() {
        let mean = rule("", "{var: err, aggregate: mean}");
        let ix = index(&mean, 1_000);
        let VarResult::Value(m) = read(&mean, &ix, "b1", "b", 1_000).result else {
            panic!("a mean")
        };
        assert!((m - 0.0042).abs() < 1e-12, "{m}");
        let sd = rule("", "{var: err, aggregate: stddev}");
        let VarResult::Value(s) = read(&sd, &ix, "b1", "b", 1_000).result else {
            panic!("a stddev")
        };
        assert!(s > 0.0 && s < 0.002, "{s}");
        assert!(0.031 > m + 3.0 * s, "b1 is an outlier");
    }

    #[test]
    fn a_pod_without_an_owner_has_no_peers_unless_grouped_by_labels() {
        let r = rule("", "{var: err, aggregate: median}");
        let ix = PeerIndex::new();
        let l = labels("a");
        let bare = PodPeers {
            index: &ix,
            namespace: "shop",
            pod: "p",
            labels: &l,
            owner: None,
            list: false,
        };
        let got = bare.read(&r, "base", &spec(&r), 0);
        assert!(got.summary.is_none());
        assert!(
            matches!(&got.result, VarResult::NoData(w) if w.contains("peers.groupBy")),
            "{:?}",
            got.result
        );
        let grouped = rule(
            "    peers: {groupBy: [pod-template-hash]}\n",
            "{var: err, aggregate: median}",
        );
        let got = bare.read(&grouped, "base", &spec(&grouped), 0);
        assert_eq!(
            got.summary.map(|s| s.group),
            Some("{pod-template-hash=\"a\"}".to_string())
        );
    }
}
