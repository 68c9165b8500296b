//! The exact requests `checkout` sends to its sidecar, and what it does with each kind of answer,
//! against a `wiremock` stand-in for the sidecar's HTTP API.

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use checkout::config::LoopConfig;
use checkout::{Checkout, Summary};
use service_kit::env::Secret;
use test_kit::{client, client_for};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn loop_config(orders: u64) -> LoopConfig {
    LoopConfig {
        orders_per_round: NonZeroU64::new(orders).unwrap(),
        rounds: NonZeroU64::new(1),
        interval: Duration::from_millis(1),
        pause: Duration::ZERO,
        ..LoopConfig::default()
    }
}

fn checkout(sidecar: &MockServer, orders: u64) -> Checkout {
    Checkout::new(client(sidecar), loop_config(orders))
}

fn never_stop() -> CancellationToken {
    CancellationToken::new()
}

/// A stand-in sidecar on which order `order_id` is answered `failure` and the other
/// `orders - 1` orders 200, each expected once.
async fn failing_order(order_id: u64, failure: ResponseTemplate, orders: u64) -> MockServer {
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_json(serde_json::json!({ "orderId": order_id })))
        .respond_with(failure)
        .expect(1)
        .mount(&sidecar)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(orders - 1)
        .mount(&sidecar)
        .await;
    sidecar
}

/// What a run that was not stopped did.
fn ran(passed: u64, failed: u64) -> Summary {
    Summary {
        passed,
        failed,
        stopped: false,
    }
}

#[tokio::test]
async fn each_order_is_a_proxied_post_to_orders_with_the_app_id_header() {
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .and(header("dapr-app-id", "order-processor"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200))
        .expect(3)
        .mount(&sidecar)
        .await;

    let summary = checkout(&sidecar, 3).run(&never_stop()).await;

    assert_eq!(summary, ran(3, 0));
    let requests = sidecar.received_requests().await.unwrap();
    let bodies: Vec<String> = requests
        .iter()
        .map(|r| String::from_utf8(r.body.clone()).unwrap())
        .collect();
    assert_eq!(
        bodies,
        [r#"{"orderId":1}"#, r#"{"orderId":2}"#, r#"{"orderId":3}"#]
    );
    // The tutorial's HTTP proxying form, not /v1.0/invoke, and no token when none is set.
    assert!(requests.iter().all(|r| r.url.path() == "/orders"));
    // Each order starts its own W3C trace.
    let traces: std::collections::HashSet<&str> = requests
        .iter()
        .map(|r| r.headers.get("traceparent").unwrap().to_str().unwrap())
        .collect();
    assert_eq!(traces.len(), 3);
    assert!(
        requests
            .iter()
            .all(|r| !r.headers.contains_key("dapr-api-token"))
    );
}

#[tokio::test]
async fn a_500_is_a_failure_and_the_loop_goes_on() {
    let sidecar = failing_order(2, ResponseTemplate::new(500).set_body_string("boom"), 3).await;

    let summary = checkout(&sidecar, 3).run(&never_stop()).await;

    assert_eq!(summary, ran(2, 1));
}

#[tokio::test]
async fn a_call_that_times_out_is_a_failure_and_the_loop_goes_on() {
    let slow = ResponseTemplate::new(200).set_delay(Duration::from_secs(5));
    let sidecar = failing_order(1, slow, 2).await;
    let client = client_for(&sidecar.uri(), |c| c.timeout = Duration::from_secs(1));
    let checkout = Checkout::new(client, loop_config(2));

    let started = Instant::now();
    let summary = checkout.run(&never_stop()).await;

    assert_eq!(summary, ran(1, 1));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_unreachable_sidecar_is_a_failure_not_a_crash() {
    let client = client_for(&test_kit::unreachable_url(), |_| {});

    let summary = Checkout::new(client, loop_config(2))
        .run(&never_stop())
        .await;

    assert_eq!(summary, ran(0, 2));
}

#[tokio::test]
async fn the_api_token_is_sent_when_configured() {
    let sidecar = MockServer::start().await;
    Mock::given(header("dapr-api-token", "t0ken"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&sidecar)
        .await;
    let client = client_for(&sidecar.uri(), |c| c.api_token = Some(Secret::new("t0ken")));

    let summary = Checkout::new(client, loop_config(1))
        .run(&never_stop())
        .await;

    assert_eq!(summary.passed, 1);
}

#[tokio::test]
async fn a_stop_signal_ends_the_loop_between_calls() {
    let sidecar = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&sidecar)
        .await;
    let client = client(&sidecar);
    let config = LoopConfig {
        interval: Duration::from_secs(30),
        ..loop_config(20)
    };
    let stop = CancellationToken::new();
    let stop_run = stop.clone();
    let run = tokio::spawn(async move { Checkout::new(client, config).run(&stop_run).await });
    // Wait for the first order, which is followed by a 30 s sleep.
    while sidecar.received_requests().await.unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    stop.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(2), run)
        .await
        .unwrap()
        .unwrap();

    assert_eq!(
        summary,
        Summary {
            passed: 1,
            failed: 0,
            stopped: true
        }
    );
}

#[tokio::test(flavor = "current_thread")]
async fn passed_orders_are_logged_with_the_tutorials_line_and_failures_say_what_came_back() {
    let (logs, _guard) = test_kit::capture_logs();
    let exploded = ResponseTemplate::new(500).set_body_string("callee exploded");
    let sidecar = failing_order(2, exploded, 2).await;

    checkout(&sidecar, 2).run(&never_stop()).await;

    let lines = logs.lines_from("Order ");
    assert_eq!(lines.len(), 2, "{}", logs.text());
    assert!(
        lines[0].starts_with(r#"Order passed: {"orderId":1} trace_id="#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(r#"Order failed: {"orderId":2}: order-processor answered 500"#),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("callee exploded"), "{}", lines[1]);
    assert!(!logs.text().contains(r#"Order passed: {"orderId":2}"#));
}

/// The answer daprd gives while the callee's sidecar is up but its app is not listening yet.
const CALLEE_NOT_UP: &str = r#"{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: order-processor, err: connection refused"}"#;
const TARGET_HEALTH: &str = "/v1.0/invoke/order-processor/method/healthz";

/// The target's health route answers [`CALLEE_NOT_UP`]: `times` times (and expected as many)
/// when given, else always.
async fn callee_not_up(sidecar: &MockServer, times: Option<u64>) {
    let mock = Mock::given(method("GET"))
        .and(path(TARGET_HEALTH))
        .respond_with(ResponseTemplate::new(500).set_body_string(CALLEE_NOT_UP));
    match times {
        Some(n) => mock.up_to_n_times(n).expect(n).mount(sidecar).await,
        None => mock.mount(sidecar).await,
    }
}

/// A one-order checkout that waits at most `timeout` for its target.
fn waiting_at_most(sidecar: &MockServer, timeout: Duration) -> Checkout {
    let config = LoopConfig {
        target_ready_timeout: timeout,
        ..loop_config(1)
    };
    Checkout::new(client(sidecar), config)
}

#[tokio::test(flavor = "current_thread")]
async fn the_first_order_waits_until_order_processor_answers_its_health_route_through_dapr() {
    let (logs, _guard) = test_kit::capture_logs();
    let sidecar = MockServer::start().await;
    callee_not_up(&sidecar, Some(2)).await;
    Mock::given(method("GET"))
        .and(path(TARGET_HEALTH))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"status":"ok"}"#))
        .expect(2)
        .mount(&sidecar)
        .await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .respond_with(ResponseTemplate::new(200))
        .expect(2)
        .mount(&sidecar)
        .await;
    let checkout = checkout(&sidecar, 2);

    let started = Instant::now();
    assert!(checkout.wait_for_target().await);
    // Two failed probes, a second apart each, then two answers.
    assert!(
        started.elapsed() >= 2 * checkout::TARGET_POLL_INTERVAL + checkout::TARGET_CONFIRM_DELAY,
        "{:?}",
        started.elapsed()
    );
    let summary = checkout.run(&never_stop()).await;

    assert_eq!(summary.passed, 2);
    let requests = sidecar.received_requests().await.unwrap();
    let order: Vec<(String, String)> = requests
        .iter()
        .map(|r| (r.method.to_string(), r.url.path().to_owned()))
        .collect();
    let probe = ("GET".to_owned(), TARGET_HEALTH.to_owned());
    let post = ("POST".to_owned(), "/orders".to_owned());
    assert_eq!(
        order,
        [
            probe.clone(),
            probe.clone(),
            probe.clone(),
            probe,
            post.clone(),
            post
        ]
    );
    let text = logs.text();
    assert!(
        text.contains("Waiting for order-processor to answer through Dapr"),
        "{text}"
    );
    assert!(
        text.contains("order-processor answers through Dapr after"),
        "{text}"
    );
    assert!(!text.contains("Order failed"), "{text}");
}

/// The answer of a callee sidecar that has attached its app-health state but not yet probed.
const CALLEE_NOT_PROBED: &str = r#"{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: order-processor, err: rpc error: code = Internal desc = error invoking app channel: rpc error: code = Internal desc = app is not in a healthy state"}"#;

#[tokio::test(flavor = "current_thread")]
async fn an_answer_followed_by_app_not_healthy_is_not_ready_the_wait_needs_two_in_a_row() {
    let (logs, _guard) = test_kit::capture_logs();
    let sidecar = MockServer::start().await;
    let answers = [
        ResponseTemplate::new(200).set_body_string(r#"{"status":"ok"}"#),
        ResponseTemplate::new(500).set_body_string(CALLEE_NOT_PROBED),
    ];
    for answer in answers {
        Mock::given(method("GET"))
            .and(path(TARGET_HEALTH))
            .respond_with(answer)
            .up_to_n_times(1)
            .expect(1)
            .mount(&sidecar)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(TARGET_HEALTH))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"status":"ok"}"#))
        .expect(2)
        .mount(&sidecar)
        .await;
    let checkout = checkout(&sidecar, 1);

    let started = Instant::now();
    assert!(checkout.wait_for_target().await);
    assert!(
        started.elapsed() >= checkout::TARGET_POLL_INTERVAL + 2 * checkout::TARGET_CONFIRM_DELAY,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sidecar.received_requests().await.unwrap().len(), 4);
    let text = logs.text();
    assert!(
        text.contains("order-processor answers through Dapr after"),
        "{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn when_order_processor_never_answers_the_orders_start_anyway_after_a_warning() {
    let (logs, _guard) = test_kit::capture_logs();
    let sidecar = MockServer::start().await;
    callee_not_up(&sidecar, None).await;
    let checkout = waiting_at_most(&sidecar, Duration::from_secs(2));

    let started = Instant::now();
    assert!(!checkout.wait_for_target().await);

    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let warning = logs.lines_from("order-processor did not answer");
    assert_eq!(warning.len(), 1, "{}", logs.text());
    assert!(
        warning[0].starts_with("order-processor did not answer through Dapr within 2s"),
        "{}",
        warning[0]
    );
    assert!(warning[0].contains("connection refused"), "{}", warning[0]);
    assert!(
        warning[0].ends_with("starting the orders anyway"),
        "{}",
        warning[0]
    );
    assert!(logs.text().contains(" WARN "), "{}", logs.text());
}

#[tokio::test]
async fn a_target_ready_timeout_of_zero_skips_the_wait() {
    let sidecar = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&sidecar)
        .await;

    assert!(
        waiting_at_most(&sidecar, Duration::ZERO)
            .wait_for_target()
            .await
    );
}
