//! The client_golang endpoint with native histograms (`tests/fixtures/exposition/capture`,
//! built by `scripts/native-endpoint`; `PODGATE_TEST_NATIVE_ENDPOINT`, which `scripts/test`
//! sets, names the binary), on 127.0.0.1 with a free port; killed when dropped. It serves its
//! registry with a first batch of observations; [`NativeEndpoint::next`] adds the second.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct NativeEndpoint {
    child: Child,
    addr: String,
}

impl NativeEndpoint {
    pub fn start() -> NativeEndpoint {
        let binary = std::env::var_os("PODGATE_TEST_NATIVE_ENDPOINT").unwrap_or_else(|| {
            panic!(
                "PODGATE_TEST_NATIVE_ENDPOINT is not set: scripts/test sets it; by hand: \
                 export PODGATE_TEST_NATIVE_ENDPOINT=$(scripts/native-endpoint path)"
            )
        });
        let mut child = Command::new(&binary)
            .args(["-addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.to_string_lossy()));
        // It logs `listening on 127.0.0.1:PORT` once bound.
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split("listening on ").nth(1).map(str::to_string))
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("{} exited without listening", binary.to_string_lossy())
            });
        // Keep draining its log so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        NativeEndpoint { child, addr }
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://127.0.0.1:PORT/metrics`
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// Observes the second batch.
    pub async fn next(&self) {
        let url = format!("http://{}/next", self.addr);
        let response = super::http_client(Duration::from_secs(10))
            .post(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert!(
            response.status().is_success(),
            "POST {url}: {}",
            response.status()
        );
    }
}

impl Drop for NativeEndpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
