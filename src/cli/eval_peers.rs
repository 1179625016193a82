//! `podgate eval --pod` for a rule with `peers:` variables: the pod's live peers, found,
//! scraped and evaluated as the daemon would, so the values a `peers:` variable aggregates can
//! be shown one by one.

use std::path::Path;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;

use crate::kube::watch::{PodSnapshot, pod_snapshot};
use crate::rules::Rule;
use crate::source::http::HttpClientError;
use crate::source::scrape::{self, ScrapeError};

use super::error::Error;

/// A scraped body, as the daemon reads it.
pub type Body = scrape::Scraped;

/// The pods the daemon would count as `pod`'s peers under `rule`: in its namespace, declaring
/// the rule's gate and matching its selector, evaluable, and in the same peer group. The pod
/// itself is left out.
pub async fn list(
    kubeconfig: Option<&Path>,
    rule: &Rule,
    pod: &PodSnapshot,
) -> Result<Vec<PodSnapshot>, Error> {
    let Some(group) = rule.peers.group(&pod.info.labels, pod.owner.as_ref()) else {
        return Ok(Vec::new());
    };
    let client = crate::kube::client::connect(kubeconfig).await?;
    let api: ::kube::Api<Pod> = ::kube::Api::namespaced(client, &pod.key.namespace);
    let listed = api
        .list(&::kube::api::ListParams::default())
        .await
        .map_err(|source| Error::ListPeers {
            namespace: pod.key.namespace.clone(),
            source,
        })?;
    let mut peers: Vec<PodSnapshot> = listed
        .items
        .iter()
        .map(|p| pod_snapshot(p, false))
        .filter(|p| {
            p.key != pod.key
                && p.evaluable()
                && p.info.gates.contains(&rule.condition_type)
                && rule.selector.matches(&p.key.namespace, &p.info.labels)
                && rule.peers.group(&p.info.labels, p.owner.as_ref()).as_ref() == Some(&group)
        })
        .collect();
    peers.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(peers)
}

/// Scrapes every URL `rounds` times, `interval` apart, all URLs of a round at once; per URL
/// its bodies, or the first error.
pub async fn scrape_rounds(
    urls: &[String],
    rounds: usize,
    interval: Duration,
    timeout: Duration,
) -> Result<Vec<Result<Vec<Body>, ScrapeError>>, Error> {
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| HttpClientError::Build(e.to_string()))?;
    let mut out: Vec<Result<Vec<Body>, ScrapeError>> =
        urls.iter().map(|_| Ok(Vec::new())).collect();
    for round in 0..rounds {
        if round > 0 {
            eprintln!(
                "podgate: the rule uses rate()/increase(): scraping again in {}s",
                interval.as_secs()
            );
            tokio::time::sleep(interval).await;
        }
        let fetched = join_all(
            urls.iter()
                .map(|u| scrape::fetch(&client, u, timeout, scrape::DEFAULT_BODY_LIMIT)),
        )
        .await;
        for (slot, got) in out.iter_mut().zip(fetched) {
            if let Ok(bodies) = slot {
                match got {
                    Ok(s) => bodies.push(s),
                    Err(e) => *slot = Err(e),
                }
            }
        }
    }
    Ok(out)
}
