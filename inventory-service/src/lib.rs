//! `inventory-service`: keeps stock in the Dapr state store and applies `OrderPlaced` events.
//!
//! Routes (*sidecar-only* ones need the sidecar's `dapr-api-token` when `APP_API_TOKEN` is set;
//! the others are public, see [`app`]):
//! - `GET /inventory/{itemId}` → `{"itemId","quantity"}` (0 for an unknown item);
//!   `POST /inventory/{itemId}` with `{"quantity": n}` sets the stock (*sidecar-only*).
//! - `GET /inventory/{itemId}/orders/{orderId}` → the recorded outcome of an order.
//! - `GET /dapr/subscribe` (*sidecar-only*) → the subscription to `OrderPlaced` (route
//!   `orders/bulk` in batches, or `orders`; with a dead-letter topic) and to the dead-letter topic itself (route `deadletters`).
//! - `POST /orders` (*sidecar-only*) ← Dapr delivers `OrderPlaced` events; each order is applied
//!   exactly once and logged as in the tutorial:
//!   `Processed OrderPlaced event. orderId=order-1001, itemId=item1, ordered=10, remaining=90`.
//! - `POST /orders/bulk` (*sidecar-only*) ← the same events in batches (Dapr's bulk subscribe,
//!   unless `BULK_SUBSCRIBE=false`), each decided and logged as on `POST /orders`.
//! - `POST /deadletters` (*sidecar-only*) ← events Dapr dead-lettered; `GET /deadletters` lists
//!   them.
//!
//! At start-up, `INITIAL_STOCK` creates items that do not exist yet ([`seed`]).
//!
//! How stock stays exact under concurrency, redelivery and restarts is in [`store`]; how each
//! delivery is answered is in [`delivery`].

pub mod config;
pub mod delivery;
pub mod seed;
pub mod store;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use service_kit::events;
use service_kit::http::{self, HttpConfig};
use service_kit::input::{self, JsonObject};
use service_kit::{ApiError, TraceContext, trace};
use tracing::Instrument as _;

use std::collections::HashMap;

use service_kit::events::OrderPlaced;

use crate::config::{Bulk, DEAD_LETTER_TOPIC};
use crate::delivery::{
    BulkAnswer, BulkDelivery, Delivered, Delivery, EntryStatus, MAX_EVENT_BYTES, Verdict,
};
use crate::store::{DeadLetter, DeadLetters, Inventory, MAX_STOCK, Outcome, Status, StoreError};

/// Largest body accepted by the stock endpoint.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Stock and outcomes in the state store.
    pub inventory: Inventory,
    /// Pub/sub component the subscriptions use.
    pub pubsub_name: String,
    /// Whether, and how, `OrderPlaced` events come in batches.
    pub bulk: Option<Bulk>,
    /// Token check and other HTTP settings.
    pub http: HttpConfig,
}

/// The service's routes with the shared middleware.
///
/// Public (read-only; on Azure, ingress reaches them straight, past the sidecar, so they never
/// ask for `APP_API_TOKEN`): the stock, an order's outcome, the dead letters. Sidecar-only
/// (with `APP_API_TOKEN` set they need the sidecar's token): setting stock (reached with
/// `dapr invoke` or service invocation), the subscription list, and both deliveries, so that
/// nobody can change stock or forge an event by calling the app directly.
pub fn app(state: AppState) -> Router {
    let http_config = state.http.clone();
    let public = Router::new()
        .route("/inventory/{item_id}", get(get_stock))
        .route("/inventory/{item_id}/orders/{order_id}", get(get_outcome))
        .route("/deadletters", get(get_dead_letters))
        .with_state(state.clone());
    let sidecar_only = Router::new()
        .route(
            "/inventory/{item_id}",
            post(set_stock).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route("/dapr/subscribe", get(subscriptions))
        // Deliveries are read, and size-checked, by the handlers themselves: a body the
        // extractor refused would be answered 413, which Dapr retries forever.
        .route(
            "/orders",
            post(on_order_placed).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/orders/bulk",
            post(on_orders_bulk).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/deadletters",
            post(on_dead_letter).layer(DefaultBodyLimit::disable()),
        )
        .with_state(state);
    http::finish(public, sidecar_only, &http_config)
}

/// `POST /orders`: one `OrderPlaced` delivery, applied exactly once (the tutorial's handler).
async fn on_order_placed(
    State(state): State<AppState>,
    trace: TraceContext,
    body: Body,
) -> Verdict {
    let delivered = match axum::body::to_bytes(body, MAX_EVENT_BYTES).await {
        Err(_) => Delivered::Unreadable,
        Ok(bytes) => match delivery::classify(&bytes) {
            Delivery::Malformed { reason, event_id } => Delivered::Malformed { reason, event_id },
            Delivery::Order {
                order,
                event_id,
                trace: event_trace,
            } => {
                // The delivery's own traceparent is a child of the event's; `consume` falls back
                // to the event's.
                let (trace, span) = trace::consume(
                    trace,
                    &event_trace,
                    events::TOPIC,
                    event_id.as_deref(),
                    &order,
                );
                let result = state
                    .inventory
                    .apply(&order, event_id.as_deref(), &trace)
                    .instrument(span.clone())
                    .await;
                trace::record_outcome(&span, outcome_label(result.as_ref().ok()));
                Delivered::new(order, event_id, result)
            }
        },
    };
    delivered.log();
    delivered.into_verdict()
}

/// `POST /orders/bulk`: a batch of `OrderPlaced` deliveries (bulk subscribe), answered with a
/// status per entry. Each entry is decided as `POST /orders` decides one, and logs the same
/// line; what differs is how many state calls that takes:
/// - the orders of one item are applied in the order they came, in one read and one
///   conditional write of the item ([`Inventory::apply_all`]), items side by side. If that
///   write fails, every one of those orders is answered `RETRY`: none is half applied.
/// - malformed entries are recorded as dead letters here, all in one write, before they are
///   answered `DROP`: daprd then publishes them to the dead-letter topic, but, unlike for a
///   single delivery, it acknowledges them even when that publish fails
///   (`pkg/runtime/subscription/postman/http/http.go`, `DeliverBulk`), so the record must
///   not wait for it. If recording fails, they are answered `RETRY`. The copy that arrives on
///   the dead-letter topic is recognised by its event id and not recorded twice.
async fn on_orders_bulk(
    State(state): State<AppState>,
    trace: TraceContext,
    body: Body,
) -> Response {
    let limit = MAX_EVENT_BYTES.saturating_mul(state.bulk.map_or(1, |b| b.max_messages as usize));
    let batch = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => serde_json::from_slice::<BulkDelivery>(&bytes).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let batch = match batch {
        Ok(batch) => batch,
        Err(e) => {
            // Without entry ids there is nothing to answer per entry; daprd retries the batch.
            tracing::warn!("Unreadable bulk OrderPlaced delivery, Dapr will retry it: {e}");
            return Verdict::Retry(format!("unreadable bulk delivery: {e}")).into_response();
        }
    };
    let mut outcomes: Vec<Option<Delivered>> = Vec::new();
    let mut by_item: HashMap<String, Vec<BatchOrder>> = HashMap::new();
    let mut letters: Vec<(usize, DeadLetter)> = Vec::new();
    let request = trace.clone();
    let mut trace = trace;
    for (at, entry) in batch.entries.iter().enumerate() {
        outcomes.push(None);
        match delivery::classify_event(&entry.event) {
            Delivery::Malformed { reason, event_id } => {
                let payload = serde_json::to_vec(&entry.event).unwrap_or_default();
                letters.push((at, DeadLetter::new(event_id, reason, &payload)));
            }
            Delivery::Order {
                order,
                event_id,
                trace: event_trace,
            } => {
                // Each order's consumer span joins its own event's trace.
                let (context, span) = trace::consume(
                    request.clone(),
                    &event_trace,
                    events::TOPIC,
                    event_id.as_deref(),
                    &order,
                );
                if trace.trace_id().is_none() {
                    event_trace.record_in_span();
                    trace = event_trace;
                }
                by_item
                    .entry(order.item_id.clone())
                    .or_default()
                    .push(BatchOrder {
                        at,
                        order,
                        event_id,
                        context,
                        span,
                    });
            }
        }
    }

    tracing::debug!(
        entries = batch.entries.len(),
        items = by_item.len(),
        malformed = letters.len(),
        "Bulk OrderPlaced delivery"
    );
    let mut items = tokio::task::JoinSet::new();
    for (item_id, orders) in by_item {
        let inventory = state.inventory.clone();
        // One read and one write serve all of an item's orders: their calls run in the first
        // order's consumer span (and trace); the others' spans carry only their outcome.
        let (context, span) = (orders[0].context.clone(), orders[0].span.clone());
        items.spawn(
            async move {
                let batch: Vec<(&OrderPlaced, Option<&str>)> = orders
                    .iter()
                    .map(|o| (&o.order, o.event_id.as_deref()))
                    .collect();
                let result = inventory.apply_all(&item_id, &batch, &context).await;
                (orders, result)
            }
            .instrument(span),
        );
    }
    if !letters.is_empty() {
        let just_letters: Vec<DeadLetter> = letters.iter().map(|(_, l)| l.clone()).collect();
        match state
            .inventory
            .record_dead_letters(&just_letters, &trace)
            .await
        {
            Ok(new) => {
                for ((at, letter), new) in letters.into_iter().zip(new) {
                    if new {
                        log_recorded(&letter);
                    }
                    outcomes[at] = Some(Delivered::Malformed {
                        reason: letter.reason,
                        event_id: letter.event_id,
                    });
                }
            }
            Err(e) => {
                tracing::error!(
                    "{} malformed OrderPlaced events not recorded yet, Dapr will retry them: {e}",
                    letters.len()
                );
                for (at, _) in letters {
                    outcomes[at] = Some(Delivered::Unrecorded(e.to_string()));
                }
            }
        }
    }
    while let Some(done) = items.join_next().await {
        // A task that panicked leaves its entries unanswered, which daprd retries.
        let Ok((orders, result)) = done else {
            tracing::error!("applying a batch of orders failed unexpectedly; Dapr will retry it");
            continue;
        };
        match result {
            Ok(decided) => {
                for (o, decided) in orders.into_iter().zip(decided) {
                    trace::record_outcome(&o.span, outcome_label(Some(&decided)));
                    outcomes[o.at] = Some(Delivered::Decided {
                        decided,
                        event_id: o.event_id,
                    });
                }
            }
            Err(e) => {
                let error = e.to_string();
                for o in orders {
                    trace::record_outcome(&o.span, outcome_label(None));
                    outcomes[o.at] = Some(Delivered::NotProcessed {
                        order: o.order,
                        error: error.clone(),
                    });
                }
            }
        }
    }

    let statuses = batch
        .entries
        .into_iter()
        .zip(outcomes)
        .filter_map(|(entry, delivered)| {
            let delivered = delivered?;
            delivered.log();
            Some(EntryStatus {
                entry_id: entry.entry_id,
                status: delivered.into_verdict().status(),
            })
        })
        .collect();
    Json(BulkAnswer { statuses }).into_response()
}

/// The log line of a dead letter recorded for the first time.
fn log_recorded(letter: &DeadLetter) {
    tracing::warn!(
        event_id = letter.event_id.as_deref(),
        payload = %letter.payload,
        "Recorded dead-lettered OrderPlaced event: {}",
        letter.reason
    );
}

/// An order of a bulk delivery, waiting for its item's write.
struct BatchOrder {
    /// Its entry's place in the batch.
    at: usize,
    order: OrderPlaced,
    event_id: Option<String>,
    /// Its consumer span and the context its sidecar calls continue.
    context: TraceContext,
    span: tracing::Span,
}

/// The `order.outcome` of a consumer span: what became of the order, `None` when the store
/// failed.
fn outcome_label(decided: Option<&store::Decided>) -> &'static str {
    match decided {
        Some(d) if d.duplicate => "duplicate",
        Some(d) if d.outcome.status == Status::Applied => "applied",
        Some(_) => "rejected",
        None => "not_processed",
    }
}

/// Why an inventory request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request was invalid (4xx).
    #[error(transparent)]
    Invalid(#[from] ApiError),
    /// No outcome is recorded for the order (404).
    #[error("no outcome is recorded for order {order_id} of item {item_id}")]
    OutcomeNotFound {
        /// The item.
        item_id: String,
        /// The order.
        order_id: String,
    },
    /// The state store failed or stayed contended (503).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Self::Invalid(e) => e.into_response(),
            Self::OutcomeNotFound { .. } => ApiError::not_found(self.to_string()).into_response(),
            Self::Store(e) if e.is_contention() => {
                tracing::warn!("{e}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "contention",
                    "the item is being updated by too many writers at once; try again",
                )
                .into_response()
            }
            Self::Store(e) => {
                tracing::error!("state store request failed: {e}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "state_store_unavailable",
                    "reading or writing inventory state failed; try again",
                )
                .into_response()
            }
        }
    }
}

/// The stock of an item, as the stock routes answer it: `{"itemId":"item1","quantity":100}`.
/// Answers are typed structs, serialized in field order, so they print as the README shows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stock {
    /// The item.
    pub item_id: String,
    /// Units in stock.
    pub quantity: u64,
}

fn item_id(raw: &str) -> Result<&str, Error> {
    input::check_identifier("itemId", raw)?;
    Ok(raw)
}

/// `GET /inventory/{itemId}`.
async fn get_stock(
    State(state): State<AppState>,
    Path(raw_item): Path<String>,
    trace: TraceContext,
) -> Result<Json<Stock>, Error> {
    let item = item_id(&raw_item)?;
    let quantity = state.inventory.stock(item, &trace).await?;
    Ok(Json(Stock {
        item_id: raw_item,
        quantity,
    }))
}

/// `POST /inventory/{itemId}` with `{"quantity": n}`.
async fn set_stock(
    State(state): State<AppState>,
    Path(raw_item): Path<String>,
    trace: TraceContext,
    JsonObject(body): JsonObject,
) -> Result<Json<Stock>, Error> {
    let item = item_id(&raw_item)?;
    let quantity = input::integer(&body, "quantity", 0..=MAX_STOCK)?;
    state.inventory.set_stock(item, quantity, &trace).await?;
    tracing::info!("Stock set. itemId={item}, quantity={quantity}");
    Ok(Json(Stock {
        item_id: raw_item,
        quantity,
    }))
}

/// `GET /inventory/{itemId}/orders/{orderId}`.
async fn get_outcome(
    State(state): State<AppState>,
    Path((raw_item, raw_order)): Path<(String, String)>,
    trace: TraceContext,
) -> Result<Json<Outcome>, Error> {
    let item = item_id(&raw_item)?;
    input::check_identifier("orderId", &raw_order)?;
    match state.inventory.outcome(item, &raw_order, &trace).await? {
        Some(outcome) => Ok(Json(outcome)),
        None => Err(Error::OutcomeNotFound {
            item_id: item.to_owned(),
            order_id: raw_order,
        }),
    }
}

/// `GET /dapr/subscribe`: Dapr asks once at start-up what to deliver where. `OrderPlaced` comes
/// in batches on `orders/bulk` unless `BULK_SUBSCRIBE=false`, one event at a time on `orders`
/// then.
async fn subscriptions(State(state): State<AppState>) -> Json<Value> {
    let orders = match state.bulk {
        Some(bulk) => json!({
            "pubsubname": state.pubsub_name,
            "topic": events::TOPIC,
            "route": "orders/bulk",
            "deadLetterTopic": DEAD_LETTER_TOPIC,
            "bulkSubscribe": {
                "enabled": true,
                "maxMessagesCount": bulk.max_messages,
                "maxAwaitDurationMs": bulk.max_await_ms,
            },
        }),
        None => json!({
            "pubsubname": state.pubsub_name,
            "topic": events::TOPIC,
            "route": "orders",
            "deadLetterTopic": DEAD_LETTER_TOPIC,
        }),
    };
    Json(json!([
        orders,
        {
            "pubsubname": state.pubsub_name,
            "topic": DEAD_LETTER_TOPIC,
            "route": "deadletters",
            // daprd then parses nothing, so a message that is not a CloudEvent reaches the app
            // too (see `delivery::dead_lettered_message`).
            "metadata": { "rawPayload": "true" },
        },
    ]))
}

/// `POST /deadletters`: an event Dapr moved to the dead-letter topic. It is recorded (and never
/// dropped: if recording fails, Dapr retries).
async fn on_dead_letter(State(state): State<AppState>, trace: TraceContext, body: Body) -> Verdict {
    let bytes = match axum::body::to_bytes(body, MAX_EVENT_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => b"(the dead-lettered event was larger than the limit or unreadable)"[..].into(),
    };
    let bytes = delivery::dead_lettered_message(&bytes);
    let (event_id, reason) = match delivery::classify(&bytes) {
        Delivery::Malformed { reason, event_id } => (event_id, reason),
        Delivery::Order { event_id, .. } => (
            event_id,
            "delivery failed and Dapr gave up on it".to_owned(),
        ),
    };
    let letter = DeadLetter::new(event_id, reason, &bytes);
    match state.inventory.record_dead_letter(&letter, &trace).await {
        Ok(new) => {
            if new {
                log_recorded(&letter);
            }
            Verdict::Success
        }
        Err(e) => {
            tracing::error!(
                payload = %letter.payload,
                "Dead-lettered event not recorded yet, Dapr will retry it: {e}"
            );
            Verdict::Retry(e.to_string())
        }
    }
}

/// `GET /deadletters`: how many events were dead-lettered, and the latest ones.
async fn get_dead_letters(
    State(state): State<AppState>,
    trace: TraceContext,
) -> Result<Json<DeadLetters>, Error> {
    Ok(Json(state.inventory.dead_letters(&trace).await?))
}
