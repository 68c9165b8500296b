//! Configuration, read once from the environment at start-up.

use service_kit::env::{self, ConfigError, Vars};
use service_kit::http::HttpConfig;
use service_kit::runtime::Threads;
use service_kit::telemetry::LogFormat;

/// Port the tutorial's callee listens on.
pub const DEFAULT_PORT: u16 = 5001;

/// Everything `order-processor` reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `APP_PORT`, default 5001.
    pub port: u16,
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
            log_format: LogFormat::from_vars(vars)?,
            threads: Threads::from_vars(vars)?,
            http: HttpConfig::from_vars(vars)?,
        })
    }
}
