//! The exact state requests `inventory-service` sends, and how it answers Dapr for each answer
//! of the state store, against a `wiremock` stand-in for the sidecar's state API. (The real
//! sidecar and Redis are exercised by the end-to-end tests.)

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use inventory_service::store::{Inventory, RECENT_OUTCOMES};
use inventory_service::{AppState, app};
use serde_json::{Value, json};
use service_kit::DaprClient;
use service_kit::dapr::DaprConfig;
use service_kit::http::HttpConfig;
use test_kit::{call as send, call_text as send_text};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;
use common::{SAVE_PATH, TRANSACTION_PATH, saves, saves_answer};

const ITEM_PATH: &str = "/v1.0/state/statestore/item%3Aitem1";
const ORDER_PATH: &str = "/v1.0/state/statestore/order%3Aitem1%3Aorder-1001";

fn router(sidecar: &MockServer) -> Router {
    app(AppState {
        inventory: Inventory::new(test_kit::client(sidecar), "statestore"),
        pubsub_name: "pubsub".to_owned(),
        bulk: None,
        http: HttpConfig::default(),
    })
}

fn cloud_event(data: Value) -> String {
    cloud_event_with_id("evt-1", data)
}

fn cloud_event_with_id(id: &str, data: Value) -> String {
    json!({
        "specversion": "1.0", "id": id, "type": "com.dapr.event.sent", "source": "order-service",
        "topic": "OrderPlaced", "pubsubname": "pubsub", "datacontenttype": "application/json",
        "data": data,
    })
    .to_string()
}

fn order_event() -> String {
    cloud_event(json!({"orderId": "order-1001", "itemId": "item1", "quantity": 10}))
}

/// `POST /orders` of the CloudEvent `body`, as daprd delivers it.
fn delivery(body: String) -> Request<Body> {
    Request::post("/orders")
        .header(header::CONTENT_TYPE, "application/cloudevents+json")
        .body(Body::from(body))
        .unwrap()
}

async fn deliver(sidecar: &MockServer, body: String) -> (StatusCode, Value) {
    send(router(sidecar), delivery(body)).await
}

/// A GET of `path` answering `doc` with ETag `etag`.
async fn stored(sidecar: &MockServer, at: &str, doc: Value, etag: &str) {
    common::answer(sidecar, "GET", at, common::stored(doc, etag), None).await;
}

/// A GET of `path` answering 204, Dapr's "no such key".
async fn missing(sidecar: &MockServer, at: &str) {
    Mock::given(method("GET"))
        .and(path(at))
        .respond_with(ResponseTemplate::new(204))
        .mount(sidecar)
        .await;
}

#[tokio::test]
async fn an_order_is_applied_with_one_conditional_write_of_stock_and_outcome() {
    let sidecar = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ITEM_PATH))
        .and(query_param("metadata.partitionKey", "item1"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "3")
                .set_body_json(json!({"quantity": 100, "recent": []})),
        )
        .expect(1)
        .mount(&sidecar)
        .await;
    Mock::given(method("GET"))
        .and(path(ORDER_PATH))
        .and(query_param("metadata.partitionKey", "item1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&sidecar)
        .await;
    Mock::given(method("POST"))
        .and(path(SAVE_PATH))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&sidecar)
        .await;

    let (status, body) = deliver(&sidecar, order_event()).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "SUCCESS"}));
    assert_eq!(
        saves(&sidecar).await,
        [json!([{
            "key": "item:item1",
            "value": {"quantity": 90, "recent": [{
                "orderId": "order-1001", "itemId": "item1", "quantity": 10,
                "status": "applied", "remaining": 90, "eventId": "evt-1"
            }]},
            "etag": "3",
            "options": {"concurrency": "first-write"},
            "metadata": {"partitionKey": "item1"}
        }])]
    );
    // Reads name no `consistency`, so they get the store's default: Dapr's Cosmos DB store would
    // send `strong` as Session, a single-replica read (docs/deploy-azure.md, "Consistency").
    let reads: Vec<String> = sidecar
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .map(|r| r.url.query().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(reads, ["metadata.partitionKey=item1"; 2]);
}

#[tokio::test]
async fn a_409_conflict_rereads_and_writes_again() {
    let sidecar = MockServer::start().await;
    stored(&sidecar, ITEM_PATH, json!({"quantity": 100}), "3").await;
    missing(&sidecar, ORDER_PATH).await;
    Mock::given(method("POST"))
        .and(path(SAVE_PATH))
        .respond_with(ResponseTemplate::new(409).set_body_json(
            json!({"errorCode": "ERR_STATE_SAVE", "message": "possible etag mismatch"}),
        ))
        .up_to_n_times(2)
        .mount(&sidecar)
        .await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

    let (status, body) = deliver(&sidecar, order_event()).await;

    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "SUCCESS"}))
    );
    assert_eq!(saves(&sidecar).await.len(), 3);
    let item_reads = sidecar
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path() == ITEM_PATH)
        .count();
    assert_eq!(item_reads, 3, "every attempt starts from a fresh read");
}

#[tokio::test]
async fn conflicts_on_every_attempt_end_in_a_retry_for_dapr() {
    let sidecar = MockServer::start().await;
    stored(&sidecar, ITEM_PATH, json!({"quantity": 100}), "3").await;
    missing(&sidecar, ORDER_PATH).await;
    saves_answer(&sidecar, ResponseTemplate::new(409)).await;

    let (status, body) = deliver(&sidecar, order_event()).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "RETRY");
    assert_eq!(saves(&sidecar).await.len(), 10);
}

#[tokio::test]
async fn a_state_store_failure_is_answered_with_a_retry() {
    for failing in ["read", "write"] {
        let sidecar = MockServer::start().await;
        if failing == "read" {
            Mock::given(method("GET"))
                .respond_with(ResponseTemplate::new(500).set_body_json(
                    json!({"errorCode": "ERR_STATE_GET", "message": "connection refused"}),
                ))
                .mount(&sidecar)
                .await;
        } else {
            stored(&sidecar, ITEM_PATH, json!({"quantity": 100}), "3").await;
            missing(&sidecar, ORDER_PATH).await;
            saves_answer(&sidecar, ResponseTemplate::new(500)).await;
        }

        let (status, body) = deliver(&sidecar, order_event()).await;

        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{failing}");
        assert_eq!(body["status"], "RETRY", "{failing}");
    }
}

#[tokio::test]
async fn a_known_order_is_a_duplicate_and_writes_nothing() {
    let sidecar = MockServer::start().await;
    let known = json!({"orderId": "order-1001", "itemId": "item1", "quantity": 10, "status": "applied", "remaining": 90});
    stored(
        &sidecar,
        ITEM_PATH,
        json!({"quantity": 90, "recent": [known]}),
        "4",
    )
    .await;

    let (status, body) = deliver(&sidecar, order_event()).await;

    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "SUCCESS"}))
    );
    assert!(saves(&sidecar).await.is_empty());
}

#[tokio::test]
async fn an_order_recorded_in_its_own_key_is_a_duplicate_too() {
    let sidecar = MockServer::start().await;
    stored(
        &sidecar,
        ITEM_PATH,
        json!({"quantity": 90, "recent": []}),
        "9",
    )
    .await;
    stored(
        &sidecar,
        ORDER_PATH,
        json!({"orderId": "order-1001", "itemId": "item1", "quantity": 10, "status": "applied", "remaining": 90}),
        "1",
    )
    .await;

    let (status, _) = deliver(&sidecar, order_event()).await;

    assert_eq!(status, StatusCode::OK);
    assert!(saves(&sidecar).await.is_empty());
}

const ORDER_1002_PATH: &str = "/v1.0/state/statestore/order%3Aitem1%3Aorder-1002";

fn order_1002_event() -> String {
    cloud_event(json!({"orderId": "order-1002", "itemId": "item1", "quantity": 10}))
}

/// One app (so one instance's memory of its writes) applies order-1001 to an item with 100 in
/// stock and no history; returns that app and the document it wrote, `writeId` included.
async fn after_order_1001(sidecar: &MockServer) -> (Router, Value) {
    let app = router(sidecar);
    common::answer(
        sidecar,
        "GET",
        ITEM_PATH,
        common::stored(json!({"quantity": 100, "recent": []}), "3"),
        Some(1),
    )
    .await;
    missing(sidecar, ORDER_PATH).await;
    saves_answer(sidecar, ResponseTemplate::new(204)).await;
    let req = Request::post("/orders")
        .header(header::CONTENT_TYPE, "application/cloudevents+json")
        .body(Body::from(order_event()))
        .unwrap();
    let (status, body) = send(app.clone(), req).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "SUCCESS"}))
    );
    let written = test_kit::posted(sidecar, SAVE_PATH).await;
    let doc = written[0][0]["value"].clone();
    assert!(doc["writeId"].as_u64().is_some_and(|n| n > 0), "{doc}");
    (app, doc)
}

async fn deliver_to(app: &Router, body: String) -> (StatusCode, Value) {
    let req = Request::post("/orders")
        .header(header::CONTENT_TYPE, "application/cloudevents+json")
        .body(Body::from(body))
        .unwrap();
    send(app.clone(), req).await
}

#[tokio::test]
async fn a_document_unchanged_since_this_instance_wrote_it_is_read_beside_the_orders_key() {
    let sidecar = MockServer::start().await;
    let (app, written) = after_order_1001(&sidecar).await;
    // Both reads of the next order take 500 ms: one after the other would take a second.
    let slow = Duration::from_millis(500);
    common::answer(
        &sidecar,
        "GET",
        ITEM_PATH,
        common::stored(written.clone(), "4").set_delay(slow),
        None,
    )
    .await;
    common::answer(
        &sidecar,
        "GET",
        ORDER_1002_PATH,
        ResponseTemplate::new(204).set_delay(slow),
        None,
    )
    .await;

    let started = std::time::Instant::now();
    let (status, body) = deliver_to(&app, order_1002_event()).await;
    let took = started.elapsed();

    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "SUCCESS"}))
    );
    assert!(
        took < Duration::from_millis(900),
        "the reads took {took:?}, one after the other"
    );
    let saved = saves(&sidecar).await;
    assert_eq!(saved.len(), 2);
    assert_eq!(saved[1][0]["etag"], "4");
    assert_eq!(saved[1][0]["value"]["quantity"], 80);
    assert_eq!(saved[1][0]["value"]["recent"][1]["orderId"], "order-1002");
}

#[tokio::test]
async fn after_another_replica_wrote_the_item_the_orders_key_is_read_again_after_the_document() {
    let sidecar = MockServer::start().await;
    let (app, _) = after_order_1001(&sidecar).await;
    // Another replica applied order-1002 and then moved its outcome out of the document: this
    // instance's early read of the key came before the move, the document read after it.
    stored(
        &sidecar,
        ITEM_PATH,
        json!({"quantity": 50, "recent": [], "writeId": 777}),
        "9",
    )
    .await;
    common::answer(
        &sidecar,
        "GET",
        ORDER_1002_PATH,
        ResponseTemplate::new(204),
        Some(1),
    )
    .await;
    stored(
        &sidecar,
        ORDER_1002_PATH,
        json!({"orderId": "order-1002", "itemId": "item1", "quantity": 10, "status": "applied", "remaining": 60}),
        "1",
    )
    .await;

    let (status, body) = deliver_to(&app, order_1002_event()).await;

    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "SUCCESS"}))
    );
    let reads = sidecar.received_requests().await.unwrap();
    let key_reads = reads
        .iter()
        .filter(|r| r.url.path() == ORDER_1002_PATH)
        .count();
    assert_eq!(
        key_reads, 2,
        "the key is read beside the document and again after it"
    );
    assert_eq!(saves(&sidecar).await.len(), 1, "a duplicate writes nothing");
}

#[tokio::test]
async fn an_order_larger_than_the_stock_is_recorded_as_rejected_and_stock_is_kept() {
    let sidecar = MockServer::start().await;
    stored(&sidecar, ITEM_PATH, json!({"quantity": 4}), "2").await;
    missing(&sidecar, ORDER_PATH).await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

    let (status, _) = deliver(&sidecar, order_event()).await;

    assert_eq!(status, StatusCode::OK);
    let saved = &saves(&sidecar).await[0][0];
    assert_eq!(saved["value"]["quantity"], 4);
    assert_eq!(saved["value"]["recent"][0]["status"], "rejected");
    assert_eq!(
        saved["value"]["recent"][0]["reason"],
        "insufficient stock: ordered 10, available 4"
    );
}

#[tokio::test]
async fn a_new_item_is_created_write_once_and_a_lost_create_race_is_retried_with_the_etag() {
    let sidecar = MockServer::start().await;
    // First read: no such key. After the failed create, the key exists (someone else made it).
    Mock::given(method("GET"))
        .and(path(ITEM_PATH))
        .respond_with(ResponseTemplate::new(204))
        .up_to_n_times(1)
        .mount(&sidecar)
        .await;
    stored(&sidecar, ITEM_PATH, json!({"quantity": 50}), "1").await;
    missing(&sidecar, ORDER_PATH).await;
    // Redis refuses a lost create with a plain 500, not 409.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"errorCode": "ERR_STATE_SAVE", "message": "failed to set key item:item1"}),
        ))
        .up_to_n_times(1)
        .mount(&sidecar)
        .await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

    let (status, _) = deliver(&sidecar, order_event()).await;

    assert_eq!(status, StatusCode::OK);
    let saves = saves(&sidecar).await;
    assert_eq!(saves.len(), 2);
    assert!(
        saves[0][0].get("etag").is_none(),
        "a create carries no ETag"
    );
    assert_eq!(saves[0][0]["options"]["concurrency"], "first-write");
    assert_eq!(saves[1][0]["etag"], "1");
    assert_eq!(saves[1][0]["value"]["quantity"], 40);
}

/// An item document holding `count` earlier outcomes, old-0 first, and no key for order-1001.
async fn stored_with_outcomes(sidecar: &MockServer, count: usize) {
    let recent: Vec<Value> = (0..count)
        .map(|i| json!({"orderId": format!("old-{i}"), "itemId": "item1", "quantity": 1, "status": "applied", "remaining": 100}))
        .collect();
    stored(
        sidecar,
        ITEM_PATH,
        json!({"quantity": 100, "recent": recent}),
        "7",
    )
    .await;
    missing(sidecar, ORDER_PATH).await;
}

#[tokio::test]
async fn outcomes_stay_in_the_document_until_it_is_full() {
    let sidecar = MockServer::start().await;
    stored_with_outcomes(&sidecar, RECENT_OUTCOMES - 1).await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

    let (status, _) = deliver(&sidecar, order_event()).await;

    assert_eq!(status, StatusCode::OK);
    let saves = saves(&sidecar).await;
    assert_eq!(saves.len(), 1, "only the item is written: {saves:?}");
    let kept = saves[0][0]["value"]["recent"].as_array().unwrap();
    assert_eq!(kept.len(), RECENT_OUTCOMES);
    assert_eq!(kept[0]["orderId"], "old-0");
    assert_eq!(kept[RECENT_OUTCOMES - 1]["orderId"], "order-1001");
}

#[tokio::test]
async fn when_the_document_is_full_its_outcomes_are_written_to_their_own_keys_first() {
    let sidecar = MockServer::start().await;
    stored_with_outcomes(&sidecar, RECENT_OUTCOMES).await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

    let (status, _) = deliver(&sidecar, order_event()).await;

    assert_eq!(status, StatusCode::OK);
    let saves = saves(&sidecar).await;
    assert_eq!(saves.len(), 2);
    // First, one state transaction (one round trip to the store) of every outcome the document
    // will drop, in its item's partition, each unconditional (it is a final fact), and expiring
    // after the default 30 days.
    let transactions = test_kit::posted(&sidecar, TRANSACTION_PATH).await;
    assert_eq!(transactions.len(), 1, "{transactions:?}");
    assert_eq!(
        transactions[0]["metadata"],
        json!({"partitionKey": "item1"})
    );
    let moved = saves[0].as_array().unwrap();
    assert_eq!(moved.len(), RECENT_OUTCOMES);
    for (i, write) in moved.iter().enumerate() {
        assert_eq!(write["key"], format!("order:item1:old-{i}"));
        assert_eq!(write["value"]["orderId"], format!("old-{i}"));
        assert_eq!(
            write["metadata"],
            json!({"partitionKey": "item1", "ttlInSeconds": "2592000"})
        );
        assert!(write.get("etag").is_none() && write.get("options").is_none());
    }
    // Then the item, conditional on the ETag read, holding only the new outcome; it never
    // expires.
    assert_eq!(saves[1][0]["key"], "item:item1");
    assert_eq!(saves[1][0]["metadata"], json!({"partitionKey": "item1"}));
    assert_eq!(saves[1][0]["etag"], "7");
    assert_eq!(saves[1][0]["value"]["quantity"], 90);
    let kept = saves[1][0]["value"]["recent"].as_array().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["orderId"], "order-1001");
}

#[tokio::test]
async fn more_than_100_outcomes_move_in_transactions_of_at_most_100() {
    // A batch can leave a document holding more outcomes than one Cosmos DB transaction takes.
    let sidecar = MockServer::start().await;
    stored_with_outcomes(&sidecar, 150).await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

    let (status, _) = deliver(&sidecar, order_event()).await;

    assert_eq!(status, StatusCode::OK);
    let saves = saves(&sidecar).await;
    let sizes: Vec<usize> = saves.iter().map(|s| s.as_array().unwrap().len()).collect();
    assert_eq!(
        sizes,
        [100, 50, 1],
        "two transactions, then the item: {saves:?}"
    );
    let moved: Vec<&Value> = saves[..2]
        .iter()
        .flat_map(|s| s.as_array().unwrap())
        .collect();
    for (i, write) in moved.iter().enumerate() {
        assert_eq!(write["key"], format!("order:item1:old-{i}"));
    }
    assert_eq!(saves[2][0]["key"], "item:item1");
}

#[tokio::test]
async fn moved_outcomes_carry_the_configured_ttl() {
    let sidecar = MockServer::start().await;
    stored_with_outcomes(&sidecar, RECENT_OUTCOMES).await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;
    let dapr = DaprClient::new(&DaprConfig::for_url(sidecar.uri())).unwrap();
    let router = app(AppState {
        inventory: Inventory::new(dapr, "statestore").with_outcome_ttl(Duration::from_secs(3600)),
        pubsub_name: "pubsub".to_owned(),
        bulk: None,
        http: HttpConfig::default(),
    });
    let req = Request::post("/orders")
        .header(header::CONTENT_TYPE, "application/cloudevents+json")
        .body(Body::from(order_event()))
        .unwrap();

    let (status, _) = send(router, req).await;

    assert_eq!(status, StatusCode::OK);
    let saves = saves(&sidecar).await;
    for write in saves[0].as_array().unwrap() {
        assert_eq!(
            write["metadata"],
            json!({"partitionKey": "item1", "ttlInSeconds": "3600"})
        );
    }
    assert_eq!(saves[1][0]["metadata"], json!({"partitionKey": "item1"}));
}

#[tokio::test]
async fn a_failed_move_of_outcomes_leaves_the_document_alone_and_asks_for_a_retry() {
    let sidecar = MockServer::start().await;
    stored_with_outcomes(&sidecar, RECENT_OUTCOMES).await;
    let refused = ResponseTemplate::new(500).set_body_json(
        json!({"errorCode": "ERR_STATE_SAVE", "message": "failed saving state in state store statestore"}),
    );
    saves_answer(&sidecar, refused).await;

    let (status, body) = deliver(&sidecar, order_event()).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "RETRY");
    let saves = saves(&sidecar).await;
    assert_eq!(saves.len(), 1, "the item must not be written: {saves:?}");
    assert_eq!(saves[0].as_array().unwrap().len(), RECENT_OUTCOMES);
}

#[tokio::test]
async fn malformed_deliveries_are_dropped_without_touching_state() {
    let sidecar = MockServer::start().await;
    for body in [
        "not json".to_owned(),
        cloud_event(json!("a string")),
        cloud_event(json!({"orderId": "o", "itemId": "item1", "quantity": 0})),
        cloud_event(json!({"orderId": "o", "itemId": "bad id", "quantity": 1})),
    ] {
        let (status, answer) = deliver(&sidecar, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(answer["status"], "DROP", "{body}");
        assert!(answer["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }
    assert!(sidecar.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_dead_letter_is_recorded_once_even_when_delivered_twice() {
    let sidecar = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/state/statestore/deadletters"))
        .respond_with(ResponseTemplate::new(204))
        .up_to_n_times(1)
        .mount(&sidecar)
        .await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;
    let body = cloud_event(json!("garbage"));
    let req = || {
        Request::post("/deadletters")
            .header(header::CONTENT_TYPE, "application/cloudevents+json")
            .body(Body::from(body.clone()))
            .unwrap()
    };

    let (status, answer) = send(router(&sidecar), req()).await;
    assert_eq!(
        (status, answer["status"].clone()),
        (StatusCode::OK, json!("SUCCESS"))
    );
    let saved = saves(&sidecar).await[0][0].clone();
    assert_eq!(saved["key"], "deadletters");
    assert_eq!(saved["value"]["count"], 1);
    assert_eq!(saved["value"]["recent"][0]["eventId"], "evt-1");
    assert_eq!(
        saved["value"]["recent"][0]["reason"],
        "the event's data is text, not a JSON object"
    );

    // Redelivered: the record already holds it.
    stored(
        &sidecar,
        "/v1.0/state/statestore/deadletters",
        saved["value"].clone(),
        "1",
    )
    .await;
    let (status, _) = send(router(&sidecar), req()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(saves(&sidecar).await.len(), 1);
}

#[tokio::test]
async fn stock_reads_and_writes() {
    let sidecar = MockServer::start().await;
    missing(&sidecar, ITEM_PATH).await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

    let (status, body) = send(
        router(&sidecar),
        Request::get("/inventory/item1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"itemId": "item1", "quantity": 0}))
    );

    let set = Request::post("/inventory/item1")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"quantity": 100}"#))
        .unwrap();
    let (status, body) = send(router(&sidecar), set).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"itemId": "item1", "quantity": 100}))
    );
    let saved = &saves(&sidecar).await[0][0];
    assert_eq!(saved["value"], json!({"quantity": 100, "recent": []}));
    assert_eq!(saved["options"]["concurrency"], "first-write");
}

#[tokio::test]
async fn bad_stock_requests_are_4xx_and_touch_nothing() {
    let sidecar = MockServer::start().await;
    let cases = [
        (
            "/inventory/item1",
            r#"{"quantity": -1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("quantity"),
        ),
        (
            "/inventory/item1",
            r#"{"quantity": 1.5}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("quantity"),
        ),
        (
            "/inventory/item1",
            r#"{"quantity": 1000000001}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("quantity"),
        ),
        (
            "/inventory/item1",
            r#"{}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("quantity"),
        ),
        ("/inventory/item1", "{", StatusCode::BAD_REQUEST, None),
        (
            "/inventory/bad%20item",
            r#"{"quantity": 1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("itemId"),
        ),
    ];
    for (uri, body, want, field) in cases {
        let req = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, answer) = send(router(&sidecar), req).await;
        assert_eq!(status, want, "{uri} {body}: {answer}");
        assert_eq!(answer["field"].as_str(), field, "{uri} {body}");
    }
    assert!(sidecar.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_order_outcome_is_404() {
    let sidecar = MockServer::start().await;
    missing(&sidecar, ITEM_PATH).await;
    missing(&sidecar, ORDER_PATH).await;

    let (status, body) = send(
        router(&sidecar),
        Request::get("/inventory/item1/orders/order-1001")
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["message"],
        "no outcome is recorded for order order-1001 of item item1"
    );
}

#[tokio::test]
async fn the_subscription_matches_the_tutorial_plus_a_dead_letter_topic() {
    let sidecar = MockServer::start().await;
    let (status, body) = send(
        router(&sidecar),
        Request::get("/dapr/subscribe").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([
            {"pubsubname": "pubsub", "topic": "OrderPlaced", "route": "orders", "deadLetterTopic": "OrderPlaced-deadletter"},
            {"pubsubname": "pubsub", "topic": "OrderPlaced-deadletter", "route": "deadletters",
             "metadata": {"rawPayload": "true"}}
        ])
    );
}

#[tokio::test]
async fn answers_print_in_the_readmes_field_order() {
    let sidecar = MockServer::start().await;
    stored(
        &sidecar,
        ITEM_PATH,
        json!({"quantity": 90, "recent": [{
            "orderId": "order-1001", "itemId": "item1", "quantity": 10, "status": "applied",
            "remaining": 90, "eventId": "evt-1"
        }]}),
        "7",
    )
    .await;
    let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();

    // Compared as text: the README shows these bytes, in this order.
    assert_eq!(
        send_text(router(&sidecar), get("/inventory/item1/orders/order-1001")).await,
        (
            StatusCode::OK,
            r#"{"orderId":"order-1001","itemId":"item1","quantity":10,"status":"applied","remaining":90,"eventId":"evt-1"}"#.to_owned()
        )
    );
    assert_eq!(
        send_text(router(&sidecar), get("/inventory/item1")).await,
        (
            StatusCode::OK,
            r#"{"itemId":"item1","quantity":90}"#.to_owned()
        )
    );
}

/// A delivery on the dead-letter subscription, which asks for `rawPayload`: daprd wraps the
/// message as published in a CloudEvent of its own, base64-encoded (components-contrib
/// `pubsub.FromRawPayload`).
fn raw_delivery(message: &[u8]) -> Request<Body> {
    use base64::Engine as _;
    let wrapper = json!({
        "id": "9b2d5c7e-random", "specversion": "1.0", "datacontenttype": "application/octet-stream",
        "source": "Dapr", "type": "com.dapr.event.sent", "topic": "OrderPlaced-deadletter",
        "pubsubname": "pubsub",
        "data_base64": base64::engine::general_purpose::STANDARD.encode(message),
    });
    Request::post("/deadletters")
        .header(header::CONTENT_TYPE, "application/cloudevents+json")
        .body(Body::from(wrapper.to_string()))
        .unwrap()
}

#[tokio::test]
async fn a_raw_message_that_is_not_a_cloud_event_is_recorded_as_a_dead_letter() {
    let sidecar = MockServer::start().await;
    missing(&sidecar, "/v1.0/state/statestore/deadletters").await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

    let (status, answer) = send(router(&sidecar), raw_delivery(b"not json")).await;

    assert_eq!(
        (status, answer["status"].clone()),
        (StatusCode::OK, json!("SUCCESS"))
    );
    let saved = saves(&sidecar).await[0][0].clone();
    assert_eq!(saved["value"]["count"], 1);
    let letter = &saved["value"]["recent"][0];
    assert_eq!(letter["reason"], "the event is not JSON");
    assert_eq!(letter["payload"], "not json");
    // daprd's wrapper id is new on every delivery, so it is not the event's id.
    assert!(letter.get("eventId").is_none(), "{letter}");
}

#[tokio::test]
async fn a_dead_lettered_cloud_event_is_recorded_under_its_own_id_through_the_raw_wrapper() {
    let sidecar = MockServer::start().await;
    missing(&sidecar, "/v1.0/state/statestore/deadletters").await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;
    let event = cloud_event(json!({"orderId": "o", "itemId": "item1"}));

    let (status, _) = send(router(&sidecar), raw_delivery(event.as_bytes())).await;

    assert_eq!(status, StatusCode::OK);
    let saved = saves(&sidecar).await[0][0].clone();
    let letter = &saved["value"]["recent"][0];
    assert_eq!(letter["eventId"], "evt-1");
    assert_eq!(
        letter["reason"],
        "invalid OrderPlaced event: quantity is required"
    );
    assert_eq!(letter["payload"], event);
}

/// `POST /orders` of order `id` of item1 for one unit, event id `evt-{id}`.
fn delivery_of(id: &str) -> Request<Body> {
    delivery(cloud_event_with_id(
        &format!("evt-{id}"),
        json!({"orderId": id, "itemId": "item1", "quantity": 1}),
    ))
}

/// Delivers orders a to e of item1 at once to one instance, whose first read of the item is
/// slow, so that b to e arrive while a holds the item; returns each answer's status field.
async fn five_at_once(sidecar: &MockServer) -> Vec<String> {
    let app = router(sidecar);
    let answers = tokio::join!(
        send(app.clone(), delivery_of("a")),
        send(app.clone(), delivery_of("b")),
        send(app.clone(), delivery_of("c")),
        send(app.clone(), delivery_of("d")),
        send(app, delivery_of("e")),
    );
    let answers = [answers.0, answers.1, answers.2, answers.3, answers.4];
    answers
        .iter()
        .map(|(_, body)| body["status"].as_str().unwrap_or("none").to_owned())
        .collect()
}

/// item1 with 100 in stock, read slowly (so that orders arrive while it is held), and none of
/// orders a to e decided before.
async fn slow_item1_and_unknown_orders(sidecar: &MockServer) {
    let doc = common::stored(json!({"quantity": 100, "recent": []}), "3");
    common::answer(
        sidecar,
        "GET",
        ITEM_PATH,
        doc.set_delay(Duration::from_millis(300)),
        None,
    )
    .await;
    missing(sidecar, "/v1.0/state/statestore/order%3Aitem1%3Aa").await;
    Mock::given(method("POST"))
        .and(path("/v1.0/state/statestore/bulk"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"key": "order:item1:b"}, {"key": "order:item1:c"},
            {"key": "order:item1:d"}, {"key": "order:item1:e"},
        ])))
        .mount(sidecar)
        .await;
}

/// The orderIds of the outcomes a save added to item1's document.
fn saved_orders(save: &Value) -> Vec<String> {
    save[0]["value"]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn orders_of_one_item_that_arrive_while_it_is_written_share_one_read_and_one_write() {
    let sidecar = MockServer::start().await;
    slow_item1_and_unknown_orders(&sidecar).await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

    let statuses = five_at_once(&sidecar).await;

    assert_eq!(statuses, ["SUCCESS"; 5]);
    let saves = saves(&sidecar).await;
    let written: Vec<Vec<String>> = saves.iter().map(saved_orders).collect();
    // a alone, then the four that waited for it, in the order they came, in one write.
    assert_eq!(written, [vec!["a"], vec!["b", "c", "d", "e"]]);
    assert_eq!(saves[1][0]["value"]["quantity"], 96);
}

#[tokio::test]
async fn when_the_shared_write_fails_every_order_that_waited_is_retried() {
    let sidecar = MockServer::start().await;
    slow_item1_and_unknown_orders(&sidecar).await;
    // a's write goes through; the store is down for the next one.
    common::answer(
        &sidecar,
        "POST",
        SAVE_PATH,
        ResponseTemplate::new(204),
        Some(1),
    )
    .await;
    common::answer(
        &sidecar,
        "POST",
        SAVE_PATH,
        ResponseTemplate::new(500)
            .set_body_json(json!({"errorCode": "ERR_STATE_SAVE", "message": "connection refused"})),
        None,
    )
    .await;

    let statuses = five_at_once(&sidecar).await;

    assert_eq!(statuses, ["SUCCESS", "RETRY", "RETRY", "RETRY", "RETRY"]);
    // The refused write held all four; nothing else was written.
    let written: Vec<Vec<String>> = saves(&sidecar).await.iter().map(saved_orders).collect();
    assert_eq!(written, [vec!["a"], vec!["b", "c", "d", "e"]]);
}

#[tokio::test]
async fn an_order_whose_delivery_stopped_waiting_is_not_applied_with_the_others() {
    let sidecar = MockServer::start().await;
    slow_item1_and_unknown_orders(&sidecar).await;
    missing(&sidecar, "/v1.0/state/statestore/order%3Aitem1%3Ac").await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;
    let app = router(&sidecar);

    // b's request is dropped while a holds the item, as when Dapr gives up on a delivery.
    let (a, b, c) = tokio::join!(
        send(app.clone(), delivery_of("a")),
        tokio::time::timeout(
            Duration::from_millis(100),
            send(app.clone(), delivery_of("b"))
        ),
        send(app, delivery_of("c")),
    );

    assert_eq!(
        (a.1["status"].as_str(), c.1["status"].as_str()),
        (Some("SUCCESS"), Some("SUCCESS"))
    );
    assert!(b.is_err(), "b was answered: {b:?}");
    let written: Vec<Vec<String>> = saves(&sidecar).await.iter().map(saved_orders).collect();
    assert_eq!(written, [vec!["a"], vec!["c"]]);
}
