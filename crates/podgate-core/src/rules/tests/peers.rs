//! `mode`, the rule's `peers:` settings and `peers:` variables: what they load to, and every
//! bad input as a `podgate check` error with its position, rule and field.

use super::*;
use crate::peers::{Aggregate, PeerSet, PeersSettings};

/// A rule comparing `err` with its baseline; `extra` adds rule fields at line 7.
const PEERS: &str = "\
rules:
  - name: r1
    conditionType: example.com/gate
    vars:
      err: {scrape: 'err'}
      base: {peers: {var: err, aggregate: median, of: baseline}}
    expr: 'err <= 2 * base'
";

fn peers_with(extra: &str) -> String {
    let mut s = PEERS.to_string();
    for line in extra.lines() {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// `PEERS` with the `base` variable's definition replaced.
fn base_var(definition: &str) -> String {
    PEERS.replace(
        "{peers: {var: err, aggregate: median, of: baseline}}",
        definition,
    )
}

fn spec_of(r: &Rule, name: &str) -> crate::rules::PeersSpec {
    r.var(name)
        .and_then(Var::peers)
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not a peers: variable"))
}

#[test]
fn a_peers_variable_loads_with_its_defaults() {
    let r = only_rule(PEERS);
    assert_eq!(r.mode, Mode::Continuous);
    assert_eq!(r.peers, PeersSettings::default());
    let spec = spec_of(&r, "base");
    assert_eq!(spec.var, "err");
    assert_eq!(spec.aggregate, Aggregate::Median);
    assert_eq!(spec.of, PeerSet::Baseline);
    assert_eq!(spec.min_peers, 1);
    assert_eq!(
        r.var("base").map(|v| (v.source.kind(), v.text.as_str())),
        Some((
            "peers",
            "{var: err, aggregate: median, of: baseline, minPeers: 1}"
        ))
    );
    assert!(r.uses_peers());
    assert_eq!(r.peer_sources().collect::<Vec<_>>(), ["err"]);
    let all = only_rule(&base_var(
        "{peers: {var: err, aggregate: 'quantile(0.9)', minPeers: 3}}",
    ));
    let spec = spec_of(&all, "base");
    assert_eq!(
        (spec.aggregate, spec.of, spec.min_peers),
        (Aggregate::Quantile(0.9), PeerSet::All, 3)
    );
}

#[test]
fn mode_and_peer_settings_load() {
    let r = only_rule(&peers_with(
        "mode: startup\npeers:\n  groupBy: [app, example.com/track]\n  revisionLabel: version",
    ));
    assert_eq!(r.mode, Mode::Startup);
    assert_eq!(r.peers.group_by, ["app", "example.com/track"]);
    assert_eq!(r.peers.revision_label.as_deref(), Some("version"));
    let r = only_rule(&with("mode: continuous"));
    assert_eq!(r.mode, Mode::Continuous);
}

#[test]
fn every_new_field_is_part_of_the_definition() {
    let a = only_rule(PEERS);
    for changed in [
        peers_with("mode: startup"),
        peers_with("peers: {groupBy: [app]}"),
        peers_with("peers: {revisionLabel: version}"),
        PEERS.replace("aggregate: median", "aggregate: mean"),
        PEERS.replace("of: baseline", "of: cohort"),
        PEERS.replace("of: baseline", "of: baseline, minPeers: 2"),
        PEERS.replace(
            "{peers: {var: err, aggregate: median, of: baseline}}",
            "{scrape: 'err'}",
        ),
    ] {
        let b = only_rule(&changed);
        assert!(!a.same_definition(&b), "must count as a change:\n{changed}");
    }
    // Writing a default out is no change.
    let explicit = only_rule(&PEERS.replace("of: baseline", "of: baseline, minPeers: 1"));
    assert!(a.same_definition(&explicit));
    let explicit = only_rule(&peers_with("mode: continuous"));
    assert!(a.same_definition(&explicit));
}

#[test]
fn a_variable_only_aggregated_by_a_used_peers_variable_counts_as_used() {
    let set = load_ok(
        PEERS
            .replace("expr: 'err <= 2 * base'", "expr: 'base < 1'")
            .as_str(),
    );
    assert!(set.warnings.is_empty(), "{}", render(&set.warnings));
}

#[test]
fn a_peers_variable_naming_an_unknown_variable() {
    let src = base_var("{peers: {var: errs, aggregate: median}}");
    assert_at(
        &one_error(&src),
        after(&src, "{var: "),
        Some("vars.base.peers.var"),
        "variable \"errs\" is not defined in vars; did you mean \"err\"? (defined: err)",
    );
}

#[test]
fn a_peers_variable_naming_itself_or_another_peers_variable() {
    let src = base_var("{peers: {var: base, aggregate: median}}");
    assert_at(
        &one_error(&src),
        after(&src, "{var: "),
        Some("vars.base.peers.var"),
        "cannot aggregate itself",
    );
    let src = PEERS.replace(
        "    expr: 'err <= 2 * base'",
        "      chain: {peers: {var: base, aggregate: max}}\n    expr: 'err <= 2 * base + chain'",
    );
    assert_at(
        &one_error(&src),
        after(&src, "chain: {peers: {var: "),
        Some("vars.chain.peers.var"),
        "\"base\" is a peers: variable itself",
    );
}

#[test]
fn unknown_aggregates_and_quantiles_outside_0_to_1() {
    let src = base_var("{peers: {var: err, aggregate: meidan}}");
    assert_at(
        &one_error(&src),
        after(&src, "aggregate: "),
        Some("vars.base.peers.aggregate"),
        "unknown aggregate \"meidan\"; did you mean \"median\"?",
    );
    let src = base_var("{peers: {var: err, aggregate: 'quantile(1.5)'}}");
    let (line, column) = after(&src, "aggregate: 'quantile(");
    assert_at(
        &one_error(&src),
        (line, column),
        Some("vars.base.peers.aggregate"),
        "quantile 1.5 is outside [0, 1]",
    );
    let src = base_var("{peers: {var: err, aggregate: quantile(-0.5)}}");
    assert_at(
        &one_error(&src),
        after(&src, "aggregate: quantile("),
        Some("vars.base.peers.aggregate"),
        "outside [0, 1]",
    );
    let src = base_var("{peers: {var: err, aggregate: 0.5}}");
    assert_at(
        &one_error(&src),
        after(&src, "aggregate: "),
        Some("vars.base.peers.aggregate"),
        "expected a string",
    );
}

#[test]
fn group_by_labels_must_be_label_keys() {
    let src = peers_with("peers:\n  groupBy: [app, 'bad key!']");
    assert_at(
        &one_error(&src),
        after(&src, "groupBy: [app, "),
        Some("peers.groupBy[1]"),
        "invalid label key \"bad key!\"",
    );
    let src = peers_with("peers:\n  groupBy: app");
    assert_at(
        &one_error(&src),
        after(&src, "groupBy: "),
        Some("peers.groupBy"),
        "expected a list of label keys",
    );
    let src = peers_with("peers:\n  groupBy: [app, app]");
    assert_at(
        &one_error(&src),
        after(&src, "groupBy: [app, "),
        Some("peers.groupBy[1]"),
        "listed twice",
    );
    let src = peers_with("peers:\n  groupBy: []");
    assert_at(
        &one_error(&src),
        after(&src, "groupBy: "),
        Some("peers.groupBy"),
        "leave groupBy out",
    );
    let src = peers_with("peers:\n  revisionLabel: -x");
    assert_at(
        &one_error(&src),
        after(&src, "revisionLabel: "),
        Some("peers.revisionLabel"),
        "invalid label key",
    );
    let src = peers_with("peers:\n  groupby: [app]");
    assert_at(
        &one_error(&src),
        start(&src, "groupby:"),
        Some("peers.groupby"),
        "did you mean \"groupBy\"",
    );
}

#[test]
fn other_bad_peer_definitions_and_modes() {
    let src = base_var("{peers: {var: err, aggregate: median, of: baseline2}}");
    assert_at(
        &one_error(&src),
        after(&src, "of: "),
        Some("vars.base.peers.of"),
        "did you mean \"baseline\"",
    );
    let src = base_var("{peers: {var: err, aggregate: median, minPeers: -1}}");
    assert_at(
        &one_error(&src),
        after(&src, "minPeers: "),
        Some("vars.base.peers.minPeers"),
        "at least 0",
    );
    let src = base_var("{peers: {var: err}}");
    assert_at(
        &one_error(&src),
        after(&src, "base: {peers: "),
        Some("vars.base.peers.aggregate"),
        "missing required field `aggregate`",
    );
    let src = base_var("{peers: {aggregate: min}}");
    assert_at(
        &one_error(&src),
        after(&src, "base: {peers: "),
        Some("vars.base.peers.var"),
        "missing required field `var`",
    );
    let src = base_var("{scrape: 'x', peers: {var: err, aggregate: min}}");
    assert_at(
        &one_error(&src),
        after(&src, "base: {scrape: "),
        Some("vars.base"),
        "exactly one source",
    );
    let src = base_var("{peers: {var: err, aggregate: min, off: all}}");
    assert_at(
        &one_error(&src),
        start(&src, "off:"),
        Some("vars.base.peers.off"),
        "did you mean \"of\"",
    );
    let src = peers_with("mode: once");
    assert_at(
        &one_error(&src),
        after(&src, "mode: "),
        Some("mode"),
        "unknown mode \"once\"; expected continuous or startup",
    );
}

#[test]
fn peer_settings_without_a_peers_variable_are_a_warning() {
    let set = load_ok(&with("peers: {groupBy: [app]}"));
    assert_eq!(set.warnings.len(), 1, "{}", render(&set.warnings));
    assert_diag(&set.warnings[0], 7, 12, Some("peers"), "no peers: variable");
}

#[test]
fn a_startup_rule_with_peers_variables_is_a_warning() {
    let src = peers_with("mode: startup");
    let set = load_ok(&src);
    assert_eq!(set.warnings.len(), 1, "{}", render(&set.warnings));
    assert_at(
        &set.warnings[0],
        after(&src, "mode: "),
        Some("mode"),
        "stop counting as peers: base compares only pods still starting",
    );
}
