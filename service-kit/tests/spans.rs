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
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use serde_json::json;
use service_kit::dapr::StateWrite;
use service_kit::events::OrderPlaced;
use service_kit::http::{HttpConfig, finish};
use service_kit::otel::{Export, Exporter, OtelConfig};
use service_kit::{DaprClient, TraceContext, telemetry, trace};
use tracing::Instrument as _;
use tracing_subscriber::prelude::*;
use wiremock::matchers::{method, path};
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|kv| kv.key == key)?;
    match value.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
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
    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&collector)
        .await;
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&sidecar)
        .await;
    let config = OtelConfig {
        exporter: Exporter::Otlp(format!("{}/v1/traces", collector.uri())),
        service_name: "order-service".to_owned(),
    };
    let (export, tracer) = Export::start(&config).unwrap().unwrap();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(telemetry::span_layer(tracer)),
    )
    .unwrap();

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
    tokio::task::spawn_blocking(move || export.shutdown())
        .await
        .unwrap();

    let posted = collector.received_requests().await.unwrap();
    assert!(!posted.is_empty(), "no spans were posted");
    let mut spans = Vec::new();
    for request in &posted {
        assert_eq!(request.headers["content-type"], "application/x-protobuf");
        let export = ExportTraceServiceRequest::decode(request.body.as_slice()).unwrap();
        for resource in export.resource_spans {
            let service = resource.resource.as_ref().and_then(|r| {
                r.attributes
                    .iter()
                    .find(|kv| kv.key == "service.name")
                    .cloned()
            });
            let service = service.and_then(|kv| kv.value?.value);
            assert_eq!(
                service,
                Some(AnyValue::StringValue("order-service".to_owned()))
            );
            spans.extend(resource.scope_spans.into_iter().flat_map(|s| s.spans));
        }
    }
    let by_name = |name: &str| {
        let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
        assert_eq!(
            found.len(),
            1,
            "{name} in {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        found[0]
    };
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
