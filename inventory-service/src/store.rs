//! Stock, order outcomes and dead letters in the Dapr state store, updated with optimistic
//! concurrency so that concurrent, repeated and retried events leave stock exact.
//!
//! # Layout
//! Each item is one document, key `item:{itemId}`: its stock and the outcomes of its most recent
//! orders (up to [`RECENT_OUTCOMES`]). When a new outcome would overflow the list, the older ones
//! are first written to their own keys, `order:{itemId}:{orderId}`, in one state transaction
//! (one per 100 keys, Cosmos DB's limit), and only then dropped from the document. So every
//! decided order is, at every moment, in its item's document, in its own key, or in both. (The
//! writes need not be atomic together: each key is a final fact, so a partial write that ends
//! in a retry leaves nothing wrong behind. A transaction is used because it is one round trip
//! to the store, not because it is atomic.)
//!
//! Applying an order reads the document (with its ETag), then, unless the order is in the
//! document, its own key; a known order is a duplicate and changes nothing. Otherwise the new
//! stock and the order's outcome are written together, as one document, with the ETag that was
//! read (`first-write`): if anyone wrote the item in between, the write is refused and the
//! attempt starts over. Reading the document before the order's key matters: whoever moves an
//! outcome out of the document writes its key first, so a reader that misses the outcome in the
//! document will find the key.
//!
//! # Batches
//! [`Inventory::apply_all`] applies several orders of one item (a bulk delivery's) the same way
//! in one attempt: one read of the document, then one bulk read of the orders' own keys that
//! are not in it (one plain read for one order, so a single delivery costs what it always did),
//! each order decided in turn against the stock the ones before it left, and one conditional
//! write of the document with all the new outcomes. The write is all or nothing: if it is
//! refused, none of the orders is decided. A document may hold more than [`RECENT_OUTCOMES`]
//! outcomes after a batch; the next write moves them all out. A bulk read need not read its
//! keys in order, but it is made after the document was read, which is the order that matters.
//!
//! # Deliveries that wait
//! One instance applies one item's orders one write at a time (a lock per stripe of items), so
//! single deliveries (`BULK_SUBSCRIBE=false`) of an item that arrive while it is being written
//! would each wait, then each pay a read and a write. Instead, [`Inventory::apply`] puts its
//! order in the stripe's waiting list before it takes the lock, and whoever gets the lock takes
//! every waiting order of the item and applies them together, as a batch is applied, answering
//! each before it lets go of the lock; a call whose order was taken that way returns with its
//! answer, without waiting for the lock any longer. At a low rate nobody waits and a delivery
//! costs what it always did. If the shared write fails, every order of it is answered with that
//! error, so each delivery is retried; if the request doing the write is dropped before it is
//! done, the others are answered [`StoreError::Abandoned`] and retried too, and a redelivery of
//! an order that was written after all is found to be a duplicate. An order whose own request
//! is dropped while it still waits is taken off the list (by the next holder that looks), not
//! applied: Dapr delivers it again. One dropped after a holder took it is applied with nobody
//! to hear the answer, and its redelivery is found to be a duplicate.
//!
//! # Reading in parallel
//! Every write of a document gives it a new random `writeId`, and an instance remembers, per
//! item, the `writeId` it last wrote or read. When it knows one, it reads the document and the
//! orders' own keys at the same time instead of one after the other: one round trip fewer per
//! delivery. That is safe only if nobody wrote the document since: if the document read shows
//! the remembered `writeId`, nothing changed it between the moment it was remembered and that
//! read, and the keys were read within that time, so no outcome moved out of the document
//! unseen. Otherwise (another replica wrote the item) the keys are read again, after the
//! document, as above. `writeId` 0 (a created or older document) is never trusted.
//!
//! # Why one document and not a state transaction
//! The stock change and the "already applied" record must be written atomically. With Redis,
//! Dapr's transaction API cannot do that under optimistic concurrency: `state.redis` runs a
//! transaction as `MULTI`/`EXEC` with one script per key, and Redis does not roll back, so an ETag
//! mismatch on the stock key still lets the record key be written (components-contrib
//! `state/redis/redis.go`, `Multi`, which itself warns that "Redis does not support transaction
//! rollbacks"). A single-key write with an ETag is atomic on every store.
//!
//! # Cosmos DB
//! Every key of an item is read and written with `metadata.partitionKey = itemId`, so an item's
//! keys share one partition on Azure Cosmos DB (where a plain get would otherwise look in the
//! partition named after the key). Dapr reads more than one key at once with a query across
//! partitions (`ARRAY_CONTAINS` on the ids; components-contrib `state/azure/cosmosdb`,
//! `getMulti`), so a bulk read is made only for a batch's keys, never for the document and one
//! key together, which two point reads do for fewer request units.
//!
//! Everything above assumes that a read sees every write acknowledged before it began. Dapr's
//! Cosmos DB store sends no session token, so on an account with the default Session
//! consistency a read is served by one replica and can miss such a write: a redelivered order
//! whose outcome had just moved to its own key would then be applied again. The account is
//! therefore created with Strong consistency (`infra/modules/cosmos.bicep`, checked by
//! `infra/tests/test_consistency.py`). No read here passes Dapr's `consistency` option: the
//! Cosmos DB store sends `strong` as Session, a single-replica read again.
//!
//! # Creating a document
//! `first-write` without an ETag means "create only" on both stores, but a lost race shows up
//! differently: 409 from Cosmos DB, a plain 500 from Redis (its script fails with no ETag to
//! blame). A failed create is therefore checked by reading the key again. [`Inventory::seed`]
//! (the `INITIAL_STOCK` of start-up) only ever creates, so it can never reset a live item's
//! stock, whichever replica starts when.
//!
//! # Expiry
//! Outcomes moved to their own keys are written with Dapr's `ttlInSeconds` metadata (default
//! [`DEFAULT_OUTCOME_TTL`], 30 days), so that state does not grow without bound. The TTL must
//! outlive every redelivery of an order: once an order's outcome has expired, a late duplicate
//! of it would be applied a second time. (Azure Service Bus keeps a message for up to its
//! 14-day time-to-live.) Item documents and the dead-letter record never expire.

use std::collections::hash_map::{DefaultHasher, RandomState};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use service_kit::dapr::{Concurrency, StateWrite, WriteOptions};
use service_kit::events::OrderPlaced;
use service_kit::{DaprClient, DaprError, TraceContext};
use tokio::sync::{Mutex, oneshot};

/// Outcomes an item's document holds at most. The order after that moves all but its own
/// outcome to their own keys in one write: one sidecar call per this many orders, where moving
/// the oldest one at a time cost a call per order. Every apply reads, parses, serializes and
/// writes the whole document, so the list stays short.
pub const RECENT_OUTCOMES: usize = 8;
/// Most operations of one state transaction: Cosmos DB's limit, which daprd enforces.
const MAX_TRANSACTION_OPERATIONS: usize = 100;
/// Dead letters kept in the dead-letter document (the count covers all of them).
pub const RECENT_DEAD_LETTERS: usize = 100;
/// Largest stock an item may have.
pub const MAX_STOCK: u64 = 1_000_000_000;
/// Writes attempted before giving up on a contended item.
pub const MAX_ATTEMPTS: u32 = 10;
/// How long an outcome moved to its own key is kept: 30 days, longer than any redelivery of its
/// order (see the module docs).
pub const DEFAULT_OUTCOME_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Key of the dead-letter document.
pub const DEAD_LETTERS_KEY: &str = "deadletters";
/// Locks striping items, so one instance never races itself (ETags still guard other instances).
const LOCK_STRIPES: usize = 64;
/// Items whose last `writeId` a stripe remembers; past that it forgets them all and relearns.
const REMEMBERED_PER_STRIPE: usize = 1024;
/// Longest payload kept for a dead letter.
const MAX_DEAD_LETTER_PAYLOAD: usize = 2048;

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Stock was reduced by the order's quantity.
    Applied,
    /// Stock was left alone; `reason` says why.
    Rejected,
}

/// The recorded outcome of one order for one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The order.
    pub order_id: String,
    /// The item.
    pub item_id: String,
    /// Quantity ordered.
    pub quantity: u64,
    /// Applied or rejected.
    pub status: Status,
    /// Stock right after this order was decided.
    pub remaining: u64,
    /// Why a rejected order was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The CloudEvent id of the delivery that decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// The stored form of an item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemDoc {
    /// Units in stock.
    pub quantity: u64,
    /// Outcomes of the latest orders, oldest first.
    #[serde(default)]
    pub recent: VecDeque<Outcome>,
    /// New and random on every write of an order's outcome or of the stock; 0 when created
    /// (see "Reading in parallel" in the module docs).
    #[serde(default, rename = "writeId", skip_serializing_if = "is_zero")]
    pub write_id: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Largest `writeId`: 2^53 - 1. Stores and sidecars may hold a JSON number as a double (daprd
/// did here, with Redis), which is exact only up to 2^53; a larger id came back changed, and no
/// read was ever trusted.
const MAX_WRITE_ID: u64 = (1 << 53) - 1;

/// A fresh `writeId`: random, from 1 to [`MAX_WRITE_ID`].
fn new_write_id() -> u64 {
    (RandomState::new().hash_one(SystemTime::now()) & MAX_WRITE_ID).max(1)
}

/// Per item of a stripe, the `writeId` its document had when this instance last wrote or read
/// it under the stripe's lock.
type LastSeen = HashMap<String, u64>;

/// What [`Inventory::apply`] answers an order that waited for its item.
type Answer = Result<Decided, Arc<StoreError>>;

/// An order of a single delivery, waiting for its stripe's lock; see "Deliveries that wait".
#[derive(Debug)]
struct Waiting {
    order: OrderPlaced,
    event_id: Option<String>,
    answer: oneshot::Sender<Answer>,
}

/// One lock of the stripes, with what it guards.
#[derive(Debug)]
struct Stripe {
    seen: Mutex<LastSeen>,
    /// Orders that will be applied by the next [`Inventory::apply`] call to hold `seen` for
    /// their item. Held only to push or take, never across an await.
    waiting: std::sync::Mutex<Vec<Waiting>>,
}

impl Stripe {
    /// Orders of `item_id` now waiting, oldest first. Orders whose delivery stopped waiting
    /// (its request was dropped) are dropped too, of every item: nobody would hear the answer,
    /// Dapr delivers them again, and until then they are not applied, as before they waited.
    fn take_waiting(&self, item_id: &str) -> Vec<Waiting> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.retain(|w| !w.answer.is_closed());
        waiting
            .extract_if(.., |w| w.order.item_id == item_id)
            .collect()
    }
}

/// The result of [`Inventory::seed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    /// The item did not exist; it was created with the given stock.
    Created,
    /// The item existed (or another writer created it first) and was left alone; its stock.
    Kept(u64),
}

/// The result of [`Inventory::apply`]: the order's outcome (applied or rejected), and whether it
/// had been decided before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The order's outcome: decided now, or earlier for a duplicate.
    pub outcome: Outcome,
    /// Whether the order had been decided before (a redelivery or a republish).
    pub duplicate: bool,
}

/// An event Dapr dead-lettered, as recorded for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The CloudEvent id, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Why it could not be applied.
    pub reason: String,
    /// The start of the event as delivered.
    pub payload: String,
    /// When it was recorded, in seconds since the Unix epoch.
    pub received_at: u64,
}

impl DeadLetter {
    /// A dead letter for `payload`, recorded now.
    pub fn new(event_id: Option<String>, reason: String, payload: &[u8]) -> Self {
        let text = String::from_utf8_lossy(payload);
        let payload = match text.char_indices().nth(MAX_DEAD_LETTER_PAYLOAD) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.into_owned(),
        };
        Self {
            event_id,
            reason,
            payload,
            received_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// The stored form of the dead-letter record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetters {
    /// Dead letters recorded since the store was created.
    pub count: u64,
    /// The latest ones, oldest first.
    #[serde(default)]
    pub recent: VecDeque<DeadLetter>,
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The sidecar or the state store failed, or answered something unreadable.
    #[error("reading or writing state failed: {0}")]
    StateStore(#[from] DaprError),
    /// Other writers changed the key on every attempt.
    #[error("{attempts} attempts to update {key} lost to concurrent writers")]
    Contention {
        /// The key.
        key: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The write that was to apply this order with others failed like this.
    #[error(transparent)]
    Shared(Arc<StoreError>),
    /// The delivery applying this order with others stopped before it was done (its request
    /// was dropped): whether the write happened is unknown, and a redelivery will tell.
    #[error("the delivery applying this order with others stopped before it was done")]
    Abandoned,
}

impl StoreError {
    /// Whether other writers, not a failure, kept the update from happening.
    pub fn is_contention(&self) -> bool {
        match self {
            Self::Contention { .. } => true,
            Self::Shared(e) => e.is_contention(),
            Self::StateStore(_) | Self::Abandoned => false,
        }
    }
}

/// What a change to a document decided, and the answer to give.
enum Change<D, T> {
    /// Write this document.
    Write(D, T),
    /// Leave the stored document as it is.
    Keep(T),
}

/// Whether a conditional write went through.
enum Saved {
    Yes,
    Conflict,
}

/// Inventory state in one Dapr state store.
#[derive(Debug, Clone)]
pub struct Inventory {
    dapr: DaprClient,
    store: Arc<str>,
    locks: Arc<[Stripe]>,
    /// `ttlInSeconds` of outcomes moved to their own keys, formatted once.
    outcome_ttl: Arc<str>,
}

fn item_key(item_id: &str) -> String {
    format!("item:{item_id}")
}

fn order_key(item_id: &str, order_id: &str) -> String {
    format!("order:{item_id}:{order_id}")
}

impl Inventory {
    /// Inventory kept in state store `store` through `dapr`, outcomes kept for
    /// [`DEFAULT_OUTCOME_TTL`].
    pub fn new(dapr: DaprClient, store: &str) -> Self {
        Self {
            dapr,
            store: store.into(),
            locks: (0..LOCK_STRIPES)
                .map(|_| Stripe {
                    seen: Mutex::new(LastSeen::new()),
                    waiting: std::sync::Mutex::new(Vec::new()),
                })
                .collect(),
            outcome_ttl: DEFAULT_OUTCOME_TTL.as_secs().to_string().into(),
        }
    }

    /// The same inventory with outcomes moved to their own keys kept for `ttl` (whole seconds).
    pub fn with_outcome_ttl(mut self, ttl: Duration) -> Self {
        self.outcome_ttl = ttl.as_secs().to_string().into();
        self
    }

    fn stripe_for(&self, item_id: &str) -> &Stripe {
        let mut hasher = DefaultHasher::new();
        item_id.hash(&mut hasher);
        // The modulo keeps the index below LOCK_STRIPES, which fits in usize.
        let stripe = (hasher.finish() % LOCK_STRIPES as u64) as usize;
        &self.locks[stripe]
    }

    fn lock_for(&self, item_id: &str) -> &Mutex<LastSeen> {
        &self.stripe_for(item_id).seen
    }

    /// Current stock of `item_id`; 0 for an unknown item.
    pub async fn stock(&self, item_id: &str, trace: &TraceContext) -> Result<u64, StoreError> {
        Ok(self
            .load_item(item_id, trace)
            .await?
            .map_or(0, |doc| doc.quantity))
    }

    /// Sets the stock of `item_id` to `quantity`, keeping its order history.
    pub async fn set_stock(
        &self,
        item_id: &str,
        quantity: u64,
        trace: &TraceContext,
    ) -> Result<u64, StoreError> {
        let mut seen = self.lock_for(item_id).lock().await;
        seen.remove(item_id);
        let (quantity, write_id) = self
            .update(
                &item_key(item_id),
                Some(item_id),
                trace,
                |mut doc: ItemDoc| async move {
                    doc.quantity = quantity;
                    doc.write_id = new_write_id();
                    let write_id = doc.write_id;
                    Ok(Change::Write(doc, (quantity, write_id)))
                },
            )
            .await?;
        remember(&mut seen, item_id, write_id);
        Ok(quantity)
    }

    /// Creates `item_id` with `quantity` in stock if it has no document yet; an existing item
    /// (even one created by a concurrent writer a moment ago) is left untouched. Create-only:
    /// a `first-write` save without an ETag, so no restart or second replica can reset stock.
    pub async fn seed(
        &self,
        item_id: &str,
        quantity: u64,
        trace: &TraceContext,
    ) -> Result<Seeded, StoreError> {
        let _guard = self.lock_for(item_id).lock().await;
        let key = item_key(item_id);
        let doc = ItemDoc {
            quantity,
            ..ItemDoc::default()
        };
        for _ in 0..MAX_ATTEMPTS {
            if let Some(existing) = self.load_item(item_id, trace).await? {
                return Ok(Seeded::Kept(existing.quantity));
            }
            match self.save(&key, &doc, None, Some(item_id), trace).await? {
                Saved::Yes => return Ok(Seeded::Created),
                // Someone created it in between: the next read finds what they wrote.
                Saved::Conflict => {}
            }
        }
        Err(StoreError::Contention {
            key,
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Applies `order` exactly once: stock goes down by its quantity if there is enough, else
    /// the order is rejected; either way the outcome is recorded with the stock change. An
    /// order already decided is reported as a duplicate and changes nothing.
    ///
    /// Orders of the same item that arrive while it is being written wait for it together and
    /// are then applied as one batch, as [`Inventory::apply_all`] applies one, by whichever of
    /// their calls gets the item first (see "Deliveries that wait" in the module docs).
    pub async fn apply(
        &self,
        order: &OrderPlaced,
        event_id: Option<&str>,
        trace: &TraceContext,
    ) -> Result<Decided, StoreError> {
        let item_id = order.item_id.as_str();
        let stripe = self.stripe_for(item_id);
        let (answer, mut answered) = oneshot::channel();
        stripe
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Waiting {
                order: order.clone(),
                event_id: event_id.map(str::to_owned),
                answer,
            });
        let mut seen = tokio::select! {
            // An answer that is there already wins over a lock that is free at the same time:
            // taking the lock would only apply later orders on this request's time.
            biased;
            // Taken and answered by the holder of the lock: no need to wait for the lock.
            answer = &mut answered => return answer_of(answer),
            seen = stripe.seen.lock() => seen,
        };
        // Without this order if whoever held the lock before took it; then it holds only the
        // item's orders that came after, and this call's answer is already in `answered`.
        let group = stripe.take_waiting(item_id);
        if !group.is_empty() {
            if group.len() > 1 {
                tracing::debug!(
                    item_id,
                    orders = group.len(),
                    "applying orders that waited for the item together"
                );
            }
            let orders: Vec<(&OrderPlaced, Option<&str>)> = group
                .iter()
                .map(|w| (&w.order, w.event_id.as_deref()))
                .collect();
            let result = self.apply_locked(&mut seen, item_id, &orders, trace).await;
            // Answered before the lock is released, so an order taken is always answered when
            // its own call gets the lock. An answer nobody waits for any more is dropped: its
            // request was, and a redelivery finds the order decided.
            match result {
                Ok(decided) => {
                    for (w, decided) in group.into_iter().zip(decided) {
                        let _ = w.answer.send(Ok(decided));
                    }
                }
                Err(e) => {
                    let e = Arc::new(e);
                    for w in group {
                        let _ = w.answer.send(Err(Arc::clone(&e)));
                    }
                }
            }
        }
        drop(seen);
        answer_of(answered.try_recv())
    }

    /// Applies `orders` of `item_id` (each with the CloudEvent id of its delivery) exactly once,
    /// in the order given, as [`Inventory::apply`] applies one: each is decided against the
    /// stock the ones before it left, and all of their outcomes are written in one conditional
    /// write of the item's document. If that write fails, none of them is decided; a conflict
    /// starts over from a fresh read. An order given twice is decided once, and its repeat
    /// reported as a duplicate. Returns one [`Decided`] per order, in the same order.
    pub async fn apply_all(
        &self,
        item_id: &str,
        orders: &[(&OrderPlaced, Option<&str>)],
        trace: &TraceContext,
    ) -> Result<Vec<Decided>, StoreError> {
        let mut seen = self.lock_for(item_id).lock().await;
        self.apply_locked(&mut seen, item_id, orders, trace).await
    }

    /// [`Inventory::apply_all`], with the item's stripe locked by the caller.
    async fn apply_locked(
        &self,
        seen: &mut LastSeen,
        item_id: &str,
        orders: &[(&OrderPlaced, Option<&str>)],
        trace: &TraceContext,
    ) -> Result<Vec<Decided>, StoreError> {
        let key = item_key(item_id);
        if let Some(&remembered) = seen.get(item_id) {
            // The document and the orders' keys at once; see "Reading in parallel".
            let keys = order_keys(None, item_id, orders);
            let (loaded, early) = tokio::try_join!(
                self.load::<ItemDoc>(&key, Some(item_id), trace),
                self.read_outcomes(item_id, &keys, trace),
            )?;
            let (doc, etag) = loaded.unwrap_or_default();
            let known = if doc.write_id == remembered {
                merge_outcomes(&doc, item_id, orders, &keys, &early)
            } else {
                self.find_outcomes(&doc, item_id, orders, trace).await?
            };
            let seen_id = doc.write_id;
            match self.decide_all(doc, item_id, orders, known, trace).await? {
                Change::Keep(decided) => {
                    remember(seen, item_id, seen_id);
                    return Ok(decided);
                }
                Change::Write(doc, decided) => {
                    let write_id = doc.write_id;
                    if let Saved::Yes = self
                        .save(&key, &doc, etag.as_deref(), Some(item_id), trace)
                        .await?
                    {
                        remember(seen, item_id, write_id);
                        return Ok(decided);
                    }
                    // Another writer got there first: start over as below, from a fresh read.
                    seen.remove(item_id);
                }
            }
        }
        let (decided, write_id) = self
            .update(&key, Some(item_id), trace, |doc: ItemDoc| async move {
                let read_id = doc.write_id;
                let known = self.find_outcomes(&doc, item_id, orders, trace).await?;
                Ok(
                    match self.decide_all(doc, item_id, orders, known, trace).await? {
                        Change::Keep(decided) => Change::Keep((decided, read_id)),
                        Change::Write(doc, decided) => {
                            let write_id = doc.write_id;
                            Change::Write(doc, (decided, write_id))
                        }
                    },
                )
            })
            .await?;
        remember(seen, item_id, write_id);
        Ok(decided)
    }

    /// Decides `orders` against `doc`, given what is already `known` of each, and returns the
    /// document to write with a new `writeId`, or Keep when every order was decided before.
    /// Outcomes that no longer fit in the document are written to their own keys first.
    async fn decide_all(
        &self,
        mut doc: ItemDoc,
        item_id: &str,
        orders: &[(&OrderPlaced, Option<&str>)],
        known: Vec<Option<Outcome>>,
        trace: &TraceContext,
    ) -> Result<Change<ItemDoc, Vec<Decided>>, StoreError> {
        let mut decided: Vec<Decided> = Vec::with_capacity(orders.len());
        let mut new: Vec<Outcome> = Vec::new();
        for (&(order, event_id), known) in orders.iter().zip(known) {
            let earlier =
                known.or_else(|| new.iter().find(|o| o.order_id == order.order_id).cloned());
            if let Some(outcome) = earlier {
                decided.push(Decided {
                    outcome,
                    duplicate: true,
                });
                continue;
            }
            let outcome = decide(order, doc.quantity, event_id);
            doc.quantity = outcome.remaining;
            new.push(outcome.clone());
            decided.push(Decided {
                outcome,
                duplicate: false,
            });
        }
        if new.is_empty() {
            return Ok(Change::Keep(decided));
        }
        if doc.recent.len() >= RECENT_OUTCOMES {
            // Written before the document that drops them; see the module docs.
            self.save_outcomes(item_id, doc.recent.make_contiguous(), trace)
                .await?;
            doc.recent.clear();
        }
        doc.recent.extend(new);
        doc.write_id = new_write_id();
        Ok(Change::Write(doc, decided))
    }

    /// The recorded outcome of `order_id` for `item_id`, if it was decided.
    pub async fn outcome(
        &self,
        item_id: &str,
        order_id: &str,
        trace: &TraceContext,
    ) -> Result<Option<Outcome>, StoreError> {
        let doc = self.load_item(item_id, trace).await?.unwrap_or_default();
        self.find_outcome(&doc, item_id, order_id, trace).await
    }

    /// Records a dead letter; false when one with the same event id is already recorded
    /// (Dapr redelivered it).
    pub async fn record_dead_letter(
        &self,
        letter: &DeadLetter,
        trace: &TraceContext,
    ) -> Result<bool, StoreError> {
        let mut new = self
            .record_dead_letters(std::slice::from_ref(letter), trace)
            .await?;
        // One answer per letter given.
        Ok(new.swap_remove(0))
    }

    /// Records `letters` in one write; for each, false when one with the same event id is
    /// already recorded.
    pub async fn record_dead_letters(
        &self,
        letters: &[DeadLetter],
        trace: &TraceContext,
    ) -> Result<Vec<bool>, StoreError> {
        self.update(
            DEAD_LETTERS_KEY,
            None,
            trace,
            |mut doc: DeadLetters| async move {
                let mut new = Vec::with_capacity(letters.len());
                for letter in letters {
                    let known = letter.event_id.is_some()
                        && doc.recent.iter().any(|d| d.event_id == letter.event_id);
                    new.push(!known);
                    if !known {
                        doc.count += 1;
                        doc.recent.push_back(letter.clone());
                    }
                }
                if !new.contains(&true) {
                    return Ok(Change::Keep(new));
                }
                while doc.recent.len() > RECENT_DEAD_LETTERS {
                    doc.recent.pop_front();
                }
                Ok(Change::Write(doc, new))
            },
        )
        .await
    }

    /// The dead-letter record.
    pub async fn dead_letters(&self, trace: &TraceContext) -> Result<DeadLetters, StoreError> {
        Ok(self
            .load::<DeadLetters>(DEAD_LETTERS_KEY, None, trace)
            .await?
            .map(|(doc, _)| doc)
            .unwrap_or_default())
    }

    async fn find_outcome(
        &self,
        doc: &ItemDoc,
        item_id: &str,
        order_id: &str,
        trace: &TraceContext,
    ) -> Result<Option<Outcome>, StoreError> {
        if let Some(known) = doc.recent.iter().find(|o| o.order_id == order_id) {
            return Ok(Some(known.clone()));
        }
        Ok(self
            .load::<Outcome>(&order_key(item_id, order_id), Some(item_id), trace)
            .await?
            .map(|(outcome, _)| outcome))
    }

    /// The recorded outcome of each of `orders`, if decided: from the document, else from the
    /// orders' own keys, read after the document (see the module docs).
    async fn find_outcomes(
        &self,
        doc: &ItemDoc,
        item_id: &str,
        orders: &[(&OrderPlaced, Option<&str>)],
        trace: &TraceContext,
    ) -> Result<Vec<Option<Outcome>>, StoreError> {
        let keys = order_keys(Some(doc), item_id, orders);
        let stored = self.read_outcomes(item_id, &keys, trace).await?;
        Ok(merge_outcomes(doc, item_id, orders, &keys, &stored))
    }

    /// The outcomes stored at `keys` (of `item_id`'s orders), in the same order: one plain read
    /// for one key, as a single delivery always cost, one bulk read for more, none for none.
    async fn read_outcomes(
        &self,
        item_id: &str,
        keys: &[String],
        trace: &TraceContext,
    ) -> Result<Vec<Option<Outcome>>, StoreError> {
        Ok(match keys {
            [] => Vec::new(),
            [key] => vec![
                self.load::<Outcome>(key, Some(item_id), trace)
                    .await?
                    .map(|(outcome, _)| outcome),
            ],
            _ => {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                self.dapr
                    .get_bulk_state::<Outcome>(
                        &self.store,
                        &keys,
                        &[("partitionKey", item_id)],
                        trace,
                    )
                    .await?
                    .into_iter()
                    .map(|entry| entry.map(|e| e.value))
                    .collect()
            }
        })
    }

    async fn save_outcomes(
        &self,
        item_id: &str,
        outcomes: &[Outcome],
        trace: &TraceContext,
    ) -> Result<(), StoreError> {
        let keys: Vec<String> = outcomes
            .iter()
            .map(|o| order_key(item_id, &o.order_id))
            .collect();
        let writes: Vec<StateWrite<'_, &Outcome>> = keys
            .iter()
            .zip(outcomes)
            .map(|(key, outcome)| StateWrite {
                key,
                value: outcome,
                etag: None,
                options: None,
                metadata: BTreeMap::from([
                    ("partitionKey", item_id),
                    ("ttlInSeconds", &*self.outcome_ttl),
                ]),
            })
            .collect();
        // One transaction per chunk: Redis runs it as one pipeline, where a bulk save costs two
        // round trips (the write and its EXPIRE) per key; Cosmos DB as one transactional batch.
        for chunk in writes.chunks(MAX_TRANSACTION_OPERATIONS) {
            self.dapr
                .save_state_transaction(&self.store, chunk, &[("partitionKey", item_id)], trace)
                .await?;
        }
        Ok(())
    }

    /// Reads `key`, in `partition` when given, with its ETag; `None` when there is no such key.
    async fn load<D: DeserializeOwned>(
        &self,
        key: &str,
        partition: Option<&str>,
        trace: &TraceContext,
    ) -> Result<Option<(D, Option<String>)>, StoreError> {
        let metadata = partition.map(|p| [("partitionKey", p)]);
        let entry = self
            .dapr
            .get_state::<D>(
                &self.store,
                key,
                metadata.as_ref().map_or(&[], |m| m),
                trace,
            )
            .await?;
        Ok(entry.map(|e| (e.value, e.etag)))
    }

    async fn load_item(
        &self,
        item_id: &str,
        trace: &TraceContext,
    ) -> Result<Option<ItemDoc>, StoreError> {
        Ok(self
            .load(&item_key(item_id), Some(item_id), trace)
            .await?
            .map(|(doc, _)| doc))
    }

    /// Optimistic read-modify-write of the document at `key`: reads it (a missing key is the
    /// default document), lets `change` decide, and writes what it returns conditional on the
    /// ETag read. When another writer got there first, waits a little and starts over from a
    /// fresh read.
    async fn update<D, T, F>(
        &self,
        key: &str,
        partition: Option<&str>,
        trace: &TraceContext,
        mut change: impl FnMut(D) -> F,
    ) -> Result<T, StoreError>
    where
        D: DeserializeOwned + Serialize + Default + Sync,
        F: Future<Output = Result<Change<D, T>, StoreError>>,
    {
        for attempt in 0..MAX_ATTEMPTS {
            let (doc, etag) = self
                .load::<D>(key, partition, trace)
                .await?
                .unwrap_or_default();
            let (doc, answer) = match change(doc).await? {
                Change::Keep(answer) => return Ok(answer),
                Change::Write(doc, answer) => (doc, answer),
            };
            match self
                .save(key, &doc, etag.as_deref(), partition, trace)
                .await?
            {
                Saved::Yes => return Ok(answer),
                Saved::Conflict => {
                    tracing::debug!(key, attempt, "write conflict, trying again");
                    backoff(attempt).await;
                }
            }
        }
        Err(StoreError::Contention {
            key: key.to_owned(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// A `first-write` save: with an ETag it updates only that version; without one it only
    /// creates. A refused write is [`Saved::Conflict`].
    async fn save(
        &self,
        key: &str,
        value: &(impl Serialize + Sync),
        etag: Option<&str>,
        partition: Option<&str>,
        trace: &TraceContext,
    ) -> Result<Saved, StoreError> {
        let metadata: BTreeMap<&str, &str> =
            partition.map(|p| ("partitionKey", p)).into_iter().collect();
        let write = StateWrite {
            key,
            value,
            etag,
            options: Some(WriteOptions {
                concurrency: Concurrency::FirstWrite,
            }),
            metadata: metadata.clone(),
        };
        match self.dapr.save_state(&self.store, &[write], trace).await {
            Ok(()) => Ok(Saved::Yes),
            Err(e) if e.is_conflict() => Ok(Saved::Conflict),
            Err(e) if etag.is_none() => {
                // A create that lost a race fails with 500 on Redis: it is a conflict if the
                // key exists now.
                let metadata: Vec<(&str, &str)> = metadata.into_iter().collect();
                let exists = self
                    .dapr
                    .get_state::<Value>(&self.store, key, &metadata, trace)
                    .await?
                    .is_some();
                if exists {
                    Ok(Saved::Conflict)
                } else {
                    Err(e.into())
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// What [`Inventory::apply`] returns for the answer it received, or for none: no answer means
/// the delivery that took the order stopped before it was done.
fn answer_of<E>(received: Result<Answer, E>) -> Result<Decided, StoreError> {
    match received {
        Ok(answer) => answer.map_err(StoreError::Shared),
        Err(_) => Err(StoreError::Abandoned),
    }
}

/// The own keys of `orders` (each once) whose outcome is not in `doc`; all of them when the
/// document is not known yet.
fn order_keys(
    doc: Option<&ItemDoc>,
    item_id: &str,
    orders: &[(&OrderPlaced, Option<&str>)],
) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (order, _) in orders {
        let in_doc = doc.is_some_and(|d| d.recent.iter().any(|o| o.order_id == order.order_id));
        let key = order_key(item_id, &order.order_id);
        if !in_doc && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// Each order's outcome: from `doc`, else from what was `stored` at `keys`.
fn merge_outcomes(
    doc: &ItemDoc,
    item_id: &str,
    orders: &[(&OrderPlaced, Option<&str>)],
    keys: &[String],
    stored: &[Option<Outcome>],
) -> Vec<Option<Outcome>> {
    orders
        .iter()
        .map(|(order, _)| {
            doc.recent
                .iter()
                .find(|o| o.order_id == order.order_id)
                .cloned()
                .or_else(|| {
                    let key = order_key(item_id, &order.order_id);
                    keys.iter()
                        .position(|k| *k == key)
                        .and_then(|at| stored.get(at).cloned().flatten())
                })
        })
        .collect()
}

/// Remembers `write_id` for `item_id` in its stripe; 0 is never remembered.
fn remember(seen: &mut LastSeen, item_id: &str, write_id: u64) {
    if write_id == 0 {
        seen.remove(item_id);
        return;
    }
    if seen.len() >= REMEMBERED_PER_STRIPE && !seen.contains_key(item_id) {
        seen.clear();
    }
    seen.insert(item_id.to_owned(), write_id);
}

/// Decides `order` against `stock`: applied when there is enough, else rejected.
fn decide(order: &OrderPlaced, stock: u64, event_id: Option<&str>) -> Outcome {
    let (status, remaining, reason) = if order.quantity <= stock {
        (Status::Applied, stock - order.quantity, None)
    } else {
        (
            Status::Rejected,
            stock,
            Some(format!(
                "insufficient stock: ordered {}, available {stock}",
                order.quantity
            )),
        )
    };
    Outcome {
        order_id: order.order_id.clone(),
        item_id: order.item_id.clone(),
        quantity: order.quantity,
        status,
        remaining,
        reason,
        event_id: event_id.map(str::to_owned),
    }
}

/// Waits a little before the next attempt: longer each time, with jitter so that competing
/// instances fall out of step.
async fn backoff(attempt: u32) {
    let jitter = u64::from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            % 10,
    );
    let millis = 5 * u64::from(attempt + 1) + jitter;
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(quantity: u64) -> OrderPlaced {
        OrderPlaced {
            order_id: "o1".to_owned(),
            item_id: "item1".to_owned(),
            quantity,
        }
    }

    #[test]
    fn an_order_within_stock_is_applied() {
        let outcome = decide(&order(10), 100, Some("e1"));
        assert_eq!(outcome.status, Status::Applied);
        assert_eq!(outcome.remaining, 90);
        assert_eq!(outcome.reason, None);
        assert_eq!(outcome.event_id.as_deref(), Some("e1"));
    }

    #[test]
    fn an_order_for_all_the_stock_is_applied_and_one_more_is_rejected() {
        assert_eq!(decide(&order(5), 5, None).remaining, 0);
        let rejected = decide(&order(6), 5, None);
        assert_eq!(rejected.status, Status::Rejected);
        assert_eq!(rejected.remaining, 5);
        assert_eq!(
            rejected.reason.as_deref(),
            Some("insufficient stock: ordered 6, available 5")
        );
    }

    #[test]
    fn dead_letter_payloads_are_cut_to_a_bounded_size() {
        let letter = DeadLetter::new(None, "r".to_owned(), "é".repeat(5000).as_bytes());
        assert_eq!(letter.payload.chars().count(), MAX_DEAD_LETTER_PAYLOAD + 1);
    }

    #[test]
    fn outcomes_serialize_in_camel_case_without_empty_fields() {
        let v = serde_json::to_value(decide(&order(1), 3, None)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"orderId":"o1","itemId":"item1","quantity":1,"status":"applied","remaining":2})
        );
    }
}
