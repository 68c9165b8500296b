//! Starts `order-processor`: `APP_PORT=5001 cargo run -p order-processor`, or under Dapr as the
//! README shows.

use std::process::ExitCode;

use order_processor::config::Config;
use order_processor::{AppState, app};
use service_kit::env::Vars;
use service_kit::{http, runtime, telemetry};

fn main() -> ExitCode {
    let config = match Config::from_vars(&Vars::process()) {
        Ok(config) => config,
        Err(e) => return service_kit::exit_with_config_error("order-processor", &e),
    };
    let _log = telemetry::init(config.log_format, "info");
    runtime::block_on(
        config.threads,
        http::run("order-processor", config.port, async {
            Ok(app(AppState { http: config.http }))
        }),
    )
}
