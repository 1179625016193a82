//! Protobuf bodies for tests elsewhere in the crate, encoded with the wire messages.

use prost::Message as _;
use prost::bytes::Bytes;

use super::wire::*;

/// One histogram family `name` with one metric: 2 observations in (1,2] as a native
/// histogram at schema 0, and one classic bucket `le=1` holding none of them; sum 3.
pub(crate) fn native_and_classic_histogram(name: &str) -> Vec<u8> {
    let histogram = Histogram {
        sample_count: 2,
        sample_sum: 3.0,
        bucket: vec![Bucket {
            upper_bound: 1.0,
            cumulative_count: 0,
            ..Bucket::default()
        }],
        positive_span: vec![BucketSpan {
            offset: 1,
            length: 1,
        }],
        positive_delta: vec![2],
        ..Histogram::default()
    };
    let metric = Metric {
        histogram: Some(histogram),
        ..Metric::default()
    };
    let family = MetricFamily {
        name: name.to_string(),
        r#type: HISTOGRAM,
        metric: vec![Bytes::from(metric.encode_to_vec())],
        ..MetricFamily::default()
    };
    family.encode_length_delimited_to_vec()
}
