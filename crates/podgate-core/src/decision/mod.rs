//! Decisions: from evaluations to gate conditions.
//!
//! Plain data in, decision out: no Kubernetes types, no I/O, no clock (time is passed in).
//! `state` is the per (pod, rule) state machine; `gate` combines the rules that own one
//! condition type and applies the override.

pub mod engine;
pub mod gate;
pub mod state;

use std::fmt;

/// The message cap: a condition message is at most this many bytes.
pub const MESSAGE_LIMIT: usize = 1024;

/// What one evaluation of a rule's expression on one pod gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// A variable had no sample.
    NoData,
    /// A source was unreachable, timed out or answered badly.
    Error,
    /// A variable lacks data that cannot exist yet: the pod is too new to podgate (or, for
    /// PromQL, to Prometheus) for a window to hold the points it needs. Never a verdict by
    /// itself: a new pod's gate stays False, a known pod's gate keeps its status.
    Warming,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::NoData => "nodata",
            Outcome::Error => "error",
            Outcome::Warming => "warming",
        }
    }
}

/// One evaluation: its outcome and the human-readable values behind it
/// (e.g. `errors/requests=0.031 >= 0.01`, or the source error).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub outcome: Outcome,
    pub detail: String,
}

/// The `reason` of a gate condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    MetricsHealthy,
    MetricsUnhealthy,
    NoData,
    SourceError,
    Overridden,
    FailOpenTimeout,
    PanicThreshold,
    /// No verdict yet: the data the rule needs cannot exist yet (always False).
    Warming,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::MetricsHealthy,
        Reason::MetricsUnhealthy,
        Reason::NoData,
        Reason::SourceError,
        Reason::Overridden,
        Reason::FailOpenTimeout,
        Reason::PanicThreshold,
        Reason::Warming,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MetricsHealthy => "MetricsHealthy",
            Reason::MetricsUnhealthy => "MetricsUnhealthy",
            Reason::NoData => "NoData",
            Reason::SourceError => "SourceError",
            Reason::Overridden => "Overridden",
            Reason::FailOpenTimeout => "FailOpenTimeout",
            Reason::PanicThreshold => "PanicThreshold",
            Reason::Warming => "Warming",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A gate condition as podgate writes it (type and times are added by the writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub status: bool,
    pub reason: Reason,
    pub message: String,
}

impl Condition {
    pub fn status_str(&self) -> &'static str {
        if self.status { "True" } else { "False" }
    }
}

/// Caps a message at [`MESSAGE_LIMIT`] bytes on a character boundary, marking the cut.
pub fn cap_message(message: &str) -> String {
    if message.len() <= MESSAGE_LIMIT {
        return message.to_string();
    }
    const MARK: &str = "…";
    let mut end = MESSAGE_LIMIT - MARK.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_message_respects_limit_and_char_boundaries() {
        assert_eq!(cap_message("short"), "short");
        let long = "é".repeat(2000);
        let capped = cap_message(&long);
        assert!(capped.len() <= MESSAGE_LIMIT);
        assert!(capped.ends_with('…'));
        let exact = "a".repeat(MESSAGE_LIMIT);
        assert_eq!(cap_message(&exact), exact);
    }

    #[test]
    fn reasons_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reason::parse("Healthy"), None);
    }
}
