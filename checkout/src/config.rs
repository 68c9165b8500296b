//! What `checkout` reads from the environment beyond what every service reads
//! ([`service_kit::ServiceConfig`]; its `APP_PORT` has no default: when set, `GET /healthz` is
//! served there for probes, and by default, as in the tutorial, nothing listens), once at
//! start-up.

use std::num::NonZeroU64;
use std::time::Duration;

use service_kit::env::{ConfigError, Vars};

/// App id of the service to call.
pub const CHECKOUT_TARGET_APP_ID: &str = "CHECKOUT_TARGET_APP_ID";
/// The tutorial's callee.
pub const DEFAULT_TARGET_APP_ID: &str = "order-processor";
/// Orders per round (the tutorial sends 20).
pub const CHECKOUT_ORDERS_PER_ROUND: &str = "CHECKOUT_ORDERS_PER_ROUND";
/// Rounds to run before exiting; 0 (the default) runs forever, like the tutorial.
pub const CHECKOUT_ROUNDS: &str = "CHECKOUT_ROUNDS";
/// Milliseconds between two orders (the tutorial waits 1 s).
pub const CHECKOUT_INTERVAL_MS: &str = "CHECKOUT_INTERVAL_MS";
/// Milliseconds between two rounds (the tutorial's Node.js caller waits 20 s).
pub const CHECKOUT_PAUSE_MS: &str = "CHECKOUT_PAUSE_MS";
/// Seconds to wait, before the first order, for the target to answer through Dapr; 0 skips
/// the wait.
pub const CHECKOUT_TARGET_READY_TIMEOUT: &str = "CHECKOUT_TARGET_READY_TIMEOUT";
/// `dapr run -f .` starts the apps about a second apart, and the callee compiles and binds
/// after that; a minute covers a warm start with a wide margin, like the sidecar wait.
pub const DEFAULT_TARGET_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What the order loop does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopConfig {
    /// `CHECKOUT_TARGET_APP_ID`, default `order-processor`.
    pub target_app_id: String,
    /// `CHECKOUT_ORDERS_PER_ROUND`, default 20: order ids run from 1 to this.
    pub orders_per_round: NonZeroU64,
    /// `CHECKOUT_ROUNDS`: `None` (0, the default) loops forever.
    pub rounds: Option<NonZeroU64>,
    /// `CHECKOUT_INTERVAL_MS`, default 1000.
    pub interval: Duration,
    /// `CHECKOUT_PAUSE_MS`, default 20000.
    pub pause: Duration,
    /// `CHECKOUT_TARGET_READY_TIMEOUT`, default 60 s: how long [`crate::Checkout::wait_for_target`]
    /// waits before the first order.
    pub target_ready_timeout: Duration,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            target_app_id: DEFAULT_TARGET_APP_ID.to_owned(),
            orders_per_round: NonZeroU64::MIN.saturating_add(19),
            rounds: None,
            interval: Duration::from_secs(1),
            pause: Duration::from_secs(20),
            target_ready_timeout: DEFAULT_TARGET_READY_TIMEOUT,
        }
    }
}

impl LoopConfig {
    /// Reads the configuration from `vars`.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            target_app_id: vars.identifier_or(CHECKOUT_TARGET_APP_ID, DEFAULT_TARGET_APP_ID)?,
            orders_per_round: vars
                .parse_or(CHECKOUT_ORDERS_PER_ROUND, defaults.orders_per_round)?,
            rounds: NonZeroU64::new(vars.parse_or(CHECKOUT_ROUNDS, 0u64)?),
            interval: vars.millis_or(CHECKOUT_INTERVAL_MS, defaults.interval)?,
            pause: vars.millis_or(CHECKOUT_PAUSE_MS, defaults.pause)?,
            target_ready_timeout: vars
                .seconds_or(CHECKOUT_TARGET_READY_TIMEOUT, defaults.target_ready_timeout)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use service_kit::ServiceConfig;
    use service_kit::env;

    #[test]
    fn defaults_match_the_tutorial() {
        let orders = LoopConfig::from_vars(&Vars::from_pairs(&[])).unwrap();
        assert_eq!(orders, LoopConfig::default());
        assert_eq!(orders.orders_per_round.get(), 20);
        assert_eq!(orders.rounds, None);
        assert_eq!(orders.target_ready_timeout, Duration::from_secs(60));
        let common = ServiceConfig::from_vars(&Vars::from_pairs(&[]), None).unwrap();
        assert_eq!(common.port, None);
        assert_eq!(common.dapr.base_url, "http://127.0.0.1:3500");
    }

    #[test]
    fn one_round_can_be_asked_for() {
        let orders = LoopConfig::from_vars(&Vars::from_pairs(&[
            (CHECKOUT_ROUNDS, "1"),
            (CHECKOUT_INTERVAL_MS, "10"),
            (CHECKOUT_PAUSE_MS, "0"),
            (CHECKOUT_TARGET_APP_ID, "orders"),
            (CHECKOUT_TARGET_READY_TIMEOUT, "0"),
        ]))
        .unwrap();
        assert_eq!(orders.target_ready_timeout, Duration::ZERO);
        assert_eq!(orders.rounds.map(NonZeroU64::get), Some(1));
        assert_eq!(orders.interval, Duration::from_millis(10));
        assert_eq!(orders.target_app_id, "orders");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            (CHECKOUT_ORDERS_PER_ROUND, "0"),
            (CHECKOUT_ROUNDS, "-1"),
            (CHECKOUT_INTERVAL_MS, "soon"),
            (CHECKOUT_TARGET_READY_TIMEOUT, "a minute"),
            (CHECKOUT_TARGET_APP_ID, "order processor"),
            (env::APP_PORT, "70000"),
        ] {
            let vars = Vars::from_pairs(&[(name, value)]);
            let err = LoopConfig::from_vars(&vars)
                .and_then(|_| ServiceConfig::from_vars(&vars, None))
                .unwrap_err();
            assert_eq!(err.name, name, "{name}={value}: {err}");
        }
    }
}
