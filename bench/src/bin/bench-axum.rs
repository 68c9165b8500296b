//! The reference point: a bare axum JSON endpoint with the workspace's axum and tokio, and
//! nothing else (no middleware, no logging, no validation beyond serde). `POST /orders` with
//! `{"orderId": n}` answers `{"orderId": n, "status": "received"}` like `order-processor`;
//! `GET /healthz` answers 200. Listens on `0.0.0.0:$APP_PORT`, like the services.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Order {
    #[serde(rename = "orderId")]
    order_id: u64,
}

async fn orders(Json(order): Json<Order>) -> Json<Value> {
    Json(json!({ "orderId": order.order_id, "status": "received" }))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(Ok(port)) = std::env::var("APP_PORT").map(|p| p.parse::<u16>()) else {
        report("bench-axum: set APP_PORT to the port to listen on");
        return ExitCode::from(2);
    };
    let app = Router::new()
        .route("/orders", post(orders))
        .route("/healthz", get(healthz));
    let listener = match tokio::net::TcpListener::bind(SocketAddr::from((
        Ipv4Addr::UNSPECIFIED,
        port,
    )))
    .await
    {
        Ok(listener) => listener,
        Err(e) => {
            report(&format!("bench-axum: cannot listen on port {port}: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&format!("bench-axum: {e}"));
            ExitCode::FAILURE
        }
    }
}

// A reference server without a logging stack reports its few fatal errors on stderr.
#[allow(clippy::print_stderr)]
fn report(message: &str) {
    eprintln!("{message}");
}
