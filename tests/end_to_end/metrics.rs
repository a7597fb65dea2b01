//! `/metrics` and `/readyz`: after real calls, the Prometheus exposition (parsed by a
//! Prometheus text parser) counts exactly those calls under go-grpc-prometheus's names and
//! labels, the HTTP requests by handler and status, and the trust's own figures; `/readyz`
//! answers ready while serving and not ready once draining.

use std::time::Duration;

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
