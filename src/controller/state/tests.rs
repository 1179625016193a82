//! The controller loop's state, driven input by input with no task, channel or API server:
//! what a pod event, an evaluation result, a reload and a deletion change, and what they ask
//! of the loop.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::decision::engine::PodInfo;
use crate::evaluate::{RuleEvaluation, ScrapeInput, VarResult, evaluate_rule};
use crate::peers::{NoPeers, PodOwner};
use crate::query::{Interest, SeriesStore, StoreLimits};
use crate::rules::{Rule, load_str};

const GATE: &str = "podgate.dev/queue-ok";
const READY_AT: i64 = 1_000_000;

/// Rule `queue` on GATE (`queue < limit`, decided by one evaluation), and rule `steady`
/// comparing the pod with its peers.
fn rules(limit: u32) -> RuleSet {
    let yaml = format!(
        r#"
rules:
  - name: queue
    conditionType: {GATE}
    interval: 1s
    timeout: 500ms
    failureThreshold: 1
    vars:
      queue: {{scrape: 'max(work_queue_depth)'}}
      peers_queue: {{peers: {{var: queue, aggregate: median}}}}
    expr: 'queue < {limit} && (isnan(peers_queue) || queue <= peers_queue * 100)'
"#
    );
    load_str("queue.yaml", &yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn state(set: RuleSet) -> LoopState {
    let (metrics, _registry) = Metrics::new();
    LoopState::new(
        set,
        Arc::new(SharedPeers::default()),
        metrics,
        Arc::new(Health::default()),
        0.0,
    )
}

fn key(name: &str) -> PodKey {
    PodKey::new("shop", name)
}

/// A Running pod of Deployment `web` with GATE and ContainersReady True since READY_AT.
fn running(name: &str, uid: &str) -> PodSnapshot {
    PodSnapshot {
        key: key(name),
        info: PodInfo {
            uid: uid.to_string(),
            labels: BTreeMap::new(),
            gates: vec![GATE.to_string()],
            containers_ready_since: Some(READY_AT),
            override_by: None,
            conditions: BTreeMap::new(),
            condition_since: BTreeMap::new(),
        },
        phase: Some("Running".to_string()),
        pod_ip: "127.0.0.1".parse().ok(),
        node_name: Some("node-a".to_string()),
        deleting: false,
        prometheus_port: Some("9100".to_string()),
        prometheus_path: None,
        container_ports: Vec::new(),
        owner: Some(PodOwner {
            kind: "Deployment".to_string(),
            name: "web".to_string(),
        }),
    }
}

/// The rule's evaluation of a pod whose queue is `depth` at `at`.
fn evaluation(rule: &Rule, depth: f64, at: i64) -> RuleEvaluation {
    let mut store = SeriesStore::new(Interest::new(rule.scrape_queries()), StoreLimits::default());
    let labels: &[(&str, &str)] = &[];
    store
        .ingest_samples(at, [("work_queue_depth", labels, depth)])
        .unwrap_or_else(|e| panic!("{e}"));
    evaluate_rule(
        rule,
        ScrapeInput::Store(&store),
        &mut |v| VarResult::Error(format!("{} is not a promql: variable", v.name)),
        &NoPeers("peers are recorded, not read, in these tests"),
        Some(READY_AT),
        at,
    )
}

fn result(snap: &PodSnapshot, rule: &Arc<Rule>, depth: f64, at: i64) -> EvalMsg {
    EvalMsg {
        key: snap.key.clone(),
        uid: snap.info.uid.clone(),
        rule: rule.clone(),
        result: evaluation(rule, depth, at),
        at_ms: at,
        took: Duration::from_millis(3),
    }
}

fn rule_named(s: &LoopState, name: &str) -> Arc<Rule> {
    s.rules()
        .rules
        .iter()
        .find(|r| r.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("no rule {name}"))
}

/// The statuses the updates set on GATE, in order.
fn statuses(updates: &[GateUpdate]) -> Vec<&str> {
    updates
        .iter()
        .filter(|u| u.condition_type == GATE)
        .map(|u| u.condition.status_str())
        .collect()
}

fn started(fx: &Effects) -> Vec<Arc<PodConfig>> {
    fx.tasks
        .iter()
        .filter_map(|t| match t {
            TaskChange::Start(cfg) => Some(cfg.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_evaluable_pod_gets_a_task_that_evaluates_its_rules() {
    let mut s = state(rules(100));
    let fx = s.on_pod_event(PodEvent::Upsert(running("web-1", "uid-1")));
    let cfgs = started(&fx);
    assert_eq!(cfgs.len(), 1, "{:?}", fx.tasks);
    let cfg = &cfgs[0];
    assert_eq!(cfg.key, key("web-1"));
    assert_eq!(cfg.uid, "uid-1");
    assert_eq!(cfg.ready_since, READY_AT);
    assert_eq!(cfg.target.port_annotation.as_deref(), Some("9100"));
    let names: Vec<&str> = cfg.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["queue"]);
    assert!(
        cfg.spread.is_empty(),
        "an undecided rule is evaluated at once"
    );

    // The same pod again changes nothing; a new IP reconfigures the running task.
    let fx = s.on_pod_event(PodEvent::Upsert(running("web-1", "uid-1")));
    assert!(fx.tasks.is_empty(), "{:?}", fx.tasks);
    let mut moved = running("web-1", "uid-1");
    moved.pod_ip = "127.0.0.2".parse().ok();
    let fx = s.on_pod_event(PodEvent::Upsert(moved));
    assert!(
        matches!(fx.tasks.as_slice(), [TaskChange::Reconfigure(c)] if c.target.ip.to_string() == "127.0.0.2"),
        "{:?}",
        fx.tasks
    );
}

#[test]
fn a_pod_that_is_not_evaluable_gets_no_task_and_loses_the_one_it_had() {
    let mut s = state(rules(100));
    let mut pending = running("web-1", "uid-1");
    pending.phase = Some("Pending".to_string());
    pending.info.containers_ready_since = None;
    let fx = s.on_pod_event(PodEvent::Upsert(pending.clone()));
    assert!(fx.tasks.is_empty(), "{:?}", fx.tasks);

    assert_eq!(
        started(&s.on_pod_event(PodEvent::Upsert(running("web-1", "uid-1")))).len(),
        1
    );
    let fx = s.on_pod_event(PodEvent::Upsert(pending));
    assert!(
        matches!(fx.tasks.as_slice(), [TaskChange::Stop(k)] if *k == key("web-1")),
        "{:?}",
        fx.tasks
    );
}

#[test]
fn a_pod_recreated_under_its_name_gets_a_new_task() {
    let mut s = state(rules(100));
    let _ = s.on_pod_event(PodEvent::Upsert(running("web-1", "uid-1")));
    let fx = s.on_pod_event(PodEvent::Upsert(running("web-1", "uid-2")));
    let cfgs = started(&fx);
    assert_eq!(cfgs.len(), 1, "{:?}", fx.tasks);
    assert_eq!(cfgs[0].uid, "uid-2");
}

#[test]
fn an_evaluation_result_decides_the_gate() {
    let mut s = state(rules(100));
    let pod = running("web-1", "uid-1");
    let _ = s.on_pod_event(PodEvent::Upsert(pod.clone()));
    let queue = rule_named(&s, "queue");
    let fx = s.on_result(result(&pod, &queue, 5.0, READY_AT + 1_000));
    assert_eq!(statuses(&fx.updates), ["True"]);
    let fx = s.on_result(result(&pod, &queue, 500.0, READY_AT + 2_000));
    assert_eq!(statuses(&fx.updates), ["False"]);
    assert_eq!(s.peers.len(), 1, "the pod's values are kept for its peers");
}

#[test]
fn a_result_for_another_uid_is_dropped() {
    let mut s = state(rules(100));
    let pod = running("web-1", "uid-1");
    let _ = s.on_pod_event(PodEvent::Upsert(pod.clone()));
    let queue = rule_named(&s, "queue");
    let mut old = result(&pod, &queue, 5.0, READY_AT + 1_000);
    old.uid = "uid-0".to_string();
    let fx = s.on_result(old);
    assert!(fx.updates.is_empty(), "{:?}", fx.updates);
    assert!(s.peers.is_empty());
}

#[test]
fn a_reload_swaps_the_rules_and_reconfigures_the_tasks() {
    let mut s = state(rules(100));
    let pod = running("web-1", "uid-1");
    let _ = s.on_pod_event(PodEvent::Upsert(pod));
    let before = rule_named(&s, "queue");

    let fx = s.on_reload(Ok(rules(10)), 5.0);
    assert!(fx.rules_swapped);
    let after = rule_named(&s, "queue");
    assert!(
        after.expr_text.contains("queue < 10 "),
        "{}",
        after.expr_text
    );
    match fx.tasks.as_slice() {
        [TaskChange::Reconfigure(cfg)] => {
            assert_eq!(cfg.rules.len(), 1);
            assert!(Arc::ptr_eq(&cfg.rules[0], &after));
            assert!(!Arc::ptr_eq(&cfg.rules[0], &before));
        }
        other => panic!("expected the task to be reconfigured, got {other:?}"),
    }
}

#[test]
fn a_rejected_reload_keeps_the_rules_in_force_and_says_why() {
    let mut s = state(rules(100));
    let before = rule_named(&s, "queue");
    let refused = ReloadError::Emptied {
        dir: PathBuf::from("/etc/podgate/rules"),
        in_force: 1,
    };
    let fx = s.on_reload(Err(refused), 5.0);
    assert!(!fx.rules_swapped);
    assert!(fx.tasks.is_empty() && fx.updates.is_empty());
    assert!(Arc::ptr_eq(&rule_named(&s, "queue"), &before));
    let (_, readyz) = s.health.ready();
    assert!(
        readyz.contains("keeping the 1 rule(s) in force"),
        "{readyz}"
    );
}

#[test]
fn a_result_of_an_older_rule_generation_is_dropped() {
    let mut s = state(rules(100));
    let pod = running("web-1", "uid-1");
    let _ = s.on_pod_event(PodEvent::Upsert(pod.clone()));
    let old = rule_named(&s, "queue");
    let fx = s.on_result(result(&pod, &old, 50.0, READY_AT + 1_000));
    assert_eq!(statuses(&fx.updates), ["True"]);

    let _ = s.on_reload(Ok(rules(10)), 5.0);
    // Evaluated by the old rule (50 < 100) while the new one (50 < 10) was loading.
    let fx = s.on_result(result(&pod, &old, 50.0, READY_AT + 2_000));
    assert!(fx.updates.is_empty(), "{:?}", fx.updates);
    let current = rule_named(&s, "queue");
    let fx = s.on_result(result(&pod, &current, 50.0, READY_AT + 3_000));
    assert_eq!(statuses(&fx.updates), ["False"]);
}

#[test]
fn deletion_removes_all_per_pod_state() {
    let mut s = state(rules(100));
    let mut pod = running("web-1", "uid-1");
    pod.info.gates.push("example.com/not-ours".to_string());
    let _ = s.on_pod_event(PodEvent::Upsert(pod.clone()));
    let queue = rule_named(&s, "queue");
    let _ = s.on_result(result(&pod, &queue, 5.0, READY_AT + 1_000));
    assert_eq!(s.engine.pod_count(), 1);
    assert_eq!(s.peers.len(), 1);
    assert_eq!(s.unowned_logged.len(), 1);

    let fx = s.on_pod_event(PodEvent::Delete(key("web-1")));
    assert!(
        matches!(fx.tasks.as_slice(), [TaskChange::Stop(k)] if *k == key("web-1")),
        "{:?}",
        fx.tasks
    );
    assert_eq!(s.engine.pod_count(), 0);
    assert!(s.snapshots.is_empty());
    assert!(s.tasks.is_empty());
    assert!(s.unowned_logged.is_empty());
    assert!(s.peers.is_empty());
    // A result still in flight for it is dropped.
    let fx = s.on_result(result(&pod, &queue, 500.0, READY_AT + 2_000));
    assert!(fx.updates.is_empty(), "{:?}", fx.updates);
}

#[test]
fn a_terminating_pod_is_forgotten_like_a_deleted_one() {
    let mut s = state(rules(100));
    let _ = s.on_pod_event(PodEvent::Upsert(running("web-1", "uid-1")));
    let mut going = running("web-1", "uid-1");
    going.deleting = true;
    let fx = s.on_pod_event(PodEvent::Upsert(going));
    assert!(matches!(fx.tasks.as_slice(), [TaskChange::Stop(_)]));
    assert_eq!(s.engine.pod_count(), 0);
    assert!(s.snapshots.is_empty());
}

#[test]
fn gaining_the_right_to_write_resends_what_differs_from_the_api() {
    let mut s = state(rules(100));
    let pod = running("web-1", "uid-1");
    let _ = s.on_pod_event(PodEvent::Upsert(pod.clone()));
    let queue = rule_named(&s, "queue");
    let _ = s.on_result(result(&pod, &queue, 5.0, READY_AT + 1_000));
    s.assume_writing(false);
    assert_eq!(statuses(&s.on_write_flag(true)), ["True"]);
    assert!(s.on_write_flag(true).is_empty(), "only on gaining it");
    assert!(s.on_write_flag(false).is_empty());
}

#[test]
fn pod_cache_sync_makes_the_daemon_ready() {
    let mut s = state(rules(100));
    assert!(!s.health.ready().0);
    let _ = s.on_pod_event(PodEvent::Synced);
    assert!(s.health.ready().0, "{}", s.health.ready().1);
}
