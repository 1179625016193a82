//! podgate and a real Prometheus 3 scrape the same live client_golang endpoint with native
//! histograms (`support::NativeEndpoint`), and a rule over native histograms (and classic
//! buckets next to them) gives the numbers, and so the verdict, that Prometheus computes
//! from its own scrapes.

use crate::support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use podgate::body;
use podgate::decision::Outcome;
use podgate::evaluate::{ScrapeInput, VarResult, evaluate_rule};
use podgate::query::{Interest, SeriesStore, StoreLimits};
use podgate::source::scrape;
use support::{NativeEndpoint, Prometheus, wait_for};

/// Prometheus 3 reading native histograms (and the classic buckets of the histograms that
/// have both, as podgate keeps them) over the protobuf format, every second.
fn prometheus_config(target: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
         scrape_configs:\n  - job_name: native\n    honor_labels: true\n    \
         scrape_protocols: [PrometheusProto]\n    scrape_native_histograms: true\n    \
         always_scrape_classic_histograms: true\n    \
         static_configs:\n      - targets: ['{target}']\n"
    )
}

/// The rule: latency from native histograms, a classic histogram's quantile, a UTF-8 name.
const RULE: &str = r#"rules:
  - name: native
    conditionType: example.com/native
    interval: 10s
    vars:
      p90:      {scrape: 'histogram_quantile(0.9, sum(rate(request_duration_seconds[1m])))'}
      slow:     {scrape: '1 - histogram_fraction(0, 0.25, sum(rate(request_duration_seconds[1m])))'}
      requests: {scrape: 'histogram_count(sum(request_duration_seconds))'}
      mean:     {scrape: 'histogram_avg(sum(request_duration_seconds))'}
      negative: {scrape: 'histogram_fraction(-Inf, 0, rate(balance_delta[1m]))'}
      classic:  {scrape: 'histogram_quantile(0.9, sum by (le) (rate(rpc_latency_seconds_bucket[1m])))'}
      utf8:     {scrape: 'histogram_quantile(0.5, sum(rate({"http.server.request.duration"}[1m])))'}
    expr: 'p90 < 1.5 && slow < 0.5 && requests > 0 && mean < 1 && negative < 0.5 && classic < 1 && utf8 < 0.1'
"#;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Prometheus's one number for `promql`, once it has one.
async fn prometheus_value(prom: &Prometheus, promql: &str) -> f64 {
    let data = prom.query(promql).await;
    let result = data["result"].as_array().cloned().unwrap_or_default();
    assert_eq!(result.len(), 1, "{promql}: {data}");
    let value = result[0]["value"][1].as_str().unwrap_or("NaN");
    match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|e| panic!("{promql}: {v}: {e}")),
    }
}

/// Waits until Prometheus's `histogram_count(sum(request_duration_seconds))` is `count`.
async fn wait_count(prom: &Prometheus, count: f64) {
    let q = "histogram_count(sum(request_duration_seconds))";
    wait_for(
        &format!("Prometheus sees {count} requests"),
        Duration::from_secs(30),
        || async {
            let data = prom.query(q).await;
            let got = data["result"][0]["value"][1].as_str().map(str::to_string);
            if got.as_deref() == Some(&count.to_string()) {
                Ok(())
            } else {
                Err(data)
            }
        },
    )
    .await;
}

/// One scrape of `url` as the daemon takes it (podgate's Accept), stored at `t`.
async fn scrape_into(client: &reqwest::Client, url: &str, store: &mut SeriesStore, t: i64) {
    let scraped = scrape::fetch(client, url, Duration::from_secs(5), 1 << 24)
        .await
        .unwrap_or_else(|e| panic!("scraping {url}: {e}"));
    assert!(
        matches!(scraped, scrape::Scraped::Protobuf { .. }),
        "the endpoint answers podgate's Accept with the protobuf format"
    );
    body::ingest(store, t, &scraped, usize::MAX).unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn podgate_and_prometheus_3_agree_on_a_live_client_golang_endpoint() {
    let endpoint = NativeEndpoint::start();
    let prom = Prometheus::start(&prometheus_config(endpoint.addr())).await;
    // Prometheus holds the first batch (GET 10 observations, POST 1).
    wait_count(&prom, 11.0).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("native.yaml");
    std::fs::write(&file, RULE).expect("rule file");
    let set = podgate::rules_dir::load_files(&[file]).unwrap_or_else(|e| panic!("{e}"));
    let rule = set.get("native").expect("the rule").clone();

    // podgate scrapes as the daemon does (its Accept, so the protobuf format), the endpoint
    // observes its second batch, podgate scrapes again.
    let client = reqwest::Client::new();
    let mut store = SeriesStore::new(Interest::new(rule.scrape_queries()), StoreLimits::default());
    scrape_into(&client, &endpoint.url(), &mut store, now_ms()).await;
    endpoint.next().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = now_ms();
    scrape_into(&client, &endpoint.url(), &mut store, second).await;
    let mut no_promql = |_: &podgate::rules::Var| VarResult::NoData("none".into());
    let evaluation = evaluate_rule(
        &rule,
        ScrapeInput::Store(&store),
        &mut no_promql,
        &podgate::peers::NoPeers(""),
        None,
        second,
    );

    // Prometheus's window now holds both batches too.
    wait_count(&prom, 23.0).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut holds = true;
    for var in &evaluation.vars {
        let VarResult::Value(ours) = var.result else {
            panic!("{}: {:?}", var.name, var.result);
        };
        // Prometheus reads the protobuf format without `escaping=allow-utf-8` in its Accept,
        // so client_golang gives it the UTF-8 name with underscores.
        let promql = var.query.replace(
            "{\"http.server.request.duration\"}",
            "http_server_request_duration",
        );
        let theirs = prometheus_value(&prom, &promql).await;
        // The two rates extrapolate differently (podgate had two scrapes, Prometheus one a
        // second): they differ by a factor, which a quantile or a fraction of the rate does
        // not depend on; the instant values are the same histograms. Rounding aside, equal.
        assert!(
            (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1e-9),
            "{}: podgate {ours}, Prometheus 3 {theirs} ({promql})",
            var.name
        );
        holds &= match var.name.as_str() {
            "p90" => theirs < 1.5,
            "requests" => theirs > 0.0,
            "mean" | "classic" => theirs < 1.0,
            "utf8" => theirs < 0.1,
            _ => theirs < 0.5,
        };
    }
    assert_eq!(evaluation.vars.len(), 7);
    let want = if holds { Outcome::Pass } else { Outcome::Fail };
    assert_eq!(
        evaluation.evaluation.outcome, want,
        "{:?}",
        evaluation.evaluation
    );
}
