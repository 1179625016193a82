//! Stores for tests, loaded as Prometheus's test language loads series (`load <step>`):
//! sample `i` of each series at `i × step`, one scrape per step, values in the test
//! language's notation, native histograms included (`{{schema:0 count:4 ...}}`).

use super::labels::Value;
use super::{Interest, Query, SampleValue, SeriesStore, StoreLimits, parse};
use crate::histogram::testing::{assert_histogram, close};
use crate::ruletest::parse_identity;
use crate::ruletest::series::{StepValue, expand};

/// A loaded series: name, labels, one value per step.
type Loaded = (String, Vec<(String, String)>, Vec<Option<StepValue>>);

/// One sample of a scrape.
type Sample<'a> = (&'a str, &'a [(&'a str, &'a str)], SampleValue<'a>);

/// A store holding `series` (`(name{labels}, values)`) sampled every `step_ms` up to
/// `until_ms`, with the history `queries` need (every series is kept).
pub(crate) fn load(
    queries: &[&str],
    step_ms: i64,
    series: &[(&str, &str)],
    until_ms: i64,
) -> SeriesStore {
    let names = series.iter().map(|(id, _)| {
        let name = parse_identity(id).map(|(n, _)| n).unwrap_or_default();
        format!("{{{name:?}}}")
    });
    let compiled: Vec<Query> = queries
        .iter()
        .map(|q| q.to_string())
        .chain(names)
        .map(|q| parse(&q).unwrap_or_else(|e| panic!("{q}: {e}")))
        .collect();
    let mut store = SeriesStore::new(Interest::new(&compiled), StoreLimits::default());
    let loaded: Vec<Loaded> = series
        .iter()
        .map(|(id, values)| {
            let (name, labels) = parse_identity(id).unwrap_or_else(|e| panic!("{e}"));
            let values = expand(values).unwrap_or_else(|e| panic!("{id}: {e}"));
            (name, labels, values)
        })
        .collect();
    let steps = loaded.iter().map(|s| s.2.len()).max().unwrap_or(0);
    for i in 0..steps {
        let t = i as i64 * step_ms;
        if t > until_ms {
            break;
        }
        let labels: Vec<Vec<(&str, &str)>> = loaded
            .iter()
            .map(|(_, l, _)| l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
            .collect();
        let samples: Vec<Sample<'_>> = loaded
            .iter()
            .zip(&labels)
            .filter_map(|((name, _, values), labels)| {
                let value = match values.get(i)?.as_ref()? {
                    StepValue::Float(v) => SampleValue::Float(*v),
                    StepValue::Histogram(h) => SampleValue::Histogram(h),
                };
                Some((name.as_str(), labels.as_slice(), value))
            })
            .collect();
        store
            .ingest_samples(t, samples)
            .unwrap_or_else(|e| panic!("step {i}: {e}"));
    }
    store
}

/// Every element `query` yields at `now_ms`, labels as PromQL writes them.
pub(crate) fn elements(
    store: &SeriesStore,
    query: &str,
    now_ms: i64,
) -> Vec<(String, Value<'static>)> {
    parse(query)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .eval_elements(store, now_ms)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// An expected element value: a number or a histogram in the test language.
pub(crate) enum Want {
    F(f64),
    H(&'static str),
}

/// Evaluates `query` at `now` and compares every element with `want` (labels as PromQL
/// writes them, `{}` for none).
#[track_caller]
pub(crate) fn check(store: &SeriesStore, query: &str, now: i64, want: &[(&str, Want)]) {
    let got = elements(store, query, now);
    let mut want: Vec<&(&str, Want)> = want.iter().collect();
    want.sort_by_key(|w| w.0);
    let labels: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    let wanted: Vec<&str> = want.iter().map(|w| w.0).collect();
    assert_eq!(labels, wanted, "{query} at {now}: the result's series");
    for ((labels, value), (_, want)) in got.iter().zip(want) {
        match (value, want) {
            (Value::Float(v), Want::F(w)) => {
                assert!(close(*v, *w), "{query} at {now}: {labels} is {v}, want {w}");
            }
            (Value::Histogram(h), Want::H(w)) => assert_histogram(h, w),
            (v, _) => panic!("{query} at {now}: {labels} is {v:?}, want the other kind"),
        }
    }
}
