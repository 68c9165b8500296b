//! Starts `order-service`: under Dapr as the README shows.

use std::process::ExitCode;

use order_service::config::Config;
use order_service::{AppState, app};
use service_kit::env::Vars;
use service_kit::{DaprClient, http, runtime, telemetry};

fn main() -> ExitCode {
    let config = match Config::from_vars(&Vars::process()) {
        Ok(config) => config,
        Err(e) => return service_kit::exit_with_config_error("order-service", &e),
    };
    let _log = telemetry::init(config.log_format, "info");
    runtime::block_on(
        config.threads,
        http::run("order-service", config.port, async {
            Ok(app(AppState {
                dapr: DaprClient::new(&config.dapr)?,
                pubsub_name: config.pubsub_name,
                http: config.http,
            }))
        }),
    )
}
