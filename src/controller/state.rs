//! The controller loop's state and how each of its inputs changes it, with no task, channel
//! or clock of its own: a pod event, an evaluation result, a loaded rule set or a change of
//! the may-write flag goes in; gate updates for the writer and changes to the pod tasks come
//! out ([`Effects`]). The loop in [`super::event_loop`] carries them out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tracing::{error, info, warn};

use super::messages::{EvalMsg, PodConfig};
use super::peers::SharedPeers;
use super::target::Target;
use crate::decision::engine::{Engine, GateUpdate, PodKey};
use crate::kube::watch::{PodEvent, PodSnapshot};
use crate::reload::ReloadError;
use crate::rules::RuleSet;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::server::Health;

/// A change to the pod tasks.
#[derive(Debug, Clone)]
pub enum TaskChange {
    /// Start a task for the pod (replacing any it has: a new uid is a new pod).
    Start(Arc<PodConfig>),
    /// Hand the pod's running task a new configuration.
    Reconfigure(Arc<PodConfig>),
    /// Stop the pod's task.
    Stop(PodKey),
}

/// What handling one input asks of the loop.
#[derive(Debug, Default)]
pub struct Effects {
    /// For the writer, in order.
    pub updates: Vec<GateUpdate>,
    pub tasks: Vec<TaskChange>,
    /// A new rule set is in force: publish it and restart the batched queries.
    pub rules_swapped: bool,
}

/// The decisions and what is known of every pod; owned by the controller loop alone, so it
/// needs no lock.
pub struct LoopState {
    engine: Engine,
    rules: RuleSet,
    snapshots: HashMap<PodKey, PodSnapshot>,
    /// The configuration each pod task was last given; a pod without a task has none.
    tasks: HashMap<PodKey, Arc<PodConfig>>,
    /// Pods carrying a gate no rule owns, logged once each; an entry goes with its pod.
    unowned_logged: HashMap<PodKey, HashSet<String>>,
    /// Whether the writer may write now.
    writing: bool,
    peers: Arc<SharedPeers>,
    metrics: Metrics,
    health: Arc<Health>,
}

impl LoopState {
    /// The state with `rules` in force and no pod yet. `now_s`: the time of the load (s).
    pub fn new(
        rules: RuleSet,
        peers: Arc<SharedPeers>,
        metrics: Metrics,
        health: Arc<Health>,
        now_s: f64,
    ) -> LoopState {
        metrics.reload(true, rules.len(), now_s);
        metrics.init_rules(rules.rules.iter().map(|r| r.name.as_str()));
        health.set_rules_loaded(true);
        LoopState {
            engine: Engine::new(&rules),
            rules,
            snapshots: HashMap::new(),
            tasks: HashMap::new(),
            unowned_logged: HashMap::new(),
            writing: false,
            peers,
            metrics,
            health,
        }
    }

    /// The rule set in force.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Takes the may-write flag as it stands, without resyncing anything.
    pub fn assume_writing(&mut self, may_write: bool) {
        self.writing = may_write;
    }

    /// The may-write flag changed to `may_write`. On gaining it, every gate whose decided
    /// condition differs from what the API shows is sent again (the writer holds nothing
    /// while it may not write).
    pub fn on_write_flag(&mut self, may_write: bool) -> Vec<GateUpdate> {
        let gained = may_write && !self.writing;
        self.writing = may_write;
        if !gained {
            return Vec::new();
        }
        let updates = self.engine.resync();
        info!(
            gates = updates.len(),
            "may write now: resyncing the gates that differ from the API"
        );
        updates
    }

    pub fn on_pod_event(&mut self, ev: PodEvent) -> Effects {
        let mut fx = Effects::default();
        match ev {
            PodEvent::Synced => {
                self.health.set_cache_synced(true);
                info!(pods = self.snapshots.len(), "pod cache synced");
            }
            PodEvent::Delete(key) => self.forget(&key, &mut fx),
            PodEvent::Upsert(snap) => {
                if snap.deleting {
                    self.forget(&snap.key, &mut fx);
                    return fx;
                }
                self.note_unowned(&snap);
                fx.updates = self.engine.upsert_pod(snap.key.clone(), snap.info.clone());
                let key = snap.key.clone();
                self.snapshots.insert(key.clone(), snap);
                self.sync_task(&key, &mut fx);
            }
        }
        fx
    }

    /// Drops everything kept for a pod that is gone or going.
    fn forget(&mut self, key: &PodKey, fx: &mut Effects) {
        self.engine.remove_pod(key);
        self.peers.remove_pod(key);
        self.snapshots.remove(key);
        self.stop_task(key, fx);
        self.unowned_logged.remove(key);
    }

    fn stop_task(&mut self, key: &PodKey, fx: &mut Effects) {
        if self.tasks.remove(key).is_some() {
            fx.tasks.push(TaskChange::Stop(key.clone()));
        }
    }

    fn note_unowned(&mut self, snap: &PodSnapshot) {
        for g in &snap.info.gates {
            if self.engine.owns(g) {
                continue;
            }
            let logged = self.unowned_logged.entry(snap.key.clone()).or_default();
            if logged.insert(g.clone()) {
                info!(pod = %snap.key, gate = %g, "pod declares a readiness gate no rule owns; not touching it");
            }
        }
    }

    /// Starts, updates or stops the pod's task to match its snapshot and rules.
    fn sync_task(&mut self, key: &PodKey, fx: &mut Effects) {
        let Some(snap) = self.snapshots.get(key) else {
            self.stop_task(key, fx);
            self.peers.remove_pod(key);
            return;
        };
        // A startup rule done with the pod evaluates it no more.
        let rules = self.engine.rules_to_evaluate(key);
        let (Some(ip), Some(ready_since), false) = (
            snap.pod_ip,
            snap.info.containers_ready_since,
            rules.is_empty() || !snap.evaluable(),
        ) else {
            self.stop_task(key, fx);
            self.peers.remove_pod(key);
            return;
        };
        self.peers.sync_pod(snap, &rules);
        let spread = rules
            .iter()
            .filter(|r| {
                self.engine
                    .state(key, &r.name)
                    .is_some_and(|s| s.verdict().is_some())
            })
            .map(|r| r.name.clone())
            .collect();
        let cfg = Arc::new(PodConfig {
            key: key.clone(),
            uid: snap.info.uid.clone(),
            target: Target {
                ip,
                port_annotation: snap.prometheus_port.clone(),
                path_annotation: snap.prometheus_path.clone(),
                container_ports: snap.container_ports.clone(),
            },
            node: snap.node_name.clone(),
            labels: snap.info.labels.clone(),
            owner: snap.owner.clone(),
            ready_since,
            rules,
            spread,
        });
        let change = match self.tasks.get(key) {
            Some(cur) if cur.same_work(&cfg) => return,
            Some(cur) if cur.uid == cfg.uid => TaskChange::Reconfigure(cfg.clone()),
            _ => TaskChange::Start(cfg.clone()),
        };
        self.tasks.insert(key.clone(), cfg);
        fx.tasks.push(change);
    }

    pub fn on_result(&mut self, msg: EvalMsg) -> Effects {
        let mut fx = Effects::default();
        // A result for a pod that has gone, or been replaced under the same name, is stale.
        if self.snapshots.get(&msg.key).map(|s| s.info.uid.as_str()) != Some(msg.uid.as_str()) {
            return fx;
        }
        let rule = &msg.rule;
        let eval = &msg.result.evaluation;
        self.metrics
            .evaluation(&rule.name, eval.outcome.as_str(), msg.took);
        let before = self
            .engine
            .state(&msg.key, &rule.name)
            .and_then(|s| s.verdict().cloned());
        let was_done = self.engine.done(&msg.key, &rule.name);
        // A result of a rule since replaced by another definition is dropped here.
        let observed = self.engine.observe_for(&msg.key, rule, eval, msg.at_ms);
        let Some(step) = observed.step else {
            return fx;
        };
        if !was_done && let Some(snap) = self.snapshots.get(&msg.key) {
            self.peers.record(rule, snap, &msg.result, msg.at_ms);
        }
        if step.held_by_panic {
            self.metrics.panic_hold(&rule.name);
        }
        if step.changed {
            let after = self
                .engine
                .state(&msg.key, &rule.name)
                .and_then(|s| s.verdict().cloned());
            if let Some(c) = &after {
                if step.transition {
                    self.metrics
                        .transition(&rule.name, c.status_str(), c.reason.as_str());
                }
                info!(
                    pod = %msg.key,
                    rule = %rule.name,
                    gate = %rule.condition_type,
                    status = c.status_str(),
                    reason = c.reason.as_str(),
                    message = %c.message,
                    previous = before.as_ref().map_or("Unknown", |b| b.status_str()),
                    dry_run = rule.dry_run,
                    "rule verdict changed"
                );
            }
        }
        if let Some(update) = observed.update {
            fx.updates.push(update);
        }
        if step.changed && self.engine.done(&msg.key, &rule.name) {
            info!(pod = %msg.key, rule = %rule.name, "startup rule done: the pod is no longer evaluated");
            self.sync_task(&msg.key, &mut fx);
        }
        fx
    }

    /// A reload finished at `now_s` (s): swaps a valid set in, keeping the state of unchanged
    /// rules and restarting pod tasks with the new configuration; a rejected one changes
    /// nothing but the reload metrics and `/readyz`.
    pub fn on_reload(&mut self, loaded: Result<RuleSet, ReloadError>, now_s: f64) -> Effects {
        let mut fx = Effects::default();
        match loaded {
            Ok(set) => {
                fx.updates = self.engine.set_rules(&set);
                self.peers.reload(&self.rules, &set);
                info!(rules = set.len(), "rules reloaded");
                for w in &set.warnings {
                    warn!("{w}");
                }
                self.rules = set;
                fx.rules_swapped = true;
                self.metrics.reload(true, self.rules.len(), now_s);
                self.metrics
                    .init_rules(self.rules.rules.iter().map(|r| r.name.as_str()));
                self.health.set_reload_error(None);
                let keys: Vec<PodKey> = self.snapshots.keys().cloned().collect();
                for k in keys {
                    self.sync_task(&k, &mut fx);
                }
            }
            Err(e) => {
                error!(error = %e, "rules rejected; the previous rules stay in force");
                self.metrics.reload(false, self.rules.len(), now_s);
                self.health.set_reload_error(Some(e.to_string()));
            }
        }
        fx
    }

    /// Refreshes the gauges that describe the whole state; `alive_tasks` is the runtime's
    /// count of tasks (a count that only grows while the pods do not is a leak).
    pub fn refresh_gauges(&self, alive_tasks: usize) {
        let counts = self.engine.verdict_counts();
        self.metrics.set_gates(counts.iter().map(|(rule, c)| {
            (
                rule.as_str(),
                [
                    ("True", c.true_),
                    ("False", c.false_),
                    ("Unknown", c.unknown),
                ],
            )
        }));
        let tracked = self
            .engine
            .pod_keys()
            .filter(|k| !self.engine.rules_for(k).is_empty())
            .count();
        self.metrics.pods_tracked.set(gauge(tracked));
        let modes = self.engine.mode_counts();
        self.metrics.set_pods_by_mode(
            modes.continuous,
            modes.startup_evaluating,
            modes.startup_done,
        );
        self.metrics.runtime_tasks.set(gauge(alive_tasks));
        let unowned = self
            .snapshots
            .values()
            .filter(|s| s.info.gates.iter().any(|g| !self.engine.owns(g)))
            .count();
        self.metrics.pods_unowned_gates.set(gauge(unowned));
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
