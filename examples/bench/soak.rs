//! The soak: podgate over a simulated fleet for a long time, with random metric flips and
//! faults (endpoints that answer 500 or hang, pods deleted and recreated, API server and etcd
//! restarts, rule reloads). Three replicas watch the same fleet: a leader and a standby
//! sharing a Lease, and a `--dry-run` one; the standby and the dry-run replica may never
//! write, and must hold no more memory than the leader. At the end every fault is lifted,
//! and once the fleet has settled every pod's gate must say what its rule says of its current
//! metrics. Then a 1,000-rule set is loaded, for the controller loop's longest turn during
//! such a reload. Memory, file descriptors, threads and tasks are sampled throughout.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use crate::shards::Shards;
use crate::{Common, kube, metric, proc, sim, start_podgate, wait_until};

#[derive(Args)]
pub struct SoakArgs {
    #[command(flatten)]
    common: Common,
    /// How long to run, seconds.
    #[arg(long, default_value_t = 3600)]
    duration: u64,
    /// Seconds between random events.
    #[arg(long, default_value_t = 5)]
    every: u64,
    /// scripts/control-plane and the state directory of the instance, for API faults.
    #[arg(long)]
    control_plane: PathBuf,
    #[arg(long)]
    control_plane_state: PathBuf,
    /// Seed of the event sequence.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the JSON figures.
    #[arg(long)]
    out: PathBuf,
    /// Replicas: 1 = the leader alone, 2 = plus a standby, 3 = plus a dry-run replica.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    replicas: u8,
}

/// One podgate process of the soak.
struct Replica {
    role: &'static str,
    proc: proc::Proc,
    /// Its /metrics URL.
    url: String,
    rules_file: PathBuf,
}

impl Replica {
    async fn start(
        c: &Common,
        ns: &str,
        rules: &str,
        role: &'static str,
    ) -> Result<Replica, String> {
        // The Lease lives where deploy/base's RBAC lets podgate keep it.
        let lease = [
            "--leader-election".to_string(),
            "--lease-namespace".to_string(),
            "podgate".to_string(),
            "--lease-name".to_string(),
            format!("podgate-{ns}"),
        ];
        let extra: &[String] = match role {
            "dry-run" => &["--dry-run".to_string()],
            _ => &lease,
        };
        let tag = format!("soak-{role}");
        let (proc, url) = start_podgate(c, ns, rules, extra, &tag).await?;
        Ok(Replica {
            role,
            proc,
            url,
            rules_file: c.dir.join(format!("rules-{tag}")).join("rules.yaml"),
        })
    }

    fn write_rules(&self, text: &str) -> Result<(), String> {
        std::fs::write(&self.rules_file, text)
            .map_err(|e| format!("{}: {e}", self.rules_file.display()))
    }

    async fn sample(&self, http: &reqwest::Client, t_s: u64) -> Result<serde_json::Value, String> {
        let pid = self.proc.pid();
        let (rss, _) = self.proc.rss()?;
        let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:"))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .unwrap_or(0);
        let gauge = |name: &'static str| async move {
            metric(http, &self.url, name, &[]).await.unwrap_or(f64::NAN)
        };
        Ok(json!({
            "replica": self.role,
            "t_s": t_s,
            "rss_bytes": rss,
            "fds": proc::fds(pid).unwrap_or(0),
            "threads": threads,
            "tasks": gauge("podgate_runtime_tasks").await,
            "pods_tracked": gauge("podgate_pods_tracked").await,
            "writer_pending": gauge("podgate_writer_pending").await,
            "leader": gauge("podgate_leader").await,
            "cpu_s": self.proc.cpu_seconds()?,
        }))
    }
}

/// Cumulative counts by bucket bound of one histogram.
type Buckets = Vec<(f64, f64)>;

/// The controller loop's turn histogram by event (`pod`, `result`, `reload`, `lease`, `tick`):
/// cumulative counts by bucket bound.
async fn turn_buckets(
    http: &reqwest::Client,
    url: &str,
) -> Result<BTreeMap<String, Buckets>, String> {
    let body = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .text()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let mut by_event: BTreeMap<String, BTreeMap<u64, (f64, f64)>> = BTreeMap::new();
    for s in podgate::exposition::parse(&body, podgate::exposition::Format::Text) {
        let s = s.map_err(|e| format!("{url}: {e}"))?;
        if s.name != "podgate_controller_turn_duration_seconds_bucket" {
            continue;
        }
        let Some(le) = s.labels.get("le").and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let event = s
            .labels
            .get("event")
            .map_or_else(String::new, |e| e.to_string());
        by_event
            .entry(event)
            .or_default()
            .entry(le.to_bits())
            .or_insert((le, 0.0))
            .1 += s.value;
    }
    Ok(by_event
        .into_iter()
        .map(|(event, by_le)| {
            let mut buckets: Buckets = by_le.into_values().collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            (event, buckets)
        })
        .collect())
}

/// The bound of the smallest bucket holding every turn between two readings: the longest
/// turn in between took at most this long (None: no turn).
fn longest_turn(before: &[(f64, f64)], after: &[(f64, f64)]) -> Option<f64> {
    let count =
        |v: &[(f64, f64)], le: f64| v.iter().find(|(l, _)| *l == le).map_or(0.0, |(_, c)| *c);
    let total = count(after, f64::INFINITY) - count(before, f64::INFINITY);
    if total <= 0.0 {
        return None;
    }
    after
        .iter()
        .find(|(le, c)| *c - count(before, *le) >= total)
        .map(|(le, _)| *le)
}

/// The longest turn between two readings, of every event together and of each event that
/// had a turn: which kind of turn was slow, not only how slow.
fn longest_turns(
    before: &BTreeMap<String, Buckets>,
    after: &BTreeMap<String, Buckets>,
) -> serde_json::Value {
    let mut by_event = serde_json::Map::new();
    let mut overall: Option<f64> = None;
    for (event, now) in after {
        let then = before.get(event).map_or(&[][..], |b| b.as_slice());
        if let Some(longest) = longest_turn(then, now) {
            overall = Some(overall.map_or(longest, |o: f64| o.max(longest)));
            by_event.insert(event.clone(), json!(longest));
        }
    }
    json!({"all": overall, "by_event": by_event})
}

/// The soak's rule and 999 more that own gates no pod declares: a set at the rule limit.
fn thousand_rules(rules: &str) -> String {
    let mut text = rules.to_string();
    for i in 0..999 {
        text.push_str(&format!(
            "  - name: filler-{i}\n    conditionType: podgate.dev/filler-{i}\n    interval: 10s\n    \
             timeout: 5s\n    scrape: {{port: metrics}}\n    vars:\n      \
             up: {{scrape: 'max(http_requests_total)'}}\n    expr: 'up >= 0'\n"
        ));
    }
    text
}

/// A small deterministic generator (xorshift64*): the event sequence is reproducible by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn control_plane(a: &SoakArgs, verb: &str, what: &str) -> Result<(), String> {
    let status = Command::new(&a.control_plane)
        .args([verb, what, "--state"])
        .arg(&a.control_plane_state)
        .status()
        .map_err(|e| format!("{}: {e}", a.control_plane.display()))?;
    if !status.success() {
        return Err(format!("control-plane {verb} {what}: {status}"));
    }
    Ok(())
}

pub async fn run(a: SoakArgs) -> Result<(), String> {
    let c = &a.common;
    std::fs::create_dir_all(&c.dir).map_err(|e| format!("{}: {e}", c.dir.display()))?;
    let n = c.pods;
    let say = |m: String| eprintln!("soak: {m}");
    let sim = Shards::start(n, &c.dir).await?;
    let admin = kube::client(&c.admin_kubeconfig).await?;
    let ns = format!("soak-{n}");
    let pods = kube::empty_namespace(&admin, &ns).await?;
    let gates = kube::watch_gates(admin.clone(), &ns);
    kube::create_fleet(&pods, 0..n, 32).await?;
    say(format!("{n} pods running"));
    let rules = crate::scrape_rule(c.interval);
    // The leader starts first and takes the Lease; the standby then waits for it.
    let mut replicas = Vec::new();
    for role in ["leader", "standby", "dry-run"]
        .into_iter()
        .take(usize::from(a.replicas))
    {
        replicas.push(Replica::start(c, &ns, &rules, role).await?);
        say(format!("{role} replica ready"));
    }
    let http = crate::http()?;
    let names: Vec<String> = (0..n).map(kube::pod_name).collect();
    wait_until(
        "every gate True",
        Duration::from_secs(120 + n as u64 / 20),
        || async { gates.count(&names, true) == n },
    )
    .await?;

    // What each pod's endpoint does now, and what the gate must say once faults are lifted.
    let mut mode = vec![sim::HEALTHY; n];
    let mut rng = Rng(a.seed.max(1) ^ 0x9E37_79B9_7F4A_7C15);
    let mut events: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut samples = Vec::new();
    let start = Instant::now();
    let end = start + Duration::from_secs(a.duration);
    let mut next_sample = Instant::now();
    let mut errors = Vec::new();
    while Instant::now() < end {
        if Instant::now() >= next_sample {
            for r in &replicas {
                samples.push(r.sample(&http, start.elapsed().as_secs()).await?);
            }
            next_sample += Duration::from_secs(30);
        }
        let roll = rng.below(100);
        let i = rng.below(n);
        let result: Result<&'static str, String> = async {
            Ok(match roll {
                // Metric flips, both ways.
                // Metric flips, both ways; at most 5% unhealthy at once, under the rule's
                // maxUnavailable, so the panic threshold never holds a gate the check expects.
                0..=59 => {
                    let unhealthy: Vec<usize> =
                        (0..n).filter(|j| mode[*j] == sim::UNHEALTHY).collect();
                    let (j, m) = if mode[i] == sim::UNHEALTHY {
                        (i, sim::HEALTHY)
                    } else if unhealthy.len() * 20 >= n && !unhealthy.is_empty() {
                        (unhealthy[rng.below(unhealthy.len())], sim::HEALTHY)
                    } else {
                        (i, sim::UNHEALTHY)
                    };
                    sim.set_mode(j, m).await?;
                    mode[j] = m;
                    "flip"
                }
                // The endpoint fails or hangs for a while (onError: keep holds the gate).
                60..=69 => {
                    let m = if roll < 65 { sim::ERROR } else { sim::HANG };
                    sim.set_mode(i, m).await?;
                    mode[i] = m;
                    if m == sim::ERROR {
                        "endpoint-500"
                    } else {
                        "endpoint-hang"
                    }
                }
                // A broken endpoint comes back, healthy or not.
                70..=79 => {
                    if let Some(j) = (0..n).map(|k| (i + k) % n).find(|j| mode[*j] >= sim::ERROR) {
                        let m = if rng.below(2) == 0 {
                            sim::HEALTHY
                        } else {
                            sim::UNHEALTHY
                        };
                        sim.set_mode(j, m).await?;
                        mode[j] = m;
                    }
                    "endpoint-back"
                }
                // A pod is deleted and created again under the same name (a new uid).
                80..=89 => {
                    kube::delete_pod(&pods, i).await?;
                    wait_until("pod deleted", Duration::from_secs(30), || async {
                        pods.get_opt(&kube::pod_name(i))
                            .await
                            .is_ok_and(|p| p.is_none())
                    })
                    .await?;
                    kube::create_pod(&pods, i).await?;
                    kube::start_pod(&pods, i).await?;
                    "pod-recreated"
                }
                // The rules are rewritten (a reload with the same content semantics).
                90..=93 => {
                    let text = if rng.below(2) == 0 {
                        rules.clone()
                    } else {
                        format!("# rewritten at {}s\n{rules}", start.elapsed().as_secs())
                    };
                    for r in &replicas {
                        r.write_rules(&text)?;
                    }
                    "rules-reload"
                }
                // The API server or etcd goes away for a while.
                94 | 95 => {
                    let what = if roll == 94 { "kube-apiserver" } else { "etcd" };
                    control_plane(&a, "down", what)?;
                    tokio::time::sleep(Duration::from_secs(5 + rng.below(20) as u64)).await;
                    control_plane(&a, "up", what)?;
                    if roll == 94 {
                        "apiserver-restart"
                    } else {
                        "etcd-restart"
                    }
                }
                _ => "quiet",
            })
        }
        .await;
        match result {
            Ok(kind) => *events.entry(kind).or_default() += 1,
            Err(e) => {
                eprintln!("soak: event failed (the soak goes on): {e}");
                errors.push(e);
            }
        }
        tokio::time::sleep(Duration::from_secs(a.every)).await;
    }

    // Lift every fault: broken endpoints serve again, as healthy or unhealthy.
    for (i, m) in mode.iter_mut().enumerate() {
        if *m >= sim::ERROR {
            sim.set_mode(i, sim::HEALTHY).await?;
            *m = sim::HEALTHY;
        }
    }
    // rate() over 30 s must forget the old traffic, then failureThreshold scrapes decide.
    let settle = Duration::from_secs(30 + c.interval * (crate::FAILURE_THRESHOLD + 2) + 10);
    eprintln!("soak: faults lifted; settling for {settle:?}");
    tokio::time::sleep(settle).await;
    // The verdict is checked against what the API server holds now, not against the watch:
    // a pod recreated late, or a change the watch missed across an API outage, would hide there.
    let now = kube::gate_statuses(&pods).await?;
    let mut wrong = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let want = mode[i] == sim::HEALTHY;
        let got = now.get(name).copied();
        if got != Some(want) {
            wrong.push(json!({"pod": name, "want": want, "got": got}));
        }
    }
    let unhealthy = mode.iter().filter(|m| **m == sim::UNHEALTHY).count();

    // A 1,000-rule set put in force: how long the loop's longest turn was meanwhile.
    let mut reload_turns = serde_json::Map::new();
    let big = thousand_rules(&rules);
    for r in &replicas {
        let before = turn_buckets(&http, &r.url).await?;
        let loaded = metric(
            &http,
            &r.url,
            "podgate_config_reloads_total",
            &[("result", "success")],
        )
        .await?;
        r.write_rules(&big)?;
        wait_until(
            "the 1,000-rule set in force",
            Duration::from_secs(60),
            || async {
                metric(
                    &http,
                    &r.url,
                    "podgate_config_reloads_total",
                    &[("result", "success")],
                )
                .await
                .is_ok_and(|n| n > loaded)
            },
        )
        .await?;
        // A few seconds of normal work after it, so a turn it delayed is counted too.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let after = turn_buckets(&http, &r.url).await?;
        reload_turns.insert(r.role.to_string(), longest_turns(&before, &after));
    }

    // Growth is the last quarter's mean over the second quarter's (the first holds warm-up).
    let quarters = |role: &str, key: &str| {
        let v: Vec<f64> = samples
            .iter()
            .filter(|s| s["replica"] == role)
            .filter_map(|s| s[key].as_f64())
            .collect();
        let quarter = (v.len() / 4).max(1);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let early = mean(v.get(quarter..2 * quarter).unwrap_or(&v));
        let late = mean(v.get(v.len().saturating_sub(quarter)..).unwrap_or(&v));
        (early, late)
    };
    let mut per_replica = serde_json::Map::new();
    let mut summary = Vec::new();
    for r in &mut replicas {
        let (early, late) = quarters(r.role, "rss_bytes");
        let (tasks_early, tasks_late) = quarters(r.role, "tasks");
        let (fds_early, fds_late) = quarters(r.role, "fds");
        let pending_max = samples
            .iter()
            .filter(|s| s["replica"] == r.role)
            .filter_map(|s| s["writer_pending"].as_f64())
            .fold(0.0, f64::max);
        summary.push(format!(
            "{} RSS {:.1} → {:.1} MiB, tasks {tasks_early:.0} → {tasks_late:.0}",
            r.role,
            early / 1048576.0,
            late / 1048576.0
        ));
        per_replica.insert(
            r.role.to_string(),
            json!({
                "rss_bytes_mean_second_quarter": early,
                "rss_bytes_mean_last_quarter": late,
                "rss_growth_ratio": late / early,
                "tasks_mean_second_quarter": tasks_early,
                "tasks_mean_last_quarter": tasks_late,
                "fds_mean_second_quarter": fds_early,
                "fds_mean_last_quarter": fds_late,
                "writer_pending_max": pending_max,
                "rss_bytes_peak": r.proc.rss()?.1,
                "cpu_s": r.proc.cpu_seconds()?,
                "alive": r.proc.alive(),
                "longest_turn_during_1000_rule_reload_s": reload_turns.get(r.role),
            }),
        );
    }
    let out = json!({
        "pods": n,
        "duration_s": a.duration,
        "seed": a.seed,
        "events": events,
        "event_errors": errors,
        "pods_unhealthy_at_end": unhealthy,
        "gates_wrong_at_end": wrong.len(),
        "wrong": wrong.iter().take(20).collect::<Vec<_>>(),
        "replicas": per_replica,
        "samples": samples,
    });
    let text = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
    std::fs::write(&a.out, text + "\n").map_err(|e| format!("{}: {e}", a.out.display()))?;
    eprintln!(
        "soak: {} gates wrong of {n}; {}; longest turn during a 1,000-rule reload (s): {}; figures in {}",
        wrong.len(),
        summary.join("; "),
        serde_json::Value::Object(reload_turns),
        a.out.display()
    );
    drop(replicas);
    kube::delete_all(&admin, &ns).await?;
    if !wrong.is_empty() {
        return Err(format!(
            "{} gates do not match their pods' metrics",
            wrong.len()
        ));
    }
    Ok(())
}
