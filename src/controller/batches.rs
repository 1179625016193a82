//! The latest result of every batched query, by (rule, variable): written by the batch
//! tasks, read by the pod tasks.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::rules::Rule;
use crate::source::prometheus::{Joined, PromError};

/// The latest result of one batched query.
#[derive(Debug, Clone)]
pub struct Batch {
    pub at_ms: i64,
    pub result: Result<Arc<Joined>, PromError>,
}

/// Batched results by (rule, variable).
#[derive(Debug, Default)]
pub struct Batches {
    latest: RwLock<HashMap<(String, String), Batch>>,
}

impl Batches {
    pub fn set(&self, rule: &str, var: &str, batch: Batch) {
        if let Ok(mut m) = self.latest.write() {
            m.insert((rule.to_string(), var.to_string()), batch);
        }
    }

    pub fn get(&self, rule: &str, var: &str) -> Option<Batch> {
        let m = self.latest.read().ok()?;
        m.get(&(rule.to_string(), var.to_string())).cloned()
    }

    /// Forgets the results of rules that are no longer loaded.
    pub fn retain_rules(&self, rules: &[Arc<Rule>]) {
        if let Ok(mut m) = self.latest.write() {
            m.retain(|(r, _), _| rules.iter().any(|x| &x.name == r));
        }
    }
}
