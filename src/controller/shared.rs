//! What every pod task and batch task shares: the scrape clients and limits, the permits that
//! bound scrapes and queries in flight, the Prometheus source, the latest batched results and
//! the peer index.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::Settings;
use super::batches::Batches;
use super::peers::SharedPeers;
use crate::query::StoreLimits;
use crate::source::http::{HttpClientError, HttpClients};
use crate::source::prometheus::PrometheusClient;
use crate::telemetry::metrics::Metrics;

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
    pub batches: Batches,
    /// Every pod's latest values, for `peers:` variables.
    pub peers: Arc<SharedPeers>,
}

impl Shared {
    pub fn new(
        settings: &Settings,
        metrics: Metrics,
        prometheus: Option<Arc<PrometheusClient>>,
    ) -> Result<Shared, HttpClientError> {
        Ok(Shared {
            metrics,
            http: HttpClients::new()?,
            permits: Semaphore::new(settings.concurrency.max(1)),
            body_limit: settings.body_limit,
            sample_limit: settings.sample_limit,
            store_limits: settings.store_limits,
            prometheus,
            batches: Batches::default(),
            peers: Arc::new(SharedPeers::default()),
        })
    }
}
