//! `peers:` variables in an evaluation: computed after the pod's own variables, from its
//! peers' latest values, and explained in the verdict's message.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::peers::{GroupId, NoPeers, PeerIndex, PodOwner, PodPeers};
use crate::rules::load_str;

const NOW: i64 = 1_000_000;

fn rule(vars: &str, expr: &str) -> Arc<Rule> {
    let yaml = format!(
        "rules:\n  - name: r\n    conditionType: example.com/g\n    interval: 10s\n    vars:\n{vars}    expr: '{expr}'\n"
    );
    match load_str("t.yaml", &yaml) {
        Ok(set) => set.rules[0].clone(),
        Err(e) => panic!("{e}"),
    }
}

fn baseline_rule(expr: &str) -> Arc<Rule> {
    rule(
        "      err: {promql: 'err{pod=\"{{pod}}\"}'}\n      base_err: {peers: {var: err, aggregate: median, of: baseline}}\n",
        expr,
    )
}

fn labels(rev: &str) -> BTreeMap<String, String> {
    [("pod-template-hash".to_string(), rev.to_string())]
        .into_iter()
        .collect()
}

fn owner() -> Option<PodOwner> {
    PodOwner::parse("Deployment/web")
}

/// The stable pods of revision 7d9f4c, evaluated at `NOW`.
fn stable(r: &Rule, errs: &[f64]) -> PeerIndex {
    let mut ix = PeerIndex::new();
    let l = labels("7d9f4c");
    let id = GroupId {
        rule: r.name.clone(),
        namespace: "shop".into(),
        group: r
            .peers
            .group(&l, owner().as_ref())
            .unwrap_or_else(|| unreachable!()),
    };
    for (i, e) in errs.iter().enumerate() {
        ix.record(
            &id,
            &format!("web-7d9f4c-{i}"),
            Some("7d9f4c"),
            NOW,
            [("err".to_string(), *e)],
        );
    }
    ix
}

/// Evaluates `r` on the new pod (revision 5b8e1a) whose own `err` is `err`.
fn evaluate_new(r: &Rule, ix: &PeerIndex, err: Option<f64>) -> RuleEvaluation {
    let l = labels("5b8e1a");
    let o = owner();
    let peers = PodPeers {
        index: ix,
        namespace: "shop",
        pod: "web-5b8e1a-0",
        labels: &l,
        owner: o.as_ref(),
        list: false,
    };
    let mut promql = |v: &Var| match (v.name.as_str(), err) {
        ("err", Some(x)) => VarResult::Value(x),
        _ => VarResult::NoData("no series".into()),
    };
    evaluate_rule(
        r,
        ScrapeInput::Failed("no scrape"),
        &mut promql,
        &peers,
        None,
        NOW,
    )
}

#[test]
fn a_new_version_worse_than_its_baseline_fails_and_the_message_says_against_what() {
    let r = baseline_rule("err <= 2 * base_err");
    let ix = stable(&r, &[0.004, 0.003, 0.005, 0.004, 0.006]);
    let got = evaluate_new(&r, &ix, Some(0.031));
    assert_eq!(got.evaluation.outcome, Outcome::Fail);
    assert_eq!(
        got.evaluation.detail,
        "err=0.031 > 2*base_err=0.008; base_err=0.004 is the baseline median of err over 5 pods \
         of revision 7d9f4c"
    );
    let ok = evaluate_new(&r, &ix, Some(0.005));
    assert_eq!(ok.evaluation.outcome, Outcome::Pass);
    // Same inputs, same result.
    assert_eq!(evaluate_new(&r, &ix, Some(0.031)), got);
}

#[test]
fn without_a_baseline_onnodata_or_isnan_decides() {
    let r = baseline_rule("err <= 2 * base_err");
    let empty = PeerIndex::new();
    let got = evaluate_new(&r, &empty, Some(0.031));
    assert_eq!(got.evaluation.outcome, Outcome::NoData);
    assert_eq!(
        got.evaluation.detail,
        "no data: base_err: 0 baseline peers (a revision other than 5b8e1a) in Deployment/web \
         with a fresh err, fewer than minPeers 1"
    );
    let guarded = baseline_rule("isnan(base_err) || err <= 2 * base_err");
    let got = evaluate_new(&guarded, &empty, Some(0.031));
    assert_eq!(got.evaluation.outcome, Outcome::Pass);
    assert_eq!(got.evaluation.detail, "isnan(base_err)=true");
}

#[test]
fn peers_values_are_reported_after_the_pods_own_in_declaration_order() {
    let r = baseline_rule("err <= 2 * base_err");
    let ix = stable(&r, &[0.01]);
    let got = evaluate_new(&r, &ix, Some(0.01));
    let shown: Vec<(&str, &str)> = got
        .vars
        .iter()
        .map(|v| (v.name.as_str(), v.source))
        .collect();
    assert_eq!(shown, [("err", "promql"), ("base_err", "peers")]);
    let s = got.vars[1]
        .peers
        .as_ref()
        .unwrap_or_else(|| panic!("a summary"));
    assert_eq!(
        (s.pods, s.revisions.as_slice()),
        (1, ["7d9f4c".to_string()].as_slice())
    );
    assert_eq!(got.peer_values(&r), [("err".to_string(), 0.01)]);
}

#[test]
fn a_variable_read_only_by_peers_does_not_decide_the_pod() {
    // The fleet-wide check reads only the peers' median; the pod's own err is evaluated for
    // its peers, and its lack of data is no verdict on the pod.
    let r = baseline_rule("base_err < 0.1");
    let ix = stable(&r, &[0.01, 0.02]);
    let got = evaluate_new(&r, &ix, None);
    assert_eq!(
        got.evaluation.outcome,
        Outcome::Pass,
        "{}",
        got.evaluation.detail
    );
    assert_eq!(got.vars.len(), 2, "err is evaluated for the peers");
    assert!(got.peer_values(&r).is_empty(), "no number to leave");
    let got = evaluate_new(&r, &ix, Some(0.5));
    assert_eq!(got.peer_values(&r), [("err".to_string(), 0.5)]);
}

#[test]
fn an_unused_peers_variable_is_not_read() {
    let r = rule(
        "      err: {promql: 'err'}\n      spare: {peers: {var: err, aggregate: max}}\n",
        "err < 1",
    );
    let mut promql = |_: &Var| VarResult::Value(0.5);
    let got = evaluate_rule(
        &r,
        ScrapeInput::Failed("no scrape"),
        &mut promql,
        &NoPeers("unused"),
        None,
        NOW,
    );
    assert_eq!(got.evaluation.outcome, Outcome::Pass);
    assert_eq!(got.vars.len(), 1);
    assert!(got.peer_values(&r).is_empty(), "nobody aggregates err");
}
