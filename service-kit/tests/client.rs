//! `DaprClient` against a `wiremock` stand-in for the sidecar: the exact request of the
//! `/v1.0/invoke` form of service invocation and of a state transaction, what a refused call
//! comes back as, and the wait for the sidecar. (The HTTP-proxying form's requests are covered
//! through `checkout`'s tests, and both forms reach the real sidecar in the e2e suite.)

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::Method;
use serde_json::json;
use service_kit::dapr::StateWrite;
use service_kit::env::Secret;
use service_kit::{DaprError, TraceContext};
use test_kit::{client, client_for};
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
    let client = client_for(&sidecar.uri(), |c| {
        c.api_token = Some(Secret::new("s3cret"))
    });

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
async fn a_state_transaction_posts_upserts_with_the_request_metadata() {
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1.0/state/state%20store/transaction"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "operations": [
                {"operation": "upsert", "request": {"key": "a", "value": {"n": 1}, "metadata": {"ttlInSeconds": "60"}}},
                {"operation": "upsert", "request": {"key": "b", "value": {"n": 2}}},
            ],
            "metadata": {"partitionKey": "p1"},
        })))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&sidecar)
        .await;
    let writes = [
        StateWrite {
            key: "a",
            value: json!({"n": 1}),
            etag: None,
            options: None,
            metadata: BTreeMap::from([("ttlInSeconds", "60")]),
        },
        StateWrite {
            key: "b",
            value: json!({"n": 2}),
            etag: None,
            options: None,
            metadata: BTreeMap::new(),
        },
    ];

    client(&sidecar)
        .save_state_transaction(
            "state store",
            &writes,
            &[("partitionKey", "p1")],
            &TraceContext::default(),
        )
        .await
        .unwrap();
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
    let client = client(&sidecar);

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

#[tokio::test]
async fn a_non_2xx_answer_comes_back_as_a_status_error_with_the_body() {
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("app is not in a healthy state"))
        .mount(&sidecar)
        .await;
    let client = client(&sidecar);

    let err = client
        .invoke_via_proxy(
            Method::POST,
            "order-processor",
            "/orders",
            Some(&json!({"orderId": 1})),
            &TraceContext::default(),
        )
        .await
        .unwrap_err();

    let DaprError::Status { status, body, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.as_u16(), 503);
    assert_eq!(body, "app is not in a healthy state");
}

#[tokio::test]
async fn waiting_for_the_sidecar_polls_outbound_health_until_204() {
    let sidecar = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/healthz/outbound"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .expect(2)
        .mount(&sidecar)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/healthz/outbound"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&sidecar)
        .await;
    let client = client(&sidecar);

    client.wait_until_ready().await.unwrap();
}

#[tokio::test]
async fn waiting_for_a_sidecar_that_never_gets_ready_ends_with_a_clear_error() {
    let sidecar = test_kit::sidecar_with_health(500).await;
    let client = client_for(&sidecar.uri(), |c| c.ready_timeout = Duration::from_secs(1));

    let err = client.wait_until_ready().await.unwrap_err().to_string();

    assert!(err.contains("was not ready after"), "{err}");
    assert!(err.contains("status 500"), "{err}");
}
