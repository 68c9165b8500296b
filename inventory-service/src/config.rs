//! What `inventory-service` reads from the environment beyond what every service reads
//! ([`service_kit::ServiceConfig`]), once at start-up.

use std::time::Duration;

use service_kit::env::{self, ConfigError, Vars};
use service_kit::input;

use crate::store::{DEFAULT_OUTCOME_TTL, MAX_STOCK};

/// Stock to give items that do not exist yet, at start-up: `item1=100` or `item1=100,item2=5`.
/// An item that already has a document keeps its stock (create-only), so restarts and extra
/// replicas never reset it. Ids are checked like `itemId`, quantities like `POST
/// /inventory/{itemId}` (0 to [`MAX_STOCK`]).
pub const INITIAL_STOCK: &str = "INITIAL_STOCK";
/// Seconds an order outcome moved to its own key (`order:{itemId}:{orderId}`) is kept before
/// the state store deletes it; default 2592000 (30 days). It must outlive every redelivery of
/// the order (Azure Service Bus keeps a message up to its 14-day time-to-live): once the
/// outcome has expired, a late duplicate of the order would be applied a second time.
pub const OUTCOME_TTL_SECONDS: &str = "OUTCOME_TTL_SECONDS";
/// Largest `OUTCOME_TTL_SECONDS`: Dapr's state stores and Cosmos DB take a 32-bit TTL.
pub const MAX_OUTCOME_TTL_SECONDS: u64 = i32::MAX as u64;

/// `true` (default) or `false`: whether Dapr delivers `OrderPlaced` events in batches (Dapr's
/// bulk subscribe, route `orders/bulk`). Each batch costs one delivery, and the orders of one
/// item in it one read and one write of the item's state. `false` subscribes as the tutorial
/// does, one event per delivery on `orders`.
pub const BULK_SUBSCRIBE: &str = "BULK_SUBSCRIBE";
/// Most events in one batch (`maxMessagesCount`), 1 to [`MAX_BULK_MESSAGES`]; default
/// [`DEFAULT_BULK_MAX_MESSAGES`]. With Redis, a batch holds at most as many events as the pub/sub
/// component's `concurrency`.
pub const BULK_MAX_MESSAGES: &str = "BULK_MAX_MESSAGES";
/// Longest wait, in milliseconds, for a batch to fill before it is delivered anyway
/// (`maxAwaitDurationMs`), 1 to [`MAX_BULK_AWAIT_MS`]; default [`DEFAULT_BULK_MAX_AWAIT_MS`].
/// With Redis, an event that arrives alone waits for the next tick of this interval, so it adds
/// to every order's latency at low rates.
pub const BULK_MAX_AWAIT_MS: &str = "BULK_MAX_AWAIT_MS";
/// Largest `BULK_MAX_MESSAGES`.
pub const MAX_BULK_MESSAGES: u32 = 1000;
/// Largest `BULK_MAX_AWAIT_MS`.
pub const MAX_BULK_AWAIT_MS: u32 = 60_000;
/// Default `BULK_MAX_MESSAGES`.
pub const DEFAULT_BULK_MAX_MESSAGES: u32 = 300;
/// Default `BULK_MAX_AWAIT_MS`.
pub const DEFAULT_BULK_MAX_AWAIT_MS: u32 = 1;

/// Port the tutorial's inventory service listens on.
pub const DEFAULT_PORT: u16 = 5001;
/// Pub/sub component the tutorial subscribes through.
pub const DEFAULT_PUBSUB_NAME: &str = "pubsub";
/// State store component the tutorial keeps stock in.
pub const DEFAULT_STATE_STORE_NAME: &str = "statestore";
/// Where Dapr sends events this service drops as malformed; this service subscribes to it too,
/// to record them where an operator can read them (`GET /deadletters`).
pub const DEAD_LETTER_TOPIC: &str = "OrderPlaced-deadletter";

/// `inventory-service`'s own settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PUBSUB_NAME`, default `pubsub`.
    pub pubsub_name: String,
    /// `STATE_STORE_NAME`, default `statestore`.
    pub state_store_name: String,
    /// `INITIAL_STOCK`: items to create at start-up, in the order given; empty when unset.
    pub initial_stock: Vec<(String, u64)>,
    /// `OUTCOME_TTL_SECONDS`, default 30 days.
    pub outcome_ttl: Duration,
    /// How batches form; `None` when `BULK_SUBSCRIBE=false`.
    pub bulk: Option<Bulk>,
}

/// The `bulkSubscribe` settings of the `OrderPlaced` subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bulk {
    /// `BULK_MAX_MESSAGES`.
    pub max_messages: u32,
    /// `BULK_MAX_AWAIT_MS`.
    pub max_await_ms: u32,
}

impl Default for Bulk {
    fn default() -> Self {
        Self {
            max_messages: DEFAULT_BULK_MAX_MESSAGES,
            max_await_ms: DEFAULT_BULK_MAX_AWAIT_MS,
        }
    }
}

impl Config {
    /// Reads the configuration from `vars`.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            pubsub_name: vars.identifier_or(env::PUBSUB_NAME, DEFAULT_PUBSUB_NAME)?,
            state_store_name: vars
                .identifier_or(env::STATE_STORE_NAME, DEFAULT_STATE_STORE_NAME)?,
            initial_stock: match vars.get(INITIAL_STOCK) {
                Some(raw) => parse_initial_stock(&raw)?,
                None => Vec::new(),
            },
            outcome_ttl: outcome_ttl(vars)?,
            bulk: bulk(vars)?,
        })
    }
}

/// `item1=100,item2=5` as `[("item1", 100), ("item2", 5)]`.
fn parse_initial_stock(raw: &str) -> Result<Vec<(String, u64)>, ConfigError> {
    let bad = |problem: String| ConfigError::new(INITIAL_STOCK, raw, problem);
    let mut items: Vec<(String, u64)> = Vec::new();
    for entry in raw.split(',').map(str::trim) {
        let Some((item, quantity)) = entry.split_once('=') else {
            return Err(bad(format!(
                "expected itemId=quantity[,itemId=quantity...], got {entry:?}"
            )));
        };
        let (item, quantity) = (item.trim(), quantity.trim());
        input::check_identifier("itemId", item).map_err(|e| bad(e.message().to_owned()))?;
        let Some(quantity) = quantity.parse::<u64>().ok().filter(|q| *q <= MAX_STOCK) else {
            return Err(bad(format!(
                "the quantity of {item} must be a whole number from 0 to {MAX_STOCK}, got \
                 {quantity:?}"
            )));
        };
        if items.iter().any(|(known, _)| known == item) {
            return Err(bad(format!("{item} is given more than once")));
        }
        items.push((item.to_owned(), quantity));
    }
    Ok(items)
}

fn outcome_ttl(vars: &Vars) -> Result<Duration, ConfigError> {
    let ttl = vars.seconds_or(OUTCOME_TTL_SECONDS, DEFAULT_OUTCOME_TTL)?;
    if ttl.is_zero() || ttl.as_secs() > MAX_OUTCOME_TTL_SECONDS {
        return Err(ConfigError::new(
            OUTCOME_TTL_SECONDS,
            ttl.as_secs().to_string(),
            format!("must be from 1 to {MAX_OUTCOME_TTL_SECONDS} seconds"),
        ));
    }
    Ok(ttl)
}

fn bulk(vars: &Vars) -> Result<Option<Bulk>, ConfigError> {
    if !vars.bool_or(BULK_SUBSCRIBE, true)? {
        return Ok(None);
    }
    let within = |name: &'static str, default: u32, max: u32| {
        let value = vars.parse_or::<u32>(name, default)?;
        if value == 0 || value > max {
            return Err(ConfigError::new(
                name,
                value.to_string(),
                format!("must be from 1 to {max}"),
            ));
        }
        Ok(value)
    };
    Ok(Some(Bulk {
        max_messages: within(
            BULK_MAX_MESSAGES,
            DEFAULT_BULK_MAX_MESSAGES,
            MAX_BULK_MESSAGES,
        )?,
        max_await_ms: within(
            BULK_MAX_AWAIT_MS,
            DEFAULT_BULK_MAX_AWAIT_MS,
            MAX_BULK_AWAIT_MS,
        )?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use service_kit::ServiceConfig;

    #[test]
    fn defaults_match_the_tutorial_no_stock_is_seeded_and_outcomes_are_kept_30_days() {
        let config = Config::from_vars(&Vars::from_pairs(&[])).unwrap();
        let common = ServiceConfig::from_vars(&Vars::from_pairs(&[]), Some(DEFAULT_PORT)).unwrap();
        assert_eq!(common.port, Some(5001));
        assert_eq!(config.pubsub_name, "pubsub");
        assert_eq!(config.state_store_name, "statestore");
        assert!(config.initial_stock.is_empty());
        assert_eq!(config.outcome_ttl, Duration::from_secs(2_592_000));
    }

    #[test]
    fn initial_stock_is_a_list_of_items_and_quantities() {
        let parse = |raw| {
            Config::from_vars(&Vars::from_pairs(&[(INITIAL_STOCK, raw)]))
                .unwrap()
                .initial_stock
        };
        assert_eq!(parse("item1=100"), [("item1".to_owned(), 100)]);
        assert_eq!(
            parse(" item1=100 , item-2 = 0,x=1000000000"),
            [
                ("item1".to_owned(), 100),
                ("item-2".to_owned(), 0),
                ("x".to_owned(), 1_000_000_000)
            ]
        );
    }

    #[test]
    fn a_bad_initial_stock_names_the_variable_and_the_problem() {
        for (raw, problem) in [
            ("item1", "expected itemId=quantity"),
            ("item1=100,", "expected itemId=quantity"),
            ("=5", "itemId must not be empty"),
            ("item 1=5", "may contain only"),
            ("item1=-1", "must be a whole number from 0 to 1000000000"),
            (
                "item1=1000000001",
                "must be a whole number from 0 to 1000000000",
            ),
            ("item1=ten", "must be a whole number"),
            ("item1=1,item1=2", "item1 is given more than once"),
        ] {
            let err = Config::from_vars(&Vars::from_pairs(&[(INITIAL_STOCK, raw)])).unwrap_err();
            assert_eq!(err.name, INITIAL_STOCK, "{raw}");
            assert!(err.to_string().contains(problem), "{raw}: {err}");
        }
    }

    #[test]
    fn the_outcome_ttl_is_whole_seconds_from_1_to_i32_max() {
        let ttl = |raw| Config::from_vars(&Vars::from_pairs(&[(OUTCOME_TTL_SECONDS, raw)]));
        assert_eq!(ttl("60").unwrap().outcome_ttl, Duration::from_secs(60));
        assert_eq!(
            ttl("2147483647").unwrap().outcome_ttl.as_secs(),
            2_147_483_647
        );
        for bad in ["0", "-1", "1.5", "30d", "2147483648"] {
            let err = ttl(bad).unwrap_err();
            assert_eq!(err.name, OUTCOME_TTL_SECONDS, "{bad}");
        }
    }

    #[test]
    fn events_come_in_batches_of_up_to_300_within_1_ms_unless_turned_off() {
        let bulk = |pairs: &[(&str, &str)]| Config::from_vars(&Vars::from_pairs(pairs));
        assert_eq!(
            bulk(&[]).unwrap().bulk,
            Some(Bulk {
                max_messages: 300,
                max_await_ms: 1
            })
        );
        assert_eq!(bulk(&[(BULK_SUBSCRIBE, "false")]).unwrap().bulk, None);
        assert_eq!(
            bulk(&[(BULK_MAX_MESSAGES, "10"), (BULK_MAX_AWAIT_MS, "50")])
                .unwrap()
                .bulk,
            Some(Bulk {
                max_messages: 10,
                max_await_ms: 50
            })
        );
        for (name, bad) in [
            (BULK_SUBSCRIBE, "yes"),
            (BULK_MAX_MESSAGES, "0"),
            (BULK_MAX_MESSAGES, "1001"),
            (BULK_MAX_MESSAGES, "-1"),
            (BULK_MAX_AWAIT_MS, "0"),
            (BULK_MAX_AWAIT_MS, "1.5"),
            (BULK_MAX_AWAIT_MS, "60001"),
        ] {
            let err = bulk(&[(name, bad)]).unwrap_err();
            assert_eq!(err.name, name, "{bad}");
        }
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
