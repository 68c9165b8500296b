//! Starts `checkout`: under Dapr as the README shows, or `cargo run -p checkout` beside a
//! sidecar on `DAPR_HTTP_PORT`.
//!
//! Exit status: 0 when a signal stopped the loop, or when the configured rounds ended with every
//! order passed; 1 when they ended with a failed order, or the sidecar never became ready; 2 for
//! a configuration error.

use std::process::ExitCode;

use checkout::config::Config;
use checkout::{AppState, Checkout, app};
use service_kit::env::{self, Vars};
use service_kit::{DaprClient, http, runtime, shutdown, telemetry};
use tokio::sync::watch;

fn main() -> ExitCode {
    let config = match Config::from_vars(&Vars::process()) {
        Ok(config) => config,
        Err(e) => return service_kit::exit_with_config_error("checkout", &e),
    };
    let _log = telemetry::init(config.log_format, "info");
    runtime::block_on(config.threads, async move {
        match run(config).await {
            Ok(code) => code,
            Err(e) => {
                tracing::error!("checkout failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn run(config: Config) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|s| *s).await;
    };

    let health = match config.health_port {
        Some(port) => {
            let listener = http::bind(port, env::APP_PORT).await?;
            let router = app(AppState { http: config.http });
            Some(tokio::spawn(http::serve(
                listener,
                router,
                stopped(stop.clone()),
            )))
        }
        None => None,
    };

    let client = DaprClient::new(&config.dapr)?;
    tracing::info!(sidecar = client.base_url(), "waiting for the Dapr sidecar");
    tokio::select! {
        ready = client.wait_until_ready() => ready?,
        () = stopped(stop.clone()) => return Ok(ExitCode::SUCCESS),
    }

    let checkout = Checkout::new(client, config.orders);
    tokio::select! {
        _ = checkout.wait_for_target() => {}
        () = stopped(stop.clone()) => return Ok(ExitCode::SUCCESS),
    }
    let summary = checkout.run(stop.clone()).await;
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
