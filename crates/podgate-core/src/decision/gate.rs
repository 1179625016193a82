//! One gate (condition type) on one pod: the rules that own it combined with AND, and the
//! override annotation on top.

use super::{Condition, Reason, cap_message};

/// One rule's say on a gate.
#[derive(Debug, Clone, Copy)]
pub struct RuleVerdict<'a> {
    pub rule: &'a str,
    /// `None` while the rule has not decided yet.
    pub verdict: Option<&'a Condition>,
    /// Dry-run rules are decided and reported, but have no say on the written gate.
    pub dry_run: bool,
}

/// Where an override annotation was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Override {
    Pod,
    Namespace,
}

pub const OVERRIDE_ANNOTATION: &str = "podgate.dev/override";

/// The condition the gate should carry, or `None` while it cannot be decided yet (some rule
/// has no verdict and none says False) or no rule may write it (all in dry run).
///
/// True only when every rule passes; False as soon as one fails, with the failing rules'
/// messages. A True gate carries the most telling non-healthy reason among its rules
/// (e.g. `PanicThreshold` when one rule is held True), so an operator sees that it is True
/// for another reason than healthy metrics.
pub fn combine(verdicts: &[RuleVerdict<'_>], over: Option<Override>) -> Option<Condition> {
    if let Some(over) = over {
        let on = match over {
            Override::Pod => "pod",
            Override::Namespace => "namespace",
        };
        return Some(Condition {
            status: true,
            reason: Reason::Overridden,
            message: format!("{OVERRIDE_ANNOTATION}=true on the {on}: evaluation bypassed"),
        });
    }
    let live: Vec<_> = verdicts.iter().filter(|v| !v.dry_run).collect();
    if live.is_empty() {
        return None;
    }
    let failing: Vec<&Condition> = live
        .iter()
        .filter_map(|v| v.verdict.filter(|c| !c.status))
        .collect();
    if let Some(first) = failing.first() {
        return Some(Condition {
            status: false,
            reason: first.reason,
            message: join(failing.iter().map(|c| c.message.as_str())),
        });
    }
    let decided: Vec<&Condition> = live.iter().filter_map(|v| v.verdict).collect();
    if decided.len() < live.len() {
        return None;
    }
    let unusual: Vec<&Condition> = decided
        .iter()
        .copied()
        .filter(|c| c.reason != Reason::MetricsHealthy)
        .collect();
    let (reason, shown) = match unusual.iter().min_by_key(|c| precedence(c.reason)) {
        Some(c) => (c.reason, unusual),
        None => (Reason::MetricsHealthy, decided),
    };
    Some(Condition {
        status: true,
        reason,
        message: join(shown.iter().map(|c| c.message.as_str())),
    })
}

/// The condition of a gate whose override was lifted before any of its rules decided: False
/// (the bypass is gone and nothing says the pod is healthy yet) until a rule decides.
pub fn override_lifted(verdicts: &[RuleVerdict<'_>]) -> Condition {
    let waiting: Vec<&str> = verdicts
        .iter()
        .filter(|v| v.verdict.is_none())
        .map(|v| v.rule)
        .collect();
    Condition {
        status: false,
        reason: Reason::NoData,
        message: cap_message(&format!(
            "{OVERRIDE_ANNOTATION} removed; no verdict yet (rule {})",
            waiting.join(", ")
        )),
    }
}

/// Which non-healthy reason a True gate reports first: the one an operator most needs to see.
fn precedence(r: Reason) -> u8 {
    match r {
        Reason::PanicThreshold => 0,
        // Never on a True gate (a warming verdict is False); listed for completeness.
        Reason::Warming => 0,
        Reason::FailOpenTimeout => 1,
        Reason::SourceError => 2,
        Reason::NoData => 3,
        Reason::Overridden => 4,
        Reason::MetricsUnhealthy => 5,
        Reason::MetricsHealthy => 6,
    }
}

fn join<'a>(messages: impl Iterator<Item = &'a str>) -> String {
    cap_message(&messages.collect::<Vec<_>>().join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: bool, reason: Reason, message: &str) -> Condition {
        Condition {
            status,
            reason,
            message: message.into(),
        }
    }

    fn v<'a>(rule: &'a str, verdict: Option<&'a Condition>) -> RuleVerdict<'a> {
        RuleVerdict {
            rule,
            verdict,
            dry_run: false,
        }
    }

    #[test]
    fn all_pass_is_true_healthy() {
        let a = c(true, Reason::MetricsHealthy, "a ok");
        let b = c(true, Reason::MetricsHealthy, "b ok");
        let g = combine(&[v("a", Some(&a)), v("b", Some(&b))], None);
        assert_eq!(g, Some(c(true, Reason::MetricsHealthy, "a ok; b ok")));
    }

    #[test]
    fn one_failing_rule_makes_the_gate_false_and_is_named() {
        let a = c(true, Reason::MetricsHealthy, "a ok");
        let b = c(false, Reason::MetricsUnhealthy, "x=5 >= 2 (rule b)");
        let g = combine(&[v("a", Some(&a)), v("b", Some(&b))], None);
        assert_eq!(
            g,
            Some(c(false, Reason::MetricsUnhealthy, "x=5 >= 2 (rule b)"))
        );
    }

    #[test]
    fn every_failing_rule_is_named_first_reason_wins() {
        let a = c(false, Reason::SourceError, "down (rule a)");
        let b = c(false, Reason::MetricsUnhealthy, "x=5 >= 2 (rule b)");
        let g = combine(&[v("a", Some(&a)), v("b", Some(&b))], None);
        assert_eq!(
            g,
            Some(c(
                false,
                Reason::SourceError,
                "down (rule a); x=5 >= 2 (rule b)"
            ))
        );
    }

    #[test]
    fn undecided_rule_blocks_true_but_not_false() {
        let a = c(true, Reason::MetricsHealthy, "a ok");
        assert_eq!(combine(&[v("a", Some(&a)), v("b", None)], None), None);
        let f = c(false, Reason::NoData, "no data (rule a)");
        assert_eq!(
            combine(&[v("a", Some(&f)), v("b", None)], None).map(|c| c.status),
            Some(false)
        );
    }

    #[test]
    fn true_gate_shows_unusual_reason() {
        let a = c(true, Reason::MetricsHealthy, "a ok");
        let b = c(true, Reason::PanicThreshold, "held (rule b)");
        let n = c(true, Reason::NoData, "no data (rule n)");
        let g = combine(
            &[v("a", Some(&a)), v("n", Some(&n)), v("b", Some(&b))],
            None,
        );
        assert_eq!(
            g,
            Some(c(
                true,
                Reason::PanicThreshold,
                "no data (rule n); held (rule b)"
            ))
        );
    }

    #[test]
    fn dry_run_rules_have_no_say() {
        let bad = c(false, Reason::MetricsUnhealthy, "bad");
        let ok = c(true, Reason::MetricsHealthy, "ok");
        let dry = RuleVerdict {
            rule: "d",
            verdict: Some(&bad),
            dry_run: true,
        };
        assert_eq!(combine(&[dry], None), None);
        assert_eq!(
            combine(&[dry, v("a", Some(&ok))], None),
            Some(c(true, Reason::MetricsHealthy, "ok"))
        );
    }

    #[test]
    fn override_wins() {
        let bad = c(false, Reason::MetricsUnhealthy, "bad");
        let g = combine(&[v("a", Some(&bad))], Some(Override::Namespace));
        let g = g.map(|c| (c.status, c.reason));
        assert_eq!(g, Some((true, Reason::Overridden)));
        assert_eq!(
            combine(&[], Some(Override::Pod)).map(|c| c.status),
            Some(true)
        );
    }
}
