//! The exact request `DaprClient::invoke` sends for the `/v1.0/invoke` form of service
//! invocation, against a `wiremock` stand-in for the sidecar. (The HTTP-proxying form is
//! covered through `checkout`'s tests, and both reach the real sidecar in the e2e suite.)

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::Method;
use serde_json::json;
use service_kit::dapr::DaprConfig;
use service_kit::env::Secret;
use service_kit::{DaprClient, DaprError, TraceContext};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn invoke_posts_to_the_invoke_api_with_the_app_id_as_one_segment() {
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1.0/invoke/order%20processor/method/orders/1"))
        .and(header("content-type", "application/json"))
        .and(header("dapr-api-token", "s3cret"))
        .and(body_json(json!({"orderId": 1})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&sidecar)
        .await;
    let mut config = DaprConfig::for_url(sidecar.uri());
    config.api_token = Some(Secret::new("s3cret"));
    let client = DaprClient::new(&config).unwrap();

    let reply = client
        .invoke(
            Method::POST,
            "order processor",
            "/orders/1",
            Some(&json!({"orderId": 1})),
            &TraceContext::default(),
        )
        .await
        .unwrap();

    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(&reply.body[..], br#"{"ok":true}"#);
}

#[tokio::test]
async fn a_refused_invocation_is_a_status_error_with_dapr_s_error_code() {
    let sidecar = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(
                json!({"errorCode": "ERR_DIRECT_INVOKE", "message": "app not found"}),
            ),
        )
        .mount(&sidecar)
        .await;
    let client = DaprClient::new(&DaprConfig::for_url(sidecar.uri())).unwrap();

    let err = client
        .invoke(
            Method::GET,
            "nobody",
            "health",
            None,
            &TraceContext::default(),
        )
        .await
        .unwrap_err();

    let DaprError::Status {
        status, error_code, ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(status.as_u16(), 500);
    assert_eq!(error_code.as_deref(), Some("ERR_DIRECT_INVOKE"));
}
