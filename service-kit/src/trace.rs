//! W3C trace context taken from an incoming request or a CloudEvent, continued by this
//! service's spans, and passed on to the sidecar.
//!
//! Dapr starts or continues a trace for every call it handles and hands the app a `traceparent`
//! header. Sending a `traceparent` of the same trace on the app's own calls to the sidecar keeps
//! one order in one trace, from `order-service` through the broker to `inventory-service`.
//!
//! When spans are exported ([`crate::otel`]), each request is a server span joined to the
//! caller's context ([`server_span`]), each sidecar call a client span whose id is the parent in
//! the `traceparent` the sidecar receives ([`client_span`]), and each delivered event a consumer
//! span ([`consume`]), named and described as the OpenTelemetry semantic conventions for HTTP
//! and messaging say. Without export no span is made and the context received is passed on
//! unchanged, so the sidecars' spans still form one trace. Headers are read and written by
//! OpenTelemetry's W3C propagator.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::LazyLock;

use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags, TraceState};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator};
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::events::OrderPlaced;
use crate::otel;

/// The `traceparent` header.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header.
pub const TRACESTATE: &str = "tracestate";

static PROPAGATOR: LazyLock<TraceContextPropagator> = LazyLock::new(TraceContextPropagator::new);

/// The trace context of one request, event or span; empty when there is none.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceContext {
    span: SpanContext,
    /// The trace id in hex, kept for [`TraceContext::trace_id`] to lend out.
    hex: [u8; 32],
}

// SpanContext compares ids, flags and trace state field by field, which is reflexive; it
// only lacks the marker.
impl Eq for TraceContext {}

impl Default for TraceContext {
    fn default() -> Self {
        Self::from_span_context(SpanContext::empty_context())
    }
}

impl TraceContext {
    /// The trace headers found in `headers`. A `traceparent` that is not of the W3C form
    /// `<2 hex>-<32 hex>-<16 hex>-<2 hex>`, lower case, with non-zero ids, is dropped rather
    /// than passed on (and its `tracestate` with it).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let well_formed = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(has_w3c_lengths);
        if !well_formed {
            return Self::default();
        }
        Self::from_otel(&PROPAGATOR.extract(&HeaderExtractor(headers)))
    }

    /// A context from a `traceparent` string, such as the one in a CloudEvent.
    pub fn from_traceparent(traceparent: &str) -> Self {
        if !has_w3c_lengths(traceparent) {
            return Self::default();
        }
        let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
        Self::from_otel(&PROPAGATOR.extract(&carrier))
    }

    /// A new trace with a random id, for a call that starts one (an order `checkout` sends, or
    /// one that reached `order-service` without a trace). Sampled.
    pub fn new_root() -> Self {
        let ids = RandomIdGenerator::default();
        Self::from_span_context(SpanContext::new(
            ids.new_trace_id(),
            ids.new_span_id(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ))
    }

    /// This context if it carries a trace, else a new root.
    pub fn or_new_root(self) -> Self {
        if self.is_valid() {
            self
        } else {
            Self::new_root()
        }
    }

    /// The context `span` continues: its own id as the parent of what it calls. Empty when no
    /// span is exported.
    pub fn of_span(span: &tracing::Span) -> Self {
        if !otel::exporting() || span.is_none() {
            return Self::default();
        }
        Self::from_otel(&span.context())
    }

    /// Whether there is a trace.
    pub fn is_valid(&self) -> bool {
        self.span.is_valid()
    }

    /// The 32-hex-digit trace id, if there is a trace.
    pub fn trace_id(&self) -> Option<&str> {
        let hex = std::str::from_utf8(&self.hex).ok();
        hex.filter(|_| self.is_valid())
    }

    /// Makes this the trace id of the current request span ([`crate::telemetry::request_span`]),
    /// for a handler that continues another trace than the request header's, or starts one.
    pub fn record_in_span(&self) {
        self.record_in(&tracing::Span::current());
    }

    fn record_in(&self, span: &tracing::Span) {
        if let Some(id) = self.trace_id() {
            span.record("trace_id", tracing::field::display(id));
        }
    }

    /// Writes `traceparent` (and `tracestate`, when there is one) into `headers`, if there is
    /// a trace.
    pub fn inject(&self, headers: &mut HeaderMap) {
        if self.is_valid() {
            PROPAGATOR.inject_context(&self.otel_context(), &mut HeaderInjector(headers));
        }
    }

    /// This context as the parent OpenTelemetry context of a new span.
    fn otel_context(&self) -> opentelemetry::Context {
        if self.is_valid() {
            opentelemetry::Context::new().with_remote_span_context(self.span.clone())
        } else {
            opentelemetry::Context::new()
        }
    }

    fn from_otel(cx: &opentelemetry::Context) -> Self {
        Self::from_span_context(cx.span().span_context().clone())
    }

    fn from_span_context(span: SpanContext) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0; 32];
        for (i, byte) in span.trace_id().to_bytes().iter().enumerate() {
            hex[2 * i] = DIGITS[usize::from(byte >> 4)];
            hex[2 * i + 1] = DIGITS[usize::from(byte & 0xf)];
        }
        Self { span, hex }
    }
}

/// Whether `value` has the W3C `traceparent` field lengths: OpenTelemetry's propagator parses
/// the ids with `from_str_radix`, which also takes shorter ones.
fn has_w3c_lengths(value: &str) -> bool {
    let mut parts = value.trim().split('-');
    let lengths = [2, 32, 16, 2];
    lengths
        .iter()
        .all(|&len| parts.next().is_some_and(|p| p.len() == len))
}

/// The server span of one incoming request (also its log span, [`crate::telemetry`]), joined
/// to the caller's `traceparent`; its `trace_id` field is the trace the request belongs to.
pub fn server_span(request: &Request) -> tracing::Span {
    let incoming = TraceContext::from_headers(request.headers());
    if !otel::exporting() {
        // Only the log span, as before spans were exported: nothing more per request.
        return crate::telemetry::request_span(&incoming);
    }
    let method = request.method();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_string(),
    };
    // ERROR level, as the log span it also is: no `RUST_LOG` hides it.
    let span = tracing::error_span!(
        "request",
        trace_id = Empty,
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        url.path = request.uri().path(),
        http.route = route,
        http.response.status_code = Empty,
    );
    let _ = span.set_parent(incoming.otel_context());
    TraceContext::of_span(&span).record_in(&span);
    span
}

/// Records the answer on a [`server_span`]: its status, and an error status for a 5xx.
pub fn record_response(span: &tracing::Span, status: StatusCode) {
    if !otel::exporting() {
        return;
    }
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// The client span of one call to the sidecar, a child of `parent`, or no span when spans are
/// not exported. `template` is the URL path with its variable parts named.
pub fn client_span(
    method: &Method,
    template: &str,
    url: &reqwest::Url,
    parent: &TraceContext,
) -> tracing::Span {
    if !otel::exporting() {
        return tracing::Span::none();
    }
    let span = tracing::error_span!(
        "sidecar call",
        otel.name = format!("{method} {template}"),
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = %method,
        url.full = url.as_str(),
        url.template = template,
        server.address = url.host_str(),
        server.port = url.port_or_known_default(),
        http.response.status_code = Empty,
        error.r#type = Empty,
    );
    let _ = span.set_parent(parent.otel_context());
    span
}

/// Records how a sidecar call ended on its [`client_span`]: the status, or the failure.
pub fn record_call(span: &tracing::Span, outcome: Result<StatusCode, &str>) {
    match outcome {
        Ok(status) => {
            span.record("http.response.status_code", status.as_u16());
            if !status.is_success() {
                span.record("error.type", status.as_str());
                span.record("otel.status_code", "ERROR");
            }
        }
        Err(kind) => {
            span.record("error.type", kind);
            span.record("otel.status_code", "ERROR");
        }
    }
}

/// Opens the consumer span of one delivered `order` event of `topic` and returns the context
/// its sidecar calls continue, with the span to run them in (an empty one without export).
///
/// The span is a child of the delivery (`request`, daprd's delivery span, itself a child of the
/// event's `traceparent`), or of the event's own context when the delivery did not continue the
/// event's trace (it carried no `traceparent`, so with export on its server span started a new
/// trace); then the event's trace id also becomes the request's log trace id.
pub fn consume(
    request: TraceContext,
    event: &TraceContext,
    topic: &str,
    event_id: Option<&str>,
    order: &OrderPlaced,
) -> (TraceContext, tracing::Span) {
    let continues_event =
        !otel::exporting() || !event.is_valid() || request.trace_id() == event.trace_id();
    let parent = if request.is_valid() && continues_event {
        request
    } else {
        event.record_in_span();
        event.clone()
    };
    if !otel::exporting() {
        return (parent, tracing::Span::none());
    }
    let span = tracing::error_span!(
        "consume",
        trace_id = parent.trace_id(),
        otel.name = format!("process {topic}"),
        otel.kind = "consumer",
        messaging.system = "dapr",
        messaging.operation.type = "process",
        messaging.destination.name = topic,
        messaging.message.id = event_id,
        order.id = order.order_id.as_str(),
        order.item_id = order.item_id.as_str(),
        order.quantity = order.quantity,
        order.outcome = Empty,
    );
    let _ = span.set_parent(parent.otel_context());
    if event.is_valid() && event != &parent {
        span.add_link(event.span.clone());
    }
    (TraceContext::of_span(&span), span)
}

/// Records what became of the order on its [`consume`] span (`applied`, `rejected`, ...).
pub fn record_outcome(span: &tracing::Span, outcome: &str) {
    span.record("order.outcome", outcome);
}

/// A new trace for work that no request started (an order `checkout` sends): its root span
/// (also the log span of its lines) and the context its sidecar calls continue. Without
/// export, the span is only the log span, and the context a new random one.
pub fn start_trace(name: &str, order_id: &str) -> (TraceContext, tracing::Span) {
    if !otel::exporting() {
        let trace = TraceContext::new_root();
        return (trace.clone(), crate::telemetry::request_span(&trace));
    }
    let span = tracing::error_span!(
        "request",
        trace_id = Empty,
        otel.name = name,
        otel.kind = "internal",
        order.id = order_id,
    );
    // A root even when called inside another span.
    let _ = span.set_parent(opentelemetry::Context::new());
    let trace = TraceContext::of_span(&span);
    trace.record_in(&span);
    (trace, span)
}

/// Sets an attribute (an order's id, say) on the current span, when spans are exported.
pub fn set_attribute(key: &'static str, value: impl Into<opentelemetry::Value>) {
    if otel::exporting() {
        tracing::Span::current().set_attribute(key, value);
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TraceContext {
    type Rejection = Infallible;

    /// The request's server span when spans are exported (so calls made for it are its
    /// children), else the trace headers it came with.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let own = TraceContext::of_span(&tracing::Span::current());
        Ok(if own.is_valid() {
            own
        } else {
            Self::from_headers(&parts.headers)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn sent(ctx: &TraceContext) -> HeaderMap {
        let mut headers = HeaderMap::new();
        ctx.inject(&mut headers);
        headers
    }

    #[test]
    fn reads_the_trace_id_of_a_valid_traceparent_and_passes_it_on_with_its_tracestate() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static(TP));
        headers.insert(TRACESTATE, HeaderValue::from_static("congo=t61rcWkgMzE"));
        let ctx = TraceContext::from_headers(&headers);
        assert_eq!(ctx.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(sent(&ctx), headers);
    }

    #[test]
    fn ignores_malformed_and_all_zero_traceparents() {
        for bad in [
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-0000000000000000-00",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(TRACEPARENT, HeaderValue::from_str(bad).unwrap());
            headers.insert(TRACESTATE, HeaderValue::from_static("a=b"));
            let ctx = TraceContext::from_headers(&headers);
            assert_eq!(ctx, TraceContext::default(), "{bad}");
            assert!(sent(&ctx).is_empty(), "{bad}");
        }
    }

    #[test]
    fn new_roots_are_valid_and_distinct() {
        let a = TraceContext::new_root();
        let b = TraceContext::new_root();
        let headers = sent(&a);
        let tp = headers[TRACEPARENT].to_str().unwrap();
        assert_eq!(TraceContext::from_traceparent(tp).trace_id(), a.trace_id());
        assert!(tp.starts_with("00-") && tp.ends_with("-01"), "{tp}");
        assert_ne!(a.trace_id(), b.trace_id());
        let kept = TraceContext::from_traceparent(TP).or_new_root();
        assert_eq!(kept.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    }

    #[test]
    fn from_traceparent_accepts_the_cloudevent_field() {
        assert_eq!(
            TraceContext::from_traceparent(TP).trace_id(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(TraceContext::from_traceparent("").trace_id(), None);
    }
}
