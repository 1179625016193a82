//! Allocation counts for the hot paths: ingesting a scrape of known series and evaluating a
//! query must not allocate once the store has reached its steady size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use super::*;

/// Forwards to the system allocator and counts allocations made by the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the contract.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from `System` with `layout`; the caller guarantees `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

type S<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

#[test]
fn steady_state_ingest_and_eval_do_not_allocate() {
    let query = parse("sum(rate(http_requests_total{code=~\"5..\"}[1m]))").unwrap();
    let mut store = SeriesStore::new(Interest::new([&query]), StoreLimits::default());
    let scrape = |store: &mut SeriesStore, i: i64| {
        let v = i as f64;
        let samples: [S<'_>; 4] = [
            (
                "http_requests_total",
                &[("code", "200"), ("path", "/")],
                v * 10.0,
            ),
            ("http_requests_total", &[("path", "/"), ("code", "500")], v),
            // Not read by any query: skipped.
            ("process_cpu_seconds_total", &[], v),
            ("go_goroutines", &[("a", "b")], v),
        ];
        let stats = store.ingest_samples(i * 10_000, samples).unwrap();
        assert_eq!(stats.kept, 2);
    };
    // Warm up until retention drops as many points as each scrape adds.
    for i in 0..30 {
        scrape(&mut store, i);
    }
    let ingest = allocations_during(|| {
        for i in 30..40 {
            scrape(&mut store, i);
        }
    });
    assert_eq!(ingest, 0, "allocations while ingesting known series");
    // The first evaluation on a thread sets up the regex engine's scratch space.
    query.eval(&store, 39 * 10_000).unwrap();
    let mut value = QueryValue::Number(f64::NAN);
    let eval = allocations_during(|| {
        value = query.eval(&store, 39 * 10_000).unwrap();
    });
    assert_eq!(eval, 0, "allocations while evaluating");
    assert!(
        matches!(value, QueryValue::Number(v) if v > 0.0),
        "{value:?}"
    );
}

#[test]
fn a_ratio_of_sums_evaluates_without_allocating() {
    let ratio = parse("sum(rate(errors_total[1m])) / sum(rate(requests_total[1m]))").unwrap();
    let mut store = SeriesStore::new(Interest::new([&ratio]), StoreLimits::default());
    for i in 0..30 {
        let v = i as f64;
        let samples: [S<'_>; 3] = [
            ("errors_total", &[("path", "/")], v),
            ("requests_total", &[("path", "/")], v * 100.0),
            ("requests_total", &[("path", "/b")], v * 100.0),
        ];
        store.ingest_samples(i * 10_000, samples).unwrap();
    }
    ratio.eval(&store, 29 * 10_000).unwrap();
    let mut value = QueryValue::Number(f64::NAN);
    let eval = allocations_during(|| {
        value = ratio.eval(&store, 29 * 10_000).unwrap();
    });
    assert_eq!(eval, 0, "allocations while evaluating a ratio");
    assert!(
        matches!(value, QueryValue::Number(v) if (v - 0.005).abs() < 1e-12),
        "{value:?}"
    );
}

#[test]
fn a_stored_native_histogram_is_read_without_copying() {
    use crate::histogram::notation::parse_literal;
    let query = parse("histogram_sum(latency) / histogram_count(latency)").unwrap();
    let mut store = SeriesStore::new(Interest::new([&query]), StoreLimits::default());
    let h = parse_literal("{{schema:3 count:4 sum:2 z_bucket:1 buckets:[1 2]}}").unwrap();
    for i in 0..3 {
        let samples = [("latency", &[("path", "/")][..], SampleValue::Histogram(&h))];
        store.ingest_samples(i * 10_000, samples).unwrap();
    }
    query.eval(&store, 20_000).unwrap();
    let mut value = QueryValue::Number(f64::NAN);
    let eval = allocations_during(|| {
        value = query.eval(&store, 20_000).unwrap();
    });
    assert_eq!(eval, 0, "allocations while reading a stored histogram");
    assert_eq!(value, QueryValue::Number(0.5));
}
