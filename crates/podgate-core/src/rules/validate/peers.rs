//! Validation of what judging a pod against its peers adds to a rule: `mode`, the rule's
//! `peers:` settings and `peers:` variables.

use super::{Walker, get, join, key_pos};
use crate::peers::{Aggregate, PeerSet, PeersSettings};
use crate::rules::model::{Mode, PeersSpec, Var};
use crate::rules::names;
use crate::rules::yaml::{Kind, Node, Pos};

const PEERS_FIELDS: &[&str] = &["groupBy", "revisionLabel"];
const PEERS_VAR_FIELDS: &[&str] = &["var", "aggregate", "of", "minPeers"];

/// Where a `peers:` variable names the variable it aggregates, checked once every variable is
/// known.
pub(super) struct PeerRef {
    /// The `peers:` variable.
    pub name: String,
    pub at: Pos,
}

impl Walker<'_> {
    pub(super) fn mode(&mut self, node: &Node) -> Option<Mode> {
        let s = self.string(node, "mode")?;
        let mode = Mode::parse(s);
        if mode.is_none() {
            let hint = names::did_you_mean(s, &Mode::NAMES);
            self.error(
                node.at,
                "mode",
                format!("unknown mode {s:?}{hint}; expected continuous or startup"),
            );
        }
        mode
    }

    /// The rule's `peers:` settings: `groupBy` label keys and `revisionLabel`.
    pub(super) fn peers_settings(&mut self, node: &Node) -> Option<PeersSettings> {
        let fields = self.fields(node, "peers", PEERS_FIELDS)?;
        let mut ok = true;
        let mut settings = PeersSettings::default();
        if let Some(n) = get(&fields, "groupBy") {
            match &n.kind {
                Kind::Seq(items) if items.is_empty() => {
                    self.error(
                        n.at,
                        "peers.groupBy",
                        "an empty list; leave groupBy out to group by the pod's owner workload",
                    );
                    ok = false;
                }
                Kind::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let path = format!("peers.groupBy[{i}]");
                        match self.label_key(item, &path) {
                            Some(k) if settings.group_by.contains(&k) => {
                                self.error(item.at, &path, format!("label {k:?} is listed twice"));
                                ok = false;
                            }
                            Some(k) => settings.group_by.push(k),
                            None => ok = false,
                        }
                    }
                }
                _ => {
                    self.type_error(n, "peers.groupBy", "a list of label keys");
                    ok = false;
                }
            }
        }
        if let Some(n) = get(&fields, "revisionLabel") {
            match self.label_key(n, "peers.revisionLabel") {
                Some(k) => settings.revision_label = Some(k),
                None => ok = false,
            }
        }
        ok.then_some(settings)
    }

    fn label_key(&mut self, node: &Node, path: &str) -> Option<String> {
        let key = self.string(node, path)?;
        match names::qualified_name(key) {
            Ok(()) => Some(key.to_string()),
            Err(e) => {
                self.error(
                    node.at,
                    path,
                    format!("invalid label key {key:?}: {e} (label-key syntax, e.g. app or example.com/track)"),
                );
                None
            }
        }
    }

    /// A `peers:` variable's definition at `path` (`vars.NAME`). `other` is a second source
    /// written next to it, an error. The variable it names is checked later, against all.
    pub(super) fn peers_var(
        &mut self,
        node: &Node,
        path: &str,
        other: Option<&Node>,
    ) -> Option<(PeersSpec, Pos)> {
        if let Some(o) = other {
            self.error(
                o.at,
                path,
                "a variable has exactly one source: `scrape`, `promql` or `peers`",
            );
            return None;
        }
        let ppath = join(path, "peers");
        let fields = self.fields(node, &ppath, PEERS_VAR_FIELDS)?;
        let mut ok = true;
        let var = match get(&fields, "var") {
            Some(n) => self
                .string(n, &join(&ppath, "var"))
                .map(|s| (s.to_string(), n.at)),
            None => {
                self.missing(
                    key_pos(&fields, "var", node),
                    &join(&ppath, "var"),
                    " (the variable to aggregate over the peers)",
                );
                None
            }
        };
        let aggregate = match get(&fields, "aggregate") {
            Some(n) => self.aggregate(n, &join(&ppath, "aggregate")),
            None => {
                self.missing(
                    key_pos(&fields, "aggregate", node),
                    &join(&ppath, "aggregate"),
                    " (median, mean, min, max, stddev, count or quantile(q))",
                );
                None
            }
        };
        let of = match get(&fields, "of") {
            Some(n) => {
                let opath = join(&ppath, "of");
                self.string(n, &opath).and_then(|s| {
                    let of = PeerSet::parse(s);
                    if of.is_none() {
                        let hint = names::did_you_mean(s, &PeerSet::NAMES);
                        self.error(
                            n.at,
                            &opath,
                            format!(
                                "unknown peer set {s:?}{hint}; expected all, baseline (peers of \
                                 another revision) or cohort (peers of the same revision)"
                            ),
                        );
                    }
                    of
                })
            }
            None => Some(PeerSet::All),
        };
        let min_peers = match get(&fields, "minPeers") {
            Some(n) => self.count(n, &join(&ppath, "minPeers"), 0),
            None => Some(1),
        };
        ok &= var.is_some() && aggregate.is_some() && of.is_some() && min_peers.is_some();
        if !ok {
            return None;
        }
        let (var, at) = var?;
        Some((
            PeersSpec {
                var,
                aggregate: aggregate?,
                of: of?,
                min_peers: min_peers?,
            },
            at,
        ))
    }

    fn aggregate(&mut self, node: &Node, path: &str) -> Option<Aggregate> {
        let text = self.string(node, path)?;
        match Aggregate::parse(text) {
            Ok(a) => Some(a),
            Err(e) => {
                let at = self.pos_in(node, e.index).unwrap_or(node.at);
                self.error(at, path, e.message);
                None
            }
        }
    }

    /// Each `peers:` variable must aggregate another variable of the rule that is not a
    /// `peers:` one itself (no chains). Returns whether all do.
    pub(super) fn check_peer_refs(&mut self, vars: &[Var], refs: &[PeerRef]) -> bool {
        let mut ok = true;
        let names: Vec<&str> = vars
            .iter()
            .filter(|v| v.peers().is_none())
            .map(|v| v.name.as_str())
            .collect();
        for r in refs {
            let Some(spec) = vars.iter().find(|v| v.name == r.name).and_then(Var::peers) else {
                continue;
            };
            let path = format!("vars.{}.peers.var", r.name);
            let target = vars.iter().find(|v| v.name == spec.var);
            let message = match target {
                _ if spec.var == r.name => format!(
                    "a peers: variable cannot aggregate itself; name a scrape: or promql: \
                     variable (defined: {})",
                    names.join(", ")
                ),
                Some(t) if t.peers().is_some() => format!(
                    "{:?} is a peers: variable itself; a peers: variable aggregates a scrape: \
                     or promql: variable (no chains; defined: {})",
                    spec.var,
                    names.join(", ")
                ),
                Some(_) => continue,
                None => format!(
                    "variable {:?} is not defined in vars{} (defined: {})",
                    spec.var,
                    names::did_you_mean(&spec.var, &names),
                    names.join(", ")
                ),
            };
            self.error(r.at, &path, message);
            ok = false;
        }
        ok
    }

    /// `peers:` settings on a rule without a `peers:` variable do nothing: a warning.
    pub(super) fn unused_peer_settings(&mut self, at: Pos, vars: &[Var]) {
        if !vars.iter().any(|v| v.peers().is_some()) {
            self.warn(
                at,
                "peers",
                "the rule has no peers: variable, so its peers: settings are unused",
            );
        }
    }

    /// A startup rule stops evaluating the pods it has let in, so they stop counting as
    /// peers: its `peers:` variables compare only pods still starting. A warning.
    pub(super) fn startup_with_peers(&mut self, at: Pos, vars: &[Var]) {
        if let Some(v) = vars.iter().find(|v| v.peers().is_some()) {
            self.warn(
                at,
                "mode",
                format!(
                    "mode: startup stops evaluating the pods the rule has let in, so they stop \
                     counting as peers: {} compares only pods still starting; use mode: \
                     continuous to compare with the pods in service",
                    v.name
                ),
            );
        }
    }
}
