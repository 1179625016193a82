//! Instant selectors (`x{...} offset 5m`): each matching series' value in the latest scrape,
//! as Prometheus reads them, staleness included.

use std::borrow::Cow;

use super::ast::VectorSel;
use super::context::Cx;
use super::labels::{Element, Labels, Value};
use super::outcome::{EvalError, NoData};
use super::stream::{Produced, Sink};

/// An instant selector: each matching series' value in the latest scrape at or before the
/// evaluation time (minus the offset); a series absent from that scrape is stale.
pub(crate) fn eval<'a>(
    cx: &Cx<'a>,
    v: &'a VectorSel,
    sink: Sink<'_, 'a>,
) -> Result<Produced, EvalError> {
    let store = cx.store;
    let t = cx.now_ms.saturating_sub(v.offset_ms);
    let Some(scrape) = store.scrape_at_or_before(t) else {
        return Ok(Produced::none(cx.before_history(v)));
    };
    let age_ms = t - scrape;
    if age_ms > store.limits().lookback_ms {
        return Ok(Produced::none(NoData::ScrapeTooOld { age_ms }));
    }
    let (mut count, mut stale) = (0usize, 0usize);
    for series in store.matching(&v.selector) {
        if series.evicted_until_ms().is_some_and(|e| e >= scrape) {
            return Err(EvalError::new(format!(
                "{} offset {} needs more than the {} points kept per series at this scrape \
                 interval; shorten the offset or raise the per-series point limit",
                v.selector.text,
                v.offset_text,
                store.limits().max_points_per_series
            )));
        }
        // Prometheus staleness: a series absent from the latest scrape is gone.
        let value = match series.floats().at(scrape) {
            Some(p) => Value::Float(p.v),
            None => match series.histogram_at(scrape) {
                Some(h) => Value::Histogram(Cow::Borrowed(h)),
                None => {
                    stale += 1;
                    continue;
                }
            },
        };
        count += 1;
        sink(Element {
            labels: Labels::Series { series, name: true },
            value,
        })?;
    }
    Ok(Produced::counted(count, || NoData::NoSeries {
        selector: v.selector.text.to_string(),
        stale,
    }))
}
