//! HTTP helpers for the tests, blocking on one shared Tokio runtime so the tests read top to
//! bottom, and the pub/sub fixture: both tutorial services started with the README's commands.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use e2e::{Env, Proc, readme, wait_until};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

static RT: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
});

pub(crate) const INVENTORY_APP: &str = "http://localhost:5001";
pub(crate) const INVENTORY_SIDECAR: &str = "http://localhost:3500";
pub(crate) const ORDER_APP: &str = "http://localhost:5002";
pub(crate) const ORDER_SIDECAR: &str = "http://localhost:3501";
pub(crate) const START: Duration = Duration::from_secs(90);

async fn answer(resp: reqwest::Result<reqwest::Response>) -> (u16, Value) {
    match resp {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap_or_default();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }
        Err(_) => (0, Value::Null),
    }
}

/// `GET url` → (status, JSON body); status 0 when nothing answered.
pub(crate) fn get_json(url: &str) -> (u16, Value) {
    get_json_with(url, None)
}

/// `GET url` with a `dapr-api-token` header when `token` is given.
pub(crate) fn get_json_with(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = CLIENT.get(url);
    if let Some(token) = token {
        request = request.header("dapr-api-token", token);
    }
    RT.block_on(async { answer(request.send().await).await })
}

/// `POST url` with a JSON body and a `dapr-api-token` header when `token` is given; the status
/// and the raw body.
pub(crate) fn post_with(url: &str, body: &Value, token: Option<&str>) -> (u16, String) {
    let mut request = CLIENT.post(url).json(body);
    if let Some(token) = token {
        request = request.header("dapr-api-token", token);
    }
    RT.block_on(async {
        match request.send().await {
            Ok(resp) => (
                resp.status().as_u16(),
                resp.text().await.unwrap_or_default(),
            ),
            Err(_) => (0, String::new()),
        }
    })
}

/// `POST url` with a JSON body → (status, JSON body).
pub(crate) fn post_json(url: &str, body: &Value) -> (u16, Value) {
    RT.block_on(async { answer(CLIENT.post(url).json(body).send().await).await })
}

/// Publishes `body` with `content_type` straight to `topic` through the sidecar at `sidecar`,
/// bypassing order-service's checks. Returns the sidecar's status.
pub(crate) fn publish_raw(sidecar: &str, topic: &str, content_type: &str, body: Vec<u8>) -> u16 {
    let url = format!("{sidecar}/v1.0/publish/pubsub/{topic}");
    RT.block_on(async {
        CLIENT
            .post(url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    })
}

/// Places `orders` through order-service's `POST /order`, `concurrency` at a time; returns the
/// status of each.
pub(crate) fn place_orders(orders: Vec<Value>, concurrency: usize) -> Vec<u16> {
    RT.block_on(async move {
        let permits = Arc::new(Semaphore::new(concurrency));
        let mut tasks = Vec::new();
        for order in orders {
            let permits = Arc::clone(&permits);
            tasks.push(tokio::spawn(async move {
                let _permit = permits.acquire().await.unwrap();
                let url = format!("{ORDER_APP}/order");
                answer(CLIENT.post(url).json(&order).send().await).await.0
            }));
        }
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        statuses
    })
}

pub(crate) fn order(order_id: &str, item_id: &str, quantity: u64) -> Value {
    json!({"orderId": order_id, "itemId": item_id, "quantity": quantity})
}

/// Current stock of `item`, read from inventory-service; `None` while it cannot answer.
pub(crate) fn stock(item: &str) -> Option<u64> {
    match get_json(&format!("{INVENTORY_APP}/inventory/{item}")) {
        (200, body) => body["quantity"].as_u64(),
        _ => None,
    }
}

pub(crate) fn set_stock(item: &str, quantity: u64) {
    let (status, body) = post_json(
        &format!("{INVENTORY_APP}/inventory/{item}"),
        &json!({"quantity": quantity}),
    );
    assert_eq!(status, 200, "{body}");
}

/// The recorded outcome of an order, or `None`.
pub(crate) fn outcome(item: &str, order_id: &str) -> Option<Value> {
    match get_json(&format!(
        "{INVENTORY_APP}/inventory/{item}/orders/{order_id}"
    )) {
        (200, body) => Some(body),
        _ => None,
    }
}

/// How many events inventory-service has recorded as dead-lettered.
pub(crate) fn dead_letter_count() -> Option<u64> {
    match get_json(&format!("{INVENTORY_APP}/deadletters")) {
        (200, body) => body["count"].as_u64(),
        _ => None,
    }
}

/// Waits until `stock(item)` is `want`; panics with what it was otherwise.
pub(crate) fn wait_for_stock(item: &str, want: u64, timeout: Duration, proc: &Proc) {
    let mut last = None;
    let reached = wait_until(timeout, || {
        last = stock(item);
        last == Some(want)
    });
    assert!(
        reached,
        "stock of {item} is {last:?}, expected {want}; inventory log:\n{}",
        proc.tail(40)
    );
}

/// Waits until the sidecar at `sidecar` reports its app subscribed to `topic`.
pub(crate) fn wait_for_subscription(sidecar: &str, topic: &str, proc: &Proc) {
    wait_for_subscription_with_token(sidecar, topic, proc, None);
}

/// [`wait_for_subscription`] against a sidecar that requires an API token.
pub(crate) fn wait_for_subscription_with_token(
    sidecar: &str,
    topic: &str,
    proc: &Proc,
    token: Option<&str>,
) {
    let subscribed = wait_until(START, || {
        let (_, meta) = get_json_with(&format!("{sidecar}/v1.0/metadata"), token);
        meta["subscriptions"]
            .as_array()
            .is_some_and(|subs| subs.iter().any(|s| s["topic"] == topic))
    });
    assert!(subscribed, "no subscription to {topic}:\n{}", proc.tail(40));
}

/// Starts inventory-service with the README's command (with `components` swapped for another
/// folder when given) and waits until it is subscribed.
pub(crate) fn start_inventory(env: &Env, name: &str, components: Option<&str>) -> Proc {
    start_inventory_with(env, name, components, &[])
}

/// [`start_inventory`] with extra environment variables for the app.
pub(crate) fn start_inventory_with(
    env: &Env,
    name: &str,
    components: Option<&str>,
    envs: &[(&str, &str)],
) -> Proc {
    let mut command = readme::command("pubsub-inventory-service");
    if let Some(dir) = components {
        assert!(command.contains("./components"));
        command = command.replace("./components", dir);
    }
    start_inventory_command(env, name, &command, envs)
}

/// The README's `dapr run … -- {app}` command `step`, with the app's own stdout also copied,
/// whole, to `file`. `dapr run` can lose the last lines of an app that exits or is killed: it
/// waits for the app in one goroutine while others read its output, and that wait closes the
/// pipe (Dapr CLI `cmd/run.go`; Go's `StdoutPipe` says not to wait before the reads are done).
/// `tee` reads to the end, so the file has every line the app wrote.
pub(crate) fn teed(step: &str, app: &str, file: &Path) -> String {
    let readme = readme::command(step);
    let dapr_run = readme.strip_suffix(app).unwrap_or_else(|| {
        panic!("the README's {step} command no longer ends with {app}: {readme}")
    });
    format!("{dapr_run}bash -c '{app} | tee {}'", file.display())
}

/// The lines of a file [`teed`] wrote (none if it is not there yet).
pub(crate) fn teed_lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// [`start_inventory`], with the app's own stdout also copied to the file returned ([`teed`]).
pub(crate) fn start_inventory_teed(env: &Env, name: &str) -> (Proc, PathBuf) {
    let file = env.logs.join(format!("{name}.stdout.log"));
    let command = teed(
        "pubsub-inventory-service",
        "cargo run -p inventory-service",
        &file,
    );
    (start_inventory_command(env, name, &command, &[]), file)
}

fn start_inventory_command(env: &Env, name: &str, command: &str, envs: &[(&str, &str)]) -> Proc {
    let proc = env.run(name, command, envs);
    wait_until_serving(&proc, 5001);
    wait_for_subscription(INVENTORY_SIDECAR, "OrderPlaced", &proc);
    wait_for_subscription(INVENTORY_SIDECAR, "OrderPlaced-deadletter", &proc);
    proc
}

/// Waits until `dapr run` reports both processes up and the app answers `GET /healthz` on
/// `port` (the CLI's banner can come before the app listens).
pub(crate) fn wait_until_serving(proc: &Proc, port: u16) {
    proc.wait_for("You're up and running!", START);
    let healthy = wait_until(START, || {
        assert!(!proc.has_exited(), "it exited:\n{}", proc.tail(40));
        get_json(&format!("http://localhost:{port}/healthz")).0 == 200
    });
    assert!(
        healthy,
        "nothing healthy on port {port}:\n{}",
        proc.tail(40)
    );
}

/// Starts order-service with the README's command.
pub(crate) fn start_order_service(env: &Env) -> Proc {
    let proc = env.run(
        "order-service",
        &readme::command("pubsub-order-service"),
        &[],
    );
    wait_until_serving(&proc, 5002);
    proc
}

/// Counts outcomes of `orders` for `item`: (applied, rejected, missing).
pub(crate) fn tally_outcomes(item: &str, order_ids: &[String]) -> (usize, usize, usize) {
    let (mut applied, mut rejected, mut missing) = (0, 0, 0);
    for id in order_ids {
        match outcome(item, id) {
            Some(o) if o["status"] == "applied" => applied += 1,
            Some(o) if o["status"] == "rejected" => rejected += 1,
            _ => missing += 1,
        }
    }
    (applied, rejected, missing)
}

/// The trace id logged on the line containing `needle`.
pub(crate) fn trace_id_of(proc: &Proc, needle: &str) -> String {
    trace_id_in(&proc.lines(), needle)
}

/// The trace id logged on the first of `lines` containing `needle`.
pub(crate) fn trace_id_in(lines: &[String], needle: &str) -> String {
    let line = lines
        .iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| {
            let start = lines.len().saturating_sub(30);
            panic!("no line with {needle:?}:\n{}", lines[start..].join("\n"))
        });
    let id = line
        .split("trace_id=")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_hexdigit)
                .collect::<String>()
        })
        .unwrap_or_default();
    assert_eq!(id.len(), 32, "no trace id in {line:?}");
    id
}
