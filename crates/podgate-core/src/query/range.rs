//! Functions over a range selector (`rate`, `irate`, `deriv`, `*_over_time`, ...): the window
//! each matching series has, computed over its float points or its native histogram points,
//! and why nothing came out when nothing did.

use super::ast::MatrixSel;
use super::catalog::Func;
use super::context::Cx;
use super::float_range;
use super::histogram_range::{self, Skip, Window};
use super::labels::{Element, Labels, Value};
use super::outcome::{EvalError, NoData};
use super::store::histogram_window;
use super::stream::{Produced, Sink};

/// A range function over every series its selector matches.
pub(crate) fn eval<'a>(
    cx: &Cx<'a>,
    func: Func,
    m: &'a MatrixSel,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    let store = cx.store;
    let t = cx.now_ms.saturating_sub(m.vector.offset_ms);
    let start = t.saturating_sub(m.range_ms);
    let (mut matched, mut produced, mut max_points) = (0usize, 0usize, 0usize);
    let (mut short, mut mixed, mut ignored) = (0usize, 0usize, 0usize);
    for series in store.matching(&m.vector.selector) {
        // The window is left-open, right-closed: (t - range, t].
        let floats = series.floats().window(start, t);
        let n = floats.len();
        let histograms = histogram_window(series.histograms(), start, t);
        let total = n + histograms.len();
        if total == 0 {
            continue;
        }
        matched += 1;
        max_points = max_points.max(total);
        if series.evicted_until_ms().is_some_and(|e| e > start) {
            return Err(EvalError::new(format!(
                "{}({}[{}]) needs more than the {} points kept per series at this scrape \
                 interval; shorten the range or raise the per-series point limit",
                func.name(),
                m.vector.selector.text,
                m.range_text,
                store.limits().max_points_per_series
            )));
        }
        let value = if histograms.is_empty() {
            match (n >= func.min_points())
                .then(|| float_range::apply(func, floats, n, start, t, m.range_ms))
                .flatten()
            {
                Some(v) => Value::Float(v),
                None => {
                    short += 1;
                    continue;
                }
            }
        } else {
            let window = Window {
                start,
                end: t,
                range_ms: m.range_ms,
            };
            match histogram_range::apply(func, series, floats, histograms, window) {
                Ok(v) => v,
                Err(Skip::Short) => {
                    short += 1;
                    continue;
                }
                Err(Skip::Mixed) => {
                    mixed += 1;
                    continue;
                }
                Err(Skip::Ignored) => {
                    ignored += 1;
                    continue;
                }
            }
        };
        produced += 1;
        sink(Element {
            labels: Labels::Series {
                series,
                name: func.keeps_name(),
            },
            value,
        })?;
    }
    Ok(Produced::counted(produced, || {
        let expr = || {
            format!(
                "{}({}[{}])",
                func.name(),
                m.vector.selector.text,
                m.range_text
            )
        };
        if matched > 0 {
            // A window short of points may fill up; the other reasons are for good.
            return if short == 0 && mixed > 0 {
                NoData::MixedFloatsAndHistograms { expr: expr() }
            } else if short == 0 && ignored > 0 {
                NoData::HistogramIgnored { expr: expr() }
            } else {
                NoData::NotEnoughHistory {
                    function: func.name(),
                    range: m.range_text.to_string(),
                    points: max_points,
                }
            };
        }
        match store.scrape_at_or_before(t) {
            None => cx.before_history(&m.vector),
            // Nothing in the window because scrapes stopped succeeding: say that.
            Some(scrape) if t - scrape >= m.range_ms => NoData::ScrapeTooOld { age_ms: t - scrape },
            Some(_) => NoData::NoSeries {
                selector: m.vector.selector.text.to_string(),
                stale: 0,
            },
        }
    }))
}
