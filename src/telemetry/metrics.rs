//! podgate's own metrics (prefix `podgate_`). No label holds a pod name: cardinality is
//! bounded by the number of rules.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleResult {
    pub rule: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceResult {
    pub source: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Transition {
    pub rule: String,
    pub status: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleStatus {
    pub rule: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeState {
    pub mode: &'static str,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// What woke the controller loop for one turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopEvent {
    /// A pod was added, changed or deleted (or the cache synced).
    Pod,
    /// An evaluation result arrived.
    Result,
    /// A loaded rule set was put in force.
    Reload,
    /// The lease (may-write flag) changed.
    Lease,
    /// The once-a-second housekeeping tick.
    Tick,
}

impl LoopEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            LoopEvent::Pod => "pod",
            LoopEvent::Result => "result",
            LoopEvent::Reload => "reload",
            LoopEvent::Lease => "lease",
            LoopEvent::Tick => "tick",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoopEventLabel {
    pub event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn turn_histogram() -> Histogram {
    // 50 µs .. ~6.5 s: a turn is normally well under a millisecond.
    Histogram::new(exponential_buckets(0.00005, 2.0, 18))
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric podgate exports. Cheap to clone (all handles are shared).
#[derive(Clone)]
pub struct Metrics {
    pub evaluations: Family<RuleResult, Counter>,
    pub evaluation_duration: HistogramFamily<RuleLabel>,
    pub source_requests: Family<SourceResult, Counter>,
    pub source_request_duration: HistogramFamily<SourceLabel>,
    pub gate_transitions: Family<Transition, Counter>,
    pub gates: Family<RuleStatus, Gauge>,
    pub panic_threshold_holds: Family<RuleLabel, Counter>,
    pub kube_writes: Family<ResultLabel, Counter>,
    pub kube_write_duration: Histogram,
    pub pods_tracked: Gauge,
    pub pods_by_mode: Family<ModeState, Gauge>,
    pub pods_unowned_gates: Gauge,
    pub runtime_tasks: Gauge,
    pub writer_pending: Gauge,
    pub controller_turn_duration: HistogramFamily<LoopEventLabel>,
    pub config_reloads: Family<ResultLabel, Counter>,
    pub config_last_reload_successful: Gauge,
    pub config_last_reload_success_timestamp: Gauge<f64, AtomicU64>,
    pub rules_loaded: Gauge,
    pub leader: Gauge,
    pub build_info: Family<BuildLabels, Gauge>,
    pub webhook_requests: Family<ResultLabel, Counter>,
    pub webhook_duration: Histogram,
}

impl Metrics {
    /// Creates the metrics and registers them in a new registry.
    pub fn new() -> (Metrics, Registry) {
        let m = Metrics {
            evaluations: Family::default(),
            evaluation_duration: Family::new_with_constructor(latency_histogram),
            source_requests: Family::default(),
            source_request_duration: Family::new_with_constructor(latency_histogram),
            gate_transitions: Family::default(),
            gates: Family::default(),
            panic_threshold_holds: Family::default(),
            kube_writes: Family::default(),
            kube_write_duration: latency_histogram(),
            pods_tracked: Gauge::default(),
            pods_by_mode: Family::default(),
            pods_unowned_gates: Gauge::default(),
            runtime_tasks: Gauge::default(),
            writer_pending: Gauge::default(),
            controller_turn_duration: Family::new_with_constructor(turn_histogram),
            config_reloads: Family::default(),
            config_last_reload_successful: Gauge::default(),
            config_last_reload_success_timestamp: Gauge::default(),
            rules_loaded: Gauge::default(),
            leader: Gauge::default(),
            build_info: Family::default(),
            webhook_requests: Family::default(),
            webhook_duration: latency_histogram(),
        };
        let mut r = Registry::with_prefix("podgate");
        r.register(
            "evaluations",
            "Rule evaluations by result (pass, fail, nodata, error)",
            m.evaluations.clone(),
        );
        r.register(
            "evaluation_duration_seconds",
            "Time to evaluate a rule on one pod, source requests included",
            m.evaluation_duration.clone(),
        );
        r.register(
            "source_requests",
            "Requests to metric sources (scrape, prometheus) by result",
            m.source_requests.clone(),
        );
        r.register(
            "source_request_duration_seconds",
            "Duration of requests to metric sources",
            m.source_request_duration.clone(),
        );
        r.register(
            "gate_transitions",
            "Gate status transitions by rule, new status and reason",
            m.gate_transitions.clone(),
        );
        r.register(
            "gates",
            "Pods per rule verdict (True, False, Unknown)",
            m.gates.clone(),
        );
        r.register(
            "panic_threshold_holds",
            "Evaluations whose True-to-False flip maxUnavailable refused",
            m.panic_threshold_holds.clone(),
        );
        r.register(
            "kube_writes",
            "pods/status write attempts by result (ok, unchanged, gone, conflict, error, invalid)",
            m.kube_writes.clone(),
        );
        r.register(
            "kube_write_duration_seconds",
            "Duration of pods/status writes",
            m.kube_write_duration.clone(),
        );
        r.register(
            "controller_turn_duration_seconds",
            "Time the controller loop spent handling one event, by what woke it; the loop \
             handles one event at a time, so a long turn delays every pod",
            m.controller_turn_duration.clone(),
        );
        r.register(
            "pods_tracked",
            "Pods covered by at least one rule",
            m.pods_tracked.clone(),
        );
        r.register(
            "pods_by_mode",
            "Tracked (pod, rule) pairs by the rule's mode (continuous, startup) and whether the \
             rule still evaluates the pod (evaluating) or, in startup mode, has let it in (done)",
            m.pods_by_mode.clone(),
        );
        r.register(
            "pods_unowned_gates",
            "Pods declaring a podgate-looking gate that no loaded rule owns",
            m.pods_unowned_gates.clone(),
        );
        r.register(
            "runtime_tasks",
            "Tasks alive in podgate's async runtime (one per tracked pod plus a fixed few)",
            m.runtime_tasks.clone(),
        );
        r.register(
            "writer_pending",
            "Gate conditions the writer holds to write (always 0 while it may not write: a \
             standby or dry-run replica holds none)",
            m.writer_pending.clone(),
        );
        r.register(
            "config_reloads",
            "Rule set reloads by result (success, failure)",
            m.config_reloads.clone(),
        );
        r.register(
            "config_last_reload_successful",
            "Whether the last rule reload succeeded (1) or was rejected (0)",
            m.config_last_reload_successful.clone(),
        );
        r.register(
            "config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful rule load",
            m.config_last_reload_success_timestamp.clone(),
        );
        r.register("rules_loaded", "Rules in force", m.rules_loaded.clone());
        r.register(
            "leader",
            "Whether this instance may write (leader, or no election)",
            m.leader.clone(),
        );
        r.register(
            "build_info",
            "podgate build information",
            m.build_info.clone(),
        );
        r.register(
            "webhook_requests",
            "Admission webhook requests by result (patched, unchanged, invalid)",
            m.webhook_requests.clone(),
        );
        r.register(
            "webhook_duration_seconds",
            "Time to answer an admission webhook request",
            m.webhook_duration.clone(),
        );
        m.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        (m, r)
    }

    pub fn evaluation(&self, rule: &str, result: &str, took: Duration) {
        self.evaluations
            .get_or_create(&RuleResult {
                rule: rule.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.evaluation_duration
            .get_or_create(&RuleLabel {
                rule: rule.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn source_request(&self, source: &str, result: &str, took: Duration) {
        self.source_requests
            .get_or_create(&SourceResult {
                source: source.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.source_request_duration
            .get_or_create(&SourceLabel {
                source: source.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn transition(&self, rule: &str, status: &str, reason: &str) {
        self.gate_transitions
            .get_or_create(&Transition {
                rule: rule.to_string(),
                status: status.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn panic_hold(&self, rule: &str) {
        self.panic_threshold_holds
            .get_or_create(&RuleLabel {
                rule: rule.to_string(),
            })
            .inc();
    }

    pub fn kube_write(&self, result: &str, took: Duration) {
        self.kube_writes
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
        self.kube_write_duration.observe(took.as_secs_f64());
    }

    pub fn controller_turn(&self, event: LoopEvent, took: Duration) {
        self.controller_turn_duration
            .get_or_create(&LoopEventLabel {
                event: event.as_str(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn webhook_request(&self, result: &str, took: Duration) {
        self.webhook_requests
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
        self.webhook_duration.observe(took.as_secs_f64());
    }

    pub fn reload(&self, ok: bool, rules: usize, now_unix: f64) {
        let result = if ok { "success" } else { "failure" };
        self.config_reloads
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
        self.config_last_reload_successful.set(i64::from(ok));
        if ok {
            self.config_last_reload_success_timestamp.set(now_unix);
            self.rules_loaded
                .set(i64::try_from(rules).unwrap_or(i64::MAX));
        }
    }

    /// Creates the per-rule counters of rare events at 0 for every loaded rule, so they exist
    /// before the first event: `increase()` and `rate()` then see the first one, and an alert
    /// on them is not blind to it.
    pub fn init_rules<'a>(&self, rules: impl Iterator<Item = &'a str>) {
        // Creating the series is the point; the returned handle is not needed.
        for rule in rules {
            let _ = self.panic_threshold_holds.get_or_create(&RuleLabel {
                rule: rule.to_string(),
            });
        }
        let _ = self.config_reloads.get_or_create(&ResultLabel {
            result: "failure".to_string(),
        });
    }

    /// Sets the (pod, rule) pairs per mode: continuous, startup still evaluating, startup done.
    pub fn set_pods_by_mode(
        &self,
        continuous: usize,
        startup_evaluating: usize,
        startup_done: usize,
    ) {
        for (mode, state, n) in [
            ("continuous", "evaluating", continuous),
            ("startup", "evaluating", startup_evaluating),
            ("startup", "done", startup_done),
        ] {
            self.pods_by_mode
                .get_or_create(&ModeState { mode, state })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Replaces the per-rule verdict gauges (rules that went away disappear).
    pub fn set_gates<'a>(&self, counts: impl Iterator<Item = (&'a str, [(&'a str, usize); 3])>) {
        self.gates.clear();
        for (rule, by_status) in counts {
            for (status, n) in by_status {
                self.gates
                    .get_or_create(&RuleStatus {
                        rule: rule.to_string(),
                        status: status.to_string(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }
}

/// The registry in OpenMetrics text.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{self, Format};

    #[test]
    fn every_spec_metric_is_exported_and_parses() {
        let (m, r) = Metrics::new();
        m.evaluation("r1", "pass", Duration::from_millis(3));
        m.source_request("scrape", "ok", Duration::from_millis(2));
        m.transition("r1", "True", "MetricsHealthy");
        m.set_gates([("r1", [("True", 2), ("False", 1), ("Unknown", 0)])].into_iter());
        m.panic_hold("r1");
        m.kube_write("ok", Duration::from_millis(5));
        m.reload(true, 3, 1_700_000_000.0);
        m.webhook_request("patched", Duration::from_micros(300));
        let text = encode(&r).expect("encode");
        let names: Vec<String> = exposition::parse(&text, Format::OpenMetrics)
            .map(|s| s.map(|s| s.name.to_string()))
            .collect::<Result<_, _>>()
            .expect("our own /metrics parses as OpenMetrics");
        for want in [
            "podgate_evaluations_total",
            "podgate_evaluation_duration_seconds_bucket",
            "podgate_source_requests_total",
            "podgate_source_request_duration_seconds_bucket",
            "podgate_gate_transitions_total",
            "podgate_gates",
            "podgate_panic_threshold_holds_total",
            "podgate_kube_writes_total",
            "podgate_kube_write_duration_seconds_bucket",
            "podgate_pods_tracked",
            "podgate_runtime_tasks",
            "podgate_writer_pending",
            "podgate_config_reloads_total",
            "podgate_config_last_reload_successful",
            "podgate_config_last_reload_success_timestamp_seconds",
            "podgate_rules_loaded",
            "podgate_leader",
            "podgate_build_info",
            "podgate_webhook_requests_total",
            "podgate_webhook_duration_seconds_bucket",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from:\n{text}"
            );
        }
        assert!(!text.contains("pod=\""), "no per-pod labels");
    }

    #[test]
    fn rare_event_counters_exist_from_the_start() {
        let (m, r) = Metrics::new();
        m.reload(true, 2, 1_700_000_000.0);
        m.init_rules(["a", "b"].into_iter());
        let text = encode(&r).expect("encode");
        for line in [
            "podgate_panic_threshold_holds_total{rule=\"a\"} 0",
            "podgate_panic_threshold_holds_total{rule=\"b\"} 0",
            "podgate_config_reloads_total{result=\"failure\"} 0",
            "podgate_config_reloads_total{result=\"success\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn kube_writes_help_names_every_result() {
        let (m, r) = Metrics::new();
        m.kube_write("ok", Duration::from_millis(1));
        let text = encode(&r).expect("encode");
        let help = text
            .lines()
            .find(|l| l.starts_with("# HELP podgate_kube_writes "))
            .unwrap_or_else(|| panic!("no HELP line in:\n{text}"));
        for result in crate::kube::write::WriteResult::ALL {
            assert!(help.contains(result.as_str()), "{result:?} missing: {help}");
        }
    }

    #[test]
    fn pods_by_mode_has_every_mode_and_state() {
        let (m, r) = Metrics::new();
        m.set_pods_by_mode(5, 2, 3);
        let text = encode(&r).expect("encode");
        for line in [
            "podgate_pods_by_mode{mode=\"continuous\",state=\"evaluating\"} 5",
            "podgate_pods_by_mode{mode=\"startup\",state=\"evaluating\"} 2",
            "podgate_pods_by_mode{mode=\"startup\",state=\"done\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn gates_gauge_forgets_removed_rules() {
        let (m, r) = Metrics::new();
        m.set_gates([("old", [("True", 1), ("False", 0), ("Unknown", 0)])].into_iter());
        m.set_gates([("new", [("True", 1), ("False", 0), ("Unknown", 0)])].into_iter());
        let text = encode(&r).expect("encode");
        assert!(text.contains("rule=\"new\""));
        assert!(!text.contains("rule=\"old\""));
    }
}
