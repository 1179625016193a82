//! The daemon's controller: the loop that owns the decision engine.
//!
//! Inputs arrive on channels — pod events from the watcher, evaluation results from the pod
//! tasks, reload triggers — and are handled one at a time, so the engine needs no lock.
//! Gate updates go out on one channel to the single writer, which writes only while it may
//! (leader, not dry run).

pub mod peers;
pub mod pod;
pub mod promql;
pub mod target;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::decision::engine::{Engine, GateUpdate, PodKey};
use crate::kube::watch::{PodEvent, PodSnapshot};
use crate::query::StoreLimits;
use crate::rules::Scheme;
use crate::rules::{RuleSet, reload};
use crate::source::prometheus::PrometheusClient;
use crate::telemetry::metrics::{LoopEvent, Metrics};
use crate::telemetry::server::{Health, now_ms};

use pod::{EvalMsg, PodConfig};
use target::{Endpoint, Target};

/// Limits and knobs of the controller.
#[derive(Debug, Clone)]
pub struct Settings {
    pub rules_dir: PathBuf,
    /// Concurrent scrapes and queries across all pods.
    pub concurrency: usize,
    pub body_limit: usize,
    pub sample_limit: usize,
    pub store_limits: StoreLimits,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rules_dir: PathBuf::from("/etc/podgate/rules"),
            concurrency: 256,
            body_limit: crate::source::scrape::DEFAULT_BODY_LIMIT,
            sample_limit: 50_000,
            store_limits: StoreLimits::default(),
        }
    }
}

/// Sent with every scrape, so a pod's logs and access metrics can tell podgate's scrapes
/// from Prometheus's.
const USER_AGENT: &str = concat!("podgate/", env!("CARGO_PKG_VERSION"));

/// HTTP clients for scraping: one for plain http and system-trusted https, one per custom
/// TLS setting.
pub struct HttpClients {
    default: reqwest::Client,
    custom: Mutex<HashMap<(Option<PathBuf>, bool), reqwest::Client>>,
}

impl HttpClients {
    pub fn new() -> Result<HttpClients, String> {
        crate::source::init_tls();
        // No idle connections between scrapes: an idle HTTP/1 connection holds about 50 KiB
        // of buffers, which over 10,000 pods would be most of podgate's memory; a new
        // connection per scrape costs little CPU next to the scrape itself (docs/scaling.md).
        let default = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(HttpClients {
            default,
            custom: Mutex::new(HashMap::new()),
        })
    }

    /// The client for `ep`. A custom TLS setting's client is built once; its CA file is
    /// read asynchronously and with no lock held.
    pub async fn for_endpoint(&self, ep: &Endpoint) -> Result<reqwest::Client, String> {
        if ep.scheme == Scheme::Http || (ep.ca_file.is_none() && !ep.insecure_skip_verify) {
            return Ok(self.default.clone());
        }
        let key = (ep.ca_file.clone(), ep.insecure_skip_verify);
        let cached = self
            .custom
            .lock()
            .map_err(|_| "HTTP client cache poisoned".to_string())?
            .get(&key)
            .cloned();
        if let Some(c) = cached {
            return Ok(c);
        }
        let mut b = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .pool_max_idle_per_host(0);
        if let Some(ca) = &ep.ca_file {
            let pem = tokio::fs::read(ca)
                .await
                .map_err(|e| format!("scrape.caFile {}: {e}", ca.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("scrape.caFile {}: {e}", ca.display()))?;
            b = b.add_root_certificate(cert);
        }
        if ep.insecure_skip_verify {
            b = b.danger_accept_invalid_certs(true);
        }
        let c = b.build().map_err(|e| format!("HTTP client: {e}"))?;
        // Two scrapes may have built one each: the first stored is kept.
        let mut cache = self
            .custom
            .lock()
            .map_err(|_| "HTTP client cache poisoned".to_string())?;
        Ok(cache.entry(key).or_insert(c).clone())
    }
}

/// What pod tasks share.
pub struct Shared {
    pub metrics: Metrics,
    pub http: HttpClients,
    pub permits: Semaphore,
    pub body_limit: usize,
    pub sample_limit: usize,
    pub store_limits: StoreLimits,
    /// The Prometheus source, when configured.
    pub prometheus: Option<Arc<PrometheusClient>>,
    pub batches: promql::Batches,
    /// Every pod's latest values, for `peers:` variables.
    pub peers: peers::SharedPeers,
}

struct PodTask {
    config: watch::Sender<Arc<PodConfig>>,
    handle: JoinHandle<()>,
}

impl Drop for PodTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// The controller loop's state.
pub struct Controller {
    settings: Settings,
    shared: Arc<Shared>,
    health: Arc<Health>,
    engine: Engine,
    rules: RuleSet,
    snapshots: HashMap<PodKey, PodSnapshot>,
    tasks: HashMap<PodKey, PodTask>,
    results_tx: mpsc::Sender<EvalMsg>,
    results_rx: mpsc::Receiver<EvalMsg>,
    updates: mpsc::Sender<GateUpdate>,
    /// Pods carrying a gate no rule owns, logged once each; an entry goes with its pod.
    unowned_logged: HashMap<PodKey, HashSet<String>>,
    /// Whether the writer may write; on gaining it, every gate that differs from the API is
    /// sent again (the writer holds nothing while it may not write).
    may_write: Option<watch::Receiver<bool>>,
    batch_tasks: Vec<JoinHandle<()>>,
    /// Receives every rule set swapped in (the admission webhook reads it).
    published: Option<watch::Sender<RuleSet>>,
}

impl Controller {
    pub fn new(
        settings: Settings,
        rules: RuleSet,
        metrics: Metrics,
        health: Arc<Health>,
        updates: mpsc::Sender<GateUpdate>,
        prometheus: Option<Arc<PrometheusClient>>,
    ) -> Result<Controller, String> {
        let shared = Arc::new(Shared {
            metrics,
            http: HttpClients::new()?,
            permits: Semaphore::new(settings.concurrency.max(1)),
            body_limit: settings.body_limit,
            sample_limit: settings.sample_limit,
            store_limits: settings.store_limits,
            prometheus,
            batches: promql::Batches::default(),
            peers: peers::SharedPeers::default(),
        });
        let (results_tx, results_rx) = mpsc::channel(1024);
        shared
            .metrics
            .reload(true, rules.len(), now_ms() as f64 / 1000.0);
        shared
            .metrics
            .init_rules(rules.rules.iter().map(|r| r.name.as_str()));
        health.set_rules_loaded(true);
        Ok(Controller {
            settings,
            engine: Engine::new(&rules),
            rules,
            shared,
            health,
            snapshots: HashMap::new(),
            tasks: HashMap::new(),
            results_tx,
            results_rx,
            updates,
            unowned_logged: HashMap::new(),
            may_write: None,
            batch_tasks: Vec::new(),
            published: None,
        })
    }

    /// Resynchronises the writer from the decisions whenever `may_write` turns true.
    pub fn resync_on(mut self, may_write: watch::Receiver<bool>) -> Controller {
        self.may_write = Some(may_write);
        self
    }

    /// Sends every rule set this controller swaps in to `tx`, so others act on the rules in
    /// force, never on a rejected set.
    pub fn publish_rules(mut self, tx: watch::Sender<RuleSet>) -> Controller {
        tx.send_replace(self.rules.clone());
        self.published = Some(tx);
        self
    }

    /// Runs until `shutdown` turns true or the pod event channel closes.
    pub async fn run(
        mut self,
        mut pods: mpsc::Receiver<PodEvent>,
        mut reloads: mpsc::Receiver<()>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        self.batch_tasks = promql::spawn_batches(&self.shared, &self.rules.rules);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut turns = 0u64;
        let mut may_write = self.may_write.take();
        let (loaded_tx, mut loaded_rx) = mpsc::channel(1);
        let (mut loading, mut again) = (false, false);
        let mut settle_at: Option<tokio::time::Instant> = None;
        let mut writing = may_write.as_mut().is_some_and(|w| *w.borrow_and_update());
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
                            if now_writing && !writing {
                                let updates = self.engine.resync();
                                info!(gates = updates.len(), "may write now: resyncing the gates that differ from the API");
                                self.send(updates).await;
                            }
                            writing = now_writing;
                        }
                        // The flag's owner is gone: keep its last value.
                        Err(_) => may_write = None,
                    }
                    Some((LoopEvent::Lease, started))
                }
                ev = pods.recv() => match ev {
                    Some(ev) => {
                        let started = Instant::now();
                        self.on_pod_event(ev).await;
                        Some((LoopEvent::Pod, started))
                    }
                    None => break,
                },
                Some(msg) = self.results_rx.recv() => {
                    let started = Instant::now();
                    self.on_result(msg).await;
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
                    self.apply_reload(loaded).await;
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
                        self.refresh_gauges();
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

    async fn on_pod_event(&mut self, ev: PodEvent) {
        match ev {
            PodEvent::Synced => {
                self.health.set_cache_synced(true);
                info!(pods = self.snapshots.len(), "pod cache synced");
            }
            PodEvent::Delete(key) => self.forget(&key),
            PodEvent::Upsert(snap) => {
                if snap.deleting {
                    self.forget(&snap.key);
                    return;
                }
                self.note_unowned(&snap);
                let updates = self.engine.upsert_pod(snap.key.clone(), snap.info.clone());
                self.send(updates).await;
                self.snapshots.insert(snap.key.clone(), snap.clone());
                self.sync_task(&snap.key);
            }
        }
    }

    /// Drops everything kept for a pod that is gone or going.
    fn forget(&mut self, key: &PodKey) {
        self.engine.remove_pod(key);
        self.shared.peers.remove_pod(key);
        self.snapshots.remove(key);
        self.tasks.remove(key);
        self.unowned_logged.remove(key);
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
    fn sync_task(&mut self, key: &PodKey) {
        let Some(snap) = self.snapshots.get(key) else {
            self.tasks.remove(key);
            self.shared.peers.remove_pod(key);
            return;
        };
        // A startup rule done with the pod evaluates it no more.
        let rules = self.engine.rules_to_evaluate(key);
        let (Some(ip), Some(ready_since), false) = (
            snap.pod_ip,
            snap.info.containers_ready_since,
            rules.is_empty() || !snap.evaluable(),
        ) else {
            self.tasks.remove(key);
            self.shared.peers.remove_pod(key);
            return;
        };
        self.shared.peers.sync_pod(snap, &rules);
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
        if let Some(task) = self.tasks.get(key) {
            let same = {
                let cur = task.config.borrow();
                cur.uid == cfg.uid
                    && cur.target == cfg.target
                    && cur.ready_since == cfg.ready_since
                    && cur.labels == cfg.labels
                    && cur.owner == cfg.owner
                    && cur.node == cfg.node
                    && cur.rules.len() == cfg.rules.len()
                    && cur
                        .rules
                        .iter()
                        .zip(&cfg.rules)
                        .all(|(a, b)| Arc::ptr_eq(a, b))
            };
            if same {
                return;
            }
            if task.config.borrow().uid == cfg.uid {
                let _ = task.config.send(cfg);
                return;
            }
        }
        let (tx, rx) = watch::channel(cfg);
        let handle = tokio::spawn(pod::run(self.shared.clone(), rx, self.results_tx.clone()));
        self.tasks
            .insert(key.clone(), PodTask { config: tx, handle });
    }

    async fn on_result(&mut self, msg: EvalMsg) {
        // A result for a pod that has gone, or been replaced under the same name, is stale.
        if self.snapshots.get(&msg.key).map(|s| s.info.uid.as_str()) != Some(msg.uid.as_str()) {
            return;
        }
        let rule = &msg.rule;
        let eval = &msg.result.evaluation;
        self.shared
            .metrics
            .evaluation(&rule.name, eval.outcome.as_str(), msg.took);
        let before = self
            .engine
            .state(&msg.key, &rule.name)
            .and_then(|s| s.verdict().cloned());
        let was_done = self.engine.done(&msg.key, &rule.name);
        let observed = self.engine.observe_for(&msg.key, rule, eval, msg.at_ms);
        let Some(step) = observed.step else {
            return;
        };
        if !was_done && let Some(snap) = self.snapshots.get(&msg.key) {
            self.shared.peers.record(rule, snap, &msg.result, msg.at_ms);
        }
        if step.held_by_panic {
            self.shared.metrics.panic_hold(&rule.name);
        }
        if step.changed {
            let after = self
                .engine
                .state(&msg.key, &rule.name)
                .and_then(|s| s.verdict().cloned());
            if let Some(c) = &after {
                if step.transition {
                    self.shared
                        .metrics
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
            self.send(vec![update]).await;
        }
        if step.changed && self.engine.done(&msg.key, &rule.name) {
            info!(pod = %msg.key, rule = %rule.name, "startup rule done: the pod is no longer evaluated");
            self.sync_task(&msg.key);
        }
    }

    /// Loads the rules directory on a blocking thread and sends the outcome to the loop.
    fn start_load(&self, tx: mpsc::Sender<Result<RuleSet, String>>) {
        let dir = self.settings.rules_dir.clone();
        let in_force = self.rules.len();
        tokio::spawn(async move {
            let loaded = tokio::task::spawn_blocking(move || reload::reload(&dir, in_force))
                .await
                .unwrap_or_else(|e| Err(format!("loading the rules failed: {e}")));
            let _ = tx.send(loaded).await;
        });
    }

    async fn apply_reload(&mut self, loaded: Result<RuleSet, String>) {
        let now = now_ms() as f64 / 1000.0;
        match loaded {
            Ok(set) => {
                let updates = self.engine.set_rules(&set);
                self.shared.peers.reload(&self.rules, &set);
                info!(rules = set.len(), "rules reloaded");
                for w in &set.warnings {
                    warn!("{w}");
                }
                self.rules = set;
                if let Some(tx) = &self.published {
                    tx.send_replace(self.rules.clone());
                }
                self.shared.metrics.reload(true, self.rules.len(), now);
                self.shared
                    .metrics
                    .init_rules(self.rules.rules.iter().map(|r| r.name.as_str()));
                self.health.set_reload_error(None);
                self.send(updates).await;
                for t in self.batch_tasks.drain(..) {
                    t.abort();
                }
                self.batch_tasks = promql::spawn_batches(&self.shared, &self.rules.rules);
                let keys: Vec<PodKey> = self.snapshots.keys().cloned().collect();
                for k in keys {
                    self.sync_task(&k);
                }
            }
            Err(e) => {
                error!(error = %e, "rules rejected; the previous rules stay in force");
                self.shared.metrics.reload(false, self.rules.len(), now);
                self.health.set_reload_error(Some(e));
            }
        }
    }

    fn refresh_gauges(&self) {
        let counts = self.engine.verdict_counts();
        self.shared
            .metrics
            .set_gates(counts.iter().map(|(rule, c)| {
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
        self.shared
            .metrics
            .pods_tracked
            .set(i64::try_from(tracked).unwrap_or(i64::MAX));
        let modes = self.engine.mode_counts();
        self.shared.metrics.set_pods_by_mode(
            modes.continuous,
            modes.startup_evaluating,
            modes.startup_done,
        );
        // A count that only grows while the pods do not is a leak (the soak watches it).
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        self.shared
            .metrics
            .runtime_tasks
            .set(i64::try_from(tasks).unwrap_or(i64::MAX));
        let unowned = self
            .snapshots
            .values()
            .filter(|s| s.info.gates.iter().any(|g| !self.engine.owns(g)))
            .count();
        self.shared
            .metrics
            .pods_unowned_gates
            .set(i64::try_from(unowned).unwrap_or(i64::MAX));
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
