//! Handler tests through `app().oneshot(...)`: the tutorial's request, and each bad input one
//! by one.

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use order_processor::{AppState, MAX_BODY_BYTES, app};
use serde_json::{Value, json};
use test_kit::call;
use tower::ServiceExt;

fn router() -> Router {
    app(AppState::default())
}

async fn post_orders(content_type: Option<&str>, body: impl Into<Body>) -> (StatusCode, Value) {
    let mut req = Request::post("/orders");
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let (status, json) = call(router(), req.body(body.into()).unwrap()).await;
    assert!(!json.is_null(), "every answer is JSON");
    (status, json)
}

async fn post_json(body: &str) -> (StatusCode, Value) {
    post_orders(Some("application/json"), body.to_owned()).await
}

#[tokio::test]
async fn a_valid_order_is_answered_200_with_json() {
    let (status, body) = post_json(r#"{"orderId":1}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"orderId": 1, "status": "received"}));
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let (status, _) = post_json(r#"{"orderId":7,"note":"x"}"#).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400() {
    let (status, body) = post_json("orderId=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "malformed_json");
}

#[tokio::test]
async fn each_bad_order_id_is_422_naming_the_field() {
    let cases = [
        ("{}", "orderId is required"),
        (
            r#"{"orderId":0}"#,
            "orderId must be a positive integer, got 0",
        ),
        (
            r#"{"orderId":-1}"#,
            "orderId must be a positive integer, got -1",
        ),
        (
            r#"{"orderId":1.5}"#,
            "orderId must be a positive integer, got 1.5",
        ),
        (
            r#"{"orderId":"1"}"#,
            "orderId must be a positive integer, got the string \"1\"",
        ),
        (
            r#"{"orderId":null}"#,
            "orderId must be a positive integer, got null",
        ),
        (
            r#"{"orderId":[1]}"#,
            "orderId must be a positive integer, got an array",
        ),
        (
            r#"{"orderId":9007199254740992}"#,
            "orderId must be at most 9007199254740991, got 9007199254740992",
        ),
    ];
    for (input, message) in cases {
        let (status, body) = post_json(input).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{input}");
        assert_eq!(body["error"], "invalid_field", "{input}");
        assert_eq!(body["field"], "orderId", "{input}");
        assert_eq!(body["message"], message, "{input}");
    }
}

#[tokio::test]
async fn a_json_value_that_is_not_an_object_is_422() {
    let (status, body) = post_json("[1]").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["message"],
        "request body must be a JSON object, got an array"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_415() {
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let (status, body) = post_orders(ct, r#"{"orderId":1}"#).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert_eq!(body["error"], "unsupported_media_type");
    }
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let padding = "x".repeat(MAX_BODY_BYTES);
    let (status, body) = post_json(&format!(r#"{{"orderId":1,"pad":"{padding}"}}"#)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "body_too_large");
}

#[tokio::test]
async fn health_is_200() {
    let resp = router()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "current_thread")]
async fn each_order_is_logged_with_the_tutorials_line_and_bad_ones_are_not() {
    let (logs, _guard) = test_kit::capture_logs();

    post_json(r#"{"orderId":1}"#).await;
    post_json(r#"{"orderId":-1}"#).await;
    post_json(r#"{"orderId":20}"#).await;

    let received = logs.lines_from("Order received");
    assert_eq!(
        received,
        [
            "Order received: { orderId: 1 }",
            "Order received: { orderId: 20 }"
        ]
    );
}

fn router_with_token() -> Router {
    app(AppState {
        http: service_kit::http::HttpConfig {
            app_api_token: Some(service_kit::env::Secret::new("app-token-1")),
        },
    })
}

async fn call_with_token(uri: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header("dapr-api-token", t);
    }
    let resp = router_with_token()
        .oneshot(req.body(Body::from(r#"{"orderId":1}"#)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn with_a_token_configured_orders_are_sidecar_only() {
    // POST /orders is reached only through Dapr service invocation, which carries the token.
    for token in [None, Some("wrong"), Some("app-token-1x")] {
        let (status, body) = call_with_token("/orders", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body["error"], "unauthorized");
    }
    let (status, body) = call_with_token("/orders", Some("app-token-1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"orderId": 1, "status": "received"}));
    let resp = router_with_token()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "health stays open");
}

#[tokio::test(flavor = "current_thread")]
async fn each_refused_order_is_logged_at_warn_with_its_reason_and_trace_id() {
    let (logs, _guard) = test_kit::capture_logs();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let refused = |content_type: &'static str, body: &'static str| {
        Request::post("/orders")
            .header(header::CONTENT_TYPE, content_type)
            .header("traceparent", traceparent)
            .body(Body::from(body))
            .unwrap()
    };

    for req in [
        // What `dapr invoke --method orders --data '{"orderId":"5"}'` sends.
        refused("application/json", r#"{"orderId":"5"}"#),
        refused("application/json", "{"),
        refused("text/plain", r#"{"orderId":1}"#),
    ] {
        let status = router().oneshot(req).await.unwrap().status();
        assert!(status.is_client_error(), "{status}");
    }
    post_json(r#"{"orderId":3}"#).await;

    let text = logs.text();
    let refusals: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Order refused"))
        .collect();
    assert_eq!(refusals.len(), 3, "{text}");
    assert!(refusals.iter().all(|l| l.contains(" WARN ")), "{text}");
    assert!(
        refusals
            .iter()
            .all(|l| l.contains("trace_id=4bf92f3577b34da6a3ce929d0e0e4736")),
        "{text}"
    );
    assert_eq!(
        logs.lines_from("Order refused"),
        [
            r#"Order refused: orderId must be a positive integer, got the string "5" trace_id=4bf92f3577b34da6a3ce929d0e0e4736 status=422"#,
            "Order refused: request body is not valid JSON: EOF while parsing an object at line 1 column 1 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 status=400",
            "Order refused: expected a JSON body with Content-Type: application/json trace_id=4bf92f3577b34da6a3ce929d0e0e4736 status=415",
        ]
    );
    assert!(!text.contains("Order refused: { orderId: 3 }"));
}
