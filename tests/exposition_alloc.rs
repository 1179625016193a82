//! Parsing does not allocate per sample: a counting global allocator (in this test binary
//! only) shows that the number of allocations does not grow with the number of samples.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write;

use podgate::exposition::{Format, parse};

struct Counting;

thread_local! {
    // Per thread, so the test harness's own threads do not disturb the count.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialised thread-local without destructor, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// `series` escape-free samples with labels, metadata and comments, in `format`; with
/// `utf8`, metric names and some label names are UTF-8 names, quoted as Prometheus 3 writes
/// them (`{"http.requests.0_total","http.code"="200",...}`).
fn body(series: usize, format: Format, utf8: bool) -> String {
    let mut out = String::new();
    for family in 0..series.div_ceil(100) {
        let name = if utf8 {
            format!("\"http.requests.{family}_total\"")
        } else {
            format!("http_requests_{family}_total")
        };
        let _ = writeln!(out, "# HELP {name} Requests served.");
        let _ = writeln!(out, "# TYPE {name} counter");
        for i in 0..100.min(series - family * 100) {
            let (open, code) = if utf8 {
                (format!("{{{name},"), "\"http.code\"")
            } else {
                (format!("{name}{{"), "code")
            };
            let _ = write!(
                out,
                "{open}{code}=\"{}\",method=\"get\",path=\"/api/v{i}\",\
                 instance=\"10.0.{family}.{i}:8080\"}} {}.5",
                200 + i % 5,
                i * 7
            );
            if format == Format::OpenMetrics && i % 10 == 0 {
                let _ = write!(out, " 1700000000.123 # {{trace_id=\"t{i}\"}} 0.5");
            }
            out.push('\n');
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// Parses `body` consuming every sample, name, label and value; returns the number of
/// allocations made while doing it and the number of samples.
fn count_allocations(body: &str, format: Format) -> (usize, usize) {
    let before = allocations();
    let mut samples = 0;
    let mut checksum = 0.0;
    let mut parser = parse(body, format);
    while let Some(item) = parser.next() {
        let Ok(sample) = item else {
            panic!("synthetic body must parse");
        };
        samples += 1;
        checksum += sample.value + sample.name.len() as f64;
        for (name, value) in sample.labels.iter() {
            checksum += (name.len() + value.len()) as f64;
        }
        if let Some(code) = sample.labels.get("code") {
            checksum += code.len() as f64;
        }
        if let Some(code) = sample.labels.get("http.code") {
            checksum += code.len() as f64;
        }
        checksum += parser.metric_type(&sample.name) as u8 as f64;
    }
    let made = allocations() - before;
    std::hint::black_box(checksum);
    (made, samples)
}

#[test]
fn allocations_do_not_grow_with_the_number_of_samples() {
    for format in [Format::Text, Format::OpenMetrics] {
        for utf8 in [false, true] {
            let small = body(100, format, utf8);
            let large = body(10_000, format, utf8);
            let (small_allocs, small_samples) = count_allocations(&small, format);
            let (large_allocs, large_samples) = count_allocations(&large, format);
            assert_eq!(small_samples, 100);
            assert_eq!(large_samples, 10_000);
            // A constant handful (the reusable label-name buffer growing), independent of
            // size.
            assert!(
                large_allocs <= 8,
                "{format:?} (UTF-8 names: {utf8}): {large_allocs} allocations for 10,000 samples"
            );
            assert_eq!(
                small_allocs, large_allocs,
                "{format:?} (UTF-8 names: {utf8}): allocations grow with the number of samples"
            );
        }
    }
}

/// `series` histogram buckets and summary quantiles whose `le` and `quantile` values are
/// already in the OpenMetrics float form Prometheus 3 stores (as client_golang's OpenMetrics
/// output and the Python client write them), so reading them copies nothing.
fn float_label_body(series: usize, format: Format) -> String {
    const BOUNDS: [&str; 8] = [
        "0.005", "0.05", "0.25", "1.0", "2.5", "10.0", "1e+06", "+Inf",
    ];
    const QUANTILES: [&str; 2] = ["0.5", "0.99"];
    let mut out = String::new();
    let mut written = 0;
    for family in 0.. {
        let _ = writeln!(out, "# TYPE latency_{family}_seconds histogram");
        for (i, le) in BOUNDS.iter().enumerate().take(series - written) {
            let _ = writeln!(
                out,
                "latency_{family}_seconds_bucket{{code=\"200\",le=\"{le}\"}} {i}"
            );
        }
        written += BOUNDS.len().min(series - written);
        if written == series {
            break;
        }
        let _ = writeln!(out, "# TYPE rpc_{family}_seconds summary");
        for q in QUANTILES.iter().take(series - written) {
            let _ = writeln!(
                out,
                "rpc_{family}_seconds{{code=\"200\",quantile=\"{q}\"}} 0.1"
            );
        }
        written += QUANTILES.len().min(series - written);
        if written == series {
            break;
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

#[test]
fn le_and_quantile_values_already_in_float_form_are_not_copied() {
    for format in [Format::Text, Format::OpenMetrics] {
        let (small_allocs, small_samples) =
            count_allocations(&float_label_body(100, format), format);
        let (large_allocs, large_samples) =
            count_allocations(&float_label_body(10_000, format), format);
        assert_eq!((small_samples, large_samples), (100, 10_000));
        assert_eq!(
            small_allocs, large_allocs,
            "{format:?}: allocations grow with the number of samples"
        );
    }
    // A value Prometheus 3 rewrites (`le="1"` is stored as `le="1.0"`) is copied when read.
    assert_eq!(
        read_label("# TYPE h histogram\nh_bucket{le=\"1\"} 1\n", "le"),
        (1, Some("1.0".to_string()))
    );
}

/// Reads `label` of the one sample of the text body `body`: the allocations reading it made,
/// and its value.
fn read_label(body: &str, label: &str) -> (usize, Option<String>) {
    let sample = parse(body, Format::Text)
        .next()
        .and_then(Result::ok)
        .expect("one sample");
    let before = allocations();
    let value = sample.labels.get(label);
    let made = allocations() - before;
    (made, value.map(|v| v.into_owned()))
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let before = allocations();
    let v: Vec<u64> = std::hint::black_box((0..100).collect());
    assert!(allocations() > before);
    // An escaped value is copied when read: one allocation per read.
    assert_eq!(
        read_label("m{a=\"with \\\"escape\\\"\"} 1\n", "a"),
        (1, Some("with \"escape\"".to_string()))
    );
    drop(v);
}
