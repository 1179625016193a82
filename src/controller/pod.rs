//! One task per evaluable pod: it keeps the pod's scrape history, scrapes each endpoint once
//! per tick for every rule due on it, evaluates the due rules and sends the results to the
//! controller loop, which owns the decisions.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::messages::{EvalMsg, PodConfig};
use super::promql;
use super::shared::Shared;
use super::target::{Endpoint, EndpointError, resolve};
use crate::body;
use crate::decision::cap_message;
use crate::evaluate::{ScrapeInput, evaluate_rule};
use crate::query::{Interest, SeriesStore};
use crate::rules::Rule;
use crate::source::scrape::{self, ScrapeError};
use crate::time::{millis as ms, now_ms};

/// A rule's endpoint, or why it has none.
type Resolved = Result<Endpoint, EndpointError>;

/// What a config means for scraping: each rule's endpoint and what each endpoint's store
/// keeps. Computed when the config changes, not on every tick.
struct ScrapePlan {
    /// Per rule name: `None` when the rule reads no scrape variable.
    endpoints: HashMap<String, Option<Resolved>>,
    interests: HashMap<Endpoint, Interest>,
}

impl ScrapePlan {
    fn of(cfg: &PodConfig) -> ScrapePlan {
        let endpoints: HashMap<String, Option<Resolved>> = cfg
            .rules
            .iter()
            .map(|r| {
                let ep = r.uses_scrape().then(|| resolve(&r.scrape, &cfg.target));
                (r.name.clone(), ep)
            })
            .collect();
        let mut queries: HashMap<Endpoint, Vec<&crate::query::Query>> = HashMap::new();
        for r in &cfg.rules {
            if let Some(Some(Ok(ep))) = endpoints.get(&r.name) {
                queries
                    .entry(ep.clone())
                    .or_default()
                    .extend(r.scrape_queries());
            }
        }
        let interests = queries
            .into_iter()
            .map(|(ep, qs)| (ep, Interest::new(qs)))
            .collect();
        ScrapePlan {
            endpoints,
            interests,
        }
    }

    /// Applies the plan to the stores: new interests, endpoints no rule reads forgotten.
    fn apply(&self, stores: &mut HashMap<Endpoint, EndpointState>) {
        stores.retain(|ep, state| match self.interests.get(ep) {
            Some(interest) => {
                state.store.set_interest(interest.clone());
                true
            }
            None => false,
        });
    }
}

struct EndpointState {
    store: SeriesStore,
    /// The last scrape's error; `None` after a good scrape.
    error: Option<String>,
}

/// A deterministic offset in `[0, interval)` from the pod's uid.
fn spread_offset(uid: &str, interval_ms: i64) -> i64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    uid.hash(&mut h);
    let span = u64::try_from(interval_ms.max(1)).unwrap_or(1);
    i64::try_from(h.finish() % span).unwrap_or(0)
}

/// The first time at or after `after` that falls on the pod's slot: `offset` into a period of
/// `interval` on the wall clock. Every pod has its own slot, so a fleet's evaluations spread
/// over the interval instead of bunching where they started.
fn next_slot(after: i64, offset: i64, interval: i64) -> i64 {
    let interval = interval.max(1);
    let phase = (after - offset).rem_euclid(interval);
    if phase == 0 {
        after
    } else {
        after + interval - phase
    }
}

/// When a rule evaluated at `now` (and due at `due`) is due next: one interval on, on the
/// pod's slot. The first evaluation of a new pod happens at once; the second lands on the slot
/// at least half an interval later, which moves the pod onto its slot for good.
fn next_due(due: i64, now: i64, offset: i64, interval: i64) -> i64 {
    let on_slot = (due - offset).rem_euclid(interval.max(1)) == 0;
    if on_slot && due + interval > now {
        due + interval
    } else {
        next_slot(now + interval / 2, offset, interval)
    }
}

pub async fn run(
    shared: Arc<Shared>,
    mut config: watch::Receiver<Arc<PodConfig>>,
    results: mpsc::Sender<EvalMsg>,
) {
    let mut cfg = config.borrow_and_update().clone();
    let mut plan = ScrapePlan::of(&cfg);
    let mut endpoints: HashMap<Endpoint, EndpointState> = HashMap::new();
    let mut due: HashMap<String, i64> = HashMap::new();
    let mut last_ingest_ms = 0i64;
    loop {
        // (Re)schedule rules that are new to this task.
        let now = now_ms();
        due.retain(|name, _| cfg.rules.iter().any(|r| &r.name == name));
        for r in &cfg.rules {
            due.entry(r.name.clone()).or_insert_with(|| {
                let start = cfg.ready_since.saturating_add(ms(r.initial_delay)).max(now);
                if cfg.spread.contains(&r.name) {
                    let interval = ms(r.interval);
                    next_slot(start, spread_offset(&cfg.uid, interval), interval)
                } else {
                    start
                }
            });
        }
        let next = due.values().copied().min().unwrap_or(now + 60_000);
        let wait = Duration::from_millis(u64::try_from(next - now).unwrap_or(0));
        tokio::select! {
            changed = config.changed() => {
                if changed.is_err() {
                    return; // the controller dropped the pod
                }
                cfg = config.borrow_and_update().clone();
                plan = ScrapePlan::of(&cfg);
                plan.apply(&mut endpoints);
                continue;
            }
            _ = tokio::time::sleep(wait) => {}
        }

        let mut now = now_ms();
        // The store needs strictly increasing scrape times.
        if now <= last_ingest_ms {
            now = last_ingest_ms + 1;
        }
        let due_rules: Vec<Arc<Rule>> = cfg
            .rules
            .iter()
            .filter(|r| due.get(&r.name).is_some_and(|t| *t <= now))
            .cloned()
            .collect();
        if due_rules.is_empty() {
            continue;
        }

        // One scrape per endpoint serves every due rule that reads it.
        let mut resolved: Vec<(Arc<Rule>, Option<&Resolved>)> = Vec::new();
        let mut to_scrape: HashMap<&Endpoint, Duration> = HashMap::new();
        for r in &due_rules {
            let ep = plan.endpoints.get(&r.name).and_then(Option::as_ref);
            if let Some(Ok(e)) = ep {
                let t = to_scrape.entry(e).or_insert(r.timeout);
                *t = (*t).max(r.timeout);
            }
            resolved.push((r.clone(), ep));
        }
        for (ep, timeout) in to_scrape {
            let Some(interest) = plan.interests.get(ep) else {
                continue;
            };
            let state = endpoints
                .entry(ep.clone())
                .or_insert_with(|| EndpointState {
                    store: SeriesStore::new(interest.clone(), shared.store_limits),
                    error: None,
                });
            state.error = scrape_into(&shared, ep, timeout, &mut state.store, now)
                .await
                .err();
            last_ingest_ms = now;
        }

        for (rule, ep) in resolved {
            let started = Instant::now();
            let unresolved;
            let input = match ep {
                None => ScrapeInput::Failed("the rule has no scrape variables"),
                Some(Err(e)) => {
                    unresolved = format!("cannot scrape: {e}");
                    ScrapeInput::Failed(&unresolved)
                }
                Some(Ok(e)) => match endpoints.get(e) {
                    Some(EndpointState {
                        error: Some(err), ..
                    }) => ScrapeInput::Failed(err),
                    Some(state) => ScrapeInput::Store(&state.store),
                    None => ScrapeInput::Failed("not scraped"),
                },
            };
            let mut promql = promql::values_for(&shared, &rule, &cfg).await;
            if promql.pending {
                // A batched query has not answered yet: try again shortly.
                if let Some(t) = due.get_mut(&rule.name) {
                    *t = now + 1000;
                }
                continue;
            }
            let result = evaluate_rule(
                &rule,
                input,
                &mut |v| promql.take(v),
                &shared.peers.lookup(&cfg),
                Some(cfg.ready_since),
                now,
            );
            let msg = EvalMsg {
                key: cfg.key.clone(),
                uid: cfg.uid.clone(),
                rule: rule.clone(),
                result,
                at_ms: now,
                took: started.elapsed(),
            };
            if results.send(msg).await.is_err() {
                return;
            }
            let interval = ms(rule.interval);
            if let Some(t) = due.get_mut(&rule.name) {
                *t = next_due(*t, now, spread_offset(&cfg.uid, interval), interval);
            }
        }
    }
}

/// Scrapes `ep` and ingests the body whole, or not at all.
async fn scrape_into(
    shared: &Shared,
    ep: &Endpoint,
    timeout: Duration,
    store: &mut SeriesStore,
    now: i64,
) -> Result<(), String> {
    let client = shared
        .http
        .client(ep.tls())
        .await
        .map_err(|e| e.to_string())?;
    let permit = shared.permits.acquire().await;
    let started = Instant::now();
    let fetched = scrape::fetch(&client, &ep.url, timeout, shared.body_limit).await;
    drop(permit);
    let took = started.elapsed();
    let scraped = match fetched {
        Ok(s) => s,
        Err(e) => {
            let result = if matches!(e, ScrapeError::Timeout { .. }) {
                "timeout"
            } else {
                "error"
            };
            shared.metrics.source_request("scrape", result, took);
            return Err(cap_message(&e.to_string()));
        }
    };
    match body::ingest(store, now, &scraped, shared.sample_limit) {
        Ok(_) => {
            shared.metrics.source_request("scrape", "ok", took);
            Ok(())
        }
        Err(e) => {
            shared.metrics.source_request("scrape", "invalid", took);
            // Parse errors may quote the body: kept per endpoint and logged, so bounded.
            Err(cap_message(&format!("scrape {}: {e}", ep.url)))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn spread_is_within_the_interval_and_stable() {
        for uid in ["a", "b", "0f1e2d3c", ""] {
            let o = spread_offset(uid, 10_000);
            assert!((0..10_000).contains(&o));
            assert_eq!(o, spread_offset(uid, 10_000));
        }
        let distinct: HashSet<i64> = (0..100)
            .map(|i| spread_offset(&format!("pod-{i}"), 10_000))
            .collect();
        assert!(distinct.len() > 90, "offsets spread out");
    }

    #[test]
    fn slots_repeat_every_interval_at_the_offset() {
        assert_eq!(next_slot(10_000, 3_000, 10_000), 13_000);
        assert_eq!(next_slot(13_000, 3_000, 10_000), 13_000);
        assert_eq!(next_slot(13_001, 3_000, 10_000), 23_000);
        assert_eq!(next_slot(0, 0, 10_000), 0);
    }

    #[test]
    fn a_new_pod_is_evaluated_at_once_then_moves_onto_its_slot() {
        let (offset, interval) = (7_000, 10_000);
        // First evaluation at once at t=100_500 (off slot): the next is on the slot, at least
        // half an interval later.
        let second = next_due(100_500, 100_500, offset, interval);
        assert_eq!(second, 107_000);
        // From then on, one interval apart on the slot.
        assert_eq!(next_due(second, second + 20, offset, interval), 117_000);
        // Just before a slot, the next evaluation skips to the one after, never closer than
        // half an interval.
        assert_eq!(next_due(106_000, 106_000, offset, interval), 117_000);
        // A late evaluation (the pod task was busy) catches up on the next slot.
        assert_eq!(next_due(107_000, 125_000, offset, interval), 137_000);
    }

    #[test]
    fn many_new_pods_spread_over_the_interval_after_their_first_evaluation() {
        let interval = 10_000;
        let mut seconds: HashSet<i64> = HashSet::new();
        for i in 0..200 {
            let offset = spread_offset(&format!("uid-{i}"), interval);
            // All created in the same millisecond.
            let second = next_due(50_000, 50_000, offset, interval);
            assert!((55_000..65_000).contains(&second), "{second}");
            seconds.insert(second / 1000);
        }
        assert_eq!(
            seconds.len(),
            10,
            "every second of the interval gets some pods"
        );
    }
}
