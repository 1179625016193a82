//! Fuzzes the protobuf exposition decoder and the native histogram math with arbitrary bytes.
//!
//! Besides "never panics": an error's byte offset is inside the body; a decoded body yields
//! native histograms whose buckets are sorted with counts that are not negative; quantile,
//! fraction, counter reset detection, add, sub and rate run on every native histogram; and
//! the samples go into a series store as the daemon stores them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use podgate_core::exposition::protobuf::{HistogramOptions, decode};
use podgate_core::histogram::{FloatHistogram, HistogramPoint, RateWindow, histogram_rate};
use podgate_core::query::{Interest, SeriesStore, StoreLimits, parse};

fuzz_target!(|data: &[u8]| {
    for options in [
        HistogramOptions::PODGATE,
        HistogramOptions::PROMETHEUS_NATIVE,
        HistogramOptions::PROMETHEUS_DEFAULT,
    ] {
        let body = match decode(data.to_vec(), options) {
            Ok(body) => body,
            Err(e) => {
                assert!(e.offset <= data.len(), "{e}");
                assert!(!e.message.is_empty());
                continue;
            }
        };
        let mut previous: Option<&FloatHistogram> = None;
        for sample in body.samples() {
            assert!(!sample.name.is_empty());
            if let Some(h) = sample.histogram() {
                check_histogram(h);
                if let Some(p) = previous {
                    combine(p, h);
                }
                previous = Some(h);
            }
        }
        if options == HistogramOptions::PODGATE {
            let query = parse(r#"{__name__=~".+"}"#).expect("a valid query");
            let mut store = SeriesStore::new(Interest::new([&query]), StoreLimits::default());
            let _ = store.ingest_samples(1_000, body.samples());
        }
    }
});

fn check_histogram(h: &FloatHistogram) {
    for side in [&h.positive, &h.negative] {
        assert!(side.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)));
        assert!(side.iter().all(|&(_, c)| c >= 0.0 || c.is_nan()));
    }
    assert!((-4..=8).contains(&h.schema));
    for q in [0.0, 0.5, 0.9, 1.0] {
        let _ = h.quantile(q);
    }
    let _ = h.fraction(0.0, 0.1);
    let _ = h.fraction(f64::NEG_INFINITY, 1.0);
    let _ = h.api_json();
    let _ = h.to_string();
}

/// Two histograms of one body as two samples of one series, and summed and subtracted.
fn combine(a: &FloatHistogram, b: &FloatHistogram) {
    let _ = b.detect_reset(a);
    let mut sum = a.clone();
    sum.add(b);
    let mut difference = b.clone();
    difference.sub(a);
    let points = [HistogramPoint { t: 0, h: a }, HistogramPoint { t: 15_000, h: b }];
    let window = RateWindow {
        end_ms: 20_000,
        range_ms: 60_000,
        per_second: true,
        counter: true,
    };
    if let Some(rate) = histogram_rate(&points, window) {
        let _ = rate.quantile(0.9);
    }
}
