//! `podgate eval`: evaluate one rule once and show every variable, the expression and the
//! verdict. Writes nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::decision::Outcome;
use crate::evaluate::{RuleEvaluation, ScrapeInput, VarResult, evaluate_rule};
use crate::exposition;
use crate::query::{Interest, SeriesStore, StoreLimits};
use crate::rules::{self, Rule, VarSource};
use crate::source::scrape;

use super::samples::{InputFormat, read_file};
use super::{EXIT_FAIL, EXIT_INVALID, EXIT_OK, EXIT_USAGE, fail};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["metrics_url", "metrics_file"])))]
pub struct Args {
    /// The rule to evaluate.
    #[arg(long)]
    rule: String,
    /// The rules directory.
    #[arg(long, env = "PODGATE_RULES_DIR")]
    rules_dir: PathBuf,
    /// Scrape this URL as the pod's endpoint. When the rule uses rate() or increase(), it is
    /// scraped twice, one rule interval apart.
    #[arg(long)]
    metrics_url: Option<String>,
    /// Read the pod's endpoint body from this file; repeat for consecutive scrapes, one rule
    /// interval apart (rate() and increase() need two).
    #[arg(long)]
    metrics_file: Vec<PathBuf>,
    /// Give a variable's value (e.g. a promql: variable): NAME=NUMBER.
    #[arg(long = "set", value_name = "NAME=NUMBER")]
    set: Vec<String>,
}

pub fn run(args: Args) -> i32 {
    let set = match rules::load_dir(&args.rules_dir) {
        Ok(s) => s,
        Err(e) => return fail(EXIT_INVALID, e),
    };
    let Some(rule) = set.get(&args.rule).cloned() else {
        let names: Vec<&str> = set.rules.iter().map(|r| r.name.as_str()).collect();
        return fail(
            EXIT_USAGE,
            format!(
                "no rule {:?} in {} (rules: {})",
                args.rule,
                args.rules_dir.display(),
                names.join(", ")
            ),
        );
    };
    let mut given = BTreeMap::new();
    for s in &args.set {
        let parsed = s.split_once('=').and_then(|(k, v)| {
            v.trim()
                .parse::<f64>()
                .ok()
                .map(|v| (k.trim().to_string(), v))
        });
        match parsed {
            Some((k, v)) if rule.var(&k).is_some() => {
                given.insert(k, v);
            }
            Some((k, _)) => {
                return fail(
                    EXIT_USAGE,
                    format!("--set {k}: rule {} has no such variable", rule.name),
                );
            }
            None => return fail(EXIT_USAGE, format!("--set {s:?}: expected NAME=NUMBER")),
        }
    }
    let bodies = match collect_bodies(&args, &rule) {
        Ok(b) => b,
        Err(e) => return fail(EXIT_INVALID, e),
    };
    let queries = rule.vars.iter().filter_map(|v| match &v.source {
        VarSource::Scrape(q) => Some(q),
        VarSource::Promql(_) => None,
    });
    let mut store = SeriesStore::new(Interest::new(queries), StoreLimits::default());
    let step = i64::try_from(rule.interval.as_millis()).unwrap_or(i64::MAX);
    let mut now = 0i64;
    let mut scrape_error = None;
    for (i, (format, body)) in bodies.iter().enumerate() {
        now = step * i64::try_from(i).unwrap_or(0);
        if let Err(e) = store.ingest(now, exposition::parse(body, *format)) {
            scrape_error = Some(format!("scrape {}: {e}", i + 1));
            break;
        }
    }
    let input = match &scrape_error {
        Some(e) => ScrapeInput::Failed(e),
        None => ScrapeInput::Store(&store),
    };
    let mut promql = |v: &rules::Var| match given.get(&v.name) {
        Some(x) => VarResult::Value(*x),
        None => VarResult::NoData("not given: use --set NAME=NUMBER".into()),
    };
    let result = evaluate_rule(&rule, input, &mut promql, now);
    print_report(&rule, &result);
    match result.evaluation.outcome {
        Outcome::Pass => EXIT_OK,
        Outcome::Fail | Outcome::NoData => EXIT_FAIL,
        Outcome::Error => EXIT_INVALID,
    }
}

fn collect_bodies(args: &Args, rule: &Rule) -> Result<Vec<(exposition::Format, String)>, String> {
    if !args.metrics_file.is_empty() {
        return args
            .metrics_file
            .iter()
            .map(|p| read_file(p, InputFormat::Auto))
            .collect();
    }
    let Some(url) = &args.metrics_url else {
        return Ok(Vec::new());
    };
    let needs_history = rule.vars.iter().any(|v| match &v.source {
        VarSource::Scrape(q) => q.range_ms() > 0,
        VarSource::Promql(_) => false,
    });
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let timeout = rule.timeout.max(Duration::from_secs(1));
    let interval = rule.interval;
    let url = url.clone();
    super::block_on(async move {
        let mut out = Vec::new();
        let first = scrape::fetch(&client, &url, timeout, scrape::DEFAULT_BODY_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        out.push((first.format, first.body));
        if needs_history {
            eprintln!(
                "podgate: the rule uses rate()/increase(): scraping again in {}s",
                interval.as_secs()
            );
            tokio::time::sleep(interval).await;
            let second = scrape::fetch(&client, &url, timeout, scrape::DEFAULT_BODY_LIMIT)
                .await
                .map_err(|e| e.to_string())?;
            out.push((second.format, second.body));
        }
        Ok(out)
    })?
}

fn print_report(rule: &Rule, r: &RuleEvaluation) {
    println!("rule {} ({})", rule.name, rule.origin);
    let width = r.vars.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for v in &r.vars {
        println!(
            "  {:width$}  {:6}  {}  = {}",
            v.name,
            v.source,
            v.query,
            v.result,
            width = width
        );
    }
    println!("expr: {}", rule.expr_text);
    println!(
        "verdict: {} — {}",
        r.evaluation.outcome.as_str(),
        r.evaluation.detail
    );
}
