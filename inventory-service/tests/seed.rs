//! `INITIAL_STOCK` at start-up, against a `wiremock` stand-in for the sidecar: the exact
//! requests for a new item (one create-only write), an existing item (no write at all), a lost
//! create race on Redis (500) and on Cosmos DB (409), and a failing state store (retried, then
//! a clear error).

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use inventory_service::seed::{SeedError, seed_initial_stock};
use inventory_service::store::Inventory;
use serde_json::json;
use service_kit::DaprClient;
use service_kit::dapr::DaprConfig;
use test_kit::{client, ready_sidecar};
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ITEM1: &str = "/v1.0/state/statestore/item%3Aitem1";
const ITEM2: &str = "/v1.0/state/statestore/item%3Aitem2";
const SAVE_PATH: &str = "/v1.0/state/statestore";

async fn seed(sidecar: &MockServer, items: &[(&str, u64)]) -> Result<(), SeedError> {
    let dapr = client(sidecar);
    let inventory = Inventory::new(dapr.clone(), "statestore");
    let items: Vec<(String, u64)> = items.iter().map(|(i, q)| ((*i).to_owned(), *q)).collect();
    seed_initial_stock(&dapr, &inventory, &items, Duration::from_secs(5)).await
}

/// The one write that creates `item` with `quantity`: no ETag, `first-write` (create-only),
/// in the item's partition.
fn create(item: &str, quantity: u64) -> serde_json::Value {
    json!([{
        "key": format!("item:{item}"),
        "value": {"quantity": quantity, "recent": []},
        "options": {"concurrency": "first-write"},
        "metadata": {"partitionKey": item},
    }])
}

async fn saves(sidecar: &MockServer) -> Vec<serde_json::Value> {
    test_kit::posted(sidecar, SAVE_PATH).await
}

/// An item document as the sidecar returns it.
fn stored_item(quantity: u64, etag: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("etag", etag)
        .set_body_json(json!({"quantity": quantity, "recent": []}))
}

/// What the sidecar answers a state read while the store is down.
fn store_down() -> ResponseTemplate {
    ResponseTemplate::new(500)
        .set_body_json(json!({"errorCode": "ERR_STATE_GET", "message": "connection refused"}))
}

/// Answers `method path` with `answer`, at most `times` times when given.
async fn answer(
    sidecar: &MockServer,
    method_name: &str,
    at: &str,
    answer: ResponseTemplate,
    times: Option<u64>,
) {
    let mock = Mock::given(method(method_name))
        .and(path(at))
        .respond_with(answer);
    match times {
        Some(n) => mock.up_to_n_times(n).mount(sidecar).await,
        None => mock.mount(sidecar).await,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_new_item_is_created_once_with_a_create_only_write() {
    let (logs, _guard) = test_kit::capture_logs();
    let sidecar = ready_sidecar().await;
    Mock::given(method("GET"))
        .and(path(ITEM1))
        .and(query_param("metadata.partitionKey", "item1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&sidecar)
        .await;
    Mock::given(method("POST"))
        .and(path(SAVE_PATH))
        .and(body_json(create("item1", 100)))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&sidecar)
        .await;

    seed(&sidecar, &[("item1", 100)]).await.unwrap();

    assert_eq!(saves(&sidecar).await, [create("item1", 100)]);
    assert_eq!(
        logs.lines_from("Initial stock"),
        ["Initial stock set. itemId=item1, quantity=100"]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_existing_item_keeps_its_stock_and_nothing_is_written() {
    let (logs, _guard) = test_kit::capture_logs();
    let sidecar = ready_sidecar().await;
    answer(&sidecar, "GET", ITEM1, stored_item(90, "4"), None).await;

    seed(&sidecar, &[("item1", 100)]).await.unwrap();

    assert!(
        saves(&sidecar).await.is_empty(),
        "an existing item is never written"
    );
    assert_eq!(
        logs.lines_from("Initial stock"),
        [
            "Initial stock kept. itemId=item1, quantity=90 (INITIAL_STOCK=100 applies only to a new item)"
        ]
    );
}

/// item1 is missing on the first read and holds stock 95 (another replica's create) after;
/// the create is answered `lost_race`.
async fn lost_create_race(
    lost_race: ResponseTemplate,
) -> (MockServer, Result<(), SeedError>, String) {
    let (logs, _guard) = test_kit::capture_logs();
    let sidecar = ready_sidecar().await;
    answer(&sidecar, "GET", ITEM1, ResponseTemplate::new(204), Some(1)).await;
    answer(&sidecar, "GET", ITEM1, stored_item(95, "1"), None).await;
    answer(&sidecar, "POST", SAVE_PATH, lost_race, None).await;
    let result = seed(&sidecar, &[("item1", 100)]).await;
    let text = logs.lines_from("Initial stock").join("\n");
    (sidecar, result, text)
}

#[tokio::test(flavor = "current_thread")]
async fn a_create_lost_to_another_replica_on_redis_keeps_what_it_wrote() {
    // Redis refuses a lost create with a plain 500, not 409.
    let (sidecar, result, logs) = lost_create_race(ResponseTemplate::new(500).set_body_json(
        json!({"errorCode": "ERR_STATE_SAVE", "message": "failed to set key item:item1"}),
    ))
    .await;
    result.unwrap();
    assert_eq!(
        saves(&sidecar).await,
        [create("item1", 100)],
        "one create, never an overwrite"
    );
    assert_eq!(
        logs,
        "Initial stock kept. itemId=item1, quantity=95 (INITIAL_STOCK=100 applies only to a new item)"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_create_lost_to_another_replica_on_cosmos_keeps_what_it_wrote() {
    let (sidecar, result, logs) = lost_create_race(ResponseTemplate::new(409).set_body_json(
        json!({"errorCode": "ERR_STATE_SAVE", "message": "possible etag mismatch"}),
    ))
    .await;
    result.unwrap();
    assert_eq!(saves(&sidecar).await, [create("item1", 100)]);
    assert!(
        logs.starts_with("Initial stock kept. itemId=item1, quantity=95"),
        "{logs}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn each_item_is_decided_on_its_own() {
    let (logs, _guard) = test_kit::capture_logs();
    let sidecar = ready_sidecar().await;
    answer(&sidecar, "GET", ITEM1, ResponseTemplate::new(204), None).await;
    let item2 = ResponseTemplate::new(200).set_body_json(json!({"quantity": 3}));
    answer(&sidecar, "GET", ITEM2, item2, None).await;
    answer(
        &sidecar,
        "POST",
        SAVE_PATH,
        ResponseTemplate::new(204),
        None,
    )
    .await;

    seed(&sidecar, &[("item1", 100), ("item2", 5)])
        .await
        .unwrap();

    assert_eq!(saves(&sidecar).await, [create("item1", 100)]);
    assert_eq!(
        logs.lines_from("Initial stock"),
        [
            "Initial stock set. itemId=item1, quantity=100",
            "Initial stock kept. itemId=item2, quantity=3 (INITIAL_STOCK=5 applies only to a new item)"
        ]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_failing_state_store_is_retried_until_it_answers() {
    let (logs, _guard) = test_kit::capture_logs();
    let sidecar = ready_sidecar().await;
    answer(&sidecar, "GET", ITEM1, store_down(), Some(2)).await;
    answer(&sidecar, "GET", ITEM1, ResponseTemplate::new(204), None).await;
    answer(
        &sidecar,
        "POST",
        SAVE_PATH,
        ResponseTemplate::new(204),
        None,
    )
    .await;

    seed(&sidecar, &[("item1", 100)]).await.unwrap();

    assert_eq!(saves(&sidecar).await, [create("item1", 100)]);
    assert_eq!(
        logs.lines_from("setting INITIAL_STOCK for item item1 failed")
            .len(),
        2
    );
    assert_eq!(
        logs.lines_from("Initial stock"),
        ["Initial stock set. itemId=item1, quantity=100"]
    );
}

#[tokio::test]
async fn a_state_store_that_keeps_failing_ends_start_up_with_a_clear_error() {
    let sidecar = ready_sidecar().await;
    answer(&sidecar, "GET", ITEM1, store_down(), None).await;
    let dapr = client(&sidecar);
    let inventory = Inventory::new(dapr.clone(), "statestore");

    let started = std::time::Instant::now();
    let err = seed_initial_stock(
        &dapr,
        &inventory,
        &[("item1".to_owned(), 100)],
        Duration::from_millis(700),
    )
    .await
    .unwrap_err()
    .to_string();

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the wait is bounded"
    );
    assert!(
        err.starts_with(
            "setting INITIAL_STOCK failed: the state store still failed for item item1 after"
        ),
        "{err}"
    );
    assert!(err.contains("ERR_STATE_GET"), "{err}");
    assert!(saves(&sidecar).await.is_empty());
}

#[tokio::test]
async fn a_sidecar_that_never_gets_ready_ends_start_up_with_a_clear_error() {
    let sidecar = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/healthz/outbound"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&sidecar)
        .await;
    let mut config = DaprConfig::for_url(sidecar.uri());
    config.ready_timeout = Duration::from_millis(300);
    let dapr = DaprClient::new(&config).unwrap();
    let inventory = Inventory::new(dapr.clone(), "statestore");

    let err = seed_initial_stock(
        &dapr,
        &inventory,
        &[("item1".to_owned(), 1)],
        Duration::from_secs(5),
    )
    .await
    .unwrap_err()
    .to_string();

    assert!(
        err.starts_with("setting INITIAL_STOCK needs the Dapr sidecar: "),
        "{err}"
    );
    assert!(
        sidecar
            .received_requests()
            .await
            .unwrap()
            .iter()
            .all(|r| r.url.path() == "/v1.0/healthz/outbound"),
        "no state call before the sidecar is ready"
    );
}

#[tokio::test]
async fn without_initial_stock_nothing_is_asked_of_the_sidecar() {
    let sidecar = MockServer::start().await;
    seed(&sidecar, &[]).await.unwrap();
    assert!(sidecar.received_requests().await.unwrap().is_empty());
}
