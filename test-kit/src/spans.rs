//! Span export in a test: a stand-in OTLP receiver, the service's exporter pointed at it, and
//! the spans it was sent, decoded from the exact OTLP/HTTP requests. Export is process-wide, so
//! a test binary uses this once. [`GrpcReceiver`] is the stand-in for an OTLP/gRPC collector
//! (Azure Container Apps' OpenTelemetry agent takes only gRPC).

use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
pub use opentelemetry_proto::tonic::trace::v1::Span;
pub use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use service_kit::otel::{Export, Exporter, OtelConfig};
use service_kit::telemetry;
use tonic::transport::server::TcpIncoming;
use tracing_subscriber::prelude::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Starts the export `config` names and makes it this process's span layer, as
/// `service_kit::launch` does: outside the runtime, since the exporters' builders make and drop
/// blocking HTTP clients. Export is process-wide, so a test binary calls this once.
///
/// # Panics
/// When `config` names no exporter or it cannot be set up: a failed test.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub async fn install(config: OtelConfig) -> Export {
    let (export, tracer) = tokio::task::spawn_blocking(move || Export::start(&config))
        .await
        .unwrap()
        .unwrap()
        .expect("an exporter is configured");
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(telemetry::span_layer(tracer)),
    )
    .unwrap();
    export
}

/// Spans of `service` being exported to a stand-in OTLP receiver.
#[derive(Debug)]
pub struct Exported {
    receiver: MockServer,
    export: Export,
    service: String,
}

impl Exported {
    /// Starts the receiver and exports this process's spans to it, as `service`, the way
    /// `service_kit::launch` does with `OTEL_EXPORTER_OTLP_ENDPOINT` set.
    ///
    /// # Panics
    /// When export cannot be set up: a failed test.
    #[allow(clippy::unwrap_used, clippy::expect_used)]
    pub async fn start(service: &str) -> Self {
        let receiver = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/traces"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&receiver)
            .await;
        let config = OtelConfig {
            exporter: Exporter::Otlp(format!("{}/v1/traces", receiver.uri())),
            service_name: service.to_owned(),
        };
        let export = install(config).await;
        Self {
            receiver,
            export,
            service: service.to_owned(),
        }
    }

    /// Flushes the export (as a clean shutdown does) and returns every span the receiver got,
    /// checking that each request was OTLP protobuf naming the service.
    ///
    /// # Panics
    /// When a request is not that: a failed test.
    #[allow(clippy::unwrap_used, clippy::panic)]
    pub async fn spans(self) -> Vec<Span> {
        let export = self.export;
        tokio::task::spawn_blocking(move || export.shutdown())
            .await
            .unwrap();
        let mut spans = Vec::new();
        for request in self.receiver.received_requests().await.unwrap() {
            assert_eq!(request.headers["content-type"], "application/x-protobuf");
            let body = ExportTraceServiceRequest::decode(request.body.as_slice()).unwrap();
            for resource in body.resource_spans {
                let attributes = resource.resource.map(|r| r.attributes).unwrap_or_default();
                let name = attributes.iter().find(|kv| kv.key == "service.name");
                let name = name.and_then(|kv| kv.value.as_ref()?.value.clone());
                assert_eq!(name, Some(AnyValue::StringValue(self.service.clone())));
                spans.extend(resource.scope_spans.into_iter().flat_map(|s| s.spans));
            }
        }
        spans
    }
}

/// A stand-in OTLP/gRPC collector on a free local port: it answers every export with success and
/// keeps what it was sent.
#[derive(Debug)]
pub struct GrpcReceiver {
    endpoint: String,
    received: Received,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The export requests a [`GrpcReceiver`] got, in order.
type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

#[derive(Debug, Clone, Default)]
struct Collector(Received);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl GrpcReceiver {
    /// Listens on 127.0.0.1 (a free port) until dropped.
    ///
    /// # Panics
    /// When it cannot listen: a failed test.
    #[allow(clippy::expect_used)]
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free local port");
        let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
        let received = Received::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(Arc::clone(&received))))
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stopped.await;
            });
        tokio::spawn(server);
        Self {
            endpoint,
            received,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:<port>`, as `OTEL_EXPORTER_OTLP_ENDPOINT` names a gRPC collector.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every span received so far whose resource's `service.name` is `service`.
    pub fn spans_of(&self, service: &str) -> Vec<Span> {
        let received = self.received.lock().unwrap_or_else(PoisonError::into_inner);
        received
            .iter()
            .flat_map(|request| &request.resource_spans)
            .filter(|resource| {
                let attributes = resource.resource.as_ref().map(|r| &r.attributes[..]);
                let name = attributes
                    .unwrap_or_default()
                    .iter()
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref()?.value.clone());
                name == Some(AnyValue::StringValue(service.to_owned()))
            })
            .flat_map(|resource| resource.scope_spans.iter().flat_map(|s| s.spans.clone()))
            .collect()
    }

    /// How many export requests arrived.
    pub fn requests(&self) -> usize {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for GrpcReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An id as lower-case hex, as `traceparent` spells it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A span's attribute `key` as text.
pub fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|kv| kv.key == key)?;
    match value.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// The one span named `name`.
///
/// # Panics
/// When there is none or more than one: a failed test.
#[allow(clippy::panic)]
pub fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    match found.as_slice() {
        [one] => one,
        _ => panic!(
            "{} spans named {name:?} in {:?}",
            found.len(),
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        ),
    }
}
