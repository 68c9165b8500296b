//! Starts `inventory-service`: under Dapr as the README shows. With `INITIAL_STOCK` set it
//! first waits for the sidecar and creates the items that do not exist yet; if the state store
//! keeps failing, it exits with status 1 and says why.

use inventory_service::config::{Config, DEFAULT_PORT};
use inventory_service::seed::{SEED_TIMEOUT, seed_initial_stock};
use inventory_service::store::Inventory;
use inventory_service::{AppState, app};
use service_kit::DaprClient;

fn main() -> std::process::ExitCode {
    service_kit::start("inventory-service", DEFAULT_PORT, |common, vars| {
        let config = Config::from_vars(vars)?;
        Ok(async move {
            let dapr = DaprClient::new(&common.dapr)?;
            let inventory = Inventory::new(dapr.clone(), &config.state_store_name)
                .with_outcome_ttl(config.outcome_ttl);
            // Before listening, so that no delivery reaches this replica before its stock.
            seed_initial_stock(&dapr, &inventory, &config.initial_stock, SEED_TIMEOUT).await?;
            Ok(app(AppState {
                inventory,
                pubsub_name: config.pubsub_name,
                bulk: config.bulk,
                http: common.http,
            }))
        })
    })
}
