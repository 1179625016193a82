//! Leader election on a `coordination.k8s.io` Lease (kube-lease-manager).
//!
//! [`LeaderElection::start`] keeps trying to hold Lease `podgate` in the daemon's namespace
//! and publishes "is leader" on a watch channel. The holder renews it `grace` before it
//! expires; a standby takes over when it expires (within the lease duration after the holder
//! died) or, when the holder releases it on a graceful shutdown, within one poll period
//! (kube-lease-manager alone would wait out the lease duration: a standby polls the Lease and
//! starts a fresh attempt as soon as it sees it released).
//!
//! A leader that cannot confirm its lease for `duration - grace` (API unreachable) steps down
//! before a standby could take over, so two replicas never both believe they lead.
//!
//! RBAC: leases `get`, `create` (first start) and `patch` (acquire: server-side apply; renew,
//! release: strategic merge).

use std::sync::Arc;
use std::time::Duration;

use ::kube::Client;
use ::kube::api::Api;
use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::Lease;
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseManagerBuilder};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::KubeError;

pub mod may_write;

/// The Lease podgate's replicas share.
pub const LEASE_NAME: &str = "podgate";

/// Leader election settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This replica's identity in the Lease (`holderIdentity`); unique per process.
    pub identity: String,
    /// How long a lease is valid after its last renewal.
    pub duration: Duration,
    /// The holder renews this long before expiry.
    pub grace: Duration,
    /// How often the Lease is read to notice a release (standby) or a lost lease (leader).
    pub poll: Duration,
}

impl LeaseConfig {
    /// Lease `podgate` in `namespace`, 15 s duration, renewed 5 s before expiry, polled every
    /// 2 s, with [`default_identity`].
    pub fn new(namespace: impl Into<String>) -> LeaseConfig {
        LeaseConfig {
            name: LEASE_NAME.to_string(),
            namespace: namespace.into(),
            identity: default_identity(),
            duration: Duration::from_secs(15),
            grace: Duration::from_secs(5),
            poll: Duration::from_secs(2),
        }
    }

    fn validate(&self) -> Result<(u64, u64), KubeError> {
        let duration = self.duration.as_secs();
        let grace = self.grace.as_secs();
        if grace == 0 || grace >= duration {
            return Err(KubeError::Invalid(format!(
                "leader election: the lease duration ({duration}s) must be longer than the \
                 renewal grace ({grace}s), both whole seconds and at least 1s"
            )));
        }
        if self.poll.is_zero() {
            return Err(KubeError::Invalid(
                "leader election: the poll period must be positive".to_string(),
            ));
        }
        if self.identity.is_empty() {
            return Err(KubeError::Invalid(
                "leader election: empty identity".to_string(),
            ));
        }
        Ok((duration, grace))
    }
}

/// The namespace podgate runs in: `$POD_NAMESPACE` (downward API) if set, else the client's
/// default namespace (the service account's in a cluster, the kubeconfig context's outside).
pub fn daemon_namespace(client: &Client) -> String {
    match std::env::var("POD_NAMESPACE") {
        Ok(ns) if !ns.trim().is_empty() => ns.trim().to_string(),
        _ => client.default_namespace().to_string(),
    }
}

/// This process's name plus a random suffix: `$POD_NAME`, else `$HOSTNAME`, else the kernel's
/// host name, else `podgate`; e.g. `podgate-7d9f-x2k4q-1a2b3c4d`. The suffix keeps a restarted
/// container from resuming its predecessor's lease as if nothing happened.
pub fn default_identity() -> String {
    let base = ["POD_NAME", "HOSTNAME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "podgate".to_string());
    format!("{base}-{:08x}", random_u32())
}

/// A random number without a random-number crate: std's hasher keys are random per process.
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    (h.finish() >> 16) as u32
}

/// A running election. Dropping it stops campaigning without releasing the lease; call
/// [`LeaderElection::shutdown`] to hand over at once.
pub struct LeaderElection {
    leader: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    identity: String,
}

impl LeaderElection {
    /// Creates the Lease if missing and starts campaigning in the background.
    pub async fn start(client: Client, config: LeaseConfig) -> Result<LeaderElection, KubeError> {
        config.validate()?;
        let manager = build_manager(&client, &config).await?;
        let (tx, leader) = watch::channel(false);
        let (stop_tx, stop_rx) = oneshot::channel();
        let identity = config.identity.clone();
        let campaign = Campaign {
            client,
            config,
            publish: Publisher(tx),
        };
        let task = tokio::spawn(campaign.run(manager, stop_rx));
        Ok(LeaderElection {
            leader,
            stop: Some(stop_tx),
            task,
            identity,
        })
    }

    /// "Is leader", updated on every change. Turns false before the lease is released.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Stops campaigning: publishes false, then releases the lease if held, so a standby takes
    /// over at once.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(e) = (&mut self.task).await {
            tracing::warn!(error = %e, "leader election task ended abnormally");
        }
    }
}

impl Drop for LeaderElection {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}

/// Publishes leadership; publishes false when dropped (also when the task panics or is
/// aborted), so nobody keeps writing on a stale "true".
struct Publisher(watch::Sender<bool>);

impl Publisher {
    fn set(&self, leader: bool) {
        self.0.send_if_modified(|v| {
            let changed = *v != leader;
            *v = leader;
            changed
        });
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.set(false);
    }
}

struct Campaign {
    client: Client,
    config: LeaseConfig,
    publish: Publisher,
}

async fn build_manager(client: &Client, config: &LeaseConfig) -> Result<LeaseManager, KubeError> {
    let (duration, grace) = config.validate()?;
    LeaseManagerBuilder::new(client.clone(), &config.name)
        .with_namespace(&config.namespace)
        .with_create_mode(LeaseCreateMode::AutoCreate)
        .with_identity(&config.identity)
        .with_field_manager(format!("podgate-{}", config.identity))
        .with_duration(duration)
        .with_grace(grace)
        .build()
        .await
        .map_err(|e| KubeError::Lease {
            lease: format!("{}/{}", config.namespace, config.name),
            source: e,
        })
}

/// What a read of the Lease says, from this replica's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Nobody holds it (released).
    Free,
    Mine,
    Other,
}

fn seen(lease: &Lease, identity: &str) -> Seen {
    match lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
    {
        None | Some("") => Seen::Free,
        Some(h) if h == identity => Seen::Mine,
        Some(_) => Seen::Other,
    }
}

/// What woke the campaign loop (one value per loop turn: its size does not matter).
#[allow(clippy::large_enum_variant)]
enum Step {
    Stop,
    Built(Result<LeaseManager, KubeError>),
    Changed(Result<bool, kube_lease_manager::LeaseManagerError>),
    Polled(Option<Seen>),
}

impl Campaign {
    async fn run(self, first: LeaseManager, mut stop: oneshot::Receiver<()>) {
        let lease_name = format!("{}/{}", self.config.namespace, self.config.name);
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.config.namespace);
        let step_down_after = self.config.duration.saturating_sub(self.config.grace);
        let mut manager: Option<Arc<LeaseManager>> = Some(Arc::new(first));
        // The manager's `changed()` runs across loop turns: cancelling it mid-renewal would
        // only delay the renewal.
        let mut changes: Option<BoxFuture<'static, _>> = None;
        let mut leader = false;
        let mut confirmed = Instant::now();
        let mut poll =
            tokio::time::interval_at(Instant::now() + self.config.poll, self.config.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures: u32 = 0;
        loop {
            if let (Some(m), None) = (&manager, &changes) {
                let m = m.clone();
                changes = Some(Box::pin(async move { m.changed().await }));
            }
            let step = tokio::select! {
                _ = &mut stop => Step::Stop,
                built = build_manager(&self.client, &self.config), if manager.is_none() => {
                    Step::Built(built)
                }
                changed = async {
                    match changes.as_mut() {
                        Some(c) => c.await,
                        None => std::future::pending().await,
                    }
                } => Step::Changed(changed),
                _ = poll.tick() => {
                    let read = tokio::time::timeout(self.config.poll, leases.get(&self.config.name)).await;
                    match read {
                        Ok(Ok(lease)) => Step::Polled(Some(seen(&lease, &self.config.identity))),
                        Ok(Err(e)) => {
                            tracing::debug!(lease = %lease_name, error = %e, "leader election: reading the lease");
                            Step::Polled(None)
                        }
                        Err(_) => Step::Polled(None),
                    }
                }
            };
            let mut restart = false;
            match step {
                Step::Stop => break,
                Step::Built(Ok(m)) => {
                    manager = Some(Arc::new(m));
                    failures = 0;
                }
                Step::Built(Err(e)) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, "leader election: retrying");
                    let delay = super::write::backoff_delay(
                        failures,
                        Duration::from_millis(500),
                        self.config.duration,
                    );
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Step::Changed(Ok(is_leader)) => {
                    changes = None;
                    if is_leader != leader {
                        tracing::info!(
                            lease = %lease_name,
                            identity = %self.config.identity,
                            leader = is_leader,
                            "leadership changed"
                        );
                    }
                    leader = is_leader;
                    confirmed = Instant::now();
                    self.publish.set(leader);
                }
                Step::Changed(Err(e)) => {
                    tracing::warn!(lease = %lease_name, error = %e, "leader election: lost track of the lease; starting over");
                    restart = true;
                }
                Step::Polled(seen) => match (leader, seen) {
                    (true, Some(Seen::Mine)) => confirmed = Instant::now(),
                    (true, Some(_)) => {
                        tracing::warn!(lease = %lease_name, "leader election: the lease is no longer ours");
                        restart = true;
                    }
                    // Released: campaign afresh now rather than when the old term would end.
                    (false, Some(Seen::Free)) => restart = true,
                    _ => {}
                },
            }
            if leader && confirmed.elapsed() > step_down_after {
                tracing::warn!(lease = %lease_name, "leader election: lease not confirmed in time; stepping down");
                restart = true;
            }
            if restart {
                leader = false;
                self.publish.set(false);
                changes = None;
                manager = None;
            }
        }
        // Stop writing first, then hand the lease over.
        self.publish.set(false);
        drop(changes);
        if let Some(m) = manager {
            match tokio::time::timeout(self.config.duration, m.release()).await {
                Ok(Ok(())) => {
                    tracing::info!(lease = %lease_name, "leader election: lease released")
                }
                Ok(Err(e)) => {
                    tracing::warn!(lease = %lease_name, error = %e, "leader election: releasing the lease")
                }
                Err(_) => {
                    tracing::warn!(lease = %lease_name, "leader election: releasing the lease timed out")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;

    fn lease(holder: Option<&str>) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn reading_the_holder() {
        assert_eq!(seen(&lease(None), "me"), Seen::Free);
        assert_eq!(seen(&lease(Some("")), "me"), Seen::Free);
        assert_eq!(seen(&lease(Some("me")), "me"), Seen::Mine);
        assert_eq!(seen(&lease(Some("you")), "me"), Seen::Other);
        assert_eq!(seen(&Lease::default(), "me"), Seen::Free);
    }

    #[test]
    fn settings_are_checked() {
        let ok = LeaseConfig::new("podgate");
        assert_eq!(ok.validate().ok(), Some((15, 5)));
        let mut bad = ok.clone();
        bad.grace = Duration::from_secs(15);
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.grace = Duration::from_millis(500);
        assert!(bad.validate().is_err(), "below a second is zero seconds");
        let mut bad = ok;
        bad.identity.clear();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn identities_differ_per_call() {
        let a = default_identity();
        let b = default_identity();
        assert_ne!(a, b);
        assert!(!a.is_empty());
    }

    #[test]
    fn dropping_the_publisher_says_not_leader() {
        let (tx, rx) = watch::channel(false);
        let p = Publisher(tx);
        p.set(true);
        assert!(*rx.borrow());
        drop(p);
        assert!(!*rx.borrow());
    }
}
