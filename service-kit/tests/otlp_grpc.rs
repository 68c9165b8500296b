//! OTLP over gRPC, as Azure Container Apps' OpenTelemetry agent takes it: with the variables the
//! agent injects (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`), a span
//! reaches a gRPC collector, named after its service, in the trace it was started in.
//!
//! A file of its own, because export is process-wide (one global subscriber and provider).

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use service_kit::env::{self, Vars};
use service_kit::otel::{Exporter, OtelConfig};
use service_kit::trace;
use test_kit::spans::{GrpcReceiver, attribute, hex};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_variables_send_spans_over_grpc() {
    let agent = GrpcReceiver::start().await;
    let vars = Vars::from_pairs(&[
        (env::OTEL_EXPORTER_OTLP_ENDPOINT, agent.endpoint()),
        (env::OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
        (env::APP_ID, "order-service"),
    ]);
    let config = OtelConfig::from_vars(&vars, "order-service").unwrap();
    assert_eq!(
        config.exporter,
        Exporter::OtlpGrpc(agent.endpoint().to_owned())
    );
    let export = test_kit::spans::install(config).await;

    let (sent, span) = trace::start_trace("checkout order", "7");
    drop(span);
    tokio::task::spawn_blocking(move || export.shutdown())
        .await
        .unwrap();

    assert!(agent.requests() >= 1, "no export reached the collector");
    let spans = agent.spans_of("order-service");
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].name, "checkout order");
    assert_eq!(Some(hex(&spans[0].trace_id).as_str()), sent.trace_id());
    assert_eq!(attribute(&spans[0], "order.id").as_deref(), Some("7"));
}
