//! Fuzzes the exposition parser with arbitrary bytes in both formats.
//!
//! Besides "never panics", every sample produced must be internally consistent and must
//! survive a round trip through its Display form (text exposition syntax), and every error
//! must name a line that exists and end the iteration.

#![no_main]

use libfuzzer_sys::fuzz_target;
use podgate_core::exposition::{Format, Sample, decode_body, parse};

fuzz_target!(|data: &[u8]| {
    let line_count = data.iter().filter(|&&c| c == b'\n').count() + 1;
    let body = match decode_body(data) {
        Ok(body) => body,
        Err(e) => {
            assert!((1..=line_count).contains(&e.line), "{e}");
            return;
        }
    };
    for format in [Format::Text, Format::OpenMetrics] {
        check(body, format, line_count);
    }
});

fn check(body: &str, format: Format, line_count: usize) {
    let mut parser = parse(body, format);
    while let Some(item) = parser.next() {
        match item {
            Ok(sample) => {
                check_sample(&sample);
                if let Some(exemplar) = parser.exemplar() {
                    assert_eq!(exemplar.labels.iter().count(), exemplar.labels.len());
                }
                let _ = parser.metric_type(&sample.name);
                let _ = parser.help();
            }
            Err(e) => {
                assert!(
                    (1..=line_count).contains(&e.line),
                    "{e} ({line_count} lines)"
                );
                assert!(!e.message.is_empty());
                assert!(
                    parser.next().is_none(),
                    "the iterator must end after an error"
                );
                return;
            }
        }
    }
}

fn check_sample(sample: &Sample<'_>) {
    assert!(!sample.name.is_empty());
    let labels: Vec<_> = sample.labels.iter().collect();
    assert_eq!(labels.len(), sample.labels.len());
    for (i, (name, value)) in labels.iter().enumerate() {
        assert!(!name.is_empty());
        assert!(!value.is_empty(), "empty values are left out");
        assert!(
            labels.iter().skip(i + 1).all(|(other, _)| other != name),
            "duplicate label {name}"
        );
        assert_eq!(sample.labels.get(name).as_deref(), Some(&**value));
    }
    let json = serde_json::to_string(sample).expect("a sample serializes");
    assert!(json.starts_with('{'));

    // The text format cannot spell a negative timestamp (OpenMetrics can).
    if sample.timestamp_ms.is_some_and(|ts| ts < 0) {
        return;
    }
    let printed = sample.to_string();
    let mut again = parse(&printed, Format::Text);
    match again.next() {
        Some(Ok(reparsed)) => assert!(
            reparsed.same_as(sample),
            "{printed:?} reads back as {reparsed:?}, not {sample:?}"
        ),
        other => panic!("{printed:?} does not read back: {other:?}"),
    }
    assert!(
        again.next().is_none(),
        "{printed:?} reads back as several samples"
    );
}
