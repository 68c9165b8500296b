//! The spans a service exports and the `traceparent` it sends its sidecar, with export on: the
//! exact OTLP/HTTP request an OTLP receiver gets, and the exact header a sidecar gets.
//!
//! One test, because export is process-wide (one global subscriber and tracer provider).

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use serde_json::json;
use service_kit::dapr::StateWrite;
use service_kit::events::OrderPlaced;
use service_kit::http::{HttpConfig, finish};
use service_kit::{DaprClient, TraceContext, trace};
use test_kit::spans::{Exported, Span, SpanKind, attribute, hex, named};
use tracing::Instrument as _;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
/// What the publishing sidecar put in the CloudEvent (another span of the same trace).
const EVENT_SPAN: &str = "b7ad6b7169203331";

/// A publisher (`POST /order`) and a subscriber (`POST /orders`) as the services are built.
fn app(dapr: DaprClient) -> Router {
    let publish = dapr.clone();
    let public = Router::new()
        .route(
            "/order",
            post(move |trace: TraceContext| async move {
                let order = json!({"orderId": "order-1", "itemId": "item1", "quantity": 1});
                let sent = publish.publish("pubsub", "OrderPlaced", &order, &trace);
                sent.await
                    .map(|()| StatusCode::OK)
                    .map_err(|_| StatusCode::BAD_GATEWAY)
            }),
        )
        .route(
            "/orders",
            post(move |trace: TraceContext| async move {
                let order = OrderPlaced::from_json(
                    json!({"orderId": "order-1", "itemId": "item1", "quantity": 1})
                        .as_object()
                        .unwrap(),
                )
                .unwrap();
                let event =
                    TraceContext::from_traceparent(&format!("00-{TRACE_ID}-{EVENT_SPAN}-01"));
                let (trace, span) =
                    trace::consume(trace, &event, "OrderPlaced", Some("e-1"), &order);
                let item = [StateWrite {
                    key: "item1",
                    value: json!(1),
                    etag: None,
                    options: None,
                    metadata: Default::default(),
                }];
                let saved = dapr
                    .save_state("statestore", &item, &trace)
                    .instrument(span.clone());
                let status = saved.await.map(|()| StatusCode::OK);
                trace::record_outcome(&span, "applied");
                status.map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
            }),
        );
    finish(public, Router::new(), &HttpConfig::default())
}

/// The parent span id in the `traceparent` the sidecar got at `at`.
async fn parent_sent(sidecar: &MockServer, at: &str) -> String {
    let requests = sidecar.received_requests().await.unwrap();
    let request = requests.iter().find(|r| r.url.path() == at).unwrap();
    let traceparent = request.headers["traceparent"].to_str().unwrap();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts[1], TRACE_ID, "{traceparent}");
    assert_eq!(parts[3], "01", "{traceparent}");
    parts[2].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_posted_to_the_otlp_receiver_and_their_ids_are_the_parents_the_sidecar_gets() {
    let exported = Exported::start("order-service").await;
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&sidecar)
        .await;

    let app = app(test_kit::client(&sidecar));
    for uri in ["/order", "/orders"] {
        let request = Request::post(uri)
            .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
            .body(Body::empty())
            .unwrap();
        let (status, _) = test_kit::call_text(app.clone(), request).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
    }
    let publish_parent = parent_sent(&sidecar, "/v1.0/publish/pubsub/OrderPlaced").await;
    let save_parent = parent_sent(&sidecar, "/v1.0/state/statestore").await;
    // A delivery without a traceparent: its server span starts a trace of its own, and the
    // consumer span joins the event's.
    sidecar.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&sidecar)
        .await;
    let request = Request::post("/orders").body(Body::empty()).unwrap();
    let (status, _) = test_kit::call_text(app.clone(), request).await;
    assert_eq!(status, StatusCode::OK);
    let untraced_save_parent = parent_sent(&sidecar, "/v1.0/state/statestore").await;
    let mut spans = exported.spans().await;
    assert_eq!(spans.len(), 8);
    // The untraced delivery: a server span in a trace of its own, a consumer span under the
    // event's span (no link: the event is its parent), and its state write under that.
    let take = |spans: &mut Vec<Span>, pick: &dyn Fn(&Span) -> bool| {
        let at = spans.iter().position(pick).unwrap();
        spans.remove(at)
    };
    let untraced = take(&mut spans, &|s| s.parent_span_id.is_empty());
    assert_eq!(untraced.name, "POST /orders");
    assert_ne!(hex(&untraced.trace_id), TRACE_ID);
    let joined = take(&mut spans, &|s| hex(&s.parent_span_id) == EVENT_SPAN);
    assert_eq!(joined.name, "process OrderPlaced");
    assert_eq!(hex(&joined.trace_id), TRACE_ID);
    assert!(joined.links.is_empty());
    let joined_save = take(&mut spans, &|s| hex(&s.span_id) == untraced_save_parent);
    assert_eq!(joined_save.parent_span_id, joined.span_id);
    assert_eq!(hex(&joined_save.trace_id), TRACE_ID);

    let by_name = |name: &str| named(&spans, name);
    assert_eq!(spans.len(), 5);
    for span in &spans {
        assert_eq!(hex(&span.trace_id), TRACE_ID, "{}", span.name);
    }

    // Publisher: server span under the caller's span, client span under it; the sidecar gets
    // the client span as its parent, not the caller's span.
    let server = by_name("POST /order");
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(hex(&server.parent_span_id), CALLER_SPAN);
    assert_eq!(
        attribute(server, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(attribute(server, "url.path").as_deref(), Some("/order"));
    assert_eq!(attribute(server, "http.route").as_deref(), Some("/order"));
    assert_eq!(
        attribute(server, "http.response.status_code").as_deref(),
        Some("200")
    );
    let publish = by_name("POST /v1.0/publish/pubsub/OrderPlaced");
    assert_eq!(publish.kind, SpanKind::Client as i32);
    assert_eq!(publish.parent_span_id, server.span_id);
    assert_eq!(hex(&publish.span_id), publish_parent);
    assert_ne!(publish_parent, CALLER_SPAN);
    assert_eq!(
        attribute(publish, "http.response.status_code").as_deref(),
        Some("204")
    );

    // Subscriber: consumer span under the delivery's server span, linked to the event; the
    // state write under the consumer span.
    let delivery = by_name("POST /orders");
    assert_eq!(hex(&delivery.parent_span_id), CALLER_SPAN);
    let consumer = by_name("process OrderPlaced");
    assert_eq!(consumer.kind, SpanKind::Consumer as i32);
    assert_eq!(consumer.parent_span_id, delivery.span_id);
    assert_eq!(consumer.links.len(), 1);
    assert_eq!(hex(&consumer.links[0].span_id), EVENT_SPAN);
    for (key, want) in [
        ("messaging.system", "dapr"),
        ("messaging.operation.type", "process"),
        ("messaging.destination.name", "OrderPlaced"),
        ("messaging.message.id", "e-1"),
        ("order.id", "order-1"),
        ("order.item_id", "item1"),
        ("order.outcome", "applied"),
    ] {
        assert_eq!(attribute(consumer, key).as_deref(), Some(want), "{key}");
    }
    let save = by_name("POST /v1.0/state/statestore");
    assert_eq!(save.kind, SpanKind::Client as i32);
    assert_eq!(save.parent_span_id, consumer.span_id);
    assert_eq!(hex(&save.span_id), save_parent);
}
