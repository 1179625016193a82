//! Why a command could not do its work: `podgate run` not starting, or a one-shot command
//! (`eval`, `samples`, `test`) not getting its input. Each message says what to fix (a flag, a
//! rule or samples file, a credentials or certificate file, the cluster connection, a pod).

use std::path::PathBuf;

use crate::controller::target::EndpointError;
use crate::exposition::ParseError;
use crate::kube::KubeError;
use crate::reload::ReloadError;
use crate::rules::RulesError;
use crate::ruletest::RuleTestError;
use crate::source::http::HttpClientError;
use crate::source::prometheus::{DuplicateSeries, PromConfigError, PromError};
use crate::source::scrape::ScrapeError;
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
    /// A samples or test file that cannot be read.
    #[error("{}: {source}", .path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("stdin: {0}")]
    ReadStdin(#[source] std::io::Error),
    /// A samples file that is neither protobuf nor UTF-8 text.
    #[error("{}: {source}", .path.display())]
    SamplesBody {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
    #[error(transparent)]
    RuleTest(#[from] RuleTestError),
    #[error("--pod {0:?}: expected NAMESPACE/NAME")]
    PodName(String),
    /// A live pod the API server would not give.
    #[error("pod {pod}: {source}")]
    FetchPod {
        pod: String,
        #[source]
        source: ::kube::Error,
    },
    /// A pod's peers the API server would not list.
    #[error("listing the pods of {namespace}: {source}")]
    ListPeers {
        namespace: String,
        #[source]
        source: ::kube::Error,
    },
    /// A pod the rule cannot scrape: no IP yet.
    #[error("pod {0}: the pod has no IP yet")]
    PodNoIp(String),
    /// A pod the rule cannot scrape: no port or path for it.
    #[error("pod {pod}: {source}")]
    PodEndpoint {
        pod: String,
        #[source]
        source: EndpointError,
    },
    /// A peer whose endpoint was not among those scraped.
    #[error("not scraped")]
    NotScraped,
    #[error(transparent)]
    Fetch(#[from] ScrapeError),
    /// A `promql:` variable Prometheus would not answer.
    #[error("{var}: {source}")]
    Promql {
        var: String,
        #[source]
        source: PromError,
    },
    /// A batched `promql:` variable with more than one series for the pod. Boxed: it names
    /// the series' labels, and every `Result` of this type would carry their size.
    #[error("{var}: {source}")]
    PromqlJoin {
        var: String,
        #[source]
        source: Box<DuplicateSeries>,
    },
}
