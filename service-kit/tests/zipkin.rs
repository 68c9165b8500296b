//! The exact request the Zipkin exporter (`OTEL_TRACES_EXPORTER=zipkin`) sends: Zipkin's v2
//! JSON, every span named after its service, which Zipkin needs to file it.
//!
//! A file of its own, because export is process-wide (one global subscriber and provider).

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use service_kit::otel::{Exporter, OtelConfig};
use service_kit::{TraceContext, trace};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipkin_gets_v2_json_spans_with_the_service_name() {
    let zipkin = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/spans"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&zipkin)
        .await;
    let config = OtelConfig {
        exporter: Exporter::Zipkin(format!("{}/api/v2/spans", zipkin.uri())),
        service_name: "checkout".to_owned(),
    };
    let export = test_kit::spans::install(config).await;

    let (sent, span) = trace::start_trace("checkout order", "7");
    drop(span);
    tokio::task::spawn_blocking(move || export.shutdown())
        .await
        .unwrap();

    let posted = zipkin.received_requests().await.unwrap();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].headers["content-type"], "application/json");
    let spans: Vec<Value> = serde_json::from_slice(&posted[0].body).unwrap();
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    assert_eq!(span["localEndpoint"]["serviceName"], "checkout");
    assert_eq!(span["name"], "checkout order");
    assert_eq!(Some(span["traceId"].as_str().unwrap()), sent.trace_id());
    assert_eq!(span["tags"]["order.id"], "7");
    // The exporter writes a root's parent as zeros, which Zipkin reads as none.
    assert_eq!(span["parentId"], "0000000000000000", "a root: {span}");
    assert_ne!(sent, TraceContext::default());
}
