//! `checkout`: calls `order-processor` in a loop through Dapr service invocation.
//!
//! Like the tutorial's Node.js caller it sends orders 1 to 20, one second apart, to
//! `POST /orders` on its own sidecar with a `dapr-app-id: order-processor` header (Dapr's HTTP
//! proxying), prints `Order passed: {"orderId":1}` after each, pauses, and starts again.
//! Unlike the samples it waits for the sidecar first, then for `order-processor` to answer
//! through it (see [`Checkout::wait_for_target`]), checks every answer (a non-2xx answer or a
//! transport failure is logged with what came back and never reported as passed), keeps going
//! after failures, and stops between two calls on SIGTERM.

pub mod config;

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::Method;
use serde_json::json;
use service_kit::http::{self, HttpConfig};
use service_kit::{DaprClient, DaprError, TraceContext, trace};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::config::LoopConfig;

/// What a run of the loop did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Orders the callee accepted with a 2xx answer.
    pub passed: u64,
    /// Orders that failed (non-2xx, timeout, sidecar unreachable).
    pub failed: u64,
    /// Whether a stop signal ended the run early.
    pub stopped: bool,
}

/// Time between two probes of the target while [`Checkout::wait_for_target`] waits. Each failed
/// probe counts towards the circuit breaker of `components/resiliency.yaml` (five failures in a
/// row open it for 10 s), so the probes are a second apart rather than as fast as possible.
pub const TARGET_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Gap between the two answers in a row that [`Checkout::wait_for_target`] needs. daprd serves
/// invocations before it attaches its app-health state to the app channel (dapr 1.18.3
/// `pkg/runtime/runtime.go` 847 and 895, the same order in 1.16.2), and that state starts
/// unhealthy until its first probe answers (`pkg/apphealth/health.go` 69). An answer from before
/// the attach can be followed by a call that gets 500 "app is not in a healthy state"
/// (`pkg/channel/http/http_channel.go` 177); a second answer a moment later is past that window.
pub const TARGET_CONFIRM_DELAY: Duration = Duration::from_millis(250);

/// The order loop.
#[derive(Debug, Clone)]
pub struct Checkout {
    client: DaprClient,
    config: LoopConfig,
}

impl Checkout {
    /// A loop that calls through `client`.
    pub fn new(client: DaprClient, config: LoopConfig) -> Self {
        Self { client, config }
    }

    /// Waits until the target answers its health route through Dapr
    /// (`GET /v1.0/invoke/{target}/method/healthz` on our sidecar, which goes through both
    /// sidecars to the app, as an order does) twice in a row, [`TARGET_CONFIRM_DELAY`] apart,
    /// for at most the configured `target_ready_timeout`. True when it did; false, after a
    /// warning, when the time ran out, and the orders start anyway (their failures are logged
    /// one by one).
    ///
    /// Without this wait the first orders of `dapr run -f .` fail: the CLI starts the apps about
    /// a second apart, and the invocation retries (2 × 250 ms) cannot cover a callee that comes
    /// up seconds after its caller.
    pub async fn wait_for_target(&self) -> bool {
        let timeout = self.config.target_ready_timeout;
        if timeout.is_zero() {
            return true;
        }
        let target = &self.config.target_app_id;
        tracing::info!(
            "Waiting for {target} to answer through Dapr (GET /v1.0/invoke/{target}/method/healthz, at most {timeout:?})"
        );
        let started = Instant::now();
        let mut answered = false;
        loop {
            let trace = TraceContext::new_root();
            let last = match self
                .client
                .invoke(Method::GET, target, "healthz", None, &trace)
                .await
            {
                Ok(_) if answered => {
                    tracing::info!(
                        "{target} answers through Dapr after {:.1?}",
                        started.elapsed()
                    );
                    return true;
                }
                Ok(_) => {
                    answered = true;
                    tokio::time::sleep(TARGET_CONFIRM_DELAY).await;
                    continue;
                }
                Err(DaprError::Status { status, body, .. }) => format!("{status}: {body}"),
                Err(other) => other.to_string(),
            };
            answered = false;
            if started.elapsed() + TARGET_POLL_INTERVAL > timeout {
                tracing::warn!(
                    "{target} did not answer through Dapr within {timeout:?} (last answer: {last}); starting the orders anyway"
                );
                return false;
            }
            tokio::time::sleep(TARGET_POLL_INTERVAL).await;
        }
    }

    /// Runs rounds until the configured number is done or `stop` is cancelled. A call in flight
    /// then is finished, never cut off; sleeps end at once.
    pub async fn run(&self, stop: &CancellationToken) -> Summary {
        let mut summary = Summary::default();
        summary.stopped = self.rounds(stop, &mut summary).await.is_none();
        summary
    }

    /// The rounds of [`Checkout::run`], counted in `summary`; `None` when `stop` ended them.
    async fn rounds(&self, stop: &CancellationToken, summary: &mut Summary) -> Option<()> {
        let sleep = |duration| stop.run_until_cancelled(tokio::time::sleep(duration));
        let last_order = self.config.orders_per_round.get();
        let mut round: u64 = 0;
        loop {
            round += 1;
            let last_round = self.config.rounds.is_some_and(|r| round >= r.get());
            for order_id in 1..=last_order {
                if stop.is_cancelled() {
                    return None;
                }
                if self.place_order(order_id).await {
                    summary.passed += 1;
                } else {
                    summary.failed += 1;
                }
                if !(last_round && order_id == last_order) {
                    sleep(self.config.interval).await?;
                }
            }
            tracing::info!(
                round,
                passed = summary.passed,
                failed = summary.failed,
                "round finished"
            );
            if last_round {
                return Some(());
            }
            sleep(self.config.pause).await?;
        }
    }

    /// Sends one order and logs the outcome; true when the callee answered 2xx.
    pub async fn place_order(&self, order_id: u64) -> bool {
        let order = json!({ "orderId": order_id });
        // Each order starts a trace, so order-processor's log line carries the same trace id.
        // Not a request this service serves, so the order gets its own span for its trace id.
        let (trace, span) = trace::start_trace("checkout order", &order_id.to_string());
        let result = self
            .client
            .invoke_via_proxy(
                Method::POST,
                &self.config.target_app_id,
                "/orders",
                Some(&order),
                &trace,
            )
            .instrument(span.clone())
            .await;
        let target = &self.config.target_app_id;
        span.in_scope(|| match result {
            Ok(_) => {
                tracing::info!("Order passed: {order}");
                true
            }
            Err(DaprError::Status { status, body, .. }) => {
                tracing::warn!(
                    status = status.as_u16(),
                    %body,
                    "Order failed: {order}: {target} answered {status}"
                );
                false
            }
            Err(other) => {
                tracing::warn!("Order failed: {order}: {other}");
                false
            }
        })
    }
}

/// What the health endpoint needs.
#[derive(Debug, Clone, Default)]
pub struct AppState {
    /// Token check and other HTTP settings.
    pub http: HttpConfig,
}

/// The routes `checkout` serves when `APP_PORT` is set: only `GET /healthz`, which is always
/// open.
pub fn app(state: AppState) -> Router {
    http::finish(Router::new(), Router::new(), &state.http)
}
