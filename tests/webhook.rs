//! The admission webhook against the real apiserver: the shipped MutatingWebhookConfiguration
//! (scoped to this test's namespaces) calls `podgate run --webhook-addr` on loopback with a
//! certificate from `scripts/webhook-certs`, and the apiserver stores the pods it patched.

use crate::support;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::daemon::{Daemon, rules_dir};
use support::{ControlPlane, TestNamespace, TestPod, unique_suffix, wait_for};

const HTTP: &str = "podgate.dev/http-healthy";
const WARM: &str = "podgate.dev/warm";
const OTHER: &str = "example.com/other";
/// The label scoping a test's webhook configuration to its own namespaces.
const TEST_LABEL: &str = "podgate.dev/webhook-test";

/// `http` covers tier=frontend pods, `warm` app=web pods; `trial` is in dry run and covers
/// every pod, but must never be injected (nobody would write its gate).
const RULES: &str = r#"
rules:
  - name: http
    conditionType: podgate.dev/http-healthy
    selector:
      matchExpressions: [{key: tier, operator: In, values: [frontend]}]
    vars: {x: {scrape: 'x'}}
    expr: 'x < 1'
  - name: warm
    conditionType: podgate.dev/warm
    selector:
      matchLabels: {app: web}
    vars: {x: {scrape: 'x'}}
    expr: 'x < 1'
  - name: trial
    conditionType: podgate.dev/trial
    dryRun: true
    vars: {x: {scrape: 'x'}}
    expr: 'x < 1'
"#;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A CA and a serving certificate for 127.0.0.1, made by the shipped script.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().expect("certs tempdir");
        make_certs(dir.path());
        Certs { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.path("ca.crt")).expect("read ca.crt")
    }
}

fn make_certs(dir: &Path) {
    let out = Command::new(repo().join("scripts/webhook-certs"))
        .arg("--out")
        .arg(dir)
        .args(["--ip", "127.0.0.1", "--days", "2"])
        .output()
        .expect("run scripts/webhook-certs");
    assert!(
        out.status.success(),
        "scripts/webhook-certs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr")
}

/// The daemon with the webhook on, watching `namespaces`.
fn start_daemon(rules: &Path, certs: &Certs, namespaces: &[&str]) -> (Daemon, SocketAddr) {
    let addr = free_addr();
    let cert = certs.path("tls.crt").display().to_string();
    let key = certs.path("tls.key").display().to_string();
    let addr_s = addr.to_string();
    let mut extra = vec![
        "--webhook-addr",
        addr_s.as_str(),
        "--webhook-cert-file",
        cert.as_str(),
        "--webhook-key-file",
        key.as_str(),
    ];
    for ns in &namespaces[1..] {
        extra.extend(["--namespace", *ns]);
    }
    let d = Daemon::start(rules, namespaces[0], &extra);
    (d, addr)
}

async fn label_namespace(client: &Client, ns: &str, labels: &[(&str, &str)]) {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    Api::<Namespace>::all(client.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": labels } })),
        )
        .await
        .unwrap_or_else(|e| panic!("labelling namespace {ns}: {e}"));
}

/// The shipped MutatingWebhookConfiguration, pointed at `url` with `ca_pem` as caBundle and
/// limited to namespaces labelled `TEST_LABEL=id`. Deleted when dropped.
struct Registration {
    name: String,
    admin_kubeconfig: PathBuf,
    deleted: bool,
}

impl Registration {
    async fn create(admin: &Client, url: &str, ca_pem: &[u8], id: &str) -> Registration {
        let path = repo().join("deploy/overlays/webhook/mutatingwebhookconfiguration.yaml");
        let text = std::fs::read_to_string(&path).expect("read the shipped webhook configuration");
        let mut cfg: Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = format!("podgate-test-{id}");
        cfg["metadata"]["name"] = json!(name);
        let webhooks = cfg["webhooks"].as_array_mut().expect("webhooks is a list");
        assert_eq!(webhooks.len(), 2, "a namespace webhook and a pod webhook");
        let ca_bundle = base64_encode(ca_pem);
        for w in webhooks.iter_mut() {
            w["clientConfig"] = json!({ "url": url, "caBundle": ca_bundle });
            let exprs = w["namespaceSelector"]["matchExpressions"]
                .as_array_mut()
                .expect("namespaceSelector.matchExpressions");
            exprs.push(json!({ "key": TEST_LABEL, "operator": "In", "values": [id] }));
        }
        let cfg: MutatingWebhookConfiguration =
            serde_json::from_value(cfg).expect("a MutatingWebhookConfiguration");
        Api::<MutatingWebhookConfiguration>::all(admin.clone())
            .create(&PostParams::default(), &cfg)
            .await
            .unwrap_or_else(|e| panic!("registering the webhook {name}: {e}"));
        Registration {
            name,
            admin_kubeconfig: ControlPlane::get().admin_kubeconfig_path().to_path_buf(),
            deleted: false,
        }
    }

    async fn delete(mut self, admin: &Client) {
        Api::<MutatingWebhookConfiguration>::all(admin.clone())
            .delete(&self.name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting the webhook {}: {e}", self.name));
        self.deleted = true;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        // A failed test still removes its cluster-scoped configuration.
        let name = self.name.clone();
        let kubeconfig = self.admin_kubeconfig.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Runtime::new() else {
                return;
            };
            rt.block_on(async {
                let admin = support::control_plane::client_from(&kubeconfig).await;
                let _ = Api::<MutatingWebhookConfiguration>::all(admin)
                    .delete(&name, &DeleteParams::default())
                    .await;
            });
        })
        .join();
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn gates(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .map(|g| g.iter().map(|g| g.condition_type.clone()).collect())
        .unwrap_or_default()
}

/// Waits until the apiserver calls the webhook: a dry-run create in `pods`' namespace (an
/// opted-in one) comes back with the gate the rules give an app=web pod.
async fn wait_active(pods: &Api<Pod>, daemon: &Daemon) {
    let probe = TestPod::new(&format!("probe-{}", unique_suffix())).label("app", "web");
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let active = wait_for(
        "the webhook configuration in effect",
        Duration::from_secs(30),
        || {
            let pod = probe.build();
            let dry = dry.clone();
            async move {
                match pods.create(&dry, &pod).await {
                    Ok(p) if gates(&p) == [WARM] => Ok(()),
                    Ok(p) => Err(format!("gates {:?}", gates(&p))),
                    Err(e) => Err(e.to_string()),
                }
            }
        },
    );
    if tokio::time::timeout(Duration::from_secs(35), active)
        .await
        .is_err()
    {
        panic!("webhook never called\nlog:\n{}", daemon.log());
    }
}

/// A reqwest client that trusts only `ca_pem`, with a fresh connection (and handshake).
fn tls_client(ca_pem: &[u8]) -> reqwest::Client {
    support::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(ca_pem).expect("CA PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(5))
        .build()
        .expect("TLS client")
}

#[tokio::test]
async fn injects_only_owned_gates_into_pods_that_opted_in() {
    let admin = ControlPlane::get().admin_client().await;
    let id = unique_suffix();
    // opted in as a namespace; not opted in; opted in but not watched by this podgate.
    let on = TestNamespace::new("webhook-on").await;
    let off = TestNamespace::new("webhook-off").await;
    let unwatched = TestNamespace::new("webhook-unwatched").await;
    for (ns, inject) in [(&on, true), (&off, false), (&unwatched, true)] {
        let mut labels = vec![(TEST_LABEL, id.as_str())];
        if inject {
            labels.push(("podgate.dev/inject", "enabled"));
        }
        label_namespace(&admin, ns.name(), &labels).await;
    }
    let certs = Certs::new();
    let rules = rules_dir(RULES);
    let (daemon, addr) = start_daemon(rules.path(), &certs, &[on.name(), off.name()]);
    daemon.wait_ready().await;
    let reg = Registration::create(
        &admin,
        &format!("https://{addr}/mutate"),
        &certs.ca_pem(),
        &id,
    )
    .await;
    let on_pods: Api<Pod> = on.api(admin.clone());
    let off_pods: Api<Pod> = off.api(admin.clone());
    let unwatched_pods: Api<Pod> = unwatched.api(admin.clone());
    wait_active(&on_pods, &daemon).await;

    let cases: Vec<(&str, &Api<Pod>, TestPod, Vec<&str>)> = vec![
        (
            "both rules select it",
            &on_pods,
            TestPod::new("web")
                .label("app", "web")
                .label("tier", "frontend"),
            vec![HTTP, WARM],
        ),
        (
            "one rule selects it",
            &on_pods,
            TestPod::new("cart")
                .label("app", "cart")
                .label("tier", "frontend"),
            vec![HTTP],
        ),
        (
            "only the dry-run rule selects it",
            &on_pods,
            TestPod::new("batch").label("app", "batch"),
            vec![],
        ),
        (
            "declared gates are kept, in order, and not duplicated",
            &on_pods,
            TestPod::new("declared")
                .label("app", "web")
                .label("tier", "frontend")
                .gate(OTHER)
                .gate(WARM),
            vec![OTHER, WARM, HTTP],
        ),
        (
            "the pod opted out",
            &on_pods,
            TestPod::new("optout")
                .label("app", "web")
                .label("podgate.dev/inject", "disabled"),
            vec![],
        ),
        (
            "namespace not opted in",
            &off_pods,
            TestPod::new("web")
                .label("app", "web")
                .label("tier", "frontend"),
            vec![],
        ),
        (
            "the pod opted in, its namespace did not",
            &off_pods,
            TestPod::new("single")
                .label("app", "web")
                .label("tier", "frontend")
                .label("podgate.dev/inject", "enabled"),
            vec![HTTP, WARM],
        ),
        (
            "a namespace this podgate does not watch",
            &unwatched_pods,
            TestPod::new("web").label("app", "web"),
            vec![],
        ),
    ];
    for (what, pods, pod, want) in &cases {
        let created = pod.create(pods).await;
        assert_eq!(gates(&created), *want, "{what} (create response)");
        let stored = pods
            .get(&pod.name)
            .await
            .unwrap_or_else(|e| panic!("get {}: {e}", pod.name));
        assert_eq!(gates(&stored), *want, "{what} (stored)");
    }

    // Counted by result; every request timed.
    let patched = daemon
        .metric("podgate_webhook_requests_total{result=\"patched\"}")
        .await
        .unwrap_or(0.0);
    let unchanged = daemon
        .metric("podgate_webhook_requests_total{result=\"unchanged\"}")
        .await
        .unwrap_or(0.0);
    let timed = daemon
        .metric("podgate_webhook_duration_seconds_count")
        .await
        .unwrap_or(0.0);
    assert!(patched >= 4.0, "patched {patched}");
    assert!(unchanged >= 2.0, "unchanged {unchanged}");
    assert!(timed >= patched + unchanged, "timed {timed}");

    reg.delete(&admin).await;
}

#[tokio::test]
async fn a_reload_changes_what_is_injected_and_a_rejected_set_does_not() {
    let admin = ControlPlane::get().admin_client().await;
    let id = unique_suffix();
    let ns = TestNamespace::new("webhook-reload").await;
    label_namespace(
        &admin,
        ns.name(),
        &[(TEST_LABEL, id.as_str()), ("podgate.dev/inject", "enabled")],
    )
    .await;
    let certs = Certs::new();
    let rules = rules_dir(RULES);
    let (daemon, addr) = start_daemon(rules.path(), &certs, &[ns.name()]);
    daemon.wait_ready().await;
    let reg = Registration::create(
        &admin,
        &format!("https://{addr}/mutate"),
        &certs.ca_pem(),
        &id,
    )
    .await;
    let pods: Api<Pod> = ns.api(admin.clone());
    wait_active(&pods, &daemon).await;

    // The warm rule now covers every pod.
    std::fs::write(
        rules.path().join("rules.yaml"),
        RULES.replace("matchLabels: {app: web}", "matchLabels: {}"),
    )
    .expect("rewrite rules");
    let pod = TestPod::new("any").label("app", "batch");
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    wait_for(
        "the reloaded rules injected",
        Duration::from_secs(20),
        || {
            let p = pod.build();
            let pods = pods.clone();
            let dry = dry.clone();
            async move {
                let got = pods.create(&dry, &p).await.map_err(|e| e.to_string())?;
                if gates(&got) == [WARM] {
                    Ok(())
                } else {
                    Err(format!("gates {:?}", gates(&got)))
                }
            }
        },
    )
    .await;

    // A set that does not validate is not applied: injection follows the rules in force.
    std::fs::write(
        rules.path().join("rules.yaml"),
        "rules:\n  - name: x\n    bogus: 1\n",
    )
    .expect("write bad rules");
    wait_for("the bad set rejected", Duration::from_secs(20), || async {
        match daemon.metric("podgate_config_last_reload_successful").await {
            Some(0.0) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    let created = pod.create(&pods).await;
    assert_eq!(gates(&created), [WARM]);

    reg.delete(&admin).await;
}

#[tokio::test]
async fn pods_are_admitted_unchanged_while_podgate_is_down() {
    let admin = ControlPlane::get().admin_client().await;
    let id = unique_suffix();
    let ns = TestNamespace::new("webhook-down").await;
    label_namespace(
        &admin,
        ns.name(),
        &[(TEST_LABEL, id.as_str()), ("podgate.dev/inject", "enabled")],
    )
    .await;
    let certs = Certs::new();
    let rules = rules_dir(RULES);
    let (mut daemon, addr) = start_daemon(rules.path(), &certs, &[ns.name()]);
    daemon.wait_ready().await;
    let reg = Registration::create(
        &admin,
        &format!("https://{addr}/mutate"),
        &certs.ca_pem(),
        &id,
    )
    .await;
    let pods: Api<Pod> = ns.api(admin.clone());
    wait_active(&pods, &daemon).await;

    daemon.stop();
    // failurePolicy Ignore: the apiserver cannot reach the webhook and admits the pod as is.
    let pod = TestPod::new("while-down")
        .label("app", "web")
        .label("tier", "frontend")
        .create(&pods)
        .await;
    assert_eq!(gates(&pod), Vec::<String>::new());
    let declared = TestPod::new("declared-while-down")
        .label("app", "web")
        .gate(OTHER)
        .create(&pods)
        .await;
    assert_eq!(gates(&declared), [OTHER]);

    reg.delete(&admin).await;
}

#[tokio::test]
async fn a_malformed_review_gets_a_clear_error_and_serving_goes_on() {
    let ns = TestNamespace::new("webhook-malformed").await;
    let certs = Certs::new();
    let rules = rules_dir(RULES);
    let (daemon, addr) = start_daemon(rules.path(), &certs, &[ns.name()]);
    daemon.wait_ready().await;
    let client = tls_client(&certs.ca_pem());
    let url = format!("https://{addr}/mutate");

    for (body, want) in [
        (
            "{\"apiVersion\": ",
            "invalid AdmissionReview: the body is not",
        ),
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            "invalid AdmissionReview: it has no request",
        ),
        (
            r#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}"#,
            "only admission.k8s.io/v1 is served",
        ),
    ] {
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {body}: {e}\nlog:\n{}", daemon.log()));
        assert_eq!(resp.status().as_u16(), 400, "{body}");
        let text = resp.text().await.expect("body");
        assert!(text.contains(want), "{body}: {text}");
    }

    // Still serving, on a fresh connection, and a proper review is answered.
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "b3d1c7f0-0000-4000-8000-000000000001",
            "kind": { "group": "", "version": "v1", "kind": "Pod" },
            "namespace": ns.name(),
            "operation": "CREATE",
            "object": serde_json::to_value(TestPod::new("p").label("app", "web").build())
                .expect("pod json"),
        }
    });
    let resp = tls_client(&certs.ca_pem())
        .post(&url)
        .header("content-type", "application/json")
        .body(review.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST review: {e}\nlog:\n{}", daemon.log()));
    assert_eq!(resp.status().as_u16(), 200);
    let answer: Value =
        serde_json::from_str(&resp.text().await.expect("body")).expect("JSON answer");
    assert_eq!(
        answer["response"]["uid"],
        json!("b3d1c7f0-0000-4000-8000-000000000001")
    );
    assert_eq!(answer["response"]["allowed"], json!(true));
    assert_eq!(answer["response"]["patchType"], json!("JSONPatch"));

    assert_eq!(
        daemon
            .metric("podgate_webhook_requests_total{result=\"invalid\"}")
            .await,
        Some(3.0)
    );
    assert!(daemon.log().contains("invalid AdmissionReview"));
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    use podgate::webhook::server::{Handler, Server, TlsFiles};

    support::install_crypto_provider();
    let first = Certs::new();
    let live = tempfile::tempdir().expect("tempdir");
    let files = TlsFiles {
        cert: live.path().join("tls.crt"),
        key: live.path().join("tls.key"),
    };
    std::fs::copy(first.path("tls.crt"), &files.cert).expect("copy cert");
    std::fs::copy(first.path("tls.key"), &files.key).expect("copy key");
    let (_rules_tx, rules_rx) = tokio::sync::watch::channel(podgate::rules::RuleSet::default());
    let handler = Handler::new(rules_rx, podgate::webhook::Scope::default());
    let server = Server::bind("127.0.0.1:0".parse().expect("addr"), files.clone(), handler)
        .await
        .expect("bind");
    let url = format!("https://{}/mutate", server.local_addr().expect("addr"));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stop_rx.await;
    }));

    let reachable = |ca: Vec<u8>, url: String| async move {
        // A GET is answered 405 once TLS is through; a certificate error fails the send.
        tls_client(&ca)
            .get(&url)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| format!("{e:?}"))
    };
    assert_eq!(reachable(first.ca_pem(), url.clone()).await, Ok(405));

    // A certificate from another CA, written the way scripts/webhook-certs writes it.
    let second = Certs::new();
    assert!(
        reachable(second.ca_pem(), url.clone()).await.is_err(),
        "the second CA must not verify the first certificate"
    );
    replace(&second.path("tls.crt"), &files.cert);
    replace(&second.path("tls.key"), &files.key);
    wait_for(
        "the renewed certificate served",
        Duration::from_secs(30),
        || reachable(second.ca_pem(), url.clone()),
    )
    .await;

    // A broken renewal keeps the last good pair.
    std::fs::write(
        &files.key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("write bad key");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(reachable(second.ca_pem(), url.clone()).await, Ok(405));

    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}

/// Replaces `to` with a copy of `from` in one rename.
fn replace(from: &Path, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).expect("copy");
    std::fs::rename(&tmp, to).expect("rename");
}

#[test]
fn webhook_flags_are_checked_before_anything_starts() {
    let podgate = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_podgate"))
            .arg("run")
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("run podgate")
    };
    let o = podgate(&["--webhook-addr", "127.0.0.1:0"]);
    assert_eq!(o.status.code(), Some(64));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--webhook-cert-file"), "{err}");

    // A certificate file that is not there stops the daemon at startup, naming the file.
    let rules = rules_dir(RULES);
    let kubeconfig = ControlPlane::get()
        .podgate_kubeconfig_path()
        .display()
        .to_string();
    let missing = rules.path().join("no-such.crt").display().to_string();
    let o = podgate(&[
        "--kubeconfig",
        &kubeconfig,
        "--rules-dir",
        &rules.path().display().to_string(),
        "--metrics-addr",
        &free_addr().to_string(),
        "--webhook-addr",
        "127.0.0.1:0",
        "--webhook-cert-file",
        &missing,
        "--webhook-key-file",
        &missing,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("webhook certificate {missing}")),
        "{err}"
    );
}

fn overlay_yaml(dir: &str, file: &str) -> Value {
    let path = repo().join("deploy/overlays").join(dir).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The overlay's pieces name each other consistently: the Deployment patch sets the daemon's
/// webhook variables to the mounted Secret's files and exposes the port the Service targets,
/// and the configuration calls that Service on the path podgate serves.
#[test]
fn shipped_overlay_is_wired_together() {
    let patch = overlay_yaml("webhook", "deployment-webhook.yaml");
    let pod = &patch["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["name"], json!("podgate"));
    let env: BTreeMap<String, String> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_string(),
                e["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mount = container["volumeMounts"][0]["mountPath"]
        .as_str()
        .expect("mountPath");
    assert_eq!(
        env.get("PODGATE_WEBHOOK_CERT_FILE"),
        Some(&format!("{mount}/tls.crt"))
    );
    assert_eq!(
        env.get("PODGATE_WEBHOOK_KEY_FILE"),
        Some(&format!("{mount}/tls.key"))
    );
    assert_eq!(
        pod["volumes"][0]["name"],
        container["volumeMounts"][0]["name"]
    );
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        json!("podgate-webhook-tls")
    );
    let addr: SocketAddr = env
        .get("PODGATE_WEBHOOK_ADDR")
        .expect("PODGATE_WEBHOOK_ADDR")
        .parse()
        .expect("a socket address");
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"], json!(addr.port()));

    let service = overlay_yaml("webhook", "service.yaml");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port["name"]);

    let cfg = overlay_yaml("webhook", "mutatingwebhookconfiguration.yaml");
    for w in cfg["webhooks"].as_array().expect("webhooks") {
        let svc = &w["clientConfig"]["service"];
        assert_eq!(svc["name"], service["metadata"]["name"]);
        assert_eq!(svc["namespace"], service["metadata"]["namespace"]);
        assert_eq!(svc["port"], service["spec"]["ports"][0]["port"]);
        assert_eq!(svc["path"], json!(podgate::webhook::PATH));
        assert_eq!(w["failurePolicy"], json!("Ignore"));
        assert_eq!(w["sideEffects"], json!("None"));
        assert_eq!(w["timeoutSeconds"], json!(5));
        let excluded = w["namespaceSelector"]["matchExpressions"]
            .as_array()
            .expect("matchExpressions")
            .iter()
            .any(|e| {
                e["key"] == json!("kubernetes.io/metadata.name")
                    && e["operator"] == json!("NotIn")
                    && e["values"] == json!([service["metadata"]["namespace"]])
            });
        assert!(excluded, "{} must exclude podgate's namespace", w["name"]);
    }

    // cert-manager: the annotated Certificate writes the Secret the Deployment mounts.
    let inject = overlay_yaml("webhook-cert-manager", "inject-ca.yaml");
    let from = inject["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        .as_str()
        .expect("inject-ca-from");
    let path = repo().join("deploy/overlays/webhook-cert-manager/certificates.yaml");
    let text = std::fs::read_to_string(&path).expect("certificates.yaml");
    let docs: Vec<Value> = text
        .split("\n---\n")
        .map(|d| serde_saphyr::from_str(d).expect("a YAML document"))
        .collect();
    let cert = docs
        .iter()
        .find(|d| {
            d["kind"] == json!("Certificate")
                && format!(
                    "{}/{}",
                    d["metadata"]["namespace"].as_str().unwrap_or_default(),
                    d["metadata"]["name"].as_str().unwrap_or_default()
                ) == from
        })
        .unwrap_or_else(|| panic!("no Certificate {from} in {}", path.display()));
    assert_eq!(cert["spec"]["secretName"], json!("podgate-webhook-tls"));
    let names = cert["spec"]["dnsNames"].as_array().expect("dnsNames");
    let svc_name = format!(
        "{}.{}.svc",
        service["metadata"]["name"].as_str().unwrap_or_default(),
        service["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
    );
    assert!(names.contains(&json!(svc_name)), "{names:?}");
}
