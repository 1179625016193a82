//! The simulated fleet's metrics endpoints: one listener per pod address (127.10.x.y), each
//! serving a realistic body of about 200 series (runtime and process metrics, request counters,
//! a latency histogram, queues, consumer lag) whose counters advance with time. A pod's health
//! can be flipped: an unhealthy pod fails 30% of its requests and answers slowly.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;

pub const PORT: u16 = 9100;
const HANDLERS: [&str; 4] = ["/api/orders", "/api/users", "/api/items", "/api/search"];
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Requests per second per handler.
const RPS: f64 = 25.0;

/// The address of pod number `i`: 127.10.0.1, 127.10.0.2, … (250 per /24, none ending in 0
/// or 255).
pub fn pod_ip(i: usize) -> Ipv4Addr {
    let block = i / 250;
    Ipv4Addr::new(
        127,
        10 + (block / 256) as u8,
        (block % 256) as u8,
        (i % 250) as u8 + 1,
    )
}

#[derive(Debug, Default)]
struct Counters {
    at: f64,
    ok: [f64; 4],
    errors: [f64; 4],
    /// Per handler: cumulative bucket counts (BUCKETS, then +Inf) and the sum.
    buckets: [[f64; 12]; 4],
    sum: [f64; 4],
    scrapes: u64,
}

/// What a pod's endpoint does.
pub const UNHEALTHY: u8 = 0;
pub const HEALTHY: u8 = 1;
/// Answers 500 (the pod's traffic stays healthy).
pub const ERROR: u8 = 2;
/// Answers after a minute: longer than any scrape timeout.
pub const HANG: u8 = 3;

pub struct PodSim {
    mode: AtomicU8,
    counters: Mutex<Counters>,
}

/// Scrapes served, by who asked (from the User-Agent).
#[derive(Default)]
pub struct Served {
    pub podgate: AtomicU64,
    pub prometheus: AtomicU64,
    pub other: AtomicU64,
}

/// Pods `first..first + pods.len()` of the fleet (a process holds a listener per pod and a
/// connection per pod and client, so large fleets are served by several processes).
pub struct Sim {
    started: Instant,
    first: usize,
    pods: Vec<PodSim>,
    pub served: Served,
}

impl Sim {
    pub fn new(first: usize, n: usize) -> Arc<Sim> {
        Arc::new(Sim {
            started: Instant::now(),
            first,
            pods: (0..n)
                .map(|_| PodSim {
                    mode: AtomicU8::new(HEALTHY),
                    counters: Mutex::new(Counters::default()),
                })
                .collect(),
            served: Served::default(),
        })
    }

    fn pod(&self, i: usize) -> Option<&PodSim> {
        self.pods.get(i.checked_sub(self.first)?)
    }

    pub fn set_mode(&self, i: usize, mode: u8) {
        if let Some(p) = self.pod(i) {
            // Bring the counters up to now under the old health first.
            let t = self.started.elapsed().as_secs_f64();
            advance(&mut lock(&p.counters), t, p.traffic_healthy());
            p.mode.store(mode, Ordering::Relaxed);
        }
    }

    pub fn mode(&self, i: usize) -> Option<u8> {
        self.pod(i).map(|p| p.mode.load(Ordering::Relaxed))
    }

    /// The body pod `i` serves now.
    pub fn body(&self, i: usize) -> String {
        let Some(p) = self.pod(i) else {
            return String::new();
        };
        let t = self.started.elapsed().as_secs_f64();
        let mut c = lock(&p.counters);
        advance(&mut c, t, p.traffic_healthy());
        c.scrapes += 1;
        render(i, t, &c)
    }

    /// Starts one listener per pod on `pod_ip(i):PORT`.
    pub async fn listen(self: &Arc<Sim>) -> Result<(), String> {
        for i in self.first..self.first + self.pods.len() {
            let addr = SocketAddr::from((pod_ip(i), PORT));
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("listening on {addr}: {e} (raise `ulimit -n`?)"))?;
            let app = Router::new()
                .route("/metrics", get(serve))
                .with_state((self.clone(), i));
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
        Ok(())
    }
}

/// The control endpoint of one simulator process, on 127.0.0.1:`port`:
/// `POST /health/{pod}/{mode}` sets a pod's mode (0 unhealthy, 1 healthy, 2 answers 500,
/// 3 hangs), `GET /health/{pod}` reads it, and
/// `GET /served` answers "podgate prometheus other" scrape counts.
pub async fn control(sim: Arc<Sim>, port: u16) -> Result<(), String> {
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::routing::post;
    async fn set(State(sim): State<Arc<Sim>>, Path((i, h)): Path<(usize, u8)>) -> StatusCode {
        if sim.pod(i).is_none() {
            return StatusCode::NOT_FOUND;
        }
        if h > HANG {
            return StatusCode::BAD_REQUEST;
        }
        sim.set_mode(i, h);
        StatusCode::NO_CONTENT
    }
    async fn get_health(State(sim): State<Arc<Sim>>, Path(i): Path<usize>) -> String {
        sim.mode(i).map(|m| m.to_string()).unwrap_or_default()
    }
    async fn served(State(sim): State<Arc<Sim>>) -> String {
        format!(
            "{} {} {}",
            sim.served.podgate.load(Ordering::Relaxed),
            sim.served.prometheus.load(Ordering::Relaxed),
            sim.served.other.load(Ordering::Relaxed)
        )
    }
    let app = Router::new()
        .route("/health/{i}/{h}", post(set))
        .route("/health/{i}", get(get_health))
        .route("/served", get(served))
        .with_state(sim);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("control endpoint {addr}: {e}"))?;
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("control endpoint {addr}: {e}"))
}

impl PodSim {
    fn traffic_healthy(&self) -> bool {
        self.mode.load(Ordering::Relaxed) != UNHEALTHY
    }
}

fn lock(m: &Mutex<Counters>) -> std::sync::MutexGuard<'_, Counters> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn serve(
    State((sim, i)): State<(Arc<Sim>, usize)>,
    headers: HeaderMap,
) -> axum::response::Response {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let counter = if agent.starts_with("podgate") {
        &sim.served.podgate
    } else if agent.starts_with("Prometheus") {
        &sim.served.prometheus
    } else {
        &sim.served.other
    };
    counter.fetch_add(1, Ordering::Relaxed);
    match sim.mode(i) {
        Some(ERROR) => {
            return (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "metrics unavailable\n",
            )
                .into_response();
        }
        Some(HANG) => tokio::time::sleep(Duration::from_secs(60)).await,
        _ => {}
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        sim.body(i),
    )
        .into_response()
}

fn advance(c: &mut Counters, t: f64, healthy: bool) {
    let dt = (t - c.at).max(0.0);
    c.at = t;
    let (error_share, slow_share) = if healthy { (0.002, 0.0) } else { (0.3, 0.3) };
    for h in 0..HANDLERS.len() {
        let n = RPS * dt * (1.0 + h as f64 * 0.25);
        c.errors[h] += n * error_share;
        c.ok[h] += n * (1.0 - error_share);
        // (first bucket index, share, typical seconds)
        let shares = [
            (1usize, 0.5 * (1.0 - slow_share), 0.008),
            (2, 0.3 * (1.0 - slow_share), 0.02),
            (3, 0.15 * (1.0 - slow_share), 0.04),
            (4, 0.05 * (1.0 - slow_share), 0.07),
            (6, slow_share * 0.6, 0.4),
            (7, slow_share * 0.4, 0.8),
        ];
        for (first, share, seconds) in shares {
            let count = n * share;
            for b in c.buckets[h].iter_mut().skip(first) {
                *b += count;
            }
            c.sum[h] += count * seconds;
        }
    }
}

fn render(i: usize, t: f64, c: &Counters) -> String {
    let mut o = String::with_capacity(24 * 1024);
    let up = 1_700_000_000.0 + i as f64;
    // Runtime metrics of a Go service, as client_golang exports them.
    let _ = writeln!(
        o,
        "# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.\n# TYPE go_gc_duration_seconds summary"
    );
    for (q, v) in [
        ("0", 2.1e-05),
        ("0.25", 4.2e-05),
        ("0.5", 6.0e-05),
        ("0.75", 9.1e-05),
        ("1", 0.0021),
    ] {
        let _ = writeln!(o, "go_gc_duration_seconds{{quantile=\"{q}\"}} {v:e}");
    }
    let gcs = (t / 3.0).floor() + 100.0;
    let _ = writeln!(
        o,
        "go_gc_duration_seconds_sum {:.6}\ngo_gc_duration_seconds_count {gcs}",
        gcs * 6.1e-05
    );
    let _ = writeln!(
        o,
        "# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\ngo_goroutines {}",
        40 + (c.scrapes % 7)
    );
    let _ = writeln!(
        o,
        "# HELP go_info Information about the Go environment.\n# TYPE go_info gauge\ngo_info{{version=\"go1.22.4\"}} 1"
    );
    for (name, help, kind, v) in [
        (
            "alloc_bytes",
            "Number of bytes allocated and still in use.",
            "gauge",
            4.2e6 + (t * 1000.0) % 1e6,
        ),
        (
            "alloc_bytes_total",
            "Total number of bytes allocated, even if freed.",
            "counter",
            1e9 + t * 2.5e5,
        ),
        (
            "buck_hash_sys_bytes",
            "Number of bytes used by the profiling bucket hash table.",
            "gauge",
            1.47e6,
        ),
        (
            "frees_total",
            "Total number of frees.",
            "counter",
            8e6 + t * 900.0,
        ),
        (
            "gc_sys_bytes",
            "Number of bytes used for garbage collection system metadata.",
            "gauge",
            5.3e6,
        ),
        (
            "heap_alloc_bytes",
            "Number of heap bytes allocated and still in use.",
            "gauge",
            4.2e6,
        ),
        (
            "heap_idle_bytes",
            "Number of heap bytes waiting to be used.",
            "gauge",
            3.1e6,
        ),
        (
            "heap_inuse_bytes",
            "Number of heap bytes that are in use.",
            "gauge",
            6.0e6,
        ),
        (
            "heap_objects",
            "Number of allocated objects.",
            "gauge",
            31_000.0,
        ),
        (
            "heap_released_bytes",
            "Number of heap bytes released to OS.",
            "gauge",
            2.0e6,
        ),
        (
            "heap_sys_bytes",
            "Number of heap bytes obtained from system.",
            "gauge",
            9.1e6,
        ),
        (
            "last_gc_time_seconds",
            "Number of seconds since 1970 of last garbage collection.",
            "gauge",
            up + t,
        ),
        (
            "lookups_total",
            "Total number of pointer lookups.",
            "counter",
            0.0,
        ),
        (
            "mallocs_total",
            "Total number of mallocs.",
            "counter",
            8.1e6 + t * 950.0,
        ),
        (
            "mcache_inuse_bytes",
            "Number of bytes in use by mcache structures.",
            "gauge",
            4800.0,
        ),
        (
            "mcache_sys_bytes",
            "Number of bytes used for mcache structures obtained from system.",
            "gauge",
            15600.0,
        ),
        (
            "mspan_inuse_bytes",
            "Number of bytes in use by mspan structures.",
            "gauge",
            98_000.0,
        ),
        (
            "mspan_sys_bytes",
            "Number of bytes used for mspan structures obtained from system.",
            "gauge",
            130_000.0,
        ),
        (
            "next_gc_bytes",
            "Number of heap bytes when next garbage collection will take place.",
            "gauge",
            8.4e6,
        ),
        (
            "other_sys_bytes",
            "Number of bytes used for other system allocations.",
            "gauge",
            1.2e6,
        ),
        (
            "stack_inuse_bytes",
            "Number of bytes in use by the stack allocator.",
            "gauge",
            1.1e6,
        ),
        (
            "stack_sys_bytes",
            "Number of bytes obtained from system for stack allocator.",
            "gauge",
            1.1e6,
        ),
        (
            "sys_bytes",
            "Number of bytes obtained from system.",
            "gauge",
            2.1e7,
        ),
    ] {
        let _ = writeln!(
            o,
            "# HELP go_memstats_{name} {help}\n# TYPE go_memstats_{name} {kind}\ngo_memstats_{name} {v}"
        );
    }
    let _ = writeln!(
        o,
        "# HELP go_threads Number of OS threads created.\n# TYPE go_threads gauge\ngo_threads 12"
    );
    for (name, help, kind, v) in [
        (
            "cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            "counter",
            t * 0.02 + 3.0,
        ),
        (
            "max_fds",
            "Maximum number of open file descriptors.",
            "gauge",
            1_048_576.0,
        ),
        (
            "open_fds",
            "Number of open file descriptors.",
            "gauge",
            17.0,
        ),
        (
            "resident_memory_bytes",
            "Resident memory size in bytes.",
            "gauge",
            3.4e7,
        ),
        (
            "start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            "gauge",
            up,
        ),
        (
            "virtual_memory_bytes",
            "Virtual memory size in bytes.",
            "gauge",
            1.3e9,
        ),
        (
            "virtual_memory_max_bytes",
            "Maximum amount of virtual memory available in bytes.",
            "gauge",
            1.8e19,
        ),
    ] {
        let _ = writeln!(
            o,
            "# HELP process_{name} {help}\n# TYPE process_{name} {kind}\nprocess_{name} {v}"
        );
    }
    // The service's own traffic.
    let _ = writeln!(
        o,
        "# HELP http_requests_total Requests served, by handler, method and status code.\n# TYPE http_requests_total counter"
    );
    for (h, handler) in HANDLERS.iter().enumerate() {
        let ok = c.ok[h].floor();
        let _ = writeln!(
            o,
            "http_requests_total{{handler=\"{handler}\",method=\"GET\",code=\"200\"}} {}",
            (ok * 0.9).floor()
        );
        let _ = writeln!(
            o,
            "http_requests_total{{handler=\"{handler}\",method=\"POST\",code=\"201\"}} {}",
            (ok * 0.1).floor()
        );
        let _ = writeln!(
            o,
            "http_requests_total{{handler=\"{handler}\",method=\"GET\",code=\"404\"}} {}",
            (ok * 0.001).floor()
        );
        let _ = writeln!(
            o,
            "http_requests_total{{handler=\"{handler}\",method=\"GET\",code=\"500\"}} {}",
            (c.errors[h] * 0.7).floor()
        );
        let _ = writeln!(
            o,
            "http_requests_total{{handler=\"{handler}\",method=\"GET\",code=\"503\"}} {}",
            (c.errors[h] * 0.3).floor()
        );
    }
    let _ = writeln!(
        o,
        "# HELP http_request_duration_seconds Request latency, by handler.\n# TYPE http_request_duration_seconds histogram"
    );
    for (h, handler) in HANDLERS.iter().enumerate() {
        for (b, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "http_request_duration_seconds_bucket{{handler=\"{handler}\",le=\"{le}\"}} {}",
                c.buckets[h][b].floor()
            );
        }
        let total = c.buckets[h][11].floor();
        let _ = writeln!(
            o,
            "http_request_duration_seconds_bucket{{handler=\"{handler}\",le=\"+Inf\"}} {total}\nhttp_request_duration_seconds_sum{{handler=\"{handler}\"}} {:.3}\nhttp_request_duration_seconds_count{{handler=\"{handler}\"}} {total}",
            c.sum[h]
        );
    }
    let _ = writeln!(
        o,
        "# HELP http_requests_in_flight Requests being served.\n# TYPE http_requests_in_flight gauge\nhttp_requests_in_flight {}",
        c.scrapes % 5
    );
    // Work queues and a database pool.
    let _ = writeln!(
        o,
        "# HELP work_queue_depth Items waiting.\n# TYPE work_queue_depth gauge"
    );
    let queues = ["emails", "exports", "imports", "indexing", "webhooks"];
    for (q, name) in queues.iter().enumerate() {
        let _ = writeln!(
            o,
            "work_queue_depth{{queue=\"{name}\"}} {}",
            (10.0 + 8.0 * ((t + q as f64) / 9.0).sin()).round()
        );
    }
    let _ = writeln!(
        o,
        "# HELP work_items_processed_total Items done.\n# TYPE work_items_processed_total counter"
    );
    for (q, name) in queues.iter().enumerate() {
        let _ = writeln!(
            o,
            "work_items_processed_total{{queue=\"{name}\"}} {}",
            (t * (3.0 + q as f64)).floor()
        );
    }
    let _ = writeln!(
        o,
        "# HELP work_item_retries_total Items retried.\n# TYPE work_item_retries_total counter"
    );
    for (q, name) in queues.iter().enumerate() {
        let _ = writeln!(
            o,
            "work_item_retries_total{{queue=\"{name}\"}} {}",
            (t * 0.01 * (1.0 + q as f64)).floor()
        );
    }
    for (name, help, v) in [
        ("db_pool_connections_open", "Open connections.", 20.0),
        ("db_pool_connections_in_use", "Connections in use.", 4.0),
        ("db_pool_connections_idle", "Idle connections.", 16.0),
        ("db_pool_max_connections", "Pool size.", 20.0),
    ] {
        let _ = writeln!(
            o,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{pool=\"primary\"}} {v}\n{name}{{pool=\"replica\"}} {v}"
        );
    }
    let _ = writeln!(
        o,
        "# HELP db_pool_wait_seconds_total Time spent waiting for a connection.\n# TYPE db_pool_wait_seconds_total counter\ndb_pool_wait_seconds_total{{pool=\"primary\"}} {:.3}\ndb_pool_wait_seconds_total{{pool=\"replica\"}} {:.3}",
        t * 0.004,
        t * 0.001
    );
    // Cache and consumer lag per partition.
    for (name, v) in [
        ("cache_hits_total", t * 80.0),
        ("cache_misses_total", t * 4.0),
        ("cache_evictions_total", t * 0.5),
    ] {
        let _ = writeln!(
            o,
            "# HELP {name} Cache activity.\n# TYPE {name} counter\n{name}{{cache=\"sessions\"}} {}\n{name}{{cache=\"catalog\"}} {}",
            v.floor(),
            (v * 0.3).floor()
        );
    }
    let _ = writeln!(
        o,
        "# HELP kafka_consumer_lag Messages behind the head, by topic and partition.\n# TYPE kafka_consumer_lag gauge"
    );
    for topic in ["orders", "payments"] {
        for p in 0..12 {
            let _ = writeln!(
                o,
                "kafka_consumer_lag{{topic=\"{topic}\",partition=\"{p}\"}} {}",
                ((t * 7.0 + p as f64 * 13.0) % 40.0).floor()
            );
        }
    }
    let _ = writeln!(
        o,
        "# HELP kafka_consumer_messages_total Messages consumed.\n# TYPE kafka_consumer_messages_total counter"
    );
    for topic in ["orders", "payments"] {
        for p in 0..12 {
            let _ = writeln!(
                o,
                "kafka_consumer_messages_total{{topic=\"{topic}\",partition=\"{p}\"}} {}",
                (t * (5.0 + p as f64)).floor()
            );
        }
    }
    let _ = writeln!(
        o,
        "# HELP app_build_info Build of the service.\n# TYPE app_build_info gauge\napp_build_info{{version=\"3.14.1\",revision=\"9f2c1e7\",branch=\"main\"}} 1"
    );
    let _ = writeln!(
        o,
        "# HELP app_feature_enabled Feature flags.\n# TYPE app_feature_enabled gauge"
    );
    for (f, flag) in [
        "new_checkout",
        "search_v2",
        "dark_mode",
        "bulk_export",
        "rate_limits",
        "async_emails",
    ]
    .iter()
    .enumerate()
    {
        let _ = writeln!(o, "app_feature_enabled{{feature=\"{flag}\"}} {}", f % 2);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_parses_has_about_200_series_and_health_shows_in_errors() {
        let sim = Sim::new(0, 2);
        let body = sim.body(0);
        let samples: Vec<_> = podgate::exposition::parse(&body, podgate::exposition::Format::Text)
            .collect::<Result<_, _>>()
            .expect("the simulator's body parses");
        assert!((180..=260).contains(&samples.len()), "{}", samples.len());
        sim.set_mode(1, UNHEALTHY);
        assert_eq!(
            (sim.mode(0), sim.mode(1), sim.mode(2)),
            (Some(HEALTHY), Some(UNHEALTHY), None)
        );
        assert_eq!(pod_ip(0), Ipv4Addr::new(127, 10, 0, 1));
        assert_eq!(pod_ip(250), Ipv4Addr::new(127, 10, 1, 1));
        assert_eq!(pod_ip(9999), Ipv4Addr::new(127, 10, 39, 250));
    }
}
