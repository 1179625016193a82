//! `podgate run` against sources that misbehave in the ways real ones do: a pod endpoint
//! that hangs, resets the connection, streams a 1 GB body, sends invalid exposition, flaps,
//! restarts with its counters reset, a pod deleted in the middle of a scrape, a pod IP handed
//! to a new pod; and Prometheus down, slow, answering errors or a non-vector result.
//!
//! Each fault is seen through the three `onError` policies at once (one rule per policy on
//! the same gate, a pod picks its rule with the label `policy`): `fail` turns the gate False
//! with reason `SourceError`, `pass` keeps it True with reason `SourceError`, `keep` never
//! touches the pod; the message says what happened.

use crate::support;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use support::daemon::{Daemon, rules_dir};
use support::labelled_queue as queue;
use support::pods::delete_pod_now;
use support::scene::{Gate, Scene, gate_of_pod};
use support::{MetricsEndpoint, Prometheus, TestPod, unique_loopback_ip, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const GATE: &str = "podgate.dev/fault-healthy";
const POLICIES: [&str; 3] = ["fail", "pass", "keep"];
const GIB: u64 = 1 << 30;

/// One rule per policy on GATE: `onError` and `onNoData` both set to the policy.
fn policy_rules(vars: &str, expr: &str, failure_threshold: u32) -> String {
    let mut out = String::from("rules:\n");
    for policy in POLICIES {
        out.push_str(&format!(
            r#"  - name: on-{policy}
    conditionType: {GATE}
    selector: {{matchLabels: {{policy: {policy}}}}}
    interval: 1s
    timeout: 500ms
    failureThreshold: {failure_threshold}
    onNoData: {policy}
    onError: {policy}
    scrape: {{port: metrics}}
    vars:
      {vars}
    expr: '{expr}'
"#
        ));
    }
    out
}

fn queue_rules(failure_threshold: u32) -> String {
    policy_rules(
        "queue: {scrape: 'max(work_queue_depth)'}",
        "queue < 100",
        failure_threshold,
    )
}

fn counter(value: u64) -> String {
    format!("# TYPE requests_total counter\nrequests_total{{code=\"200\"}} {value}\n")
}

// ---------------------------------------------------------------------------------------
// A pod endpoint that can misbehave at the TCP and HTTP level

/// What the endpoint does with the next request.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// 200 with this body.
    Good(String),
    /// 200 with this body after a delay.
    Slow(Duration, String),
    /// Reads the request, never answers, keeps the connection open.
    Hang,
    /// Reads the request, then resets the connection (RST, no answer).
    Reset,
    /// A 1 GiB body, streamed: chunked, or with its length declared up front.
    Huge { declared: bool },
    /// Alternates: 500 on odd requests, this body on even ones.
    Flap(String),
    /// A counter `requests_total` that grows by `step` on every request.
    Counter { value: u64, step: u64 },
}

struct EndpointState {
    mode: Mutex<Mode>,
    requests: AtomicU64,
    /// Most body bytes written into any one response.
    most_written: AtomicU64,
}

/// A raw HTTP/1.1 server on its own loopback address; one request per connection.
struct FaultyEndpoint {
    ip: Ipv4Addr,
    port: u16,
    state: Arc<EndpointState>,
    server: Option<JoinHandle<()>>,
}

impl FaultyEndpoint {
    async fn start(mode: Mode) -> FaultyEndpoint {
        let state = Arc::new(EndpointState {
            mode: Mutex::new(mode),
            requests: AtomicU64::new(0),
            most_written: AtomicU64::new(0),
        });
        let mut ep = FaultyEndpoint {
            ip: unique_loopback_ip(),
            port: 0,
            state,
            server: None,
        };
        ep.listen().await;
        ep
    }

    /// (Re)binds `ip:port` (a free port the first time) and serves.
    async fn listen(&mut self) {
        let listener = TcpListener::bind((self.ip, self.port))
            .await
            .unwrap_or_else(|e| panic!("faulty endpoint: binding {}:{}: {e}", self.ip, self.port));
        self.port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("faulty endpoint: {e}"))
            .port();
        let state = self.state.clone();
        self.server = Some(tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, state.clone()));
            }
        }));
    }

    /// Closes the listener: connections are refused until [`FaultyEndpoint::restart`].
    fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// Listens again on the same address and port, in `mode`.
    async fn restart(&mut self, mode: Mode) {
        self.set(mode);
        // The aborted accept loop drops its listener asynchronously: retry the bind briefly.
        for _ in 0..50 {
            match std::net::TcpListener::bind((self.ip, self.port)) {
                Ok(probe) => {
                    drop(probe);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        self.listen().await;
    }

    fn set(&self, mode: Mode) {
        *lock(&self.state.mode) = mode;
    }

    fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    fn most_written(&self) -> u64 {
        self.state.most_written.load(Ordering::SeqCst)
    }

    fn url(&self) -> String {
        format!("http://{}:{}/metrics", self.ip, self.port)
    }
}

impl Drop for FaultyEndpoint {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn head(status: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nConnection: close\r\n{extra}"
    )
}

async fn answer(conn: &mut TcpStream, status: &str, body: &str) {
    let response = format!(
        "{}Content-Length: {}\r\n\r\n{body}",
        head(status, ""),
        body.len()
    );
    let _ = conn.write_all(response.as_bytes()).await;
    let _ = conn.shutdown().await;
}

async fn serve(mut conn: TcpStream, state: Arc<EndpointState>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(buf.get(..n).unwrap_or(&[])),
        }
        if request.len() > 64 * 1024 {
            return;
        }
    }
    let n = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let mode = {
        let mut mode = lock(&state.mode);
        let now = mode.clone();
        if let Mode::Counter { value, step } = &mut *mode {
            *value += *step;
        }
        now
    };
    match mode {
        Mode::Good(body) => answer(&mut conn, "200 OK", &body).await,
        Mode::Slow(delay, body) => {
            tokio::time::sleep(delay).await;
            answer(&mut conn, "200 OK", &body).await;
        }
        Mode::Flap(body) if n.is_multiple_of(2) => answer(&mut conn, "200 OK", &body).await,
        Mode::Flap(_) => answer(&mut conn, "500 Internal Server Error", "flap\n").await,
        Mode::Counter { value, .. } => answer(&mut conn, "200 OK", &counter(value)).await,
        Mode::Hang => {
            // Long past any scrape timeout; the client gives up first.
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Mode::Reset => {
            let _ = conn.set_zero_linger();
            drop(conn);
        }
        Mode::Huge { declared } => {
            let written = stream_huge(&mut conn, declared).await;
            state.most_written.fetch_max(written, Ordering::SeqCst);
        }
    }
}

/// Streams up to 1 GiB of comment lines (never held in memory) until the client stops
/// reading; returns the body bytes written.
async fn stream_huge(conn: &mut TcpStream, declared: bool) -> u64 {
    const CHUNK: usize = 64 * 1024;
    let line = "# filler: a body far over any sane size limit, streamed\n";
    let mut chunk = String::with_capacity(CHUNK);
    while chunk.len() + line.len() <= CHUNK {
        chunk.push_str(line);
    }
    let framing = if declared {
        format!("Content-Length: {GIB}\r\n\r\n")
    } else {
        "Transfer-Encoding: chunked\r\n\r\n".to_string()
    };
    if conn
        .write_all(head("200 OK", &framing).as_bytes())
        .await
        .is_err()
    {
        return 0;
    }
    let mut written = 0u64;
    while written < GIB {
        let result = if declared {
            conn.write_all(chunk.as_bytes()).await
        } else {
            let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
            conn.write_all(framed.as_bytes()).await
        };
        if result.is_err() {
            break;
        }
        written += chunk.len() as u64;
    }
    written
}

// ---------------------------------------------------------------------------------------
// Watching a pod's gate over time

/// Records every distinct state a pod's gate goes through (polled every 100 ms).
struct GateHistory {
    seen: Arc<Mutex<Vec<Option<Gate>>>>,
    task: JoinHandle<()>,
}

impl GateHistory {
    fn start(pods: &Api<Pod>, name: &str) -> GateHistory {
        let seen: Arc<Mutex<Vec<Option<Gate>>>> = Arc::default();
        let (pods, name, sink) = (pods.clone(), name.to_string(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                if let Ok(pod) = pods.get(&name).await {
                    let g = gate_of_pod(&pod, GATE);
                    let mut seen = lock(&sink);
                    if seen.last() != Some(&g) {
                        seen.push(g);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        GateHistory { seen, task }
    }

    /// Every (status, reason) seen so far, in order.
    fn states(&self) -> Vec<(String, String)> {
        lock(&self.seen)
            .iter()
            .flatten()
            .map(|g| (g.status.clone(), g.reason.clone()))
            .collect()
    }
}

impl Drop for GateHistory {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Creates pod `name` (label `policy`) with its `metrics` port on `ep` and runs it there.
async fn run_on(scene: &Scene, name: &str, policy: &str, ep: &FaultyEndpoint) {
    TestPod::new(name)
        .gate(GATE)
        .label("policy", policy)
        .port("metrics", ep.port)
        .create(&scene.pods)
        .await;
    scene.kubelet.run(name, ep.ip, true).await;
}

/// One pod per policy, named after it, each on its own endpoint in `mode`; waits until all
/// are True/MetricsHealthy.
async fn policy_pods(scene: &Scene, daemon: &Daemon, mode: Mode) -> Vec<FaultyEndpoint> {
    let mut eps = Vec::new();
    for policy in POLICIES {
        let ep = FaultyEndpoint::start(mode.clone()).await;
        run_on(scene, policy, policy, &ep).await;
        eps.push(ep);
    }
    for policy in POLICIES {
        scene
            .wait_gate(policy, GATE, "True", "MetricsHealthy", daemon)
            .await;
    }
    eps
}

/// Peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

/// Asserts the fault's effect per policy: `fail` False/SourceError and `pass`
/// True/SourceError, both with every needle in the message; `keep` left as `keep_rv`.
async fn expect_source_error(
    scene: &Scene,
    daemon: &Daemon,
    what: &str,
    needles: &[&str],
    keep_rv: &str,
) {
    for (policy, status) in [("fail", "False"), ("pass", "True")] {
        let g = scene
            .wait_gate(policy, GATE, status, "SourceError", daemon)
            .await;
        for needle in needles {
            assert!(
                g.message.contains(needle),
                "{what}: the {policy} pod's message should contain {needle:?}: {g:?}"
            );
        }
        assert!(g.message.contains(&format!("(rule on-{policy})")), "{g:?}");
    }
    assert_eq!(
        scene.resource_version("keep").await,
        keep_rv,
        "{what}: the keep pod must not be written"
    );
}

// ---------------------------------------------------------------------------------------
// Pod endpoints

#[tokio::test]
async fn hang_reset_huge_body_and_invalid_exposition_per_on_error_policy() {
    let scene = Scene::new("faults-endpoint").await;
    let rules = rules_dir(&queue_rules(1));
    // The default body limit (10 MiB): the 1 GiB bodies must stop there.
    let daemon = Daemon::start(rules.path(), scene.name(), &[]);
    daemon.wait_ready().await;
    let eps = policy_pods(&scene, &daemon, Mode::Good(queue(1))).await;
    let keep_rv = scene.resource_version("keep").await;
    let keep_scrapes = eps.get(2).map_or(0, FaultyEndpoint::requests);
    let url = |policy: &str| {
        let i = POLICIES.iter().position(|p| *p == policy).unwrap_or(0);
        eps.get(i).map(FaultyEndpoint::url).unwrap_or_default()
    };
    let limit = "larger than the 10485760 byte limit".to_string();

    let faults: [(&str, Mode, Vec<String>); 5] = [
        (
            "hang",
            Mode::Hang,
            vec!["timed out after 500ms".to_string()],
        ),
        ("reset", Mode::Reset, vec![]),
        (
            "1 GiB chunked body",
            Mode::Huge { declared: false },
            vec![limit.clone()],
        ),
        (
            "1 GiB declared body",
            Mode::Huge { declared: true },
            vec![limit.clone()],
        ),
        (
            "invalid exposition",
            Mode::Good("# TYPE work_queue_depth gauge\nwork_queue_depth{queue=\"a\" 1\n".into()),
            vec!["invalid exposition: line 2".to_string()],
        ),
    ];
    for (what, mode, needles) in faults {
        for ep in &eps {
            ep.set(mode.clone());
        }
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        expect_source_error(&scene, &daemon, what, &needles, &keep_rv).await;
        for policy in ["fail", "pass"] {
            let g = scene
                .gate(policy, GATE)
                .await
                .unwrap_or_else(|| panic!("{policy}: no gate"));
            assert!(
                g.message.contains(&format!("scrape {}", url(policy))),
                "{what}: names the URL: {g:?}"
            );
            if what == "reset" {
                eprintln!("reset: {}", g.message);
                let m = g.message.to_lowercase();
                assert!(
                    m.contains("reset") || m.contains("closed"),
                    "the message says the connection was reset or closed: {g:?}"
                );
            }
        }
        // Recovered: every policy back to healthy before the next fault.
        for ep in &eps {
            ep.set(Mode::Good(queue(1)));
        }
        for policy in ["fail", "pass"] {
            scene
                .wait_gate(policy, GATE, "True", "MetricsHealthy", &daemon)
                .await;
        }
    }

    // keep: scraped all along, never written.
    assert!(eps.get(2).map_or(0, FaultyEndpoint::requests) > keep_scrapes + 5);
    assert_eq!(scene.resource_version("keep").await, keep_rv);

    // The huge bodies were cut at the limit, not read to the end, and never held whole.
    let most = eps
        .iter()
        .map(FaultyEndpoint::most_written)
        .max()
        .unwrap_or(0);
    assert!(most > 0, "a huge body was streamed");
    assert!(
        most < 128 << 20,
        "podgate read {most} bytes of one 1 GiB body; it must stop at the 10 MiB limit"
    );
    let rss = peak_rss(daemon.pid());
    eprintln!(
        "largest part of a 1 GiB body sent before podgate hung up: {} KiB; podgate's peak RSS: {} MiB",
        most >> 10,
        rss >> 20
    );
    assert!(
        rss < 400 << 20,
        "podgate's peak RSS reached {} MiB while refusing 1 GiB bodies",
        rss >> 20
    );
    // Counted at least once for each of the `fail` and `pass` pods, whose gates showed the
    // fault; the `keep` pod's scrape may fall outside a fault's window (its gate never says).
    let m = daemon.samples().await;
    let invalid = support::daemon::sum_of(
        &m,
        "podgate_source_requests_total",
        &[("source", "scrape"), ("result", "invalid")],
    );
    assert!(invalid >= 2.0, "invalid bodies counted: {invalid}");
    let timeouts = support::daemon::sum_of(
        &m,
        "podgate_source_requests_total",
        &[("source", "scrape"), ("result", "timeout")],
    );
    assert!(timeouts >= 2.0, "hangs counted as timeouts: {timeouts}");
}

#[tokio::test]
async fn a_flapping_endpoint_does_not_flip_a_gate_with_a_failure_threshold() {
    let scene = Scene::new("faults-flap").await;
    let daemon = scene.start_daemon(&queue_rules(2), &[]).await;
    let eps = policy_pods(&scene, &daemon, Mode::Good(queue(1))).await;
    let histories: Vec<GateHistory> = POLICIES
        .iter()
        .map(|p| GateHistory::start(&scene.pods, p))
        .collect();
    let keep_rv = scene.resource_version("keep").await;
    let d = &daemon;
    let errors = |rule: &'static str| async move {
        d.sum(
            "podgate_evaluations_total",
            &[("rule", rule), ("result", "error")],
        )
        .await
    };
    let before = [
        errors("on-fail").await,
        errors("on-pass").await,
        errors("on-keep").await,
    ];

    for ep in &eps {
        ep.set(Mode::Flap(queue(1)));
    }
    // Long enough for several good/bad pairs on every pod.
    let requests: Vec<u64> = eps.iter().map(FaultyEndpoint::requests).collect();
    wait_for(
        "six flaps on every endpoint",
        Duration::from_secs(30),
        || async {
            let done: Vec<u64> = eps
                .iter()
                .zip(&requests)
                .map(|(ep, r)| ep.requests() - r)
                .collect();
            if done.iter().all(|n| *n >= 6) {
                Ok(())
            } else {
                Err(done)
            }
        },
    )
    .await;

    for (i, rule) in ["on-fail", "on-pass", "on-keep"].into_iter().enumerate() {
        let n = errors(rule).await - before.get(i).copied().unwrap_or(0.0);
        assert!(n >= 2.0, "{rule}: the flaps were errors ({n})");
    }
    // Errors never came twice in a row: failureThreshold 2 never reached.
    for (policy, h) in POLICIES.iter().zip(&histories) {
        let states = h.states();
        assert!(
            states.iter().all(|(status, _)| status == "True"),
            "{policy}: the gate went False while flapping: {states:?}"
        );
    }
    let g = scene.gate("fail", GATE).await;
    assert_eq!(
        g.as_ref().map(|g| g.reason.as_str()),
        Some("MetricsHealthy"),
        "{g:?}"
    );
    assert_eq!(scene.resource_version("keep").await, keep_rv);
}

#[tokio::test]
async fn an_endpoint_restarting_with_reset_counters_never_reads_as_negative() {
    let scene = Scene::new("faults-restart").await;
    // increase() over a window that spans the restart: a counter reset must read as growth.
    let daemon = scene
        .start_daemon(
            &policy_rules(
                "reqs: {scrape: 'increase(requests_total[10s])'}",
                "reqs > 0",
                2,
            ),
            &[],
        )
        .await;
    let mut eps = policy_pods(
        &scene,
        &daemon,
        Mode::Counter {
            value: 100_000,
            step: 7,
        },
    )
    .await;
    let histories: Vec<GateHistory> = POLICIES
        .iter()
        .map(|p| GateHistory::start(&scene.pods, p))
        .collect();
    // Some history in the window before the restart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let keep_rv = scene.resource_version("keep").await;

    // The process goes away: connections refused.
    for ep in &mut eps {
        ep.stop();
    }
    expect_source_error(
        &scene,
        &daemon,
        "connection refused",
        &["connection failed"],
        &keep_rv,
    )
    .await;
    // It comes back on the same address with its counters from zero.
    for ep in &mut eps {
        ep.restart(Mode::Counter { value: 0, step: 7 }).await;
    }
    for policy in ["fail", "pass"] {
        let g = scene
            .wait_gate(policy, GATE, "True", "MetricsHealthy", &daemon)
            .await;
        assert!(g.message.contains("reqs="), "{g:?}");
    }
    // A few more evaluations with the reset inside the window.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let fails = daemon
        .sum("podgate_evaluations_total", &[("result", "fail")])
        .await;
    assert_eq!(fails, 0.0, "no evaluation read the reset as a drop");
    for (policy, h) in POLICIES.iter().zip(&histories) {
        let states = h.states();
        assert!(
            !states
                .iter()
                .any(|(_, reason)| reason == "MetricsUnhealthy"),
            "{policy}: {states:?}"
        );
        let last = states.last().cloned();
        assert_eq!(
            last,
            Some(("True".to_string(), "MetricsHealthy".to_string())),
            "{policy}: {states:?}"
        );
    }
    assert_eq!(scene.resource_version("keep").await, keep_rv);
}

#[tokio::test]
async fn a_pod_deleted_during_a_slow_scrape_gets_no_write_and_no_error_storm() {
    let scene = Scene::new("faults-deleted").await;
    let daemon = scene
        .start_daemon(
            &format!(
                r#"rules:
  - name: slow
    conditionType: {GATE}
    interval: 4s
    timeout: 3s
    failureThreshold: 1
    onError: fail
    scrape: {{port: metrics}}
    vars:
      queue: {{scrape: 'max(work_queue_depth)'}}
    expr: 'queue < 100'
"#
            ),
            &[],
        )
        .await;
    let ep = FaultyEndpoint::start(Mode::Good(queue(1))).await;
    run_on(&scene, "web", "fail", &ep).await;
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;

    // The next scrape is slow and would turn the gate False when it answers.
    ep.set(Mode::Slow(Duration::from_secs(2), queue(500)));
    let before = ep.requests();
    wait_for(
        "the slow scrape to start",
        Duration::from_secs(15),
        || async {
            let n = ep.requests();
            if n > before { Ok(n) } else { Err(n) }
        },
    )
    .await;
    let writes = daemon.sum("podgate_kube_writes_total", &[]).await;
    let evaluations = daemon
        .sum("podgate_evaluations_total", &[("rule", "slow")])
        .await;
    let log_mark = daemon.log().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    delete_pod_now(&scene.pods, "web").await;
    let in_flight = ep.requests();

    // Past the delay, the timeout and two more intervals.
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(
        daemon.sum("podgate_kube_writes_total", &[]).await,
        writes,
        "no write was attempted for the deleted pod"
    );
    assert_eq!(
        daemon
            .sum("podgate_evaluations_total", &[("rule", "slow")])
            .await,
        evaluations,
        "the scrape in flight was not evaluated for the deleted pod"
    );
    assert_eq!(
        ep.requests(),
        in_flight,
        "the deleted pod is not scraped again"
    );
    assert_eq!(daemon.metric("podgate_pods_tracked").await, Some(0.0));
    let log = daemon.log();
    let after: Vec<&str> = log
        .get(log_mark..)
        .unwrap_or("")
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert!(after.is_empty(), "warnings after the deletion: {after:#?}");
}

#[tokio::test]
async fn a_pod_ip_reused_by_a_new_pod_carries_no_state_from_the_old_one() {
    let scene = Scene::new("faults-ip-reuse").await;
    // increase() needs history: a store carried over from the old pod would see its counter
    // jump from ~1000 to 50000 and fail the new pod.
    let daemon = scene
        .start_daemon(
            &format!(
                r#"rules:
  - name: reuse
    conditionType: {GATE}
    interval: 1s
    timeout: 500ms
    failureThreshold: 1
    onNoData: pass
    onError: fail
    scrape: {{port: metrics}}
    vars:
      reqs: {{scrape: 'increase(requests_total[10s])'}}
    expr: 'reqs < 1000'
"#
            ),
            &[],
        )
        .await;
    let ep = FaultyEndpoint::start(Mode::Counter {
        value: 1000,
        step: 1,
    })
    .await;
    run_on(&scene, "old", "fail", &ep).await;
    scene
        .wait_gate("old", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    delete_pod_now(&scene.pods, "old").await;
    wait_for(
        "the old pod gone from podgate",
        Duration::from_secs(15),
        || async {
            match daemon.metric("podgate_pods_tracked").await {
                Some(0.0) => Ok(()),
                other => Err(other),
            }
        },
    )
    .await;
    // Another process on the same address, another counter.
    ep.set(Mode::Counter {
        value: 50_000,
        step: 1,
    });
    let new = TestPod::new("new").gate(GATE).port("metrics", ep.port);
    new.create(&scene.pods).await;
    let history = GateHistory::start(&scene.pods, "new");
    scene.kubelet.run("new", ep.ip, true).await;
    let g = scene
        .wait_gate("new", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    let reqs: f64 = g
        .message
        .split("reqs=")
        .nth(1)
        .and_then(|s| s.split([' ', ',']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no reqs= value in {g:?}"));
    assert!(
        (0.0..100.0).contains(&reqs),
        "the new pod's increase comes from its own counter only: {g:?}"
    );
    let states = history.states();
    assert!(
        states
            .iter()
            .all(|(_, reason)| reason != "MetricsUnhealthy"),
        "the new pod was never failed: {states:?}"
    );
    let first = states.first().cloned();
    assert_eq!(
        first,
        Some(("False".to_string(), "Warming".to_string())),
        "its first evaluation had no history: no verdict yet, not a pass (onNoData: pass \
         applies only once the window could hold data): {states:?}"
    );
    assert_eq!(
        daemon
            .sum(
                "podgate_evaluations_total",
                &[("rule", "reuse"), ("result", "fail")]
            )
            .await,
        0.0
    );
}

// ---------------------------------------------------------------------------------------
// Prometheus

/// A templated `promql:` rule per policy (one query per pod).
fn promql_rules() -> String {
    let mut out = String::from("rules:\n");
    for policy in POLICIES {
        out.push_str(&format!(
            r#"  - name: on-{policy}
    conditionType: {GATE}
    selector: {{matchLabels: {{policy: {policy}}}}}
    interval: 1s
    timeout: 500ms
    failureThreshold: 1
    onNoData: {policy}
    onError: {policy}
    vars:
      queue: {{promql: 'max(work_queue_depth{{namespace="{{{{namespace}}}}",pod="{{{{pod}}}}"}})'}}
    expr: 'queue < 100'
"#
        ));
    }
    out
}

/// Pods `fail`, `pass`, `keep` with no endpoint of their own (their metrics come from
/// Prometheus), running, all True/MetricsHealthy.
async fn promql_pods(scene: &Scene, daemon: &Daemon) {
    for policy in POLICIES {
        TestPod::new(policy)
            .gate(GATE)
            .label("policy", policy)
            .create(&scene.pods)
            .await;
        scene.kubelet.run(policy, unique_loopback_ip(), true).await;
    }
    for policy in POLICIES {
        scene
            .wait_gate(policy, GATE, "True", "MetricsHealthy", daemon)
            .await;
    }
}

#[tokio::test]
async fn prometheus_down_is_a_source_error_per_on_error_policy() {
    let scene = Scene::new("faults-prom-down").await;
    let ns = scene.name().to_string();
    let exporter = MetricsEndpoint::start(unique_loopback_ip()).await;
    let mut body = String::from("# TYPE work_queue_depth gauge\n");
    for policy in POLICIES {
        body.push_str(&format!(
            "work_queue_depth{{namespace=\"{ns}\",pod=\"{policy}\"}} 1\n"
        ));
    }
    exporter.set_body(body);
    let prom = Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: exporter\n    honor_labels: true\n    \
         static_configs:\n      - targets: ['{}']\n",
        exporter.addr()
    ))
    .await;
    let prom_url = prom.url();
    wait_for(
        "the exporter's series in Prometheus",
        Duration::from_secs(30),
        || async {
            let data = prom.query("work_queue_depth").await;
            let n = data
                .get("result")
                .and_then(|r| r.as_array())
                .map_or(0, Vec::len);
            if n == 3 { Ok(()) } else { Err(data) }
        },
    )
    .await;
    let rules = rules_dir(&promql_rules());
    let daemon = Daemon::start(rules.path(), &ns, &["--prometheus-url", &prom_url]);
    daemon.wait_ready().await;
    promql_pods(&scene, &daemon).await;
    let keep_rv = scene.resource_version("keep").await;

    drop(prom);
    let host = prom_url.trim_start_matches("http://");
    expect_source_error(
        &scene,
        &daemon,
        "prometheus down",
        &["prometheus query", "cannot connect to", host],
        &keep_rv,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(scene.resource_version("keep").await, keep_rv);
    let errors = daemon
        .sum(
            "podgate_source_requests_total",
            &[("source", "prometheus"), ("result", "error")],
        )
        .await;
    assert!(errors >= 3.0, "failed queries counted: {errors}");
}

/// What the fake Prometheus API answers.
#[derive(Clone)]
struct FakeAnswer {
    status: u16,
    body: String,
    delay: Duration,
}

fn vector(value: &str) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1700000000,"{value}"]}}]}}}}"#
    )
}

async fn fake_answer(State(answer): State<Arc<Mutex<FakeAnswer>>>) -> Response {
    let a = lock(&answer).clone();
    if !a.delay.is_zero() {
        tokio::time::sleep(a.delay).await;
    }
    (
        StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        a.body,
    )
        .into_response()
}

#[tokio::test]
async fn prometheus_slow_errors_and_non_vector_results_per_on_error_policy() {
    let scene = Scene::new("faults-prom-fake").await;
    let healthy = FakeAnswer {
        status: 200,
        body: vector("1"),
        delay: Duration::ZERO,
    };
    let answer = Arc::new(Mutex::new(healthy.clone()));
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap_or_else(|e| panic!("fake prometheus: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("fake prometheus: {e}"));
    let app = Router::new()
        .fallback(fake_answer)
        .with_state(answer.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let rules = rules_dir(&promql_rules());
    let daemon = Daemon::start(
        rules.path(),
        scene.name(),
        &["--prometheus-url", &format!("http://{addr}")],
    );
    daemon.wait_ready().await;
    promql_pods(&scene, &daemon).await;
    let keep_rv = scene.resource_version("keep").await;

    let faults: [(&str, FakeAnswer, &[&str]); 5] = [
        (
            "slow",
            FakeAnswer {
                delay: Duration::from_secs(3),
                ..healthy.clone()
            },
            &["timed out after 500ms"],
        ),
        (
            "HTTP error",
            FakeAnswer {
                status: 503,
                body: "overloaded, try later".into(),
                delay: Duration::ZERO,
            },
            &["HTTP 503", "overloaded"],
        ),
        (
            "API error",
            FakeAnswer {
                status: 422,
                body: r#"{"status":"error","errorType":"execution","error":"query processing would load too many samples"}"#.into(),
                delay: Duration::ZERO,
            },
            &["execution: query processing would load too many samples"],
        ),
        (
            "matrix result",
            FakeAnswer {
                status: 200,
                body: r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#.into(),
                delay: Duration::ZERO,
            },
            &["expected an instant vector, got matrix"],
        ),
        (
            "not an API answer",
            FakeAnswer {
                status: 200,
                body: "<html>login</html>".into(),
                delay: Duration::ZERO,
            },
            &["bad response"],
        ),
    ];
    for (what, fault, needles) in faults {
        *lock(&answer) = fault;
        let mut all = vec!["prometheus query"];
        all.extend_from_slice(needles);
        expect_source_error(&scene, &daemon, what, &all, &keep_rv).await;
        *lock(&answer) = healthy.clone();
        for policy in ["fail", "pass"] {
            scene
                .wait_gate(policy, GATE, "True", "MetricsHealthy", &daemon)
                .await;
        }
    }
    assert_eq!(scene.resource_version("keep").await, keep_rv);
    let timeouts = daemon
        .sum(
            "podgate_source_requests_total",
            &[("source", "prometheus"), ("result", "timeout")],
        )
        .await;
    assert!(
        timeouts >= 3.0,
        "slow answers counted as timeouts: {timeouts}"
    );
    server.abort();
}
