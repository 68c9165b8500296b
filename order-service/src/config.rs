//! What `order-service` reads from the environment beyond what every service reads
//! ([`service_kit::ServiceConfig`]), once at start-up.

use service_kit::env::{self, ConfigError, Vars};

/// Port the tutorial's order service listens on.
pub const DEFAULT_PORT: u16 = 5002;
/// Pub/sub component the tutorial publishes through.
pub const DEFAULT_PUBSUB_NAME: &str = "pubsub";

/// `order-service`'s own settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PUBSUB_NAME`, default `pubsub`.
    pub pubsub_name: String,
}

impl Config {
    /// Reads the configuration from `vars`.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            pubsub_name: vars.identifier_or(env::PUBSUB_NAME, DEFAULT_PUBSUB_NAME)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use service_kit::ServiceConfig;

    #[test]
    fn defaults_match_the_tutorial_and_a_bad_component_name_is_refused_by_variable() {
        let vars = Vars::from_pairs(&[]);
        let common = ServiceConfig::from_vars(&vars, Some(DEFAULT_PORT)).unwrap();
        assert_eq!(common.port, Some(5002));
        assert_eq!(Config::from_vars(&vars).unwrap().pubsub_name, "pubsub");
        let bad = Vars::from_pairs(&[(env::PUBSUB_NAME, "pub sub")]);
        assert_eq!(Config::from_vars(&bad).unwrap_err().name, env::PUBSUB_NAME);
    }
}
