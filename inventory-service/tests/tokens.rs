//! Who may call which route when `APP_API_TOKEN` is set: the public reads answer anyone (on
//! Azure, ingress reaches them past the sidecar); setting stock, the subscription list and both
//! deliveries need the sidecar's `dapr-api-token`, and without it change nothing.

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use inventory_service::config::Bulk;
use inventory_service::store::Inventory;
use inventory_service::{AppState, app};
use serde_json::{Value, json};
use service_kit::env::Secret;
use service_kit::http::HttpConfig;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "app-token-7f3a";
const SAVE_PATH: &str = "/v1.0/state/statestore";

/// A sidecar whose store holds item1 (stock 100, order-1001 decided) and nothing else, and
/// accepts every write.
async fn sidecar() -> MockServer {
    let sidecar = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/state/statestore/item%3Aitem1"))
        .respond_with(ResponseTemplate::new(200).insert_header("etag", "3").set_body_json(json!({
            "quantity": 100,
            "recent": [{"orderId": "order-1001", "itemId": "item1", "quantity": 10, "status": "applied", "remaining": 100}]
        })))
        .mount(&sidecar)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/state/statestore/deadletters"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&sidecar)
        .await;
    // Any other key (an order's own key) does not exist.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(10)
        .mount(&sidecar)
        .await;
    Mock::given(method("POST"))
        .and(path(SAVE_PATH))
        .respond_with(ResponseTemplate::new(204))
        .mount(&sidecar)
        .await;
    sidecar
}

fn router(sidecar: &MockServer) -> Router {
    app(AppState {
        inventory: Inventory::new(test_kit::client(sidecar), "statestore"),
        pubsub_name: "pubsub".to_owned(),
        bulk: Some(Bulk::default()),
        http: HttpConfig {
            app_api_token: Some(Secret::new(TOKEN)),
        },
    })
}

fn event(order_id: &str) -> String {
    json!({
        "specversion": "1.0", "id": "evt-9", "type": "com.dapr.event.sent", "source": "order-service",
        "datacontenttype": "application/json",
        "data": {"orderId": order_id, "itemId": "item1", "quantity": 1},
    })
    .to_string()
}

/// The sidecar-only routes, each with a body that succeeds.
fn sidecar_only() -> Vec<(Method, &'static str, String)> {
    vec![
        (
            Method::POST,
            "/inventory/item1",
            r#"{"quantity": 5}"#.to_owned(),
        ),
        (Method::GET, "/dapr/subscribe", String::new()),
        (Method::POST, "/orders", event("order-2001")),
        (
            Method::POST,
            "/orders/bulk",
            format!(
                r#"{{"entries": [{{"entryId": "e-1", "event": {}}}]}}"#,
                event("order-2004")
            ),
        ),
        (Method::POST, "/deadletters", event("order-2002")),
    ]
}

/// The public routes.
const PUBLIC: [&str; 3] = [
    "/inventory/item1",
    "/inventory/item1/orders/order-1001",
    "/deadletters",
];

async fn call(
    sidecar: &MockServer,
    method: Method,
    uri: &str,
    body: String,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header("dapr-api-token", t);
    }
    test_kit::call(router(sidecar), req.body(Body::from(body)).unwrap()).await
}

async fn writes(sidecar: &MockServer) -> usize {
    sidecar
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count()
}

#[tokio::test]
async fn public_reads_answer_without_the_token() {
    let sidecar = sidecar().await;
    for uri in PUBLIC {
        for token in [None, Some("wrong")] {
            let (status, body) = call(&sidecar, Method::GET, uri, String::new(), token).await;
            assert_eq!(status, StatusCode::OK, "GET {uri} {token:?}: {body}");
        }
    }
    let (_, stock) = call(&sidecar, Method::GET, PUBLIC[0], String::new(), None).await;
    assert_eq!(stock, json!({"itemId": "item1", "quantity": 100}));
    let (_, outcome) = call(&sidecar, Method::GET, PUBLIC[1], String::new(), None).await;
    assert_eq!(outcome["status"], "applied");
    let (_, letters) = call(&sidecar, Method::GET, PUBLIC[2], String::new(), None).await;
    assert_eq!(letters["count"], 0);
}

#[tokio::test]
async fn sidecar_only_routes_refuse_a_missing_or_wrong_token_and_write_nothing() {
    let sidecar = sidecar().await;
    for (method, uri, body) in sidecar_only() {
        for token in [None, Some("wrong"), Some("app-token-7f3a-and-more")] {
            let (status, answer) = call(&sidecar, method.clone(), uri, body.clone(), token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri} {token:?}");
            assert_eq!(answer["error"], "unauthorized");
        }
    }
    assert_eq!(
        writes(&sidecar).await,
        0,
        "a refused call must change nothing"
    );
}

#[tokio::test]
async fn sidecar_only_routes_work_with_the_right_token() {
    let sidecar = sidecar().await;
    for (method, uri, body) in sidecar_only() {
        let (status, answer) = call(&sidecar, method.clone(), uri, body, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{method} {uri}: {answer}");
    }
    let (_, stock) = call(
        &sidecar,
        Method::POST,
        "/inventory/item1",
        r#"{"quantity": 5}"#.to_owned(),
        Some(TOKEN),
    )
    .await;
    assert_eq!(stock, json!({"itemId": "item1", "quantity": 5}));
    let (_, applied) = call(
        &sidecar,
        Method::POST,
        "/orders",
        event("order-2003"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(applied, json!({"status": "SUCCESS"}));
    // Set stock twice, applied three orders (one of them in a batch), recorded one dead letter.
    assert_eq!(writes(&sidecar).await, 6);
}

#[tokio::test]
async fn health_and_unknown_routes_need_no_token() {
    let sidecar = sidecar().await;
    let (status, _) = call(&sidecar, Method::GET, "/healthz", String::new(), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(&sidecar, Method::GET, "/nope", String::new(), None).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
    let (status, body) = call(
        &sidecar,
        Method::DELETE,
        "/inventory/item1",
        String::new(),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::METHOD_NOT_ALLOWED, &json!("method_not_allowed"))
    );
}
