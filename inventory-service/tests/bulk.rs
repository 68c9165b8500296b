//! Bulk deliveries (`POST /orders/bulk`): the exact state requests a batch costs, and the status
//! each entry gets for each answer of the state store, against a `wiremock` stand-in for the
//! sidecar. (The real daprd and Redis are exercised by the end-to-end tests.)

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use inventory_service::config::Bulk;
use inventory_service::store::Inventory;
use inventory_service::{AppState, app};
use serde_json::{Value, json};
use service_kit::http::HttpConfig;
use test_kit::call as send;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;
use common::{saves, saves_answer};

const BULK_GET_PATH: &str = "/v1.0/state/statestore/bulk";
const DEAD_LETTERS_PATH: &str = "/v1.0/state/statestore/deadletters";

fn router(sidecar: &MockServer) -> Router {
    app(AppState {
        inventory: Inventory::new(test_kit::client(sidecar), "statestore"),
        pubsub_name: "pubsub".to_owned(),
        bulk: Some(Bulk::default()),
        http: HttpConfig::default(),
    })
}

fn item_path(item: &str) -> String {
    format!("/v1.0/state/statestore/item%3A{item}")
}

/// A CloudEvent as daprd puts it in a bulk entry's `event`.
fn event(id: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0", "id": id, "type": "com.dapr.event.sent", "source": "order-service",
        "topic": "OrderPlaced", "pubsubname": "pubsub", "datacontenttype": "application/json",
        "data": data,
    })
}

fn order(id: &str, item: &str, quantity: u64) -> Value {
    event(
        &format!("evt-{id}"),
        json!({"orderId": id, "itemId": item, "quantity": quantity}),
    )
}

/// Delivers `events` as one batch, entry ids `e0`, `e1`, ...; returns the status and the
/// status each entry got, by entry id in the order answered.
async fn deliver(sidecar: &MockServer, events: Vec<Value>) -> (StatusCode, Vec<(String, String)>) {
    let entries: Vec<Value> = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            json!({"entryId": format!("e{i}"), "event": event,
                   "contentType": "application/cloudevents+json", "metadata": {}})
        })
        .collect();
    let body = json!({"id": "b-1", "entries": entries, "metadata": {}, "pubsubname": "pubsub",
                      "topic": "OrderPlaced", "type": "com.dapr.event.sent.bulk"});
    let req = Request::post("/orders/bulk")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, answer) = send(router(sidecar), req).await;
    let statuses = answer["statuses"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|e| {
                    (
                        e["entryId"].as_str().unwrap().to_owned(),
                        e["status"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (status, statuses)
}

fn all(status: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("e{i}"), status.to_owned()))
        .collect()
}

async fn stored(sidecar: &MockServer, at: &str, doc: Value, etag: &str) {
    common::answer(sidecar, "GET", at, common::stored(doc, etag), None).await;
}

/// The bulk read of `keys` in `item`'s partition, answering that none of them exists (Dapr
/// lists a missing key without `data`).
async fn none_stored(sidecar: &MockServer, item: &str, keys: &[&str]) {
    let answer: Vec<Value> = keys.iter().map(|k| json!({"key": k})).collect();
    Mock::given(method("POST"))
        .and(path(BULK_GET_PATH))
        .and(query_param("metadata.partitionKey", item))
        .and(body_json(json!({ "keys": keys })))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(sidecar)
        .await;
}

/// The requests the sidecar got, as `METHOD path`, in order.
async fn requests(sidecar: &MockServer) -> Vec<String> {
    sidecar
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

fn outcome(id: &str, item: &str, quantity: u64, remaining: u64) -> Value {
    json!({"orderId": id, "itemId": item, "quantity": quantity, "status": "applied",
           "remaining": remaining, "eventId": format!("evt-{id}")})
}

#[tokio::test]
async fn the_orders_of_one_item_cost_one_read_one_bulk_read_and_one_write() {
    let sidecar = MockServer::start().await;
    stored(
        &sidecar,
        &item_path("item1"),
        json!({"quantity": 100, "recent": []}),
        "3",
    )
    .await;
    none_stored(
        &sidecar,
        "item1",
        &["order:item1:a", "order:item1:b", "order:item1:c"],
    )
    .await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

    let (status, statuses) = deliver(
        &sidecar,
        vec![
            order("a", "item1", 10),
            order("b", "item1", 20),
            order("c", "item1", 30),
        ],
    )
    .await;

    assert_eq!((status, statuses), (StatusCode::OK, all("SUCCESS", 3)));
    assert_eq!(
        requests(&sidecar).await,
        [
            "GET /v1.0/state/statestore/item%3Aitem1",
            "POST /v1.0/state/statestore/bulk",
            "POST /v1.0/state/statestore",
        ]
    );
    // In the order delivered, each against the stock the one before left.
    assert_eq!(
        saves(&sidecar).await,
        [json!([{
            "key": "item:item1",
            "value": {"quantity": 40, "recent": [
                outcome("a", "item1", 10, 90),
                outcome("b", "item1", 20, 70),
                outcome("c", "item1", 30, 40),
            ]},
            "etag": "3",
            "options": {"concurrency": "first-write"},
            "metadata": {"partitionKey": "item1"}
        }])]
    );
}

#[tokio::test]
async fn a_write_conflict_on_every_attempt_leaves_every_order_of_that_write_to_retry() {
    let sidecar = MockServer::start().await;
    stored(&sidecar, &item_path("item1"), json!({"quantity": 100}), "3").await;
    Mock::given(method("POST"))
        .and(path(BULK_GET_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"key": "order:item1:a"}, {"key": "order:item1:b"}])),
        )
        .mount(&sidecar)
        .await;
    saves_answer(&sidecar, ResponseTemplate::new(409)).await;

    let (status, statuses) = deliver(
        &sidecar,
        vec![order("a", "item1", 1), order("b", "item1", 2)],
    )
    .await;

    assert_eq!((status, statuses), (StatusCode::OK, all("RETRY", 2)));
    // Every attempt re-read the item and tried one write of both orders; none went through.
    let saved = saves(&sidecar).await;
    assert_eq!(saved.len(), 10);
    for attempt in saved {
        assert_eq!(attempt[0]["value"]["quantity"], 97);
    }
}

#[tokio::test]
async fn a_state_store_that_is_down_leaves_every_entry_to_retry_and_writes_nothing() {
    let sidecar = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(
                json!({"errorCode": "ERR_STATE_GET", "message": "connection refused"}),
            ),
        )
        .mount(&sidecar)
        .await;

    let (status, statuses) = deliver(
        &sidecar,
        vec![
            order("a", "item1", 1),
            order("b", "item2", 1),
            order("c", "item1", 1),
        ],
    )
    .await;

    assert_eq!((status, statuses), (StatusCode::OK, all("RETRY", 3)));
    assert!(saves(&sidecar).await.is_empty());
}

#[tokio::test]
async fn one_item_failing_does_not_hold_back_another() {
    let sidecar = MockServer::start().await;
    stored(&sidecar, &item_path("item1"), json!({"quantity": 5}), "1").await;
    Mock::given(method("GET"))
        .and(path(item_path("item2")))
        .respond_with(ResponseTemplate::new(500))
        .mount(&sidecar)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/state/statestore/order%3Aitem1%3Aa"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&sidecar)
        .await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

    let (status, statuses) = deliver(
        &sidecar,
        vec![order("a", "item1", 1), order("b", "item2", 1)],
    )
    .await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        statuses,
        [
            ("e0".to_owned(), "SUCCESS".to_owned()),
            ("e1".to_owned(), "RETRY".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_batch_mixing_new_duplicate_over_stock_and_malformed_entries() {
    let sidecar = MockServer::start().await;
    // item1 has 10 in stock and already decided order "old".
    stored(
        &sidecar,
        &item_path("item1"),
        json!({"quantity": 10, "recent": [outcome("old", "item1", 5, 10)]}),
        "7",
    )
    .await;
    // "new" and "big" are not in the document, so their own keys are read, once each.
    none_stored(&sidecar, "item1", &["order:item1:new", "order:item1:big"]).await;
    Mock::given(method("GET"))
        .and(path(DEAD_LETTERS_PATH))
        .respond_with(ResponseTemplate::new(204))
        .mount(&sidecar)
        .await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

    let (status, statuses) = deliver(
        &sidecar,
        vec![
            order("new", "item1", 4),
            // Delivered twice in the same batch: decided once.
            order("new", "item1", 4),
            // Decided in an earlier batch.
            order("old", "item1", 5),
            // More than the 6 left.
            order("big", "item1", 7),
            event("evt-bad", json!({"orderId": "x", "itemId": "item1"})),
            json!("not an object"),
        ],
    )
    .await;

    assert_eq!(status, StatusCode::OK);
    let expected: Vec<(String, String)> =
        ["SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "DROP", "DROP"]
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("e{i}"), (*s).to_owned()))
            .collect();
    assert_eq!(statuses, expected);
    let saved = saves(&sidecar).await;
    assert_eq!(saved.len(), 2, "{saved:?}");
    // The dead letters are recorded, both in one write, before the answer that drops them.
    let letters = saved.iter().find(|s| s[0]["key"] == "deadletters").unwrap();
    assert_eq!(letters[0]["value"]["count"], 2);
    let recent = &letters[0]["value"]["recent"];
    assert_eq!(recent[0]["eventId"], "evt-bad");
    assert_eq!(
        recent[0]["reason"],
        "invalid OrderPlaced event: quantity is required"
    );
    assert_eq!(recent[1]["reason"], "the event is not a JSON object");
    // One write of the item: the new order applied, the big one rejected, nothing twice.
    let item = saved.iter().find(|s| s[0]["key"] == "item:item1").unwrap();
    assert_eq!(item[0]["etag"], "7");
    let value = &item[0]["value"];
    assert_eq!(value["quantity"], 6);
    let recent = value["recent"].as_array().unwrap();
    let ids: Vec<&str> = recent
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["old", "new", "big"]);
    assert_eq!(recent[2]["status"], "rejected");
    assert_eq!(
        recent[2]["reason"],
        "insufficient stock: ordered 7, available 6"
    );
}

#[tokio::test]
async fn malformed_entries_that_cannot_be_recorded_are_retried_not_dropped() {
    let sidecar = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(DEAD_LETTERS_PATH))
        .respond_with(ResponseTemplate::new(500))
        .mount(&sidecar)
        .await;

    let (status, statuses) = deliver(&sidecar, vec![json!([1, 2]), json!(7)]).await;

    assert_eq!((status, statuses), (StatusCode::OK, all("RETRY", 2)));
}

#[tokio::test]
async fn a_body_that_is_not_a_bulk_delivery_is_retried_as_a_whole() {
    let sidecar = MockServer::start().await;
    let req = Request::post("/orders/bulk")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"entries": 5}"#))
        .unwrap();

    let (status, body) = send(router(&sidecar), req).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "RETRY");
    assert!(requests(&sidecar).await.is_empty());
}

#[tokio::test]
async fn with_bulk_on_the_subscription_asks_for_batches_on_their_own_route() {
    let sidecar = MockServer::start().await;
    let (status, body) = send(
        router(&sidecar),
        Request::get("/dapr/subscribe").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body[0],
        json!({"pubsubname": "pubsub", "topic": "OrderPlaced", "route": "orders/bulk",
               "deadLetterTopic": "OrderPlaced-deadletter",
               "bulkSubscribe": {"enabled": true, "maxMessagesCount": 300, "maxAwaitDurationMs": 1}})
    );
    assert_eq!(body[1]["route"], "deadletters");
}
