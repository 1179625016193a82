//! A scraped body into a pod's series store, whole or not at all: text and OpenMetrics
//! bodies through the exposition parser, protobuf bodies through its decoder (native
//! histograms and the classic series podgate keeps, `HistogramOptions::PODGATE`).

use crate::exposition::protobuf::{self, HistogramOptions};
use crate::exposition::{self, Format, ParseError};
use crate::query::{IngestError, IngestStats, SeriesStore};

/// A scraped body: text checked to be UTF-8, or protobuf bytes.
#[derive(Debug, Clone)]
pub enum Scraped {
    Text { format: Format, body: String },
    Protobuf { body: Vec<u8> },
}

/// Why a scraped body was not taken (a store limit is the store's [`IngestError`]).
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("invalid exposition: {0}")]
    Parse(ParseError),
    #[error("invalid protobuf exposition: {0}")]
    Protobuf(protobuf::ProtoError),
    #[error("more than the {0} sample limit (--sample-limit)")]
    TooManySamples(usize),
}

/// Parses `scraped` into `store` as the scrape at `now`: invalid exposition, more than
/// `sample_limit` samples or a store limit reject the scrape with an error that says which.
pub fn ingest(
    store: &mut SeriesStore,
    now: i64,
    scraped: &Scraped,
    sample_limit: usize,
) -> Result<IngestStats, IngestError<BodyError>> {
    let mut count = 0usize;
    let mut limit = move || {
        count += 1;
        if count > sample_limit {
            Err(BodyError::TooManySamples(sample_limit))
        } else {
            Ok(())
        }
    };
    match scraped {
        Scraped::Text { format, body } => {
            let samples =
                exposition::parse(body, *format).map(|s| limit().and(s.map_err(BodyError::Parse)));
            store.ingest(now, samples)
        }
        Scraped::Protobuf { body } => {
            let decoded = protobuf::decode(body.clone(), HistogramOptions::PODGATE)
                .map_err(|e| IngestError::Source(BodyError::Protobuf(e)))?;
            let samples = decoded.samples().map(|s| limit().map(|()| s));
            store.ingest(now, samples)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Interest, StoreLimits};

    fn store(query: &str, limits: StoreLimits) -> SeriesStore {
        let q = crate::query::parse(query).expect("query");
        SeriesStore::new(Interest::new([&q]), limits)
    }

    fn text(body: &str) -> Scraped {
        Scraped::Text {
            format: Format::Text,
            body: body.to_string(),
        }
    }

    fn ok(result: Result<IngestStats, IngestError<BodyError>>) -> IngestStats {
        result.unwrap_or_else(|e| panic!("ingest failed: {e}"))
    }

    #[test]
    fn the_sample_limit_rejects_the_whole_scrape_and_names_the_limit() {
        let mut s = store("sum(x)", StoreLimits::default());
        let body: String = (0..6).map(|i| format!("x{{i=\"{i}\"}} 1\n")).collect();
        assert_eq!(ok(ingest(&mut s, 1_000, &text(&body), 6)).kept, 6);
        assert_eq!(s.len(), 6);
        let more = format!("{body}x{{i=\"6\"}} 1\n");
        let e = ingest(&mut s, 2_000, &text(&more), 6)
            .expect_err("over the limit")
            .to_string();
        assert!(
            e.contains("more than the 6 sample limit (--sample-limit)"),
            "{e}"
        );
        // Nothing of the rejected scrape was kept.
        assert_eq!(s.len(), 6);
        assert_eq!(s.last_scrape_ms(), Some(1_000));
        // Samples of series no rule reads count too: the limit bounds the parsing work.
        let other: String = (0..7).map(|i| format!("y{{i=\"{i}\"}} 1\n")).collect();
        let e = ingest(&mut s, 3_000, &text(&other), 6)
            .expect_err("over the limit")
            .to_string();
        assert!(e.contains("6 sample limit"), "{e}");
    }

    #[test]
    fn invalid_exposition_and_store_limits_are_errors_that_say_which() {
        let mut s = store("sum(x)", StoreLimits::default());
        let e = ingest(&mut s, 1_000, &text("x 1\nx{ 2\n"), 100)
            .expect_err("invalid")
            .to_string();
        assert!(e.starts_with("invalid exposition: line 2:"), "{e}");
        let limits = StoreLimits {
            max_series: 3,
            max_label_bytes: 16,
            ..Default::default()
        };
        let mut s = store("sum(x)", limits);
        let body: String = (0..4).map(|i| format!("x{{i=\"{i}\"}} 1\n")).collect();
        let e = ingest(&mut s, 1_000, &text(&body), 100)
            .expect_err("series")
            .to_string();
        assert!(e.contains("more than 3 series"), "{e}");
        assert!(e.contains("--series-limit"), "{e}");
        let long = format!("x{{path=\"{}\"}} 1\n", "a".repeat(17));
        let e = ingest(&mut s, 2_000, &text(&long), 100)
            .expect_err("label")
            .to_string();
        assert!(
            e.contains(
                "the value of label `path` is 17 bytes, over the 16 byte label length limit"
            ),
            "{e}"
        );
        assert!(e.contains("--label-limit"), "{e}");
        assert!(s.is_empty());
    }

    #[test]
    fn protobuf_bodies_are_decoded_limited_and_refused_with_their_offset() {
        let body = protobuf::test_bodies::native_and_classic_histogram("lat");
        let mut s = store("lat", StoreLimits::default());
        // The native histogram, _count, _sum and two buckets.
        let stats = ok(ingest(
            &mut s,
            1_000,
            &Scraped::Protobuf { body: body.clone() },
            5,
        ));
        assert_eq!((stats.samples, stats.kept), (5, 1));
        let e = ingest(&mut s, 2_000, &Scraped::Protobuf { body: body.clone() }, 4)
            .expect_err("over the limit")
            .to_string();
        assert!(e.contains("more than the 4 sample limit"), "{e}");
        let cut = body.get(..body.len() - 1).unwrap_or_default().to_vec();
        let e = ingest(&mut s, 3_000, &Scraped::Protobuf { body: cut }, 100)
            .expect_err("cut")
            .to_string();
        assert!(
            e.starts_with("invalid protobuf exposition: byte offset 0: message 1: its length"),
            "{e}"
        );
        assert_eq!(s.last_scrape_ms(), Some(1_000));
    }
}
