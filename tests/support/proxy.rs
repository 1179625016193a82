//! A TCP proxy in front of the API server that a test can cut, to play an outage.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::ControlPlane;

/// A TCP proxy to the API server that can be cut (refusing and dropping connections) and
/// restored, to play an unreachable API server.
pub struct Proxy {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("proxy: binding: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("proxy: address: {e}"));
        let (up, up_rx) = watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut up_rx = up_rx.clone();
                if !*up_rx.borrow() {
                    continue; // dropped: connection reset
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = up_rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy { addr, up }
    }

    pub fn set_up(&self, up: bool) {
        let _ = self.up.send(up);
    }
}

impl Proxy {
    /// A proxy in front of the test control plane's API server.
    pub async fn to_apiserver() -> Proxy {
        let upstream: SocketAddr = ControlPlane::get()
            .apiserver_url()
            .trim_start_matches("https://")
            .parse()
            .unwrap_or_else(|e| panic!("apiserver address: {e}"));
        Proxy::start(upstream).await
    }

    /// A copy of `kubeconfig` whose server is this proxy, written into `dir`.
    pub fn kubeconfig(&self, kubeconfig: &Path, dir: &Path) -> PathBuf {
        let text = std::fs::read_to_string(kubeconfig)
            .unwrap_or_else(|e| panic!("reading {}: {e}", kubeconfig.display()));
        let upstream = ControlPlane::get().apiserver_url().to_string();
        let out = dir.join("via-proxy.kubeconfig");
        std::fs::write(
            &out,
            text.replace(&upstream, &format!("https://{}", self.addr)),
        )
        .unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
        out
    }
}

/// The watch event the API server sends when a watch's resourceVersion is too old (etcd
/// compacted it, or the watch cache moved on): the client must list again.
pub const GONE_EVENT: &str = concat!(
    r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"#,
    r#""status":"Failure","message":"too old resource version: 1 (2)","#,
    r#""reason":"Expired","code":410}}"#,
    "\n"
);

/// The same as an HTTP answer to a watch request: status 410 with this body.
pub const GONE_STATUS: &str = concat!(
    r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","#,
    r#""message":"too old resource version: 1 (2)","reason":"Expired","code":410}"#
);

/// What an [`HttpProxy`] has seen and done.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct HttpProxyStats {
    /// List requests (GET of a collection without `watch`), by path.
    pub lists: std::collections::BTreeMap<String, u32>,
    /// Watch requests, by path.
    pub watches: std::collections::BTreeMap<String, u32>,
    /// Watches the proxy ended with the 410 event, open ones and new ones.
    pub gone_events: u32,
    /// Watch requests the proxy refused with HTTP 410.
    pub gone_statuses: u32,
}

impl HttpProxyStats {
    /// List requests whose path ends with `/{resource}` (e.g. "pods").
    pub fn lists_of(&self, resource: &str) -> u32 {
        count_of(&self.lists, resource)
    }

    pub fn watches_of(&self, resource: &str) -> u32 {
        count_of(&self.watches, resource)
    }
}

fn count_of(map: &std::collections::BTreeMap<String, u32>, resource: &str) -> u32 {
    let suffix = format!("/{resource}");
    map.iter()
        .filter(|(path, _)| path.ends_with(&suffix))
        .map(|(_, n)| n)
        .sum()
}

struct HttpProxyState {
    upstream: String,
    client: reqwest::Client,
    /// Bumped to end every open watch: with the 410 event (true) or cleanly (false), as the
    /// API server ends a watch when its timeout is up.
    expire: watch::Sender<(u64, bool)>,
    /// The next this many watch requests get the 410 event at once.
    gone_events_left: std::sync::atomic::AtomicU32,
    /// Paths whose watches are refused with HTTP 410 until the client lists them again.
    stale: std::sync::Mutex<std::collections::BTreeSet<String>>,
    stats: std::sync::Mutex<HttpProxyStats>,
}

impl HttpProxyState {
    fn stats(&self) -> std::sync::MutexGuard<'_, HttpProxyStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An HTTP proxy in front of the API server, for faults a TCP proxy cannot play: it speaks
/// plain HTTP to the client (the kubeconfig from [`HttpProxy::kubeconfig`]) and HTTPS to the
/// API server, forwards everything, and can end watches with `410 Gone` as the API server does
/// when a watch's resourceVersion has expired. Stops when dropped.
pub struct HttpProxy {
    pub addr: SocketAddr,
    upstream: String,
    state: std::sync::Arc<HttpProxyState>,
    server: tokio::task::JoinHandle<()>,
}

impl HttpProxy {
    /// A proxy to the API server of `cp`.
    pub async fn start(cp: &ControlPlane) -> HttpProxy {
        super::install_crypto_provider();
        let ca_file = cp
            .var("PODGATE_TEST_CA_FILE")
            .unwrap_or_else(|| panic!("{} names no CA file", cp.env_file().display()));
        let pem = std::fs::read(ca_file).unwrap_or_else(|e| panic!("reading {ca_file}: {e}"));
        let ca = reqwest::Certificate::from_pem(&pem)
            .unwrap_or_else(|e| panic!("CA certificate {ca_file}: {e}"));
        // No timeout: watches last minutes. No decompression: bodies pass through as they are.
        let client = reqwest::Client::builder()
            .tls_certs_only([ca])
            .no_gzip()
            .build()
            .unwrap_or_else(|e| panic!("proxy: HTTPS client: {e}"));
        let upstream = cp.apiserver_url().to_string();
        let (expire, _) = watch::channel((0u64, false));
        let state = std::sync::Arc::new(HttpProxyState {
            upstream: upstream.clone(),
            client,
            expire,
            gone_events_left: Default::default(),
            stale: Default::default(),
            stats: Default::default(),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("proxy: binding: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("proxy: address: {e}"));
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("HTTP proxy {addr}: {e}");
            }
        });
        HttpProxy {
            addr,
            upstream,
            state,
            server,
        }
    }

    /// A copy of `kubeconfig` whose server is this proxy (plain HTTP), written into `dir`.
    pub fn kubeconfig(&self, kubeconfig: &Path, dir: &Path) -> PathBuf {
        let text = std::fs::read_to_string(kubeconfig)
            .unwrap_or_else(|e| panic!("reading {}: {e}", kubeconfig.display()));
        assert!(
            text.contains(&self.upstream),
            "{} does not name {}",
            kubeconfig.display(),
            self.upstream
        );
        let out = dir.join("via-http-proxy.kubeconfig");
        std::fs::write(
            &out,
            text.replace(&self.upstream, &format!("http://{}", self.addr)),
        )
        .unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
        out
    }

    /// Ends every open watch with the 410 event, and answers the next `then` watch requests
    /// with it too (so the client's first retries fail as well).
    pub fn expire_watches(&self, then: u32) {
        self.state
            .gone_events_left
            .store(then, std::sync::atomic::Ordering::SeqCst);
        self.state.expire.send_modify(|(g, gone)| {
            *g += 1;
            *gone = true;
        });
    }

    /// Plays a compaction: every resourceVersion the client has is too old now. Watches of
    /// every path watched so far are refused with HTTP 410, as the API server refuses to
    /// start a watch from a resourceVersion it no longer has, until the client lists that
    /// path again. The open watches end cleanly, as at the end of a watch's timeout, so the
    /// client starts new ones from where it was: only a fresh list gets it watching again.
    pub fn compact(&self) {
        let watched: Vec<String> = self.state.stats().watches.keys().cloned().collect();
        self.state
            .stale
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(watched);
        self.state.expire.send_modify(|(g, gone)| {
            *g += 1;
            *gone = false;
        });
    }

    pub fn stats(&self) -> HttpProxyStats {
        self.state.stats().clone()
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn take_one(counter: &std::sync::atomic::AtomicU32) -> bool {
    use std::sync::atomic::Ordering;
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

async fn forward(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<HttpProxyState>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::body::Body;
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;

    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default();
    let is_watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    if parts.method == axum::http::Method::GET {
        let mut stats = state.stats();
        let map = if is_watch {
            &mut stats.watches
        } else {
            &mut stats.lists
        };
        *map.entry(path.clone()).or_default() += 1;
    }
    let stale = {
        let mut stale = state.stale.lock().unwrap_or_else(|p| p.into_inner());
        if parts.method == axum::http::Method::GET && !is_watch {
            stale.remove(&path);
        }
        is_watch && stale.contains(&path)
    };
    if stale {
        state.stats().gone_statuses += 1;
        return (
            StatusCode::GONE,
            [(header::CONTENT_TYPE, "application/json")],
            GONE_STATUS,
        )
            .into_response();
    }
    if is_watch && take_one(&state.gone_events_left) {
        state.stats().gone_events += 1;
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            GONE_EVENT,
        )
            .into_response();
    }
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("proxy: body: {e}")).into_response(),
    };
    let url = match parts.uri.query() {
        Some(q) => format!("{}{path}?{q}", state.upstream),
        None => format!("{}{path}", state.upstream),
    };
    let mut upstream = state.client.request(parts.method.clone(), &url).body(body);
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    let response = match upstream.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("proxy: {e}")).into_response(),
    };
    let status = response.status();
    let mut headers = response.headers().clone();
    for hop in [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
    ] {
        headers.remove(hop);
    }
    let body = if is_watch && status.is_success() {
        // Watched from now on: the next expiry ends this one.
        let mut expire = state.expire.subscribe();
        expire.borrow_and_update();
        Body::from_stream(watch_stream(response, expire, state.clone()))
    } else {
        Body::from_stream(response.bytes_stream())
    };
    let mut out = axum::response::Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    if is_watch {
        out.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    out
}

/// A watch response passed through line by line (one event per line), ended when `expire`
/// changes (with the 410 event if it says so).
fn watch_stream(
    response: reqwest::Response,
    expire: watch::Receiver<(u64, bool)>,
    state: std::sync::Arc<HttpProxyState>,
) -> impl futures::Stream<Item = Result<axum::body::Bytes, std::io::Error>> + Send + 'static {
    use futures::StreamExt;
    struct St {
        upstream: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
        expire: watch::Receiver<(u64, bool)>,
        state: std::sync::Arc<HttpProxyState>,
        buf: Vec<u8>,
        done: bool,
    }
    let st = St {
        upstream: response.bytes_stream().boxed(),
        expire,
        state,
        buf: Vec::new(),
        done: false,
    };
    futures::stream::unfold(st, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            tokio::select! {
                changed = st.expire.changed() => {
                    st.done = true;
                    if changed.is_ok() && st.expire.borrow_and_update().1 {
                        st.state.stats().gone_events += 1;
                        // Whole events only went out, so this starts a line of its own.
                        return Some((Ok(axum::body::Bytes::from_static(GONE_EVENT.as_bytes())), st));
                    }
                }
                chunk = st.upstream.next() => match chunk {
                    Some(Ok(bytes)) => {
                        st.buf.extend_from_slice(&bytes);
                        if let Some(end) = st.buf.iter().rposition(|b| *b == b'\n') {
                            let lines: Vec<u8> = st.buf.drain(..=end).collect();
                            return Some((Ok(axum::body::Bytes::from(lines)), st));
                        }
                    }
                    Some(Err(e)) => {
                        st.done = true;
                        return Some((Err(std::io::Error::other(e)), st));
                    }
                    None => {
                        st.done = true;
                        let rest = std::mem::take(&mut st.buf);
                        if !rest.is_empty() {
                            return Some((Ok(axum::body::Bytes::from(rest)), st));
                        }
                    }
                },
            }
        }
    })
}
