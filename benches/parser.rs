//! Throughput of podgate's exposition parser against `prometheus-parse` 0.2.5 on every shared
//! fixture and on a large synthetic body. Run with `cargo bench --bench parser`.
//!
//! Both parsers consume every sample they produce (values and labels are read and summed
//! through `black_box`). `prometheus-parse` drops or merges some series, so its sample count
//! is printed next to ours: the comparison is of speed, not of correctness.

use std::fmt::Write as _;
use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use podgate::exposition::{Format, parse};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/exposition");

/// Each measurement repeats the parse for at least this long.
const MEASURE: Duration = Duration::from_secs(1);

/// Parses with podgate, reading every value and label; returns (samples, checksum).
fn podgate_parse(body: &str, format: Format) -> (usize, f64) {
    let mut samples = 0;
    let mut sum = 0.0;
    for item in parse(body, format) {
        match item {
            Ok(sample) => {
                samples += 1;
                sum += sample.value;
                for (name, value) in sample.labels.iter() {
                    sum += (name.len() + value.len()) as f64;
                }
            }
            Err(e) => panic!("podgate refused a benchmark body: {e}"),
        }
    }
    (samples, sum)
}

/// Parses with prometheus-parse, reading every value and label; returns (samples, checksum).
/// Histogram and summary series come back grouped; each bucket or quantile counts as one.
fn prometheus_parse(body: &str) -> (usize, f64) {
    use prometheus_parse::{Scrape, Value};
    let lines = body.lines().map(|line| Ok(line.to_string()));
    let scrape = match Scrape::parse(lines) {
        Ok(scrape) => scrape,
        Err(e) => panic!("prometheus-parse failed: {e}"),
    };
    let mut samples = 0;
    let mut sum = 0.0;
    for sample in &scrape.samples {
        for (name, value) in sample.labels.iter() {
            sum += (name.len() + value.len()) as f64;
        }
        match &sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => {
                samples += 1;
                sum += v;
            }
            Value::Histogram(buckets) => {
                samples += buckets.len();
                sum += buckets.iter().map(|b| b.count + b.less_than).sum::<f64>();
            }
            Value::Summary(quantiles) => {
                samples += quantiles.len();
                sum += quantiles.iter().map(|q| q.count + q.quantile).sum::<f64>();
            }
        }
    }
    (samples, sum)
}

/// Runs `f` repeatedly for at least [`MEASURE`]; returns MB/s (10^6 bytes per second) and
/// the sample count of one run.
fn measure(bytes: usize, mut f: impl FnMut() -> (usize, f64)) -> (f64, usize) {
    // Warm up caches and the allocator.
    let (samples, _) = black_box(f());
    if !benchmarking() {
        // `cargo test --all-targets` runs this binary without `--bench`: one pass is enough
        // to show it works, and a test run must not spend seconds timing.
        return (0.0, samples);
    }
    for _ in 0..3 {
        black_box(f());
    }
    let start = Instant::now();
    let mut runs: u64 = 0;
    while start.elapsed() < MEASURE {
        black_box(f());
        runs += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    let mb_per_s = (bytes as f64 * runs as f64) / seconds / 1e6;
    (mb_per_s, samples)
}

/// `cargo bench` passes `--bench`; `cargo test` does not.
fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// 10,000 series in 100 families with four labels each, metadata and a histogram share.
fn synthetic_body() -> String {
    let mut out = String::new();
    for family in 0..100 {
        let _ = writeln!(
            out,
            "# HELP app_requests_{family}_total Requests served by the app."
        );
        let _ = writeln!(out, "# TYPE app_requests_{family}_total counter");
        for i in 0..100 {
            let _ = writeln!(
                out,
                "app_requests_{family}_total{{code=\"{}\",method=\"{}\",path=\"/api/v1/items/{i}\",\
                 instance=\"10.0.{family}.{i}:8080\"}} {}",
                [200, 201, 404, 500, 503][i % 5],
                ["GET", "POST", "PUT"][i % 3],
                family * 1000 + i * 17
            );
        }
    }
    out
}

fn main() {
    let dir = Path::new(FIXTURES);
    let mut bodies: Vec<(String, String, Format)> = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => panic!(
            "fixture directory {} is missing ({e}); check out the repository with shared/ beside it",
            dir.display()
        ),
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("prom" | "openmetrics")
            )
        })
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
    for path in paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let body = match fs::read_to_string(&path) {
            Ok(body) => body,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let format = if name.ends_with(".openmetrics") {
            Format::OpenMetrics
        } else {
            Format::Text
        };
        bodies.push((name, body, format));
    }
    bodies.push((
        "synthetic 10,000 series".to_string(),
        synthetic_body(),
        Format::Text,
    ));

    if !benchmarking() {
        println!("smoke run (each body parsed once); `cargo bench --bench parser` measures");
    }
    println!(
        "{:<26} {:>8} | {:>12} {:>8} | {:>16} {:>8} | {:>8}",
        "body", "bytes", "podgate MB/s", "samples", "prom-parse MB/s", "samples", "speed-up"
    );
    for (name, body, format) in &bodies {
        let (ours, our_samples) = measure(body.len(), || podgate_parse(body, *format));
        let (theirs, their_samples) = measure(body.len(), || prometheus_parse(body));
        println!(
            "{:<26} {:>8} | {:>12.1} {:>8} | {:>16.1} {:>8} | {:>7.1}x",
            name,
            body.len(),
            ours,
            our_samples,
            theirs,
            their_samples,
            ours / theirs
        );
    }
}
