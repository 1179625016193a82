//! The daemon's controller: the loop that owns the decision engine, and the tasks that
//! evaluate pods for it.
//!
//! Inputs arrive on channels — pod events from the watcher, evaluation results from the pod
//! tasks, reload triggers — and are handled one at a time, so the engine needs no lock.
//! Gate updates go out on one channel to the single writer, which writes only while it may
//! (leader, not dry run).
//!
//! - [`state`]: what the loop knows and how each input changes it (no tasks, no clock).
//! - [`event_loop`]: the loop itself, which carries out what the state asks.
//! - [`pod`]: one task per evaluable pod; [`promql`]: `promql:` values, batched or per pod,
//!   the batched ones kept in [`batches`];
//!   [`peers`]: the peer index the loop writes and pod tasks read.
//! - [`messages`]: what the loop and pod tasks send each other; [`shared`]: what the tasks
//!   share; [`target`]: where a rule scrapes a pod.

pub mod batches;
pub mod event_loop;
pub mod messages;
pub mod peers;
pub mod pod;
pub mod promql;
pub mod shared;
pub mod state;
pub mod target;

use std::path::PathBuf;

use crate::query::StoreLimits;

pub use event_loop::{Controller, Inputs};
pub use shared::Shared;

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
