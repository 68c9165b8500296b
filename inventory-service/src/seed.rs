//! `INITIAL_STOCK` at start-up: items that have no document yet are created with the stock
//! given; items that exist keep theirs.
//!
//! Create-only is the point: a restart, a new revision or a second replica starts with the same
//! `INITIAL_STOCK`, and none of them may reset stock that orders have already taken from. It
//! runs after the sidecar is ready and before the app listens, so no delivery can reach this
//! replica first. (A delivery to another replica may: whichever writes first wins, and the
//! other sees the item as existing.) On Azure it is the way stock gets set at all, because
//! `POST /inventory/{itemId}` is sidecar-only there and no one outside has the sidecar's token.

use std::time::{Duration, Instant};

use service_kit::{DaprClient, DaprError, TraceContext};

use crate::config::INITIAL_STOCK;
use crate::store::{Inventory, Seeded, StoreError};

/// How long a failing state store is retried at start-up before the service gives up and exits.
pub const SEED_TIMEOUT: Duration = Duration::from_secs(60);
/// First pause between two attempts; it doubles up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Longest pause between two attempts.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// Why the initial stock could not be set.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The sidecar did not become ready.
    #[error("setting {INITIAL_STOCK} needs the Dapr sidecar: {0}")]
    Sidecar(#[source] DaprError),
    /// The state store kept failing.
    #[error(
        "setting {INITIAL_STOCK} failed: the state store still failed for item {item_id} after \
         {waited:?} of retries: {source}"
    )]
    Store {
        /// The item being created.
        item_id: String,
        /// How long the attempts went on.
        waited: Duration,
        /// The last failure.
        #[source]
        source: StoreError,
    },
}

/// Waits for the sidecar, then creates each of `items` that does not exist yet, logging one
/// line per item. A failing state store is retried, with growing pauses, for at most
/// `give_up_after` in all.
pub async fn seed_initial_stock(
    dapr: &DaprClient,
    inventory: &Inventory,
    items: &[(String, u64)],
    give_up_after: Duration,
) -> Result<(), SeedError> {
    if items.is_empty() {
        return Ok(());
    }
    tracing::info!(
        sidecar = dapr.base_url(),
        "waiting for the Dapr sidecar to set {INITIAL_STOCK}"
    );
    dapr.wait_until_ready().await.map_err(SeedError::Sidecar)?;
    let started = Instant::now();
    let trace = TraceContext::default();
    for (item_id, quantity) in items {
        let mut pause = FIRST_RETRY_PAUSE;
        let seeded = loop {
            match inventory.seed(item_id, *quantity, &trace).await {
                Ok(seeded) => break seeded,
                Err(source) if started.elapsed() + pause > give_up_after => {
                    return Err(SeedError::Store {
                        item_id: item_id.clone(),
                        waited: started.elapsed(),
                        source,
                    });
                }
                Err(e) => {
                    tracing::warn!(
                        "setting {INITIAL_STOCK} for item {item_id} failed, trying again in \
                         {pause:?}: {e}"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
            }
        };
        match seeded {
            Seeded::Created => {
                tracing::info!("Initial stock set. itemId={item_id}, quantity={quantity}");
            }
            Seeded::Kept(current) => tracing::info!(
                "Initial stock kept. itemId={item_id}, quantity={current} \
                 ({INITIAL_STOCK}={quantity} applies only to a new item)"
            ),
        }
    }
    Ok(())
}
