//! `INITIAL_STOCK` at start-up, against a `wiremock` stand-in for the sidecar: the exact
//! requests for a new item (one create-only write), an existing item (no write at all), a lost
//! create race on Redis (500) and on Cosmos DB (409), and a failing state store (retried, then
//! a clear error).

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{ITEM1, SAVE_PATH, answer, saves, saves_answer, store_down, stored};
use inventory_service::seed::{SeedError, seed_initial_stock};
use inventory_service::store::Inventory;
use serde_json::json;
use service_kit::DaprClient;
use test_kit::{client, client_for, ready_sidecar};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ITEM2: &str = "/v1.0/state/statestore/item%3Aitem2";

async fn seed(sidecar: &MockServer, items: &[(&str, u64)]) -> Result<(), SeedError> {
    seed_with(client(sidecar), items, Duration::from_secs(5)).await
}

/// Seeds `items` through `dapr`, retrying a failing store for at most `give_up_after`.
async fn seed_with(
    dapr: DaprClient,
    items: &[(&str, u64)],
    give_up_after: Duration,
) -> Result<(), SeedError> {
    let inventory = Inventory::new(dapr.clone(), "statestore");
    let items: Vec<(String, u64)> = items.iter().map(|(i, q)| ((*i).to_owned(), *q)).collect();
    seed_initial_stock(&dapr, &inventory, &items, give_up_after).await
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

/// An item document with `quantity` as the sidecar returns it.
fn stored_item(quantity: u64, etag: &str) -> ResponseTemplate {
    stored(json!({"quantity": quantity, "recent": []}), etag)
}

#[tokio::test(flavor = "current_thread")]
async fn a_new_item_is_created_once_with_a_create_only_write() {
    let (logs, _guard) = test_kit::capture_logs();
    let sidecar = ready_sidecar().await;
    common::expect_one_item1_read(&sidecar, ITEM1, ResponseTemplate::new(204)).await;
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

#[tokio::test(flavor = "current_thread")]
async fn a_create_lost_to_another_replica_keeps_what_it_wrote_on_redis_and_on_cosmos() {
    for (store, message, lost_race) in [
        // Redis refuses a lost create with a plain 500, not 409.
        ("redis", "failed to set key item:item1", 500),
        ("cosmos", "possible etag mismatch", 409),
    ] {
        // item1 is missing on the first read and holds stock 95 (another replica's create) after.
        let (logs, _guard) = test_kit::capture_logs();
        let sidecar = ready_sidecar().await;
        answer(&sidecar, "GET", ITEM1, ResponseTemplate::new(204), Some(1)).await;
        answer(&sidecar, "GET", ITEM1, stored_item(95, "1"), None).await;
        let refusal = json!({"errorCode": "ERR_STATE_SAVE", "message": message});
        let refusal = ResponseTemplate::new(lost_race).set_body_json(refusal);
        saves_answer(&sidecar, refusal).await;

        seed(&sidecar, &[("item1", 100)]).await.unwrap();

        assert_eq!(
            saves(&sidecar).await,
            [create("item1", 100)],
            "{store}: one create, never an overwrite"
        );
        assert_eq!(
            logs.lines_from("Initial stock"),
            [
                "Initial stock kept. itemId=item1, quantity=95 (INITIAL_STOCK=100 applies only to a new item)"
            ],
            "{store}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn each_item_is_decided_on_its_own() {
    let (logs, _guard) = test_kit::capture_logs();
    let sidecar = ready_sidecar().await;
    answer(&sidecar, "GET", ITEM1, ResponseTemplate::new(204), None).await;
    let item2 = ResponseTemplate::new(200).set_body_json(json!({"quantity": 3}));
    answer(&sidecar, "GET", ITEM2, item2, None).await;
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

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
    saves_answer(&sidecar, ResponseTemplate::new(204)).await;

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

    let started = Instant::now();
    let err = seed_with(
        client(&sidecar),
        &[("item1", 100)],
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
    let sidecar = test_kit::sidecar_with_health(500).await;
    let dapr = client_for(&sidecar.uri(), |c| {
        c.ready_timeout = Duration::from_millis(300)
    });

    let err = seed_with(dapr, &[("item1", 1)], Duration::from_secs(5))
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
