//! Stand-ins for the sidecar's state API that inventory-service's test files share. (Each test
//! file is its own crate and uses only some of them.)
#![allow(dead_code)]

use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Where state writes go.
pub(crate) const SAVE_PATH: &str = "/v1.0/state/statestore";
/// item1's document.
pub(crate) const ITEM1: &str = "/v1.0/state/statestore/item%3Aitem1";

/// Where state transactions go.
pub(crate) const TRANSACTION_PATH: &str = "/v1.0/state/statestore/transaction";

/// The state writes `sidecar` received, in order, each as the array of its writes: a save's
/// body, or a transaction's upserts. A transaction must hold only upserts of one item's order
/// keys, at most 100 (Cosmos DB's limit), in that item's partition. Every update of an item
/// document (a write with an ETag) must carry a `writeId`, new and random on each write, and
/// below 2^53, so that it survives a store or sidecar that holds JSON numbers as doubles (daprd
/// does); it is checked and taken out here, so that the rest compares exactly.
pub(crate) async fn saves(sidecar: &MockServer) -> Vec<Value> {
    let mut bodies: Vec<Value> = sidecar
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .filter_map(|r| match r.url.path() {
            SAVE_PATH => Some(serde_json::from_slice(&r.body).unwrap()),
            TRANSACTION_PATH => Some(upserts(&serde_json::from_slice(&r.body).unwrap())),
            _ => None,
        })
        .collect();
    for write in bodies.iter_mut().filter_map(Value::as_array_mut).flatten() {
        let is_item = write["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("item:"));
        let update = write.get("etag").is_some();
        let Some(value) = write.get_mut("value").and_then(Value::as_object_mut) else {
            continue;
        };
        match value.remove("writeId") {
            Some(id) => assert!(
                is_item && id.as_u64().is_some_and(|n| n > 0 && n < 1 << 53),
                "writeId {id} on {value:?}"
            ),
            None => assert!(
                !(is_item && update),
                "an item update without writeId: {value:?}"
            ),
        }
    }
    bodies
}

/// The writes of `transaction`, checked as [`saves`] says.
fn upserts(transaction: &Value) -> Value {
    let ops = transaction["operations"].as_array().unwrap();
    assert!(
        !ops.is_empty() && ops.len() <= 100,
        "{} operations",
        ops.len()
    );
    let partition = transaction["metadata"]["partitionKey"].as_str().unwrap();
    Value::Array(
        ops.iter()
            .map(|op| {
                assert_eq!(op["operation"], "upsert", "{op}");
                let key = op["request"]["key"].as_str().unwrap();
                assert!(
                    key.starts_with(&format!("order:{partition}:")),
                    "{key} in a transaction of partition {partition}"
                );
                op["request"].clone()
            })
            .collect(),
    )
}

/// An item document as the sidecar returns it.
pub(crate) fn stored(doc: Value, etag: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("etag", etag)
        .set_body_json(doc)
}

/// What the sidecar answers a state read while the store is down.
pub(crate) fn store_down() -> ResponseTemplate {
    ResponseTemplate::new(500)
        .set_body_json(json!({"errorCode": "ERR_STATE_GET", "message": "connection refused"}))
}

/// Answers `method_name at` with `answer`, at most `times` times when given.
pub(crate) async fn answer(
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

/// Writes to the state API, saves and transactions, answer `answer`.
pub(crate) async fn saves_answer(sidecar: &MockServer, answer: ResponseTemplate) {
    for at in [SAVE_PATH, TRANSACTION_PATH] {
        Mock::given(method("POST"))
            .and(path(at))
            .respond_with(answer.clone())
            .mount(sidecar)
            .await;
    }
}

/// Expects exactly one read of `at` in item1's partition, answered with `answer`.
pub(crate) async fn expect_one_item1_read(
    sidecar: &MockServer,
    at: &str,
    answer: ResponseTemplate,
) {
    Mock::given(method("GET"))
        .and(path(at))
        .and(query_param("metadata.partitionKey", "item1"))
        .respond_with(answer)
        .expect(1)
        .mount(sidecar)
        .await;
}
