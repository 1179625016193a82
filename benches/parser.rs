//! Throughput of podgate's exposition parser against `prometheus-parse` 0.2.5 on every shared
//! fixture, on a large synthetic body and on any files named in `PODGATE_BENCH_FILES`; and of
//! podgate's protobuf decoder on the protobuf fixtures (`tests/fixtures/exposition/*.pb`) and
//! on two synthetic protobuf bodies (counters like the synthetic text body; native
//! histograms). Run with `cargo bench --bench parser`.
//!
//! Both parsers consume every sample they produce (values and labels are read and summed
//! through `black_box`). `prometheus-parse` drops or merges some series, so its sample count
//! is printed next to ours: the comparison is of speed, not of correctness.
//!
//! podgate is measured in two modes: `labels` reads every label of every sample, as a
//! consumer of the label set does; `series` reads the name, value and timestamp and only the
//! label count. The second is honest because the parser validates the whole label set before
//! it yields a sample and decodes label values only when they are read.
//!
//! Environment:
//! - `PODGATE_BENCH_FILES`: more bodies to measure, as colon-separated paths. A name ending
//!   in `.om` or `.openmetrics` is read as OpenMetrics, `.pb` as protobuf, any other as the
//!   text format. A body that a parser refuses is reported on stderr and skipped for that
//!   parser.
//! - `PODGATE_BENCH_PROTOBUF_DIR`: when set, the synthetic protobuf bodies are also written
//!   there (`synthetic-counters.pb`, `synthetic-histograms.pb`), for `benches/peers/textparse`
//!   to measure the same bytes.
//! - `PODGATE_BENCH_JSON`: when set, stdout carries one JSON object per line and measurement,
//!   `{"parser","mode","file","bytes","samples","mb_per_s","samples_per_s"}` (the fields of
//!   `benches/peers/textparse`), and the table goes to stderr. Nothing is written in a smoke
//!   run, which measures nothing.

use std::fmt::Write as _;
use std::fs;
use std::hint::black_box;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use podgate::exposition::protobuf::{self, HistogramOptions, ProtoValue};
use podgate::exposition::{Format, parse};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/exposition");
/// The protobuf bodies captured from client_golang.
const PROTOBUF_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/exposition");

/// Each measurement repeats the parse for at least this long.
const MEASURE: Duration = Duration::from_secs(1);

/// What one parse pass returns: (samples, checksum), or why the parser refused the body.
type Pass = Result<(usize, f64), String>;

/// Parses with podgate, reading every value and label.
fn podgate_labels(body: &str, format: Format) -> Pass {
    let mut samples = 0;
    let mut sum = 0.0;
    for item in parse(body, format) {
        let sample = item.map_err(|e| e.to_string())?;
        samples += 1;
        sum += sample.value;
        for (name, value) in sample.labels.iter() {
            sum += (name.len() + value.len()) as f64;
        }
    }
    Ok((samples, sum))
}

/// Parses with podgate, reading name, value, timestamp and label count but not the labels.
fn podgate_series(body: &str, format: Format) -> Pass {
    let mut samples = 0;
    let mut sum = 0.0;
    for item in parse(body, format) {
        let sample = item.map_err(|e| e.to_string())?;
        samples += 1;
        sum += sample.value + (sample.name.len() + sample.labels.len()) as f64;
        if let Some(ts) = sample.timestamp_ms {
            sum += ts as f64;
        }
    }
    Ok((samples, sum))
}

/// Decodes a protobuf body with podgate (as the daemon does: native histograms and classic
/// series), reading every value and, with `labels`, every label.
fn podgate_protobuf(body: &[u8], labels: bool) -> Pass {
    let decoded =
        protobuf::decode(body.to_vec(), HistogramOptions::PODGATE).map_err(|e| e.to_string())?;
    let mut samples = 0;
    let mut sum = 0.0;
    for sample in decoded.samples() {
        samples += 1;
        sum += match sample.value {
            ProtoValue::Float(v) => v,
            ProtoValue::Histogram(h) => h.count,
        } + sample.name.len() as f64;
        if let Some(ts) = sample.timestamp_ms {
            sum += ts as f64;
        }
        if labels {
            for (name, value) in sample.labels() {
                sum += (name.len() + value.len()) as f64;
            }
        } else {
            sum += sample.labels.len() as f64;
        }
    }
    Ok((samples, sum))
}

/// Parses with prometheus-parse, reading every value and label.
/// Histogram and summary series come back grouped; each bucket or quantile counts as one.
fn prometheus_parse(body: &str) -> Pass {
    use prometheus_parse::{Scrape, Value};
    let lines = body.lines().map(|line| Ok(line.to_string()));
    let scrape = Scrape::parse(lines).map_err(|e| e.to_string())?;
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
    Ok((samples, sum))
}

/// A parser in a mode; the table's columns, in order.
#[derive(Clone, Copy)]
enum Run {
    PodgateLabels,
    PodgateSeries,
    PrometheusParse,
}

const RUNS: [Run; 3] = [Run::PodgateLabels, Run::PodgateSeries, Run::PrometheusParse];

impl Run {
    fn parser(self) -> &'static str {
        match self {
            Run::PodgateLabels | Run::PodgateSeries => "podgate",
            Run::PrometheusParse => "prometheus-parse-0.2.5",
        }
    }

    fn mode(self) -> &'static str {
        match self {
            Run::PodgateSeries => "series",
            Run::PodgateLabels | Run::PrometheusParse => "labels",
        }
    }

    fn pass(self, body: &Body) -> Pass {
        match (&body.data, self) {
            (Data::Text(text, format), Run::PodgateLabels) => podgate_labels(text, *format),
            (Data::Text(text, format), Run::PodgateSeries) => podgate_series(text, *format),
            // prometheus-parse reads only the text format.
            (Data::Text(text, _), Run::PrometheusParse) => prometheus_parse(text),
            (Data::Protobuf(bytes), Run::PodgateLabels) => podgate_protobuf(bytes, true),
            (Data::Protobuf(bytes), Run::PodgateSeries) => podgate_protobuf(bytes, false),
            (Data::Protobuf(_), Run::PrometheusParse) => {
                Err("prometheus-parse reads no protobuf".to_string())
            }
        }
    }
}

/// One measurement of one parser on one body; the JSON line's fields.
#[derive(serde::Serialize)]
struct Measurement {
    parser: &'static str,
    mode: &'static str,
    file: String,
    bytes: usize,
    samples: usize,
    mb_per_s: f64,
    samples_per_s: f64,
}

/// Runs `f` repeatedly for at least [`MEASURE`]; returns the sample count of one run and
/// MB/s (10^6 bytes per second) and samples per second (both 0 in a smoke run), or the
/// parser's error on the first run.
fn measure(bytes: usize, mut f: impl FnMut() -> Pass) -> Result<(usize, f64, f64), String> {
    // Also warms up caches and the allocator.
    let (samples, _) = black_box(f())?;
    if !benchmarking() {
        // `cargo test --all-targets` runs this binary without `--bench`: one pass is enough
        // to show it works, and a test run must not spend seconds timing.
        return Ok((samples, 0.0, 0.0));
    }
    for _ in 0..3 {
        let _ = black_box(f());
    }
    let start = Instant::now();
    let mut runs: u64 = 0;
    while start.elapsed() < MEASURE {
        let _ = black_box(f());
        runs += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    let mb_per_s = (bytes as f64 * runs as f64) / seconds / 1e6;
    let samples_per_s = (samples as f64 * runs as f64) / seconds;
    Ok((samples, mb_per_s, samples_per_s))
}

/// `cargo bench` passes `--bench`; `cargo test` does not.
fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The format of a body file, by its name: `.om` and `.openmetrics` are OpenMetrics.
fn format_of(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("om" | "openmetrics") => Format::OpenMetrics,
        _ => Format::Text,
    }
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

/// A body to measure. A `required` body (the fixtures, the synthetic bodies) that podgate
/// refuses fails the run; any other refusal only skips that parser on that body.
struct Body {
    name: String,
    data: Data,
    required: bool,
}

enum Data {
    Text(String, Format),
    Protobuf(Vec<u8>),
}

impl Body {
    fn len(&self) -> usize {
        match &self.data {
            Data::Text(text, _) => text.len(),
            Data::Protobuf(bytes) => bytes.len(),
        }
    }
}

fn read_body(path: &Path, required: bool) -> Result<Body, String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let data = if path.extension().is_some_and(|e| e == "pb") {
        Data::Protobuf(fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?)
    } else {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Data::Text(text, format_of(path))
    };
    Ok(Body {
        name,
        data,
        required,
    })
}

/// The fixtures, the synthetic body and the files of `PODGATE_BENCH_FILES`.
fn bodies() -> Result<Vec<Body>, String> {
    let dir = Path::new(FIXTURES);
    let entries = fs::read_dir(dir).map_err(|e| {
        format!(
            "fixture directory {} is missing ({e}); check out the repository with shared/ beside it",
            dir.display()
        )
    })?;
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
    if paths.is_empty() {
        return Err(format!("no fixtures in {}", dir.display()));
    }
    let mut bodies = paths
        .iter()
        .map(|path| read_body(path, true))
        .collect::<Result<Vec<_>, _>>()?;
    bodies.push(Body {
        name: "synthetic 10,000 series".to_string(),
        data: Data::Text(synthetic_body(), Format::Text),
        required: true,
    });
    let mut protobuf_paths: Vec<_> = fs::read_dir(PROTOBUF_FIXTURES)
        .map_err(|e| format!("{PROTOBUF_FIXTURES}: {e}"))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pb"))
        .collect();
    protobuf_paths.sort();
    for path in &protobuf_paths {
        bodies.push(read_body(path, true)?);
    }
    let synthetic = [
        ("synthetic-counters.pb", synthetic_pb::counters()),
        ("synthetic-histograms.pb", synthetic_pb::histograms()),
    ];
    let out_dir = std::env::var_os("PODGATE_BENCH_PROTOBUF_DIR");
    for (name, bytes) in synthetic {
        if let Some(dir) = &out_dir {
            let path = Path::new(dir).join(name);
            fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        bodies.push(Body {
            name: name.to_string(),
            data: Data::Protobuf(bytes),
            required: true,
        });
    }
    if let Some(extra) = std::env::var_os("PODGATE_BENCH_FILES") {
        let extra = extra
            .into_string()
            .map_err(|_| "PODGATE_BENCH_FILES is not valid UTF-8".to_string())?;
        for path in extra.split(':').filter(|p| !p.is_empty()) {
            let body = read_body(Path::new(path), false)
                .map_err(|e| format!("PODGATE_BENCH_FILES: {e}"))?;
            bodies.push(body);
        }
    }
    Ok(bodies)
}

fn run() -> Result<(), String> {
    let bodies = bodies()?;
    let json = std::env::var_os("PODGATE_BENCH_JSON").is_some() && benchmarking();
    // With JSON on stdout, the table goes to stderr so that stdout stays one object a line.
    let mut table: Box<dyn std::io::Write> = if json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let mut stdout = std::io::stdout().lock();
    let io = |e: std::io::Error| format!("writing the results: {e}");

    if !benchmarking() {
        writeln!(
            table,
            "smoke run (each body parsed once); `cargo bench --bench parser` measures"
        )
        .map_err(io)?;
    }
    writeln!(
        table,
        "{:<30} {:>8} | {:>12} {:>11} {:>8} | {:>16} {:>8} | {:>8}",
        "body",
        "bytes",
        "podgate MB/s",
        "series MB/s",
        "samples",
        "prom-parse MB/s",
        "samples",
        "speed-up"
    )
    .map_err(io)?;
    for body in &bodies {
        let bytes = body.len();
        let mut cells = Vec::new();
        for run in RUNS {
            let (parser, mode) = (run.parser(), run.mode());
            match measure(bytes, || run.pass(body)) {
                Ok((samples, mb_per_s, samples_per_s)) => {
                    cells.push(Some((samples, mb_per_s)));
                    if json {
                        let m = Measurement {
                            parser,
                            mode,
                            file: body.name.clone(),
                            bytes,
                            samples,
                            mb_per_s,
                            samples_per_s,
                        };
                        let line = serde_json::to_string(&m).map_err(|e| e.to_string())?;
                        writeln!(stdout, "{line}").map_err(io)?;
                    }
                }
                Err(_) if matches!(body.data, Data::Protobuf(_)) && parser != "podgate" => {
                    cells.push(None);
                }
                Err(e) if body.required && parser == "podgate" => {
                    return Err(format!("podgate refused {}: {e}", body.name));
                }
                Err(e) => {
                    eprintln!("{}: skipped for {parser} ({mode}), refused: {e}", body.name);
                    cells.push(None);
                }
            }
        }
        let mb = |i: usize| -> String {
            cells
                .get(i)
                .copied()
                .flatten()
                .map_or("-".to_string(), |(_, mb)| format!("{mb:.1}"))
        };
        let count = |i: usize| -> String {
            cells
                .get(i)
                .copied()
                .flatten()
                .map_or("-".to_string(), |(n, _)| n.to_string())
        };
        let speed_up = match (
            cells.first().copied().flatten(),
            cells.get(2).copied().flatten(),
        ) {
            // A smoke run measures nothing: no ratio of zeros.
            (Some((_, ours)), Some((_, theirs))) if theirs > 0.0 => {
                format!("{:.1}x", ours / theirs)
            }
            _ => "-".to_string(),
        };
        writeln!(
            table,
            "{:<30} {:>8} | {:>12} {:>11} {:>8} | {:>16} {:>8} | {:>8}",
            body.name,
            bytes,
            mb(0),
            mb(1),
            count(0),
            mb(2),
            count(2),
            speed_up
        )
        .map_err(io)?;
    }
    Ok(())
}

/// Synthetic protobuf bodies, encoded with prost from the `io.prometheus.client` messages
/// they need.
mod synthetic_pb {
    use prost::Message;

    #[derive(Clone, PartialEq, Message)]
    struct MetricFamily {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(string, tag = "2")]
        help: String,
        #[prost(int32, tag = "3")]
        kind: i32,
        #[prost(message, repeated, tag = "4")]
        metric: Vec<Metric>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Metric {
        #[prost(message, repeated, tag = "1")]
        label: Vec<LabelPair>,
        #[prost(message, optional, tag = "3")]
        counter: Option<Counter>,
        #[prost(message, optional, tag = "7")]
        histogram: Option<Histogram>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct LabelPair {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(string, tag = "2")]
        value: String,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Counter {
        #[prost(double, tag = "1")]
        value: f64,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Histogram {
        #[prost(uint64, tag = "1")]
        sample_count: u64,
        #[prost(double, tag = "2")]
        sample_sum: f64,
        #[prost(sint32, tag = "5")]
        schema: i32,
        #[prost(double, tag = "6")]
        zero_threshold: f64,
        #[prost(uint64, tag = "7")]
        zero_count: u64,
        #[prost(message, repeated, tag = "12")]
        positive_span: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "13")]
        positive_delta: Vec<i64>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct BucketSpan {
        #[prost(sint32, tag = "1")]
        offset: i32,
        #[prost(uint32, tag = "2")]
        length: u32,
    }

    fn label(name: &str, value: String) -> LabelPair {
        LabelPair {
            name: name.to_string(),
            value,
        }
    }

    fn encode(families: &[MetricFamily]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in families {
            out.extend(f.encode_length_delimited_to_vec());
        }
        out
    }

    /// The series of the synthetic text body: 100 counter families of 100 series.
    pub fn counters() -> Vec<u8> {
        let families: Vec<MetricFamily> = (0..100)
            .map(|family| MetricFamily {
                name: format!("app_requests_{family}_total"),
                help: "Requests served by the app.".to_string(),
                kind: 0,
                metric: (0..100)
                    .map(|i| Metric {
                        label: vec![
                            label("code", [200, 201, 404, 500, 503][i % 5].to_string()),
                            label("method", ["GET", "POST", "PUT"][i % 3].to_string()),
                            label("path", format!("/api/v1/items/{i}")),
                            label("instance", format!("10.0.{family}.{i}:8080")),
                        ],
                        counter: Some(Counter {
                            value: (family * 1000 + i * 17) as f64,
                        }),
                        histogram: None,
                    })
                    .collect(),
            })
            .collect();
        encode(&families)
    }

    /// 10 families of 100 native histograms (schema 3, 40 buckets in two spans, two labels).
    pub fn histograms() -> Vec<u8> {
        let families: Vec<MetricFamily> = (0..10)
            .map(|family| MetricFamily {
                name: format!("request_duration_{family}_seconds"),
                help: "Request latency.".to_string(),
                kind: 4,
                metric: (0..100)
                    .map(|i| {
                        // Bucket counts 1 to 5, sent as deltas.
                        let counts: Vec<i64> = (0..40).map(|b| 1 + (b + i as i64) % 5).collect();
                        let deltas: Vec<i64> = counts
                            .iter()
                            .scan(0i64, |previous, &c| {
                                let d = c - *previous;
                                *previous = c;
                                Some(d)
                            })
                            .collect();
                        let count: i64 = counts.iter().sum();
                        Metric {
                            label: vec![
                                label("method", ["GET", "POST", "PUT"][i % 3].to_string()),
                                label("path", format!("/api/v1/items/{i}")),
                            ],
                            counter: None,
                            histogram: Some(Histogram {
                                sample_count: count as u64 + 3,
                                sample_sum: 12.5 * i as f64,
                                schema: 3,
                                zero_threshold: 1e-128,
                                zero_count: 3,
                                positive_span: vec![
                                    BucketSpan {
                                        offset: -40,
                                        length: 25,
                                    },
                                    BucketSpan {
                                        offset: 4,
                                        length: 15,
                                    },
                                ],
                                positive_delta: deltas,
                            }),
                        }
                    })
                    .collect(),
            })
            .collect();
        encode(&families)
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("parser bench: {e}");
        std::process::exit(1);
    }
}
