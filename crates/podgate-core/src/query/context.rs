//! The evaluation context every operator works in: the pod's store, the evaluation time, the
//! reason a NaN stands for missing data, and the dispatcher that evaluates an operand.

use std::cell::RefCell;

use super::ast::{Expr, VectorSel};
use super::outcome::{EvalError, NoData};
use super::store::SeriesStore;
use super::stream::{Produced, Sink};

/// How the context evaluates an operand: the dispatcher (`eval.rs`) hands itself down here,
/// so the operators it dispatches to evaluate their operands without importing it back.
#[derive(Clone, Copy)]
pub(crate) struct Dispatch {
    pub vector: for<'a, 's> fn(&Cx<'a>, &'a Expr, Sink<'s, 'a>) -> Result<Produced, EvalError>,
    pub scalar: fn(&Cx<'_>, &Expr) -> Result<f64, EvalError>,
}

/// The evaluation context: the store, the evaluation time, and the first reason a value came
/// out NaN where Prometheus returns NaN for missing data (a histogram without observations,
/// `scalar()` of no series), so a NaN result is reported as no data with that reason.
pub(crate) struct Cx<'a> {
    pub store: &'a SeriesStore,
    pub now_ms: i64,
    nan_reason: RefCell<Option<NoData>>,
    dispatch: Dispatch,
}

impl<'a> Cx<'a> {
    pub fn new(store: &'a SeriesStore, now_ms: i64, dispatch: Dispatch) -> Cx<'a> {
        Cx {
            store,
            now_ms,
            nan_reason: RefCell::new(None),
            dispatch,
        }
    }

    /// Streams the elements of a vector-typed operand to `sink`.
    pub fn vector(&self, expr: &'a Expr, sink: Sink<'_, 'a>) -> Result<Produced, EvalError> {
        (self.dispatch.vector)(self, expr, sink)
    }

    /// Evaluates a scalar-typed operand.
    pub fn scalar(&self, expr: &Expr) -> Result<f64, EvalError> {
        (self.dispatch.scalar)(self, expr)
    }

    pub fn nan_because(&self, why: NoData) {
        let mut reason = self.nan_reason.borrow_mut();
        if reason.is_none() {
            *reason = Some(why);
        }
    }

    /// The reason noted for a NaN, if any.
    pub fn into_nan_reason(self) -> Option<NoData> {
        self.nan_reason.into_inner()
    }

    /// Why a selector finds no scrape at or before its time: an offset reaching before the
    /// first scrape, or no scrape at all.
    pub fn before_history(&self, v: &VectorSel) -> NoData {
        if v.offset_ms > 0 && self.store.first_scrape_ms().is_some() {
            NoData::NoHistoryYet {
                offset: v.offset_text.to_string(),
            }
        } else {
            NoData::NoScrape
        }
    }
}
