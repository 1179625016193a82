//! `podgate eval`: evaluate one rule once and show every variable, the expression and the
//! verdict. Writes nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::controller::target::{Target, resolve};
use crate::decision::Outcome;
use crate::evaluate::{RuleEvaluation, ScrapeInput, VarResult, evaluate_rule};
use crate::exposition;
use crate::kube::watch::{PodSnapshot, pod_snapshot};
use crate::query::{Interest, SeriesStore, StoreLimits};
use crate::rules::{self, Rule, VarSource};
use crate::source::prometheus::{PodFacts, PrometheusClient, PrometheusConfig};
use crate::source::scrape;
use k8s_openapi::api::core::v1::Pod;

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
    /// Give a variable's value (e.g. a promql: variable): NAME=NUMBER.
    #[arg(long = "set", value_name = "NAME=NUMBER")]
    set: Vec<String>,
}

pub fn run(args: Args) -> i32 {
    let set = match rules::load_dir(&args.rules_dir) {
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
        Some(p) => match super::block_on(live_pod(&args, p)) {
            Ok(Ok(pod)) => Some(pod),
            Ok(Err(e)) | Err(e) => return fail(EXIT_INVALID, e),
        },
        None => None,
    };
    let url = match (&pod, &args.metrics_url) {
        (_, Some(u)) => Some(u.clone()),
        (Some(p), None) if rule.uses_scrape() => match pod_endpoint(&rule, p) {
            Ok(u) => Some(u),
            Err(e) => return fail(EXIT_INVALID, format!("pod {}: {e}", p.key)),
        },
        _ => None,
    };
    let bodies = match collect_bodies(&args, url.as_deref(), &rule) {
        Ok(b) => b,
        Err(e) => return fail(EXIT_INVALID, e),
    };
    if let (Some(p), Some(prom)) = (&pod, &args.prometheus_url) {
        let fetched = super::block_on(pod_promql(&args, prom, &rule, p));
        match fetched {
            Ok(Ok(values)) => {
                for (k, v) in values {
                    given.entry(k).or_insert(v);
                }
            }
            Ok(Err(e)) | Err(e) => return fail(EXIT_INVALID, e),
        }
    }
    let mut store = SeriesStore::new(Interest::new(rule.scrape_queries()), StoreLimits::default());
    let step = i64::try_from(rule.interval.as_millis()).unwrap_or(i64::MAX);
    let mut now = 0i64;
    let mut scrape_error = None;
    for (i, (format, body)) in bodies.iter().enumerate() {
        now = step * i64::try_from(i).unwrap_or(0);
        if let Err(e) = store.ingest(now, exposition::parse(body, *format)) {
            scrape_error = Some(format!("scrape {}: {e}", i + 1));
            break;
        }
    }
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
    let result = evaluate_rule(
        &rule,
        input,
        &mut promql,
        &crate::peers::NoPeers("peers are not read here yet"),
        None,
        now,
    );
    print_report(&rule, &result);
    match result.evaluation.outcome {
        Outcome::Pass => EXIT_OK,
        Outcome::Fail | Outcome::NoData | Outcome::Warming => EXIT_FAIL,
        Outcome::Error => EXIT_INVALID,
    }
}

async fn live_pod(args: &Args, pod: &str) -> Result<PodSnapshot, String> {
    let Some((ns, name)) = pod.split_once('/') else {
        return Err(format!("--pod {pod:?}: expected NAMESPACE/NAME"));
    };
    let client = crate::kube::client::connect(args.kubeconfig.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    let api: ::kube::Api<Pod> = ::kube::Api::namespaced(client, ns);
    let live = api
        .get(name)
        .await
        .map_err(|e| format!("pod {ns}/{name}: {e}"))?;
    Ok(pod_snapshot(&live, false))
}

fn pod_endpoint(rule: &Rule, pod: &PodSnapshot) -> Result<String, String> {
    let ip = pod.pod_ip.ok_or("the pod has no IP yet")?;
    let target = Target {
        ip,
        port_annotation: pod.prometheus_port.clone(),
        path_annotation: pod.prometheus_path.clone(),
        container_ports: pod.container_ports.clone(),
    };
    resolve(&rule.scrape, &target).map(|e| e.url)
}

/// The rule's promql: variables for one pod: templated ones rendered for it, batched ones
/// run once and joined on the pod.
async fn pod_promql(
    args: &Args,
    url: &str,
    rule: &Rule,
    pod: &PodSnapshot,
) -> Result<BTreeMap<String, Option<f64>>, String> {
    let client = PrometheusClient::new(PrometheusConfig {
        url: url.to_string(),
        bearer_token_file: args.prometheus_bearer_token_file.clone(),
        ..PrometheusConfig::default()
    })
    .map_err(|e| e.to_string())?;
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
        let value = if t.is_batched() {
            client
                .query_batched(t, &rule.prometheus, rule.timeout)
                .await
                .map_err(|e| format!("{}: {e}", v.name))?
                .get(&pod.key.namespace, &pod.key.name)
                .map_err(|e| format!("{}: {e}", v.name))?
        } else {
            client
                .query_for_pod(t, &facts, rule.timeout)
                .await
                .map_err(|e| format!("{}: {e}", v.name))?
        };
        out.insert(v.name.clone(), value);
    }
    Ok(out)
}

fn collect_bodies(
    args: &Args,
    url: Option<&str>,
    rule: &Rule,
) -> Result<Vec<(exposition::Format, String)>, String> {
    if !args.metrics_file.is_empty() {
        return args
            .metrics_file
            .iter()
            .map(|p| read_file(p, InputFormat::Auto))
            .collect();
    }
    let Some(url) = url else {
        return Ok(Vec::new());
    };
    let needs_history = rule.scrape_queries().any(|q| q.range_ms() > 0);
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let timeout = rule.timeout.max(Duration::from_secs(1));
    let interval = rule.interval;
    let url = url.to_string();
    super::block_on(async move {
        let mut out = Vec::new();
        let first = scrape::fetch(&client, &url, timeout, scrape::DEFAULT_BODY_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        out.push((first.format, first.body));
        if needs_history {
            eprintln!(
                "podgate: the rule uses rate()/increase(): scraping again in {}s",
                interval.as_secs()
            );
            tokio::time::sleep(interval).await;
            let second = scrape::fetch(&client, &url, timeout, scrape::DEFAULT_BODY_LIMIT)
                .await
                .map_err(|e| e.to_string())?;
            out.push((second.format, second.body));
        }
        Ok(out)
    })?
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
    }
    println!("expr: {}", rule.expr_text);
    println!(
        "verdict: {} — {}",
        r.evaluation.outcome.as_str(),
        r.evaluation.detail
    );
}
