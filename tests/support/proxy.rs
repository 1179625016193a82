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
