//! BENCHMARKS.md and BENCHMARKS.json from the result files of one `scripts/bench` run.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::{Value, json};

#[derive(Args)]
pub struct ReportArgs {
    /// Fleet result files (`bench fleet --out`).
    #[arg(long = "fleet")]
    fleet: Vec<PathBuf>,
    /// Parser result files: one JSON object per line (benches/parser.rs, the Go peer).
    #[arg(long = "parser")]
    parser: Vec<PathBuf>,
    /// Reload result files: one JSON object per line (benches/reload.rs).
    #[arg(long = "reload")]
    reload: Vec<PathBuf>,
    /// The command that produced the figures.
    #[arg(long)]
    command: String,
    /// Machine description lines (`key: value`).
    #[arg(long = "machine")]
    machine: Vec<String>,
    /// Output directory for BENCHMARKS.md and BENCHMARKS.json.
    #[arg(long)]
    out_dir: PathBuf,
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every JSON object of files holding one per line.
fn read_lines(paths: &[PathBuf]) -> Result<Vec<Value>, String> {
    let mut all = Vec::new();
    for p in paths {
        for line in read(p)?.lines().filter(|l| !l.trim().is_empty()) {
            all.push(serde_json::from_str(line).map_err(|e| format!("{}: {e}", p.display()))?);
        }
    }
    Ok(all)
}

fn f(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "n/a".to_string(),
    }
}

fn mib(v: &Value) -> String {
    match v.as_f64() {
        Some(x) => format!("{:.1} MiB", x / 1024.0 / 1024.0),
        None => "n/a".to_string(),
    }
}

fn pass(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

pub fn run(a: ReportArgs) -> Result<(), String> {
    let mut fleets = Vec::new();
    for p in &a.fleet {
        let v: Value =
            serde_json::from_str(&read(p)?).map_err(|e| format!("{}: {e}", p.display()))?;
        fleets.push(v);
    }
    fleets.sort_by_key(|v| v["pods"].as_u64().unwrap_or(0));
    let parser = read_lines(&a.parser)?;
    let reload = read_lines(&a.reload)?;
    let date = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string();
    let machine: Vec<(String, String)> = a
        .machine
        .iter()
        .map(|l| match l.split_once(':') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();

    let mut md = String::new();
    let _ = writeln!(md, "# podgate benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `scripts/bench` (see docs/scaling.md for what each figure means and the \
         model built on them). Figures are from one run on the machine below; rerun the command \
         to reproduce them.\n"
    );
    let _ = writeln!(md, "- Date: {date}");
    let _ = writeln!(md, "- Command: `{}`", a.command.trim());
    for (k, v) in &machine {
        let _ = writeln!(md, "- {k}: {v}");
    }

    if !fleets.is_empty() {
        let _ = writeln!(md, "\n## Fleet\n");
        let _ = writeln!(
            md,
            "Interval {} s, one gate per pod, the scrape rule of `examples/bench/main.rs` \
             (error ratio and p99 latency from `rate()` over 30 s), failureThreshold {}.\n",
            fleets[0]["interval_s"], fleets[0]["failure_threshold"]
        );
        let mut head = String::from("| figure |");
        let mut rule = String::from("|---|");
        for v in &fleets {
            let _ = write!(head, " {} pods |", v["pods"]);
            rule.push_str("---|");
        }
        let _ = writeln!(md, "{head}\n{rule}");
        type Row = (&'static str, fn(&Value) -> String);
        let rows: Vec<Row> = vec![
            ("pods created and started (s)", |v| f(&v["setup_s"], 1)),
            ("podgate: every gate True after start (s)", |v| {
                f(&v["podgate_converge_s"], 1)
            }),
            ("podgate: evaluations / s", |v| {
                f(&v["podgate"]["evaluations_per_s"], 1)
            }),
            ("podgate: CPU s per 1,000 evaluations", |v| {
                f(&v["podgate"]["cpu_s_per_1000_evaluations"], 4)
            }),
            ("podgate: share of one core", |v| {
                f(&v["podgate"]["cpu_share_of_one_core"], 3)
            }),
            ("podgate: peak RSS", |v| {
                mib(&v["podgate"]["rss_bytes_peak"])
            }),
            ("podgate: API writes in the steady window", |v| {
                f(&v["podgate"]["steady_writes"], 0)
            }),
            ("podgate: writes per gate transition", |v| {
                f(&v["transitions"]["writes_per_transition"], 2)
            }),
            ("new pod, ContainersReady → gate True, p50 (ms)", |v| {
                f(&v["new_pod_latency"]["p50_ms"], 1)
            }),
            ("new pod, ContainersReady → gate True, p99 (ms)", |v| {
                f(&v["new_pod_latency"]["p99_ms"], 1)
            }),
            ("metric flip → gate False, p50 (ms)", |v| {
                f(&v["flip_latency"]["p50_ms"], 0)
            }),
            ("metric flip → gate False, p99 (ms)", |v| {
                f(&v["flip_latency"]["p99_ms"], 0)
            }),
            ("flip p50 / (interval × failureThreshold)", |v| {
                f(&v["flip_latency"]["p50_relative"], 2)
            }),
            ("flip p99 / (interval × failureThreshold)", |v| {
                f(&v["flip_latency"]["p99_relative"], 2)
            }),
            ("podgate: exit on SIGTERM (ms)", |v| {
                f(&v["podgate"]["sigterm_exit_ms"], 0)
            }),
            ("Prometheus: scrapes / s", |v| {
                f(&v["prometheus"]["scrapes_per_s"], 1)
            }),
            ("Prometheus: CPU s per 1,000 scrapes", |v| {
                f(&v["prometheus"]["cpu_s_per_1000_scrapes"], 4)
            }),
            ("Prometheus: share of one core", |v| {
                f(&v["prometheus"]["cpu_share_of_one_core"], 3)
            }),
            ("Prometheus: peak RSS", |v| {
                mib(&v["prometheus"]["rss_bytes_peak"])
            }),
            (
                "**podgate CPU per evaluation / Prometheus CPU per scrape**",
                |v| {
                    f(
                        &v["ratio"]["cpu_per_evaluation_vs_prometheus_cpu_per_scrape"],
                        3,
                    )
                },
            ),
            ("podgate peak RSS / Prometheus peak RSS", |v| {
                f(&v["ratio"]["rss_peak_vs_prometheus"], 3)
            }),
            ("batched PromQL: queries per interval", |v| {
                f(&v["batched_promql"]["queries_per_interval"], 2)
            }),
            ("batched PromQL: CPU s per 1,000 evaluations", |v| {
                f(&v["batched_promql"]["cpu_s_per_1000_evaluations"], 4)
            }),
            ("batched PromQL: peak RSS", |v| {
                mib(&v["batched_promql"]["rss_bytes_peak"])
            }),
        ];
        for (label, get) in rows {
            let mut line = format!("| {label} |");
            for v in &fleets {
                let _ = write!(line, " {} |", get(v));
            }
            let _ = writeln!(md, "{line}");
        }

        let _ = writeln!(md, "\n### Targets\n");
        let _ = writeln!(md, "| target | figure | result |\n|---|---|---|");
        for v in &fleets {
            let n = &v["pods"];
            let ratio = v["ratio"]["cpu_per_evaluation_vs_prometheus_cpu_per_scrape"]
                .as_f64()
                .unwrap_or(f64::NAN);
            let _ = writeln!(
                md,
                "| {n} pods: CPU per evaluation ≤ 25% of Prometheus's per scrape | {:.1}% | {} |",
                ratio * 100.0,
                pass(ratio <= 0.25)
            );
            let writes = v["podgate"]["steady_writes"].as_f64().unwrap_or(f64::NAN);
            let _ = writeln!(
                md,
                "| {n} pods: 0 steady-state writes | {writes} | {} |",
                pass(writes == 0.0)
            );
            let wpt = v["transitions"]["writes_per_transition"]
                .as_f64()
                .unwrap_or(f64::NAN);
            let _ = writeln!(
                md,
                "| {n} pods: 1 write per transition | {wpt:.2} | {} |",
                pass((wpt - 1.0).abs() < 1e-9)
            );
            let q = v["batched_promql"]["queries_per_interval"]
                .as_f64()
                .unwrap_or(f64::NAN);
            let _ = writeln!(
                md,
                "| {n} pods: one batched query per rule per interval | {q:.2} | {} |",
                pass((q - 1.0).abs() <= 0.15)
            );
            if v["pods"].as_u64() == Some(10_000) {
                let rss = v["podgate"]["rss_bytes_peak"].as_f64().unwrap_or(f64::NAN);
                let _ = writeln!(
                    md,
                    "| 10,000 pods: RSS < 128 MiB | {} | {} |",
                    mib(&v["podgate"]["rss_bytes_peak"]),
                    pass(rss < 128.0 * 1024.0 * 1024.0)
                );
                let p99 = v["new_pod_latency"]["p99_ms"].as_f64().unwrap_or(f64::NAN);
                let _ = writeln!(
                    md,
                    "| 10,000 pods: new-pod gate latency p99 < 250 ms | {p99:.1} ms | {} |",
                    pass(p99 < 250.0)
                );
            }
        }
    }

    if !parser.is_empty() {
        let _ = writeln!(md, "\n## Parser throughput (MB/s)\n");
        let mut files: Vec<String> = parser
            .iter()
            .filter_map(|v| v["file"].as_str().map(str::to_string))
            .collect();
        files.sort();
        files.dedup();
        let mut columns: Vec<String> = parser
            .iter()
            .map(|v| {
                format!(
                    "{} ({})",
                    v["parser"].as_str().unwrap_or("?"),
                    v["mode"].as_str().unwrap_or("?")
                )
            })
            .collect();
        columns.sort();
        columns.dedup();
        let mut head = String::from("| body | bytes |");
        let mut rule = String::from("|---|---|");
        for c in &columns {
            let _ = write!(head, " {c} |");
            rule.push_str("---|");
        }
        let _ = writeln!(md, "{head}\n{rule}");
        for file in &files {
            let bytes = parser
                .iter()
                .find(|v| v["file"].as_str() == Some(file))
                .map(|v| v["bytes"].to_string())
                .unwrap_or_default();
            let mut line = format!("| {file} | {bytes} |");
            for c in &columns {
                let cell = parser
                    .iter()
                    .find(|v| {
                        v["file"].as_str() == Some(file)
                            && format!(
                                "{} ({})",
                                v["parser"].as_str().unwrap_or("?"),
                                v["mode"].as_str().unwrap_or("?")
                            ) == *c
                    })
                    .map(|v| f(&v["mb_per_s"], 1))
                    .unwrap_or_else(|| "–".to_string());
                let _ = write!(line, " {cell} |");
            }
            let _ = writeln!(md, "{line}");
        }
    }

    if !parser.is_empty() {
        // Per body, podgate against each peer, in the mode both offer.
        let speed = |name: &str, mode: &str, file: &str| {
            parser
                .iter()
                .find(|v| {
                    v["parser"].as_str() == Some(name)
                        && v["mode"].as_str() == Some(mode)
                        && v["file"].as_str() == Some(file)
                })
                .and_then(|v| v["mb_per_s"].as_f64())
        };
        let mut files: Vec<&str> = parser.iter().filter_map(|v| v["file"].as_str()).collect();
        files.sort();
        files.dedup();
        let mut min_pp = f64::INFINITY;
        let mut min_go = f64::INFINITY;
        let mut min_go_series = f64::INFINITY;
        for file in files {
            let ours = speed("podgate", "labels", file);
            if let (Some(o), Some(p)) = (ours, speed("prometheus-parse-0.2.5", "labels", file)) {
                min_pp = min_pp.min(o / p);
            }
            if let (Some(o), Some(g)) = (ours, speed("prometheus-go-textparse", "labels", file)) {
                min_go = min_go.min(o / g);
            }
            if let (Some(o), Some(g)) = (
                speed("podgate", "series", file),
                speed("prometheus-go-textparse", "series", file),
            ) {
                min_go_series = min_go_series.min(o / g);
            }
        }
        let _ = writeln!(md, "\n### Parser targets (the slowest body decides)\n");
        let _ = writeln!(md, "| target | figure | result |\n|---|---|---|");
        let _ = writeln!(
            md,
            "| at least 3× prometheus-parse | {min_pp:.1}× | {} |",
            pass(min_pp >= 3.0)
        );
        let _ = writeln!(
            md,
            "| faster than Prometheus's Go parser, labels read | {min_go:.1}× | {} |",
            pass(min_go > 1.0)
        );
        let _ = writeln!(
            md,
            "| faster than Prometheus's Go parser, series only | {min_go_series:.1}× | {} |",
            pass(min_go_series > 1.0)
        );
    }

    if !reload.is_empty() {
        let _ = writeln!(
            md,
            "\n## What a reload costs the controller loop\n\n\
             `cargo bench --bench reload`: a rule set put in force on the loop's state of N pods \
             (benches/reload.rs); reading and validating it runs on a blocking thread, off the \
             loop. Median and range of the repeats.\n"
        );
        let _ = writeln!(md, "| measure | pods | rules | median | range |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for v in &reload {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} s | {}–{} s |",
                v["measure"].as_str().unwrap_or("?"),
                v["pods"],
                v["rules"],
                f(&v["median_s"], 3),
                f(&v["min_s"], 3),
                f(&v["max_s"], 3),
            );
        }
    }

    let machine_json: serde_json::Map<String, Value> = machine
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let all = json!({
        "date": date,
        "command": a.command,
        "machine": machine_json,
        "fleet": fleets,
        "parser": parser,
        "reload": reload,
    });
    std::fs::create_dir_all(&a.out_dir).map_err(|e| format!("{}: {e}", a.out_dir.display()))?;
    let md_path = a.out_dir.join("BENCHMARKS.md");
    let json_path = a.out_dir.join("BENCHMARKS.json");
    std::fs::write(&md_path, md).map_err(|e| format!("{}: {e}", md_path.display()))?;
    let text = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    eprintln!(
        "bench: wrote {} and {}",
        md_path.display(),
        json_path.display()
    );
    Ok(())
}
