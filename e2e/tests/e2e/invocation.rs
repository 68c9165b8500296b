//! Tutorial 1, service invocation: `checkout` calls `order-processor` through two sidecars.

use std::path::PathBuf;
use std::time::Duration;

use e2e::{Env, Proc, Signal, readme};

use crate::support::{START, teed, teed_lines, trace_id_in, trace_id_of, wait_until_serving};

/// Runs the README's checkout command with `envs`, checkout's own stdout also copied to the file
/// returned ([`teed`]): these tests read the lines it writes just before it exits, which
/// `dapr run` can drop.
fn start_checkout_teed(env: &Env, envs: &[(&str, &str)]) -> (Proc, PathBuf) {
    let stdout = env.logs.join("checkout.stdout.log");
    let command = teed("invoke-checkout", "cargo run -p checkout", &stdout);
    (env.run("checkout", &command, envs), stdout)
}

/// The order ids in lines like `Order passed: {"orderId":7}` or `Order received: { orderId: 7 }`.
fn order_ids(lines: &[String], marker: &str) -> Vec<u64> {
    lines
        .iter()
        .filter(|line| line.contains(marker))
        .map(|line| {
            let digits: String = line[line.find(marker).unwrap() + marker.len()..]
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().unwrap()
        })
        .collect()
}

/// Asserts that every log line `dapr run` printed for checkout is in what checkout wrote: the
/// file is its output, not something else. (Log lines start with their timestamp; cargo's
/// `Finished` and `Running` lines go to stderr, which is not teed.)
fn assert_printed_lines_written(checkout: &Proc, written: &[String]) {
    for printed in checkout.lines_containing("== APP == ") {
        let line = printed.split_once("== APP == ").map_or("", |(_, l)| l);
        if !line.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        assert!(
            written.iter().any(|w| w.trim_end() == line.trim_end()),
            "dapr run printed a line checkout's stdout does not have: {line:?}"
        );
    }
}

fn start_order_processor(env: &Env) -> Proc {
    let processor = env.run(
        "order-processor",
        &readme::command("invoke-order-processor"),
        &[],
    );
    wait_until_serving(&processor, 5001);
    processor
}

#[test]
fn one_round_passes_twenty_orders_that_order_processor_receives_in_order() {
    let env = Env::new("one_round_passes_twenty_orders");
    let processor = start_order_processor(&env);

    let (mut checkout, stdout) = start_checkout_teed(&env, &[("CHECKOUT_ROUNDS", "1")]);
    let status = checkout.wait_exit(START);
    let written = teed_lines(&stdout);
    assert_printed_lines_written(&checkout, &written);

    let expected: Vec<u64> = (1..=20).collect();
    assert_eq!(
        order_ids(&written, "Order passed:"),
        expected,
        "{}",
        checkout.tail(40)
    );
    assert_eq!(
        order_ids(&processor.lines(), "Order received:"),
        expected,
        "{}",
        processor.tail(40)
    );
    // The exact lines of the tutorial, whatever the log prefix and the trace id after them.
    assert!(
        checkout
            .lines()
            .iter()
            .any(|l| l.contains(r#"Order passed: {"orderId":1} "#))
    );
    assert!(
        processor
            .lines()
            .iter()
            .any(|l| l.contains("Order received: { orderId: 20 } "))
    );
    // Each order is one trace: checkout starts it, both sidecars carry it to order-processor.
    for id in [1, 20] {
        let sent = trace_id_in(&written, &format!(r#"Order passed: {{"orderId":{id}}}"#));
        let received = trace_id_of(&processor, &format!("Order received: {{ orderId: {id} }}"));
        assert_eq!(sent, received, "order {id}");
    }
    assert!(written.iter().all(|l| !l.contains("Order failed")));
    assert!(
        status.is_some(),
        "checkout did not exit after one round:\n{}",
        checkout.tail(20)
    );
    checkout.wait_for("Exited App successfully", Duration::from_secs(10));

    // The Dapr CLI as a client, as the README shows it.
    let printed = e2e::shell_output(&readme::command("invoke-cli-order"));
    readme::matches_output("invoke-cli-order", &printed).unwrap();
    processor.wait_for("Order received: { orderId: 42 }", Duration::from_secs(10));
    let (ok, _, stderr) = e2e::shell_run(&readme::command("invoke-cli-refused"));
    assert!(!ok, "{stderr}");
    readme::matches_output("invoke-cli-refused", &stderr).unwrap();
    processor.wait_for(
        r#"WARN Order refused: orderId must be a positive integer, got the string "5""#,
        Duration::from_secs(10),
    );
}

#[test]
fn checkout_keeps_going_while_order_processor_is_down_and_recovers_when_it_is_back() {
    let env = Env::new("checkout_recovers");
    let (mut checkout, stdout) = start_checkout_teed(
        &env,
        &[
            ("CHECKOUT_INTERVAL_MS", "200"),
            ("CHECKOUT_PAUSE_MS", "200"),
            ("CHECKOUT_TARGET_READY_TIMEOUT", "3"),
        ],
    );

    // checkout waits for order-processor first, and gives up on that wait after the timeout.
    checkout.wait_for(
        "order-processor did not answer through Dapr within 3s",
        START,
    );
    // Nothing to call yet: every order fails, is logged with what came back, and the loop goes on.
    checkout.wait_for_count("Order failed", 3, START);
    assert!(checkout.lines_containing("Order passed").is_empty());
    let failure = &checkout.lines_containing("Order failed")[0];
    assert!(failure.contains("answered 500"), "{failure}");
    assert!(failure.contains("ERR_DIRECT_INVOKE"), "{failure}");

    let processor = start_order_processor(&env);
    checkout.wait_for_count("Order passed", 3, START);

    // Orders that passed reached order-processor; the loop continued where it was.
    let checkout_lines = checkout.lines();
    let passed = order_ids(&checkout_lines, "Order passed:");
    let received = order_ids(&processor.lines(), "Order received:");
    assert!(
        passed.iter().all(|id| received.contains(id)),
        "{passed:?} vs {received:?}"
    );
    let failed_first = order_ids(&checkout_lines, "Order failed:")[0];
    assert_eq!(failed_first, 1);

    // SIGTERM to the app alone, as Container Apps, Kubernetes and Docker send it, stops the loop
    // between two calls; the Dapr CLI then sees the app exit and stops the sidecar. (Ctrl-C on
    // `dapr run` signals the whole group, and the CLI kills the app outright.)
    // What checkout logs on its way out is read from its own stdout.
    assert_eq!(checkout.signal_member("checkout", Signal::SIGTERM), 1);
    checkout.wait_for("Exited App successfully", Duration::from_secs(10));
    assert!(
        checkout.wait_exit(Duration::from_secs(20)).is_some(),
        "{}",
        checkout.tail(20)
    );
    let written = teed_lines(&stdout);
    assert_printed_lines_written(&checkout, &written);
    let sigterm = written.iter().position(|l| l.contains("received SIGTERM"));
    let stopped = written.iter().position(|l| l.contains("stopped=true"));
    assert!(
        matches!((sigterm, stopped), (Some(a), Some(b)) if a < b),
        "checkout did not log the SIGTERM and then its stop:\n{}",
        written.join("\n")
    );
}
