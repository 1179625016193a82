//! The control plane the tests run against, and a fresh namespace per test.
//!
//! `scripts/test` starts one control plane and passes its env file in `PODGATE_TEST_ENV`.
//! Without it (e.g. `cargo test --test x` by hand) the first test in a binary runs
//! `scripts/control-plane start`, which starts an instance or reuses the running one; it keeps
//! running after the tests (`scripts/control-plane stop` ends it).
//!
//! A test that stops etcd or the apiserver must not do it to the shared instance: it starts
//! a [`PrivateControlPlane`] of its own (same cached binaries, its own state dir and ports).
//!
//! Every instance runs kube-controller-manager (deployment, replicaset and endpointslice
//! controllers). The hollow-node kubelet runs only in instances started inside the network
//! namespace `scripts/test` creates; [`ControlPlane::hollow_node`] fails the test elsewhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Connection details of the running control plane (parsed from its env file).
#[derive(Debug)]
pub struct ControlPlane {
    env_file: PathBuf,
    vars: BTreeMap<String, String>,
    apiserver: String,
    admin_kubeconfig: PathBuf,
    podgate_kubeconfig: PathBuf,
}

static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

impl ControlPlane {
    /// The control plane for this test binary, started or reused on first use. Fails the test
    /// with the reason if there is none and none can be started.
    pub fn get() -> &'static ControlPlane {
        match CONTROL_PLANE.get_or_init(Self::locate) {
            Ok(cp) => cp,
            Err(reason) => panic!("no Kubernetes control plane for the tests: {reason}"),
        }
    }

    fn locate() -> Result<ControlPlane, String> {
        let env_file = match std::env::var_os("PODGATE_TEST_ENV") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => Self::start_with_script()?,
        };
        Self::from_env_file(&env_file)
    }

    fn start_with_script() -> Result<PathBuf, String> {
        Self::run_start(&[])
    }

    /// `scripts/control-plane start ARGS`; returns the env file path it prints.
    fn run_start(args: &[&str]) -> Result<PathBuf, String> {
        let script = script_path();
        // The script's own progress goes to stderr, which the test harness shows on failure.
        let output = Command::new(&script)
            .arg("start")
            .args(args)
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} start failed ({}); its messages are above",
                script.display(),
                output.status
            ));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let path = stdout.lines().last().map(str::trim).unwrap_or_default();
        if path.is_empty() {
            return Err(format!(
                "{} start printed no env file path",
                script.display()
            ));
        }
        Ok(PathBuf::from(path))
    }

    fn from_env_file(env_file: &Path) -> Result<ControlPlane, String> {
        let text = std::fs::read_to_string(env_file).map_err(|e| {
            format!(
                "cannot read the control plane env file {} ({e}); is it running? \
                 (scripts/control-plane start)",
                env_file.display()
            )
        })?;
        let vars: BTreeMap<String, String> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let var = |key: &str| {
            vars.get(key)
                .cloned()
                .ok_or_else(|| format!("{} has no {key}", env_file.display()))
        };
        let cp = ControlPlane {
            env_file: env_file.to_path_buf(),
            apiserver: var("PODGATE_TEST_APISERVER")?,
            admin_kubeconfig: PathBuf::from(var("PODGATE_TEST_ADMIN_KUBECONFIG")?),
            podgate_kubeconfig: PathBuf::from(var("PODGATE_TEST_PODGATE_KUBECONFIG")?),
            vars,
        };
        Ok(cp)
    }

    /// `https://127.0.0.1:<port>` of the kube-apiserver.
    pub fn apiserver_url(&self) -> &str {
        &self.apiserver
    }

    pub fn env_file(&self) -> &Path {
        &self.env_file
    }

    /// A variable of the env file (e.g. `PODGATE_TEST_ADMIN_TOKEN`).
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Kubeconfig of the `system:masters` admin user.
    pub fn admin_kubeconfig_path(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// Kubeconfig of the user `system:serviceaccount:podgate:podgate`, which holds exactly the
    /// permissions `deploy/base` grants podgate.
    pub fn podgate_kubeconfig_path(&self) -> &Path {
        &self.podgate_kubeconfig
    }

    /// A client with cluster-admin rights (creates namespaces, plays the kubelet).
    pub async fn admin_client(&self) -> Client {
        client_from(&self.admin_kubeconfig).await
    }

    /// A client with podgate's RBAC only.
    pub async fn podgate_client(&self) -> Client {
        client_from(&self.podgate_kubeconfig).await
    }

    /// The instance's state dir (pid files and logs of its processes).
    pub fn state_dir(&self) -> PathBuf {
        self.var("PODGATE_TEST_STATE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("{} has no PODGATE_TEST_STATE_DIR", self.env_file.display()))
    }

    /// The name of the hollow-node kubelet's node. Fails the test when this control plane has
    /// none: the hollow kubelet gives every pod the private address 192.168.192.168, so it only
    /// runs inside the network namespace `scripts/test` creates for the tests.
    pub fn hollow_node(&self) -> &str {
        match self.var("PODGATE_TEST_HOLLOW_NODE") {
            Some(node) if !node.is_empty() => node,
            _ => panic!(
                "this test needs the hollow-node kubelet, which is not running in the control \
                 plane of {} ({}). It runs only inside the network namespace scripts/test \
                 creates: run the test with scripts/test (see docs/testing.md, \
                 \"Tests on the real kubelet\")",
                self.env_file.display(),
                self.var("PODGATE_TEST_HOLLOW_NODE_UNAVAILABLE")
                    .filter(|r| !r.is_empty())
                    .unwrap_or("this control plane's env file does not say why")
            ),
        }
    }

    /// The first two octets of the stand-in pod network, a /16 local to lo inside the network
    /// namespace `scripts/test` creates (pods behind a Service need such addresses: the
    /// EndpointSlice API refuses loopback ones). Fails the test where there is none.
    pub fn pod_network(&self) -> [u8; 2] {
        let unavailable = || {
            panic!(
                "this test needs the stand-in pod network (addresses for pods behind a Service; \
                 the EndpointSlice API refuses loopback ones), which the control plane of {} \
                 does not have ({}). It exists only inside the network namespace scripts/test \
                 creates: run the test with scripts/test (see docs/testing.md, \
                 \"Tests on the real kubelet\")",
                self.env_file.display(),
                self.var("PODGATE_TEST_POD_NETWORK_UNAVAILABLE")
                    .filter(|r| !r.is_empty())
                    .unwrap_or("this control plane's env file does not say why")
            )
        };
        let Some(net) = self
            .var("PODGATE_TEST_POD_NETWORK")
            .filter(|n| !n.is_empty())
        else {
            unavailable()
        };
        let octets: Option<Vec<u8>> = net
            .strip_suffix(".0.0/16")
            .map(|prefix| prefix.split('.').map(|o| o.parse().ok()).collect())
            .and_then(|o: Option<Vec<u8>>| o);
        match octets.as_deref() {
            Some(&[a, b]) => [a, b],
            _ => panic!("PODGATE_TEST_POD_NETWORK={net}: expected a.b.0.0/16"),
        }
    }

    /// `Ok` while the instance's `component` runs; otherwise why not, with its log tail.
    pub fn check_running(&self, component: Component) -> Result<(), String> {
        let state = self.state_dir();
        let name = component.name();
        let pid_file = state.join(format!("{name}.pid"));
        let log = state.join(format!("{name}.log"));
        let why = match process_running(&pid_file) {
            Ok(()) => return Ok(()),
            Err(why) => why,
        };
        Err(format!(
            "{name} of the control plane in {} is not running ({why}); last lines of {}:\n{}",
            state.display(),
            log.display(),
            log_tail(&log, 40)
        ))
    }

    /// Fails the test, with the log tail, unless kube-controller-manager runs. Rollout tests call
    /// it while they wait, so a dead controller manager is named instead of a rollout that
    /// merely never happened.
    pub fn assert_controller_manager_running(&self) {
        if let Err(why) = self.check_running(Component::ControllerManager) {
            panic!("{why}");
        }
    }
}

/// Whether the process recorded in `pid_file` ("PID BINARY") still runs that binary.
fn process_running(pid_file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(pid_file)
        .map_err(|e| format!("no pid file {}: {e}", pid_file.display()))?;
    let mut fields = text.split_whitespace();
    let (Some(pid), Some(binary)) = (fields.next(), fields.next()) else {
        return Err(format!(
            "unreadable pid file {}: {text:?}",
            pid_file.display()
        ));
    };
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map_err(|e| format!("pid {pid} is gone ({e})"))?;
    let exe = exe.to_string_lossy();
    if exe.trim_end_matches(" (deleted)") != binary {
        return Err(format!("pid {pid} now runs {exe}, not {binary}"));
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let process_state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if process_state == Some("Z") {
        return Err(format!("pid {pid} has exited"));
    }
    Ok(())
}

/// The last `lines` lines of a log file (or why it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/control-plane")
}

/// A control plane of one test's own: etcd, kube-apiserver and kube-controller-manager on other
/// loopback ports with their own state dir (and, with [`PrivateControlPlane::start_with_hollow_node`],
/// a hollow-node kubelet), which the test may stop and start ([`PrivateControlPlane::down`],
/// [`PrivateControlPlane::up`]) without disturbing the tests that share the other one.
/// Stopped and removed when dropped. Derefs to [`ControlPlane`] for its clients and paths.
pub struct PrivateControlPlane {
    cp: ControlPlane,
    state: tempfile::TempDir,
}

/// A process of a control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Etcd,
    KubeApiserver,
    ControllerManager,
    /// kubemark's hollow-node kubelet (only inside scripts/test's network namespace).
    HollowKubelet,
}

impl Component {
    /// The name `scripts/control-plane` knows it by (and of its pid and log files).
    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::KubeApiserver => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
            Component::HollowKubelet => "hollow-kubelet",
        }
    }
}

impl PrivateControlPlane {
    /// Starts a fresh instance without a kubelet (blocking the calling thread for the few
    /// seconds it takes).
    pub fn start() -> PrivateControlPlane {
        PrivateControlPlane::start_with(&["--no-hollow-node"])
    }

    /// As [`PrivateControlPlane::start`], with a hollow-node kubelet of its own (e.g. for a test
    /// that restarts the kubelet). Fails the test outside scripts/test's network namespace.
    pub fn start_with_hollow_node() -> PrivateControlPlane {
        let cp = PrivateControlPlane::start_with(&[]);
        cp.hollow_node();
        cp
    }

    fn start_with(flags: &[&str]) -> PrivateControlPlane {
        let state = tempfile::Builder::new()
            .prefix("podgate-private-cp.")
            .tempdir()
            .unwrap_or_else(|e| panic!("private control plane: state dir: {e}"));
        let dir = state.path().to_string_lossy().into_owned();
        let mut args = vec!["--state", dir.as_str()];
        args.extend_from_slice(flags);
        let cp = ControlPlane::run_start(&args)
            .and_then(|env| ControlPlane::from_env_file(&env))
            .unwrap_or_else(|e| panic!("private control plane in {dir}: {e}"));
        PrivateControlPlane { cp, state }
    }

    /// Stops one process, keeping the data, ports and certificates (`scripts/control-plane
    /// down`). Runs on a blocking thread so the test's servers keep answering.
    pub async fn down(&self, component: Component) {
        self.script("down", component).await;
    }

    /// Starts it again as it was and waits until it is healthy (`scripts/control-plane up`).
    pub async fn up(&self, component: Component) {
        self.script("up", component).await;
    }

    async fn script(&self, verb: &'static str, component: Component) {
        let dir = self.state.path().to_path_buf();
        let output = tokio::task::spawn_blocking(move || {
            Command::new(script_path())
                .args([verb, component.name(), "--state"])
                .arg(&dir)
                .output()
        })
        .await
        .unwrap_or_else(|e| panic!("control-plane {verb}: {e}"))
        .unwrap_or_else(|e| panic!("control-plane {verb}: cannot run the script: {e}"));
        assert!(
            output.status.success(),
            "control-plane {verb} {}: {}\n{}",
            component.name(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl std::ops::Deref for PrivateControlPlane {
    type Target = ControlPlane;
    fn deref(&self) -> &ControlPlane {
        &self.cp
    }
}

impl Drop for PrivateControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(script_path())
            .arg("stop")
            .arg("--state")
            .arg(self.state.path())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A kube client from a kubeconfig file. Clients belong to the tokio runtime that made them,
/// so each test makes its own.
pub async fn client_from(kubeconfig: &Path) -> Client {
    super::install_crypto_provider();
    let kc = Kubeconfig::read_from(kubeconfig)
        .unwrap_or_else(|e| panic!("reading kubeconfig {}: {e}", kubeconfig.display()));
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("loading kubeconfig {}: {e}", kubeconfig.display()));
    Client::try_from(config)
        .unwrap_or_else(|e| panic!("client from kubeconfig {}: {e}", kubeconfig.display()))
}

/// A namespace of its own for one test, named `<prefix>-<unique suffix>`.
///
/// Namespaces are not deleted: without a controller manager a deleted namespace stays
/// Terminating forever, and a unique name is all the isolation a test needs.
#[derive(Clone)]
pub struct TestNamespace {
    name: String,
    admin: Client,
}

impl TestNamespace {
    pub async fn new(prefix: &str) -> TestNamespace {
        TestNamespace::new_on(ControlPlane::get(), prefix).await
    }

    /// As [`TestNamespace::new`], on the control plane `cp` (e.g. a [`PrivateControlPlane`]).
    pub async fn new_on(cp: &ControlPlane, prefix: &str) -> TestNamespace {
        let admin = cp.admin_client().await;
        let name = namespace_name(prefix, &super::unique_suffix());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([(
                    "podgate.dev/test".to_string(),
                    "true".to_string(),
                )])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating test namespace {name}: {e}"));
        TestNamespace { name, admin }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The admin client the namespace was created with.
    pub fn admin_client(&self) -> Client {
        self.admin.clone()
    }

    /// An `Api` for namespaced resources of this namespace through `client`.
    pub fn api<K>(&self, client: Client) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(client, &self.name)
    }
}

/// A valid namespace name (DNS label: lowercase alphanumerics and '-', at most 63 chars).
fn namespace_name(prefix: &str, suffix: &str) -> String {
    let mut clean: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    clean = clean.trim_matches('-').to_string();
    if clean.is_empty() {
        clean = "test".to_string();
    }
    let room = 63usize.saturating_sub(suffix.len() + 1);
    clean.truncate(room);
    format!("{}-{suffix}", clean.trim_end_matches('-'))
}
