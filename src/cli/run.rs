//! `podgate run`: the daemon. The controller, the writer, the watcher, leader election and
//! the metrics server, joined; SIGTERM stops writing, releases the lease and exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::controller::{Controller, Inputs, Settings, Shared};
use crate::kube::events::EventRecorder;
use crate::kube::lease::{
    LeaderElection, LeaseConfig, daemon_namespace, default_identity, may_write,
};
use crate::kube::watch::{PodWatcher, WatchScope};
use crate::kube::write::Writer;
use crate::query::StoreLimits;
use crate::reload;
use crate::source::prometheus::{BasicAuth, PrometheusClient, PrometheusConfig};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::server::{self, Health};
use crate::telemetry::{self, LogFormat};
use crate::webhook;
use crate::{rules, rules_dir};

use super::error::Error;
use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE, fail};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Directory of rule files (a ConfigMap volume); watched for changes.
    #[arg(long, env = "PODGATE_RULES_DIR", default_value = "/etc/podgate/rules")]
    rules_dir: PathBuf,
    /// Prometheus server for `promql:` variables.
    #[arg(long, env = "PODGATE_PROMETHEUS_URL")]
    prometheus_url: Option<String>,
    /// File holding a bearer token for Prometheus (re-read when it changes).
    #[arg(long, env = "PODGATE_PROMETHEUS_BEARER_TOKEN_FILE")]
    prometheus_bearer_token_file: Option<PathBuf>,
    /// Basic auth user name for Prometheus.
    #[arg(long, env = "PODGATE_PROMETHEUS_USERNAME")]
    prometheus_username: Option<String>,
    /// File holding the basic auth password for Prometheus.
    #[arg(long, env = "PODGATE_PROMETHEUS_PASSWORD_FILE")]
    prometheus_password_file: Option<PathBuf>,
    /// CA bundle (PEM) to verify Prometheus's certificate.
    #[arg(long, env = "PODGATE_PROMETHEUS_CA_FILE")]
    prometheus_ca_file: Option<PathBuf>,
    /// Do not verify Prometheus's certificate (logged as a warning).
    #[arg(long, env = "PODGATE_PROMETHEUS_INSECURE_SKIP_VERIFY")]
    prometheus_insecure_skip_verify: bool,
    /// Extra header for Prometheus requests, `Name: value` (repeatable).
    #[arg(long = "prometheus-header", value_name = "NAME: VALUE")]
    prometheus_headers: Vec<String>,
    /// Watch only these namespaces (repeatable; default: all).
    #[arg(long = "namespace", env = "PODGATE_NAMESPACE", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "PODGATE_METRICS_ADDR", default_value = "0.0.0.0:9464")]
    metrics_addr: SocketAddr,
    /// Elect a leader on a Lease; only the leader writes.
    #[arg(long, env = "PODGATE_LEADER_ELECTION")]
    leader_election: bool,
    /// Name of the Lease.
    #[arg(long, env = "PODGATE_LEASE_NAME", default_value = crate::kube::lease::LEASE_NAME)]
    lease_name: String,
    /// Namespace of the Lease (default: the namespace podgate runs in).
    #[arg(long, env = "PODGATE_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Lease duration: a standby takes over this long after a leader vanishes.
    #[arg(long, env = "PODGATE_LEASE_DURATION", default_value = "15s", value_parser = rules::duration::parse_duration)]
    lease_duration: Duration,
    /// Node-local mode (DaemonSet): only the pods of --node-name, no election.
    #[arg(long, env = "PODGATE_NODE_LOCAL")]
    node_local: bool,
    /// This node's name, for --node-local.
    #[arg(long, env = "NODE_NAME")]
    node_name: Option<String>,
    /// Decide, log and export metrics, but write nothing.
    #[arg(long, env = "PODGATE_DRY_RUN")]
    dry_run: bool,
    #[arg(long, env = "PODGATE_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Kubeconfig file (default: in-cluster, then $KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "PODGATE_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Scrapes and queries in flight at once, across all pods.
    #[arg(long, env = "PODGATE_CONCURRENCY", default_value_t = 256)]
    concurrency: usize,
    /// Largest scrape body accepted, in bytes (after decompression).
    #[arg(long, env = "PODGATE_BODY_LIMIT", default_value_t = crate::source::scrape::DEFAULT_BODY_LIMIT)]
    body_limit: usize,
    /// Most samples accepted from one scrape.
    #[arg(long, env = "PODGATE_SAMPLE_LIMIT", default_value_t = 50_000)]
    sample_limit: usize,
    /// Most series kept per pod for the rules' scrape queries (rate() history included).
    #[arg(long, env = "PODGATE_SERIES_LIMIT", default_value_t = StoreLimits::default().max_series)]
    series_limit: usize,
    /// Longest metric name, label name or label value of a series kept, in bytes.
    #[arg(long, env = "PODGATE_LABEL_LIMIT", default_value_t = crate::query::DEFAULT_MAX_LABEL_BYTES)]
    label_limit: usize,
    /// Serve the mutating admission webhook that injects readiness gates, over TLS, on this
    /// address (see docs/webhook.md). Off without it.
    #[arg(long, env = "PODGATE_WEBHOOK_ADDR", requires_all = ["webhook_cert_file", "webhook_key_file"])]
    webhook_addr: Option<SocketAddr>,
    /// The webhook's serving certificate (PEM, intermediates after it); re-read when it changes.
    #[arg(long, env = "PODGATE_WEBHOOK_CERT_FILE", requires = "webhook_addr")]
    webhook_cert_file: Option<PathBuf>,
    /// The webhook's private key (PEM); re-read when it changes.
    #[arg(long, env = "PODGATE_WEBHOOK_KEY_FILE", requires = "webhook_addr")]
    webhook_key_file: Option<PathBuf>,
}

pub fn run(args: Args) -> i32 {
    telemetry::init_logging(args.log_format);
    if args.node_local && args.node_name.as_deref().is_none_or(str::is_empty) {
        return fail(
            EXIT_USAGE,
            "--node-local needs --node-name or NODE_NAME (the downward API's spec.nodeName)",
        );
    }
    if args.node_local && args.leader_election {
        return fail(
            EXIT_USAGE,
            "--node-local and --leader-election exclude each other: each node-local instance writes its own node's pods",
        );
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(EXIT_INVALID, Error::Runtime(e)),
    };
    match rt.block_on(daemon(args)) {
        Ok(()) => EXIT_OK,
        Err(e) => fail(EXIT_INVALID, e),
    }
}

fn prometheus_client(
    args: &Args,
    metrics: &Metrics,
) -> Result<Option<Arc<PrometheusClient>>, Error> {
    let Some(url) = &args.prometheus_url else {
        return Ok(None);
    };
    let basic_auth = match (&args.prometheus_username, &args.prometheus_password_file) {
        (Some(u), Some(p)) => Some(BasicAuth {
            username: u.clone(),
            password_file: p.clone(),
        }),
        (None, None) => None,
        _ => {
            return Err(Error::Flags(
                "--prometheus-username and --prometheus-password-file go together".into(),
            ));
        }
    };
    let mut headers = Vec::new();
    for h in &args.prometheus_headers {
        let Some((k, v)) = h.split_once(':') else {
            return Err(Error::Flags(format!(
                "--prometheus-header {h:?}: expected `Name: value`"
            )));
        };
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let config = PrometheusConfig {
        url: url.clone(),
        bearer_token_file: args.prometheus_bearer_token_file.clone(),
        basic_auth,
        headers,
        ca_file: args.prometheus_ca_file.clone(),
        insecure_skip_verify: args.prometheus_insecure_skip_verify,
    };
    let m = metrics.clone();
    let client = PrometheusClient::new(config)?.with_observer(Arc::new(move |result, took| {
        m.source_request("prometheus", result.as_str(), took)
    }));
    Ok(Some(Arc::new(client)))
}

/// Runs `work` on tokio's blocking pool.
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Startup(e.to_string()))
}

async fn daemon(args: Args) -> Result<(), Error> {
    crate::source::init_tls();
    let (metrics, registry) = Metrics::new();
    let health = Arc::new(Health::default());
    // Startup reads files (rules, credentials, CA bundles) on the blocking pool, as every
    // later read does: the runtime's workers never wait on a disk.
    let dir = args.rules_dir.clone();
    let rules = on_blocking_pool(move || rules_dir::load_dir(&dir))
        .await?
        .map_err(|source| Error::Rules {
            dir: args.rules_dir.clone(),
            source,
        })?;
    for w in &rules.warnings {
        warn!("{w}");
    }
    info!(rules = rules.len(), dir = %args.rules_dir.display(), "rules loaded");
    let prometheus = {
        let (args, metrics) = (args.clone(), metrics.clone());
        on_blocking_pool(move || prometheus_client(&args, &metrics)).await??
    };
    let client = crate::kube::client::connect(args.kubeconfig.as_deref()).await?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    // The webhook first: a bad certificate stops the daemon before it takes a lease.
    let (rules_tx, rules_rx) = watch::channel(rules.clone());
    // It stops last (or when this function returns early and drops the sender).
    let (webhook_stop, webhook_stopped) = tokio::sync::oneshot::channel::<()>();
    let webhook_task = start_webhook(&args, &client, rules_rx, &metrics)
        .await?
        .map(|server| {
            tokio::spawn(server.run(async move {
                let _ = webhook_stopped.await;
            }))
        });

    // Who may write: see kube::lease::may_write.
    let election = if args.leader_election {
        let ns = match &args.lease_namespace {
            Some(ns) => ns.clone(),
            None => daemon_namespace(&client),
        };
        let mut cfg = LeaseConfig::new(ns);
        cfg.name = args.lease_name.clone();
        cfg.duration = args.lease_duration;
        // Renew well before expiry, however short the lease.
        cfg.grace = cfg.grace.min(args.lease_duration / 3);
        Some(LeaderElection::start(client.clone(), cfg).await?)
    } else {
        None
    };
    let (may_write_tx, may_write_rx) = watch::channel(false);
    {
        let metrics = metrics.clone();
        may_write::follow(
            election.as_ref().map(LeaderElection::subscribe),
            shutdown_rx.clone(),
            args.dry_run,
            may_write_tx,
            move |standing| {
                metrics.leader.set(i64::from(standing.leads()));
            },
        );
    }
    if args.dry_run {
        warn!("dry run: decisions are logged and exported, nothing is written");
    }

    let (updates_tx, updates_rx) = mpsc::channel(4096);
    let writer = {
        let m = metrics.clone();
        let pending = metrics.writer_pending.clone();
        Writer::new(client.clone(), may_write_rx.clone())
            .with_queue_observer(move |n| {
                pending.set(i64::try_from(n).unwrap_or(i64::MAX));
            })
            .with_events(EventRecorder::new(client.clone(), default_identity()))
            .with_observer(move |result: crate::kube::write::WriteResult, took| {
                m.kube_write(result.as_str(), took)
            })
    };
    let writer_task = tokio::spawn(writer.run(updates_rx));

    let (pods_tx, pods_rx) = mpsc::channel(1024);
    let scope = WatchScope {
        namespaces: args.namespaces.clone(),
        node_name: if args.node_local {
            args.node_name.clone()
        } else {
            None
        },
    };
    let watcher_task = tokio::spawn(PodWatcher::new(client.clone(), scope).run(pods_tx));

    let (reload_tx, reload_rx) = mpsc::channel(1);
    let _dir_watch = match reload::watch_dir(&args.rules_dir, reload_tx.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            warn!(error = %e, "rules directory is not watched; reload with SIGHUP");
            None
        }
    };
    reload::watch_sighup(reload_tx)?;

    let server_task = {
        let mut shutdown = shutdown_rx.clone();
        let addr = args.metrics_addr;
        let registry = Arc::new(registry);
        let health = health.clone();
        tokio::spawn(async move {
            let stop = async move {
                while !*shutdown.borrow_and_update() {
                    if shutdown.changed().await.is_err() {
                        break;
                    }
                }
            };
            if let Err(e) = server::serve(addr, registry, health, stop).await {
                error!(error = %e, %addr, "metrics server failed");
            }
        })
    };

    let settings = Settings {
        rules_dir: args.rules_dir.clone(),
        concurrency: args.concurrency,
        body_limit: args.body_limit,
        sample_limit: args.sample_limit,
        store_limits: StoreLimits {
            max_series: args.series_limit,
            max_label_bytes: args.label_limit,
            ..StoreLimits::default()
        },
    };
    let shared = Shared::new(&settings, metrics, prometheus)?;
    let controller = Controller::new(
        settings.rules_dir,
        rules,
        Arc::new(shared),
        health,
        updates_tx,
    )
    .publish_rules(rules_tx)
    .resync_on(may_write_rx);
    let controller_task = tokio::spawn(controller.run(Inputs {
        pods: pods_rx,
        reloads: reload_rx,
        shutdown: shutdown_rx.clone(),
    }));
    info!(addr = %args.metrics_addr, "podgate running");

    wait_for_signal().await;
    info!("shutting down");
    let stopping_since = tokio::time::Instant::now();
    // Stop writing first, then everything else; all within a few seconds.
    let _ = shutdown_tx.send(true);
    let deadline = Duration::from_secs(4);
    watcher_task.abort();
    let _ = tokio::time::timeout(deadline, controller_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), writer_task).await;
    if let Some(e) = election {
        let _ = tokio::time::timeout(Duration::from_secs(2), e.shutdown()).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), server_task).await;
    if let Some(t) = webhook_task {
        // Keep answering while the Service stops sending new pods here: a review the
        // apiserver cannot deliver admits its pod without gates.
        tokio::time::sleep_until(stopping_since + WEBHOOK_DRAIN).await;
        let _ = webhook_stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
    }
    info!("stopped");
    Ok(())
}

/// How long the webhook keeps serving after SIGTERM, at least.
const WEBHOOK_DRAIN: Duration = Duration::from_secs(3);

/// Binds the admission webhook when `--webhook-addr` is given. It never injects into
/// podgate's own namespace, nor where the daemon does not watch or does not write.
async fn start_webhook(
    args: &Args,
    client: &kube::Client,
    rules: watch::Receiver<rules::RuleSet>,
    metrics: &Metrics,
) -> Result<Option<webhook::server::Server>, Error> {
    let (Some(addr), Some(cert), Some(key)) = (
        args.webhook_addr,
        args.webhook_cert_file.clone(),
        args.webhook_key_file.clone(),
    ) else {
        return Ok(None);
    };
    let own = daemon_namespace(client);
    let scope = webhook::Scope {
        namespaces: args.namespaces.iter().cloned().collect(),
        excluded_namespaces: [own.clone()].into(),
        dry_run: args.dry_run,
    };
    if args.dry_run {
        warn!(
            "dry run: the webhook admits every pod unchanged (a gate nobody writes would block the pod)"
        );
    }
    let handler = webhook::server::Handler::new(rules, scope).with_metrics(metrics.clone());
    let server =
        webhook::server::Server::bind(addr, webhook::server::TlsFiles { cert, key }, handler)
            .await?;
    info!(
        addr = %server.local_addr()?,
        excluded_namespace = %own,
        "admission webhook serving {}",
        webhook::PATH
    );
    Ok(Some(server))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
