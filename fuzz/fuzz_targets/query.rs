//! Fuzzes the scrape-query compiler (every PromQL form it reads), evaluation over a small
//! synthetic history of every metric the query names, and the
//! PromQL template parser/renderer: none may panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podgate::query::{self, Interest, Placeholder, SeriesStore, StoreLimits, Template};

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
    // A counter with a reset, histogram buckets and an odd label, over five scrapes.
    for (i, v) in [3.0, 7.0, 1.0, f64::NAN, 9.0].into_iter().enumerate() {
        let t = i as i64 * 15_000;
        let mut samples: Vec<(&str, &[(&str, &str)], f64)> = Vec::new();
        for (n, name) in names.iter().enumerate() {
            if samples.iter().any(|s| s.0 == *name) {
                continue;
            }
            let w = v + n as f64;
            samples.extend([
                (*name, &[("le", "0.5"), ("code", "500")][..], w),
                (*name, &[("le", "+Inf"), ("code", "500")][..], w * 2.0),
                (*name, &[("le", "+Inf"), ("code", "200")][..], w * 3.0),
                (*name, &[("le", "bad")][..], w),
                (*name, &[][..], -w),
            ]);
        }
        let _ = store.ingest_samples(t, samples);
        let _ = q.eval(&store, t);
        let _ = q.eval(&store, t + 400_000);
    }
}
