//! A pod's metrics endpoint: an HTTP server on a loopback address serving `/metrics` with
//! whatever the test sets — body, status, content type, delay — at any time. The body is fixed
//! text ([`MetricsEndpoint::set_body`]) or computed for each request
//! ([`MetricsEndpoint::set_body_fn`], e.g. counters that grow with time).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What `/metrics` answers.
#[derive(Clone, Debug)]
pub struct MetricsResponse {
    pub body: String,
    pub status: u16,
    pub content_type: String,
    pub delay: Duration,
}

impl Default for MetricsResponse {
    fn default() -> Self {
        MetricsResponse {
            body: String::new(),
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8".to_string(),
            delay: Duration::ZERO,
        }
    }
}

/// Computes the body of one answer (called for every request, while it is set).
pub type BodyFn = Arc<dyn Fn() -> String + Send + Sync>;

struct Shared {
    response: Mutex<MetricsResponse>,
    body_fn: Mutex<Option<BodyFn>>,
    requests: AtomicU64,
}

/// A running endpoint; stops when dropped.
pub struct MetricsEndpoint {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl MetricsEndpoint {
    /// Listens on `ip` (e.g. 127.0.0.7) at a free port, answering `200` with an empty body
    /// until told otherwise.
    pub async fn start(ip: Ipv4Addr) -> MetricsEndpoint {
        MetricsEndpoint::start_on(ip, 0).await
    }

    /// Listens on `ip:port` (0: a free port), e.g. to serve a pod that moved to another
    /// address on the port its spec declares.
    pub async fn start_on(ip: Ipv4Addr, port: u16) -> MetricsEndpoint {
        MetricsEndpoint::try_start_on(ip, port)
            .await
            .unwrap_or_else(|e| panic!("metrics endpoint: binding {ip}:{port}: {e}"))
    }

    /// As [`MetricsEndpoint::start_on`], returning the error when `ip:port` cannot be bound.
    pub async fn try_start_on(ip: Ipv4Addr, port: u16) -> std::io::Result<MetricsEndpoint> {
        let listener = TcpListener::bind((ip, port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            response: Mutex::new(MetricsResponse::default()),
            body_fn: Mutex::new(None),
            requests: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/metrics", get(serve_metrics))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            // Ends only when the task is aborted (drop) or the runtime shuts down.
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("metrics endpoint {addr}: server error: {e}");
            }
        });
        Ok(MetricsEndpoint {
            addr,
            shared,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ip(&self) -> Ipv4Addr {
        match self.addr {
            SocketAddr::V4(a) => *a.ip(),
            // Bound to an Ipv4Addr, so never V6.
            SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://ip:port/metrics`
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// Serves `body` from now on (and no longer a body function).
    pub fn set_body(&self, body: impl Into<String>) {
        self.lock().body = body.into();
        *lock(&self.shared.body_fn) = None;
    }

    /// Serves what `body` returns, computed for each request, from now on.
    pub fn set_body_fn(&self, body: BodyFn) {
        *lock(&self.shared.body_fn) = Some(body);
    }

    pub fn set_status(&self, status: u16) {
        self.lock().status = status;
    }

    pub fn set_content_type(&self, content_type: impl Into<String>) {
        self.lock().content_type = content_type.into();
    }

    /// Delays every answer (to test scrape timeouts).
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    pub fn response(&self) -> MetricsResponse {
        self.lock().clone()
    }

    /// Requests to `/metrics` served so far (counted on arrival, before any delay).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, MetricsResponse> {
        lock(&self.shared.response)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread may poison the lock; the data is still fine to use.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve_metrics(State(shared): State<Arc<Shared>>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let mut response = lock(&shared.response).clone();
    let body_fn = lock(&shared.body_fn).clone();
    if let Some(body_fn) = body_fn {
        response.body = body_fn();
    }
    if !response.delay.is_zero() {
        tokio::time::sleep(response.delay).await;
    }
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, response.content_type)],
        response.body,
    )
        .into_response()
}
