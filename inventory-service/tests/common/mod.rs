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

/// The JSON bodies of the state writes `sidecar` received, in order. Every update of an item
/// document (a write with an ETag) must carry a `writeId`, new and random on each write, and
/// below 2^53, so that it survives a store or sidecar that holds JSON numbers as doubles (daprd
/// does); it is checked and taken out here, so that the rest compares exactly.
pub(crate) async fn saves(sidecar: &MockServer) -> Vec<Value> {
    let mut bodies = test_kit::posted(sidecar, SAVE_PATH).await;
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

/// Writes to the state API answer `answer`.
pub(crate) async fn saves_answer(sidecar: &MockServer, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(SAVE_PATH))
        .respond_with(answer)
        .mount(sidecar)
        .await;
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
