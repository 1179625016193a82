//! Faults on the Kubernetes side, against real control planes: the apiserver process and etcd
//! stopped and restarted (on a private control plane, so the shared one keeps serving the
//! other tests), watches ended with `410 Gone`, the leader killed, SIGTERM in the middle of a
//! burst of writes, and a node-local instance whose node goes away.
//!
//! Each test asserts what the operator relies on: no gate flips because of the fault alone,
//! decisions taken during the fault are written afterwards, nothing is written twice or by
//! two leaders, and the daemon neither crashes nor spins.

use crate::support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use support::daemon::{Daemon, rules_dir};
use support::pods::delete_pod_now;
use support::proxy::HttpProxy;
use support::scene::{Gate, Scene};
use support::{Component, ControlPlane, PrivateControlPlane, TestPod, unique_suffix, wait_for};
use support::{RuleYaml, queue};

const GATE: &str = "podgate.dev/fault-healthy";
/// How long a write may take to land after an outage ends: the writer's retries back off
/// (up to 30 s between tries) while the API is away.
const AFTER_OUTAGE: Duration = Duration::from_secs(90);
/// The message of a pod's verdict, by queue depth.
const HEALTHY_MSG: &str = "queue=1 < 100";
const UNHEALTHY_MSG: &str = "queue=500 >= 100";
/// What the daemon logs when a pod list completes after the first one.
const RELIST_LOG: &str = "pods re-listed";
/// What the writer logs for each condition it writes.
const WRITTEN_LOG: &str = "condition written";

/// One rule: True while the queue is short, False at once when it is not.
fn rules() -> String {
    RuleYaml::queue(GATE)
        .with("successThreshold", 1)
        .with("onError", "keep")
        .file()
}

async fn healthz(daemon: &Daemon) -> Option<u16> {
    support::http_client(Duration::from_secs(2))
        .get(format!("http://{}/healthz", daemon.metrics_addr))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .ok()
}

async fn transitions_to(daemon: &Daemon, status: &str) -> f64 {
    daemon
        .sum("podgate_gate_transitions_total", &[("status", status)])
        .await
}

/// Waits until the daemon's ok writes reach `want`, then checks no more follow for a few
/// evaluation intervals: every write is accounted for, none is repeated.
async fn assert_writes_settle_at(daemon: &Daemon, want: f64, what: &str) {
    wait_for(what, Duration::from_secs(30), || async {
        let n = daemon.writes_ok().await;
        if n >= want { Ok(()) } else { Err(n) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = daemon.writes_ok().await;
    assert_eq!(
        n,
        want,
        "{what}: {n} gate writes, expected exactly {want}\n{}\nlog:\n{}",
        daemon.activity().await,
        daemon.log_tail(60)
    );
}

// ---------------------------------------------------------------------------------------------
// 1. The apiserver process, and etcd, stopped and restarted.
// ---------------------------------------------------------------------------------------------

/// Two healthy pods; `component` goes down; one pod's metric turns bad while it is down; it
/// comes back. The bad verdict must be decided during the outage, fail to be written, and be
/// written afterwards; the other pod must not be touched at all; a pod created afterwards
/// proves the watch is back.
async fn outage_of(component: Component) {
    let cp = tokio::task::spawn_blocking(PrivateControlPlane::start)
        .await
        .unwrap_or_else(|e| panic!("starting a private control plane: {e}"));
    let scene = Scene::new_on(&cp, &format!("{}-down", component.name())).await;
    let _steady_ep = scene
        .running_pod(TestPod::new("steady").gate(GATE), &queue(1))
        .await;
    let flip_ep = scene
        .running_pod(TestPod::new("flip").gate(GATE), &queue(1))
        .await;
    let rules = rules_dir(&rules());
    let daemon = Daemon::start_with_kubeconfig(
        cp.podgate_kubeconfig_path(),
        rules.path(),
        scene.name(),
        &[],
    );
    daemon.wait_ready().await;
    let steady = scene
        .wait_gate("steady", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    scene
        .wait_gate("flip", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    let steady_rv = scene.resource_version("steady").await;
    assert_writes_settle_at(&daemon, 2.0, "the two first verdicts written").await;

    cp.down(component).await;
    flip_ep.set_body(queue(500));
    // Decided while the API is down; its write is tried and fails.
    wait_for(
        &format!(
            "a False verdict and a failed write while {} is down",
            component.name()
        ),
        Duration::from_secs(60),
        || async {
            let decided = transitions_to(&daemon, "False").await;
            let failed = daemon
                .sum("podgate_kube_writes_total", &[("result", "error")])
                .await;
            if decided >= 1.0 && failed >= 1.0 {
                Ok(())
            } else {
                Err(format!(
                    "transitions to False {decided}, failed writes {failed}"
                ))
            }
        },
    )
    .await;
    // A few more intervals down: the daemon lives on and the outage alone decides nothing.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        healthz(&daemon).await,
        Some(200),
        "the daemon keeps running\n{}",
        daemon.log_tail(40)
    );
    assert_eq!(transitions_to(&daemon, "False").await, 1.0);

    cp.up(component).await;
    let g = scene
        .wait_gate_within(
            "flip",
            GATE,
            "False",
            "MetricsUnhealthy",
            &daemon,
            AFTER_OUTAGE,
        )
        .await;
    assert!(g.message.contains(UNHEALTHY_MSG), "{g:?}");
    // The steady pod was not rewritten, let alone flipped.
    assert_eq!(scene.resource_version("steady").await, steady_rv);
    assert_eq!(scene.gate("steady", GATE).await, Some(steady));

    // Resynced: a pod that appears now is seen through the watch and gated.
    let _late_ep = scene
        .running_pod(TestPod::new("late").gate(GATE), &queue(1))
        .await;
    scene
        .wait_gate_within(
            "late",
            GATE,
            "True",
            "MetricsHealthy",
            &daemon,
            AFTER_OUTAGE,
        )
        .await;
    // The outage's verdict and the late pod's, once each. A write whose answer the outage
    // swallowed (the apiserver committed it after the writer gave up) is found in place by the
    // retry and counted `unchanged`, not written again. A write is counted once its Event is
    // posted too, which may take up to the write timeout while the apiserver recovers from
    // the etcd restart (seen on v1.37): wait for the count, then a little for any extra one.
    let counted = Instant::now();
    while counted.elapsed() < Duration::from_secs(15) {
        let done = daemon.writes_ok().await
            + daemon
                .sum("podgate_kube_writes_total", &[("result", "unchanged")])
                .await;
        if done >= 4.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ok = daemon.writes_ok().await;
    let unchanged = daemon
        .sum("podgate_kube_writes_total", &[("result", "unchanged")])
        .await;
    assert!(
        ok == 4.0 || (ok == 3.0 && unchanged >= 1.0),
        "{ok} gate writes ({unchanged} found unchanged), expected 4\n{}\nlog:\n{}",
        daemon.activity().await,
        daemon.log_tail(60)
    );
    assert_eq!(transitions_to(&daemon, "False").await, 1.0);
    if component == Component::KubeApiserver {
        // Its watches broke with the process, and were picked up again.
        let log = daemon.log();
        assert!(log.contains("watching pods (retrying)"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_apiserver_restart_flips_nothing_and_the_decision_taken_meanwhile_is_written() {
    outage_of(Component::KubeApiserver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restart_flips_nothing_and_the_decision_taken_meanwhile_is_written() {
    outage_of(Component::Etcd).await;
}

// ---------------------------------------------------------------------------------------------
// 2. Watches ended with 410 Gone.
// ---------------------------------------------------------------------------------------------

/// Two healthy pods behind an HTTP proxy; `expire` makes the proxy end the daemon's watches
/// with 410 Gone; a pod created meanwhile must be found by the re-list; nothing is flipped or
/// rewritten.
async fn watch_gone(prefix: &str, expire: impl FnOnce(&HttpProxy)) {
    let cp = ControlPlane::get();
    let scene = Scene::new(prefix).await;
    let _a_ep = scene
        .running_pod(TestPod::new("a").gate(GATE), &queue(1))
        .await;
    let _b_ep = scene
        .running_pod(TestPod::new("b").gate(GATE), &queue(1))
        .await;
    let proxy = HttpProxy::start(cp).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kubeconfig = proxy.kubeconfig(cp.podgate_kubeconfig_path(), dir.path());
    let rules = rules_dir(&rules());
    let daemon = Daemon::start_with_kubeconfig(&kubeconfig, rules.path(), scene.name(), &[]);
    daemon.wait_ready().await;
    let a = scene
        .wait_gate("a", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    let b = scene
        .wait_gate("b", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    let rvs = (
        scene.resource_version("a").await,
        scene.resource_version("b").await,
    );
    wait_for(
        "the daemon watches pods",
        Duration::from_secs(20),
        || async {
            let s = proxy.stats();
            if s.watches_of("pods") >= 1 {
                Ok(())
            } else {
                Err(s)
            }
        },
    )
    .await;
    assert_writes_settle_at(&daemon, 2.0, "the first two verdicts").await;
    let before = proxy.stats();
    assert!(
        !daemon.log().contains(RELIST_LOG),
        "a re-list before any expiry:\n{}",
        daemon.log()
    );

    expire(&proxy);
    // Only a fresh list (or the watch after it) can show this pod.
    let _c_ep = scene
        .running_pod(TestPod::new("c").gate(GATE), &queue(1))
        .await;
    let after = wait_for(
        "the daemon re-lists pods after 410 Gone",
        Duration::from_secs(60),
        || async {
            let s = proxy.stats();
            if s.lists_of("pods") > before.lists_of("pods") && daemon.log().contains(RELIST_LOG) {
                Ok(s)
            } else {
                Err((s, daemon.log_tail(20)))
            }
        },
    )
    .await;
    assert!(
        after.gone_events + after.gone_statuses >= 1,
        "the proxy ended no watch: {after:?}"
    );
    scene
        .wait_gate("c", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    // And the watch after the re-list delivers: a pod created now is gated too.
    let _d_ep = scene
        .running_pod(TestPod::new("d").gate(GATE), &queue(1))
        .await;
    scene
        .wait_gate("d", GATE, "True", "MetricsHealthy", &daemon)
        .await;

    assert_writes_settle_at(&daemon, 4.0, "c's and d's first verdicts only").await;
    assert_eq!(
        (
            scene.resource_version("a").await,
            scene.resource_version("b").await
        ),
        rvs,
        "the re-list rewrote a gate\n{}",
        daemon.log_tail(40)
    );
    assert_eq!(scene.gate("a", GATE).await, Some(a));
    assert_eq!(scene.gate("b", GATE).await, Some(b));
    assert_eq!(transitions_to(&daemon, "False").await, 0.0);
    assert_eq!(healthz(&daemon).await, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ended_by_a_410_gone_event_relists_and_flips_nothing() {
    // Open watches get the event, and so do the next three the daemon starts.
    watch_gone("gone-event", |proxy| proxy.expire_watches(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_refused_with_http_410_relists_and_flips_nothing() {
    // Open watches end; watching again from where they were is refused with 410 Gone.
    watch_gone("gone-status", HttpProxy::compact).await;
}

// ---------------------------------------------------------------------------------------------
// 3. The leader killed with SIGKILL.
// ---------------------------------------------------------------------------------------------

/// A Lease as seen at one moment.
#[derive(Debug, Clone, PartialEq)]
struct LeaseSeen {
    holder: Option<String>,
    acquired: Option<Timestamp>,
    renewed: Option<Timestamp>,
    duration_s: Option<i32>,
}

fn lease_seen(lease: &Lease) -> LeaseSeen {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseSeen {
        holder: spec.holder_identity,
        acquired: spec.acquire_time.map(|t| t.0),
        renewed: spec.renew_time.map(|t| t.0),
        duration_s: spec.lease_duration_seconds,
    }
}

/// The times of the `condition written` lines of a daemon's log (the log's own timestamps).
fn write_times(log: &str) -> Vec<Timestamp> {
    log.lines()
        .filter(|l| l.contains(WRITTEN_LOG))
        .map(|l| {
            let stamp = l.split_whitespace().next().unwrap_or_default();
            stamp
                .parse::<Timestamp>()
                .unwrap_or_else(|e| panic!("log line without a timestamp ({e}): {l}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_within_the_lease_and_two_leaders_never_write() {
    const LEASE_DURATION: Duration = Duration::from_secs(5);
    let scene = Scene::new("sigkill").await;
    let lease_name = format!("fault-{}", unique_suffix());
    let rules = rules_dir(&rules());
    let flags = [
        "--leader-election",
        "--lease-name",
        &lease_name,
        "--lease-duration",
        "5s",
    ];
    let _steady_ep = scene
        .running_pod(TestPod::new("steady").gate(GATE), &queue(1))
        .await;
    let flapper = scene
        .running_pod(TestPod::new("flapper").gate(GATE), &queue(1))
        .await;

    let mut a = Daemon::start(rules.path(), scene.name(), &flags);
    a.wait_ready().await;
    a.wait_leader(1.0, Duration::from_secs(20)).await;
    let b = Daemon::start(rules.path(), scene.name(), &flags);
    b.wait_ready().await;
    scene
        .wait_gate("steady", GATE, "True", "MetricsHealthy", &a)
        .await;
    scene
        .wait_gate("flapper", GATE, "True", "MetricsHealthy", &a)
        .await;
    let steady = scene.gate("steady", GATE).await;

    // The lease, as the apiserver has it, every 100 ms from now on.
    let leases: Api<Lease> = Api::namespaced(scene.admin.clone(), "podgate");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let lease_log = {
        let leases = leases.clone();
        let name = lease_name.clone();
        tokio::spawn(async move {
            let mut seen: Vec<LeaseSeen> = Vec::new();
            loop {
                if let Ok(l) = leases.get(&name).await {
                    let now = lease_seen(&l);
                    if seen.last() != Some(&now) {
                        seen.push(now);
                    }
                }
                tokio::select! {
                    _ = stop_rx.changed() => return seen,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        })
    };
    // The flapper's metric turns over every 1.5 s for the rest of the test: a leader always
    // has something to write, before, during and after the takeover.
    let flapping = {
        let (stop_flap, mut flap_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut bad = false;
            loop {
                bad = !bad;
                flapper.set_body(queue(if bad { 500 } else { 1 }));
                tokio::select! {
                    _ = flap_rx.changed() => return flapper,
                    _ = tokio::time::sleep(Duration::from_millis(1500)) => {}
                }
            }
        });
        (stop_flap, task)
    };
    wait_for(
        "the leader writes the flapping gate",
        Duration::from_secs(30),
        || async {
            let n = a.writes_ok().await;
            if n >= 5.0 { Ok(()) } else { Err(n) }
        },
    )
    .await;
    assert_eq!(b.sum("podgate_kube_writes_total", &[]).await, 0.0);
    assert!(b.log().lines().all(|l| !l.contains(WRITTEN_LOG)));
    assert_eq!(b.metric("podgate_leader").await, Some(0.0));

    a.kill();
    let killed_at = Timestamp::now();
    let takeover = b.wait_leader(1.0, Duration::from_secs(30)).await;
    // The lease was renewed at most LEASE_DURATION before the kill; the standby needs one
    // retry period on top to notice.
    assert!(
        takeover < LEASE_DURATION + Duration::from_secs(3),
        "takeover after SIGKILL took {takeover:?} (lease duration {LEASE_DURATION:?})\n{}",
        b.log_tail(30)
    );
    wait_for("the new leader writes", Duration::from_secs(30), || async {
        let n = b.writes_ok().await;
        if n >= 3.0 { Ok(()) } else { Err(n) }
    })
    .await;
    let (stop_flap, flap_task) = flapping;
    let _ = stop_flap.send(true);
    let flapper = flap_task
        .await
        .unwrap_or_else(|e| panic!("flapping task: {e}"));
    let _ = stop_tx.send(true);
    let leases_seen = lease_log
        .await
        .unwrap_or_else(|e| panic!("lease log task: {e}"));
    let b_leads_from = Timestamp::now();

    // The lease: A's term, then B's, and B's starts after A's last renewal ran out.
    let a_terms: Vec<&LeaseSeen> = leases_seen
        .iter()
        .take_while(|l| l.holder == leases_seen[0].holder)
        .collect();
    let a_last = a_terms
        .last()
        .unwrap_or_else(|| panic!("no lease seen: {leases_seen:?}"));
    let b_term = leases_seen
        .iter()
        .find(|l| l.holder.is_some() && l.holder != a_last.holder)
        .unwrap_or_else(|| panic!("no second holder in {leases_seen:#?}"));
    let (Some(a_renewed), Some(b_acquired)) = (a_last.renewed, b_term.acquired) else {
        panic!("lease times missing: {leases_seen:#?}");
    };
    let a_expiry = a_renewed + LEASE_DURATION;
    assert!(
        b_acquired >= a_expiry,
        "B acquired the lease at {b_acquired}, before A's term ended at {a_expiry}: {leases_seen:#?}"
    );
    assert_eq!(a_last.duration_s, Some(5));

    // Every write of A lies inside A's term, every write of B after B acquired the lease.
    let a_writes = write_times(&a.log());
    let b_writes = write_times(&b.log());
    assert!(a_writes.len() >= 5, "{}", a.log_tail(40));
    assert!(b_writes.len() >= 3, "{}", b.log_tail(40));
    for t in &a_writes {
        assert!(
            *t <= killed_at && *t <= a_expiry,
            "A wrote at {t}, after it was killed ({killed_at}) or its lease ran out ({a_expiry})"
        );
    }
    for t in &b_writes {
        assert!(
            *t >= b_acquired,
            "B wrote at {t}, before it acquired the lease at {b_acquired}"
        );
    }
    assert_eq!(b.writes_ok().await, b_writes.len() as f64);

    // The pod agrees: podgate's field manager last wrote the flapper's status during B's term,
    // the steady pod was never rewritten, and the flapper's condition is B's latest verdict.
    let pod = scene.pod("flapper").await;
    let managed: Vec<_> = pod
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some("podgate"))
        .collect();
    assert_eq!(managed.len(), 1, "{managed:#?}");
    assert_eq!(managed[0].subresource.as_deref(), Some("status"));
    let managed_at = managed[0]
        .time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or_else(|| panic!("no time on {managed:#?}"));
    // managedFields times have whole seconds.
    assert!(
        managed_at + Duration::from_secs(1) > b_acquired && managed_at <= b_leads_from,
        "podgate's last status write at {managed_at}, B's term from {b_acquired}"
    );
    assert_eq!(scene.gate("steady", GATE).await, steady);
    let want = if flapper.response().body.contains(" 500") {
        ("False", "MetricsUnhealthy")
    } else {
        ("True", "MetricsHealthy")
    };
    scene.wait_gate("flapper", GATE, want.0, want.1, &b).await;

    drop(b);
    let _ = leases.delete(&lease_name, &DeleteParams::default()).await;
}

// ---------------------------------------------------------------------------------------------
// 4. SIGTERM during a burst of writes.
// ---------------------------------------------------------------------------------------------

/// A gate as the old or the new verdict left it, or what is wrong with it.
fn consistent(gate: Option<&Gate>) -> Result<bool, String> {
    let Some(g) = gate else {
        return Err("no condition".into());
    };
    let t = g.last_transition.is_some();
    match (g.status.as_str(), g.reason.as_str()) {
        ("True", "MetricsHealthy") if g.message.contains(HEALTHY_MSG) && t => Ok(false),
        ("False", "MetricsUnhealthy") if g.message.contains(UNHEALTHY_MSG) && t => Ok(true),
        _ => Err(format!("inconsistent condition {g:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_a_burst_of_writes_exits_in_time_and_leaves_every_gate_whole() {
    const PODS: usize = 40;
    let scene = Scene::new("burst").await;
    let names: Vec<String> = (0..PODS).map(|i| format!("web-{i:02}")).collect();
    let mut endpoints = Vec::new();
    for name in &names {
        endpoints.push(
            scene
                .running_pod(TestPod::new(name).gate(GATE), &queue(1))
                .await,
        );
    }
    let rules = rules_dir(&rules());
    let first = Daemon::start(rules.path(), scene.name(), &[]);
    first.wait_ready().await;
    for name in &names {
        scene
            .wait_gate(name, GATE, "True", "MetricsHealthy", &first)
            .await;
    }
    assert_writes_settle_at(&first, PODS as f64, "one write per pod").await;

    // Every pod turns bad at once; SIGTERM as soon as the first of the burst is written.
    for ep in &endpoints {
        ep.set_body(queue(500));
    }
    wait_for("the burst starts", Duration::from_secs(30), || async {
        let n = first.writes_ok().await;
        if n > PODS as f64 { Ok(()) } else { Err(n) }
    })
    .await;
    let (first, took) = tokio::task::spawn_blocking(move || {
        let mut d = first;
        let took = d.stop();
        (d, took)
    })
    .await
    .unwrap_or_else(|e| panic!("stopping the daemon: {e}"));
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} to exit\n{}",
        first.log_tail(40)
    );

    // Every condition is whole: the old verdict or the new one, never a mix.
    let mut flipped = 0;
    for name in &names {
        match consistent(scene.gate(name, GATE).await.as_ref()) {
            Ok(true) => flipped += 1,
            Ok(false) => {}
            Err(e) => panic!("pod {name}: {e}\n{}", first.log_tail(40)),
        }
    }
    eprintln!("{flipped} of {PODS} gates written before the exit (took {took:?})");
    assert!(flipped >= 1);

    // A new daemon finishes the job, writing only what is left.
    let second = Daemon::start(rules.path(), scene.name(), &[]);
    second.wait_ready().await;
    for name in &names {
        scene
            .wait_gate(name, GATE, "False", "MetricsUnhealthy", &second)
            .await;
    }
    assert_writes_settle_at(
        &second,
        (PODS - flipped) as f64,
        "the restarted daemon writes only the gates the first one left",
    )
    .await;
    drop(endpoints);
}

// ---------------------------------------------------------------------------------------------
// 5. A node-local instance whose node goes away.
// ---------------------------------------------------------------------------------------------

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/stat: {e}"));
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat; 12 and 13 of what follows the ')'.
    field(11) + field(12)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_local_instance_whose_node_disappears_stays_healthy_and_idle() {
    let scene = Scene::new("node-gone").await;
    let node_name = format!("node-gone-{}", unique_suffix());
    let nodes: Api<Node> = Api::all(scene.admin.clone());
    nodes
        .create(
            &PostParams::default(),
            &Node {
                metadata: ObjectMeta {
                    name: Some(node_name.clone()),
                    ..ObjectMeta::default()
                },
                ..Node::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("creating node {node_name}: {e}"));
    let rules = rules_dir(&rules());
    let daemon = Daemon::start(
        rules.path(),
        scene.name(),
        &["--node-local", "--node-name", &node_name],
    );
    daemon.wait_ready().await;
    let mut endpoints = Vec::new();
    for name in ["p1", "p2", "p3"] {
        endpoints.push(
            scene
                .running_pod(TestPod::new(name).gate(GATE).node(&node_name), &queue(1))
                .await,
        );
    }
    for name in ["p1", "p2", "p3"] {
        scene
            .wait_gate(name, GATE, "True", "MetricsHealthy", &daemon)
            .await;
    }

    // The Node object goes (as when a node is removed from the cluster); the node lifecycle
    // controller then deletes its pods. One of them has just turned bad, so a write for it
    // may still be on its way when it goes.
    nodes
        .delete(&node_name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("deleting node {node_name}: {e}"));
    endpoints[0].set_body(queue(500));
    for name in ["p1", "p2", "p3"] {
        delete_pod_now(&scene.pods, name).await;
    }
    wait_for("no pods tracked", Duration::from_secs(30), || async {
        match daemon.metric("podgate_pods_tracked").await {
            Some(0.0) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    // Let whatever was in flight finish, then watch it idle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes = daemon.sum("podgate_kube_writes_total", &[]).await;
    let evaluations = daemon.sum("podgate_evaluations_total", &[]).await;
    let scrapes: Vec<u64> = endpoints.iter().map(|e| e.requests()).collect();
    let log_lines = daemon.log().lines().count();
    let ticks = cpu_ticks(daemon.pid());
    let watched = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let idle = watched.elapsed();
    let used = cpu_ticks(daemon.pid()) - ticks;

    assert_eq!(healthz(&daemon).await, Some(200), "{}", daemon.log_tail(40));
    assert_eq!(daemon.readyz().await.0, 200, "{}", daemon.log_tail(40));
    assert_eq!(
        daemon.sum("podgate_kube_writes_total", &[]).await,
        writes,
        "writes for pods that are gone\n{}",
        daemon.log_tail(40)
    );
    assert_eq!(
        daemon.sum("podgate_evaluations_total", &[]).await,
        evaluations
    );
    assert_eq!(
        endpoints.iter().map(|e| e.requests()).collect::<Vec<_>>(),
        scrapes,
        "pods that are gone are still scraped"
    );
    let new_lines = daemon.log().lines().count() - log_lines;
    assert!(
        new_lines <= 5,
        "{new_lines} log lines in {idle:?} with nothing to do:\n{}",
        daemon.log_tail(new_lines)
    );
    // Idle, not spinning: well under a tenth of one core (clock ticks are 1/100 s).
    let ticks_per_s = 100.0;
    assert!(
        (used as f64 / ticks_per_s) < idle.as_secs_f64() / 10.0,
        "{used} ticks of CPU in {idle:?} with nothing to do"
    );

    // It still works: a pod on a node of that name again is gated.
    let _again = scene
        .running_pod(TestPod::new("p4").gate(GATE).node(&node_name), &queue(1))
        .await;
    scene
        .wait_gate("p4", GATE, "True", "MetricsHealthy", &daemon)
        .await;
}
