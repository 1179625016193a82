//! Where variable values come from: the pod's own endpoint (`scrape`, through the clients of
//! `http`; the core's `body` stores what it fetched) and a Prometheus server (`prometheus`).

pub mod http;
pub mod prometheus;
pub mod scrape;

use std::sync::Once;

/// Installs ring as the process-wide TLS crypto provider (kube and reqwest share it), once.
pub fn init_tls() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only when another provider was installed first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
