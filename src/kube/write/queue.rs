//! The writer's bookkeeping, without I/O: the latest desired condition per (pod, gate), the
//! retries and their backoff, what is being written.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use super::result::WriteResult;
use crate::decision::engine::{GateUpdate, PodKey};

/// The delay before retry number `failures` (1 = after the first failure): `initial`
/// doubled per further failure, at most `max`.
pub fn backoff_delay(failures: u32, initial: Duration, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    initial.saturating_mul(1u32 << doublings).min(max)
}

type Key = (PodKey, String);

fn key_of(update: &GateUpdate) -> Key {
    (update.pod.clone(), update.condition_type.clone())
}

struct Pending {
    update: GateUpdate,
    failures: u32,
    not_before: Instant,
    seq: u64,
}

/// The writer's bookkeeping, without I/O: the latest desired condition per (pod, gate), when
/// each may next be tried, and which are being written.
pub(super) struct Queue {
    pending: HashMap<Key, Pending>,
    schedule: BTreeSet<(Instant, u64, Key)>,
    /// Keys being written, with a newer update that arrived meanwhile.
    in_flight: HashMap<Key, Option<GateUpdate>>,
    seq: u64,
    /// API-wide backoff after the server was unreachable or failing.
    global_failures: u32,
    global_not_before: Option<Instant>,
    initial: Duration,
    max: Duration,
}

impl Queue {
    pub(super) fn new(initial: Duration, max: Duration) -> Queue {
        Queue {
            pending: HashMap::new(),
            schedule: BTreeSet::new(),
            in_flight: HashMap::new(),
            seq: 0,
            global_failures: 0,
            global_not_before: None,
            initial,
            max,
        }
    }

    pub(super) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.in_flight.is_empty()
    }

    /// Desired conditions held: waiting to be tried, or arrived while their key was in flight.
    pub(super) fn len(&self) -> usize {
        self.pending.len() + self.in_flight.values().filter(|n| n.is_some()).count()
    }

    /// How many desired conditions wait (not counting those being written).
    pub(super) fn waiting(&self) -> usize {
        self.pending.len()
    }

    /// Forgets every desired condition not being written (the writer may no longer write). A
    /// writer that may not write holds nothing, so a dry run or a standby does not grow with
    /// pod churn; whoever gains the right to write resynchronises from the decisions.
    pub(super) fn drop_pending(&mut self) -> usize {
        let dropped = self.len();
        self.pending.clear();
        self.schedule.clear();
        for newer in self.in_flight.values_mut() {
            *newer = None;
        }
        dropped
    }

    /// A new desired condition: replaces any older one for the same (pod, gate), keeping its
    /// backoff (the API's trouble is not the value's).
    pub(super) fn push(&mut self, update: GateUpdate, now: Instant) {
        let key = key_of(&update);
        if let Some(newer) = self.in_flight.get_mut(&key) {
            *newer = Some(update);
            return;
        }
        if let Some(p) = self.pending.get_mut(&key) {
            p.update = update;
            return;
        }
        self.insert(key, update, 0, now);
    }

    fn insert(&mut self, key: Key, update: GateUpdate, failures: u32, not_before: Instant) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(old) = self.pending.insert(
            key.clone(),
            Pending {
                update,
                failures,
                not_before,
                seq,
            },
        ) {
            self.schedule
                .remove(&(old.not_before, old.seq, key.clone()));
        }
        self.schedule.insert((not_before, seq, key));
    }

    /// When the next pending update may be tried (None: nothing pending).
    pub(super) fn next_due(&self) -> Option<Instant> {
        let first = self.schedule.first().map(|(at, _, _)| *at)?;
        Some(match self.global_not_before {
            Some(g) if g > first => g,
            _ => first,
        })
    }

    /// Takes the next update that may be tried at `now`, marking it in flight.
    pub(super) fn take_due(&mut self, now: Instant) -> Option<(GateUpdate, u32)> {
        if self.global_not_before.is_some_and(|g| g > now) {
            return None;
        }
        let (at, _, key) = self.schedule.first()?.clone();
        if at > now {
            return None;
        }
        self.schedule.pop_first();
        let p = self.pending.remove(&key)?;
        self.in_flight.insert(key, None);
        Some((p.update, p.failures))
    }

    /// Records how writing `update` (tried after `failures` earlier failures) ended.
    pub(super) fn finish(
        &mut self,
        update: GateUpdate,
        failures: u32,
        result: WriteResult,
        unavailable: bool,
        now: Instant,
    ) {
        let key = key_of(&update);
        let newer = self.in_flight.remove(&key).flatten();
        if unavailable {
            self.global_failures = self.global_failures.saturating_add(1);
            self.global_not_before =
                Some(now + backoff_delay(self.global_failures, self.initial, self.max));
        } else {
            self.global_failures = 0;
            self.global_not_before = None;
        }
        if result.retried() {
            let failures = failures.saturating_add(1);
            let at = now + backoff_delay(failures, self.initial, self.max);
            self.insert(key, newer.unwrap_or(update), failures, at);
        } else if let Some(newer) = newer {
            self.insert(key, newer, 0, now);
        }
    }
}
