//! `POST /order` through `app().oneshot(...)`, with a `wiremock` stand-in for the sidecar: the
//! exact publish request, each bad input, and each way publishing can fail.

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use order_service::{AppState, MAX_BODY_BYTES, app};
use serde_json::{Value, json};
use service_kit::http::HttpConfig;
use test_kit::{call, call_text};
use wiremock::matchers::{body_json, header as has_header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ORDER: &str = r#"{"orderId":"order-1001","itemId":"item1","quantity":10}"#;
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn state(sidecar: &str, timeout: Duration) -> AppState {
    AppState {
        dapr: test_kit::client_for(sidecar, |c| c.timeout = timeout),
        pubsub_name: "pubsub".to_owned(),
        http: HttpConfig::default(),
    }
}

async fn post(
    state: AppState,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let mut req = Request::post("/order").header("traceparent", TRACEPARENT);
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let (status, json) = call(app(state), req.body(body.into()).unwrap()).await;
    assert!(!json.is_null(), "every answer is JSON");
    (status, json)
}

async fn sidecar_answering(status: u16) -> MockServer {
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&sidecar)
        .await;
    sidecar
}

#[tokio::test]
async fn a_valid_order_is_published_as_json_to_the_order_placed_topic_and_echoed() {
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1.0/publish/pubsub/OrderPlaced"))
        .and(has_header("content-type", "application/json"))
        .and(has_header("traceparent", TRACEPARENT))
        .and(body_json(
            json!({"orderId": "order-1001", "itemId": "item1", "quantity": 10}),
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&sidecar)
        .await;

    let (status, body) = post(
        state(&sidecar.uri(), Duration::from_secs(5)),
        Some("application/json"),
        ORDER,
    )
    .await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "message": "OrderPlaced event published",
            "event": {"orderId": "order-1001", "itemId": "item1", "quantity": 10}
        })
    );
}

#[tokio::test]
async fn the_component_name_comes_from_configuration() {
    let sidecar = MockServer::start().await;
    Mock::given(path("/v1.0/publish/orders-bus/OrderPlaced"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&sidecar)
        .await;
    let mut st = state(&sidecar.uri(), Duration::from_secs(5));
    st.pubsub_name = "orders-bus".to_owned();

    let (status, _) = post(st, Some("application/json"), ORDER).await;

    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn each_bad_input_is_a_4xx_naming_the_problem_and_nothing_is_published() {
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&sidecar)
        .await;
    let long = "x".repeat(65);
    // (content type, body, expected status, error code, offending field)
    type Case<'a> = (
        Option<&'a str>,
        String,
        StatusCode,
        &'a str,
        Option<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            Some("application/json"),
            "not json".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            Some("text/plain"),
            ORDER.into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
        ),
        (
            None,
            ORDER.into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
        ),
        (
            Some("application/json"),
            "[]".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        ),
        (
            Some("application/json"),
            r#"{"itemId":"item1","quantity":1}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("orderId"),
        ),
        (
            Some("application/json"),
            r#"{"orderId":"","itemId":"item1","quantity":1}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("orderId"),
        ),
        (
            Some("application/json"),
            format!(r#"{{"orderId":"{long}","itemId":"item1","quantity":1}}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("orderId"),
        ),
        (
            Some("application/json"),
            r#"{"orderId":"o/1","itemId":"item1","quantity":1}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("orderId"),
        ),
        (
            Some("application/json"),
            r#"{"orderId":"o1","itemId":"item 1","quantity":1}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("itemId"),
        ),
        (
            Some("application/json"),
            r#"{"orderId":"o1","itemId":7,"quantity":1}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("itemId"),
        ),
        (
            Some("application/json"),
            r#"{"orderId":"o1","itemId":"item1"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("quantity"),
        ),
        (
            Some("application/json"),
            r#"{"orderId":"o1","itemId":"item1","quantity":0}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("quantity"),
        ),
        (
            Some("application/json"),
            r#"{"orderId":"o1","itemId":"item1","quantity":-5}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("quantity"),
        ),
        (
            Some("application/json"),
            r#"{"orderId":"o1","itemId":"item1","quantity":2.5}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("quantity"),
        ),
        (
            Some("application/json"),
            r#"{"orderId":"o1","itemId":"item1","quantity":"10"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("quantity"),
        ),
        (
            Some("application/json"),
            r#"{"orderId":"o1","itemId":"item1","quantity":1000000000}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("quantity"),
        ),
        (
            Some("application/json"),
            format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_BODY_BYTES)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            None,
        ),
    ];
    for (ct, input, want_status, want_error, want_field) in cases {
        let (status, body) = post(
            state(&sidecar.uri(), Duration::from_secs(5)),
            ct,
            input.clone(),
        )
        .await;
        let shown = &input[..input.len().min(80)];
        assert_eq!(status, want_status, "{shown}: {body}");
        assert_eq!(body["error"], want_error, "{shown}");
        assert_eq!(body["field"].as_str(), want_field, "{shown}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_sidecar_error_is_a_502_that_says_publishing_failed() {
    for status in [404, 500, 403] {
        let sidecar = sidecar_answering(status).await;
        let (got, body) = post(
            state(&sidecar.uri(), Duration::from_secs(5)),
            Some("application/json"),
            ORDER,
        )
        .await;
        assert_eq!(got, StatusCode::BAD_GATEWAY, "sidecar {status}");
        assert_eq!(body["error"], "publish_failed");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with("publishing the OrderPlaced event failed"),
            "{message}"
        );
        assert!(
            !message.contains("127.0.0.1"),
            "no internals in the body: {message}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_sidecar_or_one_that_does_not_answer_in_time_is_a_503() {
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204).set_delay(Duration::from_secs(5)))
        .mount(&slow)
        .await;
    for (url, timeout) in [
        (test_kit::unreachable_url(), Duration::from_secs(5)),
        (slow.uri(), Duration::from_secs(1)),
    ] {
        let (status, body) = post(state(&url, timeout), Some("application/json"), ORDER).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{url}");
        assert_eq!(body["error"], "publish_failed");
    }
}

#[tokio::test]
async fn with_a_token_configured_an_order_is_public_and_still_published() {
    // On Azure, ingress sends POST /order straight to the app, without the sidecar's token.
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1.0/publish/pubsub/OrderPlaced"))
        .respond_with(ResponseTemplate::new(204))
        .expect(3)
        .mount(&sidecar)
        .await;
    for token in [None, Some("wrong"), Some("app-token-1")] {
        let mut state = state(&sidecar.uri(), Duration::from_secs(5));
        state.http = HttpConfig {
            app_api_token: Some(service_kit::env::Secret::new("app-token-1")),
        };
        let mut req = Request::post("/order").header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            req = req.header("dapr-api-token", t);
        }
        let (status, body) = call(app(state), req.body(Body::from(ORDER)).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{token:?}");
        assert_eq!(body["message"], "OrderPlaced event published");
    }
}

#[tokio::test]
async fn the_answer_prints_in_the_tutorials_field_order() {
    let sidecar = sidecar_answering(204).await;
    let req = Request::post("/order")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(ORDER))
        .unwrap();

    let (_, text) = call_text(app(state(&sidecar.uri(), Duration::from_secs(5))), req).await;

    // As text, not as JSON: the README and the tutorial show `message` first and the event's
    // fields in the order the tutorial writes them.
    assert_eq!(
        text,
        r#"{"message":"OrderPlaced event published","event":{"orderId":"order-1001","itemId":"item1","quantity":10}}"#
    );
}
