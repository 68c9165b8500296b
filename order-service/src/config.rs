//! Configuration, read once from the environment at start-up.

use service_kit::dapr::DaprConfig;
use service_kit::env::{self, ConfigError, Vars};
use service_kit::http::HttpConfig;
use service_kit::runtime::Threads;
use service_kit::telemetry::LogFormat;

/// Port the tutorial's order service listens on.
pub const DEFAULT_PORT: u16 = 5002;
/// Pub/sub component the tutorial publishes through.
pub const DEFAULT_PUBSUB_NAME: &str = "pubsub";

/// Everything `order-service` reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `APP_PORT`, default 5002.
    pub port: u16,
    /// `PUBSUB_NAME`, default `pubsub`.
    pub pubsub_name: String,
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
        assert_eq!(config.port, 5002);
        assert_eq!(config.pubsub_name, "pubsub");
    }

    #[test]
    fn a_bad_component_name_is_refused_by_variable() {
        let err =
            Config::from_vars(&Vars::from_pairs(&[(env::PUBSUB_NAME, "pub sub")])).unwrap_err();
        assert_eq!(err.name, env::PUBSUB_NAME);
    }
}
