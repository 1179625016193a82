//! The simulated fleet as seen from the driver: simulator processes (`bench serve`), each
//! serving a slice of the pods, controlled over their loopback control endpoints.

use std::ops::Range;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::proc::{Proc, free_port};
use crate::sim;

/// Pods per simulator process: a listener per pod plus a connection per pod from podgate and
/// from Prometheus stay within a 20,000 file descriptor limit.
pub const PER_PROCESS: usize = 4000;

pub struct Shards {
    shards: Vec<(Range<usize>, String, Proc)>,
    http: reqwest::Client,
}

impl Shards {
    pub async fn start(total: usize, dir: &Path) -> Result<Shards, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let http = crate::http()?;
        let mut shards = Vec::new();
        let mut first = 0;
        while first < total {
            let count = PER_PROCESS.min(total - first);
            let port = free_port()?;
            let mut cmd = Command::new(&exe);
            cmd.args(["serve", "--first", &first.to_string()])
                .args(["--count", &count.to_string()])
                .args(["--control-port", &port.to_string()]);
            let log = dir.join(format!("sim-{first}.log"));
            let p = Proc::spawn("simulator", &mut cmd, &log)?;
            shards.push((first..first + count, format!("http://127.0.0.1:{port}"), p));
            first += count;
        }
        let s = Shards { shards, http };
        for (range, url, _) in &s.shards {
            let served = format!("{url}/served");
            crate::wait_until(
                &format!("simulator of pods {range:?}"),
                Duration::from_secs(120),
                || async {
                    s.http
                        .get(&served)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                },
            )
            .await?;
        }
        Ok(s)
    }

    fn url_of(&self, i: usize) -> Result<&str, String> {
        self.shards
            .iter()
            .find(|(r, _, _)| r.contains(&i))
            .map(|(_, u, _)| u.as_str())
            .ok_or_else(|| format!("no simulator serves pod {i}"))
    }

    pub async fn set_healthy(&self, i: usize, healthy: bool) -> Result<(), String> {
        let mode = if healthy {
            sim::HEALTHY
        } else {
            sim::UNHEALTHY
        };
        self.set_mode(i, mode).await
    }

    /// Sets pod `i`'s endpoint mode (`sim::HEALTHY`, `UNHEALTHY`, `ERROR`, `HANG`).
    pub async fn set_mode(&self, i: usize, mode: u8) -> Result<(), String> {
        let url = format!("{}/health/{i}/{mode}", self.url_of(i)?);
        let r = self
            .http
            .post(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("{url}: {}", r.status()));
        }
        Ok(())
    }

    /// Scrapes served so far: (by podgate, by Prometheus, by others).
    pub async fn served(&self) -> Result<(u64, u64, u64), String> {
        let mut sum = (0, 0, 0);
        for (_, url, _) in &self.shards {
            let u = format!("{url}/served");
            let text = self
                .http
                .get(&u)
                .send()
                .await
                .map_err(|e| format!("{u}: {e}"))?
                .text()
                .await
                .map_err(|e| format!("{u}: {e}"))?;
            let v: Vec<u64> = text
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if let [a, b, c] = v[..] {
                sum.0 += a;
                sum.1 += b;
                sum.2 += c;
            } else {
                return Err(format!("{u}: unexpected answer {text:?}"));
            }
        }
        Ok(sum)
    }
}
