//! Judging a pod against its peers: `peers:` variables.
//!
//! A `peers:` variable aggregates another variable's latest values over the pod's peer group
//! (the pods the same rule covers in the same namespace and workload, or with the same
//! `groupBy` labels), optionally only those of another revision (the baseline during a
//! rollout) or of the same one (its cohort), never counting the pod itself. The values come
//! from the evaluations podgate makes anyway: no extra scrape or query. Pure: no I/O, time
//! passed in.

mod aggregate;
mod group;
mod index;
mod lookup;

pub use aggregate::{Aggregate, AggregateError};
pub use group::{
    CONTROLLER_REVISION_HASH, POD_TEMPLATE_HASH, PeerGroup, PeerSet, PeersSettings, PodOwner,
};
pub use index::{GroupId, PeerIndex, PeerQuery, PeerValue, PeerValues};
pub use lookup::{NoPeers, PeerLookup, PeerReading, PeerSummary, PodPeers};
