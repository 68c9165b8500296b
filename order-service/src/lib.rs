//! `order-service`: accepts `POST /order` and publishes an `OrderPlaced` event through Dapr.
//!
//! A valid order is published to topic `OrderPlaced` on the pub/sub component (default
//! `pubsub`) and answered as in the tutorial:
//! `200 {"message":"OrderPlaced event published","event":{...}}`. An invalid order gets a 4xx JSON
//! error naming the field. When the sidecar cannot be reached or refuses the publish, the answer is
//! a 5xx JSON error saying publishing failed; it never claims success it did not have.

pub mod config;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use service_kit::events::{self, OrderPlaced};
use service_kit::http::{self, HttpConfig};
use service_kit::input::JsonObject;
use service_kit::{ApiError, DaprClient, DaprError, TraceContext, trace};

/// Largest request body accepted; an order is well under 1 KiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The sidecar client.
    pub dapr: DaprClient,
    /// Pub/sub component to publish through.
    pub pubsub_name: String,
    /// Token check and other HTTP settings.
    pub http: HttpConfig,
}

/// The service's routes with the shared middleware.
///
/// `POST /order` is public: it is called from outside, straight to the app (on Azure through
/// ingress, which bypasses the sidecar) as well as through the sidecar, so it never asks for
/// `APP_API_TOKEN`. There are no sidecar-only routes.
pub fn app(state: AppState) -> Router {
    let http_config = state.http.clone();
    let public = Router::new()
        .route(
            "/order",
            post(place_order).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(state);
    http::finish(public, Router::new(), &http_config)
}

/// `POST /order` with `{"orderId": "...", "itemId": "...", "quantity": n}`.
async fn place_order(
    State(state): State<AppState>,
    trace: TraceContext,
    JsonObject(body): JsonObject,
) -> Result<Json<Published>, Error> {
    let event = OrderPlaced::from_json(&body)?;
    trace::set_attribute("order.id", event.order_id.clone());
    trace::set_attribute("order.item_id", event.item_id.clone());
    // Continue the caller's trace, or start one, so inventory-service logs the same trace id.
    let trace = trace.or_new_root();
    trace.record_in_span();
    if let Err(e) = state
        .dapr
        .publish(&state.pubsub_name, events::TOPIC, &event, &trace)
        .await
    {
        tracing::error!(order_id = %event.order_id, "publishing OrderPlaced failed: {e}");
        return Err(e.into());
    }
    tracing::info!(
        "Published OrderPlaced event. orderId={}, itemId={}, quantity={}",
        event.order_id,
        event.item_id,
        event.quantity
    );
    Ok(Json(Published {
        message: "OrderPlaced event published",
        event,
    }))
}

/// Why an order was not published.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request was invalid (4xx).
    #[error(transparent)]
    Invalid(#[from] ApiError),
    /// The sidecar could not be reached, or did not answer in time (503).
    #[error("publishing the OrderPlaced event failed: {0}")]
    SidecarUnavailable(#[source] DaprError),
    /// The sidecar answered the publish with an error (502).
    #[error("publishing the OrderPlaced event failed: {0}")]
    PublishRefused(#[source] DaprError),
}

impl From<DaprError> for Error {
    fn from(e: DaprError) -> Self {
        match e {
            DaprError::Unreachable { .. }
            | DaprError::Timeout { .. }
            | DaprError::NotReady { .. } => Self::SidecarUnavailable(e),
            DaprError::Status { .. }
            | DaprError::Decode { .. }
            | DaprError::BulkItem { .. }
            | DaprError::Client(_) => Self::PublishRefused(e),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Self::Invalid(e) => e.into_response(),
            // The body says what failed; the details (URLs, sidecar messages) go to the log.
            Self::SidecarUnavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "publish_failed",
                "publishing the OrderPlaced event failed: the Dapr sidecar is unavailable",
            )
            .into_response(),
            Self::PublishRefused(e) => {
                let status = e.status().map(|s| format!(" ({s})")).unwrap_or_default();
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "publish_failed",
                    format!("publishing the OrderPlaced event failed: the Dapr sidecar refused it{status}"),
                )
                .into_response()
            }
        }
    }
}

/// The answer to a published order, in the tutorial's field order (`message`, then `event`), so
/// that it prints exactly as the README and the tutorial show it.
#[derive(Debug, Serialize)]
pub struct Published {
    /// Always "OrderPlaced event published".
    pub message: &'static str,
    /// The event as published.
    pub event: OrderPlaced,
}
