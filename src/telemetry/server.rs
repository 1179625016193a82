//! The HTTP server for `/metrics`, `/healthz` and `/readyz`. It serves nothing else.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::time::{millis, now_ms};

/// What the health endpoints report, updated by the daemon.
#[derive(Debug, Default)]
pub struct Health {
    rules_loaded: AtomicBool,
    cache_synced: AtomicBool,
    /// Unix ms of the controller's last loop turn; a stuck loop fails `/healthz`.
    heartbeat_ms: AtomicI64,
    /// The last rejected reload, shown in `/readyz` detail while it is not fixed.
    last_reload_error: Mutex<Option<String>>,
}

/// `/healthz` fails when the controller has not turned for this long.
pub const STUCK_AFTER: Duration = Duration::from_secs(60);

impl Health {
    pub fn set_rules_loaded(&self, v: bool) {
        self.rules_loaded.store(v, Ordering::Relaxed);
    }

    pub fn set_cache_synced(&self, v: bool) {
        self.cache_synced.store(v, Ordering::Relaxed);
    }

    pub fn beat(&self) {
        self.heartbeat_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn set_reload_error(&self, e: Option<String>) {
        if let Ok(mut g) = self.last_reload_error.lock() {
            *g = e;
        }
    }

    /// (ok, body) for `/healthz`.
    pub fn live(&self, now_ms: i64) -> (bool, String) {
        let beat = self.heartbeat_ms.load(Ordering::Relaxed);
        let age = now_ms.saturating_sub(beat);
        if beat == 0 || age <= millis(STUCK_AFTER) {
            (true, "ok\n".into())
        } else {
            (
                false,
                format!("controller loop stuck: no turn for {}s\n", age / 1000),
            )
        }
    }

    /// (ok, body) for `/readyz`: rules loaded and the pod cache synced.
    pub fn ready(&self) -> (bool, String) {
        let rules = self.rules_loaded.load(Ordering::Relaxed);
        let synced = self.cache_synced.load(Ordering::Relaxed);
        let mut body = format!(
            "[{}] rules loaded\n[{}] pod cache synced\n",
            if rules { "+" } else { "-" },
            if synced { "+" } else { "-" }
        );
        if let Ok(g) = self.last_reload_error.lock()
            && let Some(e) = g.as_ref()
        {
            // Old rules still serve: this is detail, not a failure.
            body.push_str(&format!(
                "[!] last reload rejected, previous rules in force: {e}\n"
            ));
        }
        (rules && synced, body)
    }
}

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    health: Arc<Health>,
}

pub fn router(registry: Arc<Registry>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { registry, health })
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, router(registry, health))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics(State(s): State<AppState>) -> Response {
    match super::metrics::encode(&s.registry) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response(),
    }
}

fn status(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn healthz(State(s): State<AppState>) -> Response {
    let (ok, body) = s.health.live(now_ms());
    (status(ok), body).into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    let (ok, body) = s.health.ready();
    (status(ok), body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_rules_and_cache() {
        let h = Health::default();
        assert!(!h.ready().0);
        h.set_rules_loaded(true);
        assert!(!h.ready().0);
        h.set_cache_synced(true);
        assert!(h.ready().0);
        h.set_reload_error(Some("x.yaml:1:1: bad".into()));
        let (ok, body) = h.ready();
        assert!(ok, "a rejected reload keeps the old rules serving");
        assert!(body.contains("x.yaml:1:1: bad"));
    }

    #[test]
    fn live_fails_when_the_loop_is_stuck() {
        let h = Health::default();
        assert!(h.live(1_000_000).0, "no beat yet: starting up");
        h.heartbeat_ms.store(1_000_000, Ordering::Relaxed);
        assert!(h.live(1_000_000 + 59_000).0);
        let (ok, body) = h.live(1_000_000 + 61_000);
        assert!(!ok);
        assert!(body.contains("stuck"));
    }
}
