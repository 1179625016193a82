//! `podgate eval`: evaluate one rule once and show every variable, the expression and the
//! verdict. Writes nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::body;
use crate::controller::target::{Target, resolve};
use crate::decision::Outcome;
use crate::evaluate::{RuleEvaluation, ScrapeInput, VarResult, evaluate_rule};
use crate::expr::format_value;
use crate::kube::watch::{PodSnapshot, pod_snapshot};
use crate::peers::{GroupId, NoPeers, PeerIndex, PeerLookup, PeerReading, PodPeers};
use crate::query::{Interest, SeriesStore, StoreLimits};
use crate::rules::{self, PeersSpec, Rule, VarSource};
use crate::rules_dir;
use crate::source::prometheus::{PodFacts, PrometheusClient, PrometheusConfig};
use k8s_openapi::api::core::v1::Pod;

use super::error::Error;
use super::eval_peers::{self, Body};
use super::samples::{InputFormat, read_file};
use super::{EXIT_FAIL, EXIT_INVALID, EXIT_OK, EXIT_USAGE, fail};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["pod", "metrics_url", "metrics_file"])))]
pub struct Args {
    /// The rule to evaluate.
    #[arg(long)]
    rule: String,
    /// The rules directory.
    #[arg(long, env = "PODGATE_RULES_DIR")]
    rules_dir: PathBuf,
    /// Evaluate this live pod (NAMESPACE/NAME): its endpoint as the daemon would scrape it,
    /// and its promql: variables from --prometheus-url.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pod: Option<String>,
    /// Kubeconfig for --pod (default: in-cluster, then $KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "PODGATE_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Prometheus server for promql: variables.
    #[arg(long, env = "PODGATE_PROMETHEUS_URL")]
    prometheus_url: Option<String>,
    /// File holding a bearer token for Prometheus.
    #[arg(long, env = "PODGATE_PROMETHEUS_BEARER_TOKEN_FILE")]
    prometheus_bearer_token_file: Option<PathBuf>,
    /// Scrape this URL as the pod's endpoint. When the rule uses rate() or increase(), it is
    /// scraped twice, one rule interval apart.
    #[arg(long)]
    metrics_url: Option<String>,
    /// Read the pod's endpoint body from this file; repeat for consecutive scrapes, one rule
    /// interval apart (rate() and increase() need two).
    #[arg(long)]
    metrics_file: Vec<PathBuf>,
    /// Give a variable's value (e.g. a promql: or peers: variable): NAME=NUMBER.
    #[arg(long = "set", value_name = "NAME=NUMBER")]
    set: Vec<String>,
}

pub fn run(args: Args) -> i32 {
    let set = match rules_dir::load_dir(&args.rules_dir) {
        Ok(s) => s,
        Err(e) => return fail(EXIT_INVALID, e),
    };
    let Some(rule) = set.get(&args.rule).cloned() else {
        let names: Vec<&str> = set.rules.iter().map(|r| r.name.as_str()).collect();
        return fail(
            EXIT_USAGE,
            format!(
                "no rule {:?} in {} (rules: {})",
                args.rule,
                args.rules_dir.display(),
                names.join(", ")
            ),
        );
    };
    let mut given = BTreeMap::new();
    for s in &args.set {
        let parsed = s.split_once('=').and_then(|(k, v)| {
            v.trim()
                .parse::<f64>()
                .ok()
                .map(|v| (k.trim().to_string(), v))
        });
        match parsed {
            Some((k, v)) if rule.var(&k).is_some() => {
                given.insert(k, Some(v));
            }
            Some((k, _)) => {
                return fail(
                    EXIT_USAGE,
                    format!("--set {k}: rule {} has no such variable", rule.name),
                );
            }
            None => return fail(EXIT_USAGE, format!("--set {s:?}: expected NAME=NUMBER")),
        }
    }
    let pod = match &args.pod {
        Some(p) => match super::block_on(live_pod(&args, p)).and_then(|got| got) {
            Ok(pod) => Some(pod),
            Err(e) => return fail(EXIT_INVALID, e),
        },
        None => None,
    };
    // With --pod, a rule comparing the pod with its peers reads them live too.
    let peer_pods = match (&pod, rule.uses_peers()) {
        (Some(p), true) => {
            match super::block_on(eval_peers::list(args.kubeconfig.as_deref(), &rule, p))
                .and_then(|listed| listed)
            {
                Ok(peers) => peers,
                Err(e) => return fail(EXIT_INVALID, e),
            }
        }
        _ => Vec::new(),
    };
    let url = match (&pod, &args.metrics_url) {
        (_, Some(u)) => Some(u.clone()),
        (Some(p), None) if rule.uses_scrape() => match pod_endpoint(&rule, p) {
            Ok(u) => Some(u),
            Err(e) => return fail(EXIT_INVALID, e),
        },
        _ => None,
    };
    // Each peer's endpoint, or why it has none.
    let peer_urls: Vec<Result<String, Error>> = peer_pods
        .iter()
        .filter(|_| rule.uses_scrape())
        .map(|p| pod_endpoint(&rule, p))
        .collect();
    let live_peer_urls: Vec<String> = peer_urls
        .iter()
        .filter_map(|u| u.as_ref().ok().cloned())
        .collect();
    let (bodies, mut peer_scrapes) =
        match collect_bodies(&args, url.as_deref(), &live_peer_urls, &rule) {
            Ok(b) => b,
            Err(e) => return fail(EXIT_INVALID, e),
        };
    let mut peer_bodies: Vec<PeerBodies> = Vec::new();
    for u in peer_urls {
        peer_bodies.push(match u {
            Ok(_) if !peer_scrapes.is_empty() => peer_scrapes.remove(0),
            Ok(_) => Err(Error::NotScraped),
            Err(e) => Err(e),
        });
    }
    if let (Some(p), Some(prom)) = (&pod, &args.prometheus_url) {
        let fetched = super::block_on(pod_promql(&args, prom, &rule, p)).and_then(|got| got);
        match fetched {
            Ok(values) => {
                for (k, v) in values {
                    given.entry(k).or_insert(v);
                }
            }
            Err(e) => return fail(EXIT_INVALID, e),
        }
    }
    let step = crate::time::millis(rule.interval);
    // Every store's last scrape lands on `now`, the target's and its peers' alike.
    let rounds = peer_bodies
        .iter()
        .filter_map(|b| b.as_ref().ok().map(Vec::len))
        .chain([bodies.len()])
        .max()
        .unwrap_or(0);
    let now = step.saturating_mul(i64::try_from(rounds.saturating_sub(1)).unwrap_or(0));
    let (store, scrape_error) = ingest_all(&rule, &bodies, now, step);
    let input = match &scrape_error {
        Some(e) => ScrapeInput::Failed(e),
        None => ScrapeInput::Store(&store),
    };
    let mut promql = |v: &rules::Var| match given.get(&v.name) {
        Some(Some(x)) => VarResult::Value(*x),
        Some(None) => VarResult::NoData("Prometheus returned no series for this pod".into()),
        None => VarResult::NoData(
            "not given: use --pod with --prometheus-url, or --set NAME=NUMBER".into(),
        ),
    };
    let index = match &pod {
        Some(_) => peer_index(&args, &rule, &peer_pods, &peer_bodies, now, step),
        None => PeerIndex::new(),
    };
    let result = match &pod {
        Some(p) => {
            let live = PodPeers {
                index: &index,
                namespace: &p.key.namespace,
                pod: &p.key.name,
                labels: &p.info.labels,
                owner: p.owner.as_ref(),
                list: true,
            };
            let peers = Given {
                given: &given,
                peers: &live,
            };
            evaluate_rule(&rule, input, &mut promql, &peers, None, now)
        }
        None => {
            let none = NoPeers(
                "peers are read from the pod's live peers: use --pod, or --set NAME=NUMBER",
            );
            let peers = Given {
                given: &given,
                peers: &none,
            };
            evaluate_rule(&rule, input, &mut promql, &peers, None, now)
        }
    };
    print_report(&rule, &result);
    match result.evaluation.outcome {
        Outcome::Pass => EXIT_OK,
        Outcome::Fail | Outcome::NoData | Outcome::Warming => EXIT_FAIL,
        Outcome::Error => EXIT_INVALID,
    }
}

/// A store holding `bodies`, scraped one `step` apart, the last at `now`; or the first error.
fn ingest_all(rule: &Rule, bodies: &[Body], now: i64, step: i64) -> (SeriesStore, Option<String>) {
    let mut store = SeriesStore::new(Interest::new(rule.scrape_queries()), StoreLimits::default());
    let n = i64::try_from(bodies.len()).unwrap_or(0);
    for (i, scraped) in bodies.iter().enumerate() {
        let back = n - 1 - i64::try_from(i).unwrap_or(0);
        let at = now.saturating_sub(step.saturating_mul(back));
        if let Err(e) = body::ingest(&mut store, at, scraped, usize::MAX) {
            return (store, Some(format!("scrape {}: {e}", i + 1)));
        }
    }
    (store, None)
}

/// Evaluates each live peer's own variables at `now`, as the daemon's last evaluation of it
/// would have, and indexes what they leave for the pod. A peer that cannot be evaluated is
/// reported and left out.
fn peer_index(
    args: &Args,
    rule: &Rule,
    peers: &[PodSnapshot],
    bodies: &[PeerBodies],
    now: i64,
    step: i64,
) -> PeerIndex {
    let mut index = PeerIndex::new();
    for (i, peer) in peers.iter().enumerate() {
        let scraped = bodies.get(i);
        let (store, error) = match scraped {
            Some(Ok(b)) => ingest_all(rule, b, now, step),
            Some(Err(e)) => (ingest_all(rule, &[], now, step).0, Some(e.to_string())),
            None => (ingest_all(rule, &[], now, step).0, None),
        };
        let input = match &error {
            Some(e) => ScrapeInput::Failed(e),
            None => ScrapeInput::Store(&store),
        };
        let values = match &args.prometheus_url {
            Some(prom) => match super::block_on(pod_promql(args, prom, rule, peer))
                .and_then(|fetched| fetched)
            {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("podgate: peer {}: {e}", peer.key);
                    BTreeMap::new()
                }
            },
            None => BTreeMap::new(),
        };
        let mut promql = |v: &rules::Var| match values.get(&v.name) {
            Some(Some(x)) => VarResult::Value(*x),
            _ => VarResult::NoData("no value from Prometheus (--prometheus-url)".into()),
        };
        let own = evaluate_rule(rule, input, &mut promql, &NoPeers(""), None, now);
        if let Some(e) = &error {
            eprintln!("podgate: peer {}: {e}", peer.key);
        }
        let Some(group) = rule.peers.group(&peer.info.labels, peer.owner.as_ref()) else {
            continue;
        };
        let id = GroupId {
            rule: rule.name.clone(),
            namespace: peer.key.namespace.clone(),
            group,
        };
        let revision = rule.peers.revision(&peer.info.labels);
        index.record(&id, &peer.key.name, revision, now, own.peer_values(rule));
    }
    index
}

/// One endpoint's bodies, or why it has none.
type PeerBodies = Result<Vec<Body>, Error>;

/// `--set` values for `peers:` variables win over what the peers say.
struct Given<'a> {
    given: &'a BTreeMap<String, Option<f64>>,
    peers: &'a dyn PeerLookup,
}

impl PeerLookup for Given<'_> {
    fn read(&self, rule: &Rule, name: &str, spec: &PeersSpec, now_ms: i64) -> PeerReading {
        match self.given.get(name) {
            Some(Some(x)) => PeerReading {
                result: VarResult::Value(*x),
                summary: None,
            },
            _ => self.peers.read(rule, name, spec, now_ms),
        }
    }
}

async fn live_pod(args: &Args, pod: &str) -> Result<PodSnapshot, Error> {
    let Some((ns, name)) = pod.split_once('/') else {
        return Err(Error::PodName(pod.to_string()));
    };
    let client = crate::kube::client::connect(args.kubeconfig.as_deref()).await?;
    let api: ::kube::Api<Pod> = ::kube::Api::namespaced(client, ns);
    let live = api.get(name).await.map_err(|source| Error::FetchPod {
        pod: format!("{ns}/{name}"),
        source,
    })?;
    Ok(pod_snapshot(&live, false))
}

/// The URL the daemon would scrape `pod` at for `rule`.
fn pod_endpoint(rule: &Rule, pod: &PodSnapshot) -> Result<String, Error> {
    let ip = pod
        .pod_ip
        .ok_or_else(|| Error::PodNoIp(pod.key.to_string()))?;
    let target = Target {
        ip,
        port_annotation: pod.prometheus_port.clone(),
        path_annotation: pod.prometheus_path.clone(),
        container_ports: pod.container_ports.clone(),
    };
    resolve(&rule.scrape, &target)
        .map(|e| e.url)
        .map_err(|source| Error::PodEndpoint {
            pod: pod.key.to_string(),
            source,
        })
}

/// The rule's promql: variables for one pod: templated ones rendered for it, batched ones
/// run once and joined on the pod.
async fn pod_promql(
    args: &Args,
    url: &str,
    rule: &Rule,
    pod: &PodSnapshot,
) -> Result<BTreeMap<String, Option<f64>>, Error> {
    let client = PrometheusClient::new(PrometheusConfig {
        url: url.to_string(),
        bearer_token_file: args.prometheus_bearer_token_file.clone(),
        ..PrometheusConfig::default()
    })?;
    let ip = pod.pod_ip.map(|i| i.to_string());
    let facts = PodFacts {
        name: &pod.key.name,
        namespace: &pod.key.namespace,
        node: pod.node_name.as_deref(),
        pod_ip: ip.as_deref(),
        labels: &pod.info.labels,
    };
    let mut out = BTreeMap::new();
    for v in &rule.vars {
        let VarSource::Promql(t) = &v.source else {
            continue;
        };
        let failed = |source| Error::Promql {
            var: v.name.clone(),
            source,
        };
        let value = if t.is_batched() {
            client
                .query_batched(t, &rule.prometheus, rule.timeout)
                .await
                .map_err(failed)?
                .get(&pod.key.namespace, &pod.key.name)
                .map_err(|source| Error::PromqlJoin {
                    var: v.name.clone(),
                    source: Box::new(source),
                })?
        } else {
            client
                .query_for_pod(t, &facts, rule.timeout)
                .await
                .map_err(failed)?
        };
        out.insert(v.name.clone(), value);
    }
    Ok(out)
}

/// The target's bodies (from --metrics-file, else scraped from `url`) and each peer URL's,
/// scraped together: twice, one rule interval apart, when the rule uses rate() or increase().
fn collect_bodies(
    args: &Args,
    url: Option<&str>,
    peer_urls: &[String],
    rule: &Rule,
) -> Result<(Vec<Body>, Vec<PeerBodies>), Error> {
    let from_files = !args.metrics_file.is_empty();
    let mut urls: Vec<String> = Vec::new();
    let target_live = !from_files && url.is_some();
    if let (true, Some(u)) = (target_live, url) {
        urls.push(u.to_string());
    }
    urls.extend(peer_urls.iter().cloned());
    let needs_history = rule.scrape_queries().any(|q| q.range_ms() > 0);
    let rounds = if needs_history { 2 } else { 1 };
    let timeout = rule.timeout.max(Duration::from_secs(1));
    let mut scraped = if urls.is_empty() {
        Vec::new()
    } else {
        super::block_on(eval_peers::scrape_rounds(
            &urls,
            rounds,
            rule.interval,
            timeout,
        ))??
    };
    let target = if from_files {
        args.metrics_file
            .iter()
            .map(|p| read_file(p, InputFormat::Auto))
            .collect::<Result<_, _>>()?
    } else if target_live {
        scraped.remove(0)?
    } else {
        Vec::new()
    };
    let peers = scraped
        .into_iter()
        .map(|s| s.map_err(Error::from))
        .collect();
    Ok((target, peers))
}

fn print_report(rule: &Rule, r: &RuleEvaluation) {
    println!("rule {} ({})", rule.name, rule.origin);
    let width = r.vars.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for v in &r.vars {
        println!(
            "  {:width$}  {:6}  {}  = {}",
            v.name,
            v.source,
            v.query,
            v.result,
            width = width
        );
        if let Some(s) = &v.peers {
            let revision = s.revision.as_deref().unwrap_or("none");
            println!(
                "  {:width$}  peers of {} (this pod's revision: {revision}), {} of them:",
                "",
                s.group,
                s.of,
                width = width
            );
            for p in &s.listed {
                println!(
                    "  {:width$}    {}  revision {}  {} = {}",
                    "",
                    p.pod,
                    p.revision.as_deref().unwrap_or("none"),
                    s.var,
                    format_value(p.value),
                    width = width
                );
            }
            if s.stale > 0 {
                println!(
                    "  {:width$}    ({} more without a value)",
                    "",
                    s.stale,
                    width = width
                );
            }
        }
    }
    println!("expr: {}", rule.expr_text);
    println!(
        "verdict: {} — {}",
        r.evaluation.outcome.as_str(),
        r.evaluation.detail
    );
}
