//! `inventory-service`: keeps stock in the Dapr state store and applies `OrderPlaced` events.
//!
//! Routes (*sidecar-only* ones need the sidecar's `dapr-api-token` when `APP_API_TOKEN` is set;
//! the others are public, see [`app`]):
//! - `GET /inventory/{itemId}` → `{"itemId","quantity"}` (0 for an unknown item);
//!   `POST /inventory/{itemId}` with `{"quantity": n}` sets the stock (*sidecar-only*).
//! - `GET /inventory/{itemId}/orders/{orderId}` → the recorded outcome of an order.
//! - `GET /dapr/subscribe` (*sidecar-only*) → the subscription to `OrderPlaced` (route `orders`,
//!   with a dead-letter topic) and to the dead-letter topic itself (route `deadletters`).
//! - `POST /orders` (*sidecar-only*) ← Dapr delivers `OrderPlaced` events; each order is applied
//!   exactly once and logged as in the tutorial:
//!   `Processed OrderPlaced event. orderId=order-1001, itemId=item1, ordered=10, remaining=90`.
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

use crate::config::DEAD_LETTER_TOPIC;
use crate::delivery::{Delivered, Delivery, MAX_EVENT_BYTES, Verdict};
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
                let outcome = match &result {
                    Ok(decided) if decided.duplicate => "duplicate",
                    Ok(decided) if decided.outcome.status == Status::Applied => "applied",
                    Ok(_) => "rejected",
                    Err(_) => "not_processed",
                };
                trace::record_outcome(&span, outcome);
                Delivered::new(order, event_id, result)
            }
        },
    };
    delivered.log();
    delivered.into_verdict()
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
            Self::Store(StoreError::StateStore(e)) => {
                tracing::error!("state store request failed: {e}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "state_store_unavailable",
                    "reading or writing inventory state failed; try again",
                )
                .into_response()
            }
            Self::Store(e @ StoreError::Contention { .. }) => {
                tracing::warn!("{e}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "contention",
                    "the item is being updated by too many writers at once; try again",
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

/// `GET /dapr/subscribe`: Dapr asks once at start-up what to deliver where.
async fn subscriptions(State(state): State<AppState>) -> Json<Value> {
    Json(json!([
        {
            "pubsubname": state.pubsub_name,
            "topic": events::TOPIC,
            "route": "orders",
            "deadLetterTopic": DEAD_LETTER_TOPIC,
        },
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
                tracing::warn!(
                    event_id = letter.event_id.as_deref(),
                    payload = %letter.payload,
                    "Recorded dead-lettered OrderPlaced event: {}",
                    letter.reason
                );
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
