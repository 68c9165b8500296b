//! All four services the way the README runs them: the one run command, the README's `curl`
//! commands compared with the answers it shows, API tokens on, and stopping cleanly.

use std::time::Duration;

use e2e::{
    Env, Proc, Signal, log_dir, port_is_free, readme, repo_root, require_tools, serial,
    shell_output, shell_output_with, wait_until,
};
use serde_json::json;

use crate::support::*;
use crate::zipkin::{Span, Trace};

pub(crate) const APP_PORTS: [u16; 4] = [5000, 5001, 5002, 5003];
pub(crate) const SIDECAR_PORTS: [u16; 4] = [3500, 3501, 3502, 3503];
/// Zipkin, which scripts/run.sh starts.
const ZIPKIN_PORT: u16 = 9411;

/// Waits until all four apps answer their health check, all four sidecars are ready, and
/// inventory-service is subscribed.
pub(crate) fn wait_for_system(run: &Proc, token: Option<&str>) {
    for port in APP_PORTS {
        let up = wait_until(START, || {
            assert!(
                !run.has_exited(),
                "the run command exited:\n{}",
                run.tail(60)
            );
            get_json(&format!("http://localhost:{port}/healthz")).0 == 200
        });
        assert!(up, "nothing healthy on port {port}:\n{}", run.tail(60));
    }
    for (port, service) in SIDECAR_PORTS.into_iter().zip(e2e::SERVICES) {
        let ready = wait_until(START, || {
            get_json(&format!("http://localhost:{port}/v1.0/healthz")).0 == 204
        });
        assert!(
            ready,
            "{service}'s sidecar on {port} not ready:\n{}\n{}",
            sidecar_report(port, service),
            run.tail(60)
        );
    }
    wait_for_subscription_with_token("http://localhost:3503", "OrderPlaced", run, token);
    // The CLI's start-up is over only after it has recorded its metadata with the last sidecar;
    // a signal before that leaves it retrying for a minute (a Dapr CLI 1.16 race).
    run.wait_for(r#"Started Dapr with app id "inventory-service""#, START);
}

/// What a sidecar that never became ready says of itself: its health answer, which names the
/// parts not ready yet, and the end of the log file `dapr run` writes for it (dapr.yaml sends
/// sidecar logs to `<service>/.dapr/logs/`, where a CI run's failure message is all that is
/// left of them).
fn sidecar_report(port: u16, service: &str) -> String {
    let (status, body) = get_json(&format!("http://localhost:{port}/v1.0/healthz"));
    let logs = repo_root().join(service).join(".dapr/logs");
    let newest = std::fs::read_dir(&logs)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().contains("_daprd_"))
        .max_by_key(|path| path.metadata().and_then(|m| m.modified()).ok());
    let tail = newest.as_ref().map_or_else(
        || format!("(no daprd log in {})", logs.display()),
        |path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(40);
            format!("{}:\n{}", path.display(), lines[start..].join("\n"))
        },
    );
    format!("GET /v1.0/healthz answered {status} {body}\n{tail}")
}

pub(crate) fn assert_ports_freed(ports: &[u16], run: &Proc) {
    for &port in ports {
        let free = wait_until(Duration::from_secs(20), || port_is_free(port));
        assert!(
            free,
            "port {port} still in use after stopping:\n{}",
            run.tail(30)
        );
    }
}

#[test]
fn one_command_runs_everything_the_readme_curls_answer_as_shown_and_dapr_stop_stops_it() {
    let env = Env::new("system_run_all");
    let mut run = env.run("run-all", &readme::command("run-all"), &[]);
    wait_for_system(&run, None);

    // checkout waits for order-processor to answer through Dapr, so even the first order of a
    // fresh start passes, as the README shows, and nothing failed before it.
    run.wait_for(r#"Order passed: {"orderId":1} "#, START);
    let checkout_lines: Vec<String> = run
        .lines()
        .into_iter()
        .filter(|l| l.contains("== APP - checkout =="))
        .collect();
    let first_passed = checkout_lines
        .iter()
        .position(|l| l.contains(r#"Order passed: {"orderId":1} "#))
        .unwrap();
    assert!(
        checkout_lines[..first_passed]
            .iter()
            .all(|l| !l.contains("Order failed")),
        "checkout failed orders before order 1 passed:\n{}",
        checkout_lines[..=first_passed].join("\n")
    );
    assert!(
        checkout_lines[..first_passed]
            .iter()
            .any(|l| l.contains("Waiting for order-processor to answer through Dapr")),
        "{}",
        checkout_lines[..=first_passed].join("\n")
    );
    run.wait_for("Order received: { orderId: 1 }", START);
    let sent = trace_id_of(&run, r#"Order passed: {"orderId":1}"#);
    let received = trace_id_of(&run, "Order received: { orderId: 1 }");
    assert_eq!(
        sent, received,
        "checkout and order-processor log the same trace"
    );

    for step in ["all-set-stock", "all-order-via-sidecar", "all-order-direct"] {
        readme::matches_output(step, &shell_output(&readme::command(step))).unwrap();
    }
    for order in ["order-2001", "order-2002"] {
        run.wait_for(
            &format!("Processed OrderPlaced event. orderId={order}"),
            Duration::from_secs(30),
        );
    }
    for step in ["all-get-stock", "all-bad-order"] {
        readme::matches_output(step, &shell_output(&readme::command(step))).unwrap();
    }
    // One order, one trace id, from order-service through the broker to inventory-service.
    for order in ["order-2001", "order-2002"] {
        let published = trace_id_of(
            &run,
            &format!("Published OrderPlaced event. orderId={order},"),
        );
        let processed = trace_id_of(
            &run,
            &format!("Processed OrderPlaced event. orderId={order},"),
        );
        assert_eq!(published, processed, "{order}");
    }

    // Each of those orders is one trace in the Zipkin scripts/run.sh started.
    assert_order_trace(&trace_id_of(
        &run,
        "Processed OrderPlaced event. orderId=order-2001,",
    ));
    assert_checkout_trace(&sent);

    // In a new terminal, as the README tells the user to: `dapr` must be on the PATH a login
    // shell gets, not only on the one the tests set.
    e2e::new_terminal_output(&readme::command("stop-all"));
    assert!(
        run.wait_exit(Duration::from_secs(60)).is_some(),
        "{}",
        run.tail(30)
    );
    let mut ports = APP_PORTS.to_vec();
    ports.extend(SIDECAR_PORTS);
    ports.push(ZIPKIN_PORT);
    assert_ports_freed(&ports, &run);
}

fn app(service: &'static str, name: &'static str) -> impl Fn(&Span) -> bool {
    move |s: &Span| s.app && s.service == service && s.name == name
}

fn sidecar(service: &'static str) -> impl Fn(&Span) -> bool {
    move |s: &Span| !s.app && s.service == service
}

fn is_state_call(s: &Span) -> bool {
    s.app && s.service == "inventory-service" && s.name.contains(" /v1.0/state/statestore")
}

/// The README's order through the sidecar: one trace from order-service, its sidecar, the
/// broker and inventory-service's sidecar to inventory-service and its state calls, each parent
/// above its children.
fn assert_order_trace(trace_id: &str) {
    check_order_trace(&Trace::fetch(trace_id, order_trace_complete), "Zipkin");
}

/// Whether the spans of order-2001 have all arrived: they come in batches, from six processes.
pub(crate) fn order_trace_complete(t: &Trace) -> bool {
    let state_calls = t.all(is_state_call);
    !state_calls.is_empty()
        && state_calls.iter().all(|call| {
            t.children(call)
                .iter()
                .any(|s| sidecar("inventory-service")(s))
        })
        && !t.all(app("order-service", "post /order")).is_empty()
}

/// The checks of [`assert_order_trace`] on order-2001's trace as `backend` returned it.
pub(crate) fn check_order_trace(trace: &Trace, backend: &str) {
    let consumer = trace.one(
        "the consumer span",
        app("inventory-service", "process orderplaced"),
    );
    assert_eq!(consumer.kind, "CONSUMER", "{consumer}");
    for (tag, want) in [
        ("messaging.system", "dapr"),
        ("messaging.destination.name", "OrderPlaced"),
        ("order.id", "order-2001"),
        ("order.item_id", "item1"),
        ("order.outcome", "applied"),
    ] {
        assert_eq!(
            consumer.tags.get(tag).map(String::as_str),
            Some(want),
            "{tag} of {consumer}"
        );
    }
    for call in trace.all(is_state_call) {
        assert_eq!(call.kind, "CLIENT", "{call}");
        assert!(
            trace
                .children(call)
                .iter()
                .any(|s| sidecar("inventory-service")(s)),
            "no sidecar span under {call}:\n{}",
            trace.tree()
        );
        trace.assert_ancestry(
            call,
            &[
                (
                    "inventory-service's consumer span",
                    &app("inventory-service", "process orderplaced"),
                ),
                (
                    // The run file leaves BULK_SUBSCRIBE at its default: batches.
                    "inventory-service's delivery (a batch)",
                    &app("inventory-service", "post /orders/bulk"),
                ),
                ("inventory-service's sidecar", &sidecar("inventory-service")),
                ("order-service's sidecar", &sidecar("order-service")),
                (
                    "order-service's publish call",
                    &app("order-service", "post /v1.0/publish/pubsub/orderplaced"),
                ),
                (
                    "order-service's request",
                    &app("order-service", "post /order"),
                ),
                (
                    "order-service's sidecar (the invocation)",
                    &sidecar("order-service"),
                ),
            ],
        );
    }
    e2e::record_scenario(&format!(
        "trace of README order order-2001 as {backend} returned it ({} spans):\n{}",
        trace.spans.len(),
        trace.tree()
    ));
}

/// One checkout order: one trace from checkout through both sidecars to order-processor.
fn assert_checkout_trace(trace_id: &str) {
    check_checkout_trace(&Trace::fetch(trace_id, checkout_trace_complete), "Zipkin");
}

/// Whether the spans of checkout order 1 have all arrived. Each of the four processes sends its
/// spans in batches of its own, seconds apart, so no single span is the last one sent (CI once
/// read the trace with order-processor's spans in and checkout's sidecar's not yet).
pub(crate) fn checkout_trace_complete(t: &Trace) -> bool {
    let has = |pick: &dyn Fn(&Span) -> bool| !t.all(pick).is_empty();
    has(&app("order-processor", "post /orders"))
        && has(&app("checkout", "post /orders"))
        && has(&app("checkout", "checkout order"))
        && has(&sidecar("checkout"))
        && has(&sidecar("order-processor"))
}

/// The checks of [`assert_checkout_trace`] on checkout order 1's trace as `backend` returned it.
pub(crate) fn check_checkout_trace(trace: &Trace, backend: &str) {
    let received = app("order-processor", "post /orders");
    let server = trace.one("order-processor's request", &received);
    assert_eq!(server.kind, "SERVER", "{server}");
    assert_eq!(server.tags.get("order.id").map(String::as_str), Some("1"));
    trace.assert_ancestry(
        server,
        &[
            ("order-processor's sidecar", &sidecar("order-processor")),
            ("checkout's sidecar", &sidecar("checkout")),
            ("checkout's call", &app("checkout", "post /orders")),
            ("checkout's order", &app("checkout", "checkout order")),
        ],
    );
    e2e::record_scenario(&format!(
        "trace of checkout order 1 as {backend} returned it ({} spans):\n{}",
        trace.spans.len(),
        trace.tree()
    ));
}

#[test]
fn with_tokens_on_sidecar_only_routes_need_the_token_public_ones_do_not_and_the_system_works() {
    let env = Env::new("system_tokens");
    let dapr_token = "e2e-dapr-token-5f1c0a9e";
    let app_token = "e2e-app-token-3b7d2e4f";
    // The README makes random tokens; the test fixes them so that it can use them too.
    let block = readme::command("run-all-tokens");
    let command = block
        .replacen(
            "\"$(openssl rand -hex 16)\"",
            &format!("\"{dapr_token}\""),
            1,
        )
        .replacen(
            "\"$(openssl rand -hex 16)\"",
            &format!("\"{app_token}\""),
            1,
        );
    assert!(
        command.contains(dapr_token) && command.contains(app_token),
        "{block}"
    );
    let run = env.run("run-all-tokens", &command, &[]);
    wait_for_system(&run, Some(dapr_token));

    // checkout → its sidecar (DAPR_API_TOKEN) → order-processor's sidecar → order-processor
    // (a sidecar-only route, APP_API_TOKEN): still works.
    run.wait_for_count("Order received: { orderId: ", 2, START);

    // Without the token the sidecar refuses.
    let order = json!({"orderId": "order-3000", "itemId": "item1", "quantity": 1});
    let (status, _) = post_with(
        "http://localhost:3502/v1.0/invoke/order-service/method/order",
        &order,
        None,
    );
    assert_eq!(status, 401, "sidecar without token");

    // Straight to the apps without the token: sidecar-only routes refuse, public ones answer.
    readme::matches_output(
        "tokens-direct-refused",
        &shell_output(&readme::command("tokens-direct-refused")),
    )
    .unwrap();
    let (status, body) = post_with(
        "http://localhost:5003/inventory/item1",
        &json!({"quantity": 1000}),
        Some("wrong-token"),
    );
    assert_eq!(status, 401, "stock write with a wrong token: {body}");
    let forged = json!({"orderId": "order-3999", "itemId": "item1", "quantity": 50});
    let (status, body) = post_with("http://localhost:5003/orders", &forged, None);
    assert_eq!(status, 401, "forged delivery: {body}");
    let (status, body) = post_with(
        "http://localhost:5001/orders",
        &json!({"orderId": 99}),
        None,
    );
    assert_eq!(
        status, 401,
        "order-processor called past its sidecar: {body}"
    );
    assert_eq!(
        get_json("http://localhost:5003/inventory/item1").0,
        200,
        "public read"
    );
    assert_eq!(
        get_json("http://localhost:5003/healthz").0,
        200,
        "health stays open"
    );

    // With the token, through the sidecars, end to end (the delivery carries APP_API_TOKEN).
    let (status, body) = post_with(
        "http://localhost:3503/v1.0/invoke/inventory-service/method/inventory/item1",
        &json!({"quantity": 100}),
        Some(dapr_token),
    );
    assert_eq!(status, 200, "{body}");
    let printed = shell_output_with(
        &readme::command("tokens-order"),
        &[("DAPR_API_TOKEN", dapr_token)],
    );
    readme::matches_output("tokens-order", &printed).unwrap();
    run.wait_for(
        "Processed OrderPlaced event. orderId=order-3001, itemId=item1, ordered=1, remaining=99",
        Duration::from_secs(30),
    );

    // A direct POST /order without any token is accepted and applied, as on Azure's ingress.
    readme::matches_output(
        "tokens-direct-order",
        &shell_output(&readme::command("tokens-direct-order")),
    )
    .unwrap();
    run.wait_for(
        "Processed OrderPlaced event. orderId=order-3002, itemId=item1, ordered=1, remaining=98",
        Duration::from_secs(30),
    );
    // The refused writes changed nothing: neither the stock of 1000 nor the forged order.
    let (status, stock) = get_json_with(
        "http://localhost:3503/v1.0/invoke/inventory-service/method/inventory/item1",
        Some(dapr_token),
    );
    assert_eq!((status, stock["quantity"].as_u64()), (200, Some(98)));
    let (status, stock) = get_json("http://localhost:5003/inventory/item1");
    assert_eq!((status, stock["quantity"].as_u64()), (200, Some(98)));
    assert!(
        run.lines_containing("order-3999").is_empty(),
        "the forged delivery must not be processed"
    );
}

#[test]
fn run_sh_starts_redis_and_the_control_plane_when_missing_and_ctrl_c_stops_everything() {
    // No Env: on this "bare machine" nothing listens on 6379, 50005 or 50006 yet.
    let _serial = serial();
    require_tools();
    e2e::build_services();
    let logs = log_dir("system_run_sh_bare");
    for (port, what) in [
        (6379, "Redis"),
        (50005, "placement"),
        (50006, "scheduler"),
        (ZIPKIN_PORT, "Zipkin"),
    ] {
        e2e::require_free_port(port, what);
    }
    let mut run = Proc::shell(
        "run-sh",
        &readme::command("run-all"),
        &repo_root(),
        &[],
        &logs,
    );
    wait_for_system(&run, None);
    run.wait_for("Redis: starting redis-server", Duration::from_secs(1));
    run.wait_for("Zipkin: starting the Zipkin", Duration::from_secs(1));
    run.wait_for(
        "Zipkin: open http://127.0.0.1:9411/zipkin/",
        Duration::from_secs(1),
    );

    assert_eq!(
        post_json(
            "http://localhost:5003/inventory/item9",
            &json!({"quantity": 5})
        )
        .0,
        200
    );
    let order = json!({"orderId": "order-4001", "itemId": "item9", "quantity": 1});
    assert_eq!(post_json("http://localhost:5002/order", &order).0, 200);
    run.wait_for(
        "Processed OrderPlaced event. orderId=order-4001",
        Duration::from_secs(30),
    );

    // Ctrl-C in the terminal: SIGINT to the foreground process group.
    run.signal(Signal::SIGINT);
    assert!(
        run.wait_exit(Duration::from_secs(60)).is_some(),
        "{}",
        run.tail(30)
    );
    let mut ports = vec![6379, 50005, 50006, ZIPKIN_PORT];
    ports.extend(APP_PORTS);
    ports.extend(SIDECAR_PORTS);
    assert_ports_freed(&ports, &run);
}
