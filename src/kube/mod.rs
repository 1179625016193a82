//! The Kubernetes side of the daemon: everything that talks to the API server.
//!
//! - [`client`] builds the API client (`--kubeconfig`, in-cluster, `$KUBECONFIG`).
//! - [`watch`] watches pods (and namespaces, for the override annotation) and hands the
//!   controller plain [`PodSnapshot`]s; no Kubernetes type leaves this module. The snapshot
//!   and the store it keeps are pure (`watch/snapshot.rs`, `watch/store.rs`); the streams are
//!   in `watch/mod.rs`.
//! - [`write`] is the one writer of gate conditions (`pods/status`), with coalescing, retries
//!   and a "may write" switch; it emits the [`events`] of status transitions. What to write
//!   (`write/plan.rs`) and the retry queue (`write/queue.rs`) are pure; the patching is in
//!   `write/mod.rs`.
//! - [`lease`] is leader election on a `coordination.k8s.io` Lease; [`lease::may_write`] is
//!   the rule of who may write.
//!
//! The external crate is `::kube`; this module is `crate::kube`.

pub mod client;
pub mod events;
pub mod lease;
pub mod watch;
pub mod write;

pub use client::connect;
pub use events::EventRecorder;
pub use lease::{LeaderElection, LeaseConfig};
pub use watch::{PodEvent, PodSnapshot, PodWatcher, WatchScope, pod_snapshot};
pub use write::{WriteObserver, WriteResult, Writer, WriterConfig};

/// What can go wrong in the Kubernetes layer. Each variant says what podgate was doing.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No usable client configuration (kubeconfig file, in-cluster environment).
    #[error("Kubernetes client configuration: {0}")]
    Config(String),
    /// A request to the API server failed.
    #[error("{context}: {source}")]
    Api {
        context: String,
        #[source]
        source: ::kube::Error,
    },
    /// Leader election could not start or stop.
    #[error("leader election on Lease {lease}: {source}")]
    Lease {
        lease: String,
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
    /// A setting is out of range.
    #[error("{0}")]
    Invalid(String),
}
