//! The SIGINT/SIGTERM future that drives graceful shutdown.

use std::time::Duration;

/// Completes on Ctrl-C (SIGINT) or SIGTERM, the signal `dapr stop`, Docker and Azure Container
/// Apps send. Servers stop accepting connections and finish in-flight requests; loops stop
/// between iterations.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };

    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT, shutting down"),
        () = terminate => tracing::info!("received SIGTERM, shutting down"),
    }
}

/// [`shutdown_signal`], then `delay` more (`SHUTDOWN_DELAY_SECONDS`), during which the server
/// still accepts connections: its sidecar, stopped after it, may still be delivering to it.
pub async fn shutdown_signal_then(delay: Duration) {
    shutdown_signal().await;
    if !delay.is_zero() {
        tracing::info!(
            "serving {delay:?} more before shutting down ({})",
            crate::env::SHUTDOWN_DELAY_SECONDS
        );
        tokio::time::sleep(delay).await;
    }
}
