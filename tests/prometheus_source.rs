//! The Prometheus source against a real Prometheus server scraping a loopback metrics
//! endpoint, and against a small fake API server for what a real one cannot show (slow
//! answers, the headers and body a request carries, refused POSTs).

use crate::support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use podgate::query::Template;
use podgate::rules::PrometheusLabels;
use podgate::source::prometheus::{
    BasicAuth, PodFacts, PromErrorKind, PrometheusClient, PrometheusConfig, RequestObserver,
    RequestResult, join,
};
use support::{ControlPlane, MetricsEndpoint, Prometheus, Release, unique_loopback_ip, wait_for};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(10);

fn client(url: &str) -> PrometheusClient {
    config_client(PrometheusConfig {
        url: url.to_string(),
        ..PrometheusConfig::default()
    })
}

fn config_client(config: PrometheusConfig) -> PrometheusClient {
    PrometheusClient::new(config).unwrap_or_else(|e| panic!("client: {e}"))
}

/// An observer that records every report.
fn recorder() -> (RequestObserver, Arc<Mutex<Vec<RequestResult>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let observer: RequestObserver = Arc::new(move |result, _elapsed| {
        sink.lock().unwrap_or_else(|p| p.into_inner()).push(result);
    });
    (observer, seen)
}

fn seen(results: &Mutex<Vec<RequestResult>>) -> Vec<RequestResult> {
    results.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

// --- a real Prometheus scraping pod-labelled series ------------------------------------

/// Pod series as an exporter behind `honor_labels: true` exposes them (e.g. a federation
/// endpoint or kube-state-metrics).
const POD_SERIES: &str = r#"# TYPE queue_depth gauge
queue_depth{namespace="shop",pod="checkout-0"} 3
queue_depth{namespace="shop",pod="checkout-1",shard="a"} 7
queue_depth{namespace="shop",pod="checkout-1",shard="b"} 9
queue_depth{namespace="other",pod="checkout-0"} 11
queue_depth{shard="orphan"} 1
# TYPE team_errors gauge
team_errors{namespace="shop",pod="checkout-0",team="a\"b\\c"} 42
team_errors{namespace="shop",pod="checkout-1",team="plain"} 5
# TYPE broken_ratio gauge
broken_ratio{namespace="shop",pod="checkout-0"} NaN
"#;

/// A Prometheus of `release` that has scraped [`POD_SERIES`] at least once.
async fn prometheus_with_pod_series(release: Release) -> (Prometheus, MetricsEndpoint) {
    let endpoint = MetricsEndpoint::start(unique_loopback_ip()).await;
    endpoint.set_body(POD_SERIES);
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: pods\n    honor_labels: true\n    \
         static_configs:\n      - targets: ['{}']\n",
        endpoint.addr()
    );
    let prometheus = Prometheus::start_release(release, &config).await;
    wait_for(
        "Prometheus to scrape every pod series",
        Duration::from_secs(30),
        || async {
            let data = prometheus
                .query("count(queue_depth) + count(team_errors) + count(broken_ratio)")
                .await;
            match data["result"][0]["value"][1].as_str() {
                Some("8") => Ok(()),
                _ => Err(data),
            }
        },
    )
    .await;
    (prometheus, endpoint)
}

#[tokio::test]
async fn batched_query_joins_per_pod() {
    batched_query_joins_per_pod_on(Release::V3).await;
}

#[tokio::test]
async fn batched_query_joins_per_pod_on_prometheus_2() {
    batched_query_joins_per_pod_on(Release::V2).await;
}

async fn batched_query_joins_per_pod_on(release: Release) {
    let (prometheus, _endpoint) = prometheus_with_pod_series(release).await;
    let (observer, results) = recorder();
    let client = client(&prometheus.url()).with_observer(observer);
    let labels = PrometheusLabels::default();

    let batched = Template::parse("max by (namespace, pod) (queue_depth)")
        .unwrap_or_else(|e| panic!("template: {e}"));
    let joined = client
        .query_batched(&batched, &labels, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(joined.get("shop", "checkout-0"), Ok(Some(3.0)));
    assert_eq!(joined.get("shop", "checkout-1"), Ok(Some(9.0)));
    assert_eq!(joined.get("other", "checkout-0"), Ok(Some(11.0)));
    assert_eq!(
        joined.get("shop", "checkout-2"),
        Ok(None),
        "no series: no data"
    );
    // `max by` keeps the orphan as a series with neither label.
    assert_eq!(joined.ignored(), 1);
    assert_eq!(joined.pods(), 3);

    // Without aggregation, the two shards of checkout-1 are an error for that pod alone.
    let vector = client
        .query("queue_depth", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        vector
            .samples
            .iter()
            .all(|s| s.labels.get("__name__").map(String::as_str) == Some("queue_depth")),
        "{vector:?}"
    );
    let joined = join(vector, &labels);
    let duplicate = joined
        .get("shop", "checkout-1")
        .expect_err("two series for checkout-1");
    assert_eq!(
        duplicate.to_string(),
        "2 series for shop/checkout-1; aggregate with max by (namespace, pod)"
    );
    assert_eq!(joined.get("shop", "checkout-0"), Ok(Some(3.0)));
    assert_eq!(joined.ignored(), 1);
    let example = joined.ignored_example().cloned().unwrap_or_default();
    assert_eq!(example.get("shard").map(String::as_str), Some("orphan"));

    // NaN is passed through for the caller to judge.
    let vector = client
        .query("broken_ratio", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let joined = join(vector, &labels);
    assert!(
        joined
            .get("shop", "checkout-0")
            .ok()
            .flatten()
            .is_some_and(f64::is_nan)
    );

    // Joining on other label names: rename with label_replace, join on the new names.
    let vector = client
        .query(
            r#"label_replace(label_replace(max by (namespace, pod) (queue_depth),
                "k8s_ns", "$1", "namespace", "(.*)"), "k8s_pod", "$1", "pod", "(.*)")"#,
            TIMEOUT,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let custom = PrometheusLabels {
        namespace_label: "k8s_ns".to_string(),
        pod_label: "k8s_pod".to_string(),
    };
    assert_eq!(
        join(vector, &custom).get("other", "checkout-0"),
        Ok(Some(11.0))
    );

    // A template with a per-pod placeholder cannot run batched, and is not sent.
    let per_pod = Template::parse(r#"queue_depth{pod="{{pod}}"}"#)
        .unwrap_or_else(|e| panic!("template: {e}"));
    let err = client
        .query_batched(&per_pod, &labels, TIMEOUT)
        .await
        .expect_err("a per-pod template");
    assert!(matches!(err.kind, PromErrorKind::Render(_)), "{err:?}");

    assert_eq!(seen(&results), vec![RequestResult::Ok; 4]);
}

#[tokio::test]
async fn templated_query_per_pod_with_escaping() {
    templated_query_per_pod_with_escaping_on(Release::V3).await;
}

#[tokio::test]
async fn templated_query_per_pod_with_escaping_on_prometheus_2() {
    templated_query_per_pod_with_escaping_on(Release::V2).await;
}

async fn templated_query_per_pod_with_escaping_on(release: Release) {
    let (prometheus, _endpoint) = prometheus_with_pod_series(release).await;
    let client = client(&prometheus.url());
    let tricky = BTreeMap::from([("team".to_string(), "a\"b\\c".to_string())]);
    let plain = BTreeMap::from([("team".to_string(), "plain".to_string())]);
    fn pod<'a>(name: &'a str, labels: &'a BTreeMap<String, String>) -> PodFacts<'a> {
        PodFacts {
            name,
            namespace: "shop",
            node: Some("node-1"),
            pod_ip: Some("127.0.0.9"),
            labels,
        }
    }
    let (tricky, plain) = (&tricky, &plain);

    let template = |src: &str| Template::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let per_pod = template(r#"max(queue_depth{namespace="{{namespace}}", pod="{{pod}}"})"#);
    assert_eq!(
        client
            .query_for_pod(&per_pod, &pod("checkout-0", plain), TIMEOUT)
            .await,
        Ok(Some(3.0))
    );
    assert_eq!(
        client
            .query_for_pod(&per_pod, &pod("checkout-1", plain), TIMEOUT)
            .await,
        Ok(Some(9.0))
    );
    // No series for this pod: no data, not zero.
    assert_eq!(
        client
            .query_for_pod(&per_pod, &pod("checkout-9", plain), TIMEOUT)
            .await,
        Ok(None)
    );

    // A label value with `"` and `\` selects exactly the series that has it, in either
    // quoting style.
    for src in [
        r#"team_errors{team="{{label "team"}}"}"#,
        r#"team_errors{team='{{label "team"}}'}"#,
    ] {
        let t = template(src);
        assert_eq!(
            client
                .query_for_pod(&t, &pod("checkout-0", tricky), TIMEOUT)
                .await,
            Ok(Some(42.0)),
            "{src}"
        );
        assert_eq!(
            client
                .query_for_pod(&t, &pod("checkout-1", plain), TIMEOUT)
                .await,
            Ok(Some(5.0)),
            "{src}"
        );
    }

    // More than one series for a pod is an error naming the count.
    let unaggregated = template(r#"queue_depth{namespace="{{namespace}}"}"#);
    let err = client
        .query_for_pod(&unaggregated, &pod("checkout-0", plain), TIMEOUT)
        .await
        .expect_err("three series");
    assert_eq!(err.kind, PromErrorKind::SeriesCount { count: 3 });
    assert!(err.to_string().contains("3 series for one pod"), "{err}");
    assert!(
        err.query.contains(r#"namespace="shop""#),
        "the rendered query is shown: {err}"
    );

    // A label the pod lacks: the query is not sent.
    let needs_label = template(r#"team_errors{team="{{label "owner"}}"}"#);
    let err = client
        .query_for_pod(&needs_label, &pod("checkout-0", plain), TIMEOUT)
        .await
        .expect_err("missing label");
    assert!(matches!(err.kind, PromErrorKind::Render(_)), "{err:?}");
    assert!(err.to_string().contains(r#"no label "owner""#), "{err}");
}

#[tokio::test]
async fn non_vector_results_bad_queries_and_a_stopped_server() {
    let prometheus =
        Prometheus::start("global:\n  scrape_interval: 1s\nscrape_configs: []\n").await;
    let (observer, results) = recorder();
    let client = client(&prometheus.url()).with_observer(observer);

    let err = client
        .query("vector(1)[5m:1m]", TIMEOUT)
        .await
        .expect_err("a matrix");
    assert_eq!(
        err.kind,
        PromErrorKind::NotVector {
            result_type: "matrix".into()
        }
    );
    assert!(
        err.to_string().starts_with(
            "prometheus query `vector(1)[5m:1m]`: expected an instant vector, got matrix"
        ),
        "{err}"
    );

    let err = client
        .query(r#""hello""#, TIMEOUT)
        .await
        .expect_err("a string");
    assert!(
        err.to_string()
            .ends_with("expected an instant vector, got string"),
        "{err}"
    );

    // A scalar is one sample without labels.
    let vector = client
        .query("scalar(vector(2)) * 3", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(vector.samples.len(), 1);
    assert!(vector.samples[0].labels.is_empty());
    assert_eq!(vector.samples[0].value, 6.0);

    // Prometheus's own parse error, with the query, on one line.
    let bad = "sum(rate(queue_depth[1m])";
    let err = client.query(bad, TIMEOUT).await.expect_err("a parse error");
    let text = err.to_string();
    match &err.kind {
        PromErrorKind::Api {
            status, error_type, ..
        } => {
            assert_eq!(*status, 400, "{text}");
            assert_eq!(error_type, "bad_data", "{text}");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert!(text.contains(&format!("`{bad}`")), "{text}");
    assert!(text.contains("parse error"), "{text}");
    assert!(!text.contains('\n'), "{text}");

    // The server goes away: a connection error naming it.
    let url = prometheus.url();
    drop(prometheus);
    let err = client
        .query("vector(1)", TIMEOUT)
        .await
        .expect_err("nothing listens");
    match &err.kind {
        PromErrorKind::Connect { url: shown, detail } => {
            assert_eq!(shown, &format!("{url}/"));
            assert!(detail.to_lowercase().contains("refused"), "{err}");
        }
        other => panic!("expected a connection error, got {other:?}"),
    }

    assert_eq!(
        seen(&results),
        vec![
            RequestResult::Error,
            RequestResult::Error,
            RequestResult::Ok,
            RequestResult::Error,
            RequestResult::Error,
        ]
    );
}

// --- a fake API server ------------------------------------------------------------------

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    /// The URL's query string, if any.
    query: Option<String>,
    headers: HeaderMap,
    body: String,
}

impl Recorded {
    /// The request's parameters, from the form body (POST) or the URL (GET).
    fn params(&self) -> BTreeMap<String, String> {
        let encoded = if self.method == Method::POST {
            self.body.clone()
        } else {
            self.query.clone().unwrap_or_default()
        };
        let url = reqwest::Url::parse(&format!("http://x/?{encoded}"))
            .unwrap_or_else(|e| panic!("parameters {encoded:?}: {e}"));
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

#[derive(Clone)]
struct FakeAnswer {
    status: u16,
    body: String,
    delay: Duration,
    /// Answer POSTs with this status instead (e.g. 405, as a GET-only proxy does).
    post_status: Option<u16>,
}

const ONE_SAMPLE: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"namespace":"n","pod":"p"},"value":[1700000000,"1.5"]}]}}"#;

struct FakeShared {
    answer: Mutex<FakeAnswer>,
    requests: Mutex<Vec<Recorded>>,
}

struct FakeApi {
    addr: SocketAddr,
    shared: Arc<FakeShared>,
    server: JoinHandle<()>,
}

impl FakeApi {
    async fn start() -> FakeApi {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|e| panic!("fake API: bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fake API: local address: {e}"));
        let shared = Arc::new(FakeShared {
            answer: Mutex::new(FakeAnswer {
                status: 200,
                body: ONE_SAMPLE.to_string(),
                delay: Duration::ZERO,
                post_status: None,
            }),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("fake API {addr}: {e}");
            }
        });
        FakeApi {
            addr,
            shared,
            server,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn update(&self, f: impl FnOnce(&mut FakeAnswer)) {
        f(&mut self.shared.answer.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn requests(&self) -> Vec<Recorded> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn last(&self) -> Recorded {
        self.requests()
            .pop()
            .unwrap_or_else(|| panic!("the fake API got no request"))
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(
    State(shared): State<Arc<FakeShared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let answer = shared
        .answer
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let status = match answer.post_status {
        Some(status) if method == Method::POST => status,
        _ => answer.status,
    };
    shared
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Recorded {
            method,
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            headers,
            body,
        });
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body,
    )
        .into_response()
}

fn write_file(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

#[tokio::test]
async fn posts_the_query_form_encoded() {
    let fake = FakeApi::start().await;
    let client = client(&fake.url());
    let query = r#"sum by (pod) (rate(x{a="b&c=d", e=~"f+"}[1m]))"#;
    let vector = client
        .query(query, Duration::from_millis(2500))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(vector.samples.len(), 1);
    assert_eq!(vector.samples[0].value, 1.5);

    let request = fake.last();
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/api/v1/query");
    assert_eq!(request.query, None);
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let params = request.params();
    assert_eq!(params.get("query").map(String::as_str), Some(query));
    assert_eq!(params.get("timeout").map(String::as_str), Some("2.5"));
    assert_eq!(request.header("authorization"), None);
}

#[tokio::test]
async fn keeps_a_path_prefix() {
    let fake = FakeApi::start().await;
    let client = client(&format!("{}/prometheus/", fake.url()));
    client
        .query("up", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fake.last().path, "/prometheus/api/v1/query");
}

#[tokio::test]
async fn falls_back_to_get_when_post_is_refused() {
    let fake = FakeApi::start().await;
    fake.update(|a| a.post_status = Some(405));
    let client = client(&fake.url());
    let query = r#"up{job="a b"}"#;
    let vector = client
        .query(query, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(vector.samples.len(), 1);
    let requests = fake.requests();
    let methods: Vec<&Method> = requests.iter().map(|r| &r.method).collect();
    assert_eq!(methods, vec![&Method::POST, &Method::GET]);
    let get = &requests[1];
    assert_eq!(get.path, "/api/v1/query");
    assert_eq!(get.params().get("query").map(String::as_str), Some(query));

    // Once refused, GET straight away.
    client
        .query("up", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fake.requests().len(), 3);
    assert_eq!(fake.last().method, Method::GET);
}

#[tokio::test]
async fn slow_answer_times_out() {
    let fake = FakeApi::start().await;
    fake.update(|a| a.delay = Duration::from_secs(30));
    let (observer, results) = recorder();
    let client = client(&fake.url()).with_observer(observer);
    let err = client
        .query("up", Duration::from_millis(300))
        .await
        .expect_err("the answer comes too late");
    assert_eq!(err.kind, PromErrorKind::Timeout(Duration::from_millis(300)));
    assert_eq!(
        err.to_string(),
        "prometheus query `up`: timed out after 300ms"
    );
    assert_eq!(seen(&results), vec![RequestResult::Timeout]);
}

#[tokio::test]
async fn http_and_api_errors_are_reported() {
    let fake = FakeApi::start().await;
    let (observer, results) = recorder();
    let client = client(&fake.url()).with_observer(observer);

    fake.update(|a| {
        a.status = 503;
        a.body = r#"{"status":"error","errorType":"timeout","error":"query timed out in query execution"}"#.into();
    });
    let err = client.query("up", TIMEOUT).await.expect_err("503");
    assert_eq!(
        err.to_string(),
        "prometheus query `up`: timeout: query timed out in query execution"
    );

    fake.update(|a| {
        a.status = 502;
        a.body = "<html>bad gateway</html>".into();
    });
    let err = client.query("up", TIMEOUT).await.expect_err("502");
    assert_eq!(
        err.to_string(),
        "prometheus query `up`: HTTP 502: <html>bad gateway</html>"
    );

    fake.update(|a| {
        a.status = 200;
        a.body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"#.into();
    });
    let err = client.query("up", TIMEOUT).await.expect_err("truncated");
    assert!(matches!(err.kind, PromErrorKind::BadResponse(_)), "{err:?}");

    fake.update(|a| a.body = ONE_SAMPLE.into());
    client
        .query("up", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(
        seen(&results),
        vec![
            RequestResult::Timeout,
            RequestResult::Error,
            RequestResult::Error,
            RequestResult::Ok
        ]
    );
}

#[tokio::test]
async fn bearer_token_is_sent_and_a_changed_file_is_picked_up() {
    let fake = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let token_file = dir.path().join("token");
    write_file(&token_file, "first-token\n");
    let client = config_client(PrometheusConfig {
        url: fake.url(),
        bearer_token_file: Some(token_file.clone()),
        ..PrometheusConfig::default()
    });

    client
        .query("up", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        fake.last().header("authorization").as_deref(),
        Some("Bearer first-token")
    );

    // Rewritten in place, same length: the stat-based cache must still notice.
    write_file(&token_file, "other-token\n");
    client
        .query("up", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        fake.last().header("authorization").as_deref(),
        Some("Bearer other-token")
    );

    // Replaced the way a Kubernetes Secret volume does it: a new file renamed over the old.
    let staged = dir.path().join("token.new");
    write_file(&staged, "rotated-token-3");
    std::fs::rename(&staged, &token_file).unwrap_or_else(|e| panic!("rename: {e}"));
    client
        .query("up", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        fake.last().header("authorization").as_deref(),
        Some("Bearer rotated-token-3")
    );

    // The file disappears: an error naming the file, no request, and no secret shown.
    std::fs::remove_file(&token_file).unwrap_or_else(|e| panic!("remove: {e}"));
    let before = fake.requests().len();
    let err = client.query("up", TIMEOUT).await.expect_err("no token");
    let text = err.to_string();
    assert!(matches!(err.kind, PromErrorKind::Credentials(_)), "{err:?}");
    assert!(text.contains(&token_file.display().to_string()), "{text}");
    assert!(!text.contains("rotated-token-3"), "{text}");
    assert_eq!(fake.requests().len(), before);
}

#[tokio::test]
async fn basic_auth_and_custom_headers_are_sent() {
    let fake = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let password_file = dir.path().join("password");
    write_file(&password_file, "s3cr3t\n");
    let client = config_client(PrometheusConfig {
        url: fake.url(),
        basic_auth: Some(BasicAuth {
            username: "user".into(),
            password_file: password_file.clone(),
        }),
        headers: vec![
            ("X-Scope-OrgID".into(), "tenant-a".into()),
            ("X-Extra".into(), "1".into()),
        ],
        ..PrometheusConfig::default()
    });
    let shown = format!("{client:?}");
    assert!(
        !shown.contains("s3cr3t") && !shown.contains("tenant-a"),
        "{shown}"
    );

    client
        .query("up", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let request = fake.last();
    // base64("user:s3cr3t")
    assert_eq!(
        request.header("authorization").as_deref(),
        Some("Basic dXNlcjpzM2NyM3Q=")
    );
    assert_eq!(request.header("x-scope-orgid").as_deref(), Some("tenant-a"));
    assert_eq!(request.header("x-extra").as_deref(), Some("1"));
    assert_eq!(
        request.header("accept").as_deref(),
        Some("application/json")
    );
    assert!(
        request
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("podgate/")),
        "{request:?}"
    );

    // A rejected login: the error shows the status, not the password.
    fake.update(|a| {
        a.status = 401;
        a.body = "Unauthorized".into();
    });
    let err = client.query("up", TIMEOUT).await.expect_err("401");
    assert_eq!(
        err.to_string(),
        "prometheus query `up`: HTTP 401: Unauthorized"
    );
}

#[tokio::test]
async fn configuration_errors_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let token = dir.path().join("token");
    write_file(&token, "t");
    let not_pem = dir.path().join("ca.pem");
    write_file(&not_pem, "not a certificate\n");
    let missing = dir.path().join("missing");
    let base = || PrometheusConfig {
        url: "http://127.0.0.1:9090".into(),
        ..PrometheusConfig::default()
    };
    let error = |config: PrometheusConfig| match PrometheusClient::new(config) {
        Ok(c) => panic!("expected a configuration error, got {c:?}"),
        Err(e) => e.to_string(),
    };

    let e = error(PrometheusConfig {
        url: "prometheus:9090".into(),
        ..base()
    });
    assert!(e.starts_with("prometheus: url"), "{e}");
    let e = error(PrometheusConfig {
        url: "ftp://prometheus".into(),
        ..base()
    });
    assert!(e.contains("http or https"), "{e}");
    let e = error(PrometheusConfig {
        url: "http://prometheus:9090/?x=1".into(),
        ..base()
    });
    assert!(e.contains("query string"), "{e}");
    let e = error(PrometheusConfig {
        bearer_token_file: Some(missing.clone()),
        ..base()
    });
    assert!(
        e.contains("bearer token file") && e.contains(&missing.display().to_string()),
        "{e}"
    );
    let e = error(PrometheusConfig {
        bearer_token_file: Some(token.clone()),
        basic_auth: Some(BasicAuth {
            username: "u".into(),
            password_file: token.clone(),
        }),
        ..base()
    });
    assert!(e.contains("use one"), "{e}");
    let e = error(PrometheusConfig {
        headers: vec![("Content-Type".into(), "text/plain".into())],
        ..base()
    });
    assert!(e.contains("\"Content-Type\""), "{e}");
    let e = error(PrometheusConfig {
        headers: vec![("Bad Header".into(), "x".into())],
        ..base()
    });
    assert!(e.contains("not a valid HTTP header name"), "{e}");
    let e = error(PrometheusConfig {
        headers: vec![("X-Key".into(), "line\nbreak-secret".into())],
        ..base()
    });
    assert!(e.contains("X-Key") && !e.contains("break-secret"), "{e}");
    let e = error(PrometheusConfig {
        ca_file: Some(missing.clone()),
        ..base()
    });
    assert!(e.contains("CA file") && e.contains("missing"), "{e}");
    let e = error(PrometheusConfig {
        ca_file: Some(not_pem.clone()),
        ..base()
    });
    assert!(e.contains("no PEM certificate"), "{e}");
    let e = error(PrometheusConfig {
        url: "http://user:hunter2@127.0.0.1:9090/".into(),
        ..base()
    });
    assert!(e.contains("must not contain credentials"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    let e = error(PrometheusConfig {
        url: "http://user:hunter2@127.0.0.1:9090:x/".into(),
        ..base()
    });
    assert!(e.starts_with("prometheus: url"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

/// A server that reads each request and then closes the connection without an answer for
/// the first `drop_first` connections, and answers the rest with [`ONE_SAMPLE`]. Returns the
/// base URL and the count of connections accepted.
async fn closing_server(drop_first: usize) -> (String, Arc<Mutex<usize>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local address: {e}"));
    let accepted = Arc::new(Mutex::new(0usize));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let n = {
                let mut c = count.lock().unwrap_or_else(|p| p.into_inner());
                *c += 1;
                *c
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                let _ = sock.read(&mut buf).await;
                if n <= drop_first {
                    return; // closes the connection unanswered
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{ONE_SAMPLE}",
                    ONE_SAMPLE.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), accepted)
}

#[tokio::test]
async fn a_connection_closed_before_the_answer_is_retried_once() {
    let (url, accepted) = closing_server(1).await;
    let (observer, results) = recorder();
    let client = client(&url).with_observer(observer);
    let vector = client
        .query("up", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(vector.samples.len(), 1);
    assert_eq!(*accepted.lock().unwrap_or_else(|p| p.into_inner()), 2);
    assert_eq!(seen(&results), vec![RequestResult::Ok]);

    // Closed every time: one retry only, then the error.
    let (url, accepted) = closing_server(usize::MAX).await;
    let client = self::client(&url);
    let err = client
        .query("up", TIMEOUT)
        .await
        .expect_err("never answered");
    assert!(matches!(err.kind, PromErrorKind::Request(_)), "{err:?}");
    assert!(err.to_string().contains("closed"), "{err}");
    assert_eq!(*accepted.lock().unwrap_or_else(|p| p.into_inner()), 2);
}

// --- TLS, against the control plane's API server (a real TLS server with its own CA) ----

#[tokio::test]
async fn tls_is_verified_against_the_ca_file() {
    let control_plane = ControlPlane::get();
    let url = control_plane.apiserver_url().to_string();
    let ca_file = control_plane
        .var("PODGATE_TEST_CA_FILE")
        .unwrap_or_else(|| panic!("the control plane env has no PODGATE_TEST_CA_FILE"))
        .to_string();

    // The API server is no Prometheus: once TLS succeeds it refuses the anonymous request.
    let answered_over_tls = |kind: &PromErrorKind| matches!(kind, PromErrorKind::Http { status, .. } if (400..500).contains(status));

    let trusted = config_client(PrometheusConfig {
        url: url.clone(),
        ca_file: Some(ca_file.into()),
        ..PrometheusConfig::default()
    });
    let err = trusted
        .query("up", TIMEOUT)
        .await
        .expect_err("not Prometheus");
    assert!(answered_over_tls(&err.kind), "{err}");

    // The system roots do not include the API server's own CA.
    let untrusted = client(&url);
    let err = untrusted
        .query("up", TIMEOUT)
        .await
        .expect_err("unknown CA");
    match &err.kind {
        PromErrorKind::Connect { detail, .. } => {
            assert!(detail.to_lowercase().contains("certificate"), "{err}");
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }

    let insecure = config_client(PrometheusConfig {
        url,
        insecure_skip_verify: true,
        ..PrometheusConfig::default()
    });
    let err = insecure
        .query("up", TIMEOUT)
        .await
        .expect_err("not Prometheus");
    assert!(answered_over_tls(&err.kind), "{err}");
}
