//! The body a pod of the fleet benchmark serves (`examples/bench/sim.rs` in the daemon's
//! crate), rebuilt here without its HTTP server: about 200 series of Go runtime and process
//! metrics, request counters by handler, method and code, a latency histogram by handler,
//! queues, a database pool, caches and consumer lag, counters advancing with time.

use std::fmt::Write as _;

const HANDLERS: [&str; 4] = ["/api/orders", "/api/users", "/api/items", "/api/search"];
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Requests per second per handler (the simulator's healthy traffic).
const RPS: f64 = 25.0;
const ERROR_SHARE: f64 = 0.002;
/// Share of requests per latency bucket (first bucket index, share, typical seconds).
const SHARES: [(usize, f64, f64); 4] = [
    (1, 0.5, 0.008),
    (2, 0.3, 0.02),
    (3, 0.15, 0.04),
    (4, 0.05, 0.07),
];

/// The body of pod `pod` at `t` seconds after it started.
pub fn render(pod: usize, t: f64) -> String {
    let mut o = String::with_capacity(24 * 1024);
    let up = 1_700_000_000.0 + pod as f64;
    let _ = writeln!(o, "# TYPE go_gc_duration_seconds summary");
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
        "# TYPE go_goroutines gauge\ngo_goroutines {}",
        40 + (t as u64 % 7)
    );
    let _ = writeln!(o, "# TYPE go_info gauge\ngo_info{{version=\"go1.22.4\"}} 1");
    // The simulator's 23 go_memstats_* series and 7 process_* series, same names and kinds.
    let memstats = [
        ("alloc_bytes", "gauge"),
        ("alloc_bytes_total", "counter"),
        ("buck_hash_sys_bytes", "gauge"),
        ("frees_total", "counter"),
        ("gc_sys_bytes", "gauge"),
        ("heap_alloc_bytes", "gauge"),
        ("heap_idle_bytes", "gauge"),
        ("heap_inuse_bytes", "gauge"),
        ("heap_objects", "gauge"),
        ("heap_released_bytes", "gauge"),
        ("heap_sys_bytes", "gauge"),
        ("last_gc_time_seconds", "gauge"),
        ("lookups_total", "counter"),
        ("mallocs_total", "counter"),
        ("mcache_inuse_bytes", "gauge"),
        ("mcache_sys_bytes", "gauge"),
        ("mspan_inuse_bytes", "gauge"),
        ("mspan_sys_bytes", "gauge"),
        ("next_gc_bytes", "gauge"),
        ("other_sys_bytes", "gauge"),
        ("stack_inuse_bytes", "gauge"),
        ("stack_sys_bytes", "gauge"),
        ("sys_bytes", "gauge"),
    ];
    for (i, (name, kind)) in memstats.iter().enumerate() {
        let v = 1e6 * (i + 1) as f64 + if *kind == "counter" { t * 950.0 } else { 0.0 };
        let _ = writeln!(
            o,
            "# HELP go_memstats_{name} Memory statistics.\n# TYPE go_memstats_{name} {kind}\ngo_memstats_{name} {v}"
        );
    }
    let _ = writeln!(o, "# TYPE go_threads gauge\ngo_threads 12");
    for (name, kind, v) in [
        ("cpu_seconds_total", "counter", t * 0.02 + 3.0),
        ("max_fds", "gauge", 1_048_576.0),
        ("open_fds", "gauge", 17.0),
        ("resident_memory_bytes", "gauge", 3.4e7),
        ("start_time_seconds", "gauge", up),
        ("virtual_memory_bytes", "gauge", 1.3e9),
        ("virtual_memory_max_bytes", "gauge", 1.8e19),
    ] {
        let _ = writeln!(o, "# TYPE process_{name} {kind}\nprocess_{name} {v}");
    }
    // The service's own traffic: what the bench rule reads.
    let _ = writeln!(
        o,
        "# HELP http_requests_total Requests served, by handler, method and status code.\n# TYPE http_requests_total counter"
    );
    for (h, handler) in HANDLERS.iter().enumerate() {
        let n = RPS * t * (1.0 + h as f64 * 0.25);
        let (ok, errors) = ((n * (1.0 - ERROR_SHARE)).floor(), n * ERROR_SHARE);
        for (method, code, v) in [
            ("GET", "200", ok * 0.9),
            ("POST", "201", ok * 0.1),
            ("GET", "404", ok * 0.001),
            ("GET", "500", errors * 0.7),
            ("GET", "503", errors * 0.3),
        ] {
            let _ = writeln!(
                o,
                "http_requests_total{{handler=\"{handler}\",method=\"{method}\",code=\"{code}\"}} {}",
                v.floor()
            );
        }
    }
    let _ = writeln!(
        o,
        "# HELP http_request_duration_seconds Request latency, by handler.\n# TYPE http_request_duration_seconds histogram"
    );
    for (h, handler) in HANDLERS.iter().enumerate() {
        let n = RPS * t * (1.0 + h as f64 * 0.25);
        let mut cumulative = [0.0f64; 12];
        let mut sum = 0.0;
        for (first, share, seconds) in SHARES {
            for c in cumulative.iter_mut().skip(first) {
                *c += n * share;
            }
            sum += n * share * seconds;
        }
        for (b, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "http_request_duration_seconds_bucket{{handler=\"{handler}\",le=\"{le}\"}} {}",
                cumulative[b].floor()
            );
        }
        let total = cumulative[11].floor();
        let _ = writeln!(
            o,
            "http_request_duration_seconds_bucket{{handler=\"{handler}\",le=\"+Inf\"}} {total}\nhttp_request_duration_seconds_sum{{handler=\"{handler}\"}} {sum:.3}\nhttp_request_duration_seconds_count{{handler=\"{handler}\"}} {total}"
        );
    }
    let _ = writeln!(
        o,
        "# TYPE http_requests_in_flight gauge\nhttp_requests_in_flight {}",
        t as u64 % 5
    );
    let queues = ["emails", "exports", "imports", "indexing", "webhooks"];
    for (name, kind) in [
        ("work_queue_depth", "gauge"),
        ("work_items_processed_total", "counter"),
        ("work_item_retries_total", "counter"),
    ] {
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for (q, queue) in queues.iter().enumerate() {
            let _ = writeln!(
                o,
                "{name}{{queue=\"{queue}\"}} {}",
                (t * (1.0 + q as f64)).floor()
            );
        }
    }
    for name in [
        "db_pool_connections_open",
        "db_pool_connections_in_use",
        "db_pool_connections_idle",
        "db_pool_max_connections",
    ] {
        let _ = writeln!(
            o,
            "# TYPE {name} gauge\n{name}{{pool=\"primary\"}} 20\n{name}{{pool=\"replica\"}} 20"
        );
    }
    let _ = writeln!(
        o,
        "# TYPE db_pool_wait_seconds_total counter\ndb_pool_wait_seconds_total{{pool=\"primary\"}} {:.3}\ndb_pool_wait_seconds_total{{pool=\"replica\"}} {:.3}",
        t * 0.004,
        t * 0.001
    );
    for (name, v) in [
        ("cache_hits_total", t * 80.0),
        ("cache_misses_total", t * 4.0),
        ("cache_evictions_total", t * 0.5),
    ] {
        let _ = writeln!(
            o,
            "# TYPE {name} counter\n{name}{{cache=\"sessions\"}} {}\n{name}{{cache=\"catalog\"}} {}",
            v.floor(),
            (v * 0.3).floor()
        );
    }
    for (name, kind) in [
        ("kafka_consumer_lag", "gauge"),
        ("kafka_consumer_messages_total", "counter"),
    ] {
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for topic in ["orders", "payments"] {
            for p in 0..12 {
                let _ = writeln!(
                    o,
                    "{name}{{topic=\"{topic}\",partition=\"{p}\"}} {}",
                    (t * (5.0 + p as f64)).floor()
                );
            }
        }
    }
    let _ = writeln!(
        o,
        "# TYPE app_build_info gauge\napp_build_info{{version=\"3.14.1\",revision=\"9f2c1e7\",branch=\"main\"}} 1"
    );
    let _ = writeln!(o, "# TYPE app_feature_enabled gauge");
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
