//! The decision state machine per (pod, rule).
