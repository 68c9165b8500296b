//! With span export on: the exact `traceparent` order-service sends its sidecar (the trace of
//! the call it serves, with its own client span as the parent) and the spans an OTLP receiver
//! gets for one order. A file of its own: export is process-wide.

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use order_service::{AppState, app};
use service_kit::http::HttpConfig;
use test_kit::spans::{Exported, SpanKind, attribute, hex, named};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_gets_the_callers_trace_with_the_publish_span_as_its_parent() {
    let exported = Exported::start("order-service").await;
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1.0/publish/pubsub/OrderPlaced"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&sidecar)
        .await;
    let state = AppState {
        dapr: test_kit::client(&sidecar),
        pubsub_name: "pubsub".to_owned(),
        http: HttpConfig::default(),
    };
    let request = Request::post("/order")
        .header("content-type", "application/json")
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .body(Body::from(
            r#"{"orderId":"order-1001","itemId":"item1","quantity":10}"#,
        ))
        .unwrap();
    let (status, _) = test_kit::call(app(state), request).await;
    assert_eq!(status, StatusCode::OK);

    let published = &sidecar.received_requests().await.unwrap()[0];
    let sent = published.headers["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    let spans = exported.spans().await;
    let server = named(&spans, "POST /order");
    let publish = named(&spans, "POST /v1.0/publish/pubsub/OrderPlaced");
    assert_eq!(
        sent,
        format!("00-{TRACE_ID}-{}-01", hex(&publish.span_id)),
        "the trace id kept, the publish span as the parent"
    );
    assert_eq!(hex(&server.parent_span_id), CALLER_SPAN);
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(publish.parent_span_id, server.span_id);
    assert_eq!(publish.kind, SpanKind::Client as i32);
    assert_eq!(attribute(server, "order.id").as_deref(), Some("order-1001"));
    assert_eq!(attribute(server, "order.item_id").as_deref(), Some("item1"));
    assert_eq!(spans.len(), 2);
}
