//! The element-wise functions (`abs`, `ceil`, `floor`, `round`, `sqrt`, `exp`, `ln`,
//! `clamp`, `clamp_min`, `clamp_max`): each element's value mapped, its metric name dropped,
//! as Prometheus computes them.

use super::ast::Call;
use super::catalog::Func;
use super::context::Cx;
use super::labels::{Element, Value};
use super::outcome::{EvalError, NoData};
use super::stream::{Produced, Sink};

/// The element-wise functions: each element's value mapped, its metric name dropped.
pub(crate) fn eval<'a>(
    cx: &Cx<'a>,
    call: &'a Call,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    let arg = |i: usize| -> Result<f64, EvalError> {
        match call.args.get(i) {
            Some(e) => cx.scalar(e),
            None => Ok(f64::NAN),
        }
    };
    let (lo, hi) = match call.func {
        Func::Clamp => (arg(1)?, arg(2)?),
        Func::ClampMin => (arg(1)?, f64::INFINITY),
        Func::ClampMax => (f64::NEG_INFINITY, arg(1)?),
        _ => (f64::NEG_INFINITY, f64::INFINITY),
    };
    let to_nearest = match (call.func, call.args.get(1)) {
        (Func::Round, Some(e)) => cx.scalar(e)?,
        _ => 1.0,
    };
    let Some(input) = call.args.first() else {
        return Err(EvalError::new(format!(
            "{}() needs an argument",
            call.func.name()
        )));
    };
    // Prometheus returns nothing when the bounds cross.
    if hi < lo {
        let mut seen = 0usize;
        let inner = cx.vector(input, &mut |_| {
            seen += 1;
            Ok(())
        })?;
        return Ok(Produced::none(if seen == 0 {
            inner.reason()
        } else {
            NoData::Filtered {
                expr: call.text.to_string(),
            }
        }));
    }
    let inverse = 1.0 / to_nearest;
    let func = call.func;
    let (mut count, mut histograms) = (0usize, 0usize);
    let inner = cx.vector(input, &mut |el| {
        // Native histograms are skipped, as Prometheus does.
        let Value::Float(v) = el.value else {
            histograms += 1;
            return Ok(());
        };
        count += 1;
        let v = match func {
            Func::Abs => v.abs(),
            Func::Ceil => v.ceil(),
            Func::Floor => v.floor(),
            Func::Sqrt => v.sqrt(),
            Func::Exp => v.exp(),
            Func::Ln => v.ln(),
            // Ties round up, as in Prometheus.
            Func::Round => (v * inverse + 0.5).floor() / inverse,
            _ => go_max(lo, go_min(hi, v)),
        };
        sink(Element {
            labels: el.labels.without_name(),
            value: Value::Float(v),
        })
    })?;
    Ok(if count > 0 || histograms == 0 {
        Produced {
            count,
            why: inner.why,
        }
    } else {
        Produced::none(NoData::HistogramIgnored {
            expr: call.text.to_string(),
        })
    })
}

/// Go's `math.Min`: NaN wins, unlike `f64::min`.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Go's `math.Max`: NaN wins, unlike `f64::max`.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}
