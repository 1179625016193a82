//! `promql:` variables in the controller: batched queries (one per rule per interval, joined
//! to pods by the namespace and pod labels) and templated ones (one per pod).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tracing::warn;

use super::batches::Batch;
use super::messages::PodConfig;
use super::shared::Shared;
use crate::evaluate::VarResult;
use crate::query::Template;
use crate::rules::{Rule, Var, VarSource};
use crate::source::prometheus::{PodFacts, PrometheusClient};
use crate::time::{millis as ms, now_ms};

/// The rule's batched variables, each with its query.
fn batched_vars(rule: &Rule) -> impl Iterator<Item = (&Var, &Template)> {
    rule.vars.iter().filter_map(|v| match &v.source {
        VarSource::Promql(t) if t.is_batched() => Some((v, t)),
        VarSource::Promql(_) | VarSource::Scrape(_) | VarSource::Peers(_) => None,
    })
}

/// Starts one task per rule with batched variables: each interval it runs every batched
/// query of the rule once, whatever the number of pods.
pub fn spawn_batches(shared: &Arc<Shared>, rules: &[Arc<Rule>]) -> Vec<JoinHandle<()>> {
    let Some(client) = shared.prometheus.clone() else {
        return Vec::new();
    };
    shared.batches.retain_rules(rules);
    rules
        .iter()
        .filter(|r| batched_vars(r).next().is_some())
        .map(|rule| {
            let (shared, client, rule) = (shared.clone(), client.clone(), rule.clone());
            tokio::spawn(async move { batch_loop(shared, client, rule).await })
        })
        .collect()
}

async fn batch_loop(shared: Arc<Shared>, client: Arc<PrometheusClient>, rule: Arc<Rule>) {
    let mut tick = tokio::time::interval(rule.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (v, template) in batched_vars(&rule) {
            let permit = shared.permits.acquire().await;
            let result = client
                .query_batched(template, &rule.prometheus, rule.timeout)
                .await;
            drop(permit);
            let result = match result {
                Ok(joined) => Ok(Arc::new(joined)),
                Err(e) => {
                    warn!(rule = %rule.name, var = %v.name, error = %e, "batched query failed");
                    Err(e)
                }
            };
            shared.batches.set(
                &rule.name,
                &v.name,
                Batch {
                    at_ms: now_ms(),
                    result,
                },
            );
        }
    }
}

/// The `promql:` values of one rule for one pod, handed out as the evaluation asks.
#[derive(Debug, Default)]
pub struct PromqlValues {
    values: HashMap<String, VarResult>,
    /// A batched query has not answered yet: evaluate a little later rather than call it
    /// "no data" (which could flip gates at startup).
    pub pending: bool,
}

impl PromqlValues {
    pub fn take(&mut self, var: &Var) -> VarResult {
        self.values
            .remove(&var.name)
            .unwrap_or_else(|| VarResult::Error(format!("no value was fetched for {}", var.name)))
    }
}

/// Fetches (templated) or looks up (batched) every `promql:` variable of `rule` for a pod.
pub async fn values_for(shared: &Shared, rule: &Rule, pod: &PodConfig) -> PromqlValues {
    let mut out = PromqlValues::default();
    let used = rule.expr.variables();
    for v in rule.vars.iter().filter(|v| used.contains(&v.name)) {
        let VarSource::Promql(template) = &v.source else {
            continue;
        };
        let Some(client) = &shared.prometheus else {
            out.values.insert(
                v.name.clone(),
                VarResult::Error(
                    "no Prometheus server configured: run podgate with --prometheus-url".into(),
                ),
            );
            continue;
        };
        let value = if template.is_batched() {
            match shared.batches.get(&rule.name, &v.name) {
                None => {
                    out.pending = true;
                    continue;
                }
                Some(b) => batched_value(rule, &b, pod),
            }
        } else {
            let ip = pod.target.ip.to_string();
            let facts = PodFacts {
                name: &pod.key.name,
                namespace: &pod.key.namespace,
                node: pod.node.as_deref(),
                pod_ip: Some(&ip),
                labels: &pod.labels,
            };
            let permit = shared.permits.acquire().await;
            let r = client.query_for_pod(template, &facts, rule.timeout).await;
            drop(permit);
            match r {
                Ok(Some(x)) => VarResult::Value(x),
                Ok(None) => VarResult::NoData("the query returned no series".into()),
                Err(e) => VarResult::Error(e.to_string()),
            }
        };
        out.values.insert(v.name.clone(), value);
    }
    out
}

fn batched_value(rule: &Rule, b: &Batch, pod: &PodConfig) -> VarResult {
    let age = now_ms().saturating_sub(b.at_ms);
    let stale_after = 2 * ms(rule.interval) + ms(rule.timeout);
    if age > stale_after {
        return VarResult::Error(format!(
            "the batched query's last result is {}s old",
            age / 1000
        ));
    }
    match &b.result {
        Err(e) => VarResult::Error(e.to_string()),
        Ok(joined) => match joined.get(&pod.key.namespace, &pod.key.name) {
            Ok(Some(x)) => VarResult::Value(x),
            Ok(None) => VarResult::NoData(format!("no series for {} in the result", pod.key)),
            Err(dup) => VarResult::Error(dup.to_string()),
        },
    }
}
