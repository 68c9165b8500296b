//! Tutorial 2, pub/sub and state: `order-service` publishes `OrderPlaced` through Redis Streams,
//! `inventory-service` applies it to stock in the Redis state store, all through real sidecars.
//! Each fault scenario records its numbers with `record_scenario`.

use std::collections::HashSet;
use std::time::Duration;

use e2e::{Env, Redis, Signal, components_with, readme, record_scenario, shell_output, wait_until};
use serde_json::json;

use crate::support::*;

#[test]
fn the_tutorial_flow_sets_100_orders_10_and_leaves_90() {
    let env = Env::new("pubsub_tutorial");
    let inventory = start_inventory(&env, "inventory-service", None);
    let _orders = start_order_service(&env);

    // The stock each step must leave, from the quantities in the README's commands, not from
    // the outputs the README shows (those are checked separately, against the same numbers).
    let mut expected = readme_order("pubsub-set-stock").quantity;
    for step in ["pubsub-set-stock", "pubsub-place-order"] {
        let printed = shell_output(&readme::command(step));
        readme::matches_output(step, &printed).unwrap();
    }
    let placed = readme_order("pubsub-place-order");
    expected -= placed.quantity;
    inventory.wait_for(&placed.processed_line(expected), Duration::from_secs(30));
    for step in ["pubsub-get-stock", "pubsub-get-outcome"] {
        let printed = shell_output(&readme::command(step));
        readme::matches_output(step, &printed).unwrap();
    }

    // The Dapr CLI as a publisher: the tutorial's event, a duplicate, a numeric order id, a
    // malformed event and a raw message that is not a CloudEvent, as the README shows them.
    let publish = |step: &str| {
        let printed = shell_output(&readme::command(step));
        readme::matches_output("pubsub-cli-publish", &printed).unwrap();
    };
    publish("pubsub-cli-publish");
    let published = readme_order("pubsub-cli-publish");
    expected -= published.quantity;
    inventory.wait_for(&published.processed_line(expected), Duration::from_secs(30));
    // The same order again: skipped, so the stock stays.
    publish("pubsub-cli-publish-duplicate");
    let duplicate = readme_order("pubsub-cli-publish-duplicate");
    assert_eq!(duplicate.order_id, published.order_id);
    inventory.wait_for(
        &format!(
            "Skipped duplicate OrderPlaced event. orderId={}, itemId={}, already applied",
            duplicate.order_id, duplicate.item_id
        ),
        Duration::from_secs(30),
    );
    publish("pubsub-cli-publish-numeric");
    let numeric = readme_order("pubsub-cli-publish-numeric");
    expected -= numeric.quantity;
    inventory.wait_for(&numeric.processed_line(expected), Duration::from_secs(30));
    let printed = shell_output(&readme::command("pubsub-get-numeric-outcome"));
    readme::matches_output("pubsub-get-numeric-outcome", &printed).unwrap();
    publish("pubsub-cli-publish-malformed");
    let recorded = wait_until(Duration::from_secs(30), || dead_letter_count() == Some(1));
    assert!(
        recorded,
        "{:?}\n{}",
        dead_letter_count(),
        inventory.tail(30)
    );
    publish("pubsub-cli-publish-raw");
    let recorded = wait_until(Duration::from_secs(30), || dead_letter_count() == Some(2));
    assert!(
        recorded,
        "the raw message was not recorded: {:?}\n{}",
        dead_letter_count(),
        inventory.tail(30)
    );
    let printed = shell_output(&readme::command("pubsub-get-deadletters"));
    readme::matches_output("pubsub-get-deadletters", &printed).unwrap();
    let printed = shell_output(&readme::command("pubsub-cli-get-stock"));
    readme::matches_output("pubsub-cli-get-stock", &printed).unwrap();
    // The malformed and the raw message changed nothing.
    assert_eq!(stock(&placed.item_id), Some(expected));
}

/// The order (or the stock) in a README command's JSON body (`-d '...'` or `--data '...'`).
struct ReadmeOrder {
    order_id: String,
    item_id: String,
    quantity: u64,
}

impl ReadmeOrder {
    /// The line inventory-service logs when it applies this order and leaves `remaining`.
    fn processed_line(&self, remaining: u64) -> String {
        format!(
            "Processed OrderPlaced event. orderId={}, itemId={}, ordered={}, remaining={remaining}",
            self.order_id, self.item_id, self.quantity
        )
    }
}

fn readme_order(step: &str) -> ReadmeOrder {
    let command = readme::command(step);
    let body = ["-d '", "--data '"]
        .iter()
        .find_map(|flag| command.split_once(flag))
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(body, _)| body)
        .unwrap_or_else(|| panic!("{step}: no JSON body in `{command}`"));
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{step}: {e}: {body}"));
    let text = |field: &str| match &value[field] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    ReadmeOrder {
        order_id: text("orderId"),
        item_id: text("itemId"),
        quantity: value["quantity"]
            .as_u64()
            .unwrap_or_else(|| panic!("{step}: no quantity in {body}")),
    }
}

#[test]
fn a_thousand_concurrent_orders_for_one_item_leave_the_stock_exact() {
    let env = Env::new("pubsub_concurrent");
    let inventory = start_inventory(&env, "inventory-service", None);
    let _orders = start_order_service(&env);
    let initial = 10_000;
    set_stock("hot", initial);

    let orders: Vec<_> = (1..=1000u64)
        .map(|i| order(&format!("c-{i}"), "hot", i % 5 + 1))
        .collect();
    let total = ordered_quantity(&orders);
    let statuses = place_orders(orders, 100);

    assert!(
        statuses.iter().all(|s| *s == 200),
        "{:?}",
        e2e::tally(statuses)
    );
    wait_for_stock("hot", initial - total, Duration::from_secs(180), &inventory);
    let ids: Vec<String> = (1..=1000).map(|i| format!("c-{i}")).collect();
    let (applied, rejected, missing) = tally_outcomes("hot", &ids);
    assert_eq!((applied, rejected, missing), (1000, 0, 0));
    // Nothing more arrives later and changes it.
    std::thread::sleep(Duration::from_secs(2));
    let measured = stock("hot");
    assert_eq!(measured, Some(initial - total));
    assert_eq!(
        inventory
            .lines_containing("Processed OrderPlaced event. orderId=c-")
            .len(),
        1000
    );
    record_scenario(&format!(
        "concurrent: sent=1000 (100 in flight) applied={applied} rejected={rejected} dead-lettered=0 \
         stock {initial} -> {measured:?} (expected {})",
        initial - total
    ));
}

#[test]
fn one_event_per_delivery_orders_that_wait_for_their_item_are_applied_together_once() {
    let env = Env::new("pubsub_one_at_a_time");
    // One event per delivery on POST /orders, up to the component's `concurrency` at once: the
    // deliveries of the one item wait for each other and are written together.
    let inventory = start_inventory_with(
        &env,
        "inventory-service",
        None,
        &[
            ("BULK_SUBSCRIBE", "false"),
            ("RUST_LOG", "info,inventory_service=debug"),
        ],
    );
    let _orders = start_order_service(&env);
    let initial = 10_000;
    set_stock("waiting", initial);

    // Every order twice, the copies racing each other.
    let count = 500u64;
    let mut orders = Vec::new();
    for i in 1..=count {
        let o = order(&format!("w-{i}"), "waiting", i % 5 + 1);
        orders.push(o.clone());
        orders.push(o);
    }
    let total = ordered_quantity(&orders) / 2;
    let statuses = place_orders(orders, 100);

    assert!(
        statuses.iter().all(|s| *s == 200),
        "{:?}",
        e2e::tally(statuses)
    );
    let expected = initial - total;
    wait_for_stock("waiting", expected, Duration::from_secs(180), &inventory);
    inventory.wait_for_count(
        "Skipped duplicate OrderPlaced event",
        count as usize,
        Duration::from_secs(60),
    );
    std::thread::sleep(Duration::from_secs(2));
    let measured = stock("waiting");
    assert_eq!(measured, Some(expected));
    let ids: Vec<String> = (1..=count).map(|i| format!("w-{i}")).collect();
    let (applied, rejected, missing) = tally_outcomes("waiting", &ids);
    assert_eq!((applied, rejected, missing), (count as usize, 0, 0));
    assert_eq!(processed_ids(&inventory).len(), count as usize);
    let processed = inventory
        .lines_containing("Processed OrderPlaced event. orderId=w-")
        .len();
    assert_eq!(processed, count as usize, "an order was applied twice");
    let skipped = inventory
        .lines_containing("Skipped duplicate OrderPlaced event")
        .len();
    assert_eq!(skipped, count as usize);
    // Without deliveries that waited for each other, the exact stock proves nothing about them.
    let together = inventory.lines_containing("applying orders that waited for the item together");
    assert!(
        !together.is_empty(),
        "no deliveries waited for the item, so applying them together was not exercised"
    );
    record_scenario(&format!(
        "one event per delivery (BULK_SUBSCRIBE=false): sent={} ({count} orders, each twice; 100 in \
         flight) applied={applied} skipped-as-duplicate={skipped} rejected=0 dead-lettered=0; \
         {} writes applied orders that had waited together; stock {initial} -> {measured:?} \
         (expected {expected})",
        2 * count,
        together.len()
    ));
}

#[test]
fn every_order_published_twice_is_applied_once() {
    let env = Env::new("pubsub_duplicates");
    let inventory = start_inventory(&env, "inventory-service", None);
    let _orders = start_order_service(&env);
    let initial = 1_000;
    set_stock("dup", initial);

    // Every order through order-service twice, the copies racing each other.
    let mut orders = Vec::new();
    for i in 1..=100u64 {
        orders.push(order(&format!("d-{i}"), "dup", 2));
        orders.push(order(&format!("d-{i}"), "dup", 2));
    }
    let statuses = place_orders(orders, 20);
    assert!(statuses.iter().all(|s| *s == 200));
    // And one CloudEvent delivered twice with the same id, as a broker redelivery does.
    let event = json!({
        "specversion": "1.0", "id": "redelivered-1", "source": "test", "type": "com.dapr.event.sent",
        "datacontenttype": "application/json", "data": order("d-ce", "dup", 5),
    });
    for _ in 0..2 {
        let status = publish_raw(
            ORDER_SIDECAR,
            "OrderPlaced",
            "application/cloudevents+json",
            event.to_string().into_bytes(),
        );
        assert_eq!(status, 204);
    }

    let expected = initial - 100 * 2 - 5;
    wait_for_stock("dup", expected, Duration::from_secs(60), &inventory);
    inventory.wait_for_count(
        "Skipped duplicate OrderPlaced event",
        101,
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stock("dup"), Some(expected));
    let mut ids: Vec<String> = (1..=100).map(|i| format!("d-{i}")).collect();
    ids.push("d-ce".to_owned());
    let (applied, rejected, missing) = tally_outcomes("dup", &ids);
    assert_eq!((applied, rejected, missing), (101, 0, 0));
    let skipped = inventory
        .lines_containing("Skipped duplicate OrderPlaced event")
        .len();
    record_scenario(&format!(
        "duplicates: sent=202 (101 orders, each twice) applied={applied} skipped-as-duplicate={skipped} \
         rejected=0 dead-lettered=0 stock {initial} -> {expected}"
    ));
}

#[test]
fn orders_beyond_the_stock_are_rejected_recorded_and_never_take_it_below_zero() {
    let env = Env::new("pubsub_over_stock");
    let inventory = start_inventory(&env, "inventory-service", None);
    let _orders = start_order_service(&env);
    set_stock("scarce", 25);

    let orders: Vec<_> = (1..=20)
        .map(|i| order(&format!("s-{i}"), "scarce", 3))
        .collect();
    assert!(place_orders(orders, 20).iter().all(|s| *s == 200));

    let ids: Vec<String> = (1..=20).map(|i| format!("s-{i}")).collect();
    let decided = wait_until(Duration::from_secs(60), || {
        tally_outcomes("scarce", &ids).2 == 0
    });
    assert!(decided, "{}", inventory.tail(30));
    let (applied, rejected, _) = tally_outcomes("scarce", &ids);
    assert_eq!((applied, rejected), (8, 12));
    assert_eq!(stock("scarce"), Some(1));
    let mut remaining: Vec<u64> = Vec::new();
    for id in &ids {
        let o = outcome("scarce", id).unwrap();
        if o["status"] == "applied" {
            remaining.push(o["remaining"].as_u64().unwrap());
        } else {
            assert!(
                o["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("insufficient stock: ordered 3, available"),
                "{o}"
            );
        }
    }
    remaining.sort_unstable();
    assert_eq!(
        remaining,
        [1, 4, 7, 10, 13, 16, 19, 22],
        "each applied order left a distinct stock"
    );
    record_scenario(&format!(
        "over stock: sent=20 x 3 against stock 25: applied={applied} rejected={rejected} (recorded with reason) \
         dead-lettered=0 stock 25 -> 1"
    ));
}

#[test]
fn malformed_events_are_dead_lettered_recorded_and_change_nothing() {
    let env = Env::new("pubsub_malformed");
    let inventory = start_inventory(&env, "inventory-service", None);
    let _orders = start_order_service(&env);
    set_stock("m1", 50);

    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("text/plain", b"garbage".to_vec()),
        ("application/json", b"{not json".to_vec()),
        (
            "application/json",
            br#"{"orderId":"x1","itemId":"m1"}"#.to_vec(),
        ),
        (
            "application/json",
            br#"{"orderId":"x2","itemId":"m1","quantity":-5}"#.to_vec(),
        ),
        (
            "application/json",
            br#"{"orderId":"x3","itemId":"m1","quantity":1000000}"#.to_vec(),
        ),
        (
            "application/json",
            br#"{"orderId":"x4","itemId":"m 1!","quantity":1}"#.to_vec(),
        ),
        ("application/octet-stream", vec![0, 159, 146, 150]),
    ];
    let sent = bad.len() as u64;
    for (content_type, body) in bad {
        assert_eq!(
            publish_raw(ORDER_SIDECAR, "OrderPlaced", content_type, body),
            204
        );
    }

    let recorded = wait_until(Duration::from_secs(60), || {
        dead_letter_count() == Some(sent)
    });
    assert!(
        recorded,
        "dead letters: {:?}\n{}",
        dead_letter_count(),
        inventory.tail(40)
    );
    assert_eq!(
        inventory
            .lines_containing("Dropping malformed OrderPlaced event")
            .len() as u64,
        sent
    );
    assert_eq!(stock("m1"), Some(50));
    assert_eq!(get_json(&format!("{INVENTORY_APP}/healthz")).0, 200);
    let (_, letters) = get_json(&format!("{INVENTORY_APP}/deadletters"));
    let reasons: HashSet<String> = letters["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        reasons.contains("invalid OrderPlaced event: quantity is required"),
        "{reasons:?}"
    );
    assert!(
        reasons.contains("the event's data is text, not a JSON object"),
        "{reasons:?}"
    );

    // The service still works.
    assert_eq!(place_orders(vec![order("ok-1", "m1", 5)], 1), [200]);
    wait_for_stock("m1", 45, Duration::from_secs(30), &inventory);
    record_scenario(&format!(
        "malformed: sent={sent} malformed + 1 valid: applied=1 rejected=0 dead-lettered={sent} \
         (recorded, GET /deadletters) stock 50 -> 45"
    ));
}

#[test]
fn inventory_killed_mid_stream_and_restarted_applies_every_order_exactly_once() {
    let env = Env::new("pubsub_sigkill");
    // What the killed app wrote is read from its own stdout: `dapr run` can drop its last lines.
    let (mut inventory, inventory_stdout) = start_inventory_teed(&env, "inventory-service");
    let _orders = start_order_service(&env);
    let initial = 100_000;
    set_stock("k1", initial);

    let count = 400u64;
    let total: u64 = (1..=count).map(|i| i % 3 + 1).sum();
    let publisher = std::thread::spawn(move || {
        let mut statuses = Vec::new();
        for chunk in (1..=count).collect::<Vec<_>>().chunks(20) {
            let orders = chunk
                .iter()
                .map(|i| order(&format!("k-{i}"), "k1", i % 3 + 1))
                .collect();
            statuses.extend(place_orders(orders, 20));
            std::thread::sleep(Duration::from_millis(100));
        }
        statuses
    });

    inventory.wait_for_count("Processed OrderPlaced event. orderId=k-", 50, START);
    assert_eq!(
        inventory.signal_member("inventory-service", Signal::SIGKILL),
        1
    );
    assert!(
        inventory.wait_exit(Duration::from_secs(30)).is_some(),
        "{}",
        inventory.tail(20)
    );
    let written = std::fs::read_to_string(&inventory_stdout).unwrap();
    let before_kill = order_ids_on(written.lines(), "Processed OrderPlaced event.");
    let printed = processed_ids(&inventory);
    assert!(
        printed.is_subset(&before_kill),
        "dapr run printed orders the app's stdout does not have: {:?}",
        printed.difference(&before_kill).collect::<Vec<_>>()
    );

    let restarted = start_inventory(&env, "inventory-service-restarted", None);
    let statuses = publisher.join().unwrap();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "{:?}",
        e2e::tally(statuses)
    );
    wait_for_stock("k1", initial - total, Duration::from_secs(180), &restarted);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(stock("k1"), Some(initial - total));

    let ids: Vec<String> = (1..=count).map(|i| format!("k-{i}")).collect();
    let (applied, rejected, missing) = tally_outcomes("k1", &ids);
    assert_eq!((applied, rejected, missing), (count as usize, 0, 0));
    // A line is written before its order is answered, so an acknowledged order is in the first
    // instance's stdout. One applied and then killed before its line was written was not
    // answered: Redis redelivers it once it has been pending for processingTimeout (15 s in
    // components/pubsub.yaml, checked every redeliverInterval, 5 s), after the stock is already
    // exact, and the restarted service logs it as a duplicate. So every order is in one log or
    // the other within about 20 s of the kill.
    let unlogged = || -> Vec<&String> {
        let after_restart = processed_ids(&restarted);
        let skipped = logged_order_ids(&restarted, "Skipped duplicate OrderPlaced event.");
        ids.iter()
            .filter(|id| {
                !(before_kill.contains(*id) || after_restart.contains(*id) || skipped.contains(*id))
            })
            .collect()
    };
    let all_logged = wait_until(Duration::from_secs(60), || unlogged().is_empty());
    assert!(all_logged, "in no log: {:?}", unlogged());
    let after_restart = processed_ids(&restarted);
    assert!(
        before_kill.is_disjoint(&after_restart),
        "an order was applied twice"
    );
    assert_eq!(stock("k1"), Some(initial - total));
    assert_eq!(
        dead_letter_count(),
        Some(0),
        "a valid order was dead-lettered"
    );
    // Events delivered before the kill but never acknowledged come back through Redis's
    // pending list: orders older than the newest one applied before the kill.
    let newest_before = before_kill
        .iter()
        .filter_map(|id| order_number(id))
        .max()
        .unwrap_or(0);
    let in_flight = after_restart
        .iter()
        .filter(|id| order_number(id).is_some_and(|n| n < newest_before))
        .count();
    let skipped = restarted
        .lines_containing("Skipped duplicate OrderPlaced event")
        .len();
    record_scenario(&format!(
        "SIGKILL: sent={count} applied={applied} (before kill {}, {} of them printed by dapr \
         run; after restart {}, of which {in_flight} were in flight at the kill and redelivered) \
         duplicates-skipped={skipped} rejected=0 dead-lettered=0 stock {initial} -> {}",
        before_kill.len(),
        printed.len(),
        after_restart.len(),
        initial - total
    ));
}

#[test]
fn while_the_state_store_is_down_deliveries_are_retried_and_applied_once_it_is_back() {
    let env = Env::new("pubsub_store_down");
    // Pub/sub stays on the usual Redis; the state store gets a Redis of its own that can fail.
    let mut state = Redis::start_on(&env.logs, 6380, true);
    let components = components_with(|name, text| {
        if name == "statestore.yaml" {
            text.replace("localhost:6379", "localhost:6380")
        } else {
            text
        }
    });
    let inventory = start_inventory(
        &env,
        "inventory-service",
        Some(&components.path().display().to_string()),
    );
    let _orders = start_order_service(&env);
    set_stock("t1", 100);

    state.stop();
    let orders: Vec<_> = (1..=10)
        .map(|i| order(&format!("t-{i}"), "t1", 1))
        .collect();
    assert!(place_orders(orders, 10).iter().all(|s| *s == 200));
    inventory.wait_for_count("Dapr will retry it", 10, Duration::from_secs(60));
    assert_eq!(
        stock("t1"),
        None,
        "the store is down, so stock cannot be read"
    );

    state.start_again();
    wait_for_stock("t1", 90, Duration::from_secs(120), &inventory);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stock("t1"), Some(90));
    let ids: Vec<String> = (1..=10).map(|i| format!("t-{i}")).collect();
    assert_eq!(tally_outcomes("t1", &ids), (10, 0, 0));
    assert_eq!(dead_letter_count(), Some(0));
    let retries = inventory.lines_containing("Dapr will retry it").len();
    record_scenario(&format!(
        "state store down: sent=10 answered RETRY {retries} times while down; applied=10 rejected=0 \
         dead-lettered=0 stock 100 -> 90"
    ));
}

#[test]
fn two_replicas_sharing_the_stream_and_the_store_never_lose_an_update() {
    let env = Env::new("pubsub_two_replicas");
    // Both replicas have the app id inventory-service: one Redis consumer group splits the
    // events between them, and they write the same keys, so their writes really conflict.
    let debug = [("RUST_LOG", "info,inventory_service=debug")];
    let first = start_inventory_with(&env, "inventory-a", None, &debug);
    let second_command = readme::command("pubsub-inventory-service")
        .replace("--app-port 5001", "--app-port 5004")
        .replace("--dapr-http-port 3500", "--dapr-http-port 3504");
    let second = env.run("inventory-b", &second_command, &debug);
    wait_until_serving(&second, 5004);
    wait_for_subscription("http://localhost:3504", "OrderPlaced", &second);
    let _orders = start_order_service(&env);
    let initial = 10_000;
    set_stock("shared", initial);

    let count = 600u64;
    let orders: Vec<_> = (1..=count)
        .map(|i| order(&format!("r-{i}"), "shared", i % 3 + 1))
        .collect();
    let total = ordered_quantity(&orders);
    assert!(place_orders(orders, 100).iter().all(|s| *s == 200));

    wait_for_stock("shared", initial - total, Duration::from_secs(180), &first);
    std::thread::sleep(Duration::from_secs(2));
    let measured = stock("shared");
    assert_eq!(measured, Some(initial - total));
    let (a, b) = (processed_ids(&first), processed_ids(&second));
    assert!(a.is_disjoint(&b), "an order was applied by both replicas");
    assert_eq!(a.len() + b.len(), count as usize);
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both replicas took events: {} / {}",
        a.len(),
        b.len()
    );
    // Each replica serializes its own writes to an item, so a conflict is the two replicas
    // racing on the same ETag: without one, the exact stock above proves nothing about the race.
    let (conflicts_a, conflicts_b) = (
        first.lines_containing("write conflict").len(),
        second.lines_containing("write conflict").len(),
    );
    let conflicts = conflicts_a + conflicts_b;
    assert!(
        conflicts > 0,
        "no ETag conflict between the replicas (A applied {}, B {}), so the race was not exercised",
        a.len(),
        b.len()
    );
    record_scenario(&format!(
        "two replicas: sent={count} applied={} (replica A {}, replica B {}) ETag conflicts retried={conflicts} \
         (A {conflicts_a}, B {conflicts_b}) rejected=0 dead-lettered=0 stock {initial} -> {measured:?} (expected {})",
        a.len() + b.len(),
        a.len(),
        b.len(),
        initial - total
    ));
}

#[test]
fn a_batch_mixing_new_duplicate_over_stock_malformed_and_failed_entries_decides_each_once() {
    let env = Env::new("pubsub_bulk_mixed");
    // As in the state-store-down scenario: a Redis of its own for the state store, which fails
    // while the events pile up, so that they come back in full, mixed batches.
    let mut state = Redis::start_on(&env.logs, 6380, true);
    let components = components_with(|name, text| {
        if name == "statestore.yaml" {
            text.replace("localhost:6379", "localhost:6380")
        } else {
            text
        }
    });
    let debug = [("RUST_LOG", "info,inventory_service=debug")];
    let inventory = start_inventory_with(
        &env,
        "inventory-service",
        Some(&components.path().display().to_string()),
        &debug,
    );
    let _orders = start_order_service(&env);
    set_stock("mix-a", 100);
    set_stock("mix-b", 100);
    set_stock("mix-scarce", 10);

    state.stop();
    // 30 orders of 1 for mix-a, the first 10 of them twice; 30 of 2 for mix-b; 8 of 3 for
    // mix-scarce, which has stock for 3 of them; all at once.
    let mut orders = Vec::new();
    for i in 1..=30u64 {
        orders.push(order(&format!("ma-{i}"), "mix-a", 1));
        orders.push(order(&format!("mb-{i}"), "mix-b", 2));
        if i <= 10 {
            orders.push(order(&format!("ma-{i}"), "mix-a", 1));
        }
        if i <= 8 {
            orders.push(order(&format!("ms-{i}"), "mix-scarce", 3));
        }
    }
    let sent = orders.len();
    assert!(place_orders(orders, 50).iter().all(|s| *s == 200));
    let malformed: Vec<Vec<u8>> = vec![
        br#"{"orderId":"mx-1","itemId":"mix-a"}"#.to_vec(),
        br#"{"orderId":"mx-2","itemId":"mix-b","quantity":-5}"#.to_vec(),
        br#"{"orderId":"mx-3","itemId":"m 1!","quantity":1}"#.to_vec(),
    ];
    for body in &malformed {
        assert_eq!(
            publish_raw(
                ORDER_SIDECAR,
                "OrderPlaced",
                "application/json",
                body.clone()
            ),
            204
        );
    }
    // Nothing can be decided while the store is down. Dapr delivers one batch at a time and
    // retries it with backoff, so the rest pile up behind it and come in full batches later.
    inventory.wait_for_count("Dapr will retry it", 2, Duration::from_secs(60));
    assert_eq!(
        inventory
            .lines_containing("Processed OrderPlaced event")
            .len(),
        0
    );
    state.start_again();

    wait_for_stock("mix-a", 70, Duration::from_secs(120), &inventory);
    wait_for_stock("mix-b", 40, Duration::from_secs(120), &inventory);
    let scarce: Vec<String> = (1..=8).map(|i| format!("ms-{i}")).collect();
    let decided = wait_until(Duration::from_secs(60), || {
        tally_outcomes("mix-scarce", &scarce).2 == 0
    });
    assert!(decided, "{}", inventory.tail(40));
    let recorded = wait_until(Duration::from_secs(60), || {
        dead_letter_count() == Some(malformed.len() as u64)
    });
    assert!(
        recorded,
        "{:?}\n{}",
        dead_letter_count(),
        inventory.tail(40)
    );
    std::thread::sleep(Duration::from_secs(2));

    assert_eq!(stock("mix-a"), Some(70));
    assert_eq!(stock("mix-b"), Some(40));
    assert_eq!(stock("mix-scarce"), Some(1));
    assert_eq!(tally_outcomes("mix-scarce", &scarce), (3, 5, 0));
    assert_eq!(dead_letter_count(), Some(malformed.len() as u64));
    // Every order applied once, by exactly one log line; every copy of ma-1..ma-10 skipped.
    let processed = inventory.lines_containing("Processed OrderPlaced event. orderId=");
    assert_eq!(processed.len(), 30 + 30 + 3, "{}", inventory.tail(40));
    assert_eq!(processed_ids(&inventory).len(), processed.len());
    let skipped = logged_order_ids(&inventory, "Skipped duplicate OrderPlaced event.");
    for i in 1..=10 {
        assert!(skipped.contains(&format!("ma-{i}")), "{skipped:?}");
    }
    // Each malformed event was dropped (a redelivered one is dropped again, but recorded once:
    // the dead-letter count above).
    assert!(
        inventory
            .lines_containing("Dropping malformed OrderPlaced event")
            .len()
            >= malformed.len()
    );
    // The batches really mixed: one held orders of more than one item and a malformed event.
    let batches = inventory.lines_containing("Bulk OrderPlaced delivery");
    let field = |line: &str, name: &str| -> u64 {
        line.split(&format!("{name}="))
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let largest = batches
        .iter()
        .map(|l| field(l, "entries"))
        .max()
        .unwrap_or(0);
    assert!(
        batches
            .iter()
            .any(|l| field(l, "items") > 1 && field(l, "malformed") > 0),
        "no batch mixed items and malformed events: {batches:?}"
    );
    let retries = inventory.lines_containing("Dapr will retry it").len();
    record_scenario(&format!(
        "mixed batches: sent={sent} orders (10 of them twice) + {} malformed while the state store \
         was down: {} deliveries, largest {largest} entries, RETRY answered {retries} times; \
         applied={} skipped-as-duplicate={} rejected=5 dead-lettered={} stock mix-a 100 -> 70, \
         mix-b 100 -> 40, mix-scarce 10 -> 1",
        malformed.len(),
        batches.len(),
        processed.len(),
        skipped.len(),
        malformed.len()
    ));
}

/// The quantities of `orders` added up: the stock they must take, whatever happens on the way.
fn ordered_quantity(orders: &[serde_json::Value]) -> u64 {
    orders
        .iter()
        .map(|o| o["quantity"].as_u64().expect("every order has a quantity"))
        .sum()
}

fn order_number(id: &str) -> Option<u64> {
    id.rsplit('-').next()?.parse().ok()
}

/// The order ids a process logged as processed.
fn processed_ids(proc: &e2e::Proc) -> HashSet<String> {
    logged_order_ids(proc, "Processed OrderPlaced event.")
}

/// The order ids on the lines a process logged with `message`.
fn logged_order_ids(proc: &e2e::Proc, message: &str) -> HashSet<String> {
    order_ids_on(proc.lines().iter().map(String::as_str), message)
}

/// The order ids on those of `lines` that carry `message`.
fn order_ids_on<'a>(lines: impl Iterator<Item = &'a str>, message: &str) -> HashSet<String> {
    let needle = format!("{message} orderId=");
    lines
        .filter(|l| l.contains(&needle))
        .filter_map(|l| {
            l.split("orderId=")
                .nth(1)?
                .split(',')
                .next()
                .map(str::to_owned)
        })
        .collect()
}
