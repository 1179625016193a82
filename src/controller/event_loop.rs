//! The controller loop: one task that takes its inputs one at a time — pod events, evaluation
//! results, the may-write flag, reload triggers, a one-second tick — hands each to the
//! [`LoopState`], and carries out what it asks: gate updates to the writer, pod tasks started,
//! reconfigured or stopped, batched queries restarted after a reload.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::messages::{EvalMsg, PodConfig};
use super::shared::Shared;
use super::state::{Effects, LoopState, TaskChange};
use super::{pod, promql};
use crate::decision::engine::{GateUpdate, PodKey};
use crate::kube::watch::PodEvent;
use crate::reload::{self, ReloadError};
use crate::rules::RuleSet;
use crate::telemetry::metrics::LoopEvent;
use crate::telemetry::server::Health;
use crate::time::now_ms;

/// A running pod task and the channel its configuration goes through.
struct PodTask {
    config: watch::Sender<Arc<PodConfig>>,
    handle: JoinHandle<()>,
}

impl Drop for PodTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// The channels the loop reads.
pub struct Inputs {
    /// From the watcher; the loop ends when it closes.
    pub pods: mpsc::Receiver<PodEvent>,
    /// "Look at the rules directory again" (file events, SIGHUP).
    pub reloads: mpsc::Receiver<()>,
    /// The loop ends when it turns true.
    pub shutdown: watch::Receiver<bool>,
}

/// The controller loop's state. Build with [`Controller::new`], then [`Controller::run`] it.
pub struct Controller {
    rules_dir: PathBuf,
    shared: Arc<Shared>,
    health: Arc<Health>,
    state: LoopState,
    tasks: HashMap<PodKey, PodTask>,
    results_tx: mpsc::Sender<EvalMsg>,
    results_rx: mpsc::Receiver<EvalMsg>,
    updates: mpsc::Sender<GateUpdate>,
    /// Whether the writer may write; on gaining it, every gate that differs from the API is
    /// sent again (the writer holds nothing while it may not write).
    may_write: Option<watch::Receiver<bool>>,
    batch_tasks: Vec<JoinHandle<()>>,
    /// Receives every rule set swapped in (the admission webhook reads it).
    published: Option<watch::Sender<RuleSet>>,
}

impl Controller {
    /// The loop over `rules` in force from `rules_dir`, its pod tasks sharing `shared`; gate
    /// updates go to `updates`.
    pub fn new(
        rules_dir: PathBuf,
        rules: RuleSet,
        shared: Arc<Shared>,
        health: Arc<Health>,
        updates: mpsc::Sender<GateUpdate>,
    ) -> Controller {
        let state = LoopState::new(
            rules,
            shared.peers.clone(),
            shared.metrics.clone(),
            health.clone(),
            now_ms() as f64 / 1000.0,
        );
        let (results_tx, results_rx) = mpsc::channel(1024);
        Controller {
            rules_dir,
            shared,
            health,
            state,
            tasks: HashMap::new(),
            results_tx,
            results_rx,
            updates,
            may_write: None,
            batch_tasks: Vec::new(),
            published: None,
        }
    }

    /// Resynchronises the writer from the decisions whenever `may_write` turns true.
    pub fn resync_on(mut self, may_write: watch::Receiver<bool>) -> Controller {
        self.may_write = Some(may_write);
        self
    }

    /// Sends every rule set this controller swaps in to `tx`, so others act on the rules in
    /// force, never on a rejected set.
    pub fn publish_rules(mut self, tx: watch::Sender<RuleSet>) -> Controller {
        tx.send_replace(self.state.rules().clone());
        self.published = Some(tx);
        self
    }

    /// Runs until `shutdown` turns true or the pod event channel closes.
    pub async fn run(mut self, inputs: Inputs) {
        let Inputs {
            mut pods,
            mut reloads,
            mut shutdown,
        } = inputs;
        self.batch_tasks = promql::spawn_batches(&self.shared, &self.state.rules().rules);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut turns = 0u64;
        let mut may_write = self.may_write.take();
        let (loaded_tx, mut loaded_rx) = mpsc::channel(1);
        let (mut loading, mut again) = (false, false);
        let mut settle_at: Option<tokio::time::Instant> = None;
        // The flag as it stands at the start needs no resync: no pod is known yet.
        self.state
            .assume_writing(may_write.as_mut().is_some_and(|w| *w.borrow_and_update()));
        loop {
            let write_flag = async {
                match may_write.as_mut() {
                    Some(w) => w.changed().await.map(|()| *w.borrow_and_update()),
                    None => std::future::pending().await,
                }
            };
            let woke = tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        break;
                    }
                    None
                }
                flag = write_flag => {
                    let started = Instant::now();
                    match flag {
                        Ok(now_writing) => {
                            let updates = self.state.on_write_flag(now_writing);
                            self.send(updates).await;
                        }
                        // The flag's owner is gone: keep its last value.
                        Err(_) => may_write = None,
                    }
                    Some((LoopEvent::Lease, started))
                }
                ev = pods.recv() => match ev {
                    Some(ev) => {
                        let started = Instant::now();
                        let fx = self.state.on_pod_event(ev);
                        self.apply(fx).await;
                        Some((LoopEvent::Pod, started))
                    }
                    None => break,
                },
                Some(msg) = self.results_rx.recv() => {
                    let started = Instant::now();
                    let fx = self.state.on_result(msg);
                    self.apply(fx).await;
                    Some((LoopEvent::Result, started))
                }
                Some(()) = reloads.recv() => {
                    // Let a burst of file events settle, then load once.
                    settle_at.get_or_insert_with(|| tokio::time::Instant::now() + reload::SETTLE);
                    None
                }
                () = sleep_until_opt(settle_at) => {
                    settle_at = None;
                    // Read and validate off the loop: pod events and results keep flowing
                    // while a large set loads. A change seen during a load is loaded after it.
                    if loading {
                        again = true;
                    } else {
                        loading = true;
                        self.start_load(loaded_tx.clone());
                    }
                    None
                }
                Some(loaded) = loaded_rx.recv() => {
                    let started = Instant::now();
                    let fx = self.state.on_reload(loaded, now_ms() as f64 / 1000.0);
                    self.apply(fx).await;
                    loading = again;
                    if again {
                        again = false;
                        self.start_load(loaded_tx.clone());
                    }
                    Some((LoopEvent::Reload, started))
                }
                _ = tick.tick() => {
                    let started = Instant::now();
                    self.health.beat();
                    turns += 1;
                    if turns.is_multiple_of(5) {
                        let alive = tokio::runtime::Handle::current().metrics().num_alive_tasks();
                        self.state.refresh_gauges(alive);
                    }
                    Some((LoopEvent::Tick, started))
                }
            };
            if let Some((event, started)) = woke {
                self.shared
                    .metrics
                    .controller_turn(event, started.elapsed());
            }
        }
        self.tasks.clear();
        for t in self.batch_tasks.drain(..) {
            t.abort();
        }
        info!("controller stopped");
    }

    async fn send(&self, updates: Vec<GateUpdate>) {
        for u in updates {
            if self.updates.send(u).await.is_err() {
                warn!("the writer has stopped; gate update dropped");
            }
        }
    }

    /// Carries out what the state asked for: the writer first, then the rules' consumers,
    /// then the pod tasks.
    async fn apply(&mut self, fx: Effects) {
        self.send(fx.updates).await;
        if fx.rules_swapped {
            if let Some(tx) = &self.published {
                tx.send_replace(self.state.rules().clone());
            }
            for t in self.batch_tasks.drain(..) {
                t.abort();
            }
            self.batch_tasks = promql::spawn_batches(&self.shared, &self.state.rules().rules);
        }
        for change in fx.tasks {
            match change {
                TaskChange::Start(cfg) => {
                    let key = cfg.key.clone();
                    let (tx, rx) = watch::channel(cfg);
                    let handle =
                        tokio::spawn(pod::run(self.shared.clone(), rx, self.results_tx.clone()));
                    self.tasks.insert(key, PodTask { config: tx, handle });
                }
                TaskChange::Reconfigure(cfg) => {
                    if let Some(task) = self.tasks.get(&cfg.key) {
                        let _ = task.config.send(cfg);
                    }
                }
                TaskChange::Stop(key) => {
                    self.tasks.remove(&key);
                }
            }
        }
    }

    /// Loads the rules directory on a blocking thread and sends the outcome to the loop.
    fn start_load(&self, tx: mpsc::Sender<Result<RuleSet, ReloadError>>) {
        let dir = self.rules_dir.clone();
        let in_force = self.state.rules().len();
        tokio::spawn(async move {
            let loaded = tokio::task::spawn_blocking(move || reload::reload(&dir, in_force))
                .await
                .unwrap_or_else(|e| Err(ReloadError::Aborted(e.to_string())));
            let _ = tx.send(loaded).await;
        });
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
