//! Who may write gate conditions: the leader (every replica, without leader election), never
//! in a dry run, never while shutting down. [`follow`] keeps a "may write" flag to that rule
//! as leadership and shutdown change.

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where this replica stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Holds the Lease (always true without leader election).
    pub is_leader: bool,
    /// SIGTERM was received.
    pub stopping: bool,
}

impl Standing {
    /// Leads and is not stopping: what the `leader` metric shows.
    pub fn leads(self) -> bool {
        self.is_leader && !self.stopping
    }

    /// Whether gate conditions may be written.
    pub fn may_write(self, dry_run: bool) -> bool {
        self.leads() && !dry_run
    }
}

/// Keeps `may_write` to the rule while `leader` (None: no election, always leader) and
/// `shutdown` change; `observe` hears every standing, e.g. for the `leader` metric. Ends when
/// the election or the shutdown channel is gone, leaving the flag's last value.
pub fn follow(
    mut leader: Option<watch::Receiver<bool>>,
    mut shutdown: watch::Receiver<bool>,
    dry_run: bool,
    may_write: watch::Sender<bool>,
    observe: impl Fn(Standing) + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let standing = Standing {
                is_leader: leader.as_mut().is_none_or(|l| *l.borrow_and_update()),
                stopping: *shutdown.borrow_and_update(),
            };
            observe(standing);
            let _ = may_write.send(standing.may_write(dry_run));
            let leader_changed = async {
                match leader.as_mut() {
                    Some(l) => l.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ok = leader_changed => if !ok { break },
                r = shutdown.changed() => if r.is_err() { break },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_a_leader_that_is_not_stopping_and_not_dry_running_writes() {
        for is_leader in [false, true] {
            for stopping in [false, true] {
                for dry_run in [false, true] {
                    let s = Standing {
                        is_leader,
                        stopping,
                    };
                    assert_eq!(s.leads(), is_leader && !stopping, "{s:?}");
                    assert_eq!(
                        s.may_write(dry_run),
                        is_leader && !stopping && !dry_run,
                        "{s:?} dry_run={dry_run}"
                    );
                }
            }
        }
    }

    /// Waits until the flag reads `want`.
    async fn flag_becomes(rx: &mut watch::Receiver<bool>, want: bool) {
        tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|v| *v == want))
            .await
            .unwrap_or_else(|_| panic!("may-write never became {want}"))
            .unwrap_or_else(|_| panic!("may-write closed before becoming {want}"));
    }

    #[tokio::test]
    async fn the_flag_follows_leadership_and_drops_on_shutdown() {
        let (leader_tx, leader_rx) = watch::channel(false);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (tx, mut rx) = watch::channel(false);
        let task = follow(Some(leader_rx), shutdown_rx, false, tx, |_| {});
        flag_becomes(&mut rx, false).await;
        leader_tx.send_replace(true);
        flag_becomes(&mut rx, true).await;
        leader_tx.send_replace(false);
        flag_becomes(&mut rx, false).await;
        leader_tx.send_replace(true);
        flag_becomes(&mut rx, true).await;
        shutdown_tx.send_replace(true);
        flag_becomes(&mut rx, false).await;
        drop(leader_tx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("ends when the election is gone")
            .expect("no panic");
        assert!(!*rx.borrow(), "the last value stays");
    }

    #[tokio::test]
    async fn without_election_every_replica_writes_unless_dry_running() {
        let (_shutdown_tx, shutdown_rx) = watch::channel(false);
        let (tx, mut rx) = watch::channel(false);
        let _task = follow(None, shutdown_rx.clone(), false, tx, |_| {});
        flag_becomes(&mut rx, true).await;

        let (tx, rx) = watch::channel(true);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        let _task = follow(None, shutdown_rx, true, tx, move |s| {
            record
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(s.leads());
        });
        let mut rx = rx;
        flag_becomes(&mut rx, false).await;
        assert_eq!(
            seen.lock().unwrap_or_else(|p| p.into_inner()).first(),
            Some(&true),
            "a dry run still leads (the metric), it only does not write"
        );
    }
}
