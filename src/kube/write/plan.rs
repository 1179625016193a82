//! What to write for one gate update, given the live pod: nothing (unchanged, another pod),
//! or the strategic-merge patch of `pods/status` that sets only podgate's condition. Pure.

use k8s_openapi::api::core::v1::PodCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::decision::cap_message;
use crate::decision::engine::GateUpdate;

/// What to do about one update, given the live pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// The live pod is another pod than the update's (other uid): drop the update.
    OtherPod,
    /// The live condition already has this status, reason and message.
    Unchanged,
    /// Send `patch`; `status_changed` says whether this is a transition (an event follows).
    Write { patch: Value, status_changed: bool },
}

/// Decides the write of `update` against the live pod (its uid and current condition of the
/// update's type). `now` becomes `lastTransitionTime` when the status changes. Pure.
pub fn plan(
    live_uid: Option<&str>,
    live: Option<&PodCondition>,
    update: &GateUpdate,
    now: Timestamp,
) -> Plan {
    if live_uid.is_some_and(|uid| uid != update.uid) {
        return Plan::OtherPod;
    }
    let c = &update.condition;
    let message = cap_message(&c.message);
    let status = c.status_str();
    let same_status = live.is_some_and(|l| l.status == status);
    if let Some(l) = live
        && same_status
        && l.reason.as_deref() == Some(c.reason.as_str())
        && l.message.as_deref().unwrap_or_default() == message
    {
        return Plan::Unchanged;
    }
    let transition = match live {
        Some(l) if same_status => l.last_transition_time.clone().unwrap_or(Time(now)),
        _ => Time(now),
    };
    Plan::Write {
        patch: status_patch(
            &update.uid,
            &update.condition_type,
            c,
            &message,
            &transition,
        ),
        status_changed: !same_status,
    }
}

/// The strategic-merge patch of `pods/status` that sets one condition, guarded by the uid.
pub fn status_patch(
    uid: &str,
    condition_type: &str,
    condition: &crate::decision::Condition,
    message: &str,
    last_transition: &Time,
) -> Value {
    json!({
        "metadata": { "uid": uid },
        "status": {
            "conditions": [{
                "type": condition_type,
                "status": condition.status_str(),
                "reason": condition.reason.as_str(),
                "message": message,
                "lastTransitionTime": last_transition,
                "lastProbeTime": null,
            }]
        }
    })
}
