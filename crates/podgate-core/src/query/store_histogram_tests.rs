//! The store keeps native histogram points like float points: per series, bounded, within
//! the retention window, ingested atomically.

use super::*;
use crate::exposition::protobuf::{self, HistogramOptions};
use crate::histogram::{FloatHistogram, RateWindow, histogram_rate};

fn store_for(query: &str, limits: StoreLimits) -> SeriesStore {
    let q = parse(query).expect("query");
    SeriesStore::new(Interest::new([&q]), limits)
}

/// A histogram with `n` observations in bucket (1,2] at schema 0.
fn histogram(n: f64) -> FloatHistogram {
    FloatHistogram {
        count: n,
        sum: 1.5 * n,
        positive: vec![(1, n)],
        ..FloatHistogram::default()
    }
}

type H<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a FloatHistogram);

fn ingest_histograms(store: &mut SeriesStore, t: i64, samples: &[H<'_>]) {
    store
        .ingest_samples(t, samples.iter().copied())
        .expect("ingested");
}

#[test]
fn histogram_points_are_kept_per_series_and_read_by_window() {
    let mut store = store_for("rate(lat[1m])", StoreLimits::default());
    for i in 0..5 {
        let h = histogram(10.0 * i as f64);
        ingest_histograms(&mut store, i * 15_000, &[("lat", &[("path", "/")], &h)]);
    }
    let series = store.series().first().expect("one series");
    assert!(series.points.is_empty(), "no float points");
    let counts: Vec<(i64, f64)> = series
        .histogram_points(0, 60_000)
        .map(|p| (p.t, p.h.count))
        .collect();
    // Left-open window: the point at 0 is out.
    assert_eq!(
        counts,
        [
            (15_000, 10.0),
            (30_000, 20.0),
            (45_000, 30.0),
            (60_000, 40.0)
        ]
    );
    assert_eq!(series.histogram_at(45_000).map(|h| h.count), Some(30.0));
    assert_eq!(series.histogram_at(44_999), None);
    // The follow-up's rate(): 10 observations per 15 s, over a full window.
    let points: Vec<_> = series.histogram_points(0, 60_000).collect();
    let window = RateWindow {
        end_ms: 60_000,
        range_ms: 60_000,
        per_second: true,
        counter: true,
    };
    let rate = histogram_rate(&points, window).expect("a rate");
    assert!((rate.count - 10.0 / 15.0).abs() < 1e-12, "{}", rate.count);
}

#[test]
fn histogram_points_are_bounded_and_age_out() {
    let limits = StoreLimits {
        max_points_per_series: 3,
        ..StoreLimits::default()
    };
    let mut store = store_for("rate(lat[10m])", limits);
    for i in 0..6 {
        let h = histogram(i as f64);
        ingest_histograms(&mut store, i * 10_000, &[("lat", &[], &h)]);
    }
    let series = store.series().first().expect("one series");
    assert_eq!(series.histograms.len(), 3);
    assert_eq!(series.evicted_until_ms, Some(20_000));
    // An instant query keeps only the latest scrape; a series gone from the body ages out.
    let mut store = store_for("lat", StoreLimits::default());
    let h = histogram(1.0);
    ingest_histograms(&mut store, 1_000, &[("lat", &[], &h)]);
    ingest_histograms(&mut store, 2_000, &[("lat", &[], &h)]);
    assert_eq!(store.series().first().map(|s| s.histograms.len()), Some(1));
    ingest_histograms(&mut store, 3_000, &[]);
    assert!(store.is_empty());
}

#[test]
fn a_failed_scrape_leaves_histogram_points_as_they_were() {
    let limits = StoreLimits {
        max_series: 1,
        retention_margin_ms: 0,
        ..StoreLimits::default()
    };
    let mut store = store_for("rate({__name__=~\"lat.*\"}[20s])", limits);
    let (a, b) = (histogram(1.0), histogram(2.0));
    ingest_histograms(&mut store, 10_000, &[("lat", &[], &a)]);
    ingest_histograms(&mut store, 20_000, &[("lat", &[], &a)]);
    // At 40 s the point at 10 s leaves the window, then a second series breaks the limit.
    let err = store
        .ingest_samples(
            40_000,
            [("lat", &[][..], &b), ("lat2", &[][..], &b)]
                .iter()
                .copied(),
        )
        .expect_err("over the series limit");
    assert!(
        matches!(err, IngestError::TooManySeries { limit: 1 }),
        "{err}"
    );
    let series = store.series().first().expect("kept");
    let times: Vec<i64> = series.histograms.iter().map(|p| p.t).collect();
    assert_eq!(times, [10_000, 20_000]);
    assert_eq!(store.last_scrape_ms(), Some(20_000));
}

#[test]
fn a_histogram_over_the_bucket_limit_loses_resolution_or_is_refused() {
    let wide = FloatHistogram {
        schema: 2,
        count: 8.0,
        positive: (1..=8).map(|i| (i, 1.0)).collect(),
        ..FloatHistogram::default()
    };
    let limits = StoreLimits {
        max_histogram_buckets: 3,
        ..StoreLimits::default()
    };
    let mut store = store_for("lat", limits);
    ingest_histograms(&mut store, 1_000, &[("lat", &[], &wide)]);
    let kept = store
        .series()
        .first()
        .and_then(|s| s.histogram_at(1_000))
        .expect("kept");
    // Schema 2 → 0: buckets 1..4 are (1,2], 5..8 are (2,4].
    assert_eq!(
        (kept.schema, kept.positive.clone()),
        (0, vec![(1, 4.0), (2, 4.0)])
    );
    assert_eq!(kept.count, 8.0);

    let spread = FloatHistogram {
        schema: -4,
        count: 3.0,
        positive: vec![(0, 1.0), (5, 1.0), (9, 1.0)],
        ..FloatHistogram::default()
    };
    let limits = StoreLimits {
        max_histogram_buckets: 2,
        ..StoreLimits::default()
    };
    let mut store = store_for("lat", limits);
    let err = store
        .ingest_samples(1_000, [("lat", &[][..], &spread)])
        .expect_err("too many buckets");
    assert!(
        err.to_string()
            .contains("native histogram lat has 3 buckets, more than the 2 bucket limit"),
        "{err}"
    );
    assert!(store.is_empty());
}

#[test]
fn a_protobuf_body_stores_native_and_classic_series() {
    let body = protobuf::test_bodies::native_and_classic_histogram("lat");
    let decoded = protobuf::decode(body, HistogramOptions::PODGATE).expect("valid");
    let q = parse("lat").expect("query");
    let q2 = parse("lat_bucket{le=\"+Inf\"}").expect("query");
    let mut store = SeriesStore::new(Interest::new([&q, &q2]), StoreLimits::default());
    let stats = store
        .ingest_samples(1_000, decoded.samples())
        .expect("ingested");
    assert_eq!((stats.samples, stats.kept), (5, 3));
    let native = store
        .series()
        .iter()
        .find_map(|s| s.histogram_at(1_000))
        .expect("the native histogram");
    assert_eq!(
        (native.count, native.sum, native.positive.clone()),
        (2.0, 3.0, vec![(1, 2.0)])
    );
    // The histogram is not read as a number: the query must take one from it.
    let got = q
        .eval(&store, 1_000)
        .expect_err("a histogram is not one number");
    assert!(got.message.contains("histogram_count(lat)"), "{got}");
    let count = parse("histogram_count(lat)").expect("query");
    assert_eq!(
        count.eval(&store, 1_000).ok(),
        Some(QueryValue::Number(2.0))
    );
    assert_eq!(
        q2.eval(&store, 1_000).ok(),
        Some(QueryValue::Number(2.0)),
        "the classic +Inf bucket"
    );
}
