//! Starts `order-processor`: `APP_PORT=5001 cargo run -p order-processor`, or under Dapr as the
//! README shows.

use order_processor::{AppState, DEFAULT_PORT, app};

fn main() -> std::process::ExitCode {
    service_kit::start("order-processor", DEFAULT_PORT, |common, _| {
        Ok(async { Ok(app(AppState { http: common.http })) })
    })
}
