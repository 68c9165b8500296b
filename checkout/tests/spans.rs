//! With span export on: the exact `traceparent` checkout sends its sidecar for one order (a new
//! trace, its client span as the parent) and the spans an OTLP receiver gets for it. A file of
//! its own: export is process-wide.

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use checkout::Checkout;
use checkout::config::LoopConfig;
use test_kit::spans::{Exported, SpanKind, attribute, hex, named};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_a_new_trace_and_the_sidecar_gets_its_call_span_as_the_parent() {
    let exported = Exported::start("checkout").await;
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&sidecar)
        .await;

    let checkout = Checkout::new(test_kit::client(&sidecar), LoopConfig::default());
    assert!(checkout.place_order(7).await);

    let call = &sidecar.received_requests().await.unwrap()[0];
    let sent = call.headers["traceparent"].to_str().unwrap().to_owned();
    let spans = exported.spans().await;
    let order = named(&spans, "checkout order");
    let invoke = named(&spans, "POST /orders");
    assert!(
        order.parent_span_id.is_empty(),
        "the order starts its trace"
    );
    assert_eq!(attribute(order, "order.id").as_deref(), Some("7"));
    assert_eq!(invoke.parent_span_id, order.span_id);
    assert_eq!(invoke.kind, SpanKind::Client as i32);
    assert_eq!(invoke.trace_id, order.trace_id);
    assert_eq!(
        sent,
        format!("00-{}-{}-01", hex(&invoke.trace_id), hex(&invoke.span_id))
    );
    assert_eq!(spans.len(), 2);
}
