//! The one writer of gate conditions.
//!
//! [`Writer::run`] receives [`GateUpdate`]s and writes each to the pod's `pods/status` with a
//! strategic-merge patch that touches only that condition (conditions merge on `type`, so
//! the kubelet's stay as they are) and carries the pod's uid (`metadata.uid`, immutable, so a
//! pod recreated under the same name rejects it). Before writing it reads the live pod: a
//! condition that already says the same is not written again (steady state costs no write),
//! `lastTransitionTime` moves only when the status changes, and an update for another uid than
//! the live pod's is dropped.
//!
//! Per (pod, gate) only the latest desired condition is kept. A failed write (conflict,
//! server error, timeout, API down) is retried with exponential backoff and is never lost
//! while the pod exists; a pod that is gone (404, other uid) drops it. Writes happen only
//! while the "may write" flag is true (leader, not dry run); meanwhile updates are held and
//! coalesced, and flushed when it turns true.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ::kube::Client;
use ::kube::api::{Api, Patch, PatchParams};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::events::EventRecorder;
use crate::decision::cap_message;
use crate::decision::engine::{GateUpdate, PodKey};

/// The field manager of podgate's writes.
pub const FIELD_MANAGER: &str = "podgate";

/// How one write attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteResult {
    /// The condition was written.
    Ok,
    /// The live condition already said the same: nothing written.
    Unchanged,
    /// The pod is gone (404) or is another pod under the same name (other uid): dropped.
    Gone,
    /// The API server answered 409 Conflict: retried.
    Conflict,
    /// The API server was unreachable, timed out, or answered an error: retried.
    Error,
    /// The API server rejected the write as invalid (400/422): dropped, retrying cannot help.
    Invalid,
}

impl WriteResult {
    pub const ALL: [WriteResult; 6] = [
        WriteResult::Ok,
        WriteResult::Unchanged,
        WriteResult::Gone,
        WriteResult::Conflict,
        WriteResult::Error,
        WriteResult::Invalid,
    ];

    /// The `result` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteResult::Ok => "ok",
            WriteResult::Unchanged => "unchanged",
            WriteResult::Gone => "gone",
            WriteResult::Conflict => "conflict",
            WriteResult::Error => "error",
            WriteResult::Invalid => "invalid",
        }
    }

    /// Whether the update is tried again.
    pub fn retried(self) -> bool {
        matches!(self, WriteResult::Conflict | WriteResult::Error)
    }
}

/// Told about every write attempt: its result and how long it took (reading the live pod and
/// the patch; not the event that may follow).
pub trait WriteObserver: Send + Sync + 'static {
    fn write_finished(&self, result: WriteResult, duration: Duration);
}

impl<F> WriteObserver for F
where
    F: Fn(WriteResult, Duration) + Send + Sync + 'static,
{
    fn write_finished(&self, result: WriteResult, duration: Duration) {
        self(result, duration)
    }
}

/// Tuning of the writer.
#[derive(Debug, Clone, PartialEq)]
pub struct WriterConfig {
    /// Writes in flight at once (each to a different pod gate).
    pub concurrency: usize,
    /// Deadline of each API request.
    pub request_timeout: Duration,
    /// First retry delay; doubles per failure of the same update up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            concurrency: 8,
            request_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// The delay before retry number `failures` (1 = after the first failure): `initial`
/// doubled per further failure, at most `max`.
pub fn backoff_delay(failures: u32, initial: Duration, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    initial.saturating_mul(1u32 << doublings).min(max)
}

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

type Key = (PodKey, String);

fn key_of(update: &GateUpdate) -> Key {
    (update.pod.clone(), update.condition_type.clone())
}

struct Pending {
    update: GateUpdate,
    failures: u32,
    not_before: Instant,
    seq: u64,
}

/// The writer's bookkeeping, without I/O: the latest desired condition per (pod, gate), when
/// each may next be tried, and which are being written.
struct Queue {
    pending: HashMap<Key, Pending>,
    schedule: BTreeSet<(Instant, u64, Key)>,
    /// Keys being written, with a newer update that arrived meanwhile.
    in_flight: HashMap<Key, Option<GateUpdate>>,
    seq: u64,
    /// API-wide backoff after the server was unreachable or failing.
    global_failures: u32,
    global_not_before: Option<Instant>,
    initial: Duration,
    max: Duration,
}

impl Queue {
    fn new(initial: Duration, max: Duration) -> Queue {
        Queue {
            pending: HashMap::new(),
            schedule: BTreeSet::new(),
            in_flight: HashMap::new(),
            seq: 0,
            global_failures: 0,
            global_not_before: None,
            initial,
            max,
        }
    }

    fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.in_flight.is_empty()
    }

    /// Desired conditions held: waiting to be tried, or arrived while their key was in flight.
    fn len(&self) -> usize {
        self.pending.len() + self.in_flight.values().filter(|n| n.is_some()).count()
    }

    /// Forgets every desired condition not being written (the writer may no longer write). A
    /// writer that may not write holds nothing, so a dry run or a standby does not grow with
    /// pod churn; whoever gains the right to write resynchronises from the decisions.
    fn drop_pending(&mut self) -> usize {
        let dropped = self.len();
        self.pending.clear();
        self.schedule.clear();
        for newer in self.in_flight.values_mut() {
            *newer = None;
        }
        dropped
    }

    /// A new desired condition: replaces any older one for the same (pod, gate), keeping its
    /// backoff (the API's trouble is not the value's).
    fn push(&mut self, update: GateUpdate, now: Instant) {
        let key = key_of(&update);
        if let Some(newer) = self.in_flight.get_mut(&key) {
            *newer = Some(update);
            return;
        }
        if let Some(p) = self.pending.get_mut(&key) {
            p.update = update;
            return;
        }
        self.insert(key, update, 0, now);
    }

    fn insert(&mut self, key: Key, update: GateUpdate, failures: u32, not_before: Instant) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(old) = self.pending.insert(
            key.clone(),
            Pending {
                update,
                failures,
                not_before,
                seq,
            },
        ) {
            self.schedule
                .remove(&(old.not_before, old.seq, key.clone()));
        }
        self.schedule.insert((not_before, seq, key));
    }

    /// When the next pending update may be tried (None: nothing pending).
    fn next_due(&self) -> Option<Instant> {
        let first = self.schedule.first().map(|(at, _, _)| *at)?;
        Some(match self.global_not_before {
            Some(g) if g > first => g,
            _ => first,
        })
    }

    /// Takes the next update that may be tried at `now`, marking it in flight.
    fn take_due(&mut self, now: Instant) -> Option<(GateUpdate, u32)> {
        if self.global_not_before.is_some_and(|g| g > now) {
            return None;
        }
        let (at, _, key) = self.schedule.first()?.clone();
        if at > now {
            return None;
        }
        self.schedule.pop_first();
        let p = self.pending.remove(&key)?;
        self.in_flight.insert(key, None);
        Some((p.update, p.failures))
    }

    /// Records how writing `update` (tried after `failures` earlier failures) ended.
    fn finish(
        &mut self,
        update: GateUpdate,
        failures: u32,
        result: WriteResult,
        unavailable: bool,
        now: Instant,
    ) {
        let key = key_of(&update);
        let newer = self.in_flight.remove(&key).flatten();
        if unavailable {
            self.global_failures = self.global_failures.saturating_add(1);
            self.global_not_before =
                Some(now + backoff_delay(self.global_failures, self.initial, self.max));
        } else {
            self.global_failures = 0;
            self.global_not_before = None;
        }
        if result.retried() {
            let failures = failures.saturating_add(1);
            let at = now + backoff_delay(failures, self.initial, self.max);
            self.insert(key, newer.unwrap_or(update), failures, at);
        } else if let Some(newer) = newer {
            self.insert(key, newer, 0, now);
        }
    }
}

/// How one attempt ended, for the queue and the observer.
struct Attempted {
    update: GateUpdate,
    failures: u32,
    result: WriteResult,
    /// The failure says the API server is unreachable or failing (not this pod's problem).
    unavailable: bool,
    duration: Duration,
}

struct Context {
    client: Client,
    events: Option<EventRecorder>,
    timeout: Duration,
}

/// The gate condition writer. Build with [`Writer::new`], then [`Writer::run`] it.
pub struct Writer {
    client: Client,
    events: Option<EventRecorder>,
    config: WriterConfig,
    may_write: watch::Receiver<bool>,
    observer: Option<Arc<dyn WriteObserver>>,
    queue_observer: Option<Box<dyn Fn(usize) + Send + Sync>>,
}

impl Writer {
    /// A writer that writes only while `may_write` holds true. A closed channel keeps its last
    /// value.
    pub fn new(client: Client, may_write: watch::Receiver<bool>) -> Writer {
        Writer {
            client,
            events: None,
            config: WriterConfig::default(),
            may_write,
            observer: None,
            queue_observer: None,
        }
    }

    /// Told how many desired conditions the writer holds, whenever that may have changed.
    pub fn with_queue_observer(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Writer {
        self.queue_observer = Some(Box::new(f));
        self
    }

    pub fn with_config(mut self, config: WriterConfig) -> Writer {
        self.config = config;
        self
    }

    /// Records a `GateTrue`/`GateFalse` event after each write that changed a gate's status.
    pub fn with_events(mut self, events: EventRecorder) -> Writer {
        self.events = Some(events);
        self
    }

    pub fn with_observer(mut self, observer: impl WriteObserver) -> Writer {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Writes the updates received on `updates` until that channel is closed and every
    /// pending update is written or dropped. Once closed, it returns as soon as it may not
    /// write (pending updates are then logged and dropped); while it may, it keeps retrying,
    /// so bound a shutdown with a timeout.
    ///
    /// While it may not write it holds nothing: updates are dropped as they arrive and the
    /// queue is emptied when the right to write is lost. The controller sends every gate that
    /// differs from the API when the right to write is gained (`Engine::resync`).
    pub async fn run(self, mut updates: mpsc::Receiver<GateUpdate>) {
        let Writer {
            client,
            events,
            config,
            mut may_write,
            observer,
            queue_observer,
        } = self;
        let ctx = Arc::new(Context {
            client,
            events,
            timeout: config.request_timeout,
        });
        let concurrency = config.concurrency.max(1);
        let mut queue = Queue::new(config.backoff_initial, config.backoff_max);
        let mut tasks: FuturesUnordered<BoxFuture<'static, Attempted>> = FuturesUnordered::new();
        let mut open = true;
        let mut flag_open = true;
        loop {
            let allowed = *may_write.borrow_and_update();
            if !allowed && queue.len() > 0 {
                let dropped = queue.drop_pending();
                tracing::debug!(dropped, "not allowed to write: desired conditions dropped");
            }
            if let Some(f) = &queue_observer {
                f(queue.len());
            }
            if allowed {
                let now = Instant::now();
                while tasks.len() < concurrency {
                    let Some((update, failures)) = queue.take_due(now) else {
                        break;
                    };
                    tasks.push(Box::pin(attempt(ctx.clone(), update, failures)));
                }
            }
            if !open && queue.is_idle() {
                return;
            }
            if !open && !allowed && tasks.is_empty() {
                tracing::warn!(
                    pending = queue.pending.len(),
                    "stopping without writing the pending gate conditions: not allowed to write"
                );
                return;
            }
            // With every slot taken, the next wake-up is a write finishing, not a due time.
            let due = if allowed && tasks.len() < concurrency {
                queue.next_due()
            } else {
                None
            };
            tokio::select! {
                update = updates.recv(), if open => match update {
                    // The flag as it is now: the controller resyncs only after it turned true.
                    Some(u) if *may_write.borrow() => queue.push(u, Instant::now()),
                    Some(_) => {}
                    None => open = false,
                },
                Some(done) = tasks.next(), if !tasks.is_empty() => {
                    if let Some(o) = &observer {
                        o.write_finished(done.result, done.duration);
                    }
                    queue.finish(
                        done.update,
                        done.failures,
                        done.result,
                        done.unavailable,
                        Instant::now(),
                    );
                }
                changed = may_write.changed(), if flag_open => {
                    if changed.is_err() {
                        flag_open = false;
                    }
                }
                _ = sleep_until_opt(due) => {}
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One try at writing `update`: read the live pod, decide, patch, then the event.
async fn attempt(ctx: Arc<Context>, update: GateUpdate, failures: u32) -> Attempted {
    let started = Instant::now();
    let (result, unavailable) = write_once(&ctx, &update).await;
    let duration = started.elapsed();
    let (result, status_changed) = match result {
        Ok(changed) => (
            if changed.is_some() {
                WriteResult::Ok
            } else {
                WriteResult::Unchanged
            },
            changed == Some(true),
        ),
        Err(r) => (r, false),
    };
    if status_changed && let Some(events) = &ctx.events {
        // An event is best effort: the condition is what matters, and it is written.
        let record = events.gate_transition(
            &update.pod,
            &update.uid,
            &update.condition_type,
            &update.condition,
        );
        match tokio::time::timeout(ctx.timeout, record).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "gate transition event not recorded"),
            Err(_) => tracing::warn!(
                gate = %update.condition_type,
                pod = %update.pod,
                "gate transition event not recorded: timed out"
            ),
        }
    }
    Attempted {
        update,
        failures,
        result,
        unavailable,
        duration,
    }
}

/// `Ok(None)`: unchanged; `Ok(Some(status_changed))`: written; `Err(result)` otherwise. The
/// flag says whether a failure means the API server is unavailable.
async fn write_once(
    ctx: &Context,
    update: &GateUpdate,
) -> (Result<Option<bool>, WriteResult>, bool) {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &update.pod.namespace);
    let what = || format!("{} on pod {}", update.condition_type, update.pod);
    let live = match tokio::time::timeout(ctx.timeout, pods.get(&update.pod.name)).await {
        Err(_) => {
            tracing::warn!(gate = %what(), timeout = ?ctx.timeout, "reading the pod timed out (retrying)");
            return (Err(WriteResult::Error), true);
        }
        Ok(Err(e)) => return classify(&e, &what(), "reading the pod"),
        Ok(Ok(pod)) => pod,
    };
    let current = live
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == update.condition_type));
    let (patch, status_changed) = match plan(
        live.metadata.uid.as_deref(),
        current,
        update,
        Timestamp::now(),
    ) {
        Plan::OtherPod => {
            tracing::debug!(gate = %what(), uid = %update.uid, "pod was replaced: update dropped");
            return (Err(WriteResult::Gone), false);
        }
        Plan::Unchanged => return (Ok(None), false),
        Plan::Write {
            patch,
            status_changed,
        } => (patch, status_changed),
    };
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    let patch = Patch::Strategic(&patch);
    let request = pods.patch_status(&update.pod.name, &params, &patch);
    match tokio::time::timeout(ctx.timeout, request).await {
        Err(_) => {
            tracing::warn!(gate = %what(), timeout = ?ctx.timeout, "writing the condition timed out (retrying)");
            (Err(WriteResult::Error), true)
        }
        Ok(Err(e)) => classify(&e, &what(), "writing the condition"),
        Ok(Ok(_)) => {
            tracing::debug!(
                gate = %what(),
                status = update.condition.status_str(),
                reason = update.condition.reason.as_str(),
                "condition written"
            );
            (Ok(Some(status_changed)), false)
        }
    }
}

/// Sorts an API failure into dropped or retried, and logs it.
fn classify(
    e: &::kube::Error,
    what: &str,
    doing: &str,
) -> (Result<Option<bool>, WriteResult>, bool) {
    match e {
        ::kube::Error::Api(s) if s.code == 404 => {
            tracing::debug!(gate = %what, "pod is gone: update dropped");
            (Err(WriteResult::Gone), false)
        }
        // The uid in the patch is immutable: the pod was replaced since it was read.
        ::kube::Error::Api(s)
            if s.code == 422
                && s.details
                    .as_ref()
                    .is_some_and(|d| d.causes.iter().any(|c| c.field == "metadata.uid")) =>
        {
            tracing::debug!(gate = %what, "pod was replaced: update dropped");
            (Err(WriteResult::Gone), false)
        }
        ::kube::Error::Api(s) if s.code == 400 || s.code == 422 => {
            tracing::error!(gate = %what, error = %s.message, "{doing}: rejected as invalid; update dropped");
            (Err(WriteResult::Invalid), false)
        }
        ::kube::Error::Api(s) if s.code == 409 => {
            tracing::debug!(gate = %what, error = %s.message, "{doing}: conflict (retrying)");
            (Err(WriteResult::Conflict), false)
        }
        ::kube::Error::Api(s) => {
            let unavailable = s.code >= 500 || s.code == 429;
            tracing::warn!(gate = %what, code = s.code, error = %s.message, "{doing} failed (retrying)");
            (Err(WriteResult::Error), unavailable)
        }
        other => {
            tracing::warn!(gate = %what, error = %other, "{doing} failed (retrying)");
            (Err(WriteResult::Error), true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
