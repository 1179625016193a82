//! A pod's metrics endpoint: an HTTP server on a loopback address serving `/metrics` with
//! whatever the test sets — body, status, content type, delay — at any time.

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

struct Shared {
    response: Mutex<MetricsResponse>,
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
        let listener = TcpListener::bind((ip, port))
            .await
            .unwrap_or_else(|e| panic!("metrics endpoint: binding {ip}:{port}: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("metrics endpoint: local address on {ip}: {e}"));
        let shared = Arc::new(Shared {
            response: Mutex::new(MetricsResponse::default()),
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
        MetricsEndpoint {
            addr,
            shared,
            server,
        }
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

    pub fn set_body(&self, body: impl Into<String>) {
        self.lock().body = body.into();
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
        // A panicking test thread may poison the lock; the data is still fine to use.
        self.shared
            .response
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve_metrics(State(shared): State<Arc<Shared>>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let response = shared
        .response
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
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
