//! `order-processor`: receives `POST /orders` from `checkout` through Dapr service invocation.
//!
//! It logs each order exactly as the tutorial's Node.js callee does
//! (`Order received: { orderId: 1 }`) and answers 200 with a JSON body. Anything but a JSON
//! object with a positive integer `orderId` is refused with a 4xx JSON error naming the problem,
//! and the refusal is logged at WARN with its reason and trace id.

use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use service_kit::ApiError;
use service_kit::http::{self, HttpConfig};
use service_kit::input::{self, JsonObject};

/// Port the tutorial's callee listens on.
pub const DEFAULT_PORT: u16 = 5001;
/// Largest request body accepted; an order is a few bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Largest orderId accepted: 2^53 - 1, the largest integer every JSON client (JavaScript
/// included) represents exactly.
pub const MAX_ORDER_ID: u64 = (1 << 53) - 1;

/// What the handlers share.
#[derive(Debug, Clone, Default)]
pub struct AppState {
    /// Token check and other HTTP settings.
    pub http: HttpConfig,
}

/// The service's routes with the shared middleware.
///
/// `POST /orders` is sidecar-only: `checkout` reaches it only through Dapr service invocation,
/// so with `APP_API_TOKEN` set it needs the sidecar's token. There are no public routes.
pub fn app(state: AppState) -> Router {
    let public = Router::new();
    let sidecar_only = Router::new().route(
        "/orders",
        post(receive_order).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    );
    http::finish(public, sidecar_only, &state.http)
}

/// The answer to a received order: `{"orderId":1,"status":"received"}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    /// The order.
    pub order_id: u64,
    /// Always "received".
    pub status: &'static str,
}

/// `POST /orders` with `{"orderId": <positive integer>}`.
async fn receive_order(body: Result<JsonObject, ApiError>) -> Result<Json<Received>, ApiError> {
    let order_id = body
        .and_then(|JsonObject(body)| input::integer(&body, "orderId", 1..=MAX_ORDER_ID))
        .inspect_err(|refusal| {
            // The caller may never show the answer's body (`dapr invoke` prints only the status),
            // so the reason is logged here too.
            tracing::warn!(
                status = refusal.status().as_u16(),
                "Order refused: {}",
                refusal.message()
            );
        })?;
    service_kit::trace::set_attribute("order.id", order_id.to_string());
    tracing::info!("Order received: {{ orderId: {order_id} }}");
    Ok(Json(Received {
        order_id,
        status: "received",
    }))
}
