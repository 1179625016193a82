//! Why `podgate run` could not start: each message says what to fix (a flag, a rule file, a
//! credentials or certificate file, the cluster connection). The one-shot commands share its
//! `Runtime` case.

use std::path::PathBuf;

use crate::kube::KubeError;
use crate::reload::ReloadError;
use crate::rules::RulesError;
use crate::source::http::HttpClientError;
use crate::source::prometheus::PromConfigError;
use crate::webhook;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A startup task on the blocking pool panicked or was cancelled.
    #[error("a startup task failed: {0}")]
    Startup(String),
    #[error("rules in {} are invalid, not starting:\n{source}", .dir.display())]
    Rules {
        dir: PathBuf,
        #[source]
        source: RulesError,
    },
    /// Flags that do not go together or do not parse.
    #[error("{0}")]
    Flags(String),
    #[error(transparent)]
    Prometheus(#[from] PromConfigError),
    #[error(transparent)]
    Scrape(#[from] HttpClientError),
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error(transparent)]
    Reload(#[from] ReloadError),
    #[error(transparent)]
    Webhook(#[from] webhook::Error),
}
