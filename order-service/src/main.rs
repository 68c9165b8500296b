//! Starts `order-service`: under Dapr as the README shows.

use order_service::config::{Config, DEFAULT_PORT};
use order_service::{AppState, app};
use service_kit::DaprClient;

fn main() -> std::process::ExitCode {
    service_kit::start("order-service", DEFAULT_PORT, |common, vars| {
        let config = Config::from_vars(vars)?;
        Ok(async move {
            Ok(app(AppState {
                dapr: DaprClient::new(&common.dapr)?,
                pubsub_name: config.pubsub_name,
                http: common.http,
            }))
        })
    })
}
