//! A small fleet of pods for the podgate demo (`scripts/demo`), on a control plane without
//! nodes: it creates a namespace and five pods that declare podgate's gates, serves each pod's
//! `/metrics` on its own loopback address (127.0.77.x), plays the kubelet (pod IP, Running,
//! ContainersReady, and `Ready` computed from the gates), and prints a live view of the gates
//! every second.
//!
//! - `web-1..3` (`podgate.dev/profile: http`) serve HTTP request counters and latency
//!   histograms, and upstream response counters that Prometheus scrapes for the batched rule;
//!   `web-2` degrades (errors and slow requests) for a while on a cycle, then recovers.
//! - `worker-1..2` (`podgate.dev/profile: worker`) warm their cache after start.
//! - A stand-in for kube-state-metrics reports each pod's container restarts (zero).
//!
//! ```sh
//! cargo run --example fleet -- --kubeconfig admin.kubeconfig --targets-dir DIR
//! ```

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Parser;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "A demo fleet of gated pods with live metrics endpoints")]
struct Args {
    /// Kubeconfig of a user that may create namespaces and pods and patch pods/status.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Namespace of the fleet (created if missing; its old pods are replaced).
    #[arg(long, default_value = "podgate-demo")]
    namespace: String,
    /// Where to write Prometheus file_sd target lists (fleet.json, kube-state-metrics.json).
    #[arg(long)]
    targets_dir: PathBuf,
    /// Port every pod's endpoint listens on, each on its own 127.0.77.x address.
    #[arg(long, default_value_t = 9100)]
    port: u16,
    /// Seconds web-2 stays degraded in each cycle.
    #[arg(long, default_value_t = 60)]
    degraded_for: u64,
    /// Seconds of each cycle (healthy for the rest).
    #[arg(long, default_value_t = 180)]
    cycle: u64,
    /// Lines printed above the view (URLs, log paths).
    #[arg(long = "banner")]
    banner: Vec<String>,
}

const NODE: &str = "podgate-demo-node";
const HTTP_GATES: [&str; 2] = ["podgate.dev/http-healthy", "podgate.dev/upstream-healthy"];
const WORKER_GATES: [&str; 1] = ["podgate.dev/warm"];
const BUCKETS: [f64; 6] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
/// Requests per second each web pod serves.
const RPS: f64 = 40.0;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Profile {
    Http,
    Worker,
}

/// One pod's simulated counters, advanced by a ticker.
#[derive(Debug, Default)]
struct Counters {
    ok: f64,
    errors: f64,
    /// Cumulative histogram counts per bucket of `BUCKETS`, then +Inf.
    buckets: [f64; 7],
    sum: f64,
    upstream_ok: f64,
    upstream_errors: f64,
}

struct PodSim {
    name: String,
    profile: Profile,
    ip: Ipv4Addr,
    degrades: bool,
    /// Seconds a worker takes to warm its cache.
    warmup: f64,
    counters: Mutex<Counters>,
}

struct Fleet {
    pods: Vec<Arc<PodSim>>,
    started: Instant,
    degraded_for: u64,
    cycle: u64,
    namespace: String,
}

impl Fleet {
    fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Whether `web-2` is degraded now, and the seconds until that changes. The first minute
    /// is healthy so every gate turns True before the first degradation.
    fn degraded(&self) -> (bool, u64) {
        let warm_start = 60;
        let t = self.started.elapsed().as_secs();
        if t < warm_start {
            return (false, warm_start - t);
        }
        let phase = (t - warm_start) % self.cycle.max(1);
        if phase < self.degraded_for {
            (true, self.degraded_for - phase)
        } else {
            (false, self.cycle - phase)
        }
    }
}

fn lock(m: &Mutex<Counters>) -> std::sync::MutexGuard<'_, Counters> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Advances every web pod's counters by `dt` seconds of traffic.
fn advance(fleet: &Fleet, dt: f64) {
    let (degraded_now, _) = fleet.degraded();
    for pod in &fleet.pods {
        if pod.profile != Profile::Http {
            continue;
        }
        let degraded = pod.degrades && degraded_now;
        let n = RPS * dt;
        // Healthy: 0.1% errors, almost every request under 100 ms. Degraded: 20% errors and
        // a fifth of the requests slower than 250 ms: enough for the upstream rule's 2-minute
        // window to cross 5% within the minute too.
        let (error_share, slow_share) = if degraded { (0.2, 0.2) } else { (0.001, 0.0) };
        let mut c = lock(&pod.counters);
        c.errors += n * error_share;
        c.ok += n * (1.0 - error_share);
        c.upstream_errors += n * error_share;
        c.upstream_ok += n * (1.0 - error_share);
        // Latency distribution: (upper bound index, share, typical seconds).
        let shares = [
            (0usize, 0.6 * (1.0 - slow_share), 0.02),
            (1, 0.3 * (1.0 - slow_share), 0.04),
            (2, 0.1 * (1.0 - slow_share), 0.08),
            (4, slow_share * 0.7, 0.4),
            (5, slow_share * 0.3, 0.8),
        ];
        for (bucket, share, seconds) in shares {
            let count = n * share;
            for b in c.buckets.iter_mut().skip(bucket) {
                *b += count;
            }
            c.sum += count * seconds;
        }
    }
}

/// The exposition body of one pod at time `t` seconds.
fn body(pod: &PodSim, t: f64) -> String {
    let mut out = String::new();
    match pod.profile {
        Profile::Http => {
            let c = lock(&pod.counters);
            let _ = writeln!(out, "# HELP http_requests_total Requests served.");
            let _ = writeln!(out, "# TYPE http_requests_total counter");
            let _ = writeln!(out, "http_requests_total{{code=\"200\"}} {:.0}", c.ok);
            let _ = writeln!(out, "http_requests_total{{code=\"500\"}} {:.0}", c.errors);
            let _ = writeln!(out, "# HELP http_request_duration_seconds Request latency.");
            let _ = writeln!(out, "# TYPE http_request_duration_seconds histogram");
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{le=\"{le}\"}} {:.0}",
                    c.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{le=\"+Inf\"}} {:.0}",
                c.buckets[6]
            );
            let _ = writeln!(out, "http_request_duration_seconds_sum {:.3}", c.sum);
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count {:.0}",
                c.buckets[6]
            );
            let _ = writeln!(
                out,
                "# HELP upstream_responses_total Responses as the load balancer saw them."
            );
            let _ = writeln!(out, "# TYPE upstream_responses_total counter");
            let _ = writeln!(
                out,
                "upstream_responses_total{{code=\"200\"}} {:.0}",
                c.upstream_ok
            );
            let _ = writeln!(
                out,
                "upstream_responses_total{{code=\"503\"}} {:.0}",
                c.upstream_errors
            );
        }
        Profile::Worker => {
            let warm = (t / pod.warmup).clamp(0.0, 1.0);
            // A queue that breathes between 5 and 35 items.
            let queue = 20.0 + 15.0 * (t / 7.0).sin();
            let _ = writeln!(out, "# HELP cache_warm_ratio Share of the cache loaded.");
            let _ = writeln!(out, "# TYPE cache_warm_ratio gauge");
            let _ = writeln!(out, "cache_warm_ratio {warm:.3}");
            let _ = writeln!(out, "# HELP work_queue_depth Items waiting.");
            let _ = writeln!(out, "# TYPE work_queue_depth gauge");
            let _ = writeln!(out, "work_queue_depth{{queue=\"jobs\"}} {queue:.0}");
        }
    }
    out
}

fn kube_state_metrics(fleet: &Fleet) -> String {
    let mut out = String::from(
        "# HELP kube_pod_container_status_restarts_total Container restarts.\n\
         # TYPE kube_pod_container_status_restarts_total counter\n",
    );
    for pod in &fleet.pods {
        let _ = writeln!(
            out,
            "kube_pod_container_status_restarts_total{{namespace=\"{}\",pod=\"{}\",container=\"app\"}} 0",
            fleet.namespace, pod.name
        );
    }
    out
}

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn serve_pod(State((fleet, pod)): State<(Arc<Fleet>, Arc<PodSim>)>) -> impl IntoResponse {
    let t = fleet.seconds();
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], body(&pod, t))
}

async fn serve_ksm(State(fleet): State<Arc<Fleet>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, TEXT_FORMAT)],
        kube_state_metrics(&fleet),
    )
}

async fn listen(addr: SocketAddr, app: Router) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listening on {addr}: {e} (is another demo running?)"))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("fleet: server {addr}: {e}");
        }
    });
    Ok(())
}

async fn client(kubeconfig: &PathBuf) -> Result<Client, String> {
    podgate::source::init_tls();
    let kc = Kubeconfig::read_from(kubeconfig)
        .map_err(|e| format!("reading {}: {e}", kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("loading {}: {e}", kubeconfig.display()))?;
    Client::try_from(config).map_err(|e| format!("kube client: {e}"))
}

fn pod_manifest(pod: &PodSim, port: u16) -> Result<Pod, String> {
    let (profile, gates): (&str, &[&str]) = match pod.profile {
        Profile::Http => ("http", &HTTP_GATES),
        Profile::Worker => ("worker", &WORKER_GATES),
    };
    let gates: Vec<Value> = gates.iter().map(|g| json!({"conditionType": g})).collect();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "labels": {"app.kubernetes.io/name": pod.name.trim_end_matches(|c: char| c == '-' || c.is_ascii_digit()), "podgate.dev/profile": profile},
        },
        "spec": {
            "nodeName": NODE,
            "terminationGracePeriodSeconds": 0,
            "readinessGates": gates,
            "containers": [{
                "name": "app",
                "image": "registry.invalid/podgate-demo:1",
                "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}],
            }],
        },
    }))
    .map_err(|e| format!("pod manifest for {}: {e}", pod.name))
}

/// Creates the namespace if needed and replaces the fleet's pods.
async fn create_pods(client: &Client, fleet: &Fleet, port: u16) -> Result<(), String> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces
        .get_opt(&fleet.namespace)
        .await
        .map_err(|e| format!("reading namespace {}: {e}", fleet.namespace))?
        .is_none()
    {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": fleet.namespace}}))
            .map_err(|e| format!("namespace manifest: {e}"))?;
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .map_err(|e| format!("creating namespace {}: {e}", fleet.namespace))?;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &fleet.namespace);
    // No kubelet confirms a graceful deletion: delete at once, and wait until they are gone.
    let old = pods
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("listing pods in {}: {e}", fleet.namespace))?;
    for p in old.items {
        if let Some(name) = p.metadata.name {
            let _ = pods
                .delete(&name, &DeleteParams::default().grace_period(0))
                .await;
        }
    }
    for _ in 0..100 {
        let left = pods
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing pods in {}: {e}", fleet.namespace))?;
        if left.items.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for pod in &fleet.pods {
        pods.create(&PostParams::default(), &pod_manifest(pod, port)?)
            .await
            .map_err(|e| format!("creating pod {}: {e}", pod.name))?;
    }
    Ok(())
}

fn condition<'a>(
    pod: &'a Pod,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn gates_of(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .map(|g| g.iter().map(|g| g.condition_type.clone()).collect())
        .unwrap_or_default()
}

/// `Ready` as a kubelet computes it: containers ready and every gate's condition True.
fn ready(pod: &Pod) -> bool {
    condition(pod, "ContainersReady").is_some_and(|c| c.status == "True")
        && gates_of(pod)
            .iter()
            .all(|g| condition(pod, g).is_some_and(|c| c.status == "True"))
}

fn status_condition(pod: &Pod, type_: &str, status: bool) -> Value {
    let status = if status { "True" } else { "False" };
    let since = match condition(pod, type_) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => None,
    }
    .unwrap_or(Time(Timestamp::now()));
    json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": since})
}

/// The kubelet's part: start each pod once (IP, Running, ContainersReady), then keep `Ready`
/// in line with the gates podgate sets. Strategic merge by condition type leaves podgate's
/// conditions alone.
async fn kubelet(client: &Client, fleet: &Fleet) -> Result<Vec<Pod>, String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &fleet.namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("listing pods: {e}"))?;
    let mut out = Vec::new();
    for pod in list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(sim) = fleet.pods.iter().find(|p| p.name == name) else {
            continue;
        };
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        let patch = if !running {
            let now = Time(Timestamp::now());
            let mut conds = vec![
                status_condition(&pod, "PodScheduled", true),
                status_condition(&pod, "Initialized", true),
                status_condition(&pod, "ContainersReady", true),
            ];
            conds.push(status_condition(&pod, "Ready", false));
            Some(json!({"status": {
                "phase": "Running",
                "podIP": sim.ip.to_string(),
                "podIPs": [{"ip": sim.ip.to_string()}],
                "hostIP": "127.0.0.1",
                "startTime": now,
                "containerStatuses": [{
                    "name": "app", "image": "registry.invalid/podgate-demo:1", "imageID": "",
                    "ready": true, "started": true, "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }],
                "conditions": conds,
            }}))
        } else {
            let want = ready(&pod);
            let have = condition(&pod, "Ready").is_some_and(|c| c.status == "True");
            (want != have)
                .then(|| json!({"status": {"conditions": [status_condition(&pod, "Ready", want)]}}))
        };
        let pod = match patch {
            Some(p) => api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(p))
                .await
                .map_err(|e| format!("patching status of {name}: {e}"))?,
            None => pod,
        };
        out.push(pod);
    }
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(out)
}

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn view(fleet: &Fleet, banner: &[String], pods: &[Pod], error: Option<&str>) -> String {
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(160)
        .max(100);
    let mut out = String::from("\x1b[H\x1b[2J");
    let (degraded, left) = fleet.degraded();
    let _ = writeln!(
        out,
        "podgate demo: namespace {}   {}",
        fleet.namespace,
        Timestamp::now().strftime("%H:%M:%S UTC")
    );
    for line in banner {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "web-2 is {} ({left}s until it {})   Ctrl-C stops everything\n",
        if degraded {
            "DEGRADED: 20% errors, slow requests"
        } else {
            "healthy"
        },
        if degraded { "recovers" } else { "degrades" }
    );
    let _ = writeln!(
        out,
        "{:<10} {:<7} {:<6} {:<29} {:<7} {:<17} MESSAGE",
        "POD", "PROFILE", "READY", "GATE", "STATUS", "REASON"
    );
    let fixed = 10 + 7 + 6 + 29 + 7 + 17 + 6;
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let profile = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("podgate.dev/profile"))
            .map(String::as_str)
            .unwrap_or("-");
        let ready = condition(pod, "Ready").map_or("-", |c| c.status.as_str());
        for (i, gate) in gates_of(pod).iter().enumerate() {
            let (status, reason, message) = match condition(pod, gate) {
                Some(c) => (
                    c.status.as_str(),
                    c.reason.as_deref().unwrap_or(""),
                    c.message.as_deref().unwrap_or(""),
                ),
                None => ("-", "(not set yet)", ""),
            };
            let (n, p, r) = if i == 0 {
                (name, profile, ready)
            } else {
                ("", "", "")
            };
            let _ = writeln!(
                out,
                "{n:<10} {p:<7} {r:<6} {gate:<29} {status:<7} {reason:<17} {}",
                cut(message, width.saturating_sub(fixed))
            );
        }
    }
    if let Some(e) = error {
        let _ = writeln!(out, "\n(API error, retrying: {e})");
    }
    out
}

async fn run(args: Args) -> Result<(), String> {
    let client = client(&args.kubeconfig).await?;
    let sims: Vec<Arc<PodSim>> = [
        ("web-1", Profile::Http, false, 0.0),
        ("web-2", Profile::Http, true, 0.0),
        ("web-3", Profile::Http, false, 0.0),
        ("worker-1", Profile::Worker, false, 25.0),
        ("worker-2", Profile::Worker, false, 50.0),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, profile, degrades, warmup))| {
        Arc::new(PodSim {
            name: name.to_string(),
            profile,
            ip: Ipv4Addr::new(127, 0, 77, 10 + i as u8),
            degrades,
            warmup,
            counters: Mutex::new(Counters::default()),
        })
    })
    .collect();
    let fleet = Arc::new(Fleet {
        pods: sims,
        started: Instant::now(),
        degraded_for: args.degraded_for,
        cycle: args.cycle.max(args.degraded_for + 1),
        namespace: args.namespace.clone(),
    });

    for pod in &fleet.pods {
        let app = Router::new()
            .route("/metrics", get(serve_pod))
            .with_state((fleet.clone(), pod.clone()));
        listen(SocketAddr::from((pod.ip, args.port)), app).await?;
    }
    let ksm_addr = SocketAddr::from((Ipv4Addr::new(127, 0, 77, 2), args.port));
    listen(
        ksm_addr,
        Router::new()
            .route("/metrics", get(serve_ksm))
            .with_state(fleet.clone()),
    )
    .await?;

    // Prometheus discovers the pods (with namespace and pod labels, as Kubernetes service
    // discovery would attach them) and the kube-state-metrics stand-in from these files.
    let pods_sd: Vec<Value> = fleet
        .pods
        .iter()
        .filter(|p| p.profile == Profile::Http)
        .map(|p| {
            json!({"targets": [format!("{}:{}", p.ip, args.port)],
                   "labels": {"namespace": fleet.namespace, "pod": p.name}})
        })
        .collect();
    let ksm_sd = json!([{"targets": [ksm_addr.to_string()]}]);
    for (file, value) in [
        ("fleet.json", json!(pods_sd)),
        ("kube-state-metrics.json", ksm_sd),
    ] {
        let path = args.targets_dir.join(file);
        std::fs::write(&path, value.to_string())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }

    {
        let fleet = fleet.clone();
        tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let now = Instant::now();
                advance(&fleet, (now - last).as_secs_f64());
                last = now;
            }
        });
    }

    create_pods(&client, &fleet, args.port).await?;
    let mut last_pods = Vec::new();
    loop {
        let error = match kubelet(&client, &fleet).await {
            Ok(pods) => {
                last_pods = pods;
                None
            }
            Err(e) => Some(e),
        };
        print!(
            "{}",
            view(&fleet, &args.banner, &last_pods, error.as_deref())
        );
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("fleet: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(degrades: bool) -> Fleet {
        Fleet {
            pods: vec![Arc::new(PodSim {
                name: "web-2".into(),
                profile: Profile::Http,
                ip: Ipv4Addr::LOCALHOST,
                degrades,
                warmup: 0.0,
                counters: Mutex::new(Counters::default()),
            })],
            started: Instant::now(),
            degraded_for: 60,
            cycle: 180,
            namespace: "demo".into(),
        }
    }

    #[test]
    fn bodies_parse_as_prometheus_text() {
        let f = fleet(false);
        advance(&f, 10.0);
        let text = body(&f.pods[0], 1.0);
        let samples: Vec<_> = podgate::exposition::parse(&text, podgate::exposition::Format::Text)
            .collect::<Result<_, _>>()
            .expect("the fleet's body parses");
        assert!(samples.len() > 10, "{text}");
        let c = lock(&f.pods[0].counters);
        assert!((c.ok + c.errors - 400.0).abs() < 1e-6, "40 rps for 10 s");
        assert!(c.buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative");
    }
}
