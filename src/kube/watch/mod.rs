//! Watching pods: what podgate knows about each pod, kept as plain data.
//!
//! One kube-runtime watcher on pods per scope (all namespaces, or one per `--namespace`,
//! optionally only `spec.nodeName=<node>`), plus a metadata-only watcher on namespaces for the
//! override annotation. Each pod is reduced at once to a [`PodSnapshot`] (no Kubernetes types,
//! no managedFields, only the fields podgate uses); those are all that is kept in memory.
//!
//! The controller receives [`PodEvent`]s over a channel: an `Upsert` when a pod appears or a
//! field podgate uses changes (status churn podgate does not read is filtered out), a
//! `Delete` when it goes away or starts terminating, and `Synced` once, after the first
//! complete list of every scope. Re-lists (watch expired, 410 Gone) are kube-runtime's, with
//! its default backoff, plus one it lacks: a watch the API server refuses to start with 410
//! also re-lists (see [`relisting_watcher`]). Pods that vanished during a gap are reported
//! deleted when the re-list completes; each re-list is logged ("pods re-listed").

use std::collections::BTreeSet;
use std::time::Duration;

use ::kube::Client;
use ::kube::api::{Api, PartialObjectMeta};
use ::kube::runtime::watcher::{self, Event};
use ::kube::runtime::{WatchStreamExt, watcher as run_watcher};
use futures::stream::{BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use tokio::sync::mpsc;

mod snapshot;
mod store;

pub use snapshot::{
    CONTAINERS_READY, PATH_ANNOTATION, PORT_ANNOTATION, PodEvent, PodSnapshot, override_annotated,
    pod_snapshot,
};
use store::Store;

/// Which pods to watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchScope {
    /// Namespaces to watch, one watcher each; empty means all namespaces.
    pub namespaces: Vec<String>,
    /// Node-local mode: only pods with `spec.nodeName` equal to this.
    pub node_name: Option<String>,
}

type PodStream = BoxStream<'static, (usize, Result<Event<Pod>, watcher::Error>)>;

/// Watches pods and namespaces and feeds the controller.
pub struct PodWatcher {
    client: Client,
    scope: WatchScope,
}

impl PodWatcher {
    pub fn new(client: Client, scope: WatchScope) -> PodWatcher {
        PodWatcher { client, scope }
    }

    /// Runs until `events` is closed. API errors are logged and retried (kube-runtime's
    /// default backoff); they never end the watch.
    ///
    /// Pods are reported only after the namespaces have been listed once, so a pod in a
    /// namespace with the override annotation is never first reported without it.
    pub async fn run(self, events: mpsc::Sender<PodEvent>) {
        let mut store = Store::default();
        let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(self.client.clone());
        let mut ns_stream = relisting_watcher(namespaces, watcher::Config::default());

        // Namespaces first: the override annotation must be known before any pod is reported.
        loop {
            let Some(item) = next_or_closed(&mut ns_stream, &events).await else {
                return;
            };
            match item {
                Ok(event) => {
                    let done = matches!(event, Event::InitDone);
                    store.namespace_event(event);
                    if done {
                        break;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "watching namespaces (retrying)"),
            }
        }

        let mut pods = self.pod_streams();
        let mut unsynced: BTreeSet<usize> = (0..pods.len()).collect();
        loop {
            let out = tokio::select! {
                _ = events.closed() => return,
                item = ns_stream.next() => match item {
                    Some(Ok(event)) => store.namespace_event(event),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "watching namespaces (retrying)");
                        Vec::new()
                    }
                    // A watcher stream never ends on its own.
                    None => return,
                },
                item = pods.next() => match item {
                    Some((scope, Ok(event))) => {
                        let done = matches!(event, Event::InitDone);
                        let mut out = store.pod_event(scope, event);
                        if done && unsynced.remove(&scope) {
                            if unsynced.is_empty() {
                                out.push(PodEvent::Synced);
                            }
                        } else if done {
                            // After a 410 Gone (or any watch the API server could not
                            // resume): the cache was rebuilt from a fresh list.
                            tracing::info!(
                                scope = %self.scope_name(scope),
                                pods = store.pods_in(scope),
                                gone = out.len(),
                                "pods re-listed"
                            );
                        }
                        out
                    }
                    Some((scope, Err(e))) => {
                        tracing::warn!(
                            error = %e,
                            scope = %self.scope_name(scope),
                            "watching pods (retrying)"
                        );
                        Vec::new()
                    }
                    None => return,
                },
            };
            for event in out {
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
    }

    fn config(&self) -> watcher::Config {
        let config = watcher::Config::default();
        match &self.scope.node_name {
            Some(node) => config.fields(&format!("spec.nodeName={node}")),
            None => config,
        }
    }

    fn namespaces(&self) -> Vec<String> {
        let unique: BTreeSet<&String> = self.scope.namespaces.iter().collect();
        unique.into_iter().cloned().collect()
    }

    fn scope_name(&self, scope: usize) -> String {
        self.namespaces()
            .get(scope)
            .map(|n| format!("namespace {n}"))
            .unwrap_or_else(|| "all namespaces".to_string())
    }

    fn pod_streams(&self) -> SelectAll<PodStream> {
        let apis: Vec<Api<Pod>> = if self.scope.namespaces.is_empty() {
            vec![Api::all(self.client.clone())]
        } else {
            self.namespaces()
                .iter()
                .map(|n| Api::namespaced(self.client.clone(), n))
                .collect()
        };
        let streams = apis.into_iter().enumerate().map(|(i, api)| {
            relisting_watcher(api, self.config())
                .map(move |e| (i, e))
                .boxed()
        });
        futures::stream::select_all(streams)
    }
}

/// Whether a watcher error is the API server refusing to start a watch with 410 Gone: the
/// resourceVersion the watcher holds is too old (compacted) and only a fresh list helps.
fn watch_start_gone(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchStartFailed(::kube::Error::Api(s)) if s.code == 410)
}

/// Delay before re-listing after the `n`th 410 on a watch's start in a row.
fn relist_delay(n: u32) -> Duration {
    crate::kube::write::backoff_delay(n, Duration::from_millis(500), Duration::from_secs(30))
}

/// kube-runtime's watcher with its default backoff, which re-lists when a watch *ends* with
/// 410 Gone, but when the API server refuses to *start* a watch with 410 it keeps retrying
/// from the same expired resourceVersion forever, and the cache never changes again. On that
/// error this starts a new watcher (its first step is a fresh list), after a backoff that
/// grows while the refusals go on and resets once the new watch delivers an event. Every
/// error is passed on, for the caller to log.
fn relisting_watcher<K>(api: Api<K>, config: watcher::Config) -> WatchStream<K>
where
    K: ::kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    struct St<K: 'static> {
        api: Api<K>,
        config: watcher::Config,
        inner: WatchStream<K>,
        refusals: u32,
        relist: bool,
    }
    fn start<K>(api: &Api<K>, config: &watcher::Config) -> WatchStream<K>
    where
        K: ::kube::Resource
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + 'static,
    {
        run_watcher(api.clone(), config.clone())
            .default_backoff()
            .boxed()
    }
    let inner = start(&api, &config);
    let st = St {
        api,
        config,
        inner,
        refusals: 0,
        relist: false,
    };
    futures::stream::unfold(st, |mut st| async move {
        if st.relist {
            st.relist = false;
            tokio::time::sleep(relist_delay(st.refusals)).await;
            st.inner = start(&st.api, &st.config);
        }
        let item = st.inner.next().await?;
        match &item {
            Err(e) if watch_start_gone(e) => {
                st.refusals = st.refusals.saturating_add(1);
                st.relist = true;
            }
            Ok(Event::Apply(_) | Event::Delete(_)) => st.refusals = 0,
            _ => {}
        }
        Some((item, st))
    })
    .boxed()
}

type WatchStream<K> = BoxStream<'static, Result<Event<K>, watcher::Error>>;

/// The next item of `stream`, or `None` when it ends or nobody listens any more.
async fn next_or_closed<S: Stream + Unpin>(
    stream: &mut S,
    events: &mpsc::Sender<PodEvent>,
) -> Option<S::Item> {
    tokio::select! {
        _ = events.closed() => None,
        item = stream.next() => item,
    }
}

#[cfg(test)]
mod tests;
