//! Kubernetes Events (events.k8s.io/v1) for gate transitions, so `kubectl describe pod` tells
//! the story: `GateTrue` (Normal) or `GateFalse` (Warning), note `<reason>: <message>`,
//! reporting controller `podgate`.
//!
//! Each event regards the pod, with `fieldPath` naming the gate's condition
//! (`status.conditions{<type>}`, after the kubelet's `spec.containers{<name>}`), and its
//! `action` is podgate's reason. kube-runtime's recorder folds a repeat of the same
//! (pod, gate, transition, reason) within a few minutes into one event with a count, while
//! different gates or causes stay separate events.

use ::kube::Client;
use ::kube::runtime::events::{Event, EventType, Recorder, Reporter};
use k8s_openapi::api::core::v1::ObjectReference;

use super::KubeError;
use crate::decision::engine::PodKey;
use crate::decision::{Condition, MESSAGE_LIMIT, cap_message};

/// The reporting controller of podgate's events.
pub const REPORTING_CONTROLLER: &str = "podgate";
/// Event reason of a gate turning True.
pub const GATE_TRUE: &str = "GateTrue";
/// Event reason of a gate turning False.
pub const GATE_FALSE: &str = "GateFalse";

/// The API's limits on an event's `action` and `reportingInstance`.
const SHORT_FIELD_LIMIT: usize = 128;

/// Publishes gate transition events.
#[derive(Clone)]
pub struct EventRecorder {
    recorder: Recorder,
}

impl EventRecorder {
    /// `instance`: this replica's name (e.g. the pod name), shown as the reporting instance.
    pub fn new(client: Client, instance: impl Into<String>) -> EventRecorder {
        let reporter = Reporter {
            controller: REPORTING_CONTROLLER.to_string(),
            instance: Some(truncate(&instance.into(), SHORT_FIELD_LIMIT)),
        };
        EventRecorder {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Records that gate `condition_type` of pod `pod` (uid `uid`) turned `condition.status`.
    pub async fn gate_transition(
        &self,
        pod: &PodKey,
        uid: &str,
        condition_type: &str,
        condition: &Condition,
    ) -> Result<(), KubeError> {
        self.recorder
            .publish(
                &transition_event(condition),
                &gate_reference(pod, uid, condition_type),
            )
            .await
            .map_err(|e| KubeError::Api {
                context: format!(
                    "recording event {} for {condition_type} on pod {pod}",
                    reason_of(condition)
                ),
                source: e,
            })
    }
}

fn reason_of(condition: &Condition) -> &'static str {
    if condition.status {
        GATE_TRUE
    } else {
        GATE_FALSE
    }
}

/// The event of a gate turning to `condition` (pure).
pub fn transition_event(condition: &Condition) -> Event {
    let (type_, reason) = if condition.status {
        (EventType::Normal, GATE_TRUE)
    } else {
        (EventType::Warning, GATE_FALSE)
    };
    let note = format!("{}: {}", condition.reason, condition.message);
    Event {
        type_,
        reason: reason.to_string(),
        note: Some(if note.len() > MESSAGE_LIMIT {
            cap_message(&note)
        } else {
            note
        }),
        action: condition.reason.as_str().to_string(),
        secondary: None,
    }
}

/// The reference an event about gate `condition_type` of a pod regards (pure).
pub fn gate_reference(pod: &PodKey, uid: &str, condition_type: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_string()),
        kind: Some("Pod".to_string()),
        namespace: Some(pod.namespace.clone()),
        name: Some(pod.name.clone()),
        uid: (!uid.is_empty()).then(|| uid.to_string()),
        field_path: Some(format!("status.conditions{{{condition_type}}}")),
        ..ObjectReference::default()
    }
}

/// At most `limit` bytes, cut on a character boundary.
fn truncate(s: &str, limit: usize) -> String {
    let mut end = s.len().min(limit);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Reason;

    fn cond(status: bool, reason: Reason, message: &str) -> Condition {
        Condition {
            status,
            reason,
            message: message.to_string(),
        }
    }

    #[test]
    fn true_is_normal_false_is_warning_with_reason_and_message() {
        let up = transition_event(&cond(true, Reason::MetricsHealthy, "x=0 (rule r)"));
        assert_eq!(up.type_, EventType::Normal);
        assert_eq!(up.reason, "GateTrue");
        assert_eq!(up.note.as_deref(), Some("MetricsHealthy: x=0 (rule r)"));
        assert_eq!(up.action, "MetricsHealthy");

        let down = transition_event(&cond(false, Reason::NoData, "x: no data (rule r)"));
        assert_eq!(down.type_, EventType::Warning);
        assert_eq!(down.reason, "GateFalse");
        assert_eq!(down.note.as_deref(), Some("NoData: x: no data (rule r)"));
        assert_eq!(down.action, "NoData");
    }

    #[test]
    fn note_stays_within_the_api_limit() {
        let long = "é".repeat(MESSAGE_LIMIT);
        let ev = transition_event(&cond(false, Reason::MetricsUnhealthy, &long));
        let note = ev.note.unwrap_or_default();
        assert!(note.len() <= MESSAGE_LIMIT, "{} bytes", note.len());
        assert!(note.starts_with("MetricsUnhealthy: é"));
    }

    #[test]
    fn reference_names_the_pod_and_the_gate() {
        let r = gate_reference(&PodKey::new("shop", "web-1"), "u-1", "example.com/healthy");
        assert_eq!(r.kind.as_deref(), Some("Pod"));
        assert_eq!(r.api_version.as_deref(), Some("v1"));
        assert_eq!(r.namespace.as_deref(), Some("shop"));
        assert_eq!(r.name.as_deref(), Some("web-1"));
        assert_eq!(r.uid.as_deref(), Some("u-1"));
        assert_eq!(
            r.field_path.as_deref(),
            Some("status.conditions{example.com/healthy}")
        );
        assert_eq!(gate_reference(&PodKey::new("a", "b"), "", "g").uid, None);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 128), "abc");
        assert_eq!(truncate("ééé", 3), "é");
    }
}
