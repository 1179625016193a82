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

use std::sync::Arc;
use std::time::Duration;

use ::kube::Client;
use ::kube::api::{Api, Patch, PatchParams};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

mod plan;
mod queue;
mod result;

pub use plan::{Plan, plan, status_patch};
use queue::Queue;
pub use queue::backoff_delay;
pub use result::{WriteObserver, WriteResult};

use super::events::EventRecorder;
use crate::decision::engine::GateUpdate;

/// The field manager of podgate's writes.
pub const FIELD_MANAGER: &str = "podgate";

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
                    pending = queue.waiting(),
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
mod tests;
