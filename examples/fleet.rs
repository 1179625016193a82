//! A small fleet of pods for the podgate demo (`scripts/demo`), on a control plane without a
//! kubelet or scheduler: it creates a namespace, five pods and a Deployment behind a Service that
//! declare podgate's gates, serves each pod's `/metrics` on its own loopback address, plays the
//! kubelet for them (pod IP, Running, ContainersReady, and `Ready` computed from the gates),
//! rolls the Deployment to a bad version and heals it on a timeline, and prints a live view
//! every second.
//!
//! - `web-1..3` (`podgate.dev/profile: http`) serve HTTP request counters and latency
//!   histograms, and upstream response counters that Prometheus scrapes for the batched rule;
//!   `web-2` degrades (errors and slow requests) for a while on a cycle, then recovers.
//! - `worker-1..2` (`podgate.dev/profile: worker`) warm their cache after start.
//! - A stand-in for kube-state-metrics reports each pod's container restarts (zero).
//! - `checkout`: a Deployment (3 replicas, maxSurge 1, maxUnavailable 0) gated by the shipped
//!   `http-errors-latency` rule, behind a Service. Its Deployment, ReplicaSet and EndpointSlice
//!   controllers are a real kube-controller-manager's; the fleet runs the pods they create, each
//!   on a fresh 127.0.78.x address. Once v1 is available (and `--rollout-after` has passed) the
//!   fleet rolls it to v2, which fails 30% of requests, and `--heal-after` seconds later v2
//!   serves well again.
//!
//! EndpointSlices refuse loopback addresses. A checkout pod therefore has two: its 127.0.78.x
//! address first (`status.podIP`, the one podgate scrapes), then an IPv6 address from the
//! discard-only prefix 100::/64 (RFC 6666) that nothing dials, which the IPv6-only Service's
//! slices list. That Service needs a control plane with an IPv6 service range; without one the
//! view says so and shows no endpoints.
//!
//! ```sh
//! cargo run --example fleet -- --kubeconfig admin.kubeconfig --targets-dir DIR
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Parser;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, PodCondition, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use tokio::sync::oneshot;

#[derive(Debug, Parser)]
#[command(about = "A demo fleet of gated pods with live metrics endpoints")]
struct Args {
    /// Kubeconfig of a user that may create namespaces, nodes, pods, services and deployments
    /// and patch pods/status.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Namespace of the fleet (created if missing; its old pods and deployment are replaced).
    #[arg(long, default_value = "podgate-demo")]
    namespace: String,
    /// Where to write Prometheus file_sd target lists (fleet.json, kube-state-metrics.json).
    #[arg(long)]
    targets_dir: PathBuf,
    /// Port every pod's endpoint listens on, each on its own loopback address.
    #[arg(long, default_value_t = 9100)]
    port: u16,
    /// Seconds web-2 stays degraded in each cycle.
    #[arg(long, default_value_t = 60)]
    degraded_for: u64,
    /// Seconds of each cycle (healthy for the rest).
    #[arg(long, default_value_t = 180)]
    cycle: u64,
    /// Seconds after start before checkout rolls to the bad version (later if v1 is not
    /// available by then).
    #[arg(long, default_value_t = 60)]
    rollout_after: u64,
    /// Seconds the bad version fails 30% of its requests before it heals.
    #[arg(long, default_value_t = 180)]
    heal_after: u64,
    /// The Deployment's minReadySeconds. At least the rule's failureThreshold x interval (30 s)
    /// holds a version that passes its first evaluation and fails the next ones.
    #[arg(long, default_value_t = 40)]
    min_ready_seconds: u32,
    /// The Deployment's progressDeadlineSeconds (more than minReadySeconds).
    #[arg(long, default_value_t = 90)]
    progress_deadline: u32,
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

/// The rolled Deployment, its Service and its pods' labels.
const CHECKOUT: &str = "checkout";
const CHECKOUT_GATE: &str = "podgate.dev/http-healthy";
const APP_LABEL: &str = "app.kubernetes.io/name";
const VERSION_LABEL: &str = "app.kubernetes.io/version";
const GOOD_VERSION: &str = "v1";
const BAD_VERSION: &str = "v2";
const REPLICAS: i32 = 3;
/// Share of the bad version's requests that fail: 30 times the rule's 1% threshold.
const BAD_ERROR_SHARE: f64 = 0.3;
/// Healthy traffic: 0.1% errors, no slow requests.
const HEALTHY: (f64, f64) = (0.001, 0.0);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Profile {
    Http,
    Worker,
}

/// How a pod's traffic goes over time.
#[derive(Clone, Debug, PartialEq)]
enum Behaviour {
    Steady,
    /// Degrades on the fleet's cycle (web-2).
    Cycles,
    /// A checkout pod of this version: the bad version fails while the timeline says so.
    Version(String),
}

/// The (error share, slow share) of a pod's requests now.
fn traffic_mix(behaviour: &Behaviour, cycle_degraded: bool, bad_version_fails: bool) -> (f64, f64) {
    match behaviour {
        Behaviour::Steady => HEALTHY,
        // 20% errors and a fifth of the requests slower than 250 ms: enough for the upstream
        // rule's 2-minute window to cross 5% within the minute too.
        Behaviour::Cycles if cycle_degraded => (0.2, 0.2),
        Behaviour::Version(v) if v == BAD_VERSION && bad_version_fails => (BAD_ERROR_SHARE, 0.0),
        Behaviour::Cycles | Behaviour::Version(_) => HEALTHY,
    }
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
    /// A second address for EndpointSlices, never dialled (see the module docs).
    ipv6: Option<Ipv6Addr>,
    behaviour: Behaviour,
    /// Seconds a worker takes to warm its cache.
    warmup: f64,
    counters: Mutex<Counters>,
}

impl PodSim {
    fn new(name: &str, profile: Profile, ip: Ipv4Addr, behaviour: Behaviour) -> PodSim {
        PodSim {
            name: name.to_string(),
            profile,
            ip,
            ipv6: None,
            behaviour,
            warmup: 0.0,
            counters: Mutex::new(Counters::default()),
        }
    }

    /// The pod's IPs as its status lists them, the scraped one first.
    fn addresses(&self) -> Vec<IpAddr> {
        std::iter::once(IpAddr::V4(self.ip))
            .chain(self.ipv6.map(IpAddr::V6))
            .collect()
    }
}

/// The story of the checkout Deployment, in seconds.
#[derive(Clone, Copy, Debug)]
struct Timeline {
    rollout_after: u64,
    heal_after: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// v1 runs; the rollout to v2 is due in `rollout_in` seconds (0: due, once v1 is available).
    Steady { rollout_in: u64 },
    /// Rolled to v2 `since` seconds ago; it fails for `heal_in` more seconds.
    Failing { since: u64, heal_in: u64 },
    /// v2 healed `since` seconds ago.
    Healed { since: u64 },
}

impl Timeline {
    /// The phase at `now`, given when the rollout started (both in seconds since the start).
    fn phase(&self, now: u64, rolled_at: Option<u64>) -> Phase {
        let Some(at) = rolled_at else {
            return Phase::Steady {
                rollout_in: self.rollout_after.saturating_sub(now),
            };
        };
        let since = now.saturating_sub(at);
        if since < self.heal_after {
            Phase::Failing {
                since,
                heal_in: self.heal_after - since,
            }
        } else {
            Phase::Healed {
                since: since - self.heal_after,
            }
        }
    }
}

/// Whether to roll now: the rollout is due and v1 has completed (a rollout on top of a rollout
/// would tell a muddled story).
fn should_roll(phase: Phase, v1_complete: bool) -> bool {
    phase == Phase::Steady { rollout_in: 0 } && v1_complete
}

/// A Deployment pod the fleet runs; dropping it stops its endpoint.
struct Adopted {
    sim: Arc<PodSim>,
    _stop: oneshot::Sender<()>,
}

#[derive(Default)]
struct Adoptions {
    /// By pod UID.
    pods: BTreeMap<String, Adopted>,
    /// The last octet handed out last.
    last: u8,
}

/// A free last octet for 127.0.78.x after `last`, cycling through 10..=250.
fn next_octet(in_use: &BTreeSet<u8>, last: u8) -> Option<u8> {
    let start = if (10..250).contains(&last) {
        last + 1
    } else {
        10
    };
    (start..=250)
        .chain(10..start)
        .find(|octet| !in_use.contains(octet))
}

struct Fleet {
    pods: Vec<Arc<PodSim>>,
    adopted: Mutex<Adoptions>,
    started: Instant,
    degraded_for: u64,
    cycle: u64,
    namespace: String,
    timeline: Timeline,
    /// When checkout rolled to the bad version, in seconds since the start.
    rolled_at: Mutex<Option<u64>>,
    port: u16,
    targets_dir: PathBuf,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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

    fn phase(&self) -> Phase {
        self.timeline
            .phase(self.started.elapsed().as_secs(), *lock(&self.rolled_at))
    }

    /// Every pod with HTTP counters: the fixed ones and the adopted ones.
    fn http_pods(&self) -> Vec<Arc<PodSim>> {
        let adopted = lock(&self.adopted);
        self.pods
            .iter()
            .chain(adopted.pods.values().map(|a| &a.sim))
            .filter(|p| p.profile == Profile::Http)
            .cloned()
            .collect()
    }

    /// The fleet's endpoint for a Deployment pod, started on a fresh address the first time the
    /// pod is seen.
    async fn adopt(self: &Arc<Self>, pod: &Pod) -> Result<Arc<PodSim>, String> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let octet = {
            let adopted = lock(&self.adopted);
            if let Some(a) = adopted.pods.get(&uid) {
                return Ok(a.sim.clone());
            }
            let in_use: BTreeSet<u8> = adopted
                .pods
                .values()
                .map(|a| a.sim.ip.octets()[3])
                .collect();
            next_octet(&in_use, adopted.last)
                .ok_or_else(|| format!("no free 127.0.78.x address left for pod {name}"))?
        };
        let version = label(pod, VERSION_LABEL).unwrap_or("-").to_string();
        let mut sim = PodSim::new(
            &name,
            Profile::Http,
            Ipv4Addr::new(127, 0, 78, octet),
            Behaviour::Version(version),
        );
        sim.ipv6 = Some(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0x78, u16::from(octet)));
        let sim = Arc::new(sim);
        let (stop, stopped) = oneshot::channel::<()>();
        listen(
            SocketAddr::from((sim.ip, self.port)),
            pod_router(self, &sim),
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .map_err(|e| format!("pod {name}: {e}"))?;
        {
            let mut adopted = lock(&self.adopted);
            adopted.last = octet;
            adopted.pods.insert(
                uid,
                Adopted {
                    sim: sim.clone(),
                    _stop: stop,
                },
            );
        }
        self.write_targets()?;
        Ok(sim)
    }

    /// Stops serving the adopted pods whose UID is not in `live`.
    fn release_all_but(&self, live: &BTreeSet<String>) -> Result<(), String> {
        let released = {
            let mut adopted = lock(&self.adopted);
            let before = adopted.pods.len();
            adopted.pods.retain(|uid, _| live.contains(uid));
            before != adopted.pods.len()
        };
        if released {
            self.write_targets()?;
        }
        Ok(())
    }

    /// Prometheus discovers the HTTP pods (with namespace and pod labels, as Kubernetes service
    /// discovery would attach them) from this file. Written whole and renamed: Prometheus may
    /// read it at any time.
    fn write_targets(&self) -> Result<(), String> {
        let targets: Vec<Value> = self
            .http_pods()
            .iter()
            .map(|p| {
                json!({"targets": [format!("{}:{}", p.ip, self.port)],
                       "labels": {"namespace": self.namespace, "pod": p.name}})
            })
            .collect();
        write_file(
            &self.targets_dir.join("fleet.json"),
            &json!(targets).to_string(),
        )
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming {}: {e}", tmp.display()))
}

/// Advances every web pod's counters by `dt` seconds of traffic.
fn advance(fleet: &Fleet, dt: f64) {
    let (degraded_now, _) = fleet.degraded();
    let failing = matches!(fleet.phase(), Phase::Failing { .. });
    for pod in fleet.http_pods() {
        let n = RPS * dt;
        let (error_share, slow_share) = traffic_mix(&pod.behaviour, degraded_now, failing);
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

fn pod_router(fleet: &Arc<Fleet>, pod: &Arc<PodSim>) -> Router {
    Router::new()
        .route("/metrics", get(serve_pod))
        .with_state((fleet.clone(), pod.clone()))
}

/// Serves `app` on `addr` until `stop` completes.
async fn listen(
    addr: SocketAddr,
    app: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listening on {addr}: {e} (is another demo running?)"))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
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

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
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
            "labels": {APP_LABEL: pod.name.trim_end_matches(|c: char| c == '-' || c.is_ascii_digit()), "podgate.dev/profile": profile},
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

fn image(version: &str) -> String {
    format!("registry.invalid/{CHECKOUT}:{version}")
}

/// checkout: rolls one pod at a time and never below 3 ready pods; a new pod counts once it has
/// been Ready (gate True) for minReadySeconds.
fn deployment_manifest(args: &Args) -> Result<Deployment, String> {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": CHECKOUT, "labels": {APP_LABEL: CHECKOUT}},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {APP_LABEL: CHECKOUT}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "minReadySeconds": args.min_ready_seconds,
            "progressDeadlineSeconds": args.progress_deadline,
            "revisionHistoryLimit": 2,
            "template": {
                "metadata": {"labels": {
                    APP_LABEL: CHECKOUT,
                    VERSION_LABEL: GOOD_VERSION,
                    "podgate.dev/profile": "http",
                }},
                "spec": {
                    // No scheduler runs: the pods name the demo's node.
                    "nodeName": NODE,
                    "terminationGracePeriodSeconds": 0,
                    "readinessGates": [{"conditionType": CHECKOUT_GATE}],
                    "containers": [{
                        "name": "app",
                        "image": image(GOOD_VERSION),
                        "ports": [{"name": "metrics", "containerPort": args.port, "protocol": "TCP"}],
                    }],
                },
            },
        },
    }))
    .map_err(|e| format!("deployment manifest: {e}"))
}

/// IPv6 only: its slices list the pods' IPv6 addresses (loopback IPv4 ones are refused).
/// Headless: nothing routes a cluster IP here.
fn service_manifest() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": CHECKOUT},
        "spec": {
            "clusterIP": "None",
            "ipFamilyPolicy": "SingleStack",
            "ipFamilies": ["IPv6"],
            "selector": {APP_LABEL: CHECKOUT},
            "ports": [{"name": "http", "port": 80, "targetPort": "metrics", "protocol": "TCP"}],
        },
    })
}

fn checkout_selector() -> ListParams {
    ListParams::default().labels(&format!("{APP_LABEL}={CHECKOUT}"))
}

/// Creates the namespace and node if needed, replaces the fleet's pods and deployment, and
/// applies the Service. Returns why there are no EndpointSlices to show, if there are none.
async fn create_objects(
    client: &Client,
    fleet: &Fleet,
    args: &Args,
) -> Result<Option<String>, String> {
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
    // The EndpointSlice controller skips pods on nodes that do not exist.
    let nodes: Api<Node> = Api::all(client.clone());
    if nodes
        .get_opt(NODE)
        .await
        .map_err(|e| format!("reading node {NODE}: {e}"))?
        .is_none()
    {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": NODE}}))
            .map_err(|e| format!("node manifest: {e}"))?;
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_already_exists() => {}
            Err(e) => return Err(format!("creating node {NODE}: {e}")),
        }
    }

    // Leftovers of an earlier run on the same control plane. No garbage collector runs: the
    // deployment first (so it makes no new ReplicaSets), its ReplicaSets (so they make no new
    // pods), then every pod.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &fleet.namespace);
    match deployments.delete(CHECKOUT, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.is_not_found() => {}
        Err(e) => return Err(format!("deleting deployment {CHECKOUT}: {e}")),
    }
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &fleet.namespace);
    replica_sets
        .delete_collection(&DeleteParams::default(), &checkout_selector())
        .await
        .map_err(|e| format!("deleting the {CHECKOUT} ReplicaSets: {e}"))?;
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
        pods.create(&PostParams::default(), &pod_manifest(pod, args.port)?)
            .await
            .map_err(|e| format!("creating pod {}: {e}", pod.name))?;
    }

    let services: Api<Service> = Api::namespaced(client.clone(), &fleet.namespace);
    let no_slices = match services
        .patch(
            CHECKOUT,
            &PatchParams::apply("podgate-demo-fleet").force(),
            &Patch::Apply(service_manifest()),
        )
        .await
    {
        Ok(_) => None,
        Err(kube::Error::Api(s)) if s.message.contains("not configured on this cluster") => {
            Some(format!(
                "no EndpointSlices: the control plane has no IPv6 service range, which service/{CHECKOUT} needs ({})",
                s.message
            ))
        }
        Err(e) => return Err(format!("applying service {CHECKOUT}: {e}")),
    };
    deployments
        .create(&PostParams::default(), &deployment_manifest(args)?)
        .await
        .map_err(|e| format!("creating deployment {CHECKOUT}: {e}"))?;
    Ok(no_slices)
}

fn condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
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
fn ready(pod: &Pod, containers_ready: bool) -> bool {
    containers_ready
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

/// The status patch a kubelet running `pod` at `ips` would send now, if any: the first time
/// (or when the pod shows other addresses) it starts the pod — Running, the IPs,
/// ContainersReady; after that it keeps `Ready` in line with the gates podgate sets. Strategic
/// merge by condition type leaves podgate's conditions alone.
fn kubelet_patch(pod: &Pod, ips: &[IpAddr]) -> Option<Value> {
    let status = pod.status.as_ref();
    let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
    let have: Vec<&str> = status
        .and_then(|s| s.pod_ips.as_ref())
        .map(|ips| ips.iter().map(|i| i.ip.as_str()).collect())
        .unwrap_or_default();
    let want: Vec<String> = ips.iter().map(ToString::to_string).collect();
    if running && have == want {
        let want = ready(pod, true);
        let have = condition(pod, "Ready").is_some_and(|c| c.status == "True");
        return (want != have)
            .then(|| json!({"status": {"conditions": [status_condition(pod, "Ready", want)]}}));
    }
    let now = Time(Timestamp::now());
    let image = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let pod_ips: Vec<Value> = want.iter().map(|ip| json!({"ip": ip})).collect();
    Some(json!({"status": {
        "phase": "Running",
        "podIP": want.first(),
        "podIPs": pod_ips,
        "hostIP": "127.0.0.1",
        "startTime": now,
        "containerStatuses": [{
            "name": "app", "image": image, "imageID": "",
            "ready": true, "started": true, "restartCount": 0,
            "state": {"running": {"startedAt": now}},
        }],
        "conditions": [
            status_condition(pod, "PodScheduled", true),
            status_condition(pod, "Initialized", true),
            status_condition(pod, "ContainersReady", true),
            status_condition(pod, "Ready", ready(pod, true)),
        ],
    }}))
}

fn is_checkout(pod: &Pod) -> bool {
    label(pod, APP_LABEL) == Some(CHECKOUT)
        && pod
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o.kind == "ReplicaSet"))
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}

/// The kubelet's part for every pod of the fleet: the fixed pods at their addresses, the
/// Deployment's pods at addresses handed out when first seen; a deleted pod stops being served
/// and its deletion is confirmed. Returns the pods as they are now, and problems with single
/// pods (the next turn retries them).
async fn kubelet(client: &Client, fleet: &Arc<Fleet>) -> Result<(Vec<Pod>, Vec<String>), String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &fleet.namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("listing pods: {e}"))?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut live = BTreeSet::new();
    for pod in list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ips = if let Some(sim) = fleet.pods.iter().find(|p| p.name == name) {
            sim.addresses()
        } else if is_checkout(&pod) {
            if pod.metadata.deletion_timestamp.is_some() {
                // Not added to `live`: its endpoint stops below.
                if let Err(e) = api
                    .delete(&name, &DeleteParams::default().grace_period(0))
                    .await
                    && !not_found(&e)
                {
                    problems.push(format!("confirming the deletion of {name}: {e}"));
                }
                continue;
            }
            live.insert(pod.metadata.uid.clone().unwrap_or_default());
            match fleet.adopt(&pod).await {
                Ok(sim) => sim.addresses(),
                Err(e) => {
                    problems.push(e);
                    out.push(pod);
                    continue;
                }
            }
        } else {
            continue;
        };
        let pod = match kubelet_patch(&pod, &ips) {
            Some(p) => match api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(p))
                .await
            {
                Ok(pod) => pod,
                Err(e) if not_found(&e) => continue,
                Err(e) => {
                    problems.push(format!("patching status of {name}: {e}"));
                    pod
                }
            },
            None => pod,
        };
        out.push(pod);
    }
    if let Err(e) = fleet.release_all_but(&live) {
        problems.push(e);
    }
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok((out, problems))
}

/// What the view shows of the rollout.
#[derive(Default)]
struct Rollout {
    deployment: Option<Deployment>,
    replica_sets: Vec<ReplicaSet>,
    /// Pod name to the `ready` of its endpoint in the Service's slices.
    endpoints: BTreeMap<String, bool>,
}

async fn read_rollout(client: &Client, namespace: &str, slices: bool) -> Result<Rollout, String> {
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get_opt(CHECKOUT)
        .await
        .map_err(|e| format!("reading deployment {CHECKOUT}: {e}"))?;
    let mut replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), namespace)
        .list(&checkout_selector())
        .await
        .map_err(|e| format!("listing the {CHECKOUT} ReplicaSets: {e}"))?
        .items;
    replica_sets.sort_by(|a, b| {
        (&a.metadata.creation_timestamp, &a.metadata.name)
            .cmp(&(&b.metadata.creation_timestamp, &b.metadata.name))
    });
    let mut endpoints = BTreeMap::new();
    if slices {
        let list = Api::<EndpointSlice>::namespaced(client.clone(), namespace)
            .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={CHECKOUT}")))
            .await
            .map_err(|e| format!("listing the EndpointSlices of service {CHECKOUT}: {e}"))?;
        for slice in list.items {
            for ep in slice.endpoints {
                if let Some(pod) = ep.target_ref.and_then(|r| r.name) {
                    let ready = ep.conditions.and_then(|c| c.ready).unwrap_or(false);
                    endpoints.insert(pod, ready);
                }
            }
        }
    }
    Ok(Rollout {
        deployment,
        replica_sets,
        endpoints,
    })
}

/// A Deployment whose current template runs on every replica, all available, no old pods.
fn rollout_complete(d: &Deployment) -> bool {
    let (Some(spec), Some(status)) = (d.spec.as_ref(), d.status.as_ref()) else {
        return false;
    };
    let want = spec.replicas.unwrap_or(1);
    status.observed_generation.is_some()
        && status.observed_generation >= d.metadata.generation
        && status.updated_replicas == Some(want)
        && status.available_replicas == Some(want)
        && status.replicas == Some(want)
}

/// Rolls checkout to the bad version: a new template (version label and image).
async fn roll(client: &Client, namespace: &str) -> Result<(), String> {
    let patch = json!({"spec": {"template": {
        "metadata": {"labels": {VERSION_LABEL: BAD_VERSION}},
        "spec": {"containers": [{"name": "app", "image": image(BAD_VERSION)}]},
    }}});
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .patch(CHECKOUT, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map_err(|e| format!("rolling deployment {CHECKOUT} to {BAD_VERSION}: {e}"))?;
    Ok(())
}

/// `m:ss`.
fn clock(seconds: u64) -> String {
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// Splits `s` into lines of at most `width` characters at spaces (a longer word is split), at
/// most `max_lines` of them; text cut off is marked with `…`.
fn wrap(s: &str, width: usize, max_lines: usize) -> Vec<String> {
    let width = width.max(8);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let len = line.chars().count();
            let gap = usize::from(len > 0);
            if len + gap + word.len() <= width {
                if gap == 1 {
                    line.push(' ');
                }
                line.extend(word.iter());
                break;
            }
            if len > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a line.
            lines.push(word.drain(..width).collect());
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    if lines.len() > max_lines.max(1) {
        lines.truncate(max_lines.max(1));
        if let Some(last) = lines.last_mut() {
            let kept: String = last.chars().take(width - 1).collect();
            *last = format!("{kept}…");
        }
    }
    lines
}

/// `text` wrapped to `width`, the first line after `lead`, the others indented as far.
fn para(out: &mut String, lead: &str, text: &str, width: usize) {
    para_at(out, lead, lead.chars().count(), text, width);
}

/// `text` wrapped to `width`, the first line after `lead`, the others after `indent` spaces.
fn para_at(out: &mut String, lead: &str, indent: usize, text: &str, width: usize) {
    let room = width.saturating_sub(indent.max(lead.chars().count()));
    for (i, line) in wrap(text, room, 4).iter().enumerate() {
        if i == 0 {
            let _ = writeln!(out, "{lead}{line}");
        } else {
            let _ = writeln!(out, "{:indent$}{line}", "");
        }
    }
}

/// A table whose last column, a message, gets the rest of the line and wraps; when less than
/// 40 columns are left it goes on lines of its own below the row, indented.
struct Table {
    headers: Vec<&'static str>,
    rows: Vec<(Vec<String>, String)>,
}

impl Table {
    fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>, message: &str) {
        self.rows.push((cells, message.to_string()));
    }

    fn render(&self, out: &mut String, width: usize) {
        let widths: Vec<usize> = self
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                self.rows
                    .iter()
                    .filter_map(|(cells, _)| cells.get(i))
                    .map(|c| c.chars().count())
                    .chain(std::iter::once(h.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let start: usize = widths.iter().map(|w| w + 1).sum();
        let inline = width.saturating_sub(start) >= 40;
        let line = |out: &mut String, cells: &[String], message: &str| {
            let mut text = String::new();
            for (cell, w) in cells.iter().zip(&widths) {
                let _ = write!(text, "{cell:<w$} ");
            }
            text.push_str(message);
            let _ = writeln!(out, "{}", text.trim_end());
        };
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        line(out, &headers, "MESSAGE");
        for (cells, message) in &self.rows {
            if inline {
                let mut lines = wrap(message, width - start, 3).into_iter();
                line(out, cells, &lines.next().unwrap_or_default());
                for more in lines {
                    let _ = writeln!(out, "{:start$}{more}", "");
                }
            } else {
                line(out, cells, "");
                for more in wrap(message, width.saturating_sub(4), 3) {
                    let _ = writeln!(out, "    {more}");
                }
            }
        }
    }
}

/// A banner line as given; a longer one wrapped under its text, after its 12-column title.
fn banner(out: &mut String, line: &str, width: usize) {
    if line.chars().count() <= width {
        let _ = writeln!(out, "{line}");
        return;
    }
    let lead: String = line.chars().take(12).collect();
    let rest: String = line.chars().skip(12).collect();
    para_at(out, &lead, 12, rest.trim_start(), width);
}

/// The terminal's width: $COLUMNS, else the controlling terminal's (asked each frame, so a
/// resize takes effect; works when stdout is a pipe), else 120.
fn terminal_width() -> usize {
    let from_env = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok());
    let from_tty = || {
        let tty = std::fs::File::open("/dev/tty").ok()?;
        let out = std::process::Command::new("stty")
            .arg("size")
            .stdin(tty)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    from_env
        .or_else(from_tty)
        .filter(|w: &usize| *w > 0)
        .unwrap_or(120)
        .clamp(80, 200)
}

/// A gate's (status, reason, message) as the view shows them.
fn gate_cells<'a>(pod: &'a Pod, gate: &str) -> (&'a str, &'a str, &'a str) {
    match condition(pod, gate) {
        Some(c) => (
            c.status.as_str(),
            c.reason.as_deref().unwrap_or(""),
            c.message.as_deref().unwrap_or(""),
        ),
        None => ("-", "(not set yet)", ""),
    }
}

fn pods_view(out: &mut String, fleet: &Fleet, pods: &[Pod], width: usize) {
    let (degraded, left) = fleet.degraded();
    let state = if degraded {
        format!("web-2 is DEGRADED (20% errors, slow requests), recovers in {left}s")
    } else {
        format!("web-2 is healthy, degrades in {left}s")
    };
    para(
        out,
        "Pods   ",
        &format!("{state}   (gates: podgate.dev/…)"),
        width,
    );
    let mut table = Table::new(&["POD", "READY", "GATE", "STATUS", "REASON"]);
    for pod in pods.iter().filter(|p| !is_checkout(p)) {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let ready = condition(pod, "Ready").map_or("-", |c| c.status.as_str());
        for (i, gate) in gates_of(pod).iter().enumerate() {
            let (status, reason, message) = gate_cells(pod, gate);
            let (n, r) = if i == 0 { (name, ready) } else { ("", "") };
            let gate = gate.strip_prefix("podgate.dev/").unwrap_or(gate);
            table.row(
                [n, r, gate, status, reason].map(String::from).to_vec(),
                message,
            );
        }
    }
    table.render(out, width);
}

/// The story so far, one line per step.
fn timeline_view(out: &mut String, fleet: &Fleet, complete: bool) {
    let now = fleet.started.elapsed().as_secs();
    let rolled_at = *lock(&fleet.rolled_at);
    let heal = fleet.timeline.heal_after;
    let _ = writeln!(out, "  timeline (now {})", clock(now));
    let step = |out: &mut String, at: String, what: &str, state: &str| {
        let line = format!("  {at:>5} {what:<37} {state}");
        let _ = writeln!(out, "{}", line.trim_end());
    };
    match fleet.timeline.phase(now, rolled_at) {
        Phase::Steady { rollout_in } => {
            step(
                out,
                "0:00".into(),
                &format!("checkout {GOOD_VERSION} starts"),
                if complete {
                    "done: 3 pods available"
                } else {
                    "NOW: coming up"
                },
            );
            let when = if rollout_in > 0 {
                format!("in {}", clock(rollout_in))
            } else {
                format!("due, once {GOOD_VERSION} is available")
            };
            step(
                out,
                format!("~{}", clock(fleet.timeline.rollout_after)),
                &format!("roll to {BAD_VERSION} (fails 30% of requests)"),
                &when,
            );
            step(
                out,
                format!("+{}", clock(heal)),
                &format!("{BAD_VERSION} heals"),
                "",
            );
        }
        Phase::Failing { heal_in, .. } => {
            let at = rolled_at.unwrap_or_default();
            step(
                out,
                "0:00".into(),
                &format!("checkout {GOOD_VERSION} starts"),
                "done",
            );
            step(
                out,
                clock(at),
                &format!("rolled to {BAD_VERSION} (fails 30% of requests)"),
                "NOW: podgate holds the rollout",
            );
            step(
                out,
                clock(at + heal),
                &format!("{BAD_VERSION} heals"),
                &format!("in {}", clock(heal_in)),
            );
        }
        Phase::Healed { .. } => {
            let at = rolled_at.unwrap_or_default();
            step(
                out,
                "0:00".into(),
                &format!("checkout {GOOD_VERSION} starts"),
                "done",
            );
            step(
                out,
                clock(at),
                &format!("rolled to {BAD_VERSION} (fails 30% of requests)"),
                "done: held",
            );
            step(
                out,
                clock(at + heal),
                &format!("{BAD_VERSION} heals (its 1m error rate drains)"),
                if complete {
                    "done: rollout complete"
                } else {
                    "NOW: the rollout proceeds"
                },
            );
        }
    }
}

/// What to look at in the current phase.
fn watch_hint(phase: Phase, progress_deadline: u32) -> String {
    match phase {
        Phase::Steady { .. } => format!(
            "watch: new pods are False (Warming) until rate() has two scrapes; a pod counts as \
             available after minReadySeconds; then the rollout to {BAD_VERSION} starts"
        ),
        Phase::Failing { since, .. } => format!(
            "watch: the {BAD_VERSION} pod's gate is False with the reason in its message, its \
             endpoint is not ready, the 3 {GOOD_VERSION} pods keep serving; after {progress_deadline}s \
             without progress (now {since}s) the Deployment reports ProgressDeadlineExceeded"
        ),
        Phase::Healed { .. } => format!(
            "watch: the {BAD_VERSION} gate turns True once the error rate drains, then one old pod \
             goes per new available pod; the slices end up holding only {BAD_VERSION} pods"
        ),
    }
}

/// The Deployment's counts, and its conditions.
fn deployment_lines(d: &Deployment) -> (String, String) {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let version = d
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get(VERSION_LABEL))
        .map_or("-", String::as_str);
    let Some(status) = d
        .status
        .as_ref()
        .filter(|s| s.observed_generation.is_some())
    else {
        return (format!("template {version}, no status yet"), String::new());
    };
    let n = |v: Option<i32>| v.unwrap_or(0);
    let counts = format!(
        "template {version}, updated {}/{want}, ready {}, available {}, pods {}",
        n(status.updated_replicas),
        n(status.ready_replicas),
        n(status.available_replicas),
        n(status.replicas),
    );
    let conditions = status
        .conditions
        .iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={} {}",
                c.type_,
                c.status,
                c.reason.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    (counts, conditions)
}

fn replica_set_line(rs: &ReplicaSet) -> String {
    let name = rs.metadata.name.as_deref().unwrap_or("-");
    let version = rs
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(VERSION_LABEL))
        .map_or("-", String::as_str);
    let pods = rs.status.as_ref().map_or(0, |s| s.replicas);
    let available = rs
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    let want = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    format!("{name} ({version}): {pods}/{want} pods, {available} available")
}

/// The Service's endpoints by version and readiness, e.g. `4 endpoints: 3 v1 ready, 1 v2 not
/// ready`.
fn slices_line(endpoints: &BTreeMap<String, bool>, pods: &[Pod]) -> String {
    let mut groups: BTreeMap<(&str, bool), usize> = BTreeMap::new();
    for (name, ready) in endpoints {
        let version = pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name.as_str()))
            .and_then(|p| label(p, VERSION_LABEL))
            .unwrap_or("gone");
        *groups.entry((version, !*ready)).or_default() += 1;
    }
    let groups: Vec<String> = groups
        .iter()
        .map(|((version, not_ready), n)| {
            let state = if *not_ready { "not ready" } else { "ready" };
            format!("{n} {version} {state}")
        })
        .collect();
    format!(
        "service/{CHECKOUT}: {} endpoints{}{}",
        endpoints.len(),
        if groups.is_empty() { "" } else { ": " },
        groups.join(", ")
    )
}

struct Frame<'a> {
    banner: &'a [String],
    pods: &'a [Pod],
    rollout: &'a Rollout,
    /// Why no EndpointSlices are shown.
    no_slices: Option<&'a str>,
    min_ready_seconds: u32,
    progress_deadline: u32,
    problems: &'a [String],
}

fn rollout_view(out: &mut String, fleet: &Fleet, f: &Frame<'_>, width: usize) {
    let r = f.rollout;
    let complete = r.deployment.as_ref().is_some_and(rollout_complete);
    para(
        out,
        "Rollout ",
        &format!(
            "deployment/{CHECKOUT} ({REPLICAS} replicas, maxSurge 1, maxUnavailable 0, \
             minReadySeconds {}, progressDeadlineSeconds {}) behind service/{CHECKOUT}; gate \
             {CHECKOUT_GATE}",
            f.min_ready_seconds, f.progress_deadline
        ),
        width,
    );
    timeline_view(out, fleet, complete);
    para(
        out,
        "  ",
        &watch_hint(fleet.phase(), f.progress_deadline),
        width,
    );
    match &r.deployment {
        Some(d) => {
            let (counts, conditions) = deployment_lines(d);
            para(out, "  deployment  ", &counts, width);
            if !conditions.is_empty() {
                para(out, "              ", &conditions, width);
            }
            let stale = d
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .is_none();
            if stale && fleet.seconds() > 20.0 {
                para(
                    out,
                    "  ",
                    "(no Deployment controller has answered: does the control plane run \
                     kube-controller-manager?)",
                    width,
                );
            }
        }
        None => {
            let _ = writeln!(out, "  deployment  (not found)");
        }
    }
    for (i, rs) in r.replica_sets.iter().enumerate() {
        let title = if i == 0 { "replicasets" } else { "" };
        para(
            out,
            &format!("  {title:<11} "),
            &replica_set_line(rs),
            width,
        );
    }
    if f.no_slices.is_none() {
        para(
            out,
            "  slices      ",
            &slices_line(&r.endpoints, f.pods),
            width,
        );
    }
    let mut pods: Vec<&Pod> = f.pods.iter().filter(|p| is_checkout(p)).collect();
    pods.sort_by(|a, b| {
        (label(a, VERSION_LABEL), &a.metadata.name)
            .cmp(&(label(b, VERSION_LABEL), &b.metadata.name))
    });
    let mut table = Table::new(&["POD", "VER", "READY", "ENDPOINT", "GATE", "REASON"]);
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let endpoint = match (f.no_slices, r.endpoints.get(&name)) {
            (Some(_), _) => "n/a",
            (None, Some(true)) => "ready",
            (None, Some(false)) => "not ready",
            (None, None) => "-",
        };
        let (status, reason, message) = gate_cells(pod, CHECKOUT_GATE);
        table.row(
            vec![
                name.clone(),
                label(pod, VERSION_LABEL).unwrap_or("-").to_string(),
                condition(pod, "Ready")
                    .map_or("-", |c| c.status.as_str())
                    .to_string(),
                endpoint.to_string(),
                status.to_string(),
                reason.to_string(),
            ],
            message,
        );
    }
    table.render(out, width);
    if let Some(why) = f.no_slices {
        para(out, "  ", why, width);
    }
}

fn view(fleet: &Fleet, f: &Frame<'_>, error: Option<&str>) -> String {
    let width = terminal_width();
    let mut out = String::from("\x1b[H\x1b[2J");
    let _ = writeln!(
        out,
        "podgate demo: namespace {}   {}   Ctrl-C stops everything",
        fleet.namespace,
        Timestamp::now().strftime("%H:%M:%S UTC")
    );
    for line in f.banner {
        banner(&mut out, line, width);
    }
    out.push('\n');
    pods_view(&mut out, fleet, f.pods, width);
    out.push('\n');
    rollout_view(&mut out, fleet, f, width);
    for problem in error
        .into_iter()
        .chain(f.problems.iter().map(String::as_str))
    {
        out.push('\n');
        para(&mut out, "(retrying) ", problem, width);
    }
    out
}

async fn run(args: Args) -> Result<(), String> {
    if args.progress_deadline <= args.min_ready_seconds {
        return Err(format!(
            "--progress-deadline ({}) must be more than --min-ready-seconds ({})",
            args.progress_deadline, args.min_ready_seconds
        ));
    }
    let client = client(&args.kubeconfig).await?;
    let sims: Vec<Arc<PodSim>> = [
        ("web-1", Profile::Http, Behaviour::Steady, 0.0),
        ("web-2", Profile::Http, Behaviour::Cycles, 0.0),
        ("web-3", Profile::Http, Behaviour::Steady, 0.0),
        ("worker-1", Profile::Worker, Behaviour::Steady, 25.0),
        ("worker-2", Profile::Worker, Behaviour::Steady, 50.0),
    ]
    .into_iter()
    .zip(10u8..)
    .map(|((name, profile, behaviour, warmup), octet)| {
        let mut sim = PodSim::new(name, profile, Ipv4Addr::new(127, 0, 77, octet), behaviour);
        sim.warmup = warmup;
        Arc::new(sim)
    })
    .collect();
    let fleet = Arc::new(Fleet {
        pods: sims,
        adopted: Mutex::new(Adoptions::default()),
        started: Instant::now(),
        degraded_for: args.degraded_for,
        cycle: args.cycle.max(args.degraded_for + 1),
        namespace: args.namespace.clone(),
        timeline: Timeline {
            rollout_after: args.rollout_after,
            heal_after: args.heal_after,
        },
        rolled_at: Mutex::new(None),
        port: args.port,
        targets_dir: args.targets_dir.clone(),
    });

    for pod in &fleet.pods {
        listen(
            SocketAddr::from((pod.ip, args.port)),
            pod_router(&fleet, pod),
            std::future::pending(),
        )
        .await?;
    }
    let ksm_addr = SocketAddr::from((Ipv4Addr::new(127, 0, 77, 2), args.port));
    listen(
        ksm_addr,
        Router::new()
            .route("/metrics", get(serve_ksm))
            .with_state(fleet.clone()),
        std::future::pending(),
    )
    .await?;
    fleet.write_targets()?;
    write_file(
        &args.targets_dir.join("kube-state-metrics.json"),
        &json!([{"targets": [ksm_addr.to_string()]}]).to_string(),
    )?;

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

    let no_slices = create_objects(&client, &fleet, &args).await?;
    let mut pods = Vec::new();
    let mut rollout = Rollout::default();
    loop {
        let mut problems = Vec::new();
        let mut error = None;
        match kubelet(&client, &fleet).await {
            Ok((p, mut trouble)) => {
                pods = p;
                problems.append(&mut trouble);
            }
            Err(e) => error = Some(e),
        }
        match read_rollout(&client, &fleet.namespace, no_slices.is_none()).await {
            Ok(r) => rollout = r,
            Err(e) => problems.push(e),
        }
        let v1_complete = rollout.deployment.as_ref().is_some_and(rollout_complete);
        if should_roll(fleet.phase(), v1_complete) {
            match roll(&client, &fleet.namespace).await {
                Ok(()) => *lock(&fleet.rolled_at) = Some(fleet.started.elapsed().as_secs()),
                Err(e) => problems.push(e),
            }
        }
        let frame = Frame {
            banner: &args.banner,
            pods: &pods,
            rollout: &rollout,
            no_slices: no_slices.as_deref(),
            min_ready_seconds: args.min_ready_seconds,
            progress_deadline: args.progress_deadline,
            problems: &problems,
        };
        let text = view(&fleet, &frame, error.as_deref());
        let mut stdout = std::io::stdout().lock();
        match stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Ok(()) => {}
            // Whoever read the view is gone (`| tee` ended by Ctrl-C, `| head`): done.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(format!("writing the view to stdout: {e}")),
        }
        drop(stdout);
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

    fn fleet(behaviour: Behaviour) -> Fleet {
        Fleet {
            pods: vec![Arc::new(PodSim::new(
                "web-2",
                Profile::Http,
                Ipv4Addr::LOCALHOST,
                behaviour,
            ))],
            adopted: Mutex::new(Adoptions::default()),
            started: Instant::now(),
            degraded_for: 60,
            cycle: 180,
            namespace: "demo".into(),
            timeline: Timeline {
                rollout_after: 60,
                heal_after: 180,
            },
            rolled_at: Mutex::new(None),
            port: 9100,
            targets_dir: PathBuf::from("/nonexistent"),
        }
    }

    #[test]
    fn bodies_parse_as_prometheus_text() {
        let f = fleet(Behaviour::Steady);
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

    #[test]
    fn the_bad_version_fails_while_failing_and_not_after() {
        let f = fleet(Behaviour::Version(BAD_VERSION.into()));
        *lock(&f.rolled_at) = Some(0);
        advance(&f, 10.0);
        let errors = lock(&f.pods[0].counters).errors;
        assert!((errors - 400.0 * BAD_ERROR_SHARE).abs() < 1e-6, "{errors}");
        let good = Behaviour::Version(GOOD_VERSION.into());
        assert_eq!(traffic_mix(&good, true, true), HEALTHY);
        let bad = Behaviour::Version(BAD_VERSION.into());
        assert_eq!(traffic_mix(&bad, false, false), HEALTHY);
        assert_eq!(traffic_mix(&Behaviour::Cycles, true, false), (0.2, 0.2));
        assert_eq!(traffic_mix(&Behaviour::Steady, true, true), HEALTHY);
    }

    #[test]
    fn timeline_phases() {
        let t = Timeline {
            rollout_after: 60,
            heal_after: 180,
        };
        assert_eq!(t.phase(0, None), Phase::Steady { rollout_in: 60 });
        assert_eq!(t.phase(59, None), Phase::Steady { rollout_in: 1 });
        // Due, but v1 not available yet: still steady, the rollout waits.
        assert_eq!(t.phase(75, None), Phase::Steady { rollout_in: 0 });
        assert_eq!(
            t.phase(75, Some(70)),
            Phase::Failing {
                since: 5,
                heal_in: 175
            }
        );
        assert_eq!(t.phase(250, Some(70)), Phase::Healed { since: 0 });
        assert_eq!(t.phase(300, Some(70)), Phase::Healed { since: 50 });
        // A clock read before the rollout time does not underflow.
        assert_eq!(
            t.phase(60, Some(70)),
            Phase::Failing {
                since: 0,
                heal_in: 180
            }
        );
    }

    #[test]
    fn rolls_once_due_and_v1_complete() {
        assert!(should_roll(Phase::Steady { rollout_in: 0 }, true));
        assert!(!should_roll(Phase::Steady { rollout_in: 0 }, false));
        assert!(!should_roll(Phase::Steady { rollout_in: 3 }, true));
        let rolled = Phase::Failing {
            since: 0,
            heal_in: 1,
        };
        assert!(!should_roll(rolled, true));
        assert!(!should_roll(Phase::Healed { since: 0 }, true));
    }

    fn deployment(generation: i64, status: Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "checkout", "generation": generation},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": status,
        }))
        .expect("deployment")
    }

    #[test]
    fn complete_means_every_replica_updated_and_available() {
        let done = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                          "availableReplicas": 3, "readyReplicas": 3});
        assert!(rollout_complete(&deployment(2, done.clone())));
        // The controller has not seen the latest template.
        assert!(!rollout_complete(&deployment(3, done)));
        // Held: an old pod too many, the new one not available.
        let held = json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1,
                          "availableReplicas": 3, "readyReplicas": 3});
        assert!(!rollout_complete(&deployment(2, held)));
        assert!(!rollout_complete(&deployment(1, json!({}))));
    }

    #[test]
    fn octets_are_handed_out_fresh_and_reused_when_free() {
        let used: BTreeSet<u8> = [10, 11].into();
        assert_eq!(next_octet(&used, 0), Some(12));
        assert_eq!(next_octet(&used, 12), Some(13));
        assert_eq!(next_octet(&BTreeSet::new(), 250), Some(10));
        let all: BTreeSet<u8> = (10..=250).collect();
        assert_eq!(next_octet(&all, 40), None);
        let all_but_20: BTreeSet<u8> = (10..=250).filter(|o| *o != 20).collect();
        assert_eq!(next_octet(&all_but_20, 40), Some(20));
    }

    fn pod(status: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "checkout-abc-1"},
            "spec": {
                "readinessGates": [{"conditionType": CHECKOUT_GATE}],
                "containers": [{"name": "app", "image": "registry.invalid/checkout:v2"}],
            },
            "status": status,
        }))
        .expect("pod")
    }

    #[test]
    fn kubelet_starts_a_pod_then_follows_its_gate() {
        let ips = [
            IpAddr::V4(Ipv4Addr::new(127, 0, 78, 10)),
            IpAddr::V6(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0x78, 10)),
        ];
        let start = kubelet_patch(&pod(json!({"phase": "Pending"})), &ips).expect("a start");
        assert_eq!(start["status"]["podIP"], "127.0.78.10");
        assert_eq!(start["status"]["podIPs"][1]["ip"], "100::78:a");
        assert_eq!(
            start["status"]["containerStatuses"][0]["image"],
            "registry.invalid/checkout:v2"
        );
        let conditions = start["status"]["conditions"].as_array().expect("list");
        let ready = conditions.iter().find(|c| c["type"] == "Ready");
        assert_eq!(ready.map(|c| &c["status"]), Some(&json!("False")));

        let running = |gate: &str, ready: &str| {
            pod(json!({
                "phase": "Running",
                "podIP": "127.0.78.10",
                "podIPs": [{"ip": "127.0.78.10"}, {"ip": "100::78:a"}],
                "conditions": [
                    {"type": "ContainersReady", "status": "True"},
                    {"type": "Ready", "status": ready},
                    {"type": CHECKOUT_GATE, "status": gate},
                ],
            }))
        };
        assert_eq!(kubelet_patch(&running("False", "False"), &ips), None);
        let up = kubelet_patch(&running("True", "False"), &ips).expect("Ready turns True");
        assert_eq!(up["status"]["conditions"][0]["status"], "True");
        let down = kubelet_patch(&running("False", "True"), &ips).expect("Ready turns False");
        assert_eq!(down["status"]["conditions"][0]["status"], "False");
        // Other addresses than the fleet serves it on: started again at the right ones.
        let moved = kubelet_patch(&running("True", "True"), &ips[..1]).expect("restart");
        assert_eq!(moved["status"]["podIPs"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn slices_are_summed_up_by_version_and_readiness() {
        let pod = |name: &str, version: &str| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {VERSION_LABEL: version}},
            }))
            .expect("pod")
        };
        let pods = [pod("a", "v1"), pod("b", "v1"), pod("c", "v2")];
        let endpoints: BTreeMap<String, bool> = [
            ("a".to_string(), true),
            ("b".to_string(), true),
            ("c".to_string(), false),
            ("d".to_string(), true),
        ]
        .into();
        assert_eq!(
            slices_line(&endpoints, &pods),
            "service/checkout: 4 endpoints: 1 gone ready, 2 v1 ready, 1 v2 not ready"
        );
        assert_eq!(
            slices_line(&BTreeMap::new(), &pods),
            "service/checkout: 0 endpoints"
        );
    }

    #[test]
    fn banners_keep_their_columns() {
        let mut out = String::new();
        banner(&mut out, "podgate     http://127.0.0.1:1/metrics", 80);
        banner(&mut out, "            describe pod web-2", 80);
        let long = format!(
            "kubectl     /bin/kubectl --kubeconfig /{} -n demo",
            "x".repeat(60)
        );
        banner(&mut out, &long, 80);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "podgate     http://127.0.0.1:1/metrics");
        assert_eq!(lines[1], "            describe pod web-2");
        assert!(
            lines[2].starts_with("kubectl     /bin/kubectl --kubeconfig"),
            "{out}"
        );
        assert!(lines[3].starts_with("            /xxx"), "{out}");
        assert!(lines.iter().all(|l| l.chars().count() <= 80), "{out}");
    }

    #[test]
    fn wrap_keeps_the_start_and_marks_what_is_cut() {
        let msg = "errors/requests=0.3 >= 0.01 (requests=40 != 0, isnan(errors)=false) (rule http-errors-latency)";
        let lines = wrap(msg, 40, 3);
        assert_eq!(lines[0], "errors/requests=0.3 >= 0.01 (requests=40");
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:?}");
        assert_eq!(lines.join(" "), msg);
        let cut = wrap(msg, 20, 2);
        assert_eq!(cut.len(), 2);
        assert!(cut[1].ends_with('…'), "{cut:?}");
        assert_eq!(cut[0], "errors/requests=0.3");
        // A word longer than the line is split, not dropped.
        assert_eq!(wrap("abcdefghijkl", 8, 3), vec!["abcdefgh", "ijkl"]);
        assert!(wrap("", 10, 3).is_empty());
    }

    #[test]
    fn tables_fit_80_columns_and_keep_messages_whole() {
        let mut t = Table::new(&["POD", "VER", "READY", "ENDPOINT", "GATE", "REASON"]);
        let msg = "errors/requests=0.3 >= 0.01 (requests=40 != 0, isnan(errors)=false) (rule http-errors-latency)";
        let cells = [
            "checkout-5d8f9c7b4-x2x4z",
            "v2",
            "False",
            "not ready",
            "False",
            "MetricsUnhealthy",
        ];
        t.row(cells.map(String::from).to_vec(), msg);
        for width in [80, 120] {
            let mut out = String::new();
            t.render(&mut out, width);
            assert!(out.lines().all(|l| l.chars().count() <= width), "{out}");
            let words: Vec<&str> = out.split_whitespace().collect();
            let joined = words.join(" ");
            assert!(joined.contains("errors/requests=0.3 >= 0.01"), "{out}");
            assert!(joined.contains("(rule http-errors-latency)"), "{out}");
        }
    }
}
