//! Fuzzes the scrape-query compiler (every PromQL form it reads), evaluation over a small
//! synthetic history of every metric the query names (float series, classic buckets,
//! native histograms of several schemas with zero and negative buckets and a counter reset,
//! and a series that turns from float to histogram), and the PromQL template
//! parser/renderer: none may panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podgate_core::histogram::FloatHistogram;
use podgate_core::query::{
    self, Interest, Placeholder, SampleValue, SeriesStore, StoreLimits, Template,
};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let columns = src.chars().count() + 1;
    match query::parse(src) {
        Err(e) => assert!(
            (1..=columns).contains(&e.column),
            "{src:?}: column {} outside the text",
            e.column
        ),
        Ok(q) => eval_on_history(&q),
    }
    match Template::parse(src) {
        Err(e) => assert!(
            (1..=columns).contains(&e.column),
            "{src:?}: template column {} outside the text",
            e.column
        ),
        Ok(t) => {
            let _ = t.is_batched();
            let _ = t.render(|p| match p {
                Placeholder::Label(_) => None,
                _ => Some("a\"b'c\\d\ne"),
            });
        }
    }
});

/// Evaluates a compiled query over a small synthetic history.
fn eval_on_history(q: &query::Query) {
    let limits = StoreLimits {
        max_points_per_series: 4,
        ..StoreLimits::default()
    };
    let mut store = SeriesStore::new(Interest::new([q]), limits);
    // Every metric the query names (at most four), or `x`.
    let mut names: Vec<&str> = q.metric_names().take(4).collect();
    if names.is_empty() {
        names.push("x");
    }
    // A counter with a reset, histogram buckets, native histograms and an odd label, over
    // five scrapes.
    for (i, v) in [3.0, 7.0, 1.0, f64::NAN, 9.0].into_iter().enumerate() {
        let t = i as i64 * 15_000;
        let natives = [native(i, 0), native(i, 3), native(i, -2)];
        let mut samples: Vec<(&str, &[(&str, &str)], SampleValue<'_>)> = Vec::new();
        for (n, name) in names.iter().enumerate() {
            if samples.iter().any(|s| s.0 == *name) {
                continue;
            }
            let w = v + n as f64;
            let f = SampleValue::Float;
            samples.extend([
                (*name, &[("le", "0.5"), ("code", "500")][..], f(w)),
                (*name, &[("le", "+Inf"), ("code", "500")][..], f(w * 2.0)),
                (*name, &[("le", "+Inf"), ("code", "200")][..], f(w * 3.0)),
                (*name, &[("le", "bad")][..], f(w)),
                (*name, &[][..], f(-w)),
            ]);
            for (k, h) in natives.iter().enumerate() {
                let labels: &[(&str, &str)] = match k {
                    0 => &[("kind", "native")],
                    1 => &[("kind", "native"), ("code", "500")],
                    _ => &[("kind", "coarse")],
                };
                samples.push((*name, labels, SampleValue::Histogram(h)));
            }
            // A series that is a float on some scrapes and a histogram on others.
            let turning = if i % 2 == 0 {
                f(w)
            } else {
                SampleValue::Histogram(&natives[0])
            };
            samples.push((*name, &[("kind", "turning")][..], turning));
        }
        let _ = store.ingest_samples(t, samples);
        let _ = q.eval(&store, t);
        let _ = q.eval(&store, t + 400_000);
    }
}

/// A native histogram at scrape `i` of schema `schema`: growing, with a reset at scrape 2, a
/// zero bucket, negative buckets and, at scrape 3, a NaN sum.
fn native(i: usize, schema: i32) -> FloatHistogram {
    let k = if i == 2 { 1.0 } else { 1.0 + i as f64 };
    FloatHistogram {
        schema,
        zero_threshold: if i == 4 { 0.5 } else { 0.001 },
        zero_count: k,
        count: 6.0 * k,
        sum: if i == 3 { f64::NAN } else { 3.5 * k },
        positive: vec![(-1, k), (0, 2.0 * k), (3, k)],
        negative: vec![(1, k)],
        ..FloatHistogram::default()
    }
}
