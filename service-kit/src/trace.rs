//! W3C trace context taken from an incoming request and passed on to the sidecar.
//!
//! Dapr starts or continues a trace for every call it handles and hands the app a `traceparent`
//! header. Sending that header back on the app's own calls to the sidecar keeps one order in one
//! trace, from `order-service` through the broker to `inventory-service`.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};

/// The `traceparent` header.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header.
pub const TRACESTATE: &str = "tracestate";

/// The trace headers of one request; empty when the caller sent none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceContext {
    traceparent: Option<HeaderValue>,
    tracestate: Option<HeaderValue>,
}

impl TraceContext {
    /// The trace headers found in `headers`. A `traceparent` that is not of the W3C form
    /// `00-<32 hex>-<16 hex>-<2 hex>` is dropped rather than passed on.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let traceparent = headers
            .get(TRACEPARENT)
            .filter(|v| v.to_str().is_ok_and(is_valid_traceparent))
            .cloned();
        let tracestate = traceparent.as_ref().and(headers.get(TRACESTATE)).cloned();
        Self {
            traceparent,
            tracestate,
        }
    }

    /// A context from a `traceparent` string, such as the one in a CloudEvent.
    pub fn from_traceparent(traceparent: &str) -> Self {
        let traceparent = Some(traceparent)
            .filter(|v| is_valid_traceparent(v))
            .and_then(|v| HeaderValue::from_str(v).ok());
        Self {
            traceparent,
            tracestate: None,
        }
    }

    /// The 32-hex-digit trace id, if there is a trace.
    pub fn trace_id(&self) -> Option<&str> {
        let tp = self.traceparent.as_ref()?.to_str().ok()?;
        tp.get(3..35)
    }

    /// The trace id as a log field value: shown unquoted, and left out when there is no trace
    /// (`tracing` records an `Option` field only when it is `Some`).
    pub fn log_field(&self) -> Option<tracing::field::DisplayValue<&str>> {
        self.trace_id().map(tracing::field::display)
    }

    /// Adds the trace headers, if any, to an outgoing request.
    pub fn apply(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(tp) = &self.traceparent {
            request = request.header(TRACEPARENT, tp.clone());
        }
        if let Some(ts) = &self.tracestate {
            request = request.header(TRACESTATE, ts.clone());
        }
        request
    }
}

/// Whether `value` is a W3C `traceparent` of version 00 with a non-zero trace id.
fn is_valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    matches!(parts.as_slice(), [version, trace_id, parent_id, flags]
        if hex(version, 2) && hex(trace_id, 32) && hex(parent_id, 16) && hex(flags, 2)
            && trace_id.bytes().any(|b| b != b'0'))
}

impl<S: Send + Sync> FromRequestParts<S> for TraceContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_the_trace_id_of_a_valid_traceparent() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static(TP));
        headers.insert(TRACESTATE, HeaderValue::from_static("congo=t61rcWkgMzE"));
        let ctx = TraceContext::from_headers(&headers);
        assert_eq!(ctx.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(ctx.tracestate.is_some());
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
        }
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
