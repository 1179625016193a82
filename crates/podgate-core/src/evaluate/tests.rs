//! The warm-up: no verdict from data that cannot exist yet. Time is passed in; every test
//! runs a rule through `evaluate_rule` and the decision engine as the daemon does.

use std::collections::BTreeMap;

use super::*;
use crate::decision::engine::{Engine, PodInfo, PodKey};
use crate::decision::{Condition, Reason};
use crate::query::{Interest, StoreLimits};
use crate::rules::{RuleSet, load_str};

const GATE: &str = "podgate.dev/http-healthy";

/// One scraped sample: name, labels, value.
type Scraped<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);
/// When the pod's ContainersReady turned True in these tests.
const READY_AT: i64 = 1_000_000;

/// The shape of the README's rule, with the setting that used to let a bad version in:
/// `onNoData: pass` and an `isnan(errors)` guard.
fn scrape_rules(on_no_data: &str) -> RuleSet {
    let yaml = format!(
        r#"
rules:
  - name: http-errors
    conditionType: {GATE}
    interval: 2s
    onNoData: {on_no_data}
    failOpenAfter: 0s
    vars:
      errors:   {{scrape: 'sum(rate(http_requests_total{{code=~"5.."}}[10s]))'}}
      requests: {{scrape: 'sum(rate(http_requests_total[10s]))'}}
    expr: 'isnan(errors) || errors / requests < 0.01'
"#
    );
    load_str("warmup.yaml", &yaml).unwrap_or_else(|e| panic!("{e:?}"))
}

fn promql_rules() -> RuleSet {
    let yaml = format!(
        r#"
rules:
  - name: batched-errors
    conditionType: {GATE}
    interval: 2s
    onNoData: pass
    vars:
      ratio: {{promql: 'sum by (namespace, pod) (rate(errors_total[30s])) / sum by (namespace, pod) (rate(requests_total[30s]))'}}
    expr: 'ratio < 0.01'
"#
    );
    load_str("promql.yaml", &yaml).unwrap_or_else(|e| panic!("{e:?}"))
}

/// One pod under one rule set: its series store, the engine, and the gate as last decided.
struct Pod {
    set: RuleSet,
    engine: Engine,
    key: PodKey,
    store: SeriesStore,
}

impl Pod {
    fn new(set: RuleSet, existing: Option<Condition>) -> Pod {
        let key = PodKey::new("shop", "checkout-new");
        let mut engine = Engine::new(&set);
        let mut conditions = BTreeMap::new();
        if let Some(c) = existing {
            conditions.insert(GATE.to_string(), c);
        }
        engine.upsert_pod(
            key.clone(),
            PodInfo {
                uid: "uid-1".into(),
                labels: BTreeMap::new(),
                gates: vec![GATE.to_string()],
                containers_ready_since: Some(READY_AT),
                override_by: None,
                conditions,
                condition_since: BTreeMap::new(),
            },
        );
        let store = SeriesStore::new(
            Interest::new(set.rules.iter().flat_map(|r| r.scrape_queries())),
            StoreLimits::default(),
        );
        Pod {
            set,
            engine,
            key,
            store,
        }
    }

    /// A scrape at `at` of counters `ok` (200s) and `err` (500s; None: no such series), then
    /// an evaluation of the rule.
    fn scrape(&mut self, at: i64, ok: f64, err: Option<f64>) -> RuleEvaluation {
        let mut samples: Vec<Scraped<'_>> = vec![("http_requests_total", &[("code", "200")], ok)];
        if let Some(e) = err {
            samples.push(("http_requests_total", &[("code", "500")], e));
        }
        self.store
            .ingest_samples(at, samples)
            .unwrap_or_else(|e| panic!("{e}"));
        self.evaluate(at, &mut |_| VarResult::NoData("not used".into()))
    }

    fn evaluate(&mut self, at: i64, promql: &mut dyn FnMut(&Var) -> VarResult) -> RuleEvaluation {
        let rule = self.set.rules[0].clone();
        let result = evaluate_rule(
            &rule,
            ScrapeInput::Store(&self.store),
            promql,
            &crate::peers::NoPeers("a single pod"),
            Some(READY_AT),
            at,
        );
        self.engine
            .observe(&self.key, &rule.name, &result.evaluation, at);
        result
    }

    fn gate(&self) -> Option<(bool, Reason, String)> {
        self.engine
            .gate(&self.key, GATE)
            .map(|c| (c.status, c.reason, c.message.clone()))
    }
}

fn gate_is(pod: &Pod, status: bool, reason: Reason) -> String {
    match pod.gate() {
        Some((s, r, m)) if s == status && r == reason => m,
        other => panic!("expected {status}/{reason}, got {other:?}"),
    }
}

#[test]
fn first_scrape_of_a_bad_version_is_warming_not_a_pass() {
    let mut pod = Pod::new(scrape_rules("pass"), None);
    let first = pod.scrape(READY_AT, 70.0, Some(30.0));
    assert_eq!(first.evaluation.outcome, Outcome::Warming);
    let message = gate_is(&pod, false, Reason::Warming);
    // What it waits for and until when at the latest: the first scrape plus the 10 s window.
    let until = format_utc(READY_AT + 10_000);
    assert!(message.contains(&format!("until {until}")), "{message}");
    assert!(message.contains("not enough history for rate"), "{message}");
    assert!(message.contains("errors, requests"), "{message}");
}

/// One scrape variable `x` with `query`, failing when it is 1 or more.
fn one_var_rules(query: &str) -> RuleSet {
    let yaml = r#"
rules:
  - name: pasted
    conditionType: GATE
    interval: 2s
    onNoData: pass
    failOpenAfter: 0s
    vars:
      x: {scrape: 'QUERY'}
    expr: 'x < 1'
"#
    .replace("GATE", GATE)
    .replace("QUERY", query);
    load_str("pasted.yaml", &yaml).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn a_pasted_ratio_and_an_offset_warm_up_until_their_longest_window() {
    for query in [
        "sum(rate(http_requests_total{code=~\"5..\"}[10s])) / sum(rate(http_requests_total[10s]))",
        "sum(http_requests_total) - sum(http_requests_total offset 10s)",
    ] {
        let mut pod = Pod::new(one_var_rules(query), None);
        let first = pod.scrape(READY_AT, 70.0, Some(30.0));
        assert_eq!(first.evaluation.outcome, Outcome::Warming, "{query}");
        let message = gate_is(&pod, false, Reason::Warming);
        let until = format_utc(READY_AT + 10_000);
        assert!(
            message.contains(&format!("until {until}")),
            "{query}: {message}"
        );
        // Once the window can hold data, the data decides.
        let later = pod.scrape(READY_AT + 10_000, 140.0, Some(60.0));
        assert_ne!(later.evaluation.outcome, Outcome::Warming, "{query}");
    }
}

#[test]
fn second_scrape_decides_from_data() {
    let mut bad = Pod::new(scrape_rules("pass"), None);
    bad.scrape(READY_AT, 70.0, Some(30.0));
    let second = bad.scrape(READY_AT + 2_000, 140.0, Some(60.0));
    assert_eq!(second.evaluation.outcome, Outcome::Fail);
    let message = gate_is(&bad, false, Reason::MetricsUnhealthy);
    assert!(message.contains("errors/requests=0.3"), "{message}");

    let mut good = Pod::new(scrape_rules("pass"), None);
    good.scrape(READY_AT, 100.0, Some(0.0));
    good.scrape(READY_AT + 2_000, 200.0, Some(0.0));
    gate_is(&good, true, Reason::MetricsHealthy);
}

#[test]
fn isnan_does_not_turn_warming_into_a_pass() {
    // No 5xx series at all: `errors` is plain no data (isnan() accepts it), but `requests`
    // cannot have a rate yet.
    let mut pod = Pod::new(scrape_rules("pass"), None);
    pod.scrape(READY_AT, 100.0, None);
    gate_is(&pod, false, Reason::Warming);
    // One interval later the rate exists and the absent 5xx series is what isnan() is for.
    pod.scrape(READY_AT + 2_000, 200.0, None);
    gate_is(&pod, true, Reason::MetricsHealthy);
}

#[test]
fn a_series_absent_after_warm_up_is_no_data_under_the_policy() {
    // The whole counter disappears after a healthy start: onNoData decides, as documented.
    let mut pod = Pod::new(scrape_rules("fail"), None);
    pod.scrape(READY_AT, 100.0, None);
    pod.scrape(READY_AT + 2_000, 200.0, None);
    gate_is(&pod, true, Reason::MetricsHealthy);
    let t = READY_AT + 12_000;
    let samples: Vec<Scraped<'_>> = vec![("other_metric", &[], 1.0)];
    pod.store
        .ingest_samples(t, samples)
        .unwrap_or_else(|e| panic!("{e}"));
    for at in [t, t + 2_000, t + 4_000] {
        let r = pod.evaluate(at, &mut |_| VarResult::NoData("not used".into()));
        assert_eq!(r.evaluation.outcome, Outcome::NoData, "{:?}", r.evaluation);
    }
    // failureThreshold 3 (the default): the third no-data evaluation takes the pod out.
    gate_is(&pod, false, Reason::NoData);
}

#[test]
fn a_series_that_appears_after_warm_up_is_not_warming() {
    // The window began long before the series did: its missing history is not the pod's
    // youth, so the policy decides (here: errors is isnan()-guarded, so the pod passes).
    let mut pod = Pod::new(scrape_rules("fail"), None);
    pod.scrape(READY_AT, 100.0, None);
    pod.scrape(READY_AT + 20_000, 200.0, None);
    let r = pod.scrape(READY_AT + 22_000, 300.0, Some(1.0));
    assert_eq!(r.evaluation.outcome, Outcome::Pass, "{:?}", r.evaluation);
    assert!(
        matches!(&r.vars[0].result, VarResult::NoData(why) if why.contains("not enough history")),
        "{:?}",
        r.vars
    );
}

#[test]
fn a_counter_reset_during_warm_up_is_data_not_a_pass() {
    // The container restarted between the first two scrapes: the counters start over. As in
    // Prometheus, the drop is a reset and the second value is the increase.
    let mut pod = Pod::new(scrape_rules("pass"), None);
    pod.scrape(READY_AT, 1_000.0, Some(10.0));
    gate_is(&pod, false, Reason::Warming);
    let r = pod.scrape(READY_AT + 2_000, 7.0, Some(3.0));
    assert_eq!(r.evaluation.outcome, Outcome::Fail, "{:?}", r.evaluation);
    gate_is(&pod, false, Reason::MetricsUnhealthy);
}

#[test]
fn after_a_restart_a_true_gate_stays_true_while_warming() {
    let healthy = Condition {
        status: true,
        reason: Reason::MetricsHealthy,
        message: "errors/requests=0 < 0.01 (rule http-errors)".into(),
    };
    let mut pod = Pod::new(scrape_rules("fail"), Some(healthy.clone()));
    let r = pod.scrape(READY_AT + 3_600_000, 100.0, Some(0.0));
    assert_eq!(r.evaluation.outcome, Outcome::Warming);
    assert_eq!(pod.engine.gate(&pod.key, GATE), Some(&healthy));
    // Data decides once it exists: the pod turned bad while podgate was away.
    pod.scrape(READY_AT + 3_602_000, 170.0, Some(30.0));
    pod.scrape(READY_AT + 3_604_000, 240.0, Some(60.0));
    pod.scrape(READY_AT + 3_606_000, 310.0, Some(90.0));
    gate_is(&pod, false, Reason::MetricsUnhealthy);
}

#[test]
fn after_a_restart_a_false_gate_stays_false_until_data_says_otherwise() {
    let failing = Condition {
        status: false,
        reason: Reason::MetricsUnhealthy,
        message: "errors/requests=0.3 >= 0.01 (rule http-errors)".into(),
    };
    // onNoData: pass, the setting that would have let it in on "no data yet".
    let mut pod = Pod::new(scrape_rules("pass"), Some(failing.clone()));
    pod.scrape(READY_AT + 3_600_000, 100.0, None);
    assert_eq!(pod.engine.gate(&pod.key, GATE), Some(&failing));
    pod.scrape(READY_AT + 3_602_000, 200.0, None);
    gate_is(&pod, true, Reason::MetricsHealthy);
}

#[test]
fn promql_no_data_is_warming_while_the_pod_is_younger_than_range_plus_interval() {
    let mut pod = Pod::new(promql_rules(), None);
    let mut no_series = |_: &Var| VarResult::NoData("no series for this pod".into());
    // Range 30 s plus interval 2 s after ContainersReady.
    for at in [READY_AT, READY_AT + 10_000, READY_AT + 31_999] {
        let r = pod.evaluate(at, &mut no_series);
        assert_eq!(r.evaluation.outcome, Outcome::Warming, "at {at}");
    }
    let message = gate_is(&pod, false, Reason::Warming);
    assert!(
        message.contains(&format_utc(READY_AT + 32_000)),
        "{message}"
    );
    // A value during warm-up is data: a failing one decides at once.
    let r = pod.evaluate(READY_AT + 4_000, &mut |_| VarResult::Value(0.3));
    assert_eq!(r.evaluation.outcome, Outcome::Fail);
    gate_is(&pod, false, Reason::MetricsUnhealthy);

    // After warm-up a series that never appears is "no data", and onNoData: pass applies.
    let mut late = Pod::new(promql_rules(), None);
    let r = late.evaluate(READY_AT + 32_000, &mut no_series);
    assert_eq!(r.evaluation.outcome, Outcome::NoData);
    gate_is(&late, true, Reason::NoData);
}

#[test]
fn format_utc_renders_rfc3339() {
    assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
    assert_eq!(format_utc(1_796_460_062_000), "2026-12-05T08:41:02Z");
    assert_eq!(format_utc(951_825_600_000), "2000-02-29T12:00:00Z");
}
