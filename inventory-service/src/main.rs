//! Starts `inventory-service`: under Dapr as the README shows.

use std::process::ExitCode;

use inventory_service::config::Config;
use inventory_service::store::Inventory;
use inventory_service::{AppState, app};
use service_kit::env::Vars;
use service_kit::{DaprClient, http, runtime, telemetry};

fn main() -> ExitCode {
    let config = match Config::from_vars(&Vars::process()) {
        Ok(config) => config,
        Err(e) => return service_kit::exit_with_config_error("inventory-service", &e),
    };
    let _log = telemetry::init(config.log_format, "info");
    runtime::block_on(
        config.threads,
        http::run("inventory-service", config.port, || {
            let dapr = DaprClient::new(&config.dapr)?;
            Ok(app(AppState {
                inventory: Inventory::new(dapr, &config.state_store_name),
                pubsub_name: config.pubsub_name,
                http: config.http,
            }))
        }),
    )
}
