//! Starts `inventory-service`: under Dapr as the README shows. With `INITIAL_STOCK` set it
//! first waits for the sidecar and creates the items that do not exist yet; if the state store
//! keeps failing, it exits with status 1 and says why.

use std::process::ExitCode;

use inventory_service::config::Config;
use inventory_service::seed::{SEED_TIMEOUT, seed_initial_stock};
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
        http::run("inventory-service", config.port, async {
            let dapr = DaprClient::new(&config.dapr)?;
            let inventory = Inventory::new(dapr.clone(), &config.state_store_name)
                .with_outcome_ttl(config.outcome_ttl);
            // Before listening, so that no delivery reaches this replica before its stock.
            seed_initial_stock(&dapr, &inventory, &config.initial_stock, SEED_TIMEOUT).await?;
            Ok(app(AppState {
                inventory,
                pubsub_name: config.pubsub_name,
                http: config.http,
            }))
        }),
    )
}
