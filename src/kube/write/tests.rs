//! The write plan, the queue's coalescing and backoff, and the result labels.

use k8s_openapi::api::core::v1::PodCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use super::*;
use crate::decision::engine::PodKey;
use crate::decision::{Condition, MESSAGE_LIMIT, Reason};

const GATE: &str = "example.com/healthy";

fn update(status: bool, reason: Reason, message: &str) -> GateUpdate {
    GateUpdate {
        pod: PodKey::new("shop", "web-1"),
        uid: "uid-1".into(),
        condition_type: GATE.into(),
        condition: Condition {
            status,
            reason,
            message: message.into(),
        },
    }
}

fn at(s: &str) -> Timestamp {
    match s.parse() {
        Ok(t) => t,
        Err(e) => panic!("bad test timestamp {s}: {e}"),
    }
}

fn live(status: &str, reason: &str, message: &str, since: &str) -> PodCondition {
    PodCondition {
        type_: GATE.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: Some(Time(at(since))),
        last_probe_time: None,
        ..PodCondition::default()
    }
}

const NOW: &str = "2025-03-01T12:00:00Z";

#[test]
fn first_write_is_exactly_one_condition_with_uid_guard() {
    let u = update(true, Reason::MetricsHealthy, "x=0 < 1 (rule r)");
    let Plan::Write {
        patch,
        status_changed,
    } = plan(Some("uid-1"), None, &u, at(NOW))
    else {
        panic!("expected a write");
    };
    assert!(status_changed);
    let expected: Value = json!({
        "metadata": { "uid": "uid-1" },
        "status": { "conditions": [{
            "type": "example.com/healthy",
            "status": "True",
            "reason": "MetricsHealthy",
            "message": "x=0 < 1 (rule r)",
            "lastTransitionTime": "2025-03-01T12:00:00Z",
            "lastProbeTime": null,
        }]}
    });
    assert_eq!(patch, expected);
    // Exactly these keys: nothing else of the pod is touched.
    assert_eq!(
        serde_json::to_string(&patch).unwrap_or_default(),
        "{\"metadata\":{\"uid\":\"uid-1\"},\"status\":{\"conditions\":[{\"lastProbeTime\":null,\
         \"lastTransitionTime\":\"2025-03-01T12:00:00Z\",\"message\":\"x=0 < 1 (rule r)\",\
         \"reason\":\"MetricsHealthy\",\"status\":\"True\",\"type\":\"example.com/healthy\"}]}}"
    );
}

#[test]
fn same_status_reason_and_message_is_not_written() {
    let u = update(false, Reason::MetricsUnhealthy, "x=3 >= 1 (rule r)");
    let l = live(
        "False",
        "MetricsUnhealthy",
        "x=3 >= 1 (rule r)",
        "2025-01-01T00:00:00Z",
    );
    assert_eq!(plan(Some("uid-1"), Some(&l), &u, at(NOW)), Plan::Unchanged);
}

#[test]
fn message_change_keeps_the_transition_time() {
    let u = update(false, Reason::MetricsUnhealthy, "x=4 >= 1 (rule r)");
    let l = live(
        "False",
        "MetricsUnhealthy",
        "x=3 >= 1 (rule r)",
        "2025-01-01T00:00:00Z",
    );
    let Plan::Write {
        patch,
        status_changed,
    } = plan(Some("uid-1"), Some(&l), &u, at(NOW))
    else {
        panic!("expected a write");
    };
    assert!(!status_changed);
    let c = &patch["status"]["conditions"][0];
    assert_eq!(c["lastTransitionTime"], "2025-01-01T00:00:00Z");
    assert_eq!(c["message"], "x=4 >= 1 (rule r)");
    // A reason change alone is a write too, still not a transition.
    let r = update(false, Reason::NoData, "x=3 >= 1 (rule r)");
    let l = live("False", "MetricsUnhealthy", "x=3 >= 1 (rule r)", NOW);
    assert!(matches!(
        plan(Some("uid-1"), Some(&l), &r, at(NOW)),
        Plan::Write {
            status_changed: false,
            ..
        }
    ));
}

#[test]
fn status_change_moves_the_transition_time() {
    let u = update(true, Reason::MetricsHealthy, "x=0 < 1 (rule r)");
    let l = live(
        "False",
        "MetricsUnhealthy",
        "x=3 >= 1 (rule r)",
        "2025-01-01T00:00:00Z",
    );
    let Plan::Write {
        patch,
        status_changed,
    } = plan(Some("uid-1"), Some(&l), &u, at(NOW))
    else {
        panic!("expected a write");
    };
    assert!(status_changed);
    assert_eq!(
        patch["status"]["conditions"][0]["lastTransitionTime"],
        "2025-03-01T12:00:00Z"
    );
    // From Unknown (or a condition someone else wrote) is a transition as well.
    let unknown = live("Unknown", "", "", "2025-01-01T00:00:00Z");
    assert!(matches!(
        plan(Some("uid-1"), Some(&unknown), &u, at(NOW)),
        Plan::Write {
            status_changed: true,
            ..
        }
    ));
}

#[test]
fn another_uid_is_another_pod() {
    let u = update(true, Reason::MetricsHealthy, "ok");
    assert_eq!(plan(Some("uid-2"), None, &u, at(NOW)), Plan::OtherPod);
}

#[test]
fn long_messages_are_capped_and_compared_capped() {
    let long = "a".repeat(3 * MESSAGE_LIMIT);
    let u = update(false, Reason::MetricsUnhealthy, &long);
    let Plan::Write { patch, .. } = plan(Some("uid-1"), None, &u, at(NOW)) else {
        panic!("expected a write");
    };
    let written = patch["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(written.len() <= MESSAGE_LIMIT);
    let l = live("False", "MetricsUnhealthy", &written, NOW);
    assert_eq!(plan(Some("uid-1"), Some(&l), &u, at(NOW)), Plan::Unchanged);
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let (i, m) = (Duration::from_millis(100), Duration::from_secs(30));
    let delays: Vec<u128> = (1..=12)
        .map(|n| backoff_delay(n, i, m).as_millis())
        .collect();
    assert_eq!(
        delays,
        [
            100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
        ]
    );
    assert_eq!(backoff_delay(u32::MAX, i, m), m);
}

fn queue() -> Queue {
    Queue::new(Duration::from_millis(100), Duration::from_secs(30))
}

#[test]
fn latest_update_per_pod_gate_wins() {
    let mut q = queue();
    let t = Instant::now();
    q.push(update(false, Reason::MetricsUnhealthy, "a"), t);
    q.push(update(true, Reason::MetricsHealthy, "b"), t);
    let mut other = update(false, Reason::NoData, "c");
    other.condition_type = "example.com/other".into();
    q.push(other, t);
    let (first, _) = q.take_due(t).expect("one due");
    let (second, _) = q.take_due(t).expect("two due");
    assert!(q.take_due(t).is_none(), "two keys, two writes");
    assert_eq!(first.condition.message, "b");
    assert_eq!(second.condition.message, "c");
}

#[test]
fn failed_write_is_retried_with_backoff_and_a_newer_value_replaces_it() {
    let mut q = queue();
    let t = Instant::now();
    q.push(update(false, Reason::MetricsUnhealthy, "a"), t);
    let (u, failures) = q.take_due(t).expect("due");
    // A newer decision arrives while the write is in flight: it waits for it.
    q.push(update(true, Reason::MetricsHealthy, "b"), t);
    assert!(
        q.take_due(t).is_none(),
        "never two writes of one gate at once"
    );
    q.finish(u, failures, WriteResult::Conflict, false, t);
    assert!(q.take_due(t).is_none(), "backing off");
    assert_eq!(q.next_due(), Some(t + Duration::from_millis(100)));
    let (u, failures) = q.take_due(t + Duration::from_millis(100)).expect("due");
    assert_eq!(u.condition.message, "b", "the newer value is retried");
    assert_eq!(failures, 1);
    q.finish(u, failures, WriteResult::Error, false, t);
    assert_eq!(q.next_due(), Some(t + Duration::from_millis(200)));
    let (u, failures) = q.take_due(t + Duration::from_secs(1)).expect("due");
    q.finish(u, failures, WriteResult::Ok, false, t);
    assert!(q.is_idle());
}

#[test]
fn gone_drops_the_update_but_not_a_newer_one() {
    let mut q = queue();
    let t = Instant::now();
    q.push(update(false, Reason::MetricsUnhealthy, "old pod"), t);
    let (u, f) = q.take_due(t).expect("due");
    q.finish(u, f, WriteResult::Gone, false, t);
    assert!(q.is_idle());

    q.push(update(false, Reason::MetricsUnhealthy, "old pod"), t);
    let (u, f) = q.take_due(t).expect("due");
    let mut fresh = update(true, Reason::MetricsHealthy, "new pod");
    fresh.uid = "uid-2".into();
    q.push(fresh, t);
    q.finish(u, f, WriteResult::Gone, false, t);
    let (u, _) = q.take_due(t).expect("the new pod's update stays");
    assert_eq!(u.uid, "uid-2");
}

#[test]
fn an_unavailable_api_holds_every_write() {
    let mut q = queue();
    let t = Instant::now();
    q.push(update(false, Reason::MetricsUnhealthy, "a"), t);
    let mut other = update(false, Reason::NoData, "c");
    other.pod = PodKey::new("shop", "web-2");
    q.push(other, t);
    let (u, f) = q.take_due(t).expect("due");
    q.finish(u, f, WriteResult::Error, true, t);
    assert!(
        q.take_due(t).is_none(),
        "the other pod waits for the API too"
    );
    assert_eq!(q.next_due(), Some(t + Duration::from_millis(100)));
    let later = t + Duration::from_millis(100);
    let (u, f) = q.take_due(later).expect("due after the API backoff");
    q.finish(u, f, WriteResult::Ok, false, later);
    assert!(
        q.take_due(later).is_some(),
        "a success lifts the API backoff"
    );
}

#[test]
fn dropping_pending_forgets_everything_not_in_flight() {
    let mut q = queue();
    let now = Instant::now();
    q.push(update(true, Reason::MetricsHealthy, "a"), now);
    let mut other = update(false, Reason::MetricsUnhealthy, "b");
    other.pod = PodKey::new("ns", "other");
    q.push(other.clone(), now);
    let (taken, _) = q.take_due(now).unwrap_or_else(|| panic!("one is due"));
    // A newer value for the key in flight is held too, and dropped with the rest.
    q.push(taken.clone(), now);
    assert_eq!(q.len(), 2);
    assert_eq!(q.drop_pending(), 2);
    assert_eq!(q.len(), 0);
    assert!(q.next_due().is_none());
    // The write in flight finishes normally and leaves nothing behind.
    q.finish(taken, 0, WriteResult::Ok, false, now);
    assert!(q.is_idle());
}

#[test]
fn result_labels() {
    let labels: Vec<&str> = WriteResult::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        labels,
        ["ok", "unchanged", "gone", "conflict", "error", "invalid"]
    );
    assert!(WriteResult::Conflict.retried() && WriteResult::Error.retried());
    assert!(!WriteResult::Gone.retried() && !WriteResult::Invalid.retried());
}
