//! The scrape client against real HTTP servers on loopback.

use std::io::Write;
use std::time::Duration;

use podgate::exposition::Format;
use podgate::source::scrape::{self, ScrapeError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves one canned raw HTTP response per connection; returns the base URL.
async fn serve(response: Vec<u8>, hang: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                if hang {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                let _ = sock.write_all(&response).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/metrics")
}

fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status}\r\nConnection: close\r\n").into_bytes();
    for (k, v) in headers {
        r.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

fn client() -> reqwest::Client {
    podgate::source::init_tls();
    reqwest::Client::builder().build().expect("client")
}

async fn fetch(url: &str, limit: usize) -> Result<scrape::Scraped, ScrapeError> {
    scrape::fetch(&client(), url, Duration::from_millis(500), limit).await
}

/// The format and text of a scraped text body.
fn text(s: scrape::Scraped) -> (Format, String) {
    match s {
        scrape::Scraped::Text { format, body } => (format, body),
        scrape::Scraped::Protobuf { body } => panic!("a protobuf body of {} bytes", body.len()),
    }
}

#[tokio::test]
async fn text_and_openmetrics_by_content_type() {
    let body = b"up 1\n";
    let url = serve(
        response(
            "200 OK",
            &[
                ("Content-Type", "text/plain; version=0.0.4".into()),
                ("Content-Length", body.len().to_string()),
            ],
            body,
        ),
        false,
    )
    .await;
    let s = fetch(&url, 1024).await.expect("scrape");
    assert_eq!(text(s), (Format::Text, "up 1\n".to_string()));

    let body = b"up 1\n# EOF\n";
    let url = serve(
        response(
            "200 OK",
            &[(
                "Content-Type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8".into(),
            )],
            body,
        ),
        false,
    )
    .await;
    let s = fetch(&url, 1024).await.expect("scrape");
    assert_eq!(text(s).0, Format::OpenMetrics);

    // Protobuf bodies are bytes, not UTF-8 text.
    let body = [0x02, 0x0a, 0xff];
    let url = serve(
        response(
            "200 OK",
            &[(
                "Content-Type",
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; \
                 encoding=delimited; escaping=allow-utf-8"
                    .into(),
            )],
            &body,
        ),
        false,
    )
    .await;
    match fetch(&url, 1024).await.expect("scrape") {
        scrape::Scraped::Protobuf { body: got } => assert_eq!(got, body),
        other => panic!("expected protobuf, got {other:?}"),
    }
}

#[tokio::test]
async fn gzip_is_decoded_and_limited_after_decompression() {
    let plain = "x 1\n".repeat(10_000);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(plain.as_bytes()).expect("gzip");
    let gz = enc.finish().expect("gzip");
    assert!(gz.len() < 1024, "the compressed body must fit the limit");
    let resp = response(
        "200 OK",
        &[
            ("Content-Encoding", "gzip".into()),
            ("Content-Length", gz.len().to_string()),
        ],
        &gz,
    );
    let url = serve(resp, false).await;
    let s = fetch(&url, 1 << 20).await.expect("scrape");
    assert_eq!(text(s).1, plain);
    match fetch(&url, 4096).await {
        Err(ScrapeError::TooLarge { limit: 4096, .. }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn declared_and_streamed_oversize_bodies_are_refused() {
    let body = vec![b'#'; 10_000];
    let url = serve(
        response(
            "200 OK",
            &[("Content-Length", body.len().to_string())],
            &body,
        ),
        false,
    )
    .await;
    assert!(matches!(
        fetch(&url, 1000).await,
        Err(ScrapeError::TooLarge { .. })
    ));
    // No Content-Length: the limit is enforced while reading.
    let url = serve(response("200 OK", &[], &body), false).await;
    assert!(matches!(
        fetch(&url, 1000).await,
        Err(ScrapeError::TooLarge { .. })
    ));
}

#[tokio::test]
async fn status_timeout_refused_and_bad_bytes_are_errors_that_say_so() {
    let url = serve(response("500 Internal Server Error", &[], b"boom"), false).await;
    let e = fetch(&url, 1024).await.expect_err("500");
    assert!(matches!(e, ScrapeError::Status { status: 500, .. }));
    assert!(e.to_string().contains("HTTP status 500"), "{e}");

    let url = serve(response("200 OK", &[], b"x 1\n"), true).await;
    let e = fetch(&url, 1024).await.expect_err("hang");
    assert!(e.to_string().contains("timed out after 500ms"), "{e}");

    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let e = fetch(&format!("http://{addr}/metrics"), 1024)
        .await
        .expect_err("refused");
    assert!(matches!(e, ScrapeError::Connect { .. }), "{e}");

    let url = serve(response("200 OK", &[], b"x 1\n\xff\xfe\n"), false).await;
    let e = fetch(&url, 1024).await.expect_err("utf8");
    assert!(matches!(e, ScrapeError::NotUtf8 { offset: 4, .. }), "{e}");
}

#[tokio::test]
async fn a_body_cut_short_is_an_error_not_a_partial_scrape() {
    let resp = response(
        "200 OK",
        &[("Content-Length", "1000".into())],
        b"x 1\ny 2\n",
    );
    let url = serve(resp, false).await;
    let e = fetch(&url, 4096).await.expect_err("short body");
    assert!(matches!(e, ScrapeError::Other { .. }), "{e}");
}
