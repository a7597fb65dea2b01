//! `/metrics` and `/readyz`: after real calls, the Prometheus exposition (parsed by a
//! Prometheus text parser) counts exactly those calls under go-grpc-prometheus's names and
//! labels, the HTTP requests by handler and status, and the trust's own figures; `/readyz`
//! answers ready while serving and not ready once draining.

use std::time::Duration;

use datatrust_core::NoteSigner;
use datatrust_proto::v1;
use datatrust_proto::v1::auth_service_client::AuthServiceClient;
use datatrust_server::ServeOptions;
use datatrust_tests::{TestTrust, http_get};

/// The value of the sample `name` whose labels include all of `labels`.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name)
        .filter(|sample| {
            labels
                .iter()
                .all(|(label, value)| sample.labels.get(label) == Some(*value))
        })
        .collect();
    assert_eq!(found.len(), 1, "one sample of {name} {labels:?}: {found:?}");
    match &found[0].value {
        prometheus_parse::Value::Counter(value)
        | prometheus_parse::Value::Gauge(value)
        | prometheus_parse::Value::Untyped(value) => *value,
        prometheus_parse::Value::Histogram(buckets) => {
            buckets.last().map(|bucket| bucket.count).unwrap_or(0.0)
        }
        other => panic!("{name}: {other:?}"),
    }
}

async fn scraped(trust: &TestTrust) -> prometheus_parse::Scrape {
    let (status, headers, body) = http_get(trust.http_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(name, value)| name == "content-type" && value.starts_with("text/plain")),
        "{headers:?}"
    );
    let text = String::from_utf8(body).unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .expect("a Prometheus text exposition")
}

#[tokio::test]
async fn metrics_count_the_calls_made_under_the_standard_names() {
    let trust = TestTrust::start().await;
    let trustee = trust.trustee_session().await;
    for _ in 0..3 {
        trustee.auth().who_am_i(v1::WhoAmIRequest {}).await.unwrap();
    }
    let mut anonymous = AuthServiceClient::new(trust.channel.clone());
    for _ in 0..2 {
        let refused = anonymous.who_am_i(v1::WhoAmIRequest {}).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }
    let (status, _, _) = http_get(trust.http_addr, "/log/checkpoint").await;
    assert_eq!(status, 200);
    let (status, _, _) = http_get(trust.http_addr, "/log/tile/0/999").await;
    assert_eq!(status, 404);
    let size = v1::log_service_client::LogServiceClient::new(trust.channel.clone())
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .tree_size;

    let scrape = scraped(&trust).await;
    let who_am_i = [
        ("grpc_type", "unary"),
        ("grpc_service", "datatrust.v1.AuthService"),
        ("grpc_method", "WhoAmI"),
    ];
    assert_eq!(sample(&scrape, "grpc_server_started_total", &who_am_i), 5.0);
    let code = |code| {
        let mut labels = who_am_i.to_vec();
        labels.push(("grpc_code", code));
        sample(&scrape, "grpc_server_handled_total", &labels)
    };
    assert_eq!(code("OK"), 3.0);
    assert_eq!(code("Unauthenticated"), 2.0);
    assert_eq!(
        sample(&scrape, "grpc_server_handling_seconds_count", &who_am_i),
        5.0
    );
    let login = [
        ("grpc_service", "datatrust.v1.AuthService"),
        ("grpc_method", "Login"),
        ("grpc_code", "OK"),
    ];
    assert_eq!(sample(&scrape, "grpc_server_handled_total", &login), 1.0);
    assert_eq!(
        sample(
            &scrape,
            "http_requests_total",
            &[("handler", "/log"), ("code", "200")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &scrape,
            "http_requests_total",
            &[("handler", "/log"), ("code", "404")]
        ),
        1.0
    );
    assert_eq!(sample(&scrape, "datatrust_log_size", &[]), size as f64);
    assert_eq!(
        sample(&scrape, "datatrust_log_appends_total", &[]),
        size as f64,
        "every entry of this trust was appended by this node"
    );
    assert_eq!(sample(&scrape, "datatrust_releases_building", &[]), 0.0);

    // Every metric the Grafana dashboard in deploy/ charts is one this exposition has.
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana-dashboard.json"),
    )
    .unwrap();
    let served: std::collections::BTreeSet<&str> = scrape
        .samples
        .iter()
        .map(|sample| sample.metric.as_str())
        .collect();
    let mut charted = 0;
    for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if ["grpc_server_", "http_requests", "datatrust_"]
            .iter()
            .any(|prefix| word.starts_with(prefix))
        {
            charted += 1;
            assert!(
                served.contains(word)
                    || served.contains(format!("{word}_count").as_str())
                    || served.contains(word.trim_end_matches("_bucket")),
                "the dashboard charts {word}, which /metrics does not serve"
            );
        }
    }
    assert!(charted >= 10);

    // The clock moves on with no entry logged: the checkpoint's age grows with it.
    trust.clock.advance(90);
    let later = scraped(&trust).await;
    assert!(sample(&later, "datatrust_seconds_since_last_checkpoint", &[]) >= 90.0);
}

#[tokio::test]
async fn ready_while_serving_and_not_while_draining() {
    let mut trust = TestTrust::start_with(ServeOptions {
        drain_grace: Duration::from_secs(1),
        ..ServeOptions::default()
    })
    .await;
    let (status, _, body) = http_get(trust.http_addr, "/readyz").await;
    assert_eq!((status, body.as_slice()), (200, b"ready\n".as_slice()));
    trust.begin_stop();
    // Draining starts at once and lasts the grace: polled, not slept for.
    let mut answer = (200, Vec::new());
    for _ in 0..100_000 {
        let (status, _, body) = http_get(trust.http_addr, "/readyz").await;
        answer = (status, body);
        if status == 503 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        (answer.0, answer.1.as_slice()),
        (503, b"draining\n".as_slice())
    );
    trust.stop().await;
}

/// A stand-in OpenTelemetry collector: answers every OTLP/HTTP request 200 and keeps the
/// bodies it was sent.
async fn otlp_collector() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>,
) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keeping = std::sync::Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let keeping = std::sync::Arc::clone(&keeping);
            tokio::spawn(async move {
                let mut stream = tokio::io::BufReader::new(stream);
                loop {
                    let mut request_line = String::new();
                    if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut header = String::new();
                        stream.read_line(&mut header).await.unwrap();
                        if header.trim().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    stream.read_exact(&mut body).await.unwrap();
                    keeping
                        .lock()
                        .unwrap()
                        .push((request_line.trim().to_owned(), body));
                    stream
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .unwrap();
                }
            });
        }
    });
    (address, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_when_the_standard_variable_is_set() {
    if datatrust_tests::skip_in_postgres_run(
        "spans_are_exported_over_otlp_when_the_standard_variable_is_set",
        "it starts a `datatrust serve` process of its own",
    ) {
        return;
    }
    let (collector, received) = otlp_collector().await;
    let directory = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{collector}");
    let server = datatrust_tests::ServerProcess::start_with_env(
        &directory.path().join("data"),
        &[],
        std::process::Stdio::null(),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    );
    let trustee = NoteSigner::parse(
        &std::fs::read_to_string(directory.path().join("data/initial-trustee.key")).unwrap(),
    )
    .unwrap();
    let channel = datatrust_cli::client::connect(&server.grpc_url, None)
        .await
        .unwrap();
    let session = datatrust_cli::client::sign_in(&channel, &trustee)
        .await
        .unwrap();
    session.auth().who_am_i(v1::WhoAmIRequest {}).await.unwrap();
    // Spans are sent in batches; stopping the server sends the last one.
    server.signal("-TERM");
    assert!(
        server
            .wait(std::time::Duration::from_secs(30))
            .await
            .success()
    );
    let received = received.lock().unwrap();
    let traces: Vec<&(String, Vec<u8>)> = received
        .iter()
        .filter(|(request, _)| request.starts_with("POST /v1/traces"))
        .collect();
    assert!(
        !traces.is_empty(),
        "no OTLP trace export: {:?}",
        received
            .iter()
            .map(|(request, _)| request)
            .collect::<Vec<_>>()
    );
    let contains = |needle: &[u8]| {
        traces
            .iter()
            .any(|(_, body)| body.windows(needle.len()).any(|window| window == needle))
    };
    assert!(contains(b"WhoAmI"), "the WhoAmI call's span is exported");
    assert!(contains(b"datatrust"), "under the service name datatrust");
}
