//! Cases from Prometheus's promqltest data; filled below.
