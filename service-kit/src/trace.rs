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

    /// A new trace with a random id, for a call that starts one (an order `checkout` sends, or
    /// one that reached `order-service` without a trace). W3C version 00, sampled.
    pub fn new_root() -> Self {
        let traceparent = format!(
            "00-{:016x}{:016x}-{:016x}-01",
            random_u64(),
            random_u64() | 1,
            random_u64() | 1
        );
        Self {
            traceparent: HeaderValue::from_str(&traceparent).ok(),
            tracestate: None,
        }
    }

    /// This context if it carries a trace, else a new root.
    pub fn or_new_root(self) -> Self {
        if self.traceparent.is_some() {
            self
        } else {
            Self::new_root()
        }
    }

    /// The 32-hex-digit trace id, if there is a trace.
    pub fn trace_id(&self) -> Option<&str> {
        let tp = self.traceparent.as_ref()?.to_str().ok()?;
        tp.get(3..35)
    }

    /// Makes this the trace id of the current request span ([`crate::telemetry::request_span`]),
    /// for a handler that continues another trace than the request header's, or starts one.
    pub fn record_in_span(&self) {
        if let Some(id) = self.trace_id() {
            tracing::Span::current().record("trace_id", tracing::field::display(id));
        }
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

/// 64 random bits for trace and span ids (unique, not secret): the standard library's
/// randomly keyed hasher over a counter and the clock.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    hasher.finish()
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
    fn new_roots_are_valid_and_distinct() {
        let a = TraceContext::new_root();
        let b = TraceContext::new_root();
        let tp = a.traceparent.as_ref().unwrap().to_str().unwrap();
        assert!(is_valid_traceparent(tp), "{tp}");
        assert!(tp.ends_with("-01"));
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
