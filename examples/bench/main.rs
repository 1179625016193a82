//! podgate's fleet benchmark (run by `scripts/bench`, described in docs/scaling.md).
//!
//! `fleet` runs one fleet size end to end on a running control plane: it serves N simulated
//! pods' metrics on loopback addresses, creates the pods and plays their kubelet, runs
//! `podgate run` over them and measures its cost and latencies, then runs Prometheus scraping
//! the same endpoints at the same interval and measures its cost, then runs podgate with a
//! batched PromQL rule against that Prometheus. It writes the figures as JSON.
//!
//! `body` writes one simulated pod's body (for the parser benchmarks); `report` turns the JSON
//! files into BENCHMARKS.md and BENCHMARKS.json; `soak` runs a fleet for a long time with
//! random flips and faults and checks every gate at the end.

mod kube;
mod proc;
mod report;
mod shards;
mod sim;
mod soak;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::proc::Proc;
use crate::shards::Shards;
use crate::sim::Sim;

#[derive(Parser)]
#[command(about = "podgate's fleet benchmark")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Benchmark one fleet size: podgate, Prometheus, and podgate with batched PromQL.
    Fleet(FleetArgs),
    /// Write one simulated pod's body to a file.
    Body { out: PathBuf },
    /// Serve pods `first..first + count` (one simulator process of a fleet).
    Serve {
        #[arg(long)]
        first: usize,
        #[arg(long)]
        count: usize,
        /// Port of the control endpoint on 127.0.0.1.
        #[arg(long)]
        control_port: u16,
    },
    /// Run a fleet for a long time with random flips and faults, then check every gate.
    Soak(soak::SoakArgs),
    /// Merge result files into BENCHMARKS.md and BENCHMARKS.json.
    Report(report::ReportArgs),
}

#[derive(Args, Clone)]
pub struct Common {
    /// Kubeconfig of an admin (creates pods, plays the kubelet).
    #[arg(long)]
    pub admin_kubeconfig: PathBuf,
    /// Kubeconfig podgate runs with.
    #[arg(long)]
    pub podgate_kubeconfig: PathBuf,
    /// The podgate binary.
    #[arg(long)]
    pub podgate: PathBuf,
    /// Working directory for rules, logs and Prometheus data.
    #[arg(long)]
    pub dir: PathBuf,
    /// Number of pods.
    #[arg(long)]
    pub pods: usize,
    /// Evaluation and scrape interval, seconds.
    #[arg(long, default_value_t = 10)]
    pub interval: u64,
}

#[derive(Args)]
struct FleetArgs {
    #[command(flatten)]
    common: Common,
    /// The Prometheus server binary.
    #[arg(long, default_value = "/usr/bin/prometheus")]
    prometheus: PathBuf,
    /// Length of each steady measuring window, seconds.
    #[arg(long, default_value_t = 60)]
    window: u64,
    /// Pods created one by one while podgate runs, for the new-pod latency.
    #[arg(long, default_value_t = 200)]
    new_pods: usize,
    /// Pods flipped unhealthy and back, for the flip latency and writes per transition.
    #[arg(long, default_value_t = 50)]
    flips: usize,
    /// Where to write the JSON figures.
    #[arg(long)]
    out: PathBuf,
}

pub const FAILURE_THRESHOLD: u64 = 2;

/// The scrape rule every pod is gated by: errors under 5% and p99 latency under 250 ms over
/// the last 30 s, read from the pod's own endpoint.
pub fn scrape_rule(interval: u64) -> String {
    format!(
        r#"rules:
  - name: app-healthy
    conditionType: {gate}
    selector:
      matchLabels: {{{label}: "yes"}}
    interval: {interval}s
    timeout: 5s
    successThreshold: 1
    failureThreshold: {FAILURE_THRESHOLD}
    onNoData: pass
    onError: keep
    maxUnavailable: 10%
    scrape: {{port: metrics, path: /metrics}}
    vars:
      errors:   {{scrape: 'sum(rate(http_requests_total{{code=~"5.."}}[30s]))'}}
      requests: {{scrape: 'sum(rate(http_requests_total[30s]))'}}
      p99:      {{scrape: 'histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[30s]))'}}
    expr: 'requests == 0 || errors / requests < 0.05 && (isnan(p99) || p99 < 0.25)'
"#,
        gate = kube::GATE,
        label = kube::LABEL,
    )
}

/// The same verdict from Prometheus: one query per interval for the whole fleet.
fn batched_rule(interval: u64) -> String {
    format!(
        r#"rules:
  - name: app-healthy
    conditionType: {gate}
    selector:
      matchLabels: {{{label}: "yes"}}
    interval: {interval}s
    timeout: 5s
    failureThreshold: {FAILURE_THRESHOLD}
    onNoData: pass
    onError: keep
    maxUnavailable: 10%
    prometheus: {{namespaceLabel: namespace, podLabel: pod}}
    vars:
      error_ratio:
        promql: >-
          sum by (namespace, pod) (rate(http_requests_total{{code=~"5.."}}[1m]))
          / sum by (namespace, pod) (rate(http_requests_total[1m]))
    expr: 'error_ratio < 0.05'
"#,
        gate = kube::GATE,
        label = kube::LABEL,
    )
}

pub fn http() -> Result<reqwest::Client, String> {
    podgate::source::init_tls();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Sum of `name`'s samples whose labels include `labels`, from a /metrics URL.
pub async fn metric(
    http: &reqwest::Client,
    url: &str,
    name: &str,
    labels: &[(&str, &str)],
) -> Result<f64, String> {
    let body = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .text()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let mut sum = 0.0;
    for s in podgate::exposition::parse(&body, podgate::exposition::Format::Text) {
        let s = s.map_err(|e| format!("{url}: {e}"))?;
        if s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(k).is_some_and(|x| x == *v))
        {
            sum += s.value;
        }
    }
    Ok(sum)
}

pub async fn wait_until<F, Fut>(
    what: &str,
    timeout: Duration,
    mut ok: F,
) -> Result<Duration, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while t.elapsed() < timeout {
        if ok().await {
            return Ok(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("timed out after {timeout:?} waiting for {what}"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn latency_summary(mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    json!({
        "count": ms.len(),
        "p50_ms": percentile(&ms, 50.0),
        "p99_ms": percentile(&ms, 99.0),
        "max_ms": ms.last().copied().unwrap_or(f64::NAN),
    })
}

/// Starts `podgate run` over the fleet's namespace with `rules` and waits for /readyz.
pub async fn start_podgate(
    c: &Common,
    ns: &str,
    rules: &str,
    extra: &[String],
    tag: &str,
) -> Result<(Proc, String), String> {
    let rules_dir = c.dir.join(format!("rules-{tag}"));
    std::fs::create_dir_all(&rules_dir).map_err(|e| format!("{}: {e}", rules_dir.display()))?;
    std::fs::write(rules_dir.join("rules.yaml"), rules)
        .map_err(|e| format!("{}: {e}", rules_dir.display()))?;
    let port = proc::free_port()?;
    let mut cmd = Command::new(&c.podgate);
    cmd.arg("run")
        .arg("--kubeconfig")
        .arg(&c.podgate_kubeconfig)
        .arg("--rules-dir")
        .arg(&rules_dir)
        .args(["--namespace", ns])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env("RUST_LOG", "info");
    let log = c.dir.join(format!("podgate-{tag}.log"));
    let p = Proc::spawn("podgate", &mut cmd, &log)?;
    let http = http()?;
    let url = format!("http://127.0.0.1:{port}");
    let ready = format!("{url}/readyz");
    wait_until("podgate /readyz", Duration::from_secs(120), || {
        let http = http.clone();
        let ready = ready.clone();
        async move {
            http.get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await
    .map_err(|e| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(10).collect();
        format!(
            "{e}; podgate's log ends with:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })?;
    Ok((p, format!("{url}/metrics")))
}

/// CPU, RSS and counters of a process over a window.
struct Window {
    cpu: f64,
    rss_max: u64,
    seconds: f64,
}

async fn measure_window(p: &Proc, seconds: u64) -> Result<Window, String> {
    let cpu0 = p.cpu_seconds()?;
    let t = Instant::now();
    let mut rss_max = 0;
    while t.elapsed() < Duration::from_secs(seconds) {
        rss_max = rss_max.max(p.rss()?.0);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(Window {
        cpu: p.cpu_seconds()? - cpu0,
        rss_max,
        seconds: t.elapsed().as_secs_f64(),
    })
}

fn names(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(kube::pod_name).collect()
}

async fn fleet(args: FleetArgs) -> Result<(), String> {
    let c = &args.common;
    std::fs::create_dir_all(&c.dir).map_err(|e| format!("{}: {e}", c.dir.display()))?;
    let n = c.pods;
    let total = n + args.new_pods;
    let interval = c.interval;
    let say = |m: String| eprintln!("bench[{n}]: {m}");
    let mut out = json!({"pods": n, "interval_s": interval, "window_s": args.window,
                         "failure_threshold": FAILURE_THRESHOLD});

    let sim = Shards::start(total, &c.dir).await?;
    say(format!(
        "serving {total} endpoints on 127.10.x.y:{}",
        sim::PORT
    ));

    let admin = kube::client(&c.admin_kubeconfig).await?;
    let ns = format!("bench-{n}");
    let pods = kube::empty_namespace(&admin, &ns).await?;
    let gates = kube::watch_gates(admin.clone(), &ns);
    let t = Instant::now();
    kube::create_fleet(&pods, 0..n, 32).await?;
    say(format!(
        "created and started {n} pods in {:.1?}",
        t.elapsed()
    ));
    out["setup_s"] = json!(t.elapsed().as_secs_f64());

    // --- podgate, scraping ---------------------------------------------------------------
    let (mut pg, pg_metrics) = start_podgate(c, &ns, &scrape_rule(interval), &[], "scrape").await?;
    let http = http()?;
    let fleet_names = names(0..n);
    let converge = wait_until(
        "every gate True",
        Duration::from_secs(60 + n as u64 / 20),
        || async { gates.count(&fleet_names, true) == n },
    )
    .await?;
    say(format!(
        "every gate True {converge:.1?} after podgate became ready"
    ));
    out["podgate_converge_s"] = json!(converge.as_secs_f64());
    // Let the NoData → MetricsHealthy reason change (second scrape) land, then settle.
    tokio::time::sleep(Duration::from_secs(interval * 2 + 5)).await;

    let writes = |h: reqwest::Client, u: String| async move {
        metric(&h, &u, "podgate_kube_writes_total", &[]).await
    };
    let evals = |h: reqwest::Client, u: String| async move {
        metric(&h, &u, "podgate_evaluations_total", &[]).await
    };
    let w0 = writes(http.clone(), pg_metrics.clone()).await?;
    let e0 = evals(http.clone(), pg_metrics.clone()).await?;
    let s0 = sim.served().await?.0;
    say(format!("steady window ({}s)", args.window));
    let win = measure_window(&pg, args.window).await?;
    let w1 = writes(http.clone(), pg_metrics.clone()).await?;
    let e1 = evals(http.clone(), pg_metrics.clone()).await?;
    let s1 = sim.served().await?.0;
    let evaluations = e1 - e0;
    out["podgate"] = json!({
        "evaluations": evaluations,
        "evaluations_per_s": evaluations / win.seconds,
        "scrapes_per_s": (s1 - s0) as f64 / win.seconds,
        "cpu_s": win.cpu,
        "cpu_s_per_1000_evaluations": win.cpu / evaluations * 1000.0,
        "cpu_share_of_one_core": win.cpu / win.seconds,
        "rss_bytes_max_in_window": win.rss_max,
        "steady_writes": w1 - w0,
        "fds": proc::fds(pg.pid()).unwrap_or(0),
    });
    say(format!(
        "{evaluations} evaluations, {:.2} CPU s, {} steady writes",
        win.cpu,
        w1 - w0
    ));

    // New pods, one every 100 ms: ContainersReady=True to gate True.
    let new_names = names(n..total);
    let mut started = Vec::new();
    for i in n..total {
        kube::create_pod(&pods, i).await?;
        let t0 = Instant::now();
        kube::start_pod(&pods, i).await?;
        started.push((kube::pod_name(i), t0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_until("new pods' gates True", Duration::from_secs(60), || async {
        gates.count(&new_names, true) == new_names.len()
    })
    .await?;
    let new_ms: Vec<f64> = started
        .iter()
        .filter_map(|(name, t0)| {
            gates
                .reached(name, true, *t0)
                .map(|t| (t - *t0).as_secs_f64() * 1000.0)
        })
        .collect();
    out["new_pod_latency"] = latency_summary(new_ms);
    say(format!("new-pod latency {}", out["new_pod_latency"]));
    tokio::time::sleep(Duration::from_secs(interval * 2 + 5)).await;

    // Flips: a spread of pods turns unhealthy at once, then recovers.
    let step = (n / args.flips.max(1)).max(1);
    let flipped: Vec<usize> = (0..n).step_by(step).take(args.flips).collect();
    let flipped_names: Vec<String> = flipped.iter().map(|i| kube::pod_name(*i)).collect();
    let wf0 = writes(http.clone(), pg_metrics.clone()).await?;
    let t_flip = Instant::now();
    for i in &flipped {
        sim.set_healthy(*i, false).await?;
    }
    let bound = Duration::from_secs(interval * (FAILURE_THRESHOLD + 3));
    wait_until("flipped gates False", bound, || async {
        gates.count(&flipped_names, false) == flipped_names.len()
    })
    .await?;
    let flip_ms: Vec<f64> = flipped_names
        .iter()
        .filter_map(|name| {
            gates
                .reached(name, false, t_flip)
                .map(|t| (t - t_flip).as_secs_f64() * 1000.0)
        })
        .collect();
    let t_heal = Instant::now();
    for i in &flipped {
        sim.set_healthy(*i, true).await?;
    }
    wait_until(
        "flipped gates True again",
        Duration::from_secs(interval * 10),
        || async { gates.count(&flipped_names, true) == flipped_names.len() },
    )
    .await?;
    let heal_ms: Vec<f64> = flipped_names
        .iter()
        .filter_map(|name| {
            gates
                .reached(name, true, t_heal)
                .map(|t| (t - t_heal).as_secs_f64() * 1000.0)
        })
        .collect();
    // Writes land before the watch shows them; give stragglers a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let wf1 = writes(http.clone(), pg_metrics.clone()).await?;
    let transitions = gates.changes_since(&fleet_names, t_flip);
    let budget_ms = (interval * FAILURE_THRESHOLD * 1000) as f64;
    let mut flip = latency_summary(flip_ms);
    flip["interval_x_threshold_ms"] = json!(budget_ms);
    flip["p50_relative"] = json!(flip["p50_ms"].as_f64().unwrap_or(f64::NAN) / budget_ms);
    flip["p99_relative"] = json!(flip["p99_ms"].as_f64().unwrap_or(f64::NAN) / budget_ms);
    out["flip_latency"] = flip;
    out["recovery_latency"] = latency_summary(heal_ms);
    out["transitions"] = json!({
        "gate_changes_seen": transitions,
        "writes": wf1 - wf0,
        "writes_per_transition": (wf1 - wf0) / transitions.max(1) as f64,
    });
    say(format!(
        "flip {} transitions {}",
        out["flip_latency"], out["transitions"]
    ));
    let (_, hwm) = pg.rss()?;
    out["podgate"]["rss_bytes_peak"] = json!(hwm);
    out["podgate"]["sigterm_exit_ms"] =
        json!(pg.stop(Duration::from_secs(10)).as_secs_f64() * 1000.0);

    // --- Prometheus, scraping the same endpoints -----------------------------------------------
    let prom_port = proc::free_port()?;
    let prom_dir = c.dir.join("prometheus");
    let _ = std::fs::remove_dir_all(&prom_dir);
    std::fs::create_dir_all(prom_dir.join("data"))
        .map_err(|e| format!("{}: {e}", prom_dir.display()))?;
    let targets: Vec<Value> = (0..total)
        .map(|i| {
            json!({"targets": [format!("{}:{}", sim::pod_ip(i), sim::PORT)],
                        "labels": {"namespace": ns, "pod": kube::pod_name(i)}})
        })
        .collect();
    std::fs::write(
        prom_dir.join("targets.json"),
        Value::from(targets).to_string(),
    )
    .map_err(|e| format!("targets: {e}"))?;
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: {interval}s\n  scrape_timeout: 5s\nscrape_configs:\n  - job_name: fleet\n    file_sd_configs:\n      - files: ['{}']\n",
            prom_dir.join("targets.json").display()
        ),
    )
    .map_err(|e| format!("prometheus.yml: {e}"))?;
    let mut cmd = Command::new(&args.prometheus);
    cmd.arg(format!(
        "--config.file={}",
        prom_dir.join("prometheus.yml").display()
    ))
    .arg(format!(
        "--storage.tsdb.path={}",
        prom_dir.join("data").display()
    ))
    .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"));
    let prom = Proc::spawn("prometheus", &mut cmd, &c.dir.join("prometheus.log"))?;
    let prom_url = format!("http://127.0.0.1:{prom_port}");
    let up_query = format!("{prom_url}/api/v1/query?query=count(up%3D%3D1)");
    wait_until(
        "Prometheus scraping every target",
        Duration::from_secs(120 + n as u64 / 50),
        || {
            let http = http.clone();
            let q = up_query.clone();
            async move {
                let Ok(r) = http.get(&q).send().await else {
                    return false;
                };
                let Ok(t) = r.text().await else { return false };
                let Ok(v) = serde_json::from_str::<Value>(&t) else {
                    return false;
                };
                v["data"]["result"][0]["value"][1]
                    .as_str()
                    .and_then(|s| s.parse::<usize>().ok())
                    .is_some_and(|k| k >= total)
            }
        },
    )
    .await?;
    // The first scrapes create the series; measure after a few more intervals.
    tokio::time::sleep(Duration::from_secs(interval * 3)).await;
    let p0 = sim.served().await?.1;
    say(format!("Prometheus steady window ({}s)", args.window));
    let pwin = measure_window(&prom, args.window).await?;
    let p1 = sim.served().await?.1;
    let scrapes = (p1 - p0) as f64;
    let (_, prom_hwm) = prom.rss()?;
    out["prometheus"] = json!({
        "scrapes": scrapes,
        "scrapes_per_s": scrapes / pwin.seconds,
        "cpu_s": pwin.cpu,
        "cpu_s_per_1000_scrapes": pwin.cpu / scrapes * 1000.0,
        "cpu_share_of_one_core": pwin.cpu / pwin.seconds,
        "rss_bytes_max_in_window": pwin.rss_max,
        "rss_bytes_peak": prom_hwm,
    });
    say(format!(
        "Prometheus: {scrapes} scrapes, {:.2} CPU s",
        pwin.cpu
    ));

    // --- podgate, batched PromQL against that Prometheus -----------------------------------------
    let (pgb, pgb_metrics) = start_podgate(
        c,
        &ns,
        &batched_rule(interval),
        &["--prometheus-url".to_string(), prom_url.clone()],
        "batched",
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(interval * 2 + 5)).await;
    let q = |h: reqwest::Client, u: String| async move {
        metric(
            &h,
            &u,
            "podgate_source_requests_total",
            &[("source", "prometheus")],
        )
        .await
    };
    let q0 = q(http.clone(), pgb_metrics.clone()).await?;
    let be0 = evals(http.clone(), pgb_metrics.clone()).await?;
    let bw0 = writes(http.clone(), pgb_metrics.clone()).await?;
    say(format!("batched PromQL window ({}s)", args.window));
    let bwin = measure_window(&pgb, args.window).await?;
    let q1 = q(http.clone(), pgb_metrics.clone()).await?;
    let be1 = evals(http.clone(), pgb_metrics.clone()).await?;
    let bw1 = writes(http.clone(), pgb_metrics.clone()).await?;
    let (_, bhwm) = pgb.rss()?;
    let bevals = be1 - be0;
    out["batched_promql"] = json!({
        "queries": q1 - q0,
        "queries_per_interval": (q1 - q0) / (bwin.seconds / interval as f64),
        "evaluations": bevals,
        "evaluations_per_s": bevals / bwin.seconds,
        "cpu_s": bwin.cpu,
        "cpu_s_per_1000_evaluations": bwin.cpu / bevals * 1000.0,
        "rss_bytes_peak": bhwm,
        "steady_writes": bw1 - bw0,
    });
    say(format!("batched: {}", out["batched_promql"]));
    drop(pgb);
    drop(prom);

    // Headline: podgate's CPU per evaluation against Prometheus's CPU per scrape.
    let pg_per = out["podgate"]["cpu_s_per_1000_evaluations"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let prom_per = out["prometheus"]["cpu_s_per_1000_scrapes"]
        .as_f64()
        .unwrap_or(f64::NAN);
    out["ratio"] = json!({
        "cpu_per_evaluation_vs_prometheus_cpu_per_scrape": pg_per / prom_per,
        "rss_peak_vs_prometheus": hwm as f64 / prom_hwm as f64,
    });
    kube::delete_all(&admin, &ns).await?;
    let text = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
    std::fs::write(&args.out, text + "\n").map_err(|e| format!("{}: {e}", args.out.display()))?;
    say(format!("figures written to {}", args.out.display()));
    Ok(())
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Fleet(a) => fleet(a).await,
        Cmd::Serve {
            first,
            count,
            control_port,
        } => {
            let sim = Sim::new(first, count);
            sim.listen().await?;
            sim::control(sim, control_port).await
        }
        Cmd::Body { out } => {
            let sim = Sim::new(0, 1);
            // Counters a few minutes in, as a scrape would see them.
            std::thread::sleep(Duration::from_millis(10));
            std::fs::write(&out, sim.body(0)).map_err(|e| format!("{}: {e}", out.display()))
        }
        Cmd::Report(a) => report::run(a),
        Cmd::Soak(a) => soak::run(a).await,
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}
