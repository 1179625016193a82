//! What the per-pod series store holds in memory, for the fleet benchmark's scrape rule:
//! builds N stores, feeds each the body a benchmark pod serves every 10 s until the rule's
//! longest range is full, and prints the heap bytes and allocations per pod, counted by a
//! global allocator. A measurement, not a test: it prints figures and asserts nothing.
//!
//! `cargo run --release -p podgate-core --example store_bytes [PODS] [SCRAPES]`

mod body;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use podgate_core::body::{Scraped, ingest};
use podgate_core::exposition::Format;
use podgate_core::query::{Interest, SeriesStore, StoreLimits, parse};

/// Bytes and blocks currently allocated, and the bytes glibc's malloc would hand out for
/// them (a 16-byte-aligned chunk with an 8-byte header, 32 bytes at least): an estimate of
/// what the allocations cost in a process, beside what was asked for.
static BYTES: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);
static CHUNK_BYTES: AtomicIsize = AtomicIsize::new(0);

fn chunk(size: usize) -> isize {
    (size.saturating_add(8 + 15) & !15).max(32) as isize
}

struct Counting;

fn record(size: usize, sign: isize) {
    BYTES.fetch_add(sign * size as isize, Ordering::Relaxed);
    BLOCKS.fetch_add(sign, Ordering::Relaxed);
    CHUNK_BYTES.fetch_add(sign * chunk(size), Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the contract; the
// counters are only updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            record(layout.size(), 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record(layout.size(), -1);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            record(layout.size(), 1);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller guarantees `new_size`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            record(layout.size(), -1);
            record(new_size, 1);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// (bytes, blocks, chunk bytes) allocated now.
fn heap() -> (isize, isize, isize) {
    (
        BYTES.load(Ordering::Relaxed),
        BLOCKS.load(Ordering::Relaxed),
        CHUNK_BYTES.load(Ordering::Relaxed),
    )
}

/// The scrape queries of the fleet benchmark's rule (`examples/bench/main.rs`).
const BENCH_QUERIES: [&str; 3] = [
    r#"sum(rate(http_requests_total{code=~"5.."}[30s]))"#,
    "sum(rate(http_requests_total[30s]))",
    "histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[30s]))",
];
const INTERVAL_MS: i64 = 10_000;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let pods: usize = args
        .next()
        .map_or(Ok(1000), |a| a.parse())
        .map_err(|e| format!("PODS: {e}"))?;
    let scrapes: usize = args
        .next()
        .map_or(Ok(8), |a| a.parse())
        .map_err(|e| format!("SCRAPES: {e}"))?;
    let queries = BENCH_QUERIES
        .iter()
        .map(|q| parse(q).map_err(|e| format!("{q}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let interest = Interest::new(&queries);
    let limits = StoreLimits::default();

    // The pods' records hold their stores; the vector is sized first so that only what the
    // stores allocate is counted.
    let mut stores: Vec<SeriesStore> = Vec::with_capacity(pods);
    let before = heap();
    for _ in 0..pods {
        stores.push(SeriesStore::new(interest.clone(), limits));
    }
    let empty = heap();
    let start_ms = 1_700_000_000_000i64;
    let mut samples = 0usize;
    for s in 0..scrapes {
        let now = start_ms + s as i64 * INTERVAL_MS;
        for (pod, store) in stores.iter_mut().enumerate() {
            let scraped = Scraped::Text {
                format: Format::Text,
                body: body::render(pod, 60.0 + (s as i64 * INTERVAL_MS) as f64 / 1000.0),
            };
            let stats =
                ingest(store, now, &scraped, 50_000).map_err(|e| format!("pod {pod}: {e}"))?;
            samples = stats.samples;
        }
    }
    let after = heap();
    let series: usize = stores.iter().map(SeriesStore::len).sum();
    let per = |d: isize| d as f64 / pods as f64;
    println!(
        "store_bytes: {pods} pods, {scrapes} scrapes every {} s, rule range 30 s",
        INTERVAL_MS / 1000
    );
    println!("  samples per body:                   {samples}");
    println!(
        "  series kept per pod:                {:.1}",
        series as f64 / pods as f64
    );
    println!(
        "  inline size of a SeriesStore:       {} bytes",
        std::mem::size_of::<SeriesStore>()
    );
    println!(
        "  empty store (its Interest), per pod: {:.0} bytes in {:.1} blocks",
        per(empty.0 - before.0),
        per(empty.1 - before.1)
    );
    println!(
        "  heap per pod, fed:                  {:.0} bytes in {:.1} blocks ({:.0} bytes as glibc chunks)",
        per(after.0 - before.0),
        per(after.1 - before.1),
        per(after.2 - before.2)
    );
    println!(
        "  heap per kept series:               {:.0} bytes ({:.0} as chunks)",
        (after.0 - empty.0) as f64 / series.max(1) as f64,
        (after.2 - empty.2) as f64 / series.max(1) as f64
    );
    drop(stores);
    Ok(())
}
