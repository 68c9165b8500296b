//! Starts `checkout`: under Dapr as the README shows, or `cargo run -p checkout` beside a
//! sidecar on `DAPR_HTTP_PORT`.
//!
//! Exit status: 0 when a signal stopped the loop, or when the configured rounds ended with every
//! order passed; 1 when they ended with a failed order, or the sidecar never became ready; 2 for
//! a configuration error.

use std::process::ExitCode;

use checkout::config::LoopConfig;
use checkout::{AppState, Checkout, app};
use service_kit::service::BoxError;
use service_kit::{DaprClient, ServiceConfig, env, http, shutdown};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    service_kit::launch("checkout", None, |common, vars| {
        let orders = LoopConfig::from_vars(vars)?;
        Ok(run(common, orders))
    })
}

async fn run(common: ServiceConfig, orders: LoopConfig) -> Result<ExitCode, BoxError> {
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown::shutdown_signal().await;
        on_signal.cancel();
    });

    let health = match common.port {
        Some(port) => {
            let listener = http::bind(port, env::APP_PORT).await?;
            let router = app(AppState { http: common.http });
            let stopped = stop.clone().cancelled_owned();
            Some(tokio::spawn(http::serve(
                listener,
                router,
                stopped,
                http::SHUTDOWN_GRACE,
            )))
        }
        None => None,
    };

    let client = DaprClient::new(&common.dapr)?;
    tracing::info!(sidecar = client.base_url(), "waiting for the Dapr sidecar");
    match stop.run_until_cancelled(client.wait_until_ready()).await {
        Some(ready) => ready?,
        None => return Ok(ExitCode::SUCCESS),
    }

    let checkout = Checkout::new(client, orders);
    if stop
        .run_until_cancelled(checkout.wait_for_target())
        .await
        .is_none()
    {
        return Ok(ExitCode::SUCCESS);
    }
    let summary = checkout.run(&stop).await;
    tracing::info!(
        passed = summary.passed,
        failed = summary.failed,
        stopped = summary.stopped,
        "checkout finished"
    );
    if let Some(health) = health {
        health.abort();
    }
    Ok(if summary.stopped || summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
