//! What Dapr delivers on the `OrderPlaced` subscription, and how the service answers it.
//!
//! Dapr posts each event as a CloudEvent (`application/cloudevents+json`) whose `data` is what
//! the publisher sent. The answer decides the event's fate (dapr-http-api.md §3.4): `SUCCESS`
//! acknowledges it, `RETRY` (or any non-2xx status but 404) has Dapr deliver it again under the
//! resiliency policy, and `DROP` sends it to the subscription's dead-letter topic. A malformed
//! event will never become valid, so it is dropped, never retried; a failure of the state store
//! may pass, so it is retried.

use std::borrow::Cow;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use service_kit::TraceContext;
use service_kit::events::OrderPlaced;

use crate::config::DEAD_LETTER_TOPIC;
use crate::store::{Decided, Status, StoreError};

/// Largest delivery read; Dapr's own default limit is 4 MiB. Anything larger is dropped.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// A delivery, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A well-formed order.
    Order {
        /// The order.
        order: OrderPlaced,
        /// The CloudEvent id.
        event_id: Option<String>,
        /// The CloudEvent's trace, for when the request carried none.
        trace: TraceContext,
    },
    /// Something that can never be applied.
    Malformed {
        /// Why.
        reason: String,
        /// The CloudEvent id, when there is one.
        event_id: Option<String>,
    },
}

/// Classifies the body of a delivery.
pub fn classify(body: &[u8]) -> Delivery {
    match serde_json::from_slice::<Value>(body) {
        Ok(event) => classify_event(&event),
        Err(_) => malformed("the event is not JSON", None),
    }
}

/// Classifies a delivered event already parsed as JSON: the body of a single delivery, or the
/// `event` of one entry of a bulk delivery.
pub fn classify_event(event: &Value) -> Delivery {
    let Some(envelope) = event.as_object() else {
        return malformed("the event is not a JSON object", None);
    };
    let event_id = envelope
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let trace = envelope
        .get("traceparent")
        .and_then(Value::as_str)
        .map(TraceContext::from_traceparent)
        .unwrap_or_default();
    let data = if envelope.contains_key("specversion") {
        match data_object(envelope) {
            Ok(data) => data,
            Err(reason) => return malformed(&reason, event_id),
        }
    } else {
        // Not a CloudEvent (a raw payload): the body is the order, as the tutorial's Python
        // subscriber also accepts.
        envelope.clone()
    };
    match OrderPlaced::from_json(&data) {
        Ok(order) => Delivery::Order {
            order,
            event_id,
            trace,
        },
        Err(e) => malformed(
            &format!("invalid OrderPlaced event: {}", e.message()),
            event_id,
        ),
    }
}

/// What was dead-lettered, out of a delivery on the dead-letter subscription.
///
/// That subscription asks for `rawPayload`, because a message that is not a CloudEvent (one
/// published with `rawPayload=true`, say) fails daprd's CloudEvent parsing: on `OrderPlaced`,
/// whose subscription has a dead-letter topic, daprd forwards it there unchanged; on a
/// subscription without one it returns an error, which the delivery policy retries forever, so
/// the message would never reach the app. With `rawPayload`, daprd parses nothing and delivers
/// every message wrapped in a CloudEvent of its own (a random `id`,
/// `datacontenttype: application/octet-stream`) whose `data_base64` is the message as published
/// to the topic: the original CloudEvent, or the raw payload. This returns those bytes, or
/// `body` itself when it is not such a wrapper.
pub fn dead_lettered_message(body: &[u8]) -> Cow<'_, [u8]> {
    use base64::Engine as _;
    let Ok(Value::Object(envelope)) = serde_json::from_slice::<Value>(body) else {
        return Cow::Borrowed(body);
    };
    let wrapped = envelope.get("datacontenttype").and_then(Value::as_str)
        == Some("application/octet-stream")
        && !envelope.contains_key("data");
    match envelope.get("data_base64").and_then(Value::as_str) {
        Some(encoded) if wrapped => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_or(Cow::Borrowed(body), Cow::Owned),
        _ => Cow::Borrowed(body),
    }
}

/// The CloudEvent's `data` as a JSON object. A publisher that sent JSON without the JSON content
/// type gets its data delivered as a string; that string is accepted if it holds an object.
fn data_object(envelope: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    match envelope.get("data") {
        Some(Value::Object(data)) => Ok(data.clone()),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(data)) => Ok(data),
            _ => Err("the event's data is text, not a JSON object".to_owned()),
        },
        Some(Value::Null) | None if envelope.contains_key("data_base64") => {
            Err("the event's data is binary, not a JSON object".to_owned())
        }
        Some(Value::Null) | None => Err("the event has no data".to_owned()),
        Some(_) => Err("the event's data is not a JSON object".to_owned()),
    }
}

fn malformed(reason: &str, event_id: Option<String>) -> Delivery {
    Delivery::Malformed {
        reason: reason.to_owned(),
        event_id,
    }
}

/// The answer Dapr acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Done (applied, rejected for lack of stock, or a duplicate).
    Success,
    /// Deliver again later.
    Retry(String),
    /// Never deliver again; Dapr sends it to the dead-letter topic.
    Drop(String),
}

impl IntoResponse for Verdict {
    fn into_response(self) -> Response {
        match self {
            Self::Success => (StatusCode::OK, Json(json!({ "status": "SUCCESS" }))).into_response(),
            // 503 and RETRY say the same thing twice: Dapr retries on either.
            Self::Retry(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "RETRY", "reason": reason })),
            )
                .into_response(),
            Self::Drop(reason) => (
                StatusCode::OK,
                Json(json!({ "status": "DROP", "reason": reason })),
            )
                .into_response(),
        }
    }
}

impl Verdict {
    /// The status of this verdict in the answer to a bulk delivery.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Retry(_) => "RETRY",
            Self::Drop(_) => "DROP",
        }
    }
}

/// A bulk delivery (`bulkSubscribe` in the subscription): daprd's envelope, of which only the
/// entries matter. Each entry's `event` is the CloudEvent as a JSON object, as the body of a
/// single delivery would be (dapr `pkg/runtime/subscription/bulksubscription.go`).
#[derive(Debug, Deserialize)]
pub struct BulkDelivery {
    /// The events, each with the id its answer must name.
    pub entries: Vec<BulkEntry>,
}

/// One event of a [`BulkDelivery`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkEntry {
    /// The id the answer names this entry by.
    pub entry_id: String,
    /// The event.
    pub event: Value,
}

/// The answer to a bulk delivery: a status per entry. daprd retries an entry the answer does
/// not name, as if it were `RETRY`.
#[derive(Debug, Serialize)]
pub struct BulkAnswer {
    /// One per entry answered.
    pub statuses: Vec<EntryStatus>,
}

/// The status of one entry of a bulk delivery.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryStatus {
    /// The entry's id.
    pub entry_id: String,
    /// `SUCCESS`, `RETRY` or `DROP`.
    pub status: &'static str,
}

/// What became of one `OrderPlaced` delivery: it logs its line and gives Dapr its answer.
#[derive(Debug)]
pub enum Delivered {
    /// The body was too large or could not be read: dropped.
    Unreadable,
    /// The event can never be applied: dropped to the dead-letter topic.
    Malformed {
        /// Why.
        reason: String,
        /// The CloudEvent id, when there is one.
        event_id: Option<String>,
    },
    /// The order was decided, now or (a duplicate) before.
    Decided {
        /// The outcome.
        decided: Decided,
        /// The delivery's CloudEvent id.
        event_id: Option<String>,
    },
    /// A malformed event of a bulk delivery could not be recorded as a dead letter: Dapr
    /// retries it (the recording failure is logged once for the batch).
    Unrecorded(String),
    /// The state store failed: Dapr retries.
    NotProcessed {
        /// The order.
        order: OrderPlaced,
        /// What failed.
        error: String,
    },
}

impl Delivered {
    /// The delivery of `order` that [`crate::store::Inventory::apply`] answered with `result`.
    pub fn new(
        order: OrderPlaced,
        event_id: Option<String>,
        result: Result<Decided, StoreError>,
    ) -> Self {
        match result {
            Ok(decided) => Self::Decided { decided, event_id },
            Err(error) => Self::NotProcessed {
                order,
                error: error.to_string(),
            },
        }
    }

    /// Logs the delivery's line (its trace id comes from the request span).
    pub fn log(&self) {
        match self {
            Self::Unreadable => tracing::warn!(
                "Dropping OrderPlaced event: larger than {MAX_EVENT_BYTES} bytes or unreadable"
            ),
            Self::Malformed { reason, event_id } => tracing::warn!(
                event_id = event_id.as_deref(),
                "Dropping malformed OrderPlaced event to {DEAD_LETTER_TOPIC}: {reason}"
            ),
            Self::Decided { decided, event_id } => {
                let o = &decided.outcome;
                match (decided.duplicate, o.status) {
                    (false, Status::Applied) => tracing::info!(
                        "Processed OrderPlaced event. orderId={}, itemId={}, ordered={}, remaining={}",
                        o.order_id,
                        o.item_id,
                        o.quantity,
                        o.remaining
                    ),
                    (false, Status::Rejected) => tracing::warn!(
                        "Rejected OrderPlaced event. orderId={}, itemId={}, ordered={}, available={}",
                        o.order_id,
                        o.item_id,
                        o.quantity,
                        o.remaining
                    ),
                    (true, status) => tracing::info!(
                        event_id = event_id.as_deref(),
                        "Skipped duplicate OrderPlaced event. orderId={}, itemId={}, already {}",
                        o.order_id,
                        o.item_id,
                        match status {
                            Status::Applied => "applied",
                            Status::Rejected => "rejected",
                        }
                    ),
                }
            }
            Self::Unrecorded(_) => {}
            Self::NotProcessed { order, error } => tracing::warn!(
                "OrderPlaced event not processed, Dapr will retry it. orderId={}, itemId={}: {error}",
                order.order_id,
                order.item_id
            ),
        }
    }

    /// The answer Dapr acts on: a decided order is done, a store failure is retried, anything
    /// else is dropped.
    pub fn into_verdict(self) -> Verdict {
        match self {
            Self::Unreadable => Verdict::Drop(format!(
                "the event is larger than {MAX_EVENT_BYTES} bytes or unreadable"
            )),
            Self::Malformed { reason, .. } => Verdict::Drop(reason),
            Self::Decided { .. } => Verdict::Success,
            Self::Unrecorded(error) | Self::NotProcessed { error, .. } => Verdict::Retry(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud_event(data: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "specversion": "1.0",
            "id": "e-1",
            "type": "com.dapr.event.sent",
            "source": "order-service",
            "topic": "OrderPlaced",
            "pubsubname": "pubsub",
            "datacontenttype": "application/json",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "data": data,
        }))
        .unwrap()
    }

    fn reason(d: Delivery) -> String {
        match d {
            Delivery::Malformed { reason, .. } => reason,
            other => panic!("expected malformed, got {other:?}"),
        }
    }

    #[test]
    fn a_cloud_event_with_a_valid_order_is_an_order_with_its_id_and_trace() {
        let body = cloud_event(json!({"orderId": "order-1001", "itemId": "item1", "quantity": 10}));
        let Delivery::Order {
            order,
            event_id,
            trace,
        } = classify(&body)
        else {
            panic!()
        };
        assert_eq!(order.order_id, "order-1001");
        assert_eq!(event_id.as_deref(), Some("e-1"));
        assert_eq!(trace.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    }

    #[test]
    fn json_sent_as_text_is_accepted() {
        let body = cloud_event(json!(r#"{"orderId":"o","itemId":"i","quantity":1}"#));
        assert!(matches!(classify(&body), Delivery::Order { .. }));
    }

    #[test]
    fn a_numeric_order_id_as_dapr_quickstarts_send_it_is_its_decimal_string() {
        let body = cloud_event(json!({"orderId": 42, "itemId": "item1", "quantity": 1}));
        let Delivery::Order { order, .. } = classify(&body) else {
            panic!()
        };
        assert_eq!(order.order_id, "42");
        assert_eq!(
            reason(classify(&cloud_event(
                json!({"orderId": -42, "itemId": "item1", "quantity": 1})
            ))),
            "invalid OrderPlaced event: orderId must be a string or a non-negative integer, got -42"
        );
    }

    #[test]
    fn a_raw_order_without_an_envelope_is_accepted() {
        assert!(matches!(
            classify(br#"{"orderId":"o","itemId":"i","quantity":1}"#),
            Delivery::Order { event_id: None, .. }
        ));
    }

    /// What daprd delivers on a `rawPayload` subscription (`FromRawPayload` in
    /// components-contrib `pubsub/envelope.go`).
    fn raw_wrapper(message: &[u8]) -> Vec<u8> {
        use base64::Engine as _;
        serde_json::to_vec(&json!({
            "id": "0d6f3c1e-random", "specversion": "1.0",
            "datacontenttype": "application/octet-stream", "source": "Dapr",
            "type": "com.dapr.event.sent", "topic": "OrderPlaced-deadletter", "pubsubname": "pubsub",
            "data_base64": base64::engine::general_purpose::STANDARD.encode(message),
        }))
        .unwrap()
    }

    #[test]
    fn a_raw_wrapper_gives_back_the_message_as_published() {
        assert_eq!(
            &*dead_lettered_message(&raw_wrapper(b"not json")),
            b"not json"
        );
        let event = cloud_event(json!("hello"));
        assert_eq!(&*dead_lettered_message(&raw_wrapper(&event)), &event[..]);
        // Anything else is the message itself, a CloudEvent with binary data included.
        assert_eq!(&*dead_lettered_message(&event), &event[..]);
        let binary =
            br#"{"specversion":"1.0","id":"x","datacontenttype":"image/png","data_base64":"AAE="}"#;
        assert_eq!(&*dead_lettered_message(binary), &binary[..]);
        assert_eq!(&*dead_lettered_message(b"garbage"), b"garbage");
    }

    #[test]
    fn each_kind_of_malformed_event_is_named() {
        assert_eq!(reason(classify(b"garbage")), "the event is not JSON");
        assert_eq!(reason(classify(b"[1,2]")), "the event is not a JSON object");
        assert_eq!(
            reason(classify(&cloud_event(json!("hello")))),
            "the event's data is text, not a JSON object"
        );
        assert_eq!(
            reason(classify(&cloud_event(json!(7)))),
            "the event's data is not a JSON object"
        );
        assert_eq!(
            reason(classify(&cloud_event(Value::Null))),
            "the event has no data"
        );
        assert_eq!(
            reason(classify(
                br#"{"specversion":"1.0","id":"x","data_base64":"AAE="}"#
            )),
            "the event's data is binary, not a JSON object"
        );
        assert_eq!(
            reason(classify(&cloud_event(
                json!({"orderId": "o", "itemId": "i", "quantity": -1})
            ))),
            "invalid OrderPlaced event: quantity must be a positive integer, got -1"
        );
        assert_eq!(
            reason(classify(&cloud_event(
                json!({"orderId": "o", "quantity": 1})
            ))),
            "invalid OrderPlaced event: itemId is required"
        );
    }
}
