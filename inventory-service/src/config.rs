//! Configuration, read once from the environment at start-up.

use service_kit::dapr::DaprConfig;
use service_kit::env::{self, ConfigError, Vars};
use service_kit::http::HttpConfig;
use service_kit::runtime::Threads;
use service_kit::telemetry::LogFormat;

/// Port the tutorial's inventory service listens on.
pub const DEFAULT_PORT: u16 = 5001;
/// Pub/sub component the tutorial subscribes through.
pub const DEFAULT_PUBSUB_NAME: &str = "pubsub";
/// State store component the tutorial keeps stock in.
pub const DEFAULT_STATE_STORE_NAME: &str = "statestore";
/// Where Dapr sends events this service drops as malformed; this service subscribes to it too,
/// to record them where an operator can read them (`GET /deadletters`).
pub const DEAD_LETTER_TOPIC: &str = "OrderPlaced-deadletter";

/// Everything `inventory-service` reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `APP_PORT`, default 5001.
    pub port: u16,
    /// `PUBSUB_NAME`, default `pubsub`.
    pub pubsub_name: String,
    /// `STATE_STORE_NAME`, default `statestore`.
    pub state_store_name: String,
    /// Where the sidecar is.
    pub dapr: DaprConfig,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `TOKIO_WORKER_THREADS`: one thread unless set.
    pub threads: Threads,
    /// `APP_API_TOKEN`.
    pub http: HttpConfig,
}

impl Config {
    /// Reads the configuration from `vars`.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            port: vars.port_or(env::APP_PORT, DEFAULT_PORT)?,
            pubsub_name: vars.identifier_or(env::PUBSUB_NAME, DEFAULT_PUBSUB_NAME)?,
            state_store_name: vars
                .identifier_or(env::STATE_STORE_NAME, DEFAULT_STATE_STORE_NAME)?,
            dapr: DaprConfig::from_vars(vars)?,
            log_format: LogFormat::from_vars(vars)?,
            threads: Threads::from_vars(vars)?,
            http: HttpConfig::from_vars(vars)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_tutorial() {
        let config = Config::from_vars(&Vars::from_pairs(&[])).unwrap();
        assert_eq!(config.port, 5001);
        assert_eq!(config.pubsub_name, "pubsub");
        assert_eq!(config.state_store_name, "statestore");
    }

    #[test]
    fn component_names_can_be_overridden_and_are_checked() {
        let config =
            Config::from_vars(&Vars::from_pairs(&[(env::PUBSUB_NAME, "pubsub-inventory")]))
                .unwrap();
        assert_eq!(config.pubsub_name, "pubsub-inventory");
        let err =
            Config::from_vars(&Vars::from_pairs(&[(env::STATE_STORE_NAME, "a/b")])).unwrap_err();
        assert_eq!(err.name, env::STATE_STORE_NAME);
    }
}
