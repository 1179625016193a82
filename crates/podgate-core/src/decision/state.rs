//! The per (pod, rule) state machine: evaluations in, verdict changes out.
//!
//! Time is passed in as milliseconds on any clock the caller chooses (the daemon uses the
//! wall clock, because `failOpenAfter` is measured from the pod's ContainersReady transition
//! time, which the API server reports on the wall clock).

use super::{Condition, Evaluation, Outcome, Reason, cap_message};
use crate::rules::{Mode, Policy};

/// What the state machine needs from a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Params<'a> {
    pub rule: &'a str,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// `for`: a failure must also have lasted this long before the gate turns False.
    pub for_ms: i64,
    pub on_no_data: Policy,
    pub on_error: Policy,
    /// `failOpenAfter` (0 = off).
    pub fail_open_after_ms: i64,
    /// `mode: startup`: once the verdict is True, the rule is done with the pod.
    pub startup: bool,
}

impl<'a> Params<'a> {
    pub fn of(rule: &'a crate::rules::Rule) -> Params<'a> {
        let ms = crate::time::millis;
        Params {
            rule: &rule.name,
            success_threshold: rule.success_threshold,
            failure_threshold: rule.failure_threshold,
            for_ms: ms(rule.for_duration),
            on_no_data: rule.on_no_data,
            on_error: rule.on_error,
            fail_open_after_ms: rule.fail_open_after.map_or(0, ms),
            startup: rule.mode == Mode::Startup,
        }
    }
}

/// What the state machine needs from the pod at the time of an evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodFacts {
    /// When the pod's ContainersReady condition last turned True, if it is True.
    pub containers_ready_since: Option<i64>,
}

/// The result of feeding one evaluation to the state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The verdict changed (status, reason or message): the gate must be recomputed.
    pub changed: bool,
    /// The status flipped (True <-> False, or was set for the first time).
    pub transition: bool,
    /// A True -> False flip was refused by the panic threshold.
    pub held_by_panic: bool,
}

/// The state of one rule on one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleState {
    verdict: Option<Condition>,
    pass_streak: u32,
    fail_streak: u32,
    failing_since: Option<i64>,
    ever_true: bool,
    ever_passed: bool,
    /// A startup rule has let the pod in: its verdict stays True and it evaluates no more.
    done: bool,
}

/// How one evaluation counts once the rule's policies are applied.
enum Counted {
    Pass(Reason),
    Fail(Reason),
    Keep,
    /// The data cannot exist yet: no verdict from it, whatever the policies say.
    Warming,
}

fn classify(p: &Params<'_>, outcome: Outcome) -> Counted {
    let by_policy = |policy: Policy, reason: Reason| match policy {
        Policy::Pass => Counted::Pass(reason),
        Policy::Fail => Counted::Fail(reason),
        Policy::Keep => Counted::Keep,
    };
    match outcome {
        Outcome::Pass => Counted::Pass(Reason::MetricsHealthy),
        Outcome::Fail => Counted::Fail(Reason::MetricsUnhealthy),
        Outcome::NoData => by_policy(p.on_no_data, Reason::NoData),
        Outcome::Error => by_policy(p.on_error, Reason::SourceError),
        Outcome::Warming => Counted::Warming,
    }
}

impl RuleState {
    /// The rule's current verdict; `None` until the first counted evaluation.
    pub fn verdict(&self) -> Option<&Condition> {
        self.verdict.as_ref()
    }

    /// Whether the rule's verdict is currently False (counts against the panic threshold).
    pub fn is_false(&self) -> bool {
        matches!(&self.verdict, Some(c) if !c.status)
    }

    pub fn pass_streak(&self) -> u32 {
        self.pass_streak
    }

    pub fn fail_streak(&self) -> u32 {
        self.fail_streak
    }

    /// Whether a `mode: startup` rule is done with the pod: it has set the gate True, keeps it
    /// True and takes no more evaluations.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Sets a verdict directly (e.g. restored from the pod's existing condition after a
    /// restart), so a healthy pod is not re-decided from nothing.
    pub fn restore(&mut self, verdict: Condition) {
        self.ever_true |= verdict.status;
        self.ever_passed |= verdict.status && verdict.reason == Reason::MetricsHealthy;
        self.verdict = Some(verdict);
    }

    /// [`RuleState::restore`], knowing when the verdict was set (`since`, ms: the condition's
    /// `lastTransitionTime`). A False verdict set after the fail-open deadline
    /// (ContainersReady + `failOpenAfter`) means the gate was True before it: the podgate that
    /// set it would otherwise have failed the gate open at the deadline. `failOpenAfter` is
    /// then spent, as it was for that podgate, and a restart or failover does not turn a
    /// failing pod True.
    pub fn restore_at(
        &mut self,
        p: &Params<'_>,
        verdict: Condition,
        since: Option<i64>,
        pod: PodFacts,
    ) {
        let deadline = pod
            .containers_ready_since
            .map(|ready| ready.saturating_add(p.fail_open_after_ms));
        let after_deadline = matches!((since, deadline), (Some(s), Some(d)) if s >= d);
        // A False verdict from data set before the deadline may also follow a True one (True
        // at 2 s, False at 5 s): the condition keeps no history to tell. The podgate that set it
        // would not fail that pod open, so a restart must not either: fail-open is spent. Only
        // a pod still warming (no verdict from data yet) keeps it.
        let from_data = verdict.reason != Reason::Warming;
        if !verdict.status && p.fail_open_after_ms > 0 && (after_deadline || from_data) {
            self.ever_true = true;
        }
        // A startup rule finding its gate True (set by an earlier podgate, or before a
        // restart) is done: that is all the pod's condition can tell, and all it needs to.
        self.done |= p.startup && verdict.status;
        self.restore(verdict);
    }

    /// Whether feeding `eval` would turn a True verdict False (before the panic threshold
    /// is asked). Cheap unless a flip is actually near.
    pub fn flip_pending(&self, p: &Params<'_>, eval: &Evaluation, pod: PodFacts, now: i64) -> bool {
        let is_true = matches!(&self.verdict, Some(c) if c.status);
        let counts_as_fail = matches!(classify(p, eval.outcome), Counted::Fail(_));
        if !is_true || !counts_as_fail || self.fail_streak.saturating_add(1) < p.failure_threshold {
            return false;
        }
        let mut probe = self.clone();
        probe.observe(p, eval, pod, now, &mut || true);
        probe.is_false()
    }

    /// Feeds one evaluation. `may_flip_false` is asked only when a True verdict is about to
    /// turn False; it returns false when the panic threshold forbids it.
    pub fn observe(
        &mut self,
        p: &Params<'_>,
        eval: &Evaluation,
        pod: PodFacts,
        now: i64,
        may_flip_false: &mut dyn FnMut() -> bool,
    ) -> Step {
        if self.done {
            // A startup rule that let the pod in never takes it out (e.g. a result that was
            // in flight when it finished).
            return Step {
                changed: false,
                transition: false,
                held_by_panic: false,
            };
        }
        let before = self.verdict.clone();
        let mut held_by_panic = false;
        let message = || cap_message(&format!("{} (rule {})", eval.detail, p.rule));

        match classify(p, eval.outcome) {
            Counted::Keep => {}
            // Counts nothing. A pod never decided is not Ready anyway: say what it waits for.
            // A decided one (e.g. found on the pod after a restart) keeps its verdict until
            // data speaks, so a restart neither takes healthy pods out nor lets failing ones in.
            Counted::Warming => match &self.verdict {
                None => self.set(false, Reason::Warming, message()),
                Some(c) if c.reason == Reason::Warming && c.message != message() => {
                    self.set(false, Reason::Warming, message());
                }
                Some(_) => {}
            },
            Counted::Pass(reason) => {
                self.pass_streak = self.pass_streak.saturating_add(1);
                self.fail_streak = 0;
                self.failing_since = None;
                if reason == Reason::MetricsHealthy {
                    self.ever_passed = true;
                }
                match &self.verdict {
                    // Already True: only a change of reason is news (e.g. NoData -> healthy,
                    // or leaving PanicThreshold). Values alone never rewrite the message, so a
                    // steady state costs no API writes.
                    Some(c) if c.status => {
                        if c.reason != reason {
                            self.set(true, reason, message());
                        }
                    }
                    _ => {
                        if self.pass_streak >= p.success_threshold {
                            self.set(true, reason, message());
                        }
                    }
                }
            }
            Counted::Fail(reason) => {
                self.fail_streak = self.fail_streak.saturating_add(1);
                self.pass_streak = 0;
                let since = *self.failing_since.get_or_insert(now);
                match &self.verdict {
                    // Never decided: the pod is not Ready anyway, so say why at once.
                    None => self.set(false, reason, message()),
                    Some(c) if !c.status => {
                        if c.reason != reason {
                            self.set(false, reason, message());
                        }
                    }
                    // Failed open and never passed since: stay open until a first pass.
                    Some(c) if c.reason == Reason::FailOpenTimeout && !self.ever_passed => {}
                    Some(c) => {
                        let lasted = now.saturating_sub(since) >= p.for_ms;
                        if self.fail_streak >= p.failure_threshold && lasted {
                            if may_flip_false() {
                                self.set(false, reason, message());
                            } else {
                                held_by_panic = true;
                                if c.reason != Reason::PanicThreshold {
                                    let held = format!(
                                        "held True by maxUnavailable: {} (rule {})",
                                        eval.detail, p.rule
                                    );
                                    self.set(true, Reason::PanicThreshold, cap_message(&held));
                                }
                            }
                        }
                    }
                }
            }
        }

        self.fail_open(p, eval, pod, now);
        self.done = p.startup && self.verdict.as_ref().is_some_and(|c| c.status);

        let changed = self.verdict != before;
        let transition = match (&before, &self.verdict) {
            (None, Some(_)) => true,
            (Some(a), Some(b)) => a.status != b.status,
            _ => false,
        };
        Step {
            changed,
            transition,
            held_by_panic,
        }
    }

    /// `failOpenAfter`: a gate never set True this long after ContainersReady turns True.
    fn fail_open(&mut self, p: &Params<'_>, eval: &Evaluation, pod: PodFacts, now: i64) {
        if p.fail_open_after_ms <= 0 || self.ever_true {
            return;
        }
        let Some(ready_since) = pod.containers_ready_since else {
            return;
        };
        if now.saturating_sub(ready_since) >= p.fail_open_after_ms {
            let msg = format!(
                "not passing {}s after ContainersReady, failing open; last: {} (rule {})",
                p.fail_open_after_ms / 1000,
                eval.detail,
                p.rule
            );
            self.set(true, Reason::FailOpenTimeout, cap_message(&msg));
        }
    }

    fn set(&mut self, status: bool, reason: Reason, message: String) {
        self.ever_true |= status;
        self.verdict = Some(Condition {
            status,
            reason,
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params<'static> {
        Params {
            rule: "r",
            success_threshold: 1,
            failure_threshold: 3,
            for_ms: 0,
            on_no_data: Policy::Fail,
            on_error: Policy::Keep,
            fail_open_after_ms: 0,
            startup: false,
        }
    }

    fn ev(outcome: Outcome, detail: &str) -> Evaluation {
        Evaluation {
            outcome,
            detail: detail.into(),
        }
    }

    fn feed(s: &mut RuleState, p: &Params<'_>, outcome: Outcome, now: i64) -> Step {
        s.observe(
            p,
            &ev(outcome, "x=1 < 2"),
            PodFacts::default(),
            now,
            &mut || true,
        )
    }

    fn status(s: &RuleState) -> Option<(bool, Reason)> {
        s.verdict().map(|c| (c.status, c.reason))
    }

    #[test]
    fn first_pass_sets_true_with_threshold_one() {
        let p = params();
        let mut s = RuleState::default();
        let step = feed(&mut s, &p, Outcome::Pass, 0);
        assert!(step.changed && step.transition);
        assert_eq!(status(&s), Some((true, Reason::MetricsHealthy)));
        assert_eq!(
            s.verdict().map(|c| c.message.as_str()),
            Some("x=1 < 2 (rule r)")
        );
    }

    #[test]
    fn success_threshold_counts_consecutive_passes() {
        let p = Params {
            success_threshold: 3,
            ..params()
        };
        let mut s = RuleState::default();
        feed(&mut s, &p, Outcome::Fail, 0);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
        feed(&mut s, &p, Outcome::Pass, 1);
        feed(&mut s, &p, Outcome::Pass, 2);
        feed(&mut s, &p, Outcome::Fail, 3); // breaks the streak
        feed(&mut s, &p, Outcome::Pass, 4);
        feed(&mut s, &p, Outcome::Pass, 5);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
        let step = feed(&mut s, &p, Outcome::Pass, 6);
        assert!(step.transition);
        assert_eq!(status(&s), Some((true, Reason::MetricsHealthy)));
    }

    #[test]
    fn failure_threshold_flips_after_consecutive_failures() {
        let p = params();
        let mut s = RuleState::default();
        feed(&mut s, &p, Outcome::Pass, 0);
        assert!(!feed(&mut s, &p, Outcome::Fail, 1).changed);
        assert!(!feed(&mut s, &p, Outcome::Fail, 2).changed);
        let step = feed(&mut s, &p, Outcome::Fail, 3);
        assert!(step.changed && step.transition);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
    }

    #[test]
    fn a_pass_resets_the_failure_streak() {
        let p = params();
        let mut s = RuleState::default();
        feed(&mut s, &p, Outcome::Pass, 0);
        feed(&mut s, &p, Outcome::Fail, 1);
        feed(&mut s, &p, Outcome::Fail, 2);
        feed(&mut s, &p, Outcome::Pass, 3);
        feed(&mut s, &p, Outcome::Fail, 4);
        feed(&mut s, &p, Outcome::Fail, 5);
        assert_eq!(status(&s), Some((true, Reason::MetricsHealthy)));
        assert_eq!(s.fail_streak(), 2);
    }

    #[test]
    fn for_requires_the_failure_to_last() {
        let p = Params {
            failure_threshold: 1,
            for_ms: 30_000,
            ..params()
        };
        let mut s = RuleState::default();
        feed(&mut s, &p, Outcome::Pass, 0);
        feed(&mut s, &p, Outcome::Fail, 10_000);
        feed(&mut s, &p, Outcome::Fail, 20_000);
        feed(&mut s, &p, Outcome::Fail, 39_999);
        assert_eq!(status(&s), Some((true, Reason::MetricsHealthy)));
        feed(&mut s, &p, Outcome::Fail, 40_000);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
    }

    #[test]
    fn steady_state_changes_nothing_even_when_values_move() {
        let p = params();
        let mut s = RuleState::default();
        feed(&mut s, &p, Outcome::Pass, 0);
        for (i, d) in ["x=1 < 2", "x=1.5 < 2", "x=0.2 < 2"].iter().enumerate() {
            let step = s.observe(
                &p,
                &ev(Outcome::Pass, d),
                PodFacts::default(),
                i as i64 + 1,
                &mut || true,
            );
            assert!(!step.changed, "values alone must not rewrite the condition");
        }
    }

    #[test]
    fn no_data_policies() {
        // fail: counts as a failure with reason NoData.
        let mut s = RuleState::default();
        let p = Params {
            failure_threshold: 1,
            ..params()
        };
        feed(&mut s, &p, Outcome::Pass, 0);
        feed(&mut s, &p, Outcome::NoData, 1);
        assert_eq!(status(&s), Some((false, Reason::NoData)));

        // pass: counts as a pass, reason NoData, then a real pass restores MetricsHealthy.
        let p = Params {
            on_no_data: Policy::Pass,
            ..params()
        };
        let mut s = RuleState::default();
        feed(&mut s, &p, Outcome::NoData, 0);
        assert_eq!(status(&s), Some((true, Reason::NoData)));
        assert!(feed(&mut s, &p, Outcome::Pass, 1).changed);
        assert_eq!(status(&s), Some((true, Reason::MetricsHealthy)));

        // keep: holds the condition and counts nothing.
        let p = Params {
            on_no_data: Policy::Keep,
            failure_threshold: 2,
            ..params()
        };
        let mut s = RuleState::default();
        feed(&mut s, &p, Outcome::Pass, 0);
        feed(&mut s, &p, Outcome::Fail, 1);
        for t in 2..10 {
            assert!(!feed(&mut s, &p, Outcome::NoData, t).changed);
        }
        assert_eq!(s.fail_streak(), 1, "keep must not reset or count");
        feed(&mut s, &p, Outcome::Fail, 10);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
    }

    #[test]
    fn error_policies() {
        let mut s = RuleState::default();
        let p = params(); // onError: keep
        feed(&mut s, &p, Outcome::Pass, 0);
        for t in 1..20 {
            assert!(!feed(&mut s, &p, Outcome::Error, t).changed);
        }
        assert_eq!(status(&s), Some((true, Reason::MetricsHealthy)));
        // A keep on a pod never decided leaves it undecided.
        let mut fresh = RuleState::default();
        feed(&mut fresh, &p, Outcome::Error, 0);
        assert_eq!(status(&fresh), None);

        let p = Params {
            on_error: Policy::Fail,
            failure_threshold: 2,
            ..params()
        };
        feed(&mut s, &p, Outcome::Error, 30);
        assert_eq!(status(&s), Some((true, Reason::MetricsHealthy)));
        feed(&mut s, &p, Outcome::Error, 31);
        assert_eq!(status(&s), Some((false, Reason::SourceError)));
        // Still failing, now on metrics: the reason changes without a status transition.
        let step = feed(&mut s, &p, Outcome::Fail, 32);
        assert!(step.changed && !step.transition);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
    }

    #[test]
    fn panic_threshold_holds_true() {
        let p = Params {
            failure_threshold: 1,
            ..params()
        };
        let mut s = RuleState::default();
        feed(&mut s, &p, Outcome::Pass, 0);
        let mut asked = 0;
        let step = s.observe(
            &p,
            &ev(Outcome::Fail, "x=5 >= 2"),
            PodFacts::default(),
            1,
            &mut || {
                asked += 1;
                false
            },
        );
        assert_eq!(asked, 1);
        assert!(step.held_by_panic && step.changed && !step.transition);
        assert_eq!(status(&s), Some((true, Reason::PanicThreshold)));
        assert!(!s.is_false());
        // Held again: counted, but the condition does not change.
        let step = s.observe(
            &p,
            &ev(Outcome::Fail, "x=6 >= 2"),
            PodFacts::default(),
            2,
            &mut || false,
        );
        assert!(step.held_by_panic && !step.changed);
        // Room again: it flips.
        let step = feed(&mut s, &p, Outcome::Fail, 3);
        assert!(step.transition && !step.held_by_panic);
        assert!(s.is_false());
    }

    #[test]
    fn fail_open_after_timeout_then_normal_after_first_pass() {
        let p = Params {
            fail_open_after_ms: 60_000,
            failure_threshold: 1,
            ..params()
        };
        let pod = PodFacts {
            containers_ready_since: Some(1_000),
        };
        let mut s = RuleState::default();
        let bad = ev(Outcome::Fail, "x=5 >= 2");
        s.observe(&p, &bad, pod, 30_000, &mut || true);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
        s.observe(&p, &bad, pod, 60_999, &mut || true);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
        let step = s.observe(&p, &bad, pod, 61_000, &mut || true);
        assert!(step.transition);
        assert_eq!(status(&s), Some((true, Reason::FailOpenTimeout)));
        // Failures do not close it again before a first pass ...
        s.observe(&p, &bad, pod, 70_000, &mut || true);
        assert_eq!(status(&s), Some((true, Reason::FailOpenTimeout)));
        // ... after which the rule is enforced as usual.
        feed(&mut s, &p, Outcome::Pass, 80_000);
        assert_eq!(status(&s), Some((true, Reason::MetricsHealthy)));
        s.observe(&p, &bad, pod, 90_000, &mut || true);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
        // Once True, fail-open never fires again.
        s.observe(&p, &bad, pod, 500_000, &mut || true);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
    }

    #[test]
    fn fail_open_needs_containers_ready() {
        let p = Params {
            fail_open_after_ms: 1,
            ..params()
        };
        let mut s = RuleState::default();
        s.observe(
            &p,
            &ev(Outcome::Fail, "d"),
            PodFacts::default(),
            1_000_000,
            &mut || true,
        );
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
    }

    #[test]
    fn a_false_gate_set_after_the_fail_open_deadline_is_not_failed_open_again() {
        let p = Params {
            fail_open_after_ms: 60_000,
            failure_threshold: 1,
            ..params()
        };
        let pod = PodFacts {
            containers_ready_since: Some(1_000),
        };
        let unhealthy = Condition {
            status: false,
            reason: Reason::MetricsUnhealthy,
            message: "x=5 >= 2 (rule r)".into(),
        };
        let bad = ev(Outcome::Fail, "x=5 >= 2");
        // Set False at 200s, long after the deadline (61s): it was True before.
        let mut s = RuleState::default();
        s.restore_at(&p, unhealthy.clone(), Some(200_000), pod);
        let step = s.observe(&p, &bad, pod, 500_000, &mut || true);
        assert!(!step.changed);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));

        // Set False at 5s, before the deadline: it may have been True from 2s to 5s (the
        // condition cannot tell), and then the podgate that set it would never fail it open.
        // A restart does not either: a failing pod stays out.
        for since in [Some(5_000), None] {
            let mut s = RuleState::default();
            s.restore_at(&p, unhealthy.clone(), since, pod);
            s.observe(&p, &bad, pod, 30_000, &mut || true);
            s.observe(&p, &bad, pod, 61_000, &mut || true);
            assert_eq!(
                status(&s),
                Some((false, Reason::MetricsUnhealthy)),
                "since {since:?}"
            );
        }

        // Still warming when podgate restarted (no verdict from data yet): it never was True,
        // so it fails open at the deadline as it would have without the restart.
        let warming = Condition {
            status: false,
            reason: Reason::Warming,
            message: "warming up until … (rule r)".into(),
        };
        let mut s = RuleState::default();
        s.restore_at(&p, warming, Some(2_000), pod);
        s.observe(&p, &bad, pod, 30_000, &mut || true);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
        s.observe(&p, &bad, pod, 61_000, &mut || true);
        assert_eq!(status(&s), Some((true, Reason::FailOpenTimeout)));
    }

    #[test]
    fn a_startup_rule_is_done_once_true_and_never_turns_false() {
        let p = Params {
            startup: true,
            failure_threshold: 1,
            ..params()
        };
        let mut s = RuleState::default();
        // Failures and warming before the first True count as usual.
        feed(&mut s, &p, Outcome::Warming, 0);
        feed(&mut s, &p, Outcome::Fail, 1);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
        assert!(!s.done());
        let step = feed(&mut s, &p, Outcome::Pass, 2);
        assert!(step.transition);
        assert!(s.done());
        for (t, o) in [
            (3, Outcome::Fail),
            (4, Outcome::NoData),
            (5, Outcome::Error),
        ] {
            let step = feed(&mut s, &p, o, t);
            assert!(!step.changed, "{o:?} after the pod was let in");
        }
        assert_eq!(status(&s), Some((true, Reason::MetricsHealthy)));
        // The same rule in continuous mode takes the pod out.
        let c = Params {
            startup: false,
            ..p.clone()
        };
        let mut s = RuleState::default();
        feed(&mut s, &c, Outcome::Pass, 0);
        feed(&mut s, &c, Outcome::Fail, 1);
        assert_eq!(status(&s), Some((false, Reason::MetricsUnhealthy)));
        assert!(!s.done());
    }

    #[test]
    fn a_startup_rule_is_done_after_a_restart_that_finds_the_gate_true() {
        let p = Params {
            startup: true,
            failure_threshold: 1,
            ..params()
        };
        let healthy = Condition {
            status: true,
            reason: Reason::MetricsHealthy,
            message: "errors=0 < 1 (rule r)".into(),
        };
        let mut s = RuleState::default();
        s.restore_at(&p, healthy.clone(), Some(0), PodFacts::default());
        assert!(s.done());
        assert!(!feed(&mut s, &p, Outcome::Fail, 10).changed);
        assert_eq!(s.verdict(), Some(&healthy));
        // A False gate is not done: the rule has yet to let the pod in.
        let mut s = RuleState::default();
        s.restore_at(
            &p,
            Condition {
                status: false,
                reason: Reason::MetricsUnhealthy,
                message: "x".into(),
            },
            Some(0),
            PodFacts::default(),
        );
        assert!(!s.done());
        feed(&mut s, &p, Outcome::Pass, 10);
        assert!(s.done());
        // Fail-open lets the pod in too, for good.
        let p = Params {
            fail_open_after_ms: 1_000,
            ..p
        };
        let mut s = RuleState::default();
        let pod = PodFacts {
            containers_ready_since: Some(0),
        };
        s.observe(&p, &ev(Outcome::Fail, "bad"), pod, 1_000, &mut || true);
        assert_eq!(status(&s), Some((true, Reason::FailOpenTimeout)));
        assert!(s.done());
    }

    #[test]
    fn restore_keeps_a_healthy_pod_true() {
        let p = params();
        let mut s = RuleState::default();
        s.restore(Condition {
            status: true,
            reason: Reason::MetricsHealthy,
            message: "old".into(),
        });
        assert!(!feed(&mut s, &p, Outcome::Pass, 0).changed);
        assert!(!feed(&mut s, &p, Outcome::Fail, 1).changed);
    }
}
