//! Starts `order-processor`: `APP_PORT=5001 cargo run -p order-processor`, or under Dapr as the
//! README shows.

use std::process::ExitCode;

use order_processor::config::Config;
use order_processor::{AppState, app};
use service_kit::env::{self, Vars};
use service_kit::{http, shutdown, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_vars(&Vars::process()) {
        Ok(config) => config,
        Err(e) => return service_kit::exit_with_config_error("order-processor", &e),
    };
    let _log = telemetry::init(config.log_format, "info");
    let result = async {
        let listener = http::bind(config.port, env::APP_PORT).await?;
        let router = app(AppState { http: config.http });
        http::serve(listener, router, shutdown::shutdown_signal()).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    match result.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("order-processor failed: {e}");
            ExitCode::FAILURE
        }
    }
}
